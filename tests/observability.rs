//! What the layer tells the logs: one span per guarded request with the API, the client and
//! the decision; refusals at `debug`; store and counter failures at `warn`; and never a
//! credential. The logs of a full run of the example server (keys, the token endpoint,
//! bearer tokens, refusals of every kind, a failing usage counter) are captured at `trace`
//! and searched for every credential used.
//!
//! A test binary of its own: tracing caches per callsite, process-wide, whether anyone
//! listens, decided by whichever thread reaches the callsite first. Beside hundreds of tests
//! running at once, a subscriber set for this test's thread missed the request span now
//! and then; alone in its process it sees every callsite first.

#![cfg(feature = "admin")]

#[path = "../examples/gis_server/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "../examples/gis_server/logs.rs"]
#[allow(dead_code)]
mod logs;
#[path = "it/harness/reply.rs"]
#[allow(dead_code)]
mod reply;
#[path = "it/harness/request.rs"]
#[allow(dead_code)]
mod request;

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use gis_auth::client::{AccountId, ClientKind, CredentialKind, PlainCredential};
use gis_auth::limits::{Charge, Charged, DailyUsage, UsageCounter};
use gis_auth::store::BackendError;
use http::{Method, Request, StatusCode, header};
use serde_json::Value;
use time::Date;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

use reply::send;
use request::{RequestExt, bearer, get};

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A usage counter that is down.
struct DownCounter;

#[async_trait]
impl UsageCounter for DownCounter {
    async fn charge(&self, _: &Charge<'_>) -> Result<Charged, BackendError> {
        Err(BackendError::new("usage counter connection reset"))
    }

    async fn record_refusal(&self, _: &gis_auth::limits::Refused<'_>) -> Result<(), BackendError> {
        Err(BackendError::new("usage counter connection reset"))
    }

    async fn used(&self, _: &AccountId, _: Date) -> Result<u64, BackendError> {
        Err(BackendError::new("usage counter connection reset"))
    }

    async fn usage(
        &self,
        _: &AccountId,
        _: Date,
        _: Date,
    ) -> Result<Vec<DailyUsage>, BackendError> {
        Err(BackendError::new("usage counter connection reset"))
    }
}

/// Sends `req` to `router` from one caller's address; the status and the JSON body (null
/// when the body is not JSON).
async fn status_and_body(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let reply = send(router.clone(), req.peer("198.51.100.20")).await;
    (
        reply.status,
        serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
    )
}

fn token_request(form: &str, basic: Option<(&str, &str)>) -> Request<Body> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        req = req.header(header::AUTHORIZATION, format!("Basic {pair}"));
    }
    req.body(Body::from(form.to_owned())).expect("a request")
}

#[tokio::test]
async fn a_full_run_logs_spans_and_refusals_but_never_a_credential() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let seeded = app::demo_store().expect("the demo store");
    let of_kind = |kind| {
        seeded
            .generated
            .iter()
            .find(|g| g.kind == kind)
            .expect("one default client of each kind")
    };
    let web = of_kind(ClientKind::JavaScript);
    let native = of_kind(ClientKind::NativeConfidential);
    let api_key = web.credential.expose().to_owned();
    let secret = native.credential.expose().to_owned();
    let native_id = native.client.to_string();
    let web_id = web.client.to_string();
    let router = app::router(seeded.store.clone(), app::Options::default()).expect("routes");
    let down = app::router(
        seeded.store.clone(),
        app::Options {
            usage: Some(Arc::new(DownCounter)),
            ..app::Options::default()
        },
    )
    .expect("routes");

    let unknown_key = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let unknown_key = unknown_key.expose().to_owned();
    let mut bad_checksum = api_key.clone();
    bad_checksum.replace_range(20..21, if &api_key[20..21] == "A" { "B" } else { "A" });
    let wrong_secret = PlainCredential::generate(CredentialKind::ClientSecret).expect("random");
    let wrong_secret = wrong_secret.expose().to_owned();

    // API keys: admitted, refused by rule, malformed, unknown.
    let tile = |key: &str| format!("/tiles/3/1/2.png?apikey={key}");
    assert_eq!(
        status_and_body(&router, get("/health")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_and_body(&router, get(&tile(&api_key))).await.0,
        StatusCode::OK
    );
    let geocode = format!("/geocode?q=paris&apikey={api_key}");
    assert_eq!(
        status_and_body(&router, get(&geocode)).await.0,
        StatusCode::FORBIDDEN
    );
    for key in [&unknown_key, &bad_checksum, &"not-a-key".to_owned()] {
        assert_eq!(
            status_and_body(&router, get(&tile(key))).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // The token endpoint: both ways of authenticating, a wrong secret, credentials in the
    // query.
    let post =
        format!("grant_type=client_credentials&client_id={native_id}&client_secret={secret}");
    let (status, body) = status_and_body(&router, token_request(&post, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().expect("a token").to_owned();
    let (status, body) = status_and_body(
        &router,
        token_request("grant_type=client_credentials", Some((&native_id, &secret))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second_token = body["access_token"].as_str().expect("a token").to_owned();
    let wrong =
        format!("grant_type=client_credentials&client_id={native_id}&client_secret={wrong_secret}");
    let (status, _) = status_and_body(&router, token_request(&wrong, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = status_and_body(
        &router,
        token_request(
            "grant_type=client_credentials",
            Some((&native_id, &wrong_secret)),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Submitted ids, well-formed and not, are never logged.
    let unknown_id = "cl_submitted-unknown-id";
    let bad_id = "submitted%21bad%21id";
    for id in [unknown_id, bad_id] {
        let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
        let (status, _) = status_and_body(&router, token_request(&form, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let mut in_query = token_request("grant_type=client_credentials", None);
    *in_query.uri_mut() = format!("/oauth/token?client_id={native_id}&client_secret={secret}")
        .parse()
        .expect("a URI");
    assert_eq!(
        status_and_body(&router, in_query).await.0,
        StatusCode::BAD_REQUEST
    );
    // Bearer tokens: admitted, forged, and a token where a key belongs.
    assert_eq!(
        status_and_body(&router, bearer("/geocode?q=paris", &token))
            .await
            .0,
        StatusCode::OK
    );
    let forged = format!("{}x", &second_token[..second_token.len() - 1]);
    assert_eq!(
        status_and_body(&router, bearer("/geocode?q=paris", &forged))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_and_body(&router, get(&tile(&token))).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A usage counter that is down: 503, logged at warn.
    let (status, _) = status_and_body(&down, get(&tile(&api_key))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    let logs = captured.text();
    // Never a credential, in any form it travelled in.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{native_id}:{secret}"));
    for (what, secret) in [
        ("API key", api_key.as_str()),
        ("API key body", &api_key[11..]),
        ("unknown key", &unknown_key),
        ("mistyped key", &bad_checksum),
        ("client secret", &secret),
        ("client secret body", &secret[11..]),
        ("wrong secret", &wrong_secret),
        ("access token", &token),
        ("second access token", &second_token),
        (
            "token signature",
            token.rsplit('.').next().expect("three parts"),
        ),
        ("forged token", &forged),
        ("Basic credentials", &basic),
        ("unknown submitted client id", unknown_id),
        ("malformed submitted client id", "submitted!bad!id"),
    ] {
        assert!(!logs.contains(secret), "the logs contain the {what}");
    }
    // One span per guarded request, with the API, the client and the decision.
    let closed: Vec<&str> = logs.lines().filter(|l| l.contains("close")).collect();
    assert!(
        closed
            .iter()
            .any(|l| l.contains("gis_auth{api=\"WorldStreets\"")
                && l.contains(&format!("client={web_id}"))
                && l.contains("decision=\"allow\"")),
        "no span of an admitted tile request:\n{logs}"
    );
    assert!(
        closed.iter().any(|l| l.contains("api=\"Geocoder\"")
            && l.contains(&format!("client={native_id}"))
            && l.contains("decision=\"allow\"")),
        "no span of an admitted bearer request:\n{logs}"
    );
    assert!(
        closed.iter().any(|l| l.contains("api=\"Geocoder\"")
            && l.contains(&format!("client={web_id}"))
            && l.contains("decision=\"insufficient_scope\"")
            && l.contains("rule=\"kind\"")),
        "no span of a refused request:\n{logs}"
    );
    // Refusals at debug, failures at warn.
    assert!(
        logs.lines().any(|l| l.contains("DEBUG")
            && l.contains("request refused")
            && l.contains("invalid_token")),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("WARN") && l.contains("usage counter failed")),
        "{logs}"
    );
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("request refused") && !l.contains("DEBUG")),
        "refusals are logged at debug only"
    );
}

/// Set for the child process of
/// [`the_example_logs_one_line_per_refusal_and_per_shadow_finding_on_stderr`].
const EXAMPLE_CHILD: &str = "GIS_AUTH_EXAMPLE_LOG_CHILD";

/// The example server's side of the log test, in a process of its own: installs the
/// example's subscriber exactly as its `main` does (on stderr, filtered by `RUST_LOG`), then
/// serves a refusal without a key, a refusal by origin (key in the `X-Api-Key` header), a
/// request a report-only origin rule lets through, and an allowed one. The keys go to stdout
/// for the parent to look for in the logs.
#[tokio::test]
#[ignore = "the child process of the example log test; it runs itself"]
async fn example_log_child() {
    if std::env::var_os(EXAMPLE_CHILD).is_none() {
        return;
    }
    logs::install(std::env::var("RUST_LOG").ok().as_deref()).expect("the subscriber installs");
    let seeded = app::load_clients_json(
        r#"{"accounts": [{"id": "acme", "roles": ["Evaluator"]}],
            "clients": [
              {"id": "web", "account": "acme", "kind": "JavaScript",
               "allowed_origins": ["https://maps.acme.test"]},
              {"id": "trial", "account": "acme", "kind": "JavaScript",
               "allowed_origins": ["https://maps.acme.test"], "shadow": ["origins"]}
            ]}"#,
    )
    .expect("a valid file");
    let key_of = |id: &str| {
        seeded
            .generated
            .iter()
            .find(|g| g.client.as_str() == id)
            .map(|g| g.credential.expose().to_owned())
            .expect("a generated key")
    };
    let (web, trial) = (key_of("web"), key_of("trial"));
    println!("KEY {web}");
    println!("KEY {trial}");
    let router = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    let status = |req: Request<Body>| {
        let router = router.clone();
        async move { send(router, req).await.status.as_u16() }
    };
    assert_eq!(status(get("/tiles/1/0/0.png")).await, 401);
    let mut by_header = get("/tiles/1/0/0.png").origin("https://evil.test");
    by_header
        .headers_mut()
        .insert("x-api-key", web.parse().expect("a header value"));
    assert_eq!(status(by_header).await, 403);
    let shadowed = get(&format!("/tiles/1/0/0.png?apikey={trial}")).origin("https://evil.test");
    assert_eq!(status(shadowed).await, 200);
    let allowed = get(&format!("/tiles/1/0/0.png?apikey={web}")).origin("https://maps.acme.test");
    assert_eq!(status(allowed).await, 200);
}

/// Runs [`example_log_child`] in a process of its own with `RUST_LOG` as given, and gives
/// its stdout and stderr.
fn run_example_child(rust_log: Option<&str>) -> (String, String) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut command = std::process::Command::new(exe);
    command
        .args([
            "--exact",
            "example_log_child",
            "--include-ignored",
            "--nocapture",
        ])
        .env(EXAMPLE_CHILD, "1")
        .env_remove("RUST_LOG");
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    let out = command.output().expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn the_example_logs_one_line_per_refusal_and_per_shadow_finding_on_stderr() {
    let (stdout, stderr) = run_example_child(None);
    let keys: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("KEY "))
        .collect();
    assert_eq!(keys.len(), 2, "{stdout}");
    for key in &keys {
        assert!(!stderr.contains(key), "a key in the logs:\n{stderr}");
    }
    let refusals: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(logs::REFUSAL_TARGET))
        .collect();
    assert_eq!(refusals.len(), 2, "one line per refusal:\n{stderr}");
    let without_key = refusals[0];
    assert!(without_key.contains("INFO"), "{without_key}");
    assert!(without_key.contains("status=401"), "{without_key}");
    assert!(
        without_key.contains("api=\"WorldStreets\""),
        "{without_key}"
    );
    assert!(!without_key.contains("client="), "{without_key}");
    let by_origin = refusals[1];
    for field in [
        "status=403",
        "client=\"web\"",
        "api=\"WorldStreets\"",
        "rule=\"origins\"",
    ] {
        assert!(by_origin.contains(field), "{field} missing: {by_origin}");
    }
    let shadow: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("gis_auth::shadow"))
        .collect();
    assert_eq!(shadow.len(), 1, "one line per shadow finding:\n{stderr}");
    assert!(shadow[0].contains("client=trial") && shadow[0].contains("rule=\"origins\""));
    // `info` by default: the request spans and the layer's own debug lines stay out.
    assert!(!stderr.contains("DEBUG"), "{stderr}");

    // RUST_LOG is honoured.
    let (_, quiet) = run_example_child(Some("warn"));
    assert!(!quiet.contains(logs::REFUSAL_TARGET), "{quiet}");
}
