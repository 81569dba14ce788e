//! Accounts: creation prints the two default credentials once, the store keeps digests
//! only, and accounts are listed, shown, updated, deactivated and activated.

use super::*;

#[test]
fn account_create_prints_the_two_default_credentials_once_and_stores_digests_only() {
    let (store, created) = Store::with_acme();
    assert_eq!(created["account"]["id"], "acme");
    assert_eq!(created["account"]["daily_quota"], 1000);
    let clients = created["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), 2);
    let key = str_of(&clients[0], "api_key");
    assert!(key.starts_with("gis_apikey_"));
    assert_eq!(clients[0]["kind"], "JavaScript");
    let secret = str_of(&clients[1], "client_secret");
    assert!(secret.starts_with("gis_secret_"));
    assert_eq!(clients[1]["client_id"], clients[1]["id"]);

    let text = store.text();
    assert!(!text.contains(key) && !text.contains(secret));
    assert!(text.contains(&KeyDigest::of(key).to_prefixed_hex()));
    let found = block(store.file_store().resolve_key(&KeyDigest::of(key)))
        .expect("answered")
        .expect("the key works");
    assert_eq!(found.account.id.as_str(), "acme");

    // As a table, with the same one-time credentials.
    let other = Store::new();
    let table = other.ok(&["account", "create", "beta", "--roles", "Evaluator"]);
    assert!(table.contains("daily_quota    unlimited"), "{table}");
    assert!(table.contains("api_key  gis_apikey_"), "{table}");
    assert!(table.contains("client_secret  gis_secret_"), "{table}");
}

#[test]
fn credentials_never_appear_outside_the_creation_output() {
    let (store, created) = Store::with_acme();
    let web = create_web(&store, &["--allowed-origins", "https://*.acme.test"]);
    let regenerated = store.json(&["client", "regenerate", "web", "--grace", "1h"]);
    let secrets = [
        str_of(&created["clients"][0], "api_key"),
        str_of(&created["clients"][1], "client_secret"),
        str_of(&web, "api_key"),
        str_of(&regenerated, "api_key"),
    ];
    let native = str_of(&created["clients"][1], "id");
    let reads: Vec<Vec<&str>> = vec![
        vec!["account", "list"],
        vec!["account", "show", "acme"],
        vec!["client", "list"],
        vec!["client", "show", "web"],
        vec!["client", "show", native],
        vec!["lint"],
        vec!["usage", "--account", "acme"],
        vec!["explain", "--client", "web", "--path", "/tiles/1/2/3.png"],
    ];
    for read in reads {
        for json in [false, true] {
            let mut args = read.clone();
            if json {
                args.push("--json");
            }
            let out = store.run(&args);
            assert_eq!(out.status.code(), Some(0), "{args:?}");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            for s in secrets {
                assert!(!all.contains(s), "{args:?} printed a credential");
            }
        }
    }
    for s in secrets {
        assert!(!store.text().contains(s));
    }
}

#[test]
fn accounts_are_listed_shown_updated_deactivated_and_activated() {
    let (store, _) = Store::with_acme();
    store.ok(&["account", "create", "beta", "--roles", "Evaluator"]);

    let list = store.json(&["account", "list"]);
    let ids: Vec<&str> = list["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| str_of(a, "id"))
        .collect();
    assert_eq!(ids, ["acme", "beta"]);
    let table = store.ok(&["account", "list"]);
    assert!(
        table.starts_with(
            "ID    NAME       ROLES            STATUS  DAILY QUOTA  MONTHLY QUOTA  CLIENTS    \
             EXPIRES\n"
        ),
        "{table}"
    );
    assert!(
        table.contains(
            "acme  Acme Maps  Evaluator, User  active  1000         unlimited      2 of 1000  never"
        ),
        "{table}"
    );

    let shown = store.json(&["account", "show", "acme"]);
    assert_eq!(shown["account"]["name"], "Acme Maps");
    assert_eq!(shown["clients"].as_array().expect("clients").len(), 2);
    assert!(shown["clients"][0]["etag"].is_string());
    let table = store.ok(&["account", "show", "acme"]);
    assert!(table.contains("name           Acme Maps"), "{table}");
    assert!(table.contains("Default JavaScript client"), "{table}");

    let updated = store.json(&[
        "account",
        "update",
        "acme",
        "--name",
        "Acme",
        "--roles",
        "User,Evaluator,Subscriber",
        "--daily-quota",
        "unlimited",
        "--contact-email",
        "ops@acme.test",
    ]);
    assert_eq!(updated["name"], "Acme");
    assert_eq!(
        updated["roles"],
        serde_json::json!(["Evaluator", "Subscriber", "User"])
    );
    assert_eq!(updated["daily_quota"], Value::Null);
    assert_eq!(updated["contact_email"], "ops@acme.test");
    let cleared = store.json(&["account", "update", "acme", "--contact-email", ""]);
    assert!(cleared.get("contact_email").is_none());

    let table = store.ok(&["account", "deactivate", "acme"]);
    assert!(table.contains("status         inactive"), "{table}");
    let acme = AccountId::new("acme").expect("an id");
    let account = block(store.file_store().account(&acme))
        .expect("answered")
        .expect("present");
    assert_eq!(account.status, Status::Inactive);
    assert_eq!(
        store.json(&["account", "activate", "acme"])["status"],
        "active"
    );
}

#[test]
fn the_plan_is_set_shown_and_cleared_by_the_operator_alone() {
    let (store, _) = Store::with_acme();
    let updated = store.json(&[
        "account",
        "update",
        "acme",
        "--monthly-quota",
        "20000",
        "--rate-limit",
        "20/50",
        "--max-clients",
        "3",
        "--items",
        "roads,parcels-*",
        "--expires-at",
        "2027-01-31T00:00:00Z",
    ]);
    assert_eq!(updated["monthly_quota"], 20_000);
    assert_eq!(
        updated["rate_limit"],
        serde_json::json!({"per_second": 20, "burst": 50})
    );
    assert_eq!(updated["max_clients"], 3);
    assert_eq!(updated["items"], serde_json::json!(["parcels-*", "roads"]));
    assert_eq!(updated["expires_at"], "2027-01-31T00:00:00Z");
    // The clients file holds it as the account's entry.
    let file: Value = serde_json::from_str(&store.text()).expect("JSON");
    assert_eq!(file["accounts"][0]["max_clients"], 3);
    assert_eq!(file["accounts"][0]["items"], updated["items"]);

    let table = store.ok(&["account", "show", "acme"]);
    for line in [
        "monthly_quota  20000",
        "rate_limit     20/s, burst 50",
        "max_clients    3",
        "items          parcels-*, roads",
        "expires_at     2027-01-31T00:00:00Z",
    ] {
        assert!(table.contains(line), "{line}: {table}");
    }
    let list = store.ok(&["account", "list"]);
    assert!(
        list.contains("20000          2 of 3   2027-01-31T00:00:00Z"),
        "{list}"
    );

    // The cap: a third client fits, a fourth is refused, naming the plan's setting.
    create_web(&store, &["--grant", "parcels-north=read"]);
    let err = store.fails(
        1,
        &[
            "client",
            "create",
            "--account",
            "acme",
            "--kind",
            "javascript",
            "--name",
            "x",
        ],
    );
    assert!(err.contains("max_clients"), "{err}");
    // The ceiling: a grant outside it is refused, naming the client and the item.
    let err = store.fails(1, &["client", "update", "web", "--grant", "tiles=read"]);
    assert!(err.contains("`tiles`") && err.contains("items"), "{err}");
    // A ceiling that would leave a client's grant outside it is refused, naming both.
    let err = store.fails(1, &["account", "update", "acme", "--items", "roads"]);
    assert!(
        err.contains("`web`") && err.contains("`parcels-north`"),
        "{err}"
    );
    let err = store.fails(1, &["account", "update", "acme", "--max-clients", "many"]);
    assert!(err.contains("max_clients"), "{err}");

    let cleared = store.json(&[
        "account",
        "update",
        "acme",
        "--monthly-quota",
        "unlimited",
        "--rate-limit",
        "unlimited",
        "--max-clients",
        "unlimited",
        "--all-items",
        "--expires-at",
        "never",
    ]);
    for unset in ["monthly_quota", "rate_limit", "items", "expires_at"] {
        assert!(cleared.get(unset).is_none(), "{unset}: {cleared}");
    }
    assert_eq!(cleared.get("max_clients"), Some(&Value::Null), "unlimited");
    let table = store.ok(&["account", "show", "acme"]);
    assert!(table.contains("max_clients    unlimited"), "{table}");
    assert!(table.contains("items          any"), "{table}");
    store.json(&[
        "client",
        "create",
        "--account",
        "acme",
        "--kind",
        "javascript",
        "--name",
        "x",
    ]);

    let created = store.json(&[
        "account",
        "create",
        "beta",
        "--roles",
        "Evaluator",
        "--items",
        "",
        "--max-clients",
        "1000",
    ]);
    assert_eq!(created["account"]["items"], serde_json::json!([]));
    assert!(
        created["account"].get("max_clients").is_none(),
        "the default"
    );
}
