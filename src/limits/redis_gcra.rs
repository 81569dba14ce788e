//! The GCRA step in Redis, written once: the Lua function that checks and moves a rate
//! limit's theoretical arrival time, and the keys and arguments it is called with. Both
//! [`RedisRateLimiter`](super::RedisRateLimiter)'s script and the charge script of
//! [`RedisUsageCounter`](super::RedisUsageCounter) (which applies a request's rate limits in
//! the same call as its charge) are built from it, so the two share each limit's state.

use crate::client::{AccountId, ClientId, RateLimit};
use crate::clock::Clock;

/// `gcra(key, now, interval, tolerance)`: allows the request when the next theoretical
/// arrival time, less the burst tolerance, is due, and then moves it; returns 0 when allowed,
/// or the microseconds to wait (nothing moved). All times in microseconds since 1970.
pub(crate) const GCRA_FUNCTION: &str = r"
local function gcra(key, now, interval, tolerance)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then
    tat = now
  end
  local next_tat = tat + interval
  local due = next_tat - tolerance
  if now < due then
    return due - now
  end
  local keep_ms = math.ceil((next_tat - now) / 1000) + 1000
  redis.call('SET', key, string.format('%.0f', next_tat), 'PX', string.format('%.0f', keep_ms))
  return 0
end
";

/// The key of a client's limit: `<prefix>rate:<client>:<per_second>:<burst>`.
pub(crate) fn client_key(prefix: &str, client: &ClientId, limit: RateLimit) -> String {
    format!("{prefix}rate:{client}:{}:{}", limit.per_second, limit.burst)
}

/// The key of an account's shared limit:
/// `<prefix>account-rate:<account>:<per_second>:<burst>`.
pub(crate) fn account_key(prefix: &str, account: &AccountId, limit: RateLimit) -> String {
    format!(
        "{prefix}account-rate:{account}:{}:{}",
        limit.per_second, limit.burst
    )
}

/// What one GCRA step is given for `limit`: the emission interval (1 s / rate) and the
/// burst tolerance (burst × interval), in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GcraArgs {
    pub(crate) interval: u64,
    pub(crate) tolerance: u64,
}

impl GcraArgs {
    pub(crate) fn of(limit: RateLimit) -> Self {
        let interval = 1_000_000u64.div_ceil(u64::from(limit.per_second.get()));
        Self {
            interval,
            tolerance: interval.saturating_mul(u64::from(limit.burst.get())),
        }
    }
}

/// Microseconds since 1970 on `clock`, 0 before it.
pub(crate) fn micros_now(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.now().unix_timestamp_nanos() / 1_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_rounds_up_and_the_tolerance_is_a_burst_of_intervals() {
        let args = GcraArgs::of(RateLimit::new(3, 5).unwrap());
        assert_eq!(
            args,
            GcraArgs {
                interval: 333_334,
                tolerance: 1_666_670
            }
        );
    }

    #[test]
    fn clients_and_accounts_never_share_a_key() {
        let limit = RateLimit::new(2, 4).unwrap();
        let client = client_key("p:", &ClientId::new("acme").unwrap(), limit);
        let account = account_key("p:", &AccountId::new("acme").unwrap(), limit);
        assert_eq!(client, "p:rate:acme:2:4");
        assert_eq!(account, "p:account-rate:acme:2:4");
    }
}
