//! # gis-auth
//!
//! Key-based access control for GIS web services (map tiles, WMS, geocoding, reverse
//! geocoding, elevation) as a Tower [`Layer`](tower_layer::Layer).
//!
//! Clients belong to accounts. A *JavaScript* client has one public API key, sent as the
//! `apikey` query parameter, and reaches only *plugin* APIs; a *NativeConfidential* client
//! has a client id and secret, exchanged for bearer tokens, and reaches everything its roles
//! allow. Clients can be limited to origins and IP ranges, expire, and be switched off; every
//! refusal is a JSON error with the right status (401, 403, 400, 503), and a store that fails
//! means 503, never an open door.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use gis_auth::{AuthLayer, client::{Account, AccountId, Role, RoleSet},
//!     policy::{Api, RouteTable}, store::InMemoryStore};
//! use http::Method;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(InMemoryStore::new());
//! let demo = store.open_account(Account::new(AccountId::new("demo")?, "Demo",
//!     RoleSet::from_iter([Role::USER, Role::EVALUATOR]))?)?;
//!
//! let routes = RouteTable::new()
//!     .route(Method::GET, "/tiles/{z}/{x}/{y}.png",
//!         Api::new("WorldStreets", [Role::EVALUATOR, Role::SUBSCRIBER]).plugin(true))?
//!     .public(Method::GET, "/health")?;
//! let app: Router = Router::new()
//!     .route("/tiles/{z}/{x}/{y}", get(|| async { "tile" }))
//!     .route("/health", get(|| async { "ok" }))
//!     .layer(AuthLayer::new(store.clone(), routes));
//!
//! let key = demo.javascript.credential.expose();
//! let req = http::Request::get(format!("/tiles/1/2/3.png?apikey={key}"))
//!     .body(axum::body::Body::empty())?;
//! assert_eq!(app.oneshot(req).await?.status(), 200);
//! # Ok(()) }
//! ```
//!
//! The modules follow the request: [`credentials`] pulls the credential out, [`client`] is
//! the model and the key format, [`store`] finds the client, [`restrict`] holds origin and IP
//! rules, [`policy`] maps routes to APIs and makes the decision, [`token`] verifies bearer
//! tokens, [`signed`] mints and verifies signed tile URLs, and [`layer`] ties them into a
//! Tower service. [`document`] is the JSON of clients
//! and accounts that the clients file, the admin API and the command-line tool share.
//! [`console`] serves the account holders' web page over the admin API.

#![warn(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
pub mod client;
pub mod clock;
pub mod console;
pub mod credentials;
pub mod document;
mod error;
pub mod events;
pub mod layer;
pub mod limits;
pub mod policy;
mod rejection;
pub mod restrict;
mod rule;
pub mod signed;
pub mod store;
pub mod token;

pub use error::{BackendError, ConfigError};
pub use layer::Principal;
pub use layer::{AuthLayer, AuthService};
pub use rejection::Rejection;
pub use rule::RejectionKind;
