//! [`LeasedUsageCounter`] (feature `redis`): quotas shared through Redis without a round
//! trip per request. Each instance takes blocks ("leases") of an account's remaining daily
//! and monthly quota from Redis and charges requests against them in memory.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gis_auth::AuthLayer;
//! use gis_auth::limits::{LeasedUsageCounter, redis_connection};
//! use gis_auth::policy::RouteTable;
//! use gis_auth::store::InMemoryStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let usage = Arc::new(LeasedUsageCounter::new(redis_connection("redis://127.0.0.1:6379").await?));
//! let layer = AuthLayer::new(Arc::new(InMemoryStore::new()), RouteTable::new())
//!     .usage_counter(usage.clone());
//! // … serve with `layer` until asked to stop, then give back what this instance holds:
//! usage.shutdown().await?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use ::redis::Script;
use ::redis::aio::ConnectionManager;
use async_trait::async_trait;
use time::{Date, OffsetDateTime};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::lease::{ROOM_SHARE, RateMeter, block_wanted};
use super::redis::{
    LastWrites, MAX_EXACT, RedisLink, RedisUsageCounter, SEEN_FUNCTIONS, redis_connection,
};
use super::tally::{Outcome, Tally, field};
use super::usage::{Charge, Charged, DailyUsage, Refused, UsageCounter};
use crate::client::{AccountId, ClientId, FastBuildHasher};
use crate::clock::{Clock, SystemClock};
use crate::error::BackendError;
use crate::policy::quota_admits;

/// How long a block may be held before what is left of it goes back, unless told
/// otherwise.
pub const DEFAULT_LEASE_MAX_AGE: Duration = Duration::from_secs(5);

/// How often statistics are written and aged blocks given back, unless told otherwise.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// How much of an account's traffic a block is sized for, unless told otherwise.
pub const DEFAULT_LEASE_WINDOW: Duration = Duration::from_secs(1);

/// Takes a block of the daily and the monthly quota at once: what the request in hand
/// needs at least, what the instance would like at most, capped at a share of what
/// remains of the smaller quota.
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS[1]: the account's usage hash of the day; KEYS[2]: its usage total of the month
-- ARGV: need, want, daily limit ('' for none), monthly limit ('' for none), the share of
--       what remains a block may take at most, seconds to keep the day, seconds to keep
--       the month
local key, month_key = KEYS[1], KEYS[2]
local need, want, share = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
local used = tonumber(redis.call('HGET', key, 'used') or '0')
local month = tonumber(redis.call('GET', month_key) or '0')
local room = nil
if ARGV[3] ~= '' then room = tonumber(ARGV[3]) - used end
if ARGV[4] ~= '' then
  local left = tonumber(ARGV[4]) - month
  if room == nil or left < room then room = left end
end
local grant = 0
if room == nil then
  grant = want
elseif room >= need then
  grant = math.max(need, math.min(want, math.floor(room / share)))
end
if grant > 0 then
  local by = string.format('%.0f', grant)
  used = redis.call('HINCRBY', key, 'used', by)
  month = redis.call('INCRBY', month_key, by)
  redis.call('EXPIRE', key, ARGV[6])
  redis.call('EXPIRE', month_key, ARGV[7])
end
return {grant, used, month}
",
    )
});

/// Merges a flush's seen values and last uses into Redis with the steps of
/// [`RedisUsageCounter`]'s scripts: each value's count added to its sorted set with the
/// space-saving step, each last use raised. Sent whole (`EVAL`) inside the flush's
/// transaction, once per flush.
static MERGE: LazyLock<String> = LazyLock::new(|| {
    let body = r"
-- KEYS: seen sets and last-used hashes
-- ARGV: for each key in turn: 'seen' or 'last', seconds to keep it, the number n of pairs,
--       then n pairs: (value, increment) for a seen set, (client, last use in s since
--       1970) for a last-used hash
local at = 1
for k = 1, #KEYS do
  local kind, keep, n = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  at = at + 3
  for _ = 1, n do
    if kind == 'seen' then
      seen_add(KEYS[k], ARGV[at], ARGV[at + 1], keep)
    else
      last_use_raise(KEYS[k], ARGV[at], ARGV[at + 1], keep)
    end
    at = at + 2
  end
end
return 1
";
    [SEEN_FUNCTIONS.as_str(), body].concat()
});

/// The settings, fixed once the counter is built.
#[derive(Clone)]
struct Settings {
    link: RedisLink,
    /// Reads usage, and names and ages keys, exactly as the exact counter does.
    reads: RedisUsageCounter,
    clock: Arc<dyn Clock>,
    max_age: Duration,
    flush_every: Duration,
    window: Duration,
}

/// A block of an account's quota of one day (and of its month), held by this instance.
struct Lease {
    /// What is left of it, in milli-transactions.
    held: u64,
    /// When the last part of it was taken.
    taken_at: OffsetDateTime,
    /// One request at a time takes the next block; the others wait for it.
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// The account's usage of a day and of its month as last seen in Redis (blocks held by
/// every instance included), plus what this instance counted since.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    used: u64,
    month: u64,
}

type ByDay<V> = HashMap<(AccountId, Date), V, FastBuildHasher>;

#[derive(Default)]
struct State {
    leases: ByDay<Lease>,
    seen: ByDay<Seen>,
    meters: HashMap<AccountId, RateMeter, FastBuildHasher>,
    tally: Tally,
    stopped: bool,
}

struct Shared {
    settings: Settings,
    state: Mutex<State>,
    /// The last-use minute this instance last wrote for each client.
    last_writes: LastWrites,
    calls: AtomicU64,
    started: AtomicBool,
    task: Mutex<Option<AbortHandle>>,
    wake: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

/// Daily and monthly quotas shared through Redis, charged in memory against blocks of the
/// quota ("leases") that each instance takes from Redis: a round trip per block rather than
/// per request. Cloning is cheap: clones share the blocks, the statistics and the
/// background task. Make the settings before sharing it: each setting gives a counter of
/// its own.
///
/// **Keys.** It writes what [`RedisUsageCounter`] writes, under the same keys (the day's
/// hash `<prefix>usage:<account>:<YYYY-MM-DD>` with `used` and the per-client fields, by
/// API too, the month's total `<prefix>usage-month:<account>:<YYYY-MM>`, the seen sets
/// `<prefix>seen-origins:…` and `<prefix>seen-networks:…` of each client and day, and the
/// last uses `<prefix>last-used:<account>`), so [`used`](UsageCounter::used),
/// [`usage`](UsageCounter::usage), [`last_used`](UsageCounter::last_used), the admin API,
/// the CLI's `usage --redis` and a `RedisUsageCounter` on another instance all read one
/// truth. A block counts as used in Redis from the moment it is taken: what an instance
/// holds but has not spent yet is included in `used` until it is spent or given back.
/// Where requests came from is counted in memory (bounded, as
/// [`TopCounts`](super::TopCounts)) and merged into the seen sets at each flush, with the
/// same space-saving step; a client's last use is written at a flush only when its minute
/// is newer than the one this instance last wrote (at most once a minute per client).
///
/// **Blocks.** A charge that the block in hand covers is answered at once, in memory
/// ([`charge_now`](UsageCounter::charge_now)), with no future and no round trip. When the
/// block runs out, one Lua script (`EVALSHA`) takes the next one from both the daily and
/// the monthly quota, or refuses the request if it no longer fits. A block is sized for
/// about one [`lease_window`](LeasedUsageCounter::lease_window) (1 s) of the account's
/// traffic on this instance, measured on the counter's clock, and is never more than 1 %
/// of the smaller quota nor more than an eighth of what remains of it: far from the end of
/// a quota an instance serving an account 200 requests a second or more makes at most one
/// call per 100 requests (blocks and statistics writes together), and near the end blocks shrink to the cost of one request, so the last
/// requests are charged exactly. Redis grants a block only if it fits, atomically, so the
/// instances together never admit more than the quota.
///
/// **Giving back.** What is left of a block goes back to Redis when it is older than
/// [`lease_max_age`](LeasedUsageCounter::lease_max_age) (5 s), when a request it cannot
/// cover is refused, and when [`shutdown`](LeasedUsageCounter::shutdown) is called: call
/// it when the instance stops (after the server has drained), or the blocks it holds stay
/// counted as used until the day (and the month) ends. A give-back that cannot reach Redis
/// is not retried (it may have landed): the quota is never exceeded, at worst a block is
/// lost to this day.
///
/// **Statistics.** Requests, costs, refusals and report-only findings are counted in
/// memory and written every [`flush_interval`](LeasedUsageCounter::flush_interval)
/// (1 s), with the aged blocks, in one pipelined transaction, by a background task (tokio)
/// that starts with the first request. When the write fails they are kept for the next
/// one. Reading the usage through this counter ([`used`](UsageCounter::used),
/// [`usage`](UsageCounter::usage)) writes this instance's counts first.
///
/// **Without a lease.** Accounts with no quota, and quotas that are report-only, need no
/// block: their usage is counted in memory and written with the statistics. Their
/// [`Charged::used`] (and whether a report-only quota was exceeded) is as of the last
/// write plus this instance's counts since, so it may lag other instances by a flush.
///
/// **Redis away.** Requests keep being admitted against the block in hand; once it is
/// spent, a charge fails within the [`timeout`](LeasedUsageCounter::timeout) and the layer
/// answers 503 (fail closed): nothing is admitted beyond the block. Accounts without an
/// enforced quota keep being served and counted, and their counts are written when Redis
/// is back.
///
/// Choose [`RedisUsageCounter`] when every request must be counted in Redis the moment it
/// is admitted (a stopped instance then strands nothing); choose this counter to save the
/// round trip, at the price of blocks held for a few seconds.
#[derive(Clone)]
pub struct LeasedUsageCounter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LeasedUsageCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = &self.shared.settings;
        f.debug_struct("LeasedUsageCounter")
            .field("prefix", &settings.link.prefix)
            .field("timeout", &settings.link.timeout)
            .field("lease_max_age", &settings.max_age)
            .field("lease_window", &settings.window)
            .field("flush_interval", &settings.flush_every)
            .finish_non_exhaustive()
    }
}

fn stopped() -> BackendError {
    BackendError::new("leased usage counter: shut down")
}

fn amount(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Whether a charge is paid from a block: it costs something and an enforced quota
/// limits it.
fn leased(charge: &Charge<'_>) -> bool {
    charge.enforce && (charge.limit.is_some() || charge.monthly_limit.is_some())
}

/// What the LEASE script answered.
struct Granted {
    grant: u64,
    used: u64,
    month: u64,
}

impl LeasedUsageCounter {
    /// A counter on `conn` (see [`redis_connection`]): keys under
    /// [`DEFAULT_KEY_PREFIX`](crate::limits::DEFAULT_KEY_PREFIX),
    /// [`DEFAULT_RETENTION_DAYS`](crate::limits::DEFAULT_RETENTION_DAYS) days kept,
    /// [`DEFAULT_REDIS_TIMEOUT`](crate::limits::DEFAULT_REDIS_TIMEOUT),
    /// [`DEFAULT_LEASE_WINDOW`], [`DEFAULT_LEASE_MAX_AGE`], [`DEFAULT_FLUSH_INTERVAL`], on the
    /// system clock.
    pub fn new(conn: ConnectionManager) -> Self {
        Self::with(Settings {
            link: RedisLink::new(conn.clone(), "leased usage counter"),
            reads: RedisUsageCounter::new(conn),
            clock: Arc::new(SystemClock),
            max_age: DEFAULT_LEASE_MAX_AGE,
            flush_every: DEFAULT_FLUSH_INTERVAL,
            window: DEFAULT_LEASE_WINDOW,
        })
    }

    /// Connects to Redis at `url` (see [`redis_connection`]).
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        Ok(Self::new(redis_connection(url).await?))
    }

    fn with(settings: Settings) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings,
                state: Mutex::new(State::default()),
                last_writes: LastWrites::default(),
                calls: AtomicU64::new(0),
                started: AtomicBool::new(false),
                task: Mutex::new(None),
                wake: Arc::new(Notify::new()),
            }),
        }
    }

    /// The counter with its settings changed by `change`. Settings are made before the
    /// first request: a counter built anew holds nothing yet.
    fn set(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.shared.settings.clone();
        change(&mut settings);
        Self::with(settings)
    }

    /// Puts every key under `prefix` (`gis-auth:` by default); give every instance the
    /// same, and the same as a [`RedisUsageCounter`] reading the usage.
    #[must_use]
    pub fn key_prefix(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.set(|s| {
            s.link.prefix = Arc::from(prefix.as_str());
            s.reads = s.reads.clone().key_prefix(prefix);
        })
    }

    /// Keeps `days` days of usage (at least 2: today and yesterday).
    #[must_use]
    pub fn retention_days(self, days: u16) -> Self {
        self.set(|s| s.reads = s.reads.clone().retention_days(days))
    }

    /// How long one call may take before it counts as failed (1 s by default; keep it
    /// below the layer's backend budget).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.set(|s| {
            s.link.timeout = timeout;
            s.reads = s.reads.clone().timeout(timeout);
        })
    }

    /// Reads the UTC day, measures rates and ages blocks on `clock`.
    #[must_use]
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        self.set(|s| {
            s.reads = s.reads.clone().clock(clock.clone());
            s.clock = clock;
        })
    }

    /// How long a block may be held (on the counter's clock) before what is left of it
    /// goes back to Redis (5 s by default): the longest a stopped or idle instance keeps
    /// part of a quota from the others.
    #[must_use]
    pub fn lease_max_age(self, age: Duration) -> Self {
        self.set(|s| s.max_age = age)
    }

    /// How much of an account's traffic on this instance a block is sized for (1 s by
    /// default): longer windows mean fewer round trips and larger blocks held.
    #[must_use]
    pub fn lease_window(self, window: Duration) -> Self {
        self.set(|s| s.window = window.max(Duration::from_millis(1)))
    }

    /// How often the background task writes the statistics and gives aged blocks back
    /// (1 s by default; at least 10 ms).
    #[must_use]
    pub fn flush_interval(self, every: Duration) -> Self {
        self.set(|s| s.flush_every = every.max(Duration::from_millis(10)))
    }

    /// How many calls this counter (and its clones) made to Redis to take blocks and
    /// write statistics: divided by the requests served, the cost of sharing a quota.
    pub fn redis_calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// What this instance holds of every quota now, in milli-transactions: counted as used
    /// in Redis, not spent yet.
    pub fn held(&self) -> u64 {
        let state = self.shared.lock();
        state
            .leases
            .values()
            .fold(0u64, |sum, lease| sum.saturating_add(lease.held))
    }

    /// Writes the statistics counted so far and gives back what is left of blocks older
    /// than [`lease_max_age`](LeasedUsageCounter::lease_max_age), in one call (none when
    /// there is nothing to write). The background task does this every
    /// [`flush_interval`](LeasedUsageCounter::flush_interval).
    pub async fn flush(&self) -> Result<(), BackendError> {
        self.shared.flush(false).await
    }

    /// Gives back everything this instance holds, writes the statistics, and stops the
    /// background task; later charges fail. Call it once the server has stopped taking
    /// requests (after a graceful shutdown), so that the blocks held go back to the other
    /// instances at once instead of staying counted as used.
    pub async fn shutdown(&self) -> Result<(), BackendError> {
        {
            let mut state = self.shared.lock();
            state.stopped = true;
        }
        if let Some(task) = self
            .shared
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        self.shared.flush(true).await
    }

    /// Writes this instance's counts before a read, so that what it served shows at once.
    async fn flush_unless_stopped(&self) -> Result<(), BackendError> {
        let stopped = self.shared.lock().stopped;
        if stopped { Ok(()) } else { self.flush().await }
    }

    /// Takes the next block for `charge` and pays it from there, or refuses it.
    async fn refill(&self, charge: &Charge<'_>) -> Result<Charged, BackendError> {
        let shared = &self.shared;
        let window = shared.settings.window;
        let day_key = (charge.account.clone(), charge.day);
        let gate = {
            let now = shared.now();
            let mut state = shared.lock();
            if state.stopped {
                return Err(stopped());
            }
            state
                .meters
                .entry(charge.account.clone())
                .or_insert_with(|| RateMeter::new(now))
                .record(now, charge.cost, window);
            state
                .leases
                .entry(day_key.clone())
                .or_insert_with(|| Lease {
                    held: 0,
                    taken_at: now,
                    gate: Arc::default(),
                })
                .gate
                .clone()
        };
        let _turn = gate.lock().await;
        let (kept, need, want) = {
            let mut state = shared.lock();
            if state.stopped {
                return Err(stopped());
            }
            // Another request may have taken a block while this one waited.
            if let Some(charged) = state.spend(charge) {
                return Ok(charged);
            }
            let per_window = state
                .meters
                .get(charge.account)
                .map_or(0, RateMeter::per_window);
            let kept = state
                .leases
                .get_mut(&day_key)
                .map_or(0, |lease| std::mem::take(&mut lease.held));
            let need = charge.cost.saturating_sub(kept).min(MAX_EXACT);
            let want =
                block_wanted(per_window, need, charge.limit, charge.monthly_limit).min(MAX_EXACT);
            (kept, need, want)
        };
        let taken = shared.take(charge, need, want).await;
        let now = shared.now();
        let settled = shared.lock().settle(charge, kept, need, taken, now);
        match settled {
            Settled::Charged(charged) => Ok(charged),
            Settled::GaveBack(charged) => {
                shared.wake.notify_one();
                Ok(charged)
            }
            Settled::Stopping(charged) => {
                let _ = shared.flush(true).await;
                Ok(charged)
            }
            Settled::Failed(e) => Err(e),
        }
    }
}

/// What became of a charge once the next block was asked for.
enum Settled {
    /// Paid from the new block, or refused with nothing to give back.
    Charged(Charged),
    /// Refused; what was left of the block is to go back.
    GaveBack(Charged),
    /// Paid, but the counter was shut down meanwhile: the block is to go back.
    Stopping(Charged),
    /// Redis did not answer.
    Failed(BackendError),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the maps consistent, so a panic elsewhere cannot corrupt them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> OffsetDateTime {
        self.settings.clock.now().to_offset(time::UtcOffset::UTC)
    }

    /// Starts the background task once, from within a tokio runtime.
    fn start(self: &Arc<Self>) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let shared: Weak<Shared> = Arc::downgrade(self);
        let wake = self.wake.clone();
        let every = self.settings.flush_every;
        *task = Some(
            runtime
                .spawn(async move {
                    let start = tokio::time::Instant::now() + every;
                    let mut tick = tokio::time::interval_at(start, every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            () = wake.notified() => {}
                        }
                        let Some(shared) = shared.upgrade() else {
                            break;
                        };
                        if shared.lock().stopped {
                            break;
                        }
                        // A failure is logged by the link, and the counts kept for the next.
                        let _ = shared.flush(false).await;
                    }
                })
                .abort_handle(),
        );
        self.started.store(true, Ordering::Release);
    }

    /// Takes the next block of `charge`'s account: at least `need`, at most `want`.
    async fn take(
        &self,
        charge: &Charge<'_>,
        need: u64,
        want: u64,
    ) -> Result<Granted, BackendError> {
        let reads = &self.settings.reads;
        let key = reads.key(charge.account, charge.day);
        let month_key = reads.month_key(charge.account, charge.day);
        let limit = |limit: Option<u64>| {
            limit
                .map(|l| l.min(MAX_EXACT).to_string())
                .unwrap_or_default()
        };
        let (daily, monthly) = (limit(charge.limit), limit(charge.monthly_limit));
        let keep = reads.keep_seconds(charge.day);
        let keep_month = reads.keep_month_seconds(charge.day);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let (grant, used, month) = self
            .settings
            .link
            .call(|mut conn| async move {
                LEASE
                    .key(&key)
                    .key(&month_key)
                    .arg(need)
                    .arg(want)
                    .arg(daily)
                    .arg(monthly)
                    .arg(ROOM_SHARE)
                    .arg(keep)
                    .arg(keep_month)
                    .invoke_async::<(i64, i64, i64)>(&mut conn)
                    .await
            })
            .await?;
        Ok(Granted {
            grant: amount(grant),
            used: amount(used),
            month: amount(month),
        })
    }

    /// Gives back aged blocks (every block when `all`), forgets what is idle, and writes
    /// what is counted, in one call.
    async fn flush(&self, all: bool) -> Result<(), BackendError> {
        let tally = {
            let now = self.now();
            let settings = &self.settings;
            let mut state = self.lock();
            let State {
                leases,
                seen,
                meters,
                tally,
                ..
            } = &mut *state;
            for ((account, day), lease) in leases.iter_mut() {
                let aged = now - lease.taken_at >= settings.max_age;
                if lease.held > 0 && (all || aged) {
                    tally.usage(account, *day, -signed(std::mem::take(&mut lease.held)));
                }
            }
            // A lease with nothing left and no request waiting on it can go; so can what
            // was seen of days no request is charged to any more.
            leases.retain(|_, lease| lease.held > 0 || Arc::strong_count(&lease.gate) > 1);
            let yesterday = now.date().saturating_sub(time::Duration::days(1));
            seen.retain(|(_, day), _| *day >= yesterday);
            meters.retain(|_, meter| !meter.idle(now, settings.window));
            // A last use is written only when its minute is newer than the last written.
            let last_writes = &self.last_writes;
            tally
                .last_use
                .retain(|(account, client), minute| last_writes.due(account, client, *minute));
            std::mem::take(tally)
        };
        if tally.is_empty() {
            return Ok(());
        }
        self.write(tally).await
    }

    /// Writes `tally` in one pipelined transaction, and notes the usage totals Redis
    /// answers; on failure keeps its counts (not its give-backs) for the next write.
    async fn write(&self, tally: Tally) -> Result<(), BackendError> {
        enum Total {
            Day(AccountId, Date),
            Month(AccountId, Date),
        }
        let reads = &self.settings.reads;
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        let mut totals = Vec::new();
        for ((account, day), fields) in &tally.days {
            let key = reads.key(account, *day);
            for (name, by) in fields {
                pipe.hincr(&key, name, *by);
                if name == field::USED {
                    totals.push(Total::Day(account.clone(), *day));
                } else {
                    pipe.ignore();
                }
            }
            pipe.expire(&key, reads.keep_seconds(*day)).ignore();
        }
        for ((account, first), by) in &tally.months {
            let key = reads.month_key(account, *first);
            pipe.incr(&key, *by);
            totals.push(Total::Month(account.clone(), *first));
            pipe.expire(&key, reads.keep_month_seconds(*first)).ignore();
        }
        if let Some(merge) = merge_of(reads, &tally) {
            pipe.add_command(merge).ignore();
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let written: Result<Vec<i64>, BackendError> = self
            .settings
            .link
            .call(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await;
        if written.is_ok() {
            for ((account, client), minute) in &tally.last_use {
                self.last_writes.wrote(account, client, *minute);
            }
        }
        let mut state = self.lock();
        match written {
            Ok(values) => {
                for (total, value) in totals.into_iter().zip(values) {
                    let value = amount(value);
                    match total {
                        Total::Day(account, day) => {
                            state.seen.entry((account, day)).or_default().used = value;
                        }
                        Total::Month(account, first) => {
                            let month = (first.year(), first.month());
                            for ((of, day), seen) in state.seen.iter_mut() {
                                if *of == account && (day.year(), day.month()) == month {
                                    seen.month = value;
                                }
                            }
                        }
                    }
                }
                Ok(())
            }
            Err(e) => {
                state.tally.merge(tally.retained());
                Err(e)
            }
        }
    }
}

/// The `EVAL` of [`MERGE`] that writes `tally`'s seen values and last uses; none when it
/// has none.
fn merge_of(reads: &RedisUsageCounter, tally: &Tally) -> Option<::redis::Cmd> {
    if tally.seen.is_empty() && tally.last_use.is_empty() {
        return None;
    }
    let mut keys = Vec::new();
    let mut args: Vec<String> = Vec::new();
    for ((account, day, client), seen) in &tally.seen {
        let keep = reads.keep_seconds(*day).to_string();
        let sets = [
            (reads.seen_origins_key(account, *day, client), &seen.origins),
            (
                reads.seen_networks_key(account, *day, client),
                &seen.networks,
            ),
        ];
        for (key, counts) in sets {
            if counts.is_empty() {
                continue;
            }
            keys.push(key);
            args.extend([
                "seen".to_owned(),
                keep.clone(),
                counts.kept().len().to_string(),
            ]);
            for kept in counts.kept() {
                args.extend([kept.value.clone(), kept.count.to_string()]);
            }
        }
    }
    for ((account, client), minute) in &tally.last_use {
        keys.push(reads.last_used_key(account));
        args.extend([
            "last".to_owned(),
            reads.keep_seconds(minute.date()).to_string(),
            "1".to_owned(),
            client.to_string(),
            minute.unix_timestamp().to_string(),
        ]);
    }
    let mut cmd = ::redis::cmd("EVAL");
    cmd.arg(MERGE.as_str()).arg(keys.len()).arg(keys).arg(args);
    Some(cmd)
}

impl State {
    /// Pays `charge` from the block `taken` (and the `kept` rest of the last one), or
    /// refuses it and gives the rest back.
    fn settle(
        &mut self,
        charge: &Charge<'_>,
        kept: u64,
        need: u64,
        taken: Result<Granted, BackendError>,
        now: OffsetDateTime,
    ) -> Settled {
        let day_key = (charge.account.clone(), charge.day);
        let granted = match taken {
            Ok(granted) => granted,
            Err(e) => {
                // The script takes and never gives: what was kept is still this
                // instance's.
                if let Some(lease) = self.leases.get_mut(&day_key) {
                    lease.held += kept;
                }
                return Settled::Failed(e);
            }
        };
        let (used, month) = (granted.used, granted.month);
        self.seen.insert(day_key.clone(), Seen { used, month });
        if granted.grant == 0 {
            // Refused: what is kept is less than one request; it goes back to the others.
            self.tally.usage(charge.account, charge.day, -signed(kept));
            self.tally.charge(
                charge,
                Outcome {
                    admitted: false,
                    fits: false,
                    counts_usage: false,
                },
            );
            let fits = |used: u64, limit: Option<u64>| {
                limit.is_none_or(|limit| quota_admits(used, need, limit))
            };
            let charged = Charged::new(false, !fits(used, charge.limit), used.saturating_sub(kept))
                .monthly(
                    !fits(month, charge.monthly_limit),
                    month.saturating_sub(kept),
                );
            return if kept > 0 {
                Settled::GaveBack(charged)
            } else {
                Settled::Charged(charged)
            };
        }
        let held = (kept + granted.grant).saturating_sub(charge.cost);
        self.tally.charge(
            charge,
            Outcome {
                admitted: true,
                fits: true,
                counts_usage: false,
            },
        );
        let charged = Charged::new(true, false, used.saturating_sub(held))
            .monthly(false, month.saturating_sub(held));
        if self.stopped {
            // Shut down while this block was being taken: it goes back at once.
            self.tally.usage(charge.account, charge.day, -signed(held));
            return Settled::Stopping(charged);
        }
        if let Some(lease) = self.leases.get_mut(&day_key) {
            lease.held = held;
            lease.taken_at = now;
        }
        Settled::Charged(charged)
    }

    /// Pays `charge` from the block in hand, if it covers it.
    fn spend(&mut self, charge: &Charge<'_>) -> Option<Charged> {
        let key = (charge.account.clone(), charge.day);
        let held = match self.leases.get_mut(&key) {
            Some(lease) if lease.held >= charge.cost => {
                lease.held -= charge.cost;
                lease.held
            }
            // A request that costs nothing needs no block.
            _ if charge.cost == 0 => self.leases.get(&key).map_or(0, |lease| lease.held),
            _ => return None,
        };
        self.tally.charge(
            charge,
            Outcome {
                admitted: true,
                fits: true,
                counts_usage: false,
            },
        );
        let seen = self.seen.get(&key).copied().unwrap_or_default();
        Some(
            Charged::new(true, false, seen.used.saturating_sub(held))
                .monthly(false, seen.month.saturating_sub(held)),
        )
    }

    /// Counts a charge no block pays for: no quota, or a report-only one.
    fn count(&mut self, charge: &Charge<'_>) -> Charged {
        let seen = self
            .seen
            .entry((charge.account.clone(), charge.day))
            .or_default();
        let fits = |used: u64, limit: Option<u64>| {
            limit.is_none_or(|limit| quota_admits(used, charge.cost, limit))
        };
        let (fits_day, fits_month) = (
            fits(seen.used, charge.limit),
            fits(seen.month, charge.monthly_limit),
        );
        let admitted = (fits_day && fits_month) || !charge.enforce;
        if admitted {
            seen.used = seen.used.saturating_add(charge.cost);
            seen.month = seen.month.saturating_add(charge.cost);
        }
        let charged = Charged::new(admitted, !fits_day, seen.used).monthly(!fits_month, seen.month);
        self.tally.charge(
            charge,
            Outcome {
                admitted,
                fits: fits_day && fits_month,
                counts_usage: true,
            },
        );
        charged
    }
}

#[async_trait]
impl UsageCounter for LeasedUsageCounter {
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, BackendError> {
        match self.charge_now(charge) {
            Some(answer) => answer,
            None => self.refill(charge).await,
        }
    }

    async fn record_refusal(&self, refused: &Refused<'_>) -> Result<(), BackendError> {
        self.record_refusal_now(refused)
            .unwrap_or_else(|| Err(stopped()))
    }

    /// Answers at once when no block is needed or the block in hand covers the charge;
    /// `None` when the next block has to be taken from Redis.
    fn charge_now(&self, charge: &Charge<'_>) -> Option<Result<Charged, BackendError>> {
        self.shared.start();
        let mut state = self.shared.lock();
        if state.stopped {
            return Some(Err(stopped()));
        }
        if !leased(charge) {
            return Some(Ok(state.count(charge)));
        }
        let charged = state.spend(charge)?;
        let now = self.shared.now();
        state
            .meters
            .entry(charge.account.clone())
            .or_insert_with(|| RateMeter::new(now))
            .record(now, charge.cost, self.shared.settings.window);
        Some(Ok(charged))
    }

    fn record_refusal_now(&self, refused: &Refused<'_>) -> Option<Result<(), BackendError>> {
        self.shared.start();
        let mut state = self.shared.lock();
        if state.stopped {
            return Some(Err(stopped()));
        }
        state.tally.refusal(refused);
        Some(Ok(()))
    }

    /// What Redis holds, raised by the last uses this instance counted and has not
    /// written yet.
    async fn last_used(
        &self,
        account: &AccountId,
    ) -> Result<BTreeMap<ClientId, OffsetDateTime>, BackendError> {
        let mut last = self.shared.settings.reads.last_used(account).await?;
        let state = self.shared.lock();
        for ((of, client), minute) in &state.tally.last_use {
            if of == account {
                let at = last.entry(client.clone()).or_insert(*minute);
                *at = (*at).max(*minute);
            }
        }
        Ok(last)
    }

    async fn used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        self.flush_unless_stopped().await?;
        self.shared.settings.reads.used(account, day).await
    }

    async fn monthly_used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        self.flush_unless_stopped().await?;
        self.shared.settings.reads.monthly_used(account, day).await
    }

    async fn usage(
        &self,
        account: &AccountId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyUsage>, BackendError> {
        self.flush_unless_stopped().await?;
        self.shared.settings.reads.usage(account, from, to).await
    }
}
