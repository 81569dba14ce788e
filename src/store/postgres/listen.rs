//! Change notification: the task that relays `NOTIFY`s on the store's channel to a
//! callback, reconnecting when the connection drops.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use time::OffsetDateTime;

use super::revoked::valid_jti;
use super::{PostgresStore, unavailable};
use crate::client::{AccountId, ClientId};
use crate::store::{BackendError, Invalidation, RevokedToken};

/// The longest wait between two attempts to get the notification connection back.
const MAX_LISTEN_BACKOFF: Duration = Duration::from_secs(5);

impl PostgresStore {
    /// Calls `on_change` with every change any instance commits, from a task of its own,
    /// until the returned [`ChangeListener`] is dropped. The subscription is in place when
    /// this returns.
    ///
    /// When the notification connection drops, `on_change` gets
    /// [`Invalidation::Everything`] (changes may be missed while it is down; caches fall
    /// back to their lifetimes), and again once it is back: the listener reconnects by
    /// itself, waiting up to 5 seconds between attempts.
    pub async fn listen<F>(&self, on_change: F) -> Result<ChangeListener, BackendError>
    where
        F: Fn(Invalidation) + Send + Sync + 'static,
    {
        let listener = subscribe(&self.pool, &self.channel)
            .await
            .map_err(unavailable)?;
        let task = tokio::spawn(relay(
            self.pool.clone(),
            self.channel.clone(),
            listener,
            on_change,
        ));
        Ok(ChangeListener { task })
    }
}

/// The task that relays notifications to the callback, reconnecting as needed.
async fn relay<F>(pool: PgPool, channel: Arc<str>, mut listener: PgListener, on_change: F)
where
    F: Fn(Invalidation) + Send + Sync + 'static,
{
    loop {
        let lost = match listener.try_recv().await {
            Ok(Some(notification)) => {
                on_change(parse_payload(notification.payload()));
                continue;
            }
            Ok(None) => "closed".to_owned(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(
            error = %lost,
            "the PostgreSQL notification connection was lost; cached entries last their \
             lifetime until it is back"
        );
        on_change(Invalidation::Everything);
        // Subscribed again before telling the callback, so that what it reloads then
        // misses nothing announced after.
        drop(listener);
        listener = resubscribe(&pool, &channel).await;
        tracing::info!("the PostgreSQL notification connection is back");
        on_change(Invalidation::Everything);
    }
}

async fn subscribe(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Subscribes again, waiting longer after each failure (from 100 ms up to
/// [`MAX_LISTEN_BACKOFF`]).
async fn resubscribe(pool: &PgPool, channel: &str) -> PgListener {
    let mut wait = Duration::from_millis(100);
    loop {
        match subscribe(pool, channel).await {
            Ok(listener) => return listener,
            Err(e) => {
                tracing::debug!(error = %e, "cannot subscribe to PostgreSQL notifications yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_LISTEN_BACKOFF);
            }
        }
    }
}

/// `client:<id>`, `account:<id>`, `token:<exp>:<jti>` (a revoked token); anything else
/// (from a newer version, or a hand-made `NOTIFY`) drops everything.
fn parse_payload(payload: &str) -> Invalidation {
    let parsed = match payload.split_once(':') {
        Some(("client", id)) => ClientId::new(id).ok().map(Invalidation::Client),
        Some(("account", id)) => AccountId::new(id).ok().map(Invalidation::Account),
        Some(("token", revoked)) => revoked_token(revoked).map(Invalidation::TokenRevoked),
        _ => None,
    };
    parsed.unwrap_or(Invalidation::Everything)
}

/// `<exp>:<jti>`: the `exp` in Unix seconds, a `jti` of the form tokens carry.
fn revoked_token(payload: &str) -> Option<RevokedToken> {
    let (exp, jti) = payload.split_once(':')?;
    let expires_at = OffsetDateTime::from_unix_timestamp(exp.parse().ok()?).ok()?;
    valid_jti(jti).then(|| RevokedToken {
        jti: jti.to_owned(),
        expires_at,
    })
}

/// Relays change notifications while it is alive: dropping it stops the task.
#[derive(Debug)]
#[must_use = "the listener stops when dropped"]
pub struct ChangeListener {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChangeListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_a_client_or_an_account_and_anything_else_drops_everything() {
        assert_eq!(
            parse_payload("client:web-1"),
            Invalidation::Client(ClientId::new("web-1").unwrap())
        );
        assert_eq!(
            parse_payload("account:acme"),
            Invalidation::Account(AccountId::new("acme").unwrap())
        );
        assert_eq!(
            parse_payload("token:1780000000:AbC-_9"),
            Invalidation::TokenRevoked(RevokedToken {
                jti: "AbC-_9".to_owned(),
                expires_at: OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(),
            })
        );
        for other in [
            "",
            "client:",
            "client:a b",
            "team:x",
            "everything",
            "token:",
            "token:soon:abc",
            "token:1780000000:",
            "token:1780000000:a b",
        ] {
            assert_eq!(parse_payload(other), Invalidation::Everything, "{other}");
        }
    }
}
