//! The status-page API over HTTP, both back ends: pages, groups, components
//! and their history, logos, subscribers, and the helpers the other files
//! share. Publishing (incidents, maintenances on the fake clock, templates,
//! proposals) is in `status_api/publishing.rs`, bad input in
//! `status_api/input.rs`, the role split in `status_api/roles.rs`.

mod input;
mod publishing;
mod roles;

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{Resp, TestApp};

both_backends!(
    pages_round_trip_and_refuse_taken_slugs_and_domains,
    groups_and_components_round_trip_with_history,
    logo_is_checked_stored_and_served_back,
    webhook_secret_is_shown_once,
    a_page_may_not_take_the_instances_own_host,
    subscribers_are_listed_a_page_at_a_time
);

/// Asserts the status and returns the body.
pub(crate) fn ok(r: Resp, want: StatusCode) -> Value {
    assert_eq!(r.status, want, "{}", r.body);
    r.body
}

pub(crate) fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

pub(crate) fn now(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    tocsin_core::time::Clock::now(&app.clock)
}

pub(crate) async fn page(app: &TestApp, slug: &str) -> i64 {
    id(&ok(
        app.post(
            "/api/v1/status-pages",
            json!({ "slug": slug, "name": format!("{slug} status") }),
        )
        .await,
        StatusCode::CREATED,
    ))
}

pub(crate) async fn component(app: &TestApp, page: i64, name: &str, services: &[i64]) -> i64 {
    id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{page}/components"),
            json!({ "name": name, "service_ids": services }),
        )
        .await,
        StatusCode::CREATED,
    ))
}

pub(crate) async fn service(app: &TestApp, name: &str) -> i64 {
    id(&ok(
        app.post("/api/v1/services", json!({ "name": name })).await,
        StatusCode::CREATED,
    ))
}

pub(crate) async fn status_of(app: &TestApp, component: i64) -> Value {
    app.get(&format!("/api/v1/status-components/{component}"))
        .await
        .body["status"]
        .clone()
}

pub(crate) async fn history(app: &TestApp, component: i64) -> Vec<(String, bool)> {
    ok(
        app.get(&format!("/api/v1/status-components/{component}/history"))
            .await,
        StatusCode::OK,
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|p| {
        (
            p["status"].as_str().unwrap().to_string(),
            p["ended_at"].is_null(),
        )
    })
    .collect()
}

/// A node of the same database whose `public_url` is `https://Tocsin.Example.com:8443/`.
async fn node_at_public_url(app: &TestApp) -> String {
    let store = tocsin_store::Store::connect(&app.db_url, &Default::default())
        .await
        .unwrap();
    let mut state = tocsin_server::AppState::new(
        store,
        crate::support::test_settings(),
        std::sync::Arc::new(app.clock.clone()),
        Default::default(),
    );
    state.public_url = Some("https://Tocsin.Example.com:8443/".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(tocsin_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    base
}

async fn a_page_may_not_take_the_instances_own_host(app: TestApp) {
    let base = node_at_public_url(&app).await;
    let call = |method: Method, path: String, body: Value| {
        let (base, token) = (base.clone(), app.admin_token.clone());
        async move {
            let r = reqwest::Client::new()
                .request(method, format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Its requests would all be the page's: the UI and /api/v1 would be 404 there.
    for domain in ["tocsin.example.com", "Tocsin.EXAMPLE.com."] {
        let (status, body) = call(
            Method::POST,
            "/api/v1/status-pages".into(),
            json!({ "slug": "acme", "name": "Acme", "domain": domain }),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{domain}: {body}");
        assert_eq!(body["error"]["field"], "domain", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("public_url"),
            "{body}"
        );
    }
    let (status, page) = call(
        Method::POST,
        "/api/v1/status-pages".into(),
        json!({ "slug": "acme", "name": "Acme", "domain": "status.example.com" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "another host is fine: {page}");
    let path = format!("/api/v1/status-pages/{}", id(&page));
    let (status, body) = call(
        Method::PATCH,
        path.clone(),
        json!({ "domain": "tocsin.example.com" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["field"], "domain");
    let (_, unchanged) = call(Method::GET, path.clone(), Value::Null).await;
    assert_eq!(unchanged["domain"], "status.example.com");
    let (status, _) = call(Method::PATCH, path, json!({ "domain": null })).await;
    assert_eq!(status, StatusCode::OK, "removing a domain is fine");
}

async fn subscribers_are_listed_a_page_at_a_time(app: TestApp) {
    let p = id(&ok(
        app.post(
            "/api/v1/status-pages",
            json!({ "slug": "many", "name": "Many" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let mut added = Vec::new();
    for n in 0..5 {
        added.push(id(&ok(
            app.post(
                &format!("/api/v1/status-pages/{p}/subscribers"),
                json!({ "kind": "email", "address": format!("r{n}@example.com"), "confirmed": true }),
            )
            .await,
            StatusCode::CREATED,
        )));
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let r = app
            .get(&format!(
                "/api/v1/status-pages/{p}/subscribers?limit=2&cursor={cursor}"
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        pages += 1;
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(id));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, added, "each once, oldest first");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=abc", "cursor"),
    ] {
        let r = app
            .get(&format!("/api/v1/status-pages/{p}/subscribers?{query}"))
            .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::BAD_REQUEST, "invalid_field", field),
            "{query}: {}",
            r.body
        );
    }
}

async fn pages_round_trip_and_refuse_taken_slugs_and_domains(app: TestApp) {
    let created = ok(
        app.post(
            "/api/v1/status-pages",
            json!({ "slug": "acme", "name": "Acme", "domain": "Status.Acme.example.",
                    "support_url": "https://acme.example/help", "time_zone": "Europe/Berlin" }),
        )
        .await,
        StatusCode::CREATED,
    );
    let p = id(&created);
    assert_eq!(created["visibility"], "public", "default");
    assert_eq!(created["allow_subscribers"], true, "default");
    assert_eq!(created["brand_color"], "#1f6feb", "default");
    assert_eq!(
        created["domain"], "status.acme.example",
        "parsed: lowercased, no dot"
    );
    assert_eq!(created["time_zone"], "Europe/Berlin");
    assert_eq!(created["logo"], Value::Null);
    let defaults = ok(
        app.post(
            "/api/v1/status-pages",
            json!({ "slug": "plain", "name": "Plain" }),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(defaults["time_zone"], "UTC");
    assert_eq!(defaults["domain"], Value::Null);

    assert_eq!(
        ok(
            app.get(&format!("/api/v1/status-pages/{p}")).await,
            StatusCode::OK
        ),
        created
    );
    let all = ok(app.get("/api/v1/status-pages").await, StatusCode::OK);
    let slugs: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme", "plain"], "by name");

    // Explicit null removes the domain and support link; absent fields stay.
    let changed = ok(
        app.patch(
            &format!("/api/v1/status-pages/{p}"),
            json!({ "name": "Acme Corp", "domain": null, "support_url": null, "visibility": "internal",
                    "brand_color": "#ABC", "allow_subscribers": false }),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(changed["name"], "Acme Corp");
    assert_eq!(changed["domain"], Value::Null);
    assert_eq!(changed["support_url"], Value::Null);
    assert_eq!(changed["visibility"], "internal");
    assert_eq!(changed["brand_color"], "#aabbcc");
    assert_eq!(changed["allow_subscribers"], false);
    assert_eq!(changed["time_zone"], "Europe/Berlin", "kept");
    assert!(changed["version"].as_i64() > created["version"].as_i64());
    ok(
        app.patch(
            &format!("/api/v1/status-pages/{p}"),
            json!({ "domain": "status.acme.example" }),
        )
        .await,
        StatusCode::OK,
    );

    // Taken slugs and domains: 409 naming the field, nothing written.
    let before = app.counts().await;
    for (method, path, body, field) in [
        (
            Method::POST,
            "/api/v1/status-pages".to_string(),
            json!({ "slug": "acme", "name": "x" }),
            "slug",
        ),
        (
            Method::POST,
            "/api/v1/status-pages".to_string(),
            json!({ "slug": "other", "name": "x", "domain": "STATUS.acme.example" }),
            "domain",
        ),
        (
            Method::PATCH,
            format!("/api/v1/status-pages/{}", id(&defaults)),
            json!({ "slug": "acme" }),
            "slug",
        ),
        (
            Method::PATCH,
            format!("/api/v1/status-pages/{}", id(&defaults)),
            json!({ "domain": "status.acme.example" }),
            "domain",
        ),
    ] {
        let r = app
            .call(method, &path, Some(&app.admin_token), Some(body))
            .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::CONFLICT, "conflict", field),
            "{}",
            r.body
        );
    }
    assert_eq!(app.counts().await, before);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/status-pages/{p}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/status-pages/{p}")).await.status,
        StatusCode::NOT_FOUND
    );
    // The slug is free again.
    page(&app, "acme").await;
}

async fn groups_and_components_round_trip_with_history(app: TestApp) {
    let p = page(&app, "infra").await;
    let other = page(&app, "other").await;
    let svc = service(&app, "checkout").await;
    let g = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/component-groups"),
            json!({ "name": "Europe" }),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(
        (g["page_id"].as_i64(), g["position"].as_i64()),
        (Some(p), Some(1))
    );
    let g = id(&g);
    let g2 = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/component-groups"),
            json!({ "name": "Americas", "description": "US and Canada" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let renamed = ok(
        app.patch(
            &format!("/api/v1/status-component-groups/{g2}"),
            json!({ "name": "America", "position": 0 }),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (renamed["name"].as_str(), renamed["description"].as_str()),
        (Some("America"), Some("US and Canada"))
    );
    let groups = ok(
        app.get(&format!("/api/v1/status-pages/{p}/component-groups"))
            .await,
        StatusCode::OK,
    );
    let order: Vec<i64> = groups.as_array().unwrap().iter().map(id).collect();
    assert_eq!(order, [g2, g], "by position");

    let created = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/components"),
            json!({ "name": "API", "group_id": g, "service_ids": [svc], "status": "degraded_performance",
                    "only_show_if_degraded": true }),
        )
        .await,
        StatusCode::CREATED,
    );
    let c = id(&created);
    assert_eq!(created["status"], "degraded_performance");
    assert_eq!(created["service_ids"], json!([svc]));
    assert_eq!(
        (
            created["show_uptime"].as_bool(),
            created["only_show_if_degraded"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(
        ok(
            app.get(&format!("/api/v1/status-components/{c}")).await,
            StatusCode::OK
        ),
        created
    );
    let listed = ok(
        app.get(&format!("/api/v1/status-pages/{p}/components"))
            .await,
        StatusCode::OK,
    );
    assert_eq!(listed, json!([created]));
    assert_eq!(
        history(&app, c).await,
        [("degraded_performance".to_string(), true)]
    );

    // A group of another page is refused, naming it.
    let foreign = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{other}/component-groups"),
            json!({ "name": "X" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let before = app.counts().await;
    let r = app
        .patch(
            &format!("/api/v1/status-components/{c}"),
            json!({ "group_id": foreign }),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "group_id"),
        "{}",
        r.body
    );
    assert_eq!(app.counts().await, before);

    app.clock.advance(Duration::minutes(5));
    let t1 = now(&app);
    let moved = ok(
        app.patch(
            &format!("/api/v1/status-components/{c}"),
            json!({ "status": "operational", "group_id": null, "service_ids": [] }),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (moved["status"].as_str(), moved["group_id"].as_i64()),
        (Some("operational"), None)
    );
    assert_eq!(moved["service_ids"], json!([]));
    assert_eq!(moved["name"], "API", "kept");
    assert_eq!(
        history(&app, c).await,
        [
            ("degraded_performance".to_string(), false),
            ("operational".to_string(), true)
        ]
    );
    // `since` keeps what lasted into it: only the open period after the change.
    let since = (t1 + Duration::seconds(1)).to_rfc3339();
    let recent = ok(
        app.get(&format!(
            "/api/v1/status-components/{c}/history?since={}",
            since.replace('+', "%2B")
        ))
        .await,
        StatusCode::OK,
    );
    assert_eq!(recent.as_array().unwrap().len(), 1);
    assert_eq!(recent[0]["status"], "operational");

    // Deleting the group keeps its components, ungrouped.
    let c2 = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/components"),
            json!({ "name": "Web", "group_id": g2 }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let del = |path: String| {
        let app = &app;
        async move {
            app.call(
                Method::DELETE,
                &format!("/api/v1/{path}"),
                Some(&app.admin_token),
                None,
            )
            .await
        }
    };
    assert_eq!(
        del(format!("status-component-groups/{g2}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/status-components/{c2}"))
            .await
            .body["group_id"],
        Value::Null
    );
    assert_eq!(
        app.get(&format!("/api/v1/status-component-groups/{g2}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        del(format!("status-components/{c}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/status-components/{c}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/status-components/{c}/history"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// A real (1×1) PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

async fn logo_is_checked_stored_and_served_back(app: TestApp) {
    let p = page(&app, "logo").await;
    let path = format!("/api/v1/status-pages/{p}/logo");
    assert_eq!(
        app.get(&path).await.status,
        StatusCode::NOT_FOUND,
        "no logo yet"
    );
    let admin = Some(app.admin_token.as_str());

    let before = app.counts().await;
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>".to_vec();
    let jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F'];
    let refusals: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "image/svg+xml",
            svg.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "text/html",
            b"<html>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        ("image/png", svg, StatusCode::BAD_REQUEST, "invalid_field"),
        (
            "image/png",
            b"garbage, not an image".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "image/png",
            jpeg.clone(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "image/gif",
            PNG.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "image/png",
            [PNG, &vec![0u8; 256 * 1024]].concat(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (ct, bytes, status, code) in refusals {
        let r = app.raw(Method::PUT, &path, admin, ct, bytes).await;
        assert_eq!((r.status, r.code()), (status, code), "{ct}: {}", r.body);
        assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    }
    let r = app
        .raw(
            Method::PUT,
            &path,
            admin,
            "image/svg+xml",
            b"<svg/>".to_vec(),
        )
        .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not SVG"),
        "{}",
        r.body
    );
    assert_eq!(app.counts().await, before, "refused logos wrote nothing");
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);

    // Just under the limit is fine; then the real PNG replaces it.
    let big = [PNG, &vec![0u8; 256 * 1024 - PNG.len()]].concat();
    ok(
        app.raw(Method::PUT, &path, admin, "image/png", big).await,
        StatusCode::OK,
    );
    let set = ok(
        app.raw(
            Method::PUT,
            &path,
            admin,
            "image/png; charset=binary",
            PNG.to_vec(),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(set["logo"]["content_type"], "image/png");
    let (_, viewer) = app.user_with_role("viewer").await;
    let served = app.call(Method::GET, &path, Some(&viewer), None).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.bytes, PNG, "byte-identical");
    assert_eq!(served.headers["content-type"], "image/png");
    assert_eq!(served.headers["x-content-type-options"], "nosniff");
    ok(
        app.raw(Method::PUT, &path, admin, "image/jpeg", jpeg.clone())
            .await,
        StatusCode::OK,
    );
    let served = app.get(&path).await;
    assert_eq!(
        (
            served.bytes,
            served.headers["content-type"].to_str().unwrap()
        ),
        (jpeg, "image/jpeg")
    );

    let cleared = ok(
        app.call(Method::DELETE, &path, admin, None).await,
        StatusCode::OK,
    );
    assert_eq!(cleared["logo"], Value::Null);
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
}

async fn webhook_secret_is_shown_once(app: TestApp) {
    let p = page(&app, "subs").await;
    let c = component(&app, p, "API", &[]).await;
    let hook = ok(
        app.post(&format!("/api/v1/status-pages/{p}/subscribers"),
            json!({ "kind": "webhook", "address": "https://hooks.example.com/status", "component_ids": [c] })).await,
        StatusCode::CREATED,
    );
    let secret = hook["secret"]
        .as_str()
        .expect("the secret, once")
        .to_string();
    assert!(secret.len() >= 32, "{secret}");
    assert_eq!(
        (hook["kind"].as_str(), hook["confirmed"].as_bool()),
        (Some("webhook"), Some(true))
    );
    assert_eq!(hook["component_ids"], json!([c]));
    let mail = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/subscribers"),
            json!({ "kind": "email", "address": "Reader@Example.COM", "confirmed": true }),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(mail["address"], "Reader@example.com");
    assert_eq!(mail["confirmed"], true);
    assert!(
        mail.get("secret").is_none(),
        "email subscribers have no secret"
    );
    let pending = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/subscribers"),
            json!({ "kind": "email", "address": "new@example.com" }),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(pending["confirmed"], false, "sent a confirmation instead");

    let listed = app
        .get(&format!("/api/v1/status-pages/{p}/subscribers"))
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 3);
    assert!(listed.body["next_cursor"].is_null(), "{}", listed.body);
    let text = String::from_utf8(listed.bytes).unwrap();
    assert!(
        !text.contains(&secret) && !text.contains("secret"),
        "{text}"
    );

    let before = app.counts().await;
    let r = app
        .post(
            &format!("/api/v1/status-pages/{p}/subscribers"),
            json!({ "kind": "webhook", "address": "https://hooks.example.com/status" }),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::CONFLICT, "conflict", "address"),
        "{}",
        r.body
    );
    assert_eq!(app.counts().await, before);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/status-subscribers/{}", id(&hook)),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let left = app
        .get(&format!("/api/v1/status-pages/{p}/subscribers"))
        .await
        .body;
    assert_eq!(
        left["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect::<Vec<_>>(),
        [id(&mail), id(&pending)]
    );
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/status-subscribers/{}", id(&hook)),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
