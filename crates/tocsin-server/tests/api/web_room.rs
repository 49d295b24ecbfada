//! The incident room: what each role sees, every form changing what the API
//! shows and adding to the timeline, escaping of notes, and refusals that
//! change nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::TestApp;
use crate::web_support::signed_in;

async fn incident(app: &TestApp, id: i64) -> Value {
    let r = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn viewer_sees_the_room_without_actions(app: TestApp) {
    let inc = app
        .declare(json!({ "title": "Checkout <b>502</b>", "description": "It **fails**" }))
        .await;
    let number = inc["number"].as_str().unwrap();
    let web = signed_in(&app, "viewer").await;
    for path in [
        format!("/incidents/{number}"),
        format!("/incidents/{}", inc["id"]),
    ] {
        let p = web.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.html);
        assert!(p.html.contains("id=\"room-head\" data-live-region"));
        assert!(
            p.html
                .contains("<h1 id=\"incident-title\">Checkout &#60;b&#62;502&#60;/b&#62;</h1>"),
            "{}",
            p.html
        );
        assert!(p
            .html
            .contains("class=\"status status-triggered\">triggered</span>"));
        assert!(
            p.html.contains("<strong>fails</strong>"),
            "description is Markdown"
        );
        assert!(p
            .html
            .contains("id=\"timeline\" class=\"timeline\" data-live-region"));
        assert!(p.html.contains("declared the incident"));
        assert!(p.html.contains("data-live=\"incident:"));
        assert!(
            !p.html.contains("action=\"/incidents/INC-"),
            "a viewer gets no action form"
        );
        assert!(!p.html.contains("note-form"));
        assert!(!p.html.contains("name=\"status\""));
    }
    // A responder gets the forms, with one button per allowed move.
    let r = signed_in(&app, "responder").await;
    let p = r.get(&format!("/incidents/{number}")).await;
    assert!(p
        .html
        .contains(&format!("action=\"/incidents/{number}/status\"")));
    assert!(p.html.contains(
        "<button type=\"submit\" name=\"status\" value=\"acknowledged\">Acknowledge</button>"
    ));
    assert!(p
        .html
        .contains("value=\"resolved\" class=\"primary\">Resolve</button>"));
    assert!(
        !p.html.contains("value=\"closed\""),
        "closing is not a move from triggered"
    );
    assert!(p
        .html
        .contains("<form id=\"note-form\" method=\"post\" action=\"/incidents/"));
    // The note form sits outside every live region (it would be replaced while typing).
    let form_at = p.html.find("id=\"note-form\"").unwrap();
    let timeline_end = p.html[p.html.find("id=\"timeline\"").unwrap()..]
        .find("</ol>")
        .unwrap()
        + p.html.find("id=\"timeline\"").unwrap();
    assert!(form_at > timeline_end);

    // Unknown incident and a bad number.
    assert_eq!(
        web.get("/incidents/INC-99999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        web.get("/incidents/nope").await.status,
        StatusCode::BAD_REQUEST
    );
}

async fn forms_change_the_incident(app: TestApp) {
    let web = signed_in(&app, "responder").await;
    let other = app.declare(json!({ "title": "Older outage" })).await;
    let inc = app.declare(json!({ "title": "Checkout 502" })).await;
    let id = inc["id"].as_i64().unwrap();
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());

    // Acknowledge.
    let r = web
        .post(&format!("{room}/status"), &[("status", "acknowledged")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), room);
    assert_eq!(incident(&app, id).await["status"], "acknowledged");

    // A note, then marked as a decision.
    let r = web
        .post(&format!("{room}/notes"), &[("body", "Rolled back **v42**")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), format!("{room}#timeline"));
    let notes = app.get(&format!("/api/v1/incidents/{id}/notes")).await.body;
    let note_id = notes[0]["id"].as_i64().unwrap();
    assert_eq!(notes[0]["body"], "Rolled back **v42**");
    let r = web
        .post(
            &format!("{room}/notes/{note_id}/mark"),
            &[("kind", "decision")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let notes = app.get(&format!("/api/v1/incidents/{id}/notes")).await.body;
    assert_eq!(notes[0]["kind"], "decision");
    let p = web.get(&room).await;
    assert!(
        p.html.contains("<li id=\"event-") && p.html.contains("class=\"marked\""),
        "{}",
        p.html
    );
    assert!(p.html.contains("<span class=\"badge note-mark\">decision"));
    assert!(p.html.contains("<strong>v42</strong>"));

    // Edit fields: only what changed is recorded.
    let before = app.timeline(id).await.len();
    let r = web
        .post(
            &format!("{room}/fields"),
            &[
                ("title", "Checkout returns 502"),
                ("severity", "SEV2"),
                ("type", "software"),
                ("impact", "high"),
                ("urgency", "high"),
                ("labels", "checkout, payments"),
                ("description", ""),
                ("root_cause", "Bad deploy"),
                ("resolution_summary", ""),
                ("services_shown", "1"),
                ("cf_shown.region", "1"),
                ("cf.region", "eu-west"),
                ("cf_shown.customers_affected", "1"),
                ("cf.customers_affected", "12"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let now = incident(&app, id).await;
    assert_eq!(now["title"], "Checkout returns 502");
    assert_eq!(now["severity"], "SEV2");
    assert_eq!(now["impact"], "high");
    assert_eq!(now["priority"], "P1");
    assert_eq!(now["labels"], json!(["checkout", "payments"]));
    assert_eq!(now["root_cause"], "Bad deploy");
    assert_eq!(now["custom_fields"]["region"], "eu-west");
    assert_eq!(now["custom_fields"]["customers_affected"], 12);
    let events = app.timeline(id).await;
    assert_eq!(events.len(), before + 1, "one edit, one event");
    let changed: Vec<&str> = events.last().unwrap()["data"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        !changed.contains(&"description") && !changed.contains(&"type"),
        "{changed:?}"
    );
    // A bad value is refused by name and changes nothing.
    let counts = app.counts().await;
    let r = web
        .post(&format!("{room}/fields"), &[("severity", "SEV9")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);
    assert!(r.html.contains("severity"), "{}", r.html);
    assert_eq!(app.counts().await, counts);

    // Roles and assignee.
    let me = web.user_id.to_string();
    let admin = app.admin_id.to_string();
    let r = web
        .post(
            &format!("{room}/roles"),
            &[
                ("assignee_id", me.as_str()),
                ("role.commander", me.as_str()),
                ("role.investigator", me.as_str()),
                ("role.investigator", admin.as_str()),
                ("role.communicator", ""),
                ("role.scribe", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let now = incident(&app, id).await;
    assert_eq!(now["assignee_id"], web.user_id);
    assert_eq!(now["roles"]["commander"], json!([web.user_id]));
    assert_eq!(
        now["roles"]["investigator"],
        json!([web.user_id, app.admin_id])
    );
    let p = web.get(&room).await;
    assert!(
        p.html
            .contains("<dd class=\"role-commander\">Web responder</dd>"),
        "{}",
        p.html
    );

    // Link a related incident, by number; an unknown one is refused.
    let r = web
        .post(
            &format!("{room}/related"),
            &[
                ("kind", "caused_by"),
                ("number", other["number"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(
        incident(&app, id).await["related"],
        json!([{ "kind": "caused_by", "incident_id": other["id"] }])
    );
    let r = web
        .post(
            &format!("{room}/related"),
            &[("kind", "related"), ("number", "INC-9999")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Resolve.
    let r = web
        .post(&format!("{room}/status"), &[("status", "resolved")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(incident(&app, id).await["status"], "resolved");
    let k = kinds(&app.timeline(id).await);
    for want in [
        "incident.status_changed",
        "incident.note_added",
        "incident.note_marked",
        "incident.updated",
    ] {
        assert!(k.iter().any(|x| x == want), "{want} in {k:?}");
    }
    let p = web.get(&room).await;
    assert!(
        p.html
            .contains("changed the status from acknowledged to resolved"),
        "{}",
        p.html
    );
    assert!(p.html.contains(">Reopen</button>") && p.html.contains(">Close</button>"));
}

async fn closure_is_confirmed_by_the_reporter(app: TestApp) {
    let reporter = signed_in(&app, "responder").await;
    let r = reporter
        .post(
            "/incidents",
            &[("title", "Need a new laptop"), ("severity", "SEV4")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let room = r.location().to_string();
    let id: i64 = room.trim_start_matches("/incidents/INC-").parse().unwrap();
    let r = reporter
        .post(&format!("{room}/fields"), &[("type", "service_request")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);

    // Someone else closes: that only requests closure, and the room says so.
    let other = signed_in(&app, "responder").await;
    assert_eq!(
        other
            .post(&format!("{room}/status"), &[("status", "resolved")])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let r = other
        .post(&format!("{room}/status"), &[("status", "closed")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("{room}?notice=closure_requested"));
    let p = other.get(r.location()).await;
    assert!(p.html.contains("Closure requested"), "{}", p.html);
    assert!(
        !p.html.contains("Confirm closure"),
        "only the reporter answers"
    );
    assert_eq!(incident(&app, id).await["status"], "resolved");

    // Not the reporter: refused, nothing changes.
    let counts = app.counts().await;
    let r = other
        .post(&format!("{room}/closure"), &[("answer", "confirm")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    assert_eq!(app.counts().await, counts);

    let p = reporter.get(&room).await;
    assert!(
        p.html
            .contains("value=\"confirm\">Confirm closure</button>"),
        "{}",
        p.html
    );
    let r = reporter
        .post(&format!("{room}/closure"), &[("answer", "confirm")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(incident(&app, id).await["status"], "closed");
    assert!(kinds(&app.timeline(id).await).contains(&"incident.closure_confirmed".to_string()));
}

async fn notes_are_escaped_and_links_defused(app: TestApp) {
    let web = signed_in(&app, "responder").await;
    let inc = app.declare(json!({ "title": "XSS" })).await;
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let r = web
        .post(
            &format!("{room}/notes"),
            &[(
                "body",
                "<img src=x onerror=alert(1)> [x](javascript:alert(1))",
            )],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let p = web.get(&room).await;
    assert!(!p.html.contains("<img src=x"), "{}", p.html);
    assert!(
        p.html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        p.html
    );
    assert!(!p.html.contains("href=\"javascript:"), "{}", p.html);
}

async fn refusals_change_nothing(app: TestApp) {
    let inc = app.declare(json!({ "title": "Guarded" })).await;
    let id = inc["id"].as_i64().unwrap();
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let viewer = signed_in(&app, "viewer").await;
    let responder = signed_in(&app, "responder").await;
    let counts = app.counts().await;
    for (path, form) in [
        (format!("{room}/status"), vec![("status", "acknowledged")]),
        (format!("{room}/notes"), vec![("body", "hi")]),
        (format!("{room}/fields"), vec![("title", "Taken over")]),
        (format!("{room}/roles"), vec![("assignee_id", "1")]),
        (
            format!("{room}/related"),
            vec![("kind", "related"), ("number", "1")],
        ),
        (format!("{room}/escalate"), vec![("level", "0")]),
        (format!("{room}/closure"), vec![("answer", "confirm")]),
    ] {
        let r = viewer.post(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "viewer {path}");
        let r = responder.post_raw(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no token {path}");
        let mut forged = vec![("_csrf", "forged")];
        forged.extend(form.iter().cloned());
        assert_eq!(
            responder.post_raw(&path, &forged).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(app.counts().await, counts);
    assert_eq!(incident(&app, id).await["status"], "triggered");

    // A move the lifecycle does not allow: 409 naming the allowed moves, nothing written.
    assert_eq!(app.move_to(id, "resolved").await.status, StatusCode::OK);
    assert_eq!(app.move_to(id, "closed").await.status, StatusCode::OK);
    let counts = app.counts().await;
    let r = responder
        .post(&format!("{room}/status"), &[("status", "acknowledged")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    assert!(r.html.contains("investigating"), "{}", r.html);
    assert_eq!(app.counts().await, counts);
    assert_eq!(incident(&app, id).await["status"], "closed");
    // An unknown incident.
    let r = responder
        .post("/incidents/INC-99999/notes", &[("body", "x")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn attachments_download_from_the_room(app: TestApp) {
    let inc = app.declare(json!({ "title": "With files" })).await;
    let id = inc["id"].as_i64().unwrap();
    let up = app
        .raw(
            reqwest::Method::POST,
            &format!("/api/v1/incidents/{id}/attachments?filename=dump%20<1>.html"),
            Some(&app.admin_token),
            "text/html",
            b"<script>alert(1)</script>".to_vec(),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let aid = up.body["id"].as_i64().unwrap();
    let web = signed_in(&app, "viewer").await;
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let p = web.get(&room).await;
    assert!(
        p.html.contains(&format!(
            "href=\"{room}/attachments/{aid}\" download>dump &#60;1&#62;.html</a>"
        )),
        "{}",
        p.html
    );
    let r = web
        .http
        .get(format!("{}{room}/attachments/{aid}", web.base))
        .header("cookie", &web.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().contains_key("content-security-policy"));
    assert_eq!(r.text().await.unwrap(), "<script>alert(1)</script>");
}

crate::both_backends!(
    viewer_sees_the_room_without_actions,
    forms_change_the_incident,
    closure_is_confirmed_by_the_reporter,
    notes_are_escaped_and_links_defused,
    refusals_change_nothing,
    attachments_download_from_the_room,
);
