//! The decision: given a client, its account, the API and what is known of the request, allow
//! or refuse. Pure and synchronous; the layer calls exactly this.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, Credentials,
//!     KeyDigest, Role, RoleSet};
//! use gis_auth::policy::{authorize, Api, CredentialSource, OriginEvidence, RequestFacts};
//!
//! let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::EVALUATOR]))?;
//! let web = Client::build(ClientId::new("web")?,
//!     &ClientSpec::javascript("Web").allowed_origins(["https://*.acme.test"]), &acme,
//!     Credentials::new(KeyDigest::of("…")))?;
//! let tiles = Api::new("WorldStreets", [Role::EVALUATOR]).plugin(true);
//! let facts = RequestFacts { origin: OriginEvidence::Origin("https://maps.acme.test"),
//!     client_ip: None, now: time::OffsetDateTime::now_utc() };
//! let ok = authorize(&web, &acme, &tiles, &facts, None, CredentialSource::ApiKey).unwrap();
//! assert!(ok.vary_origin);
//! let geocoder = Api::new("Geocoder", [Role::EVALUATOR]);
//! let refused = authorize(&web, &acme, &geocoder, &facts, None, CredentialSource::ApiKey);
//! assert_eq!(refused.unwrap_err().error_code(), "insufficient_scope");
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{ORIGIN, REFERER};
use time::OffsetDateTime;

use super::principal::{CredentialSource, Principal};
use super::table::Api;
use crate::client::{Account, Client, ClientKind, RoleSet};
use crate::error::{Rejection, RejectionKind};
use crate::restrict::RequestOrigin;

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
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Where it says it comes from.
    pub origin: OriginEvidence<'a>,
    /// The caller's address, if known (after trusted-proxy resolution).
    pub client_ip: Option<IpAddr>,
    /// The time of the decision.
    pub now: OffsetDateTime,
}

/// An allowed request: the principal, and whether the decision read the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// Who is calling.
    pub principal: Principal,
    /// Whether the outcome depended on `Origin`/`Referer` (answer with `Vary: Origin`).
    pub vary_origin: bool,
}

/// Decides a request for `api` by `client` of `account`.
///
/// Checks run in this order: status, expiry, origin, IP, then kind and roles, so that a key
/// used from the wrong place learns nothing about what it could reach. `token_scope` narrows
/// the roles further for bearer tokens minted with a scope.
pub fn authorize(
    client: &Client,
    account: &Account,
    api: &Api,
    facts: &RequestFacts<'_>,
    token_scope: Option<&RoleSet>,
    source: CredentialSource,
) -> Result<Authorized, Rejection> {
    if !client.status().is_active() || !account.status.is_active() {
        return Err(RejectionKind::Inactive.into());
    }
    if client.is_expired(facts.now) {
        return Err(RejectionKind::Expired.into());
    }
    let vary_origin = !client.origins().is_empty();
    let deny = |kind: RejectionKind| Rejection::new(kind).varying_on_origin(vary_origin);
    if vary_origin && !origin_allowed(client, facts.origin) {
        return Err(deny(RejectionKind::OriginNotAllowed));
    }
    if !client.ips().is_empty() && !facts.client_ip.is_some_and(|ip| client.ips().allows(ip)) {
        return Err(deny(RejectionKind::IpNotAllowed));
    }
    if client.kind() == ClientKind::JavaScript && !api.is_plugin() {
        return Err(deny(RejectionKind::NotPluginApi));
    }
    let mut roles = client.effective_roles(account);
    if let Some(scope) = token_scope {
        roles = roles.intersection(scope);
    }
    if !api.roles().is_empty() && !api.roles().intersects(&roles) {
        return Err(deny(RejectionKind::InsufficientRole));
    }
    Ok(Authorized {
        principal: Principal {
            client_id: client.id().clone(),
            account_id: client.account_id().clone(),
            kind: client.kind(),
            roles,
            api: api.shared_name().clone(),
            source,
        },
        vary_origin,
    })
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
    use crate::client::{AccountId, ClientId, ClientSpec, Credentials, KeyDigest, Role, Status};
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

    fn tiles() -> Api {
        Api::new("WorldStreets", [Role::EVALUATOR, Role::SUBSCRIBER]).plugin(true)
    }

    fn facts(origin: OriginEvidence<'static>, ip: Option<&str>) -> RequestFacts<'static> {
        RequestFacts {
            origin,
            client_ip: ip.map(|s| s.parse().unwrap()),
            now: NOW,
        }
    }

    fn decide(c: &Client, api: &Api, f: &RequestFacts<'_>) -> Result<Authorized, RejectionKind> {
        authorize(c, &account(), api, f, None, CredentialSource::ApiKey).map_err(|r| r.kind())
    }

    #[test]
    fn an_unrestricted_client_is_allowed_and_does_not_vary() {
        let c = client(ClientSpec::javascript("web"));
        let ok = decide(&c, &tiles(), &facts(OriginEvidence::Missing, None)).unwrap();
        assert!(!ok.vary_origin);
        assert_eq!(ok.principal.api(), "WorldStreets");
    }

    #[test]
    fn origin_rules_read_origin_then_referer() {
        let c = client(ClientSpec::javascript("web").allowed_origins(["*.example.com"]));
        let ok = |e| decide(&c, &tiles(), &facts(e, None)).is_ok();
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
        assert!(decide(&c, &tiles(), &facts(OriginEvidence::Missing, None)).is_ok());
        let err = authorize(
            &c,
            &account(),
            &tiles(),
            &facts(OriginEvidence::Origin("https://evil.com"), None),
            None,
            CredentialSource::ApiKey,
        )
        .unwrap_err();
        assert!(err.varies_on_origin());
    }

    #[test]
    fn ip_rules_need_a_known_address() {
        let c = client(ClientSpec::native("srv").allowed_ips(["203.0.113.0/24"]));
        let api = Api::new("Geocoder", [Role::EVALUATOR]);
        assert!(
            decide(
                &c,
                &api,
                &facts(OriginEvidence::Missing, Some("203.0.113.4"))
            )
            .is_ok()
        );
        assert_eq!(
            decide(
                &c,
                &api,
                &facts(OriginEvidence::Missing, Some("198.51.100.4"))
            ),
            Err(RejectionKind::IpNotAllowed)
        );
        assert_eq!(
            decide(&c, &api, &facts(OriginEvidence::Missing, None)),
            Err(RejectionKind::IpNotAllowed)
        );
    }

    #[test]
    fn javascript_clients_reach_plugin_apis_only() {
        let c = client(ClientSpec::javascript("web"));
        let geocoder = Api::new("Geocoder", [Role::EVALUATOR]);
        assert_eq!(
            decide(&c, &geocoder, &facts(OriginEvidence::Missing, None)),
            Err(RejectionKind::NotPluginApi)
        );
    }

    #[test]
    fn roles_are_the_intersection_of_client_account_and_token() {
        let c = client(ClientSpec::native("srv"));
        let profile = Api::new("Profile", [Role::USER]);
        let f = facts(OriginEvidence::Missing, None);
        assert!(decide(&c, &profile, &f).is_ok());
        let scope = RoleSet::from_iter([Role::EVALUATOR]);
        let err = authorize(
            &c,
            &account(),
            &profile,
            &f,
            Some(&scope),
            CredentialSource::BearerToken,
        )
        .unwrap_err();
        assert_eq!(err.kind(), RejectionKind::InsufficientRole);
        let mut reduced = account();
        reduced.roles = RoleSet::from_iter([Role::EVALUATOR]);
        let err = authorize(
            &c,
            &reduced,
            &profile,
            &f,
            None,
            CredentialSource::BearerToken,
        )
        .unwrap_err();
        assert_eq!(err.kind(), RejectionKind::InsufficientRole);
    }

    #[test]
    fn inactive_and_expired_clients_are_refused_first() {
        let f = facts(OriginEvidence::Missing, None);
        let c = client(ClientSpec::javascript("web").status(Status::Inactive));
        assert_eq!(decide(&c, &tiles(), &f), Err(RejectionKind::Inactive));
        let c = client(ClientSpec::javascript("web").expires_at(Some(NOW)));
        assert_eq!(decide(&c, &tiles(), &f), Err(RejectionKind::Expired));
        let c = client(ClientSpec::javascript("web"));
        let off = account().with_status(Status::Inactive);
        let err = authorize(&c, &off, &tiles(), &f, None, CredentialSource::ApiKey).unwrap_err();
        assert_eq!(err.kind(), RejectionKind::Inactive);
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
