//! A run of a workflow as a small stored state, and the two pure functions the
//! engine drives it with:
//!
//! - [`next`] reads the state and says the one thing to do now: start, execute
//!   one step (with its idempotency key), wait until a time, wait for an
//!   approval, or finish.
//! - [`apply`] records what came of it (a step's outcome, a timer, an approval,
//!   a cancel) and moves the cursor on to the next step that needs the outside
//!   world, evaluating `if`s, taking branches and skipping on the way.
//!
//! The engine stores the state after each `apply` in the same transaction as
//! the job for the next decision, so after a restart (or on another node)
//! `next` on the stored state says the same thing again: a completed step is
//! never repeated, and a step interrupted mid-call is retried with the same
//! idempotency key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::action::Action;
use super::definition::Definition;
use super::step::StepPath;
use super::text::Template;
use crate::time::Timestamp;
use crate::Invalid;

mod apply;
#[cfg(test)]
mod tests;

pub use apply::apply;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created by a trigger; nothing evaluated yet.
    Pending,
    /// A step is ready to execute or executing.
    Running,
    /// Waiting for a time: a wait step or a retry's backoff.
    Waiting,
    /// Waiting for someone with a role to approve.
    AwaitingApproval,
    /// Every step ran (or was skipped, or failed with continue_on_error).
    Succeeded,
    /// A step failed for good.
    Failed,
    /// Stopped by a person or by the engine.
    Cancelled,
}

/// The run statuses each status may move to; finished runs move nowhere.
pub const RUN_TRANSITIONS: [(RunStatus, &[RunStatus]); 7] = {
    use RunStatus::*;
    const LIVE: &[RunStatus] = &[
        Running,
        Waiting,
        AwaitingApproval,
        Succeeded,
        Failed,
        Cancelled,
    ];
    [
        (Pending, LIVE),
        (Running, LIVE),
        (Waiting, LIVE),
        (AwaitingApproval, LIVE),
        (Succeeded, &[]),
        (Failed, &[]),
        (Cancelled, &[]),
    ]
};

impl RunStatus {
    /// Whether the run is over.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    /// Whether [`RUN_TRANSITIONS`] allows moving to `to` (staying is allowed).
    pub fn can_move_to(self, to: RunStatus) -> bool {
        self == to && !self.is_finished()
            || RUN_TRANSITIONS
                .iter()
                .any(|(from, next)| *from == self && next.contains(&to))
    }
}

/// Where one step of a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Inputs rendered; ready to execute `attempt`.
    Pending,
    /// The engine has started `attempt`.
    Running,
    /// An attempt failed; the next waits until `due_at`.
    RetryWaiting,
    /// A wait step, until `due_at`.
    Waiting,
    /// An approval, until someone decides or `due_at` passes.
    AwaitingApproval,
    /// Done.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Its `if` did not hold.
    Skipped,
    /// The run was cancelled while this step was current.
    Cancelled,
}

impl StepStatus {
    /// Whether nothing more happens to this step.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded
                | StepStatus::Failed
                | StepStatus::Skipped
                | StepStatus::Cancelled
        )
    }
}

/// What happened to one step, as the run view and the timeline show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Where the step is in the definition.
    pub path: StepPath,
    /// The step's id, if it has one.
    pub id: Option<String>,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Its kind (`http`, `if`, `approval`, …).
    pub kind: String,
    /// Where it stands.
    pub status: StepStatus,
    /// The current (or last) attempt, from 1; 0 for steps never executed.
    pub attempt: u32,
    /// Inputs as rendered, with secrets shown as `[secret NAME]`.
    pub inputs: Option<Action<String>>,
    /// What it produced (redacted by the engine before it gets here).
    pub outputs: Option<Value>,
    /// The last error.
    pub error: Option<String>,
    /// When it was first started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// When the wait, the retry backoff or the approval deadline ends.
    pub due_at: Option<Timestamp>,
    /// Who approved or refused.
    pub decided_by: Option<i64>,
}

/// A run as stored: everything [`next`] and [`apply`] need, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The run's id (part of every idempotency key).
    pub run_id: String,
    /// The workflow.
    pub workflow_id: i64,
    /// The definition version the run follows, whatever edits come later.
    pub version_id: i64,
    /// The trigger context: `incident`, `alert`, `event`, `inputs`, `trigger`.
    pub context: Value,
    /// Variables captured so far.
    pub vars: Map<String, Value>,
    /// Where the run stands.
    pub status: RunStatus,
    /// The step the run is at; none before the start and after the end.
    pub cursor: Option<StepPath>,
    /// Steps reached, in the order reached.
    pub records: Vec<StepRecord>,
    /// When the run was created.
    pub created_at: Timestamp,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
}

impl RunState {
    /// A pending run over a trigger `context` (an object).
    pub fn new(
        run_id: &str,
        workflow_id: i64,
        version_id: i64,
        context: Value,
        now: Timestamp,
    ) -> RunState {
        RunState {
            run_id: run_id.to_string(),
            workflow_id,
            version_id,
            context,
            vars: Map::new(),
            status: RunStatus::Pending,
            cursor: None,
            records: Vec::new(),
            created_at: now,
            finished_at: None,
            error: None,
        }
    }

    /// The record of the step at `path`, if it was reached.
    pub fn record(&self, path: &StepPath) -> Option<&StepRecord> {
        self.records.iter().find(|r| &r.path == path)
    }

    /// The record at the cursor.
    pub fn current(&self) -> Option<&StepRecord> {
        self.cursor.as_ref().and_then(|c| self.record(c))
    }

    /// The idempotency key of an attempt: the same for a retried delivery of
    /// the same attempt, different for the next attempt.
    pub fn idempotency_key(&self, path: &StepPath, attempt: u32) -> String {
        format!("{}:{path}:{attempt}", self.run_id)
    }
}

/// The one thing the engine should do next.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The run is pending: apply [`Outcome::Start`].
    Start,
    /// Execute a step (after [`render_step`] with the real secrets), then apply
    /// its outcome.
    Execute {
        /// The step.
        path: StepPath,
        /// Attempt number, from 1.
        attempt: u32,
        /// Run id + step path + attempt: the same when this decision is repeated.
        idempotency_key: String,
        /// Inputs as rendered, secrets shown as `[secret NAME]`.
        action: Action<String>,
    },
    /// Nothing until `until`; then apply [`Outcome::TimerFired`] (at once if
    /// `until` has passed).
    Wait {
        /// The step waiting (a wait step or a retry).
        path: StepPath,
        /// When.
        until: Timestamp,
    },
    /// Ask holders of `role`; apply [`Outcome::Approval`], or
    /// [`Outcome::TimerFired`] at the deadline.
    AwaitApproval {
        /// The approval step (or `gate`).
        path: StepPath,
        /// Who may decide.
        role: String,
        /// What they are asked.
        prompt: String,
        /// When it times out.
        deadline: Timestamp,
    },
    /// The run is over: write its summary line on the timeline.
    Finish {
        /// How it ended.
        status: RunStatus,
        /// Why, if it failed or was cancelled.
        error: Option<String>,
    },
    /// The stored state does not fit the definition (never produced by
    /// [`apply`]); the engine should cancel the run with this reason.
    Broken {
        /// What does not fit.
        reason: String,
    },
}

/// What came of a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Start a pending run.
    Start,
    /// The engine began an attempt (optional; records the start time).
    Started {
        /// The step.
        path: StepPath,
        /// The attempt.
        attempt: u32,
    },
    /// The attempt succeeded with these outputs (already redacted).
    Succeeded {
        /// The step.
        path: StepPath,
        /// The attempt.
        attempt: u32,
        /// What it produced; for HTTP `{status, headers, body}`.
        outputs: Value,
    },
    /// The attempt failed.
    Failed {
        /// The step.
        path: StepPath,
        /// The attempt.
        attempt: u32,
        /// What went wrong (already redacted).
        error: String,
        /// Whether trying again may help (timeouts, 5xx, connection errors).
        retryable: bool,
    },
    /// A wait, backoff or approval deadline came.
    TimerFired {
        /// The step.
        path: StepPath,
    },
    /// Someone approved or refused.
    Approval {
        /// The approval step (or `gate`).
        path: StepPath,
        /// Who.
        user_id: i64,
        /// The roles they hold (incident roles and their account role).
        roles: Vec<String>,
        /// Yes or no.
        approved: bool,
        /// What they said.
        comment: Option<String>,
    },
    /// Stop the run.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// An outcome that does not fit the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The run is over.
    #[error("the run has finished")]
    Finished,
    /// The run has not started; apply `start` first.
    #[error("the run has not started")]
    NotStarted,
    /// The run has already started.
    #[error("the run has already started")]
    AlreadyStarted,
    /// The outcome is for a step or attempt that is not current (a duplicate
    /// or late delivery); nothing was changed.
    #[error("stale outcome for {got}; the run is at {at}")]
    Stale {
        /// The step and attempt the outcome named.
        got: String,
        /// Where the run is.
        at: String,
    },
    /// A timer fired before its time.
    #[error("the timer for {path} is due at {due}")]
    TooEarly {
        /// The step.
        path: String,
        /// When it is due.
        due: Timestamp,
    },
    /// The person does not hold the role that decides.
    #[error("only holders of the {role} role may decide this approval")]
    NotApprover {
        /// The role needed.
        role: String,
    },
    /// The stored state does not fit the definition.
    #[error("the run does not fit its definition: {0}")]
    Broken(String),
}

/// The context templates see at this point of the run. `secrets` maps names to
/// values for execution; without it, each secret reads as `[secret NAME]`.
pub fn context(
    def: &Definition,
    st: &RunState,
    secrets: Option<&BTreeMap<String, String>>,
) -> Value {
    let mut ctx = match &st.context {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let steps: Map<String, Value> = st
        .records
        .iter()
        .filter_map(|r| {
            let id = r.id.clone()?;
            Some((
                id,
                json!({"status": r.status, "outputs": r.outputs, "error": r.error}),
            ))
        })
        .collect();
    ctx.insert("steps".into(), Value::Object(steps));
    ctx.insert("vars".into(), Value::Object(st.vars.clone()));
    ctx.insert(
        "run".into(),
        json!({"id": st.run_id, "workflow_id": st.workflow_id, "version_id": st.version_id}),
    );
    let secret_values: Map<String, Value> = def
        .secret_names()
        .into_iter()
        .map(|name| {
            let v = match secrets {
                Some(s) => s.get(&name).cloned().unwrap_or_default(),
                None => format!("[secret {name}]"),
            };
            (name, Value::String(v))
        })
        .collect();
    ctx.insert("secrets".into(), Value::Object(secret_values));
    Value::Object(ctx)
}

/// Renders the action of the step at `path` in this state. With `secrets`, the
/// result carries them: use it for the call, never store or show it.
pub fn render_step(
    def: &Definition,
    st: &RunState,
    path: &StepPath,
    secrets: Option<&BTreeMap<String, String>>,
) -> Result<Action<String>, Invalid> {
    let at = path.to_string();
    let action = def
        .step(path)
        .and_then(|s| s.action())
        .ok_or_else(|| Invalid::new(at.clone(), "is not an action step of this definition"))?;
    let ctx = context(def, st, secrets);
    let rendered =
        action.map(&mut |field: &str, t: &Template| t.render(&format!("{at}.{field}"), &ctx))?;
    rendered.check(&at)?;
    Ok(rendered)
}

/// The one thing to do next in this run.
pub fn next(def: &Definition, st: &RunState, now: Timestamp) -> Decision {
    if st.status == RunStatus::Pending {
        return Decision::Start;
    }
    if st.status.is_finished() {
        return Decision::Finish {
            status: st.status,
            error: st.error.clone(),
        };
    }
    let Some(rec) = st.current() else {
        return Decision::Broken {
            reason: "a live run has no current step".into(),
        };
    };
    let path = rec.path.clone();
    let due = rec.due_at.unwrap_or(now);
    match rec.status {
        StepStatus::Pending | StepStatus::Running => execute(st, rec),
        StepStatus::RetryWaiting if now >= due => execute(st, rec),
        StepStatus::RetryWaiting | StepStatus::Waiting => Decision::Wait { path, until: due },
        StepStatus::AwaitingApproval => {
            let (role, prompt) = approval_of(def, rec);
            Decision::AwaitApproval {
                path,
                role,
                prompt,
                deadline: due,
            }
        }
        done => Decision::Broken {
            reason: format!("the current step {path} is already {done:?}"),
        },
    }
}

fn execute(st: &RunState, rec: &StepRecord) -> Decision {
    match &rec.inputs {
        Some(action) => Decision::Execute {
            path: rec.path.clone(),
            attempt: rec.attempt,
            idempotency_key: st.idempotency_key(&rec.path, rec.attempt),
            action: action.clone(),
        },
        None => Decision::Broken {
            reason: format!("step {} has no rendered inputs", rec.path),
        },
    }
}

fn approval_of(def: &Definition, rec: &StepRecord) -> (String, String) {
    match &rec.inputs {
        Some(Action::Approval(a)) => (a.role.clone(), a.prompt.clone()),
        _ => (
            def.limits.approver_role.clone(),
            format!("Run the workflow “{}”?", def.name),
        ),
    }
}
