//! Email in: one RFC 5322 message (as the SMTP listener received it) becomes one
//! alert event. Subject → summary, body → details, From → source; the thread's
//! root Message-ID is the dedup key, so replies count on the alert their thread
//! opened, and a subject starting with a resolution keyword resolves it.
//!
//! MIME, encoded words, quoted-printable, base64 and charsets are decoded by
//! `mail-parser`; this module only decides what each part means. Pure: no I/O.

use mail_parser::{HeaderValue, MessageParser};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tocsin_core::alert::{
    AlertAction, AlertEvent, AlertSeverity, DedupKey, MAX_DEDUP_KEY, MAX_SUMMARY,
};
use tocsin_core::Invalid;

/// The body kept in the alert's details, in characters.
pub const MAX_BODY_CHARS: usize = 32 * 1024;

/// What an instance configures about inbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailOptions {
    /// Words that, at the start of the subject or as `[WORD]`, make a mail resolve its
    /// thread's alert. Compared case-insensitively.
    pub resolve_keywords: Vec<String>,
}

impl Default for EmailOptions {
    fn default() -> Self {
        EmailOptions {
            resolve_keywords: default_resolve_keywords(),
        }
    }
}

/// The default resolution keywords.
pub fn default_resolve_keywords() -> Vec<String> {
    ["resolved", "recovered", "ok"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

// Reply and forward markers in the languages mail clients commonly write them in.
const PREFIXES: &[&str] = &[
    "re", "fwd", "fw", "aw", "wg", "sv", "vs", "antw", "tr", "rif", "ref", "r", "odp", "res", "enc",
];

/// Strips reply/forward markers (`Re:`, `Fwd:`, `AW:`, `Re[2]:`, …) from the front of a subject.
pub fn strip_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let Some(colon) = s.find(':') else { return s };
        let head = s[..colon].trim();
        // `Re[2]` and `Re(2)` count as `Re`.
        let word = head
            .split(['[', '('])
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if head.len() > 8 || !PREFIXES.contains(&word.as_str()) {
            return s;
        }
        s = s[colon + 1..].trim_start();
    }
}

// `Some(rest)`: the subject says "resolved" (by a keyword at its start, followed by a
// non-word character or the end, or by `[KEYWORD]` anywhere); rest is the subject without it.
fn resolution(subject: &str, keywords: &[String]) -> Option<String> {
    let lower = subject.to_lowercase();
    for k in keywords {
        let k = k.trim().to_lowercase();
        if k.is_empty() {
            continue;
        }
        let tag = format!("[{k}]");
        if let Some(at) = lower.find(&tag) {
            // Lowercasing keeps byte offsets for ASCII tags; fall back to the whole subject.
            if subject.is_char_boundary(at) && subject.is_char_boundary(at + tag.len()) {
                let rest = format!("{} {}", &subject[..at], &subject[at + tag.len()..]);
                return Some(tidy(&rest));
            }
            return Some(subject.to_string());
        }
        if lower.starts_with(&k) && subject.is_char_boundary(k.len()) {
            let after = &subject[k.len()..];
            if after
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_')
            {
                return Some(tidy(after));
            }
        }
    }
    None
}

// Drops the separators left after a removed keyword (`RESOLVED: x`, `OK - x`).
fn tidy(s: &str) -> String {
    s.trim()
        .trim_start_matches([':', '-', '–', '—', '|', '!', ' ', '\t'])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_id(v: &HeaderValue) -> Option<String> {
    v.as_text_list()?
        .iter()
        .map(|s| s.trim().trim_matches(['<', '>']).to_string())
        .find(|s| !s.is_empty())
}

fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

fn severity(msg: &mail_parser::Message) -> AlertSeverity {
    let header = |name: &str| {
        msg.header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default()
    };
    let importance = header("Importance");
    let priority = header("X-Priority");
    if importance == "high" || priority.starts_with('1') || priority.starts_with('2') {
        AlertSeverity::Critical
    } else if importance == "low" || priority.starts_with('4') || priority.starts_with('5') {
        AlertSeverity::Warning
    } else {
        AlertSeverity::Error
    }
}

/// Parses one message into an alert event.
pub fn parse(raw: &[u8], opts: &EmailOptions) -> Result<AlertEvent, Invalid> {
    let msg = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| Invalid::new("message", "not an RFC 5322 message"))?;
    let subject = msg.subject().unwrap_or("").trim();
    let unprefixed = strip_prefixes(subject);
    let (action, title) = match resolution(unprefixed, &opts.resolve_keywords) {
        Some(rest) => (AlertAction::Resolve, strip_prefixes(&rest).to_string()),
        None => (AlertAction::Trigger, tidy(unprefixed)),
    };
    let from = msg.from().and_then(|a| a.first());
    let from_addr = from
        .and_then(|a| a.address())
        .unwrap_or("")
        .trim()
        .to_string();
    let from_name = from.and_then(|a| a.name()).unwrap_or("").trim();
    let source = if from_addr.is_empty() {
        "email".to_string()
    } else {
        from_addr.clone()
    };
    // The thread's root: the first of References, else In-Reply-To, else its own id.
    let root = first_id(msg.references())
        .or_else(|| first_id(msg.in_reply_to()))
        .or_else(|| msg.message_id().map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty());
    let dedup = match root {
        Some(id) if id.chars().count() <= MAX_DEDUP_KEY => id,
        Some(id) => format!("message-id-sha256:{}", digest(&id)),
        None => format!(
            "email-sha256:{}",
            digest(&format!(
                "{}\n{}",
                from_addr.to_lowercase(),
                title.to_lowercase()
            ))
        ),
    };
    let body = msg
        .body_text(0)
        .map(|b| b.replace("\r\n", "\n").trim().to_string())
        .unwrap_or_default();
    let summary = if title.is_empty() {
        "(no subject)".to_string()
    } else {
        truncate(&title, MAX_SUMMARY)
    };
    let to: Vec<String> = msg
        .to()
        .map(|a| {
            a.iter()
                .filter_map(|a| a.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut labels = Map::new();
    if !from_addr.is_empty() {
        labels.insert("from".into(), Value::String(from_addr.clone()));
    }
    let details = json!({
        "body": truncate(&body, MAX_BODY_CHARS),
        "subject": subject,
        "from": if from_name.is_empty() { from_addr.clone() } else { format!("{from_name} <{from_addr}>") },
        "to": to,
        "message_id": msg.message_id(),
        "date": msg.date().map(|d| d.to_rfc3339()),
    });
    Ok(AlertEvent {
        action,
        dedup_key: DedupKey::parse("message_id", &dedup)?,
        summary,
        source,
        severity: severity(&msg),
        labels,
        details,
        links: Vec::new(),
        integration: "email",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> EmailOptions {
        EmailOptions::default()
    }

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!("{headers}\r\n\r\n{body}")
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes()
    }

    #[test]
    fn subject_body_and_from_map_to_the_alert() {
        let raw = mail(
            "From: Nagios <nagios@mon.example.com>\nTo: abc123@alerts.example.com\nSubject: PROBLEM: disk\n full on db-1\nMessage-ID: <m1@mon.example.com>",
            "Disk / is 98% full.\n",
        );
        let e = parse(&raw, &opts()).unwrap();
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(
            e.summary, "PROBLEM: disk full on db-1",
            "folded header unfolded"
        );
        assert_eq!(e.source, "nagios@mon.example.com");
        assert_eq!(e.dedup_key.as_str(), "m1@mon.example.com");
        assert_eq!(e.details["body"], "Disk / is 98% full.");
        assert_eq!(e.details["from"], "Nagios <nagios@mon.example.com>");
        assert_eq!(e.details["to"], json!(["abc123@alerts.example.com"]));
        assert_eq!(e.labels["from"], "nagios@mon.example.com");
        assert_eq!(e.severity, AlertSeverity::Error);
        assert_eq!(e.integration, "email");
    }

    #[test]
    fn replies_share_the_root_of_their_thread() {
        let refs = mail(
            "From: a@x\nSubject: Re: Fwd: AW: disk full\nMessage-ID: <m3@x>\nIn-Reply-To: <m2@x>\nReferences: <m1@x> <m2@x>",
            "me too",
        );
        let e = parse(&refs, &opts()).unwrap();
        assert_eq!(e.dedup_key.as_str(), "m1@x");
        assert_eq!(e.summary, "disk full");
        let irt = mail(
            "From: a@x\nSubject: RE: disk full\nMessage-ID: <m3@x>\nIn-Reply-To: <m2@x>",
            "",
        );
        assert_eq!(parse(&irt, &opts()).unwrap().dedup_key.as_str(), "m2@x");
    }

    #[test]
    fn without_message_ids_from_and_normalized_subject_are_the_key() {
        let a = parse(&mail("From: a@x\nSubject: Disk  full", "1"), &opts()).unwrap();
        let b = parse(&mail("From: A@X\nSubject: Re: disk full", "2"), &opts()).unwrap();
        let r = parse(
            &mail("From: a@x\nSubject: RESOLVED: disk full", "3"),
            &opts(),
        )
        .unwrap();
        let other = parse(&mail("From: b@x\nSubject: disk full", "4"), &opts()).unwrap();
        assert_eq!(a.dedup_key, b.dedup_key);
        assert_eq!(a.dedup_key, r.dedup_key);
        assert_eq!(r.action, AlertAction::Resolve);
        assert_ne!(a.dedup_key, other.dedup_key);
        assert!(a.dedup_key.as_str().starts_with("email-sha256:"));
    }

    #[test]
    fn resolution_keywords_at_the_start_or_in_brackets() {
        let action = |subject: &str| {
            parse(
                &mail(&format!("From: a@x\nSubject: {subject}"), ""),
                &opts(),
            )
            .unwrap()
            .action
        };
        for s in [
            "RESOLVED: disk",
            "Recovered - db-1",
            "OK",
            "ok: db",
            "Re: [Resolved] disk full",
            "disk full [OK]",
        ] {
            assert_eq!(action(s), AlertAction::Resolve, "{s}");
        }
        for s in [
            "Okay, disk is full",
            "disk resolved soon",
            "Resolvedness",
            "OKR review",
        ] {
            assert_eq!(action(s), AlertAction::Trigger, "{s}");
        }
        let custom = EmailOptions {
            resolve_keywords: vec!["Erledigt".into()],
        };
        let e = parse(
            &mail("From: a@x\nSubject: AW: erledigt: Platte voll", ""),
            &custom,
        )
        .unwrap();
        assert_eq!(
            (e.action, e.summary.as_str()),
            (AlertAction::Resolve, "Platte voll")
        );
        let e = parse(&mail("From: a@x\nSubject: RESOLVED: disk", ""), &custom).unwrap();
        assert_eq!(e.action, AlertAction::Trigger);
    }

    #[test]
    fn encoded_words_multipart_and_transfer_encodings_decode() {
        let raw = mail(
            "From: =?ISO-8859-1?Q?J=F6rg?= <j@x>\nSubject: =?UTF-8?B?RGlzayBmdWxsIOKAkyDDvGJlcmxhdWY=?=\n =?ISO-8859-1?Q?_=E9t=E9?=\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b1\"",
            "--b1\nContent-Type: text/html; charset=utf-8\n\n<p>html <b>version</b></p>\n--b1\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nPlatte voll: M=FCnchen =\nRechenzentrum\n--b1--\n",
        );
        let e = parse(&raw, &opts()).unwrap();
        assert_eq!(e.summary, "Disk full – überlauf été");
        assert_eq!(e.details["body"], "Platte voll: München Rechenzentrum");
        assert_eq!(e.details["from"], "Jörg <j@x>");
    }

    #[test]
    fn html_only_is_reduced_to_text_and_base64_decodes() {
        let raw = mail(
            "From: a@x\nSubject: x\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64",
            "PHA+RGlzayA8Yj5mdWxsPC9iPiAmYW1wOyBob3Q8L3A+PHNjcmlwdD5ldmlsKCk8L3NjcmlwdD4=\n",
        );
        let e = parse(&raw, &opts()).unwrap();
        let body = e.details["body"].as_str().unwrap();
        assert!(body.contains("Disk full & hot"), "{body}");
        assert!(!body.contains('<') && !body.contains("evil"), "{body}");
    }

    #[test]
    fn importance_sets_severity_and_junk_is_refused() {
        let e = parse(
            &mail("From: a@x\nSubject: x\nImportance: High", ""),
            &opts(),
        )
        .unwrap();
        assert_eq!(e.severity, AlertSeverity::Critical);
        let e = parse(
            &mail("From: a@x\nSubject: x\nX-Priority: 5 (Lowest)", ""),
            &opts(),
        )
        .unwrap();
        assert_eq!(e.severity, AlertSeverity::Warning);
        assert_eq!(parse(b"", &opts()).unwrap_err().field, "message");
        let e = parse(&mail("From: a@x", "no subject"), &opts()).unwrap();
        assert_eq!(e.summary, "(no subject)");
        let long = format!("From: a@x\nMessage-ID: <{}@x>", "i".repeat(300));
        let e = parse(&mail(&long, ""), &opts()).unwrap();
        assert!(e.dedup_key.as_str().starts_with("message-id-sha256:"));
    }

    #[test]
    fn mangled_mail_never_panics_and_stays_bounded() {
        use rand::{Rng, SeedableRng};
        let sample = mail(
            "From: =?ISO-8859-1?Q?J=F6rg?= <j@x>\nSubject: =?UTF-8?B?RGlzayBmdWxs?= [OK]\nReferences: <a@x> <b@x>\nContent-Type: multipart/mixed; boundary=\"b\"",
            "--b\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nM=FCnchen=\n\n--b\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\nPHA+eDwvcD4=\n--b--\n",
        );
        // A fixed seed: the same mutations every run, so a failure reproduces.
        let mut rng = rand::rngs::StdRng::seed_from_u64(5322);
        for _ in 0..3000 {
            let mut raw = sample.clone();
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..raw.len());
                match rng.gen_range(0..3) {
                    0 => raw[at] = rng.gen(),
                    1 => raw.truncate(at.max(1)),
                    _ => {
                        let special = b"=?:<>\r\n-";
                        raw.insert(at, special[rng.gen_range(0..special.len())]);
                    }
                }
            }
            if let Ok(e) = parse(&raw, &opts()) {
                assert!(e.summary.chars().count() <= MAX_SUMMARY);
                assert!(e.dedup_key.as_str().chars().count() <= MAX_DEDUP_KEY);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        for raw in [
            &b"\xff\xfe\x00"[..],
            b"Subject: =?x?Q?\r\n\r\n",
            b":\r\n:",
            b"From:\r\n\r\n",
        ] {
            let _ = parse(raw, &opts());
        }
    }
}
