//! The chat providers against local stand-ins for Slack, Teams, Mattermost and
//! Discord: each stand-in checks a request the way the service does (method,
//! path, auth, content type, required fields, limits) and answers the way the
//! service documents, success and error shapes alike.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use serde_json::Value;
use tocsin_core::action_link::LinkAction;
use tocsin_core::escalation::{Channel, ContactKind, Urgency};
use tocsin_core::time::FakeClock;
use tocsin_notify::{Action, IncidentSummary, Link, Message, Outgoing, Recipient};

mod discord;
mod mattermost;
mod slack;
mod teams;

/// A title written to do harm: Slack and Discord mentions, Markdown, a link.
pub const HOSTILE: &str = "<!channel> *bold* @everyone [x](http://evil) & <@U1>";

/// One request as the service saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A scripted answer: status, headers, body.
pub type Reply = (u16, Vec<(&'static str, &'static str)>, String);

/// How a stand-in judges a request: `Err` is the answer the real service gives
/// to a request it refuses, `Ok` its answer to a good one.
pub type Judge = fn(&Seen) -> Result<Reply, Reply>;

#[derive(Clone)]
pub struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    judge: Judge,
}

impl Fake {
    /// A stand-in on an ephemeral loopback port. A request it refuses gets the
    /// refusal; one it accepts gets the next scripted reply, or the success answer.
    pub async fn start(judge: Judge, script: Vec<Reply>) -> (Fake, SocketAddr) {
        let fake = Fake {
            seen: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
            judge,
        };
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The only request, checked to have been accepted.
    pub fn one(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "exactly one request");
        if let Err(refused) = (self.judge)(&seen[0]) {
            panic!("the service would refuse this request: {refused:?}");
        }
        seen[0].clone()
    }
}

async fn receive(
    State(fake): State<Fake>,
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
    fake.seen.lock().unwrap().push(seen.clone());
    let (status, headers, body) = match (fake.judge)(&seen) {
        Err(refusal) => refusal,
        Ok(success) => fake.script.lock().unwrap().pop_front().unwrap_or(success),
    };
    let mut res = (StatusCode::from_u16(status).unwrap(), body).into_response();
    for (k, v) in headers {
        res.headers_mut().insert(k, v.parse().unwrap());
    }
    res
}

/// A reply with a JSON body.
pub fn json_reply(status: u16, body: Value) -> Reply {
    (
        status,
        vec![("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
}

/// A reply with a plain-text body.
pub fn text_reply(status: u16, body: &str) -> Reply {
    (
        status,
        vec![("content-type", "text/plain; charset=utf-8")],
        body.to_string(),
    )
}

pub fn clock() -> FakeClock {
    FakeClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 1, 30, 0).unwrap())
}

pub fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

pub fn incident(title: &str) -> IncidentSummary {
    IncidentSummary {
        id: 7,
        number: 12,
        title: title.into(),
        urgency: Urgency::High,
        level: Some(1),
        links: vec![Link {
            text: "Incident".into(),
            href: "https://tocsin.example/incidents/7".into(),
        }],
        actions: vec![
            Action {
                action: LinkAction::Acknowledge,
                text: "Acknowledge".into(),
                href: "https://tocsin.example/actions/ack-tok".into(),
            },
            Action {
                action: LinkAction::Resolve,
                text: "Resolve".into(),
                href: "https://tocsin.example/actions/res-tok".into(),
            },
        ],
    }
}

/// A page about incident #12 titled `title`, to `channel` at `target`.
pub fn page(channel: Channel, target: &str, title: &str) -> Outgoing {
    to(channel, target, Message::for_incident(incident(title)))
}

/// An on-call notice (no incident) to `channel` at `target`.
pub fn notice(channel: Channel, target: &str) -> Outgoing {
    to(
        channel,
        target,
        Message {
            subject: "Your on-call shift starts in 1 hour".into(),
            short: "On call from 09:00".into(),
            long: "You are on call for Primary from 09:00.\nHand-off notes: @here check *db*"
                .into(),
            html: None,
            incident: None,
        },
    )
}

fn to(channel: Channel, target: &str, message: Message) -> Outgoing {
    Outgoing {
        idempotency_key: "esc:7:s0:r0:l1:u3:c9:n1".into(),
        recipient: Recipient {
            user_id: 3,
            contact_method_id: 9,
            kind: ContactKind::Chat,
            channel,
            address: format!("{}:{target}", channel.as_str()),
            target: target.into(),
        },
        message,
    }
}
