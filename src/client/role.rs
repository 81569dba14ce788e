//! Roles and sets of roles.
//!
//! Roles are an open set: [`Role::USER`], [`Role::EVALUATOR`] and [`Role::SUBSCRIBER`] are
//! built in, and any other name made of letters, digits, `_` and `-` is accepted.
//!
//! ```
//! use gis_auth::client::{Role, RoleSet};
//!
//! let account = RoleSet::from_iter([Role::USER, Role::EVALUATOR]);
//! let client = RoleSet::from_iter([Role::EVALUATOR, Role::SUBSCRIBER]);
//! assert_eq!(account.intersection(&client), RoleSet::from_iter([Role::EVALUATOR]));
//! assert_eq!(Role::new("Analyst").unwrap().as_str(), "Analyst");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ConfigError;

const MAX_ROLE_LEN: usize = 64;

/// A role name, such as `User`, `Evaluator` or `Subscriber`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(Cow<'static, str>);

impl Role {
    /// Account and admin APIs.
    pub const USER: Role = Role(Cow::Borrowed("User"));
    /// Map services, on evaluation terms.
    pub const EVALUATOR: Role = Role(Cow::Borrowed("Evaluator"));
    /// Map services, on subscription terms.
    pub const SUBSCRIBER: Role = Role(Cow::Borrowed("Subscriber"));

    /// A role by name: 1 to 64 ASCII letters, digits, `_` or `-`.
    pub fn new(name: impl AsRef<str>) -> Result<Role, ConfigError> {
        let name = name.as_ref();
        let invalid = |reason| ConfigError::InvalidRole {
            role: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("a role name cannot be empty"));
        }
        if name.len() > MAX_ROLE_LEN {
            return Err(invalid("a role name has at most 64 characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid("a role name has only letters, digits, `_` and `-`"));
        }
        Ok(match name {
            "User" => Role::USER,
            "Evaluator" => Role::EVALUATOR,
            "Subscriber" => Role::SUBSCRIBER,
            other => Role(Cow::Owned(other.to_owned())),
        })
    }

    /// The role's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Role {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::new(s)
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = Cow::<'de, str>::deserialize(d)?;
        Role::new(&*name).map_err(serde::de::Error::custom)
    }
}

/// A set of roles, kept sorted and without duplicates. Cloning shares the set.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct RoleSet(Arc<[Role]>);

impl RoleSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `role` is in the set.
    pub fn contains(&self, role: &Role) -> bool {
        self.0.binary_search(role).is_ok()
    }

    /// Whether every role of `self` is in `other`.
    pub fn is_subset(&self, other: &RoleSet) -> bool {
        self.0.iter().all(|r| other.contains(r))
    }

    /// Whether any role of `self` is in `other`.
    pub fn intersects(&self, other: &RoleSet) -> bool {
        self.0.iter().any(|r| other.contains(r))
    }

    /// The roles in both sets.
    pub fn intersection(&self, other: &RoleSet) -> RoleSet {
        if self.is_subset(other) {
            return self.clone();
        }
        RoleSet(
            self.0
                .iter()
                .filter(|r| other.contains(r))
                .cloned()
                .collect(),
        )
    }

    /// The roles in order.
    pub fn iter(&self) -> impl Iterator<Item = &Role> {
        self.0.iter()
    }

    /// How many roles.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a list of role names.
    pub fn parse<I, S>(names: I) -> Result<RoleSet, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        names
            .into_iter()
            .map(Role::new)
            .collect::<Result<Vec<_>, _>>()
            .map(RoleSet::from_iter)
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<T: IntoIterator<Item = Role>>(iter: T) -> Self {
        let mut roles: Vec<Role> = iter.into_iter().collect();
        roles.sort();
        roles.dedup();
        RoleSet(roles.into())
    }
}

impl<'a> IntoIterator for &'a RoleSet {
    type Item = &'a Role;
    type IntoIter = std::slice::Iter<'a, Role>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

impl Serialize for RoleSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RoleSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Role>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_map_to_the_constants() {
        assert_eq!(Role::new("User").unwrap(), Role::USER);
        assert!(matches!(Role::new("User").unwrap().0, Cow::Borrowed(_)));
    }

    #[test]
    fn bad_role_names_are_refused_with_the_name() {
        for bad in ["", "has space", "é", &"x".repeat(65)] {
            let err = Role::new(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn sets_are_sorted_and_deduplicated() {
        let set = RoleSet::from_iter([Role::USER, Role::EVALUATOR, Role::USER]);
        assert_eq!(set.len(), 2);
        assert!(set.contains(&Role::USER));
        assert!(!set.contains(&Role::SUBSCRIBER));
        assert!(RoleSet::from_iter([Role::USER]).is_subset(&set));
        assert!(!RoleSet::from_iter([Role::SUBSCRIBER]).is_subset(&set));
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let set: RoleSet = serde_json::from_str(r#"["Subscriber","User"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["Subscriber","User"]"#
        );
        assert!(serde_json::from_str::<RoleSet>(r#"["bad role"]"#).is_err());
    }
}
