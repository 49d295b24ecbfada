//! The webhook provider against a real HTTP receiver on a loopback port: what
//! arrives (body, headers, signature) and how each kind of answer is classified.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tocsin_core::action_link::LinkAction;
use tocsin_core::escalation::{Channel, ContactKind, Urgency};
use tocsin_core::time::{Clock, FakeClock};
use tocsin_notify::{
    verify_signature, Action, IncidentSummary, Link, Message, Outgoing, Provider, Recipient,
    SendError, Sent, SignatureError, WebhookConfig, WebhookProvider,
};

const SECRET: &str = "whsec_0123456789";
const KEY: &str = "esc:7:s0:r0:l0:u3:c9:n1";

/// One request as the receiver saw it, body byte for byte.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// How the receiver answers the next request.
#[derive(Debug, Clone)]
enum Reply {
    Status(u16, Vec<(&'static str, &'static str)>, &'static str),
    Hang,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    /// A receiver on an ephemeral loopback port answering with `script` in turn (then 204).
    async fn start(script: Vec<Reply>) -> (Receiver, SocketAddr) {
        let r = Receiver {
            seen: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        };
        let app = axum::Router::new().fallback(receive).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn receive(
    State(r): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    r.seen.lock().unwrap().push(Seen {
        method,
        uri,
        headers,
        body,
    });
    let reply = r.script.lock().unwrap().pop_front();
    match reply {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(Reply::Status(code, headers, body)) => {
            let mut res = (StatusCode::from_u16(code).unwrap(), body).into_response();
            for (k, v) in headers {
                res.headers_mut().insert(k, v.parse().unwrap());
            }
            res
        }
        Some(Reply::Hang) => std::future::pending().await,
    }
}

fn clock() -> FakeClock {
    FakeClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 1, 30, 0).unwrap())
}

fn provider(clock: &FakeClock) -> WebhookProvider {
    let config = WebhookConfig {
        headers: vec![
            ("X-Api-Key".into(), "k-123".into()),
            ("X-Route".into(), "ops".into()),
        ],
        timeout: Duration::from_millis(200),
        ..WebhookConfig::new(SECRET)
    };
    WebhookProvider::new(config)
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
}

fn outgoing(address: String) -> Outgoing {
    Outgoing {
        idempotency_key: KEY.into(),
        recipient: Recipient {
            user_id: 3,
            contact_method_id: 9,
            kind: ContactKind::Webhook,
            channel: Channel::Webhook,
            target: address.clone(),
            address,
        },
        message: Message::for_incident(IncidentSummary {
            id: 7,
            number: 12,
            title: "Database down".into(),
            urgency: Urgency::High,
            level: Some(0),
            links: vec![Link {
                text: "Incident".into(),
                href: "https://tocsin.example/incidents/7".into(),
            }],
            actions: vec![Action {
                action: LinkAction::Acknowledge,
                text: "Acknowledge".into(),
                href: "https://tocsin.example/actions/tok".into(),
            }],
        }),
    }
}

/// Sends one message to a receiver answering with `reply`; what came back and what arrived.
async fn send_to(reply: Vec<Reply>) -> (Result<Sent, SendError>, Vec<Seen>) {
    let (receiver, addr) = Receiver::start(reply).await;
    let clock = clock();
    let result = provider(&clock)
        .send(&outgoing(format!("http://{addr}/hooks/tocsin?team=db")))
        .await;
    (result, receiver.seen())
}

/// The signature header's `t` and `v1`, split by hand.
fn parts(header: &str) -> (i64, String) {
    let (t, v1) = header.split_once(',').expect("t=…,v1=…");
    (
        t.strip_prefix("t=").unwrap().parse().unwrap(),
        v1.strip_prefix("v1=").unwrap().to_string(),
    )
}

/// The reference: HMAC-SHA256 over "<t>." followed by the raw bytes received.
fn reference_mac(secret: &[u8], t: i64, raw: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(raw);
    hex::encode(mac.finalize().into_bytes())
}

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn posts_the_documented_body_with_headers() {
    let (result, seen) = send_to(vec![Reply::Status(202, vec![], "queued")]).await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: None,
            status: 202
        })
    );
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.uri.to_string(), "/hooks/tocsin?team=db");
    assert_eq!(header(req, "content-type"), "application/json");
    assert_eq!(
        header(req, "user-agent"),
        format!("Tocsin/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(header(req, "idempotency-key"), KEY);
    assert_eq!(header(req, "x-api-key"), "k-123");
    assert_eq!(header(req, "x-route"), "ops");

    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        json!({
            "version": 1,
            "event": "incident.notify",
            "idempotency_key": KEY,
            "sent_at": "2026-11-25T01:30:00Z",
            "incident": {
                "id": 7, "number": 12, "title": "Database down", "urgency": "high", "level": 0,
                "links": [{ "text": "Incident", "href": "https://tocsin.example/incidents/7" }],
                "actions": [{
                    "action": "acknowledge", "text": "Acknowledge",
                    "href": "https://tocsin.example/actions/tok",
                }],
            },
            "recipient": {
                "user_id": 3, "contact_method_id": 9, "contact_kind": "webhook",
                "address": req_address(&seen),
            },
            "message": {
                "subject": "Incident #12 (high urgency): Database down",
                "short": "Tocsin #12 high: Database down",
                "long": "Incident #12: Database down\nUrgency: high\nEscalation level: 0\n\
                         Incident: https://tocsin.example/incidents/7\n\
                         Acknowledge: https://tocsin.example/actions/tok\n",
            },
        })
    );
}

fn req_address(seen: &[Seen]) -> String {
    format!("http://{}/hooks/tocsin?team=db", header(&seen[0], "host"))
}

#[tokio::test]
async fn on_call_notices_carry_no_incident() {
    let (receiver, addr) = Receiver::start(vec![]).await;
    let mut out = outgoing(format!("http://{addr}/"));
    out.message = Message {
        subject: "Your on-call shift starts in 1 hour".into(),
        short: "On call from 09:00".into(),
        long: "You are on call for Primary from 09:00.".into(),
        html: None,
        incident: None,
    };
    let sent = provider(&clock()).send(&out).await.unwrap();
    assert_eq!(sent.status, 204);
    let body: Value = serde_json::from_slice(&receiver.seen()[0].body).unwrap();
    assert_eq!(body["event"], "oncall.notify");
    assert_eq!(body["incident"], Value::Null);
    assert_eq!(body["message"]["short"], "On call from 09:00");
}

#[tokio::test]
async fn the_signature_matches_an_independent_hmac_and_verifies() {
    let (result, seen) = send_to(vec![]).await;
    assert!(result.is_ok(), "{result:?}");
    let req = &seen[0];
    let signature = header(req, "tocsin-signature");
    let (t, v1) = parts(signature);
    let now = clock().now();
    assert_eq!(t, now.timestamp());
    assert_eq!(v1, reference_mac(SECRET.as_bytes(), t, &req.body));
    let tolerance = Duration::from_secs(300);
    assert_eq!(
        verify_signature(
            SECRET.as_bytes(),
            Some(signature),
            &req.body,
            now,
            tolerance
        ),
        Ok(())
    );
}

#[tokio::test]
async fn tampered_replayed_or_foreign_requests_are_refused() {
    let (_, seen) = send_to(vec![]).await;
    let req = &seen[0];
    let signature = header(req, "tocsin-signature");
    let now = clock().now();
    let tolerance = Duration::from_secs(300);
    let verify = |secret: &str, header: Option<&str>, body: &[u8], now| {
        verify_signature(secret.as_bytes(), header, body, now, tolerance)
    };

    let mut tampered = req.body.to_vec();
    let at = tampered.windows(8).position(|w| w == b"Database").unwrap();
    tampered[at] = b'd';
    assert_eq!(
        verify(SECRET, Some(signature), &tampered, now),
        Err(SignatureError::Mismatch)
    );

    assert_eq!(
        verify("whsec_other", Some(signature), &req.body, now),
        Err(SignatureError::Mismatch)
    );

    // The same genuine request presented ten minutes later: a replay.
    let later = now + chrono::Duration::minutes(10);
    let (t, _) = parts(signature);
    assert_eq!(
        verify(SECRET, Some(signature), &req.body, later),
        Err(SignatureError::OutsideTolerance { t })
    );

    // Moving the timestamp to pass the window breaks the MAC.
    let moved = signature.replace(&format!("t={t}"), &format!("t={}", later.timestamp()));
    assert_eq!(
        verify(SECRET, Some(&moved), &req.body, later),
        Err(SignatureError::Mismatch)
    );

    assert_eq!(
        verify(SECRET, None, &req.body, now),
        Err(SignatureError::Missing)
    );
    assert!(matches!(
        verify(SECRET, Some("sha256=abcdef"), &req.body, now),
        Err(SignatureError::Malformed(_))
    ));
}

#[tokio::test]
async fn server_errors_are_retryable_with_the_answer_in_the_reason() {
    let (result, seen) = send_to(vec![Reply::Status(
        500,
        vec![],
        "{\"error\":\"db pool exhausted\"}",
    )])
    .await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        result,
        Err(SendError::Retryable {
            reason: "HTTP 500 Internal Server Error: {\"error\":\"db pool exhausted\"}".into(),
            retry_after: None,
        })
    );
}

#[tokio::test]
async fn throttling_is_retryable_after_the_wait_asked_for() {
    let (result, _) = send_to(vec![Reply::Status(
        429,
        vec![("retry-after", "7")],
        "slow down",
    )])
    .await;
    assert_eq!(
        result,
        Err(SendError::Retryable {
            reason: "HTTP 429 Too Many Requests: slow down".into(),
            retry_after: Some(Duration::from_secs(7)),
        })
    );

    // As an HTTP date, counted from the provider's clock.
    let (result, _) = send_to(vec![Reply::Status(
        503,
        vec![("retry-after", "Wed, 25 Nov 2026 01:31:30 GMT")],
        "",
    )])
    .await;
    match result {
        Err(SendError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(90)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn client_errors_and_redirects_are_permanent() {
    let (result, _) = send_to(vec![Reply::Status(400, vec![], "unknown field \"foo\"")]).await;
    assert_eq!(
        result,
        Err(SendError::Permanent {
            status: Some(400),
            reason: "HTTP 400 Bad Request: unknown field \"foo\"".into(),
        })
    );

    // A redirect is reported, not followed: the receiver sees one request.
    let (result, seen) = send_to(vec![Reply::Status(
        307,
        vec![("location", "http://127.0.0.1:9/elsewhere")],
        "",
    )])
    .await;
    assert_eq!(seen.len(), 1);
    match result {
        Err(SendError::Permanent { status, reason }) => {
            assert_eq!(status, Some(307));
            assert!(
                reason.contains("redirects to http://127.0.0.1:9/elsewhere"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_retryably() {
    let started = Instant::now();
    let (result, seen) = send_to(vec![Reply::Hang]).await;
    let took = started.elapsed();
    assert_eq!(
        seen.len(),
        1,
        "the request arrived; only the answer never came"
    );
    assert_eq!(
        result,
        Err(SendError::Retryable {
            reason: "no answer within 200 ms".into(),
            retry_after: None,
        })
    );
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    // A port that was just free and is no longer listened on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let result = provider(&clock())
        .send(&outgoing(format!("http://{addr}/hook")))
        .await;
    match result {
        Err(SendError::Retryable {
            reason,
            retry_after: None,
        }) => assert!(reason.starts_with("could not connect"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_address_that_is_not_an_http_url_is_permanent() {
    for address in [
        "not a url",
        "mailto:oncall@example.com",
        "ftp://files.example/x",
    ] {
        match provider(&clock()).send(&outgoing(address.into())).await {
            Err(SendError::Permanent { status: None, .. }) => {}
            other => panic!("{address}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn https_addresses_speak_tls() {
    // The receiver speaks plain HTTP: the client's TLS handshake fails before any
    // request is made, as a connection failure worth retrying.
    let (receiver, addr) = Receiver::start(vec![]).await;
    match provider(&clock())
        .send(&outgoing(format!("https://{addr}/hook")))
        .await
    {
        Err(SendError::Retryable { reason, .. }) => {
            assert!(reason.contains("could not connect"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(receiver.seen().is_empty());
}
