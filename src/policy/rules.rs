//! The rules, in the order they run. [`Policy`](super::Policy) calls these for a request
//! to an API and for a token request, so both doors decide with the same checks: a client's
//! standing (status, account status, expiry), where the request comes from (origins, IP
//! rules), then what it may reach (kind, roles, privileges, grants) and the quota.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests,
//!     KeyDigest, Role, RoleSet, Status};
//! use gis_auth::policy::{Policy, Rule, TokenRequestFacts};
//!
//! let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::USER]))?;
//! let backend = Client::build(ClientId::new("backend")?,
//!     &ClientSpec::native("Backend").status(Status::Inactive), &acme,
//!     CredentialDigests::new(KeyDigest::of("…")))?;
//! let facts = TokenRequestFacts::new(time::OffsetDateTime::now_utc());
//! let decision = Policy::default().explain_token_request(&backend, &acme, &facts);
//! assert_eq!(decision.rule(), Some(Rule::Status));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::net::IpAddr;

use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

use super::decision::{Decision, Finding};
use super::facts::{OriginEvidence, RequestFacts, TileUrlScope};
use super::quota::{
    QuotaFacts, QuotaPeriod, QuotaState, daily_limit, next_utc_midnight, next_utc_month,
    quota_admits,
};
use super::route::PathPattern;
use super::table::{Api, ItemSource};
use crate::client::{
    Account, Action, Client, ClientKind, MAX_ITEM_ID_LEN, RateLimit, Restriction, ShadowSet,
};
use crate::restrict::RequestOrigin;
use crate::rule::{RejectionKind, Rule};

/// What is known of a request for an access token (RFC 6749 §4.4, the client credentials
/// grant) once its client has proven its secret: when, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequestFacts {
    /// The caller's address, if known (after trusted-proxy resolution).
    pub client_ip: Option<IpAddr>,
    /// The time of the decision.
    pub now: OffsetDateTime,
}

impl TokenRequestFacts {
    /// Facts for a token request at `now` from an unknown address.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            client_ip: None,
            now,
        }
    }

    /// The same facts, from `ip`.
    #[must_use]
    pub fn from_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.client_ip = ip;
        self
    }
}

/// The restrictions a client runs report-only, and the findings they make instead of
/// refusing.
struct Restrictions<'d> {
    shadow: ShadowSet,
    shadowed: &'d mut Vec<Finding>,
}

impl Restrictions<'_> {
    /// Refuses with `finding`, unless its rule is a restriction the client runs
    /// report-only: then the finding is noted and the checks go on.
    fn apply(&mut self, finding: Finding) -> Result<(), Finding> {
        match finding.rule.restriction() {
            Some(r) if self.shadow.contains(r) => {
                self.shadowed.push(finding);
                Ok(())
            }
            _ => Err(finding),
        }
    }
}

/// Decides a request for `api`, on a route of `pattern`, by `client` of `account`.
///
/// Checks run in this order: status, the account's evaluation period, expiry, origin, IP,
/// then kind, roles, privileges, the account's item ceiling and grants, so that a key used from the wrong place learns nothing about what it could
/// reach; then the quota when it is known. A restriction the client runs report-only adds a
/// finding to [`Decision::shadowed`] instead of refusing.
pub(crate) fn decide(
    client: &Client,
    account: &Account,
    pattern: &PathPattern,
    api: &Api,
    facts: &RequestFacts<'_>,
) -> Decision {
    let mut decision = Decision {
        api: Some(api.shared_name().clone()),
        // A signed URL's answer does not depend on where the request comes from.
        vary_origin: !client.origins().is_empty() && facts.signed.is_none(),
        ..Decision::allowed()
    };
    if let Err(finding) = check(client, account, pattern, api, facts, &mut decision) {
        decision.denied = Some(finding);
    }
    decision
}

/// Decides the quota of a request that `decision` allowed so far, once its usage is known:
/// the quota rule on its own, the one [`Policy::explain`](super::Policy::explain) runs last.
/// The layer calls it with the usage counter's answer, and the
/// [`Meter`](crate::layer::Meter) for each further charge of a request. It sets
/// [`Decision::quota`] and, over the quota, refuses the request or (the quota running
/// report-only) adds the finding to [`Decision::shadowed`].
pub(crate) fn decide_quota(
    decision: &mut Decision,
    client: &Client,
    account: &Account,
    usage: QuotaFacts,
    now: OffsetDateTime,
) {
    let mut shadow = Restrictions {
        shadow: client.shadow(),
        shadowed: &mut decision.shadowed,
    };
    let verdict = quota_rule(account, usage, now, &mut shadow, &mut decision.quota);
    if let Err(finding) = verdict {
        decision.denied = Some(finding);
    }
}

/// The quota rule: the account's quotas (daily, monthly) as of the request, the one to
/// report into `quota`, and a finding when the request goes over either (refusing, unless
/// the client runs its quota report-only).
///
/// The quota reported is the one refusing; of two refusing, the one that resets later (a
/// retry before then would be refused again); of two that admit, the one with the fewest
/// transactions left, then the one that resets later.
fn quota_rule(
    account: &Account,
    usage: QuotaFacts,
    now: OffsetDateTime,
    shadow: &mut Restrictions<'_>,
    quota: &mut Option<QuotaState>,
) -> Result<(), Finding> {
    let plan = &account.plan;
    if plan.daily_quota.is_none() && plan.monthly_quota.is_none() {
        return Ok(());
    }
    let (used, monthly_used, over_daily, over_monthly) = match usage {
        QuotaFacts::Charged {
            used,
            monthly_used,
            over_daily,
            over_monthly,
        } => (used, monthly_used, over_daily, over_monthly),
        QuotaFacts::Before {
            used,
            monthly_used,
            cost,
        } => {
            let fits = |used, quota: Option<u64>| {
                quota.is_none_or(|transactions| quota_admits(used, cost, daily_limit(transactions)))
            };
            let (daily_fits, monthly_fits) = (
                fits(used, plan.daily_quota),
                fits(monthly_used, plan.monthly_quota),
            );
            // A counter charges what fits both, and everything when the quota is
            // report-only; a request refused by one quota is charged to neither.
            let charged =
                (daily_fits && monthly_fits) || shadow.shadow.contains(Restriction::Quota);
            let after = |used: u64| {
                if charged {
                    used.saturating_add(cost)
                } else {
                    used
                }
            };
            (after(used), after(monthly_used), !daily_fits, !monthly_fits)
        }
    };
    let daily = plan.daily_quota.map(|transactions| {
        let state = QuotaState {
            limit: daily_limit(transactions),
            used,
            reset: next_utc_midnight(now),
            period: QuotaPeriod::Day,
        };
        (state, over_daily, transactions)
    });
    let monthly = plan.monthly_quota.map(|transactions| {
        let state = QuotaState {
            limit: daily_limit(transactions),
            used: monthly_used,
            reset: next_utc_month(now),
            period: QuotaPeriod::Month,
        };
        (state, over_monthly, transactions)
    });
    let Some((state, over, transactions)) =
        [daily, monthly]
            .into_iter()
            .flatten()
            .min_by_key(|(state, over, _)| {
                // Refusing first and latest reset; else fewest left, then latest reset.
                let left = if *over { 0 } else { state.remaining() };
                (!*over, left, std::cmp::Reverse(state.reset))
            })
    else {
        return Ok(());
    };
    *quota = Some(state);
    if !over {
        return Ok(());
    }
    shadow.apply(finding(
        Rule::Quota,
        RejectionKind::QuotaExceeded,
        format!(
            "the account's {} quota of {transactions} transactions is used up",
            state.period.adjective()
        ),
    ))
}

/// Which request-rate limit refused a request: its client's own, or the one its account's
/// clients share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateScope {
    /// The client's rate limit.
    Client,
    /// The account's, shared by all its clients.
    Account,
}

/// The rate-limit rule: the refusal of a request over `limit` of `scope`. The rate limiters
/// (stateful, in [`crate::limits`]) count; this says what their "over" means.
pub(crate) fn rate_limit_finding(scope: RateScope, limit: RateLimit) -> Finding {
    let (rule, kind, whose) = match scope {
        RateScope::Client => (Rule::RateLimit, RejectionKind::RateLimited, "client's"),
        RateScope::Account => (
            Rule::AccountRateLimit,
            RejectionKind::AccountRateLimited,
            "account's (shared by all its clients)",
        ),
    };
    finding(
        rule,
        kind,
        format!(
            "the {whose} rate limit is {} requests a second with bursts of {}",
            limit.per_second, limit.burst
        ),
    )
}

/// Decides whether `client` of `account` may be issued an access token: its standing, its
/// kind (only NativeConfidential clients hold a secret) and its IP rules, the same checks a
/// request with the token then meets. The roles in force are the client's ∩ the account's.
pub(crate) fn decide_token_request(
    client: &Client,
    account: &Account,
    facts: &TokenRequestFacts,
) -> Decision {
    let mut decision = Decision::allowed();
    let mut shadow = Restrictions {
        shadow: client.shadow(),
        shadowed: &mut decision.shadowed,
    };
    let outcome = standing(client, account, facts.now)
        .and_then(|()| {
            if client.kind() == ClientKind::NativeConfidential {
                Ok(())
            } else {
                Err(finding(
                    Rule::Kind,
                    RejectionKind::UnknownCredential,
                    "only NativeConfidential clients are issued access tokens",
                ))
            }
        })
        .and_then(|()| ip_rule(client, facts.client_ip, &mut shadow));
    match outcome {
        Ok(()) => decision.roles = client.effective_roles(account),
        Err(finding) => decision.denied = Some(finding),
    }
    decision
}

/// Decides whether `client` of `account` may be used at all at `now` (the standing rules
/// alone); the roles in force are the client's ∩ the account's.
pub(crate) fn decide_standing(client: &Client, account: &Account, now: OffsetDateTime) -> Decision {
    let mut decision = Decision::allowed();
    match standing(client, account, now) {
        Ok(()) => decision.roles = client.effective_roles(account),
        Err(finding) => decision.denied = Some(finding),
    }
    decision
}

/// Status, account status, the account's evaluation period and the client's expiry:
/// whether the client may be used at all.
fn standing(client: &Client, account: &Account, now: OffsetDateTime) -> Result<(), Finding> {
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
    if account.plan.expired_at(now)
        && let Some(end) = account.plan.expires_at
    {
        let end = end.to_offset(time::UtcOffset::UTC);
        let instant = end
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| end.to_string());
        return Err(finding(
            Rule::AccountExpiry,
            RejectionKind::AccountExpired,
            format!("the account expired at {instant}"),
        ));
    }
    if client.is_expired(now) {
        return Err(finding(
            Rule::Expiry,
            RejectionKind::Expired,
            "the client has expired",
        ));
    }
    Ok(())
}

/// The allowed origins, for a client that has any.
fn origin_rule(
    client: &Client,
    evidence: OriginEvidence<'_>,
    shadow: &mut Restrictions<'_>,
) -> Result<(), Finding> {
    if client.origins().is_empty() || origin_allowed(client, evidence) {
        return Ok(());
    }
    shadow.apply(finding(
        Rule::Origins,
        RejectionKind::OriginNotAllowed,
        origin_refusal(evidence),
    ))
}

/// The most characters of an unparsable `Origin` header a refusal repeats.
const MAX_ORIGIN_ECHO: usize = 64;

/// Why an origin is refused, written for the caller (it is the refusal's description): the
/// refused origin by name, or that the request said nothing about its page. A `Referer` is
/// named by its origin only: its path and query may hold anything, a key included.
fn origin_refusal(evidence: OriginEvidence<'_>) -> String {
    const NOT_ALLOWED: &str = "is not among this client's allowed origins";
    match evidence {
        OriginEvidence::Missing => "the request carries neither Origin nor Referer, and this \
            client accepts requests from its allowed origins only; a page whose referrer \
            policy is `no-referrer`, or a client that is not a browser, does not say which \
            origin it comes from"
            .to_owned(),
        OriginEvidence::Unusable => "the request carries two Origin or Referer headers, or \
            one that is not visible ASCII, so its origin is unknown"
            .to_owned(),
        OriginEvidence::Origin(value) => match RequestOrigin::from_origin_header(value) {
            Some(origin) => format!("the origin `{origin}` {NOT_ALLOWED}"),
            None => {
                let shown: String = value.chars().take(MAX_ORIGIN_ECHO).collect();
                let more = if shown.len() < value.len() { "…" } else { "" };
                format!(
                    "the Origin `{shown}{more}` is not an http(s) origin, and this client \
                     accepts requests from its allowed origins only"
                )
            }
        },
        OriginEvidence::Referer(value) => match RequestOrigin::from_referer_header(value) {
            Some(origin) => format!("the origin `{origin}` (from the Referer) {NOT_ALLOWED}"),
            None => "the Referer is not an http(s) URL, so the page's origin is unknown".to_owned(),
        },
    }
}

/// The IP rules, for a client that has any: an unknown address never matches.
fn ip_rule(
    client: &Client,
    ip: Option<IpAddr>,
    shadow: &mut Restrictions<'_>,
) -> Result<(), Finding> {
    if client.ips().is_empty() || ip.is_some_and(|ip| client.ips().allows(ip)) {
        return Ok(());
    }
    shadow.apply(finding(
        Rule::Ips,
        RejectionKind::IpNotAllowed,
        match ip {
            Some(ip) => format!("{ip} is not among the client's allowed addresses"),
            None => "the caller's address is unknown and the client has IP rules".into(),
        },
    ))
}

fn check(
    client: &Client,
    account: &Account,
    pattern: &PathPattern,
    api: &Api,
    facts: &RequestFacts<'_>,
    decision: &mut Decision,
) -> Result<(), Finding> {
    standing(client, account, facts.now)?;
    let mut shadow = Restrictions {
        shadow: client.shadow(),
        shadowed: &mut decision.shadowed,
    };
    // A signed URL is the capability: the origin rules are for keys that travel in public
    // pages, and a signed URL's scope replaces them.
    match facts.signed {
        None => origin_rule(client, facts.origin, &mut shadow)?,
        Some(scope) => signed_scope_rule(pattern, api, scope, facts)?,
    }
    ip_rule(client, facts.client_ip, &mut shadow)?;
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
        shadow.apply(finding(
            Rule::Privileges,
            RejectionKind::PrivilegeMissing,
            format!("the client's privileges do not include {}", api.name()),
        ))?;
    }
    if let Some(ItemSource::QueryList(name)) = api.item_source() {
        listed_items_rule(api, client, name, facts, &mut shadow)?;
    } else if let Some(source) = api.item_source() {
        let action = Action::of_method(facts.method);
        match item_of(pattern, source, facts) {
            Some(item) => {
                // The operator's ceiling: a grant outside it does not grant, whatever the
                // client runs report-only.
                if let Some(ceiling) = &account.plan.items
                    && !ceiling.admits(&item)
                {
                    return Err(finding(
                        Rule::ItemCeiling,
                        RejectionKind::ItemNotGranted,
                        format!("item `{item}` is outside the items the account's plan allows"),
                    ));
                }
                if !client.allows_item(&item, action) {
                    shadow.apply(finding(
                        Rule::Grants,
                        RejectionKind::ItemNotGranted,
                        format!("the client holds no `{action}` grant on item `{item}`"),
                    ))?;
                }
                decision.item = Some(item);
            }
            None => shadow.apply(finding(
                Rule::Grants,
                RejectionKind::ItemNotGranted,
                "the request names no item (or names it twice)",
            ))?,
        }
    }
    if let Some(usage) = facts.quota {
        quota_rule(account, usage, facts.now, &mut shadow, &mut decision.quota)?;
    }
    Ok(())
}

/// The grants rule for an API whose requests list their items in query parameter `name`
/// ([`Api::items_from_query_list`]): every item listed must be open or granted.
fn listed_items_rule(
    api: &Api,
    client: &Client,
    name: &str,
    facts: &RequestFacts<'_>,
    shadow: &mut Restrictions<'_>,
) -> Result<(), Finding> {
    let action = Action::of_method(facts.method);
    let query = facts.query.unwrap_or_default();
    let mut lists = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v);
    let Some(list) = lists.next() else {
        return Ok(());
    };
    if lists.next().is_some() {
        return shadow.apply(finding(
            Rule::Grants,
            RejectionKind::ItemNotGranted,
            format!("the request names its items in `{name}` more than once"),
        ));
    }
    for item in list.split(',').filter(|item| !item.is_empty()) {
        if item.len() > MAX_ITEM_ID_LEN {
            shadow.apply(finding(
                Rule::Grants,
                RejectionKind::ItemNotGranted,
                format!("an item of `{name}` is longer than any item id"),
            ))?;
        } else if !api.allows_item(client, item, action) {
            shadow.apply(finding(
                Rule::Grants,
                RejectionKind::ItemNotGranted,
                format!("the client holds no `{action}` grant on item `{item}`"),
            ))?;
        }
    }
    Ok(())
}

/// The scope of a signed tile URL: the API it names, its zoom range (read from the
/// route's `{z}`) and its items. Never report-only: the scope is what was signed.
fn signed_scope_rule(
    pattern: &PathPattern,
    api: &Api,
    scope: &TileUrlScope,
    facts: &RequestFacts<'_>,
) -> Result<(), Finding> {
    let outside = |reason: String| {
        Err(finding(
            Rule::SignedScope,
            RejectionKind::OutsideSignedScope,
            reason,
        ))
    };
    if scope.api != api.name() {
        return outside(format!(
            "the signed URL is for {}, not {}",
            scope.api,
            api.name()
        ));
    }
    if scope.limits_zoom() {
        let zoom = pattern
            .capture(facts.path, "z")
            .and_then(|z| z.parse::<u32>().ok());
        match zoom {
            Some(z) if scope.covers_zoom(z) => {}
            Some(z) => return outside(format!("zoom level {z} is outside the signed range")),
            None => return outside("the request names no zoom level".into()),
        }
    }
    if !scope.items.is_empty() {
        let item = api
            .item_source()
            .and_then(|source| item_of(pattern, source, facts));
        match item {
            Some(item) if scope.items.contains(&item) => {}
            Some(item) => return outside(format!("item `{item}` is not among the signed items")),
            None => return outside("the request names no item".into()),
        }
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
fn item_of(pattern: &PathPattern, source: &ItemSource, facts: &RequestFacts<'_>) -> Option<String> {
    let raw = match source {
        ItemSource::Path(name) => pattern.capture(facts.path, name)?,
        ItemSource::QueryList(_) => return None,
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
    use crate::client::Restriction;
    use crate::client::RoleSet;
    use crate::client::{
        AccountId, ClientId, ClientSpec, CredentialDigests, Grant, KeyDigest, Role, Status,
    };
    use crate::client::{ItemCeiling, Plan};
    use crate::policy::{Api, Policy, QuotaFacts, QuotaState, RouteTable, next_utc_midnight};
    use http::header::{ORIGIN, REFERER};
    use http::{HeaderMap, Method};
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
            CredentialDigests::new(KeyDigest::of("k")),
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
                .route(
                    Method::GET,
                    "/wms",
                    Api::new("WMS", maps())
                        .items_from_query_list("LAYERS")
                        .open_items(["streets", "imagery"]),
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
        let denial = d.clone().allowed_or_denial().unwrap_err();
        assert!(denial.rejection.varies_on_origin());
    }

    #[test]
    fn origin_refusals_say_which_origin_or_that_none_was_sent() {
        let c = client(ClientSpec::javascript("web").allowed_origins(["maps.example.com"]));
        let refusal = |origin| {
            let facts = RequestFacts {
                origin,
                ..get(TILE)
            };
            let d = policy().explain(&c, &account(), &facts);
            let denial = d.clone().allowed_or_denial().unwrap_err();
            assert_eq!(denial.rejection.error_code(), "access_denied");
            // The refusal's description is the decision's reason: explain shows it too.
            assert_eq!(denial.rejection.description(), d.reason());
            d.reason()
        };
        let missing = refusal(OriginEvidence::Missing);
        assert!(missing.contains("neither Origin nor Referer"), "{missing}");
        assert!(missing.contains("no-referrer"), "{missing}");
        assert!(missing.contains("not a browser"), "{missing}");
        let evil = refusal(OriginEvidence::Origin("HTTPS://Evil.Test:443"));
        assert!(evil.contains("`https://evil.test`"), "{evil}");
        let port = refusal(OriginEvidence::Origin("http://maps.example.com:8080"));
        assert!(port.contains("`http://maps.example.com:8080`"), "{port}");
        // A Referer is named by its origin only: never its path or query.
        let referer = refusal(OriginEvidence::Referer(
            "https://other.test/map?apikey=gis_secret#x",
        ));
        assert!(referer.contains("`https://other.test`"), "{referer}");
        assert!(!referer.contains("secret"), "{referer}");
        let bad_referer = refusal(OriginEvidence::Referer("file:///home/map.html?k=secret"));
        assert!(!bad_referer.contains("secret"), "{bad_referer}");
        // An unparsable Origin is repeated, but only so far.
        assert!(refusal(OriginEvidence::Origin("null")).contains("`null`"));
        let long = format!("x{}", "y".repeat(500));
        let echoed = refusal(OriginEvidence::Origin(&long));
        assert!(echoed.len() < 250, "{echoed}");
        assert!(echoed.contains('…'), "{echoed}");
        let unusable = refusal(OriginEvidence::Unusable);
        assert!(
            unusable.contains("two Origin or Referer headers"),
            "{unusable}"
        );
    }

    #[test]
    fn a_signed_scope_replaces_the_origin_rules_and_bounds_api_and_zoom() {
        let c = client(ClientSpec::javascript("web").allowed_origins(["*.example.com"]));
        let scope = TileUrlScope::new("WorldStreets").zoom(Some(2), Some(4));
        let signed = |path: &'static str, origin| RequestFacts {
            origin,
            signed: Some(&scope),
            ..get(path)
        };
        let evil = OriginEvidence::Origin("https://evil.test");
        let ok = decide(&c, &signed("/tiles/3/2/1.png", evil)).unwrap();
        assert!(!ok.vary_origin);
        assert!(decide(&c, &signed("/tiles/3/2/1.png", OriginEvidence::Missing)).is_ok());
        let d = policy().explain(&c, &account(), &signed("/tiles/5/2/1.png", evil));
        assert_eq!(d.rule(), Some(Rule::SignedScope));
        assert_eq!(
            decide(&c, &signed("/tiles/1/2/1.png", evil)).unwrap_err(),
            RejectionKind::OutsideSignedScope
        );
        let other = TileUrlScope::new("WorldImagery");
        let f = RequestFacts {
            signed: Some(&other),
            ..get(TILE)
        };
        assert_eq!(
            decide(&c, &f).unwrap_err(),
            RejectionKind::OutsideSignedScope
        );
    }

    #[test]
    fn a_signed_scope_does_not_lift_status_or_items() {
        let c = client(ClientSpec::native("srv").status(Status::Inactive));
        let scope = TileUrlScope::new("WorldStreets");
        let f = RequestFacts {
            signed: Some(&scope),
            ..get(TILE)
        };
        assert_eq!(decide(&c, &f).unwrap_err(), RejectionKind::Inactive);
        let c = client(ClientSpec::native("srv"));
        let items = TileUrlScope::new("Items").items(["a"]);
        let on = |path: &'static str| RequestFacts {
            signed: Some(&items),
            ..get(path)
        };
        assert_eq!(
            decide(&c, &on("/items/b/metadata")).unwrap_err(),
            RejectionKind::OutsideSignedScope
        );
        // Inside the scope, the client's own grants still decide.
        assert_eq!(
            decide(&c, &on("/items/a/metadata")).unwrap_err(),
            RejectionKind::ItemNotGranted
        );
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
    fn every_listed_item_must_be_open_or_granted() {
        let granted = client(
            ClientSpec::native("srv").grants([Grant::new("parcels", [Action::Read]).unwrap()]),
        );
        let none = client(ClientSpec::native("srv"));
        let wms = |query: &'static str| RequestFacts {
            query: Some(query),
            ..get("/wms")
        };
        for c in [&granted, &none] {
            assert!(
                decide(c, &wms("REQUEST=GetCapabilities")).is_ok(),
                "no list"
            );
            assert!(decide(c, &wms("LAYERS=streets,imagery")).is_ok());
            assert!(decide(c, &wms("layers=streets,,imagery")).is_ok());
            assert!(decide(c, &wms("LAYERS=")).is_ok());
        }
        assert!(decide(&granted, &wms("Layers=streets,parcels")).is_ok());
        let refused = policy().explain(&none, &account(), &wms("LAYERS=streets,parcels"));
        assert_eq!(refused.rule(), Some(Rule::Grants));
        assert_eq!(
            refused.denied.unwrap().kind.error_code(),
            "insufficient_scope"
        );
        assert!(
            decide(&none, &wms("LAYERS=secret")).is_err(),
            "unknown items"
        );
        assert!(
            decide(&none, &wms("LAYERS=Streets")).is_err(),
            "items match exactly"
        );
        assert!(decide(&none, &wms("LAYERS=streets&layers=streets")).is_err());
        let long: &'static str = format!("LAYERS={}", "a".repeat(MAX_ITEM_ID_LEN + 1)).leak();
        assert!(decide(&granted, &wms(long)).is_err());
        let shadowed = client(ClientSpec::native("srv").shadow([Restriction::Grants]));
        let d = policy().explain(&shadowed, &account(), &wms("LAYERS=parcels"));
        assert!(d.is_allowed());
        assert_eq!(d.shadowed[0].rule, Rule::Grants);
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
            quota: Some(QuotaFacts::Before {
                used,
                monthly_used: used,
                cost,
            }),
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
    fn the_quota_rule_gives_one_verdict_on_the_usage_before_and_on_a_counters_answer() {
        let limited = account().with_daily_quota(Some(10));
        let enforced = client(ClientSpec::native("srv"));
        let lenient = client(ClientSpec::native("srv").shadow([Restriction::Quota]));
        let plans = [
            limited.clone(),
            account().with_plan(Plan::default().with_monthly_quota(Some(10))),
            account().with_plan(
                Plan::default()
                    .with_daily_quota(Some(10))
                    .with_monthly_quota(Some(12)),
            ),
        ];
        for account in &plans {
            for c in [&enforced, &lenient] {
                for (used, monthly_used, cost) in [
                    (0, 0, 1_000),
                    (9_000, 9_000, 1_000),
                    (9_001, 9_001, 1_000),
                    (10_000, 10_000, 0),
                    (1_000, 11_500, 1_000),
                    (9_500, 11_000, 1_000),
                ] {
                    let facts = RequestFacts {
                        quota: Some(QuotaFacts::Before {
                            used,
                            monthly_used,
                            cost,
                        }),
                        ..get("/geocode")
                    };
                    let explained = policy().explain(c, account, &facts);
                    // What an atomic counter answers to the same charge.
                    let fits = |used, quota: Option<u64>| {
                        quota.is_none_or(|q| quota_admits(used, cost, q * 1_000))
                    };
                    let daily_fits = fits(used, account.plan.daily_quota);
                    let monthly_fits = fits(monthly_used, account.plan.monthly_quota);
                    let admitted =
                        (daily_fits && monthly_fits) || c.shadow().contains(Restriction::Quota);
                    let after = |u: u64| if admitted { u + cost } else { u };
                    let counted = QuotaFacts::Charged {
                        used: after(used),
                        monthly_used: after(monthly_used),
                        over_daily: !daily_fits,
                        over_monthly: !monthly_fits,
                    };
                    let mut charged = policy().explain(c, account, &get("/geocode"));
                    decide_quota(&mut charged, c, account, counted, NOW);
                    assert_eq!(charged, explained, "{used}/{monthly_used} + {cost}");
                }
            }
        }
        let over = |c: &Client| {
            let facts = RequestFacts {
                quota: Some(QuotaFacts::Before {
                    used: 10_000,
                    monthly_used: 10_000,
                    cost: 1,
                }),
                ..get("/geocode")
            };
            policy().explain(c, &limited, &facts)
        };
        assert_eq!(over(&enforced).rule(), Some(Rule::Quota));
        let lenient = over(&lenient);
        assert!(lenient.is_allowed());
        assert_eq!(lenient.shadowed[0].rule, Rule::Quota);
        assert_eq!(lenient.quota.map(|q| q.used), Some(10_001));
    }

    fn with_usage(used: u64, monthly_used: u64, cost: u64) -> RequestFacts<'static> {
        RequestFacts {
            quota: Some(QuotaFacts::Before {
                used,
                monthly_used,
                cost,
            }),
            ..get("/geocode")
        }
    }

    #[test]
    fn a_request_must_fit_both_the_daily_and_the_monthly_quota() {
        let c = client(ClientSpec::native("srv"));
        let both = account().with_plan(
            Plan::default()
                .with_daily_quota(Some(10))
                .with_monthly_quota(Some(100)),
        );
        let d = policy().explain(&c, &both, &with_usage(9_000, 99_000, 1_000));
        assert!(d.is_allowed(), "{d}");
        let month = datetime!(2026-07-01 00:00 UTC);
        let d = policy().explain(&c, &both, &with_usage(1_000, 99_500, 1_000));
        assert_eq!(d.rule(), Some(Rule::Quota));
        assert_eq!(
            d.reason(),
            "the account's monthly quota of 100 transactions is used up"
        );
        let q = d.quota.unwrap();
        assert_eq!(
            (q.period, q.reset, q.used),
            (QuotaPeriod::Month, month, 99_500)
        );
        let d = policy().explain(&c, &both, &with_usage(9_500, 5_000, 1_000));
        assert_eq!(
            d.reason(),
            "the account's daily quota of 10 transactions is used up"
        );
        assert_eq!(d.quota.unwrap().period, QuotaPeriod::Day);
        // Both refuse: the one that resets later is reported.
        let d = policy().explain(&c, &both, &with_usage(9_500, 99_900, 1_000));
        assert_eq!(d.quota.unwrap().period, QuotaPeriod::Month);
    }

    #[test]
    fn the_quota_reported_is_the_one_with_the_fewest_transactions_left() {
        let c = client(ClientSpec::native("srv"));
        let both = account().with_plan(
            Plan::default()
                .with_daily_quota(Some(10))
                .with_monthly_quota(Some(100)),
        );
        let reported = |used, monthly_used| {
            let d = policy().explain(&c, &both, &with_usage(used, monthly_used, 1_000));
            assert!(d.is_allowed(), "{d}");
            let q = d.quota.unwrap();
            (q.period, q.remaining_transactions())
        };
        assert_eq!(reported(0, 0), (QuotaPeriod::Day, 9));
        assert_eq!(reported(0, 95_000), (QuotaPeriod::Month, 4));
        // A tie goes to the quota that resets later.
        assert_eq!(reported(0, 90_000), (QuotaPeriod::Month, 9));
        let monthly = account().with_plan(Plan::default().with_monthly_quota(Some(100)));
        let d = policy().explain(&c, &monthly, &with_usage(0, 0, 1_000));
        assert_eq!(d.quota.unwrap().period, QuotaPeriod::Month);
    }

    #[test]
    fn an_expired_account_refuses_every_client_naming_the_instant() {
        let end = datetime!(2026-06-01 12:00 UTC);
        let trial = account().with_plan(Plan::default().with_expires_at(Some(end)));
        let c = client(ClientSpec::javascript("web"));
        let before = RequestFacts::new(&Method::GET, TILE, end - time::Duration::seconds(1));
        assert!(policy().explain(&c, &trial, &before).is_allowed());
        let d = policy().explain(&c, &trial, &get(TILE));
        assert_eq!(d.rule(), Some(Rule::AccountExpiry));
        assert_eq!(d.reason(), "the account expired at 2026-06-01T12:00:00Z");
        let kind = d.denied.unwrap().kind;
        assert_eq!(
            (kind.status().as_u16(), kind.error_code()),
            (401, "invalid_token")
        );
        let d = token_request(&client(ClientSpec::native("n")), &trial, None);
        assert_eq!(d.rule(), Some(Rule::AccountExpiry));
    }

    #[test]
    fn a_grant_outside_the_accounts_item_ceiling_does_not_grant() {
        let ceiling = ItemCeiling::new(["roads", "parcels-*"]).unwrap();
        let fenced = account().with_plan(Plan::default().with_items(Some(ceiling)));
        let c = client(ClientSpec::native("srv").grants([
            Grant::new("roads", [Action::Read]).unwrap(),
            Grant::new("parcels-north", [Action::Read]).unwrap(),
            Grant::new("rivers", [Action::Read]).unwrap(),
        ]));
        let explain = |account: &Account, path| policy().explain(&c, account, &get(path));
        assert!(explain(&fenced, "/items/roads/metadata").is_allowed());
        assert!(explain(&fenced, "/items/parcels-north/metadata").is_allowed());
        assert!(explain(&account(), "/items/rivers/metadata").is_allowed());
        let d = explain(&fenced, "/items/rivers/metadata");
        assert_eq!(d.rule(), Some(Rule::ItemCeiling));
        assert_eq!(d.denied.unwrap().kind, RejectionKind::ItemNotGranted);
        // Never report-only: a client running its grants report-only is refused too.
        let lenient = client(ClientSpec::native("srv").shadow([Restriction::Grants]));
        let d = policy().explain(&lenient, &fenced, &get("/items/rivers/metadata"));
        assert_eq!(d.rule(), Some(Rule::ItemCeiling));
        assert!(
            policy()
                .explain(&lenient, &fenced, &get("/items/roads/metadata"))
                .is_allowed()
        );
        assert_eq!(Rule::ItemCeiling.restriction(), None);
    }

    #[test]
    fn rate_limit_findings_name_whose_limit() {
        let limit = RateLimit::new(5, 10).unwrap();
        let client = rate_limit_finding(RateScope::Client, limit);
        assert_eq!(
            (client.rule, client.kind),
            (Rule::RateLimit, RejectionKind::RateLimited)
        );
        let account = rate_limit_finding(RateScope::Account, limit);
        assert_eq!(
            (account.rule, account.kind),
            (Rule::AccountRateLimit, RejectionKind::AccountRateLimited)
        );
        assert_eq!(account.kind.error_code(), "rate_limited");
        assert!(account.reason.contains("account's"), "{}", account.reason);
    }

    #[test]
    fn quota_state_reports_whole_transactions() {
        let q = QuotaState {
            limit: 10_000,
            used: 8_100,
            reset: next_utc_midnight(NOW),
            period: QuotaPeriod::Day,
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

    fn token_request(c: &Client, account: &Account, ip: Option<&str>) -> Decision {
        let facts = TokenRequestFacts::new(NOW).from_ip(ip.map(|ip| ip.parse().unwrap()));
        policy().explain_token_request(c, account, &facts)
    }

    #[test]
    fn a_token_request_meets_the_standing_kind_and_ip_rules_of_the_layer() {
        let native = |spec: ClientSpec| client(spec);
        let ok = token_request(&native(ClientSpec::native("n")), &account(), None);
        assert!(ok.is_allowed());
        assert_eq!(ok.roles, RoleSet::from_iter([Role::USER, Role::EVALUATOR]));

        let inactive = native(ClientSpec::native("n").status(Status::Inactive));
        assert_eq!(
            token_request(&inactive, &account(), None).rule(),
            Some(Rule::Status)
        );
        let mut closed = account();
        closed.status = Status::Inactive;
        let d = token_request(&native(ClientSpec::native("n")), &closed, None);
        assert_eq!(d.rule(), Some(Rule::Status));
        assert_eq!(d.reason(), "the client's account is inactive");

        let expired = native(ClientSpec::native("n").expires_at(Some(NOW)));
        assert_eq!(
            token_request(&expired, &account(), None).rule(),
            Some(Rule::Expiry)
        );

        let browser = client(ClientSpec::javascript("web"));
        assert_eq!(
            token_request(&browser, &account(), None).rule(),
            Some(Rule::Kind)
        );

        let fenced = native(ClientSpec::native("n").allowed_ips(["203.0.113.0/24"]));
        assert!(token_request(&fenced, &account(), Some("203.0.113.9")).is_allowed());
        assert_eq!(
            token_request(&fenced, &account(), Some("198.51.100.1")).rule(),
            Some(Rule::Ips)
        );
        assert_eq!(
            token_request(&fenced, &account(), None).rule(),
            Some(Rule::Ips)
        );
    }

    #[test]
    fn standing_alone_ignores_where_the_request_comes_from() {
        let fenced = client(ClientSpec::native("n").allowed_ips(["203.0.113.0/24"]));
        let d = policy().explain_standing(&fenced, &account(), NOW);
        assert!(d.is_allowed());
        assert_eq!(d.roles, RoleSet::from_iter([Role::USER, Role::EVALUATOR]));
        let inactive = client(ClientSpec::native("n").status(Status::Inactive));
        assert_eq!(
            policy().explain_standing(&inactive, &account(), NOW).rule(),
            Some(Rule::Status)
        );
        let mut closed = account();
        closed.status = Status::Inactive;
        assert_eq!(
            policy().explain_standing(&fenced, &closed, NOW).rule(),
            Some(Rule::Status)
        );
        let expired = client(ClientSpec::native("n").expires_at(Some(NOW)));
        assert_eq!(
            policy().explain_standing(&expired, &account(), NOW).rule(),
            Some(Rule::Expiry)
        );
    }

    #[test]
    fn a_report_only_ip_rule_lets_a_token_request_through_with_a_finding() {
        let c = client(
            ClientSpec::native("n")
                .allowed_ips(["203.0.113.0/24"])
                .shadow([Restriction::Ips]),
        );
        let d = token_request(&c, &account(), Some("198.51.100.1"));
        assert!(d.is_allowed());
        assert_eq!(d.shadowed.len(), 1);
        assert_eq!(d.shadowed[0].rule, Rule::Ips);
    }
}
