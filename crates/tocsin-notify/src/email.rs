//! What a page looks like as an email: a multipart/alternative message (the
//! plain text and an HTML rendering with every text escaped), with ids that make
//! a resend recognisably the same mail and thread one incident's pages together.
//! Mail that is not a page (status-page subscriber mail) is a [`Mail`]: the
//! same envelope, its own words and a few extra headers.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use crate::escape::html;
use crate::support::stable_token;
use crate::{IncidentSummary, Outgoing};

/// The headers that say a machine wrote the mail (RFC 3834), so auto-responders stay quiet.
const AUTO_SUBMITTED: &str = "Auto-Submitted";
/// The incident number, for mail filters.
const INCIDENT_HEADER: &str = "X-Tocsin-Incident";

/// A mail that is not about an incident (status-page subscriber mail): its
/// words, already rendered, and the headers it needs beyond Tocsin's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// The outbox row's key: the Message-ID is derived from it, so a resend is the same mail.
    pub idempotency_key: String,
    /// The subject (put on one line when sent).
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part's body, every text in it escaped.
    pub html: String,
    /// The sender's display name in place of the relay's (the status page's
    /// name); the address stays the configured one.
    pub from_name: Option<String>,
    /// Extra headers, e.g. `List-Unsubscribe`; each value is put on one line
    /// and encoded by lettre, so no value can start a header of its own.
    pub headers: Vec<(&'static str, String)>,
}

/// The envelope every mail shares: sender, recipient, subject on one line, a
/// Message-ID stable per idempotency key, `Auto-Submitted`.
fn envelope(
    idempotency_key: &str,
    subject: &str,
    from: &Mailbox,
    to: Mailbox,
) -> lettre::message::MessageBuilder {
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(one_line(subject))
        .message_id(Some(message_id(idempotency_key, from.email.domain())))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(AUTO_SUBMITTED),
            "auto-generated".into(),
        ))
}

/// Builds `mail` from `from` to `to`. Fails on an extra header's name that
/// is not one (spaces, a colon), or when lettre refuses the parts.
pub(crate) fn build_mail(
    mail: &Mail,
    from: &Mailbox,
    to: Mailbox,
) -> Result<lettre::Message, String> {
    let from = match &mail.from_name {
        Some(name) => Mailbox::new(Some(one_line(name)), from.email.clone()),
        None => from.clone(),
    };
    let mut builder = envelope(&mail.idempotency_key, &mail.subject, &from, to);
    for (name, value) in &mail.headers {
        let name = HeaderName::new_from_ascii(name.to_string())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        builder = builder.raw_header(HeaderValue::new(name, one_line(value)));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            document(&one_line(&mail.subject), &mail.html),
        ))
        .map_err(|e| e.to_string())
}

/// Builds the mail for `out` from `from` to `to`. Fails only when lettre
/// refuses the parts, which our inputs cannot make it do.
pub(crate) fn build(
    out: &Outgoing,
    from: &Mailbox,
    to: Mailbox,
) -> Result<lettre::Message, lettre::error::Error> {
    let domain = from.email.domain();
    let mut builder = envelope(&out.idempotency_key, &out.message.subject, from, to);
    if let Some(incident) = &out.message.incident {
        // Every page of one incident points at the same root id, which no mail
        // carries: clients thread on References/In-Reply-To whichever page came first.
        let root = thread_root(incident.number, domain);
        builder = builder
            .in_reply_to(root.clone())
            .references(root)
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(INCIDENT_HEADER),
                incident.number.to_string(),
            ));
    }
    let html = match &out.message.html {
        Some(fragment) => document(&one_line(&out.message.subject), fragment),
        None => document(&one_line(&out.message.subject), &render(out)),
    };
    builder.multipart(MultiPart::alternative_plain_html(
        out.message.long.clone(),
        html,
    ))
}

/// A subject from an alert may hold line breaks; lettre encodes them safely,
/// but a subject shown on two lines, or text that looks like a header, helps nobody.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Message-ID for an idempotency key: the same request always gets the same id.
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    format!("<{}@tocsin.{domain}>", stable_token(idempotency_key, 64))
}

/// The id every page of incident `number` refers to.
pub fn thread_root(number: i64, domain: &str) -> String {
    format!("<incident-{number}@tocsin.{domain}>")
}

fn document(subject: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328\">\n\
         {body}\n</body></html>\n",
        html(subject)
    )
}

/// The HTML body Tocsin renders when the message brings none of its own.
fn render(out: &Outgoing) -> String {
    match &out.message.incident {
        Some(incident) => render_incident(incident),
        // Not about an incident (an on-call shift notice): the text, line by line.
        None => out
            .message
            .long
            .lines()
            .map(|l| format!("<p>{}</p>", html(l)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn render_incident(i: &IncidentSummary) -> String {
    let mut html = format!(
        "<h1 style=\"font-size:20px\">Incident #{}: {}</h1>\n<p>Urgency: <strong>{}</strong>",
        i.number,
        html(&i.title),
        html(i.urgency.as_str())
    );
    if let Some(level) = i.level {
        html.push_str(&format!("<br>Escalation level: {level}"));
    }
    html.push_str("</p>\n");
    if !i.actions.is_empty() {
        html.push_str("<p>");
        for a in &i.actions {
            html.push_str(&link(
                &a.href,
                &a.text,
                "display:inline-block;margin:0 8px 8px 0;padding:10px 16px;\
                 background:#1f6feb;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600",
            ));
        }
        html.push_str("</p>\n");
    }
    if !i.links.is_empty() {
        html.push_str("<ul>\n");
        for l in &i.links {
            html.push_str(&format!("<li>{}</li>\n", link(&l.href, &l.text, "")));
        }
        html.push_str("</ul>\n");
    }
    html.push_str(
        "<p style=\"color:#656d76;font-size:12px\">Sent by Tocsin. \
         The buttons work once and expire; each opens a page that asks you to confirm.</p>",
    );
    html
}

/// A link, or plain text for anything but http(s): a `javascript:` URL from an
/// alert payload must not become something to click.
pub(crate) fn link(href: &str, text: &str, style: &str) -> String {
    let lower = href.trim_start().to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return format!("{}: {}", html(text), html(href));
    }
    let style = if style.is_empty() {
        String::new()
    } else {
        format!(" style=\"{style}\"")
    };
    format!(
        "<a href=\"{}\"{style}>{}</a>",
        html(href.trim()),
        html(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_links_are_clickable() {
        assert!(link("https://t.example/a?b=1&c=2", "Open", "")
            .contains("href=\"https://t.example/a?b=1&amp;c=2\""));
        let bad = link("javascript:alert(1)", "Open", "");
        assert!(!bad.contains("<a"), "{bad}");
        assert_eq!(bad, "Open: javascript:alert(1)");
    }

    fn notice(html: Option<&str>) -> Outgoing {
        use crate::{Message, Recipient};
        use tocsin_core::escalation::{Channel, ContactKind};
        Outgoing {
            idempotency_key: "shift:4:u3".into(),
            recipient: Recipient {
                user_id: 3,
                contact_method_id: 9,
                kind: ContactKind::Email,
                channel: Channel::Email,
                address: "ann@example.com".into(),
                target: "ann@example.com".into(),
            },
            message: Message {
                subject: "On call from 09:00".into(),
                short: "On call from 09:00".into(),
                long: "Your shift starts at 09:00.\nHandoff: <ops>\n".into(),
                html: html.map(str::to_string),
                incident: None,
            },
        }
    }

    fn formatted(out: &Outgoing) -> String {
        let from: Mailbox = "Tocsin <t@example.com>".parse().unwrap();
        let to: Mailbox = "ann@example.com".parse().unwrap();
        String::from_utf8(build(out, &from, to).unwrap().formatted()).unwrap()
    }

    #[test]
    fn a_notice_has_no_incident_headers_and_escaped_lines() {
        let mail = formatted(&notice(None));
        assert!(!mail.contains("X-Tocsin-Incident"), "{mail}");
        assert!(!mail.contains("References"), "{mail}");
        assert!(mail.contains("Auto-Submitted: auto-generated"), "{mail}");
        assert!(mail.contains("<p>Handoff: &lt;ops&gt;</p>"), "{mail}");
    }

    #[test]
    fn the_message_s_own_html_is_used_when_it_brings_one() {
        let mail = formatted(&notice(Some("<p>Rendered by a template</p>")));
        assert!(mail.contains("<p>Rendered by a template</p>"), "{mail}");
        assert!(!mail.contains("<p>Handoff"), "{mail}");
        assert!(mail.contains("Your shift starts at 09:00."), "{mail}");
    }

    #[test]
    fn a_line_break_in_the_subject_cannot_add_a_header() {
        let mut out = notice(None);
        out.message.subject = "Disk full\r\nBcc: evil@example.com".into();
        let mail = formatted(&out);
        let head = &mail[..mail.find("\r\n\r\n").unwrap()];
        assert!(
            head.contains("Subject: Disk full Bcc: evil@example.com\r\n"),
            "{head}"
        );
        assert!(!mail.to_ascii_lowercase().contains("\nbcc:"), "{mail}");
    }

    #[test]
    fn a_mail_carries_its_headers_on_one_line_and_refuses_bad_names() {
        let from: Mailbox = "Acme Status <status@example.com>".parse().unwrap();
        let to: Mailbox = "reader@example.com".parse().unwrap();
        let mut mail = Mail {
            idempotency_key: "update:4:9".into(),
            subject: "[Acme] Down\r\nBcc: evil@example.com".into(),
            text: "Text".into(),
            html: "<p>Text</p>".into(),
            from_name: Some("Acme \"Status\"\r\nBcc: x@example.com".into()),
            headers: vec![(
                "List-Unsubscribe",
                "<https://s.example/unsubscribe?token=a.b>\r\nBcc: evil@example.com".into(),
            )],
        };
        let raw =
            String::from_utf8(build_mail(&mail, &from, to.clone()).unwrap().formatted()).unwrap();
        // Long values are folded: a continuation line starts with a space.
        let head = raw[..raw.find("\r\n\r\n").unwrap()].replace("\r\n ", " ");
        assert!(head.contains("Auto-Submitted: auto-generated"), "{head}");
        assert!(
            head.contains(&message_id("update:4:9", "example.com")),
            "{head}"
        );
        assert!(
            head.contains("List-Unsubscribe: <https://s.example/unsubscribe?token=a.b> Bcc: evil@example.com\r\n"),
            "{head}"
        );
        assert!(!raw.to_ascii_lowercase().contains("\nbcc:"), "{raw}");
        mail.headers = vec![("Not A Name", "x".into())];
        assert!(build_mail(&mail, &from, to).is_err());
    }

    #[test]
    fn ids_are_stable_and_valid() {
        let a = message_id("esc:7:s0:r0:l0:u3:c9:n1", "example.com");
        assert_eq!(a, message_id("esc:7:s0:r0:l0:u3:c9:n1", "example.com"));
        assert!(a.starts_with("<esc-7-s0-r0-l0-u3-c9-n1-") && a.ends_with("@tocsin.example.com>"));
        assert_ne!(a, message_id("esc:7:s0:r0:l0:u3:c9:n2", "example.com"));
        assert_eq!(
            thread_root(7, "example.com"),
            "<incident-7@tocsin.example.com>"
        );
    }
}
