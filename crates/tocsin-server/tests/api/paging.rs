//! Cursor paging is stable under concurrent inserts; filters and sorts hold.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::TestApp;

/// Pages through `query` with `limit`, returning the items in order.
async fn all_pages(app: &TestApp, query: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let sep = if query.is_empty() { "" } else { "&" };
        let path = match &cursor {
            Some(c) => format!("/api/v1/incidents?{query}{sep}limit={limit}&cursor={c}"),
            None => format!("/api/v1/incidents?{query}{sep}limit={limit}"),
        };
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        let page = r.body["items"].as_array().unwrap().clone();
        assert!(page.len() <= limit);
        items.extend(page);
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
    panic!("paging never ended");
}

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(|i| i["id"].as_i64().unwrap()).collect()
}

async fn paging_is_stable_under_concurrent_inserts(app: TestApp) {
    let levels = ["high", "medium", "low"];
    let mut originals = BTreeSet::new();
    for i in 0..30 {
        let inc = app.declare(json!({ "title": format!("original {i}"), "impact": levels[i % 3], "urgency": levels[(i / 3) % 3] })).await;
        originals.insert(inc["id"].as_i64().unwrap());
        app.clock.advance(chrono::Duration::seconds(1));
    }
    // A writer declares (and updates) incidents for as long as the pages are read.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, base, token, stop) = (
            app.client.clone(),
            app.base.clone(),
            app.admin_token.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = client.post(format!("{base}/api/v1/incidents")).bearer_auth(&token)
                    .json(&json!({ "title": format!("late {n}"), "impact": "high", "urgency": "high" })).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        })
    };
    for (sort, check) in [
        ("newest", "desc"),
        ("oldest", "asc"),
        ("priority", "priority"),
        ("severity", "desc"),
        ("updated", "updated"),
    ] {
        let items = all_pages(&app, &format!("sort={sort}"), 7).await;
        let got = ids(&items);
        let unique: HashSet<i64> = got.iter().copied().collect();
        assert_eq!(
            unique.len(),
            got.len(),
            "sort={sort}: an incident appeared twice across pages"
        );
        for id in &originals {
            assert!(unique.contains(id), "sort={sort}: INC-{id} was skipped");
        }
        match check {
            "desc" => assert!(got.windows(2).all(|w| w[0] > w[1]), "sort={sort}: {got:?}"),
            "asc" => assert!(got.windows(2).all(|w| w[0] < w[1]), "sort={sort}: {got:?}"),
            "priority" => {
                let keys: Vec<(String, i64)> = items
                    .iter()
                    .map(|i| {
                        (
                            i["priority"].as_str().unwrap().to_string(),
                            -i["id"].as_i64().unwrap(),
                        )
                    })
                    .collect();
                assert!(
                    keys.windows(2).all(|w| w[0] < w[1]),
                    "sort=priority: {keys:?}"
                );
            }
            _ => {
                let keys: Vec<(String, i64)> = items
                    .iter()
                    .map(|i| {
                        (
                            i["updated_at"].as_str().unwrap().to_string(),
                            i["id"].as_i64().unwrap(),
                        )
                    })
                    .collect();
                assert!(
                    keys.windows(2).all(|w| w[0] > w[1]),
                    "sort=updated: {keys:?}"
                );
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let late = writer.await.unwrap();
    assert!(late > 0, "the writer ran while pages were read");
}

async fn filters_select_exactly_what_they_name(app: TestApp) {
    let svc = app
        .post("/api/v1/services", json!({ "name": "db" }))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let (rita, _) = app.user_with_role("responder").await;
    let a = app.declare(json!({ "title": "a", "severity": "SEV1", "type": "network", "service_ids": [svc], "labels": ["edge"] })).await;
    app.clock.advance(chrono::Duration::hours(1));
    let b = app.declare(json!({ "title": "b", "severity": "SEV2", "assignee_id": rita, "impact": "high", "urgency": "high" })).await;
    app.clock.advance(chrono::Duration::hours(1));
    let c = app
        .declare(json!({ "title": "c", "severity": "SEV2" }))
        .await;
    let (a, b, c) = (
        a["id"].as_i64().unwrap(),
        b["id"].as_i64().unwrap(),
        c["id"].as_i64().unwrap(),
    );
    app.move_to(c, "acknowledged").await;
    let app = &app;
    let q = |query: String| async move { ids(&all_pages(app, &query, 50).await) };
    assert_eq!(q("severity=SEV2".into()).await, vec![c, b]);
    assert_eq!(
        q("severity=SEV1,SEV2&status=triggered".into()).await,
        vec![b, a]
    );
    assert_eq!(q("status=acknowledged".into()).await, vec![c]);
    assert_eq!(q("priority=P1".into()).await, vec![b]);
    assert_eq!(q("type=network".into()).await, vec![a]);
    assert_eq!(q(format!("service_id={svc}")).await, vec![a]);
    assert_eq!(q(format!("assignee_id={rita}")).await, vec![b]);
    assert_eq!(q("label=edge".into()).await, vec![a]);
    assert_eq!(
        q("created_from=2026-01-01T00:30:00Z&created_to=2026-01-01T01:30:00Z".into()).await,
        vec![b]
    );
    assert_eq!(q("created_from=2026-01-01T01:30:00Z".into()).await, vec![c]);
    for (query, field) in [
        ("sort=random", "sort"),
        ("created_from=yesterday", "created_from"),
        ("priority=P9", "priority"),
        ("type=weather", "type"),
        ("service_id=x", "service_id"),
        ("limit=501", "limit"),
    ] {
        let r = app.get(&format!("/api/v1/incidents?{query}")).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::BAD_REQUEST, field),
            "{query}: {}",
            r.body
        );
    }
}

crate::both_backends!(
    paging_is_stable_under_concurrent_inserts,
    filters_select_exactly_what_they_name
);
