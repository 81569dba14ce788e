//! The usage and quota pages: requests, transactions and refusals per client per day, for
//! the caller's account only.

use super::*;

#[tokio::test]
async fn usage_lists_requests_transactions_and_refusals_per_client_per_day() -> TestResult {
    let server = Server::builder().quota(Some(3)).build();
    let site = server.client(ClientSpec::javascript("Site").allowed_origins([MAPS]));
    let limited =
        server.client(ClientSpec::javascript("Limited").rate_limit(Some(RateLimit::new(1, 1)?)));
    let native = &server.acme.native;
    let token = server.token_of(native).await;

    server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    server
        .send(keyed(TILE, &site).origin(MAPS))
        .await
        .assert_ok();
    server
        .send(keyed(TILE, &site).origin(MAPS))
        .await
        .assert_ok();
    assert_eq!(
        server.send(keyed(TILE, &site).origin(EVIL)).await.status,
        StatusCode::FORBIDDEN
    );
    server.send(keyed(TILE, &limited)).await.assert_ok();
    assert_eq!(
        server.send(keyed(TILE, &limited)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // 2.3 used of 3: another geocode does not fit.
    assert_eq!(
        server.send(get(GEOCODE).bearer(&token)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let page = usage_page(&server, &server.acme, "").await;
    assert_eq!(page["account_id"], ACCOUNT);
    assert_eq!(page["from"], "2026-05-01");
    assert_eq!(page["to"], "2026-05-01");
    let day = "2026-05-01";
    let native_row = usage_row(&page, day, native.client.id());
    // The two geocodes and the usage page itself, which is free.
    assert_eq!(native_row["requests"], 3);
    assert_eq!(native_row["transactions"], 2.0);
    assert_eq!(native_row["refusals"], json!({"quota_exceeded": 1}));
    let site_row = usage_row(&page, day, site.client.id());
    assert_eq!(site_row["requests"], 2);
    assert_eq!(site_row["transactions"], 0.2);
    assert_eq!(site_row["refusals"], json!({"origins": 1}));
    assert_eq!(site_row["shadowed"], json!({}));
    let limited_row = usage_row(&page, day, limited.client.id());
    assert_eq!(limited_row["requests"], 1);
    assert_eq!(limited_row["transactions"], 0.1);
    assert_eq!(limited_row["refusals"], json!({"rate_limit": 1}));
    Ok(())
}

#[tokio::test]
async fn usage_is_reported_per_day() -> TestResult {
    let server = Server::builder().quota(Some(5)).build();
    let web = &server.acme.javascript;
    server.send(keyed(REVERSE, web)).await.assert_ok();
    server.clock.set(MIDNIGHT + time::Duration::hours(1));
    server.send(keyed(REVERSE, web)).await.assert_ok();
    server.send(keyed(REVERSE, web)).await.assert_ok();

    let page = usage_page(&server, &server.acme, "?from=2026-05-01&to=2026-05-02").await;
    assert_eq!(
        usage_row(&page, "2026-05-01", web.client.id())["requests"],
        1
    );
    assert_eq!(
        usage_row(&page, "2026-05-02", web.client.id())["requests"],
        2
    );
    let today = usage_page(&server, &server.acme, "").await;
    assert!(
        today["days"]
            .as_array()
            .expect("a list of days")
            .iter()
            .all(|r| r["date"] == "2026-05-02"),
        "{today}"
    );
    Ok(())
}

#[tokio::test]
async fn usage_shows_the_callers_account_only() -> TestResult {
    let server = Server::new();
    let globex = server.account("globex", roles([Role::USER, Role::EVALUATOR]), None);
    server
        .send(keyed(TILE, &server.acme.javascript))
        .await
        .assert_ok();
    server
        .send(keyed(TILE, &globex.javascript))
        .await
        .assert_ok();
    server
        .send(keyed(REVERSE, &globex.javascript))
        .await
        .assert_ok();

    let acme_ids: Vec<String> = server
        .store
        .clients_of(server.acme_id())
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    let page = usage_page(&server, &server.acme, "").await;
    let rows = page["days"].as_array().expect("a list of days");
    assert!(!rows.is_empty());
    for row in rows {
        let client = row["client_id"].as_str().unwrap_or_default();
        assert!(acme_ids.iter().any(|c| c == client), "{row}");
    }
    // A parameter naming another account is refused, and reveals nothing.
    let token = server.token_of(&server.acme.native).await;
    let reply = server
        .send(get(&format!("{USAGE}?account_id=globex")).bearer(&token))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{}",
        reply.describe()
    );
    assert_eq!(reply.json()["field"], "account_id");
    assert!(
        !reply
            .describe()
            .contains(globex.javascript.client.id().as_str()),
        "{}",
        reply.describe()
    );
    let theirs = usage_page(&server, &globex, "").await;
    let row = usage_row(&theirs, "2026-05-01", globex.javascript.client.id());
    assert_eq!(row["requests"], 2);
    assert!(
        !theirs
            .to_string()
            .contains(server.acme.javascript.client.id().as_str()),
        "{theirs}"
    );
    Ok(())
}

#[tokio::test]
async fn the_quota_page_reports_limit_used_remaining_and_reset() -> TestResult {
    let server = Server::builder().quota(Some(10)).build();
    let token = server.token_of(&server.acme.native).await;
    for _ in 0..3 {
        server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    }
    server
        .send(keyed(TILE, &server.acme.javascript))
        .await
        .assert_ok();

    let quota = quota_page(&server, &server.acme).await;
    assert_eq!(quota["limit"], 10);
    assert_eq!(quota["used"], 3.1);
    assert_eq!(quota["remaining"], 6);
    assert_eq!(quota["reset"], "2026-05-02T00:00:00Z");
    let reset = OffsetDateTime::parse(
        quota["reset"].as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )?;
    assert_eq!(reset, MIDNIGHT);
    Ok(())
}

#[tokio::test]
async fn the_quota_page_of_an_account_without_quota_has_no_limit() -> TestResult {
    let server = Server::new();
    server
        .send(keyed(REVERSE, &server.acme.javascript))
        .await
        .assert_ok();

    let quota = quota_page(&server, &server.acme).await;
    assert_eq!(quota["limit"], Value::Null);
    assert_eq!(quota["remaining"], Value::Null);
    assert_eq!(quota["used"], 1.0);
    assert_eq!(quota["reset"], "2026-05-02T00:00:00Z");
    Ok(())
}

#[tokio::test]
async fn a_javascript_key_cannot_read_usage_or_quota() -> TestResult {
    let server = Server::builder().quota(Some(10)).build();
    for path in [USAGE, QUOTA] {
        let reply = server.send(keyed(path, &server.acme.javascript)).await;
        reply.assert_refused_by(StatusCode::FORBIDDEN, "insufficient_scope", Rule::Kind);
    }
    Ok(())
}

#[tokio::test]
async fn bad_usage_dates_are_refused_with_400() -> TestResult {
    let server = Server::new();
    let token = server.token_of(&server.acme.native).await;
    for query in [
        "?from=2026-02-30",
        "?from=05/01/2026",
        "?to=tomorrow",
        "?from=",
        "?from=2026-05-02&to=2026-05-01",
        "?from=2026-01-01&to=2026-05-01",
        "?from=2026-05-01&from=2026-04-01",
    ] {
        let reply = server
            .send(get(&format!("{USAGE}{query}")).bearer(&token))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.describe()
        );
        assert_eq!(reply.error(), "invalid_request", "{query}");
    }
    Ok(())
}

#[tokio::test]
async fn usage_breaks_each_day_down_by_api_and_names_where_refusals_came_from() -> TestResult {
    let server = Server::new();
    let site = server.client(
        ClientSpec::javascript("Site")
            .allowed_origins([MAPS])
            .allowed_ips([OFFICE_BLOCK])
            .shadow([Restriction::Ips]),
    );
    // Allowed outright: counted by API, but not as seen.
    let ok = keyed(TILE, &site).origin(MAPS).peer(OFFICE);
    server.send(ok).await.assert_ok();
    // Admitted, but the report-only IP rule would have refused it: seen.
    server
        .send(keyed(TILE, &site).origin(MAPS))
        .await
        .assert_ok();
    server
        .send(keyed(REVERSE, &site).origin(MAPS).peer("2001:db8:5:6::1"))
        .await
        .assert_ok();
    // Refused by the origin rule: seen.
    let refused = server
        .send(keyed(REVERSE, &site).origin(EVIL).peer(OFFICE))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let page = usage_page(&server, &server.acme, "").await;
    let row = usage_row(&page, "2026-05-01", site.client.id());
    assert_eq!(
        row["apis"],
        json!({
            "WorldStreets": {"requests": 2, "transactions": 0.2},
            "ReverseGeocoder": {"requests": 1, "transactions": 1.0},
        })
    );
    assert_eq!(
        row["origins"],
        json!([{"origin": MAPS, "count": 2}, {"origin": EVIL, "count": 1}])
    );
    assert_eq!(
        row["networks"],
        json!([
            {"network": "198.51.100.0/24", "count": 1},
            {"network": "2001:db8:5::/48", "count": 1},
            {"network": OFFICE_BLOCK, "count": 1},
        ])
    );
    let text = page.to_string();
    for address in [CALLER, OFFICE, "2001:db8:5:6::1"] {
        assert!(
            !text.contains(&format!("\"{address}")),
            "a whole address: {text}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_client_shows_when_it_was_last_used_to_the_minute_and_use_keeps_its_etag() -> TestResult {
    let server = Server::new();
    let web = &server.acme.javascript;
    let token = server.token_of(&server.acme.native).await;
    let path = format!("/account/clients/{}", web.client.id());
    let before = server.send(get(&path).bearer(&token)).await;
    assert_eq!(before.json()["last_used_at"], Value::Null, "never used");
    server.clock.set(START + time::Duration::seconds(75));
    server.send(keyed(TILE, web)).await.assert_ok();
    let after = server.send(get(&path).bearer(&token)).await;
    assert_eq!(after.json()["last_used_at"], "2026-05-01T10:01:00Z");
    assert_eq!(
        after.headers.get(header::ETAG),
        before.headers.get(header::ETAG),
        "using a client does not change its ETag"
    );
    // A refused request is a use too, and the list shows it.
    server.clock.set(START + time::Duration::minutes(5));
    let refused = server.send(keyed(ROADS, web)).await;
    assert!(refused.status.is_client_error(), "{}", refused.describe());
    let list = server
        .send(get("/account/clients").bearer(&token))
        .await
        .json();
    let listed = list["clients"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| c["id"] == web.client.id().as_str())
        .expect("the client");
    assert_eq!(listed["last_used_at"], "2026-05-01T10:05:00Z");
    Ok(())
}
