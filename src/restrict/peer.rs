//! The caller's address: the connection's peer, or, when that peer is a trusted proxy, the
//! address the proxies forwarded.
//!
//! Forwarded headers are honoured only when the peer is inside a configured trusted-proxy
//! list. Then the right-most hop that is not a trusted proxy is the caller (the left-most hop
//! when every hop is trusted). A hop that cannot be parsed (`unknown`, an obfuscated name,
//! garbage) makes the address unknown, which refuses any client with IP rules: fail closed.
//!
//! Only one header is read, the one the proxies in front are set to append to
//! ([`ForwardedHeader`]); honouring a second header would let a caller forge the address
//! through whichever header the proxies pass along untouched.
//!
//! ```
//! use gis_auth::restrict::{ForwardedHeader, TrustedProxies};
//! use http::HeaderMap;
//!
//! let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
//! let mut headers = HeaderMap::new();
//! headers.insert("x-forwarded-for", "198.51.100.7, 10.0.0.3".parse().unwrap());
//! let peer = Some("10.0.0.2".parse().unwrap());
//! let ip = proxies.client_ip(peer, &headers, ForwardedHeader::XForwardedFor);
//! assert_eq!(ip, Some("198.51.100.7".parse().unwrap()));
//!
//! // A peer that is not a trusted proxy cannot claim another address.
//! let ip = proxies.client_ip(Some("198.51.100.9".parse().unwrap()), &headers,
//!     ForwardedHeader::XForwardedFor);
//! assert_eq!(ip, Some("198.51.100.9".parse().unwrap()));
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::FORWARDED;
use http::{Extensions, HeaderMap};
use ipnet::IpNet;

use super::ip::{canonical, canonical_net};
use crate::error::ConfigError;

/// Reads the connection's peer address from a request's extensions, for servers that keep
/// it somewhere other than a `SocketAddr` extension.
pub type PeerSource = Arc<dyn Fn(&Extensions) -> Option<IpAddr> + Send + Sync>;

/// The connection's peer address: `custom` first, then a `SocketAddr` extension, then (with
/// the `axum` feature) axum's `ConnectInfo<SocketAddr>`.
pub(crate) fn peer_ip(ext: &Extensions, custom: Option<&PeerSource>) -> Option<IpAddr> {
    if let Some(ip) = custom.and_then(|f| f(ext)) {
        return Some(ip);
    }
    if let Some(addr) = ext.get::<SocketAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    None
}

/// Which forwarded header the trusted proxies append to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, cloud load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The proxies whose forwarded headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// How many forwarded hops are read at most; a longer chain makes the address unknown.
const MAX_HOPS: usize = 64;

impl TrustedProxies {
    /// No trusted proxies: forwarded headers are always ignored.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses CIDR blocks or single addresses.
    pub fn parse<I, S>(cidrs: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for c in cidrs {
            let c = c.as_ref().trim();
            let net = match c.parse::<IpNet>() {
                Ok(net) => canonical_net(net.trunc()),
                Err(_) => match c.parse::<IpAddr>() {
                    Ok(addr) => IpNet::from(canonical(addr)),
                    Err(_) => {
                        return Err(ConfigError::InvalidIpRule {
                            rule: c.to_owned(),
                            reason: "a trusted proxy is a CIDR block or an IP address",
                        });
                    }
                },
            };
            nets.push(net);
        }
        Ok(Self { nets })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `addr` is a trusted proxy.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.nets.iter().any(|n| n.contains(&addr))
    }

    /// The caller's address, given the connection's peer and the request headers.
    pub fn client_ip(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        which: ForwardedHeader,
    ) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.contains(peer) {
            return Some(peer);
        }
        let hops = match which {
            ForwardedHeader::XForwardedFor => {
                collect_hops(headers, "x-forwarded-for", parse_xff_hop)
            }
            ForwardedHeader::Forwarded => {
                collect_hops(headers, FORWARDED.as_str(), parse_forwarded_element)
            }
        }?;
        if hops.is_empty() {
            return Some(peer);
        }
        for hop in hops.iter().rev() {
            match hop {
                Some(addr) if self.contains(*addr) => continue,
                Some(addr) => return Some(*addr),
                None => return None,
            }
        }
        hops[0]
    }
}

/// All hops of every instance of the header, in order; `None` when the chain is unreadable
/// or too long. Each hop is `None` when it is not an address.
fn collect_hops(
    headers: &HeaderMap,
    name: &str,
    parse: fn(&str) -> Option<IpAddr>,
) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all(name) {
        let value = value.to_str().ok()?;
        for hop in value.split(',') {
            let hop = hop.trim();
            if hop.is_empty() {
                continue;
            }
            if hops.len() == MAX_HOPS {
                return None;
            }
            hops.push(parse(hop).map(canonical));
        }
    }
    Some(hops)
}

fn parse_xff_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The `for=` parameter of one RFC 7239 element: `for=192.0.2.60;proto=http`,
/// `for="[2001:db8::1]:4711"`.
fn parse_forwarded_element(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })?;
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    if let Some(inner) = value.strip_prefix('[') {
        let (addr, _) = inner.split_once(']')?;
        return addr.parse().ok();
    }
    value
        .parse::<IpAddr>()
        .ok()
        .or_else(|| value.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(["10.0.0.0/8", "2001:db8:ffff::/48"]).unwrap()
    }

    #[test]
    fn a_mapped_proxy_block_covers_plain_ipv4_peers() {
        let p = TrustedProxies::parse(["::ffff:10.0.0.0/104"]).unwrap();
        let h = headers("x-forwarded-for", &["203.0.113.5"]);
        for peer in ["10.0.0.2", "::ffff:10.0.0.2"] {
            let got = p.client_ip(Some(ip(peer)), &h, ForwardedHeader::XForwardedFor);
            assert_eq!(got, Some(ip("203.0.113.5")), "peer {peer}");
        }
    }

    #[test]
    fn untrusted_peer_ignores_forwarded_headers() {
        let h = headers("x-forwarded-for", &["1.2.3.4"]);
        let got = proxies().client_ip(Some(ip("198.51.100.1")), &h, ForwardedHeader::XForwardedFor);
        assert_eq!(got, Some(ip("198.51.100.1")));
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_caller() {
        let h = headers("x-forwarded-for", &["6.6.6.6, 198.51.100.7", "10.1.1.1"]);
        let got = proxies().client_ip(Some(ip("10.0.0.1")), &h, ForwardedHeader::XForwardedFor);
        assert_eq!(got, Some(ip("198.51.100.7")));
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost() {
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.1.1.1"]);
        let got = proxies().client_ip(Some(ip("10.0.0.1")), &h, ForwardedHeader::XForwardedFor);
        assert_eq!(got, Some(ip("10.9.9.9")));
    }

    #[test]
    fn no_forwarded_header_gives_the_peer() {
        let got = proxies().client_ip(
            Some(ip("10.0.0.1")),
            &HeaderMap::new(),
            ForwardedHeader::XForwardedFor,
        );
        assert_eq!(got, Some(ip("10.0.0.1")));
    }

    #[test]
    fn unparseable_hop_makes_the_address_unknown() {
        let h = headers("x-forwarded-for", &["198.51.100.7, garbage"]);
        let got = proxies().client_ip(Some(ip("10.0.0.1")), &h, ForwardedHeader::XForwardedFor);
        assert_eq!(got, None);
    }

    #[test]
    fn rfc_7239_forwarded_is_read_when_configured() {
        let h = headers(
            "forwarded",
            &[r#"for=198.51.100.7;proto=https, for="[2001:db8:ffff::1]:4711""#],
        );
        let got = proxies().client_ip(Some(ip("10.0.0.1")), &h, ForwardedHeader::Forwarded);
        assert_eq!(got, Some(ip("198.51.100.7")));
        // and X-Forwarded-For is then ignored
        let h = headers("x-forwarded-for", &["198.51.100.8"]);
        let got = proxies().client_ip(Some(ip("10.0.0.1")), &h, ForwardedHeader::Forwarded);
        assert_eq!(got, Some(ip("10.0.0.1")));
    }

    #[test]
    fn forwarded_unknown_and_obfuscated_hops_are_unknown() {
        for v in ["for=unknown", "for=_hidden", "proto=https"] {
            let h = headers("forwarded", &[v]);
            let got = proxies().client_ip(Some(ip("10.0.0.1")), &h, ForwardedHeader::Forwarded);
            assert_eq!(got, None, "{v}");
        }
    }

    #[test]
    fn xff_hops_with_ports_are_read() {
        let h = headers(
            "x-forwarded-for",
            &["198.51.100.7:5555", "[2001:db8::9]:80"],
        );
        let got = proxies().client_ip(Some(ip("10.0.0.1")), &h, ForwardedHeader::XForwardedFor);
        assert_eq!(got, Some(ip("2001:db8::9")));
    }

    #[test]
    fn mapped_peer_addresses_are_canonical() {
        let got = TrustedProxies::none().client_ip(
            Some(ip("::ffff:198.51.100.1")),
            &HeaderMap::new(),
            ForwardedHeader::XForwardedFor,
        );
        assert_eq!(got, Some(ip("198.51.100.1")));
    }

    #[test]
    fn overlong_chains_are_unknown() {
        let chain = vec!["198.51.100.1"; MAX_HOPS + 1].join(",");
        let h = headers("x-forwarded-for", &[&chain]);
        let got = proxies().client_ip(Some(ip("10.0.0.1")), &h, ForwardedHeader::XForwardedFor);
        assert_eq!(got, None);
    }

    #[test]
    fn bad_proxy_entries_are_refused() {
        assert!(TrustedProxies::parse(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(["proxy.local"]).is_err());
    }
}
