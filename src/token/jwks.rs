//! [`JwksService`]: `GET /.well-known/jwks.json` (RFC 7517 §5), the public keys other
//! services verify access tokens with.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use http::Request;
//! use http_body_util::{BodyExt, Empty};
//! use gis_auth::token::{JwksService, SigningKey, TokenIssuer};
//! use tower::ServiceExt;
//!
//! let issuer = TokenIssuer::new(SigningKey::generate_ed25519(Some("ed-1"))?);
//! let res = JwksService::new(issuer)
//!     .oneshot(Request::get("/.well-known/jwks.json").body(Empty::<bytes::Bytes>::new())?)
//!     .await?;
//! assert_eq!(res.headers()["cache-control"], "public, max-age=300");
//! let body = res.into_body().collect().await?.to_bytes();
//! let set: serde_json::Value = serde_json::from_slice(&body)?;
//! assert_eq!(set["keys"][0]["kid"], "ed-1");
//! assert_eq!(set["keys"][0]["use"], "sig");
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower_service::Service;

use super::issuer::TokenIssuer;
use super::publish;

/// How long a JWK set may be cached: 5 minutes. A key rotated in is published at once,
/// and a retired key stays published for its grace; so a rotation's grace should be at
/// least this plus the token lifetime, for a verifier that cached the set just before.
pub const JWKS_MAX_AGE: u32 = 300;

/// Answers `GET` (and `HEAD`) with the issuer's [`jwks`](TokenIssuer::jwks): the public
/// keys of the current signing key and of the retired keys in their grace, never a private
/// or symmetric key (an issuer with HS256 keys only answers `{"keys": []}`), with
/// `Cache-Control: public, max-age=300`. Any other method is 405. It needs no credential:
/// mount it where the route table makes it public (the standard table does, at
/// `/.well-known/jwks.json`).
#[derive(Debug, Clone)]
pub struct JwksService {
    issuer: TokenIssuer,
}

impl JwksService {
    /// The JWK set of `issuer` (and of its clones: a key rotated through any of them shows).
    pub fn new(issuer: TokenIssuer) -> Self {
        Self { issuer }
    }
}

impl<B> Service<Request<B>> for JwksService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(publish::json_document(req.method(), || {
            serde_json::to_vec(&self.issuer.jwks())
        })))
    }
}
