//! The GIS example server without its command line: the route table, the axum router behind
//! [`AuthLayer`] (and CORS around both), the demo store, loading a clients file, and the
//! credential lines printed at startup. `main.rs` parses flags and serves;
//! `tests/it/example_server/` drives this.

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path as UrlPath, RawQuery};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use gis_auth::admin::AdminApi;
use gis_auth::client::{Account, AccountId, ClientKind, Role, RoleSet};
use gis_auth::clock::{Clock, SystemClock};
use gis_auth::console::Console;
use gis_auth::document::{ClientsFile, ClientsFileError};
use gis_auth::events::EventSink;
use gis_auth::layer::CredentialSource;
use gis_auth::layer::Meter;
use gis_auth::limits::SharedRateLimiter;
use gis_auth::limits::{InMemoryUsageCounter, UsageCounter};
use gis_auth::policy::{Api, Cost};
use gis_auth::policy::{MAX_ELEVATION_POINTS, RouteTable, elevation_points_cost, standard_routes};
use gis_auth::restrict::TrustedProxies;
use gis_auth::signed::{TileUrlKey, TileUrlRequest, TileUrlSigner, mint_tile_template};
use gis_auth::store::{GeneratedCredential, InMemoryStore, ManageError, ManagedStore};
use gis_auth::token::{
    JWKS_PATH, JwksService, JwtVerifier, LockoutPolicy, METADATA_PATH, MetadataService,
    Revocations, SigningKey, TokenIssuer, TokenService, TokenVerifier,
};
use gis_auth::{AuthLayer, ConfigError, Principal};
use serde::Serialize;
use serde_json::json;
use tower::{Layer, Service, ServiceBuilder};

#[path = "wms.rs"]
pub mod wms;
use super::logs;

/// The id of the embedded demo account.
pub const DEMO_ACCOUNT: &str = "demo";

/// The tile every image route serves: 256×256 pixels of map-background beige.
pub const TILE_PNG: &[u8] = include_bytes!("tile.png");

/// The deepest zoom level a tile address may have.
pub const MAX_ZOOM: u32 = 22;

/// What the server is configured with besides its store.
#[derive(Clone, Default)]
pub struct Options {
    /// The proxies whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: TrustedProxies,
    /// Mints the access tokens of `POST /oauth/token`; its `iss` must be an http(s) URL
    /// (the server metadata is built from it). When `None`, one with a fresh Ed25519 key
    /// (so tokens do not outlive the process), issuer and audience [`DEFAULT_ISSUER`], on
    /// [`Options::clock`].
    pub token_issuer: Option<TokenIssuer>,
    /// Verifies `Authorization: Bearer` tokens; when `None`, a [`JwtVerifier`] for the
    /// token issuer's tokens (the one `/oauth/introspect` and `/oauth/revoke` use).
    pub token_verifier: Option<Arc<dyn TokenVerifier>>,
    /// The deny list of revoked tokens (in this process when `None`; shared through the
    /// database with a PostgreSQL `--store`).
    pub revocations: Option<Arc<dyn Revocations>>,
    /// The token endpoint's brute-force protection (the default policy when `None`).
    pub lockout: Option<LockoutPolicy>,
    /// The clock for expiry decisions (the system clock when `None`).
    pub clock: Option<Arc<dyn Clock>>,
    /// Counts usage against daily quotas (in memory when `None`).
    pub usage: Option<Arc<dyn UsageCounter>>,
    /// Reads and manages clients here instead of in the store given to [`router`] (a
    /// store shared with other instances: `--store`).
    pub store: Option<Arc<dyn ManagedStore>>,
    /// Enforces clients' rate limits across instances (in this process when `None`).
    pub rate_limiter: Option<Arc<dyn SharedRateLimiter>>,
    /// Where the layer tells its events (quota thresholds, expiries); the store's own
    /// sink is set where the store is made.
    pub events: Option<Arc<dyn EventSink>>,
    /// Signs and verifies the signed tile URLs of `POST /account/tile-urls` and
    /// `GET /tiles.json`; when `None`, one with a fresh random key on [`Options::clock`].
    pub tile_url_signer: Option<TileUrlSigner>,
}

/// The issuer (and audience) of the token issuer made when none is given: the server's
/// default address.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";

/// The environment variable holding the token signing secret shared by instances.
pub const TOKEN_SECRET_VAR: &str = "GIS_TOKEN_SECRET";

/// Where the token signing key comes from: the flags and the environment.
#[derive(Debug, Default)]
pub struct KeySource<'a> {
    /// `--signing-key FILE`.
    pub file: Option<&'a Path>,
    /// `--signing-key-id KID`.
    pub kid: Option<&'a str>,
    /// The value of [`TOKEN_SECRET_VAR`], if it is set.
    pub secret: Option<std::ffi::OsString>,
}

impl KeySource<'_> {
    /// The signing key: the PEM file's, the shared secret's, or a fresh Ed25519 key.
    pub fn signing_key(&self) -> Result<SigningKey, Box<dyn Error + Send + Sync>> {
        match (self.file, &self.secret) {
            (Some(_), Some(_)) => Err(format!(
                "--signing-key and {TOKEN_SECRET_VAR} both name a signing key: give one"
            )
            .into()),
            (Some(path), None) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read --signing-key `{}`: {e}", path.display()))?;
                SigningKey::from_private_pem(self.kid, &pem)
                    .map_err(|e| format!("--signing-key `{}`: {e}", path.display()).into())
            }
            (None, Some(secret)) => Ok(SigningKey::hs256(
                self.kid.unwrap_or("gis-server-shared"),
                secret.as_encoded_bytes(),
            )?),
            (None, None) => Ok(SigningKey::generate_ed25519(self.kid)?),
        }
    }
}

/// The token issuer: `key` signs, tokens carry `iss` `issuer` and `aud` `audience`.
pub fn token_issuer(
    key: SigningKey,
    issuer: &str,
    audience: &str,
) -> Result<TokenIssuer, ConfigError> {
    // Checked here so a bad `--issuer` stops the start, not the metadata route.
    let issuer = TokenIssuer::new(key).issuer(issuer).audience(audience);
    MetadataService::new(&issuer)?;
    Ok(issuer)
}

/// A store ready to serve, with the credentials generated while filling it. The plaintexts
/// exist only here: print them once and drop them.
#[derive(Debug)]
pub struct Seeded {
    /// The store.
    pub store: Arc<InMemoryStore>,
    /// The credentials generated for its clients, in the order the clients were created.
    pub generated: Vec<GeneratedCredential>,
}

/// A clients file that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read clients file `{}`: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but is not a valid clients file; the source names the client (or
    /// account) and the field.
    #[error("clients file `{}`: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        source: ClientsFileError,
    },
}

/// The largest batch body `POST /elevation` accepts, in bytes.
pub const MAX_ELEVATION_BODY: usize = 1024 * 1024;

/// Which API each route is, who may call it, what it costs, and which routes are public:
/// the library's standard GIS table.
pub fn route_table() -> Result<RouteTable, ConfigError> {
    // The TileJSON document of the street map: guarded as that API, free of charge.
    standard_routes()?.route(
        Method::GET,
        "/tiles.json",
        Api::new("WorldStreets", [Role::EVALUATOR, Role::SUBSCRIBER])
            .plugin(true)
            .cost(Cost::Free),
    )
}

/// The key id of the tile URL key the server generates when given no signer.
pub const GENERATED_TILE_KID: &str = "gis-server-tiles-1";

/// The application: every route of [`route_table`], guarded by an [`AuthLayer`] reading
/// clients from `store`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so IP rules see the peer address.
pub fn router(store: Arc<InMemoryStore>, options: Options) -> Result<Router, ConfigError> {
    router_guarded_by(store, options, |auth| auth)
}

/// The application with `guard(auth)` where [`router`] puts the [`AuthLayer`] `auth`, and
/// everything else the same: how the load test's baselines take the layer out of the very
/// router it guards (`bench::baselines`).
pub fn router_guarded_by<L>(
    store: Arc<InMemoryStore>,
    options: Options,
    guard: impl FnOnce(AuthLayer) -> L,
) -> Result<Router, ConfigError>
where
    L: Layer<Router>,
    L::Service: Service<Request<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request<Body>>>::Response: IntoResponse,
    <L::Service as Service<Request<Body>>>::Future: Send + 'static,
{
    let store: Arc<dyn ManagedStore> = match options.store.clone() {
        Some(shared) => shared,
        None => store,
    };
    let issuer = match options.token_issuer {
        Some(issuer) => issuer,
        None => {
            let issuer = TokenIssuer::new(SigningKey::generate_ed25519(None)?)
                .issuer(DEFAULT_ISSUER)
                .audience(DEFAULT_ISSUER);
            match &options.clock {
                Some(clock) => issuer.clock(clock.clone()),
                None => issuer,
            }
        }
    };
    let mut jwt = JwtVerifier::new(issuer.clone(), store.clone());
    if let Some(list) = options.revocations {
        jwt = jwt.revocations(list);
    }
    let verifier = options
        .token_verifier
        .unwrap_or_else(|| Arc::new(jwt.clone()));
    let metadata = MetadataService::new(&issuer)?;
    let jwks = JwksService::new(issuer.clone());
    let peer =
        |ext: &axum::http::Extensions| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let mut token_endpoint = TokenService::new(issuer, store.clone())
        .trusted_proxies(options.trusted_proxies.clone())
        .peer_addr(peer);
    if let Some(policy) = options.lockout {
        token_endpoint = token_endpoint.lockout(policy);
    }
    // Beside the token endpoint, authenticating as it does and counting failures with it.
    let introspection = token_endpoint.introspection(jwt.clone());
    let revocation = token_endpoint.revocation(jwt);
    let clock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let usage = options
        .usage
        .unwrap_or_else(|| Arc::new(InMemoryUsageCounter::new()));
    // No `allow_preflight`: the CORS layer outside answers preflights before this layer.
    let signer = match options.tile_url_signer {
        Some(signer) => signer,
        None => TileUrlSigner::new(TileUrlKey::generate(GENERATED_TILE_KID)?).clock(clock.clone()),
    };
    let admin = AdminApi::new(store.clone(), usage.clone())
        .clock(clock.clone())
        .tile_urls(signer.clone(), route_table()?);
    let tilejson = TileJson {
        signer: signer.clone(),
        routes: Arc::new(route_table()?),
    };
    let auth = AuthLayer::new(store, route_table()?)
        .signed_tile_urls(signer)
        .trusted_proxies(options.trusted_proxies)
        .peer_addr(peer)
        .token_verifier(verifier)
        .clock(clock)
        .usage_counter(usage);
    let auth = match options.rate_limiter {
        Some(limiter) => auth.shared_rate_limiter(limiter),
        None => auth,
    };
    let auth = match options.events {
        Some(sink) => auth.event_sink(sink),
        None => auth,
    };
    // axum parameters are whole segments, so the tile routes take `{y}` and the handler
    // checks the `.png` suffix; the route table above matches `{y}.png` itself. The token,
    // introspection and revocation endpoints authenticate their callers themselves, so they
    // are mounted outside the layer.
    let wms = wms::Wms::default();
    let routes = Router::new()
        .route("/tiles/{z}/{x}/{y}", get(tile))
        .route("/imagery/{z}/{x}/{y}", get(tile))
        .route("/elevation", get(elevation).post(elevation_batch))
        .route("/reverse-geocode", get(reverse_geocode))
        .route("/geocode", get(geocode))
        .route(
            "/wms",
            get(
                move |caller: Option<Extension<Principal>>,
                      headers: HeaderMap,
                      RawQuery(query): RawQuery| async move {
                    wms.answer(caller, &headers, query.as_deref())
                },
            ),
        )
        .route(
            "/items/{item}/metadata",
            get(item_metadata).put(put_item_metadata),
        )
        .route(
            "/tiles.json",
            get(move |principal, headers| tiles_json(tilejson.clone(), principal, headers)),
        )
        .route_service("/account/{*rest}", admin)
        .route("/health", get(health))
        // Public in the route table, like /health.
        .route_service(JWKS_PATH, jwks)
        .route_service(METADATA_PATH, metadata);
    // The auth layer matches its own route table, so it wraps the router once rather than
    // route by route (an axum route clones its layers' services on every request). CORS
    // wraps the auth layer: it answers preflights without a credential, and puts its
    // headers on the auth layer's refusals too, so a browser map on another origin reads
    // their status, error and `Retry-After` instead of an opaque network error. Between
    // the two, every refusal is logged.
    let guarded = ServiceBuilder::new()
        .layer(cors())
        .map_response(|res: <L::Service as Service<Request<Body>>>::Response| {
            logs::log_refusal(res.into_response())
        })
        .layer(guard(auth))
        .service(routes);
    // The console's files are public, like the token endpoint; what the page does with
    // them needs a token, which the admin API behind the layer checks.
    let console = Console::new();
    Ok(Router::new()
        .route_service("/console", console.clone())
        .route_service("/console/", console.clone())
        .route_service("/console/{*file}", console)
        .route_service("/oauth/token", token_endpoint)
        .route_service("/oauth/introspect", introspection)
        .route_service("/oauth/revoke", revocation)
        .fallback_service(guarded))
}

/// The webhook of `--webhook URL --webhook-secret-file FILE`: events POSTed to `url`,
/// signed with the file's text (surrounding whitespace removed). The error names the flag.
#[cfg(feature = "webhook")]
pub fn webhook_sink(url: &str, secret_file: &Path) -> Result<Arc<dyn EventSink>, String> {
    use gis_auth::events::WebhookSink;

    let secret = std::fs::read_to_string(secret_file)
        .map_err(|e| format!("--webhook-secret-file `{}`: {e}", secret_file.display()))?;
    let sink = WebhookSink::options(url, secret.trim().as_bytes())
        .start()
        .map_err(|e| format!("--webhook: {e}"))?;
    Ok(Arc::new(sink))
}

/// A store with the demo account (roles User and Evaluator) and its two default clients,
/// one of each kind, with their fresh credentials.
#[allow(
    dead_code,
    reason = "the tests' entry point; the server passes its own store"
)]
pub fn demo_store() -> Result<Seeded, ManageError> {
    demo_store_in(InMemoryStore::new())
}

/// [`demo_store`] in `store` (one telling an event sink, say).
pub fn demo_store_in(store: InMemoryStore) -> Result<Seeded, ManageError> {
    let store = Arc::new(store);
    let account = Account::new(
        AccountId::new(DEMO_ACCOUNT)?,
        "Demo account",
        RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
    )?;
    let created = store.open_account(account)?;
    let generated = [created.javascript, created.native]
        .into_iter()
        .map(GeneratedCredential::from)
        .collect();
    Ok(Seeded { store, generated })
}

/// A store filled from the text of a clients file (see `clients.example.json`).
#[allow(
    dead_code,
    reason = "the tests' entry point; the server passes its own store"
)]
pub fn load_clients_json(text: &str) -> Result<Seeded, ClientsFileError> {
    load_clients_json_in(text, InMemoryStore::new())
}

/// [`load_clients_json`] into `store`.
pub fn load_clients_json_in(text: &str, store: InMemoryStore) -> Result<Seeded, ClientsFileError> {
    let store = Arc::new(store);
    let generated = ClientsFile::from_json(text)?.load_into(&store)?;
    Ok(Seeded { store, generated })
}

/// A store filled from the clients file at `path`.
#[allow(
    dead_code,
    reason = "the tests' entry point; the server passes its own store"
)]
pub fn load_clients_file(path: &Path) -> Result<Seeded, LoadError> {
    load_clients_file_in(path, InMemoryStore::new())
}

/// [`load_clients_file`] into `store`.
pub fn load_clients_file_in(path: &Path, store: InMemoryStore) -> Result<Seeded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    load_clients_json_in(&text, store).map_err(|source| LoadError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// One generated credential as printed at startup, a JSON object on one line:
/// `{"client": "<id>", "api_key": "…"}` for a JavaScript client,
/// `{"client": "<id>", "client_id": "<id>", "client_secret": "…"}` for a NativeConfidential
/// one.
pub fn credential_line(generated: &GeneratedCredential) -> serde_json::Result<String> {
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Line<'a> {
        ApiKey {
            client: &'a str,
            api_key: &'a str,
        },
        ClientSecret {
            client: &'a str,
            client_id: &'a str,
            client_secret: &'a str,
        },
    }
    let client = generated.client.as_str();
    let secret = generated.credential.expose();
    let line = match generated.kind {
        ClientKind::JavaScript => Line::ApiKey {
            client,
            api_key: secret,
        },
        ClientKind::NativeConfidential => Line::ClientSecret {
            client,
            client_id: client,
            client_secret: secret,
        },
    };
    serde_json::to_string(&line)
}

/// Parses the `--trusted-proxies` flag: CIDR blocks or addresses, separated by commas.
pub fn parse_trusted_proxies(list: &str) -> Result<TrustedProxies, ConfigError> {
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    if entries.iter().any(|e| e.is_empty()) {
        return Err(ConfigError::InvalidIpRule {
            rule: list.to_owned(),
            reason: "the list has an empty entry",
        });
    }
    TrustedProxies::parse(entries)
}

/// A refused request, answered as JSON in the layer's shape: `error`, `error_description`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl ApiError {
    fn bad_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            description: description.into(),
        }
    }

    fn not_found(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            description: description.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        (self.status, Json(body)).into_response()
    }
}

/// The query parameters of a request, looked up by name ignoring ASCII case (OGC clients
/// send `REQUEST`, `Request` or `request` alike).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        Self(pairs.into_owned().collect())
    }

    /// The value of `name`; a parameter given twice is ambiguous and refused.
    fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "`{name}` is given more than once"
            )));
        }
        Ok(first)
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)?
            .ok_or_else(|| ApiError::bad_request(format!("`{name}` is required")))
    }

    fn number(&self, name: &str, range: RangeInclusive<f64>) -> Result<f64, ApiError> {
        let value = self
            .required(name)?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| ApiError::bad_request(format!("`{name}` is not a number")))?;
        if !range.contains(&value) {
            return Err(ApiError::bad_request(format!(
                "`{name}` is between {} and {}",
                range.start(),
                range.end()
            )));
        }
        Ok(value)
    }

    fn point(&self) -> Result<(f64, f64), ApiError> {
        Ok((
            self.number("lat", -90.0..=90.0)?,
            self.number("lon", -180.0..=180.0)?,
        ))
    }
}

fn png() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            // Cacheable by the browser; the layer makes it `private` for API-key requests so
            // a shared cache never serves a tile around the key checks.
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        TILE_PNG,
    )
        .into_response()
}

/// The CORS layer around the auth layer: browser maps on other origins can send
/// `Authorization: Bearer` or `X-Api-Key`, and read the status, the quota headers,
/// `Retry-After` and the challenge of every answer, refusals included.
pub fn cors() -> tower_http::cors::CorsLayer {
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            gis_auth::credentials::API_KEY_HEADER,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            gis_auth::layer::RATELIMIT_LIMIT,
            gis_auth::layer::RATELIMIT_REMAINING,
            gis_auth::layer::RATELIMIT_RESET,
            gis_auth::layer::QUOTA_WARNING,
        ])
}

/// The version of the tile images, part of every tile's `ETag`: a strong validator changes
/// whenever the bytes do.
fn tiles_version() -> u32 {
    crc32fast::hash(TILE_PNG)
}

/// The strong `ETag` of a tile: tiles are addressed by their style (the route) and z/x/y,
/// and the version of the images.
pub fn tile_etag(style: &str, z: u32, x: u32, y: u32) -> String {
    format!("\"{style}-{z}-{x}-{y}-{:08x}\"", tiles_version())
}

/// Whether `If-None-Match` (every value of it) matches `etag`: `*`, or the same opaque tag
/// with or without `W/` (RFC 9110 §13.1.2 compares weakly).
fn none_match(headers: &axum::http::HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// `GET /tiles/{z}/{x}/{y}.png` and `GET /imagery/{z}/{x}/{y}.png`, with a strong `ETag`.
/// A matching `If-None-Match` is answered 304 here, behind the auth layer: the request was
/// checked and charged like the tile, and a refused one never gets that far.
async fn tile(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    path: Result<UrlPath<(String, String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let UrlPath((z, x, y)) =
        path.map_err(|_| ApiError::bad_request("a tile address is /{z}/{x}/{y}.png"))?;
    let y = y
        .strip_suffix(".png")
        .ok_or_else(|| ApiError::not_found("tiles are served as `.png` only"))?;
    let z: u32 =
        z.parse().ok().filter(|z| *z <= MAX_ZOOM).ok_or_else(|| {
            ApiError::bad_request(format!("z is a zoom level from 0 to {MAX_ZOOM}"))
        })?;
    let tiles_per_side = 1u32 << z;
    let mut index = [0u32; 2];
    for ((name, value), slot) in [("x", x.as_str()), ("y", y)].into_iter().zip(&mut index) {
        *slot = value
            .parse::<u32>()
            .ok()
            .filter(|v| *v < tiles_per_side)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} is a tile index from 0 to {} at zoom {z}",
                    tiles_per_side - 1
                ))
            })?;
    }
    let style = if uri.path().starts_with("/imagery/") {
        "imagery"
    } else {
        "streets"
    };
    let etag = tile_etag(style, z, index[0], index[1]);
    let mut res = if none_match(&headers, &etag) {
        (
            StatusCode::NOT_MODIFIED,
            [(header::CACHE_CONTROL, "max-age=86400")],
        )
            .into_response()
    } else {
        png()
    };
    if let Ok(value) = axum::http::HeaderValue::try_from(etag) {
        res.headers_mut().insert(header::ETAG, value);
    }
    Ok(res)
}

/// A made-up but deterministic terrain height in metres, to 0.1 m.
fn elevation_m(lat: f64, lon: f64) -> f64 {
    let (phi, lambda) = (lat.to_radians(), lon.to_radians());
    let relief = 2400.0 * (3.0 * phi).sin() * (2.0 * lambda).cos()
        + 900.0 * (7.0 * lambda + phi).sin() * (5.0 * phi).cos();
    (relief * 10.0).round() / 10.0
}

/// `GET /elevation?lat=&lon=` for one point, `GET /elevation?points=lat,lon;lat,lon;…` for
/// up to [`MAX_ELEVATION_POINTS`].
async fn elevation(RawQuery(query): RawQuery) -> Result<Json<serde_json::Value>, ApiError> {
    let params = Params::parse(query.as_deref());
    let Some(points) = params.get("points")? else {
        let (lat, lon) = params.point()?;
        return Ok(Json(json!({
            "lat": lat,
            "lon": lon,
            "elevation_m": elevation_m(lat, lon),
            "model": "synthetic",
        })));
    };
    let points: Vec<&str> = points.split(';').filter(|p| !p.trim().is_empty()).collect();
    if points.is_empty() || points.len() > MAX_ELEVATION_POINTS {
        return Err(ApiError::bad_request(format!(
            "`points` lists 1 to {MAX_ELEVATION_POINTS} `lat,lon` pairs separated by `;`"
        )));
    }
    let mut results = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let bad = || ApiError::bad_request(format!("point {} is not `lat,lon`", i + 1));
        let (lat, lon) = p.split_once(',').ok_or_else(bad)?;
        let lat: f64 = lat
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| (-90.0..=90.0).contains(v))
            .ok_or_else(bad)?;
        let lon: f64 = lon
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| (-180.0..=180.0).contains(v))
            .ok_or_else(bad)?;
        results.push(json!({"lat": lat, "lon": lon, "elevation_m": elevation_m(lat, lon)}));
    }
    Ok(Json(json!({"points": results, "model": "synthetic"})))
}

/// The batch body of `POST /elevation`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    points: Vec<(f64, f64)>,
}

/// `POST /elevation` with `{"points": [[lat, lon], …]}`: up to [`MAX_ELEVATION_POINTS`],
/// charged one transaction per started 100 through the request's [`Meter`] once the body
/// is read and valid (a malformed batch costs nothing).
async fn elevation_batch(
    meter: Option<Extension<Meter>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if body.len() > MAX_ELEVATION_BODY {
        return Err(ApiError::bad_request("a batch body is at most 1 MiB"));
    }
    let batch: Batch = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("the body is {\"points\": [[lat, lon], …]} in JSON"))?;
    if batch.points.is_empty() || batch.points.len() > MAX_ELEVATION_POINTS {
        return Err(ApiError::bad_request(format!(
            "`points` lists 1 to {MAX_ELEVATION_POINTS} `[lat, lon]` pairs"
        )));
    }
    for (i, (lat, lon)) in batch.points.iter().enumerate() {
        if !(-90.0..=90.0).contains(lat) || !(-180.0..=180.0).contains(lon) {
            return Err(ApiError::bad_request(format!(
                "point {} is not a latitude and longitude",
                i + 1
            )));
        }
    }
    let Some(Extension(meter)) = meter else {
        return Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "server_error",
            description: "the route is not metered by the authentication layer".to_owned(),
        });
    };
    if let Err(refused) = meter
        .charge(elevation_points_cost(batch.points.len()))
        .await
    {
        return Ok(refused.into_response().map(axum::body::Body::from));
    }
    let results: Vec<serde_json::Value> = batch
        .points
        .iter()
        .map(|&(lat, lon)| json!({"lat": lat, "lon": lon, "elevation_m": elevation_m(lat, lon)}))
        .collect();
    Ok(Json(json!({"points": results, "model": "synthetic"})).into_response())
}

#[derive(Debug, Clone, Copy, Serialize)]
struct City {
    name: &'static str,
    country: &'static str,
    lat: f64,
    lon: f64,
}

const fn city(name: &'static str, country: &'static str, lat: f64, lon: f64) -> City {
    City {
        name,
        country,
        lat,
        lon,
    }
}

/// The gazetteer of both geocoders.
const CITIES: [City; 14] = [
    city("London", "GB", 51.5074, -0.1278),
    city("Paris", "FR", 48.8566, 2.3522),
    city("Berlin", "DE", 52.52, 13.405),
    city("Madrid", "ES", 40.4168, -3.7038),
    city("New York", "US", 40.7128, -74.006),
    city("San Francisco", "US", 37.7749, -122.4194),
    city("Toronto", "CA", 43.6532, -79.3832),
    city("Mexico City", "MX", 19.4326, -99.1332),
    city("São Paulo", "BR", -23.5505, -46.6333),
    city("Cairo", "EG", 30.0444, 31.2357),
    city("Nairobi", "KE", -1.2921, 36.8219),
    city("Mumbai", "IN", 19.076, 72.8777),
    city("Tokyo", "JP", 35.6762, 139.6503),
    city("Sydney", "AU", -33.8688, 151.2093),
];

/// The great-circle distance in kilometres.
fn distance_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// `GET /reverse-geocode?lat=&lon=`: the nearest city of the gazetteer.
async fn reverse_geocode(RawQuery(query): RawQuery) -> Result<Json<serde_json::Value>, ApiError> {
    let point = Params::parse(query.as_deref()).point()?;
    let mut nearest = (
        &CITIES[0],
        distance_km(point, (CITIES[0].lat, CITIES[0].lon)),
    );
    for c in &CITIES {
        let d = distance_km(point, (c.lat, c.lon));
        if d < nearest.1 {
            nearest = (c, d);
        }
    }
    Ok(Json(json!({
        "lat": point.0,
        "lon": point.1,
        "place": nearest.0,
        "distance_km": (nearest.1 * 10.0).round() / 10.0,
    })))
}

/// The longest geocoding query accepted, in characters.
const MAX_QUERY_CHARS: usize = 100;

/// `GET /geocode?q=`: the cities whose name contains the query, ignoring case.
async fn geocode(RawQuery(query): RawQuery) -> Result<Json<serde_json::Value>, ApiError> {
    let params = Params::parse(query.as_deref());
    let q = params.required("q")?.trim();
    if q.is_empty() || q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(format!(
            "`q` has 1 to {MAX_QUERY_CHARS} characters"
        )));
    }
    let needle = q.to_lowercase();
    let results: Vec<&City> = CITIES
        .iter()
        .filter(|c| c.name.to_lowercase().contains(&needle))
        .collect();
    Ok(Json(json!({"query": q, "results": results})))
}

fn caller(principal: Option<Extension<Principal>>) -> Result<Principal, ApiError> {
    principal.map(|Extension(p)| p).ok_or(ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "server_error",
        description: "the route is not behind the authentication layer".to_owned(),
    })
}

/// `GET /items/{item}/metadata`: the layer admitted it only with a `read` grant on the item.
async fn item_metadata(
    principal: Option<Extension<Principal>>,
    UrlPath(item): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = caller(principal)?;
    Ok(Json(json!({
        "item": item,
        "title": format!("Item {item}"),
        "owner": who.account_id(),
        "granted": who.grants().iter().map(|g| json!({"item": g.item(), "actions": g.actions()})).collect::<Vec<_>>(),
    })))
}

/// The largest metadata document accepted, in bytes.
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// `PUT /items/{item}/metadata`: the layer admitted it only with a `write` grant.
async fn put_item_metadata(
    principal: Option<Extension<Principal>>,
    UrlPath(item): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller(principal)?;
    if body.len() > MAX_METADATA_BYTES {
        return Err(ApiError::bad_request("metadata is at most 16 KiB of JSON"));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("metadata is a JSON document"))?;
    Ok(Json(
        json!({"item": item, "metadata": metadata, "stored": true}),
    ))
}

/// What `GET /tiles.json` signs with.
#[derive(Clone)]
struct TileJson {
    signer: TileUrlSigner,
    routes: Arc<RouteTable>,
}

/// `GET /tiles.json`: a TileJSON 3.0.0 document for the street map whose `tiles` template
/// is a signed URL minted for the caller's client (an API key or bearer token), so that
/// MapLibre or OpenLayers load cacheable tiles that carry no key.
async fn tiles_json(
    tilejson: TileJson,
    principal: Option<Extension<Principal>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let who = caller(principal)?;
    if who.source() == CredentialSource::SignedUrl {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "insufficient_scope",
            description: "a signed URL does not mint signed URLs".to_owned(),
        });
    }
    let request = TileUrlRequest::new("WorldStreets");
    let made = mint_tile_template(&tilejson.signer, &tilejson.routes, who.client(), &request)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Absolute, as TileJSON clients expect, on the host the document was asked from.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    let document = json!({
        "tilejson": "3.0.0",
        "name": "WorldStreets",
        "tiles": [format!("http://{host}{}", made.template)],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "scheme": "xyz",
        "attribution": "gis-auth example",
        "expires_at": made.expires_at.format(&time::format_description::well_known::Rfc3339).ok(),
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(document)).into_response())
}

/// `GET /health`: public.
async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}
