//! Actions: every kind parses, and bad input names the field.

use super::*;
use serde_json::{json, Value};

use crate::Invalid;

fn p(kind: &str, v: Value) -> Result<Action<Template>, Invalid> {
    parse(kind, &format!("steps[2].{kind}"), &v)
}

#[test]
fn http_defaults_and_map() {
    let a = p("http", json!({"url": "https://x.example/{{ incident.id }}", "body": "{}", "headers": {"X-Token": "{{ secrets.T }}"}})).unwrap();
    let Action::Http(h) = &a else { panic!() };
    assert_eq!(h.method, Method::Post);
    assert_eq!(h.timeout, Span::secs(10));
    let mut paths = Vec::new();
    a.map(&mut |path: &str, _t: &Template| -> Result<(), ()> {
        paths.push(path.to_string());
        Ok(())
    })
    .unwrap();
    assert_eq!(paths, ["http.url", "http.headers.X-Token", "http.body"]);
}

#[test]
fn every_kind_parses() {
    for (kind, body) in [
        ("page", json!({"schedule": "db-primary", "message": "hi"})),
        ("notify", json!({"channel": "ops", "message": "m"})),
        (
            "update_incident",
            json!({"severity": "SEV1", "roles": {"commander": "a@x"}}),
        ),
        ("add_note", json!({"text": "t"})),
        ("attach_runbook", json!({"runbook": "db-failover"})),
        (
            "status_page_update",
            json!({"page": "public", "status": "investigating", "message": "m", "components": {"API": "partial_outage"}}),
        ),
        (
            "jira_create_issue",
            json!({"project": "OPS", "issue_type": "Bug", "summary": "s", "fields": {"priority": "High"}}),
        ),
        (
            "github_create_issue",
            json!({"repo": "acme/api", "title": "t", "labels": ["incident", "{{ incident.severity }}"]}),
        ),
        (
            "slack_create_channel",
            json!({"name": "inc-{{ incident.id }}"}),
        ),
        ("zoom_meeting", json!(null)),
        ("jitsi_link", json!({"room": "r"})),
        (
            "command",
            json!({"name": "restart-worker", "args": ["--id", "{{ alert.labels.instance }}"]}),
        ),
        ("wait", json!("10m")),
        ("wait", json!({"until": "{{ incident.detected_at }}"})),
        (
            "approval",
            json!({"role": "commander", "prompt": "Restart?", "on_timeout": "continue"}),
        ),
    ] {
        let a = p(kind, body).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(a.kind(), kind);
    }
}

#[test]
fn bad_steps_name_the_field() {
    for (kind, body, field) in [
        ("http", json!({}), "steps[2].http.url"),
        ("http", json!({"url": "ftp://x"}), "steps[2].http.url"),
        (
            "http",
            json!({"url": "https://u:p@x.example"}),
            "steps[2].http.url",
        ),
        (
            "http",
            json!({"url": "https://x/{{ a"}),
            "steps[2].http.url",
        ),
        (
            "http",
            json!({"url": "https://x", "method": "FETCH"}),
            "steps[2].http.method",
        ),
        (
            "http",
            json!({"url": "https://x", "expect": [200, 42]}),
            "steps[2].http.expect[1]",
        ),
        (
            "http",
            json!({"url": "https://x", "headers": {"Bad Name": "v"}}),
            "steps[2].http.headers.Bad Name",
        ),
        (
            "http",
            json!({"url": "https://x", "capture": {"id": "response.body."}}),
            "steps[2].http.capture.id",
        ),
        (
            "http",
            json!({"url": "https://x", "capture": {"a-b": "1"}}),
            "steps[2].http.capture.a-b",
        ),
        (
            "http",
            json!({"url": "https://x", "timeout": "1h"}),
            "steps[2].http.timeout",
        ),
        (
            "http",
            json!({"url": "https://x", "bdy": "x"}),
            "steps[2].http.bdy",
        ),
        (
            "page",
            json!({"user": "a", "schedule": "b"}),
            "steps[2].page",
        ),
        (
            "notify",
            json!({"channel": "ops"}),
            "steps[2].notify.message",
        ),
        ("update_incident", json!({}), "steps[2].update_incident"),
        (
            "update_incident",
            json!({"status": "done"}),
            "steps[2].update_incident.status",
        ),
        (
            "status_page_update",
            json!({"page": "p", "status": "fixed", "message": "m"}),
            "steps[2].status_page_update.status",
        ),
        (
            "status_page_update",
            json!({"page": "p", "status": "resolved", "message": "m", "components": {"API": "meh"}}),
            "steps[2].status_page_update.components.API",
        ),
        (
            "github_create_issue",
            json!({"repo": "acme", "title": "t"}),
            "steps[2].github_create_issue.repo",
        ),
        (
            "github_create_issue",
            json!({"repo": "a/b", "title": "t", "labels": [["x"]]}),
            "steps[2].github_create_issue.labels[0]",
        ),
        (
            "slack_create_channel",
            json!({"name": "x", "private": "no"}),
            "steps[2].slack_create_channel.private",
        ),
        (
            "command",
            json!({"name": "/bin/sh"}),
            "steps[2].command.name",
        ),
        (
            "command",
            json!({"name": "x", "args": "rm -rf /; {{ x"}),
            "steps[2].command.args",
        ),
        ("wait", json!({}), "steps[2].wait"),
        ("wait", json!("forever"), "steps[2].wait"),
        ("wait", json!({"until": "tomorrow"}), "steps[2].wait.until"),
        (
            "approval",
            json!({"role": "commander"}),
            "steps[2].approval.prompt",
        ),
        (
            "approval",
            json!({"role": "commander", "prompt": "p", "on_timeout": "retry"}),
            "steps[2].approval.on_timeout",
        ),
        ("notify", json!("ops"), "steps[2].notify"),
    ] {
        let e = p(kind, body.clone()).unwrap_err();
        assert_eq!(e.field, field, "{kind} {body}: {}", e.message);
    }
}

#[test]
fn a_url_from_a_secret_is_checked_when_rendered_for_the_call() {
    let a = p("http", json!({"url": "https://{{ secrets.HOST }}/hook"})).unwrap();
    let with = |host: &'static str| {
        a.map(&mut |_: &str, t: &Template| -> Result<String, ()> {
            Ok(t.as_str().replace("{{ secrets.HOST }}", host))
        })
        .unwrap()
    };
    assert!(with("[secret HOST]").check("steps[0]").is_ok());
    assert!(with("hooks.example.com").check("steps[0]").is_ok());
    assert!(with("u:p@evil.example").check("steps[0]").is_err());
}

#[test]
fn rendered_values_are_checked() {
    let a = p("update_incident", json!({"status": "{{ inputs.s }}"})).unwrap();
    let r = a
        .map(&mut |_: &str, _: &Template| -> Result<String, ()> { Ok("nope".into()) })
        .unwrap();
    assert_eq!(
        r.check("steps[0]").unwrap_err().field,
        "steps[0].update_incident.status"
    );
}

#[test]
fn http_status_classes() {
    let Action::Http(h) = p("http", json!({"url": "https://x.example"})).unwrap() else {
        panic!()
    };
    assert!(h.accepts(204) && !h.accepts(304) && !h.accepts(503));
    let Action::Http(h) = p(
        "http",
        json!({"url": "https://x.example", "expect": [200, 503]}),
    )
    .unwrap() else {
        panic!()
    };
    assert!(h.accepts(503) && !h.accepts(201));
    assert!(retryable_status(503) && retryable_status(429) && retryable_status(408));
    assert!(!retryable_status(404) && !retryable_status(400));
}

#[test]
fn slack_and_jitsi_names() {
    assert_eq!(
        slack_channel_name("INC-42: Checkout is DOWN!"),
        "inc-42-checkout-is-down"
    );
    assert_eq!(slack_channel_name("  --  "), "incident");
    assert_eq!(slack_channel_name(&"a".repeat(100)).len(), 80);
    assert_eq!(
        jitsi_url("https://meet.jit.si/", "tocsin inc/42"),
        "https://meet.jit.si/tocsin-inc-42"
    );
}
