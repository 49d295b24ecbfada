//! Working through a runbook on an incident: ticking items, and running an
//! item's step with one click. Each change is a line on the incident's
//! timeline whose data says everything a postmortem needs (runbook, item,
//! who, when, outputs), so the timeline alone tells the story.
//!
//! An item's step runs through the durable run engine like any workflow step
//! (retries, leases, idempotency keys, the outgoing policy, secrets redacted):
//! it is a run of a one-step workflow kept for the runbook (`workflows.
//! runbook_id`, stored as deleted so no list, trigger or edit reaches it), a
//! version per distinct step. When the run ends, the engine's transaction
//! records the outcome on the item (`runbook_run_finished`).

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::workflow::definition::parse_value;
use tocsin_core::workflow::guard::Refusal;
use tocsin_core::workflow::runbook::{self, item_workflow, output_summary, ItemRun, Progress};
use tocsin_core::workflow::RunState;
use utoipa::ToSchema;

use super::json_text;
use super::runs::NewRun;
use crate::events::{incident_event, Actor};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Largest outputs (as JSON text) kept on an item and in its timeline line;
/// larger ones keep their summary only (the run keeps them whole).
const MAX_KEPT_OUTPUT: usize = 16 * 1024;

/// A runbook attached to an incident, with where each item stands.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IncidentRunbook {
    /// The runbook.
    pub runbook_id: i64,
    /// The incident.
    pub incident_id: i64,
    /// Its name when attached.
    pub name: String,
    /// The copy's first `# ` heading.
    pub title: Option<String>,
    /// The version attached (later edits do not change the copy).
    pub version: i64,
    /// How it came: `rule`, `hand` or `workflow`.
    pub how: String,
    /// Who attached it.
    pub attached_by: String,
    /// When.
    pub attached_at: chrono::DateTime<chrono::Utc>,
    /// Items ticked.
    pub done: usize,
    /// Items in all.
    pub total: usize,
    /// The checklist.
    pub items: Vec<ItemState>,
    /// The markdown of the copy.
    pub markdown: String,
}

/// One checklist item and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ItemState {
    /// Position, from 0: the `index` in the item's URLs.
    pub index: usize,
    /// The item's text (markdown).
    pub text: String,
    /// Its runnable step's kind (`http`, `command`, …), if it has one.
    pub step: Option<String>,
    /// Whether it is ticked.
    pub ticked: bool,
    /// Who ticked or unticked it last (user id).
    pub by: Option<i64>,
    /// When.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// What its step's last successful run produced.
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// Its step's latest run: `run_id`, `status`, `by`, `started_at`,
    /// `finished_at`, `error`.
    #[schema(value_type = Option<Object>)]
    pub run: Option<ItemRun>,
}

/// Why an item's step was not run.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemRunRefused {
    /// The item has no step.
    NoStep,
    /// Its step is being run now (this run).
    Running(i64),
    /// A limit refused the run.
    Refused(Refusal),
}

fn incident_runbook(r: &sqlx::any::AnyRow) -> Result<IncidentRunbook, StoreError> {
    let source: String = r.try_get("source")?;
    let parsed = runbook::parse(&source).ok();
    let progress: Progress =
        serde_json::from_str(&r.try_get::<String, _>("progress")?).unwrap_or_default();
    let items: Vec<ItemState> = parsed
        .as_ref()
        .map(|p| p.items.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let p = progress.items.get(i.index).cloned().unwrap_or_default();
            ItemState {
                index: i.index,
                text: i.text.clone(),
                step: i.step.as_ref().map(|s| s.kind().to_string()),
                ticked: p.ticked,
                by: p.by,
                at: p.at,
                output: p.output,
                run: p.run,
            }
        })
        .collect();
    Ok(IncidentRunbook {
        runbook_id: r.try_get("runbook_id")?,
        incident_id: r.try_get("incident_id")?,
        name: r.try_get("name")?,
        title: parsed.and_then(|p| p.title),
        version: r.try_get("version")?,
        how: r.try_get("how")?,
        attached_by: r.try_get("attached_by")?,
        attached_at: from_millis(r.try_get("attached_at")?),
        done: items.iter().filter(|i| i.ticked).count(),
        total: items.len(),
        items,
        markdown: source,
    })
}

const COLUMNS: &str =
    "incident_id, runbook_id, name, source, progress, version, how, attached_by, attached_at";

/// Outputs to keep beside an item: whole when small, else their summary.
fn kept(outputs: Option<&Value>) -> Option<Value> {
    let o = outputs?;
    if o.to_string().len() <= MAX_KEPT_OUTPUT {
        Some(o.clone())
    } else {
        Some(json!({ "truncated": true, "summary": output_summary(o) }))
    }
}

impl Store {
    /// The runbooks on an incident (not detached), in the order attached.
    pub async fn incident_runbooks(
        &self,
        incident_id: i64,
    ) -> Result<Vec<IncidentRunbook>, StoreError> {
        self.incident_exists(incident_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM incident_runbooks WHERE incident_id = $1 \
             AND detached_at IS NULL ORDER BY attached_at, runbook_id"
        ))
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident_runbook).collect()
    }

    /// One runbook on an incident.
    pub async fn incident_runbook(
        &self,
        incident_id: i64,
        runbook_id: i64,
    ) -> Result<IncidentRunbook, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM incident_runbooks WHERE incident_id = $1 AND runbook_id = $2 \
             AND detached_at IS NULL"
        ))
        .bind(incident_id)
        .bind(runbook_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| not_on(incident_id, runbook_id))?;
        incident_runbook(&row)
    }

    /// Ticks or unticks item `index`, recording who and when, with
    /// `runbook.item_checked` / `runbook.item_unchecked` on the timeline.
    /// Setting it as it already is changes nothing.
    pub async fn check_runbook_item(
        &self,
        incident_id: i64,
        runbook_id: i64,
        index: usize,
        checked: bool,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<IncidentRunbook, StoreError> {
        let user_id = actor
            .user_id
            .ok_or_else(|| StoreError::Config("a person ticks items".into()))?;
        let mut w = self.write().await?;
        let cur = self.lock_attached(&mut w, incident_id, runbook_id).await?;
        let item = cur
            .items
            .get(index)
            .ok_or_else(|| no_item(&cur, index))?
            .clone();
        if item.ticked != checked {
            let mut progress = progress_of(&cur);
            progress
                .set(index, checked, user_id, now, None)
                .map_err(|_| no_item(&cur, index))?;
            save_progress(&mut w, incident_id, runbook_id, &progress).await?;
            let kind = if checked {
                "runbook.item_checked"
            } else {
                "runbook.item_unchecked"
            };
            incident_event(
                &mut w,
                now,
                actor,
                incident_id,
                kind,
                json!({ "runbook_id": runbook_id, "runbook": cur.name, "version": cur.version,
                        "item": index, "text": item.text, "checked": checked,
                        "by": user_id, "by_name": actor.name, "at": now,
                        "output_summary": item.output.as_ref().map(output_summary) }),
            )
            .await?;
            w.commit().await?;
        } else {
            w.rollback().await?;
        }
        self.incident_runbook(incident_id, runbook_id).await
    }

    /// Runs item `index`'s step for the incident, as `actor`: a workflow run
    /// of that one step, due now, with `runbook.item_run_started` on the
    /// timeline. Its outcome comes onto the item when the run ends.
    pub async fn run_runbook_item(
        &self,
        incident_id: i64,
        runbook_id: i64,
        index: usize,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Result<(IncidentRunbook, i64), ItemRunRefused>, StoreError> {
        let user_id = actor
            .user_id
            .ok_or_else(|| StoreError::Config("a person runs items".into()))?;
        let mut w = self.write().await?;
        let cur = self.lock_attached(&mut w, incident_id, runbook_id).await?;
        let parsed = runbook::parse(&cur.markdown)?;
        let item = parsed
            .items
            .get(index)
            .ok_or_else(|| no_item(&cur, index))?;
        let mut progress = progress_of(&cur);
        if let Some(run) = progress.items[index]
            .run
            .as_ref()
            .filter(|_| progress.running(index))
        {
            return Ok(Err(ItemRunRefused::Running(run.run_id)));
        }
        let Some(def_json) = item_workflow(&cur.name, item) else {
            return Ok(Err(ItemRunRefused::NoStep));
        };
        let def = parse_value(&def_json).map_err(|e| {
            StoreError::Config(format!("runbook {runbook_id} item {index}: {}", e.message))
        })?;
        let (workflow_id, version_id) = self
            .runbook_workflow(&mut w, runbook_id, &cur.name, &json_text(&def_json), now)
            .await?;
        let mut context = serde_json::Map::new();
        context.insert(
            "trigger".into(),
            json!({ "kind": "manual", "at": now, "by": actor.name }),
        );
        if let Some(inc) = self.incident_json_in(&mut w, incident_id).await? {
            context.insert("incident".into(), inc);
        }
        context.insert("inputs".into(), json!({}));
        context.insert(
            "runbook".into(),
            json!({ "id": runbook_id, "name": cur.name, "item": index, "text": item.text }),
        );
        let run = NewRun {
            workflow_id,
            version_id,
            incident_id: Some(incident_id),
            subject: Some(format!("incident:{incident_id}")),
            trigger_kind: "manual",
            trigger_event_id: None,
            chain: Vec::new(),
            context: Value::Object(context),
            started_by: Some(user_id),
        };
        let run_id = match self.start_run_in(&mut w, &def, run, now).await? {
            Ok(id) => id,
            Err(refusal) => {
                // The refusal's timeline line stays.
                w.commit().await?;
                return Ok(Err(ItemRunRefused::Refused(refusal)));
            }
        };
        progress
            .start_run(index, run_id, user_id, now)
            .map_err(|_| no_item(&cur, index))?;
        save_progress(&mut w, incident_id, runbook_id, &progress).await?;
        incident_event(
            &mut w,
            now,
            actor,
            incident_id,
            "runbook.item_run_started",
            json!({ "runbook_id": runbook_id, "runbook": cur.name, "version": cur.version,
                    "item": index, "text": item.text, "step_kind": def.steps[0].kind(),
                    "run_id": run_id, "by": user_id, "by_name": actor.name, "at": now }),
        )
        .await?;
        w.commit().await?;
        Ok(Ok((
            self.incident_runbook(incident_id, runbook_id).await?,
            run_id,
        )))
    }

    /// In the transaction that ends a run carrying a runbook item's step:
    /// the outcome onto the item (a success also ticks it for whoever ran
    /// it), with `runbook.item_run_finished` on the timeline.
    pub(crate) async fn runbook_run_finished(
        &self,
        w: &mut WriteTx,
        run_id: i64,
        incident_id: i64,
        workflow_name: &str,
        st: &RunState,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(runbook_id) = st.context["runbook"]["id"].as_i64() else {
            return Ok(());
        };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM incident_runbooks WHERE incident_id = $1 AND runbook_id = $2{}",
            self.for_update()
        ))
        .bind(incident_id)
        .bind(runbook_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else { return Ok(()) };
        let cur = incident_runbook(&row)?;
        let mut progress = progress_of(&cur);
        let status = serde_json::to_value(st.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let rec = st.records.first();
        let outputs = rec.and_then(|r| r.outputs.as_ref());
        let error = st
            .error
            .clone()
            .or_else(|| rec.and_then(|r| r.error.clone()));
        let Some(index) = progress.finish_run(run_id, &status, kept(outputs), error.clone(), now)
        else {
            return Ok(());
        };
        save_progress(w, incident_id, runbook_id, &progress).await?;
        let p = &progress.items[index];
        let run = p.run.clone();
        let by = run.as_ref().map(|r| r.by);
        let by_name: Option<String> = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
            .bind(by)
            .fetch_optional(&mut *w.tx)
            .await?;
        let text = cur.items.get(index).map(|i| i.text.clone());
        let actor = Actor {
            user_id: None,
            name: format!("workflow {workflow_name}"),
        };
        incident_event(
            w,
            now,
            &actor,
            incident_id,
            "runbook.item_run_finished",
            json!({ "runbook_id": runbook_id, "runbook": cur.name, "version": cur.version,
                    "item": index, "text": text, "step_kind": rec.map(|r| r.kind.clone()),
                    "run_id": run_id, "status": status, "error": error,
                    "output_summary": outputs.map(output_summary), "outputs": kept(outputs),
                    "ticked": p.ticked, "by": by, "by_name": by_name,
                    "started_at": run.as_ref().map(|r| r.started_at), "at": now }),
        )
        .await?;
        Ok(())
    }

    async fn lock_attached(
        &self,
        w: &mut WriteTx,
        incident_id: i64,
        runbook_id: i64,
    ) -> Result<IncidentRunbook, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM incident_runbooks WHERE incident_id = $1 AND runbook_id = $2 \
             AND detached_at IS NULL{}",
            self.for_update()
        ))
        .bind(incident_id)
        .bind(runbook_id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| not_on(incident_id, runbook_id))?;
        incident_runbook(&row)
    }

    // The workflow kept for a runbook's steps, and the version holding this
    // definition (made the first time it runs).
    async fn runbook_workflow(
        &self,
        w: &mut WriteTx,
        runbook_id: i64,
        name: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<(i64, i64), StoreError> {
        // One click at a time per runbook makes its workflow and versions.
        sqlx::query(&format!(
            "SELECT id FROM runbooks WHERE id = $1{}",
            self.for_no_key_update()
        ))
        .bind(runbook_id)
        .execute(&mut *w.tx)
        .await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM workflows WHERE runbook_id = $1 ORDER BY id LIMIT 1",
        )
        .bind(runbook_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let workflow_id = match existing {
            Some(id) => id,
            None => {
                sqlx::query_scalar(
                    "INSERT INTO workflows (name, enabled, trigger_kind, version, created_at, updated_at, \
                     deleted_at, runbook_id) VALUES ($1, 0, 'manual', 0, $2, $2, $2, $3) RETURNING id",
                )
                .bind(format!("Runbook {name}"))
                .bind(to_millis(now))
                .bind(runbook_id)
                .fetch_one(&mut *w.tx)
                .await?
            }
        };
        let version_id = self
            .hidden_workflow_version(w, workflow_id, source, now)
            .await?;
        Ok((workflow_id, version_id))
    }

    /// The version of hidden workflow `workflow_id` (a runbook's, an action
    /// item tracker's) holding `source`, made if new; the caller holds a lock
    /// that serialises this per workflow.
    pub(crate) async fn hidden_workflow_version(
        &self,
        w: &mut WriteTx,
        workflow_id: i64,
        source: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM workflow_versions WHERE workflow_id = $1 AND source = $2 ORDER BY id LIMIT 1",
        )
        .bind(workflow_id)
        .bind(source)
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some(v) = version {
            return Ok(v);
        }
        let number: i64 = sqlx::query_scalar(
            "UPDATE workflows SET version = version + 1, updated_at = $1 WHERE id = $2 RETURNING version",
        )
        .bind(to_millis(now))
        .bind(workflow_id)
        .fetch_one(&mut *w.tx)
        .await?;
        let version_id: i64 = sqlx::query_scalar(
            "INSERT INTO workflow_versions (workflow_id, version, source, created_by, created_at) \
             VALUES ($1, $2, $3, NULL, $4) RETURNING id",
        )
        .bind(workflow_id)
        .bind(number)
        .bind(source)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        sqlx::query("UPDATE workflows SET current_version_id = $1 WHERE id = $2")
            .bind(version_id)
            .bind(workflow_id)
            .execute(&mut *w.tx)
            .await?;
        Ok(version_id)
    }
}

fn progress_of(cur: &IncidentRunbook) -> Progress {
    Progress {
        items: cur
            .items
            .iter()
            .map(|i| runbook::ItemProgress {
                ticked: i.ticked,
                by: i.by,
                at: i.at,
                output: i.output.clone(),
                run: i.run.clone(),
            })
            .collect(),
    }
}

async fn save_progress(
    w: &mut WriteTx,
    incident_id: i64,
    runbook_id: i64,
    progress: &Progress,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE incident_runbooks SET progress = $1 WHERE incident_id = $2 AND runbook_id = $3",
    )
    .bind(json_text(progress))
    .bind(incident_id)
    .bind(runbook_id)
    .execute(&mut *w.tx)
    .await?;
    Ok(())
}

fn not_on(incident_id: i64, runbook_id: i64) -> StoreError {
    StoreError::not_found(format!(
        "runbook {runbook_id} on incident INC-{incident_id}"
    ))
}

fn no_item(cur: &IncidentRunbook, index: usize) -> StoreError {
    StoreError::not_found(format!(
        "item {index} of runbook `{}` (it has {} items, from 0)",
        cur.name, cur.total
    ))
}
