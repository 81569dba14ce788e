//! The file store end to end: atomic writes, concurrent writers on one file, hot reload of
//! external edits, broken edits, and revocation seen across instances.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gis_auth::client::{AccountId, ClientId, ClientSpec, KeyDigest, Status};
use gis_auth::document::ClientsFile;
use gis_auth::store::{ClientStore, FileStore, ManagedStore, Precondition};

const ACME: &str = r#"{"id": "acme", "name": "Acme", "roles": ["User", "Evaluator"]}"#;

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(f)
}

fn digest(n: usize) -> String {
    format!("sha256:{n:064x}")
}

/// A clients file with account `acme` and JavaScript clients `c0`… each with a digest.
fn clients_file(dir: &Path, clients: usize) -> PathBuf {
    let entries: Vec<String> = (0..clients)
        .map(|i| {
            format!(
                r#"{{"id": "c{i}", "account": "acme", "kind": "JavaScript", "api_key": "{}"}}"#,
                digest(i + 1)
            )
        })
        .collect();
    let path = dir.join("clients.json");
    fs::write(
        &path,
        format!(
            r#"{{"accounts": [{ACME}], "clients": [{}]}}"#,
            entries.join(",")
        ),
    )
    .expect("written");
    path
}

fn id(s: &str) -> ClientId {
    ClientId::new(s).expect("an id")
}

/// Polls `done` every few milliseconds until it holds, failing after ten seconds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Replaces the file as deployment tools do: a new file renamed over the old one.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    fs::write(&tmp, text).expect("written");
    fs::rename(&tmp, path).expect("renamed");
}

#[test]
fn every_write_leaves_a_valid_file_and_no_temporary_files() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = clients_file(dir.path(), 1);
    let store = FileStore::open(&path).expect("opened");
    let acme = AccountId::new("acme").expect("an id");
    for i in 0..20 {
        let made = block(store.create_client(&acme, ClientSpec::native(format!("Backend {i}"))))
            .expect("created");
        let text = fs::read_to_string(&path).expect("read");
        ClientsFile::from_json(&text).expect("a valid clients file after every write");
        assert!(!text.contains(made.credential.expose()));
    }
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .expect("listed")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    // The audit log sits beside the file; no temporary file is left.
    assert_eq!(
        names,
        ["clients.audit.jsonl", "clients.json", "clients.json.lock"]
    );
}

#[test]
fn two_stores_writing_one_file_at_once_lose_no_update() {
    const CLIENTS: usize = 24;
    let dir = tempfile::tempdir().expect("a directory");
    let path = clients_file(dir.path(), CLIENTS);
    let stores = [
        Arc::new(FileStore::open(&path).expect("opened")),
        Arc::new(FileStore::open(&path).expect("opened")),
    ];
    std::thread::scope(|scope| {
        for i in 0..CLIENTS {
            let store = stores[i % 2].clone();
            scope.spawn(move || {
                block(store.update_client(
                    &id(&format!("c{i}")),
                    &Precondition::default(),
                    Box::new(move |spec| {
                        spec.name = format!("renamed {i}");
                        Ok(())
                    }),
                ))
                .expect("updated");
            });
            let store = stores[(i + 1) % 2].clone();
            scope.spawn(move || {
                let acme = AccountId::new("acme").expect("an id");
                let spec = ClientSpec::native(format!("new {i}")).id(id(&format!("n{i}")));
                block(store.create_client(&acme, spec)).expect("created");
            });
        }
    });
    let fresh = FileStore::open(&path).expect("opened");
    for i in 0..CLIENTS {
        let client = block(fresh.client_by_id(&id(&format!("c{i}"))))
            .expect("answered")
            .expect("present");
        assert_eq!(client.name(), format!("renamed {i}"));
        assert!(
            block(fresh.client_by_id(&id(&format!("n{i}"))))
                .expect("answered")
                .is_some(),
            "client n{i} was lost"
        );
    }
}

#[test]
fn an_external_edit_is_picked_up_while_watching() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = clients_file(dir.path(), 1);
    let store = FileStore::open(&path).expect("opened");
    let _watch = store.watch().expect("watching");

    // An editor writing in place...
    let text = fs::read_to_string(&path).expect("read");
    fs::write(
        &path,
        text.replace("\"name\": \"Acme\"", "\"name\": \"Acme Maps\""),
    )
    .expect("w");
    let acme = AccountId::new("acme").expect("an id");
    eventually("the in-place edit", || {
        block(store.account(&acme))
            .expect("answered")
            .is_some_and(|a| a.name == "Acme Maps")
    });

    // ...and a tool renaming a new file over it.
    let fresh = fs::read_to_string(&path).expect("read").replace(
        r#""clients": ["#,
        &format!(
            r#""clients": [{{"id": "added", "account": "acme", "kind": "JavaScript", "api_key": "{}"}},"#,
            digest(99)
        ),
    );
    replace(&path, &fresh);
    eventually("the renamed file", || {
        block(store.client_by_id(&id("added")))
            .expect("answered")
            .is_some()
    });
    let key = KeyDigest::from_prefixed_hex(&digest(99)).expect("a digest");
    assert!(block(store.resolve_key(&key)).expect("answered").is_some());
}

#[test]
fn a_broken_edit_keeps_the_last_good_state_until_it_is_fixed() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = clients_file(dir.path(), 2);
    let store = FileStore::open(&path).expect("opened");
    let _watch = store.watch().expect("watching");
    let good = fs::read_to_string(&path).expect("read");

    replace(
        &path,
        &good.replace("\"kind\": \"JavaScript\"", "\"kind\": \"Browser\""),
    );
    eventually("the reload to fail", || store.last_reload_error().is_some());
    let problem = store.last_reload_error().expect("a problem");
    assert!(problem.contains("client `c0`, field `kind`"), "{problem}");
    for c in ["c0", "c1"] {
        assert!(
            block(store.client_by_id(&id(c)))
                .expect("answered")
                .is_some(),
            "{c} is still served"
        );
    }

    let revision = store.revision();
    replace(&path, &good.replace("\"id\": \"c1\"", "\"id\": \"c9\""));
    eventually("the fixed file", || store.revision() > revision);
    assert_eq!(store.last_reload_error(), None);
    assert!(
        block(store.client_by_id(&id("c9")))
            .expect("answered")
            .is_some()
    );
    assert!(
        block(store.client_by_id(&id("c1")))
            .expect("answered")
            .is_none()
    );
}

#[test]
fn a_revocation_through_one_instance_is_seen_by_another_after_reload() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = clients_file(dir.path(), 3);
    let admin = FileStore::open(&path).expect("opened");
    let server = FileStore::open(&path).expect("opened");
    let key = KeyDigest::from_prefixed_hex(&digest(1)).expect("a digest");
    assert!(block(server.resolve_key(&key)).expect("answered").is_some());

    // Deactivation, seen on an explicit reload.
    block(admin.update_client(
        &id("c0"),
        &Precondition::default(),
        Box::new(|spec| {
            spec.status = Status::Inactive;
            Ok(())
        }),
    ))
    .expect("deactivated");
    assert!(server.reload().expect("reloaded"));
    let c0 = block(server.client_by_id(&id("c0")))
        .expect("answered")
        .expect("present");
    assert_eq!(c0.status(), Status::Inactive);

    // Regeneration and deletion, seen by a watching instance.
    let _watch = server.watch().expect("watching");
    let (_, fresh) = block(admin.regenerate_client(&id("c1"), &Precondition::default(), None))
        .expect("regenerated");
    block(admin.delete_client(&id("c2"), &Precondition::default())).expect("deleted");
    let old = KeyDigest::from_prefixed_hex(&digest(2)).expect("a digest");
    eventually("the revocations", || {
        block(server.resolve_key(&old)).expect("answered").is_none()
            && block(server.client_by_id(&id("c2")))
                .expect("answered")
                .is_none()
    });
    assert!(
        block(server.resolve_key(&fresh.digest()))
            .expect("answered")
            .is_some()
    );
}

#[test]
fn dropping_the_watch_stops_reloading() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = clients_file(dir.path(), 1);
    let store = FileStore::open(&path).expect("opened");
    drop(store.watch().expect("watching"));
    let revision = store.revision();
    replace(
        &path,
        &fs::read_to_string(&path).expect("read").replace("c0", "c7"),
    );
    // A watching second store sees the change; the first, no longer watching, does not.
    let other = FileStore::open(&path).expect("opened");
    assert!(
        block(other.client_by_id(&id("c7")))
            .expect("answered")
            .is_some()
    );
    let witness = FileStore::open(&path).expect("opened");
    let _watch = witness.watch().expect("watching");
    replace(
        &path,
        &fs::read_to_string(&path).expect("read").replace("c7", "c8"),
    );
    eventually("the watching store to reload", || {
        block(witness.client_by_id(&id("c8")))
            .expect("answered")
            .is_some()
    });
    assert_eq!(store.revision(), revision);
    assert!(
        block(store.client_by_id(&id("c0")))
            .expect("answered")
            .is_some()
    );
}

/// A write that takes two seconds (the lock on `<file>.lock` is held elsewhere that long)
/// holds up no request: on a runtime with a single worker thread, a request that needs no
/// write is answered within 100 ms meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_slow_write_holds_up_no_request() {
    use gis_auth::AuthLayer;
    use http::{Request, StatusCode};
    use tower::Layer as _;

    use crate::harness::reply::send;
    use crate::harness::world::{Echo, gis_routes};

    let dir = tempfile::tempdir().expect("a directory");
    let path = clients_file(dir.path(), 0);
    let store = Arc::new(FileStore::open(&path).expect("opened"));
    let web = store
        .create_client(
            &AccountId::new("acme").expect("an id"),
            ClientSpec::javascript("Web"),
        )
        .await
        .expect("created");
    let app = AuthLayer::new(store.clone(), gis_routes()).layer(Echo);
    let tile = format!("/tiles/1/0/0.png?apikey={}", web.credential.expose());
    let answer = |app: gis_auth::AuthService<Echo>, tile: String| async move {
        send(
            app,
            Request::get(tile).body(String::new()).expect("a request"),
        )
        .await
    };
    assert_eq!(
        answer(app.clone(), tile.clone()).await.status,
        StatusCode::OK
    );

    // Another process holds the file's lock for two seconds: the next write waits for it.
    let mut lock_path = path.clone().into_os_string();
    lock_path.push(".lock");
    let held = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .expect("the lock file");
    fs4::FileExt::lock(&held).expect("locked");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        drop(held);
    });
    let began = Instant::now();
    let write = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .create_client(
                    &AccountId::new("acme").expect("an id"),
                    ClientSpec::javascript("Late"),
                )
                .await
        }
    });
    // Requests spawned after the write are answered meanwhile, on the one worker thread
    // (which took the write first).
    for _ in 0..3 {
        let asked = Instant::now();
        let reply = tokio::spawn(answer(app.clone(), tile.clone()))
            .await
            .expect("answered");
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            asked.elapsed() < Duration::from_millis(100),
            "a request took {:?} while a write waited",
            asked.elapsed()
        );
    }
    assert!(!write.is_finished(), "the write did not wait for the lock");
    let late = write
        .await
        .expect("joined")
        .expect("written once the lock is free");
    assert!(
        began.elapsed() >= Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    assert!(
        store
            .client_by_id(late.client.id())
            .await
            .expect("answered")
            .is_some()
    );
    release.join().expect("released");
}

#[test]
fn the_audit_log_is_json_lines_beside_the_clients_file_and_outlives_the_store() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = clients_file(dir.path(), 1);
    let store = FileStore::open(&path).expect("opened");
    let pre = Precondition::default();
    block(async {
        store
            .update_client(
                &id("c0"),
                &pre,
                Box::new(|s| {
                    s.name = "Renamed".into();
                    Ok(())
                }),
            )
            .await
            .expect("renamed");
        let missing = store.delete_client(&id("nobody"), &pre).await;
        assert!(missing.is_err());
        store
            .regenerate_client(&id("c0"), &pre, None)
            .await
            .expect("regenerated");
    });
    let log = dir.path().join("clients.audit.jsonl");
    let text = fs::read_to_string(&log).expect("the log is written");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON entry a line"))
        .collect();
    let summary: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default(),
                e["outcome"].as_str().unwrap_or_default(),
                e["by"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("update_client", "success", "operator"),
            ("delete_client", "not_found", "operator"),
            ("regenerate_client", "success", "operator"),
        ]
    );
    assert_eq!(lines[0]["fields"], serde_json::json!(["name"]));
    assert!(!text.contains("sha256:"), "no digest in the log: {text}");
    // Another store on the same file reads the same log.
    let again = FileStore::open(&path).expect("reopened");
    let all = gis_auth::store::AuditQuery::new(
        time::OffsetDateTime::UNIX_EPOCH,
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    let read =
        block(again.audit(&all.account(AccountId::new("acme").expect("an id")))).expect("read");
    assert_eq!(read.len(), 2, "the not-found entry names no account");
}
