//! The similar-incident index each node keeps in memory: built from the store
//! on start (or on the first search), then caught up from the event log before
//! every search, so an incident declared, edited or noted on any node is found
//! by the next search on every node. The store stays the only record; the
//! index is a cache of it that can always be rebuilt.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use tocsin_core::model::Incident;
use tocsin_core::similar::{Config, Index, SimilarDoc};
use tocsin_store::{Store, StoreError};
use tokio::sync::{Mutex, RwLock};

/// Incidents read per query while building.
const LOAD_BATCH: i64 = 2000;

/// Most results a search returns.
pub const MAX_RESULTS: usize = 50;

/// The index and how far into the event log it has read.
#[derive(Default)]
pub struct SimilarIndex {
    inner: RwLock<Inner>,
    // One catch-up at a time; searches wait for it rather than each reading
    // the same events.
    refresh: Mutex<()>,
}

#[derive(Default)]
struct Inner {
    index: Index,
    loaded: bool,
    /// Newest event id read.
    last_event: i64,
    /// Event ids within the lookback window already applied.
    seen: BTreeSet<i64>,
    /// How long the first build took.
    build_ms: u64,
}

/// What the index holds, for `/api/v1/similar/status` and the logs.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct IndexStatus {
    /// Incidents indexed.
    pub incidents: usize,
    /// Newest event applied.
    pub last_event: i64,
    /// Milliseconds the first build took.
    pub build_ms: u64,
}

impl SimilarIndex {
    /// Builds the index if it is not built yet, then applies the events since
    /// the last catch-up.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let _one = self.refresh.lock().await;
        if !self.inner.read().await.loaded {
            return self.build(store).await;
        }
        let from = self.inner.read().await.last_event - store.event_lookback();
        let touches = store.incident_touches(from).await?;
        let mut ids = HashSet::new();
        let mut applied = Vec::new();
        {
            let inner = self.inner.read().await;
            for &(event, incident) in &touches.events {
                if event > inner.last_event || !inner.seen.contains(&event) {
                    ids.insert(incident);
                    applied.push(event);
                }
            }
        }
        let mut docs = Vec::with_capacity(ids.len());
        for id in ids {
            docs.push((id, store.similar_doc(id).await?));
        }
        let mut inner = self.inner.write().await;
        for (id, doc) in docs {
            match doc {
                Some(d) => inner.index.upsert(&d),
                None => {
                    inner.index.remove(id);
                }
            }
        }
        inner.last_event = inner.last_event.max(touches.last_event_id);
        inner.seen.extend(applied);
        let floor = inner.last_event - store.event_lookback();
        inner.seen = inner.seen.split_off(&(floor + 1));
        Ok(())
    }

    async fn build(&self, store: &Store) -> Result<(), StoreError> {
        let started = Instant::now();
        // Read the log's position first: whatever changes while the
        // incidents are read is applied again by the next catch-up.
        let last_event = store.incident_touches(i64::MAX).await?.last_event_id;
        let mut index = Index::new(Config::default());
        let mut after = 0;
        loop {
            let docs = store.similar_docs_after(after, LOAD_BATCH).await?;
            let Some(last) = docs.last() else { break };
            after = last.id;
            for d in &docs {
                index.upsert(d);
            }
        }
        let build_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            incidents = index.len(),
            ms = build_ms,
            "similar-incident index built"
        );
        let mut inner = self.inner.write().await;
        *inner = Inner {
            index,
            loaded: true,
            last_event: last_event - store.event_lookback(),
            seen: BTreeSet::new(),
            build_ms,
        };
        Ok(())
    }

    /// The `k` past incidents most like `query`, best first, with scores;
    /// `exclude` is never returned.
    pub async fn search(
        &self,
        store: &Store,
        query: &SimilarDoc,
        k: usize,
        exclude: Option<i64>,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        self.refresh(store).await?;
        Ok(self.inner.read().await.index.search(query, k, exclude))
    }

    /// What the index holds now.
    pub async fn status(&self) -> IndexStatus {
        let inner = self.inner.read().await;
        IndexStatus {
            incidents: inner.index.len(),
            last_event: inner.last_event,
            build_ms: inner.build_ms,
        }
    }
}

/// One similar incident as the API and the pages show it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SimilarIncident {
    /// Its id.
    pub id: i64,
    /// `INC-n`.
    pub number: String,
    /// Title.
    pub title: String,
    /// Lifecycle status.
    pub status: String,
    /// Severity.
    pub severity: String,
    /// Affected services.
    pub service_ids: Vec<i64>,
    /// When it was declared.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was resolved, if it was.
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// How long it took to resolve, milliseconds.
    pub time_to_resolve_ms: Option<i64>,
    /// What caused it, as recorded.
    pub root_cause: Option<String>,
    /// How it was resolved, as recorded.
    pub resolution_summary: Option<String>,
    /// The postmortem reviewing it, if there is one (`/postmortems/{id}`).
    pub postmortem_id: Option<i64>,
    /// Relevance (BM25F, higher is more similar); comparable within one search only.
    pub score: f64,
}

impl SimilarIncident {
    /// The shown form of a ranked incident.
    pub fn of(i: &Incident, postmortem_id: Option<i64>, score: f64) -> SimilarIncident {
        SimilarIncident {
            id: i.id,
            number: i.number.clone(),
            title: i.title.clone(),
            status: i.status.as_str().to_string(),
            severity: i.severity.clone(),
            service_ids: i.service_ids.clone(),
            created_at: i.created_at,
            resolved_at: i.resolved_at,
            time_to_resolve_ms: i
                .resolved_at
                .map(|r| (r - i.created_at).num_milliseconds().max(0)),
            root_cause: i.root_cause.clone(),
            resolution_summary: i.resolution_summary.clone(),
            postmortem_id,
            score: (score * 1000.0).round() / 1000.0,
        }
    }
}

/// Ranks past incidents like `query` and reads them, skipping any that
/// vanished between the two.
pub async fn similar(
    state: &crate::AppState,
    query: &SimilarDoc,
    k: usize,
    exclude: Option<i64>,
) -> Result<Vec<SimilarIncident>, StoreError> {
    let hits = state
        .similar
        .search(&state.store, query, k.min(MAX_RESULTS), exclude)
        .await?;
    let mut out = Vec::with_capacity(hits.len());
    for (id, score) in hits {
        match state.store.incident(id).await {
            Ok(i) => {
                let postmortem = state.store.postmortem_of_incident(id).await?;
                out.push(SimilarIncident::of(&i, postmortem, score));
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
