//! Pulling a credential out of a request: an `Authorization: Bearer` header, the `apikey`
//! query parameter, the `X-Api-Key` header or (once turned on) a signed URL's `sig`
//! parameter, never two of them.
//!
//! ```
//! use gis_auth::credentials::{PresentedCredential, CredentialRules};
//! use gis_auth::RejectionKind;
//!
//! let rules = CredentialRules::default();
//! let req = http::Request::get("/tiles/1/2/3.png?APIKEY=abc").body(()).unwrap();
//! assert_eq!(rules.extract(req.headers(), req.uri().query()),
//!     Ok(Some(PresentedCredential::ApiKey("abc".into()))));
//!
//! let req = http::Request::get("/tiles/1/2/3.png?apikey=abc")
//!     .header("authorization", "Bearer xyz").body(()).unwrap();
//! assert_eq!(rules.extract(req.headers(), req.uri().query()),
//!     Err(RejectionKind::MultipleCredentials));
//!
//! // Map SDKs can send the key in a header instead, which keeps it out of URLs and logs.
//! let req = http::Request::get("/tiles/1/2/3.png").header("x-api-key", "abc").body(()).unwrap();
//! assert_eq!(rules.extract(req.headers(), req.uri().query()),
//!     Ok(Some(PresentedCredential::ApiKeyHeader("abc"))));
//! ```

mod bearer;
mod header;
mod query;
mod realm;

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, Uri};

use crate::rule::RejectionKind;

pub(crate) use query::pieces as query_pieces;
pub use realm::Realm;

/// A credential found in a request.
#[derive(Clone, PartialEq, Eq)]
pub enum PresentedCredential<'a> {
    /// From `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// From the API key query parameter, percent-decoded once.
    ApiKey(Cow<'a, str>),
    /// From the API key header (`X-Api-Key` unless configured otherwise), as sent.
    ApiKeyHeader(&'a str),
    /// A signed URL: the whole query, which holds its [`SIGNATURE_PARAM`] and the values
    /// it signs.
    SignedUrl(&'a str),
}

/// The query parameter whose presence makes a request's URL a signed URL (when the rules
/// accept them).
pub const SIGNATURE_PARAM: &str = "sig";

impl std::fmt::Debug for PresentedCredential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PresentedCredential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            PresentedCredential::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            PresentedCredential::ApiKeyHeader(_) => f.write_str("ApiKeyHeader(<redacted>)"),
            PresentedCredential::SignedUrl(_) => f.write_str("SignedUrl(<redacted>)"),
        }
    }
}

/// Where credentials are looked for, and how large they may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRules {
    param: Cow<'static, str>,
    header: Option<HeaderName>,
    max_len: usize,
    signed_urls: bool,
}

/// The header an API key is read from unless configured otherwise: `X-Api-Key`.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// The default size limit of a key or token: 4 KiB.
pub const DEFAULT_MAX_CREDENTIAL_LEN: usize = 4096;

impl Default for CredentialRules {
    fn default() -> Self {
        Self {
            param: Cow::Borrowed("apikey"),
            header: Some(API_KEY_HEADER),
            max_len: DEFAULT_MAX_CREDENTIAL_LEN,
            signed_urls: false,
        }
    }
}

impl CredentialRules {
    /// With another query parameter name (matched ignoring ASCII case).
    #[must_use]
    pub fn query_param(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.param = name.into();
        self
    }

    /// With another API key header name, or with none (`None`: keys are read from the
    /// query only). `X-Api-Key` by default.
    #[must_use]
    pub fn api_key_header(mut self, name: Option<HeaderName>) -> Self {
        self.header = name;
        self
    }

    /// With another size limit, in bytes.
    #[must_use]
    pub fn max_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }

    /// Whether a query with a [`SIGNATURE_PARAM`] is a signed URL (off by default: the
    /// parameter is then the wrapped service's own).
    #[must_use]
    pub fn signed_urls(mut self, yes: bool) -> Self {
        self.signed_urls = yes;
        self
    }

    /// Whether signed URLs are accepted.
    pub fn accepts_signed_urls(&self) -> bool {
        self.signed_urls
    }

    /// The query parameter name.
    pub fn param(&self) -> &str {
        &self.param
    }

    /// The API key header name, if keys are read from a header.
    pub fn header(&self) -> Option<&HeaderName> {
        self.header.as_ref()
    }

    /// The credential in a request with these headers and query string.
    ///
    /// `Ok(None)` is no credential at all (401 with a bare challenge); errors are the
    /// 400/401 refusals of RFC 6750. A credential in more than one place (a key in the
    /// header and the query, a key beside a bearer token), or a place used twice, is
    /// [`RejectionKind::MultipleCredentials`].
    pub fn extract<'a>(
        &self,
        headers: &'a HeaderMap,
        query: Option<&'a str>,
    ) -> Result<Option<PresentedCredential<'a>>, RejectionKind> {
        let bearer = bearer::bearer_token(headers, self.max_len)?;
        let signature = self.signed_urls.then_some(SIGNATURE_PARAM);
        let (key, signed) = match query {
            Some(q) => {
                let found = query::scan(q, &self.param, signature)?;
                let key = match found.key {
                    Some(raw) => Some(query::key_value(raw, self.max_len)?),
                    None => None,
                };
                let signed = match found.signed {
                    true if q.len() > self.max_len => {
                        return Err(RejectionKind::CredentialTooLong);
                    }
                    true => Some(q),
                    false => None,
                };
                (key, signed)
            }
            None => (None, None),
        };
        let header_key = match &self.header {
            Some(name) => header::api_key_header(headers, name, self.max_len)?,
            None => None,
        };
        match (bearer, key, header_key, signed) {
            (Some(token), None, None, None) => Ok(Some(PresentedCredential::Bearer(token))),
            (None, Some(key), None, None) => Ok(Some(PresentedCredential::ApiKey(key))),
            (None, None, Some(key), None) => Ok(Some(PresentedCredential::ApiKeyHeader(key))),
            (None, None, None, Some(query)) => Ok(Some(PresentedCredential::SignedUrl(query))),
            (None, None, None, None) => Ok(None),
            _ => Err(RejectionKind::MultipleCredentials),
        }
    }

    /// `uri` without the API key parameter.
    pub fn strip_from_uri(&self, uri: &Uri) -> Uri {
        let mut uri = uri.clone();
        self.strip_in_place(&mut uri);
        uri
    }

    /// Removes the API key parameter from `uri`, leaving it as it was when it has none.
    pub(crate) fn strip_in_place(&self, uri: &mut Uri) {
        query::strip_param(uri, &self.param);
    }

    /// Removes the API key header from `headers`, every value of it.
    pub fn strip_from_headers(&self, headers: &mut HeaderMap) {
        if let Some(name) = &self.header {
            // `remove` takes the first value only; the loop takes them all.
            while headers.remove(name).is_some() {}
        }
    }

    /// Removes the whole query from `uri`: a signed URL's that holds nothing else.
    pub(crate) fn strip_query_in_place(uri: &mut Uri) {
        query::strip_query(uri);
    }

    /// Removes the parameters whose raw names `signed` picks from `uri`: a signed URL's.
    pub(crate) fn strip_signed_in_place(uri: &mut Uri, signed: impl Fn(&[u8]) -> bool) {
        query::strip_params(uri, signed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(uri: &str, auth: Option<&str>) -> Result<Option<String>, RejectionKind> {
        let mut req = http::Request::get(uri);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let req = req.body(()).unwrap();
        CredentialRules::default()
            .extract(req.headers(), req.uri().query())
            .map(|c| {
                c.map(|c| match c {
                    PresentedCredential::Bearer(t) => format!("bearer:{t}"),
                    PresentedCredential::ApiKey(k) => format!("key:{k}"),
                    PresentedCredential::ApiKeyHeader(k) => format!("header:{k}"),
                    PresentedCredential::SignedUrl(q) => format!("signed:{q}"),
                })
            })
    }

    #[test]
    fn basic_auth_beside_an_api_key_leaves_the_key() {
        assert_eq!(
            extract("/x?apikey=k", Some("Basic Zm9vOmJhcg==")),
            Ok(Some("key:k".into()))
        );
    }

    #[test]
    fn bearer_and_api_key_together_are_refused() {
        assert_eq!(
            extract("/x?apikey=k", Some("Bearer t")),
            Err(RejectionKind::MultipleCredentials)
        );
    }

    fn extract_with_header(
        rules: &CredentialRules,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Result<Option<String>, RejectionKind> {
        let mut req = http::Request::get(uri);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(()).unwrap();
        rules
            .extract(req.headers(), req.uri().query())
            .map(|c| c.map(|c| format!("{c:?}")))
    }

    #[test]
    fn the_api_key_header_is_read_by_default_and_alone() {
        let rules = CredentialRules::default();
        let found = |uri, headers: &[(&str, &str)]| extract_with_header(&rules, uri, headers);
        assert_eq!(
            found("/x", &[("X-Api-Key", "k")]),
            Ok(Some("ApiKeyHeader(<redacted>)".into()))
        );
        let req = http::Request::get("/x")
            .header("x-api-key", "k")
            .body(())
            .unwrap();
        assert_eq!(
            rules.extract(req.headers(), None),
            Ok(Some(PresentedCredential::ApiKeyHeader("k")))
        );
        for (uri, headers) in [
            ("/x?apikey=k", &[("X-Api-Key", "k")][..]),
            (
                "/x",
                &[("X-Api-Key", "k"), ("Authorization", "Bearer t")][..],
            ),
            ("/x", &[("X-Api-Key", "k"), ("X-Api-Key", "k")][..]),
        ] {
            assert_eq!(
                found(uri, headers),
                Err(RejectionKind::MultipleCredentials),
                "{uri} {headers:?}"
            );
        }
        assert_eq!(
            found("/x", &[("X-Api-Key", "")]),
            Err(RejectionKind::EmptyCredential)
        );
        let long = "a".repeat(4097);
        assert_eq!(
            found("/x", &[("X-Api-Key", &long)]),
            Err(RejectionKind::CredentialTooLong)
        );
        // Basic authentication is no credential here, so it leaves the header key.
        assert_eq!(
            found(
                "/x",
                &[("X-Api-Key", "k"), ("Authorization", "Basic Zm9vOmJhcg==")]
            ),
            Ok(Some("ApiKeyHeader(<redacted>)".into()))
        );
    }

    #[test]
    fn the_api_key_header_can_be_renamed_or_switched_off() {
        let renamed =
            CredentialRules::default().api_key_header(Some(HeaderName::from_static("x-map-key")));
        assert_eq!(
            extract_with_header(&renamed, "/x", &[("X-Map-Key", "k")]),
            Ok(Some("ApiKeyHeader(<redacted>)".into()))
        );
        assert_eq!(
            extract_with_header(&renamed, "/x", &[("X-Api-Key", "k")]),
            Ok(None)
        );
        let off = CredentialRules::default().api_key_header(None);
        assert_eq!(off.header(), None);
        assert_eq!(
            extract_with_header(&off, "/x?apikey=k", &[("X-Api-Key", "other")]),
            Ok(Some("ApiKey(<redacted>)".into()))
        );
    }

    #[test]
    fn stripping_the_header_removes_every_value() {
        let mut headers = HeaderMap::new();
        headers.append(API_KEY_HEADER, "a".parse().unwrap());
        headers.append(API_KEY_HEADER, "b".parse().unwrap());
        headers.append("x-other", "c".parse().unwrap());
        CredentialRules::default().strip_from_headers(&mut headers);
        assert!(!headers.contains_key(API_KEY_HEADER));
        assert!(headers.contains_key("x-other"));
    }

    #[test]
    fn a_signature_parameter_is_a_credential_only_when_signed_urls_are_on() {
        let on = CredentialRules::default().signed_urls(true);
        let get = |uri: &str, auth: Option<&str>| {
            let mut req = http::Request::get(uri);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let req = req.body(()).unwrap();
            on.extract(req.headers(), req.uri().query())
                .map(|c| c.map(|c| format!("{c:?}")))
        };
        assert_eq!(
            get("/t?cid=a&sig=x", None),
            Ok(Some("SignedUrl(<redacted>)".into()))
        );
        assert_eq!(
            get("/t?cid=a&sig=x&apikey=k", None),
            Err(RejectionKind::MultipleCredentials)
        );
        assert_eq!(
            get("/t?sig=x", Some("Bearer t")),
            Err(RejectionKind::MultipleCredentials)
        );
        assert_eq!(get("/t?signature=x", None), Ok(None));
        assert_eq!(extract("/t?sig=x&apikey=k", None), Ok(Some("key:k".into())));
    }

    #[test]
    fn a_custom_parameter_name_is_used_instead() {
        let rules = CredentialRules::default().query_param("key");
        let req = http::Request::get("/x?KEY=k&apikey=other")
            .body(())
            .unwrap();
        assert_eq!(
            rules.extract(req.headers(), req.uri().query()),
            Ok(Some(PresentedCredential::ApiKey("k".into())))
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let dbg = format!(
            "{:?}",
            PresentedCredential::ApiKey("gis_apikey_secret".into())
        );
        assert!(!dbg.contains("secret"));
        let dbg = format!(
            "{:?}",
            PresentedCredential::ApiKeyHeader("gis_apikey_secret")
        );
        assert!(!dbg.contains("secret"));
    }
}
