//! Discord: execute a channel webhook with `wait=true`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use serde_json::{json, Value};
use tocsin_core::escalation::Channel;
use tocsin_notify::{DiscordConfig, DiscordProvider, Provider, SendError, Sent};

use super::*;

const HOOK: &str = "/api/webhooks/1311111111111111111/tok-en_123";

fn invalid_form(field: &str) -> Reply {
    json_reply(
        400,
        json!({
            "code": 50035, "message": "Invalid Form Body",
            "errors": { field: { "_errors": [{ "code": "BASE_TYPE_MAX_LENGTH", "message": "Must be shorter" }] } },
        }),
    )
}

fn execute(req: &Seen) -> Result<Reply, Reply> {
    if req.method != Method::POST {
        return Err(json_reply(
            405,
            json!({ "message": "405: Method Not Allowed", "code": 0 }),
        ));
    }
    if req.uri.path() != HOOK {
        return Err(json_reply(
            404,
            json!({ "message": "Unknown Webhook", "code": 10015 }),
        ));
    }
    if !req.header("content-type").starts_with("application/json") {
        return Err(json_reply(
            400,
            json!({ "message": "Cannot send an empty message", "code": 50006 }),
        ));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Err(json_reply(
            400,
            json!({ "message": "The request body contains invalid JSON.", "code": 50109 }),
        ));
    };
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    if chars(&body["content"]) == 0 && embeds.is_empty() {
        return Err(json_reply(
            400,
            json!({ "message": "Cannot send an empty message", "code": 50006 }),
        ));
    }
    if chars(&body["content"]) > 2000 {
        return Err(invalid_form("content"));
    }
    if embeds.len() > 10 {
        return Err(invalid_form("embeds"));
    }
    let mut total = 0;
    for e in &embeds {
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if chars(&e["title"]) > 256 || chars(&e["description"]) > 4096 || fields.len() > 25 {
            return Err(invalid_form("embeds.0"));
        }
        for f in &fields {
            let (n, v) = (chars(&f["name"]), chars(&f["value"]));
            if !(1..=256).contains(&n) || !(1..=1024).contains(&v) {
                return Err(invalid_form("embeds.0.fields"));
            }
            total += n + v;
        }
        total += chars(&e["title"]) + chars(&e["description"]);
    }
    if total > 6000 {
        return Err(invalid_form("embeds"));
    }
    let wait = req
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|p| p == "wait=true");
    if !wait {
        return Ok((204, vec![], String::new()));
    }
    Ok(json_reply(
        200,
        json!({
            "id": "1311222233334444555", "type": 0, "channel_id": "1300000000000000000",
            "content": body["content"], "embeds": body["embeds"], "webhook_id": "1311111111111111111",
            "timestamp": "2026-11-25T01:30:00.000000+00:00", "mentions": [], "mention_everyone": false,
        }),
    ))
}

fn provider(config: DiscordConfig) -> DiscordProvider {
    DiscordProvider::new(config)
        .unwrap()
        .with_clock(Arc::new(clock()))
}

fn config() -> DiscordConfig {
    DiscordConfig {
        timeout: Duration::from_secs(5),
        ..DiscordConfig::default()
    }
}

async fn post(script: Vec<Reply>, title: &str) -> (Result<Sent, SendError>, Fake) {
    let (fake, addr) = Fake::start(execute, script).await;
    let r = provider(config())
        .send(&page(
            Channel::Discord,
            &format!("http://{addr}{HOOK}"),
            title,
        ))
        .await;
    (r, fake)
}

#[tokio::test]
async fn posts_an_embed_and_reports_the_message_id() {
    let (result, fake) = post(vec![], "Database down").await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: Some("1311222233334444555".into()),
            status: 200
        })
    );
    let req = fake.one();
    assert_eq!(req.uri.query(), Some("wait=true"));
    assert_eq!(
        req.json(),
        json!({
            "content": "Tocsin \\#12 high: Database down",
            "embeds": [{
                "title": "Incident #12: Database down",
                "color": 0xE01E5A,
                "fields": [
                    { "name": "Urgency", "value": "high", "inline": true },
                    { "name": "Escalation level", "value": "1", "inline": true },
                    { "name": "Actions", "inline": false, "value":
                        "[Acknowledge](https://tocsin.example/actions/ack-tok) · \
                         [Resolve](https://tocsin.example/actions/res-tok)" },
                    { "name": "Links", "inline": false,
                      "value": "[Incident](https://tocsin.example/incidents/7)" },
                ],
                "url": "https://tocsin.example/incidents/7",
            }],
            "allowed_mentions": { "parse": [] },
        })
    );
}

#[tokio::test]
async fn hostile_titles_cannot_ping_format_or_link() {
    let (result, fake) = post(vec![], HOSTILE).await;
    assert!(result.is_ok(), "{result:?}");
    let body = fake.one().json();
    assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
    // An embed title is plain text on Discord: shown as typed, mentions defused.
    assert_eq!(
        body["embeds"][0]["title"],
        "Incident #12: <!channel> *bold* @\u{200B}everyone [x](http://evil) & <@\u{200B}U1>"
    );
    let raw = body.to_string();
    assert!(!raw.contains("@everyone"), "{raw}");
    let content = body["content"].as_str().unwrap();
    assert!(!content.contains("[x]("), "{content}");
}

#[tokio::test]
async fn limits_are_kept() {
    let (result, fake) = post(vec![], &"x".repeat(5000)).await;
    assert!(result.is_ok(), "{result:?}");
    let body = fake.one().json();
    assert_eq!(chars(&body["embeds"][0]["title"]), 256);
    assert!(chars(&body["content"]) <= 2000);
}

#[tokio::test]
async fn throttling_waits_as_long_as_the_body_says() {
    let limited = (
        429,
        vec![("retry-after", "2"), ("x-ratelimit-scope", "shared")],
        json!({ "message": "You are being rate limited.", "retry_after": 1.337, "global": false })
            .to_string(),
    );
    match post(vec![limited], "x").await.0 {
        Err(SendError::Retryable {
            retry_after,
            reason,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_millis(1337)));
            assert!(reason.starts_with("HTTP 429 Too Many Requests"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A global limit says so; a body without retry_after falls back on the header.
    let global = (
        429,
        vec![("retry-after", "5")],
        json!({ "message": "You are being rate limited.", "retry_after": 4.5, "global": true })
            .to_string(),
    );
    match post(vec![global], "x").await.0 {
        Err(SendError::Retryable {
            retry_after,
            reason,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_millis(4500)));
            assert!(reason.ends_with("(global rate limit)"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let cloudflare = (
        429,
        vec![("retry-after", "9")],
        "error code: 1015".to_string(),
    );
    match post(vec![cloudflare], "x").await.0 {
        Err(SendError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(9)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unknown_webhooks_are_permanent_and_outages_retryable() {
    let (fake, addr) = Fake::start(execute, vec![]).await;
    let r = provider(config())
        .send(&page(
            Channel::Discord,
            &format!("http://{addr}/api/webhooks/1/gone"),
            "x",
        ))
        .await;
    assert_eq!(fake.seen().len(), 1);
    match r {
        Err(SendError::Permanent { status, reason }) => {
            assert_eq!(status, Some(404));
            assert!(reason.contains("Unknown Webhook"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let outage = json_reply(502, json!({ "message": "502: Bad Gateway", "code": 0 }));
    assert!(post(vec![outage], "x").await.0.unwrap_err().is_retryable());
}

#[tokio::test]
async fn notices_are_content_only_with_overrides() {
    let (fake, addr) = Fake::start(execute, vec![]).await;
    let p = provider(DiscordConfig {
        username: Some("Tocsin".into()),
        avatar_url: Some("https://tocsin.example/avatar.png".into()),
        ..config()
    });
    let sent = p
        .send(&notice(
            Channel::Discord,
            &format!("http://{addr}{HOOK}?thread_id=42"),
        ))
        .await
        .unwrap();
    assert_eq!(sent.status, 200);
    let req = fake.one();
    assert_eq!(req.uri.query(), Some("thread_id=42&wait=true"));
    assert_eq!(
        req.json(),
        json!({
            "content": "You are on call for Primary from 09:00.\nHand\\-off notes: @\u{200B}here check \\*db\\*",
            "allowed_mentions": { "parse": [] },
            "username": "Tocsin",
            "avatar_url": "https://tocsin.example/avatar.png",
        })
    );
}
