//! /api/v1/services/{id}/alert-rules: how a service's alerts group into
//! incidents and what severity and urgency those incidents get.

use axum::extract::{Path, State};
use axum::Json;
use tocsin_core::grouping::AlertRules;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, ErrorResponse};
use crate::error::ApiResult;
use crate::extract::{ApiJson, AsAdmin, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_alert_rules, put_alert_rules))
}

/// A service's alert rules (the defaults, per-alert incidents and the built-in
/// severity mapping, when none were set).
#[utoipa::path(get, path = "/api/v1/services/{id}/alert-rules", tag = "services", params(("id" = i64, Path)),
    responses((status = 200, body = AlertRules), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_alert_rules(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertRules>> {
    Ok(Json(state.store.alert_rules(path_id("id", &id)?).await?))
}

/// Replace a service's alert rules. Every part is checked first (the group key
/// compiles, the window is 1 to 1440 minutes, matchers parse, severities are
/// configured); an error names the field and nothing is written.
#[utoipa::path(put, path = "/api/v1/services/{id}/alert-rules", tag = "services", params(("id" = i64, Path)),
    request_body = AlertRules,
    responses((status = 200, body = AlertRules), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn put_alert_rules(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(rules): ApiJson<AlertRules>,
) -> ApiResult<Json<AlertRules>> {
    let id = path_id("id", &id)?;
    Ok(Json(
        state
            .store
            .set_alert_rules(&state.settings, id, &rules, &c.actor(), state.now())
            .await?,
    ))
}
