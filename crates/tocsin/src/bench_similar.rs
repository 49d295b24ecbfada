//! `tocsin bench-similar`: how long similar-incident search takes with a large
//! history. It seeds a fresh embedded SQLite file with `--incidents` incidents
//! whose text is drawn from a realistic vocabulary (forty services, fifty
//! problems, hosts, regions, error codes and a Zipf-distributed tail of six
//! thousand rarer words), a third of them with a root cause and resolution and
//! a tenth with notes; then serves it in this process, times the index build
//! and times sequential GETs of `/api/v1/incidents/{id}/similar` for incidents
//! spread over the range and of `/api/v1/similar?q=` for free-text queries,
//! over one keep-alive connection on loopback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use tocsin_core::auth::Role;
use tocsin_core::change::{IncidentPatch, NewIncident, Patch};
use tocsin_core::incident::RecordKind;
use tocsin_core::model::EmailAddress;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{Clock, SystemClock};
use tocsin_server::{AppState, Limits};
use tocsin_store::{Actor, NewNote, NewUser, SqliteSync, Store, StoreOptions};

use crate::bench_pages::mix;

/// The acceptance target for the median.
const TARGET_MS: f64 = 100.0;

/// Options of `tocsin bench-similar`.
#[derive(Debug, Clone, Args)]
pub struct SimilarArgs {
    /// Past incidents in the database.
    #[arg(long, default_value_t = 100_000)]
    incidents: u64,
    /// Timed searches of each kind (after 20 warm-up searches).
    #[arg(long, default_value_t = 300)]
    requests: u64,
    /// Keep the seeded database here and reuse it when it exists (seeding
    /// 100,000 incidents takes minutes).
    #[arg(long)]
    keep: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark and prints the figures.
pub async fn run(args: SimilarArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .try_init();
    if args.incidents < 10 || args.requests == 0 {
        bail!("--incidents must be at least 10 and --requests at least 1");
    }
    let (file, temp) = match &args.keep {
        Some(p) => (p.clone(), None),
        None => {
            let dir =
                std::env::temp_dir().join(format!("tocsin-bench-similar-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (dir.join("tocsin.db"), Some(dir))
        }
    };
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let result = async {
        let t = Instant::now();
        let seeded = if file.exists() && args.keep.is_some() {
            None
        } else {
            seed(&url, args.incidents).await.context("seeding")?;
            Some(t.elapsed().as_secs_f64())
        };
        let figures = measure(&url, &args).await?;
        Ok::<_, anyhow::Error>((seeded, figures))
    }
    .await;
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    let (seeded, f) = result?;
    if args.json {
        println!(
            "{}",
            json!({ "incidents": f.indexed, "seed_seconds": seeded, "build_ms": f.build_ms,
                "by_incident": f.by_incident.json(), "by_text": f.by_text.json(),
                "mean_results": f.mean_results,
                "medians_under_100ms": f.by_incident.median < TARGET_MS && f.by_text.median < TARGET_MS })
        );
        return Ok(());
    }
    if let Some(s) = seeded {
        println!("seeded {} incidents in {s:.1} s", args.incidents);
    }
    println!(
        "index of {} incidents built in {} ms; {} timed searches each; {:.1} results on average",
        f.indexed, f.build_ms, args.requests, f.mean_results
    );
    for (name, t) in [
        ("GET /api/v1/incidents/{id}/similar", &f.by_incident),
        ("GET /api/v1/similar?q=", &f.by_text),
    ] {
        println!(
            "{name:<38} median {:6.2} ms  p90 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms",
            t.median, t.p90, t.p99, t.max
        );
    }
    Ok(())
}

struct Timed {
    median: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Timed {
    fn of(mut times: Vec<Duration>) -> Timed {
        times.sort();
        let q = |q: f64| crate::bench_pages::ms(crate::bench_pages::quantile(&times, q));
        Timed {
            median: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: q(1.0),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({ "median_ms": self.median, "p90_ms": self.p90, "p99_ms": self.p99, "max_ms": self.max })
    }
}

struct Figures {
    indexed: u64,
    build_ms: u64,
    by_incident: Timed,
    by_text: Timed,
    mean_results: f64,
}

const PROBLEMS: &[&str] = &[
    "latency above the SLO",
    "error rate over five percent",
    "database connection pool exhausted",
    "TLS certificate expiring",
    "disk almost full",
    "memory leak after deploy",
    "queue backlog growing",
    "DNS resolution failures",
    "timeouts talking to payments",
    "replica lag over a minute",
    "pods crash looping",
    "OOM killed workers",
    "cache hit ratio dropped",
    "elevated 5xx from the load balancer",
    "stuck cron job",
    "Kafka consumer lag",
    "certificate chain invalid",
    "rate limited by upstream provider",
    "slow queries on the primary",
    "deadlocks in the orders table",
    "thread pool saturation",
    "garbage collection pauses",
    "network partition between zones",
    "packet loss on the uplink",
    "BGP session flapping",
    "expired API credentials",
    "config push broke routing",
    "feature flag misconfigured",
    "search index corrupted",
    "backup job failing",
    "object storage throttling",
    "webhook deliveries failing",
    "email bounces spiking",
    "SMS provider outage",
    "login failures after SSO change",
    "session store unavailable",
    "read-only filesystem on nodes",
    "clock skew on hosts",
    "noisy neighbour on the hypervisor",
    "autoscaler not scaling out",
    "health checks failing intermittently",
    "CDN serving stale content",
    "payment authorisations declined",
    "inventory counts drifting",
    "duplicate orders created",
    "mobile app crashes on start",
    "push notifications delayed",
    "invoice generation stalled",
    "report exports timing out",
    "websocket connections dropping",
];
const CAUSES: &[&str] = &[
    "a deploy halved the pool size",
    "an expired intermediate certificate",
    "a runaway batch job filled the disk",
    "a schema migration locked the table",
    "a retry storm from the mobile clients",
    "a misrouted config push",
    "an upstream provider incident",
    "a memory leak in the image resizer",
    "a missing index after the upgrade",
    "a noisy tenant exhausting the quota",
];
const FIXES: &[&str] = &[
    "rolled back the deploy",
    "renewed and redeployed the certificate",
    "cleared old files and added an alert on growth",
    "killed the migration and ran it off-peak",
    "added jitter and a circuit breaker",
    "reverted the config and added a review step",
    "failed over to the secondary provider",
    "restarted the workers and capped memory",
    "created the index concurrently",
    "rate limited the tenant",
];
const REGIONS: &[&str] = &[
    "eu-west-1",
    "eu-central-1",
    "us-east-1",
    "us-west-2",
    "ap-south-1",
];

/// Forty service names.
fn service_name(i: usize) -> String {
    const PARTS: &[&str] = &[
        "checkout", "payments", "search", "catalog", "accounts", "shipping", "email", "gateway",
    ];
    const KINDS: &[&str] = &["api", "worker", "db", "cache", "frontend"];
    format!(
        "{}-{}",
        PARTS[i % PARTS.len()],
        KINDS[i / PARTS.len() % KINDS.len()]
    )
}

/// A rarer word: the tail of the vocabulary, Zipf-like (low ranks common).
fn tail_word(r: u64) -> String {
    // rank ~ 6000^u with u uniform: a heavy head, a long tail.
    let u = (r % 10_000) as f64 / 10_000.0;
    let rank = (6000f64.powf(u)) as u64;
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "sa", "do", "fu", "gi", "ha",
    ];
    let mut w = String::new();
    let mut n = rank + 14;
    while n > 0 {
        w.push_str(SYLLABLES[(n % 14) as usize]);
        n /= 14;
    }
    w
}

fn email(s: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse("email", s).map_err(|e| anyhow::anyhow!(e.message))
}

async fn seed(url: &str, incidents: u64) -> anyhow::Result<()> {
    let opts = StoreOptions {
        sqlite_sync: SqliteSync::Normal,
        ..StoreOptions::default()
    };
    let store = Store::connect(url, &opts).await?;
    store.migrate(1).await?;
    let settings = IncidentSettings::default();
    let now = SystemClock.now();
    let sys = Actor::system();
    let admin = store
        .create_user(
            &NewUser {
                name: "Bench Admin".into(),
                email: email("bench-admin@example.com")?,
                role: Role::Admin,
                time_zone: "UTC".into(),
                password_hash: None,
            },
            &sys,
            now,
        )
        .await?;
    let actor = Actor {
        user_id: Some(admin.id),
        name: admin.name.clone(),
    };
    let mut services = Vec::new();
    for i in 0..40 {
        services.push(
            store
                .create_service(&service_name(i), "", None, &actor, now)
                .await?
                .id,
        );
    }
    let start = now - chrono::Duration::minutes(10 * incidents as i64 + 60);
    for i in 0..incidents {
        let r = mix(i);
        let at = start + chrono::Duration::minutes(10 * i as i64);
        let svc = r as usize % services.len();
        let problem = PROBLEMS[(r >> 8) as usize % PROBLEMS.len()];
        let region = REGIONS[(r >> 16) as usize % REGIONS.len()];
        let words: Vec<String> = (0..6).map(|k| tail_word(mix(r ^ k))).collect();
        let req = NewIncident {
            title: format!("{} {problem} in {region}", service_name(svc)),
            description: format!(
                "Monitoring on host-{} reported {problem}; error E{} seen by {} customers. \
                 Suspects: {}.",
                (r >> 24) % 500,
                (r >> 32) % 900 + 100,
                (r >> 40) % 1000,
                words.join(" ")
            ),
            service_ids: vec![services[svc]],
            ..NewIncident::default()
        };
        let inc = store
            .declare_incident(&settings, &req, Some(admin.id), &actor, at)
            .await?;
        if r.is_multiple_of(3) {
            let patch = IncidentPatch {
                root_cause: Patch::Set(format!(
                    "{} ({})",
                    CAUSES[(r >> 44) as usize % CAUSES.len()],
                    tail_word(mix(r ^ 99))
                )),
                resolution_summary: Patch::Set(FIXES[(r >> 48) as usize % FIXES.len()].into()),
                ..IncidentPatch::default()
            };
            store
                .update_incident(&settings, inc.id, &patch, &actor, at)
                .await?;
        }
        if r % 10 == 1 {
            let note = NewNote {
                body: format!(
                    "Checked {} dashboards; {} looks related.",
                    service_name((svc + 1) % 40),
                    tail_word(mix(r ^ 7))
                ),
                kind: RecordKind::Note,
                approved_by: None,
            };
            store.add_note(inc.id, &note, &actor, at).await?;
        }
    }
    store.close().await;
    Ok(())
}

async fn measure(url: &str, args: &SimilarArgs) -> anyhow::Result<Figures> {
    let store = Store::connect(url, &StoreOptions::default()).await?;
    // The seeded admin is user 1.
    let token = store
        .create_token(1, "bench", None, &Actor::system(), SystemClock.now())
        .await?
        .secret;
    let state = AppState::new(
        store.clone(),
        IncidentSettings::default(),
        Arc::new(SystemClock),
        Limits::default(),
    );
    let index = state.similar.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(tocsin_server::serve(listener, state, async move {
        let _ = stopped.changed().await;
    }));
    let result = async {
        index.refresh(&store).await?;
        let status = index.status().await;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let n = status.incidents as u64;
        let mut results = 0u64;
        let run = |path: String| {
            let req = http.get(format!("{base}{path}")).bearer_auth(&token);
            async move {
                let t0 = Instant::now();
                let resp = req.send().await?;
                let code = resp.status();
                let body: serde_json::Value = resp.json().await?;
                let took = t0.elapsed();
                if code != reqwest::StatusCode::OK {
                    bail!("GET {path} answered {code}: {body}");
                }
                Ok::<_, anyhow::Error>((took, body["results"].as_array().map_or(0, Vec::len)))
            }
        };
        let mut by_incident = Vec::new();
        for k in 0..20 + args.requests {
            let id = 1 + mix(k ^ 0x5151) % n;
            let (t, found) = run(format!("/api/v1/incidents/{id}/similar")).await?;
            if k >= 20 {
                by_incident.push(t);
                results += found as u64;
            }
        }
        let mut by_text = Vec::new();
        for k in 0..20 + args.requests {
            let r = mix(k ^ 0xa11ce);
            let q = format!(
                "{} {} {}",
                service_name(r as usize % 40).replace('-', " "),
                PROBLEMS[(r >> 8) as usize % PROBLEMS.len()],
                tail_word(r >> 16)
            );
            let (t, _) = run(format!("/api/v1/similar?q={}", q.replace(' ', "+"))).await?;
            if k >= 20 {
                by_text.push(t);
            }
        }
        Ok::<_, anyhow::Error>(Figures {
            indexed: n,
            build_ms: status.build_ms,
            by_incident: Timed::of(by_incident),
            by_text: Timed::of(by_text),
            mean_results: results as f64 / args.requests as f64,
        })
    }
    .await;
    let _ = stop.send(true);
    let _ = server.await;
    store.close().await;
    result
}
