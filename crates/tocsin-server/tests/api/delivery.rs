//! The delivery worker over a real database, a fake clock and a real local
//! webhook receiver that answers as each test scripts it: retries with backoff
//! on 5xx, on a receiver that hangs, and after the wait a 429 asked for; a 400
//! fails at once and, being the last way to reach the paged user, brings the
//! next escalation level forward; every attempt is on the timeline and in the
//! per-user listing; two senders (two nodes) never send one request twice.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tocsin_core::escalation::Channel;
use tocsin_core::time::Clock;
use tocsin_engine::delivery::RecordingDelivery;
use tocsin_engine::jobs::Runner;
use tocsin_engine::render::Renderer;
use tocsin_engine::sender::{Attempted, ChannelLimits, Providers, Sender, SenderConfig};
use tocsin_notify::{WebhookConfig, WebhookProvider};
use tocsin_store::{AttemptOutcome, Store};

use crate::support::{user, TestApp};

/// What the receiver does with one request.
#[derive(Clone)]
enum Reply {
    Status(u16),
    RetryAfter(u16, &'static str),
    Hang,
    /// 200 after this long (the far side is slow).
    Slow(u64),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    who: String,
    key: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Receiver {
    // Replies per path segment (a user's name); 200 once a script runs out.
    script: Arc<Mutex<std::collections::HashMap<String, VecDeque<Reply>>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    // Requests being answered now, and the most there ever were at once.
    in_flight: Arc<Mutex<(usize, usize)>>,
}

impl Receiver {
    async fn start() -> (Receiver, SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let r = Receiver::default();
        let app = axum::Router::new()
            .route("/hook/{who}", axum::routing::post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        (r, addr, stop)
    }

    fn script(&self, who: &str, replies: Vec<Reply>) {
        self.script
            .lock()
            .unwrap()
            .insert(who.to_string(), replies.into());
    }

    fn seen(&self, who: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.who == who)
            .cloned()
            .collect()
    }
}

async fn receive(
    State(r): State<Receiver>,
    Path(who): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    r.seen.lock().unwrap().push(Seen {
        who: who.clone(),
        key,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = r
        .script
        .lock()
        .unwrap()
        .get_mut(&who)
        .and_then(|s| s.pop_front())
        .unwrap_or(Reply::Status(200));
    match reply {
        Reply::Status(s) => AxumStatus::from_u16(s).unwrap().into_response(),
        Reply::RetryAfter(s, after) => (
            AxumStatus::from_u16(s).unwrap(),
            [("retry-after", after)],
            "slow down",
        )
            .into_response(),
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Reply::Slow(ms) => {
            {
                let mut f = r.in_flight.lock().unwrap();
                f.0 += 1;
                f.1 = f.1.max(f.0);
            }
            tokio::time::sleep(StdDuration::from_millis(ms)).await;
            r.in_flight.lock().unwrap().0 -= 1;
            AxumStatus::OK.into_response()
        }
    }
}

struct Fixture {
    receiver: Receiver,
    receiver_url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    ada: i64,
    bo: i64,
    service: i64,
    rec: RecordingDelivery,
    runner: Runner,
}

/// Ada (level 0, 10 minutes) and Bo (level 1), each reached only by a
/// webhook to the local receiver (`/hook/ada`, `/hook/bo`).
async fn fixture(app: &TestApp) -> Fixture {
    let (receiver, addr, stop) = Receiver::start().await;
    let ada = user(app, "Ada").await;
    let bo = user(app, "Bo").await;
    for (id, name) in [(ada, "ada"), (bo, "bo")] {
        let m = app
            .post(
                &format!("/api/v1/users/{id}/contact-methods"),
                json!({ "kind": "webhook", "address": format!("http://{addr}/hook/{name}"), "verified": true }),
            )
            .await;
        assert_eq!(m.status, StatusCode::CREATED, "{}", m.body);
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/users/{id}/notification-rules"),
                Some(&app.admin_token),
                Some(
                    json!({ "rules": [{ "urgency": "high", "contact_method_id": m.body["id"],
                                          "delay_minutes": 0 }] }),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let p = app
        .post(
            "/api/v1/escalation-policies",
            json!({ "name": "Payments", "levels": [
                { "targets": [{ "user": ada }], "delay_minutes": 10 },
                { "targets": [{ "user": bo }], "delay_minutes": 10 }] }),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let svc = app
        .post("/api/v1/services", json!({ "name": "payments" }))
        .await;
    let service = svc.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/services/{service}/escalation-policy"),
            Some(&app.admin_token),
            Some(json!({ "escalation_policy_id": p.body["id"] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rec = RecordingDelivery::default();
    let runner = Runner::new(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        Arc::new(rec.clone()),
    );
    Fixture {
        receiver,
        receiver_url: format!("http://{addr}/hook/"),
        _stop: stop,
        ada,
        bo,
        service,
        rec,
        runner,
    }
}

fn sender(store: &Store, app: &TestApp, limits: ChannelLimits, config: SenderConfig) -> Sender {
    let webhook = WebhookProvider::new(WebhookConfig::new("test-secret"))
        .unwrap()
        .with_clock(Arc::new(app.clock.clone()));
    Sender::new(
        store.clone(),
        Arc::new(app.clock.clone()),
        Providers::new().with(Channel::Webhook, Arc::new(webhook), limits),
        Renderer::new("https://tocsin.example"),
        config,
    )
}

fn quick() -> ChannelLimits {
    ChannelLimits {
        timeout: StdDuration::from_millis(300),
        ..Default::default()
    }
}

impl Fixture {
    async fn page(&self, app: &TestApp, title: &str) -> i64 {
        let inc = app
            .declare(json!({ "title": title, "service_ids": [self.service], "page": true }))
            .await;
        inc["id"].as_i64().unwrap()
    }

    /// Runs the job runner and sends what it handed, as the running worker does.
    async fn tick_and_send(&self, s: &Sender) -> Vec<Attempted> {
        let before = self.rec.requests().len();
        self.runner.tick().await.expect("tick");
        let mut out = Vec::new();
        for req in self.rec.requests().into_iter().skip(before) {
            out.push(s.deliver(req).await.expect("deliver"));
        }
        out
    }
}

async fn notifications(app: &TestApp, id: i64) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/incidents/{id}/notifications"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

fn kinds(timeline: &[Value], prefix: &str) -> Vec<String> {
    timeline
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

fn at(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn five_hundred_three_times_then_200_delivers_once(app: TestApp) {
    let f = fixture(&app).await;
    f.receiver.script(
        "ada",
        vec![Reply::Status(500), Reply::Status(502), Reply::Status(503)],
    );
    let s = sender(&app.store, &app, quick(), SenderConfig::default());
    let id = f.page(&app, "Card payments failing").await;
    let t0 = app.clock.now();
    f.tick_and_send(&s).await;
    // Backoff 2 s, 4 s, 8 s, each 80–100% of that (jitter).
    for (attempt, full) in [(1, 2), (2, 4), (3, 8)] {
        let n = notifications(&app, id).await;
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0]["delivery"], "pending", "{n:?}");
        assert_eq!(n[0]["attempts"], attempt);
        let wait = at(&n[0]["next_attempt_at"]) - app.clock.now();
        assert!(
            wait >= Duration::milliseconds(full * 800) && wait <= Duration::seconds(full),
            "attempt {attempt}: waits {wait}"
        );
        // Not before its time.
        app.clock
            .set(at(&n[0]["next_attempt_at"]) - Duration::milliseconds(1));
        assert!(s.deliver_due().await.unwrap().is_empty());
        app.clock.set(at(&n[0]["next_attempt_at"]));
        assert_eq!(s.deliver_due().await.unwrap().len(), 1);
    }
    let n = notifications(&app, id).await;
    assert_eq!(n[0]["delivery"], "sent", "{n:?}");
    assert_eq!(n[0]["attempts"], 4);
    let log = n[0]["attempt_log"].as_array().unwrap();
    let outcomes: Vec<_> = log
        .iter()
        .map(|a| (a["outcome"].as_str().unwrap(), a["http_status"].as_i64()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("retry", Some(500)),
            ("retry", Some(502)),
            ("retry", Some(503)),
            ("sent", Some(200))
        ]
    );
    assert!(log[0]["detail"].as_str().unwrap().contains("HTTP 500"));
    // Four requests, one message: the same idempotency key each time, and
    // nothing more arrives however often the worker looks.
    app.clock.advance(Duration::hours(1));
    assert!(s.deliver_due().await.unwrap().is_empty());
    let seen = f.receiver.seen("ada");
    assert_eq!(seen.len(), 4);
    assert!(seen
        .iter()
        .all(|x| x.key == seen[0].key && !x.key.is_empty()));
    assert_eq!(seen[3].body["incident"]["id"], id);
    let actions = seen[3].body["incident"]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(actions[0]["href"]
        .as_str()
        .unwrap()
        .starts_with("https://tocsin.example/actions/"));
    let tl = app.timeline(id).await;
    assert_eq!(
        kinds(&tl, "notification."),
        [
            "notification.retrying",
            "notification.retrying",
            "notification.retrying",
            "notification.sent"
        ]
    );
    assert!(app.clock.now() > t0);
    // Bo was never involved: Ada's page got through before level 1 was due.
    assert!(f.receiver.seen("bo").is_empty());
}

async fn a_hanging_receiver_times_out_and_is_retried(app: TestApp) {
    let f = fixture(&app).await;
    f.receiver.script("ada", vec![Reply::Hang]);
    let s = sender(&app.store, &app, quick(), SenderConfig::default());
    let id = f.page(&app, "Slow receiver").await;
    let started = std::time::Instant::now();
    let done = f.tick_and_send(&s).await;
    assert!(started.elapsed() < StdDuration::from_secs(5));
    match &done[..] {
        [Attempted::Recorded(AttemptOutcome::Retry { reason, .. })] => {
            assert!(reason.contains("no answer within"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let n = notifications(&app, id).await;
    app.clock.set(at(&n[0]["next_attempt_at"]));
    s.deliver_due().await.unwrap();
    let n = notifications(&app, id).await;
    assert_eq!(n[0]["delivery"], "sent", "{n:?}");
    assert_eq!(n[0]["attempts"], 2);
    assert_eq!(f.receiver.seen("ada").len(), 2);
}

async fn retry_after_is_honoured(app: TestApp) {
    let f = fixture(&app).await;
    f.receiver
        .script("ada", vec![Reply::RetryAfter(429, "120")]);
    let s = sender(&app.store, &app, quick(), SenderConfig::default());
    let id = f.page(&app, "Rate limited").await;
    let t0 = app.clock.now();
    f.tick_and_send(&s).await;
    let n = notifications(&app, id).await;
    assert_eq!(at(&n[0]["next_attempt_at"]), t0 + Duration::seconds(120));
    assert_eq!(n[0]["attempt_log"][0]["http_status"], 429);
    app.clock.set(t0 + Duration::seconds(119));
    assert!(s.deliver_due().await.unwrap().is_empty());
    app.clock.set(t0 + Duration::seconds(120));
    assert_eq!(s.deliver_due().await.unwrap().len(), 1);
    assert_eq!(notifications(&app, id).await[0]["delivery"], "sent");
    assert_eq!(f.receiver.seen("ada").len(), 2);
    let metrics = app.get("/metrics").await;
    let text = String::from_utf8(metrics.bytes).unwrap();
    assert!(
        text.contains("tocsin_notifications_delivery{state=\"sent\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tocsin_notifications_delivery{state=\"pending\"} 0"),
        "{text}"
    );
}

async fn a_400_fails_at_once_and_the_next_level_is_paged_now(app: TestApp) {
    let f = fixture(&app).await;
    f.receiver.script("ada", vec![Reply::Status(400)]);
    let s = sender(&app.store, &app, quick(), SenderConfig::default());
    let id = f.page(&app, "Refused page").await;
    let t0 = app.clock.now();
    f.tick_and_send(&s).await;
    let n = notifications(&app, id).await;
    assert_eq!(n[0]["delivery"], "failed", "{n:?}");
    assert_eq!(n[0]["attempts"], 1);
    assert!(n[0]["last_response"].as_str().unwrap().contains("HTTP 400"));
    // Not retried, ever.
    app.clock.advance(Duration::minutes(5));
    assert!(s.deliver_due().await.unwrap().is_empty());
    app.clock.set(t0);
    // Ada cannot be reached: level 1 (Bo) is due now, not in 10 minutes.
    let tl = app.timeline(id).await;
    let unreachable = tl
        .iter()
        .find(|e| e["kind"] == "notification.user_unreachable")
        .expect("unreachable event");
    assert_eq!(unreachable["data"]["user_id"], f.ada);
    assert_eq!(unreachable["data"]["escalating_to"], 1);
    f.tick_and_send(&s).await;
    let bo = f.receiver.seen("bo");
    assert_eq!(bo.len(), 1, "Bo is paged at once");
    assert_eq!(bo[0].body["incident"]["level"], 1);
    let tl = app.timeline(id).await;
    let notified: Vec<_> = tl
        .iter()
        .filter(|e| e["kind"] == "escalation.notified")
        .collect();
    assert_eq!(notified.len(), 2);
    assert_eq!(notified[1]["data"]["level"], 1);
    assert_eq!(at(&notified[1]["at"]), t0);
    assert!(notified[1]["data"]["reason"]
        .as_str()
        .unwrap()
        .contains(&format!("user {} at level 0 failed", f.ada)));
    // Per user: Ada's listing shows the failure, Bo's the delivery.
    let r = app
        .get(&format!("/api/v1/users/{}/notifications", f.ada))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body[0]["delivery"], "failed");
    assert_eq!(r.body[0]["attempt_log"][0]["outcome"], "failed");
    let r = app
        .get(&format!("/api/v1/users/{}/notifications", f.bo))
        .await;
    assert_eq!(r.body[0]["delivery"], "sent");
}

async fn out_of_attempts_fails_and_channels_without_a_provider_fail_at_once(app: TestApp) {
    let f = fixture(&app).await;
    f.receiver.script("ada", vec![Reply::Status(503); 10]);
    let config = SenderConfig {
        max_attempts: 3,
        ..Default::default()
    };
    let s = sender(&app.store, &app, quick(), config);
    let id = f.page(&app, "Receiver down").await;
    f.tick_and_send(&s).await;
    for _ in 0..2 {
        let n = notifications(&app, id).await;
        app.clock.set(at(&n[0]["next_attempt_at"]));
        s.deliver_due().await.unwrap();
    }
    let n = notifications(&app, id).await;
    assert_eq!(n[0]["delivery"], "failed", "{n:?}");
    assert_eq!(n[0]["attempts"], 3);
    assert!(n[0]["last_response"]
        .as_str()
        .unwrap()
        .starts_with("gave up after 3 attempts: HTTP 503"));
    // A worker with no webhook provider fails Bo's page at once, saying why.
    let none = Sender::new(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        Providers::new(),
        Renderer::new("https://tocsin.example"),
        SenderConfig::default(),
    );
    f.tick_and_send(&none).await;
    let n = notifications(&app, id).await;
    let bo = n.iter().find(|x| x["user_id"] == f.bo).expect("Bo paged");
    assert_eq!(bo["delivery"], "failed");
    assert_eq!(bo["last_response"], "no webhook provider is configured");
    let tl = app.timeline(id).await;
    assert!(kinds(&tl, "escalation.").contains(&"escalation.notified".to_string()));
}

async fn acknowledging_stops_retries(app: TestApp) {
    let f = fixture(&app).await;
    f.receiver.script("ada", vec![Reply::Status(500)]);
    let s = sender(&app.store, &app, quick(), SenderConfig::default());
    let id = f.page(&app, "Ack me").await;
    f.tick_and_send(&s).await;
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/status"),
            json!({ "status": "acknowledged" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    app.clock.advance(Duration::minutes(1));
    assert!(s.deliver_due().await.unwrap().is_empty());
    let n = notifications(&app, id).await;
    assert_eq!(n[0]["delivery"], "cancelled", "{n:?}");
    assert_eq!(f.receiver.seen("ada").len(), 1);
}

/// Acknowledged while an attempt is under way: the attempt fails, and no retry
/// follows (the escalation no longer runs).
async fn acknowledging_during_an_attempt_stops_its_retries(app: TestApp) {
    let f = fixture(&app).await;
    f.receiver.script("ada", vec![Reply::Hang]);
    let limits = ChannelLimits {
        timeout: StdDuration::from_secs(2),
        ..Default::default()
    };
    let s = sender(&app.store, &app, limits, SenderConfig::default());
    let id = f.page(&app, "Ack mid-call").await;
    f.runner.tick().await.unwrap();
    let req = f.rec.requests().pop().expect("handed");
    let sending = tokio::spawn({
        let s = s.clone();
        async move { s.deliver(req).await }
    });
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while f.receiver.seen("ada").is_empty() {
        assert!(std::time::Instant::now() < deadline, "never sent");
        tokio::task::yield_now().await;
    }
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/status"),
            json!({ "status": "acknowledged" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    sending.await.unwrap().unwrap();
    let n = notifications(&app, id).await;
    assert_eq!(n[0]["delivery"], "cancelled", "{n:?}");
    app.clock.advance(Duration::minutes(10));
    assert!(s.deliver_due().await.unwrap().is_empty());
    assert_eq!(f.receiver.seen("ada").len(), 1);
    let tl = app.timeline(id).await;
    assert!(!kinds(&tl, "notification.").contains(&"notification.retrying".to_string()));
}

/// A retry goes nowhere once its contact method has moved (and so is
/// unverified): the new address was never paged, and the old one is not the user's.
async fn a_retry_is_dropped_when_the_method_changes(app: TestApp) {
    let f = fixture(&app).await;
    f.receiver.script("ada", vec![Reply::Status(503)]);
    let s = sender(&app.store, &app, quick(), SenderConfig::default());
    let id = f.page(&app, "Moving target").await;
    f.tick_and_send(&s).await;
    let methods = app
        .get(&format!("/api/v1/users/{}/contact-methods", f.ada))
        .await;
    let method = methods.body[0]["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{}/contact-methods/{method}", f.ada),
            Some(&app.admin_token),
            Some(json!({ "address": f.receiver_url.replace("/hook/", "/hook/elsewhere") })),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    app.clock.advance(Duration::minutes(1));
    assert!(s.deliver_due().await.unwrap().is_empty());
    assert_eq!(notifications(&app, id).await[0]["delivery"], "cancelled");
    assert_eq!(f.receiver.seen("ada").len(), 1);
    assert!(f.receiver.seen("elsewhere").is_empty());
}

/// Senders cut off after the hand-off (a node died): once their lease runs out,
/// two other senders race for the requests and each goes out exactly once.
async fn two_senders_never_send_one_request_twice(app: TestApp) {
    let f = fixture(&app).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(f.page(&app, &format!("race {i}")).await);
    }
    f.runner.tick().await.unwrap();
    assert_eq!(f.rec.requests().len(), 6);
    // Nobody sends them (their node is gone) until the lease ends.
    let other = Store::connect(&app.db_url, &Default::default())
        .await
        .unwrap();
    let a = sender(&app.store, &app, quick(), SenderConfig::default());
    let b = sender(&other, &app, quick(), SenderConfig::default());
    assert!(a.deliver_due().await.unwrap().is_empty());
    app.clock.advance(Duration::seconds(61));
    let (x, y) = tokio::join!(a.deliver_due(), b.deliver_due());
    assert_eq!(x.unwrap().len() + y.unwrap().len(), 6);
    let seen = f.receiver.seen("ada");
    let mut keys: Vec<_> = seen.iter().map(|s| s.key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((seen.len(), keys.len()), (6, 6), "{seen:?}");
    for id in ids {
        let n = notifications(&app, id).await;
        assert_eq!(n[0]["delivery"], "sent");
        // The hand-off's attempt was cut off: the log starts at attempt 2.
        assert_eq!(n[0]["attempt_log"][0]["attempt"], 2);
    }
    other.close().await;
}

/// A channel's concurrency limit holds however many requests are due at once.
async fn a_channel_sends_no_more_at_once_than_its_limit(app: TestApp) {
    let f = fixture(&app).await;
    f.receiver.script("ada", vec![Reply::Slow(100); 6]);
    for i in 0..6 {
        f.page(&app, &format!("burst {i}")).await;
    }
    f.runner.tick().await.unwrap();
    app.clock.advance(Duration::seconds(61));
    let limits = ChannelLimits {
        concurrency: 2,
        timeout: StdDuration::from_secs(5),
        ..Default::default()
    };
    let s = sender(&app.store, &app, limits, SenderConfig::default());
    assert_eq!(s.deliver_due().await.unwrap().len(), 6);
    assert_eq!(f.receiver.seen("ada").len(), 6);
    let most = f.receiver.in_flight.lock().unwrap().1;
    assert!(most <= 2, "{most} requests at once");
}

/// Twilio's status callback: a text that was accepted but not delivered fails
/// the notification afterwards and, Ada being out of reach, pages Bo now; a
/// forged callback changes nothing; `delivered` goes on the timeline.
async fn a_later_delivery_failure_reported_by_twilio_escalates(app: TestApp) {
    use crate::twilio_replies::{post_to, sign, twilio_node, PUBLIC};
    let f = fixture(&app).await;
    let base = twilio_node(&app).await;
    let s = sender(&app.store, &app, quick(), SenderConfig::default());
    let id = f.page(&app, "Accepted, then undelivered").await;
    f.tick_and_send(&s).await;
    let n = notifications(&app, id).await;
    assert_eq!(n[0]["delivery"], "sent");
    let key = n[0]["idempotency_key"].as_str().unwrap().to_string();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("key", &key)
        .finish();
    let path = format!("/hooks/twilio/status?{query}");
    let url = format!("{PUBLIC}{path}");
    let params = |status: &'static str| {
        vec![
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("MessageStatus", status),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ]
    };
    // Forged: refused, nothing changes.
    let before = app.counts().await;
    let r = post_to(&base, &path, &params("undelivered"), Some("forged")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.counts().await, before);
    // Progress states change nothing.
    let p = params("sent");
    let r = post_to(&base, &path, &p, Some(&sign(&url, &p))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.counts().await, before);
    let p = params("undelivered");
    let r = post_to(&base, &path, &p, Some(&sign(&url, &p))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let n = notifications(&app, id).await;
    assert_eq!(n[0]["delivery"], "failed", "{n:?}");
    assert_eq!(n[0]["last_response"], "webhook: undelivered");
    let tl = app.timeline(id).await;
    let failed = tl
        .iter()
        .find(|e| e["kind"] == "notification.failed")
        .expect("failed event");
    assert_eq!(failed["data"]["provider_status"], "undelivered");
    let unreachable = tl
        .iter()
        .find(|e| e["kind"] == "notification.user_unreachable")
        .expect("unreachable");
    assert_eq!(unreachable["data"]["escalating_to"], 1);
    f.tick_and_send(&s).await;
    assert_eq!(f.receiver.seen("bo").len(), 1, "Bo is paged at once");
    // Bo's text is delivered: on the timeline, nothing else changes.
    let bo_key = notifications(&app, id).await[1]["idempotency_key"]
        .as_str()
        .unwrap()
        .to_string();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("key", &bo_key)
        .finish();
    let path = format!("/hooks/twilio/status?{query}");
    let p = params("delivered");
    let r = post_to(
        &base,
        &path,
        &p,
        Some(&sign(&format!("{PUBLIC}{path}"), &p)),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(notifications(&app, id).await[1]["delivery"], "sent");
    let tl = app.timeline(id).await;
    assert!(tl
        .iter()
        .any(|e| e["kind"] == "notification.delivered" && e["data"]["user_id"] == f.bo));
    // A report about another message (an earlier attempt's sid) changes nothing.
    let mut db = sqlx::AnyConnection::connect(&app.db_url).await.unwrap();
    sqlx::query("UPDATE notification_requests SET provider_id = 'SMsecondattempt' WHERE idempotency_key = $1")
        .bind(&bo_key)
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let p = params("undelivered");
    let r = post_to(
        &base,
        &path,
        &p,
        Some(&sign(&format!("{PUBLIC}{path}"), &p)),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(notifications(&app, id).await[1]["delivery"], "sent");
    // An unknown key is not found.
    let path = "/hooks/twilio/status?key=nope";
    let r = post_to(&base, path, &p, Some(&sign(&format!("{PUBLIC}{path}"), &p))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn only_the_user_or_an_admin_sees_their_notifications(app: TestApp) {
    let f = fixture(&app).await;
    let (_, token) = app.user_with_role("viewer").await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{}/notifications", f.ada),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app.get("/api/v1/users/999999/notifications").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

/// A verification code goes out through the delivery worker at once (no job,
/// no page), verifies the method when entered, and is gone from the outbox
/// once sent; a test notification follows the same path.
async fn a_verification_code_is_delivered_and_verifies(app: TestApp) {
    let f = fixture(&app).await;
    let hook = f.receiver_url.replace("/hook/", "/hook/cy");
    let m = app
        .post(
            &format!("/api/v1/users/{}/contact-methods", f.bo),
            json!({ "kind": "webhook", "address": hook }),
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED, "{}", m.body);
    assert_eq!(m.body["verified"], false);
    let method = m.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/users/{}/contact-methods/{method}", f.bo);
    let r = app.post(&format!("{path}/verification"), json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let s = sender(&app.store, &app, quick(), SenderConfig::default());
    assert_eq!(s.deliver_due().await.unwrap().len(), 1);
    let seen = f.receiver.seen("cy");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["event"], "oncall.notify");
    let text = seen[0].body["message"]["long"]
        .as_str()
        .unwrap()
        .to_string();
    let code: String = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_string();
    let r = app
        .post(&format!("{path}/verify"), json!({ "code": code }))
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let listed = app
        .get(&format!("/api/v1/users/{}/notifications", f.bo))
        .await;
    let v = &listed.body[0];
    assert_eq!(
        (v["reason"].as_str(), v["delivery"].as_str()),
        (Some("verification"), Some("sent"))
    );
    let stored: String =
        sqlx::query_scalar("SELECT message FROM notification_requests WHERE id = $1")
            .bind(v["id"].as_i64().unwrap())
            .fetch_one(&mut sqlx::AnyConnection::connect(&app.db_url).await.unwrap())
            .await
            .unwrap();
    assert!(
        !stored.contains(&code),
        "the code stays in the outbox: {stored}"
    );
    // Verified: a test notification goes out the same way.
    let r = app.post(&format!("{path}/test"), json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(s.deliver_due().await.unwrap().len(), 1);
    assert_eq!(f.receiver.seen("cy").len(), 2);
}

crate::both_backends!(
    five_hundred_three_times_then_200_delivers_once,
    a_hanging_receiver_times_out_and_is_retried,
    retry_after_is_honoured,
    a_400_fails_at_once_and_the_next_level_is_paged_now,
    out_of_attempts_fails_and_channels_without_a_provider_fail_at_once,
    acknowledging_stops_retries,
    acknowledging_during_an_attempt_stops_its_retries,
    a_retry_is_dropped_when_the_method_changes,
    two_senders_never_send_one_request_twice,
    only_the_user_or_an_admin_sees_their_notifications,
    a_channel_sends_no_more_at_once_than_its_limit,
    a_later_delivery_failure_reported_by_twilio_escalates,
    a_verification_code_is_delivered_and_verifies,
);
