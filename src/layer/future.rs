//! [`ResponseFuture`]: checking, then calling the wrapped service, or answering a rejection.
//!
//! ```
//! use gis_auth::layer::ResponseFuture;
//!
//! // The future is `Send` whenever the wrapped service and its future are.
//! fn assert_send<T: Send>() {}
//! type Svc = tower::util::BoxCloneSyncService<http::Request<()>, http::Response<String>, std::convert::Infallible>;
//! assert_send::<ResponseFuture<Svc, ()>>();
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;
use tracing::Span;

use super::Config;
use super::Meter;
use super::body::ResponseBody;
use super::response::{add_quota_headers, add_vary_origin, make_private};
use super::service::{CheckFuture, admit, refuse};
use crate::policy::QuotaState;

/// Headers to add to the wrapped service's response.
#[derive(Debug, Clone, Default)]
pub(crate) struct Finish {
    pub(crate) private: bool,
    pub(crate) vary_origin: bool,
    pub(crate) quota: Option<(QuotaState, time::OffsetDateTime, Option<u8>)>,
    /// The handler's meter: its latest charge decides the quota headers.
    pub(crate) meter: Option<Meter>,
}

pin_project! {
    /// The future of [`AuthService`](super::AuthService).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
        finish: Finish,
        // The request's span, entered whenever the future is polled.
        span: Span,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Checking {
            check: CheckFuture<B>,
            inner: Option<S>,
            config: Arc<Config>,
        },
        Calling {
            #[pin]
            fut: S::Future,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn calling(fut: S::Future, finish: Option<Finish>, span: Span) -> Self {
        Self {
            state: State::Calling { fut },
            finish: finish.unwrap_or_default(),
            span,
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>, span: Span) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
            finish: Finish::default(),
            span,
        }
    }

    pub(crate) fn checking(
        check: CheckFuture<B>,
        inner: S,
        config: Arc<Config>,
        span: Span,
    ) -> Self {
        Self {
            state: State::Checking {
                check,
                inner: Some(inner),
                config,
            },
            finish: Finish::default(),
            span,
        }
    }
}

impl<S, B, ResB> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Output = Result<Response<ResponseBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        loop {
            match this.state.as_mut().project() {
                StateProj::Checking {
                    check,
                    inner,
                    config,
                } => {
                    let (mut req, outcome) = ready!(check.as_mut().poll(cx));
                    match outcome {
                        Ok(authorized) => {
                            *this.finish = admit(config, &mut req, authorized);
                            let mut svc = inner
                                .take()
                                .expect("ResponseFuture polled after completion");
                            let fut = svc.call(req);
                            this.state.set(State::Calling { fut });
                        }
                        Err(rejection) => {
                            let response = refuse(config, &rejection);
                            this.state.set(State::Rejected {
                                response: Some(response),
                            });
                        }
                    }
                }
                StateProj::Calling { fut } => {
                    let mut res = ready!(fut.poll(cx))?;
                    let finish = &*this.finish;
                    if finish.private {
                        make_private(res.headers_mut());
                    }
                    if finish.vary_origin {
                        add_vary_origin(res.headers_mut());
                    }
                    if let Some((quota, now, warning)) = &finish.quota {
                        let latest = finish.meter.as_ref().and_then(Meter::quota);
                        let quota = latest.as_ref().unwrap_or(quota);
                        add_quota_headers(res.headers_mut(), quota, *now, *warning);
                    }
                    return Poll::Ready(Ok(res.map(ResponseBody::inner)));
                }
                StateProj::Rejected { response } => {
                    let res = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(res.map(ResponseBody::rejection)));
                }
            }
        }
    }
}
