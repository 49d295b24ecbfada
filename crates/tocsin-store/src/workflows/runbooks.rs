//! Runbooks, stored: markdown checklists saved by name, each save a version;
//! attached to incidents as a copy of the version of the day (edits never
//! change a checklist under way), by hand, by a workflow step, or by their
//! rules when an incident is declared or its services, type or severity
//! change. Ticking items and running their steps is in `runbook_progress`.

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::workflow::runbook::{self, AttachRules, Progress};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::events::{append, incident_event, Actor, NewEvent};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Longest runbook name.
pub const MAX_RUNBOOK_NAME: usize = 200;

/// A runbook on an incident, as a step attaching it reports.
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

/// A runbook as listed: its current version's name, title, rules and size.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RunbookRecord {
    /// Runbook id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The markdown's first `# ` heading.
    pub title: Option<String>,
    /// The current version's number (1 for the first).
    pub version: i64,
    /// When it attaches to incidents by itself (all lists empty: by hand only).
    #[schema(value_type = Object)]
    pub attach: AttachRules,
    /// Checklist items.
    pub items: usize,
    /// Items with a runnable step.
    pub steps: usize,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last saved.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// One saved version of a runbook.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RunbookVersion {
    /// Version id.
    pub id: i64,
    /// The runbook.
    pub runbook_id: i64,
    /// Its number, from 1.
    pub version: i64,
    /// The name it had.
    pub name: String,
    /// The markdown as saved.
    pub markdown: String,
    /// Who saved it.
    pub created_by: Option<i64>,
    /// When.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// How a runbook came onto an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachHow {
    /// Its rules matched the incident.
    Rule,
    /// A person attached it.
    Hand,
    /// A workflow's `attach_runbook` step.
    Workflow,
}

impl AttachHow {
    fn as_str(self) -> &'static str {
        match self {
            AttachHow::Rule => "rule",
            AttachHow::Hand => "hand",
            AttachHow::Workflow => "workflow",
        }
    }
}

/// A checked runbook name: trimmed, 1 to 200 characters, no control
/// characters (deleted runbooks keep theirs under a name with one).
pub fn runbook_name(name: &str) -> Result<String, Invalid> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_RUNBOOK_NAME {
        return Err(Invalid::new(
            "name",
            format!("must be 1 to {MAX_RUNBOOK_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Invalid::new("name", "must not contain control characters"));
    }
    Ok(name.to_string())
}

fn record(r: &sqlx::any::AnyRow) -> Result<(RunbookRecord, String), StoreError> {
    let source: String = r.try_get("source")?;
    // Stored sources parsed when saved; one that no longer does (a newer
    // node's syntax) still lists, without items.
    let parsed = runbook::parse(&source).ok();
    Ok((
        RunbookRecord {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            title: parsed.as_ref().and_then(|p| p.title.clone()),
            version: r.try_get("version")?,
            attach: parsed
                .as_ref()
                .map(|p| p.attach.clone())
                .unwrap_or_default(),
            items: parsed.as_ref().map_or(0, |p| p.items.len()),
            steps: parsed
                .as_ref()
                .map_or(0, |p| p.items.iter().filter(|i| i.step.is_some()).count()),
            created_at: from_millis(r.try_get("created_at")?),
            updated_at: from_millis(r.try_get("updated_at")?),
        },
        source,
    ))
}

const COLUMNS: &str = "id, name, source, version, created_at, updated_at";

fn rules_json(rules: &AttachRules) -> Option<String> {
    (!rules.is_manual()).then(|| serde_json::to_string(rules).unwrap_or_default())
}

impl Store {
    /// Stores a runbook (markdown), checked by the core parser: version 1.
    pub async fn create_runbook(
        &self,
        name: &str,
        source: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<RunbookRecord, StoreError> {
        let name = runbook_name(name)?;
        let parsed = runbook::parse(source)?;
        let mut w = self.write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO runbooks (name, source, version, attach_rules, created_by, updated_by, created_at, updated_at) \
             VALUES ($1, $2, 1, $3, $4, $4, $5, $5) RETURNING id",
        )
        .bind(&name)
        .bind(source)
        .bind(rules_json(&parsed.attach))
        .bind(actor.user_id)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(crate::error::unique("name", "that runbook name"))?;
        self.save_runbook_version(&mut w, id, 1, &name, source, actor, now)
            .await?;
        crate::events::audit(
            &mut w,
            now,
            actor,
            "runbook",
            id,
            "runbook.created",
            json!({ "name": name, "version": 1 }),
        )
        .await?;
        w.commit().await?;
        Ok(self.runbook(id).await?.0)
    }

    /// Saves a new version of runbook `id`. Copies already attached to
    /// incidents keep the version they were attached with.
    pub async fn update_runbook(
        &self,
        id: i64,
        name: &str,
        source: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<RunbookRecord, StoreError> {
        let name = runbook_name(name)?;
        let parsed = runbook::parse(source)?;
        let mut w = self.write().await?;
        let version: i64 = self
            .lock_runbook(&mut w, id)
            .await?
            .try_get::<i64, _>("version")?
            + 1;
        sqlx::query(
            "UPDATE runbooks SET name = $1, source = $2, version = $3, attach_rules = $4, \
             updated_by = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&name)
        .bind(source)
        .bind(version)
        .bind(rules_json(&parsed.attach))
        .bind(actor.user_id)
        .bind(to_millis(now))
        .bind(id)
        .execute(&mut *w.tx)
        .await
        .map_err(crate::error::unique("name", "that runbook name"))?;
        self.save_runbook_version(&mut w, id, version, &name, source, actor, now)
            .await?;
        crate::events::audit(
            &mut w,
            now,
            actor,
            "runbook",
            id,
            "runbook.updated",
            json!({ "name": name, "version": version }),
        )
        .await?;
        w.commit().await?;
        Ok(self.runbook(id).await?.0)
    }

    /// Deletes a runbook: it no longer lists or attaches and its name is free;
    /// copies attached to incidents, and their progress, stay.
    pub async fn delete_runbook(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let name: String = self.lock_runbook(&mut w, id).await?.try_get("name")?;
        // The row stays for the copies; its name moves aside (a control
        // character no live name may hold), so the name can be used again.
        sqlx::query(
            "UPDATE runbooks SET deleted_at = $1, updated_at = $1, updated_by = $2, \
             attach_rules = NULL, name = $3 WHERE id = $4",
        )
        .bind(to_millis(now))
        .bind(actor.user_id)
        .bind(format!("{name}\u{1}deleted {id}"))
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        crate::events::audit(
            &mut w,
            now,
            actor,
            "runbook",
            id,
            "runbook.deleted",
            json!({ "name": name }),
        )
        .await?;
        w.commit().await
    }

    /// Every runbook not deleted, by name.
    pub async fn runbooks(&self) -> Result<Vec<RunbookRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runbooks WHERE deleted_at IS NULL ORDER BY name, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(record(r)?.0)).collect()
    }

    /// One runbook (not deleted) and its current markdown.
    pub async fn runbook(&self, id: i64) -> Result<(RunbookRecord, String), StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runbooks WHERE id = $1 AND deleted_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("runbook {id}")))?;
        record(&row)
    }

    /// Every version of a runbook (not deleted), newest first.
    pub async fn runbook_versions(&self, id: i64) -> Result<Vec<RunbookVersion>, StoreError> {
        self.runbook(id).await?;
        let rows = sqlx::query(
            "SELECT id, runbook_id, version, name, source, created_by, created_at \
             FROM runbook_versions WHERE runbook_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunbookVersion {
                    id: r.try_get("id")?,
                    runbook_id: r.try_get("runbook_id")?,
                    version: r.try_get("version")?,
                    name: r.try_get("name")?,
                    markdown: r.try_get("source")?,
                    created_by: r.try_get("created_by")?,
                    created_at: from_millis(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Whether a runbook with this name exists.
    pub async fn runbook_exists(&self, name: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM runbooks WHERE name = $1 AND deleted_at IS NULL",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Attaches the runbook named `name` to an incident for a workflow step
    /// (once: attaching it again, or after a person detached it, changes
    /// nothing), with `runbook.attached` on the timeline.
    pub async fn attach_runbook(
        &self,
        incident_id: i64,
        name: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<AttachedRunbook, StoreError> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM runbooks WHERE name = $1 AND deleted_at IS NULL")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        let id = id.ok_or_else(|| StoreError::not_found(format!("runbook `{name}`")))?;
        self.attach_runbook_as(incident_id, id, AttachHow::Workflow, actor, now)
            .await
    }

    /// Attaches runbook `runbook_id` to an incident: by hand (again after it
    /// was detached, as its current version with fresh progress) or for a
    /// workflow (once ever).
    pub async fn attach_runbook_as(
        &self,
        incident_id: i64,
        runbook_id: i64,
        how: AttachHow,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<AttachedRunbook, StoreError> {
        let mut w = self.write().await?;
        self.lock_incident(&mut w, incident_id).await?;
        let out = attach_in(&mut w, incident_id, runbook_id, how, actor, now).await?;
        if out.attached_now {
            w.commit().await?;
        } else {
            w.rollback().await?;
        }
        Ok(out)
    }

    /// Takes a runbook off an incident. Its progress stays on the timeline;
    /// rules do not attach it again, a person may.
    pub async fn detach_runbook(
        &self,
        incident_id: i64,
        runbook_id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        self.lock_incident(&mut w, incident_id).await?;
        let name: Option<String> = sqlx::query_scalar(
            "SELECT name FROM incident_runbooks WHERE incident_id = $1 AND runbook_id = $2 \
             AND detached_at IS NULL",
        )
        .bind(incident_id)
        .bind(runbook_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let name = name.ok_or_else(|| {
            StoreError::not_found(format!(
                "runbook {runbook_id} on incident INC-{incident_id}"
            ))
        })?;
        sqlx::query(
            "UPDATE incident_runbooks SET detached_at = $1, detached_by = $2 \
             WHERE incident_id = $3 AND runbook_id = $4",
        )
        .bind(to_millis(now))
        .bind(&actor.name)
        .bind(incident_id)
        .bind(runbook_id)
        .execute(&mut *w.tx)
        .await?;
        incident_event(
            &mut w,
            now,
            actor,
            incident_id,
            "runbook.detached",
            json!({ "runbook_id": runbook_id, "runbook": name }),
        )
        .await?;
        w.commit().await
    }

    pub(crate) async fn lock_runbook(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<sqlx::any::AnyRow, StoreError> {
        sqlx::query(&format!(
            "SELECT id, name, version FROM runbooks WHERE id = $1 AND deleted_at IS NULL{}",
            self.for_update()
        ))
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("runbook {id}")))
    }

    #[allow(clippy::too_many_arguments)]
    async fn save_runbook_version(
        &self,
        w: &mut WriteTx,
        id: i64,
        version: i64,
        name: &str,
        source: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runbook_versions (runbook_id, version, name, source, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(version)
        .bind(name)
        .bind(source)
        .bind(actor.user_id)
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }
}

async fn attach_in(
    w: &mut WriteTx,
    incident_id: i64,
    runbook_id: i64,
    how: AttachHow,
    actor: &Actor,
    now: Timestamp,
) -> Result<AttachedRunbook, StoreError> {
    let row = sqlx::query(
        "SELECT name, source, version FROM runbooks WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(runbook_id)
    .fetch_optional(&mut *w.tx)
    .await?
    .ok_or_else(|| StoreError::not_found(format!("runbook {runbook_id}")))?;
    let (name, source, version): (String, String, i64) = (
        row.try_get("name")?,
        row.try_get("source")?,
        row.try_get("version")?,
    );
    let parsed = runbook::parse(&source)?;
    let existing: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT detached_at FROM incident_runbooks WHERE incident_id = $1 AND runbook_id = $2",
    )
    .bind(incident_id)
    .bind(runbook_id)
    .fetch_optional(&mut *w.tx)
    .await?;
    let mut out = AttachedRunbook {
        runbook_id,
        name: name.clone(),
        incident_id,
        items: parsed.items.len(),
        attached_now: false,
    };
    let progress = serde_json::to_string(&Progress::new(&parsed)).unwrap_or_default();
    match existing {
        None => {
            sqlx::query(
                "INSERT INTO incident_runbooks (incident_id, runbook_id, source, progress, attached_by, \
                 attached_at, name, version, how) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(incident_id)
            .bind(runbook_id)
            .bind(&source)
            .bind(&progress)
            .bind(&actor.name)
            .bind(to_millis(now))
            .bind(&name)
            .bind(version)
            .bind(how.as_str())
            .execute(&mut *w.tx)
            .await?;
        }
        // Detached by a person: only a person brings it back.
        Some(Some(_)) if how == AttachHow::Hand => {
            sqlx::query(
                "UPDATE incident_runbooks SET source = $1, progress = $2, attached_by = $3, \
                 attached_at = $4, name = $5, version = $6, how = $7, detached_at = NULL, \
                 detached_by = NULL WHERE incident_id = $8 AND runbook_id = $9",
            )
            .bind(&source)
            .bind(&progress)
            .bind(&actor.name)
            .bind(to_millis(now))
            .bind(&name)
            .bind(version)
            .bind(how.as_str())
            .bind(incident_id)
            .bind(runbook_id)
            .execute(&mut *w.tx)
            .await?;
        }
        Some(_) => return Ok(out),
    }
    out.attached_now = true;
    append(
        w,
        NewEvent {
            at: now,
            actor,
            entity: "incident",
            entity_id: incident_id,
            incident_id: Some(incident_id),
            kind: "runbook.attached",
            data: json!({ "runbook_id": runbook_id, "name": name, "runbook": name,
                          "version": version, "title": parsed.title,
                          "items": parsed.items.len(), "how": how.as_str() }),
        },
    )
    .await?;
    Ok(out)
}

/// After an incident is declared, or its services, type or severity
/// changed, in that transaction: attaches every runbook whose rules now
/// match and that was never on the incident.
pub(crate) async fn auto_attach(
    w: &mut WriteTx,
    incident_id: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let rows = sqlx::query(
        "SELECT id, attach_rules FROM runbooks WHERE attach_rules IS NOT NULL \
         AND deleted_at IS NULL AND id NOT IN \
         (SELECT runbook_id FROM incident_runbooks WHERE incident_id = $1) ORDER BY id",
    )
    .bind(incident_id)
    .fetch_all(&mut *w.tx)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM incidents WHERE id = $1")
        .bind(incident_id)
        .fetch_optional(&mut *w.tx)
        .await?;
    let inc = crate::incidents::parse_doc(doc, incident_id)?;
    let mut names: Vec<String> = Vec::new();
    for s in &inc.service_ids {
        let n: Option<String> = sqlx::query_scalar("SELECT name FROM services WHERE id = $1")
            .bind(s)
            .fetch_optional(&mut *w.tx)
            .await?;
        names.extend(n);
    }
    let services: Vec<&str> = names.iter().map(String::as_str).collect();
    let (kind, severity) = (inc.incident_type.as_str(), inc.severity.as_str());
    let actor = Actor {
        user_id: None,
        name: "runbook rules".into(),
    };
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let rules: AttachRules =
            serde_json::from_str(&r.try_get::<String, _>("attach_rules")?).unwrap_or_default();
        if rules.applies(&services, kind, severity) {
            attach_in(w, incident_id, id, AttachHow::Rule, &actor, now).await?;
        }
    }
    Ok(())
}

/// Whether an incident event may change which runbooks' rules match: a
/// declaration, or a change of services, type or severity.
pub(crate) fn may_match_runbooks(kind: &str, data: &Value) -> bool {
    match kind {
        "incident.declared" => true,
        "incident.updated" => data["changes"].as_array().is_some_and(|a| {
            a.iter().any(|c| {
                matches!(
                    c["field"].as_str(),
                    Some("service_ids" | "type" | "severity")
                )
            })
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_events_that_reread_rules() {
        assert_eq!(runbook_name("  Failover ").unwrap(), "Failover");
        for bad in ["", "   ", "a\u{1}b", &"x".repeat(201)] {
            assert_eq!(runbook_name(bad).unwrap_err().field, "name", "{bad:?}");
        }
        assert!(may_match_runbooks("incident.declared", &json!({})));
        assert!(may_match_runbooks(
            "incident.updated",
            &json!({ "changes": [{ "field": "title" }, { "field": "severity" }] })
        ));
        assert!(!may_match_runbooks(
            "incident.updated",
            &json!({ "changes": [{ "field": "title" }] })
        ));
        assert!(!may_match_runbooks("incident.status_changed", &json!({})));
    }
}
