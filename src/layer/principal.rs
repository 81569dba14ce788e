//! The authenticated caller, as handlers see it.
//!
//! ```
//! use gis_auth::Principal;
//!
//! // Handlers behind the layer read the caller from the request extensions.
//! fn caller(req: &http::Request<()>) -> Option<&str> {
//!     req.extensions().get::<Principal>().map(|p| p.account_id().as_str())
//! }
//! assert_eq!(caller(&http::Request::new(())), None);
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use crate::client::{AccountId, Client, ClientId, ClientKind, Grant, Privileges, RoleSet};

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// The API key query parameter.
    ApiKey,
    /// The API key header (`X-Api-Key` unless configured otherwise).
    ApiKeyHeader,
    /// An `Authorization: Bearer` access token.
    BearerToken,
    /// A signed tile URL.
    SignedUrl,
}

impl CredentialSource {
    /// Whether the caller presented an API key (in the query or in a header).
    pub fn is_api_key(self) -> bool {
        matches!(
            self,
            CredentialSource::ApiKey | CredentialSource::ApiKeyHeader
        )
    }
}

/// The caller of an authorised request, inserted into the request's extensions: a view of
/// its [`Client`] and of the decision that admitted it.
///
/// ```
/// # use gis_auth::layer::Principal;
/// async fn handler(req: http::Request<()>) -> String {
///     let who = req.extensions().get::<Principal>().expect("behind AuthLayer");
///     format!("{} of {}", who.client_id(), who.account_id())
/// }
/// ```
///
/// With the `axum` feature it is an extractor: a handler takes `who: Principal` (or
/// `Option<Principal>` on a route that may be public). On a route the layer does not guard
/// it rejects with `MissingPrincipal` (feature `axum`), a 500: that is a server misconfiguration, not
/// the caller's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub(crate) roles: RoleSet,
    pub(crate) api: Arc<str>,
    pub(crate) source: CredentialSource,
    pub(crate) item: Option<String>,
    pub(crate) client: Arc<Client>,
    pub(crate) caller_ip: Option<IpAddr>,
}

impl Principal {
    /// The client's id.
    pub fn client_id(&self) -> &ClientId {
        self.client.id()
    }

    /// The owning account's id.
    pub fn account_id(&self) -> &AccountId {
        self.client.account_id()
    }

    /// The client's kind.
    pub fn kind(&self) -> ClientKind {
        self.client.kind()
    }

    /// The client, as it was when the request was admitted.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The roles in force for this request.
    pub fn roles(&self) -> &RoleSet {
        &self.roles
    }

    /// The API the request is for.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// How the caller authenticated.
    pub fn source(&self) -> CredentialSource {
        self.source
    }

    /// The item the request is for, on routes that declare one (granted, or the grants
    /// rule runs report-only).
    pub fn item(&self) -> Option<&str> {
        self.item.as_deref()
    }

    /// The client's grants on items and datasets.
    pub fn grants(&self) -> &[Grant] {
        self.client.grants()
    }

    /// The APIs the client is limited to, if any.
    pub fn privileges(&self) -> Option<&Privileges> {
        self.client.privileges()
    }

    /// The caller's address as the layer determined it (the connection's peer, or the
    /// address a trusted proxy forwarded); `None` when it is unknown.
    pub fn caller_ip(&self) -> Option<IpAddr> {
        self.caller_ip
    }
}

/// The rejection of the [`Principal`] extractor (feature `axum`) on a request the layer did
/// not admit: 500 `server_error`, since a handler that needs a caller sits on a route the
/// layer does not guard.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingPrincipal;

#[cfg(feature = "axum")]
impl std::fmt::Display for MissingPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the route is not behind the authentication layer")
    }
}

#[cfg(feature = "axum")]
impl std::error::Error for MissingPrincipal {}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for MissingPrincipal {
    fn into_response(self) -> axum::response::Response {
        let body = serde_json::json!({
            "error": "server_error",
            "error_description": self.to_string(),
        });
        let mut res = axum::response::Response::new(axum::body::Body::from(body.to_string()));
        *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        res
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Principal {
    type Rejection = MissingPrincipal;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(MissingPrincipal)
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

#[cfg(all(test, feature = "axum"))]
mod tests {
    use super::*;
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;

    #[tokio::test]
    async fn a_request_the_layer_did_not_admit_has_no_principal_and_gets_a_500() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let missing = Principal::from_request_parts(&mut parts, &()).await;
        assert_eq!(missing, Err(MissingPrincipal));
        let res = MissingPrincipal.into_response();
        assert_eq!(res.status(), 500);
        let optional =
            <Principal as axum::extract::OptionalFromRequestParts<()>>::from_request_parts(
                &mut parts,
                &(),
            )
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(optional, None);
    }
}
