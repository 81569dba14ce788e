//! The audit log through `GET /account/audit`: every change the admin API makes is there,
//! with who made it, the names of the fields and the outcome; an account holder reads its
//! own account's entries only; bad ranges are 400 naming the parameter.

use super::*;

/// `acme`'s audit log as its holder reads it.
async fn audit(server: &Server, token: &str, query: &str) -> Reply {
    call(
        server,
        Method::GET,
        &format!("/account/audit{query}"),
        token,
        None,
    )
    .await
}

fn summary(entries: &Value) -> Vec<(String, String, String)> {
    entries
        .as_array()
        .expect("a list of entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["outcome"].as_str().unwrap_or_default().to_owned(),
                e["fields"]
                    .as_array()
                    .map(|f| {
                        f.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_change_of_the_admin_api_is_in_the_audit_log_without_a_credential() -> TestResult {
    let server = server();
    let token = acme_token(&server).await;
    let created = call(
        &server,
        Method::POST,
        "/account/clients",
        &token,
        Some(json!({"name": "Store locator", "kind": "JavaScript",
            "allowed_origins": ["https://maps.acme.test"]})),
    )
    .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        created.describe()
    );
    let key = created.json()["api_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let id = created.json()["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/account/clients/{id}");
    server.clock.advance(time::Duration::minutes(1));
    let patched = call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"name": "Locator", "status": "inactive"})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.describe());
    let regenerated = call(
        &server,
        Method::POST,
        &format!("{path}/regenerate"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        regenerated.status,
        StatusCode::OK,
        "{}",
        regenerated.describe()
    );
    let new_key = regenerated.json()["api_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // A stale precondition and a lock-out are recorded with their outcome.
    let stale = call_with(
        &server,
        Method::DELETE,
        &path,
        &token,
        None,
        &[(header::IF_MATCH, "\"stale\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let native = format!("/account/clients/{}", server.native_id());
    let locked = call(&server, Method::DELETE, &native, &token, None).await;
    assert_eq!(locked.status, StatusCode::CONFLICT, "{}", locked.describe());
    let deleted = call(&server, Method::DELETE, &path, &token, None).await;
    assert_eq!(
        deleted.status,
        StatusCode::NO_CONTENT,
        "{}",
        deleted.describe()
    );
    let profile = call(
        &server,
        Method::PATCH,
        "/account/profile",
        &token,
        Some(json!({"contact_email": "maps@acme.test"})),
    )
    .await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.describe());

    let log = audit(&server, &token, "").await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.describe());
    let body = log.json();
    let s = |a: &str, o: &str, f: &str| (a.to_owned(), o.to_owned(), f.to_owned());
    assert_eq!(
        summary(&body["entries"]),
        [
            s("create_client", "success", "name,allowed_origins"),
            s("update_client", "success", "name,status"),
            s("regenerate_client", "success", "api_key"),
            s("delete_client", "stale_precondition", ""),
            s("delete_client", "lock_out", ""),
            s("delete_client", "success", ""),
            s("update_account", "success", "contact_email"),
        ]
    );
    let native_id = server.native_id().to_string();
    for entry in body["entries"].as_array().unwrap_or(&Vec::new()) {
        assert_eq!(entry["by"], native_id.as_str(), "{entry}");
        assert_eq!(entry["account_id"], "acme", "{entry}");
    }
    assert_eq!(body["entries"][0]["client_id"], id.as_str());
    assert_eq!(
        body["entries"][0]["at"], "2026-05-01T10:00:00Z",
        "the injected clock"
    );
    assert_eq!(body["entries"][1]["at"], "2026-05-01T10:01:00Z");
    assert_eq!(body["more"], false);
    let text = log.text();
    for secret in [key.as_str(), new_key.as_str(), "maps@acme.test"] {
        assert!(!text.contains(secret), "the log shows a value: {text}");
    }
    Ok(())
}

#[tokio::test]
async fn an_account_holder_never_reads_another_accounts_entries() -> TestResult {
    let server = server();
    let globex = server.account("globex", roles([Role::USER, Role::EVALUATOR]), None);
    let acme_token = acme_token(&server).await;
    let globex_token = server.token_of(&globex.native).await;
    // globex changes its own client, and tries acme's (404, recorded under globex).
    let own = format!("/account/clients/{}", globex.javascript.client.id());
    let renamed = call(
        &server,
        Method::PATCH,
        &own,
        &globex_token,
        Some(json!({"name": "G"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK);
    let theirs = format!("/account/clients/{}", server.acme.javascript.client.id());
    let probe = call(
        &server,
        Method::PATCH,
        &theirs,
        &globex_token,
        Some(json!({"name": "X"})),
    )
    .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND);
    // acme changes its own.
    let mine = call(
        &server,
        Method::PATCH,
        &theirs,
        &acme_token,
        Some(json!({"name": "A"})),
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK);

    let acme_log = audit(&server, &acme_token, "").await.json();
    let globex_log = audit(&server, &globex_token, "").await.json();
    let accounts = |log: &Value| -> Vec<String> {
        log["entries"]
            .as_array()
            .map(|e| e.iter().map(|e| e["account_id"].to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(accounts(&acme_log), ["\"acme\""]);
    assert_eq!(accounts(&globex_log), ["\"globex\"", "\"globex\""]);
    assert_eq!(
        summary(&globex_log["entries"])[1],
        ("update_client".into(), "not_found".into(), String::new())
    );
    // The operator's view holds them all.
    let all = server
        .store
        .audit(&AuditQuery::new(
            server::START,
            server::START + time::Duration::days(1),
        ))
        .await?;
    assert_eq!(all.len(), 3);
    Ok(())
}

#[tokio::test]
async fn audit_ranges_are_read_as_times_or_dates_and_bad_ones_are_400_naming_the_parameter() {
    let server = server();
    let token = acme_token(&server).await;
    let renamed = call(
        &server,
        Method::PATCH,
        &format!("/account/clients/{}", server.acme.javascript.client.id()),
        &token,
        Some(json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK);
    let count = |reply: &Reply| reply.json()["entries"].as_array().map_or(0, Vec::len);
    assert_eq!(
        count(&audit(&server, &token, "?from=2026-05-01&to=2026-05-01").await),
        1
    );
    assert_eq!(
        count(&audit(&server, &token, "?from=2026-05-01T10:00:01Z").await),
        0,
        "an RFC 3339 `from` is an instant"
    );
    assert_eq!(count(&audit(&server, &token, "?to=2026-04-30").await), 0);
    let page = audit(&server, &token, "?limit=1&from=2026-04-01")
        .await
        .json();
    assert_eq!(
        (page["more"].as_bool(), page["from"].as_str()),
        (Some(false), Some("2026-04-01T00:00:00Z"))
    );
    for (query, field) in [
        ("?from=yesterday", "from"),
        ("?to=2026-13-01", "to"),
        ("?from=2026-05-02&to=2026-05-01", "from"),
        ("?from=2026-01-01&to=2026-05-01", "to"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?from=2026-05-01&from=2026-05-01", "from"),
        ("?account=globex", "account"),
    ] {
        audit(&server, &token, query).await.assert_json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(field),
        );
    }
}

#[tokio::test]
async fn a_long_log_is_read_a_page_at_a_time() {
    let server = server();
    let token = acme_token(&server).await;
    let path = format!("/account/clients/{}", server.acme.javascript.client.id());
    for n in 0..3 {
        server.clock.advance(time::Duration::seconds(1));
        let r = call(
            &server,
            Method::PATCH,
            &path,
            &token,
            Some(json!({"name": format!("N{n}")})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let first = audit(&server, &token, "?limit=2").await.json();
    assert_eq!(
        (
            first["entries"].as_array().map(Vec::len),
            first["more"].as_bool()
        ),
        (Some(2), Some(true))
    );
    let last_at = first["entries"][1]["at"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rest = audit(
        &server,
        &token,
        &format!("?limit=2&from={}", last_at.replace(':', "%3A")),
    )
    .await
    .json();
    assert_eq!(rest["entries"].as_array().map(Vec::len), Some(2));
    assert_eq!(rest["more"], false);
}
