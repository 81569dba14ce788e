//! [`InMemoryUsageCounter`]: exact counters in one process.
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
//! counter.charge(&Charge::new(&acme, &web, date!(2026-06-01), 100)).await?;
//! assert_eq!(counter.used(&acme, date!(2026-06-01)).await?, 100);
//! assert_eq!(counter.used(&acme, date!(2026-06-02)).await?, 0, "a new UTC day starts at 0");
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::{Date, OffsetDateTime};

use super::usage::{
    ApiUsage, Charge, Charged, DailyUsage, Refused, SEEN_REPORTED, SeenCounts, UsageCounter,
    last_use_minute,
};
use crate::client::{AccountId, ClientId};
use crate::error::BackendError;
use crate::policy::quota_admits;
use crate::rule::Rule;

/// How many days of usage the in-memory counter keeps by default.
pub const DEFAULT_RETENTION_DAYS: u16 = 92;

/// The counter's maps. Their keys are the ids of clients a store already resolved, never
/// text taken from a request, so a fast hash is safe.
type IdMap<K, V> = HashMap<K, V, crate::client::FastBuildHasher>;

/// The entry for `key`, made on first use. The ids are reference-counted, so the clone is
/// a count and the key is hashed once.
fn slot<'m, K: Hash + Eq + Clone, V: Default>(map: &'m mut IdMap<K, V>, key: &K) -> &'m mut V {
    map.entry(key.clone()).or_default()
}

#[derive(Debug, Default)]
struct Counts {
    requests: u64,
    cost: u64,
    refusals: BTreeMap<&'static str, u64>,
    shadowed: BTreeMap<&'static str, u64>,
    apis: BTreeMap<Box<str>, ApiUsage>,
    seen: SeenCounts,
    /// The latest request of the day (kept as it came, read to the minute).
    last_used: Option<OffsetDateTime>,
}

impl Counts {
    fn used_at(&mut self, at: Option<OffsetDateTime>) {
        if at > self.last_used {
            self.last_used = at;
        }
    }

    fn api(&mut self, api: &str, requests: u64, cost: u64) {
        let usage = match self.apis.get_mut(api) {
            Some(usage) => usage,
            None => self.apis.entry(api.into()).or_default(),
        };
        usage.requests = usage.requests.saturating_add(requests);
        usage.cost = usage.cost.saturating_add(cost);
    }
}

#[derive(Debug, Default)]
struct AccountDay {
    used: u64,
    clients: IdMap<ClientId, Counts>,
}

#[derive(Debug, Default)]
struct Day {
    accounts: IdMap<AccountId, AccountDay>,
}

/// A UTC calendar month: its year and its number (1 to 12), in calendar order.
type Month = (i32, u8);

fn month_of(day: Date) -> Month {
    (day.year(), day.month() as u8)
}

/// The month before `month`.
fn previous(month: Month) -> Month {
    match month {
        (year, 1) => (year.saturating_sub(1), 12),
        (year, m) => (year, m - 1),
    }
}

/// The days, and each account's total of each month.
#[derive(Debug, Default)]
struct Counters {
    days: BTreeMap<Date, Day>,
    months: BTreeMap<Month, IdMap<AccountId, u64>>,
}

/// Usage counters in memory: exact under any concurrency (one short lock per request),
/// keeping [`DEFAULT_RETENTION_DAYS`] days and the monthly totals of this month and the
/// one before. A client's last use is read from the days kept: one not used within them
/// counts as never used.
#[derive(Debug)]
pub struct InMemoryUsageCounter {
    counters: Mutex<Counters>,
    retention: u16,
}

impl Default for InMemoryUsageCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryUsageCounter {
    /// An empty counter.
    pub fn new() -> Self {
        Self {
            counters: Mutex::new(Counters::default()),
            retention: DEFAULT_RETENTION_DAYS,
        }
    }

    /// Keeps `days` days of usage (at least 2: today and yesterday).
    #[must_use]
    pub fn retention_days(mut self, days: u16) -> Self {
        self.retention = days.max(2);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Counters> {
        // Every update leaves the maps consistent, so a panic elsewhere cannot corrupt them.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The accounts' totals of `day`'s month, made on first use; months before the previous
    /// one are dropped then.
    fn month(
        months: &mut BTreeMap<Month, IdMap<AccountId, u64>>,
        day: Date,
    ) -> &mut IdMap<AccountId, u64> {
        let month = month_of(day);
        if !months.contains_key(&month) {
            let oldest = previous(month);
            months.retain(|m, _| *m >= oldest);
        }
        months.entry(month).or_default()
    }

    fn day<'m>(&self, days: &'m mut BTreeMap<Date, Day>, day: Date) -> &'m mut Day {
        if !days.contains_key(&day) {
            let oldest = day.saturating_sub(time::Duration::days(i64::from(self.retention) - 1));
            days.retain(|d, _| *d >= oldest);
        }
        days.entry(day).or_default()
    }

    fn charge_locked(&self, charge: &Charge<'_>) -> Charged {
        let mut counters = self.lock();
        let Counters { days, months } = &mut *counters;
        let month = slot(Self::month(months, charge.day), charge.account);
        let account = slot(&mut self.day(days, charge.day).accounts, charge.account);
        let daily_fits = charge
            .limit
            .is_none_or(|limit| quota_admits(account.used, charge.cost, limit));
        let monthly_fits = charge
            .monthly_limit
            .is_none_or(|limit| quota_admits(*month, charge.cost, limit));
        let fits = daily_fits && monthly_fits;
        let admitted = fits || !charge.enforce;
        if admitted {
            account.used = account.used.saturating_add(charge.cost);
            *month = month.saturating_add(charge.cost);
        }
        let (used, monthly_used) = (account.used, *month);
        let counts = slot(&mut account.clients, charge.client);
        counts.used_at(charge.at);
        let charged =
            Charged::new(admitted, !daily_fits, used).monthly(!monthly_fits, monthly_used);
        if let Some(seen) = charge.seen {
            counts.seen.add(seen);
        }
        if admitted {
            counts.requests += charge.requests;
            counts.cost = counts.cost.saturating_add(charge.cost);
            if let Some(api) = charge.api {
                counts.api(api, charge.requests, charge.cost);
            }
            for rule in charge.shadowed {
                *counts.shadowed.entry(rule.as_str()).or_default() += 1;
            }
            if !fits {
                *counts.shadowed.entry(Rule::Quota.as_str()).or_default() += 1;
            }
        } else {
            *counts.refusals.entry("quota_exceeded").or_default() += 1;
        }
        charged
    }

    fn record_refusal_locked(&self, refused: &Refused<'_>) {
        let mut counters = self.lock();
        let account = slot(
            &mut self.day(&mut counters.days, refused.day).accounts,
            refused.account,
        );
        let counts = slot(&mut account.clients, refused.client);
        counts.used_at(refused.at);
        *counts.refusals.entry(refused.rule.as_str()).or_default() += 1;
        if let Some(seen) = refused.seen {
            counts.seen.add(seen);
        }
    }
}

#[async_trait]
impl UsageCounter for InMemoryUsageCounter {
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, BackendError> {
        Ok(self.charge_locked(charge))
    }

    async fn record_refusal(&self, refused: &Refused<'_>) -> Result<(), BackendError> {
        self.record_refusal_locked(refused);
        Ok(())
    }

    fn charge_now(&self, charge: &Charge<'_>) -> Option<Result<Charged, BackendError>> {
        Some(Ok(self.charge_locked(charge)))
    }

    fn record_refusal_now(&self, refused: &Refused<'_>) -> Option<Result<(), BackendError>> {
        self.record_refusal_locked(refused);
        Some(Ok(()))
    }

    async fn last_used(
        &self,
        account: &AccountId,
    ) -> Result<BTreeMap<ClientId, OffsetDateTime>, BackendError> {
        let counters = self.lock();
        let mut last = BTreeMap::new();
        for day in counters.days.values() {
            let Some(account) = day.accounts.get(account) else {
                continue;
            };
            for (client, counts) in &account.clients {
                if let Some(at) = counts.last_used {
                    let minute = last_use_minute(at);
                    last.entry(client.clone())
                        .and_modify(|known: &mut OffsetDateTime| *known = (*known).max(minute))
                        .or_insert(minute);
                }
            }
        }
        Ok(last)
    }

    async fn used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        let counters = self.lock();
        Ok(counters
            .days
            .get(&day)
            .and_then(|d| d.accounts.get(account))
            .map_or(0, |a| a.used))
    }

    async fn usage(
        &self,
        account: &AccountId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyUsage>, BackendError> {
        let counters = self.lock();
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        for (date, day) in counters.days.range(from..=to) {
            let Some(account) = day.accounts.get(account) else {
                continue;
            };
            let mut rows: Vec<DailyUsage> = account
                .clients
                .iter()
                .map(|(client, c)| DailyUsage {
                    day: *date,
                    client: client.clone(),
                    requests: c.requests,
                    cost: c.cost,
                    refusals: c
                        .refusals
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), *v))
                        .collect(),
                    shadowed: c
                        .shadowed
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), *v))
                        .collect(),
                    apis: c.apis.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                    origins: c.seen.origins.top(SEEN_REPORTED),
                    networks: c.seen.networks.top(SEEN_REPORTED),
                })
                .collect();
            rows.sort_by(|a, b| a.client.as_str().cmp(b.client.as_str()));
            out.extend(rows);
        }
        Ok(out)
    }

    async fn monthly_used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        let counters = self.lock();
        Ok(counters
            .months
            .get(&month_of(day))
            .and_then(|m| m.get(account))
            .copied()
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Seen;
    use std::sync::Arc;
    use time::macros::date;

    fn ids() -> (AccountId, ClientId) {
        (
            AccountId::new("acme").unwrap(),
            ClientId::new("web").unwrap(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_charges_admit_exactly_what_fits() {
        let counter = Arc::new(InMemoryUsageCounter::new());
        let (a, c) = ids();
        let tasks: Vec<_> = (0..10_000)
            .map(|_| {
                let (counter, a, c) = (counter.clone(), a.clone(), c.clone());
                tokio::spawn(async move {
                    let charge = Charge {
                        limit: Some(5_000 * 1000),
                        ..Charge::new(&a, &c, date!(2026 - 06 - 01), 1000)
                    };
                    counter.charge(&charge).await.unwrap().admitted
                })
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.unwrap());
        }
        assert_eq!(admitted, 5_000);
        let usage = counter
            .usage(&a, date!(2026 - 06 - 01), date!(2026 - 06 - 01))
            .await
            .unwrap();
        assert_eq!(usage[0].requests, 5_000);
        assert_eq!(usage[0].refusals["quota_exceeded"], 5_000);
    }

    #[tokio::test]
    async fn a_charge_must_fit_both_quotas_and_a_refused_one_is_charged_to_neither() {
        let counter = InMemoryUsageCounter::new();
        let (a, c) = ids();
        let on = |day| Charge {
            limit: Some(2_000),
            monthly_limit: Some(3_000),
            ..Charge::new(&a, &c, day, 1_000)
        };
        let first = date!(2026 - 06 - 29);
        let second = date!(2026 - 06 - 30);
        assert!(counter.charge(&on(first)).await.unwrap().admitted);
        assert!(counter.charge(&on(first)).await.unwrap().admitted);
        let daily = counter.charge(&on(first)).await.unwrap();
        assert!(!daily.admitted && daily.over && !daily.over_monthly);
        assert_eq!((daily.used, daily.monthly_used), (2_000, 2_000));
        assert!(counter.charge(&on(second)).await.unwrap().admitted);
        let monthly = counter.charge(&on(second)).await.unwrap();
        assert!(!monthly.admitted && !monthly.over && monthly.over_monthly);
        assert_eq!((monthly.used, monthly.monthly_used), (1_000, 3_000));
        assert_eq!(
            counter.used(&a, second).await.unwrap(),
            1_000,
            "charged to neither"
        );
        assert_eq!(counter.monthly_used(&a, second).await.unwrap(), 3_000);
        // A new month starts at 0.
        let july = counter.charge(&on(date!(2026 - 07 - 01))).await.unwrap();
        assert!(july.admitted);
        assert_eq!(july.monthly_used, 1_000);
        assert_eq!(counter.monthly_used(&a, second).await.unwrap(), 3_000);
        let other = AccountId::new("other").unwrap();
        assert_eq!(counter.monthly_used(&other, second).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn months_before_the_previous_one_are_dropped() {
        let counter = InMemoryUsageCounter::new();
        let (a, c) = ids();
        for day in [
            date!(2026 - 04 - 10),
            date!(2026 - 05 - 10),
            date!(2026 - 06 - 10),
        ] {
            counter
                .charge(&Charge::new(&a, &c, day, 100))
                .await
                .unwrap();
        }
        assert_eq!(
            counter
                .monthly_used(&a, date!(2026 - 04 - 10))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            counter
                .monthly_used(&a, date!(2026 - 05 - 31))
                .await
                .unwrap(),
            100
        );
        assert_eq!(counter.lock().months.len(), 2);
    }

    #[tokio::test]
    async fn report_only_quota_admits_and_reports_over() {
        let counter = InMemoryUsageCounter::new();
        let (a, c) = ids();
        let charge = Charge {
            limit: Some(1000),
            enforce: false,
            shadowed: &[Rule::Origins],
            ..Charge::new(&a, &c, date!(2026 - 06 - 01), 1000)
        };
        assert!(!counter.charge(&charge).await.unwrap().over);
        let second = counter.charge(&charge).await.unwrap();
        assert!(second.admitted && second.over);
        assert_eq!(second.used, 2000);
        let usage = counter
            .usage(&a, date!(2026 - 06 - 01), date!(2026 - 06 - 01))
            .await
            .unwrap();
        assert_eq!(usage[0].shadowed["quota"], 1);
        assert_eq!(usage[0].shadowed["origins"], 2);
    }

    #[tokio::test]
    async fn days_are_separate_and_old_days_are_dropped() {
        let counter = InMemoryUsageCounter::new().retention_days(2);
        let (a, c) = ids();
        for day in [
            date!(2026 - 06 - 01),
            date!(2026 - 06 - 02),
            date!(2026 - 06 - 03),
        ] {
            counter
                .charge(&Charge::new(&a, &c, day, 100))
                .await
                .unwrap();
        }
        assert_eq!(counter.used(&a, date!(2026 - 06 - 01)).await.unwrap(), 0);
        assert_eq!(counter.used(&a, date!(2026 - 06 - 03)).await.unwrap(), 100);
        let usage = counter
            .usage(&a, date!(2026 - 06 - 01), date!(2026 - 06 - 30))
            .await
            .unwrap();
        assert_eq!(usage.len(), 2);
        assert!(
            counter
                .usage(&a, date!(2026 - 06 - 03), date!(2026 - 06 - 01))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn refusals_are_counted_by_reason_for_their_account_only() {
        let counter = InMemoryUsageCounter::new();
        let (a, c) = ids();
        let other = AccountId::new("other").unwrap();
        let day = date!(2026 - 06 - 01);
        for (account, rule) in [
            (&a, Rule::Origins),
            (&a, Rule::Origins),
            (&other, Rule::Ips),
        ] {
            counter
                .record_refusal(&Refused::new(account, &c, day, rule))
                .await
                .unwrap();
        }
        let usage = counter.usage(&a, day, day).await.unwrap();
        assert_eq!(usage.len(), 1);
        assert_eq!(usage[0].refusals["origins"], 2);
        assert!(!usage[0].refusals.contains_key("ips"));
    }

    #[tokio::test]
    async fn usage_is_broken_down_by_api_with_where_refusals_came_from() {
        let counter = InMemoryUsageCounter::new();
        let (a, c) = ids();
        let day = date!(2026 - 06 - 01);
        let origin = crate::restrict::RequestOrigin::from_origin_header("https://x.example");
        let seen = Seen::new(origin, Some("203.0.113.9".parse().unwrap()));
        let at = time::macros::datetime!(2026-06-01 10:15:42 UTC);
        let tiles = Charge {
            api: Some("WorldStreets"),
            at: Some(at),
            ..Charge::new(&a, &c, day, 1_000)
        };
        counter.charge(&tiles).await.unwrap();
        counter.charge(&tiles).await.unwrap();
        let geocode = Charge {
            api: Some("ReverseGeocoding"),
            shadowed: &[Rule::Origins],
            seen: Some(&seen),
            ..Charge::new(&a, &c, day, 5_000)
        };
        counter.charge(&geocode).await.unwrap();
        let refused = Refused::new(&a, &c, day, Rule::Ips)
            .seen(Some(&seen))
            .at(at + time::Duration::minutes(3));
        counter.record_refusal(&refused).await.unwrap();
        let row = &counter.usage(&a, day, day).await.unwrap()[0];
        assert_eq!(row.apis["WorldStreets"], ApiUsage::new(2, 2_000));
        assert_eq!(row.apis["ReverseGeocoding"], ApiUsage::new(1, 5_000));
        // Where the layer gave it: a report-only finding, a refusal.
        assert_eq!(row.origins.len(), 1);
        assert_eq!(
            (row.origins[0].value.as_str(), row.origins[0].count),
            ("https://x.example", 2)
        );
        assert_eq!(
            (row.networks[0].value.as_str(), row.networks[0].count),
            ("203.0.113.0/24", 2)
        );
        let last = counter.last_used(&a).await.unwrap();
        assert_eq!(last[&c], time::macros::datetime!(2026-06-01 10:18:00 UTC));
        // An older time never moves the last use back.
        counter.charge(&tiles).await.unwrap();
        assert_eq!(counter.last_used(&a).await.unwrap()[&c], last[&c]);
        let other = AccountId::new("other").unwrap();
        assert!(counter.last_used(&other).await.unwrap().is_empty());
    }
}
