//! `gis-auth`: accounts and clients for operators, on a clients file (and, with the
//! `postgres` feature, a PostgreSQL store), without a running server.
//!
//! ```text
//! gis-auth --store clients.json account create acme --roles User,Evaluator --name "Acme Maps"
//! gis-auth --store clients.json client create --account acme --kind javascript \
//!     --name "Store locator" --allowed-origins 'https://*.acme.test'
//! gis-auth --store clients.json client list --json
//! gis-auth --store clients.json audit --account acme --from 2026-06-01
//! gis-auth --store clients.json --redis redis://127.0.0.1 recommend --client acme-web
//! gis-auth --store clients.json explain --client acme-web --path /tiles/1/2/3.png \
//!     --origin https://maps.acme.test
//! ```
//!
//! Results go to stdout (tables, or one JSON document with `--json`); notes and errors go
//! to stderr. Exit codes: 0 success, 1 refused or invalid input (the message names the
//! field), 2 usage error. Credentials appear in the output of `account create`,
//! `client create` and `client regenerate` only, once.

mod account;
mod audit;
mod client;
mod counter;
mod explain;
mod lint;
mod output;
mod recommend;
mod settings;
mod store;
mod usage;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::output::Failure;

/// Manage the accounts and clients of a gis-auth store.
#[derive(Debug, Parser)]
#[command(name = "gis-auth", version, propagate_version = true)]
struct Cli {
    /// The store: a clients file (JSON) or a `postgres://` URL.
    #[arg(long, global = true, value_name = "PATH|URL")]
    store: Option<String>,

    /// Print JSON (the clients file's field names) instead of tables.
    #[arg(long, global = true)]
    json: bool,

    /// Read the usage counters the servers share in Redis (needs the `redis` feature): for
    /// `usage`, `recommend` and the clients' `last_used_at`.
    #[arg(long, global = true, value_name = "URL")]
    redis: Option<String>,

    /// The key prefix the servers' Redis counters use (`gis-auth:` by default).
    #[arg(long, global = true, value_name = "PREFIX")]
    redis_prefix: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Accounts: the owners of clients and the upper bound of their roles.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Clients: JavaScript (API key) and NativeConfidential (client id and secret).
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// An account's usage statistics and quota.
    Usage(usage::UsageArgs),
    /// The audit log: who changed which account or client, when, and with what outcome.
    Audit(audit::AuditArgs),
    /// Propose a client's `allowed_origins` and `allowed_ips` from where its refused and
    /// report-only requests came from, to try in shadow mode first (needs `--redis`).
    Recommend(recommend::RecommendArgs),
    /// Warn about client settings that rarely do what was meant, over the whole store.
    Lint(lint::LintArgs),
    /// Decide a described request for a client against the standard GIS routes, and say
    /// which rule decided.
    Explain(explain::ExplainArgs),
    /// Create or upgrade the tables of a PostgreSQL store (`--store postgres://…`); safe to
    /// run again.
    #[cfg(feature = "postgres")]
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(store) = cli.store.clone() else {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the store is required: --store <PATH|URL>",
            )
            .exit()
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gis-auth: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = output::Output::new(cli.json);
    let shared = (cli.redis, cli.redis_prefix);
    match runtime.block_on(run(cli.command, &store, shared, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("gis-auth: {failure}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    command: Command,
    spec: &str,
    (redis, redis_prefix): (Option<String>, Option<String>),
    out: &output::Output,
) -> Result<(), Failure> {
    match command {
        // Only creating an account may create a clients file, and only once its flags are
        // valid: a mistyped path elsewhere is an error, not an empty store.
        Command::Account(account::AccountCommand::Create(args)) => {
            let account = account::new_account(args)?;
            let store = store::open(spec, true).await?;
            account::create(account, &store, *out).await
        }
        #[cfg(feature = "postgres")]
        Command::Migrate => store::migrate(spec, *out).await,
        command => {
            let store = store::open(spec, false).await?;
            let counters =
                counter::Counters::open(redis.as_deref(), redis_prefix.as_deref()).await?;
            match command {
                Command::Account(c) => account::run(c, &store, &counters, out).await,
                Command::Client(c) => client::run(c, &store, &counters, out).await,
                Command::Usage(args) => usage::run(args, &store, &counters, out).await,
                Command::Recommend(args) => recommend::run(args, &store, &counters, out).await,
                Command::Audit(args) => audit::run(args, &store, out).await,
                Command::Lint(args) => lint::run(args, &store, out).await,
                Command::Explain(args) => explain::run(args, &store, out).await,
                #[cfg(feature = "postgres")]
                Command::Migrate => store::migrate(spec, *out).await,
            }
        }
    }
}

/// Ends the program with a usage error (exit code 2), as clap does for bad flags.
pub fn usage_error(message: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::MissingRequiredArgument, message)
        .exit()
}
