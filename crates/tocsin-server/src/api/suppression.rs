//! Silences, maintenance windows and flapping rules: what holds new alerts back
//! from opening incidents.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tocsin_core::change::Patch;
use tocsin_core::maintenance::{MaintenanceWindow, ScheduleParts};
use tocsin_core::matcher::{MatchOp, Matcher};
use tocsin_core::model::long_text;
use tocsin_core::silence::{validate_silence, FlappingRule, Silence, SilenceState};
use tocsin_core::Invalid;
use tocsin_store::{NewSilence, NewWindow};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{opt_i64, path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AsAdmin, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_silences, create_silence))
        .routes(routes!(get_silence))
        .routes(routes!(expire_silence))
        .routes(routes!(list_windows, create_window))
        .routes(routes!(get_window, update_window, delete_window))
        .routes(routes!(get_flapping, put_flapping))
}

const MAX_TEXT: usize = 10_000;

/// A new silence.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SilenceRequest {
    /// Matchers, each as text (`alertname="DiskFull"`, `env=~"prod|stag"`) or
    /// `{"name", "op", "value"}`; all must match. At least one must not match the empty string.
    #[schema(value_type = Vec<Object>)]
    pub(crate) matchers: Vec<Value>,
    /// Only this service's alerts; absent: every service's.
    pub(crate) service_id: Option<i64>,
    /// When it starts; default now.
    pub(crate) starts_at: Option<DateTime<Utc>>,
    /// When it ends (required).
    pub(crate) ends_at: DateTime<Utc>,
    /// Why.
    #[serde(default)]
    pub(crate) comment: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherParts {
    name: String,
    op: MatchOp,
    value: String,
}

fn matcher(field: &str, v: &Value) -> Result<Matcher, Invalid> {
    match v {
        Value::String(s) => Matcher::parse(field, s),
        Value::Object(_) => {
            let p: MatcherParts = serde_json::from_value(v.clone()).map_err(|e| {
                Invalid::new(
                    field,
                    format!("expected {{\"name\", \"op\", \"value\"}} with op one of =, !=, =~, !~: {e}"),
                )
            })?;
            Matcher::new(field, &p.name, p.op, &p.value)
        }
        _ => Err(Invalid::new(
            field,
            "a matcher is text or {\"name\", \"op\", \"value\"}",
        )),
    }
}

impl SilenceRequest {
    /// The silence to store, checked as the API checks it (the web form uses it too).
    pub(crate) fn into_new(self, now: DateTime<Utc>) -> Result<NewSilence, Invalid> {
        let matchers = self
            .matchers
            .iter()
            .enumerate()
            .map(|(i, v)| matcher(&format!("matchers[{i}]"), v))
            .collect::<Result<Vec<_>, _>>()?;
        let starts_at = self.starts_at.unwrap_or(now);
        validate_silence(&matchers, starts_at, self.ends_at, now)?;
        Ok(NewSilence {
            matchers,
            service_id: self.service_id,
            starts_at,
            ends_at: self.ends_at,
            comment: long_text("comment", &self.comment, MAX_TEXT)?,
        })
    }
}

/// Ends a silence now and lets go of the alerts it alone held.
pub(crate) async fn expire(
    state: &AppState,
    id: i64,
    actor: &tocsin_store::Actor,
) -> ApiResult<Silence> {
    let now = state.now();
    let s = state.store.expire_silence(id, actor, now).await?;
    state
        .store
        .release_expired_suppressions(&state.settings, now)
        .await?;
    Ok(s)
}

/// Deletes a maintenance window and lets go of the alerts it alone held.
pub(crate) async fn delete(
    state: &AppState,
    id: i64,
    actor: &tocsin_store::Actor,
) -> ApiResult<()> {
    let now = state.now();
    state
        .store
        .delete_maintenance_window(id, actor, now)
        .await?;
    state
        .store
        .release_expired_suppressions(&state.settings, now)
        .await?;
    Ok(())
}

/// Which silences to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SilenceQuery {
    /// `active`, `pending` or `expired`.
    state: Option<String>,
}

/// Silences, newest first (at most 1,000).
#[utoipa::path(get, path = "/api/v1/silences", tag = "suppression", params(SilenceQuery),
    responses((status = 200, body = Vec<Silence>), (status = 400, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn list_silences(
    State(state): State<AppState>,
    _c: AsViewer,
    ApiQuery(q): ApiQuery<SilenceQuery>,
) -> ApiResult<Json<Vec<Silence>>> {
    let filter = match q.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(SilenceState::parse(s).ok_or_else(|| ApiError::Invalid {
            field: "state".into(),
            message: format!("`{s}` is not one of: active, pending, expired"),
        })?),
    };
    Ok(Json(state.store.silences(filter, state.now()).await?))
}

/// Create a silence: new alerts matching it are stored but open no incident until it ends.
#[utoipa::path(post, path = "/api/v1/silences", tag = "suppression", request_body = SilenceRequest,
    responses((status = 201, body = Silence), (status = 400, body = ErrorResponse)), security(("token" = ["responder"])))]
async fn create_silence(
    State(state): State<AppState>,
    c: AsResponder,
    ApiJson(r): ApiJson<SilenceRequest>,
) -> ApiResult<(StatusCode, Json<Silence>)> {
    let now = state.now();
    let s = r.into_new(now)?;
    let created = state.store.create_silence(&s, &c.actor(), now).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Read a silence.
#[utoipa::path(get, path = "/api/v1/silences/{id}", tag = "suppression", params(("id" = i64, Path)),
    responses((status = 200, body = Silence), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_silence(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Silence>> {
    Ok(Json(
        state
            .store
            .silence(path_id("id", &id)?, state.now())
            .await?,
    ))
}

/// End a silence now (it is kept as history); held alerts it no longer holds open their incidents.
#[utoipa::path(post, path = "/api/v1/silences/{id}/expire", tag = "suppression", params(("id" = i64, Path)),
    responses((status = 200, body = Silence), (status = 404, body = ErrorResponse)), security(("token" = ["responder"])))]
async fn expire_silence(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
) -> ApiResult<Json<Silence>> {
    Ok(Json(expire(&state, path_id("id", &id)?, &c.actor()).await?))
}

/// A new maintenance window: one-off (`starts_at`, `ends_at`) or weekly (`days`,
/// `start_time`, `duration_minutes`, `time_zone`, optional `until`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowRequest {
    /// Services whose new alerts it suppresses.
    pub(crate) service_ids: Vec<i64>,
    /// What the maintenance is.
    #[serde(default)]
    pub(crate) description: String,
    /// One-off: start.
    pub(crate) starts_at: Option<DateTime<Utc>>,
    /// One-off: end.
    pub(crate) ends_at: Option<DateTime<Utc>>,
    /// Weekly: days it starts on (`mon` … `sun`).
    pub(crate) days: Option<Vec<String>>,
    /// Weekly: local start time `HH:MM`.
    pub(crate) start_time: Option<String>,
    /// Weekly: minutes each occurrence lasts (1 to 10080).
    pub(crate) duration_minutes: Option<i64>,
    /// Weekly: IANA time zone, e.g. `Europe/Berlin`.
    pub(crate) time_zone: Option<String>,
    /// Weekly: no occurrence starts at or after this.
    pub(crate) until: Option<DateTime<Utc>>,
}

impl WindowRequest {
    /// The window to store, checked as the API checks it (the web form uses it too).
    pub(crate) fn into_new(self) -> Result<NewWindow, Invalid> {
        let parts = ScheduleParts {
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            days: self.days,
            start_time: self.start_time,
            duration_minutes: self.duration_minutes,
            time_zone: self.time_zone,
            until: self.until,
        };
        Ok(NewWindow {
            description: long_text("description", &self.description, MAX_TEXT)?,
            service_ids: self.service_ids,
            schedule: parts.parse()?,
        })
    }
}

/// Changes to a maintenance window; `null` clears a schedule field (to switch between one-off and weekly).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowPatch {
    /// New services.
    service_ids: Option<Vec<i64>>,
    /// New description.
    description: Option<String>,
    /// One-off start.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    starts_at: Patch<DateTime<Utc>>,
    /// One-off end.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    ends_at: Patch<DateTime<Utc>>,
    /// Weekly days.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    days: Patch<Vec<String>>,
    /// Weekly start time.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    start_time: Patch<String>,
    /// Weekly duration.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    duration_minutes: Patch<i64>,
    /// Weekly time zone.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    time_zone: Patch<String>,
    /// Weekly series end.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    until: Patch<DateTime<Utc>>,
}

fn overlay<T>(old: &mut Option<T>, p: Patch<T>) {
    match p {
        Patch::Absent => {}
        Patch::Null => *old = None,
        Patch::Set(v) => *old = Some(v),
    }
}

/// Which maintenance windows to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WindowQuery {
    /// Only windows covering this service.
    service_id: Option<String>,
    /// `true`: only windows in force now; `false`: only those not.
    active: Option<String>,
}

/// Maintenance windows, newest first.
#[utoipa::path(get, path = "/api/v1/maintenance-windows", tag = "suppression", params(WindowQuery),
    responses((status = 200, body = Vec<MaintenanceWindow>), (status = 400, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn list_windows(
    State(state): State<AppState>,
    _c: AsViewer,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<Json<Vec<MaintenanceWindow>>> {
    let active = match q.active.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(s) => {
            return Err(ApiError::Invalid {
                field: "active".into(),
                message: format!("`{s}` is not true or false"),
            })
        }
    };
    let service = opt_i64("service_id", q.service_id.as_deref())?;
    Ok(Json(
        state
            .store
            .maintenance_windows(service, active, state.now())
            .await?,
    ))
}

/// Create a maintenance window: while it is in force, new alerts on its services open no incident.
#[utoipa::path(post, path = "/api/v1/maintenance-windows", tag = "suppression", request_body = WindowRequest,
    responses((status = 201, body = MaintenanceWindow), (status = 400, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn create_window(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(r): ApiJson<WindowRequest>,
) -> ApiResult<(StatusCode, Json<MaintenanceWindow>)> {
    let win = r.into_new()?;
    let created = state
        .store
        .create_maintenance_window(&win, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Read a maintenance window, with whether it is in force now and when it next starts.
#[utoipa::path(get, path = "/api/v1/maintenance-windows/{id}", tag = "suppression", params(("id" = i64, Path)),
    responses((status = 200, body = MaintenanceWindow), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_window(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<MaintenanceWindow>> {
    let (w, _) = state
        .store
        .maintenance_window(path_id("id", &id)?, state.now())
        .await?;
    Ok(Json(w))
}

/// Change a maintenance window; held alerts it no longer holds open their incidents.
#[utoipa::path(patch, path = "/api/v1/maintenance-windows/{id}", tag = "suppression", params(("id" = i64, Path)),
    request_body = WindowPatch,
    responses((status = 200, body = MaintenanceWindow), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_window(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<WindowPatch>,
) -> ApiResult<Json<MaintenanceWindow>> {
    let id = path_id("id", &id)?;
    let now = state.now();
    let (old, _) = state.store.maintenance_window(id, now).await?;
    let mut parts = old.schedule.clone();
    overlay(&mut parts.starts_at, p.starts_at);
    overlay(&mut parts.ends_at, p.ends_at);
    overlay(&mut parts.days, p.days);
    overlay(&mut parts.start_time, p.start_time);
    overlay(&mut parts.duration_minutes, p.duration_minutes);
    overlay(&mut parts.time_zone, p.time_zone);
    overlay(&mut parts.until, p.until);
    let win = NewWindow {
        description: match p.description {
            Some(d) => long_text("description", &d, MAX_TEXT)?,
            None => old.description.clone(),
        },
        service_ids: p.service_ids.unwrap_or(old.service_ids.clone()),
        schedule: parts.parse()?,
    };
    let new = state
        .store
        .update_maintenance_window(id, &win, &c.actor(), now)
        .await?;
    state
        .store
        .release_expired_suppressions(&state.settings, now)
        .await?;
    Ok(Json(new))
}

/// Delete a maintenance window; held alerts it no longer holds open their incidents.
#[utoipa::path(delete, path = "/api/v1/maintenance-windows/{id}", tag = "suppression", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_window(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    delete(&state, path_id("id", &id)?, &c.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A service's flapping rule.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlappingView {
    /// The service.
    service_id: i64,
    /// An alert that opens more than this many times …
    max_toggles: i64,
    /// … within this many minutes is held.
    window_minutes: i64,
    /// Whether flapping alerts are held.
    enabled: bool,
    /// True when the service has no rule of its own (4 in 30 minutes, enabled).
    default: bool,
}

fn view(service_id: i64, r: FlappingRule, default: bool) -> FlappingView {
    FlappingView {
        service_id,
        max_toggles: r.max_toggles,
        window_minutes: r.window_minutes,
        enabled: r.enabled,
        default,
    }
}

/// A service's flapping rule (the default when it has none).
#[utoipa::path(get, path = "/api/v1/services/{id}/flapping", tag = "suppression", params(("id" = i64, Path)),
    responses((status = 200, body = FlappingView), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_flapping(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<FlappingView>> {
    let id = path_id("id", &id)?;
    let (rule, default) = state.store.flapping_rule(id).await?;
    Ok(Json(view(id, rule, default)))
}

/// Set a service's flapping rule.
#[utoipa::path(put, path = "/api/v1/services/{id}/flapping", tag = "suppression", params(("id" = i64, Path)),
    request_body = FlappingRule,
    responses((status = 200, body = FlappingView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn put_flapping(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(rule): ApiJson<FlappingRule>,
) -> ApiResult<Json<FlappingView>> {
    let id = path_id("id", &id)?;
    rule.validate()?;
    let now = state.now();
    let rule = state
        .store
        .set_flapping_rule(id, &rule, &c.actor(), now)
        .await?;
    state
        .store
        .release_expired_suppressions(&state.settings, now)
        .await?;
    Ok(Json(view(id, rule, false)))
}
