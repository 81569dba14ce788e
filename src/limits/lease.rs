//! The arithmetic of quota leases (see
//! [`LeasedUsageCounter`](crate::limits::LeasedUsageCounter)): how fast an account spends
//! on this instance ([`RateMeter`]), and how large a block to ask Redis for
//! ([`block_wanted`]). Redis itself caps what it grants at a share of what remains
//! ([`ROOM_SHARE`]), atomically, so that blocks shrink to exact per-request charges as a
//! quota nears its end.

use std::time::Duration;

use time::OffsetDateTime;

/// The largest block, as a fraction of the quota: 1 / 100 (1 %).
pub(crate) const QUOTA_SHARE: u64 = 100;

/// The largest block, as a fraction of what remains of the quota when it is granted:
/// 1 / 8. Near the end of a quota blocks shrink with what remains, down to the cost of
/// one request: the last requests are charged exactly.
pub(crate) const ROOM_SHARE: u64 = 8;

/// How fast an account spends on this instance, measured on the counter's clock: what
/// was spent in the last complete window, and what has been spent in the current one.
#[derive(Debug, Clone)]
pub(crate) struct RateMeter {
    start: OffsetDateTime,
    spent: u64,
    last: u64,
}

impl RateMeter {
    /// A meter that has seen nothing yet, starting at `now`.
    pub(crate) fn new(now: OffsetDateTime) -> Self {
        Self {
            start: now,
            spent: 0,
            last: 0,
        }
    }

    /// Counts `cost` spent at `now`; a window of `window` or more that has passed becomes
    /// the last rate.
    pub(crate) fn record(&mut self, now: OffsetDateTime, cost: u64, window: Duration) {
        self.roll(now, window);
        self.spent = self.spent.saturating_add(cost);
    }

    fn roll(&mut self, now: OffsetDateTime, window: Duration) {
        let elapsed = now - self.start;
        let window_nanos = window.as_nanos().max(1);
        if elapsed.is_negative() {
            // The clock went back: start again from now.
            self.start = now;
            return;
        }
        let elapsed = u128::try_from(elapsed.whole_nanoseconds()).unwrap_or(0);
        if elapsed < window_nanos {
            return;
        }
        // What was spent over `elapsed`, scaled to one window; a window with nothing in it
        // (an idle account) forgets the old rate.
        let scaled = u128::from(self.spent) * window_nanos / elapsed;
        self.last = u64::try_from(scaled).unwrap_or(u64::MAX);
        self.start = now;
        self.spent = 0;
    }

    /// What one `window` of this account's traffic costs: the last complete window's rate,
    /// or what the current window has spent if that is more (a window not over yet has
    /// spent at most one window's worth, so a rising rate is seen at once).
    pub(crate) fn per_window(&self) -> u64 {
        self.last.max(self.spent)
    }

    /// Whether nothing was spent for a whole window before `now` (the meter can go).
    pub(crate) fn idle(&self, now: OffsetDateTime, window: Duration) -> bool {
        self.spent == 0 && self.last == 0 && now - self.start >= window
    }
}

/// The block to ask for: about one window of the account's traffic (`per_window`), at
/// most 1 % of the smaller quota, and never less than `need` (what the request in hand
/// still needs). Redis grants less when little remains (see [`ROOM_SHARE`]).
pub(crate) fn block_wanted(
    per_window: u64,
    need: u64,
    limit: Option<u64>,
    monthly_limit: Option<u64>,
) -> u64 {
    let cap = [limit, monthly_limit]
        .into_iter()
        .flatten()
        .map(|quota| quota / QUOTA_SHARE)
        .min()
        .unwrap_or(u64::MAX);
    per_window.min(cap).max(need)
}

/// What Redis grants for `need` and `want` when `room` remains (the LEASE script does
/// the same, atomically): nothing when `need` does not fit, else `want` capped at an
/// eighth of the room, but at least `need`.
#[cfg(test)]
pub(crate) fn granted(want: u64, need: u64, room: u64) -> u64 {
    if room < need {
        0
    } else {
        need.max(want.min(room / ROOM_SHARE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_meter_measures_the_spending_of_the_last_second() {
        let t0 = datetime!(2026-06-01 12:00 UTC);
        let mut meter = RateMeter::new(t0);
        for ms in 0..500 {
            // 1,000 milli-transactions every 2 ms: 500 transactions a second.
            meter.record(t0 + time::Duration::milliseconds(2 * ms), 1_000, SECOND);
        }
        assert_eq!(meter.per_window(), 500_000, "the window not over yet");
        meter.record(t0 + time::Duration::seconds(1), 1_000, SECOND);
        assert_eq!(meter.per_window(), 500_000, "the last second's rate");
        // Half the rate over the next two seconds.
        for ms in 0..500 {
            meter.record(
                t0 + time::Duration::milliseconds(1_000 + 4 * ms),
                1_000,
                SECOND,
            );
        }
        meter.record(t0 + time::Duration::seconds(3), 0, SECOND);
        assert_eq!(meter.per_window(), 250_000);
    }

    #[test]
    fn a_meter_forgets_an_idle_account_and_survives_a_clock_going_back() {
        let t0 = datetime!(2026-06-01 12:00 UTC);
        let mut meter = RateMeter::new(t0);
        meter.record(t0, 5_000, SECOND);
        meter.record(t0 + time::Duration::seconds(10), 0, SECOND);
        assert_eq!(meter.per_window(), 500, "5,000 over ten seconds");
        meter.record(t0 + time::Duration::seconds(20), 0, SECOND);
        assert_eq!(meter.per_window(), 0);
        assert!(meter.idle(t0 + time::Duration::seconds(21), SECOND));
        meter.record(t0, 1_000, SECOND);
        assert_eq!(meter.per_window(), 1_000);
    }

    #[test]
    fn a_block_is_a_windows_traffic_at_most_one_percent_of_the_smaller_quota() {
        assert_eq!(block_wanted(50_000, 1_000, Some(100_000_000), None), 50_000);
        assert_eq!(
            block_wanted(50_000_000, 1_000, Some(100_000_000), None),
            1_000_000,
            "1 % of the daily quota"
        );
        assert_eq!(
            block_wanted(50_000_000, 1_000, Some(100_000_000), Some(20_000_000)),
            200_000,
            "1 % of the monthly quota, the smaller"
        );
        assert_eq!(
            block_wanted(0, 1_000, Some(100_000_000), None),
            1_000,
            "no rate yet: exactly the request"
        );
        assert_eq!(
            block_wanted(50_000, 3_000, Some(10_000), None),
            3_000,
            "never less than the request needs"
        );
    }

    #[test]
    fn grants_shrink_to_exact_charges_as_the_quota_ends() {
        assert_eq!(
            granted(100_000, 1_000, 10_000_000),
            100_000,
            "far from the end"
        );
        assert_eq!(
            granted(100_000, 1_000, 80_000),
            10_000,
            "an eighth of what remains"
        );
        assert_eq!(granted(100_000, 1_000, 7_000), 1_000, "exact: one request");
        assert_eq!(granted(100_000, 1_000, 1_000), 1_000, "the last request");
        assert_eq!(granted(100_000, 1_000, 999), 0, "nothing fits");
        // Spending a quota by the grants above, each of at most an eighth of what remains,
        // leaves less than one request unspent.
        let (mut room, mut grants) = (1_000_000u64, 0);
        while let Some(grant) = Some(granted(100_000, 1_000, room)).filter(|g| *g > 0) {
            room -= grant;
            grants += 1;
        }
        assert!(room < 1_000, "{room} left");
        assert!(grants < 100, "{grants} grants");
    }
}
