//! What a browser map on another origin sees: CORS headers on every answer (the layer's
//! refusals included) and preflights answered without a credential, the API key in the
//! `X-Api-Key` header, and origin refusals that say what is wrong.

use async_trait::async_trait;
use axum::body::Body;
use gis_auth::client::AccountId;
use gis_auth::limits::{Charge, Charged, DailyUsage, UsageCounter};
use gis_auth::store::BackendError;
use time::Date;

use super::clients_file::generated_of;
use super::*;
use crate::harness::request::RequestExt;

const PAGE: &str = "https://maps.acme.test";

/// An account with a daily quota of two transactions (a tile and one elevation request
/// fit, a second elevation request does not), and a
/// JavaScript client allowed from [`PAGE`] only.
fn browser_world(usage: Option<Arc<dyn UsageCounter>>) -> (Router, String) {
    let seeded = app::load_clients_json(
        r#"{"accounts": [{"id": "acme", "roles": ["Evaluator", "Subscriber"], "daily_quota": 2}],
            "clients": [{"id": "web", "account": "acme", "kind": "JavaScript",
                         "allowed_origins": ["https://maps.acme.test"]}]}"#,
    )
    .expect("a valid file");
    let key = generated_of(&seeded.generated, "web");
    let options = app::Options {
        clock: Some(Arc::new(ManualClock::new(datetime!(2026-03-01 12:00 UTC)))),
        usage,
        ..app::Options::default()
    };
    let router = app::router(seeded.store.clone(), options).expect("router");
    (router, key)
}

/// The CORS headers a page needs to read an answer, refusal or not.
#[track_caller]
fn assert_readable_by_the_page(reply: &Reply) {
    assert_eq!(
        reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("*"),
        "{} {:?}",
        reply.status,
        reply.headers
    );
    let exposed = reply
        .header_all(header::ACCESS_CONTROL_EXPOSE_HEADERS)
        .join(",")
        .to_ascii_lowercase();
    for name in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "quota-warning",
        "www-authenticate",
    ] {
        assert!(exposed.contains(name), "{name} is not exposed: {exposed}");
    }
}

/// A usage counter that is down: the layer fails closed with 503.
struct DownCounter;

#[async_trait]
impl UsageCounter for DownCounter {
    async fn charge(&self, _: &Charge<'_>) -> Result<Charged, BackendError> {
        Err(BackendError::new("down"))
    }

    async fn record_refusal(&self, _: &gis_auth::limits::Refused<'_>) -> Result<(), BackendError> {
        Err(BackendError::new("down"))
    }

    async fn used(&self, _: &AccountId, _: Date) -> Result<u64, BackendError> {
        Err(BackendError::new("down"))
    }

    async fn usage(
        &self,
        _: &AccountId,
        _: Date,
        _: Date,
    ) -> Result<Vec<DailyUsage>, BackendError> {
        Err(BackendError::new("down"))
    }
}

#[tokio::test]
async fn every_refusal_of_the_layer_carries_the_same_cors_headers_as_a_success() {
    let (router, key) = browser_world(None);
    let from_page = |uri: &str| get(uri).origin(PAGE);

    let ok = send(
        router.clone(),
        from_page(&format!("/tiles/1/0/0.png?apikey={key}")),
    )
    .await;
    assert_png(&ok);
    assert_readable_by_the_page(&ok);

    let elevation = format!("/elevation?lat=1&lon=2&apikey={key}");
    let ok = send(router.clone(), from_page(&elevation)).await;
    assert_eq!(ok.status, StatusCode::OK);
    let refusals = [
        (from_page("/tiles/1/0/0.png"), 401, "unauthorized"),
        (
            from_page(&format!("/tiles/1/0/0.png?apikey={key}x")),
            401,
            "invalid_token",
        ),
        (
            from_page(&format!("/tiles/1/0/0.png?apikey={key}&apikey={key}")),
            400,
            "invalid_request",
        ),
        (
            get(&format!("/tiles/1/0/0.png?apikey={key}")).origin("https://evil.test"),
            403,
            "access_denied",
        ),
        (
            from_page(&format!("/geocode?q=x&apikey={key}")),
            403,
            "insufficient_scope",
        ),
        (from_page(&elevation), 429, "quota_exceeded"),
    ];
    for (req, status, error) in refusals {
        let reply = send(router.clone(), req).await;
        reply.assert_refused(status, error);
        assert_readable_by_the_page(&reply);
        assert!(!reply.text().contains(&key));
        if status == 429 {
            assert!(reply.header(header::RETRY_AFTER).is_some());
        }
    }

    let (down, key) = browser_world(Some(Arc::new(DownCounter)));
    let reply = send(down, from_page(&format!("/tiles/1/0/0.png?apikey={key}"))).await;
    reply.assert_refused(503, "temporarily_unavailable");
    assert_readable_by_the_page(&reply);
    assert!(reply.header(header::RETRY_AFTER).is_some());
}

#[tokio::test]
async fn preflights_are_answered_without_a_credential_and_allow_the_key_headers() {
    let (router, _) = browser_world(None);
    for path in ["/tiles/1/0/0.png", "/elevation", "/account/profile"] {
        let req = Request::builder()
            .method(Method::OPTIONS)
            .uri(path)
            .header(header::ORIGIN, PAGE)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "x-api-key, authorization",
            )
            .body(Body::empty())
            .expect("request");
        let reply = send(router.clone(), req).await;
        // Answered by CORS before the auth layer: no refusal, no credential needed.
        assert!(reply.rejection().is_none());
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        let allowed = reply
            .header_all(header::ACCESS_CONTROL_ALLOW_HEADERS)
            .join(",")
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization"), "{allowed}");
        assert!(allowed.contains("x-api-key"), "{allowed}");
    }
}

#[tokio::test]
async fn the_demo_key_works_in_the_x_api_key_header() {
    let demo = demo();
    let tile = |headers: &[(&str, &str)]| {
        let mut req = get("/tiles/3/1/2.png").origin(PAGE);
        for (name, value) in headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            req.headers_mut()
                .append(name, value.parse().expect("a header value"));
        }
        send(demo.router.clone(), req)
    };
    let reply = tile(&[("X-Api-Key", &demo.api_key)]).await;
    assert_png(&reply);
    assert_eq!(
        reply.header(header::CACHE_CONTROL),
        Some("private, max-age=86400")
    );
    let vary = reply
        .header_all(header::VARY)
        .join(",")
        .to_ascii_lowercase();
    assert!(vary.contains("x-api-key"), "{vary}");
    assert_readable_by_the_page(&reply);

    let token = token_of(&demo.native);
    let bearer_too = format!("Bearer {token}");
    for headers in [
        &[
            ("X-Api-Key", demo.api_key.as_str()),
            ("Authorization", &bearer_too),
        ][..],
        &[
            ("X-Api-Key", demo.api_key.as_str()),
            ("X-Api-Key", &demo.api_key),
        ][..],
    ] {
        let reply = tile(headers).await;
        reply.assert_refused(400, "invalid_request");
        assert_readable_by_the_page(&reply);
    }
    let reply = send(
        demo.router.clone(),
        get(&format!("/tiles/3/1/2.png?apikey={}", demo.api_key))
            .origin(PAGE)
            .bearer(&token),
    )
    .await;
    reply.assert_refused(400, "invalid_request");
    let mut both = get(&format!("/tiles/3/1/2.png?apikey={}", demo.api_key));
    both.headers_mut()
        .insert("x-api-key", demo.api_key.parse().expect("a header value"));
    send(demo.router.clone(), both)
        .await
        .assert_refused(400, "invalid_request");
}

#[tokio::test]
async fn an_origin_refusal_says_which_origin_or_that_none_was_sent() {
    let (router, key) = browser_world(None);
    let uri = format!("/tiles/1/0/0.png?apikey={key}");

    let reply = send(router.clone(), get(&uri)).await;
    reply.assert_refused(403, "access_denied");
    let said = reply.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(said.contains("neither Origin nor Referer"), "{said}");
    assert!(said.contains("no-referrer"), "{said}");

    let reply = send(router.clone(), get(&uri).origin("https://evil.test")).await;
    reply.assert_refused(403, "access_denied");
    let said = reply.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(said.contains("`https://evil.test`"), "{said}");
    assert!(!said.contains(&key));

    // A Referer is named by its origin only, never its path or query.
    let mut req = get(&uri);
    req.headers_mut().insert(
        header::REFERER,
        format!("https://other.test/map.html?apikey={key}")
            .parse()
            .expect("a header value"),
    );
    let reply = send(router.clone(), req).await;
    reply.assert_refused(403, "access_denied");
    let said = reply.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(said.contains("`https://other.test`"), "{said}");
    assert!(!reply.text().contains(&key));
}
