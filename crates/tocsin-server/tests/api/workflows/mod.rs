//! Workflows end to end: definitions over the API, triggers from stored
//! events, the engine executing steps against a local HTTP server standing in
//! for outside services, on a fake clock.

mod action_item_issues;
mod approvals;
mod dispatch;
mod fakes;
mod flow;
mod guards;
mod integrations;
mod runbook_pages;
mod runbooks;
mod secrets;
mod timers;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::response::IntoResponse;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tocsin_core::postmortem::tracker::{JiraTarget, TrackerTargets};
use tocsin_core::workflow::NetPolicy;
use tocsin_engine::delivery::RecordingDelivery;
use tocsin_engine::workflow::{
    standard_executors, CommandSpec, ExecutorDeps, Executors, WorkflowConfig, WorkflowEngine,
};
use tocsin_server::state::WorkflowSetup;
use tocsin_store::workflows::SecretKey;

use crate::support::{spawn_app_setup, test_settings, Db, Resp, TestApp};

/// One request the fake service received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A local HTTP server standing in for an outside service: records every
/// request and answers what it is told per path (200 `{"id": 42}` by default;
/// `/echo` answers the request back; `/echo-fail` too, with 400).
#[derive(Clone, Default)]
pub struct Fake {
    pub base: String,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<HashMap<String, VecDeque<(u16, Value)>>>>,
}

impl Fake {
    pub async fn start() -> Fake {
        let mut fake = Fake::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        fake.base = format!("http://{}", listener.local_addr().unwrap());
        let me = fake.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let me = me.clone();
            async move { me.answer(req).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    async fn answer(&self, req: Request) -> axum::response::Response {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let headers: BTreeMap<String, String> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let key = headers.get("idempotency-key").cloned();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .map(|b| String::from_utf8_lossy(&b).to_string())
            .unwrap_or_default();
        self.received.lock().unwrap().push(Received {
            method,
            path: path.clone(),
            key,
            headers: headers.clone(),
            body: body.clone(),
        });
        let echo = json!({ "headers": headers, "body": body });
        let (status, out) = match path.as_str() {
            "/echo" => (200, echo),
            "/echo-fail" => (400, echo),
            _ => self
                .answers
                .lock()
                .unwrap()
                .get_mut(&path)
                .and_then(|q| q.pop_front())
                .unwrap_or((200, json!({ "id": 42, "ok": true }))),
        };
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            axum::Json(out),
        )
            .into_response()
    }

    /// Answers the next requests to `path` with these statuses (then 200).
    pub fn answer_with(&self, path: &str, statuses: &[u16]) {
        let q = statuses
            .iter()
            .map(|s| (*s, json!({ "error": format!("status {s}") })))
            .collect();
        self.answers.lock().unwrap().insert(path.to_string(), q);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Requests to `path`.
    pub fn to(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

/// The workflow settings tests use: loopback allowed (the fake is there),
/// `/bin/echo` and `/bin/sleep` on the allowlist.
pub fn config(allow_loopback: bool) -> WorkflowConfig {
    let allow: Vec<String> = if allow_loopback {
        vec!["127.0.0.0/8".into()]
    } else {
        Vec::new()
    };
    let mut commands = BTreeMap::new();
    commands.insert(
        "echo".to_string(),
        CommandSpec {
            program: "/bin/echo".into(),
            args: vec!["fixed".into()],
        },
    );
    commands.insert(
        "sleep".to_string(),
        CommandSpec {
            program: "/bin/sleep".into(),
            args: vec![],
        },
    );
    WorkflowConfig {
        net: NetPolicy::parse(&allow, &[]).unwrap(),
        commands,
        ..WorkflowConfig::default()
    }
}

/// An engine over the app's store and clock.
pub fn engine(app: &TestApp, config: &WorkflowConfig) -> (WorkflowEngine, RecordingDelivery) {
    engine_on(app, app.store.clone(), config)
}

/// An engine over another store (another node) on the app's clock.
pub fn engine_on(
    app: &TestApp,
    store: tocsin_store::Store,
    config: &WorkflowConfig,
) -> (WorkflowEngine, RecordingDelivery) {
    let delivery = RecordingDelivery::default();
    let executors = standard_executors(
        config,
        ExecutorDeps {
            settings: Arc::new(test_settings()),
            delivery: Arc::new(delivery.clone()),
            providers: HashMap::new(),
        },
    );
    let engine = WorkflowEngine::new(
        store,
        Arc::new(app.clock.clone()),
        Executors::new(executors),
        4,
    );
    (engine, delivery)
}

/// A server whose workflow settings offer the test commands and a channel,
/// and a secret key.
pub async fn spawn(db: Db) -> Option<TestApp> {
    let app = spawn_app_setup(db, test_settings(), Default::default(), |mut s| {
        s.workflows = Arc::new(WorkflowSetup {
            commands: ["echo".to_string(), "sleep".to_string()].into(),
            channels: ["ops".to_string()].into(),
            // As [workflows.jira] and the rest name them in the integration tests.
            config_secrets: [
                ("JIRA_API_TOKEN", "workflows.jira.api_token_secret"),
                ("SLACK_BOT_TOKEN", "workflows.slack.bot_token_secret"),
            ]
            .into_iter()
            .map(|(n, k)| (n.to_string(), k.to_string()))
            .collect(),
            // As `action_items_project = "OPS"` and `action_items_repo = "acme/api"`.
            trackers: TrackerTargets {
                jira: Some(JiraTarget {
                    project: "OPS".into(),
                    issue_type: "Task".into(),
                }),
                github: Some("acme/api".into()),
            },
        });
        s
    })
    .await?;
    app.store
        .set_secret_key(SecretKey::from_bytes(&[7u8; 32]).unwrap());
    Some(app)
}

/// Runs `$name(app)` on both back ends with [`spawn`].
#[macro_export]
macro_rules! workflow_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = super::super::spawn($crate::support::Db::Sqlite).await.expect("sqlite app");
                super::$name(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match super::super::spawn($crate::support::Db::Postgres).await {
                    Some(app) => super::$name(app).await,
                    None => eprintln!("skipped: TOCSIN_TEST_POSTGRES_URL is not set"),
                }
            }
        }
    )+};
}

/// Creates a workflow from YAML; its id.
pub async fn create(app: &TestApp, yaml: &str) -> i64 {
    let r = save(app, yaml).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// POSTs YAML to /api/v1/workflows.
pub async fn save(app: &TestApp, yaml: &str) -> Resp {
    app.raw(
        Method::POST,
        "/api/v1/workflows",
        Some(&app.admin_token),
        "application/yaml",
        yaml.as_bytes().to_vec(),
    )
    .await
}

/// A service; its id.
pub async fn service(app: &TestApp, name: &str) -> i64 {
    let r = app.post("/api/v1/services", json!({ "name": name })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// Declares an incident; its id.
pub async fn declare(app: &TestApp, title: &str, severity: &str, services: &[i64]) -> i64 {
    app.declare(json!({ "title": title, "severity": severity, "service_ids": services }))
        .await["id"]
        .as_i64()
        .unwrap()
}

/// The runs of an incident.
pub async fn runs_of(app: &TestApp, incident: i64) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/incidents/{incident}/workflow-runs"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

/// One run with its steps.
pub async fn run(app: &TestApp, id: i64) -> Value {
    let r = app.get(&format!("/api/v1/workflow-runs/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// The kinds of the incident's timeline events, in order.
pub async fn kinds(app: &TestApp, incident: i64) -> Vec<String> {
    app.timeline(incident)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}
