//! /api/v1/analytics over a synthetic data set made through the API on a fake
//! clock, every expected number computed by hand in the comments: counts,
//! means and nearest-rank percentiles of TTD/TTA/TTM/TTR, time between
//! failures, weekly trend buckets in two zones, the same from daily rollups
//! (exact counts and means, percentiles within 1/64), a rollup invalidated by
//! a change to an old incident, alert noise shares, on-call night pages of two
//! people in different zones paged at the same instants, CSV equal to JSON,
//! and bad parameters refused naming the field.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tocsin_engine::delivery::RecordingDelivery;

use crate::escalation_engine::runner;
use crate::support::{t, TestApp};

const MIN: i64 = 60_000;

pub(crate) struct Data {
    api: i64,
    db: i64,
    payments: i64,
    storage: i64,
    incidents: [i64; 4],
}

async fn post_id(app: &TestApp, path: &str, body: Value) -> i64 {
    let r = app.post(path, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn at_move(app: &TestApp, id: i64, at: &str, status: &str) {
    app.clock.set(t(at));
    let r = app.move_to(id, status).await;
    assert_eq!(r.status, StatusCode::OK, "{status}: {}", r.body);
}

/// Four incidents over two weeks (Monday 2026-01-05 is ISO week 2):
///
/// | inc | declared (UTC)   | services | sev  | TTA  | TTM  | TTR  | other        |
/// |-----|------------------|----------|------|------|------|------|--------------|
/// | I1  | Mon 01-05 10:00  | api      | SEV2 | 2m   | 30m  | 30m  | began 09:50  |
/// | I2  | Tue 01-06 12:00  | api, db  | SEV1 | 4m   | 20m  | 60m  |              |
/// | I3  | Mon 01-12 07:00  | db       | SEV2 | 10m  | 90m  | 90m  | Sun 23:00 LA |
/// | I4  | Wed 01-14 09:00  | api      | SEV2 | 6m   | –    | –    |              |
///
/// api belongs to team Payments, db to team Storage.
pub(crate) async fn data(app: &TestApp) -> Data {
    let payments = post_id(app, "/api/v1/teams", json!({ "name": "Payments" })).await;
    let storage = post_id(app, "/api/v1/teams", json!({ "name": "Storage" })).await;
    let api = post_id(
        app,
        "/api/v1/services",
        json!({ "name": "api", "team_id": payments }),
    )
    .await;
    let db = post_id(
        app,
        "/api/v1/services",
        json!({ "name": "db", "team_id": storage }),
    )
    .await;
    let declare = |at: &'static str, body: Value| {
        app.clock.set(t(at));
        async move { app.declare(body).await["id"].as_i64().unwrap() }
    };
    let i1 = declare(
        "2026-01-05T10:00:00Z",
        json!({ "title": "I1", "service_ids": [api], "severity": "SEV2", "occurred_at": "2026-01-05T09:50:00Z" }),
    )
    .await;
    at_move(app, i1, "2026-01-05T10:02:00Z", "acknowledged").await;
    at_move(app, i1, "2026-01-05T10:30:00Z", "resolved").await;
    let i2 = declare(
        "2026-01-06T12:00:00Z",
        json!({ "title": "I2", "service_ids": [api, db], "severity": "SEV1" }),
    )
    .await;
    at_move(app, i2, "2026-01-06T12:04:00Z", "acknowledged").await;
    at_move(app, i2, "2026-01-06T12:20:00Z", "monitoring").await;
    at_move(app, i2, "2026-01-06T13:00:00Z", "resolved").await;
    let i3 = declare(
        "2026-01-12T07:00:00Z",
        json!({ "title": "I3", "service_ids": [db], "severity": "SEV2" }),
    )
    .await;
    at_move(app, i3, "2026-01-12T07:10:00Z", "acknowledged").await;
    at_move(app, i3, "2026-01-12T08:30:00Z", "resolved").await;
    let i4 = declare(
        "2026-01-14T09:00:00Z",
        json!({ "title": "I4", "service_ids": [api], "severity": "SEV2" }),
    )
    .await;
    at_move(app, i4, "2026-01-14T09:06:00Z", "acknowledged").await;
    app.clock.set(t("2026-01-20T00:00:00Z"));
    Data {
        api,
        db,
        payments,
        storage,
        incidents: [i1, i2, i3, i4],
    }
}

const WINDOW: &str = "from=2026-01-05T00:00:00Z&to=2026-01-19T00:00:00Z";

async fn get_ok(app: &TestApp, path: &str) -> Value {
    let r = app.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    r.body
}

fn group<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {report}"))
}

fn ms(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

async fn incident_metrics_are_exact_on_a_synthetic_data_set(app: TestApp) {
    let d = data(&app).await;
    let all = get_ok(
        &app,
        &format!("/api/v1/analytics/incidents?{WINDOW}&percentiles=50,90"),
    )
    .await;
    assert_eq!(all["mode"], "exact");
    let g = group(&all, "all");
    assert_eq!(g["incidents"], 4);
    let tta = &g["metrics"]["time_to_acknowledge"];
    // TTA 2, 4, 6, 10 min: mean 22/4 = 5.5 min; p50 rank ⌈2⌉ = 4m; p90 rank ⌈3.6⌉ = 10m.
    assert_eq!(tta["count"], 4);
    assert_eq!(tta["mean_ms"].as_f64(), Some(330_000.0));
    assert_eq!(tta["percentiles"]["p50"], 4 * MIN);
    assert_eq!(tta["percentiles"]["p90"], 10 * MIN);
    assert_eq!(tta["min_ms"], 2 * MIN);
    assert_eq!(tta["max_ms"], 10 * MIN);
    // TTR 30, 60, 90 min: mean 60m; p50 rank 2 = 60m; p90 rank ⌈2.7⌉ = 90m.
    let ttr = &g["metrics"]["time_to_resolve"];
    assert_eq!(ttr["count"], 3);
    assert_eq!(ttr["mean_ms"].as_f64(), Some(3_600_000.0));
    assert_eq!(ttr["percentiles"]["p50"], 60 * MIN);
    assert_eq!(ttr["percentiles"]["p90"], 90 * MIN);
    // TTM 30 (resolved counts as mitigated), 20, 90 min: mean 140/3 min = 2.8e6 ms.
    let ttm = &g["metrics"]["time_to_mitigate"];
    assert_eq!(ttm["count"], 3);
    assert_eq!(ttm["mean_ms"].as_f64(), Some(2_800_000.0));
    assert_eq!(ttm["percentiles"]["p50"], 30 * MIN);
    // TTD only where the start was recorded: I1, 09:50 → 10:00.
    let ttd = &g["metrics"]["time_to_detect"];
    assert_eq!(ttd["count"], 1);
    assert_eq!(ttd["mean_ms"].as_f64(), Some(600_000.0));
    // Starts: I1 began 01-05 09:50, I4 declared 01-14 09:00: 9 d − 50 min over 3 gaps.
    assert_eq!(
        g["mtbf_ms"].as_f64(),
        Some((9.0 * 86_400_000.0 - 50.0 * 60_000.0) / 3.0)
    );

    let by_service = get_ok(
        &app,
        &format!("/api/v1/analytics/incidents?{WINDOW}&group_by=service"),
    )
    .await;
    let api = group(&by_service, &d.api.to_string());
    assert_eq!(api["name"], "api");
    // api: I1, I2, I4: TTA 2, 4, 6 → mean 4m, p50 4m, p90 rank ⌈2.7⌉ = 6m.
    assert_eq!(api["incidents"], 3);
    let tta = &api["metrics"]["time_to_acknowledge"];
    assert_eq!(tta["mean_ms"].as_f64(), Some(240_000.0));
    assert_eq!(tta["percentiles"]["p50"], 4 * MIN);
    assert_eq!(tta["percentiles"]["p90"], 6 * MIN);
    assert_eq!(tta["percentiles"]["p95"], 6 * MIN);
    // db: I2, I3: TTA 4, 10 → mean 7m, p50 rank 1 = 4m, p90 rank 2 = 10m.
    let db = group(&by_service, &d.db.to_string());
    assert_eq!(db["incidents"], 2);
    let tta = &db["metrics"]["time_to_acknowledge"];
    assert_eq!(tta["mean_ms"].as_f64(), Some(420_000.0));
    assert_eq!(tta["percentiles"]["p50"], 4 * MIN);
    assert_eq!(tta["percentiles"]["p90"], 10 * MIN);

    let by_team = get_ok(
        &app,
        &format!("/api/v1/analytics/incidents?{WINDOW}&group_by=team"),
    )
    .await;
    assert_eq!(group(&by_team, &d.payments.to_string())["incidents"], 3);
    assert_eq!(group(&by_team, &d.payments.to_string())["name"], "Payments");
    assert_eq!(group(&by_team, &d.storage.to_string())["incidents"], 2);

    let by_sev = get_ok(
        &app,
        &format!("/api/v1/analytics/incidents?{WINDOW}&group_by=severity"),
    )
    .await;
    assert_eq!(group(&by_sev, "SEV1")["incidents"], 1);
    let sev2 = group(&by_sev, "SEV2");
    // SEV2: I1, I3, I4: TTA 2, 10, 6 → mean 6m.
    assert_eq!(sev2["incidents"], 3);
    assert_eq!(
        sev2["metrics"]["time_to_acknowledge"]["mean_ms"].as_f64(),
        Some(360_000.0)
    );

    // The window is half-open on declaration: from Tuesday, I1 is out.
    let later = get_ok(
        &app,
        "/api/v1/analytics/incidents?from=2026-01-06T00:00:00Z&to=2026-01-19T00:00:00Z",
    )
    .await;
    assert_eq!(group(&later, "all")["incidents"], 3);

    // Rollups give the same counts and means, percentiles within 1/64.
    for by in ["all", "service", "team", "severity"] {
        let path = format!("/api/v1/analytics/incidents?{WINDOW}&group_by={by}");
        let exact = get_ok(&app, &path).await;
        let rolled = get_ok(&app, &format!("{path}&mode=rollups")).await;
        assert_eq!(rolled["mode"], "rollups");
        let (e, r) = (
            exact["groups"].as_array().unwrap(),
            rolled["groups"].as_array().unwrap(),
        );
        assert_eq!(e.len(), r.len(), "{by}");
        for (e, r) in e.iter().zip(r) {
            assert_eq!(e["key"], r["key"]);
            assert_eq!(e["incidents"], r["incidents"]);
            assert_eq!(e["alerts"], r["alerts"]);
            assert_eq!(e["mtbf_ms"], r["mtbf_ms"]);
            for (m, es) in e["metrics"].as_object().unwrap() {
                let rs = &r["metrics"][m];
                assert_eq!(es["count"], rs["count"], "{by} {m}");
                assert_eq!(es["mean_ms"], rs["mean_ms"], "{by} {m}");
                for (p, ev) in es["percentiles"].as_object().unwrap() {
                    let (ev, rv) = (ms(ev) as f64, ms(&rs["percentiles"][p]) as f64);
                    assert!((ev - rv).abs() <= ev / 64.0, "{by} {m} {p}: {ev} vs {rv}");
                }
            }
        }
    }
    let _ = d.incidents;
}

async fn weekly_trend_buckets_in_utc_and_los_angeles(app: TestApp) {
    data(&app).await;
    for mode in ["exact", "rollups"] {
        // UTC: week 2 (Jan 5) has I1, I2 (TTA 2, 4 → mean 3m, p50 2m, p90 4m);
        // week 3 (Jan 12) has I3, I4 (TTA 10, 6 → mean 8m, p50 6m, p90 10m).
        let utc = get_ok(
            &app,
            &format!("/api/v1/analytics/trend?{WINDOW}&metric=time_to_acknowledge&mode={mode}"),
        )
        .await;
        assert_eq!(utc["mode"], mode);
        let weeks = utc["weeks"].as_array().unwrap();
        assert_eq!(weeks.len(), 2, "{utc}");
        assert_eq!(weeks[0]["starts_on"], "2026-01-05");
        assert_eq!(weeks[0]["iso_week"], 2);
        assert_eq!(weeks[0]["incidents"], 2);
        assert_eq!(weeks[0]["mean_ms"].as_f64(), Some(180_000.0));
        assert_eq!(weeks[1]["iso_week"], 3);
        assert_eq!(weeks[1]["incidents"], 2);
        assert_eq!(weeks[1]["mean_ms"].as_f64(), Some(480_000.0));
        if mode == "exact" {
            assert_eq!(weeks[0]["p50_ms"], 2 * MIN);
            assert_eq!(weeks[0]["p90_ms"], 4 * MIN);
            assert_eq!(weeks[1]["p50_ms"], 6 * MIN);
            assert_eq!(weeks[1]["p90_ms"], 10 * MIN);
        }
        // Los Angeles (UTC−8): the window starts Sunday Jan 4 16:00 local, so
        // the week of Dec 29 is there, empty; I3 (Sunday 23:00 local) falls in
        // the week of Jan 5 with I1 and I2; I4 alone in the week of Jan 12.
        let la = get_ok(
            &app,
            &format!("/api/v1/analytics/trend?{WINDOW}&tz=America/Los_Angeles&mode={mode}"),
        )
        .await;
        let weeks = la["weeks"].as_array().unwrap();
        let counts: Vec<(String, i64)> = weeks
            .iter()
            .map(|w| {
                (
                    w["starts_on"].as_str().unwrap().to_string(),
                    w["incidents"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            counts,
            [
                ("2025-12-29".to_string(), 0),
                ("2026-01-05".to_string(), 3),
                ("2026-01-12".to_string(), 1)
            ],
            "{mode}"
        );
        // TTA of I1, I2, I3: 2, 4, 10 → mean 16/3 min.
        assert_eq!(weeks[1]["mean_ms"].as_f64(), Some(16.0 * 60_000.0 / 3.0));
        assert_eq!(weeks[0]["mean_ms"], Value::Null);
    }
}

async fn a_change_to_an_old_incident_changes_the_rolled_up_report(app: TestApp) {
    let d = data(&app).await;
    let path = format!("/api/v1/analytics/incidents?{WINDOW}&mode=rollups&group_by=severity");
    let before = get_ok(&app, &path).await;
    assert_eq!(group(&before, "SEV2")["incidents"], 3);
    assert_eq!(
        group(&before, "SEV2")["metrics"]["time_to_resolve"]["count"],
        2
    );
    // Days later, I4 (declared Jan 14) is resolved and I1 (Jan 5) re-rated SEV1.
    app.clock.set(t("2026-02-01T00:00:00Z"));
    let r = app.move_to(d.incidents[3], "resolved").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .patch(
            &format!("/api/v1/incidents/{}", d.incidents[0]),
            json!({ "severity": "SEV1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = get_ok(&app, &path).await;
    assert_eq!(group(&after, "SEV1")["incidents"], 2);
    assert_eq!(group(&after, "SEV2")["incidents"], 2);
    // SEV2 is now I3 and I4, both resolved: I4 after 17 d 15 h minus 9 h… the
    // count is what matters: 2 of 2.
    assert_eq!(
        group(&after, "SEV2")["metrics"]["time_to_resolve"]["count"],
        2
    );
    let all = get_ok(
        &app,
        &format!("/api/v1/analytics/incidents?{WINDOW}&mode=rollups"),
    )
    .await;
    assert_eq!(group(&all, "all")["metrics"]["time_to_resolve"]["count"], 4);
    // And the rollups agree with exact facts.
    let exact = get_ok(&app, &format!("/api/v1/analytics/incidents?{WINDOW}")).await;
    assert_eq!(
        group(&all, "all")["metrics"]["time_to_resolve"]["mean_ms"],
        group(&exact, "all")["metrics"]["time_to_resolve"]["mean_ms"]
    );
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    // Enough of RFC 4180 for the tests: quoted fields with doubled quotes.
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

async fn csv_matches_json(app: TestApp) {
    let d = data(&app).await;
    // A name that needs quoting.
    let r = app
        .patch(
            &format!("/api/v1/services/{}", d.api),
            json!({ "name": "api, \"edge\"" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let path = format!("/api/v1/analytics/incidents?{WINDOW}&group_by=service");
    let json = get_ok(&app, &path).await;
    let csv = app.get(&format!("{path}&format=csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let text = String::from_utf8(csv.bytes.clone()).unwrap();
    assert!(text.contains("\"api, \"\"edge\"\"\""), "{text}");
    let rows = parse_csv(&text);
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 3);
    for (row, g) in rows[1..].iter().zip(json["groups"].as_array().unwrap()) {
        assert_eq!(row[col("key")], g["key"].as_str().unwrap());
        assert_eq!(row[col("name")], g["name"].as_str().unwrap());
        assert_eq!(row[col("incidents")], g["incidents"].to_string());
        let tta = &g["metrics"]["time_to_acknowledge"];
        assert_eq!(
            row[col("time_to_acknowledge_mean_ms")]
                .parse::<f64>()
                .unwrap(),
            tta["mean_ms"].as_f64().unwrap()
        );
        assert_eq!(
            row[col("time_to_acknowledge_p90_ms")],
            tta["percentiles"]["p90"].to_string()
        );
    }
    // Accept: text/csv works too, for the trend.
    let r = app
        .client
        .get(format!("{}/api/v1/analytics/trend?{WINDOW}", app.base))
        .bearer_auth(&app.admin_token)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rows = parse_csv(&r.text().await.unwrap());
    assert_eq!(rows[0][0], "iso_year");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1][3], "2");
    // A viewer reads analytics.
    let (_, viewer) = app.user_with_role("viewer").await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/analytics/noise?{WINDOW}&format=csv"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn bad_parameters_name_the_field(app: TestApp) {
    for (path, field) in [
        ("/api/v1/analytics/incidents?from=yesterday", "from"),
        (
            "/api/v1/analytics/incidents?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "to",
        ),
        ("/api/v1/analytics/incidents?group_by=planet", "group_by"),
        (
            "/api/v1/analytics/incidents?percentiles=50,120",
            "percentiles",
        ),
        ("/api/v1/analytics/incidents?mode=guess", "mode"),
        ("/api/v1/analytics/incidents?format=xml", "format"),
        ("/api/v1/analytics/trend?tz=Mars/Olympus", "tz"),
        ("/api/v1/analytics/trend?metric=vibes", "metric"),
        ("/api/v1/analytics/noise?quick_minutes=-1", "quick_minutes"),
        ("/api/v1/analytics/oncall?to=soon", "to"),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.field(), field, "{path}: {}", r.body);
    }
    let r = app
        .call(Method::GET, "/api/v1/analytics/incidents", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn enqueue(app: &TestApp, body: Value) {
    let r = app
        .call(Method::POST, "/v2/enqueue", None, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

/// Three alerts on one service from one integration, from 2026-01-05 10:00:
/// A1 `cpu` resolved by its source after 2 min (quick, nobody acted);
/// A2 `cpu` again 8 min after that resolve (a flap), resolved by its source
/// after 20 min (not quick, nobody acted); A3 `disk`, its incident
/// acknowledged by a person. Shares: quick 1/3, never acted on 2/3.
async fn alert_noise_shares_are_exact(app: TestApp) {
    let (svc, key) = crate::ingest::service_with_key(&app, "web").await;
    let trigger = |dedup: &str| {
        json!({ "routing_key": key, "event_action": "trigger", "dedup_key": dedup,
                "payload": { "summary": format!("{dedup} high"), "source": "web-1", "severity": "error",
                             "class": format!("{dedup}-rule") } })
    };
    let resolve =
        |dedup: &str| json!({ "routing_key": key, "event_action": "resolve", "dedup_key": dedup });
    app.clock.set(t("2026-01-05T10:00:00Z"));
    enqueue(&app, trigger("cpu")).await;
    app.clock.set(t("2026-01-05T10:02:00Z"));
    enqueue(&app, resolve("cpu")).await;
    app.clock.set(t("2026-01-05T10:10:00Z"));
    enqueue(&app, trigger("cpu")).await;
    app.clock.set(t("2026-01-05T10:30:00Z"));
    enqueue(&app, resolve("cpu")).await;
    app.clock.set(t("2026-01-05T10:40:00Z"));
    enqueue(&app, trigger("disk")).await;
    let alerts = app
        .get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"]
        .clone();
    let disk = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["dedup_key"] == "disk")
        .unwrap();
    app.clock.set(t("2026-01-05T10:45:00Z"));
    let r = app
        .move_to(disk["incident_id"].as_i64().unwrap(), "acknowledged")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let n = get_ok(&app, &format!("/api/v1/analytics/noise?{WINDOW}")).await;
    let s = &n["by_service"][0];
    assert_eq!(s["key"], svc.to_string());
    assert_eq!(s["name"], "web");
    assert_eq!(s["alerts"], 3);
    assert_eq!(s["triggers"], 3);
    assert_eq!(s["quick_auto_resolved"], 1);
    assert_eq!(s["quick_auto_resolved_share"].as_f64(), Some(1.0 / 3.0));
    assert_eq!(s["flaps"], 1);
    assert_eq!(s["never_acted_on"], 2);
    assert_eq!(s["never_acted_on_share"].as_f64(), Some(2.0 / 3.0));
    assert_eq!(n["by_integration"].as_array().unwrap().len(), 1);
    assert_eq!(n["by_integration"][0]["alerts"], 3);
    // Per alerting rule (the event's class): `cpu-rule` is the noisy one.
    let rules = n["by_rule"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert_eq!(rules[0]["key"], "cpu-rule");
    assert_eq!(rules[0]["alerts"], 2);
    assert_eq!(rules[0]["quick_auto_resolved"], 1);
    assert_eq!(rules[0]["flaps"], 1);
    assert_eq!(rules[0]["never_acted_on"], 2);
    assert_eq!(rules[1]["key"], "disk-rule");
    assert_eq!(rules[1]["alerts"], 1);
    assert_eq!(rules[1]["never_acted_on"], 0);
    let csv = app
        .get(&format!("/api/v1/analytics/noise?{WINDOW}&format=csv"))
        .await;
    let text = String::from_utf8(csv.bytes).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("rule,cpu-rule,cpu-rule,2,")),
        "{text}"
    );
    // A longer quick-resolve time makes A2 quick too.
    let n = get_ok(
        &app,
        &format!("/api/v1/analytics/noise?{WINDOW}&quick_minutes=30"),
    )
    .await;
    assert_eq!(n["by_service"][0]["quick_auto_resolved"], 2);
}

async fn paged_user(app: &TestApp, name: &str, zone: &str) -> i64 {
    let id = post_id(
        app,
        "/api/v1/users",
        json!({ "name": name, "email": format!("{}@example.com", name.to_lowercase()),
                "role": "responder", "time_zone": zone }),
    )
    .await;
    let m = post_id(
        app,
        &format!("/api/v1/users/{id}/contact-methods"),
        json!({ "kind": "push", "address": format!("ntfy:{id}"), "verified": true }),
    )
    .await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{id}/notification-rules"),
            Some(&app.admin_token),
            Some(json!({ "rules": [{ "urgency": "high", "contact_method_id": m, "delay_minutes": 0 }],
                         "working_hours": null })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    id
}

/// Berlin (UTC+1) and Los Angeles (UTC−8) are paged together at five instants:
///
/// | UTC            | Berlin              | night of | Los Angeles         | night of |
/// |----------------|---------------------|----------|---------------------|----------|
/// | Wed 01-07 02:30| Wed 03:30           | Jan 6    | Tue 18:30           | –        |
/// | Wed 01-07 15:00| Wed 16:00 (working) | –        | Wed 07:00           | –        |
/// | Thu 01-08 06:30| Thu 07:30           | –        | Wed 22:30           | Jan 7    |
/// | Fri 01-09 05:00| Fri 06:00           | Jan 8    | Thu 21:00           | –        |
/// | Sat 01-10 04:00| Sat 05:00           | Jan 9    | Fri 20:00           | –        |
///
/// Berlin: 5 pages, 4 outside working hours, 3 at night, 3 disturbed nights,
/// longest streak 2 (Jan 8, 9). Los Angeles: 5 pages, all outside working
/// hours, 1 at night, 1 disturbed night, streak 1.
/// Pages Berta (Berlin) and Lars (Los Angeles) together at the five instants
/// below; their ids.
pub(crate) async fn page_two_zones(app: &TestApp) -> (i64, i64) {
    page_two_zones_at(app, &FIVE_INSTANTS).await
}

const FIVE_INSTANTS: [&str; 5] = [
    "2026-01-07T02:30:00Z",
    "2026-01-07T15:00:00Z",
    "2026-01-08T06:30:00Z",
    "2026-01-09T05:00:00Z",
    "2026-01-10T04:00:00Z",
];

async fn page_two_zones_at(app: &TestApp, instants: &[&str]) -> (i64, i64) {
    let berlin = paged_user(app, "Berta", "Europe/Berlin").await;
    let la = paged_user(app, "Lars", "America/Los_Angeles").await;
    let policy = post_id(
        app,
        "/api/v1/escalation-policies",
        json!({ "name": "Both", "repeat": 0, "levels": [
            { "targets": [{ "user": berlin }, { "user": la }], "delay_minutes": 30 }] }),
    )
    .await;
    let svc = post_id(app, "/api/v1/services", json!({ "name": "pager" })).await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/services/{svc}/escalation-policy"),
            Some(&app.admin_token),
            Some(json!({ "escalation_policy_id": policy })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rec = RecordingDelivery::default();
    let runner = runner(&app.store, &app.clock, &rec);
    for &at in instants {
        app.clock.set(t(at));
        let id = app
            .declare(json!({ "title": format!("page {at}"), "service_ids": [svc], "page": true }))
            .await["id"]
            .as_i64()
            .unwrap();
        runner.tick().await.unwrap();
        app.clock.advance(Duration::minutes(1));
        assert_eq!(app.move_to(id, "acknowledged").await.status, StatusCode::OK);
    }
    assert_eq!(rec.requests().len(), 2 * instants.len());
    (berlin, la)
}

async fn night_pages_are_counted_in_each_persons_zone(app: TestApp) {
    let (berlin, la) = page_two_zones(&app).await;
    let o = get_ok(&app, &format!("/api/v1/analytics/oncall?{WINDOW}")).await;
    let person = |id: i64| {
        o["people"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["user_id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {o}"))
            .clone()
    };
    let b = person(berlin);
    assert_eq!(b["time_zone"], "Europe/Berlin");
    assert_eq!(
        [
            &b["pages"],
            &b["outside_working_hours"],
            &b["at_night"],
            &b["disturbed_nights"],
            &b["longest_disturbed_streak"]
        ],
        [&json!(5), &json!(4), &json!(3), &json!(3), &json!(2)]
    );
    let l = person(la);
    assert_eq!(
        [
            &l["pages"],
            &l["outside_working_hours"],
            &l["at_night"],
            &l["disturbed_nights"],
            &l["longest_disturbed_streak"]
        ],
        [&json!(5), &json!(5), &json!(1), &json!(1), &json!(1)]
    );
    // The heat map puts each page at its recipient's local hour: Berlin's
    // Wednesday 03:00 and Los Angeles' Tuesday 18:00 for the first instant.
    assert_eq!(o["heat_map"][2][3], 1);
    assert_eq!(o["heat_map"][1][18], 1);
    let csv = app
        .get(&format!("/api/v1/analytics/oncall?{WINDOW}&format=csv"))
        .await;
    let rows = parse_csv(&String::from_utf8(csv.bytes).unwrap());
    let row = rows.iter().find(|r| r[0] == berlin.to_string()).unwrap();
    assert_eq!(row[1], "Berta");
    assert_eq!(row[5], "3");
}

/// Across Europe's spring-forward night (Sunday 2026-03-29, 02:00 CET → 03:00
/// CEST), pages at 05:30 UTC on Saturday and on Sunday: Berlin's wall clock
/// reads 06:30 (night of Friday 27th) then 07:30 (morning, not night);
/// Los Angeles, already on PDT (UTC−7), reads 22:30 on Friday and on
/// Saturday: two consecutive disturbed nights there, one in Berlin.
async fn night_pages_follow_daylight_saving_time(app: TestApp) {
    let (berlin, la) =
        page_two_zones_at(&app, &["2026-03-28T05:30:00Z", "2026-03-29T05:30:00Z"]).await;
    let o = get_ok(
        &app,
        "/api/v1/analytics/oncall?from=2026-03-23T00:00:00Z&to=2026-03-30T00:00:00Z",
    )
    .await;
    let person = |id: i64| {
        o["people"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["user_id"] == id)
            .unwrap()
            .clone()
    };
    let (b, l) = (person(berlin), person(la));
    assert_eq!(
        (&b["at_night"], &b["disturbed_nights"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(
        (
            &l["at_night"],
            &l["disturbed_nights"],
            &l["longest_disturbed_streak"]
        ),
        (&json!(2), &json!(2), &json!(2))
    );
}

crate::both_backends!(
    night_pages_follow_daylight_saving_time,
    incident_metrics_are_exact_on_a_synthetic_data_set,
    weekly_trend_buckets_in_utc_and_los_angeles,
    a_change_to_an_old_incident_changes_the_rolled_up_report,
    csv_matches_json,
    bad_parameters_name_the_field,
    alert_noise_shares_are_exact,
    night_pages_are_counted_in_each_persons_zone,
);
