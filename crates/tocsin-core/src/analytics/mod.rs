//! Learning from incidents, in numbers: incident metrics (TTD, TTA, TTM, TTR,
//! time between failures, weekly trends), mergeable duration histograms for
//! rollups, alert noise, on-call load, and the SVG charts that show them.
//!
//! Everything here is a pure function of typed facts the store extracts
//! ([`IncidentFacts`], [`noise::AlertFacts`], [`oncall::PageFact`] and shifts);
//! the definitions of every number live in the module that computes it.

pub mod facts;
pub mod histogram;
pub mod metrics;
pub mod noise;
pub mod oncall;
pub mod stats;
pub mod svg;
#[cfg(test)]
mod tests;

pub use facts::{format_duration_ms, IncidentFacts, Metric};
pub use histogram::DurationHistogram;
pub use metrics::{
    report, weekly_trend, GroupBy, GroupKey, GroupReport, Rollup, RollupKey, Window,
};
pub use stats::Summary;
