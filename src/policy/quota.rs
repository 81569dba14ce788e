//! The arithmetic of daily and monthly quotas, in milli-transactions: what a request costs
//! against what is left ([`QuotaFacts`]), the state a response reports ([`QuotaState`]), and
//! when a quota day or month ends. Pure; the counters that keep the usage are in [`crate::limits`], and
//! the verdict on a request is [`Policy`](super::Policy)'s.
//!
//! ```
//! use gis_auth::policy::{TRANSACTION, next_utc_midnight, next_utc_month, quota_admits};
//! use time::macros::datetime;
//!
//! assert!(quota_admits(9 * TRANSACTION, TRANSACTION, 10 * TRANSACTION));
//! assert!(!quota_admits(9 * TRANSACTION + 1, TRANSACTION, 10 * TRANSACTION));
//! assert_eq!(next_utc_midnight(datetime!(2026-06-01 23:59 UTC)), datetime!(2026-06-02 0:00 UTC));
//! assert_eq!(next_utc_month(datetime!(2026-12-31 23:59 UTC)), datetime!(2027-01-01 0:00 UTC));
//! ```

use time::OffsetDateTime;

/// One transaction, in the milli-units costs are counted in (a tile at 0.1 transaction
/// costs 100).
pub const TRANSACTION: u64 = 1000;

/// Milli-transactions as (fractional) transactions, as usage reports show them.
pub fn transactions(milli: u64) -> f64 {
    milli as f64 / TRANSACTION as f64
}

/// What is known of an account's usage today and this UTC month when its quotas are
/// decided, in milli-transactions: the usage before a request and its cost (what `explain`
/// is told), or a usage counter's answer to charging it (what the layer and the
/// [`Meter`](crate::layer::Meter) learn). Either way the quota rule of
/// [`Policy`](super::Policy) gives the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaFacts {
    /// Before the request: whether it fits is worked out from these.
    Before {
        /// Used so far today, before this request.
        used: u64,
        /// Used so far this month, before this request.
        monthly_used: u64,
        /// What this request costs.
        cost: u64,
    },
    /// The counter's answer to charging the request: it compared atomically, so its word
    /// on whether the request went over each quota is taken.
    Charged {
        /// The day's usage after the charge (unchanged when the counter refused it).
        used: u64,
        /// The month's usage after the charge (unchanged when the counter refused it).
        monthly_used: u64,
        /// Whether the request went (or, report-only, would have gone) over the daily
        /// quota.
        over_daily: bool,
        /// Whether it went (or would have gone) over the monthly quota.
        over_monthly: bool,
    },
}

/// Which quota a [`QuotaState`] is: the account's daily or its monthly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaPeriod {
    /// Transactions per UTC day; resets at 00:00 UTC.
    Day,
    /// Transactions per UTC calendar month; resets at 00:00 UTC on the first.
    Month,
}

impl QuotaPeriod {
    /// `daily` or `monthly`, as the `Quota-Warning` header says it.
    pub fn adjective(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "daily",
            QuotaPeriod::Month => "monthly",
        }
    }
}

/// An account's quota as of a request, in milli-transactions ([`TRANSACTION`](TRANSACTION)
/// is one): of its daily and monthly quotas, the one with the fewest transactions left (the
/// one refusing, when a request is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuotaState {
    /// The quota.
    pub limit: u64,
    /// Used in the period, this request included when it was admitted.
    pub used: u64,
    /// When the period ends (the next 00:00 UTC, or the first of the next month).
    pub reset: OffsetDateTime,
    /// Which quota this is.
    pub period: QuotaPeriod,
}

impl QuotaState {
    /// The quota in whole transactions.
    pub fn limit_transactions(&self) -> u64 {
        self.limit / TRANSACTION
    }

    /// Whole transactions left.
    pub fn remaining_transactions(&self) -> u64 {
        self.limit.saturating_sub(self.used) / TRANSACTION
    }

    /// Seconds from `now` until the quota resets, at least 1.
    pub fn reset_seconds(&self, now: OffsetDateTime) -> u64 {
        seconds_until(self.reset, now)
    }

    /// Milli-transactions left.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Whether at least `percent` % of the quota is used.
    pub fn used_at_least(&self, percent: u8) -> bool {
        u128::from(self.used) * 100 >= u128::from(self.limit) * u128::from(percent)
    }
}

/// Whole seconds from `now` until `then`, rounded up, at least 1.
pub(crate) fn seconds_until(then: OffsetDateTime, now: OffsetDateTime) -> u64 {
    let nanos = (then - now).whole_nanoseconds().max(1);
    u64::try_from((nanos + 999_999_999) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// The next 00:00 UTC after `now`: when a daily quota resets.
pub fn next_utc_midnight(now: OffsetDateTime) -> OffsetDateTime {
    let date = now.to_offset(time::UtcOffset::UTC).date();
    date.next_day()
        .unwrap_or(date)
        .with_time(time::Time::MIDNIGHT)
        .assume_utc()
}

/// The first instant of the UTC calendar month after `now`'s: when a monthly quota resets.
pub fn next_utc_month(now: OffsetDateTime) -> OffsetDateTime {
    let date = now.to_offset(time::UtcOffset::UTC).date();
    let (year, month) = match date.month() {
        time::Month::December => (date.year().saturating_add(1), time::Month::January),
        month => (date.year(), month.next()),
    };
    time::Date::from_calendar_date(year, month, 1)
        .unwrap_or(date)
        .with_time(time::Time::MIDNIGHT)
        .assume_utc()
}

/// A quota (daily or monthly) of `transactions` in milli-transactions, the unit usage is
/// counted in.
pub fn daily_limit(transactions: u64) -> u64 {
    transactions.saturating_mul(TRANSACTION)
}

/// Whether a request costing `cost` fits a quota of `limit` with `used` already spent.
pub fn quota_admits(used: u64, cost: u64, limit: u64) -> bool {
    used.checked_add(cost).is_some_and(|total| total <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_month_ends_at_the_first_of_the_next_one() {
        for (now, next) in [
            (
                datetime!(2026-01-31 23:59:59 UTC),
                datetime!(2026-02-01 0:00 UTC),
            ),
            (
                datetime!(2026-02-01 0:00 UTC),
                datetime!(2026-03-01 0:00 UTC),
            ),
            (
                datetime!(2026-12-15 12:00 UTC),
                datetime!(2027-01-01 0:00 UTC),
            ),
            (
                datetime!(2026-06-30 23:30 -01:00),
                datetime!(2026-08-01 0:00 UTC),
            ),
        ] {
            assert_eq!(next_utc_month(now), next, "{now}");
        }
    }
}
