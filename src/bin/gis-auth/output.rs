//! What the tool prints: tables or JSON on stdout, failures on stderr.

use std::fmt;
use std::io::Write as _;

use gis_auth::ConfigError;
use gis_auth::client::{Account, Client, ClientKind, PlainCredential, RoleSet};
use gis_auth::document::etag;
use gis_auth::store::{BackendError, FileStoreError, ManageError};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why a command did not succeed: printed on stderr, exit code 1. Names the field or entry
/// at fault; never holds a credential.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ManageError> for Failure {
    fn from(e: ManageError) -> Self {
        Failure(e.to_string())
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure(e.to_string())
    }
}

impl From<FileStoreError> for Failure {
    fn from(e: FileStoreError) -> Self {
        Failure(e.to_string())
    }
}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Self {
        Failure(e.to_string())
    }
}

/// Where results go, and in which form.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    pub fn is_json(self) -> bool {
        self.json
    }

    /// Prints one JSON document, its keys in order (as they always were).
    pub fn json(self, value: &impl Serialize) -> Result<(), Failure> {
        let text = serde_json::to_value(value)
            .and_then(|value| serde_json::to_string_pretty(&value))
            .map_err(|e| Failure::new(format!("cannot print the result: {e}")))?;
        self.line(&text)
    }

    /// Prints text as it is.
    pub fn line(self, text: &str) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::new(format!("cannot print the result: {e}")))
    }

    /// Prints `label  value` lines, labels aligned.
    pub fn fields(self, fields: &[(&str, String)]) -> Result<(), Failure> {
        let width = fields.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let text: Vec<String> = fields
            .iter()
            .map(|(label, value)| format!("{label:<width$}  {}", printable(value)))
            .collect();
        self.line(&text.join("\n"))
    }

    /// Prints a table with a header row; an empty table prints `empty` instead.
    pub fn table(self, table: &Table, empty: &str) -> Result<(), Failure> {
        if table.rows.is_empty() {
            return self.line(empty);
        }
        self.line(&table.render())
    }
}

/// A note for the person at the terminal, on stderr (never a result, never a credential).
pub fn note(text: &str) {
    eprintln!("gis-auth: {text}");
}

/// Rows of text in aligned columns.
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const N: usize>(header: [&str; N]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| printable(c)).collect());
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    text.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad + 2));
                }
            }
            text.trim_end().to_owned()
        };
        let mut lines = vec![line(&self.header)];
        lines.extend(self.rows.iter().map(|r| line(r)));
        lines.join("\n")
    }
}

/// Text with control characters escaped, so a value cannot rearrange the terminal.
fn printable(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        s.to_owned()
    }
}

/// `User, Evaluator`, or `-` for none.
pub fn roles_text(roles: &RoleSet) -> String {
    list_text(roles.iter().map(|r| r.as_str().to_owned()))
}

/// Items joined with `, `, or `-` for none.
pub fn list_text(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

/// An RFC 3339 time, or `-`.
pub fn time_text(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".to_owned())
}

/// A number, or `unlimited` for none.
pub fn unlimited_or(n: Option<impl fmt::Display>) -> String {
    n.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// An account as `label  value` lines.
pub fn account_fields(a: &Account) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", a.id.to_string()),
        ("name", a.name.clone()),
        ("roles", roles_text(&a.roles)),
        ("status", a.status.to_string()),
        ("daily_quota", unlimited_or(a.plan.daily_quota)),
        ("monthly_quota", unlimited_or(a.plan.monthly_quota)),
        (
            "rate_limit",
            a.plan.rate_limit.map_or_else(
                || "unlimited".to_owned(),
                |r| format!("{}/s, burst {}", r.per_second, r.burst),
            ),
        ),
        ("max_clients", unlimited_or(a.plan.max_clients)),
        (
            "items",
            match &a.plan.items {
                None => "any".to_owned(),
                Some(ceiling) if ceiling.entries().next().is_none() => "none".to_owned(),
                Some(ceiling) => list_text(ceiling.entries().map(str::to_owned)),
            },
        ),
        (
            "expires_at",
            a.plan
                .expires_at
                .map_or_else(|| "never".to_owned(), |t| time_text(Some(t))),
        ),
    ];
    for (label, value) in [
        ("contact_name", &a.contact.contact_name),
        ("contact_email", &a.contact.contact_email),
        ("contact_phone", &a.contact.contact_phone),
    ] {
        if let Some(v) = value {
            fields.push((label, v.clone()));
        }
    }
    fields
}

/// The credential's fields, as a created client's document has them.
pub fn credential_fields(
    client: &Client,
    credential: &PlainCredential,
) -> Vec<(&'static str, String)> {
    match client.kind() {
        ClientKind::JavaScript => vec![("api_key", credential.expose().to_owned())],
        ClientKind::NativeConfidential => vec![
            ("client_id", client.id().to_string()),
            ("client_secret", credential.expose().to_owned()),
        ],
    }
}

/// A client as `label  value` lines.
pub fn client_fields(client: &Client, account: &Account) -> Vec<(&'static str, String)> {
    let spec = client.to_spec();
    let credentials = client.credentials();
    let credential = match credentials.previous() {
        Some((_, until)) => format!(
            "generation {}; the previous one is accepted until {}",
            credentials.generation(),
            time_text(Some(*until))
        ),
        None => format!("generation {}", credentials.generation()),
    };
    vec![
        ("id", client.id().to_string()),
        ("account", client.account_id().to_string()),
        ("name", spec.name),
        ("kind", client.kind().to_string()),
        (
            "roles",
            if client.grants_all_roles() {
                format!(
                    "{} (all of the account's)",
                    roles_text(&client.effective_roles(account))
                )
            } else {
                roles_text(&client.effective_roles(account))
            },
        ),
        ("status", client.status().to_string()),
        ("allowed_origins", list_text(spec.allowed_origins)),
        (
            "allow_missing_origin",
            spec.allow_missing_origin.to_string(),
        ),
        ("allowed_ips", list_text(spec.allowed_ips)),
        ("expires_at", time_text(spec.expires_at)),
        (
            "privileges",
            spec.privileges.map_or_else(
                || "any API its roles allow".to_owned(),
                |p| {
                    if p.is_empty() {
                        "none (reaches no API)".to_owned()
                    } else {
                        p.join(", ")
                    }
                },
            ),
        ),
        (
            "grants",
            list_text(spec.grants.iter().map(|g| {
                let actions: Vec<&str> = g.actions().iter().map(|a| a.as_str()).collect();
                format!("{}: {}", g.item(), actions.join("+"))
            })),
        ),
        (
            "rate_limit",
            spec.rate_limit.map_or_else(
                || "-".to_owned(),
                |r| format!("{}/s, burst {}", r.per_second, r.burst),
            ),
        ),
        (
            "shadow",
            list_text(spec.shadow.iter().map(|r| r.as_str().to_owned())),
        ),
        ("credential", credential),
        ("etag", etag(client, account)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_escape_control_characters() {
        let mut table = Table::new(["ID", "NAME", "STATUS"]);
        table.row(vec!["a".into(), "Long name".into(), "active".into()]);
        table.row(vec!["bbbb".into(), "x\ny".into(), "inactive".into()]);
        assert_eq!(
            table.render(),
            "ID    NAME       STATUS\na     Long name  active\nbbbb  x\\ny       inactive"
        );
    }

    #[test]
    fn empty_lists_print_as_a_dash() {
        assert_eq!(list_text(Vec::new()), "-");
        assert_eq!(list_text(["a".to_owned(), "b".to_owned()]), "a, b");
        assert_eq!(time_text(None), "-");
    }
}
