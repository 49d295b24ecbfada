//! Secrets steps read by name (`{{ secrets.JIRA_TOKEN }}`), sealed at rest.
//!
//! Each value is sealed with ChaCha20-Poly1305 (ring, already linked for TLS)
//! under a 32-byte key the operator configures, with a fresh random nonce,
//! and the secret's name as associated data, so a sealed value copied to
//! another name does not open. The API shows names, who set them and when;
//! values are opened only for the engine, just before a step executes.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::workflow::text::is_name;
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::events::{audit, Actor};
use crate::{Backend, Store, StoreError};

/// Longest secret value, bytes.
pub const MAX_SECRET: usize = 16 * 1024;

/// The key secrets are sealed with: 32 bytes, from `TOCSIN_SECRET_KEY`
/// (base64) or a key file. Never printed.
pub struct SecretKey(LessSafeKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<SecretKey, String> {
        if bytes.len() != 32 {
            return Err(format!(
                "a secret key is 32 bytes, not {} (generate one with `head -c 32 /dev/urandom | base64`)",
                bytes.len()
            ));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| "not a ChaCha20-Poly1305 key".to_string())?;
        Ok(SecretKey(LessSafeKey::new(key)))
    }

    /// A key from base64 text (standard alphabet; surrounding space ignored).
    pub fn from_base64(text: &str) -> Result<SecretKey, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "a secret key is 32 bytes in base64".to_string())?;
        SecretKey::from_bytes(&bytes)
    }

    /// A new random key, in base64, for a key file.
    pub fn generate_base64() -> Result<String, String> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "no randomness for a secret key".to_string())?;
        Ok(STANDARD.encode(bytes))
    }

    fn seal(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError::Config("no randomness for a nonce".into()))?;
        let mut data = value.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .map_err(|_| StoreError::Config("sealing a secret failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(STANDARD.encode(out))
    }

    fn open(&self, name: &str, sealed: &str) -> Result<String, StoreError> {
        let bad = || {
            StoreError::Config(format!(
                "secret `{name}` does not open with the configured key (was the key changed?)"
            ))
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| bad())?;
        if bytes.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut data = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut data)
            .map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
    }
}

/// A secret as the API shows it: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SecretRecord {
    /// Name, read in templates as `secrets.NAME`.
    pub name: String,
    /// Who created it.
    pub created_by: Option<i64>,
    /// When.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Who last set its value.
    pub updated_by: Option<i64>,
    /// When.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn record(r: &sqlx::any::AnyRow) -> Result<SecretRecord, StoreError> {
    Ok(SecretRecord {
        name: r.try_get("name")?,
        created_by: r.try_get("created_by")?,
        created_at: from_millis(r.try_get("created_at")?),
        updated_by: r.try_get("updated_by")?,
        updated_at: from_millis(r.try_get("updated_at")?),
    })
}

/// Checks a secret's name: letters, digits and `_`, as templates read it.
pub fn secret_name(field: &str, name: &str) -> Result<String, Invalid> {
    if !is_name(name) || name.len() > 100 {
        return Err(Invalid::new(
            field,
            format!("`{name}` is not a secret name: a letter or `_`, then letters, digits or `_` (at most 100)"),
        ));
    }
    Ok(name.to_string())
}

impl Store {
    fn secret_key(&self) -> Result<std::sync::Arc<SecretKey>, StoreError> {
        let key = self.workflows.key.read().ok().and_then(|k| k.clone());
        key.ok_or_else(|| {
            let how = match self.backend {
                Backend::Postgres => "every node must share it",
                Backend::Sqlite => "or let the embedded database's data directory hold one",
            };
            StoreError::conflict(
                "value",
                format!("no secret key is configured: set TOCSIN_SECRET_KEY (32 bytes, base64) or [workflows] secret_key_file ({how})"),
            )
        })
    }

    /// Creates (`create`) or replaces a secret's value. Creating an existing
    /// one, or replacing a missing one, is refused.
    pub async fn put_secret(
        &self,
        name: &str,
        value: &str,
        create: bool,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<SecretRecord, StoreError> {
        let name = secret_name("name", name)?;
        if value.is_empty() || value.len() > MAX_SECRET {
            return Err(Invalid::new("value", format!("must be 1 to {MAX_SECRET} bytes")).into());
        }
        let sealed = self.secret_key()?.seal(&name, value)?;
        let mut w = self.write().await?;
        let exists: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM workflow_secrets WHERE name = $1")
                .bind(&name)
                .fetch_one(&mut *w.tx)
                .await?;
        match (create, exists > 0) {
            (true, true) => {
                return Err(StoreError::conflict(
                    "name",
                    format!("a secret named `{name}` already exists; PUT its value to replace it"),
                ))
            }
            (false, false) => return Err(StoreError::not_found(format!("secret `{name}`"))),
            (true, false) => {
                sqlx::query(
                    "INSERT INTO workflow_secrets (name, sealed, created_by, created_at, updated_by, updated_at) \
                     VALUES ($1, $2, $3, $4, $3, $4)",
                )
                .bind(&name)
                .bind(&sealed)
                .bind(actor.user_id)
                .bind(to_millis(now))
                .execute(&mut *w.tx)
                .await?;
            }
            (false, true) => {
                sqlx::query(
                    "UPDATE workflow_secrets SET sealed = $1, updated_by = $2, updated_at = $3 WHERE name = $4",
                )
                .bind(&sealed)
                .bind(actor.user_id)
                .bind(to_millis(now))
                .bind(&name)
                .execute(&mut *w.tx)
                .await?;
            }
        }
        let kind = if create {
            "secret.created"
        } else {
            "secret.updated"
        };
        audit(
            &mut w,
            now,
            actor,
            "secret",
            0,
            kind,
            json!({ "name": name }),
        )
        .await?;
        w.commit().await?;
        self.secret(&name).await
    }

    /// Deletes a secret; workflows reading it fail at that step until it is back.
    pub async fn delete_secret(
        &self,
        name: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let n = sqlx::query("DELETE FROM workflow_secrets WHERE name = $1")
            .bind(name)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found(format!("secret `{name}`")));
        }
        audit(
            &mut w,
            now,
            actor,
            "secret",
            0,
            "secret.deleted",
            json!({ "name": name }),
        )
        .await?;
        w.commit().await
    }

    /// One secret's record (no value).
    pub async fn secret(&self, name: &str) -> Result<SecretRecord, StoreError> {
        let row = sqlx::query(
            "SELECT name, created_by, created_at, updated_by, updated_at FROM workflow_secrets WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("secret `{name}`")))?;
        record(&row)
    }

    /// Every secret's record, by name (no values).
    pub async fn secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, created_by, created_at, updated_by, updated_at FROM workflow_secrets ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// The values of the named secrets, for a step about to execute. A name
    /// with no secret is left out (the step renders it empty and fails, or the
    /// engine refuses it first).
    pub async fn secret_values(
        &self,
        names: impl IntoIterator<Item = &str>,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let mut out = BTreeMap::new();
        let mut key = None;
        for name in names {
            let sealed: Option<String> =
                sqlx::query_scalar("SELECT sealed FROM workflow_secrets WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
            let Some(sealed) = sealed else { continue };
            if key.is_none() {
                key = Some(self.secret_key()?);
            }
            let k = key.as_ref().expect("set above");
            out.insert(name.to_string(), k.open(name, &sealed)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_under_their_name_only() {
        let key = SecretKey::from_base64(&SecretKey::generate_base64().unwrap()).unwrap();
        let a = key.seal("A", "hunter2-value").unwrap();
        let b = key.seal("A", "hunter2-value").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("hunter2"));
        assert_eq!(key.open("A", &a).unwrap(), "hunter2-value");
        assert!(key.open("B", &a).is_err(), "bound to its name");
        let other = SecretKey::from_bytes(&[7u8; 32]).unwrap();
        assert!(other.open("A", &a).is_err());
        assert!(SecretKey::from_bytes(&[0u8; 16]).is_err());
        assert!(SecretKey::from_base64("not base64!").is_err());
        assert_eq!(format!("{key:?}"), "SecretKey(…)");
    }
}
