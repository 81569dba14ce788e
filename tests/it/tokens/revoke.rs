//! `POST /oauth/revoke` (RFC 7009): one token of the caller's account on the deny list, by
//! its `jti`, refused by the layer on its next request; 200 for every token (§2.2).

use std::sync::Arc;

use async_trait::async_trait;
use gis_auth::store::BackendError;
use gis_auth::token::{InMemoryRevocations, Revocations};

use super::*;
use crate::harness::request::form_request;

const REVOKE: &str = "/oauth/revoke";
const INTROSPECT: &str = "/oauth/introspect";

async fn revoke_as(s: &Server, id: &ClientId, secret: &str, token: &str) -> Reply {
    s.about_token(REVOKE, id.as_str(), secret, token).await
}

/// 200 `{}`, never cached.
#[track_caller]
fn assert_revocation_answered(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/json"));
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
    assert_eq!(reply.json(), json!({}));
}

#[tokio::test]
async fn a_revoked_token_is_refused_on_its_next_request() {
    let s = Server::new();
    let token = s.token().await;
    let sibling = s.token().await;
    s.call(PROFILE, &token).await.assert_ok();
    assert_revocation_answered(&revoke_as(&s, &s.native_id(), &s.native_secret(), &token).await);
    let reply = s.call(PROFILE, &token).await;
    reply.assert_invalid_token();
    assert_eq!(reply.kind(), RejectionKind::Revoked);
    // Only that token: the client's other token and new ones work.
    s.call(PROFILE, &sibling).await.assert_ok();
    s.call(PROFILE, &s.token().await).await.assert_ok();
    // Introspection agrees.
    let rs = s.native_client(ClientSpec::native("Resource server"));
    let body = s
        .about_token(INTROSPECT, rs.0.as_str(), &rs.1, &token)
        .await;
    assert_eq!(body.json(), json!({"active": false}));
}

#[tokio::test]
async fn another_client_of_the_account_may_revoke_with_basic_authentication() {
    let s = Server::new();
    let token = s.token().await;
    let (id, secret) = s.native_client(ClientSpec::native("Operations"));
    let form = format!("token={token}&token_type_hint=access_token");
    let req = with_basic(form_request(REVOKE, &form), id.as_str(), &secret);
    assert_revocation_answered(&s.send(req).await);
    s.call(GEOCODE, &token).await.assert_invalid_token();
}

#[tokio::test]
async fn another_accounts_token_is_answered_200_and_not_revoked() {
    let s = Server::new();
    let token = s.token().await;
    let other = s.account("globex", roles([Role::USER, Role::EVALUATOR]), None);
    let reply = revoke_as(
        &s,
        other.native.client.id(),
        other.native.credential.expose(),
        &token,
    )
    .await;
    assert_revocation_answered(&reply);
    s.call(PROFILE, &token).await.assert_ok();
}

#[tokio::test]
async fn unknown_malformed_and_expired_tokens_are_answered_200() {
    let s = Server::new();
    let (id, secret) = (s.native_id(), s.native_secret());
    let token = s.token().await;
    let forged = hmac_signed(&valid_header(), &valid_claims_json(&s), &[9u8; 32]);
    for bad in ["not-a-token", "a.b.c", forged.as_str()] {
        assert_revocation_answered(&revoke_as(&s, &id, &secret, bad).await);
    }
    s.call(PROFILE, &token).await.assert_ok();
    s.clock.advance(secs(3600));
    assert_revocation_answered(&revoke_as(&s, &id, &secret, &token).await);
    // Twice is no error either.
    let fresh = s.token().await;
    assert_revocation_answered(&revoke_as(&s, &id, &secret, &fresh).await);
    assert_revocation_answered(&revoke_as(&s, &id, &secret, &fresh).await);
    s.call(PROFILE, &fresh).await.assert_invalid_token();
}

#[tokio::test]
async fn a_revoked_token_stays_refused_when_its_client_comes_back() {
    let s = Server::new();
    let (id, secret) = s.native_client(ClientSpec::native("Batch"));
    let token = s.token_for(&id, &secret).await;
    s.store
        .set_client_status(&id, Status::Inactive)
        .expect("stored");
    // Revoked by another client of the account while its own client is inactive.
    assert_revocation_answered(&revoke_as(&s, &s.native_id(), &s.native_secret(), &token).await);
    s.store
        .set_client_status(&id, Status::Active)
        .expect("stored");
    let reply = s.call(PROFILE, &token).await;
    reply.assert_invalid_token();
    assert_eq!(reply.kind(), RejectionKind::Revoked);
}

#[tokio::test]
async fn the_caller_must_authenticate_and_name_a_token() {
    let s = Server::new();
    let token = s.token().await;
    let reply = revoke_as(&s, &s.native_id(), "wrong", &token).await;
    assert_invalid_client(&reply, false);
    s.call(PROFILE, &token).await.assert_ok();
    let anonymous = s
        .send(form_request(REVOKE, &format!("token={token}")))
        .await;
    assert_invalid_client(&anonymous, false);
    s.call(PROFILE, &token).await.assert_ok();
    let form = post_form(s.native_id().as_str(), &s.native_secret());
    assert_invalid_request(&s.send(form_request(REVOKE, &form)).await);
}

#[tokio::test]
async fn the_deny_list_forgets_a_token_once_it_expires() {
    let clock = gis_auth::clock::ManualClock::new(crate::harness::server::START);
    let list = Arc::new(InMemoryRevocations::new().clock(Arc::new(clock.clone())));
    let s = Server::builder().revocations(list.clone()).build();
    let token = s.token().await;
    assert_revocation_answered(&revoke_as(&s, &s.native_id(), &s.native_secret(), &token).await);
    assert_eq!(list.len(), 1);
    s.call(PROFILE, &token).await.assert_invalid_token();
    clock.advance(secs(3599));
    assert!(list.is_revoked(&jti_of(&token)).await.expect("answers"));
    clock.advance(secs(1));
    assert!(!list.is_revoked(&jti_of(&token)).await.expect("answers"));
    assert!(list.is_empty(), "forgotten at its exp");
}

fn jti_of(token: &str) -> String {
    decode_part(&parts(token)[1])["jti"]
        .as_str()
        .expect("a jti")
        .to_owned()
}

/// A deny list that cannot answer.
struct Broken;

#[async_trait]
impl Revocations for Broken {
    fn is_revoked_now(&self, _: &str) -> Option<Result<bool, BackendError>> {
        Some(Err(BackendError::new("the deny list is down")))
    }

    async fn revoke(&self, _: &str, _: time::OffsetDateTime) -> Result<(), BackendError> {
        Err(BackendError::new("the deny list is down"))
    }
}

/// A deny list that answers only by waiting, and then fails.
struct Remote;

#[async_trait]
impl Revocations for Remote {
    fn is_revoked_now(&self, _: &str) -> Option<Result<bool, BackendError>> {
        None
    }

    async fn is_revoked(&self, _: &str) -> Result<bool, BackendError> {
        tokio::task::yield_now().await;
        Err(BackendError::new("the database is down"))
    }

    async fn revoke(&self, _: &str, _: time::OffsetDateTime) -> Result<(), BackendError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failing_deny_list_fails_closed() {
    for list in [Arc::new(Broken) as Arc<dyn Revocations>, Arc::new(Remote)] {
        let s = Server::builder().revocations(list).build();
        let token = s.token().await;
        s.call(PROFILE, &token).await.assert_unavailable();
        let rs = s.native_client(ClientSpec::native("Resource server"));
        let reply = s
            .about_token(INTROSPECT, rs.0.as_str(), &rs.1, &token)
            .await;
        assert_endpoint_error(
            &reply,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        );
    }
    let s = Server::builder().revocations(Arc::new(Broken)).build();
    let token = s.token().await;
    let reply = revoke_as(&s, &s.native_id(), &s.native_secret(), &token).await;
    assert_endpoint_error(
        &reply,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    );
    assert_eq!(reply.header(header::RETRY_AFTER), Some("1"));
}
