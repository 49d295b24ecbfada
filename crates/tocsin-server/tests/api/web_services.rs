//! The service pages: the list and the admin's create form, one service with its
//! escalation policy (chosen by an admin), who is on call, open incidents, and
//! integration keys whose secret and snippets are shown once — roles enforced
//! and the form token required.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;
use crate::web_support::signed_in;

const EVIL: &str = "<img src=x onerror=alert(1)>";

async fn services_are_listed_and_created_by_admins(app: TestApp) {
    let admin = signed_in(&app, "admin").await;
    let viewer = signed_in(&app, "viewer").await;
    let form = admin.get("/services").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.html.contains("id=\"service-form\""));
    // The parser drops a newline right after <textarea>: one is there to drop.
    assert!(form
        .html
        .contains("<textarea id=\"service-description\" name=\"description\">\n"));
    let vp = viewer.get("/services").await;
    assert_eq!(vp.status, StatusCode::OK);
    assert!(!vp.html.contains("id=\"service-form\""));

    let before = app.counts().await;
    let new = [("name", "checkout"), ("description", EVIL)];
    assert_eq!(
        viewer.post("/services", &new).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.post_raw("/services", &new).await.status,
        StatusCode::FORBIDDEN
    );
    let r = admin.post("/services", &[("description", "no name")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.html.contains("name: "), "{}", r.html);
    assert!(
        r.html.contains(">\nno name</textarea>"),
        "what was typed comes back"
    );
    assert_eq!(app.counts().await, before);

    let r = admin.post("/services", &new).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let list = app.get("/api/v1/services").await.body;
    let svc = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "checkout")
        .expect("created")
        .clone();
    let id = svc["id"].as_i64().unwrap();
    assert_eq!(svc["description"], EVIL);
    assert_eq!(r.location(), format!("/services/{id}"));

    let dup = admin.post("/services", &new).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.html);
    assert!(dup.html.contains("name"));

    // Listed, escaped, with its open incidents counted.
    app.declare(json!({ "title": "Checkout down", "severity": "SEV2", "service_ids": [id] }))
        .await;
    let list = viewer.get("/services").await;
    assert!(list
        .html
        .contains(&format!("href=\"/services/{id}\">checkout</a>")));
    assert!(list.html.contains("&#60;img src=x onerror=alert(1)&#62;"));
    assert!(!list.html.contains(EVIL));
    assert!(
        list.html.contains(&format!(
            "href=\"/incidents?service_id={id}&amp;status=open\">1</a>"
        )),
        "{}",
        list.html
    );
    let detail = viewer.get(&format!("/services/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.html.contains("Checkout down"));
    assert!(!detail.html.contains(EVIL));
    assert_eq!(
        viewer.get("/services/424242").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn admins_choose_the_policy_and_see_who_is_on_call(app: TestApp) {
    let svc = app
        .post("/api/v1/services", json!({ "name": "search" }))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let p = app
        .post(
            "/api/v1/escalation-policies",
            json!({ "name": "Search primary", "levels": [{ "targets": [{ "user": app.admin_id }], "delay_minutes": 7 }] }),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let pid = p.body["id"].as_i64().unwrap().to_string();
    let admin = signed_in(&app, "admin").await;
    let responder = signed_in(&app, "responder").await;
    let path = format!("/services/{svc}/escalation-policy");
    let page = responder.get(&format!("/services/{svc}")).await;
    assert!(!page.html.contains("id=\"policy-form\""));

    let before = app.counts().await;
    let form = [("escalation_policy_id", pid.as_str())];
    assert_eq!(
        responder.post(&path, &form).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.post_raw(&path, &form).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.counts().await, before);
    let r = admin
        .post(&path, &[("escalation_policy_id", "999999")])
        .await;
    assert!(r.status.is_client_error());
    assert!(r.html.contains("escalation_policy_id"), "{}", r.html);

    let r = admin.post(&path, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let oc = app
        .get(&format!("/api/v1/services/{svc}/on-call"))
        .await
        .body;
    assert_eq!(
        oc["escalation_policy"]["escalation_policy_id"].to_string(),
        pid
    );
    let page = admin.get(&format!("/services/{svc}")).await;
    assert!(page.html.contains("<strong>Search primary</strong>"));
    assert!(
        page.html.contains("Ada Admin"),
        "who is on call now: {}",
        page.html
    );
    assert!(page.html.contains("next level after 7 min"));
    assert!(page
        .html
        .contains(&format!("<option value=\"{pid}\" selected>")));

    // Cleared again with "none".
    let r = admin.post(&path, &[("escalation_policy_id", "")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let oc = app
        .get(&format!("/api/v1/services/{svc}/on-call"))
        .await
        .body;
    assert!(oc["escalation_policy"].is_null());
}

async fn a_new_key_is_shown_once_with_its_snippets(app: TestApp) {
    let svc = app
        .post("/api/v1/services", json!({ "name": "ingest" }))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let admin = signed_in(&app, "admin").await;
    let viewer = signed_in(&app, "viewer").await;
    let path = format!("/services/{svc}/integration-keys");
    let vp = viewer.get(&format!("/services/{svc}")).await;
    assert!(!vp.html.contains("id=\"key-form\""), "keys are the admin's");

    let before = app.counts().await;
    assert_eq!(
        viewer.post(&path, &[("name", "prom")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.post_raw(&path, &[("name", "prom")]).await.status,
        StatusCode::FORBIDDEN
    );
    let r = admin.post(&path, &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.html.contains("name: "), "{}", r.html);
    assert_eq!(app.counts().await, before);

    let r = admin.post(&path, &[("name", "prom")]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.html);
    let needle = "id=\"new-key-secret\" class=\"mono\" readonly value=\"";
    let at = r.html.find(needle).expect("the secret") + needle.len();
    let secret = r.html[at..].split('"').next().unwrap().to_string();
    assert!(secret.len() >= 16, "{secret}");
    assert!(r
        .html
        .contains(&format!("/integrations/alertmanager/{secret}")));
    assert!(r.html.contains("receivers:"), "Alertmanager YAML");
    assert!(r.html.contains("contactPoints:"), "Grafana YAML");
    assert!(r.html.contains("curl -X POST"));
    // Each snippet keeps its first line: a <pre> drops one leading newline.
    let pres: Vec<&str> = r.html.split("<pre tabindex=\"0\"").skip(1).collect();
    assert_eq!(pres.len(), 5);
    for p in pres {
        assert!(p[p.find('>').unwrap() + 1..].starts_with('\n'), "{p}");
    }
    assert!(r.html.matches(&secret).count() >= 5, "{secret}: {}", r.html);

    let keys = app
        .get(&format!("/api/v1/services/{svc}/integration-keys"))
        .await
        .body;
    let key = keys.as_array().unwrap()[0].clone();
    let prefix = key["prefix"].as_str().unwrap().to_string();
    assert!(secret.starts_with(&prefix));

    // The next look shows the prefix only.
    let again = admin.get(&format!("/services/{svc}")).await;
    assert!(!again.html.contains(&secret), "shown once");
    assert!(!again.html.contains("id=\"new-key\""));
    assert!(again.html.contains(&format!("{prefix}…")));

    // The key works; revoked, it is refused.
    let send = || {
        app.call(
            Method::POST,
            "/v2/enqueue",
            None,
            Some(json!({ "routing_key": secret, "event_action": "trigger",
                "payload": { "summary": "x", "source": "y", "severity": "info" } })),
        )
    };
    assert_eq!(send().await.status, StatusCode::ACCEPTED);
    let kid = key["id"].as_i64().unwrap();
    let revoke = format!("/services/{svc}/integration-keys/{kid}/revoke");
    assert_eq!(
        viewer.post(&revoke, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.post_raw(&revoke, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(app
        .get(&format!("/api/v1/services/{svc}/integration-keys"))
        .await
        .body[0]["revoked_at"]
        .is_null());
    let r = admin.post(&revoke, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(app
        .get(&format!("/api/v1/services/{svc}/integration-keys"))
        .await
        .body[0]["revoked_at"]
        .is_string());
    assert!(send().await.status.is_client_error());
    assert!(admin
        .get(&format!("/services/{svc}"))
        .await
        .html
        .contains("revoked"));
}

crate::both_backends!(
    services_are_listed_and_created_by_admins,
    admins_choose_the_policy_and_see_who_is_on_call,
    a_new_key_is_shown_once_with_its_snippets,
);
