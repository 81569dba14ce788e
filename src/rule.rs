//! The names of outcomes, at the base of the crate: [`RejectionKind`] (why a request is
//! refused, and the status and error code that says so) and [`Rule`] (which rule of the
//! policy decided). Plain enums with no dependencies, so every floor above can name them.
//!
//! ```
//! use gis_auth::{RejectionKind, policy::Rule};
//!
//! assert_eq!(RejectionKind::QuotaExceeded.status(), 429);
//! assert_eq!(Rule::RateLimit.as_str(), "rate_limit");
//! ```

use std::fmt;

use http::StatusCode;

/// Why a request was refused.
///
/// The variants group into the statuses the layer answers with; see [`Rejection::status`](crate::Rejection::status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No credential at all (401 with a bare challenge).
    MissingCredential,
    /// Credentials in more than one place (400 `invalid_request`).
    MultipleCredentials,
    /// A credential with an empty value (400 `invalid_request`).
    EmptyCredential,
    /// An `Authorization: Bearer` header that is not `Bearer <token>` (400 `invalid_request`).
    MalformedHeader,
    /// A key or token longer than the configured limit (400 `invalid_request`).
    CredentialTooLong,
    /// A key or token that is not in the expected format or fails its checksum (401).
    MalformedCredential,
    /// A well-formed key or token that does not belong to any client (401).
    UnknownCredential,
    /// The client or its credential has expired (401).
    Expired,
    /// The credential was replaced or revoked (401).
    Revoked,
    /// The client or its account is inactive (401).
    Inactive,
    /// The client's effective roles do not include one the API requires (403).
    InsufficientRole,
    /// A JavaScript client called an API that is not a plugin API (403).
    NotPluginApi,
    /// The request's origin is not among the client's allowed origins (403).
    OriginNotAllowed,
    /// The caller's IP address is not among the client's allowed addresses (403).
    IpNotAllowed,
    /// The method and path are not in the route table (403).
    RouteNotAllowed,
    /// The client is limited to other APIs by its privileges (403).
    PrivilegeMissing,
    /// The request is for an item the client holds no grant for, or not for this action
    /// (403).
    ItemNotGranted,
    /// The account's daily or monthly quota is used up (429).
    QuotaExceeded,
    /// The client sends requests faster than its rate limit (429).
    RateLimited,
    /// The client store failed or did not answer in time (503).
    Unavailable,
    /// A request its API cannot price within the API's limits, such as more elevation
    /// points than it serves (400 `invalid_request`); it is charged nothing.
    Unpriceable,
    /// The account's evaluation period is over: its plan's `expires_at` has passed (401).
    /// The response's description names the instant.
    AccountExpired,
    /// The account's clients together send requests faster than the account's rate limit
    /// (429).
    AccountRateLimited,
    /// A signed tile URL used outside what it was signed for: another API, a zoom level out
    /// of its range, or an item it does not name (403 `insufficient_scope`).
    OutsideSignedScope,
}

impl RejectionKind {
    /// Every kind, in declaration order (`kind as usize` indexes it): keep it beside the
    /// enum, one entry per variant.
    pub(crate) const ALL: [RejectionKind; 24] = {
        use RejectionKind::*;
        [
            MissingCredential,
            MultipleCredentials,
            EmptyCredential,
            MalformedHeader,
            CredentialTooLong,
            MalformedCredential,
            UnknownCredential,
            Expired,
            Revoked,
            Inactive,
            InsufficientRole,
            NotPluginApi,
            OriginNotAllowed,
            IpNotAllowed,
            RouteNotAllowed,
            PrivilegeMissing,
            ItemNotGranted,
            QuotaExceeded,
            RateLimited,
            Unavailable,
            Unpriceable,
            AccountExpired,
            AccountRateLimited,
            OutsideSignedScope,
        ]
    };

    /// The HTTP status for this kind.
    pub fn status(self) -> StatusCode {
        use RejectionKind::*;
        match self {
            MultipleCredentials | EmptyCredential | MalformedHeader | CredentialTooLong
            | Unpriceable => StatusCode::BAD_REQUEST,
            MissingCredential | MalformedCredential | UnknownCredential | Expired | Revoked
            | Inactive | AccountExpired => StatusCode::UNAUTHORIZED,
            InsufficientRole | NotPluginApi | OriginNotAllowed | IpNotAllowed | RouteNotAllowed
            | PrivilegeMissing | ItemNotGranted | OutsideSignedScope => StatusCode::FORBIDDEN,
            QuotaExceeded | RateLimited | AccountRateLimited => StatusCode::TOO_MANY_REQUESTS,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `error` code of the JSON body (and of the RFC 6750 challenge where one is sent).
    pub fn error_code(self) -> &'static str {
        use RejectionKind::*;
        match self {
            MissingCredential => "unauthorized",
            MultipleCredentials | EmptyCredential | MalformedHeader | CredentialTooLong
            | Unpriceable => "invalid_request",
            MalformedCredential | UnknownCredential | Expired | Revoked | Inactive
            | AccountExpired => "invalid_token",
            InsufficientRole | NotPluginApi | PrivilegeMissing | ItemNotGranted
            | OutsideSignedScope => "insufficient_scope",
            OriginNotAllowed | IpNotAllowed | RouteNotAllowed => "access_denied",
            QuotaExceeded => "quota_exceeded",
            RateLimited | AccountRateLimited => "rate_limited",
            Unavailable => "temporarily_unavailable",
        }
    }

    /// A human-readable description that names no client, key or token.
    pub fn description(self) -> &'static str {
        use RejectionKind::*;
        match self {
            MissingCredential => {
                "this API requires an API key (apikey query parameter or X-Api-Key header) or a bearer token"
            }
            MultipleCredentials => "the request carries more than one credential",
            EmptyCredential => "the credential is empty",
            MalformedHeader => "the Authorization header must be `Bearer <token>`",
            CredentialTooLong => "the credential is longer than the size limit",
            MalformedCredential => "the credential is malformed",
            UnknownCredential => "the credential is not valid",
            Expired => "the credential has expired",
            Revoked => "the credential has been replaced or revoked",
            Inactive => "the client is inactive",
            InsufficientRole => "the client's roles do not allow this API",
            NotPluginApi => "JavaScript API keys may call plugin APIs only",
            OriginNotAllowed => "the request's origin is not allowed for this client",
            IpNotAllowed => "the caller's IP address is not allowed for this client",
            RouteNotAllowed => "this method and path are not served",
            PrivilegeMissing => "the client's privileges do not include this API",
            ItemNotGranted => "the client holds no grant for this action on this item",
            QuotaExceeded => "the account's daily quota is used up; it resets at 00:00 UTC",
            RateLimited => "the client sends requests faster than its rate limit",
            Unavailable => "the authorization service is temporarily unavailable",
            Unpriceable => "the request asks for more than this API serves, or cannot be read",
            AccountExpired => "the account has expired",
            AccountRateLimited => {
                "the account's clients together send requests faster than its rate limit"
            }
            OutsideSignedScope => "the signed URL does not cover this API, zoom level or item",
        }
    }

    /// Whether the RFC 6750 challenge carries this kind's error code.
    pub(crate) fn in_challenge(self) -> bool {
        matches!(
            self.error_code(),
            "invalid_request" | "invalid_token" | "insufficient_scope"
        )
    }
}

/// The rule that decided a request, or that a report-only restriction would have decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The route table: the method and path are not served.
    Route,
    /// The client's or account's status.
    Status,
    /// The client's expiry date.
    Expiry,
    /// The allowed origins.
    Origins,
    /// The IP rules.
    Ips,
    /// The client's kind (JavaScript clients reach plugin APIs only).
    Kind,
    /// The roles.
    Roles,
    /// The privileges.
    Privileges,
    /// The item grants.
    Grants,
    /// The account's daily quota.
    Quota,
    /// The client's request-rate limit.
    RateLimit,
    /// The end of the account's evaluation period (its plan's `expires_at`).
    AccountExpiry,
    /// The account's request-rate limit, shared by all its clients.
    AccountRateLimit,
    /// The account's item ceiling (its plan's `items`): a grant outside it does not grant.
    /// Never report-only.
    ItemCeiling,
    /// The scope of a signed tile URL: its API, zoom range and items. Never report-only.
    SignedScope,
}

impl Rule {
    /// The name, as in logs and usage statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Route => "route",
            Rule::Status => "status",
            Rule::Expiry => "expiry",
            Rule::Origins => "origins",
            Rule::Ips => "ips",
            Rule::Kind => "kind",
            Rule::Roles => "roles",
            Rule::Privileges => "privileges",
            Rule::Grants => "grants",
            Rule::Quota => "quota",
            Rule::RateLimit => "rate_limit",
            Rule::AccountExpiry => "account_expiry",
            Rule::AccountRateLimit => "account_rate_limit",
            Rule::ItemCeiling => "item_ceiling",
            Rule::SignedScope => "signed_scope",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
