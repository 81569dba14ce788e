//! An account on the wire: [`AccountDocument`] (what the clients file stores and the
//! command-line tool prints) and [`ProfilePatch`] (what an account holder may change).
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Role, RoleSet};
//! use gis_auth::document::AccountDocument;
//!
//! let doc: AccountDocument = serde_json::from_str(
//!     r#"{"id": "acme", "roles": ["User"], "daily_quota": 1000}"#)?;
//! let account = doc.to_account()?;
//! assert_eq!(account.name, "acme", "the id when no name is given");
//! let json = serde_json::to_value(AccountDocument::of(&account))?;
//! assert_eq!(json["status"], "active");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};

use super::Nullable;
use super::field::{FieldError, null_as_default};
use crate::client::{Account, AccountId, Contact, RoleSet, Status};
use crate::error::ConfigError;

/// An account as JSON, in the clients file's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDocument {
    /// The account's id.
    pub id: AccountId,
    /// A display name; the id when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The roles the account holds.
    pub roles: RoleSet,
    /// `active` (the default) or `inactive`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: Status,
    /// Transactions per UTC day; `null` is unlimited.
    #[serde(default)]
    pub daily_quota: Option<u64>,
    /// A contact person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_name: Option<String>,
    /// A contact e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// A contact telephone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_phone: Option<String>,
}

impl AccountDocument {
    /// The account as a document.
    pub fn of(account: &Account) -> AccountDocument {
        AccountDocument {
            id: account.id.clone(),
            name: Some(account.name.clone()),
            roles: account.roles.clone(),
            status: account.status,
            daily_quota: account.plan.daily_quota,
            contact_name: account.contact.contact_name.clone(),
            contact_email: account.contact.contact_email.clone(),
            contact_phone: account.contact.contact_phone.clone(),
        }
    }

    /// The account, checked (its name and contact fields).
    pub fn to_account(&self) -> Result<Account, FieldError> {
        let contact = Contact {
            contact_name: self.contact_name.clone(),
            contact_email: self.contact_email.clone(),
            contact_phone: self.contact_phone.clone(),
        };
        contact.validate().map_err(|e| match &e {
            ConfigError::InvalidField { field, .. } => FieldError::config(*field, &e),
            _ => FieldError::config("contact_name", &e),
        })?;
        let name = self.name.clone().unwrap_or_else(|| self.id.to_string());
        Ok(Account::new(self.id.clone(), name, self.roles.clone())
            .map_err(|e| FieldError::config("name", &e))?
            .with_status(self.status)
            .with_daily_quota(self.daily_quota)
            .with_contact(contact))
    }
}

/// A change to one's own account (`PATCH /account/profile`): name and contact fields only
/// (`null` clears a contact field); roles, quota and status are not self-service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// A display name.
    #[serde(default)]
    pub name: Option<String>,
    /// A contact person.
    #[serde(default)]
    #[cfg_attr(feature = "admin", schema(value_type = Option<String>))]
    pub contact_name: Nullable<String>,
    /// A contact e-mail address.
    #[serde(default)]
    #[cfg_attr(feature = "admin", schema(value_type = Option<String>))]
    pub contact_email: Nullable<String>,
    /// A contact telephone number.
    #[serde(default)]
    #[cfg_attr(feature = "admin", schema(value_type = Option<String>))]
    pub contact_phone: Nullable<String>,
}

impl ProfilePatch {
    /// The fields of an account its holder may not change themselves.
    pub const NOT_SELF_SERVICE: [&'static str; 5] =
        ["roles", "daily_quota", "status", "account_id", "id"];

    /// Applies the contact fields given to `contact` and checks the result.
    pub fn apply_contact(self, contact: &mut Contact) -> Result<(), ConfigError> {
        self.contact_name.apply(&mut contact.contact_name);
        self.contact_email.apply(&mut contact.contact_email);
        self.contact_phone.apply(&mut contact.contact_phone);
        contact.validate()
    }
}
