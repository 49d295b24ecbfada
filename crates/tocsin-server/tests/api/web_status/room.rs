//! The incident room's status-page panel: the publish form starts from the
//! proposals (never from the incident's title), publishes a post linked to
//! the incident whose events join its timeline, and posts updates to it.

use reqwest::StatusCode;
use serde_json::json;

use super::{api, api_component, api_page, id, ok};
use crate::both_backends;
use crate::support::TestApp;
use crate::web_room::{form_of, set};
use crate::web_support::{signed_in, Web};

both_backends!(
    the_room_publishes_a_linked_post_onto_the_timeline,
    several_pages_are_chosen_one_at_a_time
);

async fn send(web: &Web, path: &str, form: &[(String, String)]) -> crate::web_support::Page {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    web.post_raw(path, &pairs).await
}

fn value(form: &[(String, String)], key: &str) -> String {
    form.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

async fn the_room_publishes_a_linked_post_onto_the_timeline(app: TestApp) {
    let svc = id(&ok(
        app.post("/api/v1/services", json!({ "name": "checkout" }))
            .await,
        StatusCode::CREATED,
    ));
    let page = api_page(&app, "acme", json!({})).await;
    let linked = api_component(
        &app,
        page,
        json!({ "name": "Checkout", "service_ids": [svc] }),
    )
    .await;
    let other = api_component(&app, page, json!({ "name": "Search" })).await;
    let inc = app
        .declare(
            json!({ "title": "db-7 primary OOM-killed, failover stuck", "severity": "SEV1",
                        "service_ids": [svc], "description": "internal: customer acme-corp" }),
        )
        .await;
    let number = inc["number"].as_str().unwrap().to_string();
    let room = format!("/incidents/{number}");

    // Viewers see the (empty) panel without its forms.
    let viewer = signed_in(&app, "viewer").await;
    let html = viewer.get(&room).await.html;
    assert!(html.contains("id=\"status-page\""));
    assert!(html.contains("Nothing published about this incident."));
    assert!(!html.contains("id=\"status-publish-form\""));

    let responder = signed_in(&app, "responder").await;
    let html = responder.get(&room).await.html;
    let form = form_of(&html, "status-publish-form");
    // Prefilled from the proposals: SEV1 (the most severe) proposes a major outage.
    let proposals = api(
        &app,
        &format!("/api/v1/incidents/{}/status-proposals", id(&inc)),
    )
    .await;
    assert_eq!(proposals[0]["proposed"], "major_outage");
    assert_eq!(value(&form, &format!("component.{linked}")), "major_outage");
    assert_eq!(
        value(&form, &format!("component.{other}")),
        "",
        "not linked: not affected"
    );
    assert_eq!(value(&form, "page_id"), page.to_string());
    // The incident's own words are never copied into what readers would see.
    assert_eq!(value(&form, "name"), "");
    assert_eq!(value(&form, "body"), "");
    let start = html.find("id=\"status-publish-form\"").unwrap();
    let end = start + html[start..].find("</form>").unwrap();
    assert!(
        !html[start..end].contains("OOM"),
        "no internal title in the form"
    );
    assert!(!html[start..end].contains("acme-corp"));

    // Refused: no title. The room comes back with the panel's form filled in.
    let before = app.counts().await;
    let mut f = form.clone();
    set(&mut f, "body", "Checkout is failing for some customers.");
    let r = send(&responder, &format!("{room}/status-posts"), &f).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(r.html.contains("name: must not be empty"), "{}", r.html);
    assert!(r
        .html
        .contains(">\nCheckout is failing for some customers.</textarea>"));
    assert_eq!(app.counts().await, before);

    set(&mut f, "name", "Checkout errors");
    set(&mut f, &format!("component.{linked}"), "partial_outage");
    let r = send(&responder, &format!("{room}/status-posts"), &f).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(
        r.location(),
        format!("{room}?notice=status_published#status-page")
    );
    let posts = api(
        &app,
        &format!("/api/v1/incidents/{}/status-posts", id(&inc)),
    )
    .await;
    assert_eq!(posts.as_array().unwrap().len(), 1);
    let post = posts[0].clone();
    let pid = id(&post);
    assert_eq!(post["incident_id"], inc["id"]);
    assert_eq!(post["name"], "Checkout errors");
    assert_eq!(post["page_id"], page);
    assert_eq!(
        post["component_ids"],
        json!([linked]),
        "only what was chosen"
    );
    assert_eq!(
        api(&app, &format!("/api/v1/status-components/{linked}")).await["status"],
        "partial_outage"
    );
    assert_eq!(
        api(&app, &format!("/api/v1/status-components/{other}")).await["status"],
        "operational"
    );
    // On the incident's timeline, and in the room's words.
    let kinds: Vec<String> = app
        .timeline(id(&inc))
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.contains(&"status_post.published".to_string()),
        "{kinds:?}"
    );
    let html = responder
        .get(&format!("{room}?notice=status_published"))
        .await
        .html;
    assert!(html.contains("Published on the status page."));
    assert!(
        html.contains("published on a status page (investigating):"),
        "{html}"
    );
    assert!(html.contains(&format!(
        "<a href=\"/status-posts/{pid}\">Checkout errors</a>"
    )));
    assert!(html.contains(&format!("id=\"status-post-{pid}\"")));
    assert!(html.contains("href=\"/status/acme\""), "the public page");

    // A quick update from the room.
    let html = responder.get(&room).await.html;
    let mut up = form_of(&html, &format!("sp{pid}-status"));
    set(&mut up, "status", "monitoring");
    set(&mut up, "body", "A fix is in; we are watching.");
    let r = send(
        &responder,
        &format!("{room}/status-posts/{pid}/updates"),
        &up,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let post = api(&app, &format!("/api/v1/status-posts/{pid}")).await;
    assert_eq!(post["status"], "monitoring");
    assert_eq!(post["updates"][0]["body"], "A fix is in; we are watching.");
    let html = responder.get(&room).await.html;
    assert!(
        html.contains("posted a status-page update (investigating → monitoring):"),
        "{html}"
    );
    // Refused: a maintenance status, named; nothing written.
    let before = app.counts().await;
    set(&mut up, "status", "in_progress");
    let r = send(
        &responder,
        &format!("{room}/status-posts/{pid}/updates"),
        &up,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(r
        .html
        .contains("status: `in_progress` is not a status of an incident"));
    assert_eq!(app.counts().await, before);
    // A post about another incident is not this room's to update.
    let inc2 = app
        .declare(json!({ "title": "Other", "severity": "SEV3" }))
        .await;
    let before = app.counts().await;
    let r = responder
        .post(
            &format!(
                "/incidents/{}/status-posts/{pid}/updates",
                inc2["number"].as_str().unwrap()
            ),
            &[("status", "resolved"), ("body", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.counts().await, before);
}

async fn several_pages_are_chosen_one_at_a_time(app: TestApp) {
    let svc = id(&ok(
        app.post("/api/v1/services", json!({ "name": "api" })).await,
        StatusCode::CREATED,
    ));
    let public = api_page(&app, "public", json!({ "name": "Public" })).await;
    let internal = api_page(
        &app,
        "internal",
        json!({ "name": "Internal", "visibility": "internal" }),
    )
    .await;
    let pub_c = api_component(&app, public, json!({ "name": "API", "service_ids": [svc] })).await;
    let int_c = api_component(&app, internal, json!({ "name": "API (staff)" })).await;
    let t = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{internal}/templates"),
            json!({ "name": "Heads-up", "title": "Heads-up for staff", "body": "We are on it.",
                    "status": "identified" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let inc = app
        .declare(json!({ "title": "API 500s", "severity": "SEV3", "service_ids": [svc] }))
        .await;
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let responder = signed_in(&app, "responder").await;

    // By default the page with proposals, SEV3 proposing degraded performance.
    let html = responder.get(&room).await.html;
    assert!(html.contains("id=\"status-pick\""), "a page chooser");
    let form = form_of(&html, "status-publish-form");
    assert_eq!(value(&form, "page_id"), public.to_string());
    assert_eq!(
        value(&form, &format!("component.{pub_c}")),
        "degraded_performance"
    );
    assert!(
        !form.iter().any(|(k, _)| k == &format!("component.{int_c}")),
        "one page's components"
    );

    // The chooser (a GET form) draws the other page, with its template.
    let html = responder
        .get(&format!(
            "{room}?status_page={internal}&status_template={t}"
        ))
        .await
        .html;
    let mut form = form_of(&html, "status-publish-form");
    assert_eq!(value(&form, "page_id"), internal.to_string());
    assert_eq!(value(&form, "name"), "Heads-up for staff");
    assert_eq!(value(&form, "status"), "identified");
    assert_eq!(value(&form, &format!("component.{int_c}")), "");
    assert!(!form.iter().any(|(k, _)| k == &format!("component.{pub_c}")));
    // A chooser value that is no page falls back to the default.
    let html = responder.get(&format!("{room}?status_page=nonsense")).await;
    assert_eq!(html.status, StatusCode::OK);

    set(
        &mut form,
        &format!("component.{int_c}"),
        "degraded_performance",
    );
    let r = send(&responder, &format!("{room}/status-posts"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let posts = api(
        &app,
        &format!("/api/v1/incidents/{}/status-posts", id(&inc)),
    )
    .await;
    assert_eq!(posts[0]["page_id"], internal);
    assert_eq!(posts[0]["name"], "Heads-up for staff");
    assert_eq!(posts[0]["status"], "identified");
    assert_eq!(
        api(&app, &format!("/api/v1/status-components/{pub_c}")).await["status"],
        "operational",
        "the other page's proposal was not sent"
    );
    // A component of another page, added by hand, is refused by name.
    let before = app.counts().await;
    let mut bad = form.clone();
    bad.push((format!("component.{pub_c}"), "major_outage".into()));
    let r = send(&responder, &format!("{room}/status-posts"), &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(r.html.contains("components[1].component_id"), "{}", r.html);
    assert_eq!(app.counts().await, before);
}
