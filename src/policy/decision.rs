//! The outcome of a decision: the [`Decision`] (allowed, or refused by a [`Rule`]), the
//! [`Finding`] each rule makes, and what report-only restrictions would have refused.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests,
//!     KeyDigest, Role, RoleSet};
//! use gis_auth::policy::{Api, Policy, RequestFacts, Rule, RouteTable};
//! use http::Method;
//!
//! let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::EVALUATOR]))?;
//! let web = Client::build(ClientId::new("web")?, &ClientSpec::javascript("Web"), &acme,
//!     CredentialDigests::new(KeyDigest::of("…")))?;
//! let policy = Policy::new(RouteTable::new()
//!     .route(Method::GET, "/elevation", Api::new("Elevation", [Role::EVALUATOR]).plugin(true))?
//!     .route(Method::GET, "/geocode", Api::new("Geocoder", [Role::EVALUATOR]))?);
//! let now = time::OffsetDateTime::now_utc();
//! assert!(policy.explain(&web, &acme, &RequestFacts::new(&Method::GET, "/elevation", now)).is_allowed());
//! let refused = policy.explain(&web, &acme, &RequestFacts::new(&Method::GET, "/geocode", now));
//! assert_eq!(refused.rule(), Some(Rule::Kind));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use super::quota::QuotaState;
use crate::client::{Restriction, RoleSet};
use crate::rule::{RejectionKind, Rule};

impl Rule {
    /// The restriction this rule is, when it can run report-only.
    pub fn restriction(self) -> Option<Restriction> {
        match self {
            Rule::Origins => Some(Restriction::Origins),
            Rule::Ips => Some(Restriction::Ips),
            Rule::Privileges => Some(Restriction::Privileges),
            Rule::Grants => Some(Restriction::Grants),
            Rule::Quota => Some(Restriction::Quota),
            _ => None,
        }
    }
}

/// What one rule found: the refusal it makes (or would make) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// The refusal.
    pub kind: RejectionKind,
    /// Why, for people. Names the API, item or restriction involved; never a credential.
    pub reason: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.reason)
    }
}

/// A decision on a request: allowed or refused by a rule, with what report-only
/// restrictions would have refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// The refusal, or `None` when the request is allowed.
    pub denied: Option<Finding>,
    /// What restrictions running report-only would have refused; the request went on.
    pub shadowed: Vec<Finding>,
    /// The API the request is for, when the route names one.
    pub api: Option<Arc<str>>,
    /// The roles in force (client, account and token scope intersected).
    pub roles: RoleSet,
    /// The item the request is for, on routes that declare one.
    pub item: Option<String>,
    /// Whether the outcome depended on `Origin`/`Referer` (answer with `Vary: Origin`).
    pub vary_origin: bool,
    /// The account's quota as of the request (of its daily and monthly quotas, the one
    /// reported: see [`QuotaState`]), when the account has one and the request's usage was
    /// known (see [`QuotaFacts`](super::QuotaFacts)).
    pub quota: Option<QuotaState>,
}

impl Decision {
    pub(crate) fn allowed() -> Self {
        Decision {
            denied: None,
            shadowed: Vec::new(),
            api: None,
            roles: RoleSet::new(),
            item: None,
            vary_origin: false,
            quota: None,
        }
    }

    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.denied.is_none()
    }

    /// The rule that refused it.
    pub fn rule(&self) -> Option<Rule> {
        self.denied.as_ref().map(|f| f.rule)
    }

    /// Why: the refusal's reason, or a summary of what allowed it.
    pub fn reason(&self) -> String {
        match &self.denied {
            Some(f) => f.reason.clone(),
            None => match &self.api {
                Some(api) => format!("every rule allows this client to call {api}"),
                None => "the route is public".to_owned(),
            },
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.denied {
            Some(finding) => write!(f, "deny by {finding}")?,
            None => write!(f, "allow: {}", self.reason())?,
        }
        for s in &self.shadowed {
            write!(f, "; report-only {s}")?;
        }
        Ok(())
    }
}
