//! [`ManagedStore`]: the management operations the admin API and the command-line tool use,
//! with optimistic concurrency ([`Precondition::if_match`]) and the lock-out guard
//! ([`Precondition::keep_admin_access`]) checked atomically with the change.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::client::{Account, AccountId, Role, RoleSet, Status};
//! use gis_auth::document::etag;
//! use gis_auth::store::{InMemoryStore, ManageError, ManagedStore, Precondition};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn ManagedStore> = Arc::new(InMemoryStore::new());
//! let acme = store.create_account(Account::new(AccountId::new("acme")?,
//!     "Acme", RoleSet::from_iter([Role::USER, Role::EVALUATOR]))?).await?;
//! let web = acme.javascript.client.clone();
//! let seen = etag(&web, &acme.account);
//!
//! // A change based on what was seen applies...
//! let pre = Precondition { if_match: Some(seen.clone()), ..Precondition::default() };
//! store.update_client(web.id(), &pre, Box::new(|spec| {
//!     spec.name = "Store locator".into();
//!     Ok(())
//! })).await?;
//! // ...and a second one based on the same, now stale, view is refused.
//! let stale = store.update_client(web.id(), &pre, Box::new(|spec| {
//!     spec.status = Status::Inactive;
//!     Ok(())
//! })).await;
//! assert!(matches!(stale, Err(ManageError::Stale { .. })));
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};

use super::audit::{AuditQuery, account_fields, client_fields, outcome_of};
use super::{BackendError, ClientStore};
use crate::client::{
    Account, AccountId, Client, ClientId, ClientKind, ClientSpec, CredentialDigests,
    CredentialKind, Grant, KeyDigest, PlainCredential, Role,
};
use crate::document::{AuditAction, AuditEntry, AuditOutcome, OPERATOR, etag};
use crate::error::ConfigError;
use crate::events::{Event, EventKind, EventSink};
use crate::policy::ACCOUNT_APIS;

/// A change to a client's settings, applied to its current settings; an error aborts it.
pub type ClientChange = Box<dyn FnOnce(&mut ClientSpec) -> Result<(), ConfigError> + Send>;

/// A change to an account, applied to its current state; an error aborts it.
pub type AccountChange = Box<dyn FnOnce(&mut Account) -> Result<(), ConfigError> + Send>;

/// What must hold for a change to a client to apply, checked atomically with it.
#[derive(Debug, Clone, Default)]
pub struct Precondition {
    /// The client's [`etag`] as the caller last saw it: when it no longer matches, nothing
    /// changes and the result is [`ManageError::Stale`]. `None` applies unconditionally.
    pub if_match: Option<String>,
    /// Refuse ([`ManageError::LockOut`]) a change after which the account would have no
    /// client left that can reach the admin API (see [`can_administer`]).
    pub keep_admin_access: bool,
    /// The account the client must belong to: a client of another account is
    /// [`ManageError::NotFound`], exactly as a missing one, checked before anything else
    /// and atomically with the change. `None` (the operator's tools) is any account.
    pub account: Option<AccountId>,
    /// Who makes the change: the lock-out guard counts a client with IP rules only if they
    /// admit the address of the request making it.
    pub changed_by: ChangedBy,
}

impl Precondition {
    /// Refuses `client` as unknown when it is not of the account the change is limited
    /// to. Every store calls it on the client as it holds it, under the lock (or in the
    /// transaction) that applies the change, before validating the change.
    pub fn check_owner(&self, client: &Client) -> Result<(), ManageError> {
        match &self.account {
            Some(account) if account != client.account_id() => {
                Err(ManageError::unknown_client(client.id()))
            }
            _ => Ok(()),
        }
    }
}

/// Who makes a change: the audit log names it, and the lock-out guard counts a client with
/// IP rules only if they admit the address a request made it from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangedBy {
    /// The operator (the command-line tool, the clients file, a program using the store):
    /// no request, so IP rules are not checked.
    #[default]
    Operator,
    /// A request of the admin API, made with a token of client `id`, from address `from`
    /// (`None`: unknown, and then no client with IP rules counts).
    Client {
        /// The client whose token made the request.
        id: ClientId,
        /// The request's address.
        from: Option<IpAddr>,
    },
}

impl ChangedBy {
    /// How the audit log names who made the change: the client's id, or `operator`.
    pub fn name(&self) -> &str {
        match self {
            ChangedBy::Operator => OPERATOR,
            ChangedBy::Client { id, .. } => id.as_str(),
        }
    }
}

/// How long a client must stay unexpired to count for the lock-out guard: a client about
/// to expire would lock the account out moments later.
pub const ADMIN_ACCESS_MARGIN: Duration = Duration::hours(1);

/// A client just created, with its credential in plaintext: shown once, never stored.
#[derive(Debug, Clone)]
pub struct CreatedClient {
    /// The stored client.
    pub client: Arc<Client>,
    /// Its API key (JavaScript) or client secret (NativeConfidential).
    pub credential: PlainCredential,
}

/// An account just created, with its two default clients.
#[derive(Debug, Clone)]
pub struct CreatedAccount {
    /// The stored account.
    pub account: Arc<Account>,
    /// The default JavaScript client.
    pub javascript: CreatedClient,
    /// The default NativeConfidential client.
    pub native: CreatedClient,
}

/// The credential to give a client being inserted.
#[derive(Debug, Clone)]
pub enum NewCredential {
    /// Generate a fresh one.
    Generate,
    /// Use this plaintext (it is hashed; only the digest is kept).
    Plain(PlainCredential),
    /// Use this digest.
    Digest(KeyDigest),
    /// Use these credentials as a store kept them (a rotation in progress, a generation).
    Restored(CredentialDigests),
}

impl NewCredential {
    /// The credentials to store for client `client` of `kind`, with the plaintext when a
    /// fresh one was generated. A plaintext of the other kind is refused, naming the client
    /// and the field.
    pub fn resolve(
        self,
        client: &ClientId,
        kind: ClientKind,
    ) -> Result<(CredentialDigests, Option<PlainCredential>), ManageError> {
        let expected = credential_kind(kind);
        Ok(match self {
            NewCredential::Generate => {
                let plain = fresh_credential(expected)?;
                (CredentialDigests::new(plain.digest()), Some(plain))
            }
            NewCredential::Plain(plain) => {
                if plain.kind() != expected {
                    return Err(ConfigError::InvalidCredential {
                        client: client.to_string(),
                        field: credential_field(expected),
                        reason: "it is a credential of the other kind",
                    }
                    .into());
                }
                (CredentialDigests::new(plain.digest()), None)
            }
            NewCredential::Digest(d) => (CredentialDigests::new(d), None),
            NewCredential::Restored(c) => (c, None),
        })
    }
}

/// Which kind of record a management error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// An account.
    Account,
    /// A client.
    Client,
}

impl RecordKind {
    /// `account` or `client`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Account => "account",
            RecordKind::Client => "client",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A management operation that did not apply. Nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// The change is invalid: it names the value at fault.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// No account or client has this id.
    #[error("unknown {kind} `{id}`")]
    NotFound {
        /// What was looked for.
        kind: RecordKind,
        /// The id.
        id: String,
    },
    /// An account or client with this id already exists.
    #[error("{kind} `{id}` already exists")]
    Duplicate {
        /// What was being created.
        kind: RecordKind,
        /// The id.
        id: String,
    },
    /// The client changed since the caller read it.
    #[error("the client changed since it was read; read it again (its ETag is now {current})")]
    Stale {
        /// The client's ETag now.
        current: String,
    },
    /// The change would leave the account with no client able to manage it.
    #[error("{0}")]
    LockOut(String),
    /// The account holds as many clients as its plan allows (`max_clients`), or more.
    #[error(
        "account `{account}` may hold at most {max} clients (its plan's max_clients) and holds \
         that many; delete one first, or ask the operator for a larger plan"
    )]
    TooManyClients {
        /// The account.
        account: String,
        /// Its plan's cap.
        max: u32,
    },
    /// The operating system's random source failed, so no credential or id could be made.
    #[error("the operating system's random source failed")]
    RandomSource,
    /// The store could not answer.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl ManageError {
    /// No account with this id.
    pub fn unknown_account(id: &AccountId) -> Self {
        ManageError::NotFound {
            kind: RecordKind::Account,
            id: id.to_string(),
        }
    }

    /// No client with this id.
    pub fn unknown_client(id: &ClientId) -> Self {
        ManageError::NotFound {
            kind: RecordKind::Client,
            id: id.to_string(),
        }
    }

    /// An account with this id exists already.
    pub fn duplicate_account(id: &AccountId) -> Self {
        ManageError::Duplicate {
            kind: RecordKind::Account,
            id: id.to_string(),
        }
    }

    /// A client with this id exists already.
    pub fn duplicate_client(id: &ClientId) -> Self {
        ManageError::Duplicate {
            kind: RecordKind::Client,
            id: id.to_string(),
        }
    }
}

/// The kind of credential a client of `kind` holds.
pub(crate) fn credential_kind(kind: ClientKind) -> CredentialKind {
    match kind {
        ClientKind::JavaScript => CredentialKind::ApiKey,
        ClientKind::NativeConfidential => CredentialKind::ClientSecret,
    }
}

/// The clients file's name for a credential of `kind`.
pub(crate) fn credential_field(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::ApiKey => "api_key",
        CredentialKind::ClientSecret => "client_secret",
    }
}

/// The refusal of a credential that another client of the store holds already.
pub(crate) fn credential_taken(client: &ClientId, kind: ClientKind) -> ConfigError {
    ConfigError::InvalidCredential {
        client: client.to_string(),
        field: credential_field(credential_kind(kind)),
        reason: "another client already holds this credential",
    }
}

/// A fresh credential of `kind`; its only failure is the random source's.
pub(crate) fn fresh_credential(kind: CredentialKind) -> Result<PlainCredential, ManageError> {
    PlainCredential::generate(kind).map_err(|_| ManageError::RandomSource)
}

/// A fresh client id: `cl_` and 96 random bits.
pub(crate) fn new_client_id() -> Result<ClientId, ManageError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|_| ManageError::RandomSource)?;
    Ok(ClientId::new(format!(
        "cl_{}",
        URL_SAFE_NO_PAD.encode(bytes)
    ))?)
}

/// Whether `client` can keep reaching the admin API, as the lock-out guard counts it: a
/// NativeConfidential client, active, of an active account, whose roles include `User`,
/// whose privileges (if it has any) include every account API ([`ACCOUNT_APIS`]), that
/// does not expire within [`ADMIN_ACCESS_MARGIN`] of `now`, and whose IP rules (if it has
/// any) admit the address the change is made from (`by`; the operator's changes are not
/// made from an address).
pub fn can_administer(
    client: &Client,
    account: &Account,
    now: OffsetDateTime,
    by: &ChangedBy,
) -> bool {
    client.kind() == ClientKind::NativeConfidential
        && client.status().is_active()
        && account.status.is_active()
        && client
            .expires_at()
            .is_none_or(|at| at >= now.saturating_add(ADMIN_ACCESS_MARGIN))
        && client.effective_roles(account).contains(&Role::USER)
        && client
            .privileges()
            .is_none_or(|p| ACCOUNT_APIS.iter().all(|api| p.allows(api)))
        && (client.ips().is_empty()
            || match by {
                ChangedBy::Operator => true,
                ChangedBy::Client { from, .. } => from.is_some_and(|ip| client.ips().allows(ip)),
            })
}

/// Refuses a client creation in `account`, which holds `clients` clients, beyond its plan's
/// `max_clients`. Every store calls it under the lock (or in the transaction) that the
/// creation takes, so concurrent creations cannot overshoot.
pub(crate) fn check_room_for_client(account: &Account, clients: usize) -> Result<(), ManageError> {
    match account.plan.max_clients {
        Some(max) if !account.plan.admits_another_client(clients) => {
            Err(ManageError::TooManyClients {
                account: account.id.to_string(),
                max,
            })
        }
        _ => Ok(()),
    }
}

/// Refuses an account change after which one of its `clients` would hold a grant outside
/// the account's item ceiling: the ceiling holds for grants made before it was set or
/// narrowed too (never grandfathered), so change those clients' grants first.
pub(crate) fn check_item_ceiling<'a>(
    account: &Account,
    clients: impl IntoIterator<Item = &'a Client>,
) -> Result<(), ConfigError> {
    for client in clients {
        if let Some(item) = account
            .plan
            .item_outside(client.grants().iter().map(Grant::item))
        {
            return Err(ConfigError::ItemNotInPlan {
                client: client.id().to_string(),
                item: item.to_owned(),
                account: account.id.to_string(),
            });
        }
    }
    Ok(())
}

/// `current` with `change` applied to its settings, validated against `account` as
/// [`Client::rebuilt`] does; a change may not touch the client's id or kind. Shared by every
/// store so they refuse alike.
pub(crate) fn changed_client(
    current: &Client,
    account: &Account,
    max_grants: usize,
    change: impl FnOnce(&mut ClientSpec) -> Result<(), ConfigError>,
) -> Result<Client, ConfigError> {
    let mut spec = current.to_spec();
    change(&mut spec)?;
    if spec.id.as_ref() != Some(current.id()) {
        return Err(ConfigError::InvalidField {
            field: "id",
            value: spec.id.map(|i| i.to_string()).unwrap_or_default(),
            reason: "a client's id cannot change",
        });
    }
    if spec.kind != current.kind() {
        return Err(ConfigError::InvalidField {
            field: "kind",
            value: format!("{:?}", spec.kind),
            reason: "a client's kind cannot change",
        });
    }
    current.rebuilt(&spec, account, max_grants)
}

/// Checks a precondition against a client as stored, and the lock-out guard against the
/// account's clients as they would be after the change (`after`: the changed client, or
/// `None` when it is deleted). Shared by every store so they refuse alike.
pub fn check_precondition<'a>(
    pre: &Precondition,
    current: &Client,
    account: &Account,
    after: Option<&Client>,
    others: impl IntoIterator<Item = &'a Client>,
    now: OffsetDateTime,
) -> Result<(), ManageError> {
    pre.check_owner(current)?;
    if let Some(expected) = &pre.if_match {
        let current_tag = etag(current, account);
        if !etag_matches(expected, &current_tag) {
            return Err(ManageError::Stale {
                current: current_tag,
            });
        }
    }
    let by = &pre.changed_by;
    if pre.keep_admin_access && can_administer(current, account, now, by) {
        let still = after.is_some_and(|c| can_administer(c, account, now, by))
            || others
                .into_iter()
                .filter(|c| c.id() != current.id())
                .any(|c| can_administer(c, account, now, by));
        if !still {
            let from_here = match by {
                ChangedBy::Operator => "",
                ChangedBy::Client { .. } => ", IP rules that admit this request's address",
            };
            return Err(ManageError::LockOut(format!(
                "client `{}` is the account's last client that can manage it (an active \
                 NativeConfidential client with the User role, the account APIs in its \
                 privileges if it has any, no expiry within the hour{from_here}); this change \
                 would lock the account out: give another client that access first",
                current.id()
            )));
        }
    }
    Ok(())
}

/// Whether an `If-Match` value matches `current`: `*`, the tag itself, or a list containing
/// it (weak tags never match: RFC 9110 §13.1.1 compares strongly).
pub fn etag_matches(if_match: &str, current: &str) -> bool {
    if_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == current)
}

/// Account and client management, for the admin API and the command-line tool. Every
/// operation is atomic: it applies wholly or not at all, and a change is enforced on the
/// very next request that uses the client.
///
/// Every change is recorded in the store's audit log, applied or not: the provided methods
/// ([`create_account`](ManagedStore::create_account), [`update_client`](ManagedStore::update_client)...)
/// run the store's own operation (the `apply_` methods a store implements) and write one
/// [`AuditEntry`] through [`append_audit`](ManagedStore::append_audit): when (the store's
/// clock), who ([`ChangedBy`]; the client's id behind an admin token, `operator`
/// otherwise), the account and client, the action, the names of the fields changed (never
/// a value), and the outcome. They also tell the store's [`EventSink`], if it has one, of a
/// credential regenerated and of a client or an account deactivated.
///
/// A backend implements the `apply_` methods, [`append_audit`](ManagedStore::append_audit),
/// [`audit`](ManagedStore::audit) and [`audit_time`](ManagedStore::audit_time), and
/// leaves the provided change methods as they are (overriding one would skip its audit
/// entry); a wrapper such as [`CachedStore`](super::CachedStore) forwards the `apply_`
/// methods and the log to the store it wraps, so each change is recorded once. Callers
/// call the provided methods, never an `apply_` one.
#[async_trait]
pub trait ManagedStore: ClientStore {
    /// Every account, ordered by id.
    async fn list_accounts(&self) -> Result<Vec<Arc<Account>>, ManageError>;

    /// An account's clients, ordered by id.
    async fn list_clients(&self, account: &AccountId) -> Result<Vec<Arc<Client>>, ManageError>;

    /// A page of an account's clients, ordered by id: at most `limit` of those whose id
    /// comes after `after` (from the first when `None`). The default reads the whole list;
    /// a backend that can read a page alone overrides it.
    async fn list_clients_page(
        &self,
        account: &AccountId,
        after: Option<&ClientId>,
        limit: usize,
    ) -> Result<Vec<Arc<Client>>, ManageError> {
        Ok(self
            .list_clients(account)
            .await?
            .into_iter()
            .filter(|c| after.is_none_or(|after| c.id() > after))
            .take(limit)
            .collect())
    }

    /// The store's operation behind [`create_account`](ManagedStore::create_account).
    async fn apply_create_account(&self, account: Account) -> Result<CreatedAccount, ManageError>;

    /// The store's operation behind [`update_account`](ManagedStore::update_account).
    async fn apply_update_account(
        &self,
        id: &AccountId,
        change: AccountChange,
    ) -> Result<Arc<Account>, ManageError>;

    /// The store's operation behind [`create_client`](ManagedStore::create_client).
    async fn apply_create_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
    ) -> Result<CreatedClient, ManageError>;

    /// The store's operation behind [`update_client`](ManagedStore::update_client).
    async fn apply_update_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        change: ClientChange,
    ) -> Result<Arc<Client>, ManageError>;

    /// The store's operation behind [`regenerate_client`](ManagedStore::regenerate_client).
    async fn apply_regenerate_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        grace: Option<Duration>,
    ) -> Result<(Arc<Client>, PlainCredential), ManageError>;

    /// The store's operation behind [`delete_client`](ManagedStore::delete_client).
    async fn apply_delete_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
    ) -> Result<Arc<Client>, ManageError>;

    /// Appends one entry to the store's audit log.
    async fn append_audit(&self, entry: AuditEntry) -> Result<(), BackendError>;

    /// The audit log's entries that `query` selects, oldest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, ManageError>;

    /// The time the store stamps audit entries and events with (its clock).
    fn audit_time(&self) -> OffsetDateTime;

    /// Where the store's changes are told as events; `None` (the default) for nowhere.
    fn events(&self) -> Option<&dyn EventSink> {
        None
    }

    /// Creates an account and its two default clients, returning their credentials once;
    /// made by the operator.
    async fn create_account(&self, account: Account) -> Result<CreatedAccount, ManageError> {
        self.create_account_by(account, &ChangedBy::Operator).await
    }

    /// [`create_account`](ManagedStore::create_account), made by `by`.
    async fn create_account_by(
        &self,
        account: Account,
        by: &ChangedBy,
    ) -> Result<CreatedAccount, ManageError> {
        let mut entry = AuditEntry::new(self.audit_time(), by.name(), AuditAction::CreateAccount);
        entry.account_id = Some(account.id.to_string());
        entry.fields = account_fields(None, &account);
        let result = self.apply_create_account(account).await;
        record(self, entry, &result).await;
        result
    }

    /// Changes an account (its id cannot change), made by the operator. A plan whose item
    /// ceiling would leave one of its clients with a grant outside it is refused, naming
    /// the client and the item.
    async fn update_account(
        &self,
        id: &AccountId,
        change: AccountChange,
    ) -> Result<Arc<Account>, ManageError> {
        self.update_account_by(id, change, &ChangedBy::Operator)
            .await
    }

    /// [`update_account`](ManagedStore::update_account), made by `by`.
    async fn update_account_by(
        &self,
        id: &AccountId,
        change: AccountChange,
        by: &ChangedBy,
    ) -> Result<Arc<Account>, ManageError> {
        let mut entry = AuditEntry::new(self.audit_time(), by.name(), AuditAction::UpdateAccount);
        entry.account_id = Some(id.to_string());
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let watched: AccountChange = {
            let seen = seen.clone();
            Box::new(move |account| {
                let before = account.clone();
                change(account)?;
                let mut seen = seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                seen.fields = account_fields(Some(&before), account);
                seen.deactivated = before.status.is_active() && !account.status.is_active();
                Ok(())
            })
        };
        let result = self.apply_update_account(id, watched).await;
        let seen = std::mem::take(
            &mut *seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        entry.fields = seen.fields;
        if let (Ok(account), true, Some(sink)) = (&result, seen.deactivated, self.events()) {
            sink.emit(Event::new(
                entry.at,
                account.id.clone(),
                None,
                EventKind::AccountDeactivated,
            ));
        }
        record(self, entry, &result).await;
        result
    }

    /// Creates a client with a fresh credential, returned once; refused with
    /// [`ManageError::TooManyClients`] when the account holds as many as its plan allows.
    /// Made by the operator.
    async fn create_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
    ) -> Result<CreatedClient, ManageError> {
        self.create_client_by(account, spec, &ChangedBy::Operator)
            .await
    }

    /// [`create_client`](ManagedStore::create_client), made by `by`.
    async fn create_client_by(
        &self,
        account: &AccountId,
        spec: ClientSpec,
        by: &ChangedBy,
    ) -> Result<CreatedClient, ManageError> {
        let mut entry = AuditEntry::new(self.audit_time(), by.name(), AuditAction::CreateClient);
        entry.account_id = Some(account.to_string());
        entry.client_id = spec.id.as_ref().map(ToString::to_string);
        entry.fields = client_fields(&ClientSpec::new(spec.kind, ""), &spec);
        let result = self.apply_create_client(account, spec).await;
        if let Ok(created) = &result {
            entry.client_id = Some(created.client.id().to_string());
        }
        record(self, entry, &result).await;
        result
    }

    /// Changes a client's settings (validated as at creation; id and kind cannot change),
    /// made by [`Precondition::changed_by`].
    async fn update_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        change: ClientChange,
    ) -> Result<Arc<Client>, ManageError> {
        let mut entry = client_entry(self.audit_time(), pre, id, AuditAction::UpdateClient);
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let watched: ClientChange = {
            let seen = seen.clone();
            Box::new(move |spec| {
                let before = spec.clone();
                change(spec)?;
                let mut seen = seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                seen.fields = client_fields(&before, spec);
                seen.deactivated = before.status.is_active() && !spec.status.is_active();
                Ok(())
            })
        };
        let result = self.apply_update_client(id, pre, watched).await;
        let seen = std::mem::take(
            &mut *seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        entry.fields = seen.fields;
        if let Ok(client) = &result {
            entry.account_id = Some(client.account_id().to_string());
            if let (true, Some(sink)) = (seen.deactivated, self.events()) {
                sink.emit(Event::new(
                    entry.at,
                    client.account_id().clone(),
                    Some(client.id().clone()),
                    EventKind::ClientDeactivated {
                        by: pre.changed_by.name().to_owned(),
                    },
                ));
            }
        }
        record(self, entry, &result).await;
        result
    }

    /// Replaces a client's credential, returned once; with `grace`, the current one keeps
    /// working for that long. Made by [`Precondition::changed_by`].
    async fn regenerate_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        grace: Option<Duration>,
    ) -> Result<(Arc<Client>, PlainCredential), ManageError> {
        let mut entry = client_entry(self.audit_time(), pre, id, AuditAction::RegenerateClient);
        let result = self.apply_regenerate_client(id, pre, grace).await;
        if let Ok((client, _)) = &result {
            entry.account_id = Some(client.account_id().to_string());
            entry.fields = vec![credential_field(credential_kind(client.kind())).to_owned()];
            if let Some(sink) = self.events() {
                sink.emit(Event::new(
                    entry.at,
                    client.account_id().clone(),
                    Some(client.id().clone()),
                    EventKind::CredentialRegenerated {
                        by: pre.changed_by.name().to_owned(),
                    },
                ));
            }
        }
        record(self, entry, &result).await;
        result
    }

    /// Removes a client; its credentials and tokens stop at once. Made by
    /// [`Precondition::changed_by`].
    async fn delete_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
    ) -> Result<Arc<Client>, ManageError> {
        let mut entry = client_entry(self.audit_time(), pre, id, AuditAction::DeleteClient);
        let result = self.apply_delete_client(id, pre).await;
        if let Ok(client) = &result {
            entry.account_id = Some(client.account_id().to_string());
        }
        record(self, entry, &result).await;
        result
    }
}

/// Writes `entry` with the outcome of `result` to `store`'s audit log. A log that cannot
/// be written is logged at error level: the change itself has applied (or not) already.
async fn record<S: ManagedStore + ?Sized, T>(
    store: &S,
    mut entry: AuditEntry,
    result: &Result<T, ManageError>,
) {
    entry.outcome = match result {
        Ok(_) => AuditOutcome::Success,
        Err(e) => outcome_of(e),
    };
    let action = entry.action.as_str();
    if let Err(e) = store.append_audit(entry).await {
        tracing::error!(action, error = %e, "the audit log could not be written");
    }
}

/// What a change closure saw, for the audit entry and the events.
#[derive(Default)]
struct Seen {
    fields: Vec<String>,
    deactivated: bool,
}

/// The entry of a change to client `id` made under `pre`: of the account it is limited
/// to until the change tells the client's own.
fn client_entry(
    at: OffsetDateTime,
    pre: &Precondition,
    id: &ClientId,
    action: AuditAction,
) -> AuditEntry {
    let mut entry = AuditEntry::new(at, pre.changed_by.name(), action);
    entry.account_id = pre.account.as_ref().map(ToString::to_string);
    entry.client_id = Some(id.to_string());
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_the_tag_a_list_or_a_star_and_nothing_else() {
        let tag = "\"abc\"";
        assert!(etag_matches("\"abc\"", tag));
        assert!(etag_matches("\"x\", \"abc\"", tag));
        assert!(etag_matches("*", tag));
        assert!(!etag_matches("W/\"abc\"", tag));
        assert!(!etag_matches("\"abd\"", tag));
        assert!(!etag_matches("", tag));
    }

    #[test]
    fn a_change_keeps_the_client_id_and_kind() {
        use crate::client::{CredentialDigests, KeyDigest, RoleSet};
        let account = Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::EVALUATOR]),
        )
        .unwrap();
        let web = Client::build(
            ClientId::new("web").unwrap(),
            &ClientSpec::javascript("Web"),
            &account,
            CredentialDigests::new(KeyDigest::of("k")),
        )
        .unwrap();
        let refused =
            |change: fn(&mut ClientSpec)| match changed_client(&web, &account, 100, |spec| {
                change(spec);
                Ok(())
            }) {
                Err(ConfigError::InvalidField { field, .. }) => field,
                other => panic!("not refused: {other:?}"),
            };
        assert_eq!(
            refused(|s| s.id = Some(ClientId::new("other").unwrap())),
            "id"
        );
        assert_eq!(refused(|s| s.id = None), "id");
        assert_eq!(refused(|s| s.kind = ClientKind::NativeConfidential), "kind");
        let renamed = changed_client(&web, &account, 100, |spec| {
            spec.name = "Renamed".into();
            Ok(())
        })
        .unwrap();
        assert_eq!((renamed.id(), renamed.name()), (web.id(), "Renamed"));
    }

    #[test]
    fn a_new_credential_resolves_into_the_slots_of_its_kind() {
        let web = ClientId::new("web").unwrap();
        let (slots, plain) = NewCredential::Generate
            .resolve(&web, ClientKind::JavaScript)
            .unwrap();
        let plain = plain.expect("a generated credential is handed out");
        assert_eq!(plain.kind(), CredentialKind::ApiKey);
        assert_eq!(*slots.current(), plain.digest());

        let secret = PlainCredential::generate(CredentialKind::ClientSecret).unwrap();
        let (slots, plain) = NewCredential::Plain(secret.clone())
            .resolve(&web, ClientKind::NativeConfidential)
            .unwrap();
        assert!(
            plain.is_none(),
            "a given credential is not handed out again"
        );
        assert_eq!(*slots.current(), secret.digest());

        let refused = NewCredential::Plain(secret.clone()).resolve(&web, ClientKind::JavaScript);
        match refused {
            Err(ManageError::Invalid(ConfigError::InvalidCredential { client, field, .. })) => {
                assert_eq!((client.as_str(), field), ("web", "api_key"));
            }
            other => panic!("not refused: {other:?}"),
        }
        let shown = format!(
            "{:?}",
            NewCredential::Plain(secret.clone()).resolve(&web, ClientKind::JavaScript)
        );
        assert!(!shown.contains(secret.expose()), "{shown}");

        let digest = KeyDigest::of("k");
        let (slots, plain) = NewCredential::Digest(digest)
            .resolve(&web, ClientKind::JavaScript)
            .unwrap();
        assert_eq!((*slots.current(), plain.is_none()), (digest, true));
    }

    #[test]
    fn the_guard_counts_a_client_that_can_keep_managing_the_account_from_here() {
        use crate::client::{CredentialDigests, RoleSet};
        let now = time::macros::datetime!(2026-06-01 12:00 UTC);
        let account = Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER]),
        )
        .unwrap();
        let build = |spec: ClientSpec| {
            Client::build(
                ClientId::new("srv").unwrap(),
                &spec,
                &account,
                CredentialDigests::new(KeyDigest::of("s")),
            )
            .unwrap()
        };
        let by = |from: Option<&str>| ChangedBy::Client {
            id: ClientId::new("admin").unwrap(),
            from: from.map(|a| a.parse().unwrap()),
        };
        let here = &by(Some("192.0.2.7"));
        let counts =
            |spec: ClientSpec, by: &ChangedBy| can_administer(&build(spec), &account, now, by);
        assert!(counts(ClientSpec::native("a"), here));
        assert!(counts(
            ClientSpec::native("a").privileges(ACCOUNT_APIS.iter().copied()),
            here
        ));
        assert!(!counts(
            ClientSpec::native("a").privileges(["Profile", "Clients"]),
            here
        ));
        let at = |minutes| Some(now + Duration::minutes(minutes));
        assert!(!counts(ClientSpec::native("a").expires_at(at(59)), here));
        assert!(counts(ClientSpec::native("a").expires_at(at(60)), here));
        let ips = || ClientSpec::native("a").allowed_ips(["192.0.2.0/24"]);
        assert!(counts(ips(), here));
        assert!(!counts(ips(), &by(None)));
        assert!(!counts(ips(), &by(Some("198.51.100.1"))));
        assert!(counts(ips(), &ChangedBy::Operator));
        assert!(!counts(ClientSpec::javascript("w"), &ChangedBy::Operator));
    }

    #[test]
    fn fresh_client_ids_are_prefixed_and_distinct() {
        let (a, b) = (new_client_id().unwrap(), new_client_id().unwrap());
        assert!(a.as_str().starts_with("cl_"), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn management_errors_name_what_they_are_about() {
        let acme = AccountId::new("acme").unwrap();
        let web = ClientId::new("web").unwrap();
        assert_eq!(
            ManageError::unknown_account(&acme).to_string(),
            "unknown account `acme`"
        );
        assert_eq!(
            ManageError::unknown_client(&web).to_string(),
            "unknown client `web`"
        );
        assert_eq!(
            ManageError::duplicate_client(&web).to_string(),
            "client `web` already exists"
        );
        assert_eq!(
            ManageError::duplicate_account(&acme).to_string(),
            "account `acme` already exists"
        );
    }
}
