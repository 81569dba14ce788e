//! The client credentials exchange that works: both ways of authenticating, the token's
//! lifetime, header and claims, and a narrowed scope.

use base64::engine::general_purpose::STANDARD;

use super::*;

#[tokio::test]
async fn client_secret_basic_exchanges_for_a_one_hour_bearer_token() {
    let s = Server::new();
    let reply = s
        .exchange_basic(s.native_id().as_str(), &s.native_secret())
        .await;
    let body = assert_token_response(&reply);
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(
        body["scope"], "Evaluator User",
        "the roles in force: {body}"
    );
}

#[tokio::test]
async fn client_secret_post_exchanges_for_a_one_hour_bearer_token() {
    let s = Server::new();
    let reply = s.exchange(s.native_id().as_str(), &s.native_secret()).await;
    let body = assert_token_response(&reply);
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(
        body["scope"], "Evaluator User",
        "the roles in force: {body}"
    );
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_inside_the_header() {
    let s = Server::new();
    // Every byte percent-encoded: the endpoint must form-decode both halves.
    let escape = |t: &str| t.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let pair = format!(
        "{}:{}",
        escape(s.native_id().as_str()),
        escape(&s.native_secret())
    );
    let mut req = token_request(GRANT);
    let value = format!("Basic {}", STANDARD.encode(pair));
    req.headers_mut().insert(
        header::AUTHORIZATION,
        value.parse().expect("a header value"),
    );
    assert_token_response(&s.send(req).await);
}

#[tokio::test]
async fn an_issued_token_reaches_the_geocoder_and_the_profile() {
    let s = Server::new();
    let by_basic = s
        .exchange_basic(s.native_id().as_str(), &s.native_secret())
        .await;
    for token in [
        s.token().await,
        access_token(&assert_token_response(&by_basic)),
    ] {
        let reply = s.call(GEOCODE, &token).await;
        reply.assert_ok();
        assert_eq!(reply.json()["results"][0]["name"], "Paris");
        let reply = s.call(PROFILE, &token).await;
        reply.assert_ok();
        let body = reply.json();
        assert_eq!(body["client_id"], s.native_id().as_str());
        assert_eq!(body["account_id"], ACCOUNT);
        assert_eq!(body["roles"], json!(["Evaluator", "User"]));
        assert_eq!(body["authenticated_with"], "bearer_token");
    }
}

#[tokio::test]
async fn a_narrowed_scope_is_echoed_in_the_token_response() {
    let s = Server::new();
    let form = |scope: &str| {
        format!(
            "{}&scope={}",
            post_form(s.native_id().as_str(), &s.native_secret()),
            form_encode(scope)
        )
    };
    let body = assert_token_response(&s.send(token_request(&form("Evaluator"))).await);
    assert_eq!(body["scope"], "Evaluator");
    let body = assert_token_response(&s.send(token_request(&form("User Evaluator"))).await);
    assert_eq!(body["scope"], "Evaluator User");
}

#[tokio::test]
async fn a_token_narrowed_to_evaluator_cannot_reach_the_profile() {
    let s = Server::new();
    let form = format!(
        "{}&scope=Evaluator",
        post_form(s.native_id().as_str(), &s.native_secret())
    );
    let body = assert_token_response(&s.send(token_request(&form)).await);
    assert_eq!(body["scope"], "Evaluator");
    let token = access_token(&body);
    s.call(GEOCODE, &token).await.assert_ok();
    assert_insufficient_role(&s.call(PROFILE, &token).await);
}

#[tokio::test]
async fn an_issued_token_has_the_documented_header_and_claims() {
    let s = Server::new();
    let token = s.token().await;
    let [header, payload, _] = parts(&token);
    assert_eq!(decode_part(&header), valid_header());
    let claims: AccessClaims = serde_json::from_value(decode_part(&payload)).expect("claims");
    let now = s.now();
    assert_eq!(
        claims,
        AccessClaims {
            jti: claims.jti.clone(),
            ..valid_claims(&s)
        }
    );
    assert_eq!((claims.iat, claims.nbf, claims.exp), (now, now, now + 3600));
    assert!(!claims.jti.is_empty());
}
