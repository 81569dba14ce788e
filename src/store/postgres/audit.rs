//! The PostgreSQL store's audit log: the `audit_log` table (migration
//! `20261204000003_audit_log.sql`), one row per entry, read by account and time.

use sqlx::Row;

use super::{PostgresStore, corrupt, failed, unavailable};
use crate::document::{AuditAction, AuditEntry, AuditOutcome};
use crate::error::BackendError;
use crate::store::{AuditQuery, MAX_AUDIT_PAGE, ManageError};

impl PostgresStore {
    /// Inserts one audit entry.
    pub(super) async fn insert_audit(&self, entry: &AuditEntry) -> Result<(), BackendError> {
        sqlx::query(
            "INSERT INTO audit_log (at, changed_by, account_id, client_id, action, fields, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(entry.at)
        .bind(&entry.by)
        .bind(&entry.account_id)
        .bind(&entry.client_id)
        .bind(entry.action.as_str())
        .bind(&entry.fields)
        .bind(entry.outcome.as_str())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// The entries `query` selects, oldest first.
    pub(super) async fn select_audit(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, ManageError> {
        let limit = i64::try_from(query.limit.min(MAX_AUDIT_PAGE)).unwrap_or(0);
        let rows = sqlx::query(
            "SELECT at, changed_by, account_id, client_id, action, fields, outcome \
             FROM audit_log WHERE at >= $1 AND at < $2 AND ($3::text IS NULL OR account_id = $3) \
             ORDER BY at, seq LIMIT $4",
        )
        .bind(query.from)
        .bind(query.to)
        .bind(query.account.as_ref().map(|a| a.as_str()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        rows.iter()
            .map(|row| {
                let action: String = row.try_get("action").map_err(failed)?;
                let outcome: String = row.try_get("outcome").map_err(failed)?;
                let mut entry = AuditEntry::new(
                    row.try_get("at").map_err(failed)?,
                    row.try_get::<String, _>("changed_by").map_err(failed)?,
                    AuditAction::parse(&action)
                        .ok_or_else(|| corrupt("audit entry", &action, "an unknown action"))?,
                );
                entry.account_id = row.try_get("account_id").map_err(failed)?;
                entry.client_id = row.try_get("client_id").map_err(failed)?;
                entry.fields = row.try_get("fields").map_err(failed)?;
                entry.outcome = AuditOutcome::parse(&outcome)
                    .ok_or_else(|| corrupt("audit entry", &outcome, "an unknown outcome"))?;
                Ok(entry)
            })
            .collect()
    }
}
