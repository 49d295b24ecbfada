//! Tocsin's domain: types and pure logic with no I/O and no async.
//!
//! Everything that decides something about an incident (which status may follow
//! which, what priority an impact and urgency give, whether a custom field value
//! fits its schema) lives here, so the API, the UI, the CLI and the docs read
//! one source of truth.

pub mod action_link;
pub mod alert;
pub mod analytics;
pub mod auth;
pub mod change;
pub mod escalation;
pub mod fields;
pub mod grouping;
pub mod heartbeat;
pub mod ical;
pub mod incident;
pub mod integration;
pub mod invalid;
pub mod maintenance;
pub mod matcher;
pub mod model;
pub mod postmortem;
pub mod routing;
pub mod schedule;
pub mod settings;
pub mod silence;
pub mod similar;
pub mod status_page;
pub mod template;
pub mod time;
pub mod workflow;

pub use invalid::Invalid;
