//! Stores shared with others: concurrent writers lose no update, usage read from Redis, and
//! a PostgreSQL store managed like a file.

use super::*;

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
        let url = crate::local_services::redis_url();
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
    use gis_auth::limits::{Charge, RedisUsageCounter, Refused, Seen, UsageCounter};
    use gis_auth::restrict::RequestOrigin;

    let (store, created) = Store::with_acme();
    let web = ClientId::new(str_of(&created["clients"][0], "id")).expect("an id");
    let acme = AccountId::new("acme").expect("an id");
    let prefix = RedisPrefix::new();
    let url = prefix.url.clone();
    // The counter keeps days on the system clock: count today.
    let now = time::OffsetDateTime::now_utc();
    let today = now.date();
    block(async {
        let counter = RedisUsageCounter::connect(&url)
            .await
            .expect("Redis at REDIS_URL")
            .key_prefix(prefix.prefix.clone());
        for _ in 0..3 {
            let charge = Charge {
                api: Some("WorldStreets"),
                at: Some(now),
                ..Charge::new(&acme, &web, today, 100)
            };
            counter.charge(&charge).await.expect("charged");
        }
        let seen = Seen::new(
            RequestOrigin::from_origin_header("https://partner.example"),
            Some("203.0.113.40".parse().expect("an address")),
        );
        let refused =
            Refused::new(&acme, &web, today, gis_auth::policy::Rule::Origins).seen(Some(&seen));
        counter.record_refusal(&refused).await.expect("recorded");
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
    assert_eq!(row["refusals"]["origins"], 1);
    assert_eq!(row["apis"]["WorldStreets"]["requests"], 3);
    assert_eq!(row["origins"][0]["origin"], "https://partner.example");
    assert_eq!(row["networks"][0]["network"], "203.0.113.0/24");
    let table = store.ok(&args);
    assert!(table.contains("DATE"), "{table}");
    assert!(table.contains("origins 1"), "{table}");
    assert!(table.contains("WorldStreets 3/0.3"), "{table}");
    assert!(table.contains("203.0.113.0/24"), "{table}");

    // Every client representation has its last use, to the minute.
    let shared = ["--redis", url.as_str(), "--redis-prefix", &prefix.prefix];
    let minute = gis_auth::limits::last_use_minute(now)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let show = store.json(&[&["client", "show", web.as_str()][..], &shared].concat());
    assert_eq!(show["last_used_at"], minute.as_str());
    let list = store.json(&[&["client", "list"][..], &shared].concat());
    let clients = list["clients"].as_array().expect("a list");
    assert!(
        clients.iter().any(|c| c["last_used_at"] == minute.as_str()),
        "{list}"
    );
    assert!(
        clients.iter().any(|c| c["last_used_at"].is_null()),
        "one never used: {list}"
    );
    let table = store.ok(&[&["client", "list"][..], &shared].concat());
    assert!(
        table.contains("LAST USED") && table.contains("never"),
        "{table}"
    );

    // recommend proposes what was seen, to try report-only.
    let advice = store.json(&[&["recommend", "--client", web.as_str()][..], &shared].concat());
    assert_eq!(advice["allowed_ips"], serde_json::json!(["203.0.113.0/24"]));
    assert!(
        advice["command"]
            .as_str()
            .is_some_and(|c| c.contains("--shadow")),
        "{advice}"
    );
    let text = store.ok(&[
        &["recommend", "--client", web.as_str(), "--days", "1"][..],
        &shared,
    ]
    .concat());
    assert!(text.contains("https://partner.example"), "{text}");
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
        let base = crate::local_services::database_url();
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
