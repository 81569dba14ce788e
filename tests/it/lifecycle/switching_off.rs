//! Switching clients and accounts off, deleting them, expiry, and roles taken away: each
//! takes effect on the very next request.

use super::*;

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
        .change_account(&world.acme_id(), |a| a.status = Status::Inactive)
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
        .change_account(&world.acme_id(), |a| a.status = Status::Active)
        .expect("stored");
    world.send(get(&tile(&key))).await.assert_ok();
}

#[tokio::test]
async fn a_deleted_client_is_refused_on_its_very_next_request() {
    let world = World::new();
    let key = world.key();
    let token = world.token();
    world.send(get(&tile(&key))).await.assert_ok();
    world.store.remove_client(&world.js_id()).expect("stored");
    world
        .store
        .remove_client(&world.native_id())
        .expect("stored");
    let r = world.send(get(&tile(&key))).await;
    r.assert_invalid_token();
    assert_eq!(r.kind(), RejectionKind::UnknownCredential);
    world
        .send(get("/geocode").bearer(&token))
        .await
        .assert_invalid_token();
}

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
        .change_client(&id, |spec| spec.expires_at = Some(START + Span::days(7)))
        .expect("stored");
    world.send(get(&tile(&key))).await.assert_ok();
    world
        .store
        .change_client(&id, |spec| spec.expires_at = None)
        .expect("stored");
    world.clock.advance(Span::days(3650));
    world.send(get(&tile(&key))).await.assert_ok();
}

/// Removing a role from an account must not leave its clients unmanageable.
#[tokio::test]
async fn a_client_can_still_be_deactivated_after_its_account_lost_a_role() {
    let world = World::new();
    let key = world.key();
    world
        .store
        .change_account(&world.acme_id(), |a| a.roles = roles([Role::USER]))
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
