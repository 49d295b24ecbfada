//! Web UI sessions: a random secret in an HttpOnly cookie, kept here only as its
//! SHA-256, with the session's CSRF token. Stored, not in memory, so any node
//! serves any signed-in browser and a restart signs nobody out.

use chrono::Duration;
use sqlx::Row;
use tocsin_core::time::{to_millis, Timestamp};

use crate::secrets::{hash_secret, random};
use crate::{AuthPrincipal, Store, StoreError};

/// A session ends this long after sign-in, however busy.
pub const SESSION_LIFETIME: Duration = Duration::days(14);
/// A session ends after this long unused.
pub const SESSION_IDLE: Duration = Duration::days(3);
/// `last_seen_at` is written at most this often, so page views stay reads.
const SEEN_RESOLUTION_MS: i64 = 60_000;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// Who signed in, with their role (`token_id` is 0: no API token is involved).
    pub principal: AuthPrincipal,
    /// The token every form of this session must post back.
    pub csrf: String,
}

impl Store {
    /// Signs `user_id` in: returns the cookie secret (shown to the browser only).
    pub async fn create_session(&self, user_id: i64, now: Timestamp) -> Result<String, StoreError> {
        let secret = format!("tws_{}", random(40));
        let now_ms = to_millis(now);
        let mut w = self.write().await?;
        // Expired sessions of anyone are swept on sign-in; nothing else needs them.
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now_ms)
            .bind(now_ms - SESSION_IDLE.num_milliseconds())
            .execute(&mut *w.tx)
            .await?;
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(hash_secret(&secret))
        .bind(user_id)
        .bind(random(32))
        .bind(now_ms)
        .bind(now_ms + SESSION_LIFETIME.num_milliseconds())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(secret)
    }

    /// The session a cookie secret names, if it is live and its user active.
    pub async fn session(
        &self,
        secret: &str,
        now: Timestamp,
    ) -> Result<Option<WebSession>, StoreError> {
        if !secret.starts_with("tws_") || secret.len() > 100 {
            return Ok(None);
        }
        let now_ms = to_millis(now);
        let row = sqlx::query(
            "SELECT s.id, s.user_id, s.csrf, s.last_seen_at FROM web_sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND u.active = 1",
        )
        .bind(hash_secret(secret))
        .bind(now_ms)
        .bind(now_ms - SESSION_IDLE.num_milliseconds())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row.try_get("id")?;
        let seen: i64 = row.try_get("last_seen_at")?;
        if now_ms - seen >= SEEN_RESOLUTION_MS {
            let mut w = self.write().await?;
            sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id = $2")
                .bind(now_ms)
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
            w.commit().await?;
        }
        let user = self.user(row.try_get("user_id")?).await?;
        Ok(Some(WebSession {
            principal: AuthPrincipal {
                role: user.role,
                user,
                token_id: 0,
            },
            csrf: row.try_get("csrf")?,
        }))
    }

    /// Signs a browser out (no error if it already was).
    pub async fn end_session(&self, secret: &str) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(hash_secret(secret))
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Ends every session of a user (password changed, user deactivated).
    pub async fn end_user_sessions(&self, user_id: i64) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }
}
