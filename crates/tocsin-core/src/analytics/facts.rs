//! The instants an incident's durations are measured between, and the
//! definitions of those durations.
//!
//! The durations partition an incident's life, each starting where the one
//! before it ends, so that none is counted twice:
//!
//! ```text
//! began ──TTD──► detected ──time to declare──► declared ──TTA──► acknowledged
//!                                                       ├──TTM──► mitigated
//!                                                       └──TTR──► resolved
//! ```
//!
//! - **began**: when the impact started, as a responder recorded it
//!   (`occurred_at`). Nothing else knows it: a first alert is already detection.
//! - **detected**: the first sign of the problem, the earlier of the first alert
//!   attached to the incident (its `first_seen`) and the incident's `detected_at`
//!   (which a person may set earlier than the declaration).
//! - **declared**: when the incident was opened (`created_at`); paging starts here.
//! - **acknowledged**, **mitigated**, **resolved**: the incident's own fields, kept by
//!   the lifecycle: the first move out of `triggered`, the first move to
//!   `monitoring` or `resolved` (kept across a reopen), and the last resolution
//!   (cleared by a reopen).
//!
//! - **TTD** (time to detect) = detected − began, and only when `began` was
//!   recorded: an unknown start gives no value rather than a zero that would
//!   flatter the mean.
//! - **Time to declare** = declared − detected: how long the first sign went
//!   without an incident (0 when an alert opened it).
//! - **TTA / TTM / TTR** = acknowledged / mitigated / resolved − declared.
//!
//! A duration is never negative: a recorded instant that lies before the one it
//! is measured from (an alert attached later, a clock corrected by hand) counts
//! as 0. All durations are whole milliseconds, the precision instants are stored at.

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::model::{Incident, Service};
use crate::time::Timestamp;

/// A measured duration of an incident, each defined in the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Began → detected (TTD); only when the start of impact was recorded.
    TimeToDetect,
    /// Detected → declared.
    TimeToDeclare,
    /// Declared → first acknowledgement (TTA).
    TimeToAcknowledge,
    /// Declared → first move to monitoring or resolved (TTM).
    TimeToMitigate,
    /// Declared → final resolution (TTR).
    TimeToResolve,
}

impl Metric {
    /// Every metric, in the order of an incident's life.
    pub const ALL: [Metric; 5] = [
        Metric::TimeToDetect,
        Metric::TimeToDeclare,
        Metric::TimeToAcknowledge,
        Metric::TimeToMitigate,
        Metric::TimeToResolve,
    ];

    /// The short name shown on charts and in CSV headers.
    pub fn short(self) -> &'static str {
        match self {
            Metric::TimeToDetect => "TTD",
            Metric::TimeToDeclare => "TTDecl",
            Metric::TimeToAcknowledge => "TTA",
            Metric::TimeToMitigate => "TTM",
            Metric::TimeToResolve => "TTR",
        }
    }

    /// The name in words.
    pub fn label(self) -> &'static str {
        match self {
            Metric::TimeToDetect => "time to detect",
            Metric::TimeToDeclare => "time to declare",
            Metric::TimeToAcknowledge => "time to acknowledge",
            Metric::TimeToMitigate => "time to mitigate",
            Metric::TimeToResolve => "time to resolve",
        }
    }
}

/// What analytics need of one incident: its instants and what it is grouped by.
/// The store builds one per incident (or keeps them as a rollup table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentFacts {
    /// The incident's id.
    pub incident_id: i64,
    /// Its severity name.
    pub severity: String,
    /// Affected services.
    pub service_ids: Vec<i64>,
    /// Teams owning those services (deduplicated, sorted).
    pub team_ids: Vec<i64>,
    /// Alerts attached to it.
    pub alert_count: u32,
    /// Start of impact, if a responder recorded it.
    pub began_at: Option<Timestamp>,
    /// First sign: first alert or `detected_at`, whichever is earlier.
    pub detected_at: Timestamp,
    /// When it was declared (opened).
    pub declared_at: Timestamp,
    /// First acknowledgement.
    pub acknowledged_at: Option<Timestamp>,
    /// First move to monitoring or resolved.
    pub mitigated_at: Option<Timestamp>,
    /// Final resolution, if resolved.
    pub resolved_at: Option<Timestamp>,
}

impl IncidentFacts {
    /// The facts of `incident`, with its `alerts` and the `services` (any superset
    /// of the affected ones) whose owning teams it counts for.
    pub fn of(incident: &Incident, alerts: &[Alert], services: &[Service]) -> IncidentFacts {
        let first_alert = alerts
            .iter()
            .filter(|a| a.incident_id == Some(incident.id))
            .map(|a| a.first_seen)
            .min();
        let noticed = incident.detected_at.unwrap_or(incident.created_at);
        let detected_at = first_alert.map_or(noticed, |a| a.min(noticed));
        let mut team_ids: Vec<i64> = services
            .iter()
            .filter(|s| incident.service_ids.contains(&s.id))
            .filter_map(|s| s.team_id)
            .collect();
        team_ids.sort_unstable();
        team_ids.dedup();
        let alert_count = alerts
            .iter()
            .filter(|a| a.incident_id == Some(incident.id))
            .count();
        IncidentFacts {
            incident_id: incident.id,
            severity: incident.severity.clone(),
            service_ids: incident.service_ids.clone(),
            team_ids,
            alert_count: u32::try_from(alert_count).unwrap_or(u32::MAX),
            began_at: incident.occurred_at,
            detected_at,
            declared_at: incident.created_at,
            acknowledged_at: incident.acknowledged_at,
            mitigated_at: incident.mitigated_at,
            resolved_at: incident.resolved_at,
        }
    }

    /// The earliest known instant of the incident: where time between failures
    /// is measured from.
    pub fn started_at(&self) -> Timestamp {
        let first = self.detected_at.min(self.declared_at);
        self.began_at.map_or(first, |b| b.min(first))
    }

    /// One metric in milliseconds; `None` when its end (or, for TTD, its start)
    /// is not known.
    pub fn duration_ms(&self, metric: Metric) -> Option<i64> {
        let (from, to) = match metric {
            Metric::TimeToDetect => (self.began_at?, self.detected_at),
            Metric::TimeToDeclare => (self.detected_at, self.declared_at),
            Metric::TimeToAcknowledge => (self.declared_at, self.acknowledged_at?),
            Metric::TimeToMitigate => (self.declared_at, self.mitigated_at?),
            Metric::TimeToResolve => (self.declared_at, self.resolved_at?),
        };
        Some(between_ms(from, to))
    }

    /// Several incidents reviewed together (one postmortem): the earliest start,
    /// sign, declaration and acknowledgement (the start only if no sign came
    /// before it); mitigated and resolved only once all are, at the latest of them. Severity is the first one's (callers pass the
    /// most severe first); services, teams and alerts are the union and the sum.
    /// `None` for no incidents.
    pub fn combine(all: &[IncidentFacts]) -> Option<IncidentFacts> {
        let first = all.first()?;
        let min_opt = |f: fn(&IncidentFacts) -> Option<Timestamp>| all.iter().filter_map(f).min();
        // Every one must be done for the group to be done.
        let all_max = |f: fn(&IncidentFacts) -> Option<Timestamp>| {
            all.iter()
                .map(f)
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .max()
        };
        let mut service_ids: Vec<i64> = all.iter().flat_map(|f| f.service_ids.clone()).collect();
        service_ids.sort_unstable();
        service_ids.dedup();
        let mut team_ids: Vec<i64> = all.iter().flat_map(|f| f.team_ids.clone()).collect();
        team_ids.sort_unstable();
        team_ids.dedup();
        let detected_at = all.iter().map(|f| f.detected_at).min()?;
        // A sign before the earliest recorded start means the group's impact began
        // earlier than anyone recorded: unknown, not a negative or zero TTD.
        let began_at = min_opt(|f| f.began_at).filter(|b| *b <= detected_at);
        Some(IncidentFacts {
            incident_id: first.incident_id,
            severity: first.severity.clone(),
            service_ids,
            team_ids,
            alert_count: all
                .iter()
                .map(|f| f.alert_count)
                .fold(0, u32::saturating_add),
            began_at,
            detected_at,
            declared_at: all.iter().map(|f| f.declared_at).min()?,
            acknowledged_at: min_opt(|f| f.acknowledged_at),
            mitigated_at: all_max(|f| f.mitigated_at),
            resolved_at: all_max(|f| f.resolved_at),
        })
    }
}

/// Milliseconds from `from` to `to`, 0 if `to` is earlier.
pub fn between_ms(from: Timestamp, to: Timestamp) -> i64 {
    (to - from).num_milliseconds().max(0)
}

/// A duration for people: `45s`, `12m 05s`, `3h 04m 05s`, `2d 03h 04m 05s`;
/// whole seconds (milliseconds are dropped), days above 24 hours.
pub fn format_duration_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m {s:02}s")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}
