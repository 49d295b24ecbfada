//! Suppression: silences, maintenance windows and flapping hold a new alert
//! (stored with `suppressed_by`, no incident, nobody paged) until nothing holds
//! it any more; then it opens its incident like any other alert.

use serde_json::{json, Value};
use sqlx::Row;
use tocsin_core::alert::{Alert, AlertEvent};
use tocsin_core::maintenance::{MaintenanceWindow, Schedule, ScheduleParts};
use tocsin_core::matcher::{matches_all, LabelSource, Matcher};
use tocsin_core::model::IntegrationKey;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::silence::{FlappingRule, Silence, SilenceState};
use tocsin_core::time::{from_millis, to_millis, Timestamp};

use crate::alerts::{alert, bounded, AlertOutcome, COLUMNS};
use crate::batch::Inbound;
use crate::events::{append, audit, Actor, NewEvent};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// A silence to create.
#[derive(Debug, Clone)]
pub struct NewSilence {
    /// Every one must match (checked with `validate_silence`).
    pub matchers: Vec<Matcher>,
    /// Only this service; none: all.
    pub service_id: Option<i64>,
    /// Start.
    pub starts_at: Timestamp,
    /// End (expiry).
    pub ends_at: Timestamp,
    /// Why.
    pub comment: String,
}

/// A maintenance window to create, or the whole of one after a change.
#[derive(Debug, Clone)]
pub struct NewWindow {
    /// What the maintenance is.
    pub description: String,
    /// Services it covers (at least one, each existing).
    pub service_ids: Vec<i64>,
    /// When.
    pub schedule: Schedule,
}

const SILENCE_COLUMNS: &str = "id, matchers, service_id, starts_at, ends_at, comment, created_by, \
    created_by_name, created_at, updated_at";
const WINDOW_COLUMNS: &str = "id, description, service_ids, starts_at, ends_at, days, start_time, \
    duration_minutes, time_zone, until, created_by, created_at, updated_at";

fn silence(r: &sqlx::any::AnyRow, now: Timestamp) -> Result<Silence, StoreError> {
    let starts_at = from_millis(r.try_get("starts_at")?);
    let ends_at = from_millis(r.try_get("ends_at")?);
    Ok(Silence {
        id: r.try_get("id")?,
        matchers: serde_json::from_str(&r.try_get::<String, _>("matchers")?).unwrap_or_default(),
        service_id: r.try_get("service_id")?,
        starts_at,
        ends_at,
        comment: r.try_get("comment")?,
        created_by: r.try_get("created_by")?,
        created_by_name: r.try_get("created_by_name")?,
        created_at: from_millis(r.try_get("created_at")?),
        updated_at: from_millis(r.try_get("updated_at")?),
        state: SilenceState::at(starts_at, ends_at, now),
    })
}

fn window(
    r: &sqlx::any::AnyRow,
    now: Timestamp,
) -> Result<(MaintenanceWindow, Schedule), StoreError> {
    let parts = ScheduleParts {
        starts_at: r.try_get::<Option<i64>, _>("starts_at")?.map(from_millis),
        ends_at: r.try_get::<Option<i64>, _>("ends_at")?.map(from_millis),
        days: r
            .try_get::<Option<String>, _>("days")?
            .and_then(|d| serde_json::from_str(&d).ok()),
        start_time: r.try_get("start_time")?,
        duration_minutes: r.try_get("duration_minutes")?,
        time_zone: r.try_get("time_zone")?,
        until: r.try_get::<Option<i64>, _>("until")?.map(from_millis),
    };
    // Stored schedules were parsed before they were stored.
    let schedule = parts.parse()?;
    let w = MaintenanceWindow {
        id: r.try_get("id")?,
        description: r.try_get("description")?,
        service_ids: serde_json::from_str(&r.try_get::<String, _>("service_ids")?)
            .unwrap_or_default(),
        schedule: parts,
        created_by: r.try_get("created_by")?,
        created_at: from_millis(r.try_get("created_at")?),
        updated_at: from_millis(r.try_get("updated_at")?),
        active: false,
        active_until: None,
        next_start: None,
    }
    .at(&schedule, now);
    Ok((w, schedule))
}

impl Store {
    /// Why a new alert from `ev` on `service_id` is held at `now`, if it is.
    pub(crate) async fn suppression(
        &self,
        w: &mut WriteTx,
        service_id: i64,
        ev: &AlertEvent,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        // The alert about to open counts as one opening.
        self.held_by(w, service_id, ev.dedup_key.as_str(), ev, now, 1)
            .await
    }

    // Silences first (most specific, made by a person), then maintenance, then flapping.
    async fn held_by(
        &self,
        w: &mut WriteTx,
        service_id: i64,
        dedup_key: &str,
        fields: &impl LabelSource,
        now: Timestamp,
        unstored_openings: i64,
    ) -> Result<Option<String>, StoreError> {
        let now_ms = to_millis(now);
        for (id, scope, matchers) in self.silences_in_force(w, now_ms).await?.iter() {
            // A silence whose matchers no longer parse holds nothing rather than everything.
            if scope.is_none_or(|s| s == service_id)
                && !matchers.is_empty()
                && matches_all(matchers, fields)
            {
                return Ok(Some(format!("silence:{id}")));
            }
        }
        for (id, services) in self.windows_active(w, now).await?.iter() {
            if services.contains(&service_id) {
                return Ok(Some(format!("maintenance:{id}")));
            }
        }
        let rule = match w.cache.flapping.get(&service_id) {
            Some(r) => *r,
            None => {
                let r = self.rule_in(w, service_id).await?;
                w.cache.flapping.insert(service_id, r);
                r
            }
        }
        .unwrap_or_default();
        if rule.enabled {
            let since = now_ms - rule.window_minutes * 60_000;
            // Both partial indexes in one round trip: resolved openings and the open one.
            let opened: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM alerts WHERE service_id = $1 AND dedup_key = $2 AND first_seen > $3 \
                 AND status = 'resolved') + (SELECT COUNT(*) FROM alerts WHERE service_id = $1 AND dedup_key = $2 \
                 AND first_seen > $3 AND status <> 'resolved')",
            )
            .bind(service_id)
            .bind(dedup_key)
            .bind(since)
            .fetch_one(&mut *w.tx)
            .await?;
            if rule.holds(opened + unstored_openings) {
                return Ok(Some("flapping".into()));
            }
        }
        Ok(None)
    }

    // Silences in force at `now_ms`, read once per transaction and time.
    async fn silences_in_force(
        &self,
        w: &mut WriteTx,
        now_ms: i64,
    ) -> Result<std::sync::Arc<Vec<crate::tx::ActiveSilence>>, StoreError> {
        if let Some((at, s)) = &w.cache.silences {
            if *at == now_ms {
                return Ok(s.clone());
            }
        }
        let rows = sqlx::query(
            "SELECT id, service_id, matchers FROM silences WHERE starts_at <= $1 AND ends_at > $1 ORDER BY id",
        )
        .bind(now_ms)
        .fetch_all(&mut *w.tx)
        .await?;
        let mut list = Vec::with_capacity(rows.len());
        for r in &rows {
            let matchers: Vec<Matcher> =
                serde_json::from_str(&r.try_get::<String, _>("matchers")?).unwrap_or_default();
            list.push((r.try_get("id")?, r.try_get("service_id")?, matchers));
        }
        let list = std::sync::Arc::new(list);
        w.cache.silences = Some((now_ms, list.clone()));
        Ok(list)
    }

    // Maintenance windows active at `now`, with their services, read once per
    // transaction and time.
    async fn windows_active(
        &self,
        w: &mut WriteTx,
        now: Timestamp,
    ) -> Result<std::sync::Arc<Vec<crate::tx::ActiveWindow>>, StoreError> {
        let now_ms = to_millis(now);
        if let Some((at, list)) = &w.cache.windows {
            if *at == now_ms {
                return Ok(list.clone());
            }
        }
        let rows = sqlx::query(&format!(
            "SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE ends_at IS NULL OR ends_at > $1 ORDER BY id"
        ))
        .bind(now_ms)
        .fetch_all(&mut *w.tx)
        .await?;
        let mut list = Vec::new();
        for r in &rows {
            let (win, _) = window(r, now)?;
            if win.active {
                list.push((win.id, win.service_ids));
            }
        }
        let list = std::sync::Arc::new(list);
        w.cache.windows = Some((now_ms, list.clone()));
        Ok(list)
    }

    /// Stores a new alert held for `reason`: no incident, an `alert.suppressed` event.
    pub(crate) async fn open_suppressed(
        &self,
        w: &mut WriteTx,
        key: &IntegrationKey,
        inbound: &Inbound,
        actor: &Actor,
        reason: String,
        now: Timestamp,
    ) -> Result<AlertOutcome, StoreError> {
        let ev = &inbound.event;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO alerts (service_id, integration_key_id, incident_id, dedup_key, status, severity, summary, \
             source, integration, labels, details, links, count, first_seen, last_seen, raw, suppressed_by) \
             VALUES ($1, $2, NULL, $3, 'triggered', $4, $5, $6, $7, $8, $9, $10, 1, $11, $11, $12, $13) RETURNING id",
        )
        .bind(inbound.service_id)
        .bind(key.stored_id())
        .bind(ev.dedup_key.as_str())
        .bind(ev.severity.as_str())
        .bind(&ev.summary)
        .bind(&ev.source)
        .bind(ev.integration)
        .bind(Value::Object(ev.labels.clone()).to_string())
        .bind(ev.details.to_string())
        .bind(json!(ev.links).to_string())
        .bind(to_millis(now))
        .bind(bounded(&inbound.raw))
        .bind(&reason)
        .fetch_one(&mut *w.tx)
        .await?;
        let data = json!({ "alert_id": id, "service_id": inbound.service_id, "dedup_key": ev.dedup_key.as_str(),
                           "summary": ev.summary, "severity": ev.severity, "integration": ev.integration,
                           "reason": reason });
        alert_log(w, now, actor, id, None, "alert.suppressed", data).await?;
        Ok(AlertOutcome::Suppressed {
            alert_id: id,
            reason,
        })
    }

    /// A repeat trigger of a held alert (already counted): looks again at what holds it.
    pub(crate) async fn repeat_suppressed(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        actor: &Actor,
        alert_id: i64,
        now: Timestamp,
    ) -> Result<AlertOutcome, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM alerts WHERE id = $1"))
            .bind(alert_id)
            .fetch_one(&mut *w.tx)
            .await?;
        match self
            .reconsider(w, settings, actor, &alert(&row)?, now)
            .await?
        {
            Some(incident_id) => Ok(AlertOutcome::Unsuppressed {
                alert_id,
                incident_id,
            }),
            None => Ok(AlertOutcome::Repeated { alert_id }),
        }
    }

    // Looks again at a held, open alert: still held (perhaps for another reason), or
    // released into an incident of its own. Returns the incident when released.
    async fn reconsider(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        actor: &Actor,
        a: &Alert,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        let reason = self
            .held_by(w, a.service_id, &a.dedup_key, a, now, 0)
            .await?;
        let base = json!({ "alert_id": a.id, "service_id": a.service_id, "dedup_key": a.dedup_key,
                           "summary": a.summary, "severity": a.severity, "integration": a.integration });
        match reason {
            Some(r) if a.suppressed_by.as_deref() == Some(r.as_str()) => Ok(None),
            Some(r) => {
                sqlx::query("UPDATE alerts SET suppressed_by = $1 WHERE id = $2")
                    .bind(&r)
                    .bind(a.id)
                    .execute(&mut *w.tx)
                    .await?;
                let mut data = base;
                data["reason"] = json!(r);
                data["previous_reason"] = json!(a.suppressed_by);
                alert_log(w, now, actor, a.id, None, "alert.suppressed", data).await?;
                Ok(None)
            }
            None => {
                // Released alerts group and take their urgency like any new alert.
                let ev = event_of(a)?;
                let inc_id = self
                    .incident_for_alert(w, settings, a.service_id, &ev, actor, now)
                    .await?;
                sqlx::query(
                    "UPDATE alerts SET suppressed_by = NULL, incident_id = $1 WHERE id = $2",
                )
                .bind(inc_id)
                .bind(a.id)
                .execute(&mut *w.tx)
                .await?;
                let mut data = base;
                data["previous_reason"] = json!(a.suppressed_by);
                alert_log(
                    w,
                    now,
                    actor,
                    a.id,
                    Some(inc_id),
                    "alert.unsuppressed",
                    data,
                )
                .await?;
                Ok(Some(inc_id))
            }
        }
    }

    /// Looks again at every open, held alert and releases those nothing holds any
    /// more (their silence expired, their maintenance ended, they stopped
    /// flapping) into incidents. Returns the ids of the released alerts.
    pub async fn release_expired_suppressions(
        &self,
        settings: &IncidentSettings,
        now: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        // Only alerts whose reason is no longer in force (and flapping ones, which
        // settle with time) are looked at again; with nothing to review, nothing is written.
        // Per service too: a window edited to leave a service out no longer holds its alerts.
        let held: Vec<(String, i64)> = sqlx::query_as(
            "SELECT DISTINCT suppressed_by, service_id FROM alerts WHERE suppressed_by IS NOT NULL AND status <> 'resolved'",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut pairs = std::collections::HashSet::new();
        for (reason, service_id) in held {
            if !self.reason_in_force(&reason, service_id, now).await? {
                pairs.insert((reason, service_id));
            }
        }
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let mut review: Vec<&String> = pairs.iter().map(|(r, _)| r).collect();
        review.sort();
        review.dedup();
        let mut w = self.write().await?;
        // Only the alerts under review are locked: a large maintenance hold stays untouched.
        let list = (0..review.len())
            .map(|i| format!("${}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {COLUMNS} FROM alerts WHERE suppressed_by IN ({list}) AND status <> 'resolved' ORDER BY id{}",
            self.for_update()
        );
        let mut q = sqlx::query(&sql);
        for r in &review {
            q = q.bind(r);
        }
        let rows = q.fetch_all(&mut *w.tx).await?;
        let mut released = Vec::new();
        for r in &rows {
            let a = alert(r)?;
            let pair = (a.suppressed_by.clone().unwrap_or_default(), a.service_id);
            if !pairs.contains(&pair) {
                continue;
            }
            if self
                .reconsider(&mut w, settings, &Actor::system(), &a, now)
                .await?
                .is_some()
            {
                released.push(a.id);
            }
        }
        w.commit().await?;
        Ok(released)
    }

    // Whether what a held alert names still holds at `now`: its silence is in force,
    // its maintenance window active. Flapping is never taken as settled without a look.
    async fn reason_in_force(
        &self,
        reason: &str,
        service_id: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let id = |p: &str| reason.strip_prefix(p).and_then(|n| n.parse::<i64>().ok());
        if let Some(id) = id("silence:") {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM silences WHERE id = $1 AND starts_at <= $2 AND ends_at > $2",
            )
            .bind(id)
            .bind(to_millis(now))
            .fetch_one(&self.pool)
            .await?;
            return Ok(n > 0);
        }
        if let Some(id) = id("maintenance:") {
            let row = sqlx::query(&format!(
                "SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            return match row {
                Some(r) => {
                    let (win, _) = window(&r, now)?;
                    Ok(win.active && win.service_ids.contains(&service_id))
                }
                None => Ok(false),
            };
        }
        Ok(false)
    }

    /// When the suppression worker should look again: `None` when no open alert is
    /// held; otherwise the earliest end of a silence still in force, if any.
    pub async fn next_suppression_review(
        &self,
        now: Timestamp,
    ) -> Result<Option<Option<Timestamp>>, StoreError> {
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM alerts WHERE suppressed_by IS NOT NULL AND status <> 'resolved'",
        )
        .fetch_one(&self.pool)
        .await?;
        if held == 0 {
            return Ok(None);
        }
        let next: Option<i64> =
            sqlx::query_scalar("SELECT MIN(ends_at) FROM silences WHERE ends_at > $1")
                .bind(to_millis(now))
                .fetch_one(&self.pool)
                .await?;
        Ok(Some(next.map(from_millis)))
    }

    // ---- silences ----

    /// Creates a silence (already validated by the caller with `validate_silence`).
    pub async fn create_silence(
        &self,
        s: &NewSilence,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Silence, StoreError> {
        let mut w = self.write().await?;
        if let Some(svc) = s.service_id {
            self.check_exists(&mut w, "services", svc, "service_id", "service")
                .await?;
        }
        let row = sqlx::query(&format!(
            "INSERT INTO silences (matchers, service_id, starts_at, ends_at, comment, created_by, created_by_name, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {SILENCE_COLUMNS}"
        ))
        .bind(json!(s.matchers).to_string())
        .bind(s.service_id)
        .bind(to_millis(s.starts_at))
        .bind(to_millis(s.ends_at))
        .bind(&s.comment)
        .bind(actor.user_id)
        .bind(&actor.name)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let created = silence(&row, now)?;
        audit(
            &mut w,
            now,
            actor,
            "silence",
            created.id,
            "silence.created",
            json!({ "silence": created }),
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// Reads a silence.
    pub async fn silence(&self, id: i64, now: Timestamp) -> Result<Silence, StoreError> {
        let row = self
            .row_by_id(SILENCE_COLUMNS, "silences", id, "silence")
            .await?;
        silence(&row, now)
    }

    /// Silences, newest first, optionally only those in `state` at `now`.
    pub async fn silences(
        &self,
        state: Option<SilenceState>,
        now: Timestamp,
    ) -> Result<Vec<Silence>, StoreError> {
        let cond = match state {
            None => "1 = 1 OR $1 = 0",
            Some(SilenceState::Pending) => "starts_at > $1",
            Some(SilenceState::Active) => "starts_at <= $1 AND ends_at > $1",
            Some(SilenceState::Expired) => "ends_at <= $1",
        };
        let rows = sqlx::query(&format!(
            "SELECT {SILENCE_COLUMNS} FROM silences WHERE {cond} ORDER BY id DESC LIMIT 1000"
        ))
        .bind(to_millis(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| silence(r, now)).collect()
    }

    /// Ends a silence now (kept as history); an expired one is left as it is.
    pub async fn expire_silence(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Silence, StoreError> {
        let old = self.silence(id, now).await?;
        if old.state == SilenceState::Expired {
            return Ok(old);
        }
        let mut w = self.write().await?;
        let now_ms = to_millis(now);
        let row = sqlx::query(&format!(
            "UPDATE silences SET ends_at = $1, starts_at = CASE WHEN starts_at > $1 THEN $1 ELSE starts_at END, \
             updated_at = $1 WHERE id = $2 RETURNING {SILENCE_COLUMNS}"
        ))
        .bind(now_ms)
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        let s = silence(&row, now)?;
        audit(
            &mut w,
            now,
            actor,
            "silence",
            id,
            "silence.expired",
            json!({ "ends_at": s.ends_at, "previous_ends_at": old.ends_at }),
        )
        .await?;
        w.commit().await?;
        Ok(s)
    }

    // ---- maintenance windows ----

    async fn check_window(&self, w: &mut WriteTx, win: &NewWindow) -> Result<(), StoreError> {
        if win.service_ids.is_empty() {
            return Err(
                tocsin_core::Invalid::new("service_ids", "name at least one service").into(),
            );
        }
        for (i, svc) in win.service_ids.iter().enumerate() {
            self.check_exists(w, "services", *svc, &format!("service_ids[{i}]"), "service")
                .await?;
        }
        Ok(())
    }

    /// Creates a maintenance window.
    pub async fn create_maintenance_window(
        &self,
        win: &NewWindow,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<MaintenanceWindow, StoreError> {
        let mut w = self.write().await?;
        self.check_window(&mut w, win).await?;
        let p = win.schedule.parts();
        let row = sqlx::query(&format!(
            "INSERT INTO maintenance_windows (description, service_ids, starts_at, ends_at, days, start_time, \
             duration_minutes, time_zone, until, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {WINDOW_COLUMNS}"
        ))
        .bind(&win.description)
        .bind(json!(win.service_ids).to_string())
        .bind(p.starts_at.map(to_millis))
        .bind(p.ends_at.map(to_millis))
        .bind(p.days.as_ref().map(|d| json!(d).to_string()))
        .bind(p.start_time.clone())
        .bind(p.duration_minutes)
        .bind(p.time_zone.clone())
        .bind(p.until.map(to_millis))
        .bind(actor.user_id)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let (created, _) = window(&row, now)?;
        audit(
            &mut w,
            now,
            actor,
            "maintenance_window",
            created.id,
            "maintenance_window.created",
            json!({ "maintenance_window": created }),
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// Reads a maintenance window (with its state at `now`) and its schedule.
    pub async fn maintenance_window(
        &self,
        id: i64,
        now: Timestamp,
    ) -> Result<(MaintenanceWindow, Schedule), StoreError> {
        let row = self
            .row_by_id(
                WINDOW_COLUMNS,
                "maintenance_windows",
                id,
                "maintenance window",
            )
            .await?;
        window(&row, now)
    }

    /// Maintenance windows, newest first; optionally one service's, only those in force at `now`.
    pub async fn maintenance_windows(
        &self,
        service_id: Option<i64>,
        active: Option<bool>,
        now: Timestamp,
    ) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {WINDOW_COLUMNS} FROM maintenance_windows ORDER BY id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let (w, _) = window(r, now)?;
            if service_id.is_some_and(|s| !w.service_ids.contains(&s))
                || active.is_some_and(|a| a != w.active)
            {
                continue;
            }
            out.push(w);
        }
        Ok(out)
    }

    /// Replaces a maintenance window's description, services and schedule.
    pub async fn update_maintenance_window(
        &self,
        id: i64,
        win: &NewWindow,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<MaintenanceWindow, StoreError> {
        let (old, _) = self.maintenance_window(id, now).await?;
        let mut w = self.write().await?;
        self.check_window(&mut w, win).await?;
        let p = win.schedule.parts();
        let row = sqlx::query(&format!(
            "UPDATE maintenance_windows SET description = $1, service_ids = $2, starts_at = $3, ends_at = $4, \
             days = $5, start_time = $6, duration_minutes = $7, time_zone = $8, until = $9, updated_at = $10 \
             WHERE id = $11 RETURNING {WINDOW_COLUMNS}"
        ))
        .bind(&win.description)
        .bind(json!(win.service_ids).to_string())
        .bind(p.starts_at.map(to_millis))
        .bind(p.ends_at.map(to_millis))
        .bind(p.days.as_ref().map(|d| json!(d).to_string()))
        .bind(p.start_time.clone())
        .bind(p.duration_minutes)
        .bind(p.time_zone.clone())
        .bind(p.until.map(to_millis))
        .bind(to_millis(now))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        let (new, _) = window(&row, now)?;
        audit(
            &mut w,
            now,
            actor,
            "maintenance_window",
            id,
            "maintenance_window.updated",
            json!({ "before": old, "after": new }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a maintenance window.
    pub async fn delete_maintenance_window(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (old, _) = self.maintenance_window(id, now).await?;
        let w = self.write().await?;
        crate::events::delete_audited(
            w,
            "maintenance_windows",
            "maintenance_window",
            id,
            actor,
            now,
            json!({ "maintenance_window": old }),
        )
        .await
    }

    // ---- flapping rules ----

    async fn rule_in(
        &self,
        w: &mut WriteTx,
        service_id: i64,
    ) -> Result<Option<FlappingRule>, StoreError> {
        let row = sqlx::query(
            "SELECT max_toggles, window_minutes, enabled FROM flapping_rules WHERE service_id = $1",
        )
        .bind(service_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        row.map(|r| flapping_rule(&r)).transpose()
    }

    /// A service's flapping rule, and whether it is the default (none set).
    pub async fn flapping_rule(&self, service_id: i64) -> Result<(FlappingRule, bool), StoreError> {
        self.service(service_id).await?;
        let row = sqlx::query(
            "SELECT max_toggles, window_minutes, enabled FROM flapping_rules WHERE service_id = $1",
        )
        .bind(service_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => (flapping_rule(&r)?, false),
            None => (FlappingRule::default(), true),
        })
    }

    /// Sets a service's flapping rule (validated by the caller).
    pub async fn set_flapping_rule(
        &self,
        service_id: i64,
        rule: &FlappingRule,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<FlappingRule, StoreError> {
        let (old, _) = self.flapping_rule(service_id).await?;
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM flapping_rules WHERE service_id = $1")
            .bind(service_id)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query(
            "INSERT INTO flapping_rules (service_id, max_toggles, window_minutes, enabled, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(service_id)
        .bind(rule.max_toggles)
        .bind(rule.window_minutes)
        .bind(rule.enabled as i64)
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?;
        audit(
            &mut w,
            now,
            actor,
            "flapping_rule",
            service_id,
            "flapping_rule.updated",
            json!({ "service_id": service_id, "before": old, "after": rule }),
        )
        .await?;
        w.commit().await?;
        Ok(*rule)
    }
}

fn flapping_rule(r: &sqlx::any::AnyRow) -> Result<FlappingRule, StoreError> {
    Ok(FlappingRule {
        max_toggles: r.try_get("max_toggles")?,
        window_minutes: r.try_get("window_minutes")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
    })
}

// Held alerts' events are about the alert; only a release names an incident.
async fn alert_log(
    w: &mut WriteTx,
    now: Timestamp,
    actor: &Actor,
    alert_id: i64,
    incident_id: Option<i64>,
    kind: &'static str,
    data: Value,
) -> Result<i64, StoreError> {
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

// The stored alert as the event that would open it now, for grouping and urgency rules.
fn event_of(a: &Alert) -> Result<tocsin_core::alert::AlertEvent, StoreError> {
    const SOURCES: [&str; 6] = [
        "pagerduty",
        "alertmanager",
        "grafana",
        "webhook",
        "email",
        "heartbeat",
    ];
    Ok(tocsin_core::alert::AlertEvent {
        action: tocsin_core::alert::AlertAction::Trigger,
        dedup_key: tocsin_core::alert::DedupKey::parse("dedup_key", &a.dedup_key)?,
        summary: a.summary.clone(),
        source: a.source.clone(),
        severity: a.severity,
        labels: a.labels.clone(),
        details: a.details.clone(),
        links: a.links.clone(),
        integration: SOURCES
            .into_iter()
            .find(|s| *s == a.integration)
            .unwrap_or("alert"),
    })
}
