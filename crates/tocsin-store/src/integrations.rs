//! Integrations (a service's integration keys) beyond their secrets: reading one,
//! and changing its name, routing rules and webhook templates.

use serde_json::{json, Value};
use tocsin_core::integration::Templates;
use tocsin_core::model::IntegrationKey;
use tocsin_core::routing::RoutingRule;
use tocsin_core::time::Timestamp;
use tocsin_core::Invalid;

use crate::events::{audit, Actor};
use crate::secrets::{key, KEY_COLUMNS};
use crate::{Store, StoreError};

/// Changes to an integration; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct IntegrationChanges {
    /// New name.
    pub name: Option<String>,
    /// New routing rules (replacing the old list).
    pub routing_rules: Option<Vec<RoutingRule>>,
    /// New templates (replacing the old set).
    pub templates: Option<Templates>,
}

impl Store {
    /// One integration key by id, whatever its service.
    pub async fn integration_key_by_id(&self, id: i64) -> Result<IntegrationKey, StoreError> {
        let row = self
            .row_by_id(KEY_COLUMNS, "integration_keys", id, "integration key")
            .await?;
        key(&row)
    }

    /// One of a service's integration keys.
    pub async fn integration_key(
        &self,
        service_id: i64,
        id: i64,
    ) -> Result<IntegrationKey, StoreError> {
        self.service(service_id).await?;
        match self.integration_key_by_id(id).await {
            Ok(k) if k.service_id == service_id => Ok(k),
            Ok(_) | Err(StoreError::NotFound { .. }) => Err(StoreError::not_found(format!(
                "integration key {id} of service {service_id}"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Live integration keys whose routing rules send events to `service_id`.
    pub(crate) async fn keys_routing_to(&self, service_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM integration_keys WHERE revoked_at IS NULL AND config <> '{{}}' ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut ids = Vec::new();
        for r in &rows {
            let k = key(r)?;
            if k.config
                .routing_rules
                .iter()
                .any(|r| r.service_id == service_id)
            {
                ids.push(k.id);
            }
        }
        Ok(ids)
    }

    /// Which of `services` holds an open alert with `dedup_key`, if any: where an
    /// acknowledge or resolve goes when routing rules spread an integration's
    /// alerts over several services and the event lacks the labels they matched.
    pub async fn open_alert_service(
        &self,
        dedup_key: &str,
        services: &[i64],
    ) -> Result<Option<i64>, StoreError> {
        if services.is_empty() {
            return Ok(None);
        }
        let list: Vec<String> = (0..services.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT service_id FROM alerts WHERE dedup_key = $1 AND status <> 'resolved' \
             AND service_id IN ({}) ORDER BY last_seen DESC, id DESC LIMIT 1",
            list.join(", ")
        );
        let mut q = sqlx::query_scalar(&sql).bind(dedup_key);
        for s in services {
            q = q.bind(*s);
        }
        Ok(q.fetch_optional(&self.pool).await?)
    }

    /// Changes an integration's name, routing rules or templates. Every rule's
    /// target service must exist; the change is one event on the log.
    pub async fn update_integration_key(
        &self,
        service_id: i64,
        id: i64,
        changes: &IntegrationChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<IntegrationKey, StoreError> {
        let old = self.integration_key(service_id, id).await?;
        let mut new = old.clone();
        if let Some(n) = &changes.name {
            new.name = n.clone();
        }
        if let Some(r) = &changes.routing_rules {
            new.config.routing_rules = r.clone();
        }
        if let Some(t) = &changes.templates {
            new.config.templates = t.clone();
        }
        let mut diff = Vec::new();
        let mut note = |field: &str, old: Value, new: Value| {
            if old != new {
                diff.push(json!({ "field": field, "old": old, "new": new }));
            }
        };
        note("name", json!(old.name), json!(new.name));
        note(
            "routing_rules",
            json!(old.config.routing_rules),
            json!(new.config.routing_rules),
        );
        note(
            "templates",
            json!(old.config.templates),
            json!(new.config.templates),
        );
        if diff.is_empty() {
            return Ok(old);
        }
        let mut w = self.write().await?;
        for (i, rule) in new.config.routing_rules.iter().enumerate() {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM services WHERE id = $1")
                .bind(rule.service_id)
                .fetch_optional(&mut *w.tx)
                .await?;
            if found.is_none() {
                return Err(Invalid::new(
                    format!("routing_rules[{i}].service_id"),
                    format!("service {} does not exist", rule.service_id),
                )
                .into());
            }
        }
        let config = serde_json::to_string(&new.config)
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
        sqlx::query("UPDATE integration_keys SET name = $1, config = $2 WHERE id = $3")
            .bind(&new.name)
            .bind(config)
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        audit(
            &mut w,
            now,
            actor,
            "integration_key",
            id,
            "integration_key.updated",
            json!({ "service_id": service_id, "prefix": old.prefix, "changes": diff }),
        )
        .await?;
        w.commit().await?;
        // After the commit, so the next event through this node sees the new rules.
        self.forget_integration_key(id);
        Ok(new)
    }
}
