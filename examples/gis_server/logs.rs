//! What the server tells its operator on stderr: a [`tracing`] subscriber filtered by
//! `RUST_LOG` (`info` when unset), one line per refused request ([`log_refusal`]: the
//! client when its credential identified it, the API, the rule and the status) and one per
//! finding of a report-only restriction (the library's `gis_auth::shadow` events). No line
//! carries a key, secret or token: the layer strips them before anything is logged, and a
//! refusal is described by its [`Rejection`], which holds none.

use axum::response::Response;
use gis_auth::Rejection;
use gis_auth::policy::Decision;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The filter when `RUST_LOG` is unset or empty.
pub const DEFAULT_FILTER: &str = "info";

/// The target of the refusal lines.
pub const REFUSAL_TARGET: &str = "gis_server::refusal";

/// The subscriber of the server, writing to `writer`, filtered by `rust_log` (the value of
/// `RUST_LOG`) or by [`DEFAULT_FILTER`]. A filter that does not parse is an error, not a
/// silent default.
pub fn subscriber<W>(
    rust_log: Option<&str>,
    writer: W,
) -> Result<impl tracing::Subscriber + Send + Sync + 'static, String>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let directives = rust_log
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(DEFAULT_FILTER);
    let filter =
        EnvFilter::try_new(directives).map_err(|e| format!("RUST_LOG `{directives}`: {e}"))?;
    Ok(tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .finish())
}

/// Installs [`subscriber`] for the whole process, on stderr, as `main.rs` does.
pub fn install(rust_log: Option<&str>) -> Result<(), String> {
    let subscriber = subscriber(rust_log, std::io::stderr)?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| format!("cannot install the log subscriber: {e}"))
}

/// Logs the refusal a response carries, if it is one, at `info`; gives the response back.
/// It sits outside the auth layer (and inside CORS), where every refusal passes.
pub fn log_refusal(res: Response) -> Response {
    if let Some(rejection) = res.extensions().get::<Rejection>() {
        tracing::info!(
            target: REFUSAL_TARGET,
            status = res.status().as_u16(),
            error = rejection.error_code(),
            kind = ?rejection.kind(),
            client = rejection.client().map(|c| c.as_str()),
            api = rejection.api(),
            rule = rejection.decision().and_then(Decision::rule).map(|r| r.as_str()),
            "refused"
        );
    }
    res
}
