//! The people and profile pages: each role sees them, only admins add users and
//! teams or change roles, a user made through the form can sign in, a password
//! change ends the old password and other sessions, contact methods are added,
//! verified and deleted, rules saved as the API shows them, tokens shown once
//! and revocable, nobody reaches another user's methods, every post needs its
//! form token, and hostile names are escaped.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{Connection, Row};

use crate::support::TestApp;
use crate::web_support::{sign_in, signed_in, web_user, PASSWORD};

const EVIL: &str = "<img src=x onerror=alert(1)>";

async fn pages_render_for_every_role(app: TestApp) {
    let t = app
        .post("/api/v1/teams", json!({ "name": "Platform" }))
        .await;
    let team = t.body["id"].as_i64().unwrap();
    for role in ["viewer", "responder", "admin"] {
        let web = signed_in(&app, role).await;
        for path in [
            "/people".to_string(),
            format!("/people/users/{}", web.user_id),
            format!("/people/teams/{team}"),
            "/profile".to_string(),
        ] {
            let p = web.get(&path).await;
            assert_eq!(p.status, StatusCode::OK, "{role} {path}: {}", p.html);
            assert!(!p.html.contains(" style="), "{path}");
        }
        let people = web.get("/people").await;
        assert_eq!(
            people.html.contains("action=\"/people/users\""),
            role == "admin",
            "only admins get the add-user form ({role})"
        );
        let me = web.get(&format!("/people/users/{}", web.user_id)).await;
        assert_eq!(me.html.contains("id=\"role-form\""), role == "admin");
        let profile = web.get("/profile").await;
        assert!(profile.html.contains("action=\"/profile/contact-methods\""));
    }
}

async fn an_admin_adds_a_user_who_can_sign_in(app: TestApp) {
    let admin = signed_in(&app, "admin").await;
    // A refused form names the field and writes nothing.
    let before = app.counts().await;
    let bad = admin
        .post(
            "/people/users",
            &[
                ("name", "Ana"),
                ("email", "ana@example.com"),
                ("role", "responder"),
                ("time_zone", "Mars/Olympus"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
    assert!(bad.html.contains("time_zone"), "{}", bad.html);
    assert!(bad.html.contains("value=\"ana@example.com\""));
    assert_eq!(app.counts().await, before);

    let ok = admin
        .post(
            "/people/users",
            &[
                ("name", "Ana"),
                ("email", "ana@example.com"),
                ("role", "responder"),
                ("time_zone", "Europe/Berlin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    let id: i64 = ok.location().rsplit('/').next().unwrap().parse().unwrap();
    let u = app.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(u.body["role"], "responder");
    assert_eq!(u.body["time_zone"], "Europe/Berlin");
    let ana = sign_in(&app, "ana@example.com", PASSWORD)
        .await
        .ok()
        .expect("signs in");
    assert_eq!(ana.get("/").await.status, StatusCode::OK);

    // Role change, then deactivation ends her session.
    let r = admin
        .post(&format!("/people/users/{id}"), &[("role", "viewer")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(
        app.get(&format!("/api/v1/users/{id}")).await.body["role"],
        "viewer"
    );
    let r = admin
        .post(&format!("/people/users/{id}"), &[("active", "0")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(
        app.get(&format!("/api/v1/users/{id}")).await.body["active"],
        false
    );
    assert_eq!(ana.get("/").await.status, StatusCode::SEE_OTHER);

    // Teams: create, add, remove.
    let t = admin.post("/people/teams", &[("name", "Database")]).await;
    assert_eq!(t.status, StatusCode::SEE_OTHER, "{}", t.html);
    let team = t.location().to_string();
    let tid: i64 = team.rsplit('/').next().unwrap().parse().unwrap();
    let uid = admin.user_id.to_string();
    let r = admin
        .post(&format!("{team}/members"), &[("user_id", &uid)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(
        app.get(&format!("/api/v1/teams/{tid}")).await.body["member_ids"],
        json!([admin.user_id])
    );
    let page = admin.get(&team).await;
    assert!(page.html.contains("Remove Web admin"), "{}", page.html);
    let r = admin
        .post(&format!("{team}/members/remove"), &[("user_id", &uid)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/api/v1/teams/{tid}")).await.body["member_ids"],
        json!([])
    );
}

async fn deactivation_refused_is_shown(app: TestApp) {
    let (uid, _) = web_user(&app, "responder").await;
    let p = app
        .post(
            "/api/v1/escalation-policies",
            json!({ "name": "Primary", "levels": [{ "targets": [{ "user": uid }], "delay_minutes": 5 }] }),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let admin = signed_in(&app, "admin").await;
    let r = admin
        .post(&format!("/people/users/{uid}"), &[("active", "0")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    assert!(r.html.contains("Primary"), "{}", r.html);
    assert_eq!(
        app.get(&format!("/api/v1/users/{uid}")).await.body["active"],
        true
    );
}

async fn non_admins_cannot_manage_people(app: TestApp) {
    let t = app.post("/api/v1/teams", json!({ "name": "Ops" })).await;
    let tid = t.body["id"].as_i64().unwrap();
    let (other, _) = web_user(&app, "viewer").await;
    let other_s = other.to_string();
    for role in ["viewer", "responder"] {
        let web = signed_in(&app, role).await;
        let before = app.counts().await;
        let me = web.user_id.to_string();
        for (path, form) in [
            (
                "/people/users".to_string(),
                vec![
                    ("name", "Mallory"),
                    ("email", "mallory@example.com"),
                    ("password", PASSWORD),
                    ("role", "admin"),
                ],
            ),
            (
                format!("/people/users/{}", web.user_id),
                vec![("role", "admin")],
            ),
            (format!("/people/users/{other}"), vec![("active", "0")]),
            ("/people/teams".to_string(), vec![("name", "Mine")]),
            (
                format!("/people/teams/{tid}/members"),
                vec![("user_id", me.as_str())],
            ),
            (
                format!("/people/teams/{tid}/members/remove"),
                vec![("user_id", other_s.as_str())],
            ),
        ] {
            let r = web.post(&path, &form).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{role} {path}");
        }
        assert_eq!(app.counts().await, before);
        assert_eq!(
            app.get(&format!("/api/v1/users/{}", web.user_id))
                .await
                .body["role"],
            role
        );
    }
}

async fn changing_my_password(app: TestApp) {
    let (_, email) = web_user(&app, "viewer").await;
    let web = sign_in(&app, &email, PASSWORD).await.ok().unwrap();
    let other = sign_in(&app, &email, PASSWORD).await.ok().unwrap();
    let new = "a brand new passphrase";
    let wrong = web
        .post(
            "/profile/password",
            &[
                ("current_password", "not my password"),
                ("new_password", new),
                ("new_password_again", new),
            ],
        )
        .await;
    assert!(wrong.status.is_client_error(), "{}", wrong.status);
    assert!(wrong.html.contains("current_password"), "{}", wrong.html);
    let mismatch = web
        .post(
            "/profile/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("new_password_again", "something else entirely"),
            ],
        )
        .await;
    assert!(mismatch.status.is_client_error());
    assert!(
        sign_in(&app, &email, PASSWORD).await.is_ok(),
        "nothing changed yet"
    );

    let ok = web
        .post(
            "/profile/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("new_password_again", new),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    let fresh = ok
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("tocsin_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a new session for this browser");
    assert_eq!(
        other.get("/").await.status,
        StatusCode::SEE_OTHER,
        "other browser signed out"
    );
    let mut again = web;
    again.cookie = fresh;
    assert_eq!(again.get("/profile").await.status, StatusCode::OK);
    let old = sign_in(&app, &email, PASSWORD)
        .await
        .err()
        .expect("old password refused");
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert!(sign_in(&app, &email, new).await.is_ok());

    // A password set through the API ends the web sessions too.
    let (uid, email2) = web_user(&app, "viewer").await;
    let w2 = sign_in(&app, &email2, PASSWORD).await.ok().unwrap();
    let r = app
        .patch(&format!("/api/v1/users/{uid}"), json!({ "password": new }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(w2.get("/").await.status, StatusCode::SEE_OTHER);
}

// The code sent last to a method, read from the outbox as delivery would.
async fn last_code(app: &TestApp) -> String {
    let mut db = sqlx::AnyConnection::connect(&app.db_url).await.unwrap();
    let row = sqlx::query(
        "SELECT message FROM notification_requests WHERE reason = 'verification' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    let m: String = row.get("message");
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    v["code"].as_str().unwrap().to_string()
}

async fn contact_methods_and_rules(app: TestApp) {
    let web = signed_in(&app, "viewer").await;
    let methods = format!("/api/v1/users/{}/contact-methods", web.user_id);
    let bad = web
        .post(
            "/profile/contact-methods",
            &[("kind", "sms"), ("address", "call me")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("address"), "{}", bad.html);
    let r = web
        .post(
            "/profile/contact-methods",
            &[
                ("kind", "sms"),
                ("address", "+15551234567"),
                ("label", EVIL),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let list = app.get(&methods).await;
    let id = list.body[0]["id"].as_i64().unwrap();
    assert_eq!(list.body[0]["verified"], false);
    let page = web.get("/profile").await;
    assert!(page.html.contains("&#60;img src=x"), "escaped");
    assert!(!page.html.contains(EVIL));

    let r = web
        .post(&format!("/profile/contact-methods/{id}/send-code"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let code = last_code(&app).await;
    let r = web
        .post(
            &format!("/profile/contact-methods/{id}/verify"),
            &[("code", "12345")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("code"));
    let r = web
        .post(
            &format!("/profile/contact-methods/{id}/verify"),
            &[("code", &code)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(app.get(&methods).await.body[0]["verified"], true);
    let r = web
        .post(&format!("/profile/contact-methods/{id}/test"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);

    // Rules: one row used, a blank row dropped; the API shows the same.
    let ids = id.to_string();
    let r = web
        .post(
            "/profile/notification-rules",
            &[
                ("contact_method_id", ids.as_str()),
                ("delay_minutes", "5"),
                ("urgency", "low"),
                ("contact_method_id", ""),
                ("delay_minutes", "0"),
                ("urgency", "high"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let rules = app
        .get(&format!("/api/v1/users/{}/notification-rules", web.user_id))
        .await;
    assert_eq!(
        rules.body["rules"],
        json!([{ "urgency": "low", "contact_method_id": id, "delay_minutes": 5 }])
    );
    // A rule naming someone else's method is refused.
    let (_, other_token) = app.user_with_role("viewer").await;
    let them = app
        .call(Method::GET, "/api/v1/me", Some(&other_token), None)
        .await
        .body["user"]["id"]
        .as_i64()
        .unwrap();
    let theirs = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{them}/contact-methods"),
            Some(&other_token),
            Some(json!({ "kind": "email", "address": "them@example.com" })),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let theirs_s = theirs.to_string();
    let r = web
        .post(
            "/profile/notification-rules",
            &[
                ("contact_method_id", theirs_s.as_str()),
                ("delay_minutes", "0"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);

    // Nobody reaches another user's method through these forms.
    let before = app.counts().await;
    for action in ["delete", "send-code", "test"] {
        let r = web
            .post(&format!("/profile/contact-methods/{theirs}/{action}"), &[])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
    }
    let r = web
        .post(
            &format!("/profile/contact-methods/{theirs}/verify"),
            &[("code", "123456")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.counts().await, before);

    // In use by a rule: deleting is refused; after the rules are cleared, it goes.
    let r = web
        .post(&format!("/profile/contact-methods/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    let r = web.post("/profile/notification-rules", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = web
        .post(&format!("/profile/contact-methods/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(app.get(&methods).await.body, json!([]));

    // Handoff notifications.
    let r = web
        .post(
            "/profile/handoff",
            &[("reminder_minutes", "30"), ("notify_on_start", "1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let h = app
        .get(&format!(
            "/api/v1/users/{}/handoff-notifications",
            web.user_id
        ))
        .await;
    assert_eq!(h.body["reminder_minutes"], 30);
    assert_eq!(h.body["notify_on_start"], true);
}

async fn tokens_and_calendar_feed(app: TestApp) {
    let web = signed_in(&app, "responder").await;
    let r = web
        .post("/profile/tokens", &[("name", "ci"), ("role", "admin")])
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "no more rights than mine"
    );
    let r = web
        .post("/profile/tokens", &[("name", EVIL), ("role", "viewer")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(!r.html.contains(EVIL));
    let marker = "id=\"secret\" class=\"secret-value\" value=\"";
    let at = r.html.find(marker).unwrap() + marker.len();
    let secret = r.html[at..].split('"').next().unwrap().to_string();
    let me = app
        .call(Method::GET, "/api/v1/me", Some(&secret), None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["role"], "viewer");
    // Shown once: the profile lists it without the secret.
    let page = web.get("/profile").await;
    assert!(!page.html.contains(&secret));
    let id = me.body["token_id"].as_i64().unwrap();
    assert!(page.html.contains(&format!("/profile/tokens/{id}/revoke")));

    // Another user's token is not mine to revoke here.
    let (_, other) = app.user_with_role("viewer").await;
    let other_id = app
        .call(Method::GET, "/api/v1/me", Some(&other), None)
        .await
        .body["token_id"]
        .as_i64()
        .unwrap();
    let r = web
        .post(&format!("/profile/tokens/{other_id}/revoke"), &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", Some(&other), None)
            .await
            .status,
        StatusCode::OK
    );

    let r = web.post(&format!("/profile/tokens/{id}/revoke"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let me = app
        .call(Method::GET, "/api/v1/me", Some(&secret), None)
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);

    let r = web.post("/profile/calendar-feed", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    let at = r.html.find("/calendar/").unwrap();
    let path = r.html[at..].split('"').next().unwrap().to_string();
    let feed = web.get(&path).await;
    assert_eq!(feed.status, StatusCode::OK);
    assert!(feed.html.contains("BEGIN:VCALENDAR"));
}

async fn every_post_needs_its_form_token(app: TestApp) {
    let web = signed_in(&app, "admin").await;
    let before = app.counts().await;
    for (path, form) in [
        (
            "/people/users",
            vec![
                ("name", "X"),
                ("email", "x@example.com"),
                ("password", PASSWORD),
            ],
        ),
        ("/people/teams", vec![("name", "X")]),
        (
            "/profile",
            vec![
                ("name", "X"),
                ("email", "x@example.com"),
                ("time_zone", "UTC"),
            ],
        ),
        (
            "/profile/contact-methods",
            vec![("kind", "email"), ("address", "x@example.com")],
        ),
        ("/profile/tokens", vec![("name", "X")]),
        ("/profile/calendar-feed", vec![]),
    ] {
        let r = web.post_raw(path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.counts().await, before);
}

async fn hostile_names_are_escaped(app: TestApp) {
    let admin = signed_in(&app, "admin").await;
    let r = admin
        .post(
            "/people/users",
            &[
                ("name", EVIL),
                ("email", "evil@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let user = r.location().to_string();
    let r = admin
        .post("/people/teams", &[("name", EVIL), ("description", EVIL)])
        .await;
    let team = r.location().to_string();
    let viewer = signed_in(&app, "viewer").await;
    for path in ["/people", user.as_str(), team.as_str()] {
        let p = viewer.get(path).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(
            p.html.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{path}: {}",
            p.html
        );
        assert!(!p.html.contains(EVIL), "{path}");
    }
    // My own name, through the profile form.
    let r = viewer
        .post(
            "/profile",
            &[
                ("name", EVIL),
                ("email", "v2@example.com"),
                ("time_zone", "Asia/Tokyo"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let me = app.get(&format!("/api/v1/users/{}", viewer.user_id)).await;
    assert_eq!(me.body["name"], EVIL);
    assert_eq!(me.body["time_zone"], "Asia/Tokyo");
    let p = viewer.get("/profile").await;
    assert!(!p.html.contains(EVIL));
}

crate::both_backends!(
    pages_render_for_every_role,
    an_admin_adds_a_user_who_can_sign_in,
    deactivation_refused_is_shown,
    non_admins_cannot_manage_people,
    changing_my_password,
    contact_methods_and_rules,
    tokens_and_calendar_feed,
    every_post_needs_its_form_token,
    hostile_names_are_escaped,
);
