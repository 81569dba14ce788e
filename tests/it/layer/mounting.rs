//! Mounting the layer: plain Tower and axum.

use super::*;

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
