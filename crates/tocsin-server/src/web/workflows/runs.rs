//! Runs: the list (by workflow and status), a run's page with every step's
//! record (status, attempts, inputs as rendered with secrets as markers,
//! outputs, error, times, who decided), and the forms that act on a run:
//! start (manual workflows), approve, refuse, cancel.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use tocsin_core::auth::Role;
use tocsin_core::incident::format_number;
use tocsin_core::workflow::action::{Action, OnTimeout};
use tocsin_core::workflow::run::StepStatus;
use tocsin_store::workflows::RunView;
use tocsin_store::WebSession;

use super::{badge, describe, inputs_of, inputs_text, pretty, StatusBadge, RUN_STATUSES};
use crate::api::path_id;
use crate::api::workflow_runs::{decide, roles_of};
use crate::api::workflows::{start_manual, RunRequest};
use crate::state::AppState;
use crate::web::common::{invalid, page, see_other, Chrome, WebResult};
use crate::web::session::{field, AsResponder, AsViewer, CsrfForm, CsrfPairs};

// ---- the list ----

struct Row {
    id: i64,
    workflow_id: i64,
    workflow: String,
    incident: Option<String>,
    trigger: String,
    status: StatusBadge,
    started: String,
    finished: String,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "workflow_runs.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    workflows: Vec<Choice>,
    statuses: Vec<Choice>,
    /// `?…&before_id=N` of the next page, when there is one.
    older: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    workflow_id: Option<String>,
    status: Option<String>,
    before_id: Option<String>,
}

const PAGE: i64 = 50;

pub(super) async fn list(
    State(state): State<AppState>,
    who: AsViewer,
    Query(q): Query<ListQuery>,
) -> WebResult<Response> {
    let chrome = Chrome::new(&who.0, "workflows", "Workflow runs");
    let opt = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let workflow_id = match opt(&q.workflow_id) {
        Some(w) => Some(path_id("workflow_id", &w)?),
        None => None,
    };
    let status = match opt(&q.status) {
        Some(s) => Some(
            RUN_STATUSES
                .into_iter()
                .find(|x| super::status_word(*x) == s)
                .ok_or_else(|| invalid("status", format!("`{s}` is not a run status")))?,
        ),
        None => None,
    };
    let before_id = match opt(&q.before_id) {
        Some(b) => Some(path_id("before_id", &b)?),
        None => None,
    };
    let runs = state
        .store
        .workflow_runs_where(workflow_id, status, before_id, PAGE + 1)
        .await?;
    let more = runs.len() as i64 > PAGE;
    let rows: Vec<Row> = runs
        .into_iter()
        .take(PAGE as usize)
        .map(|r| Row {
            id: r.id,
            workflow_id: r.workflow_id,
            workflow: r.workflow_name,
            incident: r.incident_id.map(format_number),
            trigger: r.trigger.replace('_', " "),
            status: badge(&super::status_word(r.status)),
            started: chrome.time(&r.created_at),
            finished: chrome.time_opt(&r.finished_at),
        })
        .collect();
    let older = match (more, rows.last()) {
        (true, Some(last)) => Some(format!(
            "?workflow_id={}&status={}&before_id={}",
            workflow_id.map(|w| w.to_string()).unwrap_or_default(),
            status.map(super::status_word).unwrap_or_default(),
            last.id
        )),
        _ => None,
    };
    let workflows = state
        .store
        .workflows()
        .await?
        .into_iter()
        .map(|w| Choice {
            selected: Some(w.id) == workflow_id,
            value: w.id.to_string(),
            label: w.name,
        })
        .collect();
    let statuses = RUN_STATUSES
        .into_iter()
        .map(|s| Choice {
            selected: Some(s) == status,
            value: super::status_word(s),
            label: super::status_word(s).replace('_', " "),
        })
        .collect();
    Ok(page(&ListPage {
        chrome,
        rows,
        workflows,
        statuses,
        older,
    }))
}

// ---- one run ----

/// The approval a run waits on, as a page shows it.
pub(crate) struct Waiting {
    pub prompt: String,
    pub role: String,
    /// Who may decide, in words.
    pub approvers: String,
    /// Whether the signed-in user may.
    pub may_decide: bool,
    pub due: String,
    /// What happens if nobody decides by then.
    pub on_timeout: &'static str,
}

struct StepRow {
    path: String,
    label: String,
    kind: String,
    status: StatusBadge,
    attempt: u32,
    does: String,
    inputs: String,
    outputs: String,
    error: Option<String>,
    started: String,
    finished: String,
    due: String,
    decided_by: Option<String>,
}

#[derive(Template)]
#[template(path = "workflow_run.html")]
struct RunPage {
    chrome: Chrome,
    id: i64,
    workflow_id: i64,
    workflow: String,
    version: String,
    incident: Option<String>,
    trigger: String,
    status: StatusBadge,
    error: Option<String>,
    started_by: Option<String>,
    started: String,
    finished: String,
    finished_yet: bool,
    steps: Vec<StepRow>,
    waiting: Option<Waiting>,
    context: String,
    vars: String,
}

async fn user_names(state: &AppState) -> WebResult<HashMap<i64, String>> {
    Ok(state
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect())
}

/// The approval `run` waits on, if any: its prompt, who may decide, and
/// whether `who` may (a responder holding the role it names).
pub(crate) async fn waiting(
    state: &AppState,
    who: &WebSession,
    chrome: &Chrome,
    run: &RunView,
    names: &HashMap<i64, String>,
) -> WebResult<Option<Waiting>> {
    let Some(step) = run
        .steps
        .iter()
        .find(|s| s.status == StepStatus::AwaitingApproval)
    else {
        return Ok(None);
    };
    let Some(Action::Approval(a)) = &step.inputs else {
        return Ok(None);
    };
    let role = a.role.clone();
    let user = &who.principal;
    let may_decide = user.role.allows(Role::Responder)
        && roles_of(state, user.role, user.user.id, run)
            .await?
            .contains(&role);
    let approvers = match Role::parse(&role) {
        Some(r) => format!("anyone whose account role is {} or above", r.as_str()),
        None => {
            let holders: Vec<String> = match run.run.incident_id {
                Some(i) => state
                    .store
                    .incident(i)
                    .await?
                    .roles
                    .get(&role)
                    .map(|ids| {
                        ids.iter()
                            .map(|u| names.get(u).cloned().unwrap_or_else(|| format!("user {u}")))
                            .collect()
                    })
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            if holders.is_empty() {
                format!("whoever holds the {role} role on the incident (nobody does yet)")
            } else {
                format!("the {role}: {}", holders.join(", "))
            }
        }
    };
    Ok(Some(Waiting {
        prompt: a.prompt.clone(),
        role,
        approvers,
        may_decide,
        due: chrome.time_opt(&step.due_at),
        on_timeout: match a.on_timeout {
            OnTimeout::Fail => "the step fails",
            OnTimeout::Continue => "the run goes on as if approved",
        },
    }))
}

pub(super) async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let run = state.store.workflow_run(path_id("id", &id)?).await?;
    let mut chrome = Chrome::new(
        &who.0,
        "workflows",
        format!("Run {} · {}", run.run.id, run.run.workflow_name),
    );
    // A run for an incident moves with the incident's timeline lines
    // (each step's outcome is one), so the page follows them live.
    if let Some(i) = run.run.incident_id {
        chrome = chrome.live(format!("incident:{i}"));
    }
    let names = user_names(&state).await?;
    let name_of = |u: &Option<i64>| {
        u.map(|u| {
            names
                .get(&u)
                .cloned()
                .unwrap_or_else(|| format!("user {u}"))
        })
    };
    let version = state
        .store
        .workflow_versions(run.run.workflow_id)
        .await?
        .into_iter()
        .find(|v| v.id == run.run.version_id)
        .map(|v| v.version.to_string())
        .unwrap_or_default();
    let waiting = waiting(&state, &who.0, &chrome, &run, &names).await?;
    let steps = run
        .steps
        .iter()
        .map(|s| StepRow {
            path: s.path.to_string(),
            label: s
                .name
                .clone()
                .or_else(|| s.id.clone())
                .unwrap_or_else(|| s.kind.clone()),
            kind: s.kind.clone(),
            status: badge(
                serde_json::to_value(s.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .as_deref()
                    .unwrap_or(""),
            ),
            attempt: s.attempt,
            does: s.inputs.as_ref().map(describe).unwrap_or_default(),
            inputs: inputs_text(&s.inputs),
            outputs: s.outputs.as_ref().map(pretty).unwrap_or_default(),
            error: s.error.clone(),
            started: chrome.time_opt(&s.started_at),
            finished: chrome.time_opt(&s.finished_at),
            due: if s.status.is_done() {
                String::new()
            } else {
                s.due_at
                    .as_ref()
                    .map(|t| chrome.time(t))
                    .unwrap_or_default()
            },
            decided_by: name_of(&s.decided_by),
        })
        .collect();
    let body = RunPage {
        id: run.run.id,
        workflow_id: run.run.workflow_id,
        workflow: run.run.workflow_name.clone(),
        version,
        incident: run.run.incident_id.map(format_number),
        trigger: run.run.trigger.replace('_', " "),
        status: badge(&super::status_word(run.run.status)),
        error: run.run.error.clone(),
        started_by: name_of(&run.run.started_by),
        started: chrome.time(&run.run.created_at),
        finished: chrome.time_opt(&run.run.finished_at),
        finished_yet: run.run.status.is_finished(),
        steps,
        waiting,
        context: pretty(&run.context),
        vars: if run.vars.is_empty() {
            String::new()
        } else {
            pretty(&Value::Object(run.vars.clone()))
        },
        chrome,
    };
    Ok(page(&body))
}

// ---- acting on a run ----

#[derive(Debug, Default, Deserialize)]
pub(super) struct DecisionForm {
    comment: Option<String>,
    /// `room`: back to the incident room afterwards.
    back: Option<String>,
}

/// Where a form on a run goes back to: the incident room it was sent from,
/// or the run's page.
async fn back_to(state: &AppState, id: i64, back: Option<&str>) -> WebResult<String> {
    if back == Some("room") {
        if let Some(i) = state.store.workflow_run(id).await?.run.incident_id {
            return Ok(format!("/incidents/{}#workflows", format_number(i)));
        }
    }
    Ok(format!("/workflow-runs/{id}"))
}

async fn decide_form(
    state: AppState,
    who: AsResponder,
    id: &str,
    approved: bool,
    f: DecisionForm,
) -> WebResult<Response> {
    let id = path_id("id", id)?;
    decide(&state, who.role(), who.user_id(), id, approved, f.comment).await?;
    Ok(see_other(back_to(&state, id, f.back.as_deref()).await?))
}

/// Approves the step the run waits on (403 without the role it names).
pub(super) async fn approve(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecisionForm>,
) -> WebResult<Response> {
    decide_form(state, who, &id, true, f).await
}

/// Refuses it: the step fails.
pub(super) async fn refuse(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecisionForm>,
) -> WebResult<Response> {
    decide_form(state, who, &id, false, f).await
}

/// Cancels the run.
pub(super) async fn cancel(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecisionForm>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    state
        .store
        .cancel_workflow_run(id, &who.actor(), state.now())
        .await?;
    Ok(see_other(back_to(&state, id, f.back.as_deref()).await?))
}

/// Starts a manual workflow with the form's `input.NAME` fields, for the
/// `incident` given (the room's form sends its own); off to the run's page,
/// or back to the room.
pub(super) async fn start(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let incident = field(&pairs, "incident")
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let r = RunRequest {
        incident_id: incident.map(|s| Value::String(s.to_string())),
        inputs: inputs_of(&pairs),
    };
    let run = start_manual(&state, id, &r, who.user_id(), &who.0.principal.user.name).await?;
    Ok(see_other(
        back_to(&state, run.id, field(&pairs, "back")).await?,
    ))
}
