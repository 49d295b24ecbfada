//! Change events: what changed on a service, shown beside its incidents.

use serde_json::json;
use sqlx::Row;
use tocsin_core::alert::{ChangeEvent, NewChange};
use tocsin_core::model::IntegrationKey;
use tocsin_core::time::{from_millis, to_millis, Timestamp};

use crate::events::{append, Actor, NewEvent};
use crate::{Store, StoreError};

const COLUMNS: &str = "id, service_id, summary, source, occurred_at, received_at, details, links";

fn change(r: &sqlx::any::AnyRow) -> Result<ChangeEvent, StoreError> {
    Ok(ChangeEvent {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        summary: r.try_get("summary")?,
        source: r.try_get("source")?,
        occurred_at: from_millis(r.try_get("occurred_at")?),
        received_at: from_millis(r.try_get("received_at")?),
        details: serde_json::from_str(&r.try_get::<String, _>("details")?).unwrap_or_default(),
        links: serde_json::from_str(&r.try_get::<String, _>("links")?).unwrap_or_default(),
    })
}

impl Store {
    /// Records a change on `key`'s service.
    pub async fn record_change(
        &self,
        key: &IntegrationKey,
        c: &NewChange,
        now: Timestamp,
    ) -> Result<ChangeEvent, StoreError> {
        use tocsin_core::alert::{no_nul, value_without_nul};
        // PostgreSQL stores no NUL in text or JSON.
        let mut details = c.details.clone();
        value_without_nul(&mut details);
        let mut links = json!(c.links);
        value_without_nul(&mut links);
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO change_events (service_id, integration_key_id, summary, source, occurred_at, received_at, details, links) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(key.service_id)
        .bind(key.id)
        .bind(no_nul(&c.summary))
        .bind(no_nul(&c.source))
        .bind(to_millis(c.occurred_at.unwrap_or(now)))
        .bind(to_millis(now))
        .bind(details.to_string())
        .bind(links.to_string())
        .fetch_one(&mut *w.tx)
        .await?;
        let created = change(&row)?;
        let actor = Actor {
            user_id: None,
            name: format!("{} (integration key)", key.name),
        };
        let data = json!({ "change_id": created.id, "service_id": key.service_id, "summary": created.summary });
        append(
            &mut w,
            NewEvent {
                at: now,
                actor: &actor,
                entity: "change",
                entity_id: created.id,
                incident_id: None,
                kind: "change.received",
                data,
            },
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// Changes on any of `service_ids` that happened in [from, to), newest first.
    pub async fn changes(
        &self,
        service_ids: &[i64],
        from: Timestamp,
        to: Timestamp,
        limit: i64,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let mut out = Vec::new();
        for s in service_ids {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM change_events WHERE service_id = $1 AND occurred_at >= $2 AND occurred_at < $3 \
                 ORDER BY occurred_at DESC, id DESC LIMIT $4"
            ))
            .bind(*s)
            .bind(to_millis(from))
            .bind(to_millis(to))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                out.push(change(r)?);
            }
        }
        out.sort_by(|a, b| b.occurred_at.cmp(&a.occurred_at).then(b.id.cmp(&a.id)));
        out.truncate(limit as usize);
        Ok(out)
    }
}
