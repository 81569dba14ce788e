//! Accounts, identifiers and the active/inactive status.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Role, RoleSet, Status};
//!
//! let acme = Account::new(AccountId::new("acme")?, "Acme Maps",
//!     RoleSet::from_iter([Role::USER, Role::EVALUATOR]))?
//!     .with_daily_quota(Some(10_000));
//! assert_eq!(acme.status, Status::Active);
//! assert!(AccountId::new("not an id").is_err());
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::plan::Plan;
use super::role::RoleSet;
use crate::error::ConfigError;

const MAX_ID_LEN: usize = 128;
const MAX_NAME_LEN: usize = 200;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Accepts 1 to 128 ASCII letters, digits, `.`, `_` or `-`.
            pub fn new(id: impl AsRef<str>) -> Result<Self, ConfigError> {
                let id = id.as_ref();
                validate_id($field, id)?;
                Ok(Self(Arc::from(id)))
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Self::new(&*s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// An account's id.
    AccountId,
    "account id"
);
id_type!(
    /// A client's id. For a NativeConfidential client this is also its OAuth `client_id`.
    ClientId,
    "client id"
);

fn validate_id(field: &'static str, id: &str) -> Result<(), ConfigError> {
    let invalid = |reason| ConfigError::InvalidField {
        field,
        value: id.to_owned(),
        reason,
    };
    if id.is_empty() {
        return Err(invalid("it cannot be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid("it has at most 128 characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid("it has only letters, digits, `.`, `_` and `-`"));
    }
    Ok(())
}

/// Checks a display name: 1 to 200 characters, no control characters.
pub(crate) fn validate_name(name: &str) -> Result<(), ConfigError> {
    let invalid = |reason| ConfigError::InvalidField {
        field: "name",
        value: name.to_owned(),
        reason,
    };
    if name.trim().is_empty() {
        return Err(invalid("it cannot be empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(invalid("it has at most 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("it cannot have control characters"));
    }
    Ok(())
}

/// Whether an account or client may be used.
///
/// Its text (`active`, `inactive`) is written once, in [`Status::as_str`]; `Display`,
/// `FromStr` and serde go through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    /// In use.
    #[default]
    Active,
    /// Switched off: every request with its credentials is refused at once.
    Inactive,
}

impl Status {
    /// Both statuses.
    pub const ALL: [Status; 2] = [Status::Active, Status::Inactive];

    /// Whether this is [`Status::Active`].
    pub fn is_active(self) -> bool {
        self == Status::Active
    }

    /// The name, as in the clients file: `active` or `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
        }
    }
}

super::text_enum!(Status, "status", "it is `active` or `inactive`");

/// An account: the owner of clients, and the upper bound of their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// The account's id.
    pub id: AccountId,
    /// A display name.
    pub name: String,
    /// The roles the account holds; its clients hold at most these.
    pub roles: RoleSet,
    /// An inactive account disables all its clients.
    pub status: Status,
    /// What the operator sells the account: quotas, rate limit, caps, item ceiling, expiry.
    pub plan: Plan,
    /// Who to contact about the account.
    pub contact: Contact,
}

/// The people behind an account, as its holder keeps them (`PATCH /account/profile`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Contact {
    /// A person's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_name: Option<String>,
    /// An e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// A telephone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_phone: Option<String>,
}

const MAX_EMAIL_LEN: usize = 254;
const MAX_PHONE_LEN: usize = 32;

impl Contact {
    /// Checks every field: a name as account names are, an e-mail address with one `@`
    /// between a local part and a dotted domain, a phone number of digits, spaces and
    /// `+-()./`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.contact_name {
            validate_name(name).map_err(|e| match e {
                ConfigError::InvalidField { value, reason, .. } => ConfigError::InvalidField {
                    field: "contact_name",
                    value,
                    reason,
                },
                other => other,
            })?;
        }
        if let Some(email) = &self.contact_email {
            let invalid = |reason| ConfigError::InvalidField {
                field: "contact_email",
                value: email.clone(),
                reason,
            };
            if email.len() > MAX_EMAIL_LEN {
                return Err(invalid("it has at most 254 characters"));
            }
            let valid = email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }) && !email.chars().any(|c| c.is_whitespace() || c.is_control());
            if !valid {
                return Err(invalid("it is an address like name@example.com"));
            }
        }
        if let Some(phone) = &self.contact_phone {
            let valid = !phone.trim().is_empty()
                && phone.len() <= MAX_PHONE_LEN
                && phone.chars().any(|c| c.is_ascii_digit())
                && phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-()./".contains(c));
            if !valid {
                return Err(ConfigError::InvalidField {
                    field: "contact_phone",
                    value: phone.clone(),
                    reason: "it has up to 32 digits, spaces and `+-()./`",
                });
            }
        }
        Ok(())
    }
}

impl Account {
    /// An active account on the default plan. Fails if the name is empty or too long.
    pub fn new(
        id: AccountId,
        name: impl Into<String>,
        roles: RoleSet,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Self {
            id,
            name,
            roles,
            status: Status::Active,
            plan: Plan::default(),
            contact: Contact::default(),
        })
    }

    /// With these contact details.
    #[must_use]
    pub fn with_contact(mut self, contact: Contact) -> Self {
        self.contact = contact;
        self
    }

    /// With this status.
    #[must_use]
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// With this plan.
    #[must_use]
    pub fn with_plan(mut self, plan: Plan) -> Self {
        self.plan = plan;
        self
    }

    /// With this daily quota, the rest of the plan as it is.
    #[must_use]
    pub fn with_daily_quota(mut self, quota: Option<u64>) -> Self {
        self.plan.daily_quota = quota;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated_by_name() {
        assert!(ClientId::new("web-map_1.prod").is_ok());
        for bad in ["", "has space", "ü", &"a".repeat(129)] {
            let err = AccountId::new(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid account id"), "{err}");
        }
    }

    #[test]
    fn contacts_are_validated_by_field() {
        let ok = Contact {
            contact_name: Some("Ana Ruiz".into()),
            contact_email: Some("ana@acme.example".into()),
            contact_phone: Some("+34 (91) 123-4567".into()),
        };
        assert!(ok.validate().is_ok());
        for (contact, field) in [
            (
                Contact {
                    contact_name: Some(" ".into()),
                    ..Contact::default()
                },
                "contact_name",
            ),
            (
                Contact {
                    contact_email: Some("ana".into()),
                    ..Contact::default()
                },
                "contact_email",
            ),
            (
                Contact {
                    contact_email: Some("a@b@c.d".into()),
                    ..Contact::default()
                },
                "contact_email",
            ),
            (
                Contact {
                    contact_email: Some("a@localhost".into()),
                    ..Contact::default()
                },
                "contact_email",
            ),
            (
                Contact {
                    contact_email: Some("a b@c.d".into()),
                    ..Contact::default()
                },
                "contact_email",
            ),
            (
                Contact {
                    contact_phone: Some("call me".into()),
                    ..Contact::default()
                },
                "contact_phone",
            ),
            (
                Contact {
                    contact_phone: Some("1".repeat(33)),
                    ..Contact::default()
                },
                "contact_phone",
            ),
        ] {
            match contact.validate() {
                Err(ConfigError::InvalidField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{contact:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn status_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&Status::Inactive).unwrap(),
            "\"inactive\""
        );
        assert!(serde_json::from_str::<Status>("\"Active\"").is_err());
    }

    #[test]
    fn names_must_be_printable() {
        assert!(validate_name("Demo maps").is_ok());
        assert!(validate_name("  ").is_err());
        assert!(validate_name("bad\nname").is_err());
    }
}
