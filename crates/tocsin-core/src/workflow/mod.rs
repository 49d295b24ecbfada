//! Workflows and runbooks: the pure part of automation (being built up).

pub mod action;
pub mod cron;
pub mod definition;
pub mod net;
pub mod run;
pub mod step;
pub mod text;
pub mod trigger;
pub mod yaml;
