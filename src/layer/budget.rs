//! Backend calls within the layer's time budget: a store, verifier, counter or limiter that
//! fails, or stalls past [`AuthLayer::backend_timeout`](super::AuthLayer::backend_timeout),
//! is a 503, never an open door.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use gis_auth::AuthLayer;
//! use gis_auth::policy::RouteTable;
//! use gis_auth::store::InMemoryStore;
//!
//! let layer = AuthLayer::new(Arc::new(InMemoryStore::new()), RouteTable::new())
//!     .backend_timeout(Some(Duration::from_millis(250)));
//! # let _ = layer;
//! ```

use std::future::Future;

use super::config::Config;
use crate::rejection::Rejection;
use crate::rule::RejectionKind;

/// A backend failure: logged at `warn`, answered with 503.
pub(crate) fn backend_failed(what: &'static str, error: &dyn std::fmt::Display) -> Rejection {
    tracing::warn!(error = %error, "{what} failed");
    RejectionKind::Unavailable.into()
}

/// Runs a backend call within the budget: its failure or a stall past the budget is a 503.
pub(crate) async fn fail_closed<T, E: std::fmt::Display>(
    config: &Config,
    what: &'static str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Rejection> {
    match within_budget(config, fut).await {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(backend_failed(what, &e)),
        None => Err(RejectionKind::Unavailable.into()),
    }
}

/// Runs `fut` within the layer's budget; `None` when it ran out.
pub(crate) async fn within_budget<F: Future>(config: &Config, fut: F) -> Option<F::Output> {
    crate::store::within_budget(config.backend_timeout, fut).await
}
