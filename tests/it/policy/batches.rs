//! Elevation batches: one transaction per started hundred points, charged before the answer
//! and refused whole when over the quota.

use gis_auth::client::Account;
use gis_auth::store::InMemoryStore;

use super::*;
use crate::harness::app;
use crate::harness::reply::send;

#[tokio::test]
async fn elevation_costs_one_transaction_per_started_hundred_points() -> TestResult {
    let server = Server::new();
    let web = &server.acme.javascript;
    let points = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("{},{}", i % 90, i % 180)).collect();
        format!("/elevation?points={}", list.join(";"))
    };
    let cases = [
        (points(1), 1_000),
        (points(2), 1_000),
        (points(99), 1_000),
        (points(100), 1_000),
        (points(101), 2_000),
        (points(200), 2_000),
        (points(201), 3_000),
        (ELEVATION.to_owned(), 1_000),
    ];
    for (path, cost) in cases {
        let before = server.used(server.acme_id()).await;
        let reply = server.send(keyed(&path, web)).await;
        reply.assert_ok();
        let charged = server.used(server.acme_id()).await - before;
        assert_eq!(charged, cost, "{}", &path[..path.len().min(60)]);
    }
    Ok(())
}

/// `POST /elevation` of `n` points with `client`'s API key.
fn elevation_batch(n: usize, client: &CreatedClient) -> Request<Body> {
    let points: Vec<[f64; 2]> = (0..n)
        .map(|i| [(i % 90) as f64, (i % 180) as f64])
        .collect();
    Request::post(with_key("/elevation", client))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "points": points }).to_string()))
        .expect("a request")
        .peer(CALLER)
}

#[tokio::test]
async fn a_batch_body_costs_one_transaction_per_started_hundred_points() -> TestResult {
    let server = Server::builder().quota(Some(100)).build();
    let web = &server.acme.javascript;
    for (n, cost) in [(1, 1_000), (100, 1_000), (101, 2_000), (250, 3_000)] {
        let before = server.used(server.acme_id()).await;
        let reply = server.send(elevation_batch(n, web)).await;
        reply.assert_ok();
        assert_eq!(reply.json()["points"].as_array().map(Vec::len), Some(n));
        let used = server.used(server.acme_id()).await;
        assert_eq!(used - before, cost, "{n} points");
        // The headers count the body's charge too.
        assert_eq!(
            reply.header_u64(RATELIMIT_REMAINING),
            100 - used / 1_000,
            "{}",
            reply.describe()
        );
    }
    // Counted once per request in the statistics, with the whole cost.
    let page = usage_page(&server, &server.acme, "").await;
    let day = usage_row(&page, "2026-05-01", web.client.id());
    assert_eq!(day["requests"], 4, "{page}");
    assert_eq!(day["transactions"], 7.0, "{page}");
    Ok(())
}

#[tokio::test]
async fn a_batch_over_the_monthly_quota_is_refused_until_the_month_ends() -> TestResult {
    let server = Server::new();
    server.set_plan(
        server.acme_id(),
        Plan::default()
            .with_daily_quota(Some(100))
            .with_monthly_quota(Some(2)),
    );
    let web = &server.acme.javascript;
    server.send(keyed(REVERSE, web)).await.assert_ok();
    // 101 points cost two transactions; the month has one left.
    let reply = server.send(elevation_batch(101, web)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 2, "{}", reply.describe());
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 1);
    let june = datetime!(2026-06-01 00:00 UTC);
    let to_june = u64::try_from((june - server.clock.now()).whole_seconds())?;
    assert_eq!(reply.header_u64(header::RETRY_AFTER), to_june);
    assert_eq!(server.monthly_used(server.acme_id()).await, 1_000);
    assert_eq!(server.used(server.acme_id()).await, 1_000);
    let fits = server.send(elevation_batch(100, web)).await;
    fits.assert_ok();
    assert_eq!(fits.header_u64(RATELIMIT_REMAINING), 0);
    assert_eq!(fits.header_u64(RATELIMIT_LIMIT), 2);
    Ok(())
}

#[tokio::test]
async fn a_batch_over_the_quota_is_refused_and_charges_nothing() -> TestResult {
    let server = Server::builder().quota(Some(2)).build();
    let web = &server.acme.javascript;
    server.send(keyed(REVERSE, web)).await.assert_ok();
    // 101 points cost two transactions; one is left.
    let reply = server.send(elevation_batch(101, web)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    assert_eq!(
        reply.header_u64(RATELIMIT_REMAINING),
        1,
        "{}",
        reply.describe()
    );
    assert_eq!(
        reply.header_u64(header::RETRY_AFTER),
        seconds_to_midnight(server.clock.now()),
    );
    assert_eq!(server.used(server.acme_id()).await, 1_000);
    // A hundred points still fit.
    let fits = server.send(elevation_batch(100, web)).await;
    fits.assert_ok();
    assert_eq!(fits.header_u64(RATELIMIT_REMAINING), 0);
    Ok(())
}

#[tokio::test]
async fn a_malformed_batch_is_a_clear_400_and_costs_nothing() -> TestResult {
    let server = Server::builder().quota(Some(10)).build();
    let web = &server.acme.javascript;
    let bodies = [
        "",
        "not json",
        r#"{"points": []}"#,
        r#"{"points": [[91, 0]]}"#,
        r#"{"points": [[0, 181]]}"#,
        r#"{"points": [[1]]}"#,
        r#"{"points": [[1, 2]], "extra": true}"#,
    ];
    for body in bodies {
        let req = Request::post(with_key("/elevation", web))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("a request")
            .peer(CALLER);
        let reply = server.send(req).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.describe()
        );
        assert_eq!(reply.json()["error"], "invalid_request", "{body}");
    }
    let too_many = server.send(elevation_batch(10_001, web)).await;
    assert_eq!(
        too_many.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_many.describe()
    );
    assert_eq!(server.used(server.acme_id()).await, 0);
    Ok(())
}

/// Admits every request's own charge and fails every further charge from a handler.
struct FailingFollowUps(InMemoryUsageCounter);

#[async_trait::async_trait]
impl UsageCounter for FailingFollowUps {
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, BackendError> {
        if charge.requests == 0 {
            return Err(BackendError::new("connection reset"));
        }
        self.0.charge(charge).await
    }

    async fn record_refusal(
        &self,
        refused: &gis_auth::limits::Refused<'_>,
    ) -> Result<(), BackendError> {
        self.0.record_refusal(refused).await
    }

    async fn used(&self, account: &AccountId, day: time::Date) -> Result<u64, BackendError> {
        self.0.used(account, day).await
    }

    async fn usage(
        &self,
        account: &AccountId,
        from: time::Date,
        to: time::Date,
    ) -> Result<Vec<DailyUsage>, BackendError> {
        self.0.usage(account, from, to).await
    }
}

#[tokio::test]
async fn a_batch_whose_charge_fails_is_a_503_not_a_free_answer() -> TestResult {
    let store = Arc::new(InMemoryStore::new());
    let router = app::router(
        store.clone(),
        app::Options {
            usage: Some(Arc::new(FailingFollowUps(InMemoryUsageCounter::new()))),
            ..app::Options::default()
        },
    )?;
    let acme = store.open_account(
        Account::new(
            AccountId::new(ACCOUNT)?,
            "acme maps",
            roles([Role::EVALUATOR]),
        )?
        .with_daily_quota(Some(10)),
    )?;
    let reply = send(router.clone(), elevation_batch(5, &acme.javascript)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.describe()
    );
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    assert!(
        reply.json().get("points").is_none(),
        "no elevations without a charge"
    );
    // The query form is charged by the layer alone, and still answers.
    let reply = send(router, keyed(ELEVATION, &acme.javascript).peer(CALLER)).await;
    reply.assert_ok();
    Ok(())
}

#[tokio::test]
async fn a_batch_runs_report_only_quota_over_the_limit() -> TestResult {
    let server = Server::builder().quota(Some(1)).build();
    let trial = server.client(ClientSpec::javascript("Trial").shadow([Restriction::Quota]));
    let reply = server.send(elevation_batch(300, &trial)).await;
    reply.assert_ok();
    assert_eq!(server.used(server.acme_id()).await, 3_000);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 0);
    // The body's charge went over the quota: recorded as report-only, as a request would be.
    assert_eq!(shadowed(&server, &trial).await, json!({"quota": 1}));
    Ok(())
}

#[tokio::test]
async fn elevation_points_the_api_would_refuse_are_400_and_charge_nothing() -> TestResult {
    let server = Server::new();
    let web = &server.acme.javascript;
    let list = |n: usize| vec!["1,2"; n].join(";");
    let too_many = format!("/elevation?points={}", list(10_001));
    // 32,000 points, as the longest URI holds them: priced before, 320 transactions.
    let far_too_many = format!("/elevation?points={}", vec!["1"; 32_000].join(";"));
    for path in [
        too_many.as_str(),
        far_too_many.as_str(),
        "/elevation?points=",
        "/elevation?points=45,6;north",
        "/elevation?points=95,6",
        "/elevation?points=1,2&points=3,4",
    ] {
        let before = server.used(server.acme_id()).await;
        let reply = server.send(keyed(path, web)).await;
        reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", None);
        // Refused by the layer, before the handler and before any charge.
        assert_eq!(
            reply.json()["error_description"],
            gis_auth::RejectionKind::Unpriceable.description(),
        );
        assert_eq!(
            server.used(server.acme_id()).await,
            before,
            "{} was charged",
            &path[..path.len().min(60)]
        );
    }
    // The largest valid request is served and charged its hundred transactions.
    let before = server.used(server.acme_id()).await;
    let largest = format!("/elevation?points={}", list(10_000));
    server.send(keyed(&largest, web)).await.assert_ok();
    assert_eq!(server.used(server.acme_id()).await - before, 100_000);
    Ok(())
}

#[tokio::test]
async fn a_batch_body_the_api_would_refuse_is_400_and_charges_nothing() -> TestResult {
    let server = Server::new();
    let web = &server.acme.javascript;
    let before = server.used(server.acme_id()).await;
    let too_many = server.send(elevation_batch(10_001, web)).await;
    too_many.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", None);
    let unreadable = Request::post(with_key("/elevation", web))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"points": [["north", 6]]}"#))
        .expect("a request")
        .peer(CALLER);
    let reply = server.send(unreadable).await;
    reply.assert_json_error(StatusCode::BAD_REQUEST, "invalid_request", None);
    assert_eq!(server.used(server.acme_id()).await, before);
    Ok(())
}
