//! Regenerating and deleting clients, revocation on the very next request, and the guard
//! against an account locking itself out.

use super::*;

#[tokio::test]
async fn regenerating_returns_the_new_key_once_and_the_old_one_stops_unless_given_grace() {
    let server = server();
    let token = acme_token(&server).await;
    let web = &server.acme.javascript;
    let old = web.credential.expose().to_owned();
    let path = format!("/account/clients/{}/regenerate", web.client.id());
    let tile = |key: String| {
        Request::get(format!("/tiles/1/0/0.png?apikey={key}"))
            .body(Body::empty())
            .expect("a request")
    };

    let reply = call(
        &server,
        Method::POST,
        &path,
        &token,
        Some(json!({"grace_seconds": 60})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    let fresh = reply.json()["api_key"]
        .as_str()
        .expect("the new key")
        .to_owned();
    assert_ne!(fresh, old);
    assert_eq!(
        server.send(tile(old.clone())).await.status,
        StatusCode::OK,
        "in grace"
    );
    assert_eq!(
        server.send(tile(fresh.clone())).await.status,
        StatusCode::OK
    );
    server.clock.advance(time::Duration::seconds(61));
    assert_eq!(
        server.send(tile(old)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Without a body: no grace.
    let reply = call(&server, Method::POST, &path, &token, None).await;
    let newest = reply.json()["api_key"].as_str().expect("a key").to_owned();
    assert_eq!(
        server.send(tile(fresh)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.send(tile(newest)).await.status, StatusCode::OK);

    call(
        &server,
        Method::POST,
        &path,
        &token,
        Some(json!({"grace_seconds": -1})),
    )
    .await
    .assert_json_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("grace_seconds"),
    );
}

#[tokio::test]
async fn regenerating_a_native_secret_revokes_its_tokens_on_the_next_request() {
    let server = server();
    let admin_token = acme_token(&server).await;
    let worker = server
        .store
        .add_client(&server.acme.account.id, ClientSpec::native("Worker"))
        .expect("created");
    let worker_token = server.token_of(&worker).await;
    let geocode = |t: &str| {
        Request::get("/geocode?q=Paris")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::empty())
            .expect("a request")
    };
    assert_eq!(
        server.send(geocode(&worker_token)).await.status,
        StatusCode::OK
    );
    let reply = call(
        &server,
        Method::POST,
        &format!("/account/clients/{}/regenerate", worker.client.id()),
        &admin_token,
        None,
    )
    .await;
    let body = reply.json();
    assert_eq!(body["client_id"], worker.client.id().as_str());
    assert!(
        body["client_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("gis_secret_"))
    );
    assert_eq!(
        server.send(geocode(&worker_token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn deleting_a_client_stops_its_key_and_its_tokens_at_once() {
    let server = server();
    let token = acme_token(&server).await;
    let worker = server
        .store
        .add_client(&server.acme.account.id, ClientSpec::native("Worker"))
        .expect("created");
    let worker_token = server.token_of(&worker).await;
    let path = format!("/account/clients/{}", worker.client.id());
    let reply = call(&server, Method::DELETE, &path, &token, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.describe());
    assert!(reply.body.is_empty());
    let geocode = server
        .send(
            Request::get("/geocode?q=Paris")
                .header(header::AUTHORIZATION, format!("Bearer {worker_token}"))
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
    assert_eq!(geocode.status, StatusCode::UNAUTHORIZED);
    call(&server, Method::GET, &path, &token, None)
        .await
        .assert_json_error(StatusCode::NOT_FOUND, "not_found", None);
    call(&server, Method::DELETE, &path, &token, None)
        .await
        .assert_json_error(StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn the_last_admin_client_cannot_delete_or_demote_itself() {
    let server = server();
    let token = acme_token(&server).await;
    let me = format!("/account/clients/{}", server.acme.native.client.id());
    for (method, body) in [
        (Method::DELETE, None),
        (Method::PATCH, Some(json!({"status": "inactive"}))),
        (Method::PATCH, Some(json!({"roles": ["Evaluator"]}))),
        (
            Method::PATCH,
            Some(json!({"expires_at": "2020-01-01T00:00:00Z"})),
        ),
    ] {
        let reply = call(&server, method.clone(), &me, &token, body.clone()).await;
        reply.assert_json_error(StatusCode::CONFLICT, "conflict", None);
        assert!(
            reply.json()["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("lock the account out")),
            "{}",
            reply.describe()
        );
    }
    // Still works: nothing changed.
    let check = call(&server, Method::GET, "/account/profile", &token, None).await;
    assert_eq!(check.status, StatusCode::OK);

    // With a second admin client, the first may step down.
    let second = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(json!({"name": "Ops", "kind": "NativeConfidential"})),
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED);
    let reply = call(
        &server,
        Method::PATCH,
        &me,
        &token,
        Some(json!({"roles": ["Evaluator"]})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    // The demotion applies to the caller's own token on its next request.
    let after = call(&server, Method::GET, "/account/profile", &token, None).await;
    after.assert_json_error(StatusCode::FORBIDDEN, "insufficient_scope", None);
}
