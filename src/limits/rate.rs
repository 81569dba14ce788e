//! Request-rate limits: each client's [`RateLimit`] (a sustained rate with a burst on top)
//! is enforced by its own GCRA limiter, kept in a bounded cache, and so is each account's,
//! which all its clients share ([`ClientRateLimiter::check_account`]).
//!
//! Time comes from the injected [`Clock`], so tests move a [`ManualClock`] instead of
//! sleeping.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use gis_auth::client::{ClientId, RateLimit};
//! use gis_auth::clock::ManualClock;
//! use gis_auth::limits::{ClientRateLimiter, RateVerdict};
//! use time::macros::datetime;
//!
//! let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
//! let limiter = ClientRateLimiter::new(Arc::new(clock.clone()));
//! let web = ClientId::new("web-map")?;
//! let limit = RateLimit::new(2, 3)?; // two a second, bursts of three
//!
//! for _ in 0..3 {
//!     assert!(limiter.check(&web, limit).is_allowed());
//! }
//! assert_eq!(limiter.check(&web, limit), RateVerdict::RetryAfter(Duration::from_secs(1)));
//!
//! clock.advance(time::Duration::milliseconds(500));
//! assert!(limiter.check(&web, limit).is_allowed());
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```
//!
//! [`ManualClock`]: crate::clock::ManualClock

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use moka::Expiry;
use moka::sync::Cache;
use time::OffsetDateTime;

use crate::client::{AccountId, ClientId, RateLimit};
use crate::clock::Clock;
use crate::error::BackendError;

/// What a rate limiter makes of one more request from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateVerdict {
    /// The request may pass; it was counted.
    Allow,
    /// The client is over its limit: it may retry after this long (whole seconds, at least
    /// one). The request was not counted.
    RetryAfter(Duration),
}

impl RateVerdict {
    /// Whether the request may pass.
    pub fn is_allowed(self) -> bool {
        self == RateVerdict::Allow
    }
}

/// Per-client and per-account rate limits enforced in one place for every instance of a
/// service (such as `RedisRateLimiter`, feature `redis`), for
/// [`AuthLayer::shared_rate_limiter`](crate::AuthLayer::shared_rate_limiter). Without one,
/// each instance enforces the limits on its own with a [`ClientRateLimiter`].
#[async_trait]
pub trait SharedRateLimiter: Send + Sync + 'static {
    /// Counts one request from `client` against `limit`, as [`ClientRateLimiter::check`]
    /// does; `Err` when the limiter could not answer (the layer answers 503).
    async fn check(&self, client: &ClientId, limit: RateLimit)
    -> Result<RateVerdict, BackendError>;

    /// Counts one request from any client of `account` against the account's `limit`,
    /// which all its clients share, as [`ClientRateLimiter::check_account`] does.
    async fn check_account(
        &self,
        account: &AccountId,
        limit: RateLimit,
    ) -> Result<RateVerdict, BackendError>;
}

/// How many clients [`ClientRateLimiter`] keeps limiters for unless told otherwise.
pub const DEFAULT_RATE_LIMITER_CAPACITY: u64 = 100_000;

/// How long an entry stays after its limiter has refilled, before it may be dropped.
const IDLE_MARGIN: Duration = Duration::from_secs(1);

/// One client's limiter, on the crate's clock.
type DirectLimiter = RateLimiter<NotKeyed, InMemoryState, LimiterClock, NoOpMiddleware<Nanos>>;

/// Whose limit a limiter enforces: a client's own, or an account's shared one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Client(ClientId),
    Account(AccountId),
}

/// The cache key: a client (or account) and the limit it had when its limiter was made, so
/// a changed limit gets a limiter of its own.
type Key = (Subject, RateLimit);

/// Enforces each client's [`RateLimit`].
///
/// Limiters are kept for at most [`capacity`](Self::capacity) clients (least recently used
/// go first) and are dropped once idle long enough to have refilled, so memory stays
/// bounded however many clients call. A client whose limiter was dropped starts again with a
/// full burst, which is where an idle limiter ends up anyway; a capacity below the number of
/// clients active at once lets busy clients lose their state early, so size it above that.
///
/// A changed limit for a client takes effect on its next request, with a full burst.
///
/// Cloning is cheap: clones share their limiters.
#[derive(Clone)]
pub struct ClientRateLimiter {
    limiters: Arc<Limiters>,
}

/// The limiters of every client, on one clock, shared by the clones of a
/// [`ClientRateLimiter`].
struct Limiters {
    clock: LimiterClock,
    capacity: u64,
    by_client: Cache<Key, Arc<DirectLimiter>>,
}

impl ClientRateLimiter {
    /// A limiter reading time from `clock`, for up to [`DEFAULT_RATE_LIMITER_CAPACITY`]
    /// clients.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::build(LimiterClock(clock), DEFAULT_RATE_LIMITER_CAPACITY)
    }

    /// Keeps limiters for at most `max_clients` clients (at least 1).
    #[must_use]
    pub fn capacity(self, max_clients: u64) -> Self {
        Self::build(self.limiters.clock.clone(), max_clients)
    }

    fn build(clock: LimiterClock, capacity: u64) -> Self {
        let capacity = capacity.max(1);
        let limiters = Cache::builder()
            .max_capacity(capacity)
            .expire_after(IdleExpiry)
            .build();
        Self {
            limiters: Arc::new(Limiters {
                clock,
                capacity,
                by_client: limiters,
            }),
        }
    }

    /// Counts one request from `client` against `limit`: [`RateVerdict::Allow`] when it may
    /// pass, or [`RateVerdict::RetryAfter`] when the client is over its limit, rounded up to
    /// whole seconds and at least one second (it becomes a `Retry-After` header). A refused
    /// request does not count.
    pub fn check(&self, client: &ClientId, limit: RateLimit) -> RateVerdict {
        self.check_subject(Subject::Client(client.clone()), limit)
    }

    /// Counts one request from any client of `account` against the account's `limit`,
    /// shared by all its clients (on top of each client's own), as
    /// [`check`](ClientRateLimiter::check) counts a client's. Accounts and clients never
    /// share a limiter, whatever their ids.
    pub fn check_account(&self, account: &AccountId, limit: RateLimit) -> RateVerdict {
        self.check_subject(Subject::Account(account.clone()), limit)
    }

    fn check_subject(&self, subject: Subject, limit: RateLimit) -> RateVerdict {
        let shared = &*self.limiters;
        let limiter = shared.by_client.get_with_by_ref(&(subject, limit), || {
            let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
            Arc::new(RateLimiter::direct_with_clock(quota, shared.clock.clone()))
        });
        match limiter.check() {
            Ok(()) => RateVerdict::Allow,
            Err(not_until) => RateVerdict::RetryAfter(whole_seconds_up(
                not_until.wait_time_from(shared.clock.now()),
            )),
        }
    }
}

impl fmt::Debug for ClientRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRateLimiter")
            .field("capacity", &self.limiters.capacity)
            .field("entries", &self.limiters.by_client.entry_count())
            .finish()
    }
}

/// The crate's [`Clock`] as governor's: nanoseconds since the Unix epoch.
///
/// Times before 1970 read as the epoch and times past 2262 as 2262, which leaves room below
/// `u64::MAX` for the largest burst window (`u32::MAX` seconds) to be added without overflow.
#[derive(Clone)]
struct LimiterClock(Arc<dyn Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        nanos_since_epoch(self.0.now())
    }
}

fn nanos_since_epoch(t: OffsetDateTime) -> Nanos {
    let nanos = t.unix_timestamp_nanos().clamp(0, i128::from(i64::MAX));
    Nanos::from(u64::try_from(nanos).unwrap_or(0))
}

/// Drops an entry once it has been idle long enough for its limiter to refill: a limiter
/// is full again `burst / per_second` seconds after the last request it let through.
struct IdleExpiry;

impl Expiry<Key, Arc<DirectLimiter>> for IdleExpiry {
    fn expire_after_create(
        &self,
        (_, limit): &Key,
        _: &Arc<DirectLimiter>,
        _: Instant,
    ) -> Option<Duration> {
        Some(idle_lifetime(*limit))
    }

    fn expire_after_read(
        &self,
        (_, limit): &Key,
        _: &Arc<DirectLimiter>,
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        Some(idle_lifetime(*limit))
    }
}

/// `max(1 s, burst / per_second)` rounded up to whole seconds, plus [`IDLE_MARGIN`].
fn idle_lifetime(limit: RateLimit) -> Duration {
    let refill = u64::from(limit.burst.get()).div_ceil(u64::from(limit.per_second.get()));
    Duration::from_secs(refill.max(1)) + IDLE_MARGIN
}

/// `wait` rounded up to whole seconds, at least one.
pub(crate) fn whole_seconds_up(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use time::macros::datetime;

    fn setup() -> (ManualClock, ClientRateLimiter) {
        let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
        let limiter = ClientRateLimiter::new(Arc::new(clock.clone()));
        (clock, limiter)
    }

    fn id(s: &str) -> ClientId {
        ClientId::new(s).unwrap()
    }

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        RateLimit::new(per_second, burst).unwrap()
    }

    #[test]
    fn a_full_burst_passes_then_the_next_request_is_told_to_retry() {
        let (_, limiter) = setup();
        let web = id("web");
        for n in 0..5 {
            assert_eq!(
                limiter.check(&web, limit(4, 5)),
                RateVerdict::Allow,
                "request {n}"
            );
        }
        let RateVerdict::RetryAfter(retry) = limiter.check(&web, limit(4, 5)) else {
            panic!("the sixth request passed");
        };
        assert!(retry >= Duration::from_secs(1), "{retry:?}");
    }

    #[test]
    fn one_more_request_passes_after_one_interval() {
        let (clock, limiter) = setup();
        let web = id("web");
        for _ in 0..5 {
            assert!(limiter.check(&web, limit(4, 5)).is_allowed());
        }
        assert!(!limiter.check(&web, limit(4, 5)).is_allowed());
        clock.advance(time::Duration::milliseconds(249));
        assert!(!limiter.check(&web, limit(4, 5)).is_allowed());
        clock.advance(time::Duration::milliseconds(1));
        assert_eq!(limiter.check(&web, limit(4, 5)), RateVerdict::Allow);
        assert!(!limiter.check(&web, limit(4, 5)).is_allowed());
    }

    #[test]
    fn an_idle_client_gets_its_full_burst_back() {
        let (clock, limiter) = setup();
        let web = id("web");
        for _ in 0..3 {
            assert!(limiter.check(&web, limit(1, 3)).is_allowed());
        }
        clock.advance(time::Duration::seconds(3));
        for n in 0..3 {
            assert_eq!(
                limiter.check(&web, limit(1, 3)),
                RateVerdict::Allow,
                "request {n}"
            );
        }
        assert!(!limiter.check(&web, limit(1, 3)).is_allowed());
    }

    #[test]
    fn two_clients_are_limited_independently() {
        let (_, limiter) = setup();
        let (web, batch) = (id("web"), id("batch"));
        assert!(limiter.check(&web, limit(1, 1)).is_allowed());
        assert!(!limiter.check(&web, limit(1, 1)).is_allowed());
        assert_eq!(limiter.check(&batch, limit(1, 1)), RateVerdict::Allow);
        assert!(!limiter.check(&batch, limit(1, 1)).is_allowed());
    }

    #[test]
    fn a_changed_limit_takes_effect_on_the_next_request() {
        let (_, limiter) = setup();
        let web = id("web");
        assert!(limiter.check(&web, limit(1, 1)).is_allowed());
        assert!(!limiter.check(&web, limit(1, 1)).is_allowed());
        for n in 0..5 {
            assert_eq!(
                limiter.check(&web, limit(1, 5)),
                RateVerdict::Allow,
                "request {n}"
            );
        }
        assert!(!limiter.check(&web, limit(1, 5)).is_allowed());
    }

    #[test]
    fn an_account_limit_is_shared_by_its_clients_and_apart_from_a_client_of_the_same_id() {
        let (_, limiter) = setup();
        let acme = AccountId::new("acme").unwrap();
        let same_name = id("acme");
        assert!(limiter.check_account(&acme, limit(1, 2)).is_allowed());
        assert!(limiter.check_account(&acme, limit(1, 2)).is_allowed());
        assert!(!limiter.check_account(&acme, limit(1, 2)).is_allowed());
        assert!(limiter.check(&same_name, limit(1, 2)).is_allowed());
        let other = AccountId::new("globex").unwrap();
        assert!(limiter.check_account(&other, limit(1, 2)).is_allowed());
    }

    #[test]
    fn clones_share_their_limiters() {
        let (_, limiter) = setup();
        let web = id("web");
        assert!(limiter.check(&web, limit(1, 1)).is_allowed());
        assert!(!limiter.clone().check(&web, limit(1, 1)).is_allowed());
    }

    #[test]
    fn capacity_bounds_the_number_of_limiters_kept() {
        let (_, limiter) = setup();
        let limiter = limiter.capacity(50);
        for n in 0..1_000 {
            let verdict = limiter.check(&id(&format!("client-{n}")), limit(10, 10));
            assert!(verdict.is_allowed());
        }
        limiter.limiters.by_client.run_pending_tasks();
        let kept = limiter.limiters.by_client.entry_count();
        assert!(kept <= 50, "{kept} limiters kept");
        assert_eq!(limiter.limiters.capacity, 50);
    }

    #[test]
    fn a_capacity_of_zero_keeps_one_limiter() {
        let (_, limiter) = setup();
        assert_eq!(limiter.capacity(0).limiters.capacity, 1);
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let cases = [
            (Duration::ZERO, 1),
            (Duration::from_nanos(1), 1),
            (Duration::from_secs(1), 1),
            (Duration::from_millis(1_001), 2),
            (Duration::from_secs(7), 7),
        ];
        for (wait, secs) in cases {
            assert_eq!(
                whole_seconds_up(wait),
                Duration::from_secs(secs),
                "{wait:?}"
            );
        }
    }

    #[test]
    fn retry_after_shrinks_as_time_passes_but_stays_at_least_a_second() {
        let (clock, limiter) = setup();
        let web = id("web");
        assert!(limiter.check(&web, limit(1, 1)).is_allowed());
        let one_second = RateVerdict::RetryAfter(Duration::from_secs(1));
        assert_eq!(limiter.check(&web, limit(1, 1)), one_second);
        clock.advance(time::Duration::milliseconds(900));
        assert_eq!(limiter.check(&web, limit(1, 1)), one_second);
    }

    #[test]
    fn idle_entries_live_until_their_limiter_has_refilled() {
        assert_eq!(idle_lifetime(limit(1, 1)), Duration::from_secs(2));
        assert_eq!(idle_lifetime(limit(1_000, 5)), Duration::from_secs(2));
        assert_eq!(idle_lifetime(limit(2, 5)), Duration::from_secs(4));
        assert_eq!(idle_lifetime(limit(1, 10)), Duration::from_secs(11));
    }

    #[test]
    fn times_outside_the_clock_range_saturate() {
        let before_1970 = datetime!(1900-01-01 00:00 UTC);
        assert_eq!(nanos_since_epoch(before_1970).as_u64(), 0);
        let far_future = datetime!(9999-12-31 23:59 UTC);
        assert_eq!(
            nanos_since_epoch(far_future).as_u64(),
            i64::MAX.unsigned_abs()
        );
        let t = datetime!(1970-01-01 00:00:01 UTC);
        assert_eq!(nanos_since_epoch(t).as_u64(), 1_000_000_000);
    }

    #[test]
    fn a_clock_that_moves_back_does_not_panic_or_refill_the_limit() {
        let (clock, limiter) = setup();
        let web = id("web");
        assert!(limiter.check(&web, limit(1, 1)).is_allowed());
        clock.advance(time::Duration::hours(-1));
        assert!(!limiter.check(&web, limit(1, 1)).is_allowed());
    }

    #[test]
    fn the_limiter_is_send_and_sync_and_debug_shows_no_clients() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ClientRateLimiter>();
        let (_, limiter) = setup();
        assert!(
            limiter
                .check(&id("secret-client"), limit(1, 1))
                .is_allowed()
        );
        let debug = format!("{limiter:?}");
        assert!(debug.contains("capacity: 100000"), "{debug}");
        assert!(!debug.contains("secret-client"), "{debug}");
    }

    /// A shared limiter that answers from a script: pass, refuse with a wait, or fail.
    struct Scripted {
        answers: std::sync::Mutex<Vec<Result<RateVerdict, BackendError>>>,
        asked: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl SharedRateLimiter for Scripted {
        async fn check(&self, _: &ClientId, _: RateLimit) -> Result<RateVerdict, BackendError> {
            self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.answers.lock().unwrap().remove(0)
        }

        async fn check_account(
            &self,
            _: &AccountId,
            _: RateLimit,
        ) -> Result<RateVerdict, BackendError> {
            self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.answers.lock().unwrap().remove(0)
        }
    }

    #[tokio::test]
    async fn the_layer_asks_a_shared_limiter_instead_of_its_own() {
        use crate::client::{Account, AccountId, ClientSpec, Role, RoleSet};
        use crate::policy::{Api, RouteTable};
        use crate::store::InMemoryStore;
        use bytes::Bytes;
        use http::{Method, Request, Response};
        use http_body_util::Full;
        use tower::ServiceExt;

        let store = Arc::new(InMemoryStore::new());
        let acme = store
            .open_account(
                Account::new(
                    AccountId::new("acme").unwrap(),
                    "Acme",
                    RoleSet::from_iter([Role::EVALUATOR]),
                )
                .unwrap(),
            )
            .unwrap();
        let web = store
            .add_client(
                &acme.account.id,
                ClientSpec::javascript("web").rate_limit(Some(limit(1, 1))),
            )
            .unwrap();
        let unlimited = acme.javascript.credential.expose().to_owned();
        let routes = RouteTable::new()
            .route(
                Method::GET,
                "/tiles/{z}/{x}/{y}.png",
                Api::new("WorldStreets", [Role::EVALUATOR]).plugin(true),
            )
            .unwrap();
        let shared = Arc::new(Scripted {
            answers: std::sync::Mutex::new(vec![
                Ok(RateVerdict::Allow),
                Ok(RateVerdict::Allow),
                Ok(RateVerdict::RetryAfter(Duration::from_secs(7))),
                Err(BackendError::new("the shared limiter is down")),
            ]),
            asked: Default::default(),
        });
        let svc = tower::ServiceBuilder::new()
            .layer(crate::AuthLayer::new(store.clone(), routes).shared_rate_limiter(shared.clone()))
            .service_fn(|_req: Request<Full<Bytes>>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
            });
        let send = |key: &str| {
            let req = Request::get(format!("/tiles/1/2/3.png?apikey={key}"))
                .body(Full::default())
                .unwrap();
            svc.clone().oneshot(req)
        };
        let key = web.credential.expose().to_owned();
        // Twice over the in-process limit of 1 a second: the shared limiter decides.
        assert_eq!(send(&key).await.unwrap().status(), 200);
        assert_eq!(send(&key).await.unwrap().status(), 200);
        let refused = send(&key).await.unwrap();
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()["retry-after"], "7");
        assert_eq!(send(&key).await.unwrap().status(), 503, "fails closed");
        // A client without a limit costs no round trip.
        assert_eq!(send(&unlimited).await.unwrap().status(), 200);
        assert_eq!(shared.asked.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    /// A counter that applies rate limits itself: it notes the limits each charge carries
    /// and answers from a script (or charges in memory when the script is empty).
    struct ApplyingCounter {
        inner: crate::limits::InMemoryUsageCounter,
        carried: std::sync::Mutex<Vec<crate::limits::ChargeRateLimits>>,
        answers: std::sync::Mutex<Vec<crate::limits::Charged>>,
    }

    #[async_trait]
    impl crate::limits::UsageCounter for ApplyingCounter {
        async fn charge(
            &self,
            charge: &crate::limits::Charge<'_>,
        ) -> Result<crate::limits::Charged, BackendError> {
            self.carried.lock().unwrap().push(charge.rate_limits);
            let scripted = self.answers.lock().unwrap().pop();
            match scripted {
                Some(answer) => Ok(answer),
                None => self.inner.charge(charge).await,
            }
        }

        fn applies_rate_limits(&self) -> bool {
            true
        }

        async fn record_refusal(
            &self,
            refused: &crate::limits::Refused<'_>,
        ) -> Result<(), BackendError> {
            self.inner.record_refusal(refused).await
        }

        async fn used(&self, account: &AccountId, day: time::Date) -> Result<u64, BackendError> {
            self.inner.used(account, day).await
        }

        async fn usage(
            &self,
            account: &AccountId,
            from: time::Date,
            to: time::Date,
        ) -> Result<Vec<crate::limits::DailyUsage>, BackendError> {
            self.inner.usage(account, from, to).await
        }
    }

    #[tokio::test]
    async fn a_counter_that_applies_the_rate_limits_gets_them_and_the_limiter_is_not_asked() {
        use crate::client::{Account, AccountId, ClientSpec, Plan, Role, RoleSet};
        use crate::limits::{ChargeRateLimits, Charged, RateLimited};
        use crate::policy::{Api, RouteTable};
        use crate::store::InMemoryStore;
        use bytes::Bytes;
        use http::{Method, Request, Response};
        use http_body_util::Full;

        let store = Arc::new(InMemoryStore::new());
        let acme = store
            .open_account(
                Account::new(
                    AccountId::new("acme").unwrap(),
                    "Acme",
                    RoleSet::from_iter([Role::EVALUATOR]),
                )
                .unwrap()
                .with_plan(Plan::default().with_rate_limit(Some(limit(3, 4)))),
            )
            .unwrap();
        let web = store
            .add_client(
                &acme.account.id,
                ClientSpec::javascript("web").rate_limit(Some(limit(1, 2))),
            )
            .unwrap();
        let routes = RouteTable::new()
            .route(
                Method::GET,
                "/tiles/{z}/{x}/{y}.png",
                Api::new("WorldStreets", [Role::EVALUATOR]).plugin(true),
            )
            .unwrap();
        let shared = Arc::new(Scripted {
            answers: std::sync::Mutex::new(Vec::new()),
            asked: Default::default(),
        });
        let wait = Duration::from_secs(3);
        let counter = Arc::new(ApplyingCounter {
            inner: crate::limits::InMemoryUsageCounter::new(),
            carried: Default::default(),
            // Popped from the end: allowed, over the account's limit, over the client's.
            answers: std::sync::Mutex::new(vec![
                Charged::over_rate(RateLimited::Client(wait)),
                Charged::over_rate(RateLimited::Account(wait)),
                Charged::new(true, false, 0),
            ]),
        });
        let layer = |shared: Option<Arc<Scripted>>| {
            let layer =
                crate::AuthLayer::new(store.clone(), routes.clone()).usage_counter(counter.clone());
            let layer = match shared {
                Some(shared) => layer.shared_rate_limiter(shared),
                None => layer,
            };
            tower::ServiceBuilder::new().layer(layer).service_fn(
                |_req: Request<Full<Bytes>>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                },
            )
        };
        let svc = layer(Some(shared.clone()));
        let key = web.credential.expose().to_owned();
        let send = |svc: &_, key: &str| {
            let req = Request::get(format!("/tiles/1/2/3.png?apikey={key}"))
                .body(Full::default())
                .unwrap();
            tower::ServiceExt::oneshot(Clone::clone(svc), req)
        };
        assert_eq!(send(&svc, &key).await.unwrap().status(), 200);
        let account = send(&svc, &key).await.unwrap();
        assert_eq!(account.status(), 429);
        assert_eq!(account.headers()["retry-after"], "3");
        let rule = account
            .extensions()
            .get::<crate::Rejection>()
            .and_then(|r| r.decision().and_then(|d| d.rule()));
        assert_eq!(rule, Some(crate::rule::Rule::AccountRateLimit));
        let client = send(&svc, &key).await.unwrap();
        assert_eq!(client.status(), 429);
        let rule = client
            .extensions()
            .get::<crate::Rejection>()
            .and_then(|r| r.decision().and_then(|d| d.rule()));
        assert_eq!(rule, Some(crate::rule::Rule::RateLimit));
        assert_eq!(shared.asked.load(std::sync::atomic::Ordering::SeqCst), 0);
        let both = ChargeRateLimits {
            client: Some(limit(1, 2)),
            account: Some(limit(3, 4)),
        };
        assert_eq!(*counter.carried.lock().unwrap(), [both; 3]);

        // A rate limit the charge did not carry is the counter's fault: 503.
        let unlimited = acme.javascript.credential.expose().to_owned();
        counter
            .answers
            .lock()
            .unwrap()
            .push(Charged::over_rate(RateLimited::Client(wait)));
        assert_eq!(send(&svc, &unlimited).await.unwrap().status(), 503);

        // Without a shared limiter, the limits stay in this process and the charge carries
        // none.
        counter.carried.lock().unwrap().clear();
        let local = layer(None);
        assert_eq!(send(&local, &key).await.unwrap().status(), 200);
        assert_eq!(
            *counter.carried.lock().unwrap(),
            [ChargeRateLimits::default()]
        );
    }
}
