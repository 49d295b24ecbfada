//! Status pages at the store boundary, both back ends: components and their
//! history, the publish flow, maintenances started and completed by the job
//! runner on a fake clock, the subscriber fan-out in batches, and subscriber
//! links (confirm, unsubscribe, forgeries).

use std::sync::Arc;

use chrono::Duration;
use tocsin_core::model::EmailAddress;
use tocsin_core::status_page::token::LinkPurpose;
use tocsin_core::status_page::{
    Color, ComponentStatus, Impact, PostKind, PostStatus, Slug, Visibility,
};
use tocsin_engine::delivery::RecordingDelivery;
use tocsin_engine::jobs::Runner;
use tocsin_store::status::{
    ComponentChange, NewComponent, NewPost, NewStatusPage, NewUpdate, SubscribeOutcome,
};
use tocsin_store::{Actor, Store};

use crate::both_backends;
use crate::support::TestApp;

both_backends!(
    component_history_and_the_publish_flow,
    maintenance_starts_and_completes_on_time,
    fan_out_reaches_followers_in_batches,
    subscriber_links_confirm_and_unsubscribe_and_forgeries_fail
);

pub(crate) fn now(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    tocsin_core::time::Clock::now(&app.clock)
}

pub(crate) fn actor(app: &TestApp) -> Actor {
    Actor {
        user_id: Some(app.admin_id),
        name: "Ada Admin".into(),
    }
}

pub(crate) async fn page(app: &TestApp, slug: &str) -> i64 {
    app.store
        .create_status_page(
            &NewStatusPage {
                slug: Slug::parse("slug", slug).unwrap(),
                name: "Acme".into(),
                description: String::new(),
                visibility: Visibility::Public,
                domain: None,
                time_zone: chrono_tz::Tz::UTC,
                brand_color: Color::parse("c", "#0b3d91").unwrap(),
                support_url: None,
                allow_subscribers: true,
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap()
        .id
}

pub(crate) async fn component(app: &TestApp, page_id: i64, name: &str) -> i64 {
    app.store
        .create_component(
            page_id,
            &NewComponent {
                group_id: None,
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

pub(crate) fn incident_post(components: Vec<ComponentChange>) -> NewPost {
    NewPost {
        kind: PostKind::Incident,
        incident_id: None,
        name: "Checkout errors".into(),
        status: PostStatus::Investigating,
        impact: None,
        body: "We are looking into errors at checkout.".into(),
        components,
        notify: true,
        display_at: None,
        scheduled_for: None,
        scheduled_until: None,
        auto_start: false,
        auto_complete: false,
        remind_minutes: None,
    }
}

pub(crate) fn runner(app: &TestApp) -> Runner {
    Runner::new(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        Arc::new(RecordingDelivery::default()),
    )
}

async fn outbox(store: &Store) -> i64 {
    store
        .table_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| t == "status_deliveries")
        .unwrap()
        .1
}

async fn component_history_and_the_publish_flow(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, "API").await;
    let web = component(&app, p, "Website").await;
    let start = now(&app);
    app.clock.advance(Duration::minutes(10));
    let post = app
        .store
        .publish_post(
            p,
            &incident_post(vec![ComponentChange {
                component_id: api,
                status: Some(ComponentStatus::MajorOutage),
            }]),
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    assert_eq!(post.status, PostStatus::Investigating);
    assert_eq!(
        post.impact,
        Impact::Critical,
        "derived from the worst component"
    );
    assert_eq!(post.component_ids, vec![api]);
    assert_eq!(post.updates.len(), 1);
    assert_eq!(post.updates[0].affected_components.len(), 1);
    assert_eq!(
        post.updates[0].affected_components[0].old_status,
        ComponentStatus::Operational
    );

    app.clock.advance(Duration::minutes(20));
    let post = app
        .store
        .add_post_update(
            post.id,
            &NewUpdate {
                status: "monitoring".into(),
                body: "A fix is deployed.".into(),
                components: vec![ComponentChange {
                    component_id: api,
                    status: Some(ComponentStatus::DegradedPerformance),
                }],
                notify: false,
                display_at: None,
                name: None,
                impact: None,
            },
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    assert_eq!(post.monitoring_at, Some(now(&app)));
    // A maintenance status on an incident is refused, naming the field.
    let bad = app
        .store
        .add_post_update(
            post.id,
            &NewUpdate {
                status: "in_progress".into(),
                body: String::new(),
                components: vec![],
                notify: false,
                display_at: None,
                name: None,
                impact: None,
            },
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(bad, tocsin_store::StoreError::Invalid(ref i) if i.field == "status"),
        "{bad}"
    );

    app.clock.advance(Duration::minutes(30));
    let resolved = app
        .store
        .add_post_update(
            post.id,
            &NewUpdate {
                status: "resolved".into(),
                body: "All good.".into(),
                components: vec![],
                notify: true,
                display_at: None,
                name: None,
                impact: None,
            },
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    assert_eq!(resolved.resolved_at, Some(now(&app)));
    assert_eq!(resolved.updates.len(), 3);
    assert_eq!(
        resolved.updates[0].status,
        PostStatus::Resolved,
        "newest first"
    );
    // Resolving set the component back to operational by default.
    assert_eq!(
        app.store.component(api).await.unwrap().status,
        ComponentStatus::Operational
    );
    let history = app.store.component_history(api, None).await.unwrap();
    let seen: Vec<_> = history
        .iter()
        .map(|h| (h.status, h.started_at, h.ended_at))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                ComponentStatus::Operational,
                start,
                Some(start + Duration::minutes(10))
            ),
            (
                ComponentStatus::MajorOutage,
                start + Duration::minutes(10),
                Some(start + Duration::minutes(30))
            ),
            (
                ComponentStatus::DegradedPerformance,
                start + Duration::minutes(30),
                Some(start + Duration::minutes(60))
            ),
            (
                ComponentStatus::Operational,
                start + Duration::minutes(60),
                None
            ),
        ]
    );
    assert_eq!(
        app.store.component_history(web, None).await.unwrap().len(),
        1
    );

    // The snapshot holds what was published, and nothing about the internal side.
    let snap = app
        .store
        .public_status(p, "http://tocsin.test", now(&app))
        .await
        .unwrap();
    assert_eq!(snap.page.url, "http://tocsin.test/status/acme");
    assert_eq!(snap.incidents.len(), 1);
    assert!(snap.unresolved().next().is_none());
    let api_c = snap.components.iter().find(|c| c.id == api).unwrap();
    assert_eq!(api_c.uptime.len(), 90);
    let today = api_c.uptime.last().unwrap();
    // 20 min major (counts fully) of 60 min observed today.
    assert_eq!(today.major_secs, 1_200);
    assert_eq!(today.observed_secs, 3_600);
    assert_eq!(today.worst, Some(ComponentStatus::MajorOutage));
    assert_eq!(snap.indicator, tocsin_core::status_page::Indicator::None);
}

async fn maintenance_starts_and_completes_on_time(app: TestApp) {
    let p = page(&app, "maint").await;
    let db = component(&app, p, "Database").await;
    let from = now(&app) + Duration::hours(2);
    let until = from + Duration::hours(1);
    let post = app
        .store
        .publish_post(
            p,
            &NewPost {
                kind: PostKind::Maintenance,
                name: "Database upgrade".into(),
                status: PostStatus::Scheduled,
                body: "We will upgrade the database.".into(),
                components: vec![ComponentChange {
                    component_id: db,
                    status: None,
                }],
                scheduled_for: Some(from),
                scheduled_until: Some(until),
                auto_start: true,
                auto_complete: true,
                remind_minutes: Some(60),
                notify: true,
                ..incident_post(vec![])
            },
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    assert_eq!(post.impact, Impact::Maintenance);
    assert_eq!(
        app.store.component(db).await.unwrap().status,
        ComponentStatus::Operational
    );
    let r = runner(&app);
    // Announcing it notified nobody (no subscribers); nothing else is due yet.
    r.tick().await.unwrap();
    app.clock.advance(Duration::minutes(59));
    r.tick().await.unwrap();
    assert_eq!(
        app.store.post(post.id).await.unwrap().status,
        PostStatus::Scheduled
    );
    app.clock.advance(Duration::minutes(1)); // the reminder's time
    r.tick().await.unwrap();
    app.clock.advance(Duration::minutes(59));
    r.tick().await.unwrap();
    assert_eq!(
        app.store.post(post.id).await.unwrap().status,
        PostStatus::Scheduled
    );
    app.clock.set(from);
    r.tick().await.unwrap();
    let started = app.store.post(post.id).await.unwrap();
    assert_eq!(started.status, PostStatus::InProgress);
    assert_eq!(started.updates[0].created_by, None, "Tocsin itself");
    assert_eq!(
        app.store.component(db).await.unwrap().status,
        ComponentStatus::UnderMaintenance
    );
    let snap = app
        .store
        .public_status(p, "http://t", now(&app))
        .await
        .unwrap();
    assert_eq!(
        snap.indicator,
        tocsin_core::status_page::Indicator::Maintenance
    );
    app.clock.set(until - Duration::seconds(1));
    r.tick().await.unwrap();
    assert_eq!(
        app.store.post(post.id).await.unwrap().status,
        PostStatus::InProgress
    );
    app.clock.set(until);
    r.tick().await.unwrap();
    let done = app.store.post(post.id).await.unwrap();
    assert_eq!(done.status, PostStatus::Completed);
    assert_eq!(done.resolved_at, Some(until));
    assert_eq!(done.updates.len(), 3);
    assert_eq!(
        app.store.component(db).await.unwrap().status,
        ComponentStatus::Operational
    );
    let hist = app.store.component_history(db, None).await.unwrap();
    assert_eq!(hist[1].status, ComponentStatus::UnderMaintenance);
    assert_eq!((hist[1].started_at, hist[1].ended_at), (from, Some(until)));
    // Nothing left to run for it.
    assert_eq!(app.store.next_work_due().await.unwrap(), None);
}

async fn fan_out_reaches_followers_in_batches(app: TestApp) {
    let p = page(&app, "fan").await;
    let api = component(&app, p, "API").await;
    let web = component(&app, p, "Website").await;
    // More followers than one batch holds.
    let n = tocsin_store::status::FANOUT_BATCH * 3 / 2 + 30;
    // Confirmed subscribers: every third follows only the website.
    for i in 0..n {
        let (s, _) = app
            .store
            .add_subscriber(
                p,
                &tocsin_store::status::NewSubscriber {
                    kind: tocsin_core::status_page::records::SubscriberKind::Email,
                    address: format!("reader{i}@example.com"),
                    component_ids: if i % 3 == 0 { vec![web] } else { vec![] },
                    confirmed: true,
                },
                &actor(&app),
                now(&app),
            )
            .await
            .unwrap();
        assert!(s.confirmed);
    }
    // An unconfirmed one gets its confirmation only.
    let outcome = app
        .store
        .subscribe_email(
            p,
            &EmailAddress::parse("email", "new@example.com").unwrap(),
            &[],
            now(&app),
        )
        .await
        .unwrap();
    assert_eq!(outcome, SubscribeOutcome::ConfirmationSent);
    assert_eq!(outbox(&app.store).await, 1);
    app.store
        .publish_post(
            p,
            &incident_post(vec![ComponentChange {
                component_id: api,
                status: Some(ComponentStatus::PartialOutage),
            }]),
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    let r = runner(&app);
    let tick = r.tick().await.unwrap();
    assert!(
        tick.jobs >= 2,
        "the fan-out ran in more than one batch: {tick:?}"
    );
    let followers = (0..n).filter(|i| i % 3 != 0).count() as i64;
    assert_eq!(outbox(&app.store).await, 1 + followers);
    // Running it again writes nothing twice.
    r.tick().await.unwrap();
    assert_eq!(outbox(&app.store).await, 1 + followers);
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, COUNT(*) FROM status_deliveries GROUP BY kind ORDER BY kind")
            .fetch_all(&pool(&app).await)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![("confirmation".into(), 1), ("update".into(), followers)]
    );
}

async fn pool(app: &TestApp) -> sqlx::AnyPool {
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&app.db_url)
        .await
        .unwrap()
}

async fn subscriber_links_confirm_and_unsubscribe_and_forgeries_fail(app: TestApp) {
    let p = page(&app, "links").await;
    let email = EmailAddress::parse("email", "reader@example.com").unwrap();
    let now = now(&app);
    assert_eq!(
        app.store
            .subscribe_email(p, &email, &[], now)
            .await
            .unwrap(),
        SubscribeOutcome::ConfirmationSent
    );
    // Asking again at once sends nothing more.
    assert_eq!(
        app.store
            .subscribe_email(p, &email, &[], now)
            .await
            .unwrap(),
        SubscribeOutcome::ConfirmationRecentlySent
    );
    let subs = app.store.subscribers(p, None, 1000).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert!(!subs[0].confirmed);
    let sid = subs[0].id;
    let confirm = app
        .store
        .subscriber_link(sid, LinkPurpose::Confirm, now)
        .await
        .unwrap();
    let unsub = app
        .store
        .subscriber_link(sid, LinkPurpose::Unsubscribe, now)
        .await
        .unwrap();
    // An unsubscribe link does not confirm; a forged one does nothing.
    assert!(app.store.confirm_subscriber(&unsub, now).await.is_err());
    let mut forged: Vec<char> = confirm.chars().collect();
    forged[3] = if forged[3] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    assert!(app.store.confirm_subscriber(&forged, now).await.is_err());
    assert!(!app.store.subscriber(sid).await.unwrap().confirmed);
    let confirmed = app.store.confirm_subscriber(&confirm, now).await.unwrap();
    assert!(confirmed.confirmed);
    assert_eq!(
        app.store
            .subscribe_email(p, &email, &[], now)
            .await
            .unwrap(),
        SubscribeOutcome::AlreadySubscribed
    );
    assert!(app.store.unsubscribe(&forged, now).await.is_err());
    app.store.unsubscribe(&unsub, now).await.unwrap();
    assert!(app
        .store
        .subscribers(p, None, 1000)
        .await
        .unwrap()
        .is_empty());
    // The link died with the subscription.
    assert!(matches!(
        app.store.unsubscribe(&unsub, now).await,
        Err(tocsin_store::StoreError::NotFound { .. })
    ));
}
