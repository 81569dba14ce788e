//! The lock-out guard counts only a client that can keep managing the account: active,
//! NativeConfidential, with `User`, the account APIs in its privileges (or none), no expiry
//! within the hour, and IP rules (if any) that admit the address of the request making the
//! change. Each way around it is refused with 409 and changes nothing.

use gis_auth::clock::Clock as _;
use time::format_description::well_known::Rfc3339;

use super::*;
use crate::harness::server::CALLER;

/// `expires_at` `seconds` from the server's now, as the admin API takes it.
fn in_seconds(server: &Server, seconds: i64) -> String {
    (server.clock.now() + time::Duration::seconds(seconds))
        .format(&Rfc3339)
        .expect("a time")
}

/// Sends `body` as a PATCH of the caller's own client, and asserts the guard refuses it and
/// the caller can still manage the account.
async fn refused(server: &Server, token: &str, body: Value) {
    let me = format!("/account/clients/{}", server.acme.native.client.id());
    let before = call(server, Method::GET, &me, token, None).await;
    let reply = call(server, Method::PATCH, &me, token, Some(body.clone())).await;
    reply.assert_json_error(StatusCode::CONFLICT, "conflict", None);
    assert!(
        reply.json()["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("lock the account out")),
        "{body}: {}",
        reply.describe()
    );
    let after = call(server, Method::GET, &me, token, None).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.describe());
    assert_eq!(after.json(), before.json(), "{body} changed the client");
}

#[tokio::test]
async fn privileges_without_the_account_apis_cannot_lock_the_account_out() {
    let server = server();
    let token = acme_token(&server).await;
    refused(&server, &token, json!({"privileges": ["Geocoder"]})).await;
    // Three of the four account APIs are not enough either.
    refused(
        &server,
        &token,
        json!({"privileges": ["Profile", "Clients", "Usage"]}),
    )
    .await;
    // All of them, with others, keep the client counted.
    let me = format!("/account/clients/{}", server.acme.native.client.id());
    let body = json!({"privileges": ["Geocoder", "Profile", "Clients", "Usage", "Quota"]});
    let reply = call(&server, Method::PATCH, &me, &token, Some(body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    let check = call(&server, Method::GET, "/account/clients", &token, None).await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.describe());
}

#[tokio::test]
async fn ip_rules_that_do_not_admit_the_changing_request_cannot_lock_the_account_out() {
    let server = server();
    let token = acme_token(&server).await;
    refused(&server, &token, json!({"allowed_ips": ["192.0.2.0/24"]})).await;
    // Rules that admit the address of the request making the change keep it counted.
    let me = format!("/account/clients/{}", server.acme.native.client.id());
    let body = json!({"allowed_ips": [format!("{CALLER}/32"), "192.0.2.0/24"]});
    let reply = call(&server, Method::PATCH, &me, &token, Some(body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    let check = call(&server, Method::GET, "/account/profile", &token, None).await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.describe());
}

#[tokio::test]
async fn an_expiry_within_the_hour_cannot_lock_the_account_out() {
    let server = server();
    let token = acme_token(&server).await;
    for seconds in [5, 60, 3_599] {
        refused(
            &server,
            &token,
            json!({"expires_at": in_seconds(&server, seconds)}),
        )
        .await;
    }
    let me = format!("/account/clients/{}", server.acme.native.client.id());
    let body = json!({"expires_at": in_seconds(&server, 3_600)});
    let reply = call(&server, Method::PATCH, &me, &token, Some(body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
}

#[tokio::test]
async fn a_second_client_counts_only_if_it_could_manage_the_account() {
    let server = server();
    let token = acme_token(&server).await;
    let me = format!("/account/clients/{}", server.acme.native.client.id());
    // Other NativeConfidential Users that could not manage the account from here.
    let now = server.clock.now();
    for spec in [
        ClientSpec::native("Geocoding only").privileges(["Geocoder"]),
        ClientSpec::native("Elsewhere").allowed_ips(["192.0.2.0/24"]),
        ClientSpec::native("Expiring").expires_at(Some(now + time::Duration::minutes(30))),
    ] {
        server.client(spec.roles(roles([Role::USER, Role::EVALUATOR])));
    }
    let reply = call(&server, Method::DELETE, &me, &token, None).await;
    reply.assert_json_error(StatusCode::CONFLICT, "conflict", None);

    // One that could: the caller may now step down.
    server.client(
        ClientSpec::native("Ops")
            .roles(roles([Role::USER]))
            .allowed_ips([format!("{CALLER}/32")])
            .privileges(["Profile", "Clients", "Usage", "Quota"])
            .expires_at(Some(now + time::Duration::days(30))),
    );
    let reply = call(&server, Method::DELETE, &me, &token, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.describe());
}
