//! Regenerating a credential: the old one stops working, with or without a grace period.

use super::*;

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
