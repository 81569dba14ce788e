//! Fail closed under faults: a store or usage counter that fails or stalls is a 503 with
//! `Retry-After` within the budget (never a 200, never a 401, never a hung request); a
//! response future dropped mid-check leaves nothing behind; oversized credentials are
//! refused before any work; and a flood of made-up keys leaves no state behind.
//!
//! Time is Tokio's paused clock wherever a budget runs out: nothing here sleeps.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

use async_trait::async_trait;
use gis_auth::client::{
    Account, AccountId, Client, ClientId, ClientSpec, CredentialKind, KeyDigest, PlainCredential,
};
use gis_auth::layer::DEFAULT_BACKEND_TIMEOUT;
use gis_auth::limits::{Charge, Charged, DailyUsage, InMemoryUsageCounter, UsageCounter};
use gis_auth::store::{BackendError, ClientStore, InMemoryStore, Resolved};
use gis_auth::token::{JwtVerifier, SigningKey, TokenIssuer};
use gis_auth::{AuthLayer, RejectionKind};
use http::StatusCode;
use time::Date;
use tower::Layer;

use crate::harness::reply::send;
use crate::harness::world::{CountingStore, Echo, Req, START, World, get, tile, with_key};

// ---- faulty parts ------------------------------------------------------------------------

/// How a faulty part behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Every call fails at once.
    Fails,
    /// No call ever answers.
    Stalls,
}

/// Sets a flag when dropped: tells whether a pending call was cancelled.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A usage counter that fails or stalls, counting the calls that reached it and the
/// calls whose future was dropped before answering.
struct FaultyCounter {
    fault: Fault,
    calls: AtomicUsize,
    dropped: Arc<AtomicBool>,
}

impl FaultyCounter {
    fn new(fault: Fault) -> Arc<Self> {
        Arc::new(Self {
            fault,
            calls: AtomicUsize::new(0),
            dropped: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn misbehave<T>(&self) -> Result<T, BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let _flag = DropFlag(self.dropped.clone());
        match self.fault {
            Fault::Fails => Err(BackendError::new("counter offline at 10.0.0.9")),
            Fault::Stalls => std::future::pending().await,
        }
    }
}

#[async_trait]
impl UsageCounter for FaultyCounter {
    async fn charge(&self, _: &Charge<'_>) -> Result<Charged, BackendError> {
        self.misbehave().await
    }

    async fn record_refusal(&self, _: &gis_auth::limits::Refused<'_>) -> Result<(), BackendError> {
        self.misbehave().await
    }

    async fn used(&self, _: &AccountId, _: Date) -> Result<u64, BackendError> {
        self.misbehave().await
    }

    async fn usage(
        &self,
        _: &AccountId,
        _: Date,
        _: Date,
    ) -> Result<Vec<DailyUsage>, BackendError> {
        self.misbehave().await
    }
}

/// A client store that fails or stalls, with the same bookkeeping.
struct FaultyStore {
    fault: Fault,
    calls: AtomicUsize,
    dropped: Arc<AtomicBool>,
}

impl FaultyStore {
    fn new(fault: Fault) -> Arc<Self> {
        Arc::new(Self {
            fault,
            calls: AtomicUsize::new(0),
            dropped: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn misbehave<T>(&self) -> Result<T, BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let _flag = DropFlag(self.dropped.clone());
        match self.fault {
            Fault::Fails => Err(BackendError::new("store offline at 10.0.0.8")),
            Fault::Stalls => std::future::pending().await,
        }
    }
}

#[async_trait]
impl ClientStore for FaultyStore {
    async fn client_by_key(&self, _: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        self.misbehave().await
    }

    async fn client_by_id(&self, _: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        self.misbehave().await
    }

    async fn account(&self, _: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        self.misbehave().await
    }

    async fn resolve_key(&self, _: &KeyDigest) -> Result<Option<Resolved>, BackendError> {
        self.misbehave().await
    }

    async fn resolve_id(&self, _: &ClientId) -> Result<Option<Resolved>, BackendError> {
        self.misbehave().await
    }
}

/// A real token for `world`'s native client, verified by a [`JwtVerifier`] over `store`.
fn jwt_layer(world: &World, store: Arc<dyn ClientStore>) -> (AuthLayer, String) {
    let clock = Arc::new(world.clock.clone());
    let issuer = TokenIssuer::new(SigningKey::hs256("k1", &[7; 32]).expect("a key")).clock(clock);
    let native = &world.acme.native.client;
    let token = issuer
        .issue(native, &world.acme.account, native.roles(), 0, None)
        .expect("a token")
        .access_token;
    let verifier = JwtVerifier::new(issuer, store.clone());
    (
        world.layer_over(store).token_verifier(Arc::new(verifier)),
        token,
    )
}

/// Sends `req` through `layer`, and gives the reply and how long it took on Tokio's clock.
async fn timed(layer: &AuthLayer, req: Req) -> (crate::harness::reply::Reply, Duration) {
    let started = tokio::time::Instant::now();
    let reply = send(layer.layer(Echo), req).await;
    (reply, started.elapsed())
}

#[track_caller]
fn assert_within(budget: Duration, waited: Duration) {
    assert!(
        waited <= budget + Duration::from_millis(10),
        "budget {budget:?}, answered after {waited:?}"
    );
}

// ---- a failing or stalled store --------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_failing_store_is_a_503_for_keys_and_tokens_alike_never_a_401() {
    let world = World::new();
    let store = FaultyStore::new(Fault::Fails);
    let (layer, token) = jwt_layer(&world, store.clone());
    let unknown = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    for req in [
        get(&tile(&world.key())),
        get(&tile(unknown.expose())),
        get("/geocode").bearer(&token),
    ] {
        let (r, waited) = timed(&layer, req).await;
        r.assert_unavailable();
        r.assert_does_not_reveal("10.0.0.8");
        assert_eq!(waited, Duration::ZERO, "a failure is answered at once");
    }
    assert_eq!(store.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_store_is_a_503_within_the_default_budget_for_keys_and_tokens() {
    let world = World::new();
    let store = FaultyStore::new(Fault::Stalls);
    let (layer, token) = jwt_layer(&world, store.clone());
    assert_eq!(DEFAULT_BACKEND_TIMEOUT, Duration::from_secs(2));
    for req in [get(&tile(&world.key())), get("/geocode").bearer(&token)] {
        let (r, waited) = timed(&layer, req).await;
        r.assert_unavailable();
        assert_within(DEFAULT_BACKEND_TIMEOUT, waited);
        assert!(
            waited >= DEFAULT_BACKEND_TIMEOUT,
            "answered after {waited:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_budget_is_configurable_and_bounds_every_request() {
    let world = World::new();
    let store = FaultyStore::new(Fault::Stalls);
    for budget in [Duration::from_millis(1), Duration::from_millis(250)] {
        let layer = world
            .layer_over(store.clone())
            .backend_timeout(Some(budget));
        let (r, waited) = timed(&layer, get(&tile(&world.key()))).await;
        r.assert_unavailable();
        assert_within(budget, waited);
    }
}

// ---- a failing or stalled usage counter ------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_failing_usage_counter_is_a_503_not_a_free_request() {
    let world = World::new();
    let counter = FaultyCounter::new(Fault::Fails);
    let layer = world.layer().usage_counter(counter.clone());
    for req in [
        get(&tile(&world.key())),
        get("/geocode").bearer(&world.token()),
    ] {
        let (r, waited) = timed(&layer, req).await;
        r.assert_unavailable();
        r.assert_does_not_reveal("10.0.0.9");
        assert_eq!(waited, Duration::ZERO);
    }
    assert_eq!(counter.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_usage_counter_is_a_503_within_the_budget() {
    let world = World::new();
    let counter = FaultyCounter::new(Fault::Stalls);
    let budget = Duration::from_millis(300);
    let layer = world
        .layer()
        .usage_counter(counter.clone())
        .backend_timeout(Some(budget));
    let (r, waited) = timed(&layer, get(&tile(&world.key()))).await;
    r.assert_unavailable();
    assert_within(budget, waited);
    assert!(waited >= budget);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_stands_when_the_counter_cannot_record_it() {
    let world = World::new();
    let (_, key) =
        world.js_client(ClientSpec::javascript("Web").allowed_origins(["maps.acme.test"]));
    for fault in [Fault::Fails, Fault::Stalls] {
        let counter = FaultyCounter::new(fault);
        let layer = world
            .layer()
            .usage_counter(counter.clone())
            .backend_timeout(Some(Duration::from_millis(100)));
        let (r, waited) = timed(&layer, get(&tile(&key)).origin("https://evil.test")).await;
        r.assert_access_denied();
        assert_eq!(r.kind(), RejectionKind::OriginNotAllowed);
        assert_within(Duration::from_millis(100), waited);
        assert_eq!(
            counter.calls.load(Ordering::SeqCst),
            1,
            "the refusal was offered"
        );
    }
}

// ---- dropping the response future mid-check -----------------------------------------

/// Polls `fut` once; it must still be waiting.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        fut.poll(&mut cx).is_pending(),
        "the check was meant to wait"
    );
}

#[tokio::test(start_paused = true)]
async fn a_response_future_dropped_during_the_store_lookup_leaves_nothing_behind() {
    let world = World::new();
    let store = FaultyStore::new(Fault::Stalls);
    let counter = Arc::new(InMemoryUsageCounter::new());
    let layer = world
        .layer_over(store.clone())
        .usage_counter(counter.clone());
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    {
        let mut svc = layer.layer(Echo);
        let fut = tower::Service::call(&mut svc, get(&tile(&world.key())).into_request());
        let mut fut = pin!(fut);
        poll_once(fut.as_mut());
        assert_eq!(store.calls.load(Ordering::SeqCst), 1);
        assert!(!store.dropped.load(Ordering::SeqCst));
    }
    assert!(
        store.dropped.load(Ordering::SeqCst),
        "the pending lookup was cancelled with the response future"
    );
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        tasks_before,
        "no task was left running"
    );
    let usage = counter
        .usage(&world.acme_id(), START.date(), START.date())
        .await
        .expect("in memory");
    assert!(usage.is_empty(), "nothing was charged: {usage:?}");
    // The timer of the budget went with it: time can pass without anything firing.
    tokio::time::advance(DEFAULT_BACKEND_TIMEOUT * 2).await;
    assert_eq!(store.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_response_future_dropped_during_the_charge_counts_nothing() {
    let world = World::new();
    let counter = FaultyCounter::new(Fault::Stalls);
    let layer = world.layer().usage_counter(counter.clone());
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let handler_calls = Arc::new(AtomicUsize::new(0));
    {
        let calls = handler_calls.clone();
        let mut svc = layer.layer(tower::service_fn(move |_req: http::Request<_>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
        }));
        let req: http::Request<http_body_util::Full<bytes::Bytes>> =
            get(&tile(&world.key())).into_request();
        let fut = tower::Service::call(&mut svc, req);
        let mut fut = pin!(fut);
        poll_once(fut.as_mut());
        assert_eq!(counter.calls.load(Ordering::SeqCst), 1);
    }
    assert!(
        counter.dropped.load(Ordering::SeqCst),
        "the charge was cancelled"
    );
    assert_eq!(
        handler_calls.load(Ordering::SeqCst),
        0,
        "the handler never ran"
    );
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        tasks_before
    );
}

// ---- limits ----------------------------------------------------------------------------

#[tokio::test]
async fn oversized_keys_and_tokens_are_refused_before_the_store_or_any_hashing() {
    let world = World::new();
    let counting = Arc::new(CountingStore::new(world.store.clone()));
    let layer = world.layer_over(counting.clone());
    let long = "A".repeat(4097);
    for req in [
        get(&tile(&long)),
        get(&tile(&"%41".repeat(4097))),
        get("/geocode").bearer(&long),
        get("/geocode").bearer(&"a".repeat(64 * 1024)),
    ] {
        let r = world.send_via(&layer, req).await;
        r.assert_invalid_request();
        assert_eq!(r.kind(), RejectionKind::CredentialTooLong);
    }
    // At the limit, a key is read (and, being made up, refused without a lookup).
    let r = world.send_via(&layer, get(&tile(&"A".repeat(4096)))).await;
    r.assert_invalid_token();
    assert_eq!(counting.calls(), 0);
    assert_eq!(world.tokens.calls(), 0);
}

#[tokio::test]
async fn the_credential_limit_is_configurable() {
    let world = World::new();
    let layer = world.layer().max_credential_len(40);
    let r = world.send_via(&layer, get(&tile(&world.key()))).await;
    assert_eq!(r.kind(), RejectionKind::CredentialTooLong);
    let layer = world.layer().max_credential_len(60);
    world
        .send_via(&layer, get(&tile(&world.key())))
        .await
        .assert_ok();
}

#[tokio::test]
async fn huge_queries_and_headers_are_answered_without_trouble() {
    let world = World::new();
    let key = world.key();
    // 12,000 parameters around the key (a URI stays under 64 KiB).
    let noise = "x=1&".repeat(6_000);
    let r = world
        .send(get(&format!(
            "/tiles/1/2/3.png?{noise}apikey={key}&{noise}y=2"
        )))
        .await;
    r.assert_ok();
    assert!(!r.seen_uri().contains(&key));
    // A 256 KiB Origin and Referer on a client without origin rules change nothing.
    let big = format!("https://{}.example.com", "a".repeat(256 * 1024));
    world
        .send(get(&tile(&key)).origin(&big).referer(&big))
        .await
        .assert_ok();
    // Many `Authorization` headers: refused as more than one credential.
    let mut req = get(&tile(&key));
    for _ in 0..1000 {
        req = req.raw_header("authorization", b"Basic eDp5");
    }
    let r = world.send(req).await;
    assert_eq!(r.kind(), RejectionKind::MultipleCredentials);
}

// ---- floods ----------------------------------------------------------------------------

#[tokio::test]
async fn a_flood_of_made_up_keys_leaves_no_state_behind() {
    let world = World::new();
    let counter = Arc::new(InMemoryUsageCounter::new());
    let layer = world.layer().usage_counter(counter.clone());
    let svc = layer.layer(Echo);
    let clients = world.store.client_count();
    for i in 0..5_000 {
        // Alternate well-formed keys (checksum right, never stored) and garbage.
        let key = if i % 2 == 0 {
            PlainCredential::generate(CredentialKind::ApiKey)
                .expect("random")
                .expose()
                .to_owned()
        } else {
            format!("gis_apikey_{i:049}")
        };
        let r = send(svc.clone(), get(&tile(&key))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(world.store.client_count(), clients);
    let usage = counter
        .usage(&world.acme_id(), START.date(), START.date())
        .await
        .expect("in memory");
    assert!(usage.is_empty(), "unknown keys are not counted: {usage:?}");
}

#[tokio::test]
async fn a_flood_of_forged_tokens_is_never_cached() {
    let world = World::new();
    let store: Arc<dyn ClientStore> = world.store.clone();
    let clock = Arc::new(world.clock.clone());
    let issuer = TokenIssuer::new(SigningKey::hs256("k1", &[7; 32]).expect("a key")).clock(clock);
    let forger = TokenIssuer::new(SigningKey::hs256("k1", &[8; 32]).expect("a key"))
        .clock(Arc::new(world.clock.clone()));
    let verifier = Arc::new(JwtVerifier::new(issuer, store.clone()));
    let layer = world.layer().token_verifier(verifier.clone());
    let svc = layer.layer(Echo);
    let native = &world.acme.native.client;
    for i in 0..500 {
        let token = if i % 2 == 0 {
            forger
                .issue(native, &world.acme.account, native.roles(), 0, None)
                .expect("a token")
                .access_token
        } else {
            format!("eyJhbGciOiJIUzI1NiJ9.{i}.{i}")
        };
        let r = send(svc.clone(), get("/geocode").bearer(&token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert!(
        format!("{verifier:?}").contains("cache: Some(0)"),
        "{verifier:?}"
    );
}

#[tokio::test]
async fn a_store_that_answers_at_once_and_one_that_waits_decide_alike() {
    let world = World::new();
    let waiting = Arc::new(CountingStore::new(world.store.clone()));
    let (_, origin_key) =
        world.js_client(ClientSpec::javascript("Web").allowed_origins(["maps.acme.test"]));
    let unknown = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let token = world.token();
    let cases: Vec<Box<dyn Fn() -> Req>> = vec![
        Box::new(|| get(&tile(&world.key()))),
        Box::new(|| get(&tile(unknown.expose()))),
        Box::new(|| get(&tile(&origin_key)).origin("https://maps.acme.test")),
        Box::new(|| get(&tile(&origin_key)).origin("https://evil.test")),
        Box::new(|| get("/geocode").bearer(&token)),
        Box::new(|| get(&with_key("/geocode", &world.key()))),
    ];
    let at_once: Arc<InMemoryStore> = world.store.clone();
    for case in &cases {
        let a = world
            .send_via(&world.layer_over(at_once.clone()), case())
            .await;
        let b = world
            .send_via(&world.layer_over(waiting.clone()), case())
            .await;
        assert_eq!(a.status, b.status);
        assert_eq!(a.json(), b.json());
    }
    assert!(waiting.calls() > 0, "the waiting store was asked");
}
