//! The client model: accounts, clients, kinds, roles, status, and the key and secret types.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests,
//!     CredentialKind, PlainCredential, Role, RoleSet};
//!
//! let account = Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::USER, Role::EVALUATOR]))?;
//! let key = PlainCredential::generate(CredentialKind::ApiKey)?;
//! let client = Client::build(ClientId::new("web")?, &ClientSpec::javascript("Web map"),
//!     &account, CredentialDigests::new(key.digest()))?;
//! // no roles given: all of the account's
//! assert_eq!(client.roles(), &account.roles);
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

/// `Display`, `FromStr` and serde for an enum with `ALL` and `as_str`, so its text is
/// written once: `FromStr` takes `as_str` (and the `also` spelling) and refuses anything
/// else as an invalid `field`, for `reason`.
macro_rules! text_enum {
    ($type:ty, $field:literal, $reason:literal $(, also $alias:ident)?) => {
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $type {
            type Err = crate::error::ConfigError;

            fn from_str(s: &str) -> Result<Self, crate::error::ConfigError> {
                <$type>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s $(|| v.$alias() == s)?)
                    .ok_or_else(|| crate::error::ConfigError::InvalidField {
                        field: $field,
                        value: crate::client::refused_name(s),
                        reason: $reason,
                    })
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
use text_enum;

/// A name one of the enums refused, as its error quotes it: only when it could be a name
/// (up to 24 letters, digits, `_` or `-`), so a credential given in its place is never
/// quoted.
fn refused_name(text: &str) -> String {
    let plain = text.len() <= 24
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        text.to_owned()
    } else {
        "…".to_owned()
    }
}

mod access;
mod account;
#[allow(clippy::module_inception)]
mod client;
mod key;
mod plan;
mod role;

pub use access::{
    Action, DEFAULT_MAX_GRANTS, Grant, Grants, MAX_ITEM_ID_LEN, Privileges, RateLimit, Restriction,
    ShadowSet,
};
pub use account::{Account, AccountId, ClientId, Contact, Status};
pub(crate) use client::empty_roles;
pub use client::{Client, ClientKind, ClientSpec, CredentialDigests};
pub(crate) use key::same_secret;
pub use key::{CredentialKind, KeyDigest, KeyFormatError, PlainCredential};
pub(crate) use key::{DigestBuildHasher, FastBuildHasher};
pub use plan::{DEFAULT_MAX_CLIENTS, ItemCeiling, MAX_CEILING_ENTRIES, Plan};
pub use role::{Role, RoleSet};
