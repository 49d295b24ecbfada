//! `tocsin bench-paging`: how long from an alert being accepted to its first
//! notification request being handed to delivery. It runs a Tocsin server in
//! this process — on a fresh embedded SQLite file with the default settings
//! (`synchronous = FULL`), real HTTP on loopback, the real job runner — with a
//! delivery that timestamps each hand-off, and sends PagerDuty Events v2
//! triggers one at a time, each opening a new incident on a service whose
//! policy pages a user with a push rule at 0 minutes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tocsin_core::auth::Role;
use tocsin_core::model::EmailAddress;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::SystemClock;
use tocsin_engine::delivery::{Delivery, HandedNotification};
use tocsin_engine::jobs::Runner;
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
}

struct Stamp(mpsc::UnboundedSender<(Instant, i64)>);

impl Delivery for Stamp {
    fn handed(&self, requests: &[HandedNotification]) {
        let now = Instant::now();
        for r in requests {
            let _ = self.0.send((now, r.incident_id.unwrap_or_default()));
        }
    }
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
    let result = measure(&args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (accepted, sent) = result?;
    let pct = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    if args.json {
        let fig = |h: &Histogram<u64>| {
            json!({ "p50_ms": pct(h, 0.5), "p90_ms": pct(h, 0.9), "p99_ms": pct(h, 0.99),
                    "max_ms": h.max() as f64 / 1000.0 })
        };
        println!(
            "{}",
            json!({ "alerts": accepted.len(), "accepted_to_handed": fig(&accepted), "sent_to_handed": fig(&sent) })
        );
    } else {
        for (name, h) in [("accepted → handed", &accepted), ("sent → handed", &sent)] {
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
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
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
    let (tx, mut rx) = mpsc::unbounded_channel();
    let runner = tokio::spawn(Runner::new(store.clone(), clock, Arc::new(Stamp(tx))).run(stopped));

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
        json!({ "kind": "push", "address": "ntfy:bench-device", "verified": true }),
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
        let (t2, _incident) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .context("no notification handed within 10 s")?
            .context("runner stopped")?;
        if i >= args.warmup {
            // Both clocks are this process's monotonic clock.
            accepted.record(t2.saturating_duration_since(t1).as_micros() as u64)?;
            sent.record(t2.saturating_duration_since(t0).as_micros() as u64)?;
        }
    }
    let _ = stop.send(true);
    let _ = runner.await;
    let _ = server.await;
    store.close().await;
    Ok((accepted, sent))
}
