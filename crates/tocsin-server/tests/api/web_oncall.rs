//! The on-call pages: who is on call now, the schedule calendar (SVG drawn on
//! the server, in the schedule's zone, across a DST change), overrides through
//! the form, and the escalation policy editor — roles, form tokens and
//! refusals naming the field included.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{t, user, TestApp};
use crate::web_support::signed_in;

const EVIL: &str = "<img src=x onerror=alert(1)>";

/// A New York schedule with two layers (a daily rotation and a weekend layer
/// above it) and an override; returns (schedule id, alice, bob, carol).
async fn schedule(app: &TestApp) -> (i64, i64, i64, i64) {
    let (alice, bob, carol) = (
        user(app, "Alice").await,
        user(app, "Bob").await,
        user(app, "Carol").await,
    );
    let r = app
        .post(
            "/api/v1/schedules",
            json!({ "name": "Platform primary", "time_zone": "America/New_York", "layers": [
                { "name": "Rotation", "users": [alice, bob], "start": "2025-12-01T14:00:00Z",
                  "turn": "daily", "handoff": "09:00" },
                { "name": "Weekend", "users": [carol], "start": "2025-12-01T14:00:00Z",
                  "turn": "weekly", "handoff": "09:00",
                  "restrictions": [{ "days": ["sat", "sun"], "start_time": "09:00", "end_time": "17:00" }] }
            ] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let o = app
        .post(
            &format!("/api/v1/schedules/{id}/overrides"),
            json!({ "user_id": carol, "starts_at": "2026-03-04T15:00:00Z", "ends_at": "2026-03-04T20:00:00Z" }),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.body);
    (id, alice, bob, carol)
}

async fn overrides(app: &TestApp, id: i64, from: &str, to: &str) -> Vec<Value> {
    let r = app
        .get(&format!(
            "/api/v1/schedules/{id}/overrides?from={from}&to={to}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

async fn schedule_pages_draw_layers_and_final_shifts(app: TestApp) {
    let (id, _, _, _) = schedule(&app).await;
    let web = signed_in(&app, "viewer").await;

    // Overview and list: the schedule with whoever is on call now (a weekday rotation).
    for path in ["/oncall", "/oncall/schedules"] {
        let p = web.get(path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}: {}", p.html);
        assert!(p.html.contains("Platform primary"), "{path}");
        assert!(
            p.html.contains(&format!("/oncall/schedules/{id}")),
            "{path}"
        );
        assert!(
            p.html.contains("<strong>Alice</strong>")
                || p.html.contains("<strong>Bob</strong>")
                || p.html.contains(">Alice<")
                || p.html.contains(">Bob<"),
            "{path}: {}",
            p.html
        );
    }

    // The week of the override: a row per layer, an overrides row, the final row.
    let p = web
        .get(&format!(
            "/oncall/schedules/{id}?view=week&start=2026-03-02"
        ))
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.html);
    let svg = &p.html[p.html.find("<svg").unwrap()..p.html.find("</svg>").unwrap()];
    for label in [">Rotation<", ">Weekend<", ">Overrides<", ">Final<"] {
        assert!(svg.contains(label), "{label}: {svg}");
    }
    for name in ["Alice", "Bob", "Carol"] {
        assert!(svg.contains(name), "{name} in the calendar");
    }
    // One bar per final shift of the week, as the API counts them.
    let api = app
        .get(&format!(
            "/api/v1/schedules/{id}/shifts?from=2026-03-02T05:00:00Z&to=2026-03-09T04:00:00Z"
        ))
        .await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    let n = api.body.as_array().unwrap().len();
    assert!(
        n >= 8,
        "a week of daily turns, an override and weekend cover: {n}"
    );
    assert_eq!(svg.matches("class=\"shift final ").count(), n, "{svg}");
    // The same shifts as a table; no inline style anywhere.
    assert_eq!(
        p.html.matches("<tr><th scope=\"row\">").count(),
        n,
        "a table row per final shift"
    );
    assert!(!p.html.contains("style="));
    assert!(p.html.contains("data-range-pick=\"override-form\""));
    assert!(p
        .html
        .contains("data-at=\"2026-03-02T00:00\" data-end=\"2026-03-03T00:00\""));
    // The overrides row carries Carol's cover; the upcoming list (from now, January) too.
    assert!(p.html.contains("Upcoming overrides"));
    assert!(p.html.contains("<strong>Carol</strong>"));
    // Previous/next and the month view.
    let link = |start: &str| format!("/oncall/schedules/{id}?view=week&#38;start={start}");
    assert!(p.html.contains(&link("2026-02-23")), "{}", p.html);
    assert!(p.html.contains(&link("2026-03-09")));
    let m = web
        .get(&format!(
            "/oncall/schedules/{id}?view=month&start=2026-03-15"
        ))
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.html);
    assert!(m.html.contains("March 2026"));
    // March 2026 starts on a Sunday: the grid starts Monday 23 Feb and runs six weeks.
    assert!(m.html.contains("data-at=\"2026-02-23T00:00\""));
    assert!(m.html.contains("data-at=\"2026-04-05T00:00\""));
    assert_eq!(m.html.matches("<rect class=\"day").count(), 42);
    assert!(m.html.contains("start=2026-02-01") && m.html.contains("start=2026-04-01"));

    // Bad query values name the field.
    let bad = web
        .get(&format!("/oncall/schedules/{id}?start=March"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("start"), "{}", bad.html);
    assert_eq!(
        web.get("/oncall/schedules/999999").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn week_across_dst_is_labelled_in_the_schedules_zone(app: TestApp) {
    let (id, _, _, _) = schedule(&app).await;
    let web = signed_in(&app, "viewer").await;
    let p = web
        .get(&format!(
            "/oncall/schedules/{id}?view=week&start=2026-03-05"
        ))
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.html);
    // Seven local days, Thursday 5 to Wednesday 11 March, each from local midnight,
    // though Sunday 8 March is 23 hours long in New York.
    let days = [
        ("2026-03-05", "Thu", "5 Mar"),
        ("2026-03-06", "Fri", "6 Mar"),
        ("2026-03-07", "Sat", "7 Mar"),
        ("2026-03-08", "Sun", "8 Mar"),
        ("2026-03-09", "Mon", "9 Mar"),
        ("2026-03-10", "Tue", "10 Mar"),
        ("2026-03-11", "Wed", "11 Mar"),
    ];
    let mut at = 0;
    for (date, wd, label) in days {
        let cell = format!("data-at=\"{date}T00:00\"");
        let found = p.html[at..].find(&cell).map(|i| i + at);
        let i = found.unwrap_or_else(|| panic!("{cell}: {}", p.html));
        assert!(i > at || at == 0, "days in order");
        at = i;
        let col = &p.html[i..i + 400];
        assert!(col.contains(&format!(">{wd}<")), "{date}: {col}");
        assert!(col.contains(&format!(">{label}<")), "{date}: {col}");
    }
    assert_eq!(p.html.matches("<rect class=\"day").count(), 7);
    assert!(p.html.contains("<title>Sun 8 Mar 2026</title>"));
    assert!(!p.html.contains("T23:00\"") && !p.html.contains("T01:00\""));
    assert!(p.html.contains("Thu 5 Mar 2026 – Wed 11 Mar 2026"));
    // The rotation hands off at 09:00 local on both sides of the change.
    assert!(p.html.contains("Sat 7 Mar 09:00"), "{}", p.html);
    assert!(p.html.contains("Mon 9 Mar 09:00"), "{}", p.html);
}

async fn overrides_through_the_form(app: TestApp) {
    let (id, _, bob, _) = schedule(&app).await;
    let web = signed_in(&app, "responder").await;
    let page = web.get(&format!("/oncall/schedules/{id}")).await;
    assert!(page.html.contains("id=\"override-form\""));
    assert!(page.html.contains("<label for=\"o-start\">"));

    // Typed in New York time (EDT after 8 March): 09:00–17:00 is 13:00–21:00 UTC.
    let before = overrides(&app, id, "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z").await;
    assert!(before.is_empty());
    let bob_s = bob.to_string();
    let r = web
        .post(
            &format!("/oncall/schedules/{id}/overrides"),
            &[
                ("user_id", bob_s.as_str()),
                ("starts_at", "2026-03-10T09:00"),
                ("ends_at", "2026-03-10T17:00"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(
        r.location(),
        format!("/oncall/schedules/{id}?start=2026-03-10")
    );
    let after = overrides(&app, id, "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z").await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["user_id"], bob);
    assert_eq!(
        t(after[0]["starts_at"].as_str().unwrap()),
        t("2026-03-10T13:00:00Z")
    );
    assert_eq!(
        t(after[0]["ends_at"].as_str().unwrap()),
        t("2026-03-10T21:00:00Z")
    );
    assert_eq!(after[0]["created_by"], web.user_id);
    let oid = after[0]["id"].as_i64().unwrap();

    // End before start: refused naming the field, what was typed kept, nothing written.
    let counts = app.counts().await;
    let bad = web
        .post(
            &format!("/oncall/schedules/{id}/overrides"),
            &[
                ("user_id", bob_s.as_str()),
                ("starts_at", "2026-03-12T17:00"),
                ("ends_at", "2026-03-12T09:00"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(
        bad.html.contains("ends_at: must be after starts_at"),
        "{}",
        bad.html
    );
    assert!(bad.html.contains("value=\"2026-03-12T17:00\""));
    // A local time the clocks skip is refused too.
    let gap = web
        .post(
            &format!("/oncall/schedules/{id}/overrides"),
            &[
                ("user_id", bob_s.as_str()),
                ("starts_at", "2026-03-08T02:30"),
                ("ends_at", "2026-03-08T05:00"),
            ],
        )
        .await;
    assert_eq!(gap.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(gap
        .html
        .contains("starts_at: not a time that exists in America/New_York"));
    let none = web
        .post(
            &format!("/oncall/schedules/{id}/overrides"),
            &[
                ("starts_at", "2026-03-12T09:00"),
                ("ends_at", "2026-03-12T17:00"),
            ],
        )
        .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.html.contains("user_id"));
    // Without the form token: refused.
    let forged = web
        .post_raw(
            &format!("/oncall/schedules/{id}/overrides"),
            &[
                ("user_id", bob_s.as_str()),
                ("starts_at", "2026-03-12T09:00"),
                ("ends_at", "2026-03-12T17:00"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged_delete = web
        .post_raw(
            &format!("/oncall/schedules/{id}/overrides/{oid}/delete"),
            &[],
        )
        .await;
    assert_eq!(forged_delete.status, StatusCode::FORBIDDEN);
    assert_eq!(app.counts().await, counts);

    // The list shows it with a delete button that asks first; deleting works.
    let page = web.get(&format!("/oncall/schedules/{id}")).await;
    assert!(page.html.contains(&format!(
        "/oncall/schedules/{id}/overrides/{oid}/delete\" data-confirm="
    )));
    let del = web
        .post(
            &format!("/oncall/schedules/{id}/overrides/{oid}/delete"),
            &[],
        )
        .await;
    assert_eq!(del.status, StatusCode::SEE_OTHER, "{}", del.html);
    assert!(
        overrides(&app, id, "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z")
            .await
            .is_empty()
    );
    let again = web
        .post(
            &format!("/oncall/schedules/{id}/overrides/{oid}/delete"),
            &[],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

async fn a_viewer_sees_no_forms_and_cannot_act(app: TestApp) {
    let (id, alice, _, _) = schedule(&app).await;
    let existing = overrides(&app, id, "2026-03-01T00:00:00Z", "2026-03-31T00:00:00Z").await;
    let oid = existing[0]["id"].as_i64().unwrap();
    let p = app
        .post(
            "/api/v1/escalation-policies",
            json!({ "name": "Platform", "levels": [{ "targets": [{ "user": alice }], "delay_minutes": 5 }] }),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let pid = p.body["id"].as_i64().unwrap();

    let web = signed_in(&app, "viewer").await;
    let page = web
        .get(&format!("/oncall/schedules/{id}?start=2026-03-02"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.html.contains("override-form\" method")
            && !page.html.contains("id=\"override-form\"")
    );
    assert!(!page.html.contains("Delete override"));
    let pol = web.get(&format!("/oncall/policies/{pid}")).await;
    assert_eq!(pol.status, StatusCode::OK);
    assert!(pol.html.contains("Who it would page now"));
    assert!(!pol.html.contains("policy-form"));
    let list = web.get("/oncall/policies").await;
    assert!(list.html.contains("Platform") && !list.html.contains("/oncall/policies/new"));
    assert_eq!(
        web.get("/oncall/policies/new").await.status,
        StatusCode::FORBIDDEN
    );

    let responder = signed_in(&app, "responder").await;
    let counts = app.counts().await;
    let alice_s = alice.to_string();
    for (path, form) in [
        (
            format!("/oncall/schedules/{id}/overrides"),
            vec![
                ("user_id", alice_s.as_str()),
                ("starts_at", "2026-03-12T09:00"),
                ("ends_at", "2026-03-12T17:00"),
            ],
        ),
        (
            format!("/oncall/schedules/{id}/overrides/{oid}/delete"),
            vec![],
        ),
        (
            "/oncall/policies".to_string(),
            vec![
                ("name", "Mine"),
                ("level_0_targets", "user:1"),
                ("level_0_delay", "5"),
            ],
        ),
        (
            format!("/oncall/policies/{pid}"),
            vec![
                ("name", "Renamed"),
                ("level_0_targets", "user:1"),
                ("level_0_delay", "5"),
            ],
        ),
    ] {
        let r = web.post(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    // A responder may arrange cover but not edit policies (admin, as in the API).
    let r = responder
        .post(
            &format!("/oncall/policies/{pid}"),
            &[
                ("name", "Renamed"),
                ("level_0_targets", "user:1"),
                ("level_0_delay", "5"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.counts().await, counts);
    let still = app.get(&format!("/api/v1/escalation-policies/{pid}")).await;
    assert_eq!(still.body["name"], "Platform");
}

async fn policies_through_the_editor(app: TestApp) {
    let (sid, alice, bob, _) = schedule(&app).await;
    let web = signed_in(&app, "admin").await;
    let new = web.get("/oncall/policies/new").await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.html);
    assert!(new.html.contains("name=\"level_0_targets\" multiple"));
    assert!(new.html.contains(&format!("value=\"schedule:{sid}\"")));

    let (a, b, s) = (
        format!("user:{alice}"),
        format!("user:{bob}"),
        format!("schedule:{sid}"),
    );
    let r = web
        .post(
            "/oncall/policies",
            &[
                ("name", "Platform"),
                ("description", EVIL),
                ("repeat", "1"),
                ("level_0_targets", s.as_str()),
                ("level_0_targets", a.as_str()),
                ("level_0_delay", "5"),
                ("level_1_targets", b.as_str()),
                ("level_1_delay", "10"),
                ("level_2_delay", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let pid: i64 = r.location().rsplit('/').next().unwrap().parse().unwrap();
    let got = app.get(&format!("/api/v1/escalation-policies/{pid}")).await;
    assert_eq!(got.body["repeat"], 1);
    assert_eq!(
        got.body["levels"],
        json!([
            { "targets": [{ "schedule": sid }, { "user": alice }], "delay_minutes": 5 },
            { "targets": [{ "user": bob }], "delay_minutes": 10 }
        ])
    );

    // Its page: who each level would page now, the editor filled in, text escaped.
    let page = web.get(&format!("/oncall/policies/{pid}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("&#60;img src=x onerror=alert(1)&#62;"));
    assert!(!page.html.contains(EVIL));
    assert!(page.html.contains("<strong>Bob</strong>"));
    assert!(page
        .html
        .contains(&format!("<option value=\"{s}\" selected>")));
    let overview = web.get("/oncall").await;
    assert!(overview.html.contains(&format!("/oncall/policies/{pid}")));
    assert!(overview.html.contains("Level 2"));

    // Edit: drop the first level, change the second.
    let r = web
        .post(
            &format!("/oncall/policies/{pid}"),
            &[
                ("name", "Platform main"),
                ("repeat", "0"),
                ("level_0_targets", s.as_str()),
                ("level_0_delay", "5"),
                ("level_0_remove", "1"),
                ("level_1_targets", b.as_str()),
                ("level_1_targets", a.as_str()),
                ("level_1_delay", "3"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let got = app.get(&format!("/api/v1/escalation-policies/{pid}")).await;
    assert_eq!(got.body["name"], "Platform main");
    assert_eq!(
        got.body["levels"],
        json!([{ "targets": [{ "user": bob }, { "user": alice }], "delay_minutes": 3 }])
    );

    // A level with no targets: refused naming it, the form refilled, nothing changed.
    let counts = app.counts().await;
    let bad = web
        .post(
            &format!("/oncall/policies/{pid}"),
            &[
                ("name", "Platform main"),
                ("level_0_targets", b.as_str()),
                ("level_0_delay", "3"),
                ("level_1_delay", "10"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
    assert!(bad.html.contains("levels[1].targets"), "{}", bad.html);
    assert!(bad.html.contains("value=\"Platform main\""));
    let bad_new = web
        .post(
            "/oncall/policies",
            &[("name", "Empty"), ("level_0_delay", "1")],
        )
        .await;
    assert_eq!(bad_new.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_new.html.contains("levels[0].targets"),
        "{}",
        bad_new.html
    );
    let bad_delay = web
        .post(
            "/oncall/policies",
            &[
                ("name", "Slow"),
                ("level_0_targets", a.as_str()),
                ("level_0_delay", "soon"),
            ],
        )
        .await;
    assert!(bad_delay.status.is_client_error());
    assert!(bad_delay.html.contains("levels[0].delay_minutes"));
    let dup = web
        .post(
            "/oncall/policies",
            &[
                ("name", "Platform main"),
                ("level_0_targets", a.as_str()),
                ("level_0_delay", "1"),
            ],
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.html);
    assert!(dup.html.contains("name"));
    let forged = web
        .post_raw(
            "/oncall/policies",
            &[
                ("name", "Forged"),
                ("level_0_targets", a.as_str()),
                ("level_0_delay", "1"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.counts().await, counts);
}

async fn user_names_are_escaped_in_the_calendar(app: TestApp) {
    let r = app
        .post(
            "/api/v1/users",
            json!({ "name": EVIL, "email": "evil@example.com", "role": "responder" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let evil = r.body["id"].as_i64().unwrap();
    let s = app
        .post(
            "/api/v1/schedules",
            json!({ "name": EVIL, "time_zone": "UTC", "layers": [
                { "name": EVIL, "users": [evil], "start": "2025-12-01T09:00:00Z", "turn": "weekly", "handoff": "09:00" }
            ] }),
        )
        .await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    let id = s.body["id"].as_i64().unwrap();
    let web = signed_in(&app, "viewer").await;
    for path in [
        "/oncall".to_string(),
        "/oncall/schedules".into(),
        format!("/oncall/schedules/{id}"),
    ] {
        let p = web.get(&path).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(
            p.html.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{path}"
        );
        assert!(!p.html.contains(EVIL), "{path}");
    }
}

crate::both_backends!(
    schedule_pages_draw_layers_and_final_shifts,
    week_across_dst_is_labelled_in_the_schedules_zone,
    overrides_through_the_form,
    a_viewer_sees_no_forms_and_cannot_act,
    policies_through_the_editor,
    user_names_are_escaped_in_the_calendar,
);
