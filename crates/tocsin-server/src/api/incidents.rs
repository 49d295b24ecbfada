//! /api/v1/incidents: declare, read, update, move through the lifecycle, list and search.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::change::{IncidentPatch, Moved, NewIncident};
use tocsin_core::incident::{parse_number, Priority, Status};
use tocsin_core::model::{Event, Incident};
use tocsin_store::{IncidentFilter, IncidentPage, IncidentSort};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{list_of, opt_i64, opt_time, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_incidents, declare_incident))
        .routes(routes!(get_incident, update_incident))
        .routes(routes!(change_status))
        .routes(routes!(confirm_closure))
        .routes(routes!(timeline))
}

/// Parses `INC-42` or `42` from a path.
pub(crate) fn incident_id(s: &str) -> Result<i64, ApiError> {
    parse_number(s).map_err(|e| ApiError::Invalid {
        field: "id".into(),
        message: e.message,
    })
}

/// Filters, order and paging for the incident list. Multi-valued filters take
/// comma-separated values.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Statuses, e.g. `triggered,acknowledged`.
    pub(crate) status: Option<String>,
    /// Severities, e.g. `SEV1,SEV2`.
    pub(crate) severity: Option<String>,
    /// Priorities, e.g. `P1,P2`.
    pub(crate) priority: Option<String>,
    /// Types.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub(crate) incident_type: Option<String>,
    /// Affected service id.
    pub(crate) service_id: Option<String>,
    /// Assignee user id.
    pub(crate) assignee_id: Option<String>,
    /// A label the incident carries.
    pub(crate) label: Option<String>,
    /// Declared at or after (RFC 3339).
    pub(crate) created_from: Option<String>,
    /// Declared before (RFC 3339).
    pub(crate) created_to: Option<String>,
    /// Full-text search over title, description, root cause, resolution and notes.
    pub(crate) q: Option<String>,
    /// `newest` (default), `oldest`, `updated`, `priority` or `severity`.
    pub(crate) sort: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub(crate) limit: Option<String>,
}

impl ListQuery {
    pub(crate) fn into_filter(self, state: &AppState) -> Result<IncidentFilter, ApiError> {
        let settings = &state.settings;
        let statuses = list_of("status", self.status.as_deref(), |s| {
            Status::parse(s).ok_or("a status")
        })?;
        let severities = list_of("severity", self.severity.as_deref(), |s| {
            settings
                .has_severity(s)
                .then(|| s.to_string())
                .ok_or("a configured severity")
        })?;
        let priorities = list_of("priority", self.priority.as_deref(), |s| {
            Priority::parse(s).ok_or("P1 to P5")
        })?;
        let types = list_of("type", self.incident_type.as_deref(), |s| {
            settings
                .incident_type(s)
                .map(|t| t.name.clone())
                .ok_or("a configured type")
        })?;
        let sort = match self.sort.as_deref() {
            None | Some("newest") => IncidentSort::Newest,
            Some("oldest") => IncidentSort::Oldest,
            Some("updated") => IncidentSort::Updated,
            Some("priority") => IncidentSort::Priority,
            Some("severity") => IncidentSort::Severity,
            Some(other) => {
                return Err(ApiError::Invalid {
                    field: "sort".into(),
                    message: format!(
                        "`{other}` is not one of: newest, oldest, updated, priority, severity"
                    ),
                })
            }
        };
        let limit = opt_i64("limit", self.limit.as_deref())?.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::Invalid {
                field: "limit".into(),
                message: "must be between 1 and 500".into(),
            });
        }
        Ok(IncidentFilter {
            statuses,
            severities,
            priorities,
            types,
            service_id: opt_i64("service_id", self.service_id.as_deref())?,
            assignee_id: opt_i64("assignee_id", self.assignee_id.as_deref())?,
            label: self.label.filter(|l| !l.is_empty()),
            created_from: opt_time("created_from", self.created_from.as_deref())?,
            created_to: opt_time("created_to", self.created_to.as_deref())?,
            q: self.q.filter(|q| !q.trim().is_empty()),
            sort,
            cursor: self.cursor.filter(|c| !c.is_empty()),
            limit,
        })
    }
}

/// List and search incidents.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(ListQuery),
    responses((status = 200, body = IncidentPage), (status = 400, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_incidents(
    State(state): State<AppState>,
    _caller: AsViewer,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<IncidentPage>> {
    let filter = q.into_filter(&state)?;
    Ok(Json(
        state.store.list_incidents(&state.settings, &filter).await?,
    ))
}

/// Declare an incident. The caller is recorded as reporter.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = NewIncident,
    responses((status = 201, body = Incident), (status = 400, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn declare_incident(
    State(state): State<AppState>,
    caller: AsResponder,
    ApiJson(req): ApiJson<NewIncident>,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    let inc = state
        .store
        .declare_incident(
            &state.settings,
            &req,
            Some(caller.user_id()),
            &caller.actor(),
            state.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(inc)))
}

/// Read one incident, by `INC-42` or `42`.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_incident(
    State(state): State<AppState>,
    _caller: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(state.store.incident(incident_id(&id)?).await?))
}

/// Update fields: absent fields stay, `null` clears. One timeline event lists every change.
#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents", request_body = IncidentPatch,
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Incident), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn update_incident(
    State(state): State<AppState>,
    caller: AsResponder,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<IncidentPatch>,
) -> ApiResult<Json<Incident>> {
    let id = incident_id(&id)?;
    Ok(Json(
        state
            .store
            .update_incident(&state.settings, id, &patch, &caller.actor(), state.now())
            .await?,
    ))
}

/// A lifecycle move.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusChange {
    /// The status to move to.
    status: Status,
}

/// What a lifecycle move did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusChangeResult {
    /// `status`: the status changed; `closure_requested`: closing waits for the reporter.
    #[schema(value_type = String)]
    outcome: Moved,
    /// The incident after the move.
    incident: Incident,
}

/// Move an incident through the lifecycle. A move the lifecycle does not allow
/// gets 409 naming the allowed next statuses.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/status", tag = "incidents", request_body = StatusChange,
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = StatusChangeResult), (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn change_status(
    State(state): State<AppState>,
    caller: AsResponder,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StatusChange>,
) -> ApiResult<Json<StatusChangeResult>> {
    let id = incident_id(&id)?;
    let (incident, outcome) = state
        .store
        .transition_incident(
            &state.settings,
            id,
            req.status,
            &caller.actor(),
            state.now(),
        )
        .await?;
    Ok(Json(StatusChangeResult { outcome, incident }))
}

/// The reporter's answer to a closure request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClosureAnswer {
    /// true: close; false: reopen (investigating).
    accept: bool,
}

/// The reporter confirms (closes) or rejects (reopens) a requested closure.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/closure-confirmation", tag = "incidents", request_body = ClosureAnswer,
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Incident), (status = 403, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn confirm_closure(
    State(state): State<AppState>,
    caller: AsResponder,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ClosureAnswer>,
) -> ApiResult<Json<Incident>> {
    let id = incident_id(&id)?;
    Ok(Json(
        state
            .store
            .confirm_closure(
                &state.settings,
                id,
                req.accept,
                &caller.actor(),
                state.now(),
            )
            .await?,
    ))
}

/// The incident's timeline: every change, oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/timeline", tag = "incidents",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Vec<Event>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn timeline(
    State(state): State<AppState>,
    _caller: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Event>>> {
    Ok(Json(state.store.timeline(incident_id(&id)?).await?))
}
