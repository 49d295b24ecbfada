//! /api/v1/analytics: incident metrics per group, weekly trends, alert noise
//! and on-call load, each as JSON or CSV (`?format=csv` or `Accept: text/csv`).
//! Viewers read. Definitions: `tocsin_core::analytics`; how numbers are
//! computed (exact or from rollups): `crate::analytics`.

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ErrorResponse;
use crate::analytics::{
    incident_csv, incident_report, noise_csv, noise_view, oncall_csv, oncall_view, trend,
    trend_csv, wants_csv, AnalyticsQuery, IncidentReport, NoiseView, OnCallView, Trend,
};
use crate::error::ApiResult;
use crate::extract::{ApiQuery, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(incidents))
        .routes(routes!(weekly_trend))
        .routes(routes!(alert_noise))
        .routes(routes!(oncall_load))
}

fn respond<T: Serialize>(
    csv: bool,
    name: &str,
    value: T,
    to_csv: impl Fn(&T) -> String,
) -> Response {
    if csv {
        (
            [
                (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    CONTENT_DISPOSITION,
                    format!("attachment; filename=\"tocsin-{name}.csv\""),
                ),
            ],
            to_csv(&value),
        )
            .into_response()
    } else {
        Json(value).into_response()
    }
}

fn accept(h: &HeaderMap) -> Option<&str> {
    h.get(ACCEPT).and_then(|v| v.to_str().ok())
}

/// Incident metrics per group: counts, alerts, time between failures, and
/// count, mean, min, max and percentiles of TTD, time to declare, TTA, TTM and TTR.
#[utoipa::path(get, path = "/api/v1/analytics/incidents", tag = "analytics", params(AnalyticsQuery),
    responses((status = 200, body = IncidentReport, description = "JSON, or CSV with one row per group"),
        (status = 400, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn incidents(
    State(state): State<AppState>,
    _c: AsViewer,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> ApiResult<Response> {
    let csv = wants_csv(&q, accept(&headers))?;
    let r = incident_report(&state, &q).await?;
    Ok(respond(csv, "incidents", r, incident_csv))
}

/// Incidents and one metric per ISO week (Monday to Sunday in `tz`).
#[utoipa::path(get, path = "/api/v1/analytics/trend", tag = "analytics", params(AnalyticsQuery),
    responses((status = 200, body = Trend, description = "JSON, or CSV with one row per week"),
        (status = 400, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn weekly_trend(
    State(state): State<AppState>,
    _c: AsViewer,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> ApiResult<Response> {
    let csv = wants_csv(&q, accept(&headers))?;
    let t = trend(&state, &q).await?;
    Ok(respond(csv, "trend", t, trend_csv))
}

/// Alert noise per service and integration: quick auto-resolves, flaps and
/// alerts nobody acted on.
#[utoipa::path(get, path = "/api/v1/analytics/noise", tag = "analytics", params(AnalyticsQuery),
    responses((status = 200, body = NoiseView, description = "JSON, or CSV with one row per group"),
        (status = 400, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn alert_noise(
    State(state): State<AppState>,
    _c: AsViewer,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> ApiResult<Response> {
    let csv = wants_csv(&q, accept(&headers))?;
    let n = noise_view(&state, &q).await?;
    Ok(respond(csv, "noise", n, noise_csv))
}

/// On-call load per person, in their own time zone: pages, pages outside
/// working hours and at night, disturbed nights, hours on call.
#[utoipa::path(get, path = "/api/v1/analytics/oncall", tag = "analytics", params(AnalyticsQuery),
    responses((status = 200, body = OnCallView, description = "JSON, or CSV with one row per person"),
        (status = 400, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn oncall_load(
    State(state): State<AppState>,
    _c: AsViewer,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> ApiResult<Response> {
    let csv = wants_csv(&q, accept(&headers))?;
    let o = oncall_view(&state, &q).await?;
    Ok(respond(csv, "oncall", o, oncall_csv))
}
