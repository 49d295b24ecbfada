use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::token::{self, LinkPurpose, SubscriberClaim, TokenRefused, SALT_LEN};
use super::uptime::{self, daily, format_percent, spans_from_changes, Span};
use super::*;

fn t(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn names_round_trip_and_bad_ones_name_the_field() {
    for s in ComponentStatus::ALL {
        assert_eq!(ComponentStatus::parse("status", s.as_str()), Ok(s));
    }
    let e = ComponentStatus::parse("components[0].status", "down").unwrap_err();
    assert_eq!(e.field, "components[0].status");
    assert!(e.message.contains("major_outage"), "{}", e.message);
    assert_eq!(
        PostStatus::parse("status", PostKind::Incident, "monitoring"),
        Ok(PostStatus::Monitoring)
    );
    let e = PostStatus::parse("status", PostKind::Incident, "in_progress").unwrap_err();
    assert!(e.message.contains("investigating"), "{}", e.message);
    assert!(PostStatus::parse("status", PostKind::Maintenance, "resolved").is_err());
    assert_eq!(Impact::parse("impact", "critical"), Ok(Impact::Critical));
    assert_eq!(
        Impact::parse("impact", "maintenance").unwrap_err().field,
        "impact"
    );
    for p in PostStatus::INCIDENT
        .into_iter()
        .chain(PostStatus::MAINTENANCE)
    {
        assert_eq!(PostStatus::from_stored(p.as_str()), Some(p));
    }
}

#[test]
fn worst_orders_maintenance_below_any_outage() {
    use ComponentStatus::*;
    assert_eq!(Operational.worst(UnderMaintenance), UnderMaintenance);
    assert_eq!(
        UnderMaintenance.worst(DegradedPerformance),
        DegradedPerformance
    );
    assert_eq!(MajorOutage.worst(PartialOutage), MajorOutage);
    assert_eq!(PartialOutage.worst(Operational), PartialOutage);
}

#[test]
fn the_overall_indicator_is_the_worst_signal() {
    use ComponentStatus::*;
    assert_eq!(
        Indicator::overall([Operational, Operational], [], false),
        Indicator::None
    );
    assert_eq!(
        Indicator::overall([Operational], [], true),
        Indicator::Maintenance
    );
    assert_eq!(
        Indicator::overall([UnderMaintenance], [], false),
        Indicator::Maintenance
    );
    assert_eq!(
        Indicator::overall([DegradedPerformance], [], true),
        Indicator::Minor
    );
    assert_eq!(
        Indicator::overall([PartialOutage, DegradedPerformance], [], false),
        Indicator::Major
    );
    assert_eq!(
        Indicator::overall([Operational], [Impact::Critical], false),
        Indicator::Critical
    );
    assert_eq!(
        Indicator::overall([MajorOutage], [Impact::Minor], false),
        Indicator::Critical
    );
    assert_eq!(
        Indicator::overall([Operational], [Impact::None], false),
        Indicator::None
    );
    assert_eq!(Indicator::Major.description(), "Partial System Outage");
}

#[test]
fn slugs_domains_and_colours_parse_strictly() {
    assert_eq!(
        Slug::parse("slug", " acme-status ").unwrap().as_str(),
        "acme-status"
    );
    for bad in [
        "",
        "Acme",
        "-a",
        "a-",
        "a b",
        "a/b",
        "assets",
        &"x".repeat(65),
    ] {
        assert_eq!(Slug::parse("slug", bad).unwrap_err().field, "slug", "{bad}");
    }
    assert_eq!(
        Domain::parse("domain", "Status.Example.COM.")
            .unwrap()
            .as_str(),
        "status.example.com"
    );
    for bad in [
        "localhost",
        "https://status.example.com",
        "status.example.com:8080",
        "a..b",
        "-a.b",
        "a_b.com",
        "status.example.com/x",
    ] {
        assert_eq!(
            Domain::parse("domain", bad).unwrap_err().field,
            "domain",
            "{bad}"
        );
    }
    assert_eq!(Color::parse("c", "#1F6FEB").unwrap().hex(), "#1f6feb");
    assert_eq!(Color::parse("c", "#fff").unwrap().hex(), "#ffffff");
    for bad in ["1f6feb", "#12345", "#ggg", "red", "#1234567"] {
        assert!(Color::parse("c", bad).is_err(), "{bad}");
    }
    assert_eq!(
        Color::parse("c", "#ffff00").unwrap().text_on().hex(),
        "#1f2328"
    );
    assert_eq!(
        Color::parse("c", "#0b3d91").unwrap().text_on().hex(),
        "#ffffff"
    );
}

#[test]
fn severity_proposes_a_component_status() {
    assert_eq!(proposed_status(0), ComponentStatus::MajorOutage);
    assert_eq!(proposed_status(1), ComponentStatus::PartialOutage);
    assert_eq!(proposed_status(3), ComponentStatus::DegradedPerformance);
}

fn plan(status: PostStatus) -> MaintenancePlan {
    MaintenancePlan {
        status,
        scheduled_for: t("2026-03-01T02:00:00Z"),
        scheduled_until: t("2026-03-01T04:00:00Z"),
        remind_before: Some(Duration::minutes(60)),
        reminded: false,
        auto_start: true,
        auto_complete: true,
    }
}

#[test]
fn a_maintenance_reminds_then_starts_then_completes() {
    let p = plan(PostStatus::Scheduled);
    assert_eq!(
        p.next_step(),
        Some((MaintenanceStep::Remind, t("2026-03-01T01:00:00Z")))
    );
    let p = MaintenancePlan {
        reminded: true,
        ..p
    };
    assert_eq!(
        p.next_step(),
        Some((MaintenanceStep::Start, t("2026-03-01T02:00:00Z")))
    );
    let p = MaintenancePlan {
        status: PostStatus::InProgress,
        ..p
    };
    assert_eq!(
        p.next_step(),
        Some((MaintenanceStep::Complete, t("2026-03-01T04:00:00Z")))
    );
    let p = MaintenancePlan {
        status: PostStatus::Completed,
        ..p
    };
    assert_eq!(p.next_step(), None);
    let manual = MaintenancePlan {
        auto_start: false,
        auto_complete: false,
        remind_before: None,
        ..plan(PostStatus::Scheduled)
    };
    assert_eq!(manual.next_step(), None);
    let started = plan(PostStatus::Scheduled);
    assert!(started.reminder_still_useful(t("2026-03-01T01:30:00Z")));
    assert!(!started.reminder_still_useful(t("2026-03-01T02:00:00Z")));
    assert!(maintenance_window(t("2026-03-01T02:00:00Z"), t("2026-03-01T02:00:00Z")).is_err());
    assert_eq!(
        maintenance_window(t("2026-03-01T02:00:00Z"), t("2026-04-02T02:00:01Z"))
            .unwrap_err()
            .field,
        "scheduled_until"
    );
}

// A synthetic 90-day history in UTC, percentages worked out by hand.
#[test]
fn ninety_days_of_uptime_are_exact() {
    use ComponentStatus::*;
    let now = t("2026-03-31T12:00:00Z");
    // Created 2026-01-01 00:00, so the window (2026-01-01 .. 2026-03-31) is
    // fully observed: 89 full days plus 12 h today = 7,732,800 s.
    let changes = vec![
        (t("2026-01-01T00:00:00Z"), Operational),
        // 2026-01-10: 1 h major outage.
        (t("2026-01-10T10:00:00Z"), MajorOutage),
        (t("2026-01-10T11:00:00Z"), Operational),
        // 2026-02-05: 10 h partial outage (counts 3 h).
        (t("2026-02-05T08:00:00Z"), PartialOutage),
        (t("2026-02-05T18:00:00Z"), Operational),
        // 2026-02-20: 5 h degraded (counts nothing), 4 h maintenance (nothing).
        (t("2026-02-20T00:00:00Z"), DegradedPerformance),
        (t("2026-02-20T05:00:00Z"), UnderMaintenance),
        (t("2026-02-20T09:00:00Z"), Operational),
        // Across midnight: 23:00 on 03-14 to 01:00 on 03-15, major.
        (t("2026-03-14T23:00:00Z"), MajorOutage),
        (t("2026-03-15T01:00:00Z"), Operational),
    ];
    let days = daily(&spans_from_changes(&changes), Tz::UTC, now, 90);
    assert_eq!(days.len(), 90);
    assert_eq!(days[0].date, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
    assert_eq!(days[89].date, NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
    let observed: i64 = days.iter().map(|d| d.observed_secs).sum();
    assert_eq!(observed, 89 * 86_400 + 43_200);
    let by_date = |m: u32, d: u32| {
        days.iter()
            .find(|x| x.date == NaiveDate::from_ymd_opt(2026, m, d).unwrap())
            .unwrap()
    };
    assert_eq!(by_date(1, 10).worst, Some(MajorOutage));
    assert_eq!(by_date(1, 10).major_secs, 3_600);
    assert_eq!(by_date(1, 11).worst, Some(Operational));
    assert_eq!(by_date(2, 5).worst, Some(PartialOutage));
    assert_eq!(by_date(2, 5).partial_secs, 36_000);
    assert_eq!(by_date(2, 20).worst, Some(DegradedPerformance));
    assert_eq!(by_date(2, 20).maintenance_secs, 14_400);
    assert_eq!(by_date(2, 20).percent(), Some(100.0));
    assert_eq!(by_date(3, 14).major_secs, 3_600);
    assert_eq!(by_date(3, 15).major_secs, 3_600);
    assert_eq!(by_date(3, 15).worst, Some(MajorOutage));
    // Down: 1 h + 0.3 × 10 h + 2 h = 6 h = 21,600 s of 7,732,800 s.
    let p = uptime::percent(&days).unwrap();
    let expected = 100.0 * (1.0 - 21_600.0 / 7_732_800.0);
    assert!((p - expected).abs() < 1e-9, "{p} vs {expected}");
    assert_eq!(format_percent(p), "99.72");
    // One day: 1 h major of 24 h.
    assert_eq!(format_percent(by_date(1, 10).percent().unwrap()), "95.83");
}

#[test]
fn days_before_the_component_existed_have_no_data() {
    let now = t("2026-03-31T12:00:00Z");
    let spans = [Span {
        status: ComponentStatus::PartialOutage,
        from: t("2026-03-30T12:00:00Z"),
        until: None,
    }];
    let days = daily(&spans, Tz::UTC, now, 90);
    assert!(days[..88]
        .iter()
        .all(|d| d.worst.is_none() && d.observed_secs == 0));
    assert_eq!(days[88].observed_secs, 43_200);
    assert_eq!(days[89].observed_secs, 43_200);
    // 24 h partial = 7.2 h down of 24 h observed: 70 %.
    assert_eq!(format_percent(uptime::percent(&days).unwrap()), "70.00");
    assert_eq!(uptime::percent(&days[..10]), None);
}

#[test]
fn days_follow_the_page_zone_across_a_clock_change() {
    // Europe/Berlin springs forward on 2026-03-29: that day has 23 hours.
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let now = t("2026-03-30T22:00:00Z"); // 2026-03-31 00:00 in Berlin
    let spans = [Span {
        status: ComponentStatus::Operational,
        from: t("2026-03-01T00:00:00Z"),
        until: None,
    }];
    let days = daily(&spans, tz, now, 3);
    let dates: Vec<_> = days.iter().map(|d| d.date.to_string()).collect();
    assert_eq!(dates, ["2026-03-29", "2026-03-30", "2026-03-31"]);
    assert_eq!(days[0].observed_secs, 23 * 3_600);
    assert_eq!(days[1].observed_secs, 24 * 3_600);
    assert_eq!(days[2].observed_secs, 0);
    assert_eq!(
        uptime::start_of_day(tz, days[1].date),
        t("2026-03-29T22:00:00Z")
    );
}

#[test]
fn a_moment_of_outage_marks_the_day_but_rounds_down_not_up() {
    let now = t("2026-03-02T00:00:00Z");
    let changes = vec![
        (t("2026-03-01T00:00:00Z"), ComponentStatus::Operational),
        (t("2026-03-01T10:00:00Z"), ComponentStatus::MajorOutage),
        (t("2026-03-01T10:00:09Z"), ComponentStatus::Operational),
    ];
    let days = daily(&spans_from_changes(&changes), Tz::UTC, now, 2);
    assert_eq!(days[0].worst, Some(ComponentStatus::MajorOutage));
    assert_eq!(format_percent(days[0].percent().unwrap()), "99.98");
    assert_eq!(format_percent(99.99), "99.99");
    assert_eq!(format_percent(100.0), "100.00");
}

proptest! {
    // Whatever the history, each day's parts fit in the day and uptime is 0..=100.
    #[test]
    fn uptime_stays_in_bounds(cuts in proptest::collection::vec((0i64..90 * 86_400, 0usize..5), 1..40)) {
        let base = t("2026-01-01T00:00:00Z");
        let now = base + Duration::days(90);
        let mut cuts = cuts;
        cuts.sort();
        let changes: Vec<_> = cuts
            .iter()
            .map(|(s, k)| (base + Duration::seconds(*s), ComponentStatus::ALL[*k]))
            .collect();
        let days = daily(&spans_from_changes(&changes), Tz::UTC, now, 90);
        for d in &days {
            prop_assert!(d.observed_secs <= 86_400);
            prop_assert!(d.major_secs + d.partial_secs + d.degraded_secs + d.maintenance_secs <= d.observed_secs);
        }
        if let Some(p) = uptime::percent(&days) {
            prop_assert!((0.0..=100.0).contains(&p));
        }
    }
}

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn claim(purpose: LinkPurpose, expires_at: i64) -> SubscriberClaim {
    SubscriberClaim {
        purpose,
        subscriber_id: 12,
        expires_at,
        salt: [7; SALT_LEN],
    }
}

#[test]
fn subscriber_links_verify_and_forgeries_fail() {
    let now = t("2026-03-01T00:00:00Z");
    let c = claim(LinkPurpose::Unsubscribe, 0);
    let tok = token::sign(KEY, &c);
    assert!(tok
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)));
    assert_eq!(
        token::verify(KEY, &tok, LinkPurpose::Unsubscribe, now),
        Ok(c)
    );
    assert_eq!(
        token::verify(b"another key", &tok, LinkPurpose::Unsubscribe, now),
        Err(TokenRefused::BadSignature)
    );
    assert_eq!(
        token::verify(KEY, &tok, LinkPurpose::Confirm, now),
        Err(TokenRefused::WrongPurpose)
    );
    // Someone else's subscriber id under our signature: the MAC no longer fits.
    let (payload, tag) = tok.split_once('.').unwrap();
    let mut bytes = b64_decode(payload);
    bytes[9] ^= 1;
    let forged = format!("{}.{tag}", b64_encode(&bytes));
    assert_eq!(
        token::verify(KEY, &forged, LinkPurpose::Unsubscribe, now),
        Err(TokenRefused::BadSignature)
    );
    for junk in ["", "abc", "a.b", &tok[..tok.len() - 3]] {
        assert!(
            token::verify(KEY, junk, LinkPurpose::Unsubscribe, now).is_err(),
            "{junk}"
        );
    }
    let confirm = claim(LinkPurpose::Confirm, now.timestamp() + 60);
    let tok = token::sign(KEY, &confirm);
    assert!(token::verify(KEY, &tok, LinkPurpose::Confirm, now).is_ok());
    assert_eq!(
        token::verify(KEY, &tok, LinkPurpose::Confirm, now + Duration::seconds(61)),
        Err(TokenRefused::Expired)
    );
}

#[test]
fn webhook_secrets_differ_per_subscriber_and_salt() {
    let a = token::webhook_secret(KEY, 1, &[1; SALT_LEN]);
    assert!(a.starts_with("whsec_") && a.len() == 6 + 64);
    assert_eq!(a, token::webhook_secret(KEY, 1, &[1; SALT_LEN]));
    assert_ne!(a, token::webhook_secret(KEY, 2, &[1; SALT_LEN]));
    assert_ne!(a, token::webhook_secret(KEY, 1, &[2; SALT_LEN]));
}

fn b64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn b64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
