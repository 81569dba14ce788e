//! Expiry: an API key and a bearer token are refused from the second their client expires.

use super::*;

#[tokio::test]
async fn an_api_key_is_refused_as_expired_on_the_first_request_at_its_expiry() -> TestResult {
    let server = Server::new();
    let at = START + time::Duration::minutes(5);
    let web = server.client(ClientSpec::javascript("Campaign").expires_at(Some(at)));

    server.clock.set(at - time::Duration::seconds(1));
    server.send(keyed(TILE, &web)).await.assert_ok();
    server.clock.set(at);
    let reply = server.send(keyed(TILE, &web)).await;
    reply.assert_refused_by(StatusCode::UNAUTHORIZED, "invalid_token", Rule::Expiry);
    let description = reply.json()["error_description"].to_string();
    assert!(description.contains("expired"), "{description}");
    let challenge = reply.header(header::WWW_AUTHENTICATE).unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    Ok(())
}

#[tokio::test]
async fn a_bearer_token_is_refused_as_expired_once_its_client_expires() -> TestResult {
    let server = Server::new();
    let batch = server.client(ClientSpec::native("Batch"));
    let token = server.token_of(&batch).await;
    // The client gets an expiry after its token was minted, before the token's own.
    let at = START + time::Duration::minutes(10);
    server.update_client(batch.client.id(), |spec| spec.expires_at = Some(at));

    server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    server.clock.set(at);
    let reply = server.send(get(GEOCODE).bearer(&token)).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        reply.describe()
    );
    assert_eq!(reply.error(), "invalid_token");
    assert_eq!(reply.kind(), RejectionKind::Expired);
    let description = reply.json()["error_description"].to_string();
    assert!(description.contains("expired"), "{description}");
    Ok(())
}
