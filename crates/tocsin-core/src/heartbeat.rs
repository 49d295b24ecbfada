//! Heartbeats (dead man's switch): a job pings every `interval`; a ping missing
//! for longer than `interval + grace` raises an alert, the next ping resolves it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::Timestamp;
use crate::Invalid;

/// Longest interval or grace period: 30 days, in seconds.
pub const MAX_SECONDS: i64 = 30 * 24 * 3600;

/// Where a heartbeat stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatState {
    /// Created, no ping yet.
    Waiting,
    /// Pinging on time.
    Up,
    /// A ping is overdue; its alert is open.
    Down,
}

impl HeartbeatState {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            HeartbeatState::Waiting => "waiting",
            HeartbeatState::Up => "up",
            HeartbeatState::Down => "down",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<HeartbeatState> {
        [
            HeartbeatState::Waiting,
            HeartbeatState::Up,
            HeartbeatState::Down,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A heartbeat monitor as stored and shown (its ping key is never shown again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Heartbeat {
    /// Heartbeat id.
    pub id: i64,
    /// Service its alert goes to.
    pub service_id: i64,
    /// What pings, e.g. `nightly-backup`.
    pub name: String,
    /// Expected seconds between pings.
    pub interval_seconds: i64,
    /// Extra seconds allowed before a late ping counts as missed.
    pub grace_seconds: i64,
    /// First characters of the ping key.
    pub prefix: String,
    /// Waiting for the first ping, up or down.
    pub state: HeartbeatState,
    /// Latest ping.
    pub last_ping_at: Option<DateTime<Utc>>,
    /// When it goes down unless pinged before.
    pub due_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Checks an interval: whole seconds, 1 to [`MAX_SECONDS`].
pub fn interval(field: &str, seconds: i64) -> Result<i64, Invalid> {
    if !(1..=MAX_SECONDS).contains(&seconds) {
        return Err(Invalid::new(
            field,
            format!("must be between 1 and {MAX_SECONDS} seconds"),
        ));
    }
    Ok(seconds)
}

/// Checks a grace period: whole seconds, 0 to [`MAX_SECONDS`].
pub fn grace(field: &str, seconds: i64) -> Result<i64, Invalid> {
    if !(0..=MAX_SECONDS).contains(&seconds) {
        return Err(Invalid::new(
            field,
            format!("must be between 0 and {MAX_SECONDS} seconds"),
        ));
    }
    Ok(seconds)
}

/// The deadline for the next ping: the latest ping (or creation) plus interval and grace.
/// The heartbeat is missed once `now` is past it.
pub fn due_at(since: Timestamp, interval_seconds: i64, grace_seconds: i64) -> Timestamp {
    since + Duration::seconds(interval_seconds + grace_seconds)
}

/// The dedup key of a heartbeat's alert.
pub fn dedup_key(id: i64) -> String {
    format!("heartbeat-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;

    #[test]
    fn bounds_name_the_field() {
        assert_eq!(
            interval("interval_seconds", 0).unwrap_err().field,
            "interval_seconds"
        );
        assert!(interval("interval_seconds", 1).is_ok());
        assert!(interval("i", MAX_SECONDS + 1).is_err());
        assert_eq!(
            grace("grace_seconds", -1).unwrap_err().field,
            "grace_seconds"
        );
        assert!(grace("grace_seconds", 0).is_ok());
    }

    #[test]
    fn due_is_interval_plus_grace_after_the_last_ping() {
        let t = from_millis(1_000_000);
        assert_eq!(due_at(t, 60, 30), from_millis(1_090_000));
        assert_eq!(HeartbeatState::parse("down"), Some(HeartbeatState::Down));
        assert_eq!(HeartbeatState::parse("x"), None);
    }
}
