//! Rotation: a client secret regenerated with a grace period, and the issuer's signing
//! keys.

use super::*;

#[tokio::test]
async fn during_a_grace_period_both_secrets_and_the_old_tokens_work() {
    let s = Server::new();
    let id = s.native_id();
    let old_secret = s.native_secret();
    let old_token = s.token().await;
    let new_secret = s
        .store
        .regenerate(&id, Some(secs(3600)))
        .expect("regenerated");
    let new_secret = new_secret.expose().to_owned();
    s.call(PROFILE, &old_token).await.assert_ok();
    let from_old = s.token_for(&id, &old_secret).await;
    let from_new = s.token_for(&id, &new_secret).await;
    s.clock.advance(secs(3599));
    for token in [&old_token, &from_old, &from_new] {
        s.call(PROFILE, token).await.assert_ok();
    }
    assert_token_response(&s.exchange(id.as_str(), &old_secret).await);
}

#[tokio::test]
async fn a_token_from_the_previous_secret_never_outlives_the_grace() {
    let s = Server::new();
    let id = s.native_id();
    s.store
        .regenerate(&id, Some(secs(1800)))
        .expect("regenerated");
    let body = assert_token_response(&s.exchange(id.as_str(), &s.native_secret()).await);
    assert_eq!(body["expires_in"], 1800);
}

#[tokio::test]
async fn after_the_grace_period_the_old_secret_and_its_tokens_stop() {
    let s = Server::new();
    let id = s.native_id();
    let old_secret = s.native_secret();
    let old_token = s.token().await;
    let new_secret = s
        .store
        .regenerate(&id, Some(secs(1800)))
        .expect("regenerated")
        .expose()
        .to_owned();
    let new_token = s.token_for(&id, &new_secret).await;
    s.call(PROFILE, &old_token).await.assert_ok();
    s.clock.advance(secs(1800));
    let reply = s.call(PROFILE, &old_token).await;
    reply.assert_invalid_token();
    assert_eq!(reply.kind(), RejectionKind::Revoked);
    assert_client_refused(&s, id.as_str(), &old_secret, CALLER).await;
    s.call(PROFILE, &new_token).await.assert_ok();
    assert_token_response(&s.exchange(id.as_str(), &new_secret).await);
}

#[tokio::test]
async fn retiring_the_previous_secret_ends_the_grace_at_once() {
    let s = Server::new();
    let id = s.native_id();
    let old_secret = s.native_secret();
    let old_token = s.token().await;
    let new_secret = s
        .store
        .regenerate(&id, Some(secs(3600)))
        .expect("regenerated")
        .expose()
        .to_owned();
    let from_old = s.token_for(&id, &old_secret).await;
    s.call(PROFILE, &from_old).await.assert_ok();
    s.store.retire_previous(&id).expect("retired");
    for token in [&old_token, &from_old] {
        let reply = s.call(PROFILE, token).await;
        reply.assert_invalid_token();
        assert_eq!(reply.kind(), RejectionKind::Revoked);
    }
    assert_client_refused(&s, id.as_str(), &old_secret, CALLER).await;
    let from_new = s.token_for(&id, &new_secret).await;
    s.call(PROFILE, &from_new).await.assert_ok();
}

#[tokio::test]
async fn regenerating_without_grace_stops_both_secrets_and_every_older_token() {
    let s = Server::new();
    let id = s.native_id();
    let first_secret = s.native_secret();
    let first_token = s.token().await;
    let second_secret = s
        .store
        .regenerate(&id, Some(secs(3600)))
        .expect("regenerated")
        .expose()
        .to_owned();
    let second_token = s.token_for(&id, &second_secret).await;
    let from_first = s.token_for(&id, &first_secret).await;
    let third_secret = s
        .store
        .regenerate(&id, None)
        .expect("regenerated")
        .expose()
        .to_owned();
    for token in [&first_token, &from_first, &second_token] {
        let reply = s.call(PROFILE, token).await;
        reply.assert_invalid_token();
        assert_eq!(reply.kind(), RejectionKind::Revoked);
    }
    assert_client_refused(&s, id.as_str(), &first_secret, CALLER).await;
    assert_client_refused(&s, id.as_str(), &second_secret, CALLER).await;
    let third_token = s.token_for(&id, &third_secret).await;
    s.call(PROFILE, &third_token).await.assert_ok();
}

#[tokio::test]
async fn a_second_regeneration_during_a_grace_drops_the_oldest_secret() {
    let s = Server::new();
    let id = s.native_id();
    let first_secret = s.native_secret();
    let first_token = s.token().await;
    let second_secret = s
        .store
        .regenerate(&id, Some(secs(3600)))
        .expect("regenerated")
        .expose()
        .to_owned();
    let second_token = s.token_for(&id, &second_secret).await;
    let third_secret = s
        .store
        .regenerate(&id, Some(secs(3600)))
        .expect("regenerated")
        .expose()
        .to_owned();
    let reply = s.call(PROFILE, &first_token).await;
    reply.assert_invalid_token();
    assert_eq!(reply.kind(), RejectionKind::Revoked);
    assert_client_refused(&s, id.as_str(), &first_secret, CALLER).await;
    s.call(PROFILE, &second_token).await.assert_ok();
    assert_token_response(&s.exchange(id.as_str(), &second_secret).await);
    assert_token_response(&s.exchange(id.as_str(), &third_secret).await);
}

#[tokio::test]
async fn a_rotated_signing_key_keeps_old_tokens_valid_through_its_grace() {
    let s = Server::new();
    let old_token = s.token().await;
    s.call(PROFILE, &old_token).await.assert_ok();
    s.issuer
        .rotate_key(hs256("k2", &[9u8; 32]), Duration::from_secs(600))
        .expect("rotated");
    let new_token = s.token().await;
    let kid = |t: &str| {
        jsonwebtoken::decode_header(t)
            .expect("a header")
            .kid
            .expect("a kid")
    };
    assert_eq!(kid(&old_token), ISSUER_KID);
    assert_eq!(kid(&new_token), "k2");
    s.clock.advance(secs(599));
    s.call(PROFILE, &old_token).await.assert_ok();
    s.call(PROFILE, &new_token).await.assert_ok();
    s.clock.advance(secs(1));
    s.call(PROFILE, &old_token).await.assert_invalid_token();
    s.call(PROFILE, &new_token).await.assert_ok();
    // A token signed with the retired key after its grace is refused, even when fresh.
    s.call(PROFILE, &sign_raw(&valid_header(), &valid_claims_json(&s)))
        .await
        .assert_invalid_token();
}
