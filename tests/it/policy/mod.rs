//! The access policy end to end, through the example server's router: privileges, item
//! grants, expiry, daily quotas and what each route costs, exact quota accounting under
//! concurrency, per-client rate limits, the usage and quota pages, report-only (shadow)
//! restrictions, and `Policy::explain` giving the decision the layer enforces. Time is a
//! `ManualClock` shared by the store, the token issuer, the layer and the account pages.
//!
//! One module per topic; the places, the routes and the account pages they share are here.

mod batches;
mod expiry;
mod explain;
mod grants;
mod plan;
mod privileges;
mod quota;
mod rate_limits;
mod shadow;
mod usage;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;

use axum::body::Body;
use gis_auth::client::{
    AccountId, Action, ClientId, ClientSpec, Grant, ItemCeiling, Plan, RateLimit, Restriction,
    Role, RoleSet, Status,
};
use gis_auth::clock::Clock;
use gis_auth::layer::{QUOTA_WARNING, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET};
use gis_auth::limits::{Charge, Charged, DailyUsage, InMemoryUsageCounter, UsageCounter};
use gis_auth::policy::{OriginEvidence, Policy, QuotaFacts, RequestFacts, RouteAccess, Rule};
use gis_auth::store::{CreatedAccount, CreatedClient};
use gis_auth::{BackendError, Rejection, RejectionKind};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::harness::request::{RequestExt, form_encode, get};
use crate::harness::server::{ACCOUNT, CALLER, START, Server, roles};

type TestResult = Result<(), Box<dyn Error>>;

/// The end of the first day, when daily quotas reset.
const MIDNIGHT: OffsetDateTime = datetime!(2026-05-02 00:00 UTC);

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

/// `path` (which may have a query) with `key` as the `apikey` parameter.
fn with_key(path: &str, key: &CreatedClient) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}apikey={}", form_encode(key.credential.expose()))
}

/// `GET path` with `client`'s API key.
fn keyed(path: &str, client: &CreatedClient) -> Request<Body> {
    get(&with_key(path, client))
}

/// `PUT` of a small metadata document.
fn put_json(path: &str) -> Request<Body> {
    Request::put(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"title":"Roads 2026"}"#))
        .expect("a request")
}

/// `GET /account/usage` (with `query`) as `account`'s default NativeConfidential client.
async fn usage_page(s: &Server, account: &CreatedAccount, query: &str) -> Value {
    let token = s.token_of(&account.native).await;
    let reply = s.send(get(&format!("{USAGE}{query}")).bearer(&token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    reply.json()
}

/// The usage row of `client` on the day `date` (`YYYY-MM-DD`) in a usage page.
fn usage_row<'v>(page: &'v Value, date: &str, client: &ClientId) -> &'v Value {
    page["days"]
        .as_array()
        .expect("a list of days")
        .iter()
        .find(|r| r["date"] == date && r["client_id"] == client.as_str())
        .unwrap_or_else(|| panic!("no row for {client} on {date} in {page}"))
}

/// `GET /account/quota` as `account`'s default NativeConfidential client.
async fn quota_page(s: &Server, account: &CreatedAccount) -> Value {
    let token = s.token_of(&account.native).await;
    let reply = s.send(get(QUOTA).bearer(&token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    reply.json()
}

/// The `shadowed` counts of `client` today.
async fn shadowed(server: &Server, client: &CreatedClient) -> Value {
    let page = usage_page(server, &server.acme, "").await;
    usage_row(&page, "2026-05-01", client.client.id())["shadowed"].clone()
}
