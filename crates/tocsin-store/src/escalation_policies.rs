//! Escalation policies: stored as written (levels as the `EscalationPolicy` wire
//! form), checked on every write (`EscalationPolicy::validate` against the stored
//! policies, and every user, schedule, team and policy named exists), each change
//! an event in the same transaction. A service names at most one policy.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tocsin_core::escalation::{EscalationPolicy, Level, Target};
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::error::unique;
use crate::events::{audit, Actor};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

// Any constant works; it only has to differ from the store's other advisory locks.
const PG_POLICY_LOCK: i64 = 0x746f_6573_6361;

const COLUMNS: &str = "id, name, description, levels, repeat, created_at, updated_at";

/// A stored escalation policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredPolicy {
    /// Policy id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The levels, first paged first.
    pub levels: Vec<Level>,
    /// How many times the whole policy runs again after the first pass.
    pub repeat: u32,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl StoredPolicy {
    /// The levels and repeats, for the escalation logic.
    pub fn policy(&self) -> EscalationPolicy {
        EscalationPolicy {
            levels: self.levels.clone(),
            repeat: self.repeat,
        }
    }
}

/// Changes to a policy; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct PolicyChanges {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New levels, replacing the old ones whole.
    pub levels: Option<Vec<Level>>,
    /// New repeat count.
    pub repeat: Option<u32>,
}

fn policy_row(r: &sqlx::any::AnyRow) -> Result<StoredPolicy, StoreError> {
    let levels: String = r.try_get("levels")?;
    let repeat: i64 = r.try_get("repeat")?;
    Ok(StoredPolicy {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        levels: serde_json::from_str(&levels).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        repeat: u32::try_from(repeat).unwrap_or(0),
        created_at: from_millis(r.try_get("created_at")?),
        updated_at: from_millis(r.try_get("updated_at")?),
    })
}

fn levels_json(levels: &[Level]) -> String {
    serde_json::to_string(levels).expect("levels serialize")
}

impl Store {
    /// Serializes policy writes. On SQLite the write lock already does; on
    /// PostgreSQL two nodes could otherwise each add half of a hand-off loop, or
    /// hand off to a policy being deleted, each checking against the old rows.
    pub(crate) async fn lock_policies(&self, w: &mut WriteTx) -> Result<(), StoreError> {
        if self.backend == crate::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_POLICY_LOCK)
                .execute(&mut *w.tx)
                .await?;
        }
        Ok(())
    }

    /// The policies (ids) that name `target` at some level, read in the caller's
    /// transaction: what must change before the target can be deleted.
    pub(crate) async fn policies_naming(
        &self,
        w: &mut WriteTx,
        target: Target,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM escalation_policies ORDER BY id"
        ))
        .fetch_all(&mut *w.tx)
        .await?;
        let mut naming = Vec::new();
        for r in &rows {
            let p = policy_row(r)?;
            if p.levels.iter().any(|l| l.targets.contains(&target)) {
                naming.push(p.id);
            }
        }
        Ok(naming)
    }

    /// Validates a policy against the stored ones and checks every target exists.
    async fn check_policy(
        &self,
        w: &mut WriteTx,
        own_id: Option<i64>,
        policy: &EscalationPolicy,
    ) -> Result<(), StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM escalation_policies"))
            .fetch_all(&mut *w.tx)
            .await?;
        let stored: HashMap<i64, EscalationPolicy> = rows
            .iter()
            .map(|r| policy_row(r).map(|p| (p.id, p.policy())))
            .collect::<Result<_, _>>()?;
        policy.validate(own_id, &|id| stored.get(&id).cloned())?;
        for (i, level) in policy.levels.iter().enumerate() {
            for (j, target) in level.targets.iter().enumerate() {
                let (table, what, id) = match *target {
                    Target::User(id) => ("users", "user", id),
                    Target::Schedule(id) => ("schedules", "schedule", id),
                    Target::Team(id) => ("teams", "team", id),
                    // Known to exist: validate looked each hand-off up.
                    Target::Policy(_) => continue,
                };
                let n: i64 =
                    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE id = $1"))
                        .bind(id)
                        .fetch_one(&mut *w.tx)
                        .await?;
                if n == 0 {
                    return Err(Invalid::new(
                        format!("levels[{i}].targets[{j}]"),
                        format!("no {what} {id}"),
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Creates an escalation policy.
    pub async fn create_escalation_policy(
        &self,
        name: &str,
        description: &str,
        policy: &EscalationPolicy,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StoredPolicy, StoreError> {
        let mut w = self.write().await?;
        self.lock_policies(&mut w).await?;
        self.check_policy(&mut w, None, policy).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO escalation_policies (name, description, levels, repeat, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(description)
        .bind(levels_json(&policy.levels))
        .bind(i64::from(policy.repeat))
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(unique("name", "the escalation policy name"))?;
        let record = policy_row(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "escalation_policy",
            record.id,
            "escalation_policy.created",
            json!({ "escalation_policy": record }),
        )
        .await?;
        w.commit().await?;
        Ok(record)
    }

    /// Reads one escalation policy.
    pub async fn escalation_policy(&self, id: i64) -> Result<StoredPolicy, StoreError> {
        let row = self
            .row_by_id(COLUMNS, "escalation_policies", id, "escalation policy")
            .await?;
        policy_row(&row)
    }

    /// All escalation policies, by name.
    pub async fn escalation_policies(&self) -> Result<Vec<StoredPolicy>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM escalation_policies ORDER BY name, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(policy_row).collect()
    }

    /// One escalation policy, read inside the caller's transaction: a writer
    /// holding a connection must not wait for a second one from the pool.
    pub(crate) async fn escalation_policy_in(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<StoredPolicy, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM escalation_policies WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("escalation policy {id}")))?;
        policy_row(&row)
    }

    /// All escalation policies, read inside the caller's transaction.
    pub(crate) async fn escalation_policies_in(
        &self,
        w: &mut WriteTx,
    ) -> Result<Vec<StoredPolicy>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM escalation_policies ORDER BY name, id"
        ))
        .fetch_all(&mut *w.tx)
        .await?;
        rows.iter().map(policy_row).collect()
    }

    async fn lock_policy(&self, w: &mut WriteTx, id: i64) -> Result<StoredPolicy, StoreError> {
        let row = self
            .lock_row_by_id(w, COLUMNS, "escalation_policies", id, "escalation policy")
            .await?;
        policy_row(&row)
    }

    /// Renames, redescribes or replaces the levels or repeats of a policy.
    pub async fn update_escalation_policy(
        &self,
        id: i64,
        c: &PolicyChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StoredPolicy, StoreError> {
        let mut w = self.write().await?;
        self.lock_policies(&mut w).await?;
        let old = self.lock_policy(&mut w, id).await?;
        let policy = EscalationPolicy {
            levels: c.levels.clone().unwrap_or_else(|| old.levels.clone()),
            repeat: c.repeat.unwrap_or(old.repeat),
        };
        self.check_policy(&mut w, Some(id), &policy).await?;
        let row = sqlx::query(&format!(
            "UPDATE escalation_policies SET name = $1, description = $2, levels = $3, repeat = $4, \
             updated_at = $5 WHERE id = $6 RETURNING {COLUMNS}"
        ))
        .bind(c.name.as_deref().unwrap_or(&old.name))
        .bind(c.description.as_deref().unwrap_or(&old.description))
        .bind(levels_json(&policy.levels))
        .bind(i64::from(policy.repeat))
        .bind(to_millis(now))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(unique("name", "the escalation policy name"))?;
        let new = policy_row(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "escalation_policy",
            id,
            "escalation_policy.updated",
            json!({ "from": old, "to": new }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a policy; refused while a service uses it or another policy hands off to it.
    pub async fn delete_escalation_policy(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        self.lock_policies(&mut w).await?;
        let old = self.lock_policy(&mut w, id).await?;
        let services: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM services WHERE escalation_policy_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *w.tx)
        .await?;
        if !services.is_empty() {
            return Err(StoreError::conflict(
                "id",
                format!("escalation policy {id} is used by service(s) {services:?}; assign them another first"),
            ));
        }
        let handing_off = self.policies_naming(&mut w, Target::Policy(id)).await?;
        if !handing_off.is_empty() {
            return Err(StoreError::conflict(
                "id",
                format!("escalation policy {id} is handed off to by escalation policy(ies) {handing_off:?}; change those first"),
            ));
        }
        crate::events::delete_audited(
            w,
            "escalation_policies",
            "escalation_policy",
            id,
            actor,
            now,
            json!({ "escalation_policy": old }),
        )
        .await
    }

    /// The escalation policy a service uses, if any.
    pub async fn service_escalation_policy(
        &self,
        service_id: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row = self
            .row_by_id("escalation_policy_id", "services", service_id, "service")
            .await?;
        Ok(row.try_get("escalation_policy_id")?)
    }

    /// Assigns (or with `None` clears) a service's escalation policy; a no-op records nothing.
    pub async fn set_service_escalation_policy(
        &self,
        service_id: i64,
        policy_id: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        let mut w = self.write().await?;
        self.lock_policies(&mut w).await?;
        let old: Option<i64> = sqlx::query(&format!(
            "SELECT escalation_policy_id FROM services WHERE id = $1{}",
            self.for_update()
        ))
        .bind(service_id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("service {service_id}")))?
        .try_get("escalation_policy_id")?;
        if let Some(p) = policy_id {
            // Locked so a concurrent delete cannot leave the service naming nothing.
            self.lock_policy(&mut w, p).await.map_err(|e| match e {
                StoreError::NotFound { .. } => {
                    Invalid::new("escalation_policy_id", format!("no escalation policy {p}")).into()
                }
                e => e,
            })?;
        }
        if old == policy_id {
            return Ok(old);
        }
        sqlx::query("UPDATE services SET escalation_policy_id = $1, updated_at = $2 WHERE id = $3")
            .bind(policy_id)
            .bind(to_millis(now))
            .bind(service_id)
            .execute(&mut *w.tx)
            .await?;
        audit(
            &mut w,
            now,
            actor,
            "service",
            service_id,
            "service.escalation_policy_set",
            json!({ "from": old, "to": policy_id }),
        )
        .await?;
        w.commit().await?;
        Ok(policy_id)
    }
}
