//! The SMTP provider against a real ESMTP exchange on a loopback port: what the
//! relay receives (envelope, headers, both MIME parts, credentials), TLS, and
//! how each kind of reply is classified.

mod smtp_receiver;

use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders};
use smtp_receiver::{tls_config, Behaviour, Receiver, Session};
use tocsin_core::action_link::LinkAction;
use tocsin_core::escalation::{Channel, ContactKind, Urgency};
use tocsin_notify::{
    Action, IncidentSummary, Link, Message, Outgoing, Provider, Recipient, Security, SendError,
    SmtpConfig, SmtpProvider,
};

const KEY: &str = "esc:7:s0:r0:l0:u3:c9:n1";
const HOSTILE: &str = r#"<script>alert(1)</script> & "x" — base de données"#;
const ACK: &str = "https://tocsin.example/a/ack-tok?x=1&y=2";
const RESOLVE: &str = "https://tocsin.example/a/res-tok";
const INCIDENT_URL: &str = "https://tocsin.example/incidents/7";
const RUNBOOK_URL: &str = "https://wiki.example/runbooks/db";

fn outgoing(key: &str, to: &str) -> Outgoing {
    Outgoing {
        idempotency_key: key.into(),
        recipient: Recipient {
            user_id: 3,
            contact_method_id: 9,
            kind: ContactKind::Email,
            channel: Channel::Email,
            address: to.into(),
            target: to.into(),
        },
        message: Message::for_incident(IncidentSummary {
            id: 7,
            number: 12,
            title: HOSTILE.into(),
            urgency: Urgency::High,
            level: Some(1),
            links: vec![
                Link {
                    text: "Incident".into(),
                    href: INCIDENT_URL.into(),
                },
                Link {
                    text: "Runbook".into(),
                    href: RUNBOOK_URL.into(),
                },
            ],
            actions: vec![
                Action {
                    action: LinkAction::Acknowledge,
                    text: "Acknowledge".into(),
                    href: ACK.into(),
                },
                Action {
                    action: LinkAction::Resolve,
                    text: "Resolve".into(),
                    href: RESOLVE.into(),
                },
            ],
        }),
    }
}

fn config(r: &Receiver, security: Security) -> SmtpConfig {
    SmtpConfig {
        port: Some(r.addr.port()),
        security,
        timeout: Duration::from_secs(5),
        hello_name: Some("tocsin.test".into()),
        ..SmtpConfig::new("127.0.0.1", "Tocsin Pager <pager@example.com>")
    }
}

fn with_login(mut c: SmtpConfig) -> SmtpConfig {
    c.username = Some("pager@example.com".into());
    c.password = Some("s3cret pässword".into());
    c
}

fn ca_file() -> std::path::PathBuf {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ca.pem").into()
}

fn only(sessions: Vec<Session>) -> Session {
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    sessions.into_iter().next().unwrap()
}

#[tokio::test]
async fn delivers_a_multipart_mail_with_the_documented_headers() {
    let r = Receiver::start(vec![Behaviour {
        auth: "PLAIN LOGIN",
        ..Behaviour::default()
    }])
    .await;
    let p = SmtpProvider::new(with_login(config(&r, Security::None))).unwrap();
    let sent = p.send(&outgoing(KEY, "ann@example.com")).await.unwrap();
    assert_eq!(sent.status, 250);
    let message_id = sent.provider_id.clone().unwrap();
    assert!(
        message_id.starts_with("<esc-7-s0-r0-l0-u3-c9-n1-")
            && message_id.ends_with("@tocsin.example.com>"),
        "{message_id}"
    );

    let s = only(r.sessions());
    assert_eq!(s.ehlo, ["tocsin.test"]);
    let (mech, user, pass, _) = s.auth.clone().expect("authenticated");
    assert_eq!(
        (mech.as_str(), user.as_str(), pass.as_str()),
        ("PLAIN", "pager@example.com", "s3cret pässword")
    );
    assert!(s
        .mail_from
        .as_deref()
        .unwrap()
        .starts_with("MAIL FROM:<pager@example.com>"));
    assert_eq!(s.rcpt_to, ["RCPT TO:<ann@example.com>"]);
    assert_eq!(s.commands.last().map(String::as_str), Some("QUIT"));

    let raw = s.data.unwrap();
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        raw[..head_end].is_ascii(),
        "headers must be ASCII (RFC 2047)"
    );
    let mail = MessageParser::default().parse(&raw).unwrap();
    let from = mail.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Tocsin Pager"));
    assert_eq!(from.address(), Some("pager@example.com"));
    assert_eq!(
        mail.to().unwrap().first().unwrap().address(),
        Some("ann@example.com")
    );
    assert_eq!(
        mail.subject(),
        Some(format!("Incident #12 (high urgency): {HOSTILE}").as_str())
    );
    assert_eq!(
        mail.message_id().map(|id| format!("<{id}>")),
        Some(message_id)
    );
    assert_eq!(
        mail.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    assert_eq!(
        mail.header_raw("X-Tocsin-Incident").map(str::trim),
        Some("12")
    );
    assert_eq!(
        mail.in_reply_to().as_text(),
        Some("incident-12@tocsin.example.com")
    );
    assert_eq!(
        mail.references().as_text(),
        Some("incident-12@tocsin.example.com")
    );

    let root = mail.root_part().content_type().unwrap();
    assert_eq!(
        (root.ctype(), root.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!((mail.text_body_count(), mail.html_body_count()), (1, 1));
    let text_part = mail.text_part(0).unwrap().content_type().unwrap();
    assert_eq!(
        (text_part.ctype(), text_part.subtype()),
        ("text", Some("plain"))
    );
    let html_part = mail.html_part(0).unwrap().content_type().unwrap();
    assert_eq!(
        (html_part.ctype(), html_part.subtype()),
        ("text", Some("html"))
    );

    let text = mail.body_text(0).unwrap();
    assert!(text.contains(&format!("Incident #12: {HOSTILE}")), "{text}");
    for url in [INCIDENT_URL, RUNBOOK_URL, ACK, RESOLVE] {
        assert!(text.contains(url), "text part lacks {url}: {text}");
    }
    let html = mail.body_html(0).unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; — base de données"
        ),
        "{html}"
    );
    assert!(html.contains("Urgency: <strong>high</strong>"), "{html}");
    assert!(html.contains("Escalation level: 1"), "{html}");
    for (url, label) in [
        (INCIDENT_URL, "Incident"),
        (RUNBOOK_URL, "Runbook"),
        (
            "https://tocsin.example/a/ack-tok?x=1&amp;y=2",
            "Acknowledge",
        ),
        (RESOLVE, "Resolve"),
    ] {
        let needle = format!("<a href=\"{url}\"");
        let at = html
            .find(&needle)
            .unwrap_or_else(|| panic!("no {needle} in {html}"));
        let rest = &html[at..];
        let close = rest.find("</a>").unwrap();
        assert!(
            rest[..close].ends_with(&format!(">{label}")),
            "{}",
            &rest[..close]
        );
    }
}

#[tokio::test]
async fn the_same_request_is_the_same_mail_and_one_incident_is_one_thread() {
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let p = SmtpProvider::new(config(&r, Security::None)).unwrap();
    let first = p.send(&outgoing(KEY, "ann@example.com")).await.unwrap();
    let again = p.send(&outgoing(KEY, "ann@example.com")).await.unwrap();
    let next = p
        .send(&outgoing("esc:7:s0:r0:l1:u3:c9:n1", "ann@example.com"))
        .await
        .unwrap();
    assert_eq!(first.provider_id, again.provider_id);
    assert_ne!(first.provider_id, next.provider_id);
    let mails: Vec<_> = r.sessions().into_iter().map(|s| s.data.unwrap()).collect();
    assert_eq!(mails.len(), 3);
    let parsed: Vec<_> = mails
        .iter()
        .map(|m| MessageParser::default().parse(m).unwrap())
        .collect();
    assert_eq!(parsed[0].message_id(), parsed[1].message_id());
    assert_ne!(parsed[0].message_id(), parsed[2].message_id());
    assert_eq!(
        parsed[0].references().as_text(),
        parsed[2].references().as_text()
    );
}

#[tokio::test]
async fn auth_login_is_used_when_it_is_all_the_relay_offers() {
    let r = Receiver::start(vec![Behaviour {
        auth: "LOGIN",
        ..Behaviour::default()
    }])
    .await;
    let p = SmtpProvider::new(with_login(config(&r, Security::None))).unwrap();
    p.send(&outgoing(KEY, "ann@example.com")).await.unwrap();
    let (mech, user, pass, _) = only(r.sessions()).auth.unwrap();
    assert_eq!(
        (mech.as_str(), user.as_str(), pass.as_str()),
        ("LOGIN", "pager@example.com", "s3cret pässword")
    );
}

#[tokio::test]
async fn a_transient_reply_is_retryable_and_the_resend_goes_through() {
    let r = Receiver::start(vec![
        Behaviour {
            data_reply: "451 4.3.0 Mail server temporarily rejected message",
            ..Behaviour::default()
        },
        Behaviour::default(),
    ])
    .await;
    let p = SmtpProvider::new(config(&r, Security::None)).unwrap();
    match p.send(&outgoing(KEY, "ann@example.com")).await {
        Err(SendError::Retryable {
            reason,
            retry_after: None,
        }) => assert_eq!(
            reason,
            format!(
                "{} answered 451: 4.3.0 Mail server temporarily rejected message",
                r.addr
            )
        ),
        other => panic!("{other:?}"),
    }
    let sent = p.send(&outgoing(KEY, "ann@example.com")).await.unwrap();
    let ids: Vec<_> = r
        .sessions()
        .into_iter()
        .map(|s| {
            MessageParser::default()
                .parse(&s.data.unwrap())
                .unwrap()
                .message_id()
                .map(|i| format!("<{i}>"))
        })
        .collect();
    assert_eq!(ids, [sent.provider_id.clone(), sent.provider_id]);
}

#[tokio::test]
async fn an_unknown_mailbox_is_permanent_and_nothing_is_sent() {
    let r = Receiver::start(vec![Behaviour {
        rcpt_reply: "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown",
        ..Behaviour::default()
    }])
    .await;
    let p = SmtpProvider::new(config(&r, Security::None)).unwrap();
    match p.send(&outgoing(KEY, "nobody@example.com")).await {
        Err(SendError::Permanent {
            status: Some(550),
            reason,
        }) => assert!(
            reason.ends_with("answered 550: 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(only(r.sessions()).data, None);
}

#[tokio::test]
async fn rejected_credentials_are_permanent() {
    let r = Receiver::start(vec![Behaviour {
        auth: "PLAIN",
        auth_reply: "535 5.7.8 Authentication credentials invalid",
        ..Behaviour::default()
    }])
    .await;
    let p = SmtpProvider::new(with_login(config(&r, Security::None))).unwrap();
    match p.send(&outgoing(KEY, "ann@example.com")).await {
        Err(SendError::Permanent {
            status: Some(535),
            reason,
        }) => assert!(
            reason.ends_with("535: 5.7.8 Authentication credentials invalid"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    let s = only(r.sessions());
    assert_eq!((s.mail_from, s.data), (None, None));
}

#[tokio::test]
async fn a_relay_that_never_answers_is_retryable_within_the_timeout() {
    let r = Receiver::start(vec![Behaviour {
        hang: true,
        ..Behaviour::default()
    }])
    .await;
    let c = SmtpConfig {
        timeout: Duration::from_millis(300),
        ..config(&r, Security::None)
    };
    let p = SmtpProvider::new(c).unwrap();
    let started = Instant::now();
    match p.send(&outgoing(KEY, "ann@example.com")).await {
        Err(SendError::Retryable { reason, .. }) => {
            assert_eq!(reason, format!("{} did not answer within 300 ms", r.addr))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = SmtpConfig {
        port: Some(port),
        security: Security::None,
        timeout: Duration::from_secs(2),
        ..SmtpConfig::new("127.0.0.1", "pager@example.com")
    };
    match SmtpProvider::new(c)
        .unwrap()
        .send(&outgoing(KEY, "ann@example.com"))
        .await
    {
        Err(SendError::Retryable { reason, .. }) => {
            assert!(
                reason.starts_with(&format!("could not deliver to 127.0.0.1:{port}")),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn starttls_upgrades_before_credentials_and_message() {
    let r = Receiver::start(vec![Behaviour {
        tls: Some(tls_config()),
        auth: "PLAIN LOGIN",
        ..Behaviour::default()
    }])
    .await;
    let c = SmtpConfig {
        ca_file: Some(ca_file()),
        ..with_login(config(&r, Security::Starttls))
    };
    let sent = SmtpProvider::new(c)
        .unwrap()
        .send(&outgoing(KEY, "ann@example.com"))
        .await;
    assert!(sent.is_ok(), "{sent:?}");
    let s = only(r.sessions());
    assert_eq!(s.commands.iter().filter(|c| *c == "STARTTLS").count(), 1);
    // EHLO again after the upgrade, as RFC 3207 requires.
    assert_eq!(s.ehlo.len(), 2);
    let (_, user, pass, over_tls) = s.auth.unwrap();
    assert!(over_tls, "credentials were sent before STARTTLS");
    assert_eq!(
        (user.as_str(), pass.as_str()),
        ("pager@example.com", "s3cret pässword")
    );
    assert!(s.tls, "the message was sent before STARTTLS");
    assert!(s.data.is_some());
}

#[tokio::test]
async fn implicit_tls_speaks_tls_from_the_first_byte() {
    let r = Receiver::start(vec![Behaviour {
        tls: Some(tls_config()),
        implicit_tls: true,
        ..Behaviour::default()
    }])
    .await;
    let c = SmtpConfig {
        ca_file: Some(ca_file()),
        ..config(&r, Security::Tls)
    };
    let sent = SmtpProvider::new(c)
        .unwrap()
        .send(&outgoing(KEY, "ann@example.com"))
        .await;
    assert!(sent.is_ok(), "{sent:?}");
    let s = only(r.sessions());
    assert!(s.tls && s.data.is_some());
    assert!(!s.commands.iter().any(|c| c == "STARTTLS"));
}

#[tokio::test]
async fn starttls_required_but_not_offered_fails_without_sending_in_clear() {
    let r = Receiver::start(vec![Behaviour {
        auth: "PLAIN LOGIN",
        ..Behaviour::default()
    }])
    .await;
    let c = SmtpConfig {
        ca_file: Some(ca_file()),
        ..with_login(config(&r, Security::Starttls))
    };
    match SmtpProvider::new(c)
        .unwrap()
        .send(&outgoing(KEY, "ann@example.com"))
        .await
    {
        Err(SendError::Permanent {
            status: None,
            reason,
        }) => assert_eq!(
            reason,
            format!(
                "{} does not offer STARTTLS; not sending in clear (security = \"starttls\")",
                r.addr
            )
        ),
        other => panic!("{other:?}"),
    }
    let s = only(r.sessions());
    assert_eq!(s.auth, None, "credentials went out in clear");
    assert_eq!((s.mail_from, s.data), (None, None));
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let r = Receiver::start(vec![Behaviour {
        tls: Some(tls_config()),
        auth: "PLAIN",
        ..Behaviour::default()
    }])
    .await;
    // No ca_file: the test CA is not among the trusted roots.
    let c = with_login(config(&r, Security::Starttls));
    let err = SmtpProvider::new(c)
        .unwrap()
        .send(&outgoing(KEY, "ann@example.com"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.reason().contains("could not deliver") && err.reason().contains("UnknownIssuer"),
        "{err:?}"
    );
    let s = only(r.sessions());
    assert_eq!(s.auth, None);
    assert_eq!((s.mail_from, s.data), (None, None));
}

#[tokio::test]
async fn an_address_that_is_not_a_mailbox_is_permanent_before_connecting() {
    let r = Receiver::start(vec![Behaviour::default()]).await;
    let p = SmtpProvider::new(config(&r, Security::None)).unwrap();
    match p.send(&outgoing(KEY, "not an address")).await {
        Err(SendError::Permanent { status: None, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(r.sessions().is_empty());
}
