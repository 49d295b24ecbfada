//! Silences (Alertmanager's model) and flapping rules: the pure parts of
//! suppression. A silence holds new alerts whose labels match all its matchers
//! while `starts_at <= now < ends_at`; a flapping rule holds an alert that opened
//! more than `max_toggles` times within `window_minutes`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::matcher::{matches_all, LabelSource, Matcher};
use crate::time::Timestamp;
use crate::Invalid;

/// Where a silence stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Starts later.
    Pending,
    /// In force.
    Active,
    /// Ended (or expired by hand).
    Expired,
}

impl SilenceState {
    /// The state of a silence from `starts_at` to `ends_at`, at `now`.
    pub fn at(starts_at: Timestamp, ends_at: Timestamp, now: Timestamp) -> SilenceState {
        if now < starts_at {
            SilenceState::Pending
        } else if now < ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<SilenceState> {
        match s {
            "pending" => Some(SilenceState::Pending),
            "active" => Some(SilenceState::Active),
            "expired" => Some(SilenceState::Expired),
            _ => None,
        }
    }
}

/// A silence as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Silence {
    /// Silence id.
    pub id: i64,
    /// Every matcher must match an alert's labels.
    pub matchers: Vec<Matcher>,
    /// Only this service's alerts; none: every service's.
    pub service_id: Option<i64>,
    /// When it starts.
    pub starts_at: chrono::DateTime<chrono::Utc>,
    /// When it ends (its expiry).
    pub ends_at: chrono::DateTime<chrono::Utc>,
    /// Why.
    pub comment: String,
    /// User who created it.
    pub created_by: Option<i64>,
    /// Their name at the time.
    pub created_by_name: String,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed (created or expired).
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// State at the time it was read.
    pub state: SilenceState,
}

impl Silence {
    /// Whether it holds an alert with these labels on `service_id` at `now`.
    pub fn silences(&self, service_id: i64, fields: &impl LabelSource, now: Timestamp) -> bool {
        self.starts_at <= now
            && now < self.ends_at
            && self.service_id.is_none_or(|s| s == service_id)
            && matches_all(&self.matchers, fields)
    }
}

/// Checks a new silence: at least one matcher, one of which does not match the
/// empty string (as Alertmanager requires, so that no silence holds everything),
/// and an end after its start and after `now`.
pub fn validate_silence(
    matchers: &[Matcher],
    starts_at: Timestamp,
    ends_at: Timestamp,
    now: Timestamp,
) -> Result<(), Invalid> {
    if matchers.is_empty() {
        return Err(Invalid::new("matchers", "give at least one matcher"));
    }
    if matchers.iter().all(|m| m.matches_value(Some(""))) {
        return Err(Invalid::new(
            "matchers",
            "at least one matcher must not match the empty string (a silence may not hold every alert)",
        ));
    }
    if ends_at <= starts_at {
        return Err(Invalid::new("ends_at", "must be after starts_at"));
    }
    if ends_at <= now {
        return Err(Invalid::new("ends_at", "must be in the future"));
    }
    Ok(())
}

/// Default flapping limit: more than this many openings …
pub const DEFAULT_MAX_TOGGLES: i64 = 4;
/// … within this many minutes holds the alert.
pub const DEFAULT_WINDOW_MINUTES: i64 = 30;

/// How a service detects flapping alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlappingRule {
    /// An alert that opens more than this many times …
    pub max_toggles: i64,
    /// … within this many minutes is held.
    pub window_minutes: i64,
    /// Whether flapping alerts are held at all.
    pub enabled: bool,
}

impl Default for FlappingRule {
    fn default() -> Self {
        FlappingRule {
            max_toggles: DEFAULT_MAX_TOGGLES,
            window_minutes: DEFAULT_WINDOW_MINUTES,
            enabled: true,
        }
    }
}

impl FlappingRule {
    /// Checks the limits: 1 to 1,000 toggles within 1 minute to a week.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(1..=1000).contains(&self.max_toggles) {
            return Err(Invalid::new("max_toggles", "must be between 1 and 1000"));
        }
        if !(1..=7 * 24 * 60).contains(&self.window_minutes) {
            return Err(Invalid::new(
                "window_minutes",
                "must be between 1 and 10080 (a week)",
            ));
        }
        Ok(())
    }

    /// Whether an alert that opened `openings` times within the window is held.
    pub fn holds(&self, openings: i64) -> bool {
        self.enabled && openings > self.max_toggles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Matcher;
    use chrono::{Duration, TimeZone, Utc};
    use serde_json::{json, Map, Value};

    fn m(s: &str) -> Matcher {
        Matcher::parse("m", s).unwrap()
    }

    #[test]
    fn refuses_silences_that_hold_everything() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let end = now + Duration::hours(1);
        assert_eq!(
            validate_silence(&[], now, end, now).unwrap_err().field,
            "matchers"
        );
        assert_eq!(
            validate_silence(&[m("a=~.*")], now, end, now)
                .unwrap_err()
                .field,
            "matchers"
        );
        assert_eq!(
            validate_silence(&[m("a!=x")], now, end, now)
                .unwrap_err()
                .field,
            "matchers"
        );
        assert!(validate_silence(&[m("a=~.*"), m("env=prod")], now, end, now).is_ok());
        assert_eq!(
            validate_silence(&[m("env=prod")], end, now, now)
                .unwrap_err()
                .field,
            "ends_at"
        );
        assert_eq!(
            validate_silence(&[m("env=prod")], now - Duration::hours(2), now, now)
                .unwrap_err()
                .field,
            "ends_at"
        );
    }

    #[test]
    fn silences_while_in_force_on_its_services() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let s = Silence {
            id: 1,
            matchers: vec![m("env=prod")],
            service_id: Some(7),
            starts_at: now,
            ends_at: now + Duration::hours(1),
            comment: String::new(),
            created_by: None,
            created_by_name: String::new(),
            created_at: now,
            updated_at: now,
            state: SilenceState::Active,
        };
        let labels: Map<String, Value> = json!({"env": "prod"}).as_object().cloned().unwrap();
        assert!(s.silences(7, &labels, now));
        assert!(!s.silences(8, &labels, now), "another service");
        assert!(
            !s.silences(7, &labels, now - Duration::seconds(1)),
            "pending"
        );
        assert!(!s.silences(7, &labels, now + Duration::hours(1)), "expired");
        let other: Map<String, Value> = json!({"env": "dev"}).as_object().cloned().unwrap();
        assert!(!s.silences(7, &other, now));
        assert_eq!(
            SilenceState::at(s.starts_at, s.ends_at, now + Duration::hours(2)),
            SilenceState::Expired
        );
    }

    #[test]
    fn flapping_holds_past_the_limit() {
        let r = FlappingRule::default();
        assert!(!r.holds(4));
        assert!(r.holds(5));
        assert!(!FlappingRule {
            enabled: false,
            ..r
        }
        .holds(50));
        assert_eq!(
            FlappingRule {
                max_toggles: 0,
                ..r
            }
            .validate()
            .unwrap_err()
            .field,
            "max_toggles"
        );
    }
}
