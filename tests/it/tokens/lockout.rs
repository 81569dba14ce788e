//! Brute force at the token endpoint: the lockout per client and address, its window,
//! guessing many client ids from one address, ids that cannot be client ids, and IPv6
//! callers counted per /64.

use super::*;

/// `n` failed authentications of `id` from `peer`, each an ordinary `invalid_client`.
async fn fail(s: &Server, id: &str, peer: &str, n: usize) {
    for _ in 0..n {
        let reply = s
            .send(from_peer(token_request(&post_form(id, "wrong")), peer))
            .await;
        assert_invalid_client(&reply, false);
    }
}

async fn exchange_from(s: &Server, id: &ClientId, secret: &str, peer: &str) -> Reply {
    s.send(from_peer(
        token_request(&post_form(id.as_str(), secret)),
        peer,
    ))
    .await
}

#[tokio::test]
async fn twenty_wrong_secrets_lock_the_client_out_from_that_address() {
    let s = Server::new();
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 20).await;
    // The right secret is refused too: the lockout is no oracle.
    let reply = exchange_from(&s, &id, &s.native_secret(), CALLER).await;
    assert_locked_out(&reply, 600);
    let basic = with_basic(token_request(GRANT), id.as_str(), &s.native_secret());
    assert_locked_out(&s.send(basic).await, 600);
}

#[tokio::test]
async fn nineteen_wrong_secrets_do_not_lock_the_client_out() {
    let s = Server::new();
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 19).await;
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
}

#[tokio::test]
async fn a_locked_out_client_still_gets_tokens_from_another_address() {
    let s = Server::new();
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 20).await;
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), CALLER).await,
        600,
    );
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await);
    // And other clients from the locked-out address are unaffected.
    let (other, other_secret) = s.native_client(ClientSpec::native("Other"));
    assert_token_response(&exchange_from(&s, &other, &other_secret, CALLER).await);
}

#[tokio::test]
async fn the_lockout_ends_with_its_window() {
    let s = Server::new();
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 20).await;
    s.clock.advance(secs(599));
    assert_locked_out(&exchange_from(&s, &id, &s.native_secret(), CALLER).await, 1);
    s.clock.advance(secs(1));
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
}

#[tokio::test]
async fn one_address_guessing_many_client_ids_is_locked_out() {
    let s = Server::new();
    for i in 0..100 {
        fail(&s, &format!("cl_guess{i}"), CALLER, 1).await;
    }
    let id = s.native_id();
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), CALLER).await,
        600,
    );
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await);
    s.clock.advance(secs(600));
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
}

#[tokio::test]
async fn successful_exchanges_never_count_towards_the_lockout() {
    let s = Server::new();
    let id = s.native_id();
    for _ in 0..25 {
        assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
    }
    fail(&s, id.as_str(), CALLER, 19).await;
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
}

#[tokio::test]
async fn the_lockout_policy_of_the_options_is_applied() {
    let s = Server::builder()
        .lockout(LockoutPolicy {
            per_client_and_address: 3,
            per_address: 5,
            window: Duration::from_secs(60),
        })
        .build();
    let id = s.native_id();
    fail(&s, id.as_str(), CALLER, 3).await;
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), CALLER).await,
        60,
    );
    fail(&s, "cl_a", ELSEWHERE, 2).await;
    fail(&s, "cl_b", ELSEWHERE, 2).await;
    fail(&s, "cl_c", ELSEWHERE, 1).await;
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await,
        60,
    );
    s.clock.advance(secs(60));
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), CALLER).await);
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await);
}

fn small_lockout() -> LockoutPolicy {
    LockoutPolicy {
        per_client_and_address: 3,
        per_address: 5,
        window: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn ids_that_cannot_be_client_ids_are_invalid_client_and_count_against_the_address() {
    let s = Server::builder().lockout(small_lockout()).build();
    let id = s.native_id();
    // Longer than the longest id, outside the alphabet, and near the body's size limit.
    let too_long = "a".repeat(129);
    let huge = "b".repeat(7 * 1024);
    for bad in [
        too_long.as_str(),
        "not an id",
        "cl_é",
        huge.as_str(),
        "c\u{0}",
    ] {
        fail(&s, bad, CALLER, 1).await;
    }
    // Five failures from the address, whatever the ids: the address is locked out...
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), CALLER).await,
        60,
    );
    // ...but none was counted for a client: from elsewhere, a well-formed id has its full
    // budget.
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await);
    fail(&s, &too_long, ELSEWHERE, 4).await;
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), ELSEWHERE).await);
}

#[tokio::test]
async fn ipv6_callers_are_counted_per_slash_64() {
    let s = Server::builder().lockout(small_lockout()).build();
    let id = s.native_id();
    // A fresh address of one /64 for every attempt brings no fresh budget.
    for i in 1..=5 {
        fail(
            &s,
            &format!("cl_guess{i}"),
            &format!("2001:db8:7:8::{i:x}"),
            1,
        )
        .await;
    }
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), "2001:db8:7:8:ffff::1").await,
        60,
    );
    // The next /64 is somebody else.
    assert_token_response(&exchange_from(&s, &id, &s.native_secret(), "2001:db8:7:9::1").await);
    // The pair count is per /64 as well: three wrong secrets from three addresses of one
    // /64 lock the client out from all of it.
    for i in 1..=3 {
        fail(&s, id.as_str(), &format!("2001:db8:7:a::{i:x}"), 1).await;
    }
    assert_locked_out(
        &exchange_from(&s, &id, &s.native_secret(), "2001:db8:7:a::99").await,
        60,
    );
}
