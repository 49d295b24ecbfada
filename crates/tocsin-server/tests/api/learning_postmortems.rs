//! Postmortems over HTTP on both back ends: the draft of an incident scripted
//! on the fake clock (alert, escalation, acknowledgement, role change, status
//! changes, status-page post, resolution) holds each key event and the exact
//! durations; edits are revisions, a stale edit merges or is refused with 409
//! and nothing written; the review follows its table; viewers read only;
//! exports escape alert text; action items refuse bad fields by name, and an
//! overdue one reminds its owner once a day until it is done.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tocsin_core::time::Clock;
use tocsin_engine::delivery::RecordingDelivery;

use crate::escalation_engine::{run_until, runner, setup};
use crate::support::{t, TestApp};

crate::both_backends!(
    the_draft_of_a_scripted_incident_has_each_key_event_and_exact_durations,
    stale_edits_merge_or_are_refused_with_nothing_written,
    the_review_follows_its_table,
    viewers_read_and_cannot_edit,
    exports_escape_alert_text,
    action_items_name_the_bad_field_and_list_overdue,
    overdue_action_items_remind_their_owner_once_a_day,
    one_postmortem_reviews_several_incidents,
    without_a_tracker_configured_items_are_not_sent_anywhere,
);

fn lines(body: &Value) -> Vec<String> {
    body["body"]
        .as_str()
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn create(app: &TestApp, incident: i64, body: Value) -> Value {
    let r = app
        .post(&format!("/api/v1/incidents/{incident}/postmortem"), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn put_body(
    app: &TestApp,
    token: &str,
    id: i64,
    base: i64,
    body: &str,
) -> crate::support::Resp {
    app.call(
        Method::PUT,
        &format!("/api/v1/postmortems/{id}/body"),
        Some(token),
        Some(json!({ "base_revision": base, "body": body })),
    )
    .await
}

/// An alert opens INC-1 at 00:00 and pages Ada; Bo is paged at 00:10, the
/// incident is acknowledged at 00:12:30, Bo made commander at 00:14, a
/// status-page incident published at 00:20, identified at 00:30, monitoring
/// (mitigated) at 00:37, the post updated at 00:40, resolved at 00:52; the
/// impact began at 23:52 the day before.
async fn scripted(app: &TestApp) -> (i64, [i64; 3]) {
    let s = setup(app).await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let key = app
        .post(
            &format!("/api/v1/services/{}/integration-keys", s.service),
            json!({ "name": "prometheus" }),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let t0 = app.clock.now();
    let sent = app
        .client
        .post(format!("{}/v2/enqueue", app.base))
        .json(&json!({ "routing_key": key.body["secret"], "event_action": "trigger", "dedup_key": "5xx",
                       "payload": { "summary": "Checkout <script>alert(1)</script> 5xx & *errors*",
                                    "source": "lb-1", "severity": "critical" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    run_until(
        app,
        &[&r],
        t0 + Duration::minutes(12) + Duration::seconds(30),
    )
    .await;
    let id = rec.requests()[0].incident_id.unwrap();
    let [_, bo, _] = s.users;
    assert_eq!(app.move_to(id, "acknowledged").await.status, StatusCode::OK);
    app.clock.set(t0 + Duration::minutes(14));
    let p = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "roles": { "commander": [bo] } }),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    app.clock.set(t0 + Duration::minutes(20));
    let page = app
        .post(
            "/api/v1/status-pages",
            json!({ "slug": "shop", "name": "Shop status" }),
        )
        .await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
    let comp = app
        .post(
            &format!("/api/v1/status-pages/{}/components", page.body["id"]),
            json!({ "name": "Checkout", "service_ids": [s.service] }),
        )
        .await;
    assert_eq!(comp.status, StatusCode::CREATED, "{}", comp.body);
    let post = app
        .post(
            &format!("/api/v1/status-pages/{}/incidents", page.body["id"]),
            json!({ "name": "Checkout errors", "body": "We are looking into failed checkouts.",
                    "components": [{ "component_id": comp.body["id"], "status": "major_outage" }],
                    "incident_id": id }),
        )
        .await;
    assert_eq!(post.status, StatusCode::CREATED, "{}", post.body);
    app.clock.set(t0 + Duration::minutes(30));
    assert_eq!(app.move_to(id, "identified").await.status, StatusCode::OK);
    app.clock.set(t0 + Duration::minutes(37));
    assert_eq!(app.move_to(id, "monitoring").await.status, StatusCode::OK);
    app.clock.set(t0 + Duration::minutes(40));
    let upd = app
        .post(
            &format!("/api/v1/status-posts/{}/updates", post.body["id"]),
            json!({ "status": "monitoring", "body": "A fix is out.",
                    "components": [{ "component_id": comp.body["id"], "status": "operational" }] }),
        )
        .await;
    assert_eq!(upd.status, StatusCode::CREATED, "{}", upd.body);
    app.clock.set(t0 + Duration::minutes(52));
    assert_eq!(app.move_to(id, "resolved").await.status, StatusCode::OK);
    app.clock.set(t0 + Duration::minutes(60));
    let p = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "occurred_at": "2025-12-31T23:52:00Z" }),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    (id, s.users)
}

async fn the_draft_of_a_scripted_incident_has_each_key_event_and_exact_durations(app: TestApp) {
    let (id, _) = scripted(&app).await;
    let before = app.timeline(id).await.len();
    let pm = create(&app, id, json!({})).await;
    assert_eq!(
        (pm["revision"].as_i64(), pm["status"].as_str()),
        (Some(1), Some("draft"))
    );
    assert_eq!(pm["incident_ids"], json!([id]));
    assert_eq!(pm["allowed_next"], json!(["in_review"]));
    let md = lines(&pm);
    let text = md.join("\n");
    if std::env::var_os("SHOW_DRAFT").is_some() {
        println!("{text}");
    }
    for line in [
        r"# Postmortem: INC-1 Checkout \<script\>alert(1)\</script\> 5xx \& \*errors\*",
        "| Impact began | 2025-12-31 23:52:00 UTC |  |",
        "| Detected | 2026-01-01 00:00:00 UTC | time to detect: 8m 00s |",
        "| Declared | 2026-01-01 00:00:00 UTC | time to declare: 0s |",
        "| Acknowledged | 2026-01-01 00:12:30 UTC | time to acknowledge: 12m 30s |",
        "| Mitigated | 2026-01-01 00:37:00 UTC | time to mitigate: 37m 00s |",
        "| Resolved | 2026-01-01 00:52:00 UTC | time to resolve: 52m 00s |",
        "- Time to acknowledge: 12m 30s.",
        "- Time to mitigate: 37m 00s.",
        "- Time to resolve: 52m 00s.",
        "- \"Checkout errors\", published 2026-01-01 00:20:00 UTC: investigating → monitoring",
        "- Checkout: operational → major outage → operational (worst: major outage)",
        "- Pages sent: 2, to 2 people.",
    ] {
        assert!(
            md.iter().any(|l| l == line),
            "missing line {line:?} in\n{text}"
        );
    }
    // Each key event, at its instant, in the key timeline, in order.
    let key: Vec<&String> = md.iter().filter(|l| l.starts_with("- `")).collect();
    assert_eq!(
        key,
        [
            r"- `2026-01-01 00:00:00 UTC` Declared INC-1 (SEV1): Checkout \<script\>alert(1)\</script\> 5xx \& \*errors\* — *prometheus (pagerduty)*",
            "- `2026-01-01 00:00:00 UTC` Paging started with escalation policy Checkout — *prometheus (pagerduty)*",
            r"- `2026-01-01 00:00:00 UTC` First alert: Checkout \<script\>alert(1)\</script\> 5xx \& \*errors\* (via pagerduty) — *prometheus (pagerduty)*",
            "- `2026-01-01 00:00:00 UTC` Paged escalation level 1: Ada — *escalation*",
            "- `2026-01-01 00:10:00 UTC` Paged escalation level 2: Bo — *escalation*",
            "- `2026-01-01 00:12:30 UTC` Acknowledged — *Ada Admin*",
            "- `2026-01-01 00:14:00 UTC` Roles: commander Bo — *Ada Admin*",
            "- `2026-01-01 00:20:00 UTC` Status page: published \"Checkout errors\" (investigating) — *Ada Admin*",
            "- `2026-01-01 00:20:00 UTC` Component Checkout: operational → major outage — *Ada Admin*",
            "- `2026-01-01 00:30:00 UTC` Status: acknowledged → identified — *Ada Admin*",
            "- `2026-01-01 00:37:00 UTC` Status: identified → monitoring — *Ada Admin*",
            "- `2026-01-01 00:40:00 UTC` Component Checkout: major outage → operational — *Ada Admin*",
            "- `2026-01-01 00:40:00 UTC` Status page update: investigating → monitoring — *Ada Admin*",
            "- `2026-01-01 00:52:00 UTC` Status: monitoring → resolved — *Ada Admin*",
        ],
        "{text}"
    );
    for line in [
        "| Bo | commander | 1 | 0 |",
        "| Ada | — | 1 | 0 |",
        "Alerts: 1, with 1 triggers in all.",
    ] {
        assert!(
            md.iter().any(|l| l == line),
            "missing line {line:?} in\n{text}"
        );
    }
    // Alert text is escaped: it cannot add HTML or structure to the document.
    assert!(!text.contains("<script>"), "{text}");
    // Creating it is on the incident's timeline; a second one is refused.
    let tl = app.timeline(id).await;
    assert_eq!(tl.len(), before + 1);
    assert_eq!(tl.last().unwrap()["kind"], "postmortem.created");
    let again = app
        .post(&format!("/api/v1/incidents/{id}/postmortem"), json!({}))
        .await;
    assert_eq!(
        (again.status, again.field()),
        (StatusCode::CONFLICT, "incident")
    );
    let got = app.get(&format!("/api/v1/postmortems/{}", pm["id"])).await;
    assert_eq!(got.body["body"], pm["body"]);
}

async fn stale_edits_merge_or_are_refused_with_nothing_written(app: TestApp) {
    let id = app.declare(json!({ "title": "Slow search" })).await["id"]
        .as_i64()
        .unwrap();
    let pm = create(&app, id, json!({})).await;
    let pid = pm["id"].as_i64().unwrap();
    let base = pm["body"].as_str().unwrap().to_string();
    let (alice, alice_token) = app.user_with_role("responder").await;
    let (_, bob_token) = app.user_with_role("responder").await;
    // Alice fills "What went well", Bob "Lessons learned", both from revision 1.
    let mine = base.replace(
        "## What went well\n",
        "## What went well\n\nThe rollback took two minutes.\n",
    );
    let theirs = base.replace(
        "## Lessons learned\n",
        "## Lessons learned\n\nCanary longer.\n",
    );
    assert_ne!(mine, base);
    assert_ne!(theirs, base);
    app.clock.advance(Duration::minutes(5));
    let r = put_body(&app, &alice_token, pid, 1, &mine).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["revision"].as_i64(), r.body["merged"].as_bool()),
        (Some(2), Some(false))
    );
    app.clock.advance(Duration::minutes(5));
    let r = put_body(&app, &bob_token, pid, 1, &theirs).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["revision"].as_i64(), r.body["merged"].as_bool()),
        (Some(3), Some(true))
    );
    let merged = r.body["postmortem"]["body"].as_str().unwrap().to_string();
    assert!(merged.contains("The rollback took two minutes.") && merged.contains("Canary longer."));

    // Both change the same line from revision 3: the second is refused.
    let a = merged.replace(
        "The rollback took two minutes.",
        "The rollback took 2 minutes.",
    );
    let b = merged.replace("The rollback took two minutes.", "Rolling back was quick.");
    assert_eq!(
        put_body(&app, &alice_token, pid, 3, &a).await.status,
        StatusCode::OK
    );
    let before = app.counts().await;
    let r = put_body(&app, &bob_token, pid, 3, &b).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "edit_conflict");
    assert_eq!(r.body["error"]["current_revision"], 4);
    assert_eq!(r.body["error"]["current_body"], json!(a));
    let ranges = r.body["error"]["conflicts"].as_array().unwrap();
    assert_eq!(ranges.len(), 1, "{}", r.body);
    let line = merged
        .lines()
        .position(|l| l == "The rollback took two minutes.")
        .unwrap();
    assert_eq!(ranges[0]["base"], json!({ "start": line, "end": line + 1 }));
    assert_eq!(app.counts().await, before, "a refused edit writes nothing");

    // Revisions keep author and time; a base that never was is refused by name.
    let revs = app
        .get(&format!("/api/v1/postmortems/{pid}/revisions"))
        .await
        .body;
    let revs = revs.as_array().unwrap();
    assert_eq!(revs.len(), 4);
    assert_eq!(revs[0]["revision"], 4);
    assert_eq!(revs[0]["author_id"], alice);
    assert_eq!(revs[3]["author_id"], Value::Null);
    assert_eq!(revs[1]["created_at"], "2026-01-01T00:10:00Z");
    let r = put_body(&app, &bob_token, pid, 9, &b).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "base_revision")
    );
    let kinds: Vec<Value> = app
        .timeline(id)
        .await
        .into_iter()
        .map(|e| e["kind"].clone())
        .filter(|k| k.as_str().unwrap().starts_with("postmortem."))
        .collect();
    assert_eq!(
        kinds,
        [
            "postmortem.created",
            "postmortem.revised",
            "postmortem.revised",
            "postmortem.revised"
        ]
    );
}

async fn the_review_follows_its_table(app: TestApp) {
    let id = app.declare(json!({ "title": "Queue backlog" })).await["id"]
        .as_i64()
        .unwrap();
    let pid = create(&app, id, json!({})).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/postmortems/{pid}");
    let status = |s: &str| json!({ "status": s });
    // Not straight to published.
    let r = app.patch(&path, status("published")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "transition_not_allowed")
    );
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allowed next: in_review"));
    let r = app.patch(&path, status("finished")).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "status"));
    let (rev, rev_token) = app.user_with_role("responder").await;
    let r = app
        .post(&format!("{path}/reviewers"), json!({ "user_id": rev }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .post(&format!("{path}/reviewers"), json!({ "user_id": 999_999 }))
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "user_id"));
    // Approving is for review time.
    let approve_path = format!("{path}/approve");
    let approve = || app.call(Method::POST, &approve_path, Some(&rev_token), None);
    assert_eq!(approve().await.status, StatusCode::CONFLICT);
    let r = app.patch(&path, status("in_review")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["allowed_next"], json!(["draft", "published"]));
    // Waiting for the reviewer.
    let r = app.patch(&path, status("published")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("A responder"));
    // Only a reviewer approves.
    let r = app
        .call(
            Method::POST,
            &format!("{path}/approve"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::CONFLICT, "reviewer"));
    let r = approve().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["reviewers"][0]["approved_at"],
        "2026-01-01T00:00:00Z"
    );
    app.clock.advance(Duration::hours(3));
    let r = app.patch(&path, status("published")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["published_at"], "2026-01-01T03:00:00Z");
    assert_eq!(r.body["allowed_next"], json!(["draft"]));
    let r = app.patch(&path, status("in_review")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Published postmortems are found by the words in them.
    let found = app
        .get("/api/v1/postmortems?q=queue%20BACKLOG&status=published")
        .await;
    assert_eq!(found.body.as_array().unwrap().len(), 1, "{}", found.body);
    for q in ["kubernetes", "queue%25backlog", "queue_backlog"] {
        let none = app.get(&format!("/api/v1/postmortems?q={q}")).await;
        assert_eq!(none.body, json!([]), "{q}: wildcards are text");
    }
    // Back to draft clears the approvals: the text will change.
    let r = app.patch(&path, status("draft")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["reviewers"][0]["approved_at"], Value::Null);
    assert_eq!(r.body["published_at"], "2026-01-01T03:00:00Z");
    let moves: Vec<(Value, Value)> = app
        .timeline(id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "postmortem.status_changed")
        .map(|e| (e["data"]["from"].clone(), e["data"]["to"].clone()))
        .collect();
    assert_eq!(
        moves,
        [
            (json!("draft"), json!("in_review")),
            (json!("in_review"), json!("published")),
            (json!("published"), json!("draft"))
        ]
    );
}

async fn viewers_read_and_cannot_edit(app: TestApp) {
    let id = app.declare(json!({ "title": "Read only" })).await["id"]
        .as_i64()
        .unwrap();
    let (_, viewer) = app.user_with_role("viewer").await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/postmortem"),
            Some(&viewer),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let pm = create(&app, id, json!({})).await;
    let pid = pm["id"].as_i64().unwrap();
    let before = app.counts().await;
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/api/v1/postmortems/{pid}/body"),
            json!({ "base_revision": 1, "body": "x" }),
        ),
        (
            Method::PATCH,
            format!("/api/v1/postmortems/{pid}"),
            json!({ "status": "in_review" }),
        ),
        (
            Method::POST,
            format!("/api/v1/postmortems/{pid}/action-items"),
            json!({ "title": "x" }),
        ),
        (
            Method::PUT,
            "/api/v1/postmortem-template".to_string(),
            json!({ "sections": [{ "title": "Only" }] }),
        ),
    ] {
        let r = app.call(method, &path, Some(&viewer), Some(body)).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}"
        );
    }
    assert_eq!(app.counts().await, before);
    for path in [
        format!("/api/v1/postmortems/{pid}"),
        format!("/api/v1/postmortems/{pid}/revisions"),
        format!("/api/v1/postmortems/{pid}/action-items"),
        "/api/v1/postmortems".to_string(),
        "/api/v1/action-items".to_string(),
        "/api/v1/postmortem-template".to_string(),
    ] {
        let r = app.call(Method::GET, &path, Some(&viewer), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    // Admins change the template: new postmortems use it.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/postmortem-template",
            Some(&app.admin_token),
            Some(json!({ "sections": [{ "title": "Summary", "generated": "summary" }, { "title": "Summary" }] })),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "sections[1].title")
    );
    let r = app
        .call(
            Method::PUT,
            "/api/v1/postmortem-template",
            Some(&app.admin_token),
            Some(json!({ "sections": [{ "title": "What happened", "generated": "timeline" }, { "title": "Follow-up" }] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let other = app.declare(json!({ "title": "Second" })).await["id"]
        .as_i64()
        .unwrap();
    let pm2 = create(&app, other, json!({})).await;
    let headings: Vec<String> = lines(&pm2)
        .into_iter()
        .filter(|l| l.starts_with("## "))
        .collect();
    assert_eq!(headings, ["## What happened", "## Follow-up"]);
}

async fn exports_escape_alert_text(app: TestApp) {
    let (id, _) = scripted(&app).await;
    let pid = create(&app, id, json!({})).await["id"].as_i64().unwrap();
    let md = app
        .get(&format!("/api/v1/postmortems/{pid}/export.md"))
        .await;
    assert_eq!(md.status, StatusCode::OK);
    assert!(md.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    let text = String::from_utf8(md.bytes).unwrap();
    assert!(
        text.starts_with("# Postmortem: INC-1 Checkout \\<script\\>"),
        "{text}"
    );
    let html = app.get(&format!("/api/v1/postmortems/{pid}/print")).await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(html.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = String::from_utf8(html.bytes).unwrap();
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("<title>Postmortem: INC-1 Checkout &lt;script&gt;alert(1)&lt;/script&gt; 5xx &amp; *errors*</title>"), "{page}");
    assert!(
        page.contains("Checkout &lt;script&gt;alert(1)&lt;/script&gt; 5xx &amp; *errors*"),
        "{page}"
    );
    assert!(page.contains("<h2>Timeline</h2>"), "{page}");
    assert!(page.contains("@media print"));
    // A responder's HTML in the text stays text.
    let r = put_body(
        &app,
        &app.admin_token,
        pid,
        1,
        &format!("{text}\n<img src=x onerror=alert(2)>\n"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = String::from_utf8(
        app.get(&format!("/api/v1/postmortems/{pid}/print"))
            .await
            .bytes,
    )
    .unwrap();
    assert!(
        !page.contains("<img") && page.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{page}"
    );
}

async fn action_items_name_the_bad_field_and_list_overdue(app: TestApp) {
    let id = app.declare(json!({ "title": "Cache stampede" })).await["id"]
        .as_i64()
        .unwrap();
    let pid = create(&app, id, json!({})).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/postmortems/{pid}/action-items");
    let (owner, _) = app.user_with_role("responder").await;
    let before = app.counts().await;
    for (body, field) in [
        (
            json!({ "title": "x", "due_date": "2026-02-30" }),
            "due_date",
        ),
        (json!({ "title": "x", "due_date": "next week" }), "due_date"),
        (json!({ "title": "x", "owner_id": 999_999 }), "owner_id"),
        (json!({ "title": "" }), "title"),
        (json!({ "title": "x", "priority": "urgent" }), "priority"),
        (json!({ "title": "x", "status": "later" }), "status"),
        (
            json!({ "title": "x", "external_url": "javascript:alert(1)" }),
            "external_url",
        ),
        (
            json!({ "title": "x", "incident_id": 999_999 }),
            "incident_id",
        ),
    ] {
        let r = app.post(&path, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::BAD_REQUEST, field),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(app.counts().await, before);
    let r = app
        .post(
            &path,
            json!({ "title": "Add request coalescing", "owner_id": owner, "due_date": "2026-01-10",
                             "priority": "high", "external_url": "https://issues.example/OPS-1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let item = r.body;
    assert_eq!(item["incident_id"], id);
    assert_eq!(item["status"], "open");
    assert_eq!(item["due_date"], "2026-01-10");
    assert_eq!(item["overdue"], false);
    let r = app
        .post(&path, json!({ "title": "Write the cache docs" }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let listed = app.get(&path).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    // On its due day it is not overdue; the day after it is.
    app.clock.set(t("2026-01-10T23:59:00Z"));
    let overdue = app.get("/api/v1/action-items?overdue=true").await.body;
    assert_eq!(overdue, json!([]));
    app.clock.set(t("2026-01-11T00:00:00Z"));
    let overdue = app
        .get(&format!("/api/v1/action-items?overdue=true&owner={owner}"))
        .await
        .body;
    assert_eq!(overdue.as_array().unwrap().len(), 1, "{overdue}");
    assert_eq!(overdue[0]["overdue"], true);
    let r = app.get("/api/v1/action-items?overdue=maybe").await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "overdue"));
    let r = app
        .patch(
            &format!("{path}/{}", item["id"]),
            json!({ "status": "done" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["overdue"].as_bool()),
        (Some("done"), Some(false))
    );
    assert_eq!(
        app.get("/api/v1/action-items?overdue=true").await.body,
        json!([])
    );
    let r = app
        .patch(
            &format!("{path}/{}", item["id"]),
            json!({ "due_date": null, "owner_id": null }),
        )
        .await;
    assert_eq!(
        (r.body["due_date"].clone(), r.body["owner_id"].clone()),
        (Value::Null, Value::Null)
    );
    let r = app
        .patch(
            &format!("/api/v1/postmortems/999999/action-items/{}", item["id"]),
            json!({ "status": "open" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let kinds: Vec<Value> = app
        .timeline(id)
        .await
        .into_iter()
        .map(|e| e["kind"].clone())
        .filter(|k| k.as_str().unwrap().starts_with("action_item."))
        .collect();
    assert_eq!(
        kinds,
        [
            "action_item.created",
            "action_item.created",
            "action_item.updated",
            "action_item.updated"
        ]
    );
}

async fn overdue_action_items_remind_their_owner_once_a_day(app: TestApp) {
    let s = setup(&app).await;
    let [ada, bo, _] = s.users;
    let id = app.declare(json!({ "title": "Disk full" })).await["id"]
        .as_i64()
        .unwrap();
    let pid = create(&app, id, json!({})).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/postmortems/{pid}/action-items");
    let item = app
        .post(
            &path,
            json!({ "title": "Alert on disk growth", "owner_id": ada, "due_date": "2026-01-03" }),
        )
        .await
        .body;
    // No owner, or no due date: never reminded.
    app.post(
        &path,
        json!({ "title": "Nobody's", "due_date": "2026-01-02" }),
    )
    .await;
    app.post(&path, json!({ "title": "Someday", "owner_id": bo }))
        .await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let reminders = |rec: &RecordingDelivery| -> Vec<(i64, String, i64)> {
        rec.requests()
            .into_iter()
            .filter(|n| n.reason == "action_item_overdue")
            .map(|n| {
                (
                    n.user_id,
                    n.contact_kind.clone(),
                    n.message["action_item_id"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let item_id = item["id"].as_i64().unwrap();
    // Not before it is due (the due day is not overdue).
    run_until(&app, &[&r], t("2026-01-03T23:59:59Z")).await;
    assert_eq!(reminders(&rec), []);
    // Once after: through Ada's high-urgency channel without delay.
    app.clock.set(t("2026-01-04T00:00:05Z"));
    r.tick().await.unwrap();
    assert_eq!(reminders(&rec), [(ada, "push".to_string(), item_id)]);
    let n = &rec
        .requests()
        .into_iter()
        .find(|n| n.reason == "action_item_overdue")
        .unwrap();
    assert_eq!(n.message["days_overdue"], 1);
    assert_eq!(n.message["due_date"], "2026-01-03");
    // Not twice the same day.
    for at in [
        "2026-01-04T00:00:06Z",
        "2026-01-04T12:00:00Z",
        "2026-01-04T23:59:59Z",
    ] {
        app.clock.set(t(at));
        r.tick().await.unwrap();
    }
    assert_eq!(reminders(&rec).len(), 1);
    // Again the next day.
    app.clock.set(t("2026-01-05T08:00:00Z"));
    r.tick().await.unwrap();
    r.tick().await.unwrap();
    assert_eq!(reminders(&rec).len(), 2);
    let listed = app
        .get(&format!("/api/v1/action-items?owner={ada}"))
        .await
        .body;
    assert_eq!(listed[0]["last_reminded_at"], "2026-01-05T08:00:00Z");
    // Not after it is done.
    let r2 = app
        .patch(&format!("{path}/{item_id}"), json!({ "status": "done" }))
        .await;
    assert_eq!(r2.status, StatusCode::OK);
    for day in 6..9 {
        app.clock.set(t(&format!("2026-01-0{day}T09:00:00Z")));
        r.tick().await.unwrap();
    }
    assert_eq!(reminders(&rec).len(), 2);
    let reminded = app
        .timeline(id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "action_item.reminded")
        .count();
    assert_eq!(reminded, 2);
}

async fn one_postmortem_reviews_several_incidents(app: TestApp) {
    let a = app
        .declare(json!({ "title": "API errors", "severity": "SEV3" }))
        .await;
    let b = app
        .declare(json!({ "title": "Login errors", "severity": "SEV1" }))
        .await;
    let (a, b) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    let r = app
        .post(
            &format!("/api/v1/incidents/{a}/postmortem"),
            json!({ "incident_ids": ["INC-999"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .post(
            &format!("/api/v1/incidents/{a}/postmortem"),
            json!({ "incident_ids": [true] }),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "incident_ids[0]")
    );
    let pm = create(&app, a, json!({ "incident_ids": [format!("INC-{b}")] })).await;
    assert_eq!(pm["incident_ids"], json!([a, b]));
    // The draft names the most severe first.
    assert!(
        pm["title"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Postmortem: INC-{b}, INC-{a}")),
        "{}",
        pm["title"]
    );
    for i in [a, b] {
        assert!(app
            .timeline(i)
            .await
            .iter()
            .any(|e| e["kind"] == "postmortem.created"));
        let r = app
            .post(&format!("/api/v1/incidents/{i}/postmortem"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
    }
}

async fn without_a_tracker_configured_items_are_not_sent_anywhere(app: TestApp) {
    let id = app.declare(json!({ "title": "Disk full" })).await["id"]
        .as_i64()
        .unwrap();
    let pid = create(&app, id, json!({})).await["id"].as_i64().unwrap();
    let item = app
        .post(
            &format!("/api/v1/postmortems/{pid}/action-items"),
            json!({ "title": "Alert at 80%" }),
        )
        .await;
    assert_eq!(item.status, StatusCode::CREATED, "{}", item.body);
    let path = format!(
        "/api/v1/postmortems/{pid}/action-items/{}/issue",
        item.body["id"]
    );
    for (body, says) in [
        (
            json!({}),
            "action_items_project or [workflows.github] action_items_repo",
        ),
        (
            json!({ "tracker": "github" }),
            "[workflows.github] action_items_repo",
        ),
    ] {
        let r = app.post(&path, body).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "tracker_not_configured");
        assert_eq!(r.body["error"]["field"], "tracker");
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(says),
            "{}",
            r.body
        );
    }
    let r = app
        .get(&format!("/api/v1/postmortems/{pid}/action-items"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body[0]["title"], "Alert at 80%", "{}", r.body);
    assert!(r.body[0]["tracker_status"].is_null(), "{}", r.body);
    assert!(r.body[0]["tracker_run_id"].is_null(), "{}", r.body);
}
