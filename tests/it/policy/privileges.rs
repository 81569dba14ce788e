//! Privileges: a client limited to some APIs reaches those and no others, and a privilege
//! narrows a bearer token without ever widening the roles.

use super::*;

#[tokio::test]
async fn a_client_limited_to_elevation_reaches_elevation_but_not_tiles() -> TestResult {
    let server = Server::new();
    let heights = server.client(ClientSpec::javascript("Heights").privileges(["Elevation"]));

    server.send(keyed(ELEVATION, &heights)).await.assert_ok();
    let tiles = server.send(keyed(TILE, &heights)).await;
    tiles.assert_refused_by(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Privileges,
    );
    assert_eq!(tiles.kind(), RejectionKind::PrivilegeMissing);
    let reverse = server.send(keyed(REVERSE, &heights)).await;
    reverse.assert_refused_by(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Privileges,
    );
    Ok(())
}

#[tokio::test]
async fn a_client_without_privileges_reaches_whatever_its_roles_allow() -> TestResult {
    let server = Server::new();
    for path in [TILE, ELEVATION, REVERSE, "/imagery/2/1/3.png"] {
        server
            .send(keyed(path, &server.acme.javascript))
            .await
            .assert_ok();
    }
    let token = server.token_of(&server.acme.native).await;
    for path in [
        GEOCODE,
        REVERSE,
        "/wms?SERVICE=WMS&REQUEST=GetCapabilities",
        PROFILE,
    ] {
        server.send(get(path).bearer(&token)).await.assert_ok();
    }
    Ok(())
}

#[tokio::test]
async fn privileges_narrow_bearer_tokens_but_never_widen_the_roles() -> TestResult {
    let server = Server::new();
    let viewer = server.account("viewer", roles([Role::EVALUATOR]), None);
    let batch = server.client_of(
        &viewer,
        ClientSpec::native("Batch").privileges(["Geocoder", "Profile"]),
    );
    let token = server.token_of(&batch).await;

    server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    let wms = server
        .send(get("/wms?SERVICE=WMS&REQUEST=GetCapabilities").bearer(&token))
        .await;
    wms.assert_refused_by(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Privileges,
    );
    // Profile is listed, but the account does not hold the User role it needs.
    let profile = server.send(get(PROFILE).bearer(&token)).await;
    profile.assert_refused_by(StatusCode::FORBIDDEN, "insufficient_scope", Rule::Roles);
    Ok(())
}

#[tokio::test]
async fn lifting_a_privilege_limit_applies_on_the_next_request() -> TestResult {
    let server = Server::new();
    let heights = server.client(ClientSpec::javascript("Heights").privileges(["Elevation"]));
    assert_eq!(
        server.send(keyed(TILE, &heights)).await.status,
        StatusCode::FORBIDDEN
    );
    server.update_client(heights.client.id(), |spec| spec.privileges = None);
    server.send(keyed(TILE, &heights)).await.assert_ok();
    Ok(())
}
