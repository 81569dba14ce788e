//! Properties: origin matching agrees with a reference written from the rules, IP matching
//! agrees with containment computed on masks and with `ipnet`'s, the caller behind trusted
//! proxies is the right-most untrusted hop, and the layer answers any input without
//! panicking.

mod cidr;
mod ip_rules;
mod origins;
mod proxies;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use gis_auth::client::ClientSpec;
use gis_auth::restrict::{
    ForwardedHeader, IpRule, IpRules, OriginRules, RequestOrigin, TrustedProxies,
};
use gis_auth::{ConfigError, RejectionKind};
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use proptest::sample::select;

use crate::harness::reply::send;
use crate::harness::world::{Echo, World, get, tile};

/// Runs `f` to completion on a fresh single-threaded runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
        .block_on(f)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

use ip_rules::*;
use origins::*;
use proxies::*;

// ---- the layer under arbitrary input -----------------------------------------------------

/// Query strings that stress the API key parameter: parameters named in every way the
/// parameter can be (and almost), with real, empty, broken and foreign values, and junk.
fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => select(&["apikey", "APIKEY", "ApiKey", "api%6Bey", "API%4bEY"][..]).prop_map(str::to_owned),
        2 => select(&["lat", "lon", "apikeys", "my_apikey", "api", "key", ""][..]).prop_map(str::to_owned),
        1 => "[A-Za-z0-9._~%-]{0,8}",
    ];
    let value = prop_oneof![
        4 => Just("<K>".to_owned()),
        1 => select(&["", "%ff", "%41", "%", "<K><K>", "<K>%20", "1.5"][..]).prop_map(str::to_owned),
        1 => "[A-Za-z0-9._~%+-]{0,12}",
    ];
    let param = prop_oneof![
        6 => (name, proptest::option::weighted(0.9, value)).prop_map(|(n, v)| match v {
            Some(v) => format!("{n}={v}"),
            None => n,
        }),
        1 => "[%=&;+,/:@!$'()*?A-Za-z0-9]{1,6}",
    ];
    proptest::collection::vec(param, 0..5).prop_map(|params| params.join("&"))
}

/// Whether a decoded parameter name is the API key parameter.
fn names_the_key(piece: &str) -> bool {
    let name = piece.split('=').next().unwrap_or(piece);
    let decoded = name
        .replace("%6B", "k")
        .replace("%6b", "k")
        .replace("%4B", "K")
        .replace("%4b", "K");
    decoded.eq_ignore_ascii_case("apikey")
}

/// Any byte a header value may hold (visible ASCII, tab, and obs-text).
fn header_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn origin_matching_agrees_with_the_reference(
        (patterns, origin) in patterns_and_origin(),
        seed in any::<u64>(),
    ) {
        let written: Vec<String> = patterns.iter().map(|p| p.render(seed)).collect();
        let rules = OriginRules::compile(&written)
            .map_err(|e| TestCaseError::fail(format!("{written:?}: {e}")))?;
        let header = origin.render(seed.rotate_left(17));
        let expected = patterns.iter().any(|p| p.admits(&origin));

        let from_origin = RequestOrigin::from_origin_header(&header)
            .ok_or_else(|| TestCaseError::fail(format!("unparsed origin {header}")))?;
        prop_assert_eq!(rules.allows(&from_origin), expected, "{:?} vs {}", written, header);

        let referer = format!("{header}/app/index.html?from=https://evil.test");
        let from_referer = RequestOrigin::from_referer_header(&referer)
            .ok_or_else(|| TestCaseError::fail(format!("unparsed referer {referer}")))?;
        prop_assert_eq!(rules.allows(&from_referer), expected, "{:?} vs {}", written, referer);
    }

    #[test]
    fn ip_matching_agrees_with_mask_containment((rules, addr) in rules_and_address()) {
        let written: Vec<String> = rules.iter().map(Rule::render).collect();
        let compiled = IpRules::compile(&written)
            .map_err(|e| TestCaseError::fail(format!("{written:?}: {e}")))?;
        let expected = rules.iter().any(|r| r.contains(addr));
        prop_assert_eq!(compiled.allows(addr), expected, "{:?} vs {}", written, addr);
        for (rule, text) in rules.iter().zip(&written) {
            let parsed = IpRule::parse(text)
                .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parsed.contains(addr), rule.contains(addr), "{} vs {}", text, addr);
        }
    }

    #[test]
    fn cidr_blocks_with_host_bits_are_refused_naming_them(
        net in any::<u32>(),
        prefix in 0u8..32,
        host in any::<u32>(),
    ) {
        let host_bits = host & !mask32(prefix);
        prop_assume!(host_bits != 0);
        let text = format!("{}/{prefix}", Ipv4Addr::from((net & mask32(prefix)) | host_bits));
        let err = IpRule::parse(&text).expect_err("host bits set");
        let named = matches!(err, ConfigError::InvalidIpRule { .. });
        prop_assert!(named, "{}", err);
        prop_assert!(err.to_string().contains(&text));
    }

    #[test]
    fn the_caller_behind_trusted_proxies_is_the_rightmost_untrusted_hop(
        peer in hop_address(),
        hops in proptest::collection::vec(
            (hop_address(), proptest::option::of(1u16..)),
            0..6,
        ),
        split in any::<prop::sample::Index>(),
        forwarded in any::<bool>(),
    ) {
        let proxies = TrustedProxies::parse(TRUSTED).expect("valid");
        let written: Vec<String> = hops.iter().map(|(a, p)| write_hop(*a, forwarded, *p)).collect();
        let mut headers = HeaderMap::new();
        let name = if forwarded { "forwarded" } else { "x-forwarded-for" };
        if !written.is_empty() {
            // The chain, over one or two header lines.
            let at = split.index(written.len() + 1);
            for part in [&written[..at], &written[at..]] {
                if !part.is_empty() {
                    headers.append(name, HeaderValue::from_str(&part.join(", ")).expect("ASCII"));
                }
            }
        }
        let which = if forwarded { ForwardedHeader::Forwarded } else { ForwardedHeader::XForwardedFor };
        let addrs: Vec<IpAddr> = hops.iter().map(|(a, _)| *a).collect();
        let got = proxies.client_ip(Some(peer), &headers, which);
        prop_assert_eq!(got, Some(expected_caller(peer, &addrs)), "{:?} via {}", headers, peer);

        // The other header is never believed.
        let other = if forwarded { ForwardedHeader::XForwardedFor } else { ForwardedHeader::Forwarded };
        prop_assert_eq!(proxies.client_ip(Some(peer), &headers, other), Some(canonical_ip(peer)));
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn origin_decisions_of_the_layer_agree_with_the_reference(
        (patterns, origin) in patterns_and_origin(),
        seed in any::<u64>(),
        as_referer in any::<bool>(),
    ) {
        let world = World::new();
        let written: Vec<String> = patterns.iter().map(|p| p.render(seed)).collect();
        let (_, key) = world.js_client(ClientSpec::javascript("Web").allowed_origins(written.clone()));
        let header = origin.render(seed.rotate_left(17));
        let req = if as_referer {
            get(&tile(&key)).referer(&format!("{header}/index.html"))
        } else {
            get(&tile(&key)).origin(&header)
        };
        let r = block_on(world.send(req));
        let expected = patterns.iter().any(|p| p.admits(&origin));
        if expected {
            prop_assert_eq!(r.status, StatusCode::OK, "{:?} vs {}", written, header);
        } else {
            prop_assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?} vs {}", written, header);
            prop_assert_eq!(r.kind(), RejectionKind::OriginNotAllowed);
        }
        prop_assert!(r.varies_on_origin());
    }

    #[test]
    fn ip_decisions_of_the_layer_agree_with_mask_containment(
        (rules, addr) in rules_and_address(),
        port in 1u16..,
    ) {
        let world = World::new();
        let written: Vec<String> = rules.iter().map(Rule::render).collect();
        let (_, key) = world.js_client(ClientSpec::javascript("Office").allowed_ips(written.clone()));
        let mut req = get(&tile(&key)).into_request();
        req.extensions_mut().insert(SocketAddr::new(addr, port));
        let r = block_on(send(world.service(), req));
        if rules.iter().any(|rule| rule.contains(addr)) {
            prop_assert_eq!(r.status, StatusCode::OK, "{:?} vs {}", written, addr);
        } else {
            prop_assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?} vs {}", written, addr);
            prop_assert_eq!(r.kind(), RejectionKind::IpNotAllowed);
        }
    }

    #[test]
    fn the_layer_answers_any_query_string(q in query()) {
        let world = World::new();
        let key = world.key();
        let once = q.matches("<K>").count() == 1;
        let q = q.replace("<K>", &key);
        let uri = format!("/elevation?{q}");
        prop_assume!(uri.parse::<http::Uri>().is_ok());
        let r = block_on(world.send(get(&uri)));
        match r.status.as_u16() {
            200 => {
                let seen = r.seen_uri();
                if once {
                    prop_assert!(!seen.contains(&key), "the key reached the handler: {}", seen);
                }
                let query = seen.split_once('?').map_or("", |(_, q)| q);
                prop_assert!(!query.split('&').any(names_the_key), "{}", seen);
            }
            400 | 401 => {
                let body = r.json();
                prop_assert!(body["error"].is_string() && body["error_description"].is_string());
                r.assert_does_not_reveal(&key);
            }
            other => prop_assert!(false, "unexpected status {} for {}", other, uri),
        }
    }

    #[test]
    fn the_layer_answers_any_authorization_header(
        value in proptest::collection::vec(header_byte(), 0..80),
        bearer in any::<bool>(),
        with_key in any::<bool>(),
    ) {
        let world = World::new();
        let mut bytes = if bearer { b"Bearer ".to_vec() } else { Vec::new() };
        bytes.extend(value);
        prop_assume!(HeaderValue::from_bytes(&bytes).is_ok());
        let key = world.key();
        let path = if with_key { tile(&key) } else { "/tiles/1/2/3.png".to_owned() };
        let r = block_on(world.send(get(&path).raw_header("authorization", &bytes)));
        match r.status.as_u16() {
            200 => prop_assert!(with_key, "only the API key can admit this request"),
            400 | 401 => {
                let body = r.json();
                prop_assert!(body["error"].is_string() && body["error_description"].is_string());
            }
            other => prop_assert!(false, "unexpected status {}", other),
        }
    }

    #[test]
    fn the_layer_answers_any_origin_and_forwarding_headers(
        origin in proptest::collection::vec(any::<u8>(), 0..60),
        referer in proptest::collection::vec(any::<u8>(), 0..60),
        xff in proptest::collection::vec(any::<u8>(), 0..60),
        fwd in proptest::collection::vec(any::<u8>(), 0..60),
        peer in hop_address(),
    ) {
        let world = World::new();
        let (_, key) = world.js_client(
            ClientSpec::javascript("Guarded")
                .allowed_origins(["*.example.com"])
                .allowed_ips(["203.0.113.0/24", "2001:db8:1::/48"]),
        );
        let layer = world
            .layer()
            .trusted_proxies(TrustedProxies::parse(TRUSTED).expect("valid"));
        let mut req = get(&tile(&key)).into_request();
        req.extensions_mut().insert(SocketAddr::new(peer, 443));
        for (name, value) in [("origin", origin), ("referer", referer), ("x-forwarded-for", xff), ("forwarded", fwd)] {
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                req.headers_mut().insert(name, v);
            }
        }
        let r = block_on(send(tower::Layer::layer(&layer, Echo), req));
        prop_assert!(
            r.status == StatusCode::OK || r.status == StatusCode::FORBIDDEN,
            "unexpected status {}", r.status
        );
        prop_assert!(r.varies_on_origin());
    }
}
