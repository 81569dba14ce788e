//! Changes while requests are in flight, and clients read from a file.

use super::*;

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
    use gis_auth::document::ClientsFile;
    use gis_auth::store::InMemoryStore;

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
    let generated = ClientsFile::from_json(&file)
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
