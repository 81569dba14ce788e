//! What is known of a request when it is decided: [`RequestFacts`] and the
//! [`OriginEvidence`] read from its headers. Gathering them is the caller's job (the
//! layer, the CLI's `explain`); deciding on them is [`Policy`](super::Policy)'s.
//!
//! ```
//! use gis_auth::policy::{OriginEvidence, RequestFacts};
//! use http::Method;
//!
//! let headers = http::HeaderMap::new();
//! let facts = RequestFacts {
//!     origin: OriginEvidence::from_headers(&headers),
//!     ..RequestFacts::new(&Method::GET, "/tiles/1/2/3.png", time::OffsetDateTime::now_utc())
//! };
//! assert_eq!(facts.origin, OriginEvidence::Missing);
//! ```

use std::net::IpAddr;

use http::header::{ORIGIN, REFERER};
use http::{HeaderMap, Method};
use time::OffsetDateTime;

use super::quota::QuotaFacts;
use crate::client::RoleSet;

/// What the request says about where it comes from, before any parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginEvidence<'a> {
    /// Neither `Origin` nor `Referer`.
    Missing,
    /// One `Origin` header.
    Origin(&'a str),
    /// No `Origin`, one `Referer`.
    Referer(&'a str),
    /// Something that can never match: two `Origin` (or `Referer`) headers, or a value that
    /// is not visible ASCII.
    Unusable,
}

impl<'a> OriginEvidence<'a> {
    /// Reads `Origin`, falling back to `Referer` only when there is no `Origin` at all.
    pub fn from_headers(headers: &'a HeaderMap) -> Self {
        match single(headers, ORIGIN) {
            Single::One(v) => OriginEvidence::Origin(v),
            Single::Unusable => OriginEvidence::Unusable,
            Single::None => match single(headers, REFERER) {
                Single::One(v) => OriginEvidence::Referer(v),
                Single::Unusable => OriginEvidence::Unusable,
                Single::None => OriginEvidence::Missing,
            },
        }
    }
}

enum Single<'a> {
    None,
    One(&'a str),
    Unusable,
}

fn single(headers: &HeaderMap, name: http::HeaderName) -> Single<'_> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Single::None,
        (Some(v), None) => v.to_str().map_or(Single::Unusable, Single::One),
        (Some(_), Some(_)) => Single::Unusable,
    }
}

/// What is known of a request when it is decided.
///
/// ```
/// use gis_auth::policy::{OriginEvidence, RequestFacts};
/// use http::Method;
///
/// let now = time::OffsetDateTime::now_utc();
/// let facts = RequestFacts {
///     origin: OriginEvidence::Origin("https://maps.acme.test"),
///     ..RequestFacts::new(&Method::GET, "/tiles/1/2/3.png", now)
/// };
/// assert_eq!(facts.path, "/tiles/1/2/3.png");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path, as sent (percent-encoded).
    pub path: &'a str,
    /// The query, as sent.
    pub query: Option<&'a str>,
    /// Where it says it comes from.
    pub origin: OriginEvidence<'a>,
    /// The caller's address, if known (after trusted-proxy resolution).
    pub client_ip: Option<IpAddr>,
    /// The time of the decision.
    pub now: OffsetDateTime,
    /// The roles a bearer token was minted for, which narrow the client's.
    pub token_scope: Option<&'a RoleSet>,
    /// The account's usage so far today and this month and this request's cost, when
    /// known: the quotas are then part of the decision.
    pub quota: Option<QuotaFacts>,
    /// The scope of the signed tile URL the request came with, once its signature is
    /// verified. The signature is the capability: the client's origin rules do not apply,
    /// and the request must stay within the scope.
    pub signed: Option<&'a TileUrlScope>,
}

/// What a signed tile URL covers: one API, optionally a range of zoom levels and a set of
/// items.
///
/// ```
/// use gis_auth::policy::TileUrlScope;
///
/// let scope = TileUrlScope::new("WorldStreets").zoom(Some(0), Some(12));
/// assert!(scope.covers_zoom(12) && !scope.covers_zoom(13));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileUrlScope {
    /// The API's name.
    pub api: String,
    /// The lowest zoom level covered.
    pub min_zoom: Option<u32>,
    /// The highest zoom level covered.
    pub max_zoom: Option<u32>,
    /// The items covered; empty covers the API's tiles that name no item.
    pub items: Vec<String>,
}

impl TileUrlScope {
    /// Every tile of `api`.
    pub fn new(api: impl Into<String>) -> Self {
        Self {
            api: api.into(),
            min_zoom: None,
            max_zoom: None,
            items: Vec::new(),
        }
    }

    /// With a zoom range (either end open).
    #[must_use]
    pub fn zoom(mut self, min: Option<u32>, max: Option<u32>) -> Self {
        self.min_zoom = min;
        self.max_zoom = max;
        self
    }

    /// With these items.
    #[must_use]
    pub fn items(mut self, items: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.items = items.into_iter().map(Into::into).collect();
        self
    }

    /// Whether zoom level `z` is in the range.
    pub fn covers_zoom(&self, z: u32) -> bool {
        self.min_zoom.is_none_or(|min| z >= min) && self.max_zoom.is_none_or(|max| z <= max)
    }

    /// Whether the range limits the zoom level at all.
    pub fn limits_zoom(&self) -> bool {
        self.min_zoom.is_some() || self.max_zoom.is_some()
    }
}

impl<'a> RequestFacts<'a> {
    /// Facts for `method` on `path` at `now`, with nothing else known.
    pub fn new(method: &'a Method, path: &'a str, now: OffsetDateTime) -> Self {
        Self {
            method,
            path,
            query: None,
            origin: OriginEvidence::Missing,
            client_ip: None,
            now,
            token_scope: None,
            quota: None,
            signed: None,
        }
    }
}
