//! Publishing on a status page over HTTP, both back ends: an incident moves
//! its components (with history) and reaches the internal incident's
//! timeline; templates fill posts; an internal incident's severity proposes
//! statuses; a maintenance reminds, starts and completes by itself, run by
//! the job runner on the fake clock.

use std::sync::Arc;

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tocsin_engine::delivery::RecordingDelivery;
use tocsin_engine::jobs::Runner;

use super::{component, history, id, now, ok, page, service, status_of};
use crate::both_backends;
use crate::support::TestApp;

both_backends!(
    publishing_moves_components_and_reaches_the_incident_timeline,
    a_template_fills_a_post,
    proposals_follow_the_incident_severity,
    maintenance_starts_and_completes_by_itself
);

async fn publishing_moves_components_and_reaches_the_incident_timeline(app: TestApp) {
    let svc = service(&app, "payments").await;
    let inc = id(&app
        .declare(json!({ "title": "Card payments failing", "service_ids": [svc] }))
        .await);
    let p = page(&app, "shop").await;
    let api = component(&app, p, "API", &[svc]).await;
    let web = component(&app, p, "Website", &[]).await;
    let (_, responder) = app.user_with_role("responder").await;
    let as_responder = |method: Method, path: String, body: Value| {
        let token = responder.clone();
        let app = &app;
        async move { app.call(method, &path, Some(&token), Some(body)).await }
    };

    app.clock.advance(Duration::minutes(10));
    let post = ok(
        as_responder(
            Method::POST,
            format!("/api/v1/status-pages/{p}/incidents"),
            json!({ "name": "Payments failing", "body": "We are investigating failed card payments.",
                    "components": [{ "component_id": api, "status": "major_outage" }, { "component_id": web }],
                    "incident_id": inc }),
        )
        .await,
        StatusCode::CREATED,
    );
    let post_id = id(&post);
    assert_eq!(post["status"], "investigating", "default");
    assert_eq!(
        post["impact"], "critical",
        "from the worst component status"
    );
    assert_eq!(post["incident_id"], inc);
    assert_eq!(post["component_ids"], json!([api, web]));
    assert_eq!(post["updates"].as_array().unwrap().len(), 1);
    assert_eq!(
        post["updates"][0]["affected_components"][0]["new_status"],
        "major_outage"
    );
    assert_eq!(status_of(&app, api).await, "major_outage");
    assert_eq!(status_of(&app, web).await, "operational", "linked only");
    assert_eq!(history(&app, api).await.len(), 2);

    app.clock.advance(Duration::minutes(20));
    let monitoring = ok(
        as_responder(
            Method::POST,
            format!("/api/v1/status-posts/{post_id}/updates"),
            json!({ "status": "monitoring", "body": "A fix is deployed; we are watching.",
                    "components": [{ "component_id": api, "status": "degraded_performance" }],
                    "impact": "major", "notify": false }),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(
        (monitoring["status"].as_str(), monitoring["impact"].as_str()),
        (Some("monitoring"), Some("major"))
    );
    assert_eq!(monitoring["monitoring_at"], json!(now(&app)));
    assert_eq!(status_of(&app, api).await, "degraded_performance");

    app.clock.advance(Duration::minutes(30));
    let resolved = ok(
        as_responder(
            Method::POST,
            format!("/api/v1/status-posts/{post_id}/updates"),
            json!({ "status": "resolved", "body": "Payments work again." }),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(resolved["resolved_at"], json!(now(&app)));
    let statuses: Vec<&str> = resolved["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["resolved", "monitoring", "investigating"],
        "newest first"
    );
    assert_eq!(
        status_of(&app, api).await,
        "operational",
        "resolving released it"
    );
    let h = history(&app, api).await;
    let seen: Vec<&str> = h.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        seen,
        [
            "operational",
            "major_outage",
            "degraded_performance",
            "operational"
        ]
    );
    assert_eq!(history(&app, web).await.len(), 1, "never moved");

    // Corrections: a typo in an update, the post's title; the status stays.
    let first_update = id(&resolved["updates"][2]);
    let edited = ok(
        as_responder(
            Method::PATCH,
            format!("/api/v1/status-updates/{first_update}"),
            json!({ "body": "We are investigating failed card payments in Europe." }),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        edited["updates"][2]["body"],
        "We are investigating failed card payments in Europe."
    );
    let renamed = ok(
        as_responder(
            Method::PATCH,
            format!("/api/v1/status-posts/{post_id}"),
            json!({ "name": "Card payments failing" }),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (renamed["name"].as_str(), renamed["status"].as_str()),
        (Some("Card payments failing"), Some("resolved"))
    );

    // Everything is on the internal incident's timeline.
    let kinds: Vec<String> = app
        .timeline(inc)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    for k in [
        "status_post.published",
        "status_component.status_changed",
        "status_post.updated",
        "status_post.update_edited",
        "status_post.edited",
    ] {
        assert!(kinds.iter().any(|s| s == k), "{k} not in {kinds:?}");
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "status_component.status_changed")
            .count(),
        3
    );
    let from_incident = ok(
        app.get(&format!("/api/v1/incidents/{inc}/status-posts"))
            .await,
        StatusCode::OK,
    );
    assert_eq!(
        from_incident
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect::<Vec<_>>(),
        [post_id]
    );
    assert_eq!(
        app.get("/api/v1/incidents/424242/status-posts")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Lists: all, by kind, open only.
    let list = |q: &'static str| {
        let app = &app;
        async move { app.get(&format!("/api/v1/status-pages/{p}/posts{q}")).await }
    };
    assert_eq!(list("").await.body.as_array().unwrap().len(), 1);
    assert_eq!(
        list("?kind=incident").await.body.as_array().unwrap().len(),
        1
    );
    assert!(list("?kind=maintenance")
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());
    assert!(
        list("?open=true").await.body.as_array().unwrap().is_empty(),
        "resolved"
    );
    assert_eq!(
        list("?open=false&limit=1")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Only an admin deletes what customers were told.
    let r = as_responder(
        Method::DELETE,
        format!("/api/v1/status-posts/{post_id}"),
        json!({}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/status-posts/{post_id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/status-posts/{post_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status_of(&app, api).await, "operational");
}

async fn a_template_fills_a_post(app: TestApp) {
    let p = page(&app, "tmpl").await;
    let other = page(&app, "elsewhere").await;
    let db = component(&app, p, "Database", &[]).await;
    let t = ok(
        app.post(&format!("/api/v1/status-pages/{p}/templates"),
            json!({ "name": "db-slow", "title": "Database slowness", "body": "Queries are slow; we are on it.",
                    "status": "identified" })).await,
        StatusCode::CREATED,
    );
    assert_eq!(
        (t["kind"].as_str(), t["status"].as_str()),
        (Some("incident"), Some("identified"))
    );
    let t = id(&t);
    let listed = ok(
        app.get(&format!("/api/v1/status-pages/{p}/templates"))
            .await,
        StatusCode::OK,
    );
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect::<Vec<_>>(),
        [t]
    );

    let filled = ok(
        app.post(&format!("/api/v1/status-pages/{p}/incidents"),
            json!({ "template_id": t, "components": [{ "component_id": db, "status": "degraded_performance" }] })).await,
        StatusCode::CREATED,
    );
    assert_eq!(filled["name"], "Database slowness");
    assert_eq!(filled["status"], "identified");
    assert_eq!(
        filled["updates"][0]["body"],
        "Queries are slow; we are on it."
    );
    assert_eq!(filled["impact"], "minor");
    // What is given wins over the template.
    let own = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/incidents"),
            json!({ "template_id": t, "name": "Slow reports", "status": "investigating" }),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(
        (own["name"].as_str(), own["status"].as_str()),
        (Some("Slow reports"), Some("investigating"))
    );
    assert_eq!(own["updates"][0]["body"], "Queries are slow; we are on it.");

    // Changing the template: a null status removes the suggestion.
    let changed = ok(
        app.patch(
            &format!("/api/v1/status-templates/{t}"),
            json!({ "status": null, "title": "DB slowness" }),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (changed["status"].clone(), changed["title"].as_str()),
        (Value::Null, Some("DB slowness"))
    );
    assert_eq!(
        ok(
            app.get(&format!("/api/v1/status-templates/{t}")).await,
            StatusCode::OK
        ),
        changed
    );
    let defaulted = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/incidents"),
            json!({ "template_id": t }),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(defaulted["status"], "investigating");

    // Another page's template, or a maintenance template for an incident: refused.
    let foreign = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{other}/templates"),
            json!({ "name": "x", "title": "X" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let maint = id(&ok(
        app.post(&format!("/api/v1/status-pages/{p}/templates"),
            json!({ "kind": "maintenance", "name": "upgrade", "title": "Upgrade", "body": "Upgrading.", "status": "scheduled" })).await,
        StatusCode::CREATED,
    ));
    let before = app.counts().await;
    for tid in [foreign, maint, 424242] {
        let r = app
            .post(
                &format!("/api/v1/status-pages/{p}/incidents"),
                json!({ "template_id": tid }),
            )
            .await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::BAD_REQUEST, "template_id"),
            "{}",
            r.body
        );
    }
    assert_eq!(app.counts().await, before);
    let from = now(&app) + Duration::days(1);
    let m = ok(
        app.post(&format!("/api/v1/status-pages/{p}/maintenances"),
            json!({ "template_id": maint, "scheduled_for": from, "scheduled_until": from + Duration::hours(2) })).await,
        StatusCode::CREATED,
    );
    assert_eq!(
        (m["name"].as_str(), m["status"].as_str()),
        (Some("Upgrade"), Some("scheduled"))
    );

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/status-templates/{t}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/status-templates/{t}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/status-posts/{}", id(&filled)))
            .await
            .body["name"],
        "Database slowness",
        "kept"
    );
}

async fn proposals_follow_the_incident_severity(app: TestApp) {
    let svc = service(&app, "search").await;
    let unrelated = service(&app, "billing").await;
    let p = page(&app, "proposals").await;
    let c = component(&app, p, "Search", &[svc]).await;
    component(&app, p, "Billing", &[unrelated]).await;
    let proposals = |inc: i64| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/incidents/{inc}/status-proposals"))
                .await
        }
    };
    for (severity, proposed) in [
        ("SEV1", "major_outage"),
        ("SEV2", "partial_outage"),
        ("SEV3", "degraded_performance"),
    ] {
        let inc = id(&app
            .declare(json!({ "title": "search down", "severity": severity, "service_ids": [svc] }))
            .await);
        let got = ok(proposals(inc).await, StatusCode::OK);
        assert_eq!(
            got,
            json!([{ "page_id": p, "page_name": "proposals status", "component_id": c, "component_name": "Search",
                     "current": "operational", "proposed": proposed }]),
            "{severity}"
        );
    }
    // Nothing changed: a proposal is only a proposal.
    assert_eq!(status_of(&app, c).await, "operational");
    let elsewhere = id(&app
        .declare(json!({ "title": "no page", "severity": "SEV1" }))
        .await);
    assert_eq!(ok(proposals(elsewhere).await, StatusCode::OK), json!([]));
    assert_eq!(proposals(424242).await.status, StatusCode::NOT_FOUND);
}

async fn maintenance_starts_and_completes_by_itself(app: TestApp) {
    let p = page(&app, "maint").await;
    let db = component(&app, p, "Database", &[]).await;
    let cache = component(&app, p, "Cache", &[]).await;
    let from = now(&app) + Duration::hours(2);
    let until = from + Duration::hours(1);
    let m = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/maintenances"),
            json!({ "name": "Database upgrade", "body": "We will upgrade the database.",
                    "scheduled_for": from, "scheduled_until": until, "components": [db] }),
        )
        .await,
        StatusCode::CREATED,
    );
    let mid = id(&m);
    assert_eq!(
        (m["status"].as_str(), m["impact"].as_str()),
        (Some("scheduled"), Some("maintenance"))
    );
    assert_eq!(
        (m["auto_start"].as_bool(), m["auto_complete"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(m["remind_minutes"], 60, "default");
    assert_eq!(status_of(&app, db).await, "operational", "not yet");
    let get = || async {
        ok(
            app.get(&format!("/api/v1/status-posts/{mid}")).await,
            StatusCode::OK,
        )
    };

    let runner = Runner::new(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        Arc::new(RecordingDelivery::default()),
    );
    runner.tick().await.unwrap();
    app.clock.set(from - Duration::seconds(1));
    runner.tick().await.unwrap();
    assert_eq!(get().await["status"], "scheduled");
    app.clock.set(from);
    runner.tick().await.unwrap();
    let started = get().await;
    assert_eq!(started["status"], "in_progress");
    assert_eq!(
        started["updates"][0]["created_by"],
        Value::Null,
        "Tocsin itself"
    );
    assert_eq!(status_of(&app, db).await, "under_maintenance");
    assert_eq!(status_of(&app, cache).await, "operational");
    app.clock.set(until);
    runner.tick().await.unwrap();
    let done = get().await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["resolved_at"], json!(until));
    assert_eq!(done["updates"].as_array().unwrap().len(), 3);
    assert_eq!(status_of(&app, db).await, "operational");

    // Announced once the work has begun: components go under maintenance at
    // once; without automatic steps nothing more happens by itself.
    let started_at = now(&app) - Duration::minutes(5);
    let late = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/maintenances"),
            json!({ "name": "Cache flush", "body": "Flushing caches.", "status": "in_progress",
                    "scheduled_for": started_at, "scheduled_until": started_at + Duration::hours(1),
                    "components": [cache], "auto_complete": false, "remind_minutes": null }),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(
        (late["status"].as_str(), late["remind_minutes"].clone()),
        (Some("in_progress"), Value::Null)
    );
    assert_eq!(status_of(&app, cache).await, "under_maintenance");
    app.clock.advance(Duration::hours(2));
    runner.tick().await.unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/status-posts/{}", id(&late)))
            .await
            .body["status"],
        "in_progress"
    );
    // Rescheduling through PATCH re-arms the automatic completion.
    let later = now(&app) + Duration::minutes(30);
    let re = ok(
        app.patch(
            &format!("/api/v1/status-posts/{}", id(&late)),
            json!({ "auto_complete": true, "scheduled_until": later }),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(re["scheduled_until"], json!(later));
    app.clock.set(later);
    runner.tick().await.unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/status-posts/{}", id(&late)))
            .await
            .body["status"],
        "completed"
    );
    assert_eq!(status_of(&app, cache).await, "operational");
}
