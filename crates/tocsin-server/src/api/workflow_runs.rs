//! /api/v1/workflow-runs: a run with every step (inputs with secrets shown as
//! markers, outputs, errors, attempts, times), approvals and cancellation;
//! and an incident's runs.
//!
//! Approving or refusing needs a responder token and the role the approval
//! asks for: an incident role the caller holds on the run's incident
//! (`commander`), or an account role (`admin` includes `responder`).

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use tocsin_core::auth::Role;
use tocsin_store::workflows::{ApprovalRefused, RunSummary, RunView};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_id;
use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_run))
        .routes(routes!(approve))
        .routes(routes!(refuse))
        .routes(routes!(cancel))
        .routes(routes!(incident_runs))
}

/// An approval's answer.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    /// Why, for the record.
    comment: Option<String>,
}

/// A run with its steps.
#[utoipa::path(get, path = "/api/v1/workflow-runs/{id}", tag = "workflows",
    params(("id" = i64, Path)),
    responses((status = 200, body = RunView), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_run(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<RunView>> {
    Ok(Json(state.store.workflow_run(path_id("id", &id)?).await?))
}

/// The roles user `user_id` with account role `role` holds for a run: the
/// account role and those below it, and their incident roles on the run's
/// incident. The approval names one of these.
pub(crate) async fn roles_of(
    state: &AppState,
    role: Role,
    user_id: i64,
    run: &RunView,
) -> ApiResult<Vec<String>> {
    let mut roles: Vec<String> = [Role::Viewer, Role::Responder, Role::Admin]
        .into_iter()
        .filter(|r| role.allows(*r))
        .map(|r| r.as_str().to_string())
        .collect();
    if let Some(id) = run.run.incident_id {
        let inc = state.store.incident(id).await?;
        roles.extend(
            inc.roles
                .iter()
                .filter(|(_, holders)| holders.contains(&user_id))
                .map(|(r, _)| r.clone()),
        );
    }
    Ok(roles)
}

/// User `user_id` (account role `role`) approves or refuses the approval run
/// `id` waits on (the API's and the UI's): 403 `not_allowed` without the
/// role it names, 409 when nothing waits.
pub(crate) async fn decide(
    state: &AppState,
    role: Role,
    user_id: i64,
    id: i64,
    approved: bool,
    comment: Option<String>,
) -> ApiResult<RunView> {
    let run = state.store.workflow_run(id).await?;
    let roles = roles_of(state, role, user_id, &run).await?;
    match state
        .store
        .decide_workflow_approval(id, user_id, roles, approved, comment, state.now())
        .await?
    {
        Ok(v) => Ok(v),
        Err(ApprovalRefused::NotApprover(role)) => Err(ApiError::NotAllowed(format!(
            "only holders of the {role} role may decide this approval"
        ))),
        Err(ApprovalRefused::NotWaiting) => Err(ApiError::Conflict {
            code: "not_awaiting_approval",
            message: format!("run {id} is not waiting for an approval"),
            field: None,
        }),
    }
}

/// Approve the step the run waits on. Needs the role the approval names;
/// others get 403 and the run is unchanged.
#[utoipa::path(post, path = "/api/v1/workflow-runs/{id}/approve", tag = "workflows",
    params(("id" = i64, Path)), request_body = Decision,
    responses((status = 200, body = RunView), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn approve(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<Decision>,
) -> ApiResult<Json<RunView>> {
    let id = path_id("id", &id)?;
    Ok(Json(
        decide(&state, c.role(), c.user_id(), id, true, d.comment).await?,
    ))
}

/// Refuse the step the run waits on: the step fails (and with it the run,
/// unless the step continues on error). The same role as approving.
#[utoipa::path(post, path = "/api/v1/workflow-runs/{id}/refuse", tag = "workflows",
    params(("id" = i64, Path)), request_body = Decision,
    responses((status = 200, body = RunView), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn refuse(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<Decision>,
) -> ApiResult<Json<RunView>> {
    let id = path_id("id", &id)?;
    Ok(Json(
        decide(&state, c.role(), c.user_id(), id, false, d.comment).await?,
    ))
}

/// Cancel a run. A step executing now finishes, but its outcome is dropped
/// and nothing after it runs.
#[utoipa::path(post, path = "/api/v1/workflow-runs/{id}/cancel", tag = "workflows",
    params(("id" = i64, Path)),
    responses((status = 200, body = RunView), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn cancel(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
) -> ApiResult<Json<RunView>> {
    Ok(Json(
        state
            .store
            .cancel_workflow_run(path_id("id", &id)?, &c.actor(), state.now())
            .await?,
    ))
}

/// The workflow runs of an incident (at most 100), newest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/workflow-runs", tag = "workflows",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Vec<RunSummary>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn incident_runs(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RunSummary>>> {
    let id = incident_id(&id)?;
    state.store.incident(id).await?;
    Ok(Json(state.store.workflow_runs(None, Some(id), 100).await?))
}
