//! A scripted incident, written with the same lifecycle functions and event
//! shapes the store uses, and the draft it must give: every key event, the exact
//! durations, the people and their roles, components, posts and alerts.

use chrono::{Duration, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::*;
use crate::alert::{Alert, AlertSeverity, AlertStatus};
use crate::analytics::Metric;
use crate::auth::Role;
use crate::change::{apply_patch, declare, transition, IncidentPatch, NewIncident};
use crate::incident::Status;
use crate::model::{Event, Incident, Service, User};
use crate::settings::IncidentSettings;
use crate::time::Timestamp;

/// 2024-03-04 at hh:mm:ss UTC (Berlin is UTC+1 that day).
fn utc(h: u32, m: u32, s: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 3, 4, h, m, s).unwrap()
}

const ALICE: i64 = 1;
const BOB: i64 = 2;
const CAROL: i64 = 3;

fn users() -> Vec<User> {
    [(ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol")]
        .into_iter()
        .map(|(id, name)| User {
            id,
            name: name.into(),
            email: format!("{}@example.com", name.to_lowercase()),
            role: Role::Responder,
            time_zone: "Europe/Berlin".into(),
            active: true,
            has_password: true,
            created_at: utc(0, 0, 0),
        })
        .collect()
}

fn services() -> Vec<Service> {
    [(1, "checkout-api", 10), (2, "payments-db", 20)]
        .into_iter()
        .map(|(id, name, team)| Service {
            id,
            name: name.into(),
            description: String::new(),
            team_id: Some(team),
            created_at: utc(0, 0, 0),
            updated_at: utc(0, 0, 0),
        })
        .collect()
}

/// Writes an incident's life the way the store does: the incident changes
/// through `change::*`, and each change appends the event the store appends.
struct Script {
    settings: IncidentSettings,
    incident: Incident,
    events: Vec<Event>,
}

impl Script {
    fn declare(
        id: i64,
        req: NewIncident,
        reporter: Option<i64>,
        actor: &str,
        at: Timestamp,
        first_event: i64,
    ) -> Script {
        let settings = IncidentSettings::default();
        let incident = declare(&settings, &req, id, reporter, at).unwrap();
        let mut s = Script {
            settings,
            incident,
            events: Vec::new(),
        };
        s.events.push(Event {
            id: first_event,
            at,
            actor_id: reporter,
            actor: actor.into(),
            entity: "incident".into(),
            entity_id: id,
            incident_id: Some(id),
            kind: "incident.declared".into(),
            data: json!({ "incident": s.incident }),
        });
        s
    }

    fn event(
        &mut self,
        at: Timestamp,
        actor: Option<i64>,
        entity: &str,
        entity_id: i64,
        kind: &str,
        data: Value,
    ) {
        let id = self.events.last().map_or(1, |e| e.id + 1);
        let name = match actor {
            Some(ALICE) => "Alice",
            Some(BOB) => "Bob",
            Some(CAROL) => "Carol",
            _ => "system",
        };
        self.events.push(Event {
            id,
            at,
            actor_id: actor,
            actor: name.into(),
            entity: entity.into(),
            entity_id,
            incident_id: Some(self.incident.id),
            kind: kind.into(),
            data,
        });
    }

    fn status(&mut self, to: Status, who: i64, at: Timestamp) {
        let from = self.incident.status;
        let (next, _, changes) =
            transition(&self.settings, &self.incident, to, Some(who), at).unwrap();
        self.incident = next;
        let data =
            json!({ "from": from, "to": to, "reopened": from.is_reopen(to), "changes": changes });
        self.event(
            at,
            Some(who),
            "incident",
            self.incident.id,
            "incident.status_changed",
            data,
        );
    }

    fn patch(&mut self, patch: Value, who: i64, at: Timestamp) {
        let p: IncidentPatch = serde_json::from_value(patch).unwrap();
        let (next, changes) = apply_patch(&self.settings, &self.incident, &p, at).unwrap();
        self.incident = next;
        self.event(
            at,
            Some(who),
            "incident",
            self.incident.id,
            "incident.updated",
            json!({ "changes": changes }),
        );
    }

    fn alert(&mut self, id: i64, summary: &str, at: Timestamp, triggers: i64) -> Alert {
        let data = json!({ "alert_id": id, "dedup_key": format!("k{id}"), "summary": summary,
                           "severity": "critical", "integration": "alertmanager" });
        let incident_id = self.incident.id;
        self.events.push(Event {
            id: self.events.last().map_or(1, |e| e.id + 1),
            at,
            actor_id: None,
            actor: "alertmanager".into(),
            entity: "alert".into(),
            entity_id: id,
            incident_id: Some(incident_id),
            kind: "alert.triggered".into(),
            data,
        });
        Alert {
            id,
            service_id: 1,
            incident_id: Some(incident_id),
            dedup_key: format!("k{id}"),
            status: AlertStatus::Resolved,
            severity: AlertSeverity::Critical,
            summary: summary.into(),
            source: "lb-1".into(),
            integration: "alertmanager".into(),
            labels: Default::default(),
            details: Value::Null,
            links: Vec::new(),
            count: triggers,
            first_seen: at,
            last_seen: at + Duration::minutes(30),
            resolved_at: Some(at + Duration::minutes(30)),
            suppressed_by: None,
        }
    }
}

/// INC-7: an alert opens it at 09:48; Bob then Carol are paged; Carol
/// acknowledges, takes command, raises the severity; Alice posts on the status
/// page; a decision, an approval and a runbook step; mitigated at 10:25,
/// resolved at 10:40; the root cause is written up afterwards.
fn scripted() -> (Script, Vec<Alert>) {
    let req = NewIncident {
        title: "Checkout fails: 5xx | *all* regions".into(),
        severity: Some("SEV2".into()),
        service_ids: vec![1],
        ..Default::default()
    };
    let mut s = Script::declare(7, req, None, "alertmanager", utc(9, 48, 0), 1);
    let mut alerts = vec![s.alert(101, "HTTP 5xx above 5%", utc(9, 48, 0), 1)];
    let inc = 7;
    s.event(utc(9, 48, 1), None, "incident", inc, "escalation.started",
        json!({ "escalation_policy_id": 1, "escalation_policy_name": "Checkout on-call", "service_id": 1, "urgency": "high" }));
    s.event(
        utc(9, 48, 1),
        None,
        "incident",
        inc,
        "escalation.notified",
        json!({ "level": 0, "round": 0, "users": [BOB], "reason": "incident triggered" }),
    );
    // Routine: stays out of the key timeline.
    s.event(
        utc(9, 48, 2),
        None,
        "notification",
        1,
        "notification.sent",
        json!({ "user_id": BOB, "channel": "sms" }),
    );
    s.event(
        utc(9, 53, 1),
        None,
        "incident",
        inc,
        "escalation.notified",
        json!({ "level": 1, "round": 0, "users": [CAROL], "reason": "not acknowledged" }),
    );
    s.status(Status::Acknowledged, CAROL, utc(9, 55, 30));
    s.patch(
        json!({ "severity": "SEV1", "roles": { "commander": [CAROL], "investigator": [BOB] } }),
        CAROL,
        utc(9, 56, 0),
    );
    s.event(utc(10, 2, 0), Some(ALICE), "status_post", 55, "status_post.published",
        json!({ "page_id": 1, "kind": "incident", "name": "Checkout errors", "status": "investigating",
                "impact": "major", "components": [9] }));
    s.event(
        utc(10, 2, 0),
        Some(ALICE),
        "status_component",
        9,
        "status_component.status_changed",
        json!({ "name": "Checkout", "from": "operational", "to": "major_outage" }),
    );
    alerts.push(s.alert(102, "Payment timeouts", utc(10, 5, 0), 3));
    s.status(Status::Identified, CAROL, utc(10, 10, 0));
    s.event(utc(10, 12, 0), Some(CAROL), "incident", inc, "incident.note_added",
        json!({ "note_id": 31, "body": "Roll back release 2024.03.1\nThe canary shows the errors.", "kind": "decision", "approved_by": null }));
    s.event(utc(10, 14, 0), Some(BOB), "incident", inc, "incident.note_added",
        json!({ "note_id": 32, "body": "Fail over to the standby database", "kind": "note", "approved_by": null }));
    s.event(utc(10, 15, 0), Some(ALICE), "incident", inc, "incident.note_marked",
        json!({ "note_id": 32, "changes": [ { "field": "kind", "old": "note", "new": "approval" },
                                            { "field": "approved_by", "old": null, "new": ALICE } ] }));
    // A kind from a later issue (runbooks) and one nobody knows.
    s.event(
        utc(10, 20, 0),
        None,
        "incident",
        inc,
        "runbook.step_completed",
        json!({ "step": "Roll back deploy", "status": "succeeded" }),
    );
    s.event(
        utc(10, 21, 0),
        None,
        "incident",
        inc,
        "incident.frobnicated",
        json!({ "x": 1 }),
    );
    s.status(Status::Monitoring, CAROL, utc(10, 25, 0));
    s.event(
        utc(10, 26, 0),
        Some(ALICE),
        "status_post",
        55,
        "status_post.updated",
        json!({ "update_id": 2, "from": "investigating", "to": "monitoring", "notify": true }),
    );
    s.event(
        utc(10, 26, 0),
        Some(ALICE),
        "status_component",
        9,
        "status_component.status_changed",
        json!({ "name": "Checkout", "from": "major_outage", "to": "operational" }),
    );
    s.status(Status::Resolved, CAROL, utc(10, 40, 0));
    s.event(
        utc(10, 41, 0),
        Some(ALICE),
        "status_post",
        55,
        "status_post.updated",
        json!({ "update_id": 3, "from": "monitoring", "to": "resolved", "notify": true }),
    );
    s.patch(
        json!({ "occurred_at": "2024-03-04T09:40:00Z",
                    "root_cause": "Release 2024.03.1 exhausted the **connection pool**.",
                    "resolution_summary": "Rolled back; failed over the database." }),
        BOB,
        utc(11, 30, 0),
    );
    (s, alerts)
}

fn berlin() -> Tz {
    "Europe/Berlin".parse().unwrap()
}

#[test]
fn the_draft_of_a_scripted_incident() {
    let (s, alerts) = scripted();
    let (users, services) = (users(), services());
    let dir = Directory {
        users: &users,
        services: &services,
    };
    let input = Input {
        incident: &s.incident,
        events: &s.events,
        alerts: &alerts,
    };
    let d = draft(&[input], &Template::default(), &s.settings, &dir, berlin()).unwrap();

    // Durations, by the definitions: began 09:40 (recorded), first sign 09:48
    // (the alert, also the declaration), acknowledged 09:55:30, mitigated 10:25,
    // resolved 10:40.
    let f = &d.facts;
    assert_eq!(f.duration_ms(Metric::TimeToDetect), Some(8 * 60_000));
    assert_eq!(f.duration_ms(Metric::TimeToDeclare), Some(0));
    assert_eq!(
        f.duration_ms(Metric::TimeToAcknowledge),
        Some(7 * 60_000 + 30_000)
    );
    assert_eq!(f.duration_ms(Metric::TimeToMitigate), Some(37 * 60_000));
    assert_eq!(f.duration_ms(Metric::TimeToResolve), Some(52 * 60_000));
    assert_eq!(f.team_ids, [10]);

    let timeline: Vec<(String, KeyKind, &str)> = d
        .timeline
        .iter()
        .map(|k| {
            (
                k.at.with_timezone(&berlin()).format("%H:%M:%S").to_string(),
                k.kind,
                k.text.as_str(),
            )
        })
        .collect();
    let want: Vec<(&str, KeyKind, &str)> = vec![
        (
            "10:48:00",
            KeyKind::Declared,
            "Declared INC-7 (SEV2): Checkout fails: 5xx | *all* regions",
        ),
        (
            "10:48:00",
            KeyKind::FirstAlert,
            "First alert: HTTP 5xx above 5% (via alertmanager)",
        ),
        (
            "10:48:01",
            KeyKind::Escalation,
            "Paging started with escalation policy Checkout on-call",
        ),
        ("10:48:01", KeyKind::Paged, "Paged escalation level 1: Bob"),
        (
            "10:53:01",
            KeyKind::Paged,
            "Paged escalation level 2: Carol",
        ),
        ("10:55:30", KeyKind::Acknowledged, "Acknowledged"),
        (
            "10:56:00",
            KeyKind::SeverityChanged,
            "Severity: SEV2 → SEV1",
        ),
        (
            "10:56:00",
            KeyKind::RoleChanged,
            "Roles: commander Carol; investigator Bob",
        ),
        (
            "11:02:00",
            KeyKind::StatusPage,
            "Status page: published \"Checkout errors\" (investigating)",
        ),
        (
            "11:02:00",
            KeyKind::Component,
            "Component Checkout: operational → major outage",
        ),
        (
            "11:10:00",
            KeyKind::StatusChanged,
            "Status: acknowledged → identified",
        ),
        (
            "11:12:00",
            KeyKind::Decision,
            "Decision: Roll back release 2024.03.1",
        ),
        (
            "11:15:00",
            KeyKind::Approval,
            "Approval (marked later): Fail over to the standby database",
        ),
        (
            "11:20:00",
            KeyKind::Runbook,
            "Runbook: Roll back deploy (succeeded)",
        ),
        (
            "11:25:00",
            KeyKind::StatusChanged,
            "Status: identified → monitoring",
        ),
        (
            "11:26:00",
            KeyKind::StatusPage,
            "Status page update: investigating → monitoring",
        ),
        (
            "11:26:00",
            KeyKind::Component,
            "Component Checkout: major outage → operational",
        ),
        (
            "11:40:00",
            KeyKind::StatusChanged,
            "Status: monitoring → resolved",
        ),
        (
            "11:41:00",
            KeyKind::StatusPage,
            "Status page update: monitoring → resolved",
        ),
    ];
    let got: Vec<(&str, KeyKind, &str)> = timeline
        .iter()
        .map(|(t, k, x)| (t.as_str(), *k, *x))
        .collect();
    assert_eq!(got, want);

    // People: Carol (commander) and Bob (investigator) in role order, then Alice.
    // Actions are the log entries each made: Carol acknowledged, patched, recorded
    // the decision and moved the status three more times (6); Bob wrote a note and
    // the write-up (2); Alice published, changed the component twice, marked the
    // approval and updated the post twice (6).
    let people: Vec<(&str, Vec<&str>, u32, u32)> = d
        .people
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.roles.iter().map(String::as_str).collect(),
                p.pages,
                p.actions,
            )
        })
        .collect();
    assert_eq!(
        people,
        [
            ("Carol", vec!["commander"], 1, 6),
            ("Bob", vec!["investigator"], 1, 2),
            ("Alice", vec![], 0, 6),
        ]
    );
    assert_eq!(d.components.len(), 1);
    assert_eq!(
        d.components[0].statuses,
        ["operational", "major_outage", "operational"]
    );
    assert_eq!(
        d.components[0].worst,
        Some(crate::status_page::ComponentStatus::MajorOutage)
    );
    assert_eq!(
        d.status_posts[0].statuses,
        ["investigating", "monitoring", "resolved"]
    );
    let groups: Vec<(&str, u32, i64)> = d
        .alerts
        .iter()
        .map(|a| (a.summary.as_str(), a.alerts, a.triggers))
        .collect();
    assert_eq!(
        groups,
        [("HTTP 5xx above 5%", 1, 1), ("Payment timeouts", 1, 3)]
    );

    let md = d.markdown();
    // The template's headings, in order.
    let headings: Vec<&str> = md.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    let titles: Vec<String> = Template::default()
        .sections
        .into_iter()
        .map(|s| s.title)
        .collect();
    assert_eq!(headings, titles);
    for line in [
        r"# Postmortem: INC-7 Checkout fails: 5xx \| \*all\* regions",
        r"- **INC-7** (SEV1, resolved): Checkout fails: 5xx \| \*all\* regions",
        "Affected services: checkout-api.",
        "| Moment | Time (Europe/Berlin) | Measured |",
        "| Impact began | 2024-03-04 10:40:00 CET |  |",
        "| Detected | 2024-03-04 10:48:00 CET | time to detect: 8m 00s |",
        "| Declared | 2024-03-04 10:48:00 CET | time to declare: 0s |",
        "| Acknowledged | 2024-03-04 10:55:30 CET | time to acknowledge: 7m 30s |",
        "| Mitigated | 2024-03-04 11:25:00 CET | time to mitigate: 37m 00s |",
        "| Resolved | 2024-03-04 11:40:00 CET | time to resolve: 52m 00s |",
        "- \"Checkout errors\", published 2024-03-04 11:02:00 CET: investigating → monitoring → resolved",
        "- Checkout: operational → major outage → operational (worst: major outage)",
        "Times are in Europe/Berlin.",
        r"- `2024-03-04 10:48:00 CET` Declared INC-7 (SEV2): Checkout fails: 5xx \| \*all\* regions — *alertmanager*",
        "- `2024-03-04 11:12:00 CET` Decision: Roll back release 2024.03.1 — *Carol*",
        "- `2024-03-04 11:20:00 CET` Runbook: Roll back deploy (succeeded) — *system*",
        // Root cause and resolution are the responders' Markdown, kept as written.
        "Release 2024.03.1 exhausted the **connection pool**.",
        "- Time to detect: 8m 00s (impact began 2024-03-04 10:40:00 CET, first sign 2024-03-04 10:48:00 CET).",
        "- First sign: the alert \"HTTP 5xx above 5%\" at 2024-03-04 10:48:00 CET.",
        "Alerts: 2, with 4 triggers in all.",
        "| checkout-api | Payment timeouts | 1 | 3 | 2024-03-04 11:05:00 CET | 2024-03-04 11:35:00 CET |",
        "- Time to acknowledge: 7m 30s.",
        "- Pages sent: 2, to 2 people.",
        "| Carol | commander | 1 | 6 |",
        "| Alice | — | 0 | 6 |",
        "- Time to mitigate: 37m 00s.",
        "- Time to resolve: 52m 00s.",
        "Rolled back; failed over the database.",
    ] {
        assert!(md.lines().any(|l| l == line), "missing line {line:?} in\n{md}");
    }
    // Nothing routine or unknown leaked into the timeline.
    assert!(
        !md.contains("frobnicated") && !md.contains("notification"),
        "{md}"
    );
    if std::env::var_os("SHOW_DRAFT").is_some() {
        println!("{md}");
    }
}

#[test]
fn several_incidents_share_one_postmortem() {
    let (a, alerts_a) = scripted();
    // INC-8: declared by hand by Alice at 10:00 (SEV3), with an alert that had
    // fired unnoticed at 09:30; acknowledged at once, still open.
    let req = NewIncident {
        title: "Payments slow".into(),
        severity: Some("SEV3".into()),
        service_ids: vec![2],
        status: Some(Status::Investigating),
        ..Default::default()
    };
    let mut b = Script::declare(8, req, Some(ALICE), "Alice", utc(10, 0, 0), 100);
    let alerts_b = vec![b.alert(103, "DB latency p99 > 2s", utc(9, 30, 0), 2)];
    let (users, services) = (users(), services());
    let dir = Directory {
        users: &users,
        services: &services,
    };
    let inputs = [
        // Given the less severe first: the draft puts the most severe first.
        Input {
            incident: &b.incident,
            events: &b.events,
            alerts: &alerts_b,
        },
        Input {
            incident: &a.incident,
            events: &a.events,
            alerts: &alerts_a,
        },
    ];
    let d = draft(&inputs, &Template::default(), &a.settings, &dir, berlin()).unwrap();
    assert_eq!(d.incident_ids, [7, 8]);
    assert_eq!(
        d.title,
        "Postmortem: INC-7, INC-8 Checkout fails: 5xx | *all* regions"
    );
    // Together: first sign 09:30 (INC-8's alert), first declaration 09:48 (INC-7):
    // time to declare 18 min; not resolved while INC-8 is open.
    assert_eq!(
        d.facts.duration_ms(Metric::TimeToDeclare),
        Some(18 * 60_000)
    );
    assert_eq!(d.facts.resolved_at, None);
    assert_eq!(d.facts.service_ids, [1, 2]);
    assert_eq!(
        d.incidents[1].duration_ms(Metric::TimeToDeclare),
        Some(30 * 60_000)
    );
    // INC-8's events are merged into INC-7's timeline by time, each line naming
    // its incident; both first alerts are key events.
    let md = d.markdown();
    // (">" is escaped: it could open a block quote or HTML.)
    assert!(md.contains(r"- `2024-03-04 10:30:00 CET` INC-8: First alert: DB latency p99 \> 2s (via alertmanager) — *alertmanager*"), "{md}");
    assert!(
        md.contains(
            "- `2024-03-04 11:00:00 CET` INC-8: Declared INC-8 (SEV3): Payments slow — *Alice*"
        ),
        "{md}"
    );
    let first_alerts = d
        .timeline
        .iter()
        .filter(|k| k.kind == KeyKind::FirstAlert)
        .count();
    assert_eq!(first_alerts, 2);
    assert!(md.contains("- Time to resolve: — (not yet)."));
    // Alice reported INC-8.
    assert_eq!(
        d.people.iter().find(|p| p.user_id == ALICE).unwrap().roles,
        ["reporter"]
    );
    assert!(md.contains("**INC-7:** Release 2024.03.1"));
}

#[test]
fn an_incident_declared_by_hand_without_alerts() {
    let req = NewIncident {
        title: "Office Wi-Fi down".into(),
        ..Default::default()
    };
    let s = Script::declare(9, req, Some(BOB), "Bob", utc(8, 0, 0), 1);
    let d = draft(
        &[Input {
            incident: &s.incident,
            events: &s.events,
            alerts: &[],
        }],
        &Template::default(),
        &s.settings,
        &Directory::default(),
        Tz::UTC,
    )
    .unwrap();
    let md = d.markdown();
    for line in [
        "- Time to detect: unknown, because the start of impact was not recorded.",
        "- First sign: a person; no alert preceded the declaration.",
        "No status-page post was published and no component changed status.",
        "- Time to acknowledge: — (not acknowledged).",
        "| Impact began | — |  |",
        // No directory: the reporter shows by id.
        "| user 2 | reporter | 0 | 1 |",
    ] {
        assert!(md.lines().any(|l| l == line), "missing {line:?} in\n{md}");
    }
    assert!(draft(
        &[],
        &Template::default(),
        &s.settings,
        &Directory::default(),
        Tz::UTC
    )
    .is_none());
}

#[test]
fn templates_are_checked() {
    Template::default().validate().unwrap();
    let t = |titles: &[(&str, Option<Generated>)]| Template {
        sections: titles
            .iter()
            .map(|(t, g)| Section {
                title: t.to_string(),
                hint: String::new(),
                generated: *g,
            })
            .collect(),
    };
    assert_eq!(t(&[]).validate().unwrap_err().field, "sections");
    assert_eq!(
        t(&[("A", None), ("A", None)]).validate().unwrap_err().field,
        "sections[1].title"
    );
    assert_eq!(
        t(&[(" ", None)]).validate().unwrap_err().field,
        "sections[0].title"
    );
    let twice = t(&[
        ("A", Some(Generated::Timeline)),
        ("B", Some(Generated::Timeline)),
    ]);
    assert_eq!(twice.validate().unwrap_err().field, "sections[1].generated");
    // A configured template reads from JSON (or YAML) with defaults.
    let custom: Template = serde_json::from_value(json!({ "sections": [
        { "title": "What happened", "generated": "timeline" },
        { "title": "Follow-up", "hint": "Owners and dates." }
    ] }))
    .unwrap();
    custom.validate().unwrap();
    let (s, alerts) = scripted();
    let d = draft(
        &[Input {
            incident: &s.incident,
            events: &s.events,
            alerts: &alerts,
        }],
        &custom,
        &s.settings,
        &Directory::default(),
        Tz::UTC,
    )
    .unwrap();
    assert_eq!(d.sections.len(), 2);
    assert!(d.sections[0].body.starts_with("Times are in UTC."));
    assert_eq!(
        (d.sections[1].hint.as_str(), d.sections[1].body.as_str()),
        ("Owners and dates.", "")
    );
}

#[test]
fn markdown_escaping_keeps_text_inert() {
    use super::draft::md;
    assert_eq!(
        md("a|b *c* _d_ [x](javascript:y) <img> `e`\nnext"),
        r"a\|b \*c\* \_d\_ \[x\](javascript:y) \<img\> \`e\` next"
    );
    assert_eq!(md(r"back\slash & #1 ~x~ !"), r"back\\slash \& \#1 \~x\~ \!");
}
