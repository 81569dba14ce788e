//! `gis-auth usage`: an account's usage statistics and quota.
//!
//! Usage is counted where requests are served, by the layer's `UsageCounter`. A server on
//! the default in-memory counter keeps its counts in its own process, out of this tool's
//! reach: then this command reports the account's quota and says so, and the counts are at
//! the server's `GET /account/usage`. Counters shared through Redis (`--redis URL`, with
//! the `redis` feature) are read directly: each client's day by API, and the origins and
//! networks its refused or report-only requests came from.

use std::sync::Arc;

use clap::Args;
use gis_auth::ConfigError;
use gis_auth::client::Account;
use gis_auth::limits::DailyUsage;
use gis_auth::policy::transactions;
use gis_auth::store::ManagedStore;
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};

use crate::counter::Counters;
use crate::output::{Failure, Output, Table, list_text, note};

/// The longest range one report covers.
const MAX_DAYS: i64 = 366;

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// The account.
    #[arg(long)]
    account: String,

    /// The first UTC day (YYYY-MM-DD; today when absent).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,

    /// The last UTC day (YYYY-MM-DD; today when absent).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
}

/// What a report covers.
#[derive(Debug, Clone, Copy)]
struct Range {
    from: Date,
    to: Date,
    today: Date,
}

pub async fn run(
    args: UsageArgs,
    store: &Arc<dyn ManagedStore>,
    counters: &Counters,
    out: &Output,
) -> Result<(), Failure> {
    let today = OffsetDateTime::now_utc().date();
    let range = range(args.from.as_deref(), args.to.as_deref(), today)?;
    let account = crate::account::find(store, &args.account).await?;
    let report = match counters.shared() {
        Some((_, counter)) => Some(Report {
            rows: counter.usage(&account.id, range.from, range.to).await?,
            used_today: counter.used(&account.id, range.today).await?,
        }),
        None => None,
    };
    let source_name = counters.shared().map(|(name, _)| name);
    if out.is_json() {
        out.json(&usage_json(&account, range, source_name, report.as_ref()))
    } else {
        out.fields(&usage_fields(&account, range, report.as_ref()))?;
        match &report {
            Some(report) => {
                out.line("")?;
                out.table(&usage_table(&report.rows), "no requests in this range")?;
                let seen = seen_table(&report.rows);
                if !seen.is_empty() {
                    out.line("")?;
                    out.line("Where refused or report-only requests came from:")?;
                    out.table(&seen, "")?;
                }
                Ok(())
            }
            None => {
                note(NO_SOURCE);
                Ok(())
            }
        }
    }
}

const NO_SOURCE: &str = "no usage counts here: they are kept where requests are served (in \
    each server's memory by default; see its GET /account/usage), or in Redis when the \
    servers share counters (pass --redis URL)";

struct Report {
    rows: Vec<DailyUsage>,
    used_today: u64,
}

fn date(field: &'static str, text: &str) -> Result<Date, ConfigError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, format).map_err(|_| ConfigError::InvalidField {
        field,
        value: text.to_owned(),
        reason: "it is a date as YYYY-MM-DD",
    })
}

fn range(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Range, ConfigError> {
    let from_day = from.map(|t| date("from", t)).transpose()?.unwrap_or(today);
    let to_day = to.map(|t| date("to", t)).transpose()?.unwrap_or(today);
    if from_day > to_day {
        return Err(ConfigError::InvalidField {
            field: "from",
            value: from.unwrap_or_default().to_owned(),
            reason: "it is after `to`",
        });
    }
    if (to_day - from_day).whole_days() >= MAX_DAYS {
        return Err(ConfigError::InvalidField {
            field: "to",
            value: to.unwrap_or_default().to_owned(),
            reason: "a report covers at most 366 days",
        });
    }
    Ok(Range {
        from: from_day,
        to: to_day,
        today,
    })
}

fn day_text(d: Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    d.format(format).unwrap_or_default()
}

fn usage_json(
    account: &Account,
    range: Range,
    source: Option<&str>,
    report: Option<&Report>,
) -> Value {
    let days = report.map(|r| r.rows.iter().map(DailyUsage::document).collect::<Vec<_>>());
    json!({
        "account_id": account.id.as_str(),
        "daily_quota": account.plan.daily_quota,
        "used_today": report.map(|r| transactions(r.used_today)),
        "from": day_text(range.from),
        "to": day_text(range.to),
        "source": source,
        "days": days,
    })
}

fn usage_fields(
    account: &Account,
    range: Range,
    report: Option<&Report>,
) -> Vec<(&'static str, String)> {
    let used = report.map_or_else(
        || "not known here".to_owned(),
        |r| format!("{} transactions", transactions(r.used_today)),
    );
    vec![
        ("account", account.id.to_string()),
        (
            "daily_quota",
            account
                .plan
                .daily_quota
                .map_or_else(|| "unlimited".to_owned(), |q| format!("{q} transactions")),
        ),
        ("used_today", used),
        (
            "range",
            format!("{} to {}", day_text(range.from), day_text(range.to)),
        ),
    ]
}

fn counts_text(counts: &std::collections::BTreeMap<String, u64>) -> String {
    list_text(counts.iter().map(|(k, v)| format!("{k} {v}")))
}

fn usage_table(rows: &[DailyUsage]) -> Table {
    let mut table = Table::new([
        "DATE",
        "CLIENT",
        "REQUESTS",
        "TRANSACTIONS",
        "REFUSALS",
        "REPORT-ONLY",
        "BY API (REQUESTS/TRANSACTIONS)",
    ]);
    for u in rows {
        table.row(vec![
            day_text(u.day),
            u.client.to_string(),
            u.requests.to_string(),
            transactions(u.cost).to_string(),
            counts_text(&u.refusals),
            counts_text(&u.shadowed),
            list_text(
                u.apis.iter().map(|(api, use_)| {
                    format!("{api} {}/{}", use_.requests, transactions(use_.cost))
                }),
            ),
        ]);
    }
    table
}

/// The origins and networks of each client's refused or report-only requests, a row each.
fn seen_table(rows: &[DailyUsage]) -> Table {
    let mut table = Table::new(["DATE", "CLIENT", "FROM", "REQUESTS"]);
    for u in rows {
        for seen in u.origins.iter().chain(&u.networks) {
            table.row(vec![
                day_text(u.day),
                u.client.to_string(),
                seen.value.clone(),
                seen.count.to_string(),
            ]);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use gis_auth::client::{AccountId, ClientId, Role, RoleSet};
    use gis_auth::limits::{Charge, InMemoryUsageCounter, Refused, Seen, UsageCounter};
    use gis_auth::policy::Rule;
    use gis_auth::restrict::RequestOrigin;
    use time::macros::date;

    fn field(e: ConfigError) -> &'static str {
        match e {
            ConfigError::InvalidField { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn ranges_default_to_today_and_are_checked_by_field() {
        let today = date!(2026 - 06 - 10);
        let r = range(None, None, today).unwrap();
        assert_eq!((r.from, r.to), (today, today));
        let r = range(Some("2026-06-01"), None, today).unwrap();
        assert_eq!(r.from, date!(2026 - 06 - 01));
        assert_eq!(field(range(Some("June"), None, today).unwrap_err()), "from");
        assert_eq!(
            field(range(None, Some("2026-13-01"), today).unwrap_err()),
            "to"
        );
        assert_eq!(
            field(range(Some("2026-06-11"), None, today).unwrap_err()),
            "from"
        );
        assert_eq!(
            field(range(Some("2024-01-01"), None, today).unwrap_err()),
            "to"
        );
    }

    #[test]
    fn a_report_from_a_counter_shows_requests_transactions_and_refusals() {
        let counter = InMemoryUsageCounter::new();
        let acme = AccountId::new("acme").unwrap();
        let web = ClientId::new("web").unwrap();
        let day = date!(2026 - 06 - 10);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..3 {
                let charge = Charge {
                    api: Some("WorldStreets"),
                    ..Charge::new(&acme, &web, day, 100)
                };
                counter.charge(&charge).await.unwrap();
            }
            let seen = Seen::new(
                RequestOrigin::from_origin_header("https://other.example"),
                Some("203.0.113.7".parse().unwrap()),
            );
            let refused = Refused::new(&acme, &web, day, Rule::Origins).seen(Some(&seen));
            counter.record_refusal(&refused).await.unwrap();
        });
        let report = Report {
            rows: rt.block_on(counter.usage(&acme, day, day)).unwrap(),
            used_today: rt.block_on(counter.used(&acme, day)).unwrap(),
        };
        let account = Account::new(acme, "Acme", RoleSet::from_iter([Role::EVALUATOR]))
            .unwrap()
            .with_daily_quota(Some(1_000));
        let range = Range {
            from: day,
            to: day,
            today: day,
        };
        let json = usage_json(&account, range, Some("redis"), Some(&report));
        assert_eq!(json["days"][0]["requests"], 3);
        assert_eq!(json["days"][0]["transactions"], 0.3);
        assert_eq!(json["days"][0]["refusals"]["origins"], 1);
        assert_eq!(json["days"][0]["apis"]["WorldStreets"]["requests"], 3);
        assert_eq!(json["days"][0]["apis"]["WorldStreets"]["transactions"], 0.3);
        assert_eq!(
            json["days"][0]["origins"][0]["origin"],
            "https://other.example"
        );
        assert_eq!(json["days"][0]["networks"][0]["network"], "203.0.113.0/24");
        assert_eq!(json["days"][0]["networks"][0]["count"], 1);
        let seen = seen_table(&report.rows).render();
        assert!(seen.contains("203.0.113.0/24"), "{seen}");
        assert_eq!(json["used_today"], 0.3);
        assert_eq!(json["daily_quota"], 1_000);
        let rendered = usage_table(&report.rows).render();
        assert!(rendered.starts_with("DATE"), "{rendered}");
        assert!(
            rendered.contains(
                "2026-06-10  web     3         0.3           origins 1  -            WorldStreets 3/0.3"
            ),
            "{rendered}"
        );

        let without = usage_json(&account, range, None, None);
        assert_eq!(without["days"], Value::Null);
        assert_eq!(without["source"], Value::Null);
        assert_eq!(without["daily_quota"], 1_000);
    }
}
