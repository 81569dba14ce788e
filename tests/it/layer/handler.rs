//! What the wrapped handler sees of an admitted request, and the headers the layer adds to
//! its responses.

use super::*;

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
