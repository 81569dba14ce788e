//! The layer's world: a store with one account and its two default clients, the route table
//! of the example server, a bearer-token verifier backed by the store, a handler that echoes
//! what it was given, and requests to send through the layer in front of it.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use gis_auth::client::{
    Account, AccountId, Client, ClientId, ClientSpec, KeyDigest, Role, RoleSet,
};
use gis_auth::clock::{Clock, ManualClock};
use gis_auth::layer::Principal;
use gis_auth::policy::{Api, RouteTable};
use gis_auth::store::{BackendError, ClientStore, CreatedAccount, InMemoryStore, Resolved};
use gis_auth::token::{TokenVerifier, VerifiedToken, VerifyError};
use gis_auth::{AuthLayer, AuthService, ConfigError, RejectionKind};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use http::{HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::Full;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use tower::{Layer, Service};

use super::reply::{IntoRequest, Reply, send};

/// When every test starts.
pub const START: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

/// A request header the echo handler copies into its response's `Cache-Control`.
pub const REPLY_CACHE_CONTROL: &str = "x-reply-cache-control";

/// A request header the echo handler copies into its response's `Vary`.
pub const REPLY_VARY: &str = "x-reply-vary";

/// The route table of the example server.
pub fn gis_routes() -> RouteTable {
    fn build() -> Result<RouteTable, ConfigError> {
        let maps = || [Role::EVALUATOR, Role::SUBSCRIBER];
        let plugin = |name: &str| Api::new(name, maps()).plugin(true);
        RouteTable::new()
            .route(
                Method::GET,
                "/tiles/{z}/{x}/{y}.png",
                plugin("WorldStreets"),
            )?
            .route(
                Method::GET,
                "/imagery/{z}/{x}/{y}.png",
                plugin("WorldImagery"),
            )?
            .route(Method::GET, "/elevation", plugin("Elevation"))?
            .route(Method::GET, "/reverse-geocode", plugin("ReverseGeocoder"))?
            .route(Method::GET, "/geocode", Api::new("Geocoder", maps()))?
            .route(Method::GET, "/wms", Api::new("WMS", maps()))?
            .route(
                Method::GET,
                "/account/profile",
                Api::new("Profile", [Role::USER]),
            )?
            .public(Method::GET, "/health")
    }
    build().expect("the example server's routes are valid")
}

/// A plugin API path for each of the four plugin APIs, with its API name.
pub const PLUGIN_PATHS: [(&str, &str); 4] = [
    ("/tiles/3/4/5.png", "WorldStreets"),
    ("/imagery/3/4/5.png", "WorldImagery"),
    ("/elevation?lat=47.6&lon=-122.3", "Elevation"),
    ("/reverse-geocode?lat=47.6&lon=-122.3", "ReverseGeocoder"),
];

/// The non-plugin API paths, with their API names.
pub const NON_PLUGIN_PATHS: [(&str, &str); 3] = [
    ("/geocode?q=Main+St", "Geocoder"),
    ("/wms?SERVICE=WMS&REQUEST=GetMap&LAYERS=roads", "WMS"),
    ("/account/profile", "Profile"),
];

/// Appends `?apikey=…` or `&apikey=…` to `path`.
pub fn with_key(path: &str, key: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}apikey={key}")
}

/// A tile request with this API key.
pub fn tile(key: &str) -> String {
    with_key("/tiles/1/2/3.png", key)
}

/// A well-formed API key that no store holds.
pub fn stranger_key() -> String {
    gis_auth::client::PlainCredential::generate(gis_auth::client::CredentialKind::ApiKey)
        .expect("the OS random source works")
        .expose()
        .to_owned()
}

/// Bearer tokens for tests: fixed strings mapped to client ids, bound to the credential
/// generation of the client when minted, and checked against the store on every use.
pub struct TestTokens {
    store: Arc<InMemoryStore>,
    clock: ManualClock,
    issued: Mutex<HashMap<String, Minted>>,
    calls: AtomicUsize,
}

#[derive(Clone)]
struct Minted {
    client: ClientId,
    generation: u64,
    scope: Option<RoleSet>,
}

impl TestTokens {
    pub fn new(store: Arc<InMemoryStore>, clock: ManualClock) -> Self {
        Self {
            store,
            clock,
            issued: Mutex::new(HashMap::new()),
            calls: AtomicUsize::new(0),
        }
    }

    /// A token for `client`, valid while its credential generation is live.
    pub fn mint(&self, client: &ClientId) -> String {
        self.mint_scoped(client, None)
    }

    /// A token for `client` narrowed to `scope`.
    pub fn mint_scoped(&self, client: &ClientId, scope: Option<RoleSet>) -> String {
        let generation = self
            .store
            .client(client)
            .map_or(0, |c| c.credentials().generation());
        let mut issued = self.issued.lock().expect("not poisoned");
        let token = format!("tok-{}-{}", client.as_str(), issued.len());
        issued.insert(
            token.clone(),
            Minted {
                client: client.clone(),
                generation,
                scope,
            },
        );
        token
    }

    /// How many times the layer asked this verifier.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenVerifier for TestTokens {
    async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let unknown = VerifyError::Invalid(RejectionKind::UnknownCredential);
        let minted = self
            .issued
            .lock()
            .expect("not poisoned")
            .get(token)
            .cloned()
            .ok_or(unknown.clone())?;
        let found = self
            .store
            .resolve_id(&minted.client)
            .await?
            .ok_or(unknown)?;
        if !found
            .client
            .credentials()
            .generation_live(minted.generation, self.clock.now())
        {
            return Err(VerifyError::Invalid(RejectionKind::Revoked));
        }
        Ok(VerifiedToken {
            client: found.client,
            account: found.account,
            scope: minted.scope,
        })
    }
}

/// A store that counts every call before passing it on.
pub struct CountingStore {
    inner: Arc<InMemoryStore>,
    calls: AtomicUsize,
}

impl CountingStore {
    pub fn new(inner: Arc<InMemoryStore>) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
        }
    }

    /// How many lookups reached the store.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ClientStore for CountingStore {
    async fn client_by_key(&self, digest: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        self.count();
        self.inner.client_by_key(digest).await
    }

    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        self.count();
        self.inner.client_by_id(id).await
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        self.count();
        self.inner.account(id).await
    }

    async fn resolve_key(&self, digest: &KeyDigest) -> Result<Option<Resolved>, BackendError> {
        self.count();
        self.inner.resolve_key(digest).await
    }

    async fn resolve_id(&self, id: &ClientId) -> Result<Option<Resolved>, BackendError> {
        self.count();
        self.inner.resolve_id(id).await
    }
}

/// The wrapped service: answers 200 with JSON describing the request it was given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl<B> Service<Request<B>> for Echo {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(echo(&req)))
    }
}

/// The principal as JSON, for echoing.
pub fn principal_json(p: &Principal) -> Value {
    json!({
        "client_id": p.client_id().as_str(),
        "account_id": p.account_id().as_str(),
        "kind": format!("{:?}", p.kind()),
        "roles": p.roles().iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>(),
        "api": p.api(),
        "source": format!("{:?}", p.source()),
    })
}

/// What the wrapped service saw, as a response.
pub fn echo<B>(req: &Request<B>) -> Response<Full<Bytes>> {
    let headers: BTreeMap<String, Vec<String>> = req
        .headers()
        .keys()
        .map(|name| {
            let values = req
                .headers()
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            (name.as_str().to_owned(), values)
        })
        .collect();
    let body = json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "headers": headers,
        "principal": req.extensions().get::<Principal>().map(principal_json),
    });
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(cc) = req.headers().get(REPLY_CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, cc.clone());
    }
    for vary in req.headers().get_all(REPLY_VARY) {
        h.append(VARY, vary.clone());
    }
    res
}

/// A request being built.
#[derive(Debug)]
pub struct Req(Request<Full<Bytes>>);

/// A `GET` request.
pub fn get(uri: &str) -> Req {
    Req::new(Method::GET, uri)
}

impl Req {
    pub fn new(method: Method, uri: &str) -> Req {
        let mut req = Request::new(Full::default());
        *req.method_mut() = method;
        *req.uri_mut() = uri.parse().expect("a valid test URI");
        Req(req)
    }

    /// Appends a header.
    pub fn header(self, name: &str, value: &str) -> Req {
        self.raw_header(name, value.as_bytes())
    }

    /// Appends a header given as bytes.
    pub fn raw_header(mut self, name: &str, value: &[u8]) -> Req {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_bytes(value).expect("a valid header value");
        self.0.headers_mut().append(name, value);
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Adds an `Origin` header.
    pub fn origin(self, origin: &str) -> Req {
        self.header("origin", origin)
    }

    /// Adds a `Referer` header.
    pub fn referer(self, referer: &str) -> Req {
        self.header("referer", referer)
    }

    /// Sets the connection's peer address (as a `SocketAddr` extension).
    pub fn peer(mut self, addr: &str) -> Req {
        let addr: SocketAddr = addr.parse().expect("a valid socket address");
        self.0.extensions_mut().insert(addr);
        self
    }

    pub fn into_request(self) -> Request<Full<Bytes>> {
        self.0
    }
}

impl From<Req> for Request<Full<Bytes>> {
    fn from(req: Req) -> Self {
        req.0
    }
}

impl IntoRequest for Req {
    type Body = Full<Bytes>;

    fn into_request(self) -> Request<Full<Bytes>> {
        self.0
    }
}

/// An account, its default clients, and everything needed to guard a service for them.
pub struct World {
    pub store: Arc<InMemoryStore>,
    pub clock: ManualClock,
    pub tokens: Arc<TestTokens>,
    /// The account `acme`, roles User and Evaluator.
    pub acme: CreatedAccount,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// A store on a manual clock holding the account `acme` (User, Evaluator).
    pub fn new() -> World {
        let clock = ManualClock::new(START);
        let store = Arc::new(InMemoryStore::new().clock(Arc::new(clock.clone())));
        let acme = store
            .open_account(account("acme", [Role::USER, Role::EVALUATOR]))
            .expect("the account is valid");
        let tokens = Arc::new(TestTokens::new(store.clone(), clock.clone()));
        World {
            store,
            clock,
            tokens,
            acme,
        }
    }

    /// The id of `acme`.
    pub fn acme_id(&self) -> AccountId {
        self.acme.account.id.clone()
    }

    /// The API key of `acme`'s default JavaScript client.
    pub fn key(&self) -> String {
        self.acme.javascript.credential.expose().to_owned()
    }

    /// The id of `acme`'s default JavaScript client.
    pub fn js_id(&self) -> ClientId {
        self.acme.javascript.client.id().clone()
    }

    /// The id of `acme`'s default NativeConfidential client.
    pub fn native_id(&self) -> ClientId {
        self.acme.native.client.id().clone()
    }

    /// A fresh token for `acme`'s default NativeConfidential client.
    pub fn token(&self) -> String {
        self.tokens.mint(&self.native_id())
    }

    /// Creates a JavaScript client of `acme`; gives its id and API key.
    #[track_caller]
    pub fn js_client(&self, spec: ClientSpec) -> (ClientId, String) {
        self.js_client_of(&self.acme_id(), spec)
    }

    /// Creates a JavaScript client of `account`; gives its id and API key.
    #[track_caller]
    pub fn js_client_of(&self, account: &AccountId, spec: ClientSpec) -> (ClientId, String) {
        let made = self
            .store
            .add_client(account, spec)
            .expect("the client is valid");
        (
            made.client.id().clone(),
            made.credential.expose().to_owned(),
        )
    }

    /// Creates a NativeConfidential client of `acme`; gives its id and a token for it.
    #[track_caller]
    pub fn native_client(&self, spec: ClientSpec) -> (ClientId, String) {
        self.native_client_of(&self.acme_id(), spec)
    }

    /// Creates a NativeConfidential client of `account`; gives its id and a token for it.
    #[track_caller]
    pub fn native_client_of(&self, account: &AccountId, spec: ClientSpec) -> (ClientId, String) {
        let made = self
            .store
            .add_client(account, spec)
            .expect("the client is valid");
        let id = made.client.id().clone();
        let token = self.tokens.mint(&id);
        (id, token)
    }

    /// Creates another account (with its two default clients).
    #[track_caller]
    pub fn add_account<const N: usize>(&self, id: &str, roles: [Role; N]) -> CreatedAccount {
        self.store
            .open_account(account(id, roles))
            .expect("the account is valid")
    }

    /// The layer over this world's store: example routes, manual clock, test tokens.
    pub fn layer(&self) -> AuthLayer {
        self.layer_over(self.store.clone())
    }

    /// The same layer reading clients through `store` instead.
    pub fn layer_over(&self, store: Arc<dyn ClientStore>) -> AuthLayer {
        AuthLayer::new(store, gis_routes())
            .clock(Arc::new(self.clock.clone()))
            .token_verifier(self.tokens.clone())
    }

    /// The echo handler behind the default layer.
    pub fn service(&self) -> AuthService<Echo> {
        self.layer().layer(Echo)
    }

    /// Sends `req` through the default layer.
    pub async fn send(&self, req: Req) -> Reply {
        send(self.service(), req).await
    }

    /// Sends `req` through `layer` in front of the echo handler.
    pub async fn send_via(&self, layer: &AuthLayer, req: Req) -> Reply {
        send(layer.layer(Echo), req).await
    }
}

/// An active account with these roles.
pub fn account<const N: usize>(id: &str, roles: [Role; N]) -> Account {
    Account::new(
        AccountId::new(id).expect("a valid id"),
        format!("Account {id}"),
        RoleSet::from_iter(roles),
    )
    .expect("a valid account")
}

/// A role set.
pub fn roles<const N: usize>(roles: [Role; N]) -> RoleSet {
    RoleSet::from_iter(roles)
}
