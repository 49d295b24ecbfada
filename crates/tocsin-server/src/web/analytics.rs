//! /analytics: incident metrics per group, the weekly trend, the duration
//! histogram, alert noise and on-call load with the pages heat map, for a
//! window, a grouping and a time zone picked in a plain GET form (no script).
//! Charts are SVG rendered here by `tocsin_core::analytics::svg`; each table
//! has a CSV link (`/analytics/{incidents,trend,noise,oncall}.csv`) with the
//! same query, the same CSV as the API's `?format=csv`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Duration;
use serde::Deserialize;
use tocsin_core::analytics::facts::format_duration_ms;
use tocsin_core::analytics::svg::{
    duration_bins, histogram, line_chart, pages_heat_map, Series, ValueFormat,
};
use tocsin_core::analytics::{GroupBy, GroupKey, Metric};

use super::common::{page, Chrome, WebError, WebResult};
use super::session::AsViewer;
use crate::analytics::{
    incident_csv, incident_report, metric_name, noise_csv, noise_view, oncall_csv, oncall_view,
    trend, trend_csv, AnalyticsQuery, EXACT_LIMIT,
};
use crate::state::AppState;
use crate::ApiError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/analytics", get(show))
        .route("/analytics/{file}", get(csv_file))
}

/// The form's fields, all optional.
#[derive(Debug, Default, Deserialize)]
struct Filters {
    days: Option<String>,
    group_by: Option<String>,
    tz: Option<String>,
    metric: Option<String>,
}

const WINDOWS: [(&str, &str); 4] = [
    ("7", "7 days"),
    ("28", "28 days"),
    ("91", "13 weeks"),
    ("364", "52 weeks"),
];
const GROUPS: [&str; 4] = ["all", "service", "team", "severity"];

impl Filters {
    fn days(&self) -> &str {
        self.days
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or("91")
    }

    /// The API query these filters mean, the window ending now.
    fn query(&self, state: &AppState, tz: &str) -> Result<AnalyticsQuery, ApiError> {
        let days: i64 = self
            .days()
            .parse()
            .ok()
            .filter(|d| (1..=3660).contains(d))
            .ok_or_else(|| ApiError::Invalid {
                field: "days".into(),
                message: "a whole number of days from 1 to 3660".into(),
            })?;
        let now = state.clock.now();
        let fmt = |t: tocsin_core::time::Timestamp| t.to_rfc3339();
        Ok(AnalyticsQuery {
            from: Some(fmt(now - Duration::days(days))),
            to: Some(fmt(now)),
            group_by: self.group_by.clone(),
            tz: Some(tz.to_string()),
            metric: self.metric.clone(),
            ..AnalyticsQuery::default()
        })
    }

    /// The same filters as a query string, for CSV links.
    fn query_string(&self, tz: &str) -> String {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "days={}&group_by={}&tz={}&metric={}",
            enc(self.days()),
            enc(self.group_by.as_deref().unwrap_or("all")),
            enc(tz),
            enc(self.metric.as_deref().unwrap_or("time_to_acknowledge"))
        )
    }
}

/// A group's row in the incidents table.
struct GroupLine {
    name: String,
    incidents: u64,
    alerts: u64,
    mtbf: String,
    tta_mean: String,
    tta_p50: String,
    tta_p90: String,
    ttr_mean: String,
    ttr_p50: String,
    ttr_p90: String,
}

struct NoiseLine {
    name: String,
    alerts: u64,
    quick: String,
    flaps: u64,
    never: String,
}

struct LoadLine {
    name: String,
    time_zone: String,
    pages: u64,
    outside: u64,
    night: u64,
    nights: u64,
    streak: u64,
    hours: String,
}

#[derive(Template)]
#[template(path = "analytics.html")]
struct AnalyticsPage {
    chrome: Chrome,
    days: String,
    group_by: String,
    tz: String,
    metric: String,
    windows: Vec<(String, String)>,
    groups: Vec<String>,
    metrics: Vec<(String, String)>,
    mode: String,
    query: String,
    rows: Vec<GroupLine>,
    trend_counts_svg: String,
    trend_metric_svg: String,
    histogram_svg: String,
    heat_svg: String,
    noise: Vec<NoiseLine>,
    noise_rules: Vec<NoiseLine>,
    load: Vec<LoadLine>,
}

fn dur(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |ms| format_duration_ms(ms.round() as i64))
}

fn noise_line(r: &crate::analytics::NoiseRow) -> NoiseLine {
    NoiseLine {
        name: r.name.clone(),
        alerts: r.alerts,
        quick: pct(r.quick_auto_resolved_share),
        flaps: r.flaps,
        never: pct(r.never_acted_on_share),
    }
}

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Query(f): Query<Filters>,
) -> WebResult<Response> {
    let chrome = Chrome::new(&who.0, "analytics", "Analytics");
    let tz =
        f.tz.clone()
            .filter(|z| !z.is_empty())
            .unwrap_or_else(|| chrome.tz.name().to_string());
    let q = f.query(&state, &tz)?;
    let report = incident_report(&state, &q).await?;
    let t = trend(&state, &q).await?;
    let n = noise_view(&state, &q).await?;
    let o = oncall_view(&state, &q).await?;
    let metric = t.metric.clone();
    let rows = report
        .groups
        .iter()
        .map(|g| {
            let m = |name: &str| g.metrics.get(name);
            let p = |name: &str, p: &str| {
                dur(m(name)
                    .and_then(|s| s.percentiles.get(p))
                    .map(|v| *v as f64))
            };
            GroupLine {
                name: g.name.clone(),
                incidents: g.incidents,
                alerts: g.alerts,
                mtbf: dur(g.mtbf_ms),
                tta_mean: dur(m("time_to_acknowledge").map(|s| s.mean_ms)),
                tta_p50: p("time_to_acknowledge", "p50"),
                tta_p90: p("time_to_acknowledge", "p90"),
                ttr_mean: dur(m("time_to_resolve").map(|s| s.mean_ms)),
                ttr_p50: p("time_to_resolve", "p50"),
                ttr_p90: p("time_to_resolve", "p90"),
            }
        })
        .collect();
    let labels: Vec<String> = t
        .weeks
        .iter()
        .map(|w| format!("W{:02} {}", w.iso_week, w.starts_on.format("%b %d")))
        .collect();
    let trend_counts_svg = line_chart(
        "Incidents per week",
        &labels,
        &[Series {
            name: "incidents".into(),
            values: t.weeks.iter().map(|w| Some(w.incidents as f64)).collect(),
        }],
        ValueFormat::Count,
    );
    let trend_metric_svg = line_chart(
        &format!("{} per week", metric.replace('_', " ")),
        &labels,
        &[
            Series {
                name: "mean".into(),
                values: t.weeks.iter().map(|w| w.mean_ms).collect(),
            },
            Series {
                name: "p50".into(),
                values: t.weeks.iter().map(|w| w.p50_ms.map(|v| v as f64)).collect(),
            },
            Series {
                name: "p90".into(),
                values: t.weeks.iter().map(|w| w.p90_ms.map(|v| v as f64)).collect(),
            },
        ],
        ValueFormat::DurationMs,
    );
    let chosen = Metric::ALL
        .into_iter()
        .find(|m| metric_name(*m) == metric)
        .unwrap_or(Metric::TimeToAcknowledge);
    let bins = metric_bins(&state, &q, chosen).await?;
    let histogram_svg = histogram(
        &format!("{} of incidents in the window", metric.replace('_', " ")),
        &bins,
        "incidents",
    );
    let mut grid = [[0u64; 24]; 7];
    for (d, row) in o.heat_map.iter().enumerate().take(7) {
        for (h, v) in row.iter().enumerate().take(24) {
            grid[d][h] = *v;
        }
    }
    let heat_svg = pages_heat_map("Pages by weekday and hour, in each person's zone", &grid);
    let page_data = AnalyticsPage {
        days: f.days().to_string(),
        group_by: report.group_by.clone(),
        tz: tz.clone(),
        metric: metric.clone(),
        windows: WINDOWS
            .iter()
            .map(|(v, l)| (v.to_string(), l.to_string()))
            .collect(),
        groups: GROUPS.iter().map(|g| g.to_string()).collect(),
        metrics: Metric::ALL
            .iter()
            .map(|m| (metric_name(*m).to_string(), m.label().to_string()))
            .collect(),
        mode: report.mode.clone(),
        query: f.query_string(&tz),
        rows,
        trend_counts_svg,
        trend_metric_svg,
        histogram_svg,
        heat_svg,
        noise: n.by_service.iter().map(noise_line).collect(),
        noise_rules: n.by_rule.iter().map(noise_line).collect(),
        load: o
            .people
            .iter()
            .map(|p| LoadLine {
                name: p.name.clone(),
                time_zone: p.time_zone.clone(),
                pages: p.pages,
                outside: p.outside_working_hours,
                night: p.at_night,
                nights: p.disturbed_nights,
                streak: p.longest_disturbed_streak,
                hours: format!("{:.1}", p.on_call_hours),
            })
            .collect(),
        chrome,
    };
    Ok(page(&page_data))
}

/// The chosen metric's durations in bins: exact from facts for small
/// windows, from the rolled-up histogram's buckets (by their lower bound) above.
async fn metric_bins(
    state: &AppState,
    q: &AnalyticsQuery,
    m: Metric,
) -> Result<Vec<(String, u64)>, ApiError> {
    const EDGES: [i64; 7] = [
        60_000, 300_000, 900_000, 1_800_000, 3_600_000, 14_400_000, 86_400_000,
    ];
    let w = crate::analytics::window(q, state.clock.now())?;
    if state
        .store
        .incidents_declared_up_to(w, EXACT_LIMIT + 1)
        .await?
        <= EXACT_LIMIT
    {
        let values: Vec<i64> = state
            .store
            .incident_facts(w)
            .await?
            .iter()
            .filter_map(|f| f.duration_ms(m))
            .collect();
        return Ok(duration_bins(&values, &EDGES));
    }
    let mut rolled = state.store.rollups(GroupBy::All, &[w]).await?;
    let all = rolled
        .pop()
        .and_then(|mut g| g.remove(&GroupKey::All))
        .unwrap_or_default();
    let mut bins = duration_bins(&[], &EDGES);
    if let Some(h) = all.durations.get(&m) {
        for (lo, _, n) in h.buckets() {
            let i = EDGES.partition_point(|&e| e <= lo as i64);
            bins[i].1 += n;
        }
    }
    Ok(bins)
}

async fn csv_file(
    State(state): State<AppState>,
    who: AsViewer,
    Path(file): Path<String>,
    Query(f): Query<Filters>,
) -> WebResult<Response> {
    let tz =
        f.tz.clone()
            .filter(|z| !z.is_empty())
            .unwrap_or_else(|| Chrome::new(&who.0, "analytics", "").tz.name().to_string());
    let q = f.query(&state, &tz)?;
    let (name, body) = match file.as_str() {
        "incidents.csv" => (
            "incidents",
            incident_csv(&incident_report(&state, &q).await?),
        ),
        "trend.csv" => ("trend", trend_csv(&trend(&state, &q).await?)),
        "noise.csv" => ("noise", noise_csv(&noise_view(&state, &q).await?)),
        "oncall.csv" => ("oncall", oncall_csv(&oncall_view(&state, &q).await?)),
        _ => {
            return Err(WebError::Api(ApiError::NotFound(format!(
                "/analytics/{file}"
            ))))
        }
    };
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"tocsin-{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}
