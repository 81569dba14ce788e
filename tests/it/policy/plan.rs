//! The operator's plan of an account at request time: the monthly quota beside the daily
//! one (what fits, what the headers and the quota page report, when it resets), the rate
//! limit all the account's clients share, the end of an evaluation period (API keys, tokens
//! and the token endpoint), and the item ceiling that no grant gets past.

use super::*;

/// When the first month of the tests ends.
const JUNE: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

/// Whole seconds from `now` until `then`.
fn seconds_until(then: OffsetDateTime, now: OffsetDateTime) -> u64 {
    u64::try_from((then - now).whole_seconds()).expect("ahead")
}

fn daily_and_monthly(daily: u64, monthly: u64) -> Plan {
    Plan::default()
        .with_daily_quota(Some(daily))
        .with_monthly_quota(Some(monthly))
}

#[tokio::test]
async fn a_request_must_fit_the_monthly_quota_too_and_is_told_to_retry_next_month() -> TestResult {
    let server = Server::new();
    server.set_plan(server.acme_id(), daily_and_monthly(5, 8));
    let token = server.token_of(&server.acme.native).await;

    // The first day: the daily quota has fewer left, so it is the one reported.
    for n in 1..=5u64 {
        let reply = server.send(get(GEOCODE).bearer(&token)).await;
        reply.assert_ok();
        assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 5);
        assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 5 - n, "request {n}");
        assert_eq!(
            reply.header_u64(RATELIMIT_RESET),
            seconds_to_midnight(server.clock.now())
        );
    }
    let reply = server.send(get(GEOCODE).bearer(&token)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    assert_eq!(
        reply.header_u64(header::RETRY_AFTER),
        seconds_to_midnight(server.clock.now())
    );

    // The next day: the month has three left, fewer than the day's five.
    server.clock.set(MIDNIGHT);
    let token = server.token_of(&server.acme.native).await;
    let to_june = seconds_until(JUNE, MIDNIGHT);
    let reply = server.send(get(GEOCODE).bearer(&token)).await;
    reply.assert_ok();
    assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 8);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 2);
    assert_eq!(reply.header_u64(RATELIMIT_RESET), to_june);
    assert_eq!(reply.header(QUOTA_WARNING), None, "6 of 8 is under 80 %");
    let reply = server.send(get(GEOCODE).bearer(&token)).await;
    assert_eq!(
        reply.header(QUOTA_WARNING),
        Some("7 of 8 monthly transactions used")
    );
    server.send(get(GEOCODE).bearer(&token)).await.assert_ok();

    let reply = server.send(get(GEOCODE).bearer(&token)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    assert_eq!(reply.header_u64(header::RETRY_AFTER), to_june);
    assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 8);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 0);
    assert_eq!(reply.header_u64(RATELIMIT_RESET), to_june);
    let description = reply.json()["error_description"].to_string();
    assert!(description.contains("monthly quota"), "{description}");
    assert_eq!(
        server.used(server.acme_id()).await,
        3_000,
        "the refusal cost nothing"
    );
    assert_eq!(server.monthly_used(server.acme_id()).await, 8_000);

    // A new month: the day's quota has fewer left again.
    server.clock.set(JUNE);
    let token = server.token_of(&server.acme.native).await;
    let reply = server.send(get(GEOCODE).bearer(&token)).await;
    reply.assert_ok();
    assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 5);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 4);
    assert_eq!(server.monthly_used(server.acme_id()).await, 1_000);
    Ok(())
}

#[tokio::test]
async fn a_monthly_quota_alone_meters_and_refuses() -> TestResult {
    let server = Server::new();
    server.set_plan(
        server.acme_id(),
        Plan::default().with_monthly_quota(Some(1)),
    );
    let web = &server.acme.javascript;
    for _ in 0..10 {
        let reply = server.send(keyed(TILE, web)).await;
        reply.assert_ok();
        assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 1);
    }
    let reply = server.send(keyed(TILE, web)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    assert_eq!(
        reply.header_u64(header::RETRY_AFTER),
        seconds_until(JUNE, server.clock.now())
    );
    Ok(())
}

#[tokio::test]
async fn the_quota_page_reports_the_month_beside_the_day() -> TestResult {
    let server = Server::new();
    server.set_plan(server.acme_id(), daily_and_monthly(5, 8));
    let token = server.token_of(&server.acme.native).await;
    for _ in 0..2 {
        server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    }
    let page = quota_page(&server, &server.acme).await;
    assert_eq!(
        page,
        json!({
            "limit": 5, "used": 2.0, "remaining": 3, "reset": "2026-05-02T00:00:00Z",
            "monthly": {
                "limit": 8, "used": 2.0, "remaining": 6, "reset": "2026-06-01T00:00:00Z",
            },
        })
    );
    server.clock.set(MIDNIGHT);
    let page = quota_page(&server, &server.acme).await;
    assert_eq!(page["used"], 0.0);
    assert_eq!(page["monthly"]["used"], 2.0);

    let daily_only = server.account("globex", roles([Role::USER, Role::EVALUATOR]), Some(5));
    let page = quota_page(&server, &daily_only).await;
    assert_eq!(page["monthly"], Value::Null);
    assert_eq!(page["limit"], 5);
    Ok(())
}

#[tokio::test]
async fn the_accounts_rate_limit_is_shared_by_all_its_clients() -> TestResult {
    let server = Server::new();
    server.set_plan(
        server.acme_id(),
        Plan::default().with_rate_limit(Some(RateLimit::new(2, 2)?)),
    );
    let web = &server.acme.javascript;
    let second = server.client(ClientSpec::javascript("Second map"));
    let other = server.account("globex", roles([Role::USER, Role::EVALUATOR]), None);

    server.send(keyed(TILE, web)).await.assert_ok();
    server.send(keyed(TILE, &second)).await.assert_ok();
    for client in [web, &second] {
        let reply = server.send(keyed(TILE, client)).await;
        reply.assert_refused_by(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Rule::AccountRateLimit,
        );
        assert_eq!(reply.kind(), RejectionKind::AccountRateLimited);
        assert!(
            reply.header_u64(header::RETRY_AFTER) >= 1,
            "{}",
            reply.describe()
        );
    }
    for _ in 0..5 {
        server
            .send(keyed(TILE, &other.javascript))
            .await
            .assert_ok();
    }
    server.clock.advance(time::Duration::seconds(1));
    server.send(keyed(TILE, &second)).await.assert_ok();
    server.send(keyed(TILE, web)).await.assert_ok();
    assert_eq!(
        server.send(keyed(TILE, web)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    Ok(())
}

#[tokio::test]
async fn a_request_its_clients_own_limit_refuses_is_not_counted_against_the_account() -> TestResult
{
    let server = Server::builder().quota(Some(10)).build();
    server.update_account(|a| a.plan.rate_limit = Some(RateLimit::new(2, 2).expect("a limit")));
    let limited =
        server.client(ClientSpec::javascript("Limited").rate_limit(Some(RateLimit::new(1, 1)?)));
    let web = &server.acme.javascript;

    server.send(keyed(REVERSE, &limited)).await.assert_ok();
    for _ in 0..3 {
        let reply = server.send(keyed(REVERSE, &limited)).await;
        reply.assert_refused_by(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Rule::RateLimit,
        );
    }
    server.send(keyed(REVERSE, web)).await.assert_ok();
    let reply = server.send(keyed(REVERSE, web)).await;
    reply.assert_refused_by(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        Rule::AccountRateLimit,
    );
    assert_eq!(
        server.used(server.acme_id()).await,
        2_000,
        "refusals cost nothing"
    );
    // The account pages are under the account's limit too: wait for it first.
    server.clock.advance(time::Duration::seconds(1));
    let page = usage_page(&server, &server.acme, "").await;
    let row = usage_row(&page, "2026-05-01", web.client.id());
    assert_eq!(row["refusals"], json!({"account_rate_limit": 1}));
    Ok(())
}

#[tokio::test]
async fn from_the_end_of_its_evaluation_period_every_client_of_the_account_is_refused() -> TestResult
{
    let server = Server::new();
    let at = START + time::Duration::minutes(5);
    let token = server.token_of(&server.acme.native).await;
    server.update_account(|a| a.plan.expires_at = Some(at));
    let web = &server.acme.javascript;
    let other = server.account("globex", roles([Role::USER, Role::EVALUATOR]), None);

    server.clock.set(at - time::Duration::seconds(1));
    server.send(keyed(TILE, web)).await.assert_ok();
    server.send(get(GEOCODE).bearer(&token)).await.assert_ok();

    server.clock.set(at);
    let expected = "the account expired at 2026-05-01T10:05:00Z";
    for reply in [
        server.send(keyed(TILE, web)).await,
        server.send(get(GEOCODE).bearer(&token)).await,
        server.send(get(PROFILE).bearer(&token)).await,
    ] {
        reply.assert_refused_by(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            Rule::AccountExpiry,
        );
        assert_eq!(reply.kind(), RejectionKind::AccountExpired);
        assert_eq!(reply.json()["error_description"], expected);
        let challenge = reply.challenge();
        assert_eq!(challenge["error"], "invalid_token");
        assert_eq!(challenge["error_description"], expected);
    }
    let reply = server.exchange(
        server.acme.native.client.id().as_str(),
        server.acme.native.credential.expose(),
    );
    let reply = reply.await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        reply.describe()
    );
    assert_eq!(reply.error(), "invalid_client");
    assert!(
        !reply.text().contains("expired"),
        "says no more than any failure"
    );

    server
        .send(keyed(TILE, &other.javascript))
        .await
        .assert_ok();
    Ok(())
}

#[tokio::test]
async fn a_token_issued_in_an_evaluation_period_ends_with_it() -> TestResult {
    let server = Server::new();
    server.update_account(|a| a.plan.expires_at = Some(START + time::Duration::minutes(10)));
    let reply = server
        .exchange(
            server.acme.native.client.id().as_str(),
            server.acme.native.credential.expose(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.json()["expires_in"], 600);
    Ok(())
}

#[tokio::test]
async fn an_item_outside_the_accounts_item_ceiling_is_refused_even_with_grants_report_only()
-> TestResult {
    let server = Server::new();
    server.set_plan(
        server.acme_id(),
        Plan::default().with_items(Some(ItemCeiling::new(["rivers", "parcels-*"])?)),
    );
    let grants = || {
        [
            Grant::new("rivers", [Action::Read]).expect("a grant"),
            Grant::new("parcels-north", [Action::Read]).expect("a grant"),
        ]
    };
    let reader = server.client(ClientSpec::native("Reader").grants(grants()));
    let lenient = server.client(
        ClientSpec::native("Lenient")
            .grants(grants())
            .shadow([Restriction::Grants]),
    );
    let (reader, lenient) = (
        server.token_of(&reader).await,
        server.token_of(&lenient).await,
    );

    for token in [&reader, &lenient] {
        for inside in ["/items/rivers/metadata", "/items/parcels-north/metadata"] {
            server.send(get(inside).bearer(token)).await.assert_ok();
        }
        // Report-only grants would admit `roads`; the operator's ceiling does not.
        let reply = server.send(get(ROADS).bearer(token)).await;
        reply.assert_refused_by(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            Rule::ItemCeiling,
        );
    }
    Ok(())
}
