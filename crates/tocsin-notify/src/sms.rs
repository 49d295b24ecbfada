//! Text for phones: an SMS body that fits one segment where it can, and the
//! TwiML a call reads aloud.
//!
//! A segment holds 160 characters of the GSM 03.38 alphabet (those of its
//! extension table count twice); one character outside it makes the whole
//! message UCS-2, 70 characters a segment (67 when split). Typographic
//! punctuation that alert titles often carry (… ’ “ ” – —) is replaced with its
//! plain form first, so an otherwise plain title stays in GSM-7.

use crate::Message;

/// Septets in one GSM-7 segment.
pub const GSM_SEGMENT: usize = 160;

/// Characters a UCS-2 text may have: three concatenated segments of 67 (201),
/// kept at 160 like the short text it is made from.
pub const UCS2_MAX: usize = 160;

/// Twilio refuses inline TwiML longer than this (error 32018).
pub const MAX_TWIML: usize = 4000;

/// Characters of a title a call reads.
const SPOKEN_TITLE: usize = 200;

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Septets `c` takes in GSM-7, or `None` when it is not in the alphabet.
fn septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Septets `text` takes, or `None` when it needs UCS-2.
pub fn gsm_len(text: &str) -> Option<usize> {
    text.chars().map(septets).sum()
}

/// Typographic punctuation replaced with the plain characters GSM-7 has.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '…' => out.push_str("..."),
            '‘' | '’' | '‚' | '′' => out.push('\''),
            '“' | '”' | '„' | '″' => out.push('"'),
            '–' | '—' | '‐' | '‑' | '−' => out.push('-'),
            '\u{a0}' | '\u{2009}' | '\u{202f}' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `text` cut so it takes at most `max` units (septets, or characters for
/// UCS-2), ending in "..." when cut.
fn fit(text: &str, max: usize, gsm: bool) -> String {
    let cost = |c: char| if gsm { septets(c).unwrap_or(1) } else { 1 };
    if text.chars().map(cost).sum::<usize>() <= max {
        return text.to_string();
    }
    let budget = max.saturating_sub(3);
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + cost(c) > budget {
            break;
        }
        used += cost(c);
        out.push(c);
    }
    format!("{}...", out.trim_end())
}

/// The SMS body: the message's short text and, for an incident when replies are
/// on, "Reply 12 ack / 12 resolve"; one GSM-7 segment when the text is GSM-7.
pub fn sms_body(message: &Message, reply_hint: bool) -> String {
    let text = plain(&message.short);
    let hint = match (&message.incident, reply_hint) {
        (Some(i), true) => format!(" Reply {n} ack / {n} resolve", n = i.number),
        _ => String::new(),
    };
    let gsm = gsm_len(&text).is_some();
    let max = if gsm { GSM_SEGMENT } else { UCS2_MAX };
    // The hint is ASCII: its septets are its characters.
    let room = max - hint.chars().count();
    format!("{}{hint}", fit(&text, room, gsm))
}

/// Escapes text for XML content and attribute values; tabs and line ends become
/// spaces, since the text is read aloud or shown on one line.
pub fn xml_escape(s: &str) -> String {
    crate::escape::xml(&s.replace(['\t', '\n', '\r'], " "))
}

/// What a call says, once: the incident in words, or the message's short text.
fn spoken(message: &Message) -> String {
    match &message.incident {
        Some(i) => {
            let title: String = plain(&i.title).chars().take(SPOKEN_TITLE).collect();
            let level = i
                .level
                .map(|l| format!(" Escalation level {l}."))
                .unwrap_or_default();
            format!(
                "Tocsin alert. Incident {}, {} urgency: {title}.{level}",
                i.number,
                i.urgency.as_str()
            )
        }
        // Codes, tests, shift notices: the voice template's words (a code
        // digit by digit, no URLs).
        None => plain(&message.long),
    }
}

/// The TwiML of a call: the message read `repeat` times with a pause between,
/// then how to act on it. With `keypad` (the URL of Tocsin's
/// `/hooks/twilio/voice`) and an incident, the reading is inside a `<Gather>`
/// that offers 4 to acknowledge and 6 to resolve and posts the key there. Every
/// text is escaped; at most [`MAX_TWIML`] characters (fewer repeats when a long
/// title would pass it).
pub fn spoken_twiml(
    message: &Message,
    repeat: u8,
    reply_hint: bool,
    keypad: Option<&str>,
) -> String {
    let said = xml_escape(&spoken(message));
    let outro = match (&message.incident, reply_hint) {
        (Some(i), true) => format!(
            "To acknowledge, reply {n} ack to the text message, or use the link in your other notifications.",
            n = i.number
        ),
        (Some(_), false) => {
            "To acknowledge, use the link in your other notifications.".to_string()
        }
        (None, _) => String::new(),
    };
    let outro = if outro.is_empty() {
        String::new()
    } else {
        format!("<Say>{}</Say>", xml_escape(&outro))
    };
    let gather = match (&message.incident, keypad) {
        (Some(i), Some(url)) => Some(format!(
            "<Gather numDigits=\"1\" timeout=\"10\" method=\"POST\" action=\"{}\">",
            xml_escape(&format!("{url}?incident={}", i.id))
        )),
        _ => None,
    };
    let mut times = repeat.max(1);
    loop {
        let mut body = String::new();
        for n in 0..times {
            if n > 0 {
                body.push_str("<Pause length=\"1\"/>");
            }
            body.push_str(&format!("<Say>{said}</Say>"));
        }
        if let Some(open) = &gather {
            body =
                format!("{open}{body}<Say>Press 4 to acknowledge, or 6 to resolve.</Say></Gather>");
        }
        let twiml = format!("<Response>{body}{outro}<Say>Goodbye.</Say></Response>");
        if twiml.chars().count() <= MAX_TWIML || times == 1 {
            return twiml;
        }
        times -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IncidentSummary, Message};
    use tocsin_core::escalation::Urgency;

    fn page(title: &str) -> Message {
        Message::for_incident(IncidentSummary {
            id: 7,
            number: 12,
            title: title.into(),
            urgency: Urgency::High,
            level: None,
            links: vec![],
            actions: vec![],
        })
    }

    #[test]
    fn a_short_page_gets_the_reply_hint() {
        assert_eq!(
            sms_body(&page("Database down"), true),
            "Tocsin #12 high: Database down Reply 12 ack / 12 resolve"
        );
        assert_eq!(
            sms_body(&page("Database down"), false),
            "Tocsin #12 high: Database down"
        );
    }

    #[test]
    fn a_long_gsm_page_is_cut_to_one_segment_keeping_the_hint() {
        let body = sms_body(&page(&"x".repeat(300)), true);
        assert_eq!(gsm_len(&body), Some(160));
        assert!(body.ends_with("x... Reply 12 ack / 12 resolve"), "{body}");
        // The ellipsis the short text was cut with became three dots: still GSM-7.
        assert!(!body.contains('…'));
    }

    #[test]
    fn extension_characters_count_twice() {
        let body = sms_body(&page(&"{".repeat(100)), true);
        let n = gsm_len(&body).unwrap();
        assert!((158..=160).contains(&n), "{n}: {body}");
        assert_eq!(gsm_len("€"), Some(2));
        assert_eq!(gsm_len("ü"), Some(1));
        assert_eq!(gsm_len("ç"), None);
    }

    #[test]
    fn typographic_punctuation_stays_gsm() {
        let body = sms_body(&page("“Checkout” – it’s down…"), true);
        assert!(body.contains("\"Checkout\" - it's down..."), "{body}");
        assert!(gsm_len(&body).is_some());
    }

    #[test]
    fn non_gsm_text_is_kept_whole_up_to_160_characters() {
        let body = sms_body(&page("Сервер базы данных недоступен"), true);
        assert!(gsm_len(&body).is_none());
        assert!(body.contains("Сервер базы данных недоступен"));
        let long = sms_body(&page(&"数".repeat(300)), true);
        assert_eq!(long.chars().count(), UCS2_MAX);
        assert!(long.ends_with("... Reply 12 ack / 12 resolve"));
    }

    #[test]
    fn on_call_notices_have_no_hint() {
        let m = Message {
            subject: "s".into(),
            short: "On call for Primary from 09:00".into(),
            long: "You are on call for Primary from nine o'clock.".into(),
            html: None,
            incident: None,
        };
        assert_eq!(sms_body(&m, true), "On call for Primary from 09:00");
        // A call reads the voice template's words (`long`), not the text message's.
        assert_eq!(
            spoken_twiml(&m, 1, true, Some("https://t.example/hooks/twilio/voice")),
            "<Response><Say>You are on call for Primary from nine o&apos;clock.</Say><Say>Goodbye.</Say></Response>"
        );
    }

    #[test]
    fn twiml_escapes_and_repeats() {
        let t = spoken_twiml(&page("<b>A & B</b> \"x\"\u{1}"), 2, true, None);
        let said = "<Say>Tocsin alert. Incident 12, high urgency: &lt;b&gt;A &amp; B&lt;/b&gt; &quot;x&quot;.</Say>";
        assert_eq!(
            t,
            format!(
                "<Response>{said}<Pause length=\"1\"/>{said}<Say>To acknowledge, reply 12 ack to the \
                 text message, or use the link in your other notifications.</Say><Say>Goodbye.</Say></Response>"
            )
        );
    }

    #[test]
    fn with_a_keypad_the_reading_is_gathered() {
        let t = spoken_twiml(
            &page("Database down"),
            1,
            true,
            Some("https://t.example/hooks/twilio/voice"),
        );
        assert_eq!(
            t,
            "<Response><Gather numDigits=\"1\" timeout=\"10\" method=\"POST\" \
             action=\"https://t.example/hooks/twilio/voice?incident=7\"><Say>Tocsin alert. \
             Incident 12, high urgency: Database down.</Say><Say>Press 4 to acknowledge, or 6 to \
             resolve.</Say></Gather><Say>To acknowledge, reply 12 ack to the text message, or use \
             the link in your other notifications.</Say><Say>Goodbye.</Say></Response>"
        );
    }

    #[test]
    fn twiml_stays_under_twilios_limit() {
        let t = spoken_twiml(
            &page(&"&\"".repeat(500)),
            3,
            true,
            Some("https://t.example/a?b&c"),
        );
        assert!(t.chars().count() <= MAX_TWIML, "{}", t.len());
        assert!(t.contains("&amp;&quot;"));
    }
}
