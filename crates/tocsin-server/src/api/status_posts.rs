//! Publishing on a status page: incidents and scheduled maintenances ("posts"),
//! corrections to a post, and the posts about an internal incident. Their
//! updates are in `status_updates`.
//!
//! Responders publish and correct (it is incident work); deleting a post,
//! which takes back what customers were told, is for admins.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tocsin_core::change::Patch;
use tocsin_core::model::required_text;
use tocsin_core::status_page::records::{Post, Template};
use tocsin_core::status_page::{maintenance_window, ComponentStatus, Impact, PostKind, PostStatus};
use tocsin_core::time::Timestamp;
use tocsin_core::Invalid;
use tocsin_store::status::{ComponentChange, NewPost, PostChanges};
use tocsin_store::{Actor, StoreError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_id;
use super::status_pages::{no_repeats, present, yes, MAX_BODY, MAX_NAME};
use super::{opt_i64, path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AsAdmin, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish_status_incident))
        .routes(routes!(publish_status_maintenance))
        .routes(routes!(list_status_posts))
        .routes(routes!(
            get_status_post,
            update_status_post,
            delete_status_post
        ))
        .routes(routes!(incident_status_posts))
}

/// Longest reminder ahead of a maintenance: a week.
pub(crate) const MAX_REMIND_MINUTES: i64 = 7 * 24 * 60;
/// Reminder when none is asked for.
const DEFAULT_REMIND_MINUTES: i64 = 60;
/// Most posts one list returns.
const MAX_LIMIT: i64 = 500;

pub(super) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A component a post or update names, with its new status (none: only linked).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComponentStatusRequest {
    /// The component, on the post's page.
    pub(crate) component_id: i64,
    /// Its new status.
    pub(crate) status: Option<ComponentStatus>,
}

pub(super) fn component_changes(
    cs: &[ComponentStatusRequest],
) -> Result<Vec<ComponentChange>, ApiError> {
    let ids: Vec<i64> = cs.iter().map(|c| c.component_id).collect();
    no_repeats("components", ".component_id", &ids)?;
    Ok(cs
        .iter()
        .map(|c| ComponentChange {
            component_id: c.component_id,
            status: c.status,
        })
        .collect())
}

/// A public incident to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentPostRequest {
    /// Title (required unless the template gives one).
    pub(crate) name: Option<String>,
    /// `investigating` (default), `identified`, `monitoring` or `resolved`.
    pub(crate) status: Option<String>,
    /// `none`, `minor`, `major` or `critical` (default: from the worst component status).
    pub(crate) impact: Option<String>,
    /// The first update's text, markdown (required unless the template gives one).
    pub(crate) body: Option<String>,
    /// Components it affects, each with its new status.
    #[serde(default)]
    pub(crate) components: Vec<ComponentStatusRequest>,
    /// The internal incident it is about (never shown publicly).
    pub(crate) incident_id: Option<i64>,
    /// A template of this page whose title, body and status fill what is not given.
    pub(crate) template_id: Option<i64>,
    /// Tell subscribers (default true).
    #[serde(default = "yes")]
    pub(crate) notify: bool,
    /// Time shown for the first update (RFC 3339, not in the future; default now).
    pub(crate) display_at: Option<DateTime<Utc>>,
}

/// A scheduled maintenance to announce.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaintenanceRequest {
    /// Title (required unless the template gives one).
    pub(crate) name: Option<String>,
    /// The announcement, markdown (required unless the template gives one).
    pub(crate) body: Option<String>,
    /// A maintenance template of this page whose title, body and status fill what is not given.
    pub(crate) template_id: Option<i64>,
    /// `scheduled` (default) or `in_progress` (it has begun: components go under maintenance now).
    pub(crate) status: Option<String>,
    /// When the work starts; in the past only for one already `in_progress`.
    pub(crate) scheduled_for: DateTime<Utc>,
    /// When it ends: after the start, at most 31 days later, not past.
    pub(crate) scheduled_until: DateTime<Utc>,
    /// Components under maintenance while it is in progress.
    #[serde(default)]
    pub(crate) components: Vec<i64>,
    /// Start by itself at `scheduled_for` (default true).
    #[serde(default = "yes")]
    pub(crate) auto_start: bool,
    /// Complete by itself at `scheduled_until` (default true).
    #[serde(default = "yes")]
    pub(crate) auto_complete: bool,
    /// Remind subscribers this many minutes ahead, 0 to 10080 (default 60; null: no reminder).
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub(crate) remind_minutes: Patch<i64>,
    /// Tell subscribers now and at the automatic steps (default true).
    #[serde(default = "yes")]
    pub(crate) notify: bool,
}

/// Changes to a post that are not an update: a typo, a rescheduled maintenance.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostPatch {
    /// New title.
    #[serde(default, deserialize_with = "present")]
    pub(crate) name: Option<String>,
    /// Incident: new impact (`none`, `minor`, `major`, `critical`).
    #[serde(default, deserialize_with = "present")]
    pub(crate) impact: Option<String>,
    /// The internal incident it is about, or null to unlink.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub(crate) incident_id: Patch<i64>,
    /// Maintenance: new planned start.
    #[serde(default, deserialize_with = "present")]
    pub(crate) scheduled_for: Option<DateTime<Utc>>,
    /// Maintenance: new planned end.
    #[serde(default, deserialize_with = "present")]
    pub(crate) scheduled_until: Option<DateTime<Utc>>,
    /// Maintenance: start by itself, or not.
    #[serde(default, deserialize_with = "present")]
    pub(crate) auto_start: Option<bool>,
    /// Maintenance: complete by itself, or not.
    #[serde(default, deserialize_with = "present")]
    pub(crate) auto_complete: Option<bool>,
    /// Maintenance: reminder minutes (0 to 10080), or null for none.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub(crate) remind_minutes: Patch<i64>,
    /// Maintenance: whether its automatic steps notify subscribers.
    #[serde(default, deserialize_with = "present")]
    pub(crate) notify: Option<bool>,
    /// The components it affects, replacing the list (their statuses stay).
    #[serde(default, deserialize_with = "present")]
    pub(crate) component_ids: Option<Vec<i64>>,
}

/// Which posts to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PostQuery {
    /// `incident` or `maintenance` (default both).
    kind: Option<String>,
    /// `true`: only those not resolved or completed.
    open: Option<String>,
    /// At most this many, 1 to 500 (default 50).
    limit: Option<String>,
}

/// Text of an update: markdown, not blank (readers are owed words), bounded.
pub(super) fn body_text(field: &str, s: &str) -> Result<String, Invalid> {
    if s.trim().is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if s.chars().count() > MAX_BODY {
        return Err(Invalid::new(
            field,
            format!("must be at most {MAX_BODY} characters"),
        ));
    }
    Ok(s.trim_end().to_string())
}

/// A time shown to readers: backdating is allowed (an update written after
/// the fact), postdating is not (it would claim what has not happened).
pub(super) fn shown_at(
    field: &str,
    at: Option<Timestamp>,
    now: Timestamp,
) -> Result<Option<Timestamp>, Invalid> {
    match at {
        Some(t) if t > now => Err(Invalid::new(field, "must not be in the future")),
        t => Ok(t),
    }
}

fn remind(p: Patch<i64>, absent: Option<i64>) -> Result<Option<Option<i64>>, Invalid> {
    match p {
        Patch::Absent => Ok(absent.map(Some)),
        Patch::Null => Ok(Some(None)),
        Patch::Set(m) if (0..=MAX_REMIND_MINUTES).contains(&m) => Ok(Some(Some(m))),
        Patch::Set(_) => Err(Invalid::new(
            "remind_minutes",
            format!("must be 0 to {MAX_REMIND_MINUTES} minutes, or null for no reminder"),
        )),
    }
}

/// The template a post names, when it is one of this page's for this kind.
pub(crate) async fn template(
    state: &AppState,
    page_id: i64,
    kind: PostKind,
    id: Option<i64>,
) -> ApiResult<Option<Template>> {
    let Some(id) = id else { return Ok(None) };
    let t = match state.store.status_template(id).await {
        Ok(t) => t,
        Err(StoreError::NotFound { .. }) => {
            return Err(invalid(
                "template_id",
                format!("template {id} does not exist"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if t.page_id != page_id {
        return Err(invalid(
            "template_id",
            format!("template {id} belongs to another status page"),
        ));
    }
    if t.kind != kind {
        return Err(invalid(
            "template_id",
            format!(
                "template {id} is for {}s, not {}s",
                t.kind.as_str(),
                kind.as_str()
            ),
        ));
    }
    Ok(Some(t))
}

/// Title, body and status: as given, else from the template, else (status) the default.
fn filled(
    kind: PostKind,
    t: Option<&Template>,
    name: Option<String>,
    body: Option<String>,
    status: Option<String>,
) -> Result<(String, String, PostStatus), Invalid> {
    let name = name
        .or_else(|| t.map(|t| t.title.clone()))
        .ok_or_else(|| Invalid::new("name", "is required (or a template_id that gives it)"))?;
    let body = body
        .or_else(|| t.map(|t| t.body.clone()))
        .ok_or_else(|| Invalid::new("body", "is required (or a template_id that gives it)"))?;
    let status = match status {
        Some(s) => PostStatus::parse("status", kind, &s)?,
        None => t
            .and_then(|t| t.status)
            .unwrap_or(PostStatus::allowed(kind)[0]),
    };
    Ok((
        required_text("name", &name, MAX_NAME)?,
        body_text("body", &body)?,
        status,
    ))
}

/// Publish an incident on a status page: its first update, and the component
/// statuses it sets (recorded in their history), in one transaction. With
/// `incident_id`, its events go on that incident's timeline too.
#[utoipa::path(post, path = "/api/v1/status-pages/{id}/incidents", tag = "status pages",
    params(("id" = i64, Path)), request_body = IncidentPostRequest,
    responses((status = 201, body = Post), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn publish_status_incident(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<IncidentPostRequest>,
) -> ApiResult<(StatusCode, Json<Post>)> {
    let page_id = path_id("id", &id)?;
    let created = publish_incident(&state, &c.actor(), page_id, r).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Checks and publishes an incident (the API's and the web forms' one way in).
pub(crate) async fn publish_incident(
    state: &AppState,
    actor: &Actor,
    page_id: i64,
    r: IncidentPostRequest,
) -> ApiResult<Post> {
    let now = state.now();
    let t = template(state, page_id, PostKind::Incident, r.template_id).await?;
    let (name, body, status) = filled(PostKind::Incident, t.as_ref(), r.name, r.body, r.status)?;
    let post = NewPost {
        kind: PostKind::Incident,
        incident_id: r.incident_id,
        name,
        status,
        impact: r.impact.map(|i| Impact::parse("impact", &i)).transpose()?,
        body,
        components: component_changes(&r.components)?,
        notify: r.notify,
        display_at: shown_at("display_at", r.display_at, now)?,
        scheduled_for: None,
        scheduled_until: None,
        auto_start: false,
        auto_complete: false,
        remind_minutes: None,
    };
    Ok(state.store.publish_post(page_id, &post, actor, now).await?)
}

/// Announce a scheduled maintenance (or one already in progress). It reminds
/// subscribers, starts and completes by itself on time unless told not to.
#[utoipa::path(post, path = "/api/v1/status-pages/{id}/maintenances", tag = "status pages",
    params(("id" = i64, Path)), request_body = MaintenanceRequest,
    responses((status = 201, body = Post), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn publish_status_maintenance(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<MaintenanceRequest>,
) -> ApiResult<(StatusCode, Json<Post>)> {
    let page_id = path_id("id", &id)?;
    let created = publish_maintenance(&state, &c.actor(), page_id, r).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Checks and announces a maintenance (the API's and the web form's one way in).
pub(crate) async fn publish_maintenance(
    state: &AppState,
    actor: &Actor,
    page_id: i64,
    r: MaintenanceRequest,
) -> ApiResult<Post> {
    let now = state.now();
    let t = template(state, page_id, PostKind::Maintenance, r.template_id).await?;
    let (name, body, status) = filled(PostKind::Maintenance, t.as_ref(), r.name, r.body, r.status)?;
    if !matches!(status, PostStatus::Scheduled | PostStatus::InProgress) {
        return Err(invalid(
            "status",
            "a maintenance is announced as scheduled or in_progress",
        ));
    }
    maintenance_window(r.scheduled_for, r.scheduled_until)?;
    if r.scheduled_for < now && status == PostStatus::Scheduled {
        return Err(invalid(
            "scheduled_for",
            "is in the past: announce it with status in_progress if the work has begun",
        ));
    }
    if r.scheduled_until <= now {
        return Err(invalid("scheduled_until", "is in the past"));
    }
    no_repeats("components", "", &r.components)?;
    // Named components keep their status while it is scheduled; the store puts
    // them under maintenance when it starts (at once, if announced in progress).
    let post = NewPost {
        kind: PostKind::Maintenance,
        incident_id: None,
        name,
        status,
        impact: None,
        body,
        components: r
            .components
            .iter()
            .map(|&component_id| ComponentChange {
                component_id,
                status: None,
            })
            .collect(),
        notify: r.notify,
        display_at: None,
        scheduled_for: Some(r.scheduled_for),
        scheduled_until: Some(r.scheduled_until),
        auto_start: r.auto_start,
        auto_complete: r.auto_complete,
        remind_minutes: remind(r.remind_minutes, Some(DEFAULT_REMIND_MINUTES))?.flatten(),
    };
    Ok(state.store.publish_post(page_id, &post, actor, now).await?)
}

/// A status page's posts with their updates, newest first.
#[utoipa::path(get, path = "/api/v1/status-pages/{id}/posts", tag = "status pages",
    params(("id" = i64, Path), PostQuery),
    responses((status = 200, body = Vec<Post>), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_status_posts(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PostQuery>,
) -> ApiResult<Json<Vec<Post>>> {
    let page_id = path_id("id", &id)?;
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(PostKind::parse(k).ok_or_else(|| {
            invalid(
                "kind",
                format!("`{k}` is not a kind of post; one of: incident, maintenance"),
            )
        })?),
    };
    let open = match q.open.as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(o) => return Err(invalid("open", format!("`{o}` is not true or false"))),
    };
    let limit = opt_i64("limit", q.limit.as_deref())?.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    Ok(Json(state.store.posts(page_id, kind, open, limit).await?))
}

/// Read a post with all its updates, newest first.
#[utoipa::path(get, path = "/api/v1/status-posts/{id}", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 200, body = Post), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_status_post(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Post>> {
    Ok(Json(state.store.post(path_id("id", &id)?).await?))
}

impl PostPatch {
    /// Fields only a maintenance has, with their names.
    fn maintenance_fields(&self) -> Option<&'static str> {
        [
            (self.scheduled_for.is_some(), "scheduled_for"),
            (self.scheduled_until.is_some(), "scheduled_until"),
            (self.auto_start.is_some(), "auto_start"),
            (self.auto_complete.is_some(), "auto_complete"),
            (
                !matches!(self.remind_minutes, Patch::Absent),
                "remind_minutes",
            ),
            (self.notify.is_some(), "notify"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }

    fn parse(self, post: &Post, now: Timestamp) -> Result<PostChanges, ApiError> {
        match post.kind {
            PostKind::Incident => {
                if let Some(f) = self.maintenance_fields() {
                    return Err(invalid(f, "only a maintenance has this"));
                }
            }
            PostKind::Maintenance => {
                if self.impact.is_some() {
                    return Err(invalid(
                        "impact",
                        "a maintenance's impact is always maintenance",
                    ));
                }
                if self.scheduled_for.is_some_and(|f| f < now)
                    && post.status == PostStatus::Scheduled
                {
                    return Err(invalid("scheduled_for", "is in the past"));
                }
            }
        }
        if let Some(ids) = &self.component_ids {
            no_repeats("component_ids", "", ids)?;
        }
        Ok(PostChanges {
            name: self
                .name
                .map(|n| required_text("name", &n, MAX_NAME))
                .transpose()?,
            impact: self
                .impact
                .map(|i| Impact::parse("impact", &i))
                .transpose()?,
            incident_id: match self.incident_id {
                Patch::Absent => None,
                Patch::Null => Some(None),
                Patch::Set(i) => Some(Some(i)),
            },
            scheduled_for: self.scheduled_for,
            scheduled_until: self.scheduled_until,
            auto_start: self.auto_start,
            auto_complete: self.auto_complete,
            remind_minutes: remind(self.remind_minutes, None)?,
            notify: self.notify,
            component_ids: self.component_ids,
        })
    }
}

/// Correct a post without publishing an update: its title, impact, link to an
/// internal incident, components; a maintenance's schedule, automatic steps,
/// reminder. Subscribers are not told.
#[utoipa::path(patch, path = "/api/v1/status-posts/{id}", tag = "status pages",
    params(("id" = i64, Path)), request_body = PostPatch,
    responses((status = 200, body = Post), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn update_status_post(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<PostPatch>,
) -> ApiResult<Json<Post>> {
    let id = path_id("id", &id)?;
    Ok(Json(update_post(&state, &c.actor(), id, p).await?))
}

/// Checks and stores a correction to a post (the API's and the web form's one way in).
pub(crate) async fn update_post(
    state: &AppState,
    actor: &Actor,
    id: i64,
    p: PostPatch,
) -> ApiResult<Post> {
    let now = state.now();
    // Its kind never changes, so reading it first decides which fields apply.
    let post = state.store.post(id).await?;
    let changes = p.parse(&post, now)?;
    Ok(state.store.update_post(id, &changes, actor, now).await?)
}

/// Delete a post and its updates; component statuses stay as they are.
#[utoipa::path(delete, path = "/api/v1/status-posts/{id}", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_status_post(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_post(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The status-page posts about an internal incident, on every page, newest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/status-posts", tag = "status pages",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Vec<Post>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn incident_status_posts(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Post>>> {
    let id = incident_id(&id)?;
    // An unknown incident is 404, not an empty list.
    state.store.incident(id).await?;
    Ok(Json(state.store.posts_for_incident(id).await?))
}
