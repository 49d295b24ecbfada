//! Prometheus metrics: request counts and latency histograms by route, and
//! incident counts by status read from the store at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Request counters and latency histograms.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.into(), route.into(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry((method.into(), route.into())).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    /// Renders the request metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP tocsin_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE tocsin_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((m, route, s), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "tocsin_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
                    esc(route)
                );
            }
        }
        out.push_str("# HELP tocsin_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE tocsin_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for ((m, route), h) in l.iter() {
                let labels = format!("method=\"{m}\",route=\"{}\"", esc(route));
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "tocsin_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "tocsin_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "tocsin_http_request_duration_seconds_sum{{{labels}}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "tocsin_http_request_duration_seconds_count{{{labels}}} {}",
                    h.count
                );
            }
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Middleware: times each request and logs it.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    // The route template, not the raw path, so ids do not explode the label set.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    state.metrics.record(&method, &route, status, secs);
    tracing::info!(target: "tocsin::http", %method, %route, status, ms = secs * 1000.0, "request");
    resp
}
