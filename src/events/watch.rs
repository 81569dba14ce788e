//! The watches that turn what the layer sees on each request into events told once:
//! [`QuotaWatch`] (a quota at 80 % and at 100 %, once per account, quota and period) and
//! [`ExpiryWatch`] (a client or an account expiring within [`EXPIRY_NOTICE`], once per
//! expiry time).
//!
//! Each is a threshold check on numbers the caller holds already; only a request past a
//! threshold takes the watch's small lock, to see whether it was told already.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use gis_auth::client::AccountId;
//! use gis_auth::events::{Event, watch::{QuotaUse, QuotaWatch}};
//! use time::macros::datetime;
//!
//! let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
//! let sink = { let seen = seen.clone(); move |e: Event| seen.lock().unwrap().push(e) };
//! let watch = QuotaWatch::default();
//! let acme = AccountId::new("acme").unwrap();
//! let now = datetime!(2026-06-01 12:00 UTC);
//! let day = |used| QuotaUse { daily: Some((used, 1_000)), monthly: None };
//! watch.observe(&sink, &acme, day(799), now);
//! watch.observe(&sink, &acme, day(800), now);
//! watch.observe(&sink, &acme, day(900), now);
//! assert_eq!(seen.lock().unwrap().len(), 1);
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use time::{Date, OffsetDateTime};

use super::{EXPIRY_NOTICE, Event, EventKind, EventSink, QuotaPeriodKind};
use crate::client::{AccountId, ClientId};

/// The thresholds a quota is told at, in percent.
pub const QUOTA_THRESHOLDS: [u8; 2] = [80, 100];

/// How many (account, quota) pairs or expiries a watch remembers before it forgets those
/// of past periods (or past expiries); past that, it forgets everything and may tell again.
pub const WATCH_ENTRIES: usize = 100_000;

/// An account's usage after a charge, each quota as `(used, limit)` in the counter's unit
/// (milli-transactions); `None` for a quota the account does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUse {
    /// The day's usage and quota.
    pub daily: Option<(u64, u64)>,
    /// The month's usage and quota.
    pub monthly: Option<(u64, u64)>,
}

/// The thresholds each quota of each account reached, told once per period.
#[derive(Debug, Default)]
pub struct QuotaWatch {
    /// For each account and quota: the period it is of (its first day) and the highest
    /// threshold told in it.
    told: Mutex<HashMap<(AccountId, QuotaPeriodKind), (Date, u8)>>,
}

/// The highest of [`QUOTA_THRESHOLDS`] that `used` of `limit` reaches.
fn reached(used: u64, limit: u64) -> Option<u8> {
    if limit == 0 {
        return None;
    }
    QUOTA_THRESHOLDS
        .iter()
        .rev()
        .copied()
        .find(|p| u128::from(used) * 100 >= u128::from(limit) * u128::from(*p))
}

impl QuotaWatch {
    /// Tells `sink` about each quota of `account` that `usage` takes past a threshold not
    /// yet told in its period (the UTC day or month of `now`). A jump past both thresholds
    /// at once tells both, lowest first.
    pub fn observe(
        &self,
        sink: &dyn EventSink,
        account: &AccountId,
        usage: QuotaUse,
        now: OffsetDateTime,
    ) {
        let now = now.to_offset(time::UtcOffset::UTC);
        let day = now.date();
        let month = day.replace_day(1).unwrap_or(day);
        for (period, quota, start) in [
            (QuotaPeriodKind::Daily, usage.daily, day),
            (QuotaPeriodKind::Monthly, usage.monthly, month),
        ] {
            let Some((used, limit)) = quota else { continue };
            let Some(top) = reached(used, limit) else {
                continue;
            };
            let newly: Vec<u8> = {
                let mut told = self.told.lock().unwrap_or_else(PoisonError::into_inner);
                let key = (account.clone(), period);
                let before = match told.get(&key) {
                    Some((seen, highest)) if *seen == start => *highest,
                    _ => 0,
                };
                if before >= top {
                    continue;
                }
                if told.len() >= WATCH_ENTRIES && !told.contains_key(&key) {
                    told.retain(|_, (seen, _)| *seen >= month);
                    if told.len() >= WATCH_ENTRIES {
                        told.clear();
                    }
                }
                told.insert(key, (start, top));
                QUOTA_THRESHOLDS
                    .into_iter()
                    .filter(|p| *p > before && *p <= top)
                    .collect()
            };
            for percent in newly {
                sink.emit(Event::new(
                    now,
                    account.clone(),
                    None,
                    EventKind::QuotaReached {
                        period,
                        percent,
                        used: used / crate::policy::TRANSACTION,
                        limit: limit / crate::policy::TRANSACTION,
                    },
                ));
            }
        }
    }
}

/// What an expiry is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Expiring {
    Client(ClientId),
    Account(AccountId),
}

/// Expiries within [`EXPIRY_NOTICE`], told once each.
#[derive(Debug, Default)]
pub struct ExpiryWatch {
    told: Mutex<HashMap<Expiring, OffsetDateTime>>,
}

impl ExpiryWatch {
    /// Tells `sink` when the client (`client`, expiring at `client_expires`) or its
    /// account (its plan expiring at `account_expires`) expires within [`EXPIRY_NOTICE`]
    /// of `now` and was not told for that expiry time yet. An expiry already past is not
    /// told: the client is refused by then.
    pub fn observe(
        &self,
        sink: &dyn EventSink,
        account: &AccountId,
        client: &ClientId,
        client_expires: Option<OffsetDateTime>,
        account_expires: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) {
        let soon =
            |at: Option<OffsetDateTime>| at.filter(|at| *at > now && *at - now <= EXPIRY_NOTICE);
        let (client_soon, account_soon) = (soon(client_expires), soon(account_expires));
        if client_soon.is_none() && account_soon.is_none() {
            return;
        }
        let mut newly = Vec::new();
        {
            let mut told = self.told.lock().unwrap_or_else(PoisonError::into_inner);
            if told.len() >= WATCH_ENTRIES {
                told.retain(|_, at| *at > now);
                if told.len() >= WATCH_ENTRIES {
                    told.clear();
                }
            }
            if let Some(at) = client_soon
                && told.insert(Expiring::Client(client.clone()), at) != Some(at)
            {
                newly.push((
                    Some(client.clone()),
                    EventKind::ClientExpiring { expires_at: at },
                ));
            }
            if let Some(at) = account_soon
                && told.insert(Expiring::Account(account.clone()), at) != Some(at)
            {
                newly.push((None, EventKind::AccountExpiring { expires_at: at }));
            }
        }
        for (client, kind) in newly {
            sink.emit(Event::new(now, account.clone(), client, kind));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use time::macros::datetime;

    fn collect() -> (Arc<Mutex<Vec<Event>>>, impl EventSink) {
        let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
        let sink = {
            let seen = seen.clone();
            move |e: Event| seen.lock().unwrap().push(e)
        };
        (seen, sink)
    }

    #[test]
    fn each_quota_threshold_is_told_once_per_period() {
        let (seen, sink) = collect();
        let watch = QuotaWatch::default();
        let acme = AccountId::new("acme").unwrap();
        let at = datetime!(2026-06-01 12:00 UTC);
        let both = |d, m| QuotaUse {
            daily: Some((d, 1_000)),
            monthly: Some((m, 10_000)),
        };
        watch.observe(&sink, &acme, both(100, 100), at);
        watch.observe(&sink, &acme, both(1_000, 1_000), at);
        watch.observe(&sink, &acme, both(1_000, 8_000), at);
        watch.observe(&sink, &acme, both(1_000, 8_500), at);
        // The next day the daily quota is told again; the month's is not.
        let next = datetime!(2026-06-02 00:00 UTC);
        watch.observe(&sink, &acme, both(800, 8_600), next);
        let told: Vec<(QuotaPeriodKind, u8)> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e.kind {
                EventKind::QuotaReached {
                    period, percent, ..
                } => (period, percent),
                _ => panic!("{e:?}"),
            })
            .collect();
        use QuotaPeriodKind::*;
        assert_eq!(
            told,
            [(Daily, 80), (Daily, 100), (Monthly, 80), (Daily, 80)]
        );
    }

    #[test]
    fn an_expiry_is_told_once_within_the_notice_and_again_when_it_moves() {
        let (seen, sink) = collect();
        let watch = ExpiryWatch::default();
        let (acme, web) = (
            AccountId::new("acme").unwrap(),
            ClientId::new("web").unwrap(),
        );
        let now = datetime!(2026-06-01 12:00 UTC);
        let far = Some(now + time::Duration::days(8));
        let near = Some(now + time::Duration::days(6));
        watch.observe(&sink, &acme, &web, far, None, now);
        assert!(seen.lock().unwrap().is_empty());
        watch.observe(&sink, &acme, &web, near, None, now);
        watch.observe(&sink, &acme, &web, near, None, now);
        assert_eq!(seen.lock().unwrap().len(), 1);
        let moved = Some(now + time::Duration::days(5));
        watch.observe(&sink, &acme, &web, moved, moved, now);
        let kinds: Vec<&str> = seen.lock().unwrap().iter().map(|e| e.kind.name()).collect();
        assert_eq!(
            kinds,
            ["client_expiring", "client_expiring", "account_expiring"]
        );
        watch.observe(&sink, &acme, &web, Some(now), None, now);
        assert_eq!(seen.lock().unwrap().len(), 3, "a past expiry is not told");
    }
}
