//! The integration tests that need no external service, in one test binary: one module per
//! capability, all sharing [`harness`]. Modules that drive the example server need the
//! `admin` feature, as the example itself does.
//!
//! The tests that need PostgreSQL or Redis are in `tests/backends/`, the command-line
//! tool's in `tests/cli/`, and the log capture's in `tests/observability.rs` (it needs a
//! process of its own).

mod harness;

// The example's `bench.rs` reaches the router as `crate::app`, as in the example binary.
#[cfg(feature = "admin")]
use harness::app;

mod architecture;
mod console;
mod credentials;
mod faults;
mod file_store;
mod ip_rules;
mod layer;
mod lifecycle;
mod origins;
mod properties;
mod routes;

#[cfg(feature = "admin")]
mod admin;
#[cfg(all(feature = "admin", feature = "webhook"))]
mod events;
#[cfg(feature = "admin")]
mod example_server;
#[cfg(feature = "admin")]
mod policy;
#[cfg(feature = "admin")]
mod signed_urls;
#[cfg(feature = "admin")]
mod token_server;
#[cfg(feature = "admin")]
mod tokens;
