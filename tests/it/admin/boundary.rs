//! The tenant boundary of the admin API: what the operator set, an account holder cannot
//! lift or switch off (the quota's shadow mode, roles through an empty list), the bounds
//! on what a client may list, server-assigned ids, the paged client list, and another
//! account's client answering exactly as a missing one.

use gis_auth::client::ClientId;

use super::*;

/// `acme`'s clients as the store holds them, by id.
fn acme_clients(server: &Server) -> Vec<String> {
    server
        .store
        .clients_of(server.acme_id())
        .iter()
        .map(|c| c.id().to_string())
        .collect()
}

#[tokio::test]
async fn an_account_holder_cannot_run_the_quota_report_only() -> TestResult {
    let server = server();
    let token = acme_token(&server).await;
    let before = acme_clients(&server);
    call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(json!({"name": "Free", "shadow": ["origins", "quota"]})),
    )
    .await
    .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("shadow"));
    assert_eq!(acme_clients(&server), before, "nothing was created");

    let path = format!("/account/clients/{}", server.acme.javascript.client.id());
    let seen = call(&server, Method::GET, &path, &token, None).await.etag();
    call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"shadow": ["quota"], "name": "Free"})),
    )
    .await
    .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("shadow"));
    let after = call(&server, Method::GET, &path, &token, None).await;
    assert_eq!(after.etag(), seen, "nothing changed");
    assert_eq!(after.json()["shadow"], json!([]));

    // The account holder's own restrictions may run report-only.
    let reply = call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"shadow": ["origins", "ips", "privileges", "grants"]})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(
        reply.json()["shadow"],
        json!(["origins", "ips", "privileges", "grants"])
    );
    Ok(())
}

#[tokio::test]
async fn an_empty_role_list_never_widens_and_null_follows_the_accounts_roles() -> TestResult {
    let server = server();
    let token = acme_token(&server).await;
    let evaluator = server.client(ClientSpec::javascript("Map").roles(roles([Role::EVALUATOR])));
    let before = acme_clients(&server);
    call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(json!({"name": "W", "roles": []})),
    )
    .await
    .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("roles"));
    assert_eq!(acme_clients(&server), before, "nothing was created");

    let path = format!("/account/clients/{}", evaluator.client.id());
    call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"roles": []})),
    )
    .await
    .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("roles"));
    let unchanged = call(&server, Method::GET, &path, &token, None).await.json();
    assert_eq!(unchanged["roles"], json!(["Evaluator"]), "never `User`");

    // Following the account's roles is said with `null` (or by leaving `roles` out).
    let reply = call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"roles": null})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.json()["roles"], json!(["Evaluator", "User"]));
    Ok(())
}

#[tokio::test]
async fn lists_names_and_rules_are_bounded_naming_the_field() -> TestResult {
    let server = server();
    let token = acme_token(&server).await;
    let ips = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect()
    };
    let origins =
        |n: usize| -> Vec<String> { (0..n).map(|i| format!("https://m{i}.acme.test")).collect() };
    let grants = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"item": format!("item-{i}"), "actions": ["read"]}))
            .collect()
    };
    let privileges = |n: usize| -> Vec<String> { (0..n).map(|i| format!("Api{i}")).collect() };
    let long_origin = format!("https://{}.test", vec!["a".repeat(60); 4].join("."));
    let before = acme_clients(&server);
    for (body, field) in [
        (
            json!({"name": "W", "allowed_origins": origins(101)}),
            "allowed_origins",
        ),
        (json!({"name": "W", "allowed_ips": ips(101)}), "allowed_ips"),
        (
            json!({"name": "W", "privileges": privileges(101)}),
            "privileges",
        ),
        (json!({"name": "W", "grants": grants(101)}), "grants"),
        (json!({"name": "x".repeat(201)}), "name"),
        (
            json!({"name": "W", "allowed_origins": [long_origin]}),
            "allowed_origins",
        ),
        (
            json!({"name": "W", "allowed_ips": [format!("203.0.113.7/32{}", " ".repeat(250))]}),
            "allowed_ips",
        ),
    ] {
        call(
            &server,
            Method::POST,
            "/account/clients",
            &token,
            Some(body),
        )
        .await
        .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
    assert_eq!(acme_clients(&server), before, "nothing was created");

    // A hundred of each, and a name of 200 characters, are within bounds.
    let full = json!({
        "name": "é".repeat(200), "allowed_origins": origins(100), "allowed_ips": ips(100),
        "privileges": privileges(100), "grants": grants(100),
    });
    let reply = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(full),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.describe());

    let path = format!("/account/clients/{}", server.acme.javascript.client.id());
    for (body, field) in [
        (json!({"allowed_ips": ips(101)}), "allowed_ips"),
        (json!({"grants": grants(101)}), "grants"),
        (json!({"name": "x".repeat(201)}), "name"),
    ] {
        call(&server, Method::PATCH, &path, &token, Some(body))
            .await
            .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
    Ok(())
}

#[tokio::test]
async fn ids_are_assigned_by_the_server_so_a_create_tells_nothing_of_other_accounts() {
    let server = server();
    let globex = server.account("globex", roles([Role::USER, Role::SUBSCRIBER]), None);
    let token = acme_token(&server).await;
    let before = acme_clients(&server);
    for id in [
        "fresh-id".to_owned(),
        globex.javascript.client.id().to_string(),
        server.acme.javascript.client.id().to_string(),
    ] {
        call(
            &server,
            Method::POST,
            "/account/clients",
            &token,
            Some(json!({"name": "W", "id": id})),
        )
        .await
        .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("id"));
    }
    assert_eq!(acme_clients(&server), before, "nothing was created");
    assert!(
        server
            .store
            .client(&ClientId::new("fresh-id").expect("an id"))
            .is_none()
    );
}

#[tokio::test]
async fn the_client_list_pages_by_id_with_an_opaque_cursor() -> TestResult {
    let server = server();
    let token = acme_token(&server).await;
    for i in 0..5 {
        server.client(ClientSpec::javascript(format!("Map {i}")));
    }
    let all = acme_clients(&server);
    assert_eq!(all.len(), 7);

    let whole = call(&server, Method::GET, "/account/clients", &token, None).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.describe());
    assert_eq!(whole.json()["next"], Value::Null);
    let ids = |page: &Value| -> Vec<String> {
        page["clients"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|c| c["id"].as_str().expect("an id").to_owned())
            .collect()
    };
    assert_eq!(ids(&whole.json()), all, "by id");

    let mut seen = Vec::new();
    let mut path = "/account/clients?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = call(&server, Method::GET, &path, &token, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.describe());
        let body = page.json();
        let got = ids(&body);
        assert!(got.len() <= 3);
        seen.extend(got);
        pages += 1;
        match body["next"].as_str() {
            Some(cursor) => {
                assert!(
                    !cursor.is_empty() && !all.iter().any(|id| id == cursor),
                    "opaque"
                );
                path = format!("/account/clients?cursor={cursor}&limit=3");
            }
            None => break,
        }
    }
    assert_eq!((seen, pages), (all.clone(), 3));

    let exact = call(
        &server,
        Method::GET,
        "/account/clients?limit=7",
        &token,
        None,
    )
    .await;
    assert_eq!(
        (ids(&exact.json()), exact.json()["next"].clone()),
        (all, Value::Null)
    );

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("limit=", "limit"),
        ("limit=5&limit=6", "limit"),
        ("cursor=!!!", "cursor"),
        ("cursor=", "cursor"),
        // base64url of "has space", which is no client id
        ("cursor=aGFzIHNwYWNl", "cursor"),
        ("offset=3", "offset"),
    ] {
        call(
            &server,
            Method::GET,
            &format!("/account/clients?{query}"),
            &token,
            None,
        )
        .await
        .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
    let largest = call(
        &server,
        Method::GET,
        "/account/clients?limit=1000",
        &token,
        None,
    )
    .await;
    assert_eq!(largest.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn an_account_with_a_hundred_clients_gets_them_all_in_one_page() {
    let server = server();
    let token = acme_token(&server).await;
    for i in 0..98 {
        server.client(ClientSpec::javascript(format!("Map {i}")));
    }
    let page = call(&server, Method::GET, "/account/clients", &token, None).await;
    let body = page.json();
    assert_eq!(body["clients"].as_array().map(Vec::len), Some(100));
    assert_eq!(body["next"], Value::Null);

    server.client(ClientSpec::javascript("One more"));
    let page = call(&server, Method::GET, "/account/clients", &token, None).await;
    let body = page.json();
    assert_eq!(body["clients"].as_array().map(Vec::len), Some(100));
    let cursor = body["next"].as_str().expect("a next page").to_owned();
    let rest = call(
        &server,
        Method::GET,
        &format!("/account/clients?cursor={cursor}"),
        &token,
        None,
    )
    .await
    .json();
    assert_eq!(rest["clients"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["next"], Value::Null);
}

#[tokio::test]
async fn another_accounts_client_answers_exactly_as_a_missing_one_and_is_untouched() {
    let server = server();
    let globex = server.account("globex", roles([Role::USER, Role::SUBSCRIBER]), None);
    let acme = acme_token(&server).await;
    let theirs = globex.javascript.client.id().to_string();
    let before = server.store.client(globex.javascript.client.id());
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({"status": "inactive"}))),
        // A change that would be refused for the client itself is 404 all the same.
        (
            Method::PATCH,
            "",
            Some(json!({"kind": "NativeConfidential"})),
        ),
        (
            Method::PATCH,
            "",
            Some(json!({"roles": ["Subscriber", "Evaluator"]})),
        ),
        (Method::DELETE, "", None),
        (Method::POST, "/regenerate", None),
    ] {
        let (foreign_path, missing_path) = (
            format!("/account/clients/{theirs}{suffix}"),
            format!("/account/clients/cl_nobody_has_this_id{suffix}"),
        );
        let foreign = call(&server, method.clone(), &foreign_path, &acme, body.clone()).await;
        let missing = call(&server, method.clone(), &missing_path, &acme, body.clone()).await;
        foreign.assert_json_error(StatusCode::NOT_FOUND, "not_found", None);
        assert_eq!(
            (foreign.status, foreign.json()),
            (missing.status, missing.json()),
            "{method} {suffix}: the same answer"
        );
    }
    let after = server.store.client(globex.javascript.client.id());
    assert_eq!(after, before, "nothing changed");
    // The stale-ETag path, too, never reveals the client.
    let foreign = call_with(
        &server,
        Method::DELETE,
        &format!("/account/clients/{theirs}"),
        &acme,
        None,
        &[(header::IF_MATCH, "\"stale\"")],
    )
    .await;
    foreign.assert_json_error(StatusCode::NOT_FOUND, "not_found", None);
    assert!(foreign.header(header::ETAG).is_none());
    assert!(server.store.client(globex.javascript.client.id()).is_some());
}
