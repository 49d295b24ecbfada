//! /api/v1/workflows: definitions (YAML, versioned), export, dry-run, and
//! manual runs. Viewers read and dry-run; responders start manual runs; admins
//! edit. A definition is refused, naming the field, when it does not parse,
//! reads a secret that does not exist, runs a command not on the allowlist,
//! or notifies a channel not configured.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tocsin_core::workflow::action::KnownText;
use tocsin_core::workflow::plan::PlannedStep;
use tocsin_core::workflow::{parse, plan, Action, Definition, StepPath, Trigger};
use tocsin_store::workflows::{RunSummary, WorkflowRecord, WorkflowVersion};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, read_body, ApiJson, AsAdmin, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workflows, create_workflow))
        .routes(routes!(get_workflow, update_workflow, delete_workflow))
        .routes(routes!(workflow_versions))
        .routes(routes!(export_workflow))
        .routes(routes!(dry_run))
        .routes(routes!(list_runs, start_run))
}

/// A definition sent as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkflowSource {
    /// The definition in YAML (see docs/workflows.md).
    yaml: String,
}

/// The definition in a request: YAML as the body (`Content-Type:
/// application/yaml`), or JSON `{"yaml": "…"}`.
pub(crate) struct YamlBody(String);

impl FromRequest<AppState> for YamlBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let yaml = matches!(
            ct.as_str(),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
        );
        if !yaml && ct != "application/json" {
            return Err(ApiError::UnsupportedMediaType(
                "application/yaml, or application/json with {\"yaml\": …}",
            ));
        }
        let bytes: Bytes = read_body(req, state.limits.max_body_bytes).await?;
        if yaml {
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::Invalid {
                field: "definition".into(),
                message: "is not UTF-8 text".into(),
            })?;
            Ok(YamlBody(text))
        } else {
            let s: WorkflowSource = parse_json(&bytes)?;
            Ok(YamlBody(s.yaml))
        }
    }
}

/// A workflow with its current definition.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkflowView {
    #[serde(flatten)]
    workflow: WorkflowRecord,
    /// The current version as written (YAML).
    source: String,
    /// The current version as parsed.
    #[schema(value_type = Object)]
    definition: Value,
}

async fn view(state: &AppState, id: i64) -> ApiResult<WorkflowView> {
    let (workflow, source) = state.store.workflow_source(id).await?;
    let def = state.store.workflow_definition(workflow.version_id).await?;
    Ok(WorkflowView {
        workflow,
        source,
        definition: serde_json::to_value(&*def).unwrap_or_default(),
    })
}

fn invalid(field: String, message: String) -> ApiError {
    ApiError::Invalid { field, message }
}

/// Parses a definition and checks it against what exists: secrets, the
/// command allowlist, the configured channels.
pub(crate) async fn checked(state: &AppState, source: &str) -> ApiResult<Definition> {
    let def = parse(source)?;
    check_definition(state, &def).await?;
    Ok(def)
}

/// Checks a parsed definition against what exists (see [`checked`]).
pub(crate) async fn check_definition(state: &AppState, def: &Definition) -> ApiResult<()> {
    let known: Vec<String> = state
        .store
        .secrets()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    for t in def.texts() {
        if let Some(name) = t.refs.secrets.iter().find(|n| !known.contains(n)) {
            return Err(invalid(
                t.field,
                format!("reads secret `{name}`, which does not exist; create it under /api/v1/secrets first"),
            ));
        }
    }
    for (path, step) in StepPath::walk(&def.steps) {
        match step.action() {
            Some(Action::Command(c)) if !state.workflows.commands.contains(&c.name) => {
                let why = if state.workflows.commands.is_empty() {
                    "commands are off: no [workflows.commands] allowlist is configured".to_string()
                } else {
                    format!("`{}` is not in the [workflows.commands] allowlist", c.name)
                };
                return Err(invalid(format!("{path}.command.name"), why));
            }
            Some(Action::Notify(n)) => {
                if let Some(ch) = n.channel.known() {
                    if !state.workflows.channels.contains(ch) {
                        return Err(invalid(
                            format!("{path}.notify.channel"),
                            format!("`{ch}` is not in [workflows.channels]"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every workflow, by name.
#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows",
    responses((status = 200, body = Vec<WorkflowRecord>)),
    security(("token" = ["viewer"])))]
async fn list_workflows(
    State(state): State<AppState>,
    _c: AsViewer,
) -> ApiResult<Json<Vec<WorkflowRecord>>> {
    Ok(Json(state.store.workflows().await?))
}

/// Create a workflow from YAML (`Content-Type: application/yaml`, or JSON
/// `{"yaml": "…"}`). It is version 1.
#[utoipa::path(post, path = "/api/v1/workflows", tag = "workflows",
    request_body(content((WorkflowSource = "application/json"), (String = "application/yaml"))),
    responses((status = 201, body = WorkflowView), (status = 400, body = ErrorResponse),
        (status = 409, body = ErrorResponse), (status = 415, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_workflow(
    State(state): State<AppState>,
    c: AsAdmin,
    YamlBody(source): YamlBody,
) -> ApiResult<(StatusCode, Json<WorkflowView>)> {
    let def = checked(&state, &source).await?;
    let rec = state
        .store
        .create_workflow(&source, &def, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, rec.id).await?)))
}

/// A workflow with its current definition.
#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = i64, Path)),
    responses((status = 200, body = WorkflowView), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_workflow(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkflowView>> {
    Ok(Json(view(&state, path_id("id", &id)?).await?))
}

/// Save a new version (the body as for create). Runs under way keep the
/// version they started with. `enabled: false` in the YAML disables it.
#[utoipa::path(put, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = i64, Path)),
    request_body(content((WorkflowSource = "application/json"), (String = "application/yaml"))),
    responses((status = 200, body = WorkflowView), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_workflow(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    YamlBody(source): YamlBody,
) -> ApiResult<Json<WorkflowView>> {
    let id = path_id("id", &id)?;
    state.store.workflow(id).await?;
    let def = checked(&state, &source).await?;
    state
        .store
        .update_workflow(id, &source, &def, &c.actor(), state.now())
        .await?;
    Ok(Json(view(&state, id).await?))
}

/// Delete a workflow: no trigger starts it again and its name is free; its
/// versions and runs stay readable, and runs under way go on.
#[utoipa::path(delete, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn delete_workflow(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_workflow(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version, newest first.
#[utoipa::path(get, path = "/api/v1/workflows/{id}/versions", tag = "workflows",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<WorkflowVersion>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn workflow_versions(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<WorkflowVersion>>> {
    Ok(Json(
        state.store.workflow_versions(path_id("id", &id)?).await?,
    ))
}

/// The current version's YAML, as saved (`application/yaml`).
#[utoipa::path(get, path = "/api/v1/workflows/{id}/export", tag = "workflows",
    params(("id" = i64, Path)),
    responses((status = 200, body = String, content_type = "application/yaml"),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn export_workflow(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (rec, source) = state.store.workflow_source(path_id("id", &id)?).await?;
    let file = format!(
        "attachment; filename=\"workflow-{}-v{}.yaml\"",
        rec.id, rec.version
    );
    Ok((
        [
            (CONTENT_TYPE, "application/yaml; charset=utf-8".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, file),
        ],
        source,
    )
        .into_response())
}

/// A dry-run or a manual run: the incident it is for, and a manual run's inputs.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunRequest {
    /// The incident (`42` or `INC-42`).
    #[schema(value_type = Option<String>)]
    pub(crate) incident_id: Option<Value>,
    /// Inputs of a manual trigger.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) inputs: Map<String, Value>,
}

fn incident_of(v: &Option<Value>) -> ApiResult<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| invalid("incident_id".into(), "is not an incident id".into())),
        Some(Value::String(s)) => super::incidents::incident_id(s)
            .map(Some)
            .map_err(|_| invalid("incident_id".into(), format!("`{s}` is not an incident id"))),
        Some(_) => Err(invalid(
            "incident_id".into(),
            "is not an incident id".into(),
        )),
    }
}

// The trigger context a run would get: the incident, the inputs, the trigger.
async fn context_for(
    state: &AppState,
    def: &Definition,
    r: &RunRequest,
    by: &str,
) -> ApiResult<(Value, Option<i64>)> {
    let incident_id = incident_of(&r.incident_id)?;
    let mut ctx = Map::new();
    ctx.insert(
        "trigger".into(),
        json!({ "kind": def.trigger.kind(), "at": state.now(), "by": by }),
    );
    if let Some(id) = incident_id {
        ctx.insert("incident".into(), state.store.incident_context(id).await?);
    }
    let inputs = match &def.trigger {
        Trigger::Manual(m) => m.check_inputs(&r.inputs)?,
        _ if r.inputs.is_empty() => Map::new(),
        _ => {
            return Err(invalid(
                "inputs".into(),
                "only workflows with a manual trigger take inputs".into(),
            ))
        }
    };
    ctx.insert("inputs".into(), Value::Object(inputs));
    Ok((Value::Object(ctx), incident_id))
}

/// What a dry-run found.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRun {
    /// The workflow.
    pub(crate) workflow_id: i64,
    /// The version planned.
    pub(crate) version_id: i64,
    /// Whether the conditions hold, so its trigger would start a run.
    pub(crate) conditions_hold: bool,
    /// Why a condition could not be evaluated.
    pub(crate) condition_error: Option<String>,
    /// What each step would do (secrets shown as `[secret NAME]`).
    #[schema(value_type = Vec<Object>)]
    pub(crate) steps: Vec<PlannedStep>,
}

/// Dry-run against an incident: the conditions, and what each step would do
/// and with what inputs, without doing any of it (nothing is written, no
/// outside service is called).
#[utoipa::path(post, path = "/api/v1/workflows/{id}/dry-run", tag = "workflows",
    params(("id" = i64, Path)), request_body = RunRequest,
    responses((status = 200, body = DryRun), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn dry_run(
    State(state): State<AppState>,
    c: AsViewer,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RunRequest>,
) -> ApiResult<Json<DryRun>> {
    let rec = state.store.workflow(path_id("id", &id)?).await?;
    Ok(Json(dry_run_of(&state, &rec, &r, &c.0.user.name).await?))
}

/// The dry-run of workflow `rec`'s current version for `r` (the API's and the
/// UI's): nothing is written, nobody is called.
pub(crate) async fn dry_run_of(
    state: &AppState,
    rec: &WorkflowRecord,
    r: &RunRequest,
    by: &str,
) -> ApiResult<DryRun> {
    let def = state.store.workflow_definition(rec.version_id).await?;
    let (ctx, _) = context_for(state, &def, r, by).await?;
    let (conditions_hold, condition_error) = match def.conditions_hold(&ctx) {
        Ok(h) => (h, None),
        Err(e) => (false, Some(format!("{}: {}", e.field, e.message))),
    };
    Ok(DryRun {
        workflow_id: rec.id,
        version_id: rec.version_id,
        conditions_hold,
        condition_error,
        steps: plan(&def, &ctx),
    })
}

/// The latest runs of a workflow (at most 100), newest first.
#[utoipa::path(get, path = "/api/v1/workflows/{id}/runs", tag = "workflows",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<RunSummary>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_runs(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RunSummary>>> {
    let id = path_id("id", &id)?;
    state.store.workflow_versions(id).await?;
    Ok(Json(state.store.workflow_runs(Some(id), None, 100).await?))
}

/// Start a workflow with a manual trigger, for an incident or none, with its
/// inputs. The workflow's limits apply: a refused run is 409 `run_refused`.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/runs", tag = "workflows",
    params(("id" = i64, Path)), request_body = RunRequest,
    responses((status = 201, body = RunSummary), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn start_run(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RunRequest>,
) -> ApiResult<(StatusCode, Json<RunSummary>)> {
    let run = start_manual(&state, path_id("id", &id)?, &r, c.user_id(), &c.0.user.name).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// Starts manual workflow `id` for `r` as user `user_id` named `by` (the
/// API's and the UI's): refused unless it has a manual trigger and is enabled,
/// or when its limits refuse (409 `run_refused`).
pub(crate) async fn start_manual(
    state: &AppState,
    id: i64,
    r: &RunRequest,
    user_id: i64,
    by: &str,
) -> ApiResult<RunSummary> {
    let rec = state.store.workflow(id).await?;
    let def = state.store.workflow_definition(rec.version_id).await?;
    if !matches!(def.trigger, Trigger::Manual(_)) {
        return Err(ApiError::Conflict {
            code: "not_manual",
            message: format!(
                "“{}” starts on its trigger ({}), not by hand",
                def.name,
                def.trigger.kind()
            ),
            field: None,
        });
    }
    if !rec.enabled {
        return Err(ApiError::Conflict {
            code: "disabled",
            message: format!("“{}” is disabled", def.name),
            field: None,
        });
    }
    let (ctx, incident_id) = context_for(state, &def, r, by).await?;
    state
        .store
        .start_manual_run(rec.id, incident_id, ctx, user_id, state.now())
        .await?
        .map_err(|refusal| ApiError::Conflict {
            code: "run_refused",
            message: refusal.to_string(),
            field: None,
        })
}
