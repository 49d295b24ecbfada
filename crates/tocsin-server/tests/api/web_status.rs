//! The status pages' admin UI, both back ends: every page per role, every
//! form refused without its token, with a forged one and for a role too low
//! (nothing changes), escaping of hostile names and messages everywhere. What
//! the forms change, as the API then shows it, is in `web_status/config.rs`
//! (pages, components, groups, templates, subscribers, logo),
//! `web_status/publishing.rs` (incidents, updates, maintenances in a page's
//! zone) and `web_status/room.rs` (the incident room's panel).

mod config;
mod publishing;
mod room;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::TestApp;
use crate::web_support::{signed_in, Page, Web};

both_backends!(
    every_page_answers_each_role,
    every_form_is_refused_without_token_or_role,
    hostile_text_is_escaped_on_every_page
);

pub(crate) const SCRIPT: &str = "<script>alert(1)</script>";
pub(crate) const IMG: &str = "\"><img src=x onerror=alert(1)>";

pub(crate) fn ok(r: crate::support::Resp, want: StatusCode) -> Value {
    assert_eq!(r.status, want, "{}", r.body);
    r.body
}

pub(crate) fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// A page made through the API.
pub(crate) async fn api_page(app: &TestApp, slug: &str, extra: Value) -> i64 {
    let mut body = json!({ "slug": slug, "name": format!("{slug} status") });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    id(&ok(
        app.post("/api/v1/status-pages", body).await,
        StatusCode::CREATED,
    ))
}

/// A component made through the API.
pub(crate) async fn api_component(app: &TestApp, page: i64, body: Value) -> i64 {
    id(&ok(
        app.post(&format!("/api/v1/status-pages/{page}/components"), body)
            .await,
        StatusCode::CREATED,
    ))
}

/// The API's view of something.
pub(crate) async fn api(app: &TestApp, path: &str) -> Value {
    ok(app.get(path).await, StatusCode::OK)
}

/// Asserts a page was refused as a form without a valid token.
pub(crate) fn csrf_refused(p: &Page, what: &str) {
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{what}: {}", p.html);
    assert!(p.html.contains("csrf"), "{what}: {}", p.html);
}

/// Posts `form` to `path` with a forged token.
pub(crate) async fn post_forged(web: &Web, path: &str, form: &[(&str, &str)]) -> Page {
    let mut all = vec![("_csrf", "forged-token-0000000000000000000000")];
    all.extend_from_slice(form);
    web.post_raw(path, &all).await
}

/// A page with something of every kind on it, named by hostile text:
/// (page, group, component, template, subscriber, incident post, maintenance post).
pub(crate) struct Fixture {
    pub page: i64,
    pub group: i64,
    pub component: i64,
    pub template: i64,
    pub subscriber: i64,
    pub post: i64,
    pub update: i64,
    pub maintenance: i64,
}

pub(crate) async fn fixture(app: &TestApp) -> Fixture {
    let page = api_page(
        app,
        "hostile",
        json!({ "name": format!("Acme {SCRIPT}"), "description": IMG }),
    )
    .await;
    let group = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{page}/component-groups"),
            json!({ "name": format!("Group {IMG}"), "description": SCRIPT }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let component = api_component(
        app,
        page,
        json!({ "name": format!("API {SCRIPT}"), "description": IMG, "group_id": group }),
    )
    .await;
    let template = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{page}/templates"),
            json!({ "name": format!("T {IMG}"), "title": format!("Title {SCRIPT}"),
                    "body": format!("Body {SCRIPT}"), "status": "identified" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let subscriber = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{page}/subscribers"),
            json!({ "kind": "email", "address": "reader@example.com", "confirmed": true }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let post = ok(
        app.post(
            &format!("/api/v1/status-pages/{page}/incidents"),
            json!({ "name": format!("Down {IMG}"), "body": format!("We see {SCRIPT} and {IMG}"),
                    "components": [{ "component_id": component, "status": "major_outage" }] }),
        )
        .await,
        StatusCode::CREATED,
    );
    let now = tocsin_core::time::Clock::now(&app.clock);
    let maintenance = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{page}/maintenances"),
            json!({ "name": format!("Upgrade {SCRIPT}"), "body": IMG,
                    "scheduled_for": now + chrono::Duration::days(2),
                    "scheduled_until": now + chrono::Duration::days(2) + chrono::Duration::hours(1),
                    "components": [component] }),
        )
        .await,
        StatusCode::CREATED,
    ));
    Fixture {
        page,
        group,
        component,
        template,
        subscriber,
        update: post["updates"][0]["id"].as_i64().unwrap(),
        post: id(&post),
        maintenance,
    }
}

/// Every GET page of the admin UI: (path, lowest role that may see it).
fn pages_of(f: &Fixture) -> Vec<(String, &'static str)> {
    let p = f.page;
    vec![
        ("/status-pages".into(), "viewer"),
        (format!("/status-pages/{p}"), "viewer"),
        (format!("/status-pages/{p}/posts"), "viewer"),
        (format!("/status-pages/{p}/incidents/new"), "responder"),
        (
            format!("/status-pages/{p}/incidents/new?template={}", f.template),
            "responder",
        ),
        (format!("/status-pages/{p}/maintenances/new"), "responder"),
        (format!("/status-posts/{}", f.post), "viewer"),
        (format!("/status-posts/{}", f.maintenance), "viewer"),
    ]
}

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 0,
        "responder" => 1,
        _ => 2,
    }
}

async fn every_page_answers_each_role(app: TestApp) {
    let f = fixture(&app).await;
    for role in ["viewer", "responder", "admin"] {
        let web = signed_in(&app, role).await;
        for (path, needs) in pages_of(&f) {
            let p = web.get(&path).await;
            if rank(role) >= rank(needs) {
                assert_eq!(p.status, StatusCode::OK, "{role} {path}: {}", p.html);
                assert!(p
                    .html
                    .contains("href=\"/status-pages\" aria-current=\"page\""));
            } else {
                assert_eq!(p.status, StatusCode::FORBIDDEN, "{role} {path}");
                assert!(p.html.contains("needs the responder role"), "{}", p.html);
            }
        }
        // Forms are drawn for the roles that may send them.
        let page = web.get(&format!("/status-pages/{}", f.page)).await.html;
        let quick = format!("/status-pages/{}/components/{}/status", f.page, f.component);
        assert_eq!(page.contains(&quick), role != "viewer", "{role}");
        assert_eq!(page.contains("id=\"settings-form\""), role == "admin");
        assert_eq!(page.contains("id=\"cnew-form\""), role == "admin");
        assert_eq!(page.contains("id=\"logo-form\""), role == "admin");
        // Subscribers' addresses are the admins' to see.
        assert_eq!(
            page.contains("reader@example.com"),
            role == "admin",
            "{role}"
        );
        assert_eq!(page.contains("id=\"subscriber-form\""), role == "admin");
        let post = web.get(&format!("/status-posts/{}", f.post)).await.html;
        assert_eq!(post.contains("id=\"update-form\""), role != "viewer");
        assert_eq!(post.contains("id=\"edit-form\""), role != "viewer");
        assert_eq!(post.contains("Delete post"), role == "admin");
        let list = web.get("/status-pages").await.html;
        assert_eq!(list.contains("id=\"statuspage-form\""), role == "admin");
        assert!(list.contains("href=\"/status/hostile\""), "the public page");
    }
    // A page or post that does not exist is the error page.
    let web = signed_in(&app, "viewer").await;
    for path in [
        "/status-pages/424242",
        "/status-posts/424242",
        "/status-pages/x",
    ] {
        assert!(web.get(path).await.status.is_client_error(), "{path}");
    }
    // Not signed in: off to the sign-in page.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anon
        .get(format!("{}/status-pages", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// Every form: (path, form, lowest role that may send it).
fn forms_of(
    f: &Fixture,
    incident: &str,
) -> Vec<(String, Vec<(&'static str, String)>, &'static str)> {
    let p = f.page;
    let c = f.component;
    let s = |v: &str| v.to_string();
    vec![
        (
            s("/status-pages"),
            vec![("slug", s("new-page")), ("name", s("New"))],
            "admin",
        ),
        (
            format!("/status-pages/{p}/settings"),
            vec![("name", s("Renamed"))],
            "admin",
        ),
        (format!("/status-pages/{p}/delete"), vec![], "admin"),
        (format!("/status-pages/{p}/logo/delete"), vec![], "admin"),
        (
            format!("/status-pages/{p}/groups"),
            vec![("name", s("G2"))],
            "admin",
        ),
        (
            format!("/status-pages/{p}/groups/{}", f.group),
            vec![("name", s("G3"))],
            "admin",
        ),
        (
            format!("/status-pages/{p}/groups/{}/delete", f.group),
            vec![],
            "admin",
        ),
        (
            format!("/status-pages/{p}/components"),
            vec![("name", s("DB"))],
            "admin",
        ),
        (
            format!("/status-pages/{p}/components/{c}"),
            vec![("name", s("DB2"))],
            "admin",
        ),
        (
            format!("/status-pages/{p}/components/{c}/status"),
            vec![("status", s("partial_outage"))],
            "responder",
        ),
        (
            format!("/status-pages/{p}/components/{c}/delete"),
            vec![],
            "admin",
        ),
        (
            format!("/status-pages/{p}/templates"),
            vec![("name", s("T2")), ("title", s("x"))],
            "admin",
        ),
        (
            format!("/status-pages/{p}/templates/{}", f.template),
            vec![("name", s("T3"))],
            "admin",
        ),
        (
            format!("/status-pages/{p}/templates/{}/delete", f.template),
            vec![],
            "admin",
        ),
        (
            format!("/status-pages/{p}/subscribers"),
            vec![("kind", s("email")), ("address", s("x@example.com"))],
            "admin",
        ),
        (
            format!("/status-pages/{p}/subscribers/{}/delete", f.subscriber),
            vec![],
            "admin",
        ),
        (
            format!("/status-pages/{p}/incidents"),
            vec![("name", s("Down")), ("body", s("b")), ("notify", s("1"))],
            "responder",
        ),
        (
            format!("/status-pages/{p}/maintenances"),
            vec![
                ("name", s("M")),
                ("body", s("b")),
                ("scheduled_for", s("2026-02-01T10:00")),
                ("scheduled_until", s("2026-02-01T12:00")),
            ],
            "responder",
        ),
        (
            format!("/status-posts/{}", f.post),
            vec![("name", s("Renamed"))],
            "responder",
        ),
        (
            format!("/status-posts/{}/updates", f.post),
            vec![("status", s("resolved")), ("body", s("Fixed"))],
            "responder",
        ),
        (
            format!("/status-posts/{}/updates/{}", f.post, f.update),
            vec![("body", s("Corrected"))],
            "responder",
        ),
        (format!("/status-posts/{}/delete", f.post), vec![], "admin"),
        (
            format!("/incidents/{incident}/status-posts"),
            vec![
                ("page_id", p.to_string()),
                ("name", s("N")),
                ("body", s("b")),
            ],
            "responder",
        ),
        (
            format!("/incidents/{incident}/status-posts/{}/updates", f.post),
            vec![("status", s("resolved")), ("body", s("b"))],
            "responder",
        ),
    ]
}

/// A `multipart/form-data` logo upload as a browser sends it.
pub(crate) async fn upload_logo(
    web: &Web,
    page: i64,
    token: &str,
    content_type: &str,
    bytes: &[u8],
) -> Page {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--XbOuNdArY\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{token}\r\n\
             --XbOuNdArY\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"logo.bin\"\r\n\
             Content-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(b"\r\n--XbOuNdArY--\r\n");
    let r = web
        .http
        .post(format!("{}/status-pages/{page}/logo", web.base))
        .header("cookie", &web.cookie)
        .header("content-type", "multipart/form-data; boundary=XbOuNdArY")
        .body(body)
        .send()
        .await
        .unwrap();
    Page {
        status: r.status(),
        headers: r.headers().clone(),
        html: r.text().await.unwrap(),
    }
}

pub(crate) const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

async fn every_form_is_refused_without_token_or_role(app: TestApp) {
    let f = fixture(&app).await;
    let inc = app
        .declare(json!({ "title": "Internal", "severity": "SEV2" }))
        .await;
    let number = inc["number"].as_str().unwrap().to_string();
    ok(
        app.patch(
            &format!("/api/v1/status-posts/{}", f.post),
            json!({ "incident_id": id(&inc) }),
        )
        .await,
        StatusCode::OK,
    );
    let viewer = signed_in(&app, "viewer").await;
    let responder = signed_in(&app, "responder").await;
    let admin = signed_in(&app, "admin").await;
    let before = app.counts().await;
    let page_before = api(&app, &format!("/api/v1/status-pages/{}", f.page)).await;
    let post_before = api(&app, &format!("/api/v1/status-posts/{}", f.post)).await;
    for (path, form, needs) in forms_of(&f, &number) {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Without a token, and with a forged one, even for an admin.
        csrf_refused(&admin.post_raw(&path, &form).await, &path);
        csrf_refused(&post_forged(&admin, &path, &form).await, &path);
        // A role too low, with a good token.
        let low = if needs == "admin" {
            &responder
        } else {
            &viewer
        };
        let r = low.post(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.html);
        assert!(
            r.html.contains(&format!("needs the {needs} role")),
            "{path}"
        );
        if needs == "admin" {
            let r = viewer.post(&path, &form).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        }
    }
    // The logo form is multipart: its token is a part of the body.
    csrf_refused(
        &upload_logo(&admin, f.page, "", "image/png", PNG).await,
        "logo",
    );
    csrf_refused(
        &upload_logo(
            &admin,
            f.page,
            "forged-token-000000000000",
            "image/png",
            PNG,
        )
        .await,
        "logo",
    );
    let r = upload_logo(&responder, f.page, &responder.csrf, "image/png", PNG).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A urlencoded post to the logo route has no multipart token either.
    csrf_refused(
        &admin
            .post(&format!("/status-pages/{}/logo", f.page), &[])
            .await,
        "logo urlencoded",
    );
    assert_eq!(app.counts().await, before, "nothing was written");
    assert_eq!(
        api(&app, &format!("/api/v1/status-pages/{}", f.page)).await,
        page_before
    );
    assert_eq!(
        api(&app, &format!("/api/v1/status-posts/{}", f.post)).await,
        post_before
    );
}

async fn hostile_text_is_escaped_on_every_page(app: TestApp) {
    let f = fixture(&app).await;
    let svc = id(&ok(
        app.post("/api/v1/services", json!({ "name": format!("svc {IMG}") }))
            .await,
        StatusCode::CREATED,
    ));
    ok(
        app.patch(
            &format!("/api/v1/status-components/{}", f.component),
            json!({ "service_ids": [svc] }),
        )
        .await,
        StatusCode::OK,
    );
    let inc = app
        .declare(
            json!({ "title": format!("Inc {SCRIPT}"), "severity": "SEV1", "service_ids": [svc] }),
        )
        .await;
    ok(
        app.patch(
            &format!("/api/v1/status-posts/{}", f.post),
            json!({ "incident_id": id(&inc) }),
        )
        .await,
        StatusCode::OK,
    );
    let admin = signed_in(&app, "admin").await;
    let mut paths: Vec<String> = pages_of(&f).into_iter().map(|(p, _)| p).collect();
    paths.push(format!("/incidents/{}", inc["number"].as_str().unwrap()));
    paths.push(format!(
        "/status-pages/{}/maintenances/new?template={}",
        f.page, f.template
    ));
    for path in paths {
        let p = admin.get(&path).await;
        // The maintenance form refuses an incident template by name.
        if path.contains("maintenances/new?template") {
            assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.html);
            assert!(p.html.contains("template_id"), "{}", p.html);
            continue;
        }
        assert_eq!(p.status, StatusCode::OK, "{path}: {}", p.html);
        for raw in [SCRIPT, IMG, "<script>", "<img src=x"] {
            assert!(!p.html.contains(raw), "{path} shows {raw} raw");
        }
        assert!(
            p.html.contains("&#60;script&#62;") || p.html.contains("&#60;img"),
            "{path} shows the hostile text escaped: {}",
            p.html
        );
    }
    // Each place hostile text goes shows it as text.
    let page = admin.get(&format!("/status-pages/{}", f.page)).await.html;
    assert!(page.contains("<h1>Acme &#60;script&#62;alert(1)&#60;/script&#62;</h1>"));
    assert!(page.contains("<strong>API &#60;script&#62;alert(1)&#60;/script&#62;</strong>"));
    assert!(page.contains("Group &#34;&#62;&#60;img src=x onerror=alert(1)&#62;"));
    let post = admin.get(&format!("/status-posts/{}", f.post)).await.html;
    assert!(
        post.contains("We see &lt;script&gt;alert(1)&lt;/script&gt;"),
        "Markdown shows raw HTML as text: {post}"
    );
}
