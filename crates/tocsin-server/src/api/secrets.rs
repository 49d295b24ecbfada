//! /api/v1/secrets: values workflow steps read by name, sealed at rest.
//! Admins only; a value goes in and never comes out (the API shows names, who
//! set them and when). Deleting one a workflow reads is refused, naming it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tocsin_store::workflows::{secret_name, SecretRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ErrorResponse;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AsAdmin};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets, create_secret))
        .routes(routes!(replace_secret, delete_secret))
}

/// A new secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSecretRequest {
    /// Name, read in templates as `secrets.NAME`: letters, digits and `_`.
    name: String,
    /// The value; never shown again.
    value: String,
}

/// A secret's new value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretValue {
    /// The value; never shown again.
    value: String,
}

/// Every secret's name, and who set it when (never values).
#[utoipa::path(get, path = "/api/v1/secrets", tag = "workflows",
    responses((status = 200, body = Vec<SecretRecord>)),
    security(("token" = ["admin"])))]
async fn list_secrets(
    State(state): State<AppState>,
    _c: AsAdmin,
) -> ApiResult<Json<Vec<SecretRecord>>> {
    Ok(Json(state.store.secrets().await?))
}

/// Create a secret. Without a secret key configured this is 409, saying how
/// to configure one.
#[utoipa::path(post, path = "/api/v1/secrets", tag = "workflows", request_body = NewSecretRequest,
    responses((status = 201, body = SecretRecord), (status = 400, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_secret(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(r): ApiJson<NewSecretRequest>,
) -> ApiResult<(StatusCode, Json<SecretRecord>)> {
    let s = state
        .store
        .put_secret(&r.name, &r.value, true, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// Replace a secret's value; runs read the new one from their next step.
#[utoipa::path(put, path = "/api/v1/secrets/{name}", tag = "workflows",
    params(("name" = String, Path)), request_body = SecretValue,
    responses((status = 200, body = SecretRecord), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn replace_secret(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(name): Path<String>,
    ApiJson(r): ApiJson<SecretValue>,
) -> ApiResult<Json<SecretRecord>> {
    let name = secret_name("name", &name)?;
    Ok(Json(
        state
            .store
            .put_secret(&name, &r.value, false, &c.actor(), state.now())
            .await?,
    ))
}

/// Delete a secret. Refused (409) while a workflow's current version reads it
/// or the configuration names it for an integration.
#[utoipa::path(delete, path = "/api/v1/secrets/{name}", tag = "workflows",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn delete_secret(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete_unused(&state, &name, &c.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes secret `name` unless the configuration names it or a workflow's
/// current version reads it (409 `in_use`, naming which): the API's and the UI's.
pub(crate) async fn delete_unused(
    state: &AppState,
    name: &str,
    actor: &tocsin_store::Actor,
) -> ApiResult<()> {
    state.store.secret(name).await?;
    if let Some(key) = state.workflows.config_secrets.get(name) {
        return Err(ApiError::Conflict {
            code: "in_use",
            message: format!("the configuration names it ({key})"),
            field: Some("name".into()),
        });
    }
    for w in state.store.workflows().await? {
        let def = state.store.workflow_definition(w.version_id).await?;
        if def.secret_names().iter().any(|n| n == name) {
            return Err(ApiError::Conflict {
                code: "in_use",
                message: format!("the workflow “{}” reads secrets.{name}", w.name),
                field: Some("name".into()),
            });
        }
    }
    state.store.delete_secret(name, actor, state.now()).await?;
    Ok(())
}
