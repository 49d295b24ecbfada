//! Workflows and runbooks: the pure part of automation (being built up).

pub mod cron;
pub mod text;
pub mod trigger;
pub mod yaml;
