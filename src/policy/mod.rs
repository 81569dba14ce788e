//! The route table (which API a request is for and who may call it) and the one decision
//! function that the layer, and anything that explains a decision, calls.
//!
//! ```
//! use gis_auth::client::Role;
//! use gis_auth::policy::{Api, RouteTable};
//! use http::Method;
//!
//! let routes = RouteTable::new()
//!     .route(Method::GET, "/tiles/{z}/{x}/{y}.png",
//!         Api::new("WorldStreets", [Role::EVALUATOR, Role::SUBSCRIBER]).plugin(true))?
//!     .route(Method::GET, "/account/profile", Api::new("Profile", [Role::USER]))?
//!     .public(Method::GET, "/health")?;
//! assert_eq!(routes.routes().len(), 3);
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

mod decision;
mod lint;
mod route;
mod standard;
mod table;

pub use crate::rule::Rule;
pub use decision::{
    Decision, Finding, OriginEvidence, Policy, QuotaFacts, QuotaState, RequestFacts,
    next_utc_midnight, quota_admits,
};
pub(crate) use decision::{decide, seconds_until};
pub use lint::{LintContext, LintWarning, Trap, lint};
pub use route::PathPattern;
pub use standard::{
    MAX_ELEVATION_POINTS, TILE_COST, elevation_cost, elevation_points_cost, standard_routes,
};
pub use table::{Api, Cost, ItemSource, Route, RouteAccess, RouteTable, TRANSACTION, transactions};
