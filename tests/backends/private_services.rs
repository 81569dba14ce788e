//! The private servers the tests start when `DATABASE_URL` / `REDIS_URL` are unset and
//! nothing answers on the default ports ([`local_services`](crate::local_services)): started
//! here directly, whatever this machine runs, then used, stopped, and checked gone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::local_services::{PrivateServer, Service, answers, missing_message, process_gone};

/// The port in a server's URL.
fn port_of(url: &str) -> u16 {
    url.rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
        .expect("a port in the URL")
}

/// Checks, for up to 30 s, that process `pid`, `port` and `dir` are gone.
fn check_gone(pid: u32, port: u16, dir: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(process_gone(pid) && dir.symlink_metadata().is_err())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(process_gone(pid), "process {pid} still runs");
    assert!(!answers(port), "port {port} still answers");
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

/// Stops `server` and checks that its process, its port and its folder are gone.
fn stop_and_check_gone(server: PrivateServer) {
    let (pid, port, dir) = (server.pid, port_of(&server.url), server.dir.clone());
    server.stop();
    check_gone(pid, port, &dir);
}

/// Set for the process [`a_private_server_stops_when_its_test_process_dies`] starts.
const LEAVE_RUNNING: &str = "GIS_AUTH_TEST_LEAVE_A_SERVER_RUNNING";

/// In the process of its own that
/// [`a_private_server_stops_when_its_test_process_dies`] starts (and nowhere else: it
/// passes at once without [`LEAVE_RUNNING`]): starts a private Redis, says where, and
/// aborts, stopping nothing and dropping nothing.
#[test]
fn a_process_that_dies_with_a_private_server_running() {
    if std::env::var_os(LEAVE_RUNNING).is_none() {
        return;
    }
    let server = PrivateServer::start(Service::Redis).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "left running: {} {} {}",
        server.pid,
        port_of(&server.url),
        server.dir.display()
    );
    std::process::abort();
}

#[test]
fn a_private_server_stops_when_its_test_process_dies() {
    let ran = std::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "private_services::a_process_that_dies_with_a_private_server_running",
            "--nocapture",
        ])
        .env(LEAVE_RUNNING, "1")
        .output()
        .expect("the test binary runs");
    assert!(!ran.status.success(), "it aborted");
    let out = String::from_utf8_lossy(&ran.stdout);
    let left = out
        .lines()
        .find_map(|line| line.strip_prefix("left running: "))
        .unwrap_or_else(|| panic!("no server started: {out}"));
    let mut fields = left.split(' ');
    let pid: u32 = fields.next().and_then(|f| f.parse().ok()).expect("a pid");
    let port: u16 = fields.next().and_then(|f| f.parse().ok()).expect("a port");
    let dir = PathBuf::from(fields.next().expect("a folder"));
    check_gone(pid, port, &dir);
}

#[cfg(feature = "postgres")]
#[test]
fn a_private_postgres_is_started_answers_queries_and_is_stopped() {
    use sqlx::Connection;

    let server = PrivateServer::start(Service::Postgres).unwrap_or_else(|e| panic!("{e}"));
    assert!(!process_gone(server.pid));
    assert!(server.dir.exists());
    let url = server.url.clone();
    let answer: i32 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connects");
            let answer = sqlx::query_scalar("SELECT 40 + 2")
                .fetch_one(&mut conn)
                .await
                .expect("answers");
            conn.close().await.expect("closes");
            answer
        });
    assert_eq!(answer, 42);
    stop_and_check_gone(server);
}

#[cfg(feature = "redis")]
#[test]
fn a_private_redis_is_started_answers_ping_and_is_stopped() {
    let server = PrivateServer::start(Service::Redis).unwrap_or_else(|e| panic!("{e}"));
    assert!(!process_gone(server.pid));
    let client = redis::Client::open(server.url.as_str()).expect("a Redis URL");
    let mut conn = client.get_connection().expect("connects");
    let pong: String = redis::cmd("PING").query(&mut conn).expect("answers");
    assert_eq!(pong, "PONG");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("writes");
    drop(conn);
    stop_and_check_gone(server);
}

#[test]
fn one_message_names_every_package_to_install() {
    let both = missing_message(&[Service::Postgres, Service::Redis]);
    assert!(
        both.contains("apt-get install postgresql redis-server"),
        "{both}"
    );
    assert!(both.contains("DATABASE_URL and REDIS_URL"), "{both}");
    let one = missing_message(&[Service::Redis]);
    assert!(one.contains("apt-get install redis-server"), "{one}");
    assert!(!one.contains("postgresql"), "{one}");
}
