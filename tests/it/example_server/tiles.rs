//! Tile validators: a strong `ETag` on every tile and imagery answer, and `If-None-Match`
//! answered 304 behind the layer, so a revalidation is checked and charged like the tile.

use gis_auth::client::AccountId;
use gis_auth::limits::{InMemoryUsageCounter, UsageCounter};

use super::*;

const DAY: time::OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// The demo server counting usage where the test can read it.
fn counted() -> (Router, String, Arc<InMemoryUsageCounter>) {
    let seeded = app::demo_store().expect("demo store");
    let key = seeded
        .generated
        .iter()
        .find(|g| g.kind == ClientKind::JavaScript)
        .expect("a JavaScript client")
        .credential
        .expose()
        .to_owned();
    let usage = Arc::new(InMemoryUsageCounter::new());
    let options = app::Options {
        clock: Some(Arc::new(ManualClock::new(DAY))),
        usage: Some(usage.clone()),
        ..app::Options::default()
    };
    let router = app::router(seeded.store.clone(), options).expect("router");
    (router, key, usage)
}

async fn used(usage: &InMemoryUsageCounter) -> u64 {
    let demo = AccountId::new(app::DEMO_ACCOUNT).expect("an id");
    usage.used(&demo, DAY.date()).await.expect("counted")
}

fn if_none_match(uri: &str, tag: &str) -> Request<axum::body::Body> {
    let mut req = get(uri);
    req.headers_mut()
        .insert(header::IF_NONE_MATCH, tag.parse().expect("a header value"));
    req
}

#[tokio::test]
async fn tiles_and_imagery_carry_a_strong_etag_per_address_and_style() {
    let (router, key, _) = counted();
    let mut seen = BTreeSet::new();
    for path in ["/tiles/3/1/2.png", "/tiles/3/2/1.png", "/imagery/3/1/2.png"] {
        let reply = send(router.clone(), get(&format!("{path}?apikey={key}"))).await;
        assert_png(&reply);
        let etag = reply.header(header::ETAG).expect("an ETag").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong: {etag}"
        );
        assert!(seen.insert(etag), "{path}: a tag of its own");
        // The same address gives the same tag.
        let again = send(router.clone(), get(&format!("{path}?apikey={key}"))).await;
        assert_eq!(again.header(header::ETAG), reply.header(header::ETAG));
    }
}

#[tokio::test]
async fn a_matching_if_none_match_is_a_304_checked_and_charged_like_the_tile() {
    let (router, key, usage) = counted();
    let uri = format!("/tiles/3/1/2.png?apikey={key}");
    let first = send(router.clone(), get(&uri)).await;
    let etag = first.header(header::ETAG).expect("an ETag").to_owned();
    let charged_once = used(&usage).await;
    assert!(charged_once > 0);

    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".into(),
    ] {
        let before = used(&usage).await;
        let reply = send(router.clone(), if_none_match(&uri, &tag)).await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{tag}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header(header::ETAG), Some(etag.as_str()));
        // Still the layer's answer: private, and charged like the tile.
        assert_eq!(
            reply.header(header::CACHE_CONTROL),
            Some("private, max-age=86400")
        );
        assert_eq!(used(&usage).await - before, charged_once, "{tag}");
    }
    // Another tag: the tile itself.
    let reply = send(router.clone(), if_none_match(&uri, "\"stale\"")).await;
    assert_png(&reply);
}

#[tokio::test]
async fn a_refused_request_never_gets_a_304() {
    let (router, key, usage) = counted();
    let etag = send(
        router.clone(),
        get(&format!("/tiles/3/1/2.png?apikey={key}")),
    )
    .await
    .header(header::ETAG)
    .expect("an ETag")
    .to_owned();
    let before = used(&usage).await;
    for (uri, status) in [
        ("/tiles/3/1/2.png".to_owned(), 401),
        (format!("/tiles/3/1/2.png?apikey={key}x"), 401),
        (format!("/geocode?q=x&apikey={key}"), 403),
    ] {
        for tag in [etag.as_str(), "*"] {
            let reply = send(router.clone(), if_none_match(&uri, tag)).await;
            assert_eq!(reply.status.as_u16(), status, "{uri} {tag}");
            assert!(reply.header(header::ETAG).is_none());
        }
    }
    assert_eq!(used(&usage).await, before);
}
