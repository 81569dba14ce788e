//! `gis-auth account create|list|show|update|deactivate|activate`.

use std::sync::Arc;

use clap::{Args, Subcommand};
use gis_auth::client::{Account, AccountId, Contact, Plan, Status};
use gis_auth::document::{AccountDocument, ClientView, CreatedClientView};
use gis_auth::store::{CreatedClient, ManageError, ManagedStore};
use serde_json::json;

use crate::counter::Counters;
use crate::output::{
    Failure, Output, Table, account_fields, credential_fields, note, roles_text, time_text,
    unlimited_or,
};
use crate::settings::{self, ContactFlags, PlanFlags};

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account and its two default clients (one JavaScript, one
    /// NativeConfidential, with all of its roles); their credentials are printed once.
    Create(CreateArgs),
    /// List every account.
    List,
    /// Show an account and its clients.
    Show(IdArg),
    /// Change an account's name, roles, plan (quotas, rate limit, client cap, items,
    /// expiry) or contact fields.
    Update(UpdateArgs),
    /// Deactivate an account: all of its clients are refused from their next request.
    Deactivate(IdArg),
    /// Activate an account.
    Activate(IdArg),
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// The account's id.
    id: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The account's id: letters, digits, `.`, `_` and `-`.
    id: String,

    /// The display name (the id when absent).
    #[arg(long)]
    name: Option<String>,

    /// Its roles: `User` for the admin API, `Evaluator` or `Subscriber` for the map
    /// services, or names of your own.
    #[arg(long, value_delimiter = ',', value_name = "ROLE,…", required = true)]
    roles: Vec<String>,

    /// `active` (the default) or `inactive`.
    #[arg(long, value_parser = settings::status())]
    status: Option<Status>,

    #[command(flatten)]
    plan: PlanFlags,

    #[command(flatten)]
    contact: ContactFlags,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The account's id.
    id: String,

    /// The display name.
    #[arg(long)]
    name: Option<String>,

    /// Its roles (clients lose roles it no longer holds from their next request).
    #[arg(long, value_delimiter = ',', value_name = "ROLE,…")]
    roles: Option<Vec<String>>,

    #[command(flatten)]
    plan: PlanFlags,

    #[command(flatten)]
    contact: ContactFlags,
}

pub async fn run(
    command: AccountCommand,
    store: &Arc<dyn ManagedStore>,
    counters: &Counters,
    out: &Output,
) -> Result<(), Failure> {
    match command {
        AccountCommand::Create(args) => create(new_account(args)?, store, *out).await,
        AccountCommand::List => list(store, *out).await,
        AccountCommand::Show(IdArg { id }) => show(&id, store, counters, *out).await,
        AccountCommand::Update(args) => update(args, store, *out).await,
        AccountCommand::Deactivate(IdArg { id }) => {
            set_status(&id, Status::Inactive, store, *out).await
        }
        AccountCommand::Activate(IdArg { id }) => {
            set_status(&id, Status::Active, store, *out).await
        }
    }
}

/// The account `account create` describes, checked without the store.
pub fn new_account(args: CreateArgs) -> Result<Account, Failure> {
    let id = AccountId::new(&args.id)?;
    let roles = settings::roles(&args.roles)?;
    let mut plan = Plan::default();
    args.plan.apply(&mut plan)?;
    let mut contact = Contact::default();
    args.contact.apply(&mut contact)?;
    let name = args.name.unwrap_or_else(|| id.to_string());
    Ok(Account::new(id, name, roles)?
        .with_status(args.status.unwrap_or_default())
        .with_plan(plan)
        .with_contact(contact))
}

/// Creates `account` with its two default clients and prints their credentials, once.
pub async fn create(
    account: Account,
    store: &Arc<dyn ManagedStore>,
    out: Output,
) -> Result<(), Failure> {
    let created = store.create_account(account).await?;
    let defaults = [&created.javascript, &created.native];
    if out.is_json() {
        let clients: Vec<CreatedClientView> = defaults
            .iter()
            .map(|c| CreatedClientView::of(&c.client, &created.account, &c.credential))
            .collect();
        out.json(&json!({"account": AccountDocument::of(&created.account), "clients": clients}))?;
    } else {
        out.fields(&account_fields(&created.account))?;
        for c in defaults {
            out.line("")?;
            out.fields(&created_fields(c))?;
        }
    }
    note("the two default clients' credentials above are shown this once: keep them now");
    Ok(())
}

/// A created client's id, kind and credential, for the terminal.
pub fn created_fields(created: &CreatedClient) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("client", created.client.id().to_string()),
        ("kind", created.client.kind().to_string()),
    ];
    fields.extend(credential_fields(&created.client, &created.credential));
    fields
}

async fn list(store: &Arc<dyn ManagedStore>, out: Output) -> Result<(), Failure> {
    let accounts = store.list_accounts().await?;
    if out.is_json() {
        let accounts: Vec<AccountDocument> =
            accounts.iter().map(|a| AccountDocument::of(a)).collect();
        return out.json(&json!({ "accounts": accounts }));
    }
    let mut table = Table::new([
        "ID",
        "NAME",
        "ROLES",
        "STATUS",
        "DAILY QUOTA",
        "MONTHLY QUOTA",
        "CLIENTS",
        "EXPIRES",
    ]);
    for a in &accounts {
        let clients = store.list_clients(&a.id).await?.len();
        table.row(vec![
            a.id.to_string(),
            a.name.clone(),
            roles_text(&a.roles),
            a.status.to_string(),
            unlimited_or(a.plan.daily_quota),
            unlimited_or(a.plan.monthly_quota),
            format!("{clients} of {}", unlimited_or(a.plan.max_clients)),
            a.plan
                .expires_at
                .map_or_else(|| "never".to_owned(), |t| time_text(Some(t))),
        ]);
    }
    out.table(&table, "no accounts")
}

/// The account with this id, or a failure naming it.
pub async fn find(store: &Arc<dyn ManagedStore>, id: &str) -> Result<Arc<Account>, Failure> {
    let id = AccountId::new(id)?;
    store
        .account(&id)
        .await?
        .ok_or_else(|| ManageError::unknown_account(&id).into())
}

async fn show(
    id: &str,
    store: &Arc<dyn ManagedStore>,
    counters: &Counters,
    out: Output,
) -> Result<(), Failure> {
    let account = find(store, id).await?;
    let clients = store.list_clients(&account.id).await?;
    let used = counters.last_used(&account.id).await?;
    if out.is_json() {
        let clients: Vec<ClientView> = clients
            .iter()
            .map(|c| ClientView::of(c, &account).last_used(used.of(c.id())))
            .collect();
        return out.json(&json!({"account": AccountDocument::of(&account), "clients": clients}));
    }
    out.fields(&account_fields(&account))?;
    out.line("")?;
    let mut table = Table::new([
        "CLIENT",
        "KIND",
        "NAME",
        "STATUS",
        "ROLES",
        "EXPIRES",
        "LAST USED",
    ]);
    for c in &clients {
        table.row(vec![
            c.id().to_string(),
            c.kind().to_string(),
            c.name().to_owned(),
            c.status().to_string(),
            roles_text(&c.effective_roles(&account)),
            time_text(c.expires_at()),
            used.text(c.id()),
        ]);
    }
    out.table(&table, "no clients")
}

async fn update(
    args: UpdateArgs,
    store: &Arc<dyn ManagedStore>,
    out: Output,
) -> Result<(), Failure> {
    if args.name.is_none()
        && args.roles.is_none()
        && args.plan.is_empty()
        && args.contact.is_empty()
    {
        crate::usage_error(
            "nothing to change: give --name, --roles, a plan flag (--daily-quota, \
             --monthly-quota, --rate-limit, --max-clients, --items, --all-items, --expires-at) \
             or a --contact-* flag",
        );
    }
    let id = AccountId::new(&args.id)?;
    let roles = args.roles.as_deref().map(settings::roles).transpose()?;
    // Checked before the store is opened for the change.
    args.plan.apply(&mut Plan::default())?;
    let plan = args.plan;
    let name = args.name;
    let contact = args.contact;
    let account = store
        .update_account(
            &id,
            Box::new(move |account| {
                if let Some(name) = name {
                    account.name = name;
                }
                if let Some(roles) = roles {
                    account.roles = roles;
                }
                plan.apply(&mut account.plan)?;
                contact.apply(&mut account.contact)
            }),
        )
        .await?;
    print_account(&account, out)
}

async fn set_status(
    id: &str,
    status: Status,
    store: &Arc<dyn ManagedStore>,
    out: Output,
) -> Result<(), Failure> {
    let id = AccountId::new(id)?;
    let account = store
        .update_account(
            &id,
            Box::new(move |account| {
                account.status = status;
                Ok(())
            }),
        )
        .await?;
    print_account(&account, out)
}

fn print_account(account: &Account, out: Output) -> Result<(), Failure> {
    if out.is_json() {
        out.json(&AccountDocument::of(account))
    } else {
        out.fields(&account_fields(account))
    }
}
