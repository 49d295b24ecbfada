//! Whether a trigger may start a new run: the workflow's limits (runs per
//! incident, per hour, cool-down) and the loop guard over the chain of runs
//! whose effects caused the trigger, so two workflows that trigger each other
//! stop.
//!
//! The engine stamps every event a run's step causes (a severity set, a note
//! added) with that run's chain plus the run itself; a trigger from such an
//! event passes the chain here.

use serde::{Deserialize, Serialize};

use super::definition::Limits;
use crate::time::Timestamp;

/// Longest chain of runs each caused by the one before.
pub const MAX_CHAIN_DEPTH: usize = 5;

/// One run in the chain that led to a trigger, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    /// The run.
    pub run_id: String,
    /// Its workflow.
    pub workflow_id: i64,
}

/// A past run of the workflow, as the limits need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastRun {
    /// Its workflow.
    pub workflow_id: i64,
    /// What it ran for: `incident:42`, or for alert triggers the alert
    /// (`alert:7`); none for schedules.
    pub subject: Option<String>,
    /// When it started.
    pub started_at: Timestamp,
}

/// Why a run was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The trigger came from a chain of runs that is already too long.
    #[error("{depth} runs led to this trigger; at most {max} may chain")]
    ChainTooDeep {
        /// Runs in the chain.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// The workflow already appears in its own chain as often as it may run.
    #[error("this workflow already ran {times} times in the chain that led here (limit {limit})")]
    Loop {
        /// Times it appears.
        times: usize,
        /// The limit (max_runs_per_incident).
        limit: u32,
    },
    /// The workflow ran as often as it may for this incident.
    #[error("already ran {limit} times for {subject} (max_runs_per_incident)")]
    RunsPerIncident {
        /// The incident or alert.
        subject: String,
        /// The limit.
        limit: u32,
    },
    /// The workflow ran as often as it may in the last hour.
    #[error("already ran {limit} times in the last hour (max_runs_per_hour)")]
    RatePerHour {
        /// The limit.
        limit: u32,
    },
    /// The last run for the same subject was too recent.
    #[error("cooling down until {until}")]
    CoolingDown {
        /// When a run is allowed again.
        until: Timestamp,
    },
}

/// Whether `workflow_id` may start a run for `subject` now, given the chain of
/// runs that caused the trigger and the workflow's past runs.
pub fn admit(
    limits: &Limits,
    workflow_id: i64,
    subject: Option<&str>,
    chain: &[ChainLink],
    past: &[PastRun],
    now: Timestamp,
) -> Result<(), Refusal> {
    if chain.len() >= MAX_CHAIN_DEPTH {
        return Err(Refusal::ChainTooDeep {
            depth: chain.len(),
            max: MAX_CHAIN_DEPTH,
        });
    }
    let times = chain
        .iter()
        .filter(|l| l.workflow_id == workflow_id)
        .count();
    if times >= limits.max_runs_per_incident as usize {
        return Err(Refusal::Loop {
            times,
            limit: limits.max_runs_per_incident,
        });
    }
    let mine: Vec<&PastRun> = past
        .iter()
        .filter(|r| r.workflow_id == workflow_id)
        .collect();
    if let Some(subject) = subject {
        let same: Vec<&&PastRun> = mine
            .iter()
            .filter(|r| r.subject.as_deref() == Some(subject))
            .collect();
        if same.len() >= limits.max_runs_per_incident as usize {
            return Err(Refusal::RunsPerIncident {
                subject: subject.to_string(),
                limit: limits.max_runs_per_incident,
            });
        }
        if let (Some(cool), Some(last)) =
            (limits.cool_down, same.iter().map(|r| r.started_at).max())
        {
            let until = last + cool.to_duration();
            if now < until {
                return Err(Refusal::CoolingDown { until });
            }
        }
    }
    let hour_ago = now - chrono::Duration::hours(1);
    let in_hour = mine
        .iter()
        .filter(|r| r.started_at > hour_ago && r.started_at <= now)
        .count();
    if in_hour >= limits.max_runs_per_hour as usize {
        return Err(Refusal::RatePerHour {
            limit: limits.max_runs_per_hour,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::text::Span;
    use chrono::Duration;

    fn t(min: i64) -> Timestamp {
        "2026-05-01T12:00:00Z".parse::<Timestamp>().unwrap() + Duration::minutes(min)
    }

    fn link(w: i64) -> ChainLink {
        ChainLink {
            run_id: format!("r{w}"),
            workflow_id: w,
        }
    }

    #[test]
    fn two_workflows_that_trigger_each_other_stop() {
        // A sets severity, which triggers B, which adds a note that triggers A…
        let limits = Limits {
            max_runs_per_incident: 3,
            ..Limits::default()
        };
        let (a, b) = (1, 2);
        let mut chain: Vec<ChainLink> = Vec::new();
        let mut past: Vec<PastRun> = Vec::new();
        let mut runs = 0;
        for (n, w) in [a, b].iter().cycle().take(20).enumerate() {
            let ok = admit(&limits, *w, Some("incident:9"), &chain, &past, t(n as i64)).is_ok();
            if !ok {
                break;
            }
            runs += 1;
            chain.push(link(*w));
            past.push(PastRun {
                workflow_id: *w,
                subject: Some("incident:9".into()),
                started_at: t(n as i64),
            });
        }
        assert!(runs <= MAX_CHAIN_DEPTH, "stopped after {runs} runs");
        // Without an incident the chain alone stops it.
        let chain: Vec<ChainLink> = [a, b, a, b, a].iter().map(|w| link(*w)).collect();
        assert!(matches!(
            admit(&limits, b, None, &chain, &[], t(0)),
            Err(Refusal::ChainTooDeep { .. })
        ));
        let chain: Vec<ChainLink> = [a, b, a, b].iter().map(|w| link(*w)).collect();
        let limits2 = Limits {
            max_runs_per_incident: 2,
            ..Limits::default()
        };
        assert!(matches!(
            admit(&limits2, a, None, &chain, &[], t(0)),
            Err(Refusal::Loop { times: 2, .. })
        ));
    }

    #[test]
    fn per_incident_rate_and_cool_down() {
        let limits = Limits {
            max_runs_per_incident: 2,
            max_runs_per_hour: 3,
            cool_down: Some(Span::mins(30)),
            ..Limits::default()
        };
        let run = |w, s: &str, m| PastRun {
            workflow_id: w,
            subject: Some(s.into()),
            started_at: t(m),
        };
        let past = vec![run(1, "incident:1", 0)];
        assert_eq!(
            admit(&limits, 1, Some("incident:1"), &[], &past, t(10)),
            Err(Refusal::CoolingDown { until: t(30) })
        );
        assert!(admit(&limits, 1, Some("incident:1"), &[], &past, t(30)).is_ok());
        assert!(admit(&limits, 1, Some("incident:2"), &[], &past, t(10)).is_ok());
        assert!(
            admit(&limits, 2, Some("incident:1"), &[], &past, t(10)).is_ok(),
            "other workflows are not limited"
        );
        let past = vec![run(1, "incident:1", 0), run(1, "incident:1", 40)];
        assert!(matches!(
            admit(&limits, 1, Some("incident:1"), &[], &past, t(200)),
            Err(Refusal::RunsPerIncident { .. })
        ));
        let past = vec![run(1, "a", 0), run(1, "b", 10), run(1, "c", 20)];
        assert_eq!(
            admit(&limits, 1, Some("d"), &[], &past, t(50)),
            Err(Refusal::RatePerHour { limit: 3 })
        );
        assert!(admit(&limits, 1, Some("d"), &[], &past, t(61)).is_ok());
    }
}
