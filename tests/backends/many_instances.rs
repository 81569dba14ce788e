//! Two instances of a service, each with its own `AuthLayer`, its own `CachedStore` over its
//! own `PostgresStore` pool and listener, and its own Redis connections, sharing one
//! PostgreSQL (`DATABASE_URL`) and one Redis (`REDIS_URL`): a change made through one is
//! enforced by the other within a second, and quotas and rate limits hold across both.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gis_auth::AuthLayer;
use gis_auth::client::{
    Account, AccountId, Client, ClientId, ClientSpec, RateLimit, Role, RoleSet, Status,
};
use gis_auth::clock::ManualClock;
use gis_auth::layer::ResponseBody;
use gis_auth::limits::RedisRateLimiter;
use gis_auth::limits::{RedisUsageCounter, UsageCounter};
use gis_auth::policy::{Api, Cost, RouteTable, TRANSACTION};
use gis_auth::store::{CachedStore, ChangeListener, ManagedStore, PostgresStore, Precondition};
use gis_auth::token::{JwtVerifier, SigningKey, TokenIssuer};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use time::macros::datetime;
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt};

use crate::services::eventually;
use crate::services::postgres::Schema;
use crate::services::redis::{Prefix, connection, patient_connection};

type Svc = BoxCloneService<Request<Full<Bytes>>, Response<ResponseBody<Full<Bytes>>>, Infallible>;

/// One instance of the service: its layer, its cache, and the listener that keeps the cache
/// in step with the database.
struct Instance {
    svc: Svc,
    store: Arc<CachedStore<PostgresStore>>,
    _listener: ChangeListener,
}

/// What both instances share: the database schema, the Redis key prefix, the token signing
/// key and the (test) clock.
struct World {
    schema: Schema,
    prefix: Prefix,
    issuer: TokenIssuer,
    clock: ManualClock,
}

impl World {
    async fn new(tag: &str) -> World {
        let clock = ManualClock::new(datetime!(2026-06-01 12:00 UTC));
        let issuer = TokenIssuer::new(SigningKey::hs256("shared-1", &[7u8; 32]).unwrap())
            .clock(Arc::new(clock.clone()));
        World {
            schema: Schema::create(tag).await,
            prefix: Prefix::new(tag),
            issuer,
            clock,
        }
    }

    async fn instance(&self) -> Instance {
        let clock = Arc::new(self.clock.clone());
        let postgres = self.schema.store().await.clock(clock.clone());
        // Entries would live a minute on a clock that does not move: only a notification
        // can drop them.
        let store = Arc::new(
            CachedStore::new(postgres.clone())
                .ttl(Duration::from_secs(60))
                .negative_ttl(Duration::from_secs(60))
                .clock(clock.clone()),
        );
        let cache = store.clone();
        let listener = postgres
            .listen(move |change| cache.invalidate(&change))
            .await
            .unwrap();
        // Thousands of requests queue on one connection in the quota test: these tests are
        // about what holds across instances, not about latency, so nothing times out.
        let patience = Duration::from_secs(60);
        let redis = patient_connection().await;
        let usage = RedisUsageCounter::new(redis.clone())
            .key_prefix(&self.prefix.prefix)
            .clock(clock.clone())
            .timeout(patience);
        let limiter = RedisRateLimiter::new(redis)
            .key_prefix(&self.prefix.prefix)
            .clock(clock.clone())
            .timeout(patience);
        let verifier = JwtVerifier::new(self.issuer.clone(), store.clone());
        let layer = AuthLayer::new(store.clone(), routes())
            .token_verifier(Arc::new(verifier))
            .usage_counter(Arc::new(usage))
            .shared_rate_limiter(Arc::new(limiter))
            .backend_timeout(Some(patience))
            .clock(clock);
        let svc =
            ServiceBuilder::new()
                .layer(layer)
                .service_fn(|_req: Request<Full<Bytes>>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"tile"))))
                });
        Instance {
            svc: BoxCloneService::new(svc),
            store,
            _listener: listener,
        }
    }

    fn token(&self, client: &Client, account: &Account) -> String {
        self.issuer
            .issue(client, account, &account.roles, 0, None)
            .unwrap()
            .access_token
    }
}

/// Tiles, one transaction each.
fn routes() -> RouteTable {
    RouteTable::new()
        .route(
            Method::GET,
            "/tiles/{z}/{x}/{y}.png",
            Api::new("WorldStreets", [Role::EVALUATOR])
                .plugin(true)
                .cost(Cost::Fixed(TRANSACTION)),
        )
        .unwrap()
}

enum Credential<'a> {
    Key(&'a str),
    Token(&'a str),
}

async fn status(svc: &Svc, credential: Credential<'_>) -> StatusCode {
    send(svc.clone(), credential).await
}

/// [`status`] for a task of its own (a service that is `Send` but not `Sync`).
async fn send(svc: Svc, credential: Credential<'_>) -> StatusCode {
    let req = match credential {
        Credential::Key(key) => Request::get(format!("/tiles/1/2/3.png?apikey={key}")),
        Credential::Token(token) => {
            Request::get("/tiles/1/2/3.png").header("authorization", format!("Bearer {token}"))
        }
    };
    let req = req.body(Full::default()).unwrap();
    svc.oneshot(req).await.unwrap().status()
}

fn account(quota: Option<u64>) -> Account {
    Account::new(
        AccountId::new("acme").unwrap(),
        "Acme Maps",
        RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
    )
    .unwrap()
    .with_daily_quota(quota)
}

fn deactivate() -> gis_auth::store::ClientChange {
    Box::new(|spec| {
        spec.status = Status::Inactive;
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_deactivated_through_one_instance_is_refused_by_the_other_within_a_second() {
    let world = World::new("deactivate").await;
    let (a, b) = (world.instance().await, world.instance().await);
    let made = a.store.create_account(account(None)).await.unwrap();
    let key = made.javascript.credential.expose().to_owned();
    let token = world.token(&made.native.client, &made.account);

    // Instance B has both clients cached.
    assert_eq!(status(&b.svc, Credential::Key(&key)).await, StatusCode::OK);
    assert_eq!(
        status(&b.svc, Credential::Token(&token)).await,
        StatusCode::OK
    );

    let pre = Precondition::default();
    a.store
        .update_client(made.javascript.client.id(), &pre, deactivate())
        .await
        .unwrap();
    a.store
        .update_client(made.native.client.id(), &pre, deactivate())
        .await
        .unwrap();

    let key_refused = eventually(Duration::from_secs(1), || async {
        status(&b.svc, Credential::Key(&key)).await == StatusCode::UNAUTHORIZED
    })
    .await;
    let token_refused = eventually(Duration::from_secs(1), || async {
        status(&b.svc, Credential::Token(&token)).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        key_refused,
        "the API key is refused by the other instance within 1 s"
    );
    assert!(
        token_refused,
        "the token is refused by the other instance within 1 s"
    );
    assert_eq!(
        status(&a.svc, Credential::Key(&key)).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regenerated_key_and_a_deactivated_account_reach_the_other_instance_too() {
    let world = World::new("regenerate").await;
    let (a, b) = (world.instance().await, world.instance().await);
    let made = a.store.create_account(account(None)).await.unwrap();
    let old = made.javascript.credential.expose().to_owned();
    let token = world.token(&made.native.client, &made.account);
    assert_eq!(status(&b.svc, Credential::Key(&old)).await, StatusCode::OK);
    let (_, fresh) = a
        .store
        .regenerate_client(made.javascript.client.id(), &Precondition::default(), None)
        .await
        .unwrap();
    let moved = eventually(Duration::from_secs(1), || async {
        status(&b.svc, Credential::Key(&old)).await == StatusCode::UNAUTHORIZED
            && status(&b.svc, Credential::Key(fresh.expose())).await == StatusCode::OK
    })
    .await;
    assert!(
        moved,
        "old key refused and new key served by the other instance"
    );

    assert_eq!(
        status(&b.svc, Credential::Token(&token)).await,
        StatusCode::OK
    );
    a.store
        .update_account(
            &made.account.id,
            Box::new(|account| {
                account.status = Status::Inactive;
                Ok(())
            }),
        )
        .await
        .unwrap();
    let refused = eventually(Duration::from_secs(1), || async {
        status(&b.svc, Credential::Token(&token)).await != StatusCode::OK
            && status(&b.svc, Credential::Key(fresh.expose())).await != StatusCode::OK
    })
    .await;
    assert!(
        refused,
        "an inactive account's clients are refused by the other instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_of_1000_admits_exactly_1000_of_2000_concurrent_requests_over_both() {
    let world = World::new("quota").await;
    let (a, b) = (world.instance().await, world.instance().await);
    let made = a.store.create_account(account(Some(1_000))).await.unwrap();
    let key = Arc::new(made.javascript.credential.expose().to_owned());
    let tasks: Vec<_> = (0..2_000)
        .map(|n| {
            let svc = if n % 2 == 0 {
                a.svc.clone()
            } else {
                b.svc.clone()
            };
            let key = key.clone();
            tokio::spawn(async move { send(svc, Credential::Key(&key)).await })
        })
        .collect();
    let (mut admitted, mut over) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => over += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((admitted, over), (1_000, 1_000));
    let counter = RedisUsageCounter::new(connection().await)
        .key_prefix(&world.prefix.prefix)
        .clock(Arc::new(world.clock.clone()));
    let today = datetime!(2026-06-01 12:00 UTC).date();
    assert_eq!(
        counter.used(&made.account.id, today).await.unwrap(),
        1_000 * TRANSACTION
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_rate_limit_holds_across_both_instances() {
    let world = World::new("rate").await;
    let (a, b) = (world.instance().await, world.instance().await);
    let made = a.store.create_account(account(None)).await.unwrap();
    let limited = a
        .store
        .create_client(
            &made.account.id,
            ClientSpec::javascript("Busy map")
                .id(ClientId::new("busy").unwrap())
                .rate_limit(Some(RateLimit::new(5, 5).unwrap())),
        )
        .await
        .unwrap();
    let key = limited.credential.expose().to_owned();
    let mut passed = 0;
    for n in 0..20 {
        let svc = if n % 2 == 0 { &a.svc } else { &b.svc };
        match status(svc, Credential::Key(&key)).await {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(passed, 5, "one burst of 5 between the two instances");
    world.clock.advance(time::Duration::seconds(1));
    let mut passed = 0;
    for n in 0..20 {
        let svc = if n % 2 == 0 { &b.svc } else { &a.svc };
        passed += usize::from(status(svc, Credential::Key(&key)).await == StatusCode::OK);
    }
    assert_eq!(passed, 5, "5 more a second later, between the two");
}
