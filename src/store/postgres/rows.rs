//! The tables' SQL and rows: reading a client and an account from a row, and writing them.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row};
use time::OffsetDateTime;

use super::{corrupt, failed, unavailable};
use crate::client::{
    Account, AccountId, Action, Client, ClientId, ClientKind, ClientSpec, Contact,
    CredentialDigests, Grant, ItemCeiling, KeyDigest, Plan, RateLimit, RoleSet, ShadowSet, Status,
};
use crate::store::BackendError;
use crate::store::manage::ManageError;

/// Clients with their account, credentials and grants: one row per client.
macro_rules! select_clients {
    ($filter:literal) => {
        concat!(
            "SELECT c.id, c.name, c.kind, c.roles, c.status, c.allowed_origins, \
                    c.allow_missing_origin, c.allowed_ips, c.expires_at, c.privileges, \
                    c.rate_per_second, c.rate_burst, c.shadow, c.credential_generation, \
                    cur.digest AS current_digest, prev.digest AS previous_digest, \
                    prev.grace_until, \
                    ARRAY(SELECT g.item FROM client_grants g WHERE g.client_id = c.id \
                          ORDER BY g.position) AS grant_items, \
                    ARRAY(SELECT g.can_read FROM client_grants g WHERE g.client_id = c.id \
                          ORDER BY g.position) AS grant_read, \
                    ARRAY(SELECT g.can_write FROM client_grants g WHERE g.client_id = c.id \
                          ORDER BY g.position) AS grant_write, \
                    a.id AS a_id, a.name AS a_name, a.roles AS a_roles, a.status AS a_status, \
                    a.daily_quota AS a_daily_quota, a.contact_name AS a_contact_name, \
                    a.contact_email AS a_contact_email, a.contact_phone AS a_contact_phone, \
                    a.monthly_quota AS a_monthly_quota, a.rate_per_second AS a_rate_per_second, \
                    a.rate_burst AS a_rate_burst, a.max_clients AS a_max_clients, \
                    a.items AS a_items, a.expires_at AS a_expires_at \
             FROM clients c \
             JOIN accounts a ON a.id = c.account_id \
             JOIN credential_digests cur ON cur.client_id = c.id AND cur.slot = 'current' \
             LEFT JOIN credential_digests prev \
                    ON prev.client_id = c.id AND prev.slot = 'previous' ",
            $filter
        )
    };
}
pub(super) use select_clients;

/// The JavaScript client holding an API key digest. Secrets share the digest table (no two
/// clients hold one credential) but never answer a key lookup.
pub(super) const BY_DIGEST: &str = select_clients!(
    "WHERE c.id = (SELECT d.client_id FROM credential_digests d WHERE d.digest = $1) \
       AND c.kind = 'JavaScript'"
);

/// The client with an id.
pub(super) const BY_ID: &str = select_clients!("WHERE c.id = $1");

pub(super) const SELECT_ACCOUNT: &str = "SELECT id AS a_id, name AS a_name, roles AS a_roles, \
     status AS a_status, daily_quota AS a_daily_quota, contact_name AS a_contact_name, \
     contact_email AS a_contact_email, contact_phone AS a_contact_phone, \
     monthly_quota AS a_monthly_quota, rate_per_second AS a_rate_per_second, \
     rate_burst AS a_rate_burst, max_clients AS a_max_clients, items AS a_items, \
     expires_at AS a_expires_at FROM accounts ";

pub(super) fn account_from(row: &PgRow) -> Result<Account, BackendError> {
    let id: String = row.try_get("a_id").map_err(unavailable)?;
    let bad = |e: &dyn std::fmt::Display| corrupt("account", &id, e);
    let get_err = |e: sqlx::Error| corrupt("account", &id, e);
    let roles: Vec<String> = row.try_get("a_roles").map_err(get_err)?;
    let status: String = row.try_get("a_status").map_err(get_err)?;
    let quota: Option<i64> = row.try_get("a_daily_quota").map_err(get_err)?;
    let monthly: Option<i64> = row.try_get("a_monthly_quota").map_err(get_err)?;
    let rate_limit = match (
        row.try_get::<Option<i64>, _>("a_rate_per_second")
            .map_err(get_err)?,
        row.try_get::<Option<i64>, _>("a_rate_burst")
            .map_err(get_err)?,
    ) {
        (Some(rate), Some(burst)) => Some(
            RateLimit::new(
                u32::try_from(rate).unwrap_or(0),
                u32::try_from(burst).unwrap_or(0),
            )
            .map_err(|e| bad(&e))?,
        ),
        _ => None,
    };
    let max_clients = row
        .try_get::<Option<i64>, _>("a_max_clients")
        .map_err(get_err)?
        .map(|max| u32::try_from(max).map_err(|e| bad(&e)))
        .transpose()?;
    let items = row
        .try_get::<Option<Vec<String>>, _>("a_items")
        .map_err(get_err)?
        .map(ItemCeiling::new)
        .transpose()
        .map_err(|e| bad(&e))?;
    let plan = Plan::default()
        .with_daily_quota(quota.and_then(|q| u64::try_from(q).ok()))
        .with_monthly_quota(monthly.and_then(|q| u64::try_from(q).ok()))
        .with_rate_limit(rate_limit)
        .with_max_clients(max_clients)
        .with_items(items)
        .with_expires_at(row.try_get("a_expires_at").map_err(get_err)?);
    let contact = Contact {
        contact_name: row.try_get("a_contact_name").map_err(get_err)?,
        contact_email: row.try_get("a_contact_email").map_err(get_err)?,
        contact_phone: row.try_get("a_contact_phone").map_err(get_err)?,
    };
    let account = Account::new(
        AccountId::new(&id).map_err(|e| bad(&e))?,
        row.try_get::<String, _>("a_name").map_err(get_err)?,
        RoleSet::parse(&roles).map_err(|e| bad(&e))?,
    )
    .map_err(|e| bad(&e))?;
    Ok(account
        .with_status(status.parse::<Status>().map_err(|e| bad(&e))?)
        .with_plan(plan)
        .with_contact(contact))
}

pub(super) fn digest_from(bytes: Vec<u8>) -> Result<KeyDigest, String> {
    <[u8; 32]>::try_from(bytes)
        .map(KeyDigest::from_bytes)
        .map_err(|_| "a credential digest is not 32 bytes".to_owned())
}

/// A client as stored, built against its account. Roles the client holds and its account
/// has since lost stay on it (without effect), as [`Client::rebuilt`] keeps them.
pub(super) fn client_from(row: &PgRow, account: &Account) -> Result<Client, BackendError> {
    let id: String = row.try_get("id").map_err(unavailable)?;
    let bad = |e: &dyn std::fmt::Display| corrupt("client", &id, e);
    let get_err = |e: sqlx::Error| corrupt("client", &id, e);
    let kind: ClientKind = row
        .try_get::<String, _>("kind")
        .map_err(get_err)?
        .parse()
        .map_err(|e| bad(&e))?;
    let roles = row
        .try_get::<Option<Vec<String>>, _>("roles")
        .map_err(get_err)?
        .map(|names| RoleSet::parse(&names))
        .transpose()
        .map_err(|e| bad(&e))?;
    let rate_limit = match (
        row.try_get::<Option<i64>, _>("rate_per_second")
            .map_err(get_err)?,
        row.try_get::<Option<i64>, _>("rate_burst")
            .map_err(get_err)?,
    ) {
        (Some(rate), Some(burst)) => Some(
            RateLimit::new(
                u32::try_from(rate).unwrap_or(0),
                u32::try_from(burst).unwrap_or(0),
            )
            .map_err(|e| bad(&e))?,
        ),
        _ => None,
    };
    let items: Vec<String> = row.try_get("grant_items").map_err(get_err)?;
    let reads: Vec<bool> = row.try_get("grant_read").map_err(get_err)?;
    let writes: Vec<bool> = row.try_get("grant_write").map_err(get_err)?;
    let grants = items
        .into_iter()
        .zip(reads.into_iter().zip(writes))
        .map(|(item, (read, write))| {
            let actions = [(read, Action::Read), (write, Action::Write)]
                .into_iter()
                .filter_map(|(yes, action)| yes.then_some(action));
            Grant::new(item, actions)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    let shadow: Vec<String> = row.try_get("shadow").map_err(get_err)?;
    let mut spec = ClientSpec::new(kind, row.try_get::<String, _>("name").map_err(get_err)?);
    spec.roles = roles.clone();
    spec.status = row
        .try_get::<String, _>("status")
        .map_err(get_err)?
        .parse::<Status>()
        .map_err(|e| bad(&e))?;
    spec.allowed_origins = row.try_get("allowed_origins").map_err(get_err)?;
    spec.allow_missing_origin = row.try_get("allow_missing_origin").map_err(get_err)?;
    spec.allowed_ips = row.try_get("allowed_ips").map_err(get_err)?;
    spec.expires_at = row.try_get("expires_at").map_err(get_err)?;
    spec.privileges = row.try_get("privileges").map_err(get_err)?;
    spec.grants = grants;
    spec.rate_limit = rate_limit;
    spec.shadow = ShadowSet::parse(&shadow).map_err(|e| bad(&e))?;
    let current =
        digest_from(row.try_get("current_digest").map_err(get_err)?).map_err(|e| bad(&e))?;
    let previous = match (
        row.try_get::<Option<Vec<u8>>, _>("previous_digest")
            .map_err(get_err)?,
        row.try_get::<Option<OffsetDateTime>, _>("grace_until")
            .map_err(get_err)?,
    ) {
        (Some(digest), Some(until)) => Some((digest_from(digest).map_err(|e| bad(&e))?, until)),
        _ => None,
    };
    let generation: i64 = row.try_get("credential_generation").map_err(get_err)?;
    let credentials = CredentialDigests::restored(
        current,
        previous,
        u64::try_from(generation).unwrap_or_default(),
    );
    // Validated when it was written (the item ceiling included: no account change leaves a
    // client outside it); the roles it kept after its account lost them are granted for the
    // build only.
    let mut holder = account.clone();
    holder.plan.items = None;
    if let Some(roles) = &roles {
        holder.roles = RoleSet::from_iter(account.roles.iter().chain(roles.iter()).cloned());
    }
    Client::build_limited(
        ClientId::new(&id).map_err(|e| bad(&e))?,
        &spec,
        &holder,
        credentials,
        usize::MAX,
    )
    .map_err(|e| bad(&e))
}

/// The columns of a client as written.
pub(super) struct ClientRow {
    id: String,
    account: String,
    name: String,
    kind: &'static str,
    roles: Option<Vec<String>>,
    status: &'static str,
    allowed_origins: Vec<String>,
    allow_missing_origin: bool,
    allowed_ips: Vec<String>,
    expires_at: Option<OffsetDateTime>,
    privileges: Option<Vec<String>>,
    rate_per_second: Option<i64>,
    rate_burst: Option<i64>,
    shadow: Vec<String>,
    pub(super) generation: i64,
    grant_items: Vec<String>,
    grant_read: Vec<bool>,
    grant_write: Vec<bool>,
}

impl ClientRow {
    pub(super) fn of(client: &Client) -> ClientRow {
        let spec = client.to_spec();
        let grants = client.grants();
        ClientRow {
            id: client.id().to_string(),
            account: client.account_id().to_string(),
            name: spec.name,
            kind: spec.kind.as_str(),
            roles: spec
                .roles
                .map(|roles| roles.iter().map(|r| r.as_str().to_owned()).collect()),
            status: spec.status.as_str(),
            allowed_origins: spec.allowed_origins,
            allow_missing_origin: spec.allow_missing_origin,
            allowed_ips: spec.allowed_ips,
            expires_at: spec.expires_at,
            privileges: spec.privileges,
            rate_per_second: spec.rate_limit.map(|r| i64::from(r.per_second.get())),
            rate_burst: spec.rate_limit.map(|r| i64::from(r.burst.get())),
            shadow: spec.shadow.iter().map(|r| r.as_str().to_owned()).collect(),
            generation: i64::try_from(client.credentials().generation()).unwrap_or(i64::MAX),
            grant_items: grants.iter().map(|g| g.item().to_owned()).collect(),
            grant_read: grants.iter().map(|g| g.allows(Action::Read)).collect(),
            grant_write: grants.iter().map(|g| g.allows(Action::Write)).collect(),
        }
    }

    /// Inserts the client; `false` when its id is taken.
    pub(super) async fn insert(&self, conn: &mut PgConnection) -> Result<bool, ManageError> {
        let done = sqlx::query(
            "INSERT INTO clients (id, account_id, name, kind, roles, status, allowed_origins, \
                 allow_missing_origin, allowed_ips, expires_at, privileges, rate_per_second, \
                 rate_burst, shadow, credential_generation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&self.id)
        .bind(&self.account)
        .bind(&self.name)
        .bind(self.kind)
        .bind(&self.roles)
        .bind(self.status)
        .bind(&self.allowed_origins)
        .bind(self.allow_missing_origin)
        .bind(&self.allowed_ips)
        .bind(self.expires_at)
        .bind(&self.privileges)
        .bind(self.rate_per_second)
        .bind(self.rate_burst)
        .bind(&self.shadow)
        .bind(self.generation)
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.insert_grants(conn).await?;
        Ok(true)
    }

    /// Writes every setting of an existing client (not its credentials).
    pub(super) async fn update(&self, conn: &mut PgConnection) -> Result<(), ManageError> {
        sqlx::query(
            "UPDATE clients SET name = $2, roles = $3, status = $4, allowed_origins = $5, \
                 allow_missing_origin = $6, allowed_ips = $7, expires_at = $8, \
                 privileges = $9, rate_per_second = $10, rate_burst = $11, shadow = $12 \
             WHERE id = $1",
        )
        .bind(&self.id)
        .bind(&self.name)
        .bind(&self.roles)
        .bind(self.status)
        .bind(&self.allowed_origins)
        .bind(self.allow_missing_origin)
        .bind(&self.allowed_ips)
        .bind(self.expires_at)
        .bind(&self.privileges)
        .bind(self.rate_per_second)
        .bind(self.rate_burst)
        .bind(&self.shadow)
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
        sqlx::query("DELETE FROM client_grants WHERE client_id = $1")
            .bind(&self.id)
            .execute(&mut *conn)
            .await
            .map_err(failed)?;
        self.insert_grants(conn).await
    }

    async fn insert_grants(&self, conn: &mut PgConnection) -> Result<(), ManageError> {
        if self.grant_items.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO client_grants (client_id, position, item, can_read, can_write) \
             SELECT $1, g.position, g.item, g.can_read, g.can_write \
             FROM unnest($2::text[], $3::boolean[], $4::boolean[]) \
                  WITH ORDINALITY AS g(item, can_read, can_write, position)",
        )
        .bind(&self.id)
        .bind(&self.grant_items)
        .bind(&self.grant_read)
        .bind(&self.grant_write)
        .execute(conn)
        .await
        .map_err(failed)?;
        Ok(())
    }
}

/// Writes a client's credential digests; `false` when another client holds one of them.
pub(super) async fn insert_digests(
    conn: &mut PgConnection,
    client: &ClientId,
    credentials: &CredentialDigests,
) -> Result<bool, ManageError> {
    let slots = std::iter::once((credentials.current(), "current", None)).chain(
        credentials
            .previous()
            .map(|(digest, until)| (digest, "previous", Some(*until))),
    );
    for (digest, slot, until) in slots {
        let done = sqlx::query(
            "INSERT INTO credential_digests (digest, client_id, slot, grace_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(&digest.as_bytes()[..])
        .bind(client.as_str())
        .bind(slot)
        .bind(until)
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(super) async fn insert_account_row(
    conn: &mut PgConnection,
    account: &Account,
) -> Result<(), ManageError> {
    let done = bind_account(
        sqlx::query(
            "INSERT INTO accounts (id, name, roles, status, daily_quota, contact_name, \
                 contact_email, contact_phone, monthly_quota, rate_per_second, rate_burst, \
                 max_clients, items, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (id) DO NOTHING",
        ),
        account,
    )
    .execute(conn)
    .await
    .map_err(failed)?;
    if done.rows_affected() == 0 {
        return Err(ManageError::duplicate_account(&account.id));
    }
    Ok(())
}

/// `query` with `account`'s columns bound as `$1` to `$14`: `id`, `name`, `roles`,
/// `status`, `daily_quota`, `contact_name`, `contact_email`, `contact_phone`,
/// `monthly_quota`, `rate_per_second`, `rate_burst`, `max_clients`, `items`, `expires_at`.
/// The one place an account's columns are written, for the insert and the update alike.
pub(super) fn bind_account<'q>(
    query: Query<'q, Postgres, PgArguments>,
    account: &'q Account,
) -> Query<'q, Postgres, PgArguments> {
    let plan = &account.plan;
    query
        .bind(account.id.as_str())
        .bind(&account.name)
        .bind(role_names(&account.roles))
        .bind(account.status.as_str())
        .bind(quota_column(plan.daily_quota))
        .bind(&account.contact.contact_name)
        .bind(&account.contact.contact_email)
        .bind(&account.contact.contact_phone)
        .bind(quota_column(plan.monthly_quota))
        .bind(plan.rate_limit.map(|r| i64::from(r.per_second.get())))
        .bind(plan.rate_limit.map(|r| i64::from(r.burst.get())))
        .bind(plan.max_clients.map(i64::from))
        .bind(
            plan.items
                .as_ref()
                .map(|ceiling| ceiling.entries().map(str::to_owned).collect::<Vec<_>>()),
        )
        .bind(plan.expires_at)
}

pub(super) fn role_names(roles: &RoleSet) -> Vec<String> {
    roles.iter().map(|r| r.as_str().to_owned()).collect()
}

/// Quotas beyond what PostgreSQL's `bigint` holds are as good as unlimited.
pub(super) fn quota_column(quota: Option<u64>) -> Option<i64> {
    quota.map(|q| i64::try_from(q).unwrap_or(i64::MAX))
}
