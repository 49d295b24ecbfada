//! The REST API under /api/v1, its OpenAPI document built from the same routes.

mod access;
mod alert_rules;
mod alerts;
mod analytics;
mod calendar;
mod contact_methods;
pub(crate) mod directory;
pub(crate) mod escalation_policies;
mod handoffs;
mod heartbeats;
pub(crate) mod incidents;
mod integrations;
mod paging;
pub(crate) mod postmortems;
pub(crate) mod records;
pub(crate) mod runbooks;
pub(crate) mod schedules;
pub(crate) mod secrets;
pub(crate) mod similar;
pub(crate) mod snippets;
pub(crate) mod status_components;
pub(crate) mod status_pages;
pub(crate) mod status_posts;
pub(crate) mod status_subscribers;
pub(crate) mod status_templates;
pub(crate) mod status_updates;
pub(crate) mod suppression;
mod swaps;
pub(crate) mod workflow_runs;
pub(crate) mod workflows;

pub(crate) use calendar::feed_routes;

use tocsin_core::time::Timestamp;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Every failure's body: `{"error": {"code", "message", "field"}}`.
pub type ErrorResponse = ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(title = "Tocsin API", description = "Incident management: incidents, services, users, teams and tokens. \
        Authenticate with `Authorization: Bearer <token>`; each operation's security names the least role it needs \
        (viewer < responder < admin)."),
    modifiers(&BearerAuth),
    tags(
        (name = "incidents", description = "Declare and run incidents"),
        (name = "notes", description = "Notes, decisions and approvals"),
        (name = "attachments", description = "Files on incidents"),
        (name = "services", description = "Services and their integration keys"),
        (name = "users", description = "Users"),
        (name = "teams", description = "Teams"),
        (name = "tokens", description = "API tokens"),
        (name = "settings", description = "Instance settings and audit log"),
        (name = "alerts", description = "Alerts received from monitoring"),
        (name = "suppression", description = "Silences, maintenance windows and flapping rules: what holds new alerts back from opening incidents"),
        (name = "heartbeats", description = "Heartbeat monitors (dead man's switch) and their pings"),
        (name = "schedules", description = "On-call schedules: layers of rotations, overrides, shift swaps, and who is on call when"),
        (name = "calendar", description = "iCalendar feeds of on-call shifts at secret-token URLs"),
        (name = "escalation", description = "Escalation policies: who is paged, in what order, and who would be paged now"),
        (name = "status pages", description = "Status pages: their settings, components and status history, published incidents and maintenances, templates and subscribers"),
        (name = "workflows", description = "Workflows: YAML definitions and their versions, dry-runs, runs with every step, approvals, and the secrets steps read by name"),
        (name = "similar", description = "Similar incidents: past incidents most like an incident or a text, with how they were resolved"),
        (name = "runbooks", description = "Runbooks: markdown checklists with runnable steps, their versions and attach rules, and their progress on incidents"),
        (name = "postmortems", description = "Postmortems generated from the incident's record: revisions with conflict detection, review, export, action items and the template"),
        (name = "analytics", description = "Metrics and reports: incident durations per group, weekly trends, alert noise and on-call load, as JSON or CSV"),
        (name = "ingest", description = "Inbound alert sources, authenticated by integration key"),
        (name = "operations", description = "Health, readiness, metrics")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(
                "An API token (`tcs_…`). The scopes listed on an operation are the roles allowed to call it; \
                 a higher role includes the lower ones.",
            )).build()),
        );
    }
}

/// All API routes with their documentation.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(incidents::routes())
        .merge(paging::routes())
        .merge(records::routes())
        .merge(directory::routes())
        .merge(access::routes())
        .merge(alerts::routes())
        .merge(alert_rules::routes())
        .merge(suppression::routes())
        .merge(integrations::routes())
        .merge(heartbeats::routes())
        .merge(schedules::routes())
        .merge(swaps::routes())
        .merge(calendar::routes())
        .merge(escalation_policies::routes())
        .merge(contact_methods::routes())
        .merge(handoffs::routes())
        .merge(status_pages::routes())
        .merge(status_components::routes())
        .merge(status_posts::routes())
        .merge(status_updates::routes())
        .merge(status_templates::routes())
        .merge(status_subscribers::routes())
        .merge(workflows::routes())
        .merge(workflow_runs::routes())
        .merge(secrets::routes())
        .merge(runbooks::routes())
        .merge(postmortems::routes())
        .merge(similar::routes())
        .merge(analytics::routes())
}

/// Parses a numeric id from a path segment.
pub(crate) fn path_id(field: &str, s: &str) -> Result<i64, ApiError> {
    match s.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ApiError::Invalid {
            field: field.into(),
            message: format!("`{s}` is not an id"),
        }),
    }
}

/// Parses an optional integer query parameter.
pub(crate) fn opt_i64(field: &str, s: Option<&str>) -> Result<Option<i64>, ApiError> {
    s.filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>().map_err(|_| ApiError::Invalid {
                field: field.into(),
                message: format!("`{s}` is not an integer"),
            })
        })
        .transpose()
}

/// Parses an optional RFC 3339 time query parameter.
pub(crate) fn opt_time(field: &str, s: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    s.filter(|s| !s.is_empty())
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| ApiError::Invalid {
                    field: field.into(),
                    message: format!("`{s}` is not an RFC 3339 time"),
                })
        })
        .transpose()
}

/// Parses a comma-separated list, each item by `parse`.
pub(crate) fn list_of<T>(
    field: &str,
    s: Option<&str>,
    parse: impl Fn(&str) -> Result<T, &'static str>,
) -> Result<Vec<T>, ApiError> {
    s.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            parse(v).map_err(|what| ApiError::Invalid {
                field: field.into(),
                message: format!("`{v}` is not {what}"),
            })
        })
        .collect()
}
