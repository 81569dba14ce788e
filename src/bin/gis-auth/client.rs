//! `gis-auth client create|list|show|update|regenerate|deactivate|activate|delete`.

use std::rc::Rc;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use gis_auth::ConfigError;
use gis_auth::client::{AccountId, Client, ClientId, ClientKind, ClientSpec, Status};
use gis_auth::document::{ClientView, CreatedClientView};
use gis_auth::store::{ChangedBy, ManageError, ManagedStore, Precondition, Resolved};
use serde_json::json;

use crate::account::created_fields;
use crate::counter::{Counters, LastUse};
use crate::output::{
    Failure, Output, Table, client_fields, credential_fields, note, roles_text, time_text,
};
use crate::settings::{self, ClientFlags};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a client with a fresh credential, printed once.
    Create(CreateArgs),
    /// List the clients of one account, or of every account.
    List(ListArgs),
    /// Show a client's settings and its ETag (never its credential).
    Show(IdArg),
    /// Change a client's settings (id and kind cannot change).
    Update(UpdateArgs),
    /// Replace a client's credential; the new one is printed once.
    Regenerate(RegenerateArgs),
    /// Deactivate a client: its credential and tokens are refused from the next request.
    Deactivate(ChangeArgs),
    /// Activate a client.
    Activate(ChangeArgs),
    /// Delete a client: its credential and tokens stop at once.
    Delete(ChangeArgs),
}

/// The two kinds of client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// A browser client with a public API key (plugin APIs only).
    #[value(name = "javascript", alias = "JavaScript")]
    JavaScript,
    /// A server-side client with a client id and secret, exchanged for bearer tokens.
    #[value(
        name = "native",
        alias = "NativeConfidential",
        alias = "native-confidential"
    )]
    Native,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// The client's id.
    id: String,
}

#[derive(Debug, Args)]
#[command(mut_arg("name", |a| a.required(true)))]
pub struct CreateArgs {
    /// The account the client belongs to.
    #[arg(long)]
    account: String,

    /// `javascript` (an API key) or `native` (a client id and secret).
    #[arg(long, value_enum)]
    kind: KindArg,

    /// The client's id (generated when absent).
    #[arg(long)]
    id: Option<String>,

    #[command(flatten)]
    settings: ClientFlags,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this account's clients.
    #[arg(long)]
    account: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The client's id.
    id: String,

    /// Apply only if the client's ETag is still this (as `client show` printed it).
    #[arg(long, value_name = "ETAG")]
    if_match: Option<String>,

    /// Apply even if the account would be left with no client that can manage it.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    settings: ClientFlags,
}

#[derive(Debug, Args)]
pub struct RegenerateArgs {
    /// The client's id.
    id: String,

    /// Keep the current credential working this long too (`3600`, `30m`, `1h`, `2d`).
    #[arg(long, value_name = "DURATION")]
    grace: Option<String>,

    /// Apply only if the client's ETag is still this.
    #[arg(long, value_name = "ETAG")]
    if_match: Option<String>,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The client's id.
    id: String,

    /// Apply only if the client's ETag is still this.
    #[arg(long, value_name = "ETAG")]
    if_match: Option<String>,

    /// Apply even if the account would be left with no client that can manage it.
    #[arg(long)]
    force: bool,
}

pub async fn run(
    command: ClientCommand,
    store: &Arc<dyn ManagedStore>,
    counters: &Counters,
    out: &Output,
) -> Result<(), Failure> {
    let out = *out;
    match command {
        ClientCommand::Create(args) => create(args, store, out).await,
        ClientCommand::List(args) => list(args, store, counters, out).await,
        ClientCommand::Show(IdArg { id }) => {
            let found = find(store, &id).await?;
            let used = counters.last_used(&found.account.id).await?;
            show(&found, &used, out)
        }
        ClientCommand::Update(args) => {
            let patch = args.settings.patch()?;
            if patch.is_empty() {
                crate::usage_error("nothing to change: give at least one setting to change");
            }
            let guard = Guard::of("update", args.force);
            change(&args.id, args.if_match, guard, store, out, move |spec| {
                patch.apply_to(spec)
            })
            .await
        }
        ClientCommand::Regenerate(args) => regenerate(args, store, out).await,
        ClientCommand::Deactivate(args) => {
            let guard = Guard::of("deactivate", args.force);
            change(&args.id, args.if_match, guard, store, out, |spec| {
                spec.status = Status::Inactive;
                Ok(())
            })
            .await
        }
        ClientCommand::Activate(args) => {
            let guard = Guard::of("activate", args.force);
            change(&args.id, args.if_match, guard, store, out, |spec| {
                spec.status = Status::Active;
                Ok(())
            })
            .await
        }
        ClientCommand::Delete(args) => delete(args, store, out).await,
    }
}

/// The lock-out guard of one command: the admin API's, unless `--force` is given.
#[derive(Debug, Clone, Copy)]
struct Guard {
    /// The change, as the refusal names it (`update`, `deactivate`, `delete`).
    change: &'static str,
    force: bool,
}

impl Guard {
    fn of(change: &'static str, force: bool) -> Self {
        Guard { change, force }
    }

    /// The precondition of the change: `if_match`, and the lock-out guard as the admin API
    /// applies it (an operator's change comes from no address, so IP rules are not checked).
    fn precondition(self, if_match: Option<String>) -> Precondition {
        Precondition {
            if_match,
            keep_admin_access: !self.force,
            changed_by: ChangedBy::Operator,
            account: None,
        }
    }

    /// The store's refusal, naming the change it refuses when it is the guard's.
    fn refusal(self, id: &ClientId, e: ManageError) -> Failure {
        match e {
            ManageError::LockOut(why) => Failure::new(format!(
                "refusing to {} client `{id}`: {why} (or give --force to {} it anyway)",
                self.change, self.change
            )),
            e => e.into(),
        }
    }
}

fn precondition(if_match: Option<String>) -> Precondition {
    // A new credential never locks anyone out: the operator gets it in the answer.
    Precondition {
        if_match,
        ..Precondition::default()
    }
}

/// The client with this id and its account, or a failure naming it.
pub async fn find(store: &Arc<dyn ManagedStore>, id: &str) -> Result<Resolved, Failure> {
    let id = ClientId::new(id)?;
    store
        .resolve_id(&id)
        .await?
        .ok_or_else(|| ManageError::unknown_client(&id).into())
}

async fn create(
    args: CreateArgs,
    store: &Arc<dyn ManagedStore>,
    out: Output,
) -> Result<(), Failure> {
    let account = AccountId::new(&args.account)?;
    let kind = match args.kind {
        KindArg::JavaScript => ClientKind::JavaScript,
        KindArg::Native => ClientKind::NativeConfidential,
    };
    let patch = args.settings.patch()?;
    let mut spec = ClientSpec::new(kind, "");
    if let Some(id) = &args.id {
        spec = spec.id(ClientId::new(id)?);
    }
    patch.apply_to(&mut spec)?;
    let created = store.create_client(&account, spec).await?;
    let account = find_account(store, &account).await?;
    if out.is_json() {
        out.json(&CreatedClientView::of(
            &created.client,
            &account,
            &created.credential,
        ))?;
    } else {
        out.fields(&created_fields(&created))?;
    }
    note("the credential above is shown this once: keep it now");
    Ok(())
}

async fn find_account(
    store: &Arc<dyn ManagedStore>,
    id: &AccountId,
) -> Result<Arc<gis_auth::client::Account>, Failure> {
    crate::account::find(store, id.as_str()).await
}

async fn list(
    args: ListArgs,
    store: &Arc<dyn ManagedStore>,
    counters: &Counters,
    out: Output,
) -> Result<(), Failure> {
    let accounts = match &args.account {
        Some(id) => vec![crate::account::find(store, id).await?],
        None => store.list_accounts().await?,
    };
    let mut rows = Vec::new();
    for account in &accounts {
        let used = Rc::new(counters.last_used(&account.id).await?);
        for client in store.list_clients(&account.id).await? {
            rows.push((client, account.clone(), used.clone()));
        }
    }
    if out.is_json() {
        let clients: Vec<ClientView> = rows
            .iter()
            .map(|(c, a, used)| ClientView::of(c, a).last_used(used.of(c.id())))
            .collect();
        return out.json(&json!({ "clients": clients }));
    }
    let mut table = Table::new([
        "ID",
        "ACCOUNT",
        "KIND",
        "NAME",
        "STATUS",
        "ROLES",
        "EXPIRES",
        "LAST USED",
    ]);
    for (c, a, used) in &rows {
        table.row(vec![
            c.id().to_string(),
            a.id.to_string(),
            c.kind().to_string(),
            c.name().to_owned(),
            c.status().to_string(),
            roles_text(&c.effective_roles(a)),
            time_text(c.expires_at()),
            used.text(c.id()),
        ]);
    }
    out.table(&table, "no clients")
}

/// `client show`: the client with its last use.
fn show(found: &Resolved, used: &LastUse, out: Output) -> Result<(), Failure> {
    let (client, account) = (&found.client, &found.account);
    if out.is_json() {
        out.json(&ClientView::of(client, account).last_used(used.of(client.id())))
    } else {
        let mut fields = client_fields(client, account);
        fields.push(("last_used", used.text(client.id())));
        out.fields(&fields)
    }
}

fn print_client(client: &Client, found: &Resolved, out: Output) -> Result<(), Failure> {
    if out.is_json() {
        out.json(&ClientView::of(client, &found.account))
    } else {
        out.fields(&client_fields(client, &found.account))
    }
}

async fn change(
    id: &str,
    if_match: Option<String>,
    guard: Guard,
    store: &Arc<dyn ManagedStore>,
    out: Output,
    edit: impl FnOnce(&mut ClientSpec) -> Result<(), ConfigError> + Send + 'static,
) -> Result<(), Failure> {
    let id = ClientId::new(id)?;
    let client = store
        .update_client(&id, &guard.precondition(if_match), Box::new(edit))
        .await
        .map_err(|e| guard.refusal(&id, e))?;
    let found = find(store, id.as_str()).await?;
    print_client(&client, &found, out)
}

async fn regenerate(
    args: RegenerateArgs,
    store: &Arc<dyn ManagedStore>,
    out: Output,
) -> Result<(), Failure> {
    let id = ClientId::new(&args.id)?;
    let grace = args.grace.as_deref().map(settings::grace).transpose()?;
    let (client, credential) = store
        .regenerate_client(&id, &precondition(args.if_match), grace)
        .await?;
    let account = find_account(store, client.account_id()).await?;
    if out.is_json() {
        out.json(&CreatedClientView::of(&client, &account, &credential))?;
    } else {
        let mut fields = vec![("client", client.id().to_string())];
        fields.extend(credential_fields(&client, &credential));
        if let Some((_, until)) = client.credentials().previous() {
            fields.push(("previous_expires_at", time_text(Some(*until))));
        }
        out.fields(&fields)?;
    }
    note("the new credential above is shown this once: keep it now");
    Ok(())
}

async fn delete(
    args: ChangeArgs,
    store: &Arc<dyn ManagedStore>,
    out: Output,
) -> Result<(), Failure> {
    let found = find(store, &args.id).await?;
    let guard = Guard::of("delete", args.force);
    let client = store
        .delete_client(found.client.id(), &guard.precondition(args.if_match))
        .await
        .map_err(|e| guard.refusal(found.client.id(), e))?;
    if out.is_json() {
        out.json(&json!({ "deleted": ClientView::of(&client, &found.account) }))
    } else {
        out.line(&format!(
            "deleted client `{}` of account `{}`",
            client.id(),
            client.account_id()
        ))
    }
}
