//! iCalendar feeds through the API: a schedule's feed and a user's own feed at
//! secret-token URLs, fetched without a bearer token and read with a real
//! iCalendar parser, equal to the shifts API over the same range (7 days back,
//! 60 ahead of the injected clock); rotation kills the old URL at once; the token
//! is never in the event log nor in a GET; roles.

use crate::support::{t, user};
use std::io::BufReader;

use chrono::{DateTime, Duration, NaiveDateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use tocsin_core::time::Clock;

use crate::support::TestApp;

async fn schedule(app: &TestApp, name: &str, users: &[i64], turn: &str) -> i64 {
    let r = app
        .post(
            "/api/v1/schedules",
            json!({ "name": name, "time_zone": "Europe/Berlin",
                "layers": [{ "name": "main", "users": users, "start": "2025-12-01T08:00:00Z",
                    "turn": turn, "handoff": "09:00" }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

fn z(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A TEXT value unescaped (RFC 5545 §3.3.11); the parser leaves escapes in.
fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// (start, end, summary) of each event, as a real iCalendar parser reads them.
fn parse(doc: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>, String)> {
    let mut cals = ical::IcalParser::new(BufReader::new(doc.as_bytes()));
    let cal = cals.next().expect("one calendar").expect("parses");
    assert!(cals.next().is_none(), "exactly one calendar");
    let prop = |props: &[ical::property::Property], name: &str| -> String {
        let found: Vec<_> = props.iter().filter(|p| p.name == name).collect();
        assert_eq!(found.len(), 1, "one {name}");
        found[0].value.clone().unwrap_or_default()
    };
    let time = |v: String| {
        NaiveDateTime::parse_from_str(&v, "%Y%m%dT%H%M%SZ")
            .unwrap_or_else(|e| panic!("{v:?}: {e}"))
            .and_utc()
    };
    cal.events
        .iter()
        .map(|e| {
            (
                time(prop(&e.properties, "DTSTART")),
                time(prop(&e.properties, "DTEND")),
                unescape(&prop(&e.properties, "SUMMARY")),
            )
        })
        .collect()
}

/// The same, from a shifts API response.
fn expected(body: &Value) -> Vec<(DateTime<Utc>, DateTime<Utc>, String)> {
    body.as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|s| {
            (
                t(s["starts_at"].as_str().unwrap()),
                t(s["ends_at"].as_str().unwrap()),
                format!(
                    "On call: {} — {}",
                    s["user_name"].as_str().unwrap(),
                    s["schedule_name"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

/// The shifts API over the feed's range at the clock's now.
async fn api_shifts(app: &TestApp, path: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>, String)> {
    let now = app.clock.now();
    let r = app
        .get(&format!(
            "{path}?from={}&to={}",
            z(now - Duration::days(7)),
            z(now + Duration::days(60))
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    expected(&r.body)
}

/// The feed's path (no host) from the URL a create or rotate returned.
fn feed_path(app: &TestApp, r: &crate::support::Resp) -> String {
    let url = r.body["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.body));
    let path = url
        .strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{url} is not under {}", app.base));
    assert!(
        path.starts_with("/calendar/") && path.ends_with(".ics"),
        "{path}"
    );
    path.to_string()
}

fn token_of(path: &str) -> &str {
    path.trim_start_matches("/calendar/")
        .trim_end_matches(".ics")
}

/// Fetches a feed with no bearer token; returns its events.
async fn fetch(app: &TestApp, path: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>, String)> {
    let r = app.call(Method::GET, path, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "text/calendar; charset=utf-8"
    );
    assert_eq!(
        r.headers["cache-control"].to_str().unwrap(),
        "private, max-age=300"
    );
    parse(std::str::from_utf8(&r.bytes).expect("utf-8"))
}

async fn gone(app: &TestApp, path: &str) {
    let r = app.call(Method::GET, path, None, None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{path}: {}",
        r.body
    );
}

async fn all_events(app: &TestApp) -> Value {
    let r = app.get("/api/v1/events?limit=1000").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn kinds(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "calendar_feed")
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn schedule_feed_round_trips_and_rotates(app: TestApp) {
    let a = user(&app, "Ada").await;
    let b = user(&app, "Bo").await;
    let c = user(&app, "Cy").await;
    let id = schedule(&app, "Platform, primary", &[a, b], "daily").await;
    let o = app
        .post(
            &format!("/api/v1/schedules/{id}/overrides"),
            json!({ "user_id": c, "starts_at": "2026-01-03T10:00:00Z", "ends_at": "2026-01-04T02:00:00Z" }),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.body);
    let api = format!("/api/v1/schedules/{id}/calendar-feed");

    let none = app.get(&api).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert_eq!(none.body, json!({ "exists": false, "feed": null }));

    let created = app.post(&api, json!({})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["kind"], "schedule");
    assert_eq!(created.body["schedule_id"], id);
    let first = feed_path(&app, &created);
    let first_token = token_of(&first).to_string();
    assert!(first_token.len() >= 32, "{first_token}");

    let shifts = format!("/api/v1/schedules/{id}/shifts");
    let events = fetch(&app, &first).await;
    assert!(events.len() > 60, "{} events", events.len());
    assert!(events
        .iter()
        .any(|e| e.2 == "On call: Cy — Platform, primary"));
    assert_eq!(events, api_shifts(&app, &shifts).await);
    // The range follows the clock.
    app.clock.advance(Duration::days(10));
    let later = fetch(&app, &first).await;
    assert_ne!(later, events);
    assert_eq!(later, api_shifts(&app, &shifts).await);
    assert!(later[0].1 > app.clock.now() - Duration::days(7));

    let status = app.get(&api).await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.body["exists"], true);
    assert_eq!(status.body["feed"]["prefix"], &first_token[..6]);
    assert_eq!(status.body["feed"]["rotated_at"], Value::Null);
    assert!(!status.body.to_string().contains(&first_token));

    app.clock.advance(Duration::minutes(1));
    let rotated = app.post(&api, json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.body["id"], created.body["id"]);
    let second = feed_path(&app, &rotated);
    assert_ne!(second, first);
    gone(&app, &first).await;
    assert_eq!(fetch(&app, &second).await, api_shifts(&app, &shifts).await);
    let status = app.get(&api).await;
    assert_eq!(status.body["feed"]["prefix"], &token_of(&second)[..6]);
    assert_eq!(
        t(status.body["feed"]["rotated_at"].as_str().unwrap()),
        app.clock.now()
    );
    assert_eq!(
        status.body["feed"]["created_at"],
        created.body["created_at"]
    );

    let log = all_events(&app).await;
    assert_eq!(
        kinds(&log),
        ["calendar_feed.created", "calendar_feed.rotated"]
    );
    let text = log.to_string();
    assert!(!text.contains(&first_token));
    assert!(!text.contains(token_of(&second)));

    // Unknown tokens, a path without .ics, and a deleted schedule's feed are 404.
    gone(&app, "/calendar/not-a-token.ics").await;
    gone(&app, &second.replace(".ics", "")).await;
    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/schedules/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    gone(&app, &second).await;
    assert_eq!(app.get(&api).await.status, StatusCode::NOT_FOUND);
}

async fn a_users_feed_shows_their_shifts_across_schedules(app: TestApp) {
    let (me, token) = app.user_with_role("viewer").await;
    let b = user(&app, "Bo").await;
    schedule(&app, "Platform", &[me, b], "daily").await;
    schedule(&app, "Database", &[b, me], "weekly").await;
    let mine = "/api/v1/me/calendar-feed";

    let none = app.call(Method::GET, mine, Some(&token), None).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert_eq!(none.body["exists"], false);

    let created = app
        .call(Method::POST, mine, Some(&token), Some(json!({})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["kind"], "user");
    assert_eq!(created.body["user_id"], me);
    let path = feed_path(&app, &created);
    let events = fetch(&app, &path).await;
    assert_eq!(
        events,
        api_shifts(&app, &format!("/api/v1/users/{me}/shifts")).await
    );
    for schedule in ["Platform", "Database"] {
        assert!(
            events
                .iter()
                .any(|e| e.2 == format!("On call: A viewer — {schedule}")),
            "{schedule}: {events:?}"
        );
    }
    assert!(events.iter().all(|e| e.2.starts_with("On call: A viewer")));

    // Another user's own feed is theirs, not mine.
    let other = app.post(mine, json!({})).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    assert_eq!(other.body["user_id"], app.admin_id);
    assert!(fetch(&app, &feed_path(&app, &other)).await.is_empty());

    let status = app.call(Method::GET, mine, Some(&token), None).await;
    assert_eq!(status.body["exists"], true);
    assert_eq!(status.body["feed"]["user_id"], me);
    assert!(!status.body.to_string().contains(token_of(&path)));

    let rotated = app
        .call(Method::POST, mine, Some(&token), Some(json!({})))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    gone(&app, &path).await;
    assert_eq!(fetch(&app, &feed_path(&app, &rotated)).await, events);
    let log = all_events(&app).await;
    assert_eq!(
        kinds(&log),
        [
            "calendar_feed.created",
            "calendar_feed.created",
            "calendar_feed.rotated"
        ]
    );
    assert!(!log.to_string().contains(token_of(&path)));
}

async fn only_admins_rotate_a_schedules_feed(app: TestApp) {
    let a = user(&app, "Ada").await;
    let id = schedule(&app, "Platform", &[a], "daily").await;
    let api = format!("/api/v1/schedules/{id}/calendar-feed");
    let created = app.post(&api, json!({})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = feed_path(&app, &created);
    for role in ["viewer", "responder"] {
        let (_, token) = app.user_with_role(role).await;
        let before = app.counts().await;
        let r = app
            .call(Method::POST, &api, Some(&token), Some(json!({})))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{role}"
        );
        assert_eq!(app.counts().await, before, "{role}");
        // Anyone signed in can see whether it exists.
        let r = app.call(Method::GET, &api, Some(&token), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role}: {}", r.body);
        assert_eq!(r.body["exists"], true);
        // And anyone signed in can get their own.
        let r = app
            .call(
                Method::POST,
                "/api/v1/me/calendar-feed",
                Some(&token),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{role}: {}", r.body);
    }
    // The refused rotations left the schedule's URL working.
    assert!(!fetch(&app, &path).await.is_empty());
    // Without a token the API refuses; the feed needs none.
    let r = app.call(Method::POST, &api, None, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .call(Method::GET, "/api/v1/me/calendar-feed", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let missing = app
        .post("/api/v1/schedules/999999/calendar-feed", json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

crate::both_backends!(
    schedule_feed_round_trips_and_rotates,
    a_users_feed_shows_their_shifts_across_schedules,
    only_admins_rotate_a_schedules_feed
);
