//! The store failing, stalling, or not asked at all.

use super::*;

/// A store whose every call fails.
struct BrokenStore;

#[async_trait]
impl ClientStore for BrokenStore {
    async fn client_by_key(&self, _: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        Err(BackendError::new("connection refused"))
    }

    async fn client_by_id(&self, _: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        Err(BackendError::new("connection refused"))
    }

    async fn account(&self, _: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        Err(BackendError::new("connection refused"))
    }
}

/// A store that never answers, counting the calls it swallowed.
#[derive(Default)]
struct StalledStore {
    calls: AtomicUsize,
}

impl StalledStore {
    async fn hang<T>(&self) -> T {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

#[async_trait]
impl ClientStore for StalledStore {
    async fn client_by_key(&self, _: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        self.hang().await
    }

    async fn client_by_id(&self, _: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        self.hang().await
    }

    async fn account(&self, _: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        self.hang().await
    }
}

/// A token verifier whose store is down, or that never answers.
enum TroubledVerifier {
    StoreDown,
    Stalled,
}

#[async_trait]
impl TokenVerifier for TroubledVerifier {
    async fn verify(&self, _: &str) -> Result<VerifiedToken, VerifyError> {
        match self {
            TroubledVerifier::StoreDown => Err(BackendError::new("connection refused").into()),
            TroubledVerifier::Stalled => std::future::pending().await,
        }
    }
}

#[tokio::test]
async fn a_failing_store_is_a_503_with_retry_after() {
    let world = World::new();
    let layer = world.layer_over(Arc::new(BrokenStore));
    let key = world.key();
    let r = world.send_via(&layer, get(&tile(&key))).await;
    r.assert_unavailable();
    r.assert_does_not_reveal(&key);
    r.assert_does_not_reveal("connection refused");
}

#[tokio::test]
async fn a_failing_store_behind_the_token_verifier_is_a_503() {
    let world = World::new();
    let layer = world
        .layer()
        .token_verifier(Arc::new(TroubledVerifier::StoreDown));
    let r = world
        .send_via(&layer, get("/geocode").bearer(&world.token()))
        .await;
    r.assert_unavailable();
}

#[tokio::test]
async fn the_cheap_refusals_come_before_the_store_fails() {
    let world = World::new();
    let layer = world.layer_over(Arc::new(BrokenStore));
    let r = world.send_via(&layer, get("/tiles/1/2/3.png")).await;
    r.assert_missing_credential();
    let r = world.send_via(&layer, get(&tile("not-a-key"))).await;
    r.assert_invalid_token();
    let r = world.send_via(&layer, get("/admin")).await;
    r.assert_access_denied();
    world.send_via(&layer, get("/health")).await.assert_ok();
}

/// Asserts that a request answered by a stall took its budget, and not much longer.
#[track_caller]
fn assert_waited_for(budget: Duration, waited: Duration) {
    assert!(
        waited >= budget && waited < budget + Duration::from_secs(1),
        "budget {budget:?}, answered after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_store_is_a_503_within_the_default_budget() {
    let world = World::new();
    let stalled = Arc::new(StalledStore::default());
    let layer = world.layer_over(stalled.clone());
    let started = tokio::time::Instant::now();
    let r = world.send_via(&layer, get(&tile(&world.key()))).await;
    assert_waited_for(gis_auth::layer::DEFAULT_BACKEND_TIMEOUT, started.elapsed());
    r.assert_unavailable();
    assert_eq!(stalled.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_store_is_a_503_within_a_configured_budget() {
    let world = World::new();
    let budget = Duration::from_millis(50);
    let layer = world
        .layer_over(Arc::new(StalledStore::default()))
        .backend_timeout(Some(budget));
    let started = tokio::time::Instant::now();
    let r = world.send_via(&layer, get(&tile(&world.key()))).await;
    assert_waited_for(budget, started.elapsed());
    r.assert_unavailable();
}

#[tokio::test(start_paused = true)]
async fn a_stalled_token_verifier_is_a_503_within_the_budget() {
    let world = World::new();
    let budget = Duration::from_millis(50);
    let layer = world
        .layer()
        .token_verifier(Arc::new(TroubledVerifier::Stalled))
        .backend_timeout(Some(budget));
    let started = tokio::time::Instant::now();
    let r = world
        .send_via(&layer, get("/geocode").bearer(&world.token()))
        .await;
    assert_waited_for(budget, started.elapsed());
    r.assert_unavailable();
}

#[tokio::test]
async fn a_malformed_key_never_reaches_the_store() {
    let world = World::new();
    let counting = Arc::new(CountingStore::new(world.store.clone()));
    let layer = world.layer_over(counting.clone());
    let key = world.key();
    let mut typo = key.clone().into_bytes();
    typo[30] = if typo[30] == b'q' { b'r' } else { b'q' };
    let typo = String::from_utf8(typo).expect("ASCII");
    let secret = world.acme.native.credential.expose().to_owned();
    let long = "a".repeat(5000);

    for req in [
        get(&tile(&typo)),
        get(&tile(&key[..key.len() - 1])),
        get(&tile(&format!("{key}A"))),
        get(&tile(&secret)),
        get(&tile("%ff")),
        get(&tile(&long)),
        get(&tile("")),
        get(&format!("{}&APIKEY={key}", tile(&key))),
        get(&tile(&key)).bearer("t"),
        get(&with_key("/admin", &key)),
        get(&tile(&key)).header("authorization", "Bearer a b"),
    ] {
        let r = world.send_via(&layer, req).await;
        assert!(r.status.is_client_error(), "{}", r.status);
    }
    assert_eq!(
        counting.calls(),
        0,
        "no lookup for a request refused on its face"
    );

    // A well-formed key is looked up, once.
    world
        .send_via(&layer, get(&tile(&stranger_key())))
        .await
        .assert_invalid_token();
    assert_eq!(counting.calls(), 1);
    world.send_via(&layer, get(&tile(&key))).await.assert_ok();
    assert_eq!(counting.calls(), 2);
}

#[tokio::test]
async fn an_account_deleted_from_under_its_client_is_an_unknown_credential() {
    /// A store that knows the client but has lost its account.
    struct Orphaned(Arc<gis_auth::store::InMemoryStore>);

    #[async_trait]
    impl ClientStore for Orphaned {
        async fn client_by_key(&self, d: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
            self.0.client_by_key(d).await
        }

        async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
            self.0.client_by_id(id).await
        }

        async fn account(&self, _: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
            Ok(None)
        }
    }

    let world = World::new();
    let layer = world.layer_over(Arc::new(Orphaned(world.store.clone())));
    let r = world.send_via(&layer, get(&tile(&world.key()))).await;
    r.assert_invalid_token();
}
