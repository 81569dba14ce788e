//! [`UsageCounter`]: the contract of a daily quota counter, and what passes through it
//! ([`Charge`], [`Charged`], [`DailyUsage`]). Rule names travel typed ([`Rule`]); counters
//! store them as [`Rule::as_str`] gives them, so stored statistics keep their keys.
//!
//! ```
//! use gis_auth::client::{AccountId, ClientId};
//! use gis_auth::limits::{Charge, InMemoryUsageCounter, UsageCounter};
//! use gis_auth::policy::Rule;
//! use time::macros::date;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let counter = InMemoryUsageCounter::new();
//! let (acme, web) = (AccountId::new("acme")?, ClientId::new("web")?);
//! let day = date!(2026-06-01);
//! counter.record_refusal(&acme, &web, day, Rule::Origins).await?;
//! assert_eq!(counter.usage(&acme, day, day).await?[0].refusals["origins"], 1);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use time::Date;

use crate::client::{AccountId, ClientId, RateLimit};
use crate::error::BackendError;
use crate::rule::Rule;

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
    /// The account's monthly quota (per UTC calendar month, the month of `day`), if it has
    /// one. A charge must fit both quotas; one that does not is charged to neither.
    pub monthly_limit: Option<u64>,
    /// Whether a request over the quota is refused (`false` runs the quota report-only:
    /// it is admitted, charged and reported as over).
    pub enforce: bool,
    /// The report-only rules that would have refused the request, for the statistics.
    pub shadowed: &'a [Rule],
    /// The request-rate limits the request meets before it is charged, for a counter that
    /// [applies them itself](UsageCounter::applies_rate_limits); none otherwise (the layer
    /// has checked them already).
    pub rate_limits: ChargeRateLimits,
}

/// The request-rate limits a [`Charge`] meets first, in this order: the client's own, then
/// the one all the account's clients share. A request the client's limit refuses is not
/// counted against the account's, and a request either refuses is not charged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChargeRateLimits {
    /// The client's own limit, if it has one.
    pub client: Option<RateLimit>,
    /// The account's limit, shared by all its clients, if its plan has one.
    pub account: Option<RateLimit>,
}

impl ChargeRateLimits {
    /// Whether there is no limit to apply.
    pub fn is_empty(&self) -> bool {
        self.client.is_none() && self.account.is_none()
    }
}

/// Which rate limit refused a charge that a counter applied them to, and how long the
/// client should wait (whole seconds, at least one, as
/// [`RateVerdict::RetryAfter`](super::RateVerdict::RetryAfter) gives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimited {
    /// The client's own limit.
    Client(Duration),
    /// The account's limit, shared by all its clients.
    Account(Duration),
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
            monthly_limit: None,
            enforce: true,
            shadowed: &[],
            rate_limits: ChargeRateLimits::default(),
        }
    }
}

/// What a charge did: a usage counter's answer, which the policy's quota rule decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Charged {
    /// Whether the request fits both quotas (or the quota runs report-only).
    pub admitted: bool,
    /// Whether the request went (or would have gone) over the daily quota.
    pub over: bool,
    /// The account's usage of the day after the charge (unchanged when refused).
    pub used: u64,
    /// Whether the request went (or would have gone) over the monthly quota.
    pub over_monthly: bool,
    /// The account's usage of the month after the charge (unchanged when refused).
    pub monthly_used: u64,
    /// The rate limit that refused the request, for a charge whose rate limits the counter
    /// applied: the request was not charged, and the counter counted the refusal (by
    /// [`Rule::RateLimit`] or [`Rule::AccountRateLimit`]).
    pub rate_limited: Option<RateLimited>,
}

impl Charged {
    /// A counter's answer: whether it admitted the request, whether the request went (or
    /// would have gone) over the daily quota, and the account's usage of the day after the
    /// charge; the month as [`monthly`](Charged::monthly) says (nothing used, not over).
    pub fn new(admitted: bool, over: bool, used: u64) -> Self {
        Self {
            admitted,
            over,
            used,
            over_monthly: false,
            monthly_used: 0,
            rate_limited: None,
        }
    }

    /// A counter's answer to a charge one of its rate limits refused: not admitted, nothing
    /// charged or read.
    pub fn over_rate(by: RateLimited) -> Self {
        Self {
            rate_limited: Some(by),
            ..Self::new(false, false, 0)
        }
    }

    /// The same answer, with whether the request went (or would have gone) over the
    /// monthly quota and the account's usage of the month after the charge.
    #[must_use]
    pub fn monthly(mut self, over: bool, used: u64) -> Self {
        self.over_monthly = over;
        self.monthly_used = used;
        self
    }
}

/// A client's usage on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DailyUsage {
    /// The day.
    pub day: Date,
    /// The client.
    pub client: ClientId,
    /// Authorised requests.
    pub requests: u64,
    /// Their cost, in milli-transactions.
    pub cost: u64,
    /// Refused requests by reason: the rule that refused ([`Rule::as_str`]), or
    /// `quota_exceeded` for a charge the quota refused.
    pub refusals: BTreeMap<String, u64>,
    /// Requests a report-only restriction would have refused, by rule.
    pub shadowed: BTreeMap<String, u64>,
}

impl DailyUsage {
    /// No usage yet by `client` on `day`: fill in the counts.
    pub fn new(day: Date, client: ClientId) -> Self {
        Self {
            day,
            client,
            requests: 0,
            cost: 0,
            refusals: BTreeMap::new(),
            shadowed: BTreeMap::new(),
        }
    }
}

/// Counts usage against daily and monthly quotas and keeps per-client statistics.
///
/// Implementations must make [`charge`](UsageCounter::charge) atomic: with a quota of N
/// transactions, any number of concurrent requests admit exactly as many as fit; a request
/// must fit both the daily and the monthly quota, and one refused by either is charged to
/// neither.
///
/// A counter may also apply a request's rate limits in the same step
/// ([`applies_rate_limits`](UsageCounter::applies_rate_limits)), so that a remote one costs
/// one round trip where a shared rate limiter and a counter would cost up to three.
#[async_trait]
pub trait UsageCounter: Send + Sync {
    /// Adds `charge.cost` to the account's usage of `charge.day` and of its month if it fits
    /// both `charge.limit` and `charge.monthly_limit` (always when there is no limit or it
    /// is not enforced), and counts the request for the client; a refusal is counted as a
    /// `quota_exceeded` refusal instead.
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, BackendError>;

    /// Counts a request of a known client that `rule` refused.
    async fn record_refusal(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: Date,
        rule: Rule,
    ) -> Result<(), BackendError>;

    /// [`charge`](UsageCounter::charge) done at once, by a counter that never waits (one in
    /// memory); `None` (the default) means "ask `charge`". The layer asks this first, so
    /// such a counter costs no future and no timer per request.
    fn charge_now(&self, charge: &Charge<'_>) -> Option<Result<Charged, BackendError>> {
        let _ = charge;
        None
    }

    /// Whether [`charge`](UsageCounter::charge) applies [`Charge::rate_limits`] itself,
    /// as a [`SharedRateLimiter`](super::SharedRateLimiter) would (shared by every instance,
    /// client first, then account), before the quota: it then answers a request a limit
    /// refuses with [`Charged::over_rate`], charges nothing and counts the refusal by its
    /// rule. A layer with a shared rate limiter hands the limits to such a counter instead
    /// of asking the limiter: one call per request. `false` (the default): the layer
    /// checks the limits first and the charge carries none.
    fn applies_rate_limits(&self) -> bool {
        false
    }

    /// [`record_refusal`](UsageCounter::record_refusal) done at once; `None` (the default)
    /// means "ask `record_refusal`".
    fn record_refusal_now(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: Date,
        rule: Rule,
    ) -> Option<Result<(), BackendError>> {
        let _ = (account, client, day, rule);
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

    /// The account's usage in the UTC calendar month of `day`, in milli-transactions. The
    /// default sums the month's days of [`usage`](UsageCounter::usage) up to `day`; a
    /// counter that keeps a monthly total answers from it.
    async fn monthly_used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        let first = day.replace_day(1).unwrap_or(day);
        let rows = self.usage(account, first, day).await?;
        Ok(rows
            .iter()
            .fold(0u64, |sum, row| sum.saturating_add(row.cost)))
    }
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
        rule: Rule,
    ) -> Result<(), BackendError> {
        (**self).record_refusal(account, client, day, rule).await
    }

    fn charge_now(&self, charge: &Charge<'_>) -> Option<Result<Charged, BackendError>> {
        (**self).charge_now(charge)
    }

    fn applies_rate_limits(&self) -> bool {
        (**self).applies_rate_limits()
    }

    fn record_refusal_now(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: Date,
        rule: Rule,
    ) -> Option<Result<(), BackendError>> {
        (**self).record_refusal_now(account, client, day, rule)
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

    async fn monthly_used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        (**self).monthly_used(account, day).await
    }
}
