//! The check pipeline, written once as a sequence of named steps: the credential
//! ([`Check::start`]), the caller it identifies ([`Identified`]), the policy's decision and
//! the rate limit, the quota charge of an [`Admitted`] request, and the [`Verdict`]. A step
//! that needs a backend says so ([`Step`]); the drivers in `drive.rs` answer it, at once
//! inside `call` when the backend can, or by waiting, and hand the answer to the next step.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::AuthLayer;
//! use gis_auth::policy::RouteTable;
//! use gis_auth::store::InMemoryStore;
//! use http::Request;
//! use tower::{ServiceExt, service_fn};
//! use tower_layer::Layer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let routes = RouteTable::new().route(http::Method::GET, "/geocode",
//!     gis_auth::policy::Api::new("Geocoder", []))?;
//! let svc = AuthLayer::new(Arc::new(InMemoryStore::new()), routes)
//!     .layer(service_fn(|_: Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) }));
//! // No credential: the first step refuses.
//! let res = svc.oneshot(Request::get("/geocode").body(())?).await?;
//! assert_eq!(res.status(), 401);
//! # Ok(()) }
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use time::{Date, OffsetDateTime};

use super::budget::backend_failed;
use super::config::{Config, report_shadowed, request_span};
use super::meter::Meter;
use super::principal::{CredentialSource, Principal};
use super::response::{LatestQuota, QuotaHeaders, ResponseExtras};
use crate::client::{ClientKind, CredentialKind, KeyDigest, RateLimit, Restriction, RoleSet};
use crate::credentials::{CredentialRules, PresentedCredential};
use crate::error::BackendError;
use crate::limits::{
    Charge, ChargeRateLimits, Charged, RateLimited, RateVerdict, Refused, Seen, SharedRateLimiter,
};
use crate::policy::{
    Api, Decision, OriginEvidence, PathPattern, QuotaFacts, RateScope, RequestFacts, Rule,
    daily_limit, decide, decide_quota, rate_limit_finding,
};
use crate::rejection::{Denial, Rejection};
use crate::restrict::RequestOrigin;
use crate::rule::RejectionKind;
use crate::signed::{SignedTileUrl, is_signed_url_param};
use crate::store::Resolved;
use crate::token::{VerifiedToken, VerifyError};

/// The guarded route a request is for, borrowed from the layer's route table: its path
/// pattern (items are read from it) and its API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'c> {
    pub(crate) pattern: &'c Arc<PathPattern>,
    pub(crate) api: &'c Arc<Api>,
}

/// One request's check: the route it is for and the time it is decided at. The steps are
/// its methods; each gives the next [`Step`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check<'c> {
    target: Target<'c>,
    now: OffsetDateTime,
}

/// A check that has to wait for a backend: its route held by handles of its own, so that
/// it can outlive `call`. Handles are taken only then; inside `call` the check borrows.
#[derive(Debug)]
pub(crate) struct HeldCheck {
    pattern: Arc<PathPattern>,
    api: Arc<Api>,
    now: OffsetDateTime,
}

impl HeldCheck {
    /// The check, borrowing its route from here.
    pub(crate) fn check(&self) -> Check<'_> {
        Check {
            target: Target {
                pattern: &self.pattern,
                api: &self.api,
            },
            now: self.now,
        }
    }
}

/// What the check needs next. `Token` is how a bearer token is held: borrowed from the
/// request while the check runs inside `call`, owned once it waits.
pub(crate) enum Step<Token> {
    /// The client behind an API key (sent in the query or in a header): ask the store,
    /// then [`Check::key_found`].
    NeedKey(KeyDigest, CredentialSource),
    /// The client behind a bearer token: ask the verifier, then [`Check::token_verified`].
    NeedToken(Token),
    /// The client a signed URL names: ask the store, then [`Check::signed_found`].
    NeedSignedClient(SignedTileUrl),
    /// The shared rate limiter's word: then [`Check::rate_checked`].
    NeedRate(SharedRateCheck),
    /// The usage counter's answer to [`Admitted::charge`]: then [`Check::charged`].
    NeedCharge(Admitted),
    /// The refusal of an identified client, to count: then [`Refusal::recorded`].
    NeedRefusalRecord(Refusal),
    /// The check is over.
    Done(Verdict),
}

/// How a checked request goes on.
pub(crate) enum Conclusion {
    /// To the wrapped service, with what its response must carry.
    Call(ResponseExtras),
    /// Answered with a refusal, not passed on.
    Answer(Response<Bytes>),
}

/// How a check ends.
pub(crate) enum Verdict {
    /// The request goes to the wrapped service.
    Admit(Authorized),
    /// The request is refused.
    Refuse(Rejection),
}

/// A caller its credential identified.
struct Identified {
    who: Resolved,
    /// The roles a bearer token was narrowed to.
    scope: Option<RoleSet>,
    source: CredentialSource,
    /// The signed URL that identified the caller, its signature verified.
    signed: Option<SignedTileUrl>,
}

/// A request the policy allowed, on its way through its rate limit to its charge.
pub(crate) struct Admitted {
    who: Resolved,
    decision: Decision,
    /// The rules of `decision.shadowed`, for the usage statistics.
    shadowed: Vec<Rule>,
    source: CredentialSource,
    /// What the route's price list says the request costs, if it is priced.
    cost: Option<u64>,
    /// The caller's address, for the [`Principal`].
    caller_ip: Option<IpAddr>,
    /// For a signed URL: how its answer is cached and its parameters removed.
    signed: Option<SignedAnswer>,
    /// The rate limits its charge applies, when the usage counter applies them (none when
    /// they were checked before the charge).
    rate_limits: ChargeRateLimits,
    /// Where it came from, for a request report-only findings would have refused (boxed:
    /// rare, and the steps stay small).
    seen: Option<Box<Seen>>,
}

/// What a signed URL says of its answer and its request.
#[derive(Debug, Clone, Copy)]
struct SignedAnswer {
    /// The seconds left before the URL expires: the longest its answer may be cached.
    max_age: u64,
    /// The query holds nothing but the URL's parameters (it is removed whole).
    only_signed: bool,
}

/// A request waiting for the shared rate limiter's word on one of its rate limits.
pub(crate) struct SharedRateCheck {
    pub(crate) limiter: Arc<dyn SharedRateLimiter>,
    pub(crate) limit: RateLimit,
    /// Whose limit: the client's, or its account's.
    pub(crate) scope: RateScope,
    pub(crate) admitted: Admitted,
}

impl SharedRateCheck {
    /// Asks the shared limiter to count the request against the limit.
    pub(crate) async fn ask(&self) -> Result<RateVerdict, BackendError> {
        let who = &self.admitted.who;
        match self.scope {
            RateScope::Client => self.limiter.check(who.client.id(), self.limit).await,
            RateScope::Account => {
                self.limiter
                    .check_account(&who.account.id, self.limit)
                    .await
            }
        }
    }
}

/// The refusal of an identified client: who, by which rule, the rejection, and where the
/// request came from (not known for a rate limit's refusal).
pub(crate) struct Refusal {
    pub(crate) who: Resolved,
    pub(crate) rule: Rule,
    pub(crate) rejection: Rejection,
    pub(crate) seen: Option<Box<Seen>>,
}

/// An admitted request: who is calling, and what its response must carry.
pub(crate) struct Authorized {
    principal: Principal,
    vary_origin: bool,
    quota: Option<QuotaHeaders>,
    meter: Option<Meter>,
    signed: Option<SignedAnswer>,
}

fn refuse<T>(rejection: impl Into<Rejection>) -> Step<T> {
    Step::Done(Verdict::Refuse(rejection.into()))
}

impl<'c> Check<'c> {
    pub(crate) fn new(target: Target<'c>, now: OffsetDateTime) -> Self {
        Self { target, now }
    }

    /// The check, holding its route, so that it can wait.
    pub(crate) fn hold(&self) -> HeldCheck {
        HeldCheck {
            pattern: self.target.pattern.clone(),
            api: self.target.api.clone(),
            now: self.now,
        }
    }

    /// The verdict, its refusal written in the format of the route's API.
    pub(crate) fn formatted(&self, verdict: Verdict) -> Verdict {
        match verdict {
            Verdict::Refuse(rejection) => {
                Verdict::Refuse(rejection.in_format(self.target.api.refusal_format()))
            }
            admit => admit,
        }
    }

    /// The UTC day the request is counted on.
    pub(crate) fn day(&self) -> Date {
        self.now.date()
    }

    /// The one counter call that charges an admitted request: its cost and statistics on
    /// the request's day, its API, and its client's last use.
    pub(crate) fn charge<'a>(&'a self, admitted: &'a Admitted) -> Charge<'a> {
        let (client, account) = (&admitted.who.client, &admitted.who.account);
        let cost = admitted.cost;
        Charge {
            limit: cost.and(account.plan.daily_quota).map(daily_limit),
            monthly_limit: cost.and(account.plan.monthly_quota).map(daily_limit),
            enforce: !client.shadow().contains(Restriction::Quota),
            shadowed: &admitted.shadowed,
            rate_limits: admitted.rate_limits,
            api: Some(self.target.api.name()),
            seen: admitted.seen.as_deref(),
            at: Some(self.now),
            ..Charge::new(&account.id, client.id(), self.day(), cost.unwrap_or(0))
        }
    }

    /// The counter's record of a refusal: its rule, where it came from, and its client's
    /// last use.
    pub(crate) fn refused<'a>(&self, refusal: &'a Refusal) -> Refused<'a> {
        let who = &refusal.who;
        Refused::new(&who.account.id, who.client.id(), self.day(), refusal.rule)
            .seen(refusal.seen.as_deref())
            .at(self.now)
    }

    /// The first step: the credential. A malformed or mis-checksummed key never reaches the
    /// store.
    #[inline]
    pub(crate) fn start<'r, B>(&self, config: &Config, req: &'r Request<B>) -> Step<&'r str> {
        match config.credentials.extract(req.headers(), req.uri().query()) {
            Err(kind) => refuse(kind),
            Ok(None) => refuse(RejectionKind::MissingCredential),
            Ok(Some(PresentedCredential::ApiKey(key))) => {
                api_key_step(&key, CredentialSource::ApiKey)
            }
            Ok(Some(PresentedCredential::ApiKeyHeader(key))) => {
                api_key_step(key, CredentialSource::ApiKeyHeader)
            }
            Ok(Some(PresentedCredential::Bearer(token))) => Step::NeedToken(token),
            Ok(Some(PresentedCredential::SignedUrl(query))) => match &config.signer {
                // Signed URLs are only extracted with a signer: this is not reached.
                None => refuse(RejectionKind::UnknownCredential),
                Some(signer) => match signer.parse(query, self.now) {
                    Ok(url) => Step::NeedSignedClient(url),
                    Err(kind) => refuse(kind),
                },
            },
        }
    }

    /// The store's answer for the client a signed URL names: the client, if the URL's
    /// signature binds its current credential.
    #[inline]
    pub(crate) fn signed_found<T, B>(
        &self,
        config: &Config,
        req: &Request<B>,
        url: SignedTileUrl,
        answer: Result<Option<Resolved>, Rejection>,
    ) -> Step<T> {
        let who = match answer {
            Err(rejection) => return refuse(rejection),
            Ok(None) => return refuse(RejectionKind::UnknownCredential),
            Ok(Some(who)) => who,
        };
        let Some(signer) = &config.signer else {
            return refuse(RejectionKind::UnknownCredential);
        };
        if let Err(kind) = signer.verify(&url, &who.client) {
            return refuse(kind);
        }
        let identified = Identified {
            who,
            scope: None,
            source: CredentialSource::SignedUrl,
            signed: Some(url),
        };
        self.identified(config, req, identified)
    }

    /// The store's answer for an API key: the client, if the key is live.
    #[inline]
    pub(crate) fn key_found<T, B>(
        &self,
        config: &Config,
        req: &Request<B>,
        digest: &KeyDigest,
        source: CredentialSource,
        answer: Result<Option<Resolved>, Rejection>,
    ) -> Step<T> {
        match answer {
            Err(rejection) => refuse(rejection),
            Ok(Some(who))
                if who.client.kind() == ClientKind::JavaScript
                    && who.client.credentials().accepts(digest, self.now) =>
            {
                let identified = Identified {
                    who,
                    scope: None,
                    source,
                    signed: None,
                };
                self.identified(config, req, identified)
            }
            Ok(_) => refuse(RejectionKind::UnknownCredential),
        }
    }

    /// The verifier's answer for a bearer token; `None` is a verifier that ran out of time.
    #[inline]
    pub(crate) fn token_verified<T, B>(
        &self,
        config: &Config,
        req: &Request<B>,
        answer: Option<Result<VerifiedToken, VerifyError>>,
    ) -> Step<T> {
        match answer {
            None => refuse(RejectionKind::Unavailable),
            Some(Ok(token)) => {
                let identified = Identified {
                    who: Resolved {
                        client: token.client,
                        account: token.account,
                    },
                    scope: token.scope,
                    source: CredentialSource::BearerToken,
                    signed: None,
                };
                self.identified(config, req, identified)
            }
            Some(Err(VerifyError::Invalid(kind))) => refuse(match kind.status().as_u16() {
                401 => kind,
                _ => RejectionKind::UnknownCredential,
            }),
            Some(Err(VerifyError::Store(e))) => refuse(backend_failed("client store", &e)),
        }
    }

    /// The policy's decision on an identified caller, then its rate limit: in this process,
    /// or by asking the shared limiter.
    #[inline]
    fn identified<T, B>(
        &self,
        config: &Config,
        req: &Request<B>,
        Identified {
            who,
            scope,
            source,
            signed,
        }: Identified,
    ) -> Step<T> {
        if let Some(span) = request_span() {
            span.record("client", tracing::field::display(who.client.id()));
        }
        // The caller's address: for the handlers (the admin API's lock-out guard), and
        // for the IP rules of a client that has them.
        let caller_ip = config.proxies.client_ip(
            config.peer_ip(req.extensions()),
            req.headers(),
            config.forwarded,
        );
        let client_ip = if who.client.ips().is_empty() {
            None
        } else {
            config.warn_if_proxies_missing(req.headers());
            caller_ip
        };
        let facts = RequestFacts {
            method: req.method(),
            path: req.uri().path(),
            query: req.uri().query(),
            // As the address: read only for a client with rules that use it (a signed
            // URL's scope replaces them).
            origin: if who.client.origins().is_empty() || signed.is_some() {
                OriginEvidence::Missing
            } else {
                OriginEvidence::from_headers(req.headers())
            },
            client_ip,
            now: self.now,
            token_scope: scope.as_ref(),
            quota: None,
            signed: signed.as_ref().map(SignedTileUrl::scope),
        };
        let Target { pattern, api } = self.target;
        let mut decision = decide(&who.client, &who.account, pattern, api, &facts);
        if let Some(finding) = decision.denied.take() {
            let Denial { rule, rejection } = decision.deny(finding);
            return Step::NeedRefusalRecord(Refusal {
                who,
                rule,
                rejection,
                seen: Some(seen_of(&facts, req.headers(), caller_ip)),
            });
        }
        // A request the API cannot price within its limits is refused before any charge.
        let cost = match api
            .request_cost()
            .of(req.method(), req.uri(), req.headers())
        {
            Ok(cost) => cost,
            Err(unpriceable) => {
                tracing::debug!(reason = unpriceable.reason(), "request cannot be priced");
                return refuse(RejectionKind::Unpriceable);
            }
        };
        let seen =
            (!decision.shadowed.is_empty()).then(|| seen_of(&facts, req.headers(), caller_ip));
        let admitted = Admitted {
            seen,
            shadowed: decision.shadowed.iter().map(|f| f.rule).collect(),
            cost,
            who,
            decision,
            source,
            caller_ip,
            signed: signed.map(|url| SignedAnswer {
                max_age: url.cache_lifetime(self.now),
                only_signed: url.has_only_signed_params(),
            }),
            rate_limits: ChargeRateLimits::default(),
        };
        rate_limits(config, admitted, RateScope::Client)
    }

    /// The shared rate limiter's answer: on to the account's limit after the client's, or
    /// to the charge.
    pub(crate) fn rate_checked<T>(
        &self,
        config: &Config,
        rate: SharedRateCheck,
        answer: Result<RateVerdict, Rejection>,
    ) -> Step<T> {
        let SharedRateCheck {
            limit,
            scope,
            admitted,
            ..
        } = rate;
        match answer {
            Err(rejection) => refuse(rejection),
            Ok(RateVerdict::RetryAfter(wait)) => {
                Step::NeedRefusalRecord(rate_refusal(admitted, scope, limit, wait))
            }
            Ok(RateVerdict::Allow) => match scope {
                RateScope::Client => rate_limits(config, admitted, RateScope::Account),
                RateScope::Account => Step::NeedCharge(admitted),
            },
        }
    }

    /// The counter's answer to the charge, decided by the policy's quota rule; the verdict.
    #[inline]
    pub(crate) fn charged<T>(
        &self,
        config: &Arc<Config>,
        admitted: Admitted,
        answer: Result<Charged, Rejection>,
    ) -> Step<T> {
        let charged = match answer {
            Ok(charged) => charged,
            Err(rejection) => return refuse(rejection),
        };
        if let Some(limited) = charged.rate_limited {
            // The counter applied the rate limits, and counted this refusal itself.
            let (scope, limit, wait) = match limited {
                RateLimited::Client(wait) => (RateScope::Client, admitted.rate_limits.client, wait),
                RateLimited::Account(wait) => {
                    (RateScope::Account, admitted.rate_limits.account, wait)
                }
            };
            return match limit {
                Some(limit) => rate_refusal(admitted, scope, limit, wait).recorded(),
                None => refuse(backend_failed(
                    "usage counter",
                    &BackendError::new("refused by a rate limit the charge did not carry"),
                )),
            };
        }
        let Admitted {
            who,
            mut decision,
            source,
            cost,
            caller_ip,
            signed,
            ..
        } = admitted;
        if cost.is_some() {
            let usage = QuotaFacts::Charged {
                used: charged.used,
                monthly_used: charged.monthly_used,
                over_daily: charged.over,
                over_monthly: charged.over_monthly,
            };
            decide_quota(&mut decision, &who.client, &who.account, usage, self.now);
        }
        if let Some(events) = &config.events {
            if cost.is_some() {
                events.charged(&who, &charged, self.now);
            }
            events.used(&who, self.now);
        }
        if let Some(finding) = decision.denied.take() {
            // The counter counted this refusal itself.
            let denial = decision.deny(finding);
            let rejection = denial.rejection.retry_at_quota_reset(self.now);
            return refuse(rejection.of_client(who.client.id()));
        }
        report_shadowed(&who, &decision);
        let api = self.target.api;
        // A handler priced by its body charges the rest through a meter, whose latest
        // charge the response's quota headers then report.
        let metered = (api.has_handler_meter() && cost.is_some())
            .then(|| Arc::new(LatestQuota::new(decision.quota)));
        let meter = metered.clone().map(|latest| {
            let format = api.refusal_format();
            Meter::new(config.clone(), &who, &decision, self.now, latest, format)
        });
        let quota = decision.quota.map(|quota| QuotaHeaders {
            quota,
            now: self.now,
            warning: config.quota_warning,
            latest: metered,
        });
        Step::Done(Verdict::Admit(Authorized {
            principal: Principal {
                roles: decision.roles,
                api: api.shared_name().clone(),
                source,
                item: decision.item,
                client: who.client,
                caller_ip,
            },
            vary_origin: decision.vary_origin,
            quota,
            meter,
            signed,
        }))
    }
}

/// Where a refused or report-only request came from, for the statistics: its origin (read
/// again when the policy did not need it) and its caller's network.
fn seen_of(
    facts: &RequestFacts<'_>,
    headers: &http::HeaderMap,
    caller_ip: Option<IpAddr>,
) -> Box<Seen> {
    let evidence = match facts.origin {
        OriginEvidence::Missing => OriginEvidence::from_headers(headers),
        read => read,
    };
    let origin = match evidence {
        OriginEvidence::Origin(value) => RequestOrigin::from_origin_header(value),
        OriginEvidence::Referer(value) => RequestOrigin::from_referer_header(value),
        OriginEvidence::Missing | OriginEvidence::Unusable => None,
    };
    Box::new(Seen::new(origin, caller_ip))
}

/// The store lookup of an API key, once its format and checksum are right.
fn api_key_step<T>(key: &str, source: CredentialSource) -> Step<T> {
    if CredentialKind::ApiKey.check(key).is_err() {
        refuse(RejectionKind::MalformedCredential)
    } else {
        Step::NeedKey(KeyDigest::of(key), source)
    }
}

/// The rate limits an admitted request meets from `scope` on (its client's, then the one
/// its account's clients share), counted in this process or by asking the shared limiter;
/// then its charge. A request its client's limit refuses is not counted against its
/// account's. A usage counter that applies the shared limits itself is handed both with
/// the charge instead: one call for the limits and the charge.
fn rate_limits<T>(config: &Config, mut admitted: Admitted, mut scope: RateScope) -> Step<T> {
    if config.rate_limits_in_charge {
        admitted.rate_limits = ChargeRateLimits {
            client: admitted.who.client.rate_limit(),
            account: admitted.who.account.plan.rate_limit,
        };
        return Step::NeedCharge(admitted);
    }
    loop {
        let limit = match scope {
            RateScope::Client => admitted.who.client.rate_limit(),
            RateScope::Account => admitted.who.account.plan.rate_limit,
        };
        if let Some(limit) = limit {
            if let Some(limiter) = &config.shared_rate_limiter {
                return Step::NeedRate(SharedRateCheck {
                    limiter: limiter.clone(),
                    limit,
                    scope,
                    admitted,
                });
            }
            let who = &admitted.who;
            let verdict = match scope {
                RateScope::Client => config.rate_limiter.check(who.client.id(), limit),
                RateScope::Account => config.rate_limiter.check_account(&who.account.id, limit),
            };
            if let RateVerdict::RetryAfter(wait) = verdict {
                return Step::NeedRefusalRecord(rate_refusal(admitted, scope, limit, wait));
            }
        }
        match scope {
            RateScope::Client => scope = RateScope::Account,
            RateScope::Account => return Step::NeedCharge(admitted),
        }
    }
}

/// The refusal of a request over a rate limit, by the policy's rate-limit rule, with the
/// limiter's `Retry-After`.
fn rate_refusal(
    admitted: Admitted,
    scope: RateScope,
    limit: RateLimit,
    wait: std::time::Duration,
) -> Refusal {
    let Admitted { who, decision, .. } = admitted;
    let Denial { rule, rejection } = decision.deny(rate_limit_finding(scope, limit));
    Refusal {
        who,
        rule,
        rejection: rejection.with_retry_after(wait.as_secs().max(1)),
        seen: None,
    }
}

impl Refusal {
    /// The refusal, counted (or not: the request is refused whatever the counter does).
    pub(crate) fn recorded<T>(self) -> Step<T> {
        refuse(self.rejection.of_client(self.who.client.id()))
    }
}

impl Step<&str> {
    /// The step, holding what it borrowed from the request, so that it can wait.
    pub(crate) fn into_owned(self) -> Step<String> {
        match self {
            Step::NeedKey(digest, source) => Step::NeedKey(digest, source),
            Step::NeedToken(token) => Step::NeedToken(token.to_owned()),
            Step::NeedSignedClient(url) => Step::NeedSignedClient(url),
            Step::NeedRate(rate) => Step::NeedRate(rate),
            Step::NeedCharge(admitted) => Step::NeedCharge(admitted),
            Step::NeedRefusalRecord(refusal) => Step::NeedRefusalRecord(refusal),
            Step::Done(verdict) => Step::Done(verdict),
        }
    }
}

impl Verdict {
    /// The end of the check: an admitted request loses its credentials and gains its
    /// [`Principal`] (and [`Meter`]), and gives what its response must carry; a refused one
    /// gives the response to send.
    pub(crate) fn conclude<B>(
        self,
        config: &Config,
        check: &Check<'_>,
        req: &mut Request<B>,
    ) -> Conclusion {
        let authorized = match self {
            Verdict::Admit(authorized) => authorized,
            Verdict::Refuse(rejection) => {
                let rejection = rejection.for_api(check.target.api.shared_name());
                return Conclusion::Answer(config.refuse(&rejection));
            }
        };
        if let Some(span) = request_span() {
            span.record("decision", "allow");
        }
        let source = authorized.principal.source();
        if config.strip_credentials {
            req.headers_mut().remove(AUTHORIZATION);
            // A request carries its credential in one place, or it would have been refused.
            match source {
                CredentialSource::ApiKey => config.credentials.strip_in_place(req.uri_mut()),
                CredentialSource::ApiKeyHeader => {
                    config.credentials.strip_from_headers(req.headers_mut());
                }
                CredentialSource::SignedUrl => match authorized.signed {
                    Some(SignedAnswer {
                        only_signed: true, ..
                    }) => CredentialRules::strip_query_in_place(req.uri_mut()),
                    _ => {
                        CredentialRules::strip_signed_in_place(req.uri_mut(), is_signed_url_param);
                    }
                },
                CredentialSource::BearerToken => {}
            }
        }
        req.extensions_mut().insert(authorized.principal);
        if let Some(meter) = authorized.meter {
            req.extensions_mut().insert(meter);
        }
        Conclusion::Call(ResponseExtras {
            private: source.is_api_key(),
            // The answer depends on a header a cache keys nothing on unless told.
            vary_api_key: match source {
                CredentialSource::ApiKeyHeader => config.credentials.header().cloned(),
                _ => None,
            },
            public_max_age: authorized.signed.map(|s| s.max_age),
            vary_origin: authorized.vary_origin,
            quota: authorized.quota,
        })
    }
}
