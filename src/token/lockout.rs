//! Brute-force protection for the token endpoint.
//!
//! Failed client authentications are counted in fixed windows (10 minutes by default) per
//! client id *and* caller address (20 by default) and per caller address alone (100 by
//! default). Once a count is reached, further attempts from there get 429 with
//! `Retry-After` until the window ends, whether their secret is right or not (so the lockout
//! is no oracle). The same client from other addresses is unaffected, so an attacker cannot
//! lock a client out. Successful authentications never count.
//!
//! Only failures are counted, and an attempt must be refused *before* its secret is
//! checked; a token-bucket limiter that consumes on every check cannot express that, so the
//! windows are kept here, in bounded caches.
//!
//! ```
//! use gis_auth::token::LockoutPolicy;
//!
//! let policy = LockoutPolicy::default();
//! assert_eq!((policy.per_client_and_address, policy.per_address), (20, 100));
//! assert_eq!(policy.window.as_secs(), 600);
//! ```

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use moka::sync::Cache;
use time::OffsetDateTime;

/// How many failed authentications are allowed, and over what window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures allowed per client id from one address within a window.
    pub per_client_and_address: u32,
    /// Failures allowed from one address, whatever the client id, within a window.
    pub per_address: u32,
    /// The window.
    pub window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            per_client_and_address: 20,
            per_address: 100,
            window: Duration::from_secs(600),
        }
    }
}

/// The most keys each count keeps; older ones are evicted first.
const CAPACITY: u64 = 100_000;

#[derive(Debug, Default)]
struct Window {
    /// (window start in unix seconds, failures in it)
    state: Mutex<(i64, u32)>,
}

impl Window {
    /// The window's failure count at `now` (0 once it has ended).
    fn count(&self, now: i64, window: i64) -> (i64, u32) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now >= state.0.saturating_add(window) {
            (now, 0)
        } else {
            *state
        }
    }

    fn record(&self, now: i64, window: i64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now >= state.0.saturating_add(window) {
            *state = (now, 1);
        } else {
            state.1 = state.1.saturating_add(1);
        }
    }
}

pub(crate) struct FailureLimiter {
    policy: LockoutPolicy,
    by_pair: Cache<(Arc<str>, Option<IpAddr>), Arc<Window>>,
    by_addr: Cache<Option<IpAddr>, Arc<Window>>,
}

impl FailureLimiter {
    pub(crate) fn new(policy: LockoutPolicy) -> Self {
        let ttl = policy.window.max(Duration::from_secs(1));
        Self {
            policy,
            by_pair: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(ttl)
                .build(),
            by_addr: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(ttl)
                .build(),
        }
    }

    fn window_secs(&self) -> i64 {
        i64::try_from(self.policy.window.as_secs()).unwrap_or(i64::MAX)
    }

    /// How long until attempts for `client` from `addr` are accepted again, if they are
    /// locked out now.
    pub(crate) fn locked_for(
        &self,
        client: &str,
        addr: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        let now = now.unix_timestamp();
        let window = self.window_secs();
        let remaining = |start: i64| {
            Duration::from_secs(
                u64::try_from(start.saturating_add(window) - now)
                    .unwrap_or(0)
                    .max(1),
            )
        };
        let mut locked: Option<Duration> = None;
        if let Some(w) = self.by_pair.get(&(Arc::from(client), addr)) {
            let (start, count) = w.count(now, window);
            if count >= self.policy.per_client_and_address {
                locked = Some(remaining(start));
            }
        }
        if let Some(w) = self.by_addr.get(&addr) {
            let (start, count) = w.count(now, window);
            if count >= self.policy.per_address {
                locked = Some(locked.map_or(remaining(start), |l| l.max(remaining(start))));
            }
        }
        locked
    }

    /// Counts a failed authentication for `client` from `addr`.
    pub(crate) fn record_failure(&self, client: &str, addr: Option<IpAddr>, now: OffsetDateTime) {
        let now = now.unix_timestamp();
        let window = self.window_secs();
        self.by_pair
            .get_with((Arc::from(client), addr), Default::default)
            .record(now, window);
        self.by_addr
            .get_with(addr, Default::default)
            .record(now, window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn twenty_failures_lock_the_pair_until_the_window_ends() {
        let l = FailureLimiter::new(LockoutPolicy::default());
        for _ in 0..19 {
            l.record_failure("c", ip("198.51.100.1"), T0);
        }
        assert_eq!(l.locked_for("c", ip("198.51.100.1"), T0), None);
        l.record_failure("c", ip("198.51.100.1"), T0);
        let locked = l.locked_for("c", ip("198.51.100.1"), T0 + time::Duration::minutes(4));
        assert_eq!(locked, Some(Duration::from_secs(360)));
        // other addresses and other clients are unaffected
        assert_eq!(l.locked_for("c", ip("198.51.100.2"), T0), None);
        assert_eq!(l.locked_for("d", ip("198.51.100.1"), T0), None);
        // the window ends
        assert_eq!(
            l.locked_for("c", ip("198.51.100.1"), T0 + time::Duration::minutes(10)),
            None
        );
    }

    #[test]
    fn one_address_guessing_many_clients_is_locked_out() {
        let l = FailureLimiter::new(LockoutPolicy::default());
        for i in 0..100 {
            l.record_failure(&format!("c{i}"), ip("203.0.113.9"), T0);
        }
        assert!(l.locked_for("fresh", ip("203.0.113.9"), T0).is_some());
        assert!(l.locked_for("fresh", ip("203.0.113.10"), T0).is_none());
    }
}
