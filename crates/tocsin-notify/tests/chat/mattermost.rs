//! Mattermost: a Markdown post through an incoming webhook.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use serde_json::{json, Value};
use tocsin_core::escalation::Channel;
use tocsin_notify::{MattermostConfig, MattermostProvider, Provider, SendError, Sent};

use super::*;

const HOOK: &str = "/hooks/xxx-generatedkey-xxx";

/// Mattermost's AppError, the shape of every refusal.
fn app_error(status: u16, id: &str, message: &str) -> Reply {
    json_reply(
        status,
        json!({
            "id": id, "message": message, "detailed_error": "",
            "request_id": "hoan6o9ws7rp5xj7wu9rmysrte", "status_code": status,
        }),
    )
}

fn incoming(req: &Seen) -> Result<Reply, Reply> {
    if req.method != Method::POST {
        return Err(text_reply(405, ""));
    }
    if req.uri.path() != HOOK {
        return Err(app_error(
            400,
            "web.incoming_webhook.invalid.app_error",
            "Invalid webhook.",
        ));
    }
    // Without a JSON content type Mattermost expects Slack's form `payload=`.
    if !req.header("content-type").starts_with("application/json") {
        return Err(app_error(
            400,
            "web.incoming_webhook.parse.app_error",
            "Unable to parse",
        ));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Err(app_error(
            400,
            "web.incoming_webhook.parse.app_error",
            "Unable to parse",
        ));
    };
    if chars(&body["text"]) == 0 && body.get("attachments").is_none() {
        return Err(app_error(
            400,
            "web.incoming_webhook.text.app_error",
            "No text specified",
        ));
    }
    if chars(&body["text"]) > 16383 {
        return Err(app_error(
            400,
            "web.incoming_webhook.text.length.app_error",
            "too long",
        ));
    }
    for reserved in [
        "from_webhook",
        "override_username",
        "override_icon_url",
        "attachments",
    ] {
        if body["props"].get(reserved).is_some() {
            return Err(app_error(400, "api.post.props.reserved", reserved));
        }
    }
    Ok((200, vec![("content-type", "text/plain")], "ok".into()))
}

fn provider(config: MattermostConfig) -> MattermostProvider {
    MattermostProvider::new(config)
        .unwrap()
        .with_clock(Arc::new(clock()))
}

fn config() -> MattermostConfig {
    MattermostConfig {
        timeout: Duration::from_secs(5),
        ..MattermostConfig::default()
    }
}

async fn post(script: Vec<Reply>, title: &str) -> (Result<Sent, SendError>, Fake) {
    let (fake, addr) = Fake::start(incoming, script).await;
    let r = provider(config())
        .send(&page(
            Channel::Mattermost,
            &format!("http://{addr}{HOOK}"),
            title,
        ))
        .await;
    (r, fake)
}

#[tokio::test]
async fn posts_markdown_with_action_and_incident_links() {
    let (result, fake) = post(vec![], "Database down").await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: None,
            status: 200
        })
    );
    let body = fake.one().json();
    assert_eq!(
        body["text"],
        "#### Incident 12: Database down\n\
         **Urgency:** high · **Escalation level:** 1\n\
         **[Acknowledge](https://tocsin.example/actions/ack-tok)** · \
         **[Resolve](https://tocsin.example/actions/res-tok)**\n\
         [Incident](https://tocsin.example/incidents/7)"
    );
    assert_eq!(
        body["props"],
        json!({ "tocsin": { "incident_id": 7, "incident_number": 12 } })
    );
    assert!(body.get("username").is_none());
}

#[tokio::test]
async fn hostile_titles_cannot_link_format_or_mention() {
    let (result, fake) = post(vec![], HOSTILE).await;
    assert!(result.is_ok(), "{result:?}");
    let text = fake.one().json()["text"].as_str().unwrap().to_string();
    let heading = text.lines().next().unwrap();
    assert_eq!(
        heading,
        "#### Incident 12: <\\!channel\\> \\*bold\\* @\u{200B}everyone \\[x\\]\\(http://evil\\) \
         & <@\u{200B}U1\\>"
    );
    for mention in ["@channel", "@all", "@here", "@everyone"] {
        assert!(!text.contains(mention), "{mention} in {text}");
    }
    assert!(!text.contains("[x]("));
}

#[tokio::test]
async fn username_and_icon_overrides_are_sent() {
    let (fake, addr) = Fake::start(incoming, vec![]).await;
    let p = provider(MattermostConfig {
        username: Some("Tocsin".into()),
        icon_url: Some("https://tocsin.example/icon.png".into()),
        ..config()
    });
    p.send(&notice(
        Channel::Mattermost,
        &format!("http://{addr}{HOOK}"),
    ))
    .await
    .unwrap();
    let body = fake.one().json();
    assert_eq!(body["username"], "Tocsin");
    assert_eq!(body["icon_url"], "https://tocsin.example/icon.png");
    // On-call notices keep their lines; mentions in them are broken too.
    assert_eq!(
        body["text"],
        "You are on call for Primary from 09:00.\nHand\\-off notes: @\u{200B}here check \\*db\\*"
    );
    assert!(body.get("props").is_none());
}

#[tokio::test]
async fn refusals_are_permanent_with_the_message() {
    let (fake, addr) = Fake::start(incoming, vec![]).await;
    let r = provider(config())
        .send(&page(
            Channel::Mattermost,
            &format!("http://{addr}/hooks/unknown"),
            "x",
        ))
        .await;
    assert_eq!(fake.seen().len(), 1);
    match r {
        Err(SendError::Permanent { status, reason }) => {
            assert_eq!(status, Some(400));
            assert!(reason.contains("Invalid webhook."), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let disabled = app_error(
        403,
        "api.incoming_webhook.disabled.app_error",
        "Incoming webhooks have been disabled by the system admin.",
    );
    assert!(matches!(
        post(vec![disabled], "x").await.0,
        Err(SendError::Permanent {
            status: Some(403),
            ..
        })
    ));
}

#[tokio::test]
async fn throttling_and_server_errors_are_retryable() {
    let limited = (
        429,
        vec![("retry-after", "3"), ("x-ratelimit-remaining", "0")],
        "limit exceeded".to_string(),
    );
    match post(vec![limited], "x").await.0 {
        Err(SendError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("{other:?}"),
    }
    let down = app_error(500, "app.post.save.app_error", "Unable to save the post.");
    assert!(post(vec![down], "x").await.0.unwrap_err().is_retryable());
}
