//! An account on the wire: [`AccountDocument`] (what the clients file stores and the
//! command-line tool prints) and [`ProfilePatch`] (what an account holder may change).
//!
//! An account document carries the account's plan, the operator's settings: `daily_quota`,
//! `monthly_quota`, `rate_limit` (`{"per_second", "burst"}`), `max_clients` (absent: the
//! default of 1,000; `null`: unlimited), `items` (item ids or `prefix*` patterns its clients
//! may be granted; absent: any) and `expires_at` (RFC 3339). Plan settings left unset are
//! not written, so a file keeps its layout.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Role, RoleSet};
//! use gis_auth::document::AccountDocument;
//!
//! let doc: AccountDocument = serde_json::from_str(
//!     r#"{"id": "acme", "roles": ["User"], "daily_quota": 1000, "max_clients": null,
//!         "items": ["roads", "parcels-*"], "rate_limit": {"per_second": 20, "burst": 50}}"#)?;
//! let account = doc.to_account()?;
//! assert_eq!(account.name, "acme", "the id when no name is given");
//! assert_eq!(account.plan.max_clients, None, "null is unlimited");
//! assert!(account.plan.items.as_ref().is_some_and(|i| i.admits("parcels-north")));
//! let json = serde_json::to_value(AccountDocument::of(&account))?;
//! assert_eq!(json["status"], "active");
//! assert_eq!(json["max_clients"], serde_json::Value::Null);
//! assert!(json.get("expires_at").is_none(), "unset plan settings are left out");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use super::field::{FieldError, null_as_default, nullable_object, optional_time};
use super::{Nullable, RateLimitDocument};
use crate::client::{
    Account, AccountId, Contact, DEFAULT_MAX_CLIENTS, ItemCeiling, Plan, RateLimit, RoleSet, Status,
};
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
    /// Transactions per UTC calendar month; absent or `null` is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_quota: Option<u64>,
    /// One request-rate limit shared by all the account's clients; absent or `null` is none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_object"
    )]
    pub rate_limit: Option<RateLimitDocument>,
    /// The most clients the account may hold: absent is the default (1,000), `null`
    /// unlimited.
    #[serde(default, skip_serializing_if = "Nullable::is_absent")]
    pub max_clients: Nullable<u32>,
    /// The item ids (or `prefix*` patterns) the account's clients may be granted; absent or
    /// `null` is any, `[]` none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// The end of an evaluation period (RFC 3339): from then on every client of the account
    /// is refused. Absent or `null` is never.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_time",
        serialize_with = "time::serde::rfc3339::option::serialize"
    )]
    pub expires_at: Option<OffsetDateTime>,
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
            monthly_quota: account.plan.monthly_quota,
            rate_limit: account.plan.rate_limit.map(RateLimitDocument::from),
            max_clients: match account.plan.max_clients {
                Some(DEFAULT_MAX_CLIENTS) => Nullable::Absent,
                max => Nullable::from(max),
            },
            items: account
                .plan
                .items
                .as_ref()
                .map(|ceiling| ceiling.entries().map(str::to_owned).collect()),
            expires_at: account.plan.expires_at,
            contact_name: account.contact.contact_name.clone(),
            contact_email: account.contact.contact_email.clone(),
            contact_phone: account.contact.contact_phone.clone(),
        }
    }

    /// The account, checked (its name, plan and contact fields).
    pub fn to_account(&self) -> Result<Account, FieldError> {
        let plan = self.plan()?;
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
            .with_plan(plan)
            .with_contact(contact))
    }

    /// The plan the document describes, checked, naming the field at fault.
    fn plan(&self) -> Result<Plan, FieldError> {
        let rate_limit = self
            .rate_limit
            .map(RateLimit::try_from)
            .transpose()
            .map_err(|e| FieldError::config("rate_limit", &e))?;
        let items = self
            .items
            .as_ref()
            .map(ItemCeiling::new)
            .transpose()
            .map_err(|e| FieldError::config("items", &e))?;
        let mut max_clients = Some(DEFAULT_MAX_CLIENTS);
        self.max_clients.apply(&mut max_clients);
        Ok(Plan::default()
            .with_daily_quota(self.daily_quota)
            .with_monthly_quota(self.monthly_quota)
            .with_rate_limit(rate_limit)
            .with_max_clients(max_clients)
            .with_items(items)
            .with_expires_at(self.expires_at))
    }
}

/// For `#[serde(deserialize_with)]`: an optional object (`null` is none).
fn optional_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(match nullable_object(d)? {
        Nullable::Value(v) => Some(v),
        Nullable::Absent | Nullable::Null => None,
    })
}

/// A change to one's own account (`PATCH /account/profile`): name and contact fields only
/// (`null` clears a contact field); roles, status and the plan (quotas, rate limit, client
/// cap, items, expiry) are not self-service.
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
    pub const NOT_SELF_SERVICE: [&'static str; 10] = [
        "roles",
        "daily_quota",
        "monthly_quota",
        "rate_limit",
        "max_clients",
        "items",
        "expires_at",
        "status",
        "account_id",
        "id",
    ];

    /// Applies the contact fields given to `contact` and checks the result.
    pub fn apply_contact(self, contact: &mut Contact) -> Result<(), ConfigError> {
        self.contact_name.apply(&mut contact.contact_name);
        self.contact_email.apply(&mut contact.contact_email);
        self.contact_phone.apply(&mut contact.contact_phone);
        contact.validate()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::document::{ClientsFile, read};

    fn account(doc: Value) -> Result<Account, FieldError> {
        read::<AccountDocument>(&doc)?.to_account()
    }

    #[test]
    fn a_plan_is_read_and_written_back_as_given() {
        let doc = json!({
            "id": "acme", "name": "Acme", "roles": ["User"], "status": "active",
            "daily_quota": 1000, "monthly_quota": 20000,
            "rate_limit": {"per_second": 20, "burst": 50}, "max_clients": 25,
            "items": ["parcels-*", "roads"], "expires_at": "2027-01-31T00:00:00Z"
        });
        let acme = account(doc.clone()).unwrap();
        let plan = &acme.plan;
        assert_eq!(
            (plan.daily_quota, plan.monthly_quota),
            (Some(1000), Some(20_000))
        );
        assert_eq!(plan.rate_limit, Some(RateLimit::new(20, 50).unwrap()));
        assert_eq!(plan.max_clients, Some(25));
        assert!(plan.items.as_ref().unwrap().admits("parcels-1"));
        assert_eq!(
            plan.expires_at,
            Some(time::macros::datetime!(2027-01-31 00:00 UTC))
        );
        assert_eq!(
            serde_json::to_value(AccountDocument::of(&acme)).unwrap(),
            doc
        );
    }

    #[test]
    fn max_clients_absent_is_the_default_and_null_is_unlimited() {
        let base = json!({"id": "acme", "roles": ["User"]});
        let default = account(base.clone()).unwrap();
        assert_eq!(default.plan.max_clients, Some(DEFAULT_MAX_CLIENTS));
        let written = serde_json::to_value(AccountDocument::of(&default)).unwrap();
        for unset in [
            "monthly_quota",
            "rate_limit",
            "max_clients",
            "items",
            "expires_at",
        ] {
            assert!(written.get(unset).is_none(), "{unset}: {written}");
        }
        assert_eq!(
            written["daily_quota"],
            Value::Null,
            "written as it always was"
        );

        let mut unlimited = base.clone();
        unlimited["max_clients"] = Value::Null;
        let unlimited = account(unlimited).unwrap();
        assert_eq!(unlimited.plan.max_clients, None);
        let written = serde_json::to_value(AccountDocument::of(&unlimited)).unwrap();
        assert_eq!(written.get("max_clients"), Some(&Value::Null));

        let mut nulls = base;
        for field in ["monthly_quota", "rate_limit", "items", "expires_at"] {
            nulls[field] = Value::Null;
        }
        assert_eq!(account(nulls).unwrap().plan, Plan::default());
    }

    #[test]
    fn an_empty_item_list_admits_nothing() {
        let acme = account(json!({"id": "acme", "roles": ["User"], "items": []})).unwrap();
        assert_eq!(acme.plan.item_outside(["roads"]), Some("roads"));
    }

    #[test]
    fn bad_plan_settings_are_named_by_entry_and_field() {
        for (setting, field) in [
            (json!({"monthly_quota": -1}), "monthly_quota"),
            (json!({"monthly_quota": "lots"}), "monthly_quota"),
            (json!({"rate_limit": {"per_second": 0}}), "rate_limit"),
            (json!({"rate_limit": [5, 10]}), "rate_limit"),
            (
                json!({"rate_limit": {"per_second": 1, "window": 2}}),
                "rate_limit",
            ),
            (json!({"max_clients": -5}), "max_clients"),
            (json!({"max_clients": "unlimited"}), "max_clients"),
            (json!({"items": ["a*b*"]}), "items"),
            (json!({"items": "roads"}), "items"),
            (json!({"expires_at": "next year"}), "expires_at"),
        ] {
            let mut entry = json!({"id": "acme", "roles": ["User"]});
            for (k, v) in setting.as_object().unwrap() {
                entry[k] = v.clone();
            }
            let text = json!({"accounts": [entry]}).to_string();
            let err = ClientsFile::from_json(&text).unwrap_err();
            assert_eq!(
                (err.entry(), err.field()),
                (Some("acme"), Some(field)),
                "{err}"
            );
        }
    }
}
