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

use crate::error::RejectionKind;

/// Whether a raw (still percent-encoded) parameter name is `name`, ignoring ASCII case.
fn name_matches(raw: &str, name: &str) -> bool {
    if raw.len() == name.len() {
        return raw.eq_ignore_ascii_case(name);
    }
    // An encoded name is longer than the plain one; decode only then.
    raw.len() > name.len()
        && raw.contains('%')
        && percent_decode_str(raw)
            .decode_utf8()
            .is_ok_and(|decoded| decoded.eq_ignore_ascii_case(name))
}

/// The value of the `name` parameter, decoded once. More than one occurrence (in any mix of
/// case), an empty value or one over `max_len` bytes is refused.
pub(crate) fn api_key_param<'a>(
    query: &'a str,
    name: &str,
    max_len: usize,
) -> Result<Option<Cow<'a, str>>, RejectionKind> {
    let mut found: Option<&'a str> = None;
    for piece in query.split('&') {
        let (raw_name, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
        if !name_matches(raw_name, name) {
            continue;
        }
        if found.is_some() {
            return Err(RejectionKind::MultipleCredentials);
        }
        found = Some(raw_value);
    }
    let Some(raw) = found else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Err(RejectionKind::EmptyCredential);
    }
    // A percent-encoded byte takes three characters; anything longer cannot decode small.
    if raw.len() > max_len.saturating_mul(3) {
        return Err(RejectionKind::CredentialTooLong);
    }
    let value = if raw.contains('%') {
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
    Ok(Some(value))
}

/// `uri` without any `name` parameter; other parameters keep their order and encoding.
pub(crate) fn without_param(uri: &Uri, name: &str) -> Uri {
    let Some(query) = uri.query() else {
        return uri.clone();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|piece| {
            let raw_name = piece.split_once('=').map_or(*piece, |(n, _)| n);
            !name_matches(raw_name, name)
        })
        .collect();
    let mut pq = String::with_capacity(uri.path().len() + query.len() + 1);
    pq.push_str(uri.path());
    if !kept.is_empty() {
        pq.push('?');
        pq.push_str(&kept.join("&"));
    }
    let mut parts = uri.clone().into_parts();
    match PathAndQuery::try_from(pq) {
        Ok(pq) => parts.path_and_query = Some(pq),
        // Cannot happen: the pieces come from a valid URI. Keep the URI rather than panic.
        Err(_) => return uri.clone(),
    }
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
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
}
