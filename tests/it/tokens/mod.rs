//! The token exchange end to end, through the example server's router: `POST /oauth/token`
//! (client credentials grant) and the bearer tokens it mints on the protected routes. Forged
//! tokens, brute force, revocation, secret and signing-key rotation, and the verified-token
//! cache. Time is a `ManualClock` shared by the store, the issuer and the layer.

use crate::harness::app;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gis_auth::client::{Account, AccountId, ClientId, ClientSpec, Role, RoleSet, Status};
use gis_auth::clock::{Clock, ManualClock};
use gis_auth::store::{CreatedAccount, InMemoryStore};
use gis_auth::token::{AccessClaims, LockoutPolicy, SigningKey, TokenIssuer};
use gis_auth::{Rejection, RejectionKind};
use http::{HeaderMap, Request, StatusCode, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use tower::ServiceExt;

const START: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

/// The HS256 secret and key id of the server's issuer; forged tokens are signed with the
/// same secret so that only the attacked property differs from a real token.
const SECRET: [u8; 32] = [7u8; 32];
const KID: &str = "k1";

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

const ACCOUNT: &str = "acme";
/// Where requests come from unless a test says otherwise.
const CALLER: &str = "198.51.100.7";
const ELSEWHERE: &str = "192.0.2.44";
/// An Evaluator/Subscriber API.
const GEOCODE: &str = "/geocode?q=Paris";
/// A User API.
const PROFILE: &str = "/account/profile";

fn secs(n: i64) -> time::Duration {
    time::Duration::seconds(n)
}

fn roles<const N: usize>(roles: [Role; N]) -> RoleSet {
    RoleSet::from_iter(roles)
}

// ---- the server --------------------------------------------------------------------------

/// The example router over a store holding the account `acme` (User, Evaluator) with its two
/// default clients, on a manual clock.
struct Server {
    router: Router,
    store: Arc<InMemoryStore>,
    clock: ManualClock,
    issuer: TokenIssuer,
    acme: CreatedAccount,
}

impl Server {
    fn new() -> Server {
        Server::build(hs256(KID, &SECRET), None)
    }

    fn with_lockout(policy: LockoutPolicy) -> Server {
        Server::build(hs256(KID, &SECRET), Some(policy))
    }

    fn build(key: SigningKey, lockout: Option<LockoutPolicy>) -> Server {
        let clock = ManualClock::new(START);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let store = Arc::new(InMemoryStore::with_clock(shared.clone()));
        let account = Account::new(
            AccountId::new(ACCOUNT).expect("a valid account id"),
            "Acme Maps",
            roles([Role::USER, Role::EVALUATOR]),
        )
        .expect("a valid account");
        let acme = store
            .create_account(account)
            .expect("the account is stored");
        let issuer = TokenIssuer::new(key).clock(shared.clone());
        let router = app::router(
            store.clone(),
            app::Options {
                token_issuer: Some(issuer.clone()),
                lockout,
                clock: Some(shared),
                // the default verifier for the issuer's tokens, no trusted proxies
                ..app::Options::default()
            },
        )
        .expect("the example's routes are valid");
        Server {
            router,
            store,
            clock,
            issuer,
            acme,
        }
    }

    fn account_id(&self) -> AccountId {
        self.acme.account.id.clone()
    }

    /// The default NativeConfidential client of `acme`.
    fn native_id(&self) -> ClientId {
        self.acme.native.client.id().clone()
    }

    /// Its secret as created.
    fn native_secret(&self) -> String {
        self.acme.native.credential.expose().to_owned()
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// Creates another NativeConfidential client of `acme`; gives its id and secret.
    fn native_client(&self, spec: ClientSpec) -> (ClientId, String) {
        let made = self
            .store
            .create_client(&self.account_id(), spec)
            .expect("the client is valid");
        (
            made.client.id().clone(),
            made.credential.expose().to_owned(),
        )
    }

    fn update_client(&self, id: &ClientId, change: impl FnOnce(&mut ClientSpec)) {
        self.store
            .update_client(id, change)
            .expect("the change is valid");
    }

    fn update_account(&self, change: impl FnOnce(&mut Account)) {
        self.store
            .update_account(&self.account_id(), change)
            .expect("the change is valid");
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let (parts, body) = res.into_parts();
        Reply {
            status: parts.status,
            rejection: parts.extensions.get::<Rejection>().cloned(),
            headers: parts.headers,
            body: axum::body::to_bytes(body, 1 << 20)
                .await
                .expect("the body reads"),
        }
    }

    /// `client_secret_post` from [`CALLER`].
    async fn exchange(&self, id: &str, secret: &str) -> Reply {
        self.send(token_request(&post_form(id, secret))).await
    }

    /// `client_secret_basic` from [`CALLER`].
    async fn exchange_basic(&self, id: &str, secret: &str) -> Reply {
        self.send(with_basic(token_request(GRANT), id, secret))
            .await
    }

    /// A token for `id`, which must be granted.
    async fn token_for(&self, id: &ClientId, secret: &str) -> String {
        let reply = self.exchange(id.as_str(), secret).await;
        access_token(&assert_token_response(&reply))
    }

    /// A token for the default NativeConfidential client.
    async fn token(&self) -> String {
        self.token_for(&self.native_id(), &self.native_secret())
            .await
    }

    /// `GET path` with the bearer token, from [`CALLER`].
    async fn call(&self, path: &str, token: &str) -> Reply {
        self.send(bearer(path, token)).await
    }

    /// `GET path` with the bearer token, from `peer`.
    async fn call_from(&self, path: &str, token: &str, peer: &str) -> Reply {
        self.send(from_peer(bearer(path, token), peer)).await
    }
}

fn hs256(kid: &str, secret: &[u8]) -> SigningKey {
    SigningKey::hs256(kid, secret).expect("a valid HS256 key")
}

fn es256(kid: &str) -> SigningKey {
    SigningKey::es256_pem(
        kid,
        ES256_PRIVATE_PEM.as_bytes(),
        ES256_PUBLIC_PEM.as_bytes(),
    )
    .expect("a valid P-256 key pair")
}

// ---- requests and replies ------------------------------------------------------------------

const GRANT: &str = "grant_type=client_credentials";

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn post_form(id: &str, secret: &str) -> String {
    format!(
        "{GRANT}&client_id={}&client_secret={}",
        form_encode(id),
        form_encode(secret)
    )
}

fn from_peer(mut req: Request<Body>, peer: &str) -> Request<Body> {
    let addr: SocketAddr = format!("{peer}:40000").parse().expect("a peer address");
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

/// `POST /oauth/token` with a form body, from [`CALLER`].
fn token_request(form: &str) -> Request<Body> {
    let req = Request::post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("a request");
    from_peer(req, CALLER)
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined and Base64-encoded.
fn basic_value(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(id), form_encode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

fn with_basic(mut req: Request<Body>, id: &str, secret: &str) -> Request<Body> {
    let value = basic_value(id, secret).parse().expect("a header value");
    req.headers_mut().insert(header::AUTHORIZATION, value);
    req
}

fn bearer(path: &str, token: &str) -> Request<Body> {
    let req = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("a request");
    from_peer(req, CALLER)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    rejection: Option<Rejection>,
    body: Bytes,
}

impl Reply {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn kind(&self) -> Option<RejectionKind> {
        self.rejection.as_ref().map(Rejection::kind)
    }

    fn describe(&self) -> String {
        format!("{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

/// A token response: 200, never cached, exactly `access_token`, `token_type`, `expires_in`
/// (and `scope` when the request narrowed it). Gives the body.
#[track_caller]
fn assert_token_response(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/json"));
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
    assert_eq!(reply.header(header::PRAGMA), Some("no-cache"));
    let body = reply.json();
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_u64(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let mut keys: BTreeSet<&str> = body
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.remove("scope");
    assert_eq!(
        keys,
        BTreeSet::from(["access_token", "expires_in", "token_type"])
    );
    body
}

/// The `access_token` of a token response body.
fn access_token(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .expect("a string access_token")
        .to_owned()
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

/// The handler answered.
#[track_caller]
fn assert_ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert!(reply.rejection.is_none());
}

/// The layer refused with this status and `error`, and says so in the extensions.
#[track_caller]
fn assert_refused(reply: &Reply, status: StatusCode, error: &str) {
    assert_eq!(reply.status, status, "{}", reply.describe());
    assert_eq!(reply.json()["error"], error, "{}", reply.describe());
    let rejection = reply.rejection.as_ref().expect("a rejection");
    assert_eq!(rejection.status(), status);
    assert_eq!(rejection.error_code(), error);
}

/// 401 `invalid_token` with an RFC 6750 challenge naming it.
#[track_caller]
fn assert_invalid_token(reply: &Reply) {
    assert_refused(reply, StatusCode::UNAUTHORIZED, "invalid_token");
    let challenge = reply.header(header::WWW_AUTHENTICATE).expect("a challenge");
    assert!(
        challenge.starts_with("Bearer realm=\"gis-auth\", error=\"invalid_token\""),
        "{challenge}"
    );
}

#[track_caller]
fn assert_insufficient_scope(reply: &Reply) {
    assert_refused(reply, StatusCode::FORBIDDEN, "insufficient_scope");
    assert_eq!(reply.kind(), Some(RejectionKind::InsufficientRole));
}

// ---- hand-made tokens ----------------------------------------------------------------------

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
    hmac_signed(header, claims, &SECRET)
}

/// The claims the server mints for its default native client, now.
fn valid_claims(s: &Server) -> AccessClaims {
    let now = s.now();
    AccessClaims {
        iss: "gis-auth".to_owned(),
        aud: "gis-auth".to_owned(),
        sub: s.native_id().to_string(),
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
    json!({"alg": "HS256", "typ": "at+jwt", "kid": KID})
}

fn typed_header() -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(KID.to_owned());
    header
}

fn sign_typed(header: &Header, claims: &AccessClaims) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(&SECRET)).expect("signs")
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

/// Signs the valid header and claims, checks that token is accepted, then signs them again
/// after `attack` changed them and checks that one is refused with 401 `invalid_token`.
async fn assert_attack_refused(s: &Server, attack: impl FnOnce(&mut Value, &mut Value)) -> Reply {
    let (mut header, mut claims) = (valid_header(), valid_claims_json(s));
    let control = sign_raw(&header, &claims);
    assert_ok(&s.call(GEOCODE, &control).await);
    attack(&mut header, &mut claims);
    let forged = sign_raw(&header, &claims);
    assert_ne!(forged, control, "the attack changed something");
    let reply = s.call(GEOCODE, &forged).await;
    assert_invalid_token(&reply);
    reply
}

/// The token is accepted on the geocoder.
async fn assert_accepted(s: &Server, header: &Value, claims: &Value) {
    assert_ok(&s.call(GEOCODE, &sign_raw(header, claims)).await);
}

// ---- 1. the happy path ---------------------------------------------------------------------

#[tokio::test]
async fn client_secret_basic_exchanges_for_a_one_hour_bearer_token() {
    let s = Server::new();
    let reply = s
        .exchange_basic(s.native_id().as_str(), &s.native_secret())
        .await;
    let body = assert_token_response(&reply);
    assert_eq!(body["expires_in"], 3600);
    assert!(body.get("scope").is_none(), "not narrowed: {body}");
}

#[tokio::test]
async fn client_secret_post_exchanges_for_a_one_hour_bearer_token() {
    let s = Server::new();
    let reply = s.exchange(s.native_id().as_str(), &s.native_secret()).await;
    let body = assert_token_response(&reply);
    assert_eq!(body["expires_in"], 3600);
    assert!(body.get("scope").is_none(), "not narrowed: {body}");
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
        assert_ok(&reply);
        assert_eq!(reply.json()["results"][0]["name"], "Paris");
        let reply = s.call(PROFILE, &token).await;
        assert_ok(&reply);
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
    assert_ok(&s.call(GEOCODE, &token).await);
    assert_insufficient_scope(&s.call(PROFILE, &token).await);
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

// ---- 2. endpoint errors: client authentication -----------------------------------------------

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

#[tokio::test]
async fn a_request_without_client_authentication_is_an_invalid_client() {
    let s = Server::new();
    let reply = s.send(token_request(GRANT)).await;
    assert_invalid_client(&reply, false);
    let only_secret = format!("{GRANT}&client_secret={}", s.native_secret());
    assert_invalid_client(&s.send(token_request(&only_secret)).await, false);
}

#[tokio::test]
async fn an_unknown_client_id_is_an_invalid_client() {
    let s = Server::new();
    assert_client_refused(&s, "cl_nobody", &s.native_secret(), CALLER).await;
}

#[tokio::test]
async fn a_wrong_secret_is_an_invalid_client() {
    let s = Server::new();
    let (_, other_secret) = s.native_client(ClientSpec::native("Other"));
    assert_client_refused(&s, s.native_id().as_str(), &other_secret, CALLER).await;
    assert_client_refused(&s, s.native_id().as_str(), "not-a-secret", CALLER).await;
}

#[tokio::test]
async fn an_empty_client_secret_is_an_invalid_client() {
    let s = Server::new();
    let id = s.native_id();
    let reference = invalid_client_body(&s).await;
    for form in [
        format!("{GRANT}&client_id={id}&client_secret="),
        format!("{GRANT}&client_id={id}"),
    ] {
        let reply = s.send(token_request(&form)).await;
        assert_invalid_client(&reply, false);
        assert_eq!(reply.body, reference);
    }
    assert_client_refused(&s, id.as_str(), "", CALLER).await;
}

#[tokio::test]
async fn an_inactive_client_is_an_invalid_client() {
    let s = Server::new();
    s.store
        .set_client_status(&s.native_id(), Status::Inactive)
        .expect("stored");
    assert_client_refused(&s, s.native_id().as_str(), &s.native_secret(), CALLER).await;
}

#[tokio::test]
async fn an_expired_client_is_an_invalid_client() {
    let s = Server::new();
    let at = s.clock.now() + secs(60);
    s.update_client(&s.native_id(), |spec| spec.expires_at = Some(at));
    assert_token_response(&s.exchange(s.native_id().as_str(), &s.native_secret()).await);
    s.clock.advance(secs(60));
    assert_client_refused(&s, s.native_id().as_str(), &s.native_secret(), CALLER).await;
}

#[tokio::test]
async fn a_client_of_an_inactive_account_is_an_invalid_client() {
    let s = Server::new();
    s.update_account(|a| a.status = Status::Inactive);
    assert_client_refused(&s, s.native_id().as_str(), &s.native_secret(), CALLER).await;
}

#[tokio::test]
async fn a_javascript_client_id_with_its_api_key_is_an_invalid_client() {
    let s = Server::new();
    let js = &s.acme.javascript;
    assert_client_refused(&s, js.client.id().as_str(), js.credential.expose(), CALLER).await;
}

#[tokio::test]
async fn a_caller_outside_the_clients_ip_rules_is_an_invalid_client() {
    let s = Server::new();
    let (id, secret) = s.native_client(ClientSpec::native("Batch").allowed_ips(["203.0.113.0/24"]));
    assert_client_refused(&s, id.as_str(), &secret, CALLER).await;
    // A forwarded address from an untrusted peer changes nothing.
    let mut req = token_request(&post_form(id.as_str(), &secret));
    req.headers_mut().insert(
        "x-forwarded-for",
        "203.0.113.9".parse().expect("a header value"),
    );
    assert_invalid_client(&s.send(req).await, false);
    // From inside the rules the same credentials work.
    let reply = s
        .send(from_peer(
            token_request(&post_form(id.as_str(), &secret)),
            "203.0.113.9",
        ))
        .await;
    assert_token_response(&reply);
}

#[tokio::test]
async fn a_malformed_basic_header_is_an_invalid_client_with_a_basic_challenge() {
    let s = Server::new();
    let reference = invalid_client_body(&s).await;
    for value in ["Basic", "Basic !!!", "Basic bm9jb2xvbg"] {
        let mut req = token_request(GRANT);
        req.headers_mut().insert(
            header::AUTHORIZATION,
            value.parse().expect("a header value"),
        );
        let reply = s.send(req).await;
        assert_invalid_client(&reply, true);
        assert_eq!(reply.body, reference);
    }
}

#[tokio::test]
async fn every_client_authentication_failure_has_the_same_body() {
    let s = Server::new();
    let (ip_bound, ip_secret) =
        s.native_client(ClientSpec::native("Batch").allowed_ips(["203.0.113.0/24"]));
    let (inactive, inactive_secret) =
        s.native_client(ClientSpec::native("Paused").status(Status::Inactive));
    let (expired, expired_secret) =
        s.native_client(ClientSpec::native("Old").expires_at(Some(s.clock.now() - secs(1))));
    let (_, other_secret) = s.native_client(ClientSpec::native("Other"));
    let native = s.native_id();
    let js = &s.acme.javascript;
    let mut bodies = BTreeSet::new();
    bodies.insert(invalid_client_body(&s).await);
    for (id, secret) in [
        ("cl_nobody", s.native_secret()),
        (native.as_str(), other_secret),
        (native.as_str(), String::new()),
        (inactive.as_str(), inactive_secret),
        (expired.as_str(), expired_secret),
        (js.client.id().as_str(), js.credential.expose().to_owned()),
        (ip_bound.as_str(), ip_secret),
    ] {
        bodies.extend(assert_client_refused(&s, id, &secret, CALLER).await);
    }
    // Last, as it affects every client of the account.
    s.update_account(|a| a.status = Status::Inactive);
    bodies.extend(assert_client_refused(&s, native.as_str(), &s.native_secret(), CALLER).await);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
}

// ---- 2. endpoint errors: the request -----------------------------------------------------------

#[tokio::test]
async fn a_missing_grant_type_is_an_invalid_request() {
    let s = Server::new();
    let form = format!(
        "client_id={}&client_secret={}",
        s.native_id(),
        s.native_secret()
    );
    assert_invalid_request(&s.send(token_request(&form)).await);
    let basic = with_basic(
        token_request(""),
        s.native_id().as_str(),
        &s.native_secret(),
    );
    assert_invalid_request(&s.send(basic).await);
}

#[tokio::test]
async fn an_empty_grant_type_is_an_invalid_request() {
    let s = Server::new();
    let form = format!(
        "grant_type=&client_id={}&client_secret={}",
        s.native_id(),
        s.native_secret()
    );
    assert_invalid_request(&s.send(token_request(&form)).await);
}

#[tokio::test]
async fn a_repeated_grant_type_is_an_invalid_request() {
    let s = Server::new();
    let form = format!(
        "{GRANT}&{}",
        post_form(s.native_id().as_str(), &s.native_secret())
    );
    assert_invalid_request(&s.send(token_request(&form)).await);
}

#[tokio::test]
async fn a_repeated_parameter_is_an_invalid_request() {
    let s = Server::new();
    let base = post_form(s.native_id().as_str(), &s.native_secret());
    for extra in [
        format!("&client_id={}", s.native_id()),
        format!("&client_secret={}", s.native_secret()),
        "&scope=Evaluator&scope=User".to_owned(),
    ] {
        let reply = s.send(token_request(&format!("{base}{extra}"))).await;
        assert_invalid_request(&reply);
    }
}

#[tokio::test]
async fn the_password_grant_is_an_unsupported_grant_type() {
    let s = Server::new();
    let form = format!(
        "grant_type=password&username=u&password=p&client_id={}&client_secret={}",
        s.native_id(),
        s.native_secret()
    );
    let reply = s.send(token_request(&form)).await;
    assert_endpoint_error(&reply, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    assert!(reply.headers.get(header::WWW_AUTHENTICATE).is_none());
}

#[tokio::test]
async fn a_scope_beyond_the_clients_roles_is_an_invalid_scope() {
    let s = Server::new();
    let (narrow, narrow_secret) =
        s.native_client(ClientSpec::native("Maps only").roles(roles([Role::EVALUATOR])));
    for (id, secret, scope) in [
        (s.native_id(), s.native_secret(), "Subscriber"),
        (s.native_id(), s.native_secret(), "Evaluator Subscriber"),
        (narrow.clone(), narrow_secret.clone(), "User"),
        (narrow, narrow_secret, "Evaluator User"),
    ] {
        let form = format!(
            "{}&scope={}",
            post_form(id.as_str(), &secret),
            form_encode(scope)
        );
        let reply = s.send(token_request(&form)).await;
        assert_endpoint_error(&reply, StatusCode::BAD_REQUEST, "invalid_scope");
    }
}

#[tokio::test]
async fn client_credentials_in_the_query_string_are_an_invalid_request() {
    let s = Server::new();
    let (id, secret) = (s.native_id(), s.native_secret());
    for query in [
        format!("client_id={id}"),
        format!("client_secret={secret}"),
        format!("client_id={id}&client_secret={secret}"),
    ] {
        let req = Request::post(format!("/oauth/token?{query}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(post_form(id.as_str(), &secret)))
            .expect("a request");
        let reply = s.send(from_peer(req, CALLER)).await;
        assert_invalid_request(&reply);
        assert!(!String::from_utf8_lossy(&reply.body).contains(&secret));
    }
}

#[tokio::test]
async fn basic_and_body_credentials_together_are_an_invalid_request() {
    let s = Server::new();
    let (id, secret) = (s.native_id(), s.native_secret());
    for form in [
        post_form(id.as_str(), &secret),
        format!("{GRANT}&client_id={id}"),
        format!("{GRANT}&client_secret={secret}"),
    ] {
        let req = with_basic(token_request(&form), id.as_str(), &secret);
        assert_invalid_request(&s.send(req).await);
    }
}

#[tokio::test]
async fn a_get_is_method_not_allowed_with_allow_post() {
    let s = Server::new();
    let req = Request::get(format!(
        "/oauth/token?{}",
        post_form(s.native_id().as_str(), &s.native_secret())
    ))
    .body(Body::empty())
    .expect("a request");
    let reply = s.send(from_peer(req, CALLER)).await;
    assert_eq!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        reply.describe()
    );
    assert_eq!(reply.header(header::ALLOW), Some("POST"));
    assert_eq!(reply.json()["error"], "invalid_request");
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
}

#[tokio::test]
async fn a_body_over_eight_kibibytes_is_payload_too_large() {
    let s = Server::new();
    let form = format!(
        "{}&padding={}",
        post_form(s.native_id().as_str(), &s.native_secret()),
        "x".repeat(8 * 1024)
    );
    // Announced by Content-Length, and found while reading a body without one.
    let mut announced = token_request(&form);
    announced.headers_mut().insert(
        header::CONTENT_LENGTH,
        form.len().to_string().parse().expect("a header value"),
    );
    for req in [announced, token_request(&form)] {
        let reply = s.send(req).await;
        assert_endpoint_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
    }
    // Just under the limit is read.
    let fits = format!(
        "{}&padding=",
        post_form(s.native_id().as_str(), &s.native_secret())
    );
    let fits = format!("{fits}{}", "x".repeat(8 * 1024 - fits.len()));
    assert_token_response(&s.send(token_request(&fits)).await);
}

#[tokio::test]
async fn a_json_body_is_an_invalid_request() {
    let s = Server::new();
    let body = json!({
        "grant_type": "client_credentials",
        "client_id": s.native_id().as_str(),
        "client_secret": s.native_secret(),
    });
    let req = Request::post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("a request");
    assert_invalid_request(&s.send(from_peer(req, CALLER)).await);
    // Basic credentials do not rescue a body of the wrong type.
    let req = Request::post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
        .expect("a request");
    let req = with_basic(
        from_peer(req, CALLER),
        s.native_id().as_str(),
        &s.native_secret(),
    );
    assert_invalid_request(&s.send(req).await);
}

// ---- 3. lockout --------------------------------------------------------------------------------

/// `n` failed authentications of `id` from `peer`, each an ordinary `invalid_client`.
async fn fail(s: &Server, id: &str, peer: &str, n: usize) {
    for _ in 0..n {
        let reply = s
            .send(from_peer(token_request(&post_form(id, "wrong")), peer))
            .await;
        assert_invalid_client(&reply, false);
    }
}

async fn exchange_from(s: &Server, id: &ClientId, secret: &str, peer: &str) -> Reply {
    s.send(from_peer(
        token_request(&post_form(id.as_str(), secret)),
        peer,
    ))
    .await
}

#[tokio::test]
async fn twenty_wrong_secrets_lock_the_client_out_from_that_address() {
    let s = Server::new();
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 20).await;
    // The right secret is refused too: the lockout is no oracle.
    let reply = exchange_from(&s, &id, &s.native_secret(), CALLER).await;
    assert_locked_out(&reply, 600);
    let basic = with_basic(token_request(GRANT), id.as_str(), &s.native_secret());
    assert_locked_out(&s.send(basic).await, 600);
}

#[tokio::test]
async fn nineteen_wrong_secrets_do_not_lock_the_client_out() {
    let s = Server::new();
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 19).await;
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
}

#[tokio::test]
async fn a_locked_out_client_still_gets_tokens_from_another_address() {
    let s = Server::new();
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 20).await;
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), CALLER).await,
        600,
    );
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await);
    // And other clients from the locked-out address are unaffected.
    let (other, other_secret) = s.native_client(ClientSpec::native("Other"));
    assert_token_response(&exchange_from(&s, &other, &other_secret, CALLER).await);
}

#[tokio::test]
async fn the_lockout_ends_with_its_window() {
    let s = Server::new();
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 20).await;
    s.clock.advance(secs(599));
    assert_locked_out(&exchange_from(&s, &id, &s.native_secret(), CALLER).await, 1);
    s.clock.advance(secs(1));
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
}

#[tokio::test]
async fn one_address_guessing_many_client_ids_is_locked_out() {
    let s = Server::new();
    for i in 0..100 {
        fail(&s, &format!("cl_guess{i}"), CALLER, 1).await;
    }
    let id = s.native_id();
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), CALLER).await,
        600,
    );
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await);
    s.clock.advance(secs(600));
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
}

#[tokio::test]
async fn successful_exchanges_never_count_towards_the_lockout() {
    let s = Server::new();
    let id = s.native_id();
    for _ in 0..25 {
        assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
    }
    fail(&s, id.as_str(), CALLER, 19).await;
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
}

#[tokio::test]
async fn the_lockout_policy_of_the_options_is_applied() {
    let s = Server::with_lockout(LockoutPolicy {
        per_client_and_address: 3,
        per_address: 5,
        window: Duration::from_secs(60),
    });
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 3).await;
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), CALLER).await,
        60,
    );
    fail(&s, "cl_a", ELSEWHERE, 2).await;
    fail(&s, "cl_b", ELSEWHERE, 2).await;
    fail(&s, "cl_c", ELSEWHERE, 1).await;
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await,
        60,
    );
    s.clock.advance(secs(60));
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await);
}

// ---- 4. forged tokens --------------------------------------------------------------------------

#[tokio::test]
async fn a_hand_signed_token_with_the_real_claims_is_accepted() {
    let s = Server::new();
    // Through the jsonwebtoken encoder, with the typed claims…
    let token = sign_typed(&typed_header(), &valid_claims(&s));
    assert_ok(&s.call(GEOCODE, &token).await);
    assert_ok(&s.call(PROFILE, &token).await);
    // …and byte by byte, as the attacks below are built.
    let token = sign_raw(&valid_header(), &valid_claims_json(&s));
    assert_ok(&s.call(GEOCODE, &token).await);
    assert_ok(&s.call(PROFILE, &token).await);
}

#[tokio::test]
async fn alg_none_is_refused_in_any_case() {
    let s = Server::new();
    let claims = valid_claims_json(&s);
    assert_accepted(&s, &valid_header(), &claims).await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": KID});
        let message = format!("{}.{}", b64_json(&header), b64_json(&claims));
        for signature in [
            String::new(),
            URL_SAFE_NO_PAD.encode("bogus signature"),
            hmac(&message, &SECRET),
        ] {
            let reply = s.call(GEOCODE, &format!("{message}.{signature}")).await;
            assert_invalid_token(&reply);
        }
    }
}

#[tokio::test]
async fn an_rs256_header_with_an_hmac_signature_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |h, _| h["alg"] = json!("RS256")).await;
}

#[tokio::test]
async fn an_es256_header_with_an_hmac_signature_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |h, _| h["alg"] = json!("ES256")).await;
}

#[tokio::test]
async fn an_hs256_token_is_refused_by_an_issuer_pinned_to_es256() {
    let s = Server::build(es256("ec1"), None);
    // The issuer's own ES256 tokens work.
    let token = s.token().await;
    assert_eq!(decode_part(&parts(&token)[0])["alg"], "ES256");
    assert_ok(&s.call(GEOCODE, &token).await);
    // The same claims under HS256, keyed with the public key (the classic confusion) or
    // with anything else, are refused.
    let claims = decode_part(&parts(&token)[1]);
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "ec1"});
    for secret in [ES256_PUBLIC_PEM.as_bytes(), &SECRET] {
        let forged = hmac_signed(&header, &claims, secret);
        assert_invalid_token(&s.call(GEOCODE, &forged).await);
    }
}

#[tokio::test]
async fn a_tampered_scope_is_refused() {
    let s = Server::new();
    let form = format!(
        "{}&scope=Evaluator",
        post_form(s.native_id().as_str(), &s.native_secret())
    );
    let body = assert_token_response(&s.send(token_request(&form)).await);
    let token = access_token(&body);
    assert_ok(&s.call(GEOCODE, &token).await);
    assert_insufficient_scope(&s.call(PROFILE, &token).await);
    let [header, payload, signature] = parts(&token);
    let mut claims = decode_part(&payload);
    claims["scope"] = json!("Evaluator User");
    let tampered = format!("{header}.{}.{signature}", b64_json(&claims));
    assert_invalid_token(&s.call(PROFILE, &tampered).await);
    assert_invalid_token(&s.call(GEOCODE, &tampered).await);
}

#[tokio::test]
async fn a_tampered_subject_is_refused() {
    let s = Server::new();
    let (other, _) = s.native_client(ClientSpec::native("Other"));
    let token = s.token().await;
    assert_ok(&s.call(GEOCODE, &token).await);
    let [header, payload, signature] = parts(&token);
    let mut claims = decode_part(&payload);
    claims["sub"] = json!(other.as_str());
    let tampered = format!("{header}.{}.{signature}", b64_json(&claims));
    assert_invalid_token(&s.call(GEOCODE, &tampered).await);
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let s = Server::new();
    let token = s.token().await;
    let [header, payload, signature] = parts(&token);
    let mut flipped = signature.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ASCII");
    let message = format!("{header}.{payload}");
    for signature in [
        flipped,
        hmac(&message, &[8u8; 32]),
        String::new(),
        format!("{signature}A"),
    ] {
        assert_invalid_token(&s.call(GEOCODE, &format!("{message}.{signature}")).await);
    }
    assert_ok(&s.call(GEOCODE, &token).await);
}

#[tokio::test]
async fn a_token_is_refused_once_expired() {
    let s = Server::new();
    let token = s.token().await;
    s.clock.advance(secs(3600));
    let reply = s.call(GEOCODE, &token).await;
    assert_invalid_token(&reply);
    assert_eq!(reply.kind(), Some(RejectionKind::Expired));
}

#[tokio::test]
async fn a_token_is_expired_at_the_exact_second_of_its_exp() {
    let s = Server::new();
    let mut claims = valid_claims_json(&s);
    claims["exp"] = json!(s.now() + 1);
    assert_accepted(&s, &valid_header(), &claims).await;
    let reply = assert_attack_refused(&s, |_, c| c["exp"] = json!(c["iat"])).await;
    assert_eq!(reply.kind(), Some(RejectionKind::Expired));
}

#[tokio::test]
async fn an_nbf_beyond_the_leeway_is_refused() {
    let s = Server::new();
    let now = s.now();
    let mut claims = valid_claims_json(&s);
    claims["nbf"] = json!(now + 5);
    assert_accepted(&s, &valid_header(), &claims).await;
    assert_attack_refused(&s, |_, c| c["nbf"] = json!(now + 6)).await;
}

#[tokio::test]
async fn an_iat_beyond_the_leeway_is_refused() {
    let s = Server::new();
    let now = s.now();
    let mut claims = valid_claims_json(&s);
    claims["iat"] = json!(now + 5);
    assert_accepted(&s, &valid_header(), &claims).await;
    assert_attack_refused(&s, |_, c| c["iat"] = json!(now + 6)).await;
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |_, c| c["iss"] = json!("https://attacker.example")).await;
}

#[tokio::test]
async fn a_missing_issuer_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |_, c| {
        c.as_object_mut().expect("an object").remove("iss");
    })
    .await;
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |_, c| c["aud"] = json!("another-api")).await;
}

#[tokio::test]
async fn a_missing_audience_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |_, c| {
        c.as_object_mut().expect("an object").remove("aud");
    })
    .await;
}

#[tokio::test]
async fn a_typ_other_than_at_jwt_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |h, _| h["typ"] = json!("JWT")).await;
}

#[tokio::test]
async fn a_missing_typ_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |h, _| {
        h.as_object_mut().expect("an object").remove("typ");
    })
    .await;
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |h, _| h["kid"] = json!("k9")).await;
}

#[tokio::test]
async fn a_missing_kid_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |h, _| {
        h.as_object_mut().expect("an object").remove("kid");
    })
    .await;
}

#[tokio::test]
async fn a_string_exp_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |_, c| c["exp"] = json!("9999999999")).await;
}

#[tokio::test]
async fn an_exp_of_u64_max_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |_, c| c["exp"] = json!(u64::MAX)).await;
}

#[tokio::test]
async fn an_exp_of_1e300_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |_, c| c["exp"] = json!(1e300)).await;
}

#[tokio::test]
async fn a_negative_exp_is_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |_, c| c["exp"] = json!(-1)).await;
    assert_attack_refused(&s, |_, c| c["exp"] = json!(i64::MIN)).await;
}

/// The attacked header must still parse, so that the refusal comes from the header check.
fn assert_header_parses(header: &Value, claims: &Value) -> jsonwebtoken::Header {
    jsonwebtoken::decode_header(sign_raw(header, claims)).expect("a header jsonwebtoken reads")
}

#[tokio::test]
async fn a_jku_header_is_refused() {
    let s = Server::new();
    let jku = json!("https://attacker.example/jwks.json");
    let mut header = valid_header();
    header["jku"] = jku.clone();
    assert!(
        assert_header_parses(&header, &valid_claims_json(&s))
            .jku
            .is_some()
    );
    assert_attack_refused(&s, |h, _| h["jku"] = jku).await;
}

#[tokio::test]
async fn an_x5u_header_is_refused() {
    let s = Server::new();
    let x5u = json!("https://attacker.example/cert.pem");
    let mut header = valid_header();
    header["x5u"] = x5u.clone();
    assert!(
        assert_header_parses(&header, &valid_claims_json(&s))
            .x5u
            .is_some()
    );
    assert_attack_refused(&s, |h, _| h["x5u"] = x5u).await;
}

#[tokio::test]
async fn an_embedded_jwk_header_is_refused() {
    let s = Server::new();
    // The very secret the token is signed with, offered as the key to check it with.
    let jwk = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(SECRET), "alg": "HS256"});
    let mut header = valid_header();
    header["jwk"] = jwk.clone();
    assert!(
        assert_header_parses(&header, &valid_claims_json(&s))
            .jwk
            .is_some()
    );
    assert_attack_refused(&s, |h, _| h["jwk"] = jwk).await;
}

#[tokio::test]
async fn x5c_and_crit_headers_are_refused() {
    let s = Server::new();
    assert_attack_refused(&s, |h, _| h["x5c"] = json!(["MIIB"])).await;
    assert_attack_refused(&s, |h, _| h["crit"] = json!(["exp"])).await;
}

// ---- 5. revocation, on the very next request ---------------------------------------------------

/// Ways to take away what a working token of `acme`'s default native client relied on.
#[derive(Debug, Clone, Copy)]
enum Revocation {
    DeactivateClient,
    DeleteClient,
    RegenerateSecret,
    RemoveClientRole,
    RemoveAccountRole,
    DeactivateAccount,
    ExpireClient,
    ExcludeCallerIp,
}

impl Revocation {
    fn apply(self, s: &Server) {
        let id = s.native_id();
        match self {
            Revocation::DeactivateClient => {
                s.store
                    .set_client_status(&id, Status::Inactive)
                    .expect("stored");
            }
            Revocation::DeleteClient => {
                s.store.delete_client(&id).expect("deleted");
            }
            Revocation::RegenerateSecret => {
                s.store.regenerate(&id, None).expect("regenerated");
            }
            Revocation::RemoveClientRole => {
                s.update_client(&id, |spec| spec.roles = Some(roles([Role::EVALUATOR])));
            }
            Revocation::RemoveAccountRole => {
                s.update_account(|a| a.roles = roles([Role::EVALUATOR]));
            }
            Revocation::DeactivateAccount => s.update_account(|a| a.status = Status::Inactive),
            Revocation::ExpireClient => {
                let at = s.clock.now() + secs(60);
                s.update_client(&id, |spec| spec.expires_at = Some(at));
                s.clock.advance(secs(60));
            }
            Revocation::ExcludeCallerIp => {
                s.update_client(&id, |spec| {
                    spec.allowed_ips = vec!["203.0.113.0/24".to_owned()];
                });
            }
        }
    }

    /// What the next request to the profile gets.
    fn refusal(self) -> (StatusCode, &'static str, RejectionKind) {
        use RejectionKind::*;
        let invalid = |kind| (StatusCode::UNAUTHORIZED, "invalid_token", kind);
        match self {
            Revocation::DeactivateClient | Revocation::DeactivateAccount => invalid(Inactive),
            Revocation::DeleteClient => invalid(UnknownCredential),
            Revocation::RegenerateSecret => invalid(Revoked),
            Revocation::ExpireClient => invalid(Expired),
            Revocation::RemoveClientRole | Revocation::RemoveAccountRole => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                InsufficientRole,
            ),
            Revocation::ExcludeCallerIp => (StatusCode::FORBIDDEN, "access_denied", IpNotAllowed),
        }
    }
}

/// Uses a fresh token `uses` times, revokes, and checks the very next request is refused.
async fn assert_next_request_refused(how: Revocation, uses: usize) -> (Server, String) {
    let s = Server::new();
    let token = s.token().await;
    for _ in 0..uses {
        assert_ok(&s.call(PROFILE, &token).await);
        assert_ok(&s.call(GEOCODE, &token).await);
    }
    how.apply(&s);
    let (status, error, kind) = how.refusal();
    let reply = s.call(PROFILE, &token).await;
    assert_refused(&reply, status, error);
    assert_eq!(reply.kind(), Some(kind), "{how:?}: {}", reply.describe());
    if status == StatusCode::UNAUTHORIZED {
        assert_invalid_token(&reply);
    }
    (s, token)
}

#[tokio::test]
async fn deactivating_the_client_refuses_its_token_on_the_next_request() {
    assert_next_request_refused(Revocation::DeactivateClient, 1).await;
}

#[tokio::test]
async fn reactivating_the_client_makes_the_same_token_work_again() {
    let (s, token) = assert_next_request_refused(Revocation::DeactivateClient, 1).await;
    s.store
        .set_client_status(&s.native_id(), Status::Active)
        .expect("stored");
    assert_ok(&s.call(PROFILE, &token).await);
}

#[tokio::test]
async fn deleting_the_client_refuses_its_token_on_the_next_request() {
    assert_next_request_refused(Revocation::DeleteClient, 1).await;
}

#[tokio::test]
async fn a_deleted_clients_token_is_not_revived_by_a_new_client_with_the_same_id() {
    let s = Server::new();
    let batch = ClientId::new("batch").expect("a valid id");
    let (_, secret) = s.native_client(ClientSpec::native("Batch").id(batch.clone()));
    let token = s.token_for(&batch, &secret).await;
    assert_ok(&s.call(GEOCODE, &token).await);
    s.store.delete_client(&batch).expect("deleted");
    assert_invalid_token(&s.call(GEOCODE, &token).await);
    // The id is given to a new client, with a new secret: the old token stays dead.
    let (_, new_secret) = s.native_client(ClientSpec::native("Batch, again").id(batch.clone()));
    assert_ne!(new_secret, secret);
    assert_invalid_token(&s.call(GEOCODE, &token).await);
}

#[tokio::test]
async fn regenerating_the_secret_without_grace_revokes_its_tokens_on_the_next_request() {
    assert_next_request_refused(Revocation::RegenerateSecret, 1).await;
}

#[tokio::test]
async fn removing_a_role_from_the_client_refuses_the_route_needing_it() {
    let (s, token) = assert_next_request_refused(Revocation::RemoveClientRole, 1).await;
    assert_ok(&s.call(GEOCODE, &token).await);
}

#[tokio::test]
async fn removing_a_role_from_the_account_refuses_the_route_needing_it() {
    let (s, token) = assert_next_request_refused(Revocation::RemoveAccountRole, 1).await;
    assert_ok(&s.call(GEOCODE, &token).await);
    s.update_account(|a| a.roles = roles([Role::USER, Role::EVALUATOR]));
    assert_ok(&s.call(PROFILE, &token).await);
}

#[tokio::test]
async fn deactivating_the_account_refuses_its_clients_tokens_on_the_next_request() {
    let (s, token) = assert_next_request_refused(Revocation::DeactivateAccount, 1).await;
    assert_invalid_token(&s.call(GEOCODE, &token).await);
}

#[tokio::test]
async fn reactivating_the_account_makes_the_same_token_work_again() {
    let (s, token) = assert_next_request_refused(Revocation::DeactivateAccount, 1).await;
    s.update_account(|a| a.status = Status::Active);
    assert_ok(&s.call(PROFILE, &token).await);
}

#[tokio::test]
async fn an_expired_client_has_its_token_refused_on_the_next_request() {
    assert_next_request_refused(Revocation::ExpireClient, 1).await;
}

#[tokio::test]
async fn a_token_never_outlives_its_client() {
    let s = Server::new();
    let at = s.clock.now() + secs(600);
    s.update_client(&s.native_id(), |spec| spec.expires_at = Some(at));
    let body = assert_token_response(&s.exchange(s.native_id().as_str(), &s.native_secret()).await);
    assert_eq!(body["expires_in"], 600);
}

#[tokio::test]
async fn an_ip_rule_excluding_the_caller_refuses_the_token_on_the_next_request() {
    let (s, token) = assert_next_request_refused(Revocation::ExcludeCallerIp, 1).await;
    let reply = s.call(PROFILE, &token).await;
    assert!(reply.headers.get(header::WWW_AUTHENTICATE).is_none());
    assert_ok(&s.call_from(PROFILE, &token, "203.0.113.9").await);
}

// ---- 6. rotation -------------------------------------------------------------------------------

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
    assert_ok(&s.call(PROFILE, &old_token).await);
    let from_old = s.token_for(&id, &old_secret).await;
    let from_new = s.token_for(&id, &new_secret).await;
    s.clock.advance(secs(3599));
    for token in [&old_token, &from_old, &from_new] {
        assert_ok(&s.call(PROFILE, token).await);
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
    assert_ok(&s.call(PROFILE, &old_token).await);
    s.clock.advance(secs(1800));
    let reply = s.call(PROFILE, &old_token).await;
    assert_invalid_token(&reply);
    assert_eq!(reply.kind(), Some(RejectionKind::Revoked));
    assert_client_refused(&s, id.as_str(), &old_secret, CALLER).await;
    assert_ok(&s.call(PROFILE, &new_token).await);
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
    assert_ok(&s.call(PROFILE, &from_old).await);
    s.store.retire_previous(&id).expect("retired");
    for token in [&old_token, &from_old] {
        let reply = s.call(PROFILE, token).await;
        assert_invalid_token(&reply);
        assert_eq!(reply.kind(), Some(RejectionKind::Revoked));
    }
    assert_client_refused(&s, id.as_str(), &old_secret, CALLER).await;
    let from_new = s.token_for(&id, &new_secret).await;
    assert_ok(&s.call(PROFILE, &from_new).await);
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
        assert_invalid_token(&reply);
        assert_eq!(reply.kind(), Some(RejectionKind::Revoked));
    }
    assert_client_refused(&s, id.as_str(), &first_secret, CALLER).await;
    assert_client_refused(&s, id.as_str(), &second_secret, CALLER).await;
    let third_token = s.token_for(&id, &third_secret).await;
    assert_ok(&s.call(PROFILE, &third_token).await);
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
    assert_invalid_token(&reply);
    assert_eq!(reply.kind(), Some(RejectionKind::Revoked));
    assert_client_refused(&s, id.as_str(), &first_secret, CALLER).await;
    assert_ok(&s.call(PROFILE, &second_token).await);
    assert_token_response(&s.exchange(id.as_str(), &second_secret).await);
    assert_token_response(&s.exchange(id.as_str(), &third_secret).await);
}

#[tokio::test]
async fn a_rotated_signing_key_keeps_old_tokens_valid_through_its_grace() {
    let s = Server::new();
    let old_token = s.token().await;
    assert_ok(&s.call(PROFILE, &old_token).await);
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
    assert_eq!(kid(&old_token), KID);
    assert_eq!(kid(&new_token), "k2");
    s.clock.advance(secs(599));
    assert_ok(&s.call(PROFILE, &old_token).await);
    assert_ok(&s.call(PROFILE, &new_token).await);
    s.clock.advance(secs(1));
    assert_invalid_token(&s.call(PROFILE, &old_token).await);
    assert_ok(&s.call(PROFILE, &new_token).await);
    // A token signed with the retired key after its grace is refused, even when fresh.
    assert_invalid_token(
        &s.call(PROFILE, &sign_raw(&valid_header(), &valid_claims_json(&s)))
            .await,
    );
}

// ---- 7. the verified-token cache ---------------------------------------------------------------

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
        assert_ok(&s.call(GEOCODE, &token).await);
    }
    s.clock.advance(secs(3599));
    assert_ok(&s.call(GEOCODE, &token).await);
    s.clock.advance(secs(1));
    let reply = s.call(GEOCODE, &token).await;
    assert_invalid_token(&reply);
    assert_eq!(reply.kind(), Some(RejectionKind::Expired));
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
        assert_ok(&s.call(PROFILE, &token).await);
    }
    s.store.retire_previous(&id).expect("retired");
    let reply = s.call(PROFILE, &token).await;
    assert_invalid_token(&reply);
    assert_eq!(reply.kind(), Some(RejectionKind::Revoked));
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_signing_keys_grace_ends() {
    let s = Server::new();
    let token = s.token().await;
    for _ in 0..CACHED {
        assert_ok(&s.call(PROFILE, &token).await);
    }
    s.issuer
        .rotate_key(hs256("k2", &[9u8; 32]), Duration::from_secs(600))
        .expect("rotated");
    assert_ok(&s.call(PROFILE, &token).await);
    s.clock.advance(secs(600));
    assert_invalid_token(&s.call(PROFILE, &token).await);
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_kid_names_another_key() {
    let s = Server::new();
    let cached = s.token().await;
    let never_used = s.token().await;
    for _ in 0..CACHED {
        assert_ok(&s.call(PROFILE, &cached).await);
    }
    // Retire `k1` at once, then give its id to a new key with another secret.
    let rotate = |kid: &str, secret: u8| {
        s.issuer
            .rotate_key(hs256(kid, &[secret; 32]), Duration::ZERO)
            .expect("rotated");
    };
    rotate("k2", 2);
    rotate("k3", 3);
    rotate(KID, 4);
    assert_eq!(s.issuer.current_kid(), KID);
    // Neither token was signed by the key now called `k1`.
    assert_invalid_token(&s.call(PROFILE, &never_used).await);
    assert_invalid_token(&s.call(PROFILE, &cached).await);
}
