//! [`AuthService`]: the cheap, synchronous checks at `call`, and the store lookup.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::{AuthLayer, AuthService};
//! use gis_auth::policy::RouteTable;
//! use gis_auth::store::InMemoryStore;
//! use tower_layer::Layer;
//!
//! let layer = AuthLayer::new(Arc::new(InMemoryStore::new()), RouteTable::new());
//! let svc: AuthService<()> = layer.layer(());
//! assert_eq!(svc.get_ref(), &());
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION};
use http::{Method, Request, Response};
use time::OffsetDateTime;
use tower_service::Service;
use tracing::Span;

use super::Config;
use super::body::ResponseBody;
use super::future::{Finish, ResponseFuture};
use super::principal::{CredentialSource, Principal};
use crate::client::{ClientKind, CredentialKind, KeyDigest, Restriction, RoleSet};
use crate::credentials::Credential;
use crate::limits::{Charge, Charged};
use crate::policy::{
    Finding, OriginEvidence, QuotaState, RequestFacts, RouteAccess, Rule, decide,
    next_utc_midnight, seconds_until,
};
use crate::rejection::Rejection;
use crate::rule::RejectionKind;
use crate::store::Resolved;
use crate::token::{VerifiedToken, VerifyError};

/// An admitted request: who is calling, and what its response must carry.
#[derive(Debug)]
pub(crate) struct Authorized {
    pub(crate) principal: Principal,
    pub(crate) vary_origin: bool,
    pub(crate) quota: Option<QuotaState>,
    pub(crate) meter: Option<super::Meter>,
    /// When the request was decided.
    pub(crate) now: OffsetDateTime,
}

/// The service [`AuthLayer`](super::AuthLayer) wraps around another.
///
/// With a store, token verifier and usage counter that answer at once (the in-memory ones),
/// every check runs inside `call`: no future is boxed and no timer is set. Only one that has
/// to wait (over a network) makes `call` return a future that waits for it, within the
/// layer's time budget.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> AuthService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// What to look up when the store or the token verifier has to wait.
pub(crate) enum Lookup {
    Key(KeyDigest),
    Token(String),
}

/// Where a check that has to wait starts.
pub(crate) enum Start {
    /// At the store lookup.
    Lookup(Lookup),
    /// At counting the refusal of a known client.
    Refused(Box<Refused>),
    /// At the shared rate limit, if any, then charging the quota of an allowed request.
    Charge(Box<Prepared>),
}

pub(crate) type Checked<B> = (Request<B>, Result<Authorized, Rejection>);
pub(crate) type CheckFuture<B> = Pin<Box<dyn Future<Output = Checked<B>> + Send>>;

/// What the checks made of a request without waiting.
enum Outcome {
    Admit(Finish),
    Reject(Response<Bytes>),
    Wait(Start, OffsetDateTime),
}

impl<S, B, ResB> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
    B: Send + 'static,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let config = &self.config;
        if config.allow_preflight
            && req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return ResponseFuture::calling(self.inner.call(req), None, Span::none());
        }
        let routes = config.policy.routes();
        let (route, api) = match routes.lookup_index(req.method(), req.uri().path()) {
            None => {
                let response = refuse(config, &RejectionKind::RouteNotAllowed.into());
                return ResponseFuture::rejected(response, Span::none());
            }
            Some(i) => match routes.routes()[i].access() {
                RouteAccess::Public => {
                    return ResponseFuture::calling(self.inner.call(req), None, Span::none());
                }
                RouteAccess::Api(api) => (i, api),
            },
        };
        // One span per guarded request: the API, then the client and the decision. Never a
        // credential.
        let span = tracing::debug_span!(
            "gis_auth",
            api = api.name(),
            client = tracing::field::Empty,
            decision = tracing::field::Empty,
            rule = tracing::field::Empty,
        );
        let outcome = span.in_scope(|| check_now(config, &mut req, route));
        match outcome {
            Outcome::Admit(finish) => {
                ResponseFuture::calling(self.inner.call(req), Some(finish), span)
            }
            Outcome::Reject(response) => ResponseFuture::rejected(response, span),
            Outcome::Wait(start, now) => {
                // The ready service goes into the future; a clone waits for the next
                // poll_ready.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let check = Box::pin(check(self.config.clone(), start, route, req, now));
                ResponseFuture::checking(check, inner, self.config.clone(), span)
            }
        }
    }
}

/// Every check that needs no waiting, in order: the credential, the store lookup (when the
/// store answers at once), the decision, the rate limit and the quota (when the counter
/// answers at once). On admission the credential is stripped and the principal inserted.
fn check_now<B>(config: &Arc<Config>, req: &mut Request<B>, route: usize) -> Outcome {
    let now = config.clock.now().to_offset(time::UtcOffset::UTC);
    let found = match config.credentials.extract(req.headers(), req.uri().query()) {
        Err(kind) => Err(kind.into()),
        Ok(None) => Err(RejectionKind::MissingCredential.into()),
        Ok(Some(Credential::ApiKey(key))) => {
            // A malformed or mis-checksummed key never reaches the store.
            if CredentialKind::ApiKey.check(&key).is_err() {
                Err(RejectionKind::MalformedCredential.into())
            } else {
                let digest = KeyDigest::of(&key);
                match config.store.resolve_key_now(&digest) {
                    Some(answer) => key_found(
                        answer.map_err(|e| store_failed("client store", &e)),
                        &digest,
                        now,
                    ),
                    None => return Outcome::Wait(Start::Lookup(Lookup::Key(digest)), now),
                }
            }
        }
        Ok(Some(Credential::Bearer(token))) => match &config.verifier {
            None => Err(RejectionKind::UnknownCredential.into()),
            Some(verifier) => match verifier.verify_now(token) {
                Some(answer) => token_found(Some(answer)),
                None => {
                    let lookup = Lookup::Token(token.to_owned());
                    return Outcome::Wait(Start::Lookup(lookup), now);
                }
            },
        },
    };
    let found = match found {
        Ok(found) => found,
        Err(rejection) => return Outcome::Reject(refuse(config, &rejection)),
    };
    let prepared = match prepare(config, found, route, req, now) {
        Ok(prepared) => prepared,
        Err(refused) => {
            return match record_refusal_now(config, &refused, now) {
                true => Outcome::Reject(refuse(config, &refused.2)),
                false => Outcome::Wait(Start::Refused(refused), now),
            };
        }
    };
    // A shared rate limiter is a round trip: the rest of the check waits for it.
    if shares_rate_limit(config, &prepared) {
        return Outcome::Wait(Start::Charge(Box::new(prepared)), now);
    }
    let charged = {
        let charge = prepared.charge();
        config.usage.charge_now(&charge)
    };
    let Some(charged) = charged else {
        return Outcome::Wait(Start::Charge(Box::new(prepared)), now);
    };
    let charged = charged.map_err(|e| store_failed("usage counter", &e));
    match finish(config, prepared, charged) {
        Ok(authorized) => Outcome::Admit(admit(config, req, authorized)),
        Err(rejection) => Outcome::Reject(refuse(config, &rejection)),
    }
}

/// The check of a request whose store, verifier or counter has to wait, from where
/// [`check_now`] stopped. The request is not borrowed across an await, so only `B: Send`
/// is needed.
async fn check<B>(
    config: Arc<Config>,
    start: Start,
    route: usize,
    req: Request<B>,
    now: OffsetDateTime,
) -> Checked<B> {
    let prepared = match start {
        Start::Lookup(lookup) => {
            let found = match resolve(&config, lookup, now).await {
                Ok(found) => found,
                Err(rejection) => return (req, Err(rejection)),
            };
            match prepare(&config, found, route, &req, now) {
                Ok(prepared) => prepared,
                Err(refused) => {
                    record_refusal(&config, &refused, now).await;
                    return (req, Err(refused.2));
                }
            }
        }
        Start::Refused(refused) => {
            record_refusal(&config, &refused, now).await;
            return (req, Err(refused.2));
        }
        Start::Charge(prepared) => *prepared,
    };
    let prepared = match limit_shared_rate(&config, prepared).await {
        Ok(prepared) => prepared,
        Err(rejection) => return (req, Err(rejection)),
    };
    let charged = {
        let charge = prepared.charge();
        fail_closed(&config, "usage counter", config.usage.charge(&charge)).await
    };
    let outcome = finish(&config, prepared, charged);
    (req, outcome)
}

/// The request's span, to note the client and the decision on. The span is at `debug`:
/// when no subscriber takes `debug` events at all, it is disabled, and `None` spares the
/// lookup of the current span on every request.
fn request_span() -> Option<Span> {
    tracing::level_enabled!(tracing::Level::DEBUG).then(Span::current)
}

/// Logs a refusal at `debug`, notes it on the request's span, and renders it.
pub(crate) fn refuse(config: &Config, rejection: &Rejection) -> Response<Bytes> {
    let rule = rejection.decision().and_then(|d| d.rule());
    if let Some(span) = request_span() {
        span.record("decision", rejection.error_code());
        if let Some(rule) = rule {
            span.record("rule", rule.as_str());
        }
    }
    tracing::debug!(
        reason = rejection.error_code(),
        kind = ?rejection.kind(),
        rule = rule.map(Rule::as_str),
        "request refused"
    );
    config.render(rejection)
}

/// A store or counter failure: logged at `warn`, answered with 503.
fn store_failed(what: &'static str, error: &dyn std::fmt::Display) -> Rejection {
    tracing::warn!(error = %error, "{what} failed");
    RejectionKind::Unavailable.into()
}

/// A request decided and within its rate limit, ready to be charged.
pub(crate) struct Prepared {
    who: Resolved,
    api: Arc<crate::policy::Api>,
    decision: crate::policy::Decision,
    shadowed: Vec<&'static str>,
    source: CredentialSource,
    cost: Option<u64>,
    limit: Option<u64>,
    now: OffsetDateTime,
}

impl Prepared {
    /// The one counter call that charges this request.
    fn charge(&self) -> Charge<'_> {
        let (client, account) = (&self.who.client, &self.who.account);
        Charge {
            limit: self.limit,
            enforce: !client.shadow().contains(Restriction::Quota),
            shadowed: &self.shadowed,
            ..Charge::new(
                &account.id,
                client.id(),
                self.now.date(),
                self.cost.unwrap_or(0),
            )
        }
    }
}

pub(crate) type Refused = (Resolved, Rule, Rejection);

type Found = (Resolved, Option<RoleSet>, CredentialSource);

/// The synchronous part: the policy decision and the rate limit.
fn prepare<B>(
    config: &Config,
    (who, scope, source): Found,
    route: usize,
    req: &Request<B>,
    now: OffsetDateTime,
) -> Result<Prepared, Box<Refused>> {
    if let Some(span) = request_span() {
        span.record("client", tracing::field::display(who.client.id()));
    }
    let route = &config.policy.routes().routes()[route];
    let RouteAccess::Api(api) = route.access() else {
        return Err(Box::new((
            who,
            Rule::Route,
            RejectionKind::RouteNotAllowed.into(),
        )));
    };
    let client_ip = if who.client.ips().is_empty() {
        None
    } else {
        config.warn_if_proxies_missing(req.headers());
        let peer = config.peer_ip(req.extensions());
        config
            .proxies
            .client_ip(peer, req.headers(), config.forwarded)
    };
    let decision = decide(
        &who.client,
        &who.account,
        route,
        api,
        &RequestFacts {
            method: req.method(),
            path: req.uri().path(),
            query: req.uri().query(),
            // As the address: read only for a client with rules that use it.
            origin: if who.client.origins().is_empty() {
                OriginEvidence::Missing
            } else {
                OriginEvidence::from_headers(req.headers())
            },
            client_ip,
            now,
            token_scope: scope.as_ref(),
            quota: None,
        },
    );
    if let Some(finding) = &decision.denied {
        let rule = finding.rule;
        let rejection = decision
            .rejection()
            .unwrap_or_else(|| RejectionKind::RouteNotAllowed.into());
        return Err(Box::new((who, rule, rejection)));
    }
    // A shared rate limiter is asked after this, by `limit_shared_rate`.
    if config.shared_rate_limiter.is_none()
        && let Some(limit) = who.client.rate_limit()
        && let Err(wait) = config.rate_limiter.check(who.client.id(), limit)
    {
        let rejection = rate_limited(decision, limit, wait);
        return Err(Box::new((who, Rule::RateLimit, rejection)));
    }
    let cost = api
        .request_cost()
        .of(req.method(), req.uri(), req.headers());
    let limit = cost
        .and(who.account.daily_quota)
        .map(|q| q.saturating_mul(crate::policy::TRANSACTION));
    let shadowed = decision.shadowed.iter().map(|f| f.rule.as_str()).collect();
    Ok(Prepared {
        who,
        api: api.clone(),
        decision,
        shadowed,
        source,
        cost,
        limit,
        now,
    })
}

/// The refusal of a request over its client's rate limit.
fn rate_limited(
    mut decision: crate::policy::Decision,
    limit: crate::client::RateLimit,
    wait: std::time::Duration,
) -> Rejection {
    decision.denied = Some(Finding {
        rule: Rule::RateLimit,
        kind: RejectionKind::RateLimited,
        reason: format!(
            "the client's rate limit is {} requests a second with bursts of {}",
            limit.per_second, limit.burst
        ),
    });
    decision
        .rejection()
        .unwrap_or_else(|| RejectionKind::RateLimited.into())
        .with_retry_after(wait.as_secs().max(1))
}

/// Whether the request's rate limit is kept by a shared limiter.
fn shares_rate_limit(config: &Config, prepared: &Prepared) -> bool {
    config.shared_rate_limiter.is_some() && prepared.who.client.rate_limit().is_some()
}

/// Counts the request against its client's rate limit in the shared limiter, if one is
/// configured (one round trip, within the budget: a failure is a 503).
async fn limit_shared_rate(config: &Config, prepared: Prepared) -> Result<Prepared, Rejection> {
    let (Some(limiter), Some(limit)) = (
        &config.shared_rate_limiter,
        prepared.who.client.rate_limit(),
    ) else {
        return Ok(prepared);
    };
    let verdict = fail_closed(
        config,
        "rate limiter",
        limiter.check(prepared.who.client.id(), limit),
    )
    .await?;
    let Err(wait) = verdict else {
        return Ok(prepared);
    };
    let Prepared {
        who, decision, now, ..
    } = prepared;
    let rejection = rate_limited(decision, limit, wait);
    let refused = (who, Rule::RateLimit, rejection);
    record_refusal(config, &refused, now).await;
    Err(refused.2)
}

/// What the quota charge made of a prepared request: the principal, or the refusal.
fn finish(
    config: &Arc<Config>,
    prepared: Prepared,
    charged: Result<Charged, Rejection>,
) -> Result<Authorized, Rejection> {
    let charged = charged?;
    let Prepared {
        who,
        api,
        mut decision,
        source,
        cost,
        limit,
        now,
        ..
    } = prepared;
    let (client, account) = (&who.client, &who.account);
    let quota = limit.map(|limit| QuotaState {
        limit,
        used: charged.used,
        reset: next_utc_midnight(now),
    });
    if charged.over {
        let finding = Finding {
            rule: Rule::Quota,
            kind: RejectionKind::QuotaExceeded,
            reason: format!(
                "the account's daily quota of {} transactions is used up",
                account.daily_quota.unwrap_or_default()
            ),
        };
        if !charged.admitted {
            decision.denied = Some(finding);
            let rejection = decision
                .rejection()
                .unwrap_or_else(|| RejectionKind::QuotaExceeded.into())
                .with_retry_after(seconds_until(next_utc_midnight(now), now));
            return Err(match quota {
                Some(q) => rejection.with_quota(q),
                None => rejection,
            });
        }
        decision.shadowed.push(finding);
    }
    for finding in &decision.shadowed {
        tracing::info!(
            target: "gis_auth::shadow",
            client = %client.id(),
            account = %account.id,
            api = api.name(),
            rule = finding.rule.as_str(),
            reason = %finding.reason,
            "report-only restriction would have refused the request"
        );
    }
    let meter = (api.has_handler_meter() && cost.is_some())
        .then(|| super::Meter::new(config.clone(), &who, &decision, now, quota));
    Ok(Authorized {
        principal: Principal {
            client_id: client.id().clone(),
            account_id: client.account_id().clone(),
            kind: client.kind(),
            roles: decision.roles,
            api: api.shared_name().clone(),
            source,
            item: decision.item,
            client: who.client,
        },
        vary_origin: decision.vary_origin,
        quota,
        meter,
        now,
    })
}

/// Counts the refusal of an identified client if the counter answers at once; `false`
/// when it has to wait. The request is refused whatever the counter does, so a counter
/// failure is only logged.
fn record_refusal_now(config: &Config, (who, rule, _): &Refused, now: OffsetDateTime) -> bool {
    match config.usage.record_refusal_now(
        &who.account.id,
        who.client.id(),
        now.date(),
        rule.as_str(),
    ) {
        None => false,
        Some(Ok(())) => true,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "usage counter failed to record a refusal");
            true
        }
    }
}

/// Counts the refusal of an identified client, for a counter that has to wait.
async fn record_refusal(config: &Config, refused: &Refused, now: OffsetDateTime) {
    let (who, rule, _) = refused;
    let record =
        config
            .usage
            .record_refusal(&who.account.id, who.client.id(), now.date(), rule.as_str());
    match within_budget(config, record).await {
        Some(Ok(())) | None => {}
        Some(Err(e)) => tracing::warn!(error = %e, "usage counter failed to record a refusal"),
    }
}

/// The client behind an API key digest, if the key is live.
fn key_found(
    answer: Result<Option<Resolved>, Rejection>,
    digest: &KeyDigest,
    now: OffsetDateTime,
) -> Result<Found, Rejection> {
    match answer? {
        Some(r)
            if r.client.kind() == ClientKind::JavaScript
                && r.client.credentials().accepts(digest, now) =>
        {
            Ok((r, None, CredentialSource::ApiKey))
        }
        _ => Err(RejectionKind::UnknownCredential.into()),
    }
}

/// The client behind a bearer token; `None` is a verifier that ran out of time.
fn token_found(answer: Option<Result<VerifiedToken, VerifyError>>) -> Result<Found, Rejection> {
    match answer {
        None => Err(RejectionKind::Unavailable.into()),
        Some(Ok(t)) => Ok((
            Resolved {
                client: t.client,
                account: t.account,
            },
            t.scope,
            CredentialSource::BearerToken,
        )),
        Some(Err(VerifyError::Invalid(kind))) => {
            Err(Rejection::new(match kind.status().as_u16() {
                401 => kind,
                _ => RejectionKind::UnknownCredential,
            }))
        }
        Some(Err(VerifyError::Store(e))) => Err(store_failed("client store", &e)),
    }
}

async fn resolve(config: &Config, lookup: Lookup, now: OffsetDateTime) -> Result<Found, Rejection> {
    match lookup {
        Lookup::Key(digest) => {
            let answer =
                fail_closed(config, "client store", config.store.resolve_key(&digest)).await;
            key_found(answer, &digest, now)
        }
        Lookup::Token(token) => match &config.verifier {
            None => Err(RejectionKind::UnknownCredential.into()),
            Some(verifier) => token_found(within_budget(config, verifier.verify(&token)).await),
        },
    }
}

/// Runs a store or counter call within the budget: its failure or a stall past the budget
/// is a 503, never an open door.
pub(crate) async fn fail_closed<T, E: std::fmt::Display>(
    config: &Config,
    what: &'static str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Rejection> {
    match within_budget(config, fut).await {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(store_failed(what, &e)),
        None => Err(RejectionKind::Unavailable.into()),
    }
}

/// Runs `fut` within the store budget; `None` when it ran out.
async fn within_budget<F: Future>(config: &Config, fut: F) -> Option<F::Output> {
    match config.backend_timeout {
        Some(budget) => {
            let out = tokio::time::timeout(budget, fut).await.ok();
            if out.is_none() {
                tracing::warn!(
                    budget_ms = budget.as_millis() as u64,
                    "client store did not answer in time"
                );
            }
            out
        }
        None => Some(fut.await),
    }
}

/// Removes the credentials and adds the principal, before the wrapped service runs; gives
/// what the response must carry.
pub(crate) fn admit<B>(config: &Config, req: &mut Request<B>, authorized: Authorized) -> Finish {
    if let Some(span) = request_span() {
        span.record("decision", "allow");
    }
    let source = authorized.principal.source();
    let finish = Finish {
        private: source == CredentialSource::ApiKey,
        vary_origin: authorized.vary_origin,
        quota: authorized
            .quota
            .map(|q| (q, authorized.now, config.quota_warning)),
        meter: authorized.meter.clone(),
    };
    if config.strip_credentials {
        req.headers_mut().remove(AUTHORIZATION);
        // A bearer request carries no API key parameter: it would have been refused.
        if source == CredentialSource::ApiKey {
            config.credentials.strip_in_place(req.uri_mut());
        }
    }
    req.extensions_mut().insert(authorized.principal);
    if let Some(meter) = authorized.meter {
        req.extensions_mut().insert(meter);
    }
    finish
}
