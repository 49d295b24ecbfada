//! An action item's issue in Jira or GitHub, created from the postmortem. The
//! issue is made by a run of a hidden one-step workflow (one per tracker,
//! `workflows.system_key`, stored as deleted so no list, trigger or edit
//! reaches it; a version per distinct definition), through the durable run
//! engine like any step: retries, leases, idempotency keys, the outgoing
//! policy, secrets kept out of what is stored. When the run ends, the
//! engine's transaction records the outcome on the item
//! (`action_item_issue_finished`): the issue's URL becomes the item's link.

use serde_json::{json, Value};
use sqlx::Row;
use tocsin_core::postmortem::tracker::{issue_text, IssueText, Tracker};
use tocsin_core::postmortem::ActionStatus;
use tocsin_core::time::{to_millis, Timestamp};
use tocsin_core::workflow::definition::parse_value;
use tocsin_core::workflow::guard::Refusal;
use tocsin_core::workflow::RunState;

use super::action_items::{check_url, item, ActionItem, COLUMNS, FROM};
use super::postmortem_event;
use crate::events::Actor;
use crate::tx::WriteTx;
use crate::workflows::json_text;
use crate::workflows::runs::NewRun;
use crate::{Store, StoreError};

/// Why an item's issue was not created.
#[derive(Debug, Clone, PartialEq)]
pub enum IssueRefused {
    /// The item already links somewhere (that URL).
    AlreadyLinked(String),
    /// Its issue is being created now (this run).
    Running(i64),
    /// The item is done or cancelled (its status).
    Closed(String),
    /// A limit refused the run.
    Refused(Refusal),
}

impl Store {
    /// Creates action item `id`'s issue in `tracker`, as `actor`: a run of
    /// `definition` (the tracker's one-step workflow, from
    /// [`tocsin_core::postmortem::tracker::TrackerTargets::workflow`]), due
    /// now, with `action_item.issue_requested` on the postmortem's record.
    /// The issue links to the postmortem and incident under `base_url`.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_action_item_issue(
        &self,
        pm: i64,
        id: i64,
        tracker: Tracker,
        definition: &Value,
        base_url: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Result<(ActionItem, i64), IssueRefused>, StoreError> {
        let def = parse_value(definition).map_err(|e| {
            StoreError::Config(format!("{} action items: {}", tracker.label(), e.message))
        })?;
        let mut w = self.write().await?;
        let row = self
            .lock_row_by_id(&mut w, "postmortem_id", "action_items", id, "action item")
            .await?;
        if row.try_get::<i64, _>("postmortem_id")? != pm {
            return Err(StoreError::not_found(format!("action item {id}")));
        }
        let cur = item(
            &sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE a.id = $1"))
                .bind(id)
                .fetch_one(&mut *w.tx)
                .await?,
            now,
        )?;
        if let Some(url) = &cur.external_url {
            return Ok(Err(IssueRefused::AlreadyLinked(url.clone())));
        }
        if !ActionStatus::parse("status", &cur.status).is_ok_and(ActionStatus::is_pending) {
            return Ok(Err(IssueRefused::Closed(cur.status.clone())));
        }
        if let (Some("running"), Some(run)) = (cur.tracker_status.as_deref(), cur.tracker_run_id) {
            // A run that ended without telling the item (set aside as
            // unreadable, or ended by a node from before this release) no
            // longer holds it.
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM workflow_runs WHERE id = $1")
                    .bind(run)
                    .fetch_optional(&mut *w.tx)
                    .await?;
            let over = status
                .as_deref()
                .is_none_or(|s| matches!(s, "succeeded" | "failed" | "cancelled"));
            if !over {
                return Ok(Err(IssueRefused::Running(run)));
            }
        }
        let pm_title: String = sqlx::query_scalar("SELECT title FROM postmortems WHERE id = $1")
            .bind(pm)
            .fetch_one(&mut *w.tx)
            .await?;
        let (workflow_id, version_id) = self
            .tracker_workflow(&mut w, tracker, &def.name, &json_text(definition), now)
            .await?;
        let base = base_url.trim_end_matches('/');
        let incident = match cur.incident_id {
            Some(i) => self.incident_json_in(&mut w, i).await?,
            None => None,
        };
        let text = issue_text(&IssueText {
            postmortem_title: &pm_title,
            postmortem_url: &format!("{base}/postmortems/{pm}"),
            incident: incident.as_ref().map(|inc| {
                (
                    inc["number"].as_str().unwrap_or_default().to_string(),
                    format!("{base}/incidents/{}", inc["id"]),
                )
            }),
            owner: cur.owner_name.as_deref(),
            due_date: cur.due_date.map(|d| d.to_string()),
            priority: &cur.priority,
        });
        let mut context = serde_json::Map::new();
        context.insert(
            "trigger".into(),
            json!({ "kind": "manual", "at": now, "by": actor.name }),
        );
        if let Some(inc) = incident {
            context.insert("incident".into(), inc);
        }
        context.insert("inputs".into(), json!({}));
        context.insert(
            "action_item".into(),
            json!({ "id": id, "title": cur.title, "summary": summary(&cur.title), "text": text,
                    "postmortem_id": pm,
                    "postmortem_title": pm_title, "tracker": tracker.as_str() }),
        );
        let run = NewRun {
            workflow_id,
            version_id,
            incident_id: cur.incident_id,
            subject: Some(format!("action_item:{id}")),
            trigger_kind: "manual",
            trigger_event_id: None,
            chain: Vec::new(),
            context: Value::Object(context),
            started_by: actor.user_id,
        };
        let run_id = match self.start_run_in(&mut w, &def, run, now).await? {
            Ok(id) => id,
            Err(refusal) => {
                w.commit().await?;
                return Ok(Err(IssueRefused::Refused(refusal)));
            }
        };
        sqlx::query(
            "UPDATE action_items SET tracker = $1, tracker_run_id = $2, tracker_status = 'running', \
             tracker_error = NULL, tracker_key = NULL, updated_at = $3 WHERE id = $4",
        )
        .bind(tracker.as_str())
        .bind(run_id)
        .bind(to_millis(now))
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        postmortem_event(
            &mut w,
            now,
            actor,
            pm,
            "action_item.issue_requested",
            json!({ "postmortem_id": pm, "action_item_id": id, "tracker": tracker.as_str(),
                    "run_id": run_id }),
        )
        .await?;
        w.commit().await?;
        Ok(Ok((self.action_item(id, now).await?, run_id)))
    }

    /// In the transaction that ends a run creating an item's issue: the
    /// outcome onto the item. A success links the issue (unless someone
    /// linked the item elsewhere meanwhile) with `action_item.issue_created`;
    /// a failure keeps the error with `action_item.issue_failed`.
    pub(crate) async fn action_item_issue_finished(
        &self,
        w: &mut WriteTx,
        run_id: i64,
        st: &RunState,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(id) = st.context["action_item"]["id"].as_i64() else {
            return Ok(());
        };
        let row = sqlx::query(&format!(
            "SELECT postmortem_id, tracker, external_url FROM action_items \
             WHERE id = $1 AND tracker_run_id = $2{}",
            self.for_update()
        ))
        .bind(id)
        .bind(run_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        // Deleted, or a later run took over.
        let Some(row) = row else { return Ok(()) };
        let pm: i64 = row.try_get("postmortem_id")?;
        let tracker: Option<String> = row.try_get("tracker")?;
        let linked: Option<String> = row.try_get("external_url")?;
        let outputs = st
            .records
            .first()
            .filter(|r| r.status == tocsin_core::workflow::run::StepStatus::Succeeded)
            .and_then(|r| r.outputs.as_ref());
        let url = outputs
            .and_then(|o| o["url"].as_str())
            .filter(|u| check_url(u).is_ok());
        let key = outputs.and_then(|o| o["link"]["label"].as_str());
        let (kind, mut data) = match url {
            Some(url) if st.status == tocsin_core::workflow::RunStatus::Succeeded => {
                sqlx::query(
                    "UPDATE action_items SET tracker_status = 'succeeded', \
                     tracker_key = CASE WHEN external_url IS NULL THEN $1 ELSE NULL END, \
                     tracker_error = NULL, external_url = COALESCE(external_url, $2), updated_at = $3 \
                     WHERE id = $4",
                )
                .bind(key)
                .bind(url)
                .bind(to_millis(now))
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
                (
                    "action_item.issue_created",
                    json!({ "key": key, "url": url, "linked": linked.is_none() }),
                )
            }
            _ => {
                let error = st
                    .error
                    .clone()
                    .or_else(|| st.records.first().and_then(|r| r.error.clone()))
                    .unwrap_or_else(|| match st.status {
                        tocsin_core::workflow::RunStatus::Succeeded => {
                            "the tracker answered without the issue's address".to_string()
                        }
                        s => format!("the run ended {s:?}").to_lowercase(),
                    });
                sqlx::query(
                    "UPDATE action_items SET tracker_status = 'failed', tracker_error = $1, \
                     updated_at = $2 WHERE id = $3",
                )
                .bind(&error)
                .bind(to_millis(now))
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
                ("action_item.issue_failed", json!({ "error": error }))
            }
        };
        data["postmortem_id"] = json!(pm);
        data["action_item_id"] = json!(id);
        data["tracker"] = json!(tracker);
        data["run_id"] = json!(run_id);
        postmortem_event(w, now, &Actor::system(), pm, kind, data).await?;
        Ok(())
    }

    // The hidden workflow creating issues in `tracker`, and the version
    // holding this definition (made the first time it runs).
    async fn tracker_workflow(
        &self,
        w: &mut WriteTx,
        tracker: Tracker,
        name: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<(i64, i64), StoreError> {
        let key = format!("action_item_issue:{}", tracker.as_str());
        sqlx::query(
            "INSERT INTO workflows (name, enabled, trigger_kind, version, created_at, updated_at, \
             deleted_at, system_key) VALUES ($1, 0, 'manual', 0, $2, $2, $2, $3) \
             ON CONFLICT (system_key) DO NOTHING",
        )
        .bind(name)
        .bind(to_millis(now))
        .bind(&key)
        .execute(&mut *w.tx)
        .await?;
        // One click at a time per tracker makes its versions.
        let workflow_id: i64 = sqlx::query_scalar(&format!(
            "SELECT id FROM workflows WHERE system_key = $1{}",
            self.for_update()
        ))
        .bind(&key)
        .fetch_one(&mut *w.tx)
        .await?;
        let version_id = self
            .hidden_workflow_version(w, workflow_id, source, now)
            .await?;
        Ok((workflow_id, version_id))
    }
}

/// Longest issue title: Jira's summary takes at most 255 characters.
const MAX_SUMMARY: usize = 255;

// The item's title cut to fit an issue title.
fn summary(title: &str) -> String {
    if title.chars().count() <= MAX_SUMMARY {
        return title.to_string();
    }
    let mut s: String = title.chars().take(MAX_SUMMARY - 1).collect();
    s.push('…');
    s
}
