//! Through a real socket: the peer address the IP rules see, behind a trusted proxy and
//! without one, and the load test's baselines.

use super::clients_file::generated_of;
use super::*;

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
    let reply = send(
        router.clone(),
        get(&format!("/tiles/2/1/1.png?apikey={local}")),
    )
    .await;
    reply.assert_refused(403, "access_denied");
    assert_eq!(
        reply.rejection().map(Rejection::kind),
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
    let bare = send(baselines.clone(), get("/tiles/3/1/2.png")).await;
    assert_png(&bare);
    assert_eq!(bare.header(header::CACHE_CONTROL), Some("max-age=86400"));
    assert!(
        bare.headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );

    // With the key: hashed, found, taken out of the URI, and the tile made private.
    let floor = send(
        baselines.clone(),
        get(&format!("/tiles/3/1/2.png?apikey={key}")),
    )
    .await;
    assert_png(&floor);
    assert_eq!(floor.header(header::CACHE_CONTROL), Some("private"));

    // An unknown key, or a key in the wrong place, is refused before the handler runs.
    let mut unknown = key.clone();
    unknown.replace_range(..1, if key.starts_with('A') { "B" } else { "A" });
    for req in [
        get(&format!("/tiles/3/1/2.png?apikey={unknown}")),
        get(&format!("/tiles/3/1/2.png?apikey={key}&apikey={key}")),
        bearer("/tiles/3/1/2.png", &key),
    ] {
        let reply = send(baselines.clone(), req).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body.is_empty());
    }
    // The example's own router, every route of it, with the auth layer taken out: what the
    // guarded router refuses without a key, the baselines serve.
    let guarded = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    for path in ["/geocode?q=paris", "/tiles/3/1/2.png"] {
        let refused = send(guarded.clone(), get(path)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{path}");
        let served = send(baselines.clone(), get(path)).await;
        assert_eq!(served.status, StatusCode::OK, "{path}");
    }
    let health = send(baselines.clone(), get("/health")).await;
    assert_eq!(health.status, StatusCode::OK);
}
