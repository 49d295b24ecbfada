//! The hand-off to delivery: the one interface between paging (this crate) and
//! sending (email, SMS, voice, push, chat, webhooks).
//!
//! A notification request is durable before delivery sees it: it is a row of the
//! outbox (`notification_requests`), committed as `handed` in the transaction that
//! made it due, and leased to that node's sender. [`Delivery::handed`] is then
//! called with the rows, after that commit, on the node that committed them:
//! the delivery worker ([`crate::sender::Sender`]) sends them at once. After a
//! crash between the commit and the send, the rows are still `sending` with a
//! lease that runs out, and any node's worker takes them over under the same
//! idempotency key.

use std::sync::{Arc, Mutex};

pub use tocsin_store::HandedNotification;

/// Where handed notification requests go. Called on the job runner's task:
/// return quickly (queue the work), never block on the network.
pub trait Delivery: Send + Sync + 'static {
    /// Requests just committed as handed, oldest first.
    fn handed(&self, requests: &[HandedNotification]);
}

/// Keeps every request handed, in order (tests and the latency benchmark).
#[derive(Debug, Default, Clone)]
pub struct RecordingDelivery {
    /// What was handed, with the instant it was handed.
    pub handed: Arc<Mutex<Vec<(std::time::Instant, HandedNotification)>>>,
    /// Woken on every hand-off.
    pub notify: Arc<tokio::sync::Notify>,
}

impl RecordingDelivery {
    /// A copy of the requests handed so far.
    pub fn requests(&self) -> Vec<HandedNotification> {
        self.handed
            .lock()
            .map(|h| h.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }
}

impl Delivery for RecordingDelivery {
    fn handed(&self, requests: &[HandedNotification]) {
        let now = std::time::Instant::now();
        if let Ok(mut h) = self.handed.lock() {
            h.extend(requests.iter().map(|r| (now, r.clone())));
        }
        self.notify.notify_waiters();
    }
}
