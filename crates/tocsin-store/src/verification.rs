//! Proving a contact method reaches its user, and test notifications.
//!
//! A code is six digits, sent through the outbox (reason `verification`) like
//! any notification, so the same delivery worker sends it. At rest the store
//! keeps SHA-256 over a per-code random salt and the code, so the code is not
//! lying in the table in plain sight; six digits can still be found from the
//! hash by trying them all, which is why a code lives minutes and allows a few
//! tries. The outbox row's `message` carries the code itself so delivery can
//! say it; delivery clears it once sent.
//!
//! Limits keep a code from being guessed or a phone from being flooded: a code
//! lives [`CODE_MINUTES`], allows [`MAX_ATTEMPTS`] wrong tries (then only a new
//! code helps), and a method gets at most one code, and one test notification,
//! per [`RESEND_SECS`].

use chrono::Duration;
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;

use crate::contact_methods::{method_row, StoredContactMethod, COLUMNS};
use crate::events::{audit, Actor};
use crate::jobs::{HandedNotification, OUTBOX_COLUMNS};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// How long a verification code works.
pub const CODE_MINUTES: i64 = 15;
/// Wrong codes accepted before a new code is needed.
pub const MAX_ATTEMPTS: i64 = 5;
/// Least time between two codes, or two test notifications, for one method.
pub const RESEND_SECS: i64 = 60;

const VERIFY_COLUMNS: &str =
    "verify_salt, verify_code_hash, verify_expires_at, verify_attempts, verify_sent_at, tested_at";

/// A verification code on its way: the outbox row carrying it and when it stops working.
#[derive(Debug, Clone)]
pub struct VerificationSent {
    /// The outbox row, committed as handed; its `message` holds the code.
    pub request: HandedNotification,
    /// When the code stops working.
    pub expires_at: Timestamp,
}

/// A six-digit verification code, as typed by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationCode(String);

impl VerificationCode {
    /// Parses `text` (surrounding spaces dropped) as six digits, naming `field` when it is not.
    pub fn parse(field: &str, text: &str) -> Result<VerificationCode, Invalid> {
        let t = text.trim();
        if t.len() != 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(
                field,
                "must be the 6-digit code sent to the contact method",
            ));
        }
        Ok(VerificationCode(t.to_string()))
    }

    fn random() -> VerificationCode {
        VerificationCode(format!("{:06}", rand::thread_rng().gen_range(0..1_000_000)))
    }
}

fn code_hash(salt: &str, code: &VerificationCode) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(code.0.as_bytes());
    hex::encode(h.finalize())
}

// Equal in time independent of where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

struct Pending {
    salt: Option<String>,
    hash: Option<String>,
    expires_at: Option<i64>,
    attempts: i64,
    sent_at: Option<i64>,
    tested_at: Option<i64>,
}

fn too_soon(code: &'static str, what: &str, last: i64, now: Timestamp) -> Option<StoreError> {
    let wait = (last + RESEND_SECS * 1000 - to_millis(now) + 999) / 1000;
    (wait > 0).then(|| StoreError::TooSoon {
        code,
        message: format!("{what} at most once every {RESEND_SECS} s; try again in {wait} s"),
        retry_after_secs: wait as u64,
    })
}

impl Store {
    // The method (locked) and its pending code.
    async fn lock_pending(
        &self,
        w: &mut WriteTx,
        user_id: i64,
        method_id: i64,
    ) -> Result<(StoredContactMethod, Pending), StoreError> {
        let row = self
            .lock_row_by_id(
                w,
                &format!("{COLUMNS}, {VERIFY_COLUMNS}"),
                "contact_methods",
                method_id,
                "contact method",
            )
            .await?;
        let m = method_row(&row)?;
        if m.user_id != user_id {
            return Err(StoreError::not_found(format!("contact method {method_id}")));
        }
        let p = Pending {
            salt: row.try_get("verify_salt")?,
            hash: row.try_get("verify_code_hash")?,
            expires_at: row.try_get("verify_expires_at")?,
            attempts: row.try_get("verify_attempts")?,
            sent_at: row.try_get("verify_sent_at")?,
            tested_at: row.try_get("tested_at")?,
        };
        Ok((m, p))
    }

    // One notification to one method into the outbox, handed at once (like handoff notices).
    async fn hand_to_method(
        w: &mut WriteTx,
        m: &StoredContactMethod,
        reason: &str,
        key: &str,
        message: &serde_json::Value,
        now: Timestamp,
    ) -> Result<HandedNotification, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO notification_requests (idempotency_key, reason, incident_id, user_id, \
             contact_method_id, contact_kind, address, message, send_at, status, handed_at, created_at, \
             delivery, attempts, next_attempt_at) \
             VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8, 'handed', $8, $8, 'pending', 0, $8) \
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(key)
        .bind(reason)
        .bind(m.user_id)
        .bind(m.id)
        .bind(m.kind.as_str())
        .bind(&m.address)
        .bind(message.to_string())
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        HandedNotification::from_row(&row)
    }

    /// Sends a new verification code to a method (replacing any earlier one):
    /// refused for a verified method (409) and more often than once a minute (429).
    pub async fn send_verification_code(
        &self,
        user_id: i64,
        method_id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<VerificationSent, StoreError> {
        let mut w = self.write().await?;
        let (m, p) = self.lock_pending(&mut w, user_id, method_id).await?;
        if m.verified {
            return Err(StoreError::conflict(
                "method_id",
                format!("contact method {method_id} is already verified"),
            ));
        }
        if let Some(e) = p
            .sent_at
            .and_then(|t| too_soon("verification_too_soon", "a code is sent", t, now))
        {
            return Err(e);
        }
        let code = VerificationCode::random();
        let mut salt = [0u8; 16];
        rand::thread_rng().fill(&mut salt);
        let salt = hex::encode(salt);
        let expires_at = now + Duration::minutes(CODE_MINUTES);
        sqlx::query(
            "UPDATE contact_methods SET verify_salt = $1, verify_code_hash = $2, \
             verify_expires_at = $3, verify_attempts = 0, verify_sent_at = $4 WHERE id = $5",
        )
        .bind(&salt)
        .bind(code_hash(&salt, &code))
        .bind(to_millis(expires_at))
        .bind(to_millis(now))
        .bind(method_id)
        .execute(&mut *w.tx)
        .await?;
        let message = json!({
            "code": code.0, "expires_minutes": CODE_MINUTES,
            "contact_method_id": m.id, "label": m.label,
        });
        // Each code is its own message; a new address may get one at the same instant.
        let key = format!("verification:{method_id}:{}", &salt[..16]);
        let request = Self::hand_to_method(&mut w, &m, "verification", &key, &message, now).await?;
        audit(
            &mut w,
            now,
            actor,
            "contact_method",
            method_id,
            "contact_method.verification_sent",
            json!({ "notification_request_id": request.id, "expires_at": expires_at }),
        )
        .await?;
        w.commit().await?;
        // Due now: the delivery worker claims it (delivery.rs).
        self.delivery_wake.notify_one();
        Ok(VerificationSent {
            request,
            expires_at,
        })
    }

    /// Checks a code sent to a method and marks the method verified when it is
    /// right. Wrong or expired: 400 naming `code`; after [`MAX_ATTEMPTS`] wrong
    /// tries: 429 until a new code is sent. A verified method is returned as is.
    pub async fn verify_contact_method(
        &self,
        user_id: i64,
        method_id: i64,
        code: &VerificationCode,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StoredContactMethod, StoreError> {
        let mut w = self.write().await?;
        let (m, p) = self.lock_pending(&mut w, user_id, method_id).await?;
        if m.verified {
            return Ok(m);
        }
        let (Some(salt), Some(hash), Some(expires_at)) = (p.salt, p.hash, p.expires_at) else {
            return Err(Invalid::new(
                "code",
                format!("no code was sent to contact method {method_id}; ask for one first"),
            )
            .into());
        };
        if p.attempts >= MAX_ATTEMPTS {
            return Err(StoreError::TooSoon {
                code: "verification_attempts_exhausted",
                message: format!(
                    "{MAX_ATTEMPTS} wrong codes were tried; ask for a new code for contact method {method_id}"
                ),
                retry_after_secs: 0,
            });
        }
        if to_millis(now) >= expires_at {
            return Err(Invalid::new(
                "code",
                format!(
                    "the code expired at {}; ask for a new one",
                    from_millis(expires_at).to_rfc3339()
                ),
            )
            .into());
        }
        if !same(&code_hash(&salt, code), &hash) {
            sqlx::query(
                "UPDATE contact_methods SET verify_attempts = verify_attempts + 1 WHERE id = $1",
            )
            .bind(method_id)
            .execute(&mut *w.tx)
            .await?;
            // The wrong try counts even though the request fails.
            w.commit().await?;
            // Due now: the delivery worker claims it (delivery.rs).
            self.delivery_wake.notify_one();
            let left = MAX_ATTEMPTS - p.attempts - 1;
            return Err(Invalid::new(
                "code",
                format!("wrong code; {left} tries left before a new code is needed"),
            )
            .into());
        }
        let row = sqlx::query(&format!(
            "UPDATE contact_methods SET verified = 1, verify_salt = NULL, verify_code_hash = NULL, \
             verify_expires_at = NULL, verify_attempts = 0, updated_at = $1 WHERE id = $2 \
             RETURNING {COLUMNS}"
        ))
        .bind(to_millis(now))
        .bind(method_id)
        .fetch_one(&mut *w.tx)
        .await?;
        let verified = method_row(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "contact_method",
            method_id,
            "contact_method.verified",
            json!({ "contact_method": verified }),
        )
        .await?;
        w.commit().await?;
        // Due now: the delivery worker claims it (delivery.rs).
        self.delivery_wake.notify_one();
        Ok(verified)
    }

    /// Queues a test notification to a verified method (400 naming `method_id`
    /// for an unverified one; 429 more often than once a minute).
    pub async fn send_test_notification(
        &self,
        user_id: i64,
        method_id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<HandedNotification, StoreError> {
        let mut w = self.write().await?;
        let (m, p) = self.lock_pending(&mut w, user_id, method_id).await?;
        if !m.verified {
            return Err(Invalid::new(
                "method_id",
                format!("contact method {method_id} is not verified; verify it before testing it"),
            )
            .into());
        }
        if let Some(e) = p
            .tested_at
            .and_then(|t| too_soon("test_too_soon", "a test notification is sent", t, now))
        {
            return Err(e);
        }
        sqlx::query("UPDATE contact_methods SET tested_at = $1 WHERE id = $2")
            .bind(to_millis(now))
            .bind(method_id)
            .execute(&mut *w.tx)
            .await?;
        let message = json!({ "contact_method_id": m.id, "label": m.label });
        let key = format!("test:{method_id}:{}", to_millis(now));
        let request = Self::hand_to_method(&mut w, &m, "test", &key, &message, now).await?;
        audit(
            &mut w,
            now,
            actor,
            "contact_method",
            method_id,
            "contact_method.tested",
            json!({ "notification_request_id": request.id }),
        )
        .await?;
        w.commit().await?;
        // Due now: the delivery worker claims it (delivery.rs).
        self.delivery_wake.notify_one();
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        assert!(VerificationCode::parse("code", " 012345 ").is_ok());
        for bad in ["12345", "1234567", "12345a", "", "١٢٣٤٥٦"] {
            let e = VerificationCode::parse("code", bad).unwrap_err();
            assert_eq!(e.field, "code", "{bad}");
        }
        for _ in 0..100 {
            let c = VerificationCode::random();
            assert!(VerificationCode::parse("code", &c.0).is_ok(), "{}", c.0);
        }
    }

    #[test]
    fn the_hash_depends_on_salt_and_code() {
        let c = VerificationCode::parse("code", "123456").unwrap();
        let d = VerificationCode::parse("code", "123457").unwrap();
        assert_eq!(code_hash("aa", &c), code_hash("aa", &c));
        assert_ne!(code_hash("aa", &c), code_hash("ab", &c));
        assert_ne!(code_hash("aa", &c), code_hash("aa", &d));
        assert!(!code_hash("aa", &c).contains("123456"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
