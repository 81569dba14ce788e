//! `POST /oauth/introspect` (RFC 7662): a client of the account asks whether a token is
//! active and what it carries; the answer is the layer's own, for the account's tokens only.

use super::revocation::Revocation;
use super::*;
use crate::harness::request::form_request;

const INTROSPECT: &str = "/oauth/introspect";

/// A second NativeConfidential client of `acme`, standing for a resource server that
/// introspects the tokens of the account's other clients.
fn resource_server(s: &Server) -> (ClientId, String) {
    s.native_client(ClientSpec::native("Resource server"))
}

async fn introspect_as(s: &Server, caller: &(ClientId, String), token: &str) -> Reply {
    s.about_token(INTROSPECT, caller.0.as_str(), &caller.1, token)
        .await
}

/// 200, never cached, a JSON object: gives it.
#[track_caller]
fn assert_introspection(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/json"));
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
    reply.json()
}

#[track_caller]
fn assert_inactive(reply: &Reply) {
    assert_eq!(assert_introspection(reply), json!({"active": false}));
}

#[track_caller]
fn assert_active(reply: &Reply) -> Value {
    let body = assert_introspection(reply);
    assert_eq!(body["active"], true, "{body}");
    body
}

#[tokio::test]
async fn an_active_token_is_reported_with_its_claims() {
    let s = Server::new();
    let token = s.token().await;
    let claims = decode_part(&parts(&token)[1]);
    let now = s.now();
    let body = assert_active(&introspect_as(&s, &resource_server(&s), &token).await);
    assert_eq!(
        body,
        json!({
            "active": true,
            "scope": "Evaluator User",
            "client_id": s.native_id().as_str(),
            "token_type": "Bearer",
            "exp": now + 3600,
            "iat": now,
            "nbf": now,
            "sub": s.native_id().as_str(),
            "aud": ISSUER_URL,
            "iss": ISSUER_URL,
            "jti": claims["jti"],
        })
    );
    assert!(body["jti"].as_str().is_some_and(|j| j.len() == 22));
}

#[tokio::test]
async fn a_client_may_introspect_its_own_token_with_basic_authentication() {
    let s = Server::new();
    let token = s.token().await;
    let form = format!("token={token}&token_type_hint=refresh_token");
    let req = with_basic(
        form_request(INTROSPECT, &form),
        s.native_id().as_str(),
        &s.native_secret(),
    );
    let body = assert_active(&s.send(req).await);
    assert_eq!(body["scope"], "Evaluator User");
}

#[tokio::test]
async fn a_narrowed_token_reports_its_narrowed_scope() {
    let s = Server::new();
    let token = s.scoped_token(&s.acme.native, "Evaluator").await;
    let body = assert_active(&introspect_as(&s, &resource_server(&s), &token).await);
    assert_eq!(body["scope"], "Evaluator");
}

#[tokio::test]
async fn malformed_forged_and_expired_tokens_are_inactive() {
    let s = Server::new();
    let rs = resource_server(&s);
    let token = s.token().await;
    let forged = hmac_signed(&valid_header(), &valid_claims_json(&s), &[9u8; 32]);
    for bad in [
        "not-a-token",
        "a.b.c",
        forged.as_str(),
        &token[..token.len() - 2],
    ] {
        assert_inactive(&introspect_as(&s, &rs, bad).await);
    }
    assert_active(&introspect_as(&s, &rs, &token).await);
    s.clock.advance(secs(3600));
    assert_inactive(&introspect_as(&s, &rs, &token).await);
    s.call(PROFILE, &token).await.assert_invalid_token();
}

#[tokio::test]
async fn another_accounts_token_is_inactive_to_the_caller() {
    let s = Server::new();
    let token = s.token().await;
    let other = s.account("globex", roles([Role::USER, Role::EVALUATOR]), None);
    let outsider = (
        other.native.client.id().clone(),
        other.native.credential.expose().to_owned(),
    );
    assert_inactive(&introspect_as(&s, &outsider, &token).await);
    // The token is active all the same, to its own account.
    assert_active(&introspect_as(&s, &resource_server(&s), &token).await);
    s.call(PROFILE, &token).await.assert_ok();
}

/// For each way a working token loses what it relied on, introspection says what the layer
/// does: inactive exactly when the layer refuses the token itself (401 `invalid_token`),
/// active when it still knows the caller and refuses only the route (403).
#[tokio::test]
async fn introspection_agrees_with_the_layer_on_every_revocation() {
    for how in [
        Revocation::DeactivateClient,
        Revocation::DeleteClient,
        Revocation::RegenerateSecret,
        Revocation::RemoveClientRole,
        Revocation::RemoveAccountRole,
        Revocation::ExpireClient,
        Revocation::ExcludeCallerIp,
    ] {
        let s = Server::new();
        let rs = resource_server(&s);
        let token = s.token().await;
        assert_active(&introspect_as(&s, &rs, &token).await);
        how.apply(&s);
        let layer = s.call(PROFILE, &token).await;
        assert_eq!(layer.status, how.refusal().0, "{how:?}");
        let body = assert_introspection(&introspect_as(&s, &rs, &token).await);
        let refused_as_token = layer.status == StatusCode::UNAUTHORIZED;
        assert_eq!(body["active"], !refused_as_token, "{how:?}: {body}");
    }
}

#[tokio::test]
async fn a_client_of_an_inactive_account_cannot_introspect() {
    let s = Server::new();
    let rs = resource_server(&s);
    let token = s.token().await;
    Revocation::DeactivateAccount.apply(&s);
    s.call(PROFILE, &token).await.assert_invalid_token();
    assert_invalid_client(&introspect_as(&s, &rs, &token).await, false);
}

#[tokio::test]
async fn the_caller_authenticates_as_at_the_token_endpoint() {
    let s = Server::new();
    let token = s.token().await;
    let wrong = (s.native_id(), "gis_secret_wrong".to_owned());
    assert_invalid_client(&introspect_as(&s, &wrong, &token).await, false);
    let basic = with_basic(
        form_request(INTROSPECT, &format!("token={token}")),
        s.native_id().as_str(),
        "wrong",
    );
    assert_invalid_client(&s.send(basic).await, true);
    let unauthenticated = s
        .send(form_request(INTROSPECT, &format!("token={token}")))
        .await;
    assert_invalid_client(&unauthenticated, false);
    // A JavaScript client holds no secret to authenticate with.
    let key = s.acme.javascript.credential.expose().to_owned();
    let browser = (s.acme.javascript.client.id().clone(), key);
    assert_invalid_client(&introspect_as(&s, &browser, &token).await, false);
    assert!(!String::from_utf8_lossy(&s.send(token_request(GRANT)).await.body).contains(&token));
}

#[tokio::test]
async fn failures_at_introspection_count_toward_the_token_endpoints_lockout() {
    let s = Server::new();
    let token = s.token().await;
    let wrong = (s.native_id(), "wrong".to_owned());
    for _ in 0..20 {
        assert_invalid_client(&introspect_as(&s, &wrong, &token).await, false);
    }
    let right = (s.native_id(), s.native_secret());
    assert_locked_out(&introspect_as(&s, &right, &token).await, 600);
    assert_locked_out(
        &s.exchange(s.native_id().as_str(), &s.native_secret()).await,
        600,
    );
}

#[tokio::test]
async fn a_request_without_a_token_or_not_a_post_is_refused() {
    let s = Server::new();
    let (id, secret) = resource_server(&s);
    let form = format!("client_id={id}&client_secret={}", form_encode(&secret));
    assert_invalid_request(&s.send(form_request(INTROSPECT, &form)).await);
    assert_invalid_request(
        &s.send(form_request(INTROSPECT, &format!("{form}&token=")))
            .await,
    );
    let twice = format!("{form}&token=a&token=b");
    assert_invalid_request(&s.send(form_request(INTROSPECT, &twice)).await);
    let get = Request::get(INTROSPECT)
        .body(Body::empty())
        .expect("a request");
    let reply = s.send(get).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header(header::ALLOW), Some("POST"));
}
