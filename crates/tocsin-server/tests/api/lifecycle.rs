//! The incident lifecycle, priority matrix, custom fields and timeline completeness.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestApp;

const STATUSES: [&str; 7] = [
    "triggered",
    "acknowledged",
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "closed",
];

// Written out by hand from the lifecycle spec, independently of the table in core.
fn expected_allowed(from: &str, to: &str) -> bool {
    let allowed: &[&str] = match from {
        "triggered" => &[
            "acknowledged",
            "investigating",
            "identified",
            "monitoring",
            "resolved",
        ],
        "acknowledged" => &["investigating", "identified", "monitoring", "resolved"],
        "investigating" => &["identified", "monitoring", "resolved"],
        "identified" => &["investigating", "monitoring", "resolved"],
        "monitoring" => &["investigating", "identified", "resolved"],
        "resolved" => &["closed", "investigating"],
        "closed" => &["investigating"],
        _ => unreachable!(),
    };
    allowed.contains(&to)
}

fn path_to(status: &str) -> &'static [&'static str] {
    match status {
        "triggered" => &[],
        "acknowledged" => &["acknowledged"],
        "investigating" => &["investigating"],
        "identified" => &["identified"],
        "monitoring" => &["monitoring"],
        "resolved" => &["resolved"],
        "closed" => &["resolved", "closed"],
        _ => unreachable!(),
    }
}

async fn every_transition_allowed_and_refused(app: TestApp) {
    for from in STATUSES {
        for to in STATUSES {
            let inc = app
                .declare(json!({ "title": format!("{from} to {to}") }))
                .await;
            let id = inc["id"].as_i64().unwrap();
            for step in path_to(from) {
                let r = app.move_to(id, step).await;
                assert_eq!(r.status, StatusCode::OK, "setting up {from}: {}", r.body);
            }
            let before = app.timeline(id).await.len();
            let r = app.move_to(id, to).await;
            if expected_allowed(from, to) {
                assert_eq!(
                    r.status,
                    StatusCode::OK,
                    "{from} -> {to} should be allowed: {}",
                    r.body
                );
                assert_eq!(r.body["incident"]["status"], to);
                assert_eq!(app.timeline(id).await.len(), before + 1);
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::CONFLICT,
                    "{from} -> {to} should be refused: {}",
                    r.body
                );
                assert_eq!(r.code(), "transition_not_allowed");
                let msg = r.body["error"]["message"].as_str().unwrap();
                for next in STATUSES.iter().filter(|n| expected_allowed(from, n)) {
                    assert!(
                        msg.contains(next),
                        "409 for {from} -> {to} should name {next}: {msg}"
                    );
                }
                let now = app.get(&format!("/api/v1/incidents/{id}")).await;
                assert_eq!(now.body["status"], from, "a refused move changes nothing");
                assert_eq!(
                    app.timeline(id).await.len(),
                    before,
                    "a refused move records nothing"
                );
            }
        }
    }
}

async fn lifecycle_sets_timestamps_and_reopen_clears_resolution(app: TestApp) {
    let id = app.declare(json!({ "title": "timestamps" })).await["id"]
        .as_i64()
        .unwrap();
    app.clock.advance(chrono::Duration::minutes(3));
    let r = app.move_to(id, "acknowledged").await;
    assert_eq!(
        r.body["incident"]["acknowledged_at"],
        "2026-01-01T00:03:00Z"
    );
    app.clock.advance(chrono::Duration::minutes(10));
    let r = app.move_to(id, "monitoring").await;
    assert_eq!(r.body["incident"]["mitigated_at"], "2026-01-01T00:13:00Z");
    app.clock.advance(chrono::Duration::minutes(5));
    let r = app.move_to(id, "resolved").await;
    assert_eq!(r.body["incident"]["resolved_at"], "2026-01-01T00:18:00Z");
    let r = app.move_to(id, "investigating").await;
    assert_eq!(r.body["incident"]["resolved_at"], Value::Null);
    assert_eq!(
        r.body["incident"]["acknowledged_at"], "2026-01-01T00:03:00Z",
        "first acknowledgement is kept"
    );
    let last = app.timeline(id).await.pop().unwrap();
    assert_eq!(last["kind"], "incident.status_changed");
    assert_eq!(last["data"]["reopened"], true);
}

async fn closure_needs_the_reporters_confirmation(app: TestApp) {
    let (reporter, reporter_token) = app.user_with_role("responder").await;
    let (_, other_token) = app.user_with_role("responder").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/incidents",
            Some(&reporter_token),
            Some(json!({ "title": "New laptop", "type": "service_request" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["reporter_id"], reporter);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(app.move_to(id, "resolved").await.status, StatusCode::OK);
    let r = app.move_to(id, "closed").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["outcome"], "closure_requested");
    assert_eq!(r.body["incident"]["status"], "resolved");
    assert!(r.body["incident"]["closure_requested_at"].is_string());
    let confirm = |token: String, accept: bool| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/incidents/{id}/closure-confirmation"),
                Some(&token),
                Some(json!({ "accept": accept })),
            )
            .await
        }
    };
    let r = confirm(other_token.clone(), true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = confirm(reporter_token.clone(), false).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "investigating");
    // Rejected: resolve and ask again; this time the reporter accepts.
    assert_eq!(app.move_to(id, "resolved").await.status, StatusCode::OK);
    assert_eq!(
        app.move_to(id, "closed").await.body["outcome"],
        "closure_requested"
    );
    let r = confirm(reporter_token.clone(), true).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "closed");
    let r = confirm(reporter_token, true).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "nothing left to confirm");
    let kinds: Vec<String> = app
        .timeline(id)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"incident.closure_requested".to_string()));
    assert!(kinds.contains(&"incident.closure_rejected".to_string()));
    assert!(kinds.contains(&"incident.closure_confirmed".to_string()));
    // The reporter closing their own request needs no confirmation.
    let r = app
        .call(
            Method::POST,
            "/api/v1/incidents",
            Some(&other_token),
            Some(json!({ "title": "VPN access", "type": "service_request" })),
        )
        .await;
    let id2 = r.body["id"].as_i64().unwrap();
    app.move_to(id2, "resolved").await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id2}/status"),
            Some(&other_token),
            Some(json!({ "status": "closed" })),
        )
        .await;
    assert_eq!(r.body["outcome"], "status");
    assert_eq!(r.body["incident"]["status"], "closed");
}

async fn priority_matrix(app: TestApp) {
    let expected = [
        ("high", "high", "P1"),
        ("high", "medium", "P2"),
        ("high", "low", "P3"),
        ("medium", "high", "P2"),
        ("medium", "medium", "P3"),
        ("medium", "low", "P4"),
        ("low", "high", "P3"),
        ("low", "medium", "P4"),
        ("low", "low", "P5"),
    ];
    for (impact, urgency, priority) in expected {
        let inc = app
            .declare(json!({ "title": "p", "impact": impact, "urgency": urgency }))
            .await;
        assert_eq!(inc["priority"], priority, "{impact} x {urgency}");
    }
    let id = app
        .declare(json!({ "title": "moves", "impact": "low", "urgency": "low" }))
        .await["id"]
        .as_i64()
        .unwrap();
    let r = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "impact": "high" }),
        )
        .await;
    assert_eq!(r.body["priority"], "P3");
    let r = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "urgency": "high" }),
        )
        .await;
    assert_eq!(r.body["priority"], "P1");
    let r = app.get("/api/v1/incidents?priority=P1").await;
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["priority"] == "P1"));
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id));
}

async fn custom_fields_are_validated(app: TestApp) {
    let good = json!({ "region": "eu-west", "components": ["db", "api"], "customers_affected": 120,
                       "deadline": "2026-03-01", "approver": app.admin_id, "ticket": "OPS-1" });
    let inc = app
        .declare(json!({ "title": "cf", "custom_fields": good }))
        .await;
    assert_eq!(inc["custom_fields"]["region"], "eu-west");
    let id = inc["id"].as_i64().unwrap();
    let bad = [
        (json!({ "region": "mars" }), "custom_fields.region"),
        (json!({ "region": 3 }), "custom_fields.region"),
        (
            json!({ "components": ["db", "db"] }),
            "custom_fields.components",
        ),
        (
            json!({ "components": ["disk"] }),
            "custom_fields.components",
        ),
        (
            json!({ "customers_affected": "many" }),
            "custom_fields.customers_affected",
        ),
        (
            json!({ "deadline": "2026-02-30" }),
            "custom_fields.deadline",
        ),
        (json!({ "approver": 987654 }), "custom_fields.approver"),
        (json!({ "approver": "ada" }), "custom_fields.approver"),
        (json!({ "colour": "red" }), "custom_fields.colour"),
    ];
    for (fields, field) in bad {
        let before = app.counts().await;
        let r = app
            .post(
                "/api/v1/incidents",
                json!({ "title": "bad", "custom_fields": fields }),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{fields}: {}", r.body);
        assert_eq!(r.field(), field, "{}", r.body);
        let r = app
            .patch(
                &format!("/api/v1/incidents/{id}"),
                json!({ "custom_fields": fields }),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.field(), field);
        assert_eq!(
            app.counts().await,
            before,
            "a refused request writes nothing"
        );
    }
    let r = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "custom_fields": { "region": null, "ticket": "OPS-2" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["custom_fields"].get("region").is_none());
    assert_eq!(r.body["custom_fields"]["ticket"], "OPS-2");
}

async fn timeline_has_one_event_per_mutation(app: TestApp) {
    let (responder, _) = app.user_with_role("responder").await;
    let other = app.declare(json!({ "title": "other" })).await["id"]
        .as_i64()
        .unwrap();
    let id = app
        .declare(json!({ "title": "Database failover", "severity": "SEV3" }))
        .await["id"]
        .as_i64()
        .unwrap();
    let tl = app.timeline(id).await;
    assert_eq!(tl.len(), 1);
    assert_eq!(tl[0]["kind"], "incident.declared");
    assert_eq!(tl[0]["actor"], "Ada Admin");

    let base = format!("/api/v1/incidents/{id}");
    let steps: Vec<(Method, String, Value, &str, Vec<(&str, Value, Value)>)> = vec![
        (
            Method::PATCH,
            base.clone(),
            json!({ "title": "Primary DB failover" }),
            "incident.updated",
            vec![(
                "title",
                json!("Database failover"),
                json!("Primary DB failover"),
            )],
        ),
        (
            Method::PATCH,
            base.clone(),
            json!({ "severity": "SEV1", "impact": "high" }),
            "incident.updated",
            vec![
                ("impact", json!("medium"), json!("high")),
                ("priority", json!("P3"), json!("P2")),
                ("severity", json!("SEV3"), json!("SEV1")),
            ],
        ),
        (
            Method::PATCH,
            base.clone(),
            json!({ "roles": { "commander": [responder], "investigator": [app.admin_id, responder] } }),
            "incident.updated",
            vec![(
                "roles",
                json!({}),
                json!({ "commander": [responder], "investigator": [app.admin_id, responder] }),
            )],
        ),
        (
            Method::PATCH,
            base.clone(),
            json!({ "assignee_id": responder, "labels": ["db", "failover"] }),
            "incident.updated",
            vec![
                ("assignee_id", Value::Null, json!(responder)),
                ("labels", json!([]), json!(["db", "failover"])),
            ],
        ),
        (
            Method::PATCH,
            base.clone(),
            json!({ "related": [{ "kind": "caused_by", "incident_id": other }] }),
            "incident.updated",
            vec![(
                "related",
                json!([]),
                json!([{ "kind": "caused_by", "incident_id": other }]),
            )],
        ),
        (
            Method::PATCH,
            base.clone(),
            json!({ "root_cause": "disk full", "error_code": "E-DISK" }),
            "incident.updated",
            vec![
                ("error_code", Value::Null, json!("E-DISK")),
                ("root_cause", Value::Null, json!("disk full")),
            ],
        ),
        (
            Method::POST,
            format!("{base}/status"),
            json!({ "status": "investigating" }),
            "incident.status_changed",
            vec![
                ("status", json!("triggered"), json!("investigating")),
                (
                    "acknowledged_at",
                    Value::Null,
                    json!("2026-01-01T00:00:00Z"),
                ),
            ],
        ),
        (
            Method::POST,
            format!("{base}/notes"),
            json!({ "body": "Failing over to replica" }),
            "incident.note_added",
            vec![],
        ),
    ];
    for (method, path, body, kind, changes) in steps {
        let before = app.timeline(id).await.len();
        let r = app
            .call(method, &path, Some(&app.admin_token), Some(body.clone()))
            .await;
        assert!(r.status.is_success(), "{body}: {}", r.body);
        let tl = app.timeline(id).await;
        assert_eq!(tl.len(), before + 1, "exactly one event for {body}");
        let ev = tl.last().unwrap();
        assert_eq!(ev["kind"], kind, "{body}");
        assert_eq!(ev["actor_id"], app.admin_id);
        for (field, old, new) in changes {
            let c = ev["data"]["changes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["field"] == field)
                .unwrap_or_else(|| panic!("{body}: no change of {field} in {}", ev["data"]));
            assert_eq!(c["old"], old, "{field}");
            assert_eq!(c["new"], new, "{field}");
        }
    }
    // A no-op patch is not a mutation: no event.
    let before = app.timeline(id).await.len();
    let r = app
        .patch(&base, json!({ "title": "Primary DB failover" }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.timeline(id).await.len(), before);
    // Notes and attachments marked as decisions and approvals are events too.
    let note = app
        .post(
            &format!("{base}/notes"),
            json!({ "body": "Decided to fail over" }),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post(
            &format!("{base}/notes/{note}/mark"),
            json!({ "kind": "approval", "approved_by": responder }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["approved_by"], responder);
    let ev = app.timeline(id).await.pop().unwrap();
    assert_eq!(ev["kind"], "incident.note_marked");
    assert_eq!(ev["data"]["changes"][0]["old"], "note");
    assert_eq!(ev["data"]["changes"][0]["new"], "approval");
    let r = app
        .raw(
            Method::POST,
            &format!("{base}/attachments?filename=plan.txt&kind=decision"),
            Some(&app.admin_token),
            "text/plain",
            b"plan".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ev = app.timeline(id).await.pop().unwrap();
    assert_eq!(ev["kind"], "incident.attachment_added");
    assert_eq!(ev["data"]["kind"], "decision");
    // Events are in order and the declared one is first.
    let tl = app.timeline(id).await;
    let ids: Vec<i64> = tl.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

async fn single_holder_roles_and_unknown_roles(app: TestApp) {
    let id = app.declare(json!({ "title": "roles" })).await["id"]
        .as_i64()
        .unwrap();
    let r = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "roles": { "commander": [1, 1] } }),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "roles.commander")
    );
    let r = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "roles": { "pilot": [1] } }),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "roles.pilot")
    );
    let r = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "roles": { "scribe": [app.admin_id] } }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "custom roles are accepted: {}",
        r.body
    );
    let r = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "roles": { "communicator": [424242] } }),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "roles.communicator")
    );
}

crate::both_backends!(
    every_transition_allowed_and_refused,
    lifecycle_sets_timestamps_and_reopen_clears_resolution,
    closure_needs_the_reporters_confirmation,
    priority_matrix,
    custom_fields_are_validated,
    timeline_has_one_event_per_mutation,
    single_holder_roles_and_unknown_roles,
);
