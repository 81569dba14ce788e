//! What a client may do beyond its roles: privileges (the APIs it is limited to), grants on
//! items and datasets, a request-rate limit, and the restrictions it runs report-only.
//!
//! ```
//! use gis_auth::client::{Action, Grant, Grants, Restriction, ShadowSet};
//!
//! let grants = Grants::compile(vec![Grant::new("roads-2026", [Action::Read])?], 100)?;
//! assert!(grants.allows("roads-2026", Action::Read));
//! assert!(!grants.allows("roads-2026", Action::Write), "write is granted on its own");
//! let shadow = ShadowSet::from_iter([Restriction::Origins]);
//! assert!(shadow.contains(Restriction::Origins) && !shadow.contains(Restriction::Quota));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The default largest number of grants one client may carry.
pub const DEFAULT_MAX_GRANTS: usize = 100;

/// The longest item id, in bytes.
pub const MAX_ITEM_ID_LEN: usize = 256;

/// What a grant allows on an item: `read` admits `GET` and `HEAD`, `write` the mutating
/// methods. Neither implies the other.
///
/// Its text is written once, in [`Action::as_str`]; `Display`, `FromStr` and serde go
/// through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `GET` and `HEAD`.
    Read,
    /// `POST`, `PUT`, `PATCH`, `DELETE` and any other method that is not `GET`, `HEAD` or
    /// `OPTIONS`.
    Write,
}

impl Action {
    /// Both actions.
    pub const ALL: [Action; 2] = [Action::Read, Action::Write];

    /// The action a request method needs.
    pub fn of_method(method: &http::Method) -> Action {
        match *method {
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS => Action::Read,
            _ => Action::Write,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Action::Read => 1,
            Action::Write => 2,
        }
    }

    /// The name, as in the clients file: `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
        }
    }
}

super::text_enum!(Action, "actions", "an action is `read` or `write`");

/// One grant: an item (or dataset) id and the actions allowed on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    item: Arc<str>,
    actions: u8,
}

impl Grant {
    /// A grant of `actions` on `item`. The id is 1 to [`MAX_ITEM_ID_LEN`] bytes without
    /// control characters; at least one action is required.
    pub fn new(
        item: impl Into<String>,
        actions: impl IntoIterator<Item = Action>,
    ) -> Result<Grant, ConfigError> {
        let item = item.into();
        if item.is_empty() || item.len() > MAX_ITEM_ID_LEN || item.chars().any(char::is_control) {
            return Err(ConfigError::InvalidField {
                field: "grants",
                value: item,
                reason: "an item id is 1 to 256 bytes without control characters",
            });
        }
        let actions = actions.into_iter().fold(0u8, |bits, a| bits | a.bit());
        if actions == 0 {
            return Err(ConfigError::InvalidField {
                field: "grants",
                value: item,
                reason: "a grant needs at least one action (`read`, `write`)",
            });
        }
        Ok(Grant {
            item: item.into(),
            actions,
        })
    }

    /// The item id.
    pub fn item(&self) -> &str {
        &self.item
    }

    /// Whether `action` is granted.
    pub fn allows(&self, action: Action) -> bool {
        self.actions & action.bit() != 0
    }

    /// The granted actions, `read` first.
    pub fn actions(&self) -> Vec<Action> {
        [Action::Read, Action::Write]
            .into_iter()
            .filter(|a| self.allows(*a))
            .collect()
    }
}

/// A client's grants, indexed by item id.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Grants {
    list: Box<[Grant]>,
    index: HashMap<Arc<str>, u8>,
}

impl Grants {
    /// Indexes `grants`, refusing more than `max` of them or one item granted twice.
    pub fn compile(grants: Vec<Grant>, max: usize) -> Result<Grants, ConfigError> {
        if grants.len() > max {
            return Err(ConfigError::InvalidField {
                field: "grants",
                value: grants.len().to_string(),
                reason: "a client carries more grants than allowed",
            });
        }
        let mut index = HashMap::with_capacity(grants.len());
        for g in &grants {
            if index.insert(g.item.clone(), g.actions).is_some() {
                return Err(ConfigError::InvalidField {
                    field: "grants",
                    value: g.item.to_string(),
                    reason: "an item is granted twice",
                });
            }
        }
        Ok(Grants {
            list: grants.into_boxed_slice(),
            index,
        })
    }

    /// Whether `action` on `item` is granted.
    pub fn allows(&self, item: &str, action: Action) -> bool {
        self.index
            .get(item)
            .is_some_and(|bits| bits & action.bit() != 0)
    }

    /// The grants, in the order given.
    pub fn as_slice(&self) -> &[Grant] {
        &self.list
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.list.len()
    }
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.list.iter()).finish()
    }
}

/// A request-rate limit: a sustained rate with a burst on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: NonZeroU32,
    /// How many requests may arrive at once.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `per_second` requests a second with bursts of `burst`; both at least 1.
    pub fn new(per_second: u32, burst: u32) -> Result<RateLimit, ConfigError> {
        let invalid = |value: u32| ConfigError::InvalidField {
            field: "rate_limit",
            value: value.to_string(),
            reason: "per_second and burst are at least 1",
        };
        Ok(RateLimit {
            per_second: NonZeroU32::new(per_second).ok_or_else(|| invalid(per_second))?,
            burst: NonZeroU32::new(burst).ok_or_else(|| invalid(burst))?,
        })
    }
}

/// A restriction that can run report-only.
///
/// Its text is written once, in [`Restriction::as_str`]; `Display`, `FromStr` and serde go
/// through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Restriction {
    /// Allowed origins.
    Origins,
    /// IP rules.
    Ips,
    /// Privileges.
    Privileges,
    /// Item grants.
    Grants,
    /// The account's daily quota.
    Quota,
}

impl Restriction {
    /// Every restriction, in check order.
    pub const ALL: [Restriction; 5] = [
        Restriction::Origins,
        Restriction::Ips,
        Restriction::Privileges,
        Restriction::Grants,
        Restriction::Quota,
    ];

    /// The name, as in the clients file.
    pub fn as_str(self) -> &'static str {
        match self {
            Restriction::Origins => "origins",
            Restriction::Ips => "ips",
            Restriction::Privileges => "privileges",
            Restriction::Grants => "grants",
            Restriction::Quota => "quota",
        }
    }

    /// Whether an account holder may run it report-only (through the admin API): its own
    /// restrictions (origins, IP rules, privileges, grants) are; the quota is the
    /// operator's plan, and only the operator (the clients file, the command-line tool)
    /// may shadow it.
    pub fn is_self_service(self) -> bool {
        match self {
            Restriction::Origins
            | Restriction::Ips
            | Restriction::Privileges
            | Restriction::Grants => true,
            Restriction::Quota => false,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

super::text_enum!(
    Restriction,
    "shadow",
    "a restriction is one of origins, ips, privileges, grants, quota"
);

/// The restrictions a client runs report-only: the request is allowed and what would have
/// been refused is recorded.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ShadowSet(u8);

impl ShadowSet {
    /// No restriction in shadow mode.
    pub const NONE: ShadowSet = ShadowSet(0);

    /// Whether `r` runs report-only.
    pub fn contains(self, r: Restriction) -> bool {
        self.0 & r.bit() != 0
    }

    /// With `r` report-only.
    #[must_use]
    pub fn with(self, r: Restriction) -> Self {
        ShadowSet(self.0 | r.bit())
    }

    /// Whether none runs report-only.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The restrictions, in check order.
    pub fn iter(self) -> impl Iterator<Item = Restriction> {
        Restriction::ALL
            .into_iter()
            .filter(move |r| self.contains(*r))
    }

    /// Parses names as in the clients file.
    pub fn parse<I, S>(names: I) -> Result<ShadowSet, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        names
            .into_iter()
            .try_fold(ShadowSet::NONE, |set, n| Ok(set.with(n.as_ref().parse()?)))
    }
}

impl FromIterator<Restriction> for ShadowSet {
    fn from_iter<T: IntoIterator<Item = Restriction>>(iter: T) -> Self {
        iter.into_iter().fold(ShadowSet::NONE, ShadowSet::with)
    }
}

impl fmt::Debug for ShadowSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The APIs a client is limited to, by name; absent on a client means whatever its roles
/// allow.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Privileges {
    names: Box<[Arc<str>]>,
}

impl Privileges {
    /// Validates API names: non-empty, at most 128 bytes, no control characters, no
    /// duplicates.
    pub fn new<I, S>(names: I) -> Result<Privileges, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out: Vec<Arc<str>> = Vec::new();
        for name in names {
            let name = name.into();
            if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                return Err(ConfigError::InvalidField {
                    field: "privileges",
                    value: name,
                    reason: "a privilege is an API name of 1 to 128 printable characters",
                });
            }
            if out.iter().any(|n| **n == *name) {
                return Err(ConfigError::InvalidField {
                    field: "privileges",
                    value: name,
                    reason: "an API is listed twice",
                });
            }
            out.push(name.into());
        }
        Ok(Privileges {
            names: out.into_boxed_slice(),
        })
    }

    /// Whether the API named `api` is among them.
    pub fn allows(&self, api: &str) -> bool {
        self.names.iter().any(|n| **n == *api)
    }

    /// The names, in the order given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }
}

impl fmt::Debug for Privileges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_does_not_imply_read() {
        let g = Grants::compile(vec![Grant::new("ds", [Action::Write]).unwrap()], 10).unwrap();
        assert!(g.allows("ds", Action::Write));
        assert!(!g.allows("ds", Action::Read));
        assert!(!g.allows("other", Action::Write));
    }

    #[test]
    fn methods_map_to_actions() {
        assert_eq!(Action::of_method(&http::Method::HEAD), Action::Read);
        assert_eq!(Action::of_method(&http::Method::PATCH), Action::Write);
        assert_eq!(Action::of_method(&http::Method::DELETE), Action::Write);
    }

    #[test]
    fn too_many_or_duplicate_grants_are_refused() {
        let many: Vec<Grant> = (0..3)
            .map(|i| Grant::new(format!("i{i}"), [Action::Read]).unwrap())
            .collect();
        assert!(Grants::compile(many.clone(), 2).is_err());
        assert_eq!(Grants::compile(many, 3).unwrap().len(), 3);
        let twice = vec![
            Grant::new("a", [Action::Read]).unwrap(),
            Grant::new("a", [Action::Write]).unwrap(),
        ];
        assert!(Grants::compile(twice, 10).is_err());
    }

    #[test]
    fn bad_grants_name_the_value() {
        let err = Grant::new("", [Action::Read]).unwrap_err();
        assert!(err.to_string().contains("grants"));
        let err = Grant::new("x", []).unwrap_err();
        assert!(err.to_string().contains("`x`"));
        let err = "delete".parse::<Action>().unwrap_err();
        assert!(err.to_string().contains("`delete`"));
    }

    #[test]
    fn shadow_names_round_trip() {
        let s = ShadowSet::parse(["quota", "origins"]).unwrap();
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [Restriction::Origins, Restriction::Quota]
        );
        assert!(ShadowSet::parse(["referrers"]).is_err());
    }

    #[test]
    fn only_the_account_holders_own_restrictions_are_self_service() {
        let own: Vec<_> = Restriction::ALL
            .into_iter()
            .filter(|r| r.is_self_service())
            .collect();
        assert_eq!(
            own,
            [
                Restriction::Origins,
                Restriction::Ips,
                Restriction::Privileges,
                Restriction::Grants
            ]
        );
    }

    #[test]
    fn rate_limits_are_positive() {
        assert!(RateLimit::new(0, 5).is_err());
        assert!(RateLimit::new(5, 0).is_err());
        assert_eq!(RateLimit::new(5, 10).unwrap().burst.get(), 10);
    }

    #[test]
    fn privileges_are_validated() {
        let p = Privileges::new(["Geocoder", "Elevation"]).unwrap();
        assert!(p.allows("Geocoder") && !p.allows("WMS"));
        assert!(Privileges::new(["Geocoder", "Geocoder"]).is_err());
        assert!(Privileges::new([" "]).is_err());
    }
}
