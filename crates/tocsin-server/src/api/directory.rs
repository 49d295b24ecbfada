//! Services, users and teams (integration keys: integrations.rs).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tocsin_core::auth::Role;
use tocsin_core::change::Patch;
use tocsin_core::model::{long_text, required_text, EmailAddress, Service, Team, User};
use tocsin_store::{Named, NewUser, UserChanges};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, ErrorResponse};
use crate::error::ApiResult;
use crate::extract::{ApiJson, AsAdmin, AsViewer};
use crate::password;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, update_service, delete_service))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, update_team, delete_team))
        .routes(routes!(add_member, remove_member))
}

pub(crate) const MAX_NAME: usize = 200;
pub(crate) const MAX_DESCRIPTION: usize = 10_000;

/// A new service.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceRequest {
    /// Unique name.
    pub(crate) name: String,
    /// What it is.
    #[serde(default)]
    pub(crate) description: String,
    /// Owning team.
    pub(crate) team_id: Option<i64>,
}

impl ServiceRequest {
    /// The name and description, checked as the API checks them (the web form uses it too).
    pub(crate) fn checked(&self) -> Result<(String, String), tocsin_core::Invalid> {
        Ok((
            required_text("name", &self.name, MAX_NAME)?,
            long_text("description", &self.description, MAX_DESCRIPTION)?,
        ))
    }
}

/// Changes to a service.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServicePatch {
    /// New name.
    name: Option<String>,
    /// New description.
    description: Option<String>,
    /// New owning team, or null for none.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    team_id: Patch<i64>,
}

/// All services, by name.
#[utoipa::path(get, path = "/api/v1/services", tag = "services",
    responses((status = 200, body = Vec<Service>)), security(("token" = ["viewer"])))]
async fn list_services(
    State(state): State<AppState>,
    _c: AsViewer,
) -> ApiResult<Json<Vec<Service>>> {
    Ok(Json(state.store.services().await?))
}

/// Create a service.
#[utoipa::path(post, path = "/api/v1/services", tag = "services", request_body = ServiceRequest,
    responses((status = 201, body = Service), (status = 400, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_service(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(r): ApiJson<ServiceRequest>,
) -> ApiResult<(StatusCode, Json<Service>)> {
    let (name, description) = r.checked()?;
    let s = state
        .store
        .create_service(&name, &description, r.team_id, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// Read a service.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "services", params(("id" = i64, Path)),
    responses((status = 200, body = Service), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_service(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Service>> {
    Ok(Json(state.store.service(path_id("id", &id)?).await?))
}

/// Change a service.
#[utoipa::path(patch, path = "/api/v1/services/{id}", tag = "services", params(("id" = i64, Path)), request_body = ServicePatch,
    responses((status = 200, body = Service), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_service(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<ServicePatch>,
) -> ApiResult<Json<Service>> {
    let id = path_id("id", &id)?;
    let named = Named {
        name: p
            .name
            .map(|n| required_text("name", &n, MAX_NAME))
            .transpose()?,
        description: p
            .description
            .map(|d| long_text("description", &d, MAX_DESCRIPTION))
            .transpose()?,
        team_id: match p.team_id {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Set(t) => Some(Some(t)),
        },
    };
    Ok(Json(
        state
            .store
            .update_service(id, &named, &c.actor(), state.now())
            .await?,
    ))
}

/// Delete a service that no incident refers to.
#[utoipa::path(delete, path = "/api/v1/services/{id}", tag = "services", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn delete_service(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_service(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserRequest {
    /// Display name.
    name: String,
    /// Unique email; the login.
    email: String,
    /// Role (default viewer).
    #[serde(default = "viewer")]
    role: Role,
    /// IANA time zone (default UTC).
    time_zone: Option<String>,
    /// Password for the web UI, at least 10 characters.
    password: Option<String>,
}

fn viewer() -> Role {
    Role::Viewer
}

/// Changes to a user.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPatch {
    /// New name.
    pub(crate) name: Option<String>,
    /// New email.
    pub(crate) email: Option<String>,
    /// New role (admins only).
    pub(crate) role: Option<Role>,
    /// New time zone.
    pub(crate) time_zone: Option<String>,
    /// Deactivate (false) or reactivate (admins only).
    pub(crate) active: Option<bool>,
    /// New password.
    pub(crate) password: Option<String>,
}

pub(crate) fn time_zone(tz: &str) -> Result<String, tocsin_core::Invalid> {
    let tz = required_text("time_zone", tz, 64)?;
    if tz
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
    {
        Ok(tz)
    } else {
        Err(tocsin_core::Invalid::new(
            "time_zone",
            format!("`{tz}` is not an IANA time zone name"),
        ))
    }
}

impl UserPatch {
    pub(crate) fn into_changes(self) -> Result<UserChanges, tocsin_core::Invalid> {
        Ok(UserChanges {
            name: self
                .name
                .map(|n| required_text("name", &n, MAX_NAME))
                .transpose()?,
            email: self
                .email
                .map(|e| EmailAddress::parse("email", &e))
                .transpose()?,
            role: self.role,
            time_zone: self.time_zone.map(|t| time_zone(&t)).transpose()?,
            active: self.active,
            password_hash: self
                .password
                .map(|p| password::hash("password", &p))
                .transpose()?,
        })
    }
}

/// All users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<User>)), security(("token" = ["viewer"])))]
async fn list_users(State(state): State<AppState>, _c: AsViewer) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.store.users().await?))
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserRequest,
    responses((status = 201, body = User), (status = 400, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_user(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(r): ApiJson<UserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let new = new_user(
        &r.name,
        &r.email,
        r.role,
        r.time_zone.as_deref(),
        r.password.as_deref(),
    )?;
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .store
                .create_user(&new, &c.actor(), state.now())
                .await?,
        ),
    ))
}

/// A new user from what was sent, each field checked (the API and the people page).
pub(crate) fn new_user(
    name: &str,
    email: &str,
    role: Role,
    tz: Option<&str>,
    password: Option<&str>,
) -> Result<NewUser, tocsin_core::Invalid> {
    Ok(NewUser {
        name: required_text("name", name, MAX_NAME)?,
        email: EmailAddress::parse("email", email)?,
        role,
        time_zone: time_zone(tz.unwrap_or("UTC"))?,
        password_hash: password
            .map(|p| password::hash("password", p))
            .transpose()?,
    })
}

/// Read a user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_user(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(state.store.user(path_id("id", &id)?).await?))
}

/// Change a user: name, email, role, time zone, active, password. Deactivating
/// someone a schedule layer, an override not yet ended or an escalation policy
/// names is refused (409, naming them).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_user(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<UserPatch>,
) -> ApiResult<Json<User>> {
    let id = path_id("id", &id)?;
    let changes = p.into_changes()?;
    let user = state
        .store
        .update_user(id, &changes, &c.actor(), state.now())
        .await?;
    if ends_sessions(&changes) {
        state.store.end_user_sessions(id).await?;
    }
    Ok(Json(user))
}

/// Does this change sign the user out of the web UI everywhere: deactivated,
/// or a new password (whoever knew the old one keeps no session).
pub(crate) fn ends_sessions(changes: &UserChanges) -> bool {
    changes.active == Some(false) || changes.password_hash.is_some()
}

/// A new team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamRequest {
    /// Unique name.
    name: String,
    /// What the team does.
    #[serde(default)]
    description: String,
}

/// Changes to a team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamPatch {
    /// New name.
    name: Option<String>,
    /// New description.
    description: Option<String>,
}

/// All teams with their members.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams",
    responses((status = 200, body = Vec<Team>)), security(("token" = ["viewer"])))]
async fn list_teams(State(state): State<AppState>, _c: AsViewer) -> ApiResult<Json<Vec<Team>>> {
    Ok(Json(state.store.teams().await?))
}

/// Create a team.
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = TeamRequest,
    responses((status = 201, body = Team), (status = 400, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_team(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(r): ApiJson<TeamRequest>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    let name = required_text("name", &r.name, MAX_NAME)?;
    let description = long_text("description", &r.description, MAX_DESCRIPTION)?;
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .store
                .create_team(&name, &description, &c.actor(), state.now())
                .await?,
        ),
    ))
}

/// Read a team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path)),
    responses((status = 200, body = Team), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_team(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Team>> {
    Ok(Json(state.store.team(path_id("id", &id)?).await?))
}

/// Rename or redescribe a team.
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path)), request_body = TeamPatch,
    responses((status = 200, body = Team), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn update_team(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<TeamPatch>,
) -> ApiResult<Json<Team>> {
    let named = Named {
        name: p
            .name
            .map(|n| required_text("name", &n, MAX_NAME))
            .transpose()?,
        description: p
            .description
            .map(|d| long_text("description", &d, MAX_DESCRIPTION))
            .transpose()?,
        team_id: None,
    };
    Ok(Json(
        state
            .store
            .update_team(path_id("id", &id)?, &named, &c.actor(), state.now())
            .await?,
    ))
}

/// Delete a team that owns no services and no escalation policy names.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn delete_team(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_team(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a member to a team.
#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams",
    params(("id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 200, body = Team), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn add_member(
    State(state): State<AppState>,
    c: AsAdmin,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<Json<Team>> {
    let t = state
        .store
        .set_team_member(
            path_id("id", &id)?,
            path_id("user_id", &user)?,
            true,
            &c.actor(),
            state.now(),
        )
        .await?;
    Ok(Json(t))
}

/// Remove a member from a team.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams",
    params(("id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 200, body = Team), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn remove_member(
    State(state): State<AppState>,
    c: AsAdmin,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<Json<Team>> {
    let t = state
        .store
        .set_team_member(
            path_id("id", &id)?,
            path_id("user_id", &user)?,
            false,
            &c.actor(),
            state.now(),
        )
        .await?;
    Ok(Json(t))
}
