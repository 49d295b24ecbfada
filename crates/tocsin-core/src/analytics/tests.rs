//! Metrics on a synthetic data set, with every expectation computed by hand.

use chrono::{Duration, TimeZone, Utc};
use chrono_tz::Tz;

use super::facts::{IncidentFacts, Metric};
use super::metrics::*;
use crate::time::Timestamp;

fn at(d: u32, h: u32, m: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 3, d, h, m, 0).unwrap()
}

const MIN: i64 = 60_000;

/// Four incidents in the window (2024-03-04 to 03-18 UTC) and one after it.
///
/// | id | sev  | services | began | detected | declared     | ack   | mitigated | resolved | alerts |
/// |----|------|----------|-------|----------|--------------|-------|-----------|----------|--------|
/// | 1  | SEV1 | 1        | 09:50 | 09:55    | Mon 4, 10:00 | 10:02 | 10:30     | 11:00    | 3      |
/// | 2  | SEV2 | 1, 2     | –     | 14:00    | Wed 6, 14:00 | 14:10 | 15:00     | 16:00    | 1      |
/// | 3  | SEV1 | 2        | 07:00 | 07:30    | Mon 11, 08:00| 08:01 | –         | –        | 5      |
/// | 4  | SEV2 | 1        | –     | 23:30    | Sun 17, 23:30| 23:34 | 23:40     | 23:50    | 0      |
/// | 5  | SEV2 | 1        | –     | –        | Apr 1 (out)  |       |           |          | 2      |
///
/// Service 1 is team 10's, service 2 team 20's.
fn data() -> Vec<IncidentFacts> {
    let f = |id,
             sev: &str,
             services: Vec<i64>,
             began,
             detected,
             declared,
             ack,
             mitigated,
             resolved,
             alerts| {
        let team_ids = services.iter().map(|s| s * 10).collect();
        IncidentFacts {
            incident_id: id,
            severity: sev.into(),
            service_ids: services,
            team_ids,
            alert_count: alerts,
            began_at: began,
            detected_at: detected,
            declared_at: declared,
            acknowledged_at: ack,
            mitigated_at: mitigated,
            resolved_at: resolved,
        }
    };
    vec![
        f(
            1,
            "SEV1",
            vec![1],
            Some(at(4, 9, 50)),
            at(4, 9, 55),
            at(4, 10, 0),
            Some(at(4, 10, 2)),
            Some(at(4, 10, 30)),
            Some(at(4, 11, 0)),
            3,
        ),
        f(
            2,
            "SEV2",
            vec![1, 2],
            None,
            at(6, 14, 0),
            at(6, 14, 0),
            Some(at(6, 14, 10)),
            Some(at(6, 15, 0)),
            Some(at(6, 16, 0)),
            1,
        ),
        f(
            3,
            "SEV1",
            vec![2],
            Some(at(11, 7, 0)),
            at(11, 7, 30),
            at(11, 8, 0),
            Some(at(11, 8, 1)),
            None,
            None,
            5,
        ),
        f(
            4,
            "SEV2",
            vec![1],
            None,
            at(17, 23, 30),
            at(17, 23, 30),
            Some(at(17, 23, 34)),
            Some(at(17, 23, 40)),
            Some(at(17, 23, 50)),
            0,
        ),
        f(
            5,
            "SEV2",
            vec![1],
            None,
            Utc.with_ymd_and_hms(2024, 4, 1, 9, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 4, 1, 9, 0, 0).unwrap(),
            None,
            None,
            None,
            2,
        ),
    ]
}

fn window() -> Window {
    Window {
        from: at(4, 0, 0),
        to: at(18, 0, 0),
    }
}

#[test]
fn durations_follow_the_definitions() {
    let d = data();
    let all = |m| d.iter().map(|f| f.duration_ms(m)).collect::<Vec<_>>();
    // TTD only where the start was recorded: 09:50→09:55, 07:00→07:30.
    assert_eq!(
        all(Metric::TimeToDetect),
        [Some(5 * MIN), None, Some(30 * MIN), None, None]
    );
    assert_eq!(
        all(Metric::TimeToDeclare),
        [Some(5 * MIN), Some(0), Some(30 * MIN), Some(0), Some(0)]
    );
    assert_eq!(
        all(Metric::TimeToAcknowledge),
        [
            Some(2 * MIN),
            Some(10 * MIN),
            Some(MIN),
            Some(4 * MIN),
            None
        ]
    );
    assert_eq!(
        all(Metric::TimeToMitigate),
        [Some(30 * MIN), Some(60 * MIN), None, Some(10 * MIN), None]
    );
    assert_eq!(
        all(Metric::TimeToResolve),
        [Some(60 * MIN), Some(120 * MIN), None, Some(20 * MIN), None]
    );
}

#[test]
fn all_incidents_by_hand() {
    let r = report(&data(), GroupBy::All, window());
    assert_eq!(r.len(), 1);
    let g = &r[0];
    assert_eq!(
        (g.key.clone(), g.incidents, g.alerts),
        (GroupKey::All, 4, 3 + 1 + 5)
    );
    // TTA 2, 10, 1, 4 min → sorted 1, 2, 4, 10; mean 17/4 = 4.25 min = 255_000 ms;
    // p50 = x⌈2⌉ = 2 min, p90 = x⌈3.6⌉ = x4 = 10 min, p95 = x⌈3.8⌉ = 10 min.
    let tta = g.durations[&Metric::TimeToAcknowledge];
    assert_eq!((tta.count, tta.mean_ms), (4, 255_000.0));
    assert_eq!(
        (tta.p50_ms, tta.p90_ms, tta.p95_ms),
        (2 * MIN, 10 * MIN, 10 * MIN)
    );
    // TTR 60, 120, 20 min → mean 200/3 min = 4_000_000 ms; p50 = x2 = 60 min; p90 = x⌈2.7⌉ = 120 min.
    let ttr = g.durations[&Metric::TimeToResolve];
    assert_eq!(
        (ttr.count, ttr.mean_ms, ttr.p50_ms, ttr.p90_ms),
        (3, 4_000_000.0, 60 * MIN, 120 * MIN)
    );
    // TTM 30, 60, 10 → mean 100/3 min = 2_000_000 ms, p50 30 min.
    let ttm = g.durations[&Metric::TimeToMitigate];
    assert_eq!(
        (ttm.count, ttm.mean_ms, ttm.p50_ms),
        (3, 2_000_000.0, 30 * MIN)
    );
    // TTD 5, 30 → mean 17.5 min = 1_050_000; p50 = x1 = 5 min.
    let ttd = g.durations[&Metric::TimeToDetect];
    assert_eq!(
        (ttd.count, ttd.mean_ms, ttd.p50_ms),
        (2, 1_050_000.0, 5 * MIN)
    );
    // Starts: Mar 4 09:50 (began) … Mar 17 23:30. 13 days + 13 h 40 min
    // = 1_123_200_000 + 49_200_000 = 1_172_400_000 ms over 3 gaps = 390_800_000 ms.
    assert_eq!(g.mtbf_ms, Some(390_800_000.0));
}

#[test]
fn groups_by_hand() {
    let by_service = report(&data(), GroupBy::Service, window());
    let keys: Vec<&GroupKey> = by_service.iter().map(|g| &g.key).collect();
    assert_eq!(keys, [&GroupKey::Service(1), &GroupKey::Service(2)]);
    // Service 1: incidents 1, 2, 4. TTA 2, 10, 4 → mean 16/3 min = 320_000, p50 = 4 min.
    let s1 = &by_service[0];
    assert_eq!((s1.incidents, s1.alerts), (3, 4));
    let tta = s1.durations[&Metric::TimeToAcknowledge];
    assert_eq!((tta.mean_ms, tta.p50_ms), (320_000.0, 4 * MIN));
    // Gaps: Mar 4 09:50 → Mar 17 23:30 = 1_172_400_000 over 2.
    assert_eq!(s1.mtbf_ms, Some(586_200_000.0));
    // Service 2: incidents 2 and 3; starts Mar 6 14:00 → Mar 11 07:00 = 4 d 17 h.
    let s2 = &by_service[1];
    assert_eq!((s2.incidents, s2.alerts), (2, 6));
    assert_eq!(s2.mtbf_ms, Some((4 * 24 + 17) as f64 * 3_600_000.0));
    // Incident 3 is unresolved: service 2's TTR is incident 2's alone.
    assert_eq!(s2.durations[&Metric::TimeToResolve].count, 1);
    // Only incident 3 recorded when its impact began.
    assert_eq!(s2.durations[&Metric::TimeToDetect].count, 1);

    let by_team = report(&data(), GroupBy::Team, window());
    assert_eq!(by_team[0].key, GroupKey::Team(10));
    assert_eq!(by_team[0].incidents, 3);
    assert_eq!(by_team[1].incidents, 2);

    let by_sev = report(&data(), GroupBy::Severity, window());
    assert_eq!(by_sev[0].key, GroupKey::Severity("SEV1".into()));
    // SEV1: incidents 1 and 3, TTA 2 and 1 min → mean 90_000; one MTBF gap,
    // Mar 4 09:50 → Mar 11 07:00 = 6 d 21 h 10 min = 518_400 + 75_600 + 600 s.
    assert_eq!(
        by_sev[0].durations[&Metric::TimeToAcknowledge].mean_ms,
        90_000.0
    );
    assert_eq!(by_sev[0].mtbf_ms, Some(594_600_000.0));
    // SEV2 in the window: incidents 2 and 4 (5 is outside).
    assert_eq!(by_sev[1].incidents, 2);
    // A single incident has no time between failures.
    let one = report(&data()[..1], GroupBy::All, window());
    assert_eq!(one[0].mtbf_ms, None);
}

#[test]
fn weekly_trend_is_in_the_zone_asked_for() {
    let d = data();
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    // Incident 4, Sun Mar 17 23:30 UTC, is Mon Mar 18 00:30 in Berlin: week 12
    // there, week 11 in UTC. The window's end (Mar 18 00:00 UTC) is Mar 18 01:00
    // in Berlin, so Berlin's trend has a third week.
    let b = weekly_trend(&d, Metric::TimeToAcknowledge, berlin, window());
    let weeks: Vec<(i32, u32, u64)> = b
        .iter()
        .map(|w| (w.iso_year, w.iso_week, w.incidents))
        .collect();
    assert_eq!(weeks, [(2024, 10, 2), (2024, 11, 1), (2024, 12, 1)]);
    assert_eq!(
        b[0].starts_on,
        chrono::NaiveDate::from_ymd_opt(2024, 3, 4).unwrap()
    );
    // Week 10: TTA 2 and 10 min → mean 6 min.
    assert_eq!(b[0].summary.unwrap().mean_ms, 360_000.0);
    assert_eq!(b[2].summary.unwrap().p50_ms, 4 * MIN);

    let u = weekly_trend(&d, Metric::TimeToAcknowledge, Tz::UTC, window());
    let weeks: Vec<(u32, u64)> = u.iter().map(|w| (w.iso_week, w.incidents)).collect();
    assert_eq!(weeks, [(10, 2), (11, 2)]);
    // Week 11 in UTC: TTA 1 and 4 min → mean 150_000.
    assert_eq!(u[1].summary.unwrap().mean_ms, 150_000.0);
}

#[test]
fn weekly_trend_spans_iso_year_ends_and_keeps_empty_weeks() {
    // 2020 has an ISO week 53 (Dec 28 – Jan 3); Jan 4, 2021 starts 2021-W01.
    let w = Window {
        from: Utc.with_ymd_and_hms(2020, 12, 28, 0, 0, 0).unwrap(),
        to: Utc.with_ymd_and_hms(2021, 1, 18, 0, 0, 0).unwrap(),
    };
    let t = weekly_trend(&[], Metric::TimeToResolve, Tz::UTC, w);
    let weeks: Vec<(i32, u32, u64)> = t
        .iter()
        .map(|w| (w.iso_year, w.iso_week, w.incidents))
        .collect();
    assert_eq!(weeks, [(2020, 53, 0), (2021, 1, 0), (2021, 2, 0)]);
    assert!(t.iter().all(|w| w.summary.is_none()));
}

#[test]
fn rollups_agree_with_the_exact_report() {
    use std::collections::BTreeMap;
    let d = data();
    let mut rows: BTreeMap<RollupKey, Rollup> = BTreeMap::new();
    for f in d.iter().filter(|f| window().contains(f.declared_at)) {
        for key in RollupKey::of(f, Tz::UTC) {
            rows.entry(key).or_default().add(f);
        }
    }
    // Incident 2 (two services, two teams) adds to 5 rows: All, service 1, 2, team 10, 20.
    assert_eq!(RollupKey::of(&d[1], Tz::UTC).len(), 5);
    let mut all = Rollup::default();
    for (_, r) in rows.iter().filter(|(k, _)| k.group == GroupKey::All) {
        all.merge(r);
    }
    let from_rollup = all.report(GroupKey::All);
    let exact = &report(&d, GroupBy::All, window())[0];
    assert_eq!(
        (
            from_rollup.incidents,
            from_rollup.alerts,
            from_rollup.mtbf_ms
        ),
        (exact.incidents, exact.alerts, exact.mtbf_ms)
    );
    for (m, s) in &exact.durations {
        let h = from_rollup.durations[m];
        assert_eq!(
            (h.count, h.mean_ms, h.min_ms, h.max_ms),
            (s.count, s.mean_ms, s.min_ms, s.max_ms),
            "{m:?}"
        );
        for (est, x) in [
            (h.p50_ms, s.p50_ms),
            (h.p90_ms, s.p90_ms),
            (h.p95_ms, s.p95_ms),
        ] {
            assert!((est - x).abs() <= x / 64, "{m:?}: {est} vs {x}");
        }
    }
    // TTA p50 is 120_000 exactly; its bucket: 2^16 ≤ 120_000 < 2^17, width 2^11 = 2048,
    // sub ⌊(120_000 − 65_536)/2048⌋ = 26 → [118_784, 120_831], midpoint 118_784 + 1023.
    assert_eq!(
        from_rollup.durations[&Metric::TimeToAcknowledge].p50_ms,
        119_807
    );
    // Rows survive a trip through JSON (the store keeps them as text).
    let json = serde_json::to_string(&all).unwrap();
    assert_eq!(serde_json::from_str::<Rollup>(&json).unwrap(), all);
}

#[test]
fn facts_from_a_real_incident() {
    use crate::alert::{Alert, AlertSeverity, AlertStatus};
    use crate::change::{declare, transition, NewIncident};
    use crate::incident::Status;
    use crate::model::Service;
    use crate::settings::IncidentSettings;
    let s = IncidentSettings::default();
    let t0 = at(4, 10, 0);
    let req = NewIncident {
        title: "Checkout fails".into(),
        service_ids: vec![1, 2],
        occurred_at: Some(t0 - Duration::minutes(20)),
        ..Default::default()
    };
    let i = declare(&s, &req, 7, None, t0).unwrap();
    let (i, _, _) = transition(
        &s,
        &i,
        Status::Acknowledged,
        Some(1),
        t0 + Duration::minutes(3),
    )
    .unwrap();
    let (i, _, _) = transition(
        &s,
        &i,
        Status::Monitoring,
        Some(1),
        t0 + Duration::minutes(15),
    )
    .unwrap();
    let (i, _, _) = transition(
        &s,
        &i,
        Status::Resolved,
        Some(1),
        t0 + Duration::minutes(40),
    )
    .unwrap();
    // Reopened and resolved again: TTR runs to the last resolution, TTM keeps the first mitigation.
    let (i, _, _) = transition(
        &s,
        &i,
        Status::Investigating,
        Some(1),
        t0 + Duration::minutes(50),
    )
    .unwrap();
    let (i, _, _) = transition(
        &s,
        &i,
        Status::Resolved,
        Some(1),
        t0 + Duration::minutes(70),
    )
    .unwrap();
    let alert = |id, incident_id, first_seen| Alert {
        id,
        service_id: 1,
        incident_id,
        dedup_key: format!("k{id}"),
        status: AlertStatus::Resolved,
        severity: AlertSeverity::Error,
        summary: "5xx".into(),
        source: "lb".into(),
        integration: "webhook".into(),
        labels: Default::default(),
        details: serde_json::Value::Null,
        links: Vec::new(),
        count: 1,
        first_seen,
        last_seen: first_seen,
        resolved_at: None,
        suppressed_by: None,
    };
    // The first alert of this incident fired 12 min before the declaration; an
    // alert of another incident fired earlier still and does not count.
    let alerts = [
        alert(1, Some(7), t0 - Duration::minutes(12)),
        alert(2, Some(7), t0 + Duration::minutes(1)),
        alert(3, Some(8), t0 - Duration::minutes(30)),
    ];
    let service = |id, team_id| Service {
        id,
        name: format!("s{id}"),
        description: String::new(),
        team_id,
        created_at: t0,
        updated_at: t0,
    };
    let f = IncidentFacts::of(
        &i,
        &alerts,
        &[
            service(1, Some(5)),
            service(2, Some(5)),
            service(3, Some(9)),
        ],
    );
    assert_eq!(f.team_ids, [5]);
    assert_eq!(f.alert_count, 2);
    // began −20, detected −12 (first alert), declared 0, ack +3, mitigated +15, resolved +70.
    assert_eq!(f.duration_ms(Metric::TimeToDetect), Some(8 * MIN));
    assert_eq!(f.duration_ms(Metric::TimeToDeclare), Some(12 * MIN));
    assert_eq!(f.duration_ms(Metric::TimeToAcknowledge), Some(3 * MIN));
    assert_eq!(f.duration_ms(Metric::TimeToMitigate), Some(15 * MIN));
    assert_eq!(f.duration_ms(Metric::TimeToResolve), Some(70 * MIN));
    assert_eq!(f.started_at(), t0 - Duration::minutes(20));
}

#[test]
fn combined_facts_take_the_earliest_start_and_the_latest_end() {
    let d = data();
    let c = IncidentFacts::combine(&d[..3]).unwrap();
    assert_eq!(c.declared_at, at(4, 10, 0));
    assert_eq!(c.acknowledged_at, Some(at(4, 10, 2)));
    // Incident 3 is neither mitigated nor resolved, so the group is not.
    assert_eq!((c.mitigated_at, c.resolved_at), (None, None));
    let c = IncidentFacts::combine(&d[..2]).unwrap();
    assert_eq!(c.resolved_at, Some(at(6, 16, 0)));
    assert_eq!(c.service_ids, [1, 2]);
    assert_eq!(c.alert_count, 4);
    assert_eq!(IncidentFacts::combine(&[]), None);
}
