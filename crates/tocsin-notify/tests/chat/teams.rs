//! Teams: an Adaptive Card to a Workflows webhook (202) or a legacy connector (200 "1").

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use serde_json::{json, Value};
use tocsin_core::escalation::Channel;
use tocsin_notify::{Provider, SendError, Sent, TeamsConfig, TeamsProvider};

use super::*;

const PATH: &str = "/workflows/abc/triggers/manual/paths/invoke";

/// A Workflows trigger: 202 Accepted with no body; a body the flow cannot read
/// is refused with Power Automate's JSON error.
fn workflows(req: &Seen) -> Result<Reply, Reply> {
    let refuse = |code: &str, message: &str| {
        json_reply(
            400,
            json!({ "error": { "code": code, "message": message } }),
        )
    };
    if req.method != Method::POST || req.uri.path() != PATH {
        return Err(json_reply(
            404,
            json!({ "error": { "code": "WorkflowNotFound", "message": "not found" } }),
        ));
    }
    if !req.uri.query().unwrap_or("").contains("sig=s3cr3t") {
        return Err(json_reply(
            401,
            json!({ "error": { "code": "DirectApiAuthorizationRequired", "message": "no sig" } }),
        ));
    }
    if !req.header("content-type").starts_with("application/json") {
        return Err(refuse("InvalidRequestContent", "content type"));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Err(refuse("InvalidRequestContent", "not JSON"));
    };
    let card = &body["attachments"][0];
    let ok = body["type"] == "message"
        && body["attachments"].as_array().map(Vec::len) == Some(1)
        && card["contentType"] == "application/vnd.microsoft.card.adaptive"
        && card.get("contentUrl") == Some(&Value::Null)
        && card["content"]["type"] == "AdaptiveCard"
        && card["content"]["version"] == "1.4"
        && card["content"]["body"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
        && req.body.len() < 28 * 1024;
    if !ok {
        return Err(refuse(
            "TriggerInputSchemaMismatch",
            "not an adaptive card message",
        ));
    }
    Ok((202, vec![], String::new()))
}

fn provider() -> TeamsProvider {
    TeamsProvider::new(TeamsConfig {
        timeout: Duration::from_secs(5),
    })
    .unwrap()
    .with_clock(Arc::new(clock()))
}

async fn post(script: Vec<Reply>, title: &str) -> (Result<Sent, SendError>, Fake) {
    let (fake, addr) = Fake::start(workflows, script).await;
    let target = format!("http://{addr}{PATH}?api-version=1&sig=s3cr3t");
    let r = provider().send(&page(Channel::Teams, &target, title)).await;
    (r, fake)
}

#[tokio::test]
async fn posts_an_adaptive_card_with_facts_and_open_url_actions() {
    let (result, fake) = post(vec![], "Database down").await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: None,
            status: 202
        })
    );
    let card = fake.one().json()["attachments"][0]["content"].clone();
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(card["fallbackText"], "Tocsin #12 high: Database down");
    assert_eq!(
        card["body"],
        json!([
            { "type": "RichTextBlock", "inlines": [{
                "type": "TextRun", "text": "Incident #12: Database down",
                "weight": "Bolder", "size": "Large",
            }]},
            { "type": "FactSet", "facts": [
                { "title": "Urgency", "value": "high" },
                { "title": "Escalation level", "value": "1" },
            ]},
        ])
    );
    assert_eq!(
        card["actions"],
        json!([
            { "type": "Action.OpenUrl", "title": "Acknowledge",
              "url": "https://tocsin.example/actions/ack-tok", "style": "positive" },
            { "type": "Action.OpenUrl", "title": "Resolve",
              "url": "https://tocsin.example/actions/res-tok" },
            { "type": "Action.OpenUrl", "title": "Incident",
              "url": "https://tocsin.example/incidents/7" },
        ])
    );
}

#[tokio::test]
async fn hostile_titles_go_where_markdown_is_not_read() {
    let (result, fake) = post(vec![], HOSTILE).await;
    assert!(result.is_ok(), "{result:?}");
    let card = fake.one().json()["attachments"][0]["content"].clone();
    // TextRun is never Markdown, so the title is sent exactly as typed…
    assert_eq!(card["body"][0]["inlines"][0]["type"], "TextRun");
    assert_eq!(
        card["body"][0]["inlines"][0]["text"],
        format!("Incident #12: {HOSTILE}")
    );
    // …and no TextBlock (which is) carries it.
    assert!(!card.to_string().contains("\"TextBlock\""));
}

#[tokio::test]
async fn refusals_are_permanent_and_throttling_waits() {
    let (fake, addr) = Fake::start(workflows, vec![]).await;
    let r = provider()
        .send(&page(
            Channel::Teams,
            &format!("http://{addr}{PATH}?sig=wrong"),
            "x",
        ))
        .await;
    assert_eq!(fake.seen().len(), 1);
    match r {
        Err(SendError::Permanent { status, reason }) => {
            assert_eq!(status, Some(401));
            assert!(
                reason.contains("DirectApiAuthorizationRequired"),
                "{reason}"
            );
            assert!(
                !reason.contains("sig="),
                "the URL's credential stays out: {reason}"
            );
        }
        other => panic!("{other:?}"),
    }

    let throttled = (
        429,
        vec![("retry-after", "12")],
        json!({ "error": { "code": "TooManyRequests", "message": "slow down" } }).to_string(),
    );
    match post(vec![throttled], "x").await.0 {
        Err(SendError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(12)))
        }
        other => panic!("{other:?}"),
    }
    assert!(post(vec![text_reply(502, "bad gateway")], "x")
        .await
        .0
        .unwrap_err()
        .is_retryable());
}

#[tokio::test]
async fn legacy_connectors_hide_failures_in_a_200() {
    let (result, _) = post(vec![text_reply(200, "1")], "x").await;
    assert_eq!(result.map(|s| s.status), Ok(200));

    let throttled = text_reply(
        200,
        "Webhook message delivery failed with error: Microsoft Teams endpoint returned \
         HTTP error 429 with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170",
    );
    assert!(matches!(
        post(vec![throttled], "x").await.0,
        Err(SendError::Retryable { .. })
    ));
    let gone = text_reply(
        200,
        "Webhook message delivery failed with error: Microsoft Teams endpoint returned \
         HTTP error 403 with ContextId x",
    );
    assert!(matches!(
        post(vec![gone], "x").await.0,
        Err(SendError::Permanent {
            status: Some(403),
            ..
        })
    ));
}

#[tokio::test]
async fn on_call_notices_are_one_text_run() {
    let (fake, addr) = Fake::start(workflows, vec![]).await;
    let target = format!("http://{addr}{PATH}?sig=s3cr3t");
    provider()
        .send(&notice(Channel::Teams, &target))
        .await
        .unwrap();
    let card = fake.one().json()["attachments"][0]["content"].clone();
    assert_eq!(
        card["body"][0]["inlines"][0]["text"],
        "You are on call for Primary from 09:00.\nHand-off notes: @here check *db*"
    );
    assert_eq!(card["actions"], json!([]));
}

#[tokio::test]
async fn addresses_must_be_http_urls() {
    match provider()
        .send(&page(Channel::Teams, "teams-channel", "x"))
        .await
    {
        Err(SendError::Permanent { status: None, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    // A port that was just free and is no longer listened on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    match provider()
        .send(&page(
            Channel::Teams,
            &format!("http://{addr}{PATH}?sig=s3cr3t"),
            "x",
        ))
        .await
    {
        Err(SendError::Retryable {
            reason,
            retry_after: None,
        }) => {
            assert!(reason.starts_with("could not connect"), "{reason}");
            assert!(!reason.contains("s3cr3t"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
