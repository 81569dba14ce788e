//! [`PostgresRevocations`] (feature `postgres`): one deny list for every instance of a
//! database, answered from memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Revocations;
use super::memory::InMemoryRevocations;
use crate::error::BackendError;
use crate::store::{ChangeListener, Invalidation, PostgresStore, RevokedToken};

/// Whether the list in memory has every revocation the database has.
#[derive(Debug, Default)]
struct InStep {
    /// Off from a lost notification connection until the list is loaded again.
    in_step: AtomicBool,
    /// Moves at each loss, so a load that began before it does not claim to be in step.
    losses: AtomicU64,
}

/// The revoked tokens of a [`PostgresStore`]'s database (its `revoked_tokens` table), shared
/// by every instance: a revocation is recorded and announced by `NOTIFY` on the store's
/// channel in one transaction, and every instance adds it to its list in memory when the
/// notification arrives, well within a second. A lookup is a probe of that list.
///
/// The list is loaded when it starts, after subscribing, so nothing revoked meanwhile is
/// missed. When the notification connection is lost, and again once it is back, the list
/// stops vouching for itself until it is loaded again: meanwhile each lookup reads the
/// table instead, and a database that does not answer fails the request (503). (A token
/// revoked elsewhere while this instance subscribes again is refused here once the load
/// that follows the subscription ends.)
///
/// ```no_run
/// use std::sync::Arc;
/// use gis_auth::store::PostgresStore;
/// use gis_auth::token::{JwtVerifier, PostgresRevocations, SigningKey, TokenIssuer};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let postgres = PostgresStore::connect("postgres://gis@db.internal/gis").await?;
/// postgres.migrate().await?;
/// let revocations = Arc::new(PostgresRevocations::start(postgres.clone()).await?);
/// let issuer = TokenIssuer::new(SigningKey::generate_hs256("k1")?);
/// let verifier = JwtVerifier::new(issuer, Arc::new(postgres)).revocations(revocations);
/// # Ok(()) }
/// ```
pub struct PostgresRevocations {
    store: PostgresStore,
    memory: Arc<InMemoryRevocations>,
    sync: Arc<InStep>,
    _listener: ChangeListener,
}

impl std::fmt::Debug for PostgresRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRevocations")
            .field("held", &self.memory.len())
            .field("in_step", &self.sync.in_step.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

/// Adds the live revocations of the table to `memory` (adding only: what a notification
/// added meanwhile stays), then declares the list in step unless a loss came meanwhile.
async fn load(
    store: &PostgresStore,
    memory: &InMemoryRevocations,
    sync: &InStep,
) -> Result<(), BackendError> {
    let losses = sync.losses.load(Ordering::Acquire);
    for token in store.revoked_tokens().await? {
        memory.insert(&token.jti, token.expires_at);
    }
    if sync.losses.load(Ordering::Acquire) == losses {
        sync.in_step.store(true, Ordering::Release);
    }
    Ok(())
}

/// Loads the list again after a loss, trying until it succeeds (waiting up to 5 s between
/// attempts) or a later loss starts a reload of its own.
async fn reload(store: &PostgresStore, memory: &InMemoryRevocations, sync: &InStep) {
    let losses = sync.losses.load(Ordering::Acquire);
    let mut wait = Duration::from_millis(100);
    loop {
        match load(store, memory, sync).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "revoked tokens could not be reloaded yet"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
        if sync.losses.load(Ordering::Acquire) != losses {
            return;
        }
    }
}

impl PostgresRevocations {
    /// Subscribes to the store's notifications and loads the live revocations. Revocations
    /// expire on the store's clock.
    pub async fn start(store: PostgresStore) -> Result<Self, BackendError> {
        let memory = Arc::new(InMemoryRevocations::new().clock(store.clock_handle()));
        let sync = Arc::new(InStep::default());
        let on_change = {
            let (store, memory, sync) = (store.clone(), memory.clone(), sync.clone());
            move |change| match change {
                Invalidation::TokenRevoked(token) => {
                    memory.insert(&token.jti, token.expires_at);
                }
                Invalidation::Everything => {
                    // Notifications may have been missed: read the table until the list
                    // is loaded again.
                    sync.losses.fetch_add(1, Ordering::AcqRel);
                    sync.in_step.store(false, Ordering::Release);
                    let (store, memory, sync) = (store.clone(), memory.clone(), sync.clone());
                    tokio::spawn(async move { reload(&store, &memory, &sync).await });
                }
                _ => {}
            }
        };
        let listener = store.listen(on_change).await?;
        load(&store, &memory, &sync).await?;
        Ok(Self {
            store,
            memory,
            sync,
            _listener: listener,
        })
    }

    /// How many revoked tokens the list in memory holds.
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    /// Whether the list in memory holds no token.
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty()
    }
}

#[async_trait]
impl Revocations for PostgresRevocations {
    fn is_revoked_now(&self, jti: &str) -> Option<Result<bool, BackendError>> {
        if !self.sync.in_step.load(Ordering::Acquire) {
            return None;
        }
        self.memory.is_revoked_now(jti)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, BackendError> {
        match self.is_revoked_now(jti) {
            Some(answer) => answer,
            None => Ok(self.memory.is_revoked_now(jti).unwrap_or(Ok(false))?
                || self.store.is_token_revoked(jti).await?),
        }
    }

    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<(), BackendError> {
        let token = RevokedToken {
            jti: jti.to_owned(),
            expires_at,
        };
        self.store.revoke_token(&token).await?;
        // This instance refuses the token at once, without waiting for its notification.
        self.memory.insert(jti, expires_at);
        Ok(())
    }
}
