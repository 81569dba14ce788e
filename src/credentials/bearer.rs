//! `Authorization: Bearer <token>` (RFC 6750 §2.1).
//!
//! ```
//! use gis_auth::credentials::{PresentedCredential, CredentialRules};
//! use gis_auth::RejectionKind;
//!
//! let rules = CredentialRules::default();
//! let mut req = http::Request::get("/geocode").header("authorization", "bearer   abc.def")
//!     .body(()).unwrap();
//! assert_eq!(rules.extract(req.headers(), None), Ok(Some(PresentedCredential::Bearer("abc.def"))));
//! req.headers_mut().insert("authorization", "Bearer a b".parse().unwrap());
//! assert_eq!(rules.extract(req.headers(), None), Err(RejectionKind::MalformedHeader));
//! ```

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::rule::RejectionKind;

/// The bearer token of the request, if it has an `Authorization: Bearer` header.
///
/// Another scheme (Basic, say) counts as no credential. Two `Authorization` headers, an
/// empty token, a malformed header or a token over `max_len` bytes are refused.
pub(crate) fn bearer_token(
    headers: &HeaderMap,
    max_len: usize,
) -> Result<Option<&str>, RejectionKind> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(RejectionKind::MultipleCredentials);
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = match bytes.iter().position(|&b| b == b' ') {
        Some(sp) => (&bytes[..sp], &bytes[sp..]),
        None => (bytes, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    let token = trim_leading_spaces(rest);
    if token.is_empty() {
        return Err(RejectionKind::EmptyCredential);
    }
    if token.len() > max_len {
        return Err(RejectionKind::CredentialTooLong);
    }
    if !is_b64token(token) {
        return Err(RejectionKind::MalformedHeader);
    }
    // b64token is ASCII, so this cannot fail; refuse rather than panic if it ever did.
    std::str::from_utf8(token)
        .map(Some)
        .map_err(|_| RejectionKind::MalformedHeader)
}

fn trim_leading_spaces(mut b: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = b {
        b = rest;
    }
    b
}

/// Whether `b` may stand in a `b64token` body: letters, digits and `-._~+/`. Written as
/// comparisons (no table), so that a check over a whole token runs many bytes at a time.
#[inline]
fn b64token_byte(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    let symbol = (b == b'-') | (b == b'.') | (b == b'_') | (b == b'~') | (b == b'+') | (b == b'/');
    letter | digit | symbol
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &[u8]) -> bool {
    let body_end = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    body_end > 0
        && token[..body_end]
            .iter()
            .fold(true, |ok, &b| ok & b64token_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(values: &[&[u8]]) -> Result<Option<String>, RejectionKind> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, http::HeaderValue::from_bytes(v).unwrap());
        }
        bearer_token(&h, 4096).map(|t| t.map(str::to_owned))
    }

    #[test]
    fn b64token_bytes_are_letters_digits_and_six_symbols() {
        for b in 0..=255u8 {
            let expected =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(b64token_byte(b), expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn scheme_is_case_insensitive_and_separator_is_one_or_more_spaces() {
        assert_eq!(token(&[b"Bearer abc"]), Ok(Some("abc".into())));
        assert_eq!(
            token(&[b"bEaReR   abc.def-_~+/=="]),
            Ok(Some("abc.def-_~+/==".into()))
        );
    }

    #[test]
    fn other_schemes_are_no_credential() {
        assert_eq!(token(&[b"Basic dXNlcjpwYXNz"]), Ok(None));
        assert_eq!(token(&[b"BearerX abc"]), Ok(None));
        assert_eq!(token(&[]), Ok(None));
    }

    #[test]
    fn refusals() {
        assert_eq!(token(&[b"Bearer"]), Err(RejectionKind::EmptyCredential));
        assert_eq!(token(&[b"Bearer   "]), Err(RejectionKind::EmptyCredential));
        assert_eq!(token(&[b"Bearer a b"]), Err(RejectionKind::MalformedHeader));
        assert_eq!(token(&[b"Bearer a=b"]), Err(RejectionKind::MalformedHeader));
        assert_eq!(token(&[b"Bearer ==="]), Err(RejectionKind::MalformedHeader));
        assert_eq!(
            token(&[b"Bearer \xc3\xa9"]),
            Err(RejectionKind::MalformedHeader)
        );
        assert_eq!(
            token(&[b"Bearer a", b"Bearer b"]),
            Err(RejectionKind::MultipleCredentials)
        );
        assert_eq!(
            token(&[b"Basic x", b"Bearer b"]),
            Err(RejectionKind::MultipleCredentials)
        );
    }

    #[test]
    fn oversized_tokens_are_refused_before_parsing() {
        let long = format!("Bearer {}", "a".repeat(4097));
        assert_eq!(
            token(&[long.as_bytes()]),
            Err(RejectionKind::CredentialTooLong)
        );
    }
}
