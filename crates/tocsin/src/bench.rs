//! `tocsin bench`: the load generator behind BENCHMARKS.md. It drives Tocsin's
//! inbound endpoints — or Alertmanager's own API, to measure the peer in the same
//! run — over keep-alive HTTP/1.1 connections on loopback, bounded by a request
//! count and a duration, and reports throughput and latency percentiles from an
//! HDR histogram. With `--rate` it sends open-loop at a fixed rate and measures
//! latency from when each request was due, so a stall is not hidden.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::json;

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// PagerDuty Events v2 trigger, one event per request, to /v2/enqueue.
    Pagerduty,
    /// Alertmanager webhook notification with --batch alerts, to /integrations/alertmanager/KEY.
    AlertmanagerWebhook,
    /// Alertmanager's own API (POST /api/v2/alerts) with --batch alerts: the peer.
    AlertmanagerApi,
}

/// Options of `tocsin bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What to send.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Base URL of the target; must be on loopback.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Integration key (not needed for alertmanager-api).
    #[arg(long, default_value = "")]
    key: String,
    /// Open connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Stop after this long.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop after this many requests.
    #[arg(long, default_value_t = 10_000_000)]
    requests: u64,
    /// Alerts per request (alertmanager scenarios).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Distinct dedup keys (alert identities) to cycle through.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Send at this many requests per second (open loop) instead of as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn body(args: &BenchArgs, n: u64) -> (String, String) {
    let k = |i: u64| i % args.keys;
    match args.scenario {
        Scenario::Pagerduty => (
            "/v2/enqueue".into(),
            json!({ "routing_key": args.key, "event_action": "trigger", "dedup_key": format!("bench-{}", k(n)),
                    "payload": { "summary": format!("Disk full on db-{}", k(n)), "source": format!("db-{}", k(n)), "severity": "error" } })
            .to_string(),
        ),
        Scenario::AlertmanagerWebhook => {
            let alerts: Vec<_> = (0..args.batch as u64)
                .map(|i| {
                    let id = k(n * args.batch as u64 + i);
                    json!({ "status": "firing", "labels": { "alertname": "DiskFull", "instance": format!("db-{id}"), "severity": "error" },
                            "annotations": { "summary": format!("Disk full on db-{id}") }, "startsAt": "2026-01-01T00:00:00Z",
                            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph", "fingerprint": format!("{id:016x}") })
                })
                .collect();
            (
                format!("/integrations/alertmanager/{}", args.key),
                json!({ "receiver": "tocsin", "status": "firing", "version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}",
                        "groupLabels": { "alertname": "DiskFull" }, "commonLabels": {}, "commonAnnotations": {},
                        "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0, "alerts": alerts })
                .to_string(),
            )
        }
        Scenario::AlertmanagerApi => {
            let alerts: Vec<_> = (0..args.batch as u64)
                .map(|i| {
                    let id = k(n * args.batch as u64 + i);
                    json!({ "labels": { "alertname": "DiskFull", "instance": format!("db-{id}"), "severity": "error" },
                            "annotations": { "summary": format!("Disk full on db-{id}") }, "generatorURL": "http://prometheus:9090/graph" })
                })
                .collect();
            ("/api/v2/alerts".into(), serde_json::Value::Array(alerts).to_string())
        }
    }
}

fn target(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must be http://HOST:PORT")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = hostport
        .replace("localhost", "127.0.0.1")
        .parse()
        .with_context(|| {
            format!("--url needs an IP and port, e.g. http://127.0.0.1:8080, not {url}")
        })?;
    // Load is only ever sent to this machine.
    if !addr.ip().is_loopback() {
        bail!("refusing to send load to {addr}: the benchmark targets loopback addresses only");
    }
    Ok((addr, hostport.to_string()))
}

struct Shared {
    next: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (addr, host) = target(&args.url)?;
    if args.scenario != Scenario::AlertmanagerApi && args.key.is_empty() {
        bail!("--key (an integration key) is needed for this scenario");
    }
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let interval = args.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (args, shared, host) = (args.clone(), shared.clone(), host.clone());
        tasks.push(tokio::spawn(async move {
            connection(args, addr, host, shared, start, deadline, interval).await
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut first_error = None;
    for t in tasks {
        match t.await? {
            Ok(h) => hist.add(h)?,
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ok = shared.ok.load(Ordering::Relaxed);
    let failed = shared.failed.load(Ordering::Relaxed);
    let per_request = if args.scenario == Scenario::Pagerduty {
        1
    } else {
        args.batch as u64
    };
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let report = json!({
        "scenario": format!("{:?}", args.scenario).to_lowercase(), "url": args.url, "connections": args.connections,
        "rate_target": args.rate, "seconds": elapsed, "requests_ok": ok, "requests_failed": failed,
        "requests_per_second": ok as f64 / elapsed, "alerts_per_second": (ok * per_request) as f64 / elapsed,
        "latency_ms": { "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p999": ms(0.999), "max": hist.max() as f64 / 1000.0 },
        "first_error": first_error,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{:?} against {}: {} ok, {} failed in {:.1} s\n  {:.0} requests/s, {:.0} alerts/s\n  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            args.scenario, args.url, ok, failed, elapsed, ok as f64 / elapsed, (ok * per_request) as f64 / elapsed,
            ms(0.5), ms(0.9), ms(0.99), ms(0.999), hist.max() as f64 / 1000.0
        );
        if let Some(e) = report["first_error"].as_str() {
            println!("  first error: {e}");
        }
    }
    if ok == 0 {
        bail!("no request succeeded");
    }
    Ok(())
}

async fn connection(
    args: BenchArgs,
    addr: SocketAddr,
    host: String,
    shared: Arc<Shared>,
    start: Instant,
    deadline: Instant,
    interval: Option<Duration>,
) -> anyhow::Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    loop {
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if n >= args.requests || Instant::now() >= deadline {
            return Ok(hist);
        }
        // Open loop: request n is due at start + n * interval, whoever sends it.
        let due = match interval {
            Some(i) => {
                let due = start + i.mul_f64(n as f64);
                if due >= deadline {
                    return Ok(hist);
                }
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        let (path, payload) = body(&args, n);
        let req = hyper::Request::post(path)
            .header("host", &host)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(payload)))?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        let micros = due.elapsed().as_micros().max(1) as u64;
        hist.record(micros.min(60_000_000))?;
        if status.is_success() {
            shared.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(target("http://127.0.0.1:8080").is_ok());
        assert!(target("http://localhost:9093/").is_ok());
        assert!(target("http://10.0.0.1:8080").is_err());
        assert!(target("https://127.0.0.1:8080").is_err());
    }
}
