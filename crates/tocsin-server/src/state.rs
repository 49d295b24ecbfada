//! What every request handler shares.

use std::sync::Arc;

use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{Clock, Timestamp};
use tocsin_store::Store;

use crate::metrics::Metrics;

/// Limits on what a request may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest JSON body, bytes.
    pub max_body_bytes: usize,
    /// Largest attachment, bytes.
    pub max_attachment_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Incident configuration.
    pub settings: Arc<IncidentSettings>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Request limits.
    pub limits: Limits,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Builds the state around a migrated store.
    pub fn new(
        store: Store,
        settings: IncidentSettings,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        AppState {
            store,
            settings: Arc::new(settings),
            clock,
            limits,
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
