//! Errors: each validation error exits 1 naming the field, an unusable store exits 1 saying
//! why, and usage errors exit 2.

use super::*;

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
        // An empty list never means "all of the account's roles" (that is --all-roles).
        (client(&["--roles", ""]), "invalid roles"),
        (
            vec!["client", "update", "web", "--roles", ""],
            "give --all-roles",
        ),
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
