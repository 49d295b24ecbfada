//! Turning a due step into people and notification requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::policy::{EscalationPolicy, Target};
use super::rules::{
    notification_requests, ContactMethod, NotificationRequest, NotificationRule, Urgency,
    WorkingHours,
};
use super::state::DueStep;
use crate::time::Timestamp;

/// Who is on call and who is in a team, supplied by the caller (schedules live elsewhere).
pub trait Resolver {
    /// Users on call on schedule `schedule_id` at `at`.
    fn on_call(&self, schedule_id: i64, at: Timestamp) -> Vec<i64>;
    /// Members of team `team_id`.
    fn team_members(&self, team_id: i64) -> Vec<i64>;
}

/// A user's notification setup: contact methods, rules and optional working hours.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserNotifications {
    /// The user's contact methods.
    pub methods: Vec<ContactMethod>,
    /// The user's rules, in order (the index is part of the idempotency key).
    pub rules: Vec<NotificationRule>,
    /// When low-urgency notifications may reach them; none means any time.
    pub working_hours: Option<WorkingHours>,
}

/// What one due step came to: the people it reached, and who or what reached nobody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepResolution {
    /// The incident.
    pub incident_id: i64,
    /// The step.
    pub step: DueStep,
    /// Users the step's targets came to, each once, in target order.
    pub users: Vec<i64>,
    /// Targets that came to nobody (a schedule with nobody on call, an empty team).
    pub empty_targets: Vec<Target>,
    /// Users with no verified contact method ruled for this urgency.
    pub unreachable_users: Vec<i64>,
    /// The requests to hand to delivery.
    pub requests: Vec<NotificationRequest>,
}

impl StepResolution {
    /// Whether the step pages nobody at all: the engine records it on the timeline.
    pub fn pages_nobody(&self) -> bool {
        self.requests.is_empty()
    }
}

/// Expands a due step of a policy snapshot to users (schedule: on call at the
/// step's time; team: its members; user: the user), each once, and each user's
/// rules to requests. Hand-offs were expanded in the snapshot; any left reach nobody.
pub fn resolve_step(
    policy: &EscalationPolicy,
    incident_id: i64,
    step: &DueStep,
    urgency: Urgency,
    resolver: &dyn Resolver,
    people: &BTreeMap<i64, UserNotifications>,
) -> StepResolution {
    let mut users = Vec::new();
    let mut empty_targets = Vec::new();
    let targets = policy
        .levels
        .get(step.level)
        .map(|l| l.targets.as_slice())
        .unwrap_or_default();
    for target in targets {
        let found = match *target {
            Target::User(id) => vec![id],
            Target::Schedule(id) => resolver.on_call(id, step.at),
            Target::Team(id) => resolver.team_members(id),
            Target::Policy(_) => Vec::new(),
        };
        if found.is_empty() {
            empty_targets.push(*target);
        }
        for user in found {
            if !users.contains(&user) {
                users.push(user);
            }
        }
    }
    let mut requests = Vec::new();
    let mut unreachable_users = Vec::new();
    for user in &users {
        let mine = people
            .get(user)
            .map(|p| {
                notification_requests(
                    incident_id,
                    step,
                    *user,
                    &p.rules,
                    &p.methods,
                    urgency,
                    p.working_hours.as_ref(),
                )
            })
            .unwrap_or_default();
        if mine.is_empty() {
            unreachable_users.push(*user);
        }
        requests.extend(mine);
    }
    StepResolution {
        incident_id,
        step: *step,
        users,
        empty_targets,
        unreachable_users,
        requests,
    }
}
