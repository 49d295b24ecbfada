//! A user's contact methods and notification setup (rules and working hours).
//!
//! The rules are stored whole as the JSON of `NotificationRule`s, in order (a
//! rule's index is part of a notification's idempotency key), and working hours
//! as the JSON of `WorkingHoursParts` or NULL; the escalation engine reads both
//! columns as they are. Every write locks the user's row first, so rules are
//! always checked against the methods that stay: a method a rule names cannot be
//! deleted, and a rule cannot name a method being deleted.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tocsin_core::escalation::{
    validate_rules, ContactAddress, ContactKind, ContactMethod, NotificationRule, WorkingHours,
    WorkingHoursParts, MAX_NOTIFICATION_RULES,
};
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::events::{audit, Actor};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

pub(crate) const COLUMNS: &str =
    "id, user_id, kind, address, label, verified, created_at, updated_at";

/// One way to reach a user, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoredContactMethod {
    /// Contact method id.
    pub id: i64,
    /// The user it reaches.
    pub user_id: i64,
    /// How it reaches them.
    pub kind: ContactKind,
    /// Where: email address, E.164 number, device token, chat handle or URL.
    pub address: String,
    /// What the user calls it, e.g. `Work email`.
    pub label: String,
    /// Whether the user proved it reaches them; unverified methods are never used.
    pub verified: bool,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl StoredContactMethod {
    /// The method as the escalation rules see it.
    pub fn method(&self) -> ContactMethod {
        ContactMethod {
            id: self.id,
            kind: self.kind,
            address: self.address.clone(),
            verified: self.verified,
        }
    }
}

/// Changes to a contact method; `None` keeps the value. The kind never changes.
#[derive(Debug, Clone, Default)]
pub struct ContactMethodChanges {
    /// New address, parsed as the method's kind.
    pub address: Option<ContactAddress>,
    /// New label.
    pub label: Option<String>,
    /// Set verified or not (an admin provisioning a method). Left out, a new
    /// address makes the method unverified and keeps it as it was otherwise.
    pub verified: Option<bool>,
}

/// A user's notification rules, in order, and working hours (none: any time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationSetup {
    /// The rules, in order.
    pub rules: Vec<NotificationRule>,
    /// When the user works; low-urgency notifications wait for these. Null: any time.
    pub working_hours: Option<WorkingHoursParts>,
}

pub(crate) fn method_row(r: &sqlx::any::AnyRow) -> Result<StoredContactMethod, StoreError> {
    let kind: String = r.try_get("kind")?;
    Ok(StoredContactMethod {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        kind: ContactKind::parse(&kind).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown contact method kind `{kind}`").into())
        })?,
        address: r.try_get("address")?,
        label: r.try_get("label")?,
        verified: r.try_get::<i64, _>("verified")? != 0,
        created_at: from_millis(r.try_get("created_at")?),
        updated_at: from_millis(r.try_get("updated_at")?),
    })
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

fn setup_row(r: &sqlx::any::AnyRow) -> Result<NotificationSetup, StoreError> {
    let rules: String = r.try_get("notification_rules")?;
    let hours: Option<String> = r.try_get("working_hours")?;
    Ok(NotificationSetup {
        rules: decode(&rules)?,
        working_hours: hours.as_deref().map(decode).transpose()?,
    })
}

// The rules (as `rules[i]`) that name a method: what must change before it goes.
fn naming(rules: &[NotificationRule], method_id: i64) -> Vec<String> {
    rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.contact_method_id == method_id)
        .map(|(i, _)| format!("rules[{i}]"))
        .collect()
}

impl Store {
    /// Locks the user's row for the rest of the transaction and reads their setup.
    async fn lock_user_setup(
        &self,
        w: &mut WriteTx,
        user_id: i64,
    ) -> Result<NotificationSetup, StoreError> {
        let row = self
            .lock_row_by_id(
                w,
                "notification_rules, working_hours",
                "users",
                user_id,
                "user",
            )
            .await?;
        setup_row(&row)
    }

    /// A method of the user, locked; a method of another user is not found.
    async fn lock_method(
        &self,
        w: &mut WriteTx,
        user_id: i64,
        method_id: i64,
    ) -> Result<StoredContactMethod, StoreError> {
        let m = method_row(
            &self
                .lock_row_by_id(w, COLUMNS, "contact_methods", method_id, "contact method")
                .await?,
        )?;
        if m.user_id != user_id {
            return Err(StoreError::not_found(format!("contact method {method_id}")));
        }
        Ok(m)
    }

    // The unique (user, kind, address) constraint, refused in words.
    fn duplicate(kind: ContactKind, address: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::conflict(
                "address",
                format!(
                    "the user already has the {} contact method {address}",
                    kind.as_str()
                ),
            ),
            _ => StoreError::Database(e),
        }
    }

    /// A user's contact methods, oldest first.
    pub async fn contact_methods(
        &self,
        user_id: i64,
    ) -> Result<Vec<StoredContactMethod>, StoreError> {
        self.row_by_id("id", "users", user_id, "user").await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM contact_methods WHERE user_id = $1 ORDER BY id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(method_row).collect()
    }

    /// Adds a contact method to a user: unverified, unless an admin provisions
    /// it as verified (`verified`); only verified methods are ever paged.
    pub async fn create_contact_method(
        &self,
        user_id: i64,
        address: &ContactAddress,
        label: &str,
        verified: bool,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StoredContactMethod, StoreError> {
        let mut w = self.write().await?;
        self.lock_user_setup(&mut w, user_id).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO contact_methods (user_id, kind, address, label, verified, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {COLUMNS}"
        ))
        .bind(user_id)
        .bind(address.kind().as_str())
        .bind(address.as_str())
        .bind(label)
        .bind(i64::from(verified))
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(Self::duplicate(address.kind(), address.as_str()))?;
        let created = method_row(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "contact_method",
            created.id,
            "contact_method.created",
            json!({ "contact_method": created }),
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// One contact method of the user; another user's is not found.
    pub async fn contact_method(
        &self,
        user_id: i64,
        method_id: i64,
    ) -> Result<StoredContactMethod, StoreError> {
        let m = method_row(
            &self
                .row_by_id(COLUMNS, "contact_methods", method_id, "contact method")
                .await?,
        )?;
        if m.user_id != user_id {
            return Err(StoreError::not_found(format!("contact method {method_id}")));
        }
        Ok(m)
    }

    /// Changes a method's address (same kind), label or verified flag; a new
    /// address is unverified (and any code sent to the old one void) unless
    /// `verified` says otherwise; a no-op records nothing.
    pub async fn update_contact_method(
        &self,
        user_id: i64,
        method_id: i64,
        c: &ContactMethodChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StoredContactMethod, StoreError> {
        let mut w = self.write().await?;
        self.lock_user_setup(&mut w, user_id).await?;
        let old = self.lock_method(&mut w, user_id, method_id).await?;
        if let Some(a) = &c.address {
            if a.kind() != old.kind {
                return Err(Invalid::new(
                    "address",
                    format!(
                        "contact method {method_id} is {}, not {}; add a new method to change the kind",
                        old.kind.as_str(),
                        a.kind().as_str()
                    ),
                )
                .into());
            }
        }
        let address = c
            .address
            .as_ref()
            .map_or(old.address.as_str(), |a| a.as_str());
        let label = c.label.as_deref().unwrap_or(&old.label);
        let moved = address != old.address;
        let verified = c.verified.unwrap_or(old.verified && !moved);
        if !moved && label == old.label && verified == old.verified {
            return Ok(old);
        }
        // A code sent to the old address must not verify the new one. The time it
        // was sent stays: moving the address is no way around one code a minute.
        let void_code = if moved {
            ", verify_salt = NULL, verify_code_hash = NULL, verify_expires_at = NULL, \
             verify_attempts = 0"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "UPDATE contact_methods SET address = $1, label = $2, verified = $3, updated_at = $4{void_code} \
             WHERE id = $5 RETURNING {COLUMNS}"
        ))
        .bind(address)
        .bind(label)
        .bind(i64::from(verified))
        .bind(to_millis(now))
        .bind(method_id)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(Self::duplicate(old.kind, address))?;
        let new = method_row(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "contact_method",
            method_id,
            "contact_method.updated",
            json!({ "from": old, "to": new }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a method; refused while a notification rule names it (409 naming the rules).
    pub async fn delete_contact_method(
        &self,
        user_id: i64,
        method_id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let setup = self.lock_user_setup(&mut w, user_id).await?;
        let old = self.lock_method(&mut w, user_id, method_id).await?;
        let rules = naming(&setup.rules, method_id);
        if !rules.is_empty() {
            return Err(StoreError::conflict(
                "method_id",
                format!(
                    "contact method {method_id} is used by notification rule(s) {}; change the rules first",
                    rules.join(", ")
                ),
            ));
        }
        crate::events::delete_audited(
            w,
            "contact_methods",
            "contact_method",
            method_id,
            actor,
            now,
            json!({ "contact_method": old }),
        )
        .await
    }

    /// A user's notification rules and working hours.
    pub async fn notification_setup(&self, user_id: i64) -> Result<NotificationSetup, StoreError> {
        let row = self
            .row_by_id(
                "notification_rules, working_hours",
                "users",
                user_id,
                "user",
            )
            .await?;
        setup_row(&row)
    }

    /// Replaces a user's rules and working hours (none: any time), checking each
    /// rule names one of the user's own methods; a no-op records nothing.
    pub async fn set_notification_setup(
        &self,
        user_id: i64,
        rules: &[NotificationRule],
        working_hours: Option<&WorkingHours>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<NotificationSetup, StoreError> {
        if rules.len() > MAX_NOTIFICATION_RULES {
            return Err(
                Invalid::new("rules", format!("at most {MAX_NOTIFICATION_RULES} rules")).into(),
            );
        }
        let mut w = self.write().await?;
        // Which channels handoff notifications use may change. The jobs before
        // the user's row: the order the job runner takes them in.
        self.arm_every_handoff(&mut w, now).await?;
        let old = self.lock_user_setup(&mut w, user_id).await?;
        let methods: Vec<ContactMethod> = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM contact_methods WHERE user_id = $1 ORDER BY id"
        ))
        .bind(user_id)
        .fetch_all(&mut *w.tx)
        .await?
        .iter()
        .map(|r| method_row(r).map(|m| m.method()))
        .collect::<Result<_, _>>()?;
        validate_rules(rules, &methods)?;
        let new = NotificationSetup {
            rules: rules.to_vec(),
            working_hours: working_hours.map(WorkingHours::parts),
        };
        if new == old {
            return Ok(old);
        }
        let hours = new
            .working_hours
            .as_ref()
            .map(|h| serde_json::to_string(h).expect("working hours serialize"));
        sqlx::query("UPDATE users SET notification_rules = $1, working_hours = $2 WHERE id = $3")
            .bind(serde_json::to_string(&new.rules).expect("rules serialize"))
            .bind(hours)
            .bind(user_id)
            .execute(&mut *w.tx)
            .await?;
        audit(
            &mut w,
            now,
            actor,
            "user",
            user_id,
            "user.notification_setup_set",
            json!({ "from": old, "to": new }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }
}
