//! A running escalation: a small serializable state the engine stores, and its
//! transitions, read from one table ([`TRANSITIONS`]).

use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::policy::EscalationPolicy;
use crate::time::Timestamp;

/// Where a running escalation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Created from its policy snapshot, not yet started.
    Pending,
    /// Levels are being notified as they fall due.
    Running,
    /// Someone acknowledged; nothing more is notified unless escalated by hand.
    Acknowledged,
    /// The incident is resolved; nothing is ever notified again.
    Resolved,
    /// Every level of every pass was notified and nobody acknowledged.
    Exhausted,
}

impl Phase {
    /// The stored and wire name (`running`, …), the same as serde's.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Acknowledged => "acknowledged",
            Phase::Resolved => "resolved",
            Phase::Exhausted => "exhausted",
        }
    }
}

/// What can happen to a running escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The incident was triggered: notify the first level now.
    Start,
    /// Someone acknowledged the incident.
    Acknowledge,
    /// The incident was resolved.
    Resolve,
    /// Someone escalated (or reassigned) to a named level.
    EscalateNow,
}

/// The transitions: from a phase, on an event, the phase that follows. A pair
/// not listed is refused. Acknowledging or resolving twice is allowed and
/// changes nothing, so a retried request is harmless.
pub const TRANSITIONS: [(Phase, Event, Phase); 13] = {
    use Event::*;
    use Phase::*;
    [
        (Pending, Start, Running),
        (Pending, Acknowledge, Acknowledged),
        (Pending, Resolve, Resolved),
        (Running, Acknowledge, Acknowledged),
        (Running, Resolve, Resolved),
        (Running, EscalateNow, Running),
        (Acknowledged, Acknowledge, Acknowledged),
        (Acknowledged, Resolve, Resolved),
        (Acknowledged, EscalateNow, Running),
        (Exhausted, Acknowledge, Acknowledged),
        (Exhausted, Resolve, Resolved),
        (Exhausted, EscalateNow, Running),
        (Resolved, Resolve, Resolved),
    ]
};

/// The phase `event` leads to from `from`, if the table allows it.
pub fn next_phase(from: Phase, event: Event) -> Option<Phase> {
    TRANSITIONS
        .iter()
        .find(|(f, e, _)| *f == from && *e == event)
        .map(|(_, _, to)| *to)
}

/// A refused escalation event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscalationError {
    /// The event is not allowed in the current phase.
    #[error("cannot {event:?} an escalation that is {phase:?}")]
    Refused {
        /// Current phase.
        phase: Phase,
        /// Refused event.
        event: Event,
    },
    /// Escalate-now named a level the policy does not have.
    #[error("level: the policy has levels 0 to {}, not {level}", .levels - 1)]
    NoSuchLevel {
        /// Requested level index.
        level: usize,
        /// How many levels the policy has.
        levels: usize,
    },
}

/// A level that is due: notify its targets now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct DueStep {
    /// Index into the policy's levels (0 is the first).
    pub level: usize,
    /// Pass through the policy (0 is the first).
    pub round: u32,
    /// Count of steps notified before this one in this escalation; never reused,
    /// so a level notified again after escalate-now gets new idempotency keys.
    pub seq: u32,
    /// When it fell due.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A running escalation, stored as a snapshot: its policy as it was when the
/// escalation started, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EscalationState {
    /// The policy snapshot (hand-offs already expanded).
    pub policy: EscalationPolicy,
    /// Where it stands.
    pub phase: Phase,
    /// The level notified next.
    pub level: usize,
    /// The pass of the level notified next; past the last pass means exhaustion is next.
    pub round: u32,
    /// Steps notified so far.
    pub seq: u32,
    /// When the next level is due, or the escalation runs out; none when stopped.
    pub next_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl EscalationState {
    /// A pending escalation over a policy snapshot (see [`EscalationPolicy::snapshot`]).
    pub fn new(policy: EscalationPolicy) -> Self {
        EscalationState {
            policy,
            phase: Phase::Pending,
            level: 0,
            round: 0,
            seq: 0,
            next_at: None,
        }
    }

    fn apply(&mut self, event: Event) -> Result<(), EscalationError> {
        self.phase = next_phase(self.phase, event).ok_or(EscalationError::Refused {
            phase: self.phase,
            event,
        })?;
        Ok(())
    }

    /// Starts the escalation: the first level is due at `now`.
    pub fn start(&mut self, now: Timestamp) -> Result<(), EscalationError> {
        self.apply(Event::Start)?;
        self.level = 0;
        self.round = 0;
        self.next_at = Some(now);
        Ok(())
    }

    /// The steps due at `now`, in time order; each is returned once, and the
    /// state moves past them (to exhaustion after the last).
    pub fn due(&mut self, now: Timestamp) -> Vec<DueStep> {
        let mut out = Vec::new();
        while self.phase == Phase::Running {
            let Some(at) = self.next_at.filter(|at| *at <= now) else {
                break;
            };
            // A stored state that names no level (no levels, or a corrupt
            // index) runs out rather than panicking the engine.
            if self.round > self.policy.effective_repeat() || self.level >= self.policy.levels.len()
            {
                self.phase = Phase::Exhausted;
                self.next_at = None;
                break;
            }
            out.push(DueStep {
                level: self.level,
                round: self.round,
                seq: self.seq,
                at,
            });
            self.seq += 1;
            let delay = self.policy.levels[self.level].delay_minutes;
            self.next_at = Some(at + Duration::minutes(i64::from(delay)));
            self.level += 1;
            if self.level == self.policy.levels.len() {
                self.level = 0;
                self.round += 1;
            }
        }
        out
    }

    /// Acknowledged at `now`: nothing more is due.
    pub fn acknowledge(&mut self, _now: Timestamp) -> Result<(), EscalationError> {
        self.apply(Event::Acknowledge)?;
        self.next_at = None;
        Ok(())
    }

    /// Resolved at `now`: everything pending is cancelled for good.
    pub fn resolve(&mut self, _now: Timestamp) -> Result<(), EscalationError> {
        self.apply(Event::Resolve)?;
        self.next_at = None;
        Ok(())
    }

    /// Moves to `level` at `now`: it is due at once, and timing restarts there.
    /// The pass stays the current one (the last, when the escalation had run out).
    pub fn escalate_now(&mut self, level: usize, now: Timestamp) -> Result<(), EscalationError> {
        let levels = self.policy.levels.len();
        if level >= levels {
            return Err(EscalationError::NoSuchLevel { level, levels });
        }
        self.apply(Event::EscalateNow)?;
        self.level = level;
        self.round = self.round.min(self.policy.effective_repeat());
        self.next_at = Some(now);
        Ok(())
    }

    /// When [`EscalationState::due`] next has something to do: a level falls
    /// due or the escalation runs out.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.next_at.filter(|_| self.phase == Phase::Running)
    }

    /// Whether every level of every pass was notified without an acknowledgement.
    pub fn is_exhausted(&self) -> bool {
        self.phase == Phase::Exhausted
    }
}
