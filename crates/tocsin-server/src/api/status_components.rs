//! A status page's component groups and components, a component's status
//! history, and the statuses an internal incident proposes for the components
//! linked to its services.
//!
//! Roles: viewers read; admins configure; a responder may move a component's
//! status and nothing else about it, because that is incident work (the
//! person running an incident says what customers see) while names, groups,
//! order and linked services are configuration.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tocsin_core::auth::Role;
use tocsin_core::change::Patch;
use tocsin_core::model::{long_text, required_text};
use tocsin_core::status_page::records::{Component, ComponentGroup, StatusPeriod};
use tocsin_core::status_page::ComponentStatus;
use tocsin_core::Invalid;
use tocsin_store::status::{
    ComponentChanges, GroupChanges, NewComponent, NewComponentGroup, StatusProposal,
};
use tocsin_store::Actor;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_id;
use super::status_pages::{no_repeats, present, yes, MAX_DESCRIPTION, MAX_NAME};
use super::{opt_time, path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AsAdmin, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_component_groups, create_component_group))
        .routes(routes!(
            get_component_group,
            update_component_group,
            delete_component_group
        ))
        .routes(routes!(list_status_components, create_status_component))
        .routes(routes!(
            get_status_component,
            update_status_component,
            delete_status_component
        ))
        .routes(routes!(status_component_history))
        .routes(routes!(incident_status_proposals))
}

/// Largest position a group or component may take; order, not arithmetic.
const MAX_POSITION: i64 = 100_000;

fn position(p: Option<i64>) -> Result<Option<i64>, Invalid> {
    match p {
        Some(n) if !(0..=MAX_POSITION).contains(&n) => Err(Invalid::new(
            "position",
            format!("must be 0 to {MAX_POSITION}"),
        )),
        p => Ok(p),
    }
}

/// A new component group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupRequest {
    /// Name, e.g. `Europe`.
    pub(crate) name: String,
    /// Description.
    #[serde(default)]
    pub(crate) description: String,
    /// Order on the page, 0 to 100000 (default: after the others).
    pub(crate) position: Option<i64>,
}

/// Changes to a component group.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupPatch {
    /// New name.
    #[serde(default, deserialize_with = "present")]
    pub(crate) name: Option<String>,
    /// New description.
    #[serde(default, deserialize_with = "present")]
    pub(crate) description: Option<String>,
    /// New order.
    #[serde(default, deserialize_with = "present")]
    pub(crate) position: Option<i64>,
}

/// A new component.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComponentRequest {
    /// Name, e.g. `API`.
    pub(crate) name: String,
    /// Description.
    #[serde(default)]
    pub(crate) description: String,
    /// Its group, on the same page.
    pub(crate) group_id: Option<i64>,
    /// Order (default: after the others).
    pub(crate) position: Option<i64>,
    /// Status to start in (default `operational`).
    pub(crate) status: Option<ComponentStatus>,
    /// Show its 90-day uptime bars (default true).
    #[serde(default = "yes")]
    pub(crate) show_uptime: bool,
    /// Show it only while not operational (default false).
    #[serde(default)]
    pub(crate) only_show_if_degraded: bool,
    /// Services whose incidents propose a status for it.
    #[serde(default)]
    pub(crate) service_ids: Vec<i64>,
}

/// Changes to a component. A responder may send `status` alone; anything
/// else needs an admin.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComponentPatch {
    /// New status (recorded in its history).
    #[serde(default, deserialize_with = "present")]
    pub(crate) status: Option<ComponentStatus>,
    /// New group, or null for none.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub(crate) group_id: Patch<i64>,
    /// New name.
    #[serde(default, deserialize_with = "present")]
    pub(crate) name: Option<String>,
    /// New description.
    #[serde(default, deserialize_with = "present")]
    pub(crate) description: Option<String>,
    /// New order.
    #[serde(default, deserialize_with = "present")]
    pub(crate) position: Option<i64>,
    /// Uptime bars on or off.
    #[serde(default, deserialize_with = "present")]
    pub(crate) show_uptime: Option<bool>,
    /// Shown only when degraded, or always.
    #[serde(default, deserialize_with = "present")]
    pub(crate) only_show_if_degraded: Option<bool>,
    /// The linked services, replacing the list.
    #[serde(default, deserialize_with = "present")]
    pub(crate) service_ids: Option<Vec<i64>>,
}

impl ComponentPatch {
    /// Whether it changes anything besides the status: configuration, for admins.
    fn configures(&self) -> bool {
        !matches!(self.group_id, Patch::Absent)
            || self.name.is_some()
            || self.description.is_some()
            || self.position.is_some()
            || self.show_uptime.is_some()
            || self.only_show_if_degraded.is_some()
            || self.service_ids.is_some()
    }

    fn parse(self) -> Result<ComponentChanges, ApiError> {
        if let Some(ids) = &self.service_ids {
            no_repeats("service_ids", "", ids)?;
        }
        Ok(ComponentChanges {
            group_id: match self.group_id {
                Patch::Absent => None,
                Patch::Null => Some(None),
                Patch::Set(g) => Some(Some(g)),
            },
            name: self
                .name
                .map(|n| required_text("name", &n, MAX_NAME))
                .transpose()?,
            description: self
                .description
                .map(|d| long_text("description", &d, MAX_DESCRIPTION))
                .transpose()?,
            position: position(self.position)?,
            status: self.status,
            show_uptime: self.show_uptime,
            only_show_if_degraded: self.only_show_if_degraded,
            service_ids: self.service_ids,
        })
    }
}

/// Which part of a component's history to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Only what lasted into or began after this time (RFC 3339; default: all).
    since: Option<String>,
}

/// A status page's component groups, in order.
#[utoipa::path(get, path = "/api/v1/status-pages/{id}/component-groups", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ComponentGroup>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_component_groups(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ComponentGroup>>> {
    Ok(Json(
        state.store.component_groups(path_id("id", &id)?).await?,
    ))
}

/// Create a component group on a status page.
#[utoipa::path(post, path = "/api/v1/status-pages/{id}/component-groups", tag = "status pages",
    params(("id" = i64, Path)), request_body = GroupRequest,
    responses((status = 201, body = ComponentGroup), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_component_group(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<GroupRequest>,
) -> ApiResult<(StatusCode, Json<ComponentGroup>)> {
    let page_id = path_id("id", &id)?;
    let g = create_group(&state, &c.actor(), page_id, r).await?;
    Ok((StatusCode::CREATED, Json(g)))
}

/// Checks and stores a new group (the API's and the web form's one way in).
pub(crate) async fn create_group(
    state: &AppState,
    actor: &Actor,
    page_id: i64,
    r: GroupRequest,
) -> ApiResult<ComponentGroup> {
    let new = NewComponentGroup {
        name: required_text("name", &r.name, MAX_NAME)?,
        description: long_text("description", &r.description, MAX_DESCRIPTION)?,
        position: position(r.position)?,
    };
    Ok(state
        .store
        .create_component_group(page_id, &new, actor, state.now())
        .await?)
}

/// Read a component group.
#[utoipa::path(get, path = "/api/v1/status-component-groups/{id}", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 200, body = ComponentGroup), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_component_group(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<ComponentGroup>> {
    Ok(Json(
        state.store.component_group(path_id("id", &id)?).await?,
    ))
}

/// Rename, redescribe or reorder a component group.
#[utoipa::path(patch, path = "/api/v1/status-component-groups/{id}", tag = "status pages",
    params(("id" = i64, Path)), request_body = GroupPatch,
    responses((status = 200, body = ComponentGroup), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_component_group(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<GroupPatch>,
) -> ApiResult<Json<ComponentGroup>> {
    let id = path_id("id", &id)?;
    Ok(Json(update_group(&state, &c.actor(), id, p).await?))
}

/// Checks and stores changes to a group (the API's and the web form's one way in).
pub(crate) async fn update_group(
    state: &AppState,
    actor: &Actor,
    id: i64,
    p: GroupPatch,
) -> ApiResult<ComponentGroup> {
    let changes = GroupChanges {
        name: p
            .name
            .map(|n| required_text("name", &n, MAX_NAME))
            .transpose()?,
        description: p
            .description
            .map(|d| long_text("description", &d, MAX_DESCRIPTION))
            .transpose()?,
        position: position(p.position)?,
    };
    Ok(state
        .store
        .update_component_group(id, &changes, actor, state.now())
        .await?)
}

/// Delete a component group; its components stay, ungrouped.
#[utoipa::path(delete, path = "/api/v1/status-component-groups/{id}", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_component_group(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_component_group(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A status page's components, in display order, with their linked services.
#[utoipa::path(get, path = "/api/v1/status-pages/{id}/components", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Component>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_status_components(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Component>>> {
    Ok(Json(state.store.components(path_id("id", &id)?).await?))
}

/// Create a component on a status page; its status history starts now.
#[utoipa::path(post, path = "/api/v1/status-pages/{id}/components", tag = "status pages",
    params(("id" = i64, Path)), request_body = ComponentRequest,
    responses((status = 201, body = Component), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_status_component(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ComponentRequest>,
) -> ApiResult<(StatusCode, Json<Component>)> {
    let page_id = path_id("id", &id)?;
    let created = create_component(&state, &c.actor(), page_id, r).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Checks and stores a new component (the API's and the web form's one way in).
pub(crate) async fn create_component(
    state: &AppState,
    actor: &Actor,
    page_id: i64,
    r: ComponentRequest,
) -> ApiResult<Component> {
    no_repeats("service_ids", "", &r.service_ids)?;
    let new = NewComponent {
        group_id: r.group_id,
        name: required_text("name", &r.name, MAX_NAME)?,
        description: long_text("description", &r.description, MAX_DESCRIPTION)?,
        position: position(r.position)?,
        status: r.status.unwrap_or(ComponentStatus::Operational),
        show_uptime: r.show_uptime,
        only_show_if_degraded: r.only_show_if_degraded,
        service_ids: r.service_ids,
    };
    Ok(state
        .store
        .create_component(page_id, &new, actor, state.now())
        .await?)
}

/// Read a component.
#[utoipa::path(get, path = "/api/v1/status-components/{id}", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 200, body = Component), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_status_component(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Component>> {
    Ok(Json(state.store.component(path_id("id", &id)?).await?))
}

/// Change a component. A responder may move its `status` (recorded in its
/// history); changing anything else about it needs an admin (403 `forbidden`).
#[utoipa::path(patch, path = "/api/v1/status-components/{id}", tag = "status pages",
    params(("id" = i64, Path)), request_body = ComponentPatch,
    responses((status = 200, body = Component), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn update_status_component(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<ComponentPatch>,
) -> ApiResult<Json<Component>> {
    // Who may comes before what is wrong: a responder's rename is refused as
    // a rename, whether or not the new name would parse.
    may_change(&p, c.role())?;
    let id = path_id("id", &id)?;
    Ok(Json(update_component(&state, &c.actor(), id, p).await?))
}

/// Refuses a change to anything but the status unless `role` is admin.
pub(crate) fn may_change(p: &ComponentPatch, role: Role) -> Result<(), ApiError> {
    if p.configures() && !role.allows(Role::Admin) {
        return Err(ApiError::Forbidden {
            needed: Role::Admin.as_str(),
            have: role.as_str(),
        });
    }
    Ok(())
}

/// Checks and stores changes to a component, after [`may_change`] (the API's
/// and the web forms' one way in).
pub(crate) async fn update_component(
    state: &AppState,
    actor: &Actor,
    id: i64,
    p: ComponentPatch,
) -> ApiResult<Component> {
    let changes = p.parse()?;
    Ok(state
        .store
        .update_component(id, &changes, actor, state.now())
        .await?)
}

/// Delete a component and its history; posts that named it keep its name in their updates.
#[utoipa::path(delete, path = "/api/v1/status-components/{id}", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_status_component(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_component(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A component's status history, oldest first; the open period has `ended_at` null.
#[utoipa::path(get, path = "/api/v1/status-components/{id}/history", tag = "status pages",
    params(("id" = i64, Path), HistoryQuery),
    responses((status = 200, body = Vec<StatusPeriod>), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn status_component_history(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Vec<StatusPeriod>>> {
    let id = path_id("id", &id)?;
    let since = opt_time("since", q.since.as_deref())?;
    Ok(Json(state.store.component_history(id, since).await?))
}

/// The statuses an incident proposes for the components linked to its
/// services, on every page, from its severity (the most severe level a major
/// outage, the next a partial outage, the rest degraded performance). Only a
/// proposal: nothing changes until someone publishes.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/status-proposals", tag = "status pages",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Vec<StatusProposal>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn incident_status_proposals(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<StatusProposal>>> {
    Ok(Json(
        state
            .store
            .status_proposals(incident_id(&id)?, &state.settings)
            .await?,
    ))
}
