//! Limits: the state behind daily quotas and rate limits. The daily quota counter and
//! per-client statistics sit behind the [`UsageCounter`] trait so that many instances can
//! share one (Redis) or a process can keep its own ([`InMemoryUsageCounter`]); request-rate
//! limits are kept per client in memory ([`ClientRateLimiter`]) or shared
//! ([`SharedRateLimiter`]). The arithmetic of a quota and its verdict are the policy's
//! ([`crate::policy`]); this module only counts.
//!
//! Every authorised request is one [`UsageCounter::charge`]: a single atomic
//! increment-and-compare against the account's quota that also counts the request, its cost
//! and its report-only findings for the client, so a remote backend needs one round trip.
//!
//! ```
//! use gis_auth::client::{AccountId, ClientId};
//! use gis_auth::limits::{Charge, InMemoryUsageCounter, UsageCounter};
//! use time::macros::date;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let counter = InMemoryUsageCounter::new();
//! let (acme, web) = (AccountId::new("acme")?, ClientId::new("web")?);
//! let charge = Charge { limit: Some(1_000), ..Charge::new(&acme, &web, date!(2026-06-01), 600) };
//! assert!(counter.charge(&charge).await?.admitted);
//! let second = counter.charge(&charge).await?;
//! assert!(!second.admitted, "600 + 600 is over the quota of 1,000");
//! assert_eq!(second.used, 600);
//! # Ok(()) }
//! ```

mod memory;
mod rate;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_rate;

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::Date;

#[cfg(feature = "redis")]
pub(crate) use self::redis::RedisLink;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{
    DEFAULT_KEY_PREFIX, DEFAULT_REDIS_TIMEOUT, RedisUsageCounter, redis_connection,
};
pub use memory::{DEFAULT_RETENTION_DAYS, InMemoryUsageCounter};
pub use rate::{ClientRateLimiter, DEFAULT_RATE_LIMITER_CAPACITY, SharedRateLimiter};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_rate::RedisRateLimiter;

use crate::client::{AccountId, ClientId};
use crate::error::BackendError;

/// One authorised request to count, in milli-transactions.
#[derive(Debug, Clone, Copy)]
pub struct Charge<'a> {
    /// The account whose quota pays.
    pub account: &'a AccountId,
    /// The client that called.
    pub client: &'a ClientId,
    /// The UTC day.
    pub day: Date,
    /// What the request costs; 0 for unmetered requests, counted in the statistics only.
    pub cost: u64,
    /// How many requests this charge counts in the statistics: 1 for a request, 0 for a
    /// further charge of a request already counted (see [`Meter`](crate::layer::Meter)).
    pub requests: u64,
    /// The account's daily quota, if it has one.
    pub limit: Option<u64>,
    /// Whether a request over the quota is refused (`false` runs the quota report-only:
    /// it is admitted, charged and reported as over).
    pub enforce: bool,
    /// The report-only rules that would have refused the request, for the statistics.
    pub shadowed: &'a [&'static str],
}

impl<'a> Charge<'a> {
    /// A charge of one request costing `cost`, with no quota, enforced, and no findings.
    pub fn new(account: &'a AccountId, client: &'a ClientId, day: Date, cost: u64) -> Self {
        Self {
            account,
            client,
            day,
            cost,
            requests: 1,
            limit: None,
            enforce: true,
            shadowed: &[],
        }
    }
}

/// What a charge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charged {
    /// Whether the request fits (or the quota runs report-only).
    pub admitted: bool,
    /// Whether the request went (or would have gone) over the quota.
    pub over: bool,
    /// The account's usage of the day after the charge (unchanged when refused).
    pub used: u64,
}

/// A client's usage on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyUsage {
    /// The day.
    pub day: Date,
    /// The client.
    pub client: ClientId,
    /// Authorised requests.
    pub requests: u64,
    /// Their cost, in milli-transactions.
    pub cost: u64,
    /// Refused requests by reason (the rejection's error code or rule).
    pub refusals: BTreeMap<String, u64>,
    /// Requests a report-only restriction would have refused, by rule.
    pub shadowed: BTreeMap<String, u64>,
}

/// Counts usage against daily quotas and keeps per-client statistics.
///
/// Implementations must make [`charge`](UsageCounter::charge) atomic: with a quota of N
/// transactions, any number of concurrent requests admit exactly as many as fit.
#[async_trait]
pub trait UsageCounter: Send + Sync {
    /// Adds `charge.cost` to the account's usage of `charge.day` if it fits `charge.limit`
    /// (always when there is no limit or it is not enforced), and counts the request for
    /// the client; a refusal is counted as a `quota_exceeded` refusal instead.
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, BackendError>;

    /// Counts a refused request of a known client.
    async fn record_refusal(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: Date,
        reason: &'static str,
    ) -> Result<(), BackendError>;

    /// [`charge`](UsageCounter::charge) done at once, by a counter that never waits (one in
    /// memory); `None` (the default) means "ask `charge`". The layer asks this first, so
    /// such a counter costs no future and no timer per request.
    fn charge_now(&self, charge: &Charge<'_>) -> Option<Result<Charged, BackendError>> {
        let _ = charge;
        None
    }

    /// [`record_refusal`](UsageCounter::record_refusal) done at once; `None` (the default)
    /// means "ask `record_refusal`".
    fn record_refusal_now(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: Date,
        reason: &'static str,
    ) -> Option<Result<(), BackendError>> {
        let _ = (account, client, day, reason);
        None
    }

    /// The account's usage on `day`, in milli-transactions.
    async fn used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError>;

    /// The per-client statistics of an account from `from` to `to` (inclusive), by day then
    /// client.
    async fn usage(
        &self,
        account: &AccountId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyUsage>, BackendError>;
}

#[async_trait]
impl<C: UsageCounter + ?Sized> UsageCounter for std::sync::Arc<C> {
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, BackendError> {
        (**self).charge(charge).await
    }

    async fn record_refusal(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: Date,
        reason: &'static str,
    ) -> Result<(), BackendError> {
        (**self).record_refusal(account, client, day, reason).await
    }

    fn charge_now(&self, charge: &Charge<'_>) -> Option<Result<Charged, BackendError>> {
        (**self).charge_now(charge)
    }

    fn record_refusal_now(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: Date,
        reason: &'static str,
    ) -> Option<Result<(), BackendError>> {
        (**self).record_refusal_now(account, client, day, reason)
    }

    async fn used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        (**self).used(account, day).await
    }

    async fn usage(
        &self,
        account: &AccountId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyUsage>, BackendError> {
        (**self).usage(account, from, to).await
    }
}
