//! The incident: its lifecycle table, the ITIL priority matrix and relation kinds.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// Where an incident stands in its lifecycle.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Raised, nobody has taken it yet.
    Triggered,
    /// Someone has taken it.
    Acknowledged,
    /// The cause is being looked for.
    Investigating,
    /// The cause is known; a fix is being worked on.
    Identified,
    /// A fix is in place and being watched.
    Monitoring,
    /// Service is restored.
    Resolved,
    /// Resolution confirmed; the record is complete.
    Closed,
}

/// The lifecycle: for each status, the statuses it may move to. The API, the UI
/// and docs/incidents.md all read this one table.
pub const LIFECYCLE: [(Status, &[Status]); 7] = {
    use Status::*;
    [
        (
            Triggered,
            &[
                Acknowledged,
                Investigating,
                Identified,
                Monitoring,
                Resolved,
            ],
        ),
        (
            Acknowledged,
            &[Investigating, Identified, Monitoring, Resolved],
        ),
        (Investigating, &[Identified, Monitoring, Resolved]),
        (Identified, &[Investigating, Monitoring, Resolved]),
        (Monitoring, &[Investigating, Identified, Resolved]),
        // Investigating from resolved or closed is a reopen.
        (Resolved, &[Closed, Investigating]),
        (Closed, &[Investigating]),
    ]
};

impl Status {
    /// Every status in lifecycle order.
    pub const ALL: [Status; 7] = [
        Status::Triggered,
        Status::Acknowledged,
        Status::Investigating,
        Status::Identified,
        Status::Monitoring,
        Status::Resolved,
        Status::Closed,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Triggered => "triggered",
            Status::Acknowledged => "acknowledged",
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Monitoring => "monitoring",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Parses the stored or wire name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The statuses this one may move to.
    pub fn allowed_next(self) -> &'static [Status] {
        LIFECYCLE
            .iter()
            .find(|(from, _)| *from == self)
            .map(|(_, to)| *to)
            .unwrap_or(&[])
    }

    /// Whether moving from `self` to `to` is allowed.
    pub fn can_move_to(self, to: Status) -> bool {
        self.allowed_next().contains(&to)
    }

    /// Whether the incident still needs work (not resolved or closed).
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }

    /// Whether moving from `self` to `to` reopens a finished incident.
    pub fn is_reopen(self, to: Status) -> bool {
        !self.is_open() && to.is_open()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused lifecycle move, carrying what would have been allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot move from {from} to {to}; allowed next: {}", list(.from.allowed_next()))]
pub struct TransitionRefused {
    /// Current status.
    pub from: Status,
    /// Requested status.
    pub to: Status,
}

fn list(s: &[Status]) -> String {
    s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Checks a lifecycle move against [`LIFECYCLE`].
pub fn check_transition(from: Status, to: Status) -> Result<(), TransitionRefused> {
    if from.can_move_to(to) {
        Ok(())
    } else {
        Err(TransitionRefused { from, to })
    }
}

/// Impact or urgency: ITIL's three levels.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Widespread or time-critical.
    High,
    /// Some users or some time pressure.
    Medium,
    /// Few users, can wait.
    Low,
}

impl Level {
    /// Every level, highest first.
    pub const ALL: [Level; 3] = [Level::High, Level::Medium, Level::Low];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::High => "high",
            Level::Medium => "medium",
            Level::Low => "low",
        }
    }

    /// Parses the stored or wire name.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// ITIL priority, P1 (most urgent) to P5.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Priority {
    /// Critical.
    P1,
    /// High.
    P2,
    /// Moderate.
    P3,
    /// Low.
    P4,
    /// Planning.
    P5,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 5] = [
        Priority::P1,
        Priority::P2,
        Priority::P3,
        Priority::P4,
        Priority::P5,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
            Priority::P5 => "P5",
        }
    }

    /// Parses the stored or wire name.
    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The ITIL matrix: priority = matrix[impact][urgency].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityMatrix {
    /// Priorities for high impact, by urgency.
    pub high: UrgencyRow,
    /// Priorities for medium impact, by urgency.
    pub medium: UrgencyRow,
    /// Priorities for low impact, by urgency.
    pub low: UrgencyRow,
}

/// One impact row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrgencyRow {
    /// Priority at high urgency.
    pub high: Priority,
    /// Priority at medium urgency.
    pub medium: Priority,
    /// Priority at low urgency.
    pub low: Priority,
}

impl Default for PriorityMatrix {
    fn default() -> Self {
        use Priority::*;
        PriorityMatrix {
            high: UrgencyRow {
                high: P1,
                medium: P2,
                low: P3,
            },
            medium: UrgencyRow {
                high: P2,
                medium: P3,
                low: P4,
            },
            low: UrgencyRow {
                high: P3,
                medium: P4,
                low: P5,
            },
        }
    }
}

impl PriorityMatrix {
    /// The priority an impact and an urgency give.
    pub fn priority(&self, impact: Level, urgency: Level) -> Priority {
        let row = match impact {
            Level::High => self.high,
            Level::Medium => self.medium,
            Level::Low => self.low,
        };
        match urgency {
            Level::High => row.high,
            Level::Medium => row.medium,
            Level::Low => row.low,
        }
    }
}

/// How two incidents are related.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// This incident is a duplicate of the other.
    DuplicateOf,
    /// This incident was caused by the other.
    CausedBy,
    /// The incidents are related.
    Related,
}

impl RelationKind {
    /// Every relation kind.
    pub const ALL: [RelationKind; 3] = [
        RelationKind::DuplicateOf,
        RelationKind::CausedBy,
        RelationKind::Related,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::DuplicateOf => "duplicate_of",
            RelationKind::CausedBy => "caused_by",
            RelationKind::Related => "related",
        }
    }

    /// Parses the stored or wire name.
    pub fn parse(s: &str) -> Option<RelationKind> {
        RelationKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a note or attachment records.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Plain discussion or evidence.
    #[default]
    Note,
    /// A decision taken during the incident.
    Decision,
    /// An approval, with who approved.
    Approval,
}

impl RecordKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Note => "note",
            RecordKind::Decision => "decision",
            RecordKind::Approval => "approval",
        }
    }

    /// Parses the stored or wire name.
    pub fn parse(s: &str) -> Option<RecordKind> {
        [RecordKind::Note, RecordKind::Decision, RecordKind::Approval]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Parses an incident reference: `INC-42`, `inc-42` or `42`.
pub fn parse_number(s: &str) -> Result<i64, Invalid> {
    let digits = s
        .strip_prefix("INC-")
        .or_else(|| s.strip_prefix("inc-"))
        .unwrap_or(s);
    match digits.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Invalid::new(
            "number",
            format!("`{s}` is not an incident number (expected INC-<n> or <n>)"),
        )),
    }
}

/// Formats an incident number for people: `INC-42`.
pub fn format_number(n: i64) -> String {
    format!("INC-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matrix_is_itil() {
        let m = PriorityMatrix::default();
        assert_eq!(m.priority(Level::High, Level::High), Priority::P1);
        assert_eq!(m.priority(Level::High, Level::Low), Priority::P3);
        assert_eq!(m.priority(Level::Medium, Level::Medium), Priority::P3);
        assert_eq!(m.priority(Level::Low, Level::High), Priority::P3);
        assert_eq!(m.priority(Level::Low, Level::Low), Priority::P5);
    }

    #[test]
    fn lifecycle_table_covers_every_status_once() {
        for s in Status::ALL {
            assert_eq!(LIFECYCLE.iter().filter(|(f, _)| *f == s).count(), 1);
            assert!(!s.can_move_to(s), "{s} may not move to itself");
        }
        // Nothing goes back to triggered; closing needs a resolution first.
        for s in Status::ALL {
            assert!(!s.can_move_to(Status::Triggered));
            if s != Status::Resolved {
                assert!(!s.can_move_to(Status::Closed));
            }
        }
    }

    #[test]
    fn refusal_names_allowed_next() {
        let err = check_transition(Status::Closed, Status::Resolved).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot move from closed to resolved; allowed next: investigating"
        );
    }

    #[test]
    fn numbers_parse_both_ways() {
        assert_eq!(parse_number("INC-42"), Ok(42));
        assert_eq!(parse_number("42"), Ok(42));
        assert!(parse_number("INC-0").is_err());
        assert!(parse_number("INC-x").is_err());
        assert_eq!(format_number(7), "INC-7");
    }
}
