//! The `gis-auth` command-line tool, run as a real binary against a temporary clients file:
//! every command in JSON and as tables, validation errors (exit 1, naming the field), usage
//! errors (exit 2), and concurrent writers.

#![cfg(feature = "cli")]

mod accounts;
mod clients;
mod errors;
#[path = "../local_services/mod.rs"]
mod local_services;
mod reports;
mod shared_stores;

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
