//! API tokens and integration keys: random secrets shown once, stored as SHA-256.
//!
//! The secrets carry 190+ bits of randomness, so a fast hash is enough: there is
//! nothing to brute-force, and lookups stay one indexed query per request.

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tocsin_core::auth::Role;
use tocsin_core::model::{ApiToken, IntegrationKey, User};
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;

use crate::directory::NewUser;
use crate::events::{audit, Actor};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// A just-created record with its secret, which is never shown again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewSecret<T> {
    /// The stored record.
    #[serde(flatten)]
    pub record: T,
    /// The secret; store it now, it cannot be read back.
    pub secret: String,
}

/// Who a request acts as, once its token checks out.
#[derive(Debug, Clone)]
pub struct AuthPrincipal {
    /// The token's owner.
    pub user: User,
    /// The token used.
    pub token_id: i64,
    /// The token's role (never more than the owner's).
    pub role: Role,
}

const TOKEN_PREFIX: &str = "tcs_";
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// A random alphanumeric secret of `len` characters.
pub fn random_token(len: usize) -> String {
    random(len)
}

pub(crate) fn random(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// SHA-256 of a secret, hex.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

const TOKEN_COLUMNS: &str = "id, name, user_id, role, prefix, created_at, last_used_at, revoked_at";
pub(crate) const KEY_COLUMNS: &str = "id, service_id, name, prefix, created_at, revoked_at, config";

fn token(r: &sqlx::any::AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        user_id: r.try_get("user_id")?,
        role: Role::parse(&r.try_get::<String, _>("role")?).unwrap_or(Role::Viewer),
        prefix: r.try_get("prefix")?,
        created_at: from_millis(r.try_get("created_at")?),
        last_used_at: r
            .try_get::<Option<i64>, _>("last_used_at")?
            .map(from_millis),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_millis),
    })
}

pub(crate) fn key(r: &sqlx::any::AnyRow) -> Result<IntegrationKey, StoreError> {
    Ok(IntegrationKey {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        created_at: from_millis(r.try_get("created_at")?),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_millis),
        config: serde_json::from_str(&r.try_get::<String, _>("config")?)
            .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?,
    })
}

impl Store {
    /// Creates an API token for `user_id`; `role` defaults to, and may not exceed, the owner's.
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        role: Option<Role>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<NewSecret<ApiToken>, StoreError> {
        let owner = self.user(user_id).await?;
        let role = role.unwrap_or(owner.role);
        if !owner.role.allows(role) {
            return Err(Invalid::new(
                "role",
                format!(
                    "a token cannot have more rights than its owner ({})",
                    owner.role
                ),
            )
            .into());
        }
        let mut w = self.write().await?;
        let created = insert_token(&mut w, user_id, name, role, actor, now).await?;
        w.commit().await?;
        Ok(created)
    }

    /// Tokens of one user, or of everyone.
    pub async fn tokens(&self, user_id: Option<i64>) -> Result<Vec<ApiToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 OR $2 = 1 ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id.unwrap_or(0))
            .bind(i64::from(user_id.is_none()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token).collect()
    }

    /// Reads one token's record.
    pub async fn token(&self, id: i64) -> Result<ApiToken, StoreError> {
        let row = self
            .row_by_id(TOKEN_COLUMNS, "api_tokens", id, "token")
            .await?;
        token(&row)
    }

    /// Revokes a token; revoking twice is a no-op.
    pub async fn revoke_token(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<ApiToken, StoreError> {
        let t = self.token(id).await?;
        if t.revoked_at.is_some() {
            return Ok(t);
        }
        let mut w = self.write().await?;
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(to_millis(now))
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        audit(
            &mut w,
            now,
            actor,
            "token",
            id,
            "token.revoked",
            json!({ "token_id": id, "user_id": t.user_id }),
        )
        .await?;
        w.commit().await?;
        self.token(id).await
    }

    /// Finds the active user behind a token secret, if any.
    pub async fn authenticate(
        &self,
        secret: &str,
        now: Timestamp,
    ) -> Result<Option<AuthPrincipal>, StoreError> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.role AS token_role, t.last_used_at, u.id AS user_id \
             FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.active = 1",
        )
        .bind(hash_secret(secret))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token_id: i64 = row.try_get("token_id")?;
        let last_used: Option<i64> = row.try_get("last_used_at")?;
        let now_ms = to_millis(now);
        // Recorded to the minute, so reads do not turn into a write per request.
        if last_used.is_none_or(|l| now_ms - l >= LAST_USED_RESOLUTION_MS) {
            // Through the write queue like every write: on SQLite a write outside it
            // could invalidate a queued writer's snapshot (SQLITE_BUSY_SNAPSHOT).
            let mut w = self.write().await?;
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now_ms)
                .bind(token_id)
                .execute(&mut *w.tx)
                .await?;
            w.commit().await?;
        }
        let user = self.user(row.try_get("user_id")?).await?;
        let role = Role::parse(&row.try_get::<String, _>("token_role")?).unwrap_or(Role::Viewer);
        Ok(Some(AuthPrincipal {
            role: role.min(user.role),
            user,
            token_id,
        }))
    }

    /// On an instance without users, creates the first admin and a token for them.
    /// Returns `None` when users already exist.
    pub async fn bootstrap(
        &self,
        admin: &NewUser,
        now: Timestamp,
    ) -> Result<Option<(User, NewSecret<ApiToken>)>, StoreError> {
        if self.user_count().await? > 0 {
            return Ok(None);
        }
        let actor = Actor::system();
        let user = self.create_user(admin, &actor, now).await?;
        let token = self
            .create_token(user.id, "bootstrap", Some(Role::Admin), &actor, now)
            .await?;
        Ok(Some((user, token)))
    }

    /// Creates an integration key for a service.
    pub async fn create_integration_key(
        &self,
        service_id: i64,
        name: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<NewSecret<IntegrationKey>, StoreError> {
        self.service(service_id).await?;
        // 32 characters, the shape of a PagerDuty routing key, so tools that check it accept ours.
        let secret = random(32).to_lowercase();
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO integration_keys (service_id, name, key_hash, prefix, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {KEY_COLUMNS}"
        ))
        .bind(service_id)
        .bind(name)
        .bind(hash_secret(&secret))
        .bind(&secret[..6])
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let record = key(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "integration_key",
            record.id,
            "integration_key.created",
            json!({ "service_id": service_id, "name": name, "prefix": record.prefix }),
        )
        .await?;
        w.commit().await?;
        Ok(NewSecret { record, secret })
    }

    /// A service's integration keys.
    pub async fn integration_keys(
        &self,
        service_id: i64,
    ) -> Result<Vec<IntegrationKey>, StoreError> {
        self.service(service_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM integration_keys WHERE service_id = $1 ORDER BY id"
        ))
        .bind(service_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key).collect()
    }

    /// Revokes an integration key; revoking twice is a no-op.
    pub async fn revoke_integration_key(
        &self,
        service_id: i64,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<IntegrationKey, StoreError> {
        let keys = self.integration_keys(service_id).await?;
        let k = keys
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| StoreError::not_found(format!("integration key {id}")))?;
        if k.revoked_at.is_some() {
            return Ok(k);
        }
        let mut w = self.write().await?;
        sqlx::query("UPDATE integration_keys SET revoked_at = $1 WHERE id = $2")
            .bind(to_millis(now))
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        audit(
            &mut w,
            now,
            actor,
            "integration_key",
            id,
            "integration_key.revoked",
            json!({ "service_id": service_id, "prefix": k.prefix }),
        )
        .await?;
        w.commit().await?;
        // After the commit, so a lookup racing the revocation cannot cache the key again.
        self.forget_integration_key(id);
        Ok(IntegrationKey {
            revoked_at: Some(now),
            ..k
        })
    }

    /// Drops a key from this node's cache, after a change to it is committed.
    pub(crate) fn forget_integration_key(&self, id: i64) {
        if let Ok(mut cache) = self.key_cache.lock() {
            cache.retain(|_, (cached, _)| cached.id != id);
        }
    }

    /// The live integration key behind a secret, for inbound alert sources.
    ///
    /// Found keys are cached for [`KEY_CACHE_TTL`]: revoking on this node takes
    /// effect at once, on another node sharing PostgreSQL within the TTL.
    pub async fn integration_key_by_secret(
        &self,
        secret: &str,
    ) -> Result<Option<IntegrationKey>, StoreError> {
        let hash = hash_secret(secret);
        if let Some((k, at)) = self
            .key_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&hash).cloned())
        {
            if at.elapsed() < KEY_CACHE_TTL {
                return Ok(Some(k));
            }
        }
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM integration_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let found = row.as_ref().map(key).transpose()?;
        if let (Some(k), Ok(mut cache)) = (&found, self.key_cache.lock()) {
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert(hash, (k.clone(), std::time::Instant::now()));
        }
        Ok(found)
    }
}

/// How long a found integration key is trusted without asking the database again.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

async fn insert_token(
    w: &mut WriteTx,
    user_id: i64,
    name: &str,
    role: Role,
    actor: &Actor,
    now: Timestamp,
) -> Result<NewSecret<ApiToken>, StoreError> {
    let secret = format!("{TOKEN_PREFIX}{}", random(40));
    let row = sqlx::query(&format!(
        "INSERT INTO api_tokens (name, user_id, role, token_hash, prefix, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
    ))
    .bind(name)
    .bind(user_id)
    .bind(role.as_str())
    .bind(hash_secret(&secret))
    .bind(&secret[..TOKEN_PREFIX.len() + 6])
    .bind(to_millis(now))
    .fetch_one(&mut *w.tx)
    .await?;
    let record = token(&row)?;
    audit(
        w,
        now,
        actor,
        "token",
        record.id,
        "token.created",
        json!({ "token_id": record.id, "user_id": user_id, "name": name, "role": role }),
    )
    .await?;
    Ok(NewSecret { record, secret })
}
