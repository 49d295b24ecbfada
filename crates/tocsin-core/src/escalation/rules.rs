//! Personal notification rules: a user's contact methods, which of them to use
//! after how long for each urgency, and working hours for low urgency.

use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::policy::MAX_DELAY_MINUTES;
use super::state::DueStep;
use crate::incident::Level as Severity;
use crate::maintenance::{day_str, parse_day, parse_time_of_day, parse_time_zone};
use crate::time::Timestamp;
use crate::Invalid;

/// How a contact method reaches its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    /// An email address.
    Email,
    /// A phone number, by text message.
    Sms,
    /// A phone number, by voice call.
    Voice,
    /// A mobile device, by push notification.
    Push,
    /// A chat user or channel.
    Chat,
    /// An HTTP endpoint.
    Webhook,
}

/// One way to reach a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactMethod {
    /// Contact method id.
    pub id: i64,
    /// How it reaches the user.
    pub kind: ContactKind,
    /// Where: address, number, device or URL.
    pub address: String,
    /// Whether the user proved it reaches them; unverified methods are never used.
    pub verified: bool,
}

/// How urgently an incident needs people: decides which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Page now, day or night.
    High,
    /// Can wait for working hours.
    Low,
}

impl Urgency {
    /// The stored and wire name (`high`, `low`).
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::High => "high",
            Urgency::Low => "low",
        }
    }

    /// The urgency a stored name names; anything but `low` pages as high.
    pub fn from_stored(s: &str) -> Urgency {
        if s == "low" {
            Urgency::Low
        } else {
            Urgency::High
        }
    }
}

impl From<Severity> for Urgency {
    /// An incident's ITIL urgency: only low waits; medium pages like high.
    fn from(level: Severity) -> Self {
        match level {
            Severity::Low => Urgency::Low,
            Severity::High | Severity::Medium => Urgency::High,
        }
    }
}

/// "Use this contact method this many minutes after being notified, at this urgency."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRule {
    /// Urgency the rule applies to.
    pub urgency: Urgency,
    /// The contact method to use.
    pub contact_method_id: i64,
    /// Minutes after the user is notified (after working hours begin, for low urgency).
    pub delay_minutes: u32,
}

/// Checks a user's rules against their contact methods, naming the field (`rules[1].contact_method_id`).
pub fn validate_rules(
    rules: &[NotificationRule],
    methods: &[ContactMethod],
) -> Result<(), Invalid> {
    for (i, rule) in rules.iter().enumerate() {
        if !methods.iter().any(|m| m.id == rule.contact_method_id) {
            return Err(Invalid::new(
                format!("rules[{i}].contact_method_id"),
                format!("the user has no contact method {}", rule.contact_method_id),
            ));
        }
        if rule.delay_minutes > MAX_DELAY_MINUTES {
            return Err(Invalid::new(
                format!("rules[{i}].delay_minutes"),
                format!("must be between 0 and {MAX_DELAY_MINUTES}"),
            ));
        }
        if rules[..i].contains(rule) {
            return Err(Invalid::new(
                format!("rules[{i}]"),
                "the same rule is already there",
            ));
        }
    }
    Ok(())
}

/// When a user works: some days, from a local start to a local end time, in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    /// Working days.
    pub days: Vec<Weekday>,
    /// Local start of the working day.
    pub start: NaiveTime,
    /// Local end of the working day (after the start).
    pub end: NaiveTime,
    /// The user's IANA time zone.
    pub time_zone: Tz,
}

/// Working hours as written: `days` (`mon` … `sun`), `start_time` and
/// `end_time` (`HH:MM`), `time_zone` (IANA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHoursParts {
    /// Working days, `mon` … `sun`.
    pub days: Vec<String>,
    /// Local start, `HH:MM`.
    pub start_time: String,
    /// Local end, `HH:MM`, after the start.
    pub end_time: String,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
}

impl WorkingHoursParts {
    /// Parses working hours, naming the field at fault (fields under `prefix`).
    pub fn parse(&self, prefix: &str) -> Result<WorkingHours, Invalid> {
        let f = |name: &str| format!("{prefix}{name}");
        if self.days.is_empty() {
            return Err(Invalid::new(f("days"), "name at least one working day"));
        }
        let mut days = self
            .days
            .iter()
            .enumerate()
            .map(|(i, d)| parse_day(&f(&format!("days[{i}]")), d))
            .collect::<Result<Vec<_>, _>>()?;
        days.sort_by_key(|d| d.num_days_from_monday());
        days.dedup();
        let start = parse_time_of_day(&f("start_time"), &self.start_time)?;
        let end = parse_time_of_day(&f("end_time"), &self.end_time)?;
        if end <= start {
            return Err(Invalid::new(f("end_time"), "must be after start_time"));
        }
        let time_zone = parse_time_zone(&f("time_zone"), &self.time_zone)?;
        Ok(WorkingHours {
            days,
            start,
            end,
            time_zone,
        })
    }
}

impl WorkingHours {
    /// The hours as written (the inverse of [`WorkingHoursParts::parse`]).
    pub fn parts(&self) -> WorkingHoursParts {
        WorkingHoursParts {
            days: self.days.iter().map(|d| day_str(*d).to_string()).collect(),
            start_time: self.start.format("%H:%M").to_string(),
            end_time: self.end.format("%H:%M").to_string(),
            time_zone: self.time_zone.name().to_string(),
        }
    }

    /// Whether the user's wall clock at `at` shows a working day and a time in the window.
    pub fn contains(&self, at: Timestamp) -> bool {
        let wall = at.with_timezone(&self.time_zone);
        let time = wall.time();
        self.days.contains(&wall.weekday()) && self.start <= time && time < self.end
    }

    /// `at` itself if it falls within working hours, else the first instant after
    /// it that does (within the next eight days; `at` if none).
    ///
    /// The wall clock enters the window either by reaching the start time (an
    /// occurrence of it, or the end of a gap the clocks jump over) or by the
    /// clocks being changed into it, so those instants are the candidates.
    pub fn next_working(&self, at: Timestamp) -> Timestamp {
        if self.contains(at) {
            return at;
        }
        let tz = &self.time_zone;
        let today = at.with_timezone(tz).date_naive();
        let mut candidates = Vec::new();
        for offset in 0..=8 {
            let date = today + Duration::days(offset);
            if self.days.contains(&date.weekday()) {
                candidates.extend(occurrences(tz, date, self.start));
            }
        }
        // Offset changes fall on quarter hours: look at each one for a week and a day.
        let quarter = Duration::minutes(15);
        let mut t = crate::time::from_millis(at.timestamp_millis() / 900_000 * 900_000);
        let horizon = at + Duration::days(8);
        while t < horizon {
            let next = t + quarter;
            if offset_secs(tz, next) != offset_secs(tz, t) {
                candidates.push(next);
            }
            t = next;
        }
        candidates
            .into_iter()
            .filter(|c| *c > at && self.contains(*c))
            .min()
            .unwrap_or(at)
    }
}

fn offset_secs(tz: &Tz, at: Timestamp) -> i32 {
    use chrono::Offset;
    at.with_timezone(tz).offset().fix().local_minus_utc()
}

// Every instant a local time on `date` names: both when the clocks go back, the
// end of the gap when they jump over it.
fn occurrences(tz: &Tz, date: NaiveDate, time: NaiveTime) -> Vec<Timestamp> {
    let mut wall = date.and_time(time);
    for _ in 0..(4 * 24) {
        match tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => return vec![t.with_timezone(&chrono::Utc)],
            LocalResult::Ambiguous(a, b) => {
                return vec![a.with_timezone(&chrono::Utc), b.with_timezone(&chrono::Utc)]
            }
            // Inside a gap: every zone's gaps end on a quarter hour.
            LocalResult::None => wall += Duration::minutes(15 - i64::from(wall.minute() % 15)),
        }
    }
    Vec::new()
}

/// A request to reach one user by one contact method at one time, handed to delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct NotificationRequest {
    /// The incident being paged about.
    pub incident_id: i64,
    /// Who to reach.
    pub user_id: i64,
    /// How to reach them.
    pub contact_method_id: i64,
    /// When to send it.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The same on every recomputation; delivery refuses a key it has seen.
    pub idempotency_key: String,
}

/// The idempotency key of one rule of one user for one escalation step.
pub fn idempotency_key(
    incident_id: i64,
    step: &DueStep,
    user_id: i64,
    contact_method_id: i64,
    rule_index: usize,
) -> String {
    format!(
        "esc:{incident_id}:s{}:r{}:l{}:u{user_id}:c{contact_method_id}:n{rule_index}",
        step.seq, step.round, step.level
    )
}

/// The requests one user's rules give for an escalation step at an urgency:
/// one per rule of that urgency whose contact method is verified, at the step's
/// time plus the rule's delay; low urgency counts from the start of the user's
/// next working hours when they have any.
pub fn notification_requests(
    incident_id: i64,
    step: &DueStep,
    user_id: i64,
    rules: &[NotificationRule],
    methods: &[ContactMethod],
    urgency: Urgency,
    working_hours: Option<&WorkingHours>,
) -> Vec<NotificationRequest> {
    let base = match (urgency, working_hours) {
        (Urgency::Low, Some(hours)) => hours.next_working(step.at),
        _ => step.at,
    };
    rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.urgency == urgency)
        .filter(|(_, rule)| {
            methods
                .iter()
                .any(|m| m.id == rule.contact_method_id && m.verified)
        })
        .map(|(i, rule)| NotificationRequest {
            incident_id,
            user_id,
            contact_method_id: rule.contact_method_id,
            at: base + Duration::minutes(i64::from(rule.delay_minutes)),
            idempotency_key: idempotency_key(incident_id, step, user_id, rule.contact_method_id, i),
        })
        .collect()
}

/// The requests still to send once the incident was acknowledged at `acked_at`:
/// those due strictly before it (an acknowledgement wins a tie).
pub fn until_acknowledged(
    requests: Vec<NotificationRequest>,
    acked_at: Timestamp,
) -> Vec<NotificationRequest> {
    requests.into_iter().filter(|r| r.at < acked_at).collect()
}
