//! The example server (`cargo run --example gis_server`) over HTTP: its routes behind the
//! layer, the clients file, the credential lines it prints and its flags.

use crate::harness::app;
use crate::harness::bench;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use gis_auth::client::{AccountId, ClientId, ClientKind, CredentialKind, PlainCredential, Role};
use gis_auth::clock::ManualClock;
use gis_auth::store::{ClientStore, GeneratedCredential, InMemoryStore};
use gis_auth::token::{TokenVerifier, VerifiedToken, VerifyError};
use gis_auth::{Rejection, RejectionKind};
use http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::Value;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Accepts a fixed set of bearer tokens, each standing for one NativeConfidential client,
/// and reads that client from the store as a real verifier would.
struct FixedTokens {
    store: Arc<InMemoryStore>,
    tokens: Vec<(String, ClientId)>,
}

#[async_trait]
impl TokenVerifier for FixedTokens {
    async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let unknown = || VerifyError::Invalid(RejectionKind::UnknownCredential);
        let (_, id) = self
            .tokens
            .iter()
            .find(|(t, _)| t == token)
            .ok_or_else(unknown)?;
        let found = self.store.resolve_id(id).await?.ok_or_else(unknown)?;
        if found.client.kind() != ClientKind::NativeConfidential {
            return Err(unknown());
        }
        Ok(VerifiedToken {
            client: found.client,
            account: found.account,
            scope: None,
        })
    }
}

/// A router over `store` whose bearer tokens are `token-of-<client id>` for each of
/// `native` clients.
fn router_with_tokens(
    store: Arc<InMemoryStore>,
    native: &[&ClientId],
    options: app::Options,
) -> Router {
    let tokens = native
        .iter()
        .map(|id| (token_of(id), (*id).clone()))
        .collect();
    let verifier = FixedTokens {
        store: store.clone(),
        tokens,
    };
    app::router(
        store,
        app::Options {
            token_verifier: Some(Arc::new(verifier)),
            ..options
        },
    )
    .expect("the example's routes are valid")
}

fn token_of(id: &ClientId) -> String {
    format!("token-of-{id}")
}

/// The demo server, with the credentials it printed.
struct Demo {
    router: Router,
    api_key: String,
    javascript: ClientId,
    native: ClientId,
}

fn demo() -> Demo {
    let seeded = app::demo_store().expect("demo store");
    let of_kind = |kind| {
        seeded
            .generated
            .iter()
            .find(|g| g.kind == kind)
            .expect("one default client of each kind")
    };
    let javascript = of_kind(ClientKind::JavaScript);
    let native = of_kind(ClientKind::NativeConfidential).client.clone();
    Demo {
        api_key: javascript.credential.expose().to_owned(),
        javascript: javascript.client.clone(),
        router: router_with_tokens(seeded.store.clone(), &[&native], app::Options::default()),
        native,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    rejection: Option<Rejection>,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no readable {name} header"))
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

async fn send(router: &Router, req: Request<Body>) -> Reply {
    let res = router
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| match e {});
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        rejection: parts.extensions.get::<Rejection>().cloned(),
        headers: parts.headers,
        body: axum::body::to_bytes(body, 1 << 20).await.expect("body"),
    }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

fn bearer(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

fn from_peer(mut req: Request<Body>, peer: &str) -> Request<Body> {
    let addr: SocketAddr = format!("{peer}:40000").parse().expect("peer address");
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

fn assert_png(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), "image/png");
    assert!(reply.body.starts_with(PNG_SIGNATURE));
}

fn assert_refused(reply: &Reply, status: StatusCode, error: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.error(), error);
}

// ---- the demo server --------------------------------------------------------------------

#[tokio::test]
async fn health_is_public() {
    let demo = demo();
    let reply = send(&demo.router, get("/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ok");
}

#[tokio::test]
async fn a_tile_with_the_demo_javascript_key_is_a_private_png() {
    let demo = demo();
    for route in ["tiles", "imagery"] {
        let uri = format!("/{route}/3/1/2.png?apikey={}", demo.api_key);
        let reply = send(&demo.router, get(&uri)).await;
        assert_png(&reply);
        assert_eq!(reply.body.as_ref(), app::TILE_PNG);
        // The handler allows a day of caching; the layer keeps shared caches out.
        assert_eq!(
            reply.header(header::CACHE_CONTROL),
            "private, max-age=86400"
        );
    }
}

#[tokio::test]
async fn the_javascript_key_reaches_every_plugin_api() {
    let demo = demo();
    let key = &demo.api_key;
    let reply = send(
        &demo.router,
        get(&format!("/elevation?lat=46.5&lon=7.9&apikey={key}")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["elevation_m"].is_f64());
    let reply = send(
        &demo.router,
        get(&format!("/reverse-geocode?lat=48.8&lon=2.3&APIKEY={key}")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["place"]["name"], "Paris");
}

#[tokio::test]
async fn the_javascript_key_cannot_reach_geocode_wms_or_the_profile() {
    let demo = demo();
    for path in [
        "/geocode?q=paris&",
        "/wms?REQUEST=GetMap&",
        "/account/profile?",
    ] {
        let uri = format!("{path}apikey={}", demo.api_key);
        let reply = send(&demo.router, get(&uri)).await;
        assert_refused(&reply, StatusCode::FORBIDDEN, "insufficient_scope");
        assert!(
            reply
                .header(header::WWW_AUTHENTICATE)
                .contains("error=\"insufficient_scope\""),
        );
        assert!(!String::from_utf8_lossy(&reply.body).contains(&demo.api_key));
    }
}

#[tokio::test]
async fn a_request_without_a_key_gets_a_bare_bearer_challenge() {
    let demo = demo();
    for uri in ["/tiles/1/0/0.png", "/geocode?q=paris", "/account/profile"] {
        let reply = send(&demo.router, get(uri)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.header(header::WWW_AUTHENTICATE),
            "Bearer realm=\"gis-auth\""
        );
    }
}

#[tokio::test]
async fn a_mistyped_key_is_an_invalid_token() {
    let demo = demo();
    let mut typo = demo.api_key.clone();
    let last = typo.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    typo.push(last);
    let reply = send(
        &demo.router,
        get(&format!("/tiles/1/0/0.png?apikey={typo}")),
    )
    .await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn the_profile_names_the_calling_account_and_client() {
    let demo = demo();
    let reply = send(
        &demo.router,
        bearer("/account/profile", &token_of(&demo.native)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["account_id"], app::DEMO_ACCOUNT);
    assert_eq!(body["client_id"], demo.native.as_str());
    assert_eq!(body["client_kind"], "NativeConfidential");
    assert_eq!(body["roles"], serde_json::json!(["Evaluator", "User"]));
    assert_eq!(body["authenticated_with"], "bearer_token");
    assert_eq!(reply.header(header::CACHE_CONTROL), "no-store");
    assert_ne!(demo.native, demo.javascript);
}

#[tokio::test]
async fn an_unknown_bearer_token_is_an_invalid_token() {
    let demo = demo();
    let reply = send(&demo.router, bearer("/account/profile", "made-up")).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn the_native_client_geocodes_and_draws_wms_maps() {
    let demo = demo();
    let token = token_of(&demo.native);
    let reply = send(&demo.router, bearer("/geocode?q=san", &token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["query"], "san");
    assert_eq!(body["results"][0]["name"], "San Francisco");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1));

    let reply = send(&demo.router, bearer("/geocode?q=S%C3%83O", &token)).await;
    assert_eq!(reply.json()["results"][0]["name"], "São Paulo");

    let reply = send(
        &demo.router,
        bearer(
            "/wms?SERVICE=WMS&REQUEST=GetMap&LAYERS=WorldStreets&FORMAT=image/png",
            &token,
        ),
    )
    .await;
    assert_png(&reply);
    let reply = send(&demo.router, bearer("/wms?request=GetCapabilities", &token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["service"], "WMS");
    for bad in [
        "/wms?REQUEST=GetFeatureInfo",
        "/wms?REQUEST=GetMap&FORMAT=image/jpeg",
        "/wms?REQUEST=GetMap&request=GetMap",
    ] {
        let reply = send(&demo.router, bearer(bad, &token)).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test]
async fn unknown_routes_are_refused_before_any_credential_is_read() {
    let demo = demo();
    let key = &demo.api_key;
    let requests = [
        get("/"),
        get(&format!("/admin?apikey={key}")),
        get(&format!("/tiles/1/0/0?apikey={key}")),
        get(&format!("/tiles/1/0/0.jpg?apikey={key}")),
        get("/health/"),
        Request::post("/health")
            .body(Body::empty())
            .expect("request"),
    ];
    for req in requests {
        let reply = send(&demo.router, req).await;
        assert_refused(&reply, StatusCode::FORBIDDEN, "access_denied");
        assert_eq!(
            reply.rejection.map(|r| r.kind()),
            Some(RejectionKind::RouteNotAllowed)
        );
    }
}

#[tokio::test]
async fn preflight_requests_pass_the_layer_without_a_key() {
    let demo = demo();
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/tiles/1/0/0.png")
        .header(header::ORIGIN, "https://maps.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .body(Body::empty())
        .expect("request");
    let reply = send(&demo.router, req).await;
    // The CORS layer inside answers it: the auth layer let it through.
    assert!(reply.rejection.is_none());
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
}

#[tokio::test]
async fn tile_addresses_outside_the_pyramid_are_bad_requests() {
    let demo = demo();
    for path in [
        "/tiles/23/0/0.png",
        "/tiles/2/4/0.png",
        "/tiles/2/0/4.png",
        "/tiles/a/0/0.png",
        "/imagery/1/-1/0.png",
    ] {
        let reply = send(
            &demo.router,
            get(&format!("{path}?apikey={}", demo.api_key)),
        )
        .await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let reply = send(
        &demo.router,
        get(&format!("/tiles/22/4194303/0.png?apikey={}", demo.api_key)),
    )
    .await;
    assert_png(&reply);
}

#[tokio::test]
async fn elevation_is_deterministic_and_checks_its_coordinates() {
    let demo = demo();
    let uri = format!("/elevation?lat=27.98&lon=86.92&apikey={}", demo.api_key);
    let first = send(&demo.router, get(&uri)).await.json();
    let second = send(&demo.router, get(&uri)).await.json();
    assert_eq!(first, second);
    assert_eq!(first["lat"], 27.98);
    assert_eq!(first["lon"], 86.92);
    for query in [
        "lat=91&lon=0",
        "lat=0&lon=-180.5",
        "lat=abc&lon=0",
        "lat=NaN&lon=0",
        "lat=inf&lon=0",
        "lat=0",
        "lon=0",
        "lat=1&lat=2&lon=0",
    ] {
        let uri = format!("/elevation?{query}&apikey={}", demo.api_key);
        let reply = send(&demo.router, get(&uri)).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(reply.header(header::CONTENT_TYPE), "application/json");
        assert!(reply.json()["error_description"].is_string());
    }
}

#[tokio::test]
async fn reverse_geocoding_finds_the_nearest_city() {
    let demo = demo();
    for (lat, lon, city) in [
        (35.0, 139.0, "Tokyo"),
        (-34.0, 151.0, "Sydney"),
        (-90.0, 180.0, "Sydney"),
        (51.0, 0.0, "London"),
    ] {
        let uri = format!(
            "/reverse-geocode?lat={lat}&lon={lon}&apikey={}",
            demo.api_key
        );
        let body = send(&demo.router, get(&uri)).await.json();
        assert_eq!(body["place"]["name"], city, "{lat},{lon}");
        assert!(body["distance_km"].as_f64().is_some_and(|d| d >= 0.0));
    }
}

#[tokio::test]
async fn geocoding_needs_a_short_query() {
    let demo = demo();
    let token = token_of(&demo.native);
    let long = "x".repeat(101);
    for uri in [
        "/geocode".to_owned(),
        "/geocode?q=".to_owned(),
        "/geocode?q=%20%20".to_owned(),
        format!("/geocode?q={long}"),
    ] {
        let reply = send(&demo.router, bearer(&uri, &token)).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let reply = send(&demo.router, bearer("/geocode?q=atlantis", &token)).await;
    assert_eq!(reply.json()["results"], serde_json::json!([]));
}

// ---- credential lines -------------------------------------------------------------------

fn line_keys(line: &str) -> (serde_json::Map<String, Value>, BTreeSet<String>) {
    assert!(!line.contains('\n'));
    let Value::Object(map) = serde_json::from_str(line).expect("a JSON line") else {
        panic!("not an object: {line}");
    };
    let keys = map.keys().cloned().collect();
    (map, keys)
}

fn keys(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|k| (*k).to_owned()).collect()
}

#[tokio::test]
async fn generated_credential_lines_are_json_with_exactly_the_documented_keys() {
    let seeded = app::demo_store().expect("demo store");
    assert_eq!(seeded.generated.len(), 2);
    for generated in &seeded.generated {
        let line = app::credential_line(generated).expect("serialisable");
        assert!(line.starts_with("{\"client\":"), "{line}");
        let (map, found) = line_keys(&line);
        assert_eq!(map["client"], generated.client.as_str());
        match generated.kind {
            ClientKind::JavaScript => {
                assert_eq!(found, keys(&["client", "api_key"]));
                let key = map["api_key"].as_str().unwrap_or_default();
                assert!(CredentialKind::ApiKey.check(key).is_ok());
            }
            ClientKind::NativeConfidential => {
                assert_eq!(found, keys(&["client", "client_id", "client_secret"]));
                assert_eq!(map["client_id"], map["client"]);
                let secret = map["client_secret"].as_str().unwrap_or_default();
                assert!(CredentialKind::ClientSecret.check(secret).is_ok());
            }
        }
    }
    // The printed key is the one the server accepts.
    let router = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    let js = seeded
        .generated
        .iter()
        .find(|g| g.kind == ClientKind::JavaScript)
        .expect("a JavaScript client");
    let line = app::credential_line(js).expect("serialisable");
    let (map, _) = line_keys(&line);
    let key = map["api_key"].as_str().unwrap_or_default();
    let reply = send(&router, get(&format!("/tiles/0/0/0.png?apikey={key}"))).await;
    assert_png(&reply);
}

// ---- the clients file -------------------------------------------------------------------

/// A clients file using every field; `web_key` is a plaintext API key, `tablet_digest` and
/// `batch_digest` are `sha256:` digests.
fn full_file(web_key: &str, tablet_digest: &str, batch_digest: &str) -> String {
    format!(
        r#"{{
  "accounts": [
    {{"id": "acme", "name": "Acme Maps", "roles": ["User", "Evaluator", "Subscriber"],
      "status": "active", "daily_quota": 5000}},
    {{"id": "dormant", "name": "Dormant", "roles": ["Evaluator"], "status": "inactive",
      "daily_quota": null}}
  ],
  "clients": [
    {{"id": "web", "account": "acme", "name": "Store locator", "kind": "JavaScript",
      "roles": ["Subscriber"], "status": "active",
      "allowed_origins": ["https://*.acme.test"], "allow_missing_origin": false,
      "allowed_ips": ["198.51.100.0/24"], "expires_at": "2030-01-01T00:00:00Z",
      "api_key": "{web_key}"}},
    {{"id": "tablet", "account": "acme", "kind": "JavaScript", "api_key": "{tablet_digest}"}},
    {{"id": "kiosk", "account": "acme", "kind": "javascript", "roles": ["User"]}},
    {{"id": "batch", "account": "acme", "name": "Batch geocoder", "kind": "NativeConfidential",
      "allowed_ips": ["198.51.100.7"], "client_secret": "{batch_digest}"}},
    {{"id": "server", "account": "acme", "kind": "NativeConfidential", "roles": ["Evaluator"]}},
    {{"id": "paused", "account": "acme", "kind": "JavaScript", "status": "inactive"}},
    {{"id": "dormant-web", "account": "dormant", "kind": "JavaScript"}}
  ]
}}"#
    )
}

struct FullFile {
    seeded: app::Seeded,
    router: Router,
    clock: ManualClock,
    web_key: PlainCredential,
    tablet_key: PlainCredential,
    batch_secret: PlainCredential,
}

fn load_full_file() -> FullFile {
    let web_key = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let tablet_key = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let batch_secret = PlainCredential::generate(CredentialKind::ClientSecret).expect("random");
    let text = full_file(
        web_key.expose(),
        &tablet_key.digest().to_prefixed_hex(),
        &batch_secret.digest().to_prefixed_hex(),
    );
    let seeded = app::load_clients_json(&text).expect("a valid file");
    let clock = ManualClock::new(datetime!(2029-06-01 00:00 UTC));
    let (batch, server) = (id("batch"), id("server"));
    let router = router_with_tokens(
        seeded.store.clone(),
        &[&batch, &server],
        app::Options {
            clock: Some(Arc::new(clock.clone())),
            ..app::Options::default()
        },
    );
    FullFile {
        seeded,
        router,
        clock,
        web_key,
        tablet_key,
        batch_secret,
    }
}

fn id(s: &str) -> ClientId {
    ClientId::new(s).expect("client id")
}

fn generated_of(generated: &[GeneratedCredential], client: &str) -> String {
    generated
        .iter()
        .find(|g| g.client.as_str() == client)
        .map(|g| g.credential.expose().to_owned())
        .unwrap_or_else(|| panic!("no credential generated for {client}"))
}

#[tokio::test]
async fn a_file_with_every_field_loads_and_reports_only_the_credentials_it_generated() {
    let file = load_full_file();
    let generated: Vec<(&str, ClientKind)> = file
        .seeded
        .generated
        .iter()
        .map(|g| (g.client.as_str(), g.kind))
        .collect();
    assert_eq!(
        generated,
        [
            ("kiosk", ClientKind::JavaScript),
            ("server", ClientKind::NativeConfidential),
            ("paused", ClientKind::JavaScript),
            ("dormant-web", ClientKind::JavaScript),
        ]
    );
    for g in &file.seeded.generated {
        let line = app::credential_line(g).expect("serialisable");
        assert!(!line.contains(file.web_key.expose()));
    }
    let store = &file.seeded.store;
    let acme = store
        .get_account(&AccountId::new("acme").expect("id"))
        .expect("acme");
    assert_eq!(acme.daily_quota, Some(5000));
    assert_eq!(acme.name, "Acme Maps");
    let batch = store.client(&id("batch")).expect("batch");
    assert_eq!(batch.name(), "Batch geocoder");
    assert_eq!(batch.credentials().current(), &file.batch_secret.digest());
    assert_eq!(
        batch.roles().len(),
        3,
        "roles absent means all of the account's"
    );
    let server = store.client(&id("server")).expect("server");
    assert_eq!(server.name(), "server", "the name defaults to the id");
    let web = store.client(&id("web")).expect("web");
    assert_eq!(web.expires_at(), Some(datetime!(2030-01-01 00:00 UTC)));
    assert!(!web.allows_missing_origin());
}

#[tokio::test]
async fn a_plaintext_key_from_the_file_is_held_to_its_origin_ip_and_expiry() {
    let file = load_full_file();
    let uri = format!("/tiles/4/3/5.png?apikey={}", file.web_key.expose());
    let allowed = || {
        let mut req = from_peer(get(&uri), "198.51.100.20");
        req.headers_mut().insert(
            header::ORIGIN,
            "https://maps.acme.test".parse().expect("value"),
        );
        req
    };
    let reply = send(&file.router, allowed()).await;
    assert_png(&reply);
    assert!(
        reply
            .header(header::VARY)
            .split(',')
            .any(|v| v.trim().eq_ignore_ascii_case("origin")),
        "the response varies on Origin"
    );

    let mut req = from_peer(get(&uri), "198.51.100.20");
    req.headers_mut().insert(
        header::ORIGIN,
        "https://acme.test.evil.test".parse().expect("value"),
    );
    assert_refused(
        &send(&file.router, req).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    );
    let req = from_peer(get(&uri), "198.51.100.20");
    assert_refused(
        &send(&file.router, req).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    );
    let mut req = from_peer(get(&uri), "203.0.113.20");
    req.headers_mut().insert(
        header::ORIGIN,
        "https://maps.acme.test".parse().expect("value"),
    );
    assert_refused(
        &send(&file.router, req).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    );

    file.clock.set(datetime!(2030-01-01 00:00 UTC));
    let reply = send(&file.router, allowed()).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(
        reply.rejection.map(|r| r.kind()),
        Some(RejectionKind::Expired)
    );
}

#[tokio::test]
async fn a_digest_from_the_file_accepts_its_plaintext() {
    let file = load_full_file();
    let uri = format!("/imagery/0/0/0.png?apikey={}", file.tablet_key.expose());
    assert_png(&send(&file.router, get(&uri)).await);
}

#[tokio::test]
async fn roles_in_the_file_bound_what_each_client_reaches() {
    let file = load_full_file();
    let kiosk = generated_of(&file.seeded.generated, "kiosk");
    let reply = send(
        &file.router,
        get(&format!("/tiles/0/0/0.png?apikey={kiosk}")),
    )
    .await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "insufficient_scope");

    // "batch" has no roles in the file, so it holds all three of its account's.
    let batch = token_of(&id("batch"));
    let reply = send(
        &file.router,
        from_peer(bearer("/account/profile", &batch), "198.51.100.7"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json()["roles"],
        serde_json::json!(["Evaluator", "Subscriber", "User"])
    );
    let reply = send(
        &file.router,
        from_peer(bearer("/account/profile", &batch), "198.51.100.8"),
    )
    .await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "access_denied");

    let server = token_of(&id("server"));
    let reply = send(&file.router, bearer("/geocode?q=paris", &server)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send(&file.router, bearer("/account/profile", &server)).await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "insufficient_scope");
}

#[tokio::test]
async fn inactive_clients_and_accounts_from_the_file_are_refused() {
    let file = load_full_file();
    for client in ["paused", "dormant-web"] {
        let key = generated_of(&file.seeded.generated, client);
        let reply = send(&file.router, get(&format!("/tiles/0/0/0.png?apikey={key}"))).await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(
            reply.rejection.map(|r| r.kind()),
            Some(RejectionKind::Inactive)
        );
    }
}

fn example_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gis_server/clients.example.json")
}

#[tokio::test]
async fn the_example_clients_file_loads_and_serves() {
    let seeded = app::load_clients_file(&example_file()).expect("the example file is valid");
    let generated: Vec<&str> = seeded.generated.iter().map(|g| g.client.as_str()).collect();
    assert_eq!(generated, ["acme-preview", "acme-backend", "trial-web"]);
    assert_eq!(seeded.store.accounts().len(), 2);
    assert_eq!(seeded.store.client_count(), 5);

    let text = std::fs::read_to_string(example_file()).expect("readable");
    let file: Value = serde_json::from_str(&text).expect("JSON");
    let web_key = file["clients"]
        .as_array()
        .and_then(|clients| clients.iter().find(|c| c["id"] == "acme-web"))
        .and_then(|c| c["api_key"].as_str())
        .expect("acme-web has a plaintext key");
    let router = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    let uri = format!("/tiles/1/1/1.png?apikey={web_key}");
    let req = Request::get(&uri)
        .header(header::ORIGIN, "http://localhost:5173")
        .body(Body::empty())
        .expect("request");
    assert_png(&send(&router, req).await);
    let reply = send(&router, get(&uri)).await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "access_denied");
    assert_eq!(reply.header(header::VARY), "Origin");
}

#[test]
fn bad_files_are_refused_naming_the_client_and_field() {
    let key = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let account = r#"{"id": "acme", "name": "Acme", "roles": ["User", "Evaluator"]}"#;
    let with = |clients: &str| format!(r#"{{"accounts": [{account}], "clients": [{clients}]}}"#);
    let k = key.expose();
    let cases = [
        (
            with(r#"{"id": "w", "account": "acme", "kind": "Browser"}"#),
            "client `w`, field `kind`",
        ),
        (
            with(r#"{"id": "w", "account": "nope", "kind": "JavaScript"}"#),
            "client `w`, field `account`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "roles": ["Subscriber"]}"#,
            ),
            "client `w`, field `roles`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "allowed_origins": ["https://*.com"]}"#,
            ),
            "client `w`, field `allowed_origins`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "NativeConfidential", "allowed_origins": ["acme.test"]}"#,
            ),
            "client `w`, field `allowed_origins`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "allowed_ips": ["10.0.0.0/33"]}"#,
            ),
            "client `w`, field `allowed_ips`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "gis_apikey_typo"}"#,
            ),
            "client `w`, field `api_key`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "sha256:abc"}"#,
            ),
            "client `w`, field `api_key`",
        ),
        (
            with(&format!(
                r#"{{"id": "w", "account": "acme", "kind": "NativeConfidential", "client_secret": "{k}"}}"#
            )),
            "client `w`, field `client_secret`",
        ),
        (
            with(&format!(
                r#"{{"id": "w", "account": "acme", "kind": "JavaScript", "client_secret": "{k}"}}"#
            )),
            "client `w`, field `client_secret`",
        ),
        (
            with(&format!(
                r#"{{"id": "a", "account": "acme", "kind": "JavaScript", "api_key": "{k}"}},
                   {{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "{k}"}}"#
            )),
            "client `w`, field `api_key`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "expires_at": "next year"}"#,
            ),
            "client `w`, field `expires_at`",
        ),
        (
            with(r#"{"id": "w", "account": "acme", "kind": "JavaScript", "status": "paused"}"#),
            "client `w`, field `status`",
        ),
        (
            with(r#"{"id": "w", "account": "acme", "kind": "JavaScript", "colour": "red"}"#),
            "client `w`, field `colour`",
        ),
        (
            with(r#"{"account": "acme", "kind": "JavaScript"}"#),
            "client `#1`, field `id`",
        ),
        (
            r#"{"accounts": [{"id": "acme", "name": "Acme"}]}"#.to_owned(),
            "account `acme`, field `roles`",
        ),
        ("{\"accounts\": [".to_owned(), "not a clients file"),
        (r#"{"users": []}"#.to_owned(), "not a clients file"),
    ];
    for (text, expected) in cases {
        let err = app::load_clients_json(&text).expect_err(expected);
        let message = err.to_string();
        assert!(message.starts_with(expected), "{message} / {expected}");
        assert!(!message.contains(k), "a credential leaked into {message}");
    }
}

#[test]
fn a_bad_clients_file_on_disk_is_refused_with_its_path() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("example_server_bad_clients.json");
    std::fs::write(
        &path,
        r#"{"accounts": [], "clients": [{"id": "w", "account": "acme", "kind": "JavaScript"}]}"#,
    )
    .expect("writable");
    let err = app::load_clients_file(&path).expect_err("unknown account");
    assert_eq!(
        err.to_string(),
        format!(
            "clients file `{}`: client `w`, field `account`: unknown account `acme`",
            path.display()
        )
    );

    let missing = dir.join("example_server_no_such_file.json");
    let err = app::load_clients_file(&missing).expect_err("missing file");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read clients file `{}`", missing.display())),
        "{err}"
    );
}

// ---- flags ------------------------------------------------------------------------------

#[test]
fn the_trusted_proxies_flag_takes_a_comma_separated_list() {
    let proxies =
        app::parse_trusted_proxies("10.0.0.0/8, 192.0.2.1,2001:db8::/32").expect("a valid list");
    for inside in ["10.1.2.3", "192.0.2.1", "2001:db8::5", "::ffff:10.0.0.1"] {
        assert!(
            proxies.contains(inside.parse().expect("address")),
            "{inside}"
        );
    }
    for outside in ["11.0.0.1", "192.0.2.2", "2001:db9::1"] {
        assert!(
            !proxies.contains(outside.parse().expect("address")),
            "{outside}"
        );
    }
    assert!(
        app::parse_trusted_proxies("127.0.0.1")
            .expect("one address")
            .contains("127.0.0.1".parse().expect("address"))
    );
}

#[test]
fn the_trusted_proxies_flag_refuses_bad_entries_by_name() {
    for (flag, named) in [
        ("10.0.0.0/33", "`10.0.0.0/33`"),
        ("10.0.0.0/8,proxy.local", "`proxy.local`"),
        ("203.0.113.*", "`203.0.113.*`"),
        ("10.0.0.0/8,", "`10.0.0.0/8,`"),
        ("", "``"),
    ] {
        let err = app::parse_trusted_proxies(flag).expect_err(flag);
        assert!(err.to_string().contains(named), "{err}");
    }
}

// ---- a real socket ----------------------------------------------------------------------

struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `router` on 127.0.0.1 at a free port, as `main.rs` does.
async fn serve(router: Router) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    Running { addr, stop, task }
}

impl Running {
    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.task.await.expect("server task").expect("clean stop");
    }
}

/// One `GET` over HTTP/1.1; gives the status and the body.
async fn raw_get(addr: SocketAddr, target: &str, extra: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("response read");
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, response[end + 4..].to_vec())
}

/// One account with a client allowed from 127.0.0.1 and one allowed from 203.0.113.0/24.
fn ip_restricted() -> (app::Seeded, String, String) {
    let seeded = app::load_clients_json(
        r#"{"accounts": [{"id": "acme", "roles": ["Evaluator"]}],
            "clients": [
              {"id": "local", "account": "acme", "kind": "JavaScript", "allowed_ips": ["127.0.0.1"]},
              {"id": "remote", "account": "acme", "kind": "JavaScript", "allowed_ips": ["203.0.113.0/24"]}
            ]}"#,
    )
    .expect("a valid file");
    let local = generated_of(&seeded.generated, "local");
    let remote = generated_of(&seeded.generated, "remote");
    (seeded, local, remote)
}

#[tokio::test]
async fn ip_rules_see_the_peer_address_of_a_real_connection() {
    let (seeded, local, remote) = ip_restricted();
    let router = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    let server = serve(router).await;

    let (status, body) = raw_get(
        server.addr,
        &format!("/tiles/2/1/1.png?apikey={local}"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.starts_with(PNG_SIGNATURE));

    let (status, body) = raw_get(
        server.addr,
        &format!("/tiles/2/1/1.png?apikey={remote}"),
        &[],
    )
    .await;
    assert_eq!(status, 403);
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["error"], "access_denied");

    // Without trusted proxies a forwarded address is not believed.
    let forwarded = [("X-Forwarded-For", "203.0.113.9")];
    let target = format!("/tiles/2/1/1.png?apikey={remote}");
    assert_eq!(raw_get(server.addr, &target, &forwarded).await.0, 403);

    let (status, _) = raw_get(server.addr, "/health", &[]).await;
    assert_eq!(status, 200);
    server.shut_down().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_caller() {
    let (seeded, local, remote) = ip_restricted();
    let options = app::Options {
        trusted_proxies: app::parse_trusted_proxies("127.0.0.1/32").expect("valid"),
        ..app::Options::default()
    };
    let router = app::router(seeded.store.clone(), options).expect("router");
    let server = serve(router).await;
    let forwarded = [("X-Forwarded-For", "203.0.113.9")];

    let target = format!("/tiles/2/1/1.png?apikey={remote}");
    assert_eq!(raw_get(server.addr, &target, &forwarded).await.0, 200);
    let target = format!("/tiles/2/1/1.png?apikey={local}");
    assert_eq!(raw_get(server.addr, &target, &forwarded).await.0, 403);
    assert_eq!(raw_get(server.addr, &target, &[]).await.0, 200);
    server.shut_down().await;
}

#[tokio::test]
async fn without_a_connection_address_ip_restricted_clients_are_refused() {
    let (seeded, local, _) = ip_restricted();
    let router = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    let reply = send(&router, get(&format!("/tiles/2/1/1.png?apikey={local}"))).await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "access_denied");
    assert_eq!(
        reply.rejection.map(|r| r.kind()),
        Some(RejectionKind::IpNotAllowed)
    );
}

#[test]
fn the_route_table_marks_the_plugin_apis_and_the_public_health_check() {
    use gis_auth::policy::RouteAccess;
    let table = app::route_table().expect("valid");
    let expect = [
        ("/tiles/1/2/3.png", "WorldStreets", true, Role::EVALUATOR),
        ("/imagery/1/2/3.png", "WorldImagery", true, Role::EVALUATOR),
        ("/elevation", "Elevation", true, Role::SUBSCRIBER),
        (
            "/reverse-geocode",
            "ReverseGeocoder",
            true,
            Role::SUBSCRIBER,
        ),
        ("/geocode", "Geocoder", false, Role::EVALUATOR),
        ("/wms", "WMS", false, Role::SUBSCRIBER),
        ("/account/profile", "Profile", false, Role::USER),
    ];
    for (path, name, plugin, role) in expect {
        let route = table.lookup(&Method::GET, path).expect(path);
        let RouteAccess::Api(api) = route.access() else {
            panic!("{path} is guarded");
        };
        assert_eq!(api.name(), name);
        assert_eq!(api.is_plugin(), plugin, "{path}");
        assert!(api.roles().contains(&role), "{path}");
    }
    let health = table.lookup(&Method::GET, "/health").expect("health");
    assert_eq!(health.access(), &RouteAccess::Public);
}

// ---- the load test's baselines ----------------------------------------------------------

#[tokio::test]
async fn the_baselines_serve_tiles_bare_or_behind_the_floor_of_a_key_check() {
    let seeded = app::demo_store().expect("demo store");
    let key = seeded
        .generated
        .iter()
        .find(|g| g.kind == ClientKind::JavaScript)
        .expect("a JavaScript client")
        .credential
        .expose()
        .to_owned();
    let baselines = bench::baselines(&seeded).expect("baselines");

    // Without a key: the tile as the handler sends it, shareable by caches.
    let bare = send(&baselines, get("/tiles/3/1/2.png")).await;
    assert_png(&bare);
    assert_eq!(bare.header(header::CACHE_CONTROL), "max-age=86400");
    assert!(
        bare.headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );

    // With the key: hashed, found, taken out of the URI, and the tile made private.
    let floor = send(&baselines, get(&format!("/tiles/3/1/2.png?apikey={key}"))).await;
    assert_png(&floor);
    assert_eq!(floor.header(header::CACHE_CONTROL), "private");

    // An unknown key, or a key in the wrong place, is refused before the handler runs.
    let mut unknown = key.clone();
    unknown.replace_range(..1, if key.starts_with('A') { "B" } else { "A" });
    for req in [
        get(&format!("/tiles/3/1/2.png?apikey={unknown}")),
        get(&format!("/tiles/3/1/2.png?apikey={key}&apikey={key}")),
        bearer("/tiles/3/1/2.png", &key),
    ] {
        let reply = send(&baselines, req).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body.is_empty());
    }
    // The example's own router, every route of it, with the auth layer taken out: what the
    // guarded router refuses without a key, the baselines serve.
    let guarded = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    for path in ["/geocode?q=paris", "/tiles/3/1/2.png"] {
        let refused = send(&guarded, get(path)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{path}");
        let served = send(&baselines, get(path)).await;
        assert_eq!(served.status, StatusCode::OK, "{path}");
    }
    let health = send(&baselines, get("/health")).await;
    assert_eq!(health.status, StatusCode::OK);
}
