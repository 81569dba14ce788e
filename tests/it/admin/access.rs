//! Who may call the admin API: never a JavaScript key, never without a token, and never
//! into another account.

use gis_auth::client::RoleSet;

use super::*;

#[tokio::test]
async fn a_javascript_key_is_refused_whatever_its_roles() {
    let server = server();
    let key = server.acme.javascript.credential.expose();
    for path in ["/account/clients", "/account/profile", "/account/usage"] {
        let reply = server
            .send(
                Request::get(format!("{path}?apikey={key}"))
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await;
        reply.assert_json_error(StatusCode::FORBIDDEN, "insufficient_scope", None);
        assert!(!String::from_utf8_lossy(&reply.body).contains(key));
    }
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_401_but_the_openapi_document_is_public() {
    let server = server();
    let reply = server
        .send(
            Request::get("/account/clients")
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
    reply.assert_json_error(StatusCode::UNAUTHORIZED, "unauthorized", None);
    let spec = server
        .send(
            Request::get("/account/openapi.json")
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
    assert_eq!(spec.status, StatusCode::OK);
    assert_eq!(spec.json()["openapi"], "3.1.0");
}

#[tokio::test]
async fn a_client_without_the_user_role_is_refused() {
    let server = server();
    let worker = server
        .store
        .add_client(
            &server.acme.account.id,
            ClientSpec::native("Batch").roles(RoleSet::from_iter([Role::EVALUATOR])),
        )
        .expect("created");
    let token = server.token_of(&worker).await;
    let reply = call(&server, Method::GET, "/account/clients", &token, None).await;
    reply.assert_json_error(StatusCode::FORBIDDEN, "insufficient_scope", None);
}

#[tokio::test]
async fn one_account_cannot_read_or_change_anothers_clients_by_id() {
    let server = server();
    let globex = server.account("globex", roles([Role::USER, Role::SUBSCRIBER]), Some(1_000));
    let acme = acme_token(&server).await;
    let globex_web = format!("/account/clients/{}", globex.javascript.client.id());
    let globex_key = globex.javascript.credential.expose();
    for (method, path, body) in [
        (Method::GET, globex_web.clone(), None),
        (
            Method::PATCH,
            globex_web.clone(),
            Some(json!({"status": "inactive"})),
        ),
        (Method::DELETE, globex_web.clone(), None),
        (Method::POST, format!("{globex_web}/regenerate"), None),
    ] {
        call(&server, method, &path, &acme, body)
            .await
            .assert_json_error(StatusCode::NOT_FOUND, "not_found", None);
    }
    let list = call(&server, Method::GET, "/account/clients", &acme, None).await;
    let text = String::from_utf8_lossy(&list.body);
    assert!(!text.contains(globex.javascript.client.id().as_str()));
    // Globex's key still works: nothing changed.
    let tile = server
        .send(
            Request::get(format!("/tiles/1/0/0.png?apikey={globex_key}"))
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
    assert_eq!(tile.status, StatusCode::OK);
}
