//! [`AuthService`]: the route lookup and the preflight exemption at `call`, then the check
//! (`check.rs`), driven inside `call` as far as the backends answer at once.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::{AuthLayer, AuthService};
//! use gis_auth::policy::RouteTable;
//! use gis_auth::store::InMemoryStore;
//! use tower_layer::Layer;
//!
//! let layer = AuthLayer::new(Arc::new(InMemoryStore::new()), RouteTable::new());
//! let mut svc: AuthService<()> = layer.layer(());
//! assert_eq!(svc.get_ref(), &());
//! *svc.get_mut() = ();
//! svc.into_inner();
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::ACCESS_CONTROL_REQUEST_METHOD;
use http::{Method, Request, Response};
use tower_service::Service;
use tracing::Span;

use super::body::ResponseBody;
use super::check::{Check, Conclusion, Target};
use super::config::Config;
use super::drive::{Driven, drive, drive_now};
use super::future::ResponseFuture;
use crate::policy::RouteAccess;
use crate::rule::RejectionKind;

/// The service [`AuthLayer`](super::AuthLayer) wraps around another.
///
/// With a store, token verifier and usage counter that answer at once (the in-memory ones),
/// every check runs inside `call`: no future is boxed and no timer is set. Only one that has
/// to wait (over a network) makes `call` return a future that waits for it, within the
/// layer's time budget.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    pub(super) config: Arc<Config>,
}

impl<S> AuthService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, to change.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, without the layer.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
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
        let target = match config
            .policy
            .routes()
            .lookup(req.method(), req.uri().path())
        {
            None => {
                let response = config.refuse(&RejectionKind::RouteNotAllowed.into());
                return ResponseFuture::rejected(response, Span::none());
            }
            Some(route) => match route.access() {
                RouteAccess::Public => {
                    return ResponseFuture::calling(self.inner.call(req), None, Span::none());
                }
                RouteAccess::Api(api) => Target {
                    pattern: route.shared_pattern(),
                    api,
                },
            },
        };
        // One span per guarded request: the API, then the client and the decision. Never a
        // credential.
        let span = tracing::debug_span!(
            "gis_auth",
            api = target.api.name(),
            client = tracing::field::Empty,
            decision = tracing::field::Empty,
            rule = tracing::field::Empty,
        );
        let now = config.clock.now().to_offset(time::UtcOffset::UTC);
        let check = Check::new(target, now);
        let driven = span.in_scope(|| drive_now(config, check, &req));
        match driven {
            Driven::Decided(verdict) => {
                match span.in_scope(|| verdict.conclude(config, &check, &mut req)) {
                    Conclusion::Call(extras) => {
                        ResponseFuture::calling(self.inner.call(req), Some(extras), span)
                    }
                    Conclusion::Answer(response) => ResponseFuture::rejected(response, span),
                }
            }
            Driven::Waiting(held, step) => {
                // The ready service goes into the future; a clone waits for the next
                // poll_ready.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let waiting = Box::pin(drive(config.clone(), held, step, req));
                ResponseFuture::checking(waiting, inner, span)
            }
        }
    }
}
