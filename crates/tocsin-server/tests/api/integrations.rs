//! Integrations: CRUD with configuration snippets, routing rules at the ingest
//! edge, the generic JSON webhook with templates, and the template test API.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::ingest::service_with_key;
use crate::support::{Resp, TestApp};

async fn service(app: &TestApp, name: &str) -> i64 {
    let r = app.post("/api/v1/services", json!({ "name": name })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

fn key_path(svc: i64, key_id: i64) -> String {
    format!("/api/v1/services/{svc}/integration-keys/{key_id}")
}

async fn key_id_of(app: &TestApp, svc: i64) -> i64 {
    app.get(&format!("/api/v1/services/{svc}/integration-keys"))
        .await
        .body[0]["id"]
        .as_i64()
        .unwrap()
}

async fn integration_events(app: &TestApp, key_id: i64) -> Vec<String> {
    let r = app.get("/api/v1/events?limit=1000").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "integration_key" && e["entity_id"] == key_id)
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn alerts_of(app: &TestApp, svc: i64) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/alerts?service_id={svc}&limit=500"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

fn dedup_keys(alerts: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = alerts
        .iter()
        .map(|a| a["dedup_key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

fn yaml(text: &str) -> Value {
    let v: serde_yaml::Value =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"));
    serde_json::to_value(v).unwrap()
}

async fn integration_crud_and_snippets(app: TestApp) {
    let svc = service(&app, "payments").await;
    let created = app
        .post(
            &format!("/api/v1/services/{svc}/integration-keys"),
            json!({ "name": "prometheus" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_string();
    let id = created.body["id"].as_i64().unwrap();
    let base = &app.base;
    let s = &created.body["snippets"];
    assert_eq!(
        s["alertmanager_url"],
        format!("{base}/integrations/alertmanager/{secret}")
    );
    assert_eq!(
        s["grafana_url"],
        format!("{base}/integrations/grafana/{secret}")
    );
    assert_eq!(
        s["webhook_url"],
        format!("{base}/integrations/webhook/{secret}")
    );
    assert_eq!(s["events_v2_url"], format!("{base}/v2/enqueue"));
    let curl = s["curl"].as_str().unwrap();
    assert!(curl.contains(&format!("'{base}/v2/enqueue'")), "{curl}");
    assert!(
        curl.contains(&format!("\"routing_key\":\"{secret}\"")),
        "{curl}"
    );
    let am = yaml(s["alertmanager_yaml"].as_str().unwrap());
    assert_eq!(
        am["receivers"][0]["webhook_configs"][0]["url"],
        format!("{base}/integrations/alertmanager/{secret}")
    );
    assert_eq!(
        am["receivers"][0]["webhook_configs"][0]["send_resolved"],
        true
    );
    let pd = yaml(s["alertmanager_pagerduty_yaml"].as_str().unwrap());
    let pd = &pd["receivers"][0]["pagerduty_configs"][0];
    assert_eq!(pd["routing_key"], secret.as_str());
    assert_eq!(pd["url"], format!("{base}/v2/enqueue"));
    let gf = yaml(s["grafana_yaml"].as_str().unwrap());
    assert_eq!(gf["apiVersion"], 1);
    let webhook = &gf["contactPoints"][0]["receivers"][0];
    assert_eq!(webhook["type"], "webhook");
    assert_eq!(
        webhook["settings"]["url"],
        format!("{base}/integrations/grafana/{secret}")
    );
    let pagerduty = &gf["contactPoints"][1]["receivers"][0];
    assert_eq!(pagerduty["type"], "pagerduty");
    assert_eq!(pagerduty["settings"]["integrationKey"], secret.as_str());
    assert_eq!(pagerduty["settings"]["url"], format!("{base}/v2/enqueue"));
    // The curl snippet's event really is accepted.
    let event: Value =
        serde_json::from_str(curl.rsplit_once("-d '").unwrap().1.trim_end_matches('\'')).unwrap();
    let r = app
        .call(Method::POST, "/v2/enqueue", None, Some(event))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    // Read back: no secret anywhere, snippets with the placeholder.
    let got = app.get(&key_path(svc, id)).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(!got.body.to_string().contains(&secret), "{}", got.body);
    assert!(got.body.get("secret").is_none());
    assert_eq!(got.body["name"], "prometheus");
    assert_eq!(got.body["routing_rules"], json!([]));
    assert_eq!(got.body["templates"], json!({}));
    assert_eq!(
        got.body["snippets"]["alertmanager_url"],
        format!("{base}/integrations/alertmanager/<integration key>")
    );
    let am = yaml(got.body["snippets"]["alertmanager_yaml"].as_str().unwrap());
    assert_eq!(
        am["receivers"][0]["webhook_configs"][0]["url"],
        format!("{base}/integrations/alertmanager/<integration key>")
    );

    // Change name, rules and templates; read back what was stored.
    let other = service(&app, "payments-db").await;
    let r = app
        .patch(
            &key_path(svc, id),
            json!({ "name": "prometheus-prod",
                    "routing_rules": [{ "matchers": ["team=\"db\""], "service_id": other }],
                    "templates": { "title": "{{ payload.what }}", "resolve_condition": "payload.ok" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = app.get(&key_path(svc, id)).await.body;
    assert_eq!(got["name"], "prometheus-prod");
    assert_eq!(
        got["routing_rules"],
        json!([{ "matchers": [{ "name": "team", "op": "=", "value": "db" }], "service_id": other }])
    );
    assert_eq!(
        got["templates"],
        json!({ "title": "{{ payload.what }}", "resolve_condition": "payload.ok" })
    );
    let listed = app
        .get(&format!("/api/v1/services/{svc}/integration-keys"))
        .await
        .body;
    assert_eq!(listed[0]["name"], "prometheus-prod");
    assert_eq!(listed[0]["routing_rules"][0]["service_id"], other);
    // A change that changes nothing writes nothing.
    let before = app.counts().await;
    let r = app
        .patch(&key_path(svc, id), json!({ "name": "prometheus-prod" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.counts().await, before);
    // Templates are replaced as a set; `{}` goes back to the defaults.
    let r = app
        .patch(&key_path(svc, id), json!({ "templates": {} }))
        .await;
    assert_eq!(r.body["templates"], json!({}));
    assert_eq!(r.body["routing_rules"][0]["service_id"], other, "kept");

    // The key belongs to its service only.
    let r = app.get(&key_path(other, id)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app.get(&key_path(svc, 999_999)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    let revoked = app
        .call(
            Method::DELETE,
            &key_path(svc, id),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert!(revoked.body["revoked_at"].is_string());
    assert_eq!(
        integration_events(&app, id).await,
        [
            "integration_key.created",
            "integration_key.updated",
            "integration_key.updated",
            "integration_key.revoked"
        ]
    );
    let ev = app.get("/api/v1/events?limit=1000").await.body;
    let updated = ev
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "integration_key.updated")
        .unwrap();
    let fields: Vec<&str> = updated["data"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "routing_rules", "templates"]);
}

async fn enqueue(app: &TestApp, key: &str, dedup: &str, component: &str, severity: &str) {
    let r = app
        .call(
            Method::POST,
            "/v2/enqueue",
            None,
            Some(json!({ "routing_key": key, "event_action": "trigger", "dedup_key": dedup,
                         "payload": { "summary": dedup, "source": "h", "severity": severity, "component": component } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

async fn routing_rules_route_events_first_match_wins(app: TestApp) {
    let (edge, key) = service_with_key(&app, "edge").await;
    let key_id = key_id_of(&app, edge).await;
    let db = service(&app, "database").await;
    let web = service(&app, "web").await;
    let spare = service(&app, "spare").await;
    let r = app
        .patch(
            &key_path(edge, key_id),
            json!({ "routing_rules": [
                { "matchers": ["component=~\"postgres|mysql\""], "service_id": db },
                { "matchers": [{ "name": "team", "op": "=", "value": "db" }], "service_id": db },
                { "matchers": ["severity=critical"], "service_id": web },
                { "matchers": ["never=\"matches\""], "service_id": spare }
            ] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Events v2: labels from the payload, plus severity.
    enqueue(&app, &key, "pg-critical", "postgres", "critical").await;
    enqueue(&app, &key, "nginx-critical", "nginx", "critical").await;
    enqueue(&app, &key, "nginx-info", "nginx", "info").await;
    // Alertmanager: labels.
    let am = json!({ "version": "4", "status": "firing", "alerts": [
        { "status": "firing", "labels": { "alertname": "Lag", "team": "db", "severity": "critical" }, "fingerprint": "am-db" },
        { "status": "firing", "labels": { "alertname": "Down", "team": "web", "severity": "critical" }, "fingerprint": "am-web" },
        { "status": "firing", "labels": { "alertname": "Slow", "team": "web", "severity": "warning" }, "fingerprint": "am-default" }
    ] });
    let path = format!("/integrations/alertmanager/{key}");
    let r = app.call(Method::POST, &path, None, Some(am.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    assert_eq!(
        dedup_keys(&alerts_of(&app, db).await),
        ["am-db", "pg-critical"],
        "the first matching rule wins over a later one"
    );
    assert_eq!(
        dedup_keys(&alerts_of(&app, web).await),
        ["am-web", "nginx-critical"]
    );
    assert_eq!(
        dedup_keys(&alerts_of(&app, edge).await),
        ["am-default", "nginx-info"],
        "no rule matches: the key's own service"
    );
    // The incidents follow the service the alert went to.
    let pg = alerts_of(&app, db)
        .await
        .into_iter()
        .find(|a| a["dedup_key"] == "pg-critical")
        .unwrap();
    let inc = app
        .get(&format!("/api/v1/incidents/{}", pg["incident_id"]))
        .await
        .body;
    assert_eq!(inc["service_ids"], json!([db]));

    // A resolve without labels finds its alert where the trigger was routed.
    let r = app
        .call(
            Method::POST,
            "/v2/enqueue",
            None,
            Some(json!({ "routing_key": key, "event_action": "resolve", "dedup_key": "pg-critical" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let pg = app.get(&format!("/api/v1/alerts/{}", pg["id"])).await.body;
    assert_eq!(pg["alert"]["status"], "resolved", "{pg}");
    // Alertmanager's resolved alerts carry their labels.
    let mut resolved = am.clone();
    resolved["alerts"][0]["status"] = json!("resolved");
    resolved["alerts"].as_array_mut().unwrap().truncate(1);
    let r = app.call(Method::POST, &path, None, Some(resolved)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let am_db = alerts_of(&app, db)
        .await
        .into_iter()
        .find(|a| a["dedup_key"] == "am-db")
        .unwrap();
    assert_eq!(am_db["status"], "resolved");

    // A service that rules send events to is kept until the rules change.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/services/{spare}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::CONFLICT, "id"),
        "{}",
        r.body
    );

    // New rules apply to the next event at once (the key cache is refreshed).
    let r = app
        .patch(&key_path(edge, key_id), json!({ "routing_rules": [] }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    enqueue(&app, &key, "pg-after", "postgres", "critical").await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/services/{spare}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(dedup_keys(&alerts_of(&app, edge).await).contains(&"pg-after".to_string()));
    assert_eq!(alerts_of(&app, db).await.len(), 2);

    // A rule naming a service that does not exist is refused, naming it.
    let before = app.counts().await;
    let r = app
        .patch(
            &key_path(edge, key_id),
            json!({ "routing_rules": [
                { "matchers": ["a=b"], "service_id": db },
                { "matchers": [], "service_id": 999_999 }
            ] }),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "routing_rules[1].service_id"),
        "{}",
        r.body
    );
    assert_eq!(app.counts().await, before);
    assert_eq!(
        app.get(&key_path(edge, key_id)).await.body["routing_rules"],
        json!([])
    );
}

async fn webhook(app: &TestApp, key: &str, body: Value) -> Resp {
    app.call(
        Method::POST,
        &format!("/integrations/webhook/{key}"),
        None,
        Some(body),
    )
    .await
}

fn check_templates() -> Value {
    json!({
        "title": "{{ payload.check.name }} is down on {{ payload.check.host }}",
        "severity": "{{ {'P1': 'critical', 'P2': 'error'}[payload.priority] or 'warning' }}",
        "dedup_key": "check-{{ payload.check.id }}",
        "description": "{{ payload.check.output }}",
        "source": "{{ payload.check.host }}",
        "links": "{{ [payload.check.url, payload.runbook] | tojson }}",
        "labels": "{{ {'team': payload.team, 'check': payload.check.name} | tojson }}",
        "resolve_condition": "payload.check.state == 'UP'",
        "acknowledge_condition": "{{ payload.check.state == 'SEEN' }}"
    })
}

fn check_payload(state: &str) -> Value {
    json!({ "check": { "id": 17, "name": "API health", "host": "api-1", "state": state,
                       "output": "HTTP 503 after 10 s", "url": "https://checks.example.com/17" },
            "priority": "P1", "team": "payments", "runbook": "https://runbooks.example.com/api" })
}

async fn generic_webhook_maps_with_templates_and_resolves(app: TestApp) {
    let (svc, key) = service_with_key(&app, "checks").await;
    let key_id = key_id_of(&app, svc).await;
    let r = app
        .patch(
            &key_path(svc, key_id),
            json!({ "templates": check_templates() }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let r = webhook(&app, &key, check_payload("DOWN")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["alerts"], 1);
    assert_eq!(r.body["dedup_keys"], json!(["check-17"]));
    let alerts = alerts_of(&app, svc).await;
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["summary"], "API health is down on api-1");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["status"], "triggered");
    assert_eq!(a["source"], "api-1");
    assert_eq!(a["integration"], "webhook");
    assert_eq!(a["details"]["description"], "HTTP 503 after 10 s");
    assert_eq!(
        a["labels"],
        json!({ "team": "payments", "check": "API health" })
    );
    assert_eq!(
        a["links"],
        json!([{ "href": "https://checks.example.com/17" }, { "href": "https://runbooks.example.com/api" }])
    );
    let incident = a["incident_id"].as_i64().expect("an incident is declared");
    let detail = app.get(&format!("/api/v1/alerts/{}", a["id"])).await.body;
    assert!(detail["raw"].as_str().unwrap().contains("HTTP 503"));

    // A repeat counts on the same alert.
    webhook(&app, &key, check_payload("DOWN")).await;
    assert_eq!(alerts_of(&app, svc).await[0]["count"], 2);
    // The acknowledge condition acknowledges it, the resolve condition resolves it.
    let r = webhook(&app, &key, check_payload("SEEN")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(alerts_of(&app, svc).await[0]["status"], "acknowledged");
    let r = webhook(&app, &key, check_payload("UP")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = &alerts_of(&app, svc).await[0];
    assert_eq!(a["status"], "resolved");
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{incident}")).await.body["status"],
        "resolved",
        "the incident resolves with its alert"
    );

    // An array is one event per object, all or nothing.
    let mut other = check_payload("DOWN");
    other["check"]["id"] = json!(18);
    other["priority"] = json!("P3");
    let r = webhook(&app, &key, json!([check_payload("DOWN"), other])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["dedup_keys"], json!(["check-17", "check-18"]));
    let alerts = alerts_of(&app, svc).await;
    let c18 = alerts
        .iter()
        .find(|a| a["dedup_key"] == "check-18")
        .unwrap();
    assert_eq!(c18["severity"], "warning", "the mapping's fallback");

    // Without templates the defaults read the usual fields.
    let (plain, plain_key) = service_with_key(&app, "plain").await;
    let r = webhook(
        &app,
        &plain_key,
        json!({ "title": "Queue backlog", "severity": "warning", "host": "mq-1", "url": "https://mq/1" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["dedup_keys"][0]
        .as_str()
        .unwrap()
        .starts_with("webhook-"));
    let a = &alerts_of(&app, plain).await[0];
    assert_eq!(
        (&a["summary"], &a["severity"], &a["source"]),
        (&json!("Queue backlog"), &json!("warning"), &json!("mq-1"))
    );
    assert_eq!(a["links"][0]["href"], "https://mq/1");
}

async fn generic_webhook_refusals_store_nothing(app: TestApp) {
    let (svc, key) = service_with_key(&app, "strict").await;
    let key_id = key_id_of(&app, svc).await;
    let r = app
        .patch(
            &key_path(svc, key_id),
            json!({ "templates": { "severity": "{{ payload.level }}", "dedup_key": "{{ payload.id }}" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let path = format!("/integrations/webhook/{key}");
    let cases: Vec<(&str, String, Vec<u8>, StatusCode, &str)> = vec![
        (
            "not JSON",
            path.clone(),
            b"{\"id\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            "a number",
            path.clone(),
            b"42".to_vec(),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            "invalid severity",
            path.clone(),
            br#"{"id": "a", "level": "fatal"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "templates.severity",
        ),
        (
            "no dedup key",
            path.clone(),
            br#"{"level": "info"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "templates.dedup_key",
        ),
        (
            "one bad event in an array",
            path.clone(),
            br#"[{"id": "a", "level": "info"}, {"id": "b", "level": "loud"}]"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "templates.severity",
        ),
        (
            "not an object in an array",
            path.clone(),
            br#"[{"id": "a", "level": "info"}, 3]"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "body[1]",
        ),
        (
            "oversize",
            path.clone(),
            vec![b' '; 600 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
        (
            "unknown key",
            "/integrations/webhook/not-a-key".into(),
            br#"{"id": "a", "level": "info"}"#.to_vec(),
            StatusCode::UNAUTHORIZED,
            "key",
        ),
    ];
    for (what, path, body, status, field) in cases {
        let before = app.counts().await;
        let r = app
            .raw(Method::POST, &path, None, "application/json", body)
            .await;
        assert_eq!((r.status, r.field()), (status, field), "{what}: {}", r.body);
        assert_eq!(app.counts().await, before, "{what} stored something");
    }
    let r = webhook(&app, &key, json!({ "id": "a", "level": "INFO" })).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "severity is case-insensitive: {}",
        r.body
    );
}

async fn template_test_api(app: TestApp) {
    let (_, responder) = app.user_with_role("responder").await;
    // Templates run on the server and can ask for much memory: admins only.
    let admin = app.admin_token.clone();
    let path = "/api/v1/integration-templates/test";
    let before = app.counts().await;

    let r = app
        .call(
            Method::POST,
            path,
            Some(&admin),
            Some(json!({ "templates": check_templates(), "payload": check_payload("DOWN") })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["errors"], json!([]));
    let a = &r.body["alert"];
    assert_eq!(a["action"], "trigger");
    assert_eq!(a["title"], "API health is down on api-1");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["dedup_key"], "check-17");
    assert_eq!(a["description"], "HTTP 503 after 10 s");
    assert_eq!(a["links"][1]["href"], "https://runbooks.example.com/api");
    assert_eq!(a["labels"]["team"], "payments");
    let r = app
        .call(
            Method::POST,
            path,
            Some(&admin),
            Some(json!({ "templates": check_templates(), "payload": check_payload("UP") })),
        )
        .await;
    assert_eq!(r.body["alert"]["action"], "resolve");

    // Each failing template is named.
    let mut bad = check_templates();
    bad["title"] = json!("{{ payload.check.name ");
    bad["severity"] = json!("{{ payload.priority }}");
    let r = app
        .call(
            Method::POST,
            path,
            Some(&admin),
            Some(json!({ "templates": bad, "payload": check_payload("DOWN") })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["alert"], Value::Null);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["templates.title", "templates.severity"]);
    assert!(r.body["errors"][1]["message"]
        .as_str()
        .unwrap()
        .contains("`p1`"));

    // A saved integration: its templates and where its rules would send the alert.
    let (svc, _) = service_with_key(&app, "saved").await;
    let key_id = key_id_of(&app, svc).await;
    let team = service(&app, "payments-team").await;
    let r = app
        .patch(
            &key_path(svc, key_id),
            json!({ "templates": check_templates(),
                    "routing_rules": [{ "matchers": ["team=payments"], "service_id": team }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let before_saved = app.counts().await;
    let r = app
        .call(
            Method::POST,
            path,
            Some(&admin),
            Some(json!({ "key_id": key_id, "payload": check_payload("DOWN") })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["alert"]["dedup_key"], "check-17");
    assert_eq!(r.body["alert"]["service_id"], team);

    // Bad requests and roles.
    let cases = [
        (
            Some(&responder),
            json!({ "payload": {} }),
            StatusCode::FORBIDDEN,
            "",
        ),
        (
            Some(&admin),
            json!({ "templates": {} }),
            StatusCode::BAD_REQUEST,
            "payload",
        ),
        (
            Some(&admin),
            json!({ "templates": {}, "payload": [1] }),
            StatusCode::BAD_REQUEST,
            "payload",
        ),
        (
            Some(&admin),
            json!({ "templates": { "titel": "x" }, "payload": {} }),
            StatusCode::BAD_REQUEST,
            "templates.titel",
        ),
        (
            Some(&admin),
            json!({ "templates": {}, "key_id": key_id, "payload": {} }),
            StatusCode::BAD_REQUEST,
            "key_id",
        ),
        (
            Some(&admin),
            json!({ "key_id": 999_999, "payload": {} }),
            StatusCode::NOT_FOUND,
            "",
        ),
    ];
    for (token, body, status, field) in cases {
        let r = app
            .call(
                Method::POST,
                path,
                token.map(|t| t.as_str()),
                Some(body.clone()),
            )
            .await;
        assert_eq!((r.status, r.field()), (status, field), "{body}: {}", r.body);
    }
    assert_eq!(app.counts().await, before_saved, "testing stores nothing");
    assert_ne!(before, before_saved);
}

async fn integration_changes_are_validated_and_admin_only(app: TestApp) {
    let (svc, _) = service_with_key(&app, "guarded").await;
    let key_id = key_id_of(&app, svc).await;
    let (_, responder) = app.user_with_role("responder").await;
    let before = app.counts().await;
    let r = app
        .call(Method::GET, &key_path(svc, key_id), Some(&responder), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::PATCH,
            &key_path(svc, key_id),
            Some(&responder),
            Some(json!({ "name": "mine" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let cases = [
        (json!({ "name": " " }), "name"),
        (json!({ "colour": "red" }), "colour"),
        (
            json!({ "templates": { "title": "{{ payload.x " } }),
            "templates.title",
        ),
        (
            json!({ "templates": { "resolve_condition": "payload.state ==" } }),
            "templates.resolve_condition",
        ),
        (
            json!({ "templates": { "severity": 3 } }),
            "templates.severity",
        ),
        (json!({ "routing_rules": {} }), "routing_rules"),
        (
            json!({ "routing_rules": [{ "matchers": ["team~db"], "service_id": svc }] }),
            "routing_rules[0].matchers[0]",
        ),
        (
            json!({ "routing_rules": [{ "matchers": ["a=~("], "service_id": svc }] }),
            "routing_rules[0].matchers[0]",
        ),
        (
            json!({ "routing_rules": [{ "matchers": [] }] }),
            "routing_rules[0].service_id",
        ),
    ];
    for (body, field) in cases {
        let r = app.patch(&key_path(svc, key_id), body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::BAD_REQUEST, field),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(app.counts().await, before, "refused changes wrote nothing");
    assert_eq!(
        app.get(&key_path(svc, key_id)).await.body["name"],
        "monitoring"
    );
}

crate::both_backends!(
    integration_crud_and_snippets,
    routing_rules_route_events_first_match_wins,
    generic_webhook_maps_with_templates_and_resolves,
    generic_webhook_refusals_store_nothing,
    template_test_api,
    integration_changes_are_validated_and_admin_only,
);
