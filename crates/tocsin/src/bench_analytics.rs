//! `tocsin bench-analytics`: how long the analytics endpoints take over a
//! million incidents on embedded SQLite. It writes `--incidents` synthetic
//! incidents spread evenly over the past `--days` (20 services in 5 teams,
//! four severities; 90% resolved, durations drawn from a deterministic mix;
//! a third with a recorded start) into a fresh SQLite file with multi-row
//! inserts, computes the daily rollups once (as the first request after a
//! change would), then serves the file from a server in this process (the
//! default `synchronous = FULL`) and times `--requests` sequential GETs of
//! each endpoint over one keep-alive connection on loopback, the whole range
//! as the window.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::Duration;
use clap::Args;
use serde_json::json;
use tocsin_core::auth::Role;
use tocsin_core::change::NewIncident;
use tocsin_core::incident::Status;
use tocsin_core::model::EmailAddress;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{Clock, SystemClock};
use tocsin_server::{AppState, Limits};
use tocsin_store::{utc_day, Actor, NewUser, SqliteSync, Store, StoreOptions};

use crate::bench_pages::mix;

/// Every median must be under this.
const TARGET_MS: f64 = 300.0;
const SEVERITIES: [&str; 4] = ["SEV1", "SEV2", "SEV3", "SEV4"];

/// Options of `tocsin bench-analytics`.
#[derive(Debug, Clone, Args)]
pub struct AnalyticsArgs {
    /// Incidents to generate.
    #[arg(long, default_value_t = 1_000_000)]
    incidents: u64,
    /// Days they are spread over, ending now.
    #[arg(long, default_value_t = 730)]
    days: i64,
    /// Timed GETs per endpoint (after 3 warm-up GETs).
    #[arg(long, default_value_t = 50)]
    requests: usize,
    /// Keep the database here instead of a temporary directory (reused if it exists).
    #[arg(long)]
    db: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark and prints the figures.
pub async fn run(args: AnalyticsArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .try_init();
    if args.incidents < 100 || args.requests == 0 || args.days < 1 {
        bail!("--incidents must be at least 100, --requests and --days at least 1");
    }
    let (dir, keep) = match &args.db {
        Some(d) => (d.clone(), true),
        None => (
            std::env::temp_dir().join(format!("tocsin-bench-analytics-{}", std::process::id())),
            false,
        ),
    };
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("tocsin.db").display());
    let now = SystemClock.now();
    let result = async {
        let t = Instant::now();
        let (token, from) = seed(&url, &args, now).await.context("seeding")?;
        let seed_secs = t.elapsed().as_secs_f64();
        let figures = measure(&url, &args, &token, from, now).await?;
        Ok::<_, anyhow::Error>((seed_secs, figures))
    }
    .await;
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (seed_secs, figures) = result?;
    let worst = figures.iter().map(|f| f.1).fold(0.0, f64::max);
    if args.json {
        let rows: Vec<_> = figures
            .iter()
            .map(|(p, med, p90, first)| json!({ "endpoint": p, "median_ms": med, "p90_ms": p90, "first_ms": first }))
            .collect();
        println!(
            "{}",
            json!({ "incidents": args.incidents, "days": args.days, "requests": args.requests,
                    "seed_seconds": seed_secs, "endpoints": rows, "worst_median_ms": worst,
                    "all_medians_under_300ms": worst < TARGET_MS })
        );
        return Ok(());
    }
    println!(
        "{} incidents over {} days written and rolled up in {seed_secs:.1} s; {} timed GETs each",
        args.incidents, args.days, args.requests
    );
    println!(
        "{:<62} {:>10} {:>10} {:>10}",
        "endpoint", "median", "p90", "first"
    );
    for (p, med, p90, first) in &figures {
        println!("{p:<62} {med:>7.1} ms {p90:>7.1} ms {first:>7.1} ms");
    }
    println!(
        "worst median {worst:.1} ms; every median under {TARGET_MS} ms: {}",
        if worst < TARGET_MS { "yes" } else { "NO" }
    );
    Ok(())
}

/// Writes the data set (unless the file already holds one); returns an admin
/// token and the start of the range.
async fn seed(
    url: &str,
    args: &AnalyticsArgs,
    now: tocsin_core::time::Timestamp,
) -> anyhow::Result<(String, tocsin_core::time::Timestamp)> {
    let opts = StoreOptions {
        sqlite_sync: SqliteSync::Normal,
        ..StoreOptions::default()
    };
    let store = Store::connect(url, &opts).await?;
    store.migrate(1).await?;
    let settings = IncidentSettings::default();
    let from = now - Duration::days(args.days);
    let admin = NewUser {
        name: "Bench Admin".into(),
        email: EmailAddress::parse("email", "bench-admin@example.com")
            .map_err(|e| anyhow::anyhow!(e.message))?,
        role: Role::Admin,
        time_zone: "Europe/Berlin".into(),
        password_hash: None,
    };
    let Some((user, token)) = store.bootstrap(&admin, now).await? else {
        // A kept database: mint a fresh token on it.
        let t = store
            .create_token(1, "bench", None, &Actor::system(), now)
            .await?;
        store.close().await;
        return Ok((t.secret, from));
    };
    let actor = Actor {
        user_id: Some(user.id),
        name: user.name.clone(),
    };
    let mut services = Vec::new();
    let mut teams = Vec::new();
    for t in 0..5 {
        teams.push(
            store
                .create_team(&format!("Team {t}"), "", &actor, now)
                .await?
                .id,
        );
    }
    for s in 0..20 {
        services.push(
            store
                .create_service(
                    &format!("service-{s:02}"),
                    "",
                    Some(teams[s % 5]),
                    &actor,
                    now,
                )
                .await?
                .id,
        );
    }
    // One real incident, the template every generated one is a copy of.
    let template = store
        .declare_incident(
            &settings,
            &NewIncident {
                title: "template".into(),
                service_ids: vec![services[0]],
                ..NewIncident::default()
            },
            Some(user.id),
            &actor,
            from,
        )
        .await?;
    let span_ms = (now - from).num_milliseconds() as u64;
    let n = args.incidents - 1;
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let r = mix(i);
        let mut inc = template.clone();
        inc.id = template.id + 1 + i as i64;
        inc.number = format!("INC-{}", inc.id);
        inc.title = format!("Synthetic incident {}", inc.id);
        let at = from + Duration::milliseconds((i * span_ms / n) as i64);
        inc.created_at = at;
        inc.updated_at = at;
        inc.severity = SEVERITIES[(r % 4) as usize].into();
        let s = (r >> 4) as usize % services.len();
        inc.service_ids = if (r >> 12).is_multiple_of(10) {
            vec![services[s], services[(s + 7) % services.len()]]
        } else {
            vec![services[s]]
        };
        inc.service_ids.sort_unstable();
        // Acknowledged after 10 s to ~2.3 h, mitigated up to a day later,
        // resolved up to a day after that; 10% still open.
        let ack = Duration::milliseconds(10_000 + ((r >> 16) % 8_000_000) as i64);
        let mitigate = ack + Duration::milliseconds(((r >> 24) % 86_400_000) as i64);
        let resolve = mitigate + Duration::milliseconds(((r >> 32) % 86_400_000) as i64);
        inc.occurred_at = (r >> 40)
            .is_multiple_of(3)
            .then(|| at - Duration::milliseconds(((r >> 44) % 3_600_000) as i64));
        inc.detected_at = None;
        inc.acknowledged_at = Some(at + ack);
        if (r >> 52).is_multiple_of(10) {
            inc.status = Status::Acknowledged;
            inc.mitigated_at = None;
            inc.resolved_at = None;
        } else {
            inc.status = Status::Resolved;
            inc.mitigated_at = Some(at + mitigate);
            inc.resolved_at = Some(at + resolve);
        }
        batch.push(inc);
        if batch.len() == batch.capacity() {
            store.bench_insert_incidents(&settings, &batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.bench_insert_incidents(&settings, &batch).await?;
    }
    let t = Instant::now();
    let days = store
        .refresh_rollups(
            utc_day(from.timestamp_millis()),
            utc_day(now.timestamp_millis()) + 1,
        )
        .await?;
    eprintln!(
        "rolled up {days} days in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok((token.secret, from))
}

type Figure = (String, f64, f64, f64);

async fn measure(
    url: &str,
    args: &AnalyticsArgs,
    token: &str,
    from: tocsin_core::time::Timestamp,
    now: tocsin_core::time::Timestamp,
) -> anyhow::Result<Vec<Figure>> {
    let store = Store::connect(url, &StoreOptions::default()).await?;
    let state = AppState::new(
        store.clone(),
        IncidentSettings::default(),
        Arc::new(SystemClock),
        Limits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(tocsin_server::serve(listener, state, async move {
        let _ = stopped.changed().await;
    }));
    let window = format!(
        "from={}&to={}",
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (now + Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let paths = [
        format!("/api/v1/analytics/incidents?{window}"),
        format!("/api/v1/analytics/incidents?{window}&group_by=severity"),
        format!("/api/v1/analytics/incidents?{window}&group_by=team"),
        format!("/api/v1/analytics/incidents?{window}&group_by=service"),
        format!("/api/v1/analytics/incidents?{window}&group_by=service&format=csv"),
        format!("/api/v1/analytics/trend?{window}&tz=UTC"),
        format!("/api/v1/analytics/trend?{window}&tz=Europe/Berlin&metric=time_to_resolve"),
        format!("/api/v1/analytics/noise?{window}"),
        format!("/api/v1/analytics/oncall?{window}"),
    ];
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let mut out = Vec::new();
    let result = async {
        for path in paths {
            let get = || http.get(format!("{base}{path}")).bearer_auth(token).send();
            let mut first = 0.0;
            for i in 0..3 {
                let t = Instant::now();
                let r = get().await?;
                let status = r.status();
                let body = r.text().await?;
                if i == 0 {
                    first = t.elapsed().as_secs_f64() * 1000.0;
                }
                if !status.is_success() {
                    bail!("{path}: {status}: {body}");
                }
            }
            let mut times = Vec::with_capacity(args.requests);
            for _ in 0..args.requests {
                let t = Instant::now();
                let r = get().await?;
                r.bytes().await?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let at = |p: usize| times[((p * times.len()).div_ceil(100)).max(1) - 1];
            out.push((path.replace(&window, "…"), at(50), at(90), first));
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let _ = stop.send(true);
    let _ = server.await;
    store.close().await;
    result.map(|_| out)
}
