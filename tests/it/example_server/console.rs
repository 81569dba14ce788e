//! The example server mounts the account console at `/console/`, outside the auth layer:
//! its files need no credential, and the admin API it calls still does.

use super::*;

#[tokio::test]
async fn the_example_server_serves_the_console_without_a_credential() {
    let demo = demo();
    let page = send(demo.router.clone(), get("/console/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.header(header::CONTENT_TYPE),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.header(header::CONTENT_SECURITY_POLICY)
            .is_some_and(|csp| csp.starts_with("default-src 'self'; frame-ancestors 'none'"))
    );
    let module = send(demo.router.clone(), get("/console/clients.js")).await;
    assert_eq!(module.status, StatusCode::OK);
    assert_eq!(
        module.header(header::CONTENT_TYPE),
        Some("text/javascript; charset=utf-8")
    );
    let bare = send(demo.router.clone(), get("/console")).await;
    assert_eq!(bare.status, StatusCode::PERMANENT_REDIRECT);
    let missing = send(demo.router.clone(), get("/console/../account/clients")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // What the page calls is still guarded.
    let clients = send(demo.router.clone(), get("/account/clients")).await;
    assert_eq!(clients.status, StatusCode::UNAUTHORIZED);
    let config = send(demo.router, get("/console/config.json")).await;
    assert_eq!(config.json()["admin_api"], "/account");
}
