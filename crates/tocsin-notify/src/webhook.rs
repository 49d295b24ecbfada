//! The generic outgoing webhook: a signed JSON POST to the URL a contact method holds.
//!
//! The body is versioned (`"version": 1`) and documented in docs/integrations.md
//! ("Outgoing webhooks"); changing its shape means a new version, never an edit.

use std::sync::Arc;
use std::time::Duration;

use chrono::SecondsFormat;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Url;
use serde_json::{json, Value};
use tocsin_core::time::{Clock, SystemClock, Timestamp};
use tocsin_core::Invalid;

use crate::classify::{classify, SendError, EXCERPT_BYTES};
use crate::http::{self, web_url};
use crate::signature::{sign, SIGNATURE_HEADER};
use crate::{BoxFuture, Outgoing, Provider, Sent};

/// The body's schema version.
pub const BODY_VERSION: u32 = 1;

/// How long a receiver has to answer unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = http::DEFAULT_TIMEOUT;

/// Headers Tocsin sets itself; extra headers may not replace them.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "user-agent",
    "idempotency-key",
];

/// How one webhook provider sends. The URL is not here: each contact method's address is its URL.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The shared secret receivers verify `Tocsin-Signature` with.
    pub secret: String,
    /// Extra headers on every request (an API key the receiver wants, a routing header).
    pub headers: Vec<(String, String)>,
    /// How long a receiver has to answer, connection included.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    // Neither the secret nor header values (an API key) are printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("secret", &"<hidden>")
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookConfig {
    /// Signing with `secret`, no extra headers, the default timeout.
    pub fn new(secret: impl Into<String>) -> Self {
        WebhookConfig {
            secret: secret.into(),
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Sends [`Outgoing`] messages as signed JSON POSTs.
pub struct WebhookProvider {
    client: reqwest::Client,
    secret: Vec<u8>,
    headers: HeaderMap,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhookProvider {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookProvider")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookProvider {
    /// A provider for `config`, refusing an empty secret, a zero timeout and
    /// extra headers that are malformed or would replace Tocsin's own.
    pub fn new(config: WebhookConfig) -> Result<Self, Invalid> {
        if config.secret.is_empty() {
            return Err(Invalid::new("secret", "a signing secret is required"));
        }
        if config.timeout.is_zero() {
            return Err(Invalid::new("timeout", "must be more than zero"));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let field = format!("headers.{name}");
            let key = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Invalid::new(&field, "not a valid header name"))?;
            if RESERVED.contains(&key.as_str()) || key.as_str().starts_with("tocsin-") {
                return Err(Invalid::new(&field, "set by Tocsin; cannot be replaced"));
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| Invalid::new(&field, "not a valid header value"))?;
            headers.append(key, value);
        }
        // Redirects are not followed: a signed body sent somewhere not configured
        // is worse than a clear permanent error.
        let client = http::client(config.timeout, "webhook")?;
        Ok(WebhookProvider {
            client,
            secret: config.secret.into_bytes(),
            headers,
            timeout: config.timeout,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same provider reading the time (`sent_at`, the signature's `t`) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn post(&self, out: &Outgoing) -> Result<Sent, SendError> {
        let url = webhook_url(&out.recipient.address)?;
        let now = self.clock.now();
        let raw = serde_json::to_vec(&body(out, now)).expect("a JSON value serializes");
        post_signed(
            &self.client,
            url,
            &self.headers,
            &out.idempotency_key,
            &self.secret,
            raw,
            now,
            self.timeout,
        )
        .await
    }
}

/// POSTs `raw` (JSON) to `url` once, signed with `secret` at `now`
/// (`Tocsin-Signature`), with `Idempotency-Key` and `headers`, and classifies
/// the answer. Every signed webhook Tocsin sends goes through here.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn post_signed(
    client: &reqwest::Client,
    url: Url,
    headers: &HeaderMap,
    idempotency_key: &str,
    secret: &[u8],
    raw: Vec<u8>,
    now: Timestamp,
    timeout: Duration,
) -> Result<Sent, SendError> {
    let idempotency_key = HeaderValue::from_str(idempotency_key)
        .map_err(|_| SendError::bad_address("idempotency key is not a valid header value"))?;
    let signature = sign(secret, now.timestamp(), &raw);
    let request = client
        .post(url)
        .headers(headers.clone())
        .header(CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", idempotency_key)
        .header(SIGNATURE_HEADER, signature)
        .body(raw);
    let response = request
        .send()
        .await
        .map_err(|e| crate::classify::transport(&e.without_url(), timeout))?;
    let status = response.status().as_u16();
    // Only an excerpt of a failure is kept, so only a little is read: a
    // receiver answering with megabytes costs nothing. A success's body is unused.
    let limit = if response.status().is_success() {
        0
    } else {
        EXCERPT_BYTES + 1
    };
    let http::Answer {
        headers,
        body: answer,
        ..
    } = http::read(response, limit).await;
    classify(status, &headers, &answer, now)?;
    Ok(Sent {
        provider_id: None,
        status,
    })
}

impl Provider for WebhookProvider {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.post(out))
    }
}

/// A contact method's address as a webhook URL: absolute http or https with a host.
pub(crate) fn webhook_url(address: &str) -> Result<Url, SendError> {
    web_url(address, "webhook")
}

/// The JSON body, version 1, for `out` sent at `sent_at` (docs/integrations.md).
pub fn body(out: &Outgoing, sent_at: Timestamp) -> Value {
    let incident = out.message.incident.as_ref().map(|i| {
        json!({
            "id": i.id,
            "number": i.number,
            "title": i.title,
            "urgency": i.urgency.as_str(),
            "level": i.level,
            "links": i.links.iter()
                .map(|l| json!({ "text": l.text, "href": l.href }))
                .collect::<Vec<_>>(),
            "actions": i.actions.iter()
                .map(|a| json!({ "action": a.action, "text": a.text, "href": a.href }))
                .collect::<Vec<_>>(),
        })
    });
    json!({
        "version": BODY_VERSION,
        "event": if incident.is_some() { "incident.notify" } else { "oncall.notify" },
        "idempotency_key": out.idempotency_key,
        "sent_at": sent_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "incident": incident,
        "recipient": {
            "user_id": out.recipient.user_id,
            "contact_method_id": out.recipient.contact_method_id,
            "contact_kind": out.recipient.kind,
            "address": out.recipient.address,
        },
        "message": {
            "subject": out.message.subject,
            "short": out.message.short,
            "long": out.message.long,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(headers: &[(&str, &str)]) -> WebhookConfig {
        WebhookConfig {
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..WebhookConfig::new("s3cret")
        }
    }

    fn field(r: Result<WebhookProvider, Invalid>) -> String {
        r.map(|_| ()).unwrap_err().field
    }

    #[test]
    fn configuration_is_checked() {
        assert!(WebhookProvider::new(config(&[("X-Api-Key", "abc")])).is_ok());
        assert_eq!(
            field(WebhookProvider::new(WebhookConfig::new(""))),
            "secret"
        );
        let zero = WebhookConfig {
            timeout: Duration::ZERO,
            ..WebhookConfig::new("s")
        };
        assert_eq!(field(WebhookProvider::new(zero)), "timeout");
        for (name, value) in [
            ("Bad Name", "x"),
            ("X-Ok", "line\nbreak"),
            ("User-Agent", "curl"),
            ("idempotency-key", "x"),
            ("Tocsin-Signature", "t=1,v1=00"),
            ("Content-Type", "text/plain"),
        ] {
            assert_eq!(
                field(WebhookProvider::new(config(&[(name, value)]))),
                format!("headers.{name}")
            );
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let p = WebhookProvider::new(config(&[])).unwrap();
        assert!(!format!("{p:?}").contains("s3cret"));
    }

    #[test]
    fn addresses_must_be_http_urls() {
        for good in [
            "http://127.0.0.1:9/hook",
            "http://hooks.example/x?y=1",
            " http://a.example ",
            "https://hooks.example/x",
        ] {
            assert!(webhook_url(good).is_ok(), "{good}");
        }
        let bad = [
            "",
            "hooks.example/x",
            "ftp://hooks.example/",
            "mailto:a@b.example",
            "http://",
        ];
        for bad in bad {
            match webhook_url(bad) {
                Err(SendError::Permanent { status: None, .. }) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
