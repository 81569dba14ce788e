//! The error types: [`ConfigError`] for anything wrong when clients, rules or the layer are
//! set up, and [`BackendError`] for a store, counter, limiter or verifier that cannot
//! answer. A refused request is a [`Rejection`](crate::Rejection), made where responses
//! are made.
//!
//! ```
//! use gis_auth::restrict::OriginPattern;
//!
//! let err = OriginPattern::parse("https://*.").unwrap_err();
//! assert!(err.to_string().contains("https://*."));
//! ```

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
    /// A client holds, or was to be granted, an item outside its account's item ceiling
    /// (the plan's `items`).
    #[error(
        "client `{client}` cannot be granted item `{item}`: it is outside the items of account \
         `{account}` (its plan's `items`)"
    )]
    ItemNotInPlan {
        /// The client being configured.
        client: String,
        /// The item it was to be granted.
        item: String,
        /// The account whose plan does not admit it.
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

/// A backend could not answer: a client store, a usage counter, a rate limiter or a token
/// verifier. The layer and the token endpoint turn this into `503` (fail closed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("backend unavailable: {message}")]
pub struct BackendError {
    message: String,
}

impl BackendError {
    /// A backend error with a message for the operator's logs (never shown to callers).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}
