//! The integration steps against local Jira, GitHub, Slack and Zoom servers
//! that check requests as the real APIs do: the SEV1 recipe end to end (with
//! Zoom, and with its Jitsi fallback), Slack's `ok: false` errors, retries
//! after a Jira 5xx, credentials kept out of everything stored or logged, and
//! a dry-run that calls nothing.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tocsin_engine::workflow::integrations::{GithubConfig, JiraConfig, SlackConfig, ZoomConfig};
use tocsin_engine::workflow::WorkflowConfig;

use super::fakes::*;
use super::secrets::{captured, database_text};
use super::{config, create, engine, run, runs_of, service};
use crate::support::{user, TestApp};

/// The recipe shipped with Tocsin, as users copy it.
const RECIPE: &str =
    include_str!("../../../../tocsin-core/src/workflow/examples/sev1-ticket-channel-call.yaml");

pub(super) struct Apis {
    pub jira: FakeApi,
    pub github: FakeApi,
    pub slack: FakeApi,
    pub zoom: FakeApi,
}

impl Apis {
    pub async fn start() -> Apis {
        Apis {
            jira: FakeApi::start(Service::Jira).await,
            github: FakeApi::start(Service::Github).await,
            slack: FakeApi::start(Service::Slack).await,
            zoom: FakeApi::start(Service::Zoom).await,
        }
    }

    /// Workflow settings with every integration pointing at its fake. HTTP
    /// steps may not reach loopback: the integrations reach their configured
    /// base URLs all the same.
    pub fn config(&self) -> WorkflowConfig {
        let mut c = config(false);
        c.integrations.jira = Some(JiraConfig {
            base_url: self.jira.base.clone(),
            email: JIRA_EMAIL.into(),
            api_token_secret: "JIRA_API_TOKEN".into(),
        });
        c.integrations.github = Some(GithubConfig {
            base_url: self.github.base.clone(),
            token_secret: "GITHUB_TOKEN".into(),
        });
        c.integrations.slack = Some(SlackConfig {
            base_url: format!("{}/api", self.slack.base),
            bot_token_secret: "SLACK_BOT_TOKEN".into(),
        });
        c.integrations.zoom = Some(ZoomConfig {
            api_url: format!("{}/v2", self.zoom.base),
            oauth_url: self.zoom.base.clone(),
            account_id: ZOOM_ACCOUNT.into(),
            client_id: ZOOM_CLIENT.into(),
            client_secret_secret: "ZOOM_CLIENT_SECRET".into(),
            host: "me".into(),
        });
        c
    }

    pub fn assert_no_problems(&self) {
        for f in [&self.jira, &self.github, &self.slack, &self.zoom] {
            assert!(f.problems().is_empty(), "{:?}", f.problems());
        }
    }

    fn calls(&self) -> usize {
        [&self.jira, &self.github, &self.slack, &self.zoom]
            .iter()
            .map(|f| f.calls().len())
            .sum()
    }
}

pub(super) async fn store_secrets(app: &TestApp, zoom_secret: &str) {
    for (name, value) in [
        ("JIRA_API_TOKEN", JIRA_TOKEN),
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("SLACK_BOT_TOKEN", SLACK_TOKEN),
        ("ZOOM_CLIENT_SECRET", zoom_secret),
    ] {
        let r = app
            .post("/api/v1/secrets", json!({ "name": name, "value": value }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
}

/// Three responders Slack knows; their ids.
async fn responders(app: &TestApp, slack: &FakeApi) -> Vec<i64> {
    let mut ids = Vec::new();
    for (i, name) in ["Alice", "Bob", "Carol"].iter().enumerate() {
        ids.push(user(app, name).await);
        let email = format!("{}.responder@example.com", name.to_lowercase());
        slack
            .script
            .lock()
            .unwrap()
            .slack_users
            .insert(email, format!("U0{}", i + 1));
    }
    ids
}

/// A SEV1 on `service` with an assignee and two role holders.
async fn declare_sev1(app: &TestApp, service: i64, people: &[i64]) -> i64 {
    app.declare(json!({
        "title": "Checkout down", "severity": "SEV1", "service_ids": [service],
        "description": "Payments fail at checkout.",
        "assignee_id": people[0],
        "roles": { "commander": [people[1]], "communicator": [people[2]] },
    }))
    .await["id"]
        .as_i64()
        .unwrap()
}

fn step<'a>(detail: &'a Value, id: &str) -> &'a Value {
    detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {detail}"))
}

async fn notes(app: &TestApp, inc: i64) -> Vec<String> {
    app.timeline(inc)
        .await
        .iter()
        .filter(|e| e["kind"] == "incident.note_added")
        .map(|e| e["data"]["body"].as_str().unwrap().to_string())
        .collect()
}

async fn links(app: &TestApp, inc: i64) -> Vec<Value> {
    app.timeline(inc)
        .await
        .iter()
        .filter(|e| e["kind"] == "workflow.step_succeeded" && e["data"]["link"].is_object())
        .map(|e| e["data"]["link"].clone())
        .collect()
}

async fn the_sev1_recipe_opens_a_ticket_a_channel_and_a_call(app: TestApp) {
    let logs = captured().clone();
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, ZOOM_SECRET).await;
    let people = responders(&app, &apis.slack).await;
    let checkout = service(&app, "checkout").await;
    create(&app, RECIPE).await;
    let inc = declare_sev1(&app, checkout, &people).await;
    let minor = app
        .declare(json!({ "title": "Slow", "severity": "SEV3", "service_ids": [checkout] }))
        .await["id"]
        .as_i64()
        .unwrap();
    engine.tick().await.unwrap();
    apis.assert_no_problems();
    assert!(runs_of(&app, minor).await.is_empty());

    // Jira: one issue with the mapped fields.
    let jira = apis.jira.to("/rest/api/2/issue");
    assert_eq!(jira.len(), 1);
    let fields = &jira[0].json()["fields"];
    assert_eq!(fields["project"], json!({ "key": "OPS" }));
    assert_eq!(fields["issuetype"], json!({ "name": "Incident" }));
    assert_eq!(fields["summary"], format!("INC-{inc}: Checkout down"));
    let description = fields["description"].as_str().unwrap();
    assert!(
        description.contains("Payments fail at checkout."),
        "{description}"
    );
    assert!(
        description.contains(&format!("/incidents/{inc}")),
        "{description}"
    );
    assert!(fields["priority"]["name"].is_string(), "{fields}");

    // Slack: the channel, the three responders looked up and invited, the summary.
    let channel = format!("inc-{inc}-checkout-down");
    let created = apis.slack.to("/api/conversations.create");
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].json(),
        json!({ "name": channel, "is_private": false })
    );
    let mut looked_up: Vec<String> = apis
        .slack
        .to("/api/users.lookupByEmail")
        .iter()
        .map(|c| c.query["email"].clone())
        .collect();
    looked_up.sort();
    assert_eq!(
        looked_up,
        [
            "alice.responder@example.com",
            "bob.responder@example.com",
            "carol.responder@example.com"
        ]
    );
    let invite = apis.slack.to("/api/conversations.invite");
    assert_eq!(invite.len(), 1);
    let users = invite[0].json()["users"].as_str().unwrap().to_string();
    let mut invited: Vec<&str> = users.split(',').collect();
    invited.sort();
    assert_eq!(invited, ["U01", "U02", "U03"]);
    assert_eq!(invite[0].json()["channel"], "C000000001");
    let posted = apis.slack.to("/api/chat.postMessage");
    assert_eq!(posted.len(), 1);
    let text = posted[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        text.contains(&format!("INC-{inc}: Checkout down")),
        "{text}"
    );
    assert!(text.contains("Services: checkout"), "{text}");

    // Zoom: a token, then an instant meeting.
    assert_eq!(apis.zoom.to("/oauth/token").len(), 1);
    let meeting = apis.zoom.to("/v2/users/me/meetings");
    assert_eq!(meeting.len(), 1);
    assert_eq!(meeting[0].json()["topic"], format!("INC-{inc} bridge"));
    assert_eq!(meeting[0].json()["type"], 1);

    // The run, its outputs, and each object on the timeline with its link.
    let runs = runs_of(&app, inc).await;
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    let detail = run(&app, runs[0]["id"].as_i64().unwrap()).await;
    let browse = format!("{}/browse/OPS-12", apis.jira.base);
    assert_eq!(step(&detail, "ticket")["outputs"]["key"], "OPS-12");
    assert_eq!(step(&detail, "ticket")["outputs"]["url"], browse);
    assert_eq!(step(&detail, "channel")["outputs"]["name"], channel);
    assert_eq!(step(&detail, "channel")["outputs"]["invited"], 3);
    let join = "https://us05web.zoom.us/j/85746065432?pwd=Pe4tMlsyb";
    assert_eq!(step(&detail, "zoom")["outputs"]["join_url"], join);
    assert_eq!(step(&detail, "jitsi")["status"], "skipped", "{detail}");
    let notes = notes(&app, inc).await;
    for line in [
        format!("Jira issue OPS-12 created: {browse}"),
        format!("Slack channel #{channel} created, 3 responders invited: https://slack.com/app_redirect?channel=C000000001"),
        format!("Meeting link: {join} (Zoom)"),
        format!("Jira: OPS-12\nSlack: #{channel}\nCall: {join}"),
    ] {
        assert!(
            notes.iter().any(|n| n.trim_end() == line),
            "{line:?} in {notes:#?}"
        );
    }
    let kinds: Vec<Value> = links(&app, inc)
        .await
        .iter()
        .map(|l| l["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            json!("jira_issue"),
            json!("slack_channel"),
            json!("zoom_meeting")
        ]
    );

    // No credential, access token or host key anywhere Tocsin keeps or shows.
    let mut kept = vec![detail.to_string(), json!(runs).to_string()];
    for path in [
        format!("/api/v1/incidents/{inc}/timeline"),
        format!("/api/v1/incidents/{inc}/notes"),
        "/api/v1/events?limit=1000".to_string(),
        "/api/v1/secrets".to_string(),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        kept.push(String::from_utf8_lossy(&r.bytes).to_string());
    }
    kept.push(database_text(&app).await);
    kept.push(String::from_utf8_lossy(&logs.lock().unwrap()).to_string());
    for text in &kept {
        for secret in [
            JIRA_TOKEN,
            SLACK_TOKEN,
            ZOOM_SECRET,
            ZOOM_ACCESS,
            ZOOM_HOST_KEY,
        ] {
            assert!(!text.contains(secret), "{secret} is kept: {text}");
        }
    }
    assert_eq!(engine.tick().await.unwrap().steps, 0);
    // A secret the configuration names is not deleted from under it.
    let r = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/secrets/JIRA_API_TOKEN",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "in_use"));
    assert!(
        r.body
            .to_string()
            .contains("workflows.jira.api_token_secret"),
        "{}",
        r.body
    );
}

async fn without_zoom_the_recipe_falls_back_to_a_jitsi_link(app: TestApp) {
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, "not-the-zoom-secret-QAZWSX").await;
    let people = responders(&app, &apis.slack).await;
    let checkout = service(&app, "checkout").await;
    create(&app, RECIPE).await;
    let inc = declare_sev1(&app, checkout, &people).await;
    engine.tick().await.unwrap();
    apis.assert_no_problems();
    assert!(apis.zoom.to("/v2/users/me/meetings").is_empty());
    let runs = runs_of(&app, inc).await;
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    let detail = run(&app, runs[0]["id"].as_i64().unwrap()).await;
    let zoom = step(&detail, "zoom");
    assert_eq!(zoom["status"], "failed");
    let error = zoom["error"].as_str().unwrap();
    assert!(
        error.contains("Zoom answered HTTP 401")
            && error.contains("Invalid client_id or client_secret"),
        "{error}"
    );
    let url = format!("https://meet.jit.si/tocsin-inc-{inc}");
    assert_eq!(step(&detail, "jitsi")["outputs"]["url"], url);
    let notes = notes(&app, inc).await;
    assert!(
        notes.contains(&format!("Meeting link: {url}")),
        "{notes:#?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.trim_end().ends_with(&format!("Call: {url}"))),
        "{notes:#?}"
    );
    let kinds: Vec<Value> = links(&app, inc)
        .await
        .iter()
        .map(|l| l["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            json!("jira_issue"),
            json!("slack_channel"),
            json!("jitsi_meeting")
        ]
    );
    assert!(!detail.to_string().contains("QAZWSX"), "{detail}");
}

const SLACK_ONLY: &str = "name: Channel
trigger: incident_declared
steps:
  - id: channel
    slack_create_channel:
      name: 'inc-{{ incident.id }}-db'
    retry: {attempts: 2, backoff: 10s}
";

async fn slack_errors_fail_visibly_and_taken_names_get_a_suffix(app: TestApp) {
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, ZOOM_SECRET).await;
    create(&app, SLACK_ONLY).await;
    // `ok: false` on HTTP 200 is a failure, with Slack's error, not retried.
    apis.slack
        .slack_error("conversations.create", &["restricted_action"]);
    let first = app
        .declare(json!({ "title": "DB down", "severity": "SEV2" }))
        .await["id"]
        .as_i64()
        .unwrap();
    engine.tick().await.unwrap();
    let r = &runs_of(&app, first).await[0];
    assert_eq!(r["status"], "failed", "{r}");
    let detail = run(&app, r["id"].as_i64().unwrap()).await;
    let error = "Slack conversations.create failed: restricted_action";
    assert_eq!(step(&detail, "channel")["error"], error);
    assert_eq!(step(&detail, "channel")["attempt"], 1);
    let failed = app
        .timeline(first)
        .await
        .into_iter()
        .find(|e| e["kind"] == "workflow.step_failed")
        .expect("step_failed on the timeline");
    assert_eq!(failed["data"]["error"], error);

    // A taken name: the next free suffix. A responder Slack does not know
    // is said so, not invited.
    let dave = user(&app, "Dave").await;
    let second = app
        .declare(json!({ "title": "DB slow", "severity": "SEV2", "assignee_id": dave }))
        .await["id"]
        .as_i64()
        .unwrap();
    apis.slack
        .script
        .lock()
        .unwrap()
        .channels
        .insert(format!("inc-{second}-db"));
    engine.tick().await.unwrap();
    let r = &runs_of(&app, second).await[0];
    assert_eq!(r["status"], "succeeded", "{r}");
    let detail = run(&app, r["id"].as_i64().unwrap()).await;
    let out = &step(&detail, "channel")["outputs"];
    assert_eq!(out["name"], format!("inc-{second}-db-2"));
    assert_eq!(out["not_found"], json!(["dave.responder@example.com"]));
    assert!(apis.slack.to("/api/conversations.invite").is_empty());
    let n = notes(&app, second).await;
    assert!(
        n[0].starts_with(&format!(
            "Slack channel #inc-{second}-db-2 created, 0 responders invited (1 not found in Slack: dave.responder@example.com)"
        )),
        "{n:?}"
    );

    // HTTP 429 with Retry-After may pass: tried again after the backoff.
    apis.slack.fail_with("/api/conversations.create", &[429]);
    let third = app
        .declare(json!({ "title": "DB flaky", "severity": "SEV2" }))
        .await["id"]
        .as_i64()
        .unwrap();
    engine.tick().await.unwrap();
    let r = &runs_of(&app, third).await[0];
    assert_eq!(r["status"], "waiting", "{r}");
    let detail = run(&app, r["id"].as_i64().unwrap()).await;
    let error = step(&detail, "channel")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("HTTP 429") && error.contains("retry after 30s"),
        "{error}"
    );
    app.clock.advance(Duration::seconds(10));
    engine.tick().await.unwrap();
    let r = &runs_of(&app, third).await[0];
    assert_eq!(r["status"], "succeeded", "{r}");
    apis.assert_no_problems();
}

async fn a_jira_5xx_is_retried_until_the_issue_is_created(app: TestApp) {
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, ZOOM_SECRET).await;
    create(
        &app,
        "name: Ticket
trigger: incident_declared
steps:
  - id: ticket
    jira_create_issue:
      project: OPS
      issue_type: Bug
      summary: '{{ incident.title }}'
      priority: High
      fields: {labels: '[\"incident\"]', customfield_10010: '{\"value\": \"payments\"}'}
    retry: {attempts: 3, backoff: 10s, factor: 2}
",
    )
    .await;
    apis.jira.fail_with("/rest/api/2/issue", &[503, 502]);
    let inc = app
        .declare(json!({ "title": "Jira flaky", "severity": "SEV2" }))
        .await["id"]
        .as_i64()
        .unwrap();
    engine.tick().await.unwrap();
    let r = &runs_of(&app, inc).await[0];
    assert_eq!(r["status"], "waiting", "{r}");
    let detail = run(&app, r["id"].as_i64().unwrap()).await;
    assert_eq!(
        step(&detail, "ticket")["error"],
        "Jira answered HTTP 503: Internal server error (503)"
    );
    app.clock.advance(Duration::seconds(10));
    engine.tick().await.unwrap();
    assert_eq!(apis.jira.to("/rest/api/2/issue").len(), 2);
    app.clock.advance(Duration::seconds(20));
    engine.tick().await.unwrap();
    let calls = apis.jira.to("/rest/api/2/issue");
    assert_eq!(calls.len(), 3);
    let fields = &calls[2].json()["fields"];
    assert_eq!(fields["priority"], json!({ "name": "High" }));
    assert_eq!(fields["labels"], json!(["incident"]));
    assert_eq!(fields["customfield_10010"], json!({ "value": "payments" }));
    assert_eq!(fields["summary"], "Jira flaky");
    let r = &runs_of(&app, inc).await[0];
    assert_eq!(r["status"], "succeeded", "{r}");
    let detail = run(&app, r["id"].as_i64().unwrap()).await;
    assert_eq!(step(&detail, "ticket")["attempt"], 3);
    assert_eq!(step(&detail, "ticket")["outputs"]["key"], "OPS-12");
    let n = notes(&app, inc).await;
    assert_eq!(
        n,
        [format!(
            "Jira issue OPS-12 created: {}/browse/OPS-12",
            apis.jira.base
        )]
    );
    apis.assert_no_problems();
}

async fn github_issues_are_created_and_a_4xx_is_final(app: TestApp) {
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, ZOOM_SECRET).await;
    create(
        &app,
        "name: Issue
trigger: incident_declared
steps:
  - id: issue
    github_create_issue:
      repo: acme/api
      title: '{{ incident.number }}: {{ incident.title }}'
      body: 'See {{ incident.url }}'
      labels: [incident, '{{ incident.severity | lower }}']
    retry: 3
",
    )
    .await;
    let inc = app
        .declare(json!({ "title": "API errors", "severity": "SEV2" }))
        .await["id"]
        .as_i64()
        .unwrap();
    engine.tick().await.unwrap();
    apis.assert_no_problems();
    let calls = apis.github.to("/repos/acme/api/issues");
    assert_eq!(calls.len(), 1);
    let body = calls[0].json();
    assert_eq!(body["title"], format!("INC-{inc}: API errors"));
    assert_eq!(body["labels"], json!(["incident", "sev2"]));
    let detail = run(&app, runs_of(&app, inc).await[0]["id"].as_i64().unwrap()).await;
    assert_eq!(step(&detail, "issue")["outputs"]["number"], 1347);
    let url = "https://github.com/acme/api/issues/1347";
    assert_eq!(
        notes(&app, inc).await,
        [format!("GitHub issue acme/api#1347 created: {url}")]
    );
    // A 4xx is final although attempts are left, with GitHub's message.
    apis.github.fail_with("/repos/acme/api/issues", &[404]);
    let other = app
        .declare(json!({ "title": "More errors", "severity": "SEV2" }))
        .await["id"]
        .as_i64()
        .unwrap();
    engine.tick().await.unwrap();
    let r = &runs_of(&app, other).await[0];
    assert_eq!(r["status"], "failed", "{r}");
    let detail = run(&app, r["id"].as_i64().unwrap()).await;
    assert_eq!(
        step(&detail, "issue")["error"],
        "GitHub answered HTTP 404: status 404"
    );
    assert_eq!(step(&detail, "issue")["attempt"], 1);
    let text = json!([detail, app.timeline(inc).await]).to_string();
    assert!(!text.contains(GITHUB_TOKEN));
}

async fn a_dry_run_of_the_recipe_calls_none_of_them(app: TestApp) {
    let apis = Apis::start().await;
    let (engine, _) = engine(&app, &apis.config());
    store_secrets(&app, ZOOM_SECRET).await;
    let people = responders(&app, &apis.slack).await;
    let checkout = service(&app, "checkout").await;
    let id = create(&app, &RECIPE.replace("enabled: true", "enabled: false")).await;
    let inc = declare_sev1(&app, checkout, &people).await;
    engine.tick().await.unwrap();
    let before = app.counts().await;
    let r = app
        .post(
            &format!("/api/v1/workflows/{id}/dry-run"),
            json!({ "incident_id": inc }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["conditions_hold"], true);
    let steps = r.body["steps"].as_array().unwrap();
    assert_eq!(
        steps[0]["inputs"]["jira_create_issue"]["summary"],
        format!("INC-{inc}: Checkout down")
    );
    assert_eq!(
        steps[1]["inputs"]["slack_create_channel"]["name"],
        format!("inc-{inc}-checkout-down")
    );
    engine.tick().await.unwrap();
    assert_eq!(apis.calls(), 0, "a dry-run calls nothing");
    assert_eq!(app.counts().await, before, "and writes nothing");
}

async fn an_integration_not_configured_says_so(app: TestApp) {
    let (engine, _) = engine(&app, &config(false));
    create(
        &app,
        "name: Ticket
trigger: incident_declared
steps:
  - id: ticket
    jira_create_issue: {project: OPS, issue_type: Bug, summary: x}
",
    )
    .await;
    let inc = app
        .declare(json!({ "title": "No Jira here", "severity": "SEV2" }))
        .await["id"]
        .as_i64()
        .unwrap();
    engine.tick().await.unwrap();
    let detail = run(&app, runs_of(&app, inc).await[0]["id"].as_i64().unwrap()).await;
    let error = step(&detail, "ticket")["error"].as_str().unwrap();
    assert!(
        error.contains("jira_create_issue is not configured") && error.contains("[workflows.jira]"),
        "{error}"
    );
}

crate::workflow_tests!(
    the_sev1_recipe_opens_a_ticket_a_channel_and_a_call,
    without_zoom_the_recipe_falls_back_to_a_jitsi_link,
    slack_errors_fail_visibly_and_taken_names_get_a_suffix,
    a_jira_5xx_is_retried_until_the_issue_is_created,
    github_issues_are_created_and_a_4xx_is_final,
    a_dry_run_of_the_recipe_calls_none_of_them,
    an_integration_not_configured_says_so,
);
