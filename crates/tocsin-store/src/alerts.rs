//! Alerts: one event applied to the alert with its (service, dedup key), and to
//! the incident that alert opened, in one transaction.

use serde_json::{json, Value};
use sqlx::Row;
use tocsin_core::alert::{Alert, AlertAction, AlertEvent, AlertSeverity, AlertStatus};
use tocsin_core::incident::Status;
use tocsin_core::model::IntegrationKey;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{from_millis, to_millis, Timestamp};

use crate::batch::Inbound;
use crate::events::{append, Actor, NewEvent};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Raw payloads are kept for inspection up to this size.
pub const MAX_RAW: usize = 64 * 1024;

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertOutcome {
    /// A new alert, and the incident it opened or joined.
    Opened { alert_id: i64, incident_id: i64 },
    /// A repeat trigger of an open alert.
    Repeated { alert_id: i64 },
    /// The open alert was acknowledged or resolved.
    Updated { alert_id: i64, status: AlertStatus },
    /// Acknowledge or resolve for no open alert: dropped, as PagerDuty does.
    Dropped,
    /// A new alert held by a silence, a maintenance window or flapping: stored, no incident.
    Suppressed { alert_id: i64, reason: String },
    /// A held alert that nothing holds any more opened its incident.
    Unsuppressed { alert_id: i64, incident_id: i64 },
}

pub(crate) const COLUMNS: &str =
    "id, service_id, incident_id, dedup_key, status, severity, summary, source, integration, \
    labels, details, links, count, first_seen, last_seen, resolved_at, suppressed_by";

pub(crate) fn alert(r: &sqlx::any::AnyRow) -> Result<Alert, StoreError> {
    let json = |col: &str| -> Result<Value, StoreError> {
        Ok(serde_json::from_str(&r.try_get::<String, _>(col)?).unwrap_or(Value::Null))
    };
    Ok(Alert {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        incident_id: r.try_get("incident_id")?,
        dedup_key: r.try_get("dedup_key")?,
        status: AlertStatus::parse(&r.try_get::<String, _>("status")?)
            .unwrap_or(AlertStatus::Triggered),
        severity: AlertSeverity::parse(&r.try_get::<String, _>("severity")?)
            .unwrap_or(AlertSeverity::Critical),
        summary: r.try_get("summary")?,
        source: r.try_get("source")?,
        integration: r.try_get("integration")?,
        labels: json("labels")?.as_object().cloned().unwrap_or_default(),
        details: json("details")?,
        links: serde_json::from_value(json("links")?).unwrap_or_default(),
        count: r.try_get("count")?,
        first_seen: from_millis(r.try_get("first_seen")?),
        last_seen: from_millis(r.try_get("last_seen")?),
        resolved_at: r.try_get::<Option<i64>, _>("resolved_at")?.map(from_millis),
        suppressed_by: r.try_get("suppressed_by")?,
    })
}

pub(crate) fn bounded(raw: &str) -> String {
    if raw.len() <= MAX_RAW {
        raw.to_string()
    } else {
        let mut end = MAX_RAW;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… [truncated from {} bytes]", &raw[..end], raw.len())
    }
}

pub(crate) fn title(summary: &str) -> String {
    let line = summary.lines().next().unwrap_or("").trim();
    let line = if line.is_empty() { "Alert" } else { line };
    if line.chars().count() <= 300 {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(299).collect::<String>())
    }
}

impl Store {
    pub(crate) async fn apply_alert(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        key: &IntegrationKey,
        inbound: &Inbound,
        now: Timestamp,
    ) -> Result<AlertOutcome, StoreError> {
        let (ev, raw, service_id) = (&inbound.event, inbound.raw.as_str(), inbound.service_id);
        let actor = Actor {
            user_id: None,
            name: format!("{} ({})", key.name, ev.integration),
        };
        let now_ms = to_millis(now);
        // The common case first: a repeat trigger of an open alert is one UPDATE.
        let known_not_open = ev.action == AlertAction::Trigger
            && w.cache
                .not_open
                .remove(&(service_id, ev.dedup_key.as_str().to_string()));
        if ev.action == AlertAction::Trigger && !known_not_open {
            // Repeats change only counters: the batch records them in one event.
            if let Some(id) = self
                .count_repeat(w, service_id, ev, raw, now_ms, false)
                .await?
            {
                return Ok(AlertOutcome::Repeated { alert_id: id });
            }
        }
        let open = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE service_id = $1 AND dedup_key = $2 AND status <> 'resolved'{}",
            self.for_update()
        ))
        .bind(service_id)
        .bind(ev.dedup_key.as_str())
        .fetch_optional(&mut *w.tx)
        .await?
        .map(|r| alert(&r))
        .transpose()?;
        match (ev.action, open) {
            (AlertAction::Trigger, None) => {
                if let Some(reason) = self.suppression(w, service_id, ev, now).await? {
                    return self
                        .open_suppressed(w, key, inbound, &actor, reason, now)
                        .await;
                }
                // Joins its group's open incident or declares one (grouping.rs).
                let incident_id = self
                    .incident_for_alert(w, settings, service_id, ev, &actor, now)
                    .await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO alerts (service_id, integration_key_id, incident_id, dedup_key, status, severity, summary, \
                     source, integration, labels, details, links, count, first_seen, last_seen, raw) \
                     VALUES ($1, $2, $3, $4, 'triggered', $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13) RETURNING id",
                )
                .bind(service_id)
                .bind(key.stored_id())
                .bind(incident_id)
                .bind(ev.dedup_key.as_str())
                .bind(ev.severity.as_str())
                .bind(&ev.summary)
                .bind(&ev.source)
                .bind(ev.integration)
                .bind(Value::Object(ev.labels.clone()).to_string())
                .bind(ev.details.to_string())
                .bind(json!(ev.links).to_string())
                .bind(now_ms)
                .bind(bounded(raw))
                .fetch_one(&mut *w.tx)
                .await?;
                self.alert_event(w, now, &actor, id, Some(incident_id), "alert.triggered", ev)
                    .await?;
                Ok(AlertOutcome::Opened {
                    alert_id: id,
                    incident_id,
                })
            }
            (AlertAction::Trigger, Some(a)) if a.suppressed_by.is_some() => {
                self.count_repeat(w, service_id, ev, raw, now_ms, true)
                    .await?;
                self.repeat_suppressed(w, settings, &actor, a.id, now).await
            }
            (AlertAction::Trigger, Some(a)) => {
                // Opened between the UPDATE above and the SELECT (another node): count it now.
                self.count_repeat(w, service_id, ev, raw, now_ms, false)
                    .await?;
                Ok(AlertOutcome::Repeated { alert_id: a.id })
            }
            (AlertAction::Acknowledge | AlertAction::Resolve, None) => Ok(AlertOutcome::Dropped),
            (action, Some(a)) => {
                let status = if action == AlertAction::Acknowledge {
                    AlertStatus::Acknowledged
                } else {
                    AlertStatus::Resolved
                };
                if a.status == status {
                    return Ok(AlertOutcome::Updated {
                        alert_id: a.id,
                        status,
                    });
                }
                let resolved_at = (status == AlertStatus::Resolved).then_some(now_ms);
                sqlx::query(
                    "UPDATE alerts SET status = $1, last_seen = $2, resolved_at = $3 WHERE id = $4",
                )
                .bind(status.as_str())
                .bind(now_ms)
                .bind(resolved_at)
                .bind(a.id)
                .execute(&mut *w.tx)
                .await?;
                let kind = if status == AlertStatus::Resolved {
                    "alert.resolved"
                } else {
                    "alert.acknowledged"
                };
                self.alert_event(w, now, &actor, a.id, a.incident_id, kind, ev)
                    .await?;
                if let Some(incident_id) = a.incident_id {
                    self.follow_alerts(w, settings, service_id, incident_id, status, &actor, now)
                        .await?;
                }
                Ok(AlertOutcome::Updated {
                    alert_id: a.id,
                    status,
                })
            }
        }
    }

    // A repeat updates what it says and keeps what it does not mention: summary,
    // severity and source always; labels merged; details and links only when given.
    // A held (suppressed) alert is counted only when `held` says so: its repeats
    // go the slow way, to be looked at again.
    async fn count_repeat(
        &self,
        w: &mut WriteTx,
        service_id: i64,
        ev: &AlertEvent,
        raw: &str,
        now_ms: i64,
        held: bool,
    ) -> Result<Option<i64>, StoreError> {
        let details = (!ev.details.is_null()).then(|| ev.details.to_string());
        let links = (!ev.links.is_empty()).then(|| json!(ev.links).to_string());
        let labels = (!ev.labels.is_empty()).then(|| Value::Object(ev.labels.clone()).to_string());
        let merge = match self.backend {
            crate::Backend::Sqlite => "json_patch(labels, $5)",
            crate::Backend::Postgres => "(labels::jsonb || $5::jsonb)::text",
        };
        let id: Option<i64> = sqlx::query_scalar(&format!(
            "UPDATE alerts SET count = count + 1, last_seen = $1, severity = $2, summary = $3, source = $4, \
             labels = COALESCE({merge}, labels), details = COALESCE($6, details), links = COALESCE($7, links), raw = $8 \
             WHERE service_id = $9 AND dedup_key = $10 AND status <> 'resolved' AND (suppressed_by IS NULL OR $11 = 1) RETURNING id"
        ))
        .bind(now_ms)
        .bind(ev.severity.as_str())
        .bind(&ev.summary)
        .bind(&ev.source)
        .bind(labels)
        .bind(details)
        .bind(links)
        .bind(bounded(raw))
        .bind(service_id)
        .bind(ev.dedup_key.as_str())
        .bind(held as i64)
        .fetch_optional(&mut *w.tx)
        .await?;
        Ok(id)
    }

    // The incident follows its alerts: an acknowledged alert acknowledges a
    // triggered incident; when its last alert resolves, it resolves (if the service auto-resolves).
    #[allow(clippy::too_many_arguments)]
    async fn follow_alerts(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        service_id: i64,
        incident_id: i64,
        status: AlertStatus,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let inc = self.lock_incident(w, incident_id).await?;
        match status {
            AlertStatus::Acknowledged if inc.status == Status::Triggered => {
                self.transition_in(w, settings, incident_id, Status::Acknowledged, actor, now)
                    .await?;
            }
            AlertStatus::Resolved if inc.status.is_open() => {
                let open: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM alerts WHERE incident_id = $1 AND status <> 'resolved'",
                )
                .bind(incident_id)
                .fetch_one(&mut *w.tx)
                .await?;
                let auto: i64 =
                    sqlx::query_scalar("SELECT auto_resolve FROM services WHERE id = $1")
                        .bind(service_id)
                        .fetch_one(&mut *w.tx)
                        .await?;
                if open == 0 && auto != 0 {
                    self.transition_in(w, settings, incident_id, Status::Resolved, actor, now)
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn alert_event(
        &self,
        w: &mut WriteTx,
        now: Timestamp,
        actor: &Actor,
        alert_id: i64,
        incident_id: Option<i64>,
        kind: &'static str,
        ev: &AlertEvent,
    ) -> Result<i64, StoreError> {
        let data = json!({ "alert_id": alert_id, "dedup_key": ev.dedup_key.as_str(), "summary": ev.summary,
                           "severity": ev.severity, "integration": ev.integration });
        append(
            w,
            NewEvent {
                at: now,
                actor,
                entity: "alert",
                entity_id: alert_id,
                incident_id,
                kind,
                data,
            },
        )
        .await
    }

    /// Reads one alert with its raw payload.
    pub async fn alert(&self, id: i64) -> Result<(Alert, String), StoreError> {
        let row = self
            .row_by_id(&format!("{COLUMNS}, raw"), "alerts", id, "alert")
            .await?;
        Ok((alert(&row)?, row.try_get("raw")?))
    }

    /// Alerts, most recently seen first; optionally one service's, one status, one
    /// incident's, only held (`suppressed` true) or only not held (false).
    pub async fn alerts(
        &self,
        service_id: Option<i64>,
        status: Option<AlertStatus>,
        incident_id: Option<i64>,
        suppressed: Option<bool>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE ($1 = 0 OR service_id = $1) AND ($2 = '' OR status = $2) \
             AND ($3 = 0 OR incident_id = $3) AND id < $4 \
             AND ($6 = 0 OR ($6 = 1 AND suppressed_by IS NOT NULL) OR ($6 = 2 AND suppressed_by IS NULL)) \
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(service_id.unwrap_or(0))
        .bind(status.map(|s| s.as_str()).unwrap_or(""))
        .bind(incident_id.unwrap_or(0))
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .bind(match suppressed {
            None => 0i64,
            Some(true) => 1,
            Some(false) => 2,
        })
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert).collect()
    }
}
