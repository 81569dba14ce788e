//! [`TokenService`]: the OAuth 2.0 token endpoint for the client credentials grant (RFC 6749
//! §4.4), mountable at any path.
//!
//! The endpoint reads the request (`form.rs`), authenticates the client by its secret, asks
//! [`Policy::explain_token_request`] whether the client may have a token (the same rules its
//! requests then meet at the layer), narrows the scope and mints; every answer is rendered
//! in `response.rs`.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::post};
//! use gis_auth::store::InMemoryStore;
//! use gis_auth::token::{SigningKey, TokenIssuer, TokenService};
//!
//! let store = Arc::new(InMemoryStore::new());
//! let issuer = TokenIssuer::new(SigningKey::generate_hs256("k1")?);
//! let app: Router = Router::new().route_service("/oauth/token", TokenService::new(issuer, store));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

mod form;
mod introspect;
mod response;
mod revoke;

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use http_body_util::Full;
use time::OffsetDateTime;
use tower_service::Service;

pub use self::introspect::IntrospectionService;
pub use self::revoke::RevocationService;

use self::form::{ClientAuth, SubmittedToken, TokenRequest};
use self::response::{ErrorResponse, TokenResponse};
use super::issuer::TokenIssuer;
use super::lockout::{FailureLimiter, LockoutPolicy};
use crate::client::{ClientId, CredentialKind, KeyDigest, RoleSet};
use crate::credentials::Realm;
use crate::error::ConfigError;
use crate::policy::{Decision, Policy, TokenRequestFacts};
use crate::restrict::{ForwardedHeader, PeerSource, TrustedProxies, peer_ip};
use crate::store::{ClientStore, DEFAULT_BACKEND_TIMEOUT, Resolved, within_budget};

/// The largest request body accepted: 8 KiB.
pub const MAX_TOKEN_REQUEST_BYTES: usize = 8 * 1024;

/// What the endpoint is configured with: plain values, set while building.
#[derive(Clone)]
struct EndpointSettings {
    issuer: TokenIssuer,
    store: Arc<dyn ClientStore>,
    /// Decides whether an authenticated client may have a token. Its rules for a token
    /// request do not read a route table, so the default policy decides as the layer's does.
    policy: Policy,
    proxies: TrustedProxies,
    forwarded: ForwardedHeader,
    peer_source: Option<PeerSource>,
    lockout: LockoutPolicy,
    realm: Realm,
    backend_timeout: Option<Duration>,
}

/// The token endpoint: `grant_type=client_credentials`, with the client authenticated by
/// HTTP Basic (`client_secret_basic`) or by `client_id` and `client_secret` in the body
/// (`client_secret_post`), exactly one of them.
///
/// Success is `200 {"access_token", "token_type": "Bearer", "expires_in", "scope"}`, `scope`
/// being the roles the token carries, space-separated. The request may narrow them with
/// `scope`, and ask with `expires_in` (whole seconds, at least 60) for a lifetime shorter
/// than the issuer's; a longer one is capped, and the answer's `expires_in` is the
/// lifetime granted. Every failure to authenticate the client — unknown id,
/// wrong or empty secret, inactive or expired client or account, a JavaScript client, an
/// address its IP rules do not admit — is the same `401 invalid_client`, so none of them
/// tells an attacker anything. Whether a client that proved its secret may have a token is
/// decided by [`Policy::explain_token_request`]. See [`LockoutPolicy`] for brute-force
/// protection.
///
/// The setters may be called in any order, also on a clone: a service and its clones
/// count failed authentications together, and a setting changed on a clone makes a new
/// endpoint with its own counts, leaving the others as they were.
///
/// ```
/// use std::sync::Arc;
/// use gis_auth::restrict::{ForwardedHeader, TrustedProxies};
/// use gis_auth::store::InMemoryStore;
/// use gis_auth::token::{SigningKey, TokenIssuer, TokenService};
///
/// let store = Arc::new(InMemoryStore::new());
/// let issuer = TokenIssuer::new(SigningKey::generate_hs256("k1")?);
/// let endpoint = TokenService::new(issuer, store)
///     .trusted_proxies(TrustedProxies::parse(["10.0.0.0/8"])?)
///     .forwarded_header(ForwardedHeader::Forwarded);
/// # Ok::<(), gis_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct TokenService {
    settings: Arc<EndpointSettings>,
    /// Made from the settings on the first request, and shared by the clones that serve.
    failures: Arc<OnceLock<FailureLimiter>>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.settings.issuer)
            .field("lockout", &self.settings.lockout)
            .field("realm", &self.settings.realm)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A token endpoint minting with `issuer` for clients in `store`.
    pub fn new(issuer: TokenIssuer, store: Arc<dyn ClientStore>) -> Self {
        Self {
            settings: Arc::new(EndpointSettings {
                issuer,
                store,
                policy: Policy::default(),
                proxies: TrustedProxies::none(),
                forwarded: ForwardedHeader::default(),
                peer_source: None,
                lockout: LockoutPolicy::default(),
                realm: Realm::default(),
                backend_timeout: Some(DEFAULT_BACKEND_TIMEOUT),
            }),
            failures: Arc::default(),
        }
    }

    /// The settings, to change: this service becomes an endpoint of its own, and clones
    /// made before keep theirs.
    fn configure(&mut self) -> &mut EndpointSettings {
        self.failures = Arc::default();
        Arc::make_mut(&mut self.settings)
    }

    /// The proxies whose forwarded headers are believed (for IP rules and the lockout).
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.configure().proxies = proxies;
        self
    }

    /// Which forwarded header the trusted proxies append to (`X-Forwarded-For` by default).
    #[must_use]
    pub fn forwarded_header(mut self, which: ForwardedHeader) -> Self {
        self.configure().forwarded = which;
        self
    }

    /// Reads the connection's peer address with `f` first.
    #[must_use]
    pub fn peer_addr<F>(mut self, f: F) -> Self
    where
        F: Fn(&http::Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.configure().peer_source = Some(Arc::new(f));
        self
    }

    /// The brute-force protection.
    #[must_use]
    pub fn lockout(mut self, policy: LockoutPolicy) -> Self {
        self.configure().lockout = policy;
        self
    }

    /// The realm of the `WWW-Authenticate: Basic` challenge.
    pub fn realm(mut self, realm: impl Into<String>) -> Result<Self, ConfigError> {
        let realm = Realm::new(realm)?;
        self.configure().realm = realm;
        Ok(self)
    }

    /// The time budget of the store lookup; past it the request gets 503.
    #[must_use]
    pub fn backend_timeout(mut self, budget: Option<Duration>) -> Self {
        self.configure().backend_timeout = budget;
        self
    }
}

impl<B> Service<Request<B>> for TokenService
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
            let endpoint = TokenEndpoint::of(&service);
            Ok(endpoint.respond(req).await.render(&service.settings.realm))
        })
    }
}

/// The endpoint as one request meets it: the settings and the failure counts.
struct TokenEndpoint<'a> {
    settings: &'a EndpointSettings,
    failures: &'a FailureLimiter,
}

/// A client that proved its secret and that [`Policy`] lets have a token.
struct Authenticated {
    found: Resolved,
    /// The roles in force: the client's ∩ the account's, as the policy says.
    roles: RoleSet,
    generation: u64,
    not_after: Option<OffsetDateTime>,
}

/// Why a client was not authenticated.
enum NotAuthenticated {
    /// Unknown id, wrong secret, or refused by the policy: all alike to the caller, and all
    /// counted for the lockout.
    InvalidClient,
    /// The store failed or ran out of its time budget.
    Unavailable,
}

impl<'a> TokenEndpoint<'a> {
    /// The endpoint as a request to `service` meets it.
    fn of(service: &'a TokenService) -> Self {
        let settings = &*service.settings;
        Self {
            failures: service
                .failures
                .get_or_init(|| FailureLimiter::new(settings.lockout)),
            settings,
        }
    }
}

impl TokenEndpoint<'_> {
    async fn respond<B>(&self, req: Request<B>) -> TokenResponse
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if req.method() != Method::POST {
            return TokenResponse::MethodNotAllowed;
        }
        let caller = self.caller(&req);
        let request = match TokenRequest::read(req).await {
            Ok(request) => request,
            Err(error) => return error.into(),
        };
        match self.authenticate_caller(&request.auth, caller).await {
            Ok(authenticated) => {
                self.mint(authenticated, request.scope.as_deref(), request.expires_in)
            }
            Err(error) => error.into(),
        }
    }

    /// The caller's address, through the trusted proxies.
    fn caller<B>(&self, req: &Request<B>) -> Option<IpAddr> {
        let s = self.settings;
        let peer = peer_ip(req.extensions(), s.peer_source.as_ref());
        s.proxies.client_ip(peer, req.headers(), s.forwarded)
    }

    /// The token an introspection or revocation request submits, and its authenticated
    /// caller; or the answer that refuses the request (not a POST, a malformed form, a
    /// caller that does not authenticate).
    async fn submitted_token<B>(
        &self,
        req: Request<B>,
    ) -> Result<(String, Authenticated), TokenResponse>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if req.method() != Method::POST {
            return Err(TokenResponse::MethodNotAllowed);
        }
        let caller = self.caller(&req);
        let request = SubmittedToken::read(req).await?;
        let authenticated = self.authenticate_caller(&request.auth, caller).await?;
        Ok((request.token, authenticated))
    }

    /// Authenticates the client of `auth` calling from `caller` under the lock-out: the
    /// token, introspection and revocation endpoints all let a client in with this, and
    /// count its failures together.
    async fn authenticate_caller(
        &self,
        auth: &ClientAuth,
        caller: Option<IpAddr>,
    ) -> Result<Authenticated, ErrorResponse> {
        let now = self.settings.issuer.now();
        // An id that cannot be a client id is refused like any other failure, and counted
        // against the caller's address only. The submitted id is never logged.
        let id = ClientId::new(&auth.id).ok();
        if let Some(wait) = self.failures.locked_for(id.as_ref(), caller, now) {
            tracing::debug!("client authentication locked out");
            return Err(ErrorResponse::locked_out(wait));
        }
        match self.authenticate(id.as_ref(), auth, caller).await {
            Ok(authenticated) => Ok(authenticated),
            Err(NotAuthenticated::Unavailable) => Err(ErrorResponse::unavailable()),
            Err(NotAuthenticated::InvalidClient) => {
                self.failures.record_failure(id.as_ref(), caller, now);
                tracing::debug!("client authentication failed");
                Err(ErrorResponse::invalid_client(Some(auth.method)))
            }
        }
    }

    /// Checks the secret (its format before any lookup, then its digest in constant time)
    /// and asks the policy whether the client may have a token.
    async fn authenticate(
        &self,
        id: Option<&ClientId>,
        auth: &ClientAuth,
        caller: Option<IpAddr>,
    ) -> Result<Authenticated, NotAuthenticated> {
        if auth.secret.is_empty() || CredentialKind::ClientSecret.check(&auth.secret).is_err() {
            return Err(NotAuthenticated::InvalidClient);
        }
        let Some(id) = id else {
            return Err(NotAuthenticated::InvalidClient);
        };
        let s = self.settings;
        let found = match within_budget(s.backend_timeout, s.store.resolve_id(id)).await {
            Some(Ok(Some(found))) => found,
            Some(Ok(None)) => return Err(NotAuthenticated::InvalidClient),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "client store failed");
                return Err(NotAuthenticated::Unavailable);
            }
            None => return Err(NotAuthenticated::Unavailable),
        };
        let now = s.issuer.now();
        let creds = found.client.credentials();
        let digest = KeyDigest::of(&auth.secret);
        let generation = if creds.current().ct_eq(&digest) {
            creds.generation()
        } else if creds.accepts(&digest, now) {
            creds.generation().saturating_sub(1)
        } else {
            return Err(NotAuthenticated::InvalidClient);
        };
        let facts = TokenRequestFacts::new(now).from_ip(caller);
        let decision = s
            .policy
            .explain_token_request(&found.client, &found.account, &facts);
        log_decision(&found, &decision);
        if !decision.is_allowed() {
            return Err(NotAuthenticated::InvalidClient);
        }
        let grace_end = (generation != creds.generation())
            .then(|| creds.previous().map(|(_, until)| *until))
            .flatten();
        // A token ends no later than its client, the secret it was issued for (within a
        // grace period), and its account's evaluation period.
        let not_after = [
            grace_end,
            found.client.expires_at(),
            found.account.plan.expires_at,
        ]
        .into_iter()
        .flatten()
        .min();
        Ok(Authenticated {
            roles: decision.roles,
            found,
            generation,
            not_after,
        })
    }

    /// Narrows the roles in force to the requested scope, if any, and mints, for the
    /// requested lifetime if it is shorter than the issuer's.
    fn mint(
        &self,
        auth: Authenticated,
        scope: Option<&str>,
        lifetime: Option<Duration>,
    ) -> TokenResponse {
        let client = &auth.found.client;
        let account = &auth.found.account;
        let scope = match scope {
            None => auth.roles,
            Some(s) => {
                let requested = match RoleSet::parse(s.split(' ').filter(|r| !r.is_empty())) {
                    Ok(set) if !set.is_empty() => set,
                    _ => {
                        return ErrorResponse::invalid_scope(
                            "scope is a space-separated list of role names",
                        )
                        .into();
                    }
                };
                if !requested.is_subset(&auth.roles) {
                    return ErrorResponse::invalid_scope(
                        "the requested scope exceeds the client's roles",
                    )
                    .into();
                }
                requested
            }
        };
        let issued = self.settings.issuer.issue_within(
            client,
            account,
            &scope,
            auth.generation,
            auth.not_after,
            lifetime,
        );
        match issued {
            Ok(token) => {
                // `scope` always: the roles the token carries (RFC 6749 §5.1 asks for it
                // when they differ from the request, and a request without `scope` is
                // answered with the roles in force, which the client may not know).
                let body = serde_json::json!({
                    "access_token": token.access_token,
                    "token_type": "Bearer",
                    "expires_in": token.expires_in,
                    "scope": scope
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                });
                tracing::debug!(client = %client.id(), "access token issued");
                TokenResponse::Json(body)
            }
            Err(e) => {
                tracing::warn!(error = %e, "token could not be issued");
                ErrorResponse::unavailable().into()
            }
        }
    }
}

/// Logs the policy's refusal at `debug`; or, for a client it admits, each report-only
/// finding on the `gis_auth::shadow` target with the fields the layer logs them with.
fn log_decision(found: &Resolved, decision: &Decision) {
    let (client, account) = (&found.client, &found.account);
    if let Some(denied) = &decision.denied {
        tracing::debug!(
            client = %client.id(),
            rule = denied.rule.as_str(),
            reason = %denied.reason,
            "the policy refuses the client a token"
        );
        return;
    }
    for finding in &decision.shadowed {
        tracing::info!(
            target: "gis_auth::shadow",
            client = %client.id(),
            account = %account.id,
            rule = finding.rule.as_str(),
            reason = %finding.reason,
            "report-only restriction would have refused the token request"
        );
    }
}

#[cfg(test)]
mod tests;
