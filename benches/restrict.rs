//! The origin and IP checks on a client with many rules, against their floor, in one run.
//!
//! - `origin/parse_only`: parsing the `Origin` header into a [`RequestOrigin`] (every origin
//!   check starts with it).
//! - `origin/100_patterns_*`: parsing plus [`OriginRules::allows`] with 100 patterns (50
//!   exact hosts, 50 `*.` wildcards, mixed schemes and ports), for an origin that matches
//!   an exact host, one that matches a wildcard three labels down, and one that matches
//!   nothing (the slowest: every parent domain is looked up); `*_match_only` is
//!   [`OriginRules::allows`] alone on an origin parsed beforehand.
//! - `ip/100_rules_*`: [`IpRules::allows`] with 100 rules (single addresses, trailing
//!   wildcards and CIDR blocks, IPv4 and IPv6) for the first rule, the last rule, an IPv4
//!   address outside all of them (every IPv4 rule is tried), an IPv6 one, and an
//!   IPv4-mapped IPv6 one.
//!
//! Run with `cargo bench --bench restrict`.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gis_auth::restrict::{IpRules, OriginRules, RequestOrigin};

/// 100 origin patterns: exact hosts and wildcards, with and without scheme and port.
fn origin_patterns() -> Vec<String> {
    (0..100)
        .map(|i| match i % 4 {
            0 => format!("https://app-{i}.maps.example.com"),
            1 => format!("*.tenant-{i}.example.org"),
            2 => format!("maps-{i}.example.net:8443"),
            _ => format!("https://*.region-{i}.example.io"),
        })
        .collect()
}

/// 100 IP rules of every kind.
fn ip_rules() -> Vec<String> {
    (0..100)
        .map(|i| match i % 5 {
            0 => format!("198.51.{i}.7"),
            1 => format!("203.0.{i}.*"),
            2 => format!("10.{i}.0.0/16"),
            3 => format!("2001:db8:{i:x}::/48"),
            _ => format!("2001:db8:ffff::{i:x}"),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let origins = OriginRules::compile(origin_patterns()).expect("valid patterns");
    let mut g = c.benchmark_group("origin");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let exact = "https://app-96.maps.example.com";
    let wildcard = "https://a.b.c.tenant-97.example.org";
    let none = "https://a.b.c.elsewhere.example.com:8443";
    for (header, allowed) in [(exact, true), (wildcard, true), (none, false)] {
        let origin = RequestOrigin::from_origin_header(header).expect("an origin");
        assert_eq!(origins.allows(&origin), allowed, "{header}");
    }
    g.bench_function("parse_only", |b| {
        b.iter(|| RequestOrigin::from_origin_header(black_box(exact)))
    });
    for (name, header) in [("exact", exact), ("wildcard", wildcard), ("no_match", none)] {
        g.bench_function(format!("100_patterns_{name}"), |b| {
            b.iter(|| {
                RequestOrigin::from_origin_header(black_box(header))
                    .is_some_and(|o| origins.allows(&o))
            })
        });
        let parsed = RequestOrigin::from_origin_header(header).expect("an origin");
        g.bench_function(format!("100_patterns_{name}_match_only"), |b| {
            b.iter(|| origins.allows(black_box(&parsed)))
        });
    }
    g.finish();

    let rules = IpRules::compile(ip_rules()).expect("valid rules");
    let mut g = c.benchmark_group("ip");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let cases: [(&str, &str, bool); 5] = [
        ("first", "198.51.0.7", true),
        ("last", "2001:db8:ffff::63", true),
        ("v4_no_match", "192.0.2.1", false),
        ("v6_no_match", "2001:db9::1", false),
        ("v4_mapped", "::ffff:10.95.3.4", false),
    ];
    for (name, addr, allowed) in cases {
        let addr: IpAddr = addr.parse().expect("an address");
        assert_eq!(rules.allows(addr), allowed, "{name}");
        g.bench_function(format!("100_rules_{name}"), |b| {
            b.iter(|| rules.allows(black_box(addr)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
