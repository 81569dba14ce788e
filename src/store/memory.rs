//! The in-memory store: hash maps behind a read-write lock, with the management operations.
//!
//! Reads take the lock shared and clone an `Arc`; writes build the new client first and swap
//! it in, so a lookup sees a client either wholly before or wholly after a change, and a
//! change is enforced on the very next lookup.
//!
//! Besides the [`ManagedStore`] operations, the store answers the same operations at once,
//! under names of their own (`open_account`, `add_client`, `change_client`,
//! `remove_client`, …), for setting up tests, examples and files without a runtime. Those
//! set a store up: they are not recorded in its audit log nor told to its event sink; the
//! [`ManagedStore`] operations are. The audit log is kept in memory, the latest
//! [`DEFAULT_AUDIT_CAPACITY`] entries unless [`InMemoryStore::audit_capacity`] says
//! otherwise.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, ClientSpec, Role, RoleSet, Status};
//! use gis_auth::store::InMemoryStore;
//!
//! let store = InMemoryStore::new();
//! let acme = store.open_account(Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::EVALUATOR]))?)?;
//! let web = store.add_client(&acme.account.id,
//!     ClientSpec::javascript("Store locator").allowed_origins(["https://*.acme.test"]))?;
//! store.set_client_status(web.client.id(), Status::Inactive)?;
//! let fresh_key = store.regenerate(web.client.id(), None)?;
//! assert_ne!(fresh_key.expose(), web.credential.expose());
//! assert_eq!(store.clients_of(&acme.account.id).len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use super::audit::AuditQuery;
use super::manage::{
    AccountChange, ClientChange, CreatedAccount, CreatedClient, ManageError, ManagedStore,
    NewCredential, Precondition, changed_client, check_item_ceiling, check_precondition,
    check_room_for_client, credential_kind, credential_taken, fresh_credential, new_client_id,
};
use super::{BackendError, ClientStore, Resolved};
use crate::client::{
    Account, AccountId, Client, ClientId, ClientKind, ClientSpec, CredentialDigests,
    DigestBuildHasher, FastBuildHasher, KeyDigest, PlainCredential, Status,
};
use crate::clock::{Clock, SystemClock};
use crate::document::AuditEntry;
use crate::error::ConfigError;
use crate::events::EventSink;

#[derive(Default)]
struct Registry {
    accounts: HashMap<AccountId, Arc<Account>, FastBuildHasher>,
    clients: HashMap<ClientId, Arc<Client>, FastBuildHasher>,
    by_key: HashMap<KeyDigest, ClientId, DigestBuildHasher>,
    by_account: HashMap<AccountId, BTreeSet<ClientId>, FastBuildHasher>,
}

impl Registry {
    fn index_digests(&mut self, client: &Client) {
        for d in client.credentials().digests() {
            self.by_key.insert(*d, client.id().clone());
        }
    }

    /// The JavaScript client holding an API key digest (secrets are indexed too, so no two
    /// clients share a credential, but they never answer a key lookup).
    fn api_key_client(&self, digest: &KeyDigest) -> Option<&Arc<Client>> {
        self.by_key
            .get(digest)
            .and_then(|id| self.clients.get(id))
            .filter(|c| c.kind() == ClientKind::JavaScript)
    }

    fn client(&self, id: &ClientId) -> Result<Arc<Client>, ManageError> {
        self.clients
            .get(id)
            .cloned()
            .ok_or_else(|| ManageError::unknown_client(id))
    }

    fn account_of(&self, client: &Client) -> Result<Arc<Account>, ManageError> {
        self.accounts
            .get(client.account_id())
            .cloned()
            .ok_or_else(|| ManageError::unknown_account(client.account_id()))
    }

    fn clients_of<'a>(&'a self, account: &AccountId) -> impl Iterator<Item = &'a Client> + 'a {
        self.by_account
            .get(account)
            .into_iter()
            .flatten()
            .filter_map(|id| self.clients.get(id).map(|c| &**c))
    }

    /// Stores `current` with new credentials, re-indexing its digests.
    fn replace_credentials(
        &mut self,
        current: &Client,
        credentials: CredentialDigests,
    ) -> Arc<Client> {
        let next = Arc::new(current.with_credentials(credentials));
        self.unindex_digests(current);
        self.index_digests(&next);
        self.clients.insert(current.id().clone(), next.clone());
        next
    }

    fn unindex_digests(&mut self, client: &Client) {
        for d in client.credentials().digests() {
            if self.by_key.get(d) == Some(client.id()) {
                self.by_key.remove(d);
            }
        }
    }

    fn digest_in_use(&self, digest: &KeyDigest) -> bool {
        self.by_key.contains_key(digest)
    }
}

/// Clients and accounts in memory: for tests, examples and single-process deployments.
///
/// Lookups are O(1) in the number of clients and run concurrently with each other; changes
/// take a short exclusive lock.
pub struct InMemoryStore {
    state: RwLock<Registry>,
    clock: Arc<dyn Clock>,
    max_grants: usize,
    /// The audit log: the latest `audit_capacity` entries.
    audit: Mutex<VecDeque<AuditEntry>>,
    audit_capacity: usize,
    events: Option<Arc<dyn EventSink>>,
}

/// How many audit entries an [`InMemoryStore`] keeps unless
/// [`InMemoryStore::audit_capacity`] says otherwise: the oldest go first.
pub const DEFAULT_AUDIT_CAPACITY: usize = 10_000;

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.read();
        f.debug_struct("InMemoryStore")
            .field("accounts", &state.accounts.len())
            .field("clients", &state.clients.len())
            .finish()
    }
}

impl InMemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self {
            state: RwLock::new(Registry::default()),
            clock: Arc::new(SystemClock),
            max_grants: crate::client::DEFAULT_MAX_GRANTS,
            audit: Mutex::new(VecDeque::new()),
            audit_capacity: DEFAULT_AUDIT_CAPACITY,
            events: None,
        }
    }

    /// Keeps the latest `entries` audit entries ([`DEFAULT_AUDIT_CAPACITY`] by default):
    /// the log is in memory, bounded, and the oldest entries go first.
    #[must_use]
    pub fn audit_capacity(mut self, entries: usize) -> Self {
        self.audit_capacity = entries;
        self
    }

    /// Tells `sink` of the store's changes (a credential regenerated, a client or an
    /// account deactivated).
    #[must_use]
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// Times rotation grace periods and the lock-out guard on `clock` (the system clock by
    /// default).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Allows at most `max` grants per client (100 by default).
    #[must_use]
    pub fn max_grants(mut self, max: usize) -> Self {
        self.max_grants = max;
        self
    }

    // Writers swap in fully built values, so the state is consistent even if a writer
    // panicked: recover it rather than fail every later request.
    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens an account with its two default clients (one of each kind, holding all of the
    /// account's roles and no restrictions), returning their credentials once. The
    /// synchronous form of [`ManagedStore::create_account`].
    pub fn open_account(&self, account: Account) -> Result<CreatedAccount, ManageError> {
        let mut state = self.write();
        if state.accounts.contains_key(&account.id) {
            return Err(ManageError::duplicate_account(&account.id));
        }
        let id = account.id.clone();
        let account = Arc::new(account);
        state.accounts.insert(id.clone(), account.clone());
        let made = (|| {
            let javascript = Self::insert_locked(
                self.max_grants,
                &mut state,
                &id,
                ClientSpec::javascript("Default JavaScript client"),
                NewCredential::Generate,
            )?;
            let native = Self::insert_locked(
                self.max_grants,
                &mut state,
                &id,
                ClientSpec::native("Default native client"),
                NewCredential::Generate,
            )?;
            Ok((javascript, native))
        })();
        match made {
            Ok((javascript, native)) => Ok(CreatedAccount {
                account,
                javascript: javascript.into_created()?,
                native: native.into_created()?,
            }),
            Err(e) => {
                // Leave nothing half-made.
                let ids: Vec<ClientId> =
                    state.by_account.remove(&id).into_iter().flatten().collect();
                for cid in ids {
                    if let Some(c) = state.clients.remove(&cid) {
                        state.unindex_digests(&c);
                    }
                }
                state.accounts.remove(&id);
                Err(e)
            }
        }
    }

    /// Adds an account without default clients (for loading from a file).
    pub fn insert_account(&self, account: Account) -> Result<Arc<Account>, ManageError> {
        let mut state = self.write();
        if state.accounts.contains_key(&account.id) {
            return Err(ManageError::duplicate_account(&account.id));
        }
        let account = Arc::new(account);
        state.accounts.insert(account.id.clone(), account.clone());
        Ok(account)
    }

    /// Changes an account. Its id cannot change. Role removals take effect on its clients'
    /// very next request.
    pub fn change_account(
        &self,
        id: &AccountId,
        change: impl FnOnce(&mut Account),
    ) -> Result<Arc<Account>, ManageError> {
        self.try_change_account(id, |account| {
            change(account);
            Ok(())
        })
    }

    /// Changes an account with a change that may refuse; validated as at creation. The
    /// synchronous form of [`ManagedStore::update_account`].
    pub fn try_change_account(
        &self,
        id: &AccountId,
        change: impl FnOnce(&mut Account) -> Result<(), ConfigError>,
    ) -> Result<Arc<Account>, ManageError> {
        let mut state = self.write();
        let current = state
            .accounts
            .get(id)
            .ok_or_else(|| ManageError::unknown_account(id))?;
        let mut next = Account::clone(current);
        change(&mut next)?;
        if next.id != *id {
            return Err(ConfigError::InvalidField {
                field: "account id",
                value: next.id.to_string(),
                reason: "an account's id cannot change",
            }
            .into());
        }
        crate::client::Account::new(next.id.clone(), next.name.clone(), next.roles.clone())?;
        next.contact.validate()?;
        check_item_ceiling(&next, state.clients_of(id))?;
        let next = Arc::new(next);
        state.accounts.insert(id.clone(), next.clone());
        Ok(next)
    }

    /// Adds a client with a fresh credential, returned once; refused beyond the account's
    /// `max_clients`. The synchronous form of [`ManagedStore::create_client`].
    pub fn add_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
    ) -> Result<CreatedClient, ManageError> {
        let mut state = self.write();
        if let Some(owner) = state.accounts.get(account) {
            let held = state.by_account.get(account).map_or(0, BTreeSet::len);
            check_room_for_client(owner, held)?;
        }
        Self::insert_locked(
            self.max_grants,
            &mut state,
            account,
            spec,
            NewCredential::Generate,
        )?
        .into_created()
    }

    /// Adds a client with the given credential; gives the plaintext when one was generated.
    pub fn insert_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
        credential: NewCredential,
    ) -> Result<(Arc<Client>, Option<PlainCredential>), ManageError> {
        let mut state = self.write();
        let inserted = Self::insert_locked(self.max_grants, &mut state, account, spec, credential)?;
        Ok((inserted.client, inserted.generated))
    }

    fn insert_locked(
        max_grants: usize,
        state: &mut Registry,
        account_id: &AccountId,
        spec: ClientSpec,
        credential: NewCredential,
    ) -> Result<Inserted, ManageError> {
        let account = state
            .accounts
            .get(account_id)
            .ok_or_else(|| ManageError::unknown_account(account_id))?
            .clone();
        let id = match &spec.id {
            Some(id) => id.clone(),
            None => loop {
                let id = new_client_id()?;
                if !state.clients.contains_key(&id) {
                    break id;
                }
            },
        };
        if state.clients.contains_key(&id) {
            return Err(ManageError::duplicate_client(&id));
        }
        let (credentials, generated) = credential.resolve(&id, spec.kind)?;
        if credentials.digests().any(|d| state.digest_in_use(d)) {
            return Err(credential_taken(&id, spec.kind).into());
        }
        let client = Arc::new(Client::build_limited(
            id.clone(),
            &spec,
            &account,
            credentials,
            max_grants,
        )?);
        state.index_digests(&client);
        state.clients.insert(id.clone(), client.clone());
        state
            .by_account
            .entry(account_id.clone())
            .or_default()
            .insert(id);
        Ok(Inserted { client, generated })
    }

    /// Changes a client's settings; the change is validated as at creation. Its id and kind
    /// cannot change.
    pub fn change_client(
        &self,
        id: &ClientId,
        change: impl FnOnce(&mut ClientSpec),
    ) -> Result<Arc<Client>, ManageError> {
        self.change_client_if(id, &Precondition::default(), |spec| {
            change(spec);
            Ok(())
        })
    }

    /// Changes a client's settings if `pre` holds, checked under the same lock as the
    /// change. The synchronous form of [`ManagedStore::update_client`].
    pub fn change_client_if(
        &self,
        id: &ClientId,
        pre: &Precondition,
        change: impl FnOnce(&mut ClientSpec) -> Result<(), ConfigError>,
    ) -> Result<Arc<Client>, ManageError> {
        let now = self.clock.now();
        let mut state = self.write();
        let current = state.client(id)?;
        pre.check_owner(&current)?;
        let account = state.account_of(&current)?;
        let next = Arc::new(changed_client(&current, &account, self.max_grants, change)?);
        check_precondition(
            pre,
            &current,
            &account,
            Some(&next),
            state.clients_of(&account.id),
            now,
        )?;
        state.clients.insert(id.clone(), next.clone());
        Ok(next)
    }

    /// Activates or deactivates a client; an inactive client is refused on its next request.
    pub fn set_client_status(
        &self,
        id: &ClientId,
        status: Status,
    ) -> Result<Arc<Client>, ManageError> {
        self.change_client(id, |spec| spec.status = status)
    }

    /// Replaces a client's credential. Without `grace`, every older credential stops at once;
    /// with it, the current one keeps working for that long.
    pub fn regenerate(
        &self,
        id: &ClientId,
        grace: Option<time::Duration>,
    ) -> Result<PlainCredential, ManageError> {
        self.regenerate_if(id, &Precondition::default(), grace)
            .map(|(_, plain)| plain)
    }

    /// Replaces a client's credential if `pre` holds. The synchronous form of
    /// [`ManagedStore::regenerate_client`].
    pub fn regenerate_if(
        &self,
        id: &ClientId,
        pre: &Precondition,
        grace: Option<time::Duration>,
    ) -> Result<(Arc<Client>, PlainCredential), ManageError> {
        let now = self.clock.now();
        let mut state = self.write();
        let current = state.client(id)?;
        pre.check_owner(&current)?;
        let account = state.account_of(&current)?;
        // A new credential never locks anyone out: the caller gets it in the answer.
        let check = Precondition {
            keep_admin_access: false,
            ..pre.clone()
        };
        check_precondition(&check, &current, &account, Some(&current), [], now)?;
        let plain = fresh_credential(credential_kind(current.kind()))?;
        let grace_until = grace.filter(|g| g.is_positive()).map(|g| now + g);
        let next = state.replace_credentials(
            &current,
            current.credentials().rotated(plain.digest(), grace_until),
        );
        Ok((next, plain))
    }

    /// Ends a rotation's grace period early: the previous credential, and every token minted
    /// with it, stops at once. Without a previous credential this changes nothing.
    pub fn retire_previous(&self, id: &ClientId) -> Result<Arc<Client>, ManageError> {
        let mut state = self.write();
        let current = state.client(id)?;
        Ok(state.replace_credentials(&current, current.credentials().without_previous()))
    }

    /// Removes a client; its credentials stop working at once.
    pub fn remove_client(&self, id: &ClientId) -> Result<Arc<Client>, ManageError> {
        self.remove_client_if(id, &Precondition::default())
    }

    /// Removes a client if `pre` holds. The synchronous form of
    /// [`ManagedStore::delete_client`].
    pub fn remove_client_if(
        &self,
        id: &ClientId,
        pre: &Precondition,
    ) -> Result<Arc<Client>, ManageError> {
        let now = self.clock.now();
        let mut state = self.write();
        let current = state.client(id)?;
        pre.check_owner(&current)?;
        let account = state.account_of(&current)?;
        check_precondition(
            pre,
            &current,
            &account,
            None,
            state.clients_of(&account.id),
            now,
        )?;
        state.clients.remove(id);
        state.unindex_digests(&current);
        if let Some(ids) = state.by_account.get_mut(current.account_id()) {
            ids.remove(id);
        }
        Ok(current)
    }

    /// The client with this id.
    pub fn client(&self, id: &ClientId) -> Option<Arc<Client>> {
        self.read().clients.get(id).cloned()
    }

    /// The account with this id, answered at once (the synchronous form of
    /// [`ClientStore::account`]).
    pub fn account_now(&self, id: &AccountId) -> Option<Arc<Account>> {
        self.read().accounts.get(id).cloned()
    }

    /// Every account, ordered by id.
    pub fn accounts(&self) -> Vec<Arc<Account>> {
        let mut all: Vec<_> = self.read().accounts.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// An account's clients, ordered by id.
    pub fn clients_of(&self, account: &AccountId) -> Vec<Arc<Client>> {
        let state = self.read();
        state
            .by_account
            .get(account)
            .into_iter()
            .flatten()
            .filter_map(|id| state.clients.get(id).cloned())
            .collect()
    }

    /// How many clients are stored.
    pub fn client_count(&self) -> usize {
        self.read().clients.len()
    }
}

struct Inserted {
    client: Arc<Client>,
    generated: Option<PlainCredential>,
}

impl Inserted {
    fn into_created(self) -> Result<CreatedClient, ManageError> {
        // Only called for generated credentials.
        let credential = self.generated.ok_or(ManageError::RandomSource)?;
        Ok(CreatedClient {
            client: self.client,
            credential,
        })
    }
}

#[async_trait]
impl ClientStore for InMemoryStore {
    async fn client_by_key(&self, digest: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        Ok(self.read().api_key_client(digest).cloned())
    }

    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        Ok(self.read().clients.get(id).cloned())
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        Ok(self.read().accounts.get(id).cloned())
    }

    async fn resolve_key(&self, digest: &KeyDigest) -> Result<Option<Resolved>, BackendError> {
        Ok(self.resolved_by_key(digest))
    }

    async fn resolve_id(&self, id: &ClientId) -> Result<Option<Resolved>, BackendError> {
        Ok(self.resolved_by_id(id))
    }

    fn resolve_key_now(
        &self,
        digest: &KeyDigest,
    ) -> Option<Result<Option<Resolved>, BackendError>> {
        Some(Ok(self.resolved_by_key(digest)))
    }

    fn resolve_id_now(&self, id: &ClientId) -> Option<Result<Option<Resolved>, BackendError>> {
        Some(Ok(self.resolved_by_id(id)))
    }
}

impl InMemoryStore {
    /// The JavaScript client holding an API key digest, with its account.
    fn resolved_by_key(&self, digest: &KeyDigest) -> Option<Resolved> {
        let state = self.read();
        let client = state.api_key_client(digest)?;
        state
            .accounts
            .get(client.account_id())
            .map(|account| Resolved {
                client: client.clone(),
                account: account.clone(),
            })
    }

    /// The client with this id, with its account.
    fn resolved_by_id(&self, id: &ClientId) -> Option<Resolved> {
        let state = self.read();
        let client = state.clients.get(id)?;
        state
            .accounts
            .get(client.account_id())
            .map(|account| Resolved {
                client: client.clone(),
                account: account.clone(),
            })
    }
}

#[async_trait]
impl ManagedStore for InMemoryStore {
    async fn append_audit(&self, entry: AuditEntry) -> Result<(), BackendError> {
        let mut log = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        if self.audit_capacity == 0 {
            return Ok(());
        }
        while log.len() >= self.audit_capacity {
            log.pop_front();
        }
        log.push_back(entry);
        Ok(())
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, ManageError> {
        let log = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(query.select(log.iter()))
    }

    fn audit_time(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    fn events(&self) -> Option<&dyn EventSink> {
        self.events.as_deref()
    }

    async fn list_accounts(&self) -> Result<Vec<Arc<Account>>, ManageError> {
        Ok(self.accounts())
    }

    async fn apply_create_account(&self, account: Account) -> Result<CreatedAccount, ManageError> {
        self.open_account(account)
    }

    async fn apply_update_account(
        &self,
        id: &AccountId,
        change: AccountChange,
    ) -> Result<Arc<Account>, ManageError> {
        self.try_change_account(id, change)
    }

    async fn list_clients(&self, account: &AccountId) -> Result<Vec<Arc<Client>>, ManageError> {
        if self.account_now(account).is_none() {
            return Err(ManageError::unknown_account(account));
        }
        Ok(self.clients_of(account))
    }

    async fn list_clients_page(
        &self,
        account: &AccountId,
        after: Option<&ClientId>,
        limit: usize,
    ) -> Result<Vec<Arc<Client>>, ManageError> {
        let state = self.read();
        if !state.accounts.contains_key(account) {
            return Err(ManageError::unknown_account(account));
        }
        let Some(ids) = state.by_account.get(account) else {
            return Ok(Vec::new());
        };
        let from = match after {
            Some(after) => std::ops::Bound::Excluded(after),
            None => std::ops::Bound::Unbounded,
        };
        Ok(ids
            .range::<ClientId, _>((from, std::ops::Bound::Unbounded))
            .filter_map(|id| state.clients.get(id).cloned())
            .take(limit)
            .collect())
    }

    async fn apply_create_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
    ) -> Result<CreatedClient, ManageError> {
        self.add_client(account, spec)
    }

    async fn apply_update_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        change: ClientChange,
    ) -> Result<Arc<Client>, ManageError> {
        self.change_client_if(id, pre, change)
    }

    async fn apply_regenerate_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        grace: Option<time::Duration>,
    ) -> Result<(Arc<Client>, PlainCredential), ManageError> {
        self.regenerate_if(id, pre, grace)
    }

    async fn apply_delete_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
    ) -> Result<Arc<Client>, ManageError> {
        self.remove_client_if(id, pre)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Role, RoleSet};
    use crate::clock::ManualClock;

    fn account(id: &str) -> Account {
        Account::new(
            AccountId::new(id).unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
        )
        .unwrap()
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_new_account_gets_two_default_clients_with_all_its_roles() {
        let store = InMemoryStore::new();
        let made = store.open_account(account("acme")).unwrap();
        assert_eq!(made.javascript.client.kind(), ClientKind::JavaScript);
        assert_eq!(made.native.client.kind(), ClientKind::NativeConfidential);
        assert_eq!(made.native.client.roles(), &made.account.roles);
        assert!(made.javascript.client.origins().is_empty());
        assert_eq!(store.clients_of(&made.account.id).len(), 2);
        assert!(matches!(
            store.open_account(account("acme")),
            Err(ManageError::Duplicate { .. })
        ));
    }

    #[test]
    fn keys_resolve_and_secrets_do_not() {
        let store = InMemoryStore::new();
        let made = store.open_account(account("acme")).unwrap();
        let key = made.javascript.credential.digest();
        let secret = made.native.credential.digest();
        block(async {
            let found = store.resolve_key(&key).await.unwrap().unwrap();
            assert_eq!(found.client.id(), made.javascript.client.id());
            assert!(store.resolve_key(&secret).await.unwrap().is_none());
        });
    }

    #[test]
    fn regenerating_without_grace_stops_the_old_key_at_once() {
        let store = InMemoryStore::new();
        let made = store.open_account(account("acme")).unwrap();
        let id = made.javascript.client.id().clone();
        let new = store.regenerate(&id, None).unwrap();
        block(async {
            assert!(
                store
                    .resolve_key(&made.javascript.credential.digest())
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(store.resolve_key(&new.digest()).await.unwrap().is_some());
        });
    }

    #[test]
    fn regenerating_with_grace_keeps_the_old_key_until_the_grace_ends() {
        let clock = ManualClock::new(time::macros::datetime!(2026-01-01 00:00 UTC));
        let store = InMemoryStore::new().clock(Arc::new(clock.clone()));
        let made = store.open_account(account("acme")).unwrap();
        let id = made.javascript.client.id().clone();
        let old = made.javascript.credential.digest();
        store
            .regenerate(&id, Some(time::Duration::minutes(10)))
            .unwrap();
        let client = store.client(&id).unwrap();
        assert!(client.credentials().accepts(&old, clock.now()));
        clock.advance(time::Duration::minutes(10));
        assert!(!client.credentials().accepts(&old, clock.now()));
        // a second regeneration without grace drops both older keys
        let newest = store.regenerate(&id, None).unwrap();
        block(async {
            assert!(store.resolve_key(&old).await.unwrap().is_none());
            assert!(store.resolve_key(&newest.digest()).await.unwrap().is_some());
        });
    }

    #[test]
    fn retiring_the_previous_key_stops_it_before_its_grace_ends() {
        let store = InMemoryStore::new();
        let made = store.open_account(account("acme")).unwrap();
        let id = made.javascript.client.id().clone();
        let old = made.javascript.credential.digest();
        let new = store
            .regenerate(&id, Some(time::Duration::hours(1)))
            .unwrap();
        block(async {
            assert!(store.resolve_key(&old).await.unwrap().is_some());
        });
        store.retire_previous(&id).unwrap();
        block(async {
            assert!(store.resolve_key(&old).await.unwrap().is_none());
            assert!(store.resolve_key(&new.digest()).await.unwrap().is_some());
        });
        assert!(matches!(
            store.retire_previous(&ClientId::new("nobody").unwrap()),
            Err(ManageError::NotFound { .. })
        ));
    }

    #[test]
    fn updates_are_validated_and_cannot_change_kind() {
        let store = InMemoryStore::new();
        let made = store.open_account(account("acme")).unwrap();
        let id = made.native.client.id().clone();
        let err = store
            .change_client(&id, |s| s.allowed_origins = vec!["example.com".into()])
            .unwrap_err();
        assert!(matches!(
            err,
            ManageError::Invalid(ConfigError::OriginsOnConfidentialClient { .. })
        ));
        let err = store
            .change_client(&id, |s| s.kind = ClientKind::JavaScript)
            .unwrap_err();
        assert!(err.to_string().contains("kind"));
        let c = store.set_client_status(&id, Status::Inactive).unwrap();
        assert_eq!(c.status(), Status::Inactive);
    }

    #[test]
    fn deleted_clients_disappear_from_every_index() {
        let store = InMemoryStore::new();
        let made = store.open_account(account("acme")).unwrap();
        let id = made.javascript.client.id().clone();
        store.remove_client(&id).unwrap();
        assert!(store.client(&id).is_none());
        assert_eq!(store.clients_of(&made.account.id).len(), 1);
        block(async {
            assert!(
                store
                    .resolve_key(&made.javascript.credential.digest())
                    .await
                    .unwrap()
                    .is_none()
            );
        });
        assert!(matches!(
            store.remove_client(&id),
            Err(ManageError::NotFound { .. })
        ));
    }

    #[test]
    fn a_credential_cannot_be_shared_by_two_clients() {
        use crate::client::CredentialKind;
        let store = InMemoryStore::new();
        store.insert_account(account("acme")).unwrap();
        let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        let acme = AccountId::new("acme").unwrap();
        store
            .insert_client(
                &acme,
                ClientSpec::javascript("a"),
                NewCredential::Plain(key.clone()),
            )
            .unwrap();
        let err = store
            .insert_client(
                &acme,
                ClientSpec::javascript("b"),
                NewCredential::Plain(key),
            )
            .unwrap_err();
        assert!(err.to_string().contains("another client"));
    }

    #[test]
    fn a_client_beyond_the_plans_cap_is_refused_and_loading_is_not_capped() {
        let store = InMemoryStore::new();
        let made = store
            .open_account(
                account("acme").with_plan(crate::client::Plan::default().with_max_clients(Some(3))),
            )
            .unwrap();
        let id = made.account.id.clone();
        store
            .add_client(&id, ClientSpec::javascript("third"))
            .unwrap();
        let refused = store.add_client(&id, ClientSpec::javascript("fourth"));
        assert!(
            matches!(refused, Err(ManageError::TooManyClients { max: 3, .. })),
            "{refused:?}"
        );
        assert_eq!(store.clients_of(&id).len(), 3, "nothing was added");
        // The operator's own load (a clients file) keeps what the file holds.
        store
            .insert_client(
                &id,
                ClientSpec::javascript("loaded"),
                NewCredential::Generate,
            )
            .unwrap();
        // Lowering the cap below what the account holds is allowed; creations stop.
        store
            .change_account(&id, |a| a.plan.max_clients = Some(1))
            .unwrap();
        assert!(store.add_client(&id, ClientSpec::javascript("x")).is_err());
        store
            .change_account(&id, |a| a.plan.max_clients = None)
            .unwrap();
        store.add_client(&id, ClientSpec::javascript("x")).unwrap();
    }

    #[test]
    fn a_ceiling_that_a_clients_grant_falls_outside_is_refused_naming_both() {
        use crate::client::{Action, Grant, ItemCeiling};
        let store = InMemoryStore::new();
        let made = store.open_account(account("acme")).unwrap();
        let id = made.account.id.clone();
        let web = store
            .add_client(
                &id,
                ClientSpec::javascript("web")
                    .grants([Grant::new("roads", [Action::Read]).unwrap()]),
            )
            .unwrap();
        let narrowed = store.try_change_account(&id, |a| {
            a.plan.items = Some(ItemCeiling::new(["parcels-*"])?);
            Ok(())
        });
        match narrowed {
            Err(ManageError::Invalid(ConfigError::ItemNotInPlan { client, item, .. })) => {
                assert_eq!(
                    (client.as_str(), item.as_str()),
                    (web.client.id().as_str(), "roads")
                );
            }
            other => panic!("not refused: {other:?}"),
        }
        assert!(
            store.account_now(&id).unwrap().plan.items.is_none(),
            "unchanged"
        );
        store
            .try_change_account(&id, |a| {
                a.plan.items = Some(ItemCeiling::new(["roads", "parcels-*"])?);
                Ok(())
            })
            .unwrap();
        let widened = store.change_client(web.client.id(), |spec| {
            spec.grants
                .push(Grant::new("tiles", [Action::Read]).unwrap());
        });
        assert!(matches!(
            widened,
            Err(ManageError::Invalid(ConfigError::ItemNotInPlan { .. }))
        ));
    }

    #[test]
    fn account_changes_are_validated() {
        let store = InMemoryStore::new();
        let made = store.open_account(account("acme")).unwrap();
        let id = made.account.id.clone();
        let a = store
            .change_account(&id, |a| a.roles = RoleSet::from_iter([Role::EVALUATOR]))
            .unwrap();
        assert_eq!(a.roles.len(), 1);
        assert!(
            store
                .change_account(&id, |a| a.name = String::new())
                .is_err()
        );
        assert!(
            store
                .change_account(&AccountId::new("nope").unwrap(), |_| {})
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_audit_log_keeps_the_latest_entries_up_to_its_capacity() {
        let clock = ManualClock::new(time::macros::datetime!(2026-06-01 12:00 UTC));
        let store = InMemoryStore::new()
            .clock(Arc::new(clock.clone()))
            .audit_capacity(2);
        for id in ["a", "b", "c"] {
            store.create_account(account(id)).await.unwrap();
            clock.advance(time::Duration::seconds(1));
        }
        let all = AuditQuery::new(
            time::OffsetDateTime::UNIX_EPOCH,
            clock.now() + time::Duration::hours(1),
        );
        let kept: Vec<Option<String>> = store
            .audit(&all)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.account_id)
            .collect();
        assert_eq!(kept, [Some("b".to_owned()), Some("c".to_owned())]);
        let one = store
            .audit(&all.clone().account(AccountId::new("c").unwrap()))
            .await;
        assert_eq!(one.unwrap().len(), 1);
        let none = InMemoryStore::new().audit_capacity(0);
        none.create_account(account("a")).await.unwrap();
        assert!(none.audit(&all).await.unwrap().is_empty());
    }
}
