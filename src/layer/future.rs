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
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;
use tracing::Span;

use super::body::ResponseBody;
use super::check::Conclusion;
use super::drive::CheckFuture;
use super::response::ResponseExtras;

pin_project! {
    /// The future of [`AuthService`](super::AuthService).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
        extras: ResponseExtras,
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
    pub(crate) fn calling(fut: S::Future, extras: Option<ResponseExtras>, span: Span) -> Self {
        Self {
            state: State::Calling { fut },
            extras: extras.unwrap_or_default(),
            span,
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>, span: Span) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
            extras: ResponseExtras::default(),
            span,
        }
    }

    pub(crate) fn checking(check: CheckFuture<B>, inner: S, span: Span) -> Self {
        Self {
            state: State::Checking {
                check,
                inner: Some(inner),
            },
            extras: ResponseExtras::default(),
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
                StateProj::Checking { check, inner } => {
                    let (req, concluded) = ready!(check.as_mut().poll(cx));
                    match concluded {
                        Conclusion::Call(extras) => {
                            *this.extras = extras;
                            let mut svc = inner
                                .take()
                                .expect("ResponseFuture polled after completion");
                            let fut = svc.call(req);
                            this.state.set(State::Calling { fut });
                        }
                        Conclusion::Answer(response) => {
                            this.state.set(State::Rejected {
                                response: Some(response),
                            });
                        }
                    }
                }
                StateProj::Calling { fut } => {
                    let mut res = ready!(fut.poll(cx))?;
                    this.extras.apply(res.headers_mut());
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
