//! Runs: created by a trigger (within the workflow's limits), advanced one
//! step at a time by an engine holding a lease, decided by people (approvals,
//! cancellation), and read back with every step's record.
//!
//! A run row holds the core `RunState` and `due_at`, when it next needs an
//! engine: now for a step to execute, a wait's or a retry's end, an approval's
//! deadline, none once finished. An engine claims a due run (SKIP LOCKED),
//! marks the step's attempt started and leases it (`claim`, `lease_until`) in
//! one commit, executes the step with no transaction open, then records the
//! outcome and everything that follows from it (skipped steps, branches,
//! timeline lines, the next due time) in another. If it dies in between, the
//! lease runs out and the next claim executes the same attempt again, with the
//! same idempotency key; a recorded step is never executed again.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::workflow::guard::{admit, ChainLink, PastRun, Refusal};
use tocsin_core::workflow::run::{StepRecord, StepStatus};
use tocsin_core::workflow::{apply, next, Action, Decision, Definition, Outcome, RunError};
use tocsin_core::workflow::{RunState, RunStatus, StepPath};
use utoipa::ToSchema;

use super::json_text;
use crate::events::{append, Actor, NewEvent};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Added to a step's own timeout for its lease: time to record the outcome.
pub const WORKFLOW_LEASE_MARGIN: Duration = Duration::from_secs(30);

/// A run to create.
pub(crate) struct NewRun {
    pub workflow_id: i64,
    pub version_id: i64,
    pub incident_id: Option<i64>,
    pub subject: Option<String>,
    pub trigger_kind: &'static str,
    pub trigger_event_id: Option<i64>,
    pub chain: Vec<ChainLink>,
    pub context: Value,
    pub started_by: Option<i64>,
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RunSummary {
    /// Run id.
    pub id: i64,
    /// The workflow.
    pub workflow_id: i64,
    /// Its name, as of the version the run follows.
    pub workflow_name: String,
    /// The version it follows.
    pub version_id: i64,
    /// The incident it runs for, if any.
    pub incident_id: Option<i64>,
    /// What started it (the trigger's kind).
    pub trigger: String,
    /// pending, running, waiting, awaiting_approval, succeeded, failed or cancelled.
    #[schema(value_type = String)]
    pub status: RunStatus,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Who started it by hand.
    pub started_by: Option<i64>,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Finished.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A run with every step reached: rendered inputs (secrets shown as
/// `[secret NAME]`), outputs, errors, attempts and times.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RunView {
    /// The run.
    #[serde(flatten)]
    pub run: RunSummary,
    /// The trigger context the run started with (incident, alert, event, inputs).
    #[schema(value_type = Object)]
    pub context: Value,
    /// Variables captured from HTTP responses.
    #[schema(value_type = Object)]
    pub vars: serde_json::Map<String, Value>,
    /// Steps reached, in order.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<StepRecord>,
    /// The runs whose steps led to this one (loop guard), oldest first.
    #[schema(value_type = Vec<Object>)]
    pub chain: Vec<ChainLink>,
}

/// A step an engine has claimed: everything it needs to execute it.
#[derive(Debug, Clone)]
pub struct ClaimedStep {
    /// The run.
    pub run_id: i64,
    /// This claim; recording the outcome names it.
    pub claim: String,
    /// The workflow.
    pub workflow_id: i64,
    /// Its name (the actor of its changes is `workflow NAME`).
    pub workflow_name: String,
    /// The incident, if any.
    pub incident_id: Option<i64>,
    /// The chain to stamp on changes the step makes: the run's, plus the run.
    pub chain: Vec<ChainLink>,
    /// The definition the run follows.
    pub definition: Arc<Definition>,
    /// The run's state with the attempt marked started.
    pub state: RunState,
    /// The step.
    pub path: StepPath,
    /// The attempt, from 1.
    pub attempt: u32,
    /// The attempt's idempotency key.
    pub idempotency_key: String,
    /// The step's inputs as recorded (secrets as markers).
    pub action: Action<String>,
    /// Until when the claim holds.
    pub lease_until: Timestamp,
}

/// Why an approval was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalRefused {
    /// The run waits for no approval.
    NotWaiting,
    /// The person does not hold the role.
    NotApprover(String),
}

enum Next {
    Execute,
    Due(Timestamp),
    Finished,
}

const RUN_COLUMNS: &str =
    "r.id, r.workflow_id, r.version_id, r.incident_id, r.trigger_kind, r.status, \
     r.state, r.chain, r.started_by, r.created_at, r.finished_at, w.name AS workflow_name";

fn status_str(s: RunStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse_state(id: i64, text: &str) -> Result<RunState, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Config(format!("stored workflow run {id} is unreadable: {e}")))
}

fn view(r: &sqlx::any::AnyRow) -> Result<RunView, StoreError> {
    let id: i64 = r.try_get("id")?;
    let st = parse_state(id, &r.try_get::<String, _>("state")?)?;
    let chain: Vec<ChainLink> =
        serde_json::from_str(&r.try_get::<String, _>("chain")?).unwrap_or_default();
    Ok(RunView {
        run: RunSummary {
            id,
            workflow_id: r.try_get("workflow_id")?,
            workflow_name: r.try_get("workflow_name")?,
            version_id: r.try_get("version_id")?,
            incident_id: r.try_get("incident_id")?,
            trigger: r.try_get("trigger_kind")?,
            status: st.status,
            error: st.error.clone(),
            started_by: r.try_get("started_by")?,
            created_at: from_millis(r.try_get("created_at")?),
            finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(from_millis),
        },
        context: st.context,
        vars: st.vars,
        steps: st.records,
        chain,
    })
}

impl Store {
    /// Creates a run if the workflow's limits admit it, due now. A refusal is
    /// recorded on the incident's timeline (when there is one) and returned.
    pub(crate) async fn start_run_in(
        &self,
        w: &mut WriteTx,
        def: &Definition,
        run: NewRun,
        now: Timestamp,
    ) -> Result<Result<i64, Refusal>, StoreError> {
        // Locked so two nodes cannot both admit the last run a limit allows.
        // (A runbook's or a tracker's workflow is stored as deleted, yet runs.)
        sqlx::query(&format!(
            "SELECT id FROM workflows WHERE id = $1 \
             AND (deleted_at IS NULL OR runbook_id IS NOT NULL OR system_key IS NOT NULL){}",
            self.for_update()
        ))
        .bind(run.workflow_id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("workflow {}", run.workflow_id)))?;
        let hour_ago = to_millis(now - chrono::Duration::hours(1));
        let past = sqlx::query(
            "SELECT subject, created_at FROM workflow_runs WHERE workflow_id = $1 \
             AND (subject = $2 OR created_at > $3)",
        )
        .bind(run.workflow_id)
        .bind(run.subject.clone().unwrap_or_default())
        .bind(hour_ago)
        .fetch_all(&mut *w.tx)
        .await?
        .iter()
        .map(|r| {
            Ok(PastRun {
                workflow_id: run.workflow_id,
                subject: r.try_get("subject")?,
                started_at: from_millis(r.try_get("created_at")?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let actor = Actor {
            user_id: None,
            name: format!("workflow {}", def.name),
        };
        if let Err(refusal) = admit(
            &def.limits,
            run.workflow_id,
            run.subject.as_deref(),
            &run.chain,
            &past,
            now,
        ) {
            tracing::info!(workflow_id = run.workflow_id, subject = ?run.subject, %refusal, "workflow run refused");
            if let Some(incident_id) = run.incident_id {
                append(
                    w,
                    NewEvent {
                        at: now,
                        actor: &actor,
                        entity: "workflow",
                        entity_id: run.workflow_id,
                        incident_id: Some(incident_id),
                        kind: "workflow.run_refused",
                        data: json!({ "workflow_id": run.workflow_id, "workflow": def.name,
                                      "reason": refusal.to_string(), "refusal": refusal }),
                    },
                )
                .await?;
            }
            return Ok(Err(refusal));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO workflow_runs (workflow_id, version_id, incident_id, subject, trigger_kind, \
             trigger_event_id, status, state, chain, due_at, started_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', '{}', $7, $8, $9, $8, $8) RETURNING id",
        )
        .bind(run.workflow_id)
        .bind(run.version_id)
        .bind(run.incident_id)
        .bind(run.subject)
        .bind(run.trigger_kind)
        .bind(run.trigger_event_id)
        .bind(json_text(&run.chain))
        .bind(to_millis(now))
        .bind(run.started_by)
        .fetch_one(&mut *w.tx)
        .await?;
        let st = RunState::new(
            &id.to_string(),
            run.workflow_id,
            run.version_id,
            run.context,
            now,
        );
        sqlx::query("UPDATE workflow_runs SET state = $1 WHERE id = $2")
            .bind(json_text(&st))
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        super::run_due_now(w, self.backend).await?;
        Ok(Ok(id))
    }

    /// Starts a manual run of workflow `workflow_id` (its current version)
    /// over `context`, for `incident_id` if given, within its limits.
    pub async fn start_manual_run(
        &self,
        workflow_id: i64,
        incident_id: Option<i64>,
        context: Value,
        user_id: i64,
        now: Timestamp,
    ) -> Result<Result<RunSummary, Refusal>, StoreError> {
        let mut w = self.write().await?;
        let version_id: i64 = self
            .lock_workflow(&mut w, workflow_id)
            .await?
            .try_get("current_version_id")?;
        let def = self.definition_in(&mut w, version_id).await?;
        let run = NewRun {
            workflow_id,
            version_id,
            incident_id,
            subject: incident_id.map(|i| format!("incident:{i}")),
            trigger_kind: "manual",
            trigger_event_id: None,
            chain: Vec::new(),
            context,
            started_by: Some(user_id),
        };
        match self.start_run_in(&mut w, &def, run, now).await? {
            Ok(id) => {
                w.commit().await?;
                Ok(Ok(self.workflow_run(id).await?.run))
            }
            Err(refusal) => {
                // The refusal's timeline line stays.
                w.commit().await?;
                Ok(Err(refusal))
            }
        }
    }

    /// Claims the next step due at `now` and leases it for the step's own
    /// timeout plus `margin`; moves runs with nothing to execute on (timers
    /// fired, runs finished) on the way. `None` when nothing is due that this
    /// node can claim.
    pub async fn claim_workflow_step(
        &self,
        now: Timestamp,
        margin: Duration,
    ) -> Result<Option<ClaimedStep>, StoreError> {
        loop {
            let due: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM workflow_runs WHERE due_at <= $1 \
                 AND (lease_until IS NULL OR lease_until <= $1) LIMIT 1",
            )
            .bind(to_millis(now))
            .fetch_optional(&self.pool)
            .await?;
            if due.is_none() {
                return Ok(None);
            }
            let mut w = self.write().await?;
            let id: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT id FROM workflow_runs WHERE due_at <= $1 \
                 AND (lease_until IS NULL OR lease_until <= $1) ORDER BY due_at, id LIMIT 1{}",
                self.skip_locked()
            ))
            .bind(to_millis(now))
            .fetch_optional(&mut *w.tx)
            .await?;
            let Some(id) = id else {
                w.rollback().await?;
                return Ok(None);
            };
            let (row, def, st) = match self.load_run(&mut w, id).await {
                Ok(loaded) => loaded,
                // A run that cannot be read (its version no longer parses in
                // this build) must not stop every run behind it: it is failed
                // and set aside, and said so in the log.
                Err(StoreError::Config(why)) => {
                    tracing::error!(run_id = id, %why, "workflow run set aside as failed");
                    sqlx::query(
                        "UPDATE workflow_runs SET status = 'failed', due_at = NULL, lease_until = NULL, \
                         claim = NULL, updated_at = $1, finished_at = $1 WHERE id = $2",
                    )
                    .bind(to_millis(now))
                    .bind(id)
                    .execute(&mut *w.tx)
                    .await?;
                    w.commit().await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let workflow_name = def.name.clone();
            let incident_id: Option<i64> = row.try_get("incident_id")?;
            let (st, next_step) = self
                .settle(&mut w, id, &def, incident_id, st.clone(), st, now)
                .await?;
            let Next::Execute = next_step else {
                self.save_run(&mut w, id, &st, &next_step, now).await?;
                w.commit().await?;
                continue;
            };
            let Decision::Execute {
                path,
                attempt,
                idempotency_key,
                action,
            } = next(&def, &st, now)
            else {
                return Err(StoreError::Config(format!(
                    "workflow run {id}: settled on a step it cannot execute"
                )));
            };
            let started = apply(
                &def,
                &st,
                &Outcome::Started {
                    path: path.clone(),
                    attempt,
                },
                now,
            )
            .map_err(|e| StoreError::Config(format!("workflow run {id}: {e}")))?;
            let lease = chrono::Duration::from_std(step_timeout(&action) + margin)
                .unwrap_or_else(|_| chrono::Duration::minutes(5));
            let lease_until = now + lease;
            let claim = crate::random_token(16);
            sqlx::query(
                "UPDATE workflow_runs SET state = $1, status = $2, due_at = $3, lease_until = $4, \
                 claim = $5, updated_at = $3 WHERE id = $6",
            )
            .bind(json_text(&started))
            .bind(status_str(started.status))
            .bind(to_millis(now))
            .bind(to_millis(lease_until))
            .bind(&claim)
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
            w.commit().await?;
            let mut chain: Vec<ChainLink> =
                serde_json::from_str(&row.try_get::<String, _>("chain")?).unwrap_or_default();
            chain.push(ChainLink {
                run_id: id.to_string(),
                workflow_id: st.workflow_id,
            });
            return Ok(Some(ClaimedStep {
                run_id: id,
                claim,
                workflow_id: st.workflow_id,
                workflow_name,
                incident_id,
                chain,
                definition: def,
                state: started,
                path,
                attempt,
                idempotency_key,
                action,
                lease_until,
            }));
        }
    }

    /// Records the outcome of a claimed step and moves the run on. `false`
    /// when the claim was lost (its lease ran out and another engine took the
    /// step, or the run was cancelled meanwhile): the outcome is dropped.
    pub async fn record_workflow_outcome(
        &self,
        claimed: &ClaimedStep,
        outcome: &Outcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        let held: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM workflow_runs WHERE id = $1 AND claim = $2{}",
            self.for_update()
        ))
        .bind(claimed.run_id)
        .bind(&claimed.claim)
        .fetch_optional(&mut *w.tx)
        .await?;
        if held.is_none() {
            w.rollback().await?;
            return Ok(false);
        }
        let (row, def, st) = self.load_run(&mut w, claimed.run_id).await?;
        let incident_id: Option<i64> = row.try_get("incident_id")?;
        let after = match apply(&def, &st, outcome, now) {
            Ok(a) => a,
            Err(e @ (RunError::Finished | RunError::Stale { .. })) => {
                tracing::warn!(run_id = claimed.run_id, error = %e, "workflow step outcome dropped");
                sqlx::query(
                    "UPDATE workflow_runs SET claim = NULL, lease_until = NULL WHERE id = $1",
                )
                .bind(claimed.run_id)
                .execute(&mut *w.tx)
                .await?;
                w.commit().await?;
                return Ok(false);
            }
            Err(e) => apply(
                &def,
                &st,
                &Outcome::Cancel {
                    reason: e.to_string(),
                },
                now,
            )
            .map_err(|e| StoreError::Config(e.to_string()))?,
        };
        let (after, next_step) = self
            .settle(&mut w, claimed.run_id, &def, incident_id, st, after, now)
            .await?;
        self.save_run(&mut w, claimed.run_id, &after, &next_step, now)
            .await?;
        w.commit().await?;
        Ok(true)
    }

    /// Someone approves or refuses the approval the run waits for. `roles`:
    /// the roles they hold (account and incident roles).
    pub async fn decide_workflow_approval(
        &self,
        run_id: i64,
        user_id: i64,
        roles: Vec<String>,
        approved: bool,
        comment: Option<String>,
        now: Timestamp,
    ) -> Result<Result<RunView, ApprovalRefused>, StoreError> {
        let mut w = self.write().await?;
        let (row, def, st) = self.lock_run(&mut w, run_id).await?;
        let Some(rec) = st
            .current()
            .filter(|r| r.status == StepStatus::AwaitingApproval)
        else {
            w.rollback().await?;
            return Ok(Err(ApprovalRefused::NotWaiting));
        };
        let outcome = Outcome::Approval {
            path: rec.path.clone(),
            user_id,
            roles,
            approved,
            comment,
        };
        let after = match apply(&def, &st, &outcome, now) {
            Ok(a) => a,
            Err(RunError::NotApprover { role }) => {
                w.rollback().await?;
                return Ok(Err(ApprovalRefused::NotApprover(role)));
            }
            Err(_) => {
                w.rollback().await?;
                return Ok(Err(ApprovalRefused::NotWaiting));
            }
        };
        let incident_id: Option<i64> = row.try_get("incident_id")?;
        let (after, next_step) = self
            .settle(&mut w, run_id, &def, incident_id, st, after, now)
            .await?;
        self.save_run(&mut w, run_id, &after, &next_step, now)
            .await?;
        w.commit().await?;
        self.workflow_run(run_id).await.map(Ok)
    }

    /// Stops a run; a step executing now finishes but its outcome is dropped.
    pub async fn cancel_workflow_run(
        &self,
        run_id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<RunView, StoreError> {
        let mut w = self.write().await?;
        let (row, def, st) = self.lock_run(&mut w, run_id).await?;
        if st.status.is_finished() {
            return Err(StoreError::conflict(
                "status",
                format!("run {run_id} has already finished"),
            ));
        }
        let after = apply(
            &def,
            &st,
            &Outcome::Cancel {
                reason: format!("cancelled by {}", actor.name),
            },
            now,
        )
        .map_err(|e| StoreError::Config(e.to_string()))?;
        let incident_id: Option<i64> = row.try_get("incident_id")?;
        let (after, next_step) = self
            .settle(&mut w, run_id, &def, incident_id, st, after, now)
            .await?;
        self.save_run(&mut w, run_id, &after, &next_step, now)
            .await?;
        w.commit().await?;
        self.workflow_run(run_id).await
    }

    /// One run with its steps.
    pub async fn workflow_run(&self, id: i64) -> Result<RunView, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id WHERE r.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("workflow run {id}")))?;
        let mut v = view(&row)?;
        v.run.workflow_name = self.run_workflow_name(&v).await;
        Ok(v)
    }

    /// Runs of a workflow, or of an incident, newest first (at most `limit`).
    pub async fn workflow_runs(
        &self,
        workflow_id: Option<i64>,
        incident_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id \
             WHERE ($1 = 0 OR r.workflow_id = $1) AND ($2 = 0 OR r.incident_id = $2) \
             ORDER BY r.id DESC LIMIT $3"
        ))
        .bind(workflow_id.unwrap_or(0))
        .bind(incident_id.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut v = view(r)?;
            v.run.workflow_name = self.run_workflow_name(&v).await;
            out.push(v.run);
        }
        Ok(out)
    }

    /// Runs newest first, optionally of one workflow and in one status, older
    /// than run `before_id` (for paging), at most `limit`.
    pub async fn workflow_runs_where(
        &self,
        workflow_id: Option<i64>,
        status: Option<RunStatus>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id \
             WHERE ($1 = 0 OR r.workflow_id = $1) AND ($2 = '' OR r.status = $2) \
             AND ($3 = 0 OR r.id < $3) ORDER BY r.id DESC LIMIT $4"
        ))
        .bind(workflow_id.unwrap_or(0))
        .bind(status.map(status_str).unwrap_or_default())
        .bind(before_id.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut v = view(r)?;
            v.run.workflow_name = self.run_workflow_name(&v).await;
            out.push(v.run);
        }
        Ok(out)
    }

    /// When the next run needs an engine (a due step, a timer, a lease ending).
    pub async fn next_workflow_run_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let t: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > due_at \
             THEN lease_until ELSE due_at END) FROM workflow_runs WHERE due_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(t.map(from_millis))
    }

    /// For `/metrics`: queued trigger events not dispatched yet, and runs by status.
    pub async fn workflow_stats(&self) -> Result<(i64, Vec<(String, i64)>), StoreError> {
        let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workflow_trigger_queue")
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM workflow_runs GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        let runs = rows
            .iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect::<Result<_, StoreError>>()?;
        Ok((queued, runs))
    }

    // The name of the version the run follows (a later edit may rename it).
    async fn run_workflow_name(&self, v: &RunView) -> String {
        match self.workflow_definition(v.run.version_id).await {
            Ok(d) => d.name.clone(),
            Err(_) => v.run.workflow_name.clone(),
        }
    }

    async fn load_run(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<(sqlx::any::AnyRow, Arc<Definition>, RunState), StoreError> {
        let row = sqlx::query(
            "SELECT id, version_id, incident_id, state, chain FROM workflow_runs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("workflow run {id}")))?;
        let def = self.definition_in(w, row.try_get("version_id")?).await?;
        let st = parse_state(id, &row.try_get::<String, _>("state")?)?;
        Ok((row, def, st))
    }

    async fn lock_run(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<(sqlx::any::AnyRow, Arc<Definition>, RunState), StoreError> {
        sqlx::query(&format!(
            "SELECT id FROM workflow_runs WHERE id = $1{}",
            self.for_update()
        ))
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("workflow run {id}")))?;
        self.load_run(w, id).await
    }

    async fn save_run(
        &self,
        w: &mut WriteTx,
        id: i64,
        st: &RunState,
        next_step: &Next,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let due = match next_step {
            Next::Execute => Some(to_millis(now)),
            Next::Due(t) => Some(to_millis(*t)),
            Next::Finished => None,
        };
        sqlx::query(
            "UPDATE workflow_runs SET state = $1, status = $2, due_at = $3, lease_until = NULL, \
             claim = NULL, updated_at = $4, finished_at = $5 WHERE id = $6",
        )
        .bind(json_text(st))
        .bind(status_str(st.status))
        .bind(due)
        .bind(to_millis(now))
        .bind(st.finished_at.map(to_millis))
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        if due.is_some_and(|d| d <= to_millis(now)) {
            super::run_due_now(w, self.backend).await?;
        }
        Ok(())
    }

    /// Moves a run on from `after` as far as it goes without the outside
    /// world (start, timers that fired, broken states), and writes on the
    /// incident's timeline what changed since `before`: the start, each step
    /// done, an approval asked for, the end.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        w: &mut WriteTx,
        run_id: i64,
        def: &Definition,
        incident_id: Option<i64>,
        before: RunState,
        mut st: RunState,
        now: Timestamp,
    ) -> Result<(RunState, Next), StoreError> {
        // Each pass applies one outcome that moves the cursor or ends the run,
        // so this ends within the number of steps.
        let next_step = loop {
            let outcome = match next(def, &st, now) {
                Decision::Start => Outcome::Start,
                Decision::Execute { .. } => break Next::Execute,
                Decision::Wait { path, until }
                | Decision::AwaitApproval {
                    path,
                    deadline: until,
                    ..
                } => {
                    if until > now {
                        break Next::Due(until);
                    }
                    Outcome::TimerFired { path }
                }
                Decision::Finish { .. } => break Next::Finished,
                Decision::Broken { reason } => Outcome::Cancel { reason },
            };
            st = match apply(def, &st, &outcome, now) {
                Ok(s) => s,
                Err(e) => apply(
                    def,
                    &st,
                    &Outcome::Cancel {
                        reason: e.to_string(),
                    },
                    now,
                )
                .map_err(|e| StoreError::Config(format!("workflow run {run_id}: {e}")))?,
            };
        };
        if let Some(incident_id) = incident_id {
            let actor = Actor {
                user_id: None,
                name: format!("workflow {}", def.name),
            };
            for (kind, data) in timeline_lines(run_id, def, &before, &st) {
                append(
                    w,
                    NewEvent {
                        at: now,
                        actor: &actor,
                        entity: "workflow_run",
                        entity_id: run_id,
                        incident_id: Some(incident_id),
                        kind,
                        data,
                    },
                )
                .await?;
            }
            if !before.status.is_finished()
                && st.status.is_finished()
                && st.context.get("runbook").is_some()
            {
                self.runbook_run_finished(w, run_id, incident_id, &def.name, &st, now)
                    .await?;
            }
        }
        if !before.status.is_finished()
            && st.status.is_finished()
            && st.context.get("action_item").is_some()
        {
            self.action_item_issue_finished(w, run_id, &st, now).await?;
        }
        Ok((st, next_step))
    }
}

/// How long a step may take before its lease must be renewed or lost.
fn step_timeout(action: &Action<String>) -> Duration {
    match action {
        Action::Http(h) => Duration::from_secs(h.timeout.as_secs()),
        Action::Command(c) => Duration::from_secs(c.timeout.as_secs()),
        _ => Duration::from_secs(30),
    }
}

// The summary lines for the timeline: what changed between two states.
fn timeline_lines(
    run_id: i64,
    def: &Definition,
    before: &RunState,
    after: &RunState,
) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    let base =
        || json!({ "run_id": run_id, "workflow_id": after.workflow_id, "workflow": def.name });
    if before.status == RunStatus::Pending && after.status != RunStatus::Pending {
        let mut d = base();
        d["version_id"] = json!(after.version_id);
        d["trigger"] = after.context["trigger"]["kind"].clone();
        out.push(("workflow.run_started", d));
    }
    for rec in &after.records {
        let was = before.record(&rec.path).map(|r| r.status);
        if was == Some(rec.status) || rec.kind == "if" {
            continue;
        }
        let kind = match rec.status {
            StepStatus::Succeeded => "workflow.step_succeeded",
            StepStatus::Failed => "workflow.step_failed",
            StepStatus::AwaitingApproval => "workflow.approval_requested",
            _ => continue,
        };
        let mut d = base();
        d["path"] = json!(rec.path.to_string());
        d["step"] = json!(rec.name.clone().or(rec.id.clone()));
        d["step_kind"] = json!(rec.kind);
        d["attempt"] = json!(rec.attempt);
        if let Some(e) = &rec.error {
            d["error"] = json!(e);
        }
        // What an integration created (a Jira issue, a Slack channel, a
        // meeting), so the timeline can link to it.
        if rec.status == StepStatus::Succeeded {
            if let Some(link) = rec.outputs.as_ref().and_then(|o| o.get("link")) {
                if link.is_object() {
                    d["link"] = link.clone();
                }
            }
        }
        if let Some(Action::Approval(a)) = &rec.inputs {
            if rec.status == StepStatus::AwaitingApproval {
                d["role"] = json!(a.role);
                d["prompt"] = json!(a.prompt);
                d["deadline"] = json!(rec.due_at);
            }
        }
        out.push((kind, d));
    }
    if !before.status.is_finished() && after.status.is_finished() {
        let mut d = base();
        d["status"] = json!(after.status);
        d["error"] = json!(after.error);
        out.push(("workflow.run_finished", d));
    }
    out
}
