//! Dry-run: what each step of a workflow would do against an incident, without
//! doing any of it. Conditions are evaluated and inputs rendered (secrets as
//! `[secret NAME]`); what depends on an earlier step's output is marked so
//! rather than failing, since no step runs.

use std::collections::BTreeSet;
use std::convert::Infallible;

use serde::Serialize;
use serde_json::Value;

use super::action::{Action, OnTimeout, Wait};
use super::definition::Definition;
use super::run::{context, RunState};
use super::step::{Body, Seg, Step, StepPath};
use super::text::{Refs, Template};
use crate::time::Timestamp;

/// Whether a step would run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "runs", rename_all = "snake_case")]
pub enum Runs {
    /// It would run.
    Yes,
    /// Its `if` does not hold.
    Skipped,
    /// It is in the branch not taken.
    NotTaken,
    /// Whether it runs depends on earlier steps' outputs.
    Depends {
        /// Those steps.
        on: Vec<String>,
    },
    /// Its condition could not be evaluated.
    Error,
}

/// One step of a dry-run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    /// Where it is.
    pub path: StepPath,
    /// Its id.
    pub id: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// Its kind (`http`, `if`, …).
    pub kind: String,
    /// Whether it would run.
    pub runs: Runs,
    /// Inputs as they would be rendered now (secrets as `[secret NAME]`).
    pub inputs: Option<Action<String>>,
    /// Steps whose outputs the inputs read ("depends on step X output"); those
    /// parts render empty here.
    pub depends_on: Vec<String>,
    /// A template or check error the step would fail with.
    pub error: Option<String>,
    /// What else a person should know: which branch, how long it waits.
    pub note: Option<String>,
}

/// Plans every step against `context` (the trigger context a run would get).
pub fn plan(def: &Definition, context_value: &Value) -> Vec<PlannedStep> {
    let epoch = Timestamp::default();
    let st = RunState::new("dry-run", 0, 0, context_value.clone(), epoch);
    let ctx = context(def, &st, None);
    let mut out = Vec::new();
    let severity = ["incident", "alert"].iter().find_map(|k| {
        context_value
            .get(k)
            .and_then(|o| o.get("severity"))
            .and_then(Value::as_str)
    });
    if let Some(s) = severity.filter(|s| def.limits.requires_approval_for.iter().any(|r| r == s)) {
        out.push(PlannedStep {
            path: StepPath::gate(),
            id: None,
            name: None,
            kind: "approval".into(),
            runs: Runs::Yes,
            inputs: None,
            depends_on: Vec::new(),
            error: None,
            note: Some(format!(
                "waits for approval by {} (severity {s}; fails after {})",
                def.limits.approver_role, def.limits.approval_timeout
            )),
        });
    }
    let planner = Planner { def, ctx };
    planner.top(&def.steps, &mut out);
    out
}

struct Planner<'a> {
    def: &'a Definition,
    ctx: Value,
}

impl Planner<'_> {
    fn top(&self, steps: &[Step], out: &mut Vec<PlannedStep>) {
        for (i, step) in steps.iter().enumerate() {
            self.step(step, StepPath::top(i), Runs::Yes, out);
        }
    }

    fn step(&self, step: &Step, path: StepPath, inherited: Runs, out: &mut Vec<PlannedStep>) {
        let mut planned = PlannedStep {
            path: path.clone(),
            id: step.id.clone(),
            name: step.name.clone(),
            kind: step.kind().into(),
            runs: inherited.clone(),
            inputs: None,
            depends_on: Vec::new(),
            error: None,
            note: None,
        };
        // None: unknown until earlier steps run.
        let holds = match &step.when {
            None => Some(true),
            Some(w) if w.refs().reads_outputs() => {
                if !matches!(inherited, Runs::NotTaken) {
                    planned.runs = Runs::Depends {
                        on: self.producers(&w.refs()),
                    };
                }
                None
            }
            Some(w) => match w.holds(&format!("{path}.if"), &self.ctx) {
                Ok(h) => Some(h),
                Err(e) => {
                    planned.runs = Runs::Error;
                    planned.error = Some(e.to_string());
                    None
                }
            },
        };
        match &step.body {
            Body::Branch { then, otherwise } => {
                planned.note = Some(match holds {
                    Some(true) => "takes then".into(),
                    Some(false) => "takes else".into(),
                    None => "the branch depends on earlier steps".into(),
                });
                let child_runs = |taken: bool| match (&planned.runs, holds) {
                    (Runs::Yes, Some(h)) if h == taken => Runs::Yes,
                    (Runs::Yes, Some(_)) | (Runs::NotTaken, _) | (Runs::Skipped, _) => {
                        Runs::NotTaken
                    }
                    (other, _) => other.clone(),
                };
                let (then_runs, else_runs) = (child_runs(true), child_runs(false));
                out.push(planned);
                self.branch(then, &path, true, then_runs, out);
                self.branch(otherwise, &path, false, else_runs, out);
            }
            Body::Action(action) => {
                if holds == Some(false) && planned.runs == Runs::Yes {
                    planned.runs = Runs::Skipped;
                }
                self.render(action, &path, &mut planned);
                out.push(planned);
            }
        }
    }

    fn branch(
        &self,
        steps: &[Step],
        parent: &StepPath,
        then: bool,
        runs: Runs,
        out: &mut Vec<PlannedStep>,
    ) {
        for (i, step) in steps.iter().enumerate() {
            let mut p = parent.0.clone();
            p.push(if then { Seg::Then(i) } else { Seg::Else(i) });
            self.step(step, StepPath(p), runs.clone(), out);
        }
    }

    fn render(&self, action: &Action<Template>, path: &StepPath, planned: &mut PlannedStep) {
        let mut deps = BTreeSet::new();
        let mut first_error = None;
        let rendered = action.map(
            &mut |field: &str, t: &Template| -> Result<String, Infallible> {
                let refs = t.refs();
                if refs.reads_outputs() {
                    deps.extend(self.producers(&refs));
                }
                Ok(t.render(&format!("{path}.{field}"), &self.ctx)
                    .unwrap_or_else(|e| {
                        first_error.get_or_insert(e.to_string());
                        String::new()
                    }))
            },
        );
        let Ok(rendered) = rendered;
        if first_error.is_none() && deps.is_empty() {
            if let Err(e) = rendered.check(&path.to_string()) {
                first_error = Some(e.to_string());
            }
        }
        planned.note = match &rendered {
            Action::Wait(Wait::Duration(d)) => Some(format!("waits {d}")),
            Action::Wait(Wait::Until(t)) => Some(format!("waits until {t}")),
            Action::Approval(a) => Some(format!(
                "waits for approval by {} ({} after {})",
                a.role,
                if a.on_timeout == OnTimeout::Fail {
                    "fails"
                } else {
                    "goes on"
                },
                a.timeout
            )),
            _ => None,
        };
        planned.depends_on = deps.into_iter().collect();
        planned.error = planned.error.take().or(first_error);
        planned.inputs = Some(rendered);
    }

    // The steps that produce what `refs` reads: step ids, and for variables the
    // steps that capture them.
    fn producers(&self, refs: &Refs) -> Vec<String> {
        let mut out: BTreeSet<String> = refs.steps.iter().cloned().collect();
        for (p, s) in StepPath::walk(&self.def.steps) {
            if let Some(Action::Http(h)) = s.action() {
                if h.capture.keys().any(|k| refs.vars.contains(k)) {
                    out.insert(s.id.clone().unwrap_or_else(|| p.to_string()));
                }
            }
        }
        if refs.any_output && out.is_empty() {
            out.insert("an earlier step".into());
        }
        out.into_iter().collect()
    }
}
