//! The `apikey` query parameter: found case-insensitively (OGC/WMS clients send `APIKEY` or
//! `ApiKey`), percent-decoded once, and removed from the URI before the wrapped service runs.
//!
//! ```
//! use gis_auth::credentials::CredentialRules;
//!
//! let rules = CredentialRules::default();
//! let uri: http::Uri = "/wms?SERVICE=WMS&APIKEY=k&LAYERS=roads".parse().unwrap();
//! assert_eq!(rules.strip_from_uri(&uri), "/wms?SERVICE=WMS&LAYERS=roads");
//! ```

use std::borrow::Cow;

use http::Uri;
use http::uri::PathAndQuery;
use percent_encoding::percent_decode_str;

use crate::rule::RejectionKind;

/// Whether a raw (still percent-encoded) parameter name is `name`, ignoring ASCII case.
fn name_matches(raw: &[u8], name: &str) -> bool {
    if raw.len() == name.len() {
        return raw.eq_ignore_ascii_case(name.as_bytes());
    }
    // An encoded name is longer than the plain one; decode only then.
    raw.len() > name.len()
        && raw.contains(&b'%')
        && percent_encoding::percent_decode(raw)
            .decode_utf8()
            .is_ok_and(|decoded| decoded.eq_ignore_ascii_case(name))
}

/// The `name=value` pieces of a query, as bytes (split at `&`, so never inside a UTF-8
/// sequence), with the raw name of each. One pass over the bytes finds both separators:
/// a query is scanned on every request, and its pieces are mostly short.
pub(crate) fn pieces(query: &str) -> impl Iterator<Item = (&[u8], &str)> {
    let bytes = query.as_bytes();
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        let mut name_end = None;
        let mut at = from;
        while let Some(&b) = bytes.get(at) {
            match b {
                b'&' => break,
                b'=' if name_end.is_none() => name_end = Some(at),
                _ => {}
            }
            at += 1;
        }
        start = (at < bytes.len()).then_some(at + 1);
        let piece = &query[from..at];
        let name = &bytes[from..name_end.unwrap_or(at)];
        Some((name, piece))
    })
}

/// Byte equality for short names, compared in line (no call per parameter).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// What one pass over a query found: the raw (still encoded) value of the API key
/// parameter, and whether a parameter named exactly `signature` is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scanned<'a> {
    /// The API key parameter's raw value, `""` when it has none.
    pub(crate) key: Option<&'a str>,
    /// Whether the signature parameter is present.
    pub(crate) signed: bool,
}

/// Scans `query` once for the `name` parameter (any case) and, when `signature` is given,
/// for a parameter named exactly that. More than one `name` (in any mix of case) is
/// refused.
pub(crate) fn scan<'a>(
    query: &'a str,
    name: &str,
    signature: Option<&str>,
) -> Result<Scanned<'a>, RejectionKind> {
    let mut found = Scanned {
        key: None,
        signed: false,
    };
    for (raw_name, piece) in pieces(query) {
        if signature.is_some_and(|sig| same_bytes(raw_name, sig.as_bytes())) {
            found.signed = true;
            continue;
        }
        if !name_matches(raw_name, name) {
            continue;
        }
        if found.key.is_some() {
            return Err(RejectionKind::MultipleCredentials);
        }
        // After the `=`, or nothing when there is none.
        found.key = Some(piece.get(raw_name.len() + 1..).unwrap_or(""));
    }
    Ok(found)
}

/// The value of the `name` parameter, decoded once. More than one occurrence (in any mix of
/// case), an empty value or one over `max_len` bytes is refused.
#[cfg(test)]
pub(crate) fn api_key_param<'a>(
    query: &'a str,
    name: &str,
    max_len: usize,
) -> Result<Option<Cow<'a, str>>, RejectionKind> {
    match scan(query, name, None)?.key {
        None => Ok(None),
        Some(raw) => key_value(raw, max_len).map(Some),
    }
}

/// An API key parameter's raw value, decoded once: an empty value or one over `max_len`
/// bytes is refused.
pub(crate) fn key_value(raw: &str, max_len: usize) -> Result<Cow<'_, str>, RejectionKind> {
    if raw.is_empty() {
        return Err(RejectionKind::EmptyCredential);
    }
    // A percent-encoded byte takes three characters; anything longer cannot decode small.
    if raw.len() > max_len.saturating_mul(3) {
        return Err(RejectionKind::CredentialTooLong);
    }
    let value = if raw.as_bytes().contains(&b'%') {
        percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| RejectionKind::MalformedCredential)?
    } else {
        Cow::Borrowed(raw)
    };
    if value.len() > max_len {
        return Err(RejectionKind::CredentialTooLong);
    }
    if value.is_empty() {
        return Err(RejectionKind::EmptyCredential);
    }
    Ok(value)
}

/// Removes every `name` parameter from `uri`; other parameters keep their order and
/// encoding. A URI without one is left untouched.
pub(crate) fn strip_param(uri: &mut Uri, name: &str) {
    strip_params(uri, |raw| name_matches(raw, name));
}

/// Removes every parameter whose raw name `strip` picks from `uri`; other parameters keep
/// their order and encoding. A URI without one is left untouched.
pub(crate) fn strip_params(uri: &mut Uri, strip: impl Fn(&[u8]) -> bool) {
    let Some(query) = uri.query() else {
        return;
    };
    let path = uri.path();
    let mut pq: Vec<u8> = Vec::with_capacity(path.len() + query.len() + 1);
    pq.extend_from_slice(path.as_bytes());
    let mut separator = b'?';
    let mut removed = false;
    for (raw_name, piece) in pieces(query) {
        if strip(raw_name) {
            removed = true;
        } else {
            pq.push(separator);
            pq.extend_from_slice(piece.as_bytes());
            separator = b'&';
        }
    }
    if removed {
        set_path_and_query(uri, pq);
    }
}

/// Removes the query from `uri`, leaving its path.
pub(crate) fn strip_query(uri: &mut Uri) {
    if uri.query().is_some() {
        let path = uri.path().as_bytes().to_vec();
        set_path_and_query(uri, path);
    }
}

/// Puts `pq`, made from the parts of `uri`'s own, in its place.
fn set_path_and_query(uri: &mut Uri, pq: Vec<u8>) {
    // Cannot fail: the parts come from a valid URI. Keep the URI rather than panic.
    let Ok(pq) = PathAndQuery::try_from(pq) else {
        return;
    };
    if uri.scheme().is_none() && uri.authority().is_none() {
        // The origin form every server sees: the path and query are the whole URI.
        *uri = Uri::from(pq);
        return;
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq);
    if let Ok(stripped) = Uri::from_parts(parts) {
        *uri = stripped;
    }
}

/// `uri` without any `name` parameter; other parameters keep their order and encoding.
#[cfg(test)]
fn without_param(uri: &Uri, name: &str) -> Uri {
    let mut uri = uri.clone();
    strip_param(&mut uri, name);
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(q: &str) -> Result<Option<String>, RejectionKind> {
        api_key_param(q, "apikey", 4096).map(|v| v.map(Cow::into_owned))
    }

    #[test]
    fn found_in_any_case_and_decoded_once() {
        assert_eq!(key("apikey=abc"), Ok(Some("abc".into())));
        assert_eq!(key("SERVICE=WMS&APIKEY=abc"), Ok(Some("abc".into())));
        assert_eq!(key("ApiKey=a%2541"), Ok(Some("a%41".into())));
        assert_eq!(key("api%6Bey=abc"), Ok(Some("abc".into())));
        assert_eq!(key("other=1"), Ok(None));
        assert_eq!(key(""), Ok(None));
        assert_eq!(key("apikeys=abc"), Ok(None));
    }

    #[test]
    fn repeated_or_empty_values_are_refused() {
        assert_eq!(
            key("apikey=a&APIKEY=b"),
            Err(RejectionKind::MultipleCredentials)
        );
        assert_eq!(
            key("apikey=a&apikey=a"),
            Err(RejectionKind::MultipleCredentials)
        );
        assert_eq!(key("apikey="), Err(RejectionKind::EmptyCredential));
        assert_eq!(key("apikey"), Err(RejectionKind::EmptyCredential));
        assert_eq!(key("apikey=%ff"), Err(RejectionKind::MalformedCredential));
    }

    #[test]
    fn oversized_values_are_refused() {
        assert_eq!(
            key(&format!("apikey={}", "a".repeat(4097))),
            Err(RejectionKind::CredentialTooLong)
        );
        assert_eq!(
            key(&format!("apikey={}", "%41".repeat(4097))),
            Err(RejectionKind::CredentialTooLong)
        );
    }

    #[test]
    fn stripping_keeps_other_parameters_as_they_were() {
        let uri: Uri = "http://h/wms?SERVICE=WMS&ApiKey=k&BBOX=1%2C2"
            .parse()
            .unwrap();
        assert_eq!(
            without_param(&uri, "apikey").to_string(),
            "http://h/wms?SERVICE=WMS&BBOX=1%2C2"
        );
        let uri: Uri = "/tiles/1/2/3.png?apikey=k".parse().unwrap();
        assert_eq!(
            without_param(&uri, "apikey").to_string(),
            "/tiles/1/2/3.png"
        );
    }

    #[test]
    fn stripping_the_query_keeps_the_rest_of_the_uri() {
        for (given, left) in [
            ("/tiles/1/2/3.png?cid=a&sig=b", "/tiles/1/2/3.png"),
            ("http://h:8080/t/1.png?sig=b", "http://h:8080/t/1.png"),
            ("/t/1.png?", "/t/1.png"),
            ("/t/1.png", "/t/1.png"),
        ] {
            let mut uri: Uri = given.parse().unwrap();
            strip_query(&mut uri);
            assert_eq!(uri.to_string(), left);
        }
    }
}
