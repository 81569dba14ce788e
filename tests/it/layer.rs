//! The layer as a Tower citizen: the principal handed to the handler, credentials removed
//! before it runs, the headers added to its responses, the rejection response and its
//! settings, readiness, and the two ways of mounting it (plain Tower and axum).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::harness::world::{
    CountingStore, REPLY_CACHE_CONTROL, REPLY_VARY, World, echo, get, stranger_key, tile, with_key,
};
use axum::extract::{ConnectInfo, Extension};
use axum::{Json, Router, routing};
use bytes::Bytes;
use gis_auth::client::ClientSpec;
use gis_auth::{Principal, Rejection, RejectionKind};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use crate::harness::reply::{Reply, send};

// ---- what the handler sees -----------------------------------------------------------

#[tokio::test]
async fn the_principal_reaches_the_handler() {
    let world = World::new();
    let r = world.send(get(&tile(&world.key()))).await;
    assert_eq!(
        r.principal(),
        json!({
            "client_id": world.js_id().as_str(),
            "account_id": "acme",
            "kind": "JavaScript",
            "roles": ["Evaluator", "User"],
            "api": "WorldStreets",
            "source": "ApiKey",
        })
    );
    let r = world
        .send(get("/account/profile").bearer(&world.token()))
        .await;
    assert_eq!(
        r.principal(),
        json!({
            "client_id": world.native_id().as_str(),
            "account_id": "acme",
            "kind": "NativeConfidential",
            "roles": ["Evaluator", "User"],
            "api": "Profile",
            "source": "BearerToken",
        })
    );
}

#[tokio::test]
async fn the_authorization_header_is_removed_before_the_handler_runs() {
    let world = World::new();
    let r = world
        .send(
            get("/geocode?q=x")
                .bearer(&world.token())
                .header("x-other", "kept"),
        )
        .await;
    assert!(r.seen_header("authorization").is_empty());
    assert_eq!(r.seen_header("x-other"), ["kept"]);
    assert_eq!(r.seen_uri(), "/geocode?q=x");
}

#[tokio::test]
async fn the_api_key_parameter_is_removed_in_any_case_and_other_parameters_survive() {
    let world = World::new();
    let key = world.key();
    for (uri, seen) in [
        (tile(&key), "/tiles/1/2/3.png".to_owned()),
        (
            format!("/elevation?lat=47.6&APIKEY={key}&lon=-122.3&q=a%2Cb"),
            "/elevation?lat=47.6&lon=-122.3&q=a%2Cb".to_owned(),
        ),
        (
            format!("/elevation?ApiKey={key}&apikeys=1&my_apikey=2&lat=1"),
            "/elevation?apikeys=1&my_apikey=2&lat=1".to_owned(),
        ),
        (
            format!("/elevation?lat=1&api%6Bey={key}"),
            "/elevation?lat=1".to_owned(),
        ),
        (
            format!("http://maps.test/tiles/1/2/3.png?apikey={key}&v=2"),
            "http://maps.test/tiles/1/2/3.png?v=2".to_owned(),
        ),
        (
            format!("/elevation?apikey={}", key.replace('_', "%5F")),
            "/elevation".to_owned(),
        ),
    ] {
        let r = world.send(get(&uri)).await;
        assert_eq!(r.seen_uri(), seen);
        assert!(!r.text().contains(&key));
    }
}

#[tokio::test]
async fn stripping_can_be_turned_off() {
    let world = World::new();
    let layer = world.layer().strip_credentials(false);
    let key = world.key();
    let r = world
        .send_via(&layer, get(&format!("/elevation?lat=1&ApiKey={key}")))
        .await;
    assert_eq!(r.seen_uri(), format!("/elevation?lat=1&ApiKey={key}"));
    let token = world.token();
    let r = world.send_via(&layer, get("/geocode").bearer(&token)).await;
    assert_eq!(r.seen_header("authorization"), [format!("Bearer {token}")]);
}

// ---- headers on the handler's responses ------------------------------------------------

/// The `Cache-Control` directives of a reply, lower-cased.
fn directives(r: &Reply) -> Vec<String> {
    r.header_all("cache-control")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

#[tokio::test]
async fn api_key_responses_are_private() {
    let world = World::new();
    let key = world.key();
    let cached = |cc: &str| get(&tile(&key)).header(REPLY_CACHE_CONTROL, cc);

    let r = world.send(get(&tile(&key))).await;
    assert_eq!(directives(&r), ["private"]);

    let r = world.send(cached("public, max-age=3600")).await;
    let d = directives(&r);
    assert!(d.contains(&"private".into()), "{d:?}");
    assert!(d.contains(&"max-age=3600".into()), "{d:?}");
    assert!(!d.contains(&"public".into()), "{d:?}");

    let r = world.send(cached("max-age=60, s-maxage=600")).await;
    let d = directives(&r);
    assert!(
        d.contains(&"private".into()) && d.contains(&"max-age=60".into()),
        "{d:?}"
    );
    assert!(!d.iter().any(|x| x.starts_with("s-maxage")), "{d:?}");

    let r = world.send(cached("no-cache")).await;
    let d = directives(&r);
    assert!(
        d.contains(&"private".into()) && d.contains(&"no-cache".into()),
        "{d:?}"
    );
}

#[tokio::test]
async fn stricter_cache_settings_of_the_handler_are_kept() {
    let world = World::new();
    let key = world.key();
    for cc in [
        "no-store",
        "private, max-age=5",
        "private",
        "no-store, max-age=0",
    ] {
        let r = world
            .send(get(&tile(&key)).header(REPLY_CACHE_CONTROL, cc))
            .await;
        assert_eq!(r.header_all("cache-control"), [cc]);
    }
}

#[tokio::test]
async fn bearer_and_public_route_responses_keep_the_handlers_cache_control() {
    let world = World::new();
    let r = world.send(get("/geocode").bearer(&world.token())).await;
    assert!(r.header("cache-control").is_none());
    let r = world
        .send(get("/health").header(REPLY_CACHE_CONTROL, "public, max-age=60"))
        .await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
}

#[tokio::test]
async fn vary_origin_marks_every_answer_that_read_the_origin() {
    let world = World::new();
    let (_, key) =
        world.js_client(ClientSpec::javascript("Web").allowed_origins(["*.example.com"]));
    let (_, lenient) = world.js_client(
        ClientSpec::javascript("Web and server")
            .allowed_origins(["*.example.com"])
            .allow_missing_origin(true)
            .allowed_ips(["203.0.113.0/24"]),
    );
    let good = "https://maps.example.com";
    let cases = [
        ("allowed", get(&tile(&key)).origin(good), 200),
        (
            "bad origin",
            get(&tile(&key)).origin("https://evil.com"),
            403,
        ),
        ("no origin", get(&tile(&key)), 403),
        (
            "not a plugin",
            get(&with_key("/geocode", &key)).origin(good),
            403,
        ),
        (
            "allowed without any origin",
            get(&tile(&lenient)).peer("203.0.113.1:1"),
            200,
        ),
        (
            "bad address",
            get(&tile(&lenient)).peer("198.51.100.1:1"),
            403,
        ),
    ];
    for (what, req, status) in cases {
        let r = world.send(req).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_eq!(r.header_all("vary"), ["Origin"], "{what}");
    }
}

#[tokio::test]
async fn vary_origin_joins_the_handlers_own_vary() {
    let world = World::new();
    let (_, key) =
        world.js_client(ClientSpec::javascript("Web").allowed_origins(["*.example.com"]));
    let from = |vary: &str| {
        get(&tile(&key))
            .origin("https://maps.example.com")
            .header(REPLY_VARY, vary)
    };
    let r = world.send(from("Accept-Encoding")).await;
    assert_eq!(r.header_all("vary"), ["Accept-Encoding", "Origin"]);
    let r = world.send(from("accept-encoding, origin")).await;
    assert_eq!(r.header_all("vary"), ["accept-encoding, origin"]);
    let r = world.send(from("*")).await;
    assert_eq!(r.header_all("vary"), ["*"]);
}

#[tokio::test]
async fn answers_that_did_not_read_the_origin_do_not_vary_on_it() {
    let world = World::new();
    let origin = "https://maps.example.com";
    for req in [
        get(&tile(&world.key())).origin(origin),
        get("/geocode").bearer(&world.token()).origin(origin),
        get("/tiles/1/2/3.png").origin(origin),
        get(&tile(&stranger_key())).origin(origin),
        get("/admin").origin(origin),
        get("/health").origin(origin),
    ] {
        let r = world.send(req).await;
        assert!(r.header("vary").is_none(), "{} {}", r.status, r.text());
    }
}

// ---- the rejection -------------------------------------------------------------------

#[tokio::test]
async fn the_rejection_is_in_the_response_extensions() {
    let world = World::new();
    let key = world.key();
    for (req, kind) in [
        (get("/tiles/1/2/3.png"), RejectionKind::MissingCredential),
        (
            get(&tile(&key)).bearer("t"),
            RejectionKind::MultipleCredentials,
        ),
        (
            get("/tiles/1/2/3.png?apikey="),
            RejectionKind::EmptyCredential,
        ),
        (
            get("/geocode").header("authorization", "Bearer a b"),
            RejectionKind::MalformedHeader,
        ),
        (get(&tile("x")), RejectionKind::MalformedCredential),
        (
            get(&tile(&stranger_key())),
            RejectionKind::UnknownCredential,
        ),
        (get(&with_key("/wms", &key)), RejectionKind::NotPluginApi),
        (get("/admin"), RejectionKind::RouteNotAllowed),
    ] {
        let r = world.send(req).await;
        let rejection = r.rejection().expect("a rejection");
        assert_eq!(rejection.kind(), kind);
        assert_eq!(rejection.status(), r.status);
        assert_eq!(r.json()["error"], rejection.error_code());
        assert_eq!(r.json()["error_description"], rejection.description());
    }
}

#[tokio::test]
async fn a_custom_rejection_response_is_used_and_still_gets_vary_and_the_rejection() {
    let world = World::new();
    let (_, key) =
        world.js_client(ClientSpec::javascript("Web").allowed_origins(["*.example.com"]));
    let layer = world.layer().rejection_response(|rejection: &Rejection| {
        let mut res = Response::new(Bytes::from(format!("no: {:?}", rejection.kind())));
        *res.status_mut() = if rejection.status() == StatusCode::UNAUTHORIZED {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::IM_A_TEAPOT
        };
        res
    });
    let r = world
        .send_via(&layer, get(&tile(&key)).origin("https://evil.com"))
        .await;
    assert_eq!(r.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(r.text(), "no: OriginNotAllowed");
    assert!(r.varies_on_origin());
    assert_eq!(r.kind(), RejectionKind::OriginNotAllowed);
    let r = world.send_via(&layer, get("/tiles/1/2/3.png")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.text(), "no: MissingCredential");
    assert_eq!(r.kind(), RejectionKind::MissingCredential);
    // Allowed requests never see it.
    let r = world
        .send_via(&layer, get(&tile(&key)).origin("https://maps.example.com"))
        .await;
    r.assert_ok();
}

#[tokio::test]
async fn refusals_never_contain_the_credential() {
    let world = World::new();
    let (id, key) = world.js_client(
        ClientSpec::javascript("Web")
            .allowed_origins(["*.example.com"])
            .allowed_ips(["203.0.113.0/24"]),
    );
    let token = world.token();
    let good = "https://maps.example.com";
    let mut replies = Vec::new();
    for req in [
        get(&tile(&key))
            .origin("https://evil.com")
            .peer("203.0.113.1:1"),
        get(&tile(&key)).origin(good).peer("198.51.100.1:1"),
        get(&tile(&key)).origin(good),
        get(&with_key("/geocode", &key))
            .origin(good)
            .peer("203.0.113.1:1"),
        get(&format!("{}&APIKEY={key}", tile(&key))),
        get(&tile(&key)).bearer(&token),
        get(&tile(&format!("{key}{key}"))),
        get(&tile(&key[..40])),
        get("/geocode").header("authorization", &format!("Bearer {token} {key}")),
        get("/geocode").bearer(&format!("{token}x")),
        get("/admin").bearer(&token),
    ] {
        replies.push(world.send(req).await);
    }
    world
        .store
        .set_client_status(&id, gis_auth::client::Status::Inactive)
        .expect("stored");
    replies.push(
        world
            .send(get(&tile(&key)).origin(good).peer("203.0.113.1:1"))
            .await,
    );
    for r in &replies {
        assert!(r.status.is_client_error(), "{}", r.status);
        r.assert_does_not_reveal(&key);
        r.assert_does_not_reveal(&key[11..]);
        r.assert_does_not_reveal(&token);
        r.assert_does_not_reveal(id.as_str());
        assert!(!format!("{:?}", r.rejection()).contains(&key));
    }
}

#[test]
fn debug_output_never_contains_a_credential() {
    let world = World::new();
    let key = world.key();
    let secret = world.acme.native.credential.expose().to_owned();
    for text in [
        format!("{:?}", world.acme),
        format!("{:?}", world.store),
        format!("{:?}", world.layer()),
        format!("{:?}", world.service()),
        format!("{:?}", world.store.client(&world.js_id())),
        format!(
            "{:?}",
            gis_auth::credentials::CredentialRules::default()
                .extract(&http::HeaderMap::new(), Some(&format!("apikey={key}")))
        ),
    ] {
        assert!(!text.contains(&key), "{text}");
        assert!(!text.contains(&secret), "{text}");
        assert!(
            !text.contains(&key[11..]) && !text.contains(&secret[11..]),
            "{text}"
        );
    }
}

// ---- settings ------------------------------------------------------------------------

#[tokio::test]
async fn a_custom_query_parameter_name_is_used_instead_of_apikey() {
    let world = World::new();
    let layer = world.layer().query_param("key");
    let key = world.key();
    let r = world
        .send_via(&layer, get(&format!("/elevation?lat=1&KEY={key}&lon=2")))
        .await;
    assert_eq!(r.seen_uri(), "/elevation?lat=1&lon=2");
    let r = world
        .send_via(
            &layer,
            get(&format!("/elevation?key={key}&apikey=left-alone")),
        )
        .await;
    assert_eq!(r.seen_uri(), "/elevation?apikey=left-alone");
    let r = world.send_via(&layer, get(&tile(&key))).await;
    r.assert_missing_credential();
    let r = world
        .send_via(&layer, get(&format!("/elevation?key={key}&Key={key}")))
        .await;
    r.assert_invalid_request();
}

#[tokio::test]
async fn the_credential_size_limit_is_configurable_and_checked_before_the_store() {
    let world = World::new();
    let counting = Arc::new(CountingStore::new(world.store.clone()));
    let layer = world.layer_over(counting.clone()).max_credential_len(32);
    let key = world.key();
    assert!(key.len() > 32);
    let r = world.send_via(&layer, get(&tile(&key))).await;
    r.assert_invalid_request();
    assert_eq!(r.kind(), RejectionKind::CredentialTooLong);
    let r = world
        .send_via(&layer, get("/geocode").bearer(&"t".repeat(33)))
        .await;
    r.assert_invalid_request();
    assert_eq!(counting.calls(), 0);
    assert_eq!(world.tokens.calls(), 0);
    let r = world
        .send_via(&layer, get("/geocode").bearer(&"t".repeat(32)))
        .await;
    r.assert_invalid_token();
    assert_eq!(world.tokens.calls(), 1);
}

// ---- readiness -----------------------------------------------------------------------

/// A service with a fixed number of slots: `poll_ready` reserves one for the next `call`,
/// which fails if it was not reserved. Clones share the slots but not a reservation.
struct Slots {
    free: Arc<Mutex<(usize, Vec<Waker>)>>,
    reserved: bool,
    unreserved_calls: Arc<AtomicUsize>,
}

impl Slots {
    fn new(slots: usize) -> Self {
        Self {
            free: Arc::new(Mutex::new((slots, Vec::new()))),
            reserved: false,
            unreserved_calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn release(&self) {
        let mut free = self.free.lock().expect("not poisoned");
        free.0 += 1;
        for waker in free.1.drain(..) {
            waker.wake();
        }
    }

    fn free_slots(&self) -> usize {
        self.free.lock().expect("not poisoned").0
    }
}

impl Clone for Slots {
    fn clone(&self) -> Self {
        Self {
            free: self.free.clone(),
            reserved: false,
            unreserved_calls: self.unreserved_calls.clone(),
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        if self.reserved {
            self.release();
        }
    }
}

impl Service<Request<Full<Bytes>>> for Slots {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.reserved {
            return Poll::Ready(Ok(()));
        }
        let mut free = self.free.lock().expect("not poisoned");
        if free.0 == 0 {
            free.1.push(cx.waker().clone());
            return Poll::Pending;
        }
        free.0 -= 1;
        self.reserved = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> Self::Future {
        if !self.reserved {
            self.unreserved_calls.fetch_add(1, Ordering::SeqCst);
            let mut res = Response::new(Full::default());
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return std::future::ready(Ok(res));
        }
        self.reserved = false;
        // The slot is held for the length of the call; this call ends at once.
        self.release();
        std::future::ready(Ok(echo(&req)))
    }
}

#[tokio::test]
async fn readiness_reserved_by_poll_ready_is_carried_into_the_call() {
    let world = World::new();
    let slots = Slots::new(1);
    let unreserved = slots.unreserved_calls.clone();
    let free = slots.free.clone();
    let mut svc = world.layer().layer(slots);
    let key = world.key();
    let requests = [
        get(&tile(&key)),
        get(&tile(&stranger_key())),
        get("/tiles/1/2/3.png"),
        get(&tile(&key)),
        get("/geocode").bearer(&world.token()),
        get("/admin"),
        get(&tile(&key)),
    ];
    for req in requests {
        let ready = tokio::time::timeout(std::time::Duration::from_secs(5), svc.ready())
            .await
            .expect("a slot is free again")
            .expect("ready");
        let res = ready.call(req.into_request()).await.expect("answers");
        assert_ne!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(unreserved.load(Ordering::SeqCst), 0);
    drop(svc);
    assert_eq!(
        free.lock().expect("not poisoned").0,
        1,
        "every slot came back"
    );
}

#[tokio::test]
async fn poll_ready_is_the_inner_services() {
    let world = World::new();
    let slots = Slots::new(0);
    let mut svc = world.layer().layer(slots);
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(svc.poll_ready(&mut cx).is_pending());
    svc.get_ref().release();
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(svc.get_ref().free_slots(), 0);
}

#[tokio::test]
async fn concurrent_requests_through_clones_of_one_service() {
    let world = World::new();
    let svc = world.service();
    let key = world.key();
    let token = world.token();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let svc = svc.clone();
        let req = match i % 3 {
            0 => get(&tile(&key)),
            1 => get("/geocode").bearer(&token),
            _ => get(&tile(&stranger_key())),
        };
        tasks.push(tokio::spawn(async move { (i, send(svc, req).await) }));
    }
    for task in tasks {
        let (i, r) = task.await.expect("no panic");
        if i % 3 == 2 {
            r.assert_invalid_token();
        } else {
            r.assert_ok();
        }
    }
}

// ---- mounting ------------------------------------------------------------------------

#[tokio::test]
async fn works_with_a_plain_service_builder_and_service_fn() {
    let world = World::new();
    let svc = ServiceBuilder::new()
        .layer(world.layer())
        .service_fn(|req: Request<Full<Bytes>>| async move { Ok::<_, Infallible>(echo(&req)) });
    let r = send(svc.clone(), get(&tile(&world.key()))).await;
    assert_eq!(r.principal()["api"], "WorldStreets");
    send(svc.clone(), get("/tiles/1/2/3.png"))
        .await
        .assert_missing_credential();
    send(svc, get("/health")).await.assert_ok();
}

async fn profile(Extension(who): Extension<Principal>) -> Json<Value> {
    Json(json!({
        "account_id": who.account_id().as_str(),
        "client_id": who.client_id().as_str(),
    }))
}

async fn streets(Extension(who): Extension<Principal>) -> Json<Value> {
    Json(json!({ "api": who.api() }))
}

fn gis_app(layer: gis_auth::AuthLayer) -> Router {
    Router::new()
        .route("/account/profile", routing::get(profile))
        .route("/tiles/{z}/{x}/{y}", routing::get(streets))
        .route("/health", routing::get(|| async { "ok" }))
        .layer(layer)
}

#[tokio::test]
async fn works_with_an_axum_router() {
    let world = World::new();
    let app = gis_app(world.layer());
    let r = send(app.clone(), get("/account/profile").bearer(&world.token())).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"account_id": "acme", "client_id": world.native_id().as_str()})
    );
    let r = send(app.clone(), get(&tile(&world.key()))).await;
    assert_eq!(r.json(), json!({"api": "WorldStreets"}));
    assert_eq!(r.header("cache-control"), Some("private"));
    let r = send(app.clone(), get("/account/profile")).await;
    r.assert_missing_credential();
    let r = send(
        app.clone(),
        get(&with_key("/account/profile", &world.key())),
    )
    .await;
    r.assert_insufficient_scope();
    let r = send(app, get("/health")).await;
    assert_eq!(r.text(), "ok");
}

/// `GET path` over a fresh connection; gives the status and the raw response.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the server listens");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("sent");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_over_a_real_socket_with_the_peer_from_axum_connect_info() {
    let world = World::new();
    let (_, local) = world.js_client(ClientSpec::javascript("Local").allowed_ips(["127.0.0.1"]));
    let (_, remote) =
        world.js_client(ClientSpec::javascript("Remote").allowed_ips(["203.0.113.0/24"]));
    let layer = world
        .layer()
        .peer_addr(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip()));
    let app = gis_app(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound");
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let (status, raw) = tokio::task::spawn_blocking(move || {
        let ok = http_get(addr, &tile(&local));
        let refused = http_get(addr, &tile(&remote));
        let missing = http_get(addr, "/tiles/1/2/3.png");
        let health = http_get(addr, "/health");
        (
            [ok.0, refused.0, missing.0, health.0],
            [ok.1, refused.1, missing.1, health.1],
        )
    })
    .await
    .expect("the client ran");
    server.abort();

    assert_eq!(status, [200, 403, 401, 200], "{raw:#?}");
    let lower = |s: &str| s.to_ascii_lowercase();
    assert!(
        lower(&raw[0]).contains("cache-control: private"),
        "{}",
        raw[0]
    );
    assert!(raw[1].contains("\"access_denied\""), "{}", raw[1]);
    assert!(
        lower(&raw[2]).contains("www-authenticate: bearer realm=\"gis-auth\"\r\n"),
        "{}",
        raw[2]
    );
}
