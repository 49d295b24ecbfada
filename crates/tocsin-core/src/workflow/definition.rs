//! A workflow definition as users write it in YAML, parsed into typed values
//! and checked as a whole: templates compile, every `steps.ID` names an earlier
//! step, every `vars.NAME` is captured earlier, every `inputs.NAME` is declared.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::action::Action;
use super::step::{parse_steps, Body, Seg, Step, StepPath};
use super::text::{is_name, Expr, Refs, Span};
use super::trigger::Trigger;
use super::yaml::{self, Fields};
use crate::Invalid;

/// Longest workflow name.
pub const MAX_NAME: usize = 200;

/// A workflow: when it runs, on what condition, what it does, and its limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Definition {
    /// Name shown in lists and on the timeline.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Whether triggers start it (a disabled workflow can still be dry-run).
    pub enabled: bool,
    /// What starts it.
    pub trigger: Trigger,
    /// Expressions over the trigger context that must all hold for it to run.
    pub conditions: Vec<Expr>,
    /// What it does, in order.
    pub steps: Vec<Step>,
    /// Guardrails.
    pub limits: Limits,
}

/// Guardrails a workflow carries with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Most runs per incident (for alert triggers, per alert): stops two
    /// workflows that trigger each other.
    pub max_runs_per_incident: u32,
    /// Most runs in any hour, over all incidents.
    pub max_runs_per_hour: u32,
    /// Least time between two runs for the same incident (or alert).
    pub cool_down: Option<Span>,
    /// Severities for which a run waits for an approval before its first step
    /// (the incident's severity, or the alert's when there is no incident).
    pub requires_approval_for: Vec<String>,
    /// Role whose holders approve such runs.
    pub approver_role: String,
    /// How long such an approval is waited for before the run fails.
    pub approval_timeout: Span,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_runs_per_incident: 3,
            max_runs_per_hour: 60,
            cool_down: None,
            requires_approval_for: Vec::new(),
            approver_role: "commander".into(),
            approval_timeout: Span::mins(30),
        }
    }
}

impl Limits {
    fn parse(path: &str, v: Option<&Value>) -> Result<Limits, Invalid> {
        let mut l = Limits::default();
        let Some(v) = v else { return Ok(l) };
        let mut f = Fields::new(path, v, "the limits")?;
        if let Some(n) = f.number("max_runs_per_incident", 1, 100)? {
            l.max_runs_per_incident = n as u32;
        }
        if let Some(n) = f.number("max_runs_per_hour", 1, 10_000)? {
            l.max_runs_per_hour = n as u32;
        }
        l.cool_down = f.span("cool_down", Span::hours(24 * 7))?;
        l.requires_approval_for = f.texts("requires_approval_for")?;
        if let Some(r) = f.text("approver_role")? {
            if !is_name(&r) {
                return Err(Invalid::new(
                    f.path("approver_role"),
                    format!("`{r}` is not a role name"),
                ));
            }
            l.approver_role = r;
        }
        if let Some(t) = f.span("approval_timeout", Span::hours(24 * 7))? {
            l.approval_timeout = t;
        }
        f.finish()?;
        Ok(l)
    }
}

/// Parses a workflow definition from YAML. Every error names the field, e.g.
/// `steps[2].http.url` or `trigger.schedule.cron`.
pub fn parse(text: &str) -> Result<Definition, Invalid> {
    let v = yaml::to_json("definition", text)?;
    parse_value(&v)
}

/// Parses a definition from its JSON form (the API may send either).
pub fn parse_value(v: &Value) -> Result<Definition, Invalid> {
    if !v.is_object() {
        return Err(Invalid::new(
            "definition",
            "must be a mapping with name, trigger and steps",
        ));
    }
    let mut f = Fields::new("", v, "a workflow")?;
    let name = f.req_text("name")?.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(Invalid::new(
            "name",
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    let description = f.text("description")?;
    let enabled = f.flag("enabled", true)?;
    let trigger = match f.get("trigger") {
        Some(t) => Trigger::parse("trigger", t)?,
        None => return Err(f.missing("trigger")),
    };
    // One condition may be written bare; either way it is `conditions[i]`.
    let conditions = f
        .list("conditions")
        .into_iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let p = format!("conditions[{i}]");
            Expr::parse(&p, &yaml::text_of(&p, v)?)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let steps = parse_steps("steps", f.get("steps"), 0, &mut 0)?;
    if steps.is_empty() {
        return Err(Invalid::new("steps", "a workflow needs at least one step"));
    }
    let limits = Limits::parse("limits", f.get("limits"))?;
    f.finish()?;
    let def = Definition {
        name,
        description,
        enabled,
        trigger,
        conditions,
        steps,
        limits,
    };
    def.check_refs()?;
    Ok(def)
}

/// One text of a definition with where it is and what it reads.
pub struct TextRef {
    /// Field path, e.g. `steps[2].http.url`.
    pub field: String,
    /// The step it belongs to (none for the conditions).
    pub step: Option<StepPath>,
    /// What it reads.
    pub refs: Refs,
}

impl Definition {
    /// Every template and expression with its field path, in run order.
    pub fn texts(&self) -> Vec<TextRef> {
        let mut out: Vec<TextRef> = Vec::new();
        for (i, c) in self.conditions.iter().enumerate() {
            out.push(TextRef {
                field: format!("conditions[{i}]"),
                step: None,
                refs: c.refs(),
            });
        }
        for (path, step) in StepPath::walk(&self.steps) {
            let at = path.to_string();
            let mut push = |field: String, refs: Refs| {
                out.push(TextRef {
                    field,
                    step: Some(path.clone()),
                    refs,
                })
            };
            if let Some(w) = &step.when {
                push(format!("{at}.if"), w.refs());
            }
            if let Body::Action(a) = &step.body {
                let _ = a.map(&mut |field: &str, t| -> Result<(), ()> {
                    push(format!("{at}.{field}"), t.refs());
                    Ok(())
                });
                if let Action::Http(h) = a {
                    for (name, e) in &h.capture {
                        push(format!("{at}.http.capture.{name}"), e.refs());
                    }
                }
            }
        }
        out
    }

    /// The step at `path`.
    pub fn step(&self, path: &StepPath) -> Option<&Step> {
        path.resolve(&self.steps)
    }

    /// Secret names the definition reads, so saving can refuse unknown ones and
    /// the engine can hand a run only those.
    pub fn secret_names(&self) -> BTreeSet<String> {
        self.texts()
            .into_iter()
            .flat_map(|t| t.refs.secrets)
            .collect()
    }

    /// Command names the definition runs, so saving can refuse those not on
    /// the configured allowlist.
    pub fn command_names(&self) -> BTreeSet<String> {
        StepPath::walk(&self.steps)
            .into_iter()
            .filter_map(|(_, s)| match s.action() {
                Some(Action::Command(c)) => Some(c.name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether every condition holds in the trigger context.
    pub fn conditions_hold(&self, ctx: &Value) -> Result<bool, Invalid> {
        for (i, c) in self.conditions.iter().enumerate() {
            if !c.holds(&format!("conditions[{i}]"), ctx)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn check_refs(&self) -> Result<(), Invalid> {
        let order = StepPath::walk(&self.steps);
        let ids: Vec<(&str, &StepPath)> = order
            .iter()
            .filter_map(|(p, s)| s.id.as_deref().map(|id| (id, p)))
            .collect();
        for (n, (id, p)) in ids.iter().enumerate() {
            if ids[..n].iter().any(|(other, _)| other == id) {
                return Err(Invalid::new(
                    format!("{p}.id"),
                    format!("`{id}` is the id of an earlier step too"),
                ));
            }
        }
        let captures: Vec<(&str, &StepPath)> = order
            .iter()
            .flat_map(|(p, s)| match s.action() {
                Some(Action::Http(h)) => h.capture.keys().map(|k| (k.as_str(), p)).collect(),
                _ => Vec::new(),
            })
            .collect();
        let inputs: Vec<&str> = match &self.trigger {
            Trigger::Manual(m) => m.inputs.iter().map(|i| i.name.as_str()).collect(),
            _ => Vec::new(),
        };
        for t in self.texts() {
            let Some(at) = t.step.clone() else {
                if t.refs.reads_outputs() {
                    return Err(Invalid::new(t.field, "conditions are checked before any step runs, so they cannot read steps or vars"));
                }
                check_inputs(&t, &inputs, &self.trigger)?;
                continue;
            };
            for id in &t.refs.steps {
                let Some((_, p)) = ids.iter().find(|(i, _)| i == id) else {
                    return Err(Invalid::new(
                        t.field,
                        format!("reads step `{id}`, but no step has that id"),
                    ));
                };
                if let Err(why) = runs_before(p, &at) {
                    return Err(Invalid::new(t.field, format!("reads step `{id}`, {why}")));
                }
            }
            for var in &t.refs.vars {
                let found: Vec<_> = captures.iter().filter(|(v, _)| v == var).collect();
                if found.is_empty() {
                    return Err(Invalid::new(
                        t.field,
                        format!("reads vars.{var}, but no step captures it"),
                    ));
                }
                if !found.iter().any(|(_, p)| runs_before(p, &at).is_ok()) {
                    let why = runs_before(found[0].1, &at).err().unwrap_or_default();
                    return Err(Invalid::new(
                        t.field,
                        format!("reads vars.{var}, captured only by a step {why}"),
                    ));
                }
            }
            check_inputs(&t, &inputs, &self.trigger)?;
        }
        Ok(())
    }
}

/// Whether the step at `earlier` can have run before the one at `at`: it
/// comes first in run order and is not in the other branch of an if/else
/// that `at` is in.
fn runs_before(earlier: &StepPath, at: &StepPath) -> Result<(), &'static str> {
    if earlier == at {
        return Err("which is this step itself");
    }
    if earlier > at {
        return Err("which runs after this one");
    }
    let split = earlier.0.iter().zip(&at.0).position(|(a, b)| a != b);
    if let Some(k) = split {
        if let (Seg::Then(_), Seg::Else(_)) = (earlier.0[k], at.0[k]) {
            return Err("which is in the other branch of the same if");
        }
    }
    Ok(())
}

fn check_inputs(t: &TextRef, inputs: &[&str], trigger: &Trigger) -> Result<(), Invalid> {
    for name in &t.refs.inputs {
        if !inputs.contains(&name.as_str()) {
            let why = if matches!(trigger, Trigger::Manual(_)) {
                format!("reads inputs.{name}, but the manual trigger declares no such input")
            } else {
                format!("reads inputs.{name}, but only manual triggers have inputs")
            };
            return Err(Invalid::new(t.field.clone(), why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name: N\ntrigger: incident_declared\nsteps:\n  - add_note: {text: hi}\n";

    #[test]
    fn minimal_definition_has_defaults() {
        let d = parse(MINIMAL).unwrap();
        assert!(d.enabled);
        assert_eq!(d.limits, Limits::default());
        assert_eq!(d.limits.max_runs_per_incident, 3);
        assert!(d.conditions.is_empty());
    }

    #[test]
    fn secret_and_command_names_are_listed() {
        let d = parse(
            "name: N
trigger: incident_declared
steps:
  - http:
      url: https://x.example/{{ secrets.HOST_PATH }}
      headers: {Authorization: 'Bearer {{ secrets.API_TOKEN }}'}
  - if: incident.severity == 'SEV1'
    then:
      - command: {name: restart-api, args: ['{{ secrets.API_TOKEN }}']}
",
        )
        .unwrap();
        assert_eq!(
            d.secret_names(),
            BTreeSet::from(["API_TOKEN".into(), "HOST_PATH".into()])
        );
        assert_eq!(d.command_names(), BTreeSet::from(["restart-api".into()]));
    }

    #[test]
    fn bad_definitions_name_the_field() {
        let steps = "steps:\n  - add_note: {text: hi}\n";
        for (yaml, field) in [
            ("name: [", "definition"),
            ("- a list", "definition"),
            (&format!("trigger: incident_declared\n{steps}"), "name"),
            (&format!("name: ''\ntrigger: incident_declared\n{steps}"), "name"),
            (&format!("name: N\n{steps}"), "trigger"),
            ("name: N\ntrigger: incident_declared\n", "steps"),
            ("name: N\ntrigger: incident_declared\nsteps: []\n", "steps"),
            (&format!("name: N\nenabled: maybe\ntrigger: incident_declared\n{steps}"), "enabled"),
            (&format!("name: N\ntrigger: incident_declared\nconditions: 'incident.severity =='\n{steps}"), "conditions[0]"),
            (&format!("name: N\ntrigger: incident_declared\nconditions: [ok, 'steps.a.outputs']\n{steps}"), "conditions[1]"),
            (&format!("name: N\ntrigger: incident_declared\nconditions: inputs.x\n{steps}"), "conditions[0]"),
            (&format!("name: N\ntrigger: {{schedule: {{cron: '61 * * * *'}}}}\n{steps}"), "trigger.schedule.cron"),
            (&format!("name: N\ntrigger: incident_declared\nlimits: {{max_runs_per_incident: 0}}\n{steps}"), "limits.max_runs_per_incident"),
            (&format!("name: N\ntrigger: incident_declared\nlimits: {{cool_down: soon}}\n{steps}"), "limits.cool_down"),
            (&format!("name: N\ntrigger: incident_declared\nlimits: {{approver_role: 'a b'}}\n{steps}"), "limits.approver_role"),
            (&format!("name: N\ntrigger: incident_declared\nlimits: {{max_runs: 1}}\n{steps}"), "limits.max_runs"),
            (&format!("name: N\ntrigger: incident_declared\n{steps}extra: 1\n"), "extra"),
            (
                "name: N\ntrigger: incident_declared\nsteps:\n  - {id: a, add_note: {text: x}}\n  - {id: a, add_note: {text: y}}\n",
                "steps[1].id",
            ),
            (
                "name: N\ntrigger: incident_declared\nsteps:\n  - add_note: {text: '{{ steps.later.outputs.x }}'}\n  - {id: later, add_note: {text: y}}\n",
                "steps[0].add_note.text",
            ),
            (
                "name: N\ntrigger: incident_declared\nsteps:\n  - add_note: {text: '{{ steps.nobody.outputs }}'}\n",
                "steps[0].add_note.text",
            ),
            (
                "name: N\ntrigger: incident_declared\nsteps:\n  - if: x\n    then: [{id: a, add_note: {text: x}}]\n    else: [{add_note: {text: '{{ steps.a.outputs }}'}}]\n",
                "steps[0].else[0].add_note.text",
            ),
            (
                "name: N\ntrigger: incident_declared\nsteps:\n  - {if: vars.ok, add_note: {text: x}}\n",
                "steps[0].if",
            ),
            (
                "name: N\ntrigger: incident_declared\nsteps:\n  - add_note: {text: '{{ vars.ok }}'}\n  - http: {url: 'https://x.example', capture: {ok: 'response.status == 200'}}\n",
                "steps[0].add_note.text",
            ),
            (
                "name: N\ntrigger: incident_declared\nsteps:\n  - add_note: {text: '{{ inputs.why }}'}\n",
                "steps[0].add_note.text",
            ),
            (
                "name: N\ntrigger: {manual: {inputs: {why: {}}}}\nsteps:\n  - add_note: {text: '{{ inputs.who }}'}\n",
                "steps[0].add_note.text",
            ),
        ] {
            let e = parse(yaml).unwrap_err();
            assert_eq!(e.field, field, "{yaml}\n=> {}", e.message);
        }
    }

    #[test]
    fn references_that_can_work_are_accepted() {
        parse(
            "name: N
trigger: {manual: {inputs: {why: {}}}}
steps:
  - id: probe
    http:
      url: https://x.example
      capture: {ok: response.status == 200}
  - id: branch
    if: vars.ok
    then:
      - add_note: {text: '{{ steps.probe.outputs.status }} {{ steps.branch.outputs.branch }} {{ inputs.why }}'}
  - add_note: {text: '{{ vars.ok }}'}
",
        )
        .unwrap();
    }
}
