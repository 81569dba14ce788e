//! The full policy path of [`AuthLayer`] (privileges, item grants, the daily quota and
//! origin rules) against the plain `apikey` path and its floor, in one run.
//!
//! As in the `apikey` bench, every benchmark builds the service once, and each iteration
//! clones it and `oneshot`s a freshly built request on a current-thread Tokio runtime, on the
//! system clock. Building the request is part of every benchmark, so it cancels out of the
//! differences (the `origins` request carries one header more than the others). The inner
//! service answers a small `Response<Full<Bytes>>`.
//!
//! One [`InMemoryStore`] and one layer (with its default [`InMemoryUsageCounter`]) serve
//! every case; the route table has the tile route of the `apikey` bench and an item route:
//!
//! - `passthrough`: the inner service without the layer, on the tile request.
//! - `apikey`: `GET /tiles/12/2103/1361.png?apikey=…` with a JavaScript client with no
//!   restrictions, of an account without a quota (the `apikey` bench's success path).
//! - `policy`: `GET /items/item-57/metadata?apikey=…` (the route declares its item in the
//!   path) with a JavaScript client limited to three APIs, holding 100 `read` grants, of an
//!   account with a daily quota too large to run out: privileges, the grant lookup (with the
//!   item decoded from the path) and the quota charge all run, and the response carries the
//!   `RateLimit-*` headers.
//! - `policy_origins`: as `policy`, for a client that also has 100 allowed origins, with a
//!   matching `Origin` header (the response carries `Vary: Origin` too).
//!
//! Before each benchmark the first request is checked to succeed; before the policy
//! benchmarks, requests for an item without a grant and for an API outside the privileges
//! (and, with origin rules, from another origin) are checked to be refused, so each rule
//! is known to run.
//!
//! [`InMemoryUsageCounter`]: gis_auth::limits::InMemoryUsageCounter
//!
//! Run with `cargo bench --bench policy` (Criterion's default times: 3 s warm-up, 5 s
//! measurement; `-- --warm-up-time 1 --measurement-time 3` for a quicker run).

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use gis_auth::client::{Account, AccountId, Action, ClientSpec, Grant, Role, RoleSet};
use gis_auth::layer::RATELIMIT_LIMIT;
use gis_auth::policy::{Api, RouteTable};
use gis_auth::store::{CreatedClient, InMemoryStore};
use gis_auth::{AuthLayer, Rejection, RejectionKind};
use http::header::{ORIGIN, VARY};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

/// How many item grants and allowed origins the restricted clients carry.
const RULES: usize = 100;

/// The item the policy requests are for (one of the granted ones).
const ITEM: usize = 57;

async fn tile(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"tile"))))
}

/// One request, as the benchmarks build it: a URI and an optional `Origin` header.
#[derive(Clone, Copy)]
struct Call<'a> {
    uri: &'a str,
    origin: Option<&'a str>,
}

impl Call<'_> {
    fn request(self) -> Request<Full<Bytes>> {
        let mut req = Request::get(self.uri);
        if let Some(origin) = self.origin {
            req = req.header(ORIGIN, origin);
        }
        req.body(Full::default()).expect("a valid request")
    }
}

/// `path` with `client`'s API key.
fn uri(path: &str, client: &CreatedClient) -> String {
    format!("{path}?apikey={}", client.credential.expose())
}

fn item_path(i: usize) -> String {
    format!("/items/item-{i}/metadata")
}

fn app_origin(i: usize) -> String {
    format!("https://app-{i}.maps.acme.test")
}

/// The outcome of one request: `None` for success, otherwise the refusal.
fn outcome<S, ResB>(
    rt: &Runtime,
    svc: &S,
    call: Call<'_>,
) -> (Option<RejectionKind>, Response<ResB>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResB>, Error = Infallible> + Clone,
{
    let res = rt
        .block_on(svc.clone().oneshot(call.request()))
        .unwrap_or_else(|never| match never {});
    (
        res.extensions().get::<Rejection>().map(Rejection::kind),
        res,
    )
}

/// Checks that `call` is refused with `kind`.
fn assert_refused<S, ResB>(rt: &Runtime, svc: &S, call: Call<'_>, kind: RejectionKind)
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResB>, Error = Infallible> + Clone,
{
    let (refused, _) = outcome(rt, svc, call);
    assert_eq!(refused, Some(kind), "{}", call.uri);
}

/// Benchmarks `svc` on `call` after checking that it succeeds and that its response carries
/// each header of `expect_headers`.
fn bench_service<S, ResB>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: &str,
    svc: &S,
    call: Call<'_>,
    expect_headers: &[http::HeaderName],
) where
    S: Service<Request<Full<Bytes>>, Response = Response<ResB>, Error = Infallible> + Clone,
{
    let (refused, res) = outcome(rt, svc, call);
    assert_eq!(refused, None, "{id}");
    assert_eq!(res.status(), StatusCode::OK, "{id}");
    for name in expect_headers {
        assert!(res.headers().contains_key(name), "{id}: no {name} header");
    }
    g.bench_function(id, |b| {
        b.to_async(rt)
            .iter(|| svc.clone().oneshot(black_box(call).request()))
    });
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let maps = || [Role::EVALUATOR, Role::SUBSCRIBER];
    let routes = RouteTable::new()
        .route(
            Method::GET,
            "/tiles/{z}/{x}/{y}.png",
            Api::new("WorldStreets", maps()).plugin(true),
        )
        .and_then(|t| {
            t.route(
                Method::GET,
                "/items/{item}/metadata",
                Api::new("Items", maps())
                    .plugin(true)
                    .item_from_path("item"),
            )
        })
        .and_then(|t| {
            t.route(
                Method::GET,
                "/elevation",
                Api::new("Elevation", maps()).plugin(true),
            )
        })
        .and_then(|t| {
            t.route(
                Method::GET,
                "/basemap",
                Api::new("Basemap", maps()).plugin(true),
            )
        })
        .expect("routes");

    let store = Arc::new(InMemoryStore::new());
    let roles = || RoleSet::from_iter([Role::USER, Role::EVALUATOR]);
    let plain = store
        .open_account(
            Account::new(AccountId::new("plain").expect("id"), "Plain", roles()).expect("account"),
        )
        .expect("created")
        .javascript;
    let metered = Account::new(AccountId::new("metered").expect("id"), "Metered", roles())
        .expect("account")
        .with_daily_quota(Some(u64::MAX / 2000));
    let metered = store.open_account(metered).expect("created").account;
    let restricted = ClientSpec::javascript("Restricted web map")
        .privileges(["WorldStreets", "Items", "Elevation"])
        .grants(
            (0..RULES).map(|i| Grant::new(format!("item-{i}"), [Action::Read]).expect("grant")),
        );
    let policy_client = store
        .add_client(&metered.id, restricted.clone())
        .expect("client");
    let origins_client = store
        .add_client(
            &metered.id,
            restricted.allowed_origins((0..RULES).map(app_origin)),
        )
        .expect("client");

    let passthrough = service_fn(tile);
    let layered = ServiceBuilder::new()
        .layer(AuthLayer::new(store, routes))
        .service_fn(tile);

    let apikey_uri = uri("/tiles/12/2103/1361.png", &plain);
    let policy_uri = uri(&item_path(ITEM), &policy_client);
    let origins_uri = uri(&item_path(ITEM), &origins_client);
    let origin = app_origin(ITEM);
    let apikey = Call {
        uri: &apikey_uri,
        origin: None,
    };
    let policy = Call {
        uri: &policy_uri,
        origin: None,
    };
    let policy_origins = Call {
        uri: &origins_uri,
        origin: Some(&origin),
    };

    for (client, origin) in [(&policy_client, None), (&origins_client, Some(&*origin))] {
        let refused = |to: String, kind| {
            assert_refused(&rt, &layered, Call { uri: &to, origin }, kind);
        };
        refused(
            uri(&item_path(RULES), client),
            RejectionKind::ItemNotGranted,
        );
        refused(uri("/basemap", client), RejectionKind::PrivilegeMissing);
        let (ok, _) = outcome(
            &rt,
            &layered,
            Call {
                uri: &uri("/elevation", client),
                origin,
            },
        );
        assert_eq!(ok, None, "a privileged API without an item is reachable");
    }
    let elsewhere = app_origin(RULES);
    assert_refused(
        &rt,
        &layered,
        Call {
            uri: &origins_uri,
            origin: Some(&elsewhere),
        },
        RejectionKind::OriginNotAllowed,
    );

    let mut g = c.benchmark_group("policy");
    g.sample_size(50);
    bench_service(&mut g, &rt, "passthrough", &passthrough, apikey, &[]);
    bench_service(&mut g, &rt, "apikey", &layered, apikey, &[]);
    bench_service(&mut g, &rt, "policy", &layered, policy, &[RATELIMIT_LIMIT]);
    bench_service(
        &mut g,
        &rt,
        "policy_origins",
        &layered,
        policy_origins,
        &[RATELIMIT_LIMIT, VARY],
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
