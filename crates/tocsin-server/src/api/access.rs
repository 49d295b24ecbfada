//! Tokens, the caller's own account, instance settings and the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::auth::Role;
use tocsin_core::incident::{Status, LIFECYCLE};
use tocsin_core::model::{required_text, ApiToken, Event, User};
use tocsin_core::settings::{IncidentSettings, RoleDef};
use tocsin_store::NewSecret;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::directory::UserPatch;
use super::{opt_i64, path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AsAdmin, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(me, update_me))
        .routes(routes!(settings))
        .routes(routes!(events))
}

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRequest {
    /// What it is for, e.g. `ci-deploys`.
    name: String,
    /// Role; defaults to, and may not exceed, the owner's.
    role: Option<Role>,
    /// Owner; only admins may create tokens for others. Defaults to the caller.
    user_id: Option<i64>,
}

/// Tokens: your own, or everyone's for admins.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<ApiToken>)), security(("token" = ["viewer"])))]
async fn list_tokens(State(state): State<AppState>, c: AsViewer) -> ApiResult<Json<Vec<ApiToken>>> {
    let whose = (c.role() != Role::Admin).then(|| c.user_id());
    Ok(Json(state.store.tokens(whose).await?))
}

/// Create an API token; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenRequest,
    responses((status = 201, body = NewSecret<ApiToken>), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn create_token(
    State(state): State<AppState>,
    c: AsViewer,
    ApiJson(r): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<NewSecret<ApiToken>>)> {
    let owner = r.user_id.unwrap_or(c.user_id());
    if owner != c.user_id() && c.role() != Role::Admin {
        return Err(ApiError::NotAllowed(
            "only admins may create tokens for other users".into(),
        ));
    }
    // A token never has more rights than the token that made it, nor than its owner
    // (the store checks the owner). Without a role, your own new token inherits the
    // caller's role; another user's (admins only) inherits the owner's.
    let role = match r.role {
        Some(role) if !c.role().allows(role) => {
            return Err(ApiError::Invalid {
                field: "role".into(),
                message: format!("cannot grant {role} with a {} token", c.role()),
            });
        }
        Some(role) => Some(role),
        None if owner == c.user_id() => Some(c.role()),
        None => None,
    };
    let name = required_text("name", &r.name, 200)?;
    let t = state
        .store
        .create_token(owner, &name, role, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Revoke a token: your own, or anyone's for admins.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path)),
    responses((status = 200, body = ApiToken), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn revoke_token(
    State(state): State<AppState>,
    c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    let id = path_id("id", &id)?;
    let t = state.store.token(id).await?;
    if t.user_id != c.user_id() && c.role() != Role::Admin {
        return Err(ApiError::NotAllowed(
            "only admins may revoke other users' tokens".into(),
        ));
    }
    Ok(Json(
        state
            .store
            .revoke_token(id, &c.actor(), state.now())
            .await?,
    ))
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    /// The user behind the token.
    user: User,
    /// The token's effective role.
    role: Role,
    /// The token's id.
    token_id: i64,
}

/// Who am I: the user and role behind this token.
#[utoipa::path(get, path = "/api/v1/me", tag = "users",
    responses((status = 200, body = Me)), security(("token" = ["viewer"])))]
async fn me(c: AsViewer) -> Json<Me> {
    Json(Me {
        role: c.role(),
        token_id: c.0.token_id,
        user: c.0.user,
    })
}

/// Changes to your own account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MePatch {
    /// New name.
    name: Option<String>,
    /// New email.
    email: Option<String>,
    /// New time zone.
    time_zone: Option<String>,
    /// New password (at least 10 characters).
    password: Option<String>,
}

/// Change your own name, email, time zone or password.
#[utoipa::path(patch, path = "/api/v1/me", tag = "users", request_body = MePatch,
    responses((status = 200, body = User), (status = 400, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn update_me(
    State(state): State<AppState>,
    c: AsViewer,
    ApiJson(p): ApiJson<MePatch>,
) -> ApiResult<Json<User>> {
    let changes = UserPatch {
        name: p.name,
        email: p.email,
        time_zone: p.time_zone,
        password: p.password,
        ..Default::default()
    }
    .into_changes()?;
    let user = state
        .store
        .update_user(c.user_id(), &changes, &c.actor(), state.now())
        .await?;
    if super::directory::ends_sessions(&changes) {
        state.store.end_user_sessions(c.user_id()).await?;
    }
    Ok(Json(user))
}

/// One row of the lifecycle table.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LifecycleStep {
    /// A status.
    status: Status,
    /// Statuses it may move to.
    allowed_next: Vec<Status>,
}

/// What the instance is configured with.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Settings {
    /// Types, severities, custom roles and fields, priority matrix.
    incident: IncidentSettings,
    /// Built-in and custom incident roles.
    roles: Vec<RoleDef>,
    /// The lifecycle: which status may follow which.
    lifecycle: Vec<LifecycleStep>,
}

/// Instance settings: incident types, severities, roles, custom fields, priority matrix, lifecycle.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, body = Settings)), security(("token" = ["viewer"])))]
async fn settings(State(state): State<AppState>, _c: AsViewer) -> Json<Settings> {
    Json(Settings {
        incident: (*state.settings).clone(),
        roles: state.settings.roles(),
        lifecycle: LIFECYCLE
            .iter()
            .map(|(s, next)| LifecycleStep {
                status: *s,
                allowed_next: next.to_vec(),
            })
            .collect(),
    })
}

/// Paging through the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Return events with id greater than this (default 0).
    after: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// The audit log: every change on the instance, oldest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "settings", params(EventsQuery),
    responses((status = 200, body = Vec<Event>), (status = 400, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn events(
    State(state): State<AppState>,
    _c: AsAdmin,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Vec<Event>>> {
    let after = opt_i64("after", q.after.as_deref())?.unwrap_or(0);
    let limit = opt_i64("limit", q.limit.as_deref())?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Invalid {
            field: "limit".into(),
            message: "must be between 1 and 1000".into(),
        });
    }
    Ok(Json(state.store.events(after, limit).await?))
}
