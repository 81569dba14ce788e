//! A small GIS web service guarded by gis-auth: tiles, imagery, elevation, geocoding, WMS
//! and an account profile behind API keys and bearer tokens.
//!
//! ```text
//! cargo run --example gis_server
//! cargo run --example gis_server -- --addr 127.0.0.1:9000 --clients clients.json \
//!     --trusted-proxies 10.0.0.0/8,192.0.2.1
//! ```
//!
//! Without `--clients` the server holds a demo account (roles User and Evaluator) with its
//! two default clients. Every credential generated at startup is printed on stdout, one JSON
//! object per line (`{"client": …, "api_key": …}` or
//! `{"client": …, "client_id": …, "client_secret": …}`); everything else goes to stderr, so
//! scripts can read stdout as it is. Ctrl-C stops the server gracefully.

mod app;

use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gis_auth::restrict::TrustedProxies;

/// A GIS web service guarded by gis-auth API keys.
#[derive(Debug, Parser)]
#[command(name = "gis_server")]
struct Flags {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,

    /// Load accounts and clients from this JSON file instead of the demo account.
    #[arg(long, value_name = "FILE")]
    clients: Option<PathBuf>,

    /// Proxies whose X-Forwarded-For header is believed: CIDR blocks or addresses.
    #[arg(long, value_name = "CIDR[,CIDR...]", value_parser = app::parse_trusted_proxies)]
    trusted_proxies: Option<TrustedProxies>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Flags::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gis_server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> Result<(), Box<dyn Error>> {
    let seeded = match &flags.clients {
        Some(path) => {
            let seeded = app::load_clients_file(path)?;
            eprintln!(
                "gis_server: loaded {} accounts and {} clients from {}",
                seeded.store.accounts().len(),
                seeded.store.client_count(),
                path.display()
            );
            seeded
        }
        None => {
            let seeded = app::demo_store()?;
            eprintln!(
                "gis_server: demo account `{}` (roles User, Evaluator) with its two default clients",
                app::DEMO_ACCOUNT
            );
            seeded
        }
    };
    let proxies = flags.trusted_proxies.unwrap_or_default();
    if !proxies.is_empty() {
        eprintln!("gis_server: X-Forwarded-For is believed from the trusted proxies given");
    }
    let options = app::Options {
        trusted_proxies: proxies,
        ..app::Options::default()
    };
    let router = app::router(seeded.store.clone(), options)?;
    let listener = tokio::net::TcpListener::bind(flags.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", flags.addr))?;
    let local = listener.local_addr()?;

    // The credentials go out once, after the port is ours, so none is printed for a server
    // that could not start.
    eprintln!(
        "gis_server: {} generated credentials follow on stdout, one JSON object per line",
        seeded.generated.len()
    );
    let mut stdout = std::io::stdout().lock();
    for generated in &seeded.generated {
        writeln!(stdout, "{}", app::credential_line(generated)?)
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot print the generated credentials: {e}"))?;
    }
    drop(stdout);
    drop(seeded);

    eprintln!("gis_server: listening on http://{local} (GET /health is public)");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(ctrl_c())
    .await?;
    eprintln!("gis_server: stopped");
    Ok(())
}

/// Resolves on Ctrl-C; if the handler cannot be installed, never (the process is then
/// stopped by other means).
async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("gis_server: cannot listen for Ctrl-C ({e}); stop the process to quit");
        std::future::pending::<()>().await;
    }
    eprintln!("gis_server: shutting down");
}
