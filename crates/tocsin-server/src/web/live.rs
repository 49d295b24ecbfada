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
/// How long to wait before reading the log again after it could not be read.
const RETRY: Duration = Duration::from_secs(2);
/// How often an open stream checks that its session is still signed in.
const RECHECK: Duration = Duration::from_secs(60);

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
        let mut tailer = self.tailer.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        if tailer.as_ref().is_none_or(|h| h.is_finished()) {
            *tailer = Some(tokio::spawn(tail(self.clone(), store.clone())));
        }
        rx
    }

    /// The tailer asks to stop when nobody listens; decided under the same lock
    /// `subscribe` takes, so a browser arriving just then is never left without one.
    fn may_stop(&self) -> bool {
        let mut tailer = self.tailer.lock().unwrap_or_else(|e| e.into_inner());
        if self.tx.receiver_count() == 0 || *self.closed.borrow() {
            *tailer = None;
            true
        } else {
            false
        }
    }
}

async fn tail(live: Arc<Live>, store: tocsin_store::Store) {
    let mut closed = live.closed.subscribe();
    // Start at the newest event; until it can be read, wait (never replay the log).
    let mut high = loop {
        match store.last_event_id().await {
            Ok(h) => break h,
            Err(e) => {
                tracing::warn!(error = %e, "live updates: cannot read the event log");
                if live.may_stop() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = closed.changed() => {}
                }
            }
        }
    };
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    if let Ok(rows) = store.event_heads(high - WINDOW, BATCH).await {
        seen.extend(rows.iter().map(|r| r.0));
    }
    loop {
        if live.may_stop() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = closed.changed() => {}
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
                    if shown(&entity, incident_id) {
                        let _ = live.tx.send(Change {
                            id,
                            entity,
                            incident_id,
                            kind,
                        });
                    }
                }
            }
            seen = seen.split_off(&(high - WINDOW));
            if !full {
                break;
            }
        }
    }
}

/// What browsers are told about: incidents and what pages about them show.
/// Changes to people, tokens and keys stay out (the event log is admin-only).
fn shown(entity: &str, incident_id: Option<i64>) -> bool {
    incident_id.is_some()
        || matches!(
            entity,
            "incident" | "alert" | "silence" | "maintenance_window" | "service" | "schedule"
        )
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/live", get(stream))
}

async fn stream(
    State(state): State<AppState>,
    _who: AsViewer,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let rx = state.live.subscribe(&state.store);
    let closed = state.live.closed.subscribe();
    // A stream ends within a minute of its session (signed out, deactivated).
    let secret = super::session::cookie(&headers, super::session::COOKIE_NAME)
        .unwrap_or("")
        .to_string();
    let signed_in = move || {
        let state = state.clone();
        let secret = secret.clone();
        async move { matches!(state.store.session(&secret, state.now()).await, Ok(Some(_))) }
    };
    Sse::new(changes(rx, closed, signed_in)).keep_alive(KeepAlive::default())
}

fn changes<F, Fut>(
    rx: broadcast::Receiver<Change>,
    closed: watch::Receiver<bool>,
    signed_in: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let next_check = tokio::time::Instant::now() + RECHECK;
    futures_util::stream::unfold(
        (rx, closed, signed_in, next_check),
        |(mut rx, mut closed, signed_in, mut next_check)| async move {
            loop {
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
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            Event::default().event("reload").data("{}")
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = closed.changed() => return None,
                    _ = tokio::time::sleep_until(next_check) => {
                        if !signed_in().await {
                            return None;
                        }
                        next_check = tokio::time::Instant::now() + RECHECK;
                        continue;
                    }
                };
                return Some((Ok(event), (rx, closed, signed_in, next_check)));
            }
        },
    )
}
