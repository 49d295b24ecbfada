//! Timer triggers, as jobs in the durable job table (jobs.rs runs them, each
//! in one transaction with the run it creates):
//!
//! - `workflow_schedule:{workflow}`: due at the schedule's next time (cron in
//!   its time zone); creates a run and moves on to the time after. A node
//!   down across several times fires once when it comes back, not once each.
//! - `workflow_idle:{workflow}:{incident}`: armed when an incident is declared
//!   or reopened, at its last activity plus the idle time. When due it reads
//!   the incident's last activity (its newest event that is not a workflow's
//!   own line): newer activity moves the timer on; none means the incident has
//!   been idle that long, and the workflow runs, once per quiet spell. This
//!   keeps incident events off the trigger queue: activity is read when the
//!   timer falls due instead of re-arming the timer on every event.

use serde_json::{json, Value};
use sqlx::Row;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::workflow::{Definition, Trigger};

use super::runs::NewRun;
use crate::jobs::{self, HandedNotification};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

fn schedule_key(workflow_id: i64) -> String {
    format!("workflow_schedule:{workflow_id}")
}

fn idle_key(workflow_id: i64, incident_id: i64) -> String {
    format!("workflow_idle:{workflow_id}:{incident_id}")
}

type JobResult = Result<(Option<Timestamp>, Vec<HandedNotification>), StoreError>;

impl Store {
    pub(crate) async fn clear_workflow_timers(
        &self,
        w: &mut WriteTx,
        workflow_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM jobs WHERE job_key = $1 OR job_key LIKE $2")
            .bind(schedule_key(workflow_id))
            // Keys are letters, digits, `_` and `:`; the `_` LIKE reads as one
            // character only ever matches itself here.
            .bind(format!("workflow_idle:{workflow_id}:%"))
            .execute(&mut *w.tx)
            .await?;
        Ok(())
    }

    pub(crate) async fn arm_schedule(
        &self,
        w: &mut WriteTx,
        workflow_id: i64,
        def: &Definition,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(at) = def.trigger.next_fire(now) else {
            return Ok(());
        };
        let payload = json!({ "workflow_id": workflow_id });
        jobs::schedule(
            w,
            self.backend,
            "workflow_schedule",
            &schedule_key(workflow_id),
            at,
            &payload,
            now,
        )
        .await
    }

    /// Arms the idle timer of `workflow_id` for `incident_id` at `at`.
    pub(crate) async fn arm_idle(
        &self,
        w: &mut WriteTx,
        workflow_id: i64,
        incident_id: i64,
        at: Timestamp,
        fired_for: Option<i64>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let payload = json!({ "workflow_id": workflow_id, "incident_id": incident_id,
                              "fired_for": fired_for });
        jobs::schedule(
            w,
            self.backend,
            "workflow_idle",
            &idle_key(workflow_id, incident_id),
            at,
            &payload,
            now,
        )
        .await
    }

    // A new or edited idle workflow watches the incidents open now.
    pub(crate) async fn arm_idle_for_open(
        &self,
        w: &mut WriteTx,
        workflow_id: i64,
        def: &Definition,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Trigger::IncidentIdle { after } = &def.trigger else {
            return Ok(());
        };
        let open: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM incidents WHERE status NOT IN ('resolved', 'closed') ORDER BY id",
        )
        .fetch_all(&mut *w.tx)
        .await?;
        for id in open {
            let last = self.last_activity(w, id).await?.unwrap_or(now);
            self.arm_idle(w, workflow_id, id, last + after.to_duration(), None, now)
                .await?;
        }
        Ok(())
    }

    async fn last_activity(
        &self,
        w: &mut WriteTx,
        incident_id: i64,
    ) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(at) FROM events WHERE incident_id = $1 AND kind NOT LIKE 'workflow.%' \
             AND actor NOT LIKE 'workflow %'",
        )
        .bind(incident_id)
        .fetch_one(&mut *w.tx)
        .await?;
        Ok(at.map(from_millis))
    }

    // The workflow as it is now, if it is enabled: (version id, definition).
    async fn live_workflow(
        &self,
        w: &mut WriteTx,
        workflow_id: i64,
    ) -> Result<Option<(i64, std::sync::Arc<Definition>)>, StoreError> {
        let row = sqlx::query(
            "SELECT current_version_id FROM workflows WHERE id = $1 AND enabled = 1 AND deleted_at IS NULL",
        )
        .bind(workflow_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let version_id: i64 = row.try_get("current_version_id")?;
        Ok(Some((version_id, self.definition_in(w, version_id).await?)))
    }

    /// The schedule job: one run, then the next time.
    pub(crate) async fn run_workflow_schedule_job(
        &self,
        w: &mut WriteTx,
        payload: &str,
        now: Timestamp,
    ) -> JobResult {
        let v: Value = serde_json::from_str(payload).unwrap_or_default();
        let Some(workflow_id) = v["workflow_id"].as_i64() else {
            return Err(StoreError::Config(format!(
                "bad schedule payload {payload}"
            )));
        };
        let Some((version_id, def)) = self.live_workflow(w, workflow_id).await? else {
            return Ok((None, Vec::new()));
        };
        if !matches!(def.trigger, Trigger::Schedule(_)) {
            return Ok((None, Vec::new()));
        }
        let ctx = json!({ "trigger": { "kind": "schedule", "at": now } });
        if def.conditions_hold(&ctx).unwrap_or(false) {
            let run = NewRun {
                workflow_id,
                version_id,
                incident_id: None,
                subject: None,
                trigger_kind: "schedule",
                trigger_event_id: None,
                chain: Vec::new(),
                context: ctx,
                started_by: None,
            };
            let _ = self.start_run_in(w, &def, run, now).await?;
        }
        Ok((def.trigger.next_fire(now), Vec::new()))
    }

    /// The idle job: moves on after activity, runs after a quiet spell.
    pub(crate) async fn run_workflow_idle_job(
        &self,
        w: &mut WriteTx,
        payload: &str,
        now: Timestamp,
    ) -> JobResult {
        let v: Value = serde_json::from_str(payload).unwrap_or_default();
        let (Some(workflow_id), Some(incident_id)) =
            (v["workflow_id"].as_i64(), v["incident_id"].as_i64())
        else {
            return Err(StoreError::Config(format!("bad idle payload {payload}")));
        };
        let Some((version_id, def)) = self.live_workflow(w, workflow_id).await? else {
            return Ok((None, Vec::new()));
        };
        let Trigger::IncidentIdle { after } = &def.trigger else {
            return Ok((None, Vec::new()));
        };
        let Some(incident) = self.incident_json_in(w, incident_id).await? else {
            return Ok((None, Vec::new()));
        };
        let open = incident["status"]
            .as_str()
            .and_then(tocsin_core::incident::Status::parse)
            .is_some_and(|s| s.is_open());
        if !open {
            // Reopening arms it again (the dispatcher).
            return Ok((None, Vec::new()));
        }
        let last = self.last_activity(w, incident_id).await?.unwrap_or(now);
        let due = last + after.to_duration();
        let fired_for = v["fired_for"].as_i64();
        if due > now {
            return Ok((Some(due), Vec::new()));
        }
        let again = now + after.to_duration();
        if fired_for == Some(to_millis(last)) {
            // Already ran for this quiet spell: look again later.
            return Ok((Some(again), Vec::new()));
        }
        let idle =
            tocsin_core::workflow::text::Span::secs((now - last).num_seconds().max(0) as u64);
        if def
            .trigger
            .matches(&tocsin_core::workflow::Event::IncidentIdle(idle))
        {
            let ctx = json!({
                "trigger": { "kind": "incident_idle", "at": now, "idle_since": last },
                "incident": incident,
            });
            if def.conditions_hold(&ctx).unwrap_or(false) {
                let run = NewRun {
                    workflow_id,
                    version_id,
                    incident_id: Some(incident_id),
                    subject: Some(format!("incident:{incident_id}")),
                    trigger_kind: "incident_idle",
                    trigger_event_id: None,
                    chain: Vec::new(),
                    context: ctx,
                    started_by: None,
                };
                let _ = self.start_run_in(w, &def, run, now).await?;
            }
        }
        // The payload remembers the quiet spell it ran for.
        self.arm_idle(
            w,
            workflow_id,
            incident_id,
            again,
            Some(to_millis(last)),
            now,
        )
        .await?;
        Ok((Some(again), Vec::new()))
    }
}
