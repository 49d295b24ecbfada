//! Heartbeat monitors: CRUD, pings, and the missed-ping transition that raises
//! an alert through the same `apply_alert` as every source, in one transaction.

use serde_json::{json, Map, Value};
use sqlx::Row;
use tocsin_core::alert::{AlertAction, AlertEvent, AlertSeverity, DedupKey};
use tocsin_core::heartbeat::{dedup_key, due_at, Heartbeat, HeartbeatState};
use tocsin_core::model::IntegrationKey;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;

use crate::alerts::AlertOutcome;
use crate::batch::Inbound;
use crate::events::{audit, Actor};
use crate::secrets::{hash_secret, random};
use crate::tx::WriteTx;
use crate::{NewSecret, Store, StoreError};

/// Ping keys start with this, so a leaked one is recognisable.
const KEY_PREFIX: &str = "hb_";

const COLUMNS: &str = "id, service_id, name, prefix, interval_seconds, grace_seconds, state, \
    last_ping_at, due_at, created_at";

fn heartbeat(r: &sqlx::any::AnyRow) -> Result<Heartbeat, StoreError> {
    Ok(Heartbeat {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        interval_seconds: r.try_get("interval_seconds")?,
        grace_seconds: r.try_get("grace_seconds")?,
        state: HeartbeatState::parse(&r.try_get::<String, _>("state")?)
            .unwrap_or(HeartbeatState::Waiting),
        last_ping_at: r
            .try_get::<Option<i64>, _>("last_ping_at")?
            .map(from_millis),
        due_at: from_millis(r.try_get("due_at")?),
        created_at: from_millis(r.try_get("created_at")?),
    })
}

/// Changes to a heartbeat; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatChanges {
    /// New name.
    pub name: Option<String>,
    /// New interval, seconds.
    pub interval_seconds: Option<i64>,
    /// New grace period, seconds.
    pub grace_seconds: Option<i64>,
    /// Another service for its alerts.
    pub service_id: Option<i64>,
}

/// What a ping did.
#[derive(Debug, Clone)]
pub struct Ping {
    /// The heartbeat after the ping.
    pub heartbeat: Heartbeat,
    /// The state it was in before.
    pub was: HeartbeatState,
}

// Heartbeats have no integration key row: id 0 tells `apply_alert` to store none.
fn alert_key(hb: &Heartbeat) -> IntegrationKey {
    IntegrationKey {
        id: 0,
        service_id: hb.service_id,
        name: format!("heartbeat {}", hb.name),
        prefix: hb.prefix.clone(),
        created_at: hb.created_at,
        revoked_at: None,
        config: Default::default(),
    }
}

fn alert_event(hb: &Heartbeat, action: AlertAction, summary: String) -> Inbound {
    let mut labels = Map::new();
    labels.insert("heartbeat".into(), Value::String(hb.name.clone()));
    let details = json!({ "heartbeat_id": hb.id, "interval_seconds": hb.interval_seconds,
        "grace_seconds": hb.grace_seconds, "last_ping_at": hb.last_ping_at, "due_at": hb.due_at });
    Inbound {
        service_id: hb.service_id,
        raw: details.to_string(),
        event: AlertEvent {
            action,
            dedup_key: DedupKey::parse("dedup_key", &dedup_key(hb.id))
                .expect("a heartbeat dedup key is short and non-empty"),
            summary,
            source: hb.name.clone(),
            severity: AlertSeverity::Critical,
            labels,
            details,
            links: Vec::new(),
            integration: "heartbeat",
        },
    }
}

impl Store {
    /// Creates a heartbeat on a service; its ping key is returned only now.
    pub async fn create_heartbeat(
        &self,
        service_id: i64,
        name: &str,
        interval_seconds: i64,
        grace_seconds: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<NewSecret<Heartbeat>, StoreError> {
        let secret = format!("{KEY_PREFIX}{}", random(32).to_lowercase());
        let mut w = self.write().await?;
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM services WHERE id = $1")
            .bind(service_id)
            .fetch_one(&mut *w.tx)
            .await?;
        if exists == 0 {
            return Err(StoreError::not_found(format!("service {service_id}")));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO heartbeats (service_id, name, key_hash, prefix, interval_seconds, grace_seconds, state, due_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'waiting', $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(service_id)
        .bind(name)
        .bind(hash_secret(&secret))
        .bind(&secret[..KEY_PREFIX.len() + 6])
        .bind(interval_seconds)
        .bind(grace_seconds)
        .bind(to_millis(due_at(now, interval_seconds, grace_seconds)))
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let record = heartbeat(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "heartbeat",
            record.id,
            "heartbeat.created",
            json!({ "heartbeat": record }),
        )
        .await?;
        w.commit().await?;
        Ok(NewSecret { record, secret })
    }

    /// A service's heartbeats.
    pub async fn heartbeats(&self, service_id: i64) -> Result<Vec<Heartbeat>, StoreError> {
        self.service(service_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM heartbeats WHERE service_id = $1 ORDER BY id"
        ))
        .bind(service_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(heartbeat).collect()
    }

    /// Reads one heartbeat.
    pub async fn heartbeat(&self, id: i64) -> Result<Heartbeat, StoreError> {
        let row = self
            .row_by_id(COLUMNS, "heartbeats", id, "heartbeat")
            .await?;
        heartbeat(&row)
    }

    async fn lock_heartbeat(&self, w: &mut WriteTx, id: i64) -> Result<Heartbeat, StoreError> {
        let row = self
            .lock_row_by_id(w, COLUMNS, "heartbeats", id, "heartbeat")
            .await?;
        heartbeat(&row)
    }

    /// Renames a heartbeat, changes its timing (the deadline moves with it) or
    /// moves it to another service (not while it is down).
    pub async fn update_heartbeat(
        &self,
        id: i64,
        c: &HeartbeatChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Heartbeat, StoreError> {
        let mut w = self.write().await?;
        let old = self.lock_heartbeat(&mut w, id).await?;
        let service_id = c.service_id.unwrap_or(old.service_id);
        if service_id != old.service_id {
            let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM services WHERE id = $1")
                .bind(service_id)
                .fetch_one(&mut *w.tx)
                .await?;
            if exists == 0 {
                return Err(Invalid::new("service_id", format!("no service {service_id}")).into());
            }
            // Its open alert belongs to the old service: moving would orphan it.
            if old.state == HeartbeatState::Down {
                return Err(StoreError::conflict(
                    "service_id",
                    "the heartbeat is down: ping it (or delete it) before moving it",
                ));
            }
        }
        let interval = c.interval_seconds.unwrap_or(old.interval_seconds);
        let grace = c.grace_seconds.unwrap_or(old.grace_seconds);
        let since = old.last_ping_at.unwrap_or(old.created_at);
        let row = sqlx::query(&format!(
            "UPDATE heartbeats SET name = $1, interval_seconds = $2, grace_seconds = $3, due_at = $4, \
             service_id = $5 WHERE id = $6 RETURNING {COLUMNS}"
        ))
        .bind(c.name.as_deref().unwrap_or(&old.name))
        .bind(interval)
        .bind(grace)
        .bind(to_millis(due_at(since, interval, grace)))
        .bind(service_id)
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        let new = heartbeat(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "heartbeat",
            id,
            "heartbeat.updated",
            json!({ "from": old, "to": new }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a heartbeat; the alert of a heartbeat that is down resolves with it.
    pub async fn delete_heartbeat(
        &self,
        id: i64,
        settings: &IncidentSettings,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let hb = self.lock_heartbeat(&mut w, id).await?;
        if hb.state == HeartbeatState::Down {
            let ev = alert_event(
                &hb,
                AlertAction::Resolve,
                format!("Heartbeat {} deleted", hb.name),
            );
            self.apply_alert(&mut w, settings, &alert_key(&hb), &ev, now)
                .await?;
        }
        crate::events::delete_audited(
            w,
            "heartbeats",
            "heartbeat",
            id,
            actor,
            now,
            json!({ "heartbeat": hb }),
        )
        .await
    }

    /// Records a ping by its key: the deadline moves on, and a heartbeat that was
    /// down comes up and resolves its alert. `None`: no heartbeat has that key.
    pub async fn ping_heartbeat(
        &self,
        secret: &str,
        settings: &IncidentSettings,
        now: Timestamp,
    ) -> Result<Option<Ping>, StoreError> {
        if !secret.starts_with(KEY_PREFIX) {
            return Ok(None);
        }
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM heartbeats WHERE key_hash = $1")
            .bind(hash_secret(secret))
            .fetch_optional(&self.pool)
            .await?;
        let Some(id) = id else { return Ok(None) };
        let mut w = self.write().await?;
        let old = match self.lock_heartbeat(&mut w, id).await {
            Ok(h) => h,
            // Deleted since the lookup.
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let row = sqlx::query(&format!(
            "UPDATE heartbeats SET state = 'up', last_ping_at = $1, due_at = $2 WHERE id = $3 RETURNING {COLUMNS}"
        ))
        .bind(to_millis(now))
        .bind(to_millis(due_at(now, old.interval_seconds, old.grace_seconds)))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        let new = heartbeat(&row)?;
        // Only changes of state are logged: a ping every minute must not flood the log.
        if old.state != HeartbeatState::Up {
            let mut data =
                json!({ "heartbeat_id": id, "name": new.name, "from": old.state, "to": new.state });
            if old.state == HeartbeatState::Down {
                let summary = format!("Heartbeat {} is pinging again", new.name);
                let ev = alert_event(&new, AlertAction::Resolve, summary);
                let outcome = self
                    .apply_alert(&mut w, settings, &alert_key(&new), &ev, now)
                    .await?;
                if let AlertOutcome::Updated { alert_id, .. } = outcome {
                    data["alert_id"] = json!(alert_id);
                }
            }
            audit(
                &mut w,
                now,
                &Actor::system(),
                "heartbeat",
                id,
                "heartbeat.up",
                data,
            )
            .await?;
        }
        w.commit().await?;
        Ok(Some(Ping {
            heartbeat: new,
            was: old.state,
        }))
    }

    /// Heartbeats whose deadline has passed and that are not down yet.
    pub async fn due_heartbeats(&self, now: Timestamp) -> Result<Vec<i64>, StoreError> {
        let ids = sqlx::query_scalar(
            "SELECT id FROM heartbeats WHERE state <> 'down' AND due_at < $1 ORDER BY due_at LIMIT 1000",
        )
        .bind(to_millis(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    /// The earliest deadline of a heartbeat that is not down: when to check next.
    pub async fn next_heartbeat_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let due: Option<i64> =
            sqlx::query_scalar("SELECT MIN(due_at) FROM heartbeats WHERE state <> 'down'")
                .fetch_one(&self.pool)
                .await?;
        Ok(due.map(from_millis))
    }

    /// Marks a heartbeat down and raises its alert, if its deadline has passed and
    /// it is not down already (checked under the row lock, so two checkers, or a
    /// checker racing a ping, raise at most one alert). Returns whether it went down.
    pub async fn heartbeat_missed(
        &self,
        id: i64,
        settings: &IncidentSettings,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        let hb = match self.lock_heartbeat(&mut w, id).await {
            Ok(h) => h,
            Err(StoreError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        if hb.state == HeartbeatState::Down || hb.due_at >= now {
            return Ok(false);
        }
        sqlx::query("UPDATE heartbeats SET state = 'down' WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        let since = match hb.last_ping_at {
            Some(t) => format!("last ping {}", t.to_rfc3339()),
            None => format!(
                "never pinged since its creation {}",
                hb.created_at.to_rfc3339()
            ),
        };
        let summary = format!(
            "Heartbeat {} missed: {since} (interval {} s, grace {} s)",
            hb.name, hb.interval_seconds, hb.grace_seconds
        );
        let ev = alert_event(&hb, AlertAction::Trigger, summary);
        let outcome = self
            .apply_alert(&mut w, settings, &alert_key(&hb), &ev, now)
            .await?;
        let mut data = json!({ "heartbeat_id": id, "name": hb.name, "from": hb.state, "to": HeartbeatState::Down });
        match outcome {
            AlertOutcome::Opened {
                alert_id,
                incident_id,
            } => {
                data["alert_id"] = json!(alert_id);
                data["incident_id"] = json!(incident_id);
            }
            AlertOutcome::Repeated { alert_id } => data["alert_id"] = json!(alert_id),
            _ => {}
        }
        audit(
            &mut w,
            now,
            &Actor::system(),
            "heartbeat",
            id,
            "heartbeat.down",
            data,
        )
        .await?;
        w.commit().await?;
        Ok(true)
    }
}
