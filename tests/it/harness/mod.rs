//! What the integration tests share: one [`reply::Reply`] and one [`reply::send`] for every
//! surface; the layer in front of an echo handler ([`world`]); the example server's router
//! ([`server`], with [`request`] to build what its clients send); and the example server's
//! own code, compiled once here for every module that drives it.

// Each module uses a different part of the harness, and without the `admin` feature the
// example server is left out, so some helpers go unused in some builds.
#![allow(dead_code)]

pub mod reply;
pub mod world;

#[cfg(feature = "admin")]
pub mod request;
#[cfg(feature = "admin")]
pub mod server;

/// The example GIS server's router, options and demo store.
#[cfg(feature = "admin")]
#[path = "../../../examples/gis_server/app.rs"]
pub mod app;

/// The example's logs: the subscriber and the refusal lines.
#[cfg(feature = "admin")]
#[path = "../../../examples/gis_server/logs.rs"]
pub mod logs;

/// The example's load-test baselines (the router with the layer swapped out).
#[cfg(feature = "admin")]
#[path = "../../../examples/gis_server/bench.rs"]
pub mod bench;

/// The example token server's backend: the token cache in front of `POST /oauth/token`.
#[cfg(feature = "admin")]
#[path = "../../../examples/token_server/backend.rs"]
pub mod token_backend;
