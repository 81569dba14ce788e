//! The audit log in PostgreSQL: the `audit_log` table, read by account and time.

use super::*;
use gis_auth::document::{AuditAction, AuditOutcome};
use gis_auth::store::{AuditQuery, ChangedBy};

#[tokio::test]
async fn changes_are_recorded_in_the_audit_table_and_read_by_account() {
    let schema = Schema::create("audit").await;
    let store = schema.store().await;
    let acme = store.create_account(account("acme")).await.unwrap();
    store.create_account(account("globex")).await.unwrap();
    let web = acme.javascript.client.id();
    let by = ChangedBy::Client {
        id: acme.native.client.id().clone(),
        from: None,
    };
    let pre = Precondition {
        changed_by: by.clone(),
        account: Some(acme.account.id.clone()),
        ..Precondition::default()
    };
    store
        .update_client(
            web,
            &pre,
            change(|s| s.allowed_origins = vec!["https://a.test".into()]),
        )
        .await
        .unwrap();
    let duplicate = store.create_account(account("acme")).await;
    assert!(duplicate.is_err());
    let all = AuditQuery::new(
        time::OffsetDateTime::UNIX_EPOCH,
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    let acme_only = store
        .audit(&all.clone().account(acme.account.id.clone()))
        .await
        .unwrap();
    let summary: Vec<(AuditAction, AuditOutcome, &str)> = acme_only
        .iter()
        .map(|e| (e.action, e.outcome, e.by.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                AuditAction::CreateAccount,
                AuditOutcome::Success,
                "operator"
            ),
            (
                AuditAction::UpdateClient,
                AuditOutcome::Success,
                acme.native.client.id().as_str()
            ),
            (
                AuditAction::CreateAccount,
                AuditOutcome::Conflict,
                "operator"
            ),
        ]
    );
    assert_eq!(acme_only[1].fields, ["allowed_origins"]);
    assert_eq!(acme_only[1].client_id.as_deref(), Some(web.as_str()));
    assert_eq!(store.audit(&all.limit(2)).await.unwrap().len(), 2);
    assert_eq!(
        store
            .audit(&AuditQuery::new(
                time::OffsetDateTime::UNIX_EPOCH,
                time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(1)
            ))
            .await
            .unwrap()
            .len(),
        0
    );
}
