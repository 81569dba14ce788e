//! [`Rejection`]: a refused request, as data. It carries the policy's
//! [`Decision`](crate::policy::Decision) when a client was identified, and is turned into a
//! response in one place (the layer's templates or a user's responder).
//!
//! ```
//! use gis_auth::{Rejection, RejectionKind};
//!
//! let rejection = Rejection::new(RejectionKind::OriginNotAllowed);
//! assert_eq!(rejection.status(), 403);
//! assert_eq!(rejection.error_code(), "access_denied");
//! ```

use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use time::OffsetDateTime;

use crate::client::ClientId;
use crate::policy::{Decision, ErrorFormat, Finding, QuotaPeriod, QuotaState};
use crate::rule::{RejectionKind, Rule};

/// A refused request: what the layer answers instead of calling the wrapped service.
///
/// It is placed in the response's extensions so logging layers can see why a request was
/// refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    vary_origin: bool,
    retry_after: Option<u64>,
    /// Boxed: only quota refusals carry it, and it would double the size of every other.
    quota: Option<Box<QuotaState>>,
    decision: Option<Arc<Decision>>,
    /// A description of this refusal in place of its kind's, where the deciding rule wrote
    /// one for the caller (an origin refusal, an account's expiry, a monthly quota). Never a
    /// credential.
    detail: Option<Arc<str>>,
    format: ErrorFormat,
    /// The API the refused request was for, when the route names one.
    api: Option<Arc<str>>,
    /// The client refused, when its credential identified it.
    client: Option<ClientId>,
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
            detail: None,
            format: ErrorFormat::Json,
            api: None,
            client: None,
        }
    }

    /// With this description in place of the kind's.
    pub(crate) fn with_description(mut self, description: impl Into<Arc<str>>) -> Self {
        self.detail = Some(description.into());
        self
    }

    /// Whether the description is this refusal's own rather than its kind's (the
    /// response is then rendered afresh).
    pub(crate) fn has_own_description(&self) -> bool {
        self.detail.is_some()
    }

    /// The same rejection, to be written in `format` (the route's API's
    /// [`refusal_format`](crate::policy::Api::refusal_format)).
    pub(crate) fn in_format(mut self, format: ErrorFormat) -> Self {
        self.format = format;
        self
    }

    /// How the refusal is written: JSON, or for the routes of an OGC service an OGC
    /// service exception report.
    pub fn error_format(&self) -> ErrorFormat {
        self.format
    }

    /// The rejection of a request for `api`.
    pub(crate) fn for_api(mut self, api: &Arc<str>) -> Self {
        self.api = Some(api.clone());
        self
    }

    /// The rejection of a request by `client`.
    pub(crate) fn of_client(mut self, client: &ClientId) -> Self {
        self.client = Some(client.clone());
        self
    }

    /// The API the request was for, when its route names one: for logging layers, which
    /// find the rejection in the response's extensions.
    pub fn api(&self) -> Option<&str> {
        self.api.as_deref()
    }

    /// The client refused, when its credential identified it (never the credential).
    pub fn client(&self) -> Option<&ClientId> {
        self.client.as_ref()
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
        self.quota = Some(Box::new(quota));
        self
    }

    pub(crate) fn with_decision(mut self, decision: Arc<Decision>) -> Self {
        self.decision = Some(decision);
        self
    }

    /// A refusal by the quota, to be retried when the quota resets: `Retry-After` counted
    /// from `now`. Other refusals are left as they are.
    pub(crate) fn retry_at_quota_reset(self, now: OffsetDateTime) -> Self {
        match self.quota.as_deref().map(|quota| quota.reset_seconds(now)) {
            Some(seconds) => self.with_retry_after(seconds),
            None => self,
        }
    }

    /// Seconds until a retry may succeed (the `Retry-After` header), for 429s.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The account's quota when the request was refused, if it has one.
    pub fn quota(&self) -> Option<&QuotaState> {
        self.quota.as_deref()
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

    /// The `error_description`: the kind's, or what the deciding rule wrote for the caller
    /// (an origin refusal names the refused origin, or says that the request carried
    /// neither `Origin` nor `Referer`; an account's expiry names the instant). Never a
    /// credential.
    pub fn description(&self) -> &str {
        self.detail
            .as_deref()
            .unwrap_or_else(|| self.kind.description())
    }

    /// Whether the outcome depended on the `Origin` or `Referer` header (the response then
    /// carries `Vary: Origin`).
    pub fn varies_on_origin(&self) -> bool {
        self.vary_origin
    }
}

/// A decision that refuses, as the rejection that says so: the rule that decided, and the
/// rejection carrying the decision.
#[derive(Debug)]
pub(crate) struct Denial {
    pub(crate) rule: Rule,
    pub(crate) rejection: Rejection,
}

impl Decision {
    /// The decision when it allows the request, or else its refusal: a rejection carrying
    /// the decision (and, for a refusal by the quota, the quota).
    pub(crate) fn allowed_or_denial(mut self) -> Result<Decision, Denial> {
        match self.denied.take() {
            None => Ok(self),
            Some(finding) => Err(self.deny(finding)),
        }
    }

    /// This decision, refusing the request with `finding`. The origin rule writes its reason
    /// for the caller (which origin, or that none was sent), so that reason is the
    /// refusal's description too.
    pub(crate) fn deny(mut self, finding: Finding) -> Denial {
        let rule = finding.rule;
        let mut rejection = Rejection::new(finding.kind).varying_on_origin(self.vary_origin);
        if rule == Rule::Origins {
            rejection = rejection.with_description(finding.reason.as_str());
        }
        if rule == Rule::Quota
            && let Some(quota) = self.quota
        {
            rejection = rejection.with_quota(quota);
            if quota.period == QuotaPeriod::Month {
                rejection = rejection.with_description(
                    "the account's monthly quota is used up; it resets at 00:00 UTC on the first of the month",
                );
            }
        }
        if finding.kind == RejectionKind::AccountExpired {
            rejection = rejection.with_description(finding.reason.as_str());
        }
        self.denied = Some(finding);
        Denial {
            rule,
            rejection: rejection.with_decision(Arc::new(self)),
        }
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
            RejectionKind::Unavailable.status(),
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
