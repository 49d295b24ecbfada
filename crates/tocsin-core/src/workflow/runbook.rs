//! Runbooks: markdown with checklist items, where an item may carry a runnable
//! step, and rules that attach a runbook to incidents.
//!
//! The syntax survives markdown editors because it is plain markdown: a
//! checklist item (`- [ ] text`) followed by a fenced block whose info string
//! is `tocsin-step`, holding one workflow step in YAML. Editors that know
//! nothing of Tocsin show it as a code block. Attach rules sit in YAML front
//! matter, so a runbook is one exportable document.
//!
//! ````markdown
//! ---
//! attach:
//!   services: [payments]
//!   severities: [SEV1, SEV2]
//! ---
//! # Payments database failover
//! - [ ] Check the primary's health
//!   ```tocsin-step
//!   http:
//!     url: https://db-admin.example.com/health/primary
//!   ```
//! - [ ] Tell the support team
//! ````

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::step::{parse_steps, Step};
use super::yaml::{self, Fields, MAX_SOURCE};
use crate::time::Timestamp;
use crate::Invalid;

/// Most checklist items in one runbook.
pub const MAX_ITEMS: usize = 200;

/// A parsed runbook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runbook {
    /// The first `# ` heading.
    pub title: Option<String>,
    /// When it attaches to incidents by itself.
    pub attach: AttachRules,
    /// Checklist items in order.
    pub items: Vec<ChecklistItem>,
}

/// One checklist item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChecklistItem {
    /// Position among the items, from 0; progress refers to it.
    pub index: usize,
    /// The item's text (markdown).
    pub text: String,
    /// Line in the source, from 1.
    pub line: usize,
    /// The step a responder can run from it.
    pub step: Option<Step>,
    /// That step as written (its block, as JSON), to run it as a workflow.
    #[serde(skip)]
    pub step_json: Option<Value>,
}

/// Attach rules: each list given must contain the incident's value; a runbook
/// with no rules is attached by hand only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRules {
    /// Service names, any of which the incident affects.
    pub services: Vec<String>,
    /// Incident types.
    pub incident_types: Vec<String>,
    /// Severities.
    pub severities: Vec<String>,
}

impl AttachRules {
    /// Whether the runbook is only ever attached by hand.
    pub fn is_manual(&self) -> bool {
        self.services.is_empty() && self.incident_types.is_empty() && self.severities.is_empty()
    }

    /// Whether an incident with these services, type and severity gets the
    /// runbook attached by itself.
    pub fn applies(&self, services: &[&str], incident_type: &str, severity: &str) -> bool {
        !self.is_manual()
            && (self.services.is_empty()
                || services
                    .iter()
                    .any(|s| self.services.iter().any(|r| r == s)))
            && (self.incident_types.is_empty()
                || self.incident_types.iter().any(|t| t == incident_type))
            && (self.severities.is_empty() || self.severities.iter().any(|s| s == severity))
    }
}

/// Parses a runbook. Errors name `attach.…`, or `items[i].step…` with the
/// line of the item.
pub fn parse(markdown: &str) -> Result<Runbook, Invalid> {
    if markdown.len() > MAX_SOURCE {
        return Err(Invalid::new(
            "runbook",
            format!("must be at most {MAX_SOURCE} bytes"),
        ));
    }
    let lines: Vec<&str> = markdown.lines().collect();
    let (attach, body_start) = front_matter(&lines)?;
    let mut title = None;
    let mut items: Vec<ChecklistItem> = Vec::new();
    let mut i = body_start;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(fence) = fence_of(trimmed) {
            let (block, end) = block(&lines, i, fence);
            if info(trimmed, fence) == "tocsin-step" {
                attach_step(&mut items, &lines, i, &block)?;
            }
            i = end + 1;
            continue;
        }
        if title.is_none() {
            if let Some(h) = trimmed.strip_prefix("# ") {
                title = Some(h.trim().to_string());
            }
        }
        if let Some(text) = checklist_text(trimmed) {
            if items.len() == MAX_ITEMS {
                return Err(Invalid::new(
                    "items",
                    format!("a runbook has at most {MAX_ITEMS} checklist items"),
                ));
            }
            items.push(ChecklistItem {
                index: items.len(),
                text: text.to_string(),
                line: i + 1,
                step: None,
                step_json: None,
            });
        }
        i += 1;
    }
    Ok(Runbook {
        title,
        attach,
        items,
    })
}

fn front_matter(lines: &[&str]) -> Result<(AttachRules, usize), Invalid> {
    if lines.first().map(|l| l.trim_end()) != Some("---") {
        return Ok((AttachRules::default(), 0));
    }
    let Some(end) = lines.iter().skip(1).position(|l| l.trim_end() == "---") else {
        return Err(Invalid::new(
            "front_matter",
            "starts with --- but never ends with ---",
        ));
    };
    let text = lines[1..=end].join("\n");
    let v = yaml::to_json("front_matter", &text)?;
    if v.is_null() {
        return Ok((AttachRules::default(), end + 2));
    }
    let mut f = Fields::new("", &v, "runbook front matter")?;
    let rules = match f.get("attach") {
        None => AttachRules::default(),
        Some(a) => {
            let mut a = Fields::new("attach", a, "attach rules")?;
            let rules = AttachRules {
                services: a.texts("services")?,
                incident_types: a.texts("incident_types")?,
                severities: a.texts("severities")?,
            };
            a.finish()?;
            rules
        }
    };
    f.finish()?;
    Ok((rules, end + 2))
}

fn fence_of(trimmed: &str) -> Option<&'static str> {
    if trimmed.starts_with("```") {
        Some("```")
    } else if trimmed.starts_with("~~~") {
        Some("~~~")
    } else {
        None
    }
}

fn info<'a>(trimmed: &'a str, fence: &str) -> &'a str {
    trimmed
        .trim_start_matches(fence.chars().next().unwrap_or('`'))
        .trim()
}

// The lines inside the fence opened at `start`, unindented by the opening
// fence's indent (so a block nested under a list item reads as YAML), and the
// index of the closing line.
fn block(lines: &[&str], start: usize, fence: &str) -> (String, usize) {
    let indent = lines[start].len() - lines[start].trim_start().len();
    let mut body = Vec::new();
    let mut i = start + 1;
    while i < lines.len() {
        if lines[i].trim_start().starts_with(fence) && info(lines[i].trim_start(), fence).is_empty()
        {
            break;
        }
        let l = lines[i];
        let cut = l.len() - l.trim_start().len();
        body.push(&l[cut.min(indent)..]);
        i += 1;
    }
    (body.join("\n"), i)
}

fn checklist_text(trimmed: &str) -> Option<&str> {
    let rest = trimmed.strip_prefix(['-', '*', '+'])?.strip_prefix(' ')?;
    let rest = rest
        .strip_prefix("[ ]")
        .or_else(|| rest.strip_prefix("[x]"))
        .or_else(|| rest.strip_prefix("[X]"))?;
    Some(rest.trim())
}

// A step block belongs to the item right before it (blank lines between are fine).
fn attach_step(
    items: &mut [ChecklistItem],
    lines: &[&str],
    at: usize,
    yaml_text: &str,
) -> Result<(), Invalid> {
    if let Some(item) = items.last().filter(|i| i.step.is_some()) {
        return Err(Invalid::new(
            format!("items[{}]", item.index),
            "has two steps; one item runs one step",
        ));
    }
    let owner = items
        .last_mut()
        .filter(|item| lines[item.line..at].iter().all(|l| l.trim().is_empty()));
    let Some(item) = owner else {
        return Err(Invalid::new(
            "runbook",
            format!(
                "line {}: a tocsin-step block must come right after a checklist item",
                at + 1
            ),
        ));
    };
    let path = format!("items[{}].step", item.index);
    let with_line = |e: Invalid| {
        Invalid::new(
            e.field,
            format!("{} (item on line {})", e.message, item.line),
        )
    };
    let v = yaml::to_json(&path, yaml_text).map_err(with_line)?;
    let mut steps =
        parse_steps(&path, Some(&Value::Array(vec![v.clone()])), 0, &mut 0).map_err(|e| {
            // `items[0].step[0].http.url` reads better as `items[0].step.http.url`.
            with_line(Invalid::new(
                e.field.replacen(&format!("{path}[0]"), &path, 1),
                e.message,
            ))
        })?;
    let step = steps.remove(0);
    // An item's step runs alone: there are no earlier steps or captures.
    for (p, s) in super::step::StepPath::walk(std::slice::from_ref(&step)) {
        let alone = |r: super::text::Refs| !r.reads_outputs() && r.inputs.is_empty();
        let mut bad: Option<String> = s
            .when
            .as_ref()
            .filter(|w| !alone(w.refs()))
            .map(|_| "if".into());
        if let Some(a) = s.action() {
            let _ = a.map(&mut |field: &str, t| -> Result<(), ()> {
                if bad.is_none() && !alone(t.refs()) {
                    bad = Some(field.to_string());
                }
                Ok(())
            });
        }
        if let Some(field) = bad {
            let at = format!("{}.{field}", p.to_string().replacen("steps[0]", &path, 1));
            return Err(with_line(Invalid::new(
                at,
                "a runbook step runs alone: it cannot read steps, vars or inputs",
            )));
        }
    }
    item.step = Some(step);
    item.step_json = Some(v);
    Ok(())
}

/// The markdown after its front matter (all of it when there is none).
pub fn body(markdown: &str) -> &str {
    let mut lines = markdown.split_inclusive('\n');
    if lines.next().map(|l| l.trim_end()) != Some("---") {
        return markdown;
    }
    let mut at = markdown.find('\n').map_or(markdown.len(), |i| i + 1);
    for l in lines {
        at += l.len();
        if l.trim_end() == "---" {
            return &markdown[at..];
        }
    }
    markdown
}

/// `markdown` with its front matter replaced by one holding `rules` (none
/// when the rules are empty): how rules given apart from the text (the API's
/// `attach`, the form's fields) become part of the one document.
pub fn compose(markdown: &str, rules: &AttachRules) -> String {
    let body = body(markdown);
    if rules.is_manual() {
        return body.to_string();
    }
    let mut fm = String::from("---\nattach:\n");
    for (key, list) in [
        ("services", &rules.services),
        ("incident_types", &rules.incident_types),
        ("severities", &rules.severities),
    ] {
        if !list.is_empty() {
            // JSON strings are YAML flow scalars: any name survives quoting.
            let items: Vec<String> = list
                .iter()
                .map(|s| serde_json::to_string(s).unwrap_or_default())
                .collect();
            fm.push_str(&format!("  {key}: [{}]\n", items.join(", ")));
        }
    }
    fm.push_str("---\n");
    fm + body
}

/// Most runs of one runbook's steps per incident, and per hour overall: a
/// runbook's steps are run by people, one click at a time.
pub const RUNS_PER_INCIDENT: u32 = 100;

/// The workflow definition (JSON, for [`super::definition::parse_value`])
/// that runs item `item` of runbook `name` alone: a manual trigger and the
/// item's one step. `None` for an item without a step.
pub fn item_workflow(name: &str, item: &ChecklistItem) -> Option<Value> {
    let step = item.step_json.clone()?;
    let mut title = format!("Runbook {name}: {}", item.text);
    if title.chars().count() > super::definition::MAX_NAME {
        title = title
            .chars()
            .take(super::definition::MAX_NAME - 1)
            .collect::<String>()
            + "…";
    }
    Some(serde_json::json!({
        "name": title,
        "description": format!("Item {} of runbook {name}, run by hand.", item.index + 1),
        "trigger": { "manual": {} },
        "steps": [step],
        "limits": {
            "max_runs_per_incident": RUNS_PER_INCIDENT,
            "max_runs_per_hour": 10_000,
        },
    }))
}

/// Most characters of an outputs summary.
pub const SUMMARY_CHARS: usize = 300;

/// A step's outputs in one short line for the timeline and the postmortem:
/// `HTTP 200: {"ok":true}` for an HTTP step, `exit 0: …` for a command, the
/// compact JSON otherwise; at most [`SUMMARY_CHARS`] characters.
pub fn output_summary(outputs: &Value) -> String {
    let compact = |v: &Value| match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    let text = match (&outputs["status"], &outputs["exit_code"]) {
        (Value::Number(n), _) if outputs.get("body").is_some() => {
            format!("HTTP {n}: {}", compact(&outputs["body"]))
        }
        (_, Value::Number(n)) => format!("exit {n}: {}", compact(&outputs["stdout"])),
        _ => compact(outputs),
    };
    if text.chars().count() <= SUMMARY_CHARS {
        text
    } else {
        text.chars().take(SUMMARY_CHARS - 1).collect::<String>() + "…"
    }
}

/// Progress through a runbook attached to an incident (a snapshot of one
/// version, so item indexes stay put while the runbook is edited).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// One entry per item, by index.
    pub items: Vec<ItemProgress>,
}

/// Where one item stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemProgress {
    /// Whether it is ticked.
    pub ticked: bool,
    /// Who ticked (or unticked) it last.
    pub by: Option<i64>,
    /// When.
    pub at: Option<Timestamp>,
    /// What its step produced, if it was run.
    pub output: Option<Value>,
    /// Its step's latest run, if it was run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<ItemRun>,
}

/// An item's step run: which workflow run carries it, who started it, and how
/// it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRun {
    /// The workflow run.
    pub run_id: i64,
    /// pending while under way; then succeeded, failed or cancelled.
    pub status: String,
    /// Who started it.
    pub by: i64,
    /// When.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A refused progress change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgressError {
    /// No such item.
    #[error("the runbook has no item {0}")]
    NoSuchItem(usize),
}

impl Progress {
    /// Fresh progress for `runbook`: nothing ticked.
    pub fn new(runbook: &Runbook) -> Progress {
        Progress {
            items: vec![ItemProgress::default(); runbook.items.len()],
        }
    }

    /// Ticks (or unticks) item `index`, with its step's output if one ran.
    pub fn set(
        &mut self,
        index: usize,
        ticked: bool,
        by: i64,
        now: Timestamp,
        output: Option<Value>,
    ) -> Result<(), ProgressError> {
        let item = self
            .items
            .get_mut(index)
            .ok_or(ProgressError::NoSuchItem(index))?;
        item.ticked = ticked;
        item.by = Some(by);
        item.at = Some(now);
        if output.is_some() {
            item.output = output;
        }
        Ok(())
    }

    /// Records that `by` started run `run_id` of item `index`'s step.
    pub fn start_run(
        &mut self,
        index: usize,
        run_id: i64,
        by: i64,
        now: Timestamp,
    ) -> Result<(), ProgressError> {
        let item = self
            .items
            .get_mut(index)
            .ok_or(ProgressError::NoSuchItem(index))?;
        item.run = Some(ItemRun {
            run_id,
            status: "pending".into(),
            by,
            started_at: now,
            finished_at: None,
            error: None,
        });
        Ok(())
    }

    /// Records how run `run_id` ended: its outputs on success, which also
    /// ticks the item for whoever started it. The item whose latest run this
    /// is, or `None` (a run replaced by a later one changes nothing).
    pub fn finish_run(
        &mut self,
        run_id: i64,
        status: &str,
        outputs: Option<Value>,
        error: Option<String>,
        now: Timestamp,
    ) -> Option<usize> {
        let (index, item) = self
            .items
            .iter_mut()
            .enumerate()
            .find(|(_, i)| i.run.as_ref().is_some_and(|r| r.run_id == run_id))?;
        let run = item.run.as_mut()?;
        run.status = status.to_string();
        run.finished_at = Some(now);
        run.error = error;
        if status == "succeeded" {
            let by = run.by;
            item.output = outputs;
            item.ticked = true;
            item.by = Some(by);
            item.at = Some(now);
        }
        Some(index)
    }

    /// Whether item `index`'s step is being run now.
    pub fn running(&self, index: usize) -> bool {
        self.items
            .get(index)
            .and_then(|i| i.run.as_ref())
            .is_some_and(|r| r.finished_at.is_none())
    }

    /// (ticked, total), for "3 of 7 done".
    pub fn done(&self) -> (usize, usize) {
        (
            self.items.iter().filter(|i| i.ticked).count(),
            self.items.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNBOOK: &str = "---
attach:
  services: [payments]
  severities: [SEV1, SEV2]
---
# Payments database failover

Start here.

- [ ] Check the primary's health
  ```tocsin-step
  http:
    url: https://db-admin.example.com/health/primary
    expect: [200]
  ```
- [x] Page the DBA on call

```tocsin-step
page:
  schedule: dba-primary
```
* [ ] Tell support

```sh
- [ ] not an item: inside a code block
```
";

    #[test]
    fn items_steps_and_rules() {
        let r = parse(RUNBOOK).unwrap();
        assert_eq!(r.title.as_deref(), Some("Payments database failover"));
        let texts: Vec<&str> = r.items.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Check the primary's health",
                "Page the DBA on call",
                "Tell support"
            ]
        );
        assert_eq!(r.items[0].step.as_ref().unwrap().kind(), "http");
        assert_eq!(r.items[1].step.as_ref().unwrap().kind(), "page");
        assert!(r.items[2].step.is_none());
        assert_eq!(r.items[0].line, 10);
        assert!(r.attach.applies(&["payments", "web"], "software", "SEV1"));
        assert!(!r.attach.applies(&["web"], "software", "SEV1"));
        assert!(!r.attach.applies(&["payments"], "software", "SEV3"));
        assert!(!AttachRules::default().applies(&["payments"], "software", "SEV1"));
        let plain = parse("# T\n- [ ] one\n").unwrap();
        assert!(plain.attach.is_manual());
    }

    #[test]
    fn progress_records_who_and_when() {
        let r = parse(RUNBOOK).unwrap();
        let mut p = Progress::new(&r);
        let now: Timestamp = "2026-05-01T12:00:00Z".parse().unwrap();
        p.set(0, true, 7, now, Some(serde_json::json!({"status": 200})))
            .unwrap();
        assert_eq!(p.done(), (1, 3));
        assert_eq!(p.items[0].by, Some(7));
        assert_eq!(
            p.set(9, true, 7, now, None),
            Err(ProgressError::NoSuchItem(9))
        );
    }

    #[test]
    fn bad_runbooks_name_the_field() {
        for (text, field, says) in [
            (
                "# T\n```tocsin-step\nadd_note: {text: x}\n```\n",
                "runbook",
                "line 2",
            ),
            (
                "- [ ] a\n\nsome text\n```tocsin-step\nadd_note: {text: x}\n```\n",
                "runbook",
                "right after",
            ),
            (
                "- [ ] a\n```tocsin-step\nhttp: {url: 'ftp://x'}\n```\n",
                "items[0].step.http.url",
                "line 1",
            ),
            (
                "- [ ] a\n```tocsin-step\nadd_note: {text: '{{ steps.x.outputs }}'}\n```\n",
                "items[0].step.add_note.text",
                "alone",
            ),
            (
                "- [ ] a\n```tocsin-step\nadd_note: [\n```\n",
                "items[0].step",
                "YAML",
            ),
            (
                "- [ ] a\n```tocsin-step\nwait: 1m\n```\n```tocsin-step\nwait: 1m\n```\n",
                "items[0]",
                "two steps",
            ),
            (
                "---\nattach:\n  service: [x]\n---\n",
                "attach.service",
                "services",
            ),
            ("---\nattach: {}\n", "front_matter", "never ends"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.field, field, "{text}: {}", e.message);
            assert!(e.message.contains(says), "{text}: {}", e.message);
        }
    }

    #[test]
    fn rules_given_apart_replace_the_front_matter() {
        assert_eq!(
            body(RUNBOOK).lines().next(),
            Some("# Payments database failover")
        );
        assert_eq!(body("# T\n- [ ] a\n"), "# T\n- [ ] a\n");
        let rules = AttachRules {
            services: vec!["pay \"ments\"".into()],
            incident_types: vec![],
            severities: vec!["SEV1".into()],
        };
        let text = compose(RUNBOOK, &rules);
        let r = parse(&text).unwrap();
        assert_eq!(r.attach, rules);
        assert_eq!(r.items.len(), 3);
        // No rules: no front matter, and the body is kept as it was.
        let plain = compose(&text, &AttachRules::default());
        assert_eq!(plain, body(RUNBOOK));
        assert!(parse(&plain).unwrap().attach.is_manual());
    }

    #[test]
    fn an_item_step_runs_as_a_one_step_manual_workflow() {
        let r = parse(RUNBOOK).unwrap();
        let def =
            super::super::definition::parse_value(&item_workflow("Failover", &r.items[0]).unwrap())
                .unwrap();
        assert_eq!(def.name, "Runbook Failover: Check the primary's health");
        assert_eq!(def.trigger.kind(), "manual");
        assert_eq!(def.steps.len(), 1);
        assert_eq!(def.steps[0].kind(), "http");
        assert_eq!(def.limits.max_runs_per_incident, RUNS_PER_INCIDENT);
        assert!(item_workflow("Failover", &r.items[2]).is_none());
        let long = "x".repeat(300);
        let mut item = r.items[1].clone();
        item.text = long;
        let def =
            super::super::definition::parse_value(&item_workflow("F", &item).unwrap()).unwrap();
        assert_eq!(def.name.chars().count(), super::super::definition::MAX_NAME);
    }

    #[test]
    fn summaries_are_short_lines() {
        use serde_json::json;
        assert_eq!(
            output_summary(&json!({"status": 200, "headers": {}, "body": {"ok": true}})),
            r#"HTTP 200: {"ok":true}"#
        );
        assert_eq!(
            output_summary(&json!({"exit_code": 0, "stdout": "done\n", "stderr": ""})),
            "exit 0: done"
        );
        assert_eq!(output_summary(&json!({"note_id": 4})), r#"{"note_id":4}"#);
        let long = output_summary(&json!({"status": 500, "body": "x".repeat(1000)}));
        assert_eq!(long.chars().count(), SUMMARY_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_finished_run_ticks_its_item_for_who_started_it() {
        let r = parse(RUNBOOK).unwrap();
        let mut p = Progress::new(&r);
        let t0: Timestamp = "2026-05-01T12:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-05-01T12:01:00Z".parse().unwrap();
        p.start_run(0, 10, 7, t0).unwrap();
        assert!(p.running(0));
        assert_eq!(p.finish_run(99, "succeeded", None, None, t1), None);
        p.start_run(1, 11, 8, t0).unwrap();
        let out = serde_json::json!({"status": 200});
        assert_eq!(
            p.finish_run(10, "succeeded", Some(out.clone()), None, t1),
            Some(0)
        );
        assert_eq!(
            p.finish_run(11, "failed", None, Some("HTTP 500".into()), t1),
            Some(1)
        );
        assert!(!p.running(0));
        assert_eq!((p.items[0].ticked, p.items[0].by), (true, Some(7)));
        assert_eq!(p.items[0].output, Some(out));
        assert!(!p.items[1].ticked);
        assert_eq!(
            p.items[1].run.as_ref().unwrap().error.as_deref(),
            Some("HTTP 500")
        );
        // Stored progress from before runs were recorded still reads.
        let old: Progress =
            serde_json::from_str(r#"{"items":[{"ticked":true,"by":1,"at":null,"output":null}]}"#)
                .unwrap();
        assert!(old.items[0].run.is_none());
    }
}
