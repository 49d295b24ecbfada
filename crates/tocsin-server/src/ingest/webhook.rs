//! `POST /integrations/alertmanager/{key}` and `POST /integrations/grafana/{key}`:
//! Alertmanager's webhook receiver and Grafana's webhook contact point. The
//! integration key is the last path segment, so the sender needs no headers.
//! A 2xx means every alert in the notification is committed.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tocsin_ingest::alertmanager::{self, Flavor, MAX_BODY};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ErrorResponse;
use crate::error::{ApiError, ApiResult};
use crate::extract::read_body;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(alertmanager_webhook))
        .routes(routes!(grafana_webhook))
}

/// What a notification did.
#[derive(Serialize, ToSchema)]
pub(crate) struct Processed {
    /// `success`.
    status: &'static str,
    /// Alerts in the notification, all committed.
    alerts: usize,
}

async fn receive(
    state: AppState,
    key: String,
    req: Request,
    flavor: Flavor,
) -> ApiResult<(StatusCode, Json<Processed>)> {
    let key = state
        .store
        .integration_key_by_secret(&key)
        .await?
        .ok_or(ApiError::BadIntegrationKey)?;
    let body = read_body(req, MAX_BODY).await?;
    let parsed = alertmanager::parse(&body, flavor)?;
    let count = parsed.len();
    state
        .limiter
        .charge(state.limits.ingest_rate, key.id, count, state.now())
        .map_err(ApiError::RateLimited)?;
    let events = super::routed(
        &state,
        &key,
        parsed.into_iter().map(|p| (p.event, p.raw)).collect(),
    )
    .await?;
    state.alerts.submit(key, events).await?;
    Ok((
        StatusCode::OK,
        Json(Processed {
            status: "success",
            alerts: count,
        }),
    ))
}

/// Prometheus Alertmanager webhook receiver (payload version 4). Each alert is
/// tracked by its fingerprint: `firing` triggers, `resolved` resolves.
#[utoipa::path(post, path = "/integrations/alertmanager/{key}", tag = "ingest",
    params(("key" = String, Path, description = "The service's integration key")),
    request_body(content = Object, description = "Alertmanager webhook payload, version 4", content_type = "application/json"),
    responses((status = 200, body = Processed), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 413, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
async fn alertmanager_webhook(
    State(state): State<AppState>,
    Path(key): Path<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Processed>)> {
    receive(state, key, req, Flavor::Alertmanager).await
}

/// Grafana alerting webhook contact point.
#[utoipa::path(post, path = "/integrations/grafana/{key}", tag = "ingest",
    params(("key" = String, Path, description = "The service's integration key")),
    request_body(content = Object, description = "Grafana webhook contact point payload", content_type = "application/json"),
    responses((status = 200, body = Processed), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 413, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
async fn grafana_webhook(
    State(state): State<AppState>,
    Path(key): Path<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Processed>)> {
    receive(state, key, req, Flavor::Grafana).await
}
