//! Message templates: the built-in words per channel, HTML escaping of hostile
//! text, overrides from a directory (and their errors, named by file, at load),
//! and the SMS length cut.

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use serde_json::json;
use tocsin_core::action_link::LinkAction;
use tocsin_core::escalation::Channel;
use tocsin_notify::{Action, Link, Notice, TemplateError, Templates};

/// A directory under the system temp dir, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("tocsin-templates-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        for (name, text) in files {
            std::fs::write(path.join(name), text).unwrap();
        }
        Dir(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn page(title: &str) -> Notice {
    let mut n = Notice::from_outbox(
        "escalation",
        &json!({ "incident_id": 7, "number": 12, "title": title, "urgency": "high",
                 "level": 1, "round": 0 }),
    )
    .unwrap();
    n.set_links(
        vec![Link {
            text: "Incident".into(),
            href: "https://tocsin.example/incidents/7".into(),
        }],
        vec![
            Action {
                action: LinkAction::Acknowledge,
                text: "Acknowledge".into(),
                href: "https://tocsin.example/a/ACK".into(),
            },
            Action {
                action: LinkAction::Resolve,
                text: "Resolve".into(),
                href: "https://tocsin.example/a/RES".into(),
            },
        ],
    );
    n.page_mut().unwrap().services = vec!["payments".into()];
    n
}

fn shift(reason: &str, name: &str) -> Notice {
    Notice::from_outbox(
        reason,
        &json!({ "schedule_id": 3, "schedule_name": name, "time_zone": "America/New_York",
                 "starts_at": Utc.with_ymd_and_hms(2026, 7, 1, 13, 0, 0).unwrap(),
                 "ends_at": Utc.with_ymd_and_hms(2026, 7, 8, 13, 0, 0).unwrap(),
                 "reminder_minutes": 30 }),
    )
    .unwrap()
}

fn code() -> Notice {
    Notice::from_outbox(
        "verification",
        &json!({ "code": "482910", "expires_minutes": 15 }),
    )
    .unwrap()
}

fn test_notice(label: &str) -> Notice {
    Notice::from_outbox("test", &json!({ "label": label })).unwrap()
}

#[test]
fn a_page_in_every_channel() {
    let t = Templates::default();
    let n = page("Database down");

    let sms = t.render(Channel::Sms, &n).unwrap();
    assert_eq!(
        sms.short,
        "Tocsin #12 high: Database down Ack: https://tocsin.example/a/ACK"
    );
    assert_eq!(sms.long, sms.short);
    assert_eq!(sms.html, None);
    assert_eq!(
        sms.incident.as_ref().map(|i| (i.id, i.number)),
        Some((7, 12))
    );
    let mut replies = n.clone();
    replies.page_mut().unwrap().sms_replies = true;
    assert_eq!(
        t.render(Channel::Sms, &replies).unwrap().short,
        "Tocsin #12 high: Database down. Reply 12 ack / 12 resolve"
    );
    // The reply hint is for SMS only: a push preview cannot be answered.
    assert!(!t
        .render(Channel::Email, &replies)
        .unwrap()
        .short
        .contains("Reply"));

    let voice = t.render(Channel::Voice, &n).unwrap();
    assert_eq!(
        voice.long,
        "This is Tocsin. Incident 12, high urgency: Database down. Escalation level 1. \
         Services: payments. Open Tocsin to acknowledge it."
    );

    let email = t.render(Channel::Email, &n).unwrap();
    assert_eq!(
        email.subject,
        "[Tocsin] Incident #12 (high urgency): Database down"
    );
    assert_eq!(
        email.long,
        "Incident #12: Database down\nUrgency: high\nEscalation level: 1\nServices: payments\n\n\
         Acknowledge: https://tocsin.example/a/ACK\nResolve: https://tocsin.example/a/RES\n\n\
         Incident: https://tocsin.example/incidents/7"
    );
    let html = email.html.unwrap();
    assert!(html.contains("Incident #12: Database down</h2>"), "{html}");
    assert!(
        html.contains(r#"<a href="https:&#x2f;&#x2f;tocsin.example&#x2f;a&#x2f;ACK""#)
            && html.contains(">Acknowledge</a>")
            && html.contains(">Resolve</a>"),
        "action buttons: {html}"
    );
    assert!(html.contains("<td>payments</td>"), "{html}");

    let chat = t.render(Channel::Slack, &n).unwrap();
    assert_eq!(
        chat.long,
        "**Incident #12 (high urgency): Database down**\nEscalation level 1 · Services: payments\n\
         [Acknowledge](https://tocsin.example/a/ACK) · [Resolve](https://tocsin.example/a/RES) · \
         [Incident](https://tocsin.example/incidents/7)"
    );

    let push = t.render(Channel::Ntfy, &n).unwrap();
    assert_eq!(push.subject, "#12 high: Database down");
    assert_eq!(push.short, "Escalation level 1 · payments");
    assert_eq!(push.long, push.short);

    let hook = t.render(Channel::Webhook, &n).unwrap();
    assert_eq!(hook.subject, email.subject);
    assert_eq!(hook.long, email.long);
    assert!(hook.html.is_none() && hook.incident.is_some());
}

#[test]
fn voice_never_reads_a_url() {
    let t = Templates::default();
    let mut n = page("Check https://grafana.example/d/abc?x=1 now (see http://x.example)");
    n.page_mut().unwrap().services = vec!["https://svc.example".into()];
    let voice = t.render(Channel::Voice, &n).unwrap().long;
    assert!(!voice.contains("://"), "{voice}");
    assert!(voice.contains("Check a link now (see a link"), "{voice}");
}

#[test]
fn shift_notices_say_local_times() {
    let t = Templates::default();
    let n = shift("handoff_reminder", "Primary");
    let sms = t.render(Channel::Sms, &n).unwrap();
    assert_eq!(
        sms.short,
        "Tocsin: your on-call shift for Primary starts Wed 1 Jul 09:00 EDT, until Wed 8 Jul 09:00 EDT."
    );
    let email = t.render(Channel::Email, &n).unwrap();
    assert_eq!(
        email.subject,
        "[Tocsin] Your on-call shift for Primary starts Wed 1 Jul 09:00 EDT"
    );
    assert!(email.long.contains("(in 30 minutes)"), "{}", email.long);
    assert!(email.incident.is_none());
    let started = t
        .render(Channel::Pushover, &shift("shift_started", "Primary"))
        .unwrap();
    assert_eq!(started.subject, "On call now: Primary");
    assert_eq!(
        started.short,
        "You are on call for Primary until Wed 8 Jul 09:00 EDT."
    );
}

#[test]
fn verification_and_test_notices() {
    let t = Templates::default();
    assert_eq!(
        t.render(Channel::Sms, &code()).unwrap().short,
        "Your Tocsin verification code is 482910. It expires in 15 minutes."
    );
    let voice = t.render(Channel::Voice, &code()).unwrap().long;
    assert_eq!(
        voice,
        "Your Tocsin verification code is 4 8 2 9 1 0. Again: 4 8 2 9 1 0."
    );
    let email = t.render(Channel::Email, &code()).unwrap();
    assert_eq!(email.subject, "[Tocsin] Your verification code");
    assert!(!email.subject.contains("482910"), "not on a lock screen");
    assert!(email.html.unwrap().contains(">482910</p>"));
    let test = t
        .render(Channel::Discord, &test_notice("Team *chat*"))
        .unwrap();
    // Not a page: chat senders get plain text and escape it for their service.
    assert_eq!(
        test.long,
        "This is a test notification from Tocsin to your contact method \"Team *chat*\".\n\
         It arrived, so pages can reach you here."
    );
}

#[test]
fn hostile_text_is_escaped_in_html_and_markdown() {
    let t = Templates::default();
    let evil = r#"<script>alert(1)</script> "><img src=x onerror=alert(2)> & [x](javascript:y)"#;
    for n in [
        page(evil),
        shift("handoff_reminder", evil),
        shift("shift_started", evil),
        test_notice(evil),
    ] {
        let m = t.render(Channel::Email, &n).unwrap();
        let html = m.html.unwrap();
        assert!(
            !html.contains("<script") && !html.contains("<img") && !html.contains("\"><"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        // Text parts are not HTML: they keep the text as it is.
        assert!(m.long.contains("<script>"), "{}", m.long);
        // Pages in chat are Markdown with the text escaped; other notices are
        // plain text (the chat senders escape it for their service).
        let chat = t.render(Channel::Mattermost, &n).unwrap().long;
        if matches!(n, Notice::Page(_)) {
            assert!(
                chat.contains(r"\<script\>") && chat.contains(r"\[x\]\(javascript:y\)"),
                "{chat}"
            );
        } else {
            assert_eq!(chat, m.long);
        }
    }
}

#[test]
fn sms_is_cut_to_one_segment_on_a_character_keeping_the_reply_hint() {
    let t = Templates::default();
    let mut n = page(&"é🔥".repeat(200));
    n.page_mut().unwrap().sms_replies = true;
    let sms = t.render(Channel::Sms, &n).unwrap().short;
    assert_eq!(sms.chars().count(), 160, "{sms}");
    assert!(sms.starts_with("Tocsin #12 high: é🔥"), "{sms}");
    assert!(sms.ends_with(".... Reply 12 ack / 12 resolve"), "{sms}");
    // An ack link too long to leave room for the title is left out.
    let mut long_link = page("Disk full");
    long_link.set_links(
        vec![],
        vec![Action {
            action: LinkAction::Acknowledge,
            text: "Acknowledge".into(),
            href: format!("https://tocsin.example/a/{}", "x".repeat(120)),
        }],
    );
    assert_eq!(
        t.render(Channel::Sms, &long_link).unwrap().short,
        "Tocsin #12 high: Disk full"
    );
    // Whatever an override writes, the short text is at most 160 characters.
    let dir = Dir::new(&[("sms.txt.j2", "{{ 'ü' * 400 }}")]);
    let t = Templates::load(Some(dir.path())).unwrap();
    let sms = t.render(Channel::Sms, &code()).unwrap().short;
    assert_eq!(sms.chars().count(), 160);
    assert!(sms.ends_with("ü…"));
}

#[test]
fn overrides_from_a_directory() {
    let dir = Dir::new(&[
        (
            "sms.txt.j2",
            "{% if kind == 'page' %}PAGE {{ number }}: {{ title }}{% else %}{{ default }}{% endif %}",
        ),
        (
            "email.html.j2",
            "<p>{{ kind }}: {% if kind == 'page' %}{{ title }}{% endif %}</p>",
        ),
        ("push.title.j2", "Acme\n  on call:\n{{ default }}"),
    ]);
    let t = Templates::load(Some(dir.path())).unwrap();
    let files: Vec<_> = t.overridden().map(|(p, _)| p.file_name()).collect();
    assert_eq!(files, ["sms.txt.j2", "email.html.j2", "push.title.j2"]);
    assert_eq!(
        t.render(Channel::Sms, &page("Database down"))
            .unwrap()
            .short,
        "PAGE 12: Database down"
    );
    // Other notices keep the built-in words through `default`.
    assert_eq!(
        t.render(Channel::Sms, &code()).unwrap().short,
        "Your Tocsin verification code is 482910. It expires in 15 minutes."
    );
    // An overriding HTML template escapes too.
    let m = t.render(Channel::Email, &page("<b>x</b>")).unwrap();
    assert_eq!(m.html.unwrap(), "<p>page: &lt;b&gt;x&lt;&#x2f;b&gt;</p>");
    // Parts not overridden are the built-in ones.
    assert_eq!(m.subject, "[Tocsin] Incident #12 (high urgency): <b>x</b>");
    // Titles are one line.
    assert_eq!(
        t.render(Channel::Ntfy, &test_notice("x")).unwrap().subject,
        "Acme on call: Tocsin test"
    );
}

#[test]
fn an_override_failing_on_a_real_notice_falls_back_to_the_built_in() {
    // Renders for the samples (number 12), fails for incident 99.
    let dir = Dir::new(&[(
        "chat.md.j2",
        "{% if kind == 'page' and number == 99 %}{{ nope }}{% else %}custom{% endif %}",
    )]);
    let t = Templates::load(Some(dir.path())).unwrap();
    assert_eq!(t.render(Channel::Slack, &page("x")).unwrap().long, "custom");
    let mut n = page("x");
    if let Notice::Page(p) = &mut n {
        p.number = 99;
    }
    let chat = t.render(Channel::Slack, &n).unwrap().long;
    assert!(
        chat.starts_with("**Incident #99 (high urgency): x**"),
        "{chat}"
    );
}

fn load_error(files: &[(&str, &str)]) -> (String, TemplateError) {
    let dir = Dir::new(files);
    let e = Templates::load(Some(dir.path())).unwrap_err();
    (dir.path().display().to_string(), e)
}

#[test]
fn a_bad_override_fails_at_load_naming_the_file() {
    let (dir, e) = load_error(&[("email.txt.j2", "ok\n{% if %}")]);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{dir}/email.txt.j2")) && msg.contains("line 2"),
        "{msg}"
    );

    // A misspelt variable is caught by the test render, not at 3 a.m.
    let (dir, e) = load_error(&[("voice.txt.j2", "{{ titel }}")]);
    assert!(matches!(&e, TemplateError::Template { .. }), "{e:?}");
    // The test render names the override by its file name within the directory.
    let msg = e.to_string();
    assert!(
        msg.contains("voice.txt.j2") && msg.contains("undefined"),
        "{dir}: {msg}"
    );

    let (dir, e) = load_error(&[("sms.txt.j2", "x"), ("sms.text.j2", "x")]);
    match e {
        TemplateError::UnknownFile { file, expected } => {
            assert_eq!(file, format!("{dir}/sms.text.j2"));
            assert!(expected.contains("sms.txt.j2") && expected.contains("email.html.j2"));
        }
        other => panic!("{other:?}"),
    }

    let (_, e) = load_error(&[(
        "push.txt.j2",
        "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
    )]);
    assert!(e.to_string().contains("instruction budget"), "{e}");

    let big = "x".repeat(tocsin_notify::MAX_TEMPLATE_BYTES + 1);
    let (_, e) = load_error(&[("chat.md.j2", &big)]);
    assert!(matches!(&e, TemplateError::Read { file, .. } if file.ends_with("chat.md.j2")));

    let missing = std::env::temp_dir().join("tocsin-templates-not-there");
    let e = Templates::load(Some(&missing)).unwrap_err();
    assert!(matches!(e, TemplateError::Dir { .. }), "{e:?}");
}

#[test]
fn an_empty_directory_is_the_built_in_templates() {
    let dir = Dir::new(&[]);
    let t = Templates::load(Some(dir.path())).unwrap();
    assert_eq!(t.overridden().count(), 0);
    let n = page("x");
    assert_eq!(
        t.render(Channel::Email, &n).unwrap(),
        Templates::default().render(Channel::Email, &n).unwrap()
    );
}
