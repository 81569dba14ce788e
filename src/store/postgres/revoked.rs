//! Revoked access tokens in the `revoked_tokens` table: recorded and announced in one
//! transaction, loaded by every instance at start, and read one by one while an instance's
//! own list is out of step.

use std::sync::Arc;

use sqlx::Row;
use time::OffsetDateTime;

use super::{PostgresStore, unavailable};
use crate::clock::Clock;
use crate::store::{BackendError, RevokedToken};

/// The longest `jti` kept (the table's limit): tokens carry 22 characters.
pub(crate) const MAX_JTI_LEN: usize = 128;

/// A `jti` of the form tokens carry: 1 to 128 Base64URL characters.
pub(crate) fn valid_jti(jti: &str) -> bool {
    !jti.is_empty()
        && jti.len() <= MAX_JTI_LEN
        && jti
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl PostgresStore {
    /// Records that `token` is revoked until it expires, and announces it on the store's
    /// channel (`token:<exp>:<jti>`) when the transaction commits; rows of tokens expired
    /// by now are deleted in the same transaction. Revoking a token twice is no error.
    pub async fn revoke_token(&self, token: &RevokedToken) -> Result<(), BackendError> {
        if !valid_jti(&token.jti) {
            return Err(BackendError::new(
                "a token id is 1 to 128 Base64URL characters",
            ));
        }
        let now = self.clock.now();
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if token.expires_at > now {
            sqlx::query(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(&token.jti)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            let payload = format!("token:{}:{}", token.expires_at.unix_timestamp(), token.jti);
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&*self.channel)
                .bind(payload)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// The revoked tokens that have not expired yet.
    pub async fn revoked_tokens(&self) -> Result<Vec<RevokedToken>, BackendError> {
        let rows = sqlx::query("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > $1")
            .bind(self.clock.now())
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(RevokedToken {
                    jti: row.try_get("jti").map_err(unavailable)?,
                    expires_at: row.try_get("expires_at").map_err(unavailable)?,
                })
            })
            .collect()
    }

    /// Whether the token `jti` is revoked (one primary-key probe).
    pub async fn is_token_revoked(&self, jti: &str) -> Result<bool, BackendError> {
        let found: Option<OffsetDateTime> =
            sqlx::query_scalar("SELECT expires_at FROM revoked_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(found.is_some())
    }

    /// The store's clock, which decides which revocations have expired.
    pub(crate) fn clock_handle(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_are_base64url_and_bounded() {
        assert!(valid_jti("AbC-_9"));
        assert!(valid_jti(&"a".repeat(MAX_JTI_LEN)));
        for bad in ["", "a b", "a:b", "é", &"a".repeat(MAX_JTI_LEN + 1)] {
            assert!(!valid_jti(bad), "{bad}");
        }
    }
}
