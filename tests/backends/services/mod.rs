//! The real services the persistence tests run against: PostgreSQL at `DATABASE_URL` and
//! Redis at `REDIS_URL`, or where [`local_services`](crate::local_services) finds or starts
//! them when the variables are unset. Each test gets a schema or a key prefix of its own,
//! removed when it ends (even when it fails), so tests run in parallel and leave nothing
//! behind. A service that is neither given, running nor installed fails the test: these
//! tests never skip.
//!
//! [`Link`] is a TCP relay in front of a service that a test can cut and restore, to see
//! what happens when the service goes away and comes back.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other test, and no other run of the tests, uses at the same time.
pub fn unique(tag: &str) -> String {
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).expect("random bytes");
    format!(
        "t_{tag}_{}_{}_{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        u32::from_le_bytes(random)
    )
}

/// Polls `condition` every 10 ms until it holds or `limit` has passed; whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A TCP relay to `target` on a port of its own; [`cut`](Link::cut) drops every relayed
/// connection and refuses new ones until [`restore`](Link::restore).
pub struct Link {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Link {
    pub async fn to(target: SocketAddr) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let (up, open) = (up.clone(), open.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        // Refused: closed at once.
                        continue;
                    }
                    let relay = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    open.lock().unwrap().push(relay.abort_handle());
                }
            })
            .abort_handle()
        };
        Link {
            addr,
            up,
            open,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for relay in self.open.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

fn socket_of(host: &str, port: u16) -> SocketAddr {
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .expect("the service's host resolves")
        .next()
        .expect("the service's host has an address")
}

#[cfg(feature = "postgres")]
pub mod postgres {
    use std::str::FromStr;
    use std::time::Duration;

    use gis_auth::store::PostgresStore;
    use sqlx::ConnectOptions;
    use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

    use super::{Link, socket_of, unique};

    pub fn database_url() -> String {
        crate::local_services::database_url()
    }

    pub fn connect_options() -> PgConnectOptions {
        PgConnectOptions::from_str(&database_url()).expect("DATABASE_URL is a PostgreSQL URL")
    }

    /// A schema of the test's own, dropped with everything in it when this is dropped.
    pub struct Schema {
        pub name: String,
    }

    impl Schema {
        pub async fn create(tag: &str) -> Schema {
            let name = unique(tag);
            let mut conn = connect_options()
                .connect()
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at DATABASE_URL is unreachable: {e}"));
            sqlx::query(&format!("CREATE SCHEMA {name}"))
                .execute(&mut conn)
                .await
                .expect("a schema for the test");
            Schema { name }
        }

        /// Connection options whose `search_path` is the schema.
        pub fn options(&self) -> PgConnectOptions {
            connect_options().options([("search_path", self.name.as_str())])
        }

        /// A pool of up to 5 connections in the schema.
        pub async fn pool(&self) -> PgPool {
            self.pool_with(self.options()).await
        }

        async fn pool_with(&self, options: PgConnectOptions) -> PgPool {
            PgPoolOptions::new()
                .max_connections(5)
                .acquire_timeout(Duration::from_secs(1))
                .connect_with(options)
                .await
                .expect("a pool in the test's schema")
        }

        /// A migrated store in the schema, announcing changes on a channel named after it
        /// (so that parallel tests do not hear each other).
        pub async fn store(&self) -> PostgresStore {
            let store = PostgresStore::new(self.pool().await)
                .notify_channel(&self.name)
                .expect("a valid channel");
            store.migrate().await.expect("migrations apply");
            store
        }

        /// A store in the schema reached through `link` (see [`Schema::relay`]).
        pub async fn store_through(&self, link: &Link) -> PostgresStore {
            let options = self
                .options()
                .host(&link.addr().ip().to_string())
                .port(link.addr().port());
            let store = PostgresStore::new(self.pool_with(options).await)
                .notify_channel(&self.name)
                .expect("a valid channel");
            store.migrate().await.expect("migrations apply");
            store
        }

        /// A relay to the database server.
        pub async fn relay(&self) -> Link {
            let options = connect_options();
            Link::to(socket_of(options.get_host(), options.get_port())).await
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            let name = self.name.clone();
            // Drop cannot wait on the test's runtime: a thread with a runtime of its own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async {
                    let mut conn = connect_options().connect().await?;
                    // A transaction left open by a failed test must not hang the run.
                    sqlx::query("SET lock_timeout = '10s'")
                        .execute(&mut conn)
                        .await?;
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .execute(&mut conn)
                        .await
                        .map(|_| ())
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
                panic!("the test schema {} could not be dropped", self.name);
            }
        }
    }
}

#[cfg(feature = "redis")]
pub mod redis {
    use gis_auth::limits::redis_connection;
    use redis::aio::ConnectionManager;

    use super::{Link, socket_of, unique};

    pub fn redis_url() -> String {
        crate::local_services::redis_url()
    }

    pub async fn connection() -> ConnectionManager {
        redis_connection(&redis_url())
            .await
            .unwrap_or_else(|e| panic!("Redis at REDIS_URL is unreachable: {e}"))
    }

    /// A connection that waits as long as it takes: for tests of exactness under load,
    /// where thousands of requests queue on one connection.
    pub async fn patient_connection() -> ConnectionManager {
        let client = redis::Client::open(redis_url()).expect("REDIS_URL is a Redis URL");
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(60)));
        client
            .get_connection_manager_with_config(config)
            .await
            .unwrap_or_else(|e| panic!("Redis at REDIS_URL is unreachable: {e}"))
    }

    /// A relay to the Redis server.
    pub async fn relay() -> Link {
        let client = redis::Client::open(redis_url()).expect("REDIS_URL is a Redis URL");
        let (host, port) = match client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            other => panic!("REDIS_URL is not a TCP address: {other:?}"),
        };
        Link::to(socket_of(&host, port)).await
    }

    /// The URL of the Redis server reached through `link`.
    pub fn url_through(link: &Link) -> String {
        format!("redis://{}/", link.addr())
    }

    /// A key prefix of the test's own; every key under it is deleted when this is dropped.
    pub struct Prefix {
        pub prefix: String,
        /// The server's URL, found before the prefix exists: a test without one fails
        /// there, not again while dropping.
        url: String,
    }

    impl Prefix {
        pub fn new(tag: &str) -> Prefix {
            Prefix::exactly(format!("gis-auth-test:{}:", unique(tag)))
        }

        /// The keys under `prefix`, as given (such as a server's default prefix and a
        /// unique account id), removed when the test ends.
        pub fn exactly(prefix: String) -> Prefix {
            Prefix {
                url: redis_url(),
                prefix,
            }
        }

        /// The keys under the prefix now.
        pub fn keys(&self) -> Vec<String> {
            let client = redis::Client::open(self.url.as_str()).expect("a Redis URL");
            let mut conn = client
                .get_connection()
                .unwrap_or_else(|e| panic!("Redis at REDIS_URL is unreachable: {e}"));
            let keys: redis::Iter<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter(&mut conn)
                .expect("SCAN");
            keys.collect::<Result<_, _>>().expect("SCAN")
        }
    }

    impl Drop for Prefix {
        fn drop(&mut self) {
            let keys = self.keys();
            if keys.is_empty() {
                return;
            }
            let client = redis::Client::open(self.url.as_str()).expect("a Redis URL");
            let deleted: redis::RedisResult<()> = client
                .get_connection()
                .and_then(|mut conn| redis::cmd("DEL").arg(&keys).query(&mut conn));
            if deleted.is_err() && !std::thread::panicking() {
                panic!("the test keys under {} could not be deleted", self.prefix);
            }
        }
    }
}
