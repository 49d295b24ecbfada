//! What a notification says, before it is put into words: a page, an on-call
//! shift notice, a verification code, a test. Delivery turns an outbox row into
//! a [`Notice`] ([`Notice::from_outbox`]), adds the links it signs
//! ([`Notice::set_links`]), and [`crate::Templates`] renders it per channel.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_core::escalation::Urgency;

use crate::message::{Action, IncidentSummary, Link};

/// What is being said. Serialized (with `kind`) it is the templates' context.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// An incident pages the recipient (outbox reason `escalation`).
    Page(PageNotice),
    /// The recipient's on-call shift starts soon (`handoff_reminder`).
    HandoffReminder(ShiftNotice),
    /// The recipient's on-call shift has started (`shift_started`).
    ShiftStarted(ShiftNotice),
    /// A code proving a contact method reaches its user (`verification`).
    Verification(VerificationNotice),
    /// A test notification the user asked for (`test`).
    Test(TestNotice),
    /// An action item the recipient owns is past its due day (`action_item_overdue`).
    ActionItemOverdue(ActionItemNotice),
}

/// An overdue action item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionItemNotice {
    /// Its id.
    pub action_item_id: i64,
    /// What to do (written by people).
    pub title: String,
    /// Its postmortem.
    pub postmortem_id: i64,
    /// The postmortem's title (may quote an alert).
    pub postmortem_title: String,
    /// Its due day, `YYYY-MM-DD`.
    pub due_date: String,
    /// Days past it.
    pub days_overdue: i64,
    /// `low`, `medium` or `high`.
    pub priority: String,
}

/// The facts of a page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageNotice {
    /// Incident id (the API's).
    pub id: i64,
    /// The incident's number, as people say it (#12).
    pub number: i64,
    /// Its title (attacker-controlled: it may come from an alert).
    pub title: String,
    /// How urgently it needs people.
    pub urgency: Urgency,
    /// The escalation level being paged.
    pub level: Option<u32>,
    /// Which pass of the policy (0: the first).
    pub round: Option<u32>,
    /// Names of the services affected.
    pub services: Vec<String>,
    /// Where to look: the incident's page, a runbook.
    pub links: Vec<Link>,
    /// One-click actions (signed links).
    pub actions: Vec<Action>,
    /// Whether the recipient can answer an SMS with `12 ack` / `12 resolve`.
    pub sms_replies: bool,
}

/// An on-call shift, for reminders and start notices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShiftNotice {
    /// The schedule's name.
    pub schedule_name: String,
    /// When the shift starts.
    pub starts_at: DateTime<Utc>,
    /// When it ends (cut at the end of the computed range, eight days on).
    pub ends_at: DateTime<Utc>,
    /// The schedule's IANA time zone; times are said in it (UTC when none or unknown).
    pub time_zone: Option<String>,
    /// For reminders: how many minutes before the start it is sent.
    pub reminder_minutes: Option<u32>,
}

/// A verification code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationNotice {
    /// The six digits.
    pub code: String,
    /// Minutes the code works for.
    pub expires_minutes: u32,
}

/// A test notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestNotice {
    /// The contact method's label (`Work email`).
    pub label: String,
}

/// An outbox row's message did not have the shape its reason needs.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// A reason this build does not know.
    #[error("unknown notification reason `{0}`")]
    UnknownReason(String),
    /// The message lacks a field or has one of the wrong type.
    #[error("outbox message for reason `{reason}`: {message}")]
    Message {
        /// The row's reason.
        reason: String,
        /// What is wrong.
        message: String,
    },
}

// The stored shapes (crates/tocsin-store: escalations.rs, handoffs.rs, verification.rs).
#[derive(Deserialize)]
struct StoredPage {
    incident_id: i64,
    #[serde(deserialize_with = "incident_number")]
    number: i64,
    title: String,
    urgency: Urgency,
    level: Option<u32>,
    round: Option<u32>,
}

// Pages store the incident's number as the API writes it (`"INC-12"`); a plain
// number is taken too.
fn incident_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Plain(i64),
        Named(String),
    }
    match Number::deserialize(d)? {
        Number::Plain(n) => Ok(n),
        Number::Named(s) => s
            .trim_start_matches("INC-")
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an incident number"))),
    }
}

#[derive(Deserialize)]
struct StoredShift {
    schedule_name: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    reminder_minutes: Option<u32>,
}

#[derive(Deserialize)]
struct StoredCode {
    code: String,
    expires_minutes: u32,
}

#[derive(Deserialize)]
struct StoredTest {
    label: String,
}

impl Notice {
    /// The notice an outbox row (`reason`, `message` JSON) stands for. Pages come
    /// without links, actions or services: delivery adds them ([`Notice::set_links`]).
    pub fn from_outbox(reason: &str, message: &serde_json::Value) -> Result<Notice, NoticeError> {
        fn parse<T: serde::de::DeserializeOwned>(
            reason: &str,
            v: &serde_json::Value,
        ) -> Result<T, NoticeError> {
            T::deserialize(v).map_err(|e| NoticeError::Message {
                reason: reason.to_string(),
                message: e.to_string(),
            })
        }
        Ok(match reason {
            "escalation" => {
                let p: StoredPage = parse(reason, message)?;
                Notice::Page(PageNotice {
                    id: p.incident_id,
                    number: p.number,
                    title: p.title,
                    urgency: p.urgency,
                    level: p.level,
                    round: p.round,
                    services: Vec::new(),
                    links: Vec::new(),
                    actions: Vec::new(),
                    sms_replies: false,
                })
            }
            "handoff_reminder" | "shift_started" => {
                let s: StoredShift = parse(reason, message)?;
                let shift = ShiftNotice {
                    schedule_name: s.schedule_name,
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                    time_zone: s.time_zone.filter(|z| !z.is_empty()),
                    reminder_minutes: s.reminder_minutes,
                };
                if reason == "handoff_reminder" {
                    Notice::HandoffReminder(shift)
                } else {
                    Notice::ShiftStarted(shift)
                }
            }
            "verification" => {
                let c: StoredCode = parse(reason, message)?;
                Notice::Verification(VerificationNotice {
                    code: c.code,
                    expires_minutes: c.expires_minutes,
                })
            }
            "test" => {
                let t: StoredTest = parse(reason, message)?;
                Notice::Test(TestNotice { label: t.label })
            }
            "action_item_overdue" => Notice::ActionItemOverdue(parse(reason, message)?),
            other => return Err(NoticeError::UnknownReason(other.to_string())),
        })
    }

    /// Sets a page's links and actions; other notices have none and are unchanged.
    pub fn set_links(&mut self, links: Vec<Link>, actions: Vec<Action>) {
        if let Notice::Page(p) = self {
            p.links = links;
            p.actions = actions;
        }
    }

    /// The page's facts, for changing more of them (services, SMS replies).
    pub fn page_mut(&mut self) -> Option<&mut PageNotice> {
        match self {
            Notice::Page(p) => Some(p),
            _ => None,
        }
    }

    /// The incident a message about this notice carries.
    pub(crate) fn incident(&self) -> Option<IncidentSummary> {
        match self {
            Notice::Page(p) => Some(IncidentSummary {
                id: p.id,
                number: p.number,
                title: p.title.clone(),
                urgency: p.urgency,
                level: p.level,
                links: p.links.clone(),
                actions: p.actions.clone(),
            }),
            _ => None,
        }
    }

    /// Shift times in the schedule's zone, as people read them: `Wed 25 Nov 09:00 CET`.
    pub(crate) fn local_times(&self) -> Option<(String, String)> {
        let s = match self {
            Notice::HandoffReminder(s) | Notice::ShiftStarted(s) => s,
            _ => return None,
        };
        let tz: chrono_tz::Tz = s
            .time_zone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(chrono_tz::UTC);
        let f = |t: DateTime<Utc>| {
            t.with_timezone(&tz)
                .format("%a %-d %b %H:%M %Z")
                .to_string()
        };
        Some((f(s.starts_at), f(s.ends_at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outbox_rows_become_notices() {
        let page = Notice::from_outbox(
            "escalation",
            &json!({ "incident_id": 7, "number": 12, "title": "Database down",
                     "urgency": "high", "level": 1, "round": 0 }),
        )
        .unwrap();
        let Notice::Page(p) = &page else {
            panic!("{page:?}")
        };
        assert_eq!(
            (p.id, p.number, p.level, p.round),
            (7, 12, Some(1), Some(0))
        );
        assert_eq!(p.urgency, Urgency::High);
        // As the store writes it: the number as the API shows it.
        let stored = json!({ "incident_id": 7, "number": "INC-12", "title": "Database down",
                             "urgency": "high", "level": 1, "round": 0 });
        assert_eq!(Notice::from_outbox("escalation", &stored).unwrap(), page);
        let mut bad = stored.clone();
        bad["number"] = json!("twelve");
        assert!(Notice::from_outbox("escalation", &bad).is_err());

        let shift = json!({ "schedule_id": 3, "schedule_name": "Primary", "time_zone": "Europe/Berlin",
            "starts_at": "2026-11-25T08:00:00Z", "ends_at": "2026-11-26T08:00:00Z",
            "reminder_minutes": 60 });
        let n = Notice::from_outbox("handoff_reminder", &shift).unwrap();
        assert_eq!(
            n.local_times().unwrap(),
            (
                "Wed 25 Nov 09:00 CET".to_string(),
                "Thu 26 Nov 09:00 CET".to_string()
            )
        );
        let mut old = shift.clone();
        old.as_object_mut().unwrap().remove("time_zone");
        old["reminder_minutes"] = serde_json::Value::Null;
        let n = Notice::from_outbox("shift_started", &old).unwrap();
        assert!(matches!(&n, Notice::ShiftStarted(s) if s.time_zone.is_none()));
        assert_eq!(n.local_times().unwrap().0, "Wed 25 Nov 08:00 UTC");

        let n = Notice::from_outbox(
            "verification",
            &json!({ "code": "012345", "expires_minutes": 15, "contact_method_id": 4, "label": "x" }),
        )
        .unwrap();
        assert!(matches!(n, Notice::Verification(v) if v.code == "012345"));
        let n = Notice::from_outbox("test", &json!({ "label": "Work email" })).unwrap();
        assert!(matches!(n, Notice::Test(t) if t.label == "Work email"));
    }

    #[test]
    fn bad_rows_are_refused_by_reason() {
        let e = Notice::from_outbox("escalation", &json!({ "number": 1 })).unwrap_err();
        assert!(e.to_string().contains("`escalation`"), "{e}");
        let e = Notice::from_outbox("fax", &json!({})).unwrap_err();
        assert!(matches!(e, NoticeError::UnknownReason(r) if r == "fax"));
    }

    #[test]
    fn links_go_on_pages_only() {
        let link = Link {
            text: "Incident".into(),
            href: "https://t.example/incidents/7".into(),
        };
        let mut page = Notice::from_outbox(
            "escalation",
            &json!({ "incident_id": 7, "number": 12, "title": "t", "urgency": "low",
                     "level": null, "round": null }),
        )
        .unwrap();
        page.set_links(vec![link.clone()], vec![]);
        assert_eq!(page.incident().unwrap().links, vec![link.clone()]);
        let mut test = Notice::from_outbox("test", &json!({ "label": "x" })).unwrap();
        test.set_links(vec![link], vec![]);
        assert!(test.incident().is_none() && test.page_mut().is_none());
    }
}
