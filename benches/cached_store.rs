//! The `apikey` path through `CachedStore<PostgresStore>` against the in-memory store, in one
//! run, and what a cache miss costs: one round trip to PostgreSQL.
//!
//! - `store_hit`: `in_memory` is the layer over an [`InMemoryStore`] holding one account;
//!   `cached_postgres` is the same layer over a warm `CachedStore<PostgresStore>` holding the
//!   same account in PostgreSQL. Each iteration `oneshot`s
//!   `GET /tiles/12/2103/1361.png?apikey=…` on a current-thread runtime, as
//!   `benches/apikey.rs` does. The target is a cache hit within 1.2 times the in-memory time.
//! - `store_miss`: `postgres_resolve_key`, one `PostgresStore::resolve_key` (the query a
//!   miss makes: the client, its account, credentials and grants in one statement).
//!
//! Needs a PostgreSQL: at `DATABASE_URL`, the machine's, or a private one (see
//! tests/local_services); works in a schema of its own, dropped at the end.
//! Run with `cargo bench --features postgres --bench cached_store`.

#[path = "../tests/local_services/mod.rs"]
mod local_services;

use std::convert::Infallible;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gis_auth::AuthLayer;
use gis_auth::client::{Account, AccountId, Role, RoleSet};
use gis_auth::policy::{Api, RouteTable};
use gis_auth::store::{CachedStore, ClientStore, InMemoryStore, ManagedStore, PostgresStore};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower::{ServiceBuilder, ServiceExt};

async fn tile(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"tile"))))
}

fn account() -> Account {
    Account::new(
        AccountId::new("bench").expect("id"),
        "Bench",
        RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
    )
    .expect("account")
}

fn routes() -> RouteTable {
    RouteTable::new()
        .route(
            Method::GET,
            "/tiles/{z}/{x}/{y}.png",
            Api::new("WorldStreets", [Role::EVALUATOR, Role::SUBSCRIBER]).plugin(true),
        )
        .expect("routes")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let url = local_services::database_url();
    let schema = format!("bench_cached_store_{}", std::process::id());
    let options = PgConnectOptions::from_str(&url).expect("a PostgreSQL URL");
    let (postgres, admin) = rt.block_on(async {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .expect("PostgreSQL at DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("a schema");
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options.options([("search_path", schema.as_str())]))
            .await
            .expect("a pool");
        let postgres = PostgresStore::new(pool);
        postgres.migrate().await.expect("migrations");
        (postgres, admin)
    });

    let memory = Arc::new(InMemoryStore::new());
    let in_memory_key = memory.open_account(account()).expect("account");
    let made = rt
        .block_on(postgres.create_account(account()))
        .expect("account");
    let cached = Arc::new(CachedStore::new(postgres.clone()).ttl(Duration::from_secs(3600)));

    let uri = |key: &str| format!("/tiles/12/2103/1361.png?apikey={key}");
    let memory_uri = uri(in_memory_key.javascript.credential.expose());
    let cached_uri = uri(made.javascript.credential.expose());
    let memory_svc = ServiceBuilder::new()
        .layer(AuthLayer::new(memory, routes()))
        .service_fn(tile);
    let cached_svc = ServiceBuilder::new()
        .layer(AuthLayer::new(cached, routes()))
        .service_fn(tile);
    let request = |uri: &str| {
        Request::get(uri)
            .body(Full::<Bytes>::default())
            .expect("req")
    };
    for (svc_uri, status) in [
        (
            rt.block_on(memory_svc.clone().oneshot(request(&memory_uri))),
            "in_memory",
        ),
        (
            rt.block_on(cached_svc.clone().oneshot(request(&cached_uri))),
            "cached_postgres",
        ),
    ] {
        assert_eq!(
            svc_uri.expect("infallible").status(),
            StatusCode::OK,
            "{status}"
        );
    }

    let mut g = c.benchmark_group("store_hit");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("in_memory", |b| {
        b.to_async(&rt)
            .iter(|| memory_svc.clone().oneshot(request(black_box(&memory_uri))))
    });
    g.bench_function("cached_postgres", |b| {
        b.to_async(&rt)
            .iter(|| cached_svc.clone().oneshot(request(black_box(&cached_uri))))
    });
    g.finish();

    let digest = made.javascript.credential.digest();
    let mut g = c.benchmark_group("store_miss");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("postgres_resolve_key", |b| {
        b.to_async(&rt).iter(|| async {
            let found = postgres.resolve_key(black_box(&digest)).await;
            assert!(found.expect("PostgreSQL answers").is_some());
        })
    });
    g.finish();

    rt.block_on(async {
        postgres.pool().close().await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .expect("the schema dropped");
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
