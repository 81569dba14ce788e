//! The rejection: its JSON body, its challenge, its place in the response extensions, and
//! a responder of one's own.

use super::*;

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

#[tokio::test]
async fn an_api_can_have_its_refusals_written_as_ogc_exception_reports() {
    use gis_auth::client::{Action, Grant, Role};
    use gis_auth::policy::{Api, ErrorFormat, RouteTable};
    let world = World::new();
    let maps = || [Role::EVALUATOR];
    let routes = RouteTable::new()
        .route(
            http::Method::GET,
            "/ows",
            Api::new("OWS", maps())
                .items_from_query_list("layers")
                .open_items(["base"])
                .error_format(ErrorFormat::OgcServiceException),
        )
        .unwrap()
        .route(http::Method::GET, "/json", Api::new("Json", maps()))
        .unwrap();
    let layer = gis_auth::AuthLayer::new(world.store.clone(), routes)
        .clock(Arc::new(world.clock.clone()))
        .token_verifier(world.tokens.clone());
    let (_, granted) = world.native_client(
        ClientSpec::native("Granted").grants([Grant::new("roads", [Action::Read]).unwrap()]),
    );
    let (_, plain) = world.native_client(ClientSpec::native("Plain"));
    let ok = |r: Reply| assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    ok(world
        .send_via(&layer, get("/ows?LAYERS=base,roads").bearer(&granted))
        .await);
    ok(world
        .send_via(&layer, get("/ows?Layers=base").bearer(&plain))
        .await);
    ok(world
        .send_via(&layer, get("/ows?REQUEST=GetCapabilities").bearer(&plain))
        .await);
    for (req, status, code) in [
        (
            get("/ows?LAYERS=base,roads").bearer(&plain),
            403,
            "insufficient_scope",
        ),
        (
            get("/ows?LAYERS=base&layers=base").bearer(&granted),
            403,
            "insufficient_scope",
        ),
        (get("/ows"), 401, "unauthorized"),
        (get("/ows").bearer("nobody"), 401, "invalid_token"),
    ] {
        let r = world.send_via(&layer, req).await;
        assert_eq!(r.status.as_u16(), status, "{}", r.describe());
        assert_eq!(r.header(http::header::CONTENT_TYPE), Some("text/xml"));
        assert_eq!(r.error(), code);
        let rejection = r.rejection().expect("the rejection");
        assert_eq!(rejection.error_format(), ErrorFormat::OgcServiceException);
        assert!(r.text().contains(&format!(
            ">{}</ServiceException>",
            rejection.description().replace('<', "&lt;").replace('>', "&gt;")
        )));
    }
    let r = world.send_via(&layer, get("/json")).await;
    assert_eq!(
        r.header(http::header::CONTENT_TYPE),
        Some("application/json")
    );
    assert_eq!(r.error(), "unauthorized");
}
