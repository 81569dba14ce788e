//! The `gis-auth` command-line tool, run as a real binary against a temporary clients file:
//! every command in JSON and as tables, validation errors (exit 1, naming the field), usage
//! errors (exit 2), and concurrent writers.

#![cfg(feature = "cli")]

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use gis_auth::client::{AccountId, ClientId, KeyDigest, Status};
use gis_auth::store::{ClientStore, FileStore};
use serde_json::Value;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_gis-auth");

/// A temporary directory with a clients file path in it (the file itself made by the
/// first `account create`).
struct Store {
    _dir: TempDir,
    path: PathBuf,
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("clients.json");
        Store { _dir: dir, path }
    }

    /// A store with account `acme` (User, Evaluator; quota 1000) and its default clients.
    fn with_acme() -> (Store, Value) {
        let store = Store::new();
        let created = store.json(&[
            "account",
            "create",
            "acme",
            "--roles",
            "User,Evaluator",
            "--name",
            "Acme Maps",
            "--daily-quota",
            "1000",
        ]);
        (store, created)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--store").arg(&self.path).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the binary runs")
    }

    /// Runs a command that must succeed; gives its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    /// Runs a command with `--json` that must succeed; gives its document.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).expect("one JSON document on stdout")
    }

    /// Runs a command that must fail with `code`; gives its stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).expect("UTF-8")
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.path).expect("the clients file")
    }

    fn file_store(&self) -> FileStore {
        FileStore::open(&self.path).expect("opened")
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` in {v}"))
}

/// Creates a JavaScript client `web` of acme with `extra` flags; gives its JSON.
fn create_web(store: &Store, extra: &[&str]) -> Value {
    let mut args = vec![
        "client",
        "create",
        "--account",
        "acme",
        "--kind",
        "javascript",
        "--id",
        "web",
        "--name",
        "Store locator",
    ];
    args.extend_from_slice(extra);
    store.json(&args)
}

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
    assert!(table.contains("daily_quota  unlimited"), "{table}");
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
    assert!(table.starts_with("ID    NAME       ROLES            STATUS  DAILY QUOTA  CLIENTS\n"));
    assert!(table.contains("acme  Acme Maps  Evaluator, User  active  1000         2"));

    let shown = store.json(&["account", "show", "acme"]);
    assert_eq!(shown["account"]["name"], "Acme Maps");
    assert_eq!(shown["clients"].as_array().expect("clients").len(), 2);
    assert!(shown["clients"][0]["etag"].is_string());
    let table = store.ok(&["account", "show", "acme"]);
    assert!(table.contains("name         Acme Maps"), "{table}");
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
    assert!(table.contains("status       inactive"), "{table}");
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
fn each_validation_error_exits_1_naming_the_field_and_changes_nothing() {
    let (store, _) = Store::with_acme();
    create_web(&store, &[]);
    let before = store.text();
    let client = |extra: &[&'static str]| {
        let mut args = vec![
            "client",
            "create",
            "--account",
            "acme",
            "--kind",
            "javascript",
            "--name",
            "X",
        ];
        args.extend_from_slice(extra);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["account", "create", "a b", "--roles", "User"],
            "invalid account id `a b`",
        ),
        (
            vec!["account", "create", "acme", "--roles", "User"],
            "account `acme` already exists",
        ),
        (
            vec!["account", "create", "new", "--roles", "Bad Role"],
            "invalid role name `Bad Role`",
        ),
        (
            vec!["account", "create", "new", "--roles", "User", "--name", " "],
            "invalid name",
        ),
        (
            vec![
                "account",
                "create",
                "new",
                "--roles",
                "User",
                "--daily-quota",
                "ten",
            ],
            "invalid daily_quota `ten`",
        ),
        (
            vec![
                "account",
                "create",
                "new",
                "--roles",
                "User",
                "--contact-email",
                "nope",
            ],
            "invalid contact_email `nope`",
        ),
        (
            vec!["account", "update", "nobody", "--name", "N"],
            "unknown account `nobody`",
        ),
        (
            vec!["account", "update", "acme", "--contact-phone", "call me"],
            "contact_phone",
        ),
        (
            vec!["account", "show", "nobody"],
            "unknown account `nobody`",
        ),
        (
            vec![
                "client",
                "create",
                "--account",
                "nobody",
                "--kind",
                "native",
                "--name",
                "X",
            ],
            "unknown account `nobody`",
        ),
        (client(&["--id", "web"]), "client `web` already exists"),
        (client(&["--id", "no way"]), "invalid client id `no way`"),
        (
            client(&["--allowed-origins", "https://*."]),
            "invalid origin pattern `https://*.`",
        ),
        (
            client(&["--allowed-ips", "300.1.1.1"]),
            "invalid IP rule `300.1.1.1`",
        ),
        (
            client(&["--expires-at", "tomorrow"]),
            "invalid expires_at `tomorrow`",
        ),
        (client(&["--roles", "Subscriber"]), "role `Subscriber`"),
        (
            client(&["--grant", "roads=delete"]),
            "invalid grants `delete`",
        ),
        (client(&["--grant", "roads"]), "invalid grants `roads`"),
        (client(&["--rate-limit", "0"]), "invalid rate_limit `0`"),
        (
            client(&["--shadow", "everything"]),
            "invalid shadow `everything`",
        ),
        (
            client(&["--allow-missing-origin", "maybe"]),
            "invalid allow_missing_origin `maybe`",
        ),
        (
            client(&["--privileges", "Geocoder,Geocoder"]),
            "invalid privileges `Geocoder`",
        ),
        (
            vec![
                "client",
                "create",
                "--account",
                "acme",
                "--kind",
                "native",
                "--name",
                "X",
                "--allowed-origins",
                "https://a.test",
            ],
            "allowed origins apply to JavaScript clients only",
        ),
        (
            vec!["client", "update", "web", "--name", ""],
            "invalid name",
        ),
        (
            vec!["client", "update", "nobody", "--name", "N"],
            "unknown client `nobody`",
        ),
        (
            vec!["client", "regenerate", "web", "--grace", "forever"],
            "invalid grace `forever`",
        ),
        (vec!["client", "show", "nobody"], "unknown client `nobody`"),
        (
            vec!["client", "delete", "nobody"],
            "unknown client `nobody`",
        ),
        (
            vec!["explain", "--client", "web", "--path", "tiles"],
            "invalid path `tiles`",
        ),
        (
            vec!["explain", "--client", "web", "--path", "/", "--ip", "x"],
            "invalid ip `x`",
        ),
        (
            vec!["explain", "--client", "web", "--path", "/", "--at", "now"],
            "invalid at `now`",
        ),
        (
            vec![
                "explain", "--client", "web", "--path", "/", "--method", "G T",
            ],
            "invalid method",
        ),
        (
            vec!["explain", "--client", "nobody", "--path", "/"],
            "unknown client `nobody`",
        ),
        (
            vec!["usage", "--account", "acme", "--from", "June"],
            "invalid from `June`",
        ),
        (
            vec!["usage", "--account", "nobody"],
            "unknown account `nobody`",
        ),
        (
            vec!["lint", "--account", "nobody"],
            "unknown account `nobody`",
        ),
    ];
    for (args, expected) in cases {
        let err = store.fails(1, &args);
        assert!(err.starts_with("gis-auth: "), "{args:?}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: `{expected}` not in {err}"
        );
        assert_eq!(store.text(), before, "{args:?} changed the file");
    }
}

#[test]
fn a_store_that_cannot_be_used_exits_1_saying_why() {
    let store = Store::new();
    let err = store.fails(1, &["client", "list"]);
    assert!(err.contains("no clients file"), "{err}");
    assert!(!store.path.exists(), "only `account create` makes a file");
    let err = store.fails(1, &["account", "create", "a b", "--roles", "User"]);
    assert!(err.contains("invalid account id `a b`"), "{err}");
    assert!(!store.path.exists(), "nor does an invalid `account create`");

    fs::write(
        &store.path,
        r#"{"clients": [{"id": "web", "account": "acme", "kind": "Browser"}]}"#,
    )
    .expect("w");
    let err = store.fails(1, &["account", "list"]);
    assert!(err.contains("client `web`, field `kind`"), "{err}");

    let postgres = Command::new(BIN)
        .args([
            "--store",
            "postgres://user:hunter2@localhost/db",
            "account",
            "list",
        ])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&postgres.stderr);
    assert!(
        !err.contains("hunter2"),
        "the URL's password is never echoed"
    );
    if cfg!(not(feature = "postgres")) {
        assert_eq!(postgres.status.code(), Some(1));
        assert!(err.contains("`postgres` feature"), "{err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let (store, _) = Store::with_acme();
    create_web(&store, &[]);
    for args in [
        vec![],
        vec!["account"],
        vec!["accounts", "list"],
        vec!["account", "list", "--bogus"],
        vec!["account", "create", "x"],
        vec!["account", "update", "acme"],
        vec![
            "client",
            "create",
            "--account",
            "acme",
            "--kind",
            "javascript",
        ],
        vec![
            "client",
            "create",
            "--account",
            "acme",
            "--kind",
            "browser",
            "--name",
            "X",
        ],
        vec!["client", "update", "web"],
        vec![
            "client",
            "update",
            "web",
            "--expires-at",
            "2030-01-01T00:00:00Z",
            "--clear-expiry",
        ],
        vec!["client", "update", "web", "--roles", "User", "--all-roles"],
        vec!["client", "show"],
        vec!["explain", "--client", "web"],
        vec!["usage"],
    ] {
        let err = store.fails(2, &args);
        assert!(
            err.starts_with("error: ") || err.contains("\nUsage: "),
            "{args:?}: {err}"
        );
    }
    let no_store = Command::new(BIN)
        .args(["account", "list"])
        .output()
        .expect("runs");
    assert_eq!(no_store.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_store.stderr).contains("--store"));
    let help = Command::new(BIN).arg("--help").output().expect("runs");
    assert_eq!(help.status.code(), Some(0));
}

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

    store.ok(&["client", "deactivate", native.as_str()]);
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
fn concurrent_cli_writers_lose_no_update() {
    const WRITERS: usize = 12;
    let (store, _) = Store::with_acme();
    for i in 0..WRITERS {
        store.ok(&[
            "client",
            "create",
            "--account",
            "acme",
            "--kind",
            "javascript",
            "--name",
            "Web",
            "--id",
            &format!("c{i}"),
        ]);
    }
    let mut children = Vec::new();
    for i in 0..WRITERS {
        let name = format!("renamed {i}");
        let id = format!("c{i}");
        children.push(
            store
                .command(&["client", "update", &id, "--name", &name])
                .stdout(Stdio::null())
                .spawn()
                .expect("spawned"),
        );
        let new = format!("n{i}");
        children.push(
            store
                .command(&[
                    "client",
                    "create",
                    "--account",
                    "acme",
                    "--kind",
                    "native",
                    "--name",
                    "New",
                    "--id",
                    &new,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawned"),
        );
    }
    for mut child in children {
        assert!(child.wait().expect("waited").success());
    }
    let list = store.json(&["client", "list", "--account", "acme"]);
    let clients = list["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), 2 + 2 * WRITERS);
    for i in 0..WRITERS {
        let c = clients
            .iter()
            .find(|c| c["id"] == format!("c{i}"))
            .expect("present");
        assert_eq!(c["name"], format!("renamed {i}"));
        assert!(
            clients.iter().any(|c| c["id"] == format!("n{i}")),
            "n{i} lost"
        );
    }
}

/// A Redis key prefix of one test's own, every key under it deleted when dropped.
#[cfg(feature = "redis")]
struct RedisPrefix {
    url: String,
    prefix: String,
}

#[cfg(feature = "redis")]
impl RedisPrefix {
    fn new() -> RedisPrefix {
        let url = std::env::var("REDIS_URL")
            .expect("REDIS_URL is set: these tests need Redis (e.g. redis://127.0.0.1:6379)");
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).expect("random bytes");
        let tag: String = random.iter().map(|b| format!("{b:02x}")).collect();
        RedisPrefix {
            url,
            prefix: format!("gis-auth-test:cli_{}_{tag}:", std::process::id()),
        }
    }
}

#[cfg(feature = "redis")]
impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let deleted = redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut conn| {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.prefix))
                    .query(&mut conn)?;
                if keys.is_empty() {
                    return Ok(());
                }
                redis::cmd("DEL").arg(&keys).query(&mut conn)
            });
        if deleted.is_err() && !std::thread::panicking() {
            panic!("the test keys under {} could not be deleted", self.prefix);
        }
    }
}

#[cfg(feature = "redis")]
#[test]
fn usage_reads_the_counters_the_servers_share_in_redis() {
    use gis_auth::limits::{Charge, RedisUsageCounter, UsageCounter};

    let (store, created) = Store::with_acme();
    let web = ClientId::new(str_of(&created["clients"][0], "id")).expect("an id");
    let acme = AccountId::new("acme").expect("an id");
    let prefix = RedisPrefix::new();
    let url = prefix.url.clone();
    // The counter keeps days on the system clock: count today.
    let today = time::OffsetDateTime::now_utc().date();
    block(async {
        let counter = RedisUsageCounter::connect(&url)
            .await
            .expect("Redis at REDIS_URL")
            .key_prefix(prefix.prefix.clone());
        for _ in 0..3 {
            counter
                .charge(&Charge::new(&acme, &web, today, 100))
                .await
                .expect("charged");
        }
        counter
            .record_refusal(&acme, &web, today, "access_denied")
            .await
            .expect("recorded");
    });
    let day = format!(
        "{:04}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    let args = [
        "usage",
        "--account",
        "acme",
        "--from",
        &day,
        "--to",
        &day,
        "--redis",
        &url,
        "--redis-prefix",
        &prefix.prefix,
    ];
    let report = store.json(&args);
    assert_eq!(report["source"], "redis");
    let row = &report["days"][0];
    assert_eq!(row["client_id"], web.as_str());
    assert_eq!(row["requests"], 3);
    assert_eq!(row["transactions"], 0.3);
    assert_eq!(row["refusals"]["access_denied"], 1);
    let table = store.ok(&args);
    assert!(table.contains("DATE"), "{table}");
    assert!(table.contains("access_denied 1"), "{table}");
}

/// A PostgreSQL schema of one test's own, dropped with everything in it when dropped; its
/// URL puts connections in it.
#[cfg(feature = "postgres")]
struct PostgresSchema {
    base: String,
    name: String,
}

#[cfg(feature = "postgres")]
impl PostgresSchema {
    fn new() -> PostgresSchema {
        let base = std::env::var("DATABASE_URL").expect(
            "DATABASE_URL is set: these tests need PostgreSQL \
             (e.g. postgres://postgres@127.0.0.1:5432/test)",
        );
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).expect("random bytes");
        let tag: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let schema = PostgresSchema {
            base,
            name: format!("t_cli_{}_{tag}", std::process::id()),
        };
        schema.execute(&format!("CREATE SCHEMA {}", schema.name));
        schema
    }

    fn url(&self) -> String {
        let joiner = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{joiner}options=-c%20search_path%3D{}",
            self.base, self.name
        )
    }

    fn execute(&self, sql: &str) {
        use sqlx::Connection as _;
        block(async {
            let mut conn = sqlx::PgConnection::connect(&self.base)
                .await
                .expect("PostgreSQL at DATABASE_URL");
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        });
    }
}

#[cfg(feature = "postgres")]
impl Drop for PostgresSchema {
    fn drop(&mut self) {
        self.execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

#[cfg(feature = "postgres")]
#[test]
fn a_postgres_store_is_migrated_and_managed_like_a_file() {
    let schema = PostgresSchema::new();
    let url = schema.url();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("--store")
            .arg(&url)
            .args(args)
            .output()
            .expect("runs")
    };
    let json = |args: &[&str]| -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON document")
    };
    let before = run(&["account", "list"]);
    assert_eq!(before.status.code(), Some(1), "not migrated yet");

    assert_eq!(json(&["migrate"])["migrated"], true);
    assert_eq!(json(&["migrate"])["migrated"], true, "safe to run again");
    let created = json(&["account", "create", "acme", "--roles", "User,Evaluator"]);
    let key = str_of(&created["clients"][0], "api_key").to_owned();
    let web = str_of(&created["clients"][0], "id").to_owned();
    let list = json(&["client", "list", "--account", "acme"]);
    assert_eq!(list["clients"].as_array().expect("clients").len(), 2);
    assert_eq!(json(&["client", "deactivate", &web])["status"], "inactive");
    let shown = json(&["client", "show", &web]);
    assert_eq!(shown["status"], "inactive");
    let all = String::from_utf8_lossy(&run(&["client", "show", &web]).stdout).into_owned();
    assert!(!all.contains(&key));

    let file = Store::new();
    let err = Command::new(BIN)
        .arg("--store")
        .arg(&file.path)
        .arg("migrate")
        .output()
        .expect("runs");
    assert_eq!(err.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("`migrate` sets up a `postgres://` store")
    );
}
