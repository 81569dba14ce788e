//! [`AuditEntry`]: one change to an account or a client as the audit log keeps it, in the
//! one form the stores write (the file store's JSON lines), the admin API answers
//! (`GET /account/audit`) and the command-line tool prints (`gis-auth audit`).
//!
//! An entry names the fields a change touched, never their values: no credential, digest
//! or setting is ever written into it.
//!
//! ```
//! use gis_auth::document::{AuditAction, AuditEntry, AuditOutcome};
//!
//! let line = r#"{"at":"2026-06-01T12:00:00Z","by":"operator","account_id":"acme",
//!     "client_id":"web","action":"update_client","fields":["name"],"outcome":"success"}"#;
//! let entry: AuditEntry = serde_json::from_str(line)?;
//! assert_eq!((entry.action, entry.outcome), (AuditAction::UpdateClient, AuditOutcome::Success));
//! # Ok::<(), serde_json::Error>(())
//! ```

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Who made a change as the audit log names it: the operator (the command-line tool, the
/// clients file, a program using the store directly).
pub const OPERATOR: &str = "operator";

/// A change as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When the change was made (RFC 3339, on the store's clock).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "admin", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
    /// Who made it: the id of the client whose admin token was used, or `operator`.
    pub by: String,
    /// The account changed (or, for a change refused as not found, the account it was
    /// limited to); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The client changed, for a change to a client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// What was done.
    pub action: AuditAction,
    /// The names of the fields the change set (at creation: every field given a value),
    /// never their values.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Whether it applied, or why not.
    pub outcome: AuditOutcome,
}

impl AuditEntry {
    /// An entry made at `at` by `by`.
    pub fn new(at: OffsetDateTime, by: impl Into<String>, action: AuditAction) -> Self {
        Self {
            at,
            by: by.into(),
            account_id: None,
            client_id: None,
            action,
            fields: Vec::new(),
            outcome: AuditOutcome::Success,
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// An account was created (with its two default clients).
    CreateAccount,
    /// An account was changed.
    UpdateAccount,
    /// A client was created.
    CreateClient,
    /// A client's settings were changed.
    UpdateClient,
    /// A client's credential was replaced.
    RegenerateClient,
    /// A client was deleted.
    DeleteClient,
}

impl AuditAction {
    /// The name of the action on the wire: `create_account`, `update_client`...
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::CreateAccount => "create_account",
            AuditAction::UpdateAccount => "update_account",
            AuditAction::CreateClient => "create_client",
            AuditAction::UpdateClient => "update_client",
            AuditAction::RegenerateClient => "regenerate_client",
            AuditAction::DeleteClient => "delete_client",
        }
    }

    /// The action named `name` on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        [
            AuditAction::CreateAccount,
            AuditAction::UpdateAccount,
            AuditAction::CreateClient,
            AuditAction::UpdateClient,
            AuditAction::RegenerateClient,
            AuditAction::DeleteClient,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }
}

/// Whether a change applied, or the kind of error that stopped it (nothing changed then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditOutcome {
    /// It applied.
    Success,
    /// The change was invalid.
    Invalid,
    /// No such account or client (or one of another account).
    NotFound,
    /// The id exists already.
    Conflict,
    /// The `If-Match` precondition no longer held.
    StalePrecondition,
    /// It would have locked the account out of the admin API.
    LockOut,
    /// The account holds as many clients as its plan allows.
    TooManyClients,
    /// The random source or the store failed.
    Failed,
}

impl AuditOutcome {
    /// The name of the outcome on the wire: `success`, `not_found`...
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Invalid => "invalid",
            AuditOutcome::NotFound => "not_found",
            AuditOutcome::Conflict => "conflict",
            AuditOutcome::StalePrecondition => "stale_precondition",
            AuditOutcome::LockOut => "lock_out",
            AuditOutcome::TooManyClients => "too_many_clients",
            AuditOutcome::Failed => "failed",
        }
    }

    /// The outcome named `name` on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        [
            AuditOutcome::Success,
            AuditOutcome::Invalid,
            AuditOutcome::NotFound,
            AuditOutcome::Conflict,
            AuditOutcome::StalePrecondition,
            AuditOutcome::LockOut,
            AuditOutcome::TooManyClients,
            AuditOutcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_outcomes_read_back_their_wire_names() {
        for a in [AuditAction::CreateAccount, AuditAction::DeleteClient] {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        for o in [AuditOutcome::StalePrecondition, AuditOutcome::LockOut] {
            assert_eq!(AuditOutcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
