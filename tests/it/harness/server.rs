//! The example server as the tests drive it: its router over an in-memory store holding the
//! account `acme` (User, Evaluator) with its two default clients, on a manual clock shared
//! by the store, the token issuer and the layer, counting usage in a counter the tests can
//! read.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use gis_auth::client::{Account, AccountId, ClientId, ClientSpec, Plan, Role, RoleSet};
use gis_auth::clock::{Clock, ManualClock};
use gis_auth::events::EventSink;
use gis_auth::limits::{InMemoryUsageCounter, UsageCounter};
use gis_auth::store::{CreatedAccount, CreatedClient, InMemoryStore};
use gis_auth::token::{LockoutPolicy, Revocations, SigningKey, TokenIssuer};
use http::{Request, StatusCode, header};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

use super::app;
use super::reply::{Reply, send};
pub use super::world::roles;

use super::request::{
    GRANT, bearer, form_encode, form_request, from_peer, post_form, token_request, with_basic,
};

/// When every test starts: 14 hours before the UTC day ends.
pub const START: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

/// The key id of the issuer's HS256 key.
pub const ISSUER_KID: &str = "k1";

/// The secret of the issuer's HS256 key.
pub const ISSUER_SECRET: [u8; 32] = [7u8; 32];

/// The issuer identifier and audience of the issuer's tokens.
pub const ISSUER_URL: &str = "https://maps.example.test";

/// The account every server holds.
pub const ACCOUNT: &str = "acme";

/// Where requests come from unless a test says otherwise.
pub const CALLER: &str = "198.51.100.7";

/// The issuer's HS256 key.
pub fn hs256(kid: &str, secret: &[u8]) -> SigningKey {
    SigningKey::hs256(kid, secret).expect("a valid HS256 key")
}

/// The example router and everything behind it.
pub struct Server {
    /// The example server's router.
    pub router: Router,
    /// Its clients and accounts.
    pub store: Arc<InMemoryStore>,
    /// The time of the store, the issuer and the layer.
    pub clock: ManualClock,
    /// Where the layer and the handlers count usage.
    pub usage: Arc<InMemoryUsageCounter>,
    /// Mints the tokens of `POST /oauth/token`.
    pub issuer: TokenIssuer,
    /// The account `acme` (User, Evaluator), with its two default clients.
    pub acme: CreatedAccount,
}

/// How a [`Server`] differs from the default one.
#[derive(Default)]
#[must_use]
pub struct ServerBuilder {
    quota: Option<u64>,
    signing_key: Option<SigningKey>,
    lockout: Option<LockoutPolicy>,
    revocations: Option<Arc<dyn Revocations>>,
    events: Option<Arc<dyn EventSink>>,
}

impl ServerBuilder {
    /// Where the store and the layer tell their events (nowhere by default).
    pub fn events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// `acme`'s daily quota in transactions (none by default).
    pub fn quota(mut self, quota: Option<u64>) -> Self {
        self.quota = quota;
        self
    }

    /// The issuer's key (HS256 with [`ISSUER_KID`] and [`ISSUER_SECRET`] by default).
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// The token endpoint's lockout policy (the example's default otherwise).
    pub fn lockout(mut self, policy: LockoutPolicy) -> Self {
        self.lockout = Some(policy);
        self
    }

    /// The deny list of revoked tokens (one in memory by default).
    pub fn revocations(mut self, list: Arc<dyn Revocations>) -> Self {
        self.revocations = Some(list);
        self
    }

    /// The server.
    pub fn build(self) -> Server {
        let clock = ManualClock::new(START);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let mut store = InMemoryStore::new().clock(shared.clone());
        if let Some(sink) = &self.events {
            store = store.event_sink(sink.clone());
        }
        let store = Arc::new(store);
        let usage = Arc::new(InMemoryUsageCounter::new());
        let key = self
            .signing_key
            .unwrap_or_else(|| hs256(ISSUER_KID, &ISSUER_SECRET));
        let issuer = TokenIssuer::new(key)
            .issuer(ISSUER_URL)
            .audience(ISSUER_URL)
            .clock(shared.clone());
        let router = app::router(
            store.clone(),
            app::Options {
                clock: Some(shared),
                usage: Some(usage.clone()),
                token_issuer: Some(issuer.clone()),
                lockout: self.lockout,
                revocations: self.revocations,
                events: self.events,
                // the default verifier for the issuer's tokens, no trusted proxies
                ..app::Options::default()
            },
        )
        .expect("the example's routes are valid");
        let acme = create_account(
            &store,
            ACCOUNT,
            roles([Role::USER, Role::EVALUATOR]),
            self.quota,
        );
        Server {
            router,
            store,
            clock,
            usage,
            issuer,
            acme,
        }
    }
}

fn create_account(
    store: &InMemoryStore,
    name: &str,
    roles: RoleSet,
    quota: Option<u64>,
) -> CreatedAccount {
    let account = Account::new(
        AccountId::new(name).expect("a valid account id"),
        format!("{name} maps"),
        roles,
    )
    .expect("a valid account")
    .with_daily_quota(quota);
    store.open_account(account).expect("the account is stored")
}

impl Server {
    /// The default server: `acme` without a quota, the HS256 issuer, the default lockout.
    pub fn new() -> Server {
        Server::builder().build()
    }

    /// A server that differs from the default one.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Another account, with its two default clients.
    pub fn account(&self, name: &str, roles: RoleSet, quota: Option<u64>) -> CreatedAccount {
        create_account(&self.store, name, roles, quota)
    }

    /// The id of `acme`.
    pub fn acme_id(&self) -> &AccountId {
        &self.acme.account.id
    }

    /// The default NativeConfidential client of `acme`.
    pub fn native_id(&self) -> ClientId {
        self.acme.native.client.id().clone()
    }

    /// Its secret as created.
    pub fn native_secret(&self) -> String {
        self.acme.native.credential.expose().to_owned()
    }

    /// The clock's time in Unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// A new client of `acme`.
    pub fn client(&self, spec: ClientSpec) -> CreatedClient {
        self.client_of(&self.acme, spec)
    }

    /// A new client of `account`.
    pub fn client_of(&self, account: &CreatedAccount, spec: ClientSpec) -> CreatedClient {
        self.store
            .add_client(&account.account.id, spec)
            .expect("the client is valid")
    }

    /// A new NativeConfidential client of `acme`: its id and secret.
    pub fn native_client(&self, spec: ClientSpec) -> (ClientId, String) {
        let made = self.client(spec);
        (
            made.client.id().clone(),
            made.credential.expose().to_owned(),
        )
    }

    /// Changes a client.
    pub fn update_client(&self, id: &ClientId, change: impl FnOnce(&mut ClientSpec)) {
        self.store
            .change_client(id, change)
            .expect("the change is valid");
    }

    /// Changes `acme`.
    pub fn update_account(&self, change: impl FnOnce(&mut Account)) {
        self.store
            .change_account(self.acme_id(), change)
            .expect("the change is valid");
    }

    /// Sets `account`'s plan, as the operator would.
    pub fn set_plan(&self, account: &AccountId, plan: Plan) {
        self.store
            .change_account(account, |a| a.plan = plan)
            .expect("the plan is valid");
    }

    /// The account's usage this month, in milli-transactions, as the counter holds it.
    pub async fn monthly_used(&self, account: &AccountId) -> u64 {
        let today = self.clock.now().date();
        self.usage
            .monthly_used(account, today)
            .await
            .expect("the counter answers")
    }

    /// The account's usage today, in milli-transactions, as the counter holds it.
    pub async fn used(&self, account: &AccountId) -> u64 {
        let today = self.clock.now().date();
        self.usage
            .used(account, today)
            .await
            .expect("the counter answers")
    }

    /// Sends `req` to the router, from [`CALLER`] unless it names its own peer.
    pub async fn send(&self, mut req: Request<Body>) -> Reply {
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            let ip: IpAddr = CALLER.parse().expect("an IP address");
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
        }
        send(self.router.clone(), req).await
    }

    /// `POST /oauth/token` with this form.
    pub async fn exchange_form(&self, form: &str) -> Reply {
        self.send(token_request(form)).await
    }

    /// `POST /oauth/token` for `id` (`client_secret_post`).
    pub async fn exchange(&self, id: &str, secret: &str) -> Reply {
        self.exchange_form(&post_form(id, secret)).await
    }

    /// `POST /oauth/token` for `id` (`client_secret_basic`).
    pub async fn exchange_basic(&self, id: &str, secret: &str) -> Reply {
        self.send(with_basic(token_request(GRANT), id, secret))
            .await
    }

    /// A token for `id`, which must be granted.
    pub async fn token_for(&self, id: &ClientId, secret: &str) -> String {
        let reply = self.exchange(id.as_str(), secret).await;
        access_token(&assert_token_response(&reply))
    }

    /// A token for `client`, which must be granted.
    pub async fn token_of(&self, client: &CreatedClient) -> String {
        self.token_for(client.client.id(), client.credential.expose())
            .await
    }

    /// A token for `client` narrowed to `scope`, which must be granted.
    pub async fn scoped_token(&self, client: &CreatedClient, scope: &str) -> String {
        let form = format!(
            "{}&scope={scope}",
            post_form(client.client.id().as_str(), client.credential.expose())
        );
        access_token(&assert_token_response(&self.exchange_form(&form).await))
    }

    /// A token for `acme`'s default NativeConfidential client.
    pub async fn token(&self) -> String {
        self.token_for(&self.native_id(), &self.native_secret())
            .await
    }

    /// `POST path` (`/oauth/introspect` or `/oauth/revoke`) about `token`, as `id`
    /// (`client_secret_post`).
    pub async fn about_token(&self, path: &str, id: &str, secret: &str, token: &str) -> Reply {
        let form = format!(
            "token={}&client_id={}&client_secret={}",
            form_encode(token),
            form_encode(id),
            form_encode(secret)
        );
        self.send(form_request(path, &form)).await
    }

    /// `GET path` with the bearer token.
    pub async fn call(&self, path: &str, token: &str) -> Reply {
        self.send(bearer(path, token)).await
    }

    /// `GET path` with the bearer token, from `peer`.
    pub async fn call_from(&self, path: &str, token: &str, peer: &str) -> Reply {
        self.send(from_peer(bearer(path, token), peer)).await
    }
}

/// A token response: 200, never cached, exactly `access_token`, `token_type`, `expires_in`
/// and `scope` (always: the roles the token carries). Gives the body.
#[track_caller]
pub fn assert_token_response(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/json"));
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
    assert_eq!(reply.header(header::PRAGMA), Some("no-cache"));
    let body = reply.json();
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_u64(), "{body}");
    assert!(
        body["scope"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert!(body.get("refresh_token").is_none(), "{body}");
    let keys: BTreeSet<&str> = body
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["access_token", "expires_in", "scope", "token_type"])
    );
    body
}

/// The `access_token` of a token response body.
pub fn access_token(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .expect("a string access_token")
        .to_owned()
}
