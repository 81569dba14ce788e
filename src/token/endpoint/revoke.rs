//! [`RevocationService`]: the token revocation endpoint (RFC 7009) beside the token
//! endpoint, for clients that want one of their account's access tokens stopped.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use serde_json::json;
use time::OffsetDateTime;

use super::response::{ErrorResponse, TokenResponse};
use super::{TokenEndpoint, TokenService};
use crate::store::within_budget;
use crate::token::verifier::JwtVerifier;

/// `POST /oauth/revoke` (RFC 7009 §2): puts one access token of the caller's own account on
/// the [`JwtVerifier`]'s deny list, by its `jti`, until its `exp`. The layer refuses it on its
/// next request with 401 `invalid_token`; introspection calls it inactive. The caller
/// authenticates as a NativeConfidential client exactly as at the token endpoint it was made
/// from ([`TokenService::revocation`]), lock-out included.
///
/// The answer is `200 {}` for every token once the caller is authenticated (§2.2): revoked,
/// unknown, malformed, expired, or another account's, which is not revoked. A token whose
/// client has since been deactivated is revoked all the same, so that it stays refused if
/// the client comes back. A deny list that fails or does not answer within the endpoint's
/// budget is a 503 (§2.2.1), and the client may try again.
#[derive(Clone, Debug)]
pub struct RevocationService {
    endpoint: TokenService,
    verifier: JwtVerifier,
}

impl TokenService {
    /// The revocation endpoint of this token endpoint's tokens, revoking on `verifier`'s deny
    /// list (the verifier the layer uses, or one sharing its list). It authenticates with
    /// this endpoint's settings as they are now, and shares its failure counts: make it
    /// after configuring.
    pub fn revocation(&self, verifier: JwtVerifier) -> RevocationService {
        RevocationService {
            endpoint: self.clone(),
            verifier,
        }
    }
}

impl<B> tower_service::Service<Request<B>> for RevocationService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            let endpoint = TokenEndpoint::of(&service.endpoint);
            let answer = revoke(&endpoint, &service.verifier, req).await;
            Ok(answer.render(&service.endpoint.settings.realm))
        })
    }
}

fn done() -> TokenResponse {
    TokenResponse::Json(json!({}))
}

async fn revoke<B>(
    endpoint: &TokenEndpoint<'_>,
    verifier: &JwtVerifier,
    req: Request<B>,
) -> TokenResponse
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (token, authenticated) = match endpoint.submitted_token(req).await {
        Ok(submitted) => submitted,
        Err(answer) => return answer,
    };
    // Signed by the issuer and not expired: anything else is no token to revoke.
    let Ok(claims) = verifier.signed_claims(&token) else {
        return done();
    };
    let caller_client = authenticated.found.client.id();
    if claims.account_id != authenticated.found.account.id.as_str() {
        tracing::debug!(client = %caller_client, "revocation of another account's token refused");
        return done();
    }
    let Ok(expires_at) = OffsetDateTime::from_unix_timestamp(claims.exp) else {
        return done();
    };
    let list = verifier.revocation_list();
    let s = endpoint.settings;
    match within_budget(s.backend_timeout, list.revoke(&claims.jti, expires_at)).await {
        Some(Ok(())) => {
            tracing::info!(client = %caller_client, token_client = %claims.sub, "access token revoked");
            done()
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "a token could not be revoked");
            ErrorResponse::unavailable().into()
        }
        None => ErrorResponse::unavailable().into(),
    }
}
