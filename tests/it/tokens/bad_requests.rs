//! Requests the token endpoint refuses before authenticating anyone: missing or repeated
//! parameters, other grants, scopes beyond the client's roles, credentials in the query,
//! other methods, large and JSON bodies.

use super::*;

#[tokio::test]
async fn a_missing_grant_type_is_an_invalid_request() {
    let s = Server::new();
    let form = format!(
        "client_id={}&client_secret={}",
        s.native_id(),
        s.native_secret()
    );
    assert_invalid_request(&s.send(token_request(&form)).await);
    let basic = with_basic(
        token_request(""),
        s.native_id().as_str(),
        &s.native_secret(),
    );
    assert_invalid_request(&s.send(basic).await);
}

#[tokio::test]
async fn an_empty_grant_type_is_an_invalid_request() {
    let s = Server::new();
    let form = format!(
        "grant_type=&client_id={}&client_secret={}",
        s.native_id(),
        s.native_secret()
    );
    assert_invalid_request(&s.send(token_request(&form)).await);
}

#[tokio::test]
async fn a_repeated_grant_type_is_an_invalid_request() {
    let s = Server::new();
    let form = format!(
        "{GRANT}&{}",
        post_form(s.native_id().as_str(), &s.native_secret())
    );
    assert_invalid_request(&s.send(token_request(&form)).await);
}

#[tokio::test]
async fn a_repeated_parameter_is_an_invalid_request() {
    let s = Server::new();
    let base = post_form(s.native_id().as_str(), &s.native_secret());
    for extra in [
        format!("&client_id={}", s.native_id()),
        format!("&client_secret={}", s.native_secret()),
        "&scope=Evaluator&scope=User".to_owned(),
    ] {
        let reply = s.send(token_request(&format!("{base}{extra}"))).await;
        assert_invalid_request(&reply);
    }
}

#[tokio::test]
async fn the_password_grant_is_an_unsupported_grant_type() {
    let s = Server::new();
    let form = format!(
        "grant_type=password&username=u&password=p&client_id={}&client_secret={}",
        s.native_id(),
        s.native_secret()
    );
    let reply = s.send(token_request(&form)).await;
    assert_endpoint_error(&reply, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    assert!(reply.headers.get(header::WWW_AUTHENTICATE).is_none());
}

#[tokio::test]
async fn a_scope_beyond_the_clients_roles_is_an_invalid_scope() {
    let s = Server::new();
    let (narrow, narrow_secret) =
        s.native_client(ClientSpec::native("Maps only").roles(roles([Role::EVALUATOR])));
    for (id, secret, scope) in [
        (s.native_id(), s.native_secret(), "Subscriber"),
        (s.native_id(), s.native_secret(), "Evaluator Subscriber"),
        (narrow.clone(), narrow_secret.clone(), "User"),
        (narrow, narrow_secret, "Evaluator User"),
    ] {
        let form = format!(
            "{}&scope={}",
            post_form(id.as_str(), &secret),
            form_encode(scope)
        );
        let reply = s.send(token_request(&form)).await;
        assert_endpoint_error(&reply, StatusCode::BAD_REQUEST, "invalid_scope");
    }
}

#[tokio::test]
async fn client_credentials_in_the_query_string_are_an_invalid_request() {
    let s = Server::new();
    let (id, secret) = (s.native_id(), s.native_secret());
    for query in [
        format!("client_id={id}"),
        format!("client_secret={secret}"),
        format!("client_id={id}&client_secret={secret}"),
    ] {
        let req = Request::post(format!("/oauth/token?{query}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(post_form(id.as_str(), &secret)))
            .expect("a request");
        let reply = s.send(from_peer(req, CALLER)).await;
        assert_invalid_request(&reply);
        assert!(!String::from_utf8_lossy(&reply.body).contains(&secret));
    }
}

#[tokio::test]
async fn basic_and_body_credentials_together_are_an_invalid_request() {
    let s = Server::new();
    let (id, secret) = (s.native_id(), s.native_secret());
    for form in [
        post_form(id.as_str(), &secret),
        format!("{GRANT}&client_id={id}"),
        format!("{GRANT}&client_secret={secret}"),
    ] {
        let req = with_basic(token_request(&form), id.as_str(), &secret);
        assert_invalid_request(&s.send(req).await);
    }
}

#[tokio::test]
async fn a_get_is_method_not_allowed_with_allow_post() {
    let s = Server::new();
    let req = Request::get(format!(
        "/oauth/token?{}",
        post_form(s.native_id().as_str(), &s.native_secret())
    ))
    .body(Body::empty())
    .expect("a request");
    let reply = s.send(from_peer(req, CALLER)).await;
    assert_eq!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        reply.describe()
    );
    assert_eq!(reply.header(header::ALLOW), Some("POST"));
    assert_eq!(reply.json()["error"], "invalid_request");
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
}

#[tokio::test]
async fn a_body_over_eight_kibibytes_is_payload_too_large() {
    let s = Server::new();
    let form = format!(
        "{}&padding={}",
        post_form(s.native_id().as_str(), &s.native_secret()),
        "x".repeat(8 * 1024)
    );
    // Announced by Content-Length, and found while reading a body without one.
    let mut announced = token_request(&form);
    announced.headers_mut().insert(
        header::CONTENT_LENGTH,
        form.len().to_string().parse().expect("a header value"),
    );
    for req in [announced, token_request(&form)] {
        let reply = s.send(req).await;
        assert_endpoint_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
    }
    // Just under the limit is read.
    let fits = format!(
        "{}&padding=",
        post_form(s.native_id().as_str(), &s.native_secret())
    );
    let fits = format!("{fits}{}", "x".repeat(8 * 1024 - fits.len()));
    assert_token_response(&s.send(token_request(&fits)).await);
}

#[tokio::test]
async fn a_json_body_is_an_invalid_request() {
    let s = Server::new();
    let body = json!({
        "grant_type": "client_credentials",
        "client_id": s.native_id().as_str(),
        "client_secret": s.native_secret(),
    });
    let req = Request::post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("a request");
    assert_invalid_request(&s.send(from_peer(req, CALLER)).await);
    // Basic credentials do not rescue a body of the wrong type.
    let req = Request::post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
        .expect("a request");
    let req = with_basic(
        from_peer(req, CALLER),
        s.native_id().as_str(),
        &s.native_secret(),
    );
    assert_invalid_request(&s.send(req).await);
}
