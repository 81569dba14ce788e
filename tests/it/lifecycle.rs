//! Changes to clients and accounts, each observed on the very next request: deactivation,
//! regeneration with and without grace, deletion, expiry on an injected clock; and a store
//! that fails, stalls, or must not be asked at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::world::{
    CountingStore, START, World, get, roles, stranger_key, tile, with_key,
};
use async_trait::async_trait;
use gis_auth::RejectionKind;
use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, KeyDigest, Role, Status};
use gis_auth::store::{ClientStore, StoreError};
use gis_auth::token::{TokenVerifier, VerifiedToken, VerifyError};
use time::Duration as Span;

// ---- switching off -------------------------------------------------------------------

#[tokio::test]
async fn a_deactivated_javascript_client_is_refused_on_its_very_next_request() {
    let world = World::new();
    let key = world.key();
    world.send(get(&tile(&key))).await.assert_ok();
    world
        .store
        .set_client_status(&world.js_id(), Status::Inactive)
        .expect("stored");
    let r = world.send(get(&tile(&key))).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::Inactive);
    world
        .store
        .set_client_status(&world.js_id(), Status::Active)
        .expect("stored");
    world.send(get(&tile(&key))).await.assert_ok();
}

#[tokio::test]
async fn a_deactivated_native_client_has_its_tokens_refused_on_the_next_request() {
    let world = World::new();
    let token = world.token();
    world.send(get("/geocode").bearer(&token)).await.assert_ok();
    world
        .store
        .set_client_status(&world.native_id(), Status::Inactive)
        .expect("stored");
    let r = world.send(get("/geocode").bearer(&token)).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::Inactive);
}

#[tokio::test]
async fn a_client_created_inactive_is_refused() {
    let world = World::new();
    let (_, key) = world.js_client(ClientSpec::javascript("Paused").status(Status::Inactive));
    world.send(get(&tile(&key))).await.assert_invalid_token();
}

#[tokio::test]
async fn a_deactivated_account_disables_all_its_clients_on_the_next_request() {
    let world = World::new();
    let key = world.key();
    let token = world.token();
    let (_, extra) = world.js_client(ClientSpec::javascript("Second map"));
    world
        .store
        .update_account(&world.acme_id(), |a| a.status = Status::Inactive)
        .expect("stored");
    for r in [
        world.send(get(&tile(&key))).await,
        world.send(get(&tile(&extra))).await,
        world.send(get("/geocode").bearer(&token)).await,
        world.send(get("/account/profile").bearer(&token)).await,
    ] {
        r.assert_invalid_token();
        assert_eq!(r.kind(), RejectionKind::Inactive);
    }
    // Another account's clients are untouched.
    let other = world.add_account("other", [Role::EVALUATOR]);
    world
        .send(get(&tile(other.javascript.credential.expose())))
        .await
        .assert_ok();
    // And switching the account back on restores them.
    world
        .store
        .update_account(&world.acme_id(), |a| a.status = Status::Active)
        .expect("stored");
    world.send(get(&tile(&key))).await.assert_ok();
}

// ---- regeneration --------------------------------------------------------------------

#[tokio::test]
async fn a_regenerated_key_without_grace_stops_the_old_one_at_once() {
    let world = World::new();
    let old = world.key();
    world.send(get(&tile(&old))).await.assert_ok();
    let new = world
        .store
        .regenerate(&world.js_id(), None)
        .expect("stored")
        .expose()
        .to_owned();
    assert_ne!(new, old);
    world.send(get(&tile(&old))).await.assert_invalid_token();
    let r = world.send(get(&tile(&new))).await;
    r.assert_ok();
    assert_eq!(r.principal()["client_id"], world.js_id().as_str());
}

#[tokio::test]
async fn a_regenerated_key_with_grace_keeps_the_old_one_until_the_grace_ends() {
    let world = World::new();
    let old = world.key();
    let new = world
        .store
        .regenerate(&world.js_id(), Some(Span::hours(1)))
        .expect("stored")
        .expose()
        .to_owned();
    world.send(get(&tile(&old))).await.assert_ok();
    world.send(get(&tile(&new))).await.assert_ok();

    world
        .clock
        .set(START + Span::minutes(59) + Span::seconds(59));
    world.send(get(&tile(&old))).await.assert_ok();

    world.clock.set(START + Span::hours(1));
    world.send(get(&tile(&old))).await.assert_invalid_token();
    world.send(get(&tile(&new))).await.assert_ok();
}

#[tokio::test]
async fn regenerating_again_without_grace_ends_a_running_grace_period() {
    let world = World::new();
    let first = world.key();
    let second = world
        .store
        .regenerate(&world.js_id(), Some(Span::days(1)))
        .expect("stored")
        .expose()
        .to_owned();
    let third = world
        .store
        .regenerate(&world.js_id(), None)
        .expect("stored")
        .expose()
        .to_owned();
    world.send(get(&tile(&first))).await.assert_invalid_token();
    world.send(get(&tile(&second))).await.assert_invalid_token();
    world.send(get(&tile(&third))).await.assert_ok();
}

#[tokio::test]
async fn a_regenerated_secret_revokes_the_tokens_minted_before() {
    let world = World::new();
    let before = world.token();
    world
        .send(get("/geocode").bearer(&before))
        .await
        .assert_ok();
    world
        .store
        .regenerate(&world.native_id(), None)
        .expect("stored");
    let r = world.send(get("/geocode").bearer(&before)).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::Revoked);
    world
        .send(get("/geocode").bearer(&world.token()))
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_regenerated_secret_with_grace_keeps_earlier_tokens_until_the_grace_ends() {
    let world = World::new();
    let before = world.token();
    world
        .store
        .regenerate(&world.native_id(), Some(Span::minutes(10)))
        .expect("stored");
    world
        .send(get("/geocode").bearer(&before))
        .await
        .assert_ok();
    world.clock.advance(Span::minutes(10));
    let r = world.send(get("/geocode").bearer(&before)).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::Revoked);
}

// ---- deletion ------------------------------------------------------------------------

#[tokio::test]
async fn a_deleted_client_is_refused_on_its_very_next_request() {
    let world = World::new();
    let key = world.key();
    let token = world.token();
    world.send(get(&tile(&key))).await.assert_ok();
    world.store.delete_client(&world.js_id()).expect("stored");
    world
        .store
        .delete_client(&world.native_id())
        .expect("stored");
    let r = world.send(get(&tile(&key))).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::UnknownCredential);
    world
        .send(get("/geocode").bearer(&token))
        .await
        .assert_invalid_token();
}

// ---- expiry --------------------------------------------------------------------------

#[tokio::test]
async fn a_client_expires_at_its_expiry_instant_on_the_injected_clock() {
    let world = World::new();
    let at = START + Span::days(30);
    let (_, key) = world.js_client(ClientSpec::javascript("Trial").expires_at(Some(at)));
    let (_, token) = world.native_client(ClientSpec::native("Trial server").expires_at(Some(at)));
    world.send(get(&tile(&key))).await.assert_ok();

    world.clock.set(at - Span::seconds(1));
    world.send(get(&tile(&key))).await.assert_ok();
    world.send(get("/geocode").bearer(&token)).await.assert_ok();

    world.clock.set(at);
    for r in [
        world.send(get(&tile(&key))).await,
        world.send(get("/geocode").bearer(&token)).await,
    ] {
        r.assert_invalid_token();
        assert_eq!(r.kind(), RejectionKind::Expired);
    }
    world.clock.advance(Span::days(365));
    world.send(get(&tile(&key))).await.assert_invalid_token();
}

#[tokio::test]
async fn extending_an_expired_client_revives_it_on_the_next_request() {
    let world = World::new();
    let (id, key) =
        world.js_client(ClientSpec::javascript("Trial").expires_at(Some(START + Span::hours(1))));
    world.clock.advance(Span::hours(2));
    world.send(get(&tile(&key))).await.assert_invalid_token();
    world
        .store
        .update_client(&id, |spec| spec.expires_at = Some(START + Span::days(7)))
        .expect("stored");
    world.send(get(&tile(&key))).await.assert_ok();
    world
        .store
        .update_client(&id, |spec| spec.expires_at = None)
        .expect("stored");
    world.clock.advance(Span::days(3650));
    world.send(get(&tile(&key))).await.assert_ok();
}

// ---- changes after an account lost a role ---------------------------------------------

/// Removing a role from an account must not leave its clients unmanageable.
#[tokio::test]
async fn a_client_can_still_be_deactivated_after_its_account_lost_a_role() {
    let world = World::new();
    let key = world.key();
    world
        .store
        .update_account(&world.acme_id(), |a| a.roles = roles([Role::USER]))
        .expect("stored");
    let deactivated = world
        .store
        .set_client_status(&world.js_id(), Status::Inactive);
    assert!(
        deactivated.is_ok(),
        "deactivating must succeed: {:?}",
        deactivated.err()
    );
    let r = world.send(get(&tile(&key))).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::Inactive);
}

// ---- changes under load, and clients from a file -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_seen_by_the_next_request_while_others_are_in_flight() {
    let world = Arc::new(World::new());
    let key = world.key();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut background = Vec::new();
    for _ in 0..4 {
        let (world, key) = (world.clone(), key.clone());
        let (stop, answered) = (stop.clone(), answered.clone());
        background.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let r = world.send(get(&tile(&key))).await;
                assert!(r.status == 200 || r.status == 401, "{}", r.status);
                answered.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        }));
    }
    while answered.load(Ordering::SeqCst) < 8 {
        tokio::task::yield_now().await;
    }
    for round in 0..20 {
        let status = if round % 2 == 0 {
            Status::Inactive
        } else {
            Status::Active
        };
        world
            .store
            .set_client_status(&world.js_id(), status)
            .expect("stored");
        let r = world.send(get(&tile(&key))).await;
        if status.is_active() {
            r.assert_ok();
        } else {
            r.assert_invalid_token();
        }
    }
    stop.store(true, Ordering::SeqCst);
    for task in background {
        task.await.expect("no panic");
    }
}

#[tokio::test]
async fn clients_loaded_from_a_file_are_enforced_like_created_ones() {
    use gis_auth::client::{CredentialKind, PlainCredential};
    use gis_auth::store::{InMemoryStore, Snapshot};

    let plain = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let hashed = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let off = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let file = format!(
        r#"{{
          "accounts": [{{"id": "acme", "name": "Acme", "roles": ["User", "Evaluator"]}}],
          "clients": [
            {{"id": "web", "account": "acme", "kind": "JavaScript", "api_key": "{}",
              "allowed_origins": ["https://*.acme.test"], "expires_at": "2026-07-01T00:00:00Z"}},
            {{"id": "kiosk", "account": "acme", "kind": "JavaScript", "api_key": "{}",
              "allowed_ips": ["203.0.113.0/24"]}},
            {{"id": "paused", "account": "acme", "kind": "JavaScript", "api_key": "{}",
              "status": "inactive"}},
            {{"id": "fresh", "account": "acme", "kind": "JavaScript", "roles": ["User"]}}
          ]
        }}"#,
        plain.expose(),
        hashed.digest().to_prefixed_hex(),
        off.expose(),
    );
    let world = World::new();
    let store = Arc::new(InMemoryStore::new());
    let generated = Snapshot::from_json(&file)
        .expect("a valid file")
        .load_into(&store)
        .expect("loads");
    assert_eq!(generated.len(), 1, "only the client without a credential");
    let fresh = generated[0].credential.expose().to_owned();
    let layer = world.layer_over(store);

    let web = |origin: &str| get(&tile(plain.expose())).origin(origin);
    world
        .send_via(&layer, web("https://maps.acme.test"))
        .await
        .assert_ok();
    world
        .send_via(&layer, web("https://evil.test"))
        .await
        .assert_access_denied();
    let kiosk = |peer: &str| get(&tile(hashed.expose())).peer(peer);
    world
        .send_via(&layer, kiosk("203.0.113.4:1"))
        .await
        .assert_ok();
    world
        .send_via(&layer, kiosk("198.51.100.4:1"))
        .await
        .assert_access_denied();
    world
        .send_via(&layer, get(&tile(off.expose())))
        .await
        .assert_invalid_token();
    world
        .send_via(&layer, get(&tile(&fresh)))
        .await
        .assert_insufficient_scope();

    world
        .clock
        .set(time::macros::datetime!(2026-07-01 00:00 UTC));
    world
        .send_via(&layer, web("https://maps.acme.test"))
        .await
        .assert_invalid_token();
}

// ---- the store: failing, stalling, or not asked ----------------------------------------

/// A store whose every call fails.
struct BrokenStore;

#[async_trait]
impl ClientStore for BrokenStore {
    async fn client_by_key(&self, _: &KeyDigest) -> Result<Option<Arc<Client>>, StoreError> {
        Err(StoreError::new("connection refused"))
    }

    async fn client_by_id(&self, _: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        Err(StoreError::new("connection refused"))
    }

    async fn account(&self, _: &AccountId) -> Result<Option<Arc<Account>>, StoreError> {
        Err(StoreError::new("connection refused"))
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
    async fn client_by_key(&self, _: &KeyDigest) -> Result<Option<Arc<Client>>, StoreError> {
        self.hang().await
    }

    async fn client_by_id(&self, _: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        self.hang().await
    }

    async fn account(&self, _: &AccountId) -> Result<Option<Arc<Account>>, StoreError> {
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
            TroubledVerifier::StoreDown => Err(StoreError::new("connection refused").into()),
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
    assert_waited_for(gis_auth::layer::DEFAULT_STORE_TIMEOUT, started.elapsed());
    r.assert_unavailable();
    assert_eq!(stalled.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_store_is_a_503_within_a_configured_budget() {
    let world = World::new();
    let budget = Duration::from_millis(50);
    let layer = world
        .layer_over(Arc::new(StalledStore::default()))
        .store_timeout(Some(budget));
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
        .store_timeout(Some(budget));
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
        async fn client_by_key(&self, d: &KeyDigest) -> Result<Option<Arc<Client>>, StoreError> {
            self.0.client_by_key(d).await
        }

        async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
            self.0.client_by_id(id).await
        }

        async fn account(&self, _: &AccountId) -> Result<Option<Arc<Account>>, StoreError> {
            Ok(None)
        }
    }

    let world = World::new();
    let layer = world.layer_over(Arc::new(Orphaned(world.store.clone())));
    let r = world.send_via(&layer, get(&tile(&world.key()))).await;
    r.assert_invalid_token();
}
