//! /api/v1/alerts: what the sources sent, deduplicated, with raw payloads.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::alert::{Alert, AlertStatus, ChangeEvent};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{opt_i64, path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(get_alert))
        .routes(routes!(service_changes))
        .routes(routes!(incident_changes))
}

/// Filters and paging for alerts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertQuery {
    /// Only this service's alerts.
    service_id: Option<String>,
    /// `triggered`, `acknowledged` or `resolved`.
    status: Option<String>,
    /// Only the alerts of this incident.
    incident_id: Option<String>,
    /// `true`: only alerts held by a silence, maintenance window or flapping; `false`: only those not held.
    suppressed: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<String>,
}

/// A page of alerts, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct AlertPage {
    /// The alerts.
    items: Vec<Alert>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// An alert with the payload its source sent.
#[derive(Serialize, ToSchema)]
pub(crate) struct AlertDetail {
    /// The alert.
    alert: Alert,
    /// The latest raw payload (up to 64 KiB).
    raw: String,
}

/// List alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertQuery),
    responses((status = 200, body = AlertPage), (status = 400, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn list_alerts(
    State(state): State<AppState>,
    _c: AsViewer,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<AlertPage>> {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(AlertStatus::parse(s).ok_or_else(|| ApiError::Invalid {
            field: "status".into(),
            message: format!("`{s}` is not one of: triggered, acknowledged, resolved"),
        })?),
        None => None,
    };
    let limit = opt_i64("limit", q.limit.as_deref())?.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Invalid {
            field: "limit".into(),
            message: "must be between 1 and 500".into(),
        });
    }
    let suppressed = match q.suppressed.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(s) => {
            return Err(ApiError::Invalid {
                field: "suppressed".into(),
                message: format!("`{s}` is not true or false"),
            })
        }
    };
    let before = opt_i64("cursor", q.cursor.as_deref())?;
    let mut items = state
        .store
        .alerts(
            opt_i64("service_id", q.service_id.as_deref())?,
            status,
            opt_i64("incident_id", q.incident_id.as_deref())?,
            suppressed,
            before,
            limit + 1,
        )
        .await?;
    let next_cursor = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        items.last().map(|a| a.id.to_string()).unwrap_or_default()
    });
    Ok(Json(AlertPage { items, next_cursor }))
}

/// Read one alert with its raw payload.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = i64, Path)),
    responses((status = 200, body = AlertDetail), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_alert(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertDetail>> {
    let (alert, raw) = state.store.alert(path_id("id", &id)?).await?;
    Ok(Json(AlertDetail { alert, raw }))
}

/// Changes reported on a service, newest first (at most 100).
#[utoipa::path(get, path = "/api/v1/services/{id}/changes", tag = "alerts", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ChangeEvent>), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn service_changes(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ChangeEvent>>> {
    let id = path_id("id", &id)?;
    state.store.service(id).await?;
    let (first, last) = (
        chrono::DateTime::<chrono::Utc>::MIN_UTC,
        chrono::DateTime::<chrono::Utc>::MAX_UTC,
    );
    Ok(Json(state.store.changes(&[id], first, last, 100).await?))
}

/// Changes on the incident's services from an hour before it began until it was
/// resolved (or now): the usual suspects.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/changes", tag = "alerts",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Vec<ChangeEvent>), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn incident_changes(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ChangeEvent>>> {
    let inc = state
        .store
        .incident(super::incidents::incident_id(&id)?)
        .await?;
    let began = inc
        .occurred_at
        .or(inc.detected_at)
        .unwrap_or(inc.created_at)
        .min(inc.created_at);
    let from = began - chrono::Duration::hours(1);
    let to = inc.resolved_at.unwrap_or_else(|| state.now()) + chrono::Duration::milliseconds(1);
    Ok(Json(
        state.store.changes(&inc.service_ids, from, to, 100).await?,
    ))
}
