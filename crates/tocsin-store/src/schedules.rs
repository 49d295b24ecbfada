//! On-call schedules and their overrides: stored as written (the `ScheduleParts`
//! wire form), checked on every write (the schedule parses, every user named
//! exists and is active), each change an event in the same transaction. Who is on
//! call is computed from them by `tocsin_core::schedule`.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tocsin_core::schedule::{LayerParts, Override, Schedule, ScheduleParts};
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::error::unique;
use crate::events::{audit, Actor};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

const COLUMNS: &str = "id, name, description, time_zone, layers, created_at, updated_at";
const OVERRIDE_COLUMNS: &str =
    "id, schedule_id, user_id, starts_at, ends_at, created_by, created_at";

/// A stored on-call schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredSchedule {
    /// Schedule id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// IANA time zone the handoffs and restrictions are in.
    pub time_zone: String,
    /// Layers, lowest precedence first.
    pub layers: Vec<LayerParts>,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl StoredSchedule {
    /// The zone and layers as written.
    pub fn parts(&self) -> ScheduleParts {
        ScheduleParts {
            time_zone: self.time_zone.clone(),
            layers: self.layers.clone(),
        }
    }

    /// The schedule for computing shifts (stored schedules were valid when written).
    pub fn schedule(&self) -> Result<Schedule, Invalid> {
        self.parts().parse_stored()
    }
}

/// A user covering part of a schedule, above every layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleOverride {
    /// Override id.
    pub id: i64,
    /// The schedule it is on.
    pub schedule_id: i64,
    /// Who is on call.
    pub user_id: i64,
    /// Start (inclusive).
    pub starts_at: chrono::DateTime<chrono::Utc>,
    /// End (exclusive).
    pub ends_at: chrono::DateTime<chrono::Utc>,
    /// Who arranged it (none for Tocsin itself).
    pub created_by: Option<i64>,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl ScheduleOverride {
    /// The override for computing shifts.
    pub fn as_override(&self) -> Override {
        Override {
            user_id: self.user_id,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
        }
    }
}

/// Changes to a schedule; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct ScheduleChanges {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New time zone.
    pub time_zone: Option<String>,
    /// New layers, replacing the old ones whole.
    pub layers: Option<Vec<LayerParts>>,
}

fn schedule(r: &sqlx::any::AnyRow) -> Result<StoredSchedule, StoreError> {
    let layers: String = r.try_get("layers")?;
    Ok(StoredSchedule {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        time_zone: r.try_get("time_zone")?,
        layers: serde_json::from_str(&layers).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        created_at: from_millis(r.try_get("created_at")?),
        updated_at: from_millis(r.try_get("updated_at")?),
    })
}

fn schedule_override(r: &sqlx::any::AnyRow) -> Result<ScheduleOverride, StoreError> {
    Ok(ScheduleOverride {
        id: r.try_get("id")?,
        schedule_id: r.try_get("schedule_id")?,
        user_id: r.try_get("user_id")?,
        starts_at: from_millis(r.try_get("starts_at")?),
        ends_at: from_millis(r.try_get("ends_at")?),
        created_by: r.try_get("created_by")?,
        created_at: from_millis(r.try_get("created_at")?),
    })
}

fn layers_json(parts: &ScheduleParts) -> String {
    serde_json::to_string(&parts.layers).expect("layers serialize")
}

impl Store {
    /// Refuses a user that does not exist or is deactivated, naming `field`.
    pub(crate) async fn check_on_call_user(
        &self,
        w: &mut WriteTx,
        field: &str,
        user_id: i64,
    ) -> Result<(), StoreError> {
        // Shared-locked on PostgreSQL: a deactivation under way (which locks the
        // row) either finishes first and is seen, or waits and sees this write.
        let share = match self.backend {
            crate::Backend::Sqlite => "",
            crate::Backend::Postgres => " FOR SHARE",
        };
        let active: Option<i64> =
            sqlx::query_scalar(&format!("SELECT active FROM users WHERE id = $1{share}"))
                .bind(user_id)
                .fetch_optional(&mut *w.tx)
                .await?;
        match active {
            None => Err(Invalid::new(field, format!("no user {user_id}")).into()),
            Some(0) => Err(Invalid::new(field, format!("user {user_id} is deactivated")).into()),
            Some(_) => Ok(()),
        }
    }

    /// Parses the parts and checks every user in every layer.
    async fn check_parts(&self, w: &mut WriteTx, parts: &ScheduleParts) -> Result<(), StoreError> {
        parts.parse()?;
        for (i, l) in parts.layers.iter().enumerate() {
            for (j, u) in l.users.iter().enumerate() {
                self.check_on_call_user(w, &format!("layers[{i}].users[{j}]"), *u)
                    .await?;
            }
        }
        Ok(())
    }

    /// Creates a schedule; the parts must parse and name only active users.
    pub async fn create_schedule(
        &self,
        name: &str,
        description: &str,
        parts: &ScheduleParts,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StoredSchedule, StoreError> {
        let mut w = self.write().await?;
        self.check_parts(&mut w, parts).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO schedules (name, description, time_zone, layers, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(description)
        .bind(&parts.time_zone)
        .bind(layers_json(parts))
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(unique("name", "the schedule name"))?;
        let record = schedule(&row)?;
        self.arm_handoff(&mut w, record.id, now).await?;
        audit(
            &mut w,
            now,
            actor,
            "schedule",
            record.id,
            "schedule.created",
            json!({ "schedule": record }),
        )
        .await?;
        w.commit().await?;
        Ok(record)
    }

    /// Reads one schedule.
    pub async fn schedule(&self, id: i64) -> Result<StoredSchedule, StoreError> {
        let row = self.row_by_id(COLUMNS, "schedules", id, "schedule").await?;
        schedule(&row)
    }

    /// One schedule, read inside the caller's transaction (no second pooled
    /// connection while this one is held).
    pub(crate) async fn schedule_in(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<StoredSchedule, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM schedules WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *w.tx)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("schedule {id}")))?;
        schedule(&row)
    }

    /// All schedules, by name.
    pub async fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM schedules ORDER BY name, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule).collect()
    }

    pub(crate) async fn lock_schedule(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<StoredSchedule, StoreError> {
        let row = self
            .lock_row_by_id(w, COLUMNS, "schedules", id, "schedule")
            .await?;
        schedule(&row)
    }

    /// Renames, redescribes or replaces the zone and layers of a schedule.
    pub async fn update_schedule(
        &self,
        id: i64,
        c: &ScheduleChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StoredSchedule, StoreError> {
        let mut w = self.write().await?;
        let old = self.lock_schedule(&mut w, id).await?;
        // Merged under the row lock, so two edits of different parts cannot
        // combine into a schedule neither checked.
        let parts = ScheduleParts {
            time_zone: c.time_zone.clone().unwrap_or_else(|| old.time_zone.clone()),
            layers: c.layers.clone().unwrap_or_else(|| old.layers.clone()),
        };
        if c.time_zone.is_some() || c.layers.is_some() {
            self.check_parts(&mut w, &parts).await?;
        }
        let row = sqlx::query(&format!(
            "UPDATE schedules SET name = $1, description = $2, time_zone = $3, layers = $4, updated_at = $5 \
             WHERE id = $6 RETURNING {COLUMNS}"
        ))
        .bind(c.name.as_deref().unwrap_or(&old.name))
        .bind(c.description.as_deref().unwrap_or(&old.description))
        .bind(&parts.time_zone)
        .bind(layers_json(&parts))
        .bind(to_millis(now))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(unique("name", "the schedule name"))?;
        let new = schedule(&row)?;
        self.arm_handoff(&mut w, id, now).await?;
        audit(
            &mut w,
            now,
            actor,
            "schedule",
            id,
            "schedule.updated",
            json!({ "from": old, "to": new }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a schedule, its overrides and its shift-swap requests.
    pub async fn delete_schedule(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        self.lock_policies(&mut w).await?;
        let old = self.lock_schedule(&mut w, id).await?;
        let policies = self
            .policies_naming(&mut w, tocsin_core::escalation::Target::Schedule(id))
            .await?;
        if !policies.is_empty() {
            return Err(StoreError::conflict(
                "id",
                format!("schedule {id} is named by escalation policy(ies) {policies:?}; change those first"),
            ));
        }
        let overrides: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schedule_overrides WHERE schedule_id = $1")
                .bind(id)
                .fetch_one(&mut *w.tx)
                .await?;
        sqlx::query("DELETE FROM schedule_overrides WHERE schedule_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        self.disarm_handoff(&mut w, id).await?;
        let swap_requests = sqlx::query("DELETE FROM shift_swap_requests WHERE schedule_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        crate::events::delete_audited(
            w,
            "schedules",
            "schedule",
            id,
            actor,
            now,
            json!({ "schedule": old, "overrides_deleted": overrides,
                "swap_requests_deleted": swap_requests }),
        )
        .await
    }

    /// Adds an override: `user_id` covers `[starts_at, ends_at)` on the schedule.
    pub async fn create_override(
        &self,
        schedule_id: i64,
        user_id: i64,
        starts_at: Timestamp,
        ends_at: Timestamp,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<ScheduleOverride, StoreError> {
        if ends_at <= starts_at {
            return Err(Invalid::new("ends_at", "must be after starts_at").into());
        }
        let mut w = self.write().await?;
        self.lock_schedule(&mut w, schedule_id).await?;
        let record = self
            .insert_override(
                &mut w,
                schedule_id,
                user_id,
                (starts_at, ends_at),
                actor,
                now,
                None,
            )
            .await?;
        w.commit().await?;
        Ok(record)
    }

    /// Inserts an override and its event inside the caller's transaction, which has
    /// locked the schedule and checked the range. `swap_request_id` names the
    /// shift-swap request whose acceptance arranged it, in the event.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_override(
        &self,
        w: &mut WriteTx,
        schedule_id: i64,
        user_id: i64,
        (starts_at, ends_at): (Timestamp, Timestamp),
        actor: &Actor,
        now: Timestamp,
        swap_request_id: Option<i64>,
    ) -> Result<ScheduleOverride, StoreError> {
        self.check_on_call_user(w, "user_id", user_id).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO schedule_overrides (schedule_id, user_id, starts_at, ends_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {OVERRIDE_COLUMNS}"
        ))
        .bind(schedule_id)
        .bind(user_id)
        .bind(to_millis(starts_at))
        .bind(to_millis(ends_at))
        .bind(actor.user_id)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let record = schedule_override(&row)?;
        self.arm_handoff(w, schedule_id, now).await?;
        let mut data = json!({ "override": record });
        if let Some(id) = swap_request_id {
            data["swap_request_id"] = json!(id);
        }
        audit(
            w,
            now,
            actor,
            "schedule_override",
            record.id,
            "schedule_override.created",
            data,
        )
        .await?;
        Ok(record)
    }

    /// The overrides of a schedule overlapping `[from, to)` as the caller's
    /// transaction sees them, oldest first.
    pub(crate) async fn overrides_in(
        &self,
        w: &mut WriteTx,
        schedule_id: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ScheduleOverride>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OVERRIDE_COLUMNS} FROM schedule_overrides \
             WHERE schedule_id = $1 AND ends_at > $2 AND starts_at < $3 ORDER BY id"
        ))
        .bind(schedule_id)
        .bind(to_millis(from))
        .bind(to_millis(to))
        .fetch_all(&mut *w.tx)
        .await?;
        rows.iter().map(schedule_override).collect()
    }

    /// A schedule's overrides that overlap `[from, to)`, oldest first (the order
    /// in which later ones win).
    pub async fn overrides(
        &self,
        schedule_id: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ScheduleOverride>, StoreError> {
        self.schedule(schedule_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {OVERRIDE_COLUMNS} FROM schedule_overrides \
             WHERE schedule_id = $1 AND ends_at > $2 AND starts_at < $3 ORDER BY id"
        ))
        .bind(schedule_id)
        .bind(to_millis(from))
        .bind(to_millis(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule_override).collect()
    }

    /// Deletes an override of a schedule.
    pub async fn delete_override(
        &self,
        schedule_id: i64,
        override_id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "SELECT {OVERRIDE_COLUMNS} FROM schedule_overrides WHERE id = $1 AND schedule_id = $2{}",
            self.for_update()
        ))
        .bind(override_id)
        .bind(schedule_id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| {
            StoreError::not_found(format!("override {override_id} of schedule {schedule_id}"))
        })?;
        let old = schedule_override(&row)?;
        self.arm_handoff(&mut w, schedule_id, now).await?;
        crate::events::delete_audited(
            w,
            "schedule_overrides",
            "schedule_override",
            override_id,
            actor,
            now,
            json!({ "override": old }),
        )
        .await
    }
}
