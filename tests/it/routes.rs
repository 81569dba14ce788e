//! The route table, end to end: unknown routes, public routes, preflight requests, the
//! plugin rule for JavaScript clients, roles, and changes to an account's roles.

use crate::harness::world::{
    NON_PLUGIN_PATHS, PLUGIN_PATHS, Req, World, get, roles, stranger_key, tile, with_key,
};
use gis_auth::client::{ClientSpec, Role};
use gis_auth::policy::{Api, RouteTable};
use gis_auth::store::ManageError;
use gis_auth::{AuthLayer, ConfigError, RejectionKind};
use http::Method;
#[tokio::test]
async fn an_unknown_path_is_refused_before_any_credential_is_read() {
    let world = World::new();
    let key = world.key();
    let token = world.token();
    for req in [
        get("/admin"),
        get("/admin").header("authorization", "Bearer"),
        get(&with_key("/admin", &key)).bearer(&token),
        get(&with_key("/admin", &key)),
        get("/admin").bearer(&token),
        get(&with_key("/admin", &stranger_key())),
        get("/admin?apikey="),
    ] {
        let r = world.send(req).await;
        r.assert_access_denied();
        assert_eq!(r.kind(), RejectionKind::RouteNotAllowed);
    }
    assert_eq!(world.tokens.calls(), 0, "no token was verified");
}

#[tokio::test]
async fn a_known_path_with_an_unlisted_method_is_refused() {
    let world = World::new();
    let key = world.key();
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let r = world.send(Req::new(method.clone(), &tile(&key))).await;
        r.assert_access_denied();
        assert_eq!(r.kind(), RejectionKind::RouteNotAllowed, "{method}");
        let r = world.send(Req::new(method.clone(), "/health")).await;
        r.assert_access_denied();
    }
}

#[tokio::test]
async fn paths_must_match_a_pattern_exactly() {
    let world = World::new();
    let key = world.key();
    for path in [
        "/tiles/1/2/3.png/",
        "/tiles/1/2.png",
        "/tiles/1/2/3/4.png",
        "/tiles/1/2/3.jpg",
        "/tiles/1/2/.png",
        "/Tiles/1/2/3.png",
        "/geocode/",
        "/account/profile/extra",
        "/health/",
        "//health",
        "/",
    ] {
        let r = world.send(get(&with_key(path, &key))).await;
        r.assert_access_denied();
        assert_eq!(r.kind(), RejectionKind::RouteNotAllowed, "{path}");
    }
}

#[tokio::test]
async fn head_requests_follow_get_routes() {
    let world = World::new();
    let r = world
        .send(Req::new(Method::HEAD, &tile(&world.key())))
        .await;
    r.assert_ok();
    let r = world.send(Req::new(Method::HEAD, "/tiles/1/2/3.png")).await;
    r.assert_missing_credential();
}

#[tokio::test]
async fn an_empty_route_table_refuses_everything() {
    let world = World::new();
    let layer = AuthLayer::new(world.store.clone(), RouteTable::new());
    let r = world.send_via(&layer, get(&tile(&world.key()))).await;
    r.assert_access_denied();
    let r = world.send_via(&layer, get("/health")).await;
    r.assert_access_denied();
}

#[tokio::test]
async fn a_public_route_needs_no_credential() {
    let world = World::new();
    let r = world.send(get("/health")).await;
    r.assert_ok();
    assert!(r.principal().is_null(), "no principal on a public route");
    let r = world.send(Req::new(Method::HEAD, "/health")).await;
    r.assert_ok();
}

#[tokio::test]
async fn a_public_route_does_not_look_at_credentials() {
    let world = World::new();
    for req in [
        get("/health?apikey="),
        get(&with_key("/health", &stranger_key())),
        get("/health").header("authorization", "Bearer a b"),
        get(&with_key("/health", &world.key())).bearer("x"),
    ] {
        world.send(req).await.assert_ok();
    }
}

fn preflight(path: &str) -> Req {
    Req::new(Method::OPTIONS, path)
        .origin("https://maps.example.com")
        .header("access-control-request-method", "GET")
}

#[tokio::test]
async fn preflight_requests_pass_without_credentials_when_enabled() {
    let world = World::new();
    let layer = world.layer().allow_preflight(true);
    for path in ["/tiles/1/2/3.png", "/geocode", "/account/profile"] {
        let r = world.send_via(&layer, preflight(path)).await;
        r.assert_ok();
        assert_eq!(r.json()["method"], "OPTIONS");
        assert!(r.principal().is_null());
    }
}

#[tokio::test]
async fn preflight_requests_are_refused_when_not_enabled() {
    let world = World::new();
    let r = world.send(preflight("/tiles/1/2/3.png")).await;
    r.assert_access_denied();
    assert_eq!(r.kind(), RejectionKind::RouteNotAllowed);
}

#[tokio::test]
async fn options_without_access_control_request_method_is_not_a_preflight() {
    let world = World::new();
    let layer = world.layer().allow_preflight(true);
    let r = world
        .send_via(
            &layer,
            Req::new(Method::OPTIONS, "/tiles/1/2/3.png").origin("https://maps.example.com"),
        )
        .await;
    r.assert_access_denied();
    // And a GET with the header is an ordinary request.
    let r = world
        .send_via(
            &layer,
            get("/tiles/1/2/3.png").header("access-control-request-method", "GET"),
        )
        .await;
    r.assert_missing_credential();
}

#[tokio::test]
async fn javascript_keys_reach_every_plugin_api() {
    let world = World::new();
    for (path, api) in PLUGIN_PATHS {
        let r = world.send(get(&with_key(path, &world.key()))).await;
        r.assert_ok();
        assert_eq!(r.principal()["api"], api);
        assert_eq!(r.principal()["kind"], "JavaScript");
    }
}

#[tokio::test]
async fn javascript_keys_never_reach_non_plugin_apis_whatever_their_roles() {
    let world = World::new();
    let everything = world.add_account("bigco", [Role::USER, Role::EVALUATOR, Role::SUBSCRIBER]);
    for key in [
        world.key(),
        everything.javascript.credential.expose().to_owned(),
    ] {
        for (path, _) in NON_PLUGIN_PATHS {
            let r = world.send(get(&with_key(path, &key))).await;
            r.assert_insufficient_scope();
            assert_eq!(r.kind(), RejectionKind::NotPluginApi, "{path}");
        }
    }
}

#[tokio::test]
async fn native_clients_reach_every_api_their_roles_allow() {
    let world = World::new();
    for (path, api) in PLUGIN_PATHS.iter().chain(NON_PLUGIN_PATHS.iter()) {
        let r = world.send(get(path).bearer(&world.token())).await;
        r.assert_ok();
        assert_eq!(r.principal()["api"], *api);
        assert_eq!(r.principal()["kind"], "NativeConfidential");
    }
}

#[tokio::test]
async fn a_client_without_the_role_is_refused_with_insufficient_scope() {
    let world = World::new();
    let (_, evaluator) =
        world.native_client(ClientSpec::native("Maps only").roles(roles([Role::EVALUATOR])));
    let (_, user) =
        world.native_client(ClientSpec::native("Admin only").roles(roles([Role::USER])));
    let r = world.send(get("/account/profile").bearer(&evaluator)).await;
    r.assert_insufficient_scope();
    assert_eq!(r.kind(), RejectionKind::InsufficientRole);
    world
        .send(get("/geocode").bearer(&evaluator))
        .await
        .assert_ok();
    for (path, _) in PLUGIN_PATHS.iter().chain(&NON_PLUGIN_PATHS[..2]) {
        let r = world.send(get(path).bearer(&user)).await;
        r.assert_insufficient_scope();
        assert_eq!(r.kind(), RejectionKind::InsufficientRole, "{path}");
    }
    world
        .send(get("/account/profile").bearer(&user))
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_javascript_key_without_a_map_role_is_refused_with_insufficient_scope() {
    let world = World::new();
    let (_, key) = world.js_client(ClientSpec::javascript("User only").roles(roles([Role::USER])));
    let r = world.send(get(&tile(&key))).await;
    r.assert_insufficient_scope();
    assert_eq!(r.kind(), RejectionKind::InsufficientRole);
    let staff = world.add_account("staff", [Role::USER]);
    let r = world
        .send(get(&tile(staff.javascript.credential.expose())))
        .await;
    r.assert_insufficient_scope();
}

#[tokio::test]
async fn any_one_of_an_apis_roles_is_enough() {
    let world = World::new();
    let subscriber = world.add_account("paying", [Role::SUBSCRIBER]);
    let r = world
        .send(get(&tile(subscriber.javascript.credential.expose())))
        .await;
    r.assert_ok();
    assert_eq!(r.principal()["roles"], serde_json::json!(["Subscriber"]));
}

#[tokio::test]
async fn an_api_without_roles_admits_any_known_client() {
    let world = World::new();
    let routes = RouteTable::new()
        .route(Method::GET, "/status", Api::new("Status", []).plugin(true))
        .expect("valid");
    let layer = AuthLayer::new(world.store.clone(), routes);
    let staff = world.add_account("staff", [Role::USER]);
    let key = staff.javascript.credential.expose();
    world
        .send_via(&layer, get(&with_key("/status", key)))
        .await
        .assert_ok();
    world
        .send_via(&layer, get("/status"))
        .await
        .assert_missing_credential();
}

#[tokio::test]
async fn roles_are_an_open_set() {
    let world = World::new();
    let analyst = Role::new("Analyst").expect("a valid role");
    let routes = RouteTable::new()
        .route(
            Method::GET,
            "/insights/{*rest}",
            Api::new("Insights", [analyst.clone()]),
        )
        .expect("valid");
    let layer = AuthLayer::new(world.store.clone(), routes).token_verifier(world.tokens.clone());
    let lab = world.add_account("lab", [analyst.clone(), Role::USER]);
    let lab_token = world.tokens.mint(lab.native.client.id());
    let r = world
        .send_via(&layer, get("/insights/roads/2026").bearer(&lab_token))
        .await;
    r.assert_ok();
    assert_eq!(r.principal()["api"], "Insights");
    let r = world
        .send_via(&layer, get("/insights/roads").bearer(&world.token()))
        .await;
    r.assert_insufficient_scope();
}

#[tokio::test]
async fn the_principal_names_the_api_and_the_roles_in_force() {
    let world = World::new();
    let (id, token) =
        world.native_client(ClientSpec::native("Maps only").roles(roles([Role::EVALUATOR])));
    let r = world.send(get("/wms?SERVICE=WMS").bearer(&token)).await;
    let p = r.principal();
    assert_eq!(p["client_id"], id.as_str());
    assert_eq!(p["account_id"], "acme");
    assert_eq!(p["api"], "WMS");
    assert_eq!(p["roles"], serde_json::json!(["Evaluator"]));
}

#[tokio::test]
async fn a_token_scope_narrows_the_roles() {
    let world = World::new();
    let narrow = world
        .tokens
        .mint_scoped(&world.native_id(), Some(roles([Role::EVALUATOR])));
    let r = world.send(get("/account/profile").bearer(&narrow)).await;
    r.assert_insufficient_scope();
    let r = world.send(get("/geocode").bearer(&narrow)).await;
    assert_eq!(r.principal()["roles"], serde_json::json!(["Evaluator"]));
    // A scope cannot add a role the client lacks.
    let wide = world.tokens.mint_scoped(
        &world.native_id(),
        Some(roles([Role::SUBSCRIBER, Role::USER])),
    );
    let r = world.send(get("/geocode").bearer(&wide)).await;
    r.assert_insufficient_scope();
}

#[tokio::test]
async fn removing_a_role_from_the_account_takes_it_from_its_clients_on_the_next_request() {
    let world = World::new();
    let key = world.key();
    let token = world.token();
    world.send(get(&tile(&key))).await.assert_ok();
    world.send(get("/geocode").bearer(&token)).await.assert_ok();

    world
        .store
        .change_account(&world.acme_id(), |a| a.roles = roles([Role::USER]))
        .expect("valid");

    let r = world.send(get(&tile(&key))).await;
    r.assert_insufficient_scope();
    assert_eq!(r.kind(), RejectionKind::InsufficientRole);
    let r = world.send(get("/geocode").bearer(&token)).await;
    r.assert_insufficient_scope();
    let r = world.send(get("/account/profile").bearer(&token)).await;
    r.assert_ok();
    assert_eq!(r.principal()["roles"], serde_json::json!(["User"]));
}

#[tokio::test]
async fn a_role_given_back_to_the_account_returns_to_clients_granted_it() {
    let world = World::new();
    let key = world.key();
    world
        .store
        .change_account(&world.acme_id(), |a| a.roles = roles([Role::USER]))
        .expect("valid");
    world
        .send(get(&tile(&key)))
        .await
        .assert_insufficient_scope();
    world
        .store
        .change_account(&world.acme_id(), |a| {
            a.roles = roles([Role::USER, Role::EVALUATOR])
        })
        .expect("valid");
    world.send(get(&tile(&key))).await.assert_ok();
}

/// "An empty/unspecified list means all of the account's roles": a default client follows
/// its account from evaluation to subscription.
#[tokio::test]
async fn a_client_granted_all_roles_follows_the_accounts_new_roles() {
    let world = World::new();
    let key = world.key();
    let token = world.token();
    world
        .store
        .change_account(&world.acme_id(), |a| {
            a.roles = roles([Role::USER, Role::SUBSCRIBER])
        })
        .expect("valid");
    let r = world.send(get(&tile(&key))).await;
    r.assert_ok();
    assert_eq!(
        r.principal()["roles"],
        serde_json::json!(["Subscriber", "User"])
    );
    world.send(get("/geocode").bearer(&token)).await.assert_ok();
}

#[tokio::test]
async fn narrowing_a_clients_roles_applies_on_the_next_request() {
    let world = World::new();
    let token = world.token();
    world
        .send(get("/account/profile").bearer(&token))
        .await
        .assert_ok();
    world
        .store
        .change_client(&world.native_id(), |spec| {
            spec.roles = Some(roles([Role::EVALUATOR]))
        })
        .expect("valid");
    world
        .send(get("/account/profile").bearer(&token))
        .await
        .assert_insufficient_scope();
    world.send(get("/geocode").bearer(&token)).await.assert_ok();
    let err = world
        .store
        .change_client(&world.native_id(), |spec| {
            spec.roles = Some(roles([Role::SUBSCRIBER]))
        })
        .unwrap_err();
    assert!(
        matches!(err, ManageError::Invalid(ConfigError::RoleNotHeld { .. })),
        "{err}"
    );
    world
        .send(get("/account/profile").bearer(&token))
        .await
        .assert_insufficient_scope();
}

#[tokio::test]
async fn a_new_account_comes_with_two_unrestricted_clients_holding_all_its_roles() {
    let world = World::new();
    let made = world.add_account("fresh", [Role::USER, Role::SUBSCRIBER]);
    assert_eq!(world.store.clients_of(&made.account.id).len(), 2);
    let key = made.javascript.credential.expose();
    for req in [
        get(&tile(key)),
        get(&tile(key)).origin("https://anywhere.test"),
        get(&tile(key)).peer("198.51.100.1:1"),
        get(&tile(key)).peer("[2001:db8::1]:1"),
    ] {
        let r = world.send(req).await;
        r.assert_ok();
        assert_eq!(
            r.principal()["roles"],
            serde_json::json!(["Subscriber", "User"])
        );
    }
    let token = world.tokens.mint(made.native.client.id());
    for path in ["/account/profile", "/geocode", "/wms", "/tiles/1/2/3.png"] {
        world
            .send(get(path).bearer(&token).peer("203.0.113.1:1"))
            .await
            .assert_ok();
    }
}

#[test]
fn a_role_the_account_lacks_cannot_be_granted() {
    let world = World::new();
    let err = world
        .store
        .add_client(
            &world.acme_id(),
            ClientSpec::javascript("Greedy").roles(roles([Role::EVALUATOR, Role::SUBSCRIBER])),
        )
        .unwrap_err();
    assert!(
        matches!(err, ManageError::Invalid(ConfigError::RoleNotHeld { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("Subscriber"), "{err}");
    assert!(err.to_string().contains("acme"), "{err}");
}
