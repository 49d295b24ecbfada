//! Handoff notifications: a reminder some minutes before a user's on-call shift
//! starts (their own setting, none by default) and a notice when it starts (on by
//! default), through the contact methods of their first high-urgency rules.
//!
//! Each schedule has one job, `handoff:{id}`. When it runs it computes the
//! schedule's final shifts (overrides included) around `now`, sends every
//! event due in the last [`LOOK_BACK`] and moves itself to the next event. A
//! change that can move an event (the schedule, its overrides, a user's
//! settings or rules) runs the job again at once, in the transaction making it.
//! Idempotency keys name the shift and the event, never the minutes, so no rerun
//! sends one twice; an event more than [`LOOK_BACK`] old (the engine was down)
//! is skipped rather than sent late.
//!
//! Lock order, as for escalations: the job row, then (key-share) the users the
//! requests reference. The job only reads the schedule and the users; a write
//! arming jobs for a user's change arms them before it locks the user's row.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tocsin_core::escalation::{ContactKind, NotificationRule, Urgency};
use tocsin_core::schedule::{final_shifts, LayerParts, ScheduleParts};
use tocsin_core::time::{to_millis, Timestamp};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::events::{audit, Actor};
use crate::jobs::{self, HandedNotification, OUTBOX_COLUMNS};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Longest reminder lead: a week.
pub const MAX_REMINDER_MINUTES: i64 = 7 * 24 * 60;
/// How late an event may still be sent (after downtime); older ones are skipped.
pub const LOOK_BACK: Duration = Duration::minutes(15);
/// How far ahead shifts are computed: a week's reminder lead plus a day.
const LOOK_AHEAD: Duration = Duration::days(8);
/// Events up to this far ahead are always among the shifts computed (LOOK_AHEAD
/// less the longest reminder), so the job never sleeps past it.
const HORIZON: Duration = Duration::days(1);

/// A user's handoff notification settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffSettings {
    /// Minutes before each of the user's shifts starts to remind them (1 to
    /// 10080); null: no reminder.
    pub reminder_minutes: Option<i64>,
    /// Whether to tell the user when a shift of theirs starts.
    pub notify_on_start: bool,
}

impl HandoffSettings {
    /// Refuses a reminder outside 1..=10080 minutes, naming the field.
    pub fn check(&self) -> Result<(), Invalid> {
        match self.reminder_minutes {
            Some(m) if !(1..=MAX_REMINDER_MINUTES).contains(&m) => Err(Invalid::new(
                "reminder_minutes",
                format!(
                    "must be between 1 and {MAX_REMINDER_MINUTES} minutes, or null for no reminder"
                ),
            )),
            _ => Ok(()),
        }
    }
}

fn settings_row(r: &sqlx::any::AnyRow) -> Result<HandoffSettings, StoreError> {
    Ok(HandoffSettings {
        reminder_minutes: r.try_get("handoff_reminder_minutes")?,
        notify_on_start: r.try_get::<i64, _>("shift_start_notice")? != 0,
    })
}

fn job_key(schedule_id: i64) -> String {
    format!("handoff:{schedule_id}")
}

/// The two events of a shift start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Reminder,
    Start,
}

impl Event {
    fn key(self) -> &'static str {
        match self {
            Event::Reminder => "reminder",
            Event::Start => "start",
        }
    }
    fn reason(self) -> &'static str {
        match self {
            Event::Reminder => "handoff_reminder",
            Event::Start => "shift_started",
        }
    }
}

/// A shift as the user lives it: adjacent shifts of one user (from different
/// layers or an override) are one, and only a start where the user changes is a handoff.
#[derive(Debug, Clone, Copy)]
struct Handoff {
    user_id: i64,
    starts_at: Timestamp,
    ends_at: Timestamp,
    /// False for the shift already under way when the computed range begins.
    starts_here: bool,
}

/// Who a user is for handoff notifications.
struct Recipient {
    settings: HandoffSettings,
    rules: Vec<NotificationRule>,
}

impl Store {
    /// Runs schedule `schedule_id`'s handoff job at `now`, inside the caller's transaction.
    pub(crate) async fn arm_handoff(
        &self,
        w: &mut WriteTx,
        schedule_id: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        jobs::schedule(
            w,
            self.backend,
            "handoff",
            &job_key(schedule_id),
            now,
            &json!({ "schedule_id": schedule_id }),
            now,
        )
        .await
    }

    /// Runs every schedule's handoff job at `now` (a user's settings or rules changed).
    pub(crate) async fn arm_every_handoff(
        &self,
        w: &mut WriteTx,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM schedules ORDER BY id")
            .fetch_all(&mut *w.tx)
            .await?;
        for id in ids {
            self.arm_handoff(w, id, now).await?;
        }
        Ok(())
    }

    /// Drops a deleted schedule's handoff job.
    pub(crate) async fn disarm_handoff(
        &self,
        w: &mut WriteTx,
        schedule_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM jobs WHERE job_key = $1")
            .bind(job_key(schedule_id))
            .execute(&mut *w.tx)
            .await?;
        Ok(())
    }

    /// Gives every schedule without one its handoff job, due at `now` (schedules
    /// made before handoff notifications existed); the number added. Run when
    /// the job runner starts.
    pub async fn arm_handoff_jobs(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut w = self.write().await?;
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM schedules ORDER BY id")
            .fetch_all(&mut *w.tx)
            .await?;
        let mut added = 0;
        for id in ids {
            added += sqlx::query(
                "INSERT INTO jobs (kind, job_key, run_at, payload, attempts, created_at) \
                 VALUES ('handoff', $1, $2, $3, 0, $2) ON CONFLICT (job_key) DO NOTHING",
            )
            .bind(job_key(id))
            .bind(to_millis(now))
            .bind(json!({ "schedule_id": id }).to_string())
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        }
        w.commit().await?;
        Ok(added)
    }

    /// A user's handoff notification settings.
    pub async fn handoff_settings(&self, user_id: i64) -> Result<HandoffSettings, StoreError> {
        let row = self
            .row_by_id(
                "handoff_reminder_minutes, shift_start_notice",
                "users",
                user_id,
                "user",
            )
            .await?;
        settings_row(&row)
    }

    /// Replaces a user's handoff notification settings; a no-op records nothing.
    pub async fn set_handoff_settings(
        &self,
        user_id: i64,
        new: &HandoffSettings,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<HandoffSettings, StoreError> {
        new.check()?;
        let mut w = self.write().await?;
        // The jobs before the user's row: the order the job runner takes them in.
        self.arm_every_handoff(&mut w, now).await?;
        let old = settings_row(
            &self
                .lock_row_by_id(
                    &mut w,
                    "handoff_reminder_minutes, shift_start_notice",
                    "users",
                    user_id,
                    "user",
                )
                .await?,
        )?;
        if old == *new {
            return Ok(old);
        }
        sqlx::query(
            "UPDATE users SET handoff_reminder_minutes = $1, shift_start_notice = $2 WHERE id = $3",
        )
        .bind(new.reminder_minutes)
        .bind(i64::from(new.notify_on_start))
        .bind(user_id)
        .execute(&mut *w.tx)
        .await?;
        audit(
            &mut w,
            now,
            actor,
            "user",
            user_id,
            "user.handoff_notifications_set",
            json!({ "from": old, "to": new }),
        )
        .await?;
        w.commit().await?;
        Ok(*new)
    }

    /// The handoff job: sends the reminders and start notices of the schedule
    /// due in `(now - LOOK_BACK, now]` and says when the next one is due.
    pub(crate) async fn run_handoff_job(
        &self,
        w: &mut WriteTx,
        payload: &str,
        now: Timestamp,
    ) -> Result<(Option<Timestamp>, Vec<HandedNotification>), StoreError> {
        let schedule_id = serde_json::from_str::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v["schedule_id"].as_i64())
            .ok_or_else(|| StoreError::Config(format!("handoff job payload `{payload}`")))?;
        // Read, not locked: a change to the schedule arms this job again.
        let row = sqlx::query("SELECT name, time_zone, layers FROM schedules WHERE id = $1")
            .bind(schedule_id)
            .fetch_optional(&mut *w.tx)
            .await?;
        let Some(row) = row else {
            return Ok((None, Vec::new()));
        };
        let name: String = row.try_get("name")?;
        // Notices say times in the schedule's zone.
        let time_zone: String = row.try_get("time_zone").unwrap_or_default();
        let look_again = Some(now + HORIZON);
        let layers: Result<Vec<LayerParts>, _> =
            serde_json::from_str(&row.try_get::<String, _>("layers")?);
        let parsed = layers.map_err(|e| e.to_string()).and_then(|layers| {
            ScheduleParts {
                time_zone: row.try_get("time_zone").unwrap_or_default(),
                layers,
            }
            .parse()
            .map_err(|e| e.to_string())
        });
        let schedule = match parsed {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(schedule_id, error = %e, "stored schedule does not parse; no handoff notifications");
                return Ok((look_again, Vec::new()));
            }
        };
        let (from, to) = (now - LOOK_BACK, now + LOOK_AHEAD);
        let overrides: Vec<_> = self
            .overrides_in(w, schedule_id, from, to)
            .await?
            .iter()
            .map(|o| o.as_override())
            .collect();
        let handoffs = handoffs(&final_shifts(&schedule, &overrides, from, to), from);
        let mut people = BTreeMap::new();
        for user in handoffs.iter().map(|h| h.user_id).collect::<BTreeSet<_>>() {
            people.insert(user, self.recipient(w, user).await?);
        }
        let mut next = now + HORIZON;
        let mut handed = Vec::new();
        for h in handoffs.iter().filter(|h| h.starts_here) {
            let Some(Some(person)) = people.get(&h.user_id) else {
                continue;
            };
            for (event, at) in events(h, &person.settings) {
                if at > now {
                    next = next.min(at);
                } else if at > from {
                    // `ends_at` is cut at the end of the computed range (8 days on).
                    let message = json!({
                        "schedule_id": schedule_id, "schedule_name": name, "time_zone": time_zone,
                        "starts_at": h.starts_at, "ends_at": h.ends_at,
                        "reminder_minutes": (event == Event::Reminder)
                            .then_some(person.settings.reminder_minutes).flatten(),
                    });
                    handed.extend(
                        self.hand_handoff(w, schedule_id, h, event, at, person, &message, now)
                            .await?,
                    );
                }
            }
        }
        Ok((Some(next), handed))
    }

    // An active user's settings and rules; None for a deactivated or deleted user.
    async fn recipient(
        &self,
        w: &mut WriteTx,
        user_id: i64,
    ) -> Result<Option<Recipient>, StoreError> {
        let row = sqlx::query(
            "SELECT active, notification_rules, handoff_reminder_minutes, shift_start_notice \
             FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if row.try_get::<i64, _>("active")? == 0 {
            return Ok(None);
        }
        Ok(Some(Recipient {
            settings: settings_row(&row)?,
            rules: serde_json::from_str(&row.try_get::<String, _>("notification_rules")?)
                .unwrap_or_default(),
        }))
    }

    // One event into the outbox, handed at once, through each of the user's first
    // high-urgency channels (their rules with no delay), each method once.
    #[allow(clippy::too_many_arguments)]
    async fn hand_handoff(
        &self,
        w: &mut WriteTx,
        schedule_id: i64,
        h: &Handoff,
        event: Event,
        at: Timestamp,
        person: &Recipient,
        message: &serde_json::Value,
        now: Timestamp,
    ) -> Result<Vec<HandedNotification>, StoreError> {
        let mut methods = BTreeSet::new();
        let first: Vec<i64> = person
            .rules
            .iter()
            .filter(|r| r.urgency == Urgency::High && r.delay_minutes == 0)
            .map(|r| r.contact_method_id)
            .filter(|id| methods.insert(*id))
            .collect();
        let mut out = Vec::new();
        for method_id in &first {
            let row = sqlx::query(
                "SELECT kind, address, verified FROM contact_methods WHERE id = $1 AND user_id = $2",
            )
            .bind(method_id)
            .bind(h.user_id)
            .fetch_optional(&mut *w.tx)
            .await?;
            let Some(row) = row else { continue };
            if row.try_get::<i64, _>("verified")? == 0 {
                continue;
            }
            let kind: String = row.try_get("kind")?;
            if ContactKind::parse(&kind).is_none() {
                continue;
            }
            let key = format!(
                "handoff:{schedule_id}:{}:{}:{}:c{method_id}",
                h.user_id,
                to_millis(h.starts_at),
                event.key()
            );
            let row = sqlx::query(&format!(
                "INSERT INTO notification_requests (idempotency_key, reason, incident_id, user_id, \
                 contact_method_id, contact_kind, address, message, send_at, status, handed_at, created_at, \
                 delivery, attempts, next_attempt_at) \
                 VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8, 'handed', $9, $9, 'sending', 1, $10) \
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING {OUTBOX_COLUMNS}"
            ))
            .bind(&key)
            .bind(event.reason())
            .bind(h.user_id)
            .bind(method_id)
            .bind(&kind)
            .bind(row.try_get::<String, _>("address")?)
            .bind(message.to_string())
            .bind(to_millis(at))
            .bind(to_millis(now))
            .bind(to_millis(now) + self.delivery_lease_ms)
            .fetch_optional(&mut *w.tx)
            .await?;
            if let Some(row) = row {
                out.push(HandedNotification::from_row(&row)?);
            }
        }
        if first.is_empty() {
            tracing::debug!(
                user_id = h.user_id,
                schedule_id,
                event = event.key(),
                "no high-urgency rule without delay; no handoff notification"
            );
        }
        Ok(out)
    }
}

/// The shifts computed from `from` with adjacent ones of one user joined. A
/// start at or before `from` is not known to be a handoff (the range may begin
/// mid-shift), and its events would be stale anyway; after a gap, a start is one.
fn handoffs(shifts: &[tocsin_core::schedule::Shift], from: Timestamp) -> Vec<Handoff> {
    let mut out: Vec<Handoff> = Vec::new();
    for s in shifts {
        match out.last_mut() {
            Some(last) if last.ends_at == s.starts_at && last.user_id == s.user_id => {
                last.ends_at = s.ends_at;
            }
            _ => out.push(Handoff {
                user_id: s.user_id,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                starts_here: s.starts_at > from,
            }),
        }
    }
    out
}

/// A handoff's events under the user's settings, with their instants.
fn events(h: &Handoff, s: &HandoffSettings) -> Vec<(Event, Timestamp)> {
    let mut out = Vec::new();
    if let Some(m) = s.reminder_minutes {
        out.push((Event::Reminder, h.starts_at - Duration::minutes(m)));
    }
    if s.notify_on_start {
        out.push((Event::Start, h.starts_at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::schedule::Shift;
    use tocsin_core::time::from_millis;

    fn shift(user_id: i64, s: i64, e: i64, layer: Option<usize>) -> Shift {
        Shift {
            user_id,
            starts_at: from_millis(s * 60_000),
            ends_at: from_millis(e * 60_000),
            layer,
        }
    }

    #[test]
    fn a_user_continuing_from_another_source_is_no_handoff() {
        let hs = handoffs(
            &[
                shift(1, 0, 10, Some(0)),
                shift(2, 10, 20, Some(0)),
                shift(2, 20, 30, None),
                shift(1, 30, 40, Some(0)),
                shift(2, 50, 60, Some(0)),
            ],
            from_millis(0),
        );
        let got: Vec<_> = hs
            .iter()
            .map(|h| {
                (
                    h.user_id,
                    to_millis(h.starts_at) / 60_000,
                    to_millis(h.ends_at) / 60_000,
                    h.starts_here,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 0, 10, false),
                (2, 10, 30, true),
                (1, 30, 40, true),
                (2, 50, 60, true)
            ]
        );
    }

    #[test]
    fn a_start_after_a_gap_is_a_handoff_one_at_the_range_start_is_not() {
        let starts = |from: i64| -> Vec<bool> {
            handoffs(&[shift(1, 5, 10, Some(0))], from_millis(from * 60_000))
                .iter()
                .map(|h| h.starts_here)
                .collect()
        };
        assert_eq!(starts(0), vec![true]);
        assert_eq!(starts(5), vec![false]);
    }

    #[test]
    fn settings_say_which_events_and_when() {
        let h = Handoff {
            user_id: 1,
            starts_at: from_millis(100 * 60_000),
            ends_at: from_millis(200 * 60_000),
            starts_here: true,
        };
        let both = HandoffSettings {
            reminder_minutes: Some(60),
            notify_on_start: true,
        };
        assert_eq!(
            events(&h, &both),
            vec![
                (Event::Reminder, from_millis(40 * 60_000)),
                (Event::Start, from_millis(100 * 60_000))
            ]
        );
        let none = HandoffSettings {
            reminder_minutes: None,
            notify_on_start: false,
        };
        assert!(events(&h, &none).is_empty());
        for bad in [0, -5, MAX_REMINDER_MINUTES + 1] {
            let s = HandoffSettings {
                reminder_minutes: Some(bad),
                notify_on_start: true,
            };
            assert_eq!(s.check().unwrap_err().field, "reminder_minutes");
        }
        assert!(both.check().is_ok());
    }
}
