//! The demo server's routes behind the layer: what each demo credential reaches, the
//! refusals, preflight, and the handlers' own checks.

use axum::body::Body;

use super::*;

#[tokio::test]
async fn health_is_public() {
    let demo = demo();
    let reply = send(demo.router.clone(), get("/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ok");
}

#[tokio::test]
async fn a_tile_with_the_demo_javascript_key_is_a_private_png() {
    let demo = demo();
    for route in ["tiles", "imagery"] {
        let uri = format!("/{route}/3/1/2.png?apikey={}", demo.api_key);
        let reply = send(demo.router.clone(), get(&uri)).await;
        assert_png(&reply);
        assert_eq!(reply.body.as_ref(), app::TILE_PNG);
        // The handler allows a day of caching; the layer keeps shared caches out.
        assert_eq!(
            reply.header(header::CACHE_CONTROL),
            Some("private, max-age=86400")
        );
    }
}

#[tokio::test]
async fn the_javascript_key_reaches_every_plugin_api() {
    let demo = demo();
    let key = &demo.api_key;
    let reply = send(
        demo.router.clone(),
        get(&format!("/elevation?lat=46.5&lon=7.9&apikey={key}")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["elevation_m"].is_f64());
    let reply = send(
        demo.router.clone(),
        get(&format!("/reverse-geocode?lat=48.8&lon=2.3&APIKEY={key}")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["place"]["name"], "Paris");
}

#[tokio::test]
async fn the_javascript_key_cannot_reach_geocode_or_the_profile() {
    let demo = demo();
    // The WMS refuses it too, as an OGC exception report (example_server::wms).
    for path in ["/geocode?q=paris&", "/account/profile?"] {
        let uri = format!("{path}apikey={}", demo.api_key);
        let reply = send(demo.router.clone(), get(&uri)).await;
        reply.assert_refused(403, "insufficient_scope");
        assert!(
            reply
                .header(header::WWW_AUTHENTICATE)
                .is_some_and(|c| c.contains("error=\"insufficient_scope\"")),
        );
        assert!(!String::from_utf8_lossy(&reply.body).contains(&demo.api_key));
    }
}

#[tokio::test]
async fn a_request_without_a_key_gets_a_bare_bearer_challenge() {
    let demo = demo();
    for uri in ["/tiles/1/0/0.png", "/geocode?q=paris", "/account/profile"] {
        let reply = send(demo.router.clone(), get(uri)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.header(header::WWW_AUTHENTICATE),
            Some("Bearer realm=\"gis-auth\"")
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
        demo.router.clone(),
        get(&format!("/tiles/1/0/0.png?apikey={typo}")),
    )
    .await;
    reply.assert_refused(401, "invalid_token");
}

#[tokio::test]
async fn the_profile_names_the_calling_account_and_client() {
    let demo = demo();
    let reply = send(
        demo.router.clone(),
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
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
    assert_ne!(demo.native, demo.javascript);
}

#[tokio::test]
async fn an_unknown_bearer_token_is_an_invalid_token() {
    let demo = demo();
    let reply = send(demo.router.clone(), bearer("/account/profile", "made-up")).await;
    reply.assert_refused(401, "invalid_token");
}

#[tokio::test]
async fn the_native_client_geocodes_and_draws_wms_maps() {
    let demo = demo();
    let token = token_of(&demo.native);
    let reply = send(demo.router.clone(), bearer("/geocode?q=san", &token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["query"], "san");
    assert_eq!(body["results"][0]["name"], "San Francisco");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1));

    let reply = send(demo.router.clone(), bearer("/geocode?q=S%C3%83O", &token)).await;
    assert_eq!(reply.json()["results"][0]["name"], "São Paulo");

    let reply = send(
        demo.router.clone(),
        bearer(
            "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=streets&STYLES=\
             &CRS=EPSG:3857&BBOX=0,0,20037508,20037508&WIDTH=256&HEIGHT=256&FORMAT=image/png",
            &token,
        ),
    )
    .await;
    assert_png(&reply);
    let reply = send(
        demo.router.clone(),
        bearer("/wms?service=WMS&request=GetCapabilities", &token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("text/xml"));
    assert!(reply.text().contains("<WMS_Capabilities version=\"1.3.0\""));
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
        let reply = send(demo.router.clone(), req).await;
        reply.assert_refused(403, "access_denied");
        assert_eq!(
            reply.rejection().map(Rejection::kind),
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
    let reply = send(demo.router.clone(), req).await;
    // The CORS layer around the auth layer answers it: no credential is asked for.
    assert!(reply.rejection().is_none());
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
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
            demo.router.clone(),
            get(&format!("{path}?apikey={}", demo.api_key)),
        )
        .await;
        reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", None);
    }
    let reply = send(
        demo.router.clone(),
        get(&format!("/tiles/22/4194303/0.png?apikey={}", demo.api_key)),
    )
    .await;
    assert_png(&reply);
}

#[tokio::test]
async fn elevation_is_deterministic_and_checks_its_coordinates() {
    let demo = demo();
    let uri = format!("/elevation?lat=27.98&lon=86.92&apikey={}", demo.api_key);
    let first = send(demo.router.clone(), get(&uri)).await.json();
    let second = send(demo.router.clone(), get(&uri)).await.json();
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
        let reply = send(demo.router.clone(), get(&uri)).await;
        reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", None);
        assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/json"));
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
        let body = send(demo.router.clone(), get(&uri)).await.json();
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
        let reply = send(demo.router.clone(), bearer(&uri, &token)).await;
        reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", None);
    }
    let reply = send(demo.router.clone(), bearer("/geocode?q=atlantis", &token)).await;
    assert_eq!(reply.json()["results"], serde_json::json!([]));
}
