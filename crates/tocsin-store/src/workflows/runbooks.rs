//! Runbooks, as far as workflows need them: stored by name, and attached to an
//! incident with a copy of their text and empty progress. (Editing runbooks
//! and ticking their items is the runbooks API's, to come; the tables are here.)

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tocsin_core::time::{to_millis, Timestamp};
use tocsin_core::workflow::runbook::{self, Progress};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::events::{incident_event, Actor};
use crate::{Store, StoreError};

/// A runbook on an incident.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttachedRunbook {
    /// The runbook.
    pub runbook_id: i64,
    /// Its name.
    pub name: String,
    /// The incident.
    pub incident_id: i64,
    /// Checklist items.
    pub items: usize,
    /// Whether it was attached just now (false: it already was).
    pub attached_now: bool,
}

impl Store {
    /// Stores a runbook (markdown), checked by the core parser; returns its id.
    pub async fn create_runbook(
        &self,
        name: &str,
        source: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Invalid::new("name", "must be 1 to 200 characters").into());
        }
        runbook::parse(source)?;
        let mut w = self.write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO runbooks (name, source, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(name)
        .bind(source)
        .bind(actor.user_id)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(crate::error::unique("name", "that runbook name"))?;
        crate::events::audit(
            &mut w,
            now,
            actor,
            "runbook",
            id,
            "runbook.created",
            json!({ "name": name }),
        )
        .await?;
        w.commit().await?;
        Ok(id)
    }

    /// Whether a runbook with this name exists.
    pub async fn runbook_exists(&self, name: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runbooks WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Attaches the runbook named `name` to an incident (once: attaching it
    /// again changes nothing), with `runbook.attached` on the timeline.
    pub async fn attach_runbook(
        &self,
        incident_id: i64,
        name: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<AttachedRunbook, StoreError> {
        let mut w = self.write().await?;
        self.lock_incident(&mut w, incident_id).await?;
        let row = sqlx::query("SELECT id, source FROM runbooks WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("runbook `{name}`")))?;
        let (id, source): (i64, String) = (row.try_get("id")?, row.try_get("source")?);
        let parsed = runbook::parse(&source)?;
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM incident_runbooks WHERE incident_id = $1 AND runbook_id = $2",
        )
        .bind(incident_id)
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        let out = AttachedRunbook {
            runbook_id: id,
            name: name.to_string(),
            incident_id,
            items: parsed.items.len(),
            attached_now: exists == 0,
        };
        if exists > 0 {
            w.rollback().await?;
            return Ok(out);
        }
        let progress = serde_json::to_string(&Progress::new(&parsed)).unwrap_or_default();
        sqlx::query(
            "INSERT INTO incident_runbooks (incident_id, runbook_id, source, progress, attached_by, attached_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(incident_id)
        .bind(id)
        .bind(&source)
        .bind(progress)
        .bind(&actor.name)
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?;
        incident_event(
            &mut w,
            now,
            actor,
            incident_id,
            "runbook.attached",
            json!({ "runbook_id": id, "name": name, "title": parsed.title, "items": parsed.items.len() }),
        )
        .await?;
        w.commit().await?;
        Ok(out)
    }
}
