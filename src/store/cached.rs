//! [`CachedStore`]: a small, short-lived cache in front of a remote [`ClientStore`], so that
//! most requests never wait for the network.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::client::{Account, AccountId, Role, RoleSet, Status};
//! use gis_auth::store::{CachedStore, ClientStore, InMemoryStore, Invalidation};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The in-memory store stands in for a remote one here.
//! let remote = Arc::new(InMemoryStore::new());
//! let acme = remote.open_account(Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::EVALUATOR]))?)?;
//! let web = acme.javascript.client.id().clone();
//! let key = acme.javascript.credential.digest();
//!
//! let cached = CachedStore::new(remote.clone());
//! assert!(cached.resolve_key(&key).await?.is_some());
//!
//! // A change made elsewhere is seen once it is announced (or the entry's lifetime ends).
//! remote.set_client_status(&web, Status::Inactive)?;
//! cached.invalidate(&Invalidation::Client(web));
//! let found = cached.resolve_key(&key).await?.expect("still stored");
//! assert_eq!(found.client.status(), Status::Inactive);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use super::AuditQuery;
use super::manage::{AccountChange, ClientChange, ManageError, ManagedStore, Precondition};
use super::{BackendError, ClientStore, CreatedAccount, CreatedClient, Invalidation, Resolved};
use crate::client::{
    Account, AccountId, Client, ClientId, ClientSpec, DigestBuildHasher, KeyDigest, PlainCredential,
};
use crate::clock::{Clock, SystemClock};
use crate::document::AuditEntry;
use crate::events::EventSink;

/// How long a client found stays cached unless told otherwise.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// How long a lookup that found nothing stays cached unless told otherwise.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(1);

/// How many lookups of each kind (by key, by id) are kept unless told otherwise.
pub const DEFAULT_CACHE_ENTRIES: u64 = 100_000;

/// How many times a lookup is read again when a change was announced while it ran.
const RACE_RETRIES: usize = 3;

#[derive(Clone)]
struct Entry {
    found: Option<Resolved>,
    at: OffsetDateTime,
}

impl Entry {
    fn belongs_to(&self, change: &Invalidation) -> bool {
        match (change, &self.found) {
            (Invalidation::Everything, _) => true,
            (Invalidation::TokenRevoked(_), _) => false,
            // A miss may be a client that now exists.
            (_, None) => true,
            (Invalidation::Client(id), Some(r)) => r.client.id() == id,
            (Invalidation::Account(id), Some(r)) => &r.account.id == id,
        }
    }
}

/// What one store read gave everyone who waited for it.
#[derive(Clone)]
enum Outcome {
    /// The answer, now cached.
    Found(Option<Resolved>),
    /// The store failed.
    Failed(BackendError),
    /// A change was announced while the store was read: the answer may predate it, so it
    /// was not kept.
    Raced(Option<Resolved>),
}

/// The store reads under way, one per key: callers that miss on the same key wait for the
/// same read. A read whose caller gives up (a timeout drops it) is taken over by the next
/// caller waiting.
struct Flights<K, H> {
    running: Mutex<HashMap<K, Arc<OnceCell<Outcome>>, H>>,
}

impl<K: Hash + Eq + Clone, H: BuildHasher + Default> Flights<K, H> {
    fn new() -> Self {
        Self {
            running: Mutex::new(HashMap::default()),
        }
    }

    /// Joins the read under way for `key`, or starts one. The read is forgotten when the
    /// first of its callers is done with it or gives up, so the map never outgrows the reads
    /// actually running, whatever keys callers abandon.
    fn join<'a>(&'a self, key: &'a K) -> Joined<'a, K, H> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let flight = running.entry(key.clone()).or_default().clone();
        Joined {
            flights: self,
            key,
            flight,
        }
    }
}

/// A caller's place in a read: leaving it (by finishing or being dropped) forgets the read.
struct Joined<'a, K: Hash + Eq + Clone, H: BuildHasher + Default> {
    flights: &'a Flights<K, H>,
    key: &'a K,
    flight: Arc<OnceCell<Outcome>>,
}

impl<K: Hash + Eq + Clone, H: BuildHasher + Default> Drop for Joined<'_, K, H> {
    fn drop(&mut self) {
        let mut running = self
            .flights
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if running
            .get(self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            running.remove(self.key);
        }
    }
}

/// One kind of lookup: the entries and the reads under way.
struct Lookups<K, H> {
    entries: Cache<K, Entry, H>,
    flights: Flights<K, H>,
}

impl<K, H> Lookups<K, H>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    H: BuildHasher + Clone + Default + Send + Sync + 'static,
{
    fn new(capacity: u64, lifetime: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(lifetime)
                .support_invalidation_closures()
                .build_with_hasher(H::default()),
            flights: Flights::new(),
        }
    }

    fn invalidate(&self, change: &Invalidation) {
        if *change == Invalidation::Everything {
            self.entries.invalidate_all();
        } else {
            let change = change.clone();
            // Built with support for invalidation closures, so this cannot fail.
            let _ = self
                .entries
                .invalidate_entries_if(move |_, entry| entry.belongs_to(&change));
        }
    }
}

/// A cache of [`ClientStore::resolve_key`] and [`ClientStore::resolve_id`] in front of a
/// remote store; every other call goes to the store.
///
/// The layer's two lookups, by API key digest ([`ClientStore::resolve_key`]) and by client
/// id ([`ClientStore::resolve_id`], which bearer tokens use), are cached, found or not:
///
/// - a client found is kept for [`ttl`](CachedStore::ttl) (5 s by default), a miss for
///   [`negative_ttl`](CachedStore::negative_ttl) (1 s), both measured on the injected
///   [`Clock`], and never served past that;
/// - at most [`max_entries`](CachedStore::max_entries) lookups of each kind are kept;
/// - concurrent misses for the same key wait for one store query (single flight);
/// - [`invalidate`](CachedStore::invalidate) drops a client's entries, or every entry of an
///   account, at once: a change notification from the store (see `PostgresStore::listen`)
///   or a management operation made through this cache calls it;
/// - the store failing is an error (the layer answers 503) unless the entry is cached and
///   within its lifetime: the cache never turns an outage into an open door, nor serves a
///   stale client.
///
/// When `S` is a [`ManagedStore`], so is the cache: changes go to the store and drop the
/// entries they affect.
pub struct CachedStore<S> {
    inner: S,
    ttl: Duration,
    negative_ttl: Duration,
    capacity: u64,
    clock: Arc<dyn Clock>,
    /// The entries and the reads under way, made from the settings above on first use.
    lookups: OnceLock<Caches>,
    /// Moves on every invalidation, so a read can tell whether one happened while it ran.
    epoch: AtomicU64,
}

/// The two kinds of lookup a [`CachedStore`] keeps.
struct Caches {
    keys: Lookups<KeyDigest, DigestBuildHasher>,
    ids: Lookups<ClientId, std::hash::RandomState>,
}

/// The longest lifetime the cache's own timer is given: moka refuses (panics on) anything
/// above 1000 years, and an entry kept this long is kept for good anyway.
const LONGEST_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

impl<S> std::fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (by_key, by_id) = self.lookups.get().map_or((0, 0), |c| {
            (c.keys.entries.entry_count(), c.ids.entries.entry_count())
        });
        f.debug_struct("CachedStore")
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("max_entries", &self.capacity)
            .field("by_key", &by_key)
            .field("by_id", &by_id)
            .finish_non_exhaustive()
    }
}

impl<S: ClientStore> CachedStore<S> {
    /// A cache in front of `inner`: [`DEFAULT_CACHE_TTL`], [`DEFAULT_NEGATIVE_CACHE_TTL`],
    /// [`DEFAULT_CACHE_ENTRIES`], on the system clock.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            ttl: DEFAULT_CACHE_TTL,
            negative_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            capacity: DEFAULT_CACHE_ENTRIES,
            clock: Arc::new(SystemClock),
            lookups: OnceLock::new(),
            epoch: AtomicU64::new(0),
        }
    }

    /// How long a client found stays cached (zero turns caching of found clients off).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self.settings_changed()
    }

    /// How long a lookup that found nothing stays cached (zero turns it off).
    #[must_use]
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self.settings_changed()
    }

    /// Keeps at most `entries` lookups by key and as many by id (the least recently used
    /// go first).
    #[must_use]
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.capacity = entries;
        self.settings_changed()
    }

    /// Measures the entries' lifetimes on `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self.settings_changed()
    }

    /// A setting changed after the cache was used: what it held was kept under the old
    /// settings, so it starts again, empty, under the new ones.
    fn settings_changed(mut self) -> Self {
        self.lookups = OnceLock::new();
        self
    }
}

impl<S> CachedStore<S> {
    /// The store behind the cache.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Drops the entries `change` affects (a miss is always dropped: the client may exist
    /// now). Reads already under way when it is called are not kept either.
    pub fn invalidate(&self, change: &Invalidation) {
        // A revoked token changes no client.
        if matches!(change, Invalidation::TokenRevoked(_)) {
            return;
        }
        // The epoch moves first: a read that could have stored an entry before the
        // entries below are dropped sees it move, and drops its own entry.
        self.epoch.fetch_add(1, Ordering::SeqCst);
        // Nothing is cached before the first use.
        if let Some(caches) = self.lookups.get() {
            caches.keys.invalidate(change);
            caches.ids.invalidate(change);
        }
    }

    /// The caches, made from the settings on first use.
    fn caches(&self) -> &Caches {
        self.lookups.get_or_init(|| {
            // The lifetimes are enforced on the injected clock; moka's own timer only
            // frees the memory of entries nobody asks for any more.
            let longest = self
                .ttl
                .max(self.negative_ttl)
                .clamp(Duration::from_millis(1), LONGEST_LIFETIME);
            Caches {
                keys: Lookups::new(self.capacity, longest),
                ids: Lookups::new(self.capacity, longest),
            }
        })
    }

    fn fresh(&self, entry: &Entry) -> bool {
        let ttl = if entry.found.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        };
        self.clock.now() - entry.at < ttl
    }

    /// The cached answer for `key` if it is within its lifetime.
    fn cached<K, H>(&self, lookups: &Lookups<K, H>, key: &K) -> Option<Option<Resolved>>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        H: BuildHasher + Clone + Send + Sync + 'static,
    {
        lookups
            .entries
            .get(key)
            .filter(|entry| self.fresh(entry))
            .map(|entry| entry.found)
    }

    /// The cached answer for `key`, or one store read shared by every concurrent caller.
    async fn lookup<K, H, F, Fut>(
        &self,
        lookups: &Lookups<K, H>,
        key: &K,
        read: F,
    ) -> Result<Option<Resolved>, BackendError>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        H: BuildHasher + Clone + Default + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<Resolved>, BackendError>>,
    {
        if let Some(found) = self.cached(lookups, key) {
            return Ok(found);
        }
        let mut latest = None;
        for _ in 0..RACE_RETRIES {
            let joined = lookups.flights.join(key);
            let outcome = joined
                .flight
                .get_or_init(|| async {
                    // Another caller's read may have finished since this one missed.
                    if let Some(found) = self.cached(lookups, key) {
                        return Outcome::Found(found);
                    }
                    let before = self.epoch.load(Ordering::SeqCst);
                    let found = match read().await {
                        Ok(found) => found,
                        Err(e) => return Outcome::Failed(e),
                    };
                    if self.epoch.load(Ordering::SeqCst) != before {
                        return Outcome::Raced(found);
                    }
                    let entry = Entry {
                        found: found.clone(),
                        at: self.clock.now(),
                    };
                    lookups.entries.insert(key.clone(), entry);
                    // A change announced between the check above and the insert.
                    if self.epoch.load(Ordering::SeqCst) != before {
                        lookups.entries.invalidate(key);
                        return Outcome::Raced(found);
                    }
                    Outcome::Found(found)
                })
                .await
                .clone();
            drop(joined);
            match outcome {
                Outcome::Found(found) => return Ok(found),
                Outcome::Failed(e) => return Err(e),
                Outcome::Raced(found) => latest = found,
            }
        }
        // Changes keep coming: answer with the latest read, without keeping it.
        Ok(latest)
    }
}

#[async_trait]
impl<S: ClientStore> ClientStore for CachedStore<S> {
    async fn client_by_key(&self, digest: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        self.inner.client_by_key(digest).await
    }

    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        self.inner.client_by_id(id).await
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        self.inner.account(id).await
    }

    async fn resolve_key(&self, digest: &KeyDigest) -> Result<Option<Resolved>, BackendError> {
        self.lookup(&self.caches().keys, digest, || {
            self.inner.resolve_key(digest)
        })
        .await
    }

    async fn resolve_id(&self, id: &ClientId) -> Result<Option<Resolved>, BackendError> {
        self.lookup(&self.caches().ids, id, || self.inner.resolve_id(id))
            .await
    }

    fn resolve_key_now(
        &self,
        digest: &KeyDigest,
    ) -> Option<Result<Option<Resolved>, BackendError>> {
        self.cached(&self.caches().keys, digest).map(Ok)
    }

    fn resolve_id_now(&self, id: &ClientId) -> Option<Result<Option<Resolved>, BackendError>> {
        self.cached(&self.caches().ids, id).map(Ok)
    }
}

#[async_trait]
impl<S: ManagedStore> ManagedStore for CachedStore<S> {
    async fn append_audit(&self, entry: AuditEntry) -> Result<(), BackendError> {
        self.inner.append_audit(entry).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, ManageError> {
        self.inner.audit(query).await
    }

    fn audit_time(&self) -> time::OffsetDateTime {
        self.inner.audit_time()
    }

    fn events(&self) -> Option<&dyn EventSink> {
        self.inner.events()
    }

    async fn list_accounts(&self) -> Result<Vec<Arc<Account>>, ManageError> {
        self.inner.list_accounts().await
    }

    async fn apply_create_account(&self, account: Account) -> Result<CreatedAccount, ManageError> {
        let id = account.id.clone();
        let created = self.inner.apply_create_account(account).await;
        self.invalidate(&Invalidation::Account(id));
        created
    }

    async fn apply_update_account(
        &self,
        id: &AccountId,
        change: AccountChange,
    ) -> Result<Arc<Account>, ManageError> {
        let updated = self.inner.apply_update_account(id, change).await;
        self.invalidate(&Invalidation::Account(id.clone()));
        updated
    }

    async fn list_clients(&self, account: &AccountId) -> Result<Vec<Arc<Client>>, ManageError> {
        self.inner.list_clients(account).await
    }

    async fn list_clients_page(
        &self,
        account: &AccountId,
        after: Option<&ClientId>,
        limit: usize,
    ) -> Result<Vec<Arc<Client>>, ManageError> {
        self.inner.list_clients_page(account, after, limit).await
    }

    async fn apply_create_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
    ) -> Result<CreatedClient, ManageError> {
        let created = self.inner.apply_create_client(account, spec).await;
        if let Ok(made) = &created {
            self.invalidate(&Invalidation::Client(made.client.id().clone()));
        }
        created
    }

    async fn apply_update_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        change: ClientChange,
    ) -> Result<Arc<Client>, ManageError> {
        let updated = self.inner.apply_update_client(id, pre, change).await;
        self.invalidate(&Invalidation::Client(id.clone()));
        updated
    }

    async fn apply_regenerate_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        grace: Option<time::Duration>,
    ) -> Result<(Arc<Client>, PlainCredential), ManageError> {
        let regenerated = self.inner.apply_regenerate_client(id, pre, grace).await;
        self.invalidate(&Invalidation::Client(id.clone()));
        regenerated
    }

    async fn apply_delete_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
    ) -> Result<Arc<Client>, ManageError> {
        let deleted = self.inner.apply_delete_client(id, pre).await;
        self.invalidate(&Invalidation::Client(id.clone()));
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Role, RoleSet, Status};
    use crate::clock::ManualClock;
    use crate::store::InMemoryStore;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use time::macros::datetime;
    use tokio::sync::Semaphore;

    /// An in-memory store that counts its lookups, can be made to fail, and can hold its
    /// lookups until released.
    struct Remote {
        store: InMemoryStore,
        queries: AtomicUsize,
        down: Mutex<bool>,
        gate: Option<Semaphore>,
    }

    impl Remote {
        fn new() -> Self {
            Remote {
                store: InMemoryStore::new(),
                queries: AtomicUsize::new(0),
                down: Mutex::new(false),
                gate: None,
            }
        }

        fn gated() -> Self {
            Remote {
                gate: Some(Semaphore::new(0)),
                ..Remote::new()
            }
        }

        fn queries(&self) -> usize {
            self.queries.load(Ordering::SeqCst)
        }

        fn set_down(&self, down: bool) {
            *self.down.lock().unwrap() = down;
        }

        async fn enter(&self) -> Result<(), BackendError> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            if *self.down.lock().unwrap() {
                return Err(BackendError::new("the remote store is down"));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl ClientStore for Remote {
        async fn client_by_key(&self, d: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
            // Read first, answer later: a slow answer may predate a change.
            let found = self.store.client_by_key(d).await;
            self.enter().await?;
            found
        }

        async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
            let found = self.store.client_by_id(id).await;
            self.enter().await?;
            found
        }

        async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
            let found = self.store.account(id).await;
            self.enter().await?;
            found
        }

        async fn resolve_key(&self, d: &KeyDigest) -> Result<Option<Resolved>, BackendError> {
            let found = self.store.resolve_key(d).await;
            self.enter().await?;
            found
        }

        async fn resolve_id(&self, id: &ClientId) -> Result<Option<Resolved>, BackendError> {
            let found = self.store.resolve_id(id).await;
            self.enter().await?;
            found
        }
    }

    fn account(id: &str) -> Account {
        Account::new(
            AccountId::new(id).unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
        )
        .unwrap()
    }

    fn setup(remote: Remote) -> (Arc<Remote>, CachedStore<Arc<Remote>>, ManualClock) {
        let clock = ManualClock::new(datetime!(2026-06-01 12:00 UTC));
        let remote = Arc::new(remote);
        let cached = CachedStore::new(remote.clone())
            .ttl(Duration::from_secs(5))
            .negative_ttl(Duration::from_secs(1))
            .clock(Arc::new(clock.clone()));
        (remote, cached, clock)
    }

    #[tokio::test]
    async fn a_hit_within_its_lifetime_does_not_query_the_store() {
        let (remote, cached, clock) = setup(Remote::new());
        let made = remote.store.open_account(account("acme")).unwrap();
        let key = made.javascript.credential.digest();
        for _ in 0..10 {
            assert!(cached.resolve_key(&key).await.unwrap().is_some());
        }
        assert_eq!(remote.queries(), 1);
        clock.advance(time::Duration::milliseconds(4_999));
        cached.resolve_key(&key).await.unwrap();
        assert_eq!(remote.queries(), 1);
        clock.advance(time::Duration::milliseconds(1));
        cached.resolve_key(&key).await.unwrap();
        assert_eq!(remote.queries(), 2, "the entry's lifetime ended");
    }

    #[tokio::test]
    async fn misses_are_cached_for_their_shorter_lifetime() {
        let (remote, cached, clock) = setup(Remote::new());
        let unknown = KeyDigest::of("gis_apikey_nobody");
        assert!(cached.resolve_key(&unknown).await.unwrap().is_none());
        assert!(cached.resolve_key(&unknown).await.unwrap().is_none());
        assert_eq!(remote.queries(), 1);
        clock.advance(time::Duration::seconds(1));
        assert!(cached.resolve_key(&unknown).await.unwrap().is_none());
        assert_eq!(remote.queries(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_misses_for_one_key_make_one_store_query() {
        let (remote, cached, _) = setup(Remote::gated());
        let made = remote.store.open_account(account("acme")).unwrap();
        let key = made.javascript.credential.digest();
        let cached = Arc::new(cached);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let cached = cached.clone();
                tokio::spawn(async move { cached.resolve_key(&key).await })
            })
            .collect();
        // On this single-threaded runtime, yielding lets every task run up to the gate.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        remote.gate.as_ref().unwrap().add_permits(50);
        for task in tasks {
            assert!(task.await.unwrap().unwrap().is_some());
        }
        assert_eq!(remote.queries(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_misses_share_one_failure_too() {
        let (remote, cached, _) = setup(Remote::gated());
        remote.set_down(true);
        let cached = Arc::new(cached);
        let id = ClientId::new("anyone").unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cached, id) = (cached.clone(), id.clone());
                tokio::spawn(async move { cached.resolve_id(&id).await })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        remote.gate.as_ref().unwrap().add_permits(20);
        for task in tasks {
            assert!(task.await.unwrap().is_err());
        }
        assert_eq!(remote.queries(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_read_abandoned_by_its_caller_is_taken_over_by_the_next() {
        let (remote, cached, _) = setup(Remote::gated());
        let made = remote.store.open_account(account("acme")).unwrap();
        let id = made.native.client.id().clone();
        let cached = Arc::new(cached);
        let first = {
            let (cached, id) = (cached.clone(), id.clone());
            tokio::spawn(async move { cached.resolve_id(&id).await })
        };
        let second = {
            let (cached, id) = (cached.clone(), id.clone());
            tokio::spawn(async move { cached.resolve_id(&id).await })
        };
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // The caller that started the read gives up (as a timeout would make it).
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        remote.gate.as_ref().unwrap().add_permits(10);
        assert!(second.await.unwrap().unwrap().is_some());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reads_abandoned_by_every_caller_are_forgotten() {
        let (remote, cached, _) = setup(Remote::gated());
        let cached = Arc::new(cached);
        let tasks: Vec<_> = (0..100)
            .map(|n| {
                let cached = cached.clone();
                let id = ClientId::new(format!("random-{n}")).unwrap();
                tokio::spawn(async move { cached.resolve_id(&id).await })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(remote.queries(), 100);
        assert_eq!(
            cached.caches().ids.flights.running.lock().unwrap().len(),
            100
        );
        // Every caller gives up (a timeout, say): nothing is left behind.
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        assert!(
            cached
                .caches()
                .ids
                .flights
                .running
                .lock()
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_answer_now_is_a_fresh_hit_and_nothing_else() {
        let (remote, cached, clock) = setup(Remote::new());
        let made = remote.store.open_account(account("acme")).unwrap();
        let key = made.javascript.credential.digest();
        assert!(
            cached.resolve_key_now(&key).is_none(),
            "a miss must be read"
        );
        cached.resolve_key(&key).await.unwrap();
        let now = cached.resolve_key_now(&key).unwrap().unwrap();
        assert_eq!(now.unwrap().client.id(), made.javascript.client.id());
        clock.advance(time::Duration::seconds(5));
        assert!(
            cached.resolve_key_now(&key).is_none(),
            "a stale entry must be read"
        );
        let id = made.native.client.id();
        cached.resolve_id(id).await.unwrap();
        assert!(cached.resolve_id_now(id).unwrap().unwrap().is_some());
    }

    #[tokio::test]
    async fn a_failing_store_is_an_error_unless_the_entry_is_cached_and_fresh() {
        let (remote, cached, clock) = setup(Remote::new());
        let made = remote.store.open_account(account("acme")).unwrap();
        let (key, id) = (
            made.javascript.credential.digest(),
            made.native.client.id().clone(),
        );
        cached.resolve_key(&key).await.unwrap();
        remote.set_down(true);
        assert!(
            cached.resolve_key(&key).await.unwrap().is_some(),
            "fresh hit"
        );
        assert!(
            cached.resolve_id(&id).await.is_err(),
            "not cached: fails closed"
        );
        clock.advance(time::Duration::seconds(5));
        assert!(
            cached.resolve_key(&key).await.is_err(),
            "stale: fails closed"
        );
        remote.set_down(false);
        assert!(
            cached.resolve_key(&key).await.unwrap().is_some(),
            "recovered"
        );
    }

    #[tokio::test]
    async fn invalidating_a_client_drops_its_entries_by_key_and_by_id() {
        let (remote, cached, _) = setup(Remote::new());
        let made = remote.store.open_account(account("acme")).unwrap();
        let (key, web) = (
            made.javascript.credential.digest(),
            made.javascript.client.id().clone(),
        );
        let native = made.native.client.id().clone();
        cached.resolve_key(&key).await.unwrap();
        cached.resolve_id(&web).await.unwrap();
        cached.resolve_id(&native).await.unwrap();
        remote
            .store
            .set_client_status(&web, Status::Inactive)
            .unwrap();
        cached.invalidate(&Invalidation::Client(web.clone()));
        let by_key = cached.resolve_key(&key).await.unwrap().unwrap();
        let by_id = cached.resolve_id(&web).await.unwrap().unwrap();
        assert_eq!(by_key.client.status(), Status::Inactive);
        assert_eq!(by_id.client.status(), Status::Inactive);
        let queries = remote.queries();
        cached.resolve_id(&native).await.unwrap();
        assert_eq!(remote.queries(), queries, "another client stays cached");
    }

    #[tokio::test]
    async fn invalidating_an_account_drops_every_one_of_its_clients() {
        let (remote, cached, _) = setup(Remote::new());
        let acme = remote.store.open_account(account("acme")).unwrap();
        let other = remote.store.open_account(account("other")).unwrap();
        let key = acme.javascript.credential.digest();
        let native = acme.native.client.id().clone();
        let elsewhere = other.native.client.id().clone();
        for id in [&native, &elsewhere] {
            cached.resolve_id(id).await.unwrap();
        }
        cached.resolve_key(&key).await.unwrap();
        remote
            .store
            .change_account(&acme.account.id, |a| a.status = Status::Inactive)
            .unwrap();
        cached.invalidate(&Invalidation::Account(acme.account.id.clone()));
        let by_key = cached.resolve_key(&key).await.unwrap().unwrap();
        assert_eq!(by_key.account.status, Status::Inactive);
        let by_id = cached.resolve_id(&native).await.unwrap().unwrap();
        assert_eq!(by_id.account.status, Status::Inactive);
        let queries = remote.queries();
        cached.resolve_id(&elsewhere).await.unwrap();
        assert_eq!(remote.queries(), queries, "another account stays cached");
    }

    #[tokio::test]
    async fn any_invalidation_drops_misses_so_a_new_client_is_found() {
        let (remote, cached, _) = setup(Remote::new());
        remote.store.insert_account(account("acme")).unwrap();
        let id = ClientId::new("late").unwrap();
        assert!(cached.resolve_id(&id).await.unwrap().is_none());
        remote
            .store
            .add_client(
                &AccountId::new("acme").unwrap(),
                ClientSpec::native("late").id(id.clone()),
            )
            .unwrap();
        assert!(
            cached.resolve_id(&id).await.unwrap().is_none(),
            "cached miss"
        );
        cached.invalidate(&Invalidation::Client(ClientId::new("unrelated").unwrap()));
        assert!(cached.resolve_id(&id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn everything_drops_every_entry() {
        let (remote, cached, _) = setup(Remote::new());
        let made = remote.store.open_account(account("acme")).unwrap();
        let key = made.javascript.credential.digest();
        cached.resolve_key(&key).await.unwrap();
        cached.invalidate(&Invalidation::Everything);
        cached.resolve_key(&key).await.unwrap();
        assert_eq!(remote.queries(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lookup_running_when_a_change_is_announced_is_not_kept() {
        let (remote, cached, _) = setup(Remote::gated());
        let made = remote.store.open_account(account("acme")).unwrap();
        let id = made.native.client.id().clone();
        let cached = Arc::new(cached);
        let lookup = {
            let (cached, id) = (cached.clone(), id.clone());
            tokio::spawn(async move { cached.resolve_id(&id).await })
        };
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // The first read is under way and answers with the old state; the change lands and
        // is announced before it returns.
        remote
            .store
            .set_client_status(&id, Status::Inactive)
            .unwrap();
        cached.invalidate(&Invalidation::Client(id.clone()));
        remote.gate.as_ref().unwrap().add_permits(10);
        let first = lookup.await.unwrap().unwrap().unwrap();
        assert_eq!(first.client.status(), Status::Inactive, "read again");
        assert_eq!(remote.queries(), 2);
        let again = cached.resolve_id(&id).await.unwrap().unwrap();
        assert_eq!(again.client.status(), Status::Inactive);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let (remote, cached, _) = setup(Remote::new());
        let cached = cached.max_entries(10);
        remote.store.insert_account(account("acme")).unwrap();
        for n in 0..200 {
            let id = ClientId::new(format!("c{n}")).unwrap();
            cached.resolve_id(&id).await.unwrap();
        }
        cached.caches().ids.entries.run_pending_tasks();
        let kept = cached.caches().ids.entries.entry_count();
        assert!(kept <= 10, "{kept} entries kept");
    }

    #[tokio::test]
    async fn changes_made_through_the_cache_drop_what_they_affect() {
        let managed = CachedStore::new(InMemoryStore::new());
        let acme = managed.create_account(account("acme")).await.unwrap();
        let key = acme.javascript.credential.digest();
        let (web, native) = (acme.javascript.client.id(), acme.native.client.id());
        assert!(managed.resolve_key(&key).await.unwrap().is_some());
        assert!(managed.resolve_id(native).await.unwrap().is_some());
        let pre = Precondition::default();
        let (_, fresh) = managed.regenerate_client(web, &pre, None).await.unwrap();
        assert!(managed.resolve_key(&key).await.unwrap().is_none());
        assert!(
            managed
                .resolve_key(&fresh.digest())
                .await
                .unwrap()
                .is_some()
        );
        managed
            .update_account(
                &acme.account.id,
                Box::new(|a| {
                    a.status = Status::Inactive;
                    Ok(())
                }),
            )
            .await
            .unwrap();
        let found = managed.resolve_id(native).await.unwrap().unwrap();
        assert_eq!(found.account.status, Status::Inactive);
        managed
            .update_client(
                native,
                &pre,
                Box::new(|s| {
                    s.name = "renamed".into();
                    Ok(())
                }),
            )
            .await
            .unwrap();
        assert_eq!(
            managed
                .resolve_id(native)
                .await
                .unwrap()
                .unwrap()
                .client
                .name(),
            "renamed"
        );
        managed.delete_client(native, &pre).await.unwrap();
        assert!(managed.resolve_id(native).await.unwrap().is_none());
        let made = managed
            .create_client(
                &acme.account.id,
                ClientSpec::native("again").id(native.clone()),
            )
            .await
            .unwrap();
        let found = managed.resolve_id(native).await.unwrap().unwrap();
        assert_eq!(found.client.name(), made.client.name());
    }

    /// What the caches were made with: capacity and the timer's lifetime, per kind.
    fn made_with<S: ClientStore>(cached: &CachedStore<S>) -> [(Option<u64>, Option<Duration>); 2] {
        let caches = cached.caches();
        [
            (
                caches.keys.entries.policy().max_capacity(),
                caches.keys.entries.policy().time_to_live(),
            ),
            (
                caches.ids.entries.policy().max_capacity(),
                caches.ids.entries.policy().time_to_live(),
            ),
        ]
    }

    #[test]
    fn the_settings_give_the_same_cache_in_any_order() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(datetime!(2026-06-01 12:00 UTC)));
        let (ttl, negative) = (Duration::from_secs(30), Duration::from_secs(2));
        let one = CachedStore::new(InMemoryStore::new())
            .ttl(ttl)
            .negative_ttl(negative)
            .max_entries(7)
            .clock(clock.clone());
        let other = CachedStore::new(InMemoryStore::new())
            .clock(clock.clone())
            .max_entries(7)
            .negative_ttl(negative)
            .ttl(ttl);
        assert_eq!(format!("{one:?}"), format!("{other:?}"));
        assert_eq!(made_with(&one), made_with(&other));
        assert_eq!(made_with(&one)[0], (Some(7), Some(ttl)));
        assert!(Arc::ptr_eq(&one.clock, &other.clock));
    }

    #[test]
    fn the_caches_are_made_once_on_first_use_and_again_only_after_a_setting_changes() {
        let cached = CachedStore::new(InMemoryStore::new())
            .ttl(Duration::from_secs(9))
            .max_entries(3);
        assert!(
            cached.lookups.get().is_none(),
            "nothing is built by the setters"
        );
        let first: *const Caches = cached.caches();
        let again: *const Caches = cached.caches();
        assert_eq!(first, again);
        // Reconfigured after use: the new settings apply, to a fresh cache.
        let cached = cached.max_entries(5);
        assert!(cached.lookups.get().is_none());
        assert_eq!(made_with(&cached)[1].0, Some(5));
    }

    #[tokio::test]
    async fn no_setting_makes_the_cache_panic() {
        let store = Arc::new(InMemoryStore::new());
        let made = store.open_account(account("acme")).unwrap();
        let key = made.javascript.credential.digest();
        for (ttl, negative, entries) in [
            (Duration::MAX, Duration::MAX, u64::MAX),
            (Duration::ZERO, Duration::ZERO, 0),
            (Duration::MAX, Duration::ZERO, 1),
        ] {
            let cached = CachedStore::new(store.clone())
                .ttl(ttl)
                .negative_ttl(negative)
                .max_entries(entries);
            assert!(cached.resolve_key(&key).await.unwrap().is_some());
            cached.invalidate(&Invalidation::Everything);
            assert!(cached.resolve_key(&key).await.unwrap().is_some());
        }
    }

    #[tokio::test]
    async fn changes_through_the_cache_are_recorded_once_in_the_stores_audit_log() {
        let cached = CachedStore::new(InMemoryStore::new());
        let made = cached
            .create_account(
                Account::new(
                    AccountId::new("acme").unwrap(),
                    "Acme",
                    RoleSet::from_iter([Role::USER]),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        cached
            .delete_client(made.javascript.client.id(), &Precondition::default())
            .await
            .unwrap();
        let all = AuditQuery::new(
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        );
        let actions: Vec<_> = cached
            .audit(&all)
            .await
            .unwrap()
            .iter()
            .map(|e| e.action.as_str())
            .collect();
        assert_eq!(actions, ["create_account", "delete_client"], "each once");
    }
}
