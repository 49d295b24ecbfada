//! Background work over stored facts. Each module owns one kind of job and one
//! question ("which heartbeats are overdue?", "which escalation steps are
//! due?"), answers it from the database, and is woken by events rather than a
//! polling cycle.

pub mod delivery;
pub mod heartbeat;
pub mod jobs;
pub mod render;
pub mod sender;
pub mod status_mail;
pub mod suppression;
pub mod workflow;
