//! The audit log's side of the stores: [`AuditQuery`] (which entries to read), the names of
//! the fields a change touched, and the outcome of an error. The recording itself is
//! [`ManagedStore`](super::ManagedStore)'s: each of its changes writes one
//! [`AuditEntry`] through the store's [`append_audit`](super::ManagedStore::append_audit).
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::client::{Account, AccountId, Role, RoleSet};
//! use gis_auth::document::{AuditAction, AuditOutcome};
//! use gis_auth::store::{AuditQuery, InMemoryStore, ManagedStore};
//! use time::OffsetDateTime;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = InMemoryStore::new();
//! let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::USER]))?;
//! store.create_account(acme.clone()).await?;
//! assert!(store.create_account(acme).await.is_err());
//!
//! let all = AuditQuery::new(OffsetDateTime::UNIX_EPOCH, OffsetDateTime::now_utc() + time::Duration::hours(1));
//! let entries = store.audit(&all).await?;
//! assert_eq!(entries.len(), 2);
//! assert_eq!(entries[0].action, AuditAction::CreateAccount);
//! assert_eq!(entries[1].outcome, AuditOutcome::Conflict);
//! assert_eq!(entries[1].by, "operator");
//! # Ok(()) }
//! ```

use time::OffsetDateTime;

use super::ManageError;
use crate::client::{Account, AccountId, ClientSpec, Contact, Plan, Status};
use crate::document::{AuditEntry, AuditOutcome};

/// How many entries one read returns unless [`AuditQuery::limit`] says otherwise.
pub const DEFAULT_AUDIT_PAGE: usize = 100;

/// The most entries one read returns.
pub const MAX_AUDIT_PAGE: usize = 1_000;

/// Which audit entries to read: those of `[from, to)`, of one account or of all, oldest
/// first, at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only this account's entries; `None` is every account's (the operator's view).
    pub account: Option<AccountId>,
    /// The first instant included.
    pub from: OffsetDateTime,
    /// The first instant excluded.
    pub to: OffsetDateTime,
    /// The most entries to return (at most [`MAX_AUDIT_PAGE`]).
    pub limit: usize,
}

impl AuditQuery {
    /// Every account's entries of `[from, to)`, [`DEFAULT_AUDIT_PAGE`] at most.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime) -> Self {
        Self {
            account: None,
            from,
            to,
            limit: DEFAULT_AUDIT_PAGE,
        }
    }

    /// Only `account`'s entries.
    #[must_use]
    pub fn account(mut self, account: AccountId) -> Self {
        self.account = Some(account);
        self
    }

    /// At most `limit` entries (capped at [`MAX_AUDIT_PAGE`]).
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.min(MAX_AUDIT_PAGE);
        self
    }

    /// Whether `entry` is one this query reads (its limit aside).
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        entry.at >= self.from
            && entry.at < self.to
            && self
                .account
                .as_ref()
                .is_none_or(|a| entry.account_id.as_deref() == Some(a.as_str()))
    }

    /// The entries of `entries` this query reads, oldest first, at most `limit`.
    pub fn select<'a>(&self, entries: impl IntoIterator<Item = &'a AuditEntry>) -> Vec<AuditEntry> {
        let mut found: Vec<AuditEntry> = entries
            .into_iter()
            .filter(|e| self.matches(e))
            .cloned()
            .collect();
        found.sort_by_key(|e| e.at);
        found.truncate(self.limit.min(MAX_AUDIT_PAGE));
        found
    }
}

/// The audit log's outcome for a change that failed with `error`.
pub fn outcome_of(error: &ManageError) -> AuditOutcome {
    match error {
        ManageError::Invalid(_) => AuditOutcome::Invalid,
        ManageError::NotFound { .. } => AuditOutcome::NotFound,
        ManageError::Duplicate { .. } => AuditOutcome::Conflict,
        ManageError::Stale { .. } => AuditOutcome::StalePrecondition,
        ManageError::LockOut(_) => AuditOutcome::LockOut,
        ManageError::TooManyClients { .. } => AuditOutcome::TooManyClients,
        ManageError::RandomSource | ManageError::Backend(_) => AuditOutcome::Failed,
    }
}

/// The names (as the client document spells them) of the settings that differ between
/// `before` and `after`.
pub(crate) fn client_fields(before: &ClientSpec, after: &ClientSpec) -> Vec<String> {
    let mut fields = Vec::new();
    let mut differs = |yes: bool, name: &str| {
        if yes {
            fields.push(name.to_owned());
        }
    };
    differs(before.name != after.name, "name");
    differs(before.roles != after.roles, "roles");
    differs(before.status != after.status, "status");
    differs(
        before.allowed_origins != after.allowed_origins,
        "allowed_origins",
    );
    differs(
        before.allow_missing_origin != after.allow_missing_origin,
        "allow_missing_origin",
    );
    differs(before.allowed_ips != after.allowed_ips, "allowed_ips");
    differs(before.expires_at != after.expires_at, "expires_at");
    differs(before.privileges != after.privileges, "privileges");
    differs(before.grants != after.grants, "grants");
    differs(before.rate_limit != after.rate_limit, "rate_limit");
    differs(before.shadow != after.shadow, "shadow");
    fields
}

/// The names (as the account document and the profile spell them) of what differs between
/// `before` and `after`; at creation (`before` is `None`), of what `after` sets.
pub(crate) fn account_fields(before: Option<&Account>, after: &Account) -> Vec<String> {
    let mut fields = Vec::new();
    let mut differs = |yes: bool, name: &str| {
        if yes {
            fields.push(name.to_owned());
        }
    };
    // At creation, what differs from a new account's defaults.
    let (name, roles, status, plan, contact) = match before {
        Some(b) => (
            b.name != after.name,
            b.roles != after.roles,
            b.status,
            b.plan.clone(),
            b.contact.clone(),
        ),
        None => (
            true,
            true,
            Status::Active,
            Plan::default(),
            Contact::default(),
        ),
    };
    let (p, c) = (&after.plan, &after.contact);
    differs(name, "name");
    differs(roles, "roles");
    differs(status != after.status, "status");
    differs(plan.daily_quota != p.daily_quota, "daily_quota");
    differs(plan.monthly_quota != p.monthly_quota, "monthly_quota");
    differs(plan.rate_limit != p.rate_limit, "rate_limit");
    differs(plan.max_clients != p.max_clients, "max_clients");
    differs(plan.items != p.items, "items");
    differs(plan.expires_at != p.expires_at, "expires_at");
    differs(contact.contact_name != c.contact_name, "contact_name");
    differs(contact.contact_email != c.contact_email, "contact_email");
    differs(contact.contact_phone != c.contact_phone, "contact_phone");
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Role, RoleSet};

    #[test]
    fn only_the_names_of_the_changed_settings_are_listed() {
        let before = ClientSpec::javascript("Web");
        let mut after = before.clone();
        after.name = "Store locator".into();
        after.allowed_origins = vec!["https://example.com".into()];
        assert_eq!(client_fields(&before, &after), ["name", "allowed_origins"]);
        assert!(client_fields(&before, &before).is_empty());

        let acme = Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER]),
        )
        .unwrap();
        assert_eq!(account_fields(None, &acme), ["name", "roles"]);
        let mut off = acme.clone();
        off.status = Status::Inactive;
        assert_eq!(account_fields(Some(&acme), &off), ["status"]);
    }
}
