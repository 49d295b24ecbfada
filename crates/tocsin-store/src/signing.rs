//! Signing keys: one random key per purpose (action links, status-page
//! subscriber links), shared by every node through `signing_keys`, created on
//! first use.

use rand::RngCore;
use serde_json::json;
use tocsin_core::time::{to_millis, Timestamp};

use crate::events::{audit, Actor};
use crate::{Store, StoreError};

impl Store {
    /// The signing key for `purpose`, if one was ever created (read-only: checking a
    /// signed link never writes).
    pub(crate) async fn signing_key(&self, purpose: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let secret: Option<String> =
            sqlx::query_scalar("SELECT secret FROM signing_keys WHERE purpose = $1")
                .bind(purpose)
                .fetch_optional(&self.pool)
                .await?;
        Ok(secret.and_then(|s| hex::decode(s).ok()))
    }

    /// The signing key, created (random, 32 bytes) on first use. Nodes racing to
    /// create it all end up with the one row that won.
    pub(crate) async fn signing_key_or_create(
        &self,
        purpose: &str,
        now: Timestamp,
    ) -> Result<Vec<u8>, StoreError> {
        if let Some(k) = self.signing_key(purpose).await? {
            return Ok(k);
        }
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let mut w = self.write().await?;
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO signing_keys (purpose, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (purpose) DO NOTHING RETURNING id",
        )
        .bind(purpose)
        .bind(hex::encode(secret))
        .bind(to_millis(now))
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some(id) = created {
            audit(
                &mut w,
                now,
                &Actor::system(),
                "signing_key",
                id,
                "signing_key.created",
                json!({ "purpose": purpose }),
            )
            .await?;
        }
        let stored: String =
            sqlx::query_scalar("SELECT secret FROM signing_keys WHERE purpose = $1")
                .bind(purpose)
                .fetch_one(&mut *w.tx)
                .await?;
        w.commit().await?;
        hex::decode(stored).map_err(|e| StoreError::Config(format!("unreadable signing key: {e}")))
    }
}
