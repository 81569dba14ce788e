//! An account's plan: what the operator sells an account and only the operator sets (the
//! clients file, the command-line tool, the PostgreSQL store). No self-service API changes
//! it.
//!
//! ```
//! use gis_auth::client::{ItemCeiling, Plan};
//!
//! let plan = Plan::default()
//!     .with_daily_quota(Some(10_000))
//!     .with_items(Some(ItemCeiling::new(["roads-2026", "parcels-*"])?));
//! assert_eq!(plan.max_clients, Some(1_000), "the default cap");
//! let items = plan.items.as_ref().unwrap();
//! assert!(items.admits("parcels-north"));
//! assert!(!items.admits("roads-2025"));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::sync::Arc;

use time::OffsetDateTime;

use super::access::{MAX_ITEM_ID_LEN, RateLimit};
use crate::error::ConfigError;

/// How many clients an account may hold unless its plan says otherwise.
pub const DEFAULT_MAX_CLIENTS: u32 = 1_000;

/// The most entries an item ceiling may list.
pub const MAX_CEILING_ENTRIES: usize = 1_000;

/// The operator's settings of an account. Every setting is optional; the default plan has
/// no quota, no account rate limit, no item ceiling, no expiry, and at most
/// [`DEFAULT_MAX_CLIENTS`] clients.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// Transactions per UTC day; `None` is unlimited.
    pub daily_quota: Option<u64>,
    /// Transactions per UTC calendar month; `None` is unlimited. A request must fit both
    /// quotas.
    pub monthly_quota: Option<u64>,
    /// One rate limit shared by all the account's clients, on top of each client's own.
    pub rate_limit: Option<RateLimit>,
    /// The most clients the account may hold; `None` is unlimited.
    pub max_clients: Option<u32>,
    /// The items the account's clients may be granted; `None` is unrestricted.
    pub items: Option<ItemCeiling>,
    /// The end of an evaluation period: from this instant every client of the account is
    /// refused, API keys and tokens alike.
    pub expires_at: Option<OffsetDateTime>,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            daily_quota: None,
            monthly_quota: None,
            rate_limit: None,
            max_clients: Some(DEFAULT_MAX_CLIENTS),
            items: None,
            expires_at: None,
        }
    }
}

impl Plan {
    /// With this daily quota.
    #[must_use]
    pub fn with_daily_quota(mut self, quota: Option<u64>) -> Self {
        self.daily_quota = quota;
        self
    }

    /// With this monthly quota.
    #[must_use]
    pub fn with_monthly_quota(mut self, quota: Option<u64>) -> Self {
        self.monthly_quota = quota;
        self
    }

    /// With this account rate limit.
    #[must_use]
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// With this cap on clients (`None`: unlimited).
    #[must_use]
    pub fn with_max_clients(mut self, max: Option<u32>) -> Self {
        self.max_clients = max;
        self
    }

    /// With this item ceiling (`None`: unrestricted).
    #[must_use]
    pub fn with_items(mut self, items: Option<ItemCeiling>) -> Self {
        self.items = items;
        self
    }

    /// With this end of the evaluation period.
    #[must_use]
    pub fn with_expires_at(mut self, at: Option<OffsetDateTime>) -> Self {
        self.expires_at = at;
        self
    }

    /// Whether the account's evaluation period is over at `now`.
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|end| now >= end)
    }

    /// The first of `items` the item ceiling does not admit; `None` when every one fits
    /// (always, without a ceiling).
    pub fn item_outside<'a>(&self, items: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let ceiling = self.items.as_ref()?;
        items.into_iter().find(|item| !ceiling.admits(item))
    }

    /// Whether an account holding `clients` clients may create one more.
    pub fn admits_another_client(&self, clients: usize) -> bool {
        self.max_clients
            .is_none_or(|max| clients < usize::try_from(max).unwrap_or(usize::MAX))
    }
}

/// The item ids an account's clients may be granted: exact ids, and `prefix*` patterns that
/// admit every id starting with the prefix. An empty ceiling admits nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemCeiling {
    entries: Box<[Arc<str>]>,
}

impl ItemCeiling {
    /// A ceiling of these entries, each an item id or a `prefix*` pattern (a `*` only at
    /// the end, and a non-empty prefix), at most [`MAX_CEILING_ENTRIES`] of them.
    pub fn new<I, S>(entries: I) -> Result<ItemCeiling, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<Arc<str>> = Vec::new();
        for entry in entries {
            if list.len() == MAX_CEILING_ENTRIES {
                return Err(ConfigError::InvalidField {
                    field: "items",
                    value: format!("more than {MAX_CEILING_ENTRIES} entries"),
                    reason: "an item ceiling lists at most 1000 entries",
                });
            }
            let entry = entry.as_ref();
            let id = entry.strip_suffix('*').unwrap_or(entry);
            let valid = !id.is_empty()
                && entry.len() <= MAX_ITEM_ID_LEN
                && !id.contains('*')
                && !entry.chars().any(char::is_control);
            if !valid {
                return Err(ConfigError::InvalidField {
                    field: "items",
                    value: entry.to_owned(),
                    reason: "an entry is an item id or `prefix*`, 1 to 256 bytes",
                });
            }
            list.push(entry.into());
        }
        list.sort();
        list.dedup();
        Ok(ItemCeiling {
            entries: list.into_boxed_slice(),
        })
    }

    /// The entries, as given (sorted, without repeats).
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| &**e)
    }

    /// Whether a grant of `item` fits under the ceiling.
    pub fn admits(&self, item: &str) -> bool {
        self.entries
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => item.starts_with(prefix),
                None => **entry == *item,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_plan_caps_clients_and_sets_nothing_else() {
        let plan = Plan::default();
        assert_eq!(plan.max_clients, Some(DEFAULT_MAX_CLIENTS));
        assert_eq!(plan.daily_quota, None);
        assert_eq!(plan.monthly_quota, None);
        assert!(plan.items.is_none() && plan.rate_limit.is_none());
        assert!(!plan.expired_at(OffsetDateTime::UNIX_EPOCH));
    }

    #[test]
    fn a_plan_expires_at_its_instant_not_before() {
        let end = OffsetDateTime::UNIX_EPOCH + time::Duration::days(30);
        let plan = Plan::default().with_expires_at(Some(end));
        assert!(!plan.expired_at(end - time::Duration::seconds(1)));
        assert!(plan.expired_at(end));
    }

    #[test]
    fn a_ceiling_admits_its_ids_and_prefixes_only() {
        let ceiling = ItemCeiling::new(["roads", "tiles-*"]).unwrap();
        assert!(ceiling.admits("roads"));
        assert!(!ceiling.admits("roads-2"), "an exact id is not a prefix");
        assert!(ceiling.admits("tiles-"));
        assert!(ceiling.admits("tiles-europe"));
        assert!(!ceiling.admits("tile"));
        assert!(!ItemCeiling::new::<_, &str>([]).unwrap().admits("roads"));
    }

    #[test]
    fn a_plan_finds_the_first_item_outside_its_ceiling() {
        let open = Plan::default();
        assert_eq!(
            open.item_outside(["anything"]),
            None,
            "no ceiling, no limit"
        );
        let capped = open.with_items(Some(ItemCeiling::new(["roads", "tiles-*"]).unwrap()));
        assert_eq!(capped.item_outside(["roads", "tiles-eu"]), None);
        assert_eq!(
            capped.item_outside(["roads", "parcels", "x"]),
            Some("parcels")
        );
        let none = Plan::default().with_items(Some(ItemCeiling::default()));
        assert_eq!(
            none.item_outside(["roads"]),
            Some("roads"),
            "an empty ceiling admits nothing"
        );
    }

    #[test]
    fn a_plan_admits_clients_up_to_its_cap() {
        let plan = Plan::default().with_max_clients(Some(2));
        assert!(plan.admits_another_client(1));
        assert!(!plan.admits_another_client(2));
        assert!(
            !Plan::default()
                .with_max_clients(Some(0))
                .admits_another_client(0)
        );
        assert!(
            Plan::default()
                .with_max_clients(None)
                .admits_another_client(usize::MAX - 1)
        );
        assert!(Plan::default().admits_another_client(999));
        assert!(!Plan::default().admits_another_client(1_000));
    }

    #[test]
    fn a_ceiling_refuses_malformed_entries() {
        for bad in ["", "*", "a*b*", "*suffix", "a\nb", &"x".repeat(257)] {
            assert!(ItemCeiling::new([bad]).is_err(), "{bad:?}");
        }
        let too_many = (0..=MAX_CEILING_ENTRIES).map(|i| format!("item-{i}"));
        assert!(ItemCeiling::new(too_many).is_err());
    }
}
