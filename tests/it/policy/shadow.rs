//! Report-only (shadow) restrictions: admitted, and reported in the usage statistics.

use super::*;

#[tokio::test]
async fn an_origin_restriction_in_shadow_mode_admits_and_reports() -> TestResult {
    let server = Server::new();
    let spec = ClientSpec::javascript("Site").allowed_origins([MAPS]);
    let trial = server.client(spec.clone().shadow([Restriction::Origins]));
    let enforced = server.client(spec);

    server
        .send(keyed(TILE, &trial).origin(EVIL))
        .await
        .assert_ok();
    assert_eq!(shadowed(&server, &trial).await, json!({"origins": 1}));
    let reply = server.send(keyed(TILE, &enforced).origin(EVIL)).await;
    reply.assert_refused_by(StatusCode::FORBIDDEN, "access_denied", Rule::Origins);
    Ok(())
}

#[tokio::test]
async fn an_ip_restriction_in_shadow_mode_admits_and_reports() -> TestResult {
    let server = Server::new();
    let spec = ClientSpec::javascript("Kiosk").allowed_ips([OFFICE_BLOCK]);
    let trial = server.client(spec.clone().shadow([Restriction::Ips]));
    let enforced = server.client(spec);

    server
        .send(keyed(TILE, &trial).peer(OFFICE))
        .await
        .assert_ok();
    server
        .send(keyed(TILE, &trial).peer(CALLER))
        .await
        .assert_ok();
    assert_eq!(shadowed(&server, &trial).await, json!({"ips": 1}));
    let reply = server.send(keyed(TILE, &enforced).peer(CALLER)).await;
    reply.assert_refused_by(StatusCode::FORBIDDEN, "access_denied", Rule::Ips);
    Ok(())
}

#[tokio::test]
async fn a_privilege_restriction_in_shadow_mode_admits_and_reports() -> TestResult {
    let server = Server::new();
    let spec = ClientSpec::javascript("Heights").privileges(["Elevation"]);
    let trial = server.client(spec.clone().shadow([Restriction::Privileges]));
    let enforced = server.client(spec);

    server.send(keyed(ELEVATION, &trial)).await.assert_ok();
    server.send(keyed(TILE, &trial)).await.assert_ok();
    assert_eq!(shadowed(&server, &trial).await, json!({"privileges": 1}));
    let reply = server.send(keyed(TILE, &enforced)).await;
    reply.assert_refused_by(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Privileges,
    );
    Ok(())
}

#[tokio::test]
async fn a_grant_restriction_in_shadow_mode_admits_and_reports() -> TestResult {
    let server = Server::new();
    let spec = ClientSpec::native("Reader").grants([Grant::new("roads", [Action::Read])?]);
    let trial = server.client(spec.clone().shadow([Restriction::Grants]));
    let enforced = server.client(spec);
    let (trial_token, enforced_token) = (
        server.token_of(&trial).await,
        server.token_of(&enforced).await,
    );

    server
        .send(get(ROADS).bearer(&trial_token))
        .await
        .assert_ok();
    server
        .send(put_json(ROADS).bearer(&trial_token))
        .await
        .assert_ok();
    server
        .send(get("/items/rivers/metadata").bearer(&trial_token))
        .await
        .assert_ok();
    assert_eq!(shadowed(&server, &trial).await, json!({"grants": 2}));
    let reply = server.send(put_json(ROADS).bearer(&enforced_token)).await;
    reply.assert_refused_by(StatusCode::FORBIDDEN, "insufficient_scope", Rule::Grants);
    Ok(())
}

#[tokio::test]
async fn a_quota_in_shadow_mode_admits_over_quota_requests_and_reports_them() -> TestResult {
    let server = Server::builder().quota(Some(1)).build();
    let trial = server.client(ClientSpec::javascript("Trial").shadow([Restriction::Quota]));
    let enforced = server.client(ClientSpec::javascript("Enforced"));

    for n in 1..=3 {
        let reply = server.send(keyed(REVERSE, &trial)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "request {n}: {}",
            reply.describe()
        );
        assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 0);
    }
    assert_eq!(server.used(server.acme_id()).await, 3_000);
    assert_eq!(shadowed(&server, &trial).await, json!({"quota": 2}));
    let reply = server.send(keyed(REVERSE, &enforced)).await;
    reply.assert_refused_by(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", Rule::Quota);
    Ok(())
}

#[tokio::test]
async fn every_restriction_in_shadow_mode_is_reported_on_one_request() -> TestResult {
    let server = Server::new();
    let trial = server.client(
        ClientSpec::javascript("Trial")
            .allowed_origins([MAPS])
            .allowed_ips([OFFICE_BLOCK])
            .privileges(["Elevation"])
            .shadow([
                Restriction::Origins,
                Restriction::Ips,
                Restriction::Privileges,
            ]),
    );
    server
        .send(keyed(TILE, &trial).origin(EVIL))
        .await
        .assert_ok();
    assert_eq!(
        shadowed(&server, &trial).await,
        json!({"origins": 1, "ips": 1, "privileges": 1})
    );
    Ok(())
}

#[tokio::test]
async fn a_native_client_with_ip_rules_in_shadow_mode_gets_a_token_from_elsewhere() -> TestResult {
    let server = Server::new();
    let trial = server.client(
        ClientSpec::native("Batch")
            .allowed_ips([OFFICE_BLOCK])
            .shadow([Restriction::Ips]),
    );
    // Requests come from CALLER, outside the client's block: report-only, so allowed, at
    // the token endpoint as on the API it leads to.
    let exchange = server
        .exchange(trial.client.id().as_str(), trial.credential.expose())
        .await;
    assert_eq!(
        exchange.status,
        StatusCode::OK,
        "the token endpoint enforces IP rules that run report-only: {}",
        exchange.describe()
    );
    let token = exchange.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    assert_eq!(shadowed(&server, &trial).await, json!({"ips": 1}));
    Ok(())
}
