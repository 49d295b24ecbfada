//! /api/v1/runbooks and /api/v1/incidents/{id}/runbooks: runbooks (markdown
//! checklists whose items may carry a runnable step, with rules that attach
//! them to incidents) and their use on incidents. Viewers read; responders
//! attach, detach, tick items and run their steps; admins write runbooks.
//!
//! A runbook is refused, naming the field, when its markdown does not parse
//! (`items[2].step.http.url`), its rules name a service, type or severity
//! that does not exist (`attach.services[0]`), or a step reads a secret that
//! does not exist or runs a command or channel not configured, as a workflow
//! would be.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::workflow::definition::parse_value;
use tocsin_core::workflow::runbook::{self, item_workflow, AttachRules};
use tocsin_store::workflows::{
    runbook_name, AttachHow, IncidentRunbook, ItemRunRefused, RunbookRecord, RunbookVersion,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_id;
use super::workflows::check_definition;
use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AsAdmin, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runbooks, create_runbook))
        .routes(routes!(get_runbook, update_runbook, delete_runbook))
        .routes(routes!(runbook_versions))
        .routes(routes!(incident_runbooks, attach))
        .routes(routes!(incident_runbook, detach))
        .routes(routes!(check_item))
        .routes(routes!(run_item))
}

/// A runbook as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunbookRequest {
    /// Unique name, 1 to 200 characters.
    pub name: String,
    /// The runbook in markdown: `- [ ] item` lines, each optionally followed
    /// by a ```` ```tocsin-step ```` block holding one workflow step.
    pub markdown: String,
    /// When it attaches by itself; replaces the markdown's front matter.
    /// Without it, the front matter's `attach` holds (if any).
    pub attach: Option<RulesRequest>,
}

/// Attach rules: each list given must hold the incident's value (any of the
/// services it affects); all empty: attached by hand only.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesRequest {
    /// Service names.
    #[serde(default)]
    pub services: Vec<String>,
    /// Incident types.
    #[serde(default)]
    pub incident_types: Vec<String>,
    /// Severities.
    #[serde(default)]
    pub severities: Vec<String>,
}

impl RulesRequest {
    /// The rules, names trimmed, empty ones dropped.
    pub(crate) fn rules(self) -> AttachRules {
        let clean = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        AttachRules {
            services: clean(self.services),
            incident_types: clean(self.incident_types),
            severities: clean(self.severities),
        }
    }
}

/// A runbook with its markdown and checklist.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunbookView {
    #[serde(flatten)]
    runbook: RunbookRecord,
    /// The current version's markdown (rules in its front matter).
    markdown: String,
    /// Its checklist items.
    checklist: Vec<ChecklistLine>,
}

/// A checklist item of a runbook.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChecklistLine {
    /// Position, from 0.
    index: usize,
    /// Text (markdown).
    text: String,
    /// Line in the markdown, from 1.
    line: usize,
    /// Its step's kind, if it has one.
    step: Option<String>,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The name and markdown to store for a runbook request: rules folded into
/// the front matter, everything checked against what exists.
pub(crate) async fn checked_runbook(
    state: &AppState,
    name: &str,
    markdown: &str,
    attach: Option<AttachRules>,
) -> ApiResult<(String, String)> {
    let name = runbook_name(name)?;
    let source = match &attach {
        Some(rules) => runbook::compose(markdown, rules),
        None => markdown.to_string(),
    };
    let parsed = runbook::parse(&source).map_err(|e| match e.field.as_str() {
        "runbook" => invalid("markdown", e.message),
        _ => e.into(),
    })?;
    let services: Vec<String> = state
        .store
        .services()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    for (i, s) in parsed.attach.services.iter().enumerate() {
        if !services.contains(s) {
            return Err(invalid(
                format!("attach.services[{i}]"),
                format!("there is no service named `{s}`"),
            ));
        }
    }
    for (i, t) in parsed.attach.incident_types.iter().enumerate() {
        if state.settings.incident_type(t).is_none() {
            return Err(invalid(
                format!("attach.incident_types[{i}]"),
                format!("`{t}` is not a configured incident type"),
            ));
        }
    }
    for (i, s) in parsed.attach.severities.iter().enumerate() {
        if !state.settings.has_severity(s) {
            return Err(invalid(
                format!("attach.severities[{i}]"),
                format!("`{s}` is not a configured severity"),
            ));
        }
    }
    for item in &parsed.items {
        let Some(def) = item_workflow(&name, item) else {
            continue;
        };
        let at = format!("items[{}].step", item.index);
        let def = parse_value(&def).map_err(|e| invalid(at.clone(), e.message))?;
        check_definition(state, &def).await.map_err(|e| match e {
            ApiError::Invalid { field, message } => invalid(
                field.replacen("steps[0]", &at, 1),
                format!("{message} (item on line {})", item.line),
            ),
            e => e,
        })?;
    }
    Ok((name, source))
}

async fn view(state: &AppState, id: i64) -> ApiResult<RunbookView> {
    let (runbook, markdown) = state.store.runbook(id).await?;
    let checklist = runbook::parse(&markdown)
        .map(|p| p.items)
        .unwrap_or_default()
        .into_iter()
        .map(|i| ChecklistLine {
            index: i.index,
            step: i.step.as_ref().map(|s| s.kind().to_string()),
            text: i.text,
            line: i.line,
        })
        .collect();
    Ok(RunbookView {
        runbook,
        markdown,
        checklist,
    })
}

/// Every runbook, by name.
#[utoipa::path(get, path = "/api/v1/runbooks", tag = "runbooks",
    responses((status = 200, body = Vec<RunbookRecord>)),
    security(("token" = ["viewer"])))]
async fn list_runbooks(
    State(state): State<AppState>,
    _c: AsViewer,
) -> ApiResult<Json<Vec<RunbookRecord>>> {
    Ok(Json(state.store.runbooks().await?))
}

/// Create a runbook (version 1).
#[utoipa::path(post, path = "/api/v1/runbooks", tag = "runbooks", request_body = RunbookRequest,
    responses((status = 201, body = RunbookView), (status = 400, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_runbook(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(r): ApiJson<RunbookRequest>,
) -> ApiResult<(StatusCode, Json<RunbookView>)> {
    let rules = r.attach.map(RulesRequest::rules);
    let (name, source) = checked_runbook(&state, &r.name, &r.markdown, rules).await?;
    let rec = state
        .store
        .create_runbook(&name, &source, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, rec.id).await?)))
}

/// A runbook with its markdown and checklist.
#[utoipa::path(get, path = "/api/v1/runbooks/{id}", tag = "runbooks", params(("id" = i64, Path)),
    responses((status = 200, body = RunbookView), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_runbook(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<RunbookView>> {
    Ok(Json(view(&state, path_id("id", &id)?).await?))
}

/// Save a new version (the body as for create). Copies already attached to
/// incidents keep the version they were attached with.
#[utoipa::path(put, path = "/api/v1/runbooks/{id}", tag = "runbooks", params(("id" = i64, Path)),
    request_body = RunbookRequest,
    responses((status = 200, body = RunbookView), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_runbook(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RunbookRequest>,
) -> ApiResult<Json<RunbookView>> {
    let id = path_id("id", &id)?;
    state.store.runbook(id).await?;
    let rules = r.attach.map(RulesRequest::rules);
    let (name, source) = checked_runbook(&state, &r.name, &r.markdown, rules).await?;
    state
        .store
        .update_runbook(id, &name, &source, &c.actor(), state.now())
        .await?;
    Ok(Json(view(&state, id).await?))
}

/// Delete a runbook: it no longer attaches and its name is free; copies on
/// incidents, with their progress, stay.
#[utoipa::path(delete, path = "/api/v1/runbooks/{id}", tag = "runbooks", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn delete_runbook(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_runbook(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of a runbook, newest first.
#[utoipa::path(get, path = "/api/v1/runbooks/{id}/versions", tag = "runbooks",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<RunbookVersion>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn runbook_versions(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RunbookVersion>>> {
    Ok(Json(
        state.store.runbook_versions(path_id("id", &id)?).await?,
    ))
}

/// The runbooks on an incident, each with its checklist and progress.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/runbooks", tag = "runbooks",
    params(("id" = String, Path, description = "`42` or `INC-42`")),
    responses((status = 200, body = Vec<IncidentRunbook>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn incident_runbooks(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<IncidentRunbook>>> {
    Ok(Json(
        state.store.incident_runbooks(incident_id(&id)?).await?,
    ))
}

/// Which runbook to attach: by id or by name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttachRequest {
    /// The runbook's id.
    runbook_id: Option<i64>,
    /// Or its name.
    name: Option<String>,
}

/// The runbook an attach request names.
pub(crate) async fn runbook_named(
    state: &AppState,
    id: Option<i64>,
    name: Option<&str>,
) -> ApiResult<i64> {
    match (id, name.map(str::trim).filter(|n| !n.is_empty())) {
        (Some(id), None) => Ok(state.store.runbook(id).await?.0.id),
        (None, Some(name)) => state
            .store
            .runbooks()
            .await?
            .into_iter()
            .find(|r| r.name == name)
            .map(|r| r.id)
            .ok_or_else(|| invalid("name", format!("there is no runbook named `{name}`"))),
        (Some(_), Some(_)) => Err(invalid("runbook_id", "give runbook_id or name, not both")),
        (None, None) => Err(invalid("runbook_id", "give runbook_id or name")),
    }
}

/// Attach a runbook by hand: its current version, with nothing ticked.
/// 201 when attached now; 200 when it already was (nothing changes). A
/// runbook detached earlier comes back afresh.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/runbooks", tag = "runbooks",
    params(("id" = String, Path, description = "`42` or `INC-42`")), request_body = AttachRequest,
    responses((status = 201, body = IncidentRunbook), (status = 200, body = IncidentRunbook),
        (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn attach(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AttachRequest>,
) -> ApiResult<(StatusCode, Json<IncidentRunbook>)> {
    let incident = incident_id(&id)?;
    state.store.incident(incident).await?;
    let runbook = runbook_named(&state, r.runbook_id, r.name.as_deref()).await?;
    let a = state
        .store
        .attach_runbook_as(incident, runbook, AttachHow::Hand, &c.actor(), state.now())
        .await?;
    let status = if a.attached_now {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(state.store.incident_runbook(incident, runbook).await?),
    ))
}

fn ids(id: &str, runbook_id: &str) -> ApiResult<(i64, i64)> {
    Ok((incident_id(id)?, path_id("runbook_id", runbook_id)?))
}

/// One runbook on an incident, with its checklist and progress.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/runbooks/{runbook_id}", tag = "runbooks",
    params(("id" = String, Path), ("runbook_id" = i64, Path)),
    responses((status = 200, body = IncidentRunbook), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn incident_runbook(
    State(state): State<AppState>,
    _c: AsViewer,
    Path((id, runbook_id)): Path<(String, String)>,
) -> ApiResult<Json<IncidentRunbook>> {
    let (incident, runbook) = ids(&id, &runbook_id)?;
    Ok(Json(state.store.incident_runbook(incident, runbook).await?))
}

/// Take a runbook off an incident. Its progress stays on the timeline; its
/// rules will not attach it again (a person may).
#[utoipa::path(delete, path = "/api/v1/incidents/{id}/runbooks/{runbook_id}", tag = "runbooks",
    params(("id" = String, Path), ("runbook_id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn detach(
    State(state): State<AppState>,
    c: AsResponder,
    Path((id, runbook_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (incident, runbook) = ids(&id, &runbook_id)?;
    state
        .store
        .detach_runbook(incident, runbook, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tick or untick an item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckRequest {
    /// true ticks, false unticks.
    checked: bool,
}

/// An item's index from the path.
pub(crate) fn item_index(s: &str) -> ApiResult<usize> {
    s.parse::<usize>()
        .map_err(|_| invalid("index", format!("`{s}` is not an item index (0, 1, …)")))
}

/// Tick or untick item `index` (from 0): who and when are recorded, with
/// `runbook.item_checked` or `runbook.item_unchecked` on the timeline.
/// Setting it as it already is changes nothing.
#[utoipa::path(put, path = "/api/v1/incidents/{id}/runbooks/{runbook_id}/items/{index}", tag = "runbooks",
    params(("id" = String, Path), ("runbook_id" = i64, Path), ("index" = usize, Path)),
    request_body = CheckRequest,
    responses((status = 200, body = IncidentRunbook), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn check_item(
    State(state): State<AppState>,
    c: AsResponder,
    Path((id, runbook_id, index)): Path<(String, String, String)>,
    ApiJson(r): ApiJson<CheckRequest>,
) -> ApiResult<Json<IncidentRunbook>> {
    let (incident, runbook) = ids(&id, &runbook_id)?;
    let index = item_index(&index)?;
    Ok(Json(
        state
            .store
            .check_runbook_item(incident, runbook, index, r.checked, &c.actor(), state.now())
            .await?,
    ))
}

/// A started item run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ItemRunStarted {
    /// The workflow run carrying the step (`GET /api/v1/workflow-runs/{id}`).
    run_id: i64,
    /// The runbook, with the item's run pending.
    runbook: IncidentRunbook,
}

/// Start a run, refusals as API errors.
pub(crate) async fn start_item_run(
    state: &AppState,
    actor: &tocsin_store::Actor,
    incident: i64,
    runbook: i64,
    index: usize,
) -> ApiResult<(IncidentRunbook, i64)> {
    let refused = |code: &'static str, message: String| ApiError::Conflict {
        code,
        message,
        field: Some("index".into()),
    };
    match state
        .store
        .run_runbook_item(incident, runbook, index, actor, state.now())
        .await?
    {
        Ok(started) => Ok(started),
        Err(ItemRunRefused::NoStep) => Err(refused(
            "no_step",
            format!("item {index} has no step to run"),
        )),
        Err(ItemRunRefused::Running(run)) => Err(refused(
            "run_in_progress",
            format!("item {index}'s step is being run now (run {run})"),
        )),
        Err(ItemRunRefused::Refused(r)) => Err(refused("run_refused", r.to_string())),
    }
}

/// Run item `index`'s step for the incident with one click: a workflow run of
/// that one step through the run engine (retries, the outgoing policy, secrets
/// and approvals as for any step), `runbook.item_run_started` on the timeline.
/// When it ends, the item records the outcome (`runbook.item_run_finished`);
/// a success ticks it. 409 `no_step`, `run_in_progress` or `run_refused`.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/runbooks/{runbook_id}/items/{index}/run", tag = "runbooks",
    params(("id" = String, Path), ("runbook_id" = i64, Path), ("index" = usize, Path)),
    responses((status = 201, body = ItemRunStarted), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn run_item(
    State(state): State<AppState>,
    c: AsResponder,
    Path((id, runbook_id, index)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<ItemRunStarted>)> {
    let (incident, runbook) = ids(&id, &runbook_id)?;
    let index = item_index(&index)?;
    let (runbook, run_id) = start_item_run(&state, &c.actor(), incident, runbook, index).await?;
    Ok((
        StatusCode::CREATED,
        Json(ItemRunStarted { run_id, runbook }),
    ))
}
