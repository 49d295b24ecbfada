//! Status pages under concurrent writes and awkward orders of events: two
//! incidents resolved at once, a publish racing a component change, a
//! maintenance completing during an incident, an open incident behind many
//! newer ones, a rescheduled maintenance, one mailbox under several spellings.

use chrono::Duration;
use tocsin_core::model::EmailAddress;
use tocsin_core::status_page::records::SubscriberKind;
use tocsin_core::status_page::{ComponentStatus, Impact, Indicator, PostKind, PostStatus};
use tocsin_store::status::{
    ComponentChange, ComponentChanges, NewPost, NewSubscriber, NewUpdate, PostChanges,
    SubscribeOutcome,
};

use crate::both_backends;
use crate::status_flow::{actor, component, incident_post, now, page, runner};
use crate::support::TestApp;

both_backends!(
    two_incidents_resolved_at_once_release_their_component,
    publishing_and_changing_a_component_at_once_both_succeed,
    a_maintenance_neither_hides_nor_keeps_an_incident_s_outage,
    an_open_incident_stays_on_the_page_behind_newer_ones,
    a_rescheduled_maintenance_reminds_again_and_a_late_reminder_is_skipped,
    one_mailbox_gets_one_confirmation_whatever_its_spelling,
    internal_pages_take_no_reader_subscriptions,
);

async fn count(app: &TestApp, kind: &str) -> i64 {
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&app.db_url)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM status_deliveries WHERE kind = $1")
        .bind(kind)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

fn resolve() -> NewUpdate {
    NewUpdate {
        status: "resolved".into(),
        body: "Fixed.".into(),
        components: vec![],
        notify: false,
        display_at: None,
        name: None,
        impact: None,
    }
}

fn broken(component_id: i64, status: ComponentStatus) -> NewPost {
    NewPost {
        notify: false,
        ..incident_post(vec![ComponentChange {
            component_id,
            status: Some(status),
        }])
    }
}

// Each resolution must see the other (the page is locked first), so the last
// one to commit sets the component back to operational.
async fn two_incidents_resolved_at_once_release_their_component(app: TestApp) {
    let p = page(&app, "race").await;
    for round in 0..10 {
        let c = component(&app, p, &format!("API {round}")).await;
        let mut posts = Vec::new();
        for _ in 0..2 {
            let post = app
                .store
                .publish_post(
                    p,
                    &broken(c, ComponentStatus::MajorOutage),
                    &actor(&app),
                    now(&app),
                )
                .await
                .unwrap();
            posts.push(post.id);
        }
        let go = |id: i64| {
            let (store, a, t) = (app.store.clone(), actor(&app), now(&app));
            tokio::spawn(async move { store.add_post_update(id, &resolve(), &a, t).await })
        };
        let (x, y) = tokio::join!(go(posts[0]), go(posts[1]));
        x.unwrap().unwrap();
        y.unwrap().unwrap();
        assert_eq!(
            app.store.component(c).await.unwrap().status,
            ComponentStatus::Operational,
            "round {round}: both incidents resolved, the component still down"
        );
        // One open period at a time, each starting where the last ended.
        let h = app.store.component_history(c, None).await.unwrap();
        for pair in h.windows(2) {
            assert_eq!(
                pair[0].ended_at,
                Some(pair[1].started_at),
                "round {round}: {h:?}"
            );
        }
    }
}

async fn publishing_and_changing_a_component_at_once_both_succeed(app: TestApp) {
    let p = page(&app, "deadlock").await;
    let c = component(&app, p, "API").await;
    for round in 0..15 {
        let (s1, s2, a, t) = (app.store.clone(), app.store.clone(), actor(&app), now(&app));
        let status = if round % 2 == 0 {
            ComponentStatus::MajorOutage
        } else {
            ComponentStatus::PartialOutage
        };
        let a2 = a.clone();
        let publish = tokio::spawn(async move {
            s1.publish_post(p, &broken(c, status), &a2, t)
                .await
                .map(|_| ())
        });
        let patch = tokio::spawn(async move {
            let change = ComponentChanges {
                status: Some(ComponentStatus::DegradedPerformance),
                ..Default::default()
            };
            s2.update_component(c, &change, &a, t).await.map(|_| ())
        });
        let (x, y) = tokio::join!(publish, patch);
        x.unwrap()
            .unwrap_or_else(|e| panic!("round {round}: publish failed: {e}"));
        y.unwrap()
            .unwrap_or_else(|e| panic!("round {round}: change failed: {e}"));
    }
}

async fn a_maintenance_neither_hides_nor_keeps_an_incident_s_outage(app: TestApp) {
    let p = page(&app, "overlap").await;
    let db = component(&app, p, "Database").await;
    let cache = component(&app, p, "Cache").await;
    let incident = app
        .store
        .publish_post(
            p,
            &broken(db, ComponentStatus::MajorOutage),
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    let from = now(&app) + Duration::hours(1);
    let until = from + Duration::hours(1);
    app.store
        .publish_post(
            p,
            &NewPost {
                kind: PostKind::Maintenance,
                name: "Failover".into(),
                status: PostStatus::Scheduled,
                body: "Planned failover.".into(),
                components: vec![
                    ComponentChange {
                        component_id: db,
                        status: None,
                    },
                    ComponentChange {
                        component_id: cache,
                        status: None,
                    },
                ],
                scheduled_for: Some(from),
                scheduled_until: Some(until),
                auto_start: true,
                auto_complete: true,
                remind_minutes: None,
                notify: false,
                ..incident_post(vec![])
            },
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    let r = runner(&app);
    app.clock.set(from);
    r.tick().await.unwrap();
    // The broken database stays broken (its downtime counts); the cache is under maintenance.
    assert_eq!(
        app.store.component(db).await.unwrap().status,
        ComponentStatus::MajorOutage
    );
    assert_eq!(
        app.store.component(cache).await.unwrap().status,
        ComponentStatus::UnderMaintenance
    );
    app.clock.set(until);
    r.tick().await.unwrap();
    assert_eq!(
        app.store.component(db).await.unwrap().status,
        ComponentStatus::MajorOutage
    );
    assert_eq!(
        app.store.component(cache).await.unwrap().status,
        ComponentStatus::Operational
    );
    app.store
        .add_post_update(incident.id, &resolve(), &actor(&app), now(&app))
        .await
        .unwrap();
    assert_eq!(
        app.store.component(db).await.unwrap().status,
        ComponentStatus::Operational
    );
}

async fn an_open_incident_stays_on_the_page_behind_newer_ones(app: TestApp) {
    let p = page(&app, "busy").await;
    let open = app
        .store
        .publish_post(
            p,
            &NewPost {
                name: "Long-running degradation".into(),
                impact: Some(Impact::Critical),
                notify: false,
                ..incident_post(vec![])
            },
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    for i in 0..55 {
        app.clock.advance(Duration::minutes(10));
        app.store
            .publish_post(
                p,
                &NewPost {
                    name: format!("Blip {i}"),
                    status: PostStatus::Resolved,
                    notify: false,
                    ..incident_post(vec![])
                },
                &actor(&app),
                now(&app),
            )
            .await
            .unwrap();
    }
    let snap = app
        .store
        .public_status(p, "http://t", now(&app))
        .await
        .unwrap();
    assert!(snap.incidents.iter().any(|i| i.id == open.id));
    assert_eq!(snap.unresolved().count(), 1);
    assert_eq!(
        snap.incidents.len(),
        51,
        "the open one and the 50 latest resolved"
    );
    assert_eq!(snap.indicator, Indicator::Critical);
}

async fn a_rescheduled_maintenance_reminds_again_and_a_late_reminder_is_skipped(app: TestApp) {
    let p = page(&app, "remind").await;
    let db = component(&app, p, "Database").await;
    app.store
        .add_subscriber(
            p,
            &NewSubscriber {
                kind: SubscriberKind::Email,
                address: "reader@example.com".into(),
                component_ids: vec![],
                confirmed: true,
            },
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    let maintenance = |from: chrono::DateTime<chrono::Utc>| NewPost {
        kind: PostKind::Maintenance,
        name: "Database upgrade".into(),
        status: PostStatus::Scheduled,
        body: "We will upgrade the database.".into(),
        components: vec![ComponentChange {
            component_id: db,
            status: None,
        }],
        scheduled_for: Some(from),
        scheduled_until: Some(from + Duration::hours(1)),
        auto_start: true,
        auto_complete: true,
        remind_minutes: Some(60),
        notify: true,
        ..incident_post(vec![])
    };
    let from = now(&app) + Duration::hours(2);
    let post = app
        .store
        .publish_post(p, &maintenance(from), &actor(&app), now(&app))
        .await
        .unwrap();
    let r = runner(&app);
    r.tick().await.unwrap();
    app.clock.advance(Duration::hours(1));
    r.tick().await.unwrap();
    assert_eq!(count(&app, "reminder").await, 1);
    // Moved a day later: reminded again an hour before the new start.
    let later = from + Duration::days(1);
    let moved = PostChanges {
        scheduled_for: Some(later),
        scheduled_until: Some(later + Duration::hours(1)),
        ..Default::default()
    };
    app.store
        .update_post(post.id, &moved, &actor(&app), now(&app))
        .await
        .unwrap();
    app.clock.set(later - Duration::minutes(61));
    r.tick().await.unwrap();
    assert_eq!(count(&app, "reminder").await, 1);
    app.clock.set(later - Duration::minutes(60));
    r.tick().await.unwrap();
    assert_eq!(count(&app, "reminder").await, 2);
    // Announced 30 minutes ahead with a 60-minute reminder: no reminder at all.
    app.store
        .publish_post(
            p,
            &maintenance(now(&app) + Duration::minutes(30)),
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    r.tick().await.unwrap();
    assert_eq!(count(&app, "reminder").await, 2);
}

async fn one_mailbox_gets_one_confirmation_whatever_its_spelling(app: TestApp) {
    let p = page(&app, "bomb").await;
    let mut outcomes = Vec::new();
    for a in [
        "victim@example.com",
        "Victim@example.com",
        "VICTIM@Example.COM",
    ] {
        let e = EmailAddress::parse("email", a).unwrap();
        outcomes.push(
            app.store
                .subscribe_email(p, &e, &[], now(&app))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        outcomes,
        [
            SubscribeOutcome::ConfirmationSent,
            SubscribeOutcome::ConfirmationRecentlySent,
            SubscribeOutcome::ConfirmationRecentlySent
        ]
    );
    assert_eq!(count(&app, "confirmation").await, 1);
    assert_eq!(app.store.subscribers(p, None, 1000).await.unwrap().len(), 1);
}

async fn internal_pages_take_no_reader_subscriptions(app: TestApp) {
    let p = page(&app, "staff").await;
    let internal = tocsin_store::status::StatusPageChanges {
        visibility: Some(tocsin_core::status_page::Visibility::Internal),
        ..Default::default()
    };
    app.store
        .update_status_page(p, &internal, &actor(&app), now(&app))
        .await
        .unwrap();
    let counts = app.counts().await;
    let e = EmailAddress::parse("email", "me@elsewhere.example").unwrap();
    let refused = app
        .store
        .subscribe_email(p, &e, &[], now(&app))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("internal"), "{refused}");
    assert_eq!(app.counts().await, counts);
}
