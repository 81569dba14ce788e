//! Quota leases across in-process instances sharing one real Redis (`REDIS_URL`, by default
//! `redis://127.0.0.1:6379`): 2, 8 and 32 [`LeasedUsageCounter`]s, each with a connection of
//! its own and one task charging one account as fast as it can, on the system clock.
//!
//! For each count of instances, two runs:
//! - far from the quota: every instance charges 20,000 requests of one transaction against
//!   a daily quota of a billion transactions; the figure is Redis calls per request;
//! - to the end of the quota: the instances charge a quota of 100,000 transactions until
//!   each is refused; the figures are Redis calls per request over the whole quota, and
//!   the transactions admitted over the quota (at most 1, at least 0.999).
//!
//! Run with `cargo bench --features redis --bench leases`. This is not a Criterion
//! benchmark: it prints one line per run, and fails if more is admitted than the quota
//! allows or less than 99.9 % of it. Keys are written under a prefix of the run's own and
//! deleted at the end. `cargo bench --features redis --bench leases -- --test` does one
//! short run (2 instances) only.

use std::time::Instant;

use gis_auth::client::{AccountId, ClientId};
use gis_auth::limits::{Charge, LeasedUsageCounter, RedisUsageCounter, UsageCounter};
use gis_auth::policy::TRANSACTION;
use redis::aio::ConnectionManager;

/// One run's figures.
struct Run {
    requests: u64,
    admitted: u64,
    calls: u64,
    seconds: f64,
}

async fn connect(url: &str) -> ConnectionManager {
    let client = redis::Client::open(url).expect("REDIS_URL is a Redis URL");
    client
        .get_connection_manager()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is unreachable: {e}"))
}

/// `instances` counters charging `quota` transactions; each stops after `per_instance`
/// requests or at its first refusal.
async fn run(url: &str, prefix: &str, instances: usize, quota: u64, per_instance: u64) -> Run {
    let mut counters = Vec::new();
    for _ in 0..instances {
        counters.push(LeasedUsageCounter::new(connect(url).await).key_prefix(prefix));
    }
    let day = time::OffsetDateTime::now_utc().date();
    let started = Instant::now();
    let tasks: Vec<_> = counters
        .iter()
        .cloned()
        .map(|counter| {
            tokio::spawn(async move {
                let (account, client) = (
                    AccountId::new("bench").expect("an id"),
                    ClientId::new("web").expect("an id"),
                );
                let charge = Charge {
                    limit: Some(quota * TRANSACTION),
                    ..Charge::new(&account, &client, day, TRANSACTION)
                };
                let (mut requests, mut admitted) = (0, 0);
                while requests < per_instance {
                    requests += 1;
                    let charged = match counter.charge_now(&charge) {
                        Some(answer) => answer,
                        None => counter.charge(&charge).await,
                    };
                    if !charged.expect("Redis answers").admitted {
                        break;
                    }
                    admitted += 1;
                }
                (requests, admitted)
            })
        })
        .collect();
    let (mut requests, mut admitted) = (0, 0);
    for task in tasks {
        let (r, a) = task.await.expect("a task");
        requests += r;
        admitted += a;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut calls = 0;
    for counter in &counters {
        calls += counter.redis_calls();
        counter.shutdown().await.expect("the blocks go back");
    }
    let reader = RedisUsageCounter::new(connect(url).await).key_prefix(prefix);
    let account = AccountId::new("bench").expect("an id");
    let used = reader.used(&account, day).await.expect("Redis answers");
    assert_eq!(
        used,
        admitted * TRANSACTION,
        "Redis holds what was admitted"
    );
    Run {
        requests,
        admitted,
        calls,
        seconds,
    }
}

async fn delete_keys(url: &str, prefix: &str) {
    let mut conn = connect(url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .expect("DEL");
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let counts: &[usize] = if quick { &[2] } else { &[2, 8, 32] };
    let (far, quota) = if quick {
        (2_000, 5_000)
    } else {
        (20_000, 100_000)
    };
    println!(
        "{:>9}  {:>28}  {:>40}",
        "instances", "far from the quota", "to the end of the quota"
    );
    println!(
        "{:>9}  {:>10} {:>17}  {:>10} {:>17} {:>11}",
        "", "requests", "calls/request", "requests", "calls/request", "admitted/quota"
    );
    runtime.block_on(async {
        for (n, &instances) in counts.iter().enumerate() {
            let prefix = format!("gis-auth-bench:{}:{n}:", std::process::id());
            let open = run(
                &url,
                &format!("{prefix}far:"),
                instances,
                1_000_000_000,
                far,
            )
            .await;
            let end = run(&url, &format!("{prefix}end:"), instances, quota, u64::MAX).await;
            delete_keys(&url, &prefix).await;
            let share = end.admitted as f64 / quota as f64;
            println!(
                "{instances:>9}  {:>10} {:>17.6}  {:>10} {:>17.6} {:>14.5}   ({:.2} s, {:.2} s)",
                open.requests,
                open.calls as f64 / open.requests as f64,
                end.requests,
                end.calls as f64 / end.requests as f64,
                share,
                open.seconds,
                end.seconds,
            );
            assert!(end.admitted <= quota, "more admitted than the quota");
            assert!(
                end.admitted * 1000 >= quota * 999,
                "less than 99.9 % admitted"
            );
            assert_eq!(
                open.admitted, open.requests,
                "far from the quota all is admitted"
            );
        }
    });
}
