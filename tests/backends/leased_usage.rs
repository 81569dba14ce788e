//! `LeasedUsageCounter` against the Redis at `REDIS_URL`: several counters (instances) in one
//! test charging one account's quota from blocks they lease, what they admit against what
//! the quota allows, how many Redis calls they make, what they give back (on shutdown, when
//! blocks age), the statistics they write, and what an outage does. A last test runs two
//! example-server processes sharing Redis with `--quota-leases`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gis_auth::client::{AccountId, ClientId};
use gis_auth::clock::{Clock, ManualClock};
use gis_auth::limits::{
    ApiUsage, Charge, LeasedUsageCounter, RedisUsageCounter, Refused, SEEN_KEPT, Seen, UsageCounter,
};
use gis_auth::policy::{Rule, TRANSACTION};
use gis_auth::restrict::RequestOrigin;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use time::Date;
use time::macros::{date, datetime};

use crate::services::eventually;
use crate::services::redis::{Prefix, connection, patient_connection, relay, url_through};

const DAY: Date = date!(2026 - 06 - 01);

fn ids() -> (AccountId, ClientId) {
    (
        AccountId::new("acme").unwrap(),
        ClientId::new("web").unwrap(),
    )
}

fn clock() -> ManualClock {
    ManualClock::new(datetime!(2026-06-01 12:00 UTC))
}

/// A counter (one instance) under `prefix` on its own clock.
fn leased(conn: ConnectionManager, prefix: &Prefix, clock: &ManualClock) -> LeasedUsageCounter {
    LeasedUsageCounter::new(conn)
        .key_prefix(&prefix.prefix)
        .clock(Arc::new(clock.clone()))
}

/// The exact counter, reading what every instance wrote.
async fn reader(prefix: &Prefix) -> RedisUsageCounter {
    RedisUsageCounter::new(connection().await)
        .key_prefix(&prefix.prefix)
        .clock(Arc::new(clock()))
}

/// One transaction against a daily quota of `quota` transactions.
fn tile<'a>(account: &'a AccountId, client: &'a ClientId, quota: u64) -> Charge<'a> {
    Charge {
        limit: Some(quota * TRANSACTION),
        ..Charge::new(account, client, DAY, TRANSACTION)
    }
}

/// Charges one transaction `n` times, the clock moving `step` before each: a sustained
/// rate. How many were admitted.
async fn sustained(
    counter: &LeasedUsageCounter,
    clock: &ManualClock,
    quota: u64,
    n: usize,
    step: i64,
) -> u64 {
    let (a, c) = ids();
    let mut admitted = 0;
    for _ in 0..n {
        clock.advance(time::Duration::milliseconds(step));
        admitted += u64::from(counter.charge(&tile(&a, &c, quota)).await.unwrap().admitted);
    }
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_instances_hammering_one_quota_never_exceed_it_and_spend_at_least_999_per_mille() {
    let prefix = Prefix::new("lease_exact");
    let quota = 20_000;
    let mut counters = Vec::new();
    for _ in 0..8 {
        let clock = clock();
        counters.push((
            leased(patient_connection().await, &prefix, &clock).timeout(Duration::from_secs(60)),
            clock,
        ));
    }
    // Four concurrent request streams per instance, each until the quota refuses it.
    let mut tasks = Vec::new();
    for (counter, clock) in &counters {
        for _ in 0..4 {
            let (counter, clock) = (counter.clone(), clock.clone());
            tasks.push(tokio::spawn(async move {
                let (a, c) = ids();
                let mut admitted = 0u64;
                loop {
                    clock.advance(time::Duration::milliseconds(1));
                    let charged = counter.charge(&tile(&a, &c, quota)).await.unwrap();
                    if !charged.admitted {
                        assert!(charged.over, "refused for the daily quota");
                        return admitted;
                    }
                    admitted += 1;
                }
            }));
        }
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.unwrap();
    }
    assert!(admitted <= quota, "{admitted} admitted of {quota}");
    assert!(
        admitted * 1000 >= quota * 999,
        "{admitted} admitted of {quota}"
    );
    for (counter, _) in &counters {
        counter.shutdown().await.unwrap();
    }
    let (a, _) = ids();
    let reader = reader(&prefix).await;
    assert_eq!(
        reader.used(&a, DAY).await.unwrap(),
        admitted * TRANSACTION,
        "once every instance stopped, Redis holds exactly what was admitted"
    );
    let usage = reader.usage(&a, DAY, DAY).await.unwrap();
    assert_eq!(usage[0].requests, admitted);
    assert_eq!(usage[0].cost, admitted * TRANSACTION);
    assert_eq!(
        usage[0].refusals["quota_exceeded"], 32,
        "one refusal per stream"
    );
    let calls: u64 = counters.iter().map(|(c, _)| c.redis_calls()).sum();
    assert!(
        calls * 10 < admitted,
        "{calls} Redis calls for {admitted} requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_from_its_quota_an_instance_makes_at_most_one_redis_call_per_100_requests() {
    let prefix = Prefix::new("lease_calls");
    let quota = 10_000_000;
    let mut runs = Vec::new();
    for _ in 0..4 {
        let clock = clock();
        let counter = leased(patient_connection().await, &prefix, &clock);
        runs.push(tokio::spawn(async move {
            // 500 requests a second on each instance, for ten seconds of its clock.
            let admitted = sustained(&counter, &clock, quota, 5_000, 2).await;
            let calls = counter.redis_calls();
            counter.shutdown().await.unwrap();
            (admitted, calls)
        }));
    }
    let mut total = 0;
    for run in runs {
        let (admitted, calls) = run.await.unwrap();
        assert_eq!(admitted, 5_000);
        assert!(calls <= 50, "{calls} Redis calls for 5,000 requests");
        total += admitted;
    }
    let (a, _) = ids();
    assert_eq!(
        reader(&prefix).await.used(&a, DAY).await.unwrap(),
        total * TRANSACTION
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_unreachable_the_block_in_hand_is_spent_then_charges_fail_and_admit_nothing() {
    let prefix = Prefix::new("lease_outage");
    let link = relay().await;
    let clock = clock();
    let counter = LeasedUsageCounter::connect(&url_through(&link))
        .await
        .unwrap()
        .key_prefix(&prefix.prefix)
        .clock(Arc::new(clock.clone()))
        .timeout(Duration::from_millis(300));
    let quota = 1_000_000;
    let before = sustained(&counter, &clock, quota, 600, 2).await;
    let held = counter.held();
    assert!(held >= 10 * TRANSACTION, "a block is held: {held}");
    link.cut();
    let (a, c) = ids();
    let mut admitted = 0;
    let failed = loop {
        let started = Instant::now();
        match counter.charge(&tile(&a, &c, quota)).await {
            Ok(charged) => {
                assert!(charged.admitted);
                admitted += 1;
            }
            Err(_) => break started.elapsed(),
        }
        assert!(
            admitted * TRANSACTION <= held,
            "admitted beyond the block held"
        );
    };
    assert_eq!(admitted * TRANSACTION, held, "exactly the block in hand");
    assert!(failed < Duration::from_secs(1), "failed in {failed:?}");
    for _ in 0..20 {
        assert!(
            counter.charge(&tile(&a, &c, quota)).await.is_err(),
            "never free service"
        );
    }
    link.restore();
    let back = eventually(Duration::from_secs(10), || async {
        counter.charge(&tile(&a, &c, quota)).await.is_ok()
    })
    .await;
    assert!(back, "leases again once Redis is back");
    counter.shutdown().await.unwrap();
    let served = before + admitted + 1;
    let reader = reader(&prefix).await;
    assert_eq!(reader.used(&a, DAY).await.unwrap(), served * TRANSACTION);
    let usage = reader.usage(&a, DAY, DAY).await.unwrap();
    assert_eq!(
        usage[0].requests, served,
        "the counts kept while Redis was away are written"
    );
}

#[tokio::test]
async fn shutdown_gives_back_what_the_instance_holds_and_later_charges_fail() {
    let prefix = Prefix::new("lease_stop");
    let clock = clock();
    let counter = leased(connection().await, &prefix, &clock);
    let admitted = sustained(&counter, &clock, 1_000_000, 300, 2).await;
    let (a, c) = ids();
    let reader = reader(&prefix).await;
    let held = counter.held();
    assert!(held > 0);
    assert_eq!(
        reader.used(&a, DAY).await.unwrap(),
        admitted * TRANSACTION + held,
        "a block counts as used while it is held"
    );
    counter.shutdown().await.unwrap();
    assert_eq!(counter.held(), 0);
    assert_eq!(reader.used(&a, DAY).await.unwrap(), admitted * TRANSACTION);
    assert_eq!(
        reader.monthly_used(&a, DAY).await.unwrap(),
        admitted * TRANSACTION
    );
    assert!(counter.charge(&tile(&a, &c, 1_000_000)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_older_than_its_maximum_age_goes_back_by_itself() {
    let prefix = Prefix::new("lease_age");
    let clock = clock();
    let counter = leased(connection().await, &prefix, &clock)
        .lease_max_age(Duration::from_secs(3))
        .flush_interval(Duration::from_millis(20));
    let admitted = sustained(&counter, &clock, 1_000_000, 300, 2).await;
    assert!(counter.held() > 0);
    let (a, _) = ids();
    let reader = reader(&prefix).await;
    clock.advance(time::Duration::seconds(2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(counter.held() > 0, "younger than 3 s: still held");
    clock.advance(time::Duration::seconds(2));
    let back = eventually(Duration::from_secs(5), || async {
        reader.used(&a, DAY).await.unwrap() == admitted * TRANSACTION
    })
    .await;
    assert!(back, "the block went back");
    assert_eq!(counter.held(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_and_unleased_usage_are_written_within_a_second_in_one_call() {
    let prefix = Prefix::new("lease_stats");
    let clock = clock();
    let counter = leased(connection().await, &prefix, &clock);
    let (a, c) = ids();
    let free = AccountId::new("free").unwrap();
    // No quota: counted in memory, no lease.
    for _ in 0..3 {
        let charged = counter
            .charge(&Charge::new(&free, &c, DAY, 500))
            .await
            .unwrap();
        assert!(charged.admitted);
    }
    // A report-only quota: admitted over it, and found over.
    let report_only = Charge {
        limit: Some(1_000),
        enforce: false,
        shadowed: &[Rule::Origins],
        ..Charge::new(&a, &c, DAY, 800)
    };
    assert!(!counter.charge(&report_only).await.unwrap().over);
    let second = counter.charge(&report_only).await.unwrap();
    assert!(second.admitted && second.over);
    assert_eq!(second.used, 1_600);
    counter
        .record_refusal(&Refused::new(&a, &c, DAY, Rule::Ips))
        .await
        .unwrap();
    assert_eq!(counter.redis_calls(), 0, "nothing needed a round trip");

    let reader = reader(&prefix).await;
    let started = Instant::now();
    let written = eventually(Duration::from_secs(3), || async {
        reader.used(&free, DAY).await.unwrap() == 1_500
    })
    .await;
    assert!(
        written && started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(counter.redis_calls(), 1, "one call wrote everything");
    let usage = reader.usage(&a, DAY, DAY).await.unwrap();
    assert_eq!(usage[0].requests, 2);
    assert_eq!(usage[0].cost, 1_600);
    assert_eq!(usage[0].shadowed["quota"], 1);
    assert_eq!(usage[0].shadowed["origins"], 2);
    assert_eq!(usage[0].refusals["ips"], 1);
    assert_eq!(reader.used(&a, DAY).await.unwrap(), 1_600);
    assert_eq!(reader.monthly_used(&free, DAY).await.unwrap(), 1_500);
    // Read through the leased counter, the usage is the same.
    assert_eq!(counter.usage(&a, DAY, DAY).await.unwrap(), usage);
    counter.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_monthly_quota_is_leased_with_the_daily_one_and_refuses_what_does_not_fit_it() {
    let prefix = Prefix::new("lease_month");
    let clock = clock();
    let counter = leased(connection().await, &prefix, &clock);
    let (a, c) = ids();
    let charge = Charge {
        limit: Some(1_000 * TRANSACTION),
        monthly_limit: Some(50 * TRANSACTION),
        ..Charge::new(&a, &c, DAY, TRANSACTION)
    };
    let mut admitted = 0;
    for _ in 0..60 {
        clock.advance(time::Duration::milliseconds(2));
        let charged = counter.charge(&charge).await.unwrap();
        if charged.admitted {
            admitted += 1;
        } else {
            assert!(charged.over_monthly && !charged.over);
            assert_eq!(charged.monthly_used, 50 * TRANSACTION);
        }
    }
    assert_eq!(admitted, 50);
    counter.shutdown().await.unwrap();
    let reader = reader(&prefix).await;
    assert_eq!(
        reader.monthly_used(&a, DAY).await.unwrap(),
        50 * TRANSACTION
    );
    assert_eq!(reader.used(&a, DAY).await.unwrap(), 50 * TRANSACTION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_layer_the_block_in_hand_is_served_then_redis_away_is_a_503_in_time() {
    use bytes::Bytes;
    use gis_auth::AuthLayer;
    use gis_auth::client::{Account, Role, RoleSet};
    use gis_auth::policy::{Api, Cost, RouteTable};
    use gis_auth::store::InMemoryStore;
    use http::{Method, Request, Response, StatusCode};
    use http_body_util::Full;
    use tower::util::BoxCloneService;

    type Svc = BoxCloneService<
        Request<Full<Bytes>>,
        Response<gis_auth::layer::ResponseBody<Full<Bytes>>>,
        std::convert::Infallible,
    >;
    async fn status(svc: &Svc, key: &str) -> StatusCode {
        use tower::ServiceExt;
        let req = Request::get(format!("/geocode?q=x&apikey={key}"))
            .body(Full::default())
            .unwrap();
        svc.clone().oneshot(req).await.unwrap().status()
    }

    let prefix = Prefix::new("lease_layer");
    let link = relay().await;
    let store = Arc::new(InMemoryStore::new());
    let made = store
        .open_account(
            Account::new(
                AccountId::new("acme").unwrap(),
                "Acme",
                RoleSet::from_iter([Role::EVALUATOR]),
            )
            .unwrap()
            .with_daily_quota(Some(1_000_000)),
        )
        .unwrap();
    let key = made.javascript.credential.expose().to_owned();
    let clock = clock();
    let counter = LeasedUsageCounter::connect(&url_through(&link))
        .await
        .unwrap()
        .key_prefix(&prefix.prefix)
        .clock(Arc::new(clock.clone()))
        .timeout(Duration::from_millis(300));
    let routes = RouteTable::new()
        .route(
            Method::GET,
            "/geocode",
            Api::new("Geocoder", [Role::EVALUATOR])
                .plugin(true)
                .cost(Cost::Fixed(TRANSACTION)),
        )
        .unwrap();
    let svc = tower::ServiceBuilder::new()
        .layer(
            AuthLayer::new(store, routes)
                .usage_counter(Arc::new(counter.clone()))
                .backend_timeout(Some(Duration::from_secs(1)))
                .clock(Arc::new(clock.clone())),
        )
        .service(tower::service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }));
    let svc: Svc = BoxCloneService::new(svc);
    for _ in 0..300 {
        clock.advance(time::Duration::milliseconds(2));
        assert_eq!(status(&svc, &key).await, StatusCode::OK);
    }
    let held = counter.held();
    assert!(held >= TRANSACTION);
    link.cut();
    for _ in 0..held / TRANSACTION {
        assert_eq!(
            status(&svc, &key).await,
            StatusCode::OK,
            "the block in hand serves"
        );
    }
    let started = Instant::now();
    assert_eq!(status(&svc, &key).await, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        status(&svc, &key).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "never beyond the block"
    );
}

#[tokio::test]
async fn apis_seen_values_and_last_uses_reach_redis_at_flush_as_the_exact_counter_writes_them() {
    let prefix = Prefix::new("lease_seen");
    let clock = clock();
    let counter =
        leased(connection().await, &prefix, &clock).flush_interval(Duration::from_secs(3600));
    let (a, c) = ids();
    let from_x = Seen::new(
        RequestOrigin::from_origin_header("https://x.example"),
        Some("203.0.113.9".parse().unwrap()),
    );
    let tiles = Charge {
        api: Some("WorldStreets"),
        at: Some(clock.now()),
        ..tile(&a, &c, 1_000)
    };
    counter.charge(&tiles).await.unwrap();
    counter.charge(&tiles).await.unwrap();
    let geocode = Charge {
        api: Some("ReverseGeocoding"),
        shadowed: &[Rule::Origins],
        seen: Some(&from_x),
        ..Charge::new(&a, &c, DAY, 5 * TRANSACTION)
    };
    counter.charge(&geocode).await.unwrap();
    let refused = Refused::new(&a, &c, DAY, Rule::Ips)
        .seen(Some(&from_x))
        .at(clock.now() + time::Duration::minutes(3));
    counter.record_refusal(&refused).await.unwrap();
    // Unflushed, the instance's own last use already answers.
    assert_eq!(
        counter.last_used(&a).await.unwrap()[&c],
        datetime!(2026-06-01 12:03 UTC)
    );
    let reader = reader(&prefix).await;
    assert!(
        reader.last_used(&a).await.unwrap().is_empty(),
        "not written yet"
    );

    // Many origins of one client and day go to Redis bounded; a heavy one survives.
    for i in 0..40 {
        let once = Seen::new(
            RequestOrigin::from_origin_header(&format!("https://o{i}.example")),
            None,
        );
        let refused = Refused::new(&a, &c, DAY, Rule::Origins);
        counter
            .record_refusal(&refused.seen(Some(&once)))
            .await
            .unwrap();
        if i % 4 == 0 {
            counter
                .record_refusal(&refused.seen(Some(&from_x)))
                .await
                .unwrap();
        }
    }
    counter.flush().await.unwrap();
    let row = &reader.usage(&a, DAY, DAY).await.unwrap()[0];
    assert_eq!(row.apis["WorldStreets"], ApiUsage::new(2, 2 * TRANSACTION));
    assert_eq!(
        row.apis["ReverseGeocoding"],
        ApiUsage::new(1, 5 * TRANSACTION)
    );
    assert_eq!(
        (row.origins[0].value.as_str(), row.origins[0].count),
        ("https://x.example", 12),
        "the heavy origin survives"
    );
    assert_eq!(
        (row.networks[0].value.as_str(), row.networks[0].count),
        ("203.0.113.0/24", 12)
    );
    let mut conn = connection().await;
    let key = format!("{}seen-origins:acme:2026-06-01:web", prefix.prefix);
    let members: usize = conn.zcard(&key).await.unwrap();
    assert!(members <= SEEN_KEPT, "bounded: {members}");
    assert_eq!(
        reader.last_used(&a).await.unwrap()[&c],
        datetime!(2026-06-01 12:03 UTC)
    );

    // At most once a minute: the same minute is not written again.
    let last_key = format!("{}last-used:acme", prefix.prefix);
    let () = conn.del(&last_key).await.unwrap();
    clock.advance(time::Duration::minutes(3) + time::Duration::seconds(30));
    counter
        .charge(&Charge {
            at: Some(clock.now()),
            ..tiles
        })
        .await
        .unwrap();
    counter.flush().await.unwrap();
    let exists: bool = conn.exists(&last_key).await.unwrap();
    assert!(!exists, "12:03 was written already");
    clock.advance(time::Duration::minutes(1));
    counter
        .charge(&Charge {
            at: Some(clock.now()),
            ..tiles
        })
        .await
        .unwrap();
    counter.flush().await.unwrap();
    assert_eq!(
        reader.last_used(&a).await.unwrap()[&c],
        datetime!(2026-06-01 12:04 UTC)
    );
    counter.shutdown().await.unwrap();
}
