//! Runbook pages: admins write runbooks in the UI (markdown and rules, each
//! save a version), and the incident room's Runbooks panel ticks items and
//! runs their steps, with roles enforced and refusals naming the field.

use reqwest::StatusCode;
use serde_json::json;

use super::runbooks::{create_runbook, failover};
use super::{config, declare, engine, service, Fake};
use crate::support::TestApp;
use crate::web_support::signed_in;

async fn admins_write_runbooks_in_the_pages(app: TestApp) {
    service(&app, "payments").await;
    let admin = signed_in(&app, "admin").await;
    let list = admin.get("/runbooks").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.html.contains("No runbooks yet."));
    assert!(list.html.contains("href=\"/runbooks/new\""));
    let new = admin.get("/runbooks/new").await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(new.html.contains("action=\"/runbooks\""));
    assert!(new
        .html
        .contains("<option value=\"payments\">payments</option>"));

    // A refused form keeps what was typed (escaped) and names the field.
    let bad = admin
        .post(
            "/runbooks",
            &[
                ("name", "<b>Failover</b>"),
                (
                    "markdown",
                    "- [ ] a\n```tocsin-step\nhttp: {url: 'ftp://x'}\n```\n",
                ),
                ("services", "payments"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("items[0].step.http.url"), "{}", bad.html);
    assert!(
        bad.html
            .contains("value=\"&#60;b&#62;Failover&#60;/b&#62;\""),
        "{}",
        bad.html
    );
    assert!(bad
        .html
        .contains("<option value=\"payments\" selected>payments</option>"));
    assert!(app
        .get("/api/v1/runbooks")
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());

    let made = admin
        .post(
            "/runbooks",
            &[
                ("name", "Failover"),
                (
                    "markdown",
                    &failover("https://db.example.com").replace('\n', "\r\n"),
                ),
                ("services", "payments"),
                ("severities", "SEV1"),
                ("severities", "SEV2"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let at = made.location().to_string();
    let id: i64 = at.trim_start_matches("/runbooks/").parse().unwrap();
    let api = app.get(&format!("/api/v1/runbooks/{id}")).await.body;
    assert_eq!(api["attach"]["severities"], json!(["SEV1", "SEV2"]));
    assert_eq!(api["steps"], 1);
    let p = admin.get(&at).await;
    assert!(
        p.html
            .contains("Check the primary&#39;s health <span class=\"badge\">runs http</span>")
            || p.html
                .contains("Check the primary&#x27;s health <span class=\"badge\">runs http</span>"),
        "{}",
        p.html
    );
    assert!(p
        .html
        .contains("<option value=\"SEV1\" selected>SEV1</option>"));
    assert!(p.html.contains("version 1"));
    // The textarea holds the markdown without its front matter: the rules are the selects.
    assert!(!p.html.contains("attach:"), "{}", p.html);
    let list = admin.get("/runbooks").await;
    assert!(
        list.html
            .contains("services payments; severities SEV1, SEV2"),
        "{}",
        list.html
    );

    // Saving is a new version; rules left unchosen make it attach by hand only.
    let saved = admin
        .post(
            &at,
            &[("name", "Failover"), ("markdown", "# F\n- [ ] one\n")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let api = app.get(&format!("/api/v1/runbooks/{id}")).await.body;
    assert_eq!(
        (api["version"].clone(), api["attach"]["services"].clone()),
        (json!(2), json!([]))
    );

    // Responders read but neither write nor see the form.
    let responder = signed_in(&app, "responder").await;
    let p = responder.get(&at).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.html.contains("runbook-form"));
    assert!(!responder
        .get("/runbooks")
        .await
        .html
        .contains("/runbooks/new"));
    assert_eq!(
        responder.get("/runbooks/new").await.status,
        StatusCode::FORBIDDEN
    );
    for path in ["/runbooks".to_string(), at.clone(), format!("{at}/delete")] {
        let r = responder
            .post(&path, &[("name", "X"), ("markdown", "- [ ] y")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        app.get(&format!("/api/v1/runbooks/{id}")).await.body["version"],
        2
    );

    let gone = admin.post(&format!("{at}/delete"), &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert!(admin
        .get("/runbooks")
        .await
        .html
        .contains("No runbooks yet."));
}

async fn the_room_panel_ticks_items_and_runs_steps(app: TestApp) {
    let fake = Fake::start().await;
    let (engine, _) = engine(&app, &config(true));
    let id = create_runbook(
        &app,
        json!({ "name": "Failover", "markdown": failover(&fake.base) }),
    )
    .await;
    let inc = declare(&app, "Checkout down", "SEV2", &[]).await;
    let room = format!("/incidents/INC-{inc}");
    let responder = signed_in(&app, "responder").await;
    let p = responder.get(&room).await;
    assert!(p.html.contains("id=\"runbooks\""));
    assert!(p.html.contains("No runbooks on this incident."));
    assert!(p
        .html
        .contains(&format!("<option value=\"{id}\">Failover</option>")));

    let a = responder
        .post(
            &format!("{room}/runbooks"),
            &[("runbook_id", &id.to_string())],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.html);
    assert_eq!(a.location(), format!("{room}#runbooks"));
    let p = responder.get(&room).await;
    assert!(p.html.contains("0 of 2 done"), "{}", p.html);
    assert!(p.html.contains("aria-label=\"Tick: Tell support\""));
    let run_form = format!("action=\"{room}/runbooks/{id}/items/0/run\"");
    assert!(p.html.contains(&run_form));
    assert!(!p
        .html
        .contains(&format!("action=\"{room}/runbooks/{id}/items/1/run\"")));
    assert!(
        !p.html.contains("id=\"runbook-attach\""),
        "nothing left to attach"
    );

    app.clock.advance(chrono::Duration::minutes(3));
    let t = responder
        .post(
            &format!("{room}/runbooks/{id}/items/1"),
            &[("checked", "1")],
        )
        .await;
    assert_eq!(t.status, StatusCode::SEE_OTHER, "{}", t.html);
    let r = responder
        .post(&format!("{room}/runbooks/{id}/items/0/run"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let p = responder.get(&room).await;
    assert!(
        p.html.contains("ticked by Web responder, 2026-01-01 00:03"),
        "{}",
        p.html
    );
    assert!(
        p.html
            .contains("class=\"badge run-pending\">pending</span>"),
        "{}",
        p.html
    );
    assert!(
        p.html.contains("disabled>Run"),
        "a running step cannot be started twice"
    );
    engine.tick().await.unwrap();
    assert_eq!(fake.to("/health").len(), 1);
    let p = responder.get(&room).await;
    assert!(p.html.contains("2 of 2 done"), "{}", p.html);
    assert!(
        p.html
            .contains("class=\"badge run-succeeded\">succeeded</span>"),
        "{}",
        p.html
    );
    assert!(
        p.html
            .contains("HTTP 200: {&#34;id&#34;:42,&#34;ok&#34;:true}"),
        "{}",
        p.html
    );
    // The run is one click away, with its steps, inputs and outputs.
    assert!(
        p.html.contains("<a href=\"/workflow-runs/") && p.html.contains("\">workflow run #"),
        "{}",
        p.html
    );
    // The timeline says it in words.
    assert!(
        p.html.contains("ticked “Tell support” of runbook Failover"),
        "{}",
        p.html
    );
    assert!(
        p.html
            .contains("ran the step of “Check the primary&#39;s health”")
            || p.html
                .contains("ran the step of “Check the primary&#x27;s health”"),
        "{}",
        p.html
    );

    // Viewers see the checklist, change nothing.
    let viewer = signed_in(&app, "viewer").await;
    let v = viewer.get(&room).await;
    assert!(v.html.contains("2 of 2 done"));
    assert!(!v.html.contains(&run_form));
    assert!(!v.html.contains("aria-label=\"Untick"));
    let r = viewer
        .post(
            &format!("{room}/runbooks/{id}/items/1"),
            &[("checked", "0")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A bad form is refused by name; detaching empties the panel.
    let r = responder
        .post(
            &format!("{room}/runbooks/{id}/items/1"),
            &[("checked", "maybe")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("checked"), "{}", r.html);
    let d = responder
        .post(&format!("{room}/runbooks/{id}/detach"), &[])
        .await;
    assert_eq!(d.status, StatusCode::SEE_OTHER);
    let p = responder.get(&room).await;
    assert!(p.html.contains("No runbooks on this incident."));
    assert!(p.html.contains("detached runbook Failover"));
}

crate::workflow_tests!(
    admins_write_runbooks_in_the_pages,
    the_room_panel_ticks_items_and_runs_steps,
);
