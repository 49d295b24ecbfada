//! Workflows in the UI: the list, the YAML editor (each save a new version),
//! versions and their export, enable/disable, the dry-run, runs with every
//! step's record, approvals and cancellation, the secrets page (admins), and
//! the incident room's *Workflows* panel. Every form calls the same functions
//! as /api/v1/workflows, /api/v1/workflow-runs and /api/v1/secrets, with the
//! same roles: viewers read and dry-run, responders start manual runs, decide
//! approvals (holding the role the approval names) and cancel runs, admins
//! edit workflows and secrets.

mod definitions;
mod dry_run;
mod locate;
mod room;
mod runs;
mod secrets;

use axum::routing::{get, post};
use axum::Router;
use serde_json::{Map, Value};
use tocsin_core::workflow::action::Action;
use tocsin_core::workflow::trigger::{InputDef, InputKind};
use tocsin_core::workflow::RunStatus;

use crate::state::AppState;

pub(crate) use room::{panel as room_panel, WorkflowsPanel};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/workflows",
            get(definitions::list).post(definitions::create),
        )
        .route("/workflows/new", get(definitions::new_form))
        .route(
            "/workflows/secrets",
            get(secrets::list).post(secrets::create),
        )
        .route("/workflows/secrets/{name}", post(secrets::replace))
        .route("/workflows/secrets/{name}/delete", post(secrets::delete))
        .route(
            "/workflows/{id}",
            get(definitions::show).post(definitions::save),
        )
        .route("/workflows/{id}/enabled", post(definitions::set_enabled))
        .route("/workflows/{id}/versions", get(definitions::versions))
        .route(
            "/workflows/{id}/versions/{version}",
            get(definitions::version),
        )
        .route(
            "/workflows/{id}/versions/{version}/export",
            get(definitions::export_version),
        )
        .route("/workflows/{id}/export", get(definitions::export))
        .route("/workflows/{id}/dry-run", get(dry_run::show))
        .route("/workflows/{id}/runs", post(runs::start))
        .route("/workflow-runs", get(runs::list))
        .route("/workflow-runs/{id}", get(runs::show))
        .route("/workflow-runs/{id}/cancel", post(runs::cancel))
        .route("/workflow-runs/{id}/approve", post(runs::approve))
        .route("/workflow-runs/{id}/refuse", post(runs::refuse))
}

/// A run status as a word and a CSS class.
pub(crate) struct StatusBadge {
    /// `awaiting approval`, `failed`, …
    pub label: String,
    /// `badge run-failed`, …
    pub class: String,
}

/// The badge of `s` (`awaiting_approval` → "awaiting approval").
pub(crate) fn badge(s: &str) -> StatusBadge {
    StatusBadge {
        label: s.replace('_', " "),
        class: format!("badge run-{}", s.replace('_', "-")),
    }
}

/// A run status as stored and shown (`awaiting_approval`).
pub(crate) fn status_word(s: RunStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Every run status, for the runs filter.
pub(crate) const RUN_STATUSES: [RunStatus; 7] = [
    RunStatus::Pending,
    RunStatus::Running,
    RunStatus::Waiting,
    RunStatus::AwaitingApproval,
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::Cancelled,
];

/// JSON as the pages show it: indented, `—` for nothing.
pub(crate) fn pretty(v: &Value) -> String {
    if v.is_null() {
        return String::new();
    }
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A manual input as a form field.
pub(crate) struct InputField {
    /// The input's name; the field is `input.NAME`.
    pub name: String,
    /// `text`, `number`, `bool` or `choice`.
    pub kind: &'static str,
    /// Options of a choice (and `true`/`false` of a bool).
    pub options: Vec<String>,
    pub required: bool,
    /// What the field shows: the default, or what was typed.
    pub value: String,
    pub description: String,
}

/// The form fields of a manual trigger's inputs.
pub(crate) fn input_fields(inputs: &[InputDef]) -> Vec<InputField> {
    inputs
        .iter()
        .map(|i| {
            let (kind, options) = match &i.kind {
                InputKind::String => ("text", Vec::new()),
                InputKind::Number => ("number", Vec::new()),
                InputKind::Bool => ("bool", vec!["true".into(), "false".into()]),
                InputKind::Choice(o) => ("choice", o.clone()),
            };
            InputField {
                name: i.name.clone(),
                kind,
                options,
                required: i.required,
                value: match &i.default {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(v) => v.to_string(),
                },
                description: i.description.clone().unwrap_or_default(),
            }
        })
        .collect()
}

/// The `input.NAME` fields of a form as a manual run's inputs (empty ones are
/// left out, so defaults apply; the trigger's check coerces the text).
pub(crate) fn inputs_of(pairs: &[(String, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .filter_map(|(k, v)| {
            k.strip_prefix("input.")
                .map(|n| (n.to_string(), Value::String(v.clone())))
        })
        .collect()
}

/// What a step would do or did, in words: whom it calls, what it changes.
pub(crate) fn describe(action: &Action<String>) -> String {
    use tocsin_core::workflow::action::{PageTarget, Wait};
    match action {
        Action::Http(h) => {
            let m = serde_json::to_value(h.method).unwrap_or_default();
            format!("calls {} {}", m.as_str().unwrap_or("GET"), h.url)
        }
        Action::AddNote(_) => "adds a note to the incident's timeline".into(),
        Action::UpdateIncident(u) => {
            let mut parts = Vec::new();
            if let Some(s) = &u.status {
                parts.push(format!("status → {s}"));
            }
            if let Some(s) = &u.severity {
                parts.push(format!("severity → {s}"));
            }
            parts.extend(u.fields.iter().map(|(k, v)| format!("{k} → {v}")));
            parts.extend(u.roles.iter().map(|(k, v)| format!("{k} → {v}")));
            format!("changes the incident: {}", parts.join(", "))
        }
        Action::Page(p) => match &p.target {
            PageTarget::User(u) => format!("pages the user {u}"),
            PageTarget::Schedule(s) => format!("pages whoever is on call on {s}"),
            PageTarget::EscalationPolicy(e) => {
                format!("pages the first level of the escalation policy {e}")
            }
        },
        Action::Notify(n) => format!("sends a message to the channel {}", n.channel),
        Action::AttachRunbook(r) => format!("attaches the runbook {}", r.runbook),
        Action::StatusPageUpdate(s) => format!(
            "drafts a status-page update on {} ({}); a person publishes it",
            s.page, s.status
        ),
        Action::Command(c) => format!("runs the allowlisted command {}", c.name),
        Action::Wait(Wait::Duration(d)) => format!("waits {d}"),
        Action::Wait(Wait::Until(t)) => format!("waits until {t}"),
        Action::Approval(a) => format!("waits for approval by the {} role", a.role),
        other => {
            let kind = serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
                .unwrap_or_default();
            format!("calls the {kind} integration")
        }
    }
}

/// The inputs of a step as the pages show them (secrets already markers).
pub(crate) fn inputs_text(action: &Option<Action<String>>) -> String {
    action
        .as_ref()
        .and_then(|a| serde_json::to_value(a).ok())
        .map(|v| pretty(&v))
        .unwrap_or_default()
}
