//! `RedisUsageCounter` and `RedisRateLimiter` against the Redis at `REDIS_URL`: the in-memory
//! counter's and limiter's behaviours, shared by several connections, and what an outage
//! does (503 by default, admitted in fail-open mode, recovery either way). Each test writes
//! under a key prefix of its own and deletes its keys when it ends.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gis_auth::AuthLayer;
use gis_auth::client::{AccountId, ClientId, RateLimit, Role, RoleSet};
use gis_auth::clock::{Clock, ManualClock};
use gis_auth::limits::{
    ApiUsage, Charge, RedisUsageCounter, Refused, SEEN_KEPT, SEEN_REPORTED, Seen, UsageCounter,
    redis_connection,
};
use gis_auth::limits::{RateVerdict, RedisRateLimiter, SharedRateLimiter};
use gis_auth::policy::{Api, Cost, RouteTable, Rule, TRANSACTION};
use gis_auth::restrict::RequestOrigin;
use gis_auth::store::InMemoryStore;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use redis::AsyncCommands;
use time::macros::{date, datetime};
use tower::{Service, ServiceExt};

use crate::services::eventually;
use crate::services::redis::{Prefix, connection, patient_connection, relay, url_through};

fn ids() -> (AccountId, ClientId) {
    (
        AccountId::new("acme").unwrap(),
        ClientId::new("web").unwrap(),
    )
}

fn clock_at(t: time::OffsetDateTime) -> ManualClock {
    ManualClock::new(t)
}

async fn counter(prefix: &Prefix, clock: &ManualClock) -> RedisUsageCounter {
    RedisUsageCounter::new(connection().await)
        .key_prefix(&prefix.prefix)
        .clock(Arc::new(clock.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_charges_through_two_connections_admit_exactly_what_fits() {
    let prefix = Prefix::new("exact");
    let clock = clock_at(datetime!(2026-06-01 12:00 UTC));
    // Thousands of scripts queue on each connection: exactness is the point, not latency.
    let patient = |conn| {
        RedisUsageCounter::new(conn)
            .key_prefix(&prefix.prefix)
            .clock(Arc::new(clock.clone()))
            .timeout(Duration::from_secs(60))
    };
    let counters = [
        patient(patient_connection().await),
        patient(patient_connection().await),
    ];
    let (a, c) = ids();
    let tasks: Vec<_> = (0..10_000)
        .map(|n| {
            let (counter, a, c) = (counters[n % 2].clone(), a.clone(), c.clone());
            tokio::spawn(async move {
                let charge = Charge {
                    limit: Some(5_000 * 1000),
                    ..Charge::new(&a, &c, date!(2026 - 06 - 01), 1000)
                };
                counter.charge(&charge).await.unwrap().admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 5_000);
    let day = date!(2026 - 06 - 01);
    assert_eq!(counters[0].used(&a, day).await.unwrap(), 5_000_000);
    let usage = counters[1].usage(&a, day, day).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].requests, 5_000);
    assert_eq!(usage[0].cost, 5_000_000);
    assert_eq!(usage[0].refusals["quota_exceeded"], 5_000);
}

#[tokio::test]
async fn a_refused_charge_leaves_the_usage_as_it_was_and_says_so() {
    let prefix = Prefix::new("refused");
    let clock = clock_at(datetime!(2026-06-01 12:00 UTC));
    let counter = counter(&prefix, &clock).await;
    let (a, c) = ids();
    let charge = Charge {
        limit: Some(1_000),
        ..Charge::new(&a, &c, date!(2026 - 06 - 01), 600)
    };
    let first = counter.charge(&charge).await.unwrap();
    assert!(first.admitted && !first.over);
    assert_eq!(first.used, 600);
    let second = counter.charge(&charge).await.unwrap();
    assert!(!second.admitted && second.over);
    assert_eq!(second.used, 600, "unchanged when refused");
    // What still fits is admitted, exactly up to the limit.
    let rest = Charge {
        limit: Some(1_000),
        ..Charge::new(&a, &c, date!(2026 - 06 - 01), 400)
    };
    assert_eq!(counter.charge(&rest).await.unwrap().used, 1_000);
}

#[tokio::test]
async fn report_only_quota_admits_and_reports_over() {
    let prefix = Prefix::new("shadow");
    let clock = clock_at(datetime!(2026-06-01 12:00 UTC));
    let counter = counter(&prefix, &clock).await;
    let (a, c) = ids();
    let charge = Charge {
        limit: Some(1000),
        enforce: false,
        shadowed: &[Rule::Origins],
        ..Charge::new(&a, &c, date!(2026 - 06 - 01), 1000)
    };
    assert!(!counter.charge(&charge).await.unwrap().over);
    let second = counter.charge(&charge).await.unwrap();
    assert!(second.admitted && second.over);
    assert_eq!(second.used, 2000);
    let usage = counter
        .usage(&a, date!(2026 - 06 - 01), date!(2026 - 06 - 01))
        .await
        .unwrap();
    assert_eq!(usage[0].shadowed["quota"], 1);
    assert_eq!(usage[0].shadowed["origins"], 2);
}

#[tokio::test]
async fn unmetered_and_follow_up_charges_are_counted_as_the_in_memory_counter_counts_them() {
    let prefix = Prefix::new("meter");
    let clock = clock_at(datetime!(2026-06-01 12:00 UTC));
    let counter = counter(&prefix, &clock).await;
    let (a, c) = ids();
    let day = date!(2026 - 06 - 01);
    // An unmetered request: counted, free, no limit.
    counter.charge(&Charge::new(&a, &c, day, 0)).await.unwrap();
    // A handler's follow-up charge of a request already counted.
    let more = Charge {
        requests: 0,
        limit: Some(10_000),
        ..Charge::new(&a, &c, day, 2_500)
    };
    assert!(counter.charge(&more).await.unwrap().admitted);
    let usage = counter.usage(&a, day, day).await.unwrap();
    assert_eq!((usage[0].requests, usage[0].cost), (1, 2_500));
    assert_eq!(counter.used(&a, day).await.unwrap(), 2_500);
}

#[tokio::test]
async fn days_are_separate_and_old_days_are_dropped() {
    let prefix = Prefix::new("days");
    let clock = clock_at(datetime!(2026-06-01 12:00 UTC));
    let counter = counter(&prefix, &clock).await.retention_days(2);
    let (a, c) = ids();
    for day in [
        date!(2026 - 06 - 01),
        date!(2026 - 06 - 02),
        date!(2026 - 06 - 03),
    ] {
        clock.set(day.with_hms(12, 0, 0).unwrap().assume_utc());
        counter
            .charge(&Charge::new(&a, &c, day, 100))
            .await
            .unwrap();
    }
    assert_eq!(counter.used(&a, date!(2026 - 06 - 01)).await.unwrap(), 0);
    assert_eq!(counter.used(&a, date!(2026 - 06 - 02)).await.unwrap(), 100);
    assert_eq!(counter.used(&a, date!(2026 - 06 - 03)).await.unwrap(), 100);
    let usage = counter
        .usage(&a, date!(2026 - 06 - 01), date!(2026 - 06 - 30))
        .await
        .unwrap();
    let days: Vec<_> = usage.iter().map(|u| u.day).collect();
    assert_eq!(days, [date!(2026 - 06 - 02), date!(2026 - 06 - 03)]);
    assert!(
        counter
            .usage(&a, date!(2026 - 06 - 03), date!(2026 - 06 - 01))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_days_hash_expires_at_the_end_of_its_retention_window() {
    let prefix = Prefix::new("expiry");
    let clock = clock_at(datetime!(2026-06-01 18:00 UTC));
    let counter = counter(&prefix, &clock).await.retention_days(3);
    let (a, c) = ids();
    counter
        .charge(&Charge::new(&a, &c, date!(2026 - 06 - 01), 100))
        .await
        .unwrap();
    counter
        .record_refusal(&Refused::new(&a, &c, date!(2026 - 06 - 01), Rule::Origins))
        .await
        .unwrap();
    let key = format!("{}usage:acme:2026-06-01", prefix.prefix);
    let month = format!("{}usage-month:acme:2026-06", prefix.prefix);
    let mut keys = prefix.keys();
    keys.sort();
    assert_eq!(
        keys,
        [month, key.clone()],
        "the day's hash and the month's total, under the prefix"
    );
    let mut conn = connection().await;
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    // Kept through June 3rd: 6 hours of the 1st, then two more days.
    let expected = 6 * 3600 + 2 * 86_400;
    assert!((expected - 5..=expected).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn refusals_are_counted_by_reason_for_their_account_only() {
    let prefix = Prefix::new("refusals");
    let clock = clock_at(datetime!(2026-06-01 12:00 UTC));
    let counter = counter(&prefix, &clock).await;
    let (a, c) = ids();
    let other = AccountId::new("other").unwrap();
    let day = date!(2026 - 06 - 01);
    counter
        .record_refusal(&Refused::new(&a, &c, day, Rule::Origins))
        .await
        .unwrap();
    counter
        .record_refusal(&Refused::new(&a, &c, day, Rule::Origins))
        .await
        .unwrap();
    counter
        .record_refusal(&Refused::new(&other, &c, day, Rule::Ips))
        .await
        .unwrap();
    let usage = counter.usage(&a, day, day).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].refusals["origins"], 2);
    assert!(!usage[0].refusals.contains_key("ips"));
    assert_eq!((usage[0].requests, usage[0].cost), (0, 0));
}

#[tokio::test]
async fn usage_lists_clients_in_id_order_day_by_day() {
    let prefix = Prefix::new("order");
    let clock = clock_at(datetime!(2026-06-02 12:00 UTC));
    let counter = counter(&prefix, &clock).await;
    let a = AccountId::new("acme").unwrap();
    for (day, client) in [
        (date!(2026 - 06 - 02), "b"),
        (date!(2026 - 06 - 01), "z"),
        (date!(2026 - 06 - 02), "a"),
    ] {
        let client = ClientId::new(client).unwrap();
        counter
            .charge(&Charge::new(&a, &client, day, 1))
            .await
            .unwrap();
    }
    let usage = counter
        .usage(&a, date!(2026 - 06 - 01), date!(2026 - 06 - 02))
        .await
        .unwrap();
    let rows: Vec<(time::Date, &str)> = usage.iter().map(|u| (u.day, u.client.as_str())).collect();
    assert_eq!(
        rows,
        [
            (date!(2026 - 06 - 01), "z"),
            (date!(2026 - 06 - 02), "a"),
            (date!(2026 - 06 - 02), "b")
        ]
    );
}

#[tokio::test]
async fn an_unreachable_redis_fails_the_charge_and_the_counter_recovers_by_itself() {
    let prefix = Prefix::new("outage");
    let clock = clock_at(datetime!(2026-06-01 12:00 UTC));
    let link = relay().await;
    let counter = RedisUsageCounter::connect(&url_through(&link))
        .await
        .unwrap()
        .key_prefix(&prefix.prefix)
        .clock(Arc::new(clock.clone()));
    let (a, c) = ids();
    let day = date!(2026 - 06 - 01);
    let charge = Charge::new(&a, &c, day, 100);
    assert!(counter.charge(&charge).await.unwrap().admitted);
    link.cut();
    assert!(counter.charge(&charge).await.is_err(), "fail closed");
    assert!(counter.used(&a, day).await.is_err());
    link.restore();
    let back = eventually(Duration::from_secs(10), || async {
        counter.charge(&charge).await.is_ok()
    })
    .await;
    assert!(back, "reconnected without a restart");
    assert_eq!(counter.used(&a, day).await.unwrap(), 200);
}

#[tokio::test]
async fn fail_open_admits_uncounted_while_redis_is_unreachable() {
    let prefix = Prefix::new("open");
    let clock = clock_at(datetime!(2026-06-01 12:00 UTC));
    let link = relay().await;
    let counter = RedisUsageCounter::connect(&url_through(&link))
        .await
        .unwrap()
        .key_prefix(&prefix.prefix)
        .clock(Arc::new(clock.clone()))
        .fail_open(true);
    let (a, c) = ids();
    let day = date!(2026 - 06 - 01);
    let full = Charge {
        limit: Some(100),
        ..Charge::new(&a, &c, day, 100)
    };
    assert!(counter.charge(&full).await.unwrap().admitted);
    assert!(!counter.charge(&full).await.unwrap().admitted, "enforced");
    link.cut();
    let charged = counter.charge(&full).await.unwrap();
    assert!(charged.admitted && !charged.over, "admitted while away");
    counter
        .record_refusal(&Refused::new(&a, &c, day, Rule::Origins))
        .await
        .expect("nothing to report while away");
    assert!(counter.used(&a, day).await.is_err(), "reads still fail");
    link.restore();
    let back = eventually(Duration::from_secs(10), || async {
        counter.used(&a, day).await.is_ok()
    })
    .await;
    assert!(back);
    assert!(
        !counter.charge(&full).await.unwrap().admitted,
        "enforced again"
    );
    assert_eq!(counter.used(&a, day).await.unwrap(), 100);
}

fn limiter_on(
    conn: redis::aio::ConnectionManager,
    prefix: &Prefix,
    clock: &ManualClock,
) -> RedisRateLimiter {
    RedisRateLimiter::new(conn)
        .key_prefix(&prefix.prefix)
        .clock(Arc::new(clock.clone()))
}

fn limit(per_second: u32, burst: u32) -> RateLimit {
    RateLimit::new(per_second, burst).unwrap()
}

#[tokio::test]
async fn a_full_burst_passes_then_one_more_request_per_interval() {
    let prefix = Prefix::new("burst");
    let clock = clock_at(datetime!(2026-03-01 12:00 UTC));
    let limiter = limiter_on(connection().await, &prefix, &clock);
    let web = ClientId::new("web").unwrap();
    for n in 0..5 {
        assert_eq!(
            limiter.check(&web, limit(4, 5)).await.unwrap(),
            RateVerdict::Allow,
            "request {n}"
        );
    }
    assert_eq!(
        limiter.check(&web, limit(4, 5)).await.unwrap(),
        RateVerdict::RetryAfter(Duration::from_secs(1))
    );
    clock.advance(time::Duration::milliseconds(249));
    assert!(!limiter.check(&web, limit(4, 5)).await.unwrap().is_allowed());
    clock.advance(time::Duration::milliseconds(1));
    assert_eq!(
        limiter.check(&web, limit(4, 5)).await.unwrap(),
        RateVerdict::Allow
    );
    assert!(!limiter.check(&web, limit(4, 5)).await.unwrap().is_allowed());
}

#[tokio::test]
async fn retry_after_is_whole_seconds_and_an_idle_client_gets_its_burst_back() {
    let prefix = Prefix::new("idle");
    let clock = clock_at(datetime!(2026-03-01 12:00 UTC));
    let limiter = limiter_on(connection().await, &prefix, &clock);
    let web = ClientId::new("web").unwrap();
    for _ in 0..3 {
        assert_eq!(
            limiter.check(&web, limit(1, 3)).await.unwrap(),
            RateVerdict::Allow
        );
    }
    assert_eq!(
        limiter.check(&web, limit(1, 3)).await.unwrap(),
        RateVerdict::RetryAfter(Duration::from_secs(1))
    );
    let slow = ClientId::new("slow").unwrap();
    assert_eq!(
        limiter.check(&slow, limit(1, 1)).await.unwrap(),
        RateVerdict::Allow
    );
    clock.advance(time::Duration::milliseconds(100));
    assert_eq!(
        limiter.check(&slow, limit(1, 1)).await.unwrap(),
        RateVerdict::RetryAfter(Duration::from_secs(1)),
        "0.9 s rounds up to a second"
    );
    clock.advance(time::Duration::seconds(3));
    for n in 0..3 {
        assert_eq!(
            limiter.check(&web, limit(1, 3)).await.unwrap(),
            RateVerdict::Allow,
            "request {n}"
        );
    }
    assert!(!limiter.check(&web, limit(1, 3)).await.unwrap().is_allowed());
}

#[tokio::test]
async fn a_changed_limit_starts_with_a_full_burst_and_clients_are_limited_apart() {
    let prefix = Prefix::new("changed");
    let clock = clock_at(datetime!(2026-03-01 12:00 UTC));
    let limiter = limiter_on(connection().await, &prefix, &clock);
    let (web, batch) = (
        ClientId::new("web").unwrap(),
        ClientId::new("batch").unwrap(),
    );
    assert_eq!(
        limiter.check(&web, limit(1, 1)).await.unwrap(),
        RateVerdict::Allow
    );
    assert!(!limiter.check(&web, limit(1, 1)).await.unwrap().is_allowed());
    assert_eq!(
        limiter.check(&batch, limit(1, 1)).await.unwrap(),
        RateVerdict::Allow
    );
    for n in 0..5 {
        assert_eq!(
            limiter.check(&web, limit(1, 5)).await.unwrap(),
            RateVerdict::Allow,
            "request {n}"
        );
    }
    assert!(!limiter.check(&web, limit(1, 5)).await.unwrap().is_allowed());
}

#[tokio::test]
async fn two_limiters_on_two_connections_share_one_limit() {
    let prefix = Prefix::new("sharedlimit");
    let clock = clock_at(datetime!(2026-03-01 12:00 UTC));
    let a = limiter_on(connection().await, &prefix, &clock);
    let b = limiter_on(connection().await, &prefix, &clock);
    let web = ClientId::new("web").unwrap();
    let mut passed = 0;
    for n in 0..20 {
        let limiter = if n % 2 == 0 { &a } else { &b };
        passed += usize::from(limiter.check(&web, limit(2, 6)).await.unwrap().is_allowed());
    }
    assert_eq!(passed, 6, "one burst between the two");
}

#[tokio::test]
async fn an_unreachable_limiter_fails_unless_it_fails_open() {
    let prefix = Prefix::new("limitoutage");
    let clock = clock_at(datetime!(2026-03-01 12:00 UTC));
    let link = relay().await;
    let conn = redis_connection(&url_through(&link)).await.unwrap();
    let closed = limiter_on(conn.clone(), &prefix, &clock);
    let open = limiter_on(conn, &prefix, &clock).fail_open(true);
    let web = ClientId::new("web").unwrap();
    assert!(closed.check(&web, limit(1, 1)).await.unwrap().is_allowed());
    assert!(
        !open.check(&web, limit(1, 1)).await.unwrap().is_allowed(),
        "shared"
    );
    link.cut();
    assert!(closed.check(&web, limit(1, 1)).await.is_err());
    assert_eq!(
        open.check(&web, limit(1, 1)).await.unwrap(),
        RateVerdict::Allow
    );
    link.restore();
    let back = eventually(Duration::from_secs(10), || async {
        closed.check(&web, limit(1, 1)).await.is_ok()
    })
    .await;
    assert!(back);
}

fn metered_routes() -> RouteTable {
    RouteTable::new()
        .route(
            Method::GET,
            "/geocode",
            Api::new("Geocoder", [Role::EVALUATOR])
                .plugin(true)
                .cost(Cost::Fixed(TRANSACTION)),
        )
        .unwrap()
}

async fn status<S>(svc: &mut S, key: &str) -> StatusCode
where
    S: Service<
            Request<Full<Bytes>>,
            Response = Response<gis_auth::layer::ResponseBody<Full<Bytes>>>,
            Error = Infallible,
        >,
{
    let req = Request::get(format!("/geocode?q=x&apikey={key}"))
        .body(Full::default())
        .unwrap();
    svc.ready().await.unwrap().call(req).await.unwrap().status()
}

#[tokio::test]
async fn the_layer_answers_503_while_redis_is_away_unless_told_to_fail_open() {
    let prefix = Prefix::new("layer");
    let link = relay().await;
    let store = Arc::new(InMemoryStore::new());
    let made = store
        .open_account(
            gis_auth::client::Account::new(
                AccountId::new("acme").unwrap(),
                "Acme",
                RoleSet::from_iter([Role::EVALUATOR]),
            )
            .unwrap()
            .with_daily_quota(Some(1_000)),
        )
        .unwrap();
    let key = made.javascript.credential.expose().to_owned();
    let conn = redis_connection(&url_through(&link)).await.unwrap();
    let handler = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let layer = |counter: RedisUsageCounter| {
        tower::ServiceBuilder::new()
            .layer(AuthLayer::new(store.clone(), metered_routes()).usage_counter(Arc::new(counter)))
            .service(handler)
    };
    let mut closed = layer(RedisUsageCounter::new(conn.clone()).key_prefix(&prefix.prefix));
    let mut open = layer(
        RedisUsageCounter::new(conn)
            .key_prefix(&prefix.prefix)
            .fail_open(true),
    );
    assert_eq!(status(&mut closed, &key).await, StatusCode::OK);
    link.cut();
    assert_eq!(
        status(&mut closed, &key).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(status(&mut open, &key).await, StatusCode::OK);
    link.restore();
    let back = eventually(Duration::from_secs(10), || {
        let mut closed = closed.clone();
        let key = key.clone();
        async move { status(&mut closed, &key).await == StatusCode::OK }
    })
    .await;
    assert!(back, "served again once Redis is back");
}

/// Where a request came from: `origin`, and an address in `ip`'s network.
fn seen(origin: &str, ip: &str) -> Seen {
    Seen::new(
        RequestOrigin::from_origin_header(origin),
        Some(ip.parse().unwrap()),
    )
}

#[tokio::test]
async fn usage_is_broken_down_by_api_with_where_refusals_came_from() {
    let prefix = Prefix::new("by_api");
    let clock = clock_at(datetime!(2026-06-01 10:15:42 UTC));
    let counter = counter(&prefix, &clock).await;
    let (a, c) = ids();
    let day = date!(2026 - 06 - 01);
    let from_x = seen("https://x.example", "203.0.113.9");
    let tiles = Charge {
        api: Some("WorldStreets"),
        at: Some(clock.now()),
        ..Charge::new(&a, &c, day, 1_000)
    };
    counter.charge(&tiles).await.unwrap();
    counter.charge(&tiles).await.unwrap();
    let geocode = Charge {
        api: Some("ReverseGeocoding"),
        shadowed: &[Rule::Origins],
        seen: Some(&from_x),
        ..Charge::new(&a, &c, day, 5_000)
    };
    counter.charge(&geocode).await.unwrap();
    // Counted whatever the answer: a charge the quota refuses, a refusal by a rule.
    let refused_charge = Charge {
        limit: Some(1),
        seen: Some(&from_x),
        ..Charge::new(&a, &c, day, 5_000)
    };
    assert!(!counter.charge(&refused_charge).await.unwrap().admitted);
    let from_y = seen("https://y.example:8443", "2001:db8:1:2::9");
    let refused = Refused::new(&a, &c, day, Rule::Ips)
        .seen(Some(&from_y))
        .at(clock.now() + time::Duration::minutes(3));
    counter.record_refusal(&refused).await.unwrap();

    let row = &counter.usage(&a, day, day).await.unwrap()[0];
    assert_eq!(row.apis["WorldStreets"], ApiUsage::new(2, 2_000));
    assert_eq!(row.apis["ReverseGeocoding"], ApiUsage::new(1, 5_000));
    assert_eq!(
        row.apis.len(),
        2,
        "the refused charge is not counted by API"
    );
    let origins: Vec<_> = row
        .origins
        .iter()
        .map(|s| (s.value.as_str(), s.count))
        .collect();
    assert_eq!(
        origins,
        [("https://x.example", 2), ("https://y.example:8443", 1)]
    );
    let networks: Vec<_> = row
        .networks
        .iter()
        .map(|s| (s.value.as_str(), s.count))
        .collect();
    assert_eq!(networks, [("203.0.113.0/24", 2), ("2001:db8:1::/48", 1)]);
    let last = counter.last_used(&a).await.unwrap();
    assert_eq!(last[&c], datetime!(2026-06-01 10:18:00 UTC));
    // An older time never moves the last use back.
    counter.charge(&tiles).await.unwrap();
    assert_eq!(counter.last_used(&a).await.unwrap()[&c], last[&c]);
    let other = AccountId::new("other").unwrap();
    assert!(counter.last_used(&other).await.unwrap().is_empty());
}

#[tokio::test]
async fn many_origins_keep_a_bounded_set_that_reports_the_most_counted_first() {
    let prefix = Prefix::new("seen_bound");
    let clock = clock_at(datetime!(2026-06-01 12:00 UTC));
    let counter = counter(&prefix, &clock).await;
    let (a, c) = ids();
    let day = date!(2026 - 06 - 01);
    let heavy = seen("https://heavy.example", "198.51.100.7");
    for i in 0..45 {
        let once = seen(&format!("https://o{i}.example"), &format!("10.0.{i}.1"));
        counter
            .record_refusal(&Refused::new(&a, &c, day, Rule::Origins).seen(Some(&once)))
            .await
            .unwrap();
        if i % 3 == 0 {
            let report_only = Charge {
                shadowed: &[Rule::Origins],
                seen: Some(&heavy),
                ..Charge::new(&a, &c, day, 100)
            };
            counter.charge(&report_only).await.unwrap();
        }
    }
    let mut conn = connection().await;
    for set in ["seen-origins", "seen-networks"] {
        let key = format!("{}{set}:acme:2026-06-01:web", prefix.prefix);
        let members: usize = conn.zcard(&key).await.unwrap();
        assert_eq!(members, SEEN_KEPT, "{set} is bounded");
        let ttl: i64 = conn.ttl(&key).await.unwrap();
        assert!(ttl > 0, "{set} expires with the day");
    }
    let row = &counter.usage(&a, day, day).await.unwrap()[0];
    assert_eq!(row.origins.len(), SEEN_REPORTED);
    assert_eq!(
        row.origins[0].value, "https://heavy.example",
        "a heavy origin survives"
    );
    assert!(
        row.origins[0].count >= 15,
        "never too low: {}",
        row.origins[0].count
    );
    assert_eq!(row.networks[0].value, "198.51.100.0/24");
    for rows in [&row.origins, &row.networks] {
        assert!(
            rows.windows(2)
                .all(|w| (w[0].count, &w[1].value) >= (w[1].count, &w[0].value)),
            "most counted first, ties by value: {rows:?}"
        );
    }
}

#[tokio::test]
async fn a_clients_last_use_is_written_at_most_once_a_minute() {
    let prefix = Prefix::new("last_use");
    let clock = clock_at(datetime!(2026-06-01 12:00:10 UTC));
    let counter = counter(&prefix, &clock).await;
    let (a, c) = ids();
    let day = date!(2026 - 06 - 01);
    let charge_now = || Charge {
        at: Some(clock.now()),
        ..Charge::new(&a, &c, day, 100)
    };
    counter.charge(&charge_now()).await.unwrap();
    assert_eq!(
        counter.last_used(&a).await.unwrap()[&c],
        datetime!(2026-06-01 12:00 UTC),
        "to the minute"
    );
    let key = format!("{}last-used:acme", prefix.prefix);
    let mut conn = connection().await;
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(ttl > 86_400, "kept for the retention window: {ttl}");
    let () = conn.del(&key).await.unwrap();
    // The same minute, by a charge or a refusal: nothing written.
    clock.advance(time::Duration::seconds(40));
    counter.charge(&charge_now()).await.unwrap();
    let refused = Refused::new(&a, &c, day, Rule::Ips).at(clock.now());
    counter.record_refusal(&refused).await.unwrap();
    let exists: bool = conn.exists(&key).await.unwrap();
    assert!(!exists, "no second write in the same minute");
    // The next minute is written again.
    clock.advance(time::Duration::seconds(15));
    counter.charge(&charge_now()).await.unwrap();
    assert_eq!(
        counter.last_used(&a).await.unwrap()[&c],
        datetime!(2026-06-01 12:01 UTC)
    );
    // A refusal in a later minute writes it too, and a clone shares what was written.
    clock.advance(time::Duration::minutes(2));
    let refused = Refused::new(&a, &c, day, Rule::Ips).at(clock.now());
    counter.clone().record_refusal(&refused).await.unwrap();
    let () = conn.del(&key).await.unwrap();
    counter.charge(&charge_now()).await.unwrap();
    let exists: bool = conn.exists(&key).await.unwrap();
    assert!(!exists, "the clone wrote this minute already");
}
