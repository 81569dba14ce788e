//! `gis-auth audit`: the audit log of the store, every account's or one's, for a range of
//! time (the operator's view; an account holder reads its own at `GET /account/audit`).

use std::sync::Arc;

use clap::Args;
use gis_auth::ConfigError;
use gis_auth::client::AccountId;
use gis_auth::document::AuditEntry;
use gis_auth::store::{AuditQuery, MAX_AUDIT_PAGE, ManagedStore};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::output::{Failure, Output, Table, list_text, note};

/// The range read without `--from`, in days before `--to`.
const DEFAULT_DAYS: i64 = 7;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this account's entries (every account's when absent).
    #[arg(long)]
    account: Option<String>,

    /// The first instant (RFC 3339) or UTC day (YYYY-MM-DD) included; 7 days before `--to`
    /// when absent.
    #[arg(long, value_name = "TIME|DATE")]
    from: Option<String>,

    /// The end: an instant (RFC 3339, excluded) or a UTC day (YYYY-MM-DD, included); the
    /// end of today when absent.
    #[arg(long, value_name = "TIME|DATE")]
    to: Option<String>,

    /// At most this many entries, oldest first (1 to 1000; 100 by default).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// `text` as an instant: RFC 3339, or a day's first instant (the next day's when
/// `end_of_day`: a day given as the end is included whole).
fn instant(
    field: &'static str,
    text: &str,
    end_of_day: bool,
) -> Result<OffsetDateTime, ConfigError> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let bad = || ConfigError::InvalidField {
        field,
        value: text.to_owned(),
        reason: "it is an RFC 3339 time (2026-06-01T12:00:00Z) or a date (2026-06-01)",
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, format).map_err(|_| bad())?;
    let date = if end_of_day {
        date.next_day().ok_or_else(bad)?
    } else {
        date
    };
    Ok(date.midnight().assume_utc())
}

fn query(args: &AuditArgs, now: OffsetDateTime) -> Result<AuditQuery, ConfigError> {
    if !(1..=MAX_AUDIT_PAGE).contains(&args.limit) {
        return Err(ConfigError::InvalidField {
            field: "limit",
            value: args.limit.to_string(),
            reason: "it is from 1 to 1000",
        });
    }
    let to = match &args.to {
        Some(t) => instant("to", t, true)?,
        None => gis_auth::policy::next_utc_midnight(now),
    };
    let from = match &args.from {
        Some(f) => instant("from", f, false)?,
        None => to - Duration::days(DEFAULT_DAYS),
    };
    if from >= to {
        return Err(ConfigError::InvalidField {
            field: "from",
            value: args.from.clone().unwrap_or_default(),
            reason: "it is not before `to`",
        });
    }
    let mut query = AuditQuery::new(from, to).limit(args.limit + 1);
    if let Some(account) = &args.account {
        query = query.account(AccountId::new(account.as_str())?);
    }
    Ok(query)
}

pub async fn run(
    args: AuditArgs,
    store: &Arc<dyn ManagedStore>,
    out: &Output,
) -> Result<(), Failure> {
    let query = query(&args, OffsetDateTime::now_utc())?;
    let mut entries = store.audit(&query).await?;
    let more = entries.len() > args.limit;
    entries.truncate(args.limit);
    let time = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
    if out.is_json() {
        return out.json(&json!({
            "from": time(query.from),
            "to": time(query.to),
            "entries": entries,
            "more": more,
        }));
    }
    out.table(&audit_table(&entries), "no changes in this range")?;
    if more {
        note(&format!(
            "more entries follow: ask again with --from {}",
            entries.last().map(|e| time(e.at)).unwrap_or_default()
        ));
    }
    Ok(())
}

fn audit_table(entries: &[AuditEntry]) -> Table {
    let mut table = Table::new([
        "AT", "BY", "ACCOUNT", "CLIENT", "ACTION", "FIELDS", "OUTCOME",
    ]);
    for e in entries {
        table.row(vec![
            e.at.format(&Rfc3339).unwrap_or_default(),
            e.by.clone(),
            e.account_id.clone().unwrap_or_else(|| "-".into()),
            e.client_id.clone().unwrap_or_else(|| "-".into()),
            e.action.as_str().to_owned(),
            list_text(e.fields.iter().cloned()),
            e.outcome.as_str().to_owned(),
        ]);
    }
    table
}
