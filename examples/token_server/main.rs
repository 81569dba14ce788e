//! Your own token server: a small backend that holds a NativeConfidential client's id and
//! secret, exchanges them for access tokens at the GIS server (`client_secret_basic`),
//! keeps each token until shortly before it expires and hands it to browser code at
//! `GET /token`. The secret never reaches the browser; the page at `GET /` shows the
//! pattern by calling the GIS server with the token.
//!
//! Run the GIS server, then this backend with the NativeConfidential client the GIS server
//! printed (the line with `client_id` and `client_secret`):
//!
//! ```text
//! cargo run --example gis_server
//! GIS_CLIENT_SECRET='gis_secret_…' cargo run --example token_server -- --client-id cl_…
//! curl -s http://127.0.0.1:3000/token
//! curl -s -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8080/geocode?q=Paris'
//! ```
//!
//! The tokens are narrowed to the map roles (`--scope`, `Evaluator` by default: never
//! `User`, which would let any script on the page create, regenerate and delete clients)
//! and short-lived (`--lifetime`, 900 s by default).
//!
//! The secret is read from the `GIS_CLIENT_SECRET` environment variable, never from a flag,
//! so it does not show in the process list. `GET /token` answers
//! `{"access_token", "token_type": "Bearer", "expires_in"}` (the remaining lifetime) with
//! `Cache-Control: no-store`, or 502 `upstream_unavailable` when the GIS server cannot be
//! reached or refuses the credentials. Anyone who can reach `GET /token` can use the GIS
//! server as this client: in a real application, put it behind your own sign-in, and do
//! not let other origins read it (no permissive CORS). Ctrl-C stops the server.

mod backend;

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

/// The environment variable holding the client secret.
const SECRET_VAR: &str = "GIS_CLIENT_SECRET";

/// A backend that hands short-lived GIS access tokens to browser code.
#[derive(Debug, Parser)]
#[command(name = "token_server")]
struct Flags {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,

    /// The GIS server's base URL; tokens come from its `/oauth/token`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gis_url: String,

    /// The NativeConfidential client's id (its secret comes from GIS_CLIENT_SECRET).
    #[arg(long)]
    client_id: String,

    /// The roles the handed-out tokens carry, space-separated: the map roles, never `User`
    /// (which opens the account API to every script on the page).
    #[arg(long, default_value = backend::DEFAULT_SCOPE)]
    scope: String,

    /// The lifetime asked for, in seconds (at least 60; the GIS server may grant less).
    #[arg(long, value_name = "SECONDS", default_value_t = backend::DEFAULT_LIFETIME.as_secs())]
    lifetime: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Flags::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("token_server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> Result<(), Box<dyn Error>> {
    let secret = std::env::var(SECRET_VAR)
        .map_err(|_| format!("set {SECRET_VAR} to the client secret of --client-id"))?;
    let upstream = backend::Upstream::new(
        &flags.gis_url,
        &flags.client_id,
        backend::ClientSecret::new(secret),
    )?
    .asking(&flags.scope, std::time::Duration::from_secs(flags.lifetime))?;
    let cache = Arc::new(backend::TokenCache::new(upstream));

    // One exchange up front, so wrong credentials show at once; GET /token retries anyway.
    match cache.token().await {
        Ok(_) => eprintln!("token_server: the GIS server accepted the client credentials"),
        Err(e) => eprintln!("token_server: warning: {e}; GET /token will try again"),
    }

    let listener = tokio::net::TcpListener::bind(flags.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", flags.addr))?;
    let local = listener.local_addr()?;
    eprintln!("token_server: listening on http://{local} (GET /token, demo page at GET /)");
    axum::serve(listener, backend::router(cache))
        .with_graceful_shutdown(ctrl_c())
        .await?;
    eprintln!("token_server: stopped");
    Ok(())
}

/// Resolves on Ctrl-C; if the handler cannot be installed, never.
async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("token_server: cannot listen for Ctrl-C ({e}); stop the process to quit");
        std::future::pending::<()>().await;
    }
    eprintln!("token_server: shutting down");
}
