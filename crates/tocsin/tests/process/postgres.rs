//! `tocsin serve --database postgres://…` and `tocsin migrate` on a fresh database.

use std::process::Command;

use serde_json::json;
use sqlx::Connection;

use crate::server::{Http, Server, TempDir, BIN};

struct Database {
    admin_url: String,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_migrate_on_postgres() {
    let Ok(admin_url) = std::env::var("TOCSIN_TEST_POSTGRES_URL") else {
        eprintln!("skipped: TOCSIN_TEST_POSTGRES_URL is not set");
        return;
    };
    sqlx::any::install_default_drivers();
    let name = format!(
        "tocsin_p_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut c = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let db = Database {
        admin_url: admin_url.clone(),
        name: name.clone(),
    };
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);

    let migrate = || {
        Command::new(BIN)
            .args(["migrate", "--database", &url])
            .output()
            .unwrap()
    };
    let out = migrate();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(first.starts_with("schema at version "), "{first}");
    let again = migrate();
    assert!(again.status.success(), "migrating twice is a no-op");
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), first);

    let dir = TempDir::new("pg");
    let server = Server::start(&dir.0, &["--database", &url]);
    let http = Http::new(&server.url, &server.token.clone().unwrap());
    let (status, inc) = http
        .post(
            "/api/v1/incidents",
            json!({ "title": "on postgres", "severity": "SEV1" }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let (status, back) = http.get(&format!("/api/v1/incidents/{}", inc["id"])).await;
    assert_eq!((status, &back), (200, &inc));
    let (_, ready) = http.get("/readyz").await;
    assert_eq!(ready["status"], "ok");
    assert!(server.terminate().success());
    assert!(
        std::fs::read_dir(&dir.0).unwrap().next().is_none(),
        "nothing is written to the data directory on PostgreSQL"
    );
    drop(db);
}
