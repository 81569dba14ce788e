//! Allowed origins for JavaScript clients.
//!
//! A pattern is a host (`maps.example.com`) or a wildcard over its subdomains
//! (`*.example.com`: any depth, never the apex itself), with an optional scheme and port
//! (`https://*.example.com:8443`, `http://localhost:*`). No scheme means `http` or `https`;
//! no port means the scheme's default port only; `:*` means any port.
//!
//! Matching compares the parsed, lower-cased scheme, host and port of the request's origin
//! with the parsed patterns: exact hosts by hash lookup, wildcards by looking up each parent
//! domain of the request's host, label by label. Nothing is globbed over the raw header.
//!
//! ```
//! use gis_auth::restrict::{OriginRules, RequestOrigin};
//!
//! let rules = OriginRules::compile(["*.example.com", "https://maps.example.org"]).unwrap();
//! let origin = |s| RequestOrigin::from_origin_header(s).unwrap();
//! assert!(rules.allows(&origin("https://a.b.example.com")));
//! assert!(!rules.allows(&origin("https://example.com")));
//! assert!(!rules.allows(&origin("https://evil-example.com")));
//! assert!(rules.allows(&origin("https://maps.example.org:443")));
//! assert!(!rules.allows(&origin("http://maps.example.org")));
//! ```

use std::collections::HashMap;
use std::fmt;

use crate::error::ConfigError;

const MAX_HOST_LEN: usize = 253;

/// The scheme of a request origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`, default port 80.
    Http,
    /// `https`, default port 443.
    Https,
}

impl Scheme {
    fn parse(s: &str) -> Option<Scheme> {
        if s.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else if s.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else {
            None
        }
    }

    /// The scheme's default port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The origin of a request: scheme, lower-cased host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    scheme: Scheme,
    host: HostText,
    port: u16,
}

/// The most bytes of a host kept inline; longer hosts (rare in practice), and IPv6
/// literals, take one allocation.
const INLINE_HOST: usize = 62;

/// A lower-cased ASCII host: inline up to [`INLINE_HOST`] bytes, so parsing the `Origin` of
/// a request usually allocates nothing.
#[derive(Clone)]
enum HostText {
    Inline { len: u8, bytes: [u8; INLINE_HOST] },
    Long(Box<str>),
}

impl HostText {
    fn as_str(&self) -> &str {
        match self {
            // Only ASCII is ever written (see `split_host`).
            HostText::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            HostText::Long(text) => text,
        }
    }
}

impl PartialEq for HostText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for HostText {}

impl fmt::Debug for HostText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl RequestOrigin {
    /// Parses an `Origin` header value (`scheme://host[:port]`, nothing else). `null`,
    /// lists, paths, user info and schemes other than http(s) give `None`.
    pub fn from_origin_header(value: &str) -> Option<RequestOrigin> {
        // A path, query or fragment ends the host or the port, and neither accepts it.
        let (scheme, rest) = split_scheme(value)?;
        Self::from_parts(scheme, rest)
    }

    /// Takes the origin part of a `Referer` header value (an absolute http(s) URL).
    pub fn from_referer_header(value: &str) -> Option<RequestOrigin> {
        let (scheme, rest) = split_scheme(value)?;
        let authority_end = rest
            .bytes()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        Self::from_parts(scheme, &rest[..authority_end])
    }

    /// `host[:port]`, nothing else: user info, like anything else that is neither a host
    /// nor a port, gives `None`.
    fn from_parts(scheme: Scheme, authority: &str) -> Option<RequestOrigin> {
        let (host, rest) = split_host(authority)?;
        let port = match rest {
            "" => scheme.default_port(),
            _ => parse_port(rest.strip_prefix(':')?)?,
        };
        Some(RequestOrigin { scheme, host, port })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The lower-cased host (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        self.host.as_str()
    }

    /// The port, the scheme's default where none was given.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// `scheme://host`, with `:port` where it is not the scheme's default.
impl fmt::Display for RequestOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host())?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// The scheme (`http` or `https`, in any case) and what follows its `://`.
fn split_scheme(value: &str) -> Option<(Scheme, &str)> {
    let colon = value.bytes().take(6).position(|b| b == b':')?;
    let rest = value[colon..].strip_prefix("://")?;
    Some((Scheme::parse(&value[..colon])?, rest))
}

/// Splits `host[:port]`, keeping IPv6 brackets on the host.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => Some((host, Some(port))),
            None => Some((authority, None)),
        }
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&n| n != 0)
}

/// The host lower-cased, an IPv6 literal in its canonical spelling (`[0:0::1]` is `[::1]`);
/// `None` when it is not a valid host.
fn canonical_host(host: &str) -> Option<HostText> {
    match split_host(host)? {
        (host, "") => Some(host),
        _ => None,
    }
}

/// What a byte is to a host name.
#[derive(Clone, Copy)]
enum HostByte {
    /// A letter, a digit or `-`.
    Label,
    Dot,
    /// The end of the host: a port follows.
    Colon,
    Other,
}

/// [`HostByte`] of every byte value.
const HOST_BYTES: [HostByte; 256] = {
    let mut table = [HostByte::Other; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => HostByte::Label,
            b'.' => HostByte::Dot,
            b':' => HostByte::Colon,
            _ => HostByte::Other,
        };
        b += 1;
    }
    table
};

/// The host at the start of `authority`, canonical, and what follows it (nothing, or a `:`
/// and whatever comes after). A host name is DNS labels of 1 to 63 letters, digits and `-`,
/// at most [`MAX_HOST_LEN`] bytes in all. Every other byte (`@`, `/`, `?`, `#`, anything
/// not ASCII) gives `None`.
fn split_host(authority: &str) -> Option<(HostText, &str)> {
    if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let addr = authority[1..end - 1].parse::<std::net::Ipv6Addr>().ok()?;
        let canonical = format!("[{addr}]").into_boxed_str();
        return Some((HostText::Long(canonical), &authority[end..]));
    }
    // One pass: classify each byte, count the label it is in, stop at the port's `:`.
    let mut label = 0usize;
    let mut end = authority.len();
    for (i, &b) in authority.as_bytes().iter().enumerate() {
        match HOST_BYTES[usize::from(b)] {
            HostByte::Label => label += 1,
            HostByte::Dot if (1..=63).contains(&label) => label = 0,
            HostByte::Colon => {
                end = i;
                break;
            }
            HostByte::Dot | HostByte::Other => return None,
        }
    }
    if !(1..=63).contains(&label) || end > MAX_HOST_LEN {
        return None;
    }
    let (name, rest) = authority.split_at(end);
    let host = match u8::try_from(name.len()) {
        Ok(len) if name.len() <= INLINE_HOST => {
            let mut bytes = [0u8; INLINE_HOST];
            let text = &mut bytes[..name.len()];
            text.copy_from_slice(name.as_bytes());
            text.make_ascii_lowercase();
            HostText::Inline { len, bytes }
        }
        _ => HostText::Long(name.to_ascii_lowercase().into_boxed_str()),
    };
    Some((host, rest))
}

/// Which ports a pattern admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PortSpec {
    Default,
    Any,
    Exact(u16),
}

/// A parsed allowed-origin pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginPattern {
    scheme: Option<Scheme>,
    wildcard: bool,
    host: Box<str>,
    port: PortSpec,
}

impl OriginPattern {
    /// Parses `[scheme://][*.]host[:port|:*]`, with at most a trailing `/`.
    pub fn parse(pattern: &str) -> Result<OriginPattern, ConfigError> {
        let invalid = |reason| ConfigError::InvalidOrigin {
            pattern: pattern.to_owned(),
            reason,
        };
        let trimmed = pattern.trim();
        if trimmed.is_empty() {
            return Err(invalid("a pattern cannot be empty"));
        }
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((s, rest)) => (
                Some(Scheme::parse(s).ok_or_else(|| invalid("the scheme must be http or https"))?),
                rest,
            ),
            None => (None, trimmed),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(invalid("an origin has no path, query or fragment"));
        }
        if rest.contains('@') {
            return Err(invalid("an origin has no user info"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| invalid("the host is malformed"))?;
        let port = match port {
            None => PortSpec::Default,
            Some("*") => PortSpec::Any,
            Some(p) => PortSpec::Exact(
                parse_port(p).ok_or_else(|| invalid("the port must be 1 to 65535 or *"))?,
            ),
        };
        let host = host.to_ascii_lowercase();
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix.to_owned()),
            None => (false, host),
        };
        if host.contains('*') {
            return Err(invalid(
                "a wildcard may only stand as the first label, as in `*.example.com`",
            ));
        }
        let host = canonical_host(&host)
            .ok_or_else(|| invalid("the host is not a valid domain name or IP address"))?;
        let host = host.as_str();
        if wildcard {
            let last = host.rsplit('.').next().unwrap_or_default();
            if host.starts_with('[') || last.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    "a wildcard applies to domain names, not IP addresses",
                ));
            }
            if !host.contains('.') {
                return Err(invalid(
                    "a wildcard must cover a domain with at least two labels, as in `*.example.com`",
                ));
            }
        }
        Ok(OriginPattern {
            scheme,
            wildcard,
            host: host.into(),
            port,
        })
    }

    /// Whether this pattern admits `origin`.
    pub fn matches(&self, origin: &RequestOrigin) -> bool {
        let host_ok = if self.wildcard {
            origin
                .host()
                .strip_suffix(&*self.host)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
        } else {
            origin.host() == &*self.host
        };
        host_ok && self.admits_scheme_and_port(origin)
    }

    fn admits_scheme_and_port(&self, origin: &RequestOrigin) -> bool {
        if self.scheme.is_some_and(|s| s != origin.scheme) {
            return false;
        }
        match self.port {
            PortSpec::Any => true,
            PortSpec::Exact(p) => p == origin.port,
            PortSpec::Default => origin.port == origin.scheme.default_port(),
        }
    }

    /// Whether the pattern is a `*.` wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The host part, without the `*.`.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.scheme {
            write!(f, "{}://", s.as_str())?;
        }
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        match self.port {
            PortSpec::Default => Ok(()),
            PortSpec::Any => f.write_str(":*"),
            PortSpec::Exact(p) => write!(f, ":{p}"),
        }
    }
}

/// A client's compiled allowed origins. Empty means unrestricted by origin.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OriginRules {
    index: Option<Box<OriginIndex>>,
}

#[derive(Clone, PartialEq, Eq)]
struct OriginIndex {
    patterns: Box<[OriginPattern]>,
    /// host → indexes into `patterns` of the exact patterns for it.
    exact: HostMap,
    /// parent domain → indexes into `patterns` of the `*.` patterns over it.
    wildcard: HostMap,
    /// Bit `n` is set when some `*.` pattern covers a domain of `n` labels (63 for 63 or
    /// more): only parent domains of those sizes are looked up.
    wildcard_labels: u64,
}

/// The bit of [`OriginIndex::wildcard_labels`] for a domain of `labels` labels.
fn label_bit(labels: usize) -> u64 {
    1u64 << labels.min(63)
}

/// Pattern hosts to pattern indexes. The hosts are an administrator's; a request only looks
/// them up, so a fast hash is safe.
type HostMap = HashMap<Box<str>, Vec<u16>, foldhash::fast::RandomState>;

/// The most patterns one client may hold.
pub const MAX_ORIGIN_PATTERNS: usize = 1000;

impl OriginRules {
    /// Parses and indexes a list of patterns.
    pub fn compile<I, S>(patterns: I) -> Result<OriginRules, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed: Vec<OriginPattern> = Vec::new();
        for p in patterns {
            let pattern = OriginPattern::parse(p.as_ref())?;
            if !parsed.contains(&pattern) {
                parsed.push(pattern);
            }
            if parsed.len() > MAX_ORIGIN_PATTERNS {
                return Err(ConfigError::InvalidOrigin {
                    pattern: p.as_ref().to_owned(),
                    reason: "a client has at most 1000 origin patterns",
                });
            }
        }
        if parsed.is_empty() {
            return Ok(OriginRules::default());
        }
        let mut exact = HostMap::default();
        let mut wildcard = HostMap::default();
        for (i, p) in parsed.iter().enumerate() {
            let map = if p.wildcard {
                &mut wildcard
            } else {
                &mut exact
            };
            // `i` < MAX_ORIGIN_PATTERNS, which fits a u16.
            map.entry(p.host.clone()).or_default().push(i as u16);
        }
        let wildcard_labels = parsed
            .iter()
            .filter(|p| p.wildcard)
            .fold(0, |bits, p| bits | label_bit(p.host.split('.').count()));
        Ok(OriginRules {
            index: Some(Box::new(OriginIndex {
                patterns: parsed.into_boxed_slice(),
                exact,
                wildcard,
                wildcard_labels,
            })),
        })
    }

    /// Whether there are no patterns (the client is unrestricted by origin).
    pub fn is_empty(&self) -> bool {
        self.index.is_none()
    }

    /// The patterns, in the order given.
    pub fn patterns(&self) -> &[OriginPattern] {
        self.index.as_ref().map_or(&[], |i| &i.patterns)
    }

    /// Whether any pattern admits `origin`.
    pub fn allows(&self, origin: &RequestOrigin) -> bool {
        let Some(index) = &self.index else {
            return true;
        };
        let admits = |ids: &Vec<u16>| {
            ids.iter()
                .any(|&i| index.patterns[usize::from(i)].admits_scheme_and_port(origin))
        };
        if index.exact.get(origin.host()).is_some_and(admits) {
            return true;
        }
        if index.wildcard.is_empty() {
            return false;
        }
        // Each proper parent domain of the host, nearest first (a.b.example.com →
        // b.example.com, example.com, com), of a size some wildcard covers.
        let host = origin.host();
        let mut labels = host.bytes().filter(|&b| b == b'.').count();
        host.bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'.')
            .any(|(dot, _)| {
                let covered = index.wildcard_labels & label_bit(labels) != 0;
                labels -= 1;
                covered && index.wildcard.get(&host[dot + 1..]).is_some_and(admits)
            })
    }
}

impl fmt::Debug for OriginRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.patterns().iter().map(|p| p.to_string()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> RequestOrigin {
        RequestOrigin::from_origin_header(s).unwrap()
    }

    fn allows(patterns: &[&str], o: &str) -> bool {
        OriginRules::compile(patterns).unwrap().allows(&origin(o))
    }

    #[test]
    fn wildcards_cover_subdomains_at_any_depth_but_not_the_apex() {
        let p = ["*.example.com"];
        assert!(allows(&p, "https://a.example.com"));
        assert!(allows(&p, "http://a.b.c.example.com"));
        assert!(!allows(&p, "https://example.com"));
        assert!(!allows(&p, "https://evil-example.com"));
        assert!(!allows(&p, "https://evilexample.com"));
        assert!(!allows(&p, "https://example.com.evil.com"));
        assert!(!allows(&p, "https://a.example.com.evil.com"));
    }

    #[test]
    fn ipv6_literals_compare_as_addresses() {
        assert!(allows(
            &["http://[0:0:0:0:0:0:0:1]:3000"],
            "http://[::1]:3000"
        ));
        assert!(allows(
            &["https://[2001:DB8::A]"],
            "https://[2001:db8:0::a]"
        ));
        assert_eq!(
            OriginPattern::parse("https://[2001:DB8:0::A]")
                .unwrap()
                .to_string(),
            "https://[2001:db8::a]"
        );
    }

    #[test]
    fn origin_headers_are_a_scheme_a_host_and_a_port_and_nothing_else() {
        let parsed =
            |v: &str| RequestOrigin::from_origin_header(v).map(|o| (o.host().to_owned(), o.port()));
        let ok = |h: &str, p| Some((h.to_owned(), p));
        assert_eq!(
            parsed("https://Maps.Example.COM"),
            ok("maps.example.com", 443)
        );
        assert_eq!(parsed("http://a-b.c9:8080"), ok("a-b.c9", 8080));
        assert_eq!(parsed("HTTP://localhost:1"), ok("localhost", 1));
        assert_eq!(
            parsed("https://[::FFFF:1.2.3.4]:8443"),
            ok("[::ffff:1.2.3.4]", 8443)
        );
        assert_eq!(
            parsed(&format!("http://{}.x", "a".repeat(63))),
            ok(&format!("{}.x", "a".repeat(63)), 80)
        );
        for bad in [
            "https://user@maps.example.com",
            "https://user:pass@maps.example.com",
            "https://maps.example.com/",
            "https://maps.example.com/app",
            "https://maps.example.com?x",
            "https://maps.example.com#top",
            "https://maps.example.com:8443/",
            "https://maps.example.com.",
            "https://.example.com",
            "https://maps..example.com",
            "https://",
            "https://:443",
            "https://maps.example.com:",
            "https://maps.example.com:0",
            "https://maps.example.com:65536",
            "https://maps.example.com:+80",
            "https://maps_example.com",
            "https://maps.exämple.com",
            "https://maps example.com",
            "https://[::1",
            "https://[::1]x",
            "https://[::1]:",
            "https://[]",
            "https://[maps.example.com]",
            "ftp://maps.example.com",
            "null",
        ] {
            assert_eq!(parsed(bad), None, "{bad}");
        }
        assert_eq!(parsed(&format!("http://{}.x", "a".repeat(64))), None);
    }

    #[test]
    fn hosts_up_to_the_dns_limit_parse_and_longer_ones_are_refused() {
        // Either side of what is kept inline.
        for n in [INLINE_HOST - 1, INLINE_HOST, INLINE_HOST + 1] {
            let host = "M".repeat(n);
            assert_eq!(
                origin(&format!("http://{host}:81")).host(),
                host.to_lowercase()
            );
        }
        // 4 labels of 62 letters and 3 dots: 251 bytes; one more label of 1 makes 253.
        let label = "A".repeat(62);
        let longest = format!("{label}.{label}.{label}.{label}.b");
        assert_eq!(longest.len(), MAX_HOST_LEN);
        let parsed = origin(&format!("https://{longest}:8443"));
        assert_eq!(parsed.host(), longest.to_ascii_lowercase());
        assert_eq!(parsed.port(), 8443);
        assert_eq!(parsed, parsed.clone());
        assert!(RequestOrigin::from_origin_header(&format!("https://{longest}c")).is_none());
        let widest = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]";
        assert_eq!(origin(&format!("http://{widest}")).host(), widest);
        assert_eq!(
            format!("{:?}", origin("https://Maps.Example.com")),
            r#"RequestOrigin { scheme: Https, host: "maps.example.com", port: 443 }"#
        );
    }

    #[test]
    fn no_scheme_means_http_or_https_on_their_default_ports() {
        let p = ["maps.example.com"];
        assert!(allows(&p, "http://maps.example.com"));
        assert!(allows(&p, "https://maps.example.com"));
        assert!(allows(&p, "https://maps.example.com:443"));
        assert!(!allows(&p, "https://maps.example.com:8443"));
        assert!(!allows(&p, "http://maps.example.com:443"));
    }

    #[test]
    fn explicit_scheme_and_ports() {
        assert!(allows(
            &["https://*.example.com:8443"],
            "https://a.example.com:8443"
        ));
        assert!(!allows(
            &["https://*.example.com:8443"],
            "http://a.example.com:8443"
        ));
        assert!(!allows(
            &["https://*.example.com:8443"],
            "https://a.example.com"
        ));
        assert!(allows(&["http://localhost:*"], "http://localhost:3000"));
        assert!(allows(&["http://localhost:*"], "http://localhost"));
        assert!(!allows(&["http://localhost:*"], "https://localhost:3000"));
    }

    #[test]
    fn matching_is_case_insensitive() {
        assert!(allows(&["Maps.Example.COM"], "HTTPS://MAPS.example.com"));
    }

    #[test]
    fn ip_literals_match_exactly() {
        assert!(allows(&["http://127.0.0.1:8080"], "http://127.0.0.1:8080"));
        assert!(allows(&["http://[::1]:8080"], "http://[::1]:8080"));
        assert!(!allows(&["http://[::1]:8080"], "http://[::2]:8080"));
    }

    #[test]
    fn origin_headers_that_never_match() {
        for bad in [
            "null",
            "https://a.example.com, https://b.example.com",
            "https://a.example.com/path",
            "https://user@a.example.com",
            "ftp://a.example.com",
            "https://",
            "https://a..example.com",
            "https://a.example.com:0",
            "https://a.example.com:99999",
            "https://a_b.example.com",
            "a.example.com",
        ] {
            assert_eq!(RequestOrigin::from_origin_header(bad), None, "{bad}");
        }
    }

    #[test]
    fn referer_gives_its_origin_part() {
        let o = RequestOrigin::from_referer_header("https://Maps.Example.com/app/index.html?x=1")
            .unwrap();
        assert_eq!(o, origin("https://maps.example.com"));
        assert_eq!(
            RequestOrigin::from_referer_header("https://evil.com@maps.example.com/"),
            None
        );
    }

    #[test]
    fn bad_patterns_are_refused_by_name() {
        for bad in [
            "",
            "ftp://example.com",
            "*.com",
            "*example.com",
            "a.*.example.com",
            "*.1.2.3",
            "https://example.com/maps",
            "https://example.com:port",
            "https://example.com:0",
            "exa mple.com",
            "*",
        ] {
            let err = OriginPattern::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn patterns_display_in_canonical_form() {
        for (given, shown) in [
            ("HTTPS://*.Example.com:8443/", "https://*.example.com:8443"),
            ("localhost:*", "localhost:*"),
            ("maps.example.com", "maps.example.com"),
        ] {
            assert_eq!(OriginPattern::parse(given).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn empty_rules_are_unrestricted() {
        let rules = OriginRules::compile(Vec::<String>::new()).unwrap();
        assert!(rules.is_empty());
        assert!(rules.allows(&origin("https://anything.test")));
    }
}
