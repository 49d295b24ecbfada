//! Workflows and runbooks: the pure part of automation.
//!
//! A workflow is YAML users write ([`parse`]): a trigger, conditions, steps and
//! limits. A run of it is a small stored [`RunState`] the engine advances one
//! step at a time: [`next`] says the one thing to do now, [`apply`] records
//! what came of it. Nothing here does I/O; the engine resolves, calls, waits
//! and stores, and asks this module what follows.
//!
//! Templates and conditions are minijinja (see [`crate::template`]) over the
//! run's context:
//!
//! | name | what |
//! | --- | --- |
//! | `incident` | the incident as the API shows it, plus `services` (names) and `url` |
//! | `alert` | the alert, for alert triggers |
//! | `event` | the change (`field`, `from`, `to`, `by`), for change triggers |
//! | `inputs` | a manual run's inputs |
//! | `trigger` | `kind`, and `at` |
//! | `steps.ID` | an earlier step's `status`, `outputs` and `error` |
//! | `vars.NAME` | variables captured from HTTP responses |
//! | `run` | `id`, `workflow_id`, `version_id` |
//! | `secrets.NAME` | a secret, by name only; never stored or shown |

pub mod action;
pub mod cron;
pub mod definition;
pub mod guard;
pub mod net;
pub mod plan;
pub mod run;
pub mod runbook;
pub mod secrets;
pub mod step;
pub mod text;
pub mod trigger;
pub mod yaml;

#[cfg(test)]
mod examples;
#[cfg(test)]
mod proptests;

pub use action::Action;
pub use cron::Cron;
pub use definition::{parse, Definition, Limits};
pub use net::{NetDenied, NetPolicy, TargetUrl};
pub use plan::{plan, PlannedStep};
pub use run::{apply, next, render_step, Decision, Outcome, RunError, RunState, RunStatus};
pub use secrets::{redact, Redactor};
pub use step::{Step, StepPath};
pub use text::{Expr, Span, Template};
pub use trigger::{Event, Trigger};
