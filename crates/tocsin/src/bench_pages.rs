//! `tocsin bench-pages`: how long each web UI page takes to serve its HTML with
//! a realistic amount of history behind it. It seeds a fresh embedded SQLite
//! file (8 services, 30 users, 3 teams, 3 schedules, a policy per service,
//! `--incidents` incidents of which about 85% are resolved or closed, notes,
//! and a fifth as many alerts sent as PagerDuty Events), then runs a Tocsin
//! server in this process on that file with the default settings (`synchronous
//! = FULL`), signs in through `POST /login` like a browser and times sequential
//! GETs of each page over one keep-alive connection on loopback.
//!
//! Seeding uses a server of its own on `synchronous = NORMAL` (durability of the
//! seed does not matter, and twenty thousand fsyncs would dominate the run);
//! it is stopped and the measured server opens the file afresh.
//! Declared incidents are dated over the past `incidents × 30 min` (passed to
//! the store as `now`, no clock trickery), oldest first; the alerts' incidents
//! are the newest, dated when the bench runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;
use tocsin_core::auth::Role;
use tocsin_core::change::NewIncident;
use tocsin_core::escalation::{EscalationPolicy, Level, Target};
use tocsin_core::incident::{RecordKind, Status};
use tocsin_core::model::EmailAddress;
use tocsin_core::schedule::{LayerParts, ScheduleParts};
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{Clock, SystemClock};
use tocsin_server::{AppState, Limits};
use tocsin_store::{Actor, NewNote, NewUser, SqliteSync, Store, StoreOptions};

/// The pages measured, in the order printed. `{mid}` is the incident in the
/// middle of the seeded range (INC-5000 with the default 10,000).
const PAGES: &[&str] = &[
    "/",
    "/incidents",
    "/incidents?q=certificate",
    "/incidents?status=open&sort=severity",
    "/incidents/new",
    "/incidents/INC-{mid}",
    "/alerts",
    "/alerts/1",
    "/services",
    "/services/1",
    "/oncall",
    "/oncall/schedules/1",
    "/oncall/policies",
    "/people",
    "/profile",
];

/// Every median must be under this.
const TARGET_MS: f64 = 50.0;

const ADMIN_EMAIL: &str = "bench-admin@example.com";
const ADMIN_PASSWORD: &str = "bench-password-1234";

/// Options of `tocsin bench-pages`.
#[derive(Debug, Clone, Args)]
pub struct PagesArgs {
    /// Incidents in the database (a fifth of them opened by alerts).
    #[arg(long, default_value_t = 10_000)]
    incidents: u64,
    /// Timed GETs per page (after 20 warm-up GETs).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// One page's figures; `None` when the page answered 404 (not built).
struct PageFigures {
    path: String,
    timed: Option<Timed>,
}

struct Timed {
    median: f64,
    p90: f64,
    p99: f64,
    max: f64,
    bytes: usize,
}

/// Runs the benchmark and prints the figures.
pub async fn run(args: PagesArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .try_init();
    if args.incidents < 10 || args.requests == 0 {
        bail!("--incidents must be at least 10 and --requests at least 1");
    }
    let dir = std::env::temp_dir().join(format!("tocsin-bench-pages-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("tocsin.db").display());
    let result = async {
        let t = Instant::now();
        seed(&url, args.incidents).await.context("seeding")?;
        let seed_secs = t.elapsed().as_secs_f64();
        let pages = measure(&url, &args).await?;
        Ok::<_, anyhow::Error>((seed_secs, pages))
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let (seed_secs, pages) = result?;
    report(&args, seed_secs, &pages)
}

fn report(args: &PagesArgs, seed_secs: f64, pages: &[PageFigures]) -> anyhow::Result<()> {
    let worst = pages
        .iter()
        .filter_map(|p| p.timed.as_ref().map(|t| (t.median, p.path.as_str())))
        .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
    let all_under = pages
        .iter()
        .filter_map(|p| p.timed.as_ref())
        .all(|t| t.median < TARGET_MS);
    if args.json {
        let rows: Vec<_> = pages
            .iter()
            .map(|p| match &p.timed {
                Some(t) => json!({ "page": p.path, "absent": false, "median_ms": t.median,
                    "p90_ms": t.p90, "p99_ms": t.p99, "max_ms": t.max, "bytes": t.bytes }),
                None => json!({ "page": p.path, "absent": true }),
            })
            .collect();
        println!(
            "{}",
            json!({ "incidents": args.incidents, "requests": args.requests,
                    "seed_seconds": seed_secs, "pages": rows,
                    "worst_median_ms": worst.0, "worst_page": worst.1,
                    "all_medians_under_50ms": all_under })
        );
        return Ok(());
    }
    println!(
        "seeded {} incidents in {seed_secs:.1} s; {} timed GETs per page",
        args.incidents, args.requests
    );
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "page", "median", "p90", "p99", "max", "bytes"
    );
    for p in pages {
        match &p.timed {
            Some(t) => println!(
                "{:<40} {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>9}",
                p.path, t.median, t.p90, t.p99, t.max, t.bytes
            ),
            None => println!("{:<40} {:>9}", p.path, "absent"),
        }
    }
    println!(
        "worst median {:.2} ms ({}); every median under {TARGET_MS} ms: {}",
        worst.0,
        worst.1,
        if all_under { "yes" } else { "NO" }
    );
    Ok(())
}

/// A deterministic spread of choices (splitmix64), so runs seed the same data.
pub(crate) fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const PROBLEMS: &[&str] = &[
    "latency above the SLO",
    "error rate over 5%",
    "database connection pool exhausted",
    "TLS certificate expiring",
    "disk almost full",
    "memory leak after deploy",
    "queue backlog growing",
    "DNS resolution failures",
    "timeouts talking to payments",
    "replica lag over a minute",
];
const SERVICES: &[&str] = &[
    "checkout",
    "payments",
    "search",
    "catalog",
    "accounts",
    "shipping",
    "email",
    "api-gateway",
];
const SEVERITIES: &[(&str, u64)] = &[("SEV1", 5), ("SEV2", 20), ("SEV3", 60), ("SEV4", 100)];
const OPEN: &[Status] = &[
    Status::Triggered,
    Status::Acknowledged,
    Status::Investigating,
    Status::Identified,
    Status::Monitoring,
];

fn email(s: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse("email", s).map_err(|e| anyhow::anyhow!(e.message))
}

/// Fills the database: directory, on-call, incidents over time, alerts, and
/// the lifecycle moves that leave about 15% of incidents open.
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

    let hash = tocsin_server::password::hash("password", ADMIN_PASSWORD)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let admin = store
        .create_user(
            &NewUser {
                name: "Bench Admin".into(),
                email: email(ADMIN_EMAIL)?,
                role: Role::Admin,
                time_zone: "Europe/Berlin".into(),
                password_hash: Some(hash),
            },
            &sys,
            now,
        )
        .await?;
    let actor = Actor {
        user_id: Some(admin.id),
        name: admin.name.clone(),
    };
    let zones = ["UTC", "Europe/Berlin", "America/New_York"];
    let mut users = vec![admin.id];
    for i in 1..30 {
        let u = store
            .create_user(
                &NewUser {
                    name: format!("Responder {i:02}"),
                    email: email(&format!("user{i}@example.com"))?,
                    role: if i % 5 == 0 {
                        Role::Viewer
                    } else {
                        Role::Responder
                    },
                    time_zone: zones[i % 3].into(),
                    password_hash: None,
                },
                &actor,
                now,
            )
            .await?;
        users.push(u.id);
    }
    let mut teams = Vec::new();
    let mut schedules = Vec::new();
    for (t, name) in ["Platform", "Commerce", "Growth"].iter().enumerate() {
        let team = store.create_team(name, "", &actor, now).await?;
        let members: Vec<i64> = users.iter().skip(t * 10).take(10).copied().collect();
        for m in &members {
            store
                .set_team_member(team.id, *m, true, &actor, now)
                .await?;
        }
        let layer = |name: &str, turn: &str, who: &[i64]| LayerParts {
            name: name.into(),
            users: who.to_vec(),
            start: now - chrono::Duration::days(60),
            turn: turn.into(),
            turn_length: None,
            handoff: "09:00".into(),
            restrictions: vec![],
        };
        let parts = ScheduleParts {
            time_zone: zones[t].into(),
            layers: vec![
                layer("Primary", "weekly", &members[..5]),
                layer("Daytime", "daily", &members[5..]),
            ],
        };
        let s = store
            .create_schedule(&format!("{name} on call"), "", &parts, &actor, now)
            .await?;
        teams.push(team.id);
        schedules.push(s.id);
    }
    let mut services = Vec::new();
    let mut keys = Vec::new();
    for (i, name) in SERVICES.iter().enumerate() {
        let s = store
            .create_service(name, "", Some(teams[i % 3]), &actor, now)
            .await?;
        let policy = EscalationPolicy {
            levels: vec![
                Level {
                    targets: vec![Target::Schedule(schedules[i % 3])],
                    delay_minutes: 15,
                },
                Level {
                    targets: vec![Target::Team(teams[i % 3]), Target::User(admin.id)],
                    delay_minutes: 30,
                },
            ],
            repeat: 1,
        };
        let p = store
            .create_escalation_policy(&format!("{name} escalation"), "", &policy, &actor, now)
            .await?;
        store
            .set_service_escalation_policy(s.id, Some(p.id), &actor, now)
            .await?;
        keys.push(
            store
                .create_integration_key(s.id, "monitoring", &actor, now)
                .await?
                .secret,
        );
        services.push(s.id);
    }

    // Declared incidents, oldest first, 30 minutes apart.
    let alerts = incidents / 5;
    let declared = incidents - alerts;
    let start = now - chrono::Duration::minutes(30 * declared as i64 + 60);
    for i in 0..declared {
        let r = mix(i);
        let at = start + chrono::Duration::minutes(30 * i as i64 + (r % 20) as i64);
        let svc = (r >> 8) as usize % services.len();
        let sev = SEVERITIES
            .iter()
            .find(|(_, cut)| (r >> 16) % 100 < *cut)
            .map(|(s, _)| *s);
        let mut service_ids = vec![services[svc]];
        if (r >> 24).is_multiple_of(4) {
            service_ids.push(services[(svc + 1) % services.len()]);
        }
        let req = NewIncident {
            title: format!(
                "{} {}",
                SERVICES[svc],
                PROBLEMS[(r >> 32) as usize % PROBLEMS.len()]
            ),
            description: format!(
                "Seen by monitoring on {}. Customers may notice slower pages.",
                SERVICES[svc]
            ),
            severity: sev.map(str::to_string),
            incident_type: Some(settings.types[(r >> 40) as usize % 4].name.clone()),
            service_ids,
            assignee_id: (!(r >> 44).is_multiple_of(3))
                .then(|| users[(r >> 48) as usize % users.len()]),
            labels: vec![format!("team-{}", svc % 3)],
            ..NewIncident::default()
        };
        let inc = store
            .declare_incident(&settings, &req, Some(admin.id), &actor, at)
            .await?;
        if i % 10 == 0 {
            for n in 0..=(r % 3) {
                let note = NewNote {
                    body: format!(
                        "Checked the dashboards (step {n}); rolling back the last deploy."
                    ),
                    kind: RecordKind::Note,
                    approved_by: None,
                };
                store
                    .add_note(
                        inc.id,
                        &note,
                        &actor,
                        at + chrono::Duration::minutes(5 + n as i64),
                    )
                    .await?;
            }
        }
    }

    // The alerts, through the PagerDuty Events path of a server on this store:
    // each opens (and pages for) its own incident.
    let state = AppState::new(
        store.clone(),
        IncidentSettings::default(),
        Arc::new(SystemClock),
        unlimited(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(tocsin_server::serve(listener, state, async move {
        let _ = stopped.changed().await;
    }));
    let http = reqwest::Client::new();
    for i in 0..alerts {
        let r = mix(incidents + i);
        let svc = r as usize % keys.len();
        let sev = ["critical", "error", "warning", "info"][(r >> 8) as usize % 4];
        let body = json!({ "routing_key": keys[svc], "event_action": "trigger",
            "dedup_key": format!("bench-{i}"),
            "payload": { "summary": format!("{} {}", SERVICES[svc], PROBLEMS[(r >> 16) as usize % PROBLEMS.len()]),
                         "source": format!("host-{}", r % 40), "severity": sev } });
        let resp = http
            .post(format!("{base}/v2/enqueue"))
            .json(&body)
            .send()
            .await?;
        if resp.status() != reqwest::StatusCode::ACCEPTED {
            bail!("alert {i} refused: {}", resp.status());
        }
    }
    let _ = stop.send(true);
    server.await??;

    // The lifecycle: ~85% resolved (about half of those then closed), the rest
    // spread over the open statuses.
    let now = SystemClock.now();
    for id in 1..=incidents as i64 {
        let r = mix(id as u64 ^ 0xabcdef) % 1000;
        let inc = store.incident(id).await?;
        let mut at = inc.created_at;
        let mut step = |to: Status| {
            at = (at + chrono::Duration::minutes(5 + (r % 90) as i64)).min(now);
            (to, at)
        };
        let path: Vec<(Status, DateTime<Utc>)> = if r < 850 {
            let mut p = Vec::new();
            if r.is_multiple_of(3) {
                p.push(step(Status::Acknowledged));
            }
            p.push(step(Status::Resolved));
            if r < 400 {
                p.push(step(Status::Closed));
            }
            p
        } else {
            match OPEN[r as usize % OPEN.len()] {
                Status::Triggered => vec![],
                s => vec![step(s)],
            }
        };
        for (to, at) in path {
            store
                .transition_incident(&settings, id, to, &actor, at)
                .await?;
        }
    }
    store.close().await;
    Ok(())
}

fn unlimited() -> Limits {
    let mut limits = Limits::default();
    limits.ingest_rate.per_second = 1e9;
    limits.ingest_rate.burst = 1e9;
    limits
}

/// The value of `name` among a response's `Set-Cookie` headers.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=')?;
            (k.trim() == name && !val.is_empty()).then(|| val.to_string())
        })
}

/// Signs in like a browser: the form's cookie and hidden `_csrf`, then the post.
/// Returns the `Cookie` header value of the session.
async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let form = http.get(format!("{base}/login")).send().await?;
    let login = set_cookie(&form, "tocsin_login").context("GET /login set no tocsin_login")?;
    let html = form.text().await?;
    let csrf = html
        .split_once("name=\"_csrf\" value=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_string())
        .context("GET /login has no _csrf field")?;
    let resp = http
        .post(format!("{base}/login"))
        .header(reqwest::header::COOKIE, format!("tocsin_login={login}"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("next", "/"),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await?;
    if resp.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("sign-in refused: {}", resp.status());
    }
    let session = set_cookie(&resp, "tocsin_session").context("sign-in set no session")?;
    Ok(format!("tocsin_session={session}"))
}

/// Serves the seeded file with the default settings and times every page.
async fn measure(url: &str, args: &PagesArgs) -> anyhow::Result<Vec<PageFigures>> {
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
    let result = time_pages(&base, args).await;
    let _ = stop.send(true);
    let _ = server.await;
    store.close().await;
    result
}

async fn time_pages(base: &str, args: &PagesArgs) -> anyhow::Result<Vec<PageFigures>> {
    // One client, no redirects followed, one connection kept alive throughout.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()?;
    let cookie = sign_in(&http, base).await?;
    let mid = (args.incidents / 2).max(1);
    let mut out = Vec::new();
    for page in PAGES {
        let path = page.replace("{mid}", &mid.to_string());
        let get = || {
            http.get(format!("{base}{path}"))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
        };
        let first = get().await?;
        let status = first.status();
        let body = first.text().await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            out.push(PageFigures { path, timed: None });
            continue;
        }
        if status != reqwest::StatusCode::OK {
            bail!(
                "GET {path} answered {status}: {}",
                body.chars().take(300).collect::<String>()
            );
        }
        for _ in 0..19 {
            get().await?.bytes().await?;
        }
        let mut times = Vec::with_capacity(args.requests);
        let mut bytes = 0;
        for _ in 0..args.requests {
            let t0 = Instant::now();
            let resp = get().await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            times.push(t0.elapsed());
            if status != reqwest::StatusCode::OK {
                bail!("GET {path} answered {status} during the run");
            }
            bytes = body.len();
        }
        times.sort();
        out.push(PageFigures {
            path,
            timed: Some(Timed {
                median: ms(quantile(&times, 0.5)),
                p90: ms(quantile(&times, 0.9)),
                p99: ms(quantile(&times, 0.99)),
                max: ms(*times.last().unwrap_or(&Duration::ZERO)),
                bytes,
            }),
        });
    }
    Ok(out)
}

/// Nearest-rank quantile of sorted durations.
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
