//! The client model: accounts, clients, kinds, roles, status, and the key and secret types.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, Credentials,
//!     CredentialKind, PlainCredential, Role, RoleSet};
//!
//! let account = Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::USER, Role::EVALUATOR]))?;
//! let key = PlainCredential::generate(CredentialKind::ApiKey)?;
//! let client = Client::build(ClientId::new("web")?, &ClientSpec::javascript("Web map"),
//!     &account, Credentials::new(key.digest()))?;
//! // no roles given: all of the account's
//! assert_eq!(client.roles(), &account.roles);
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

mod access;
mod account;
#[allow(clippy::module_inception)]
mod client;
mod document;
mod key;
mod role;

pub use access::{
    Action, DEFAULT_MAX_GRANTS, Grant, Grants, MAX_ITEM_ID_LEN, Privileges, RateLimit, Restriction,
    ShadowSet,
};
pub use account::{Account, AccountId, ClientId, Contact, Status};
pub use client::{Client, ClientKind, ClientSpec, Credentials};
pub use document::{ClientDocument, GrantDocument, etag};
pub use key::{CredentialKind, KeyDigest, KeyFormatError, PlainCredential};
pub(crate) use key::{DigestBuildHasher, FastBuildHasher};
pub use role::{Role, RoleSet};
