//! Alert noise: which services, integrations and routing rules send alerts
//! nobody needed, the candidates for tuning.
//!
//! For each group: alerts, triggers (repeats included), alerts resolved by their
//! source within a short time ("quick auto-resolves"), flaps, and alerts that
//! never led to an action.
//!
//! - An alert **never led to an action** when nobody acknowledged it or its
//!   incident, nobody wrote a note on its incident, and its source resolved it.
//! - A **flap** is an alert opening again for the same (service, dedup key)
//!   within the flap window after the previous one with that key resolved.

use std::collections::{BTreeMap, HashMap};

use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::facts::between_ms;
use crate::time::Timestamp;

/// What noise analysis needs of one alert; the store derives it from the alert
/// and its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFacts {
    /// The alert's id.
    pub alert_id: i64,
    /// Service it belongs to.
    pub service_id: i64,
    /// Which integration (key name or source kind) sent it.
    pub integration: String,
    /// The routing rule that matched it, if one did.
    pub rule: Option<String>,
    /// Its dedup key.
    pub dedup_key: String,
    /// First trigger.
    pub opened_at: Timestamp,
    /// When it resolved, if it has.
    pub resolved_at: Option<Timestamp>,
    /// Whether its source resolved it (not a person, not its incident).
    pub auto_resolved: bool,
    /// Whether a person acknowledged it or its incident.
    pub acknowledged: bool,
    /// Whether anyone wrote a note on its incident.
    pub noted: bool,
    /// Triggers received, repeats included (at least 1).
    pub triggers: u32,
}

impl AlertFacts {
    /// Whether nobody acted on it: no acknowledgement, no note, resolved by its source.
    pub fn never_acted_on(&self) -> bool {
        !self.acknowledged && !self.noted && self.auto_resolved && self.resolved_at.is_some()
    }
}

/// Thresholds of the noise analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoiseConfig {
    /// An auto-resolve within this long of opening is "quick".
    pub quick_resolve: Duration,
    /// A reopen within this long of the previous resolve is a flap.
    pub flap_window: Duration,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        NoiseConfig {
            quick_resolve: Duration::minutes(5),
            flap_window: Duration::minutes(60),
        }
    }
}

/// One group's noise numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseStats {
    /// Alerts opened.
    pub alerts: u64,
    /// Triggers received, repeats included.
    pub triggers: u64,
    /// Alerts their source resolved within the quick-resolve time.
    pub quick_auto_resolved: u64,
    /// Alerts that reopened a key within the flap window.
    pub flaps: u64,
    /// Alerts nobody acted on.
    pub never_acted_on: u64,
}

impl NoiseStats {
    /// Share of alerts quickly auto-resolved, 0–1.
    pub fn quick_auto_resolved_share(&self) -> f64 {
        share(self.quick_auto_resolved, self.alerts)
    }

    /// Share of alerts nobody acted on, 0–1.
    pub fn never_acted_on_share(&self) -> f64 {
        share(self.never_acted_on, self.alerts)
    }
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// Noise per service, per integration and per routing rule, each sorted noisiest
/// (most alerts) first, ties by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseReport {
    /// By service id.
    pub by_service: Vec<(i64, NoiseStats)>,
    /// By integration.
    pub by_integration: Vec<(String, NoiseStats)>,
    /// By routing rule; alerts no rule matched are left out.
    pub by_rule: Vec<(String, NoiseStats)>,
}

/// The noise report of `alerts` (any order).
pub fn noise(alerts: &[AlertFacts], cfg: NoiseConfig) -> NoiseReport {
    let flapped = flaps(alerts, cfg.flap_window);
    let mut by_service: BTreeMap<i64, NoiseStats> = BTreeMap::new();
    let mut by_integration: BTreeMap<String, NoiseStats> = BTreeMap::new();
    let mut by_rule: BTreeMap<String, NoiseStats> = BTreeMap::new();
    let quick = cfg.quick_resolve.num_milliseconds();
    for (a, &flap) in alerts.iter().zip(&flapped) {
        let add = |s: &mut NoiseStats| {
            s.alerts += 1;
            s.triggers += u64::from(a.triggers.max(1));
            let quick_resolve = a
                .resolved_at
                .is_some_and(|r| a.auto_resolved && between_ms(a.opened_at, r) <= quick);
            s.quick_auto_resolved += u64::from(quick_resolve);
            s.flaps += u64::from(flap);
            s.never_acted_on += u64::from(a.never_acted_on());
        };
        add(by_service.entry(a.service_id).or_default());
        add(by_integration.entry(a.integration.clone()).or_default());
        if let Some(rule) = &a.rule {
            add(by_rule.entry(rule.clone()).or_default());
        }
    }
    NoiseReport {
        by_service: noisiest(by_service),
        by_integration: noisiest(by_integration),
        by_rule: noisiest(by_rule),
    }
}

fn noisiest<K: Ord>(m: BTreeMap<K, NoiseStats>) -> Vec<(K, NoiseStats)> {
    let mut v: Vec<(K, NoiseStats)> = m.into_iter().collect();
    // Stable sort: equal counts keep the map's key order.
    v.sort_by_key(|e| std::cmp::Reverse(e.1.alerts));
    v
}

/// For each alert (same order), whether it reopened its key within `window` of
/// the previous alert with that key resolving.
fn flaps(alerts: &[AlertFacts], window: Duration) -> Vec<bool> {
    let mut by_key: HashMap<(i64, &str), Vec<usize>> = HashMap::new();
    for (i, a) in alerts.iter().enumerate() {
        by_key
            .entry((a.service_id, &a.dedup_key))
            .or_default()
            .push(i);
    }
    let mut out = vec![false; alerts.len()];
    for mut idx in by_key.into_values() {
        idx.sort_by_key(|&i| (alerts[i].opened_at, alerts[i].alert_id));
        for pair in idx.windows(2) {
            let (prev, next) = (&alerts[pair[0]], &alerts[pair[1]]);
            if let Some(resolved) = prev.resolved_at {
                let gap = next.opened_at - resolved;
                out[pair[1]] = gap >= Duration::zero() && gap <= window;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(min: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2024, 5, 6, 12, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn alert(id: i64, service: i64, key: &str, open: i64, resolved: Option<i64>) -> AlertFacts {
        AlertFacts {
            alert_id: id,
            service_id: service,
            integration: "alertmanager".into(),
            rule: Some("disk".into()),
            dedup_key: key.into(),
            opened_at: t(open),
            resolved_at: resolved.map(t),
            auto_resolved: true,
            acknowledged: false,
            noted: false,
            triggers: 1,
        }
    }

    #[test]
    fn noise_by_hand() {
        let mut a = vec![
            // Key "disk" on service 1 opens 4 times: resolved after 2 min, reopens 10 min
            // later (flap), resolved after 3 min, reopens 61 min later (not a flap: window
            // 60), resolved after 6 min (not quick: limit 5), reopens 0 min later (flap),
            // still open.
            alert(1, 1, "disk", 0, Some(2)),
            alert(2, 1, "disk", 12, Some(15)),
            alert(3, 1, "disk", 76, Some(82)),
            alert(4, 1, "disk", 82, None),
            // Same key on another service: its own history, no flap.
            alert(5, 2, "disk", 13, Some(14)),
            // Acknowledged by a person, repeated 4 times, from another integration, no rule.
            AlertFacts {
                acknowledged: true,
                triggers: 4,
                integration: "grafana".into(),
                rule: None,
                ..alert(6, 2, "cpu", 0, Some(1))
            },
            // Resolved by a person (through its incident): not quick, not "never acted on".
            AlertFacts {
                auto_resolved: false,
                ..alert(7, 2, "mem", 0, Some(1))
            },
        ];
        // Input order must not matter.
        a.reverse();
        let r = noise(&a, NoiseConfig::default());
        // Service 1: 4 alerts; quick = #1 (2 min) and #2 (3 min) = 2; flaps #2 and #4 = 2;
        // never acted on = #1, #2, #3 (resolved by source, no ack, no note) = 3.
        let s1 = NoiseStats {
            alerts: 4,
            triggers: 4,
            quick_auto_resolved: 2,
            flaps: 2,
            never_acted_on: 3,
        };
        // Service 2: 3 alerts, triggers 1 + 4 + 1 = 6; quick = #5 and #6 (#7 by a person);
        // flaps 0; never acted on = #5 only (#6 acknowledged, #7 resolved by a person).
        let s2 = NoiseStats {
            alerts: 3,
            triggers: 6,
            quick_auto_resolved: 2,
            flaps: 0,
            never_acted_on: 1,
        };
        assert_eq!(r.by_service, vec![(1, s1), (2, s2)]);
        assert_eq!(s1.never_acted_on_share(), 0.75);
        assert_eq!(s2.quick_auto_resolved_share(), 2.0 / 3.0);
        // By integration: alertmanager has #1–#5 and #7, grafana #6.
        assert_eq!(r.by_integration[0].0, "alertmanager");
        assert_eq!(r.by_integration[0].1.alerts, 6);
        assert_eq!(r.by_integration[1].1.triggers, 4);
        // By rule: "disk" has every alert but #6.
        assert_eq!(r.by_rule.len(), 1);
        assert_eq!(r.by_rule[0].1.alerts, 6);
        assert_eq!(r.by_rule[0].1.flaps, 2);
    }
}
