//! Optimistic concurrency: `ETag` on every client, `If-Match` on every change.

use std::sync::Arc;

use super::*;

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let server = server();
    let token = acme_token(&server).await;
    let path = format!("/account/clients/{}", server.acme.javascript.client.id());
    let seen = call(&server, Method::GET, &path, &token, None).await.etag();

    // Two editors read the same version; the first one's change applies...
    let first = call_with(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"name": "First"})),
        &[(header::IF_MATCH, &seen)],
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.describe());
    assert_ne!(first.etag(), seen);

    // ...the second one's is refused whole, for a change, a regeneration or a deletion.
    let second = call_with(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"name": "Second", "status": "inactive"})),
        &[(header::IF_MATCH, &seen)],
    )
    .await;
    second.assert_json_error(StatusCode::PRECONDITION_FAILED, "precondition_failed", None);
    assert_eq!(
        second.etag(),
        first.etag(),
        "the 412 gives the current ETag"
    );
    let regen = call_with(
        &server,
        Method::POST,
        &format!("{path}/regenerate"),
        &token,
        None,
        &[(header::IF_MATCH, &seen)],
    )
    .await;
    regen.assert_json_error(StatusCode::PRECONDITION_FAILED, "precondition_failed", None);
    let delete = call_with(
        &server,
        Method::DELETE,
        &path,
        &token,
        None,
        &[(header::IF_MATCH, &seen)],
    )
    .await;
    delete.assert_json_error(StatusCode::PRECONDITION_FAILED, "precondition_failed", None);

    let now = call(&server, Method::GET, &path, &token, None).await;
    assert_eq!(now.json()["name"], "First");
    assert_eq!(now.json()["status"], "active");
    // Without If-Match a change applies as before.
    let plain = call(
        &server,
        Method::PATCH,
        &path,
        &token,
        Some(json!({"name": "Third"})),
    )
    .await;
    assert_eq!(plain.status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_edits_with_the_same_if_match_apply_exactly_once() {
    let server = Arc::new(server());
    let token = acme_token(&server).await;
    let path = format!("/account/clients/{}", server.acme.javascript.client.id());
    let seen = call(&server, Method::GET, &path, &token, None).await.etag();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (server, token, path, seen) =
            (server.clone(), token.clone(), path.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            call_with(
                &server,
                Method::PATCH,
                &path,
                &token,
                Some(json!({"name": format!("Editor {i}")})),
                &[(header::IF_MATCH, &seen)],
            )
            .await
            .status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("no panic") {
            StatusCode::OK => ok += 1,
            StatusCode::PRECONDITION_FAILED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1);
}
