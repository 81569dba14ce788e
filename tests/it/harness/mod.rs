//! What the integration tests share: the layer-level world ([`world`]) and the example
//! server's own code, compiled once here for every module that drives it.

// Each module uses a different part of the harness, and without the `admin` feature the
// example server is left out, so some helpers go unused in some builds.
#![allow(dead_code)]

pub mod world;

/// The example GIS server's router, options and demo store.
#[cfg(feature = "admin")]
#[path = "../../../examples/gis_server/app.rs"]
pub mod app;

/// The example's load-test baselines (the router with the layer swapped out).
#[cfg(feature = "admin")]
#[path = "../../../examples/gis_server/bench.rs"]
pub mod bench;

/// The example token server's backend: the token cache in front of `POST /oauth/token`.
#[cfg(feature = "admin")]
#[path = "../../../examples/token_server/backend.rs"]
pub mod token_backend;
