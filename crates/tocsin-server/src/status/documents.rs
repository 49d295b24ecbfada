//! The Statuspage-compatible JSON (`api/v2/…`) and the history feeds. Their
//! bodies come from the function table in `renderers.rs` through the cache;
//! these routes only find the page, check who may read it and send the body.
//! The JSON may be read by scripts on any site (status widgets) when the page
//! is public.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::Document as JsonDoc;
use super::pages::{readable, serve, SlugPath, TAG};
use super::render::Doc;
use super::respond::{Refusal, Want};
use crate::api::ErrorResponse;
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(summary))
        .routes(routes!(status))
        .routes(routes!(components))
        .routes(routes!(incidents))
        .routes(routes!(unresolved))
        .routes(routes!(maintenances))
        .routes(routes!(upcoming))
        .routes(routes!(active))
        .routes(routes!(atom))
        .routes(routes!(rss))
}

async fn document(
    state: &AppState,
    headers: &HeaderMap,
    slug: &str,
    doc: Doc,
) -> Result<Response, Refusal> {
    let r = readable(state, headers, slug, Want::Document, "").await?;
    let cors = matches!(doc, Doc::Json(_));
    serve(&r, doc, headers, Want::Document, cors)
}

/// Statuspage v2 `summary.json`: the page, its status, components, unresolved
/// incidents and upcoming or active maintenances.
#[utoipa::path(get, operation_id = "status_public_summary", path = "/status/{slug}/api/v2/summary.json", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/json", description = "The summary"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn summary(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(&state, &h, &p.slug, Doc::Json(JsonDoc::Summary)).await
}

/// Statuspage v2 `status.json`: the overall indicator and its description.
#[utoipa::path(get, operation_id = "status_public_status", path = "/status/{slug}/api/v2/status.json", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/json", description = "The status"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn status(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(&state, &h, &p.slug, Doc::Json(JsonDoc::Status)).await
}

/// Statuspage v2 `components.json`: every component and group with its status.
#[utoipa::path(get, operation_id = "status_public_components", path = "/status/{slug}/api/v2/components.json", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/json", description = "The components"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn components(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(&state, &h, &p.slug, Doc::Json(JsonDoc::Components)).await
}

/// Statuspage v2 `incidents.json`: the latest incidents with their updates.
#[utoipa::path(get, operation_id = "status_public_incidents", path = "/status/{slug}/api/v2/incidents.json", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/json", description = "The incidents"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn incidents(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(&state, &h, &p.slug, Doc::Json(JsonDoc::Incidents)).await
}

/// Statuspage v2 `incidents/unresolved.json`: incidents not yet resolved.
#[utoipa::path(get, operation_id = "status_public_unresolved", path = "/status/{slug}/api/v2/incidents/unresolved.json", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/json", description = "Unresolved incidents"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn unresolved(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(&state, &h, &p.slug, Doc::Json(JsonDoc::UnresolvedIncidents)).await
}

/// Statuspage v2 `scheduled-maintenances.json`: the latest maintenances.
#[utoipa::path(get, operation_id = "status_public_maintenances", path = "/status/{slug}/api/v2/scheduled-maintenances.json", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/json", description = "The maintenances"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn maintenances(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(
        &state,
        &h,
        &p.slug,
        Doc::Json(JsonDoc::ScheduledMaintenances),
    )
    .await
}

/// Statuspage v2 `scheduled-maintenances/upcoming.json`: announced, not started.
#[utoipa::path(get, operation_id = "status_public_upcoming", path = "/status/{slug}/api/v2/scheduled-maintenances/upcoming.json", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/json", description = "Upcoming maintenances"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn upcoming(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(
        &state,
        &h,
        &p.slug,
        Doc::Json(JsonDoc::UpcomingMaintenances),
    )
    .await
}

/// Statuspage v2 `scheduled-maintenances/active.json`: in progress or verifying.
#[utoipa::path(get, operation_id = "status_public_active", path = "/status/{slug}/api/v2/scheduled-maintenances/active.json", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/json", description = "Active maintenances"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn active(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(&state, &h, &p.slug, Doc::Json(JsonDoc::ActiveMaintenances)).await
}

/// The page's incidents and maintenances as an Atom feed.
#[utoipa::path(get, operation_id = "status_public_atom", path = "/status/{slug}/history.atom", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/atom+xml", body = String, description = "The feed"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn atom(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(&state, &h, &p.slug, Doc::Atom).await
}

/// The page's incidents and maintenances as an RSS 2.0 feed.
#[utoipa::path(get, operation_id = "status_public_rss", path = "/status/{slug}/history.rss", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "application/rss+xml", body = String, description = "The feed"),
        (status = 404, body = ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn rss(
    State(state): State<AppState>,
    Path(p): Path<SlugPath>,
    h: HeaderMap,
) -> Result<Response, Refusal> {
    document(&state, &h, &p.slug, Doc::Rss).await
}
