//! The `apikey` path of [`AuthLayer`] against its floor, in one run.
//!
//! Every benchmark drives a service the way a server does: the service is built once, and
//! each iteration clones it and `oneshot`s a freshly built
//! `GET /tiles/12/2103/1361.png?apikey=…` on a current-thread Tokio runtime. Building the
//! request is part of every benchmark, the floor included, so it cancels out of the
//! differences. The inner service answers a small `Response<Full<Bytes>>`.
//!
//! - `apikey_clients`: `passthrough` (the same inner service without the layer),
//!   `tower_http_validate` (tower-http's `ValidateRequestHeaderLayer` with a static check:
//!   the query must equal one fixed `apikey=…`, the cheapest peer a service could put in
//!   front of its tiles) and the layer's success path with 1, 10,000 and 1,000,000 JavaScript clients in an
//!   [`InMemoryStore`], the same key on every iteration (the store's entries stay in the CPU
//!   caches, so this shows the cost of the code path and whether it grows with the store).
//! - `apikey_spread`: the success path at 10,000 and 1,000,000 clients with a different key
//!   on every iteration (a fixed permutation of all the store's keys), so lookups miss the
//!   CPU caches as they do when many clients share a server. Each size has its own floor,
//!   rotating through the same request URIs.
//! - `apikey_floor`: the steps no implementation of the rules can skip, alone: the SHA-256
//!   of the key (stores keep digests only), its format and checksum, the store lookup (1M
//!   clients, in memory, same key), rebuilding the URI without the key, the principal's
//!   request extension (a value of its size), the `Cache-Control: private` header on an
//!   empty header map, and one clock read.
//! - `apikey_rejections`: with 1,000,000 clients, the floor, the success path and the
//!   refusals: a garbage key, a key with one character changed (bad checksum), a well-formed
//!   key that was never stored (the only refusal that reaches the store) and no credential.
//!
//! A store of `n` clients is one account made with [`InMemoryStore::create_account`] (its
//! default JavaScript client is the first of the `n`; its default NativeConfidential client
//! comes on top) plus `n - 1` JavaScript clients made with [`InMemoryStore::create_client`].
//! Each store is built once, before the first group; the 1,000,000-client one takes several
//! seconds, and the whole run about two minutes.
//!
//! Run with `cargo bench --bench apikey`; `cargo bench --bench apikey -- rejections` runs one
//! group.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use gis_auth::client::{
    Account, AccountId, ClientSpec, CredentialKind, KeyDigest, KeyFormatError, PlainCredential,
    Plan, Role, RoleSet,
};
use gis_auth::clock::{Clock, SystemClock};
use gis_auth::credentials::CredentialRules;
use gis_auth::policy::{Api, RouteTable};
use gis_auth::store::{ClientStore, InMemoryStore};
use gis_auth::{AuthLayer, Rejection, RejectionKind};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_http::validate_request::{ValidateRequest, ValidateRequestHeaderLayer};

/// The static check of the tower-http baseline: the query must be exactly this.
#[derive(Clone)]
struct StaticQuery(String);

impl<B> ValidateRequest<B> for StaticQuery {
    type ResponseBody = Full<Bytes>;

    fn validate(&mut self, req: &mut Request<B>) -> Result<(), Response<Full<Bytes>>> {
        if req.uri().query() == Some(self.0.as_str()) {
            Ok(())
        } else {
            let mut refused = Response::new(Full::default());
            *refused.status_mut() = StatusCode::UNAUTHORIZED;
            Err(refused)
        }
    }
}

/// The store sizes, in JavaScript clients (API keys).
const SIZES: [usize; 3] = [1, 10_000, 1_000_000];

/// Steps through the keys in an order unrelated to how they were created (and so to where
/// the allocator put them); coprime with every size above, so each key is visited once per
/// round.
const STRIDE: usize = 999_983;

async fn tile(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"tile"))))
}

fn tile_uri(key: &str) -> String {
    format!("/tiles/12/2103/1361.png?apikey={key}")
}

fn request(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .body(Full::default())
        .expect("a valid request")
}

/// A store with `clients` API keys, and the request URI of each key in creation order.
fn store_with(clients: usize) -> (Arc<InMemoryStore>, Vec<String>) {
    let store = Arc::new(InMemoryStore::new());
    let made = store
        .open_account(
            Account::new(
                AccountId::new("bench").expect("id"),
                "Bench",
                RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
            )
            .expect("account")
            // As many clients as the bench needs: no cap on the account.
            .with_plan(Plan::default().with_max_clients(None)),
        )
        .expect("created");
    let mut uris = Vec::with_capacity(clients);
    uris.push(tile_uri(made.javascript.credential.expose()));
    while uris.len() < clients {
        let created = store
            .add_client(&made.account.id, ClientSpec::javascript("Web map"))
            .expect("client");
        uris.push(tile_uri(created.credential.expose()));
    }
    (store, uris)
}

/// `uris` visited with [`STRIDE`].
fn permuted(mut uris: Vec<String>) -> Vec<String> {
    let n = uris.len();
    (0..n)
        .map(|i| std::mem::take(&mut uris[(i * STRIDE) % n]))
        .collect()
}

/// `key` with its first random character changed: right prefix, length and alphabet, wrong
/// checksum.
fn with_bad_checksum(key: &str) -> String {
    let at = CredentialKind::ApiKey.prefix().len();
    let mut typo = key.to_owned();
    let swap = if &key[at..=at] == "A" { "B" } else { "A" };
    typo.replace_range(at..=at, swap);
    assert_eq!(
        CredentialKind::ApiKey.check(&typo),
        Err(KeyFormatError::Checksum)
    );
    typo
}

/// Benchmarks `svc` on the requests for `uris`, one after the other, after checking that the
/// first one has the expected outcome (`None`: 200; otherwise that refusal).
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
            at += 1;
            if at == uris.len() {
                at = 0;
            }
            svc.clone().oneshot(req)
        })
    });
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
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
    let passthrough = service_fn(tile);
    let mut largest_store = None;
    let stores = SIZES.map(|n| {
        let (store, uris) = store_with(n);
        largest_store = Some(store.clone());
        let svc = ServiceBuilder::new()
            .layer(AuthLayer::new(store, routes.clone()))
            .service_fn(tile);
        (n, svc, uris)
    });

    let mut g = c.benchmark_group("apikey_clients");
    configure(&mut g);
    let hot = &stores[0].2[..1];
    bench_service(&mut g, &rt, "passthrough", &passthrough, hot, None);
    let expected_query = hot[0].split_once('?').expect("a query").1.to_owned();
    let validated = ServiceBuilder::new()
        .layer(ValidateRequestHeaderLayer::custom(StaticQuery(
            expected_query,
        )))
        .service_fn(tile);
    bench_service(&mut g, &rt, "tower_http_validate", &validated, hot, None);
    for (n, svc, uris) in &stores {
        bench_service(&mut g, &rt, &format!("layer/{n}"), svc, &uris[..1], None);
    }
    g.finish();

    let mut g = c.benchmark_group("apikey_spread");
    configure(&mut g);
    for (n, svc, uris) in stores.iter().filter(|(n, ..)| *n > 1) {
        let uris = permuted(uris.clone());
        let id = format!("passthrough/{n}");
        bench_service(&mut g, &rt, &id, &passthrough, &uris, None);
        bench_service(&mut g, &rt, &format!("layer/{n}"), svc, &uris, None);
    }
    g.finish();

    let (_, largest, uris) = &stores[SIZES.len() - 1];
    let largest_store = largest_store.expect("a store");
    let valid = uris[0].clone();
    let key = valid.rsplit_once('=').expect("an apikey parameter").1;
    let unknown = PlainCredential::generate(CredentialKind::ApiKey).expect("random source");
    let cases = [
        (
            "garbage_key",
            tile_uri("not-a-key"),
            RejectionKind::MalformedCredential,
        ),
        (
            "bad_checksum",
            tile_uri(&with_bad_checksum(key)),
            RejectionKind::MalformedCredential,
        ),
        (
            "unknown_key",
            tile_uri(unknown.expose()),
            RejectionKind::UnknownCredential,
        ),
        (
            "no_credential",
            "/tiles/12/2103/1361.png".to_owned(),
            RejectionKind::MissingCredential,
        ),
    ];
    // The steps every admitted API-key request must take whatever the code around them:
    // the floor of the layer's added cost.
    let mut g = c.benchmark_group("apikey_floor");
    configure(&mut g);
    let key_text = key.to_owned();
    let digest = KeyDigest::of(&key_text);
    let store = largest_store;
    let uri: Uri = valid.parse().expect("a URI");
    let rules = CredentialRules::default();
    g.bench_function("sha256_of_key", |b| {
        b.iter(|| KeyDigest::of(black_box(&key_text)))
    });
    g.bench_function("format_and_checksum", |b| {
        b.iter(|| CredentialKind::ApiKey.check(black_box(&key_text)))
    });
    g.bench_function("store_lookup_1m", |b| {
        b.iter(|| store.resolve_key_now(black_box(&digest)))
    });
    g.bench_function("strip_key_from_uri", |b| {
        b.iter(|| rules.strip_from_uri(black_box(&uri)))
    });
    g.bench_function("principal_extension", |b| {
        b.iter(|| {
            let mut ext = http::Extensions::new();
            ext.insert(black_box([0u64; 13]));
            ext
        })
    });
    g.bench_function("cache_control_private", |b| {
        b.iter(|| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("private"),
            );
            headers
        })
    });
    g.bench_function("clock", |b| b.iter(|| SystemClock.now()));
    g.finish();

    let mut g = c.benchmark_group("apikey_rejections");
    configure(&mut g);
    let valid = [valid];
    bench_service(&mut g, &rt, "passthrough", &passthrough, &valid, None);
    bench_service(&mut g, &rt, "success", largest, &valid, None);
    for (name, uri, kind) in cases {
        bench_service(&mut g, &rt, name, largest, &[uri], Some(kind));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
