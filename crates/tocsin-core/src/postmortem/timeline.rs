//! The key timeline of a postmortem: the events of the log that tell the story
//! (declaration, first alert, acknowledgement, paging, role and severity
//! changes, status changes, decisions and approvals, status-page updates,
//! runbook steps), each as one plain sentence. Routine events (every
//! notification attempt, repeated alerts, field edits) stay in the full log;
//! unknown kinds are skipped, so newer event kinds never break a draft.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::Directory;
use crate::model::Event;
use crate::time::Timestamp;

/// What a key event is, for icons and filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// The incident was declared.
    Declared,
    /// The incident's first alert.
    FirstAlert,
    /// First move out of triggered.
    Acknowledged,
    /// Any other lifecycle move.
    StatusChanged,
    /// Resolved or closed incident worked on again.
    Reopened,
    /// Closure requested or confirmed.
    Closure,
    /// Paging started, escalated, ran out or failed to reach someone.
    Escalation,
    /// People paged at an escalation level.
    Paged,
    /// Incident roles or the assignee changed.
    RoleChanged,
    /// Severity changed.
    SeverityChanged,
    /// A decision was recorded.
    Decision,
    /// An approval was recorded.
    Approval,
    /// A status-page post was published or updated.
    StatusPage,
    /// A status-page component changed status.
    Component,
    /// A runbook or workflow step ran.
    Runbook,
}

/// One line of the key timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyEvent {
    /// When it happened.
    pub at: Timestamp,
    /// The log entry it comes from.
    pub event_id: i64,
    /// The incident it belongs to.
    pub incident_id: Option<i64>,
    /// What it is.
    pub kind: KeyKind,
    /// Who acted, as the log shows them.
    pub actor: String,
    /// What happened, in words (plain text).
    pub text: String,
}

/// The key events of `events` (any order, several incidents allowed), oldest
/// first (ties by log position).
pub fn key_events(events: &[Event], dir: &Directory) -> Vec<KeyEvent> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| (e.at, e.id));
    // Note bodies by id, for notes marked as decisions after they were written.
    let bodies: HashMap<i64, &str> = sorted
        .iter()
        .filter(|e| e.kind == "incident.note_added")
        .filter_map(|e| Some((e.data["note_id"].as_i64()?, e.data["body"].as_str()?)))
        .collect();
    let mut alerted: HashSet<Option<i64>> = HashSet::new();
    let mut out = Vec::new();
    for e in sorted {
        let mut push = |kind, text: String| {
            out.push(KeyEvent {
                at: e.at,
                event_id: e.id,
                incident_id: e.incident_id,
                kind,
                actor: e.actor.clone(),
                text,
            })
        };
        let d = &e.data;
        match e.kind.as_str() {
            "incident.declared" => {
                let i = &d["incident"];
                push(
                    KeyKind::Declared,
                    format!(
                        "Declared {} ({}): {}",
                        s(&i["number"]),
                        s(&i["severity"]),
                        s(&i["title"])
                    ),
                );
            }
            "alert.triggered" if alerted.insert(e.incident_id) => {
                push(
                    KeyKind::FirstAlert,
                    format!(
                        "First alert: {} (via {})",
                        s(&d["summary"]),
                        s(&d["integration"])
                    ),
                );
            }
            "incident.status_changed" => {
                let (from, to) = (s(&d["from"]), s(&d["to"]));
                if d["reopened"].as_bool() == Some(true) {
                    push(KeyKind::Reopened, format!("Reopened: {from} → {to}"));
                } else if from == "triggered" {
                    let how = if to == "acknowledged" {
                        String::new()
                    } else {
                        format!(" (moved to {to})")
                    };
                    push(KeyKind::Acknowledged, format!("Acknowledged{how}"));
                } else {
                    push(KeyKind::StatusChanged, format!("Status: {from} → {to}"));
                }
            }
            "incident.closure_requested" => push(
                KeyKind::Closure,
                "Closure requested from the reporter".into(),
            ),
            "incident.closure_confirmed" => {
                push(KeyKind::Closure, "Closure confirmed: closed".into())
            }
            "incident.closure_rejected" => push(
                KeyKind::Reopened,
                format!("Closure rejected: reopened ({})", s(&d["to"])),
            ),
            "incident.updated" => {
                for c in d["changes"].as_array().into_iter().flatten() {
                    match c["field"].as_str() {
                        Some("roles") => push(
                            KeyKind::RoleChanged,
                            format!("Roles: {}", roles(&c["new"], dir)),
                        ),
                        Some("assignee_id") => push(
                            KeyKind::RoleChanged,
                            format!(
                                "Assignee: {} → {}",
                                user(&c["old"], dir),
                                user(&c["new"], dir)
                            ),
                        ),
                        Some("severity") => push(
                            KeyKind::SeverityChanged,
                            format!("Severity: {} → {}", s(&c["old"]), s(&c["new"])),
                        ),
                        _ => {}
                    }
                }
            }
            "incident.note_added" => {
                if let Some((kind, words)) = marked(d["kind"].as_str()) {
                    push(
                        kind,
                        format!(
                            "{words}: {}{}",
                            first_line(&s(&d["body"])),
                            approver(d, dir)
                        ),
                    );
                }
            }
            "incident.note_marked" | "incident.attachment_marked" => {
                let new_kind = d["changes"]
                    .as_array()
                    .and_then(|a| a.iter().find(|c| c["field"] == "kind"))
                    .and_then(|c| c["new"].as_str());
                if let Some((kind, words)) = marked(new_kind) {
                    let what = match d["note_id"].as_i64() {
                        Some(id) => bodies
                            .get(&id)
                            .map_or_else(|| format!("note #{id}"), |b| first_line(b)),
                        None => format!("attachment #{}", d["attachment_id"]),
                    };
                    push(kind, format!("{words} (marked later): {what}"));
                }
            }
            "incident.attachment_added" => {
                if let Some((kind, words)) = marked(d["kind"].as_str()) {
                    push(
                        kind,
                        format!(
                            "{words}: attached {}{}",
                            s(&d["filename"]),
                            approver(d, dir)
                        ),
                    );
                }
            }
            "escalation.started" => push(
                KeyKind::Escalation,
                format!(
                    "Paging started with escalation policy {}",
                    s(&d["escalation_policy_name"])
                ),
            ),
            "escalation.notified" => {
                let who: Vec<String> = d["users"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|u| user(u, dir))
                    .collect();
                let level = d["level"].as_i64().unwrap_or(0) + 1;
                let who = if who.is_empty() {
                    "nobody could be notified".into()
                } else {
                    who.join(", ")
                };
                push(
                    KeyKind::Paged,
                    format!("Paged escalation level {level}: {who}"),
                );
            }
            "escalation.escalated" => push(
                KeyKind::Escalation,
                format!(
                    "Escalated by hand to level {}",
                    d["level"].as_i64().unwrap_or(0) + 1
                ),
            ),
            "escalation.exhausted" => push(
                KeyKind::Escalation,
                format!("Paging ran out: {}", s(&d["message"])),
            ),
            "escalation.not_started" => push(
                KeyKind::Escalation,
                format!("Paging could not start: {}", s(&d["reason"])),
            ),
            "notification.user_unreachable" => push(
                KeyKind::Escalation,
                format!(
                    "Could not reach {} at any contact method",
                    user(&d["user_id"], dir)
                ),
            ),
            "status_post.published" => push(
                KeyKind::StatusPage,
                format!(
                    "Status page: published \"{}\" ({})",
                    s(&d["name"]),
                    words(&d["status"])
                ),
            ),
            "status_post.updated" => {
                let auto = if d["automatic"].as_bool() == Some(true) {
                    " (automatic)"
                } else {
                    ""
                };
                push(
                    KeyKind::StatusPage,
                    format!(
                        "Status page update: {} → {}{auto}",
                        words(&d["from"]),
                        words(&d["to"])
                    ),
                )
            }
            "status_component.status_changed" => push(
                KeyKind::Component,
                format!(
                    "Component {}: {} → {}",
                    s(&d["name"]),
                    words(&d["from"]),
                    words(&d["to"])
                ),
            ),
            k if k.starts_with("runbook.") || k.starts_with("workflow.") => {
                let what = ["step", "name", "title"]
                    .iter()
                    .map(|f| &d[*f])
                    .find(|v| v.is_string());
                let what = what.map_or_else(|| k.replace(['.', '_'], " "), s);
                let outcome = d["status"]
                    .as_str()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default();
                push(KeyKind::Runbook, format!("Runbook: {what}{outcome}"))
            }
            _ => {}
        }
    }
    out
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "?".into(),
        other => other.to_string(),
    }
}

/// A stored name (`major_outage`) as words (`major outage`).
fn words(v: &Value) -> String {
    s(v).replace('_', " ")
}

fn user(v: &Value, dir: &Directory) -> String {
    v.as_i64()
        .map_or_else(|| "nobody".into(), |id| dir.user_name(id))
}

fn roles(v: &Value, dir: &Directory) -> String {
    let held: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(role, ids)| {
            let who: Vec<String> = ids.as_array()?.iter().map(|u| user(u, dir)).collect();
            (!who.is_empty()).then(|| format!("{role} {}", who.join(" and ")))
        })
        .collect();
    if held.is_empty() {
        "none".into()
    } else {
        held.join("; ")
    }
}

fn marked(kind: Option<&str>) -> Option<(KeyKind, &'static str)> {
    match kind? {
        "decision" => Some((KeyKind::Decision, "Decision")),
        "approval" => Some((KeyKind::Approval, "Approval")),
        _ => None,
    }
}

fn approver(d: &Value, dir: &Directory) -> String {
    if d["approved_by"].is_i64() {
        format!(" (approved by {})", user(&d["approved_by"], dir))
    } else {
        String::new()
    }
}

/// The first non-empty line, at most 200 characters: a timeline line stays one line.
fn first_line(text: &str) -> String {
    const MAX: usize = 200;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > MAX {
        format!("{}…", line.chars().take(MAX).collect::<String>())
    } else {
        line.to_string()
    }
}
