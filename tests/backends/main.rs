//! The integration tests that run against real services, in one test binary: the
//! PostgreSQL store, the Redis usage counters (exact and leased) and rate limiter, and
//! several layers (and example-server processes) sharing both. [`services`] connects to
//! PostgreSQL at `DATABASE_URL` and Redis at `REDIS_URL`, or else to the machine's servers
//! or private ones ([`local_services`]); each module is built only with the feature it
//! tests, so `cargo test` without features needs neither service.

#![cfg(any(feature = "postgres", feature = "redis"))]

#[path = "../local_services/mod.rs"]
mod local_services;
mod private_services;
mod services;

#[cfg(feature = "redis")]
mod leased_servers;
#[cfg(feature = "redis")]
mod leased_usage;
#[cfg(all(feature = "postgres", feature = "redis"))]
mod many_instances;
#[cfg(feature = "postgres")]
mod postgres_store;
#[cfg(feature = "redis")]
mod redis_one_call;
#[cfg(feature = "redis")]
mod redis_plan;
#[cfg(feature = "redis")]
mod redis_usage;
