//! Workflow definitions: create, edit (each edit a new version), delete, read.
//! Saving one bumps the `workflows` counter and tells other nodes, so every
//! node's set of queued event kinds follows; it also arms the workflow's timers.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::workflow::{Definition, Trigger};
use utoipa::ToSchema;

use super::{trigger_kind, WORKFLOWS_CHANNEL};
use crate::events::{audit, Actor};
use crate::tx::WriteTx;
use crate::{Backend, Store, StoreError};

/// A workflow as listed: its current version's name, trigger and state.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WorkflowRecord {
    /// Workflow id.
    pub id: i64,
    /// Name (from the current version).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Whether its trigger starts runs.
    pub enabled: bool,
    /// The trigger's kind: incident_declared, incident_changed, alert_fired,
    /// alert_resolved, incident_idle, schedule or manual.
    pub trigger: String,
    /// The current version's number (1 for the first).
    pub version: i64,
    /// The current version's id (runs record it).
    pub version_id: i64,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was last edited.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// One version of a workflow: the YAML as written.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WorkflowVersion {
    /// Version id.
    pub id: i64,
    /// The workflow.
    pub workflow_id: i64,
    /// Its number, from 1.
    pub version: i64,
    /// The definition as written (YAML).
    pub source: String,
    /// Who saved it.
    pub created_by: Option<i64>,
    /// When.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const COLUMNS: &str = "w.id, w.enabled, w.trigger_kind, w.version, w.current_version_id, \
     w.created_at, w.updated_at, v.source";

impl Store {
    fn record(&self, r: &sqlx::any::AnyRow) -> Result<WorkflowRecord, StoreError> {
        let version_id: i64 = r.try_get("current_version_id")?;
        let source: String = r.try_get("source")?;
        // Names and descriptions live in the YAML; a version that no longer
        // parses (a newer node's syntax) still lists, by id.
        let parsed = tocsin_core::workflow::parse(&source).ok();
        let id: i64 = r.try_get("id")?;
        Ok(WorkflowRecord {
            id,
            name: parsed
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_else(|| format!("workflow {id}")),
            description: parsed.and_then(|d| d.description),
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            trigger: r.try_get("trigger_kind")?,
            version: r.try_get("version")?,
            version_id,
            created_at: from_millis(r.try_get("created_at")?),
            updated_at: from_millis(r.try_get("updated_at")?),
        })
    }

    /// Stores a new workflow from its checked definition and source.
    pub async fn create_workflow(
        &self,
        source: &str,
        def: &Definition,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<WorkflowRecord, StoreError> {
        let mut w = self.write().await?;
        self.name_free(&mut w, &def.name, None).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO workflows (name, enabled, trigger_kind, version, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4) RETURNING id",
        )
        .bind(&def.name)
        .bind(def.enabled as i64)
        .bind(trigger_kind(&def.trigger))
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        self.save_version(&mut w, id, source, def, actor, now, "workflow.created")
            .await?;
        w.commit().await?;
        self.refresh_workflow_triggers().await?;
        self.workflow(id).await
    }

    /// Saves a new version of workflow `id`; runs under way keep theirs.
    pub async fn update_workflow(
        &self,
        id: i64,
        source: &str,
        def: &Definition,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<WorkflowRecord, StoreError> {
        let mut w = self.write().await?;
        self.lock_workflow(&mut w, id).await?;
        self.name_free(&mut w, &def.name, Some(id)).await?;
        sqlx::query(
            "UPDATE workflows SET name = $1, enabled = $2, trigger_kind = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&def.name)
        .bind(def.enabled as i64)
        .bind(trigger_kind(&def.trigger))
        .bind(to_millis(now))
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        self.save_version(&mut w, id, source, def, actor, now, "workflow.updated")
            .await?;
        w.commit().await?;
        self.refresh_workflow_triggers().await?;
        self.workflow(id).await
    }

    /// Deletes a workflow: no trigger starts it again, its name is free, and
    /// its versions and runs stay readable. Runs under way go on.
    pub async fn delete_workflow(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let name: String = self.lock_workflow(&mut w, id).await?.try_get("name")?;
        sqlx::query(
            "UPDATE workflows SET deleted_at = $1, enabled = 0, updated_at = $1 WHERE id = $2",
        )
        .bind(to_millis(now))
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        self.clear_workflow_timers(&mut w, id).await?;
        self.workflows_changed(&mut w).await?;
        audit(
            &mut w,
            now,
            actor,
            "workflow",
            id,
            "workflow.deleted",
            json!({ "name": name }),
        )
        .await?;
        w.commit().await?;
        self.refresh_workflow_triggers().await
    }

    /// Every workflow not deleted, by name.
    pub async fn workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM workflows w JOIN workflow_versions v ON v.id = w.current_version_id \
             WHERE w.deleted_at IS NULL ORDER BY w.name, w.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.record(r)).collect()
    }

    /// One workflow (not deleted).
    pub async fn workflow(&self, id: i64) -> Result<WorkflowRecord, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM workflows w JOIN workflow_versions v ON v.id = w.current_version_id \
             WHERE w.id = $1 AND w.deleted_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("workflow {id}")))?;
        self.record(&row)
    }

    /// Every version of a workflow, newest first (also of a deleted one).
    pub async fn workflow_versions(&self, id: i64) -> Result<Vec<WorkflowVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, workflow_id, version, source, created_by, created_at FROM workflow_versions \
             WHERE workflow_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Err(StoreError::not_found(format!("workflow {id}")));
        }
        rows.iter()
            .map(|r| {
                Ok(WorkflowVersion {
                    id: r.try_get("id")?,
                    workflow_id: r.try_get("workflow_id")?,
                    version: r.try_get("version")?,
                    source: r.try_get("source")?,
                    created_by: r.try_get("created_by")?,
                    created_at: from_millis(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// The current version's source of a workflow (not deleted).
    pub async fn workflow_source(&self, id: i64) -> Result<(WorkflowRecord, String), StoreError> {
        let rec = self.workflow(id).await?;
        let source: String =
            sqlx::query_scalar("SELECT source FROM workflow_versions WHERE id = $1")
                .bind(rec.version_id)
                .fetch_one(&self.pool)
                .await?;
        Ok((rec, source))
    }

    pub(crate) async fn lock_workflow(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<sqlx::any::AnyRow, StoreError> {
        sqlx::query(&format!(
            "SELECT id, name, enabled, trigger_kind, current_version_id FROM workflows \
             WHERE id = $1 AND deleted_at IS NULL{}",
            self.for_update()
        ))
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("workflow {id}")))
    }

    async fn name_free(
        &self,
        w: &mut WriteTx,
        name: &str,
        except: Option<i64>,
    ) -> Result<(), StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM workflows WHERE name = $1 AND deleted_at IS NULL AND id <> $2",
        )
        .bind(name)
        .bind(except.unwrap_or(0))
        .fetch_one(&mut *w.tx)
        .await?;
        if n > 0 {
            return Err(StoreError::conflict(
                "name",
                format!("a workflow named `{name}` already exists"),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn save_version(
        &self,
        w: &mut WriteTx,
        id: i64,
        source: &str,
        def: &Definition,
        actor: &Actor,
        now: Timestamp,
        kind: &str,
    ) -> Result<(), StoreError> {
        let version: i64 = sqlx::query_scalar(
            "UPDATE workflows SET version = version + 1 WHERE id = $1 RETURNING version",
        )
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        let version_id: i64 = sqlx::query_scalar(
            "INSERT INTO workflow_versions (workflow_id, version, source, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(id)
        .bind(version)
        .bind(source)
        .bind(actor.user_id)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        sqlx::query("UPDATE workflows SET current_version_id = $1 WHERE id = $2")
            .bind(version_id)
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        self.clear_workflow_timers(w, id).await?;
        if def.enabled {
            match &def.trigger {
                Trigger::Schedule(_) => self.arm_schedule(w, id, def, now).await?,
                Trigger::IncidentIdle { .. } => self.arm_idle_for_open(w, id, def, now).await?,
                _ => {}
            }
        }
        self.workflows_changed(w).await?;
        audit(
            w,
            now,
            actor,
            "workflow",
            id,
            kind,
            json!({ "name": def.name, "version": version, "version_id": version_id,
                    "enabled": def.enabled, "trigger": trigger_kind(&def.trigger) }),
        )
        .await?;
        Ok(())
    }

    // Every node re-reads its trigger kinds: this one right after the commit,
    // others on the notice (PostgreSQL) or their next look at the counter.
    async fn workflows_changed(&self, w: &mut WriteTx) -> Result<(), StoreError> {
        sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'workflows'")
            .execute(&mut *w.tx)
            .await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WORKFLOWS_CHANNEL)
                .execute(&mut *w.tx)
                .await?;
        }
        Ok(())
    }
}
