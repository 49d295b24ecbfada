//! The Twilio providers against a local stand-in for api.twilio.com that checks
//! each request the way Twilio does (account path, basic auth, form encoding,
//! required parameters, E.164 numbers, well-formed TwiML within 4000 characters)
//! and answers in Twilio's documented shapes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use tocsin_core::escalation::{Channel, ContactKind, Urgency};
use tocsin_core::time::FakeClock;
use tocsin_notify::{
    IncidentSummary, Message, Outgoing, Provider, Recipient, SendError, Sent, TwilioConfig,
    TwilioSmsProvider, TwilioVoiceProvider,
};

const SID: &str = "ACaaaabbbbccccddddeeeeffff00001111";
const TOKEN: &str = "auth-token-1234";
const FROM: &str = "+15017122661";
const TO: &str = "+15558675310";

/// One request as Twilio received it, form decoded.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    form: Vec<(String, String)>,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the stand-in answers a request that passed its checks.
#[derive(Debug, Clone)]
enum Reply {
    Error(u16, Vec<(&'static str, &'static str)>, Value),
    Raw(u16, &'static str),
}

#[derive(Clone, Default)]
struct FakeTwilio {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl FakeTwilio {
    async fn start(script: Vec<Reply>) -> (FakeTwilio, SocketAddr) {
        let t = FakeTwilio {
            seen: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        };
        let app = axum::Router::new().fallback(receive).with_state(t.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (t, addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Twilio's error body (https://www.twilio.com/docs/usage/twilios-response).
fn twilio_error(status: u16, code: u64, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

async fn receive(
    State(t): State<FakeTwilio>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let resource = path
        .strip_prefix(&format!("/2010-04-01/Accounts/{SID}/"))
        .and_then(|r| r.strip_suffix(".json"));
    let resource = match (method == Method::POST, resource) {
        (true, Some(r @ ("Messages" | "Calls"))) => r,
        _ => return twilio_error(404, 20404, "The requested resource was not found"),
    };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let form_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return twilio_error(400, 20001, "Content-Type must be form encoded");
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let seen = Seen {
        path: path.clone(),
        form,
    };
    t.seen.lock().unwrap().push(seen.clone());
    let Some(to) = seen.param("To") else {
        return twilio_error(400, 21604, "A 'To' phone number is required.");
    };
    if !e164(to) {
        return twilio_error(400, 21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    // Twilio requests StatusCallback with POST, so it must be a full http(s) URL.
    if let Some(cb) = seen.param("StatusCallback") {
        if !(cb.starts_with("https://") || cb.starts_with("http://")) {
            return twilio_error(400, 21609, "Invalid StatusCallback url");
        }
    }
    if resource == "Messages" {
        if seen.param("From").is_none() && seen.param("MessagingServiceSid").is_none() {
            return twilio_error(400, 21603, "A 'From' phone number is required.");
        }
        match seen.param("Body") {
            None | Some("") => return twilio_error(400, 21602, "Message body is required."),
            Some(b) if b.chars().count() > 1600 => {
                return twilio_error(
                    400,
                    21617,
                    "The concatenated message body exceeds the 1600 character limit.",
                )
            }
            _ => {}
        }
    } else {
        if !seen.param("From").is_some_and(e164) {
            return twilio_error(400, 21212, "Invalid 'From' Phone Number");
        }
        let Some(twiml) = seen.param("Twiml") else {
            return twilio_error(400, 21205, "Url, ApplicationSid or Twiml is required");
        };
        if twiml.chars().count() > 4000 {
            return twilio_error(
                400,
                32018,
                "Twiml size exceeded maximum allowed value of 4000 characters",
            );
        }
        match roxmltree::Document::parse(twiml) {
            Ok(doc) if doc.root_element().has_tag_name("Response") => {}
            _ => return twilio_error(400, 12100, "Document parse failure"),
        }
    }
    let reply = t.script.lock().unwrap().pop_front();
    match reply {
        None => created(resource, to, &seen),
        Some(Reply::Error(status, headers, body)) => {
            let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            for (k, v) in headers {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            r
        }
        Some(Reply::Raw(status, body)) => {
            (StatusCode::from_u16(status).unwrap(), body).into_response()
        }
    }
}

/// 201 with the created resource, abridged from Twilio's documented examples.
fn created(resource: &str, to: &str, seen: &Seen) -> Response {
    let body = if resource == "Messages" {
        json!({
            "account_sid": SID, "api_version": "2010-04-01", "body": seen.param("Body"),
            "date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "direction": "outbound-api",
            "error_code": null, "error_message": null, "from": seen.param("From"),
            "messaging_service_sid": seen.param("MessagingServiceSid"), "num_media": "0",
            "num_segments": "1", "price": null, "sid": "SMaaaabbbbccccddddeeeeffff00001111",
            "status": "queued", "to": to,
            "uri": format!("/2010-04-01/Accounts/{SID}/Messages/SMaaaabbbbccccddddeeeeffff00001111.json"),
        })
    } else {
        json!({
            "account_sid": SID, "api_version": "2010-04-01", "direction": "outbound-api",
            "from": seen.param("From"), "sid": "CAaaaabbbbccccddddeeeeffff00001111",
            "status": "queued", "to": to,
            "uri": format!("/2010-04-01/Accounts/{SID}/Calls/CAaaaabbbbccccddddeeeeffff00001111.json"),
        })
    };
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn config(addr: SocketAddr) -> TwilioConfig {
    TwilioConfig {
        api_base_url: format!("http://{addr}"),
        timeout_seconds: 2,
        ..TwilioConfig::new(SID, TOKEN, FROM)
    }
}

fn clock() -> Arc<FakeClock> {
    Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 1, 30, 0).unwrap(),
    ))
}

fn outgoing(kind: ContactKind, to: &str, title: &str) -> Outgoing {
    Outgoing {
        idempotency_key: "esc:7:s0:r0:l0:u3:c9:n1".into(),
        recipient: Recipient {
            user_id: 3,
            contact_method_id: 9,
            kind,
            channel: if kind == ContactKind::Voice {
                Channel::Voice
            } else {
                Channel::Sms
            },
            address: to.into(),
            target: to.into(),
        },
        message: Message::for_incident(IncidentSummary {
            id: 7,
            number: 12,
            title: title.into(),
            urgency: Urgency::High,
            level: Some(1),
            links: vec![],
            actions: vec![],
        }),
    }
}

async fn sms(script: Vec<Reply>, to: &str) -> (Result<Sent, SendError>, Vec<Seen>) {
    let (t, addr) = FakeTwilio::start(script).await;
    let p = TwilioSmsProvider::new(config(addr))
        .unwrap()
        .with_clock(clock());
    let r = p
        .send(&outgoing(ContactKind::Sms, to, "Database down"))
        .await;
    (r, t.seen())
}

#[tokio::test]
async fn a_text_is_a_form_post_to_the_accounts_messages() {
    let (result, seen) = sms(vec![], TO).await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: Some("SMaaaabbbbccccddddeeeeffff00001111".into()),
            status: 201
        })
    );
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(
        req.path,
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    let mut names: Vec<&str> = req.form.iter().map(|(k, _)| k.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Body", "From", "To"]);
    assert_eq!(req.param("To"), Some(TO));
    assert_eq!(req.param("From"), Some(FROM));
    assert_eq!(
        req.param("Body"),
        Some("Tocsin #12 high: Database down Reply 12 ack / 12 resolve")
    );
}

#[tokio::test]
async fn a_messaging_service_replaces_from() {
    let (t, addr) = FakeTwilio::start(vec![]).await;
    let c = TwilioConfig {
        from: None,
        messaging_service_sid: Some("MG0123456789abcdef0123456789abcdef".into()),
        reply_hint: false,
        ..config(addr)
    };
    let p = TwilioSmsProvider::new(c).unwrap();
    let r = p
        .send(&outgoing(ContactKind::Sms, TO, "Database down"))
        .await;
    assert!(r.is_ok(), "{r:?}");
    let req = &t.seen()[0];
    assert_eq!(
        req.param("MessagingServiceSid"),
        Some("MG0123456789abcdef0123456789abcdef")
    );
    assert_eq!(req.param("From"), None);
    assert_eq!(req.param("Body"), Some("Tocsin #12 high: Database down"));
}

#[tokio::test]
async fn wrong_credentials_are_permanent() {
    let (t, addr) = FakeTwilio::start(vec![]).await;
    let c = TwilioConfig {
        auth_token: "wrong".into(),
        ..config(addr)
    };
    let r = TwilioSmsProvider::new(c)
        .unwrap()
        .send(&outgoing(ContactKind::Sms, TO, "x"))
        .await;
    match r {
        Err(SendError::Permanent { status, reason }) => {
            assert_eq!(status, Some(401));
            assert!(
                reason.contains("Twilio error 20003: Authenticate"),
                "{reason}"
            );
            assert!(
                reason.contains("check account_sid and auth_token"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(t.seen().is_empty(), "refused before reading the form");
}

#[tokio::test]
async fn twilio_refusals_are_permanent_with_code_and_message() {
    // An opted-out recipient (they texted STOP): no retry can reach them.
    let (result, _) = sms(
        vec![Reply::Error(
            400,
            vec![],
            json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient",
                   "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}),
        )],
        TO,
    )
    .await;
    assert_eq!(
        result,
        Err(SendError::Permanent {
            status: Some(400),
            reason: "HTTP 400: Twilio error 21610: Attempt to send to unsubscribed recipient \
                     (https://www.twilio.com/docs/errors/21610)"
                .into()
        })
    );
}

#[tokio::test]
async fn a_full_sender_queue_is_retryable() {
    let (result, _) = sms(
        vec![Reply::Error(
            400,
            vec![],
            json!({"code": 21611, "message": "This 'From' number has exceeded the maximum number of queued messages",
                   "more_info": "https://www.twilio.com/docs/errors/21611", "status": 400}),
        )],
        TO,
    )
    .await;
    assert!(
        matches!(result, Err(SendError::Retryable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_address_that_is_not_e164_is_refused_before_sending() {
    for bad in ["5558675310", "+1 555 867 5310", "slack:C123"] {
        let (result, seen) = sms(vec![], bad).await;
        match result {
            Err(SendError::Permanent {
                status: None,
                reason,
            }) => {
                assert!(reason.contains("E.164"), "{reason}")
            }
            other => panic!("{bad}: {other:?}"),
        }
        assert!(seen.is_empty(), "{bad}");
    }
}

#[tokio::test]
async fn throttling_is_retryable_after_the_wait_asked_for() {
    let (result, _) = sms(
        vec![Reply::Error(
            429,
            vec![("retry-after", "3")],
            json!({"code": 20429, "message": "Too Many Requests",
                   "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}),
        )],
        TO,
    )
    .await;
    assert_eq!(
        result,
        Err(SendError::Retryable {
            reason: "HTTP 429: Twilio error 20429: Too Many Requests \
                     (https://www.twilio.com/docs/errors/20429)"
                .into(),
            retry_after: Some(Duration::from_secs(3)),
        })
    );
}

#[tokio::test]
async fn server_errors_are_retryable_even_without_json() {
    let (result, _) = sms(vec![Reply::Raw(500, "<html>oops</html>")], TO).await;
    assert_eq!(
        result,
        Err(SendError::Retryable {
            reason: "HTTP 500 Internal Server Error: <html>oops</html>".into(),
            retry_after: None,
        })
    );
    let (result, _) = sms(
        vec![Reply::Error(
            503,
            vec![],
            json!({"code": 20500, "message": "Internal Server Error", "status": 503}),
        )],
        TO,
    )
    .await;
    assert!(
        matches!(result, Err(SendError::Retryable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = TwilioSmsProvider::new(config(addr))
        .unwrap()
        .send(&outgoing(ContactKind::Sms, TO, "x"))
        .await;
    assert!(
        matches!(&r, Err(SendError::Retryable { reason, .. }) if reason.starts_with("could not connect")),
        "{r:?}"
    );
    // The reason is kept with the notification: no URL (the account SID is in it).
    assert!(!format!("{r:?}").contains(SID), "{r:?}");
}

/// The text of every `<Say>` in a TwiML document, in order, and the document's root.
fn says(twiml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(twiml).expect("well-formed TwiML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response");
    root.children()
        .filter(|n| n.is_element())
        .inspect(|n| {
            assert!(
                ["Say", "Pause"].contains(&n.tag_name().name()),
                "{:?}",
                n.tag_name()
            )
        })
        .filter(|n| n.has_tag_name("Say"))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn a_call_reads_the_page_from_inline_twiml() {
    let (t, addr) = FakeTwilio::start(vec![]).await;
    let p = TwilioVoiceProvider::new(config(addr)).unwrap();
    let title = "DB <primary> & \"replica\" down";
    let r = p.send(&outgoing(ContactKind::Voice, TO, title)).await;
    assert_eq!(
        r,
        Ok(Sent {
            provider_id: Some("CAaaaabbbbccccddddeeeeffff00001111".into()),
            status: 201
        })
    );
    let req = &t.seen()[0];
    assert_eq!(req.path, format!("/2010-04-01/Accounts/{SID}/Calls.json"));
    let mut names: Vec<&str> = req.form.iter().map(|(k, _)| k.as_str()).collect();
    names.sort();
    assert_eq!(names, ["From", "To", "Twiml"]);
    assert_eq!(req.param("From"), Some(FROM));
    let twiml = req.param("Twiml").unwrap();
    let said = format!("Tocsin alert. Incident 12, high urgency: {title}. Escalation level 1.");
    // The parser un-escapes: what is read aloud is the title exactly.
    assert_eq!(
        says(twiml),
        [
            said.as_str(),
            said.as_str(),
            "To acknowledge, reply 12 ack to the text message, or use the link in your other notifications.",
            "Goodbye."
        ]
    );
    assert!(
        twiml.contains("&lt;primary&gt; &amp; &quot;replica&quot;"),
        "{twiml}"
    );
}

#[tokio::test]
async fn a_hostile_title_cannot_add_twiml_verbs() {
    let (t, addr) = FakeTwilio::start(vec![]).await;
    let p = TwilioVoiceProvider::new(TwilioConfig {
        voice_repeat: 1,
        ..config(addr)
    })
    .unwrap();
    let title = "x</Say><Dial>+19005550000</Dial><Say>";
    let r = p.send(&outgoing(ContactKind::Voice, TO, title)).await;
    assert!(r.is_ok(), "{r:?}");
    let twiml = t.seen()[0].param("Twiml").unwrap().to_string();
    let said = says(&twiml);
    assert_eq!(said.len(), 3, "{twiml}");
    assert!(said[0].contains(title));
}

#[tokio::test]
async fn a_long_title_keeps_the_twiml_within_twilios_limit() {
    let (t, addr) = FakeTwilio::start(vec![]).await;
    let p = TwilioVoiceProvider::new(TwilioConfig {
        voice_repeat: 3,
        ..config(addr)
    })
    .unwrap();
    let r = p
        .send(&outgoing(ContactKind::Voice, TO, &"&<>\"'".repeat(400)))
        .await;
    assert!(r.is_ok(), "{r:?}");
    let twiml = t.seen()[0].param("Twiml").unwrap().to_string();
    assert!(twiml.chars().count() <= 4000);
    assert!(says(&twiml).len() >= 3);
}

#[tokio::test]
async fn an_unanswered_call_request_times_out_retryably() {
    // A listener that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let p = TwilioVoiceProvider::new(TwilioConfig {
        timeout_seconds: 1,
        ..config(addr)
    })
    .unwrap();
    let r = p.send(&outgoing(ContactKind::Voice, TO, "x")).await;
    hold.abort();
    assert_eq!(
        r,
        Err(SendError::Retryable {
            reason: "no answer within 1000 ms".into(),
            retry_after: None
        })
    );
}

#[tokio::test]
async fn an_answer_that_is_json_but_not_twilios_error_is_kept_as_it_was() {
    let (result, _) = sms(
        vec![Reply::Error(502, vec![], json!({"gateway": "down"}))],
        TO,
    )
    .await;
    assert_eq!(
        result,
        Err(SendError::Retryable {
            reason: "HTTP 502 Bad Gateway: {\"gateway\":\"down\"}".into(),
            retry_after: None,
        })
    );
}

#[tokio::test]
async fn with_a_keypad_the_call_gathers_one_key_for_tocsin() {
    let (t, addr) = FakeTwilio::start(vec![]).await;
    let p = TwilioVoiceProvider::new(TwilioConfig {
        voice_repeat: 1,
        ..config(addr)
    })
    .unwrap()
    .with_keypad("https://tocsin.example.com/");
    let r = p
        .send(&outgoing(ContactKind::Voice, TO, "Disk & <full>"))
        .await;
    assert!(r.is_ok(), "{r:?}");
    let twiml = t.seen()[0].param("Twiml").unwrap().to_string();
    let doc = roxmltree::Document::parse(&twiml).unwrap();
    let gather = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("Gather"))
        .expect("a Gather");
    assert_eq!(gather.attribute("numDigits"), Some("1"));
    assert_eq!(gather.attribute("method"), Some("POST"));
    assert_eq!(
        gather.attribute("action"),
        Some("https://tocsin.example.com/hooks/twilio/voice?incident=7")
    );
    let inside: Vec<&str> = gather
        .children()
        .filter(|n| n.has_tag_name("Say"))
        .map(|n| n.text().unwrap())
        .collect();
    assert_eq!(
        inside,
        [
            "Tocsin alert. Incident 12, high urgency: Disk & <full>. Escalation level 1.",
            "Press 4 to acknowledge, or 6 to resolve."
        ]
    );
}

#[tokio::test]
async fn with_a_public_url_twilio_reports_each_outcome_to_tocsin() {
    let (t, addr) = FakeTwilio::start(vec![]).await;
    let text = TwilioSmsProvider::new(config(addr))
        .unwrap()
        .with_status_callback("https://tocsin.example.com/");
    let call = TwilioVoiceProvider::new(config(addr))
        .unwrap()
        .with_status_callback("https://tocsin.example.com");
    let out = outgoing(ContactKind::Sms, TO, "Database down");
    assert!(text.send(&out).await.is_ok());
    let out_call = outgoing(ContactKind::Voice, TO, "Database down");
    assert!(call.send(&out_call).await.is_ok());
    let seen = t.seen();
    for (req, out) in seen.iter().zip([&out, &out_call]) {
        let cb = req.param("StatusCallback").expect("a status callback");
        let (base, query) = cb.split_once('?').unwrap();
        assert_eq!(base, "https://tocsin.example.com/hooks/twilio/status");
        let key: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(key, [("key".to_string(), out.idempotency_key.clone())]);
    }
    // Without a public URL, no callback is asked for.
    let (result, seen) = sms(vec![], TO).await;
    assert!(result.is_ok());
    assert_eq!(seen[0].param("StatusCallback"), None);
}
