//! The API key header (`X-Api-Key` unless configured otherwise): one value, sent as is.
//! Map SDKs can add headers to their tile requests (MapLibre's `transformRequest`), which
//! keeps the key out of URLs, and so out of access logs and cache keys.
//!
//! ```
//! use gis_auth::credentials::{CredentialRules, PresentedCredential};
//! use gis_auth::RejectionKind;
//!
//! let rules = CredentialRules::default();
//! let mut headers = http::HeaderMap::new();
//! headers.append("x-api-key", "k1".parse().unwrap());
//! assert_eq!(rules.extract(&headers, None), Ok(Some(PresentedCredential::ApiKeyHeader("k1"))));
//! headers.append("x-api-key", "k2".parse().unwrap());
//! assert_eq!(rules.extract(&headers, None), Err(RejectionKind::MultipleCredentials));
//! ```

use http::{HeaderMap, HeaderName};

use crate::rule::RejectionKind;

/// The value of the `name` header. Two of them, an empty value, one over `max_len` bytes or
/// one that is not visible ASCII is refused.
pub(crate) fn api_key_header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    max_len: usize,
) -> Result<Option<&'a str>, RejectionKind> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(RejectionKind::MultipleCredentials);
    }
    if value.is_empty() {
        return Err(RejectionKind::EmptyCredential);
    }
    if value.len() > max_len {
        return Err(RejectionKind::CredentialTooLong);
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| RejectionKind::MalformedCredential)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(values: &[&[u8]]) -> Result<Option<String>, RejectionKind> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-api-key", http::HeaderValue::from_bytes(v).unwrap());
        }
        api_key_header(&h, &HeaderName::from_static("x-api-key"), 8).map(|k| k.map(str::to_owned))
    }

    #[test]
    fn one_visible_value_within_the_limit_is_the_key() {
        assert_eq!(key(&[b"abc"]), Ok(Some("abc".into())));
        assert_eq!(key(&[]), Ok(None));
        assert_eq!(key(&[b""]), Err(RejectionKind::EmptyCredential));
        assert_eq!(key(&[b"a", b"a"]), Err(RejectionKind::MultipleCredentials));
        assert_eq!(key(&[b"123456789"]), Err(RejectionKind::CredentialTooLong));
        assert_eq!(key(&[b"\xc3\xa9"]), Err(RejectionKind::MalformedCredential));
    }
}
