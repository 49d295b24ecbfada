//! iCalendar (RFC 5545) feeds of on-call shifts, as a pure renderer.
//!
//! A feed is one calendar: every shift of one schedule ("On call: Platform
//! primary"), or every shift of one user across schedules ("My on-call
//! shifts"). Calendar apps subscribe to it by URL and poll it; each shift is a
//! `VEVENT` whose `UID` is a function of the schedule, the user and the start,
//! so a re-rendered feed updates the events already in the user's calendar
//! instead of duplicating them.
//!
//! What calendar apps rely on, and this module guarantees:
//! - lines end in CRLF and are folded so no line is longer than 75 octets; a
//!   fold never splits a UTF-8 sequence, continuation lines start with one
//!   space, and a folded line never ends in whitespace (some readers trim it);
//! - TEXT values escape `\`, `;`, `,` and newlines (`\n`), so a user-supplied
//!   name cannot break the structure;
//! - all times are UTC (`…Z`), so no `VTIMEZONE` is needed.
//!
//! Names are display labels: the renderer trims them, turns any run of
//! whitespace or control characters within a line into one space, and keeps
//! line breaks (as `\n`) between non-empty lines.

use crate::schedule::Shift;
use crate::time::Timestamp;

/// Longest content line in octets, CRLF excluded (RFC 5545 §3.1).
pub const MAX_LINE_OCTETS: usize = 75;

/// `PRODID` of every feed.
pub const PRODID: &str = "-//Tocsin//On-call//EN";

/// How often calendar apps are asked to refresh a feed.
pub const REFRESH: &str = "PT1H";

/// One calendar feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// Calendar name shown by apps (`X-WR-CALNAME`), e.g. "On call: Platform primary".
    pub name: String,
}

/// One shift in a feed, with the names it is shown with.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedShift {
    /// The shift (its `user_id` is the user on call).
    pub shift: Shift,
    /// Schedule the shift belongs to.
    pub schedule_id: i64,
    /// Schedule name, as shown.
    pub schedule_name: String,
    /// Name of the user on call, as shown.
    pub user_name: String,
    /// Name of the layer the shift comes from, if known (ignored for overrides).
    pub layer_name: Option<String>,
}

/// The feed as an iCalendar document (CRLF line endings, folded lines).
///
/// `now` is the `DTSTAMP` of every event. Events come out in the order given.
pub fn calendar(feed: &Feed, events: &[FeedShift], now: Timestamp) -> String {
    let mut out = String::new();
    let mut line = |content: &str| fold_into(&mut out, content);
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line(&format!("PRODID:{PRODID}"));
    line("CALSCALE:GREGORIAN");
    line("METHOD:PUBLISH");
    line(&format!("X-WR-CALNAME:{}", text(&clean_name(&feed.name))));
    line(&format!("REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}"));
    line(&format!("X-PUBLISHED-TTL:{REFRESH}"));
    let stamp = utc(now);
    for e in events {
        let s = &e.shift;
        line("BEGIN:VEVENT");
        line(&format!(
            "UID:{}",
            uid(e.schedule_id, s.user_id, s.starts_at)
        ));
        line(&format!("DTSTAMP:{stamp}"));
        line(&format!("DTSTART:{}", utc(s.starts_at)));
        line(&format!("DTEND:{}", utc(s.ends_at)));
        line(&format!("SUMMARY:{}", text(&summary(e))));
        line(&format!("DESCRIPTION:{}", text(&description(e))));
        line("TRANSP:TRANSPARENT");
        line("END:VEVENT");
    }
    line("END:VCALENDAR");
    out
}

/// The event's `UID`: stable across renders for the same schedule, user and start.
pub fn uid(schedule_id: i64, user_id: i64, starts_at: Timestamp) -> String {
    format!(
        "shift-{schedule_id}-{user_id}-{}@tocsin",
        starts_at.format("%Y%m%dT%H%M%SZ")
    )
}

/// The event's summary before escaping: "On call: <user> — <schedule>"; a
/// name that is empty once cleaned shows as "user <id>" / "schedule <id>".
pub fn summary(e: &FeedShift) -> String {
    let or = |name: &str, kind: &str, id: i64| match clean_name(name) {
        n if n.is_empty() => format!("{kind} {id}"),
        n => n,
    };
    format!(
        "On call: {} — {}",
        or(&e.user_name, "user", e.shift.user_id),
        or(&e.schedule_name, "schedule", e.schedule_id)
    )
}

/// The event's description before escaping: which layer, or that it is an override.
pub fn description(e: &FeedShift) -> String {
    match e.shift.layer {
        None => "Override".to_string(),
        Some(i) => match e.layer_name.as_deref().map(clean_name) {
            Some(name) if !name.is_empty() => format!("Layer: {name}"),
            _ => format!("Layer {}", i + 1),
        },
    }
}

/// A name as shown: lines trimmed, whitespace and control characters within a
/// line collapsed to one space, empty lines dropped, lines joined by `\n`.
pub fn clean_name(name: &str) -> String {
    let mut lines = Vec::new();
    for raw in name.split(['\r', '\n']) {
        let mut line = String::new();
        for word in raw
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty())
        {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines.join("\n")
}

/// A TEXT value escaped (RFC 5545 §3.3.11): `\` `;` `,` and newlines.
pub fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Formats an instant as a UTC DATE-TIME (`YYYYMMDDTHHMMSSZ`).
fn utc(t: Timestamp) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Appends one content line, folded to [`MAX_LINE_OCTETS`], each line ending in CRLF.
///
/// Breaks only at char boundaries, so no UTF-8 sequence is split; when a break
/// would leave a line ending in a space or tab, it moves before that whitespace
/// (unless the line would be left with nothing else).
pub fn fold_into(out: &mut String, content: &str) {
    let mut rest = content;
    let mut first = true;
    loop {
        // A continuation line spends one octet on its leading space.
        let room = if first {
            MAX_LINE_OCTETS
        } else {
            MAX_LINE_OCTETS - 1
        };
        if !first {
            out.push(' ');
        }
        if rest.len() <= room {
            out.push_str(rest);
            out.push_str("\r\n");
            return;
        }
        let mut cut = room;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let trimmed = rest[..cut].trim_end_matches([' ', '\t']).len();
        if trimmed > 0 {
            cut = trimmed;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n");
        rest = &rest[cut..];
        first = false;
    }
}

/// One content line folded (see [`fold_into`]).
pub fn fold(content: &str) -> String {
    let mut out = String::new();
    fold_into(&mut out, content);
    out
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use chrono::{Duration, NaiveDateTime, TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn shift(user_id: i64, starts_at: Timestamp, hours: i64, layer: Option<usize>) -> Shift {
        Shift {
            user_id,
            starts_at,
            ends_at: starts_at + Duration::hours(hours),
            layer,
        }
    }

    fn event(schedule_id: i64, schedule: &str, user: &str, shift: Shift) -> FeedShift {
        FeedShift {
            shift,
            schedule_id,
            schedule_name: schedule.to_string(),
            user_name: user.to_string(),
            layer_name: None,
        }
    }

    /// The physical lines of a document; panics unless every one ends in CRLF.
    fn physical_lines(doc: &str) -> Vec<&str> {
        assert!(doc.ends_with("\r\n"), "document ends in CRLF");
        let lines: Vec<&str> = doc[..doc.len() - 2].split("\r\n").collect();
        for l in &lines {
            assert!(
                !l.contains('\n') && !l.contains('\r'),
                "bare CR or LF in {l:?}"
            );
        }
        lines
    }

    /// Unfolds one folded content line (the inverse of `fold`), checking each
    /// physical line's length and continuation marker.
    fn unfold(folded: &str) -> String {
        let mut out = String::new();
        for (i, l) in physical_lines(folded).into_iter().enumerate() {
            assert!(l.len() <= MAX_LINE_OCTETS, "{} octets: {l:?}", l.len());
            if i == 0 {
                out.push_str(l);
            } else {
                out.push_str(
                    l.strip_prefix(' ')
                        .expect("continuation starts with a space"),
                );
            }
        }
        out
    }

    /// The inverse of `text`.
    fn unescape(v: &str) -> String {
        let mut out = String::new();
        let mut chars = v.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') | Some('N') => out.push('\n'),
                    Some(c) => out.push(c),
                    None => panic!("dangling backslash in {v:?}"),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[derive(Debug, PartialEq)]
    struct Parsed {
        uid: String,
        start: Timestamp,
        end: Timestamp,
        summary: String,
        description: String,
    }

    /// The calendar name and events as a real iCalendar parser reads them.
    fn parse(doc: &str) -> (String, Vec<Parsed>) {
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
        let name = unescape(&prop(&cal.properties, "X-WR-CALNAME"));
        assert_eq!(prop(&cal.properties, "VERSION"), "2.0");
        assert_eq!(prop(&cal.properties, "PRODID"), PRODID);
        let events = cal
            .events
            .iter()
            .map(|e| Parsed {
                uid: prop(&e.properties, "UID"),
                start: time(prop(&e.properties, "DTSTART")),
                end: time(prop(&e.properties, "DTEND")),
                summary: unescape(&prop(&e.properties, "SUMMARY")),
                description: unescape(&prop(&e.properties, "DESCRIPTION")),
            })
            .collect();
        (name, events)
    }

    fn expected(events: &[FeedShift]) -> Vec<Parsed> {
        events
            .iter()
            .map(|e| Parsed {
                uid: uid(e.schedule_id, e.shift.user_id, e.shift.starts_at),
                start: e.shift.starts_at,
                end: e.shift.ends_at,
                summary: summary(e),
                description: description(e),
            })
            .collect()
    }

    #[test]
    fn a_short_line_is_not_folded() {
        assert_eq!(fold("VERSION:2.0"), "VERSION:2.0\r\n");
        let exact = "a".repeat(MAX_LINE_OCTETS);
        assert_eq!(fold(&exact), format!("{exact}\r\n"));
    }

    #[test]
    fn a_long_line_folds_at_75_octets_with_one_space() {
        let line = "b".repeat(200);
        let folded = fold(&line);
        let lines = physical_lines(&folded);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), 75);
        assert_eq!(lines[1].len(), 75);
        assert!(lines[1].starts_with(" b"));
        assert_eq!(unfold(&folded), line);
    }

    #[test]
    fn a_fold_never_splits_a_multi_byte_character() {
        // Each multi-byte character placed so it straddles octet 75 (and the
        // 74-octet continuation boundary) at every offset it can.
        for ch in ['é', '€', '😀'] {
            for pad in 70..76 {
                let line = format!("{}{}", "a".repeat(pad), ch.to_string().repeat(40));
                let folded = fold(&line);
                // `physical_lines` works on &str, so every line is valid UTF-8
                // on its own only if no fold split a character: check the bytes.
                for l in folded.as_bytes().split(|&b| b == b'\n') {
                    assert!(std::str::from_utf8(l).is_ok(), "{ch} pad {pad}");
                }
                let first = physical_lines(&folded)[0];
                assert!(first.len() <= 75 && first.len() > 75 - ch.len_utf8());
                assert_eq!(unfold(&folded), line, "{ch} pad {pad}");
            }
        }
    }

    #[test]
    fn a_folded_line_never_ends_in_whitespace() {
        // A space at octet 75: the break moves before it.
        let line = format!("{} {}", "c".repeat(74), "d".repeat(100));
        let folded = fold(&line);
        for l in physical_lines(&folded) {
            assert!(!l.ends_with(' '), "{l:?}");
        }
        assert_eq!(physical_lines(&folded)[0], "c".repeat(74));
        assert_eq!(unfold(&folded), line);
    }

    #[test]
    fn text_escapes_backslash_semicolon_comma_and_newlines() {
        assert_eq!(text(r"a\b"), r"a\\b");
        assert_eq!(text("a;b,c"), r"a\;b\,c");
        assert_eq!(text("a\nb\r\nc\rd"), r"a\nb\nc\nd");
        assert_eq!(text("plain: text — ok"), "plain: text — ok");
        assert_eq!(unescape(&text("x\\;,\ny")), "x\\;,\ny");
    }

    #[test]
    fn names_are_trimmed_and_whitespace_collapsed_but_lines_kept() {
        assert_eq!(clean_name("  Ada \t Lovelace  "), "Ada Lovelace");
        assert_eq!(clean_name("Ops\r\n\r\n  Team \n"), "Ops\nTeam");
        assert_eq!(clean_name("a\u{7}b\u{3000}c"), "a b c");
        assert_eq!(clean_name(" \n\t "), "");
    }

    #[test]
    fn the_uid_is_stable_and_tells_schedule_user_and_start_apart() {
        let t = at(2026, 3, 1, 9, 0);
        assert_eq!(uid(7, 42, t), "shift-7-42-20260301T090000Z@tocsin");
        assert_eq!(uid(7, 42, t), uid(7, 42, t));
        assert_ne!(uid(7, 42, t), uid(8, 42, t));
        assert_ne!(uid(7, 42, t), uid(7, 43, t));
        assert_ne!(uid(7, 42, t), uid(7, 42, t + Duration::minutes(1)));
    }

    #[test]
    fn the_calendar_has_the_headers_and_one_event_per_shift() {
        let now = at(2026, 3, 1, 8, 30);
        let mut e = event(
            7,
            "Platform primary",
            "Ada",
            shift(1, at(2026, 3, 1, 9, 0), 24, Some(0)),
        );
        e.layer_name = Some("Weekdays".into());
        let o = event(
            7,
            "Platform primary",
            "Bob",
            shift(2, at(2026, 3, 2, 9, 0), 2, None),
        );
        let doc = calendar(
            &Feed {
                name: "On call: Platform primary".into(),
            },
            &[e, o],
            now,
        );
        let lines = physical_lines(&doc);
        assert_eq!(
            lines[..8],
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//Tocsin//On-call//EN",
                "CALSCALE:GREGORIAN",
                "METHOD:PUBLISH",
                "X-WR-CALNAME:On call: Platform primary",
                "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
                "X-PUBLISHED-TTL:PT1H",
            ]
        );
        assert_eq!(lines.last(), Some(&"END:VCALENDAR"));
        assert_eq!(
            lines[8..18],
            [
                "BEGIN:VEVENT",
                "UID:shift-7-1-20260301T090000Z@tocsin",
                "DTSTAMP:20260301T083000Z",
                "DTSTART:20260301T090000Z",
                "DTEND:20260302T090000Z",
                "SUMMARY:On call: Ada — Platform primary",
                "DESCRIPTION:Layer: Weekdays",
                "TRANSP:TRANSPARENT",
                "END:VEVENT",
                "BEGIN:VEVENT",
            ]
        );
        assert!(lines.contains(&"DESCRIPTION:Override"));
        assert_eq!(lines.iter().filter(|l| **l == "BEGIN:VEVENT").count(), 2);
    }

    #[test]
    fn an_empty_name_shows_the_id() {
        let e = event(4, " \n ", "", shift(9, at(2026, 1, 1, 0, 0), 1, None));
        assert_eq!(summary(&e), "On call: user 9 — schedule 4");
    }

    #[test]
    fn a_layer_without_a_name_is_numbered_from_one() {
        let e = event(1, "s", "u", shift(1, at(2026, 1, 1, 0, 0), 1, Some(2)));
        assert_eq!(description(&e), "Layer 3");
    }

    #[test]
    fn a_name_cannot_inject_properties_or_components() {
        let evil = "Eve\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:pwned;x=1,2";
        let e = event(3, evil, evil, shift(5, at(2026, 6, 1, 0, 0), 8, None));
        let doc = calendar(
            &Feed { name: evil.into() },
            std::slice::from_ref(&e),
            at(2026, 5, 1, 0, 0),
        );
        let lines = physical_lines(&doc);
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("BEGIN:VEVENT"))
                .count(),
            1
        );
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("END:VEVENT")).count(),
            1
        );
        assert_eq!(lines.iter().filter(|l| l.starts_with("SUMMARY")).count(), 1);
        let (name, events) = parse(&doc);
        assert_eq!(name, clean_name(evil));
        assert_eq!(events, expected(&[e]));
    }

    #[test]
    fn awkward_names_round_trip_through_an_icalendar_parser() {
        let long = "Site Reliability Engineering — Europe, Middle East; Africa ".repeat(8);
        let names = [
            "Ada, Countess of Lovelace",
            "semi;colon;schedule",
            "two\nlines",
            "back\\slash",
            "🚨 Pager 🔥 duty 🧯",
            "日本語のスケジュール",
            long.as_str(),
            "Zoë \u{301}combining",
        ];
        let mut events = Vec::new();
        let mut t = at(2026, 3, 28, 9, 0);
        for (i, user) in names.iter().enumerate() {
            for (j, sched) in names.iter().enumerate() {
                let layer = if (i + j) % 3 == 0 { None } else { Some(j % 4) };
                let mut e = event(j as i64 + 1, sched, user, shift(i as i64 + 1, t, 7, layer));
                e.layer_name = (i % 2 == 0).then(|| names[(i + j) % names.len()].to_string());
                events.push(e);
                t += Duration::hours(7);
            }
        }
        let doc = calendar(&Feed { name: long.clone() }, &events, at(2026, 3, 1, 0, 0));
        for l in physical_lines(&doc) {
            assert!(l.len() <= MAX_LINE_OCTETS, "{} octets: {l:?}", l.len());
        }
        let (name, parsed) = parse(&doc);
        assert_eq!(name, clean_name(&long));
        assert_eq!(parsed.len(), names.len() * names.len());
        assert_eq!(parsed, expected(&events));
    }

    #[test]
    fn a_re_render_keeps_every_uid() {
        let e = [event(1, "s", "u", shift(9, at(2026, 1, 1, 0, 0), 1, None))];
        let feed = Feed { name: "f".into() };
        let (_, a) = parse(&calendar(&feed, &e, at(2026, 1, 1, 0, 0)));
        let (_, b) = parse(&calendar(&feed, &e, at(2026, 2, 1, 0, 0)));
        assert_eq!(a[0].uid, b[0].uid);
    }

    fn name() -> impl Strategy<Value = String> {
        // Printable ASCII, the characters TEXT must escape, whitespace and line
        // breaks, multi-byte letters and emoji; up to several folds long.
        let ch = prop_oneof![
            4 => proptest::char::range(' ', '~'),
            1 => prop::sample::select(vec![',', ';', '\\', '\n', '\r', '\t', ':', '"']),
            1 => prop::sample::select(vec!['é', 'ß', '€', '—', '日', '😀', '🚨', '\u{301}', '\u{3000}']),
        ];
        prop::collection::vec(ch, 0..200).prop_map(|v| v.into_iter().collect())
    }

    fn feed_shift() -> impl Strategy<Value = FeedShift> {
        (
            1..1_000_000i64,
            1..1_000_000i64,
            0..(60 * 24 * 365 * 5i64),
            1..(60 * 24 * 30i64),
            prop::option::of(0..20usize),
            name(),
            name(),
            prop::option::of(name()),
        )
            .prop_map(
                |(schedule_id, user_id, start, len, layer, sched, user, layer_name)| {
                    let starts_at = at(2024, 1, 1, 0, 0) + Duration::minutes(start);
                    FeedShift {
                        shift: Shift {
                            user_id,
                            starts_at,
                            ends_at: starts_at + Duration::minutes(len),
                            layer,
                        },
                        schedule_id,
                        schedule_name: sched,
                        user_name: user,
                        layer_name,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_shifts_and_names_round_trip_in_lines_of_at_most_75_octets(
            feed_name in name(),
            events in prop::collection::vec(feed_shift(), 0..12),
            now_min in 0..(60 * 24 * 365 * 5i64),
        ) {
            let doc = calendar(&Feed { name: feed_name.clone() }, &events, at(2024, 1, 1, 0, 0) + Duration::minutes(now_min));
            let lines = physical_lines(&doc);
            for (i, l) in lines.iter().enumerate() {
                prop_assert!(l.len() <= MAX_LINE_OCTETS, "{} octets: {:?}", l.len(), l);
                let folded = lines.get(i + 1).is_some_and(|next| next.starts_with(' '));
                prop_assert!(!(folded && l.ends_with(' ')), "folded after a space: {:?}", l);
            }
            let (name, parsed) = parse(&doc);
            // The parser drops colons at the start of a value (`X-WR-CALNAME::x`
            // reads as "x"); RFC 5545 TEXT has no escape for them, so the
            // rendered line is checked as written instead.
            let want = text(&clean_name(&feed_name));
            let line = format!("\r\nX-WR-CALNAME:{}\r\n", want);
            prop_assert!(doc.replace("\r\n ", "").contains(&line));
            let cleaned = clean_name(&feed_name);
            prop_assert_eq!(name.as_str(), cleaned.trim_start_matches(':'));
            prop_assert_eq!(parsed, expected(&events));
        }

        #[test]
        fn folding_any_line_unfolds_to_it(line in name()) {
            let line: String = line.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            prop_assert_eq!(unfold(&fold(&line)), line);
        }
    }
}
