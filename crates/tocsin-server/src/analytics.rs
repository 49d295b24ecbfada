//! The analytics the API and the web pages show: parameters parsed once,
//! numbers computed by the core from what the store extracts, and their CSV.
//!
//! Definitions live in `tocsin_core::analytics` (facts, metrics, noise,
//! oncall). Incident reports and trends are exact from facts when the window
//! holds at most [`EXACT_LIMIT`] incidents; above that (or with
//! `mode=rollups`) they merge daily rollups, where counts, alerts, means and
//! time between failures stay exact and percentiles are within 1/64.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;
use tocsin_core::analytics::noise::{noise, NoiseConfig, NoiseStats};
use tocsin_core::analytics::oncall::{on_call_load, page_heat_map};
use tocsin_core::analytics::stats::percentile;
use tocsin_core::analytics::{
    report, weekly_trend, GroupBy, GroupKey, IncidentFacts, Metric, Rollup, Summary, Window,
};
use tocsin_core::time::Timestamp;
use utoipa::ToSchema;

use crate::api::schedules::shifts_of;
use crate::error::ApiError;
use crate::state::AppState;

/// Windows with at most this many incidents are computed exactly.
pub const EXACT_LIMIT: i64 = 20_000;
/// The longest window accepted, in days.
const MAX_DAYS: i64 = 3700;
const DEFAULT_PERCENTILES: [u32; 3] = [50, 90, 95];

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Exact from facts, from rollups, or whichever the window's size calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exact up to [`EXACT_LIMIT`] incidents, rollups above.
    Auto,
    /// Always exact.
    Exact,
    /// Always from rollups.
    Rollups,
}

/// Raw query parameters shared by every analytics view (all optional).
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// Start of the window, RFC 3339 (default: 28 days before `to`).
    pub from: Option<String>,
    /// End of the window, exclusive, RFC 3339 (default: now).
    pub to: Option<String>,
    /// Incident reports: `all` (default), `service`, `team` or `severity`.
    pub group_by: Option<String>,
    /// Incident reports: comma-separated percentiles 1–99 (default `50,90,95`).
    pub percentiles: Option<String>,
    /// Trend: the IANA time zone weeks run Monday to Sunday in (default UTC).
    pub tz: Option<String>,
    /// Trend: `time_to_detect`, `time_to_declare`, `time_to_acknowledge`
    /// (default), `time_to_mitigate` or `time_to_resolve`.
    pub metric: Option<String>,
    /// `auto` (default), `exact` or `rollups`.
    pub mode: Option<String>,
    /// Noise: an auto-resolve within this many minutes is quick (default 5).
    pub quick_minutes: Option<String>,
    /// Noise: a reopen within this many minutes of a resolve is a flap (default 60).
    pub flap_minutes: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    pub format: Option<String>,
}

/// The parsed window.
pub fn window(q: &AnalyticsQuery, now: Timestamp) -> Result<Window, ApiError> {
    let to = crate::api::opt_time("to", q.to.as_deref())?.unwrap_or(now);
    let from = crate::api::opt_time("from", q.from.as_deref())?.unwrap_or(to - Duration::days(28));
    if from >= to {
        return Err(invalid("to", "must be after `from`"));
    }
    if to - from > Duration::days(MAX_DAYS) {
        return Err(invalid(
            "from",
            format!("the window is at most {MAX_DAYS} days"),
        ));
    }
    Ok(Window { from, to })
}

fn mode(q: &AnalyticsQuery) -> Result<Mode, ApiError> {
    match q.mode.as_deref().unwrap_or("auto") {
        "" | "auto" => Ok(Mode::Auto),
        "exact" => Ok(Mode::Exact),
        "rollups" => Ok(Mode::Rollups),
        other => Err(invalid(
            "mode",
            format!("`{other}` is not one of: auto, exact, rollups"),
        )),
    }
}

/// The parsed `group_by`.
pub fn group_by(q: &AnalyticsQuery) -> Result<GroupBy, ApiError> {
    match q.group_by.as_deref().unwrap_or("all") {
        "" | "all" => Ok(GroupBy::All),
        "service" => Ok(GroupBy::Service),
        "team" => Ok(GroupBy::Team),
        "severity" => Ok(GroupBy::Severity),
        other => Err(invalid(
            "group_by",
            format!("`{other}` is not one of: all, service, team, severity"),
        )),
    }
}

fn percentiles(q: &AnalyticsQuery) -> Result<Vec<u32>, ApiError> {
    let mut ps = crate::api::list_of("percentiles", q.percentiles.as_deref(), |s| {
        s.parse::<u32>()
            .ok()
            .filter(|p| (1..=99).contains(p))
            .ok_or("a whole number from 1 to 99")
    })?;
    if ps.is_empty() {
        ps = DEFAULT_PERCENTILES.to_vec();
    }
    if ps.len() > 10 {
        return Err(invalid("percentiles", "at most 10 percentiles"));
    }
    ps.sort_unstable();
    ps.dedup();
    Ok(ps)
}

/// The parsed trend time zone.
pub fn time_zone(q: &AnalyticsQuery) -> Result<Tz, ApiError> {
    let z = q.tz.as_deref().filter(|z| !z.is_empty()).unwrap_or("UTC");
    z.parse::<Tz>()
        .map_err(|_| invalid("tz", format!("`{z}` is not an IANA time zone")))
}

fn metric(q: &AnalyticsQuery) -> Result<Metric, ApiError> {
    let m = q
        .metric
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or("time_to_acknowledge");
    Metric::ALL
        .into_iter()
        .find(|x| metric_name(*x) == m)
        .ok_or_else(|| {
            invalid(
                "metric",
                format!(
                    "`{m}` is not one of: time_to_detect, time_to_declare, time_to_acknowledge, \
                 time_to_mitigate, time_to_resolve"
                ),
            )
        })
}

/// The metric's name in the API.
pub fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::TimeToDetect => "time_to_detect",
        Metric::TimeToDeclare => "time_to_declare",
        Metric::TimeToAcknowledge => "time_to_acknowledge",
        Metric::TimeToMitigate => "time_to_mitigate",
        Metric::TimeToResolve => "time_to_resolve",
    }
}

fn minutes(field: &str, s: Option<&str>, default: i64) -> Result<Duration, ApiError> {
    let m = crate::api::opt_i64(field, s)?.unwrap_or(default);
    if !(0..=10_080).contains(&m) {
        return Err(invalid(field, "must be from 0 to 10080 minutes"));
    }
    Ok(Duration::minutes(m))
}

/// Whether the caller asked for CSV.
pub fn wants_csv(q: &AnalyticsQuery, accept: Option<&str>) -> Result<bool, ApiError> {
    match q.format.as_deref() {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        None | Some("") => Ok(accept.is_some_and(|a| a.contains("text/csv"))),
        Some(other) => Err(invalid(
            "format",
            format!("`{other}` is not one of: json, csv"),
        )),
    }
}

/// One duration metric of a group.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MetricStats {
    /// Incidents that have it.
    pub count: u64,
    /// Mean in milliseconds (exact).
    pub mean_ms: f64,
    /// Smallest, milliseconds.
    pub min_ms: i64,
    /// Largest, milliseconds.
    pub max_ms: i64,
    /// Nearest-rank percentiles by name (`p50`), milliseconds.
    pub percentiles: BTreeMap<String, i64>,
}

/// One group's incident numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupRow {
    /// `all`, a service or team id, or a severity name.
    pub key: String,
    /// What people call it.
    pub name: String,
    /// Incidents declared in the window.
    pub incidents: u64,
    /// Alerts attached to them.
    pub alerts: u64,
    /// Mean time between failures in milliseconds; null with fewer than two.
    pub mtbf_ms: Option<f64>,
    /// Each metric (`time_to_acknowledge`, …) over the incidents that have it.
    pub metrics: BTreeMap<String, MetricStats>,
}

/// Incident metrics per group over a window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentReport {
    /// Window start.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// Window end (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// `all`, `service`, `team` or `severity`.
    pub group_by: String,
    /// `exact` or `rollups` (percentiles within 1/64).
    pub mode: String,
    /// The percentiles given.
    pub percentiles: Vec<u32>,
    /// One row per group, by key.
    pub groups: Vec<GroupRow>,
}

struct Names {
    services: HashMap<i64, String>,
    teams: HashMap<i64, String>,
}

async fn names(state: &AppState) -> Result<Names, ApiError> {
    Ok(Names {
        services: state
            .store
            .services()
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect(),
        teams: state
            .store
            .teams()
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect(),
    })
}

fn key_text(k: &GroupKey, names: &Names) -> (String, String) {
    match k {
        GroupKey::All => ("all".into(), "All incidents".into()),
        GroupKey::Service(id) => (
            id.to_string(),
            names
                .services
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("service {id}")),
        ),
        GroupKey::Team(id) => (
            id.to_string(),
            names
                .teams
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("team {id}")),
        ),
        GroupKey::Severity(s) => (s.clone(), s.clone()),
    }
}

fn group_by_name(by: GroupBy) -> &'static str {
    match by {
        GroupBy::All => "all",
        GroupBy::Service => "service",
        GroupBy::Team => "team",
        GroupBy::Severity => "severity",
    }
}

async fn use_rollups(state: &AppState, mode: Mode, w: Window) -> Result<bool, ApiError> {
    Ok(match mode {
        Mode::Exact => false,
        Mode::Rollups => true,
        Mode::Auto => {
            state
                .store
                .incidents_declared_up_to(w, EXACT_LIMIT + 1)
                .await?
                > EXACT_LIMIT
        }
    })
}

/// The incident report the query asks for.
pub async fn incident_report(
    state: &AppState,
    q: &AnalyticsQuery,
) -> Result<IncidentReport, ApiError> {
    let w = window(q, state.clock.now())?;
    let by = group_by(q)?;
    let ps = percentiles(q)?;
    let mode = mode(q)?;
    let names = names(state).await?;
    let rolled = use_rollups(state, mode, w).await?;
    let groups = if rolled {
        let mut buckets = state.store.rollups(by, &[w]).await?;
        let groups = buckets.pop().unwrap_or_default();
        groups
            .into_iter()
            .map(|(k, r)| rolled_row(&k, &r, &ps, &names))
            .collect()
    } else {
        let facts = state.store.incident_facts(w).await?;
        report(&facts, by, w)
            .into_iter()
            .map(|g| {
                let (key, name) = key_text(&g.key, &names);
                let members: Vec<&IncidentFacts> =
                    facts.iter().filter(|f| g.key.matches(f)).collect();
                let metrics = g
                    .durations
                    .iter()
                    .map(|(m, s)| {
                        let mut values: Vec<i64> =
                            members.iter().filter_map(|f| f.duration_ms(*m)).collect();
                        values.sort_unstable();
                        let pct = ps
                            .iter()
                            .filter_map(|&p| Some((format!("p{p}"), percentile(&values, p)?)))
                            .collect();
                        (metric_name(*m).to_string(), stats(s, pct))
                    })
                    .collect();
                GroupRow {
                    key,
                    name,
                    incidents: g.incidents,
                    alerts: g.alerts,
                    mtbf_ms: g.mtbf_ms,
                    metrics,
                }
            })
            .collect()
    };
    Ok(IncidentReport {
        from: w.from,
        to: w.to,
        group_by: group_by_name(by).into(),
        mode: if rolled { "rollups" } else { "exact" }.into(),
        percentiles: ps,
        groups,
    })
}

fn stats(s: &Summary, percentiles: BTreeMap<String, i64>) -> MetricStats {
    MetricStats {
        count: s.count,
        mean_ms: s.mean_ms,
        min_ms: s.min_ms,
        max_ms: s.max_ms,
        percentiles,
    }
}

fn rolled_row(k: &GroupKey, r: &Rollup, ps: &[u32], names: &Names) -> GroupRow {
    let (key, name) = key_text(k, names);
    let g = r.report(k.clone());
    let metrics = g
        .durations
        .iter()
        .map(|(m, s)| {
            let h = &r.durations[m];
            let pct = ps
                .iter()
                .filter_map(|&p| Some((format!("p{p}"), h.percentile(p)?)))
                .collect();
            (metric_name(*m).to_string(), stats(s, pct))
        })
        .collect();
    GroupRow {
        key,
        name,
        incidents: g.incidents,
        alerts: g.alerts,
        mtbf_ms: g.mtbf_ms,
        metrics,
    }
}

/// One week of a trend.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WeekRow {
    /// ISO week-numbering year.
    pub iso_year: i32,
    /// ISO week, 1–53.
    pub iso_week: u32,
    /// The Monday it starts on, in the trend's zone.
    #[schema(value_type = String, format = Date)]
    pub starts_on: NaiveDate,
    /// Incidents declared in it.
    pub incidents: u64,
    /// Incidents that have the metric.
    pub count: u64,
    /// The metric's mean, milliseconds.
    pub mean_ms: Option<f64>,
    /// Median, milliseconds.
    pub p50_ms: Option<i64>,
    /// 90th percentile, milliseconds.
    pub p90_ms: Option<i64>,
}

/// Incidents and one metric per week.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Trend {
    /// Window start.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// Window end (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Zone the weeks run in.
    pub time_zone: String,
    /// The metric.
    pub metric: String,
    /// `exact` or `rollups`.
    pub mode: String,
    /// Every week overlapping the window, empty ones included.
    pub weeks: Vec<WeekRow>,
}

fn local_midnight(tz: Tz, d: NaiveDate) -> Timestamp {
    let naive = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Midnight may not exist (a DST gap there): the first instant after it.
    (0..4)
        .find_map(|h| {
            tz.from_local_datetime(&(naive + Duration::hours(h)))
                .earliest()
        })
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| naive.and_utc())
}

/// The weekly trend the query asks for.
pub async fn trend(state: &AppState, q: &AnalyticsQuery) -> Result<Trend, ApiError> {
    let w = window(q, state.clock.now())?;
    let tz = time_zone(q)?;
    let m = metric(q)?;
    let rolled = use_rollups(state, mode(q)?, w).await?;
    let weeks = if rolled {
        let monday = |t: Timestamp| {
            let d = t.with_timezone(&tz).date_naive();
            d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
        };
        let first = monday(w.from);
        let last = monday(w.to - Duration::milliseconds(1));
        let n = (last - first).num_days() / 7 + 1;
        let mondays: Vec<NaiveDate> = (0..n).map(|i| first + Duration::days(7 * i)).collect();
        let buckets: Vec<Window> = mondays
            .iter()
            .map(|&d| Window {
                from: local_midnight(tz, d).max(w.from),
                to: local_midnight(tz, d + Duration::days(7)).min(w.to),
            })
            .collect();
        let rolled = state.store.rollups(GroupBy::All, &buckets).await?;
        mondays
            .iter()
            .zip(rolled)
            .map(|(&d, groups)| {
                let r = groups.get(&GroupKey::All).cloned().unwrap_or_default();
                let s = r.durations.get(&m).and_then(|h| h.summary());
                week_row(d, r.incidents, s.as_ref())
            })
            .collect()
    } else {
        let facts = state.store.incident_facts(w).await?;
        weekly_trend(&facts, m, tz, w)
            .into_iter()
            .map(|b| week_row(b.starts_on, b.incidents, b.summary.as_ref()))
            .collect()
    };
    Ok(Trend {
        from: w.from,
        to: w.to,
        time_zone: tz.name().into(),
        metric: metric_name(m).into(),
        mode: if rolled { "rollups" } else { "exact" }.into(),
        weeks,
    })
}

fn week_row(starts_on: NaiveDate, incidents: u64, s: Option<&Summary>) -> WeekRow {
    let iso = starts_on.iso_week();
    WeekRow {
        iso_year: iso.year(),
        iso_week: iso.week(),
        starts_on,
        incidents,
        count: s.map_or(0, |s| s.count),
        mean_ms: s.map(|s| s.mean_ms),
        p50_ms: s.map(|s| s.p50_ms),
        p90_ms: s.map(|s| s.p90_ms),
    }
}

/// One group's alert noise.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoiseRow {
    /// Service id, integration or rule.
    pub key: String,
    /// What people call it.
    pub name: String,
    /// Alerts opened.
    pub alerts: u64,
    /// Triggers received, repeats included.
    pub triggers: u64,
    /// Alerts their source resolved within the quick-resolve time.
    pub quick_auto_resolved: u64,
    /// Their share of alerts, 0–1.
    pub quick_auto_resolved_share: f64,
    /// Alerts reopening a key within the flap window.
    pub flaps: u64,
    /// Alerts nobody acted on.
    pub never_acted_on: u64,
    /// Their share of alerts, 0–1.
    pub never_acted_on_share: f64,
}

/// Alert noise over a window: the candidates for tuning.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoiseView {
    /// Window start.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// Window end (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Quick auto-resolve threshold, minutes.
    pub quick_minutes: i64,
    /// Flap window, minutes.
    pub flap_minutes: i64,
    /// Per service, noisiest first.
    pub by_service: Vec<NoiseRow>,
    /// Per integration, noisiest first.
    pub by_integration: Vec<NoiseRow>,
    /// Per alerting rule (the `alertname` label, else the event `class`); alerts without one are left out.
    pub by_rule: Vec<NoiseRow>,
}

fn noise_row(key: String, name: String, s: &NoiseStats) -> NoiseRow {
    NoiseRow {
        key,
        name,
        alerts: s.alerts,
        triggers: s.triggers,
        quick_auto_resolved: s.quick_auto_resolved,
        quick_auto_resolved_share: s.quick_auto_resolved_share(),
        flaps: s.flaps,
        never_acted_on: s.never_acted_on,
        never_acted_on_share: s.never_acted_on_share(),
    }
}

/// The noise report the query asks for.
pub async fn noise_view(state: &AppState, q: &AnalyticsQuery) -> Result<NoiseView, ApiError> {
    let w = window(q, state.clock.now())?;
    let cfg = NoiseConfig {
        quick_resolve: minutes("quick_minutes", q.quick_minutes.as_deref(), 5)?,
        flap_window: minutes("flap_minutes", q.flap_minutes.as_deref(), 60)?,
    };
    let names = names(state).await?;
    let r = noise(&state.store.alert_facts(w).await?, cfg);
    Ok(NoiseView {
        from: w.from,
        to: w.to,
        quick_minutes: cfg.quick_resolve.num_minutes(),
        flap_minutes: cfg.flap_window.num_minutes(),
        by_service: r
            .by_service
            .iter()
            .map(|(id, s)| {
                let (k, n) = key_text(&GroupKey::Service(*id), &names);
                noise_row(k, n, s)
            })
            .collect(),
        by_integration: r
            .by_integration
            .iter()
            .map(|(k, s)| noise_row(k.clone(), k.clone(), s))
            .collect(),
        by_rule: r
            .by_rule
            .iter()
            .map(|(k, s)| noise_row(k.clone(), k.clone(), s))
            .collect(),
    })
}

/// One person's on-call load.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoadRow {
    /// User id.
    pub user_id: i64,
    /// Their name.
    pub name: String,
    /// Their time zone, where nights and working hours are counted.
    pub time_zone: String,
    /// Pages received (one per escalation step).
    pub pages: u64,
    /// Pages outside their working hours.
    pub outside_working_hours: u64,
    /// Pages at night (22:00–07:00 local).
    pub at_night: u64,
    /// Nights with at least one page.
    pub disturbed_nights: u64,
    /// Most consecutive disturbed nights.
    pub longest_disturbed_streak: u64,
    /// Hours on call (union of their shifts in the window).
    pub on_call_hours: f64,
}

/// On-call load per person over a window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnCallView {
    /// Window start.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// Window end (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Everyone paged or on call in the window.
    pub people: Vec<LoadRow>,
    /// Pages by local weekday (Monday first) and local hour, each in its
    /// recipient's zone.
    pub heat_map: Vec<Vec<u64>>,
}

/// The on-call load the query asks for.
pub async fn oncall_view(state: &AppState, q: &AnalyticsQuery) -> Result<OnCallView, ApiError> {
    let w = window(q, state.clock.now())?;
    let people = state.store.responders().await?;
    let responders: Vec<_> = people.iter().map(|(r, _)| r.clone()).collect();
    let pages = state.store.page_facts(w).await?;
    let mut shifts = Vec::new();
    for s in state.store.schedules().await? {
        shifts.extend(shifts_of(state, &s, w.from, w.to).await?.0);
    }
    let loads = on_call_load(&pages, &shifts, &responders, w);
    let grid = page_heat_map(&pages, &responders, w);
    Ok(OnCallView {
        from: w.from,
        to: w.to,
        people: loads
            .into_iter()
            .map(|l| {
                let who = people.iter().find(|(r, _)| r.user_id == l.user_id);
                LoadRow {
                    user_id: l.user_id,
                    name: who.map(|p| p.1.clone()).unwrap_or_default(),
                    time_zone: who.map_or("UTC", |p| p.0.time_zone.name()).into(),
                    pages: l.pages,
                    outside_working_hours: l.outside_working_hours,
                    at_night: l.at_night,
                    disturbed_nights: l.disturbed_nights,
                    longest_disturbed_streak: l.longest_disturbed_streak,
                    on_call_hours: l.on_call_hours(),
                }
            })
            .collect(),
        heat_map: grid.iter().map(|r| r.to_vec()).collect(),
    })
}

/// A CSV field: quoted when it holds a comma, quote, line break or edge space.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let line = |r: &[String]| r.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    let mut out = line(header);
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&line(r));
        out.push_str("\r\n");
    }
    out
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The incident report as CSV: one row per group, columns per metric.
pub fn incident_csv(r: &IncidentReport) -> String {
    let mut header: Vec<String> = ["group_by", "key", "name", "incidents", "alerts", "mtbf_ms"]
        .map(String::from)
        .to_vec();
    for m in Metric::ALL {
        let n = metric_name(m);
        header.extend(["count", "mean_ms", "min_ms", "max_ms"].map(|c| format!("{n}_{c}")));
        header.extend(r.percentiles.iter().map(|p| format!("{n}_p{p}_ms")));
    }
    let rows: Vec<Vec<String>> = r
        .groups
        .iter()
        .map(|g| {
            let mut row = vec![
                r.group_by.clone(),
                g.key.clone(),
                g.name.clone(),
                g.incidents.to_string(),
                g.alerts.to_string(),
                opt(g.mtbf_ms),
            ];
            for m in Metric::ALL {
                let s = g.metrics.get(metric_name(m));
                row.push(opt(s.map(|s| s.count)));
                row.push(opt(s.map(|s| s.mean_ms)));
                row.push(opt(s.map(|s| s.min_ms)));
                row.push(opt(s.map(|s| s.max_ms)));
                for p in &r.percentiles {
                    row.push(opt(s.and_then(|s| s.percentiles.get(&format!("p{p}")))));
                }
            }
            row
        })
        .collect();
    csv(&header, &rows)
}

/// The trend as CSV: one row per week.
pub fn trend_csv(t: &Trend) -> String {
    let header = [
        "iso_year",
        "iso_week",
        "starts_on",
        "incidents",
        "metric",
        "count",
        "mean_ms",
        "p50_ms",
        "p90_ms",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = t
        .weeks
        .iter()
        .map(|w| {
            vec![
                w.iso_year.to_string(),
                w.iso_week.to_string(),
                w.starts_on.to_string(),
                w.incidents.to_string(),
                t.metric.clone(),
                w.count.to_string(),
                opt(w.mean_ms),
                opt(w.p50_ms),
                opt(w.p90_ms),
            ]
        })
        .collect();
    csv(&header, &rows)
}

/// The noise report as CSV: one row per group, `by` naming the grouping.
pub fn noise_csv(n: &NoiseView) -> String {
    let header = [
        "by",
        "key",
        "name",
        "alerts",
        "triggers",
        "quick_auto_resolved",
        "quick_auto_resolved_share",
        "flaps",
        "never_acted_on",
        "never_acted_on_share",
    ]
    .map(String::from);
    let mut rows = Vec::new();
    for (by, list) in [
        ("service", &n.by_service),
        ("integration", &n.by_integration),
        ("rule", &n.by_rule),
    ] {
        for r in list {
            rows.push(vec![
                by.to_string(),
                r.key.clone(),
                r.name.clone(),
                r.alerts.to_string(),
                r.triggers.to_string(),
                r.quick_auto_resolved.to_string(),
                r.quick_auto_resolved_share.to_string(),
                r.flaps.to_string(),
                r.never_acted_on.to_string(),
                r.never_acted_on_share.to_string(),
            ]);
        }
    }
    csv(&header, &rows)
}

/// The on-call load as CSV: one row per person.
pub fn oncall_csv(o: &OnCallView) -> String {
    let header = [
        "user_id",
        "name",
        "time_zone",
        "pages",
        "outside_working_hours",
        "at_night",
        "disturbed_nights",
        "longest_disturbed_streak",
        "on_call_hours",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = o
        .people
        .iter()
        .map(|p| {
            vec![
                p.user_id.to_string(),
                p.name.clone(),
                p.time_zone.clone(),
                p.pages.to_string(),
                p.outside_working_hours.to_string(),
                p.at_night.to_string(),
                p.disturbed_nights.to_string(),
                p.longest_disturbed_streak.to_string(),
                p.on_call_hours.to_string(),
            ]
        })
        .collect();
    csv(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("api"), "api");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(" pad"), "\" pad\"");
    }
}
