//! On-call schedules: admin CRUD of schedules, overrides arranged by responders,
//! and who is on call (final shifts over a range, on call at an instant, a user's
//! shifts across all schedules), computed by `tocsin_core::schedule`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tocsin_core::model::required_text;
use tocsin_core::schedule::{final_shifts, LayerParts, Schedule, ScheduleParts, Shift};
use tocsin_core::time::Timestamp;
use tocsin_store::{ScheduleChanges, ScheduleOverride, StoredSchedule};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{opt_time, path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AsAdmin, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(get_schedule, update_schedule, delete_schedule))
        .routes(routes!(schedule_shifts))
        .routes(routes!(schedule_on_call))
        .routes(routes!(list_overrides, create_override))
        .routes(routes!(delete_override))
        .routes(routes!(user_shifts))
}

const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 2000;
/// Longest range of shifts one request may ask for.
const MAX_RANGE_DAYS: i64 = 93;
/// Default range of shifts: from `from` for this many days.
const DEFAULT_RANGE_DAYS: i64 = 7;

/// A new schedule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleRequest {
    /// Unique name, e.g. `Platform primary`.
    name: String,
    /// What it is for.
    #[serde(default)]
    description: String,
    /// IANA time zone the handoffs and restrictions are in, e.g. `America/New_York`.
    time_zone: String,
    /// Layers, lowest precedence first.
    layers: Vec<LayerParts>,
}

/// Changes to a schedule; the layers, when given, replace the old ones whole.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SchedulePatch {
    /// New name.
    name: Option<String>,
    /// New description.
    description: Option<String>,
    /// New time zone.
    time_zone: Option<String>,
    /// New layers.
    layers: Option<Vec<LayerParts>>,
}

/// A new override.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverrideRequest {
    /// Who covers.
    user_id: i64,
    /// Start (inclusive, RFC 3339).
    starts_at: DateTime<Utc>,
    /// End (exclusive, RFC 3339), after the start.
    ends_at: DateTime<Utc>,
}

/// A time range.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RangeQuery {
    /// Start, RFC 3339 (default now).
    from: Option<String>,
    /// End, RFC 3339 (default 7 days after `from`; at most 93 days after it).
    to: Option<String>,
}

/// An instant.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AtQuery {
    /// The instant, RFC 3339 (default now).
    at: Option<String>,
}

/// A span of time one user is on call.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShiftView {
    /// The schedule.
    schedule_id: i64,
    /// Its name.
    schedule_name: String,
    /// Who is on call.
    user_id: i64,
    /// Their name.
    user_name: String,
    /// Start (inclusive).
    starts_at: DateTime<Utc>,
    /// End (exclusive).
    ends_at: DateTime<Utc>,
    /// Index of the layer it comes from; null for an override.
    layer: Option<usize>,
    /// Name of that layer; null for an override.
    layer_name: Option<String>,
}

/// Who is on call at an instant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OnCall {
    /// The schedule.
    schedule_id: i64,
    /// The instant asked about.
    at: DateTime<Utc>,
    /// The shift covering it (null when nobody is on call), its start and end
    /// looked up to 93 days either side.
    shift: Option<ShiftView>,
    /// The override that puts them there, if it is one.
    override_id: Option<i64>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn range(state: &AppState, q: &RangeQuery) -> Result<(Timestamp, Timestamp), ApiError> {
    let from = opt_time("from", q.from.as_deref())?.unwrap_or_else(|| state.now());
    let to = opt_time("to", q.to.as_deref())?.unwrap_or(from + Duration::days(DEFAULT_RANGE_DAYS));
    if to <= from {
        return Err(invalid("to", "must be after from"));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(invalid(
            "to",
            format!("a range is at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok((from, to))
}

pub(super) async fn user_names(state: &AppState) -> ApiResult<HashMap<i64, String>> {
    Ok(state
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect())
}

fn view(s: &StoredSchedule, names: &HashMap<i64, String>, shift: &Shift) -> ShiftView {
    ShiftView {
        schedule_id: s.id,
        schedule_name: s.name.clone(),
        user_id: shift.user_id,
        user_name: names.get(&shift.user_id).cloned().unwrap_or_default(),
        starts_at: shift.starts_at,
        ends_at: shift.ends_at,
        layer: shift.layer,
        layer_name: shift
            .layer
            .and_then(|i| s.layers.get(i))
            .map(|l| l.name.clone()),
    }
}

fn parsed(s: &StoredSchedule) -> ApiResult<Schedule> {
    // Stored schedules were checked when written; a failure here is a defect.
    s.schedule()
        .map_err(|e| ApiError::Internal(format!("schedule {} does not parse: {e}", s.id)))
}

/// The final shifts of a schedule over `[from, to)`.
pub(crate) async fn shifts_of(
    state: &AppState,
    s: &StoredSchedule,
    from: Timestamp,
    to: Timestamp,
) -> ApiResult<(Vec<Shift>, Vec<ScheduleOverride>)> {
    let overrides = state.store.overrides(s.id, from, to).await?;
    let os: Vec<_> = overrides
        .iter()
        .map(ScheduleOverride::as_override)
        .collect();
    Ok((final_shifts(&parsed(s)?, &os, from, to), overrides))
}

/// All schedules, by name.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules",
    responses((status = 200, body = Vec<StoredSchedule>)), security(("token" = ["viewer"])))]
async fn list_schedules(
    State(state): State<AppState>,
    _c: AsViewer,
) -> ApiResult<Json<Vec<StoredSchedule>>> {
    Ok(Json(state.store.schedules().await?))
}

/// Create a schedule: a time zone and layers of rotations (every user active).
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules", request_body = ScheduleRequest,
    responses((status = 201, body = StoredSchedule), (status = 400, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_schedule(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(r): ApiJson<ScheduleRequest>,
) -> ApiResult<(StatusCode, Json<StoredSchedule>)> {
    let name = required_text("name", &r.name, MAX_NAME)?;
    if r.description.len() > MAX_DESCRIPTION {
        return Err(invalid(
            "description",
            format!("at most {MAX_DESCRIPTION} bytes"),
        ));
    }
    let parts = ScheduleParts {
        time_zone: r.time_zone,
        layers: r.layers,
    };
    let created = state
        .store
        .create_schedule(&name, &r.description, &parts, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Read a schedule.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 200, body = StoredSchedule), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_schedule(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<StoredSchedule>> {
    Ok(Json(state.store.schedule(path_id("id", &id)?).await?))
}

/// Change a schedule's name, description, time zone or layers (replaced whole).
#[utoipa::path(patch, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = i64, Path)),
    request_body = SchedulePatch,
    responses((status = 200, body = StoredSchedule), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_schedule(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<SchedulePatch>,
) -> ApiResult<Json<StoredSchedule>> {
    let id = path_id("id", &id)?;
    let name = p
        .name
        .map(|n| required_text("name", &n, MAX_NAME))
        .transpose()?;
    if p.description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION)
    {
        return Err(invalid(
            "description",
            format!("at most {MAX_DESCRIPTION} bytes"),
        ));
    }
    let changes = ScheduleChanges {
        name,
        description: p.description,
        time_zone: p.time_zone,
        layers: p.layers,
    };
    Ok(Json(
        state
            .store
            .update_schedule(id, &changes, &c.actor(), state.now())
            .await?,
    ))
}

/// Delete a schedule, its overrides and its shift-swap requests; refused while an escalation policy names it.
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_schedule(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_schedule(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A schedule's final shifts over `[from, to)` (default the next 7 days; at most 93):
/// layers and overrides resolved by precedence, gaps left out.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/shifts", tag = "schedules", params(("id" = i64, Path), RangeQuery),
    responses((status = 200, body = Vec<ShiftView>), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn schedule_shifts(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<Vec<ShiftView>>> {
    let id = path_id("id", &id)?;
    let (from, to) = range(&state, &q)?;
    let s = state.store.schedule(id).await?;
    let (shifts, _) = shifts_of(&state, &s, from, to).await?;
    let names = user_names(&state).await?;
    Ok(Json(shifts.iter().map(|x| view(&s, &names, x)).collect()))
}

/// Who is on call at `at` (default now), since and until when, and from which
/// layer or override.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/on-call", tag = "schedules", params(("id" = i64, Path), AtQuery),
    responses((status = 200, body = OnCall), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn schedule_on_call(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AtQuery>,
) -> ApiResult<Json<OnCall>> {
    let id = path_id("id", &id)?;
    let at = opt_time("at", q.at.as_deref())?.unwrap_or_else(|| state.now());
    let s = state.store.schedule(id).await?;
    let span = Duration::days(MAX_RANGE_DAYS);
    let (shifts, overrides) = shifts_of(&state, &s, at - span, at + span).await?;
    let shift = shifts.iter().find(|x| x.starts_at <= at && at < x.ends_at);
    let override_id = shift.filter(|x| x.layer.is_none()).and_then(|x| {
        // The last created override covering `at` for that user is the one that wins.
        overrides
            .iter()
            .rev()
            .find(|o| o.user_id == x.user_id && o.starts_at <= at && at < o.ends_at)
            .map(|o| o.id)
    });
    let names = user_names(&state).await?;
    Ok(Json(OnCall {
        schedule_id: s.id,
        at,
        shift: shift.map(|x| view(&s, &names, x)),
        override_id,
    }))
}

/// A schedule's overrides that overlap `[from, to)` (default the next 7 days; at
/// most 93), oldest first: where they overlap, the later one wins.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/overrides", tag = "schedules", params(("id" = i64, Path), RangeQuery),
    responses((status = 200, body = Vec<ScheduleOverride>), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_overrides(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<Vec<ScheduleOverride>>> {
    let id = path_id("id", &id)?;
    let (from, to) = range(&state, &q)?;
    Ok(Json(state.store.overrides(id, from, to).await?))
}

/// Arrange cover: a user is on call for a time range, above every layer.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/overrides", tag = "schedules", params(("id" = i64, Path)),
    request_body = OverrideRequest,
    responses((status = 201, body = ScheduleOverride), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn create_override(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<OverrideRequest>,
) -> ApiResult<(StatusCode, Json<ScheduleOverride>)> {
    let id = path_id("id", &id)?;
    let created = state
        .store
        .create_override(
            id,
            r.user_id,
            r.starts_at,
            r.ends_at,
            &c.actor(),
            state.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Delete an override; the layers' rotation applies again.
#[utoipa::path(delete, path = "/api/v1/schedules/{id}/overrides/{override_id}", tag = "schedules",
    params(("id" = i64, Path), ("override_id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)), security(("token" = ["responder"])))]
async fn delete_override(
    State(state): State<AppState>,
    c: AsResponder,
    Path((id, override_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = path_id("id", &id)?;
    let override_id = path_id("override_id", &override_id)?;
    state
        .store
        .delete_override(id, override_id, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's final shifts across all schedules over `[from, to)` (default the next
/// 7 days; at most 93), by start.
#[utoipa::path(get, path = "/api/v1/users/{id}/shifts", tag = "schedules", params(("id" = i64, Path), RangeQuery),
    responses((status = 200, body = Vec<ShiftView>), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn user_shifts(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<Vec<ShiftView>>> {
    let user_id = path_id("id", &id)?;
    let (from, to) = range(&state, &q)?;
    state.store.user(user_id).await?;
    let names = user_names(&state).await?;
    let mut out = Vec::new();
    for s in state.store.schedules().await? {
        let (shifts, _) = shifts_of(&state, &s, from, to).await?;
        out.extend(
            shifts
                .iter()
                .filter(|x| x.user_id == user_id)
                .map(|x| view(&s, &names, x)),
        );
    }
    out.sort_by_key(|v| (v.starts_at, v.schedule_id));
    Ok(Json(out))
}
