//! The clients file: every field loads, each restriction holds, and a bad file is refused
//! naming the client and the field.

use axum::body::Body;

use super::*;

/// A clients file using every field; `web_key` is a plaintext API key, `tablet_digest` and
/// `batch_digest` are `sha256:` digests.
fn full_file(web_key: &str, tablet_digest: &str, batch_digest: &str) -> String {
    format!(
        r#"{{
  "accounts": [
    {{"id": "acme", "name": "Acme Maps", "roles": ["User", "Evaluator", "Subscriber"],
      "status": "active", "daily_quota": 5000}},
    {{"id": "dormant", "name": "Dormant", "roles": ["Evaluator"], "status": "inactive",
      "daily_quota": null}}
  ],
  "clients": [
    {{"id": "web", "account": "acme", "name": "Store locator", "kind": "JavaScript",
      "roles": ["Subscriber"], "status": "active",
      "allowed_origins": ["https://*.acme.test"], "allow_missing_origin": false,
      "allowed_ips": ["198.51.100.0/24"], "expires_at": "2030-01-01T00:00:00Z",
      "api_key": "{web_key}"}},
    {{"id": "tablet", "account": "acme", "kind": "JavaScript", "api_key": "{tablet_digest}"}},
    {{"id": "kiosk", "account": "acme", "kind": "javascript", "roles": ["User"]}},
    {{"id": "batch", "account": "acme", "name": "Batch geocoder", "kind": "NativeConfidential",
      "allowed_ips": ["198.51.100.7"], "client_secret": "{batch_digest}"}},
    {{"id": "server", "account": "acme", "kind": "NativeConfidential", "roles": ["Evaluator"]}},
    {{"id": "paused", "account": "acme", "kind": "JavaScript", "status": "inactive"}},
    {{"id": "dormant-web", "account": "dormant", "kind": "JavaScript"}}
  ]
}}"#
    )
}

struct FullFile {
    seeded: app::Seeded,
    router: Router,
    clock: ManualClock,
    web_key: PlainCredential,
    tablet_key: PlainCredential,
    batch_secret: PlainCredential,
}

fn load_full_file() -> FullFile {
    let web_key = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let tablet_key = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let batch_secret = PlainCredential::generate(CredentialKind::ClientSecret).expect("random");
    let text = full_file(
        web_key.expose(),
        &tablet_key.digest().to_prefixed_hex(),
        &batch_secret.digest().to_prefixed_hex(),
    );
    let seeded = app::load_clients_json(&text).expect("a valid file");
    let clock = ManualClock::new(datetime!(2029-06-01 00:00 UTC));
    let (batch, server) = (id("batch"), id("server"));
    let router = router_with_tokens(
        seeded.store.clone(),
        &[&batch, &server],
        app::Options {
            clock: Some(Arc::new(clock.clone())),
            ..app::Options::default()
        },
    );
    FullFile {
        seeded,
        router,
        clock,
        web_key,
        tablet_key,
        batch_secret,
    }
}

pub(super) fn id(s: &str) -> ClientId {
    ClientId::new(s).expect("client id")
}

pub(super) fn generated_of(generated: &[GeneratedCredential], client: &str) -> String {
    generated
        .iter()
        .find(|g| g.client.as_str() == client)
        .map(|g| g.credential.expose().to_owned())
        .unwrap_or_else(|| panic!("no credential generated for {client}"))
}

#[tokio::test]
async fn a_file_with_every_field_loads_and_reports_only_the_credentials_it_generated() {
    let file = load_full_file();
    let generated: Vec<(&str, ClientKind)> = file
        .seeded
        .generated
        .iter()
        .map(|g| (g.client.as_str(), g.kind))
        .collect();
    assert_eq!(
        generated,
        [
            ("kiosk", ClientKind::JavaScript),
            ("server", ClientKind::NativeConfidential),
            ("paused", ClientKind::JavaScript),
            ("dormant-web", ClientKind::JavaScript),
        ]
    );
    for g in &file.seeded.generated {
        let line = app::credential_line(g).expect("serialisable");
        assert!(!line.contains(file.web_key.expose()));
    }
    let store = &file.seeded.store;
    let acme = store
        .account_now(&AccountId::new("acme").expect("id"))
        .expect("acme");
    assert_eq!(acme.plan.daily_quota, Some(5000));
    assert_eq!(acme.name, "Acme Maps");
    let batch = store.client(&id("batch")).expect("batch");
    assert_eq!(batch.name(), "Batch geocoder");
    assert_eq!(batch.credentials().current(), &file.batch_secret.digest());
    assert_eq!(
        batch.roles().len(),
        3,
        "roles absent means all of the account's"
    );
    let server = store.client(&id("server")).expect("server");
    assert_eq!(server.name(), "server", "the name defaults to the id");
    let web = store.client(&id("web")).expect("web");
    assert_eq!(web.expires_at(), Some(datetime!(2030-01-01 00:00 UTC)));
    assert!(!web.allows_missing_origin());
}

#[tokio::test]
async fn a_plaintext_key_from_the_file_is_held_to_its_origin_ip_and_expiry() {
    let file = load_full_file();
    let uri = format!("/tiles/4/3/5.png?apikey={}", file.web_key.expose());
    let allowed = || {
        let mut req = from_peer(get(&uri), "198.51.100.20");
        req.headers_mut().insert(
            header::ORIGIN,
            "https://maps.acme.test".parse().expect("value"),
        );
        req
    };
    let reply = send(file.router.clone(), allowed()).await;
    assert_png(&reply);
    assert!(
        reply
            .header(header::VARY)
            .unwrap_or_default()
            .split(',')
            .any(|v| v.trim().eq_ignore_ascii_case("origin")),
        "the response varies on Origin"
    );

    let mut req = from_peer(get(&uri), "198.51.100.20");
    req.headers_mut().insert(
        header::ORIGIN,
        "https://acme.test.evil.test".parse().expect("value"),
    );
    send(file.router.clone(), req)
        .await
        .assert_refused(403, "access_denied");
    let req = from_peer(get(&uri), "198.51.100.20");
    send(file.router.clone(), req)
        .await
        .assert_refused(403, "access_denied");
    let mut req = from_peer(get(&uri), "203.0.113.20");
    req.headers_mut().insert(
        header::ORIGIN,
        "https://maps.acme.test".parse().expect("value"),
    );
    send(file.router.clone(), req)
        .await
        .assert_refused(403, "access_denied");

    file.clock.set(datetime!(2030-01-01 00:00 UTC));
    let reply = send(file.router.clone(), allowed()).await;
    reply.assert_refused(401, "invalid_token");
    assert_eq!(
        reply.rejection().map(Rejection::kind),
        Some(RejectionKind::Expired)
    );
}

#[tokio::test]
async fn a_digest_from_the_file_accepts_its_plaintext() {
    let file = load_full_file();
    let uri = format!("/imagery/0/0/0.png?apikey={}", file.tablet_key.expose());
    assert_png(&send(file.router.clone(), get(&uri)).await);
}

#[tokio::test]
async fn roles_in_the_file_bound_what_each_client_reaches() {
    let file = load_full_file();
    let kiosk = generated_of(&file.seeded.generated, "kiosk");
    let reply = send(
        file.router.clone(),
        get(&format!("/tiles/0/0/0.png?apikey={kiosk}")),
    )
    .await;
    reply.assert_refused(403, "insufficient_scope");

    // "batch" has no roles in the file, so it holds all three of its account's.
    let batch = token_of(&id("batch"));
    let reply = send(
        file.router.clone(),
        from_peer(bearer("/account/profile", &batch), "198.51.100.7"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json()["roles"],
        serde_json::json!(["Evaluator", "Subscriber", "User"])
    );
    let reply = send(
        file.router.clone(),
        from_peer(bearer("/account/profile", &batch), "198.51.100.8"),
    )
    .await;
    reply.assert_refused(403, "access_denied");

    let server = token_of(&id("server"));
    let reply = send(file.router.clone(), bearer("/geocode?q=paris", &server)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send(file.router.clone(), bearer("/account/profile", &server)).await;
    reply.assert_refused(403, "insufficient_scope");
}

#[tokio::test]
async fn inactive_clients_and_accounts_from_the_file_are_refused() {
    let file = load_full_file();
    for client in ["paused", "dormant-web"] {
        let key = generated_of(&file.seeded.generated, client);
        let reply = send(
            file.router.clone(),
            get(&format!("/tiles/0/0/0.png?apikey={key}")),
        )
        .await;
        reply.assert_refused(401, "invalid_token");
        assert_eq!(
            reply.rejection().map(Rejection::kind),
            Some(RejectionKind::Inactive)
        );
    }
}

fn example_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gis_server/clients.example.json")
}

#[tokio::test]
async fn the_example_clients_file_loads_and_serves() {
    let seeded = app::load_clients_file(&example_file()).expect("the example file is valid");
    let generated: Vec<&str> = seeded.generated.iter().map(|g| g.client.as_str()).collect();
    assert_eq!(generated, ["acme-preview", "acme-backend", "trial-web"]);
    assert_eq!(seeded.store.accounts().len(), 2);
    assert_eq!(seeded.store.client_count(), 5);

    let text = std::fs::read_to_string(example_file()).expect("readable");
    let file: Value = serde_json::from_str(&text).expect("JSON");
    let web_key = file["clients"]
        .as_array()
        .and_then(|clients| clients.iter().find(|c| c["id"] == "acme-web"))
        .and_then(|c| c["api_key"].as_str())
        .expect("acme-web has a plaintext key");
    let router = app::router(seeded.store.clone(), app::Options::default()).expect("router");
    let uri = format!("/tiles/1/1/1.png?apikey={web_key}");
    let req = Request::get(&uri)
        .header(header::ORIGIN, "http://localhost:5173")
        .body(Body::empty())
        .expect("request");
    assert_png(&send(router.clone(), req).await);
    let reply = send(router.clone(), get(&uri)).await;
    reply.assert_refused(403, "access_denied");
    assert_eq!(reply.header(header::VARY), Some("Origin"));
}

#[test]
fn bad_files_are_refused_naming_the_client_and_field() {
    let key = PlainCredential::generate(CredentialKind::ApiKey).expect("random");
    let account = r#"{"id": "acme", "name": "Acme", "roles": ["User", "Evaluator"]}"#;
    let with = |clients: &str| format!(r#"{{"accounts": [{account}], "clients": [{clients}]}}"#);
    let k = key.expose();
    let cases = [
        (
            with(r#"{"id": "w", "account": "acme", "kind": "Browser"}"#),
            "client `w`, field `kind`",
        ),
        (
            with(r#"{"id": "w", "account": "nope", "kind": "JavaScript"}"#),
            "client `w`, field `account`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "roles": ["Subscriber"]}"#,
            ),
            "client `w`, field `roles`",
        ),
        (
            // Never "all of the account's roles": that is `roles` left out.
            with(r#"{"id": "w", "account": "acme", "kind": "JavaScript", "roles": []}"#),
            "client `w`, field `roles`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "allowed_origins": ["https://*.com"]}"#,
            ),
            "client `w`, field `allowed_origins`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "NativeConfidential", "allowed_origins": ["acme.test"]}"#,
            ),
            "client `w`, field `allowed_origins`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "allowed_ips": ["10.0.0.0/33"]}"#,
            ),
            "client `w`, field `allowed_ips`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "gis_apikey_typo"}"#,
            ),
            "client `w`, field `api_key`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "sha256:abc"}"#,
            ),
            "client `w`, field `api_key`",
        ),
        (
            with(&format!(
                r#"{{"id": "w", "account": "acme", "kind": "NativeConfidential", "client_secret": "{k}"}}"#
            )),
            "client `w`, field `client_secret`",
        ),
        (
            with(&format!(
                r#"{{"id": "w", "account": "acme", "kind": "JavaScript", "client_secret": "{k}"}}"#
            )),
            "client `w`, field `client_secret`",
        ),
        (
            with(&format!(
                r#"{{"id": "a", "account": "acme", "kind": "JavaScript", "api_key": "{k}"}},
                   {{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "{k}"}}"#
            )),
            "client `w`, field `api_key`",
        ),
        (
            with(
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "expires_at": "next year"}"#,
            ),
            "client `w`, field `expires_at`",
        ),
        (
            with(&format!(
                r#"{{"id": "w", "account": "acme", "kind": "JavaScript", "allowed_origins": ["https://{}.test"]}}"#,
                vec!["a".repeat(60); 4].join(".")
            )),
            "client `w`, field `allowed_origins`",
        ),
        (
            with(r#"{"id": "w", "account": "acme", "kind": "JavaScript", "status": "paused"}"#),
            "client `w`, field `status`",
        ),
        (
            with(r#"{"id": "w", "account": "acme", "kind": "JavaScript", "colour": "red"}"#),
            "client `w`, field `colour`",
        ),
        (
            with(r#"{"account": "acme", "kind": "JavaScript"}"#),
            "client `#1`, field `id`",
        ),
        (
            r#"{"accounts": [{"id": "acme", "name": "Acme"}]}"#.to_owned(),
            "account `acme`, field `roles`",
        ),
        ("{\"accounts\": [".to_owned(), "not a clients file"),
        (r#"{"users": []}"#.to_owned(), "not a clients file"),
    ];
    for (text, expected) in cases {
        let err = app::load_clients_json(&text).expect_err(expected);
        let message = err.to_string();
        assert!(message.starts_with(expected), "{message} / {expected}");
        assert!(!message.contains(k), "a credential leaked into {message}");
    }
}

#[test]
fn a_bad_clients_file_on_disk_is_refused_with_its_path() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("example_server_bad_clients.json");
    std::fs::write(
        &path,
        r#"{"accounts": [], "clients": [{"id": "w", "account": "acme", "kind": "JavaScript"}]}"#,
    )
    .expect("writable");
    let err = app::load_clients_file(&path).expect_err("unknown account");
    assert_eq!(
        err.to_string(),
        format!(
            "clients file `{}`: client `w`, field `account`: unknown account `acme`",
            path.display()
        )
    );

    let missing = dir.join("example_server_no_such_file.json");
    let err = app::load_clients_file(&missing).expect_err("missing file");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read clients file `{}`", missing.display())),
        "{err}"
    );
}
