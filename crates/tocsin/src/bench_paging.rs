//! `tocsin bench-paging`: how long from an alert being accepted to its page
//! arriving at a webhook receiver. It runs a Tocsin server in this process — on
//! a fresh embedded SQLite file with the default settings (`synchronous =
//! FULL`), real HTTP on loopback, the real job runner and delivery worker — and
//! a webhook receiver that timestamps each arrival, and sends PagerDuty Events
//! v2 triggers one at a time, each opening a new incident on a service whose
//! policy pages a user with a webhook rule at 0 minutes.
//!
//! With `--alertmanager URL` it measures Prometheus Alertmanager the same way
//! instead: one alert at a time to `POST /api/v2/alerts`, each its own group,
//! until Alertmanager's webhook (configured with `group_wait: 0s` to
//! `--receiver-listen`) arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::extract::State;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tocsin_core::auth::Role;
use tocsin_core::escalation::Channel;
use tocsin_core::model::EmailAddress;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::SystemClock;
use tocsin_engine::delivery::{Delivery, HandedNotification};
use tocsin_engine::jobs::Runner;
use tocsin_engine::render::Renderer;
use tocsin_engine::sender::{ChannelLimits, Providers, Sender, SenderConfig};
use tocsin_notify::{WebhookConfig, WebhookProvider};
use tocsin_server::{AppState, Limits};
use tocsin_store::{NewUser, Store, StoreOptions};
use tokio::sync::mpsc;

/// Options of `tocsin bench-paging`.
#[derive(Debug, Clone, Args)]
pub struct PagingArgs {
    /// Alerts to send (each opens an incident and pages).
    #[arg(long, default_value_t = 1000)]
    alerts: u64,
    /// Alerts sent before measuring starts.
    #[arg(long, default_value_t = 50)]
    warmup: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Measure the Alertmanager at this URL instead of an in-process Tocsin.
    #[arg(long)]
    alertmanager: Option<String>,
    /// Where the webhook receiver listens [default: 127.0.0.1:0]; Alertmanager's
    /// configuration must send its webhook to `http://<this>/hook`.
    #[arg(long)]
    receiver_listen: Option<std::net::SocketAddr>,
}

/// Arrivals at the receiver: when, and which alert (the incident title, or
/// Alertmanager's `alertname`).
type Arrivals = mpsc::UnboundedSender<(Instant, String)>;

async fn arrived(State(tx): State<Arrivals>, body: axum::body::Bytes) -> &'static str {
    let now = Instant::now();
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let name = v["incident"]["title"]
        .as_str()
        .or_else(|| v["alerts"][0]["labels"]["alertname"].as_str())
        .unwrap_or("")
        .to_string();
    let _ = tx.send((now, name));
    "ok"
}

// Timestamps each hand-off, then passes it on to the delivery worker.
struct Stamp(mpsc::UnboundedSender<Instant>, Sender);

impl Delivery for Stamp {
    fn handed(&self, requests: &[HandedNotification]) {
        let _ = self.0.send(Instant::now());
        self.1.handed(requests);
    }
}

/// The figures: accepted → received, sent → received, and (Tocsin only) sent → handed.
struct Figures {
    accepted: Histogram<u64>,
    sent: Histogram<u64>,
    handed: Option<Histogram<u64>>,
}

/// Runs the benchmark and prints the figures.
pub async fn run(args: PagingArgs) -> anyhow::Result<()> {
    // Anything going wrong in the server or the runner shows on stderr.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .try_init();
    let dir = std::env::temp_dir().join(format!("tocsin-bench-paging-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let listener =
        tokio::net::TcpListener::bind(args.receiver_listen.unwrap_or(([127, 0, 0, 1], 0).into()))
            .await
            .context("cannot listen for webhooks")?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(arrived))
        .with_state(tx);
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });
    let result = match &args.alertmanager {
        Some(url) => measure_alertmanager(&args, url, rx).await,
        None => measure(&args, &dir, &hook, rx).await,
    };
    receiver.abort();
    let _ = std::fs::remove_dir_all(&dir);
    let figures = result?;
    let pct = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let mut rows = vec![
        ("accepted → webhook received", &figures.accepted),
        ("sent → webhook received", &figures.sent),
    ];
    if let Some(h) = &figures.handed {
        rows.push(("sent → handed to delivery", h));
    }
    if args.json {
        let fig = |h: &Histogram<u64>| {
            json!({ "p50_ms": pct(h, 0.5), "p90_ms": pct(h, 0.9), "p99_ms": pct(h, 0.99),
                    "max_ms": h.max() as f64 / 1000.0 })
        };
        println!(
            "{}",
            json!({ "alerts": figures.accepted.len(), "accepted_to_received": fig(&figures.accepted),
                    "sent_to_received": fig(&figures.sent),
                    "sent_to_handed": figures.handed.as_ref().map(fig) })
        );
    } else {
        for (name, h) in rows {
            println!(
                "{name}: {} alerts, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                h.len(),
                pct(h, 0.5),
                pct(h, 0.9),
                pct(h, 0.99),
                h.max() as f64 / 1000.0
            );
        }
    }
    Ok(())
}

async fn measure(
    args: &PagingArgs,
    dir: &std::path::Path,
    hook: &str,
    mut arrivals: mpsc::UnboundedReceiver<(Instant, String)>,
) -> anyhow::Result<Figures> {
    let url = format!("sqlite://{}?mode=rwc", dir.join("tocsin.db").display());
    let store = Store::connect(&url, &StoreOptions::default()).await?;
    store.migrate(1).await?;
    let admin = NewUser {
        name: "Bench".into(),
        email: EmailAddress::parse("email", "bench@example.com")
            .map_err(|e| anyhow::anyhow!(e.message))?,
        role: Role::Admin,
        time_zone: "UTC".into(),
        password_hash: None,
    };
    let clock = Arc::new(SystemClock);
    let (user, token) = store
        .bootstrap(&admin, tocsin_core::time::Clock::now(&SystemClock))
        .await?
        .context("fresh database has a user")?;
    let mut limits = Limits::default();
    limits.ingest_rate.per_second = 1e9;
    limits.ingest_rate.burst = 1e9;
    let state = AppState::new(
        store.clone(),
        IncidentSettings::default(),
        clock.clone(),
        limits,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut stopped_http = stopped.clone();
    let server = tokio::spawn(tocsin_server::serve(listener, state, async move {
        let _ = stopped_http.changed().await;
    }));
    let webhook = WebhookProvider::new(WebhookConfig::new("bench-secret"))
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let sender = Sender::new(
        store.clone(),
        clock.clone(),
        Providers::new().with(
            Channel::Webhook,
            Arc::new(webhook),
            ChannelLimits::default(),
        ),
        Renderer::new(base.clone()),
        SenderConfig::default(),
    );
    let delivery = tokio::spawn(sender.clone().run(stopped.clone()));
    let (tx, mut handed_rx) = mpsc::unbounded_channel();
    let runner =
        tokio::spawn(Runner::new(store.clone(), clock, Arc::new(Stamp(tx, sender))).run(stopped));

    let http = reqwest::Client::new();
    let token = token.secret;
    let api = |path: &str, method: reqwest::Method, body: Value| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let ok = |r: reqwest::Response| async move {
        let status = r.status();
        let body: Value = r.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("setup failed: {status} {body}");
        }
        Ok(body)
    };
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let uid = user.id;
    let method = ok(api(
        &format!("/api/v1/users/{uid}/contact-methods"),
        post.clone(),
        json!({ "kind": "webhook", "address": hook, "verified": true }),
    )
    .await?)
    .await?;
    ok(api(&format!("/api/v1/users/{uid}/notification-rules"), put.clone(),
        json!({ "rules": [{ "urgency": "high", "contact_method_id": method["id"], "delay_minutes": 0 }],
                "working_hours": null })).await?).await?;
    let policy = ok(api("/api/v1/escalation-policies", post.clone(),
        json!({ "name": "bench", "levels": [{ "targets": [{ "user": uid }], "delay_minutes": 30 }] })).await?).await?;
    let service =
        ok(api("/api/v1/services", post.clone(), json!({ "name": "bench" })).await?).await?;
    let sid = service["id"].as_i64().context("service id")?;
    ok(api(
        &format!("/api/v1/services/{sid}/escalation-policy"),
        put,
        json!({ "escalation_policy_id": policy["id"] }),
    )
    .await?)
    .await?;
    let key = ok(api(
        &format!("/api/v1/services/{sid}/integration-keys"),
        post,
        json!({ "name": "bench" }),
    )
    .await?)
    .await?;
    let key = key["secret"]
        .as_str()
        .context("integration key")?
        .to_string();

    let mut accepted = Histogram::<u64>::new(3)?;
    let mut sent = Histogram::<u64>::new(3)?;
    let mut handed = Histogram::<u64>::new(3)?;
    for i in 0..args.warmup + args.alerts {
        let body = json!({ "routing_key": key, "event_action": "trigger", "dedup_key": format!("paging-{i}"),
            "payload": { "summary": format!("Checkout down #{i}"), "source": "bench", "severity": "critical" } });
        let t0 = Instant::now();
        let r = http
            .post(format!("{base}/v2/enqueue"))
            .json(&body)
            .send()
            .await?;
        let t1 = Instant::now();
        if r.status() != reqwest::StatusCode::ACCEPTED {
            bail!("alert {i} refused: {}", r.status());
        }
        let th = tokio::time::timeout(Duration::from_secs(10), handed_rx.recv())
            .await
            .context("no notification handed within 10 s")?
            .context("runner stopped")?;
        let t2 = wait_for(&mut arrivals, &format!("Checkout down #{i}")).await?;
        if i >= args.warmup {
            // All three are this process's monotonic clock.
            accepted.record(t2.saturating_duration_since(t1).as_micros() as u64)?;
            sent.record(t2.saturating_duration_since(t0).as_micros() as u64)?;
            handed.record(th.saturating_duration_since(t0).as_micros() as u64)?;
        }
    }
    let _ = stop.send(true);
    let _ = runner.await;
    let _ = delivery.await;
    let _ = server.await;
    store.close().await;
    Ok(Figures {
        accepted,
        sent,
        handed: Some(handed),
    })
}

// The arrival of the webhook about `name` (earlier arrivals are skipped).
async fn wait_for(
    arrivals: &mut mpsc::UnboundedReceiver<(Instant, String)>,
    name: &str,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, got) = tokio::time::timeout(left, arrivals.recv())
            .await
            .with_context(|| format!("no webhook for `{name}` within 10 s"))?
            .context("receiver stopped")?;
        if got == name {
            return Ok(at);
        }
    }
}

async fn measure_alertmanager(
    args: &PagingArgs,
    url: &str,
    mut arrivals: mpsc::UnboundedReceiver<(Instant, String)>,
) -> anyhow::Result<Figures> {
    let http = reqwest::Client::new();
    let run = std::process::id();
    let mut accepted = Histogram::<u64>::new(3)?;
    let mut sent = Histogram::<u64>::new(3)?;
    for i in 0..args.warmup + args.alerts {
        let name = format!("bench-{run}-{i}");
        let body = json!([{ "labels": { "alertname": name, "severity": "critical" },
                            "annotations": { "summary": format!("Checkout down #{i}") } }]);
        let t0 = Instant::now();
        let r = http
            .post(format!("{}/api/v2/alerts", url.trim_end_matches('/')))
            .json(&body)
            .send()
            .await?;
        let t1 = Instant::now();
        if !r.status().is_success() {
            bail!("alert {i} refused: {}", r.status());
        }
        let t2 = wait_for(&mut arrivals, &name).await?;
        if i >= args.warmup {
            accepted.record(t2.saturating_duration_since(t1).as_micros() as u64)?;
            sent.record(t2.saturating_duration_since(t0).as_micros() as u64)?;
        }
    }
    Ok(Figures {
        accepted,
        sent,
        handed: None,
    })
}
