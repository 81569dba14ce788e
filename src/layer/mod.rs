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
mod budget;
mod check;
mod config;
mod drive;
mod future;
mod meter;
mod notify;
mod principal;
mod response;
mod service;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, Response};
use tower_layer::Layer;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use meter::{Meter, MeterRefusal};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use principal::MissingPrincipal;
pub use principal::{CredentialSource, Principal};
pub use response::{
    QUOTA_WARNING, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET,
    default_rejection_response, service_exception_report,
};
pub use service::AuthService;

use self::config::{Config, Settings};
use crate::clock::{Clock, SystemClock};
use crate::credentials::{CredentialRules, Realm};
use crate::error::ConfigError;
use crate::events::EventSink;
use crate::limits::{DEFAULT_RATE_LIMITER_CAPACITY, SharedRateLimiter};
use crate::limits::{InMemoryUsageCounter, UsageCounter};
use crate::policy::{Policy, RouteTable};
use crate::rejection::Rejection;
use crate::restrict::{ForwardedHeader, TrustedProxies};
use crate::signed::TileUrlSigner;
use crate::store::ClientStore;
use crate::token::TokenVerifier;

/// The share of a quota (in %) from which responses carry a warning header.
pub const DEFAULT_QUOTA_WARNING_PERCENT: u8 = 80;

pub use crate::store::DEFAULT_BACKEND_TIMEOUT;

/// Puts key-based access control in front of a service.
///
/// Every request is matched against the [`RouteTable`] first (unknown routes get 403 before
/// any credential is read), then its credential is extracted, checked for format (no store
/// lookup for a malformed key), looked up, decided by [`Policy`] (the same decision
/// [`Policy::explain`] gives), rate-limited and charged to the account's quotas. On
/// success a
/// [`Principal`] is inserted into the request's extensions.
///
/// The builder keeps plain settings; what derives from them (the in-process rate limiter
/// on its clock, the rejection templates of the realm) is made once, when the first
/// service is made, and shared by every service of the layer and its clones. So the order
/// of the calls never changes the result, and a setting changed on a clone leaves the
/// original as it was.
#[derive(Clone)]
#[must_use]
pub struct AuthLayer {
    settings: Settings,
    /// What the services share, made from `settings` on first use.
    built: Arc<OnceLock<Arc<Config>>>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("routes", &self.settings.policy.routes().routes().len())
            .field("realm", &self.settings.realm)
            .field("allow_preflight", &self.settings.allow_preflight)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// A layer reading clients from `store` and routes from `routes`, with the defaults:
    /// `apikey` parameter, 4 KiB credential limit, no trusted proxies, realm `gis-auth`,
    /// preflight not exempt, credentials stripped, 2 s store budget, system clock, usage
    /// counted in memory with a quota warning from 80 %.
    pub fn new(store: Arc<dyn ClientStore>, routes: RouteTable) -> Self {
        Self {
            settings: Settings {
                store,
                verifier: None,
                signer: None,
                policy: Policy::new(routes),
                usage: Arc::new(InMemoryUsageCounter::new()),
                rate_limiter_capacity: DEFAULT_RATE_LIMITER_CAPACITY,
                shared_rate_limiter: None,
                quota_warning: Some(DEFAULT_QUOTA_WARNING_PERCENT),
                credentials: CredentialRules::default(),
                proxies: TrustedProxies::none(),
                forwarded: ForwardedHeader::default(),
                clock: Arc::new(SystemClock),
                realm: Realm::default(),
                allow_preflight: false,
                strip_credentials: true,
                backend_timeout: Some(DEFAULT_BACKEND_TIMEOUT),
                responder: None,
                peer_source: None,
                events: None,
            },
            built: Arc::default(),
        }
    }

    /// The settings, to change: what was built from them is made again.
    fn settings(&mut self) -> &mut Settings {
        self.built = Arc::default();
        &mut self.settings
    }

    /// Verifies bearer tokens with `verifier`. Without one, every bearer token is refused
    /// (401 `invalid_token`).
    pub fn token_verifier(mut self, verifier: Arc<dyn TokenVerifier>) -> Self {
        self.settings().verifier = Some(verifier);
        self
    }

    /// Accepts signed tile URLs minted by `signer` (or by a signer sharing its keys) as a
    /// third credential: a request whose query has a `sig` parameter is then a signed URL.
    /// Its answer may be cached publicly until the URL expires. Like an API key, the URL's
    /// parameters ([`SIGNED_URL_PARAMS`](crate::signed::SIGNED_URL_PARAMS)) are removed
    /// before the wrapped service sees the request, unless credentials are kept.
    pub fn signed_tile_urls(mut self, signer: TileUrlSigner) -> Self {
        self.settings().signer = Some(signer);
        self
    }

    /// The query parameter that carries API keys (matched ignoring ASCII case).
    pub fn query_param(mut self, name: impl Into<String>) -> Self {
        let rules = self.settings.credentials.clone().query_param(name.into());
        self.settings().credentials = rules;
        self
    }

    /// The header that carries API keys (`X-Api-Key` by default), or `None` to read keys
    /// from the query only. A key in the header works like one in the query: never beside
    /// another credential, removed before the wrapped service runs, and its responses made
    /// `Cache-Control: private` and `Vary` on the header.
    pub fn api_key_header(mut self, name: Option<http::HeaderName>) -> Self {
        let rules = self.settings.credentials.clone().api_key_header(name);
        self.settings().credentials = rules;
        self
    }

    /// The largest key or token accepted, in bytes; longer ones get 400 before any hashing.
    pub fn max_credential_len(mut self, bytes: usize) -> Self {
        let rules = self.settings.credentials.clone().max_len(bytes);
        self.settings().credentials = rules;
        self
    }

    /// The proxies whose forwarded headers are believed.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.settings().proxies = proxies;
        self
    }

    /// Which forwarded header the trusted proxies append to (`X-Forwarded-For` by default).
    pub fn forwarded_header(mut self, which: ForwardedHeader) -> Self {
        self.settings().forwarded = which;
        self
    }

    /// The clock for expiry, quota days and rate limits.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.settings().clock = clock;
        self
    }

    /// Counts usage and enforces daily and monthly quotas with `counter` (shared by every instance when
    /// it is remote) instead of the in-memory default. A counter that fails or stalls gives
    /// 503.
    pub fn usage_counter(mut self, counter: Arc<dyn UsageCounter>) -> Self {
        self.settings().usage = counter;
        self
    }

    /// Keeps at most `max_clients` per-client rate limiters in memory (at least 1).
    pub fn rate_limiter_capacity(mut self, max_clients: u64) -> Self {
        self.settings().rate_limiter_capacity = max_clients;
        self
    }

    /// Enforces clients' rate limits with `limiter`, shared by every instance (such as
    /// `RedisRateLimiter`, feature `redis`), instead of in this process: one round trip per
    /// request of a client with a limit. A limiter that fails or stalls gives 503.
    ///
    /// A usage counter that [applies rate limits itself](crate::limits::UsageCounter::applies_rate_limits)
    /// (`RedisUsageCounter` does, under its own key prefix and clock: give it the limiter's)
    /// takes the limits over: the layer then hands them to the counter with the charge, one
    /// round trip for both, and does not ask `limiter`.
    pub fn shared_rate_limiter(mut self, limiter: Arc<dyn SharedRateLimiter>) -> Self {
        self.settings().shared_rate_limiter = Some(limiter);
        self
    }

    /// Tells `sink` of each account's quota reaching 80 % and 100 % (once per account,
    /// quota and period) and of a client or an account used within seven days of its
    /// expiry (once per expiry time). The checks compare numbers the layer has at hand
    /// after each charge; `emit` must not wait (a `WebhookSink` queues).
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.settings().events = Some(sink);
        self
    }

    /// From which share of the quota reported (in %) responses carry a `Quota-Warning` header;
    /// `None` for never.
    pub fn quota_warning(mut self, percent: Option<u8>) -> Self {
        self.settings().quota_warning = percent.map(|p| p.min(100));
        self
    }

    /// The realm of the `WWW-Authenticate` challenge: printable ASCII without `"` or `\`.
    pub fn realm(mut self, realm: impl Into<String>) -> Result<Self, ConfigError> {
        self.settings().realm = Realm::new(realm)?;
        Ok(self)
    }

    /// Lets CORS preflight requests (`OPTIONS` with `Access-Control-Request-Method`) through
    /// without credentials, so a CORS layer inside can answer them. Prefer CORS outside the
    /// layer: it then answers preflights itself, and puts its headers on refusals too.
    pub fn allow_preflight(mut self, yes: bool) -> Self {
        self.settings().allow_preflight = yes;
        self
    }

    /// Whether the `Authorization` header, the API key parameter and the API key header are
    /// removed before the wrapped service runs (on by default).
    pub fn strip_credentials(mut self, yes: bool) -> Self {
        self.settings().strip_credentials = yes;
        self
    }

    /// The time budget of one store lookup or token verification; past it the request gets
    /// 503. `None` waits as long as the store takes. Needs a Tokio runtime with time enabled.
    pub fn backend_timeout(mut self, budget: Option<Duration>) -> Self {
        self.settings().backend_timeout = budget;
        self
    }

    /// Builds rejection responses with `f` instead of [`default_rejection_response`]. The
    /// layer still adds `Vary: Origin` where due and the [`Rejection`] extension.
    pub fn rejection_response<F>(mut self, f: F) -> Self
    where
        F: Fn(&Rejection) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.settings().responder = Some(Arc::new(f));
        self
    }

    /// Reads the connection's peer address with `f` (for servers that put it somewhere other
    /// than a `SocketAddr` extension); when `f` gives `None`, the defaults are tried.
    pub fn peer_addr<F>(mut self, f: F) -> Self
    where
        F: Fn(&Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.settings().peer_source = Some(Arc::new(f));
        self
    }

    /// What the services of this layer share, made on first use.
    fn config(&self) -> &Arc<Config> {
        self.built.get_or_init(|| Arc::new(self.settings.build()))
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::new(inner, self.config().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientId, RateLimit};
    use crate::clock::ManualClock;
    use crate::limits::RateVerdict;
    use crate::store::InMemoryStore;

    fn layer() -> AuthLayer {
        AuthLayer::new(Arc::new(InMemoryStore::new()), RouteTable::new())
    }

    /// Whether `config`'s rate limiter runs on `clock` and keeps `capacity` limiters.
    fn limits_on(config: &Config, clock: &ManualClock, capacity: u64) {
        let debug = format!("{:?}", config.rate_limiter);
        assert!(debug.contains(&format!("capacity: {capacity}")), "{debug}");
        let (web, limit) = (ClientId::new("web").unwrap(), RateLimit::new(1, 1).unwrap());
        assert!(config.rate_limiter.check(&web, limit).is_allowed());
        assert!(!config.rate_limiter.check(&web, limit).is_allowed());
        clock.advance(time::Duration::seconds(1));
        assert_eq!(config.rate_limiter.check(&web, limit), RateVerdict::Allow);
    }

    #[test]
    fn the_rate_limiter_keeps_its_capacity_and_clock_whatever_the_order_of_the_calls() {
        let clock = ManualClock::new(time::macros::datetime!(2026-06-01 12:00 UTC));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let capacity_first = layer().rate_limiter_capacity(10).clock(shared.clone());
        limits_on(capacity_first.config(), &clock, 10);
        let clock_first = layer().clock(shared).rate_limiter_capacity(10);
        limits_on(clock_first.config(), &clock, 10);
    }

    #[test]
    fn the_realm_and_its_templates_do_not_depend_on_the_order_of_the_calls() {
        let render = |layer: AuthLayer| {
            let rejection = Rejection::new(crate::rule::RejectionKind::MissingCredential);
            layer.config().render(&rejection).headers()["www-authenticate"].clone()
        };
        let realm_first = layer().realm("maps").unwrap().allow_preflight(true);
        let realm_last = layer().allow_preflight(true).realm("maps").unwrap();
        assert_eq!(render(realm_first), "Bearer realm=\"maps\"");
        assert_eq!(render(realm_last), "Bearer realm=\"maps\"");
    }

    #[test]
    fn configuring_a_clone_after_its_services_are_made_neither_panics_nor_changes_them() {
        let original = layer().rate_limiter_capacity(5);
        let service = original.layer(());
        let changed = original
            .clone()
            .rate_limiter_capacity(7)
            .realm("other")
            .unwrap();
        assert!(Arc::ptr_eq(&service.config, original.config()));
        assert!(!Arc::ptr_eq(original.config(), changed.config()));
        let capacity = |layer: &AuthLayer| format!("{:?}", layer.config().rate_limiter);
        assert!(capacity(&original).contains("capacity: 5"));
        assert!(capacity(&changed).contains("capacity: 7"));
    }

    #[test]
    fn services_of_one_layer_and_of_its_clones_share_their_rate_limiters() {
        let layer = layer();
        let (a, b) = (layer.layer(()), layer.clone().layer(()));
        assert!(Arc::ptr_eq(&a.config, &b.config));
    }
}
