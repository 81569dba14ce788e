//! [`UsageDay`]: one client's usage on one UTC day, as the admin API's `GET
//! /account/usage` and the command-line tool's `usage` show it
//! ([`DailyUsage::document`](crate::limits::DailyUsage::document) makes one).
//!
//! ```
//! use gis_auth::client::{AccountId, ClientId};
//! use gis_auth::limits::{Charge, InMemoryUsageCounter, UsageCounter};
//! use time::macros::date;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let counter = InMemoryUsageCounter::new();
//! let (acme, web) = (AccountId::new("acme")?, ClientId::new("web")?);
//! let day = date!(2026-06-01);
//! let tile = Charge { api: Some("WorldStreets"), ..Charge::new(&acme, &web, day, 100) };
//! counter.charge(&tile).await?;
//! let row = counter.usage(&acme, day, day).await?[0].document();
//! let json = serde_json::to_value(&row)?;
//! assert_eq!(json["date"], "2026-06-01");
//! assert_eq!(json["apis"]["WorldStreets"]["transactions"], 0.1);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

/// One client's usage on one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct UsageDay {
    /// The day (YYYY-MM-DD).
    #[cfg_attr(feature = "admin", schema(format = Date))]
    pub date: String,
    /// The client.
    pub client_id: String,
    /// Authorised requests.
    pub requests: u64,
    /// Their cost in transactions.
    pub transactions: f64,
    /// Refused requests by reason.
    pub refusals: BTreeMap<String, u64>,
    /// Requests a report-only restriction would have refused, by rule.
    pub shadowed: BTreeMap<String, u64>,
    /// Authorised requests and their cost, by API.
    pub apis: BTreeMap<String, ApiUsageView>,
    /// The origins of refused or report-only requests, the 10 most frequent first.
    pub origins: Vec<SeenOriginView>,
    /// The callers' networks (IPv4 /24, IPv6 /48; never a whole address) of refused or
    /// report-only requests, the 10 most frequent first.
    pub networks: Vec<SeenNetworkView>,
}

/// One client's authorised requests to one API on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ApiUsageView {
    /// Authorised requests.
    pub requests: u64,
    /// Their cost in transactions.
    pub transactions: f64,
}

/// An origin seen on refused or report-only requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SeenOriginView {
    /// The origin (`https://maps.example.com`).
    pub origin: String,
    /// How many requests (never too low; see `TopCounts`).
    pub count: u64,
}

/// A callers' network seen on refused or report-only requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SeenNetworkView {
    /// The network in CIDR notation (`203.0.113.0/24`, `2001:db8:1::/48`).
    pub network: String,
    /// How many requests (never too low; see `TopCounts`).
    pub count: u64,
}
