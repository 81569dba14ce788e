//! [`UsageCounter`]: the contract of a daily quota counter, and what passes through it
//! ([`Charge`], [`Charged`], [`DailyUsage`]). Rule names travel typed ([`Rule`]); counters
//! store them as [`Rule::as_str`] gives them, so stored statistics keep their keys.
//!
//! ```
//! use gis_auth::client::{AccountId, ClientId};
//! use gis_auth::limits::{InMemoryUsageCounter, Refused, UsageCounter};
//! use gis_auth::policy::Rule;
//! use time::macros::date;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let counter = InMemoryUsageCounter::new();
//! let (acme, web) = (AccountId::new("acme")?, ClientId::new("web")?);
//! let day = date!(2026-06-01);
//! counter.record_refusal(&Refused::new(&acme, &web, day, Rule::Origins)).await?;
//! assert_eq!(counter.usage(&acme, day, day).await?[0].refusals["origins"], 1);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use time::{Date, OffsetDateTime};

use crate::client::{AccountId, ClientId, RateLimit};
use crate::document::{ApiUsageView, SeenNetworkView, SeenOriginView, UsageDay};
use crate::error::BackendError;
use crate::policy::transactions;
use crate::restrict::RequestOrigin;
use crate::rule::Rule;

/// How many origins, and how many networks, a counter keeps per client and day: the
/// space-saving sketch of [`TopCounts`] that bounds them whatever the callers send.
pub const SEEN_KEPT: usize = 32;

/// How many origins, and how many networks, [`DailyUsage`] reports per client and day,
/// the most frequent first.
pub const SEEN_REPORTED: usize = 10;

/// The prefix length a caller's IPv4 address is counted under.
pub const IPV4_NETWORK_PREFIX: u8 = 24;

/// The prefix length a caller's IPv6 address is counted under.
pub const IPV6_NETWORK_PREFIX: u8 = 48;

/// Where a refused or report-only request came from, as the statistics keep it: its
/// origin as the policy reads it (`Origin`, else `Referer`), and its caller's network,
/// never a whole address (IPv4 /24, IPv6 /48). Building one allocates nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    origin: Option<RequestOrigin>,
    network: Option<IpNet>,
}

impl Seen {
    /// What to count of a request from `origin` and `ip`, either of them unknown.
    pub fn new(origin: Option<RequestOrigin>, ip: Option<IpAddr>) -> Self {
        Self {
            origin,
            network: ip.map(Self::network_of),
        }
    }

    /// The network `ip` is counted under: its IPv4 /24 or IPv6 /48 (an IPv4-mapped IPv6
    /// address counts as its IPv4 address).
    pub fn network_of(ip: IpAddr) -> IpNet {
        let ip = ip.to_canonical();
        let prefix = match ip {
            IpAddr::V4(_) => IPV4_NETWORK_PREFIX,
            IpAddr::V6(_) => IPV6_NETWORK_PREFIX,
        };
        IpNet::new(ip, prefix).map_or_else(|_| IpNet::from(ip), |net| net.trunc())
    }

    /// The request's origin, if it sent one the policy can read; counted as its text
    /// (`https://maps.example.com`, with the port when it is not the scheme's).
    pub fn origin(&self) -> Option<&RequestOrigin> {
        self.origin.as_ref()
    }

    /// The caller's network, if its address is known.
    pub fn network(&self) -> Option<IpNet> {
        self.network
    }

    /// Whether there is nothing to count.
    pub fn is_empty(&self) -> bool {
        self.origin.is_none() && self.network.is_none()
    }
}

/// How often one value (an origin, a network) was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCount {
    /// The origin, or the network in CIDR notation (`203.0.113.0/24`).
    pub value: String,
    /// How many requests: exact for a value the counter kept all day, and at most the
    /// count of the value it replaced too high otherwise (see [`TopCounts`]).
    pub count: u64,
}

/// The most frequent values among many, in bounded memory: the space-saving sketch
/// (Metwally, Agrawal and El Abbadi, 2005). It keeps [`SEEN_KEPT`] values; a new value
/// when it is full replaces the least counted one and inherits its count plus its own, so
/// any value seen more often than 1/[`SEEN_KEPT`] of the time is kept, and no count is
/// ever too low.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopCounts {
    kept: Vec<SeenCount>,
}

impl TopCounts {
    /// Counts `value` `by` more times.
    pub fn add(&mut self, value: &str, by: u64) {
        if let Some(kept) = self.kept.iter_mut().find(|k| k.value == value) {
            kept.count = kept.count.saturating_add(by);
        } else if self.kept.len() < SEEN_KEPT {
            self.kept.push(SeenCount {
                value: value.to_owned(),
                count: by,
            });
        } else if let Some(least) = self.kept.iter_mut().min_by_key(|k| k.count) {
            least.value.clear();
            least.value.push_str(value);
            least.count = least.count.saturating_add(by);
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &TopCounts) {
        for seen in &other.kept {
            self.add(&seen.value, seen.count);
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// The values kept, with their counts, in no order.
    pub fn kept(&self) -> &[SeenCount] {
        &self.kept
    }

    /// The `n` most counted values, most counted first (ties by value).
    pub fn top(&self, n: usize) -> Vec<SeenCount> {
        top_of(self.kept.clone(), n)
    }
}

/// Where one client's refused or report-only requests of one day came from: its origins
/// and its networks, each bounded as [`TopCounts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SeenCounts {
    pub(crate) origins: TopCounts,
    pub(crate) networks: TopCounts,
}

impl SeenCounts {
    /// Counts one request from `seen`.
    pub(crate) fn add(&mut self, seen: &Seen) {
        if let Some(origin) = seen.origin() {
            self.origins.add(&origin.to_string(), 1);
        }
        if let Some(network) = seen.network() {
            self.networks.add(&network.to_string(), 1);
        }
    }

    /// Adds everything `other` counted (what a failed write of the leased counter keeps).
    #[cfg(feature = "redis")]
    pub(crate) fn merge(&mut self, other: &SeenCounts) {
        self.origins.merge(&other.origins);
        self.networks.merge(&other.networks);
    }
}

/// The `n` most counted of `counts`, most counted first (ties by value).
pub(crate) fn top_of(mut counts: Vec<SeenCount>, n: usize) -> Vec<SeenCount> {
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    counts.truncate(n);
    counts
}

/// `at`, to the minute: what a counter records as a client's last use.
pub fn last_use_minute(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_time(time::Time::from_hms(at.hour(), at.minute(), 0).unwrap_or(time::Time::MIDNIGHT))
}

/// One authorised request to count, in milli-transactions.
#[derive(Debug, Clone, Copy)]
pub struct Charge<'a> {
    /// The account whose quota pays.
    pub account: &'a AccountId,
    /// The client that called.
    pub client: &'a ClientId,
    /// The UTC day.
    pub day: Date,
    /// What the request costs; 0 for unmetered requests, counted in the statistics only.
    pub cost: u64,
    /// How many requests this charge counts in the statistics: 1 for a request, 0 for a
    /// further charge of a request already counted (see [`Meter`](crate::layer::Meter)).
    pub requests: u64,
    /// The account's daily quota, if it has one.
    pub limit: Option<u64>,
    /// The account's monthly quota (per UTC calendar month, the month of `day`), if it has
    /// one. A charge must fit both quotas; one that does not is charged to neither.
    pub monthly_limit: Option<u64>,
    /// Whether a request over the quota is refused (`false` runs the quota report-only:
    /// it is admitted, charged and reported as over).
    pub enforce: bool,
    /// The report-only rules that would have refused the request, for the statistics.
    pub shadowed: &'a [Rule],
    /// The API the request is for, for the statistics by API; none counts it by client only.
    pub api: Option<&'a str>,
    /// Where the request came from, counted whatever the answer: the layer gives it for a
    /// request that report-only findings would have refused.
    pub seen: Option<&'a Seen>,
    /// When the request was made, recorded (to the minute) as its client's last use; none
    /// records nothing.
    pub at: Option<OffsetDateTime>,
    /// The request-rate limits the request meets before it is charged, for a counter that
    /// [applies them itself](UsageCounter::applies_rate_limits); none otherwise (the layer
    /// has checked them already).
    pub rate_limits: ChargeRateLimits,
}

/// The request-rate limits a [`Charge`] meets first, in this order: the client's own, then
/// the one all the account's clients share. A request the client's limit refuses is not
/// counted against the account's, and a request either refuses is not charged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChargeRateLimits {
    /// The client's own limit, if it has one.
    pub client: Option<RateLimit>,
    /// The account's limit, shared by all its clients, if its plan has one.
    pub account: Option<RateLimit>,
}

impl ChargeRateLimits {
    /// Whether there is no limit to apply.
    pub fn is_empty(&self) -> bool {
        self.client.is_none() && self.account.is_none()
    }
}

/// Which rate limit refused a charge that a counter applied them to, and how long the
/// client should wait (whole seconds, at least one, as
/// [`RateVerdict::RetryAfter`](super::RateVerdict::RetryAfter) gives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimited {
    /// The client's own limit.
    Client(Duration),
    /// The account's limit, shared by all its clients.
    Account(Duration),
}

impl<'a> Charge<'a> {
    /// A charge of one request costing `cost`, with no quota, enforced, and no findings.
    pub fn new(account: &'a AccountId, client: &'a ClientId, day: Date, cost: u64) -> Self {
        Self {
            account,
            client,
            day,
            cost,
            requests: 1,
            limit: None,
            monthly_limit: None,
            enforce: true,
            shadowed: &[],
            api: None,
            seen: None,
            at: None,
            rate_limits: ChargeRateLimits::default(),
        }
    }
}

/// A request of a known client that a rule refused, to count.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Refused<'a> {
    /// The client's account.
    pub account: &'a AccountId,
    /// The client.
    pub client: &'a ClientId,
    /// The UTC day.
    pub day: Date,
    /// The rule that refused.
    pub rule: Rule,
    /// Where the request came from, if known.
    pub seen: Option<&'a Seen>,
    /// When the request was made, recorded (to the minute) as its client's last use; none
    /// records nothing.
    pub at: Option<OffsetDateTime>,
}

impl<'a> Refused<'a> {
    /// A refusal by `rule` on `day`, from nowhere known, recording no last use.
    pub fn new(account: &'a AccountId, client: &'a ClientId, day: Date, rule: Rule) -> Self {
        Self {
            account,
            client,
            day,
            rule,
            seen: None,
            at: None,
        }
    }

    /// The same refusal, of a request from `seen`.
    #[must_use]
    pub fn seen(mut self, seen: Option<&'a Seen>) -> Self {
        self.seen = seen;
        self
    }

    /// The same refusal, of a request made at `at` (recorded as the client's last use).
    #[must_use]
    pub fn at(mut self, at: OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }
}

/// What a charge did: a usage counter's answer, which the policy's quota rule decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Charged {
    /// Whether the request fits both quotas (or the quota runs report-only).
    pub admitted: bool,
    /// Whether the request went (or would have gone) over the daily quota.
    pub over: bool,
    /// The account's usage of the day after the charge (unchanged when refused).
    pub used: u64,
    /// Whether the request went (or would have gone) over the monthly quota.
    pub over_monthly: bool,
    /// The account's usage of the month after the charge (unchanged when refused).
    pub monthly_used: u64,
    /// The rate limit that refused the request, for a charge whose rate limits the counter
    /// applied: the request was not charged, and the counter counted the refusal (by
    /// [`Rule::RateLimit`] or [`Rule::AccountRateLimit`]).
    pub rate_limited: Option<RateLimited>,
}

impl Charged {
    /// A counter's answer: whether it admitted the request, whether the request went (or
    /// would have gone) over the daily quota, and the account's usage of the day after the
    /// charge; the month as [`monthly`](Charged::monthly) says (nothing used, not over).
    pub fn new(admitted: bool, over: bool, used: u64) -> Self {
        Self {
            admitted,
            over,
            used,
            over_monthly: false,
            monthly_used: 0,
            rate_limited: None,
        }
    }

    /// A counter's answer to a charge one of its rate limits refused: not admitted, nothing
    /// charged or read.
    pub fn over_rate(by: RateLimited) -> Self {
        Self {
            rate_limited: Some(by),
            ..Self::new(false, false, 0)
        }
    }

    /// The same answer, with whether the request went (or would have gone) over the
    /// monthly quota and the account's usage of the month after the charge.
    #[must_use]
    pub fn monthly(mut self, over: bool, used: u64) -> Self {
        self.over_monthly = over;
        self.monthly_used = used;
        self
    }
}

/// A client's usage on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DailyUsage {
    /// The day.
    pub day: Date,
    /// The client.
    pub client: ClientId,
    /// Authorised requests.
    pub requests: u64,
    /// Their cost, in milli-transactions.
    pub cost: u64,
    /// Refused requests by reason: the rule that refused ([`Rule::as_str`]), or
    /// `quota_exceeded` for a charge the quota refused.
    pub refusals: BTreeMap<String, u64>,
    /// Requests a report-only restriction would have refused, by rule.
    pub shadowed: BTreeMap<String, u64>,
    /// Authorised requests and their cost by API, for charges that named their API.
    pub apis: BTreeMap<String, ApiUsage>,
    /// The origins of refused or report-only requests, the [`SEEN_REPORTED`] most frequent
    /// first.
    pub origins: Vec<SeenCount>,
    /// The callers' networks (IPv4 /24, IPv6 /48) of refused or report-only requests, the
    /// [`SEEN_REPORTED`] most frequent first.
    pub networks: Vec<SeenCount>,
}

/// One client's authorised requests to one API on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiUsage {
    /// Authorised requests.
    pub requests: u64,
    /// Their cost, in milli-transactions.
    pub cost: u64,
}

impl ApiUsage {
    /// `requests` requests costing `cost` in all.
    pub fn new(requests: u64, cost: u64) -> Self {
        Self { requests, cost }
    }
}

impl DailyUsage {
    /// The row as the admin API and the command-line tool show it: costs in transactions,
    /// the day as YYYY-MM-DD.
    pub fn document(&self) -> UsageDay {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        UsageDay {
            date: self.day.format(format).unwrap_or_default(),
            client_id: self.client.to_string(),
            requests: self.requests,
            transactions: transactions(self.cost),
            refusals: self.refusals.clone(),
            shadowed: self.shadowed.clone(),
            apis: self
                .apis
                .iter()
                .map(|(api, usage)| {
                    let view = ApiUsageView {
                        requests: usage.requests,
                        transactions: transactions(usage.cost),
                    };
                    (api.clone(), view)
                })
                .collect(),
            origins: self
                .origins
                .iter()
                .map(|seen| SeenOriginView {
                    origin: seen.value.clone(),
                    count: seen.count,
                })
                .collect(),
            networks: self
                .networks
                .iter()
                .map(|seen| SeenNetworkView {
                    network: seen.value.clone(),
                    count: seen.count,
                })
                .collect(),
        }
    }

    /// No usage yet by `client` on `day`: fill in the counts.
    pub fn new(day: Date, client: ClientId) -> Self {
        Self {
            day,
            client,
            requests: 0,
            cost: 0,
            refusals: BTreeMap::new(),
            shadowed: BTreeMap::new(),
            apis: BTreeMap::new(),
            origins: Vec::new(),
            networks: Vec::new(),
        }
    }
}

/// Counts usage against daily and monthly quotas and keeps per-client statistics.
///
/// Implementations must make [`charge`](UsageCounter::charge) atomic: with a quota of N
/// transactions, any number of concurrent requests admit exactly as many as fit; a request
/// must fit both the daily and the monthly quota, and one refused by either is charged to
/// neither.
///
/// A counter may also apply a request's rate limits in the same step
/// ([`applies_rate_limits`](UsageCounter::applies_rate_limits)), so that a remote one costs
/// one round trip where a shared rate limiter and a counter would cost up to three.
#[async_trait]
pub trait UsageCounter: Send + Sync {
    /// Adds `charge.cost` to the account's usage of `charge.day` and of its month if it fits
    /// both `charge.limit` and `charge.monthly_limit` (always when there is no limit or it
    /// is not enforced), and counts the request for the client; a refusal is counted as a
    /// `quota_exceeded` refusal instead.
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, BackendError>;

    /// Counts a request of a known client that a rule refused (and where it came from), and
    /// records its last use.
    async fn record_refusal(&self, refused: &Refused<'_>) -> Result<(), BackendError>;

    /// [`charge`](UsageCounter::charge) done at once, by a counter that never waits (one in
    /// memory); `None` (the default) means "ask `charge`". The layer asks this first, so
    /// such a counter costs no future and no timer per request.
    fn charge_now(&self, charge: &Charge<'_>) -> Option<Result<Charged, BackendError>> {
        let _ = charge;
        None
    }

    /// Whether [`charge`](UsageCounter::charge) applies [`Charge::rate_limits`] itself,
    /// as a [`SharedRateLimiter`](super::SharedRateLimiter) would (shared by every instance,
    /// client first, then account), before the quota: it then answers a request a limit
    /// refuses with [`Charged::over_rate`], charges nothing and counts the refusal by its
    /// rule. A layer with a shared rate limiter hands the limits to such a counter instead
    /// of asking the limiter: one call per request. `false` (the default): the layer
    /// checks the limits first and the charge carries none.
    fn applies_rate_limits(&self) -> bool {
        false
    }

    /// [`record_refusal`](UsageCounter::record_refusal) done at once; `None` (the default)
    /// means "ask `record_refusal`".
    fn record_refusal_now(&self, refused: &Refused<'_>) -> Option<Result<(), BackendError>> {
        let _ = refused;
        None
    }

    /// When each client of the account was last used, to the minute, as recorded by
    /// [`Charge::at`] and [`Refused::at`]; a client never used is absent. A counter writes
    /// a client's last use at most once a minute (per instance for a shared one), never
    /// once per request. The default knows of no use.
    async fn last_used(
        &self,
        account: &AccountId,
    ) -> Result<BTreeMap<ClientId, OffsetDateTime>, BackendError> {
        let _ = account;
        Ok(BTreeMap::new())
    }

    /// The account's usage on `day`, in milli-transactions.
    async fn used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError>;

    /// The per-client statistics of an account from `from` to `to` (inclusive), by day then
    /// client.
    async fn usage(
        &self,
        account: &AccountId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyUsage>, BackendError>;

    /// The account's usage in the UTC calendar month of `day`, in milli-transactions. The
    /// default sums the month's days of [`usage`](UsageCounter::usage) up to `day`; a
    /// counter that keeps a monthly total answers from it.
    async fn monthly_used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        let first = day.replace_day(1).unwrap_or(day);
        let rows = self.usage(account, first, day).await?;
        Ok(rows
            .iter()
            .fold(0u64, |sum, row| sum.saturating_add(row.cost)))
    }
}

#[async_trait]
impl<C: UsageCounter + ?Sized> UsageCounter for std::sync::Arc<C> {
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, BackendError> {
        (**self).charge(charge).await
    }

    async fn record_refusal(&self, refused: &Refused<'_>) -> Result<(), BackendError> {
        (**self).record_refusal(refused).await
    }

    fn charge_now(&self, charge: &Charge<'_>) -> Option<Result<Charged, BackendError>> {
        (**self).charge_now(charge)
    }

    fn applies_rate_limits(&self) -> bool {
        (**self).applies_rate_limits()
    }

    fn record_refusal_now(&self, refused: &Refused<'_>) -> Option<Result<(), BackendError>> {
        (**self).record_refusal_now(refused)
    }

    async fn last_used(
        &self,
        account: &AccountId,
    ) -> Result<BTreeMap<ClientId, OffsetDateTime>, BackendError> {
        (**self).last_used(account).await
    }

    async fn used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        (**self).used(account, day).await
    }

    async fn usage(
        &self,
        account: &AccountId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyUsage>, BackendError> {
        (**self).usage(account, from, to).await
    }

    async fn monthly_used(&self, account: &AccountId, day: Date) -> Result<u64, BackendError> {
        (**self).monthly_used(account, day).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_an_ipv4_24_or_an_ipv6_48_never_the_address() {
        let net = |ip: &str| Seen::network_of(ip.parse().unwrap()).to_string();
        assert_eq!(net("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(net("2001:db8:1:2:3::9"), "2001:db8:1::/48");
        assert_eq!(net("::ffff:198.51.100.9"), "198.51.100.0/24");
        let origin = RequestOrigin::from_origin_header("HTTPS://Maps.Example.com:443");
        let seen = Seen::new(origin, None);
        let text = seen.origin().map(ToString::to_string);
        assert_eq!(text.as_deref(), Some("https://maps.example.com"));
        assert!(seen.network().is_none() && !seen.is_empty());
        assert!(Seen::default().is_empty());
    }

    #[test]
    fn top_counts_keep_the_frequent_values_in_bounded_room() {
        let mut top = TopCounts::default();
        for i in 0..10_000u32 {
            // Two heavy hitters among thousands of values seen once.
            top.add(&format!("once-{i}"), 1);
            if i % 4 == 0 {
                top.add("https://a.example", 1);
            }
            if i % 10 == 0 {
                top.add("https://b.example", 1);
            }
        }
        assert_eq!(top.kept().len(), SEEN_KEPT);
        let best = top.top(2);
        assert_eq!(best[0].value, "https://a.example");
        assert_eq!(best[1].value, "https://b.example");
        assert!(best[0].count >= 2_500, "never too low: {}", best[0].count);
        assert_eq!(top.top(SEEN_REPORTED).len(), SEEN_REPORTED);
    }

    #[test]
    fn top_counts_merge_adds_the_counts() {
        let (mut a, mut b) = (TopCounts::default(), TopCounts::default());
        a.add("x", 2);
        b.add("x", 3);
        b.add("y", 1);
        a.merge(&b);
        let top = a.top(10);
        assert_eq!((top[0].value.as_str(), top[0].count), ("x", 5));
        assert_eq!((top[1].value.as_str(), top[1].count), ("y", 1));
    }

    #[test]
    fn the_last_use_is_kept_to_the_minute() {
        let at = time::macros::datetime!(2026-06-01 12:34:56.789 +02:00);
        assert_eq!(
            last_use_minute(at),
            time::macros::datetime!(2026-06-01 10:34:00 UTC)
        );
    }
}
