//! An account's plan against the Redis at `REDIS_URL`: the monthly quota kept beside the
//! daily one by `RedisUsageCounter` (a charge fits both or is charged to neither, exactly
//! under concurrency), and the account rate limit of `RedisRateLimiter`, shared by every
//! client of the account and by every layer that uses the same Redis.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gis_auth::AuthLayer;
use gis_auth::client::{Account, AccountId, ClientId, ClientSpec, Plan, RateLimit, Role, RoleSet};
use gis_auth::clock::ManualClock;
use gis_auth::limits::{
    Charge, RedisRateLimiter, RedisUsageCounter, SharedRateLimiter, UsageCounter,
};
use gis_auth::policy::{Api, RouteTable};
use gis_auth::store::InMemoryStore;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use time::macros::{date, datetime};
use tower::ServiceExt;

use crate::services::redis::{Prefix, connection, patient_connection};

fn ids() -> (AccountId, ClientId) {
    (
        AccountId::new("acme").unwrap(),
        ClientId::new("web").unwrap(),
    )
}

fn counter_on(
    conn: redis::aio::ConnectionManager,
    prefix: &Prefix,
    clock: &ManualClock,
) -> RedisUsageCounter {
    RedisUsageCounter::new(conn)
        .key_prefix(&prefix.prefix)
        .clock(Arc::new(clock.clone()))
        .timeout(Duration::from_secs(60))
}

#[tokio::test]
async fn a_charge_must_fit_both_quotas_and_a_refused_one_is_charged_to_neither() {
    let prefix = Prefix::new("monthly");
    let clock = ManualClock::new(datetime!(2026-06-30 12:00 UTC));
    let counter = counter_on(connection().await, &prefix, &clock);
    let (a, c) = ids();
    let on = |day| Charge {
        limit: Some(2_000),
        monthly_limit: Some(3_000),
        ..Charge::new(&a, &c, day, 1_000)
    };
    let (first, second) = (date!(2026 - 06 - 29), date!(2026 - 06 - 30));
    assert!(counter.charge(&on(first)).await.unwrap().admitted);
    assert!(counter.charge(&on(first)).await.unwrap().admitted);
    let daily = counter.charge(&on(first)).await.unwrap();
    assert!(!daily.admitted && daily.over && !daily.over_monthly);
    assert_eq!((daily.used, daily.monthly_used), (2_000, 2_000));

    assert!(counter.charge(&on(second)).await.unwrap().admitted);
    let monthly = counter.charge(&on(second)).await.unwrap();
    assert!(!monthly.admitted && !monthly.over && monthly.over_monthly);
    assert_eq!((monthly.used, monthly.monthly_used), (1_000, 3_000));
    assert_eq!(
        counter.used(&a, second).await.unwrap(),
        1_000,
        "charged to neither"
    );
    assert_eq!(counter.monthly_used(&a, second).await.unwrap(), 3_000);
    let usage = counter.usage(&a, second, second).await.unwrap();
    assert_eq!(usage[0].refusals["quota_exceeded"], 1);

    // A new month starts at 0; the last one is still there to read.
    clock.set(datetime!(2026-07-01 00:00 UTC));
    let july = counter.charge(&on(date!(2026 - 07 - 01))).await.unwrap();
    assert!(july.admitted);
    assert_eq!(july.monthly_used, 1_000);
    assert_eq!(counter.monthly_used(&a, second).await.unwrap(), 3_000);
    let other = AccountId::new("other").unwrap();
    assert_eq!(counter.monthly_used(&other, second).await.unwrap(), 0);
}

#[tokio::test]
async fn a_months_total_expires_at_the_end_of_the_month_after_it() {
    let prefix = Prefix::new("monthttl");
    let clock = ManualClock::new(datetime!(2026-06-30 12:00 UTC));
    let counter = counter_on(connection().await, &prefix, &clock);
    let (a, c) = ids();
    counter
        .charge(&Charge::new(&a, &c, date!(2026 - 06 - 30), 100))
        .await
        .unwrap();
    let mut conn = connection().await;
    let key = format!("{}usage-month:acme:2026-06", prefix.prefix);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    // From 2026-06-30 12:00 to 2026-08-01 00:00.
    let expected =
        (datetime!(2026-08-01 00:00 UTC) - datetime!(2026-06-30 12:00 UTC)).whole_seconds();
    assert!((expected - 5..=expected).contains(&ttl), "{ttl} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_charges_through_two_connections_fit_the_monthly_quota_exactly() {
    let prefix = Prefix::new("monthexact");
    let clock = ManualClock::new(datetime!(2026-06-01 12:00 UTC));
    let counters = [
        counter_on(patient_connection().await, &prefix, &clock),
        counter_on(patient_connection().await, &prefix, &clock),
    ];
    let (a, c) = ids();
    let tasks: Vec<_> = (0..2_000)
        .map(|n| {
            let (counter, a, c) = (counters[n % 2].clone(), a.clone(), c.clone());
            tokio::spawn(async move {
                let charge = Charge {
                    limit: Some(5_000_000),
                    monthly_limit: Some(1_000_000),
                    ..Charge::new(&a, &c, date!(2026 - 06 - 01), 1_000)
                };
                counter.charge(&charge).await.unwrap().admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 1_000);
    let day = date!(2026 - 06 - 01);
    assert_eq!(counters[0].used(&a, day).await.unwrap(), 1_000_000);
    assert_eq!(counters[1].monthly_used(&a, day).await.unwrap(), 1_000_000);
}

#[tokio::test]
async fn an_accounts_limit_is_shared_over_two_connections_and_apart_from_its_clients() {
    let prefix = Prefix::new("accountrate");
    let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
    let limiter = |conn| {
        RedisRateLimiter::new(conn)
            .key_prefix(&prefix.prefix)
            .clock(Arc::new(clock.clone()))
    };
    let (a, b) = (limiter(connection().await), limiter(connection().await));
    let acme = AccountId::new("acme").unwrap();
    let limit = RateLimit::new(2, 4).unwrap();
    let mut passed = 0;
    for n in 0..10 {
        let limiter = if n % 2 == 0 { &a } else { &b };
        passed += usize::from(
            limiter
                .check_account(&acme, limit)
                .await
                .unwrap()
                .is_allowed(),
        );
    }
    assert_eq!(passed, 4, "one burst between the two");
    let same_id = ClientId::new("acme").unwrap();
    assert!(a.check(&same_id, limit).await.unwrap().is_allowed());
    clock.advance(time::Duration::milliseconds(500));
    assert!(b.check_account(&acme, limit).await.unwrap().is_allowed());
}

/// Tiles for Evaluators, unmetered.
fn tile_routes() -> RouteTable {
    RouteTable::new()
        .route(
            Method::GET,
            "/tiles/{z}/{x}/{y}.png",
            Api::new("WorldStreets", [Role::EVALUATOR]).plugin(true),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_rate_limit_holds_across_two_layers_sharing_redis() {
    let prefix = Prefix::new("accountlayers");
    let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
    let store = Arc::new(InMemoryStore::new());
    let made = store
        .open_account(
            Account::new(
                AccountId::new("acme").unwrap(),
                "Acme",
                RoleSet::from_iter([Role::EVALUATOR]),
            )
            .unwrap()
            .with_plan(Plan::default().with_rate_limit(Some(RateLimit::new(4, 4).unwrap()))),
        )
        .unwrap();
    let second = store
        .add_client(&made.account.id, ClientSpec::javascript("Second map"))
        .unwrap();
    let keys = [
        made.javascript.credential.expose().to_owned(),
        second.credential.expose().to_owned(),
    ];
    let layer = |conn| {
        let limiter = RedisRateLimiter::new(conn)
            .key_prefix(&prefix.prefix)
            .clock(Arc::new(clock.clone()));
        tower::ServiceBuilder::new()
            .layer(
                AuthLayer::new(store.clone(), tile_routes())
                    .shared_rate_limiter(Arc::new(limiter))
                    .clock(Arc::new(clock.clone())),
            )
            .service_fn(|_req: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"tile"))))
            })
    };
    let instances = [layer(connection().await), layer(connection().await)];
    let send = |n: usize| {
        let req = Request::get(format!("/tiles/1/2/3.png?apikey={}", keys[n % 2]))
            .body(Full::default())
            .unwrap();
        instances[(n / 2) % 2].clone().oneshot(req)
    };
    let mut passed = 0;
    let mut refused = Vec::new();
    for n in 0..12 {
        let res = send(n).await.unwrap();
        match res.status() {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => refused.push(res),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        passed, 4,
        "one burst of the account's limit, over both clients and layers"
    );
    let res = &refused[0];
    assert!(res.headers().contains_key("retry-after"));
    let rejection = res
        .extensions()
        .get::<gis_auth::Rejection>()
        .expect("the rejection");
    assert_eq!(rejection.error_code(), "rate_limited");
    assert_eq!(
        rejection.decision().and_then(|d| d.rule()),
        Some(gis_auth::policy::Rule::AccountRateLimit)
    );
    clock.advance(time::Duration::seconds(1));
    let mut passed = 0;
    for n in 0..12 {
        passed += usize::from(send(n + 1).await.unwrap().status() == StatusCode::OK);
    }
    assert_eq!(passed, 4, "four more a second later");
}
