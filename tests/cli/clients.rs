//! Clients: created with every setting, shown, listed, updated, regenerated, switched off and
//! on, deleted, and a stale `--if-match` refused.

use super::*;

#[test]
fn clients_are_created_with_every_setting_and_shown_listed_and_updated() {
    let (store, _) = Store::with_acme();
    let web = create_web(
        &store,
        &[
            "--roles",
            "Evaluator",
            "--allowed-origins",
            "https://*.acme.test,http://localhost:*",
            "--allow-missing-origin",
            "--allowed-ips",
            "203.0.113.0/24,2001:db8::/32",
            "--expires-at",
            "2030-01-01T00:00:00Z",
            "--privileges",
            "WorldStreets,Elevation",
            "--grant",
            "roads=read+write",
            "--grant",
            "parcels=read",
            "--rate-limit",
            "50/100",
            "--shadow",
            "origins",
        ],
    );
    assert_eq!(web["id"], "web");
    assert_eq!(web["roles"], serde_json::json!(["Evaluator"]));
    assert_eq!(web["allow_missing_origin"], true);
    assert_eq!(web["allowed_ips"][1], "2001:db8::/32");
    assert_eq!(web["expires_at"], "2030-01-01T00:00:00Z");
    assert_eq!(
        web["privileges"],
        serde_json::json!(["WorldStreets", "Elevation"])
    );
    assert_eq!(
        web["grants"],
        serde_json::json!([{"item": "roads", "actions": ["read", "write"]},
                           {"item": "parcels", "actions": ["read"]}])
    );
    assert_eq!(
        web["rate_limit"],
        serde_json::json!({"per_second": 50, "burst": 100})
    );
    assert_eq!(web["shadow"], serde_json::json!(["origins"]));

    let native = store.json(&[
        "client",
        "create",
        "--account",
        "acme",
        "--kind",
        "native",
        "--name",
        "Batch",
    ]);
    let id = str_of(&native, "id");
    assert!(id.starts_with("cl_"));
    assert_eq!(native["client_id"], id);
    assert!(str_of(&native, "client_secret").starts_with("gis_secret_"));
    assert_eq!(native["roles"], serde_json::json!(["Evaluator", "User"]));

    let shown = store.json(&["client", "show", "web"]);
    assert_eq!(shown["etag"], web["etag"]);
    assert!(shown.get("api_key").is_none());
    let table = store.ok(&["client", "show", "web"]);
    for line in [
        "allowed_origins       https://*.acme.test, http://localhost:*",
        "grants                roads: read+write, parcels: read",
        "rate_limit            50/s, burst 100",
        "privileges            WorldStreets, Elevation",
        "expires_at            2030-01-01T00:00:00Z",
    ] {
        assert!(table.contains(line), "{line} in\n{table}");
    }

    let list = store.json(&["client", "list", "--account", "acme"]);
    assert_eq!(list["clients"].as_array().expect("clients").len(), 4);
    let table = store.ok(&["client", "list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("web "), "{table}");
    store.ok(&["account", "create", "beta", "--roles", "Evaluator"]);
    assert_eq!(
        store.json(&["client", "list", "--account", "beta"])["clients"]
            .as_array()
            .expect("clients")
            .len(),
        2
    );
    assert_eq!(
        store.json(&["client", "list"])["clients"]
            .as_array()
            .expect("clients")
            .len(),
        6
    );

    let updated = store.json(&[
        "client",
        "update",
        "web",
        "--name",
        "Locator",
        "--all-roles",
        "--allowed-origins",
        "",
        "--allow-missing-origin",
        "false",
        "--clear-expiry",
        "--clear-privileges",
        "--clear-grants",
        "--clear-rate-limit",
        "--shadow",
        "",
    ]);
    assert_eq!(updated["name"], "Locator");
    assert_eq!(updated["roles"], serde_json::json!(["Evaluator", "User"]));
    assert_eq!(updated["allowed_origins"], serde_json::json!([]));
    assert_eq!(updated["allow_missing_origin"], false);
    assert_eq!(updated["expires_at"], Value::Null);
    assert_eq!(updated["privileges"], Value::Null);
    assert_eq!(updated["grants"], serde_json::json!([]));
    assert_eq!(updated["rate_limit"], Value::Null);
    assert_eq!(updated["allowed_ips"][0], "203.0.113.0/24", "untouched");
    assert_ne!(updated["etag"], web["etag"]);
    let table = store.ok(&["client", "update", "web", "--privileges", ""]);
    assert!(
        table.contains("privileges            none (reaches no API)"),
        "{table}"
    );
}

#[test]
fn regenerating_prints_the_new_credential_once_and_stops_the_old_one() {
    let (store, _) = Store::with_acme();
    let web = create_web(&store, &[]);
    let old = KeyDigest::of(str_of(&web, "api_key"));

    let fresh = store.json(&["client", "regenerate", "web"]);
    let new = KeyDigest::of(str_of(&fresh, "api_key"));
    let files = store.file_store();
    assert!(block(files.resolve_key(&old)).expect("answered").is_none());
    assert!(block(files.resolve_key(&new)).expect("answered").is_some());

    // With a grace period the previous key is kept, as a digest, until it ends.
    let table = store.ok(&["client", "regenerate", "web", "--grace", "30m"]);
    assert!(
        table.contains("api_key              gis_apikey_"),
        "{table}"
    );
    assert!(table.contains("previous_expires_at"), "{table}");
    let text = store.text();
    assert!(text.contains(&format!(
        "\"previous_api_key\": \"{}\"",
        new.to_prefixed_hex()
    )));
    let show = store.ok(&["client", "show", "web"]);
    assert!(
        show.contains("generation 2; the previous one is accepted until"),
        "{show}"
    );

    // A NativeConfidential client gets a new secret under its id.
    let native = store.json(&[
        "client",
        "create",
        "--account",
        "acme",
        "--kind",
        "native",
        "--name",
        "Batch",
        "--id",
        "batch",
    ]);
    let again = store.json(&["client", "regenerate", "batch"]);
    assert_eq!(again["client_id"], "batch");
    assert_ne!(again["client_secret"], native["client_secret"]);
}

#[test]
fn clients_are_deactivated_activated_and_deleted() {
    let (store, _) = Store::with_acme();
    let web = create_web(&store, &[]);
    let key = KeyDigest::of(str_of(&web, "api_key"));
    let id = ClientId::new("web").expect("an id");

    let table = store.ok(&["client", "deactivate", "web"]);
    assert!(table.contains("status                inactive"), "{table}");
    let client = block(store.file_store().client_by_id(&id))
        .expect("answered")
        .expect("present");
    assert_eq!(client.status(), Status::Inactive);
    assert_eq!(
        store.json(&["client", "activate", "web"])["status"],
        "active"
    );

    let deleted = store.json(&["client", "delete", "web"]);
    assert_eq!(deleted["deleted"]["id"], "web");
    assert!(
        block(store.file_store().resolve_key(&key))
            .expect("answered")
            .is_none()
    );
    let err = store.fails(1, &["client", "show", "web"]);
    assert!(err.contains("unknown client `web`"), "{err}");
    create_web(&store, &[]);
    let table = store.ok(&["client", "delete", "web"]);
    assert_eq!(table, "deleted client `web` of account `acme`\n");
}

#[test]
fn a_stale_if_match_is_refused_and_changes_nothing() {
    let (store, _) = Store::with_acme();
    let web = create_web(&store, &[]);
    let seen = str_of(&web, "etag").to_owned();
    store.ok(&[
        "client",
        "update",
        "web",
        "--if-match",
        &seen,
        "--name",
        "Renamed",
    ]);
    let before = store.text();
    for args in [
        vec![
            "client",
            "update",
            "web",
            "--if-match",
            &seen,
            "--name",
            "Again",
        ],
        vec!["client", "deactivate", "web", "--if-match", &seen],
        vec!["client", "regenerate", "web", "--if-match", &seen],
        vec!["client", "delete", "web", "--if-match", &seen],
    ] {
        let err = store.fails(1, &args);
        assert!(err.contains("changed since it was read"), "{args:?}: {err}");
        assert!(err.contains("ETag"), "{err}");
    }
    assert_eq!(store.text(), before);
}

#[test]
fn the_operator_may_run_the_quota_report_only_and_give_all_roles_explicitly() {
    let (store, _) = Store::with_acme();
    let web = create_web(
        &store,
        &["--roles", "Evaluator", "--shadow", "quota,origins"],
    );
    assert_eq!(web["shadow"], serde_json::json!(["origins", "quota"]));
    let updated = store.json(&["client", "update", "web", "--all-roles"]);
    assert_eq!(updated["roles"], serde_json::json!(["Evaluator", "User"]));
    let file: Value = serde_json::from_str(&store.text()).expect("JSON");
    let stored = file["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|c| c["id"] == "web")
        .expect("web");
    assert!(
        stored.get("roles").is_none(),
        "all roles is said by leaving `roles` out: {stored}"
    );
}

#[test]
fn the_last_client_that_can_manage_an_account_is_kept_unless_forced() {
    let (store, created) = Store::with_acme();
    let native = str_of(&created["clients"][1], "id").to_owned();
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(30))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let before = store.text();
    for (change, args) in [
        ("delete", vec!["client", "delete", &native]),
        ("deactivate", vec!["client", "deactivate", &native]),
        (
            "update",
            vec!["client", "update", &native, "--roles", "Evaluator"],
        ),
        (
            "update",
            vec!["client", "update", &native, "--privileges", "Geocoder"],
        ),
        (
            "update",
            vec!["client", "update", &native, "--expires-at", &soon],
        ),
    ] {
        let err = store.fails(1, &args);
        assert!(
            err.contains(&format!("refusing to {change} client `{native}`")),
            "{args:?}: {err}"
        );
        assert!(err.contains("lock the account out"), "{err}");
        assert!(err.contains("--force"), "{err}");
    }
    assert_eq!(store.text(), before, "a refused change wrote the file");

    // IP rules are the account holder's own: the operator's change comes from no address.
    store.ok(&["client", "update", &native, "--allowed-ips", "192.0.2.0/24"]);
    // With --force, the operator's word goes.
    store.ok(&[
        "client",
        "update",
        &native,
        "--privileges",
        "Geocoder",
        "--force",
    ]);
    store.ok(&["client", "delete", &native, "--force"]);
    let err = store.fails(1, &["client", "show", &native]);
    assert!(err.contains("unknown client"), "{err}");
}
