//! The decision: given a client, its account and what is known of a request, allow or
//! refuse, and say which rule decided and why. Pure and synchronous; the layer, `explain`
//! and shadow mode all go through exactly this.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, Credentials,
//!     KeyDigest, Role, RoleSet};
//! use gis_auth::policy::{Api, Policy, RequestFacts, Rule, RouteTable};
//! use http::Method;
//!
//! let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::EVALUATOR]))?;
//! let web = Client::build(ClientId::new("web")?, &ClientSpec::javascript("Web"), &acme,
//!     Credentials::new(KeyDigest::of("…")))?;
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
use std::net::IpAddr;
use std::sync::Arc;

use http::header::{ORIGIN, REFERER};
use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

use super::table::{Api, ItemSource, Route, RouteAccess, RouteTable};
use crate::client::{Account, Action, Client, ClientKind, MAX_ITEM_ID_LEN, Restriction, RoleSet};
use crate::restrict::RequestOrigin;
use crate::rule::{RejectionKind, Rule};

/// What the request says about where it comes from, before any parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginEvidence<'a> {
    /// Neither `Origin` nor `Referer`.
    Missing,
    /// One `Origin` header.
    Origin(&'a str),
    /// No `Origin`, one `Referer`.
    Referer(&'a str),
    /// Something that can never match: two `Origin` (or `Referer`) headers, or a value that
    /// is not visible ASCII.
    Unusable,
}

impl<'a> OriginEvidence<'a> {
    /// Reads `Origin`, falling back to `Referer` only when there is no `Origin` at all.
    pub fn from_headers(headers: &'a HeaderMap) -> Self {
        match single(headers, ORIGIN) {
            Single::One(v) => OriginEvidence::Origin(v),
            Single::Unusable => OriginEvidence::Unusable,
            Single::None => match single(headers, REFERER) {
                Single::One(v) => OriginEvidence::Referer(v),
                Single::Unusable => OriginEvidence::Unusable,
                Single::None => OriginEvidence::Missing,
            },
        }
    }
}

enum Single<'a> {
    None,
    One(&'a str),
    Unusable,
}

fn single(headers: &HeaderMap, name: http::HeaderName) -> Single<'_> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Single::None,
        (Some(v), None) => v.to_str().map_or(Single::Unusable, Single::One),
        (Some(_), Some(_)) => Single::Unusable,
    }
}

/// What is known of a request when it is decided.
///
/// ```
/// use gis_auth::policy::{OriginEvidence, RequestFacts};
/// use http::Method;
///
/// let now = time::OffsetDateTime::now_utc();
/// let facts = RequestFacts {
///     origin: OriginEvidence::Origin("https://maps.acme.test"),
///     ..RequestFacts::new(&Method::GET, "/tiles/1/2/3.png", now)
/// };
/// assert_eq!(facts.path, "/tiles/1/2/3.png");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path, as sent (percent-encoded).
    pub path: &'a str,
    /// The query, as sent.
    pub query: Option<&'a str>,
    /// Where it says it comes from.
    pub origin: OriginEvidence<'a>,
    /// The caller's address, if known (after trusted-proxy resolution).
    pub client_ip: Option<IpAddr>,
    /// The time of the decision.
    pub now: OffsetDateTime,
    /// The roles a bearer token was minted for, which narrow the client's.
    pub token_scope: Option<&'a RoleSet>,
    /// The account's usage so far today and this request's cost, when known: the quota is
    /// then part of the decision.
    pub quota: Option<QuotaFacts>,
}

impl<'a> RequestFacts<'a> {
    /// Facts for `method` on `path` at `now`, with nothing else known.
    pub fn new(method: &'a Method, path: &'a str, now: OffsetDateTime) -> Self {
        Self {
            method,
            path,
            query: None,
            origin: OriginEvidence::Missing,
            client_ip: None,
            now,
            token_scope: None,
            quota: None,
        }
    }
}

/// The usage an account's quota is decided on, in milli-transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaFacts {
    /// Used so far today, before this request.
    pub used: u64,
    /// What this request costs.
    pub cost: u64,
}

/// An account's daily quota as of a request, in milli-transactions
/// ([`TRANSACTION`](super::TRANSACTION) is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaState {
    /// The daily quota.
    pub limit: u64,
    /// Used today, this request included when it was admitted.
    pub used: u64,
    /// When the day ends (the next 00:00 UTC).
    pub reset: OffsetDateTime,
}

impl QuotaState {
    /// The quota in whole transactions.
    pub fn limit_transactions(&self) -> u64 {
        self.limit / super::TRANSACTION
    }

    /// Whole transactions left.
    pub fn remaining_transactions(&self) -> u64 {
        self.limit.saturating_sub(self.used) / super::TRANSACTION
    }

    /// Seconds from `now` until the quota resets, at least 1.
    pub fn reset_seconds(&self, now: OffsetDateTime) -> u64 {
        seconds_until(self.reset, now)
    }

    /// Whether at least `percent` % of the quota is used.
    pub fn used_at_least(&self, percent: u8) -> bool {
        u128::from(self.used) * 100 >= u128::from(self.limit) * u128::from(percent)
    }
}

/// Whole seconds from `now` until `then`, rounded up, at least 1.
pub(crate) fn seconds_until(then: OffsetDateTime, now: OffsetDateTime) -> u64 {
    let nanos = (then - now).whole_nanoseconds().max(1);
    u64::try_from((nanos + 999_999_999) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// The next 00:00 UTC after `now`: when a daily quota resets.
pub fn next_utc_midnight(now: OffsetDateTime) -> OffsetDateTime {
    let date = now.to_offset(time::UtcOffset::UTC).date();
    date.next_day()
        .unwrap_or(date)
        .with_time(time::Time::MIDNIGHT)
        .assume_utc()
}

/// Whether a request costing `cost` fits a quota of `limit` with `used` already spent.
pub fn quota_admits(used: u64, cost: u64, limit: u64) -> bool {
    used.checked_add(cost).is_some_and(|total| total <= limit)
}

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
}

impl Decision {
    fn allowed() -> Self {
        Decision {
            denied: None,
            shadowed: Vec::new(),
            api: None,
            roles: RoleSet::new(),
            item: None,
            vary_origin: false,
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

/// The access policy: the route table and the rules, as one pure function of a client and
/// a request. The layer decides with exactly this, so what [`Policy::explain`] says is what
/// is enforced.
///
/// ```
/// use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, Credentials,
///     KeyDigest, Role, RoleSet};
/// use gis_auth::policy::{Api, OriginEvidence, Policy, RequestFacts, Rule, RouteTable};
/// use http::Method;
///
/// let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::EVALUATOR]))?;
/// let web = Client::build(ClientId::new("web")?,
///     &ClientSpec::javascript("Web").allowed_origins(["https://*.acme.test"]), &acme,
///     Credentials::new(KeyDigest::of("…")))?;
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

    /// Decides a request by `client` of `account`, without any I/O: the route, status,
    /// expiry, origins, IP rules, kind, roles, privileges, grants, and the quota when
    /// `facts.quota` is given. The request-rate limit is stateful and not part of it.
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
                RouteAccess::Api(api) => decide(client, account, route, api, facts),
            },
        }
    }
}

/// Decides a request for `api` on `route` by `client` of `account`.
///
/// Checks run in this order: status, expiry, origin, IP, then kind, roles, privileges and
/// grants, so that a key used from the wrong place learns nothing about what it could
/// reach; then the quota when it is known. A restriction the client runs report-only adds a
/// finding to [`Decision::shadowed`] instead of refusing.
pub(crate) fn decide(
    client: &Client,
    account: &Account,
    route: &Route,
    api: &Arc<Api>,
    facts: &RequestFacts<'_>,
) -> Decision {
    let mut decision = Decision {
        api: Some(api.shared_name().clone()),
        vary_origin: !client.origins().is_empty(),
        ..Decision::allowed()
    };
    if let Err(finding) = check(client, account, route, api, facts, &mut decision) {
        decision.denied = Some(finding);
    }
    decision
}

fn check(
    client: &Client,
    account: &Account,
    route: &Route,
    api: &Api,
    facts: &RequestFacts<'_>,
    decision: &mut Decision,
) -> Result<(), Finding> {
    let shadow = client.shadow();
    let mut restrict = |rule: Rule, kind: RejectionKind, reason: String| -> Result<(), Finding> {
        let finding = Finding { rule, kind, reason };
        match rule.restriction() {
            Some(r) if shadow.contains(r) => {
                decision.shadowed.push(finding);
                Ok(())
            }
            _ => Err(finding),
        }
    };
    if !client.status().is_active() {
        return Err(finding(
            Rule::Status,
            RejectionKind::Inactive,
            "the client is inactive",
        ));
    }
    if !account.status.is_active() {
        return Err(finding(
            Rule::Status,
            RejectionKind::Inactive,
            "the client's account is inactive",
        ));
    }
    if client.is_expired(facts.now) {
        return Err(finding(
            Rule::Expiry,
            RejectionKind::Expired,
            "the client has expired",
        ));
    }
    if !client.origins().is_empty() && !origin_allowed(client, facts.origin) {
        restrict(
            Rule::Origins,
            RejectionKind::OriginNotAllowed,
            match facts.origin {
                OriginEvidence::Missing => {
                    "the request has neither Origin nor Referer and the client requires one".into()
                }
                OriginEvidence::Unusable => "the Origin or Referer header is unusable".into(),
                OriginEvidence::Origin(_) | OriginEvidence::Referer(_) => {
                    "the request's origin is not among the client's allowed origins".into()
                }
            },
        )?;
    }
    if !client.ips().is_empty() && !facts.client_ip.is_some_and(|ip| client.ips().allows(ip)) {
        restrict(
            Rule::Ips,
            RejectionKind::IpNotAllowed,
            match facts.client_ip {
                Some(ip) => format!("{ip} is not among the client's allowed addresses"),
                None => "the caller's address is unknown and the client has IP rules".into(),
            },
        )?;
    }
    if client.kind() == ClientKind::JavaScript && !api.is_plugin() {
        return Err(finding(
            Rule::Kind,
            RejectionKind::NotPluginApi,
            format!(
                "{} is not a plugin API, and JavaScript clients reach plugin APIs only",
                api.name()
            ),
        ));
    }
    let mut roles = client.effective_roles(account);
    if let Some(scope) = facts.token_scope {
        roles = roles.intersection(scope);
    }
    if !api.roles().is_empty() && !api.roles().intersects(&roles) {
        return Err(finding(
            Rule::Roles,
            RejectionKind::InsufficientRole,
            format!(
                "{} needs one of the roles {}",
                api.name(),
                api.roles()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    decision.roles = roles;
    if let Some(privileges) = client.privileges()
        && !privileges.allows(api.name())
    {
        restrict(
            Rule::Privileges,
            RejectionKind::PrivilegeMissing,
            format!("the client's privileges do not include {}", api.name()),
        )?;
    }
    if let Some(source) = api.item_source() {
        let action = Action::of_method(facts.method);
        match item_of(route, source, facts) {
            Some(item) => {
                if !client.allows_item(&item, action) {
                    restrict(
                        Rule::Grants,
                        RejectionKind::ItemNotGranted,
                        format!("the client holds no `{action}` grant on item `{item}`"),
                    )?;
                }
                decision.item = Some(item);
            }
            None => restrict(
                Rule::Grants,
                RejectionKind::ItemNotGranted,
                "the request names no item (or names it twice)".into(),
            )?,
        }
    }
    if let (Some(limit), Some(q)) = (account.daily_quota, facts.quota)
        && !quota_admits(q.used, q.cost, limit.saturating_mul(super::TRANSACTION))
    {
        restrict(
            Rule::Quota,
            RejectionKind::QuotaExceeded,
            format!("the account's daily quota of {limit} transactions is used up"),
        )?;
    }
    Ok(())
}

fn finding(rule: Rule, kind: RejectionKind, reason: impl Into<String>) -> Finding {
    Finding {
        rule,
        kind,
        reason: reason.into(),
    }
}

/// The item a request names, decoded; `None` when it names none, names it twice, or its
/// encoding is not UTF-8.
pub(crate) fn item_of(
    route: &Route,
    source: &ItemSource,
    facts: &RequestFacts<'_>,
) -> Option<String> {
    let raw = match source {
        ItemSource::Path(name) => route.pattern().capture(facts.path, name)?,
        ItemSource::Query(name) => {
            let mut found = None;
            for (k, v) in form_urlencoded::parse(facts.query?.as_bytes()) {
                if *k == **name {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(v);
                }
            }
            let value = found?.into_owned();
            return (!value.is_empty() && value.len() <= MAX_ITEM_ID_LEN).then_some(value);
        }
    };
    let value = if raw.contains('%') {
        percent_decode_str(raw).decode_utf8().ok()?.into_owned()
    } else {
        raw.to_owned()
    };
    (!value.is_empty() && value.len() <= MAX_ITEM_ID_LEN).then_some(value)
}

fn origin_allowed(client: &Client, evidence: OriginEvidence<'_>) -> bool {
    let origin = match evidence {
        OriginEvidence::Missing => return client.allows_missing_origin(),
        OriginEvidence::Unusable => return false,
        OriginEvidence::Origin(v) => RequestOrigin::from_origin_header(v),
        OriginEvidence::Referer(v) => RequestOrigin::from_referer_header(v),
    };
    origin.is_some_and(|o| client.origins().allows(&o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{
        AccountId, ClientId, ClientSpec, Credentials, Grant, KeyDigest, Role, Status,
    };
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn account() -> Account {
        Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
        )
        .unwrap()
    }

    fn client(spec: ClientSpec) -> Client {
        Client::build(
            ClientId::new("c").unwrap(),
            &spec,
            &account(),
            Credentials::new(KeyDigest::of("k")),
        )
        .unwrap()
    }

    fn policy() -> Policy {
        let maps = || [Role::EVALUATOR, Role::SUBSCRIBER];
        Policy::new(
            RouteTable::new()
                .route(
                    Method::GET,
                    "/tiles/{z}/{x}/{y}.png",
                    Api::new("WorldStreets", maps()).plugin(true),
                )
                .unwrap()
                .route(Method::GET, "/geocode", Api::new("Geocoder", maps()))
                .unwrap()
                .route(Method::GET, "/profile", Api::new("Profile", [Role::USER]))
                .unwrap()
                .route(
                    Method::GET,
                    "/items/{item}/metadata",
                    Api::new("Items", maps()).item_from_path("item"),
                )
                .unwrap()
                .route(
                    Method::PUT,
                    "/items/{item}/metadata",
                    Api::new("Items", maps()).item_from_path("item"),
                )
                .unwrap()
                .route(
                    Method::GET,
                    "/datasets/query",
                    Api::new("Datasets", maps()).item_from_query("dataset"),
                )
                .unwrap()
                .public(Method::GET, "/health")
                .unwrap(),
        )
    }

    const TILE: &str = "/tiles/1/2/3.png";

    fn get(path: &'static str) -> RequestFacts<'static> {
        RequestFacts::new(&Method::GET, path, NOW)
    }

    fn decide(c: &Client, f: &RequestFacts<'_>) -> Result<Decision, RejectionKind> {
        let d = policy().explain(c, &account(), f);
        match &d.denied {
            None => Ok(d),
            Some(finding) => Err(finding.kind),
        }
    }

    #[test]
    fn an_unrestricted_client_is_allowed_and_does_not_vary() {
        let c = client(ClientSpec::javascript("web"));
        let ok = decide(&c, &get(TILE)).unwrap();
        assert!(!ok.vary_origin);
        assert_eq!(ok.api.as_deref(), Some("WorldStreets"));
        assert!(
            policy()
                .explain(&c, &account(), &get("/health"))
                .is_allowed()
        );
        let d = policy().explain(&c, &account(), &get("/nowhere"));
        assert_eq!(d.rule(), Some(Rule::Route));
    }

    #[test]
    fn origin_rules_read_origin_then_referer() {
        let c = client(ClientSpec::javascript("web").allowed_origins(["*.example.com"]));
        let with = |origin| RequestFacts {
            origin,
            ..get(TILE)
        };
        let ok = |e| decide(&c, &with(e)).is_ok();
        assert!(ok(OriginEvidence::Origin("https://a.example.com")));
        assert!(ok(OriginEvidence::Referer("https://a.example.com/map")));
        assert!(!ok(OriginEvidence::Origin("null")));
        assert!(!ok(OriginEvidence::Unusable));
        assert!(!ok(OriginEvidence::Missing));
        let c = client(
            ClientSpec::javascript("web")
                .allowed_origins(["*.example.com"])
                .allow_missing_origin(true),
        );
        assert!(decide(&c, &with(OriginEvidence::Missing)).is_ok());
        let d = policy().explain(
            &c,
            &account(),
            &with(OriginEvidence::Origin("https://evil.com")),
        );
        assert!(d.vary_origin);
        assert_eq!(d.rule(), Some(Rule::Origins));
        assert!(d.clone().rejection().unwrap().varies_on_origin());
    }

    #[test]
    fn ip_rules_need_a_known_address() {
        let c = client(ClientSpec::native("srv").allowed_ips(["203.0.113.0/24"]));
        let from = |ip: Option<&str>| RequestFacts {
            client_ip: ip.map(|s| s.parse().unwrap()),
            ..get("/geocode")
        };
        assert!(decide(&c, &from(Some("203.0.113.4"))).is_ok());
        assert_eq!(
            decide(&c, &from(Some("198.51.100.4"))).unwrap_err(),
            RejectionKind::IpNotAllowed
        );
        assert_eq!(
            decide(&c, &from(None)).unwrap_err(),
            RejectionKind::IpNotAllowed
        );
    }

    #[test]
    fn javascript_clients_reach_plugin_apis_only() {
        let c = client(ClientSpec::javascript("web"));
        assert_eq!(
            decide(&c, &get("/geocode")).unwrap_err(),
            RejectionKind::NotPluginApi
        );
    }

    #[test]
    fn roles_are_the_intersection_of_client_account_and_token() {
        let c = client(ClientSpec::native("srv"));
        assert!(decide(&c, &get("/profile")).is_ok());
        let scope = RoleSet::from_iter([Role::EVALUATOR]);
        let scoped = RequestFacts {
            token_scope: Some(&scope),
            ..get("/profile")
        };
        assert_eq!(
            decide(&c, &scoped).unwrap_err(),
            RejectionKind::InsufficientRole
        );
        let mut reduced = account();
        reduced.roles = RoleSet::from_iter([Role::EVALUATOR]);
        let d = policy().explain(&c, &reduced, &get("/profile"));
        assert_eq!(d.rule(), Some(Rule::Roles));
        assert!(d.reason().contains("User"), "{}", d.reason());
    }

    #[test]
    fn inactive_and_expired_clients_are_refused_first() {
        let c = client(ClientSpec::javascript("web").status(Status::Inactive));
        assert_eq!(decide(&c, &get(TILE)).unwrap_err(), RejectionKind::Inactive);
        let c = client(ClientSpec::javascript("web").expires_at(Some(NOW)));
        let d = policy().explain(&c, &account(), &get(TILE));
        assert_eq!(d.rule(), Some(Rule::Expiry));
        assert!(d.reason().contains("expired"));
        let c = client(ClientSpec::javascript("web"));
        let off = account().with_status(Status::Inactive);
        let d = policy().explain(&c, &off, &get(TILE));
        assert_eq!(d.denied.unwrap().kind, RejectionKind::Inactive);
    }

    #[test]
    fn privileges_limit_the_apis_a_client_reaches() {
        let c = client(ClientSpec::native("srv").privileges(["Geocoder"]));
        assert!(decide(&c, &get("/geocode")).is_ok());
        let d = policy().explain(&c, &account(), &get("/profile"));
        assert_eq!(d.rule(), Some(Rule::Privileges));
        assert_eq!(d.denied.unwrap().kind.error_code(), "insufficient_scope");
    }

    #[test]
    fn grants_decide_items_by_action_and_deny_by_default() {
        let c = client(ClientSpec::native("srv").grants([
            Grant::new("roads", [Action::Read]).unwrap(),
            Grant::new("parcels", [Action::Write]).unwrap(),
        ]));
        let put = |path: &'static str| RequestFacts::new(&Method::PUT, path, NOW);
        let ok = decide(&c, &get("/items/roads/metadata")).unwrap();
        assert_eq!(ok.item.as_deref(), Some("roads"));
        assert_eq!(
            decide(&c, &put("/items/roads/metadata")).unwrap_err(),
            RejectionKind::ItemNotGranted
        );
        assert!(decide(&c, &put("/items/parcels/metadata")).is_ok());
        assert_eq!(
            decide(&c, &get("/items/parcels/metadata")).unwrap_err(),
            RejectionKind::ItemNotGranted,
            "write does not imply read"
        );
        let none = client(ClientSpec::native("srv"));
        assert!(decide(&none, &get("/items/roads/metadata")).is_err());
        assert!(
            decide(&none, &get("/geocode")).is_ok(),
            "routes without items"
        );
    }

    #[test]
    fn query_items_are_decoded_and_must_be_single() {
        let c = client(
            ClientSpec::native("srv").grants([Grant::new("roads 2026", [Action::Read]).unwrap()]),
        );
        let q = |query: &'static str| RequestFacts {
            query: Some(query),
            ..get("/datasets/query")
        };
        assert!(decide(&c, &q("dataset=roads%202026")).is_ok());
        assert!(decide(&c, &q("dataset=roads+2026&x=1")).is_ok());
        assert!(decide(&c, &q("dataset=roads%202026&dataset=roads%202026")).is_err());
        assert!(decide(&c, &q("x=1")).is_err());
        assert!(decide(&c, &get("/datasets/query")).is_err());
    }

    #[test]
    fn report_only_restrictions_allow_and_record() {
        let c = client(
            ClientSpec::javascript("web")
                .allowed_origins(["https://maps.acme.test"])
                .privileges(["Elevation"])
                .shadow([Restriction::Origins, Restriction::Privileges]),
        );
        let f = RequestFacts {
            origin: OriginEvidence::Origin("https://evil.test"),
            ..get(TILE)
        };
        let d = decide(&c, &f).unwrap();
        let rules: Vec<Rule> = d.shadowed.iter().map(|s| s.rule).collect();
        assert_eq!(rules, [Rule::Origins, Rule::Privileges]);
        assert!(d.to_string().contains("report-only origins"), "{d}");
        // a rule that cannot run report-only still refuses
        let inactive = client(
            ClientSpec::javascript("web")
                .status(Status::Inactive)
                .shadow([Restriction::Origins]),
        );
        assert!(decide(&inactive, &f).is_err());
    }

    #[test]
    fn the_quota_is_decided_when_usage_is_known() {
        let c = client(ClientSpec::native("srv"));
        let limited = account().with_daily_quota(Some(10));
        let at = |used, cost| RequestFacts {
            quota: Some(QuotaFacts { used, cost }),
            ..get("/geocode")
        };
        assert!(
            policy()
                .explain(&c, &limited, &at(9_000, 1_000))
                .is_allowed()
        );
        let d = policy().explain(&c, &limited, &at(9_001, 1_000));
        assert_eq!(d.rule(), Some(Rule::Quota));
        assert_eq!(d.denied.unwrap().kind.error_code(), "quota_exceeded");
        assert!(
            policy()
                .explain(&c, &account(), &at(u64::MAX, 1_000))
                .is_allowed()
        );
    }

    #[test]
    fn quota_state_reports_whole_transactions() {
        let q = QuotaState {
            limit: 10_000,
            used: 8_100,
            reset: next_utc_midnight(NOW),
        };
        assert_eq!(q.limit_transactions(), 10);
        assert_eq!(q.remaining_transactions(), 1);
        assert!(q.used_at_least(80) && !q.used_at_least(90));
        assert_eq!(q.reset_seconds(NOW), 12 * 3600);
        assert_eq!(
            next_utc_midnight(datetime!(2026-12-31 23:59:59.9 UTC)),
            datetime!(2027-01-01 00:00 UTC)
        );
        assert!(
            quota_admits(0, 5, 5) && !quota_admits(1, 5, 5) && !quota_admits(u64::MAX, 1, u64::MAX)
        );
    }

    #[test]
    fn evidence_prefers_origin_and_rejects_duplicates() {
        let mut h = HeaderMap::new();
        h.insert(REFERER, "https://a.example.com/x".parse().unwrap());
        assert_eq!(
            OriginEvidence::from_headers(&h),
            OriginEvidence::Referer("https://a.example.com/x")
        );
        h.insert(ORIGIN, "https://evil.com".parse().unwrap());
        assert_eq!(
            OriginEvidence::from_headers(&h),
            OriginEvidence::Origin("https://evil.com")
        );
        h.append(ORIGIN, "https://a.example.com".parse().unwrap());
        assert_eq!(OriginEvidence::from_headers(&h), OriginEvidence::Unusable);
    }
}
