//! Publishing through the pages, as the API then shows it: a new incident
//! (prefilled from a template without script), its updates and corrections,
//! and a maintenance typed in a page's own time zone across a change of
//! clocks.

use reqwest::StatusCode;
use serde_json::json;

use super::{api, api_component, api_page, id, ok};
use crate::both_backends;
use crate::support::TestApp;
use crate::web_room::{form_of, set};
use crate::web_support::{signed_in, Web};

both_backends!(
    incidents_are_published_from_a_template_and_updated,
    maintenance_times_are_typed_in_the_pages_zone
);

async fn send(web: &Web, path: &str, form: &[(String, String)]) -> crate::web_support::Page {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    web.post_raw(path, &pairs).await
}

async fn incidents_are_published_from_a_template_and_updated(app: TestApp) {
    let page = api_page(&app, "acme", json!({})).await;
    let api_c = api_component(&app, page, json!({ "name": "API" })).await;
    let web_c = api_component(&app, page, json!({ "name": "Website" })).await;
    let t = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{page}/templates"),
            json!({ "name": "Slow", "title": "Slow responses", "body": "We are **looking** into it.",
                    "status": "identified" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let responder = signed_in(&app, "responder").await;
    let base = format!("/status-pages/{page}");

    // Without script: the picker is a GET form; the template fills the form.
    let blank = responder.get(&format!("{base}/incidents/new")).await.html;
    assert!(blank.contains("id=\"template-pick\""));
    assert!(blank.contains("<option value=\"investigating\" selected>"));
    let filled = responder
        .get(&format!("{base}/incidents/new?template={t}"))
        .await;
    assert_eq!(filled.status, StatusCode::OK);
    let mut form = form_of(&filled.html, "incident-form");
    let get = |form: &[(String, String)], k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get(&form, "name"), "Slow responses");
    assert_eq!(get(&form, "body"), "We are **looking** into it.");
    assert_eq!(get(&form, "status"), "identified");
    assert_eq!(get(&form, "impact"), "", "from the components");
    assert_eq!(
        get(&form, &format!("component.{api_c}")),
        "",
        "not affected"
    );
    assert_eq!(get(&form, "notify"), "1", "ticked");
    // Another page's template, or none such, is named.
    let r = responder
        .get(&format!("{base}/incidents/new?template=999999"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("template_id"));

    // Refused: a component status that is not one; the form comes back filled.
    let before = app.counts().await;
    let mut bad = form.clone();
    set(&mut bad, &format!("component.{api_c}"), "on_fire");
    let r = send(&responder, &format!("{base}/incidents"), &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(r.html.contains("components[0].status"), "{}", r.html);
    assert!(r.html.contains("value=\"Slow responses\""));
    let mut empty = form.clone();
    set(&mut empty, "body", "   ");
    let r = send(&responder, &format!("{base}/incidents"), &empty).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.html.contains("body: must not be empty"), "{}", r.html);
    assert_eq!(app.counts().await, before);

    set(&mut form, &format!("component.{api_c}"), "partial_outage");
    let r = send(&responder, &format!("{base}/incidents"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let posts = api(&app, &format!("/api/v1/status-pages/{page}/posts")).await;
    let post = posts[0].clone();
    let pid = id(&post);
    assert_eq!(r.location(), format!("/status-posts/{pid}"));
    assert_eq!(post["name"], "Slow responses");
    assert_eq!(post["status"], "identified");
    assert_eq!(post["impact"], "major", "from the partial outage");
    assert_eq!(post["component_ids"], json!([api_c]));
    assert!(post["incident_id"].is_null());
    assert_eq!(
        api(&app, &format!("/api/v1/status-components/{api_c}")).await["status"],
        "partial_outage"
    );
    assert_eq!(
        api(&app, &format!("/api/v1/status-components/{web_c}")).await["status"],
        "operational",
        "left alone"
    );

    // The post's page: its update rendered, an update form of its kind.
    let html = responder.get(&format!("/status-posts/{pid}")).await.html;
    assert!(html.contains("We are <strong>looking</strong> into it."));
    assert!(html.contains("<span class=\"cs cs-operational\">Operational</span> → <span class=\"cs cs-partial_outage\">Partial outage</span>"));
    let mut up = form_of(&html, "update-form");
    assert!(
        !html.contains("value=\"in_progress\""),
        "incident statuses only"
    );
    // A maintenance status on an incident is named.
    set(&mut up, "status", "completed");
    set(&mut up, "body", "Done");
    let r = send(&responder, &format!("/status-posts/{pid}/updates"), &up).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html
            .contains("status: `completed` is not a status of an incident"),
        "{}",
        r.html
    );
    set(&mut up, "status", "resolved");
    set(&mut up, "body", "Fixed: responses are fast again.");
    up.retain(|(k, _)| k != "notify");
    let r = send(&responder, &format!("/status-posts/{pid}/updates"), &up).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let post = api(&app, &format!("/api/v1/status-posts/{pid}")).await;
    assert_eq!(post["status"], "resolved");
    assert_eq!(
        post["updates"][0]["body"],
        "Fixed: responses are fast again."
    );
    assert_eq!(post["updates"][0]["notify"], false, "unticked");
    assert_eq!(
        api(&app, &format!("/api/v1/status-components/{api_c}")).await["status"],
        "operational",
        "resolving sets it back"
    );

    // Correcting an update's words: only that.
    let first = post["updates"][1]["id"].as_i64().unwrap();
    let html = responder.get(&format!("/status-posts/{pid}")).await.html;
    let mut fix = form_of(&html, &format!("u{first}-body"));
    set(&mut fix, "body", "We are looking into slow responses.");
    let r = send(
        &responder,
        &format!("/status-posts/{pid}/updates/{first}"),
        &fix,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let post = api(&app, &format!("/api/v1/status-posts/{pid}")).await;
    assert_eq!(
        post["updates"][1]["body"],
        "We are looking into slow responses."
    );
    assert_eq!(
        post["updates"][0]["body"],
        "Fixed: responses are fast again."
    );

    // Correcting the post: a stale form keeps another person's change.
    let stale = form_of(
        &responder.get(&format!("/status-posts/{pid}")).await.html,
        "edit-form",
    );
    ok(
        app.patch(
            &format!("/api/v1/status-posts/{pid}"),
            json!({ "impact": "critical" }),
        )
        .await,
        StatusCode::OK,
    );
    let mut edit = stale.clone();
    set(&mut edit, "name", "Slow API responses");
    let r = send(&responder, &format!("/status-posts/{pid}"), &edit).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let post = api(&app, &format!("/api/v1/status-posts/{pid}")).await;
    assert_eq!(post["name"], "Slow API responses");
    assert_eq!(post["impact"], "critical", "the other change stays");
    // Linking the internal incident by its number.
    let inc = app
        .declare(json!({ "title": "Internal", "severity": "SEV2" }))
        .await;
    let mut edit = form_of(
        &responder.get(&format!("/status-posts/{pid}")).await.html,
        "edit-form",
    );
    set(&mut edit, "incident", inc["number"].as_str().unwrap());
    assert_eq!(
        send(&responder, &format!("/status-posts/{pid}"), &edit)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        api(&app, &format!("/api/v1/status-posts/{pid}")).await["incident_id"],
        inc["id"]
    );
    set(&mut edit, "incident", "INC-999999");
    let r = send(&responder, &format!("/status-posts/{pid}"), &edit).await;
    assert!(r.status.is_client_error(), "{}", r.html);
    assert!(r.html.contains("incident"), "{}", r.html);

    // Listed as recently resolved; deleted by an admin.
    let list = responder.get(&format!("{base}/posts")).await.html;
    let recent = list.find("id=\"recent\"").unwrap();
    assert!(list[recent..].contains(&format!(
        "href=\"/status-posts/{pid}\">Slow API responses</a>"
    )));
    let admin = signed_in(&app, "admin").await;
    let r = admin
        .post(&format!("/status-posts/{pid}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("{base}/posts"));
    assert_eq!(
        app.get(&format!("/api/v1/status-posts/{pid}")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn maintenance_times_are_typed_in_the_pages_zone(app: TestApp) {
    // The fake clock stands at 2026-01-01T00:00Z; Berlin's clocks go from
    // 02:00 CET (UTC+1) to 03:00 CEST (UTC+2) on 29 March 2026.
    let page = api_page(&app, "acme", json!({ "time_zone": "Europe/Berlin" })).await;
    let c = api_component(&app, page, json!({ "name": "Database" })).await;
    let t = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{page}/templates"),
            json!({ "kind": "maintenance", "name": "Upgrade", "title": "Database upgrade",
                    "body": "Brief interruptions." }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let responder = signed_in(&app, "responder").await;
    let base = format!("/status-pages/{page}");
    let html = responder
        .get(&format!("{base}/maintenances/new?template={t}"))
        .await
        .html;
    assert!(html.contains("When, in Europe/Berlin (the page's time zone)"));
    let mut form = form_of(&html, "maintenance-form");
    // A time the clock skips is refused by name; nothing is written.
    let before = app.counts().await;
    set(&mut form, "scheduled_for", "2026-03-29T02:30");
    set(&mut form, "scheduled_until", "2026-03-29T04:00");
    let r = send(&responder, &format!("{base}/maintenances"), &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html
            .contains("scheduled_for: `2026-03-29T02:30` does not exist in Europe/Berlin"),
        "{}",
        r.html
    );
    assert!(
        r.html.contains("value=\"Database upgrade\""),
        "typed values come back"
    );
    assert_eq!(app.counts().await, before);

    set(&mut form, "scheduled_for", "2026-03-29T01:30");
    set(&mut form, "scheduled_until", "2026-03-29T03:30");
    set(&mut form, "remind_minutes", "");
    form.push(("component_ids".into(), c.to_string()));
    form.retain(|(k, _)| k != "auto_complete");
    let r = send(&responder, &format!("{base}/maintenances"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let posts = api(
        &app,
        &format!("/api/v1/status-pages/{page}/posts?kind=maintenance"),
    )
    .await;
    let m = posts[0].clone();
    let mid = id(&m);
    assert_eq!(m["name"], "Database upgrade");
    assert_eq!(m["scheduled_for"], "2026-03-29T00:30:00Z", "01:30 CET");
    assert_eq!(m["scheduled_until"], "2026-03-29T01:30:00Z", "03:30 CEST");
    assert_eq!(m["status"], "scheduled");
    assert_eq!(m["auto_start"], true);
    assert_eq!(m["auto_complete"], false);
    assert!(m["remind_minutes"].is_null(), "blank: no reminder");
    assert_eq!(m["component_ids"], json!([c]));

    // The correction form shows the page's clock; untouched, it saves nothing.
    let html = responder.get(&format!("/status-posts/{mid}")).await.html;
    let edit = form_of(&html, "edit-form");
    assert!(edit.contains(&("scheduled_for".into(), "2026-03-29T01:30".into())));
    assert!(edit.contains(&("scheduled_until".into(), "2026-03-29T03:30".into())));
    let before = app.counts().await;
    let r = send(&responder, &format!("/status-posts/{mid}"), &edit).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(app.counts().await, before, "no change, no event");
    // Moving its end to 04:15 CEST and asking for a reminder.
    let mut edit = edit;
    set(&mut edit, "scheduled_until", "2026-03-29T04:15");
    set(&mut edit, "remind_minutes", "30");
    let r = send(&responder, &format!("/status-posts/{mid}"), &edit).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let m = api(&app, &format!("/api/v1/status-posts/{mid}")).await;
    assert_eq!(m["scheduled_for"], "2026-03-29T00:30:00Z", "unchanged");
    assert_eq!(m["scheduled_until"], "2026-03-29T02:15:00Z");
    assert_eq!(m["remind_minutes"], 30);
    // A start in the past is the API's refusal, named on the form.
    set(&mut edit, "scheduled_for", "2025-12-01T10:00");
    let r = send(&responder, &format!("/status-posts/{mid}"), &edit).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html.contains("scheduled_for: is in the past"),
        "{}",
        r.html
    );
}
