//! IP rules, end to end: single addresses, trailing wildcards, CIDR blocks, IPv6 and
//! IPv4-mapped addresses, the peer address, trusted proxies with `X-Forwarded-For` and
//! `Forwarded`, and a peer that is not known.

use std::net::IpAddr;

use gis_auth::client::ClientSpec;
use gis_auth::restrict::{ForwardedHeader, TrustedProxies};
use gis_auth::store::ManageError;
use gis_auth::{AuthLayer, ConfigError, RejectionKind};

use crate::harness::reply::{Reply, send};
use crate::harness::world::{Echo, World, get, tile, with_key};

/// A world with a JavaScript client allowed `rules`; gives its API key.
fn world_with<const N: usize>(rules: [&str; N]) -> (World, String) {
    let world = World::new();
    let (_, key) = world.js_client(ClientSpec::javascript("Office map").allowed_ips(rules));
    (world, key)
}

/// A tile request with `key` from the peer `peer`.
async fn from_peer(world: &World, key: &str, peer: &str) -> Reply {
    world.send(get(&tile(key)).peer(peer)).await
}

#[track_caller]
fn assert_ip_refused(r: &Reply, what: &str) {
    assert_eq!(r.status, 403, "{what} should be refused: {}", r.text());
    r.assert_access_denied();
    assert_eq!(r.kind(), RejectionKind::IpNotAllowed, "{what}");
    assert!(!r.varies_on_origin(), "{what}: the origin played no part");
}

#[track_caller]
fn assert_ip_allowed(r: &Reply, what: &str) {
    assert_eq!(r.status, 200, "{what} should be allowed: {}", r.text());
}

/// The layer of `world` trusting `proxies`, reading `which`.
fn behind_proxies(world: &World, proxies: &[&str], which: ForwardedHeader) -> AuthLayer {
    world
        .layer()
        .trusted_proxies(TrustedProxies::parse(proxies).expect("valid proxies"))
        .forwarded_header(which)
}

#[tokio::test]
async fn a_single_address_admits_only_itself() {
    let (world, key) = world_with(["203.0.113.9"]);
    assert_ip_allowed(&from_peer(&world, &key, "203.0.113.9:5000").await, "itself");
    for peer in ["203.0.113.10:5000", "203.0.113.8:5000", "10.0.0.1:5000"] {
        assert_ip_refused(&from_peer(&world, &key, peer).await, peer);
    }
}

#[tokio::test]
async fn a_trailing_wildcard_admits_its_whole_block() {
    let (world, key) = world_with(["203.0.113.*", "10.*.*.*"]);
    for peer in ["203.0.113.0:1", "203.0.113.255:1", "10.200.3.4:1"] {
        assert_ip_allowed(&from_peer(&world, &key, peer).await, peer);
    }
    for peer in ["203.0.114.1:1", "11.0.0.1:1", "[2001:db8::1]:1"] {
        assert_ip_refused(&from_peer(&world, &key, peer).await, peer);
    }
}

#[tokio::test]
async fn a_cidr_block_admits_its_addresses() {
    let (world, key) = world_with(["198.51.100.0/25", "2001:db8::/32"]);
    for peer in [
        "198.51.100.0:1",
        "198.51.100.127:1",
        "[2001:db8::1]:1",
        "[2001:db8:ffff:ffff::1]:1",
    ] {
        assert_ip_allowed(&from_peer(&world, &key, peer).await, peer);
    }
    for peer in ["198.51.100.128:1", "198.51.99.255:1", "[2001:db9::1]:1"] {
        assert_ip_refused(&from_peer(&world, &key, peer).await, peer);
    }
}

#[tokio::test]
async fn an_ipv6_address_admits_only_itself() {
    let (world, key) = world_with(["2001:db8::7"]);
    assert_ip_allowed(
        &from_peer(&world, &key, "[2001:db8:0:0:0:0:0:7]:1").await,
        "the same address in long form",
    );
    assert_ip_refused(
        &from_peer(&world, &key, "[2001:db8::8]:1").await,
        "a neighbour",
    );
}

#[tokio::test]
async fn an_ipv4_mapped_peer_matches_ipv4_rules() {
    let (world, key) = world_with(["203.0.113.0/24", "198.51.100.7", "192.0.2.*"]);
    for peer in [
        "[::ffff:203.0.113.5]:1",
        "[::ffff:198.51.100.7]:1",
        "[::ffff:192.0.2.200]:1",
    ] {
        assert_ip_allowed(&from_peer(&world, &key, peer).await, peer);
    }
    assert_ip_refused(
        &from_peer(&world, &key, "[::ffff:203.0.114.5]:1").await,
        "a mapped address outside the rules",
    );
}

#[tokio::test]
async fn an_ipv4_mapped_rule_matches_a_plain_ipv4_peer() {
    let (world, key) = world_with(["::ffff:203.0.113.5", "::ffff:198.51.100.0/120"]);
    for peer in ["203.0.113.5:1", "198.51.100.77:1", "[::ffff:203.0.113.5]:1"] {
        assert_ip_allowed(&from_peer(&world, &key, peer).await, peer);
    }
    assert_ip_refused(
        &from_peer(&world, &key, "203.0.113.6:1").await,
        "203.0.113.6",
    );
}

#[tokio::test]
async fn an_unknown_peer_is_refused_when_the_client_has_ip_rules() {
    let (world, key) = world_with(["0.0.0.0/0", "::/0"]);
    let r = world.send(get(&tile(&key))).await;
    assert_ip_refused(&r, "no peer address at all");
}

#[tokio::test]
async fn an_unknown_peer_is_fine_for_a_client_without_ip_rules() {
    let world = World::new();
    world.send(get(&tile(&world.key()))).await.assert_ok();
    world
        .send(get("/geocode").bearer(&world.token()))
        .await
        .assert_ok();
}

#[tokio::test]
async fn ip_rules_apply_to_bearer_tokens_too() {
    let world = World::new();
    let (_, token) =
        world.native_client(ClientSpec::native("Batch").allowed_ips(["203.0.113.0/24"]));
    let r = world
        .send(get("/geocode").bearer(&token).peer("203.0.113.20:1"))
        .await;
    r.assert_ok();
    let r = world
        .send(get("/geocode").bearer(&token).peer("198.51.100.20:1"))
        .await;
    assert_ip_refused(&r, "a token from outside its block");
    let r = world.send(get("/geocode").bearer(&token)).await;
    assert_ip_refused(&r, "a token from an unknown peer");
}

#[tokio::test]
async fn the_address_is_checked_before_the_plugin_rule() {
    let (world, key) = world_with(["203.0.113.0/24"]);
    let r = world
        .send(get(&with_key("/geocode", &key)).peer("198.51.100.1:1"))
        .await;
    assert_ip_refused(&r, "a non-plugin API from a bad address");
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let (world, key) = world_with(["203.0.113.0/24"]);
    // No proxies trusted at all.
    let r = world
        .send(
            get(&tile(&key))
                .peer("198.51.100.9:1")
                .header("x-forwarded-for", "203.0.113.5")
                .header("forwarded", "for=203.0.113.5"),
        )
        .await;
    assert_ip_refused(&r, "a forged X-Forwarded-For");
    let r = world
        .send(
            get(&tile(&key))
                .peer("203.0.113.9:1")
                .header("x-forwarded-for", "198.51.100.9"),
        )
        .await;
    assert_ip_allowed(&r, "the real peer, whatever it claims to forward");
    // Proxies trusted, but this peer is not one of them.
    let layer = behind_proxies(&world, &["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
    let r = world
        .send_via(
            &layer,
            get(&tile(&key))
                .peer("198.51.100.9:1")
                .header("x-forwarded-for", "203.0.113.5"),
        )
        .await;
    assert_ip_refused(&r, "an untrusted peer claiming an address");
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_rightmost_untrusted_hop() {
    let (world, key) = world_with(["203.0.113.0/24"]);
    let layer = behind_proxies(&world, &["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
    let via = |xff: &str| {
        get(&tile(&key))
            .peer("10.0.0.2:1")
            .header("x-forwarded-for", xff)
    };
    for xff in [
        "203.0.113.5",
        "198.51.100.66, 203.0.113.5",
        "198.51.100.66, 203.0.113.5, 10.1.1.1",
        "garbage-the-caller-wrote, 203.0.113.5, 10.9.9.9, 10.1.1.1",
    ] {
        assert_ip_allowed(&world.send_via(&layer, via(xff)).await, xff);
    }
    for xff in [
        "203.0.113.5, 198.51.100.66",
        "203.0.113.5, 198.51.100.66, 10.1.1.1",
    ] {
        assert_ip_refused(&world.send_via(&layer, via(xff)).await, xff);
    }
}

#[tokio::test]
async fn several_forwarded_for_headers_are_read_in_order() {
    let (world, key) = world_with(["203.0.113.0/24"]);
    let layer = behind_proxies(&world, &["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
    let r = world
        .send_via(
            &layer,
            get(&tile(&key))
                .peer("10.0.0.2:1")
                .header("x-forwarded-for", "198.51.100.66, 203.0.113.5")
                .header("x-forwarded-for", "10.3.3.3"),
        )
        .await;
    assert_ip_allowed(&r, "the right-most untrusted hop over two headers");
    let r = world
        .send_via(
            &layer,
            get(&tile(&key))
                .peer("10.0.0.2:1")
                .header("x-forwarded-for", "203.0.113.5")
                .header("x-forwarded-for", "198.51.100.66"),
        )
        .await;
    assert_ip_refused(&r, "the second header's hop is nearer");
}

#[tokio::test]
async fn when_every_hop_is_trusted_the_leftmost_is_the_caller() {
    let (world, key) = world_with(["10.1.0.0/16"]);
    let layer = behind_proxies(&world, &["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
    let via = |xff: &str| {
        get(&tile(&key))
            .peer("10.0.0.2:1")
            .header("x-forwarded-for", xff)
    };
    assert_ip_allowed(
        &world.send_via(&layer, via("10.1.2.3, 10.9.9.9")).await,
        "left-most 10.1.2.3",
    );
    assert_ip_refused(
        &world.send_via(&layer, via("10.9.9.9, 10.1.2.3")).await,
        "left-most 10.9.9.9",
    );
}

#[tokio::test]
async fn a_trusted_proxy_without_a_forwarded_header_is_the_caller() {
    let (world, key) = world_with(["10.0.0.2"]);
    let layer = behind_proxies(&world, &["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
    let r = world
        .send_via(&layer, get(&tile(&key)).peer("10.0.0.2:1"))
        .await;
    assert_ip_allowed(&r, "the proxy itself");
}

#[tokio::test]
async fn an_unreadable_hop_refuses_a_client_with_ip_rules() {
    let (world, key) = world_with(["0.0.0.0/0", "::/0"]);
    let layer = behind_proxies(&world, &["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
    for xff in [
        "garbage",
        "203.0.113.5, unknown",
        "203.0.113.5, 10.1.1.1, _hidden",
    ] {
        let r = world
            .send_via(
                &layer,
                get(&tile(&key))
                    .peer("10.0.0.2:1")
                    .header("x-forwarded-for", xff),
            )
            .await;
        assert_ip_refused(&r, xff);
    }
    // A client without IP rules does not care.
    let r = world
        .send_via(
            &layer,
            get(&tile(&world.key()))
                .peer("10.0.0.2:1")
                .header("x-forwarded-for", "garbage"),
        )
        .await;
    r.assert_ok();
}

#[tokio::test]
async fn rfc_7239_forwarded_is_read_when_configured() {
    let (world, key) = world_with(["203.0.113.0/24", "2001:db8:1::/48"]);
    let layer = behind_proxies(&world, &["10.0.0.0/8"], ForwardedHeader::Forwarded);
    let via = |fwd: &str| get(&tile(&key)).peer("10.0.0.2:1").header("forwarded", fwd);
    for fwd in [
        "for=203.0.113.5",
        "for=198.51.100.66, for=203.0.113.5;proto=https",
        "For=\"[2001:db8:1::9]:4711\";proto=https",
        "proto=https;for=203.0.113.5;by=10.0.0.2, for=10.1.1.1",
    ] {
        assert_ip_allowed(&world.send_via(&layer, via(fwd)).await, fwd);
    }
    for fwd in [
        "for=203.0.113.5, for=198.51.100.66",
        "for=unknown",
        "for=_gazonk",
        "proto=https",
    ] {
        assert_ip_refused(&world.send_via(&layer, via(fwd)).await, fwd);
    }
}

#[tokio::test]
async fn only_the_configured_forwarded_header_is_believed() {
    let (world, key) = world_with(["203.0.113.0/24"]);
    let forwarded = behind_proxies(&world, &["10.0.0.0/8"], ForwardedHeader::Forwarded);
    let r = world
        .send_via(
            &forwarded,
            get(&tile(&key))
                .peer("10.0.0.2:1")
                .header("x-forwarded-for", "203.0.113.5"),
        )
        .await;
    assert_ip_refused(&r, "X-Forwarded-For when Forwarded is configured");
    let xff = behind_proxies(&world, &["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
    let r = world
        .send_via(
            &xff,
            get(&tile(&key))
                .peer("10.0.0.2:1")
                .header("forwarded", "for=203.0.113.5"),
        )
        .await;
    assert_ip_refused(&r, "Forwarded when X-Forwarded-For is configured");
}

#[tokio::test]
async fn ipv6_and_mapped_proxies_are_trusted_by_their_blocks() {
    let (world, key) = world_with(["203.0.113.0/24"]);
    let layer = behind_proxies(
        &world,
        &["10.0.0.0/8", "2001:db8:ffff::/48"],
        ForwardedHeader::XForwardedFor,
    );
    for peer in ["[2001:db8:ffff::2]:1", "[::ffff:10.0.0.2]:1"] {
        let r = world
            .send_via(
                &layer,
                get(&tile(&key))
                    .peer(peer)
                    .header("x-forwarded-for", "203.0.113.5"),
            )
            .await;
        assert_ip_allowed(&r, peer);
    }
    let r = world
        .send_via(
            &layer,
            get(&tile(&key)).peer("10.0.0.2:1").header(
                "x-forwarded-for",
                "::ffff:203.0.113.5, [2001:db8:ffff::9]:443",
            ),
        )
        .await;
    assert_ip_allowed(&r, "a mapped hop behind an IPv6 proxy");
}

/// Proxies written as IPv4-mapped blocks (as a dual-stack server logs them) cover their
/// IPv4 peers, as mapped IP rules do.
#[tokio::test]
async fn a_mapped_trusted_proxy_block_covers_its_ipv4_peers() {
    let (world, key) = world_with(["203.0.113.0/24"]);
    let layer = behind_proxies(
        &world,
        &["::ffff:10.0.0.0/104"],
        ForwardedHeader::XForwardedFor,
    );
    for peer in ["10.0.0.2:1", "[::ffff:10.0.0.2]:1"] {
        let r = world
            .send_via(
                &layer,
                get(&tile(&key))
                    .peer(peer)
                    .header("x-forwarded-for", "203.0.113.5"),
            )
            .await;
        assert_ip_allowed(&r, peer);
    }
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_connect_info_is_read_as_the_peer() {
    use axum::extract::ConnectInfo;

    let (world, key) = world_with(["203.0.113.0/24"]);
    let inside: std::net::SocketAddr = "203.0.113.5:1".parse().expect("an address");
    let outside: std::net::SocketAddr = "198.51.100.5:1".parse().expect("an address");
    let mut req = get(&tile(&key)).into_request();
    req.extensions_mut().insert(ConnectInfo(inside));
    send(world.service(), req).await.assert_ok();
    let mut req = get(&tile(&key)).into_request();
    req.extensions_mut().insert(ConnectInfo(outside));
    let r = send(world.service(), req).await;
    assert_ip_refused(&r, "a ConnectInfo peer outside the rules");
}

#[tokio::test]
async fn the_peer_can_come_from_a_custom_source() {
    #[derive(Clone)]
    struct RemoteIp(IpAddr);

    let (world, key) = world_with(["203.0.113.0/24"]);
    let layer = world
        .layer()
        .peer_addr(|ext| ext.get::<RemoteIp>().map(|r| r.0));
    let mut req = get(&tile(&key)).into_request();
    req.extensions_mut()
        .insert(RemoteIp("203.0.113.5".parse().expect("an address")));
    send(tower::Layer::layer(&layer, Echo), req)
        .await
        .assert_ok();
    let mut req = get(&tile(&key)).into_request();
    req.extensions_mut()
        .insert(RemoteIp("198.51.100.5".parse().expect("an address")));
    let r = send(tower::Layer::layer(&layer, Echo), req).await;
    assert_ip_refused(&r, "a custom peer outside the rules");
    // When the custom source has nothing, the SocketAddr extension is used.
    let r = world
        .send_via(&layer, get(&tile(&key)).peer("203.0.113.6:1"))
        .await;
    assert_ip_allowed(&r, "the SocketAddr fallback");
}

#[tokio::test]
async fn ip_rules_changed_in_the_store_apply_on_the_next_request() {
    let world = World::new();
    let (id, key) = world.js_client(ClientSpec::javascript("Office map"));
    let from = || get(&tile(&key)).peer("198.51.100.5:1");
    world.send(from()).await.assert_ok();
    world
        .store
        .change_client(&id, |spec| spec.allowed_ips = vec!["203.0.113.0/24".into()])
        .expect("valid");
    assert_ip_refused(&world.send(from()).await, "after restricting");
}

#[test]
fn bad_ip_rules_are_refused_at_creation_naming_the_rule() {
    let world = World::new();
    for bad in [
        "203.0.113.5/24",
        "203.0.113.0/33",
        "203.0.113",
        "*.0.113.1",
        "203.*.113.1",
        "2001:db8::*",
        "not-an-address",
        "",
    ] {
        let err = world
            .store
            .add_client(
                &world.acme_id(),
                ClientSpec::javascript("Web").allowed_ips([bad]),
            )
            .unwrap_err();
        assert!(
            matches!(err, ManageError::Invalid(ConfigError::InvalidIpRule { .. })),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
    }
}

#[test]
fn bad_trusted_proxies_are_refused_naming_the_entry() {
    let err = TrustedProxies::parse(["10.0.0.0/8", "proxy.internal"]).unwrap_err();
    assert!(err.to_string().contains("proxy.internal"), "{err}");
}
