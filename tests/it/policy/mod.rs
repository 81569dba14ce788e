//! The access policy end to end, through the example server's router: privileges, item
//! grants, expiry, daily quotas and what each route costs, exact quota accounting under
//! concurrency, per-client rate limits, the usage and quota pages, report-only (shadow)
//! restrictions, and `Policy::explain` giving the decision the layer enforces. Time is a
//! `ManualClock` shared by the store, the token issuer, the layer and the account pages.

use crate::harness::app;

use std::collections::BTreeMap;
use std::error::Error;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use gis_auth::client::{
    Account, AccountId, Action, ClientId, ClientSpec, Grant, RateLimit, Restriction, Role, RoleSet,
    Status,
};
use gis_auth::clock::{Clock, ManualClock};
use gis_auth::layer::{QUOTA_WARNING, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET};
use gis_auth::policy::{OriginEvidence, Policy, QuotaFacts, RequestFacts, RouteAccess, Rule};
use gis_auth::store::{CreatedAccount, CreatedClient, InMemoryStore};
use gis_auth::token::{SigningKey, TokenIssuer};
use gis_auth::usage::{Charge, Charged, DailyUsage, InMemoryUsageCounter, UsageCounter};
use gis_auth::{Rejection, RejectionKind, StoreError};
use http::{HeaderMap, HeaderName, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use tower::ServiceExt;

type TestResult = Result<(), Box<dyn Error>>;

/// When every test starts: 14 hours before the UTC day ends.
const START: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);
/// The end of the first day, when daily quotas reset.
const MIDNIGHT: OffsetDateTime = datetime!(2026-05-02 00:00 UTC);

const ACCOUNT: &str = "acme";
/// Where requests come from unless a test says otherwise.
const CALLER: &str = "198.51.100.7";
/// Inside the `203.0.113.0/24` block that IP-restricted clients allow.
const OFFICE: &str = "203.0.113.9";
const OFFICE_BLOCK: &str = "203.0.113.0/24";
/// The origin of the acme web map, and one that is not.
const MAPS: &str = "https://maps.acme.test";
const EVIL: &str = "https://evil.test";

/// A Geocoder request (one transaction, not a plugin API).
const GEOCODE: &str = "/geocode?q=Paris";
/// A ReverseGeocoder request (one transaction, a plugin API).
const REVERSE: &str = "/reverse-geocode?lat=48.85&lon=2.35";
/// A WorldStreets tile (0.1 transaction, a plugin API).
const TILE: &str = "/tiles/1/0/1.png";
/// An Elevation request for one point (one transaction, a plugin API).
const ELEVATION: &str = "/elevation?lat=46.5&lon=7.9";
const PROFILE: &str = "/account/profile";
const USAGE: &str = "/account/usage";
const QUOTA: &str = "/account/quota";
const ROADS: &str = "/items/roads/metadata";

fn roles<const N: usize>(roles: [Role; N]) -> RoleSet {
    RoleSet::from_iter(roles)
}

/// Whole seconds from `now` to the next 00:00 UTC.
fn seconds_to_midnight(now: OffsetDateTime) -> u64 {
    let next = now
        .date()
        .next_day()
        .expect("a next day")
        .with_time(time::Time::MIDNIGHT)
        .assume_utc();
    u64::try_from((next - now).whole_seconds()).expect("midnight is ahead")
}

// ---- the server --------------------------------------------------------------------------

/// The example router over a store holding the account `acme` (User, Evaluator) with its two
/// default clients, on a manual clock, counting usage in a counter the tests can read.
struct Server {
    router: Router,
    store: Arc<InMemoryStore>,
    clock: ManualClock,
    usage: Arc<InMemoryUsageCounter>,
    acme: CreatedAccount,
}

impl Server {
    /// `acme` with a daily quota of `quota` transactions (none when `None`).
    fn new(quota: Option<u64>) -> Server {
        let clock = ManualClock::new(START);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let store = Arc::new(InMemoryStore::with_clock(shared.clone()));
        let usage = Arc::new(InMemoryUsageCounter::new());
        let issuer = TokenIssuer::new(SigningKey::hs256("k1", &[7u8; 32]).expect("a valid key"))
            .clock(shared.clone());
        let router = app::router(
            store.clone(),
            app::Options {
                clock: Some(shared),
                usage: Some(usage.clone()),
                token_issuer: Some(issuer),
                ..app::Options::default()
            },
        )
        .expect("the example's routes are valid");
        let acme = create_account(&store, ACCOUNT, roles([Role::USER, Role::EVALUATOR]), quota);
        Server {
            router,
            store,
            clock,
            usage,
            acme,
        }
    }

    /// Another account, with its two default clients.
    fn account(&self, name: &str, roles: RoleSet, quota: Option<u64>) -> CreatedAccount {
        create_account(&self.store, name, roles, quota)
    }

    fn acme_id(&self) -> &AccountId {
        &self.acme.account.id
    }

    /// A new client of `acme`.
    fn client(&self, spec: ClientSpec) -> CreatedClient {
        self.client_of(&self.acme, spec)
    }

    fn client_of(&self, account: &CreatedAccount, spec: ClientSpec) -> CreatedClient {
        self.store
            .create_client(&account.account.id, spec)
            .expect("the client is valid")
    }

    fn update_client(&self, id: &ClientId, change: impl FnOnce(&mut ClientSpec)) {
        self.store
            .update_client(id, change)
            .expect("the change is valid");
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        send(&self.router, req).await
    }

    /// A bearer token for a NativeConfidential client, from `POST /oauth/token`.
    async fn token(&self, client: &CreatedClient) -> String {
        self.token_form(client, "").await
    }

    /// A bearer token narrowed to `scope`.
    async fn scoped_token(&self, client: &CreatedClient, scope: &str) -> String {
        self.token_form(client, &format!("&scope={scope}")).await
    }

    async fn token_form(&self, client: &CreatedClient, extra: &str) -> String {
        let reply = self.exchange(client, extra).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
        reply.json()["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }

    /// `POST /oauth/token` for `client` (`client_secret_post`, plus `extra` form fields),
    /// from [`CALLER`].
    async fn exchange(&self, client: &CreatedClient, extra: &str) -> Reply {
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}{extra}",
            form_encode(client.client.id().as_str()),
            form_encode(client.credential.expose()),
        );
        let req = Request::post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("a request")
            .peer(CALLER);
        self.send(req).await
    }

    /// The account's usage today, in milli-transactions, as the counter holds it.
    async fn used(&self, account: &AccountId) -> u64 {
        let today = self.clock.now().date();
        self.usage
            .used(account, today)
            .await
            .expect("the counter answers")
    }

    /// `GET /account/usage` (with `query`) as `account`'s default NativeConfidential client.
    async fn usage_page(&self, account: &CreatedAccount, query: &str) -> Value {
        let token = self.token(&account.native).await;
        let reply = self
            .send(get(&format!("{USAGE}{query}")).bearer(&token))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
        reply.json()
    }

    /// The usage row of `client` on the day `date` (`YYYY-MM-DD`) in a usage page.
    fn row<'v>(page: &'v Value, date: &str, client: &ClientId) -> &'v Value {
        page["days"]
            .as_array()
            .expect("a list of days")
            .iter()
            .find(|r| r["date"] == date && r["client_id"] == client.as_str())
            .unwrap_or_else(|| panic!("no row for {client} on {date} in {page}"))
    }

    /// `GET /account/quota` as `account`'s default NativeConfidential client.
    async fn quota_page(&self, account: &CreatedAccount) -> Value {
        let token = self.token(&account.native).await;
        let reply = self.send(get(QUOTA).bearer(&token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
        reply.json()
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
    store
        .create_account(account)
        .expect("the account is stored")
}

async fn send(router: &Router, req: Request<Body>) -> Reply {
    let res = router
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| match e {});
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        rejection: parts.extensions.get::<Rejection>().cloned(),
        headers: parts.headers,
        body: axum::body::to_bytes(body, 1 << 20)
            .await
            .expect("the body reads"),
    }
}

// ---- requests and replies ------------------------------------------------------------------

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `path` (which may have a query) with `key` as the `apikey` parameter.
fn with_key(path: &str, key: &CreatedClient) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}apikey={}", form_encode(key.credential.expose()))
}

/// `method path`, from [`CALLER`].
fn request(method: Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("a request")
        .peer(CALLER)
}

fn get(path: &str) -> Request<Body> {
    request(Method::GET, path)
}

/// `GET path` with `client`'s API key, from [`CALLER`].
fn keyed(path: &str, client: &CreatedClient) -> Request<Body> {
    get(&with_key(path, client))
}

/// `PUT` of a small metadata document.
fn put_json(path: &str) -> Request<Body> {
    Request::put(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"title":"Roads 2026"}"#))
        .expect("a request")
        .peer(CALLER)
}

fn connect_info(ip: &str) -> ConnectInfo<SocketAddr> {
    let ip: IpAddr = ip.parse().expect("an IP address");
    ConnectInfo(SocketAddr::new(ip, 40000))
}

/// What a test adds to a request.
trait RequestExt {
    fn peer(self, ip: &str) -> Self;
    fn origin(self, origin: &str) -> Self;
    fn bearer(self, token: &str) -> Self;
}

impl RequestExt for Request<Body> {
    fn peer(mut self, ip: &str) -> Self {
        self.extensions_mut().insert(connect_info(ip));
        self
    }

    fn origin(mut self, origin: &str) -> Self {
        let value = origin.parse().expect("a header value");
        self.headers_mut().insert(header::ORIGIN, value);
        self
    }

    fn bearer(mut self, token: &str) -> Self {
        let value = format!("Bearer {token}").parse().expect("a header value");
        self.headers_mut().insert(header::AUTHORIZATION, value);
        self
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    rejection: Option<Rejection>,
    body: Bytes,
}

impl Reply {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    fn header_u64(&self, name: HeaderName) -> u64 {
        self.header(name.clone())
            .unwrap_or_else(|| panic!("no {name} header: {}", self.describe()))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {}", self.describe()))
    }

    fn kind(&self) -> Option<RejectionKind> {
        self.rejection.as_ref().map(Rejection::kind)
    }

    /// The rule that refused the request, from the decision the rejection carries.
    fn rule(&self) -> Option<Rule> {
        self.rejection
            .as_ref()
            .and_then(Rejection::decision)
            .and_then(|d| d.rule())
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    fn has_ratelimit_headers(&self) -> bool {
        [
            RATELIMIT_LIMIT,
            RATELIMIT_REMAINING,
            RATELIMIT_RESET,
            QUOTA_WARNING,
        ]
        .iter()
        .any(|h| self.headers.contains_key(h))
    }

    fn describe(&self) -> String {
        format!(
            "{} {:?} {}",
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

#[track_caller]
fn assert_ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
}

/// A refusal with `status`, JSON `error` code `code`, by `rule`.
#[track_caller]
fn assert_refused(reply: &Reply, status: StatusCode, code: &str, rule: Rule) {
    assert_eq!(reply.status, status, "{}", reply.describe());
    assert_eq!(reply.error(), code, "{}", reply.describe());
    assert_eq!(reply.rule(), Some(rule), "{}", reply.describe());
}

// ---- privileges ------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_limited_to_elevation_reaches_elevation_but_not_tiles() -> TestResult {
    let server = Server::new(None);
    let heights = server.client(ClientSpec::javascript("Heights").privileges(["Elevation"]));

    assert_ok(&server.send(keyed(ELEVATION, &heights)).await);
    let tiles = server.send(keyed(TILE, &heights)).await;
    assert_refused(
        &tiles,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Privileges,
    );
    assert_eq!(tiles.kind(), Some(RejectionKind::PrivilegeMissing));
    let reverse = server.send(keyed(REVERSE, &heights)).await;
    assert_refused(
        &reverse,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Privileges,
    );
    Ok(())
}

#[tokio::test]
async fn a_client_without_privileges_reaches_whatever_its_roles_allow() -> TestResult {
    let server = Server::new(None);
    for path in [TILE, ELEVATION, REVERSE, "/imagery/2/1/3.png"] {
        assert_ok(&server.send(keyed(path, &server.acme.javascript)).await);
    }
    let token = server.token(&server.acme.native).await;
    for path in [GEOCODE, REVERSE, "/wms?REQUEST=GetCapabilities", PROFILE] {
        assert_ok(&server.send(get(path).bearer(&token)).await);
    }
    Ok(())
}

#[tokio::test]
async fn privileges_narrow_bearer_tokens_but_never_widen_the_roles() -> TestResult {
    let server = Server::new(None);
    let viewer = server.account("viewer", roles([Role::EVALUATOR]), None);
    let batch = server.client_of(
        &viewer,
        ClientSpec::native("Batch").privileges(["Geocoder", "Profile"]),
    );
    let token = server.token(&batch).await;

    assert_ok(&server.send(get(GEOCODE).bearer(&token)).await);
    let wms = server
        .send(get("/wms?REQUEST=GetCapabilities").bearer(&token))
        .await;
    assert_refused(
        &wms,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Privileges,
    );
    // Profile is listed, but the account does not hold the User role it needs.
    let profile = server.send(get(PROFILE).bearer(&token)).await;
    assert_refused(
        &profile,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Roles,
    );
    Ok(())
}

#[tokio::test]
async fn lifting_a_privilege_limit_applies_on_the_next_request() -> TestResult {
    let server = Server::new(None);
    let heights = server.client(ClientSpec::javascript("Heights").privileges(["Elevation"]));
    assert_eq!(
        server.send(keyed(TILE, &heights)).await.status,
        StatusCode::FORBIDDEN
    );
    server.update_client(heights.client.id(), |spec| spec.privileges = None);
    assert_ok(&server.send(keyed(TILE, &heights)).await);
    Ok(())
}

// ---- item grants ---------------------------------------------------------------------------

#[tokio::test]
async fn a_read_grant_admits_get_but_not_put() -> TestResult {
    let server = Server::new(None);
    let reader =
        server.client(ClientSpec::native("Reader").grants([Grant::new("roads", [Action::Read])?]));
    let token = server.token(&reader).await;

    assert_ok(&server.send(get(ROADS).bearer(&token)).await);
    let put = server.send(put_json(ROADS).bearer(&token)).await;
    assert_refused(
        &put,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Grants,
    );
    assert_eq!(put.kind(), Some(RejectionKind::ItemNotGranted));
    let other = server
        .send(get("/items/rivers/metadata").bearer(&token))
        .await;
    assert_refused(
        &other,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Grants,
    );
    Ok(())
}

#[tokio::test]
async fn a_write_grant_admits_put_but_does_not_imply_read() -> TestResult {
    let server = Server::new(None);
    let writer =
        server.client(ClientSpec::native("Writer").grants([Grant::new("roads", [Action::Write])?]));
    let token = server.token(&writer).await;

    let put = server.send(put_json(ROADS).bearer(&token)).await;
    assert_ok(&put);
    assert_eq!(put.json()["stored"], true);
    let read = server.send(get(ROADS).bearer(&token)).await;
    assert_refused(
        &read,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Grants,
    );
    Ok(())
}

#[tokio::test]
async fn a_client_without_grants_is_refused_items_but_still_geocodes() -> TestResult {
    let server = Server::new(None);
    let token = server.token(&server.acme.native).await;

    let read = server.send(get(ROADS).bearer(&token)).await;
    assert_refused(
        &read,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Grants,
    );
    let write = server.send(put_json(ROADS).bearer(&token)).await;
    assert_refused(
        &write,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Grants,
    );
    assert_ok(&server.send(get(GEOCODE).bearer(&token)).await);
    Ok(())
}

#[tokio::test]
async fn the_item_response_lists_the_grants_of_the_caller() -> TestResult {
    let server = Server::new(None);
    let editor = server.client(ClientSpec::native("Editor").grants([
        Grant::new("roads", [Action::Read, Action::Write])?,
        Grant::new("rivers", [Action::Read])?,
    ]));
    let token = server.token(&editor).await;

    let reply = server.send(get(ROADS).bearer(&token)).await;
    assert_ok(&reply);
    let body = reply.json();
    assert_eq!(body["item"], "roads");
    assert_eq!(body["owner"], ACCOUNT);
    assert_eq!(
        body["granted"],
        json!([
            {"item": "roads", "actions": ["read", "write"]},
            {"item": "rivers", "actions": ["read"]},
        ])
    );
    Ok(())
}

// ---- expiry ----------------------------------------------------------------------------------

#[tokio::test]
async fn an_api_key_is_refused_as_expired_on_the_first_request_at_its_expiry() -> TestResult {
    let server = Server::new(None);
    let at = START + time::Duration::minutes(5);
    let web = server.client(ClientSpec::javascript("Campaign").expires_at(Some(at)));

    server.clock.set(at - time::Duration::seconds(1));
    assert_ok(&server.send(keyed(TILE, &web)).await);
    server.clock.set(at);
    let reply = server.send(keyed(TILE, &web)).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Rule::Expiry,
    );
    let description = reply.json()["error_description"].to_string();
    assert!(description.contains("expired"), "{description}");
    let challenge = reply.header(header::WWW_AUTHENTICATE).unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    Ok(())
}

#[tokio::test]
async fn a_bearer_token_is_refused_as_expired_once_its_client_expires() -> TestResult {
    let server = Server::new(None);
    let batch = server.client(ClientSpec::native("Batch"));
    let token = server.token(&batch).await;
    // The client gets an expiry after its token was minted, before the token's own.
    let at = START + time::Duration::minutes(10);
    server.update_client(batch.client.id(), |spec| spec.expires_at = Some(at));

    assert_ok(&server.send(get(GEOCODE).bearer(&token)).await);
    server.clock.set(at);
    let reply = server.send(get(GEOCODE).bearer(&token)).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        reply.describe()
    );
    assert_eq!(reply.error(), "invalid_token");
    assert_eq!(reply.kind(), Some(RejectionKind::Expired));
    let description = reply.json()["error_description"].to_string();
    assert!(description.contains("expired"), "{description}");
    Ok(())
}

// ---- daily quota -----------------------------------------------------------------------------

#[tokio::test]
async fn ten_geocodes_fit_a_quota_of_ten_and_the_eleventh_is_refused() -> TestResult {
    let server = Server::new(Some(10));
    let token = server.token(&server.acme.native).await;

    for n in 1..=10u64 {
        server.clock.advance(time::Duration::seconds(90));
        let reply = server.send(get(GEOCODE).bearer(&token)).await;
        assert_ok(&reply);
        assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 10);
        assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 10 - n, "request {n}");
        assert_eq!(
            reply.header_u64(RATELIMIT_RESET),
            seconds_to_midnight(server.clock.now()),
            "request {n}"
        );
    }
    let reply = server.send(get(GEOCODE).bearer(&token)).await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        Rule::Quota,
    );
    let to_midnight = seconds_to_midnight(server.clock.now());
    assert_eq!(reply.header_u64(header::RETRY_AFTER), to_midnight);
    assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 10);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 0);
    assert_eq!(reply.header_u64(RATELIMIT_RESET), to_midnight);
    assert_eq!(server.used(server.acme_id()).await, 10_000);
    Ok(())
}

#[tokio::test]
async fn the_quota_warning_appears_from_eighty_percent_and_not_before() -> TestResult {
    let server = Server::new(Some(10));
    let token = server.token(&server.acme.native).await;

    for n in 1..=7 {
        let reply = server.send(get(GEOCODE).bearer(&token)).await;
        assert_ok(&reply);
        assert_eq!(reply.header(QUOTA_WARNING), None, "request {n}");
    }
    for n in 8..=10 {
        let reply = server.send(get(GEOCODE).bearer(&token)).await;
        assert_ok(&reply);
        assert_eq!(
            reply.header(QUOTA_WARNING),
            Some(format!("{n} of 10 daily transactions used").as_str()),
            "request {n}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_hundred_tiles_cost_ten_transactions() -> TestResult {
    let server = Server::new(Some(10));
    let web = &server.acme.javascript;

    for n in 1..=100 {
        let reply = server.send(keyed(TILE, web)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "tile {n}: {}",
            reply.describe()
        );
    }
    assert_eq!(server.used(server.acme_id()).await, 10_000);
    let quota = server.quota_page(&server.acme).await;
    assert_eq!(quota["used"], 10.0);
    assert_eq!(quota["remaining"], 0);
    let reply = server.send(keyed(TILE, web)).await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        Rule::Quota,
    );
    Ok(())
}

#[tokio::test]
async fn with_a_quota_of_one_ten_tiles_pass_and_the_eleventh_is_refused() -> TestResult {
    let server = Server::new(Some(1));
    let web = &server.acme.javascript;

    for n in 1..=10 {
        let reply = server.send(keyed(TILE, web)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "tile {n}: {}",
            reply.describe()
        );
        assert_eq!(reply.header_u64(RATELIMIT_LIMIT), 1);
    }
    let reply = server.send(keyed(TILE, web)).await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        Rule::Quota,
    );
    assert_eq!(server.used(server.acme_id()).await, 1_000);
    Ok(())
}

#[tokio::test]
async fn elevation_costs_one_transaction_per_started_hundred_points() -> TestResult {
    let server = Server::new(None);
    let web = &server.acme.javascript;
    let points = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("{},{}", i % 90, i % 180)).collect();
        format!("/elevation?points={}", list.join(";"))
    };
    let cases = [
        (points(1), 1_000),
        (points(2), 1_000),
        (points(99), 1_000),
        (points(100), 1_000),
        (points(101), 2_000),
        (points(200), 2_000),
        (points(201), 3_000),
        (ELEVATION.to_owned(), 1_000),
    ];
    for (path, cost) in cases {
        let before = server.used(server.acme_id()).await;
        let reply = server.send(keyed(&path, web)).await;
        assert_ok(&reply);
        let charged = server.used(server.acme_id()).await - before;
        assert_eq!(charged, cost, "{}", &path[..path.len().min(60)]);
    }
    Ok(())
}

/// `POST /elevation` of `n` points with `client`'s API key.
fn elevation_batch(n: usize, client: &CreatedClient) -> Request<Body> {
    let points: Vec<[f64; 2]> = (0..n)
        .map(|i| [(i % 90) as f64, (i % 180) as f64])
        .collect();
    Request::post(with_key("/elevation", client))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "points": points }).to_string()))
        .expect("a request")
        .peer(CALLER)
}

#[tokio::test]
async fn a_batch_body_costs_one_transaction_per_started_hundred_points() -> TestResult {
    let server = Server::new(Some(100));
    let web = &server.acme.javascript;
    for (n, cost) in [(1, 1_000), (100, 1_000), (101, 2_000), (250, 3_000)] {
        let before = server.used(server.acme_id()).await;
        let reply = server.send(elevation_batch(n, web)).await;
        assert_ok(&reply);
        assert_eq!(reply.json()["points"].as_array().map(Vec::len), Some(n));
        let used = server.used(server.acme_id()).await;
        assert_eq!(used - before, cost, "{n} points");
        // The headers count the body's charge too.
        assert_eq!(
            reply.header_u64(RATELIMIT_REMAINING),
            100 - used / 1_000,
            "{}",
            reply.describe()
        );
    }
    // Counted once per request in the statistics, with the whole cost.
    let page = server.usage_page(&server.acme, "").await;
    let day = Server::row(&page, "2026-05-01", web.client.id());
    assert_eq!(day["requests"], 4, "{page}");
    assert_eq!(day["transactions"], 7.0, "{page}");
    Ok(())
}

#[tokio::test]
async fn a_batch_over_the_quota_is_refused_and_charges_nothing() -> TestResult {
    let server = Server::new(Some(2));
    let web = &server.acme.javascript;
    assert_ok(&server.send(keyed(REVERSE, web)).await);
    // 101 points cost two transactions; one is left.
    let reply = server.send(elevation_batch(101, web)).await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        Rule::Quota,
    );
    assert_eq!(
        reply.header_u64(RATELIMIT_REMAINING),
        1,
        "{}",
        reply.describe()
    );
    assert_eq!(
        reply.header_u64(header::RETRY_AFTER),
        seconds_to_midnight(server.clock.now()),
    );
    assert_eq!(server.used(server.acme_id()).await, 1_000);
    // A hundred points still fit.
    let fits = server.send(elevation_batch(100, web)).await;
    assert_ok(&fits);
    assert_eq!(fits.header_u64(RATELIMIT_REMAINING), 0);
    Ok(())
}

#[tokio::test]
async fn a_malformed_batch_is_a_clear_400_and_costs_nothing() -> TestResult {
    let server = Server::new(Some(10));
    let web = &server.acme.javascript;
    let bodies = [
        "",
        "not json",
        r#"{"points": []}"#,
        r#"{"points": [[91, 0]]}"#,
        r#"{"points": [[0, 181]]}"#,
        r#"{"points": [[1]]}"#,
        r#"{"points": [[1, 2]], "extra": true}"#,
    ];
    for body in bodies {
        let req = Request::post(with_key("/elevation", web))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("a request")
            .peer(CALLER);
        let reply = server.send(req).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.describe()
        );
        assert_eq!(reply.json()["error"], "invalid_request", "{body}");
    }
    let too_many = server.send(elevation_batch(10_001, web)).await;
    assert_eq!(
        too_many.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_many.describe()
    );
    assert_eq!(server.used(server.acme_id()).await, 0);
    Ok(())
}

/// Admits every request's own charge and fails every further charge from a handler.
struct FailingFollowUps(InMemoryUsageCounter);

#[async_trait::async_trait]
impl UsageCounter for FailingFollowUps {
    async fn charge(&self, charge: &Charge<'_>) -> Result<Charged, StoreError> {
        if charge.requests == 0 {
            return Err(StoreError::new("connection reset"));
        }
        self.0.charge(charge).await
    }

    async fn record_refusal(
        &self,
        account: &AccountId,
        client: &ClientId,
        day: time::Date,
        reason: &'static str,
    ) -> Result<(), StoreError> {
        self.0.record_refusal(account, client, day, reason).await
    }

    async fn used(&self, account: &AccountId, day: time::Date) -> Result<u64, StoreError> {
        self.0.used(account, day).await
    }

    async fn usage(
        &self,
        account: &AccountId,
        from: time::Date,
        to: time::Date,
    ) -> Result<Vec<DailyUsage>, StoreError> {
        self.0.usage(account, from, to).await
    }
}

#[tokio::test]
async fn a_batch_whose_charge_fails_is_a_503_not_a_free_answer() -> TestResult {
    let store = Arc::new(InMemoryStore::new());
    let router = app::router(
        store.clone(),
        app::Options {
            usage: Some(Arc::new(FailingFollowUps(InMemoryUsageCounter::new()))),
            ..app::Options::default()
        },
    )?;
    let acme = create_account(&store, ACCOUNT, roles([Role::EVALUATOR]), Some(10));
    let reply = send(&router, elevation_batch(5, &acme.javascript)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.describe()
    );
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    assert!(
        reply.json().get("points").is_none(),
        "no elevations without a charge"
    );
    // The query form is charged by the layer alone, and still answers.
    let reply = send(&router, keyed(ELEVATION, &acme.javascript)).await;
    assert_ok(&reply);
    Ok(())
}

#[tokio::test]
async fn a_batch_runs_report_only_quota_over_the_limit() -> TestResult {
    let server = Server::new(Some(1));
    let trial = server.client(ClientSpec::javascript("Trial").shadow([Restriction::Quota]));
    let reply = server.send(elevation_batch(300, &trial)).await;
    assert_ok(&reply);
    assert_eq!(server.used(server.acme_id()).await, 3_000);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 0);
    // The body's charge went over the quota: recorded as report-only, as a request would be.
    assert_eq!(shadowed(&server, &trial).await, json!({"quota": 1}));
    Ok(())
}

#[tokio::test]
async fn account_pages_are_not_metered() -> TestResult {
    let server = Server::new(Some(10));
    let token = server.token(&server.acme.native).await;

    for path in [PROFILE, USAGE, QUOTA, PROFILE] {
        let reply = server.send(get(path).bearer(&token)).await;
        assert_ok(&reply);
        assert!(
            !reply.has_ratelimit_headers(),
            "{path}: {}",
            reply.describe()
        );
    }
    assert_eq!(server.used(server.acme_id()).await, 0);
    // Still answered once the quota is used up.
    for _ in 0..10 {
        assert_ok(&server.send(get(GEOCODE).bearer(&token)).await);
    }
    assert_eq!(
        server.send(get(GEOCODE).bearer(&token)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    for path in [PROFILE, USAGE, QUOTA] {
        assert_ok(&server.send(get(path).bearer(&token)).await);
    }
    Ok(())
}

#[tokio::test]
async fn refused_requests_do_not_use_the_quota() -> TestResult {
    let server = Server::new(Some(10));
    let site = server.client(ClientSpec::javascript("Site").allowed_origins([MAPS]));
    let web = &server.acme.javascript;

    let refused = [
        server.send(get(REVERSE)).await,
        server
            .send(get(&format!("{REVERSE}&apikey=not-a-key")))
            .await,
        server.send(keyed(REVERSE, &site).origin(EVIL)).await,
        server.send(keyed(GEOCODE, web)).await,
        server.send(keyed(PROFILE, web)).await,
        server.send(get(GEOCODE).bearer("not.a.token")).await,
    ];
    for reply in &refused {
        assert!(
            reply.status.is_client_error(),
            "refused: {}",
            reply.describe()
        );
        assert!(!reply.has_ratelimit_headers(), "{}", reply.describe());
    }
    assert_eq!(server.used(server.acme_id()).await, 0);
    let reply = server.send(keyed(REVERSE, web)).await;
    assert_ok(&reply);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 9);
    Ok(())
}

#[tokio::test]
async fn the_quota_is_shared_by_the_clients_of_an_account_and_no_other() -> TestResult {
    let server = Server::new(Some(3));
    let other = server.account("globex", roles([Role::USER, Role::EVALUATOR]), Some(3));
    let token = server.token(&server.acme.native).await;

    assert_ok(&server.send(keyed(REVERSE, &server.acme.javascript)).await);
    assert_ok(&server.send(get(GEOCODE).bearer(&token)).await);
    let second_web = server.client(ClientSpec::javascript("Second web map"));
    assert_ok(&server.send(keyed(REVERSE, &second_web)).await);
    for reply in [
        server.send(keyed(REVERSE, &server.acme.javascript)).await,
        server.send(get(GEOCODE).bearer(&token)).await,
    ] {
        assert_refused(
            &reply,
            StatusCode::TOO_MANY_REQUESTS,
            "quota_exceeded",
            Rule::Quota,
        );
    }
    let reply = server.send(keyed(REVERSE, &other.javascript)).await;
    assert_ok(&reply);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 2);
    Ok(())
}

#[tokio::test]
async fn the_quota_resets_at_utc_midnight() -> TestResult {
    let server = Server::new(Some(2));
    let web = &server.acme.javascript;

    assert_ok(&server.send(keyed(REVERSE, web)).await);
    assert_ok(&server.send(keyed(REVERSE, web)).await);
    server.clock.set(MIDNIGHT - time::Duration::seconds(1));
    let reply = server.send(keyed(REVERSE, web)).await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        Rule::Quota,
    );
    assert_eq!(reply.header_u64(header::RETRY_AFTER), 1);

    server.clock.set(MIDNIGHT);
    let reply = server.send(keyed(REVERSE, web)).await;
    assert_ok(&reply);
    assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 1);
    assert_eq!(reply.header_u64(RATELIMIT_RESET), 24 * 3600);
    Ok(())
}

#[tokio::test]
async fn an_account_without_quota_gets_no_ratelimit_headers() -> TestResult {
    let server = Server::new(None);
    let token = server.token(&server.acme.native).await;

    for _ in 0..20 {
        let reply = server.send(get(GEOCODE).bearer(&token)).await;
        assert_ok(&reply);
        assert!(!reply.has_ratelimit_headers(), "{}", reply.describe());
    }
    let tile = server.send(keyed(TILE, &server.acme.javascript)).await;
    assert_ok(&tile);
    assert!(!tile.has_ratelimit_headers(), "{}", tile.describe());
    Ok(())
}

#[tokio::test]
async fn a_request_that_does_not_fit_reports_the_quota_still_left() -> TestResult {
    let server = Server::new(Some(2));
    let web = &server.acme.javascript;
    assert_ok(&server.send(keyed(REVERSE, web)).await);
    // 101 points cost two transactions; one is left.
    let many: Vec<&str> = vec!["1,1"; 101];
    let path = format!("/elevation?points={}", many.join(";"));

    let reply = server.send(keyed(&path, web)).await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        Rule::Quota,
    );
    assert_eq!(server.quota_page(&server.acme).await["remaining"], 1);
    // The refusal's headers agree with the quota page: one transaction is still left.
    assert_eq!(
        reply.header_u64(RATELIMIT_REMAINING),
        1,
        "{}",
        reply.describe()
    );
    let fits = server.send(keyed(REVERSE, web)).await;
    assert_ok(&fits);
    assert_eq!(fits.header_u64(RATELIMIT_REMAINING), 0);
    Ok(())
}

// ---- exactness under concurrency ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_requests_admit_exactly_the_five_thousand_that_fit() -> TestResult {
    let server = Server::new(Some(5_000));
    let uri = with_key(REVERSE, &server.acme.javascript);
    let tasks: Vec<_> = (0..10_000)
        .map(|_| {
            let router = server.router.clone();
            let req = get(&uri);
            tokio::spawn(async move {
                let res = router.oneshot(req).await.unwrap_or_else(|e| match e {});
                res.status()
            })
        })
        .collect();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for task in tasks {
        *statuses.entry(task.await?.as_u16()).or_default() += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(200, 5_000), (429, 5_000)]));
    assert_eq!(server.used(server.acme_id()).await, 5_000_000);
    let page = server.usage_page(&server.acme, "").await;
    let row = Server::row(&page, "2026-05-01", server.acme.javascript.client.id());
    assert_eq!(row["requests"], 5_000);
    assert_eq!(row["refusals"], json!({"quota_exceeded": 5_000}));
    Ok(())
}

// ---- rate limits -----------------------------------------------------------------------------

#[tokio::test]
async fn a_client_over_its_rate_limit_is_told_to_retry_and_passes_a_second_later() -> TestResult {
    let server = Server::new(None);
    let limited =
        server.client(ClientSpec::javascript("Limited").rate_limit(Some(RateLimit::new(2, 2)?)));

    assert_ok(&server.send(keyed(TILE, &limited)).await);
    assert_ok(&server.send(keyed(TILE, &limited)).await);
    let reply = server.send(keyed(TILE, &limited)).await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        Rule::RateLimit,
    );
    assert_eq!(reply.kind(), Some(RejectionKind::RateLimited));
    assert!(
        reply.header_u64(header::RETRY_AFTER) >= 1,
        "{}",
        reply.describe()
    );

    server.clock.advance(time::Duration::seconds(1));
    assert_ok(&server.send(keyed(TILE, &limited)).await);
    assert_ok(&server.send(keyed(TILE, &limited)).await);
    let again = server.send(keyed(TILE, &limited)).await;
    assert_eq!(
        again.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        again.describe()
    );
    Ok(())
}

#[tokio::test]
async fn one_clients_rate_limit_does_not_slow_another() -> TestResult {
    let server = Server::new(None);
    let limited =
        server.client(ClientSpec::javascript("Limited").rate_limit(Some(RateLimit::new(2, 2)?)));
    for _ in 0..3 {
        server.send(keyed(TILE, &limited)).await;
    }
    assert_eq!(
        server.send(keyed(TILE, &limited)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    for n in 0..20 {
        let reply = server.send(keyed(TILE, &server.acme.javascript)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "request {n}: {}",
            reply.describe()
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_rate_limited_request_does_not_use_the_quota() -> TestResult {
    let server = Server::new(Some(10));
    let limited =
        server.client(ClientSpec::javascript("Limited").rate_limit(Some(RateLimit::new(1, 1)?)));
    assert_ok(&server.send(keyed(REVERSE, &limited)).await);
    for _ in 0..5 {
        assert_eq!(
            server.send(keyed(REVERSE, &limited)).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(server.used(server.acme_id()).await, 1_000);
    Ok(())
}

// ---- usage statistics ------------------------------------------------------------------------

#[tokio::test]
async fn usage_lists_requests_transactions_and_refusals_per_client_per_day() -> TestResult {
    let server = Server::new(Some(3));
    let site = server.client(ClientSpec::javascript("Site").allowed_origins([MAPS]));
    let limited =
        server.client(ClientSpec::javascript("Limited").rate_limit(Some(RateLimit::new(1, 1)?)));
    let native = &server.acme.native;
    let token = server.token(native).await;

    assert_ok(&server.send(get(GEOCODE).bearer(&token)).await);
    assert_ok(&server.send(get(GEOCODE).bearer(&token)).await);
    assert_ok(&server.send(keyed(TILE, &site).origin(MAPS)).await);
    assert_ok(&server.send(keyed(TILE, &site).origin(MAPS)).await);
    assert_eq!(
        server.send(keyed(TILE, &site).origin(EVIL)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_ok(&server.send(keyed(TILE, &limited)).await);
    assert_eq!(
        server.send(keyed(TILE, &limited)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // 2.3 used of 3: another geocode does not fit.
    assert_eq!(
        server.send(get(GEOCODE).bearer(&token)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let page = server.usage_page(&server.acme, "").await;
    assert_eq!(page["account_id"], ACCOUNT);
    assert_eq!(page["from"], "2026-05-01");
    assert_eq!(page["to"], "2026-05-01");
    let day = "2026-05-01";
    let native_row = Server::row(&page, day, native.client.id());
    // The two geocodes and the usage page itself, which is free.
    assert_eq!(native_row["requests"], 3);
    assert_eq!(native_row["transactions"], 2.0);
    assert_eq!(native_row["refusals"], json!({"quota_exceeded": 1}));
    let site_row = Server::row(&page, day, site.client.id());
    assert_eq!(site_row["requests"], 2);
    assert_eq!(site_row["transactions"], 0.2);
    assert_eq!(site_row["refusals"], json!({"origins": 1}));
    assert_eq!(site_row["shadowed"], json!({}));
    let limited_row = Server::row(&page, day, limited.client.id());
    assert_eq!(limited_row["requests"], 1);
    assert_eq!(limited_row["transactions"], 0.1);
    assert_eq!(limited_row["refusals"], json!({"rate_limit": 1}));
    Ok(())
}

#[tokio::test]
async fn usage_is_reported_per_day() -> TestResult {
    let server = Server::new(Some(5));
    let web = &server.acme.javascript;
    assert_ok(&server.send(keyed(REVERSE, web)).await);
    server.clock.set(MIDNIGHT + time::Duration::hours(1));
    assert_ok(&server.send(keyed(REVERSE, web)).await);
    assert_ok(&server.send(keyed(REVERSE, web)).await);

    let page = server
        .usage_page(&server.acme, "?from=2026-05-01&to=2026-05-02")
        .await;
    assert_eq!(
        Server::row(&page, "2026-05-01", web.client.id())["requests"],
        1
    );
    assert_eq!(
        Server::row(&page, "2026-05-02", web.client.id())["requests"],
        2
    );
    let today = server.usage_page(&server.acme, "").await;
    assert!(
        today["days"]
            .as_array()
            .expect("a list of days")
            .iter()
            .all(|r| r["date"] == "2026-05-02"),
        "{today}"
    );
    Ok(())
}

#[tokio::test]
async fn usage_shows_the_callers_account_only() -> TestResult {
    let server = Server::new(None);
    let globex = server.account("globex", roles([Role::USER, Role::EVALUATOR]), None);
    assert_ok(&server.send(keyed(TILE, &server.acme.javascript)).await);
    assert_ok(&server.send(keyed(TILE, &globex.javascript)).await);
    assert_ok(&server.send(keyed(REVERSE, &globex.javascript)).await);

    let acme_ids: Vec<String> = server
        .store
        .clients_of(server.acme_id())
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    let page = server.usage_page(&server.acme, "").await;
    let rows = page["days"].as_array().expect("a list of days");
    assert!(!rows.is_empty());
    for row in rows {
        let client = row["client_id"].as_str().unwrap_or_default();
        assert!(acme_ids.iter().any(|c| c == client), "{row}");
    }
    // A parameter naming another account is refused, and reveals nothing.
    let token = server.token(&server.acme.native).await;
    let reply = server
        .send(get(&format!("{USAGE}?account_id=globex")).bearer(&token))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{}",
        reply.describe()
    );
    assert_eq!(reply.json()["field"], "account_id");
    assert!(
        !reply
            .describe()
            .contains(globex.javascript.client.id().as_str()),
        "{}",
        reply.describe()
    );
    let theirs = server.usage_page(&globex, "").await;
    let row = Server::row(&theirs, "2026-05-01", globex.javascript.client.id());
    assert_eq!(row["requests"], 2);
    assert!(
        !theirs
            .to_string()
            .contains(server.acme.javascript.client.id().as_str()),
        "{theirs}"
    );
    Ok(())
}

#[tokio::test]
async fn the_quota_page_reports_limit_used_remaining_and_reset() -> TestResult {
    let server = Server::new(Some(10));
    let token = server.token(&server.acme.native).await;
    for _ in 0..3 {
        assert_ok(&server.send(get(GEOCODE).bearer(&token)).await);
    }
    assert_ok(&server.send(keyed(TILE, &server.acme.javascript)).await);

    let quota = server.quota_page(&server.acme).await;
    assert_eq!(quota["limit"], 10);
    assert_eq!(quota["used"], 3.1);
    assert_eq!(quota["remaining"], 6);
    assert_eq!(quota["reset"], "2026-05-02T00:00:00Z");
    let reset = OffsetDateTime::parse(
        quota["reset"].as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )?;
    assert_eq!(reset, MIDNIGHT);
    Ok(())
}

#[tokio::test]
async fn the_quota_page_of_an_account_without_quota_has_no_limit() -> TestResult {
    let server = Server::new(None);
    assert_ok(&server.send(keyed(REVERSE, &server.acme.javascript)).await);

    let quota = server.quota_page(&server.acme).await;
    assert_eq!(quota["limit"], Value::Null);
    assert_eq!(quota["remaining"], Value::Null);
    assert_eq!(quota["used"], 1.0);
    assert_eq!(quota["reset"], "2026-05-02T00:00:00Z");
    Ok(())
}

#[tokio::test]
async fn a_javascript_key_cannot_read_usage_or_quota() -> TestResult {
    let server = Server::new(Some(10));
    for path in [USAGE, QUOTA] {
        let reply = server.send(keyed(path, &server.acme.javascript)).await;
        assert_refused(
            &reply,
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            Rule::Kind,
        );
    }
    Ok(())
}

#[tokio::test]
async fn bad_usage_dates_are_refused_with_400() -> TestResult {
    let server = Server::new(None);
    let token = server.token(&server.acme.native).await;
    for query in [
        "?from=2026-02-30",
        "?from=05/01/2026",
        "?to=tomorrow",
        "?from=",
        "?from=2026-05-02&to=2026-05-01",
        "?from=2026-01-01&to=2026-05-01",
        "?from=2026-05-01&from=2026-04-01",
    ] {
        let reply = server
            .send(get(&format!("{USAGE}{query}")).bearer(&token))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.describe()
        );
        assert_eq!(reply.error(), "invalid_request", "{query}");
    }
    Ok(())
}

// ---- shadow mode -----------------------------------------------------------------------------

/// The `shadowed` counts of `client` today.
async fn shadowed(server: &Server, client: &CreatedClient) -> Value {
    let page = server.usage_page(&server.acme, "").await;
    Server::row(&page, "2026-05-01", client.client.id())["shadowed"].clone()
}

#[tokio::test]
async fn an_origin_restriction_in_shadow_mode_admits_and_reports() -> TestResult {
    let server = Server::new(None);
    let spec = ClientSpec::javascript("Site").allowed_origins([MAPS]);
    let trial = server.client(spec.clone().shadow([Restriction::Origins]));
    let enforced = server.client(spec);

    assert_ok(&server.send(keyed(TILE, &trial).origin(EVIL)).await);
    assert_eq!(shadowed(&server, &trial).await, json!({"origins": 1}));
    let reply = server.send(keyed(TILE, &enforced).origin(EVIL)).await;
    assert_refused(
        &reply,
        StatusCode::FORBIDDEN,
        "access_denied",
        Rule::Origins,
    );
    Ok(())
}

#[tokio::test]
async fn an_ip_restriction_in_shadow_mode_admits_and_reports() -> TestResult {
    let server = Server::new(None);
    let spec = ClientSpec::javascript("Kiosk").allowed_ips([OFFICE_BLOCK]);
    let trial = server.client(spec.clone().shadow([Restriction::Ips]));
    let enforced = server.client(spec);

    assert_ok(&server.send(keyed(TILE, &trial).peer(OFFICE)).await);
    assert_ok(&server.send(keyed(TILE, &trial).peer(CALLER)).await);
    assert_eq!(shadowed(&server, &trial).await, json!({"ips": 1}));
    let reply = server.send(keyed(TILE, &enforced).peer(CALLER)).await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "access_denied", Rule::Ips);
    Ok(())
}

#[tokio::test]
async fn a_privilege_restriction_in_shadow_mode_admits_and_reports() -> TestResult {
    let server = Server::new(None);
    let spec = ClientSpec::javascript("Heights").privileges(["Elevation"]);
    let trial = server.client(spec.clone().shadow([Restriction::Privileges]));
    let enforced = server.client(spec);

    assert_ok(&server.send(keyed(ELEVATION, &trial)).await);
    assert_ok(&server.send(keyed(TILE, &trial)).await);
    assert_eq!(shadowed(&server, &trial).await, json!({"privileges": 1}));
    let reply = server.send(keyed(TILE, &enforced)).await;
    assert_refused(
        &reply,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Privileges,
    );
    Ok(())
}

#[tokio::test]
async fn a_grant_restriction_in_shadow_mode_admits_and_reports() -> TestResult {
    let server = Server::new(None);
    let spec = ClientSpec::native("Reader").grants([Grant::new("roads", [Action::Read])?]);
    let trial = server.client(spec.clone().shadow([Restriction::Grants]));
    let enforced = server.client(spec);
    let (trial_token, enforced_token) = (server.token(&trial).await, server.token(&enforced).await);

    assert_ok(&server.send(get(ROADS).bearer(&trial_token)).await);
    assert_ok(&server.send(put_json(ROADS).bearer(&trial_token)).await);
    assert_ok(
        &server
            .send(get("/items/rivers/metadata").bearer(&trial_token))
            .await,
    );
    assert_eq!(shadowed(&server, &trial).await, json!({"grants": 2}));
    let reply = server.send(put_json(ROADS).bearer(&enforced_token)).await;
    assert_refused(
        &reply,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Rule::Grants,
    );
    Ok(())
}

#[tokio::test]
async fn a_quota_in_shadow_mode_admits_over_quota_requests_and_reports_them() -> TestResult {
    let server = Server::new(Some(1));
    let trial = server.client(ClientSpec::javascript("Trial").shadow([Restriction::Quota]));
    let enforced = server.client(ClientSpec::javascript("Enforced"));

    for n in 1..=3 {
        let reply = server.send(keyed(REVERSE, &trial)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "request {n}: {}",
            reply.describe()
        );
        assert_eq!(reply.header_u64(RATELIMIT_REMAINING), 0);
    }
    assert_eq!(server.used(server.acme_id()).await, 3_000);
    assert_eq!(shadowed(&server, &trial).await, json!({"quota": 2}));
    let reply = server.send(keyed(REVERSE, &enforced)).await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        Rule::Quota,
    );
    Ok(())
}

#[tokio::test]
async fn every_restriction_in_shadow_mode_is_reported_on_one_request() -> TestResult {
    let server = Server::new(None);
    let trial = server.client(
        ClientSpec::javascript("Trial")
            .allowed_origins([MAPS])
            .allowed_ips([OFFICE_BLOCK])
            .privileges(["Elevation"])
            .shadow([
                Restriction::Origins,
                Restriction::Ips,
                Restriction::Privileges,
            ]),
    );
    assert_ok(&server.send(keyed(TILE, &trial).origin(EVIL)).await);
    assert_eq!(
        shadowed(&server, &trial).await,
        json!({"origins": 1, "ips": 1, "privileges": 1})
    );
    Ok(())
}

#[tokio::test]
async fn a_native_client_with_ip_rules_in_shadow_mode_gets_a_token_from_elsewhere() -> TestResult {
    let server = Server::new(None);
    let trial = server.client(
        ClientSpec::native("Batch")
            .allowed_ips([OFFICE_BLOCK])
            .shadow([Restriction::Ips]),
    );
    // Requests come from CALLER, outside the client's block: report-only, so allowed, at
    // the token endpoint as on the API it leads to.
    let exchange = server.exchange(&trial, "").await;
    assert_eq!(
        exchange.status,
        StatusCode::OK,
        "the token endpoint enforces IP rules that run report-only: {}",
        exchange.describe()
    );
    let token = exchange.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ok(&server.send(get(GEOCODE).bearer(&token)).await);
    assert_eq!(shadowed(&server, &trial).await, json!({"ips": 1}));
    Ok(())
}

// ---- explain agrees with the layer -------------------------------------------------------------

/// Where a request says it comes from.
#[derive(Clone, Copy)]
enum Whence {
    Nowhere,
    Origin(&'static str),
    Referer(&'static str),
}

/// How a caller of the table authenticates.
enum Credential {
    Key(CreatedClient),
    Bearer {
        client: ClientId,
        token: String,
        scope: RoleSet,
    },
}

impl Credential {
    fn client(&self) -> ClientId {
        match self {
            Credential::Key(made) => made.client.id().clone(),
            Credential::Bearer { client, .. } => client.clone(),
        }
    }
}

struct Case {
    what: &'static str,
    caller: &'static str,
    method: Method,
    path: &'static str,
    from: Whence,
    peer: &'static str,
    /// The rule explain is expected to name, so the table covers what it says it covers.
    expect: Option<Rule>,
}

fn case(what: &'static str, caller: &'static str, method: Method, path: &'static str) -> Case {
    Case {
        what,
        caller,
        method,
        path,
        from: Whence::Nowhere,
        peer: CALLER,
        expect: None,
    }
}

impl Case {
    fn from(mut self, from: Whence) -> Self {
        self.from = from;
        self
    }

    fn peer(mut self, peer: &'static str) -> Self {
        self.peer = peer;
        self
    }

    fn denied_by(mut self, rule: Rule) -> Self {
        self.expect = Some(rule);
        self
    }

    fn request(&self, credential: &Credential) -> Request<Body> {
        let uri = match credential {
            Credential::Key(made) => with_key(self.path, made),
            Credential::Bearer { .. } => self.path.to_owned(),
        };
        let mut builder = Request::builder().method(self.method.clone()).uri(uri);
        match self.from {
            Whence::Nowhere => {}
            Whence::Origin(o) => builder = builder.header(header::ORIGIN, o),
            Whence::Referer(r) => builder = builder.header(header::REFERER, r),
        }
        if let Credential::Bearer { token, .. } = credential {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = if self.method == Method::PUT {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(r#"{"title":"Roads"}"#)
        } else {
            Body::empty()
        };
        builder.body(body).expect("a request").peer(self.peer)
    }
}

#[tokio::test]
async fn explain_agrees_with_the_layer_on_every_case_of_the_table() -> TestResult {
    let server = Server::new(None);
    let metered = server.account("metered", roles([Role::USER, Role::EVALUATOR]), Some(1));
    let bearer = |made: &CreatedClient, token: String, scope: RoleSet| Credential::Bearer {
        client: made.client.id().clone(),
        token,
        scope,
    };
    let all_roles = roles([Role::USER, Role::EVALUATOR]);

    let mut callers: BTreeMap<&str, Credential> = BTreeMap::new();
    callers.insert("web", Credential::Key(server.acme.javascript.clone()));
    let site = server.client(ClientSpec::javascript("Site").allowed_origins([MAPS]));
    callers.insert("site", Credential::Key(site));
    let kiosk = server.client(ClientSpec::javascript("Kiosk").allowed_ips([OFFICE_BLOCK]));
    callers.insert("kiosk", Credential::Key(kiosk));
    let heights = server.client(ClientSpec::javascript("Heights").privileges(["Elevation"]));
    callers.insert("heights", Credential::Key(heights));
    let trial = server.client(
        ClientSpec::javascript("Trial")
            .allowed_origins([MAPS])
            .shadow([Restriction::Origins]),
    );
    callers.insert("trial", Credential::Key(trial));
    let expired = server.client(ClientSpec::javascript("Campaign").expires_at(Some(START)));
    callers.insert("expired", Credential::Key(expired));
    let off = server.client(ClientSpec::javascript("Retired").status(Status::Inactive));
    callers.insert("off", Credential::Key(off));
    let native = server.acme.native.clone();
    let token = server.token(&native).await;
    callers.insert("native", bearer(&native, token, all_roles.clone()));
    let narrow = server.scoped_token(&native, "Evaluator").await;
    callers.insert("narrow", bearer(&native, narrow, roles([Role::EVALUATOR])));
    let reader = server.client(ClientSpec::native("Reader").grants([
        Grant::new("roads", [Action::Read])?,
        Grant::new("roads v2", [Action::Read])?,
    ]));
    let token = server.token(&reader).await;
    callers.insert("reader", bearer(&reader, token, all_roles.clone()));
    let writer =
        server.client(ClientSpec::native("Writer").grants([Grant::new("roads", [Action::Write])?]));
    let token = server.token(&writer).await;
    callers.insert("writer", bearer(&writer, token, all_roles.clone()));
    let token = server.token(&metered.native).await;
    callers.insert("metered", bearer(&metered.native, token, all_roles.clone()));
    // The metered account's quota of one is used up before the table runs.
    assert_ok(
        &server
            .send(get(GEOCODE).bearer(&server.token(&metered.native).await))
            .await,
    );

    let cases = [
        case("a plugin API with a plain key", "web", Method::GET, TILE),
        case("HEAD of a tile", "web", Method::HEAD, TILE),
        case("a key on a non-plugin API", "web", Method::GET, GEOCODE).denied_by(Rule::Kind),
        case("a key on an account page", "web", Method::GET, PROFILE).denied_by(Rule::Kind),
        case("a method not served", "web", Method::POST, TILE).denied_by(Rule::Route),
        case("a path not served", "web", Method::GET, "/admin").denied_by(Rule::Route),
        case("the allowed origin", "site", Method::GET, TILE).from(Whence::Origin(MAPS)),
        case("another origin", "site", Method::GET, TILE)
            .from(Whence::Origin(EVIL))
            .denied_by(Rule::Origins),
        case("a referer on the allowed origin", "site", Method::GET, TILE)
            .from(Whence::Referer("https://maps.acme.test/store-locator")),
        case("no origin at all", "site", Method::GET, TILE).denied_by(Rule::Origins),
        case("an allowed address", "kiosk", Method::GET, REVERSE).peer(OFFICE),
        case("another address", "kiosk", Method::GET, REVERSE).denied_by(Rule::Ips),
        case("a privileged API", "heights", Method::GET, ELEVATION),
        case("an API beyond the privileges", "heights", Method::GET, TILE)
            .denied_by(Rule::Privileges),
        case("a shadowed origin", "trial", Method::GET, TILE).from(Whence::Origin(EVIL)),
        case("an expired key", "expired", Method::GET, TILE).denied_by(Rule::Expiry),
        case("an inactive key", "off", Method::GET, TILE).denied_by(Rule::Status),
        case(
            "a token on a non-plugin API",
            "native",
            Method::GET,
            GEOCODE,
        ),
        case("a token on an account page", "native", Method::GET, PROFILE),
        case("an item without a grant", "native", Method::GET, ROADS).denied_by(Rule::Grants),
        case(
            "a narrowed token on the Geocoder",
            "narrow",
            Method::GET,
            GEOCODE,
        ),
        case(
            "a narrowed token on a User API",
            "narrow",
            Method::GET,
            PROFILE,
        )
        .denied_by(Rule::Roles),
        case("reading a readable item", "reader", Method::GET, ROADS),
        case(
            "an encoded item id",
            "reader",
            Method::GET,
            "/items/roads%20v2/metadata",
        ),
        case("writing a readable item", "reader", Method::PUT, ROADS).denied_by(Rule::Grants),
        case(
            "reading an item not granted",
            "reader",
            Method::GET,
            "/items/rivers/metadata",
        )
        .denied_by(Rule::Grants),
        case("writing a writable item", "writer", Method::PUT, ROADS),
        case("reading a write-only item", "writer", Method::GET, ROADS).denied_by(Rule::Grants),
        case("over the quota", "metered", Method::GET, GEOCODE).denied_by(Rule::Quota),
        case(
            "a free page over the quota",
            "metered",
            Method::GET,
            PROFILE,
        ),
    ];
    assert!(cases.len() >= 15);

    let policy = Policy::new(app::route_table()?);
    let mut disagreements = Vec::new();
    for case in &cases {
        let credential = &callers[case.caller];
        let req = case.request(credential);
        let client = server
            .store
            .client(&credential.client())
            .expect("the client is stored");
        let account = server
            .store
            .get_account(client.account_id())
            .expect("the account is stored");
        // The quota is part of the decision for metered routes, as the layer charges it.
        let cost = policy
            .routes()
            .lookup(req.method(), req.uri().path())
            .and_then(|route| match route.access() {
                RouteAccess::Api(api) => {
                    api.request_cost()
                        .of(req.method(), req.uri(), req.headers())
                }
                RouteAccess::Public => None,
            });
        let used = server.used(&account.id).await;
        let scope = match credential {
            Credential::Bearer { scope, .. } => Some(scope),
            Credential::Key(_) => None,
        };
        let decision = policy.explain(
            &client,
            &account,
            &RequestFacts {
                method: req.method(),
                path: req.uri().path(),
                query: req.uri().query(),
                origin: OriginEvidence::from_headers(req.headers()),
                client_ip: Some(case.peer.parse()?),
                now: server.clock.now(),
                token_scope: scope,
                quota: cost.map(|cost| QuotaFacts { used, cost }),
            },
        );
        let reply = server.send(req).await;

        let mut problems = Vec::new();
        if decision.rule() != case.expect {
            problems.push(format!(
                "explain says {:?}, the table expects {:?}",
                decision.rule(),
                case.expect
            ));
        }
        if decision.is_allowed() != reply.status.is_success() {
            problems.push(format!("explain says `{decision}`, the layer answers"));
        }
        if let Some(finding) = &decision.denied {
            if reply.kind() != Some(finding.kind) {
                problems.push(format!(
                    "explain refuses with {:?}, the layer with {:?}",
                    finding.kind,
                    reply.kind()
                ));
            }
            if reply.status != finding.kind.status() {
                problems.push(format!("explain's refusal is a {}", finding.kind.status()));
            }
            match reply.rejection.as_ref().and_then(Rejection::decision) {
                Some(enforced) => {
                    if enforced.rule() != decision.rule() {
                        problems.push(format!(
                            "the layer's decision is by {:?}, explain's by {:?}",
                            enforced.rule(),
                            decision.rule()
                        ));
                    }
                }
                // A route the table does not serve is refused before any client is
                // identified, so its rejection carries no decision.
                None if finding.rule == Rule::Route => {}
                None => problems.push("the layer's rejection carries no decision".to_owned()),
            }
        }
        if !problems.is_empty() {
            disagreements.push(format!(
                "{} ({} {} as {}): {}; the layer: {}",
                case.what,
                case.method,
                case.path,
                case.caller,
                problems.join("; "),
                reply.describe()
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "explain and the layer disagree:\n{}",
        disagreements.join("\n")
    );
    Ok(())
}
