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
mod principal;
mod route;
mod table;

pub use decision::{Authorized, OriginEvidence, RequestFacts, authorize};
pub use principal::{CredentialSource, Principal};
pub use route::PathPattern;
pub use table::{Api, Route, RouteAccess, RouteTable};
