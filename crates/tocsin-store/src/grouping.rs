//! Alerts into incidents: a service's alert rules (stored, one document per
//! service), which incident a new alert opens or joins, and the incident acting
//! on its alerts when someone acknowledges or resolves it.

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tocsin_core::alert::AlertEvent;
use tocsin_core::change::NewIncident;
use tocsin_core::grouping::{AlertRules, CompiledRules};
use tocsin_core::incident::{Level, Status};
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{to_millis, Timestamp};

use crate::events::{append, audit, Actor, NewEvent};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Group keys longer than this are stored as their SHA-256, so the index stays small.
const MAX_STORED_KEY: usize = 256;

fn stored_key(key: String) -> String {
    if key.len() <= MAX_STORED_KEY {
        key
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
    }
}

impl Store {
    /// A service's alert rules; the defaults when none are stored.
    pub async fn alert_rules(&self, service_id: i64) -> Result<AlertRules, StoreError> {
        self.service(service_id).await?;
        let doc: Option<String> =
            sqlx::query_scalar("SELECT rules FROM service_alert_rules WHERE service_id = $1")
                .bind(service_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(doc
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or_default())
    }

    /// Replaces a service's alert rules after checking them all; records
    /// `service.alert_rules_changed`. Nothing is written when a rule is invalid.
    pub async fn set_alert_rules(
        &self,
        settings: &IncidentSettings,
        service_id: i64,
        rules: &AlertRules,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<AlertRules, StoreError> {
        self.service(service_id).await?;
        rules.validate(settings)?;
        let doc = serde_json::to_string(rules).unwrap_or_default();
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO service_alert_rules (service_id, rules) VALUES ($1, $2) \
             ON CONFLICT (service_id) DO UPDATE SET rules = excluded.rules",
        )
        .bind(service_id)
        .bind(&doc)
        .execute(&mut *w.tx)
        .await?;
        audit(
            &mut w,
            now,
            actor,
            "service",
            service_id,
            "service.alert_rules_changed",
            json!({ "rules": rules }),
        )
        .await?;
        w.commit().await?;
        Ok(rules.clone())
    }

    async fn compiled_rules(
        &self,
        w: &mut WriteTx,
        service_id: i64,
    ) -> Result<std::sync::Arc<CompiledRules>, StoreError> {
        if let Some(r) = w.cache.rules.get(&service_id) {
            return Ok(r.clone());
        }
        let compiled = std::sync::Arc::new(self.read_rules(w, service_id).await?);
        w.cache.rules.insert(service_id, compiled.clone());
        Ok(compiled)
    }

    async fn read_rules(
        &self,
        w: &mut WriteTx,
        service_id: i64,
    ) -> Result<CompiledRules, StoreError> {
        let doc: Option<String> =
            sqlx::query_scalar("SELECT rules FROM service_alert_rules WHERE service_id = $1")
                .bind(service_id)
                .fetch_optional(&mut *w.tx)
                .await?;
        let Some(doc) = doc else {
            return Ok(CompiledRules::default());
        };
        // Stored rules were checked when written; should one not compile now, the
        // alert still gets an incident (the defaults) rather than being refused.
        let compiled = serde_json::from_str::<AlertRules>(&doc)
            .map_err(|e| e.to_string())
            .and_then(|r| r.compile().map_err(|e| e.to_string()));
        Ok(compiled.unwrap_or_else(|e| {
            tracing::warn!(service_id, error = %e, "stored alert rules unusable; using the defaults");
            CompiledRules::default()
        }))
    }

    /// The incident a new alert belongs to: the open incident of its group opened
    /// within the window, or a new one (severity and urgency from the rules).
    pub(crate) async fn incident_for_alert(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        service_id: i64,
        ev: &AlertEvent,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let rules = self.compiled_rules(w, service_id).await?;
        let key = match rules.group_key(ev) {
            None => None,
            Some(Ok(k)) => Some(stored_key(k)),
            Some(Err(e)) => {
                tracing::warn!(service_id, error = %e, "group key did not render; the alert opens its own incident");
                None
            }
        };
        if let (Some(key), Some(window)) = (&key, rules.window_minutes()) {
            // Nodes sharing PostgreSQL take the group one at a time, so two alerts of
            // a new group arriving at once on two nodes open one incident, not two.
            // (SQLite writers are already one at a time.)
            if self.backend == crate::Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(group_lock_id(service_id, key))
                    .execute(&mut *w.tx)
                    .await?;
            }
            let since = to_millis(now) - i64::from(window) * 60_000;
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT g.incident_id FROM incident_groups g JOIN incidents i ON i.id = g.incident_id \
                 WHERE g.service_id = $1 AND g.group_key = $2 AND g.opened_at > $3 \
                 AND i.status NOT IN ('resolved', 'closed') ORDER BY g.opened_at DESC, g.incident_id DESC LIMIT 1",
            )
            .bind(service_id)
            .bind(key)
            .bind(since)
            .fetch_optional(&mut *w.tx)
            .await?;
            if let Some(id) = found {
                // Locked and read again: an incident resolving at this moment on
                // another node must not gain an open alert.
                if self.lock_incident(w, id).await?.status.is_open() {
                    return Ok(id);
                }
            }
        }
        let class = rules.classify(settings, ev);
        let req = NewIncident {
            title: crate::alerts::title(&ev.summary),
            description: format!("{}\n\nSource: {}", ev.summary, ev.source),
            severity: class.severity,
            impact: Some(Level::Medium),
            urgency: Some(class.urgency),
            service_ids: vec![service_id],
            page: true,
            ..Default::default()
        };
        let inc = self.declare_in(w, settings, &req, None, actor, now).await?;
        self.page_in(w, &inc, actor, now, false).await?;
        if let Some(key) = key {
            sqlx::query(
                "INSERT INTO incident_groups (incident_id, service_id, group_key, opened_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(inc.id)
            .bind(service_id)
            .bind(key)
            .bind(to_millis(now))
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(inc.id)
    }

    /// The incident acts on its alerts after someone moved it to `status`: an
    /// incident being worked on acknowledges its triggered alerts, a resolved or
    /// closed one resolves its open alerts; one event per alert on its timeline.
    /// Alerts driving the incident (`follow_alerts`) never come through here, so
    /// the two cannot chase each other.
    pub(crate) async fn incident_acts_on_alerts(
        &self,
        w: &mut WriteTx,
        incident_id: i64,
        status: Status,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (to, which, kind) = match status {
            Status::Triggered => return Ok(()),
            Status::Resolved | Status::Closed => {
                ("resolved", "status <> 'resolved'", "alert.resolved")
            }
            _ => ("acknowledged", "status = 'triggered'", "alert.acknowledged"),
        };
        let now_ms = to_millis(now);
        let resolved_at = (to == "resolved").then_some(now_ms);
        let mut rows = sqlx::query(&format!(
            "UPDATE alerts SET status = $1, last_seen = $2, resolved_at = $3 WHERE incident_id = $4 AND {which} \
             RETURNING id, dedup_key, summary, severity, integration"
        ))
        .bind(to)
        .bind(now_ms)
        .bind(resolved_at)
        .bind(incident_id)
        .fetch_all(&mut *w.tx)
        .await?;
        rows.sort_by_key(|r| r.try_get::<i64, _>("id").unwrap_or_default());
        for r in rows {
            let alert_id: i64 = r.try_get("id")?;
            let data = json!({
                "alert_id": alert_id,
                "dedup_key": r.try_get::<String, _>("dedup_key")?,
                "summary": r.try_get::<String, _>("summary")?,
                "severity": r.try_get::<String, _>("severity")?,
                "integration": r.try_get::<String, _>("integration")?,
                "by_incident": true,
            });
            append(
                w,
                NewEvent {
                    at: now,
                    actor,
                    entity: "alert",
                    entity_id: alert_id,
                    incident_id: Some(incident_id),
                    kind,
                    data,
                },
            )
            .await?;
        }
        Ok(())
    }
}

// A stable 64-bit id for (service, group key): FNV-1a, the same on every node and build.
fn group_lock_id(service_id: i64, key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service_id.to_le_bytes().iter().chain(key.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_stored_hashed() {
        assert_eq!(stored_key("db/eu".into()), "db/eu");
        let long = "x".repeat(MAX_STORED_KEY + 1);
        let h = stored_key(long.clone());
        assert!(h.starts_with("sha256:") && h.len() == 7 + 64, "{h}");
        assert_eq!(h, stored_key(long));
        assert_ne!(h, stored_key("y".repeat(MAX_STORED_KEY + 1)));
    }
}
