//! The response body of [`AuthService`](super::AuthService): the wrapped service's body, or the
//! JSON of a rejection.
//!
//! ```
//! use gis_auth::layer::ResponseBody;
//! use http_body::Body;
//! use http_body_util::Full;
//!
//! fn is_a_body<B: Body>(_: &B) {}
//! # let _ = |b: ResponseBody<Full<bytes::Bytes>>| is_a_body(&b);
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// Either the wrapped service's body or a rejection's body.
    #[project = BodyProj]
    pub struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
        rejection: Option<Bytes>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            inner: Some(body),
            rejection: None,
        }
    }

    pub(crate) fn rejection(bytes: Bytes) -> Self {
        Self {
            inner: None,
            rejection: Some(bytes),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => inner.poll_frame(cx),
            None => Poll::Ready(this.rejection.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Some(inner) => inner.is_end_stream(),
            None => self.rejection.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(self.rejection.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
