//! IP rules: a reference model (mask containment, IPv4-mapped addresses) and strategies
//! that generate rules with addresses inside and just outside them.

use super::*;

/// An IP rule, as a network in the family it matches, and how it is written.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rule {
    /// `a.b.c.d`, `a.b.*.*` or `a.b.c.d/n`.
    V4 { net: u32, prefix: u8, form: V4Form },
    /// `::ffff:a.b.c.d` or `::ffff:a.b.c.d/(96 + n)`: an IPv4 rule in IPv6 dress.
    Mapped { net: u32, prefix: u8 },
    /// An IPv6 address or block outside the IPv4-mapped range.
    V6 { net: u128, prefix: u8 },
}

#[derive(Debug, Clone, Copy)]
pub(super) enum V4Form {
    Single,
    Wildcard,
    Cidr,
}

pub(super) fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

pub(super) fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

/// An address as the family it is matched in: IPv4-mapped IPv6 as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Canonical {
    V4(u32),
    V6(u128),
}

pub(super) fn canonical(addr: IpAddr) -> Canonical {
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
    pub(super) fn render(&self) -> String {
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

    pub(super) fn contains(&self, addr: IpAddr) -> bool {
        match (*self, canonical(addr)) {
            (Rule::V4 { net, prefix, .. } | Rule::Mapped { net, prefix }, Canonical::V4(a)) => {
                a & mask32(prefix) == net
            }
            (Rule::V6 { net, prefix }, Canonical::V6(a)) => a & mask128(prefix) == net,
            _ => false,
        }
    }

    /// An address inside the rule, with `host` for the free bits.
    pub(super) fn inside(&self, host: u128, mapped: bool) -> IpAddr {
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

pub(super) fn rule() -> impl Strategy<Value = Rule> {
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
pub(super) fn rules_and_address() -> impl Strategy<Value = (Vec<Rule>, IpAddr)> {
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
