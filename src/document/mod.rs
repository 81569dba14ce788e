//! The wire format of clients and accounts: one set of serde documents for the clients
//! file, the admin API (its answers, its request bodies and its OpenAPI document), and the
//! command-line tool.
//!
//! - [`ClientDocument`] and [`AccountDocument`]: a client and an account as they are shown
//!   and stored, with the client's [`etag`]; [`ClientView`] and [`CreatedClientView`]: a
//!   client with its ETag, and once with its new credential.
//! - [`NewClient`], [`ClientPatch`] and [`ProfilePatch`]: what creates or changes them;
//!   [`Nullable`] tells an absent field from `null`.
//! - [`ClientsFile`]: a file of accounts and clients.
//! - [`AuditEntry`]: a change as the audit log records it.
//! - [`UsageDay`]: one client's usage on one day.
//!
//! Every document refuses fields it does not know. A document that cannot be read is
//! refused naming the field (and, in a clients file, the entry), never quoting the value:
//! a credential pasted into the wrong field stays out of logs and error bodies.
//!
//! ```
//! use gis_auth::document::ClientsFile;
//!
//! let key = "gis_apikey_not_a_real_key";
//! let file = format!(r#"{{"clients": [{{"id": "web", "account": "acme",
//!     "kind": "JavaScript", "allowed_ips": "{key}"}}]}}"#);
//! let err = ClientsFile::from_json(&file).unwrap_err();
//! assert_eq!((err.entry(), err.field()), (Some("web"), Some("allowed_ips")));
//! assert!(!err.to_string().contains(key));
//! ```

mod account;
mod audit;
mod client;
mod field;
mod file;
mod nullable;
#[cfg(feature = "admin")]
mod schema;
mod usage;
mod view;

pub use account::{AccountDocument, ProfilePatch};
pub use audit::{AuditAction, AuditEntry, AuditOutcome, OPERATOR};
pub use client::{
    ClientDocument, ClientPatch, GrantDocument, MAX_RULE_BYTES, MAX_SELF_SERVICE_ENTRIES,
    NewClient, RateLimitDocument, ReadOnly, etag,
};
pub use field::{FieldError, read};
pub use file::{ClientsFile, ClientsFileError, FileClient};
pub use nullable::Nullable;
pub use usage::{ApiUsageView, SeenNetworkView, SeenOriginView, UsageDay};
pub use view::{ClientView, CreatedClientView};

use crate::error::ConfigError;

/// The field of a client or account document a configuration error is about, when it names
/// one.
pub(crate) fn field_of(e: &ConfigError) -> Option<&'static str> {
    Some(match e {
        ConfigError::InvalidOrigin { .. } | ConfigError::OriginsOnConfidentialClient { .. } => {
            "allowed_origins"
        }
        ConfigError::InvalidIpRule { .. } => "allowed_ips",
        ConfigError::InvalidRole { .. } | ConfigError::RoleNotHeld { .. } => "roles",
        ConfigError::ItemNotInPlan { .. } => "grants",
        ConfigError::InvalidCredential { field, .. } => field,
        ConfigError::InvalidField { field, .. } => match *field {
            "client id" | "account id" => "id",
            other => other,
        },
        _ => return None,
    })
}
