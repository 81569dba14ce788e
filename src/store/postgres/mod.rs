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

mod audit;
mod listen;
mod manage;
mod revoked;
mod rows;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::manage::ManageError;
use super::{BackendError, ClientStore, Resolved};
use crate::client::{Account, AccountId, Client, ClientId, DEFAULT_MAX_GRANTS, KeyDigest};
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::events::EventSink;
use rows::{BY_DIGEST, BY_ID, SELECT_ACCOUNT, account_from, client_from};

pub use listen::ChangeListener;

/// The channel changes are announced on unless told otherwise.
pub const DEFAULT_NOTIFY_CHANNEL: &str = "gis_auth_changes";

/// The schema migrations shipped with the crate: version, description, SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        20260601000001,
        "clients and accounts",
        include_str!("../../../migrations/20260601000001_clients_and_accounts.sql"),
    ),
    (
        20261204000001,
        "account plans",
        include_str!("../../../migrations/20261204000001_account_plans.sql"),
    ),
    (
        20261204000002,
        "revoked tokens",
        include_str!("../../../migrations/20261204000002_revoked_tokens.sql"),
    ),
    (
        20261204000003,
        "audit log",
        include_str!("../../../migrations/20261204000003_audit_log.sql"),
    ),
];

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
///   [`Precondition`](crate::store::Precondition)s (the ETag and the lock-out guard)
///   hold when the change commits.
/// - Revoked access tokens are kept by `jti` until they expire
///   ([`PostgresStore::revoke_token`]), and announced on the same channel.
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
    events: Option<Arc<dyn EventSink>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.pool.size())
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: sqlx::Error) -> BackendError {
    BackendError::new(format!("PostgreSQL: {e}"))
}

fn failed(e: sqlx::Error) -> ManageError {
    ManageError::Backend(unavailable(e))
}

/// A stored value that does not load (edited by hand?): named by its client or account.
fn corrupt(what: &str, id: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::new(format!("stored {what} `{id}` does not load: {e}"))
}

impl PostgresStore {
    /// Connects to the database at `url` with a pool of up to 10 connections that gives up
    /// acquiring one after 2 seconds. Nothing is created: see [`PostgresStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
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
            events: None,
        }
    }

    /// Tells `sink` of the changes this instance makes (a credential regenerated, a client
    /// or an account deactivated).
    #[must_use]
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
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
    pub async fn migrate(&self) -> Result<(), BackendError> {
        let migrator = Migrator::new(Shipped)
            .await
            .map_err(|e| BackendError::new(format!("PostgreSQL migrations: {e}")))?;
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| BackendError::new(format!("PostgreSQL migrations: {e}")))
    }

    /// The one client a query on [`select_clients!`] finds, with its account.
    async fn one_client(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Option<Resolved>, BackendError> {
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

#[async_trait]
impl ClientStore for PostgresStore {
    async fn client_by_key(&self, digest: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        Ok(self.resolve_key(digest).await?.map(|r| r.client))
    }

    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        Ok(self.resolve_id(id).await?.map(|r| r.client))
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        let row = sqlx::query(&format!("{SELECT_ACCOUNT} WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| account_from(&row).map(Arc::new)).transpose()
    }

    async fn resolve_key(&self, digest: &KeyDigest) -> Result<Option<Resolved>, BackendError> {
        self.one_client(sqlx::query(BY_DIGEST).bind(&digest.as_bytes()[..]))
            .await
    }

    async fn resolve_id(&self, id: &ClientId) -> Result<Option<Resolved>, BackendError> {
        self.one_client(sqlx::query(BY_ID).bind(id.as_str())).await
    }
}

#[cfg(test)]
#[path = "../../../tests/local_services/mod.rs"]
mod local_services;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notify_channels_are_plain_identifiers() {
        let store = || PostgresStore::new(PgPool::connect_lazy("postgres://localhost/x").unwrap());
        assert!(store().notify_channel("gis_auth_test_1").is_ok());
        for bad in ["", "Upper", "with space", "semi;colon", &"a".repeat(64)] {
            let err = store().notify_channel(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    /// Needs a PostgreSQL, as the `postgres` feature's tests do (`DATABASE_URL`, the
    /// machine's, or a private one: see tests/local_services): with sequential scans off, a
    /// plan that still scans a table has no index for its path.
    #[tokio::test]
    async fn lookups_by_digest_and_by_id_are_index_probes() {
        let url = local_services::database_url();
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
            Ok::<_, BackendError>(plans)
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
