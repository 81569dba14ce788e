//! [`mint_tile_template`]: a signed URL template for a tile API of a route table, as the
//! admin API's `POST /account/tile-urls` and a TileJSON document hand out.
//!
//! ```
//! use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests,
//!     KeyDigest, Role, RoleSet};
//! use gis_auth::policy::standard_routes;
//! use gis_auth::signed::{TileUrlKey, TileUrlRequest, TileUrlSigner, mint_tile_template};
//!
//! let acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::EVALUATOR]))?;
//! let web = Client::build(ClientId::new("web")?, &ClientSpec::javascript("Web"), &acme,
//!     CredentialDigests::new(KeyDigest::of("…")))?;
//! let signer = TileUrlSigner::new(TileUrlKey::new("t1", &[9u8; 32])?);
//! let routes = standard_routes()?;
//! let made = mint_tile_template(&signer, &routes, &web, &TileUrlRequest::new("WorldStreets"))
//!     .expect("a tile API");
//! assert!(made.template.starts_with("/tiles/{z}/{x}/{y}.png?cid=web&api=WorldStreets&exp="));
//! let err = mint_tile_template(&signer, &routes, &web, &TileUrlRequest::new("Geocoder"))
//!     .unwrap_err();
//! assert_eq!(err.field(), "api");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use http::Method;
use time::OffsetDateTime;

use super::signer::{DEFAULT_TILE_URL_TTL, MAX_TILE_URL_TTL, TileUrlSigner};
use crate::client::{Client, MAX_ITEM_ID_LEN};
use crate::policy::{Api, ItemSource, Route, RouteAccess, RouteTable, TileUrlScope};

/// The deepest zoom level a signed URL may name.
pub const MAX_TILE_ZOOM: u32 = 30;

/// The most items a signed URL may name.
pub const MAX_TILE_URL_ITEMS: usize = 100;

/// What to sign: an API of the route table, a lifetime and optionally a zoom range and
/// items.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TileUrlRequest {
    /// The scope: the API, zoom range and items.
    pub scope: TileUrlScope,
    /// How long the URL works (before rounding up to the signer's bucket).
    pub ttl: Duration,
}

impl TileUrlRequest {
    /// Every tile of `api`, for the [`DEFAULT_TILE_URL_TTL`].
    pub fn new(api: impl Into<String>) -> Self {
        Self {
            scope: TileUrlScope::new(api),
            ttl: DEFAULT_TILE_URL_TTL,
        }
    }

    /// With this scope.
    #[must_use]
    pub fn scope(mut self, scope: TileUrlScope) -> Self {
        self.scope = scope;
        self
    }

    /// With this lifetime.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// A signed URL template: the tile route's path with the literal `{z}`, `{x}` and `{y}`,
/// and the signed query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TileTemplate {
    /// `/tiles/{z}/{x}/{y}.png?cid=…&sig=…`.
    pub template: String,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// Why a template was not minted: the field of the request at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TileUrlError {
    field: &'static str,
    reason: &'static str,
}

impl TileUrlError {
    /// The field: `api`, `ttl_seconds`, `min_zoom`, `max_zoom` or `items`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// Why, without quoting the value.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

fn error<T>(field: &'static str, reason: &'static str) -> Result<T, TileUrlError> {
    Err(TileUrlError { field, reason })
}

/// Whether `route` serves map tiles: a `GET` route of an API whose path names `{z}`, `{x}`
/// and `{y}`.
pub fn is_tile_route(route: &Route) -> bool {
    let pattern = route.pattern();
    route.method() == Method::GET
        && matches!(route.access(), RouteAccess::Api(_))
        && ["z", "x", "y"].iter().all(|p| pattern.has_param(p))
}

/// The tile route of the API named `api`, if it has one.
pub fn tile_route<'r>(routes: &'r RouteTable, api: &str) -> Option<(&'r Route, &'r Api)> {
    routes
        .routes()
        .iter()
        .find_map(|route| match route.access() {
            RouteAccess::Api(a) if a.name() == api && is_tile_route(route) => Some((route, &**a)),
            _ => None,
        })
}

/// Mints a signed template for `client`'s requests to a tile API of `routes`. The API must
/// have a tile route; the lifetime is 1 second to [`MAX_TILE_URL_TTL`]; zoom levels are at
/// most [`MAX_TILE_ZOOM`] and `min_zoom` ≤ `max_zoom`; items (at most
/// [`MAX_TILE_URL_ITEMS`]) only for an API that reads one. Whether the client may use the
/// API is decided when the URL is used, by the policy, as for every credential.
pub fn mint_tile_template(
    signer: &TileUrlSigner,
    routes: &RouteTable,
    client: &Client,
    request: &TileUrlRequest,
) -> Result<TileTemplate, TileUrlError> {
    let scope = &request.scope;
    let Some((route, api)) = tile_route(routes, &scope.api) else {
        return error("api", "not a tile API of this server");
    };
    if request.ttl.is_zero() || request.ttl > MAX_TILE_URL_TTL {
        return error("ttl_seconds", "the lifetime is 1 to 86400 seconds");
    }
    for (field, zoom) in [("min_zoom", scope.min_zoom), ("max_zoom", scope.max_zoom)] {
        if zoom.is_some_and(|z| z > MAX_TILE_ZOOM) {
            return error(field, "zoom levels are 0 to 30");
        }
    }
    if let (Some(min), Some(max)) = (scope.min_zoom, scope.max_zoom)
        && min > max
    {
        return error("min_zoom", "min_zoom is at most max_zoom");
    }
    if !scope.items.is_empty() {
        if api.item_source().is_none() {
            return error("items", "this API serves no items");
        }
        if scope.items.len() > MAX_TILE_URL_ITEMS {
            return error("items", "at most 100 items");
        }
        if scope
            .items
            .iter()
            .any(|i| i.is_empty() || i.len() > MAX_ITEM_ID_LEN)
        {
            return error("items", "an item id is 1 to 256 bytes");
        }
    }
    let minted = signer.mint(client, scope, request.ttl);
    let mut path = route.pattern().as_str().to_owned();
    // One item read from the path: the template names it.
    if let (Some(ItemSource::Path(name)), [item]) = (api.item_source(), scope.items.as_slice()) {
        let encoded =
            percent_encoding::utf8_percent_encode(item, percent_encoding::NON_ALPHANUMERIC);
        path = path.replace(&format!("{{{name}}}"), &encoded.to_string());
    }
    Ok(TileTemplate {
        template: format!("{path}?{}", minted.query),
        expires_at: minted.expires_at,
    })
}
