//! /api/v1/incidents/{id}/similar and /api/v1/similar: past incidents most
//! like an incident, or like a text about to be declared, ranked by BM25F over
//! title, root cause, description, alert summaries and notes, with a boost for
//! a shared service. Viewers read.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::similar::SimilarDoc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_id;
use super::{opt_i64, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, AsViewer};
use crate::similar::{similar, SimilarIncident, MAX_RESULTS};
use crate::state::AppState;

/// Longest free-text query, in characters.
pub(crate) const MAX_QUERY: usize = 4000;
/// Results unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 5;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(incident_similar))
        .routes(routes!(search_similar))
}

/// How many results.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LimitQuery {
    /// Results, 1 to 50 (default 5).
    limit: Option<String>,
}

/// A free-text search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// What the new incident is about: its title and description, an alert summary.
    q: Option<String>,
    /// Comma-separated ids of the services it affects (ranks incidents of the same services higher).
    service_ids: Option<String>,
    /// Results, 1 to 50 (default 5).
    limit: Option<String>,
}

/// Past incidents ranked by likeness, best first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SimilarResults {
    /// The incident searched for; absent for a free-text search.
    incident_id: Option<i64>,
    /// The matches, best first; empty when nothing shares a distinctive word.
    results: Vec<SimilarIncident>,
}

pub(crate) fn parse_limit(s: Option<&str>) -> Result<usize, ApiError> {
    let limit = opt_i64("limit", s)?.unwrap_or(DEFAULT_LIMIT as i64);
    if !(1..=MAX_RESULTS as i64).contains(&limit) {
        return Err(ApiError::Invalid {
            field: "limit".into(),
            message: format!("must be between 1 and {MAX_RESULTS}"),
        });
    }
    Ok(limit as usize)
}

/// The query document of a free-text search.
pub(crate) fn text_query(
    q: Option<&str>,
    service_ids: Option<&str>,
) -> Result<SimilarDoc, ApiError> {
    let q = q.map(str::trim).unwrap_or_default();
    if q.is_empty() {
        return Err(ApiError::Invalid {
            field: "q".into(),
            message: "say what the incident is about".into(),
        });
    }
    if q.chars().count() > MAX_QUERY {
        return Err(ApiError::Invalid {
            field: "q".into(),
            message: format!("at most {MAX_QUERY} characters"),
        });
    }
    let mut services = Vec::new();
    for s in service_ids.unwrap_or_default().split(',').map(str::trim) {
        if s.is_empty() {
            continue;
        }
        services.push(s.parse::<i64>().map_err(|_| ApiError::Invalid {
            field: "service_ids".into(),
            message: format!("`{s}` is not a service id"),
        })?);
    }
    Ok(SimilarDoc {
        title: q.to_string(),
        service_ids: services,
        ..SimilarDoc::default()
    })
}

/// Past incidents most like this one, with how they were resolved.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/similar", tag = "similar",
    params(("id" = String, Path, description = "`42` or `INC-42`"), LimitQuery),
    responses((status = 200, body = SimilarResults), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn incident_similar(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> ApiResult<Json<SimilarResults>> {
    let id = incident_id(&id)?;
    let limit = parse_limit(q.limit.as_deref())?;
    let Some(doc) = state.store.similar_doc(id).await? else {
        return Err(ApiError::NotFound(format!("incident INC-{id}")));
    };
    Ok(Json(SimilarResults {
        incident_id: Some(id),
        results: similar(&state, &doc, limit, Some(id)).await?,
    }))
}

/// Past incidents most like a text, e.g. before declaring a new incident.
#[utoipa::path(get, path = "/api/v1/similar", tag = "similar", params(SearchQuery),
    responses((status = 200, body = SimilarResults), (status = 400, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn search_similar(
    State(state): State<AppState>,
    _c: AsViewer,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SimilarResults>> {
    let limit = parse_limit(q.limit.as_deref())?;
    let doc = text_query(q.q.as_deref(), q.service_ids.as_deref())?;
    Ok(Json(SimilarResults {
        incident_id: None,
        results: similar(&state, &doc, limit, None).await?,
    }))
}
