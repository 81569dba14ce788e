//! [`PostgresStore`] (feature `postgres`): accounts and clients in PostgreSQL, shared by every
//! instance of a service, with change notification.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gis_auth::store::{CachedStore, PostgresStore};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let postgres = PostgresStore::connect("postgres://gis@db.internal/gis").await?;
//! postgres.migrate().await?;
//! let store = Arc::new(CachedStore::new(postgres.clone()));
//! // Changes made by any instance drop this instance's cached entries as they commit.
//! let cache = store.clone();
//! let _listener = postgres.listen(move |change| cache.invalidate(&change)).await?;
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use super::cached::Invalidation;
use super::manage::{
    AccountChange, ClientChange, CreatedAccount, CreatedClient, ManageError, ManagedStore,
    NewCredential, Precondition, changed_client, check_precondition, credential_kind,
    credential_taken, fresh_credential, new_client_id,
};
use super::{ClientStore, Resolved, StoreError};
use crate::client::{
    Account, AccountId, Action, Client, ClientId, ClientKind, ClientSpec, Contact, Credentials,
    DEFAULT_MAX_GRANTS, Grant, KeyDigest, PlainCredential, RateLimit, RoleSet, ShadowSet, Status,
};
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;

/// The channel changes are announced on unless told otherwise.
pub const DEFAULT_NOTIFY_CHANNEL: &str = "gis_auth_changes";

/// The schema migrations shipped with the crate: version, description, SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    20260601000001,
    "clients and accounts",
    include_str!("../../migrations/20260601000001_clients_and_accounts.sql"),
)];

/// The longest wait between two attempts to get the notification connection back.
const MAX_LISTEN_BACKOFF: Duration = Duration::from_secs(5);

/// Clients with their account, credentials and grants: one row per client.
macro_rules! select_clients {
    ($filter:literal) => {
        concat!(
            "SELECT c.id, c.name, c.kind, c.roles, c.status, c.allowed_origins, \
                    c.allow_missing_origin, c.allowed_ips, c.expires_at, c.privileges, \
                    c.rate_per_second, c.rate_burst, c.shadow, c.credential_generation, \
                    cur.digest AS current_digest, prev.digest AS previous_digest, \
                    prev.grace_until, \
                    ARRAY(SELECT g.item FROM client_grants g WHERE g.client_id = c.id \
                          ORDER BY g.position) AS grant_items, \
                    ARRAY(SELECT g.can_read FROM client_grants g WHERE g.client_id = c.id \
                          ORDER BY g.position) AS grant_read, \
                    ARRAY(SELECT g.can_write FROM client_grants g WHERE g.client_id = c.id \
                          ORDER BY g.position) AS grant_write, \
                    a.id AS a_id, a.name AS a_name, a.roles AS a_roles, a.status AS a_status, \
                    a.daily_quota AS a_daily_quota, a.contact_name AS a_contact_name, \
                    a.contact_email AS a_contact_email, a.contact_phone AS a_contact_phone \
             FROM clients c \
             JOIN accounts a ON a.id = c.account_id \
             JOIN credential_digests cur ON cur.client_id = c.id AND cur.slot = 'current' \
             LEFT JOIN credential_digests prev \
                    ON prev.client_id = c.id AND prev.slot = 'previous' ",
            $filter
        )
    };
}

/// The JavaScript client holding an API key digest. Secrets share the digest table (no two
/// clients hold one credential) but never answer a key lookup.
const BY_DIGEST: &str = select_clients!(
    "WHERE c.id = (SELECT d.client_id FROM credential_digests d WHERE d.digest = $1) \
       AND c.kind = 'JavaScript'"
);

/// The client with an id.
const BY_ID: &str = select_clients!("WHERE c.id = $1");

const SELECT_ACCOUNT: &str = "SELECT id AS a_id, name AS a_name, roles AS a_roles, \
     status AS a_status, daily_quota AS a_daily_quota, contact_name AS a_contact_name, \
     contact_email AS a_contact_email, contact_phone AS a_contact_phone FROM accounts ";

/// Clients and accounts in PostgreSQL. Cloning is cheap: clones share the connection pool.
///
/// - The schema ships with the crate (`migrations/`) and is applied by
///   [`PostgresStore::migrate`] (the command-line tool runs it as `gis-auth migrate`) into
///   the first schema of the connection's `search_path`, with sqlx's `_sqlx_migrations`
///   record beside it. In a database shared with an application, give the store a schema
///   of its own: `postgres://…/db?options=-csearch_path%3Dgis_auth`.
/// - Only SHA-256 digests of credentials are stored. A lookup by key digest or by client id
///   is one query on primary keys, returning the client with its account.
/// - Every change is a transaction. Changes to an account's clients lock the account's row
///   (`SELECT … FOR UPDATE`) and read its clients inside the transaction, so the
///   [`Precondition`]s (the ETag and the lock-out guard) hold when the change commits.
/// - Every change sends a `NOTIFY` on the store's channel (`gis_auth_changes` by default)
///   with the id it touched (`client:<id>` or `account:<id>`), delivered when it commits;
///   [`PostgresStore::listen`] hands them to a callback, typically
///   [`CachedStore::invalidate`](super::CachedStore::invalidate), on every instance.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    max_grants: usize,
    channel: Arc<str>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.pool.size())
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::new(format!("PostgreSQL: {e}"))
}

fn failed(e: sqlx::Error) -> ManageError {
    ManageError::Backend(unavailable(e))
}

/// A stored value that does not load (edited by hand?): named by its client or account.
fn corrupt(what: &str, id: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("stored {what} `{id}` does not load: {e}"))
}

impl PostgresStore {
    /// Connects to the database at `url` with a pool of up to 10 connections that gives up
    /// acquiring one after 2 seconds. Nothing is created: see [`PostgresStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(unavailable)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        Ok(Self::new(pool))
    }

    /// A store on an existing pool (its `search_path` decides the schema).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            clock: Arc::new(SystemClock),
            max_grants: DEFAULT_MAX_GRANTS,
            channel: Arc::from(DEFAULT_NOTIFY_CHANNEL),
        }
    }

    /// Reads the time (for rotation grace periods and the lock-out guard) from `clock`.
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

    /// Announces changes on the channel `name` (1 to 63 lowercase letters, digits and
    /// `_`) instead of [`DEFAULT_NOTIFY_CHANNEL`]; every instance sharing the database must
    /// use the same one.
    pub fn notify_channel(mut self, name: &str) -> Result<Self, ConfigError> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(ConfigError::InvalidField {
                field: "notify channel",
                value: name.to_owned(),
                reason: "a channel has 1 to 63 lowercase letters, digits and `_`",
            });
        }
        self.channel = Arc::from(name);
        Ok(self)
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades the tables to the schema this version of the crate needs, in
    /// the first schema of the connection's `search_path`. Safe to run on every start and
    /// from several instances at once (sqlx takes an advisory lock); a database migrated
    /// by a newer version is refused.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = Migrator::new(Shipped)
            .await
            .map_err(|e| StoreError::new(format!("PostgreSQL migrations: {e}")))?;
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::new(format!("PostgreSQL migrations: {e}")))
    }

    /// Calls `on_change` with every change any instance commits, from a task of its own,
    /// until the returned [`ChangeListener`] is dropped. The subscription is in place when
    /// this returns.
    ///
    /// When the notification connection drops, `on_change` gets
    /// [`Invalidation::Everything`] (changes may be missed while it is down; caches fall
    /// back to their lifetimes), and again once it is back: the listener reconnects by
    /// itself, waiting up to 5 seconds between attempts.
    pub async fn listen<F>(&self, on_change: F) -> Result<ChangeListener, StoreError>
    where
        F: Fn(Invalidation) + Send + Sync + 'static,
    {
        let listener = subscribe(&self.pool, &self.channel)
            .await
            .map_err(unavailable)?;
        let task = tokio::spawn(relay(
            self.pool.clone(),
            self.channel.clone(),
            listener,
            on_change,
        ));
        Ok(ChangeListener { task })
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ManageError> {
        self.pool.begin().await.map_err(failed)
    }

    async fn notify(
        &self,
        conn: &mut PgConnection,
        change: &Invalidation,
    ) -> Result<(), ManageError> {
        let payload = match change {
            Invalidation::Client(id) => format!("client:{id}"),
            Invalidation::Account(id) => format!("account:{id}"),
            _ => "everything".to_owned(),
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&*self.channel)
            .bind(payload)
            .execute(conn)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Adds an account without default clients (for loading from a file).
    pub async fn insert_account(&self, account: Account) -> Result<Arc<Account>, ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            insert_account_row(&mut tx, &account).await?;
            self.notify(&mut tx, &Invalidation::Account(account.id.clone()))
                .await?;
            Ok(Arc::new(account))
        }
        .await;
        settle(tx, outcome).await
    }

    /// Adds a client with the given credential; gives the plaintext when one was generated.
    pub async fn insert_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
        credential: NewCredential,
    ) -> Result<(Arc<Client>, Option<PlainCredential>), ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let owner = lock_account(&mut tx, account).await?;
            let (client, plain) =
                insert_client_rows(&mut tx, &owner, spec, credential, self.max_grants).await?;
            self.notify(&mut tx, &Invalidation::Client(client.id().clone()))
                .await?;
            Ok((client, plain))
        }
        .await;
        settle(tx, outcome).await
    }

    /// Ends a rotation's grace period early: the previous credential, and every token
    /// minted with it, stops at once.
    pub async fn retire_previous(&self, id: &ClientId) -> Result<Arc<Client>, ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let (_, current, _) = lock_client(&mut tx, id).await?;
            sqlx::query(
                "DELETE FROM credential_digests WHERE client_id = $1 AND slot = 'previous'",
            )
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            self.notify(&mut tx, &Invalidation::Client(id.clone()))
                .await?;
            Ok(Arc::new(current.with_credentials(
                current.credentials().without_previous(),
            )))
        }
        .await;
        settle(tx, outcome).await
    }

    /// The one client a query on [`select_clients!`] finds, with its account.
    async fn one_client(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Option<Resolved>, StoreError> {
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| {
            let account = Arc::new(account_from(&row)?);
            Ok(Resolved {
                client: Arc::new(client_from(&row, &account)?),
                account,
            })
        })
        .transpose()
    }
}

/// Commits when the work succeeded; otherwise rolls back at once, releasing the locks it
/// took before the error is returned (a dropped transaction would hold them until its
/// connection is next used).
async fn settle<T>(
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    outcome: Result<T, ManageError>,
) -> Result<T, ManageError> {
    match outcome {
        Ok(value) => {
            tx.commit().await.map_err(failed)?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "rolling back a refused change failed");
            }
            Err(e)
        }
    }
}

/// The task that relays notifications to the callback, reconnecting as needed.
async fn relay<F>(pool: PgPool, channel: Arc<str>, mut listener: PgListener, on_change: F)
where
    F: Fn(Invalidation) + Send + Sync + 'static,
{
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => on_change(parse_payload(notification.payload())),
            // sqlx reconnected by itself; what was sent meanwhile is lost.
            Ok(None) => {
                tracing::warn!("the PostgreSQL notification connection was lost and is back");
                on_change(Invalidation::Everything);
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "the PostgreSQL notification connection failed; cached entries last their \
                     lifetime until it is back"
                );
                on_change(Invalidation::Everything);
                drop(listener);
                listener = resubscribe(&pool, &channel).await;
                tracing::info!("the PostgreSQL notification connection is back");
                on_change(Invalidation::Everything);
            }
        }
    }
}

async fn subscribe(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Subscribes again, waiting longer after each failure (from 100 ms up to
/// [`MAX_LISTEN_BACKOFF`]).
async fn resubscribe(pool: &PgPool, channel: &str) -> PgListener {
    let mut wait = Duration::from_millis(100);
    loop {
        match subscribe(pool, channel).await {
            Ok(listener) => return listener,
            Err(e) => {
                tracing::debug!(error = %e, "cannot subscribe to PostgreSQL notifications yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_LISTEN_BACKOFF);
            }
        }
    }
}

/// `client:<id>`, `account:<id>`; anything else (from a newer version, or a hand-made
/// `NOTIFY`) drops everything.
fn parse_payload(payload: &str) -> Invalidation {
    let parsed = match payload.split_once(':') {
        Some(("client", id)) => ClientId::new(id).ok().map(Invalidation::Client),
        Some(("account", id)) => AccountId::new(id).ok().map(Invalidation::Account),
        _ => None,
    };
    parsed.unwrap_or(Invalidation::Everything)
}

/// Relays change notifications while it is alive: dropping it stops the task.
#[derive(Debug)]
#[must_use = "the listener stops when dropped"]
pub struct ChangeListener {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChangeListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The migrations compiled into the crate, as sqlx's migrator takes them.
#[derive(Debug)]
struct Shipped;

impl<'s> MigrationSource<'s> for Shipped {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

fn status_text(status: Status) -> &'static str {
    match status {
        Status::Active => "active",
        Status::Inactive => "inactive",
    }
}

fn parse_status(text: &str) -> Result<Status, String> {
    match text {
        "active" => Ok(Status::Active),
        "inactive" => Ok(Status::Inactive),
        other => Err(format!("unknown status `{other}`")),
    }
}

fn kind_text(kind: ClientKind) -> &'static str {
    match kind {
        ClientKind::JavaScript => "JavaScript",
        ClientKind::NativeConfidential => "NativeConfidential",
    }
}

fn account_from(row: &PgRow) -> Result<Account, StoreError> {
    let id: String = row.try_get("a_id").map_err(unavailable)?;
    let bad = |e: &dyn std::fmt::Display| corrupt("account", &id, e);
    let get_err = |e: sqlx::Error| corrupt("account", &id, e);
    let roles: Vec<String> = row.try_get("a_roles").map_err(get_err)?;
    let status: String = row.try_get("a_status").map_err(get_err)?;
    let quota: Option<i64> = row.try_get("a_daily_quota").map_err(get_err)?;
    let contact = Contact {
        contact_name: row.try_get("a_contact_name").map_err(get_err)?,
        contact_email: row.try_get("a_contact_email").map_err(get_err)?,
        contact_phone: row.try_get("a_contact_phone").map_err(get_err)?,
    };
    let account = Account::new(
        AccountId::new(&id).map_err(|e| bad(&e))?,
        row.try_get::<String, _>("a_name").map_err(get_err)?,
        RoleSet::parse(&roles).map_err(|e| bad(&e))?,
    )
    .map_err(|e| bad(&e))?;
    Ok(account
        .with_status(parse_status(&status).map_err(|e| bad(&e))?)
        .with_daily_quota(quota.and_then(|q| u64::try_from(q).ok()))
        .with_contact(contact))
}

fn digest_from(bytes: Vec<u8>) -> Result<KeyDigest, String> {
    <[u8; 32]>::try_from(bytes)
        .map(KeyDigest::from_bytes)
        .map_err(|_| "a credential digest is not 32 bytes".to_owned())
}

/// A client as stored, built against its account. Roles the client holds and its account
/// has since lost stay on it (without effect), as [`Client::rebuilt`] keeps them.
fn client_from(row: &PgRow, account: &Account) -> Result<Client, StoreError> {
    let id: String = row.try_get("id").map_err(unavailable)?;
    let bad = |e: &dyn std::fmt::Display| corrupt("client", &id, e);
    let get_err = |e: sqlx::Error| corrupt("client", &id, e);
    let kind = match row.try_get::<String, _>("kind").map_err(get_err)?.as_str() {
        "JavaScript" => ClientKind::JavaScript,
        "NativeConfidential" => ClientKind::NativeConfidential,
        other => return Err(bad(&format!("unknown kind `{other}`"))),
    };
    let roles = row
        .try_get::<Option<Vec<String>>, _>("roles")
        .map_err(get_err)?
        .map(|names| RoleSet::parse(&names))
        .transpose()
        .map_err(|e| bad(&e))?;
    let rate_limit = match (
        row.try_get::<Option<i64>, _>("rate_per_second")
            .map_err(get_err)?,
        row.try_get::<Option<i64>, _>("rate_burst")
            .map_err(get_err)?,
    ) {
        (Some(rate), Some(burst)) => Some(
            RateLimit::new(
                u32::try_from(rate).unwrap_or(0),
                u32::try_from(burst).unwrap_or(0),
            )
            .map_err(|e| bad(&e))?,
        ),
        _ => None,
    };
    let items: Vec<String> = row.try_get("grant_items").map_err(get_err)?;
    let reads: Vec<bool> = row.try_get("grant_read").map_err(get_err)?;
    let writes: Vec<bool> = row.try_get("grant_write").map_err(get_err)?;
    let grants = items
        .into_iter()
        .zip(reads.into_iter().zip(writes))
        .map(|(item, (read, write))| {
            let actions = [(read, Action::Read), (write, Action::Write)]
                .into_iter()
                .filter_map(|(yes, action)| yes.then_some(action));
            Grant::new(item, actions)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    let shadow: Vec<String> = row.try_get("shadow").map_err(get_err)?;
    let mut spec = ClientSpec::new(kind, row.try_get::<String, _>("name").map_err(get_err)?);
    spec.roles = roles.clone();
    spec.status =
        parse_status(&row.try_get::<String, _>("status").map_err(get_err)?).map_err(|e| bad(&e))?;
    spec.allowed_origins = row.try_get("allowed_origins").map_err(get_err)?;
    spec.allow_missing_origin = row.try_get("allow_missing_origin").map_err(get_err)?;
    spec.allowed_ips = row.try_get("allowed_ips").map_err(get_err)?;
    spec.expires_at = row.try_get("expires_at").map_err(get_err)?;
    spec.privileges = row.try_get("privileges").map_err(get_err)?;
    spec.grants = grants;
    spec.rate_limit = rate_limit;
    spec.shadow = ShadowSet::parse(&shadow).map_err(|e| bad(&e))?;
    let current =
        digest_from(row.try_get("current_digest").map_err(get_err)?).map_err(|e| bad(&e))?;
    let previous = match (
        row.try_get::<Option<Vec<u8>>, _>("previous_digest")
            .map_err(get_err)?,
        row.try_get::<Option<OffsetDateTime>, _>("grace_until")
            .map_err(get_err)?,
    ) {
        (Some(digest), Some(until)) => Some((digest_from(digest).map_err(|e| bad(&e))?, until)),
        _ => None,
    };
    let generation: i64 = row.try_get("credential_generation").map_err(get_err)?;
    let credentials = Credentials::restored(
        current,
        previous,
        u64::try_from(generation).unwrap_or_default(),
    );
    // Validated when it was written; the roles it kept after its account lost them are
    // granted for the build only.
    let mut holder = account.clone();
    if let Some(roles) = &roles {
        holder.roles = RoleSet::from_iter(account.roles.iter().chain(roles.iter()).cloned());
    }
    Client::build_limited(
        ClientId::new(&id).map_err(|e| bad(&e))?,
        &spec,
        &holder,
        credentials,
        usize::MAX,
    )
    .map_err(|e| bad(&e))
}

/// The columns of a client as written.
struct ClientRow {
    id: String,
    account: String,
    name: String,
    kind: &'static str,
    roles: Option<Vec<String>>,
    status: &'static str,
    allowed_origins: Vec<String>,
    allow_missing_origin: bool,
    allowed_ips: Vec<String>,
    expires_at: Option<OffsetDateTime>,
    privileges: Option<Vec<String>>,
    rate_per_second: Option<i64>,
    rate_burst: Option<i64>,
    shadow: Vec<String>,
    generation: i64,
    grant_items: Vec<String>,
    grant_read: Vec<bool>,
    grant_write: Vec<bool>,
}

impl ClientRow {
    fn of(client: &Client) -> ClientRow {
        let spec = client.to_spec();
        let grants = client.grants();
        ClientRow {
            id: client.id().to_string(),
            account: client.account_id().to_string(),
            name: spec.name,
            kind: kind_text(spec.kind),
            roles: spec
                .roles
                .map(|roles| roles.iter().map(|r| r.as_str().to_owned()).collect()),
            status: status_text(spec.status),
            allowed_origins: spec.allowed_origins,
            allow_missing_origin: spec.allow_missing_origin,
            allowed_ips: spec.allowed_ips,
            expires_at: spec.expires_at,
            privileges: spec.privileges,
            rate_per_second: spec.rate_limit.map(|r| i64::from(r.per_second.get())),
            rate_burst: spec.rate_limit.map(|r| i64::from(r.burst.get())),
            shadow: spec.shadow.iter().map(|r| r.as_str().to_owned()).collect(),
            generation: i64::try_from(client.credentials().generation()).unwrap_or(i64::MAX),
            grant_items: grants.iter().map(|g| g.item().to_owned()).collect(),
            grant_read: grants.iter().map(|g| g.allows(Action::Read)).collect(),
            grant_write: grants.iter().map(|g| g.allows(Action::Write)).collect(),
        }
    }

    /// Inserts the client; `false` when its id is taken.
    async fn insert(&self, conn: &mut PgConnection) -> Result<bool, ManageError> {
        let done = sqlx::query(
            "INSERT INTO clients (id, account_id, name, kind, roles, status, allowed_origins, \
                 allow_missing_origin, allowed_ips, expires_at, privileges, rate_per_second, \
                 rate_burst, shadow, credential_generation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&self.id)
        .bind(&self.account)
        .bind(&self.name)
        .bind(self.kind)
        .bind(&self.roles)
        .bind(self.status)
        .bind(&self.allowed_origins)
        .bind(self.allow_missing_origin)
        .bind(&self.allowed_ips)
        .bind(self.expires_at)
        .bind(&self.privileges)
        .bind(self.rate_per_second)
        .bind(self.rate_burst)
        .bind(&self.shadow)
        .bind(self.generation)
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.insert_grants(conn).await?;
        Ok(true)
    }

    /// Writes every setting of an existing client (not its credentials).
    async fn update(&self, conn: &mut PgConnection) -> Result<(), ManageError> {
        sqlx::query(
            "UPDATE clients SET name = $2, roles = $3, status = $4, allowed_origins = $5, \
                 allow_missing_origin = $6, allowed_ips = $7, expires_at = $8, \
                 privileges = $9, rate_per_second = $10, rate_burst = $11, shadow = $12 \
             WHERE id = $1",
        )
        .bind(&self.id)
        .bind(&self.name)
        .bind(&self.roles)
        .bind(self.status)
        .bind(&self.allowed_origins)
        .bind(self.allow_missing_origin)
        .bind(&self.allowed_ips)
        .bind(self.expires_at)
        .bind(&self.privileges)
        .bind(self.rate_per_second)
        .bind(self.rate_burst)
        .bind(&self.shadow)
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
        sqlx::query("DELETE FROM client_grants WHERE client_id = $1")
            .bind(&self.id)
            .execute(&mut *conn)
            .await
            .map_err(failed)?;
        self.insert_grants(conn).await
    }

    async fn insert_grants(&self, conn: &mut PgConnection) -> Result<(), ManageError> {
        if self.grant_items.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO client_grants (client_id, position, item, can_read, can_write) \
             SELECT $1, g.position, g.item, g.can_read, g.can_write \
             FROM unnest($2::text[], $3::boolean[], $4::boolean[]) \
                  WITH ORDINALITY AS g(item, can_read, can_write, position)",
        )
        .bind(&self.id)
        .bind(&self.grant_items)
        .bind(&self.grant_read)
        .bind(&self.grant_write)
        .execute(conn)
        .await
        .map_err(failed)?;
        Ok(())
    }
}

/// Writes a client's credential digests; `false` when another client holds one of them.
async fn insert_digests(
    conn: &mut PgConnection,
    client: &ClientId,
    credentials: &Credentials,
) -> Result<bool, ManageError> {
    let slots = std::iter::once((credentials.current(), "current", None)).chain(
        credentials
            .previous()
            .map(|(digest, until)| (digest, "previous", Some(*until))),
    );
    for (digest, slot, until) in slots {
        let done = sqlx::query(
            "INSERT INTO credential_digests (digest, client_id, slot, grace_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(&digest.as_bytes()[..])
        .bind(client.as_str())
        .bind(slot)
        .bind(until)
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn insert_account_row(conn: &mut PgConnection, account: &Account) -> Result<(), ManageError> {
    let done = sqlx::query(
        "INSERT INTO accounts (id, name, roles, status, daily_quota, contact_name, \
             contact_email, contact_phone) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(account.id.as_str())
    .bind(&account.name)
    .bind(role_names(&account.roles))
    .bind(status_text(account.status))
    .bind(quota_column(account.daily_quota))
    .bind(&account.contact.contact_name)
    .bind(&account.contact.contact_email)
    .bind(&account.contact.contact_phone)
    .execute(conn)
    .await
    .map_err(failed)?;
    if done.rows_affected() == 0 {
        return Err(ManageError::duplicate_account(&account.id));
    }
    Ok(())
}

fn role_names(roles: &RoleSet) -> Vec<String> {
    roles.iter().map(|r| r.as_str().to_owned()).collect()
}

/// Quotas beyond what PostgreSQL's `bigint` holds are as good as unlimited.
fn quota_column(quota: Option<u64>) -> Option<i64> {
    quota.map(|q| i64::try_from(q).unwrap_or(i64::MAX))
}

/// Locks the account's row for the rest of the transaction: every change to an account or
/// its clients takes this lock first, so they apply one at a time.
async fn lock_account(conn: &mut PgConnection, id: &AccountId) -> Result<Account, ManageError> {
    let row = sqlx::query(&format!("{SELECT_ACCOUNT} WHERE id = $1 FOR UPDATE"))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await
        .map_err(failed)?
        .ok_or_else(|| ManageError::unknown_account(id))?;
    Ok(account_from(&row)?)
}

/// Every client of an account, ordered by id (byte order, as the in-memory store).
async fn clients_of(
    conn: &mut PgConnection,
    account: &Account,
) -> Result<Vec<Arc<Client>>, ManageError> {
    let rows = sqlx::query(select_clients!(
        "WHERE c.account_id = $1 ORDER BY c.id COLLATE \"C\""
    ))
    .bind(account.id.as_str())
    .fetch_all(conn)
    .await
    .map_err(failed)?;
    rows.iter()
        .map(|row| Ok(Arc::new(client_from(row, account)?)))
        .collect()
}

/// Locks a client's account and reads the client and the account's clients.
async fn lock_client(
    conn: &mut PgConnection,
    id: &ClientId,
) -> Result<(Account, Arc<Client>, Vec<Arc<Client>>), ManageError> {
    let unknown = || ManageError::unknown_client(id);
    let account: String = sqlx::query_scalar("SELECT account_id FROM clients WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed)?
        .ok_or_else(unknown)?;
    let account = AccountId::new(&account).map_err(|e| corrupt("client", id.as_str(), e))?;
    let account = lock_account(conn, &account).await?;
    let clients = clients_of(conn, &account).await?;
    // Deleted between the two reads: as unknown as before.
    let current = clients
        .iter()
        .find(|c| c.id() == id)
        .cloned()
        .ok_or_else(unknown)?;
    Ok((account, current, clients))
}

/// How many fresh ids are tried before giving up (they are 96 random bits).
const ID_ATTEMPTS: usize = 4;

/// Inserts a client of `account` (whose row the caller has locked).
async fn insert_client_rows(
    conn: &mut PgConnection,
    account: &Account,
    spec: ClientSpec,
    credential: NewCredential,
    max_grants: usize,
) -> Result<(Arc<Client>, Option<PlainCredential>), ManageError> {
    let mut credential = Some(credential);
    // Made once: a generated id already taken is retried with the same credential.
    let mut made: Option<(Credentials, Option<PlainCredential>)> = None;
    for _ in 0..ID_ATTEMPTS {
        let id = match &spec.id {
            Some(id) => id.clone(),
            None => new_client_id()?,
        };
        let (credentials, plain) = match (&made, credential.take()) {
            (Some(made), _) => made.clone(),
            (None, Some(given)) => made.insert(given.resolve(&id, spec.kind)?).clone(),
            (None, None) => return Err(ManageError::RandomSource),
        };
        let client = Client::build_limited(id.clone(), &spec, account, credentials, max_grants)?;
        let row = ClientRow::of(&client);
        if !row.insert(conn).await? {
            if spec.id.is_some() {
                return Err(ManageError::duplicate_client(&id));
            }
            continue;
        }
        if !insert_digests(conn, &id, client.credentials()).await? {
            return Err(credential_taken(&id, spec.kind).into());
        }
        return Ok((Arc::new(client), plain));
    }
    Err(ManageError::RandomSource)
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn client_by_key(&self, digest: &KeyDigest) -> Result<Option<Arc<Client>>, StoreError> {
        Ok(self.resolve_key(digest).await?.map(|r| r.client))
    }

    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        Ok(self.resolve_id(id).await?.map(|r| r.client))
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, StoreError> {
        let row = sqlx::query(&format!("{SELECT_ACCOUNT} WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| account_from(&row).map(Arc::new)).transpose()
    }

    async fn resolve_key(&self, digest: &KeyDigest) -> Result<Option<Resolved>, StoreError> {
        self.one_client(sqlx::query(BY_DIGEST).bind(&digest.as_bytes()[..]))
            .await
    }

    async fn resolve_id(&self, id: &ClientId) -> Result<Option<Resolved>, StoreError> {
        self.one_client(sqlx::query(BY_ID).bind(id.as_str())).await
    }
}

#[async_trait]
impl ManagedStore for PostgresStore {
    async fn list_accounts(&self) -> Result<Vec<Arc<Account>>, ManageError> {
        let rows = sqlx::query(&format!("{SELECT_ACCOUNT} ORDER BY id COLLATE \"C\""))
            .fetch_all(&self.pool)
            .await
            .map_err(failed)?;
        Ok(rows
            .iter()
            .map(|row| account_from(row).map(Arc::new))
            .collect::<Result<_, _>>()?)
    }

    async fn create_account(&self, account: Account) -> Result<CreatedAccount, ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            insert_account_row(&mut tx, &account).await?;
            let mut made = Vec::with_capacity(2);
            for spec in [
                ClientSpec::javascript("Default JavaScript client"),
                ClientSpec::native("Default native client"),
            ] {
                let (client, plain) = insert_client_rows(
                    &mut tx,
                    &account,
                    spec,
                    NewCredential::Generate,
                    self.max_grants,
                )
                .await?;
                let credential = plain.ok_or(ManageError::RandomSource)?;
                made.push(CreatedClient { client, credential });
            }
            self.notify(&mut tx, &Invalidation::Account(account.id.clone()))
                .await?;
            let native = made.pop().ok_or(ManageError::RandomSource)?;
            let javascript = made.pop().ok_or(ManageError::RandomSource)?;
            Ok(CreatedAccount {
                account: Arc::new(account),
                javascript,
                native,
            })
        }
        .await;
        settle(tx, outcome).await
    }

    async fn update_account(
        &self,
        id: &AccountId,
        change: AccountChange,
    ) -> Result<Arc<Account>, ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let current = lock_account(&mut tx, id).await?;
            let mut next = current.clone();
            change(&mut next)?;
            if next.id != *id {
                return Err(ConfigError::InvalidField {
                    field: "account id",
                    value: next.id.to_string(),
                    reason: "an account's id cannot change",
                }
                .into());
            }
            Account::new(next.id.clone(), next.name.clone(), next.roles.clone())?;
            next.contact.validate()?;
            sqlx::query(
                "UPDATE accounts SET name = $2, roles = $3, status = $4, daily_quota = $5, \
                     contact_name = $6, contact_email = $7, contact_phone = $8 \
                 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(&next.name)
            .bind(role_names(&next.roles))
            .bind(status_text(next.status))
            .bind(quota_column(next.daily_quota))
            .bind(&next.contact.contact_name)
            .bind(&next.contact.contact_email)
            .bind(&next.contact.contact_phone)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            self.notify(&mut tx, &Invalidation::Account(id.clone()))
                .await?;
            Ok(Arc::new(next))
        }
        .await;
        settle(tx, outcome).await
    }

    async fn list_clients(&self, account: &AccountId) -> Result<Vec<Arc<Client>>, ManageError> {
        let mut conn = self.pool.acquire().await.map_err(failed)?;
        let row = sqlx::query(&format!("{SELECT_ACCOUNT} WHERE id = $1"))
            .bind(account.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(failed)?
            .ok_or_else(|| ManageError::unknown_account(account))?;
        let account = account_from(&row)?;
        clients_of(&mut conn, &account).await
    }

    async fn create_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
    ) -> Result<CreatedClient, ManageError> {
        let (client, plain) = self
            .insert_client(account, spec, NewCredential::Generate)
            .await?;
        let credential = plain.ok_or(ManageError::RandomSource)?;
        Ok(CreatedClient { client, credential })
    }

    async fn update_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        change: ClientChange,
    ) -> Result<Arc<Client>, ManageError> {
        let now = self.clock.now();
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let (account, current, clients) = lock_client(&mut tx, id).await?;
            let next = Arc::new(changed_client(&current, &account, self.max_grants, change)?);
            check_precondition(
                pre,
                &current,
                &account,
                Some(&next),
                clients.iter().map(|c| &**c),
                now,
            )?;
            ClientRow::of(&next).update(&mut tx).await?;
            self.notify(&mut tx, &Invalidation::Client(id.clone()))
                .await?;
            Ok(next)
        }
        .await;
        settle(tx, outcome).await
    }

    async fn regenerate_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        grace: Option<time::Duration>,
    ) -> Result<(Arc<Client>, PlainCredential), ManageError> {
        let now = self.clock.now();
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let (account, current, _) = lock_client(&mut tx, id).await?;
            // A new credential never locks anyone out: the caller gets it in the answer.
            let check = Precondition {
                keep_admin_access: false,
                ..pre.clone()
            };
            check_precondition(&check, &current, &account, Some(&current), [], now)?;
            let plain = fresh_credential(credential_kind(current.kind()))?;
            let grace_until = grace.filter(|g| g.is_positive()).map(|g| now + g);
            let credentials = current.credentials().rotated(plain.digest(), grace_until);
            sqlx::query("DELETE FROM credential_digests WHERE client_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            if !insert_digests(&mut tx, id, &credentials).await? {
                return Err(credential_taken(id, current.kind()).into());
            }
            let next = Arc::new(current.with_credentials(credentials));
            sqlx::query("UPDATE clients SET credential_generation = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind(ClientRow::of(&next).generation)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            self.notify(&mut tx, &Invalidation::Client(id.clone()))
                .await?;
            Ok((next, plain))
        }
        .await;
        settle(tx, outcome).await
    }

    async fn delete_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
    ) -> Result<Arc<Client>, ManageError> {
        let now = self.clock.now();
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let (account, current, clients) = lock_client(&mut tx, id).await?;
            check_precondition(
                pre,
                &current,
                &account,
                None,
                clients.iter().map(|c| &**c),
                now,
            )?;
            sqlx::query("DELETE FROM clients WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            self.notify(&mut tx, &Invalidation::Client(id.clone()))
                .await?;
            Ok(current)
        }
        .await;
        settle(tx, outcome).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_a_client_or_an_account_and_anything_else_drops_everything() {
        assert_eq!(
            parse_payload("client:web-1"),
            Invalidation::Client(ClientId::new("web-1").unwrap())
        );
        assert_eq!(
            parse_payload("account:acme"),
            Invalidation::Account(AccountId::new("acme").unwrap())
        );
        for other in ["", "client:", "client:a b", "team:x", "everything"] {
            assert_eq!(parse_payload(other), Invalidation::Everything, "{other}");
        }
    }

    #[tokio::test]
    async fn notify_channels_are_plain_identifiers() {
        let store = || PostgresStore::new(PgPool::connect_lazy("postgres://localhost/x").unwrap());
        assert!(store().notify_channel("gis_auth_test_1").is_ok());
        for bad in ["", "Upper", "with space", "semi;colon", &"a".repeat(64)] {
            let err = store().notify_channel(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    /// Needs the PostgreSQL at `DATABASE_URL` (as the `postgres` feature's tests do): with
    /// sequential scans off, a plan that still scans a table has no index for its path.
    #[tokio::test]
    async fn lookups_by_digest_and_by_id_are_index_probes() {
        let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names the test database");
        let schema = format!("t_plan_{}", std::process::id());
        let admin = PgPool::connect(&url)
            .await
            .expect("PostgreSQL at DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        let options = PgConnectOptions::from_str(&url)
            .unwrap()
            .options([("search_path", schema.as_str()), ("enable_seqscan", "off")]);
        let pool = PgPool::connect_with(options).await.unwrap();
        let planned = async {
            PostgresStore::new(pool.clone()).migrate().await?;
            let mut plans = Vec::new();
            for (query, by_id) in [(BY_DIGEST, false), (BY_ID, true)] {
                let explain = format!("EXPLAIN {query}");
                let q = sqlx::query_scalar::<_, String>(&explain);
                let q = if by_id {
                    q.bind("web")
                } else {
                    q.bind(vec![0u8; 32])
                };
                plans.push(q.fetch_all(&pool).await.map_err(unavailable)?);
            }
            Ok::<_, StoreError>(plans)
        }
        .await;
        pool.close().await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
        for plan in planned.unwrap() {
            assert!(
                !plan.iter().any(|line| line.contains("Seq Scan")),
                "{}",
                plan.join("\n")
            );
            assert!(plan.iter().any(|line| line.contains("clients_pkey")));
        }
    }

    #[test]
    fn the_shipped_migrations_are_ordered_and_unique() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        assert!(MIGRATIONS.iter().all(|m| !m.2.trim().is_empty()));
    }
}
