//! spawn_app(): the real server on an ephemeral port, over a fresh SQLite file or
//! a fresh PostgreSQL database, with a fake clock and an admin token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tocsin_core::auth::Role;
use tocsin_core::fields::{FieldDef, FieldKind};
use tocsin_core::model::EmailAddress;
use tocsin_core::settings::{IncidentSettings, RoleDef};
use tocsin_core::time::{from_millis, FakeClock};
use tocsin_server::{AppState, Limits};
use tocsin_store::{NewUser, Store, StoreOptions};

/// Which back end a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs `$name(app)` once per back end: `$name::sqlite` and `$name::postgres`
/// (the latter only when TOCSIN_TEST_POSTGRES_URL is set).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::support::spawn_app($crate::support::Db::Sqlite).await.expect("sqlite app");
                super::$name(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::support::spawn_app($crate::support::Db::Postgres).await {
                    Some(app) => super::$name(app).await,
                    None => eprintln!("skipped: TOCSIN_TEST_POSTGRES_URL is not set"),
                }
            }
        }
    )+};
}

/// Settings with something of every kind to validate against.
pub fn test_settings() -> IncidentSettings {
    let mut s = IncidentSettings::default();
    let field = |name: &str, kind, options: &[&str]| FieldDef {
        name: name.into(),
        kind,
        options: options.iter().map(|o| o.to_string()).collect(),
        required: false,
        description: String::new(),
    };
    s.custom_fields = vec![
        field("region", FieldKind::Select, &["eu-west", "us-east"]),
        field("components", FieldKind::MultiSelect, &["db", "api", "cdn"]),
        field("customers_affected", FieldKind::Number, &[]),
        field("deadline", FieldKind::Date, &[]),
        field("approver", FieldKind::User, &[]),
        field("ticket", FieldKind::Text, &[]),
    ];
    s.custom_roles = vec![RoleDef {
        name: "scribe".into(),
        multiple: false,
        description: "Keeps notes".into(),
    }];
    s
}

static SEQ: AtomicU64 = AtomicU64::new(0);

pub fn unique_name(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// Removes the test's database when the test ends, even when it panics.
enum Cleanup {
    Dir(std::path::PathBuf),
    PgDatabase { admin_url: String, name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::PgDatabase { admin_url, name } => {
                let (url, name) = (admin_url.clone(), name.clone());
                // A fresh runtime on its own thread: Drop may run inside the test's runtime.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        let mut c = sqlx::AnyConnection::connect(&url).await.ok()?;
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut c)
                            .await
                            .ok()
                    })
                })
                .join();
            }
        }
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub admin_id: i64,
    pub store: Store,
    pub clock: FakeClock,
    /// The database URL, for a second store (another node, or a restart).
    pub db_url: String,
    _cleanup: Cleanup,
}

/// A response: status and parsed JSON (Null when the body is not JSON).
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    /// The field of an error body.
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }
}

pub async fn spawn_app(db: Db) -> Option<TestApp> {
    spawn_app_with(db, test_settings(), Limits::default()).await
}

pub async fn spawn_app_with(db: Db, settings: IncidentSettings, limits: Limits) -> Option<TestApp> {
    spawn_app_setup(db, settings, limits, |s| s).await
}

/// The same, with the server's state changed by `setup` before it serves.
pub async fn spawn_app_setup(
    db: Db,
    settings: IncidentSettings,
    limits: Limits,
    setup: impl FnOnce(AppState) -> AppState,
) -> Option<TestApp> {
    sqlx::any::install_default_drivers();
    let (url, cleanup) = match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join(unique_name("tocsin-test"));
            std::fs::create_dir_all(&dir).unwrap();
            (
                format!("sqlite://{}?mode=rwc", dir.join("tocsin.db").display()),
                Cleanup::Dir(dir),
            )
        }
        Db::Postgres => {
            let admin_url = std::env::var("TOCSIN_TEST_POSTGRES_URL").ok()?;
            let name = unique_name("tocsin_t");
            let mut c = sqlx::AnyConnection::connect(&admin_url)
                .await
                .expect("connect to TOCSIN_TEST_POSTGRES_URL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .await
                .expect("create test database");
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(admin_url.clone());
            (
                format!("{base}/{name}"),
                Cleanup::PgDatabase { admin_url, name },
            )
        }
    };
    let store = Store::connect(
        &url,
        &StoreOptions {
            max_connections: 5,
            ..Default::default()
        },
    )
    .await
    .expect("connect");
    let clock = FakeClock::new(from_millis(1_767_225_600_000)); // 2026-01-01T00:00:00Z
    store.migrate(1).await.expect("migrate");
    let admin = NewUser {
        name: "Ada Admin".into(),
        email: EmailAddress::parse("email", "ada@example.com").unwrap(),
        role: Role::Admin,
        time_zone: "UTC".into(),
        password_hash: None,
    };
    let (user, token) = store
        .bootstrap(&admin, from_millis(1_767_225_600_000))
        .await
        .expect("bootstrap")
        .expect("first user");
    let mut state = setup(AppState::new(
        store.clone(),
        settings,
        Arc::new(clock.clone()),
        limits,
    ));
    // As if a mail relay were configured: status pages offer email subscriptions,
    // and what they would send waits in the outbox for the tests to read.
    state.status_email = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tocsin_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Some(TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        admin_token: token.secret,
        admin_id: user.id,
        store,
        clock,
        db_url: url,
        _cleanup: cleanup,
    })
}

impl TestApp {
    /// Sends a request; `body` None sends no body, Some(json) sends JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_resp(req.send().await.expect("request")).await
    }

    /// Sends raw bytes with a content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        into_resp(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, Some(&self.admin_token), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(&self.admin_token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(&self.admin_token), Some(body))
            .await
    }

    /// Declares an incident as admin and returns it.
    pub async fn declare(&self, body: Value) -> Value {
        let r = self.post("/api/v1/incidents", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    /// Moves an incident; returns the response.
    pub async fn move_to(&self, id: i64, status: &str) -> Resp {
        self.post(
            &format!("/api/v1/incidents/{id}/status"),
            json!({ "status": status }),
        )
        .await
    }

    /// Creates a user with `role` and a token for them.
    pub async fn user_with_role(&self, role: &str) -> (i64, String) {
        let email = format!("{}@example.com", unique_name(role));
        let u = self
            .post(
                "/api/v1/users",
                json!({ "name": format!("A {role}"), "email": email, "role": role }),
            )
            .await;
        assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
        let id = u.body["id"].as_i64().unwrap();
        let t = self
            .post("/api/v1/tokens", json!({ "name": "test", "user_id": id }))
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
        (id, t.body["secret"].as_str().unwrap().to_string())
    }

    /// Rows per table: compared before and after a refused request.
    pub async fn counts(&self) -> Vec<(String, i64)> {
        self.store.table_counts().await.expect("counts")
    }

    /// The incident's timeline events.
    pub async fn timeline(&self, id: i64) -> Vec<Value> {
        let r = self.get(&format!("/api/v1/incidents/{id}/timeline")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body.as_array().unwrap().clone()
    }
}

async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("body").to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        body,
        headers,
        bytes,
    }
}

/// An RFC 3339 time in a test.
pub fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// A new responder named `name` (email `name.responder@example.com`); their id.
pub async fn user(app: &TestApp, name: &str) -> i64 {
    let email = format!("{}.responder@example.com", name.to_lowercase());
    let r = app
        .post(
            "/api/v1/users",
            serde_json::json!({ "name": name, "email": email, "role": "responder" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}
