//! The route table of a standard GIS service: map tiles, imagery, elevation, geocoding,
//! reverse geocoding, WMS, items, and the account pages of the admin API, with the roles
//! and GIS-weighted costs of the hosted map platforms. The example server serves it, and the
//! command-line tool's `explain` decides against it.
//!
//! ```
//! use gis_auth::policy::{RouteAccess, standard_routes};
//! use http::Method;
//!
//! let routes = standard_routes()?;
//! let tiles = routes.lookup(&Method::GET, "/tiles/3/2/1.png").unwrap();
//! assert!(matches!(tiles.access(), RouteAccess::Api(api) if api.is_plugin()));
//! assert!(routes.lookup(&Method::GET, "/health").is_some());
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use http::{HeaderMap, Method, Uri};

use super::quota::TRANSACTION;
use super::table::{Api, Cost, RouteTable};
use crate::client::Role;
use crate::error::ConfigError;

/// A map tile costs a tenth of a transaction, as on the hosted platforms.
pub const TILE_COST: u64 = TRANSACTION / 10;

/// The APIs of the admin API's account pages in [`standard_routes`]: a client whose
/// privileges leave one out cannot manage its account.
pub const ACCOUNT_APIS: [&str; 4] = ["Profile", "Clients", "Usage", "Quota"];

/// Points an elevation request may ask for at once.
pub const MAX_ELEVATION_POINTS: usize = 10_000;

/// What `points` elevation points cost: one transaction per started 100.
pub fn elevation_points_cost(points: usize) -> u64 {
    (points.max(1) as u64).div_ceil(100) * TRANSACTION
}

/// Elevation costs one transaction per started 100 points: `points=lat,lon;lat,lon;…`, or
/// one point for a single `lat`/`lon` pair.
pub fn elevation_cost(_: &Method, uri: &Uri, _: &HeaderMap) -> u64 {
    let points = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("points"))
        .map_or(1, |(_, v)| {
            v.split(';').filter(|p| !p.trim().is_empty()).count()
        });
    elevation_points_cost(points)
}

/// The standard routes:
///
/// | Route | API | Plugin | Roles | Cost (transactions) |
/// |---|---|---|---|---|
/// | `GET /tiles/{z}/{x}/{y}.png` | WorldStreets | yes | Evaluator, Subscriber | 0.1 |
/// | `GET /imagery/{z}/{x}/{y}.png` | WorldImagery | yes | Evaluator, Subscriber | 0.1 |
/// | `GET /elevation` | Elevation | yes | Evaluator, Subscriber | 1 per started 100 points |
/// | `POST /elevation` (batch body) | Elevation | yes | Evaluator, Subscriber | charged by the handler |
/// | `GET /reverse-geocode` | ReverseGeocoder | yes | Evaluator, Subscriber | 1 |
/// | `GET /geocode` | Geocoder | no | Evaluator, Subscriber | 1 |
/// | `GET /wms` | WMS | no | Evaluator, Subscriber | 1 |
/// | `GET`, `PUT /items/{item}/metadata` | Items (item grants) | no | Evaluator, Subscriber | 1 |
/// | `GET`, `PATCH /account/profile` | Profile | no | User | free |
/// | `GET`, `POST /account/clients`, `GET`, `PATCH`, `DELETE /account/clients/{id}`, `POST /account/clients/{id}/regenerate` | Clients | no | User | free |
/// | `GET /account/usage`, `GET /account/quota` | Usage, Quota | no | User | free |
/// | `GET /account/openapi.json`, `GET /health` | public | | | |
pub fn standard_routes() -> Result<RouteTable, ConfigError> {
    let maps = || [Role::EVALUATOR, Role::SUBSCRIBER];
    let account = |name: &str| Api::new(name, [Role::USER]).cost(Cost::Free);
    let items = || Api::new("Items", maps()).item_from_path("item");
    RouteTable::new()
        .route(
            Method::GET,
            "/tiles/{z}/{x}/{y}.png",
            Api::new("WorldStreets", maps())
                .plugin(true)
                .cost(Cost::Fixed(TILE_COST)),
        )?
        .route(
            Method::GET,
            "/imagery/{z}/{x}/{y}.png",
            Api::new("WorldImagery", maps())
                .plugin(true)
                .cost(Cost::Fixed(TILE_COST)),
        )?
        .route(
            Method::GET,
            "/elevation",
            Api::new("Elevation", maps())
                .plugin(true)
                .cost(Cost::from_fn(elevation_cost)),
        )?
        .route(
            Method::POST,
            "/elevation",
            // A batch body is priced by its handler once read: nothing up front, then one
            // transaction per started 100 points through the request's `Meter`.
            Api::new("Elevation", maps())
                .plugin(true)
                .cost(Cost::Fixed(0))
                .handler_meter(true),
        )?
        .route(
            Method::GET,
            "/reverse-geocode",
            Api::new("ReverseGeocoder", maps()).plugin(true),
        )?
        .route(Method::GET, "/geocode", Api::new("Geocoder", maps()))?
        .route(Method::GET, "/wms", Api::new("WMS", maps()))?
        .route(Method::GET, "/items/{item}/metadata", items())?
        .route(Method::PUT, "/items/{item}/metadata", items())?
        .route(Method::GET, "/account/profile", account("Profile"))?
        .route(Method::PATCH, "/account/profile", account("Profile"))?
        .route(Method::GET, "/account/clients", account("Clients"))?
        .route(Method::POST, "/account/clients", account("Clients"))?
        .route(Method::GET, "/account/clients/{id}", account("Clients"))?
        .route(Method::PATCH, "/account/clients/{id}", account("Clients"))?
        .route(Method::DELETE, "/account/clients/{id}", account("Clients"))?
        .route(
            Method::POST,
            "/account/clients/{id}/regenerate",
            account("Clients"),
        )?
        .route(Method::GET, "/account/usage", account("Usage"))?
        .route(Method::GET, "/account/quota", account("Quota"))?
        .public(Method::GET, "/account/openapi.json")?
        .public(Method::GET, "/health")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elevation_costs_one_transaction_per_started_hundred_points() {
        for (n, cost) in [
            (0, 1_000),
            (1, 1_000),
            (100, 1_000),
            (101, 2_000),
            (10_000, 100_000),
        ] {
            assert_eq!(elevation_points_cost(n), cost, "{n} points");
        }
        let uri: Uri = "/elevation?points=1,1;2,2;;".parse().unwrap();
        assert_eq!(elevation_cost(&Method::GET, &uri, &HeaderMap::new()), 1_000);
    }

    #[test]
    fn the_standard_table_builds() {
        let routes = standard_routes().unwrap();
        assert!(
            routes
                .lookup(&Method::DELETE, "/account/clients/web")
                .is_some()
        );
        assert!(routes.lookup(&Method::DELETE, "/account/profile").is_none());
    }
}
