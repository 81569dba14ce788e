//! The daily quota: what fits, the warning, what each route costs, what does not count, the
//! reset at UTC midnight, and exact accounting under concurrency.

use tower::ServiceExt;

use super::*;

#[tokio::test]
async fn ten_geocodes_fit_a_quota_of_ten_and_the_eleventh_is_refused() -> TestResult {
    let server = Server::builder().quota(Some(10)).build();
    let token = server.token_of(&server.acme.native).await;

    for n in 1..=10u64 {
        server.clock.advance(time::Duration::seconds(90));
        let reply = server.send(get(GEOCODE).bearer(&token)).await;
        reply.assert_ok();
        assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 10);
        assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 10 - n, "request {n}");
        assert_eq!(
            reply.header_u64(RATELIMIT_RESET),
            seconds_to_midnight(server.clock.now()),
            "request {n}"
        );
    }
    let reply = server.send(get(GEOCODE).bearer(&token)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    let to_midnight = seconds_to_midnight(server.clock.now());
    assert_eq!(reply.header_u64(header::RETRY_AFTER), to_midnight);
    assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 10);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 0);
    assert_eq!(reply.header_u64(RATELIMIT_RESET), to_midnight);
    assert_eq!(server.used(server.acme_id()).await, 10_000);
    Ok(())
}

#[tokio::test]
async fn the_quota_warning_appears_from_eighty_percent_and_not_before() -> TestResult {
    let server = Server::builder().quota(Some(10)).build();
    let token = server.token_of(&server.acme.native).await;

    for n in 1..=7 {
        let reply = server.send(get(GEOCODE).bearer(&token)).await;
        reply.assert_ok();
        assert_eq!(reply.header(QUOTA_WARNING), None, "request {n}");
    }
    for n in 8..=10 {
        let reply = server.send(get(GEOCODE).bearer(&token)).await;
        reply.assert_ok();
        assert_eq!(
            reply.header(QUOTA_WARNING),
            Some(format!("{n} of 10 daily transactions used").as_str()),
            "request {n}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_hundred_tiles_cost_ten_transactions() -> TestResult {
    let server = Server::builder().quota(Some(10)).build();
    let web = &server.acme.javascript;

    for n in 1..=100 {
        let reply = server.send(keyed(TILE, web)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "tile {n}: {}",
            reply.describe()
        );
    }
    assert_eq!(server.used(server.acme_id()).await, 10_000);
    let quota = quota_page(&server, &server.acme).await;
    assert_eq!(quota["used"], 10.0);
    assert_eq!(quota["remaining"], 0);
    let reply = server.send(keyed(TILE, web)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    Ok(())
}

#[tokio::test]
async fn with_a_quota_of_one_ten_tiles_pass_and_the_eleventh_is_refused() -> TestResult {
    let server = Server::builder().quota(Some(1)).build();
    let web = &server.acme.javascript;

    for n in 1..=10 {
        let reply = server.send(keyed(TILE, web)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "tile {n}: {}",
            reply.describe()
        );
        assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 1);
    }
    let reply = server.send(keyed(TILE, web)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    assert_eq!(server.used(server.acme_id()).await, 1_000);
    Ok(())
}

#[tokio::test]
async fn account_pages_are_not_metered() -> TestResult {
    let server = Server::builder().quota(Some(10)).build();
    let token = server.token_of(&server.acme.native).await;

    for path in [PROFILE, USAGE, QUOTA, PROFILE] {
        let reply = server.send(get(path).bearer(&token)).await;
        reply.assert_ok();
        assert!(
            !reply.has_ratelimit_headers(),
            "{path}: {}",
            reply.describe()
        );
    }
    assert_eq!(server.used(server.acme_id()).await, 0);
    // Still answered once the quota is used up.
    for _ in 0..10 {
        server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    }
    assert_eq!(
        server.send(get(GEOCODE).bearer(&token)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    for path in [PROFILE, USAGE, QUOTA] {
        server.send(get(path).bearer(&token)).await.assert_ok();
    }
    Ok(())
}

#[tokio::test]
async fn refused_requests_do_not_use_the_quota() -> TestResult {
    let server = Server::builder().quota(Some(10)).build();
    let site = server.client(ClientSpec::javascript("Site").allowed_origins([MAPS]));
    let web = &server.acme.javascript;

    let refused = [
        server.send(get(REVERSE)).await,
        server
            .send(get(&format!("{REVERSE}&apikey=not-a-key")))
            .await,
        server.send(keyed(REVERSE, &site).origin(EVIL)).await,
        server.send(keyed(GEOCODE, web)).await,
        server.send(keyed(PROFILE, web)).await,
        server.send(get(GEOCODE).bearer("not.a.token")).await,
    ];
    for reply in &refused {
        assert!(
            reply.status.is_client_error(),
            "refused: {}",
            reply.describe()
        );
        assert!(!reply.has_ratelimit_headers(), "{}", reply.describe());
    }
    assert_eq!(server.used(server.acme_id()).await, 0);
    let reply = server.send(keyed(REVERSE, web)).await;
    reply.assert_ok();
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 9);
    Ok(())
}

#[tokio::test]
async fn the_quota_is_shared_by_the_clients_of_an_account_and_no_other() -> TestResult {
    let server = Server::builder().quota(Some(3)).build();
    let other = server.account("globex", roles([Role::USER, Role::EVALUATOR]), Some(3));
    let token = server.token_of(&server.acme.native).await;

    server
        .send(keyed(REVERSE, &server.acme.javascript))
        .await
        .assert_ok();
    server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    let second_web = server.client(ClientSpec::javascript("Second web map"));
    server.send(keyed(REVERSE, &second_web)).await.assert_ok();
    for reply in [
        server.send(keyed(REVERSE, &server.acme.javascript)).await,
        server.send(get(GEOCODE).bearer(&token)).await,
    ] {
        reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    }
    let reply = server.send(keyed(REVERSE, &other.javascript)).await;
    reply.assert_ok();
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 2);
    Ok(())
}

#[tokio::test]
async fn the_quota_resets_at_utc_midnight() -> TestResult {
    let server = Server::builder().quota(Some(2)).build();
    let web = &server.acme.javascript;

    server.send(keyed(REVERSE, web)).await.assert_ok();
    server.send(keyed(REVERSE, web)).await.assert_ok();
    server.clock.set(MIDNIGHT - time::Duration::seconds(1));
    let reply = server.send(keyed(REVERSE, web)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    assert_eq!(reply.header_u64(header::RETRY_AFTER), 1);

    server.clock.set(MIDNIGHT);
    let reply = server.send(keyed(REVERSE, web)).await;
    reply.assert_ok();
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 1);
    assert_eq!(reply.header_u64(RATELIMIT_RESET), 24 * 3600);
    Ok(())
}

#[tokio::test]
async fn an_account_without_quota_gets_no_ratelimit_headers() -> TestResult {
    let server = Server::new();
    let token = server.token_of(&server.acme.native).await;

    for _ in 0..20 {
        let reply = server.send(get(GEOCODE).bearer(&token)).await;
        reply.assert_ok();
        assert!(!reply.has_ratelimit_headers(), "{}", reply.describe());
    }
    let tile = server.send(keyed(TILE, &server.acme.javascript)).await;
    tile.assert_ok();
    assert!(!tile.has_ratelimit_headers(), "{}", tile.describe());
    Ok(())
}

#[tokio::test]
async fn a_request_that_does_not_fit_reports_the_quota_still_left() -> TestResult {
    let server = Server::builder().quota(Some(2)).build();
    let web = &server.acme.javascript;
    server.send(keyed(REVERSE, web)).await.assert_ok();
    // 101 points cost two transactions; one is left.
    let many: Vec<&str> = vec!["1,1"; 101];
    let path = format!("/elevation?points={}", many.join(";"));

    let reply = server.send(keyed(&path, web)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    assert_eq!(quota_page(&server, &server.acme).await["remaining"], 1);
    // The refusal's headers agree with the quota page: one transaction is still left.
    assert_eq!(
        reply.header_u64(RATELIMIT_REMAINING),
        1,
        "{}",
        reply.describe()
    );
    let fits = server.send(keyed(REVERSE, web)).await;
    fits.assert_ok();
    assert_eq!(fits.header_u64(RATELIMIT_REMAINING), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_requests_admit_exactly_the_five_thousand_that_fit() -> TestResult {
    let server = Server::builder().quota(Some(5_000)).build();
    let uri = with_key(REVERSE, &server.acme.javascript);
    let tasks: Vec<_> = (0..10_000)
        .map(|_| {
            let router = server.router.clone();
            let req = get(&uri);
            tokio::spawn(async move {
                let res = router.oneshot(req).await.unwrap_or_else(|e| match e {});
                res.status()
            })
        })
        .collect();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for task in tasks {
        *statuses.entry(task.await?.as_u16()).or_default() += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(200, 5_000), (429, 5_000)]));
    assert_eq!(server.used(server.acme_id()).await, 5_000_000);
    let page = usage_page(&server, &server.acme, "").await;
    let row = usage_row(&page, "2026-05-01", server.acme.javascript.client.id());
    assert_eq!(row["requests"], 5_000);
    assert_eq!(row["refusals"], json!({"quota_exceeded": 5_000}));
    Ok(())
}
