//! Slack: chat.postMessage with a bot token, and incoming webhooks.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use serde_json::{json, Value};
use tocsin_core::escalation::Channel;
use tocsin_notify::{Provider, SendError, Sent, SlackConfig, SlackProvider};

use super::*;

const TOKEN: &str = "xoxb-1111-2222-abcdef";

/// The Web API: `{"ok":false,"error":…}` with HTTP 200 for what it refuses.
fn web_api(req: &Seen) -> Result<Reply, Reply> {
    let refuse = |error: &str| json_reply(200, json!({ "ok": false, "error": error }));
    if req.method != Method::POST || req.uri.path() != "/api/chat.postMessage" {
        return Err(text_reply(404, "Not Found"));
    }
    match req.header("authorization").strip_prefix("Bearer ") {
        None => return Err(refuse("not_authed")),
        Some(t) if t != TOKEN => return Err(refuse("invalid_auth")),
        Some(_) => {}
    }
    if !req.header("content-type").starts_with("application/json") {
        return Err(refuse("invalid_form_data"));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Err(refuse("invalid_json"));
    };
    if chars(&body["channel"]) == 0 {
        return Err(refuse("channel_not_found"));
    }
    if chars(&body["text"]) == 0
        && body["blocks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .is_empty()
    {
        return Err(refuse("no_text"));
    }
    if !blocks_valid(&body["blocks"]) {
        return Err(refuse("invalid_blocks"));
    }
    Ok(json_reply(
        200,
        json!({
            "ok": true, "channel": "C0123ABCD", "ts": "1764034200.000100",
            "message": { "type": "message", "text": body["text"], "bot_id": "B0123" },
        }),
    ))
}

/// An incoming webhook: 200 "ok", or a 4xx with a plain-text code.
fn webhook(req: &Seen) -> Result<Reply, Reply> {
    if req.method != Method::POST || req.uri.path() != "/services/T000/B000/XXXX" {
        return Err(text_reply(404, "no_service"));
    }
    if !req.header("content-type").starts_with("application/json") {
        return Err(text_reply(400, "invalid_payload"));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Err(text_reply(400, "invalid_payload"));
    };
    if chars(&body["text"]) == 0
        && body["blocks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .is_empty()
    {
        return Err(text_reply(400, "no_text"));
    }
    if body.get("channel").is_some() {
        // A webhook posts to its own channel; naming another is not for apps.
        return Err(text_reply(403, "action_prohibited"));
    }
    if !blocks_valid(&body["blocks"]) {
        return Err(text_reply(400, "invalid_blocks"));
    }
    Ok(text_reply(200, "ok"))
}

// Block Kit's limits, as Slack checks them.
fn blocks_valid(blocks: &Value) -> bool {
    let Some(blocks) = blocks.as_array() else {
        return true;
    };
    blocks.len() <= 50
        && blocks.iter().all(|b| match b["type"].as_str() {
            Some("header") => {
                b["text"]["type"] == "plain_text" && (1..=150).contains(&chars(&b["text"]["text"]))
            }
            Some("section") => (1..=3000).contains(&chars(&b["text"]["text"])),
            Some("actions") => {
                let els = b["elements"].as_array().unwrap();
                let mut ids: Vec<_> = els.iter().map(|e| e["action_id"].as_str()).collect();
                ids.sort();
                ids.dedup();
                (1..=25).contains(&els.len())
                    && ids.len() == els.len()
                    && els.iter().all(|e| {
                        e["type"] == "button"
                            && e["text"]["type"] == "plain_text"
                            && (1..=75).contains(&chars(&e["text"]["text"]))
                            && chars(&e["url"]) <= 3000
                            && chars(&e["value"]) <= 2000
                    })
            }
            _ => false,
        })
}

fn provider(addr: SocketAddr, token: Option<&str>) -> SlackProvider {
    SlackProvider::new(SlackConfig {
        api_base_url: format!("http://{addr}/api/"),
        bot_token: token.map(str::to_string),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
    .with_clock(Arc::new(clock()))
}

async fn post(script: Vec<Reply>, title: &str) -> (Result<Sent, SendError>, Fake) {
    let (fake, addr) = Fake::start(web_api, script).await;
    let r = provider(addr, Some(TOKEN))
        .send(&page(Channel::Slack, "C0123ABCD", title))
        .await;
    (r, fake)
}

#[tokio::test]
async fn posts_block_kit_with_action_buttons_and_reports_the_ts() {
    let (result, fake) = post(vec![], "Database down").await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: Some("C0123ABCD/1764034200.000100".into()),
            status: 200
        })
    );
    let req = fake.one();
    assert_eq!(req.header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(
        req.header("content-type"),
        "application/json; charset=utf-8"
    );
    let body = req.json();
    assert_eq!(body["channel"], "C0123ABCD");
    assert_eq!(body["text"], "Tocsin #12 high: Database down");
    assert_eq!(body["unfurl_links"], false);
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0]["text"]["text"], "Incident #12: Database down");
    assert_eq!(
        blocks[1]["text"],
        json!({
            "type": "mrkdwn",
            "text": "*Urgency:* high   *Escalation level:* 1\n<https://tocsin.example/incidents/7|Incident>",
        })
    );
    assert_eq!(
        blocks[2]["elements"],
        json!([
            {
                "type": "button", "action_id": "tocsin_acknowledge",
                "text": { "type": "plain_text", "text": "Acknowledge", "emoji": false },
                "value": "7", "url": "https://tocsin.example/actions/ack-tok", "style": "primary",
            },
            {
                "type": "button", "action_id": "tocsin_resolve",
                "text": { "type": "plain_text", "text": "Resolve", "emoji": false },
                "value": "7", "url": "https://tocsin.example/actions/res-tok",
            },
        ])
    );
}

#[tokio::test]
async fn hostile_titles_are_shown_not_obeyed() {
    let (result, fake) = post(vec![], HOSTILE).await;
    assert!(result.is_ok(), "{result:?}");
    let body = fake.one().json();
    let text = body["text"].as_str().unwrap();
    assert_eq!(
        text,
        "Tocsin #12 high: &lt;!channel&gt; *bold* @everyone [x](http://evil) &amp; &lt;@U1&gt;"
    );
    // The header is plain_text: Slack formats nothing in it, so it is sent as typed.
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        format!("Incident #12: {HOSTILE}")
    );
    for block in body["blocks"].as_array().unwrap() {
        if block["text"]["type"] == "mrkdwn" {
            let t = block["text"]["text"].as_str().unwrap();
            assert!(!t.contains("<!") && !t.contains("<@"), "{t}");
        }
    }
}

#[tokio::test]
async fn long_titles_fit_the_header_and_the_full_title_follows() {
    let title = "é".repeat(400);
    let (result, fake) = post(vec![], &title).await;
    assert!(result.is_ok(), "{result:?}");
    let body = fake.one().json();
    let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(header.chars().count(), 150);
    assert!(header.ends_with('…'));
    let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(section.starts_with(&title), "{section}");
}

#[tokio::test]
async fn refusals_are_permanent_and_name_the_fix() {
    for (error, hint) in [
        ("channel_not_found", ""),
        ("is_archived", ""),
        ("msg_too_long", ""),
        ("not_in_channel", "chat:write.public"),
        ("invalid_auth", "bot_token in [notify.slack]"),
    ] {
        let refusal = json_reply(200, json!({ "ok": false, "error": error }));
        match post(vec![refusal], "Database down").await.0 {
            Err(SendError::Permanent { status, reason }) => {
                assert_eq!(status, Some(200));
                assert!(
                    reason.starts_with(&format!("Slack chat.postMessage: {error}")),
                    "{reason}"
                );
                assert!(reason.contains(hint), "{reason}");
            }
            other => panic!("{error}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn slack_trouble_is_retryable() {
    for error in [
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    ] {
        let answer = json_reply(200, json!({ "ok": false, "error": error }));
        assert_eq!(
            post(vec![answer], "Database down").await.0,
            Err(SendError::Retryable {
                reason: format!("Slack chat.postMessage: {error}"),
                retry_after: None
            })
        );
    }
}

#[tokio::test]
async fn throttling_waits_as_asked_and_server_errors_retry() {
    let throttled = (
        429,
        vec![("retry-after", "30")],
        json!({ "ok": false, "error": "ratelimited" }).to_string(),
    );
    match post(vec![throttled], "Database down").await.0 {
        Err(SendError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)))
        }
        other => panic!("{other:?}"),
    }
    match post(vec![text_reply(503, "upstream connect error")], "x")
        .await
        .0
    {
        Err(SendError::Retryable { reason, .. }) => {
            assert_eq!(
                reason,
                "HTTP 503 Service Unavailable: upstream connect error"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_token_is_refused_by_the_service_and_permanent() {
    let (fake, addr) = Fake::start(web_api, vec![]).await;
    let r = provider(addr, Some("xoxb-wrong"))
        .send(&page(Channel::Slack, "#ops", "Database down"))
        .await;
    assert_eq!(fake.seen()[0].json()["channel"], "#ops");
    match r {
        Err(SendError::Permanent { reason, .. }) => {
            assert!(reason.contains("invalid_auth"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_channel_address_without_a_bot_token_is_permanent_and_sends_nothing() {
    let (fake, addr) = Fake::start(web_api, vec![]).await;
    match provider(addr, None)
        .send(&page(Channel::Slack, "C0123ABCD", "Database down"))
        .await
    {
        Err(SendError::Permanent {
            status: None,
            reason,
        }) => assert!(reason.contains("bot_token in [notify.slack]"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(fake.seen().is_empty());
    assert!(matches!(
        provider(addr, Some(TOKEN))
            .send(&page(Channel::Slack, " ", "x"))
            .await,
        Err(SendError::Permanent { status: None, .. })
    ));
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn incoming_webhooks_need_no_token_and_answer_ok() {
    let (fake, addr) = Fake::start(webhook, vec![]).await;
    let target = format!("http://{addr}/services/T000/B000/XXXX");
    let sent = provider(addr, None)
        .send(&page(Channel::Slack, &target, "Database down"))
        .await;
    assert_eq!(
        sent,
        Ok(Sent {
            provider_id: None,
            status: 200
        })
    );
    let req = fake.one();
    assert_eq!(req.header("authorization"), "");
    let body = req.json();
    assert_eq!(body["text"], "Tocsin #12 high: Database down");
    assert_eq!(
        body["blocks"][2]["elements"][0]["action_id"],
        "tocsin_acknowledge"
    );
}

#[tokio::test]
async fn incoming_webhook_errors_are_classified_by_status() {
    for (reply, permanent) in [
        (text_reply(404, "channel_not_found"), true),
        (text_reply(410, "channel_is_archived"), true),
        (text_reply(403, "action_prohibited"), true),
        (text_reply(500, "rollup_error"), false),
        (
            (429, vec![("retry-after", "4")], "rate_limited".to_string()),
            false,
        ),
    ] {
        let code = reply.2.clone();
        let (fake, addr) = Fake::start(webhook, vec![reply]).await;
        let target = format!("http://{addr}/services/T000/B000/XXXX");
        let r = provider(addr, None)
            .send(&page(Channel::Slack, &target, "x"))
            .await;
        fake.one();
        let err = r.unwrap_err();
        assert_eq!(!err.is_retryable(), permanent, "{code}: {err:?}");
        assert!(err.reason().ends_with(&code), "{err:?}");
        if code == "rate_limited" {
            assert!(
                matches!(err, SendError::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(4))
            );
        }
    }
}

#[tokio::test]
async fn on_call_notices_are_one_escaped_section() {
    let (fake, addr) = Fake::start(web_api, vec![]).await;
    provider(addr, Some(TOKEN))
        .send(&notice(Channel::Slack, "U0123ABCD"))
        .await
        .unwrap();
    let body = fake.one().json();
    assert_eq!(body["text"], "On call from 09:00");
    assert_eq!(
        body["blocks"],
        json!([{ "type": "section", "text": {
            "type": "mrkdwn",
            "text": "You are on call for Primary from 09:00.\nHand-off notes: @here check *db*",
        }}])
    );
}
