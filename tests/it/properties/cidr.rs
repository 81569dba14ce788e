//! IP rules against the `ipnet` crate's containment, and the layer under arbitrary paths,
//! queries and methods.

use super::*;

/// A CIDR block written as text, and the `ipnet` network it is.
fn cidr() -> impl Strategy<Value = (String, ipnet::IpNet)> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| {
            let net = ipnet::Ipv4Net::new(Ipv4Addr::from(a), p)
                .expect("prefix")
                .trunc();
            (net.to_string(), ipnet::IpNet::V4(net))
        }),
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| {
            let net = ipnet::Ipv6Net::new(Ipv6Addr::from(a), p)
                .expect("prefix")
                .trunc();
            (net.to_string(), ipnet::IpNet::V6(net))
        }),
    ]
}

/// An address near one of `nets` half of the time, anywhere otherwise.
fn address_near(nets: Vec<ipnet::IpNet>) -> impl Strategy<Value = IpAddr> {
    let n = nets.len();
    (any::<prop::sample::Index>(), any::<u128>(), any::<bool>()).prop_map(move |(i, bits, near)| {
        match (near, nets.get(i.index(n.max(1)))) {
            (true, Some(ipnet::IpNet::V4(net))) => {
                let host = (bits as u32) & !u32::from(net.netmask());
                IpAddr::V4(Ipv4Addr::from(u32::from(net.network()) | host))
            }
            (true, Some(ipnet::IpNet::V6(net))) => {
                let host = bits & !u128::from(net.netmask());
                IpAddr::V6(Ipv6Addr::from(u128::from(net.network()) | host))
            }
            _ if bits & 1 == 0 => IpAddr::V4(Ipv4Addr::from((bits >> 64) as u32)),
            _ => IpAddr::V6(Ipv6Addr::from(bits)),
        }
    })
}

/// An IPv4-mapped IPv6 block or address is the IPv4 one it carries, for rules and callers.
fn mapped_view(net: &ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(ipnet::IpNet::V4)
                .unwrap_or(*net),
            None => *net,
        },
        other => *other,
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn cidr_rules_allow_what_ipnet_contains(
        (nets, addr) in proptest::collection::vec(cidr(), 1..8).prop_flat_map(|nets| {
            let plain: Vec<ipnet::IpNet> = nets.iter().map(|(_, n)| *n).collect();
            (Just(nets), address_near(plain))
        }),
    ) {
        let rules = IpRules::compile(nets.iter().map(|(text, _)| text)).expect("valid CIDR");
        let seen = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let expected = nets.iter().any(|(_, net)| mapped_view(net).contains(&seen));
        prop_assert_eq!(rules.allows(addr), expected, "{:?} vs {}", nets, addr);
    }

    #[test]
    fn the_layer_answers_any_path_query_and_method(
        path in proptest::collection::vec(any::<u8>(), 0..60),
        query in proptest::collection::vec(any::<u8>(), 0..120),
        method in select(vec!["GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE", "PATCH", "X-CUSTOM"]),
        with_key in any::<bool>(),
        bearer in any::<bool>(),
    ) {
        let world = World::new();
        let key = world.key();
        let mut text = String::from("/");
        text.push_str(&String::from_utf8_lossy(&path));
        text.push('?');
        text.push_str(&String::from_utf8_lossy(&query));
        if with_key {
            text.push_str("&apikey=");
            text.push_str(&key);
        }
        let Ok(uri) = text.parse::<http::Uri>() else {
            return Ok(());
        };
        let mut req = http::Request::builder()
            .method(http::Method::from_bytes(method.as_bytes()).expect("a method"))
            .uri(uri)
            .body(http_body_util::Full::<bytes::Bytes>::default())
            .expect("a request");
        if bearer {
            req.headers_mut().insert("authorization", HeaderValue::from_static("Bearer abc.def.ghi"));
        }
        let r = block_on(send(world.service(), req));
        prop_assert!(
            [200, 400, 401, 403].contains(&r.status.as_u16()),
            "unexpected status {}", r.status
        );
        if r.status != StatusCode::OK {
            let body = r.json();
            prop_assert!(body["error"].is_string() && body["error_description"].is_string());
        }
    }
}
