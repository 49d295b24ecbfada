//! Health, readiness, metrics and the OpenAPI document: public, unauthenticated.

use std::fmt::Write;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

/// Liveness and readiness answers.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`, or what is wrong.
    status: String,
}

/// Liveness: the process answers HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "database unreachable".into(),
                }),
            )
        }
    }
}

/// Prometheus metrics in text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    state.metrics.render(&mut out);
    alert_writer_metrics(state.alerts.stats(), &mut out);
    out.push_str("# HELP tocsin_incidents Incidents by status.\n# TYPE tocsin_incidents gauge\n");
    match state.store.incident_counts().await {
        Ok(counts) => {
            for (status, n) in counts {
                let _ = writeln!(out, "tocsin_incidents{{status=\"{status}\"}} {n}");
            }
            out.push_str("# HELP tocsin_up Whether the database answered this scrape.\n# TYPE tocsin_up gauge\ntocsin_up 1\n");
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot count incidents");
            out.push_str("# HELP tocsin_up Whether the database answered this scrape.\n# TYPE tocsin_up gauge\ntocsin_up 0\n");
        }
    }
    match state.store.job_stats(state.now()).await {
        Ok(stats) => job_metrics(&stats, &mut out),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the job table"),
    }
    match state.store.status_delivery_stats().await {
        Ok(stats) => status_metrics(&stats, &state.status.stats(), &mut out),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the status-page outbox"),
    }
    match state.store.workflow_stats().await {
        Ok((queued, runs)) => {
            let _ = writeln!(
                out,
                "# HELP tocsin_workflow_triggers_queued Events queued for the workflow trigger dispatcher: a growing number means it is behind.\n\
                 # TYPE tocsin_workflow_triggers_queued gauge\ntocsin_workflow_triggers_queued {queued}"
            );
            out.push_str("# HELP tocsin_workflow_runs Workflow runs by status.\n# TYPE tocsin_workflow_runs gauge\n");
            for (status, n) in runs {
                let _ = writeln!(out, "tocsin_workflow_runs{{status=\"{status}\"}} {n}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read workflow runs"),
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
}

// The job table and the outbox: overdue or failing work means pages are late.
fn job_metrics(s: &tocsin_store::JobStats, out: &mut String) {
    let family =
        |out: &mut String, name: &str, help: &str, pick: fn(&(String, i64, i64, i64)) -> i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for k in &s.kinds {
                let _ = writeln!(out, "{name}{{kind=\"{}\"}} {}", k.0, pick(k));
            }
        };
    family(
        out,
        "tocsin_jobs",
        "Durable jobs (escalations, handoff notices) by kind.",
        |k| k.1,
    );
    family(
        out,
        "tocsin_jobs_overdue",
        "Jobs due more than a minute ago: the job runners are behind or stuck.",
        |k| k.2,
    );
    family(
        out,
        "tocsin_jobs_failing",
        "Jobs whose last run failed (retried with backoff; see jobs.last_error).",
        |k| k.3,
    );
    let _ = writeln!(
        out,
        "# HELP tocsin_notifications_scheduled Notification requests waiting for their time.\n\
         # TYPE tocsin_notifications_scheduled gauge\ntocsin_notifications_scheduled {}",
        s.notifications_scheduled
    );
    let _ = writeln!(
        out,
        "# HELP tocsin_notifications_overdue Scheduled notification requests due more than a minute ago.\n\
         # TYPE tocsin_notifications_overdue gauge\ntocsin_notifications_overdue {}",
        s.notifications_overdue
    );
    let _ = writeln!(
        out,
        "# HELP tocsin_notifications_delivery Handed notification requests by delivery state \
         (sending, pending retry, sent, failed, cancelled).\n# TYPE tocsin_notifications_delivery gauge"
    );
    for state in ["cancelled", "failed", "pending", "sending", "sent"] {
        let n = s
            .deliveries
            .iter()
            .find(|(d, _)| d == state)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(
            out,
            "tocsin_notifications_delivery{{state=\"{state}\"}} {n}"
        );
    }
}

// Status pages: subscriber messages by state (a growing `pending` means mail is
// behind or the relay is down), and what the page cache did (renders and reads that
// failed — pages then keep being served as last rendered).
fn status_metrics(
    d: &tocsin_store::status::StatusDeliveryStats,
    c: &crate::status::CacheStats,
    out: &mut String,
) {
    let _ = writeln!(
        out,
        "# HELP tocsin_status_subscriber_messages Status-page subscriber messages by state.
         # TYPE tocsin_status_subscriber_messages gauge"
    );
    for (state, n) in [
        ("pending", d.pending),
        ("sending", d.sending),
        ("sent", d.sent),
        ("failed", d.failed),
        ("cancelled", d.cancelled),
    ] {
        let _ = writeln!(
            out,
            "tocsin_status_subscriber_messages{{state=\"{state}\"}} {n}"
        );
    }
    for (name, help, n) in [
        (
            "tocsin_status_page_renders_total",
            "Status pages rendered into this node's cache.",
            c.renders,
        ),
        (
            "tocsin_status_page_index_loads_total",
            "Reads of every status page's version by this node's cache.",
            c.index_loads,
        ),
        (
            "tocsin_status_page_read_failures_total",
            "Failed reads by the page cache (the last rendering was served).",
            c.failures,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}"
        );
    }
}

// What the group-commit alert writer has done: what operators watch in a storm.
fn alert_writer_metrics(s: &tocsin_store::WriterStats, out: &mut String) {
    use std::sync::atomic::Ordering::Relaxed;
    out.push_str(
        "# HELP tocsin_alert_events_total Inbound alert events committed, by what they did.\n",
    );
    out.push_str("# TYPE tocsin_alert_events_total counter\n");
    for (outcome, c) in [
        ("opened", &s.opened),
        ("repeated", &s.repeated),
        ("updated", &s.updated),
        ("dropped", &s.dropped),
        ("suppressed", &s.suppressed),
        ("unsuppressed", &s.unsuppressed),
    ] {
        let _ = writeln!(
            out,
            "tocsin_alert_events_total{{outcome=\"{outcome}\"}} {}",
            c.load(Relaxed)
        );
    }
    for (name, help, kind, v) in [
        (
            "tocsin_alert_notifications_refused_total",
            "Inbound notifications the store refused.",
            "counter",
            &s.refused,
        ),
        (
            "tocsin_alert_batches_total",
            "Group-commit batches committed.",
            "counter",
            &s.batches,
        ),
        (
            "tocsin_alert_batches_failed_total",
            "Batches not committed (their senders were told to retry).",
            "counter",
            &s.failed_batches,
        ),
        (
            "tocsin_alert_batch_retries_total",
            "Batches retried after a deadlock with another node.",
            "counter",
            &s.retries,
        ),
        (
            "tocsin_alert_queue",
            "Inbound notifications waiting for the writer.",
            "gauge",
            &s.queued,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
            v.load(Relaxed)
        );
    }
}

/// This document: the OpenAPI 3.1 description of every route.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| crate::openapi().to_json().unwrap_or_default());
    ([(CONTENT_TYPE, "application/json")], doc.clone())
}
