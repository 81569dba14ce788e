//! The admin API end to end, through the example server's router: every endpoint, each
//! validation error, the JavaScript-key refusal, cross-account isolation, `ETag`/`If-Match`,
//! the lock-out guard, revocation on the very next request, and the OpenAPI document
//! agreeing with what is served.

use crate::harness::app;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use gis_auth::client::{Account, AccountId, ClientSpec, Role, RoleSet};
use gis_auth::clock::{Clock, ManualClock};
use gis_auth::policy::{RouteAccess, standard_routes};
use gis_auth::store::{CreatedAccount, CreatedClient, InMemoryStore};
use gis_auth::token::{SigningKey, TokenIssuer};
use gis_auth::usage::InMemoryUsageCounter;
use http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use time::macros::datetime;
use tower::ServiceExt;

const CALLER: &str = "198.51.100.7";

struct Server {
    router: Router,
    store: Arc<InMemoryStore>,
    clock: ManualClock,
    acme: CreatedAccount,
    globex: CreatedAccount,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.describe()))
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn etag(&self) -> String {
        self.header(header::ETAG)
            .unwrap_or_else(|| panic!("no ETag: {}", self.describe()))
            .to_owned()
    }

    fn describe(&self) -> String {
        format!(
            "{} {:?} {}",
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }

    /// A JSON refusal with `status`, `error` and (when given) `field`.
    #[track_caller]
    fn refused(&self, status: StatusCode, error: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.describe());
        let body = self.json();
        assert_eq!(body["error"], error, "{}", self.describe());
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{}", self.describe());
        }
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
}

fn account(store: &InMemoryStore, id: &str, roles: &[Role]) -> CreatedAccount {
    let account = Account::new(
        AccountId::new(id).expect("an id"),
        format!("{id} maps"),
        RoleSet::from_iter(roles.iter().cloned()),
    )
    .expect("an account")
    .with_daily_quota(Some(1_000));
    store.create_account(account).expect("stored")
}

impl Server {
    fn new() -> Server {
        let clock = ManualClock::new(datetime!(2026-05-01 10:00 UTC));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let store = Arc::new(InMemoryStore::with_clock(shared.clone()));
        let issuer = TokenIssuer::new(SigningKey::hs256("k1", &[7u8; 32]).expect("a key"))
            .clock(shared.clone());
        let router = app::router(
            store.clone(),
            app::Options {
                clock: Some(shared),
                usage: Some(Arc::new(InMemoryUsageCounter::new())),
                token_issuer: Some(issuer),
                ..app::Options::default()
            },
        )
        .expect("valid routes");
        let acme = account(&store, "acme", &[Role::USER, Role::EVALUATOR]);
        let globex = account(&store, "globex", &[Role::USER, Role::SUBSCRIBER]);
        Server {
            router,
            store,
            clock,
            acme,
            globex,
        }
    }

    async fn send(&self, mut req: Request<Body>) -> Reply {
        let ip: IpAddr = CALLER.parse().expect("an address");
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let (parts, body) = res.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: axum::body::to_bytes(body, 1 << 20).await.expect("a body"),
        }
    }

    async fn token_of(&self, id: &str, secret: &str) -> Reply {
        let form = format!(
            "grant_type=client_credentials&client_id={id}&client_secret={}",
            form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
        );
        self.send(
            Request::post("/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .expect("a request"),
        )
        .await
    }

    async fn token(&self, client: &CreatedClient) -> String {
        let reply = self
            .token_of(client.client.id().as_str(), client.credential.expose())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
        reply.json()["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// `method path` with `token` and an optional JSON body.
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, token, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        headers: &[(header::HeaderName, &str)],
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            req = req.header(name, *value);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.send(req.body(body).expect("a request")).await
    }

    async fn acme_token(&self) -> String {
        self.token(&self.acme.native).await
    }
}

type TestResult = Result<(), Box<dyn std::error::Error>>;

// ---- who may call ---------------------------------------------------------------------------

#[tokio::test]
async fn a_javascript_key_is_refused_whatever_its_roles() {
    let server = Server::new();
    let key = server.acme.javascript.credential.expose();
    for path in ["/account/clients", "/account/profile", "/account/usage"] {
        let reply = server
            .send(
                Request::get(format!("{path}?apikey={key}"))
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await;
        reply.refused(StatusCode::FORBIDDEN, "insufficient_scope", None);
        assert!(!String::from_utf8_lossy(&reply.body).contains(key));
    }
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_401_but_the_openapi_document_is_public() {
    let server = Server::new();
    let reply = server
        .send(
            Request::get("/account/clients")
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
    reply.refused(StatusCode::UNAUTHORIZED, "unauthorized", None);
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
    let server = Server::new();
    let worker = server
        .store
        .create_client(
            &server.acme.account.id,
            ClientSpec::native("Batch").roles(RoleSet::from_iter([Role::EVALUATOR])),
        )
        .expect("created");
    let token = server.token(&worker).await;
    let reply = server
        .call(Method::GET, "/account/clients", &token, None)
        .await;
    reply.refused(StatusCode::FORBIDDEN, "insufficient_scope", None);
}

// ---- profile --------------------------------------------------------------------------------

#[tokio::test]
async fn the_profile_shows_the_account_and_the_caller_and_takes_contact_changes() -> TestResult {
    let server = Server::new();
    let token = server.acme_token().await;
    let reply = server
        .call(Method::GET, "/account/profile", &token, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    let body = reply.json();
    assert_eq!(body["account_id"], "acme");
    assert_eq!(body["name"], "acme maps");
    assert_eq!(body["roles"], json!(["Evaluator", "User"]));
    assert_eq!(body["client_id"], server.acme.native.client.id().as_str());
    assert_eq!(body["daily_quota"], 1_000);
    assert_eq!(body["contact_email"], Value::Null);

    let change = json!({"name": "Acme Maps Ltd", "contact_email": "ops@acme.test",
                        "contact_name": "Ana Ruiz", "contact_phone": "+34 91 123 4567"});
    let reply = server
        .call(Method::PATCH, "/account/profile", &token, Some(change))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.json()["contact_email"], "ops@acme.test");
    let stored = server
        .store
        .get_account(&server.acme.account.id)
        .expect("stored");
    assert_eq!(stored.name, "Acme Maps Ltd");
    assert_eq!(stored.contact.contact_name.as_deref(), Some("Ana Ruiz"));

    // null clears a contact field; other fields stay.
    let reply = server
        .call(
            Method::PATCH,
            "/account/profile",
            &token,
            Some(json!({"contact_phone": null})),
        )
        .await;
    assert_eq!(reply.json()["contact_phone"], Value::Null);
    assert_eq!(reply.json()["contact_email"], "ops@acme.test");
    Ok(())
}

#[tokio::test]
async fn roles_and_quota_are_not_self_service_and_bad_contact_fields_are_named() {
    let server = Server::new();
    let token = server.acme_token().await;
    for (body, field) in [
        (json!({"roles": ["User", "Subscriber"]}), "roles"),
        (json!({"daily_quota": 1_000_000}), "daily_quota"),
        (json!({"status": "active"}), "status"),
        (json!({"contact_email": "not-an-address"}), "contact_email"),
        (json!({"contact_phone": "call me"}), "contact_phone"),
        (json!({"name": ""}), "name"),
        (json!({"name": 7}), "name"),
        (json!({"website": "x"}), "website"),
    ] {
        let reply = server
            .call(
                Method::PATCH,
                "/account/profile",
                &token,
                Some(body.clone()),
            )
            .await;
        reply.refused(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
    let stored = server
        .store
        .get_account(&server.acme.account.id)
        .expect("stored");
    assert_eq!(stored.daily_quota, Some(1_000));
    assert_eq!(stored.name, "acme maps");
}

// ---- clients --------------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_client_returns_its_key_once_and_listing_never_does() -> TestResult {
    let server = Server::new();
    let token = server.acme_token().await;
    let body = json!({
        "name": "Store locator", "kind": "JavaScript", "roles": ["Evaluator"],
        "allowed_origins": ["https://*.acme.test"], "allowed_ips": ["203.0.113.0/24"],
        "expires_at": "2027-01-01T00:00:00Z", "privileges": ["WorldStreets"],
        "grants": [{"item": "roads", "actions": ["read"]}],
        "rate_limit": {"per_second": 5, "burst": 10}, "shadow": ["origins"]
    });
    let reply = server
        .call(Method::POST, "/account/clients", &token, Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.describe());
    let created = reply.json();
    let key = created["api_key"]
        .as_str()
        .expect("the key, once")
        .to_owned();
    assert!(key.starts_with("gis_apikey_"));
    let id = created["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        reply.header(header::LOCATION),
        Some(format!("/account/clients/{id}").as_str())
    );
    assert_eq!(reply.header(header::ETAG), created["etag"].as_str());
    assert_eq!(created["roles"], json!(["Evaluator"]));
    assert_eq!(
        created["grants"],
        json!([{"item": "roads", "actions": ["read"]}])
    );
    assert_eq!(created["rate_limit"], json!({"per_second": 5, "burst": 10}));
    assert_eq!(created["expires_at"], "2027-01-01T00:00:00Z");

    // The key works at once, within its privileges.
    let tile = server
        .send(
            Request::get(format!("/tiles/1/0/0.png?apikey={key}"))
                .header(header::ORIGIN, "https://maps.acme.test")
                .body(Body::empty())?,
        )
        .await;
    assert_eq!(tile.status, StatusCode::FORBIDDEN, "from the wrong address");

    let list = server
        .call(Method::GET, "/account/clients", &token, None)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&list.body).into_owned();
    assert!(!text.contains(&key), "never a credential in a list");
    assert!(!text.contains("gis_secret_") && !text.contains("api_key"));
    let clients = list.json()["clients"].as_array().expect("a list").clone();
    assert_eq!(clients.len(), 3);
    let one = server
        .call(Method::GET, &format!("/account/clients/{id}"), &token, None)
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.json().get("api_key").is_none());
    Ok(())
}

#[tokio::test]
async fn a_native_client_gets_its_id_and_secret_once_and_roles_default_to_the_accounts() {
    let server = Server::new();
    let token = server.acme_token().await;
    let reply = server
        .call(
            Method::POST,
            "/account/clients",
            &token,
            Some(json!({"name": "Backend", "kind": "NativeConfidential", "id": "backend-1"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.describe());
    let body = reply.json();
    assert_eq!(body["client_id"], "backend-1");
    assert_eq!(body["roles"], json!(["Evaluator", "User"]));
    let secret = body["client_secret"].as_str().expect("a secret");
    let token = server.token_of("backend-1", secret).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.describe());

    let again = server
        .call(
            Method::POST,
            "/account/clients",
            &server.acme_token().await,
            Some(json!({"name": "Twin", "id": "backend-1"})),
        )
        .await;
    again.refused(StatusCode::CONFLICT, "conflict", Some("id"));
}

#[tokio::test]
async fn each_invalid_client_field_is_a_400_naming_it_and_nothing_is_created() {
    let server = Server::new();
    let token = server.acme_token().await;
    let cases = [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "W", "kind": "Browser"}), "kind"),
        (json!({"name": "W", "roles": ["Subscriber"]}), "roles"),
        (json!({"name": "W", "roles": ["not a role"]}), "roles"),
        (json!({"name": "W", "status": "paused"}), "status"),
        (
            json!({"name": "W", "allowed_origins": ["https://exa mple.com"]}),
            "allowed_origins",
        ),
        (
            json!({"name": "W", "kind": "NativeConfidential", "allowed_origins": ["https://a.test"]}),
            "allowed_origins",
        ),
        (
            json!({"name": "W", "allowed_ips": ["300.1.1.1"]}),
            "allowed_ips",
        ),
        (json!({"name": "W", "expires_at": "tomorrow"}), "expires_at"),
        (json!({"name": "W", "privileges": "Geocoder"}), "privileges"),
        (
            json!({"name": "W", "grants": [{"item": "", "actions": ["read"]}]}),
            "grants",
        ),
        (
            json!({"name": "W", "grants": [{"item": "a", "actions": ["delete"]}]}),
            "grants",
        ),
        (
            json!({"name": "W", "rate_limit": {"per_second": 0, "burst": 1}}),
            "rate_limit",
        ),
        (json!({"name": "W", "shadow": ["everything"]}), "shadow"),
        (json!({"name": "W", "id": "has space"}), "id"),
        (json!({"name": "W", "api_key": "gis_apikey_x"}), "api_key"),
        (
            json!({"name": "W", "allow_missing_origin": "yes"}),
            "allow_missing_origin",
        ),
    ];
    for (body, field) in cases {
        let reply = server
            .call(Method::POST, "/account/clients", &token, Some(body.clone()))
            .await;
        reply.refused(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
    assert_eq!(server.store.clients_of(&server.acme.account.id).len(), 2);
}

#[tokio::test]
async fn malformed_bodies_are_clear_errors() {
    let server = Server::new();
    let token = server.acme_token().await;
    let send = |body: &'static str, content_type: &'static str| {
        let token = token.clone();
        let server = &server;
        async move {
            server
                .send(
                    Request::post("/account/clients")
                        .header(header::AUTHORIZATION, format!("Bearer {token}"))
                        .header(header::CONTENT_TYPE, content_type)
                        .body(Body::from(body))
                        .expect("a request"),
                )
                .await
        }
    };
    send("{", "application/json")
        .await
        .refused(StatusCode::BAD_REQUEST, "invalid_request", None);
    send("[]", "application/json")
        .await
        .refused(StatusCode::BAD_REQUEST, "invalid_request", None);
    send("name=W", "application/x-www-form-urlencoded")
        .await
        .refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request", None);
    let huge = Box::leak(format!(r#"{{"name": "{}"}}"#, "a".repeat(70_000)).into_boxed_str());
    send(huge, "application/json").await.refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
        None,
    );
    let reply = server
        .call(Method::PUT, "/account/clients", &token, None)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "PUT is not a route of the table"
    );
}

#[tokio::test]
async fn a_patch_changes_only_the_fields_given_and_takes_effect_on_the_next_request() {
    let server = Server::new();
    let token = server.acme_token().await;
    let web = &server.acme.javascript;
    let key = web.credential.expose();
    let tile = || {
        Request::get(format!("/tiles/1/0/0.png?apikey={key}"))
            .body(Body::empty())
            .expect("a request")
    };
    assert_eq!(server.send(tile()).await.status, StatusCode::OK);

    let path = format!("/account/clients/{}", web.client.id());
    let reply = server
        .call(
            Method::PATCH,
            &path,
            &token,
            Some(json!({"status": "inactive"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.json()["status"], "inactive");
    assert_eq!(reply.json()["name"], "Default JavaScript client");
    assert_eq!(server.send(tile()).await.status, StatusCode::UNAUTHORIZED);

    let reply = server
        .call(
            Method::PATCH,
            &path,
            &token,
            Some(json!({"status": "active", "name": "Web"})),
        )
        .await;
    assert_eq!(reply.json()["name"], "Web");
    assert_eq!(server.send(tile()).await.status, StatusCode::OK);

    // Role removal applies at once too.
    server
        .call(
            Method::PATCH,
            &path,
            &token,
            Some(json!({"roles": ["User"]})),
        )
        .await;
    assert_eq!(server.send(tile()).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_patch_may_send_back_read_only_fields_unchanged_but_never_change_them() {
    let server = Server::new();
    let token = server.acme_token().await;
    let path = format!("/account/clients/{}", server.acme.javascript.client.id());
    let mut doc = server.call(Method::GET, &path, &token, None).await.json();
    doc.as_object_mut().expect("an object").remove("etag");
    doc["name"] = json!("Renamed");
    let reply = server
        .call(Method::PATCH, &path, &token, Some(doc.clone()))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.json()["name"], "Renamed");
    for (field, value) in [
        ("kind", json!("NativeConfidential")),
        ("id", json!("other")),
        ("account", json!("globex")),
    ] {
        let mut changed = doc.clone();
        changed[field] = value;
        server
            .call(Method::PATCH, &path, &token, Some(changed))
            .await
            .refused(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
    server
        .call(Method::PATCH, &path, &token, Some(json!({"etag": "\"x\""})))
        .await
        .refused(StatusCode::BAD_REQUEST, "invalid_request", Some("etag"));
    server
        .call(
            Method::PATCH,
            &path,
            &token,
            Some(json!({"roles": ["Subscriber"]})),
        )
        .await
        .refused(StatusCode::BAD_REQUEST, "invalid_request", Some("roles"));
}

// ---- ETag / If-Match --------------------------------------------------------------------------

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let server = Server::new();
    let token = server.acme_token().await;
    let path = format!("/account/clients/{}", server.acme.javascript.client.id());
    let seen = server.call(Method::GET, &path, &token, None).await.etag();

    // Two editors read the same version; the first one's change applies...
    let first = server
        .call_with(
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
    let second = server
        .call_with(
            Method::PATCH,
            &path,
            &token,
            Some(json!({"name": "Second", "status": "inactive"})),
            &[(header::IF_MATCH, &seen)],
        )
        .await;
    second.refused(StatusCode::PRECONDITION_FAILED, "precondition_failed", None);
    assert_eq!(
        second.etag(),
        first.etag(),
        "the 412 gives the current ETag"
    );
    let regen = server
        .call_with(
            Method::POST,
            &format!("{path}/regenerate"),
            &token,
            None,
            &[(header::IF_MATCH, &seen)],
        )
        .await;
    regen.refused(StatusCode::PRECONDITION_FAILED, "precondition_failed", None);
    let delete = server
        .call_with(
            Method::DELETE,
            &path,
            &token,
            None,
            &[(header::IF_MATCH, &seen)],
        )
        .await;
    delete.refused(StatusCode::PRECONDITION_FAILED, "precondition_failed", None);

    let now = server.call(Method::GET, &path, &token, None).await;
    assert_eq!(now.json()["name"], "First");
    assert_eq!(now.json()["status"], "active");
    // Without If-Match a change applies as before.
    let plain = server
        .call(Method::PATCH, &path, &token, Some(json!({"name": "Third"})))
        .await;
    assert_eq!(plain.status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_edits_with_the_same_if_match_apply_exactly_once() {
    let server = Arc::new(Server::new());
    let token = server.acme_token().await;
    let path = format!("/account/clients/{}", server.acme.javascript.client.id());
    let seen = server.call(Method::GET, &path, &token, None).await.etag();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (server, token, path, seen) =
            (server.clone(), token.clone(), path.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            server
                .call_with(
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

// ---- regenerate and delete ------------------------------------------------------------------

#[tokio::test]
async fn regenerating_returns_the_new_key_once_and_the_old_one_stops_unless_given_grace() {
    let server = Server::new();
    let token = server.acme_token().await;
    let web = &server.acme.javascript;
    let old = web.credential.expose().to_owned();
    let path = format!("/account/clients/{}/regenerate", web.client.id());
    let tile = |key: String| {
        Request::get(format!("/tiles/1/0/0.png?apikey={key}"))
            .body(Body::empty())
            .expect("a request")
    };

    let reply = server
        .call(
            Method::POST,
            &path,
            &token,
            Some(json!({"grace_seconds": 60})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    let fresh = reply.json()["api_key"]
        .as_str()
        .expect("the new key")
        .to_owned();
    assert_ne!(fresh, old);
    assert_eq!(
        server.send(tile(old.clone())).await.status,
        StatusCode::OK,
        "in grace"
    );
    assert_eq!(
        server.send(tile(fresh.clone())).await.status,
        StatusCode::OK
    );
    server.clock.advance(time::Duration::seconds(61));
    assert_eq!(
        server.send(tile(old)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Without a body: no grace.
    let reply = server.call(Method::POST, &path, &token, None).await;
    let newest = reply.json()["api_key"].as_str().expect("a key").to_owned();
    assert_eq!(
        server.send(tile(fresh)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.send(tile(newest)).await.status, StatusCode::OK);

    server
        .call(
            Method::POST,
            &path,
            &token,
            Some(json!({"grace_seconds": -1})),
        )
        .await
        .refused(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("grace_seconds"),
        );
}

#[tokio::test]
async fn regenerating_a_native_secret_revokes_its_tokens_on_the_next_request() {
    let server = Server::new();
    let admin_token = server.acme_token().await;
    let worker = server
        .store
        .create_client(&server.acme.account.id, ClientSpec::native("Worker"))
        .expect("created");
    let worker_token = server.token(&worker).await;
    let geocode = |t: &str| {
        Request::get("/geocode?q=Paris")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::empty())
            .expect("a request")
    };
    assert_eq!(
        server.send(geocode(&worker_token)).await.status,
        StatusCode::OK
    );
    let reply = server
        .call(
            Method::POST,
            &format!("/account/clients/{}/regenerate", worker.client.id()),
            &admin_token,
            None,
        )
        .await;
    let body = reply.json();
    assert_eq!(body["client_id"], worker.client.id().as_str());
    assert!(
        body["client_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("gis_secret_"))
    );
    assert_eq!(
        server.send(geocode(&worker_token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn deleting_a_client_stops_its_key_and_its_tokens_at_once() {
    let server = Server::new();
    let token = server.acme_token().await;
    let worker = server
        .store
        .create_client(&server.acme.account.id, ClientSpec::native("Worker"))
        .expect("created");
    let worker_token = server.token(&worker).await;
    let path = format!("/account/clients/{}", worker.client.id());
    let reply = server.call(Method::DELETE, &path, &token, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.describe());
    assert!(reply.body.is_empty());
    let geocode = server
        .send(
            Request::get("/geocode?q=Paris")
                .header(header::AUTHORIZATION, format!("Bearer {worker_token}"))
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
    assert_eq!(geocode.status, StatusCode::UNAUTHORIZED);
    server.call(Method::GET, &path, &token, None).await.refused(
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    server
        .call(Method::DELETE, &path, &token, None)
        .await
        .refused(StatusCode::NOT_FOUND, "not_found", None);
}

// ---- lock-out guard -----------------------------------------------------------------------------

#[tokio::test]
async fn the_last_admin_client_cannot_delete_or_demote_itself() {
    let server = Server::new();
    let token = server.acme_token().await;
    let me = format!("/account/clients/{}", server.acme.native.client.id());
    for (method, body) in [
        (Method::DELETE, None),
        (Method::PATCH, Some(json!({"status": "inactive"}))),
        (Method::PATCH, Some(json!({"roles": ["Evaluator"]}))),
        (
            Method::PATCH,
            Some(json!({"expires_at": "2020-01-01T00:00:00Z"})),
        ),
    ] {
        let reply = server.call(method.clone(), &me, &token, body.clone()).await;
        reply.refused(StatusCode::CONFLICT, "conflict", None);
        assert!(
            reply.json()["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("lock the account out")),
            "{}",
            reply.describe()
        );
    }
    // Still works: nothing changed.
    let check = server
        .call(Method::GET, "/account/profile", &token, None)
        .await;
    assert_eq!(check.status, StatusCode::OK);

    // With a second admin client, the first may step down.
    let second = server
        .call(
            Method::POST,
            "/account/clients",
            &token,
            Some(json!({"name": "Ops", "kind": "NativeConfidential"})),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED);
    let reply = server
        .call(
            Method::PATCH,
            &me,
            &token,
            Some(json!({"roles": ["Evaluator"]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    // The demotion applies to the caller's own token on its next request.
    let after = server
        .call(Method::GET, "/account/profile", &token, None)
        .await;
    after.refused(StatusCode::FORBIDDEN, "insufficient_scope", None);
}

// ---- isolation ------------------------------------------------------------------------------------

#[tokio::test]
async fn one_account_cannot_read_or_change_anothers_clients_by_id() {
    let server = Server::new();
    let acme = server.acme_token().await;
    let globex_web = format!("/account/clients/{}", server.globex.javascript.client.id());
    let globex_key = server.globex.javascript.credential.expose();
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
        server.call(method, &path, &acme, body).await.refused(
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    let list = server
        .call(Method::GET, "/account/clients", &acme, None)
        .await;
    let text = String::from_utf8_lossy(&list.body);
    assert!(!text.contains(server.globex.javascript.client.id().as_str()));
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

// ---- usage and quota --------------------------------------------------------------------------------

#[tokio::test]
async fn usage_and_quota_report_the_callers_account() {
    let server = Server::new();
    let token = server.acme_token().await;
    let key = server.acme.javascript.credential.expose();
    for _ in 0..3 {
        server
            .send(
                Request::get(format!("/reverse-geocode?lat=1&lon=1&apikey={key}"))
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await;
    }
    let quota = server
        .call(Method::GET, "/account/quota", &token, None)
        .await
        .json();
    assert_eq!(
        quota,
        json!({"limit": 1_000, "used": 3.0, "remaining": 997, "reset": "2026-05-02T00:00:00Z"})
    );
    let usage = server
        .call(
            Method::GET,
            "/account/usage?from=2026-05-01&to=2026-05-01",
            &token,
            None,
        )
        .await
        .json();
    assert_eq!(usage["account_id"], "acme");
    let web = server.acme.javascript.client.id().as_str();
    let row = usage["days"]
        .as_array()
        .expect("days")
        .iter()
        .find(|r| r["client_id"] == web)
        .expect("a row for the web client");
    assert_eq!(row["requests"], 3);
    assert_eq!(row["transactions"], 3.0);
    for (query, field) in [
        ("from=May", "from"),
        ("from=2026-05-02&to=2026-05-01", "from"),
        ("from=2026-01-01&to=2026-05-01", "to"),
        ("day=1", "day"),
    ] {
        server
            .call(
                Method::GET,
                &format!("/account/usage?{query}"),
                &token,
                None,
            )
            .await
            .refused(StatusCode::BAD_REQUEST, "invalid_request", Some(field));
    }
}

// ---- the OpenAPI document ---------------------------------------------------------------------

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_served_account_routes_and_the_token_endpoint() {
    let server = Server::new();
    let spec = server
        .send(
            Request::get("/account/openapi.json")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .json();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("an item").keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut routed: Vec<(String, String)> = standard_routes()
        .expect("valid")
        .routes()
        .iter()
        .filter(|r| matches!(r.access(), RouteAccess::Api(_)))
        .map(|r| (r.method().to_string(), r.pattern().as_str().to_owned()))
        .filter(|(_, pattern)| pattern.starts_with("/account"))
        .collect();
    routed.push(("POST".to_owned(), "/oauth/token".to_owned()));
    routed.sort();
    assert_eq!(documented, routed);
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    for name in [
        "ClientView",
        "CreatedClientView",
        "NewClient",
        "ClientPatch",
        "ErrorBody",
        "TokenResponse",
    ] {
        assert!(spec["components"]["schemas"][name].is_object(), "{name}");
    }
}

#[tokio::test]
async fn the_documented_token_response_has_the_fields_the_endpoint_sends() {
    let server = Server::new();
    let spec = server
        .send(
            Request::get("/account/openapi.json")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .json();
    let documented = spec["components"]["schemas"]["TokenResponse"]["properties"]
        .as_object()
        .expect("properties")
        .clone();
    let token = server
        .token_of(
            server.acme.native.client.id().as_str(),
            server.acme.native.credential.expose(),
        )
        .await
        .json();
    for key in token.as_object().expect("an object").keys() {
        assert!(documented.contains_key(key), "{key} is not documented");
    }
}
