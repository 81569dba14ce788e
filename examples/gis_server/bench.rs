//! The baselines `scripts/load.sh` measures the guarded tile routes against, served with
//! `--unguarded-bench-addr` on an address of their own. Never in production: every route
//! there is served without access control.
//!
//! [`baselines`] is the example's own router ([`app::router_guarded_by`]) with a
//! [`FloorLayer`] where the auth layer stands, so the requests measured against the guarded
//! tiles take the same way through the same routes:
//!
//! - a request without an `apikey` parameter gets its tile as if no layer were there (the
//!   floor only finds that there is no parameter): the layer-less baseline;
//! - a request with one goes through the least any API-key check has to do: the floor.
//!
//! [`app::router_guarded_by`]: crate::app::router_guarded_by

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use gis_auth::ConfigError;
use gis_auth::client::{ClientId, ClientKind, KeyDigest};
use gis_auth::credentials::{CredentialRules, PresentedCredential};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::app::{self, Seeded};

/// The example's router with [`FloorLayer`] instead of the auth layer, knowing the API keys
/// `seeded` generated.
pub fn baselines(seeded: &Seeded) -> Result<Router, ConfigError> {
    let keys = seeded
        .generated
        .iter()
        .filter(|made| made.kind == ClientKind::JavaScript)
        .map(|made| (KeyDigest::of(made.credential.expose()), made.client.clone()))
        .collect();
    let floor = FloorLayer {
        keys: Arc::new(keys),
        rules: CredentialRules::default(),
    };
    app::router_guarded_by(seeded.store.clone(), app::Options::default(), |_auth| floor)
}

/// Puts [`Floor`] around a service.
#[derive(Clone)]
pub struct FloorLayer {
    keys: Arc<HashMap<KeyDigest, ClientId>>,
    rules: CredentialRules,
}

impl<S> Layer<S> for FloorLayer {
    type Service = Floor<S>;

    fn layer(&self, inner: S) -> Floor<S> {
        Floor {
            inner,
            keys: self.keys.clone(),
            rules: self.rules.clone(),
        }
    }
}

/// The steps no API-key check can skip, and nothing else: find the key in the query (or its
/// header), hash it (SHA-256), look the digest up, take the key out of the URI (and headers), hand the handler who is
/// calling (the client id, in the request's extensions) and mark the response
/// `Cache-Control: private`. An unknown key gets a bare 401; a request without any
/// credential passes untouched.
#[derive(Clone)]
pub struct Floor<S> {
    inner: S,
    keys: Arc<HashMap<KeyDigest, ClientId>>,
    rules: CredentialRules,
}

impl<S> Service<Request<Body>> for Floor<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let client = match self.rules.extract(req.headers(), req.uri().query()) {
            Ok(None) => {
                return FloorFuture::Inner {
                    fut: self.inner.call(req),
                    private: false,
                };
            }
            Ok(Some(PresentedCredential::ApiKey(key))) => {
                self.keys.get(&KeyDigest::of(&key)).cloned()
            }
            Ok(Some(PresentedCredential::ApiKeyHeader(key))) => {
                self.keys.get(&KeyDigest::of(key)).cloned()
            }
            Ok(Some(PresentedCredential::Bearer(_) | PresentedCredential::SignedUrl(_)))
            | Err(_) => None,
        };
        let Some(client) = client else {
            return FloorFuture::Refused {
                res: Some(StatusCode::UNAUTHORIZED.into_response()),
            };
        };
        *req.uri_mut() = self.rules.strip_from_uri(req.uri());
        self.rules.strip_from_headers(req.headers_mut());
        req.extensions_mut().insert(client);
        FloorFuture::Inner {
            fut: self.inner.call(req),
            private: true,
        }
    }
}

pin_project! {
    /// The response of [`Floor`].
    #[project = FloorProj]
    pub enum FloorFuture<F> {
        /// The wrapped service answers.
        Inner { #[pin] fut: F, private: bool },
        /// Refused: the response is ready.
        Refused { res: Option<Response> },
    }
}

impl<F> Future for FloorFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FloorProj::Inner { fut, private } => {
                let mut res = match fut.poll(cx) {
                    Poll::Ready(Ok(res)) => res,
                    Poll::Ready(Err(never)) => match never {},
                    Poll::Pending => return Poll::Pending,
                };
                if *private {
                    res.headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static("private"));
                }
                Poll::Ready(Ok(res))
            }
            FloorProj::Refused { res } => Poll::Ready(Ok(res
                .take()
                .unwrap_or_else(|| StatusCode::UNAUTHORIZED.into_response()))),
        }
    }
}
