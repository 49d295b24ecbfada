//! `POST /v2/enqueue`: the PagerDuty Events API v2, so PagerDuty's client
//! libraries, Alertmanager's `pagerduty_configs` and Grafana's PagerDuty contact
//! point work when pointed at Tocsin. A 202 means the event is committed.

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tocsin_ingest::pagerduty::{self, MAX_BODY};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::read_body;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(enqueue))
}

/// PagerDuty's answer to an accepted event.
#[derive(Serialize, ToSchema)]
pub(crate) struct Accepted {
    /// `success`.
    status: &'static str,
    /// `Event processed`.
    message: &'static str,
    /// The alert's dedup key (generated when the trigger had none).
    dedup_key: String,
}

/// PagerDuty's answer to a refused event.
#[derive(Serialize, ToSchema)]
pub(crate) struct Refused {
    /// `invalid event`, or `error` for a server fault.
    status: &'static str,
    /// `Event object is invalid`.
    message: &'static str,
    /// Every problem found.
    errors: Vec<String>,
}

fn refused(status: StatusCode, errors: Vec<String>) -> Response {
    let body = Refused {
        status: "invalid event",
        message: "Event object is invalid",
        errors,
    };
    (status, Json(body)).into_response()
}

/// Send an alert event (trigger, acknowledge or resolve), PagerDuty Events API v2.
/// Authenticated by `routing_key`: a service's integration key.
#[utoipa::path(post, path = "/v2/enqueue", tag = "ingest",
    request_body(content = Object, description = "A PagerDuty Events API v2 event", content_type = "application/json"),
    responses((status = 202, body = Accepted), (status = 400, body = Refused), (status = 413, body = Refused),
        (status = 429, description = "Over the integration's rate limit; see Retry-After")))]
async fn enqueue(State(state): State<AppState>, headers: HeaderMap, req: Request) -> Response {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return refused(
            StatusCode::BAD_REQUEST,
            vec!["Content-Type must be application/json".into()],
        );
    }
    let body = match read_body(req, MAX_BODY).await {
        Ok(b) => b,
        Err(ApiError::TooLarge(_)) => {
            return refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                vec!["The event is larger than the 512 KB limit".into()],
            )
        }
        Err(e) => return refused(StatusCode::BAD_REQUEST, vec![e.to_string()]),
    };
    let parsed = match pagerduty::parse(&body) {
        Ok(p) => p,
        Err(r) => return refused(StatusCode::BAD_REQUEST, r.0),
    };
    let key = match state
        .store
        .integration_key_by_secret(&parsed.routing_key)
        .await
    {
        Ok(Some(k)) => k,
        Ok(None) => return refused(StatusCode::BAD_REQUEST, vec!["Invalid routing key".into()]),
        Err(e) => return internal(e.to_string()),
    };
    if let Err(wait) = state
        .limiter
        .charge(state.limits.ingest_rate, key.id, 1, state.now())
    {
        let body = serde_json::json!({ "status": "throttle event",
            "message": "Requests for this integration are arriving too quickly. Please retry later." });
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, wait.to_string())],
            Json(body),
        )
            .into_response();
    }
    let raw = String::from_utf8_lossy(&body).into_owned();
    let dedup_key = parsed.event.dedup_key.as_str().to_string();
    match state.alerts.submit(key, vec![(parsed.event, raw)]).await {
        Ok(_) => {
            let body = Accepted {
                status: "success",
                message: "Event processed",
                dedup_key,
            };
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Err(tocsin_store::StoreError::Invalid(i)) => refused(
            StatusCode::BAD_REQUEST,
            vec![format!("{}: {}", i.field, i.message)],
        ),
        Err(e) => internal(e.to_string()),
    }
}

fn internal(detail: String) -> Response {
    tracing::error!(%detail, "event not stored");
    // A 5xx tells PagerDuty-compatible senders to retry.
    let body = Refused {
        status: "error",
        message: "The event could not be stored; retry",
        errors: vec![],
    };
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}
