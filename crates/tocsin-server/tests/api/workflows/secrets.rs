//! Secrets reach the outside service and nowhere else: not the logs, the
//! timeline, run records, API responses, nor any table in clear.

use std::sync::{Arc, Mutex, OnceLock};

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{Column, Row};

use super::{config, create, declare, engine, run, runs_of, Fake};
use crate::support::TestApp;

const VALUE: &str = "tcs-S3cr3t/Value+XYZ 42";

/// Everything any test logs, from the first test that asks.
pub(super) fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        buf
    })
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Every text value of every table, as text.
pub(super) async fn database_text(app: &TestApp) -> String {
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.db_url)
        .await
        .unwrap();
    let mut out = String::new();
    for (table, _) in app.counts().await {
        if table.contains('.') {
            continue;
        }
        // PostgreSQL's search index (tsvector) has no text form here; its
        // text comes from notes and fields, which are checked where they live.
        let Ok(rows) = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&mut c)
            .await
        else {
            assert_eq!(table, "incident_search", "{table} could not be read");
            continue;
        };
        for r in rows {
            for col in r.columns() {
                if let Ok(Some(s)) = r.try_get::<Option<String>, _>(col.ordinal()) {
                    out.push_str(&s);
                    out.push('\n');
                }
            }
        }
    }
    out
}

async fn secrets_stay_secret(app: TestApp) {
    let logs = captured().clone();
    let fake = Fake::start().await;
    let (engine, _) = engine(&app, &config(true));
    let r = app
        .post(
            "/api/v1/secrets",
            json!({ "name": "API_TOKEN", "value": VALUE }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut bodies = vec![r.body.to_string()];
    create(
        &app,
        &format!(
            "name: Uses a secret
trigger: incident_declared
steps:
  - id: call
    http:
      method: POST
      url: '{b}/echo'
      headers: {{Authorization: 'Bearer {{{{ secrets.API_TOKEN }}}}'}}
      body: '{{\"token\": \"{{{{ secrets.API_TOKEN }}}}\"}}'
  - add_note: {{text: 'called with {{{{ secrets.API_TOKEN }}}}: {{{{ steps.call.outputs.body }}}}'}}
  - http:
      url: '{b}/echo-fail'
      headers: {{X-Token: '{{{{ secrets.API_TOKEN }}}}'}}
",
            b = fake.base
        ),
    )
    .await;
    let inc = declare(&app, "Secret use", "SEV2", &[]).await;
    engine.tick().await.unwrap();
    // The outside service got the value.
    let call = &fake.to("/echo")[0];
    assert_eq!(call.headers["authorization"], format!("Bearer {VALUE}"));
    assert!(call.body.contains(VALUE));
    assert_eq!(fake.to("/echo-fail").len(), 1);
    // What Tocsin kept says which secret, never what.
    let id = runs_of(&app, inc).await[0]["id"].as_i64().unwrap();
    let detail = run(&app, id).await;
    assert_eq!(detail["status"], "failed");
    let text = detail.to_string();
    assert!(text.contains("[secret API_TOKEN]"), "{text}");
    assert_eq!(
        detail["steps"][0]["inputs"]["http"]["headers"]["Authorization"],
        "Bearer [secret API_TOKEN]"
    );
    bodies.push(text);
    for path in [
        format!("/api/v1/incidents/{inc}/timeline"),
        format!("/api/v1/incidents/{inc}/workflow-runs"),
        "/api/v1/secrets".to_string(),
        "/api/v1/secrets".to_string(),
        "/api/v1/workflows".to_string(),
        "/api/v1/events?limit=1000".to_string(),
        format!("/api/v1/incidents/{inc}/notes"),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        bodies.push(String::from_utf8_lossy(&r.bytes).to_string());
    }
    let r = app
        .call(
            Method::PUT,
            "/api/v1/secrets/API_TOKEN",
            Some(&app.admin_token),
            Some(json!({ "value": format!("{VALUE}-2") })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    bodies.push(r.body.to_string());
    for b in &bodies {
        assert!(!b.contains(VALUE), "a response shows the secret: {b}");
        assert!(!b.contains("S3cr3t"), "{b}");
    }
    let db = database_text(&app).await;
    assert!(db.contains("[secret API_TOKEN]"), "the records name it");
    assert!(
        !db.contains("S3cr3t"),
        "the database holds the secret in clear"
    );
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(!logged.contains("S3cr3t"), "the logs show the secret");
    // In use: not deleted. Unknown: 404.
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/secrets/API_TOKEN",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "in_use"));
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/secrets/NOPE",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            "/api/v1/secrets",
            json!({ "name": "API_TOKEN", "value": "x" }),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::CONFLICT, "name"));
    let r = app
        .post(
            "/api/v1/secrets",
            json!({ "name": "bad name", "value": "x" }),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "name"));
    let (_, responder) = app.user_with_role("responder").await;
    let r = app
        .call(Method::GET, "/api/v1/secrets", Some(&responder), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn without_a_key_secrets_are_refused(app: TestApp) {
    let other = tocsin_store::Store::connect(&app.db_url, &Default::default())
        .await
        .unwrap();
    let r = other
        .put_secret(
            "K",
            "v",
            true,
            &tocsin_store::Actor::system(),
            tocsin_core::time::Clock::now(&app.clock),
        )
        .await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("TOCSIN_SECRET_KEY"), "{e}");
    other.close().await;
}

crate::workflow_tests!(secrets_stay_secret, without_a_key_secrets_are_refused);
