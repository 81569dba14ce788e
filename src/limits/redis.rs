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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisResult, Script};
use async_trait::async_trait;
use time::{Date, OffsetDateTime};

use super::memory::DEFAULT_RETENTION_DAYS;
use super::rate::whole_seconds_up;
use super::redis_gcra::{GCRA_FUNCTION, GcraArgs, account_key, client_key, micros_now};
use super::tally::field;
use super::usage::{
    ApiUsage, Charge, Charged, DailyUsage, RateLimited, Refused, SEEN_KEPT, SEEN_REPORTED, Seen,
    SeenCount, UsageCounter, last_use_minute, top_of,
};
use crate::client::{AccountId, ClientId, FastBuildHasher};
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

/// The Lua steps that note where requests came from and when a client was last used,
/// shared by the scripts of [`RedisUsageCounter`] and
/// [`LeasedUsageCounter`](super::LeasedUsageCounter): `seen_add` counts a value `by` more
/// times in a sorted set bounded at [`SEEN_KEPT`] members (the space-saving step of
/// [`TopCounts`](super::TopCounts): a new value when the set is full replaces the lowest
/// scored member and gets its score plus its own), and `last_use_raise` sets a client's
/// last use in the account's hash, only ever raising it.
pub(super) static SEEN_FUNCTIONS: LazyLock<String> = LazyLock::new(|| {
    r"
local function seen_add(key, member, by, keep)
  by = tonumber(by)
  if redis.call('ZSCORE', key, member) then
    redis.call('ZINCRBY', key, by, member)
  elseif redis.call('ZCARD', key) < $SEEN_KEPT then
    redis.call('ZADD', key, by, member)
  else
    local least = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    redis.call('ZREM', key, least[1])
    redis.call('ZADD', key, string.format('%.0f', tonumber(least[2]) + by), member)
  end
  redis.call('EXPIRE', key, keep)
end
local function last_use_raise(key, client, at, keep)
  local was = tonumber(redis.call('HGET', key, client) or '0') or 0
  if tonumber(at) > was then
    redis.call('HSET', key, client, at)
  end
  redis.call('EXPIRE', key, keep)
end
"
    .replace("$SEEN_KEPT", &SEEN_KEPT.to_string())
});

/// The atomic increment-and-compare against the daily and the monthly quota, the client's
/// statistics and the expiries, in one step; first the request's rate limits, if it is given
/// any, with the GCRA step of [`RedisRateLimiter`](super::RedisRateLimiter) on the same keys.
static CHARGE: LazyLock<Script> = LazyLock::new(|| {
    let body = r"
-- KEYS[1]: the account's usage hash of the day; KEYS[2]: its usage total of the month;
-- KEYS[3], KEYS[4]: the client's and the account's rate-limit keys ('' for no limit)
-- KEYS[5], KEYS[6]: the client's seen origins and networks of the day ('' for none)
-- KEYS[7]: the account's last-used hash ('' to leave it alone)
-- ARGV: client, cost, requests, daily limit ('' for none), monthly limit ('' for none),
--       enforce ('1'/'0'), seconds to keep the day, seconds to keep the month,
--       now (us since 1970), the client's GCRA interval and tolerance, the account's (us),
--       the API ('' for none), the origin, the network, the last use (s since 1970; ''
--       for none), then the report-only rules that would have refused the request
local key, month_key, client = KEYS[1], KEYS[2], ARGV[1]
local function note()
  if KEYS[5] ~= '' then seen_add(KEYS[5], ARGV[15], 1, ARGV[7]) end
  if KEYS[6] ~= '' then seen_add(KEYS[6], ARGV[16], 1, ARGV[7]) end
  if KEYS[7] ~= '' then last_use_raise(KEYS[7], client, ARGV[17], ARGV[7]) end
end
note()
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
  if ARGV[14] ~= '' then
    redis.call('HINCRBY', key, 'apireq:' .. client .. ':' .. ARGV[14], ARGV[3])
    redis.call('HINCRBY', key, 'apicost:' .. client .. ':' .. ARGV[14], ARGV[2])
  end
  for i = 18, #ARGV do
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
    Script::new(&[GCRA_FUNCTION, &SEEN_FUNCTIONS, &body].concat())
});

/// A refusal by a rule, where it came from and the client's last use, in one step.
static REFUSE: LazyLock<Script> = LazyLock::new(|| {
    let body = r"
-- KEYS[1]: the account's usage hash of the day; KEYS[2], KEYS[3]: the client's seen
-- origins and networks of the day ('' for none); KEYS[4]: the account's last-used hash
-- ('' to leave it alone)
-- ARGV: the refusal's field, seconds to keep the day, client, origin, network, last use
--       (s since 1970)
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
if KEYS[2] ~= '' then seen_add(KEYS[2], ARGV[4], 1, ARGV[2]) end
if KEYS[3] ~= '' then seen_add(KEYS[3], ARGV[5], 1, ARGV[2]) end
if KEYS[4] ~= '' then last_use_raise(KEYS[4], ARGV[3], ARGV[6], ARGV[2]) end
return 1
";
    Script::new(&[&SEEN_FUNCTIONS, body].concat())
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
/// `cost:<client>`, `refused:<client>:<reason>`, `shadowed:<client>:<rule>`, and by API
/// `apireq:<client>:<api>` and `apicost:<client>:<api>`), and one total per UTC calendar
/// month, `<prefix>usage-month:<account>:<YYYY-MM>`, kept until the end of the following
/// month. Where refused and report-only requests came from is kept per client and day in
/// two sorted sets, `<prefix>seen-origins:<account>:<YYYY-MM-DD>:<client>` and
/// `<prefix>seen-networks:<account>:<YYYY-MM-DD>:<client>` (member: the origin or the
/// network, score: its count), each bounded at [`SEEN_KEPT`] members by the space-saving
/// step of [`TopCounts`](super::TopCounts) and kept as long as the day's hash. Each
/// client's last use is a field of one hash per account, `<prefix>last-used:<account>`
/// (field: the client, value: the minute in seconds since 1970), only ever raised, kept
/// for the retention window after its last write; each counter (with its clones) writes a
/// client's last use at most once a minute, in the call that counts the request.
///
/// A charge is one round trip: one Lua script (sent by digest, `EVALSHA`) compares the
/// usage with the daily and the monthly quota and increments both or neither, counts the
/// request for the client (and where it came from, and its last use) and sets the keys to
/// expire at the end of the retention window (the end of the day plus
/// [`retention_days`](RedisUsageCounter::retention_days) − 1 days, measured on the
/// counter's clock). Redis runs a script alone, so any number of concurrent requests from
/// any number of instances admit exactly as many as fit. A refusal by a rule is one
/// script call too.
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
    last_writes: LastWrites,
}

/// How many (account, client) pairs [`LastWrites`] remembers before it starts again.
const LAST_WRITES_KEPT: usize = 100_000;

/// The last-use minute an instance last wrote for each client: a client's last use is
/// written only when its minute is newer, so at most once a minute per client and
/// instance. Shared by clones. Forgetting (past [`LAST_WRITES_KEPT`] pairs) costs one
/// more write per client, never a wrong answer: Redis only ever raises a last use.
#[derive(Clone, Default)]
pub(super) struct LastWrites {
    minutes: Arc<Mutex<MinuteByClient>>,
}

/// A minute per (account, client).
type MinuteByClient = HashMap<(AccountId, ClientId), OffsetDateTime, FastBuildHasher>;

impl LastWrites {
    /// Whether `minute` is newer than what was last written for `client`.
    pub(super) fn due(
        &self,
        account: &AccountId,
        client: &ClientId,
        minute: OffsetDateTime,
    ) -> bool {
        let minutes = self.minutes.lock().unwrap_or_else(PoisonError::into_inner);
        minutes
            .get(&(account.clone(), client.clone()))
            .is_none_or(|written| minute > *written)
    }

    /// Notes that `minute` was written for `client`.
    pub(super) fn wrote(&self, account: &AccountId, client: &ClientId, minute: OffsetDateTime) {
        let mut minutes = self.minutes.lock().unwrap_or_else(PoisonError::into_inner);
        if minutes.len() >= LAST_WRITES_KEPT {
            minutes.clear();
        }
        let written = minutes
            .entry((account.clone(), client.clone()))
            .or_insert(minute);
        *written = (*written).max(minute);
    }
}

/// What a call notes besides its counts: the seen sets to count a value in and the
/// last-use hash to raise (each `None` when there is nothing to write).
struct Notes {
    origin: Option<(String, String)>,
    network: Option<(String, String)>,
    last_use: Option<(String, OffsetDateTime)>,
}

impl Notes {
    /// The keys and the values of the seen sets and the last-use hash, in the scripts'
    /// order, with '' for a note not to write.
    fn keys_and_values(&self) -> ([&str; 3], [String; 3]) {
        let (origin_key, origin) = self
            .origin
            .as_ref()
            .map_or(("", ""), |(key, value)| (key.as_str(), value.as_str()));
        let (network_key, network) = self
            .network
            .as_ref()
            .map_or(("", ""), |(key, value)| (key.as_str(), value.as_str()));
        let (last_key, last) = self
            .last_use
            .as_ref()
            .map_or(("", String::new()), |(key, at)| {
                (key.as_str(), at.unix_timestamp().to_string())
            });
        (
            [origin_key, network_key, last_key],
            [origin.to_owned(), network.to_owned(), last],
        )
    }
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
            last_writes: LastWrites::default(),
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

    /// The sorted set of the origins `client`'s refused or report-only requests came from
    /// on `day`.
    pub(super) fn seen_origins_key(
        &self,
        account: &AccountId,
        day: Date,
        client: &ClientId,
    ) -> String {
        format!("{}seen-origins:{account}:{day}:{client}", self.link.prefix)
    }

    /// The sorted set of the networks `client`'s refused or report-only requests came from
    /// on `day`.
    pub(super) fn seen_networks_key(
        &self,
        account: &AccountId,
        day: Date,
        client: &ClientId,
    ) -> String {
        format!("{}seen-networks:{account}:{day}:{client}", self.link.prefix)
    }

    /// The hash of the account's clients' last uses.
    pub(super) fn last_used_key(&self, account: &AccountId) -> String {
        format!("{}last-used:{account}", self.link.prefix)
    }

    /// What a request of `client` on `day` from `seen` at `at` writes besides its counts:
    /// the last use only when this counter has not written that minute (or a later one).
    fn notes(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: Date,
        seen: Option<&Seen>,
        at: Option<OffsetDateTime>,
    ) -> Notes {
        let origin = seen.and_then(Seen::origin).map(|origin| {
            (
                self.seen_origins_key(account, day, client),
                origin.to_string(),
            )
        });
        let network = seen.and_then(Seen::network).map(|network| {
            (
                self.seen_networks_key(account, day, client),
                network.to_string(),
            )
        });
        let last_use = at
            .map(last_use_minute)
            .filter(|minute| self.last_writes.due(account, client, *minute))
            .map(|minute| (self.last_used_key(account), minute));
        Notes {
            origin,
            network,
            last_use,
        }
    }

    /// Notes that the last use of `notes` was written.
    fn noted(&self, account: &AccountId, client: &ClientId, notes: &Notes) {
        if let Some((_, minute)) = &notes.last_use {
            self.last_writes.wrote(account, client, *minute);
        }
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
    apis: BTreeMap<String, ApiUsage>,
}

fn counts_of(fields: Vec<(String, i64)>) -> BTreeMap<String, Counts> {
    let mut clients: BTreeMap<String, Counts> = BTreeMap::new();
    for (field, value) in fields {
        let value = u64::try_from(value).unwrap_or(0);
        let mut parts = field.splitn(3, ':');
        let (Some(kind), Some(client)) = (parts.next(), parts.next()) else {
            continue;
        };
        let rest = parts.next();
        if !matches!(
            (kind, rest),
            ("requests" | "cost", None) | ("refused" | "shadowed" | "apireq" | "apicost", Some(_))
        ) {
            continue;
        }
        let counts = clients.entry(client.to_owned()).or_default();
        match (kind, rest) {
            ("requests", _) => counts.requests = value,
            ("cost", _) => counts.cost = value,
            ("refused", Some(reason)) => {
                counts.refusals.insert(reason.to_owned(), value);
            }
            ("shadowed", Some(rule)) => {
                counts.shadowed.insert(rule.to_owned(), value);
            }
            ("apireq", Some(api)) => {
                counts.apis.entry(api.to_owned()).or_default().requests = value
            }
            ("apicost", Some(api)) => counts.apis.entry(api.to_owned()).or_default().cost = value,
            _ => {}
        }
    }
    clients
}

/// The most counted members of a seen set (as `ZREVRANGE … WITHSCORES` gives them), in
/// the order [`DailyUsage`] reports them.
fn seen_of(members: Vec<(String, f64)>) -> Vec<SeenCount> {
    let counts = members
        .into_iter()
        .map(|(value, score)| SeenCount {
            value,
            count: count_of(score),
        })
        .collect();
    top_of(counts, SEEN_REPORTED)
}

/// A sorted set's score as a count: scores are whole numbers below 2^53, the rest is 0.
fn count_of(score: f64) -> u64 {
    format!("{score:.0}").parse().unwrap_or(0)
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
        let notes = self.notes(
            charge.account,
            charge.client,
            charge.day,
            charge.seen,
            charge.at,
        );
        let (note_keys, note_values) = notes.keys_and_values();
        let called = self
            .link
            .call(|mut conn| async move {
                let mut script = CHARGE.key(&key);
                script.key(&month_key);
                for rate in [&client_rate, &account_rate] {
                    script.key(rate.as_ref().map_or("", |(key, _)| key.as_str()));
                }
                for note in note_keys {
                    script.key(note);
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
                script.arg(charge.api.unwrap_or(""));
                for value in &note_values {
                    script.arg(value.as_str());
                }
                for rule in charge.shadowed {
                    script.arg(rule.as_str());
                }
                script.invoke_async::<ScriptAnswer>(&mut conn).await
            })
            .await;
        let amount = |n: i64| u64::try_from(n).unwrap_or(0);
        if called.is_ok() {
            self.noted(charge.account, charge.client, &notes);
        }
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

    async fn record_refusal(&self, refused: &Refused<'_>) -> Result<(), BackendError> {
        let (account, client, day) = (refused.account, refused.client, refused.day);
        let key = self.key(account, day);
        let field = field::refused(client, refused.rule.as_str());
        let keep = self.keep_seconds(day);
        let notes = self.notes(account, client, day, refused.seen, refused.at);
        let (note_keys, note_values) = notes.keys_and_values();
        let [origin, network, last_use] = &note_values;
        let recorded = self
            .link
            .call(|mut conn| async move {
                let mut script = REFUSE.key(&key);
                for note in note_keys {
                    script.key(note);
                }
                script
                    .arg(field)
                    .arg(keep)
                    .arg(client.as_str())
                    .arg(origin.as_str())
                    .arg(network.as_str())
                    .arg(last_use.as_str())
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await;
        match recorded {
            Ok(_) => {
                self.noted(account, client, &notes);
                Ok(())
            }
            Err(_) if self.link.fail_open => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn last_used(
        &self,
        account: &AccountId,
    ) -> Result<BTreeMap<ClientId, OffsetDateTime>, BackendError> {
        let key = self.last_used_key(account);
        let fields: Vec<(String, String)> = self
            .link
            .call(|mut conn| async move {
                ::redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(fields
            .into_iter()
            .filter_map(|(client, at)| {
                let client = ClientId::new(&client).ok()?;
                let at = OffsetDateTime::from_unix_timestamp(at.parse().ok()?).ok()?;
                Some((client, at))
            })
            .collect())
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
                    apis: counts.apis,
                    origins: Vec::new(),
                    networks: Vec::new(),
                });
            }
        }
        if out.is_empty() {
            return Ok(out);
        }
        // Each client's seen sets, in one more round trip: every member (at most
        // SEEN_KEPT), so that ties at the cut are broken as `top_of` breaks them.
        let seen_keys: Vec<[String; 2]> = out
            .iter()
            .map(|row| {
                [
                    self.seen_origins_key(account, row.day, &row.client),
                    self.seen_networks_key(account, row.day, &row.client),
                ]
            })
            .collect();
        let seen: Vec<Vec<(String, f64)>> = self
            .link
            .call(|mut conn| async move {
                let mut pipe = ::redis::pipe();
                for key in seen_keys.iter().flatten() {
                    pipe.cmd("ZREVRANGE")
                        .arg(key)
                        .arg(0)
                        .arg(SEEN_KEPT - 1)
                        .arg("WITHSCORES");
                }
                pipe.query_async(&mut conn).await
            })
            .await?;
        let mut seen = seen.into_iter();
        for row in &mut out {
            row.origins = seen_of(seen.next().unwrap_or_default());
            row.networks = seen_of(seen.next().unwrap_or_default());
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
            ("apireq:web:WorldStreets".to_owned(), 2),
            ("apicost:web:WorldStreets".to_owned(), 2_000),
            ("unknown:field:with:colons".to_owned(), 9),
        ];
        let counts = counts_of(fields);
        assert_eq!(counts.len(), 2);
        let web = &counts["web"];
        assert_eq!((web.requests, web.cost), (3, 3_000));
        assert_eq!(web.refusals["quota_exceeded"], 2);
        assert_eq!(web.shadowed["origins"], 1);
        assert_eq!(web.apis["WorldStreets"], ApiUsage::new(2, 2_000));
        let batch = &counts["batch"];
        assert_eq!((batch.requests, batch.cost), (0, 0));
        assert_eq!(batch.refusals["ips"], 4);
    }
}
