//! Status pages: their settings, components and status history, published
//! incidents and maintenances, templates, subscribers and the subscriber
//! outbox. Every change bumps the page's `version` in the same transaction
//! (caches of rendered pages compare it) and appends its event to the log;
//! a post about an internal incident puts its events on that incident's
//! timeline too.

mod components;
mod deliveries;
mod pages;
mod posts;
mod snapshot;
mod subscribers;

pub use components::{
    ComponentChanges, GroupChanges, NewComponent, NewComponentGroup, StatusProposal,
};
pub use deliveries::{
    ClaimedStatusMessage, StatusDeliveryState, StatusDeliveryStats, StatusDeliveryView,
    StatusMessageKind, FANOUT_BATCH, MAX_STATUS_ERROR,
};
pub use pages::{NewStatusPage, PageVersion, StatusPageChanges};
pub use posts::{ComponentChange, NewPost, NewTemplate, NewUpdate, PostChanges, TemplateChanges};
pub use snapshot::page_url;
pub use subscribers::{NewSubscriber, SubscribeOutcome, SUBSCRIBER_ACTOR};

use sqlx::Row;
use tocsin_core::status_page::{ComponentStatus, Impact, PostKind, PostStatus};
use tocsin_core::time::{from_millis, to_millis, Timestamp};

use crate::tx::WriteTx;
use crate::StoreError;

/// Locks page `page_id` for the rest of the write transaction. Every write to a
/// page's components, groups, posts and subscribers takes this lock first, so
/// writes to one page queue in one order — page, then post, then components,
/// then jobs — and PostgreSQL never finds two of them waiting on each other.
/// `FOR NO KEY UPDATE`: rows that merely reference the page (outbox rows, history)
/// can still be written meanwhile. SQLite writers are one at a time already.
pub(crate) async fn lock_page(
    store: &crate::Store,
    w: &mut WriteTx,
    page_id: i64,
) -> Result<(), StoreError> {
    let found: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM status_pages WHERE id = $1{}",
        store.for_no_key_update()
    ))
    .bind(page_id)
    .fetch_optional(&mut *w.tx)
    .await?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::not_found(format!("status page {page_id}")))
}

/// Locks the page that row `id` of `table` (a table with a `page_id`) belongs
/// to; not found names `what`.
pub(crate) async fn lock_page_of(
    store: &crate::Store,
    w: &mut WriteTx,
    table: &str,
    id: i64,
    what: &str,
) -> Result<i64, StoreError> {
    let page_id: Option<i64> =
        sqlx::query_scalar(&format!("SELECT page_id FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *w.tx)
            .await?;
    let page_id = page_id.ok_or_else(|| StoreError::not_found(format!("{what} {id}")))?;
    lock_page(store, w, page_id).await?;
    Ok(page_id)
}

/// Marks everything the page shows as changed: caches render it again.
pub(crate) async fn bump_page(
    w: &mut WriteTx,
    page_id: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let n =
        sqlx::query("UPDATE status_pages SET version = version + 1, updated_at = $1 WHERE id = $2")
            .bind(to_millis(now))
            .bind(page_id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found(format!("status page {page_id}")));
    }
    w.status_changed = true;
    Ok(())
}

impl crate::Store {
    /// Changes on this node: the value moves on after every committed
    /// transaction that changed what a status page shows. Other nodes' changes
    /// show only in [`crate::Store::status_page_versions`].
    pub fn status_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.status_watch.subscribe()
    }
}

pub(crate) fn ts(r: &sqlx::any::AnyRow, col: &str) -> Result<Timestamp, StoreError> {
    Ok(from_millis(r.try_get(col)?))
}

pub(crate) fn opt_ts(r: &sqlx::any::AnyRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(r.try_get::<Option<i64>, _>(col)?.map(from_millis))
}

pub(crate) fn flag(r: &sqlx::any::AnyRow, col: &str) -> Result<bool, StoreError> {
    Ok(r.try_get::<i64, _>(col)? != 0)
}

// Stored values were written from these enums; a value this build does not
// know (written by a newer node) reads as the safest neighbour.
pub(crate) fn component_status(s: &str) -> ComponentStatus {
    ComponentStatus::parse("status", s).unwrap_or(ComponentStatus::Operational)
}

pub(crate) fn post_status(s: &str) -> PostStatus {
    PostStatus::from_stored(s).unwrap_or(PostStatus::Investigating)
}

pub(crate) fn post_kind(s: &str) -> PostKind {
    PostKind::parse(s).unwrap_or(PostKind::Incident)
}

pub(crate) fn impact(s: &str) -> Impact {
    Impact::from_stored(s).unwrap_or(Impact::None)
}

/// `id IN (…)` for a list of ids known to be integers (never user text).
pub(crate) fn id_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        "NULL".into()
    } else {
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
