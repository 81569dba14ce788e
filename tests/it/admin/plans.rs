//! The plan is the operator's: the profile shows it and refuses every change to it, the
//! client cap is a `409`, and the item ceiling a `400` naming `grants`, on create and patch.

use gis_auth::client::ItemCeiling;

use super::*;

#[tokio::test]
async fn the_profile_shows_the_plan_and_refuses_every_change_to_it() {
    let server = server();
    server
        .store
        .try_change_account(server.acme_id(), |a| {
            a.plan.monthly_quota = Some(20_000);
            a.plan.max_clients = Some(10);
            a.plan.items = Some(ItemCeiling::new(["roads", "parcels-*"])?);
            Ok(())
        })
        .expect("the plan is set");
    let token = acme_token(&server).await;
    let profile = call(&server, Method::GET, "/account/profile", &token, None)
        .await
        .json();
    assert_eq!(profile["daily_quota"], 1_000);
    assert_eq!(profile["monthly_quota"], 20_000);
    assert_eq!(profile["max_clients"], 10);
    assert_eq!(profile["items"], json!(["parcels-*", "roads"]));
    assert_eq!(profile["rate_limit"], Value::Null);
    assert_eq!(profile["expires_at"], Value::Null);

    let before = server.store.account_now(server.acme_id()).expect("stored");
    for (body, field) in [
        (json!({"daily_quota": null}), "daily_quota"),
        (json!({"monthly_quota": 1_000_000}), "monthly_quota"),
        (json!({"monthly_quota": null}), "monthly_quota"),
        (
            json!({"rate_limit": {"per_second": 1000, "burst": 1000}}),
            "rate_limit",
        ),
        (json!({"max_clients": null}), "max_clients"),
        (json!({"max_clients": 100_000}), "max_clients"),
        (json!({"items": null}), "items"),
        (json!({"items": ["*"]}), "items"),
        (json!({"expires_at": null}), "expires_at"),
        (json!({"expires_at": "2099-01-01T00:00:00Z"}), "expires_at"),
        (
            json!({"name": "Acme", "items": ["other-tenant-item"]}),
            "items",
        ),
    ] {
        let reply = call(
            &server,
            Method::PATCH,
            "/account/profile",
            &token,
            Some(body.clone()),
        )
        .await;
        reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
        let said = reply.json()["error_description"].to_string();
        assert!(said.contains("not self-service"), "{body}: {said}");
    }
    let after = server.store.account_now(server.acme_id()).expect("stored");
    assert_eq!(*after, *before, "nothing changed");
}

#[tokio::test]
async fn a_client_beyond_the_plans_cap_is_a_conflict_and_changes_nothing() {
    let server = server();
    server
        .store
        .change_account(server.acme_id(), |a| a.plan.max_clients = Some(3))
        .expect("the plan is set");
    let token = acme_token(&server).await;
    let body = json!({"name": "Store locator", "kind": "JavaScript"});
    let third = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(body.clone()),
    )
    .await;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.describe());
    let fourth = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(body),
    )
    .await;
    fourth.assert_json_error(StatusCode::CONFLICT, "conflict", None);
    let said = fourth.json()["error_description"].to_string();
    assert!(said.contains("max_clients"), "{said}");
    assert_eq!(server.store.clients_of(server.acme_id()).len(), 3);

    // Unlimited: the operator lifts the cap.
    server
        .store
        .change_account(server.acme_id(), |a| a.plan.max_clients = None)
        .expect("the plan is set");
    let body = json!({"name": "Fourth", "kind": "JavaScript"});
    let reply = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.describe());
}

#[tokio::test]
async fn a_grant_outside_the_accounts_items_is_refused_naming_grants() {
    let server = server();
    server
        .store
        .try_change_account(server.acme_id(), |a| {
            a.plan.items = Some(ItemCeiling::new(["roads", "parcels-*"])?);
            Ok(())
        })
        .expect("the plan is set");
    let token = acme_token(&server).await;
    let grants = |items: &[&str]| {
        let list: Vec<Value> = items
            .iter()
            .map(|item| json!({"item": item, "actions": ["read"]}))
            .collect();
        Value::from(list)
    };
    let outside = json!({"name": "Web", "kind": "JavaScript",
                         "grants": grants(&["roads", "other-tenant-item"])});
    let reply = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(outside),
    )
    .await;
    reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("grants"));
    assert_eq!(server.store.clients_of(server.acme_id()).len(), 2);

    let inside = json!({"name": "Web", "kind": "JavaScript",
                        "grants": grants(&["roads", "parcels-north"])});
    let made = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(inside),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.describe());
    let id = made.json()["id"].as_str().expect("an id").to_owned();
    let path = format!("/account/clients/{id}");
    let widened = call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"grants": grants(&["tiles"])})),
    )
    .await;
    widened.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("grants"));
    let stored = call(&server, Method::GET, &path, &token, None).await.json();
    assert_eq!(stored["grants"].as_array().map(Vec::len), Some(2));
    assert!(
        !stored["grants"].to_string().contains("tiles"),
        "nothing changed: {stored}"
    );

    // An empty ceiling admits no grant at all; a client without grants is still fine.
    server
        .store
        .try_change_account(server.acme_id(), |a| {
            a.plan.items = Some(ItemCeiling::default());
            Ok(())
        })
        .expect_err("the client's grants are outside an empty ceiling");
    let patch = call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"grants": []})),
    )
    .await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.describe());
    server
        .store
        .try_change_account(server.acme_id(), |a| {
            a.plan.items = Some(ItemCeiling::default());
            Ok(())
        })
        .expect("no grant is outside it now");
    let reply = call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"grants": grants(&["roads"])})),
    )
    .await;
    reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some("grants"));
}
