//! Action items of postmortems: title, owner, due date, priority, status, a
//! link elsewhere (Jira, GitHub); overdue items (open or in progress after
//! their due day) remind their owners at most once a calendar day (UTC)
//! through the notification outbox.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tocsin_core::escalation::{ContactKind, NotificationRule, Urgency};
use tocsin_core::postmortem::{ActionPriority, ActionStatus};
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use super::postmortem_event;
use crate::events::Actor;
use crate::jobs::OUTBOX_COLUMNS;
use crate::tx::WriteTx;
use crate::{HandedNotification, Store, StoreError};

/// The outbox reason of a reminder.
pub const REMINDER_REASON: &str = "action_item_overdue";

/// An action item.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ActionItem {
    /// Item id.
    pub id: i64,
    /// Its postmortem.
    pub postmortem_id: i64,
    /// The incident it comes from.
    pub incident_id: Option<i64>,
    /// What to do.
    pub title: String,
    /// Who does it.
    pub owner_id: Option<i64>,
    /// Their name.
    pub owner_name: Option<String>,
    /// Due day, `YYYY-MM-DD`.
    #[schema(value_type = Option<String>)]
    pub due_date: Option<NaiveDate>,
    /// `low`, `medium` or `high`.
    pub priority: String,
    /// `open`, `in_progress`, `done` or `cancelled`.
    pub status: String,
    /// Open or in progress after its due day.
    pub overdue: bool,
    /// The item elsewhere (an issue tracker).
    pub external_url: Option<String>,
    /// The tracker its issue was created in from here: `jira` or `github`.
    pub tracker: Option<String>,
    /// That creation: `running`, `succeeded` or `failed`.
    pub tracker_status: Option<String>,
    /// The issue (`OPS-12`, `acme/api#7`).
    pub tracker_key: Option<String>,
    /// Why it could not be created.
    pub tracker_error: Option<String>,
    /// The workflow run creating it (`GET /api/v1/workflow-runs/{id}`).
    pub tracker_run_id: Option<i64>,
    /// When its owner was last reminded.
    pub last_reminded_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The fields of an item to create or change (None: unchanged / default).
#[derive(Debug, Clone, Default)]
pub struct ActionItemFields {
    /// What to do.
    pub title: Option<String>,
    /// Owner (Some(None): nobody).
    pub owner_id: Option<Option<i64>>,
    /// Due day (Some(None): none).
    pub due_date: Option<Option<NaiveDate>>,
    /// Priority.
    pub priority: Option<ActionPriority>,
    /// Status.
    pub status: Option<ActionStatus>,
    /// Link (Some(None): none).
    pub external_url: Option<Option<String>>,
    /// The incident, one of the postmortem's (default: its first).
    pub incident_id: Option<i64>,
}

pub(crate) const COLUMNS: &str = "a.id, a.postmortem_id, a.incident_id, a.title, a.owner_id, u.name AS owner_name, \
    a.due_date, a.priority, a.status, a.external_url, a.last_reminded_at, a.created_at, a.updated_at, a.tracker, a.tracker_status, \
    a.tracker_key, a.tracker_error, a.tracker_run_id";
pub(crate) const FROM: &str = "FROM action_items a LEFT JOIN users u ON u.id = a.owner_id";

fn today(now: Timestamp) -> NaiveDate {
    now.date_naive()
}

pub(crate) fn item(r: &sqlx::any::AnyRow, now: Timestamp) -> Result<ActionItem, StoreError> {
    let due: Option<String> = r.try_get("due_date")?;
    let due_date = due.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let status: String = r.try_get("status")?;
    let pending = ActionStatus::parse("status", &status).is_ok_and(ActionStatus::is_pending);
    Ok(ActionItem {
        id: r.try_get("id")?,
        postmortem_id: r.try_get("postmortem_id")?,
        incident_id: r.try_get("incident_id")?,
        title: r.try_get("title")?,
        owner_id: r.try_get("owner_id")?,
        owner_name: r.try_get("owner_name")?,
        overdue: pending && due_date.is_some_and(|d| d < today(now)),
        due_date,
        priority: r.try_get("priority")?,
        status,
        external_url: r.try_get("external_url")?,
        tracker: r.try_get("tracker")?,
        tracker_status: r.try_get("tracker_status")?,
        tracker_key: r.try_get("tracker_key")?,
        tracker_error: r.try_get("tracker_error")?,
        tracker_run_id: r.try_get("tracker_run_id")?,
        last_reminded_at: r
            .try_get::<Option<i64>, _>("last_reminded_at")?
            .map(from_millis),
        created_at: from_millis(r.try_get("created_at")?),
        updated_at: from_millis(r.try_get("updated_at")?),
    })
}

fn check_title(t: &str) -> Result<String, Invalid> {
    let t = t.trim();
    if t.is_empty() || t.chars().count() > 300 || t.chars().any(char::is_control) {
        return Err(Invalid::new(
            "title",
            "must be 1 to 300 characters on one line",
        ));
    }
    Ok(t.to_string())
}

pub(crate) fn check_url(u: &str) -> Result<String, Invalid> {
    let u = u.trim();
    let ok = (u.starts_with("https://") || u.starts_with("http://"))
        && u.len() <= 2000
        && !u.chars().any(|c| c.is_control() || c.is_whitespace());
    if !ok {
        return Err(Invalid::new(
            "external_url",
            "must be an http or https URL without spaces",
        ));
    }
    Ok(u.to_string())
}

async fn check_owner(w: &mut WriteTx, owner: Option<i64>) -> Result<(), StoreError> {
    let Some(id) = owner else { return Ok(()) };
    let active: Option<i64> = sqlx::query_scalar("SELECT active FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?;
    match active {
        Some(1) => Ok(()),
        _ => Err(Invalid::new("owner_id", format!("there is no active user {id}")).into()),
    }
}

impl Store {
    /// Adds an action item to postmortem `pm`.
    pub async fn create_action_item(
        &self,
        pm: i64,
        f: ActionItemFields,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<ActionItem, StoreError> {
        let title = check_title(f.title.as_deref().unwrap_or(""))?;
        let url = f
            .external_url
            .flatten()
            .map(|u| check_url(&u))
            .transpose()?;
        let mut w = self.write().await?;
        self.lock_row_by_id(&mut w, "id", "postmortems", pm, "postmortem")
            .await?;
        let incidents: Vec<i64> = sqlx::query_scalar(
            "SELECT incident_id FROM postmortem_incidents WHERE postmortem_id = $1 ORDER BY incident_id",
        )
        .bind(pm)
        .fetch_all(&mut *w.tx)
        .await?;
        let incident_id = match f.incident_id {
            Some(i) if !incidents.contains(&i) => {
                return Err(Invalid::new(
                    "incident_id",
                    format!("incident {i} is not reviewed by this postmortem"),
                )
                .into())
            }
            Some(i) => Some(i),
            None => incidents.first().copied(),
        };
        let owner = f.owner_id.flatten();
        check_owner(&mut w, owner).await?;
        let t = to_millis(now);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO action_items (postmortem_id, incident_id, title, owner_id, due_date, priority, \
             status, external_url, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(pm)
        .bind(incident_id)
        .bind(&title)
        .bind(owner)
        .bind(f.due_date.flatten().map(|d| d.to_string()))
        .bind(f.priority.unwrap_or(ActionPriority::Medium).as_str())
        .bind(f.status.unwrap_or(ActionStatus::Open).as_str())
        .bind(url)
        .bind(actor.user_id)
        .bind(t)
        .fetch_one(&mut *w.tx)
        .await?;
        postmortem_event(
            &mut w,
            now,
            actor,
            pm,
            "action_item.created",
            json!({ "postmortem_id": pm, "action_item_id": id, "title": title, "owner_id": owner }),
        )
        .await?;
        w.commit().await?;
        self.action_item(id, now).await
    }

    /// One action item.
    pub async fn action_item(&self, id: i64, now: Timestamp) -> Result<ActionItem, StoreError> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("action item {id}")))?;
        item(&r, now)
    }

    /// Changes an item of postmortem `pm`; only the fields given.
    pub async fn update_action_item(
        &self,
        pm: i64,
        id: i64,
        f: ActionItemFields,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<ActionItem, StoreError> {
        let title = f.title.as_deref().map(check_title).transpose()?;
        let url = match f.external_url {
            Some(Some(u)) => Some(Some(check_url(&u)?)),
            other => other,
        };
        if f.incident_id.is_some() {
            return Err(Invalid::new("incident_id", "cannot be changed").into());
        }
        let mut w = self.write().await?;
        let row = self
            .lock_row_by_id(&mut w, "postmortem_id", "action_items", id, "action item")
            .await?;
        if row.try_get::<i64, _>("postmortem_id")? != pm {
            return Err(StoreError::not_found(format!("action item {id}")));
        }
        if let Some(owner) = f.owner_id {
            check_owner(&mut w, owner).await?;
        }
        let mut changed = serde_json::Map::new();
        let t = to_millis(now);
        macro_rules! set {
            ($col:literal, $v:expr, $json:expr) => {{
                sqlx::query(concat!(
                    "UPDATE action_items SET ",
                    $col,
                    " = $1, updated_at = $2 WHERE id = $3"
                ))
                .bind($v)
                .bind(t)
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
                changed.insert($col.into(), $json);
            }};
        }
        if let Some(v) = title {
            set!("title", v.clone(), json!(v));
        }
        if let Some(v) = f.owner_id {
            set!("owner_id", v, json!(v));
        }
        if let Some(v) = f.due_date {
            let s = v.map(|d| d.to_string());
            set!("due_date", s.clone(), json!(s));
        }
        if let Some(v) = f.priority {
            set!("priority", v.as_str(), json!(v.as_str()));
        }
        if let Some(v) = f.status {
            set!("status", v.as_str(), json!(v.as_str()));
        }
        if let Some(v) = url {
            set!("external_url", v.clone(), json!(v));
            // A link set by hand is no longer the issue created from here.
            sqlx::query("UPDATE action_items SET tracker_key = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
        }
        if !changed.is_empty() {
            postmortem_event(
                &mut w,
                now,
                actor,
                pm,
                "action_item.updated",
                json!({ "postmortem_id": pm, "action_item_id": id, "changes": changed }),
            )
            .await?;
        }
        w.commit().await?;
        self.action_item(id, now).await
    }

    /// Action items: one postmortem's, or everyone's; optionally one owner's,
    /// optionally only overdue ones (at `now`). Overdue first by due day.
    pub async fn action_items(
        &self,
        pm: Option<i64>,
        owner: Option<i64>,
        overdue: bool,
        now: Timestamp,
    ) -> Result<Vec<ActionItem>, StoreError> {
        let today = today(now).to_string();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} {FROM} WHERE ($1 = 0 OR a.postmortem_id = $1) \
             AND ($2 = 0 OR a.owner_id = $2) \
             AND ($3 = 0 OR (a.status IN ('open', 'in_progress') AND a.due_date IS NOT NULL AND a.due_date < $4)) \
             ORDER BY CASE WHEN a.due_date IS NULL THEN 1 ELSE 0 END, a.due_date, a.id LIMIT 1000"
        ))
        .bind(pm.unwrap_or(0))
        .bind(owner.unwrap_or(0))
        .bind(i64::from(overdue))
        .bind(&today)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| item(r, now)).collect()
    }

    /// Reminds the owners of overdue action items not yet reminded today (UTC):
    /// one outbox request per high-urgency contact method without delay, and
    /// an `action_item.reminded` event; returns the requests handed.
    pub async fn remind_overdue_action_items(
        &self,
        now: Timestamp,
    ) -> Result<Vec<HandedNotification>, StoreError> {
        let today = today(now);
        let day_start = to_millis(today.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
        let due = "SELECT id FROM action_items WHERE status IN ('open', 'in_progress') \
             AND owner_id IS NOT NULL AND due_date IS NOT NULL AND due_date < $1 \
             AND (last_reminded_at IS NULL OR last_reminded_at < $2)";
        let any: Option<i64> = sqlx::query_scalar(&format!("{due} LIMIT 1"))
            .bind(today.to_string())
            .bind(day_start)
            .fetch_optional(&self.pool)
            .await?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let mut w = self.write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "{due} ORDER BY id LIMIT 200{}",
            self.skip_locked()
        ))
        .bind(today.to_string())
        .bind(day_start)
        .fetch_all(&mut *w.tx)
        .await?;
        let mut out = Vec::new();
        for id in ids {
            let r = sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE a.id = $1"))
                .bind(id)
                .fetch_one(&mut *w.tx)
                .await?;
            let it = item(&r, now)?;
            let Some(owner) = it.owner_id else { continue };
            let pm_title: String =
                sqlx::query_scalar("SELECT title FROM postmortems WHERE id = $1")
                    .bind(it.postmortem_id)
                    .fetch_one(&mut *w.tx)
                    .await?;
            let message = json!({
                "action_item_id": it.id,
                "title": it.title,
                "postmortem_id": it.postmortem_id,
                "postmortem_title": pm_title,
                "due_date": it.due_date.map(|d| d.to_string()),
                "days_overdue": it.due_date.map(|d| (today - d).num_days()),
                "priority": it.priority,
            });
            out.extend(
                self.hand_reminder(&mut w, &it, owner, &message, today, now)
                    .await?,
            );
            sqlx::query("UPDATE action_items SET last_reminded_at = $1 WHERE id = $2")
                .bind(to_millis(now))
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
            postmortem_event(
                &mut w,
                now,
                &Actor::system(),
                it.postmortem_id,
                "action_item.reminded",
                json!({ "action_item_id": it.id, "owner_id": owner, "due_date": message["due_date"] }),
            )
            .await?;
        }
        w.commit().await?;
        Ok(out)
    }

    // The owner's first high-urgency channels (rules without delay), each
    // verified method once; keyed by item and day so a retry never sends twice.
    async fn hand_reminder(
        &self,
        w: &mut WriteTx,
        it: &ActionItem,
        owner: i64,
        message: &serde_json::Value,
        today: NaiveDate,
        now: Timestamp,
    ) -> Result<Vec<HandedNotification>, StoreError> {
        let row = sqlx::query("SELECT active, notification_rules FROM users WHERE id = $1")
            .bind(owner)
            .fetch_optional(&mut *w.tx)
            .await?;
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        if row.try_get::<i64, _>("active")? == 0 {
            return Ok(Vec::new());
        }
        let rules: Vec<NotificationRule> =
            serde_json::from_str(&row.try_get::<String, _>("notification_rules")?)
                .unwrap_or_default();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for method_id in rules
            .iter()
            .filter(|r| r.urgency == Urgency::High && r.delay_minutes == 0)
            .map(|r| r.contact_method_id)
            .filter(|id| seen.insert(*id))
        {
            let m = sqlx::query(
                "SELECT kind, address, verified FROM contact_methods WHERE id = $1 AND user_id = $2",
            )
            .bind(method_id)
            .bind(owner)
            .fetch_optional(&mut *w.tx)
            .await?;
            let Some(m) = m else { continue };
            if m.try_get::<i64, _>("verified")? == 0 {
                continue;
            }
            let kind: String = m.try_get("kind")?;
            if ContactKind::parse(&kind).is_none() {
                continue;
            }
            let key = format!("action_item:{}:{today}:c{method_id}", it.id);
            let row = sqlx::query(&format!(
                "INSERT INTO notification_requests (idempotency_key, reason, incident_id, user_id, \
                 contact_method_id, contact_kind, address, message, send_at, status, handed_at, created_at, \
                 delivery, attempts, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'handed', $9, $9, 'sending', 1, $10) \
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING {OUTBOX_COLUMNS}"
            ))
            .bind(&key)
            .bind(REMINDER_REASON)
            .bind(it.incident_id)
            .bind(owner)
            .bind(method_id)
            .bind(&kind)
            .bind(m.try_get::<String, _>("address")?)
            .bind(message.to_string())
            .bind(to_millis(now))
            .bind(to_millis(now) + self.delivery_lease_ms)
            .fetch_optional(&mut *w.tx)
            .await?;
            if let Some(row) = row {
                out.push(HandedNotification::from_row(&row)?);
            }
        }
        Ok(out)
    }
}
