//! The workflow pages: the list, the YAML editor (a refused definition comes
//! back with the error and saves nothing; an edit is a new version), versions
//! and export, enable/disable, the dry-run (a plan, nothing done), runs with
//! every step, approvals only for the role they name, manual runs from the
//! incident room, and secrets whose values no page ever shows.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::TestApp;
use crate::web_support::signed_in;
use crate::workflows::{config, create, declare, engine, run, runs_of, Fake};

/// Runs `$name(app)` on both back ends with the workflow test server.
macro_rules! web_workflow_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = crate::workflows::spawn(crate::support::Db::Sqlite).await.expect("sqlite app");
                super::$name(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match crate::workflows::spawn(crate::support::Db::Postgres).await {
                    Some(app) => super::$name(app).await,
                    None => eprintln!("skipped: TOCSIN_TEST_POSTGRES_URL is not set"),
                }
            }
        }
    )+};
}

const EVIL: &str = "<script>alert(1)</script>";

async fn workflow(app: &TestApp, id: i64) -> Value {
    let r = app.get(&format!("/api/v1/workflows/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn versions(app: &TestApp, id: i64) -> usize {
    let r = app.get(&format!("/api/v1/workflows/{id}/versions")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().unwrap().len()
}

const NOTE: &str = "name: Note on SEV1
trigger: incident_declared
steps:
  - add_note: {text: 'Declared {{ incident.number }}'}
";

async fn the_editor_refuses_bad_yaml_and_saves_versions(app: TestApp) {
    let admin = signed_in(&app, "admin").await;
    let viewer = signed_in(&app, "viewer").await;
    // Everyone sees the list and the navigation entry; only admins the editor.
    let home = viewer.get("/").await;
    assert!(
        home.html.contains("<a href=\"/workflows\""),
        "{}",
        home.html
    );
    let list = viewer.get("/workflows").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.html.contains("href=\"/workflows/new\""));
    assert!(!list.html.contains("href=\"/workflows/secrets\""));
    assert_eq!(
        viewer.get("/workflows/new").await.status,
        StatusCode::FORBIDDEN
    );
    let form = admin.get("/workflows/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.html.contains("id=\"workflow-yaml\" name=\"yaml\""));

    // Refused definitions: the error names the line or the field, what was
    // typed comes back, and nothing is stored.
    let before = app.counts().await;
    let broken = "name: Broken\ntrigger: incident_declared\nsteps:\n  - add_note: {text: 'x'\n";
    let r = admin.post("/workflows", &[("yaml", broken)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(r.html.contains("id=\"form-error\""), "{}", r.html);
    assert!(
        r.html.contains("line "),
        "the YAML error's line: {}",
        r.html
    );
    assert!(
        r.html.contains("add_note: {text: &#39;x&#39;\n</textarea>")
            || r.html
                .contains("add_note: {text: &#x27;x&#x27;\n</textarea>"),
        "{}",
        r.html
    );
    let unknown =
        "name: Odd\ntrigger: incident_declared\nsteps:\n  - add_note: {text: x, colour: red}\n";
    let r = admin.post("/workflows", &[("yaml", unknown)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html.contains("steps[0].add_note") && r.html.contains("(line 4)"),
        "the field and its line: {}",
        r.html
    );
    let secretless = "name: S\ntrigger: incident_declared\nsteps:\n  - http: {url: 'https://example.com/{{ secrets.NOPE }}'}\n";
    let r = admin.post("/workflows", &[("yaml", secretless)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(r.html.contains("NOPE"), "{}", r.html);
    assert_eq!(
        viewer.post("/workflows", &[("yaml", NOTE)]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.post_raw("/workflows", &[("yaml", NOTE)]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.counts().await, before, "nothing saved");

    // Created: version 1.
    let r = admin.post("/workflows", &[("yaml", NOTE)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let id: i64 = r
        .location()
        .trim_start_matches("/workflows/")
        .parse()
        .unwrap();
    assert_eq!(workflow(&app, id).await["version"], 1);
    let dup = admin.post("/workflows", &[("yaml", NOTE)]).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.html);

    // An edit is a new version; a refused edit leaves the versions alone.
    let edited = NOTE.replace("Declared", "Opened");
    let r = admin
        .post(&format!("/workflows/{id}"), &[("yaml", edited.as_str())])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(versions(&app, id).await, 2);
    let r = admin
        .post(&format!("/workflows/{id}"), &[("yaml", broken)])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(versions(&app, id).await, 2);
    assert_eq!(workflow(&app, id).await["source"], edited);
    let page = viewer.get(&format!("/workflows/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Opened"), "viewers read the YAML");
    assert!(
        !page.html.contains("id=\"workflow-form\""),
        "but do not edit it"
    );
    let vs = viewer.get(&format!("/workflows/{id}/versions")).await;
    assert!(vs
        .html
        .contains(&format!("href=\"/workflows/{id}/versions/1\"")));
    assert!(vs
        .html
        .contains(&format!("href=\"/workflows/{id}/versions/2\"")));
    let v1 = viewer.get(&format!("/workflows/{id}/versions/1")).await;
    assert!(v1.html.contains("Declared"), "{}", v1.html);
    assert!(!v1.html.contains("Opened"));
    let export = viewer.get(&format!("/workflows/{id}/export")).await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/yaml"));
    assert!(export.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&format!("workflow-{id}-v2.yaml")));
    assert_eq!(export.html, edited);
    let old = viewer
        .get(&format!("/workflows/{id}/versions/1/export"))
        .await;
    assert_eq!(old.html, NOTE);
    assert_eq!(
        viewer
            .get(&format!("/workflows/{id}/versions/9"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Disabling is a new version with `enabled: false`, and back.
    let path = format!("/workflows/{id}/enabled");
    assert_eq!(
        viewer.post(&path, &[("enabled", "false")]).await.status,
        StatusCode::FORBIDDEN
    );
    let r = admin.post(&path, &[("enabled", "false")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let w = workflow(&app, id).await;
    assert_eq!(
        (w["enabled"].clone(), w["version"].clone()),
        (json!(false), json!(3))
    );
    assert!(w["source"].as_str().unwrap().contains("enabled: false"));
    let list = viewer.get("/workflows").await;
    assert!(list.html.contains("disabled"));
    admin.post(&path, &[("enabled", "true")]).await;
    assert_eq!(workflow(&app, id).await["enabled"], true);

    // Names are escaped everywhere they are shown.
    let evil = format!(
        "name: \"{EVIL}\"\ndescription: \"{EVIL}\"\ntrigger: manual\nsteps:\n  - wait: 1m\n"
    );
    let r = admin.post("/workflows", &[("yaml", evil.as_str())]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let eid = r.location().trim_start_matches("/workflows/").to_string();
    for p in [
        "/workflows".to_string(),
        format!("/workflows/{eid}"),
        format!("/workflows/{eid}/versions"),
        "/workflow-runs".into(),
    ] {
        let page = admin.get(&p).await;
        assert_eq!(page.status, StatusCode::OK, "{p}");
        assert!(!page.html.contains(EVIL), "{p} escapes: {}", page.html);
    }
    assert!(admin
        .get("/workflows")
        .await
        .html
        .contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
}

async fn a_dry_run_shows_the_plan_and_does_nothing(app: TestApp) {
    let fake = Fake::start().await;
    let r = app
        .post(
            "/api/v1/secrets",
            json!({ "name": "HOOK_TOKEN", "value": "s3cr3t-hook-value" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = create(
        &app,
        &format!(
            "name: Ticket and raise
trigger: incident_declared
conditions: incident.severity == \"SEV2\"
steps:
  - id: ticket
    http:
      method: POST
      url: {}/tickets
      headers: {{Authorization: 'Bearer {{{{ secrets.HOOK_TOKEN }}}}'}}
      body: '{{\"title\": \"{{{{ incident.title }}}}\"}}'
  - update_incident: {{severity: SEV1}}
  - add_note: {{text: 'ticket {{{{ steps.ticket.outputs.body.id }}}}'}}
",
            fake.base
        ),
    )
    .await;
    let inc = declare(&app, "Payments slow", "SEV2", &[]).await;
    let viewer = signed_in(&app, "viewer").await;
    let form = viewer.get(&format!("/workflows/{id}/dry-run")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.html.contains("id=\"dry-run-form\""));
    assert!(!form.html.contains("id=\"plan\""));
    let before = app.counts().await;
    let p = viewer
        .get(&format!("/workflows/{id}/dry-run?incident=INC-{inc}"))
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.html);
    assert!(p.html.contains("The conditions hold"), "{}", p.html);
    assert!(
        p.html
            .contains(&format!("calls POST {}/tickets", fake.base)),
        "{}",
        p.html
    );
    assert!(p.html.contains("Bearer [secret HOOK_TOKEN]"), "{}", p.html);
    assert!(!p.html.contains("s3cr3t-hook-value"));
    assert!(
        p.html.contains("changes the incident: severity → SEV1"),
        "{}",
        p.html
    );
    assert!(p.html.contains("Reads the output of ticket"), "{}", p.html);
    assert_eq!(app.counts().await, before, "a dry-run writes nothing");
    assert!(fake.received().is_empty(), "and calls nobody");
    assert!(runs_of(&app, inc).await.is_empty(), "and starts no run");
    let missing = viewer
        .get(&format!("/workflows/{id}/dry-run?incident=INC-999999"))
        .await;
    assert_eq!(missing.status, StatusCode::OK);
    assert!(
        missing.html.contains("id=\"form-error\""),
        "{}",
        missing.html
    );
}

const ASK: &str = "name: Ask the commander
trigger: incident_declared
steps:
  - id: ask
    approval: {role: commander, prompt: 'Restart {{ incident.number }}?', timeout: 15m}
  - add_note: {text: 'approved'}
";

async fn approvals_are_decided_only_by_the_role(app: TestApp) {
    let (engine, _) = engine(&app, &config(true));
    create(&app, ASK).await;
    let commander = signed_in(&app, "responder").await;
    let other = signed_in(&app, "responder").await;
    let viewer = signed_in(&app, "viewer").await;
    let inc = declare(&app, "Needs a restart", "SEV2", &[]).await;
    let r = app
        .patch(
            &format!("/api/v1/incidents/{inc}"),
            json!({ "roles": { "commander": [commander.user_id] } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    engine.tick().await.unwrap();
    let id = runs_of(&app, inc).await[0]["id"].as_i64().unwrap();
    assert_eq!(run(&app, id).await["status"], "awaiting_approval");
    let room = format!("/incidents/INC-{inc}");
    let approve = format!("action=\"/workflow-runs/{id}/approve\"");
    let c = commander.get(&room).await;
    assert!(c.html.contains(&approve), "{}", c.html);
    assert!(c.html.contains(&format!("Restart INC-{inc}?")));
    for (who, web) in [("other", &other), ("viewer", &viewer)] {
        let p = web.get(&room).await;
        assert!(!p.html.contains(&approve), "{who} has no button");
        assert!(
            p.html.contains("the commander: Web responder"),
            "{who} sees who may: {}",
            p.html
        );
        let p = web.get(&format!("/workflow-runs/{id}")).await;
        assert!(
            !p.html.contains(&approve),
            "{who} has no button on the run page"
        );
    }
    let waiting = run(&app, id).await;
    for web in [&other, &viewer] {
        for action in ["approve", "refuse"] {
            let r = web
                .post(
                    &format!("/workflow-runs/{id}/{action}"),
                    &[("back", "room")],
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
        }
    }
    assert_eq!(
        run(&app, id).await,
        waiting,
        "refused decisions change nothing"
    );
    let r = commander
        .post_raw(&format!("/workflow-runs/{id}/approve"), &[("back", "room")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the form token is needed");
    let r = commander
        .post(
            &format!("/workflow-runs/{id}/approve"),
            &[("back", "room"), ("comment", "go")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), format!("/incidents/INC-{inc}#workflows"));
    engine.tick().await.unwrap();
    assert_eq!(run(&app, id).await["status"], "succeeded");
    let p = viewer.get(&format!("/workflow-runs/{id}")).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.html.contains("decided by Web responder"), "{}", p.html);
    assert!(
        p.html.contains("&#34;comment&#34;: &#34;go&#34;")
            || p.html.contains("&quot;comment&quot;: &quot;go&quot;"),
        "{}",
        p.html
    );
    assert!(p.html.contains("succeeded"));

    // Cancelling from the run page; viewers may not.
    let inc2 = declare(&app, "Another", "SEV2", &[]).await;
    engine.tick().await.unwrap();
    let id2 = runs_of(&app, inc2).await[0]["id"].as_i64().unwrap();
    let cancel = format!("/workflow-runs/{id2}/cancel");
    assert!(other
        .get(&format!("/workflow-runs/{id2}"))
        .await
        .html
        .contains(&format!("action=\"{cancel}\"")));
    assert!(!viewer
        .get(&format!("/workflow-runs/{id2}"))
        .await
        .html
        .contains(&format!("action=\"{cancel}\"")));
    assert_eq!(
        viewer.post(&cancel, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let r = other.post(&cancel, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(run(&app, id2).await["status"], "cancelled");
    // The runs list filters by status.
    let l = viewer.get("/workflow-runs?status=cancelled").await;
    assert!(l.html.contains(&format!("href=\"/workflow-runs/{id2}\"")));
    assert!(!l.html.contains(&format!("href=\"/workflow-runs/{id}\"")));
    let l = viewer.get("/workflow-runs?status=succeeded").await;
    assert!(l.html.contains(&format!("href=\"/workflow-runs/{id}\"")));
    assert_eq!(
        viewer.get("/workflow-runs?status=bogus").await.status,
        StatusCode::BAD_REQUEST
    );
}

const MANUAL: &str = "name: Restart a region
trigger:
  manual:
    inputs:
      reason: {type: string, required: true, description: Why}
      region: {type: choice, options: [eu, us], default: eu}
steps:
  - add_note: {text: 'Restarting {{ inputs.region }}: {{ inputs.reason }}'}
";

async fn a_manual_workflow_runs_from_the_room(app: TestApp) {
    let (engine, _) = engine(&app, &config(true));
    let wf = create(&app, MANUAL).await;
    let inc = declare(&app, "Region down", "SEV2", &[]).await;
    let responder = signed_in(&app, "responder").await;
    let viewer = signed_in(&app, "viewer").await;
    let room = format!("/incidents/INC-{inc}");
    let p = responder.get(&room).await;
    assert!(p.html.contains("id=\"workflows\""), "{}", p.html);
    assert!(p.html.contains("Run workflow: Restart a region"));
    assert!(p.html.contains("name=\"input.reason\""));
    assert!(
        p.html.contains("<option value=\"eu\" selected>eu</option>"),
        "{}",
        p.html
    );
    assert!(p.html.contains("No workflow has run for this incident."));
    assert!(!viewer.get(&room).await.html.contains("Run workflow:"));
    let path = format!("/workflows/{wf}/runs");
    let number = format!("INC-{inc}");
    let form = [
        ("incident", number.as_str()),
        ("back", "room"),
        ("input.reason", "<b>stuck</b>"),
        ("input.region", "us"),
    ];
    assert_eq!(
        viewer.post(&path, &form).await.status,
        StatusCode::FORBIDDEN
    );
    let r = responder
        .post(
            &path,
            &[
                ("incident", number.as_str()),
                ("back", "room"),
                ("input.region", "us"),
            ],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a required input: {}",
        r.html
    );
    assert!(r.html.contains("inputs.reason"));
    assert!(runs_of(&app, inc).await.is_empty());
    let r = responder.post(&path, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), format!("{room}#workflows"));
    let runs = runs_of(&app, inc).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["started_by"], responder.user_id);
    engine.tick().await.unwrap();
    let id = runs[0]["id"].as_i64().unwrap();
    assert_eq!(run(&app, id).await["status"], "succeeded");
    let p = viewer.get(&room).await;
    assert!(
        p.html.contains(&format!(
            "href=\"/workflow-runs/{id}\">Restart a region</a>"
        )),
        "{}",
        p.html
    );
    assert!(p.html.contains("run-succeeded"));
    assert!(
        p.html
            .contains("id=\"room-workflow-runs\" data-live-region"),
        "runs follow live"
    );
    let p = viewer.get(&format!("/workflow-runs/{id}")).await;
    assert!(
        p.html.contains(&format!("data-live=\"incident:{inc}\"")),
        "so does the run's page"
    );
    assert!(
        p.html
            .contains("Restarting us: &#60;b&#62;stuck&#60;/b&#62;"),
        "{}",
        p.html
    );
    assert!(!p.html.contains("<b>stuck</b>"));
}

async fn secret_values_never_reach_a_page(app: TestApp) {
    const VALUE: &str = "hunter2-very-secret";
    let fake = Fake::start().await;
    let admin = signed_in(&app, "admin").await;
    let responder = signed_in(&app, "responder").await;
    assert_eq!(
        responder.get("/workflows/secrets").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        responder
            .post("/workflows/secrets", &[("name", "TOKEN"), ("value", VALUE)])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = admin
        .post(
            "/workflows/secrets",
            &[("name", "bad name"), ("value", VALUE)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        !r.html.contains(VALUE),
        "a refused form does not echo the value"
    );
    let r = admin
        .post("/workflows/secrets", &[("name", "TOKEN"), ("value", VALUE)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let r = admin
        .post("/workflows/secrets/TOKEN", &[("value", "replaced-value-2")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let r = admin
        .post("/workflows/secrets", &[("name", "SPARE"), ("value", VALUE)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let list = admin.get("/workflows/secrets").await;
    assert!(list.html.contains("<code>TOKEN</code>"));
    // The step sends the secret and echoes it back; the output is redacted,
    // and a step output with markup is escaped.
    let wf = create(
        &app,
        &format!(
            "name: Echo
trigger: incident_declared
steps:
  - http:
      method: POST
      url: {}/echo
      headers: {{Authorization: 'Bearer {{{{ secrets.TOKEN }}}}'}}
      body: '{EVIL}'
",
            fake.base
        ),
    )
    .await;
    let (engine, _) = engine(&app, &config(true));
    let inc = declare(&app, "Echo", "SEV2", &[]).await;
    engine.tick().await.unwrap();
    let id = runs_of(&app, inc).await[0]["id"].as_i64().unwrap();
    assert_eq!(run(&app, id).await["status"], "succeeded");
    assert!(
        fake.to("/echo")[0].headers["authorization"].contains("replaced-value-2"),
        "the step got the value"
    );
    let run_page = admin.get(&format!("/workflow-runs/{id}")).await;
    assert!(
        run_page.html.contains("[secret TOKEN]"),
        "{}",
        run_page.html
    );
    assert!(
        run_page.html.contains("&#60;script&#62;alert(1)"),
        "{}",
        run_page.html
    );
    for p in [
        "/workflows/secrets".to_string(),
        format!("/workflow-runs/{id}"),
        format!("/workflows/{wf}"),
        format!("/workflows/{wf}/versions/1"),
        format!("/workflows/{wf}/dry-run?incident=INC-{inc}"),
        format!("/incidents/INC-{inc}"),
        "/workflow-runs".into(),
    ] {
        let page = admin.get(&p).await;
        assert_eq!(page.status, StatusCode::OK, "{p}");
        for v in [VALUE, "replaced-value-2"] {
            assert!(!page.html.contains(v), "{p} shows a secret value");
        }
        assert!(!page.html.contains(EVIL), "{p} escapes");
    }
    // A secret a workflow reads is not deleted; another is.
    let r = admin.post("/workflows/secrets/TOKEN/delete", &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    assert!(r.html.contains("Echo"));
    assert!(admin
        .get("/workflows/secrets")
        .await
        .html
        .contains("<code>TOKEN</code>"));
    let r = admin.post("/workflows/secrets/SPARE/delete", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert!(!admin
        .get("/workflows/secrets")
        .await
        .html
        .contains("<code>SPARE</code>"));
}

web_workflow_tests!(
    the_editor_refuses_bad_yaml_and_saves_versions,
    a_dry_run_shows_the_plan_and_does_nothing,
    approvals_are_decided_only_by_the_role,
    a_manual_workflow_runs_from_the_room,
    secret_values_never_reach_a_page,
);
