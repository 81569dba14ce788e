//! Counts waiting to be written to Redis, as plain increments: per account and day, "hash
//! field → increment" for the day's usage hash, and per account and month, an increment
//! of the month's total; per client and day, where refused and report-only requests came
//! from (bounded, as [`TopCounts`](super::TopCounts)); per client, its latest last use. The field names are
//! those of the CHARGE script of [`RedisUsageCounter`](crate::limits::RedisUsageCounter),
//! named in one place ([`field`]), and what one charge adds is decided in one place
//! ([`Tally::charge`]): a new statistic is a new field there.

use std::collections::{BTreeMap, HashMap};

use time::{Date, OffsetDateTime};

use super::usage::{Charge, Refused, Seen, SeenCounts, last_use_minute};
use crate::client::{AccountId, ClientId, FastBuildHasher};
use crate::rule::Rule;

/// The fields of an account's usage hash of a day, as the CHARGE script writes them.
pub(crate) mod field {
    use crate::client::ClientId;

    /// The account's usage of the day, in milli-transactions.
    pub(crate) const USED: &str = "used";

    /// The refusal reason of a charge the quota refused.
    pub(crate) const QUOTA_EXCEEDED: &str = "quota_exceeded";

    /// Authorised requests of `client`.
    pub(crate) fn requests(client: &ClientId) -> String {
        format!("requests:{client}")
    }

    /// Their cost, in milli-transactions.
    pub(crate) fn cost(client: &ClientId) -> String {
        format!("cost:{client}")
    }

    /// Requests of `client` refused for `reason`.
    pub(crate) fn refused(client: &ClientId, reason: &str) -> String {
        format!("refused:{client}:{reason}")
    }

    /// Requests of `client` that the report-only `rule` would have refused.
    pub(crate) fn shadowed(client: &ClientId, rule: &str) -> String {
        format!("shadowed:{client}:{rule}")
    }

    /// Authorised requests of `client` to `api`.
    pub(crate) fn api_requests(client: &ClientId, api: &str) -> String {
        format!("apireq:{client}:{api}")
    }

    /// Their cost, in milli-transactions.
    pub(crate) fn api_cost(client: &ClientId, api: &str) -> String {
        format!("apicost:{client}:{api}")
    }
}

/// Increments of the fields of one usage hash.
pub(crate) type Fields = BTreeMap<String, i64>;

/// What a charge did, for [`Tally::charge`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// Whether the request was admitted.
    pub(crate) admitted: bool,
    /// Whether it fits both quotas (a report-only quota admits what does not).
    pub(crate) fits: bool,
    /// Whether its cost is added to the usage totals here: `false` when a lease already
    /// counted it in Redis.
    pub(crate) counts_usage: bool,
}

/// Increments not yet written: per (account, day) the usage hash's fields, per (account,
/// first day of the month) the month's total, per (account, day, client) where requests
/// came from, and per (account, client) the latest last-use minute.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) days: HashMap<(AccountId, Date), Fields, FastBuildHasher>,
    pub(crate) months: HashMap<(AccountId, Date), i64, FastBuildHasher>,
    pub(crate) seen: HashMap<(AccountId, Date, ClientId), SeenCounts, FastBuildHasher>,
    pub(crate) last_use: HashMap<(AccountId, ClientId), OffsetDateTime, FastBuildHasher>,
}

fn bump(fields: &mut Fields, field: String, by: i64) {
    if by != 0 {
        *fields.entry(field).or_default() += by;
    }
}

fn amount(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn first_of_month(day: Date) -> Date {
    day.replace_day(1).unwrap_or(day)
}

impl Tally {
    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.days.is_empty()
            && self.months.is_empty()
            && self.seen.is_empty()
            && self.last_use.is_empty()
    }

    /// Counts where a request of `client` on `day` came from.
    fn seen(&mut self, account: &AccountId, day: Date, client: &ClientId, seen: Option<&Seen>) {
        if let Some(seen) = seen.filter(|seen| !seen.is_empty()) {
            self.seen
                .entry((account.clone(), day, client.clone()))
                .or_default()
                .add(seen);
        }
    }

    /// Notes `at`, to the minute, as `client`'s last use, if it is the latest.
    fn used_at(&mut self, account: &AccountId, client: &ClientId, at: Option<OffsetDateTime>) {
        if let Some(at) = at {
            self.raise(account, client, last_use_minute(at));
        }
    }

    fn raise(&mut self, account: &AccountId, client: &ClientId, minute: OffsetDateTime) {
        let last = self
            .last_use
            .entry((account.clone(), client.clone()))
            .or_insert(minute);
        *last = (*last).max(minute);
    }

    fn fields(&mut self, account: &AccountId, day: Date) -> &mut Fields {
        self.days.entry((account.clone(), day)).or_default()
    }

    /// Adds `by` (negative to give back) to the account's usage of `day` and of its month.
    pub(crate) fn usage(&mut self, account: &AccountId, day: Date, by: i64) {
        if by == 0 {
            return;
        }
        bump(self.fields(account, day), field::USED.to_owned(), by);
        *self
            .months
            .entry((account.clone(), first_of_month(day)))
            .or_default() += by;
    }

    /// Counts one charge as the CHARGE script does: where it came from and its last use
    /// whatever the answer; the request, its cost (by API too) and its report-only findings
    /// for the client when admitted (and the quota's, when it did not fit), a
    /// `quota_exceeded` refusal when not.
    pub(crate) fn charge(&mut self, charge: &Charge<'_>, outcome: Outcome) {
        let client = charge.client;
        self.seen(charge.account, charge.day, client, charge.seen);
        self.used_at(charge.account, client, charge.at);
        if outcome.admitted && outcome.counts_usage {
            self.usage(charge.account, charge.day, amount(charge.cost));
        }
        let fields = self.fields(charge.account, charge.day);
        if !outcome.admitted {
            bump(fields, field::refused(client, field::QUOTA_EXCEEDED), 1);
            return;
        }
        bump(fields, field::requests(client), amount(charge.requests));
        bump(fields, field::cost(client), amount(charge.cost));
        if let Some(api) = charge.api {
            bump(
                fields,
                field::api_requests(client, api),
                amount(charge.requests),
            );
            bump(fields, field::api_cost(client, api), amount(charge.cost));
        }
        for rule in charge.shadowed {
            bump(fields, field::shadowed(client, rule.as_str()), 1);
        }
        if !outcome.fits {
            bump(fields, field::shadowed(client, Rule::Quota.as_str()), 1);
        }
    }

    /// Counts a request that a rule refused, where it came from and its last use.
    pub(crate) fn refusal(&mut self, refused: &Refused<'_>) {
        let (account, client, day) = (refused.account, refused.client, refused.day);
        bump(
            self.fields(account, day),
            field::refused(client, refused.rule.as_str()),
            1,
        );
        self.seen(account, day, client, refused.seen);
        self.used_at(account, client, refused.at);
    }

    /// Adds everything `other` holds (what a failed write gives back).
    pub(crate) fn merge(&mut self, other: Tally) {
        for ((account, day), fields) in other.days {
            let mine = self.fields(&account, day);
            for (field, by) in fields {
                bump(mine, field, by);
            }
        }
        for (key, by) in other.months {
            *self.months.entry(key).or_default() += by;
        }
        for (key, seen) in other.seen {
            self.seen.entry(key).or_default().merge(&seen);
        }
        for ((account, client), minute) in other.last_use {
            self.raise(&account, &client, minute);
        }
    }

    /// What a failed write keeps for the next one: every count, but no give-back (a
    /// negative usage increment), since the write may have landed after all and a second
    /// give-back would free what is spent. A give-back lost is a block counted as used
    /// until the day (or month) ends: the quota is never exceeded.
    pub(crate) fn retained(mut self) -> Tally {
        for fields in self.days.values_mut() {
            if fields.get(field::USED).is_some_and(|by| *by < 0) {
                fields.remove(field::USED);
            }
        }
        self.months.retain(|_, by| *by > 0);
        self.days.retain(|_, fields| !fields.is_empty());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_charge_adds_the_fields_the_charge_script_writes() {
        let (acme, web) = (
            AccountId::new("acme").unwrap(),
            ClientId::new("web").unwrap(),
        );
        let day = date!(2026 - 06 - 01);
        let mut tally = Tally::default();
        let seen = Seen::new(None, Some("203.0.113.9".parse().unwrap()));
        let charge = Charge {
            shadowed: &[Rule::Origins],
            api: Some("WorldStreets"),
            seen: Some(&seen),
            at: Some(time::macros::datetime!(2026-06-01 10:15:42 UTC)),
            ..Charge::new(&acme, &web, day, 1_000)
        };
        let admitted = Outcome {
            admitted: true,
            fits: false,
            counts_usage: true,
        };
        tally.charge(&charge, admitted);
        tally.charge(
            &charge,
            Outcome {
                admitted: false,
                ..admitted
            },
        );
        tally.refusal(&Refused::new(&acme, &web, day, Rule::Ips));
        let fields = &tally.days[&(acme.clone(), day)];
        let expected: Fields = [
            ("used", 1_000),
            ("requests:web", 1),
            ("cost:web", 1_000),
            ("apireq:web:WorldStreets", 1),
            ("apicost:web:WorldStreets", 1_000),
            ("shadowed:web:origins", 1),
            ("shadowed:web:quota", 1),
            ("refused:web:quota_exceeded", 1),
            ("refused:web:ips", 1),
        ]
        .into_iter()
        .map(|(f, n)| (f.to_owned(), n))
        .collect();
        assert_eq!(fields, &expected);
        // Where it came from and the last use, whatever the answer.
        let networks = &tally.seen[&(acme.clone(), day, web.clone())].networks;
        assert_eq!(networks.top(1)[0].count, 2);
        assert_eq!(
            tally.last_use[&(acme.clone(), web.clone())],
            time::macros::datetime!(2026-06-01 10:15:00 UTC)
        );
        assert_eq!(tally.months[&(acme, date!(2026 - 06 - 01))], 1_000);
    }

    #[test]
    fn a_failed_write_keeps_the_counts_but_not_the_give_backs() {
        let (acme, web) = (
            AccountId::new("acme").unwrap(),
            ClientId::new("web").unwrap(),
        );
        let day = date!(2026 - 06 - 15);
        let mut tally = Tally::default();
        tally.usage(&acme, day, -5_000);
        tally.charge(
            &Charge::new(&acme, &web, day, 0),
            Outcome {
                admitted: true,
                fits: true,
                counts_usage: false,
            },
        );
        let kept = tally.retained();
        assert!(kept.months.is_empty());
        let fields = &kept.days[&(acme.clone(), day)];
        assert_eq!(fields.get("used"), None);
        assert_eq!(fields["requests:web"], 1);
        let mut again = Tally::default();
        again.merge(kept);
        again.usage(&acme, day, 2_000);
        assert_eq!(again.months[&(acme, date!(2026 - 06 - 01))], 2_000);
    }
}
