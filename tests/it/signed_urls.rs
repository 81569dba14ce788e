//! Signed tile URLs end to end, through the example server's router: minting with
//! `POST /account/tile-urls` and `GET /tiles.json`, the layer taking them as a third
//! credential, their scope and expiry, the client's standing and credential generation,
//! the public `Cache-Control` capped at the expiry, and the charge to the minting client's
//! account.

use axum::body::Body;
use gis_auth::client::{Role, Status};
use gis_auth::policy::TILE_COST;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::harness::reply::Reply;
use crate::harness::request::get;
use crate::harness::server::{Server, roles};

/// `POST /account/tile-urls` with `acme`'s token.
async fn mint(server: &Server, body: Value) -> Reply {
    let token = server.token_of(&server.acme.native).await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/account/tile-urls")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("a request");
    server.send(req).await
}

/// A template for `acme`'s JavaScript client, with `extra` fields in the request.
async fn template(server: &Server, extra: Value) -> String {
    let mut body =
        json!({"client": server.acme.javascript.client.id().as_str(), "api": "WorldStreets"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let reply = mint(server, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.describe());
    reply.json()["template"]
        .as_str()
        .expect("a template")
        .to_owned()
}

fn tile(template: &str, z: u32, x: u32, y: u32) -> String {
    template
        .replace("{z}", &z.to_string())
        .replace("{x}", &x.to_string())
        .replace("{y}", &y.to_string())
}

#[tokio::test]
async fn minting_answers_a_template_that_holds_no_credential_and_an_rfc3339_expiry() {
    let server = Server::new();
    let reply = mint(
        &server,
        json!({"client": server.acme.javascript.client.id().as_str(), "api": "WorldStreets",
            "ttl_seconds": 60, "min_zoom": 2, "max_zoom": 9}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.describe());
    let body = reply.json();
    let template = body["template"].as_str().unwrap();
    assert!(
        template.starts_with("/tiles/{z}/{x}/{y}.png?cid="),
        "{template}"
    );
    assert!(template.contains("&zmin=2&zmax=9&") && template.contains("&sig="));
    assert!(!template.contains(server.acme.javascript.credential.expose()));
    // 10:00 plus a minute, rounded up to the ten-minute bucket.
    assert_eq!(body["expires_at"], "2026-05-01T10:10:00Z");
}

#[tokio::test]
async fn another_accounts_client_is_404_and_a_non_tile_api_is_400_naming_api() {
    let server = Server::new();
    let other = server.account("globex", roles([Role::USER, Role::EVALUATOR]), None);
    let reply = mint(
        &server,
        json!({"client": other.javascript.client.id().as_str(), "api": "WorldStreets"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let js = server.acme.javascript.client.id().as_str();
    for (body, field) in [
        (json!({"client": js, "api": "Geocoder"}), "api"),
        (json!({"client": js, "api": "Nowhere"}), "api"),
        (
            json!({"client": js, "api": "WorldStreets", "ttl_seconds": 86_401}),
            "ttl_seconds",
        ),
        (
            json!({"client": js, "api": "WorldStreets", "ttl_seconds": 0}),
            "ttl_seconds",
        ),
        (
            json!({"client": js, "api": "WorldStreets", "min_zoom": 5, "max_zoom": 4}),
            "min_zoom",
        ),
        (
            json!({"client": js, "api": "WorldStreets", "items": ["a"]}),
            "items",
        ),
        (
            json!({"client": js, "api": "WorldStreets", "colour": "red"}),
            "colour",
        ),
    ] {
        let reply = mint(&server, body).await;
        reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
}

#[tokio::test]
async fn a_javascript_key_cannot_mint() {
    let server = Server::new();
    let key = server.acme.javascript.credential.expose();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/account/tile-urls?apikey={key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"client": "x", "api": "WorldStreets"}"#))
        .expect("a request");
    let reply = server.send(req).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_signed_tile_is_public_until_its_url_expires_then_invalid_token() {
    let server = Server::new();
    let template = template(&server, json!({})).await;
    let reply = server.send(get(&tile(&template, 3, 4, 2))).await;
    reply.assert_ok();
    // The handler's day, capped at the hour left (less one second), and public.
    assert_eq!(
        reply.header(header::CACHE_CONTROL),
        Some("public, max-age=3599")
    );
    server.clock.advance(time::Duration::minutes(50));
    let reply = server.send(get(&tile(&template, 3, 4, 2))).await;
    assert_eq!(
        reply.header(header::CACHE_CONTROL),
        Some("public, max-age=599")
    );
    server.clock.advance(time::Duration::minutes(10));
    let reply = server.send(get(&tile(&template, 3, 4, 2))).await;
    reply.assert_invalid_token();
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
}

#[tokio::test]
async fn every_request_on_a_signed_url_is_charged_like_a_tile_to_the_minting_account() {
    let server = Server::new();
    let template = template(&server, json!({})).await;
    let before = server.used(server.acme_id()).await;
    for y in 0..3 {
        server
            .send(get(&tile(&template, 3, 4, y)))
            .await
            .assert_ok();
    }
    assert_eq!(server.used(server.acme_id()).await - before, 3 * TILE_COST);
}

#[tokio::test]
async fn regenerating_or_deactivating_the_client_stops_its_urls_on_the_next_request() {
    let server = Server::new();
    let id = server.acme.javascript.client.id().clone();
    let template = template(&server, json!({})).await;
    server
        .send(get(&tile(&template, 1, 0, 0)))
        .await
        .assert_ok();
    server.update_client(&id, |spec| *spec = spec.clone().status(Status::Inactive));
    server
        .send(get(&tile(&template, 1, 0, 0)))
        .await
        .assert_invalid_token();
    server.update_client(&id, |spec| *spec = spec.clone().status(Status::Active));
    server
        .send(get(&tile(&template, 1, 0, 0)))
        .await
        .assert_ok();
    server.store.regenerate(&id, None).expect("regenerated");
    server
        .send(get(&tile(&template, 1, 0, 0)))
        .await
        .assert_invalid_token();
}

#[tokio::test]
async fn a_url_used_outside_its_scope_is_insufficient_scope() {
    let server = Server::new();
    let template = template(&server, json!({"min_zoom": 2, "max_zoom": 5})).await;
    server
        .send(get(&tile(&template, 5, 0, 0)))
        .await
        .assert_ok();
    for path in [
        tile(&template, 6, 0, 0),
        tile(&template, 1, 0, 0),
        tile(&template, 3, 0, 0).replace("/tiles/", "/imagery/"),
    ] {
        server.send(get(&path)).await.assert_insufficient_scope();
    }
}

#[tokio::test]
async fn a_tampered_or_unknown_signature_is_invalid_token() {
    let server = Server::new();
    let template = template(&server, json!({"max_zoom": 5})).await;
    let url = tile(&template, 3, 0, 0);
    // Another last character of the signature, one that changes the bits it carries (the
    // last of 43 characters carries four: its value is a multiple of four).
    let last = if url.ends_with('Q') { 'A' } else { 'Q' };
    for bad in [
        url.replace("zmax=5", "zmax=9"),
        url.replace("&zmax=5", ""),
        url.replace("kid=", "kid=x"),
        format!("{}{last}", &url[..url.len() - 1]),
        url.replace("sig=", "sig=A"),
    ] {
        server.send(get(&bad)).await.assert_invalid_token();
    }
}

#[tokio::test]
async fn a_signed_url_with_an_api_key_or_a_bearer_token_is_400() {
    let server = Server::new();
    let template = template(&server, json!({})).await;
    let url = tile(&template, 3, 0, 0);
    let key = server.acme.javascript.credential.expose();
    server
        .send(get(&format!("{url}&apikey={key}")))
        .await
        .assert_invalid_request();
    let token = server.token_of(&server.acme.native).await;
    server
        .send(crate::harness::request::bearer(&url, &token))
        .await
        .assert_invalid_request();
}

#[tokio::test]
async fn origin_rules_give_way_to_the_signature_but_not_for_the_api_key() {
    let server = Server::new();
    let id = server.acme.javascript.client.id().clone();
    server.update_client(&id, |spec| {
        *spec = spec.clone().allowed_origins(["https://maps.acme.test"]);
    });
    let template = template(&server, json!({})).await;
    let from_evil = |uri: &str| {
        let mut req = get(uri);
        req.headers_mut()
            .insert(header::ORIGIN, "https://evil.test".parse().unwrap());
        req
    };
    server
        .send(from_evil(&tile(&template, 3, 0, 0)))
        .await
        .assert_ok();
    let key = server.acme.javascript.credential.expose();
    let reply = server
        .send(from_evil(&format!("/tiles/3/0/0.png?apikey={key}")))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn api_key_tiles_stay_private() {
    let server = Server::new();
    let key = server.acme.javascript.credential.expose();
    let reply = server
        .send(get(&format!("/tiles/3/0/0.png?apikey={key}")))
        .await;
    reply.assert_ok();
    assert_eq!(
        reply.header(header::CACHE_CONTROL),
        Some("private, max-age=86400")
    );
}

#[tokio::test]
async fn tilejson_holds_a_signed_template_that_serves_tiles() {
    let server = Server::new();
    let key = server.acme.javascript.credential.expose();
    let reply = server.send(get(&format!("/tiles.json?apikey={key}"))).await;
    reply.assert_ok();
    let doc = reply.json();
    assert_eq!(doc["tilejson"], "3.0.0");
    let url = doc["tiles"][0].as_str().expect("a template");
    assert!(
        url.contains("/tiles/{z}/{x}/{y}.png?") && url.contains("&sig="),
        "{url}"
    );
    assert!(!url.contains(key));
    let path = &url[url.find("/tiles/").expect("a path")..];
    server.send(get(&tile(path, 2, 1, 1))).await.assert_ok();
    // With a bearer token too; and a signed URL mints nothing.
    let token = server.token_of(&server.acme.native).await;
    let reply = server
        .send(crate::harness::request::bearer("/tiles.json", &token))
        .await;
    reply.assert_ok();
    let signed = path.replace("/tiles/{z}/{x}/{y}.png", "/tiles.json");
    assert_eq!(
        server.send(get(&signed)).await.status,
        StatusCode::FORBIDDEN
    );
}
