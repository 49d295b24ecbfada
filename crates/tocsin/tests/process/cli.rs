//! The CLI client against a running server, as the README's tour uses it.

use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::server::{Http, Server, TempDir, BIN};

struct Cli {
    url: String,
    token: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("TOCSIN_URL", &self.url)
            .env("TOCSIN_TOKEN", &self.token)
            .output()
            .expect("run tocsin")
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "tocsin {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).expect("--json prints JSON")
    }
}

#[test]
fn cli_tour() {
    let dir = TempDir::new("cli");
    let server = Server::start(&dir.0, &[]);
    let cli = Cli {
        url: server.url.clone(),
        token: server.token.clone().unwrap(),
    };

    assert!(cli.ok(&["whoami"]).contains("admin@localhost"));
    let svc = cli.json(&[
        "service",
        "create",
        "--name",
        "checkout",
        "--description",
        "Web checkout",
    ]);
    let svc_id = svc["id"].as_i64().unwrap().to_string();
    let key = cli.ok(&[
        "service",
        "key",
        "create",
        &svc_id,
        "--name",
        "alertmanager",
    ]);
    assert!(key.contains("shown only now"), "{key}");
    assert!(cli
        .ok(&["service", "key", "list", &svc_id])
        .contains("alertmanager"));

    let out = cli.ok(&[
        "incident",
        "declare",
        "--title",
        "Checkout returns 502",
        "--severity",
        "SEV2",
        "--impact",
        "high",
        "--urgency",
        "high",
        "--service",
        &svc_id,
        "--label",
        "payments",
    ]);
    assert!(out.contains("INC-1") && out.contains("P1"), "{out}");
    let list = cli.ok(&["incident", "list"]);
    assert!(list.lines().next().unwrap().starts_with("NUMBER"), "{list}");
    assert!(
        list.contains("Checkout returns 502") && list.contains("triggered"),
        "{list}"
    );
    assert!(cli
        .ok(&["incident", "ack", "INC-1"])
        .contains("acknowledged"));
    assert!(cli
        .ok(&[
            "incident",
            "note",
            "INC-1",
            "Rolled back the gateway deploy",
            "--decision"
        ])
        .contains("decision"));
    let file = dir.0.join("errors.log");
    std::fs::write(&file, "502 upstream timed out\n").unwrap();
    let out = cli.ok(&["incident", "attach", "INC-1", file.to_str().unwrap()]);
    assert!(
        out.contains("errors.log") && out.contains("sha256"),
        "{out}"
    );
    cli.ok(&[
        "incident",
        "update",
        "INC-1",
        "--root-cause",
        "bad deploy",
        "--resolution",
        "rolled back",
    ]);
    assert!(cli
        .ok(&["incident", "resolve", "INC-1"])
        .contains("resolved"));
    assert!(cli.ok(&["incident", "close", "1"]).contains("closed"));
    let shown = cli.json(&["incident", "show", "INC-1"]);
    assert_eq!(shown["incident"]["status"], "closed");
    assert_eq!(shown["incident"]["root_cause"], "bad deploy");
    assert_eq!(shown["notes"][0]["kind"], "decision");
    let kinds: Vec<&str> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "incident.declared",
            "incident.status_changed",
            "incident.note_added",
            "incident.attachment_added",
            "incident.updated",
            "incident.status_changed",
            "incident.status_changed"
        ]
    );
    let table = cli.ok(&["incident", "show", "INC-1"]);
    assert!(
        table.contains("Timeline:") && table.contains("acknowledged -> resolved"),
        "{table}"
    );
    assert_eq!(
        cli.json(&["incident", "list", "--q", "rolled", "--all"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let user = cli.json(&[
        "user",
        "create",
        "--name",
        "Rita Responder",
        "--email",
        "rita@example.com",
        "--role",
        "responder",
    ]);
    let uid = user["id"].as_i64().unwrap().to_string();
    let tok = cli.json(&["token", "create", "--name", "rita-cli", "--user", &uid]);
    assert!(tok["secret"].as_str().unwrap().starts_with("tcs_"));
    assert_eq!(tok["role"], "responder");
    assert!(cli.ok(&["token", "list"]).contains("rita-cli"));
    cli.ok(&["token", "revoke", &tok["id"].to_string()]);

    // Errors: non-zero exit, the field named, nothing on stdout.
    let out = cli.run(&["incident", "declare", "--title", "x", "--severity", "SEV9"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("severity") && err.contains("SEV9"), "{err}");
    let out = cli.run(&["incident", "close", "INC-1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowed next: investigating"));
    let out = Command::new(BIN)
        .args(["incident", "list"])
        .env("TOCSIN_URL", &cli.url)
        .env_remove("TOCSIN_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOCSIN_TOKEN"));
    let out = Command::new(BIN)
        .args(["incident", "list"])
        .env("TOCSIN_URL", "http://127.0.0.1:9")
        .env("TOCSIN_TOKEN", "tcs_x")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot reach the Tocsin server at http://127.0.0.1:9"));
}

#[test]
fn config_file_and_json_logs() {
    let dir = TempDir::new("config");
    let config = dir.0.join("tocsin.toml");
    std::fs::write(&config, "log_format = \"json\"\nmax_body_bytes = 4096\n[incident]\ntypes = [{ name = \"app\" }, { name = \"infra\" }]\n").unwrap();
    let server = Server::start(&dir.0, &["--config", config.to_str().unwrap()]);
    let cli = Cli {
        url: server.url.clone(),
        token: server.token.clone().unwrap(),
    };
    let inc = cli.json(&["incident", "declare", "--title", "typed"]);
    assert_eq!(inc["type"], "app", "the configured types apply");
    let out = cli.run(&[
        "incident", "declare", "--title", "typed", "--type", "software",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("types are: app, infra"));
    drop(server);
    // log_format = "json" from the file: every log line is a JSON object.
    let fresh = dir.0.join("fresh");
    let out = Command::new(BIN)
        .args([
            "migrate",
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            fresh.to_str().unwrap(),
        ])
        .env("TOCSIN_LOG_LEVEL", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.lines().count() > 0);
    for line in logs.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    // A bad configuration file stops the server with a message naming the key.
    std::fs::write(&config, "listn = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listn"));
}

#[test]
fn admin_token_is_break_glass_access() {
    let dir = TempDir::new("breakglass");
    let server = Server::start(&dir.0, &[]);
    let url = server.url.clone();
    let out = Command::new(BIN)
        .args(["admin-token", "--data-dir", dir.0.to_str().unwrap()])
        .env("TOCSIN_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("TOCSIN_TOKEN="))
        .expect("a token")
        .to_string();
    assert_ne!(
        Some(token.clone()),
        server.token,
        "a new token, not the bootstrap one"
    );
    let cli = Cli { url, token };
    assert!(cli.ok(&["whoami"]).contains("admin"));
}

/// Runs a CLI command that must fail with `code` (1: refused; 2: a usage error
/// clap reports); returns stderr.
fn failed(cli: &Cli, code: i32, args: &[&str]) -> String {
    let out = cli.run(args);
    assert_eq!(out.status.code(), Some(code), "tocsin {args:?} should fail");
    assert!(out.stdout.is_empty(), "nothing on stdout for {args:?}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The row of a table whose first column is `first`.
fn row<'a>(table: &'a str, first: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(first))
        .unwrap_or_else(|| panic!("no row {first} in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oncall_answers_who_is_on_call() {
    let dir = TempDir::new("oncall");
    let server = Server::start(&dir.0, &[]);
    let token = server.token.clone().unwrap();
    let http = Http::new(&server.url, &token);
    let cli = Cli {
        url: server.url.clone(),
        token,
    };
    let post = |path: &'static str, body: Value| {
        let http = &http;
        async move {
            let (status, v) = http.post(path, body).await.unwrap();
            assert_eq!(status, 201, "{path}: {v}");
            v["id"].as_i64().unwrap()
        }
    };
    let user = |name: &str| {
        let v = cli.json(&[
            "user",
            "create",
            "--name",
            name,
            "--email",
            &format!("{}@example.com", name.to_lowercase()),
            "--role",
            "responder",
            "--time-zone",
            "Europe/Berlin",
        ]);
        v["id"].as_i64().unwrap()
    };
    let (ada, bo, cy) = (user("Ada"), user("Bo"), user("Cy"));
    let me = cli.json(&["whoami"])["user"]["id"].as_i64().unwrap();
    let now = chrono::Utc::now();
    let rfc = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();

    // Ada every day, with Cy covering now; Ada and Bo alternating at 09:00
    // Berlin time; the admin on a schedule of their own.
    let primary = post(
        "/api/v1/schedules",
        json!({ "name": "Platform primary", "time_zone": "America/New_York",
            "layers": [{ "name": "base", "users": [ada], "start": "2026-01-01T00:00:00Z",
                "turn": "daily", "handoff": "09:00" }] }),
    )
    .await;
    let (status, _) = http
        .post(
            &format!("/api/v1/schedules/{primary}/overrides"),
            json!({ "user_id": cy, "starts_at": rfc(now - chrono::Duration::hours(1)),
                "ends_at": rfc(now + chrono::Duration::hours(2)) }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let rotation = post(
        "/api/v1/schedules",
        json!({ "name": "Rotation", "time_zone": "Europe/Berlin",
            "layers": [{ "name": "days", "users": [ada, bo], "start": "2026-03-02T08:00:00Z",
                "turn": "daily", "handoff": "09:00" }] }),
    )
    .await;
    post(
        "/api/v1/schedules",
        json!({ "name": "Admins", "time_zone": "UTC",
            "layers": [{ "name": "all", "users": [me], "start": "2026-01-01T00:00:00Z",
                "turn": "weekly", "handoff": "00:00" }] }),
    )
    .await;
    // Two schedules whose names differ only in case: naming them is ambiguous.
    for name in ["Night", "NIGHT"] {
        post(
            "/api/v1/schedules",
            json!({ "name": name, "time_zone": "UTC",
                "layers": [{ "name": "n", "users": [bo], "start": "2026-01-01T00:00:00Z",
                    "turn": "daily", "handoff": "00:00" }] }),
        )
        .await;
    }
    let policy = post(
        "/api/v1/escalation-policies",
        json!({ "name": "Checkout", "levels": [
            { "targets": [{ "schedule": rotation }], "delay_minutes": 10 },
            { "targets": [{ "user": cy }, { "schedule": primary }], "delay_minutes": 15 } ] }),
    )
    .await;
    let svc = post("/api/v1/services", json!({ "name": "checkout" })).await;
    post("/api/v1/services", json!({ "name": "billing" })).await;
    let r = http
        .client
        .put(format!(
            "{}/api/v1/services/{svc}/escalation-policy",
            http.url
        ))
        .bearer_auth(&http.token)
        .json(&json!({ "escalation_policy_id": policy }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Every schedule, now: a table of schedule, user, until (in its zone), why.
    let table = cli.ok(&["oncall"]);
    assert!(
        table.lines().next().unwrap().starts_with("SCHEDULE"),
        "{table}"
    );
    let platform = row(&table, "Platform primary");
    assert!(
        platform.contains("Cy") && platform.contains("override"),
        "{table}"
    );
    assert!(
        platform.contains(" EST") || platform.contains(" EDT"),
        "until, in New York time: {table}"
    );
    assert!(row(&table, "Admins").contains("Admin"), "{table}");
    assert!(row(&table, "Rotation").contains("layer days"), "{table}");
    let all = cli.json(&["oncall"]);
    assert_eq!(all.as_array().unwrap().len(), 5, "{all}");

    // One schedule by name (any case) or id, now and at another time.
    let v = cli.json(&["oncall", "--schedule", "platform PRIMARY"]);
    assert_eq!(v["schedule_id"], primary);
    assert_eq!(v["shift"]["user_name"], "Cy");
    assert!(v["override_id"].is_i64(), "{v}");
    let at_monday = [
        "oncall",
        "--schedule",
        "Rotation",
        "--at",
        "2026-03-02T12:00:00Z",
    ];
    let out = cli.ok(&at_monday);
    assert!(out.contains("On call at 2026-03-02 12:00 UTC"), "{out}");
    let r = row(&out, "Rotation");
    assert!(
        r.contains("Ada") && r.contains("Tue 2026-03-03 09:00 CET") && r.contains("layer days"),
        "{out}"
    );
    let out = cli.ok(&[
        "oncall",
        "--schedule",
        &rotation.to_string(),
        "--at",
        "2026-03-03T13:00:00+01:00",
    ]);
    assert!(row(&out, "Rotation").contains("Bo"), "{out}");

    // A policy level by level, targets to users; a service through its policy.
    let out = cli.ok(&[
        "oncall",
        "--policy",
        "checkout",
        "--at",
        "2026-03-03T12:00:00Z",
    ]);
    assert!(
        out.starts_with(&format!(
            "At Tue 2026-03-03 12:00 UTC, escalation policy Checkout ({policy}) pages:"
        )),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("LEVEL")), "{out}");
    let first = row(&out, "1 ");
    assert!(
        first.contains("schedule Rotation") && first.contains("Bo") && first.contains("10 min"),
        "{out}"
    );
    let second = row(&out, "2 ");
    assert!(
        second.contains("user Cy") && second.ends_with("Cy"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("schedule Platform primary") && l.ends_with("Ada")),
        "Platform primary at that time has Ada: {out}"
    );
    let out = cli.ok(&[
        "oncall",
        "--service",
        "Checkout",
        "--at",
        "2026-03-03T12:00:00Z",
    ]);
    assert!(
        out.starts_with("Service checkout uses escalation policy Checkout"),
        "{out}"
    );
    assert!(row(&out, "1 ").contains("Bo"), "{out}");
    let v = cli.json(&[
        "oncall",
        "--service",
        &svc.to_string(),
        "--at",
        "2026-03-02T12:00:00Z",
    ]);
    assert_eq!(
        v["escalation_policy"]["levels"][0]["users"][0]["user_name"],
        "Ada"
    );
    assert!(cli
        .ok(&["oncall", "--service", "billing"])
        .contains("Service billing has no escalation policy"));

    // Shifts over a range, in the schedule's zone.
    let out = cli.ok(&[
        "oncall",
        "shifts",
        "--schedule",
        "rotation",
        "--from",
        "2026-03-02T08:00:00Z",
        "--to",
        "2026-03-04T08:00:00Z",
    ]);
    assert!(
        out.starts_with("Shifts of Rotation, times in Europe/Berlin:"),
        "{out}"
    );
    let rows: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].starts_with("Ada")
            && rows[0].contains("Mon 2026-03-02 09:00 CET")
            && rows[0].contains("Tue 2026-03-03 09:00 CET"),
        "{out}"
    );
    assert!(rows[1].starts_with("Bo"), "{out}");
    let v = cli.json(&["oncall", "shifts", "--schedule", "Rotation"]);
    assert!(
        !v.as_array().unwrap().is_empty(),
        "the next 7 days by default: {v}"
    );

    // My shifts: the caller's own, across schedules, in their zone.
    let out = cli.ok(&["oncall", "mine"]);
    assert!(out.contains("times in UTC (your time zone)"), "{out}");
    assert!(row(&out, "Admins").contains("layer all"), "{out}");
    assert!(!out.contains("Rotation"), "{out}");
    let ada_token = cli.json(&[
        "token",
        "create",
        "--name",
        "ada-cli",
        "--user",
        &ada.to_string(),
    ]);
    let as_ada = Cli {
        url: cli.url.clone(),
        token: ada_token["secret"].as_str().unwrap().to_string(),
    };
    let out = as_ada.ok(&["oncall", "mine", "--days", "3"]);
    assert!(out.contains("times in Europe/Berlin"), "{out}");
    assert!(
        out.contains("Platform primary") && out.contains("Rotation") && !out.contains("Admins"),
        "{out}"
    );
    let v = as_ada.json(&["oncall", "mine"]);
    assert!(
        v.as_array().unwrap().iter().all(|s| s["user_id"] == ada),
        "{v}"
    );

    // Errors name the flag and exit 1.
    let err = failed(&cli, 1, &["oncall", "--schedule", "nope"]);
    assert!(
        err.contains("--schedule: no schedule has the id or name `nope`")
            && err.contains("`Rotation`"),
        "{err}"
    );
    let err = failed(&cli, 1, &["oncall", "--schedule", "night"]);
    assert!(
        err.contains("--schedule") && err.contains("2 schedules") && err.contains("give the id"),
        "{err}"
    );
    let err = failed(&cli, 1, &["oncall", "--policy", "Nothing"]);
    assert!(err.contains("--policy"), "{err}");
    let err = failed(&cli, 1, &["oncall", "--service", "9999"]);
    assert!(err.contains("--service") && err.contains("9999"), "{err}");
    let err = failed(&cli, 1, &["oncall", "--schedule", "Rotation", "mine"]);
    assert!(err.contains("belong to `tocsin oncall` alone"), "{err}");
    let err = failed(&cli, 1, &["oncall", "shifts", "--schedule", "nope"]);
    assert!(err.contains("--schedule"), "{err}");
    let err = failed(
        &cli,
        2,
        &["oncall", "--schedule", "Rotation", "--at", "tomorrow"],
    );
    assert!(err.contains("--at") && err.contains("RFC 3339"), "{err}");
    let err = failed(
        &cli,
        1,
        &[
            "oncall",
            "shifts",
            "--schedule",
            "Rotation",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-06-01T00:00:00Z",
        ],
    );
    assert!(err.contains("to:") && err.contains("93 days"), "{err}");
    let err = failed(&cli, 2, &["oncall", "mine", "--days", "94"]);
    assert!(err.contains("--days"), "{err}");
    let err = failed(
        &cli,
        2,
        &["oncall", "--schedule", "Rotation", "--policy", "Checkout"],
    );
    assert!(err.contains("--policy"), "{err}");
}
