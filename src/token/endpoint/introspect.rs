//! [`IntrospectionService`]: the token introspection endpoint (RFC 7662) beside the token
//! endpoint, for resource servers that hold a NativeConfidential client of the account.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use serde_json::json;

use super::response::{ErrorResponse, TokenResponse};
use super::{TokenEndpoint, TokenService};
use crate::store::within_budget;
use crate::token::VerifyError;
use crate::token::verifier::{Inspected, JwtVerifier};

/// `POST /oauth/introspect` (RFC 7662 §2): is this access token active, and what does it
/// carry? The caller authenticates as a NativeConfidential client exactly as at the token
/// endpoint it was made from ([`TokenService::introspection`]): Basic or the form, the same
/// `invalid_client` answer, and the same lock-out, with its failures counted together with
/// the token endpoint's.
///
/// The answer is `200 {"active": true, "scope", "client_id", "token_type": "Bearer", "exp",
/// "iat", "nbf", "sub", "aud", "iss", "jti"}` exactly when the layer would accept the token
/// now — its signature and times, the deny list, its client's credential generation (the
/// [`JwtVerifier`] the layer uses), and its client's and account's status and expiry
/// ([`Policy::explain_standing`](crate::policy::Policy::explain_standing)) — and the token
/// belongs to the caller's own account. Any other token, malformed ones included, is
/// `200 {"active": false}`; the `token_type_hint` is accepted and not needed. A store that
/// fails or does not answer within the endpoint's budget is a 503.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, routing::post};
/// use gis_auth::store::InMemoryStore;
/// use gis_auth::token::{JwtVerifier, SigningKey, TokenIssuer, TokenService};
///
/// let store = Arc::new(InMemoryStore::new());
/// let issuer = TokenIssuer::new(SigningKey::generate_hs256("k1")?);
/// let verifier = JwtVerifier::new(issuer.clone(), store.clone());
/// let token = TokenService::new(issuer, store);
/// let app: Router = Router::new()
///     .route_service("/oauth/introspect", token.introspection(verifier.clone()))
///     .route_service("/oauth/revoke", token.revocation(verifier))
///     .route_service("/oauth/token", token);
/// # Ok::<(), gis_auth::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct IntrospectionService {
    endpoint: TokenService,
    verifier: JwtVerifier,
}

impl TokenService {
    /// The introspection endpoint of this token endpoint's tokens, checking them with
    /// `verifier` (the one the layer uses, so that both say the same of a token). It
    /// authenticates with this endpoint's settings as they are now, and shares its failure
    /// counts: make it after configuring.
    pub fn introspection(&self, verifier: JwtVerifier) -> IntrospectionService {
        IntrospectionService {
            endpoint: self.clone(),
            verifier,
        }
    }
}

impl<B> tower_service::Service<Request<B>> for IntrospectionService
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
            let answer = introspect(&endpoint, &service.verifier, req).await;
            Ok(answer.render(&service.endpoint.settings.realm))
        })
    }
}

fn inactive() -> TokenResponse {
    TokenResponse::Json(json!({"active": false}))
}

async fn introspect<B>(
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
    let s = endpoint.settings;
    let inspected = match within_budget(s.backend_timeout, verifier.inspect(&token)).await {
        Some(Ok(inspected)) => inspected,
        Some(Err(VerifyError::Invalid(_))) => return inactive(),
        Some(Err(VerifyError::Store(e))) => {
            tracing::warn!(error = %e, "a token could not be introspected");
            return ErrorResponse::unavailable().into();
        }
        None => return ErrorResponse::unavailable().into(),
    };
    let Inspected { token, claims } = inspected;
    if token.account.id != authenticated.found.account.id {
        tracing::debug!(
            client = %authenticated.found.client.id(),
            "introspection of another account's token"
        );
        return inactive();
    }
    let standing = s
        .policy
        .explain_standing(&token.client, &token.account, s.issuer.now());
    if !standing.is_allowed() {
        return inactive();
    }
    TokenResponse::Json(json!({
        "active": true,
        "scope": claims.scope,
        "client_id": claims.sub,
        "token_type": "Bearer",
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "jti": claims.jti,
    }))
}
