//! A small GIS web service guarded by gis-auth: tiles, imagery, elevation, geocoding, WMS
//! and an account profile behind API keys and bearer tokens.
//!
//! ```text
//! cargo run --example gis_server
//! cargo run --example gis_server -- --addr 127.0.0.1:9000 --clients clients.json \
//!     --trusted-proxies 10.0.0.0/8,192.0.2.1
//! cargo run --release --example gis_server -- --unguarded-bench-addr 127.0.0.1:18081
//! cargo run --features postgres,redis --example gis_server -- --addr 127.0.0.1:8081 \
//!     --store postgres://postgres@127.0.0.1/test --redis redis://127.0.0.1:6379 --quota-leases
//! ```
//!
//! With `--store` (a clients file, or PostgreSQL) and `--redis`, several instances share
//! their clients, quotas and rate limits, and with one `--signing-key FILE` (or
//! `GIS_TOKEN_SECRET` in the environment) they accept each other's access tokens: see
//! `shared.rs`.
//!
//! Access tokens are signed with a fresh Ed25519 key at each start unless `--signing-key`
//! names an Ed25519 or P-256 private key (PKCS#8 PEM). Other services verify them with the
//! keys at `GET /.well-known/jwks.json`; `GET /.well-known/oauth-authorization-server` is
//! the RFC 8414 metadata. Tokens carry `iss` `--issuer` (by default `http://<addr>`) and
//! `aud` `--audience` (by default the issuer).
//!
//! Without `--clients` the server holds a demo account (roles User and Evaluator) with its
//! two default clients. Every credential generated at startup is printed on stdout, one JSON
//! object per line (`{"client": …, "api_key": …}` or
//! `{"client": …, "client_id": …, "client_secret": …}`); everything else goes to stderr, so
//! scripts can read stdout as it is. Ctrl-C stops the server gracefully.
//!
//! The account console, a web page over the admin API, is at `/console/`: sign in there with
//! a NativeConfidential client's printed `client_id` and `client_secret`.
//! With `--webhook URL --webhook-secret-file FILE` every event (quota at 80 % and 100 %, a
//! client or account expiring within 7 days, a credential regenerated, a client or account
//! deactivated) is POSTed to `URL`, signed with the file's secret (README, "Audit log and
//! events").
//!
//! Logs go to stderr, filtered by `RUST_LOG` (`info` by default): one line per refused
//! request (client, API, rule, status) and one per report-only finding; never a key,
//! secret or token (see `logs.rs`).

mod app;
mod bench;
mod logs;
mod shared;

use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use gis_auth::events::EventSink;
use gis_auth::restrict::TrustedProxies;
use gis_auth::signed::{TileUrlKey, TileUrlSigner};
use gis_auth::store::InMemoryStore;
use std::time::Duration;

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

    /// Also serve scripts/load.sh's baselines on this address: this router with the auth
    /// layer taken out, and behind the floor of an API-key check (see bench.rs). Never in
    /// production: nothing there needs a key.
    #[arg(long, value_name = "ADDR")]
    unguarded_bench_addr: Option<SocketAddr>,

    /// Keep clients in this clients file (written back, reloaded on change) or in
    /// PostgreSQL (`postgres://…`, feature `postgres`), shared with other instances.
    #[arg(long, value_name = "FILE|postgres://…", conflicts_with = "clients")]
    store: Option<String>,

    /// Count quotas and enforce rate limits in Redis (`redis://…`, feature `redis`), shared
    /// with other instances.
    #[arg(long, value_name = "redis://…")]
    redis: Option<String>,

    /// With `--redis`: take blocks of each quota from Redis and charge them in memory
    /// (`LeasedUsageCounter`), instead of one Redis call per request; the blocks held go
    /// back when the server stops.
    #[arg(long, requires = "redis")]
    quota_leases: bool,

    /// The issuer identifier: the `iss` of every access token and the base of the URLs in
    /// the server metadata (by default `http://<the address listened on>`).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,

    /// The `aud` of every access token (by default the issuer).
    #[arg(long, value_name = "URI")]
    audience: Option<String>,

    /// Sign access tokens with this Ed25519 or P-256 private key (PKCS#8 PEM), shared by
    /// every instance, instead of a fresh Ed25519 key.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,

    /// The key id of the signing key (by default its RFC 7638 thumbprint).
    #[arg(long, value_name = "KID")]
    signing_key_id: Option<String>,

    /// Round the expiry of signed tile URLs up to a multiple of this many seconds, so the
    /// URLs minted within one bucket are one URL (and one cache entry).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    tile_url_bucket_seconds: u64,

    /// POST events (quota at 80 % and 100 %, expiry within 7 days, a credential
    /// regenerated, a client or an account deactivated) to this `http://` URL, signed with
    /// the secret of `--webhook-secret-file`.
    #[arg(long, value_name = "URL", requires = "webhook_secret_file")]
    webhook: Option<String>,

    /// The file holding the webhook's signing secret (its text, surrounding whitespace
    /// removed).
    #[arg(long, value_name = "FILE", requires = "webhook")]
    webhook_secret_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    if let Err(e) = logs::install(std::env::var("RUST_LOG").ok().as_deref()) {
        eprintln!("gis_server: {e}");
        return ExitCode::FAILURE;
    }
    match run(flags).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gis_server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> Result<(), Box<dyn Error>> {
    let events = webhook(&flags)?;
    // Kept to the end: it holds the change listener or the file watch.
    let mut shared_store = match &flags.store {
        Some(target) => Some(shared::open_store(target, events.clone()).await?),
        None => None,
    };
    let memory = || match &events {
        Some(sink) => InMemoryStore::new().event_sink(sink.clone()),
        None => InMemoryStore::new(),
    };
    let seeded = match (&mut shared_store, &flags.clients) {
        (Some(opened), _) => {
            eprintln!("gis_server: clients in {}", opened.description);
            app::Seeded {
                store: Arc::default(),
                generated: std::mem::take(&mut opened.generated),
            }
        }
        (None, Some(path)) => {
            let seeded = app::load_clients_file_in(path, memory())?;
            eprintln!(
                "gis_server: loaded {} accounts and {} clients from {}",
                seeded.store.accounts().len(),
                seeded.store.client_count(),
                path.display()
            );
            seeded
        }
        (None, None) => {
            let seeded = app::demo_store_in(memory())?;
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
    let (usage, rate_limiter, release) = match &flags.redis {
        Some(url) => {
            let limits = shared::open_redis(url, flags.quota_leases).await?;
            eprintln!(
                "gis_server: quotas{} and rate limits in Redis, shared with other instances",
                if flags.quota_leases {
                    " (in leased blocks)"
                } else {
                    ""
                }
            );
            (
                Some(limits.usage),
                Some(limits.rate_limiter),
                limits.release,
            )
        }
        None => (None, None, None),
    };
    let key = app::KeySource {
        file: flags.signing_key.as_deref(),
        kid: flags.signing_key_id.as_deref(),
        secret: std::env::var_os(app::TOKEN_SECRET_VAR),
    }
    .signing_key()
    .map_err(|e| -> Box<dyn Error> { e })?;
    if key.public_jwk().is_none() {
        eprintln!(
            "gis_server: tokens are signed with {} (HS256): only instances holding it can verify them",
            app::TOKEN_SECRET_VAR
        );
    }
    // Bound before the issuer is made: the default issuer URL is the address listened on.
    let listener = tokio::net::TcpListener::bind(flags.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", flags.addr))?;
    let local = listener.local_addr()?;
    let issuer_url = flags.issuer.unwrap_or_else(|| format!("http://{local}"));
    let audience = flags.audience.unwrap_or_else(|| issuer_url.clone());
    let token_issuer = app::token_issuer(key, &issuer_url, &audience)?;
    eprintln!(
        "gis_server: access tokens signed with key `{}`, issuer {issuer_url}",
        token_issuer.current_kid()
    );
    let signer = TileUrlSigner::new(TileUrlKey::generate(app::GENERATED_TILE_KID)?)
        .bucket(Duration::from_secs(flags.tile_url_bucket_seconds))?;
    let options = app::Options {
        tile_url_signer: Some(signer),
        trusted_proxies: proxies,
        store: shared_store.as_ref().map(|opened| opened.store.clone()),
        revocations: shared_store
            .as_ref()
            .and_then(|opened| opened.revocations.clone()),
        token_issuer: Some(token_issuer),
        usage,
        rate_limiter,
        events,
        ..app::Options::default()
    };
    let router = app::router(seeded.store.clone(), options)?;
    if let Some(addr) = flags.unguarded_bench_addr {
        let baselines = bench::baselines(&seeded)?;
        let bench = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        eprintln!(
            "gis_server: http://{}/ serves every route WITHOUT access control (benchmarks only)",
            bench.local_addr()?
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(bench, baselines).await {
                eprintln!("gis_server: the unguarded benchmark listener stopped: {e}");
            }
        });
    }
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
    eprintln!("gis_server: the account console is at http://{local}/console/");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(ctrl_c())
    .await?;
    if let Some(release) = release {
        // The server has drained: what this instance holds of the quotas goes back.
        release
            .await
            .map_err(|e| format!("cannot give back the quota blocks held: {e}"))?;
        eprintln!("gis_server: quota blocks given back");
    }
    eprintln!("gis_server: stopped");
    Ok(())
}

/// The sink of `--webhook` and `--webhook-secret-file`, if given.
fn webhook(flags: &Flags) -> Result<Option<Arc<dyn EventSink>>, Box<dyn Error>> {
    let (Some(url), Some(file)) = (&flags.webhook, &flags.webhook_secret_file) else {
        return Ok(None);
    };
    let sink = app::webhook_sink(url, file)?;
    eprintln!("gis_server: events are posted to the webhook, signed");
    Ok(Some(sink))
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
