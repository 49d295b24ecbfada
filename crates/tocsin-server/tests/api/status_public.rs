//! Public status pages over real HTTP, both back ends: what the page shows
//! (components, groups, incidents, maintenance, uptime to the exact percent),
//! that nothing unpublished and nothing unescaped reaches a reader, custom
//! domains, internal pages, the cache (fresh after a change, no database when
//! warm, one render for many readers, the last page while the database is
//! down), conditional requests, subscribing and the links in subscriber mail,
//! and the static export.

use std::sync::Arc;

use chrono::Duration;
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use tocsin_core::model::EmailAddress;
use tocsin_core::status_page::token::LinkPurpose;
use tocsin_core::status_page::{
    Color, ComponentStatus, Domain, PostKind, PostStatus, Slug, Visibility,
};
use tocsin_core::time::Clock;
use tocsin_server::status::{export, export_all, ExportError, PageRef};
use tocsin_server::{AppState, Limits};
use tocsin_store::status::{
    ComponentChange, ComponentChanges, NewComponent, NewComponentGroup, NewPost, NewStatusPage,
    NewUpdate, StatusPageChanges,
};
use tocsin_store::{Actor, Store, StoreOptions};

use crate::both_backends;
use crate::support::{t, TestApp};

both_backends!(
    the_page_shows_components_incidents_maintenance_and_uptime,
    nothing_unpublished_reaches_a_reader_and_hostile_text_is_escaped,
    a_custom_domain_serves_its_page_at_the_root_and_nothing_else,
    internal_pages_need_a_session_or_a_token,
    a_change_shows_on_the_next_request,
    a_warm_cache_needs_no_database_and_survives_its_loss,
    a_stale_rendering_of_a_page_made_internal_is_not_served_publicly,
    a_page_is_rendered_again_only_when_changed_ageing_or_at_midnight,
    another_nodes_change_arrives_by_polling_and_many_readers_cause_one_render,
    conditional_requests_and_headers,
    subscribing_answers_the_same_for_every_address,
    without_a_mail_relay_no_email_subscription_is_offered,
    confirm_and_unsubscribe_links,
    the_export_is_what_the_server_serves,
);

// ---------------------------------------------------------------- helpers

pub(crate) fn now(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    app.clock.now()
}

pub(crate) fn actor(app: &TestApp) -> Actor {
    Actor {
        user_id: Some(app.admin_id),
        name: "Ada Admin".into(),
    }
}

pub(crate) fn new_page(slug: &str, name: &str) -> NewStatusPage {
    NewStatusPage {
        slug: Slug::parse("slug", slug).unwrap(),
        name: name.into(),
        description: String::new(),
        visibility: Visibility::Public,
        domain: None,
        time_zone: chrono_tz::Tz::UTC,
        brand_color: Color::parse("c", "#0b3d91").unwrap(),
        support_url: None,
        allow_subscribers: true,
    }
}

pub(crate) async fn page_with(app: &TestApp, p: NewStatusPage) -> i64 {
    app.store
        .create_status_page(&p, &actor(app), now(app))
        .await
        .unwrap()
        .id
}

pub(crate) async fn page(app: &TestApp, slug: &str) -> i64 {
    page_with(app, new_page(slug, "Acme")).await
}

async fn group(app: &TestApp, page_id: i64, name: &str) -> i64 {
    let g = NewComponentGroup {
        name: name.into(),
        description: String::new(),
        position: None,
    };
    app.store
        .create_component_group(page_id, &g, &actor(app), now(app))
        .await
        .unwrap()
        .id
}

pub(crate) async fn component(
    app: &TestApp,
    page_id: i64,
    group_id: Option<i64>,
    name: &str,
) -> i64 {
    let c = NewComponent {
        group_id,
        name: name.into(),
        description: String::new(),
        position: None,
        status: ComponentStatus::Operational,
        show_uptime: true,
        only_show_if_degraded: false,
        service_ids: vec![],
    };
    app.store
        .create_component(page_id, &c, &actor(app), now(app))
        .await
        .unwrap()
        .id
}

pub(crate) async fn set_status(app: &TestApp, component_id: i64, status: ComponentStatus) {
    let c = ComponentChanges {
        status: Some(status),
        ..Default::default()
    };
    app.store
        .update_component(component_id, &c, &actor(app), now(app))
        .await
        .unwrap();
}

pub(crate) fn incident(name: &str, body: &str, components: Vec<ComponentChange>) -> NewPost {
    NewPost {
        kind: PostKind::Incident,
        incident_id: None,
        name: name.into(),
        status: PostStatus::Investigating,
        impact: None,
        body: body.into(),
        components,
        notify: false,
        display_at: None,
        scheduled_for: None,
        scheduled_until: None,
        auto_start: false,
        auto_complete: false,
        remind_minutes: None,
    }
}

pub(crate) async fn publish(app: &TestApp, page_id: i64, p: NewPost) -> i64 {
    app.store
        .publish_post(page_id, &p, &actor(app), now(app))
        .await
        .unwrap()
        .id
}

async fn update(app: &TestApp, post_id: i64, status: &str, body: &str) {
    let u = NewUpdate {
        status: status.into(),
        body: body.into(),
        components: vec![],
        notify: false,
        display_at: None,
        name: None,
        impact: None,
    };
    app.store
        .add_post_update(post_id, &u, &actor(app), now(app))
        .await
        .unwrap();
}

pub(crate) fn change(component_id: i64, status: ComponentStatus) -> ComponentChange {
    ComponentChange {
        component_id,
        status: Some(status),
    }
}

/// A response as a browser sees it: no redirect followed.
pub(crate) struct Got {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Got {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) async fn send(req: reqwest::RequestBuilder) -> Got {
    let r = req.send().await.expect("request");
    Got {
        status: r.status(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

pub(crate) async fn get(base: &str, path: &str) -> Got {
    send(client().get(format!("{base}{path}"))).await
}

pub(crate) async fn get_with(base: &str, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = client().get(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req).await
}

/// Every route of page `slug` that answers GET without a query, with post `ids`.
fn routes(slug: &str, ids: &[i64]) -> Vec<String> {
    let mut r: Vec<String> = [
        "",
        "index.html",
        "history",
        "history.html",
        "theme.css",
        "history.atom",
        "history.rss",
        "subscribe",
        "api/v2/summary.json",
        "api/v2/status.json",
        "api/v2/components.json",
        "api/v2/incidents.json",
        "api/v2/incidents/unresolved.json",
        "api/v2/scheduled-maintenances.json",
        "api/v2/scheduled-maintenances/upcoming.json",
        "api/v2/scheduled-maintenances/active.json",
    ]
    .iter()
    .map(|p| format!("/status/{slug}/{p}"))
    .collect();
    for id in ids {
        r.push(format!("/status/{slug}/incidents/{id}"));
        r.push(format!("/status/{slug}/incidents/{id}.html"));
    }
    r
}

/// The relative `href` and `src` targets of a page (not anchors, not other sites).
fn relative_links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for part in html.split(attr).skip(1) {
            let link = part.split('"').next().unwrap().replace("&amp;", "&");
            if !link.starts_with('#') && !link.contains("://") && !link.starts_with("mailto:") {
                out.push(link);
            }
        }
    }
    out
}

async fn deliveries(app: &TestApp) -> i64 {
    app.store
        .table_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| t == "status_deliveries")
        .unwrap()
        .1
}

/// Another server over the same database, whose state the test keeps (the
/// cache's counters, its own store to close).
pub(crate) async fn second_node(app: &TestApp) -> (String, AppState, Store) {
    let store = Store::connect(
        &app.db_url,
        &StoreOptions {
            max_connections: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let state = AppState::new(
        store.clone(),
        crate::support::test_settings(),
        Arc::new(app.clock.clone()) as Arc<dyn Clock>,
        Limits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(tocsin_server::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    (base, state, store)
}

// ---------------------------------------------------------------- the page

async fn the_page_shows_components_incidents_maintenance_and_uptime(app: TestApp) {
    // 2026-01-01 00:00 UTC: the page and its components begin.
    let p = page(&app, "acme").await;
    let platform = group(&app, p, "Platform").await;
    let api = component(&app, p, Some(platform), "API").await;
    let db = component(&app, p, Some(platform), "Database").await;
    let web = component(&app, p, None, "Website").await;
    // 1 Jan: 20 min major outage, then an hour of partial outage.
    app.clock.set(t("2026-01-01T10:00:00Z"));
    set_status(&app, api, ComponentStatus::MajorOutage).await;
    app.clock.set(t("2026-01-01T10:20:00Z"));
    set_status(&app, api, ComponentStatus::PartialOutage).await;
    app.clock.set(t("2026-01-01T11:20:00Z"));
    set_status(&app, api, ComponentStatus::Operational).await;
    // 2 Jan: an incident on the database, and maintenance on the website.
    app.clock.set(t("2026-01-02T11:00:00Z"));
    let inc = publish(
        &app,
        p,
        incident(
            "Database slow",
            "We are *looking* into it.",
            vec![change(db, ComponentStatus::PartialOutage)],
        ),
    )
    .await;
    app.clock.set(t("2026-01-02T11:30:00Z"));
    update(&app, inc, "identified", "Found the cause.").await;
    let maintenance = |name: &str, status, from, until, comp: Option<ComponentStatus>| NewPost {
        kind: PostKind::Maintenance,
        status,
        scheduled_for: Some(from),
        scheduled_until: Some(until),
        components: vec![ComponentChange {
            component_id: web,
            status: comp,
        }],
        ..incident(name, "Planned work.", vec![])
    };
    let now_work = maintenance(
        "Cache rebuild",
        PostStatus::InProgress,
        t("2026-01-02T11:00:00Z"),
        t("2026-01-02T13:00:00Z"),
        Some(ComponentStatus::UnderMaintenance),
    );
    let busy = publish(&app, p, now_work).await;
    let later = maintenance(
        "Network upgrade",
        PostStatus::Scheduled,
        t("2026-01-05T02:00:00Z"),
        t("2026-01-05T04:00:00Z"),
        None,
    );
    let planned = publish(&app, p, later).await;
    app.clock.set(t("2026-01-02T12:00:00Z"));

    let r = get(&app.base, "/status/acme/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    let h = &r.text;
    // The partial outage on the database makes the page's indicator "major".
    assert!(h.contains("ind-major"), "{h}");
    assert!(h.contains("Partial System Outage"));
    // The active incident, its updates newest first, and what it affects.
    let active = &h[h.find("id=\"active\"").unwrap()..h.find("id=\"in-progress\"").unwrap()];
    assert!(active.contains(&format!("href=\"incidents/{inc}.html\">Database slow</a>")));
    let identified = active.find("Found the cause.").unwrap();
    let investigating = active.find("We are <em>looking</em> into it.").unwrap();
    assert!(identified < investigating, "newest update first");
    assert!(active.contains("Affects: Database"));
    // Maintenance under way and announced.
    let in_progress = &h[h.find("id=\"in-progress\"").unwrap()..h.find("id=\"upcoming\"").unwrap()];
    assert!(in_progress.contains("Cache rebuild"));
    let upcoming = &h[h.find("id=\"upcoming\"").unwrap()..h.find("id=\"components\"").unwrap()];
    assert!(upcoming.contains("Network upgrade"));
    assert!(upcoming.contains("5 Jan 2026, 02:00 UTC – 5 Jan 2026, 04:00 UTC"));
    // Components: the group shows its worst child, every status a colour, a shape and a word.
    let comps = &h[h.find("id=\"components\"").unwrap()..h.find("id=\"past\"").unwrap()];
    assert!(comps.contains("<span class=\"name\">Platform</span> <span class=\"status st-partial_outage\"><span class=\"icon\" aria-hidden=\"true\">◆</span> Partial outage</span>"), "{comps}");
    assert!(comps.contains("<span class=\"name\">Website</span> <span class=\"status st-under_maintenance\"><span class=\"icon\" aria-hidden=\"true\">◷</span> Under maintenance</span>"), "{comps}");
    // The API's uptime: 1 Jan lost 20 min fully and 60 min at 0.3, of 36 h observed:
    // 100 × (1 − (1200 + 0.3 × 3600) / 129600) = 98.2407… → 98.24.
    let api_row = &comps[comps.find("<span class=\"name\">API</span>").unwrap()..];
    let api_row = &api_row[..api_row[1..].find("<span class=\"name\">").unwrap()];
    assert!(api_row.contains("98.24% uptime"), "{api_row}");
    assert_eq!(api_row.matches("<li class=\"day ").count(), 90);
    assert!(api_row.contains("<li class=\"day d-major_outage\" title=\"1 Jan: 20 min major outage, 1 h partial outage\"><span class=\"visually-hidden\">1 Jan: 20 min major outage, 1 h partial outage</span></li>"), "{api_row}");
    assert!(api_row.contains("title=\"2 Jan: no downtime\""));
    assert!(api_row.contains("<li class=\"day d-no_data\" title=\"31 Dec: no data\">"));
    // The last days' incidents, by date.
    let past = &h[h.find("id=\"past\"").unwrap()..];
    let jan2 = past.find("<h3>2 Jan 2026</h3>").unwrap();
    assert!(
        past[jan2..].find("Database slow").unwrap()
            < past[jan2..].find("<h3>1 Jan 2026</h3>").unwrap()
    );
    assert!(past.contains("No incidents reported."));
    // Feeds and the JSON are linked; no script anywhere.
    for link in [
        "history.atom",
        "history.rss",
        "api/v2/summary.json",
        "subscribe",
    ] {
        assert!(h.contains(&format!("href=\"{link}\"")), "{link}");
    }
    assert!(!h.to_lowercase().contains("<script"));

    // One incident with all its updates, at both of its names.
    for path in [
        format!("/status/acme/incidents/{inc}"),
        format!("/status/acme/incidents/{inc}.html"),
    ] {
        let r = get(&app.base, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.text.contains("<h1>Database slow</h1>"));
        assert!(r.text.contains("Found the cause.") && r.text.contains("into it."));
        assert!(r.text.contains("Database: Operational → Partial outage"));
        assert!(r.text.contains("href=\"../../assets/status.css?v="));
    }
    let r = get(&app.base, &format!("/status/acme/incidents/{planned}")).await;
    assert!(r.text.contains("Scheduled maintenance") && r.text.contains("Network upgrade"));
    assert_eq!(
        get(&app.base, "/status/acme/incidents/999999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app.base, "/status/acme/incidents/x").await.status,
        StatusCode::NOT_FOUND
    );
    // The history by month.
    for path in ["/status/acme/history", "/status/acme/history.html"] {
        let r = get(&app.base, path).await;
        assert_eq!(r.status, StatusCode::OK);
        let month = r.text.find("January 2026").unwrap();
        for name in ["Database slow", "Cache rebuild", "Network upgrade"] {
            assert!(r.text[month..].contains(name), "{name}");
        }
    }
    let _ = busy;
    // The page lives in its folder; an unknown page is 404.
    let r = get(&app.base, "/status/acme").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location"), "acme/");
    assert_eq!(
        get(&app.base, "/status/nope/").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app.base, "/status/%2F%2Fevil.example").await.status,
        StatusCode::NOT_FOUND
    );
    // The theme, the shared stylesheet, the JSON and the feeds.
    let theme = get(&app.base, "/status/acme/theme.css").await;
    assert_eq!(theme.header("content-type"), "text/css; charset=utf-8");
    assert!(theme.text.contains("--brand: #0b3d91;"), "{}", theme.text);
    let css = get(&app.base, "/status/assets/status.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    for path in routes("acme", &[inc]) {
        let r = get(&app.base, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        if path.ends_with(".json") {
            assert_eq!(r.header("content-type"), "application/json");
            assert_eq!(r.header("access-control-allow-origin"), "*");
            serde_json::from_str::<Value>(&r.text).expect("JSON");
        }
    }
    // Every relative link of the page leads somewhere.
    let page_url = Url::parse(&format!("{}/status/acme/", app.base)).unwrap();
    for link in relative_links(h) {
        let url = page_url.join(&link).unwrap();
        let r = send(client().get(url.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{link} → {url}");
    }
}

// ---------------------------------------------------------------- safety

const HOSTILE: &str = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";

async fn nothing_unpublished_reaches_a_reader_and_hostile_text_is_escaped(app: TestApp) {
    // An internal incident with a title and a note nobody outside may read.
    let internal = app
        .declare(json!({ "title": "SECRET-TITLE db password rotated wrong" }))
        .await;
    let internal_id = internal["id"].as_i64().unwrap();
    let number = internal["number"].as_str().unwrap().to_string();
    let note = app
        .post(
            &format!("/api/v1/incidents/{internal_id}/notes"),
            json!({ "body": "SECRET-NOTE the key is hunter2" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.body);
    // A page, its parts and a post about that incident, all named by an attacker.
    let mut p = new_page("safe", HOSTILE);
    p.description = format!("Described {HOSTILE} [x](javascript:alert(3))");
    let p = page_with(&app, p).await;
    let g = group(&app, p, HOSTILE).await;
    let c = component(&app, p, Some(g), HOSTILE).await;
    let post = publish(
        &app,
        p,
        NewPost {
            incident_id: Some(internal_id),
            ..incident(
                HOSTILE,
                &format!("Body {HOSTILE}"),
                vec![change(c, ComponentStatus::MajorOutage)],
            )
        },
    )
    .await;
    update(&app, post, "monitoring", HOSTILE).await;

    let page = get(&app.base, "/status/safe/").await;
    assert!(
        page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped, not dropped"
    );
    assert!(
        page.text.contains("href=\"#\">x</a>"),
        "a javascript: link is defused"
    );
    for path in routes("safe", &[post]) {
        let r = get(&app.base, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        for secret in ["SECRET-TITLE", "SECRET-NOTE", "hunter2", number.as_str()] {
            assert!(!r.text.contains(secret), "{path} shows {secret}");
        }
        if path.ends_with(".json") {
            // JSON escapes by its own rules; what matters is that it parses.
            serde_json::from_str::<Value>(&r.text).unwrap_or_else(|e| panic!("{path}: {e}"));
            continue;
        }
        let lower = r.text.to_lowercase();
        for raw in ["<script", "<img"] {
            assert!(!lower.contains(raw), "{path} carries {raw} unescaped");
        }
        // Feeds carry the description as plain text (where `javascript:` is
        // harmless words); no link anywhere may point there.
        for link in ["href=\"javascript:", "href=&quot;javascript:"] {
            assert!(!lower.contains(link), "{path} links to javascript:");
        }
        if !path.ends_with(".atom") && !path.ends_with(".rss") {
            assert!(
                !lower.contains("javascript:"),
                "{path} carries javascript: unescaped"
            );
        }
    }
}

async fn a_custom_domain_serves_its_page_at_the_root_and_nothing_else(app: TestApp) {
    let mut np = new_page("acme", "Acme");
    np.domain = Some(Domain::parse("domain", "status.acme.test").unwrap());
    let p = page_with(&app, np).await;
    let c = component(&app, p, None, "API").await;
    let inc = publish(
        &app,
        p,
        incident(
            "Slow API",
            "Looking.",
            vec![change(c, ComponentStatus::DegradedPerformance)],
        ),
    )
    .await;
    let on = |path: &'static str, host: &'static str| {
        let base = app.base.clone();
        async move { get_with(&base, path, &[("host", host)]).await }
    };
    let root = on("/", "status.acme.test").await;
    assert_eq!(root.status, StatusCode::OK, "{}", root.text);
    // The same bytes as at /status/acme/: its links are relative.
    assert_eq!(root.text, get(&app.base, "/status/acme/").await.text);
    // Port and case do not matter.
    assert_eq!(
        on("/", "Status.Acme.Test:8080").await.status,
        StatusCode::OK
    );
    // Every link of the page works on the domain too.
    let page_url = Url::parse("http://status.acme.test/").unwrap();
    for link in relative_links(&root.text) {
        let url = page_url.join(&link).unwrap();
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let r = get_with(&app.base, &path, &[("host", "status.acme.test")]).await;
        assert_eq!(r.status, StatusCode::OK, "{link} → {path}");
    }
    let r = get_with(
        &app.base,
        &format!("/incidents/{inc}"),
        &[("host", "status.acme.test")],
    )
    .await;
    assert!(r.text.contains("Slow API"));
    for path in [
        "/api/v2/summary.json",
        "/history.atom",
        "/subscribe",
        "/theme.css",
        "/index.html",
    ] {
        let r = get_with(&app.base, path, &[("host", "status.acme.test")]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    // Nothing else of the instance answers there, not even with a valid token.
    let bearer = format!("Bearer {}", app.admin_token);
    for path in [
        "/api/v1/incidents",
        "/login",
        "/assets/app.css",
        "/status/acme/",
        "/healthz",
    ] {
        let r = get_with(
            &app.base,
            path,
            &[("host", "status.acme.test"), ("authorization", &bearer)],
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{path} on the page's domain"
        );
    }
    // The instance's own host is unaffected.
    let r = app.get("/api/v1/incidents").await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn internal_pages_need_a_session_or_a_token(app: TestApp) {
    let mut np = new_page("staff", "Staff status");
    np.visibility = Visibility::Internal;
    let p = page_with(&app, np).await;
    component(&app, p, None, "VPN").await;
    // To a browser not signed in, an internal page is no page at all: the same
    // 404 as a slug nobody uses, which links staff to sign in and come back.
    for tail in ["", "index.html", "history", "incidents/1.html", "subscribe"] {
        let r = get(&app.base, &format!("/status/staff/{tail}")).await;
        let nobody = get(&app.base, &format!("/status/nobody/{tail}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{tail}");
        assert_eq!(r.status, nobody.status, "{tail}");
        assert_eq!(
            r.text.replace("staff", "SLUG"),
            nobody.text.replace("nobody", "SLUG"),
            "{tail}: must not tell it exists"
        );
        for h in ["cache-control", "location", "content-type", "vary"] {
            assert_eq!(r.header(h), nobody.header(h), "{tail}: {h}");
        }
    }
    let r = get(&app.base, "/status/staff/").await;
    assert!(
        r.text.contains("href=\"/login?next=%2Fstatus%2Fstaff%2F\""),
        "{}",
        r.text
    );
    // Documents answer as if there were no page at all.
    let missing = get(&app.base, "/status/nobody/api/v2/summary.json").await;
    for path in [
        "/status/staff/api/v2/summary.json",
        "/status/staff/history.atom",
        "/status/staff/theme.css",
    ] {
        let r = get(&app.base, path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.text, missing.text, "{path} must not tell it exists");
    }
    let forged = get_with(
        &app.base,
        "/status/staff/",
        &[(
            "authorization",
            "Bearer tcs_0000000000000000000000000000000000000000",
        )],
    )
    .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    // An API token (any role) reads everything; never from a shared cache.
    let (_, viewer) = app.user_with_role("viewer").await;
    let bearer = format!("Bearer {viewer}");
    for path in routes("staff", &[]) {
        let r = get_with(&app.base, &path, &[("authorization", &bearer)]).await;
        // Readers do not subscribe themselves to an internal page (an admin
        // adds its subscribers): there is no form to show.
        if path.ends_with("/subscribe") {
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
            continue;
        }
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("cache-control"), "private, no-cache", "{path}");
        assert_eq!(r.header("access-control-allow-origin"), "", "{path}");
    }
    // So does a signed-in browser.
    let web = crate::web_support::signed_in(&app, "viewer").await;
    let r = web.get("/status/staff/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(r.html.contains("Staff status") && r.html.contains("VPN"));
    // Never exported.
    let dir = std::env::temp_dir().join(crate::support::unique_name("tocsin-export"));
    let refused = export(
        &app.store,
        PageRef::Slug("staff".into()),
        "",
        true,
        now(&app),
        &dir,
    )
    .await;
    assert!(
        matches!(refused, Err(ExportError::Internal(_))),
        "{refused:?}"
    );
    assert!(!dir.exists());
    assert!(export_all(&app.store, "", true, now(&app), &dir)
        .await
        .unwrap()
        .exported
        .is_empty());
    assert!(!dir.join("staff").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- the cache

async fn a_change_shows_on_the_next_request(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    app.clock.set(t("2026-01-01T23:59:30Z"));
    let before = get(&app.base, "/status/acme/").await;
    assert!(before.text.contains("st-operational"));
    assert!(before.text.contains("title=\"1 Jan: no downtime\""));
    // No refresher runs here: the request itself notices.
    set_status(&app, api, ComponentStatus::MajorOutage).await;
    let after = get(&app.base, "/status/acme/").await;
    assert!(after.text.contains("st-major_outage"), "{}", after.text);
    assert!(after.text.contains("Major Service Outage"));
    assert_ne!(before.header("etag"), after.header("etag"));
    // Forty seconds later it is another day in the page's zone: the bars move.
    app.clock.set(t("2026-01-02T00:00:10Z"));
    let tomorrow = get(&app.base, "/status/acme/").await;
    assert!(
        tomorrow
            .text
            .contains("title=\"2 Jan: under 1 min major outage\""),
        "{}",
        tomorrow.text
    );
    // A page renamed, removed: the next request knows.
    let rename = StatusPageChanges {
        name: Some("Acme Cloud".into()),
        ..Default::default()
    };
    app.store
        .update_status_page(p, &rename, &actor(&app), now(&app))
        .await
        .unwrap();
    assert!(get(&app.base, "/status/acme/")
        .await
        .text
        .contains("Acme Cloud"));
    app.store
        .delete_status_page(p, &actor(&app), now(&app))
        .await
        .unwrap();
    assert_eq!(
        get(&app.base, "/status/acme/").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn a_warm_cache_needs_no_database_and_survives_its_loss(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    let inc = publish(
        &app,
        p,
        incident(
            "Slow API",
            "Looking.",
            vec![change(api, ComponentStatus::DegradedPerformance)],
        ),
    )
    .await;
    let (base, state, store) = second_node(&app).await;
    let paths = [
        "/status/acme/".to_string(),
        format!("/status/acme/incidents/{inc}.html"),
        "/status/acme/api/v2/summary.json".into(),
        "/status/acme/theme.css".into(),
    ];
    let mut warm = Vec::new();
    for path in &paths {
        let r = get(&base, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        warm.push(r.text);
    }
    let stats = state.status.stats();
    assert_eq!((stats.renders, stats.failures), (1, 0), "{stats:?}");
    // This node's database goes away: a warm cache does not notice, because it
    // does not ask (any query would fail and be counted).
    store.close().await;
    for _ in 0..3 {
        for (path, body) in paths.iter().zip(&warm) {
            let r = get(&base, path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            assert_eq!(&r.text, body, "{path}");
        }
    }
    assert_eq!(state.status.stats(), stats, "no query was made");
    // Two minutes on the page is due again; the read fails, the last page is served.
    app.clock.advance(Duration::minutes(2));
    let r = get(&base, "/status/acme/").await;
    assert_eq!((r.status, &r.text), (StatusCode::OK, &warm[0]));
    let failed = state.status.stats();
    assert_eq!(failed.failures, 1, "{failed:?}");
    // Nobody waits on the dead database again straight away.
    let r = get(&base, "/status/acme/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(state.status.stats(), failed);
    // A page never rendered has nothing to fall back on.
    assert_eq!(
        get(&base, "/status/other/").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn a_stale_rendering_of_a_page_made_internal_is_not_served_publicly(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    // Degraded: the page ages with the clock, so two minutes on it is due again.
    set_status(&app, api, ComponentStatus::DegradedPerformance).await;
    let (base, state, store) = second_node(&app).await;
    let summary = "/status/acme/api/v2/summary.json";
    assert_eq!(get(&base, "/status/acme/").await.status, StatusCode::OK);
    assert_eq!(get(&base, summary).await.status, StatusCode::OK);
    // This node's database goes away: its next render fails, the last
    // rendering is served, and for a few seconds it does not try again.
    store.close().await;
    app.clock.advance(Duration::minutes(2));
    let stale = get(&base, "/status/acme/").await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.header("cache-control"), "public, max-age=30");
    assert_eq!(state.status.stats().failures, 1);
    // Meanwhile the page is made internal (through another node), and this
    // node's index learns it (read while its database answered) — but its
    // render is still backing off, so only the public rendering is there.
    let hide = StatusPageChanges {
        visibility: Some(Visibility::Internal),
        ..Default::default()
    };
    app.store
        .update_status_page(p, &hide, &actor(&app), now(&app))
        .await
        .unwrap();
    let before = state.status.stats();
    let mut working = state.clone();
    working.store = app.store.clone();
    working.status.refresh(&working).await;
    let after = state.status.stats();
    assert_eq!(after.index_loads, before.index_loads + 1, "{after:?}");
    assert_eq!(after.renders, before.renders, "no render: {after:?}");
    // Anonymous readers get what they get for a page that does not exist,
    // never the stale public page, its public caching or its CORS header.
    let nobody = get(&base, "/status/nobody/").await;
    let r = get(&base, "/status/acme/").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(
        r.text.replace("acme", "SLUG"),
        nobody.text.replace("nobody", "SLUG")
    );
    let j = get(&base, summary).await;
    assert_eq!(j.status, StatusCode::NOT_FOUND);
    assert_eq!(
        j.text,
        get(&base, "/status/nobody/api/v2/summary.json").await.text
    );
    for got in [&r, &j] {
        assert_eq!(got.header("cache-control"), "no-store");
        assert_eq!(got.header("access-control-allow-origin"), "");
    }
}

async fn a_page_is_rendered_again_only_when_changed_ageing_or_at_midnight(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    app.clock.set(t("2026-01-01T12:00:00Z"));
    let (base, state, _store) = second_node(&app).await;
    let first = get(&base, "/status/acme/").await;
    assert_eq!(state.status.stats().renders, 1);
    // Nothing on it moves with the clock (no relative times; every component
    // operational all along): hours pass, polled every time, no render.
    for _ in 0..6 {
        app.clock.advance(Duration::minutes(90));
        state.status.refresh(&state).await;
        assert_eq!(get(&base, "/status/acme/").await.text, first.text);
    }
    assert_eq!(state.status.stats().renders, 1);
    // The page's midnight: the bars move a day.
    app.clock.set(t("2026-01-02T00:00:05Z"));
    state.status.refresh(&state).await;
    assert_eq!(state.status.stats().renders, 2);
    assert!(get(&base, "/status/acme/")
        .await
        .text
        .contains("title=\"2 Jan: no downtime\""));
    // A change (on another node): rendered once for it.
    set_status(&app, api, ComponentStatus::MajorOutage).await;
    state.status.refresh(&state).await;
    assert_eq!(state.status.stats().renders, 3);
    // Now today's bar counts the outage's minutes: made again each minute.
    app.clock.advance(Duration::seconds(30));
    state.status.refresh(&state).await;
    assert_eq!(state.status.stats().renders, 3, "not within the minute");
    app.clock.advance(Duration::seconds(45));
    state.status.refresh(&state).await;
    assert_eq!(state.status.stats().renders, 4);
    assert!(get(&base, "/status/acme/")
        .await
        .text
        .contains("title=\"2 Jan: 1 min major outage\""));
}

async fn another_nodes_change_arrives_by_polling_and_many_readers_cause_one_render(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    let (base, state, _store) = second_node(&app).await;
    // Twenty readers of a cold page: one render, the others wait for it.
    let reads = (0..20).map(|_| get(&base, "/status/acme/"));
    let pages = futures_util::future::join_all(reads).await;
    assert!(pages
        .iter()
        .all(|r| r.status == StatusCode::OK && r.text == pages[0].text));
    assert_eq!(state.status.stats().renders, 1);
    // A change committed through the other node: this one's watch does not move…
    set_status(&app, api, ComponentStatus::MajorOutage).await;
    assert!(get(&base, "/status/acme/")
        .await
        .text
        .contains("st-operational"));
    assert_eq!(state.status.stats().renders, 1);
    // …until it polls the versions, as its refresher does every second.
    state.status.refresh(&state).await;
    assert_eq!(state.status.stats().renders, 2);
    assert!(get(&base, "/status/acme/")
        .await
        .text
        .contains("st-major_outage"));
    // The refresher stops on shutdown.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(tocsin_server::status::run_refresher(state.clone(), stopped));
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("the refresher stops")
        .unwrap();
}

async fn conditional_requests_and_headers(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    // An hour in, today's bar has data, and another minute changes no word of it.
    app.clock.advance(Duration::hours(1));
    let r = get(&app.base, "/status/acme/").await;
    assert_eq!(
        r.header("content-security-policy"),
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("cache-control"), "public, max-age=30");
    assert_eq!(
        r.header("access-control-allow-origin"),
        "",
        "pages are not for scripts"
    );
    let etag = r.header("etag").to_string();
    assert!(etag.starts_with('"'), "{etag}");
    for tag in [etag.clone(), format!("W/{etag}"), format!("\"x\", {etag}")] {
        let again = get_with(&app.base, "/status/acme/", &[("if-none-match", &tag)]).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{tag}");
        assert!(again.text.is_empty());
        assert_eq!(again.header("etag"), etag);
        assert_eq!(again.header("cache-control"), "public, max-age=30");
    }
    let other = get_with(&app.base, "/status/acme/", &[("if-none-match", "\"1-0\"")]).await;
    assert_eq!(other.status, StatusCode::OK);
    // The JSON may be read from other sites, 304 included.
    let json = get(&app.base, "/status/acme/api/v2/status.json").await;
    assert_eq!(json.header("access-control-allow-origin"), "*");
    let json_tag = json.header("etag").to_string();
    let again = get_with(
        &app.base,
        "/status/acme/api/v2/status.json",
        &[("if-none-match", &json_tag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.header("access-control-allow-origin"), "*");
    // Rendered again a minute later with nothing changed: the same tag.
    app.clock.advance(Duration::seconds(61));
    let same = get_with(&app.base, "/status/acme/", &[("if-none-match", &etag)]).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    // Changed: a new tag, and the body.
    set_status(&app, api, ComponentStatus::PartialOutage).await;
    let changed = get_with(&app.base, "/status/acme/", &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), etag);
    // Refusals carry the same policy and are never cached.
    let missing = get(&app.base, "/status/nope/").await;
    assert_eq!(missing.header("cache-control"), "no-store");
    assert!(missing
        .header("content-security-policy")
        .starts_with("default-src 'none'"));
}

// ---------------------------------------------------------------- subscribers

/// A browser at the subscription form: its cookie and the form's token.
struct Form {
    cookie: String,
    csrf: String,
}

async fn open_form(base: &str, slug: &str) -> Form {
    let r = get(base, &format!("/status/{slug}/subscribe")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("cache-control"), "no-store");
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("tocsin_status_csrf="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a form cookie");
    Form {
        cookie,
        csrf: crate::web_support::csrf_of(&r.text),
    }
}

static CLIENT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// A client address of its own per request (through a proxy on this machine),
/// so the per-client limit stays out of the way unless a test wants it.
fn fresh_client() -> String {
    let n = CLIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("198.51.{}.{}", n / 250, n % 250)
}

async fn post_form(base: &str, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Got {
    let mut req = client()
        .post(format!("{base}{path}"))
        .header("x-forwarded-for", fresh_client())
        .form(fields);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    send(req).await
}

async fn post_json(base: &str, path: &str, client_addr: &str, body: Value) -> Got {
    send(
        client()
            .post(format!("{base}{path}"))
            .header("x-forwarded-for", client_addr)
            .json(&body),
    )
    .await
}

/// The answer's message: the same words for every address.
fn said(html: &str) -> &str {
    let at = html.find("id=\"message\"").expect("a message");
    html[at..].split("</p>").next().unwrap()
}

// A server with no SMTP relay could never send the confirmation: its pages
// offer no email subscription, and the form's routes answer as for a page that
// takes none, writing nothing.
async fn without_a_mail_relay_no_email_subscription_is_offered(app: TestApp) {
    page(&app, "acme").await;
    let with_relay = get(&app.base, "/status/acme/").await;
    assert!(with_relay.text.contains("Subscribe to updates"));
    let (base, state, _store) = second_node(&app).await;
    assert!(!state.status_email);
    let counts = app.counts().await;
    let r = get(&base, "/status/acme/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.text.contains("Subscribe to updates"), "{}", r.text);
    assert_eq!(
        get(&base, "/status/acme/subscribe").await.status,
        StatusCode::NOT_FOUND
    );
    let posted = post_form(
        &base,
        "/status/acme/subscribe",
        None,
        &[("email", "a@example.com")],
    )
    .await;
    assert_eq!(posted.status, StatusCode::NOT_FOUND);
    assert_eq!(app.counts().await, counts);
}

async fn subscribing_answers_the_same_for_every_address(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    let path = "/status/acme/subscribe";
    let form = open_form(&app.base, "acme").await;
    let fields = |email: &'static str| [("_csrf", form.csrf.clone()), ("email", email.to_string())];
    let as_refs =
        |f: &[(&'static str, String)]| f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let post = |f: Vec<(&'static str, String)>| {
        let cookie = form.cookie.clone();
        let base = app.base.clone();
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&base, path, Some(&cookie), &f).await
        }
    };
    let counts = app.counts().await;
    // Without the form's cookie: refused, nothing written.
    let r = post_form(
        &app.base,
        path,
        None,
        &[("_csrf", &form.csrf), ("email", "a@example.com")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("The form had expired"));
    // A malformed address: refused naming the field, the form shown again.
    let r = post(as_refs(&fields("not-an-email"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        said(&r.text).contains("Email address: `not-an-email` is not an email address."),
        "{}",
        r.text
    );
    assert!(r.text.contains("value=\"not-an-email\""));
    let r = post_json(&app.base, path, &fresh_client(), json!({ "email": "nope" })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(
        (
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (Some("invalid_field"), Some("email"))
    );
    let r = post_json(
        &app.base,
        path,
        &fresh_client(),
        json!({ "email": "a@example.com", "x": 1 }),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = post_json(
        &app.base,
        path,
        &fresh_client(),
        json!({ "email": "a@example.com", "component_ids": [999999] }),
    )
    .await;
    let body: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(body["error"]["field"], "component_ids[0]");
    assert_eq!(app.counts().await, counts, "refusals write nothing");

    // New: a confirmation is queued.
    let first = post(as_refs(&fields("reader@example.com"))).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let answer = said(&first.text).to_string();
    assert!(answer.contains("If this address is not subscribed yet"));
    assert_eq!(deliveries(&app).await, 1);
    // Pending, asked again at once: the same answer, no second mail yet.
    let again = post(as_refs(&fields("reader@example.com"))).await;
    assert_eq!(
        (again.status, said(&again.text)),
        (StatusCode::OK, answer.as_str())
    );
    assert_eq!(deliveries(&app).await, 1);
    // Pending, asked again later: the same answer and another confirmation.
    app.clock.advance(Duration::minutes(11));
    let later = post(as_refs(&fields("reader@example.com"))).await;
    assert_eq!(said(&later.text), answer);
    assert_eq!(deliveries(&app).await, 2);
    // Confirmed: the same answer, nothing sent, nothing changed.
    let sub = app
        .store
        .subscribers(p, None, 1000)
        .await
        .unwrap()
        .remove(0);
    let link = app
        .store
        .subscriber_link(sub.id, LinkPurpose::Confirm, now(&app))
        .await
        .unwrap();
    app.store
        .confirm_subscriber(&link, now(&app))
        .await
        .unwrap();
    let confirmed = post(as_refs(&fields("reader@example.com"))).await;
    assert_eq!(said(&confirmed.text), answer);
    assert_eq!(deliveries(&app).await, 2);
    // JSON: one answer for new and for confirmed addresses too.
    let new = post_json(
        &app.base,
        path,
        &fresh_client(),
        json!({ "email": "other@example.com", "component_ids": [api] }),
    )
    .await;
    let old = post_json(
        &app.base,
        path,
        &fresh_client(),
        json!({ "email": "reader@example.com" }),
    )
    .await;
    assert_eq!(
        (new.status, old.status),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_eq!(new.text, old.text);
    assert_eq!(deliveries(&app).await, 3);
    let other = app
        .store
        .subscribers(p, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.address == "other@example.com")
        .unwrap();
    assert_eq!(other.component_ids, vec![api]);
    // The form's component choice is kept too; a mangled one is named.
    let r = post(vec![
        ("_csrf", form.csrf.clone()),
        ("email", "fourth@example.com".into()),
        ("component_ids", "x".into()),
    ])
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(said(&r.text).contains("Components: `x` is not a component."));
    let r = post(vec![
        ("_csrf", form.csrf.clone()),
        ("email", "third@example.com".into()),
        ("component_ids", api.to_string()),
    ])
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let third = app
        .store
        .subscribers(p, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.address == "third@example.com")
        .unwrap();
    assert_eq!(third.component_ids, vec![api]);

    // One client gets a handful of tries, then waits; others do not.
    let flood = "203.0.113.50";
    let mut answers = Vec::new();
    for _ in 0..11 {
        answers.push(post_json(&app.base, path, flood, json!({ "email": "x" })).await);
    }
    assert!(answers[..10]
        .iter()
        .all(|r| r.status == StatusCode::BAD_REQUEST));
    assert_eq!(answers[10].status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answers[10].header("retry-after"), "60");
    let elsewhere = post_json(&app.base, path, "203.0.113.51", json!({ "email": "x" })).await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);

    // A page that takes no subscribers has no form.
    let mut closed = new_page("closed", "Closed");
    closed.allow_subscribers = false;
    page_with(&app, closed).await;
    assert_eq!(
        get(&app.base, "/status/closed/subscribe").await.status,
        StatusCode::NOT_FOUND
    );
    let r = post_json(
        &app.base,
        "/status/closed/subscribe",
        &fresh_client(),
        json!({ "email": "a@example.com" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!get(&app.base, "/status/closed/")
        .await
        .text
        .contains("Subscribe to updates"));
}

async fn confirm_and_unsubscribe_links(app: TestApp) {
    let p = page(&app, "acme").await;
    page(&app, "beta").await;
    let email = EmailAddress::parse("email", "reader@example.com").unwrap();
    app.store
        .subscribe_email(p, &email, &[], now(&app))
        .await
        .unwrap();
    let sub = app
        .store
        .subscribers(p, None, 1000)
        .await
        .unwrap()
        .remove(0);
    let confirm = app
        .store
        .subscriber_link(sub.id, LinkPurpose::Confirm, now(&app))
        .await
        .unwrap();
    let unsub = app
        .store
        .subscriber_link(sub.id, LinkPurpose::Unsubscribe, now(&app))
        .await
        .unwrap();
    // A character inside the payload, where every base64 digit is a full six
    // bits (the last one is not: changing it may only make the token malformed).
    let mut forged: Vec<char> = confirm.chars().collect();
    forged[3] = if forged[3] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let enc = |t: &str| form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
    let counts = app.counts().await;

    // Following the link shows a button; it does not confirm by itself.
    let r = get(
        &app.base,
        &format!("/status/acme/confirm?token={}", enc(&confirm)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r
        .text
        .contains("Send updates from Acme to reader@example.com?"));
    assert!(r.text.contains(">Confirm subscription</button>"));
    assert!(!app.store.subscriber(sub.id).await.unwrap().confirmed);
    // Forged, the wrong kind, another page's, or none: refused, nothing changes.
    for (path, why) in [
        (
            format!("/status/acme/confirm?token={}", enc(&forged)),
            "altered",
        ),
        (
            format!("/status/acme/confirm?token={}", enc(&unsub)),
            "something else",
        ),
        (
            format!("/status/beta/confirm?token={}", enc(&confirm)),
            "another status page",
        ),
        ("/status/acme/confirm".to_string(), "no token"),
    ] {
        let got = get(&app.base, &path).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(got.text.contains(why), "{path}: {}", got.text);
        let posted = post_form(&app.base, &path, None, &[]).await;
        assert_eq!(posted.status, StatusCode::BAD_REQUEST, "POST {path}");
    }
    assert_eq!(app.counts().await, counts, "refused links change nothing");
    assert!(!app.store.subscriber(sub.id).await.unwrap().confirmed);
    // The button posts the token back: confirmed.
    let r = post_form(
        &app.base,
        "/status/acme/confirm",
        None,
        &[("token", &confirm)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("You are subscribed"));
    assert!(app.store.subscriber(sub.id).await.unwrap().confirmed);
    let r = get_with(
        &app.base,
        &format!("/status/acme/confirm?token={}", enc(&confirm)),
        &[("accept", "application/json")],
    )
    .await;
    let body: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(
        (body["email"].as_str(), body["confirmed"].as_bool()),
        (Some("reader@example.com"), Some(true))
    );

    // Unsubscribing: a page with a button, then the one-click POST mail clients send.
    let path = format!("/status/acme/unsubscribe?token={}", enc(&unsub));
    let r = get(&app.base, &path).await;
    assert!(r
        .text
        .contains("Stop sending updates from Acme to reader@example.com?"));
    assert_eq!(app.store.subscribers(p, None, 1000).await.unwrap().len(), 1);
    let forged_unsub = format!(
        "/status/acme/unsubscribe?token={}",
        enc(&format!("{unsub}x"))
    );
    assert_eq!(
        post_form(
            &app.base,
            &forged_unsub,
            None,
            &[("List-Unsubscribe", "One-Click")]
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.store.subscribers(p, None, 1000).await.unwrap().len(), 1);
    let r = post_form(&app.base, &path, None, &[("List-Unsubscribe", "One-Click")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r
        .text
        .contains("reader@example.com will get no more updates from Acme."));
    assert!(app
        .store
        .subscribers(p, None, 1000)
        .await
        .unwrap()
        .is_empty());
    // The link died with the subscription.
    assert_eq!(
        post_form(&app.base, &path, None, &[]).await.status,
        StatusCode::NOT_FOUND
    );

    // A confirmation link expires.
    let email = EmailAddress::parse("email", "late@example.com").unwrap();
    app.store
        .subscribe_email(p, &email, &[], now(&app))
        .await
        .unwrap();
    let late = app
        .store
        .subscribers(p, None, 1000)
        .await
        .unwrap()
        .remove(0);
    let link = app
        .store
        .subscriber_link(late.id, LinkPurpose::Confirm, now(&app))
        .await
        .unwrap();
    app.clock.advance(Duration::days(8));
    let r = get(
        &app.base,
        &format!("/status/acme/confirm?token={}", enc(&link)),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("expired"), "{}", r.text);
    let r = post_form(&app.base, "/status/acme/confirm", None, &[("token", &link)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!app.store.subscriber(late.id).await.unwrap().confirmed);
}

// ---------------------------------------------------------------- export

async fn the_export_is_what_the_server_serves(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    let inc = publish(
        &app,
        p,
        incident(
            "Slow API",
            "Looking.",
            vec![change(api, ComponentStatus::DegradedPerformance)],
        ),
    )
    .await;
    let png = b"\x89PNG\r\n\x1a\nnot really an image".to_vec();
    app.store
        .set_status_page_logo(p, Some(("image/png", &png)), &actor(&app), now(&app))
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(crate::support::unique_name("tocsin-export"));
    let site = dir.join("acme");
    let slug = export(
        &app.store,
        PageRef::Slug("acme".into()),
        "",
        true,
        now(&app),
        &site,
    )
    .await
    .unwrap();
    assert_eq!(slug, "acme");
    let mut files = vec![
        "index.html".to_string(),
        "history.html".into(),
        format!("incidents/{inc}.html"),
        "history.atom".into(),
        "history.rss".into(),
        "theme.css".into(),
        "assets/status.css".into(),
        "logo.png".into(),
    ];
    for doc in [
        "summary",
        "status",
        "components",
        "incidents",
        "incidents/unresolved",
        "scheduled-maintenances",
        "scheduled-maintenances/upcoming",
        "scheduled-maintenances/active",
    ] {
        files.push(format!("api/v2/{doc}.json"));
    }
    for f in &files {
        assert!(site.join(f).is_file(), "{f} was written");
    }
    assert_eq!(std::fs::read(site.join("logo.png")).unwrap(), png);
    // Byte for byte what the server serves.
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert_eq!(index, get(&app.base, "/status/acme/").await.text);
    let incident_page =
        std::fs::read_to_string(site.join(format!("incidents/{inc}.html"))).unwrap();
    assert_eq!(
        incident_page,
        get(&app.base, &format!("/status/acme/incidents/{inc}"))
            .await
            .text
    );
    // Served as a site root, every link of every page is a file.
    for page in [
        "index.html",
        "history.html",
        &format!("incidents/{inc}.html"),
    ] {
        let html = std::fs::read_to_string(site.join(page)).unwrap();
        let url = Url::parse("http://static.example/")
            .unwrap()
            .join(page)
            .unwrap();
        for link in relative_links(&html) {
            if link.ends_with("subscribe") {
                continue; // the form needs the live server
            }
            let target = url.join(&link).unwrap();
            let mut file = site.join(target.path().trim_start_matches('/'));
            if target.path().ends_with('/') {
                file = file.join("index.html");
            }
            assert!(file.is_file(), "{page}: {link} → {}", file.display());
        }
    }
    assert!(
        index.contains("src=\"logo.png?v="),
        "the logo is linked by its file name"
    );
    // Exporting a change replaces the folder whole.
    std::fs::write(site.join("stale.html"), "old").unwrap();
    set_status(&app, api, ComponentStatus::MajorOutage).await;
    export(&app.store, PageRef::Id(p), "", true, now(&app), &site)
        .await
        .unwrap();
    assert!(!site.join("stale.html").exists());
    assert!(site.join("index.html").is_file());
    // A folder that is not an export is never replaced.
    let precious = dir.join("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("keep.txt"), "mine").unwrap();
    let refused = export(&app.store, PageRef::Id(p), "", true, now(&app), &precious).await;
    assert!(
        matches!(refused, Err(ExportError::NotAnExport(_))),
        "{refused:?}"
    );
    assert!(precious.join("keep.txt").is_file());
    assert!(matches!(
        export(
            &app.store,
            PageRef::Slug("nope".into()),
            "",
            true,
            now(&app),
            &dir.join("nope")
        )
        .await,
        Err(ExportError::NoPage(_))
    ));
    // All public pages, one folder each; a page made internal loses its folder.
    let all = dir.join("all");
    page(&app, "beta").await;
    let mut slugs = export_all(&app.store, "", true, now(&app), &all)
        .await
        .unwrap()
        .exported;
    slugs.sort();
    assert_eq!(slugs, ["acme", "beta"]);
    assert!(all.join("assets/status.css").is_file() && all.join("beta/index.html").is_file());
    let hide = StatusPageChanges {
        visibility: Some(Visibility::Internal),
        ..Default::default()
    };
    app.store
        .update_status_page(p, &hide, &actor(&app), now(&app))
        .await
        .unwrap();
    assert_eq!(
        export_all(&app.store, "", true, now(&app), &all)
            .await
            .unwrap()
            .exported,
        ["beta"]
    );
    assert!(!all.join("acme").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
