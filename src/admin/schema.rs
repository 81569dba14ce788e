//! The bodies of the admin API that only it has: what it answers is serialised from these
//! types and what it reads is parsed with them, and the OpenAPI document is generated from
//! them, so the two cannot drift apart. The client and account documents are in
//! [`document`](crate::document).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::client::{ClientKind, Status};
use crate::document::{AuditEntry, ClientView, FieldError, RateLimitDocument};

/// `GET /account/clients`: one page of the account's clients.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[non_exhaustive]
pub struct ClientList {
    /// The account's clients, by id.
    pub clients: Vec<ClientView>,
    /// The `cursor` of the next page; `null` on the last.
    pub next: Option<String>,
}

/// `POST /account/clients/{id}/regenerate` (the body is optional).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Regenerate {
    /// How long the current credential keeps working (at most 30 days); none by default.
    #[serde(default)]
    #[schema(maximum = 2592000)]
    pub grace_seconds: Option<u64>,
}

impl Regenerate {
    /// The longest grace period, in seconds (30 days).
    pub const MAX_GRACE_SECONDS: u64 = 30 * 24 * 3600;

    /// The grace period, if any.
    pub fn grace(&self) -> Result<Option<time::Duration>, FieldError> {
        match self.grace_seconds {
            None | Some(0) => Ok(None),
            Some(s) if s > Self::MAX_GRACE_SECONDS => Err(FieldError::new(
                "grace_seconds",
                format!("at most {} (30 days)", Self::MAX_GRACE_SECONDS),
            )),
            Some(s) => Ok(Some(time::Duration::seconds(s.cast_signed()))),
        }
    }
}

/// `GET /account/profile`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[non_exhaustive]
pub struct Profile {
    /// The account's id.
    pub account_id: String,
    /// Its display name.
    pub name: String,
    /// The roles it holds (its plan).
    pub roles: Vec<String>,
    /// `active` or `inactive`.
    pub status: Status,
    /// Transactions per UTC day; null is unlimited.
    pub daily_quota: Option<u64>,
    /// Transactions per UTC calendar month; null is unlimited (read-only: the plan's).
    pub monthly_quota: Option<u64>,
    /// The rate limit all the account's clients share; null is none (read-only).
    pub rate_limit: Option<RateLimitDocument>,
    /// The most clients the account may hold; null is unlimited (read-only).
    pub max_clients: Option<u32>,
    /// The item ids (or `prefix*` patterns) its clients may be granted; null is any
    /// (read-only).
    pub items: Option<Vec<String>>,
    /// When the account's evaluation period ends (RFC 3339); null is never (read-only).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// A contact person.
    pub contact_name: Option<String>,
    /// A contact e-mail address.
    pub contact_email: Option<String>,
    /// A contact telephone number.
    pub contact_phone: Option<String>,
    /// The client the caller authenticated as.
    pub client_id: String,
    /// Its kind.
    pub client_kind: ClientKind,
    /// `bearer_token` (the admin API takes nothing else).
    pub authenticated_with: String,
}

/// `GET /account/quota`: transactions as numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[non_exhaustive]
pub struct Quota {
    /// The daily quota; null when the account has none.
    pub limit: Option<u64>,
    /// Used today (UTC).
    pub used: f64,
    /// Whole transactions left today; null when the account has no quota.
    pub remaining: Option<u64>,
    /// When the day ends (RFC 3339).
    #[schema(format = DateTime)]
    pub reset: String,
    /// The monthly quota (per UTC calendar month); null when the account has none.
    pub monthly: Option<MonthlyQuota>,
}

/// `GET /account/quota`'s `monthly`: the account's quota of this UTC calendar month.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[non_exhaustive]
pub struct MonthlyQuota {
    /// The monthly quota, in transactions.
    pub limit: u64,
    /// Used this month (UTC).
    pub used: f64,
    /// Whole transactions left this month.
    pub remaining: u64,
    /// When the month ends: 00:00 UTC on the first of the next (RFC 3339).
    #[schema(format = DateTime)]
    pub reset: String,
}

/// `GET /account/audit`: the account's audit entries of a range, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[non_exhaustive]
pub struct AuditLog {
    /// The account.
    pub account_id: String,
    /// The range's first instant (RFC 3339), included.
    #[schema(format = DateTime)]
    pub from: String,
    /// The range's end (RFC 3339), excluded.
    #[schema(format = DateTime)]
    pub to: String,
    /// At most `limit` entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// Whether the range holds more entries than `limit`: ask again with `from` set to the
    /// last entry's `at` (entries at that very instant are then listed again).
    pub more: bool,
}

/// `GET /account/usage`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[non_exhaustive]
pub struct Usage {
    /// The account.
    pub account_id: String,
    /// The first day (YYYY-MM-DD).
    #[schema(format = Date)]
    pub from: String,
    /// The last day (YYYY-MM-DD).
    #[schema(format = Date)]
    pub to: String,
    /// One row per client per day with any traffic.
    pub days: Vec<crate::document::UsageDay>,
}

/// Every refusal's body.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[non_exhaustive]
pub struct ErrorBody {
    /// A machine-readable code (`invalid_request`, `not_found`, `conflict`,
    /// `precondition_failed`, `insufficient_scope`, `invalid_token`, …).
    pub error: String,
    /// What is wrong, for people.
    pub error_description: String,
    /// The field at fault, for invalid input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `POST /account/tile-urls`: what to sign.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NewTileUrl {
    /// The id of a client of the caller's account, whose requests the URL makes.
    pub client: String,
    /// A tile API of the server, e.g. `WorldStreets`.
    pub api: String,
    /// How long the URL works, before rounding up to the server's expiry bucket.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400, default = 3600)]
    pub ttl_seconds: Option<u64>,
    /// The lowest zoom level covered.
    #[serde(default)]
    #[schema(maximum = 30)]
    pub min_zoom: Option<u32>,
    /// The highest zoom level covered.
    #[serde(default)]
    #[schema(maximum = 30)]
    pub max_zoom: Option<u32>,
    /// The items covered, for an API that reads one.
    #[serde(default)]
    pub items: Option<Vec<String>>,
}

/// `POST /account/tile-urls`: a signed URL template.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[non_exhaustive]
pub struct TileUrl {
    /// The URL, starting with `/`, with the literal `{z}`, `{x}` and `{y}` to fill in.
    pub template: String,
    /// When it stops working (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: time::OffsetDateTime,
}
