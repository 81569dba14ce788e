//! [`RedisUsageCounter`] (feature `redis`): daily quotas and usage statistics in Redis, exact
//! across every instance that shares it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gis_auth::AuthLayer;
//! use gis_auth::policy::RouteTable;
//! use gis_auth::limits::RedisRateLimiter;
//! use gis_auth::store::InMemoryStore;
//! use gis_auth::limits::{RedisUsageCounter, redis_connection};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = redis_connection("redis://127.0.0.1:6379").await?;
//! let layer = AuthLayer::new(Arc::new(InMemoryStore::new()), RouteTable::new())
//!     .usage_counter(Arc::new(RedisUsageCounter::new(redis.clone())))
//!     .shared_rate_limiter(Arc::new(RedisRateLimiter::new(redis)));
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisResult, Script};
use async_trait::async_trait;
use time::{Date, OffsetDateTime};

use super::memory::DEFAULT_RETENTION_DAYS;
use super::rate::whole_seconds_up;
use super::redis_gcra::{GCRA_FUNCTION, GcraArgs, account_key, client_key, micros_now};
use super::usage::{Charge, Charged, DailyUsage, RateLimited, UsageCounter};
use crate::client::{AccountId, ClientId};
use crate::clock::{Clock, SystemClock};
use crate::error::BackendError;
use crate::rule::Rule;

/// The prefix of every key the counter and the rate limiter write, unless told otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "gis-auth:";

/// How long one Redis call may take before it counts as failed, unless told otherwise.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Lua numbers are doubles: amounts are exact up to 2^53 milli-transactions (nine thousand
/// billion transactions a day), and larger ones are capped there.
pub(super) const MAX_EXACT: u64 = 1 << 53;

/// The atomic increment-and-compare against the daily and the monthly quota, the client's
/// statistics and the expiries, in one step; first the request's rate limits, if it is given
/// any, with the GCRA step of [`RedisRateLimiter`](super::RedisRateLimiter) on the same keys.
static CHARGE: LazyLock<Script> = LazyLock::new(|| {
    let body = r"
-- KEYS[1]: the account's usage hash of the day; KEYS[2]: its usage total of the month;
-- KEYS[3], KEYS[4]: the client's and the account's rate-limit keys ('' for no limit)
-- ARGV: client, cost, requests, daily limit ('' for none), monthly limit ('' for none),
--       enforce ('1'/'0'), seconds to keep the day, seconds to keep the month,
--       now (us since 1970), the client's GCRA interval and tolerance, the account's (us),
--       then the report-only rules that would have refused the request
local key, month_key, client = KEYS[1], KEYS[2], ARGV[1]
local limits = {
  {KEYS[3], ARGV[10], ARGV[11], 1, '$CLIENT_RULE'},
  {KEYS[4], ARGV[12], ARGV[13], 2, '$ACCOUNT_RULE'},
}
for _, limit in ipairs(limits) do
  if limit[1] ~= '' then
    local wait = gcra(limit[1], tonumber(ARGV[9]), tonumber(limit[2]), tonumber(limit[3]))
    if wait > 0 then
      redis.call('HINCRBY', key, 'refused:' .. client .. ':' .. limit[5], 1)
      redis.call('EXPIRE', key, ARGV[7])
      return {0, 0, 0, 0, 0, limit[4], string.format('%.0f', wait)}
    end
  end
end
local cost = tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', key, 'used') or '0')
local month = tonumber(redis.call('GET', month_key) or '0')
local fits_day = ARGV[4] == '' or used + cost <= tonumber(ARGV[4])
local fits_month = ARGV[5] == '' or month + cost <= tonumber(ARGV[5])
local fits = fits_day and fits_month
local admitted = fits or ARGV[6] == '0'
if admitted then
  used = redis.call('HINCRBY', key, 'used', ARGV[2])
  month = redis.call('INCRBY', month_key, ARGV[2])
  redis.call('HINCRBY', key, 'requests:' .. client, ARGV[3])
  redis.call('HINCRBY', key, 'cost:' .. client, ARGV[2])
  for i = 14, #ARGV do
    redis.call('HINCRBY', key, 'shadowed:' .. client .. ':' .. ARGV[i], 1)
  end
  if not fits then
    redis.call('HINCRBY', key, 'shadowed:' .. client .. ':quota', 1)
  end
else
  redis.call('HINCRBY', key, 'refused:' .. client .. ':quota_exceeded', 1)
end
redis.call('EXPIRE', key, ARGV[7])
if redis.call('EXISTS', month_key) == 1 then
  redis.call('EXPIRE', month_key, ARGV[8])
end
return {admitted and 1 or 0, fits_day and 0 or 1, used, fits_month and 0 or 1, month, 0, '0'}
"
    .replace("$CLIENT_RULE", Rule::RateLimit.as_str())
    .replace("$ACCOUNT_RULE", Rule::AccountRateLimit.as_str());
    Script::new(&[GCRA_FUNCTION, &body].concat())
});

/// What the charge script answers: admitted, over the day, the day's usage, over the month,
/// the month's usage, which rate limit refused (0 none, 1 the client's, 2 the account's) and
/// the microseconds to wait for it.
type ScriptAnswer = (i64, i64, i64, i64, i64, i64, u64);

/// Connects to Redis at `url` for a [`RedisUsageCounter`] and a
/// [`RedisRateLimiter`](crate::limits::RedisRateLimiter), which can share the connection.
/// It reconnects by itself after a failure; each attempt and each call is given one
/// second. Fails when Redis cannot be reached now.
pub async fn redis_connection(url: &str) -> Result<ConnectionManager, BackendError> {
    let client = ::redis::Client::open(url).map_err(|e| unavailable("Redis", &e))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|e| unavailable("Redis", &e))
}

fn unavailable(what: &str, e: &dyn std::fmt::Display) -> BackendError {
    BackendError::new(format!("{what}: {e}"))
}

/// A Redis connection as the counter and the rate limiter use it: a key prefix, a time
/// limit per call, and one warning when Redis goes away (and a note when it is back)
/// rather than one per request.
#[derive(Clone)]
pub(crate) struct RedisLink {
    conn: ConnectionManager,
    pub(crate) prefix: Arc<str>,
    pub(crate) timeout: Duration,
    pub(crate) fail_open: bool,
    away: Arc<AtomicBool>,
    what: &'static str,
}

impl RedisLink {
    pub(crate) fn new(conn: ConnectionManager, what: &'static str) -> Self {
        Self {
            conn,
            prefix: Arc::from(DEFAULT_KEY_PREFIX),
            timeout: DEFAULT_REDIS_TIMEOUT,
            fail_open: false,
            away: Arc::new(AtomicBool::new(false)),
            what,
        }
    }

    /// Runs one call on the connection within the time limit.
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Result<T, BackendError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let outcome = match tokio::time::timeout(self.timeout, f(self.conn.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(unavailable(self.what, &e)),
            Err(_) => Err(BackendError::new(format!(
                "{}: Redis did not answer within {} ms",
                self.what,
                self.timeout.as_millis()
            ))),
        };
        match &outcome {
            Ok(_) => {
                if self.away.swap(false, Ordering::Relaxed) {
                    tracing::info!(what = self.what, "Redis answers again");
                }
            }
            Err(e) => {
                if !self.away.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        what = self.what,
                        error = %e,
                        fail_open = self.fail_open,
                        "Redis is unreachable: {}",
                        if self.fail_open {
                            "requests are let through unlimited until it is back (fail open)"
                        } else {
                            "requests get 503 until it is back (fail closed)"
                        }
                    );
                } else {
                    tracing::debug!(what = self.what, error = %e, "Redis call failed");
                }
            }
        }
        outcome
    }
}

/// Daily quotas and usage statistics in Redis, shared by every instance. Cloning is
/// cheap: clones share the connection.
///
/// Each account has one hash per UTC day, `<prefix>usage:<account>:<YYYY-MM-DD>`, holding
/// the day's usage (`used`) and each client's statistics (`requests:<client>`,
/// `cost:<client>`, `refused:<client>:<reason>`, `shadowed:<client>:<rule>`), and one
/// total per UTC calendar month, `<prefix>usage-month:<account>:<YYYY-MM>`, kept until the
/// end of the following month. A charge is one round trip: one Lua script (sent by digest,
/// `EVALSHA`) compares the usage with the daily and the monthly quota and increments both
/// or neither, counts the request for the client and sets the hash to expire at the end of
/// the retention window (the end of the day plus
/// [`retention_days`](RedisUsageCounter::retention_days) − 1 days, measured on the
/// counter's clock). Redis runs a script alone, so any number of concurrent requests from
/// any number of instances admit exactly as many as fit.
///
/// Behind a layer with a shared rate limiter, the same script applies the request's rate
/// limits first ([`rate_limits_in_charge`](RedisUsageCounter::rate_limits_in_charge), on by
/// default): the client's, then its account's, with the GCRA and the keys of
/// [`RedisRateLimiter`](super::RedisRateLimiter) under the counter's prefix and on its clock,
/// so a request costs one round trip, not three, and instances that ask a
/// `RedisRateLimiter` with the same prefix share the limits. A request a limit refuses is not
/// charged; its refusal is counted in the same call.
///
/// When Redis cannot be reached, or does not answer within the
/// [`timeout`](RedisUsageCounter::timeout), a charge fails and the layer answers 503
/// (**fail closed**, the default). [`fail_open`](RedisUsageCounter::fail_open) admits such
/// requests instead, uncounted and unlimited for as long as Redis is away: for operators who
/// put availability above quotas. The connection comes back by itself either way.
#[derive(Clone)]
pub struct RedisUsageCounter {
    link: RedisLink,
    retention: u16,
    clock: Arc<dyn Clock>,
    rate_limits: bool,
}

impl std::fmt::Debug for RedisUsageCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisUsageCounter")
            .field("prefix", &self.link.prefix)
            .field("retention_days", &self.retention)
            .field("timeout", &self.link.timeout)
            .field("fail_open", &self.link.fail_open)
            .field("rate_limits_in_charge", &self.rate_limits)
            .finish_non_exhaustive()
    }
}

impl RedisUsageCounter {
    /// A counter on `conn` (see [`redis_connection`]): keys under [`DEFAULT_KEY_PREFIX`],
    /// [`DEFAULT_RETENTION_DAYS`] days kept, [`DEFAULT_REDIS_TIMEOUT`], fail closed, on the
    /// system clock.
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            link: RedisLink::new(conn, "usage counter"),
            retention: DEFAULT_RETENTION_DAYS,
            clock: Arc::new(SystemClock),
            rate_limits: true,
        }
    }

    /// Connects to Redis at `url` (see [`redis_connection`]).
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        Ok(Self::new(redis_connection(url).await?))
    }

    /// Puts every key under `prefix` (`gis-auth:` by default), so that several services
    /// can share one Redis.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.link.prefix = Arc::from(prefix.into());
        self
    }

    /// Keeps `days` days of usage (at least 2: today and yesterday).
    #[must_use]
    pub fn retention_days(mut self, days: u16) -> Self {
        self.retention = days.max(2);
        self
    }

    /// How long one call may take before it counts as failed (1 s by default; keep it
    /// below the layer's store budget so that fail-open mode answers in time).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.link.timeout = timeout;
        self
    }

    /// Whether a charge that cannot reach Redis admits the request (uncounted, with no
    /// quota) instead of failing it with 503. Off by default: turning it on trades the
    /// quotas for availability while Redis is away.
    #[must_use]
    pub fn fail_open(mut self, yes: bool) -> Self {
        self.link.fail_open = yes;
        self
    }

    /// Reads the UTC day, measures the retention window, and times the rate limits it
    /// applies, on `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether the counter applies a request's rate limits in its charge script (on by
    /// default; see [`UsageCounter::applies_rate_limits`]): a layer with a shared rate
    /// limiter then asks the counter alone, one call per request. Turn it off to keep the
    /// layer's shared limiter in charge, such as a limiter that keeps its state elsewhere.
    #[must_use]
    pub fn rate_limits_in_charge(mut self, yes: bool) -> Self {
        self.rate_limits = yes;
        self
    }

    pub(super) fn key(&self, account: &AccountId, day: Date) -> String {
        format!("{}usage:{account}:{day}", self.link.prefix)
    }

    pub(super) fn month_key(&self, account: &AccountId, day: Date) -> String {
        format!(
            "{}usage-month:{account}:{:04}-{:02}",
            self.link.prefix,
            day.year(),
            day.month() as u8
        )
    }

    /// Seconds from now until the total of `day`'s month is dropped: the end of the month
    /// after it.
    pub(super) fn keep_month_seconds(&self, day: Date) -> i64 {
        let first = day.replace_day(1).unwrap_or(day);
        let until = first
            .saturating_add(time::Duration::days(62))
            .replace_day(1)
            .unwrap_or(first)
            .midnight()
            .assume_utc();
        (until - self.now()).whole_seconds().max(1)
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now().to_offset(time::UtcOffset::UTC)
    }

    /// The oldest day still kept at `now`.
    fn oldest_kept(&self, now: OffsetDateTime) -> Date {
        now.date()
            .saturating_sub(time::Duration::days(i64::from(self.retention) - 1))
    }

    /// Seconds from now until `day`'s hash is dropped: the end of the retention window.
    pub(super) fn keep_seconds(&self, day: Date) -> i64 {
        let until = day
            .saturating_add(time::Duration::days(i64::from(self.retention)))
            .midnight()
            .assume_utc();
        (until - self.now()).whole_seconds().max(1)
    }
}

/// One client's statistics as a hash holds them.
#[derive(Default)]
struct Counts {
    requests: u64,
    cost: u64,
    refusals: BTreeMap<String, u64>,
    shadowed: BTreeMap<String, u64>,
}

fn counts_of(fields: Vec<(String, i64)>) -> BTreeMap<String, Counts> {
    let mut clients: BTreeMap<String, Counts> = BTreeMap::new();
    for (field, value) in fields {
        let value = u64::try_from(value).unwrap_or(0);
        let mut parts = field.splitn(3, ':');
        let (Some(kind), Some(client)) = (parts.next(), parts.next()) else {
            continue;
        };
        let rule = parts.next();
        if !matches!(
            (kind, rule),
            ("requests" | "cost", None) | ("refused" | "shadowed", Some(_))
        ) {
            continue;
        }
        let counts = clients.entry(client.to_owned()).or_default();
        match (kind, rule) {
            ("requests", _) => counts.requests = value,
            ("cost", _) => counts.cost = value,
            ("refused", Some(reason)) => {
                counts.refusals.insert(reason.to_owned(), value);
            }
            (_, Some(rule)) => {
                counts.shadowed.insert(rule.to_owned(), value);
            }
            _ => {}
        }
    }
    clients
}

#[async_trait]
impl UsageCounter for RedisUsageCounter {
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, BackendError> {
        let key = self.key(charge.account, charge.day);
        let month_key = self.month_key(charge.account, charge.day);
        let cost = charge.cost.min(MAX_EXACT);
        let limit = |limit: Option<u64>| {
            limit
                .map(|l| l.min(MAX_EXACT).to_string())
                .unwrap_or_default()
        };
        let (daily, monthly) = (limit(charge.limit), limit(charge.monthly_limit));
        let keep = self.keep_seconds(charge.day);
        let keep_month = self.keep_month_seconds(charge.day);
        let rates = charge.rate_limits;
        let prefix = &*self.link.prefix;
        let client_rate = rates
            .client
            .map(|l| (client_key(prefix, charge.client, l), GcraArgs::of(l)));
        let account_rate = rates
            .account
            .map(|l| (account_key(prefix, charge.account, l), GcraArgs::of(l)));
        let now = if rates.is_empty() {
            0
        } else {
            micros_now(&*self.clock)
        };
        let called = self
            .link
            .call(|mut conn| async move {
                let mut script = CHARGE.key(&key);
                script.key(&month_key);
                for rate in [&client_rate, &account_rate] {
                    script.key(rate.as_ref().map_or("", |(key, _)| key.as_str()));
                }
                script
                    .arg(charge.client.as_str())
                    .arg(cost)
                    .arg(charge.requests.min(MAX_EXACT))
                    .arg(daily)
                    .arg(monthly)
                    .arg(if charge.enforce { "1" } else { "0" })
                    .arg(keep)
                    .arg(keep_month)
                    .arg(now);
                for rate in [&client_rate, &account_rate] {
                    match rate {
                        Some((_, args)) => script.arg(args.interval).arg(args.tolerance),
                        None => script.arg("").arg(""),
                    };
                }
                for rule in charge.shadowed {
                    script.arg(rule.as_str());
                }
                script.invoke_async::<ScriptAnswer>(&mut conn).await
            })
            .await;
        let amount = |n: i64| u64::try_from(n).unwrap_or(0);
        match called {
            Ok((_, _, _, _, _, refused @ (1 | 2), wait)) => {
                let wait = whole_seconds_up(Duration::from_micros(wait));
                Ok(Charged::over_rate(if refused == 1 {
                    RateLimited::Client(wait)
                } else {
                    RateLimited::Account(wait)
                }))
            }
            Ok((admitted, over, used, over_monthly, monthly_used, _, _)) => {
                Ok(Charged::new(admitted == 1, over == 1, amount(used))
                    .monthly(over_monthly == 1, amount(monthly_used)))
            }
            Err(_) if self.link.fail_open => Ok(Charged::new(true, false, 0)),
            Err(e) => Err(e),
        }
    }

    fn applies_rate_limits(&self) -> bool {
        self.rate_limits
    }

    async fn record_refusal(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: Date,
        rule: Rule,
    ) -> Result<(), BackendError> {
        let key = self.key(account, day);
        let field = format!("refused:{client}:{}", rule.as_str());
        let keep = self.keep_seconds(day);
        let recorded = self
            .link
            .call(|mut conn| async move {
                ::redis::pipe()
                    .atomic()
                    .hincr(&key, field, 1)
                    .ignore()
                    .expire(&key, keep)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await;
        match recorded {
            Err(_) if self.link.fail_open => Ok(()),
            other => other,
        }
    }

    async fn used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        if day < self.oldest_kept(self.now()) {
            return Ok(0);
        }
        let key = self.key(account, day);
        let used: Option<i64> = self
            .link
            .call(|mut conn| async move {
                ::redis::cmd("HGET")
                    .arg(&key)
                    .arg("used")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(used.and_then(|u| u64::try_from(u).ok()).unwrap_or(0))
    }

    async fn monthly_used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        let key = self.month_key(account, day);
        let used: Option<i64> =
            self.link
                .call(|mut conn| async move {
                    ::redis::cmd("GET").arg(&key).query_async(&mut conn).await
                })
                .await?;
        Ok(used.and_then(|u| u64::try_from(u).ok()).unwrap_or(0))
    }

    async fn usage(
        &self,
        account: &AccountId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyUsage>, BackendError> {
        let now = self.now();
        // Days past the retention window are gone; no request is charged to a day after
        // tomorrow (tomorrow covers clocks a little ahead).
        let from = from.max(self.oldest_kept(now));
        let to = to.min(now.date().saturating_add(time::Duration::days(1)));
        if from > to {
            return Ok(Vec::new());
        }
        let mut days = Vec::new();
        let mut day = from;
        while day <= to {
            days.push(day);
            day = day.saturating_add(time::Duration::days(1));
        }
        let keys: Vec<String> = days.iter().map(|d| self.key(account, *d)).collect();
        let hashes: Vec<Vec<(String, i64)>> = self
            .link
            .call(|mut conn| async move {
                let mut pipe = ::redis::pipe();
                for key in &keys {
                    pipe.cmd("HGETALL").arg(key);
                }
                pipe.query_async(&mut conn).await
            })
            .await?;
        let mut out = Vec::new();
        for (day, fields) in days.into_iter().zip(hashes) {
            for (client, counts) in counts_of(fields) {
                let Ok(client) = ClientId::new(&client) else {
                    continue;
                };
                out.push(DailyUsage {
                    day,
                    client,
                    requests: counts.requests,
                    cost: counts.cost,
                    refusals: counts.refusals,
                    shadowed: counts.shadowed,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_fields_parse_into_per_client_counts() {
        let fields = vec![
            ("used".to_owned(), 7_000),
            ("requests:web".to_owned(), 3),
            ("cost:web".to_owned(), 3_000),
            ("refused:web:quota_exceeded".to_owned(), 2),
            ("shadowed:web:origins".to_owned(), 1),
            ("refused:batch:ips".to_owned(), 4),
            ("unknown:field:with:colons".to_owned(), 9),
        ];
        let counts = counts_of(fields);
        assert_eq!(counts.len(), 2);
        let web = &counts["web"];
        assert_eq!((web.requests, web.cost), (3, 3_000));
        assert_eq!(web.refusals["quota_exceeded"], 2);
        assert_eq!(web.shadowed["origins"], 1);
        let batch = &counts["batch"];
        assert_eq!((batch.requests, batch.cost), (0, 0));
        assert_eq!(batch.refusals["ips"], 4);
    }
}
