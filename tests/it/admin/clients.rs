//! Creating, listing, reading and changing clients, and each validation error.

use super::*;

#[tokio::test]
async fn creating_a_client_returns_its_key_once_and_listing_never_does() -> TestResult {
    let server = server();
    let token = acme_token(&server).await;
    let body = json!({
        "name": "Store locator", "kind": "JavaScript", "roles": ["Evaluator"],
        "allowed_origins": ["https://*.acme.test"], "allowed_ips": ["203.0.113.0/24"],
        "expires_at": "2027-01-01T00:00:00Z", "privileges": ["WorldStreets"],
        "grants": [{"item": "roads", "actions": ["read"]}],
        "rate_limit": {"per_second": 5, "burst": 10}, "shadow": ["origins"]
    });
    let reply = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.describe());
    let created = reply.json();
    let key = created["api_key"]
        .as_str()
        .expect("the key, once")
        .to_owned();
    assert!(key.starts_with("gis_apikey_"));
    let id = created["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        reply.header(header::LOCATION),
        Some(format!("/account/clients/{id}").as_str())
    );
    assert_eq!(reply.header(header::ETAG), created["etag"].as_str());
    assert_eq!(created["roles"], json!(["Evaluator"]));
    assert_eq!(
        created["grants"],
        json!([{"item": "roads", "actions": ["read"]}])
    );
    assert_eq!(created["rate_limit"], json!({"per_second": 5, "burst": 10}));
    assert_eq!(created["expires_at"], "2027-01-01T00:00:00Z");

    // The key works at once, within its privileges.
    let tile = server
        .send(
            Request::get(format!("/tiles/1/0/0.png?apikey={key}"))
                .header(header::ORIGIN, "https://maps.acme.test")
                .body(Body::empty())?,
        )
        .await;
    assert_eq!(tile.status, StatusCode::FORBIDDEN, "from the wrong address");

    let list = call(&server, Method::GET, "/account/clients", &token, None).await;
    assert_eq!(list.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&list.body).into_owned();
    assert!(!text.contains(&key), "never a credential in a list");
    assert!(!text.contains("gis_secret_") && !text.contains("api_key"));
    let clients = list.json()["clients"].as_array().expect("a list").clone();
    assert_eq!(clients.len(), 3);
    let one = call(
        &server,
        Method::GET,
        &format!("/account/clients/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.json().get("api_key").is_none());
    Ok(())
}

#[tokio::test]
async fn a_native_client_gets_its_id_and_secret_once_and_roles_default_to_the_accounts() {
    let server = server();
    let token = acme_token(&server).await;
    let reply = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(json!({"name": "Backend", "kind": "NativeConfidential"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.describe());
    let body = reply.json();
    let id = body["client_id"].as_str().expect("an assigned id");
    assert!(id.starts_with("cl_"), "{id}");
    assert_eq!(body["id"], id);
    assert_eq!(body["roles"], json!(["Evaluator", "User"]));
    let secret = body["client_secret"].as_str().expect("a secret");
    let token = server.exchange(id, secret).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.describe());
}

#[tokio::test]
async fn each_invalid_client_field_is_a_400_naming_it_and_nothing_is_created() {
    let server = server();
    let token = acme_token(&server).await;
    let cases = [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "W", "kind": "Browser"}), "kind"),
        (json!({"name": "W", "roles": ["Subscriber"]}), "roles"),
        (json!({"name": "W", "roles": ["not a role"]}), "roles"),
        (json!({"name": "W", "status": "paused"}), "status"),
        (
            json!({"name": "W", "allowed_origins": ["https://exa mple.com"]}),
            "allowed_origins",
        ),
        (
            json!({"name": "W", "kind": "NativeConfidential", "allowed_origins": ["https://a.test"]}),
            "allowed_origins",
        ),
        (
            json!({"name": "W", "allowed_ips": ["300.1.1.1"]}),
            "allowed_ips",
        ),
        (json!({"name": "W", "expires_at": "tomorrow"}), "expires_at"),
        (json!({"name": "W", "privileges": "Geocoder"}), "privileges"),
        (
            json!({"name": "W", "grants": [{"item": "", "actions": ["read"]}]}),
            "grants",
        ),
        (
            json!({"name": "W", "grants": [{"item": "a", "actions": ["delete"]}]}),
            "grants",
        ),
        (
            json!({"name": "W", "rate_limit": {"per_second": 0, "burst": 1}}),
            "rate_limit",
        ),
        (json!({"name": "W", "shadow": ["everything"]}), "shadow"),
        (json!({"name": "W", "id": "has space"}), "id"),
        (json!({"name": "W", "api_key": "gis_apikey_x"}), "api_key"),
        (
            json!({"name": "W", "allow_missing_origin": "yes"}),
            "allow_missing_origin",
        ),
    ];
    for (body, field) in cases {
        let reply = call(
            &server,
            Method::POST,
            "/account/clients",
            &token,
            Some(body.clone()),
        )
        .await;
        reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
    assert_eq!(server.store.clients_of(&server.acme.account.id).len(), 2);
}

#[tokio::test]
async fn malformed_bodies_are_clear_errors() {
    let server = server();
    let token = acme_token(&server).await;
    let send = |body: &'static str, content_type: &'static str| {
        let token = token.clone();
        let server = &server;
        async move {
            server
                .send(
                    Request::post("/account/clients")
                        .header(header::AUTHORIZATION, format!("Bearer {token}"))
                        .header(header::CONTENT_TYPE, content_type)
                        .body(Body::from(body))
                        .expect("a request"),
                )
                .await
        }
    };
    send("{", "application/json").await.assert_json_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        None,
    );
    send("[]", "application/json").await.assert_json_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        None,
    );
    send("name=W", "application/x-www-form-urlencoded")
        .await
        .assert_json_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request", None);
    let huge = Box::leak(format!(r#"{{"name": "{}"}}"#, "a".repeat(70_000)).into_boxed_str());
    send(huge, "application/json").await.assert_json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
        None,
    );
    let reply = call(&server, Method::PUT, "/account/clients", &token, None).await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "PUT is not a route of the table"
    );
}

#[tokio::test]
async fn a_patch_changes_only_the_fields_given_and_takes_effect_on_the_next_request() {
    let server = server();
    let token = acme_token(&server).await;
    let web = &server.acme.javascript;
    let key = web.credential.expose();
    let tile = || {
        Request::get(format!("/tiles/1/0/0.png?apikey={key}"))
            .body(Body::empty())
            .expect("a request")
    };
    assert_eq!(server.send(tile()).await.status, StatusCode::OK);

    let path = format!("/account/clients/{}", web.client.id());
    let reply = call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"status": "inactive"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.json()["status"], "inactive");
    assert_eq!(reply.json()["name"], "Default JavaScript client");
    assert_eq!(server.send(tile()).await.status, StatusCode::UNAUTHORIZED);

    let reply = call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"status": "active", "name": "Web"})),
    )
    .await;
    assert_eq!(reply.json()["name"], "Web");
    assert_eq!(server.send(tile()).await.status, StatusCode::OK);

    // Role removal applies at once too.
    call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"roles": ["User"]})),
    )
    .await;
    assert_eq!(server.send(tile()).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_patch_may_send_back_read_only_fields_unchanged_but_never_change_them() {
    let server = server();
    let token = acme_token(&server).await;
    let path = format!("/account/clients/{}", server.acme.javascript.client.id());
    let mut doc = call(&server, Method::GET, &path, &token, None).await.json();
    doc.as_object_mut().expect("an object").remove("etag");
    doc["name"] = json!("Renamed");
    let reply = call(&server, Method::PATCH, &path, &token, Some(doc.clone())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.json()["name"], "Renamed");
    for (field, value) in [
        ("kind", json!("NativeConfidential")),
        ("id", json!("other")),
        ("account", json!("globex")),
    ] {
        let mut changed = doc.clone();
        changed[field] = value;
        call(&server, Method::PATCH, &path, &token, Some(changed))
            .await
            .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
    call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"etag": "\"x\""})),
    )
    .await
    .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("etag"));
    call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"roles": ["Subscriber"]})),
    )
    .await
    .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("roles"));
}
