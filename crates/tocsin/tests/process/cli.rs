//! The CLI client against a running server, as the README's tour uses it.

use std::process::{Command, Output};

use serde_json::Value;

use crate::server::{Server, TempDir, BIN};

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
