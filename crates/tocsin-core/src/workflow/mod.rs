//! Workflows and runbooks: the pure part of automation (being built up).

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
