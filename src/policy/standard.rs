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
use super::table::{Api, Cost, ErrorFormat, RouteTable, Unpriceable};
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
/// one point for a single `lat`/`lon` pair. A `points` list the elevation API would refuse
/// (empty, more than [`MAX_ELEVATION_POINTS`], a point that is not `lat,lon` in range, or
/// `points` given twice) cannot be priced: so no request costs more than the largest valid
/// one.
pub fn elevation_cost(_: &Method, uri: &Uri, _: &HeaderMap) -> Result<u64, Unpriceable> {
    let query = uri.query().unwrap_or_default();
    let mut lists = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k.eq_ignore_ascii_case("points"))
        .map(|(_, v)| v);
    let Some(list) = lists.next() else {
        return Ok(elevation_points_cost(1));
    };
    if lists.next().is_some() {
        return Err(Unpriceable::new("`points` is given more than once"));
    }
    let mut points = 0usize;
    for point in list.split(';').filter(|p| !p.trim().is_empty()) {
        points += 1;
        if points > MAX_ELEVATION_POINTS {
            return Err(Unpriceable::new(
                "`points` lists more points than the elevation API serves",
            ));
        }
        if !is_point(point) {
            return Err(Unpriceable::new("a point of `points` is not `lat,lon`"));
        }
    }
    if points == 0 {
        return Err(Unpriceable::new("`points` lists no point"));
    }
    Ok(elevation_points_cost(points))
}

/// Whether `point` is `lat,lon` in range, as the elevation API reads it.
fn is_point(point: &str) -> bool {
    let in_range = |v: &str, limit: f64| {
        v.trim()
            .parse::<f64>()
            .is_ok_and(|v| (-limit..=limit).contains(&v))
    };
    point
        .split_once(',')
        .is_some_and(|(lat, lon)| in_range(lat, 90.0) && in_range(lon, 180.0))
}

/// The layers of the standard WMS that any caller of the WMS API may use; any other layer
/// needs a `read` grant on the item of its name (`parcels`, in the example server).
pub const WMS_OPEN_LAYERS: [&str; 2] = ["streets", "imagery"];

/// The WMS API of the standard table: a WMS 1.3.0 (OGC 06-042) names its layers in
/// `LAYERS` (§7.3.3.3), so each layer is an item ([`Api::items_from_query_list`]), with
/// [`WMS_OPEN_LAYERS`] open; refusals are OGC service exception reports (§6.11), which WMS
/// clients show.
pub fn wms_api() -> Api {
    Api::new("WMS", [Role::EVALUATOR, Role::SUBSCRIBER])
        .items_from_query_list("LAYERS")
        .open_items(WMS_OPEN_LAYERS)
        .error_format(ErrorFormat::OgcServiceException)
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
/// | `GET /wms` | WMS (layers `streets`, `imagery` open; others need grants; OGC errors) | no | Evaluator, Subscriber | 1 |
/// | `GET`, `PUT /items/{item}/metadata` | Items (item grants) | no | Evaluator, Subscriber | 1 |
/// | `GET`, `PATCH /account/profile` | Profile | no | User | free |
/// | `GET`, `POST /account/clients`, `GET`, `PATCH`, `DELETE /account/clients/{id}`, `POST /account/clients/{id}/regenerate`, `POST /account/tile-urls`, `GET /account/audit` | Clients | no | User | free |
/// | `GET /account/usage`, `GET /account/quota` | Usage, Quota | no | User | free |
/// | `GET /account/openapi.json`, `GET /health`, `GET /.well-known/jwks.json`, `GET /.well-known/oauth-authorization-server` | public | | | |
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
                .cost(Cost::try_from_fn(elevation_cost)),
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
        .route(Method::GET, "/wms", wms_api())?
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
        .route(Method::POST, "/account/tile-urls", account("Clients"))?
        .route(Method::GET, "/account/audit", account("Clients"))?
        .public(Method::GET, "/account/openapi.json")?
        .public(Method::GET, "/health")?
        // The token signing keys and the server metadata: what other services and client
        // libraries read before they hold any credential.
        .public(Method::GET, "/.well-known/jwks.json")?
        .public(Method::GET, "/.well-known/oauth-authorization-server")
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
        assert_eq!(
            elevation_cost(&Method::GET, &uri, &HeaderMap::new()),
            Ok(1_000)
        );
    }

    fn cost_of(query: &str) -> Result<u64, Unpriceable> {
        let uri: Uri = format!("/elevation?{query}").parse().unwrap();
        elevation_cost(&Method::GET, &uri, &HeaderMap::new())
    }

    #[test]
    fn elevation_points_the_api_would_refuse_cannot_be_priced() {
        let many = |n: usize| format!("points={}", vec!["1,2"; n].join(";"));
        assert_eq!(cost_of(&many(MAX_ELEVATION_POINTS)), Ok(100_000));
        for query in [
            many(MAX_ELEVATION_POINTS + 1),
            many(16_000),
            format!("points={}", vec!["1"; 32_000].join(";")),
            "points=".to_owned(),
            "points=;;".to_owned(),
            "points=1,2;x".to_owned(),
            "points=91,0".to_owned(),
            "points=0,181".to_owned(),
            "points=1;2".to_owned(),
            "points=1,2&points=3,4".to_owned(),
        ] {
            assert!(
                cost_of(&query).is_err(),
                "{}",
                &query[..query.len().min(40)]
            );
        }
        assert_eq!(cost_of("lat=1&lon=2"), Ok(1_000));
        assert_eq!(cost_of(""), Ok(1_000));
    }

    proptest::proptest! {
        #[test]
        fn no_elevation_request_costs_more_than_the_largest_valid_one(
            query in "[a-z0-9=,;&%.-]{0,200}",
            n in 0usize..16_000,
        ) {
            let largest = elevation_points_cost(MAX_ELEVATION_POINTS);
            if let Ok(cost) = cost_of(&query) {
                proptest::prop_assert!(cost <= largest);
            }
            let listed = format!("points={}", vec!["1,2"; n].join(";"));
            if let Ok(cost) = cost_of(&listed) {
                proptest::prop_assert!(cost <= largest);
            }
        }
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
