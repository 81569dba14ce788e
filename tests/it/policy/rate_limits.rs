//! Per-client rate limits: retry later, one client's limit never slows another, and a
//! limited request does not use the quota.

use super::*;

#[tokio::test]
async fn a_client_over_its_rate_limit_is_told_to_retry_and_passes_a_second_later() -> TestResult {
    let server = Server::new();
    let limited =
        server.client(ClientSpec::javascript("Limited").rate_limit(Some(RateLimit::new(2, 2)?)));

    server.send(keyed(TILE, &limited)).await.assert_ok();
    server.send(keyed(TILE, &limited)).await.assert_ok();
    let reply = server.send(keyed(TILE, &limited)).await;
    reply.assert_refused_by(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        Rule::RateLimit,
    );
    assert_eq!(reply.kind(), RejectionKind::RateLimited);
    assert!(
        reply.header_u64(header::RETRY_AFTER) >= 1,
        "{}",
        reply.describe()
    );

    server.clock.advance(time::Duration::seconds(1));
    server.send(keyed(TILE, &limited)).await.assert_ok();
    server.send(keyed(TILE, &limited)).await.assert_ok();
    let again = server.send(keyed(TILE, &limited)).await;
    assert_eq!(
        again.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        again.describe()
    );
    Ok(())
}

#[tokio::test]
async fn one_clients_rate_limit_does_not_slow_another() -> TestResult {
    let server = Server::new();
    let limited =
        server.client(ClientSpec::javascript("Limited").rate_limit(Some(RateLimit::new(2, 2)?)));
    for _ in 0..3 {
        server.send(keyed(TILE, &limited)).await;
    }
    assert_eq!(
        server.send(keyed(TILE, &limited)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    for n in 0..20 {
        let reply = server.send(keyed(TILE, &server.acme.javascript)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "request {n}: {}",
            reply.describe()
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_rate_limited_request_does_not_use_the_quota() -> TestResult {
    let server = Server::builder().quota(Some(10)).build();
    let limited =
        server.client(ClientSpec::javascript("Limited").rate_limit(Some(RateLimit::new(1, 1)?)));
    server.send(keyed(REVERSE, &limited)).await.assert_ok();
    for _ in 0..5 {
        assert_eq!(
            server.send(keyed(REVERSE, &limited)).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(server.used(server.acme_id()).await, 1_000);
    Ok(())
}
