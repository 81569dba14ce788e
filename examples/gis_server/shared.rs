//! `--store` and `--redis`: state the server shares with other instances of itself, so that
//! several of them can run behind one load balancer.
//!
//! - `--store FILE` keeps clients in a clients file ([`FileStore`]): changes made through
//!   the admin API are written back, and edits made by others are picked up as they land.
//! - `--store postgres://…` (feature `postgres`) keeps them in PostgreSQL: the schema is
//!   migrated at start, lookups go through a [`CachedStore`], and a change made by any
//!   instance drops the others' cached entries as it commits.
//! - `--redis redis://…` (feature `redis`) counts daily quotas and enforces rate limits in
//!   Redis, exactly across every instance (fail closed: 503 while Redis is away). With
//!   `--quota-leases`, each instance takes blocks of a quota and charges them in memory
//!   (`LeasedUsageCounter`): no round trip per request; the blocks held go back on Ctrl-C.
//!
//! A store with no account yet gets the demo account, whose credentials are printed once,
//! by whichever instance starts first.
//!
//! Instances that should accept each other's access tokens sign them with one key. The
//! asymmetric way, and the one to prefer: give each instance the same `--signing-key FILE`
//! (an Ed25519 or P-256 private key in PKCS#8 PEM); its kid is the key's RFC 7638
//! thumbprint unless `--signing-key-id` names it, so every instance names it alike, and
//! `/.well-known/jwks.json` publishes its public half for other services. The symmetric
//! way stays for setups that cannot hand out a file: one secret in the environment (never
//! a flag, so it does not show in `ps`), `GIS_TOKEN_SECRET`, at least 32 bytes; an HS256
//! key is never published, so nothing but these instances can verify its tokens (the JWK
//! set is empty). Giving both is an error: which key signs must never be a guess. With
//! neither, each instance signs with a fresh Ed25519 key of its own (`app::KeySource`).

use std::any::Any;
use std::error::Error;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use gis_auth::BackendError;
use gis_auth::client::{Account, AccountId, Role, RoleSet};
use gis_auth::events::EventSink;
use gis_auth::limits::SharedRateLimiter;
use gis_auth::limits::UsageCounter;
#[cfg(feature = "postgres")]
use gis_auth::store::{CachedStore, PostgresStore};
use gis_auth::store::{FileStore, GeneratedCredential, ManageError, ManagedStore};
#[cfg(feature = "postgres")]
use gis_auth::token::PostgresRevocations;
use gis_auth::token::Revocations;

/// A store opened from `--store`, with what has to stay alive while it serves.
pub struct OpenedStore {
    /// The store the server reads and manages clients in.
    pub store: Arc<dyn ManagedStore>,
    /// The credentials generated while opening it (the demo account's, say).
    pub generated: Vec<GeneratedCredential>,
    /// What it is, for the startup message.
    pub description: &'static str,
    /// The deny list of revoked tokens shared through it (PostgreSQL); `None`: each
    /// instance keeps its own.
    pub revocations: Option<Arc<dyn Revocations>>,
    /// The change listener or the file watch.
    _keep: Box<dyn Any + Send>,
}

/// Opens `--store`: a `postgres://` URL or the path of a clients file.
pub async fn open_store(
    target: &str,
    events: Option<Arc<dyn EventSink>>,
) -> Result<OpenedStore, Box<dyn Error>> {
    let mut opened = if target.starts_with("postgres://") || target.starts_with("postgresql://") {
        open_postgres(target, events).await?
    } else {
        open_file(Path::new(target), events)?
    };
    if opened.store.list_accounts().await?.is_empty() {
        let demo = seed_demo(&*opened.store).await?;
        opened.generated.extend(demo);
    }
    Ok(opened)
}

#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    events: Option<Arc<dyn EventSink>>,
) -> Result<OpenedStore, Box<dyn Error>> {
    let mut postgres = PostgresStore::connect(url).await?;
    if let Some(sink) = events {
        postgres = postgres.event_sink(sink);
    }
    postgres.migrate().await?;
    let store = Arc::new(CachedStore::new(postgres.clone()));
    let cache = store.clone();
    let listener = postgres
        .listen(move |change| cache.invalidate(&change))
        .await?;
    let revocations = Arc::new(PostgresRevocations::start(postgres).await?);
    Ok(OpenedStore {
        store,
        generated: Vec::new(),
        description: "PostgreSQL, cached; other instances' changes and token revocations \
                      apply as they commit",
        revocations: Some(revocations),
        _keep: Box::new(listener),
    })
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    _: &str,
    _: Option<Arc<dyn EventSink>>,
) -> Result<OpenedStore, Box<dyn Error>> {
    Err("`--store postgres://…` needs the `postgres` feature: \
         cargo run --features postgres,redis --example gis_server -- …"
        .into())
}

fn open_file(
    path: &Path,
    events: Option<Arc<dyn EventSink>>,
) -> Result<OpenedStore, Box<dyn Error>> {
    let mut options = FileStore::options(path);
    if let Some(sink) = events {
        options = options.event_sink(sink);
    }
    let store = Arc::new(options.open()?);
    let watch = store.watch()?;
    Ok(OpenedStore {
        generated: store.take_generated(),
        store,
        description: "a clients file, written back and reloaded when it changes",
        revocations: None,
        _keep: Box::new(watch),
    })
}

/// The demo account and its two default clients; nothing when another instance made it
/// first.
async fn seed_demo(store: &dyn ManagedStore) -> Result<Vec<GeneratedCredential>, ManageError> {
    let account = Account::new(
        AccountId::new(crate::app::DEMO_ACCOUNT)?,
        "Demo account",
        RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
    )?;
    match store.create_account(account).await {
        Ok(created) => Ok([created.javascript, created.native]
            .into_iter()
            .map(GeneratedCredential::from)
            .collect()),
        Err(ManageError::Duplicate { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// What `--redis` shares with the other instances: the quota counter and the rate limiter.
pub struct SharedLimits {
    /// Counts quotas: exactly per request, or in leased blocks (`--quota-leases`).
    pub usage: Arc<dyn UsageCounter>,
    /// Enforces rate limits.
    pub rate_limiter: Arc<dyn SharedRateLimiter>,
    /// With `--quota-leases`: gives back the blocks this instance holds, once it stops.
    pub release: Option<Release>,
}

/// Gives back what a leased counter holds and writes its statistics (run it after the
/// server has drained).
pub type Release = Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send>>;

/// The usage counter and the rate limiter of `--redis`; with `leases`, a
/// `LeasedUsageCounter` (blocks of the quota, no round trip per request) rather than a
/// `RedisUsageCounter` (one script per request).
#[cfg(feature = "redis")]
pub async fn open_redis(url: &str, leases: bool) -> Result<SharedLimits, Box<dyn Error>> {
    use gis_auth::limits::RedisRateLimiter;
    use gis_auth::limits::{LeasedUsageCounter, RedisUsageCounter, redis_connection};

    let redis = redis_connection(url).await?;
    let rate_limiter = Arc::new(RedisRateLimiter::new(redis.clone()));
    if leases {
        let leased = LeasedUsageCounter::new(redis);
        let held = leased.clone();
        return Ok(SharedLimits {
            usage: Arc::new(leased),
            rate_limiter,
            release: Some(Box::pin(async move { held.shutdown().await })),
        });
    }
    Ok(SharedLimits {
        usage: Arc::new(RedisUsageCounter::new(redis)),
        rate_limiter,
        release: None,
    })
}

#[cfg(not(feature = "redis"))]
pub async fn open_redis(_: &str, _: bool) -> Result<SharedLimits, Box<dyn Error>> {
    Err("`--redis` needs the `redis` feature: \
         cargo run --features postgres,redis --example gis_server -- …"
        .into())
}
