//! IP restrictions: single addresses, trailing IPv4 wildcards (`203.0.113.*`) and CIDR blocks
//! (`203.0.113.0/24`, `2001:db8::/32`), compiled once when a client is stored.
//!
//! An IPv4-mapped IPv6 address (`::ffff:203.0.113.9`) is matched as the IPv4 address it
//! carries, in rules and in requests alike.
//!
//! ```
//! use gis_auth::restrict::IpRules;
//!
//! let rules = IpRules::compile(["203.0.113.*", "2001:db8::/32", "198.51.100.7"]).unwrap();
//! assert!(rules.allows("203.0.113.9".parse().unwrap()));
//! assert!(rules.allows("::ffff:203.0.113.9".parse().unwrap()));
//! assert!(rules.allows("2001:db8::1".parse().unwrap()));
//! assert!(!rules.allows("198.51.100.8".parse().unwrap()));
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::error::ConfigError;

/// One IP rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRule {
    net: IpNet,
    wildcard: bool,
}

impl IpRule {
    /// Parses an address, a trailing IPv4 wildcard or a CIDR block. A block with host bits
    /// set (`203.0.113.5/24`) is refused, since it is most likely a typo.
    pub fn parse(rule: &str) -> Result<IpRule, ConfigError> {
        let invalid = |reason| ConfigError::InvalidIpRule {
            rule: rule.to_owned(),
            reason,
        };
        let s = rule.trim();
        if s.is_empty() {
            return Err(invalid("a rule cannot be empty"));
        }
        if s.contains('*') {
            return parse_wildcard(s).ok_or_else(|| {
                invalid("a wildcard replaces whole trailing IPv4 octets, as in `203.0.113.*`")
            });
        }
        if s.contains('/') {
            let net: IpNet = s
                .parse()
                .map_err(|_| invalid("not a CIDR block such as `203.0.113.0/24`"))?;
            if net.trunc() != net {
                return Err(invalid("the address has bits set beyond the prefix length"));
            }
            return Ok(IpRule {
                net: canonical_net(net),
                wildcard: false,
            });
        }
        let addr: IpAddr = s
            .parse()
            .map_err(|_| invalid("not an IPv4 or IPv6 address"))?;
        Ok(IpRule {
            net: IpNet::from(canonical(addr)),
            wildcard: false,
        })
    }

    /// Whether `addr` is covered by this rule.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.net.contains(&canonical(addr))
    }

    /// The network this rule covers.
    pub fn net(&self) -> IpNet {
        self.net
    }
}

fn parse_wildcard(s: &str) -> Option<IpRule> {
    let octets: Vec<&str> = s.split('.').collect();
    if octets.len() != 4 {
        return None;
    }
    let fixed = octets.iter().take_while(|o| **o != "*").count();
    if fixed == 0 || octets[fixed..].iter().any(|o| *o != "*") {
        return None;
    }
    let mut bytes = [0u8; 4];
    for (i, o) in octets[..fixed].iter().enumerate() {
        if o.is_empty() || o.len() > 3 || !o.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        bytes[i] = o.parse().ok()?;
    }
    let prefix = u8::try_from(fixed * 8).ok()?;
    let net = Ipv4Net::new(Ipv4Addr::from(bytes), prefix).ok()?;
    Some(IpRule {
        net: IpNet::V4(net),
        wildcard: true,
    })
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries; anything else as it is.
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// An IPv4-mapped IPv6 block (`::ffff:10.0.0.0/104`) as the IPv4 block it covers.
pub(crate) fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
}

impl fmt::Display for IpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.net {
            IpNet::V4(n) if self.wildcard => {
                let o = n.addr().octets();
                let fixed = usize::from(n.prefix_len() / 8);
                let parts: Vec<String> = (0..4)
                    .map(|i| {
                        if i < fixed {
                            o[i].to_string()
                        } else {
                            "*".to_owned()
                        }
                    })
                    .collect();
                f.write_str(&parts.join("."))
            }
            IpNet::V4(n) if n.prefix_len() == 32 => write!(f, "{}", n.addr()),
            IpNet::V6(n) if n.prefix_len() == 128 => write!(f, "{}", n.addr()),
            net => write!(f, "{net}"),
        }
    }
}

/// A client's compiled IP rules. Empty means unrestricted by address.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IpRules {
    compiled: Option<Box<CompiledIpRules>>,
}

#[derive(Clone, PartialEq, Eq)]
struct CompiledIpRules {
    rules: Box<[IpRule]>,
    /// (network, mask) pairs, masks precomputed.
    v4: Box<[(u32, u32)]>,
    v6: Box<[(u128, u128)]>,
}

/// The most rules one client may hold.
pub const MAX_IP_RULES: usize = 1000;

impl IpRules {
    /// Parses and compiles a list of rules.
    pub fn compile<I, S>(rules: I) -> Result<IpRules, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed: Vec<IpRule> = Vec::new();
        for r in rules {
            let rule = IpRule::parse(r.as_ref())?;
            if !parsed.contains(&rule) {
                parsed.push(rule);
            }
            if parsed.len() > MAX_IP_RULES {
                return Err(ConfigError::InvalidIpRule {
                    rule: r.as_ref().to_owned(),
                    reason: "a client has at most 1000 IP rules",
                });
            }
        }
        if parsed.is_empty() {
            return Ok(IpRules::default());
        }
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for rule in &parsed {
            match rule.net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()))),
            }
        }
        Ok(IpRules {
            compiled: Some(Box::new(CompiledIpRules {
                rules: parsed.into_boxed_slice(),
                v4: v4.into_boxed_slice(),
                v6: v6.into_boxed_slice(),
            })),
        })
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.compiled.is_none()
    }

    /// The rules, in the order given.
    pub fn rules(&self) -> &[IpRule] {
        self.compiled.as_ref().map_or(&[], |c| &c.rules)
    }

    /// Whether any rule covers `addr` (always true when there are no rules).
    pub fn allows(&self, addr: IpAddr) -> bool {
        let Some(c) = &self.compiled else {
            return true;
        };
        match canonical(addr) {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                c.v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                c.v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
    }
}

impl fmt::Debug for IpRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.rules().iter().map(|r| r.to_string()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(rules: &[&str], addr: &str) -> bool {
        IpRules::compile(rules)
            .unwrap()
            .allows(addr.parse().unwrap())
    }

    #[test]
    fn single_addresses() {
        assert!(allows(&["203.0.113.9"], "203.0.113.9"));
        assert!(!allows(&["203.0.113.9"], "203.0.113.10"));
        assert!(allows(&["2001:db8::1"], "2001:db8::1"));
        assert!(!allows(&["2001:db8::1"], "2001:db8::2"));
    }

    #[test]
    fn trailing_wildcards() {
        assert!(allows(&["203.0.113.*"], "203.0.113.255"));
        assert!(!allows(&["203.0.113.*"], "203.0.114.1"));
        assert!(allows(&["10.*.*.*"], "10.200.3.4"));
        for bad in [
            "*.0.113.1",
            "203.*.113.1",
            "*",
            "203.0.113",
            "203.0.113.2*",
            "2001:db8::*",
        ] {
            assert!(IpRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_blocks() {
        assert!(allows(&["203.0.113.0/24"], "203.0.113.77"));
        assert!(!allows(&["203.0.113.0/24"], "203.0.112.77"));
        assert!(allows(&["2001:db8::/32"], "2001:db8:ffff::1"));
        assert!(!allows(&["2001:db8::/32"], "2001:db9::1"));
        assert!(allows(&["0.0.0.0/0"], "198.51.100.1"));
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_rules() {
        assert!(allows(&["203.0.113.0/24"], "::ffff:203.0.113.5"));
        assert!(allows(&["::ffff:203.0.113.5"], "203.0.113.5"));
        assert!(allows(&["::ffff:203.0.113.0/120"], "203.0.113.5"));
        assert!(!allows(&["203.0.113.0/24"], "2001:db8::1"));
    }

    #[test]
    fn host_bits_set_are_refused_naming_the_rule() {
        let err = IpRule::parse("203.0.113.5/24").unwrap_err();
        assert!(err.to_string().contains("`203.0.113.5/24`"));
    }

    #[test]
    fn rules_display_as_given() {
        for r in [
            "203.0.113.*",
            "10.*.*.*",
            "203.0.113.0/24",
            "2001:db8::/32",
            "198.51.100.7",
        ] {
            assert_eq!(IpRule::parse(r).unwrap().to_string(), r);
        }
    }
}
