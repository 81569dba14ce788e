//! Client authentication at `POST /oauth/token`: every way it can fail is the same
//! `invalid_client`, with a `Basic` challenge exactly when Basic was used.

use super::*;

#[tokio::test]
async fn a_request_without_client_authentication_is_an_invalid_client() {
    let s = Server::new();
    let reply = s.send(token_request(GRANT)).await;
    assert_invalid_client(&reply, false);
    let only_secret = format!("{GRANT}&client_secret={}", s.native_secret());
    assert_invalid_client(&s.send(token_request(&only_secret)).await, false);
}

#[tokio::test]
async fn an_unknown_client_id_is_an_invalid_client() {
    let s = Server::new();
    assert_client_refused(&s, "cl_nobody", &s.native_secret(), CALLER).await;
}

#[tokio::test]
async fn a_wrong_secret_is_an_invalid_client() {
    let s = Server::new();
    let (_, other_secret) = s.native_client(ClientSpec::native("Other"));
    assert_client_refused(&s, s.native_id().as_str(), &other_secret, CALLER).await;
    assert_client_refused(&s, s.native_id().as_str(), "not-a-secret", CALLER).await;
}

#[tokio::test]
async fn an_empty_client_secret_is_an_invalid_client() {
    let s = Server::new();
    let id = s.native_id();
    let reference = invalid_client_body(&s).await;
    for form in [
        format!("{GRANT}&client_id={id}&client_secret="),
        format!("{GRANT}&client_id={id}"),
    ] {
        let reply = s.send(token_request(&form)).await;
        assert_invalid_client(&reply, false);
        assert_eq!(reply.body, reference);
    }
    assert_client_refused(&s, id.as_str(), "", CALLER).await;
}

#[tokio::test]
async fn an_inactive_client_is_an_invalid_client() {
    let s = Server::new();
    s.store
        .set_client_status(&s.native_id(), Status::Inactive)
        .expect("stored");
    assert_client_refused(&s, s.native_id().as_str(), &s.native_secret(), CALLER).await;
}

#[tokio::test]
async fn an_expired_client_is_an_invalid_client() {
    let s = Server::new();
    let at = s.clock.now() + secs(60);
    s.update_client(&s.native_id(), |spec| spec.expires_at = Some(at));
    assert_token_response(&s.exchange(s.native_id().as_str(), &s.native_secret()).await);
    s.clock.advance(secs(60));
    assert_client_refused(&s, s.native_id().as_str(), &s.native_secret(), CALLER).await;
}

#[tokio::test]
async fn a_client_of_an_inactive_account_is_an_invalid_client() {
    let s = Server::new();
    s.update_account(|a| a.status = Status::Inactive);
    assert_client_refused(&s, s.native_id().as_str(), &s.native_secret(), CALLER).await;
}

#[tokio::test]
async fn a_javascript_client_id_with_its_api_key_is_an_invalid_client() {
    let s = Server::new();
    let js = &s.acme.javascript;
    assert_client_refused(&s, js.client.id().as_str(), js.credential.expose(), CALLER).await;
}

#[tokio::test]
async fn a_caller_outside_the_clients_ip_rules_is_an_invalid_client() {
    let s = Server::new();
    let (id, secret) = s.native_client(ClientSpec::native("Batch").allowed_ips(["203.0.113.0/24"]));
    assert_client_refused(&s, id.as_str(), &secret, CALLER).await;
    // A forwarded address from an untrusted peer changes nothing.
    let mut req = token_request(&post_form(id.as_str(), &secret));
    req.headers_mut().insert(
        "x-forwarded-for",
        "203.0.113.9".parse().expect("a header value"),
    );
    assert_invalid_client(&s.send(req).await, false);
    // From inside the rules the same credentials work.
    let reply = s
        .send(from_peer(
            token_request(&post_form(id.as_str(), &secret)),
            "203.0.113.9",
        ))
        .await;
    assert_token_response(&reply);
}

#[tokio::test]
async fn a_malformed_basic_header_is_an_invalid_client_with_a_basic_challenge() {
    let s = Server::new();
    let reference = invalid_client_body(&s).await;
    for value in ["Basic", "Basic !!!", "Basic bm9jb2xvbg"] {
        let mut req = token_request(GRANT);
        req.headers_mut().insert(
            header::AUTHORIZATION,
            value.parse().expect("a header value"),
        );
        let reply = s.send(req).await;
        assert_invalid_client(&reply, true);
        assert_eq!(reply.body, reference);
    }
}

#[tokio::test]
async fn every_client_authentication_failure_has_the_same_body() {
    let s = Server::new();
    let (ip_bound, ip_secret) =
        s.native_client(ClientSpec::native("Batch").allowed_ips(["203.0.113.0/24"]));
    let (inactive, inactive_secret) =
        s.native_client(ClientSpec::native("Paused").status(Status::Inactive));
    let (expired, expired_secret) =
        s.native_client(ClientSpec::native("Old").expires_at(Some(s.clock.now() - secs(1))));
    let (_, other_secret) = s.native_client(ClientSpec::native("Other"));
    let native = s.native_id();
    let js = &s.acme.javascript;
    let mut bodies = BTreeSet::new();
    bodies.insert(invalid_client_body(&s).await);
    for (id, secret) in [
        ("cl_nobody", s.native_secret()),
        (native.as_str(), other_secret),
        (native.as_str(), String::new()),
        (inactive.as_str(), inactive_secret),
        (expired.as_str(), expired_secret),
        (js.client.id().as_str(), js.credential.expose().to_owned()),
        (ip_bound.as_str(), ip_secret),
    ] {
        bodies.extend(assert_client_refused(&s, id, &secret, CALLER).await);
    }
    // Last, as it affects every client of the account.
    s.update_account(|a| a.status = Status::Inactive);
    bodies.extend(assert_client_refused(&s, native.as_str(), &s.native_secret(), CALLER).await);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
}
