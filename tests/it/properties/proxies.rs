//! Trusted proxies: the reference for which hop of a forwarding chain is the caller.

use super::*;

pub(super) const TRUSTED: &[&str] = &["10.0.0.0/8", "2001:db8:ffff::/48"];

pub(super) fn trusted(addr: IpAddr) -> bool {
    match canonical(addr) {
        Canonical::V4(a) => a >> 24 == 10,
        Canonical::V6(a) => a >> 80 == 0x2001_0db8_ffff,
    }
}

pub(super) fn canonical_ip(addr: IpAddr) -> IpAddr {
    match canonical(addr) {
        Canonical::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
        Canonical::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
    }
}

/// The caller: the peer unless it is a trusted proxy; then the right-most hop that is not
/// trusted, the left-most when all are, or the peer when there are none.
pub(super) fn expected_caller(peer: IpAddr, hops: &[IpAddr]) -> IpAddr {
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

pub(super) fn hop_address() -> impl Strategy<Value = IpAddr> {
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
pub(super) fn write_hop(addr: IpAddr, forwarded: bool, port: Option<u16>) -> String {
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
