//! Time is explicit: logic takes `now` as an argument, and the edges get it from a [`Clock`].

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};

/// A point in time, UTC, millisecond precision as stored.
pub type Timestamp = DateTime<Utc>;

/// Where "now" comes from; the server holds one, tests inject a [`FakeClock`].
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        from_millis(Utc::now().timestamp_millis())
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<Mutex<Timestamp>>);

impl FakeClock {
    /// A fake clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        FakeClock(Arc::new(Mutex::new(start)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("clock lock");
        *t += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        *self.0.lock().expect("clock lock") = to;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// Converts stored milliseconds since the Unix epoch to a timestamp.
pub fn from_millis(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Converts a timestamp to stored milliseconds since the Unix epoch.
pub fn to_millis(t: Timestamp) -> i64 {
    t.timestamp_millis()
}
