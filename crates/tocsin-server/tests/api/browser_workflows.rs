//! The workflow pages in a real headless Chromium: the YAML editor (a
//! refused save shows the error and keeps the text), a run's page with its
//! steps and the approval buttons, approving from it, and the screenshots
//! workflow-edit.png and workflow-run.png for docs/screenshots/. SQLite only
//! (the page logic runs on both back ends in web_workflows.rs); skipped,
//! saying so, without Chromium.

use reqwest::StatusCode;
use serde_json::json;

use crate::browser::screenshot_dir;
use crate::support::Db;
use crate::web_support::{web_user, PASSWORD};
use crate::webdriver::{available, Browser, Driver};
use crate::workflows::{config, create, declare, engine, run, runs_of, Fake};

const WORKFLOW: &str = "name: Restart stuck payments workers
description: Checks the workers, notes the result, and restarts them once the commander agrees.
trigger: incident_declared
conditions:
  - incident.severity in [\"SEV1\", \"SEV2\"]
steps:
  - id: health
    name: Ask the workers how they are
    http:
      method: POST
      url: BASE/echo
      headers: {Authorization: 'Bearer {{ secrets.PAYMENTS_TOKEN }}'}
      body: '{\"incident\": \"{{ incident.number }}\"}'
    retry: {attempts: 3, backoff: 10s}
  - name: Note the answer
    add_note: {text: 'Workers answered {{ steps.health.outputs.status }}'}
  - id: go
    name: Restart?
    approval: {role: commander, prompt: 'Restart the payments workers for {{ incident.number }}?', timeout: 30m}
  - name: Restart
    http: {method: POST, url: BASE/restart}
";

/// Full-page PNG at desktop width into the screenshot directory.
async fn shoot(b: &Browser, name: &str) {
    let dims = b
        .execute(
            "return [window.outerHeight - window.innerHeight,
               Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)];",
            vec![],
        )
        .await
        .unwrap();
    let full = dims[0].as_i64().unwrap() + dims[1].as_i64().unwrap().max(900);
    b.set_window_rect(1280, full).await.unwrap();
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(screenshot_dir().join(name), png).unwrap();
    b.set_window_rect(1280, 900).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_and_a_run_in_a_browser() {
    if !available() {
        return;
    }
    let driver = Driver::start().await;
    let app = crate::workflows::spawn(Db::Sqlite)
        .await
        .expect("sqlite app");
    let fake = Fake::start().await;
    let r = app
        .post(
            "/api/v1/secrets",
            json!({ "name": "PAYMENTS_TOKEN", "value": "tok-123-secret" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let wf = create(&app, &WORKFLOW.replace("BASE", &fake.base)).await;
    let (admin, email) = web_user(&app, "admin").await;
    let inc = declare(&app, "Payments queue stuck", "SEV1", &[]).await;
    let r = app
        .patch(
            &format!("/api/v1/incidents/{inc}"),
            json!({ "roles": { "commander": [admin] } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (engine, _) = engine(&app, &config(true));
    engine.tick().await.unwrap();
    let id = runs_of(&app, inc).await[0]["id"].as_i64().unwrap();
    assert_eq!(run(&app, id).await["status"], "awaiting_approval");

    let b = driver.session().await;
    b.set_window_rect(1280, 900).await.unwrap();
    b.goto(&format!("{}/login", app.base)).await;
    b.type_into("#email", &email).await;
    b.type_into("#password", PASSWORD).await;
    b.click_on("main form button[type=submit]").await;
    b.wait_path("/").await;

    // The editor: the current YAML, then a refused save keeps what was typed.
    b.goto(&format!("{}/workflows/{wf}", app.base)).await;
    let yaml = b.wait_find("#workflow-yaml").await;
    let shown = b
        .execute(
            "return arguments[0].value;",
            vec![json!({ crate::webdriver::ELEMENT: yaml })],
        )
        .await
        .unwrap();
    assert!(
        shown
            .as_str()
            .unwrap()
            .starts_with("name: Restart stuck payments workers"),
        "{shown}"
    );
    shoot(&b, "workflow-edit.png").await;
    b.execute(
        "arguments[0].value = arguments[0].value.replace('timeout: 30m}', 'timeout: 30m');",
        vec![json!({ crate::webdriver::ELEMENT: yaml })],
    )
    .await
    .unwrap();
    b.click_on("#workflow-form button[type=submit]").await;
    let error = b
        .wait_text("#form-error", "names the line", |t| t.contains("line"))
        .await;
    assert!(error.starts_with("Not saved."), "{error}");
    let r = app.get(&format!("/api/v1/workflows/{wf}/versions")).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "nothing saved");

    // The run: each step with its record, the secret as a marker, and the
    // approval the signed-in commander may decide.
    b.goto(&format!("{}/workflow-runs/{id}", app.base)).await;
    b.wait_find("#run-steps").await;
    assert_eq!(b.find_all("#run-steps > li").await.unwrap().len(), 3);
    let page = b
        .execute("return document.body.innerText;", vec![])
        .await
        .unwrap();
    let page = page.as_str().unwrap();
    assert!(!page.contains("tok-123-secret"), "{page}");
    assert!(page.contains("Restart the payments workers for"), "{page}");
    b.wait_find(&format!("#approve-{id}")).await;
    shoot(&b, "workflow-run.png").await;
    b.click_on(&format!("#approve-{id} button.primary")).await;
    b.wait_path(&format!("/workflow-runs/{id}")).await;
    crate::webdriver::wait_for("the approval to be recorded", || async {
        (run(&app, id).await["steps"][2]["decided_by"] == admin).then_some(())
    })
    .await;
    assert!(b.find("#approval").await.is_err(), "nothing waits any more");
}
