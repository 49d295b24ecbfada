//! Recording outcomes and moving the cursor to the next step that needs the
//! outside world.

use serde_json::{json, Value};

use super::{context, render_step, Outcome, RunError, RunState, RunStatus, StepRecord, StepStatus};
use crate::time::Timestamp;
use crate::workflow::action::{Action, Approval, OnTimeout, Wait};
use crate::workflow::definition::Definition;
use crate::workflow::step::{Body, Step, StepPath};
use crate::workflow::text::Template;

/// Records `outcome` and returns the new state; the input state is untouched
/// when the outcome does not fit (a stale or duplicate delivery, a timer
/// before its time, an approver without the role).
pub fn apply(
    def: &Definition,
    st: &RunState,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<RunState, RunError> {
    if st.status.is_finished() {
        return Err(RunError::Finished);
    }
    let mut st = st.clone();
    let before = st.status;
    match outcome {
        Outcome::Start => {
            if st.status != RunStatus::Pending {
                return Err(RunError::AlreadyStarted);
            }
            st.status = RunStatus::Running;
            advance(def, &mut st, None, now)?;
        }
        Outcome::Cancel { reason } => {
            if let Some(i) = current_index(&st) {
                let rec = &mut st.records[i];
                if !rec.status.is_done() {
                    rec.status = StepStatus::Cancelled;
                    rec.finished_at = Some(now);
                }
            }
            finish(&mut st, RunStatus::Cancelled, Some(reason.clone()), now);
        }
        _ if st.status == RunStatus::Pending => return Err(RunError::NotStarted),
        Outcome::Started { path, attempt } => {
            let i = executing(&st, path, *attempt, now)?;
            let rec = &mut st.records[i];
            rec.status = StepStatus::Running;
            rec.started_at.get_or_insert(now);
            st.status = RunStatus::Running;
        }
        Outcome::Succeeded {
            path,
            attempt,
            outputs,
        } => {
            let i = executing(&st, path, *attempt, now)?;
            succeeded(def, &mut st, i, outputs.clone(), now)?;
        }
        Outcome::Failed {
            path,
            attempt,
            error,
            retryable,
        } => {
            let i = executing(&st, path, *attempt, now)?;
            let retry = step_of(def, path)?.retry;
            if *retryable && *attempt < retry.attempts {
                let rec = &mut st.records[i];
                rec.status = StepStatus::RetryWaiting;
                rec.error = Some(error.clone());
                rec.due_at = Some(now + retry.delay_after(*attempt).to_duration());
                rec.attempt += 1;
                st.status = RunStatus::Waiting;
            } else {
                step_failed(def, &mut st, i, error.clone(), now)?;
            }
        }
        Outcome::TimerFired { path } => {
            let i = expect(
                &st,
                path,
                None,
                &[
                    StepStatus::RetryWaiting,
                    StepStatus::Waiting,
                    StepStatus::AwaitingApproval,
                ],
            )?;
            let rec = &st.records[i];
            let due = rec.due_at.unwrap_or(now);
            if now < due {
                return Err(RunError::TooEarly {
                    path: path.to_string(),
                    due,
                });
            }
            match rec.status {
                StepStatus::RetryWaiting => {
                    st.records[i].status = StepStatus::Pending;
                    st.status = RunStatus::Running;
                }
                StepStatus::Waiting => {
                    succeeded(def, &mut st, i, json!({"waited_until": due}), now)?;
                }
                _ => {
                    let on_timeout = match &rec.inputs {
                        Some(Action::Approval(a)) if !path.is_gate() => a.on_timeout,
                        _ => OnTimeout::Fail,
                    };
                    match on_timeout {
                        OnTimeout::Fail => {
                            step_failed(def, &mut st, i, "nobody approved in time".into(), now)?
                        }
                        OnTimeout::Continue => succeeded(
                            def,
                            &mut st,
                            i,
                            json!({"approved": false, "timed_out": true}),
                            now,
                        )?,
                    }
                }
            }
        }
        Outcome::Approval {
            path,
            user_id,
            roles,
            approved,
            comment,
        } => {
            let i = expect(&st, path, None, &[StepStatus::AwaitingApproval])?;
            let role = match &st.records[i].inputs {
                Some(Action::Approval(a)) => a.role.clone(),
                _ => def.limits.approver_role.clone(),
            };
            if !roles.contains(&role) {
                return Err(RunError::NotApprover { role });
            }
            st.records[i].decided_by = Some(*user_id);
            if *approved {
                let out = json!({"approved": true, "by": user_id, "comment": comment});
                succeeded(def, &mut st, i, out, now)?;
            } else {
                let why = match comment {
                    Some(c) => format!("refused by user {user_id}: {c}"),
                    None => format!("refused by user {user_id}"),
                };
                step_failed(def, &mut st, i, why, now)?;
            }
        }
    }
    if !before.can_move_to(st.status) {
        return Err(RunError::Broken(format!(
            "{before:?} may not become {:?}",
            st.status
        )));
    }
    Ok(st)
}

fn current_index(st: &RunState) -> Option<usize> {
    let c = st.cursor.as_ref()?;
    st.records.iter().position(|r| &r.path == c)
}

// The index of the current record if the outcome names it (and its attempt)
// and it is in one of `states`; otherwise the outcome is stale.
fn expect(
    st: &RunState,
    path: &StepPath,
    attempt: Option<u32>,
    states: &[StepStatus],
) -> Result<usize, RunError> {
    let stale = || RunError::Stale {
        got: match attempt {
            Some(a) => format!("{path} attempt {a}"),
            None => path.to_string(),
        },
        at: match st.current() {
            Some(r) => format!("{} attempt {} ({:?})", r.path, r.attempt, r.status),
            None => "no step".into(),
        },
    };
    let i = current_index(st)
        .filter(|i| &st.records[*i].path == path)
        .ok_or_else(stale)?;
    let rec = &st.records[i];
    if !states.contains(&rec.status) || attempt.is_some_and(|a| a != rec.attempt) {
        return Err(stale());
    }
    Ok(i)
}

// The step `next` would execute: pending, running, or a retry whose backoff
// is over (the engine may execute it without a timer outcome first).
fn executing(
    st: &RunState,
    path: &StepPath,
    attempt: u32,
    now: Timestamp,
) -> Result<usize, RunError> {
    let live = [
        StepStatus::Pending,
        StepStatus::Running,
        StepStatus::RetryWaiting,
    ];
    let i = expect(st, path, Some(attempt), &live)?;
    let rec = &st.records[i];
    match rec.due_at {
        Some(due) if rec.status == StepStatus::RetryWaiting && now < due => {
            Err(RunError::TooEarly {
                path: path.to_string(),
                due,
            })
        }
        _ => Ok(i),
    }
}

fn step_of<'a>(def: &'a Definition, path: &StepPath) -> Result<&'a Step, RunError> {
    def.step(path)
        .ok_or_else(|| RunError::Broken(format!("the definition has no step {path}")))
}

fn succeeded(
    def: &Definition,
    st: &mut RunState,
    i: usize,
    outputs: Value,
    now: Timestamp,
) -> Result<(), RunError> {
    let path = st.records[i].path.clone();
    // HTTP captures read the response: `response.body.id`.
    if let Some(Action::Http(h)) = def.step(&path).and_then(Step::action) {
        let ctx = json!({"response": outputs});
        let mut vars = Vec::new();
        for (name, e) in &h.capture {
            match e.eval(&format!("{path}.http.capture.{name}"), &ctx) {
                Ok(v) => vars.push((name.clone(), v)),
                Err(err) => {
                    st.records[i].outputs = Some(outputs);
                    return step_failed(def, st, i, err.to_string(), now);
                }
            }
        }
        st.vars.extend(vars);
    }
    let rec = &mut st.records[i];
    rec.status = StepStatus::Succeeded;
    rec.outputs = Some(outputs);
    rec.error = None;
    rec.finished_at = Some(now);
    advance(def, st, Some(path), now)
}

// A step failed for good: the run goes on past it if the step says so.
fn step_failed(
    def: &Definition,
    st: &mut RunState,
    i: usize,
    error: String,
    now: Timestamp,
) -> Result<(), RunError> {
    let path = st.records[i].path.clone();
    let rec = &mut st.records[i];
    rec.status = StepStatus::Failed;
    rec.error = Some(error.clone());
    rec.finished_at = Some(now);
    let goes_on = !path.is_gate() && step_of(def, &path)?.continue_on_error;
    if goes_on {
        advance(def, st, Some(path), now)
    } else {
        finish(st, RunStatus::Failed, Some(format!("{path}: {error}")), now);
        Ok(())
    }
}

fn finish(st: &mut RunState, status: RunStatus, error: Option<String>, now: Timestamp) {
    st.status = status;
    st.error = error;
    st.cursor = None;
    st.finished_at = Some(now);
}

fn needs_gate(def: &Definition, st: &RunState) -> bool {
    let severity = |key: &str| {
        st.context
            .get(key)
            .and_then(|o| o.get("severity"))
            .and_then(Value::as_str)
    };
    match severity("incident").or_else(|| severity("alert")) {
        Some(s) => def.limits.requires_approval_for.iter().any(|r| r == s),
        None => false,
    }
}

fn new_record(path: &StepPath, step: Option<&Step>, kind: &str, now: Timestamp) -> StepRecord {
    StepRecord {
        path: path.clone(),
        id: step.and_then(|s| s.id.clone()),
        name: step.and_then(|s| s.name.clone()),
        kind: kind.to_string(),
        status: StepStatus::Pending,
        attempt: 0,
        inputs: None,
        outputs: None,
        error: None,
        started_at: Some(now),
        finished_at: None,
        due_at: None,
        decided_by: None,
    }
}

/// Moves the cursor past `from` (or to the start) until a step needs the
/// outside world or the run ends. Each loop pass records one step, and paths
/// only move forward, so this ends within the number of steps.
fn advance(
    def: &Definition,
    st: &mut RunState,
    from: Option<StepPath>,
    now: Timestamp,
) -> Result<(), RunError> {
    let mut next = match from {
        None if needs_gate(def, st) => Some(StepPath::gate()),
        None => Some(StepPath::top(0)),
        Some(p) => p.after(&def.steps),
    };
    loop {
        let Some(path) = next.take() else {
            finish(st, RunStatus::Succeeded, None, now);
            return Ok(());
        };
        st.cursor = Some(path.clone());
        if path.is_gate() {
            let mut rec = new_record(&path, None, "approval", now);
            let severity = ["incident", "alert"]
                .iter()
                .find_map(|k| {
                    st.context
                        .get(k)
                        .and_then(|o| o.get("severity"))
                        .and_then(Value::as_str)
                })
                .unwrap_or_default()
                .to_string();
            rec.inputs = Some(Action::Approval(Approval {
                role: def.limits.approver_role.clone(),
                prompt: format!(
                    "Run the workflow “{}” for this {severity} incident?",
                    def.name
                ),
                timeout: def.limits.approval_timeout,
                on_timeout: OnTimeout::Fail,
            }));
            rec.status = StepStatus::AwaitingApproval;
            rec.due_at = Some(now + def.limits.approval_timeout.to_duration());
            st.records.push(rec);
            st.status = RunStatus::AwaitingApproval;
            return Ok(());
        }
        let step = step_of(def, &path)?;
        st.records
            .push(new_record(&path, Some(step), step.kind(), now));
        let i = st.records.len() - 1;
        if let Some(cond) = &step.when {
            let ctx = context(def, st, None);
            match cond.holds(&format!("{path}.if"), &ctx) {
                Err(e) => return step_failed(def, st, i, e.to_string(), now),
                Ok(holds) => {
                    if let Body::Branch { .. } = step.body {
                        let rec = &mut st.records[i];
                        rec.status = StepStatus::Succeeded;
                        rec.outputs = Some(json!({"branch": if holds { "then" } else { "else" }}));
                        rec.finished_at = Some(now);
                        let inside = path.enter(holds);
                        next = if inside.resolve(&def.steps).is_some() {
                            Some(inside)
                        } else {
                            path.after(&def.steps)
                        };
                        continue;
                    }
                    if !holds {
                        let rec = &mut st.records[i];
                        rec.status = StepStatus::Skipped;
                        rec.finished_at = Some(now);
                        next = path.after(&def.steps);
                        continue;
                    }
                }
            }
        }
        let Some(action) = step.action() else {
            return Err(RunError::Broken(format!(
                "{path} is a branch without a condition"
            )));
        };
        return land(def, st, i, action, now);
    }
}

// The cursor reaches an action: render its inputs (secrets as markers) and
// set the step and run waiting for the right thing.
fn land(
    def: &Definition,
    st: &mut RunState,
    i: usize,
    action: &Action<Template>,
    now: Timestamp,
) -> Result<(), RunError> {
    let path = st.records[i].path.clone();
    let rendered = match render_step(def, st, &path, None) {
        Ok(r) => r,
        Err(e) => return step_failed(def, st, i, e.to_string(), now),
    };
    let (status, run_status, due) = match (action, &rendered) {
        (Action::Wait(Wait::Duration(d)), _) => (
            StepStatus::Waiting,
            RunStatus::Waiting,
            Some(now + d.to_duration()),
        ),
        (_, Action::Wait(Wait::Until(t))) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(t) => (
                StepStatus::Waiting,
                RunStatus::Waiting,
                Some(t.with_timezone(&chrono::Utc).max(now)),
            ),
            Err(_) => {
                return step_failed(
                    def,
                    st,
                    i,
                    format!("{path}.wait.until: `{t}` is not an RFC 3339 time"),
                    now,
                )
            }
        },
        (_, Action::Approval(a)) => (
            StepStatus::AwaitingApproval,
            RunStatus::AwaitingApproval,
            Some(now + a.timeout.to_duration()),
        ),
        _ => (StepStatus::Pending, RunStatus::Running, None),
    };
    let rec = &mut st.records[i];
    rec.status = status;
    rec.due_at = due;
    rec.attempt = if status == StepStatus::Pending { 1 } else { 0 };
    rec.inputs = Some(rendered);
    st.status = run_status;
    Ok(())
}
