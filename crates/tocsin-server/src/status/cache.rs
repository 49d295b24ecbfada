//! Rendered public pages in memory, so readers never cost a database query.
//!
//! Two things are cached. The *index* is every page's id, slug, domain,
//! visibility and version (one small query); requests find their page in it.
//! Each page's *rendering* is every body it serves, made at once from one
//! snapshot, tagged with the version it was read at.
//!
//! When is a rendering stale, and who notices?
//! - This node committed a change: the store's watch moves. The next request
//!   (or the refresher, woken by the same watch) reloads the index, sees a
//!   newer version and renders again. Requests check the watch, a memory read,
//!   so a change is visible on the very next request without any task running.
//! - Another node committed one: nothing here moves, so the refresher polls the
//!   index every second — one query per node, however many readers.
//! - Time passed: a rendering from before the page's midnight (the bars move
//!   a day) is rendered again, and so is one older than a minute, but only if
//!   the page shows something that moves with the clock — the uptime of a
//!   component that is not operational or had downtime in the window
//!   ([`super::view::ages_with_time`]). A page with nothing of the kind is not
//!   rendered again until it changes or its midnight comes, so an idle
//!   instance renders nothing. Either way, by the refresher ahead of readers,
//!   or by the first request that finds it.
//!
//! One render per page at a time: the others wait for it and take its result.
//! When the database is unreachable, the last rendering keeps being served,
//! and for a few seconds after a failure nobody waits on another attempt.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use tocsin_core::time::Timestamp;
use tocsin_store::status::PageVersion;
use tocsin_store::Store;
use tokio::sync::watch;

use super::render::{self, Rendered};
use crate::state::AppState;

/// Longest a rendering whose page ages with time is served before it is made again.
const MAX_AGE: Duration = Duration::seconds(60);
/// How often the refresher asks the database what changed (on any node).
const POLL: StdDuration = StdDuration::from_secs(1);
/// Longest a request waits on the database before it takes what it has.
const WAIT: StdDuration = StdDuration::from_secs(5);
/// After a failed read, how long requests serve what they have without retrying.
const BACKOFF: StdDuration = StdDuration::from_secs(5);

/// What the cache has done, for tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Pages rendered (each a read of the page's snapshot).
    pub renders: u64,
    /// Index loads (each one query).
    pub index_loads: u64,
    /// Reads that failed (the last rendering was served instead).
    pub failures: u64,
}

#[derive(Default)]
struct Counters {
    renders: AtomicU64,
    index_loads: AtomicU64,
    failures: AtomicU64,
}

/// Every page's bodies, rendered once and served from memory.
pub struct StatusCache {
    /// The store's count of committed status changes on this node.
    changes: watch::Receiver<u64>,
    index: RwLock<Arc<Index>>,
    /// One index load at a time; holds when the last one failed.
    index_load: tokio::sync::Mutex<Option<Instant>>,
    slots: Mutex<HashMap<i64, Arc<Slot>>>,
    counters: Counters,
}

#[derive(Default)]
struct Index {
    loaded: bool,
    /// The watch's value before the load: a later change makes it stale.
    seen: u64,
    pages: Vec<PageVersion>,
}

#[derive(Default)]
struct Slot {
    current: RwLock<Option<Arc<Rendered>>>,
    /// One render at a time; holds when the last one failed.
    render: tokio::sync::Mutex<Option<Instant>>,
}

impl Slot {
    fn current(&self) -> Option<Arc<Rendered>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl StatusCache {
    /// An empty cache following `store`'s changes.
    pub fn new(store: &Store) -> StatusCache {
        StatusCache {
            changes: store.status_changes(),
            index: RwLock::default(),
            index_load: tokio::sync::Mutex::new(None),
            slots: Mutex::default(),
            counters: Counters::default(),
        }
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            renders: self.counters.renders.load(Ordering::Relaxed),
            index_loads: self.counters.index_loads.load(Ordering::Relaxed),
            failures: self.counters.failures.load(Ordering::Relaxed),
        }
    }

    fn index_now(&self) -> Arc<Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The index, reloaded first if this node changed something since (or `force`).
    async fn index(&self, store: &Store, force: bool) -> Arc<Index> {
        let cur = self.index_now();
        if cur.loaded && !force && cur.seen == *self.changes.borrow() {
            return cur;
        }
        let Ok(mut failed) = tokio::time::timeout(WAIT, self.index_load.lock()).await else {
            return cur;
        };
        // Whoever held the lock may have loaded what we need.
        let cur = self.index_now();
        let seen = *self.changes.borrow();
        if cur.loaded && !force && cur.seen == seen {
            return cur;
        }
        // Every request consults the index (custom domains): while the
        // database is down, they must not each wait on it.
        if failed.is_some_and(|t| t.elapsed() < BACKOFF) {
            return cur;
        }
        self.counters.index_loads.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(WAIT, store.status_page_versions()).await {
            Ok(Ok(pages)) => {
                *failed = None;
                let new = Arc::new(Index {
                    loaded: true,
                    seen,
                    pages,
                });
                *self.index.write().unwrap_or_else(|e| e.into_inner()) = new.clone();
                new
            }
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                tracing::warn!(error = %why, "status pages: cannot read page versions");
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                *failed = Some(Instant::now());
                cur
            }
        }
    }

    /// The page at `/status/<slug>`.
    pub(crate) async fn by_slug(&self, store: &Store, slug: &str) -> Option<PageVersion> {
        let idx = self.index(store, false).await;
        idx.pages.iter().find(|p| p.slug == slug).cloned()
    }

    /// The page whose custom domain is `host` (lower-case, no port).
    pub(crate) async fn by_domain(&self, store: &Store, host: &str) -> Option<PageVersion> {
        let idx = self.index(store, false).await;
        idx.pages
            .iter()
            .find(|p| p.domain.as_deref() == Some(host))
            .cloned()
    }

    fn slot(&self, page_id: i64) -> Arc<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(page_id)
            .or_default()
            .clone()
    }

    /// Page `pv`'s rendering: from memory when current, else rendered (once,
    /// however many ask); the last one when the database fails; `None` when
    /// there is none at all.
    pub(crate) async fn rendered(
        &self,
        state: &AppState,
        pv: &PageVersion,
    ) -> Option<Arc<Rendered>> {
        let slot = self.slot(pv.id);
        let now = state.now();
        let current = slot.current();
        if current
            .as_deref()
            .is_some_and(|r| fresh(r, pv.version, now))
        {
            return current;
        }
        let Ok(mut failed) = tokio::time::timeout(WAIT, slot.render.lock()).await else {
            return current;
        };
        // The render we waited for may have done the work.
        let current = slot.current();
        if current
            .as_deref()
            .is_some_and(|r| fresh(r, pv.version, now))
        {
            return current;
        }
        // Just failed: serve what there is (or nothing) rather than have every
        // reader wait on the database again.
        if failed.is_some_and(|t| t.elapsed() < BACKOFF) {
            return current;
        }
        let base = state.public_url.as_deref().unwrap_or("");
        self.counters.renders.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(
            WAIT,
            render::render(&state.store, pv.id, base, state.status_email, now),
        )
        .await
        {
            Ok(Ok(r)) => {
                *failed = None;
                let r = Arc::new(r);
                *slot.current.write().unwrap_or_else(|e| e.into_inner()) = Some(r.clone());
                Some(r)
            }
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                tracing::warn!(page = pv.id, error = %why, "status page: cannot render; serving the last rendering");
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                *failed = Some(Instant::now());
                current
            }
        }
    }

    /// Polls the index and renders again every page that needs it, so readers
    /// rarely wait; forgets pages that are gone.
    pub async fn refresh(&self, state: &AppState) {
        let idx = self.index(&state.store, true).await;
        if !idx.loaded {
            return;
        }
        for pv in &idx.pages {
            self.rendered(state, pv).await;
        }
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| idx.pages.iter().any(|p| p.id == *id));
    }
}

/// Current: rendered at this version or later, on the page's today, and less
/// than a minute ago if what it shows ages (a clock set back counts as stale).
fn fresh(r: &Rendered, version: i64, now: Timestamp) -> bool {
    r.version >= version
        && now >= r.rendered_at
        && (!r.ages || now - r.rendered_at < MAX_AGE)
        && now.with_timezone(&r.tz).date_naive() == r.local_date
}

/// Keeps the cache of `state` current until `stop` turns true: every second
/// (changes on other nodes, time), and at once after a change on this node.
/// Started by `tocsin serve`; tests may start it too, but a request sees this
/// node's changes without it.
pub async fn run_refresher(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut changes = state.store.status_changes();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *stop.borrow() {
            break;
        }
        state.status.refresh(&state).await;
        tokio::select! {
            stopped = stop.changed() => {
                if stopped.is_err() {
                    break;
                }
            }
            _ = tick.tick() => {}
            moved = changes.changed() => {
                if moved.is_err() {
                    // The store is gone; polling alone would only log failures.
                    break;
                }
            }
        }
    }
}
