//! A public status page in a real headless Chromium: what a customer sees on a
//! desktop and on a phone — the overall status, an active incident, an
//! upcoming maintenance, grouped components with 90-day uptime bars coloured
//! by each day's worst status — with no script at all, and no sideways scroll
//! at 375 px. Takes status-desktop.png and status-phone.png for docs/screenshots/.

use chrono::{Duration, Utc};
use serde_json::json;
use tocsin_core::status_page::uptime::format_percent;
use tocsin_core::status_page::{ComponentStatus, PostKind, PostStatus};
use tocsin_store::status::{
    ComponentChange, ComponentChanges, NewComponent, NewComponentGroup, NewPost, NewUpdate,
};

use crate::browser::{screenshot_dir, setup};
use crate::status_flow::{actor, now, page};
use crate::support::TestApp;
use crate::webdriver::Browser;

async fn component(app: &TestApp, page_id: i64, group_id: Option<i64>, name: &str) -> i64 {
    app.store
        .create_component(
            page_id,
            &NewComponent {
                group_id,
                name: name.into(),
                description: String::new(),
                position: None,
                status: ComponentStatus::Operational,
                show_uptime: true,
                only_show_if_degraded: false,
                service_ids: vec![],
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap()
        .id
}

async fn set(app: &TestApp, id: i64, status: ComponentStatus) {
    let c = ComponentChanges {
        status: Some(status),
        ..Default::default()
    };
    app.store
        .update_component(id, &c, &actor(app), now(app))
        .await
        .unwrap();
}

/// Eighty days of history in UTC days: an outage 40 days ago, a partial outage
/// 20 days ago, an incident under way, a maintenance tomorrow.
async fn seed(app: &TestApp) -> (i64, i64) {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    app.clock.set(today - Duration::days(80));
    let p = page(app, "acme").await;
    let platform = app
        .store
        .create_component_group(
            p,
            &NewComponentGroup {
                name: "Platform".into(),
                description: String::new(),
                position: None,
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap()
        .id;
    let api = component(app, p, Some(platform), "API").await;
    component(app, p, Some(platform), "Dashboard").await;
    component(app, p, None, "Website").await;
    app.clock
        .set(today - Duration::days(40) + Duration::hours(10));
    set(app, api, ComponentStatus::MajorOutage).await;
    app.clock.advance(Duration::hours(2));
    set(app, api, ComponentStatus::Operational).await;
    app.clock
        .set(today - Duration::days(20) + Duration::hours(8));
    set(app, api, ComponentStatus::PartialOutage).await;
    app.clock.advance(Duration::hours(5));
    set(app, api, ComponentStatus::Operational).await;
    // The browser's clock is real: the page is read as of a moment ago.
    app.clock.set(Utc::now() - Duration::minutes(30));
    let post = app
        .store
        .publish_post(
            p,
            &NewPost {
                kind: PostKind::Incident,
                incident_id: None,
                name: "Elevated API error rates".into(),
                status: PostStatus::Investigating,
                impact: None,
                body: "We are investigating elevated error rates on the API.".into(),
                components: vec![ComponentChange {
                    component_id: api,
                    status: Some(ComponentStatus::PartialOutage),
                }],
                notify: false,
                display_at: None,
                scheduled_for: None,
                scheduled_until: None,
                auto_start: false,
                auto_complete: false,
                remind_minutes: None,
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap();
    app.clock.advance(Duration::minutes(12));
    app.store
        .add_post_update(
            post.id,
            &NewUpdate {
                status: "identified".into(),
                body: "A faulty load balancer has been taken out of rotation.".into(),
                components: vec![],
                notify: false,
                display_at: None,
                name: None,
                impact: None,
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap();
    let tomorrow = today + Duration::days(1) + Duration::hours(2);
    app.store
        .publish_post(
            p,
            &NewPost {
                kind: PostKind::Maintenance,
                incident_id: None,
                name: "Database upgrade".into(),
                status: PostStatus::Scheduled,
                impact: None,
                body: "We will upgrade the primary database; the dashboard may be read-only."
                    .into(),
                components: vec![ComponentChange {
                    component_id: api,
                    status: None,
                }],
                notify: false,
                display_at: None,
                scheduled_for: Some(tomorrow),
                scheduled_until: Some(tomorrow + Duration::hours(2)),
                auto_start: true,
                auto_complete: true,
                remind_minutes: None,
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap();
    app.clock.set(Utc::now());
    (p, api)
}

async fn count(b: &Browser, css: &str) -> usize {
    b.find_all(css).await.unwrap().len()
}

async fn classes(b: &Browser, css: &str) -> String {
    let el = b.wait_find(css).await;
    b.attribute(&el, "class").await.unwrap().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_page_in_a_browser() {
    let Some((driver, app)) = setup().await else {
        return;
    };
    let (p, api) = seed(&app).await;
    let expected = app
        .store
        .public_status(p, &app.base, now(&app))
        .await
        .unwrap();
    let api_uptime = expected
        .components
        .iter()
        .find(|c| c.id == api)
        .and_then(|c| c.uptime_percent)
        .unwrap();
    // No session: a customer.
    let b = driver.session().await;
    let dir = screenshot_dir();
    for (size, width, height) in [("desktop", 1280, 900), ("phone", 375, 812)] {
        b.set_window_rect(width, height).await.unwrap();
        b.goto(&format!("{}/status/acme/", app.base)).await;
        b.wait_find("main").await;
        assert_eq!(count(&b, "script").await, 0, "no script on a public page");
        let overall = b.text_of(".indicator").await.unwrap();
        assert!(overall.contains("Partial System Outage"), "{overall}");
        let active = b.text_of("#active").await.unwrap();
        assert!(active.contains("Elevated API error rates"), "{active}");
        assert!(active.contains("Identified"), "{active}");
        assert!(b
            .text_of("#upcoming")
            .await
            .unwrap()
            .contains("Database upgrade"));
        // Three components (two in a group), each with 90 days of bars.
        assert_eq!(count(&b, "li.component").await, 3);
        assert_eq!(count(&b, "li.group").await, 1);
        assert_eq!(count(&b, "ol.bars").await, 3);
        assert_eq!(count(&b, "ol.bars li.day").await, 270);
        // The API's bars, oldest first: 40 days ago major, 20 days ago partial,
        // today partial (now), and nothing before it existed, 80 days ago.
        let api_bars = "li.group li.component:first-child ol.bars";
        assert!(classes(&b, &format!("{api_bars} li:nth-child(50)"))
            .await
            .contains("major"));
        assert!(classes(&b, &format!("{api_bars} li:nth-child(70)"))
            .await
            .contains("partial"));
        assert!(classes(&b, &format!("{api_bars} li:nth-child(90)"))
            .await
            .contains("partial"));
        assert!(classes(&b, &format!("{api_bars} li:nth-child(60)"))
            .await
            .contains("operational"));
        assert!(classes(&b, &format!("{api_bars} li:nth-child(5)"))
            .await
            .contains("no_data"));
        let shown = b
            .text_of("li.group li.component:first-child .uptime")
            .await
            .unwrap();
        assert!(shown.contains(&format_percent(api_uptime)), "{shown}");
        // The bars are drawn: a phone shows the last 30 days, a desktop all 90,
        // and an outage day is not painted like an operational one.
        let (visible, outage, fine) = match size {
            "phone" => (30, 89, 79),
            _ => (90, 69, 59),
        };
        let drawn = b
            .execute(
                "const bars = [...document.querySelectorAll(arguments[0])];
                 const shown = bars.filter(e => e.getBoundingClientRect().height >= 16);
                 return [shown.length, getComputedStyle(bars[arguments[1]]).backgroundColor,
                         getComputedStyle(bars[arguments[2]]).backgroundColor];",
                vec![json!(format!("{api_bars} li")), json!(outage), json!(fine)],
            )
            .await
            .unwrap();
        assert_eq!(drawn[0], json!(visible), "{size}: bars drawn");
        assert_ne!(
            drawn[1], drawn[2],
            "{size}: outage and operational days look different"
        );
        // The whole page: grow the window to the document's height, and on a
        // phone nothing may stick out sideways.
        let dims = b
            .execute(
                "return [window.innerWidth, window.outerHeight - window.innerHeight,
                   Math.max(document.documentElement.scrollHeight, document.body.scrollHeight),
                   document.documentElement.scrollWidth];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(dims[0], json!(width), "{size}: the viewport's width");
        assert!(
            dims[3].as_i64().unwrap() <= width,
            "{size}: no sideways scroll ({dims})"
        );
        let full = dims[1].as_i64().unwrap() + dims[2].as_i64().unwrap().max(height);
        b.set_window_rect(width, full).await.unwrap();
        let png = b.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(dir.join(format!("status-{size}.png")), png).unwrap();
    }
}
