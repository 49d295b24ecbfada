//! Email in over real SMTP on loopback: lettre (the client outbound mail will use)
//! talks to the listener; mail becomes alerts, replies count, resolutions resolve,
//! and refusals happen at the SMTP stage that RFC 5321 gives them.

use std::sync::Arc;

use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::{Message, SmtpTransport, Transport};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tocsin_server::smtp::{self, SmtpOptions};
use tocsin_server::{AppState, Limits};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::ingest::service_with_key;
use crate::support::{test_settings, TestApp};

/// The app's store behind an SMTP listener on an ephemeral port.
struct Smtp {
    port: u16,
    _stop: watch::Sender<bool>,
}

async fn smtp(app: &TestApp, opts: SmtpOptions) -> Smtp {
    let state = AppState::new(
        app.store.clone(),
        test_settings(),
        Arc::new(app.clock.clone()),
        Limits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(smtp::serve(listener, state, opts, stopped));
    Smtp { port, _stop: stop }
}

/// Sends with lettre's SMTP client; Err is the server's reply code and text.
async fn send(s: &Smtp, msg: Message) -> Result<(), String> {
    let port = s.port;
    tokio::task::spawn_blocking(move || {
        let t = SmtpTransport::builder_dangerous("127.0.0.1")
            .port(port)
            .build();
        t.send(&msg).map(|_| ()).map_err(|e| {
            format!(
                "{} {e}",
                e.status().map(|c| c.to_string()).unwrap_or_default()
            )
        })
    })
    .await
    .unwrap()
}

async fn send_raw(s: &Smtp, to: &str, raw: Vec<u8>) -> Result<(), String> {
    let (port, to) = (s.port, to.to_string());
    tokio::task::spawn_blocking(move || {
        let t = SmtpTransport::builder_dangerous("127.0.0.1")
            .port(port)
            .build();
        let env = Envelope::new(
            Some("mon@example.com".parse().unwrap()),
            vec![to.parse().unwrap()],
        )
        .unwrap();
        t.send_raw(&env, &raw).map(|_| ()).map_err(|e| {
            format!(
                "{} {e}",
                e.status().map(|c| c.to_string()).unwrap_or_default()
            )
        })
    })
    .await
    .unwrap()
}

fn mail(key: &str, subject: &str, id: &str) -> lettre::message::MessageBuilder {
    Message::builder()
        .from("Nagios <nagios@mon.example.com>".parse().unwrap())
        .to(format!("{key}@alerts.example.com").parse().unwrap())
        .subject(subject)
        .message_id(Some(format!("<{id}@mon.example.com>")))
}

async fn alerts(app: &TestApp, svc: i64) -> Vec<Value> {
    app.get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn mail_opens_an_alert_replies_count_and_resolution_resolves(app: TestApp) {
    let (svc, key) = service_with_key(&app, "mail-db").await;
    let s = smtp(&app, SmtpOptions::default()).await;
    let m = mail(&key, "PROBLEM: disk full on db-1", "m1")
        .header(ContentType::TEXT_PLAIN)
        .body("Disk / is 98% full.\n.hidden dot line\n".to_string())
        .unwrap();
    send(&s, m).await.expect("accepted");

    let a = alerts(&app, svc).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["integration"], "email");
    assert_eq!(a[0]["summary"], "PROBLEM: disk full on db-1");
    assert_eq!(a[0]["source"], "nagios@mon.example.com");
    assert_eq!(a[0]["dedup_key"], "m1@mon.example.com");
    assert_eq!(a[0]["status"], "triggered");
    assert_eq!(
        a[0]["details"]["body"], "Disk / is 98% full.\n.hidden dot line",
        "a leading dot survives the transfer (dot-stuffing undone)"
    );
    let incident_id = a[0]["incident_id"].as_i64().unwrap();
    let inc = app
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await
        .body;
    assert_eq!(inc["title"], "PROBLEM: disk full on db-1");
    assert_eq!(inc["status"], "triggered");
    let raw = app
        .get(&format!("/api/v1/alerts/{}", a[0]["id"]))
        .await
        .body["raw"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(raw.contains("Message-ID: <m1@mon.example.com>"), "{raw}");

    // A reply in the thread counts on the same alert.
    let reply = mail(&key, "Re: PROBLEM: disk full on db-1", "m2")
        .in_reply_to("<m1@mon.example.com>".into())
        .references("<m1@mon.example.com>".into())
        .body("Still full.".to_string())
        .unwrap();
    send(&s, reply).await.expect("accepted");
    let a = alerts(&app, svc).await;
    assert_eq!((a.len(), a[0]["count"].as_i64()), (1, Some(2)));

    // The recovery mail of the thread resolves it, and the incident follows.
    let resolved = mail(&key, "RESOLVED: disk full on db-1", "m3")
        .references("<m1@mon.example.com> <m2@mon.example.com>".into())
        .body("Disk / is 40% full.".to_string())
        .unwrap();
    send(&s, resolved).await.expect("accepted");
    let a = alerts(&app, svc).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["status"], "resolved");
    let inc = app
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await
        .body;
    assert_eq!(inc["status"], "resolved");
    let incidents = app
        .get(&format!("/api/v1/incidents?service_id={svc}"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(incidents, 1);
}

async fn unknown_and_revoked_keys_are_refused_at_rcpt(app: TestApp) {
    let (svc, key) = service_with_key(&app, "mail-keys").await;
    let s = smtp(&app, SmtpOptions::default()).await;
    let before = app.counts().await;
    let err = send(
        &s,
        mail("nosuchkey", "x", "u1").body(String::new()).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.starts_with("550"), "{err}");

    let keys = app
        .get(&format!("/api/v1/services/{svc}/integration-keys"))
        .await
        .body;
    let key_id = keys[0]["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/services/{svc}/integration-keys/{key_id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let before_revoked = app.counts().await;
    let err = send(&s, mail(&key, "x", "u2").body(String::new()).unwrap())
        .await
        .unwrap_err();
    assert!(err.starts_with("550"), "{err}");
    assert_eq!(app.counts().await, before_revoked, "nothing stored");
    assert_ne!(before, before_revoked, "the revocation itself is logged");
}

async fn oversize_mail_is_refused(app: TestApp) {
    let (svc, key) = service_with_key(&app, "mail-size").await;
    let s = smtp(
        &app,
        SmtpOptions {
            max_message_bytes: 4096,
            ..Default::default()
        },
    )
    .await;
    let before = app.counts().await;
    let big = mail(&key, "big", "b1")
        .body("x".repeat(70).repeat(100))
        .unwrap();
    let err = send(&s, big).await.unwrap_err();
    assert!(err.starts_with("552"), "{err}");
    assert_eq!(app.counts().await, before);
    // Under the limit, the same listener takes it.
    let small = mail(&key, "small", "b2").body("ok".to_string()).unwrap();
    send(&s, small).await.expect("accepted");
    assert_eq!(alerts(&app, svc).await.len(), 1);
}

async fn multipart_mail_with_an_encoded_subject_is_decoded(app: TestApp) {
    let (svc, key) = service_with_key(&app, "mail-mime").await;
    let s = smtp(&app, SmtpOptions::default()).await;
    let raw = "From: =?ISO-8859-1?Q?J=F6rg?= <joerg@mon.example.com>\r\n\
        To: KEY@alerts.example.com\r\n\
        Subject: =?UTF-8?B?UGxhdHRlIHZvbGwg4oCTIE3DvG5jaGVu?=\r\n\
        Message-ID: <mime1@mon.example.com>\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=\"sep\"\r\n\
        \r\n\
        --sep\r\n\
        Content-Type: text/html; charset=utf-8\r\n\
        \r\n\
        <p>HTML version</p>\r\n\
        --sep\r\n\
        Content-Type: text/plain; charset=iso-8859-1\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\
        \r\n\
        Gr=FC=DFe: Platte in M=FCnchen ist voll.\r\n\
        --sep--\r\n"
        .replace("KEY", &key);
    // Upper case local part: keys are matched case-insensitively.
    send_raw(
        &s,
        &format!("{}@alerts.example.com", key.to_uppercase()),
        raw.into_bytes(),
    )
    .await
    .expect("accepted");
    let a = alerts(&app, svc).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["summary"], "Platte voll – München");
    assert_eq!(
        a[0]["details"]["body"],
        "Grüße: Platte in München ist voll."
    );
    assert_eq!(a[0]["details"]["from"], "Jörg <joerg@mon.example.com>");
}

/// A line-by-line SMTP conversation over a raw socket.
struct Conversation {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Conversation {
    async fn open(s: &Smtp) -> (Conversation, String) {
        let (r, w) = TcpStream::connect(("127.0.0.1", s.port))
            .await
            .unwrap()
            .into_split();
        let mut c = Conversation {
            r: BufReader::new(r),
            w,
        };
        let greeting = c.reply().await;
        (c, greeting)
    }

    // One reply, multi-line replies joined.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).await.unwrap();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    // Waits until the server closes the connection.
    async fn closed(&mut self) {
        let mut rest = String::new();
        while self.r.read_line(&mut rest).await.unwrap() > 0 {}
    }

    async fn say(&mut self, line: &str) -> String {
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }
}

async fn the_protocol_is_strict_and_a_store_failure_asks_for_a_retry(app: TestApp) {
    let (svc, key) = service_with_key(&app, "mail-proto").await;
    let s = smtp(
        &app,
        SmtpOptions {
            max_message_bytes: 10_000,
            ..Default::default()
        },
    )
    .await;
    let (mut c, greeting) = Conversation::open(&s).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert!(c.say("MAIL FROM:<a@x>").await.starts_with("503"));
    let ehlo = c.say("EHLO client.example.com").await;
    assert!(
        ehlo.starts_with("250-") && ehlo.contains("250-SIZE 10000"),
        "{ehlo}"
    );
    assert!(c.say("VRFY postmaster").await.starts_with("502"));
    assert!(c.say("RCPT TO:<x@y>").await.starts_with("503"));
    assert!(c.say("DATA").await.starts_with("503"));
    assert!(c.say("MAIL FROM:<a@x> SIZE=20000").await.starts_with("552"));
    assert!(c
        .say(&format!("HELP{}", "x".repeat(600)))
        .await
        .starts_with("500 5.5.2"));
    assert!(c.say("MAIL FROM:<a@x> SIZE=200").await.starts_with("250"));
    assert!(
        c.say("MAIL FROM:<a@x>").await.starts_with("503"),
        "one sender per mail"
    );
    assert!(c.say("RCPT TO:<unknown@y>").await.starts_with("550"));
    assert!(
        c.say("DATA").await.starts_with("503"),
        "no valid recipient yet"
    );
    assert!(c
        .say(&format!("RCPT TO:<{key}@alerts.example.com>"))
        .await
        .starts_with("250"));
    assert!(c.say("RSET").await.starts_with("250"));
    assert!(
        c.say("DATA").await.starts_with("503"),
        "RSET forgot the envelope"
    );
    assert!(c.say("NOOP").await.starts_with("250"));
    assert!(c.say("MAIL FROM:<>").await.starts_with("250"));
    assert!(c
        .say(&format!("rcpt to:<{key}@alerts.example.com>"))
        .await
        .starts_with("250"));
    assert!(c.say("DATA").await.starts_with("354"));
    let done = c
        .say(
            "From: cron@x\r\nSubject: backup failed\r\nMessage-ID: <p1@x>\r\n\r\n..\r\n...two\r\n.",
        )
        .await;
    assert!(done.starts_with("250 2.0.0"), "{done}");
    let a = alerts(&app, svc).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["details"]["body"], ".\n..two");

    // The database goes away between RCPT and the end of DATA: 451, so the sender retries.
    assert!(c.say("MAIL FROM:<a@x>").await.starts_with("250"));
    assert!(c
        .say(&format!("RCPT TO:<{key}@alerts.example.com>"))
        .await
        .starts_with("250"));
    assert!(c.say("DATA").await.starts_with("354"));
    app.store.close().await;
    let done = c
        .say("From: cron@x\r\nSubject: backup failed again\r\n\r\nbody\r\n.")
        .await;
    assert!(done.starts_with("451"), "{done}");
    assert!(c.say("QUIT").await.starts_with("221"));
}

async fn connections_are_capped_and_idle_ones_time_out(app: TestApp) {
    let s = smtp(
        &app,
        SmtpOptions {
            max_connections: 1,
            command_timeout: std::time::Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await;
    let (mut first, greeting) = Conversation::open(&s).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let (_, refused) = Conversation::open(&s).await;
    assert!(refused.starts_with("421 4.3.2"), "{refused}");
    // The first connection says nothing: the server gives up on it and frees its slot.
    let bye = first.reply().await;
    assert!(bye.starts_with("421 4.4.2"), "{bye}");
    first.closed().await;
    let (_, again) = Conversation::open(&s).await;
    assert!(again.starts_with("220 "), "{again}");
}

// Limits that keep one sender from exhausting the listener: connections per address,
// a memory budget shared by all sessions, and data that only CRLF.CRLF ends.
async fn one_sender_cannot_exhaust_the_listener(app: TestApp) {
    let (_, key) = service_with_key(&app, "mail-limits").await;
    let s = smtp(
        &app,
        SmtpOptions {
            max_connections_per_ip: 2,
            memory_budget: 2000,
            ..Default::default()
        },
    )
    .await;
    let (mut a, g) = Conversation::open(&s).await;
    assert!(g.starts_with("220 "), "{g}");
    let (_b, g) = Conversation::open(&s).await;
    assert!(g.starts_with("220 "), "{g}");
    let (_, refused) = Conversation::open(&s).await;
    assert!(refused.starts_with("421 4.7.0"), "{refused}");

    // A message larger than the shared budget is deferred, not refused for good.
    assert!(a.say("EHLO mon").await.starts_with("250"));
    assert!(a
        .say("MAIL FROM:<mon@example.com>")
        .await
        .starts_with("250"));
    assert!(a
        .say(&format!("RCPT TO:<{key}@tocsin>"))
        .await
        .starts_with("250"));
    assert!(a.say("DATA").await.starts_with("354"));
    let body = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(76).repeat(40));
    a.w.write_all(body.as_bytes()).await.unwrap();
    let answer = a.say(".").await;
    assert!(answer.starts_with("452"), "{answer}");
    let before = app.counts().await;

    // A bare-LF dot does not end the data: the smuggled "mail" after it is content.
    assert!(a
        .say("MAIL FROM:<mon@example.com>")
        .await
        .starts_with("250"));
    assert!(a
        .say(&format!("RCPT TO:<{key}@tocsin>"))
        .await
        .starts_with("250"));
    assert!(a.say("DATA").await.starts_with("354"));
    a.w.write_all(
        b"Subject: first\r\nMessage-ID: <s1@x>\r\n\r\nhello\n.\nMAIL FROM:<evil@x>\r\nbye\n.\r\nRCPT TO:<evil@y>\r\n",
    )
        .await
        .unwrap();
    let answer = a.say(".").await;
    assert!(answer.starts_with("250"), "{answer}");
    assert_eq!(
        app.counts()
            .await
            .iter()
            .find(|(t, _)| t == "alerts")
            .unwrap()
            .1,
        before.iter().find(|(t, _)| t == "alerts").unwrap().1 + 1,
        "one mail, one alert"
    );
    let (alert, raw) = {
        let list = app.get("/api/v1/alerts?limit=1").await.body["items"][0].clone();
        app.store.alert(list["id"].as_i64().unwrap()).await.unwrap()
    };
    assert_eq!(alert.summary, "first");
    assert!(raw.contains("MAIL FROM:<evil@x>"), "{raw}");
    assert!(
        raw.contains("RCPT TO:<evil@y>"),
        "LF.CRLF does not end the data either: {raw}"
    );
}

crate::both_backends!(
    one_sender_cannot_exhaust_the_listener,
    connections_are_capped_and_idle_ones_time_out,
    mail_opens_an_alert_replies_count_and_resolution_resolves,
    unknown_and_revoked_keys_are_refused_at_rcpt,
    oversize_mail_is_refused,
    multipart_mail_with_an_encoded_subject_is_decoded,
    the_protocol_is_strict_and_a_store_failure_asks_for_a_retry
);
