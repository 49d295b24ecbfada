//! Bad input to the status-page API: 400 `invalid_field` naming the exact
//! field (409 `conflict` for a taken name), and nothing written.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{component, id, now, ok, page, service};
use crate::both_backends;
use crate::support::TestApp;

both_backends!(bad_input_names_the_field_and_writes_nothing);

async fn bad_input_names_the_field_and_writes_nothing(app: TestApp) {
    let p = page(&app, "input").await;
    let q = page(&app, "elsewhere").await;
    ok(
        app.patch(
            &format!("/api/v1/status-pages/{q}"),
            json!({ "domain": "status.taken.example" }),
        )
        .await,
        StatusCode::OK,
    );
    let svc = service(&app, "svc").await;
    let c = component(&app, p, "API", &[]).await;
    let foreign = component(&app, q, "Theirs", &[]).await;
    let g = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/component-groups"),
            json!({ "name": "G" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let foreign_group = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{q}/component-groups"),
            json!({ "name": "G" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let incident = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/incidents"),
            json!({ "name": "Down", "body": "Looking." }),
        )
        .await,
        StatusCode::CREATED,
    );
    let (ip, u) = (id(&incident), id(&incident["updates"][0]));
    let t0 = now(&app);
    let (from, until) = (t0 + Duration::hours(1), t0 + Duration::hours(2));
    let mp = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/maintenances"),
            json!({ "name": "M", "body": "b", "scheduled_for": from, "scheduled_until": until }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let mt = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/templates"),
            json!({ "kind": "maintenance", "name": "mt", "title": "MT" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/subscribers"),
            json!({ "kind": "email", "address": "taken@example.com" }),
        )
        .await,
        StatusCode::CREATED,
    );

    let long = |n: usize| "x".repeat(n);
    let future = t0 + Duration::minutes(1);
    let pages = "/api/v1/status-pages".to_string();
    let page_ = format!("/api/v1/status-pages/{p}");
    let groups = format!("/api/v1/status-pages/{p}/component-groups");
    let group = format!("/api/v1/status-component-groups/{g}");
    let components = format!("/api/v1/status-pages/{p}/components");
    let comp = format!("/api/v1/status-components/{c}");
    let incidents = format!("/api/v1/status-pages/{p}/incidents");
    let maints = format!("/api/v1/status-pages/{p}/maintenances");
    let post = format!("/api/v1/status-posts/{ip}");
    let mpost = format!("/api/v1/status-posts/{mp}");
    let updates = format!("/api/v1/status-posts/{ip}/updates");
    let mupdates = format!("/api/v1/status-posts/{mp}/updates");
    let update = format!("/api/v1/status-updates/{u}");
    let templates = format!("/api/v1/status-pages/{p}/templates");
    let template = format!("/api/v1/status-templates/{mt}");
    let subscribers = format!("/api/v1/status-pages/{p}/subscribers");
    let m = |extra: Value| {
        let mut b =
            json!({ "name": "M", "body": "b", "scheduled_for": from, "scheduled_until": until });
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let inc = |extra: Value| {
        let mut b = json!({ "name": "N", "body": "b" });
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let conflict = StatusCode::CONFLICT;
    let bad = StatusCode::BAD_REQUEST;
    #[rustfmt::skip]
    let cases: Vec<(Method, &String, Value, StatusCode, &str)> = vec![
        // Pages.
        (Method::POST, &pages, json!({}), bad, "slug"),
        (Method::POST, &pages, json!({ "slug": "Has Spaces", "name": "x" }), bad, "slug"),
        (Method::POST, &pages, json!({ "slug": "assets", "name": "x" }), bad, "slug"),
        (Method::POST, &pages, json!({ "slug": "input", "name": "x" }), conflict, "slug"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "  " }), bad, "name"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": long(201) }), bad, "name"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "description": long(2001) }), bad, "description"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "visibility": "secret" }), bad, "visibility"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "domain": "https://status.example.com/" }), bad, "domain"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "domain": "localhost" }), bad, "domain"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "domain": "status.taken.example" }), conflict, "domain"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "time_zone": "Mars/Olympus_Mons" }), bad, "time_zone"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "brand_color": "blue" }), bad, "brand_color"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "support_url": "javascript:alert(1)" }), bad, "support_url"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "support_url": "ftp://files.example.com" }), bad, "support_url"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "allow_subscribers": "yes" }), bad, "allow_subscribers"),
        (Method::POST, &pages, json!({ "slug": "ok", "name": "x", "theme": "dark" }), bad, "theme"),
        (Method::PATCH, &page_, json!({ "name": null }), bad, "name"),
        (Method::PATCH, &page_, json!({ "slug": "elsewhere" }), conflict, "slug"),
        (Method::PATCH, &page_, json!({ "domain": "status.taken.example" }), conflict, "domain"),
        (Method::PATCH, &page_, json!({ "domain": "not a host" }), bad, "domain"),
        (Method::PATCH, &page_, json!({ "time_zone": "Nowhere" }), bad, "time_zone"),
        (Method::PATCH, &page_, json!({ "support_url": "http://" }), bad, "support_url"),
        (Method::PATCH, &page_, json!({ "visibility": null }), bad, "visibility"),
        // Groups.
        (Method::POST, &groups, json!({ "name": "" }), bad, "name"),
        (Method::POST, &groups, json!({ "name": "x", "position": -1 }), bad, "position"),
        (Method::PATCH, &group, json!({ "name": null }), bad, "name"),
        (Method::PATCH, &group, json!({ "description": long(2001) }), bad, "description"),
        // Components.
        (Method::POST, &components, json!({}), bad, "name"),
        (Method::POST, &components, json!({ "name": "x", "status": "broken" }), bad, "status"),
        (Method::POST, &components, json!({ "name": "x", "group_id": foreign_group }), bad, "group_id"),
        (Method::POST, &components, json!({ "name": "x", "service_ids": [svc, svc] }), bad, "service_ids[1]"),
        (Method::POST, &components, json!({ "name": "x", "service_ids": [424242] }), bad, "service_ids[0]"),
        (Method::POST, &components, json!({ "name": "x", "position": 100001 }), bad, "position"),
        (Method::POST, &components, json!({ "name": "x", "show_uptime": 1 }), bad, "show_uptime"),
        (Method::PATCH, &comp, json!({ "status": "fine" }), bad, "status"),
        (Method::PATCH, &comp, json!({ "status": null }), bad, "status"),
        (Method::PATCH, &comp, json!({ "group_id": foreign_group }), bad, "group_id"),
        (Method::PATCH, &comp, json!({ "service_ids": [424242] }), bad, "service_ids[0]"),
        (Method::PATCH, &comp, json!({ "name": long(201) }), bad, "name"),
        // Incidents.
        (Method::POST, &incidents, json!({}), bad, "name"),
        (Method::POST, &incidents, json!({ "name": "N" }), bad, "body"),
        (Method::POST, &incidents, inc(json!({ "body": " \n " })), bad, "body"),
        (Method::POST, &incidents, inc(json!({ "body": long(20_001) })), bad, "body"),
        (Method::POST, &incidents, inc(json!({ "name": long(201) })), bad, "name"),
        (Method::POST, &incidents, inc(json!({ "status": "in_progress" })), bad, "status"),
        (Method::POST, &incidents, inc(json!({ "status": "bogus" })), bad, "status"),
        (Method::POST, &incidents, inc(json!({ "impact": "maintenance" })), bad, "impact"),
        (Method::POST, &incidents, inc(json!({ "impact": "huge" })), bad, "impact"),
        (Method::POST, &incidents, inc(json!({ "components": [{ "component_id": c, "status": "broken" }] })), bad, "components[0].status"),
        (Method::POST, &incidents, inc(json!({ "components": [{ "component_id": c }, { "component_id": c }] })), bad, "components[1].component_id"),
        (Method::POST, &incidents, inc(json!({ "components": [{ "component_id": c }, { "component_id": foreign }] })), bad, "components[1].component_id"),
        (Method::POST, &incidents, inc(json!({ "components": [{ "component_id": c, "state": "x" }] })), bad, "components[0].state"),
        (Method::POST, &incidents, inc(json!({ "components": [{ "status": "major_outage" }] })), bad, "components[0].component_id"),
        (Method::POST, &incidents, inc(json!({ "incident_id": 424242 })), bad, "incident_id"),
        (Method::POST, &incidents, inc(json!({ "template_id": 424242 })), bad, "template_id"),
        (Method::POST, &incidents, inc(json!({ "template_id": mt })), bad, "template_id"),
        (Method::POST, &incidents, inc(json!({ "display_at": "yesterday" })), bad, "display_at"),
        (Method::POST, &incidents, inc(json!({ "display_at": future })), bad, "display_at"),
        (Method::POST, &incidents, inc(json!({ "notify": "yes" })), bad, "notify"),
        // Maintenances.
        (Method::POST, &maints, json!({ "name": "M", "body": "b", "scheduled_until": until }), bad, "scheduled_for"),
        (Method::POST, &maints, m(json!({ "scheduled_until": from })), bad, "scheduled_until"),
        (Method::POST, &maints, m(json!({ "scheduled_until": from + Duration::days(32) })), bad, "scheduled_until"),
        (Method::POST, &maints, m(json!({ "scheduled_for": t0 - Duration::minutes(1) })), bad, "scheduled_for"),
        (Method::POST, &maints, m(json!({ "status": "in_progress", "scheduled_for": t0 - Duration::hours(2), "scheduled_until": t0 - Duration::hours(1) })), bad, "scheduled_until"),
        (Method::POST, &maints, m(json!({ "status": "completed" })), bad, "status"),
        (Method::POST, &maints, m(json!({ "status": "investigating" })), bad, "status"),
        (Method::POST, &maints, m(json!({ "remind_minutes": 10081 })), bad, "remind_minutes"),
        (Method::POST, &maints, m(json!({ "remind_minutes": -1 })), bad, "remind_minutes"),
        (Method::POST, &maints, m(json!({ "components": [c, c] })), bad, "components[1]"),
        (Method::POST, &maints, m(json!({ "components": [foreign] })), bad, "components[0]"),
        (Method::POST, &maints, m(json!({ "auto_start": "no" })), bad, "auto_start"),
        (Method::POST, &maints, m(json!({ "impact": "minor" })), bad, "impact"),
        (Method::POST, &maints, m(json!({ "name": "" })), bad, "name"),
        // Posts and updates.
        (Method::PATCH, &post, json!({ "name": "" }), bad, "name"),
        (Method::PATCH, &post, json!({ "impact": "maintenance" }), bad, "impact"),
        (Method::PATCH, &post, json!({ "incident_id": 424242 }), bad, "incident_id"),
        (Method::PATCH, &post, json!({ "scheduled_for": from }), bad, "scheduled_for"),
        (Method::PATCH, &post, json!({ "remind_minutes": 5 }), bad, "remind_minutes"),
        (Method::PATCH, &post, json!({ "component_ids": [c, c] }), bad, "component_ids[1]"),
        (Method::PATCH, &post, json!({ "component_ids": [foreign] }), bad, "component_ids[0]"),
        (Method::PATCH, &mpost, json!({ "impact": "minor" }), bad, "impact"),
        (Method::PATCH, &mpost, json!({ "scheduled_until": from - Duration::minutes(1) }), bad, "scheduled_until"),
        (Method::PATCH, &mpost, json!({ "scheduled_for": t0 - Duration::minutes(1) }), bad, "scheduled_for"),
        (Method::PATCH, &mpost, json!({ "remind_minutes": 99999 }), bad, "remind_minutes"),
        (Method::POST, &updates, json!({ "body": "b" }), bad, "status"),
        (Method::POST, &updates, json!({ "status": "completed", "body": "b" }), bad, "status"),
        (Method::POST, &updates, json!({ "status": "monitoring" }), bad, "body"),
        (Method::POST, &updates, json!({ "status": "monitoring", "body": "" }), bad, "body"),
        (Method::POST, &updates, json!({ "status": "monitoring", "body": "b", "name": "" }), bad, "name"),
        (Method::POST, &updates, json!({ "status": "monitoring", "body": "b", "impact": "maintenance" }), bad, "impact"),
        (Method::POST, &updates, json!({ "status": "monitoring", "body": "b", "components": [{ "component_id": c }, { "component_id": c }] }), bad, "components[1].component_id"),
        (Method::POST, &updates, json!({ "status": "monitoring", "body": "b", "components": [{ "component_id": foreign, "status": "major_outage" }] }), bad, "components[0].component_id"),
        (Method::POST, &updates, json!({ "status": "monitoring", "body": "b", "display_at": future }), bad, "display_at"),
        (Method::POST, &mupdates, json!({ "status": "resolved", "body": "b" }), bad, "status"),
        (Method::POST, &mupdates, json!({ "status": "in_progress", "body": "b", "impact": "minor" }), bad, "impact"),
        (Method::PATCH, &update, json!({ "body": "" }), bad, "body"),
        (Method::PATCH, &update, json!({ "body": null }), bad, "body"),
        (Method::PATCH, &update, json!({ "display_at": future }), bad, "display_at"),
        // Templates.
        (Method::POST, &templates, json!({ "name": "", "title": "T" }), bad, "name"),
        (Method::POST, &templates, json!({ "name": "n" }), bad, "title"),
        (Method::POST, &templates, json!({ "name": "n", "title": "T", "kind": "outage" }), bad, "kind"),
        (Method::POST, &templates, json!({ "name": "n", "title": "T", "status": "in_progress" }), bad, "status"),
        (Method::POST, &templates, json!({ "name": "n", "title": "T", "body": long(20_001) }), bad, "body"),
        (Method::POST, &templates, json!({ "name": "mt", "title": "T" }), conflict, "name"),
        (Method::PATCH, &template, json!({ "status": "investigating" }), bad, "status"),
        (Method::PATCH, &template, json!({ "title": null }), bad, "title"),
        // Subscribers.
        (Method::POST, &subscribers, json!({ "kind": "sms", "address": "x" }), bad, "kind"),
        (Method::POST, &subscribers, json!({ "kind": "email", "address": "not an address" }), bad, "address"),
        (Method::POST, &subscribers, json!({ "kind": "webhook", "address": "ftp://hooks.example.com" }), bad, "address"),
        (Method::POST, &subscribers, json!({ "kind": "webhook", "address": "hooks.example.com/x" }), bad, "address"),
        (Method::POST, &subscribers, json!({ "kind": "webhook", "address": "https://h.example.com", "confirmed": true }), bad, "confirmed"),
        (Method::POST, &subscribers, json!({ "kind": "email", "address": "a@example.com", "component_ids": [foreign] }), bad, "component_ids[0]"),
        (Method::POST, &subscribers, json!({ "kind": "email", "address": "a@example.com", "component_ids": [c, c] }), bad, "component_ids[1]"),
        (Method::POST, &subscribers, json!({ "kind": "email", "address": "taken@example.com" }), conflict, "address"),
    ];
    for (method, path, body, status, field) in cases {
        let what = format!("{method} {path} {body}");
        let before = app.counts().await;
        let r = app
            .call(method, path, Some(&app.admin_token), Some(body))
            .await;
        let code = if status == conflict {
            "conflict"
        } else {
            "invalid_field"
        };
        assert_eq!(
            (r.status, r.code(), r.field()),
            (status, code, field),
            "{what}: {}",
            r.body
        );
        assert!(
            !r.body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{what}"
        );
        assert_eq!(app.counts().await, before, "{what} wrote something");
    }

    // Query parameters.
    for (query, field) in [
        (
            format!("/api/v1/status-pages/{p}/posts?kind=outage"),
            "kind",
        ),
        (format!("/api/v1/status-pages/{p}/posts?open=maybe"), "open"),
        (format!("/api/v1/status-pages/{p}/posts?limit=0"), "limit"),
        (format!("/api/v1/status-pages/{p}/posts?limit=501"), "limit"),
        (
            format!("/api/v1/status-components/{c}/history?since=yesterday"),
            "since",
        ),
        ("/api/v1/status-pages/abc".to_string(), "id"),
    ] {
        let r = app.get(&query).await;
        assert_eq!((r.status, r.field()), (bad, field), "{query}: {}", r.body);
    }
    // Nothing above moved the component or the posts.
    assert_eq!(
        app.get(&format!("/api/v1/status-components/{c}"))
            .await
            .body["status"],
        "operational"
    );
    assert_eq!(
        app.get(&post).await.body["updates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.get(&mpost).await.body["status"], "scheduled");
}
