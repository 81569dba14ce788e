//! The layer's settings while it is built ([`Settings`]), and what a service runs on once it
//! is ([`Config`]): the derived parts (the in-process rate limiter on its clock, the
//! rejection templates of the realm) are made from the settings once, in
//! [`Settings::build`], so the order of the builder's calls never matters.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::AuthLayer;
//! use gis_auth::clock::{Clock, ManualClock};
//! use gis_auth::policy::RouteTable;
//! use gis_auth::store::InMemoryStore;
//!
//! let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH));
//! let store = Arc::new(InMemoryStore::new());
//! // Either order gives the same layer: a limiter for ten clients on the manual clock.
//! let _ = AuthLayer::new(store.clone(), RouteTable::new()).rate_limiter_capacity(10).clock(clock.clone());
//! let _ = AuthLayer::new(store, RouteTable::new()).clock(clock).rate_limiter_capacity(10);
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Extensions, HeaderMap, Response};
use tracing::Span;

use super::notify::LayerEvents;
use super::response::{RejectionTemplates, add_vary_origin};
use crate::clock::Clock;
use crate::credentials::{CredentialRules, Realm};
use crate::events::EventSink;
use crate::limits::{ClientRateLimiter, SharedRateLimiter, UsageCounter};
use crate::policy::{Decision, Policy, Rule};
use crate::rejection::Rejection;
use crate::restrict::{ForwardedHeader, PeerSource, TrustedProxies};
use crate::rule::RejectionKind;
use crate::signed::TileUrlSigner;
use crate::store::{ClientStore, Resolved};
use crate::token::{TokenVerifier, VerifiedToken, VerifyError};

/// A user's rejection response builder.
pub(crate) type Responder = Arc<dyn Fn(&Rejection) -> Response<Bytes> + Send + Sync>;

/// What [`AuthLayer`](super::AuthLayer) is told while it is built: plain values only.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) store: Arc<dyn ClientStore>,
    pub(crate) verifier: Option<Arc<dyn TokenVerifier>>,
    pub(crate) signer: Option<TileUrlSigner>,
    pub(crate) policy: Policy,
    pub(crate) usage: Arc<dyn UsageCounter>,
    pub(crate) rate_limiter_capacity: u64,
    pub(crate) shared_rate_limiter: Option<Arc<dyn SharedRateLimiter>>,
    pub(crate) quota_warning: Option<u8>,
    pub(crate) credentials: CredentialRules,
    pub(crate) proxies: TrustedProxies,
    pub(crate) forwarded: ForwardedHeader,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) realm: Realm,
    pub(crate) allow_preflight: bool,
    pub(crate) strip_credentials: bool,
    pub(crate) backend_timeout: Option<Duration>,
    pub(crate) responder: Option<Responder>,
    pub(crate) peer_source: Option<PeerSource>,
    pub(crate) events: Option<Arc<dyn EventSink>>,
}

impl Settings {
    /// The configuration the services of a layer share, with its derived parts made.
    pub(crate) fn build(&self) -> Config {
        let settings = self.clone();
        Config {
            store: settings.store,
            verifier: settings
                .verifier
                .unwrap_or_else(|| Arc::new(NoTokenVerifier)),
            credentials: settings.credentials.signed_urls(settings.signer.is_some()),
            signer: settings.signer,
            policy: settings.policy,
            usage: settings.usage,
            rate_limiter: ClientRateLimiter::new(settings.clock.clone())
                .capacity(settings.rate_limiter_capacity),
            rate_limits_in_charge: self.shared_rate_limiter.is_some()
                && self.usage.applies_rate_limits(),
            shared_rate_limiter: settings.shared_rate_limiter,
            quota_warning: settings.quota_warning,
            proxies: settings.proxies,
            forwarded: settings.forwarded,
            clock: settings.clock,
            templates: RejectionTemplates::new(&settings.realm),
            allow_preflight: settings.allow_preflight,
            strip_credentials: settings.strip_credentials,
            backend_timeout: settings.backend_timeout,
            responder: settings.responder,
            peer_source: settings.peer_source,
            events: settings.events.map(LayerEvents::new),
            proxies_warned: AtomicBool::new(false),
        }
    }
}

/// What the services of one layer run on, made once from its [`Settings`].
pub(crate) struct Config {
    pub(crate) store: Arc<dyn ClientStore>,
    /// The layer's verifier, or one that refuses every token.
    pub(crate) verifier: Arc<dyn TokenVerifier>,
    /// The signer whose URLs are accepted, if any.
    pub(crate) signer: Option<TileUrlSigner>,
    pub(crate) policy: Policy,
    pub(crate) usage: Arc<dyn UsageCounter>,
    pub(crate) rate_limiter: ClientRateLimiter,
    pub(crate) shared_rate_limiter: Option<Arc<dyn SharedRateLimiter>>,
    /// Whether the shared rate limits are applied by the usage counter, in the charge,
    /// rather than asked of the shared limiter first: a layer with a shared limiter and a
    /// counter that [applies them](UsageCounter::applies_rate_limits).
    pub(crate) rate_limits_in_charge: bool,
    pub(crate) quota_warning: Option<u8>,
    pub(crate) credentials: CredentialRules,
    pub(crate) proxies: TrustedProxies,
    pub(crate) forwarded: ForwardedHeader,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) templates: RejectionTemplates,
    pub(crate) allow_preflight: bool,
    pub(crate) strip_credentials: bool,
    pub(crate) backend_timeout: Option<Duration>,
    pub(crate) responder: Option<Responder>,
    pub(crate) peer_source: Option<PeerSource>,
    /// Where the quota and expiry events go, with the watches that tell each once.
    pub(crate) events: Option<LayerEvents>,
    pub(crate) proxies_warned: AtomicBool,
}

impl Config {
    /// The rejection as a response: the user's builder or the realm's templates, with
    /// `Vary: Origin` where due and the [`Rejection`] in the extensions.
    pub(crate) fn render(&self, rejection: &Rejection) -> Response<Bytes> {
        let mut res = match &self.responder {
            Some(custom) => custom(rejection),
            None => self.templates.response(rejection),
        };
        if rejection.varies_on_origin() {
            add_vary_origin(res.headers_mut());
        }
        res.extensions_mut().insert(rejection.clone());
        res
    }

    /// Logs a refusal at `debug`, notes it on the request's span, and renders it.
    pub(crate) fn refuse(&self, rejection: &Rejection) -> Response<Bytes> {
        let rule = rejection.decision().and_then(Decision::rule);
        if let Some(span) = request_span() {
            span.record("decision", rejection.error_code());
            if let Some(rule) = rule {
                span.record("rule", rule.as_str());
            }
        }
        tracing::debug!(
            reason = rejection.error_code(),
            kind = ?rejection.kind(),
            rule = rule.map(Rule::as_str),
            "request refused"
        );
        self.render(rejection)
    }

    /// Warns once when a client with IP rules is called with forwarded headers and no
    /// proxy is trusted: behind a proxy, every request then comes from the proxy's address.
    pub(crate) fn warn_if_proxies_missing(&self, headers: &HeaderMap) {
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

/// The request's span, to note the client and the decision on. The span is at `debug`:
/// when no subscriber takes `debug` events at all, it is disabled, and `None` spares the
/// lookup of the current span on every request.
pub(crate) fn request_span() -> Option<Span> {
    tracing::level_enabled!(tracing::Level::DEBUG).then(Span::current)
}

/// Logs what restrictions running report-only would have refused, at `info` under the
/// `gis_auth::shadow` target.
pub(crate) fn report_shadowed(who: &Resolved, decision: &Decision) {
    for finding in &decision.shadowed {
        tracing::info!(
            target: "gis_auth::shadow",
            client = %who.client.id(),
            account = %who.account.id,
            api = decision.api.as_deref(),
            rule = finding.rule.as_str(),
            reason = %finding.reason,
            "report-only restriction would have refused the request"
        );
    }
}

/// The verifier of a layer configured without one: every bearer token is refused (401
/// `invalid_token`).
struct NoTokenVerifier;

#[async_trait]
impl TokenVerifier for NoTokenVerifier {
    async fn verify(&self, _: &str) -> Result<VerifiedToken, VerifyError> {
        Err(VerifyError::Invalid(RejectionKind::UnknownCredential))
    }

    fn verify_now(&self, _: &str) -> Option<Result<VerifiedToken, VerifyError>> {
        Some(Err(VerifyError::Invalid(RejectionKind::UnknownCredential)))
    }
}
