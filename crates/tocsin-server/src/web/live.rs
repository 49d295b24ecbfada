//! Live updates: `GET /live` streams server-sent events, one per change in the
//! event log (its id, entity, incident and kind; never its data). Pages carry a
//! `data-live` scope and refresh their live regions from the server when a change
//! concerns them, so what a browser shows is always what the server renders.
//!
//! One tailer per node reads the log (every node sees every change, whichever
//! node made it) while at least one browser listens. On PostgreSQL ids can
//! commit out of order, so each read looks back a window of ids and skips those
//! already sent.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::session::AsViewer;
use crate::state::AppState;

/// How often the tailer reads the log while browsers listen.
const POLL: Duration = Duration::from_millis(250);
/// How many ids back each read looks, for commits that land out of id order.
const WINDOW: i64 = 256;
const BATCH: i64 = 500;

/// One change, as sent to browsers.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The event's id.
    pub id: i64,
    /// What changed: `incident`, `alert`, `service`, …
    pub entity: String,
    /// The incident it belongs to, if any.
    pub incident_id: Option<i64>,
    /// The event's kind, e.g. `incident.status_changed`.
    pub kind: String,
}

/// The node's live-update hub; cheap to share.
pub struct Live {
    tx: broadcast::Sender<Change>,
    tailer: Mutex<Option<JoinHandle<()>>>,
    closed: watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            tx: broadcast::channel(1024).0,
            tailer: Mutex::new(None),
            closed: watch::channel(false).0,
        }
    }
}

impl Live {
    /// Ends every stream (the server is shutting down: open streams would hold
    /// its graceful shutdown forever).
    pub fn close(&self) {
        let _ = self.closed.send(true);
    }

    fn subscribe(self: &Arc<Self>, store: &tocsin_store::Store) -> broadcast::Receiver<Change> {
        let rx = self.tx.subscribe();
        let mut tailer = self.tailer.lock().unwrap_or_else(|e| e.into_inner());
        if tailer.as_ref().is_none_or(|h| h.is_finished()) {
            *tailer = Some(tokio::spawn(tail(self.clone(), store.clone())));
        }
        rx
    }
}

async fn tail(live: Arc<Live>, store: tocsin_store::Store) {
    let mut closed = live.closed.subscribe();
    let mut high = match store.last_event_id().await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "live updates: cannot read the event log");
            0
        }
    };
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    if let Ok(rows) = store.event_heads(high - WINDOW, BATCH).await {
        seen.extend(rows.iter().map(|r| r.0));
    }
    loop {
        if *closed.borrow() || live.tx.receiver_count() == 0 {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = closed.changed() => return,
        }
        loop {
            let rows = match store.event_heads(high - WINDOW, BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "live updates: cannot read the event log");
                    break;
                }
            };
            let full = rows.len() as i64 == BATCH;
            for (id, entity, incident_id, kind) in rows {
                if seen.insert(id) {
                    high = high.max(id);
                    let _ = live.tx.send(Change {
                        id,
                        entity,
                        incident_id,
                        kind,
                    });
                }
            }
            seen = seen.split_off(&(high - WINDOW));
            if !full {
                break;
            }
        }
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/live", get(stream))
}

async fn stream(State(state): State<AppState>, _who: AsViewer) -> impl IntoResponse {
    let rx = state.live.subscribe(&state.store);
    let closed = state.live.closed.subscribe();
    Sse::new(changes(rx, closed)).keep_alive(KeepAlive::default())
}

fn changes(
    rx: broadcast::Receiver<Change>,
    closed: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold((rx, closed), |(mut rx, mut closed)| async move {
        if *closed.borrow() {
            return None;
        }
        let event = tokio::select! {
            got = rx.recv() => match got {
                Ok(c) => Event::default()
                    .event("change")
                    .id(c.id.to_string())
                    .data(serde_json::to_string(&c).unwrap_or_default()),
                // Too far behind to know what changed: refresh everything.
                Err(broadcast::error::RecvError::Lagged(_)) => Event::default().event("reload").data("{}"),
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = closed.changed() => return None,
        };
        Some((Ok(event), (rx, closed)))
    })
}
