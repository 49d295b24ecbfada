//! What the similar-incident index reads: each incident's text (title,
//! description, root cause, alert summaries, notes) and services, in batches by
//! id for the first load, and which incidents changed since an event, so that
//! every node's in-memory index catches up from the one event log.

use std::collections::BTreeMap;

use sqlx::Row;
use tocsin_core::similar::SimilarDoc;

use crate::incidents::parse_doc;
use crate::{Backend, Store, StoreError};

/// Events re-read behind the newest one seen. PostgreSQL hands out event ids
/// when a transaction inserts, not when it commits, so an event may become
/// visible after one with a higher id; SQLite has one writer and no such gap.
pub const EVENT_LOOKBACK: i64 = 256;

/// Events after a point in the log that touch incidents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentTouches {
    /// `(event id, incident id)`, by event id.
    pub events: Vec<(i64, i64)>,
    /// The newest event id in the log (0 when it is empty).
    pub last_event_id: i64,
}

impl Store {
    /// The index documents of incidents with ids above `after`, at most
    /// `limit` of them, by id.
    pub async fn similar_docs_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<SimilarDoc>, StoreError> {
        let rows = sqlx::query("SELECT id, doc FROM incidents WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let Some(last) = rows.last().map(|r| r.get::<i64, _>(0)) else {
            return Ok(Vec::new());
        };
        let range = (after, last);
        let mut alerts = self.texts_between("alerts", "summary", range).await?;
        let mut notes = self.texts_between("notes", "body", range).await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let incident = parse_doc(Some(r.get(1)), id)?;
                Ok(SimilarDoc::of(
                    &incident,
                    alerts.remove(&id).unwrap_or_default(),
                    notes.remove(&id).unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// The index document of one incident; `None` when there is no such incident.
    pub async fn similar_doc(&self, id: i64) -> Result<Option<SimilarDoc>, StoreError> {
        let mut docs = self.similar_docs_after(id - 1, 1).await?;
        Ok(docs.pop().filter(|d| d.id == id))
    }

    /// Incident events with ids above `after` (their incidents' text or
    /// services may have changed), and the newest event id.
    pub async fn incident_touches(&self, after: i64) -> Result<IncidentTouches, StoreError> {
        let rows = sqlx::query(
            "SELECT id, incident_id FROM events WHERE id > $1 AND incident_id IS NOT NULL \
             ORDER BY id",
        )
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        let last_event_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(IncidentTouches {
            events: rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            last_event_id,
        })
    }

    /// How far behind the newest seen event to look again (see [`EVENT_LOOKBACK`]).
    pub fn event_lookback(&self) -> i64 {
        match self.backend {
            Backend::Sqlite => 0,
            Backend::Postgres => EVENT_LOOKBACK,
        }
    }

    /// `column` of `table` for incidents with ids in `(from, to]`, by incident, oldest first.
    async fn texts_between(
        &self,
        table: &str,
        column: &str,
        (from, to): (i64, i64),
    ) -> Result<BTreeMap<i64, Vec<String>>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT incident_id, {column} FROM {table} \
             WHERE incident_id > $1 AND incident_id <= $2 ORDER BY incident_id, id"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for r in &rows {
            out.entry(r.get(0)).or_default().push(r.get(1));
        }
        Ok(out)
    }
}
