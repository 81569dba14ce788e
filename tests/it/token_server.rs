//! The own-token-server example (`cargo run --example token_server`) against the real GIS
//! example server over real sockets: the tokens it hands out open the GIS server, one token
//! is kept until its refresh margin and fetched once however many callers wait, and an
//! upstream that refuses or is down is a 502 naming no secret. Time is a shared manual
//! clock, never slept on.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use base64::Engine as _;
use gis_auth::client::ClientKind;
use gis_auth::clock::ManualClock;
use http::StatusCode;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::watch;

use crate::harness::app;
use crate::harness::reply::{Reply, read};
use crate::harness::token_backend as backend;

/// When every test starts.
const START: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

/// The lifetime the backend asks for (shorter than the GIS server's hour), in seconds.
const LIFETIME: u64 = backend::DEFAULT_LIFETIME.as_secs();

// ---- the two servers --------------------------------------------------------------------

/// The GIS example server on a socket and a manual clock, counting the token requests it
/// receives and holding them while its gate is shut.
struct Gis {
    url: String,
    client_id: String,
    secret: String,
    clock: ManualClock,
    token_requests: watch::Sender<usize>,
    gate: watch::Sender<bool>,
}

impl Gis {
    async fn start() -> Self {
        let seeded = app::demo_store().expect("demo store");
        let native = seeded
            .generated
            .iter()
            .find(|g| g.kind == ClientKind::NativeConfidential)
            .expect("a NativeConfidential default client");
        let (client_id, secret) = (
            native.client.as_str().to_owned(),
            native.credential.expose().to_owned(),
        );
        let clock = ManualClock::new(START);
        let options = app::Options {
            clock: Some(Arc::new(clock.clone())),
            ..app::Options::default()
        };
        let router = app::router(seeded.store.clone(), options).expect("the example's routes");
        let token_requests = watch::Sender::new(0);
        let gate = watch::Sender::new(true);
        let counted = {
            let (requests, gate) = (token_requests.clone(), gate.subscribe());
            move |req: Request, next: Next| {
                let (requests, mut gate) = (requests.clone(), gate.clone());
                async move {
                    if req.uri().path() == "/oauth/token" {
                        requests.send_modify(|n| *n += 1);
                        let _ = gate.wait_for(|open| *open).await;
                    }
                    next.run(req).await
                }
            }
        };
        let addr = serve(router.layer(from_fn(counted))).await;
        Self {
            url: format!("http://{addr}"),
            client_id,
            secret,
            clock,
            token_requests,
            gate,
        }
    }

    fn token_requests(&self) -> usize {
        *self.token_requests.borrow()
    }
}

/// The token backend on a socket, counting the `GET /token` requests that reach it.
struct Backend {
    url: String,
    cache: Arc<backend::TokenCache>,
    arrivals: watch::Sender<usize>,
}

impl Backend {
    /// A backend for the GIS server at `gis_url`, on `clock`, presenting `secret`.
    async fn start(gis_url: &str, client_id: &str, secret: &str, clock: &ManualClock) -> Self {
        let upstream =
            backend::Upstream::new(gis_url, client_id, backend::ClientSecret::new(secret))
                .expect("a valid upstream");
        let cache = Arc::new(backend::TokenCache::with_clock(
            upstream,
            Arc::new(clock.clone()),
        ));
        let arrivals = watch::Sender::new(0);
        let counted = {
            let arrivals = arrivals.clone();
            move |req: Request, next: Next| {
                if req.uri().path() == "/token" {
                    arrivals.send_modify(|n| *n += 1);
                }
                next.run(req)
            }
        };
        let addr = serve(backend::router(cache.clone()).layer(from_fn(counted))).await;
        Self {
            url: format!("http://{addr}"),
            cache,
            arrivals,
        }
    }

    /// A backend for `gis` with the credentials it printed.
    async fn for_gis(gis: &Gis) -> Self {
        Self::start(&gis.url, &gis.client_id, &gis.secret, &gis.clock).await
    }
}

/// Serves `router` on 127.0.0.1 at a free port, as both examples' `main.rs` do.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

// ---- HTTP -------------------------------------------------------------------------------

fn http_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `GET url`, with `Authorization: Bearer <token>` when given one.
async fn get(url: &str, bearer: Option<&str>) -> Reply {
    let mut req = http::Request::get(url);
    if let Some(token) = bearer {
        req = req.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req.body(Full::new(Bytes::new())).expect("a request");
    read(http_client().request(req).await.expect("an answer")).await
}

/// `GET /token` from `backend`, which must succeed; the handout as JSON.
async fn handout(backend: &Backend) -> Value {
    let reply = get(&format!("{}/token", backend.url), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers[CACHE_CONTROL], "no-store");
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    body
}

fn access_token(handout: &Value) -> String {
    handout["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// `GET /geocode?q=Paris` on the GIS server with `token`; its status and the first name.
async fn geocode_paris(gis: &Gis, token: Option<&str>) -> (StatusCode, Option<String>) {
    let reply = get(&format!("{}/geocode?q=Paris", gis.url), token).await;
    if reply.status != StatusCode::OK {
        return (reply.status, None);
    }
    let name = reply.json()["results"][0]["name"]
        .as_str()
        .map(str::to_owned);
    (reply.status, name)
}

/// Asserts a 502 `upstream_unavailable` whose description contains `says` and none of
/// `secrets`.
fn assert_upstream_unavailable(reply: &Reply, says: &str, secrets: &[&str]) {
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert_eq!(reply.headers[CACHE_CONTROL], "no-store");
    assert!(
        reply.headers[CONTENT_TYPE]
            .to_str()
            .is_ok_and(|t| t.starts_with("application/json"))
    );
    let body = reply.json();
    assert_eq!(body["error"], "upstream_unavailable");
    let description = body["error_description"].as_str().expect("a description");
    assert!(description.contains(says), "{description}");
    for secret in secrets {
        assert!(!reply.text().contains(secret), "the body names a secret");
    }
}

// ---- tokens that work, cached ------------------------------------------------------------

#[tokio::test]
async fn a_handed_out_token_opens_the_gis_geocoder() {
    let gis = Gis::start().await;
    let backend = Backend::for_gis(&gis).await;

    let body = handout(&backend).await;
    assert_eq!(body["expires_in"], LIFETIME);
    assert!(body.get("refresh_token").is_none());

    assert_eq!(
        geocode_paris(&gis, None).await.0,
        StatusCode::UNAUTHORIZED,
        "the geocoder needs a credential"
    );
    let token = access_token(&body);
    assert_eq!(
        geocode_paris(&gis, Some(&token)).await,
        (StatusCode::OK, Some("Paris".to_owned()))
    );
}

#[tokio::test]
async fn a_handed_out_token_holds_the_map_roles_only_and_cannot_manage_clients() {
    let gis = Gis::start().await;
    let backend = Backend::for_gis(&gis).await;
    let token = access_token(&handout(&backend).await);
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("Base64URL"),
    )
    .expect("JSON claims");
    assert_eq!(claims["scope"], "Evaluator");
    assert_eq!(
        claims["exp"]
            .as_i64()
            .zip(claims["iat"].as_i64())
            .map(|(e, i)| e - i),
        Some(LIFETIME as i64)
    );
    // The native client itself holds User: its own token opens the account API.
    for path in ["/account/clients", "/account/profile"] {
        let reply = get(&format!("{}{path}", gis.url), Some(&token)).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.text()
        );
        assert_eq!(reply.json()["error"], "insufficient_scope");
    }
    assert_eq!(geocode_paris(&gis, Some(&token)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_backend_refuses_an_empty_scope_or_a_lifetime_under_a_minute() {
    let upstream = || {
        backend::Upstream::new(
            "http://127.0.0.1:1",
            "cl_x",
            backend::ClientSecret::new("s"),
        )
        .expect("a valid upstream")
    };
    assert!(upstream().asking(" ", backend::DEFAULT_LIFETIME).is_err());
    assert!(
        upstream()
            .asking("Evaluator", std::time::Duration::from_secs(59))
            .is_err()
    );
    assert!(
        upstream()
            .asking("Evaluator Subscriber", std::time::Duration::from_secs(60))
            .is_ok()
    );
}

#[tokio::test]
async fn a_second_request_is_served_from_the_cache_without_an_exchange() {
    let gis = Gis::start().await;
    let backend = Backend::for_gis(&gis).await;

    let first = handout(&backend).await;
    gis.clock.advance(time::Duration::seconds(100));
    let second = handout(&backend).await;

    assert_eq!(access_token(&first), access_token(&second));
    assert_eq!(
        second["expires_in"],
        LIFETIME - 100,
        "the remaining lifetime"
    );
    assert_eq!(gis.token_requests(), 1);
    assert_eq!(backend.cache.fetches(), 1);
}

#[tokio::test]
async fn the_token_is_replaced_once_it_enters_its_refresh_margin() {
    let gis = Gis::start().await;
    let backend = Backend::for_gis(&gis).await;
    let margin = backend::refresh_margin(std::time::Duration::from_secs(LIFETIME)).as_secs();
    assert_eq!(margin, 60);

    let first = access_token(&handout(&backend).await);
    gis.clock
        .advance(time::Duration::seconds((LIFETIME - margin - 1) as i64));
    let kept = handout(&backend).await;
    assert_eq!(access_token(&kept), first, "one second before the margin");
    assert_eq!(kept["expires_in"], margin + 1);
    assert_eq!(gis.token_requests(), 1);

    gis.clock.advance(time::Duration::seconds(1));
    let renewed = handout(&backend).await;
    assert_ne!(access_token(&renewed), first, "at the margin");
    assert_eq!(renewed["expires_in"], LIFETIME);
    assert_eq!(gis.token_requests(), 2);
    assert_eq!(backend.cache.fetches(), 2);
    assert_eq!(
        geocode_paris(&gis, Some(&access_token(&renewed))).await.0,
        StatusCode::OK
    );

    assert_eq!(
        access_token(&handout(&backend).await),
        access_token(&renewed)
    );
    assert_eq!(gis.token_requests(), 2, "the new token is cached in turn");
}

#[test]
fn the_refresh_margin_is_a_minute_or_a_tenth_of_the_lifetime() {
    let margin = |secs| backend::refresh_margin(std::time::Duration::from_secs(secs));
    assert_eq!(margin(3600).as_secs(), 60);
    assert_eq!(margin(600).as_secs(), 60);
    assert_eq!(margin(300).as_secs(), 30);
    assert_eq!(margin(5).as_millis(), 500);
    assert_eq!(margin(0).as_secs(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_an_empty_cache_share_one_exchange() {
    const CALLERS: usize = 16;
    let gis = Gis::start().await;
    let backend = Backend::for_gis(&gis).await;
    gis.gate.send_replace(false);

    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let url = format!("{}/token", backend.url);
        callers.spawn(async move { get(&url, None).await });
    }
    // Every caller has reached the backend while the one exchange is held at the GIS
    // server; then the exchange may finish.
    let _ = backend
        .arrivals
        .subscribe()
        .wait_for(|n| *n == CALLERS)
        .await;
    let _ = gis.token_requests.subscribe().wait_for(|n| *n >= 1).await;
    gis.gate.send_replace(true);

    let mut tokens = Vec::new();
    while let Some(reply) = callers.join_next().await {
        let reply = reply.expect("a caller");
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        tokens.push(access_token(&reply.json()));
    }
    assert_eq!(tokens.len(), CALLERS);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(gis.token_requests(), 1);
    assert_eq!(backend.cache.fetches(), 1);
}

// ---- failures ---------------------------------------------------------------------------

#[tokio::test]
async fn refused_credentials_are_a_502_that_names_no_secret() {
    let gis = Gis::start().await;
    // A well-formed secret, but another store's.
    let other = app::demo_store().expect("demo store");
    let wrong = other
        .generated
        .iter()
        .find(|g| g.kind == ClientKind::NativeConfidential)
        .expect("a NativeConfidential default client")
        .credential
        .expose()
        .to_owned();
    let backend = Backend::start(&gis.url, &gis.client_id, &wrong, &gis.clock).await;

    let reply = get(&format!("{}/token", backend.url), None).await;
    assert_upstream_unavailable(
        &reply,
        "refused the client credentials",
        &[&wrong, &gis.secret],
    );
    assert_eq!(gis.token_requests(), 1);

    // A refusal is not cached: the next request asks again.
    let again = get(&format!("{}/token", backend.url), None).await;
    assert_eq!(again.status, StatusCode::BAD_GATEWAY);
    assert_eq!(gis.token_requests(), 2);
}

#[tokio::test]
async fn an_unreachable_gis_server_is_a_502_that_names_no_secret() {
    let gis = Gis::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let down = format!("http://{}", closed.local_addr().expect("bound"));
    drop(closed);
    let backend = Backend::start(&down, &gis.client_id, &gis.secret, &gis.clock).await;

    let reply = get(&format!("{}/token", backend.url), None).await;
    assert_upstream_unavailable(&reply, "could not be reached", &[&gis.secret]);
    assert_eq!(backend.cache.fetches(), 1);
}

// ---- configuration, the page, Debug -------------------------------------------------------

#[tokio::test]
async fn urls_that_cannot_carry_the_exchange_are_refused() {
    let make = |url: &str, id: &str, secret: &str| {
        backend::Upstream::new(url, id, backend::ClientSecret::new(secret))
    };
    for url in [
        "https://gis.example",
        "ftp://gis.example",
        "gis.example",
        "http://",
        "http://gis.example/?key=1",
        "",
    ] {
        assert!(
            matches!(make(url, "cl_x", "s"), Err(backend::ConfigError::GisUrl(_))),
            "{url}"
        );
    }
    assert!(matches!(
        make("http://gis.example", "", "s"),
        Err(backend::ConfigError::EmptyClientId)
    ));
    assert!(matches!(
        make("http://gis.example", "cl_x", ""),
        Err(backend::ConfigError::EmptySecret)
    ));
    let upstream = make("http://127.0.0.1:8080/maps/", "cl_x", "s").expect("valid");
    assert_eq!(upstream.gis_url(), "http://127.0.0.1:8080/maps");
}

#[tokio::test]
async fn the_demo_page_gets_a_token_and_calls_the_gis_server() {
    let gis = Gis::start().await;
    let backend = Backend::for_gis(&gis).await;

    let reply = get(&format!("{}/", backend.url), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers[CONTENT_TYPE]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html"))
    );
    let page = reply.text();
    assert!(page.contains(r#"fetch("/token""#));
    assert!(page.contains(&format!("const GIS = \"{}\";", gis.url)));
    assert!(page.contains("\"Bearer \""));
    assert!(!page.contains(&gis.secret));
    assert_eq!(gis.token_requests(), 0, "the page itself needs no token");
}

#[tokio::test]
async fn the_secret_and_tokens_never_reach_debug() {
    let gis = Gis::start().await;
    let backend = Backend::for_gis(&gis).await;
    let body = handout(&backend).await;
    let token = access_token(&body);

    let secret = backend::ClientSecret::new(gis.secret.clone());
    let handout: backend::Handout = serde_json::from_value(body).expect("a handout");
    for debug in [
        format!("{secret:?}"),
        format!("{:?}", backend.cache),
        format!("{:?}", backend.cache.upstream()),
        format!("{handout:?}"),
    ] {
        assert!(!debug.contains(&gis.secret), "{debug}");
        assert!(!debug.contains(&token), "{debug}");
        assert!(!debug.contains("Basic"), "{debug}");
    }
    assert!(format!("{secret:?}").contains("redacted"));
}
