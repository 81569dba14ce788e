//! The signed-URL path of [`AuthLayer`] beside its API-key path, in one run, on the same
//! store, routes and inner service as `benches/apikey.rs`.
//!
//! Each iteration clones the service and `oneshot`s a freshly built
//! `GET /tiles/12/2103/1361.png?…` on a current-thread Tokio runtime; the inner service
//! answers a small `Response<Full<Bytes>>`. The store holds 10,000 JavaScript clients of one
//! account, and each has an API key and a signed URL for `WorldStreets`, minted for a day.
//!
//! - `signed_vs_apikey/passthrough`: the inner service alone (the floor).
//! - `signed_vs_apikey/apikey` and `…/signed_url`: the success path with the same key or
//!   URL on every iteration.
//!   After its first request the same signed URL is answered from the thread's
//!   last-verified entry (its values compared, the signature in constant time), as the
//!   tiles of one map, which share one signature, are.
//! - `signed_vs_apikey/apikey_spread` and `…/signed_url_spread`: a different client on every
//!   iteration (a fixed permutation of all of them): every signed URL is hashed.
//! - `signed_vs_apikey/signed_url_bad_signature`: a URL whose signature is one character
//!   off (it reaches the store, as a well-formed unknown key does).
//!
//! Run with `cargo bench --bench signed`.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use gis_auth::client::{Account, AccountId, ClientSpec, Role, RoleSet};
use gis_auth::policy::{Api, RouteTable, TileUrlScope};
use gis_auth::signed::{TileUrlKey, TileUrlSigner};
use gis_auth::store::InMemoryStore;
use gis_auth::{AuthLayer, Rejection, RejectionKind};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

const CLIENTS: usize = 10_000;

/// Coprime with [`CLIENTS`]: each client is visited once per round.
const STRIDE: usize = 999_983;

const TILE: &str = "/tiles/12/2103/1361.png";

async fn tile(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"tile"))))
}

fn request(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .body(Full::default())
        .expect("a valid request")
}

/// The store, and for each client its API-key URI and its signed URI.
fn store_with(signer: &TileUrlSigner) -> (Arc<InMemoryStore>, Vec<String>, Vec<String>) {
    let store = Arc::new(InMemoryStore::new());
    let mut account = Account::new(
        AccountId::new("bench").expect("id"),
        "Bench",
        RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
    )
    .expect("account");
    // Over the default cap of 1,000 clients.
    account.plan = account.plan.clone().with_max_clients(None);
    let made = store.open_account(account).expect("created");
    let scope = TileUrlScope::new("WorldStreets");
    let ttl = Duration::from_secs(86_400);
    let (mut keys, mut signed) = (Vec::new(), Vec::new());
    let mut add = |client: &gis_auth::client::Client, key: &str| {
        keys.push(format!("{TILE}?apikey={key}"));
        signed.push(format!("{TILE}?{}", signer.mint(client, &scope, ttl).query));
    };
    add(&made.javascript.client, made.javascript.credential.expose());
    for _ in 1..CLIENTS {
        let created = store
            .add_client(&made.account.id, ClientSpec::javascript("Web map"))
            .expect("client");
        add(&created.client, created.credential.expose());
    }
    (store, keys, signed)
}

fn permuted(uris: &[String]) -> Vec<String> {
    let n = uris.len();
    (0..n).map(|i| uris[(i * STRIDE) % n].clone()).collect()
}

fn bench_service<S, ResB>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: &str,
    svc: &S,
    uris: &[String],
    expect: Option<RejectionKind>,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<ResB>, Error = Infallible> + Clone,
{
    let res = rt
        .block_on(svc.clone().oneshot(request(&uris[0])))
        .unwrap_or_else(|never| match never {});
    let refused = res.extensions().get::<Rejection>().map(Rejection::kind);
    assert_eq!(refused, expect, "{id}");
    if expect.is_none() {
        assert_eq!(res.status(), StatusCode::OK, "{id}");
    }
    let mut at = 0;
    g.bench_function(id, |b| {
        b.to_async(rt).iter(|| {
            let req = request(black_box(&uris[at]));
            at = (at + 1) % uris.len();
            svc.clone().oneshot(req)
        })
    });
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let routes = RouteTable::new()
        .route(
            Method::GET,
            "/tiles/{z}/{x}/{y}.png",
            Api::new("WorldStreets", [Role::EVALUATOR, Role::SUBSCRIBER]).plugin(true),
        )
        .expect("routes");
    let signer = TileUrlSigner::new(TileUrlKey::new("bench", &[5u8; 32]).expect("a key"));
    let (store, keys, signed) = store_with(&signer);
    let layer = AuthLayer::new(store, routes).signed_tile_urls(signer);
    let guarded = ServiceBuilder::new().layer(layer).service(service_fn(tile));
    let passthrough = service_fn(tile);

    let mut g = c.benchmark_group("signed_vs_apikey");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    bench_service(&mut g, &rt, "passthrough", &passthrough, &keys[..1], None);
    bench_service(&mut g, &rt, "apikey", &guarded, &keys[..1], None);
    bench_service(&mut g, &rt, "signed_url", &guarded, &signed[..1], None);
    bench_service(
        &mut g,
        &rt,
        "apikey_spread",
        &guarded,
        &permuted(&keys),
        None,
    );
    bench_service(
        &mut g,
        &rt,
        "signed_url_spread",
        &guarded,
        &permuted(&signed),
        None,
    );
    let mut bad = signed[0].clone();
    let at = bad.find("sig=").expect("a signature") + 4;
    let swap = if &bad[at..=at] == "A" { "B" } else { "A" };
    bad.replace_range(at..=at, swap);
    bench_service(
        &mut g,
        &rt,
        "signed_url_bad_signature",
        &guarded,
        &[bad],
        Some(RejectionKind::UnknownCredential),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
