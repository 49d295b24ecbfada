//! Running escalations: started when an incident is triggered, stepped by the
//! job runner, stopped by an acknowledgement, cancelled by resolution, moved by
//! "escalate now". Each step's notification requests go to the outbox with
//! their idempotency keys, and each step is on the incident's timeline.
//!
//! Lock order, so that no two transactions wait on each other: the incident,
//! then the escalation's job, then the escalation. The job runner holds the job
//! and the escalation but never the incident (the rows it adds reference the
//! incident, which takes only a key-share lock, and incidents are locked
//! `FOR NO KEY UPDATE`).

use std::collections::{BTreeMap, HashMap};

use chrono::Duration;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tocsin_core::escalation::{
    resolve_step, ContactKind, ContactMethod, DueStep, EscalationError, EscalationPolicy,
    EscalationState, NotificationRule, Phase, Resolver, Target, Urgency, UserNotifications,
    WorkingHoursParts,
};
use tocsin_core::incident::Status;
use tocsin_core::model::Incident;
use tocsin_core::schedule::on_call_at;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::events::{incident_event, Actor};
use crate::jobs::{self, HandedNotification, OUTBOX_COLUMNS};
use crate::schedules::ScheduleOverride;
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Where an incident's escalation stands.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EscalationView {
    /// The incident.
    pub incident_id: i64,
    /// The policy it started from (its snapshot is below; later edits do not apply).
    pub escalation_policy_id: i64,
    /// The service whose policy it is.
    pub service_id: Option<i64>,
    /// `high` or `low`: which notification rules apply.
    pub urgency: Urgency,
    /// pending, running, acknowledged, resolved or exhausted.
    pub phase: Phase,
    /// The level notified next (0 is the first).
    pub next_level: usize,
    /// The pass through the policy of the level notified next (0 is the first).
    pub round: u32,
    /// When the next level is due; absent once stopped.
    pub next_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The policy as it was when the escalation started.
    pub policy: EscalationPolicy,
    /// Started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) fn engine() -> Actor {
    Actor {
        user_id: None,
        name: "escalation".into(),
    }
}

pub(crate) fn job_key(incident_id: i64) -> String {
    format!("escalation:{incident_id}")
}

pub(crate) fn parse_state(incident_id: i64, text: &str) -> Result<EscalationState, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Config(format!(
            "stored escalation of INC-{incident_id} is unreadable: {e}"
        ))
    })
}

/// On-call and team membership read ahead for one step (the resolver is synchronous).
#[derive(Default)]
pub(crate) struct Preloaded {
    on_call: HashMap<i64, Vec<i64>>,
    teams: HashMap<i64, Vec<i64>>,
}

impl Resolver for Preloaded {
    fn on_call(&self, schedule_id: i64, _at: Timestamp) -> Vec<i64> {
        self.on_call.get(&schedule_id).cloned().unwrap_or_default()
    }
    fn team_members(&self, team_id: i64) -> Vec<i64> {
        self.teams.get(&team_id).cloned().unwrap_or_default()
    }
}

impl Store {
    /// Starts paging for a just-declared, triggered incident: the policy of its
    /// first service that has one, snapshotted; level 0 due now. `false` when no
    /// service of the incident has a policy.
    pub(crate) async fn start_escalation_in(
        &self,
        w: &mut WriteTx,
        inc: &Incident,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut found = None;
        for service_id in &inc.service_ids {
            let policy: Option<i64> =
                sqlx::query_scalar("SELECT escalation_policy_id FROM services WHERE id = $1")
                    .bind(service_id)
                    .fetch_optional(&mut *w.tx)
                    .await?
                    .flatten();
            if let Some(p) = policy {
                found = Some((*service_id, p));
                break;
            }
        }
        let Some((service_id, policy_id)) = found else {
            return Ok(false);
        };
        // Read in this transaction: it holds a connection, and waiting for a
        // second one from the pool starves it when every connection is held.
        let stored = self.escalation_policy_in(w, policy_id).await?;
        let policy = stored.policy();
        let hands_off = policy
            .levels
            .iter()
            .any(|l| l.targets.iter().any(|t| matches!(t, Target::Policy(_))));
        let others: HashMap<i64, EscalationPolicy> = if hands_off {
            self.escalation_policies_in(w)
                .await?
                .into_iter()
                .map(|p| (p.id, p.policy()))
                .collect()
        } else {
            HashMap::new()
        };
        let mut state = EscalationState::new(policy.snapshot(&|id| others.get(&id).cloned()));
        state
            .start(now)
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let urgency = Urgency::from(inc.urgency);
        sqlx::query(
            "INSERT INTO escalations (incident_id, policy_id, service_id, urgency, phase, state, started_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(inc.id)
        .bind(policy_id)
        .bind(service_id)
        .bind(urgency.as_str())
        .bind(state.phase.as_str())
        .bind(serde_json::to_string(&state).unwrap_or_default())
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?;
        jobs::schedule(
            w,
            self.backend,
            "escalation",
            &job_key(inc.id),
            now,
            &json!({ "incident_id": inc.id }),
            now,
        )
        .await?;
        incident_event(
            w,
            now,
            actor,
            inc.id,
            "escalation.started",
            json!({ "escalation_policy_id": policy_id, "escalation_policy_name": stored.name,
                    "service_id": service_id, "urgency": urgency }),
        )
        .await?;
        Ok(true)
    }

    /// The escalation follows the incident's status: leaving `triggered` for an
    /// open status acknowledges it (as does any other move between open
    /// statuses, which stops a page escalated by hand after an acknowledgement),
    /// resolving or closing cancels it; either way notifications not yet handed
    /// to delivery are cancelled.
    pub(crate) async fn escalation_follows_status(
        &self,
        w: &mut WriteTx,
        incident_id: i64,
        from: Status,
        to: Status,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let resolve = !to.is_open();
        let acknowledge = from != to && to != Status::Triggered;
        if !resolve && !acknowledge {
            return Ok(());
        }
        let Some(mut state) = self.lock_escalation(w, incident_id).await? else {
            return Ok(());
        };
        let before = state.phase;
        let moved = if resolve {
            state.resolve(now)
        } else {
            state.acknowledge(now)
        };
        if moved.is_err() || state.phase == before {
            return Ok(());
        }
        self.save_escalation(w, incident_id, &state, now).await?;
        let cancelled = sqlx::query(
            "UPDATE notification_requests SET status = 'cancelled', cancelled_at = $1 \
             WHERE incident_id = $2 AND status = 'scheduled'",
        )
        .bind(to_millis(now))
        .bind(incident_id)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        // Retries waiting for their time stop too: somebody has the incident.
        sqlx::query(
            "UPDATE notification_requests SET delivery = 'cancelled', next_attempt_at = NULL \
             WHERE incident_id = $1 AND delivery = 'pending'",
        )
        .bind(incident_id)
        .execute(&mut *w.tx)
        .await?;
        let kind = if resolve {
            "escalation.cancelled"
        } else {
            "escalation.acknowledged"
        };
        incident_event(
            w,
            now,
            actor,
            incident_id,
            kind,
            json!({ "from": before, "status": to, "cancelled_notifications": cancelled }),
        )
        .await?;
        Ok(())
    }

    /// "Escalate now" (or reassign to a level): notifies `level` at once and
    /// restarts its timing there. An incident that was never paged starts
    /// paging from its service's policy.
    pub async fn escalate_incident(
        &self,
        incident_id: i64,
        level: usize,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<EscalationView, StoreError> {
        let mut w = self.write().await?;
        let inc = self.lock_incident(&mut w, incident_id).await?;
        if !inc.status.is_open() {
            return Err(StoreError::conflict(
                "status",
                format!(
                    "{} is {}; reopen it before escalating",
                    inc.number,
                    serde_json::to_value(inc.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
            ));
        }
        // The job row before the escalation row: the order the job runner takes them in.
        // The payload names the step escalated by hand, for its timeline entry.
        let payload = json!({ "incident_id": incident_id,
                              "escalated": { "level": level, "at": to_millis(now) } });
        jobs::schedule(
            &mut w,
            self.backend,
            "escalation",
            &job_key(incident_id),
            now,
            &payload,
            now,
        )
        .await?;
        let mut state = match self.lock_escalation(&mut w, incident_id).await? {
            Some(s) => s,
            None => {
                if !self.start_escalation_in(&mut w, &inc, actor, now).await? {
                    return Err(Invalid::new(
                        "level",
                        format!("none of {}'s services has an escalation policy", inc.number),
                    )
                    .into());
                }
                // Starting scheduled the job again, without the payload's step.
                jobs::schedule(
                    &mut w,
                    self.backend,
                    "escalation",
                    &job_key(incident_id),
                    now,
                    &payload,
                    now,
                )
                .await?;
                self.lock_escalation(&mut w, incident_id)
                    .await?
                    .ok_or_else(|| StoreError::Config("escalation vanished".into()))?
            }
        };
        let from = state.phase;
        if state.phase == Phase::Resolved {
            // Reopened since it was resolved (a resolved incident was refused
            // above): paging stopped with the resolution and starts again by
            // hand. The step count goes on, so no idempotency key repeats.
            state.phase = Phase::Acknowledged;
        }
        if state.phase == Phase::Running && state.seq == 0 && level == 0 {
            // Just started at level 0 (never paged before): nothing more to do.
        } else {
            state.escalate_now(level, now).map_err(|e| match e {
                EscalationError::NoSuchLevel { .. } => StoreError::from(Invalid::new(
                    "level",
                    format!(
                        "the escalation policy has levels 0 to {}",
                        state.policy.levels.len().saturating_sub(1)
                    ),
                )),
                e => StoreError::conflict("status", e.to_string()),
            })?;
        }
        self.save_escalation(&mut w, incident_id, &state, now)
            .await?;
        incident_event(
            &mut w,
            now,
            actor,
            incident_id,
            "escalation.escalated",
            json!({ "level": level, "from": from }),
        )
        .await?;
        w.commit().await?;
        self.escalation(incident_id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("escalation of INC-{incident_id}")))
    }

    /// An incident's escalation, if it was ever paged.
    pub async fn escalation(&self, incident_id: i64) -> Result<Option<EscalationView>, StoreError> {
        self.incident_exists(incident_id).await?;
        let row = sqlx::query(
            "SELECT policy_id, service_id, urgency, state, started_at, updated_at FROM escalations WHERE incident_id = $1",
        )
        .bind(incident_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let state = parse_state(incident_id, &row.try_get::<String, _>("state")?)?;
        let urgency = Urgency::from_stored(&row.try_get::<String, _>("urgency")?);
        Ok(Some(EscalationView {
            incident_id,
            escalation_policy_id: row.try_get("policy_id")?,
            service_id: row.try_get("service_id")?,
            urgency,
            phase: state.phase,
            next_level: state.level,
            round: state.round,
            next_at: state.next_due(),
            policy: state.policy,
            started_at: from_millis(row.try_get("started_at")?),
            updated_at: from_millis(row.try_get("updated_at")?),
        }))
    }

    pub(crate) async fn lock_escalation(
        &self,
        w: &mut WriteTx,
        incident_id: i64,
    ) -> Result<Option<EscalationState>, StoreError> {
        let text: Option<String> = sqlx::query_scalar(&format!(
            "SELECT state FROM escalations WHERE incident_id = $1{}",
            self.for_update()
        ))
        .bind(incident_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        text.map(|t| parse_state(incident_id, &t)).transpose()
    }

    pub(crate) async fn save_escalation(
        &self,
        w: &mut WriteTx,
        incident_id: i64,
        state: &EscalationState,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE escalations SET phase = $1, state = $2, updated_at = $3 WHERE incident_id = $4",
        )
        .bind(state.phase.as_str())
        .bind(serde_json::to_string(state).unwrap_or_default())
        .bind(to_millis(now))
        .bind(incident_id)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// The escalation job: notifies every level due at `now` (several, after
    /// downtime), records each on the timeline, and says when to run next.
    pub(crate) async fn run_escalation_job(
        &self,
        w: &mut WriteTx,
        payload: &str,
        now: Timestamp,
    ) -> Result<(Option<Timestamp>, Vec<HandedNotification>), StoreError> {
        let payload_json = serde_json::from_str::<serde_json::Value>(payload).ok();
        let incident_id = payload_json
            .as_ref()
            .and_then(|v| v["incident_id"].as_i64())
            .ok_or_else(|| StoreError::Config(format!("escalation job payload `{payload}`")))?;
        // The step "escalate now" made due, if it did: (level, instant).
        let by_hand = payload_json.as_ref().and_then(|v| {
            Some((
                v["escalated"]["level"].as_u64()? as usize,
                v["escalated"]["at"].as_i64()?,
            ))
        });
        // The step a failed delivery made due: (level, instant, user out of reach).
        let unreachable = payload_json.as_ref().and_then(|v| {
            Some((
                v["unreachable"]["level"].as_u64()? as usize,
                v["unreachable"]["at"].as_i64()?,
                v["unreachable"]["user_id"].as_i64()?,
            ))
        });
        let row = sqlx::query(&format!(
            "SELECT urgency, state FROM escalations WHERE incident_id = $1{}",
            self.for_update()
        ))
        .bind(incident_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else {
            return Ok((None, Vec::new()));
        };
        let mut state = parse_state(incident_id, &row.try_get::<String, _>("state")?)?;
        let urgency = Urgency::from_stored(&row.try_get::<String, _>("urgency")?);
        let before = state.phase;
        let steps = state.due(now);
        let mut handed = Vec::new();
        if !steps.is_empty() || state.phase != before {
            let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM incidents WHERE id = $1")
                .bind(incident_id)
                .fetch_optional(&mut *w.tx)
                .await?;
            let inc = crate::incidents::parse_doc(doc, incident_id)?;
            for step in &steps {
                let cause = if by_hand == Some((step.level, to_millis(step.at))) {
                    Some("escalated by hand".to_string())
                } else {
                    unreachable
                        .filter(|(l, at, _)| (*l, *at) == (step.level, to_millis(step.at)))
                        .map(|(_, _, user)| {
                            format!(
                                "every notification to user {user} at level {} failed",
                                step.level
                                    .checked_sub(1)
                                    .unwrap_or(state.policy.levels.len() - 1)
                            )
                        })
                };
                handed.extend(
                    self.notify_step(w, &inc, &state.policy, step, urgency, cause, now)
                        .await?,
                );
            }
            if state.is_exhausted() && before != Phase::Exhausted {
                let passes = state.policy.effective_repeat() + 1;
                incident_event(
                    w,
                    now,
                    &engine(),
                    incident_id,
                    "escalation.exhausted",
                    json!({ "passes": passes, "message": format!(
                        "every level was notified {passes} time(s) and nobody acknowledged") }),
                )
                .await?;
            }
            self.save_escalation(w, incident_id, &state, now).await?;
        }
        Ok((state.next_due(), handed))
    }

    // One due step: who it reaches, their requests into the outbox (handed at
    // once when due), and a timeline entry saying who, how and why (`cause`:
    // why a step came early, by hand or after a failed delivery).
    #[allow(clippy::too_many_arguments)]
    async fn notify_step(
        &self,
        w: &mut WriteTx,
        inc: &Incident,
        policy: &EscalationPolicy,
        step: &DueStep,
        urgency: Urgency,
        cause: Option<String>,
        now: Timestamp,
    ) -> Result<Vec<HandedNotification>, StoreError> {
        let resolver = self.preload(w, policy, step).await?;
        let who = resolve_step(policy, inc.id, step, urgency, &resolver, &BTreeMap::new());
        let people = self.user_notifications(w, &who.users).await?;
        let res = resolve_step(policy, inc.id, step, urgency, &resolver, &people);
        let message = json!({
            "incident_id": inc.id, "number": inc.number, "title": inc.title,
            "urgency": urgency, "level": step.level, "round": step.round,
        });
        let mut handed = Vec::new();
        let mut sent = Vec::new();
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
            .bind(&req.idempotency_key)
            .bind(inc.id)
            .bind(req.user_id)
            .bind(req.contact_method_id)
            .bind(method.kind.as_str())
            .bind(&method.address)
            .bind(message.to_string())
            .bind(to_millis(req.at))
            .bind(if due { "handed" } else { "scheduled" })
            .bind(due.then_some(to_millis(now)))
            .bind(to_millis(now))
            // Handed now: held by this node's sender for its lease (jobs.rs).
            .bind(due.then_some("sending"))
            .bind(i64::from(due))
            .bind(due.then_some(to_millis(now) + self.delivery_lease_ms))
            .fetch_optional(&mut *w.tx)
            .await?;
            if let Some(row) = row {
                if due {
                    handed.push(HandedNotification::from_row(&row)?);
                }
                sent.push(
                    json!({ "user_id": req.user_id, "contact_method_id": req.contact_method_id,
                                  "contact_kind": method.kind, "send_at": req.at }),
                );
            }
        }
        incident_event(
            w,
            now,
            &engine(),
            inc.id,
            "escalation.notified",
            json!({
                "level": step.level, "round": step.round, "due_at": step.at,
                "users": res.users, "empty_targets": res.empty_targets,
                "unreachable_users": res.unreachable_users, "notifications": sent,
                "reason": if step.seq == 0 { "incident triggered".to_string() }
                          else if let Some(cause) = cause { cause }
                          else if step.level == 0 { format!("pass {} of the policy", step.round + 1) }
                          else { format!("level {} was not acknowledged in time", step.level - 1) },
            }),
        )
        .await?;
        Ok(handed)
    }

    // Who each schedule target has on call at the step's time, and each team's
    // members, read in the job's transaction.
    pub(crate) async fn preload(
        &self,
        w: &mut WriteTx,
        policy: &EscalationPolicy,
        step: &DueStep,
    ) -> Result<Preloaded, StoreError> {
        let mut out = Preloaded::default();
        let Some(level) = policy.levels.get(step.level) else {
            return Ok(out);
        };
        for target in &level.targets {
            match *target {
                Target::Schedule(id) if !out.on_call.contains_key(&id) => {
                    let users = match self.schedule_in(w, id).await {
                        Ok(s) => match s.schedule() {
                            Ok(parsed) => {
                                let overrides: Vec<_> = self
                                    .overrides_in(
                                        w,
                                        id,
                                        step.at - Duration::minutes(1),
                                        step.at + Duration::minutes(1),
                                    )
                                    .await?
                                    .iter()
                                    .map(ScheduleOverride::as_override)
                                    .collect();
                                on_call_at(&parsed, &overrides, step.at)
                                    .map(|(u, _)| vec![u])
                                    .unwrap_or_default()
                            }
                            Err(e) => {
                                tracing::error!(schedule_id = id, error = %e, "stored schedule does not parse; it reaches nobody");
                                Vec::new()
                            }
                        },
                        Err(StoreError::NotFound { .. }) => Vec::new(),
                        Err(e) => return Err(e),
                    };
                    out.on_call.insert(id, users);
                }
                Target::Team(id) if !out.teams.contains_key(&id) => {
                    // A deleted team has no members left.
                    let members: Vec<i64> = sqlx::query_scalar(
                        "SELECT user_id FROM team_members WHERE team_id = $1 ORDER BY user_id",
                    )
                    .bind(id)
                    .fetch_all(&mut *w.tx)
                    .await?;
                    out.teams.insert(id, members);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    // Contact methods, rules and working hours of active users among `users`.
    pub(crate) async fn user_notifications(
        &self,
        w: &mut WriteTx,
        users: &[i64],
    ) -> Result<BTreeMap<i64, UserNotifications>, StoreError> {
        let mut out = BTreeMap::new();
        for &user in users {
            let row = sqlx::query(
                "SELECT active, notification_rules, working_hours FROM users WHERE id = $1",
            )
            .bind(user)
            .fetch_optional(&mut *w.tx)
            .await?;
            let Some(row) = row else { continue };
            if row.try_get::<i64, _>("active")? == 0 {
                continue;
            }
            let rules: Vec<NotificationRule> =
                serde_json::from_str(&row.try_get::<String, _>("notification_rules")?)
                    .unwrap_or_default();
            let working_hours = row
                .try_get::<Option<String>, _>("working_hours")?
                .and_then(|t| serde_json::from_str::<WorkingHoursParts>(&t).ok())
                .and_then(|p| p.parse("working_hours.").ok());
            let methods = sqlx::query(
                "SELECT id, kind, address, verified FROM contact_methods WHERE user_id = $1 ORDER BY id",
            )
            .bind(user)
            .fetch_all(&mut *w.tx)
            .await?
            .iter()
            .filter_map(|r| {
                let kind = ContactKind::parse(&r.try_get::<String, _>("kind").ok()?)?;
                Some(ContactMethod {
                    id: r.try_get("id").ok()?,
                    kind,
                    address: r.try_get("address").ok()?,
                    verified: r.try_get::<i64, _>("verified").ok()? != 0,
                })
            })
            .collect();
            out.insert(
                user,
                UserNotifications {
                    methods,
                    rules,
                    working_hours,
                },
            );
        }
        Ok(out)
    }
}
