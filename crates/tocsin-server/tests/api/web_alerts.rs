//! The alert pages: the list with its filters and pages, one alert with its raw
//! payload, and silences and maintenance windows made and ended through forms —
//! with attacker-controlled alert text escaped everywhere, roles enforced and
//! the form token required.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestApp;
use crate::web_support::signed_in;

const EVIL: &str = "<img src=x onerror=alert(1)>";
const EVIL_ESCAPED: &str = "&#60;img src=x onerror=alert(1)&#62;";
const BREAKOUT: &str = "</pre><script>alert(1)</script>";

/// A service with an integration key; (service id, key secret).
async fn service_with_key(app: &TestApp, name: &str) -> (i64, String) {
    let svc = app.post("/api/v1/services", json!({ "name": name })).await;
    assert_eq!(svc.status, StatusCode::CREATED, "{}", svc.body);
    let id = svc.body["id"].as_i64().unwrap();
    let key = app
        .post(
            &format!("/api/v1/services/{id}/integration-keys"),
            json!({ "name": "monitoring" }),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    (id, key.body["secret"].as_str().unwrap().to_string())
}

async fn enqueue(app: &TestApp, body: Value) {
    let r = app
        .call(Method::POST, "/v2/enqueue", None, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

/// The alerts of a service, newest first, from the API.
async fn alerts_of(app: &TestApp, svc: i64) -> Vec<Value> {
    app.get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn assert_no_raw_markup(html: &str, path: &str) {
    assert!(!html.contains(EVIL), "{path}: unescaped img");
    assert!(!html.contains("<script>alert"), "{path}: unescaped script");
    assert!(
        !html.contains("</pre><script>"),
        "{path}: pre broken out of"
    );
}

async fn alert_list_and_detail_escape_what_sources_send(app: TestApp) {
    let (svc, key) = service_with_key(&app, "edge").await;
    let (other, _) = service_with_key(&app, "billing").await;
    enqueue(
        &app,
        json!({ "routing_key": key, "event_action": "trigger", "dedup_key": "evil-1",
            "payload": { "summary": EVIL, "source": BREAKOUT, "severity": "critical",
                         "custom_details": { "note": BREAKOUT } },
            "links": [{ "href": "javascript:alert(1)", "text": "click me" },
                      { "href": "https://runbooks.example/edge", "text": "Runbook" }] }),
    )
    .await;
    let am = json!({ "alerts": [{ "status": "firing", "fingerprint": "f-evil",
        "labels": { "alertname": "Breakout", "team": BREAKOUT, "evil": EVIL },
        "annotations": { "summary": "Labels from Alertmanager" } }] });
    let r = app
        .raw(
            Method::POST,
            &format!("/integrations/alertmanager/{key}"),
            None,
            "application/json",
            am.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let alerts = alerts_of(&app, svc).await;
    assert_eq!(alerts.len(), 2);
    let (labelled, evil) = (
        alerts[0]["id"].as_i64().unwrap(),
        alerts[1]["id"].as_i64().unwrap(),
    );

    let web = signed_in(&app, "viewer").await;
    let list = web.get("/alerts").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.html.contains(EVIL_ESCAPED), "{}", list.html);
    assert!(list.html.contains(&format!("href=\"/alerts/{evil}\"")));
    assert!(list.html.contains("data-live=\"alerts\""));
    assert!(list.html.contains("<td data-label=\"Service\">edge</td>"));
    assert_no_raw_markup(&list.html, "/alerts");

    // One alert: every field, the raw payload pretty-printed, all escaped.
    let d = web.get(&format!("/alerts/{evil}")).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.html);
    assert_no_raw_markup(&d.html, "detail");
    assert!(d.html.contains(EVIL_ESCAPED));
    assert!(d
        .html
        .contains("&#60;/pre&#62;&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(d.html.contains("evil-1"), "the dedup key is shown");
    assert!(
        d.html.contains("{\n  &#34;"),
        "the raw payload is pretty-printed JSON: {}",
        d.html
    );
    assert!(d.html.contains("&#34;routing_key&#34;"));
    // Only web links are links.
    assert!(d.html.contains("href=\"https://runbooks.example/edge\""));
    assert!(!d.html.contains("href=\"javascript:"), "{}", d.html);
    assert!(d.html.contains("click me"));
    assert!(d.html.contains(&format!("href=\"/services/{svc}\"")));

    let l = web.get(&format!("/alerts/{labelled}")).await;
    assert_eq!(l.status, StatusCode::OK);
    assert_no_raw_markup(&l.html, "labels");
    assert!(l.html.contains(EVIL_ESCAPED), "labels are escaped");
    assert!(l.html.contains(">Breakout<"), "{}", l.html);

    assert_eq!(
        web.get("/alerts/999999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(web.get("/alerts/x").await.status, StatusCode::BAD_REQUEST);

    // Filters and pages.
    let found = |html: &str, id: i64| html.contains(&format!("href=\"/alerts/{id}\""));
    let p = web.get(&format!("/alerts?service_id={other}")).await;
    assert!(!found(&p.html, evil) && p.html.contains("No alerts match."));
    let p = web
        .get(&format!(
            "/alerts?service_id={svc}&status=triggered&held=no"
        ))
        .await;
    assert!(found(&p.html, evil) && found(&p.html, labelled));
    let p = web.get("/alerts?status=resolved").await;
    assert!(!found(&p.html, evil));
    let p = web.get("/alerts?held=yes").await;
    assert!(!found(&p.html, evil));
    let p = web.get(&format!("/alerts?before_id={labelled}")).await;
    assert!(found(&p.html, evil) && !found(&p.html, labelled));
    assert!(
        p.html.contains("href=\"/alerts\""),
        "a way back to the newest"
    );
    let bad = web.get("/alerts?status=sideways").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("status"));
    let bad = web.get("/alerts?held=maybe").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("held"));
}

async fn silences_are_made_and_expired_through_forms(app: TestApp) {
    let (svc, _) = service_with_key(&app, "db").await;
    let svc_s = svc.to_string();
    let responder = signed_in(&app, "responder").await;
    let viewer = signed_in(&app, "viewer").await;
    let page = responder.get("/alerts/silences").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("id=\"silence-form\""));

    // Refused input names the field and stores nothing.
    let before = app.counts().await;
    for (form, field) in [
        (vec![("matchers", "alertname=\"DiskFull\"")], "ends_at"),
        (
            vec![("matchers", "nonsense"), ("ends_at", "2026-01-01T02:00")],
            "matchers[0]",
        ),
        (vec![("ends_at", "2026-01-01T02:00")], "matchers"),
        (
            vec![("matchers", "a=\"b\""), ("ends_at", "2025-12-31T00:00")],
            "ends_at",
        ),
        (
            vec![("matchers", "a=\"b\""), ("ends_at", "soon")],
            "ends_at",
        ),
    ] {
        let r = responder.post("/alerts/silences", &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        assert!(
            r.html.contains(&format!("{field}: ")),
            "{field}: {}",
            r.html
        );
        assert!(r.html.contains("id=\"form-error\""));
    }
    assert_eq!(app.counts().await, before);

    // Viewers see no form and may not post; nor may anyone without the token.
    let vp = viewer.get("/alerts/silences").await;
    assert_eq!(vp.status, StatusCode::OK);
    assert!(!vp.html.contains("id=\"silence-form\""));
    let good = [
        ("matchers", "alertname=\"DiskFull\"\nenv=~\"prod|staging\""),
        ("service_id", svc_s.as_str()),
        ("ends_at", "2026-01-01T02:00"),
        ("comment", EVIL),
    ];
    let r = viewer.post("/alerts/silences", &good).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = responder.post_raw("/alerts/silences", &good).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.counts().await, before);

    let ok = responder.post("/alerts/silences", &good).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    let list = app.get("/api/v1/silences").await.body;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let s = &list[0];
    let id = s["id"].as_i64().unwrap();
    assert_eq!(ok.location(), format!("/alerts/silences#silence-{id}"));
    assert_eq!(s["state"], "active");
    assert_eq!(s["service_id"], svc);
    assert_eq!(s["ends_at"], "2026-01-01T02:00:00Z");
    assert_eq!(s["comment"], EVIL);
    assert_eq!(s["matchers"].as_array().unwrap().len(), 2);

    let shown = viewer.get("/alerts/silences").await;
    assert!(shown.html.contains(EVIL_ESCAPED));
    assert_no_raw_markup(&shown.html, "silences");
    assert!(
        shown.html.contains("alertname=&#34;DiskFull&#34;"),
        "{}",
        shown.html
    );
    assert!(
        !shown.html.contains("/expire"),
        "no expire button for a viewer"
    );
    assert!(responder
        .get("/alerts/silences?state=active")
        .await
        .html
        .contains(&format!("id=\"silence-{id}\"")));
    assert!(!responder
        .get("/alerts/silences?state=expired")
        .await
        .html
        .contains(&format!("id=\"silence-{id}\"")));
    assert_eq!(
        responder.get("/alerts/silences?state=odd").await.status,
        StatusCode::BAD_REQUEST
    );

    // Expire: not by a viewer, not without the token; then by the responder.
    let path = format!("/alerts/silences/{id}/expire");
    assert_eq!(viewer.post(&path, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        responder.post_raw(&path, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(&format!("/api/v1/silences/{id}")).await.body["state"],
        "active"
    );
    let r = responder.post(&path, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/api/v1/silences/{id}")).await.body["state"],
        "expired"
    );
}

async fn maintenance_windows_are_made_and_deleted_through_forms(app: TestApp) {
    let (svc, _) = service_with_key(&app, "db").await;
    let svc_s = svc.to_string();
    let admin = signed_in(&app, "admin").await;
    let responder = signed_in(&app, "responder").await;
    assert!(admin
        .get("/alerts/maintenance")
        .await
        .html
        .contains("id=\"window-form\""));
    let rp = responder.get("/alerts/maintenance").await;
    assert_eq!(rp.status, StatusCode::OK);
    assert!(
        !rp.html.contains("id=\"window-form\""),
        "windows are the admin's"
    );

    let once = [
        ("description", "DB upgrade <b>"),
        ("service_id", svc_s.as_str()),
        ("kind", "once"),
        ("starts_at", "2026-01-01T01:00"),
        ("ends_at", "2026-01-01T03:00"),
        // The other kind's inputs are ignored.
        ("start_time", "02:00"),
    ];
    let before = app.counts().await;
    assert_eq!(
        responder.post("/alerts/maintenance", &once).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.post_raw("/alerts/maintenance", &once).await.status,
        StatusCode::FORBIDDEN
    );
    for (form, field) in [
        (
            vec![
                ("service_id", svc_s.as_str()),
                ("kind", "weekly"),
                ("start_time", "02:00"),
            ],
            "days",
        ),
        (
            vec![
                ("service_id", svc_s.as_str()),
                ("kind", "weekly"),
                ("days", "mon"),
                ("start_time", "02:00"),
                ("duration_minutes", "abc"),
                ("time_zone", "UTC"),
            ],
            "duration_minutes",
        ),
        (
            vec![
                ("service_id", svc_s.as_str()),
                ("kind", "weekly"),
                ("days", "mon"),
                ("start_time", "02:00"),
                ("duration_minutes", "60"),
                ("time_zone", "Mars/Base"),
            ],
            "time_zone",
        ),
        (
            vec![
                ("service_id", svc_s.as_str()),
                ("kind", "once"),
                ("starts_at", "2026-01-01T01:00"),
            ],
            "ends_at",
        ),
        (vec![("service_id", "x"), ("kind", "once")], "service_ids"),
    ] {
        let r = admin.post("/alerts/maintenance", &form).await;
        assert!(r.status.is_client_error(), "{form:?}: {}", r.status);
        assert!(
            r.html.contains(&format!("{field}: ")),
            "{field}: {}",
            r.html
        );
    }
    assert_eq!(app.counts().await, before);

    let r = admin.post("/alerts/maintenance", &once).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let weekly = [
        ("service_id", svc_s.as_str()),
        ("kind", "weekly"),
        ("days", "mon"),
        ("days", "wed"),
        ("start_time", "02:00"),
        ("duration_minutes", "90"),
        ("time_zone", "Europe/Berlin"),
    ];
    let r = admin.post("/alerts/maintenance", &weekly).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let list = app.get("/api/v1/maintenance-windows").await.body;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    let w_once = list.iter().find(|w| w["starts_at"].is_string()).unwrap();
    assert_eq!(w_once["starts_at"], "2026-01-01T01:00:00Z");
    assert_eq!(w_once["ends_at"], "2026-01-01T03:00:00Z");
    assert_eq!(w_once["service_ids"], json!([svc]));
    assert!(w_once["start_time"].is_null());
    let w_week = list.iter().find(|w| w["days"].is_array()).unwrap();
    assert_eq!(w_week["days"], json!(["mon", "wed"]));
    assert_eq!(w_week["time_zone"], "Europe/Berlin");
    assert_eq!(w_week["duration_minutes"], 90);

    let page = responder.get("/alerts/maintenance").await;
    assert!(page.html.contains("DB upgrade &#60;b&#62;"));
    assert!(
        page.html
            .contains("every mon, wed at 02:00 for 90 min (Europe/Berlin)"),
        "{}",
        page.html
    );
    assert!(
        !page.html.contains("/delete"),
        "no delete button but for admins"
    );

    let id = w_once["id"].as_i64().unwrap();
    let path = format!("/alerts/maintenance/{id}/delete");
    let before = app.counts().await;
    assert_eq!(
        responder.post(&path, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.post_raw(&path, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.counts().await, before);
    let r = admin.post(&path, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let list = app.get("/api/v1/maintenance-windows").await.body;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        app.get(&format!("/api/v1/maintenance-windows/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

crate::both_backends!(
    alert_list_and_detail_escape_what_sources_send,
    silences_are_made_and_expired_through_forms,
    maintenance_windows_are_made_and_deleted_through_forms,
);
