//! Status-page subscriber mail and webhooks, both back ends, over real
//! exchanges: a local ESMTP receiver takes the mail (its links are followed
//! through the store), a local HTTP server checks each webhook's signature
//! with the secret the admin was given. The worker runs on a fake clock, so
//! pacing and backoff are exact.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Duration;
use mail_parser::MessageParser;
use serde_json::Value;
use tocsin_core::model::EmailAddress;
use tocsin_core::status_page::records::SubscriberKind;
use tocsin_core::status_page::{ComponentStatus, PostKind, PostStatus};
use tocsin_core::time::{Clock, FakeClock};
use tocsin_engine::status_mail::{StatusMailConfig, StatusMailer, StatusTick, NO_SMTP};
use tocsin_notify::{
    verify_signature, Security, SignatureError, SmtpConfig, SmtpProvider, SIGNATURE_HEADER,
};
use tocsin_store::status::{
    ComponentChange, NewPost, NewSubscriber, NewUpdate, StatusDeliveryState, StatusDeliveryView,
    StatusMessageKind, StatusPageChanges, SubscribeOutcome,
};
use tocsin_store::{AttemptOutcome, Store, StoreOptions};

use crate::both_backends;
use crate::smtp_receiver::{Behaviour, Receiver};
use crate::status_flow::{actor, component, incident_post, now, page, runner};
use crate::support::TestApp;

both_backends!(
    confirmation_mail_confirms_and_unconfirmed_subscribers_get_nothing_else,
    followers_of_a_component_get_its_updates_and_the_unsubscribe_link_works,
    hostile_names_and_bodies_are_escaped_and_add_no_headers,
    a_maintenance_reminder_says_the_start_in_the_page_s_time_zone,
    sending_is_paced_at_the_configured_rate,
    failed_mail_is_retried_with_backoff_then_fails,
    a_restarted_or_second_worker_never_sends_twice,
    webhooks_are_signed_with_the_subscriber_s_secret_and_retried,
    without_smtp_email_waits_and_says_why,
    the_running_worker_is_woken_by_new_mail_and_stops_on_shutdown
);

/// The server's public URL in links.
const BASE: &str = "https://tocsin.test";

fn smtp(r: &Receiver) -> Arc<SmtpProvider> {
    Arc::new(
        SmtpProvider::new(SmtpConfig {
            port: Some(r.addr.port()),
            security: Security::None,
            timeout: StdDuration::from_secs(5),
            hello_name: Some("tocsin.test".into()),
            ..SmtpConfig::new("127.0.0.1", "Acme Status <status@acme.test>")
        })
        .unwrap(),
    )
}

fn mailer_on(
    store: &Store,
    app: &TestApp,
    r: Option<&Receiver>,
    per_second: f64,
    max_attempts: i64,
) -> StatusMailer {
    StatusMailer::new(
        store.clone(),
        Arc::new(app.clock.clone()),
        r.map(smtp),
        StatusMailConfig {
            per_second,
            max_attempts,
            webhook_timeout: StdDuration::from_secs(5),
            ..StatusMailConfig::new(BASE)
        },
    )
    .unwrap()
}

fn mailer(app: &TestApp, r: Option<&Receiver>) -> StatusMailer {
    mailer_on(&app.store, app, r, 100.0, 5)
}

async fn subscriber(app: &TestApp, p: i64, address: &str, components: Vec<i64>) -> i64 {
    app.store
        .add_subscriber(
            p,
            &NewSubscriber {
                kind: SubscriberKind::Email,
                address: address.into(),
                component_ids: components,
                confirmed: true,
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap()
        .0
        .id
}

/// Publishes an incident on `components` (each to a partial outage) and runs the fan-out.
async fn publish(app: &TestApp, p: i64, name: &str, components: &[i64]) -> i64 {
    let post = app
        .store
        .publish_post(
            p,
            &NewPost {
                name: name.into(),
                ..incident_post(
                    components
                        .iter()
                        .map(|c| ComponentChange {
                            component_id: *c,
                            status: Some(ComponentStatus::PartialOutage),
                        })
                        .collect(),
                )
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap();
    runner(app).tick().await.unwrap();
    post.id
}

/// Adds an update telling subscribers, and runs the fan-out.
async fn update(app: &TestApp, post_id: i64, status: &str, body: &str) {
    app.store
        .add_post_update(
            post_id,
            &NewUpdate {
                status: status.into(),
                body: body.into(),
                components: vec![],
                notify: true,
                display_at: None,
                name: None,
                impact: None,
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap();
    runner(app).tick().await.unwrap();
}

/// One mail as the relay received it.
struct Mail {
    rcpt: String,
    raw: Vec<u8>,
}

impl Mail {
    fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default().parse(&self.raw).unwrap()
    }

    fn head(&self) -> String {
        let end = self.raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        // Unfolded: a continuation line starts with a space.
        String::from_utf8(self.raw[..end].to_vec())
            .unwrap()
            .replace("\r\n ", " ")
    }

    fn text(&self) -> String {
        self.parsed().body_text(0).unwrap().into_owned()
    }

    fn html(&self) -> String {
        self.parsed().body_html(0).unwrap().into_owned()
    }

    fn subject(&self) -> String {
        self.parsed().subject().unwrap().to_string()
    }
}

/// Every mail the relay accepted, in order.
fn mails(r: &Receiver) -> Vec<Mail> {
    r.sessions()
        .into_iter()
        .filter_map(|s| {
            Some(Mail {
                rcpt: s.rcpt_to.first()?.clone(),
                raw: s.data?,
            })
        })
        .collect()
}

fn to(address: &str) -> String {
    format!("RCPT TO:<{address}>")
}

/// The token of the first link in `text` that starts with `prefix`.
fn token_after(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        + prefix.len();
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

async fn outbox(app: &TestApp, p: i64) -> Vec<StatusDeliveryView> {
    app.store.status_deliveries(p, 100).await.unwrap()
}

fn sent(n: usize) -> StatusTick {
    StatusTick {
        sent: n,
        ..StatusTick::default()
    }
}

async fn confirmation_mail_confirms_and_unconfirmed_subscribers_get_nothing_else(app: TestApp) {
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let m = mailer(&app, Some(&r));
    assert!(m.email_available());
    let p = page(&app, "acme").await;
    subscriber(&app, p, "old@example.com", vec![]).await;
    let reader = EmailAddress::parse("email", "reader@example.com").unwrap();
    assert_eq!(
        app.store
            .subscribe_email(p, &reader, &[], now(&app))
            .await
            .unwrap(),
        SubscribeOutcome::ConfirmationSent
    );
    assert_eq!(m.tick().await.unwrap(), sent(1));
    let got = mails(&r);
    assert_eq!(got.len(), 1);
    let confirmation = &got[0];
    assert_eq!(confirmation.rcpt, to("reader@example.com"));
    assert_eq!(confirmation.subject(), "Confirm your subscription to Acme");
    assert!(confirmation
        .head()
        .contains("Auto-Submitted: auto-generated"));
    assert!(
        !confirmation.head().contains("List-Unsubscribe"),
        "nothing to unsubscribe from yet"
    );
    let prefix = format!("{BASE}/status/acme/confirm?token=");
    let token = token_after(&confirmation.text(), &prefix);
    assert!(
        confirmation
            .html()
            .contains(&format!("href=\"{prefix}{token}\"")),
        "{}",
        confirmation.html()
    );

    // An update while unconfirmed reaches the confirmed subscriber only.
    let post = publish(&app, p, "Checkout errors", &[]).await;
    assert_eq!(m.tick().await.unwrap(), sent(1));
    let got = mails(&r);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].rcpt, to("old@example.com"));

    // Asking again later queues a second confirmation; following the first
    // link before it goes out makes it moot.
    app.clock.advance(Duration::minutes(11));
    app.store
        .subscribe_email(p, &reader, &[], now(&app))
        .await
        .unwrap();
    let confirmed = app
        .store
        .confirm_subscriber(&token, now(&app))
        .await
        .unwrap();
    assert!(confirmed.confirmed);
    assert_eq!(m.tick().await.unwrap(), StatusTick::default());
    let rows = outbox(&app, p).await;
    assert_eq!(
        (rows[0].kind, rows[0].status),
        (
            StatusMessageKind::Confirmation,
            StatusDeliveryState::Cancelled
        )
    );
    assert_eq!(mails(&r).len(), 2);

    // Confirmed, the reader gets the next update, once.
    update(&app, post, "identified", "A bad deploy.").await;
    assert_eq!(m.tick().await.unwrap(), sent(2));
    assert_eq!(m.tick().await.unwrap(), StatusTick::default());
    let got = mails(&r);
    let to_reader: Vec<_> = got
        .iter()
        .filter(|g| g.rcpt == to("reader@example.com"))
        .collect();
    assert_eq!(to_reader.len(), 2, "the confirmation and the update");
    assert_eq!(to_reader[1].subject(), "[Acme] Checkout errors: Identified");
    let stats = app.store.status_delivery_stats().await.unwrap();
    assert_eq!((stats.sent, stats.cancelled, stats.pending), (4, 1, 0));
}

async fn followers_of_a_component_get_its_updates_and_the_unsubscribe_link_works(app: TestApp) {
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let m = mailer(&app, Some(&r));
    let p = page(&app, "acme").await;
    let api = component(&app, p, "API").await;
    let web = component(&app, p, "Website").await;
    let a = subscriber(&app, p, "api@example.com", vec![api]).await;
    subscriber(&app, p, "web@example.com", vec![web]).await;
    subscriber(&app, p, "all@example.com", vec![]).await;

    let post = publish(&app, p, "API errors", &[api]).await;
    assert_eq!(m.tick().await.unwrap(), sent(2));
    let got = mails(&r);
    let rcpts: BTreeSet<_> = got.iter().map(|g| g.rcpt.clone()).collect();
    assert_eq!(rcpts, [to("all@example.com"), to("api@example.com")].into());
    let mail = got
        .iter()
        .find(|g| g.rcpt == to("api@example.com"))
        .unwrap();
    assert_eq!(mail.subject(), "[Acme] API errors: Investigating");
    let parsed = mail.parsed();
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Acme"), Some("status@acme.test")),
        "the page's name, the relay's address"
    );
    let text = mail.text();
    assert!(
        text.contains("We are looking into errors at checkout."),
        "{text}"
    );
    assert!(text.contains("- API: Partial outage"), "{text}");
    assert!(
        text.contains(&format!("Details: {BASE}/status/acme/incidents/{post}")),
        "{text}"
    );
    // RFC 2369 / RFC 8058 headers, and a Message-ID stable per row.
    let head = mail.head();
    let prefix = format!("{BASE}/status/acme/unsubscribe?token=");
    let token = token_after(&head, &format!("List-Unsubscribe: <{prefix}"));
    assert!(
        head.contains(&format!("List-Unsubscribe: <{prefix}{token}>\r\n")),
        "{head}"
    );
    assert!(
        head.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
        "{head}"
    );
    let rows = outbox(&app, p).await;
    let row = rows.iter().find(|d| d.subscriber_id == a).unwrap();
    let key = format!("update:{}:{a}", row.update_id.unwrap());
    assert_eq!(
        mail.parsed().message_id().map(|id| format!("<{id}>")),
        Some(tocsin_notify::email::message_id(&key, "acme.test"))
    );
    assert!(text.contains(&format!("{prefix}{token}")), "{text}");

    // The link in the mail ends the subscription; the next update skips it.
    app.store.unsubscribe(&token, now(&app)).await.unwrap();
    update(&app, post, "resolved", "Fixed.").await;
    assert_eq!(m.tick().await.unwrap(), sent(1));
    let got = mails(&r);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].rcpt, to("all@example.com"));
    assert_eq!(got[2].subject(), "[Acme] API errors: Resolved");
}

async fn hostile_names_and_bodies_are_escaped_and_add_no_headers(app: TestApp) {
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let m = mailer(&app, Some(&r));
    let p = page(&app, "acme").await;
    let api = component(&app, p, "API <b>\"x\"</b>").await;
    subscriber(&app, p, "reader@example.com", vec![]).await;
    let name = "<script>alert(\"x\")</script>\r\nBcc: evil@example.com";
    let post = publish(&app, p, name, &[api]).await;
    update(
        &app,
        post,
        "identified",
        "<img src=x onerror=alert(1)>\n\n[click](javascript:alert(1)) & <a href=\"https://evil.test\">x</a>",
    )
    .await;
    assert_eq!(m.tick().await.unwrap(), sent(2));
    for s in r.sessions() {
        assert_eq!(s.rcpt_to, [to("reader@example.com")], "no one else");
    }
    for mail in mails(&r) {
        let parsed = mail.parsed();
        assert!(parsed.header("Bcc").is_none(), "{}", mail.head());
        assert!(!mail.head().to_ascii_lowercase().contains("\nbcc:"));
        assert_eq!(
            mail.subject().lines().count(),
            1,
            "the subject stays one line"
        );
        let html = mail.html();
        for raw in [
            "<script",
            "<img",
            "<a href=\"https://evil",
            "href=\"javascript",
            "<b>",
        ] {
            assert!(!html.contains(raw), "{raw} in {html}");
        }
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
            "{html}"
        );
    }
    // Sent at once, the two may arrive in either order.
    let got = mails(&r);
    let first = got
        .iter()
        .find(|g| g.subject().ends_with(": Investigating"))
        .unwrap()
        .html();
    assert!(
        first.contains(
            "<li>API &lt;b&gt;&quot;x&quot;&lt;/b&gt;: <strong>Partial outage</strong></li>"
        ),
        "{first}"
    );
    let html = got
        .iter()
        .find(|g| g.subject().ends_with(": Identified"))
        .unwrap()
        .html();
    assert!(
        html.contains("<p>&lt;img src=x onerror=alert(1)&gt;</p>"),
        "{html}"
    );
    assert!(
        html.contains(
            "<p>[click](javascript:alert(1)) &amp; &lt;a href=&quot;https://evil.test&quot;&gt;x&lt;/a&gt;</p>"
        ),
        "{html}"
    );
}

async fn a_maintenance_reminder_says_the_start_in_the_page_s_time_zone(app: TestApp) {
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let m = mailer(&app, Some(&r));
    let p = page(&app, "acme").await;
    app.store
        .update_status_page(
            p,
            &StatusPageChanges {
                time_zone: Some(chrono_tz::Tz::Europe__Paris),
                ..Default::default()
            },
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    let db = component(&app, p, "Database").await;
    subscriber(&app, p, "reader@example.com", vec![db]).await;
    // 2026-01-01 00:00 UTC now; the work from 13:00 to 14:00 UTC (14:00–15:00 in Paris).
    let from = now(&app) + Duration::hours(13);
    app.store
        .publish_post(
            p,
            &NewPost {
                kind: PostKind::Maintenance,
                name: "Database upgrade".into(),
                status: PostStatus::Scheduled,
                body: "Writes pause for a few minutes.".into(),
                components: vec![ComponentChange {
                    component_id: db,
                    status: None,
                }],
                scheduled_for: Some(from),
                scheduled_until: Some(from + Duration::hours(1)),
                remind_minutes: Some(60),
                ..incident_post(vec![])
            },
            &actor(&app),
            now(&app),
        )
        .await
        .unwrap();
    runner(&app).tick().await.unwrap();
    assert_eq!(m.tick().await.unwrap(), sent(1), "the announcement");
    app.clock.set(from - Duration::hours(1));
    runner(&app).tick().await.unwrap();
    assert_eq!(m.tick().await.unwrap(), sent(1), "the reminder");
    let got = mails(&r);
    let reminder = &got[1];
    assert_eq!(
        reminder.subject(),
        "[Acme] Database upgrade: scheduled maintenance starts at Thu 1 Jan 2026, 14:00 CET"
    );
    let text = reminder.text();
    assert!(
        text.contains("Scheduled maintenance starts at Thu 1 Jan 2026, 14:00 CET and is planned to end at 15:00 CET."),
        "{text}"
    );
    assert!(text.contains("Writes pause for a few minutes."), "{text}");
    assert!(reminder.head().contains("List-Unsubscribe: <"));
}

async fn sending_is_paced_at_the_configured_rate(app: TestApp) {
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let m = mailer_on(&app.store, &app, Some(&r), 5.0, 5);
    let p = page(&app, "acme").await;
    for i in 0..12 {
        subscriber(&app, p, &format!("reader{i}@example.com"), vec![]).await;
    }
    publish(&app, p, "Checkout errors", &[]).await;
    let t = now(&app);
    assert_eq!(m.tick().await.unwrap(), sent(5));
    assert_eq!(m.tick().await.unwrap(), sent(0), "the bucket is empty at t");
    app.clock.set(t + Duration::seconds(1));
    assert_eq!(m.tick().await.unwrap(), sent(5));
    app.clock.set(t + Duration::seconds(2));
    assert_eq!(m.tick().await.unwrap(), sent(2), "the last two");
    app.clock.set(t + Duration::seconds(3));
    assert_eq!(m.tick().await.unwrap(), sent(0));
    let rcpts: BTreeSet<_> = mails(&r).into_iter().map(|g| g.rcpt).collect();
    assert_eq!(rcpts.len(), 12, "each reader once");
    assert_eq!(mails(&r).len(), 12);
}

async fn failed_mail_is_retried_with_backoff_then_fails(app: TestApp) {
    let r = Receiver::start(vec![Behaviour {
        data_reply: "451 4.3.0 Try again later",
        ..Behaviour::default()
    }])
    .await;
    let m = mailer_on(&app.store, &app, Some(&r), 100.0, 3);
    let p = page(&app, "acme").await;
    subscriber(&app, p, "reader@example.com", vec![]).await;
    publish(&app, p, "Checkout errors", &[]).await;
    let t = now(&app);
    let retrying = StatusTick {
        retrying: 1,
        ..StatusTick::default()
    };
    assert_eq!(m.tick().await.unwrap(), retrying);
    let row = outbox(&app, p).await.remove(0);
    assert_eq!(row.status, StatusDeliveryState::Pending);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.next_attempt_at, Some(t + Duration::seconds(30)));
    assert!(
        row.last_error.as_deref().unwrap().contains("451"),
        "{row:?}"
    );
    app.clock.set(t + Duration::seconds(29));
    assert_eq!(m.tick().await.unwrap(), StatusTick::default());
    app.clock.set(t + Duration::seconds(30));
    assert_eq!(m.tick().await.unwrap(), retrying);
    let row = outbox(&app, p).await.remove(0);
    assert_eq!(
        row.next_attempt_at,
        Some(t + Duration::seconds(30) + Duration::minutes(2))
    );
    app.clock.set(t + Duration::seconds(150));
    assert_eq!(
        m.tick().await.unwrap(),
        StatusTick {
            failed: 1,
            ..StatusTick::default()
        }
    );
    let row = outbox(&app, p).await.remove(0);
    assert_eq!((row.status, row.attempts), (StatusDeliveryState::Failed, 3));
    let error = row.last_error.unwrap();
    assert!(error.starts_with("gave up after 3 attempts: "), "{error}");
    assert!(
        error.contains("answered 451: 4.3.0 Try again later"),
        "{error}"
    );
    app.clock.advance(Duration::hours(5));
    assert_eq!(m.tick().await.unwrap(), StatusTick::default());
    assert_eq!(mails(&r).len(), 3, "three attempts, then nothing");
    assert_eq!(app.store.status_delivery_stats().await.unwrap().failed, 1);
}

async fn a_restarted_or_second_worker_never_sends_twice(app: TestApp) {
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let p = page(&app, "acme").await;
    for i in 0..12 {
        subscriber(&app, p, &format!("reader{i}@example.com"), vec![]).await;
    }
    let post = publish(&app, p, "Checkout errors", &[]).await;
    let first = mailer_on(&app.store, &app, Some(&r), 5.0, 5);
    assert_eq!(first.tick().await.unwrap(), sent(5));
    // The first worker claims three more and dies before sending them.
    let held = app
        .store
        .claim_status_deliveries(now(&app), 3, first.lease(), true)
        .await
        .unwrap();
    assert_eq!(held.len(), 3);
    drop(first);

    // Restarted (a new process: its own connections and bucket).
    let store = Store::connect(&app.db_url, &StoreOptions::default())
        .await
        .unwrap();
    let second = mailer_on(&store, &app, Some(&r), 5.0, 5);
    assert_eq!(
        second.tick().await.unwrap(),
        sent(4),
        "the rows nobody held"
    );
    app.clock.advance(Duration::seconds(1));
    assert_eq!(second.tick().await.unwrap(), sent(0), "still held");
    app.clock
        .advance(chrono::Duration::from_std(second.lease()).unwrap());
    assert_eq!(second.tick().await.unwrap(), sent(3), "taken over");
    // The dead worker's late word changes nothing.
    let late = AttemptOutcome::Failed {
        reason: "late".into(),
        status: None,
    };
    assert!(!app
        .store
        .record_status_delivery(held[0].id, held[0].attempt, &late, now(&app))
        .await
        .unwrap());
    let rows = outbox(&app, p).await;
    assert!(rows.iter().all(|d| d.status == StatusDeliveryState::Sent));
    let got = mails(&r);
    assert_eq!(got.len(), 12);
    let rcpts: BTreeSet<_> = got.iter().map(|g| g.rcpt.clone()).collect();
    assert_eq!(rcpts.len(), 12);

    // Two workers on one database claim disjoint rows.
    update(&app, post, "identified", "A bad deploy.").await;
    let a = mailer_on(&app.store, &app, Some(&r), 100.0, 5);
    let b = mailer_on(&store, &app, Some(&r), 100.0, 5);
    let (ta, tb) = tokio::join!(a.tick(), b.tick());
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert_eq!(ta.sent + tb.sent, 12, "{ta:?} {tb:?}");
    assert_eq!(a.tick().await.unwrap(), sent(0));
    let got = mails(&r);
    assert_eq!(got.len(), 24);
    let ids: BTreeSet<_> = got
        .iter()
        .map(|g| g.parsed().message_id().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 24, "every message once");
    store.close().await;
}

/// A webhook receiver: checks `Tocsin-Signature` with the subscriber's secret
/// at the fake clock's time (401 when it does not verify), then answers as scripted.
#[derive(Clone)]
struct Hook {
    secret: Arc<Mutex<Vec<u8>>>,
    clock: FakeClock,
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes, u16)>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Hook {
    async fn start(clock: &FakeClock, script: Vec<u16>) -> (Hook, String) {
        let hook = Hook {
            secret: Arc::default(),
            clock: clock.clone(),
            seen: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        };
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (hook, url)
    }

    fn seen(&self) -> Vec<(HeaderMap, Bytes, u16)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn receive(State(h): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let secret = h.secret.lock().unwrap().clone();
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let verified = verify_signature(
        &secret,
        signature,
        &body,
        h.clock.now(),
        StdDuration::from_secs(300),
    );
    let code = match verified {
        Ok(()) => h.script.lock().unwrap().pop_front().unwrap_or(204),
        Err(_) => 401,
    };
    h.seen.lock().unwrap().push((headers, body, code));
    StatusCode::from_u16(code).unwrap()
}

async fn webhook_subscriber(app: &TestApp, p: i64, hook: &Hook, url: &str) -> i64 {
    let (s, secret) = app
        .store
        .add_subscriber(
            p,
            &NewSubscriber {
                kind: SubscriberKind::Webhook,
                address: url.into(),
                component_ids: vec![],
                confirmed: false,
            },
            &actor(app),
            now(app),
        )
        .await
        .unwrap();
    *hook.secret.lock().unwrap() = secret.expect("a webhook's secret").into_bytes();
    s.id
}

async fn webhooks_are_signed_with_the_subscriber_s_secret_and_retried(app: TestApp) {
    let m = mailer(&app, None);
    let p = page(&app, "acme").await;
    let api = component(&app, p, "API").await;
    let (hook, url) = Hook::start(&app.clock, vec![503]).await;
    let sid = webhook_subscriber(&app, p, &hook, &url).await;
    let (gone, gone_url) = Hook::start(&app.clock, vec![410]).await;
    webhook_subscriber(&app, p, &gone, &gone_url).await;
    let post = publish(&app, p, "API errors", &[api]).await;
    let t = now(&app);
    assert_eq!(
        m.tick().await.unwrap(),
        StatusTick {
            retrying: 1,
            failed: 1,
            ..StatusTick::default()
        }
    );
    let rows = outbox(&app, p).await;
    let failed = rows.iter().find(|d| d.subscriber_id != sid).unwrap();
    assert_eq!(failed.status, StatusDeliveryState::Failed);
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("HTTP 410 Gone"),
        "{failed:?}"
    );
    app.clock.set(t + Duration::seconds(30));
    assert_eq!(m.tick().await.unwrap(), sent(1));
    assert_eq!(m.tick().await.unwrap(), sent(0));

    let seen = hook.seen();
    assert_eq!(
        seen.iter().map(|s| s.2).collect::<Vec<_>>(),
        [503, 204],
        "both verified with the subscriber's secret"
    );
    let row = rows.iter().find(|d| d.subscriber_id == sid).unwrap();
    let key = format!("update:{}:{sid}", row.update_id.unwrap());
    for (headers, _, _) in &seen {
        assert_eq!(headers["idempotency-key"], key.as_str());
        assert_eq!(headers["content-type"], "application/json");
    }
    let (headers, raw, _) = &seen[1];
    let body: Value = serde_json::from_slice(raw).unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["kind"], "update");
    assert_eq!(body["idempotency_key"], key.as_str());
    assert_eq!(body["page"]["url"], format!("{BASE}/status/acme"));
    assert_eq!(body["page"]["name"], "Acme");
    assert_eq!(body["post"]["id"], post);
    assert_eq!(body["post"]["kind"], "incident");
    assert_eq!(body["post"]["status"], "investigating");
    assert_eq!(body["post"]["impact"], "major");
    assert_eq!(
        body["post"]["url"],
        format!("{BASE}/status/acme/incidents/{post}")
    );
    assert_eq!(body["update"]["id"], row.update_id.unwrap());
    assert_eq!(
        body["update"]["body"],
        "We are looking into errors at checkout."
    );
    assert_eq!(body["affected_components"][0]["id"], api);
    assert_eq!(
        body["affected_components"][0]["new_status"],
        "partial_outage"
    );

    // A tampered body fails the receiver's check.
    let secret = hook.secret.lock().unwrap().clone();
    let signature = headers[SIGNATURE_HEADER].to_str().unwrap().to_string();
    let tampered = String::from_utf8(raw.to_vec())
        .unwrap()
        .replace("investigating", "resolved");
    assert_eq!(
        verify_signature(
            &secret,
            Some(&signature),
            tampered.as_bytes(),
            now(&app),
            StdDuration::from_secs(300)
        ),
        Err(SignatureError::Mismatch)
    );
    let answer = reqwest::Client::new()
        .post(&url)
        .header(SIGNATURE_HEADER, &signature)
        .header("content-type", "application/json")
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    // The secret is the subscriber's own, derived again the same.
    assert_eq!(
        app.store
            .status_webhook_secret(sid, now(&app))
            .await
            .unwrap()
            .into_bytes(),
        secret
    );
}

async fn without_smtp_email_waits_and_says_why(app: TestApp) {
    let m = mailer(&app, None);
    assert!(!m.email_available());
    let p = page(&app, "acme").await;
    subscriber(&app, p, "reader@example.com", vec![]).await;
    let (hook, url) = Hook::start(&app.clock, vec![]).await;
    webhook_subscriber(&app, p, &hook, &url).await;
    publish(&app, p, "Checkout errors", &[]).await;
    assert_eq!(m.tick().await.unwrap(), sent(1), "the webhook goes");
    app.clock.advance(Duration::hours(1));
    assert_eq!(m.tick().await.unwrap(), sent(0));
    let rows = outbox(&app, p).await;
    let email = rows
        .iter()
        .find(|d| d.subscriber_kind == SubscriberKind::Email)
        .unwrap();
    assert_eq!(
        (email.status, email.attempts, email.last_error.as_deref()),
        (StatusDeliveryState::Pending, 0, Some(NO_SMTP))
    );
    assert_eq!(hook.seen().len(), 1);

    // Once a relay is configured (a restart), the mail goes.
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let with_relay = mailer(&app, Some(&r));
    assert_eq!(with_relay.tick().await.unwrap(), sent(1));
    assert_eq!(mails(&r).len(), 1);
}

async fn the_running_worker_is_woken_by_new_mail_and_stops_on_shutdown(app: TestApp) {
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let p = page(&app, "acme").await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(mailer(&app, Some(&r)).run(stopped));
    // Nothing is due: the worker sleeps (up to its longest sleep) until the
    // subscription's commit wakes it.
    let reader = EmailAddress::parse("email", "reader@example.com").unwrap();
    app.store
        .subscribe_email(p, &reader, &[], now(&app))
        .await
        .unwrap();
    tokio::time::timeout(StdDuration::from_secs(10), r.messages(1))
        .await
        .expect("the confirmation arrives without waiting for a poll");
    stop.send(true).unwrap();
    tokio::time::timeout(StdDuration::from_secs(10), worker)
        .await
        .expect("the worker stops on shutdown")
        .unwrap();
    assert_eq!(mails(&r)[0].rcpt, to("reader@example.com"));
    let rows = outbox(&app, p).await;
    assert_eq!(
        rows[0].status,
        StatusDeliveryState::Sent,
        "recorded before stopping"
    );
}
