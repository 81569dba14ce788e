//! Time, injected: every expiry decision asks a [`Clock`], so tests move time instead of
//! sleeping.
//!
//! ```
//! use gis_auth::clock::{Clock, ManualClock};
//! use time::macros::datetime;
//!
//! let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
//! clock.advance(time::Duration::hours(1));
//! assert_eq!(clock.now(), datetime!(2026-01-01 01:00 UTC));
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    ///
    /// Times outside what an `i64` of nanoseconds since 1970 can hold (years 1678 to 2261)
    /// are clamped to that range.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            nanos: Arc::new(AtomicI64::new(to_nanos(start))),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: OffsetDateTime) {
        self.nanos.store(to_nanos(now), Ordering::SeqCst);
    }

    /// Moves the time forward (or back, for a negative duration).
    pub fn advance(&self, by: time::Duration) {
        let by = i64::try_from(by.whole_nanoseconds()).unwrap_or(if by.is_negative() {
            i64::MIN
        } else {
            i64::MAX
        });
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let nanos = self.nanos.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

fn to_nanos(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
        let b = a.clone();
        a.advance(time::Duration::seconds(90));
        assert_eq!(b.now(), datetime!(2026-03-01 12:01:30 UTC));
        b.set(datetime!(2030-01-01 00:00 UTC));
        assert_eq!(a.now(), datetime!(2030-01-01 00:00 UTC));
    }

    #[test]
    fn huge_advances_saturate_instead_of_overflowing() {
        let c = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
        c.advance(time::Duration::MAX);
        assert!(c.now().year() >= 2262);
    }
}
