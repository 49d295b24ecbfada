//! The /analytics page: over HTTP on both back ends (tables, SVG charts, CSV
//! links equal to the API's CSV, a viewer may read it, attacker-named
//! services escaped), and in headless Chromium (SQLite) with the screenshots
//! analytics-desktop.png and analytics-phone.png for docs/screenshots/
//! (`TOCSIN_SCREENSHOTS=1`); the browser test is skipped, saying so, without
//! Chromium.

use reqwest::StatusCode;
use serde_json::json;

use crate::browser::screenshot_dir;
use crate::learning_analytics::{data, page_two_zones};
use crate::support::{spawn_app, t, Db, TestApp};
use crate::web_support::{signed_in, web_user, PASSWORD};
use crate::webdriver::{available, Driver};

async fn seeded(app: &TestApp) {
    data(app).await;
    page_two_zones(app).await;
    app.clock.set(t("2026-01-20T00:00:00Z"));
}

async fn the_page_shows_tables_charts_and_csv(app: TestApp) {
    seeded(&app).await;
    // A service name that would be markup if it were not escaped.
    let r = app
        .post("/api/v1/services", json!({ "name": "<b>evil</b>" }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // An alert whose rule (the event's class) would be markup if it were not escaped.
    let (_, key) = crate::ingest::service_with_key(&app, "edge").await;
    app.clock.set(t("2026-01-19T12:00:00Z"));
    let r = app
        .call(
            reqwest::Method::POST,
            "/v2/enqueue",
            None,
            Some(
                json!({ "routing_key": key, "event_action": "trigger", "dedup_key": "lat",
                "payload": { "summary": "p99 high", "source": "edge-1", "severity": "warning",
                             "class": "<i>HighLatency</i>" } }),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    app.clock.set(t("2026-01-20T00:00:00Z"));
    let web = signed_in(&app, "viewer").await;
    let p = web
        .get("/analytics?days=28&group_by=service&tz=UTC&metric=time_to_resolve")
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.html);
    let html = &p.html;
    assert!(html.contains(r#"aria-current="page">Analytics</a>"#));
    assert!(html.contains(r#"id="analytics-incidents""#));
    // api: 3 incidents; db: 2.
    assert!(
        html.contains(r#"<td data-label="Group">api</td><td data-label="Incidents">3</td>"#),
        "{html}"
    );
    assert!(html.contains(r#"<td data-label="Group">db</td><td data-label="Incidents">2</td>"#));
    assert_eq!(
        html.matches("<svg").count(),
        4,
        "trend ×2, histogram, heat map"
    );
    assert!(html.contains("<title>Incidents per week</title>"));
    // On-call: Berta's three nights, in her zone.
    assert!(html.contains(r#"<td data-label="Person">Berta</td><td data-label="Zone">Europe/Berlin</td><td data-label="Pages">5</td>"#));
    assert!(!html.contains("<b>evil</b>"));
    let rules = &html[html
        .find(r#"id="analytics-noise-rules""#)
        .expect("rules table")..];
    assert!(
        rules.contains(r#"<td data-label="Rule">&#60;i&#62;HighLatency&#60;/i&#62;</td><td data-label="Alerts">1</td>"#),
        "{rules}"
    );
    // The CSV link gives the API's CSV for the same window.
    let link = "/analytics/incidents.csv?days=28&group_by=service&tz=UTC&metric=time_to_resolve";
    let shown = html
        .split("href=\"")
        .find(|h| h.contains("incidents.csv"))
        .and_then(|h| h.split('"').next())
        .unwrap_or_default()
        .replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x2f;", "/");
    assert_eq!(shown, link);
    let csv = web.get(link).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let api = app
        .get("/api/v1/analytics/incidents?from=2025-12-23T00:00:00Z&to=2026-01-20T00:00:00Z&group_by=service&format=csv")
        .await;
    assert_eq!(csv.html, String::from_utf8(api.bytes).unwrap());
    for file in ["trend", "noise", "oncall"] {
        let r = web.get(&format!("/analytics/{file}.csv?days=28")).await;
        assert_eq!(r.status, StatusCode::OK, "{file}");
    }
    assert_eq!(
        web.get("/analytics/other.csv").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        web.get("/analytics?days=0").await.status,
        StatusCode::BAD_REQUEST
    );
}

crate::both_backends!(the_page_shows_tables_charts_and_csv);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_in_a_browser_with_screenshots() {
    if !available() {
        eprintln!("skipped: no Chromium/chromedriver");
        return;
    }
    let driver = Driver::start().await;
    let app = spawn_app(Db::Sqlite).await.expect("sqlite app");
    seeded(&app).await;
    let (_, email) = web_user(&app, "viewer").await;
    let b = driver.session().await;
    b.set_window_rect(1280, 900).await.unwrap();
    b.goto(&format!("{}/login", app.base)).await;
    b.type_into("#email", &email).await;
    b.type_into("#password", PASSWORD).await;
    b.click_on("main form button[type=submit]").await;
    b.wait_path("/").await;
    // From the navigation, then the filter form (no script needed).
    b.click_on("nav a[href='/analytics']").await;
    b.wait_path("/analytics").await;
    b.wait_find("#analytics-incidents").await;
    let group = b.wait_find("#a-group").await;
    for o in b.find_all("#a-group option").await.unwrap() {
        if b.text(&o).await.unwrap() == "severity" {
            b.click(&o).await.unwrap();
        }
    }
    let _ = group;
    let tz = b.wait_find("#a-tz").await;
    b.execute(
        "arguments[0].value = 'America/Los_Angeles';",
        vec![json!({ crate::webdriver::ELEMENT: tz })],
    )
    .await
    .unwrap();
    b.click_on("form.filters button[type=submit]").await;
    b.wait_text("#h-incidents", "by severity", |t| {
        t == "Incidents by severity"
    })
    .await;
    let url = b.current_url().await;
    assert!(
        url.contains("group_by=severity") && url.contains("tz=America%2FLos_Angeles"),
        "{url}"
    );
    let rows = b.find_all("#analytics-incidents tbody tr").await.unwrap();
    // SEV1, SEV2, and the default severity of the five paging incidents.
    assert_eq!(rows.len(), 3);
    let charts = b.find_all(".chart svg").await.unwrap();
    assert_eq!(charts.len(), 4);
    let dir = screenshot_dir();
    for (size, width, height) in [("desktop", 1280, 900), ("phone", 375, 812)] {
        b.set_window_rect(width, height).await.unwrap();
        b.goto(&format!("{}/analytics?days=28&group_by=service", app.base))
            .await;
        b.wait_find("#analytics-oncall").await;
        let inner = b
            .execute(
                "return [window.outerHeight - window.innerHeight,
                   Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)];",
                vec![],
            )
            .await
            .unwrap();
        let full = inner[0].as_i64().unwrap() + inner[1].as_i64().unwrap().max(height);
        b.set_window_rect(width, full).await.unwrap();
        let png = b.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(dir.join(format!("analytics-{size}.png")), png).unwrap();
    }
}
