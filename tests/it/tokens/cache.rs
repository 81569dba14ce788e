//! The verified-token cache: a cached token is refused as soon as anything it relied on
//! changes.

use super::revocation::{Revocation, assert_next_request_refused};
use super::*;

/// Uses of a token before the change, enough for it to be served from the cache.
const CACHED: usize = 5;

#[tokio::test]
async fn a_cached_token_is_refused_once_its_client_is_deactivated() {
    assert_next_request_refused(Revocation::DeactivateClient, CACHED).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_client_is_deleted() {
    assert_next_request_refused(Revocation::DeleteClient, CACHED).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_secret_is_regenerated() {
    assert_next_request_refused(Revocation::RegenerateSecret, CACHED).await;
}

#[tokio::test]
async fn a_cached_token_loses_a_role_removed_from_its_client() {
    assert_next_request_refused(Revocation::RemoveClientRole, CACHED).await;
}

#[tokio::test]
async fn a_cached_token_loses_a_role_removed_from_its_account() {
    assert_next_request_refused(Revocation::RemoveAccountRole, CACHED).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_account_is_deactivated() {
    assert_next_request_refused(Revocation::DeactivateAccount, CACHED).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_client_expires() {
    assert_next_request_refused(Revocation::ExpireClient, CACHED).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_once_an_ip_rule_excludes_the_caller() {
    assert_next_request_refused(Revocation::ExcludeCallerIp, CACHED).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_from_its_exp_on() {
    let s = Server::new();
    let token = s.token().await;
    for _ in 0..CACHED {
        s.call(GEOCODE, &token).await.assert_ok();
    }
    s.clock.advance(secs(3599));
    s.call(GEOCODE, &token).await.assert_ok();
    s.clock.advance(secs(1));
    let reply = s.call(GEOCODE, &token).await;
    reply.assert_invalid_token();
    assert_eq!(reply.kind(), RejectionKind::Expired);
}

#[tokio::test]
async fn a_cached_token_of_the_previous_secret_is_refused_after_retire_previous() {
    let s = Server::new();
    let id = s.native_id();
    let old_secret = s.native_secret();
    s.store
        .regenerate(&id, Some(secs(3600)))
        .expect("regenerated");
    let token = s.token_for(&id, &old_secret).await;
    for _ in 0..CACHED {
        s.call(PROFILE, &token).await.assert_ok();
    }
    s.store.retire_previous(&id).expect("retired");
    let reply = s.call(PROFILE, &token).await;
    reply.assert_invalid_token();
    assert_eq!(reply.kind(), RejectionKind::Revoked);
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_signing_keys_grace_ends() {
    let s = Server::new();
    let token = s.token().await;
    for _ in 0..CACHED {
        s.call(PROFILE, &token).await.assert_ok();
    }
    s.issuer
        .rotate_key(hs256("k2", &[9u8; 32]), Duration::from_secs(600))
        .expect("rotated");
    s.call(PROFILE, &token).await.assert_ok();
    s.clock.advance(secs(600));
    s.call(PROFILE, &token).await.assert_invalid_token();
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_kid_names_another_key() {
    let s = Server::new();
    let cached = s.token().await;
    let never_used = s.token().await;
    for _ in 0..CACHED {
        s.call(PROFILE, &cached).await.assert_ok();
    }
    // Retire `k1` at once, then give its id to a new key with another secret.
    let rotate = |kid: &str, secret: u8| {
        s.issuer
            .rotate_key(hs256(kid, &[secret; 32]), Duration::ZERO)
            .expect("rotated");
    };
    rotate("k2", 2);
    rotate("k3", 3);
    rotate(ISSUER_KID, 4);
    assert_eq!(s.issuer.current_kid(), ISSUER_KID);
    // Neither token was signed by the key now called `k1`.
    s.call(PROFILE, &never_used).await.assert_invalid_token();
    s.call(PROFILE, &cached).await.assert_invalid_token();
}

#[tokio::test]
async fn a_token_this_thread_verified_last_is_not_taken_by_a_verifier_with_another_key() {
    use gis_auth::token::{JwtVerifier, TokenIssuer, TokenVerifier};
    let s = Server::new();
    let token = s.token().await;
    // Now the token this thread verified last.
    s.call(PROFILE, &token).await.assert_ok();
    let store: std::sync::Arc<dyn gis_auth::store::ClientStore> = s.store.clone();
    let other = JwtVerifier::new(TokenIssuer::new(hs256(ISSUER_KID, &[7u8; 32])), store);
    assert!(other.verify(&token).await.is_err());
    s.call(PROFILE, &token).await.assert_ok();
}
