//! The web UI's frame: signing in and out, sessions, roles on pages, the form
//! token on every post, the security headers, the dashboard and incident list,
//! declaring from the form, and escaping of what alert sources send.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::support::TestApp;
use crate::web_support::{sign_in, signed_in, web_user, PASSWORD};

async fn signing_in_and_out(app: TestApp) {
    // Not signed in: every page sends the browser to the sign-in form, and back after.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anon
        .get(format!("{}/incidents?q=db", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=%2Fincidents%3Fq%3Ddb");

    let (_, email) = web_user(&app, "responder").await;
    let wrong = sign_in(&app, &email, "not the password")
        .await
        .err()
        .expect("refused");
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.html.contains("Wrong email or password."),
        "{}",
        wrong.html
    );
    let nobody = sign_in(&app, "nobody@example.com", PASSWORD)
        .await
        .err()
        .expect("refused");
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    assert!(nobody.html.contains("Wrong email or password."));

    let web = sign_in(&app, &email, PASSWORD)
        .await
        .ok()
        .expect("signed in");
    let home = web.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.html.contains("Web responder"),
        "the page names who is signed in"
    );

    // The session is stored, not the cookie's secret.
    let secret = web.cookie.split_once('=').unwrap().1.to_string();
    let mut db = sqlx::AnyConnection::connect(&app.db_url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions WHERE token_hash = $1")
        .bind(tocsin_store::hash_secret(&secret))
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let raw: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions WHERE token_hash = $1")
        .bind(&secret)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(raw, 0);

    // Signing out needs the form token too, then the cookie stops working.
    let forged = web.post_raw("/logout", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(web.get("/").await.status, StatusCode::OK);
    let out = web.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    assert_eq!(web.get("/").await.status, StatusCode::SEE_OTHER);

    // A deactivated user's session ends with them.
    let (uid, email2) = web_user(&app, "viewer").await;
    let web2 = sign_in(&app, &email2, PASSWORD).await.ok().unwrap();
    let r = app
        .patch(&format!("/api/v1/users/{uid}"), json!({ "active": false }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(web2.get("/").await.status, StatusCode::SEE_OTHER);
}

async fn sign_in_form_refuses_cross_site_posts(app: TestApp) {
    let (_, email) = web_user(&app, "responder").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // No double-submit cookie: a form posted from another site.
    let r = http
        .post(format!("{}/login", app.base))
        .form(&[
            ("_csrf", "x"),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().starts_with("tocsin_session=")));
    // `next` never leaves the site.
    let r = http
        .get(format!("{}/login?next=https://evil.example/", app.base))
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("name=\"next\" value=\"/\""), "{html}");
}

async fn every_page_carries_the_security_headers(app: TestApp) {
    let web = signed_in(&app, "viewer").await;
    for path in ["/", "/incidents", "/login"] {
        let p = web.get(path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        let csp = p.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(p.headers["x-frame-options"], "DENY");
        assert_eq!(p.headers["cache-control"], "no-store");
        // No inline script or style anywhere: the policy would block it.
        assert!(
            !p.html.contains("<script>")
                && !p.html.contains(" style=")
                && !p.html.contains("<style"),
            "{path}"
        );
    }
    let css = web.get("/assets/app.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(css.headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    // A browser asking for a page that does not exist gets a page; API clients get JSON.
    let missing = web
        .http
        .get(format!("{}/no/such/page", web.base))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(missing
        .text()
        .await
        .unwrap()
        .contains("data-code=\"no_route\""));
    let api = app.get("/api/v1/no-such-thing").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.code(), "no_route");
    let js = web.get("/assets/app.js").await;
    assert!(js.html.contains("EventSource"));
}

async fn a_viewer_sees_no_actions_and_cannot_act(app: TestApp) {
    let viewer = signed_in(&app, "viewer").await;
    let home = viewer.get("/").await;
    assert!(
        !home.html.contains("href=\"/incidents/new\""),
        "no declare button for a viewer"
    );
    assert_eq!(
        viewer.get("/incidents/new").await.status,
        StatusCode::FORBIDDEN
    );
    let before = app.counts().await;
    let r = viewer
        .post(
            "/incidents",
            &[("title", "Should not exist"), ("severity", "SEV2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.html.contains("responder"), "{}", r.html);
    assert_eq!(app.counts().await, before);
}

async fn declaring_from_the_form(app: TestApp) {
    let svc = app
        .post("/api/v1/services", json!({ "name": "checkout" }))
        .await;
    let svc_id = svc.body["id"].as_i64().unwrap().to_string();
    let web = signed_in(&app, "responder").await;
    let form = web.get("/incidents/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.html.contains(">checkout</option>"));

    // Without the form token nothing is declared.
    let before = app.counts().await;
    let forged = web
        .post_raw(
            "/incidents",
            &[
                ("title", "Forged"),
                ("severity", "SEV2"),
                ("service_id", &svc_id),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = web
        .post_raw(
            "/incidents",
            &[
                ("_csrf", "wrong"),
                ("title", "Forged"),
                ("severity", "SEV2"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.counts().await, before);

    // A refused form comes back with what was typed and the field named.
    let bad = web
        .post(
            "/incidents",
            &[("title", "Checkout down"), ("severity", "SEV9")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.html.contains("severity"), "{}", bad.html);
    assert!(bad.html.contains("value=\"Checkout down\""));
    assert_eq!(app.counts().await, before);

    let ok = web
        .post(
            "/incidents",
            &[
                ("title", "Checkout <b>down</b>"),
                ("severity", "SEV2"),
                ("service_id", &svc_id),
                ("description", "Users see **502**"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    let number = ok.location().trim_start_matches("/incidents/").to_string();
    let inc = app.get(&format!("/api/v1/incidents/{number}")).await;
    assert_eq!(inc.body["title"], "Checkout <b>down</b>");
    assert_eq!(inc.body["reporter_id"], web.user_id);
    assert_eq!(
        inc.body["service_ids"],
        json!([svc_id.parse::<i64>().unwrap()])
    );

    // It is listed, escaped, and found by search and by filters.
    let list = web.get("/incidents?q=checkout").await;
    assert!(
        list.html.contains("Checkout &#60;b&#62;down&#60;/b&#62;"),
        "{}",
        list.html
    );
    assert!(!list.html.contains("<b>down</b>"));
    let none = web.get("/incidents?severity=SEV1").await;
    assert!(!none.html.contains(&number) && none.html.contains("No incidents match."));
    let some = web
        .get(&format!(
            "/incidents?severity=SEV2&status=open&service_id={svc_id}&sort=severity&since=24h"
        ))
        .await;
    assert!(some.html.contains(&number));
    let bad = web.get("/incidents?sort=sideways").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("sort"));

    // The dashboard counts it under its severity and status.
    let home = web.get("/").await;
    assert!(
        home.html
            .contains("<span class=\"n\" id=\"open-total\">1</span>"),
        "{}",
        home.html
    );
    assert!(home.html.contains(&number));
}

async fn alert_text_is_shown_as_text(app: TestApp) {
    let svc = app
        .post("/api/v1/services", json!({ "name": "edge" }))
        .await;
    let sid = svc.body["id"].as_i64().unwrap();
    let key = app
        .post(
            &format!("/api/v1/services/{sid}/integration-keys"),
            json!({ "name": "pd" }),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let routing_key = key.body["secret"].as_str().unwrap().to_string();
    let evil = "<img src=x onerror=alert(1)>";
    let r = app
        .client
        .post(format!("{}/v2/enqueue", app.base))
        .json(&json!({ "routing_key": routing_key, "event_action": "trigger",
            "payload": { "summary": evil, "source": "<script>alert(2)</script>", "severity": "critical" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let web = signed_in(&app, "viewer").await;
    for path in ["/", "/incidents"] {
        let p = web.get(path).await;
        assert!(
            p.html.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{path}: {}",
            p.html
        );
        assert!(!p.html.contains(evil), "{path}");
        assert!(!p.html.contains("<script>alert"), "{path}");
    }
}

async fn repeated_wrong_passwords_pause_sign_in(app: TestApp) {
    let (_, email) = web_user(&app, "responder").await;
    for _ in 0..10 {
        let r = sign_in(&app, &email, "guess guess guess")
            .await
            .err()
            .expect("refused");
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password waits now, and says why.
    let r = sign_in(&app, &email.to_uppercase(), PASSWORD)
        .await
        .err()
        .expect("paused");
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.html.contains("Too many wrong passwords"));
    // After the window, it works again (the server's clock is the test's).
    app.clock.advance(chrono::Duration::minutes(16));
    assert!(sign_in(&app, &email, PASSWORD).await.is_ok());
}

async fn the_live_stream_tells_of_changes_and_ends_with_the_session(app: TestApp) {
    let web = signed_in(&app, "viewer").await;
    let mut stream = web
        .http
        .get(format!("{}/live", web.base))
        .header("cookie", &web.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    // The stream starts from the log's newest event once its reader is up; keep
    // making changes until one arrives (bounded: 10 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = String::new();
    let mut declared = Vec::new();
    while !declared
        .iter()
        .any(|id: &i64| seen.contains(&format!("\"incident_id\":{id}")))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no change arrived: {seen}"
        );
        // A token is an admin's business: never told to a viewer's stream.
        let t = app
            .post(
                "/api/v1/tokens",
                json!({ "name": "live", "user_id": app.admin_id }),
            )
            .await;
        assert_eq!(t.status, StatusCode::CREATED);
        let inc = app
            .declare(json!({ "title": "Live one", "severity": "SEV3" }))
            .await;
        declared.push(inc["id"].as_i64().unwrap());
        if let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(std::time::Duration::from_millis(500), stream.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("event: change"), "{seen}");
    assert!(!seen.contains("\"entity\":\"token\""), "{seen}");
    assert!(!seen.contains("Live one"), "heads only, never data: {seen}");
    drop(stream);
    // Signed out, the stream cannot be opened again.
    web.post("/logout", &[]).await;
    let again = web
        .http
        .get(format!("{}/live", web.base))
        .header("cookie", &web.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
}

crate::both_backends!(
    the_live_stream_tells_of_changes_and_ends_with_the_session,
    repeated_wrong_passwords_pause_sign_in,
    signing_in_and_out,
    sign_in_form_refuses_cross_site_posts,
    every_page_carries_the_security_headers,
    a_viewer_sees_no_actions_and_cannot_act,
    declaring_from_the_form,
    alert_text_is_shown_as_text,
);
