//! Steps: an action or an if/else branch, with the parts every step shares
//! (id, name, `if`, retry, continue_on_error), and paths into the step tree.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::action::{self, Action, KINDS};
use super::text::{is_name, Expr, Span, Template};
use super::yaml::{kind_of, number_of, Fields};
use crate::Invalid;

/// Most steps in one workflow, counting those inside branches.
pub const MAX_STEPS: usize = 100;
/// Deepest nesting of if/else branches.
pub const MAX_DEPTH: usize = 4;
/// Most attempts a retry policy may ask for.
pub const MAX_ATTEMPTS: u64 = 10;

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Id other steps read outputs by (`steps.ID.outputs`).
    pub id: Option<String>,
    /// Name shown in the run view and on the timeline.
    pub name: Option<String>,
    /// Condition: the step is skipped when it does not hold. For a branch, it
    /// chooses `then` or `else`.
    #[serde(rename = "if")]
    pub when: Option<Expr>,
    /// How failures are retried.
    pub retry: Retry,
    /// Whether the run goes on when this step fails for good.
    pub continue_on_error: bool,
    /// What the step does.
    pub body: Body,
}

/// What a step does: one action, or a branch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// One action.
    Action(Action<Template>),
    /// Steps to run when the step's `if` holds, and when it does not.
    Branch {
        /// When the condition holds.
        then: Vec<Step>,
        /// When it does not.
        #[serde(rename = "else")]
        otherwise: Vec<Step>,
    },
}

impl Step {
    /// The kind shown to people: the action kind, or `if`.
    pub fn kind(&self) -> &'static str {
        match &self.body {
            Body::Action(a) => a.kind(),
            Body::Branch { .. } => "if",
        }
    }

    /// The action, unless this is a branch.
    pub fn action(&self) -> Option<&Action<Template>> {
        match &self.body {
            Body::Action(a) => Some(a),
            Body::Branch { .. } => None,
        }
    }
}

/// How a failed step is retried: `attempts` in all, waiting `backoff`, then
/// `backoff × factor`, … up to `max_backoff` between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// Attempts in all, the first included (1: no retry).
    pub attempts: u32,
    /// Wait before the second attempt.
    pub backoff: Span,
    /// Each further wait is this many times the one before.
    pub factor: u32,
    /// Longest wait.
    pub max_backoff: Span,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 1,
            backoff: Span::secs(10),
            factor: 2,
            max_backoff: Span::mins(10),
        }
    }
}

impl Retry {
    /// The wait after attempt `failed` (1-based) failed.
    pub fn delay_after(&self, failed: u32) -> Span {
        let mut secs = self.backoff.as_secs();
        for _ in 1..failed.max(1) {
            secs = secs.saturating_mul(self.factor as u64);
            if secs >= self.max_backoff.as_secs() {
                break;
            }
        }
        Span::secs(secs.min(self.max_backoff.as_secs()))
    }

    fn parse(path: &str, v: &Value) -> Result<Retry, Invalid> {
        let mut r = Retry::default();
        if let Value::Number(_) = v {
            r.attempts = number_of(path, v, 1, MAX_ATTEMPTS)? as u32;
            return Ok(r);
        }
        let mut f = Fields::new(path, v, "a retry policy")?;
        if let Some(n) = f.number("attempts", 1, MAX_ATTEMPTS)? {
            r.attempts = n as u32;
        }
        if let Some(b) = f.span("backoff", Span::hours(1))? {
            r.backoff = b;
        }
        if let Some(n) = f.number("factor", 1, 10)? {
            r.factor = n as u32;
        }
        if let Some(m) = f.span("max_backoff", Span::hours(6))? {
            r.max_backoff = m;
        }
        f.finish()?;
        if r.max_backoff < r.backoff {
            r.max_backoff = r.backoff;
        }
        Ok(r)
    }
}

/// One segment of a [`StepPath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// The approval gate the limits put before the first step.
    Gate,
    /// A top-level step.
    Step(usize),
    /// A step in a branch's `then`.
    Then(usize),
    /// A step in a branch's `else`.
    Else(usize),
}

/// Where a step is in the tree, written like its field path: `steps[2].then[0]`.
/// Stable for a definition version, so records and idempotency keys use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StepPath(pub Vec<Seg>);

impl StepPath {
    /// The approval gate's path (`gate`).
    pub fn gate() -> StepPath {
        StepPath(vec![Seg::Gate])
    }

    /// The top-level step `i`.
    pub fn top(i: usize) -> StepPath {
        StepPath(vec![Seg::Step(i)])
    }

    /// Whether this is the approval gate.
    pub fn is_gate(&self) -> bool {
        self.0 == [Seg::Gate]
    }

    /// The first step of this branch's `then` (or `else`).
    pub fn enter(&self, then: bool) -> StepPath {
        let mut p = self.0.clone();
        p.push(if then { Seg::Then(0) } else { Seg::Else(0) });
        StepPath(p)
    }

    /// How deep in branches the step is (0 at the top).
    pub fn depth(&self) -> usize {
        self.0.len().saturating_sub(1)
    }

    /// The step at this path.
    pub fn resolve<'a>(&self, steps: &'a [Step]) -> Option<&'a Step> {
        let mut level = steps;
        let mut found = None;
        for seg in &self.0 {
            let step = match (*seg, found.map(|s: &Step| &s.body)) {
                (Seg::Step(i), None) => level.get(i)?,
                (Seg::Then(i), Some(Body::Branch { then, .. })) => then.get(i)?,
                (Seg::Else(i), Some(Body::Branch { otherwise, .. })) => otherwise.get(i)?,
                _ => return None,
            };
            level = &[];
            found = Some(step);
        }
        found
    }

    /// The step that comes after this one and everything inside it: the next
    /// sibling, or the next after the enclosing branch. `None` at the end.
    pub fn after(&self, steps: &[Step]) -> Option<StepPath> {
        if self.is_gate() {
            return (!steps.is_empty()).then(|| StepPath::top(0));
        }
        let mut p = self.0.clone();
        while let Some(last) = p.pop() {
            let next = match last {
                Seg::Step(i) => Seg::Step(i + 1),
                Seg::Then(i) => Seg::Then(i + 1),
                Seg::Else(i) => Seg::Else(i + 1),
                Seg::Gate => return None,
            };
            let mut candidate = p.clone();
            candidate.push(next);
            let candidate = StepPath(candidate);
            if candidate.resolve(steps).is_some() {
                return Some(candidate);
            }
        }
        None
    }

    /// Every step with its path, in run order (a branch before its children).
    pub fn walk(steps: &[Step]) -> Vec<(StepPath, &Step)> {
        fn go<'a>(
            prefix: &[Seg],
            steps: &'a [Step],
            seg: fn(usize) -> Seg,
            out: &mut Vec<(StepPath, &'a Step)>,
        ) {
            for (i, s) in steps.iter().enumerate() {
                let mut p = prefix.to_vec();
                p.push(seg(i));
                out.push((StepPath(p.clone()), s));
                if let Body::Branch { then, otherwise } = &s.body {
                    go(&p, then, Seg::Then, out);
                    go(&p, otherwise, Seg::Else, out);
                }
            }
        }
        let mut out = Vec::new();
        go(&[], steps, Seg::Step, &mut out);
        out
    }
}

impl fmt::Display for StepPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            let dot = if n == 0 { "" } else { "." };
            match seg {
                Seg::Gate => write!(f, "{dot}gate")?,
                Seg::Step(i) => write!(f, "{dot}steps[{i}]")?,
                Seg::Then(i) => write!(f, "{dot}then[{i}]")?,
                Seg::Else(i) => write!(f, "{dot}else[{i}]")?,
            }
        }
        Ok(())
    }
}

impl FromStr for StepPath {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<StepPath, Invalid> {
        let bad = || Invalid::new("path", format!("`{s}` is not a step path"));
        if s == "gate" {
            return Ok(StepPath::gate());
        }
        let mut segs = Vec::new();
        for (n, part) in s.split('.').enumerate() {
            let (name, rest) = part.split_once('[').ok_or_else(bad)?;
            let i: usize = rest
                .strip_suffix(']')
                .and_then(|d| d.parse().ok())
                .ok_or_else(bad)?;
            segs.push(match (n, name) {
                (0, "steps") => Seg::Step(i),
                (n, "then") if n > 0 => Seg::Then(i),
                (n, "else") if n > 0 => Seg::Else(i),
                _ => return Err(bad()),
            });
        }
        if segs.is_empty() {
            return Err(bad());
        }
        Ok(StepPath(segs))
    }
}

impl TryFrom<String> for StepPath {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        s.parse()
    }
}

impl From<StepPath> for String {
    fn from(p: StepPath) -> String {
        p.to_string()
    }
}

/// Parses a list of steps at `path` (`steps`, `steps[1].then`), counting them
/// against [`MAX_STEPS`].
pub fn parse_steps(
    path: &str,
    v: Option<&Value>,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<Step>, Invalid> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Invalid::new(
                path,
                format!("must be a list of steps, not {}", kind_of(other)),
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            *count += 1;
            if *count > MAX_STEPS {
                return Err(Invalid::new(
                    path,
                    format!("a workflow has at most {MAX_STEPS} steps"),
                ));
            }
            parse_step(&format!("{path}[{i}]"), item, depth, count)
        })
        .collect()
}

fn parse_step(path: &str, v: &Value, depth: usize, count: &mut usize) -> Result<Step, Invalid> {
    let mut f = Fields::new(path, v, "a step")?;
    let id = f.text("id")?;
    if let Some(id) = &id {
        if !is_name(id) {
            return Err(Invalid::new(
                f.path("id"),
                format!("`{id}` is not an id (letters, digits, `_`)"),
            ));
        }
    }
    let name = f.text("name")?;
    let when = f.expr("if")?;
    let retry_at = f.path("retry");
    let retry = f
        .get("retry")
        .map(|r| Retry::parse(&retry_at, r))
        .transpose()?;
    let continue_on_error = f.flag("continue_on_error", false)?;
    let then = f.get("then");
    let otherwise = f.get("else");
    // Asking for every kind makes them known to `finish`, which lists them. A
    // kind written with nothing after it (`zoom_meeting:`) is that kind too.
    static NOTHING: Value = Value::Null;
    let mut actions: Vec<(&str, &Value)> = Vec::new();
    for k in KINDS {
        match f.get(k) {
            Some(b) => actions.push((k, b)),
            None if v.get(k).is_some() => actions.push((k, &NOTHING)),
            None => {}
        }
    }
    // Name the second kind as written, not as listed.
    let position = |k: &str| v.as_object().and_then(|m| m.keys().position(|x| x == k));
    actions.sort_by_key(|(k, _)| position(k));
    f.finish()?;
    let body = if then.is_some() || otherwise.is_some() {
        if when.is_none() {
            return Err(Invalid::new(
                format!("{path}.if"),
                "a step with then/else needs an if",
            ));
        }
        if let Some((k, _)) = actions.first() {
            return Err(Invalid::new(
                format!("{path}.{k}"),
                "a branch (then/else) does nothing itself; put it in a step under then",
            ));
        }
        if depth >= MAX_DEPTH {
            return Err(Invalid::new(
                path,
                format!("branches nest at most {MAX_DEPTH} deep"),
            ));
        }
        if retry.is_some() {
            return Err(Invalid::new(
                retry_at,
                "a branch is not retried; retry the steps in it",
            ));
        }
        Body::Branch {
            then: parse_steps(&format!("{path}.then"), then, depth + 1, count)?,
            otherwise: parse_steps(&format!("{path}.else"), otherwise, depth + 1, count)?,
        }
    } else {
        let (kind, body) = match actions.as_slice() {
            [one] => *one,
            [] => {
                return Err(Invalid::new(
                    path,
                    format!("must do one thing: {}, or if/then/else", KINDS.join(", ")),
                ))
            }
            [_, (second, _), ..] => {
                return Err(Invalid::new(
                    format!("{path}.{second}"),
                    "a step does one thing; put this in a step of its own",
                ))
            }
        };
        let action = action::parse(kind, &format!("{path}.{kind}"), body)?;
        if action.is_control() && retry.is_some() {
            return Err(Invalid::new(
                retry_at,
                format!("a {kind} step is not retried"),
            ));
        }
        Body::Action(action)
    };
    Ok(Step {
        id,
        name,
        when,
        retry: retry.unwrap_or_default(),
        continue_on_error,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn steps(v: Value) -> Result<Vec<Step>, Invalid> {
        parse_steps("steps", Some(&v), 0, &mut 0)
    }

    #[test]
    fn paths_walk_the_tree_in_run_order() {
        let s = steps(json!([
            {"add_note": {"text": "a"}},
            {"if": "x", "then": [{"add_note": {"text": "b"}}, {"if": "y", "then": [{"wait": "1m"}]}], "else": [{"add_note": {"text": "c"}}]},
            {"add_note": {"text": "d"}},
        ]))
        .unwrap();
        let order: Vec<String> = StepPath::walk(&s)
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(
            order,
            [
                "steps[0]",
                "steps[1]",
                "steps[1].then[0]",
                "steps[1].then[1]",
                "steps[1].then[1].then[0]",
                "steps[1].else[0]",
                "steps[2]"
            ]
        );
        let p = |s: &str| s.parse::<StepPath>().unwrap();
        assert_eq!(p("steps[1].then[1].then[0]").after(&s), Some(p("steps[2]")));
        assert_eq!(p("steps[1].then[0]").after(&s), Some(p("steps[1].then[1]")));
        assert_eq!(p("steps[1].else[0]").after(&s), Some(p("steps[2]")));
        assert_eq!(p("steps[2]").after(&s), None);
        assert_eq!(StepPath::gate().after(&s), Some(p("steps[0]")));
        assert_eq!(p("steps[1]").enter(false), p("steps[1].else[0]"));
        assert_eq!(p("steps[1].then[1]").resolve(&s).unwrap().kind(), "if");
        assert!(p("steps[0].then[0]").resolve(&s).is_none());
        for bad in ["", "steps", "then[0]", "steps[x]", "steps[0].other[1]"] {
            assert!(bad.parse::<StepPath>().is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_backoff_grows_to_its_cap() {
        let r = Retry::parse(
            "r",
            &json!({"attempts": 5, "backoff": "10s", "factor": 3, "max_backoff": "1m"}),
        )
        .unwrap();
        let d: Vec<u64> = (1..=4).map(|n| r.delay_after(n).as_secs()).collect();
        assert_eq!(d, [10, 30, 60, 60]);
        assert_eq!(Retry::parse("r", &json!(3)).unwrap().attempts, 3);
    }

    #[test]
    fn bad_steps_name_the_field() {
        for (v, field) in [
            (json!({"steps": 1}), "steps"),
            (json!([1]), "steps[0]"),
            (json!([{}]), "steps[0]"),
            (json!([{"htp": {}}]), "steps[0].htp"),
            (
                json!([{"add_note": {"text": "a"}, "notify": {"channel": "c", "message": "m"}}]),
                "steps[0].notify",
            ),
            (
                json!([{"id": "bad id", "add_note": {"text": "a"}}]),
                "steps[0].id",
            ),
            (
                json!([{"if": "x ==", "add_note": {"text": "a"}}]),
                "steps[0].if",
            ),
            (
                json!([{"retry": 0, "add_note": {"text": "a"}}]),
                "steps[0].retry",
            ),
            (
                json!([{"retry": {"attempts": 2, "backof": "1s"}, "add_note": {"text": "a"}}]),
                "steps[0].retry.backof",
            ),
            (json!([{"retry": 2, "wait": "1m"}]), "steps[0].retry"),
            (
                json!([{"continue_on_error": "yes", "add_note": {"text": "a"}}]),
                "steps[0].continue_on_error",
            ),
            (json!([{"then": []}]), "steps[0].if"),
            (
                json!([{"if": "x", "then": [], "add_note": {"text": "a"}}]),
                "steps[0].add_note",
            ),
            (
                json!([{"if": "x", "then": [{"add_note": {"text": "{{ a"}}]}]),
                "steps[0].then[0].add_note.text",
            ),
            (json!([{"if": "x", "then": {}}]), "steps[0].then"),
            (json!([{"add_note": null}]), "steps[0].add_note.text"),
        ] {
            let v = if v.get("steps").is_some() {
                v["steps"].clone()
            } else {
                v
            };
            let e = steps(v.clone()).unwrap_err();
            assert_eq!(e.field, field, "{v}: {}", e.message);
        }
        let deep = (0..=MAX_DEPTH).fold(
            json!([{"add_note": {"text": "x"}}]),
            |inner, _| json!([{"if": "x", "then": inner}]),
        );
        assert!(steps(deep).is_err());
        let many = Value::Array(vec![json!({"add_note": {"text": "x"}}); MAX_STEPS + 1]);
        assert_eq!(steps(many).unwrap_err().field, "steps");
    }
}
