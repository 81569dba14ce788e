//! Allowed origins of JavaScript clients, end to end: hosts and wildcards, schemes and
//! ports, `Origin` before `Referer`, headers that never match, and `Vary: Origin`.

use gis_auth::ConfigError;
use gis_auth::RejectionKind;
use gis_auth::client::ClientSpec;
use gis_auth::store::ManageError;

use crate::harness::world::{Req, World, get, tile, with_key};

/// A JavaScript client of a fresh world allowed `patterns`.
fn world_with<const N: usize>(patterns: [&str; N]) -> (World, String) {
    let world = World::new();
    let (_, key) = world.js_client(ClientSpec::javascript("Web map").allowed_origins(patterns));
    (world, key)
}

/// Sends a tile request with `key` from `origin` (as an `Origin` header).
async fn from_origin(world: &World, key: &str, origin: &str) -> crate::harness::reply::Reply {
    world.send(get(&tile(key)).origin(origin)).await
}

#[track_caller]
fn assert_allowed(r: &crate::harness::reply::Reply, what: &str) {
    assert_eq!(r.status, 200, "{what} should be allowed: {}", r.text());
    assert!(r.varies_on_origin(), "{what}: Vary: Origin on success");
}

#[track_caller]
fn assert_origin_refused(r: &crate::harness::reply::Reply, what: &str) {
    assert_eq!(r.status, 403, "{what} should be refused: {}", r.text());
    r.assert_access_denied();
    assert_eq!(r.kind(), RejectionKind::OriginNotAllowed, "{what}");
    assert!(r.varies_on_origin(), "{what}: Vary: Origin on refusal");
}

#[tokio::test]
async fn an_exact_host_is_allowed_over_http_and_https_on_their_default_ports() {
    let (world, key) = world_with(["maps.example.com"]);
    for origin in [
        "https://maps.example.com",
        "http://maps.example.com",
        "https://maps.example.com:443",
        "http://maps.example.com:80",
    ] {
        assert_allowed(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn an_exact_host_refuses_other_hosts_and_other_ports() {
    let (world, key) = world_with(["maps.example.com"]);
    for origin in [
        "https://example.com",
        "https://other.example.com",
        "https://a.maps.example.com",
        "https://maps.example.com.evil.com",
        "https://maps.example.co",
        "https://maps.example.com:8443",
        "http://maps.example.com:443",
        "https://maps.example.com:80",
    ] {
        assert_origin_refused(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn a_wildcard_covers_subdomains_at_any_depth() {
    let (world, key) = world_with(["*.example.com"]);
    for origin in [
        "https://a.example.com",
        "http://maps.example.com",
        "https://a.b.c.example.com",
        "https://x-1.example.com",
    ] {
        assert_allowed(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn a_wildcard_never_covers_the_apex_or_lookalike_domains() {
    let (world, key) = world_with(["*.example.com"]);
    for origin in [
        "https://example.com",
        "https://evil-example.com",
        "https://evilexample.com",
        "https://example.com.evil.com",
        "https://a.example.com.evil.com",
        "https://example.co",
        "https://xexample.com",
        "https://a.example.comx",
    ] {
        assert_origin_refused(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn a_pattern_with_a_scheme_admits_only_that_scheme() {
    let (world, key) = world_with(["https://*.example.com:8443", "http://maps.example.org"]);
    assert_allowed(
        &from_origin(&world, &key, "https://a.example.com:8443").await,
        "https wildcard with its port",
    );
    assert_allowed(
        &from_origin(&world, &key, "http://maps.example.org").await,
        "http exact host",
    );
    for origin in [
        "http://a.example.com:8443",
        "https://a.example.com",
        "https://a.example.com:443",
        "https://maps.example.org",
    ] {
        assert_origin_refused(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn a_port_wildcard_admits_any_port_including_the_default() {
    let (world, key) = world_with(["http://localhost:*", "maps.example.com:8080"]);
    for origin in [
        "http://localhost:3000",
        "http://localhost:8080",
        "http://localhost",
        "http://maps.example.com:8080",
        "https://maps.example.com:8080",
    ] {
        assert_allowed(&from_origin(&world, &key, origin).await, origin);
    }
    for origin in [
        "https://localhost:3000",
        "http://localhost.example.com:3000",
        "http://maps.example.com",
        "https://maps.example.com:8081",
    ] {
        assert_origin_refused(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn ip_literal_origins_match_exactly() {
    let (world, key) = world_with(["http://127.0.0.1:8080", "http://[::1]:3000"]);
    for origin in ["http://127.0.0.1:8080", "http://[::1]:3000"] {
        assert_allowed(&from_origin(&world, &key, origin).await, origin);
    }
    for origin in [
        "http://127.0.0.2:8080",
        "http://127.0.0.1",
        "http://[::2]:3000",
    ] {
        assert_origin_refused(&from_origin(&world, &key, origin).await, origin);
    }
}

/// The host is compared parsed: an IPv6 literal is an address, however it is spelled.
#[tokio::test]
async fn ipv6_literal_origins_match_by_address_not_by_spelling() {
    let (world, key) = world_with(["http://[0:0:0:0:0:0:0:1]:3000", "https://[2001:DB8::A]"]);
    for origin in ["http://[::1]:3000", "https://[2001:db8::a]"] {
        assert_allowed(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn matching_ignores_case_in_patterns_and_headers() {
    let (world, key) = world_with(["HTTPS://Maps.Example.COM", "*.Example.ORG"]);
    for origin in [
        "https://maps.example.com",
        "HTTPS://MAPS.EXAMPLE.COM",
        "https://A.b.EXAMPLE.org",
    ] {
        assert_allowed(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn the_referer_is_used_when_there_is_no_origin() {
    let (world, key) = world_with(["*.example.com"]);
    let r = world
        .send(get(&tile(&key)).referer("https://maps.example.com/app/index.html?x=1#top"))
        .await;
    assert_allowed(&r, "a good Referer");
    let r = world
        .send(get(&tile(&key)).referer("https://maps.example.com"))
        .await;
    assert_allowed(&r, "a Referer without a path");
    for referer in [
        "https://evil.com/maps.example.com",
        "https://example.com/",
        "https://evil.com/?ref=https://maps.example.com",
        "https://maps.example.com@evil.com/",
        "https://evil.com@maps.example.com/",
        "/relative/path",
    ] {
        let r = world.send(get(&tile(&key)).referer(referer)).await;
        assert_origin_refused(&r, referer);
    }
}

#[tokio::test]
async fn a_bad_origin_is_not_rescued_by_a_good_referer() {
    let (world, key) = world_with(["*.example.com"]);
    for origin in ["https://evil.com", "null", "garbage", ""] {
        let r = world
            .send(
                get(&tile(&key))
                    .origin(origin)
                    .referer("https://maps.example.com/app"),
            )
            .await;
        assert_origin_refused(&r, origin);
    }
}

#[tokio::test]
async fn a_good_origin_is_not_spoiled_by_a_bad_referer() {
    let (world, key) = world_with(["*.example.com"]);
    let r = world
        .send(
            get(&tile(&key))
                .origin("https://maps.example.com")
                .referer("https://evil.com/"),
        )
        .await;
    assert_allowed(&r, "a good Origin");
}

#[tokio::test]
async fn null_origins_never_match() {
    let (world, key) = world_with(["*.example.com"]);
    assert_origin_refused(&from_origin(&world, &key, "null").await, "null");
    let (world, key) = {
        let world = World::new();
        let (_, key) = world.js_client(
            ClientSpec::javascript("Server and browser")
                .allowed_origins(["*.example.com"])
                .allow_missing_origin(true),
        );
        (world, key)
    };
    assert_origin_refused(
        &from_origin(&world, &key, "null").await,
        "null with missing origins allowed",
    );
}

#[tokio::test]
async fn a_list_of_origins_never_matches() {
    let (world, key) = world_with(["*.example.com"]);
    for origin in [
        "https://a.example.com, https://b.example.com",
        "https://a.example.com https://b.example.com",
    ] {
        assert_origin_refused(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn two_origin_headers_never_match_even_when_both_are_allowed() {
    let (world, key) = world_with(["*.example.com"]);
    let r = world
        .send(
            get(&tile(&key))
                .origin("https://a.example.com")
                .origin("https://a.example.com"),
        )
        .await;
    assert_origin_refused(&r, "two Origin headers");
    let r = world
        .send(
            get(&tile(&key))
                .referer("https://a.example.com/")
                .referer("https://b.example.com/"),
        )
        .await;
    assert_origin_refused(&r, "two Referer headers");
}

#[tokio::test]
async fn origins_that_are_not_scheme_host_port_never_match() {
    let (world, key) = world_with(["*.example.com"]);
    for origin in [
        "https://a.example.com/",
        "https://a.example.com/path",
        "https://user@a.example.com",
        "ftp://a.example.com",
        "a.example.com",
        "https://a..example.com",
        "https://a.example.com.",
        "https://a.example.com:0",
        "https://a.example.com:65536",
        "https://a.example.com:",
        "https://a_b.example.com",
        "https://",
    ] {
        assert_origin_refused(&from_origin(&world, &key, origin).await, origin);
    }
    let r = world
        .send(get(&tile(&key)).raw_header("origin", b"https://\xc3\xa9.example.com"))
        .await;
    assert_origin_refused(&r, "a non-ASCII origin");
}

#[tokio::test]
async fn neither_header_is_refused_by_default() {
    let (world, key) = world_with(["*.example.com"]);
    let r = world.send(get(&tile(&key))).await;
    assert_origin_refused(&r, "no Origin and no Referer");
}

#[tokio::test]
async fn allow_missing_origin_admits_requests_without_either_header_only() {
    let world = World::new();
    let (_, key) = world.js_client(
        ClientSpec::javascript("Server and browser")
            .allowed_origins(["*.example.com"])
            .allow_missing_origin(true),
    );
    assert_allowed(&world.send(get(&tile(&key))).await, "no header at all");
    assert_allowed(
        &from_origin(&world, &key, "https://a.example.com").await,
        "an allowed origin",
    );
    assert_origin_refused(
        &from_origin(&world, &key, "https://evil.com").await,
        "a present but bad origin",
    );
    let r = world
        .send(get(&tile(&key)).referer("https://evil.com/page"))
        .await;
    assert_origin_refused(&r, "a present but bad referer");
}

#[tokio::test]
async fn a_client_without_origin_rules_is_unrestricted_by_origin() {
    let world = World::new();
    let key = world.key();
    for req in [
        get(&tile(&key)),
        get(&tile(&key)).origin("https://anywhere.test"),
        get(&tile(&key)).origin("null"),
        get(&tile(&key))
            .origin("https://a.test")
            .origin("https://b.test"),
        get(&tile(&key)).referer("https://anywhere.test/page"),
    ] {
        let r = world.send(req).await;
        r.assert_ok();
        assert!(!r.varies_on_origin(), "the origin played no part");
    }
}

#[tokio::test]
async fn the_origin_is_checked_before_the_plugin_rule() {
    let (world, key) = world_with(["*.example.com"]);
    let r = world
        .send(get(&with_key("/geocode", &key)).origin("https://evil.com"))
        .await;
    assert_origin_refused(&r, "a non-plugin API from a bad origin");
    let r = world
        .send(get(&with_key("/geocode", &key)).origin("https://maps.example.com"))
        .await;
    r.assert_insufficient_scope();
    assert!(r.varies_on_origin());
}

#[tokio::test]
async fn several_patterns_combine_with_or() {
    let (world, key) = world_with([
        "https://maps.example.com",
        "*.example.org",
        "http://localhost:*",
    ]);
    for origin in [
        "https://maps.example.com",
        "https://a.example.org",
        "http://localhost:5173",
    ] {
        assert_allowed(&from_origin(&world, &key, origin).await, origin);
    }
    for origin in ["https://example.org", "https://a.example.com"] {
        assert_origin_refused(&from_origin(&world, &key, origin).await, origin);
    }
}

#[tokio::test]
async fn origin_rules_and_ip_rules_combine_with_and() {
    let world = World::new();
    let (_, key) = world.js_client(
        ClientSpec::javascript("Kiosk")
            .allowed_origins(["https://maps.example.com"])
            .allowed_ips(["203.0.113.0/24"]),
    );
    let req = |origin: &str, peer: &str| -> Req { get(&tile(&key)).origin(origin).peer(peer) };
    let r = world
        .send(req("https://maps.example.com", "203.0.113.5:40000"))
        .await;
    assert_allowed(&r, "both rules met");
    let r = world
        .send(req("https://evil.com", "203.0.113.5:40000"))
        .await;
    assert_origin_refused(&r, "a bad origin from a good address");
    let r = world
        .send(req("https://maps.example.com", "198.51.100.5:40000"))
        .await;
    r.assert_access_denied();
    assert_eq!(r.kind(), RejectionKind::IpNotAllowed);
    assert!(
        r.varies_on_origin(),
        "the origin was read before the address"
    );
}

#[tokio::test]
async fn origin_rules_changed_in_the_store_apply_on_the_next_request() {
    let world = World::new();
    let (id, key) = world.js_client(ClientSpec::javascript("Web map"));
    let from = || get(&tile(&key)).origin("https://maps.example.com");
    world.send(from()).await.assert_ok();
    world
        .store
        .change_client(&id, |spec| {
            spec.allowed_origins = vec!["*.example.org".into()]
        })
        .expect("valid");
    assert_origin_refused(&world.send(from()).await, "after restricting");
    world
        .store
        .change_client(&id, |spec| spec.allowed_origins.clear())
        .expect("valid");
    world.send(from()).await.assert_ok();
}

#[test]
fn bad_origin_patterns_are_refused_at_creation_naming_the_pattern() {
    let world = World::new();
    for bad in [
        "*.com",
        "*example.com",
        "a.*.example.com",
        "ftp://example.com",
        "https://example.com/maps",
        "https://example.com:0",
        "*",
        "",
    ] {
        let err = world
            .store
            .add_client(
                &world.acme_id(),
                ClientSpec::javascript("Web").allowed_origins([bad]),
            )
            .unwrap_err();
        assert!(
            matches!(err, ManageError::Invalid(ConfigError::InvalidOrigin { .. })),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
    }
}

#[test]
fn native_clients_cannot_hold_origin_rules() {
    let world = World::new();
    let spec = ClientSpec::native("Batch")
        .id(gis_auth::client::ClientId::new("batch").expect("valid"))
        .allowed_origins(["https://maps.example.com"]);
    let err = world.store.add_client(&world.acme_id(), spec).unwrap_err();
    assert!(
        matches!(
            err,
            ManageError::Invalid(ConfigError::OriginsOnConfidentialClient { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("batch"), "{err}");
}
