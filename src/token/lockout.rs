//! Brute-force protection for the token endpoint.
//!
//! Failed client authentications are counted in fixed windows (10 minutes by default) per
//! client id *and* caller address (20 by default) and per caller address alone (100 by
//! default). An IPv6 caller is counted by its /64, the block one subscriber is given, so
//! fresh addresses from it bring no fresh budget. A `client_id` that cannot be a client id
//! is counted against the caller's address only, and the counts keep a SHA-256 digest of
//! the id, never the id: an entry's size is fixed, whatever was submitted. Once a count is reached, further attempts from there get 429 with
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

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::client::ClientId;

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

/// The prefix length IPv6 callers are counted by: a /64 is what one subscriber is given.
const IPV6_PREFIX: u8 = 64;

/// What a client id is counted under: the SHA-256 of a well-formed id, never the id (an
/// entry's size does not depend on what was submitted).
type IdDigest = [u8; 32];

/// Where failures are counted from: an IPv4 address, the /64 of an IPv6 address (an
/// IPv4-mapped IPv6 address counts as the IPv4 address), or `None` when it is unknown.
pub(crate) type Source = Option<IpNet>;

/// The source a caller at `addr` is counted as.
pub(crate) fn source_of(addr: Option<IpAddr>) -> Source {
    addr.map(|addr| match addr.to_canonical() {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
        IpAddr::V6(v6) => IpNet::V6(
            Ipv6Net::new(v6, IPV6_PREFIX).map_or_else(|_| Ipv6Net::from(v6), |net| net.trunc()),
        ),
    })
}

fn digest_of(client: &ClientId) -> IdDigest {
    Sha256::digest(client.as_str().as_bytes()).into()
}

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

/// The failure counts: per (client id digest, source) and per source.
///
/// A `client_id` that cannot be a client id ([`ClientId::new`] refuses it: too long, or
/// outside the alphabet) is counted against its source only, so what an entry holds is
/// bounded by the types, whatever was submitted.
pub(crate) struct FailureLimiter {
    policy: LockoutPolicy,
    by_pair: Cache<(IdDigest, Source), Arc<Window>>,
    by_source: Cache<Source, Arc<Window>>,
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
            by_source: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(ttl)
                .build(),
        }
    }

    fn window_secs(&self) -> i64 {
        i64::try_from(self.policy.window.as_secs()).unwrap_or(i64::MAX)
    }

    /// How long until attempts for `client` (`None`: a submitted id that cannot be one)
    /// from `addr` are accepted again, if they are locked out now.
    pub(crate) fn locked_for(
        &self,
        client: Option<&ClientId>,
        addr: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        let source = source_of(addr);
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
        if let Some(client) = client
            && let Some(w) = self.by_pair.get(&(digest_of(client), source))
        {
            let (start, count) = w.count(now, window);
            if count >= self.policy.per_client_and_address {
                locked = Some(remaining(start));
            }
        }
        if let Some(w) = self.by_source.get(&source) {
            let (start, count) = w.count(now, window);
            if count >= self.policy.per_address {
                locked = Some(locked.map_or(remaining(start), |l| l.max(remaining(start))));
            }
        }
        locked
    }

    /// Counts a failed authentication for `client` (`None`: a submitted id that cannot be
    /// one, counted against the address only) from `addr`.
    pub(crate) fn record_failure(
        &self,
        client: Option<&ClientId>,
        addr: Option<IpAddr>,
        now: OffsetDateTime,
    ) {
        let source = source_of(addr);
        let now = now.unix_timestamp();
        let window = self.window_secs();
        if let Some(client) = client {
            self.by_pair
                .get_with((digest_of(client), source), Default::default)
                .record(now, window);
        }
        self.by_source
            .get_with(source, Default::default)
            .record(now, window);
    }
}

#[cfg(test)]
impl FailureLimiter {
    /// The entries each count holds now: (per client and source, per source).
    fn entries(&self) -> (u64, u64) {
        self.by_pair.run_pending_tasks();
        self.by_source.run_pending_tasks();
        (self.by_pair.entry_count(), self.by_source.entry_count())
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

    fn id(s: &str) -> ClientId {
        ClientId::new(s).unwrap()
    }

    #[test]
    fn twenty_failures_lock_the_pair_until_the_window_ends() {
        let l = FailureLimiter::new(LockoutPolicy::default());
        let (c, d) = (id("c"), id("d"));
        for _ in 0..19 {
            l.record_failure(Some(&c), ip("198.51.100.1"), T0);
        }
        assert_eq!(l.locked_for(Some(&c), ip("198.51.100.1"), T0), None);
        l.record_failure(Some(&c), ip("198.51.100.1"), T0);
        let locked = l.locked_for(
            Some(&c),
            ip("198.51.100.1"),
            T0 + time::Duration::minutes(4),
        );
        assert_eq!(locked, Some(Duration::from_secs(360)));
        // other addresses and other clients are unaffected
        assert_eq!(l.locked_for(Some(&c), ip("198.51.100.2"), T0), None);
        assert_eq!(l.locked_for(Some(&d), ip("198.51.100.1"), T0), None);
        // the window ends
        assert_eq!(
            l.locked_for(
                Some(&c),
                ip("198.51.100.1"),
                T0 + time::Duration::minutes(10)
            ),
            None
        );
    }

    #[test]
    fn one_address_guessing_many_clients_is_locked_out() {
        let l = FailureLimiter::new(LockoutPolicy::default());
        for i in 0..100 {
            l.record_failure(Some(&id(&format!("c{i}"))), ip("203.0.113.9"), T0);
        }
        let fresh = id("fresh");
        assert!(l.locked_for(Some(&fresh), ip("203.0.113.9"), T0).is_some());
        assert!(l.locked_for(Some(&fresh), ip("203.0.113.10"), T0).is_none());
    }

    #[test]
    fn ids_that_cannot_be_client_ids_count_against_the_address_only() {
        let l = FailureLimiter::new(LockoutPolicy::default());
        for _ in 0..100 {
            l.record_failure(None, ip("203.0.113.9"), T0);
        }
        assert_eq!(l.entries(), (0, 1));
        assert!(l.locked_for(None, ip("203.0.113.9"), T0).is_some());
        assert!(
            l.locked_for(Some(&id("c")), ip("203.0.113.9"), T0)
                .is_some()
        );
        assert!(l.locked_for(None, ip("203.0.113.10"), T0).is_none());
    }

    #[test]
    fn ipv6_callers_are_counted_per_slash_64() {
        assert_eq!(
            source_of(ip("2001:db8:1:2:aaaa::1")),
            Some("2001:db8:1:2::/64".parse().unwrap())
        );
        assert_eq!(
            source_of(ip("::ffff:192.0.2.7")),
            Some("192.0.2.7/32".parse().unwrap())
        );
        assert_eq!(source_of(None), None);

        let l = FailureLimiter::new(LockoutPolicy::default());
        let c = id("c");
        for i in 0..100u32 {
            // a fresh address of the same /64 each time
            let addr = format!("2001:db8:1:2:{:x}:{:x}::1", i >> 16, i & 0xffff);
            l.record_failure(Some(&c), ip(&addr), T0);
        }
        assert!(
            l.locked_for(Some(&id("d")), ip("2001:db8:1:2:ffff::9"), T0)
                .is_some()
        );
        assert!(l.locked_for(Some(&c), ip("2001:db8:1:3::1"), T0).is_none());
        assert_eq!(l.entries(), (1, 1));
    }

    #[test]
    fn entries_hold_a_fixed_size_digest_and_never_the_submitted_id() {
        // Nothing a key or value owns lives on the heap but the window itself: the size
        // of every entry is bounded by the types, whatever the caller submitted.
        assert!(!std::mem::needs_drop::<(IdDigest, Source)>());
        assert!(!std::mem::needs_drop::<Source>());
        let l = FailureLimiter::new(LockoutPolicy::default());
        let longest = "x".repeat(128);
        l.record_failure(Some(&id(&longest)), ip("192.0.2.1"), T0);
        assert_eq!(l.entries(), (1, 1));
        assert!(
            l.by_pair
                .iter()
                .all(|(key, _)| key.0 == <[u8; 32]>::from(Sha256::digest(longest.as_bytes())))
        );
    }

    /// 100,000 failed requests with 8 KiB ids from 1,000 addresses (100 each) stay well
    /// under 32 MiB: counted by entry, times a bound on an entry's size from its types.
    #[test]
    fn a_flood_of_huge_ids_from_many_addresses_keeps_the_lockout_small() {
        let l = FailureLimiter::new(LockoutPolicy::default());
        let mut huge = "A".repeat(8 * 1024);
        for n in 0..100_000u32 {
            // every id different, as an attacker would send them
            huge.replace_range(..10, &format!("{n:010}"));
            let addr = std::net::Ipv4Addr::from(0xc000_0200u32 + n % 1_000);
            // as the endpoint does: an id that cannot be one is not kept
            let client = ClientId::new(&huge).ok();
            assert!(client.is_none());
            l.record_failure(client.as_ref(), Some(IpAddr::V4(addr)), T0);
        }
        let (pairs, sources) = l.entries();
        assert_eq!((pairs, sources), (0, 1_000));

        // A bound on one entry: its key and value, the window behind the `Arc` (with the
        // `Arc`'s two counts), and a generous 1 KiB for the cache's own bookkeeping (its
        // entry record, queue nodes and table slot); plus, per cache, a frequency sketch
        // and table sized by the capacity, 64 bytes a slot.
        let window = std::mem::size_of::<Window>() + 2 * std::mem::size_of::<usize>();
        let pair_entry = std::mem::size_of::<((IdDigest, Source), Arc<Window>)>() + window + 1024;
        let source_entry = std::mem::size_of::<(Source, Arc<Window>)>() + window + 1024;
        let fixed = 2 * CAPACITY * 64;
        let bound = pairs * pair_entry as u64 + sources * source_entry as u64 + fixed;
        assert!(bound < 32 * 1024 * 1024, "{bound} bytes");
    }
}
