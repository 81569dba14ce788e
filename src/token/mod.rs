//! Bearer access tokens: the [`TokenService`] endpoint where NativeConfidential clients
//! exchange their id and secret for a one-hour token, the [`TokenIssuer`] that signs them,
//! and the [`TokenVerifier`] the layer sends every `Authorization: Bearer` request through
//! ([`JwtVerifier`] for the issuer's tokens, with its deny list of [`Revocations`]). Beside
//! the token endpoint, the [`IntrospectionService`] (RFC 7662) and the
//! [`RevocationService`] (RFC 7009); [`JwksService`] publishes the public keys other
//! services verify the tokens with, and [`MetadataService`] the RFC 8414 server metadata.
//!
//! A verifier checks the token and gives back the client it was issued to, freshly read from
//! the store, so the layer can apply the same status, expiry, IP and role rules as for API
//! keys.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use gis_auth::RejectionKind;
//! use gis_auth::client::ClientId;
//! use gis_auth::store::{ClientStore, InMemoryStore};
//! use gis_auth::token::{TokenVerifier, VerifiedToken, VerifyError};
//!
//! /// Accepts the token "let-me-in" as client "srv".
//! struct Fixed(Arc<InMemoryStore>);
//!
//! #[async_trait]
//! impl TokenVerifier for Fixed {
//!     async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
//!         if token != "let-me-in" {
//!             return Err(VerifyError::Invalid(RejectionKind::UnknownCredential));
//!         }
//!         let id = ClientId::new("srv").map_err(|_| VerifyError::Invalid(RejectionKind::UnknownCredential))?;
//!         let found = self.0.resolve_id(&id).await?
//!             .ok_or(VerifyError::Invalid(RejectionKind::UnknownCredential))?;
//!         Ok(VerifiedToken { client: found.client, account: found.account, scope: None })
//!     }
//! }
//! ```

mod endpoint;
mod issuer;
mod jwks;
mod keys;
mod lockout;
mod metadata;
mod publish;
mod revocations;
pub(crate) mod ring;
mod verifier;

use std::sync::Arc;

use async_trait::async_trait;

pub use endpoint::{
    IntrospectionService, MAX_TOKEN_REQUEST_BYTES, RevocationService, TokenService,
};
pub use issuer::{
    ACCESS_TOKEN_TYP, AccessClaims, DEFAULT_LEEWAY, DEFAULT_TOKEN_LIFETIME, IssueError,
    IssuedToken, TokenIssuer, credential_binding,
};
pub use jwks::{JWKS_MAX_AGE, JwksService};
pub use keys::SigningKey;
pub use lockout::LockoutPolicy;
pub use metadata::{
    INTROSPECTION_PATH, JWKS_PATH, METADATA_PATH, MetadataService, REVOCATION_PATH, ServerMetadata,
    TOKEN_PATH,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use revocations::PostgresRevocations;
pub use revocations::{InMemoryRevocations, Revocations};
pub use verifier::{DEFAULT_TOKEN_CACHE_CAPACITY, JwtVerifier};

use crate::client::{Account, Client, RoleSet};
use crate::error::BackendError;
use crate::rule::RejectionKind;

/// A token that passed verification, with its client and account as they are now.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The client the token was issued to.
    pub client: Arc<Client>,
    /// Its account.
    pub account: Arc<Account>,
    /// The roles the token was narrowed to, if it was.
    pub scope: Option<RoleSet>,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not valid; the kind says how (401 `invalid_token` kinds).
    #[error("invalid token: {}", .0.description())]
    Invalid(RejectionKind),
    /// The store could not be read (503).
    #[error(transparent)]
    Store(#[from] BackendError),
}

/// Checks bearer tokens.
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    /// Verifies `token` and reads its client. Must not log the token.
    async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError>;

    /// [`verify`](TokenVerifier::verify) done at once, by a verifier that need not wait
    /// (its store is in memory); `None` (the default) means "ask `verify`". The layer asks
    /// this first, so such a verifier costs no future and no timer per request.
    fn verify_now(&self, token: &str) -> Option<Result<VerifiedToken, VerifyError>> {
        let _ = token;
        None
    }
}
