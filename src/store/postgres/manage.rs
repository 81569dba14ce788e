//! The management operations: each one a transaction that locks the account's row first.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgConnection;

use super::rows::{
    ClientRow, SELECT_ACCOUNT, account_from, bind_account, client_from, insert_account_row,
    insert_digests, select_clients,
};
use super::{PostgresStore, corrupt, failed};
use crate::client::{
    Account, AccountId, Client, ClientId, ClientSpec, CredentialDigests, PlainCredential,
};
use crate::document::AuditEntry;
use crate::error::{BackendError, ConfigError};
use crate::events::EventSink;
use crate::store::AuditQuery;
use crate::store::Invalidation;
use crate::store::manage::{
    AccountChange, ClientChange, CreatedAccount, CreatedClient, ManageError, ManagedStore,
    NewCredential, Precondition, changed_client, check_item_ceiling, check_precondition,
    check_room_for_client, credential_kind, credential_taken, fresh_credential, new_client_id,
};

impl PostgresStore {
    /// A transaction on a connection from the pool.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ManageError> {
        self.pool.begin().await.map_err(failed)
    }

    /// Announces `change` on the store's channel; delivered when the transaction commits.
    async fn notify(
        &self,
        conn: &mut PgConnection,
        change: &Invalidation,
    ) -> Result<(), ManageError> {
        let payload = match change {
            Invalidation::Client(id) => format!("client:{id}"),
            Invalidation::Account(id) => format!("account:{id}"),
            _ => "everything".to_owned(),
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&*self.channel)
            .bind(payload)
            .execute(conn)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Adds an account without default clients (for loading from a file).
    pub async fn insert_account(&self, account: Account) -> Result<Arc<Account>, ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            insert_account_row(&mut tx, &account).await?;
            self.notify(&mut tx, &Invalidation::Account(account.id.clone()))
                .await?;
            Ok(Arc::new(account))
        }
        .await;
        settle(tx, outcome).await
    }

    /// Adds a client with the given credential; gives the plaintext when one was generated.
    pub async fn insert_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
        credential: NewCredential,
    ) -> Result<(Arc<Client>, Option<PlainCredential>), ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let owner = lock_account(&mut tx, account).await?;
            let (client, plain) =
                insert_client_rows(&mut tx, &owner, spec, credential, self.max_grants).await?;
            self.notify(&mut tx, &Invalidation::Client(client.id().clone()))
                .await?;
            Ok((client, plain))
        }
        .await;
        settle(tx, outcome).await
    }

    /// Ends a rotation's grace period early: the previous credential, and every token
    /// minted with it, stops at once.
    pub async fn retire_previous(&self, id: &ClientId) -> Result<Arc<Client>, ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let (_, current, _) = lock_client(&mut tx, id).await?;
            sqlx::query(
                "DELETE FROM credential_digests WHERE client_id = $1 AND slot = 'previous'",
            )
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            self.notify(&mut tx, &Invalidation::Client(id.clone()))
                .await?;
            Ok(Arc::new(current.with_credentials(
                current.credentials().without_previous(),
            )))
        }
        .await;
        settle(tx, outcome).await
    }
}

/// Commits when the work succeeded; otherwise rolls back at once, releasing the locks it
/// took before the error is returned (a dropped transaction would hold them until its
/// connection is next used).
async fn settle<T>(
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    outcome: Result<T, ManageError>,
) -> Result<T, ManageError> {
    match outcome {
        Ok(value) => {
            tx.commit().await.map_err(failed)?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "rolling back a refused change failed");
            }
            Err(e)
        }
    }
}

/// Locks the account's row for the rest of the transaction: every change to an account or
/// its clients takes this lock first, so they apply one at a time.
async fn lock_account(conn: &mut PgConnection, id: &AccountId) -> Result<Account, ManageError> {
    let row = sqlx::query(&format!("{SELECT_ACCOUNT} WHERE id = $1 FOR UPDATE"))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await
        .map_err(failed)?
        .ok_or_else(|| ManageError::unknown_account(id))?;
    Ok(account_from(&row)?)
}

/// Every client of an account, ordered by id (byte order, as the in-memory store).
async fn clients_of(
    conn: &mut PgConnection,
    account: &Account,
) -> Result<Vec<Arc<Client>>, ManageError> {
    let rows = sqlx::query(select_clients!(
        "WHERE c.account_id = $1 ORDER BY c.id COLLATE \"C\""
    ))
    .bind(account.id.as_str())
    .fetch_all(conn)
    .await
    .map_err(failed)?;
    rows.iter()
        .map(|row| Ok(Arc::new(client_from(row, account)?)))
        .collect()
}

/// Locks a client's account and reads the client and the account's clients.
async fn lock_client(
    conn: &mut PgConnection,
    id: &ClientId,
) -> Result<(Account, Arc<Client>, Vec<Arc<Client>>), ManageError> {
    let unknown = || ManageError::unknown_client(id);
    let account: String = sqlx::query_scalar("SELECT account_id FROM clients WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed)?
        .ok_or_else(unknown)?;
    let account = AccountId::new(&account).map_err(|e| corrupt("client", id.as_str(), e))?;
    let account = lock_account(conn, &account).await?;
    let clients = clients_of(conn, &account).await?;
    // Deleted between the two reads: as unknown as before.
    let current = clients
        .iter()
        .find(|c| c.id() == id)
        .cloned()
        .ok_or_else(unknown)?;
    Ok((account, current, clients))
}

/// How many fresh ids are tried before giving up (they are 96 random bits).
const ID_ATTEMPTS: usize = 4;

/// Inserts a client of `account` (whose row the caller has locked).
async fn insert_client_rows(
    conn: &mut PgConnection,
    account: &Account,
    spec: ClientSpec,
    credential: NewCredential,
    max_grants: usize,
) -> Result<(Arc<Client>, Option<PlainCredential>), ManageError> {
    let mut credential = Some(credential);
    // Made once: a generated id already taken is retried with the same credential.
    let mut made: Option<(CredentialDigests, Option<PlainCredential>)> = None;
    for _ in 0..ID_ATTEMPTS {
        let id = match &spec.id {
            Some(id) => id.clone(),
            None => new_client_id()?,
        };
        let (credentials, plain) = match (&made, credential.take()) {
            (Some(made), _) => made.clone(),
            (None, Some(given)) => made.insert(given.resolve(&id, spec.kind)?).clone(),
            (None, None) => return Err(ManageError::RandomSource),
        };
        let client = Client::build_limited(id.clone(), &spec, account, credentials, max_grants)?;
        let row = ClientRow::of(&client);
        if !row.insert(conn).await? {
            if spec.id.is_some() {
                return Err(ManageError::duplicate_client(&id));
            }
            continue;
        }
        if !insert_digests(conn, &id, client.credentials()).await? {
            return Err(credential_taken(&id, spec.kind).into());
        }
        return Ok((Arc::new(client), plain));
    }
    Err(ManageError::RandomSource)
}

#[async_trait]
impl ManagedStore for PostgresStore {
    async fn append_audit(&self, entry: AuditEntry) -> Result<(), BackendError> {
        self.insert_audit(&entry).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, ManageError> {
        self.select_audit(query).await
    }

    fn audit_time(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    fn events(&self) -> Option<&dyn EventSink> {
        self.events.as_deref()
    }

    async fn list_accounts(&self) -> Result<Vec<Arc<Account>>, ManageError> {
        let rows = sqlx::query(&format!("{SELECT_ACCOUNT} ORDER BY id COLLATE \"C\""))
            .fetch_all(&self.pool)
            .await
            .map_err(failed)?;
        Ok(rows
            .iter()
            .map(|row| account_from(row).map(Arc::new))
            .collect::<Result<_, _>>()?)
    }

    async fn apply_create_account(&self, account: Account) -> Result<CreatedAccount, ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            insert_account_row(&mut tx, &account).await?;
            let mut made = Vec::with_capacity(2);
            for spec in [
                ClientSpec::javascript("Default JavaScript client"),
                ClientSpec::native("Default native client"),
            ] {
                let (client, plain) = insert_client_rows(
                    &mut tx,
                    &account,
                    spec,
                    NewCredential::Generate,
                    self.max_grants,
                )
                .await?;
                let credential = plain.ok_or(ManageError::RandomSource)?;
                made.push(CreatedClient { client, credential });
            }
            self.notify(&mut tx, &Invalidation::Account(account.id.clone()))
                .await?;
            let native = made.pop().ok_or(ManageError::RandomSource)?;
            let javascript = made.pop().ok_or(ManageError::RandomSource)?;
            Ok(CreatedAccount {
                account: Arc::new(account),
                javascript,
                native,
            })
        }
        .await;
        settle(tx, outcome).await
    }

    async fn apply_update_account(
        &self,
        id: &AccountId,
        change: AccountChange,
    ) -> Result<Arc<Account>, ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let current = lock_account(&mut tx, id).await?;
            let mut next = current.clone();
            change(&mut next)?;
            if next.id != *id {
                return Err(ConfigError::InvalidField {
                    field: "account id",
                    value: next.id.to_string(),
                    reason: "an account's id cannot change",
                }
                .into());
            }
            Account::new(next.id.clone(), next.name.clone(), next.roles.clone())?;
            next.contact.validate()?;
            if next.plan.items.is_some() && next.plan.items != current.plan.items {
                let clients = clients_of(&mut tx, &next).await?;
                check_item_ceiling(&next, clients.iter().map(|c| &**c))?;
            }
            bind_account(
                sqlx::query(
                    "UPDATE accounts SET name = $2, roles = $3, status = $4, daily_quota = $5, \
                         contact_name = $6, contact_email = $7, contact_phone = $8, \
                         monthly_quota = $9, rate_per_second = $10, rate_burst = $11, \
                         max_clients = $12, items = $13, expires_at = $14 \
                     WHERE id = $1",
                ),
                &next,
            )
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            self.notify(&mut tx, &Invalidation::Account(id.clone()))
                .await?;
            Ok(Arc::new(next))
        }
        .await;
        settle(tx, outcome).await
    }

    async fn list_clients(&self, account: &AccountId) -> Result<Vec<Arc<Client>>, ManageError> {
        let mut conn = self.pool.acquire().await.map_err(failed)?;
        let row = sqlx::query(&format!("{SELECT_ACCOUNT} WHERE id = $1"))
            .bind(account.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(failed)?
            .ok_or_else(|| ManageError::unknown_account(account))?;
        let account = account_from(&row)?;
        clients_of(&mut conn, &account).await
    }

    async fn list_clients_page(
        &self,
        account: &AccountId,
        after: Option<&ClientId>,
        limit: usize,
    ) -> Result<Vec<Arc<Client>>, ManageError> {
        let mut conn = self.pool.acquire().await.map_err(failed)?;
        let row = sqlx::query(&format!("{SELECT_ACCOUNT} WHERE id = $1"))
            .bind(account.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(failed)?
            .ok_or_else(|| ManageError::unknown_account(account))?;
        let account = account_from(&row)?;
        let rows = sqlx::query(select_clients!(
            "WHERE c.account_id = $1 AND ($2::text IS NULL OR c.id COLLATE \"C\" > $2) \
             ORDER BY c.id COLLATE \"C\" LIMIT $3"
        ))
        .bind(account.id.as_str())
        .bind(after.map(ClientId::as_str))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(failed)?;
        rows.iter()
            .map(|row| Ok(Arc::new(client_from(row, &account)?)))
            .collect()
    }

    async fn apply_create_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
    ) -> Result<CreatedClient, ManageError> {
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            // The account's row lock orders this count before any other creation's.
            let owner = lock_account(&mut tx, account).await?;
            let held: i64 =
                sqlx::query_scalar("SELECT count(*) FROM clients WHERE account_id = $1")
                    .bind(account.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(failed)?;
            check_room_for_client(&owner, usize::try_from(held).unwrap_or(usize::MAX))?;
            let (client, plain) = insert_client_rows(
                &mut tx,
                &owner,
                spec,
                NewCredential::Generate,
                self.max_grants,
            )
            .await?;
            self.notify(&mut tx, &Invalidation::Client(client.id().clone()))
                .await?;
            let credential = plain.ok_or(ManageError::RandomSource)?;
            Ok(CreatedClient { client, credential })
        }
        .await;
        settle(tx, outcome).await
    }

    async fn apply_update_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        change: ClientChange,
    ) -> Result<Arc<Client>, ManageError> {
        let now = self.clock.now();
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let (account, current, clients) = lock_client(&mut tx, id).await?;
            pre.check_owner(&current)?;
            let next = Arc::new(changed_client(&current, &account, self.max_grants, change)?);
            check_precondition(
                pre,
                &current,
                &account,
                Some(&next),
                clients.iter().map(|c| &**c),
                now,
            )?;
            ClientRow::of(&next).update(&mut tx).await?;
            self.notify(&mut tx, &Invalidation::Client(id.clone()))
                .await?;
            Ok(next)
        }
        .await;
        settle(tx, outcome).await
    }

    async fn apply_regenerate_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        grace: Option<time::Duration>,
    ) -> Result<(Arc<Client>, PlainCredential), ManageError> {
        let now = self.clock.now();
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let (account, current, _) = lock_client(&mut tx, id).await?;
            pre.check_owner(&current)?;
            // A new credential never locks anyone out: the caller gets it in the answer.
            let check = Precondition {
                keep_admin_access: false,
                ..pre.clone()
            };
            check_precondition(&check, &current, &account, Some(&current), [], now)?;
            let plain = fresh_credential(credential_kind(current.kind()))?;
            let grace_until = grace.filter(|g| g.is_positive()).map(|g| now + g);
            let credentials = current.credentials().rotated(plain.digest(), grace_until);
            sqlx::query("DELETE FROM credential_digests WHERE client_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            if !insert_digests(&mut tx, id, &credentials).await? {
                return Err(credential_taken(id, current.kind()).into());
            }
            let next = Arc::new(current.with_credentials(credentials));
            sqlx::query("UPDATE clients SET credential_generation = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind(ClientRow::of(&next).generation)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            self.notify(&mut tx, &Invalidation::Client(id.clone()))
                .await?;
            Ok((next, plain))
        }
        .await;
        settle(tx, outcome).await
    }

    async fn apply_delete_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
    ) -> Result<Arc<Client>, ManageError> {
        let now = self.clock.now();
        let mut tx = self.begin().await?;
        let outcome: Result<_, ManageError> = async {
            let (account, current, clients) = lock_client(&mut tx, id).await?;
            pre.check_owner(&current)?;
            check_precondition(
                pre,
                &current,
                &account,
                None,
                clients.iter().map(|c| &**c),
                now,
            )?;
            sqlx::query("DELETE FROM clients WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            self.notify(&mut tx, &Invalidation::Client(id.clone()))
                .await?;
            Ok(current)
        }
        .await;
        settle(tx, outcome).await
    }
}
