//! The route table (which API a request is for and who may call it) and the one decision
//! function that the layer, and anything that explains a decision, calls.
//!
//! ```
//! use gis_auth::client::Role;
//! use gis_auth::policy::{Api, RouteTable};
//! use http::Method;
//!
//! let routes = RouteTable::new()
//!     .route(Method::GET, "/tiles/{z}/{x}/{y}.png",
//!         Api::new("WorldStreets", [Role::EVALUATOR, Role::SUBSCRIBER]).plugin(true))?
//!     .route(Method::GET, "/account/profile", Api::new("Profile", [Role::USER]))?
//!     .public(Method::GET, "/health")?;
//! assert_eq!(routes.routes().len(), 3);
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

mod decision;
mod facts;
mod lint;
mod quota;
mod route;
mod rules;
mod standard;
mod table;

use crate::client::{Account, Client};
use crate::rule::RejectionKind;

pub use crate::rule::Rule;
pub use decision::{Decision, Finding};
pub use facts::{OriginEvidence, RequestFacts, TileUrlScope};
pub use lint::{LintContext, LintWarning, Trap, lint, lint_account};
pub use quota::{
    QuotaFacts, QuotaPeriod, QuotaState, TRANSACTION, daily_limit, next_utc_midnight,
    next_utc_month, quota_admits, transactions,
};
pub use route::PathPattern;
pub use rules::TokenRequestFacts;
pub(crate) use rules::{RateScope, decide, decide_quota, rate_limit_finding};
pub use standard::{
    ACCOUNT_APIS, MAX_ELEVATION_POINTS, TILE_COST, WMS_OPEN_LAYERS, elevation_cost,
    elevation_points_cost, standard_routes, wms_api,
};
pub use table::{Api, Cost, ErrorFormat, ItemSource, Route, RouteAccess, RouteTable, Unpriceable};

/// The access policy: the route table and the rules, as one pure function of a client and
/// a request. The layer decides with exactly this, so what [`Policy::explain`] says is what
/// is enforced.
///
/// ```
/// use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests,
///     KeyDigest, Role, RoleSet};
/// use gis_auth::policy::{Api, OriginEvidence, Policy, RequestFacts, Rule, RouteTable};
/// use http::Method;
///
/// let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::EVALUATOR]))?;
/// let web = Client::build(ClientId::new("web")?,
///     &ClientSpec::javascript("Web").allowed_origins(["https://*.acme.test"]), &acme,
///     CredentialDigests::new(KeyDigest::of("…")))?;
/// let policy = Policy::new(RouteTable::new().route(Method::GET, "/tiles/{z}/{x}/{y}.png",
///     Api::new("WorldStreets", [Role::EVALUATOR]).plugin(true))?);
/// let now = time::OffsetDateTime::now_utc();
/// let facts = RequestFacts {
///     origin: OriginEvidence::Origin("https://evil.test"),
///     ..RequestFacts::new(&Method::GET, "/tiles/1/2/3.png", now)
/// };
/// let decision = policy.explain(&web, &acme, &facts);
/// assert_eq!(decision.rule(), Some(Rule::Origins));
/// assert!(decision.to_string().starts_with("deny by origins"));
/// # Ok::<(), gis_auth::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Policy {
    routes: RouteTable,
}

impl Policy {
    /// The policy of a route table.
    pub fn new(routes: RouteTable) -> Self {
        Self { routes }
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// Decides a request by `client` of `account`, without any I/O: the route, status, the
    /// account's evaluation period, expiry, origins, IP rules, kind, roles, privileges, the
    /// account's item ceiling, grants, and the daily and monthly quotas when `facts.quota`
    /// is given (the layer decides the quotas with the same rule, on its usage counter's
    /// answer). The request-rate limits (the client's and the account's) are stateful and
    /// not part of it; the layer refuses over them with the policy's rate-limit finding.
    pub fn explain(
        &self,
        client: &Client,
        account: &Account,
        facts: &RequestFacts<'_>,
    ) -> Decision {
        match self.routes.lookup(facts.method, facts.path) {
            None => Decision {
                denied: Some(Finding {
                    rule: Rule::Route,
                    kind: RejectionKind::RouteNotAllowed,
                    reason: format!("{} {} is not in the route table", facts.method, facts.path),
                }),
                ..Decision::allowed()
            },
            Some(route) => match route.access() {
                RouteAccess::Public => Decision::allowed(),
                RouteAccess::Api(api) => {
                    rules::decide(client, account, route.pattern(), api, facts)
                }
            },
        }
    }

    /// Decides whether `client` of `account` may be issued an access token at the token
    /// endpoint: status, account status, the account's evaluation period, expiry, kind and
    /// IP rules (report-only when the
    /// client runs them so), the same rules its requests then meet. The token endpoint
    /// issues with exactly this; the secret itself is checked before, by the endpoint.
    pub fn explain_token_request(
        &self,
        client: &Client,
        account: &Account,
        facts: &TokenRequestFacts,
    ) -> Decision {
        rules::decide_token_request(client, account, facts)
    }

    /// Decides whether `client` of `account` may be used at all at `now`: its status, its
    /// account's status and its expiry, the first rules every request meets whatever its
    /// route and origin. The introspection endpoint calls a verified token active with
    /// exactly this. The roles in force are the client's ∩ the account's.
    pub fn explain_standing(
        &self,
        client: &Client,
        account: &Account,
        now: time::OffsetDateTime,
    ) -> Decision {
        rules::decide_standing(client, account, now)
    }
}
