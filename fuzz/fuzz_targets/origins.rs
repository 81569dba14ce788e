//! Origin patterns and `Origin`/`Referer` headers: parsing never panics, and matching
//! agrees with a plain reading of the rules (the host equal, or a proper subdomain of a
//! wildcard's domain; the scheme and port as the pattern says).
//!
//! Input: newline-separated patterns, a 0xff byte, the header value.

#![no_main]

use gis_auth::restrict::{OriginPattern, OriginRules, RequestOrigin, Scheme};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (patterns, header) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let (Ok(patterns), Ok(header)) = (std::str::from_utf8(patterns), std::str::from_utf8(header))
    else {
        return;
    };
    let parsed: Vec<OriginPattern> = patterns
        .lines()
        .filter_map(|p| OriginPattern::parse(p).ok())
        .collect();
    // The canonical form parses back to the same pattern.
    for p in &parsed {
        assert_eq!(OriginPattern::parse(&p.to_string()).ok().as_ref(), Some(p));
    }
    let Ok(rules) = OriginRules::compile(parsed.iter().map(|p| p.to_string())) else {
        return;
    };
    for origin in [
        RequestOrigin::from_origin_header(header),
        RequestOrigin::from_referer_header(header),
    ]
    .into_iter()
    .flatten()
    {
        let expected = parsed.is_empty() || parsed.iter().any(|p| admits(p, &origin));
        assert_eq!(
            rules.allows(&origin),
            expected,
            "{patterns:?} vs {header:?}"
        );
    }
});

/// The rules, read plainly.
fn admits(p: &OriginPattern, o: &RequestOrigin) -> bool {
    let host = if p.is_wildcard() {
        o.host().len() > p.host().len() + 1
            && o.host().ends_with(p.host())
            && o.host().as_bytes()[o.host().len() - p.host().len() - 1] == b'.'
    } else {
        o.host() == p.host()
    };
    let text = p.to_string();
    let scheme = match text.split_once("://") {
        Some(("http", _)) => o.scheme() == Scheme::Http,
        Some(("https", _)) => o.scheme() == Scheme::Https,
        _ => true,
    };
    let port = if text.ends_with(":*") {
        true
    } else {
        match text
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
        {
            Some(port) if !text.ends_with(']') => o.port() == port,
            _ => o.port() == o.scheme().default_port(),
        }
    };
    host && scheme && port
}
