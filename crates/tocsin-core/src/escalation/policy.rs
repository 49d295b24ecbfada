//! Escalation policies as written, their validation, and the plan they give.

use std::collections::BTreeSet;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Invalid;

/// Longest delay before escalating to the next level: a day.
pub const MAX_DELAY_MINUTES: u32 = 1440;
/// Most times the whole policy may repeat after its first pass.
pub const MAX_REPEAT: u32 = 9;
/// Most levels a policy may have.
pub const MAX_LEVELS: usize = 20;
/// Most targets one level may have.
pub const MAX_TARGETS: usize = 50;

/// Who a level pages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One user.
    User(i64),
    /// Whoever is on call on the schedule when the level is notified.
    Schedule(i64),
    /// Every member of the team.
    Team(i64),
    /// Whoever the first level of another policy targets (a hand-off).
    Policy(i64),
}

/// One level of a policy: who to page, and how long to wait for an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Who this level pages.
    pub targets: Vec<Target>,
    /// Minutes to wait, unacknowledged, before escalating to the next level.
    pub delay_minutes: u32,
}

/// Ordered levels, repeated `repeat` more times after the first pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    /// The levels, first paged first.
    pub levels: Vec<Level>,
    /// How many times the whole policy runs again after the first pass.
    pub repeat: u32,
}

/// One step of the plan: level `level` (0 is the first) of pass `round` (0 is the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Index into the policy's levels.
    pub level: usize,
    /// Pass through the policy: 0 is the first, `repeat` the last.
    pub round: u32,
    /// When it is notified, counted from the start of the escalation.
    pub at_offset: Duration,
}

impl EscalationPolicy {
    /// Checks the policy on its own and its hand-offs to other policies.
    ///
    /// `own_id` is the policy's id when it is already stored (a new policy has
    /// none, so nothing can refer back to it yet); `lookup` finds another policy
    /// by id. A hand-off to an unknown policy, or one that leads back to this
    /// policy, is refused naming the target (`levels[2].targets[0]`).
    pub fn validate(
        &self,
        own_id: Option<i64>,
        lookup: &dyn Fn(i64) -> Option<EscalationPolicy>,
    ) -> Result<(), Invalid> {
        if self.levels.is_empty() {
            return Err(Invalid::new("levels", "a policy needs at least one level"));
        }
        if self.levels.len() > MAX_LEVELS {
            return Err(Invalid::new(
                "levels",
                format!("a policy has at most {MAX_LEVELS} levels"),
            ));
        }
        if self.repeat > MAX_REPEAT {
            return Err(Invalid::new(
                "repeat",
                format!("must be between 0 and {MAX_REPEAT}"),
            ));
        }
        for (i, level) in self.levels.iter().enumerate() {
            self.validate_level(i, level, own_id, lookup)?;
        }
        Ok(())
    }

    fn validate_level(
        &self,
        i: usize,
        level: &Level,
        own_id: Option<i64>,
        lookup: &dyn Fn(i64) -> Option<EscalationPolicy>,
    ) -> Result<(), Invalid> {
        if level.targets.is_empty() {
            return Err(Invalid::new(
                format!("levels[{i}].targets"),
                "every level needs at least one target",
            ));
        }
        if level.targets.len() > MAX_TARGETS {
            return Err(Invalid::new(
                format!("levels[{i}].targets"),
                format!("a level has at most {MAX_TARGETS} targets"),
            ));
        }
        if level.delay_minutes > MAX_DELAY_MINUTES {
            return Err(Invalid::new(
                format!("levels[{i}].delay_minutes"),
                format!("must be between 0 and {MAX_DELAY_MINUTES}"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (j, target) in level.targets.iter().enumerate() {
            let field = format!("levels[{i}].targets[{j}]");
            if !seen.insert(*target) {
                return Err(Invalid::new(field, "this target is already on the level"));
            }
            if let Target::Policy(other) = *target {
                check_hand_off(&field, other, own_id, lookup)?;
            }
        }
        Ok(())
    }

    /// The policy with every hand-off replaced by the first-level targets of the
    /// policy it names (recursively, without duplicates): the self-contained
    /// snapshot a running escalation keeps. Unknown policies hand off to nobody.
    pub fn snapshot(&self, lookup: &dyn Fn(i64) -> Option<EscalationPolicy>) -> EscalationPolicy {
        let levels = self
            .levels
            .iter()
            .map(|level| {
                let mut targets = Vec::new();
                let mut visited = BTreeSet::new();
                expand(&level.targets, lookup, &mut visited, &mut targets);
                Level {
                    targets,
                    delay_minutes: level.delay_minutes,
                }
            })
            .collect();
        EscalationPolicy {
            levels,
            repeat: self.repeat,
        }
    }

    /// The passes the policy actually runs after the first. When every delay is
    /// zero the repeats would all fall at the same instant and add only
    /// duplicate pages, so such a policy runs once.
    pub fn effective_repeat(&self) -> u32 {
        if self.cycle_minutes() == 0 {
            0
        } else {
            self.repeat
        }
    }

    /// Minutes one pass through every level takes.
    pub fn cycle_minutes(&self) -> i64 {
        self.levels.iter().map(|l| i64::from(l.delay_minutes)).sum()
    }

    /// When the escalation runs out, counted from its start, if nobody acknowledges.
    pub fn exhausted_offset(&self) -> Duration {
        Duration::minutes(self.cycle_minutes() * (i64::from(self.effective_repeat()) + 1))
    }
}

/// The plan of an undisturbed escalation: the first level at once, each next
/// level after the previous level's delay, the whole policy again
/// [`EscalationPolicy::effective_repeat`] times, then exhausted.
pub fn steps(policy: &EscalationPolicy) -> Vec<Step> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    for round in 0..=policy.effective_repeat() {
        for (level, l) in policy.levels.iter().enumerate() {
            out.push(Step {
                level,
                round,
                at_offset: Duration::minutes(offset),
            });
            offset += i64::from(l.delay_minutes);
        }
    }
    out
}

// Refuses a hand-off from `field` to `other` that is unknown or leads back to `own_id`.
fn check_hand_off(
    field: &str,
    other: i64,
    own_id: Option<i64>,
    lookup: &dyn Fn(i64) -> Option<EscalationPolicy>,
) -> Result<(), Invalid> {
    let mut stack = vec![other];
    let mut visited = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if Some(id) == own_id {
            let message = if id == other {
                "a policy cannot hand off to itself".to_string()
            } else {
                format!("hands off to policy {other}, which leads back to this policy")
            };
            return Err(Invalid::new(field, message));
        }
        if !visited.insert(id) {
            continue;
        }
        let Some(policy) = lookup(id) else {
            if id == other {
                return Err(Invalid::new(field, format!("no escalation policy {id}")));
            }
            continue;
        };
        // Any level's hand-off counts: a loop anywhere is refused even though
        // only first levels are followed when paging.
        for level in &policy.levels {
            for target in &level.targets {
                if let Target::Policy(next) = target {
                    stack.push(*next);
                }
            }
        }
    }
    Ok(())
}

fn expand(
    targets: &[Target],
    lookup: &dyn Fn(i64) -> Option<EscalationPolicy>,
    visited: &mut BTreeSet<i64>,
    out: &mut Vec<Target>,
) {
    for target in targets {
        match *target {
            Target::Policy(id) => {
                if !visited.insert(id) {
                    continue;
                }
                if let Some(first) = lookup(id).and_then(|p| p.levels.into_iter().next()) {
                    expand(&first.targets, lookup, visited, out);
                }
            }
            t if !out.contains(&t) => out.push(t),
            _ => {}
        }
    }
}
