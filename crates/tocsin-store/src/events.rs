//! The append-only event log.

use serde_json::Value;
use sqlx::Row;
use tocsin_core::model::Event;
use tocsin_core::time::{from_millis, to_millis, Timestamp};

use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Who makes a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The acting user, if any.
    pub user_id: Option<i64>,
    /// Display name: the user's name, `system`, or an integration's name.
    pub name: String,
}

impl Actor {
    /// Tocsin itself (bootstrap, migrations, timers).
    pub fn system() -> Actor {
        Actor {
            user_id: None,
            name: "system".into(),
        }
    }
}

/// What one event says; `append` writes it inside the caller's transaction.
pub(crate) struct NewEvent<'a> {
    pub at: Timestamp,
    pub actor: &'a Actor,
    pub entity: &'static str,
    pub entity_id: i64,
    pub incident_id: Option<i64>,
    pub kind: &'a str,
    pub data: Value,
}

pub(crate) async fn append(w: &mut WriteTx, e: NewEvent<'_>) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO events (at, actor_id, actor, entity, entity_id, incident_id, kind, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(to_millis(e.at))
    .bind(e.actor.user_id)
    .bind(&e.actor.name)
    .bind(e.entity)
    .bind(e.entity_id)
    .bind(e.incident_id)
    .bind(e.kind)
    .bind(e.data.to_string())
    .fetch_one(&mut *w.tx)
    .await?;
    crate::workflows::after_append(w, id, e.kind, to_millis(e.at)).await?;
    Ok(id)
}

/// Deletes row `id` of `table`, records `<entity>.deleted` with `data` (what was
/// deleted) in the same transaction, and commits.
pub(crate) async fn delete_audited(
    mut w: WriteTx,
    table: &str,
    entity: &'static str,
    id: i64,
    actor: &Actor,
    now: Timestamp,
    data: Value,
) -> Result<(), StoreError> {
    sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
    audit(
        &mut w,
        now,
        actor,
        entity,
        id,
        &format!("{entity}.deleted"),
        data,
    )
    .await?;
    w.commit().await
}

/// Appends an event about a directory entity (service, user, team, token, key).
pub(crate) async fn audit(
    w: &mut WriteTx,
    at: Timestamp,
    actor: &Actor,
    entity: &'static str,
    entity_id: i64,
    kind: &str,
    data: Value,
) -> Result<i64, StoreError> {
    append(
        w,
        NewEvent {
            at,
            actor,
            entity,
            entity_id,
            incident_id: None,
            kind,
            data,
        },
    )
    .await
}

/// Appends an event about the incident itself to its timeline.
pub(crate) async fn incident_event(
    w: &mut WriteTx,
    at: Timestamp,
    actor: &Actor,
    incident_id: i64,
    kind: &'static str,
    data: Value,
) -> Result<i64, StoreError> {
    let rules = crate::workflows::runbooks::may_match_runbooks(kind, &data);
    let e = NewEvent {
        at,
        actor,
        entity: "incident",
        entity_id: incident_id,
        incident_id: Some(incident_id),
        kind,
        data,
    };
    let id = append(w, e).await?;
    // Runbooks whose rules now match attach in the same transaction.
    if rules {
        crate::workflows::runbooks::auto_attach(w, incident_id, at).await?;
    }
    Ok(id)
}

fn event(row: &sqlx::any::AnyRow) -> Result<Event, StoreError> {
    let data: String = row.try_get("data")?;
    Ok(Event {
        id: row.try_get("id")?,
        at: from_millis(row.try_get("at")?),
        actor_id: row.try_get("actor_id")?,
        actor: row.try_get("actor")?,
        entity: row.try_get("entity")?,
        entity_id: row.try_get("entity_id")?,
        incident_id: row.try_get("incident_id")?,
        kind: row.try_get("kind")?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
    })
}

const COLUMNS: &str = "id, at, actor_id, actor, entity, entity_id, incident_id, kind, data";

impl Store {
    /// An incident's timeline, oldest first.
    pub async fn timeline(&self, incident_id: i64) -> Result<Vec<Event>, StoreError> {
        self.incident_exists(incident_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE incident_id = $1 ORDER BY id"
        ))
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event).collect()
    }

    /// The audit log: events after `after_id`, oldest first, at most `limit`.
    pub async fn events(&self, after_id: i64, limit: i64) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event).collect()
    }

    /// The newest event's id (0 when there is none).
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(id.unwrap_or(0))
    }

    /// Events after `after_id` without their data, oldest first, at most `limit`:
    /// (id, entity, incident id, kind). What live pages need to know to refresh.
    pub async fn event_heads(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, Option<i64>, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, entity, incident_id, kind FROM events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("entity")?,
                    r.try_get("incident_id")?,
                    r.try_get("kind")?,
                ))
            })
            .collect()
    }
}
