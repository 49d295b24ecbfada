//! Escalation: who is paged, when, and how, as pure functions of a policy
//! snapshot, the events of an incident and the time.
//!
//! A policy's first level is notified when the incident is triggered; unless
//! someone acknowledges, each next level after the previous level's delay; then
//! the whole policy again `repeat` times; then the escalation is exhausted.
//! A level may hand off to another policy: it then pages whoever that policy's
//! first level pages (its own delays and repeats do not run), and a hand-off
//! that leads back to the policy is refused. A policy whose delays are all zero
//! pages every level at once, once.
//!
//! The engine stores an [`EscalationState`] per incident, asks it what is
//! [`due`](EscalationState::due), expands each step with [`resolve_step`] to
//! notification requests whose idempotency keys are the same on every
//! recomputation, and hands them to delivery.

mod contact;
mod policy;
mod resolve;
mod rules;
mod state;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;

pub use contact::{
    contact_label, Channel, ContactAddress, MAX_CHAT, MAX_LABEL, MAX_NOTIFICATION_RULES,
    MAX_PUSH_TOKEN, MAX_URL,
};
pub use policy::{
    steps, EscalationPolicy, Level, Step, Target, MAX_DELAY_MINUTES, MAX_LEVELS, MAX_REPEAT,
    MAX_TARGETS,
};
pub use resolve::{resolve_step, Resolver, StepResolution, UserNotifications};
pub use rules::{
    idempotency_key, notification_requests, until_acknowledged, validate_rules, ContactKind,
    ContactMethod, NotificationRequest, NotificationRule, Urgency, WorkingHours, WorkingHoursParts,
};
pub use state::{next_phase, DueStep, EscalationError, EscalationState, Event, Phase, TRANSITIONS};
