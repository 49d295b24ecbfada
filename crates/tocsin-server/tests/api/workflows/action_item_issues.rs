//! Postmortem action items created in Jira and GitHub, against local servers
//! that check requests as the real APIs do: the issue carries the item's text
//! as written (never read as a template) and links back to the postmortem
//! and incident; when the run ends the issue becomes the item's link; a 5xx
//! is retried into one issue; a refusal is kept on the item and a second
//! click tries again; the API refuses by name (tracker, link, a run in
//! progress, roles); the postmortem page offers the button and shows the key.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::engine;
use super::fakes::ZOOM_SECRET;
use super::integrations::{store_secrets, Apis};
use crate::support::{user, Resp, TestApp};
use crate::web_support::signed_in;

crate::workflow_tests!(
    an_action_item_becomes_a_jira_issue_linked_back,
    a_github_issue_and_the_refusals_by_name,
    a_5xx_is_retried_and_a_refusal_kept_until_tried_again,
    the_postmortem_page_offers_the_trackers,
);

/// INC-n with a postmortem and one item owned by Alice; (incident, postmortem, item).
async fn item(app: &TestApp, title: &str) -> (i64, i64, i64) {
    let alice = match app
        .get("/api/v1/users")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Alice")
    {
        Some(u) => u["id"].as_i64().unwrap(),
        None => user(app, "Alice").await,
    };
    let inc = app
        .declare(json!({ "title": "Checkout down", "severity": "SEV1" }))
        .await["id"]
        .as_i64()
        .unwrap();
    let pm = app
        .post(&format!("/api/v1/incidents/{inc}/postmortem"), json!({}))
        .await;
    assert_eq!(pm.status, StatusCode::CREATED, "{}", pm.body);
    let pm = pm.body["id"].as_i64().unwrap();
    let it = app
        .post(
            &format!("/api/v1/postmortems/{pm}/action-items"),
            json!({ "title": title, "owner_id": alice, "due_date": "2027-01-15", "priority": "high" }),
        )
        .await;
    assert_eq!(it.status, StatusCode::CREATED, "{}", it.body);
    (inc, pm, it.body["id"].as_i64().unwrap())
}

async fn create_issue(app: &TestApp, pm: i64, id: i64, body: Option<Value>) -> Resp {
    app.call(
        Method::POST,
        &format!("/api/v1/postmortems/{pm}/action-items/{id}/issue"),
        Some(&app.admin_token),
        body,
    )
    .await
}

async fn get_item(app: &TestApp, pm: i64, id: i64) -> Value {
    let r = app
        .get(&format!("/api/v1/postmortems/{pm}/action-items"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap()
        .clone()
}

fn refused(r: &Resp, status: StatusCode, code: &str, field: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
    assert_eq!(r.body["error"]["field"], field, "{}", r.body);
}

async fn an_action_item_becomes_a_jira_issue_linked_back(app: TestApp) {
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, ZOOM_SECRET).await;
    // Template syntax and markup in a title are text.
    let title = "Alert on {{ 7 * 7 }} queue depth <b>before</b> it fills";
    let (inc, pm, id) = item(&app, title).await;

    let r = create_issue(&app, pm, id, Some(json!({ "tracker": "jira" }))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let run_id = r.body["run_id"].as_i64().unwrap();
    let it = &r.body["action_item"];
    assert_eq!(
        (&it["tracker"], &it["tracker_status"], &it["tracker_run_id"]),
        (&json!("jira"), &json!("running"), &json!(run_id)),
        "{it}"
    );
    assert!(it["external_url"].is_null(), "{it}");
    // A second click while it runs creates nothing more.
    refused(
        &create_issue(&app, pm, id, Some(json!({ "tracker": "jira" }))).await,
        StatusCode::CONFLICT,
        "run_in_progress",
        "tracker",
    );

    engine.tick().await.unwrap();
    apis.assert_no_problems();
    let calls = apis.jira.to("/rest/api/2/issue");
    assert_eq!(calls.len(), 1);
    let fields = &calls[0].json()["fields"];
    assert_eq!(fields["project"], json!({ "key": "OPS" }));
    assert_eq!(fields["issuetype"], json!({ "name": "Task" }));
    assert_eq!(fields["summary"], title);
    let description = fields["description"].as_str().unwrap();
    for want in [
        &format!(
            "Action item from the postmortem \"Postmortem: INC-{inc} Checkout down\": {}/postmortems/{pm}\n",
            app.base
        ),
        &format!("Incident: INC-{inc} {}/incidents/{inc}\n\n", app.base),
        "Owner: Alice\nDue: 2027-01-15\nPriority: high",
    ] {
        assert!(description.contains(want), "{want:?} in {description}");
    }

    let it = get_item(&app, pm, id).await;
    assert_eq!(it["tracker_status"], "succeeded", "{it}");
    assert_eq!(it["tracker_key"], "OPS-12", "{it}");
    assert_eq!(
        it["external_url"],
        format!("{}/browse/OPS-12", apis.jira.base)
    );
    assert!(it["tracker_error"].is_null(), "{it}");
    let run = super::run(&app, run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["incident_id"], inc, "{run}");
    // The incident's timeline says so too.
    assert!(
        app.timeline(inc)
            .await
            .iter()
            .any(|e| e["kind"] == "incident.note_added"
                && e["data"]["body"]
                    .as_str()
                    .is_some_and(|b| b.contains("Jira issue OPS-12 created"))),
        "no note on INC-{inc}"
    );
    // Linked now: another click is refused, nothing sent.
    refused(
        &create_issue(&app, pm, id, Some(json!({ "tracker": "jira" }))).await,
        StatusCode::CONFLICT,
        "already_linked",
        "external_url",
    );
    engine.tick().await.unwrap();
    assert_eq!(apis.jira.to("/rest/api/2/issue").len(), 1);
    // The hidden workflow is in no list.
    let list = app.get("/api/v1/workflows").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        !list.body.to_string().contains("Action item issues"),
        "{}",
        list.body
    );
}

async fn a_github_issue_and_the_refusals_by_name(app: TestApp) {
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, ZOOM_SECRET).await;
    let (_, pm, id) = item(&app, "Add a runbook for the payments queue").await;

    // Both trackers are configured: which one must be said.
    let r = create_issue(&app, pm, id, None).await;
    refused(&r, StatusCode::BAD_REQUEST, "invalid_field", "tracker");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("jira or github"),
        "{}",
        r.body
    );
    let empty = app
        .raw(
            Method::POST,
            &format!("/api/v1/postmortems/{pm}/action-items/{id}/issue"),
            Some(&app.admin_token),
            "application/json",
            Vec::new(),
        )
        .await;
    refused(&empty, StatusCode::BAD_REQUEST, "invalid_field", "tracker");
    let r = create_issue(&app, pm, id, Some(json!({ "tracker": "trello" }))).await;
    refused(&r, StatusCode::BAD_REQUEST, "invalid_field", "tracker");
    let r = create_issue(&app, pm, id, Some(json!({ "trackr": "jira" }))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "trackr", "{}", r.body);
    let r = create_issue(&app, pm, 999_999, Some(json!({ "tracker": "github" }))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = create_issue(&app, pm + 1, id, Some(json!({ "tracker": "github" }))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // Viewers may not.
    let (_, viewer) = app.user_with_role("viewer").await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/postmortems/{pm}/action-items/{id}/issue"),
            Some(&viewer),
            Some(json!({ "tracker": "github" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    engine.tick().await.unwrap();
    assert!(apis.github.calls().is_empty() && apis.jira.calls().is_empty());

    let r = create_issue(&app, pm, id, Some(json!({ "tracker": "github" }))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    engine.tick().await.unwrap();
    apis.assert_no_problems();
    let calls = apis.github.to("/repos/acme/api/issues");
    assert_eq!(calls.len(), 1);
    let b = calls[0].json();
    assert_eq!(b["title"], "Add a runbook for the payments queue");
    assert!(
        b["body"]
            .as_str()
            .unwrap()
            .contains(&format!("/postmortems/{pm}")),
        "{b}"
    );
    let it = get_item(&app, pm, id).await;
    assert_eq!(
        (&it["tracker"], &it["tracker_status"], &it["tracker_key"]),
        (
            &json!("github"),
            &json!("succeeded"),
            &json!("acme/api#1347")
        ),
        "{it}"
    );
    assert_eq!(
        it["external_url"],
        "https://github.com/acme/api/issues/1347"
    );

    // An item linked by hand is refused; clearing the link allows it again.
    let (_, pm2, id2) = item(&app, "Second item").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/postmortems/{pm2}/action-items/{id2}"),
            Some(&app.admin_token),
            Some(json!({ "external_url": "https://jira.example/browse/X-1" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = create_issue(&app, pm2, id2, Some(json!({ "tracker": "jira" }))).await;
    refused(&r, StatusCode::CONFLICT, "already_linked", "external_url");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https://jira.example/browse/X-1"),
        "{}",
        r.body
    );
    let item2 = format!("/api/v1/postmortems/{pm2}/action-items/{id2}");
    let patch = |link: Value| {
        app.call(
            Method::PATCH,
            &item2,
            Some(&app.admin_token),
            Some(json!({ "external_url": link })),
        )
    };
    assert_eq!(patch(Value::Null).await.status, StatusCode::OK);
    let r = create_issue(&app, pm2, id2, Some(json!({ "tracker": "jira" }))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    // A link set by hand while the run goes stays, not labelled with the new key.
    let hand = json!("https://jira.example/browse/X-2");
    assert_eq!(patch(hand.clone()).await.status, StatusCode::OK);
    engine.tick().await.unwrap();
    let it = get_item(&app, pm2, id2).await;
    assert_eq!(it["external_url"], hand, "{it}");
    assert_eq!(it["tracker_status"], "succeeded", "{it}");
    assert!(it["tracker_key"].is_null(), "{it}");

    // Done items are not sent; a body that is not JSON is refused.
    let (_, pm3, id3) = item(&app, "Third item").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/postmortems/{pm3}/action-items/{id3}"),
            Some(&app.admin_token),
            Some(json!({ "status": "done" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = create_issue(&app, pm3, id3, Some(json!({ "tracker": "jira" }))).await;
    refused(&r, StatusCode::CONFLICT, "item_closed", "status");
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/postmortems/{pm}/action-items/{id}/issue"),
            Some(&app.admin_token),
            "text/plain",
            br#"{"tracker": "jira"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);
    engine.tick().await.unwrap();
    assert_eq!(apis.jira.to("/rest/api/2/issue").len(), 1);
}

async fn a_5xx_is_retried_and_a_refusal_kept_until_tried_again(app: TestApp) {
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, ZOOM_SECRET).await;
    let (_, pm, id) = item(&app, "Page on replica lag").await;

    // A 503, then the issue: one issue in the end.
    apis.jira.fail_with("/rest/api/2/issue", &[503]);
    let r = create_issue(&app, pm, id, Some(json!({ "tracker": "jira" }))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    engine.tick().await.unwrap();
    assert_eq!(get_item(&app, pm, id).await["tracker_status"], "running");
    app.clock.advance(Duration::minutes(5));
    engine.tick().await.unwrap();
    assert_eq!(apis.jira.to("/rest/api/2/issue").len(), 2);
    let it = get_item(&app, pm, id).await;
    assert_eq!(it["tracker_status"], "succeeded", "{it}");
    assert_eq!(it["tracker_key"], "OPS-12", "{it}");

    // A 400 is final: the item keeps the reason, unlinked; a click retries.
    let (_, pm2, id2) = item(&app, "Shed load earlier").await;
    apis.jira.fail_with("/rest/api/2/issue", &[400]);
    let r = create_issue(&app, pm2, id2, Some(json!({ "tracker": "jira" }))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    engine.tick().await.unwrap();
    let it = get_item(&app, pm2, id2).await;
    assert_eq!(it["tracker_status"], "failed", "{it}");
    assert!(it["external_url"].is_null(), "{it}");
    let error = it["tracker_error"].as_str().unwrap();
    assert!(error.contains("Jira answered HTTP 400"), "{error}");
    let r = create_issue(&app, pm2, id2, Some(json!({ "tracker": "jira" }))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert!(
        r.body["action_item"]["tracker_error"].is_null(),
        "{}",
        r.body
    );
    engine.tick().await.unwrap();
    let it = get_item(&app, pm2, id2).await;
    assert_eq!(it["tracker_status"], "succeeded", "{it}");
    assert_eq!(it["tracker_key"], "OPS-13", "{it}");
    assert_eq!(apis.jira.to("/rest/api/2/issue").len(), 4);

    // A run cancelled while it waits to retry: the item records it, and a
    // click tries again. A 300-character title is cut to Jira's 255.
    let long = format!("Raise the limit {}", "z".repeat(284));
    let (_, pm3, id3) = item(&app, &long).await;
    apis.jira.fail_with("/rest/api/2/issue", &[503]);
    let r = create_issue(&app, pm3, id3, Some(json!({ "tracker": "jira" }))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let run_id = r.body["run_id"].as_i64().unwrap();
    engine.tick().await.unwrap();
    let r = app
        .post(&format!("/api/v1/workflow-runs/{run_id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let it = get_item(&app, pm3, id3).await;
    assert_eq!(it["tracker_status"], "failed", "{it}");
    assert!(
        it["tracker_error"].as_str().unwrap().contains("cancelled"),
        "{it}"
    );
    let r = create_issue(&app, pm3, id3, Some(json!({ "tracker": "jira" }))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    engine.tick().await.unwrap();
    let it = get_item(&app, pm3, id3).await;
    assert_eq!(it["tracker_status"], "succeeded", "{it}");
    let calls = apis.jira.to("/rest/api/2/issue");
    let summary = calls.last().unwrap().json()["fields"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(summary.chars().count(), 255, "{summary}");
    assert!(summary.starts_with("Raise the limit zzz") && summary.ends_with("z…"));
}

async fn the_postmortem_page_offers_the_trackers(app: TestApp) {
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, ZOOM_SECRET).await;
    let (_, pm, id) = item(&app, "Tune the <script> alert").await;
    let web = signed_in(&app, "responder").await;
    let page = web.get(&format!("/postmortems/{pm}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let action = format!("action=\"/postmortems/{pm}/action-items/{id}/issue\"");
    assert_eq!(page.html.matches(&action).count(), 2, "{}", page.html);
    assert!(
        page.html
            .contains("Create “Tune the &#60;script&#62; alert” in Jira"),
        "{}",
        page.html
    );
    assert!(page.html.contains("in GitHub</button>"), "{}", page.html);

    let posted = web
        .post(
            &format!("/postmortems/{pm}/action-items/{id}/issue"),
            &[("tracker", "jira")],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.html);
    let posted = web.get(posted.location()).await;
    assert!(
        posted.html.contains("The issue is being created"),
        "{}",
        posted.html
    );
    assert!(
        posted.html.contains("creating the Jira issue"),
        "{}",
        posted.html
    );
    assert!(!posted.html.contains(&action), "{}", posted.html);
    engine.tick().await.unwrap();
    let page = web.get(&format!("/postmortems/{pm}")).await;
    assert!(
        page.html
            .contains(&format!("href=\"{}/browse/OPS-12\"", apis.jira.base)),
        "{}",
        page.html
    );
    assert!(page.html.contains(">OPS-12</a>"), "{}", page.html);
    // A second post (a stale page) is refused on the page, nothing sent.
    let again = web
        .post(
            &format!("/postmortems/{pm}/action-items/{id}/issue"),
            &[("tracker", "jira")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.html);
    assert!(again.html.contains("already links to"), "{}", again.html);
    engine.tick().await.unwrap();
    assert_eq!(apis.jira.to("/rest/api/2/issue").len(), 1);
    // Viewers see no button.
    let viewer = signed_in(&app, "viewer").await;
    let page = viewer.get(&format!("/postmortems/{pm}")).await;
    assert!(!page.html.contains(&action), "{}", page.html);
}
