//! Where clients and accounts live: the [`ClientStore`] trait the layer reads through, the
//! [`ManagedStore`] contract the admin API and the command-line tool change them through
//! (with [`ManageError`]), and the backends: the [`InMemoryStore`], the [`FileStore`] that
//! keeps a [`ClientsFile`](crate::document::ClientsFile), and, with the `postgres` feature,
//! `PostgresStore`. [`CachedStore`] sits in front of a remote one.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::client::{Account, AccountId, KeyDigest, Role, RoleSet};
//! use gis_auth::store::{ClientStore, InMemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(InMemoryStore::new());
//! let account = Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::USER, Role::EVALUATOR]))?;
//! let created = store.open_account(account)?;
//! let key = created.javascript.credential.expose();
//!
//! let dyn_store: Arc<dyn ClientStore> = store.clone();
//! let found = dyn_store.resolve_key(&KeyDigest::of(key)).await?.expect("stored");
//! assert_eq!(found.account.id.as_str(), "acme");
//! # Ok(()) }
//! ```

mod audit;
mod budget;
mod cached;
mod file;
mod manage;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::client::{Account, AccountId, Client, ClientId, KeyDigest};
pub use crate::error::BackendError;

/// The default time budget of one backend call (a store lookup, a token verification, a
/// usage counter or a shared rate limiter): past it the request is answered 503.
pub const DEFAULT_BACKEND_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) use budget::within_budget;

pub use audit::{AuditQuery, DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE, outcome_of};
pub use cached::{
    CachedStore, DEFAULT_CACHE_ENTRIES, DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_TTL,
};
pub use file::GeneratedCredential;
pub use file::{FileStore, FileStoreError, FileStoreOptions, Watch};
pub use manage::{
    ADMIN_ACCESS_MARGIN, AccountChange, ChangedBy, ClientChange, CreatedAccount, CreatedClient,
    ManageError, ManagedStore, NewCredential, Precondition, RecordKind, can_administer,
    check_precondition, etag_matches,
};
pub use memory::{DEFAULT_AUDIT_CAPACITY, InMemoryStore};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{ChangeListener, DEFAULT_NOTIFY_CHANNEL, PostgresStore};

/// What changed in a store, so that caches drop what they hold of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invalidation {
    /// One client: its settings, status or credentials, or the client was created or
    /// deleted.
    Client(ClientId),
    /// An account, and so every one of its clients (roles, status, quota).
    Account(AccountId),
    /// Anything: changes may have been missed (a notification connection was lost).
    Everything,
    /// An access token was revoked: no client changed, so caches keep their entries, and
    /// deny lists add the token.
    TokenRevoked(RevokedToken),
}

/// A revoked access token: its `jti`, and its `exp`, after which it is refused as expired
/// and no deny list needs to hold it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RevokedToken {
    /// The token's `jti` claim.
    pub jti: String,
    /// The token's `exp` claim.
    pub expires_at: time::OffsetDateTime,
}

/// A client together with its account, as the layer needs them for a decision.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The client.
    pub client: Arc<Client>,
    /// Its account.
    pub account: Arc<Account>,
}

/// Read access to clients and accounts. Any error makes the layer answer 503: it never lets
/// a request through because a store failed.
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// The JavaScript client holding the API key with this digest (current or in its grace
    /// period; the caller checks the grace end).
    async fn client_by_key(&self, digest: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError>;

    /// The client with this id.
    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError>;

    /// The account with this id.
    async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, BackendError>;

    /// The client holding this API key digest, with its account. Remote stores override this
    /// to answer in one round trip.
    async fn resolve_key(&self, digest: &KeyDigest) -> Result<Option<Resolved>, BackendError> {
        let Some(client) = self.client_by_key(digest).await? else {
            return Ok(None);
        };
        Ok(self
            .account(client.account_id())
            .await?
            .map(|account| Resolved { client, account }))
    }

    /// The client with this id, with its account.
    async fn resolve_id(&self, id: &ClientId) -> Result<Option<Resolved>, BackendError> {
        let Some(client) = self.client_by_id(id).await? else {
            return Ok(None);
        };
        Ok(self
            .account(client.account_id())
            .await?
            .map(|account| Resolved { client, account }))
    }

    /// [`resolve_key`](ClientStore::resolve_key) answered at once, by a store that never
    /// waits (one in memory); `None` (the default) means "ask `resolve_key`". The layer
    /// asks this first, so such a store costs no future and no timer per request.
    fn resolve_key_now(
        &self,
        digest: &KeyDigest,
    ) -> Option<Result<Option<Resolved>, BackendError>> {
        let _ = digest;
        None
    }

    /// [`resolve_id`](ClientStore::resolve_id) answered at once; `None` (the default) means
    /// "ask `resolve_id`".
    fn resolve_id_now(&self, id: &ClientId) -> Option<Result<Option<Resolved>, BackendError>> {
        let _ = id;
        None
    }
}

#[async_trait]
impl<S: ClientStore + ?Sized> ClientStore for Arc<S> {
    async fn client_by_key(&self, digest: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        (**self).client_by_key(digest).await
    }

    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        (**self).client_by_id(id).await
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        (**self).account(id).await
    }

    async fn resolve_key(&self, digest: &KeyDigest) -> Result<Option<Resolved>, BackendError> {
        (**self).resolve_key(digest).await
    }

    async fn resolve_id(&self, id: &ClientId) -> Result<Option<Resolved>, BackendError> {
        (**self).resolve_id(id).await
    }

    fn resolve_key_now(
        &self,
        digest: &KeyDigest,
    ) -> Option<Result<Option<Resolved>, BackendError>> {
        (**self).resolve_key_now(digest)
    }

    fn resolve_id_now(&self, id: &ClientId) -> Option<Result<Option<Resolved>, BackendError>> {
        (**self).resolve_id_now(id)
    }
}
