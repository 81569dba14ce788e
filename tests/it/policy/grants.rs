//! Item grants: read and write access to items, one grant at a time.

use super::*;

#[tokio::test]
async fn a_read_grant_admits_get_but_not_put() -> TestResult {
    let server = Server::new();
    let reader =
        server.client(ClientSpec::native("Reader").grants([Grant::new("roads", [Action::Read])?]));
    let token = server.token_of(&reader).await;

    server.send(get(ROADS).bearer(&token)).await.assert_ok();
    let put = server.send(put_json(ROADS).bearer(&token)).await;
    put.assert_refused_by(StatusCode::FORBIDDEN, "insufficient_scope", Rule::Grants);
    assert_eq!(put.kind(), RejectionKind::ItemNotGranted);
    let other = server
        .send(get("/items/rivers/metadata").bearer(&token))
        .await;
    other.assert_refused_by(StatusCode::FORBIDDEN, "insufficient_scope", Rule::Grants);
    Ok(())
}

#[tokio::test]
async fn a_write_grant_admits_put_but_does_not_imply_read() -> TestResult {
    let server = Server::new();
    let writer =
        server.client(ClientSpec::native("Writer").grants([Grant::new("roads", [Action::Write])?]));
    let token = server.token_of(&writer).await;

    let put = server.send(put_json(ROADS).bearer(&token)).await;
    put.assert_ok();
    assert_eq!(put.json()["stored"], true);
    let read = server.send(get(ROADS).bearer(&token)).await;
    read.assert_refused_by(StatusCode::FORBIDDEN, "insufficient_scope", Rule::Grants);
    Ok(())
}

#[tokio::test]
async fn a_client_without_grants_is_refused_items_but_still_geocodes() -> TestResult {
    let server = Server::new();
    let token = server.token_of(&server.acme.native).await;

    let read = server.send(get(ROADS).bearer(&token)).await;
    read.assert_refused_by(StatusCode::FORBIDDEN, "insufficient_scope", Rule::Grants);
    let write = server.send(put_json(ROADS).bearer(&token)).await;
    write.assert_refused_by(StatusCode::FORBIDDEN, "insufficient_scope", Rule::Grants);
    server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    Ok(())
}

#[tokio::test]
async fn the_item_response_lists_the_grants_of_the_caller() -> TestResult {
    let server = Server::new();
    let editor = server.client(ClientSpec::native("Editor").grants([
        Grant::new("roads", [Action::Read, Action::Write])?,
        Grant::new("rivers", [Action::Read])?,
    ]));
    let token = server.token_of(&editor).await;

    let reply = server.send(get(ROADS).bearer(&token)).await;
    reply.assert_ok();
    let body = reply.json();
    assert_eq!(body["item"], "roads");
    assert_eq!(body["owner"], ACCOUNT);
    assert_eq!(
        body["granted"],
        json!([
            {"item": "roads", "actions": ["read", "write"]},
            {"item": "rivers", "actions": ["read"]},
        ])
    );
    Ok(())
}
