//! Reports: lint, explain, usage without a usage source, and a credential the file did not
//! give.

use super::*;

#[test]
fn lint_warns_about_every_client_of_the_store_and_strict_fails_on_warnings() {
    let (store, _) = Store::with_acme();
    create_web(&store, &["--allowed-origins", "https://*.acme.test"]);
    let report = store.json(&["lint"]);
    assert_eq!(report["clients_checked"], 3);
    let warnings = report["warnings"].as_array().expect("warnings");
    let traps: Vec<(&str, &str)> = warnings
        .iter()
        .map(|w| (str_of(w, "client"), str_of(w, "trap")))
        .collect();
    assert!(
        traps.contains(&("web", "wildcard-without-apex")),
        "{traps:?}"
    );
    assert!(
        traps
            .iter()
            .any(|(c, t)| *c != "web" && *t == "empty-origins-unrestricted"),
        "the default JavaScript client has no origins: {traps:?}"
    );
    let web = warnings
        .iter()
        .find(|w| w["client"] == "web")
        .expect("web's warning");
    assert_eq!(web["field"], "allowed_origins");
    assert_eq!(web["value"], "https://*.acme.test");

    let table = store.ok(&["lint"]);
    assert!(table.starts_with("CLIENT"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("web ")
            && l.contains(" wildcard-without-apex ")
            && l.ends_with("allowed_origins `https://*.acme.test`: a wildcard matches subdomains only, never `acme.test` itself; if the site is also served from the bare domain, add `https://acme.test`")),
        "{table}"
    );

    let err = store.fails(1, &["lint", "--strict"]);
    assert!(err.contains("warnings in 3 clients"), "{err}");

    // IP rules behind a proxy with no trusted proxies: only with what is known of it.
    store.ok(&["client", "update", "web", "--allowed-ips", "203.0.113.9"]);
    let ip_trap = |args: &[&str]| {
        let mut all = vec!["lint", "--account", "acme"];
        all.extend_from_slice(args);
        store.json(&all)["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w["trap"] == "ip-rules-without-trusted-proxies")
    };
    assert!(!ip_trap(&[]));
    assert!(ip_trap(&["--forwarded-headers"]));
    assert!(!ip_trap(&["--forwarded-headers", "--trusted-proxies"]));

    let clean = Store::new();
    clean.ok(&["account", "create", "srv", "--roles", "Evaluator"]);
    let ids = clean.json(&["client", "list"]);
    for c in ids["clients"].as_array().expect("clients") {
        if c["kind"] == "JavaScript" {
            clean.ok(&["client", "delete", str_of(c, "id")]);
        }
    }
    assert_eq!(clean.ok(&["lint", "--strict"]), "no warnings in 1 client\n");
}

#[test]
fn explain_prints_the_decision_and_the_rule_that_made_it() {
    let (store, created) = Store::with_acme();
    create_web(
        &store,
        &[
            "--allowed-origins",
            "https://*.acme.test",
            "--allowed-ips",
            "203.0.113.0/24",
            "--expires-at",
            "2030-01-01T00:00:00Z",
        ],
    );
    let native = str_of(&created["clients"][1], "id").to_owned();
    let explain = |extra: &[&str]| {
        let mut args = vec!["explain", "--at", "2029-06-01T12:00:00Z"];
        args.extend_from_slice(extra);
        store.json(&args)
    };
    let tile = ["--client", "web", "--path", "/tiles/1/2/3.png"];
    let from = |origin: &'static str, ip: &'static str| {
        let mut args = tile.to_vec();
        args.extend_from_slice(&["--origin", origin, "--ip", ip]);
        args
    };

    let allowed = explain(&from("https://maps.acme.test", "203.0.113.9"));
    assert_eq!(allowed["allowed"], true);
    assert_eq!(allowed["rule"], Value::Null);
    assert_eq!(allowed["api"], "WorldStreets");
    assert_eq!(allowed["roles"], serde_json::json!(["Evaluator", "User"]));

    let origin = explain(&from("https://evil.test", "203.0.113.9"));
    assert_eq!(origin["allowed"], false);
    assert_eq!(origin["rule"], "origins");
    assert_eq!(origin["status"], 403);
    assert_eq!(origin["error"], "access_denied");

    let ip = explain(&from("https://maps.acme.test", "198.51.100.1"));
    assert_eq!(ip["rule"], "ips");
    assert!(str_of(&ip, "reason").contains("198.51.100.1"));

    let mut referer = tile.to_vec();
    referer.extend_from_slice(&[
        "--referer",
        "https://maps.acme.test/page",
        "--ip",
        "203.0.113.9",
    ]);
    assert_eq!(explain(&referer)["allowed"], true);

    let kind = explain(&[
        "--client",
        "web",
        "--path",
        "/geocode?q=paris",
        "--origin",
        "https://a.acme.test",
        "--ip",
        "203.0.113.9",
    ]);
    assert_eq!(kind["rule"], "kind");
    assert_eq!(kind["request"]["query"], "q=paris");

    let mut later = vec!["explain", "--at", "2031-01-01T00:00:00Z"];
    later.extend_from_slice(&from("https://maps.acme.test", "203.0.113.9"));
    let expired = store.json(&later);
    assert_eq!(expired["rule"], "expiry");
    assert_eq!(expired["status"], 401);

    let geocode = explain(&[
        "--client", &native, "--path", "/geocode", "--query", "q=rome",
    ]);
    assert_eq!(geocode["allowed"], true);
    let scoped = explain(&[
        "--client",
        &native,
        "--path",
        "/account/profile",
        "--scope",
        "Evaluator",
    ]);
    assert_eq!(scoped["rule"], "roles");
    let nowhere = explain(&[
        "--client",
        &native,
        "--method",
        "delete",
        "--path",
        "/tiles/1/2/3.png",
    ]);
    assert_eq!(nowhere["rule"], "route");
    let health = explain(&["--client", &native, "--path", "/health"]);
    assert_eq!(health["allowed"], true);
    assert_eq!(health["reason"], "the route is public");

    store.ok(&["client", "deactivate", native.as_str(), "--force"]);
    let table = store.ok(&["explain", "--client", &native, "--path", "/geocode"]);
    for line in [
        "decision     deny",
        "rule         status",
        "response     401 invalid_token",
        "reason       the client is inactive",
        "api          Geocoder",
    ] {
        assert!(table.contains(line), "{line} in\n{table}");
    }
}

#[test]
fn usage_without_a_usage_source_reports_the_quota_and_where_the_counts_are() {
    let (store, _) = Store::with_acme();
    let report = store.json(&[
        "usage",
        "--account",
        "acme",
        "--from",
        "2026-06-01",
        "--to",
        "2026-06-07",
    ]);
    assert_eq!(report["account_id"], "acme");
    assert_eq!(report["daily_quota"], 1000);
    assert_eq!(report["from"], "2026-06-01");
    assert_eq!(report["to"], "2026-06-07");
    assert_eq!(report["source"], Value::Null);
    assert_eq!(report["days"], Value::Null);

    let out = store.run(&["usage", "--account", "acme"]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("daily_quota  1000 transactions"), "{table}");
    assert!(table.contains("used_today   not known here"), "{table}");
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("GET /account/usage"), "{note}");

    if cfg!(not(feature = "redis")) {
        let err = store.fails(
            1,
            &[
                "usage",
                "--account",
                "acme",
                "--redis",
                "redis://:pw@localhost",
            ],
        );
        assert!(err.contains("`redis` feature"), "{err}");
        assert!(!err.contains(":pw@"), "{err}");
    }
}

#[test]
fn without_shared_counters_last_use_is_not_known_here_and_recommend_says_what_it_needs() {
    let (store, created) = Store::with_acme();
    let web = created["clients"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let show = store.json(&["client", "show", &web]);
    assert_eq!(show["last_used_at"], Value::Null);
    let table = store.ok(&["client", "show", &web]);
    assert!(
        table.contains("last_used") && table.contains("not known here"),
        "{table}"
    );
    let err = store.fails(1, &["recommend", "--client", &web]);
    assert!(err.contains("--redis"), "{err}");
    let err = store.fails(2, &["recommend", "--client", &web, "--days", "0"]);
    assert!(err.contains("--days"), "{err}");
}

#[test]
fn a_client_the_file_gave_no_credential_gets_one_shown_once() {
    let store = Store::new();
    fs::write(
        &store.path,
        r#"{"accounts": [{"id": "acme", "roles": ["Evaluator"]}],
            "clients": [{"id": "web", "account": "acme", "kind": "JavaScript"}]}"#,
    )
    .expect("written");
    let first = store.run(&["client", "list", "--json"]);
    assert_eq!(first.status.code(), Some(0));
    let note = String::from_utf8_lossy(&first.stderr);
    assert!(note.contains("client `web` had no credential"), "{note}");
    let start = note.find("gis_apikey_").expect("the key");
    let key: String = note[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    serde_json::from_slice::<Value>(&first.stdout).expect("stdout is still one document");
    let found = block(store.file_store().resolve_key(&KeyDigest::of(&key))).expect("answered");
    assert!(found.is_some(), "the key shown is the one stored");

    let second = store.run(&["client", "list"]);
    assert!(!String::from_utf8_lossy(&second.stderr).contains("gis_apikey_"));
}

#[test]
fn lint_warns_about_an_account_whose_clients_hold_grants_without_an_item_ceiling() {
    let (store, _) = Store::with_acme();
    create_web(&store, &["--grant", "roads=read"]);
    let ceiling_warnings = |store: &Store| -> Vec<Value> {
        store.json(&["lint"])["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .filter(|w| w["trap"] == "grants-without-item-ceiling")
            .cloned()
            .collect()
    };
    let found = ceiling_warnings(&store);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["account"], "acme");
    assert_eq!(
        found[0]["client"],
        Value::Null,
        "about the account, not a client"
    );
    assert_eq!(found[0]["field"], "items");
    let table = store.ok(&["lint"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("-  ") && l.contains("grants-without-item-ceiling")),
        "{table}"
    );
    store.ok(&["account", "update", "acme", "--items", "roads"]);
    assert!(ceiling_warnings(&store).is_empty());
}

#[test]
fn audit_lists_the_operators_changes_for_any_account_or_one() {
    let (store, _) = Store::with_acme();
    store.json(&["account", "create", "globex", "--roles", "User"]);
    let web = create_web(&store, &[]);
    let web_id = str_of(&web, "id").to_owned();
    store.ok(&["client", "update", &web_id, "--name", "Renamed"]);
    // A refused change is recorded with its outcome.
    store.fails(1, &["account", "create", "acme", "--roles", "User"]);

    let all = store.json(&["audit"]);
    let rows: Vec<(String, String, String)> = all["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["account_id"].as_str().unwrap_or_default().to_owned(),
                e["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let row = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        rows,
        [
            row("create_account", "acme", "success"),
            row("create_account", "globex", "success"),
            row("create_client", "acme", "success"),
            row("update_client", "acme", "success"),
            row("create_account", "acme", "conflict"),
        ]
    );
    assert!(
        all["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["by"] == "operator")
    );
    assert_eq!(all["entries"][3]["fields"], serde_json::json!(["name"]));

    let globex = store.json(&["audit", "--account", "globex"]);
    assert_eq!(globex["entries"].as_array().map(Vec::len), Some(1));
    let page = store.json(&["audit", "--limit", "2"]);
    assert_eq!(
        (
            page["entries"].as_array().map(Vec::len),
            page["more"].as_bool()
        ),
        (Some(2), Some(true))
    );
    let none = store.json(&["audit", "--from", "2000-01-01", "--to", "2000-01-02"]);
    assert_eq!(none["entries"].as_array().map(Vec::len), Some(0));

    let table = store.ok(&["audit", "--account", "acme"]);
    assert!(table.contains("update_client"), "{table}");
    assert!(table.contains("conflict"), "{table}");
    let err = store.fails(1, &["audit", "--from", "yesterday"]);
    assert!(err.contains("from"), "{err}");
    let err = store.fails(1, &["audit", "--limit", "0"]);
    assert!(err.contains("limit"), "{err}");
}
