//! The error types: [`ConfigError`] for anything wrong when clients, rules or the layer are
//! set up, [`StoreError`] for a store that cannot answer, and [`Rejection`] for a request the
//! layer refuses.
//!
//! ```
//! use gis_auth::restrict::OriginPattern;
//!
//! let err = OriginPattern::parse("https://*.").unwrap_err();
//! assert!(err.to_string().contains("https://*."));
//! ```

use std::fmt;
use std::sync::Arc;

use crate::policy::{Decision, QuotaState};

use http::StatusCode;

/// Something is wrong with a configuration value: a client, an account, a rule or the layer.
///
/// Every message names the offending value so that the operator can find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An allowed-origin pattern could not be parsed.
    #[error("invalid origin pattern `{pattern}`: {reason}")]
    InvalidOrigin {
        /// The pattern as given.
        pattern: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An IP rule could not be parsed.
    #[error("invalid IP rule `{rule}`: {reason}")]
    InvalidIpRule {
        /// The rule as given.
        rule: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A role name is not acceptable.
    #[error("invalid role name `{role}`: {reason}")]
    InvalidRole {
        /// The role as given.
        role: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A client was granted a role its account does not hold.
    #[error(
        "client `{client}` cannot be granted role `{role}`: account `{account}` does not hold it"
    )]
    RoleNotHeld {
        /// The client being configured.
        client: String,
        /// The role it asked for.
        role: String,
        /// The account that lacks it.
        account: String,
    },
    /// Allowed origins were given to a NativeConfidential client.
    #[error(
        "client `{client}` is NativeConfidential: allowed origins apply to JavaScript clients only"
    )]
    OriginsOnConfidentialClient {
        /// The client being configured.
        client: String,
    },
    /// A credential does not have the crate's key format, or is of the wrong kind.
    #[error("invalid {field} for client `{client}`: {reason}")]
    InvalidCredential {
        /// The client being configured.
        client: String,
        /// Which credential (`api_key` or `client_secret`).
        field: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An identifier or name is empty, too long or has characters it may not have.
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A route pattern in the route table could not be parsed.
    #[error("invalid route pattern `{pattern}`: {reason}")]
    InvalidRoute {
        /// The pattern as given.
        pattern: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The operating system's random source failed while making a key or a token.
    #[error("the operating system's random source failed")]
    RandomSource,
}

/// A client store could not answer: the layer turns this into `503` (fail closed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("client store unavailable: {message}")]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// A store error with a message for the operator's logs (never shown to callers).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Why a request was refused.
///
/// The variants group into the statuses the layer answers with; see [`Rejection::status`].
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
    /// The account's daily quota is used up (429).
    QuotaExceeded,
    /// The client sends requests faster than its rate limit (429).
    RateLimited,
    /// The client store failed or did not answer in time (503).
    StoreUnavailable,
}

impl RejectionKind {
    /// Every kind, in declaration order (`kind as usize` indexes it): keep it beside the
    /// enum, one entry per variant.
    pub(crate) const ALL: [RejectionKind; 20] = {
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
            StoreUnavailable,
        ]
    };

    /// The HTTP status for this kind.
    pub fn status(self) -> StatusCode {
        use RejectionKind::*;
        match self {
            MultipleCredentials | EmptyCredential | MalformedHeader | CredentialTooLong => {
                StatusCode::BAD_REQUEST
            }
            MissingCredential | MalformedCredential | UnknownCredential | Expired | Revoked
            | Inactive => StatusCode::UNAUTHORIZED,
            InsufficientRole | NotPluginApi | OriginNotAllowed | IpNotAllowed | RouteNotAllowed
            | PrivilegeMissing | ItemNotGranted => StatusCode::FORBIDDEN,
            QuotaExceeded | RateLimited => StatusCode::TOO_MANY_REQUESTS,
            StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `error` code of the JSON body (and of the RFC 6750 challenge where one is sent).
    pub fn error_code(self) -> &'static str {
        use RejectionKind::*;
        match self {
            MissingCredential => "unauthorized",
            MultipleCredentials | EmptyCredential | MalformedHeader | CredentialTooLong => {
                "invalid_request"
            }
            MalformedCredential | UnknownCredential | Expired | Revoked | Inactive => {
                "invalid_token"
            }
            InsufficientRole | NotPluginApi | PrivilegeMissing | ItemNotGranted => {
                "insufficient_scope"
            }
            OriginNotAllowed | IpNotAllowed | RouteNotAllowed => "access_denied",
            QuotaExceeded => "quota_exceeded",
            RateLimited => "rate_limited",
            StoreUnavailable => "temporarily_unavailable",
        }
    }

    /// A human-readable description that names no client, key or token.
    pub fn description(self) -> &'static str {
        use RejectionKind::*;
        match self {
            MissingCredential => {
                "this API requires an API key (apikey query parameter) or a bearer token"
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
            StoreUnavailable => "the authorization service is temporarily unavailable",
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

/// A refused request: what the layer answers instead of calling the wrapped service.
///
/// It is placed in the response's extensions so logging layers can see why a request was
/// refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    vary_origin: bool,
    retry_after: Option<u64>,
    quota: Option<QuotaState>,
    decision: Option<Arc<Decision>>,
}

impl Rejection {
    /// A rejection of this kind.
    pub fn new(kind: RejectionKind) -> Self {
        Self {
            kind,
            vary_origin: false,
            retry_after: None,
            quota: None,
            decision: None,
        }
    }

    pub(crate) fn varying_on_origin(mut self, yes: bool) -> Self {
        self.vary_origin = yes;
        self
    }

    pub(crate) fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub(crate) fn with_quota(mut self, quota: QuotaState) -> Self {
        self.quota = Some(quota);
        self
    }

    pub(crate) fn with_decision(mut self, decision: Arc<Decision>) -> Self {
        self.decision = Some(decision);
        self
    }

    /// Seconds until a retry may succeed (the `Retry-After` header), for 429s.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The account's quota when the request was refused, if it has one.
    pub fn quota(&self) -> Option<&QuotaState> {
        self.quota.as_ref()
    }

    /// The policy decision that refused the request, when a client was identified: the rule
    /// that decided and why (the same [`Decision`] that `Policy::explain` gives).
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_deref()
    }

    /// Why the request was refused.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The `error` code.
    pub fn error_code(&self) -> &'static str {
        self.kind.error_code()
    }

    /// The `error_description`.
    pub fn description(&self) -> &'static str {
        self.kind.description()
    }

    /// Whether the outcome depended on the `Origin` or `Referer` header (the response then
    /// carries `Vary: Origin`).
    pub fn varies_on_origin(&self) -> bool {
        self.vary_origin
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_code(), self.description())
    }
}

impl std::error::Error for Rejection {}

impl From<RejectionKind> for Rejection {
    fn from(kind: RejectionKind) -> Self {
        Self::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_rfc_6750() {
        assert_eq!(
            RejectionKind::MissingCredential.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            RejectionKind::MultipleCredentials.error_code(),
            "invalid_request"
        );
        assert_eq!(
            RejectionKind::UnknownCredential.error_code(),
            "invalid_token"
        );
        assert_eq!(
            RejectionKind::NotPluginApi.error_code(),
            "insufficient_scope"
        );
        assert_eq!(RejectionKind::IpNotAllowed.error_code(), "access_denied");
        assert_eq!(
            RejectionKind::StoreUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn malformed_and_unknown_credentials_share_a_code() {
        assert_eq!(
            RejectionKind::MalformedCredential.error_code(),
            RejectionKind::UnknownCredential.error_code()
        );
    }
}
