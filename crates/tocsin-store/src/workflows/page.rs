//! A page step: a user, whoever is on call in a schedule, or the first level
//! of an escalation policy, notified once through the escalation machinery:
//! each person's notification rules and verified contact methods, the outbox
//! with idempotency keys, delivery's retries, and cancellation of what is not
//! yet sent when the incident is acknowledged or resolved. It does not start
//! a second escalation: an incident has one, from its service's policy.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use tocsin_core::escalation::{resolve_step, DueStep, EscalationPolicy, Level, Target, Urgency};
use tocsin_core::time::{to_millis, Timestamp};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::events::{incident_event, Actor};
use crate::jobs::{HandedNotification, OUTBOX_COLUMNS};
use crate::{Store, StoreError};

/// Who a page step pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageWhom {
    /// A user by email or id.
    User(String),
    /// A schedule by name or id.
    Schedule(String),
    /// An escalation policy by name or id (its first level).
    EscalationPolicy(String),
}

/// What a page step did.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PageResult {
    /// Users reached.
    pub users: Vec<i64>,
    /// Users with no contact method for this urgency.
    pub unreachable_users: Vec<i64>,
    /// Notification requests written (some may wait for a rule's delay).
    pub notifications: usize,
    /// Those handed to delivery now (the caller passes them on).
    #[serde(skip)]
    #[schema(ignore)]
    pub handed: Vec<HandedNotification>,
}

impl Store {
    /// Pages `whom` about incident `incident_id`, once; `key` makes the
    /// notifications' idempotency keys (the step attempt's key). The page is
    /// on the incident's timeline as `workflow.paged`.
    pub async fn page_for_workflow(
        &self,
        incident_id: i64,
        whom: &PageWhom,
        message: Option<&str>,
        key: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<PageResult, StoreError> {
        let mut w = self.write().await?;
        let inc = self.lock_incident(&mut w, incident_id).await?;
        let (target_name, targets) = match whom {
            PageWhom::User(u) => {
                let id = match u.parse::<i64>() {
                    Ok(id) => Some(id),
                    Err(_) => {
                        sqlx::query_scalar("SELECT id FROM users WHERE email_key = $1")
                            .bind(u.trim().to_lowercase())
                            .fetch_optional(&mut *w.tx)
                            .await?
                    }
                };
                let id = id.ok_or_else(|| Invalid::new("page.user", format!("no user `{u}`")))?;
                (format!("user {u}"), vec![Target::User(id)])
            }
            PageWhom::Schedule(s) => {
                let id = self
                    .id_by_name(&mut w, "schedules", s)
                    .await?
                    .ok_or_else(|| Invalid::new("page.schedule", format!("no schedule `{s}`")))?;
                (format!("schedule {s}"), vec![Target::Schedule(id)])
            }
            PageWhom::EscalationPolicy(p) => {
                let id = self
                    .id_by_name(&mut w, "escalation_policies", p)
                    .await?
                    .ok_or_else(|| {
                        Invalid::new(
                            "page.escalation_policy",
                            format!("no escalation policy `{p}`"),
                        )
                    })?;
                let policy = self.escalation_policy_in(&mut w, id).await?;
                let first = policy
                    .levels
                    .first()
                    .map(|l| l.targets.clone())
                    .unwrap_or_default();
                (format!("escalation policy {p}"), first)
            }
        };
        let policy = EscalationPolicy {
            levels: vec![Level {
                targets,
                delay_minutes: 0,
            }],
            repeat: 0,
        };
        let step = DueStep {
            level: 0,
            round: 0,
            seq: 0,
            at: now,
        };
        let urgency = Urgency::from(inc.urgency);
        let resolver = self.preload(&mut w, &policy, &step).await?;
        let who = resolve_step(&policy, inc.id, &step, urgency, &resolver, &BTreeMap::new());
        let people = self.user_notifications(&mut w, &who.users).await?;
        let res = resolve_step(&policy, inc.id, &step, urgency, &resolver, &people);
        // Stored like an escalation's page, so delivery renders and sends it
        // the same way; without a level, a failure escalates nothing.
        let title = message.map(str::to_string).unwrap_or(inc.title.clone());
        let body = json!({ "incident_id": inc.id, "number": inc.number, "title": title,
                           "urgency": urgency });
        let mut handed = Vec::new();
        let mut written = 0;
        for req in &res.requests {
            let method = people
                .get(&req.user_id)
                .and_then(|p| p.methods.iter().find(|m| m.id == req.contact_method_id));
            let Some(method) = method else { continue };
            let due = req.at <= now;
            let row = sqlx::query(&format!(
                "INSERT INTO notification_requests (idempotency_key, reason, incident_id, user_id, \
                 contact_method_id, contact_kind, address, message, send_at, status, handed_at, created_at, \
                 delivery, attempts, next_attempt_at) \
                 VALUES ($1, 'escalation', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING {OUTBOX_COLUMNS}"
            ))
            .bind(format!("wf:{key}:{}", req.idempotency_key))
            .bind(inc.id)
            .bind(req.user_id)
            .bind(req.contact_method_id)
            .bind(method.kind.as_str())
            .bind(&method.address)
            .bind(body.to_string())
            .bind(to_millis(req.at))
            .bind(if due { "handed" } else { "scheduled" })
            .bind(due.then_some(to_millis(now)))
            .bind(to_millis(now))
            .bind(due.then_some("sending"))
            .bind(i64::from(due))
            .bind(due.then_some(to_millis(now) + self.delivery_lease_ms))
            .fetch_optional(&mut *w.tx)
            .await?;
            if let Some(row) = row {
                written += 1;
                if due {
                    handed.push(HandedNotification::from_row(&row)?);
                }
            }
        }
        incident_event(
            &mut w,
            now,
            actor,
            inc.id,
            "workflow.paged",
            json!({ "target": target_name, "users": res.users,
                    "unreachable_users": res.unreachable_users, "notifications": written }),
        )
        .await?;
        w.commit().await?;
        Ok(PageResult {
            users: res.users,
            unreachable_users: res.unreachable_users,
            notifications: written,
            handed,
        })
    }

    async fn id_by_name(
        &self,
        w: &mut crate::tx::WriteTx,
        table: &'static str,
        name: &str,
    ) -> Result<Option<i64>, StoreError> {
        if let Ok(id) = name.trim().parse::<i64>() {
            return Ok(Some(id));
        }
        Ok(
            sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE name = $1"))
                .bind(name.trim())
                .fetch_optional(&mut *w.tx)
                .await?,
        )
    }
}
