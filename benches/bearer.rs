//! The bearer-token path, against its floors, in one run:
//!
//! - `passthrough`: the same inner service without the layer;
//! - `bare_decode`: `jsonwebtoken::decode` of the same token with the same key and algorithm;
//! - `layer_cache_miss`: the layer with the verified-token cache turned off (header checks,
//!   signature, claims, store re-check, policy);
//! - `layer_cache_hit`: the layer with the cache (digest lookup, deny-list probe, store
//!   re-check, policy);
//! - `layer_cache_hit_10k_revoked`: the same with 10,000 other tokens on the deny list;
//! - `passthrough_apikey` and `layer_apikey`: the API-key path on the same layer, store and
//!   route (`GET /geocode?q=paris&apikey=…` from the account's JavaScript client, the
//!   route made a plugin API), beside its own passthrough: what a cached token adds is
//!   compared with what a key adds, in one run;
//! - `bearer_floor`: the steps of a cache hit that no implementation of the rules can skip,
//!   alone: the SHA-256 of the token (the cache keeps digests, never tokens), a hit in a
//!   moka cache of that size, re-reading the client by id from the store (revocation takes
//!   effect on the next request), and one clock read.
//!
//! Run with `cargo bench --bench bearer`.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gis_auth::AuthLayer;
use gis_auth::client::{Account, AccountId, KeyDigest, Role, RoleSet};
use gis_auth::clock::{Clock, SystemClock};
use gis_auth::policy::{Api, RouteTable};
use gis_auth::store::{ClientStore, InMemoryStore};
use gis_auth::token::{
    AccessClaims, InMemoryRevocations, JwtVerifier, Revocations, SigningKey, TokenIssuer,
};
use http::{Method, Request, Response};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

const SECRET: [u8; 32] = [42; 32];

async fn tile(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"tile"))))
}

fn key_request(key: &str) -> Request<Full<Bytes>> {
    Request::get(format!("/geocode?q=paris&apikey={key}"))
        .body(Full::default())
        .expect("a valid request")
}

fn request(token: &str) -> Request<Full<Bytes>> {
    Request::get("/geocode?q=paris")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .expect("a valid request")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let store = Arc::new(InMemoryStore::new());
    let made = store
        .open_account(
            Account::new(
                AccountId::new("bench").expect("id"),
                "Bench",
                RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
            )
            .expect("account"),
        )
        .expect("created");
    let issuer = TokenIssuer::new(SigningKey::hs256("k1", &SECRET).expect("key"));
    let client = &made.native.client;
    let token = issuer
        .issue(client, &made.account, client.roles(), 0, None)
        .expect("token")
        .access_token;
    let routes = RouteTable::new()
        .route(
            Method::GET,
            "/geocode",
            Api::new("Geocoder", [Role::EVALUATOR, Role::SUBSCRIBER]).plugin(true),
        )
        .expect("routes");
    let dyn_store: Arc<dyn ClientStore> = store.clone();
    let revoked = Arc::new(InMemoryRevocations::new());
    let exp = SystemClock.now() + time::Duration::hours(1);
    for n in 0..10_000 {
        rt.block_on(revoked.revoke(&format!("revoked-{n}"), exp))
            .expect("revoked");
    }
    let layered = |cache: u64, list: Option<Arc<InMemoryRevocations>>| {
        let mut verifier =
            JwtVerifier::new(issuer.clone(), dyn_store.clone()).cache_capacity(cache);
        if let Some(list) = list {
            verifier = verifier.revocations(list);
        }
        ServiceBuilder::new()
            .layer(
                AuthLayer::new(dyn_store.clone(), routes.clone())
                    .token_verifier(Arc::new(verifier)),
            )
            .service(service_fn(tile))
    };
    let miss = layered(0, None);
    let hit = layered(1000, None);
    let hit_revoked = layered(1000, Some(revoked));
    let passthrough = service_fn(tile);

    let api_key = made.javascript.credential.expose().to_owned();
    // Every path must really succeed, or the figures mean nothing.
    for svc in [miss.clone(), hit.clone(), hit_revoked.clone()] {
        let res = rt
            .block_on(svc.oneshot(request(&token)))
            .expect("infallible");
        assert_eq!(res.status(), 200);
    }
    let res = rt
        .block_on(hit.clone().oneshot(key_request(&api_key)))
        .expect("infallible");
    assert_eq!(res.status(), 200);

    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["gis-auth"]);
    validation.set_audience(&["gis-auth"]);
    let key = DecodingKey::from_secret(&SECRET);

    let mut g = c.benchmark_group("bearer");
    g.measurement_time(Duration::from_secs(4));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("passthrough", |b| {
        b.iter(|| {
            let mut svc = passthrough;
            rt.block_on(svc.call(request(black_box(&token))))
        })
    });
    g.bench_function("bare_decode", |b| {
        b.iter(|| {
            let req = request(black_box(&token));
            let header = req.headers()["authorization"].to_str().expect("ascii");
            jsonwebtoken::decode::<AccessClaims>(&header[7..], &key, &validation).expect("valid")
        })
    });
    g.bench_function("layer_cache_miss", |b| {
        b.iter(|| rt.block_on(miss.clone().oneshot(request(black_box(&token)))))
    });
    g.bench_function("layer_cache_hit", |b| {
        b.iter(|| rt.block_on(hit.clone().oneshot(request(black_box(&token)))))
    });
    g.bench_function("layer_cache_hit_10k_revoked", |b| {
        b.iter(|| rt.block_on(hit_revoked.clone().oneshot(request(black_box(&token)))))
    });
    g.bench_function("passthrough_apikey", |b| {
        b.iter(|| {
            let mut svc = passthrough;
            rt.block_on(svc.call(key_request(black_box(api_key.as_str()))))
        })
    });
    g.bench_function("layer_apikey", |b| {
        b.iter(|| {
            rt.block_on(
                hit.clone()
                    .oneshot(key_request(black_box(api_key.as_str()))),
            )
        })
    });
    g.finish();

    let digest = KeyDigest::of(&token);
    let cache: moka::sync::Cache<KeyDigest, Arc<String>> = moka::sync::Cache::builder()
        .max_capacity(1000)
        .time_to_live(Duration::from_secs(3600))
        .build();
    cache.insert(digest, Arc::new(String::from("claims")));
    let id = client.id().clone();
    let mut g = c.benchmark_group("bearer_floor");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("sha256_of_token", |b| {
        b.iter(|| KeyDigest::of(black_box(&token)))
    });
    g.bench_function("moka_cache_hit", |b| {
        b.iter(|| cache.get(black_box(&digest)))
    });
    g.bench_function("store_lookup_by_id", |b| {
        b.iter(|| store.resolve_id_now(black_box(&id)))
    });
    g.bench_function("clock", |b| b.iter(|| SystemClock.now()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
