//! Similar incidents over the API: ranking by text and service, how the past
//! incident was resolved, an incident opened by an alert finding its
//! predecessor by the alert's summary, the index catching up with changes made
//! after it was built (new incidents, notes, edits), and refused requests.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::ingest::service_with_key;
use crate::support::TestApp;
use crate::web_support::signed_in;

crate::both_backends!(
    ranks_by_text_and_service,
    catches_up_with_changes,
    alert_opened_incident_finds_its_predecessor,
    refuses_bad_requests,
    room_shows_similar_incidents_escaped,
    declare_form_finds_similar_first
);

async fn declare(app: &TestApp, body: Value) -> i64 {
    app.declare(body).await["id"].as_i64().unwrap()
}

/// Numbers of the results, best first.
fn numbers(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {body}"))
        .iter()
        .map(|r| r["number"].as_str().unwrap().to_string())
        .collect()
}

async fn similar_to(app: &TestApp, id: i64) -> Value {
    let r = app.get(&format!("/api/v1/incidents/{id}/similar")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn ranks_by_text_and_service(app: TestApp) {
    let checkout = app
        .post("/api/v1/services", json!({ "name": "checkout" }))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let search = app
        .post("/api/v1/services", json!({ "name": "search" }))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let pool = declare(
        &app,
        json!({ "title": "Database connection pool exhausted", "service_ids": [checkout],
                "description": "Checkout requests time out waiting for a connection" }),
    )
    .await;
    let r = app
        .patch(
            &format!("/api/v1/incidents/{pool}"),
            json!({ "root_cause": "A deploy halved the pool size",
                    "resolution_summary": "Rolled back and raised the pool to 50" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The same words on another service, and unrelated incidents.
    let pool_search = declare(
        &app,
        json!({ "title": "Database connection pool exhausted", "service_ids": [search] }),
    )
    .await;
    declare(
        &app,
        json!({ "title": "TLS certificate expired on the CDN" }),
    )
    .await;
    declare(&app, json!({ "title": "Disk full on the log host" })).await;

    let new = declare(
        &app,
        json!({ "title": "Connection pool exhausted again", "service_ids": [checkout] }),
    )
    .await;
    let body = similar_to(&app, new).await;
    assert_eq!(body["incident_id"], new);
    // Both pool incidents match; the one sharing the service ranks first; the
    // incident itself and the unrelated ones are not listed.
    assert_eq!(
        numbers(&body),
        vec![format!("INC-{pool}"), format!("INC-{pool_search}")]
    );
    let first = &body["results"][0];
    assert_eq!(first["root_cause"], "A deploy halved the pool size");
    assert_eq!(
        first["resolution_summary"],
        "Rolled back and raised the pool to 50"
    );
    assert_eq!(first["service_ids"], json!([checkout]));
    let (top, second) = (
        first["score"].as_f64().unwrap(),
        body["results"][1]["score"].as_f64().unwrap(),
    );
    assert!(top > second, "{top} vs {second}");

    // Free text, as before declaring: the service ranks its incident first,
    // and without it the shorter description-free document wins on length.
    let r = app
        .get(&format!(
            "/api/v1/similar?q=pool%20exhausted&service_ids={search}&limit=1"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["incident_id"], Value::Null);
    assert_eq!(numbers(&r.body), vec![format!("INC-{pool_search}")]);
    let r = app.get("/api/v1/similar?q=certificate").await;
    assert_eq!(numbers(&r.body).len(), 1);
    assert!(r.body["results"][0]["title"]
        .as_str()
        .unwrap()
        .contains("TLS certificate"));
    // Nothing shares a word: no results rather than noise.
    let r = app.get("/api/v1/similar?q=zebra%20crossing").await;
    assert_eq!(r.body["results"], json!([]));
    // A viewer reads them too.
    let (_, viewer) = app.user_with_role("viewer").await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/incidents/INC-{new}/similar?limit=1"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(numbers(&r.body), vec![format!("INC-{pool}")]);
}

async fn catches_up_with_changes(app: TestApp) {
    let old = declare(&app, json!({ "title": "Payments slow" })).await;
    let other = declare(&app, json!({ "title": "Kafka consumer lag" })).await;
    // Built now, on the first search.
    let r = app.get("/api/v1/similar?q=kafka").await;
    assert_eq!(numbers(&r.body), vec![format!("INC-{other}")]);

    // A note written after the build makes the old incident findable by its words.
    let r = app
        .post(
            &format!("/api/v1/incidents/{old}/notes"),
            json!({ "body": "The zookeeper ensemble lost quorum" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.get("/api/v1/similar?q=zookeeper%20quorum").await;
    assert_eq!(numbers(&r.body), vec![format!("INC-{old}")]);

    // A new incident is found, and is not its own match.
    let new = declare(&app, json!({ "title": "Zookeeper quorum lost" })).await;
    let body = similar_to(&app, new).await;
    assert_eq!(numbers(&body), vec![format!("INC-{old}")]);
    let r = app.get("/api/v1/similar?q=zookeeper").await;
    let mut found = numbers(&r.body);
    found.sort();
    let mut want = vec![format!("INC-{old}"), format!("INC-{new}")];
    want.sort();
    assert_eq!(found, want);

    // A retitled incident no longer matches its old words.
    let r = app
        .patch(
            &format!("/api/v1/incidents/{other}"),
            json!({ "title": "Broker disk pressure" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get("/api/v1/similar?q=kafka").await;
    assert_eq!(r.body["results"], json!([]));
    let r = app.get("/api/v1/similar?q=broker%20pressure").await;
    assert_eq!(numbers(&r.body), vec![format!("INC-{other}")]);
}

async fn alert_opened_incident_finds_its_predecessor(app: TestApp) {
    let (svc, key) = service_with_key(&app, "ledger").await;
    let past = declare(
        &app,
        json!({ "title": "Ledger replica lag", "service_ids": [svc] }),
    )
    .await;
    app.patch(
        &format!("/api/v1/incidents/{past}"),
        json!({ "resolution_summary": "Failed over to the standby replica" }),
    )
    .await;
    declare(&app, json!({ "title": "Unrelated outage of the wiki" })).await;
    let body = json!({ "routing_key": key, "event_action": "trigger", "dedup_key": "lag-1",
        "payload": { "summary": "Replica lag above 60s on ledger-db-2", "source": "ledger-db-2",
                     "severity": "critical" } });
    let r = app
        .call(Method::POST, "/v2/enqueue", None, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let alerts = app.get("/api/v1/alerts").await.body["items"].clone();
    let opened = alerts[0]["incident_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("the alert opened no incident: {alerts}"));
    let body = similar_to(&app, opened).await;
    assert_eq!(numbers(&body), vec![format!("INC-{past}")]);
    assert_eq!(
        body["results"][0]["resolution_summary"],
        "Failed over to the standby replica"
    );
}

async fn refuses_bad_requests(app: TestApp) {
    let id = declare(&app, json!({ "title": "Anything" })).await;
    for (path, status, field) in [
        ("/api/v1/similar".to_string(), 400, "q"),
        ("/api/v1/similar?q=%20%20".to_string(), 400, "q"),
        (format!("/api/v1/similar?q={}", "a".repeat(4001)), 400, "q"),
        (
            "/api/v1/similar?q=x&service_ids=1,checkout".to_string(),
            400,
            "service_ids",
        ),
        ("/api/v1/similar?q=x&limit=0".to_string(), 400, "limit"),
        ("/api/v1/similar?q=x&limit=51".to_string(), 400, "limit"),
        (
            format!("/api/v1/incidents/{id}/similar?limit=ten"),
            400,
            "limit",
        ),
        ("/api/v1/incidents/INC-x/similar".to_string(), 400, "id"),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status.as_u16(), status, "{path}: {}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{path}: {}", r.body);
    }
    let r = app.get("/api/v1/incidents/999999/similar").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .call(Method::GET, "/api/v1/similar?q=x", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn room_shows_similar_incidents_escaped(app: TestApp) {
    let past = declare(
        &app,
        json!({ "title": "Redis <script>alert(1)</script> evictions" }),
    )
    .await;
    app.patch(
        &format!("/api/v1/incidents/{past}"),
        json!({ "root_cause": "maxmemory <b>too low</b>",
                "resolution_summary": "Raised maxmemory to 8 GB" }),
    )
    .await;
    app.clock.advance(chrono::Duration::minutes(90));
    let r = app.move_to(past, "resolved").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let lonely = declare(&app, json!({ "title": "Quasar flux anomaly" })).await;
    let now = declare(&app, json!({ "title": "Redis evictions climbing" })).await;

    let web = signed_in(&app, "viewer").await;
    let page = web.get(&format!("/incidents/INC-{now}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let panel = &page.html[page.html.find("id=\"similar\"").expect("similar panel")..];
    let panel = &panel[..panel.find("</section>").unwrap()];
    assert!(
        panel.contains(&format!("href=\"/incidents/INC-{past}\"")),
        "{panel}"
    );
    assert!(
        panel.contains("Redis &#60;script&#62;alert(1)&#60;/script&#62; evictions"),
        "{panel}"
    );
    assert!(
        panel.contains("maxmemory &#60;b&#62;too low&#60;/b&#62;"),
        "{panel}"
    );
    assert!(panel.contains("Raised maxmemory to 8 GB"), "{panel}");
    assert!(panel.contains("resolved in 1h 30m"), "{panel}");
    assert!(!panel.contains("/postmortems/"), "{panel}");
    assert!(!panel.contains("<script>"), "{panel}");
    assert!(!panel.contains(&format!("INC-{now}\"")), "{panel}");

    // Once a postmortem reviews the past incident, the panel links it.
    let r = app
        .post(&format!("/api/v1/incidents/{past}/postmortem"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pm = r.body["id"].as_i64().unwrap();
    let page = web.get(&format!("/incidents/INC-{now}")).await;
    assert!(page
        .html
        .contains(&format!("<a href=\"/postmortems/{pm}\">postmortem</a>")));
    let r = app.get(&format!("/api/v1/incidents/{now}/similar")).await;
    assert_eq!(r.body["results"][0]["postmortem_id"], pm);

    let page = web.get(&format!("/incidents/INC-{lonely}")).await;
    assert!(page
        .html
        .contains("No past incident shares a distinctive word"));
}

async fn declare_form_finds_similar_first(app: TestApp) {
    let svc = app
        .post("/api/v1/services", json!({ "name": "billing" }))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let past = declare(&app, json!({ "title": "Invoice generation stalled" })).await;
    app.patch(
        &format!("/api/v1/incidents/{past}"),
        json!({ "resolution_summary": "Restarted the invoice worker" }),
    )
    .await;
    let web = signed_in(&app, "responder").await;
    let before = app.counts().await;
    let svc = svc.to_string();
    let page = web
        .post(
            "/incidents/new/similar",
            &[
                ("title", "Invoices <em>stalled</em> again"),
                ("severity", "SEV2"),
                ("service_id", svc.as_str()),
                ("description", "Nothing generated since 02:00"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    // Nothing declared; the form comes back as typed, escaped, paging left unticked.
    assert_eq!(app.counts().await, before);
    assert!(page
        .html
        .contains("value=\"Invoices &#60;em&#62;stalled&#60;/em&#62; again\""));
    assert!(page
        .html
        .contains("Nothing generated since 02:00</textarea>"));
    assert!(!page.html.contains("name=\"page\" value=\"1\" checked"));
    let list = &page.html[page.html.find("id=\"similar\"").expect("similar list")..];
    assert!(
        list.contains(&format!("href=\"/incidents/INC-{past}\"")),
        "{list}"
    );
    assert!(list.contains("Restarted the invoice worker"), "{list}");

    // No words: the form says what is missing.
    let page = web.post("/incidents/new/similar", &[("title", " ")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains("title: say what is wrong first"));
    // A viewer may not declare, so may not use the declare form.
    let viewer = signed_in(&app, "viewer").await;
    let page = viewer
        .post("/incidents/new/similar", &[("title", "Invoices")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}
