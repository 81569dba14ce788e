//! Properties: origin matching agrees with a reference written from the rules, IP matching
//! agrees with containment computed on masks and with `ipnet`'s, the caller behind trusted
//! proxies is the right-most untrusted hop, and the layer answers any input without
//! panicking.

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

use crate::harness::world::{World, get, tile};

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

// ---- origins: the reference ----------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Ports {
    Default,
    Any,
    Exact(u16),
}

/// An allowed-origin pattern, as parts.
#[derive(Debug, Clone)]
struct Pattern {
    scheme: Option<Scheme>,
    wildcard: bool,
    labels: Vec<String>,
    ports: Ports,
    trailing_slash: bool,
}

/// A request origin, as parts.
#[derive(Debug, Clone)]
struct Origin {
    scheme: Scheme,
    labels: Vec<String>,
    port: Option<u16>,
}

/// Upper-cases the letters of `s` picked by the bits of `seed`.
fn mixed_case(s: &str, seed: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if seed >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

impl Pattern {
    fn render(&self, seed: u64) -> String {
        let mut out = String::new();
        if let Some(s) = self.scheme {
            out.push_str(s.name());
            out.push_str("://");
        }
        if self.wildcard {
            out.push_str("*.");
        }
        out.push_str(&self.labels.join("."));
        match self.ports {
            Ports::Default => {}
            Ports::Any => out.push_str(":*"),
            Ports::Exact(p) => out.push_str(&format!(":{p}")),
        }
        if self.trailing_slash {
            out.push('/');
        }
        mixed_case(&out, seed)
    }

    /// The rules, written out: scheme (none means http or https), port (none means the
    /// scheme's default, `*` any), host (exact, or `*.` over one or more further labels).
    fn admits(&self, origin: &Origin) -> bool {
        let scheme_ok = self.scheme.is_none_or(|s| s == origin.scheme);
        let port = origin.port.unwrap_or(origin.scheme.default_port());
        let port_ok = match self.ports {
            Ports::Default => port == origin.scheme.default_port(),
            Ports::Any => true,
            Ports::Exact(p) => port == p,
        };
        let host_ok = if self.wildcard {
            origin.labels.len() > self.labels.len() && origin.labels.ends_with(&self.labels)
        } else {
            origin.labels == self.labels
        };
        scheme_ok && port_ok && host_ok
    }
}

impl Origin {
    fn render(&self, seed: u64) -> String {
        let mut out = format!("{}://{}", self.scheme.name(), self.labels.join("."));
        if let Some(p) = self.port {
            out.push_str(&format!(":{p}"));
        }
        mixed_case(&out, seed)
    }
}

// ---- origins: strategies -------------------------------------------------------------

const LABELS: &[&str] = &[
    "example",
    "com",
    "org",
    "evil",
    "evil-example",
    "evilexample",
    "examplecom",
    "maps",
    "a",
    "b",
    "x1",
    "localhost",
];

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(LABELS).prop_map(str::to_owned),
        1 => "[a-z][a-z0-9-]{0,5}[a-z0-9]",
    ]
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop_oneof![Just(Scheme::Http), Just(Scheme::Https)]
}

const PORTS: &[u16] = &[80, 443, 3000, 8080, 8443];

fn pattern() -> impl Strategy<Value = Pattern> {
    (
        proptest::option::of(scheme()),
        any::<bool>(),
        proptest::collection::vec(label(), 1..4),
        prop_oneof![
            2 => Just(Ports::Default),
            1 => Just(Ports::Any),
            1 => select(PORTS).prop_map(Ports::Exact),
        ],
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(scheme, wildcard, mut labels, ports, trailing_slash)| {
            if wildcard && labels.len() < 2 {
                labels.push("com".to_owned());
            }
            Pattern {
                scheme,
                wildcard,
                labels,
                ports,
                trailing_slash,
            }
        })
}

/// An origin `pattern` admits, by construction.
fn admitted_by(pattern: Pattern) -> impl Strategy<Value = Origin> {
    let scheme = match pattern.scheme {
        Some(s) => Just(s).boxed(),
        None => scheme().boxed(),
    };
    let min_front = usize::from(pattern.wildcard);
    (
        scheme,
        proptest::collection::vec(label(), min_front..min_front + 2),
        select(PORTS),
        any::<bool>(),
    )
        .prop_map(move |(scheme, mut front, any_port, explicit)| {
            if !pattern.wildcard {
                front.clear();
            }
            front.extend(pattern.labels.iter().cloned());
            let default = scheme.default_port();
            let port = match pattern.ports {
                Ports::Default => explicit.then_some(default),
                Ports::Any => Some(any_port),
                Ports::Exact(p) if p == default && !explicit => None,
                Ports::Exact(p) => Some(p),
            };
            Origin {
                scheme,
                labels: front,
                port,
            }
        })
}

/// Patterns and an origin that is often admitted by one of them, or nearly so.
fn patterns_and_origin() -> impl Strategy<Value = (Vec<Pattern>, Origin)> {
    proptest::collection::vec(pattern(), 1..4).prop_flat_map(|patterns| {
        let near = select(patterns.clone());
        let hosts = prop_oneof![
            // The pattern's own host, maybe with labels in front.
            near.clone().prop_flat_map(|p| {
                proptest::collection::vec(label(), 0..3).prop_map(move |mut front| {
                    front.extend(p.labels.iter().cloned());
                    front
                })
            }),
            // The pattern's host with one label changed or glued to its neighbour.
            (
                near.clone(),
                label(),
                any::<prop::sample::Index>(),
                any::<bool>()
            )
                .prop_map(|(p, l, at, glue)| {
                    let mut labels = p.labels.clone();
                    let i = at.index(labels.len());
                    if glue && i + 1 < labels.len() {
                        let joined = format!("{}{}", labels[i], labels[i + 1]);
                        labels.splice(i..=i + 1, [joined]);
                    } else {
                        labels[i] = l;
                    }
                    labels
                }),
            // Anything.
            proptest::collection::vec(label(), 1..5),
        ];
        let nearby = (scheme(), hosts, proptest::option::of(select(PORTS))).prop_map(
            |(scheme, labels, port)| Origin {
                scheme,
                labels,
                port,
            },
        );
        let origin = prop_oneof![
            1 => near.prop_flat_map(admitted_by),
            2 => nearby,
        ];
        (Just(patterns), origin)
    })
}

// ---- IP rules: the reference -----------------------------------------------------------

/// An IP rule, as a network in the family it matches, and how it is written.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// `a.b.c.d`, `a.b.*.*` or `a.b.c.d/n`.
    V4 { net: u32, prefix: u8, form: V4Form },
    /// `::ffff:a.b.c.d` or `::ffff:a.b.c.d/(96 + n)`: an IPv4 rule in IPv6 dress.
    Mapped { net: u32, prefix: u8 },
    /// An IPv6 address or block outside the IPv4-mapped range.
    V6 { net: u128, prefix: u8 },
}

#[derive(Debug, Clone, Copy)]
enum V4Form {
    Single,
    Wildcard,
    Cidr,
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

/// An address as the family it is matched in: IPv4-mapped IPv6 as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Canonical {
    V4(u32),
    V6(u128),
}

fn canonical(addr: IpAddr) -> Canonical {
    match addr {
        IpAddr::V4(a) => Canonical::V4(u32::from(a)),
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            if bits >> 32 == 0xffff {
                Canonical::V4(bits as u32)
            } else {
                Canonical::V6(bits)
            }
        }
    }
}

impl Rule {
    fn render(&self) -> String {
        match *self {
            Rule::V4 { net, prefix, form } => match form {
                V4Form::Single => Ipv4Addr::from(net).to_string(),
                V4Form::Wildcard => {
                    let octets = net.to_be_bytes();
                    let fixed = usize::from(prefix / 8);
                    (0..4)
                        .map(|i| {
                            if i < fixed {
                                octets[i].to_string()
                            } else {
                                "*".to_owned()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(".")
                }
                V4Form::Cidr => format!("{}/{prefix}", Ipv4Addr::from(net)),
            },
            Rule::Mapped { net, prefix } => {
                let addr = Ipv4Addr::from(net).to_ipv6_mapped();
                if prefix == 32 {
                    addr.to_string()
                } else {
                    format!("{addr}/{}", 96 + u16::from(prefix))
                }
            }
            Rule::V6 { net, prefix } => {
                let addr = Ipv6Addr::from(net);
                if prefix == 128 {
                    addr.to_string()
                } else {
                    format!("{addr}/{prefix}")
                }
            }
        }
    }

    fn contains(&self, addr: IpAddr) -> bool {
        match (*self, canonical(addr)) {
            (Rule::V4 { net, prefix, .. } | Rule::Mapped { net, prefix }, Canonical::V4(a)) => {
                a & mask32(prefix) == net
            }
            (Rule::V6 { net, prefix }, Canonical::V6(a)) => a & mask128(prefix) == net,
            _ => false,
        }
    }

    /// An address inside the rule, with `host` for the free bits.
    fn inside(&self, host: u128, mapped: bool) -> IpAddr {
        match *self {
            Rule::V4 { net, prefix, .. } | Rule::Mapped { net, prefix } => {
                let a = Ipv4Addr::from(net | (host as u32 & !mask32(prefix)));
                if mapped {
                    IpAddr::V6(a.to_ipv6_mapped())
                } else {
                    IpAddr::V4(a)
                }
            }
            Rule::V6 { net, prefix } => IpAddr::V6(Ipv6Addr::from(net | (host & !mask128(prefix)))),
        }
    }
}

// ---- IP rules: strategies ------------------------------------------------------------

fn rule() -> impl Strategy<Value = Rule> {
    prop_oneof![
        any::<u32>().prop_map(|net| Rule::V4 {
            net,
            prefix: 32,
            form: V4Form::Single
        }),
        (any::<u32>(), 1u8..4).prop_map(|(net, fixed)| {
            let prefix = fixed * 8;
            Rule::V4 {
                net: net & mask32(prefix),
                prefix,
                form: V4Form::Wildcard,
            }
        }),
        (any::<u32>(), 0u8..=32).prop_map(|(net, prefix)| Rule::V4 {
            net: net & mask32(prefix),
            prefix,
            form: V4Form::Cidr
        }),
        (any::<u32>(), 0u8..=32).prop_map(|(net, prefix)| Rule::Mapped {
            net: net & mask32(prefix),
            prefix
        }),
        // Global unicast space (2000::/3): never the IPv4-mapped range, whatever the prefix.
        (any::<u128>(), 16u8..=128).prop_map(|(bits, prefix)| {
            let net = (bits & !(0xe000u128 << 112)) | (0x2000u128 << 112);
            Rule::V6 {
                net: net & mask128(prefix),
                prefix,
            }
        }),
    ]
}

/// Rules and an address that is often inside or just outside one of them.
fn rules_and_address() -> impl Strategy<Value = (Vec<Rule>, IpAddr)> {
    proptest::collection::vec(rule(), 1..4).prop_flat_map(|rules| {
        let near = select(rules.clone());
        let addr = prop_oneof![
            (near.clone(), any::<u128>(), any::<bool>())
                .prop_map(|(r, host, mapped)| r.inside(host, mapped)),
            // One bit flipped somewhere.
            (near, any::<u128>(), any::<bool>(), 0u32..128).prop_map(|(r, host, mapped, bit)| {
                match r.inside(host, mapped) {
                    IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) ^ (1 << (bit % 32)))),
                    IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
                        IpAddr::V6(Ipv6Addr::from(u128::from(a) ^ (1 << (bit % 32))))
                    }
                    IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) ^ (1 << bit))),
                }
            }),
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u32>().prop_map(|a| IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped())),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        ];
        (Just(rules), addr)
    })
}

// ---- trusted proxies: the reference ----------------------------------------------------

const TRUSTED: &[&str] = &["10.0.0.0/8", "2001:db8:ffff::/48"];

fn trusted(addr: IpAddr) -> bool {
    match canonical(addr) {
        Canonical::V4(a) => a >> 24 == 10,
        Canonical::V6(a) => a >> 80 == 0x2001_0db8_ffff,
    }
}

fn canonical_ip(addr: IpAddr) -> IpAddr {
    match canonical(addr) {
        Canonical::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
        Canonical::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
    }
}

/// The caller: the peer unless it is a trusted proxy; then the right-most hop that is not
/// trusted, the left-most when all are, or the peer when there are none.
fn expected_caller(peer: IpAddr, hops: &[IpAddr]) -> IpAddr {
    if !trusted(peer) || hops.is_empty() {
        return canonical_ip(peer);
    }
    let caller = hops
        .iter()
        .rev()
        .find(|h| !trusted(**h))
        .unwrap_or(&hops[0]);
    canonical_ip(*caller)
}

fn hop_address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::V4(Ipv4Addr::new(10, a, b, c))),
        any::<u8>().prop_map(|d| IpAddr::V4(Ipv4Addr::new(203, 0, 113, d))),
        any::<u8>().prop_map(|d| IpAddr::V6(Ipv4Addr::new(198, 51, 100, d).to_ipv6_mapped())),
        any::<u8>().prop_map(|d| IpAddr::V6(Ipv4Addr::new(10, 9, 9, d).to_ipv6_mapped())),
        any::<u16>().prop_map(|h| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, h))),
        any::<u16>().prop_map(|h| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, h))),
    ]
}

/// How a hop is written in `X-Forwarded-For` or `Forwarded`, with or without a port.
fn write_hop(addr: IpAddr, forwarded: bool, port: Option<u16>) -> String {
    match (addr, forwarded, port) {
        (IpAddr::V4(a), false, None) => a.to_string(),
        (IpAddr::V4(a), false, Some(p)) => format!("{a}:{p}"),
        (IpAddr::V6(a), false, None) => a.to_string(),
        (IpAddr::V6(a), false, Some(p)) => format!("[{a}]:{p}"),
        (IpAddr::V4(a), true, None) => format!("for={a}"),
        (IpAddr::V4(a), true, Some(p)) => format!("for=\"{a}:{p}\";proto=https"),
        (IpAddr::V6(a), true, None) => format!("for=\"[{a}]\""),
        (IpAddr::V6(a), true, Some(p)) => format!("proto=http;for=\"[{a}]:{p}\""),
    }
}

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
        let r = block_on(crate::harness::reply::send(world.service(), req));
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
        let r = block_on(crate::harness::reply::send(tower::Layer::layer(&layer, crate::harness::world::Echo), req));
        prop_assert!(
            r.status == StatusCode::OK || r.status == StatusCode::FORBIDDEN,
            "unexpected status {}", r.status
        );
        prop_assert!(r.varies_on_origin());
    }
}

// ---- IP rules against ipnet ----------------------------------------------------------

/// Any byte a header value may hold (visible ASCII, tab, and obs-text).
fn header_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff]
}

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
        let r = block_on(crate::harness::reply::send(world.service(), req));
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
