//! [`MetadataService`]: `GET /.well-known/oauth-authorization-server` (RFC 8414), what a
//! client library needs to know about the token endpoint, its keys and its scopes.
//!
//! ```
//! use gis_auth::token::{MetadataService, SigningKey, TokenIssuer};
//!
//! let issuer = TokenIssuer::new(SigningKey::generate_ed25519(None)?)
//!     .issuer("https://maps.example.com");
//! let metadata = MetadataService::new(&issuer)?;
//! let document = metadata.document();
//! assert_eq!(document.token_endpoint, "https://maps.example.com/oauth/token");
//! assert_eq!(document.jwks_uri, "https://maps.example.com/.well-known/jwks.json");
//!
//! // The issuer identifier must be an http(s) URL without query or fragment.
//! assert!(MetadataService::new(&issuer.clone().issuer("gis-auth")).is_err());
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use serde::Serialize;
use tower_service::Service;

use super::issuer::TokenIssuer;
use super::publish;
use crate::client::{Role, RoleSet};
use crate::error::ConfigError;

/// Where the token endpoint is mounted, below the issuer URL.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Where the JWK set is mounted ([`JwksService`](super::JwksService)).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Where the metadata document is mounted, for an issuer URL without a path (RFC 8414 §3).
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// Where token introspection (RFC 7662) is mounted.
pub const INTROSPECTION_PATH: &str = "/oauth/introspect";
/// Where token revocation (RFC 7009) is mounted.
pub const REVOCATION_PATH: &str = "/oauth/revoke";

/// The client authentication methods of the token, introspection and revocation endpoints.
const AUTH_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];

fn auth_methods() -> Vec<String> {
    AUTH_METHODS.map(str::to_owned).to_vec()
}

/// The authorization server metadata (RFC 8414 §2), as served.
///
/// `response_types_supported` is REQUIRED by RFC 8414 §2 and names the `response_type`
/// values of the authorization endpoint. This server has no authorization endpoint (the
/// client credentials grant uses the token endpoint only), so the list is empty: the true
/// answer, and one that keeps a client from starting a browser flow. For the same reason
/// `authorization_endpoint`, REQUIRED "unless no grant types are supported that use the
/// authorization endpoint", is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ServerMetadata {
    /// The issuer identifier: the `iss` of every token.
    pub issuer: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The JWK set of the token signing keys.
    pub jwks_uri: String,
    /// The roles a token request may ask for in `scope`.
    pub scopes_supported: Vec<String>,
    /// Always empty: there is no authorization endpoint (see above).
    pub response_types_supported: Vec<String>,
    /// `["client_credentials"]`.
    pub grant_types_supported: Vec<String>,
    /// `["client_secret_basic", "client_secret_post"]`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Token introspection (RFC 7662).
    pub introspection_endpoint: String,
    /// How introspection callers authenticate: as at the token endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Token revocation (RFC 7009).
    pub revocation_endpoint: String,
    /// How revocation callers authenticate: as at the token endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
}

/// Answers `GET` (and `HEAD`) with the [`ServerMetadata`] of a [`TokenIssuer`] whose
/// endpoints are mounted at [`TOKEN_PATH`], [`JWKS_PATH`], [`INTROSPECTION_PATH`] and
/// [`REVOCATION_PATH`] below its issuer URL, with `Cache-Control: public, max-age=300`;
/// any other method is 405. Mount it at [`METADATA_PATH`] (with the issuer's path, if it
/// has one, appended: RFC 8414 §3), where the route table makes it public (the standard
/// table does). `scopes_supported` lists the built-in roles unless set with
/// [`scopes`](Self::scopes).
#[derive(Debug, Clone)]
pub struct MetadataService {
    document: Arc<ServerMetadata>,
    body: Bytes,
}

/// The issuer identifier, checked: RFC 8414 §2 wants a URL with no query or fragment
/// (`https`, and `http` is accepted for local use).
fn check_issuer(issuer: &str) -> Result<&str, ConfigError> {
    let invalid = |reason| ConfigError::InvalidField {
        field: "issuer",
        value: issuer.to_owned(),
        reason,
    };
    let uri: Uri = issuer
        .parse()
        .map_err(|_| invalid("the issuer identifier is a URL"))?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none_or(str::is_empty) {
        return Err(invalid(
            "the issuer identifier is an https:// (or http://) URL",
        ));
    }
    if uri.query().is_some() || issuer.contains('#') {
        return Err(invalid("the issuer identifier has no query or fragment"));
    }
    Ok(issuer.trim_end_matches('/'))
}

impl MetadataService {
    /// The metadata of `issuer`, whose `iss` must be an http(s) URL.
    pub fn new(issuer: &TokenIssuer) -> Result<Self, ConfigError> {
        Self::build(
            issuer.issuer_id(),
            RoleSet::from_iter([Role::USER, Role::EVALUATOR, Role::SUBSCRIBER]),
        )
    }

    fn build(issuer: &str, scopes: RoleSet) -> Result<Self, ConfigError> {
        let base = check_issuer(issuer)?;
        let document = ServerMetadata {
            issuer: issuer.to_owned(),
            token_endpoint: format!("{base}{TOKEN_PATH}"),
            jwks_uri: format!("{base}{JWKS_PATH}"),
            scopes_supported: scopes.iter().map(|r| r.as_str().to_owned()).collect(),
            response_types_supported: Vec::new(),
            grant_types_supported: vec!["client_credentials".to_owned()],
            token_endpoint_auth_methods_supported: auth_methods(),
            introspection_endpoint: format!("{base}{INTROSPECTION_PATH}"),
            introspection_endpoint_auth_methods_supported: auth_methods(),
            revocation_endpoint: format!("{base}{REVOCATION_PATH}"),
            revocation_endpoint_auth_methods_supported: auth_methods(),
        };
        let body = serde_json::to_vec(&document).map_err(|_| ConfigError::InvalidField {
            field: "issuer",
            value: issuer.to_owned(),
            reason: "the metadata document cannot be written",
        })?;
        Ok(Self {
            document: Arc::new(document),
            body: Bytes::from(body),
        })
    }

    /// Lists `scopes` in `scopes_supported` (the roles clients may hold and ask for).
    pub fn scopes(self, scopes: RoleSet) -> Result<Self, ConfigError> {
        Self::build(&self.document.issuer, scopes)
    }

    /// The document served.
    pub fn document(&self) -> &ServerMetadata {
        &self.document
    }
}

impl<B> Service<Request<B>> for MetadataService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(publish::json_document(req.method(), || {
            Ok(self.body.to_vec())
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SigningKey;

    fn issuer(url: &str) -> TokenIssuer {
        TokenIssuer::new(SigningKey::hs256("k", &[1; 32]).unwrap()).issuer(url)
    }

    #[test]
    fn the_document_has_every_member_rfc_8414_requires_of_this_server() {
        let service = MetadataService::new(&issuer("http://127.0.0.1:8080/")).unwrap();
        let json = serde_json::to_value(service.document()).unwrap();
        assert_eq!(
            json["issuer"], "http://127.0.0.1:8080/",
            "exactly the `iss`"
        );
        assert_eq!(json["token_endpoint"], "http://127.0.0.1:8080/oauth/token");
        assert_eq!(
            json["jwks_uri"],
            "http://127.0.0.1:8080/.well-known/jwks.json"
        );
        assert_eq!(
            json["introspection_endpoint"],
            "http://127.0.0.1:8080/oauth/introspect"
        );
        assert_eq!(
            json["revocation_endpoint"],
            "http://127.0.0.1:8080/oauth/revoke"
        );
        assert_eq!(json["response_types_supported"], serde_json::json!([]));
        assert_eq!(
            json["grant_types_supported"],
            serde_json::json!(["client_credentials"])
        );
        assert_eq!(
            json["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post"])
        );
        assert_eq!(
            json["scopes_supported"],
            serde_json::json!(["Evaluator", "Subscriber", "User"])
        );
        assert!(json.get("authorization_endpoint").is_none());
        let narrowed = service
            .scopes(RoleSet::from_iter([Role::EVALUATOR]))
            .unwrap();
        assert_eq!(narrowed.document().scopes_supported, ["Evaluator"]);
    }

    #[test]
    fn an_issuer_that_is_not_a_url_is_refused() {
        for bad in [
            "gis-auth",
            "ftp://maps.example.com",
            "https://maps.example.com/?tenant=1",
            "https://maps.example.com/#x",
            "https://",
        ] {
            assert!(MetadataService::new(&issuer(bad)).is_err(), "{bad}");
        }
        assert!(MetadataService::new(&issuer("https://maps.example.com/tenant")).is_ok());
    }
}
