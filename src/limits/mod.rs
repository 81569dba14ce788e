//! Limits: the state behind daily and monthly quotas and rate limits. The quota counter and
//! per-client statistics sit behind the [`UsageCounter`] trait so that many instances can
//! share one (Redis) or a process can keep its own ([`InMemoryUsageCounter`]); request-rate
//! limits are kept per client and per account in memory ([`ClientRateLimiter`]) or shared
//! ([`SharedRateLimiter`]). The arithmetic of a quota and its verdict are the policy's
//! ([`crate::policy`]); this module only counts.
//!
//! Every authorised request is one [`UsageCounter::charge`]: a single atomic
//! increment-and-compare against the account's daily and monthly quotas that also counts the request, its cost
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

#[cfg(feature = "redis")]
mod lease;
#[cfg(feature = "redis")]
mod leased;
mod memory;
mod rate;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_gcra;
#[cfg(feature = "redis")]
mod redis_rate;
#[cfg(feature = "redis")]
mod tally;
mod usage;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::leased::{
    DEFAULT_FLUSH_INTERVAL, DEFAULT_LEASE_MAX_AGE, DEFAULT_LEASE_WINDOW, LeasedUsageCounter,
};

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{
    DEFAULT_KEY_PREFIX, DEFAULT_REDIS_TIMEOUT, RedisUsageCounter, redis_connection,
};
pub use memory::{DEFAULT_RETENTION_DAYS, InMemoryUsageCounter};
pub use rate::{ClientRateLimiter, DEFAULT_RATE_LIMITER_CAPACITY, RateVerdict, SharedRateLimiter};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_rate::RedisRateLimiter;
pub use usage::{
    ApiUsage, Charge, ChargeRateLimits, Charged, DailyUsage, IPV4_NETWORK_PREFIX,
    IPV6_NETWORK_PREFIX, RateLimited, Refused, SEEN_KEPT, SEEN_REPORTED, Seen, SeenCount,
    TopCounts, UsageCounter, last_use_minute,
};
