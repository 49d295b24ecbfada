//! The incident room's timeline: one human sentence per event of the log, and
//! the note it added (rendered Markdown, with its current mark) where it has one.

use std::collections::HashMap;

use serde_json::Value;
use tocsin_core::incident::RecordKind;
use tocsin_core::model::{Event, Note};
use tocsin_core::status_page::PostStatus;

use crate::web::markdown;
use crate::web::Chrome;

/// One entry of the timeline, formatted for the page.
pub(crate) struct Item {
    pub id: i64,
    pub when: String,
    pub at: String,
    pub actor: String,
    pub sentence: String,
    /// A link the sentence refers to (an alert), with its text.
    pub link: Option<(String, String)>,
    /// The note this event added, if any.
    pub note: Option<NoteItem>,
    /// `note`, `marked` or empty: the dot's colour.
    pub class: &'static str,
}

/// A note on the timeline.
pub(crate) struct NoteItem {
    pub id: i64,
    /// `note`, `decision` or `approval`, as it is marked now.
    pub kind: &'static str,
    /// Safe HTML of the Markdown body.
    pub html: String,
    /// Who approved, for approvals.
    pub approved_by: String,
}

/// The timeline of `events`, oldest first, with `notes` by id and user names.
pub(crate) fn items(
    chrome: &Chrome,
    events: &[Event],
    notes: &[Note],
    users: &HashMap<i64, String>,
) -> Vec<Item> {
    let notes: HashMap<i64, &Note> = notes.iter().map(|n| (n.id, n)).collect();
    events
        .iter()
        .map(|e| {
            let mut item = Item {
                id: e.id,
                when: chrome.time(&e.at),
                at: e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                actor: e.actor.clone(),
                sentence: sentence(e, users),
                link: None,
                note: None,
                class: "",
            };
            if e.kind.starts_with("alert.") {
                let summary = text(&e.data["summary"]);
                item.link = Some((format!("/alerts/{}", e.entity_id), summary));
            }
            if e.entity == "status_post" && e.kind != "status_post.deleted" {
                let what = match e.data["name"].as_str() {
                    Some(n) => n.to_string(),
                    None => "the post".into(),
                };
                item.link = Some((format!("/status-posts/{}", e.entity_id), what));
            }
            if e.kind == "incident.note_added" {
                if let Some(n) = e.data["note_id"].as_i64().and_then(|id| notes.get(&id)) {
                    item.class = if n.kind == RecordKind::Note {
                        "note"
                    } else {
                        "marked"
                    };
                    item.note = Some(NoteItem {
                        id: n.id,
                        kind: n.kind.as_str(),
                        html: markdown::render(&n.body),
                        approved_by: n
                            .approved_by
                            .and_then(|u| users.get(&u).cloned())
                            .unwrap_or_default(),
                    });
                }
            }
            item
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn user(v: &Value, users: &HashMap<i64, String>) -> String {
    match v.as_i64() {
        Some(id) => users
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("user {id}")),
        None => "nobody".into(),
    }
}

/// Shortens long values so one sentence stays one line or two.
fn short(s: String) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        s
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

/// One field change, in words.
fn change(c: &Value, users: &HashMap<i64, String>) -> Option<String> {
    let field = c["field"].as_str()?;
    let (old, new) = (&c["old"], &c["new"]);
    Some(match field {
        // Timestamps follow the status; the status sentence says it already.
        f if f.ends_with("_at") => return None,
        "status" => return None,
        "description" => "edited the description".into(),
        "assignee_id" | "approved_by" => {
            format!("{field}: {} → {}", user(old, users), user(new, users))
        }
        "roles" => {
            let names = |v: &Value| -> String {
                match v.as_object() {
                    Some(m) if !m.is_empty() => m
                        .iter()
                        .map(|(role, ids)| {
                            let who: Vec<String> = ids
                                .as_array()
                                .map(|a| a.iter().map(|u| user(u, users)).collect())
                                .unwrap_or_default();
                            format!("{role} {}", who.join(" and "))
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                    _ => "none".into(),
                }
            };
            format!("roles: {} → {}", names(old), names(new))
        }
        "related" => {
            let rel = |v: &Value| -> String {
                match v.as_array() {
                    Some(a) if !a.is_empty() => a
                        .iter()
                        .map(|r| {
                            format!(
                                "{} INC-{}",
                                text(&r["kind"]).replace('_', " "),
                                r["incident_id"]
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => "none".into(),
                }
            };
            format!("links: {} → {}", rel(old), rel(new))
        }
        _ => format!(
            "{}: {} → {}",
            field.replace('_', " "),
            short(text(old)),
            short(text(new))
        ),
    })
}

fn changes(e: &Event, users: &HashMap<i64, String>) -> String {
    e.data["changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| change(c, users))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// A status-page post's status as people read it.
fn post_status(v: &Value) -> String {
    v.as_str()
        .and_then(PostStatus::from_stored)
        .map_or_else(|| text(v), |p| p.label().to_lowercase())
}

/// What the event says, in words (the actor is shown beside it).
pub(crate) fn sentence(e: &Event, users: &HashMap<i64, String>) -> String {
    let d = &e.data;
    let s = |k: &str| text(&d[k]);
    match e.kind.as_str() {
        k if k.starts_with("runbook.") => super::runbooks::sentence(e),
        // The event holds the incident as declared.
        "incident.declared" => format!(
            "declared the incident ({})",
            text(&d["incident"]["severity"])
        ),
        "incident.updated" => format!("changed {}", changes(e, users)),
        "incident.status_changed" => {
            let reopened = if d["reopened"].as_bool() == Some(true) {
                " (reopened)"
            } else {
                ""
            };
            format!(
                "changed the status from {} to {}{reopened}",
                s("from"),
                s("to")
            )
        }
        "incident.closure_requested" => format!(
            "requested closure; waiting for {} (the reporter) to confirm",
            user(&d["reporter_id"], users)
        ),
        "incident.closure_confirmed" => "confirmed closure: the incident is closed".into(),
        "incident.closure_rejected" => {
            format!("rejected closure: the incident is reopened ({})", s("to"))
        }
        "incident.note_added" => match d["kind"].as_str() {
            Some("decision") => "recorded a decision".into(),
            Some("approval") => "recorded an approval".into(),
            _ => "added a note".into(),
        },
        "incident.note_marked" | "incident.attachment_marked" => {
            let what = if e.kind == "incident.note_marked" {
                format!("note #{}", d["note_id"])
            } else {
                format!("attachment #{}", d["attachment_id"])
            };
            let kind = d["changes"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["field"] == "kind"))
                .map(|c| text(&c["new"]))
                .unwrap_or_default();
            format!("marked {what} as {kind}")
        }
        "incident.attachment_added" => format!(
            "attached {} ({} bytes{})",
            s("filename"),
            s("size"),
            match d["kind"].as_str() {
                Some(k) if k != "note" => format!(", {k}"),
                _ => String::new(),
            }
        ),
        "incident.action_link_used" | "incident.sms_reply" | "incident.call_reply" => {
            let how = match e.kind.as_str() {
                "incident.action_link_used" => "the link in a page",
                "incident.sms_reply" => "a text-message reply",
                _ => "a key pressed during a paging call",
            };
            if d["changed"].as_bool() == Some(false) {
                format!("tried to {} by {how}; it already was", s("action"))
            } else {
                format!("{}d the incident by {how}", s("action"))
            }
        }
        "escalation.started" => format!(
            "started paging with escalation policy {} ({} urgency)",
            s("escalation_policy_name"),
            s("urgency")
        ),
        "escalation.notified" => {
            let users_paged: Vec<String> = d["users"]
                .as_array()
                .map(|a| a.iter().map(|u| user(u, users)).collect())
                .unwrap_or_default();
            let level = d["level"].as_i64().unwrap_or(0) + 1;
            let round = d["round"].as_i64().unwrap_or(0) + 1;
            let who = if users_paged.is_empty() {
                "nobody could be notified".to_string()
            } else {
                users_paged.join(", ")
            };
            format!("paged escalation level {level} (pass {round}): {who}")
        }
        "escalation.escalated" => format!(
            "escalated by hand to level {}",
            d["level"].as_i64().unwrap_or(0) + 1
        ),
        "escalation.acknowledged" => "stopped paging: acknowledged".into(),
        "escalation.cancelled" => "stopped paging: resolved".into(),
        "escalation.exhausted" => format!("paging ran out: {}", s("message")),
        "escalation.not_started" => format!("could not start paging: {}", s("reason")),
        "notification.sent" => format!(
            "notification to {} sent via {}",
            user(&d["user_id"], users),
            s("channel")
        ),
        "notification.retrying" => format!(
            "notification to {} via {} failed; retrying ({})",
            user(&d["user_id"], users),
            s("channel"),
            short(s("reason"))
        ),
        "notification.failed" => format!(
            "notification to {} failed ({})",
            user(&d["user_id"], users),
            short(if d["reason"].is_null() {
                s("provider_status")
            } else {
                s("reason")
            })
        ),
        "notification.delivered" => format!(
            "notification to {} delivered ({})",
            user(&d["user_id"], users),
            s("provider_status")
        ),
        "notification.cancelled" => "notification cancelled".into(),
        "notification.user_unreachable" => format!(
            "could not reach {} at any contact method",
            user(&d["user_id"], users)
        ),
        "status_post.published" => format!(
            "published on a status page ({}):",
            post_status(&d["status"])
        ),
        "status_post.updated" => format!(
            "posted a status-page update ({} → {}{}):",
            post_status(&d["from"]),
            post_status(&d["to"]),
            if d["notify"].as_bool() == Some(false) {
                ", subscribers not told"
            } else {
                ""
            }
        ),
        "status_post.edited" => "corrected a status-page post:".into(),
        "status_post.update_edited" => "corrected the words of a status-page update:".into(),
        "status_post.deleted" => format!("deleted the status-page post “{}”", s("name")),
        "alert.triggered" => "alert triggered:".into(),
        "alert.repeated" => "alert fired again:".into(),
        "alert.acknowledged" => "alert acknowledged:".into(),
        "alert.resolved" => "alert resolved:".into(),
        "alert.suppressed" => "alert suppressed:".into(),
        "alert.unsuppressed" => "alert no longer suppressed:".into(),
        other => other.replace(['.', '_'], " "),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::*;

    /// An incident event with the given kind and data, for sentence tests.
    pub(in crate::web::room) fn event(kind: &str, data: Value) -> Event {
        Event {
            id: 1,
            at: chrono::DateTime::UNIX_EPOCH,
            actor_id: None,
            actor: "system".into(),
            entity: "incident".into(),
            entity_id: 7,
            incident_id: Some(7),
            kind: kind.into(),
            data,
        }
    }

    /// Every kind the store writes onto an incident's timeline, with the data
    /// its `json!` writes (see tocsin-store: incidents, escalations, notes,
    /// delivery, action_links, phone_replies, alerts, grouping, suppress), and
    /// the words its sentence must show. No sentence may fall back to "—".
    #[test]
    fn sentences_read_the_data_the_store_writes() {
        let users = HashMap::from([(3, "Carol".to_string())]);
        let cases = [
            (
                "incident.declared",
                json!({ "incident": { "severity": "SEV2", "title": "x" } }),
                "declared the incident (SEV2)",
            ),
            (
                "escalation.not_started",
                json!({ "reason": "the service has no escalation policy" }),
                "could not start paging: the service has no escalation policy",
            ),
            (
                "incident.updated",
                json!({ "changes": [{ "field": "severity", "old": "SEV3", "new": "SEV1" }] }),
                "changed severity: SEV3 → SEV1",
            ),
            (
                "incident.status_changed",
                json!({ "from": "resolved", "to": "investigating", "reopened": true, "changes": [] }),
                "from resolved to investigating (reopened)",
            ),
            (
                "incident.closure_requested",
                json!({ "reporter_id": 3, "changes": [] }),
                "waiting for Carol",
            ),
            (
                "incident.closure_rejected",
                json!({ "from": "resolved", "to": "investigating", "changes": [] }),
                "reopened (investigating)",
            ),
            (
                "incident.note_added",
                json!({ "note_id": 1, "body": "b", "kind": "decision", "approved_by": null }),
                "recorded a decision",
            ),
            (
                "incident.note_marked",
                json!({ "note_id": 4, "changes": [
                    { "field": "kind", "old": "note", "new": "approval" },
                    { "field": "approved_by", "old": null, "new": 3 } ] }),
                "marked note #4 as approval",
            ),
            (
                "incident.attachment_added",
                json!({ "attachment_id": 2, "filename": "dump.txt", "content_type": "text/plain",
                        "size": 12, "sha256": "ab", "kind": "note", "approved_by": null }),
                "attached dump.txt (12 bytes)",
            ),
            (
                "incident.action_link_used",
                json!({ "action": "acknowledge", "changed": true, "status": "acknowledged" }),
                "acknowledged the incident by the link in a page",
            ),
            (
                "incident.sms_reply",
                json!({ "from": "+15550100", "action": "resolve", "changed": false, "status": "resolved" }),
                "tried to resolve by a text-message reply",
            ),
            (
                "escalation.started",
                json!({ "escalation_policy_id": 1, "escalation_policy_name": "Ops",
                        "service_id": 1, "urgency": "high" }),
                "escalation policy Ops (high urgency)",
            ),
            (
                "escalation.notified",
                json!({ "level": 0, "round": 0, "due_at": null, "users": [3],
                        "empty_targets": [], "unreachable_users": [], "notifications": [],
                        "reason": "incident triggered" }),
                "paged escalation level 1 (pass 1): Carol",
            ),
            (
                "escalation.escalated",
                json!({ "level": 1, "from": 0 }),
                "escalated by hand to level 2",
            ),
            (
                "escalation.exhausted",
                json!({ "passes": 2, "message": "every level was notified 2 time(s)" }),
                "paging ran out: every level was notified 2 time(s)",
            ),
            (
                "notification.retrying",
                json!({ "request_id": 1, "user_id": 3, "contact_method_id": 1, "channel": "sms",
                        "attempt": 1, "http_status": 503, "provider_id": null,
                        "reason": "busy", "retry_at": null, "level": 0 }),
                "notification to Carol via sms failed; retrying (busy)",
            ),
            (
                "notification.delivered",
                json!({ "request_id": 1, "user_id": 3, "contact_method_id": 1, "channel": "sms",
                        "attempt": 1, "provider_status": "delivered", "reason": null, "level": 0 }),
                "notification to Carol delivered (delivered)",
            ),
            (
                "notification.failed",
                json!({ "request_id": 1, "user_id": 3, "contact_method_id": 1, "channel": "sms",
                        "attempt": 1, "provider_status": "undelivered",
                        "reason": "sms: undelivered", "level": 0 }),
                "notification to Carol failed (sms: undelivered)",
            ),
            (
                "notification.user_unreachable",
                json!({ "user_id": 3, "level": 0, "round": 0, "escalating_to": 1 }),
                "could not reach Carol",
            ),
            (
                "status_post.published",
                json!({ "page_id": 1, "kind": "incident", "name": "Slow checkout",
                        "status": "investigating", "impact": "minor", "components": [4] }),
                "published on a status page (investigating):",
            ),
            (
                "status_post.updated",
                json!({ "update_id": 9, "from": "investigating", "to": "in_progress", "notify": false }),
                "(investigating → in progress, subscribers not told)",
            ),
            (
                "status_post.deleted",
                json!({ "page_id": 1, "name": "Slow checkout" }),
                "deleted the status-page post “Slow checkout”",
            ),
        ];
        for (kind, data, want) in cases {
            let got = sentence(&event(kind, data), &users);
            assert!(got.contains(want), "{kind}: {got:?} lacks {want:?}");
            assert!(!got.contains('—'), "{kind}: {got:?}");
        }
    }
}
