//! The bodies of the admin API: what it answers is serialised from these types, and the
//! OpenAPI document is generated from them, so the two cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::client::{ClientDocument, ClientKind, GrantDocument, RateLimit, Status};

/// A client as the admin API shows it: the clients file's fields and its ETag.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientView {
    /// The client's settings (`roles` always explicit).
    #[serde(flatten)]
    pub client: ClientDocument,
    /// The ETag of this representation (also the `ETag` header).
    pub etag: String,
}

/// A client just created or regenerated, with its credential: shown this once, never
/// again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedClientView {
    /// The client.
    #[serde(flatten)]
    pub view: ClientView,
    /// A JavaScript client's API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// A NativeConfidential client's id, for the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A NativeConfidential client's secret, for the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// `GET /account/clients`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientList {
    /// The account's clients, by id.
    pub clients: Vec<ClientView>,
}

/// `POST /account/clients`: `name` is required; everything else has a default (`kind`
/// JavaScript, `roles` all of the account's, `status` active, no restrictions).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// The id; generated when absent.
    pub id: Option<String>,
    /// A display name.
    pub name: String,
    /// `JavaScript` (default) or `NativeConfidential`.
    pub kind: Option<ClientKind>,
    /// Roles, at most the account's; absent or null is all of them, as they change.
    pub roles: Option<Vec<String>>,
    /// `active` (default) or `inactive`.
    pub status: Option<Status>,
    /// Origin patterns (`https://maps.example.com`, `https://*.example.com`); JavaScript
    /// clients only.
    pub allowed_origins: Option<Vec<String>>,
    /// Whether requests with neither `Origin` nor `Referer` pass the origin rules.
    pub allow_missing_origin: Option<bool>,
    /// IP rules (`203.0.113.7`, `203.0.113.*`, `203.0.113.0/24`, `2001:db8::/32`).
    pub allowed_ips: Option<Vec<String>>,
    /// When the client stops working (RFC 3339).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    /// The APIs the client is limited to (`Geocoder`, `WorldStreets`, …).
    pub privileges: Option<Vec<String>>,
    /// Grants on items and datasets.
    pub grants: Option<Vec<GrantDocument>>,
    /// A request-rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Restrictions to run report-only (`origins`, `ips`, `privileges`, `grants`, `quota`).
    pub shadow: Option<Vec<String>>,
}

/// `PATCH /account/clients/{id}`: the fields present replace the client's; `null` clears
/// `roles` (back to all of the account's), `expires_at`, `privileges` and `rate_limit`.
/// `id`, `account` and `kind` may be sent back unchanged, never changed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    /// A display name.
    pub name: Option<String>,
    /// Roles, at most the account's.
    pub roles: Option<Vec<String>>,
    /// `active` or `inactive`: an inactive client is refused on its next request.
    pub status: Option<Status>,
    /// Origin patterns.
    pub allowed_origins: Option<Vec<String>>,
    /// Whether requests with neither `Origin` nor `Referer` pass the origin rules.
    pub allow_missing_origin: Option<bool>,
    /// IP rules.
    pub allowed_ips: Option<Vec<String>>,
    /// When the client stops working (RFC 3339).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    /// The APIs the client is limited to.
    pub privileges: Option<Vec<String>>,
    /// Grants on items and datasets.
    pub grants: Option<Vec<GrantDocument>>,
    /// A request-rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Restrictions to run report-only.
    pub shadow: Option<Vec<String>>,
}

/// `POST /account/clients/{id}/regenerate` (the body is optional).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Regenerate {
    /// How long the current credential keeps working (at most 30 days); none by default.
    pub grace_seconds: Option<u64>,
}

/// `GET /account/profile`.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// `PATCH /account/profile`: name and contact fields only (`null` clears a contact
/// field); roles, quota and status are not self-service.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// A display name.
    pub name: Option<String>,
    /// A contact person.
    pub contact_name: Option<String>,
    /// A contact e-mail address.
    pub contact_email: Option<String>,
    /// A contact telephone number.
    pub contact_phone: Option<String>,
}

/// `GET /account/quota`: transactions as numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
}

/// `GET /account/usage`.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    pub days: Vec<UsageDay>,
}

/// One client's usage on one UTC day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageDay {
    /// The day (YYYY-MM-DD).
    #[schema(format = Date)]
    pub date: String,
    /// The client.
    pub client_id: String,
    /// Authorised requests.
    pub requests: u64,
    /// Their cost in transactions.
    pub transactions: f64,
    /// Refused requests by reason.
    pub refusals: BTreeMap<String, u64>,
    /// Requests a report-only restriction would have refused, by rule.
    pub shadowed: BTreeMap<String, u64>,
}

/// Every refusal's body.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
