//! IP rules and forwarded headers: parsing never panics; a compiled rule set allows exactly
//! what one of its rules contains; the caller behind trusted proxies is the peer or one of
//! the forwarded hops.
//!
//! Input: newline-separated rules, a 0xff byte, an `X-Forwarded-For` value, a 0xff byte, a
//! `Forwarded` value; the first 16 bytes also make the peer address.

#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use gis_auth::restrict::{ForwardedHeader, IpRule, IpRules, TrustedProxies};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xff);
    let rules = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or_default();
    let xff = parts.next().unwrap_or_default();
    let fwd = parts.next().unwrap_or_default();
    let mut octets = [0u8; 16];
    for (o, b) in octets.iter_mut().zip(data) {
        *o = *b;
    }
    let v6 = IpAddr::V6(Ipv6Addr::from(octets));
    let v4 = IpAddr::V4([octets[0], octets[1], octets[2], octets[3]].into());

    let parsed: Vec<IpRule> = rules
        .lines()
        .filter_map(|r| IpRule::parse(r).ok())
        .collect();
    for rule in &parsed {
        assert_eq!(IpRule::parse(&rule.to_string()).ok().as_ref(), Some(rule));
    }
    if let Ok(set) = IpRules::compile(parsed.iter().map(|r| r.to_string())) {
        for addr in [v4, v6] {
            let expected = parsed.is_empty() || parsed.iter().any(|r| r.contains(addr));
            assert_eq!(set.allows(addr), expected, "{rules:?} vs {addr}");
        }
    }

    let proxies =
        TrustedProxies::parse(["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]).expect("valid proxies");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(xff) {
        headers.append("x-forwarded-for", v);
    }
    if let Ok(v) = HeaderValue::from_bytes(fwd) {
        headers.append(http::header::FORWARDED, v);
    }
    let peer: IpAddr = "10.1.2.3".parse().expect("an address");
    for which in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
        for from in [peer, v4, v6] {
            let got = proxies.client_ip(Some(from), &headers, which);
            if !proxies.contains(from) {
                assert!(got.is_some(), "an untrusted peer is the caller");
            }
        }
    }
    assert_eq!(
        proxies.client_ip(None, &headers, ForwardedHeader::XForwardedFor),
        None
    );
});
