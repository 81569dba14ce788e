//! [`TokenService`]: the OAuth 2.0 token endpoint for the client credentials grant (RFC 6749
//! §4.4), mountable at any path.
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

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use percent_encoding::percent_decode_str;
use tower_service::Service;

use super::issuer::TokenIssuer;
use super::lockout::{FailureLimiter, LockoutPolicy};
use crate::client::{ClientId, ClientKind, CredentialKind, KeyDigest, Restriction, RoleSet};
use crate::credentials::Realm;
use crate::error::ConfigError;
use crate::restrict::{ForwardedHeader, PeerSource, TrustedProxies, peer_ip};
use crate::store::ClientStore;

/// The largest request body accepted: 8 KiB.
pub const MAX_TOKEN_REQUEST_BYTES: usize = 8 * 1024;

struct Endpoint {
    issuer: TokenIssuer,
    store: Arc<dyn ClientStore>,
    proxies: TrustedProxies,
    forwarded: ForwardedHeader,
    peer_source: Option<PeerSource>,
    limiter: FailureLimiter,
    realm: Realm,
    backend_timeout: Option<Duration>,
}

/// The token endpoint: `grant_type=client_credentials`, with the client authenticated by
/// HTTP Basic (`client_secret_basic`) or by `client_id` and `client_secret` in the body
/// (`client_secret_post`), exactly one of them.
///
/// Success is `200 {"access_token", "token_type": "Bearer", "expires_in"}` (with `scope`
/// when the request narrowed it). Every failure to authenticate the client — unknown id,
/// wrong or empty secret, inactive or expired client or account, a JavaScript client, an
/// address its IP rules do not admit — is the same `401 invalid_client`, so none of them
/// tells an attacker anything. See [`LockoutPolicy`] for brute-force protection.
///
/// ```
/// use std::sync::Arc;
/// use gis_auth::store::InMemoryStore;
/// use gis_auth::token::{SigningKey, TokenIssuer, TokenService};
///
/// let store = Arc::new(InMemoryStore::new());
/// let issuer = TokenIssuer::new(SigningKey::generate_hs256("k1")?);
/// let endpoint = TokenService::new(issuer, store);
/// # Ok::<(), gis_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct TokenService {
    endpoint: Arc<Endpoint>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.endpoint.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A token endpoint minting with `issuer` for clients in `store`.
    pub fn new(issuer: TokenIssuer, store: Arc<dyn ClientStore>) -> Self {
        Self {
            endpoint: Arc::new(Endpoint {
                issuer,
                store,
                proxies: TrustedProxies::none(),
                forwarded: ForwardedHeader::default(),
                peer_source: None,
                limiter: FailureLimiter::new(LockoutPolicy::default()),
                realm: Realm::default(),
                backend_timeout: Some(crate::store::DEFAULT_BACKEND_TIMEOUT),
            }),
        }
    }

    fn endpoint(&mut self) -> &mut Endpoint {
        Arc::get_mut(&mut self.endpoint).expect("TokenService is configured before it is cloned")
    }

    /// The proxies whose forwarded headers are believed (for IP rules and the lockout).
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies, which: ForwardedHeader) -> Self {
        let e = self.endpoint();
        e.proxies = proxies;
        e.forwarded = which;
        self
    }

    /// Reads the connection's peer address with `f` first.
    #[must_use]
    pub fn peer_addr<F>(mut self, f: F) -> Self
    where
        F: Fn(&http::Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.endpoint().peer_source = Some(Arc::new(f));
        self
    }

    /// The brute-force protection.
    #[must_use]
    pub fn lockout(mut self, policy: LockoutPolicy) -> Self {
        self.endpoint().limiter = FailureLimiter::new(policy);
        self
    }

    /// The realm of the `WWW-Authenticate: Basic` challenge.
    pub fn realm(mut self, realm: impl Into<String>) -> Result<Self, ConfigError> {
        let realm = Realm::new(realm)?;
        self.endpoint().realm = realm;
        Ok(self)
    }

    /// The time budget of the store lookup; past it the request gets 503.
    #[must_use]
    pub fn backend_timeout(mut self, budget: Option<Duration>) -> Self {
        self.endpoint().backend_timeout = budget;
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
        let endpoint = self.endpoint.clone();
        Box::pin(async move { Ok(endpoint.handle(req).await.into_response()) })
    }
}

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method_ {
    Basic,
    Post,
}

/// An endpoint error (RFC 6749 §5.2) or a success body.
enum Reply {
    Token(serde_json::Value),
    Error {
        status: StatusCode,
        code: &'static str,
        description: &'static str,
        basic_challenge: bool,
        retry_after: Option<Duration>,
    },
    MethodNotAllowed,
}

impl Reply {
    fn error(status: StatusCode, code: &'static str, description: &'static str) -> Self {
        Reply::Error {
            status,
            code,
            description,
            basic_challenge: false,
            retry_after: None,
        }
    }

    fn bad_request(description: &'static str) -> Self {
        Self::error(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_client(method: Option<Method_>) -> Self {
        Reply::Error {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: "client authentication failed",
            basic_challenge: method == Some(Method_::Basic),
            retry_after: None,
        }
    }

    fn into_response_with(self, realm: &str) -> Response<Full<Bytes>> {
        let (status, body) = match &self {
            Reply::Token(body) => (StatusCode::OK, body.clone()),
            Reply::Error {
                status,
                code,
                description,
                ..
            } => (
                *status,
                serde_json::json!({"error": code, "error_description": description}),
            ),
            Reply::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({"error": "invalid_request", "error_description": "the token endpoint accepts POST only"}),
            ),
        };
        let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        match self {
            Reply::MethodNotAllowed => {
                h.insert(ALLOW, HeaderValue::from_static("POST"));
            }
            Reply::Error {
                basic_challenge,
                retry_after,
                ..
            } => {
                if basic_challenge
                    && let Ok(v) = HeaderValue::try_from(format!("Basic realm=\"{realm}\""))
                {
                    h.insert(WWW_AUTHENTICATE, v);
                }
                if let Some(after) = retry_after {
                    h.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
                }
            }
            Reply::Token(_) => {}
        }
        res
    }
}

struct Handled {
    reply: Reply,
    realm: Realm,
}

impl Handled {
    fn into_response(self) -> Response<Full<Bytes>> {
        self.reply.into_response_with(self.realm.as_str())
    }
}

/// The client's claimed identity and secret, as sent.
struct ClientAuth {
    method: Method_,
    id: String,
    secret: String,
}

/// Decodes one application/x-www-form-urlencoded component.
fn form_decode(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// `Authorization: Basic` credentials, if that is the scheme. `Err` is a malformed header.
fn basic_auth(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    let bytes = value.as_bytes();
    let Some(sp) = bytes.iter().position(|&b| b == b' ') else {
        return if bytes.eq_ignore_ascii_case(b"basic") {
            Err(())
        } else {
            Ok(None)
        };
    };
    if !bytes[..sp].eq_ignore_ascii_case(b"basic") {
        return Ok(None);
    }
    let encoded = std::str::from_utf8(&bytes[sp..]).map_err(|_| ())?.trim();
    let decoded = STANDARD.decode(encoded).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    Ok(Some((
        form_decode(id).ok_or(())?,
        form_decode(secret).ok_or(())?,
    )))
}

/// The form's parameters; `Err` when one appears twice.
fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, ()> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        if params.iter().any(|(seen, _)| *seen == *k) {
            return Err(());
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Endpoint {
    async fn handle<B>(&self, req: Request<B>) -> Handled
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let reply = self.reply(req).await;
        Handled {
            reply,
            realm: self.realm.clone(),
        }
    }

    async fn reply<B>(&self, req: Request<B>) -> Reply
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if req.method() != Method::POST {
            return Reply::MethodNotAllowed;
        }
        if let Some(query) = req.uri().query() {
            let has_credentials = form_urlencoded::parse(query.as_bytes())
                .any(|(k, _)| k == "client_id" || k == "client_secret");
            if has_credentials {
                return Reply::bad_request(
                    "client credentials are not accepted in the query string",
                );
            }
        }
        let form_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Reply::bad_request("the body must be application/x-www-form-urlencoded");
        }
        let too_large = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > MAX_TOKEN_REQUEST_BYTES as u64);
        if too_large {
            return Self::too_large();
        }
        let peer = peer_ip(req.extensions(), self.peer_source.as_ref());
        let caller = self.proxies.client_ip(peer, req.headers(), self.forwarded);
        let basic = basic_auth(req.headers());
        let body = req.into_body();
        let body = match Limited::new(body, MAX_TOKEN_REQUEST_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Self::too_large(),
            Err(_) => return Reply::bad_request("the request body could not be read"),
        };
        let Ok(params) = parse_form(&body) else {
            return Reply::bad_request("a parameter appears more than once");
        };
        match param(&params, "grant_type") {
            None | Some("") => return Reply::bad_request("grant_type is required"),
            Some("client_credentials") => {}
            Some(_) => {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "only the client_credentials grant is supported",
                );
            }
        }
        let auth = match self.client_auth(basic, &params) {
            Ok(auth) => auth,
            Err(reply) => return reply,
        };
        let now = self.issuer.now();
        if let Some(wait) = self.limiter.locked_for(&auth.id, caller, now) {
            tracing::debug!(client = %auth.id, "token request locked out");
            return Reply::Error {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "too_many_requests",
                description: "too many failed client authentications; try again later",
                basic_challenge: false,
                retry_after: Some(wait),
            };
        }
        let authenticated = match self.authenticate(&auth, caller).await {
            Ok(found) => found,
            Err(Some(reply)) => return reply,
            Err(None) => {
                self.limiter.record_failure(&auth.id, caller, now);
                tracing::debug!(client = %auth.id, "client authentication failed");
                return Reply::invalid_client(Some(auth.method));
            }
        };
        self.mint(authenticated, param(&params, "scope"))
    }

    fn too_large() -> Reply {
        Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is larger than 8 KiB",
        )
    }

    /// Exactly one authentication method.
    fn client_auth(
        &self,
        basic: Result<Option<(String, String)>, ()>,
        params: &[(String, String)],
    ) -> Result<ClientAuth, Reply> {
        let body_id = param(params, "client_id");
        let body_secret = param(params, "client_secret");
        let basic = match basic {
            Ok(b) => b,
            Err(()) => return Err(Reply::invalid_client(Some(Method_::Basic))),
        };
        match (basic, body_id, body_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(Reply::bad_request(
                "use one client authentication method, not two",
            )),
            (Some((id, secret)), None, None) => Ok(ClientAuth {
                method: Method_::Basic,
                id,
                secret,
            }),
            (None, Some(id), secret) => Ok(ClientAuth {
                method: Method_::Post,
                id: id.to_owned(),
                secret: secret.unwrap_or_default().to_owned(),
            }),
            (None, None, _) => Err(Reply::invalid_client(None)),
        }
    }

    /// `Ok` with the client, its account and the generation the secret belongs to;
    /// `Err(None)` for any authentication failure (all alike); `Err(Some)` for a store
    /// failure.
    async fn authenticate(
        &self,
        auth: &ClientAuth,
        caller: Option<IpAddr>,
    ) -> Result<Authenticated, Option<Reply>> {
        if auth.secret.is_empty() || CredentialKind::ClientSecret.check(&auth.secret).is_err() {
            return Err(None);
        }
        let Ok(id) = ClientId::new(&auth.id) else {
            return Err(None);
        };
        let lookup = self.store.resolve_id(&id);
        let found = match self.backend_timeout {
            Some(budget) => tokio::time::timeout(budget, lookup).await.ok(),
            None => Some(lookup.await),
        };
        let found = match found {
            Some(Ok(found)) => found,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "client store failed");
                return Err(Some(Self::unavailable()));
            }
            None => {
                tracing::warn!("client store did not answer in time");
                return Err(Some(Self::unavailable()));
            }
        };
        let Some(found) = found else {
            return Err(None);
        };
        let now = self.issuer.now();
        let client = &found.client;
        let creds = client.credentials();
        let digest = KeyDigest::of(&auth.secret);
        let generation = if creds.current().ct_eq(&digest) {
            creds.generation()
        } else if creds.accepts(&digest, now) {
            creds.generation().saturating_sub(1)
        } else {
            return Err(None);
        };
        let grace_end = (generation != creds.generation())
            .then(|| creds.previous().map(|(_, until)| *until))
            .flatten();
        let usable = client.kind() == ClientKind::NativeConfidential
            && client.status().is_active()
            && found.account.status.is_active()
            && !client.is_expired(now)
            && (client.ips().is_empty()
                || caller.is_some_and(|ip| client.ips().allows(ip))
                || client.shadow().contains(Restriction::Ips));
        if !usable {
            return Err(None);
        }
        if !client.ips().is_empty() && !caller.is_some_and(|ip| client.ips().allows(ip)) {
            tracing::info!(
                target: "gis_auth::shadow",
                client = %client.id(),
                rule = "ips",
                "report-only restriction would have refused the token request"
            );
        }
        let not_after = match (grace_end, client.expires_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Authenticated {
            found,
            generation,
            not_after,
        })
    }

    fn unavailable() -> Reply {
        Reply::Error {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            description: "the authorization service is temporarily unavailable",
            basic_challenge: false,
            retry_after: Some(Duration::from_secs(1)),
        }
    }

    fn mint(&self, auth: Authenticated, scope: Option<&str>) -> Reply {
        let client = &auth.found.client;
        let account = &auth.found.account;
        let effective = client.effective_roles(account);
        let (scope, narrowed) = match scope {
            None => (effective, false),
            Some(s) => {
                let requested = match RoleSet::parse(s.split(' ').filter(|r| !r.is_empty())) {
                    Ok(set) if !set.is_empty() => set,
                    _ => {
                        return Reply::error(
                            StatusCode::BAD_REQUEST,
                            "invalid_scope",
                            "scope is a space-separated list of role names",
                        );
                    }
                };
                if !requested.is_subset(&effective) {
                    return Reply::error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        "the requested scope exceeds the client's roles",
                    );
                }
                (requested, true)
            }
        };
        match self
            .issuer
            .issue(client, account, &scope, auth.generation, auth.not_after)
        {
            Ok(token) => {
                let mut body = serde_json::json!({
                    "access_token": token.access_token,
                    "token_type": "Bearer",
                    "expires_in": token.expires_in,
                });
                if narrowed {
                    body["scope"] = serde_json::Value::String(
                        scope
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                }
                tracing::debug!(client = %client.id(), "access token issued");
                Reply::Token(body)
            }
            Err(e) => {
                tracing::warn!(error = %e, "token could not be issued");
                Self::unavailable()
            }
        }
    }
}

struct Authenticated {
    found: crate::store::Resolved,
    generation: u64,
    not_after: Option<time::OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let encoded = STANDARD.encode("my%20client:s%3Acret+x");
        assert_eq!(
            basic_auth(&headers(&format!("Basic {encoded}"))),
            Ok(Some(("my client".into(), "s:cret x".into())))
        );
        assert_eq!(basic_auth(&headers("Bearer abc")), Ok(None));
        assert_eq!(basic_auth(&headers("Basic !!!")), Err(()));
        assert_eq!(
            basic_auth(&headers(&format!("Basic {}", STANDARD.encode("nocolon")))),
            Err(())
        );
        assert_eq!(basic_auth(&headers("Basic")), Err(()));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_form(b"grant_type=client_credentials&grant_type=x").is_err());
        let p = parse_form(b"grant_type=client_credentials&scope=Evaluator+User").unwrap();
        assert_eq!(param(&p, "scope"), Some("Evaluator User"));
    }
}
