//! Two example-server processes (`examples/gis_server`, built here with the features of this
//! test binary) sharing the Redis at `REDIS_URL` with `--quota-leases`: together they admit
//! no more than an account's daily quota and nearly all of it, and on Ctrl-C each gives back
//! what it holds, so Redis ends with exactly what was served.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use gis_auth::client::AccountId;
use gis_auth::limits::{RedisUsageCounter, UsageCounter};
use gis_auth::policy::TILE_COST;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::services::redis::{Prefix, connection, redis_url};
use crate::services::unique;

/// A key of the crate's format, fixed in the clients file both servers load.
const API_KEY: &str = "gis_apikey_ektRtRMqFc47j6xFAhr1KJug4Swt37NRpbbW-G26-1AWVdTOQ";

/// Builds the example server with this binary's features (once), and gives its path.
fn example_server() -> PathBuf {
    let mut features = vec!["admin", "webhook"];
    for (on, feature) in [
        (cfg!(feature = "axum"), "axum"),
        (cfg!(feature = "cli"), "cli"),
        (cfg!(feature = "postgres"), "postgres"),
        (cfg!(feature = "redis"), "redis"),
    ] {
        if on {
            features.push(feature);
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let built = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--quiet",
            "--example",
            "gis_server",
            "--no-default-features",
        ])
        .args(["--features", &features.join(",")])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "the example server builds");
    // The test binary is <target>/debug/deps/backends-…; examples go to <target>/debug/examples.
    let exe = std::env::current_exe().expect("the test binary");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the profile directory");
    profile.join("examples").join("gis_server")
}

/// A running example server, stopped with Ctrl-C (SIGINT) or killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(exe: &PathBuf, clients: &PathBuf) -> Server {
        let mut child = Command::new(exe)
            .args(["--addr", "127.0.0.1:0", "--clients"])
            .arg(clients)
            .args(["--redis", &redis_url(), "--quota-leases"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the example server starts");
        let (lines, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("its stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = loop {
            let line = stderr
                .recv_timeout(Duration::from_secs(30))
                .expect("the example server says where it listens");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().expect("an address");
                break addr.parse().expect("a socket address");
            }
        };
        Server {
            child,
            addr,
            stderr,
        }
    }

    /// Sends Ctrl-C and waits for the process to end; what it wrote on stderr meanwhile.
    fn stop(mut self) -> String {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = self.child.wait().expect("the server ends");
        let said: Vec<String> = self.stderr.try_iter().collect();
        let said = said.join("\n");
        assert!(status.success(), "{said}");
        said
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of `GET path` on `addr`, on a connection of its own.
async fn status(addr: SocketAddr, path: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("the server accepts");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.expect("a reply");
    let reply = String::from_utf8_lossy(&reply);
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP reply: {reply}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_example_servers_with_quota_leases_share_one_quota_and_give_back_on_ctrl_c() {
    let account = unique("leases");
    // The servers write under the default prefix; the keys of this account go at the end.
    let _keys = [
        Prefix::exactly(format!("gis-auth:usage:{account}:")),
        Prefix::exactly(format!("gis-auth:usage-month:{account}:")),
    ];
    let quota = 500; // transactions: 5,000 tiles
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    std::fs::write(
        &clients,
        format!(
            r#"{{"accounts": [{{"id": "{account}", "roles": ["User", "Evaluator", "Subscriber"],
                 "daily_quota": {quota}}}],
                "clients": [{{"id": "{account}-map", "account": "{account}", "kind": "JavaScript",
                 "roles": ["Evaluator"], "allowed_origins": ["https://maps.test"],
                 "allow_missing_origin": true, "api_key": "{API_KEY}"}}]}}"#
        ),
    )
    .unwrap();
    let exe = tokio::task::spawn_blocking(example_server).await.unwrap();
    let servers = [Server::start(&exe, &clients), Server::start(&exe, &clients)];
    let addrs = [servers[0].addr, servers[1].addr];

    let tiles = quota * 1_000 / TILE_COST;
    let sent = Arc::new(AtomicUsize::new(0));
    let total = usize::try_from(tiles).unwrap() + 1_000;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let sent = sent.clone();
            tokio::spawn(async move {
                let (mut ok, mut over) = (0u64, 0u64);
                loop {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        return (ok, over);
                    }
                    let path = format!("/tiles/3/1/2.png?apikey={API_KEY}");
                    match status(addrs[n % 2], &path).await {
                        200 => ok += 1,
                        429 => over += 1,
                        other => panic!("unexpected {other}"),
                    }
                }
            })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for task in tasks {
        let (ok, over) = task.await.unwrap();
        admitted += ok;
        refused += over;
    }
    assert!(admitted <= tiles, "{admitted} tiles admitted of {tiles}");
    assert!(
        admitted * 1000 >= tiles * 999,
        "{admitted} tiles admitted of {tiles}"
    );
    assert_eq!(admitted + refused, total as u64);

    let [a, b] = servers;
    for said in [a.stop(), b.stop()] {
        assert!(said.contains("quota blocks given back"), "{said}");
    }
    let reader = RedisUsageCounter::new(connection().await);
    let account = AccountId::new(&account).unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    assert_eq!(
        reader.used(&account, today).await.unwrap(),
        admitted * TILE_COST,
        "once both stopped, Redis holds exactly what was served"
    );
}
