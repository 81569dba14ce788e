//! Pulling a credential out of a request: an `Authorization: Bearer` header, the `apikey`
//! query parameter or (once turned on) a signed URL's `sig` parameter, never two of them.
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
//! ```

mod bearer;
mod query;
mod realm;

use std::borrow::Cow;

use http::{HeaderMap, Uri};

use crate::rule::RejectionKind;

pub use realm::Realm;

/// A credential found in a request.
#[derive(Clone, PartialEq, Eq)]
pub enum PresentedCredential<'a> {
    /// From `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// From the API key query parameter, percent-decoded once.
    ApiKey(Cow<'a, str>),
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
            PresentedCredential::SignedUrl(_) => f.write_str("SignedUrl(<redacted>)"),
        }
    }
}

/// Where credentials are looked for, and how large they may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRules {
    param: Cow<'static, str>,
    max_len: usize,
    signed_urls: bool,
}

/// The default size limit of a key or token: 4 KiB.
pub const DEFAULT_MAX_CREDENTIAL_LEN: usize = 4096;

impl Default for CredentialRules {
    fn default() -> Self {
        Self {
            param: Cow::Borrowed("apikey"),
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

    /// The credential in a request with these headers and query string.
    ///
    /// `Ok(None)` is no credential at all (401 with a bare challenge); errors are the
    /// 400/401 refusals of RFC 6750.
    pub fn extract<'a>(
        &self,
        headers: &'a HeaderMap,
        query: Option<&'a str>,
    ) -> Result<Option<PresentedCredential<'a>>, RejectionKind> {
        let bearer = bearer::bearer_token(headers, self.max_len)?;
        let key = match query {
            Some(q) => query::api_key_param(q, &self.param, self.max_len)?,
            None => None,
        };
        let signed = match query {
            Some(q) if self.signed_urls && query::has_param(q, SIGNATURE_PARAM) => {
                if q.len() > self.max_len {
                    return Err(RejectionKind::CredentialTooLong);
                }
                Some(q)
            }
            _ => None,
        };
        match (bearer, key, signed) {
            (Some(token), None, None) => Ok(Some(PresentedCredential::Bearer(token))),
            (None, Some(key), None) => Ok(Some(PresentedCredential::ApiKey(key))),
            (None, None, Some(query)) => Ok(Some(PresentedCredential::SignedUrl(query))),
            (None, None, None) => Ok(None),
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

    /// Removes the parameters named in `names` (exactly) from `uri`: a signed URL's.
    pub(crate) fn strip_signed_in_place(uri: &mut Uri, names: &[&str]) {
        query::strip_params(uri, |raw| names.iter().any(|n| n.as_bytes() == raw));
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
    }
}
