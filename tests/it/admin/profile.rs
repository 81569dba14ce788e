//! The account's own pages: the profile, its changes, and the usage and quota pages.

use super::*;

#[tokio::test]
async fn the_profile_shows_the_account_and_the_caller_and_takes_contact_changes() -> TestResult {
    let server = server();
    let token = acme_token(&server).await;
    let reply = call(&server, Method::GET, "/account/profile", &token, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    let body = reply.json();
    assert_eq!(body["account_id"], "acme");
    assert_eq!(body["name"], "acme maps");
    assert_eq!(body["roles"], json!(["Evaluator", "User"]));
    assert_eq!(body["client_id"], server.acme.native.client.id().as_str());
    assert_eq!(body["daily_quota"], 1_000);
    assert_eq!(body["contact_email"], Value::Null);

    let change = json!({"name": "Acme Maps Ltd", "contact_email": "ops@acme.test",
                        "contact_name": "Ana Ruiz", "contact_phone": "+34 91 123 4567"});
    let reply = call(
        &server,
        Method::PATCH,
        "/account/profile",
        &token,
        Some(change),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.json()["contact_email"], "ops@acme.test");
    let stored = server
        .store
        .account_now(&server.acme.account.id)
        .expect("stored");
    assert_eq!(stored.name, "Acme Maps Ltd");
    assert_eq!(stored.contact.contact_name.as_deref(), Some("Ana Ruiz"));

    // null clears a contact field; other fields stay.
    let reply = call(
        &server,
        Method::PATCH,
        "/account/profile",
        &token,
        Some(json!({"contact_phone": null})),
    )
    .await;
    assert_eq!(reply.json()["contact_phone"], Value::Null);
    assert_eq!(reply.json()["contact_email"], "ops@acme.test");
    Ok(())
}

#[tokio::test]
async fn roles_and_quota_are_not_self_service_and_bad_contact_fields_are_named() {
    let server = server();
    let token = acme_token(&server).await;
    for (body, field) in [
        (json!({"roles": ["User", "Subscriber"]}), "roles"),
        (json!({"daily_quota": 1_000_000}), "daily_quota"),
        (json!({"status": "active"}), "status"),
        (json!({"contact_email": "not-an-address"}), "contact_email"),
        (json!({"contact_phone": "call me"}), "contact_phone"),
        (json!({"name": ""}), "name"),
        (json!({"name": 7}), "name"),
        (json!({"website": "x"}), "website"),
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
    }
    let stored = server
        .store
        .account_now(&server.acme.account.id)
        .expect("stored");
    assert_eq!(stored.plan.daily_quota, Some(1_000));
    assert_eq!(stored.name, "acme maps");
}

#[tokio::test]
async fn usage_and_quota_report_the_callers_account() {
    let server = server();
    let token = acme_token(&server).await;
    let key = server.acme.javascript.credential.expose();
    for _ in 0..3 {
        server
            .send(
                Request::get(format!("/reverse-geocode?lat=1&lon=1&apikey={key}"))
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await;
    }
    let quota = call(&server, Method::GET, "/account/quota", &token, None)
        .await
        .json();
    assert_eq!(
        quota,
        json!({
            "limit": 1_000, "used": 3.0, "remaining": 997, "reset": "2026-05-02T00:00:00Z",
            "monthly": null,
        })
    );
    let usage = call(
        &server,
        Method::GET,
        "/account/usage?from=2026-05-01&to=2026-05-01",
        &token,
        None,
    )
    .await
    .json();
    assert_eq!(usage["account_id"], "acme");
    let web = server.acme.javascript.client.id().as_str();
    let row = usage["days"]
        .as_array()
        .expect("days")
        .iter()
        .find(|r| r["client_id"] == web)
        .expect("a row for the web client");
    assert_eq!(row["requests"], 3);
    assert_eq!(row["transactions"], 3.0);
    for (query, field) in [
        ("from=May", "from"),
        ("from=2026-05-02&to=2026-05-01", "from"),
        ("from=2026-01-01&to=2026-05-01", "to"),
        ("day=1", "day"),
    ] {
        call(
            &server,
            Method::GET,
            &format!("/account/usage?{query}"),
            &token,
            None,
        )
        .await
        .assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
}
