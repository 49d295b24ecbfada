//! How times, durations, days and statuses read on a public page. Pure
//! functions: the page's time zone comes in, no clock is read.

use chrono_tz::Tz;
use tocsin_core::status_page::uptime::DayUptime;
use tocsin_core::status_page::{ComponentStatus, Indicator};
use tocsin_core::time::Timestamp;

/// `12 Mar 2026, 14:05 CET`, in the page's zone.
pub(crate) fn when(t: Timestamp, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%-d %b %Y, %H:%M %Z")
        .to_string()
}

/// A machine-readable time for `<time datetime>`.
pub(crate) fn iso(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `under 1 min`, `20 min`, `1 h`, `1 h 5 min`, rounded to the nearest minute.
pub(crate) fn duration(secs: i64) -> String {
    if secs < 30 {
        return "under 1 min".into();
    }
    let minutes = (secs + 30) / 60;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// What one uptime bar says to people who cannot see its colour:
/// `12 Mar: 20 min major outage, 1 h partial outage`, `12 Mar: no downtime`,
/// `12 Mar: no data`.
pub(crate) fn day_label(d: &DayUptime) -> String {
    let date = d.date.format("%-d %b");
    let Some(worst) = d.worst else {
        return format!("{date}: no data");
    };
    let mut parts: Vec<String> = [
        (d.major_secs, ComponentStatus::MajorOutage),
        (d.partial_secs, ComponentStatus::PartialOutage),
        (d.degraded_secs, ComponentStatus::DegradedPerformance),
        (d.maintenance_secs, ComponentStatus::UnderMaintenance),
    ]
    .into_iter()
    .filter(|(secs, _)| *secs > 0)
    .map(|(secs, s)| format!("{} {}", duration(secs), s.label().to_lowercase()))
    .collect();
    // A stretch shorter than a second still marks the day (uptime.rs); say so.
    if parts.is_empty() && worst != ComponentStatus::Operational {
        parts.push(format!("under 1 min {}", worst.label().to_lowercase()));
    }
    if parts.is_empty() {
        format!("{date}: no downtime")
    } else {
        format!("{date}: {}", parts.join(", "))
    }
}

/// The shape that goes with a component status, so colour is never the only cue.
pub(crate) fn status_icon(s: ComponentStatus) -> &'static str {
    match s {
        ComponentStatus::Operational => "✓",
        ComponentStatus::DegradedPerformance => "▲",
        ComponentStatus::PartialOutage => "◆",
        ComponentStatus::MajorOutage => "✕",
        ComponentStatus::UnderMaintenance => "◷",
    }
}

/// The shape that goes with the page's overall indicator.
pub(crate) fn indicator_icon(i: Indicator) -> &'static str {
    match i {
        Indicator::None => "✓",
        Indicator::Maintenance => "◷",
        Indicator::Minor => "▲",
        Indicator::Major => "◆",
        Indicator::Critical => "✕",
    }
}

/// `#rrggbb` or nothing: the snapshot's colours come from the store already
/// parsed, but a stylesheet is no place to trust that.
pub(crate) fn hex_colour(s: &str) -> Option<&str> {
    let ok = s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(s)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn day(worst: Option<ComponentStatus>, major: i64, partial: i64) -> DayUptime {
        DayUptime {
            date: NaiveDate::from_ymd_opt(2026, 3, 12).unwrap(),
            worst,
            observed_secs: 86_400,
            major_secs: major,
            partial_secs: partial,
            degraded_secs: 0,
            maintenance_secs: 0,
        }
    }

    #[test]
    fn durations_round_to_minutes() {
        assert_eq!(duration(0), "under 1 min");
        assert_eq!(duration(29), "under 1 min");
        assert_eq!(duration(30), "1 min");
        assert_eq!(duration(1_200), "20 min");
        assert_eq!(duration(3_600), "1 h");
        assert_eq!(duration(3_900), "1 h 5 min");
        assert_eq!(duration(90_000), "25 h");
    }

    #[test]
    fn a_day_says_what_happened_worst_first() {
        assert_eq!(day_label(&day(None, 0, 0)), "12 Mar: no data");
        assert_eq!(
            day_label(&day(Some(ComponentStatus::Operational), 0, 0)),
            "12 Mar: no downtime"
        );
        assert_eq!(
            day_label(&day(Some(ComponentStatus::MajorOutage), 1_200, 3_600)),
            "12 Mar: 20 min major outage, 1 h partial outage"
        );
        assert_eq!(
            day_label(&day(Some(ComponentStatus::MajorOutage), 0, 0)),
            "12 Mar: under 1 min major outage"
        );
    }

    #[test]
    fn times_read_in_the_page_zone() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-12T13:05:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(when(t, chrono_tz::Europe::Berlin), "12 Mar 2026, 14:05 CET");
        assert_eq!(iso(t), "2026-03-12T13:05:00Z");
    }

    #[test]
    fn only_plain_hex_colours_reach_a_stylesheet() {
        assert_eq!(hex_colour("#0b3d91"), Some("#0b3d91"));
        for bad in ["#0b3d9", "0b3d91x", "#0b3d9;", "red", "#zzzzzz"] {
            assert_eq!(hex_colour(bad), None, "{bad}");
        }
    }
}
