//! Events: what an operator or an account holder wants to be told about, as it happens. An
//! [`EventSink`] receives each [`Event`]; the stores feed it their changes (a credential
//! regenerated, a client or an account deactivated) and the layer its counters (a quota
//! at 80 % and at 100 %, a client or an account about to expire), through the watches of
//! [`watch`] that tell each once. [`WebhookSink`] posts them, signed, to a URL.
//!
//! A sink's [`emit`](EventSink::emit) is called on the request path: it must not block or
//! wait (the webhook sink puts the event in a bounded queue and returns).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use gis_auth::client::{Account, AccountId, Role, RoleSet, Status};
//! use gis_auth::events::{Event, EventKind, EventSink};
//! use gis_auth::store::{ManagedStore, InMemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
//! let sink = { let seen = seen.clone(); move |e: Event| seen.lock().unwrap().push(e) };
//! let store = InMemoryStore::new().event_sink(Arc::new(sink));
//! store.create_account(Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::USER]))?).await?;
//! store.update_account(&AccountId::new("acme")?, Box::new(|a| {
//!     a.status = Status::Inactive;
//!     Ok(())
//! })).await?;
//! assert!(matches!(seen.lock().unwrap()[0].kind, EventKind::AccountDeactivated));
//! # Ok(()) }
//! ```

pub mod watch;
#[cfg(feature = "webhook")]
mod webhook;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use time::OffsetDateTime;

use crate::client::{AccountId, ClientId};

#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub use webhook::{
    DEFAULT_WEBHOOK_ATTEMPTS, DEFAULT_WEBHOOK_QUEUE, SIGNATURE_HEADER, TIMESTAMP_HEADER,
    WebhookError, WebhookOptions, WebhookSink, sign,
};

/// How far ahead an expiry is announced: a client or an account expiring within this is
/// told once ([`EventKind::ClientExpiring`], [`EventKind::AccountExpiring`]).
pub const EXPIRY_NOTICE: time::Duration = time::Duration::days(7);

/// Something that happened to an account or one of its clients.
///
/// On the wire (the webhook's body) it is one JSON object: `id`, `type`, `at`,
/// `account_id`, `client_id` when it is about a client, and the fields of its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Event {
    /// A unique id (`evt_` and 96 random bits): a receiver that sees it twice (a delivery
    /// retried after a lost answer) can drop the second.
    pub id: String,
    /// When it happened, on the clock of whoever saw it (the layer's or the store's).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The account.
    pub account_id: AccountId,
    /// The client, for an event about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// An event of `kind` about `account` (and `client`), at `at`, with a fresh id.
    pub fn new(
        at: OffsetDateTime,
        account: AccountId,
        client: Option<ClientId>,
        kind: EventKind,
    ) -> Self {
        let mut bytes = [0u8; 12];
        // A failing random source leaves a zero id rather than losing the event: the id
        // only helps receivers drop duplicates.
        let _ = getrandom::fill(&mut bytes);
        Self {
            id: format!("evt_{}", URL_SAFE_NO_PAD.encode(bytes)),
            at,
            account_id: account,
            client_id: client,
            kind,
        }
    }
}

/// Which quota an [`EventKind::QuotaReached`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QuotaPeriodKind {
    /// The UTC day's quota.
    Daily,
    /// The UTC month's quota.
    Monthly,
}

/// What an [`Event`] tells; its wire name is the `type` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// `quota_reached`: the account used `percent` (80 or 100) % of a quota; told once per
    /// account, quota and period.
    QuotaReached {
        /// `daily` or `monthly`.
        period: QuotaPeriodKind,
        /// 80 or 100.
        percent: u8,
        /// Transactions used in the period.
        used: u64,
        /// The quota, in transactions.
        limit: u64,
    },
    /// `client_expiring`: the client expires within [`EXPIRY_NOTICE`]; told once per
    /// expiry time.
    ClientExpiring {
        /// When it expires.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// `account_expiring`: the account's plan expires within [`EXPIRY_NOTICE`]; told once
    /// per expiry time.
    AccountExpiring {
        /// When it expires.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// `credential_regenerated`: the client's key or secret was replaced.
    CredentialRegenerated {
        /// Who replaced it: a client id, or `operator`.
        by: String,
    },
    /// `client_deactivated`: the client's status went from active to inactive.
    ClientDeactivated {
        /// Who deactivated it: a client id, or `operator`.
        by: String,
    },
    /// `account_deactivated`: the account's status went from active to inactive.
    AccountDeactivated,
}

impl EventKind {
    /// The wire name (the `type` field).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::QuotaReached { .. } => "quota_reached",
            EventKind::ClientExpiring { .. } => "client_expiring",
            EventKind::AccountExpiring { .. } => "account_expiring",
            EventKind::CredentialRegenerated { .. } => "credential_regenerated",
            EventKind::ClientDeactivated { .. } => "client_deactivated",
            EventKind::AccountDeactivated => "account_deactivated",
        }
    }
}

/// Where events go. [`emit`](EventSink::emit) is called where the event is seen, the
/// request path included: it must return at once (queue, never wait).
///
/// A closure `Fn(Event)` is a sink.
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event.
    fn emit(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync + 'static> EventSink for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_flat_json_object_with_its_type() {
        let at = time::macros::datetime!(2026-06-01 12:00 UTC);
        let event = Event::new(
            at,
            AccountId::new("acme").unwrap(),
            None,
            EventKind::QuotaReached {
                period: QuotaPeriodKind::Daily,
                percent: 80,
                used: 80,
                limit: 100,
            },
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "quota_reached");
        assert_eq!(json["period"], "daily");
        assert_eq!(json["account_id"], "acme");
        assert_eq!(json["at"], "2026-06-01T12:00:00Z");
        assert!(json.get("client_id").is_none());
        assert!(json["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(event.kind.name(), "quota_reached");
    }
}
