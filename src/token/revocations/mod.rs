//! The deny list of revoked access tokens: [`Revocations`], consulted by the
//! [`JwtVerifier`](super::JwtVerifier) on every request and filled by the revocation
//! endpoint ([`RevocationService`](super::RevocationService)). [`InMemoryRevocations`]
//! serves one instance; with the `postgres` feature, `PostgresRevocations` shares the list
//! between every instance of a database.
//!
//! A token is held by its `jti` until its `exp`: after that it is refused as expired, so
//! the list forgets it and its memory stays bounded by the tokens revoked within one token
//! lifetime.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::store::InMemoryStore;
//! use gis_auth::token::{InMemoryRevocations, JwtVerifier, Revocations, SigningKey, TokenIssuer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let revocations = Arc::new(InMemoryRevocations::new());
//! let issuer = TokenIssuer::new(SigningKey::generate_hs256("k1")?);
//! let verifier = JwtVerifier::new(issuer, Arc::new(InMemoryStore::new()))
//!     .revocations(revocations.clone());
//! let exp = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
//! revocations.revoke("Zm9vYmFy", exp).await?;
//! assert_eq!(revocations.is_revoked("Zm9vYmFy").await?, true);
//! # Ok(()) }
//! ```

mod memory;
#[cfg(feature = "postgres")]
mod postgres;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::BackendError;

pub use memory::InMemoryRevocations;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresRevocations;

/// A deny list of access tokens by their `jti`. The verifier asks it on every request, so
/// an answer from memory ([`Revocations::is_revoked_now`]) is the rule; an error makes the
/// request fail closed (503).
#[async_trait]
pub trait Revocations: Send + Sync + 'static {
    /// Whether the token `jti` is revoked, answered at once from memory; `None` when this
    /// list cannot answer without its backend (then the verifier waits for
    /// [`Revocations::is_revoked`]).
    fn is_revoked_now(&self, jti: &str) -> Option<Result<bool, BackendError>>;

    /// Whether the token `jti` is revoked, asking the backend if need be. By default the
    /// answer from memory, and an error when there is none.
    async fn is_revoked(&self, jti: &str) -> Result<bool, BackendError> {
        self.is_revoked_now(jti).unwrap_or_else(|| {
            Err(BackendError::new(
                "the revocation list cannot answer without its backend",
            ))
        })
    }

    /// Revokes the token `jti` until `expires_at` (its `exp`). Revoking a token twice, or
    /// one that has expired, is no error.
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<(), BackendError>;
}
