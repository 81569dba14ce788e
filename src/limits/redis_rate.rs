//! [`RedisRateLimiter`] (feature `redis`): per-client rate limits held in Redis, so that a
//! client's limit holds across every instance of a service rather than per instance.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gis_auth::client::{ClientId, RateLimit};
//! use gis_auth::limits::{RedisRateLimiter, SharedRateLimiter};
//! use gis_auth::limits::redis_connection;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limiter = RedisRateLimiter::new(redis_connection("redis://127.0.0.1:6379").await?);
//! let web = ClientId::new("web-map")?;
//! let verdict = limiter.check(&web, RateLimit::new(2, 3)?).await?;
//! assert!(verdict.is_allowed(), "the first request of a burst passes");
//! # Ok(()) }
//! ```

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::Script;
use ::redis::aio::ConnectionManager;
use async_trait::async_trait;

use super::rate::{RateVerdict, SharedRateLimiter, whole_seconds_up};
use super::redis::RedisLink;
use super::redis_gcra::{GCRA_FUNCTION, GcraArgs, account_key, client_key, micros_now};
use crate::client::{AccountId, ClientId, RateLimit};
use crate::clock::{Clock, SystemClock};
use crate::error::BackendError;

/// One GCRA step on KEYS[1] (see [`GCRA_FUNCTION`]): `{1, '0'}` when allowed, or `{0, wait}`
/// with the microseconds to wait.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{GCRA_FUNCTION}
-- KEYS[1]: the limit's theoretical arrival time, in microseconds since 1970
-- ARGV: now, emission interval (1 s / rate), burst tolerance (burst x interval), all in us
local wait = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if wait > 0 then
  return {{0, string.format('%.0f', wait)}}
end
return {{1, '0'}}
"
    ))
});

/// Per-client rate limits shared through Redis. Cloning is cheap: clones share the
/// connection.
///
/// It is the same GCRA as [`ClientRateLimiter`](super::ClientRateLimiter): each client and
/// limit has one key, `<prefix>rate:<client>:<per_second>:<burst>` (and each account's
/// shared limit one, `<prefix>account-rate:<account>:<per_second>:<burst>`), holding the theoretical
/// arrival time of its next request in microseconds, and one Lua script (one round trip,
/// `EVALSHA`) checks and moves it. A changed limit is a new key, so it starts with a full
/// burst, and a key expires once its limiter has refilled.
///
/// Time comes from the limiter's [`Clock`] (the system clock by default), so the instances
/// sharing a limit should keep their clocks in step (NTP); a skew lets a burst grow by the
/// skew times the rate.
///
/// When Redis cannot be reached, or does not answer within the
/// [`timeout`](RedisRateLimiter::timeout), the check fails and the layer answers 503 (fail
/// closed, the default); with [`fail_open`](RedisRateLimiter::fail_open) requests pass
/// unlimited while Redis is away.
#[derive(Clone)]
pub struct RedisRateLimiter {
    link: RedisLink,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.link.prefix)
            .field("timeout", &self.link.timeout)
            .field("fail_open", &self.link.fail_open)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// A limiter on `conn` (see [`redis_connection`](crate::limits::redis_connection)):
    /// keys under [`DEFAULT_KEY_PREFIX`](crate::limits::DEFAULT_KEY_PREFIX), a 1 s
    /// timeout, fail closed, on the system clock.
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            link: RedisLink::new(conn, "rate limiter"),
            clock: Arc::new(SystemClock),
        }
    }

    /// Puts every key under `prefix` (`gis-auth:` by default).
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.link.prefix = Arc::from(prefix.into());
        self
    }

    /// How long one check may take before it counts as failed (1 s by default).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.link.timeout = timeout;
        self
    }

    /// Whether a check that cannot reach Redis lets the request through (unlimited)
    /// instead of failing it with 503. Off by default.
    #[must_use]
    pub fn fail_open(mut self, yes: bool) -> Self {
        self.link.fail_open = yes;
        self
    }

    /// Reads the time from `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl RedisRateLimiter {
    /// One GCRA step on `key` for `limit`.
    async fn gcra(&self, key: String, limit: RateLimit) -> Result<RateVerdict, BackendError> {
        let GcraArgs {
            interval,
            tolerance,
        } = GcraArgs::of(limit);
        let now = micros_now(&*self.clock);
        let checked = self
            .link
            .call(|mut conn| async move {
                GCRA.key(&key)
                    .arg(now)
                    .arg(interval)
                    .arg(tolerance)
                    .invoke_async::<(i64, u64)>(&mut conn)
                    .await
            })
            .await;
        match checked {
            Ok((1, _)) => Ok(RateVerdict::Allow),
            Ok((_, wait)) => Ok(RateVerdict::RetryAfter(whole_seconds_up(
                Duration::from_micros(wait),
            ))),
            Err(_) if self.link.fail_open => Ok(RateVerdict::Allow),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl SharedRateLimiter for RedisRateLimiter {
    async fn check(
        &self,
        client: &ClientId,
        limit: RateLimit,
    ) -> Result<RateVerdict, BackendError> {
        self.gcra(client_key(&self.link.prefix, client, limit), limit)
            .await
    }

    async fn check_account(
        &self,
        account: &AccountId,
        limit: RateLimit,
    ) -> Result<RateVerdict, BackendError> {
        self.gcra(account_key(&self.link.prefix, account, limit), limit)
            .await
    }
}
