//! The token exchange end to end, through the example server's router: `POST /oauth/token`
//! (client credentials grant) and the bearer tokens it mints on the protected routes. Forged
//! tokens, brute force, revocation (of what a token relies on, and of one token at
//! `POST /oauth/revoke`), introspection (`POST /oauth/introspect`), secret and signing-key
//! rotation, and the verified-token cache. Time is a `ManualClock` shared by the store, the issuer and the layer.
//!
//! One module per topic; what they share (hand-made tokens, the token endpoint's errors) is
//! here.

mod bad_requests;
mod cache;
mod client_auth;
mod exchange;
mod forged;
mod introspect;
mod lockout;
mod published;
mod revocation;
mod revoke;
mod rotation;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::{Body, Bytes};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gis_auth::RejectionKind;
use gis_auth::client::{ClientId, ClientSpec, Role, Status};
use gis_auth::clock::Clock;
use gis_auth::token::{AccessClaims, LockoutPolicy, SigningKey};
use http::{Request, StatusCode, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::harness::reply::Reply;
use crate::harness::request::{
    GRANT, form_encode, from_peer, post_form, token_request, with_basic,
};
use crate::harness::server::{
    ACCOUNT, CALLER, ISSUER_KID, ISSUER_SECRET, ISSUER_URL, Server, access_token,
    assert_token_response, hs256, roles,
};

/// A P-256 key pair made for these tests only (`openssl genpkey -algorithm EC -pkeyopt
/// ec_paramgen_curve:P-256`, then `openssl pkey -pubout`). It protects nothing.
const ES256_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgURSXbsAKl6Qcizyx
g4oo/33cctuem0wxZFsrvnX4PIihRANCAAQ9ZZ7tQq668sGOgP9OllJZtWLOU78e
7MrIqFAH7ISLNt3Q20EV++ODXyNKvsLVRoi2Z4jNTVvSyOBsiwDJ1/kt
-----END PRIVATE KEY-----
";
const ES256_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPWWe7UKuuvLBjoD/TpZSWbVizlO/
HuzKyKhQB+yEizbd0NtBFfvjg18jSr7C1UaItmeIzU1b0sjgbIsAydf5LQ==
-----END PUBLIC KEY-----
";

const ELSEWHERE: &str = "192.0.2.44";
/// An Evaluator/Subscriber API.
const GEOCODE: &str = "/geocode?q=Paris";
/// A User API.
const PROFILE: &str = "/account/profile";

fn secs(n: i64) -> time::Duration {
    time::Duration::seconds(n)
}

fn es256(kid: &str) -> SigningKey {
    SigningKey::es256_pem(
        kid,
        ES256_PRIVATE_PEM.as_bytes(),
        ES256_PUBLIC_PEM.as_bytes(),
    )
    .expect("a valid P-256 key pair")
}

/// The body every failed client authentication gets.
async fn invalid_client_body(s: &Server) -> Bytes {
    let reply = s.send(token_request(GRANT)).await;
    assert_invalid_client(&reply, false);
    reply.body
}

/// Tries `id` and `secret` from `peer` with Basic and with the body; both must be the one
/// `invalid_client` answer, revealing nothing. Gives the two bodies.
async fn assert_client_refused(s: &Server, id: &str, secret: &str, peer: &str) -> [Bytes; 2] {
    let reference = invalid_client_body(s).await;
    let basic = s
        .send(from_peer(
            with_basic(token_request(GRANT), id, secret),
            peer,
        ))
        .await;
    assert_invalid_client(&basic, true);
    let post = s
        .send(from_peer(token_request(&post_form(id, secret)), peer))
        .await;
    assert_invalid_client(&post, false);
    for reply in [&basic, &post] {
        assert_eq!(reply.body, reference, "identical bodies");
        if !secret.is_empty() {
            assert!(!String::from_utf8_lossy(&reply.body).contains(secret));
        }
    }
    [basic.body, post.body]
}

/// An RFC 6749 §5.2 error from the token endpoint, never cached.
#[track_caller]
fn assert_endpoint_error(reply: &Reply, status: StatusCode, error: &str) {
    assert_eq!(reply.status, status, "{}", reply.describe());
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/json"));
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
    assert_eq!(reply.header(header::PRAGMA), Some("no-cache"));
    let body = reply.json();
    let fields = body.as_object().expect("a JSON object");
    assert_eq!(fields.len(), 2, "only error and error_description: {body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(body.get("access_token").is_none());
}

/// 401 `invalid_client`; a `Basic` challenge exactly when Basic was used.
#[track_caller]
fn assert_invalid_client(reply: &Reply, basic: bool) {
    assert_endpoint_error(reply, StatusCode::UNAUTHORIZED, "invalid_client");
    let challenge = reply.header(header::WWW_AUTHENTICATE);
    if basic {
        assert_eq!(challenge, Some("Basic realm=\"gis-auth\""));
    } else {
        assert_eq!(challenge, None);
    }
    assert!(reply.headers.get(header::RETRY_AFTER).is_none());
}

/// 400 `invalid_request` from the token endpoint, without a challenge.
#[track_caller]
fn assert_invalid_request(reply: &Reply) {
    assert_endpoint_error(reply, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(reply.headers.get(header::WWW_AUTHENTICATE).is_none());
}

/// 429 with `Retry-After` in seconds.
#[track_caller]
fn assert_locked_out(reply: &Reply, retry_after: u64) {
    assert_endpoint_error(reply, StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert_eq!(
        reply.header(header::RETRY_AFTER),
        Some(retry_after.to_string().as_str())
    );
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON serializes"))
}

fn hmac(message: &str, secret: &[u8]) -> String {
    jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .expect("HMAC signs")
}

/// A compact JWS of exactly this header and payload, HMAC-SHA256-signed with `secret`
/// whatever the header says.
fn hmac_signed(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = format!("{}.{}", b64_json(header), b64_json(claims));
    let signature = hmac(&message, secret);
    format!("{message}.{signature}")
}

/// Signed with the server's own secret.
fn sign_raw(header: &Value, claims: &Value) -> String {
    hmac_signed(header, claims, &ISSUER_SECRET)
}

/// The claims the server mints for its default native client, now.
fn valid_claims(s: &Server) -> AccessClaims {
    let now = s.now();
    AccessClaims {
        iss: ISSUER_URL.to_owned(),
        aud: ISSUER_URL.to_owned(),
        sub: s.native_id().to_string(),
        client_id: s.native_id().to_string(),
        account_id: ACCOUNT.to_owned(),
        scope: "Evaluator User".to_owned(),
        iat: now,
        nbf: now,
        exp: now + 3600,
        jti: "hand-signed-0001".to_owned(),
        generation: 0,
        cred: gis_auth::token::credential_binding(&gis_auth::client::KeyDigest::of(
            &s.native_secret(),
        )),
    }
}

fn valid_claims_json(s: &Server) -> Value {
    serde_json::to_value(valid_claims(s)).expect("claims serialize")
}

/// The header the server's tokens carry.
fn valid_header() -> Value {
    json!({"alg": "HS256", "typ": "at+jwt", "kid": ISSUER_KID})
}

fn typed_header() -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(ISSUER_KID.to_owned());
    header
}

fn sign_typed(header: &Header, claims: &AccessClaims) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(&ISSUER_SECRET)).expect("signs")
}

/// The three parts of a compact token.
fn parts(token: &str) -> [String; 3] {
    let mut it = token.split('.').map(str::to_owned);
    let p = [
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
    ];
    assert!(it.next().is_none(), "three parts");
    p
}

fn decode_part(part: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("Base64URL");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// 403 `insufficient_scope` because the token's roles fall short of the route's.
#[track_caller]
fn assert_insufficient_role(reply: &Reply) {
    reply.assert_insufficient_scope();
    assert_eq!(reply.kind(), RejectionKind::InsufficientRole);
}
