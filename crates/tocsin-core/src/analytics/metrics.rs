//! Incident metrics per group and time window: counts, mean and percentile
//! durations, time between failures and weekly trends, computed exactly from
//! facts, or approximately from mergeable rollups for large ranges.
//!
//! An incident belongs to a window when it was declared in it (`[from, to)`).
//! An incident affecting two services counts once for each service (and once for
//! each owning team), and once in the `All` group.
//!
//! Time between failures in a group is the mean gap between consecutive
//! incidents' starts ([`IncidentFacts::started_at`]), i.e. (last − first)/(n − 1);
//! it needs two incidents.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::facts::{IncidentFacts, Metric};
use super::histogram::DurationHistogram;
use super::stats::Summary;
use crate::time::Timestamp;

/// A half-open span of time, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
}

impl Window {
    /// Whether `t` lies in the window.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }
}

/// What incidents are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One group of every incident.
    All,
    /// One group per affected service.
    Service,
    /// One group per team owning an affected service.
    Team,
    /// One group per severity.
    Severity,
}

/// One group's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "id")]
pub enum GroupKey {
    /// Every incident.
    All,
    /// Incidents affecting this service.
    Service(i64),
    /// Incidents affecting a service this team owns.
    Team(i64),
    /// Incidents of this severity.
    Severity(String),
}

impl GroupKey {
    /// The groups an incident falls in under `by`.
    pub fn of(f: &IncidentFacts, by: GroupBy) -> Vec<GroupKey> {
        match by {
            GroupBy::All => vec![GroupKey::All],
            GroupBy::Service => f
                .service_ids
                .iter()
                .map(|&s| GroupKey::Service(s))
                .collect(),
            GroupBy::Team => f.team_ids.iter().map(|&t| GroupKey::Team(t)).collect(),
            GroupBy::Severity => vec![GroupKey::Severity(f.severity.clone())],
        }
    }

    /// Whether an incident falls in this group.
    pub fn matches(&self, f: &IncidentFacts) -> bool {
        match self {
            GroupKey::All => true,
            GroupKey::Service(s) => f.service_ids.contains(s),
            GroupKey::Team(t) => f.team_ids.contains(t),
            GroupKey::Severity(s) => f.severity == *s,
        }
    }
}

/// One group's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// Which group.
    pub key: GroupKey,
    /// Incidents declared in the window.
    pub incidents: u64,
    /// Alerts attached to them.
    pub alerts: u64,
    /// Each metric's summary, over the incidents that have it.
    pub durations: BTreeMap<Metric, Summary>,
    /// Mean time between failures; `None` with fewer than two incidents.
    pub mtbf_ms: Option<f64>,
}

/// Exact numbers per group for the incidents declared in `window`, by key.
pub fn report(facts: &[IncidentFacts], by: GroupBy, window: Window) -> Vec<GroupReport> {
    let mut groups: BTreeMap<GroupKey, Vec<&IncidentFacts>> = BTreeMap::new();
    for f in facts.iter().filter(|f| window.contains(f.declared_at)) {
        for key in GroupKey::of(f, by) {
            groups.entry(key).or_default().push(f);
        }
    }
    groups
        .into_iter()
        .map(|(key, members)| {
            let durations = Metric::ALL
                .into_iter()
                .filter_map(|m| {
                    let values = members.iter().filter_map(|f| f.duration_ms(m)).collect();
                    Some((m, Summary::of(values)?))
                })
                .collect();
            let starts = members.iter().map(|f| f.started_at());
            GroupReport {
                key,
                incidents: members.len() as u64,
                alerts: members.iter().map(|f| u64::from(f.alert_count)).sum(),
                durations,
                mtbf_ms: mean_gap(starts.clone().min(), starts.max(), members.len() as u64),
            }
        })
        .collect()
}

fn mean_gap(first: Option<Timestamp>, last: Option<Timestamp>, n: u64) -> Option<f64> {
    let (first, last) = (first?, last?);
    (n >= 2).then(|| (last - first).num_milliseconds() as f64 / (n - 1) as f64)
}

/// One ISO week of a trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeekBucket {
    /// ISO week-numbering year.
    pub iso_year: i32,
    /// ISO week number, 1–53.
    pub iso_week: u32,
    /// The week's Monday, in the trend's time zone.
    pub starts_on: NaiveDate,
    /// Incidents declared in the week.
    pub incidents: u64,
    /// The metric over them; `None` when none has it.
    pub summary: Option<Summary>,
}

/// Incidents and one metric per ISO week (Monday to Sunday in `tz`), for every
/// week that overlaps `window`, empty weeks included so a chart has no gaps.
pub fn weekly_trend<'a>(
    facts: impl IntoIterator<Item = &'a IncidentFacts>,
    metric: Metric,
    tz: Tz,
    window: Window,
) -> Vec<WeekBucket> {
    if window.to <= window.from {
        return Vec::new();
    }
    let monday = |t: Timestamp| {
        let d = t.with_timezone(&tz).date_naive();
        d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
    };
    let first = monday(window.from);
    let last = monday(window.to - Duration::milliseconds(1));
    let weeks = ((last - first).num_days() / 7 + 1) as usize;
    let mut values: Vec<(u64, Vec<i64>)> = vec![(0, Vec::new()); weeks];
    for f in facts.into_iter().filter(|f| window.contains(f.declared_at)) {
        let i = ((monday(f.declared_at) - first).num_days() / 7) as usize;
        if let Some((n, v)) = values.get_mut(i) {
            *n += 1;
            v.extend(f.duration_ms(metric));
        }
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, (incidents, v))| {
            let starts_on = first + Duration::days(7 * i as i64);
            let iso = starts_on.iso_week();
            WeekBucket {
                iso_year: iso.year(),
                iso_week: iso.week(),
                starts_on,
                incidents,
                summary: Summary::of(v),
            }
        })
        .collect()
}

/// Where a rollup row belongs: a day (in the instance's reporting zone), a group
/// and a severity. Severity is part of every key so that per-severity numbers
/// come from the `All` rows without counting an incident twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RollupKey {
    /// Local day of declaration.
    pub day: NaiveDate,
    /// `All`, a service or a team.
    pub group: GroupKey,
    /// The incident's severity.
    pub severity: String,
}

impl RollupKey {
    /// The rows an incident adds to: its day with `All`, each service and each team.
    pub fn of(f: &IncidentFacts, tz: Tz) -> Vec<RollupKey> {
        let day = f.declared_at.with_timezone(&tz).date_naive();
        [GroupBy::All, GroupBy::Service, GroupBy::Team]
            .into_iter()
            .flat_map(|by| GroupKey::of(f, by))
            .map(|group| RollupKey {
                day,
                group,
                severity: f.severity.clone(),
            })
            .collect()
    }
}

/// Mergeable numbers of a set of incidents: what the store keeps per
/// [`RollupKey`] and adds up over a range of days.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Incidents.
    pub incidents: u64,
    /// Alerts attached to them.
    pub alerts: u64,
    /// Earliest start, for time between failures.
    pub first_start: Option<Timestamp>,
    /// Latest start.
    pub last_start: Option<Timestamp>,
    /// Each metric's durations.
    pub durations: BTreeMap<Metric, DurationHistogram>,
}

impl Rollup {
    /// Adds one incident.
    pub fn add(&mut self, f: &IncidentFacts) {
        self.incidents += 1;
        self.alerts += u64::from(f.alert_count);
        let s = f.started_at();
        self.first_start = Some(self.first_start.map_or(s, |t| t.min(s)));
        self.last_start = Some(self.last_start.map_or(s, |t| t.max(s)));
        for m in Metric::ALL {
            if let Some(ms) = f.duration_ms(m) {
                self.durations.entry(m).or_default().record(ms);
            }
        }
    }

    /// Adds another rollup (of other incidents).
    pub fn merge(&mut self, other: &Rollup) {
        self.incidents += other.incidents;
        self.alerts += other.alerts;
        self.first_start = self.first_start.into_iter().chain(other.first_start).min();
        self.last_start = self.last_start.into_iter().chain(other.last_start).max();
        for (m, h) in &other.durations {
            self.durations.entry(*m).or_default().merge(h);
        }
    }

    /// The group's report from the rollup: exact counts, means and time between
    /// failures, percentiles within 1/64 (see [`DurationHistogram`]).
    pub fn report(&self, key: GroupKey) -> GroupReport {
        GroupReport {
            key,
            incidents: self.incidents,
            alerts: self.alerts,
            durations: self
                .durations
                .iter()
                .filter_map(|(m, h)| Some((*m, h.summary()?)))
                .collect(),
            mtbf_ms: mean_gap(self.first_start, self.last_start, self.incidents),
        }
    }
}
