//! Integrations: a service's integration keys with their routing rules and
//! generic-webhook templates, configuration snippets, and a dry run of templates
//! against a sample payload.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tocsin_core::alert::{AlertAction, AlertLink, AlertSeverity};
use tocsin_core::integration::Templates;
use tocsin_core::model::{required_text, IntegrationKey};
use tocsin_core::routing::{self, RoutingRule};
use tocsin_ingest::generic;
use tocsin_store::{IntegrationChanges, NewSecret};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::directory::MAX_NAME;
use super::snippets::{base_url, snippets, Snippets, PLACEHOLDER};
use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AsAdmin};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(get_key, update_key, revoke_key))
        .routes(routes!(test_templates))
}

/// An integration key with its configuration snippets.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Integration {
    /// The key (without its secret), routing rules and templates.
    #[serde(flatten)]
    key: IntegrationKey,
    /// How to point senders at it.
    snippets: Snippets,
}

fn with_snippets(
    state: &AppState,
    headers: &HeaderMap,
    key: IntegrationKey,
    secret: Option<&str>,
) -> Integration {
    let snippets = snippets(
        &base_url(state, headers),
        key.id,
        secret.unwrap_or(PLACEHOLDER),
    );
    Integration { key, snippets }
}

/// A new integration key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyRequest {
    /// What will send with it, e.g. `alertmanager-prod`.
    name: String,
}

/// Changes to an integration; what is left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyPatch {
    /// New name.
    name: Option<String>,
    /// New routing rules, replacing the list: `[{"matchers": ["env=\"prod\""], "service_id": 3}]`.
    #[schema(value_type = Option<Vec<RoutingRule>>)]
    routing_rules: Option<Value>,
    /// New generic-webhook templates, replacing the set; unset ones use the defaults.
    templates: Option<Templates>,
}

/// A service's integration keys (without secrets).
#[utoipa::path(get, path = "/api/v1/services/{id}/integration-keys", tag = "services", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<IntegrationKey>), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn list_keys(
    State(state): State<AppState>,
    _c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<IntegrationKey>>> {
    Ok(Json(
        state.store.integration_keys(path_id("id", &id)?).await?,
    ))
}

/// Create an integration key; the secret, and snippets filled in with it, are in this response only.
#[utoipa::path(post, path = "/api/v1/services/{id}/integration-keys", tag = "services", params(("id" = i64, Path)), request_body = KeyRequest,
    responses((status = 201, body = NewSecret<Integration>), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn create_key(
    State(state): State<AppState>,
    c: AsAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<KeyRequest>,
) -> ApiResult<(StatusCode, Json<NewSecret<Integration>>)> {
    let name = required_text("name", &r.name, MAX_NAME)?;
    let k = state
        .store
        .create_integration_key(path_id("id", &id)?, &name, &c.actor(), state.now())
        .await?;
    let record = with_snippets(&state, &headers, k.record, Some(&k.secret));
    Ok((
        StatusCode::CREATED,
        Json(NewSecret {
            record,
            secret: k.secret,
        }),
    ))
}

/// Read an integration key with its routing rules, templates and snippets (the key itself is a placeholder).
#[utoipa::path(get, path = "/api/v1/services/{id}/integration-keys/{key_id}", tag = "services",
    params(("id" = i64, Path), ("key_id" = i64, Path)),
    responses((status = 200, body = Integration), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn get_key(
    State(state): State<AppState>,
    _c: AsAdmin,
    headers: HeaderMap,
    Path((id, key_id)): Path<(String, String)>,
) -> ApiResult<Json<Integration>> {
    let k = state
        .store
        .integration_key(path_id("id", &id)?, path_id("key_id", &key_id)?)
        .await?;
    Ok(Json(with_snippets(&state, &headers, k, None)))
}

/// Change an integration key's name, routing rules or templates.
#[utoipa::path(patch, path = "/api/v1/services/{id}/integration-keys/{key_id}", tag = "services",
    params(("id" = i64, Path), ("key_id" = i64, Path)), request_body = KeyPatch,
    responses((status = 200, body = Integration), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_key(
    State(state): State<AppState>,
    c: AsAdmin,
    headers: HeaderMap,
    Path((id, key_id)): Path<(String, String)>,
    ApiJson(p): ApiJson<KeyPatch>,
) -> ApiResult<Json<Integration>> {
    let (id, key_id) = (path_id("id", &id)?, path_id("key_id", &key_id)?);
    let templates = p.templates.map(Templates::normalized);
    if let Some(t) = &templates {
        t.check()?;
    }
    let changes = IntegrationChanges {
        name: p
            .name
            .map(|n| required_text("name", &n, MAX_NAME))
            .transpose()?,
        routing_rules: p
            .routing_rules
            .map(|r| routing::parse_rules("routing_rules", &r))
            .transpose()?,
        templates,
    };
    let k = state
        .store
        .update_integration_key(id, key_id, &changes, &c.actor(), state.now())
        .await?;
    Ok(Json(with_snippets(&state, &headers, k, None)))
}

/// Revoke an integration key; alerts sent with it are refused from now on.
#[utoipa::path(delete, path = "/api/v1/services/{id}/integration-keys/{key_id}", tag = "services",
    params(("id" = i64, Path), ("key_id" = i64, Path)),
    responses((status = 200, body = IntegrationKey), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn revoke_key(
    State(state): State<AppState>,
    c: AsAdmin,
    Path((id, key_id)): Path<(String, String)>,
) -> ApiResult<Json<IntegrationKey>> {
    let k = state
        .store
        .revoke_integration_key(
            path_id("id", &id)?,
            path_id("key_id", &key_id)?,
            &c.actor(),
            state.now(),
        )
        .await?;
    Ok(Json(k))
}

/// Templates and a sample payload to try them on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateTest {
    /// Templates to try (unset ones use the defaults); or give `key_id`.
    templates: Option<Templates>,
    /// A saved integration whose templates (and routing rules) to try.
    key_id: Option<i64>,
    /// The sample payload, as the webhook would receive it.
    #[schema(value_type = Object)]
    payload: Value,
}

/// The alert a payload would produce.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertPreview {
    /// What the event does to the alert of its dedup key.
    action: AlertAction,
    /// Title (the alert's summary).
    title: String,
    /// Severity.
    severity: AlertSeverity,
    /// Dedup key.
    dedup_key: String,
    /// Description.
    description: String,
    /// Source.
    source: String,
    /// Links.
    links: Vec<AlertLink>,
    /// Labels.
    #[schema(value_type = Object)]
    labels: Map<String, Value>,
    /// With `key_id`: the service its routing rules send the alert to.
    #[serde(skip_serializing_if = "Option::is_none")]
    service_id: Option<i64>,
}

/// One template's problem.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TemplateProblem {
    /// The template, e.g. `templates.severity`.
    field: String,
    /// What is wrong.
    message: String,
}

/// The outcome of a template test: the alert, or every template's problem.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TemplateTestResult {
    /// The alert the payload would produce; null when a template fails.
    alert: Option<AlertPreview>,
    /// Problems, one per failing template; empty when `alert` is set.
    errors: Vec<TemplateProblem>,
}

/// Try templates against a sample payload: the alert it would produce, or each
/// template's error. Nothing is stored.
#[utoipa::path(post, path = "/api/v1/integration-templates/test", tag = "services", request_body = TemplateTest,
    responses((status = 200, body = TemplateTestResult), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn test_templates(
    State(state): State<AppState>,
    _c: AsAdmin,
    ApiJson(t): ApiJson<TemplateTest>,
) -> ApiResult<Json<TemplateTestResult>> {
    if !t.payload.is_object() {
        return Err(ApiError::Invalid {
            field: "payload".into(),
            message: "must be a JSON object, as the webhook would receive it".into(),
        });
    }
    let (templates, key) = match (t.templates, t.key_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Invalid {
                field: "key_id".into(),
                message: "give templates or key_id, not both".into(),
            })
        }
        (Some(templates), None) => (templates.normalized(), None),
        (None, Some(id)) => {
            let k = state.store.integration_key_by_id(id).await?;
            (k.config.templates.clone(), Some(k))
        }
        (None, None) => (Templates::default(), None),
    };
    let result = match generic::map_all(&templates, &t.payload) {
        Ok(m) => {
            let service_id = key
                .as_ref()
                .map(|k| routing::route(&k.config.routing_rules, &m.event, k.service_id));
            let e = m.event;
            TemplateTestResult {
                alert: Some(AlertPreview {
                    action: e.action,
                    title: e.summary,
                    severity: e.severity,
                    dedup_key: e.dedup_key.as_str().to_string(),
                    description: m.description,
                    source: e.source,
                    links: e.links,
                    labels: e.labels,
                    service_id,
                }),
                errors: Vec::new(),
            }
        }
        Err(problems) => TemplateTestResult {
            alert: None,
            errors: problems
                .into_iter()
                .map(|p| TemplateProblem {
                    field: p.field,
                    message: p.message,
                })
                .collect(),
        },
    };
    Ok(Json(result))
}
