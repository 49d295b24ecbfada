//! iCalendar feeds of on-call shifts: `GET /calendar/{token}.ics`, where the
//! secret token in the URL is the only credential (calendar apps send no
//! headers), and the API that creates, rotates and describes them.
//!
//! A feed covers shifts from 7 days ago to 60 days ahead, rendered by
//! `tocsin_core::ical` with the same computation and names as the shifts API.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Duration;
use serde::Serialize;
use tocsin_core::ical::{self, Feed, FeedShift};
use tocsin_core::time::Timestamp;
use tocsin_store::{CalendarFeed, FeedOwner, StoredSchedule};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schedules::{shifts_of, user_names};
use super::snippets::base_url;
use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AsAdmin, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(schedule_feed, rotate_schedule_feed))
        .routes(routes!(my_feed, rotate_my_feed))
}

/// The feed itself, outside /api/v1: it takes no bearer token.
pub(crate) fn feed_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(calendar))
}

/// Days of past shifts a feed shows.
pub(crate) const PAST_DAYS: i64 = 7;
/// Days of coming shifts a feed shows.
pub(crate) const AHEAD_DAYS: i64 = 60;
const CONTENT: &str = "text/calendar; charset=utf-8";
const CACHE: &str = "private, max-age=300";

/// Whether a feed exists, and which token it has (never the token itself).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FeedStatus {
    /// True once the feed was created.
    exists: bool,
    /// The feed, when it exists.
    feed: Option<CalendarFeed>,
}

/// A feed with its new URL; the token in it is shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FeedUrl {
    /// The feed.
    #[serde(flatten)]
    feed: CalendarFeed,
    /// Subscribe to this URL; any earlier URL of the feed no longer works.
    url: String,
}

fn status(feed: Option<CalendarFeed>) -> Json<FeedStatus> {
    Json(FeedStatus {
        exists: feed.is_some(),
        feed,
    })
}

async fn rotate(
    state: &AppState,
    headers: &HeaderMap,
    owner: FeedOwner,
    actor: &tocsin_store::Actor,
) -> ApiResult<(StatusCode, Json<FeedUrl>)> {
    let (feed, token) = state
        .store
        .rotate_calendar_feed(owner, actor, state.now())
        .await?;
    let url = format!("{}/calendar/{token}.ics", base_url(state, headers));
    let code = if feed.rotated_at.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((code, Json(FeedUrl { feed, url })))
}

/// Whether a schedule's calendar feed exists, its token prefix and when it was
/// created or last rotated.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/calendar-feed", tag = "calendar", params(("id" = i64, Path)),
    responses((status = 200, body = FeedStatus), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn schedule_feed(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<FeedStatus>> {
    let id = path_id("id", &id)?;
    state.store.schedule(id).await?;
    Ok(status(
        state.store.calendar_feed(FeedOwner::Schedule(id)).await?,
    ))
}

/// Create a schedule's calendar feed, or rotate its secret URL (the old URL
/// stops working at once). The URL with the new token is shown only this once.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/calendar-feed", tag = "calendar", params(("id" = i64, Path)),
    responses((status = 201, body = FeedUrl, description = "Created"), (status = 200, body = FeedUrl, description = "Rotated"),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn rotate_schedule_feed(
    State(state): State<AppState>,
    c: AsAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<FeedUrl>)> {
    let id = path_id("id", &id)?;
    rotate(&state, &headers, FeedOwner::Schedule(id), &c.actor()).await
}

/// Whether your own calendar feed (your shifts across all schedules) exists,
/// its token prefix and when it was created or last rotated.
#[utoipa::path(get, path = "/api/v1/me/calendar-feed", tag = "calendar",
    responses((status = 200, body = FeedStatus)), security(("token" = ["viewer"])))]
async fn my_feed(State(state): State<AppState>, c: AsViewer) -> ApiResult<Json<FeedStatus>> {
    Ok(status(
        state
            .store
            .calendar_feed(FeedOwner::User(c.user_id()))
            .await?,
    ))
}

/// Create your own calendar feed (your shifts across all schedules), or rotate
/// its secret URL (the old URL stops working at once). The URL with the new
/// token is shown only this once.
#[utoipa::path(post, path = "/api/v1/me/calendar-feed", tag = "calendar",
    responses((status = 201, body = FeedUrl, description = "Created"), (status = 200, body = FeedUrl, description = "Rotated")),
    security(("token" = ["viewer"])))]
async fn rotate_my_feed(
    State(state): State<AppState>,
    c: AsViewer,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<FeedUrl>)> {
    rotate(&state, &headers, FeedOwner::User(c.user_id()), &c.actor()).await
}

fn feed_shifts(
    s: &StoredSchedule,
    names: &std::collections::HashMap<i64, String>,
    shifts: &[tocsin_core::schedule::Shift],
    user: Option<i64>,
) -> Vec<FeedShift> {
    shifts
        .iter()
        .filter(|x| user.is_none_or(|u| x.user_id == u))
        .map(|x| FeedShift {
            shift: *x,
            schedule_id: s.id,
            schedule_name: s.name.clone(),
            user_name: names.get(&x.user_id).cloned().unwrap_or_default(),
            layer_name: x
                .layer
                .and_then(|i| s.layers.get(i))
                .map(|l| l.name.clone()),
        })
        .collect()
}

async fn render(state: &AppState, feed: &CalendarFeed, now: Timestamp) -> ApiResult<String> {
    let (from, to) = (
        now - Duration::days(PAST_DAYS),
        now + Duration::days(AHEAD_DAYS),
    );
    let names = user_names(state).await?;
    let (name, events) = match feed.owner() {
        FeedOwner::Schedule(id) => {
            let s = state.store.schedule(id).await?;
            let (shifts, _) = shifts_of(state, &s, from, to).await?;
            (
                format!("On call: {}", s.name),
                feed_shifts(&s, &names, &shifts, None),
            )
        }
        FeedOwner::User(user_id) => {
            let user = state.store.user(user_id).await?;
            let mut events = Vec::new();
            for s in state.store.schedules().await? {
                let (shifts, _) = shifts_of(state, &s, from, to).await?;
                events.extend(feed_shifts(&s, &names, &shifts, Some(user_id)));
            }
            events.sort_by_key(|e| (e.shift.starts_at, e.schedule_id));
            (format!("On-call shifts: {}", user.name), events)
        }
    };
    Ok(ical::calendar(&Feed { name }, &events, now))
}

/// A calendar feed (RFC 5545) of on-call shifts from 7 days ago to 60 days
/// ahead, for calendar apps to subscribe to. The secret token in the URL is the
/// credential: no bearer token; an unknown or rotated token is a 404.
#[utoipa::path(get, path = "/calendar/{file}", tag = "calendar",
    params(("file" = String, Path, description = "The feed's secret token followed by `.ics`")),
    responses((status = 200, content_type = "text/calendar", body = String, description = "The iCalendar document"),
        (status = 404, body = ErrorResponse)))]
async fn calendar(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let not_found = || ApiError::NotFound("calendar feed".into());
    let token = file.strip_suffix(".ics").ok_or_else(not_found)?;
    let feed = state
        .store
        .calendar_feed_by_token(token)
        .await?
        .ok_or_else(not_found)?;
    let body = render(&state, &feed, state.now()).await?;
    Ok(([(CONTENT_TYPE, CONTENT), (CACHE_CONTROL, CACHE)], body))
}
