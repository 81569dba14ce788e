//! `gis-auth lint`: the policy lint over every client of the store, and over every account
//! as a whole (a warning about an account names no client).

use std::sync::Arc;

use clap::Args;
use gis_auth::client::{AccountId, ClientId};
use gis_auth::policy::{LintContext, LintWarning, lint, lint_account};
use gis_auth::store::ManagedStore;
use serde_json::{Value, json};

use crate::output::{Failure, Output, Table, note};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Only this account's clients.
    #[arg(long)]
    account: Option<String>,

    /// The service has trusted proxies configured (its `X-Forwarded-For` is believed).
    #[arg(long)]
    trusted_proxies: bool,

    /// Requests reach the service with `X-Forwarded-For` or `Forwarded` headers (it runs
    /// behind a proxy).
    #[arg(long)]
    forwarded_headers: bool,

    /// Exit with 1 when there is any warning (for CI).
    #[arg(long)]
    strict: bool,
}

pub async fn run(
    args: LintArgs,
    store: &Arc<dyn ManagedStore>,
    out: &Output,
) -> Result<(), Failure> {
    let accounts = match &args.account {
        Some(id) => vec![crate::account::find(store, id).await?],
        None => store.list_accounts().await?,
    };
    let ctx = LintContext {
        trusted_proxies_configured: args.trusted_proxies,
        forwarded_headers_seen: args.forwarded_headers,
    };
    let mut checked = 0usize;
    // (client, account, warning); an account's own warnings name no client.
    let mut found: Vec<(Option<ClientId>, AccountId, LintWarning)> = Vec::new();
    for account in &accounts {
        let specs: Vec<_> = store
            .list_clients(&account.id)
            .await?
            .iter()
            .map(|client| (client.id().clone(), client.to_spec()))
            .collect();
        for (id, spec) in &specs {
            checked += 1;
            for warning in lint(spec, &ctx) {
                found.push((Some(id.clone()), account.id.clone(), warning));
            }
        }
        for warning in lint_account(account, specs.iter().map(|(_, spec)| spec)) {
            found.push((None, account.id.clone(), warning));
        }
    }
    if out.is_json() {
        let warnings: Vec<Value> = found
            .iter()
            .map(|(c, a, w)| {
                json!({
                    "client": c.as_ref().map(ClientId::as_str),
                    "account": a.as_str(),
                    "trap": w.trap.code(),
                    "field": w.field,
                    "value": w.value,
                    "message": w.message,
                })
            })
            .collect();
        out.json(&json!({"clients_checked": checked, "warnings": warnings}))?;
    } else {
        let mut table = Table::new(["CLIENT", "ACCOUNT", "TRAP", "WARNING"]);
        for (c, a, w) in &found {
            table.row(vec![
                c.as_ref()
                    .map_or_else(|| "-".to_owned(), ClientId::to_string),
                a.to_string(),
                w.trap.code().to_owned(),
                w.to_string(),
            ]);
        }
        out.table(
            &table,
            &format!("no warnings in {}", count(checked, "client")),
        )?;
    }
    if found.is_empty() {
        return Ok(());
    }
    let summary = format!(
        "{} in {}",
        count(found.len(), "warning"),
        count(checked, "client")
    );
    if args.strict {
        Err(Failure::new(format!("lint: {summary} (--strict)")))
    } else {
        note(&summary);
        Ok(())
    }
}

/// `1 client`, `2 clients`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
