//! The Tower layer: [`AuthLayer`] (a consuming builder), [`AuthService`] and
//! [`ResponseFuture`].
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use gis_auth::client::{Account, AccountId, Role, RoleSet};
//! use gis_auth::layer::AuthLayer;
//! use gis_auth::policy::{Api, RouteTable};
//! use gis_auth::store::InMemoryStore;
//! use http::{Method, Request, Response};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(InMemoryStore::new());
//! let made = store.open_account(Account::new(AccountId::new("acme")?, "Acme",
//!     RoleSet::from_iter([Role::EVALUATOR]))?)?;
//! let routes = RouteTable::new().route(Method::GET, "/tiles/{z}/{x}/{y}.png",
//!     Api::new("WorldStreets", [Role::EVALUATOR]).plugin(true))?;
//!
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new(store.clone(), routes))
//!     .service_fn(|_req: Request<Full<Bytes>>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"tile"))))
//!     });
//!
//! let uri = format!("/tiles/1/2/3.png?apikey={}", made.javascript.credential.expose());
//! let res = svc.clone().oneshot(Request::get(uri).body(Full::default())?).await?;
//! assert_eq!(res.status(), 200);
//! let res = svc.oneshot(Request::get("/tiles/1/2/3.png").body(Full::default())?).await?;
//! assert_eq!(res.status(), 401);
//! # Ok(()) }
//! ```

mod body;
mod future;
mod meter;
mod principal;
mod response;
mod service;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, Response};
use tower_layer::Layer;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use meter::{Meter, Refused};
pub use principal::{CredentialSource, Principal};
pub use response::{
    QUOTA_WARNING, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET,
    default_rejection_response,
};
pub use service::AuthService;

use crate::clock::{Clock, SystemClock};
use crate::credentials::{CredentialRules, Realm};
use crate::error::ConfigError;
use crate::limits::{ClientRateLimiter, SharedRateLimiter};
use crate::limits::{InMemoryUsageCounter, UsageCounter};
use crate::policy::{Policy, RouteTable};
use crate::rejection::Rejection;
use crate::restrict::{ForwardedHeader, PeerSource, TrustedProxies};
use crate::store::ClientStore;
use crate::token::TokenVerifier;

type Responder = Arc<dyn Fn(&Rejection) -> Response<Bytes> + Send + Sync>;

/// The share of the daily quota (in %) from which responses carry a warning header.
pub const DEFAULT_QUOTA_WARNING_PERCENT: u8 = 80;

pub use crate::store::DEFAULT_BACKEND_TIMEOUT;

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: Arc<dyn ClientStore>,
    pub(crate) verifier: Option<Arc<dyn TokenVerifier>>,
    pub(crate) policy: Policy,
    pub(crate) usage: Arc<dyn UsageCounter>,
    pub(crate) rate_limiter: ClientRateLimiter,
    pub(crate) shared_rate_limiter: Option<Arc<dyn SharedRateLimiter>>,
    pub(crate) quota_warning: Option<u8>,
    pub(crate) credentials: CredentialRules,
    pub(crate) proxies: TrustedProxies,
    pub(crate) forwarded: ForwardedHeader,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) realm: Realm,
    pub(crate) rendered: response::Rendered,
    pub(crate) allow_preflight: bool,
    pub(crate) strip_credentials: bool,
    pub(crate) backend_timeout: Option<Duration>,
    pub(crate) responder: Option<Responder>,
    pub(crate) peer_source: Option<PeerSource>,
    pub(crate) proxies_warned: Arc<AtomicBool>,
}

impl Config {
    pub(crate) fn render(&self, rejection: &Rejection) -> Response<Bytes> {
        let mut res = match &self.responder {
            Some(custom) => custom(rejection),
            None => self.rendered.response(rejection, self.realm.as_str()),
        };
        if rejection.varies_on_origin() {
            response::add_vary_origin(res.headers_mut());
        }
        res.extensions_mut().insert(rejection.clone());
        res
    }

    /// Warns once when a client with IP rules is called with forwarded headers and no
    /// proxy is trusted: behind a proxy, every request then comes from the proxy's address.
    pub(crate) fn warn_if_proxies_missing(&self, headers: &http::HeaderMap) {
        if self.proxies.is_empty()
            && (headers.contains_key("x-forwarded-for")
                || headers.contains_key(http::header::FORWARDED))
            && !self.proxies_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                lint = crate::policy::Trap::IpRulesWithoutTrustedProxies.code(),
                "forwarded headers arrive but no trusted proxies are configured: IP rules see \
                 the proxy's address; configure AuthLayer::trusted_proxies"
            );
        }
    }

    /// The connection's peer address.
    pub(crate) fn peer_ip(&self, ext: &Extensions) -> Option<IpAddr> {
        crate::restrict::peer_ip(ext, self.peer_source.as_ref())
    }
}

/// Puts key-based access control in front of a service.
///
/// Every request is matched against the [`RouteTable`] first (unknown routes get 403 before
/// any credential is read), then its credential is extracted, checked for format (no store
/// lookup for a malformed key), looked up, decided by [`Policy`] (the same decision
/// [`Policy::explain`] gives), rate-limited and charged to the account's daily quota. On
/// success a
/// [`Principal`](crate::layer::Principal) is inserted into the request's extensions.
#[derive(Clone)]
#[must_use]
pub struct AuthLayer {
    config: Arc<Config>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("routes", &self.config.policy.routes().routes().len())
            .field("realm", &self.config.realm)
            .field("allow_preflight", &self.config.allow_preflight)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// A layer reading clients from `store` and routes from `routes`, with the defaults:
    /// `apikey` parameter, 4 KiB credential limit, no trusted proxies, realm `gis-auth`,
    /// preflight not exempt, credentials stripped, 2 s store budget, system clock, usage
    /// counted in memory with a quota warning from 80 %.
    pub fn new(store: Arc<dyn ClientStore>, routes: RouteTable) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self {
            config: Arc::new(Config {
                store,
                verifier: None,
                policy: Policy::new(routes),
                usage: Arc::new(InMemoryUsageCounter::new()),
                rate_limiter: ClientRateLimiter::new(clock.clone()),
                shared_rate_limiter: None,
                quota_warning: Some(DEFAULT_QUOTA_WARNING_PERCENT),
                credentials: CredentialRules::default(),
                proxies: TrustedProxies::none(),
                forwarded: ForwardedHeader::default(),
                clock,
                realm: Realm::default(),
                rendered: response::Rendered::new("gis-auth"),
                allow_preflight: false,
                strip_credentials: true,
                backend_timeout: Some(DEFAULT_BACKEND_TIMEOUT),
                responder: None,
                peer_source: None,
                proxies_warned: Arc::new(AtomicBool::new(false)),
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Verifies bearer tokens with `verifier`. Without one, every bearer token is refused
    /// (401 `invalid_token`).
    pub fn token_verifier(mut self, verifier: Arc<dyn TokenVerifier>) -> Self {
        self.config().verifier = Some(verifier);
        self
    }

    /// The query parameter that carries API keys (matched ignoring ASCII case).
    pub fn query_param(mut self, name: impl Into<String>) -> Self {
        let rules = self.config().credentials.clone().query_param(name.into());
        self.config().credentials = rules;
        self
    }

    /// The largest key or token accepted, in bytes; longer ones get 400 before any hashing.
    pub fn max_credential_len(mut self, bytes: usize) -> Self {
        let rules = self.config().credentials.clone().max_len(bytes);
        self.config().credentials = rules;
        self
    }

    /// The proxies whose forwarded headers are believed.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.config().proxies = proxies;
        self
    }

    /// Which forwarded header the trusted proxies append to (`X-Forwarded-For` by default).
    pub fn forwarded_header(mut self, which: ForwardedHeader) -> Self {
        self.config().forwarded = which;
        self
    }

    /// The clock for expiry, quota days and rate limits.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        let config = self.config();
        config.rate_limiter = ClientRateLimiter::new(clock.clone());
        config.clock = clock;
        self
    }

    /// Counts usage and enforces daily quotas with `counter` (shared by every instance when
    /// it is remote) instead of the in-memory default. A counter that fails or stalls gives
    /// 503.
    pub fn usage_counter(mut self, counter: Arc<dyn UsageCounter>) -> Self {
        self.config().usage = counter;
        self
    }

    /// Keeps at most `max_clients` per-client rate limiters in memory.
    pub fn rate_limiter_capacity(mut self, max_clients: u64) -> Self {
        let config = self.config();
        config.rate_limiter = ClientRateLimiter::new(config.clock.clone()).capacity(max_clients);
        self
    }

    /// Enforces clients' rate limits with `limiter`, shared by every instance (such as
    /// `RedisRateLimiter`, feature `redis`), instead of in this process: one round trip per
    /// request of a client with a limit. A limiter that fails or stalls gives 503.
    pub fn shared_rate_limiter(mut self, limiter: Arc<dyn SharedRateLimiter>) -> Self {
        self.config().shared_rate_limiter = Some(limiter);
        self
    }

    /// From which share of the daily quota (in %) responses carry a `Quota-Warning` header;
    /// `None` for never.
    pub fn quota_warning(mut self, percent: Option<u8>) -> Self {
        self.config().quota_warning = percent.map(|p| p.min(100));
        self
    }

    /// The realm of the `WWW-Authenticate` challenge: printable ASCII without `"` or `\`.
    pub fn realm(mut self, realm: impl Into<String>) -> Result<Self, ConfigError> {
        let realm = Realm::new(realm)?;
        let config = self.config();
        config.rendered = response::Rendered::new(realm.as_str());
        config.realm = realm;
        Ok(self)
    }

    /// Lets CORS preflight requests (`OPTIONS` with `Access-Control-Request-Method`) through
    /// without credentials, so a CORS layer inside can answer them.
    pub fn allow_preflight(mut self, yes: bool) -> Self {
        self.config().allow_preflight = yes;
        self
    }

    /// Whether the `Authorization` header and the API key parameter are removed before the
    /// wrapped service runs (on by default).
    pub fn strip_credentials(mut self, yes: bool) -> Self {
        self.config().strip_credentials = yes;
        self
    }

    /// The time budget of one store lookup or token verification; past it the request gets
    /// 503. `None` waits as long as the store takes. Needs a Tokio runtime with time enabled.
    pub fn backend_timeout(mut self, budget: Option<Duration>) -> Self {
        self.config().backend_timeout = budget;
        self
    }

    /// Builds rejection responses with `f` instead of [`default_rejection_response`]. The
    /// layer still adds `Vary: Origin` where due and the [`Rejection`] extension.
    pub fn rejection_response<F>(mut self, f: F) -> Self
    where
        F: Fn(&Rejection) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.config().responder = Some(Arc::new(f));
        self
    }

    /// Reads the connection's peer address with `f` (for servers that put it somewhere other
    /// than a `SocketAddr` extension); when `f` gives `None`, the defaults are tried.
    pub fn peer_addr<F>(mut self, f: F) -> Self
    where
        F: Fn(&Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.config().peer_source = Some(Arc::new(f));
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::new(inner, self.config.clone())
    }
}
