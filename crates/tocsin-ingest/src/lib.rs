//! Alert sources. Each parses its own wire format into [`AlertEvent`]s and
//! decides nothing else: routing, dedup and incidents happen downstream.
//!
//! [`AlertEvent`]: tocsin_core::alert::AlertEvent

pub mod alertmanager;
pub mod email;
pub mod fuzzing;
pub mod generic;
pub mod pagerduty;
