//! The ntfy and Pushover providers against local servers that check requests the
//! way the real services document them (https://docs.ntfy.sh/publish/,
//! https://pushover.net/api) and answer with their shapes: success, errors,
//! throttling, server failures.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use reqwest::Url;
use serde_json::{json, Value};
use tocsin_core::action_link::LinkAction;
use tocsin_core::escalation::{Channel, ContactKind, Urgency};
use tocsin_notify::{
    Action, IncidentSummary, Link, Message, NtfyConfig, NtfyProvider, Outgoing, Provider,
    PushoverConfig, PushoverProvider, Recipient, SendError,
};

const KEY: &str = "esc:7:s0:r0:l0:u3:c9:n1";
const ACK: &str = "https://tocsin.example/a/ack-tok";
const RESOLVE: &str = "https://tocsin.example/a/res-tok";
const INCIDENT_URL: &str = "https://tocsin.example/incidents/7";
const RUNBOOK_URL: &str = "https://wiki.example/runbooks/db";
const USER_KEY: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
const APP_TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn form(&self) -> HashMap<String, String> {
        let url = Url::parse(&format!(
            "http://x/?{}",
            std::str::from_utf8(&self.body).unwrap()
        ))
        .unwrap();
        url.query_pairs().into_owned().collect()
    }
}

/// A canned answer: status, headers, body.
type Canned = (u16, Vec<(&'static str, String)>, Value);
type Check = fn(&Seen) -> Canned;

#[derive(Clone)]
struct Server {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Canned>>>,
    check: Check,
}

impl Server {
    /// A server answering with `script` in turn, then as `check` decides.
    async fn start(check: Check, script: Vec<Canned>) -> (Server, SocketAddr) {
        let s = Server {
            seen: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
            check,
        };
        let app = axum::Router::new().fallback(receive).with_state(s.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (s, addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn receive(
    State(s): State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method,
        uri,
        headers,
        body,
    };
    s.seen.lock().unwrap().push(seen.clone());
    let scripted = s.script.lock().unwrap().pop_front();
    let (status, headers, body) = scripted.unwrap_or_else(|| (s.check)(&seen));
    let mut res = (StatusCode::from_u16(status).unwrap(), body.to_string()).into_response();
    res.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (k, v) in headers {
        res.headers_mut().insert(k, v.parse().unwrap());
    }
    res
}

fn outgoing(target: &str, urgency: Urgency) -> Outgoing {
    Outgoing {
        idempotency_key: KEY.into(),
        recipient: Recipient {
            user_id: 3,
            contact_method_id: 9,
            kind: ContactKind::Push,
            channel: Channel::Ntfy,
            address: format!("ntfy:{target}"),
            target: target.into(),
        },
        message: Message::for_incident(IncidentSummary {
            id: 7,
            number: 12,
            title: "Database <down> & out".into(),
            urgency,
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

// ---------------------------------------------------------------- ntfy

const NTFY_TOKEN: &str = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2";

fn ntfy_error(http: u16, code: u32, error: &str, link: &str) -> Canned {
    (
        http,
        vec![],
        json!({ "code": code, "http": http, "error": error, "link": link }),
    )
}

/// What ntfy checks of a JSON publish, and its answer.
fn ntfy_check(req: &Seen) -> Canned {
    let bad = |why: &str| {
        ntfy_error(
            400,
            40024,
            &format!("invalid request: {why}"),
            "https://ntfy.sh/docs/publish/#publish-as-json",
        )
    };
    if req.method != Method::POST {
        return ntfy_error(405, 40501, "method not allowed", "");
    }
    // Credentials, when sent, must be the server's; a wrong one is refused.
    match req.header("authorization") {
        None => {}
        Some(a) if a == format!("Bearer {NTFY_TOKEN}") => {}
        Some(a) if a == format!("Basic {}", B64.encode("phil:mypass")) => {}
        Some(_) => {
            return ntfy_error(
                401,
                40101,
                "unauthorized",
                "https://ntfy.sh/docs/publish/#authentication",
            )
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return bad("body is not JSON");
    };
    let topic = body["topic"].as_str().unwrap_or("");
    if topic.is_empty()
        || topic.len() > 64
        || !topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad("invalid topic");
    }
    if let Some(p) = body.get("priority") {
        if !(1..=5).contains(&p.as_u64().unwrap_or(0)) {
            return bad("invalid priority");
        }
    }
    let actions = body["actions"].as_array().cloned().unwrap_or_default();
    if actions.len() > 3 {
        return bad("too many actions");
    }
    for a in &actions {
        let kind = a["action"].as_str().unwrap_or("");
        if !["view", "http", "broadcast"].contains(&kind)
            || a["label"].as_str().unwrap_or("").is_empty()
            || (kind != "broadcast" && !a["url"].as_str().unwrap_or("").starts_with("http"))
        {
            return bad("invalid action");
        }
    }
    let mut answer = json!({
        "id": "sPs71M8A2T",
        "time": 1764041400,
        "expires": 1764084600,
        "event": "message",
        "topic": topic,
        "message": body["message"],
    });
    for k in ["title", "priority", "tags", "click", "actions"] {
        if let Some(v) = body.get(k) {
            answer[k] = v.clone();
        }
    }
    (200, vec![], answer)
}

fn ntfy(base_url: String) -> NtfyProvider {
    NtfyProvider::new(NtfyConfig {
        base_url,
        token: Some(NTFY_TOKEN.into()),
        timeout: Duration::from_secs(5),
        ..NtfyConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn ntfy_publishes_json_to_the_server_root_with_view_buttons() {
    let (server, addr) = Server::start(ntfy_check, vec![]).await;
    let sent = ntfy(format!("http://{addr}"))
        .send(&outgoing("alerts-ann", Urgency::High))
        .await
        .unwrap();
    assert_eq!(
        (sent.provider_id.as_deref(), sent.status),
        (Some("sPs71M8A2T"), 200)
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.uri.path(), "/");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {NTFY_TOKEN}").as_str())
    );
    let body = req.json();
    assert_eq!(body["topic"], "alerts-ann");
    assert_eq!(
        body["title"],
        "Incident #12 (high urgency): Database <down> & out"
    );
    assert_eq!(
        body["message"],
        "Incident #12: Database <down> & out\nUrgency: high\nEscalation level: 1"
    );
    assert_eq!(body["priority"], 5);
    assert_eq!(body["tags"], json!(["rotating_light"]));
    assert_eq!(body["click"], INCIDENT_URL);
    // The action links first, then the incident page; ntfy shows three at most.
    assert_eq!(
        body["actions"],
        json!([
            { "action": "view", "label": "Acknowledge", "url": ACK },
            { "action": "view", "label": "Resolve", "url": RESOLVE },
            { "action": "view", "label": "Incident", "url": INCIDENT_URL },
        ])
    );
    let seq = body["sequence_id"].as_str().unwrap();
    assert!(
        seq.starts_with("esc-7-s0-r0-l0-u3-c9-n1-") && seq.len() <= 64,
        "{seq}"
    );
}

#[tokio::test]
async fn ntfy_a_resend_carries_the_same_sequence_id() {
    let (server, addr) = Server::start(ntfy_check, vec![]).await;
    let p = ntfy(format!("http://{addr}"));
    p.send(&outgoing("alerts-ann", Urgency::High))
        .await
        .unwrap();
    p.send(&outgoing("alerts-ann", Urgency::High))
        .await
        .unwrap();
    let mut other = outgoing("alerts-ann", Urgency::High);
    other.idempotency_key = "esc:7:s0:r0:l1:u3:c9:n1".into();
    p.send(&other).await.unwrap();
    let ids: Vec<Value> = server
        .seen()
        .iter()
        .map(|s| s.json()["sequence_id"].clone())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
}

#[tokio::test]
async fn ntfy_basic_auth_a_path_prefix_and_low_urgency() {
    let (server, addr) = Server::start(ntfy_check, vec![]).await;
    let p = NtfyProvider::new(NtfyConfig {
        base_url: format!("http://{addr}/ntfy"),
        username: Some("phil".into()),
        password: Some("mypass".into()),
        ..NtfyConfig::default()
    })
    .unwrap();
    p.send(&outgoing("alerts-ann", Urgency::Low)).await.unwrap();
    let req = &server.seen()[0];
    assert_eq!(req.uri.path(), "/ntfy/");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Basic {}", B64.encode("phil:mypass")).as_str())
    );
    let body = req.json();
    assert_eq!(
        (body["priority"].clone(), body["tags"].clone()),
        (json!(3), json!(["warning"]))
    );
}

#[tokio::test]
async fn ntfy_a_topic_url_on_another_server_gets_no_credentials() {
    let (configured, configured_addr) = Server::start(ntfy_check, vec![]).await;
    let (other, other_addr) = Server::start(ntfy_check, vec![]).await;
    let p = ntfy(format!("http://{configured_addr}"));
    p.send(&outgoing(
        &format!("http://{other_addr}/team/alerts-db"),
        Urgency::High,
    ))
    .await
    .unwrap();
    assert!(configured.seen().is_empty());
    let req = &other.seen()[0];
    assert_eq!(req.uri.path(), "/team/");
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.json()["topic"], "alerts-db");
    // The configured server named by URL does get them.
    p.send(&outgoing(
        &format!("http://{configured_addr}/alerts-db"),
        Urgency::High,
    ))
    .await
    .unwrap();
    assert_eq!(
        configured.seen()[0].header("authorization"),
        Some(format!("Bearer {NTFY_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn ntfy_errors_are_classified_with_their_words() {
    let (_server, addr) = Server::start(
        ntfy_check,
        vec![
            ntfy_error(
                403,
                40301,
                "forbidden",
                "https://ntfy.sh/docs/publish/#authentication",
            ),
            ntfy_error(
                429,
                42901,
                "limit reached: too many requests",
                "https://ntfy.sh/docs/publish/#limitations",
            ),
            (
                500,
                vec![],
                json!({"code": 50001, "http": 500, "error": "internal server error"}),
            ),
        ],
    )
    .await;
    let p = ntfy(format!("http://{addr}"));
    let out = outgoing("alerts-ann", Urgency::High);
    assert_eq!(
        p.send(&out).await,
        Err(SendError::Permanent {
            status: Some(403),
            reason: "ntfy answered 403: forbidden (code 40301), \
                     see https://ntfy.sh/docs/publish/#authentication"
                .into()
        })
    );
    assert_eq!(
        p.send(&out).await,
        Err(SendError::Retryable {
            reason: "ntfy answered 429: limit reached: too many requests (code 42901), \
                     see https://ntfy.sh/docs/publish/#limitations"
                .into(),
            retry_after: None,
        })
    );
    match p.send(&out).await {
        Err(SendError::Retryable { reason, .. }) => {
            assert_eq!(
                reason,
                "ntfy answered 500: internal server error (code 50001)"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ntfy_a_wrong_token_is_permanent() {
    let (_server, addr) = Server::start(ntfy_check, vec![]).await;
    let p = NtfyProvider::new(NtfyConfig {
        base_url: format!("http://{addr}"),
        token: Some("tk_wrong".into()),
        ..NtfyConfig::default()
    })
    .unwrap();
    match p.send(&outgoing("alerts-ann", Urgency::High)).await {
        Err(SendError::Permanent {
            status: Some(401),
            reason,
        }) => assert!(
            reason.starts_with("ntfy answered 401: unauthorized"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- Pushover

/// The same page to a Pushover user key (or KEY/device).
fn pushover_to(target: &str, urgency: Urgency) -> Outgoing {
    let mut out = outgoing(target, urgency);
    out.recipient.channel = Channel::Pushover;
    out.recipient.address = format!("pushover:{target}");
    out
}

fn pushover_error(status: u16, field: &str, error: &str) -> Canned {
    (
        status,
        vec![],
        json!({ field: "invalid", "errors": [error], "status": 0, "request": "5042853c-402d-4a18-abcb-168734a801de" }),
    )
}

/// What the message API checks of a request (https://pushover.net/api), and its answer.
fn pushover_check(req: &Seen) -> Canned {
    if req.method != Method::POST || req.uri.path() != "/1/messages.json" {
        return (404, vec![], json!({"status": 0, "errors": ["not found"]}));
    }
    if req.header("content-type") != Some("application/x-www-form-urlencoded") {
        return pushover_error(400, "message", "message cannot be blank");
    }
    let f = req.form();
    let get = |k: &str| f.get(k).map(String::as_str);
    let chars = |k: &str| get(k).map(|v| v.chars().count()).unwrap_or(0);
    if get("token") != Some(APP_TOKEN) {
        return pushover_error(400, "token", "application token is invalid");
    }
    if get("user") != Some(USER_KEY) {
        return pushover_error(
            400,
            "user",
            "user identifier is not a valid user, group, or subscribed user key",
        );
    }
    if chars("message") == 0 {
        return pushover_error(400, "message", "message cannot be blank");
    }
    if chars("message") > 1024 {
        return pushover_error(400, "message", "message is too long (1024 characters max)");
    }
    if chars("title") > 250 {
        return pushover_error(400, "title", "title is too long (250 characters max)");
    }
    if chars("url") > 512 || chars("url_title") > 100 {
        return pushover_error(400, "url", "url is too long");
    }
    if get("html").is_some_and(|h| h != "1") {
        return pushover_error(400, "html", "html is invalid");
    }
    let priority: i64 = get("priority").unwrap_or("0").parse().unwrap_or(9);
    if !(-2..=2).contains(&priority) {
        return pushover_error(400, "priority", "priority is invalid");
    }
    let mut answer = json!({"status": 1, "request": "647d2300-702c-4b38-8b2f-d56326ae460b"});
    if priority == 2 {
        let retry: u64 = get("retry").and_then(|r| r.parse().ok()).unwrap_or(0);
        let expire: u64 = get("expire").and_then(|r| r.parse().ok()).unwrap_or(0);
        if retry < 30 {
            return pushover_error(
                400,
                "retry",
                "retry is invalid (must be at least 30 seconds)",
            );
        }
        if expire == 0 || expire > 10800 {
            return pushover_error(
                400,
                "expire",
                "expire is invalid (must be at most 10800 seconds)",
            );
        }
        answer["receipt"] = json!("rLqVuqTRh62UzxtmqiaLzQmVcPgiCy");
    }
    (
        200,
        vec![
            ("x-limit-app-limit", "10000".into()),
            ("x-limit-app-remaining", "7496".into()),
            ("x-limit-app-reset", "1796083200".into()),
        ],
        answer,
    )
}

fn pushover(addr: SocketAddr, emergency: bool) -> PushoverProvider {
    PushoverProvider::new(PushoverConfig {
        api_base_url: format!("http://{addr}"),
        timeout: Duration::from_secs(5),
        emergency,
        ..PushoverConfig::new(APP_TOKEN)
    })
    .unwrap()
}

#[tokio::test]
async fn pushover_sends_the_documented_form() {
    let (server, addr) = Server::start(pushover_check, vec![]).await;
    let sent = pushover(addr, false)
        .send(&pushover_to(
            &format!("{USER_KEY}/ann-phone"),
            Urgency::High,
        ))
        .await
        .unwrap();
    assert_eq!(
        (sent.provider_id.as_deref(), sent.status),
        (Some("647d2300-702c-4b38-8b2f-d56326ae460b"), 200)
    );
    let req = &server.seen()[0];
    assert_eq!(req.uri.path(), "/1/messages.json");
    let f = req.form();
    let get = |k: &str| f.get(k).map(String::as_str);
    assert_eq!(get("token"), Some(APP_TOKEN));
    assert_eq!(get("user"), Some(USER_KEY));
    assert_eq!(get("device"), Some("ann-phone"));
    assert_eq!(
        get("title"),
        Some("Incident #12 (high urgency): Database <down> & out")
    );
    assert_eq!(get("html"), Some("1"));
    assert_eq!(
        get("message"),
        Some(&*format!(
            "Incident #12: Database &lt;down&gt; &amp; out\nUrgency: <b>high</b>\n\
             Escalation level: 1\n\n<a href=\"{ACK}\">Acknowledge</a> · <a href=\"{RESOLVE}\">Resolve</a>"
        ))
    );
    assert_eq!(get("url"), Some(INCIDENT_URL));
    assert_eq!(get("url_title"), Some("Incident"));
    assert_eq!(get("priority"), Some("1"));
    assert_eq!((get("retry"), get("expire")), (None, None));
}

#[tokio::test]
async fn pushover_emergency_priority_repeats_until_acknowledged_and_reports_the_receipt() {
    let (server, addr) = Server::start(pushover_check, vec![]).await;
    let p = pushover(addr, true);
    let sent = p.send(&pushover_to(USER_KEY, Urgency::High)).await.unwrap();
    assert_eq!(
        sent.provider_id.as_deref(),
        Some("rLqVuqTRh62UzxtmqiaLzQmVcPgiCy")
    );
    let f = server.seen()[0].form();
    assert_eq!(
        (
            f["priority"].as_str(),
            f["retry"].as_str(),
            f["expire"].as_str()
        ),
        ("2", "60", "3600")
    );
    assert!(!f.contains_key("device"));
    // Low urgency is never an emergency.
    p.send(&pushover_to(USER_KEY, Urgency::Low)).await.unwrap();
    let f = server.seen()[1].form();
    assert_eq!(f["priority"], "0");
    assert!(!f.contains_key("retry"));
}

#[tokio::test]
async fn pushover_a_long_title_still_fits_the_limits() {
    let (server, addr) = Server::start(pushover_check, vec![]).await;
    let mut out = pushover_to(USER_KEY, Urgency::High);
    let title = "é".repeat(2000);
    out.message = Message::for_incident(IncidentSummary {
        title,
        ..out.message.incident.clone().unwrap()
    });
    pushover(addr, false).send(&out).await.unwrap();
    let f = server.seen()[0].form();
    assert_eq!(f["title"].chars().count(), 250);
    assert!(f["message"].contains(&format!("<a href=\"{ACK}\">Acknowledge</a>")));
}

#[tokio::test]
async fn pushover_errors_are_classified_as_its_api_asks() {
    let (_server, addr) = Server::start(
        pushover_check,
        vec![
            (
                429,
                vec![("x-limit-app-reset", "1796083200".into())],
                json!({"status": 0, "errors": ["application has exceeded its monthly message limit"], "request": "r1"}),
            ),
            (500, vec![], json!({"status": 0, "errors": ["internal error"]})),
            (503, vec![("retry-after", "12".into())], json!({})),
        ],
    )
    .await;
    let p = pushover(addr, false);
    let out = pushover_to(USER_KEY, Urgency::High);
    assert_eq!(
        p.send(&out).await,
        Err(SendError::Permanent {
            status: Some(429),
            reason: "Pushover answered 429: the application's monthly message limit is reached \
                     (resets 2026-12-01 00:00 UTC): application has exceeded its monthly message limit"
                .into()
        })
    );
    assert_eq!(
        p.send(&out).await,
        Err(SendError::Retryable {
            reason: "Pushover answered 500: internal error".into(),
            retry_after: None
        })
    );
    match p.send(&out).await {
        Err(SendError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(12)))
        }
        other => panic!("{other:?}"),
    }
    // The server's own checks: an unknown user key is a 400, permanent.
    let wrong = pushover_to("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Urgency::High);
    assert_eq!(
        p.send(&wrong).await,
        Err(SendError::Permanent {
            status: Some(400),
            reason: "Pushover answered 400: user identifier is not a valid user, group, or subscribed user key"
                .into()
        })
    );
}

#[tokio::test]
async fn pushover_a_wrong_app_token_is_permanent() {
    let (_server, addr) = Server::start(pushover_check, vec![]).await;
    let p = PushoverProvider::new(PushoverConfig {
        api_base_url: format!("http://{addr}/"),
        ..PushoverConfig::new("wrongwrongwrongwrongwrongwrong")
    })
    .unwrap();
    match p.send(&pushover_to(USER_KEY, Urgency::High)).await {
        Err(SendError::Permanent {
            status: Some(400),
            reason,
        }) => assert_eq!(
            reason,
            "Pushover answered 400: application token is invalid"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ntfy_a_failed_connection_does_not_repeat_the_topic_url() {
    // A topic URL is as good as a password for anyone who can read the reason:
    // no URL goes into it (ntfy publishes to the server root, the topic in the body).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = ntfy(format!("http://{addr}"));
    let topic = format!("http://{addr}/secret-topic-8f2c");
    let r = p.send(&outgoing(&topic, Urgency::High)).await;
    match &r {
        Err(SendError::Retryable { reason, .. }) => {
            assert!(reason.starts_with("could not connect"), "{reason}");
            assert!(!reason.contains("secret-topic-8f2c"), "{reason}");
            assert!(!reason.contains("http://"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
