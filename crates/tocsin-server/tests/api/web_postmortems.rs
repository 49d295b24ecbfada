//! The postmortem pages. Over HTTP on both back ends: the incident room
//! creates and then links the postmortem; its page shows the text, the alert
//! chart and the review; a save that overlaps one made meanwhile comes back
//! (409) with the current text shown and the typed text still in the box,
//! nothing written; viewers see no forms and cannot post; the dashboard lists
//! overdue action items. In headless Chromium (SQLite): open the page, edit
//! and save, and take postmortem-desktop.png and postmortem-phone.png.

use reqwest::StatusCode;
use serde_json::json;

use crate::browser::screenshot_dir;
use crate::support::{Db, TestApp};
use crate::web_support::{signed_in, web_user, PASSWORD};
use crate::webdriver::{available, Driver, ELEMENT};

crate::both_backends!(
    the_room_creates_and_links_the_postmortem,
    an_overlapping_save_keeps_the_typed_text,
    viewers_read_postmortem_pages_only,
    the_dashboard_lists_overdue_action_items,
);

const EVIL: &str = "<img src=x onerror=alert(1)>";

/// An incident opened by an alert whose summary is hostile; its number.
async fn incident_with_alert(app: &TestApp) -> String {
    let svc = app
        .post("/api/v1/services", json!({ "name": "checkout" }))
        .await;
    assert_eq!(svc.status, StatusCode::CREATED, "{}", svc.body);
    let key = app
        .post(
            &format!("/api/v1/services/{}/integration-keys", svc.body["id"]),
            json!({ "name": "prometheus" }),
        )
        .await;
    let r = app
        .client
        .post(format!("{}/v2/enqueue", app.base))
        .json(&json!({ "routing_key": key.body["secret"], "event_action": "trigger", "dedup_key": "x",
                       "payload": { "summary": format!("Checkout 5xx {EVIL}"), "source": "lb", "severity": "critical" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    "INC-1".to_string()
}

async fn the_room_creates_and_links_the_postmortem(app: TestApp) {
    let number = incident_with_alert(&app).await;
    let web = signed_in(&app, "responder").await;
    let room = web.get(&format!("/incidents/{number}")).await;
    assert_eq!(room.status, StatusCode::OK);
    assert!(
        room.html.contains("id=\"create-postmortem\""),
        "{}",
        room.html
    );
    let created = web
        .post(&format!("/incidents/{number}/postmortem"), &[])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    assert_eq!(created.location(), "/postmortems/1");
    // Asking again opens the same one.
    let again = web
        .post(&format!("/incidents/{number}/postmortem"), &[])
        .await;
    assert_eq!(again.location(), "/postmortems/1");
    let room = web.get(&format!("/incidents/{number}")).await;
    assert!(room.html.contains("href=\"/postmortems/1\""));
    let page = web.get("/postmortems/1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("<h2>Timeline</h2>"), "{}", page.html);
    assert!(page.html.contains("<svg"), "the alert chart");
    assert!(!page.html.contains("<img src=x"), "{}", page.html);
    assert!(page.html.contains("name=\"base_revision\" value=\"1\""));
    let list = web.get("/postmortems?status=draft").await;
    assert!(
        list.html.contains("href=\"/postmortems/1\""),
        "{}",
        list.html
    );
    let none = web.get("/postmortems?status=published").await;
    assert!(!none.html.contains("href=\"/postmortems/1\""));
    // The review moves from the page.
    let r = web
        .post("/postmortems/1/review", &[("status", "published")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.html.contains("allowed next: in_review"), "{}", r.html);
    let r = web
        .post("/postmortems/1/review", &[("status", "in_review")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(web.get("/postmortems/1").await.html.contains("in review"));
    // The exports.
    let print = web.get("/postmortems/1/print").await;
    assert!(print.html.contains("@media print") && !print.html.contains("<img src=x"));
    let md = web.get("/postmortems/1/export.md").await;
    assert!(md.html.starts_with("# Postmortem: INC-1"));
}

async fn an_overlapping_save_keeps_the_typed_text(app: TestApp) {
    app.declare(json!({ "title": "Search slow" })).await;
    let a = signed_in(&app, "responder").await;
    let b = signed_in(&app, "responder").await;
    a.post("/incidents/INC-1/postmortem", &[]).await;
    let body = app.get("/api/v1/postmortems/1").await.body["body"]
        .as_str()
        .unwrap()
        .to_string();
    let mine = body.replace(
        "## What went well\n",
        "## What went well\n\nAlice's line.\n",
    );
    let theirs = body.replace(
        "## What went well\n",
        "## What went well\n\nBob's <b>line</b>.\n",
    );
    let r = a
        .post("/postmortems/1", &[("base_revision", "1"), ("body", &mine)])
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/postmortems/1?notice=saved")
    );
    let before = app.counts().await;
    let r = b
        .post(
            "/postmortems/1",
            &[("base_revision", "1"), ("body", &theirs)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    assert_eq!(app.counts().await, before, "nothing written");
    assert!(r.html.contains("id=\"pm-conflict\""));
    // The current text is shown, Bob's typed text is still in the box
    // (escaped), and the form now saves from the current revision.
    assert!(
        r.html.contains("<p>Alice's line.</p>")
            || r.html.contains("<p>Alice&#39;s line.</p>")
            || r.html.contains("Alice’s line."),
        "{}",
        r.html
    );
    let textarea = &r.html[r.html.find("id=\"pm-text\"").unwrap()..];
    let textarea = &textarea[..textarea.find("</textarea>").unwrap()];
    assert!(
        textarea.contains("Bob&#39;s &#60;b&#62;line&#60;/b&#62;.") && !textarea.contains("<b>"),
        "{textarea}"
    );
    assert!(r.html.contains("name=\"base_revision\" value=\"2\""));
    // A clean merge says so.
    let other = body.replace(
        "## Lessons learned\n",
        "## Lessons learned\n\nBob's lesson.\n",
    );
    let r = b
        .post(
            "/postmortems/1",
            &[("base_revision", "1"), ("body", &other)],
        )
        .await;
    assert_eq!(r.location(), "/postmortems/1?notice=merged");
    let page = b.get(r.location()).await;
    assert!(page.html.contains("were merged"));
}

async fn viewers_read_postmortem_pages_only(app: TestApp) {
    app.declare(json!({ "title": "Read only" })).await;
    let responder = signed_in(&app, "responder").await;
    responder.post("/incidents/INC-1/postmortem", &[]).await;
    let viewer = signed_in(&app, "viewer").await;
    let page = viewer.get("/postmortems/1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains("id=\"pm-edit\"") && !page.html.contains("id=\"ai-new\""));
    let room = viewer.get("/incidents/INC-1").await;
    assert!(!room.html.contains("id=\"create-postmortem\""));
    let before = app.counts().await;
    for (path, form) in [
        (
            "/postmortems/1",
            vec![("base_revision", "1"), ("body", "x")],
        ),
        ("/postmortems/1/review", vec![("status", "in_review")]),
        ("/postmortems/1/action-items", vec![("title", "x")]),
    ] {
        let r = viewer.post(path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.counts().await, before);
}

async fn the_dashboard_lists_overdue_action_items(app: TestApp) {
    app.declare(json!({ "title": "Backups failed" })).await;
    let web = signed_in(&app, "responder").await;
    web.post("/incidents/INC-1/postmortem", &[]).await;
    let owner = web.user_id.to_string();
    let r = web
        .post(
            "/postmortems/1/action-items",
            &[
                ("title", "Test restores <weekly>"),
                ("owner_id", &owner),
                ("due_date", "2026-01-05"),
                ("priority", "high"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let r = web
        .post(
            "/postmortems/1/action-items",
            &[("title", "x"), ("due_date", "05/01/2026")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.html.contains("due_date:"), "{}", r.html);
    assert!(!web.get("/").await.html.contains("id=\"overdue-items\""));
    app.clock.set(crate::support::t("2026-01-06T09:00:00Z"));
    // Five days on, the first session has expired: a new one.
    let web = signed_in(&app, "responder").await;
    let home = web.get("/").await;
    assert!(home.html.contains("id=\"overdue-items\""), "{}", home.html);
    assert!(home.html.contains("Test restores &#60;weekly&#62;"));
    assert!(web
        .get("/postmortems")
        .await
        .html
        .contains("Test restores &#60;weekly&#62;"));
    let r = web
        .post("/postmortems/1/action-items/1", &[("status", "done")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!web.get("/").await.html.contains("id=\"overdue-items\""));
}

/// Opens the postmortem page, edits and saves in Chromium; the screenshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postmortem_in_a_browser() {
    if !available() {
        eprintln!("skipped: no Chromium/ChromeDriver");
        return;
    }
    let driver = Driver::start().await;
    let app = crate::support::spawn_app(Db::Sqlite)
        .await
        .expect("sqlite app");
    let number = incident_with_alert(&app).await;
    app.clock.advance(chrono::Duration::minutes(7));
    assert_eq!(app.move_to(1, "acknowledged").await.status, StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(20));
    assert_eq!(app.move_to(1, "resolved").await.status, StatusCode::OK);
    let (me, email) = web_user(&app, "responder").await;
    let b = driver.session().await;
    b.set_window_rect(1280, 900).await.unwrap();
    b.goto(&format!("{}/login", app.base)).await;
    b.type_into("#email", &email).await;
    b.type_into("#password", PASSWORD).await;
    b.click_on("main form button[type=submit]").await;
    b.wait_path("/").await;
    b.goto(&format!("{}/incidents/{number}", app.base)).await;
    b.click_on("#create-postmortem").await;
    b.wait_path("/postmortems/1").await;
    let body = b.wait_find("#pm-body").await;
    assert!(b
        .text(&body)
        .await
        .unwrap()
        .contains("Time to acknowledge: 7m 00s."));
    // Nothing from the alert text ran.
    let xss = b.execute("return window.__xss === undefined && document.querySelectorAll('#pm-body img').length === 0;", vec![]).await.unwrap();
    assert_eq!(xss, json!(true));
    // Edit and save.
    let text = b.wait_find("#pm-text").await;
    b.execute(
        "arguments[0].value = arguments[0].value.replace('## What went well\\n', '## What went well\\n\\nThe alert fired within a minute.\\n');",
        vec![json!({ ELEMENT: text })],
    )
    .await
    .unwrap();
    b.click_on("#pm-save").await;
    b.wait_text("#pm-notice", "says saved", |t| t == "Saved.")
        .await;
    let shown = b.text_of("#pm-body").await.unwrap();
    assert!(
        shown.contains("The alert fired within a minute."),
        "{shown}"
    );
    let revs = app.get("/api/v1/postmortems/1/revisions").await.body;
    assert_eq!(revs[0]["revision"], 2);
    assert_eq!(revs[0]["author_id"], me);
    // An action item for the screenshot.
    app.post(
        "/api/v1/postmortems/1/action-items",
        json!({ "title": "Page on 5xx ratio, not count", "owner_id": me, "due_date": "2026-01-20", "priority": "high" }),
    )
    .await;
    for (size, width, height) in [("desktop", 1280, 900), ("phone", 375, 812)] {
        b.set_window_rect(width, height).await.unwrap();
        b.goto(&format!("{}/postmortems/1", app.base)).await;
        b.wait_find("#pm-body").await;
        let dims = b
            .execute(
                "return [window.outerHeight - window.innerHeight,
                   Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)];",
                vec![],
            )
            .await
            .unwrap();
        let full = dims[0].as_i64().unwrap() + dims[1].as_i64().unwrap().max(height);
        b.set_window_rect(width, full).await.unwrap();
        let png = b.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(screenshot_dir().join(format!("postmortem-{size}.png")), png).unwrap();
    }
}
