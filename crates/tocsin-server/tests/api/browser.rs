//! The web UI in a real headless Chromium (through ChromeDriver): signing in,
//! declaring and working an incident, live updates without reload, hostile
//! alert text, forged forms, viewers, and the screenshots in docs/screenshots/.
//!
//! SQLite only: the page logic is covered on both back ends by the HTTP page
//! tests (web.rs); these check what only a browser shows. Skipped, saying so,
//! where Chromium or ChromeDriver is not installed.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{spawn_app, Db, TestApp};
use crate::web_support::{web_user, PASSWORD};
use crate::webdriver::{available, wait_for, Browser, Driver, ELEMENT};

const EVIL: &str = "<img src=x onerror=alert(1)>";
/// Would set a flag if its handler ever ran.
const EVIL_FLAG: &str = "<img src=x onerror=window.__xss=1>";

/// The browser (its turn taken) and a fresh server; None when skipped.
pub(crate) async fn setup() -> Option<(Arc<Driver>, TestApp)> {
    if !available() {
        return None;
    }
    let driver = Driver::start().await;
    let app = spawn_app(Db::Sqlite).await.expect("sqlite app");
    Some((driver, app))
}

/// Signs in through the sign-in form and lands on the dashboard.
async fn sign_in(b: &Browser, app: &TestApp, email: &str) {
    b.goto(&format!("{}/login", app.base)).await;
    b.type_into("#email", email).await;
    b.type_into("#password", PASSWORD).await;
    b.click_on("main form button[type=submit]").await;
    b.wait_path("/").await;
    b.wait_text("main h1", "is Dashboard", |t| t == "Dashboard")
        .await;
}

/// A new user with `role` signed in in a new session.
async fn session_as(driver: &Arc<Driver>, app: &TestApp, role: &str) -> Browser {
    let (_, email) = web_user(app, role).await;
    let b = driver.session().await;
    sign_in(&b, app, &email).await;
    b
}

/// Declares through /incidents/new; lands on the incident's page; its number.
async fn declare_in_page(b: &Browser, app: &TestApp, title: &str, severity: &str) -> String {
    b.goto(&format!("{}/incidents/new", app.base)).await;
    b.type_into("#title", title).await;
    b.wait_find("#severity").await;
    let mut chosen = false;
    for o in b.find_all("#severity option").await.unwrap() {
        if b.text(&o).await.unwrap() == severity {
            b.click(&o).await.unwrap();
            chosen = true;
        }
    }
    assert!(chosen, "severity {severity} is offered");
    // No service, so nobody to page: untick "Page the service's on-call".
    let page = b.wait_find("#declare-form input[name=page]").await;
    if b.execute(
        "return arguments[0].checked;",
        vec![json!({ ELEMENT: page })],
    )
    .await
    .unwrap()
        == json!(true)
    {
        b.click(&page).await.unwrap();
    }
    b.click_on("#declare-form button[type=submit]").await;
    let number = wait_for("the incident's page", || async {
        let url = b.current_url().await;
        let (_, n) = url.rsplit_once("/incidents/INC-")?;
        n.parse::<u64>().ok().map(|n| format!("INC-{n}"))
    })
    .await;
    b.wait_path(&format!("/incidents/{number}")).await;
    number
}

async fn incident(app: &TestApp, number: &str) -> Value {
    let r = app.get(&format!("/api/v1/incidents/{number}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn incident_total(app: &TestApp) -> usize {
    let r = app.get("/api/v1/incidents").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().len()
}

/// Sends a PagerDuty Events v2 trigger for a new service; its routing key.
async fn pd_alert(app: &TestApp, routing_key: Option<String>, summary: &str) -> String {
    let key = match routing_key {
        Some(k) => k,
        None => {
            let svc = app
                .post("/api/v1/services", json!({ "name": "edge" }))
                .await;
            let sid = svc.body["id"].as_i64().unwrap();
            let key = app
                .post(
                    &format!("/api/v1/services/{sid}/integration-keys"),
                    json!({ "name": "pd" }),
                )
                .await;
            assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
            key.body["secret"].as_str().unwrap().to_string()
        }
    };
    let r = app
        .client
        .post(format!("{}/v2/enqueue", app.base))
        .json(&json!({ "routing_key": key, "event_action": "trigger",
            "payload": { "summary": summary, "source": "<script>alert(2)</script>",
                "severity": "critical" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    key
}

/// a. Sign in through the form, declare through /incidents/new, land on the
/// incident's page; the incident is stored as typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_declare() {
    let Some((driver, app)) = setup().await else {
        return;
    };
    let b = session_as(&driver, &app, "responder").await;
    // The dashboard offers the declare form to a responder.
    b.wait_find("a[href='/incidents/new']").await;
    let number = declare_in_page(&b, &app, "Checkout returns 502", "SEV2").await;
    let inc = incident(&app, &number).await;
    assert_eq!(inc["title"], "Checkout returns 502");
    assert_eq!(inc["severity"], "SEV2");
    assert_eq!(inc["status"], "triggered");
}

/// a. The incident room: acknowledge, a note in the timeline, resolve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_an_incident_in_its_room() {
    let Some((driver, app)) = setup().await else {
        return;
    };
    let b = session_as(&driver, &app, "responder").await;
    let number = declare_in_page(&b, &app, "Search is slow", "SEV3").await;
    b.wait_text("#incident-status", "is triggered", |t| t == "triggered")
        .await;

    b.click_on("#room-head button[name=status][value=acknowledged]")
        .await;
    confirm_if_asked(&b).await;
    b.wait_text("#incident-status", "becomes acknowledged", |t| {
        t == "acknowledged"
    })
    .await;
    assert_eq!(incident(&app, &number).await["status"], "acknowledged");

    let note = "Rolled back the index change; latency recovering";
    b.type_into("#note-body", note).await;
    b.click_on("#note-submit").await;
    b.wait_text("#timeline", "shows the note", |t| t.contains(note))
        .await;
    let id = incident(&app, &number).await["id"].as_i64().unwrap();
    let timeline = app.timeline(id).await;
    assert!(
        timeline.iter().any(|e| e.to_string().contains(note)),
        "{timeline:?}"
    );

    b.click_on("button[name=status][value=resolved]").await;
    confirm_if_asked(&b).await;
    b.wait_text("#incident-status", "becomes resolved", |t| t == "resolved")
        .await;
    assert_eq!(incident(&app, &number).await["status"], "resolved");
}

/// A `data-confirm` form asks first: say yes.
async fn confirm_if_asked(b: &Browser) {
    if b.alert_text().await.is_ok() {
        b.accept_alert().await.unwrap();
    }
}

/// b. A second session on the dashboard sees a new incident and its status
/// change arrive without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_updates_live() {
    let Some((driver, app)) = setup().await else {
        return;
    };
    let first = session_as(&driver, &app, "responder").await;
    let watcher = session_as(&driver, &app, "viewer").await;
    watcher.execute("window.__stay = 1;", vec![]).await.unwrap();
    // The live connection is open (else a change could come before it).
    wait_for("the live connection", || async {
        let v = watcher
            .execute(
                "return document.body.hasAttribute('data-live-seen');",
                vec![],
            )
            .await
            .ok()?;
        v.as_bool().filter(|b| *b)
    })
    .await;
    assert!(watcher
        .text_of("#open")
        .await
        .unwrap()
        .contains("Nothing is open"));

    let title = "Payments webhook queue is backing up";
    let number = declare_in_page(&first, &app, title, "SEV1").await;
    watcher
        .wait_text("#open", "lists the new incident", |t| t.contains(title))
        .await;
    let row = format!("#open tr[data-incident='{number}'] .status");
    assert_eq!(watcher.text_of(&row).await.unwrap(), "triggered");

    let id = incident(&app, &number).await["id"].as_i64().unwrap();
    let r = app.move_to(id, "acknowledged").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    watcher
        .wait_text(&row, "becomes acknowledged", |t| t == "acknowledged")
        .await;
    let stay = watcher
        .execute("return window.__stay;", vec![])
        .await
        .unwrap();
    assert_eq!(stay, json!(1), "the dashboard was not reloaded");
}

/// c. An alert's hostile summary is shown as text on every page that shows
/// it: no element made of it, no script run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_alert_text_stays_text() {
    let Some((driver, app)) = setup().await else {
        return;
    };
    let key = pd_alert(&app, None, EVIL).await;
    pd_alert(&app, Some(key), EVIL_FLAG).await;
    let b = session_as(&driver, &app, "viewer").await;
    let mut checked = 0;
    for path in ["/", "/incidents", "/incidents/INC-1", "/alerts"] {
        if b.status_of(path).await == 404 {
            eprintln!("note: {path} is not there yet; not checked");
            continue;
        }
        b.goto(&format!("{}{path}", app.base)).await;
        // An alert() would be open now (the image fails before the load ends).
        match b.alert_text().await {
            Err(e) if e.error == "no such alert" => {}
            other => panic!("{path}: a dialog is open: {other:?}"),
        }
        let text = b.text_of("main").await.unwrap();
        assert!(text.contains(EVIL), "{path}: {text}");
        let made = b
            .execute(
                "return Array.from(document.querySelectorAll('img, script')).filter(function (e) {
                   return e.getAttribute('src') === 'x' || e.hasAttribute('onerror')
                     || e.textContent.indexOf('alert(2)') >= 0; }).length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(made, json!(0), "{path}: an element was made of alert text");
        let flag = b
            .execute("return window.__xss === undefined;", vec![])
            .await
            .unwrap();
        assert_eq!(flag, json!(true), "{path}: an onerror handler ran");
        checked += 1;
    }
    assert!(checked >= 2);
}

/// d. A declare form without its `_csrf` token is refused and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_without_token_is_refused() {
    let Some((driver, app)) = setup().await else {
        return;
    };
    let b = session_as(&driver, &app, "responder").await;
    b.goto(&format!("{}/incidents/new", app.base)).await;
    b.type_into("#title", "Forged").await;
    let removed = b
        .execute(
            "var t = document.querySelector('#declare-form input[name=_csrf]');
             if (!t) return false; t.remove(); return true;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(removed, json!(true));
    b.click_on("#declare-form button[type=submit]").await;
    let msg = b.wait_find("#error-message").await;
    assert_eq!(
        b.attribute(&msg, "data-code").await.unwrap().as_deref(),
        Some("csrf")
    );
    assert!(b
        .text(&msg)
        .await
        .unwrap()
        .contains("not sent from this site"));
    let title = b.execute("return document.title;", vec![]).await.unwrap();
    assert!(title.as_str().unwrap().starts_with("403"), "{title}");
    assert_eq!(incident_total(&app).await, 0);
}

/// A POST from the page's own script with the session's right token; its status.
async fn post_from_page(b: &Browser, path: &str, fields: &[(&str, &str)]) -> u64 {
    let v = b
        .execute_async(
            "var path = arguments[0], fields = arguments[1], done = arguments[arguments.length - 1];
             var body = new URLSearchParams();
             body.append('_csrf', document.querySelector('input[name=_csrf]').value);
             fields.forEach(function (f) { body.append(f[0], f[1]); });
             fetch(path, { method: 'POST', body: body, credentials: 'same-origin', redirect: 'manual' })
               .then(function (r) { done(r.status); }, function (e) { done(String(e)); });",
            vec![json!(path), json!(fields)],
        )
        .await
        .unwrap();
    v.as_u64().unwrap_or_else(|| panic!("POST {path}: {v}"))
}

/// e. A viewer's dashboard offers no declaring, and a declare sent from the
/// page's script with the right token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_cannot_declare() {
    let Some((driver, app)) = setup().await else {
        return;
    };
    let b = session_as(&driver, &app, "viewer").await;
    assert!(b
        .find_all("a[href='/incidents/new']")
        .await
        .unwrap()
        .is_empty());
    let before = app.counts().await;
    let status = post_from_page(&b, "/incidents", &[("title", "Viewer's")]).await;
    assert_eq!(status, 403);
    assert_eq!(app.counts().await, before);
}

/// e. A viewer's incident page has no status buttons and no note form, and a
/// status change sent from the page's script with the right token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_cannot_work_an_incident() {
    let Some((driver, app)) = setup().await else {
        return;
    };
    let inc = app
        .declare(json!({ "title": "Disk almost full", "severity": "SEV3" }))
        .await;
    let b = session_as(&driver, &app, "viewer").await;
    b.goto(&format!("{}/incidents/INC-1", app.base)).await;
    b.wait_text("#incident-status", "is triggered", |t| t == "triggered")
        .await;
    for css in ["button[name=status]", "#note-body", "#note-submit"] {
        assert!(b.find_all(css).await.unwrap().is_empty(), "{css}");
    }
    let before = app.counts().await;
    let status = post_from_page(&b, "/incidents/INC-1/status", &[("status", "acknowledged")]).await;
    assert_eq!(status, 403);
    assert_eq!(app.counts().await, before);
    assert_eq!(
        incident(&app, inc["number"].as_str().unwrap()).await["status"],
        "triggered"
    );
}

/// Where screenshots go: docs/screenshots/ when TOCSIN_SCREENSHOTS=1, else
/// target/screenshots/ (ordinary runs leave the source tree alone).
pub(crate) fn screenshot_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = if std::env::var("TOCSIN_SCREENSHOTS").as_deref() == Ok("1") {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Services, a schedule, alerts and incidents in several states, as a team has.
async fn seed(app: &TestApp) {
    // The page's ticking ages are counted from the browser's (real) clock.
    app.clock
        .set(chrono::Utc::now() - chrono::Duration::minutes(185));
    let mut people = vec![];
    for name in ["Grace", "Linus", "Margaret"] {
        people.push(crate::support::user(app, name).await);
    }
    let r = app
        .post(
            "/api/v1/schedules",
            json!({ "name": "Primary on-call", "time_zone": "Europe/Berlin",
                "layers": [{ "name": "weekly", "users": people, "start": "2025-12-01T08:00:00Z",
                    "turn": "weekly", "handoff": "09:00" }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let schedule = r.body["id"].as_i64().unwrap();
    // Someone covers tomorrow evening, and a policy pages the schedule then a person.
    let now = tocsin_core::time::Clock::now(&app.clock);
    let r = app
        .post(
            &format!("/api/v1/schedules/{schedule}/overrides"),
            json!({ "user_id": people[2],
                "starts_at": (now + chrono::Duration::hours(20)).to_rfc3339(),
                "ends_at": (now + chrono::Duration::hours(32)).to_rfc3339() }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            "/api/v1/escalation-policies",
            json!({ "name": "Checkout", "repeat": 1, "levels": [
                { "targets": [{ "schedule": schedule }], "delay_minutes": 10 },
                { "targets": [{ "user": people[1] }], "delay_minutes": 15 }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut services = vec![];
    for name in ["checkout", "search", "payments-api"] {
        let r = app.post("/api/v1/services", json!({ "name": name })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        services.push(r.body["id"].as_i64().unwrap());
    }
    let key = app
        .post(
            &format!("/api/v1/services/{}/integration-keys", services[0]),
            json!({ "name": "prometheus" }),
        )
        .await;
    let key = key.body["secret"].as_str().unwrap().to_string();
    for summary in [
        "Checkout p99 latency above 2 s for 10 minutes",
        "5xx rate above 5% on checkout-web",
    ] {
        pd_alert(app, Some(key.clone()), summary).await;
    }
    for (title, severity, service, status) in [
        (
            "Search results are stale in eu-west",
            "SEV2",
            services[1],
            "investigating",
        ),
        (
            "Card payments declined for Visa",
            "SEV1",
            services[2],
            "acknowledged",
        ),
        ("Slow admin dashboard", "SEV4", services[1], "resolved"),
    ] {
        let inc = app
            .declare(
                json!({ "title": title, "severity": severity, "service_ids": [service],
                "description": "Customers report it since 09:40." }),
            )
            .await;
        app.clock.advance(chrono::Duration::minutes(7));
        let r = app.move_to(inc["id"].as_i64().unwrap(), status).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        app.clock.advance(chrono::Duration::minutes(40));
    }
    // A status page whose components follow the services, with INC-1 published on it.
    let id = |r: crate::support::Resp| {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_i64().unwrap()
    };
    let page = id(app
        .post(
            "/api/v1/status-pages",
            json!({ "slug": "acme", "name": "Acme Cloud", "time_zone": "Europe/Berlin",
                "description": "Live status of Acme's services" }),
        )
        .await);
    let group = id(app
        .post(
            &format!("/api/v1/status-pages/{page}/component-groups"),
            json!({ "name": "Platform" }),
        )
        .await);
    let mut components = vec![];
    for (name, service) in [
        ("Checkout", services[0]),
        ("Search", services[1]),
        ("Payments", services[2]),
    ] {
        components.push(id(app
            .post(
                &format!("/api/v1/status-pages/{page}/components"),
                json!({ "name": name, "group_id": group, "service_ids": [service] }),
            )
            .await));
    }
    id(app
        .post(
            &format!("/api/v1/status-pages/{page}/incidents"),
            json!({ "name": "Stale search results in Europe", "incident_id": 1,
                "body": "Search results in Europe may be up to an hour old. We are reindexing.",
                "components": [{ "component_id": components[1], "status": "degraded_performance" }] }),
        )
        .await);
}

/// The main pages at desktop and phone widths, whole pages, as PNGs.
/// `TOCSIN_SCREENSHOTS=1 cargo test -p tocsin-server --test api browser::screenshots`
/// refreshes docs/screenshots/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots() {
    let Some((driver, app)) = setup().await else {
        return;
    };
    seed(&app).await;
    let b = session_as(&driver, &app, "admin").await;
    let dir = screenshot_dir();
    let pages = [
        ("dashboard", "/"),
        ("incidents", "/incidents"),
        ("incident", "/incidents/INC-1"),
        ("declare", "/incidents/new"),
        ("alerts", "/alerts"),
        ("services", "/services"),
        ("oncall", "/oncall"),
        ("schedule", "/oncall/schedules/1"),
        ("policy", "/oncall/policies/1"),
        ("people", "/people"),
        ("profile", "/profile"),
        ("status-pages", "/status-pages"),
        ("status-page-admin", "/status-pages/1"),
        ("status-post", "/status-posts/1"),
    ];
    let mut taken = 0;
    for (name, path) in pages {
        if b.status_of(path).await == 404 {
            eprintln!("note: {path} is not there yet; no screenshot of {name}");
            continue;
        }
        for (size, width, height) in [("desktop", 1280, 900), ("phone", 375, 812)] {
            b.set_window_rect(width, height).await.unwrap();
            b.goto(&format!("{}{path}", app.base)).await;
            b.wait_find("main").await;
            // The whole page: grow the window to the document's height.
            let inner = b
                .execute(
                    "return [window.innerWidth, window.outerHeight - window.innerHeight,
                       Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)];",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                inner[0],
                json!(width),
                "{name} {size}: the viewport's width"
            );
            let full = inner[1].as_i64().unwrap() + inner[2].as_i64().unwrap().max(height);
            b.set_window_rect(width, full).await.unwrap();
            let png = b.screenshot().await;
            assert!(png.starts_with(b"\x89PNG"), "{name} {size}: a PNG");
            std::fs::write(dir.join(format!("{name}-{size}.png")), png).unwrap();
            taken += 1;
        }
    }
    assert!(taken >= 4);
    eprintln!("screenshots in {}", dir.display());
}
