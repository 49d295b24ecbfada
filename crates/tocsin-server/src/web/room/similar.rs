//! The room's "Similar incidents" panel: the past incidents most like this one
//! (by text and service), with how each was resolved and how long it took,
//! linking to their rooms. A failing search leaves the rest of the room working.

use tocsin_core::model::Incident;

use crate::state::AppState;
use crate::web::common::{elapsed, Chrome};

/// Past incidents shown.
const SHOWN: usize = 5;

/// One past incident in the panel.
pub(crate) struct SimilarRow {
    pub number: String,
    pub title: String,
    pub status: String,
    pub severity: String,
    pub declared: String,
    /// "resolved in 1 h 5 min", or empty while open.
    pub took: String,
    /// Root cause and resolution as recorded, each possibly empty.
    pub root_cause: String,
    pub resolution: String,
    /// `/postmortems/{id}` when one reviews it.
    pub postmortem: Option<i64>,
}

/// What the panel shows.
pub(crate) struct SimilarPanel {
    pub rows: Vec<SimilarRow>,
    /// The search failed (the room still renders).
    pub failed: bool,
}

pub(crate) async fn panel(state: &AppState, chrome: &Chrome, inc: &Incident) -> SimilarPanel {
    let found = match state.store.similar_doc(inc.id).await {
        Ok(Some(doc)) => crate::similar::similar(state, &doc, SHOWN, Some(inc.id)).await,
        Ok(None) => Ok(Vec::new()),
        Err(e) => Err(e),
    };
    match found {
        Ok(hits) => SimilarPanel {
            rows: rows(chrome, hits),
            failed: false,
        },
        Err(e) => {
            tracing::warn!(incident = inc.id, error = %e, "similar incidents unavailable");
            SimilarPanel {
                rows: Vec::new(),
                failed: true,
            }
        }
    }
}

/// The shown rows of ranked incidents.
pub(crate) fn rows(chrome: &Chrome, hits: Vec<crate::similar::SimilarIncident>) -> Vec<SimilarRow> {
    hits.into_iter()
        .map(|s| SimilarRow {
            took: s
                .resolved_at
                .map(|r| format!("resolved in {}", elapsed(s.created_at, r)))
                .unwrap_or_default(),
            declared: chrome.time(&s.created_at),
            number: s.number,
            title: s.title,
            status: s.status,
            severity: s.severity,
            root_cause: s.root_cause.unwrap_or_default(),
            resolution: s.resolution_summary.unwrap_or_default(),
            postmortem: s.postmortem_id,
        })
        .collect()
}
