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

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION};
use http::{Method, Request, Response};
use tower_service::Service;

use super::Config;
use super::body::ResponseBody;
use super::future::ResponseFuture;
use crate::client::Restriction;
use crate::client::{ClientKind, CredentialKind, KeyDigest};
use crate::credentials::Credential;
use crate::error::{Rejection, RejectionKind};
use crate::policy::{
    CredentialSource, Finding, OriginEvidence, Principal, QuotaState, RequestFacts, RouteAccess,
    Rule, decide, next_utc_midnight, seconds_until,
};
use crate::store::Resolved;
use crate::token::VerifyError;
use crate::usage::Charge;

/// An admitted request: who is calling, and what its response must carry.
#[derive(Debug)]
pub(crate) struct Authorized {
    pub(crate) principal: Principal,
    pub(crate) vary_origin: bool,
    pub(crate) quota: Option<QuotaState>,
    pub(crate) meter: Option<super::Meter>,
}

/// The service [`AuthLayer`](super::AuthLayer) wraps around another.
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

/// What to look up once the cheap checks passed.
pub(crate) enum Lookup {
    Key(KeyDigest),
    Token(String),
}

pub(crate) type Checked<B> = (Request<B>, Result<Authorized, Rejection>);
pub(crate) type CheckFuture<B> = Pin<Box<dyn Future<Output = Checked<B>> + Send>>;

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

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let config = &self.config;
        if config.allow_preflight
            && req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return ResponseFuture::calling(self.inner.call(req), None);
        }
        let routes = config.policy.routes();
        let route = match routes.lookup_index(req.method(), req.uri().path()) {
            None => return self.reject(RejectionKind::RouteNotAllowed.into()),
            Some(i) => match routes.routes()[i].access() {
                RouteAccess::Public => return ResponseFuture::calling(self.inner.call(req), None),
                RouteAccess::Api(_) => i,
            },
        };
        let lookup = match config.credentials.extract(req.headers(), req.uri().query()) {
            Err(kind) => return self.reject(kind.into()),
            Ok(None) => return self.reject(RejectionKind::MissingCredential.into()),
            Ok(Some(Credential::ApiKey(key))) => {
                if CredentialKind::ApiKey.check(&key).is_err() {
                    return self.reject(RejectionKind::MalformedCredential.into());
                }
                Lookup::Key(KeyDigest::of(&key))
            }
            Ok(Some(Credential::Bearer(token))) => {
                if config.verifier.is_none() {
                    return self.reject(RejectionKind::UnknownCredential.into());
                }
                Lookup::Token(token.to_owned())
            }
        };
        // The ready service goes into the future; a fresh clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let check = Box::pin(check(self.config.clone(), lookup, route, req));
        ResponseFuture::checking(check, inner, self.config.clone())
    }
}

impl<S> AuthService<S> {
    fn reject<B>(&self, rejection: Rejection) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        tracing::debug!(reason = rejection.error_code(), kind = ?rejection.kind(), "request refused");
        ResponseFuture::rejected(self.config.render(&rejection))
    }
}

/// Looks the credential up, then decides, rate-limits and charges the quota. The request is
/// not borrowed across an await, so only `B: Send` is needed.
async fn check<B>(
    config: Arc<Config>,
    lookup: Lookup,
    route: usize,
    req: Request<B>,
) -> Checked<B> {
    let outcome = match resolve(&config, lookup).await {
        Ok(found) => match prepare(&config, found, route, &req) {
            Ok(prepared) => charge(&config, prepared).await,
            Err(refused) => {
                record_refusal(&config, &refused).await;
                Err(refused.2)
            }
        },
        Err(rejection) => Err(rejection),
    };
    (req, outcome)
}

/// A request decided and within its rate limit, ready to be charged.
struct Prepared {
    who: Resolved,
    api: Arc<crate::policy::Api>,
    decision: crate::policy::Decision,
    source: CredentialSource,
    cost: Option<u64>,
    now: time::OffsetDateTime,
}

type Refused = (Resolved, Rule, Rejection);

/// The synchronous part: the policy decision and the rate limit. The request is borrowed
/// here only, never across an await.
fn prepare<B>(
    config: &Config,
    (who, scope, source): Found,
    route: usize,
    req: &Request<B>,
) -> Result<Prepared, Box<Refused>> {
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
    let now = config.clock.now().to_offset(time::UtcOffset::UTC);
    let mut decision = decide(
        &who.client,
        &who.account,
        route,
        api,
        &RequestFacts {
            method: req.method(),
            path: req.uri().path(),
            query: req.uri().query(),
            origin: OriginEvidence::from_headers(req.headers()),
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
    if let Some(limit) = who.client.rate_limit()
        && let Err(wait) = config.rate_limiter.check(who.client.id(), limit)
    {
        decision.denied = Some(Finding {
            rule: Rule::RateLimit,
            kind: RejectionKind::RateLimited,
            reason: format!(
                "the client's rate limit is {} requests a second with bursts of {}",
                limit.per_second, limit.burst
            ),
        });
        let rejection = decision
            .rejection()
            .unwrap_or_else(|| RejectionKind::RateLimited.into())
            .with_retry_after(wait.as_secs().max(1));
        return Err(Box::new((who, Rule::RateLimit, rejection)));
    }
    let cost = api
        .request_cost()
        .of(req.method(), req.uri(), req.headers());
    Ok(Prepared {
        who,
        api: api.clone(),
        decision,
        source,
        cost,
        now,
    })
}

/// Charges the account's quota (one counter round trip) and builds the principal.
async fn charge(config: &Arc<Config>, prepared: Prepared) -> Result<Authorized, Rejection> {
    let Prepared {
        who,
        api,
        mut decision,
        source,
        cost,
        now,
    } = prepared;
    let (client, account) = (&who.client, &who.account);
    let day = now.date();
    let limit = cost
        .and(account.daily_quota)
        .map(|q| q.saturating_mul(crate::policy::TRANSACTION));
    let shadowed: Vec<&'static str> = decision.shadowed.iter().map(|f| f.rule.as_str()).collect();
    let charge = Charge {
        limit,
        enforce: !client.shadow().contains(Restriction::Quota),
        shadowed: &shadowed,
        ..Charge::new(&account.id, client.id(), day, cost.unwrap_or(0))
    };
    let charged = fail_closed(config, "usage counter", config.usage.charge(&charge)).await?;
    let reset = next_utc_midnight(now);
    let quota = limit.map(|limit| QuotaState {
        limit,
        used: charged.used,
        reset,
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
                .with_retry_after(seconds_until(reset, now));
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
            client: client.clone(),
        },
        vary_origin: decision.vary_origin,
        quota,
        meter,
    })
}

/// Counts a refusal of an identified client and logs it; the request is refused whatever
/// the counter does, so a counter failure is only logged.
async fn record_refusal(config: &Config, refused: &Refused) {
    let (who, rule, rejection) = refused;
    tracing::debug!(
        client = %who.client.id(),
        rule = rule.as_str(),
        reason = rejection.error_code(),
        "request refused"
    );
    let day = config.clock.now().to_offset(time::UtcOffset::UTC).date();
    let record = config
        .usage
        .record_refusal(&who.account.id, who.client.id(), day, rule.as_str());
    match within_budget(config, record).await {
        Some(Ok(())) | None => {}
        Some(Err(e)) => tracing::warn!(error = %e, "usage counter failed to record a refusal"),
    }
}

type Found = (Resolved, Option<crate::client::RoleSet>, CredentialSource);

async fn resolve(config: &Config, lookup: Lookup) -> Result<Found, Rejection> {
    let unavailable = || Rejection::new(RejectionKind::StoreUnavailable);
    match lookup {
        Lookup::Key(digest) => {
            let found =
                fail_closed(config, "client store", config.store.resolve_key(&digest)).await?;
            let now = config.clock.now();
            match found {
                Some(r)
                    if r.client.kind() == ClientKind::JavaScript
                        && r.client.credentials().accepts(&digest, now) =>
                {
                    Ok((r, None, CredentialSource::ApiKey))
                }
                _ => {
                    tracing::debug!(reason = "invalid_token", "unknown API key");
                    Err(RejectionKind::UnknownCredential.into())
                }
            }
        }
        Lookup::Token(token) => {
            let Some(verifier) = &config.verifier else {
                return Err(RejectionKind::UnknownCredential.into());
            };
            match within_budget(config, verifier.verify(&token)).await {
                None => Err(unavailable()),
                Some(Ok(t)) => Ok((
                    Resolved {
                        client: t.client,
                        account: t.account,
                    },
                    t.scope,
                    CredentialSource::BearerToken,
                )),
                Some(Err(VerifyError::Invalid(kind))) => {
                    tracing::debug!(reason = "invalid_token", kind = ?kind, "bearer token refused");
                    Err(Rejection::new(match kind.status().as_u16() {
                        401 => kind,
                        _ => RejectionKind::UnknownCredential,
                    }))
                }
                Some(Err(VerifyError::Store(e))) => {
                    tracing::warn!(error = %e, "client store failed");
                    Err(unavailable())
                }
            }
        }
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
        Some(Err(e)) => {
            tracing::warn!(error = %e, "{what} failed");
            Err(RejectionKind::StoreUnavailable.into())
        }
        None => Err(RejectionKind::StoreUnavailable.into()),
    }
}

/// Runs `fut` within the store budget; `None` when it ran out.
async fn within_budget<F: Future>(config: &Config, fut: F) -> Option<F::Output> {
    match config.store_timeout {
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

/// Removes the credentials and adds the principal, before the wrapped service runs.
pub(crate) fn admit<B>(config: &Config, req: &mut Request<B>, authorized: Authorized) {
    if config.strip_credentials {
        req.headers_mut().remove(AUTHORIZATION);
        if req.uri().query().is_some() {
            let stripped = config.credentials.strip_from_uri(req.uri());
            *req.uri_mut() = stripped;
        }
    }
    req.extensions_mut().insert(authorized.principal);
    if let Some(meter) = authorized.meter {
        req.extensions_mut().insert(meter);
    }
}
