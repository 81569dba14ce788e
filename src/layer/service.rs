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
use crate::client::{ClientKind, CredentialKind, KeyDigest};
use crate::credentials::Credential;
use crate::error::{Rejection, RejectionKind};
use crate::policy::{
    Api, Authorized, CredentialSource, OriginEvidence, RequestFacts, RouteAccess, authorize,
};
use crate::store::Resolved;
use crate::token::VerifyError;

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
        let api = match config.routes.lookup(req.method(), req.uri().path()) {
            None => return self.reject(RejectionKind::RouteNotAllowed.into()),
            Some(route) => match route.access() {
                RouteAccess::Public => return ResponseFuture::calling(self.inner.call(req), None),
                RouteAccess::Api(api) => api.clone(),
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
        let check = Box::pin(check(self.config.clone(), lookup, api, req));
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

/// Looks the credential up, then decides. The request is not borrowed across the await, so
/// only `B: Send` is needed.
async fn check<B>(
    config: Arc<Config>,
    lookup: Lookup,
    api: Arc<Api>,
    req: Request<B>,
) -> Checked<B> {
    let found = resolve(&config, lookup).await;
    let outcome = found.and_then(|(resolved, scope, source)| {
        let client = &resolved.client;
        let client_ip = if client.ips().is_empty() {
            None
        } else {
            let peer = config.peer_ip(req.extensions());
            config
                .proxies
                .client_ip(peer, req.headers(), config.forwarded)
        };
        let facts = RequestFacts {
            origin: OriginEvidence::from_headers(req.headers()),
            client_ip,
            now: config.clock.now(),
        };
        authorize(
            client,
            &resolved.account,
            &api,
            &facts,
            scope.as_ref(),
            source,
        )
        .inspect_err(|r| {
            tracing::debug!(
                client = %client.id(),
                api = api.name(),
                reason = r.error_code(),
                kind = ?r.kind(),
                "request refused"
            );
        })
    });
    (req, outcome)
}

type Found = (Resolved, Option<crate::client::RoleSet>, CredentialSource);

async fn resolve(config: &Config, lookup: Lookup) -> Result<Found, Rejection> {
    let unavailable = || Rejection::new(RejectionKind::StoreUnavailable);
    match lookup {
        Lookup::Key(digest) => {
            let found = within_budget(config, config.store.resolve_key(&digest))
                .await
                .ok_or_else(unavailable)?
                .map_err(|e| {
                    tracing::warn!(error = %e, "client store failed");
                    unavailable()
                })?;
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
}
