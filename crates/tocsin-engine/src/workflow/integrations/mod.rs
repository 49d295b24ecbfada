//! The integration steps: a Jira issue, a GitHub issue, a Slack channel, a
//! Zoom meeting, a Jitsi link. Each integration is configured once on the
//! server (`[workflows.jira]` …) with its base URL and the *names* of the
//! stored secrets holding its credentials; steps never see the credentials.
//!
//! Calls go through [`Outbound`] under the outgoing HTTP policy, except that
//! an integration's own configured base URLs are allowed (an internal Jira,
//! a fake on 127.0.0.1 in tests); the deny list still wins. Answers are read
//! the same way everywhere: a 4xx fails the step for good with the API's own
//! message, a 5xx, 429 or timeout may pass on a retry. Whatever an
//! integration creates is noted on the incident's timeline with its link,
//! and its outputs carry a `link` (`kind`, `label`, `url`) that the timeline
//! event of the step keeps too.

mod github;
mod jira;
mod jitsi;
mod slack;
mod zoom;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use tocsin_core::incident::RecordKind;
use tocsin_core::workflow::action::{retryable_status, Method};
use tocsin_core::workflow::net::NetRule;
use tocsin_core::workflow::{NetPolicy, TargetUrl};
use tocsin_store::NewNote;

pub use github::{GithubConfig, GithubIssue, GITHUB_API};
pub use jira::{JiraConfig, JiraIssue};
pub use jitsi::{JitsiConfig, JitsiLinkStep, PUBLIC_JITSI};
pub use slack::{SlackChannel, SlackConfig, SLACK_API};
pub use zoom::{ZoomConfig, ZoomMeetingStep, ZOOM_API, ZOOM_OAUTH};

use super::executor::{StepCall, StepError};
use super::http::{Outbound, OutboundRequest, OutboundResponse};

/// How long one call to an integration's API may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// `[workflows.jira]` and the rest: which integrations are configured. Jitsi
/// needs no credentials and is always available.
#[derive(Debug, Clone, Default)]
pub struct IntegrationsConfig {
    /// Jira, if configured.
    pub jira: Option<JiraConfig>,
    /// GitHub, if configured.
    pub github: Option<GithubConfig>,
    /// Slack, if configured.
    pub slack: Option<SlackConfig>,
    /// Zoom, if configured.
    pub zoom: Option<ZoomConfig>,
    /// Jitsi.
    pub jitsi: JitsiConfig,
}

/// The outgoing HTTP policy with an integration's configured base URLs
/// allowed: an address written in a base URL allows that address, a host
/// name allows the private addresses it resolves to (as an allowed host name
/// does for HTTP steps). The deny list still wins.
pub fn policy_with_bases(net: &NetPolicy, bases: &[&str]) -> Result<NetPolicy, String> {
    let mut policy = net.clone();
    for base in bases {
        let target = TargetUrl::parse("base_url", base).map_err(|e| e.message)?;
        let rule = NetRule::parse("base_url", &target.host).map_err(|e| e.message)?;
        if !policy.allow.contains(&rule) {
            policy.allow.push(rule);
        }
    }
    Ok(policy)
}

/// One integration's API: its base URL and a client under its policy.
#[derive(Clone)]
pub(crate) struct Api {
    /// Which service, for messages (`Jira`, `Slack`).
    service: &'static str,
    outbound: Outbound,
}

impl Api {
    /// A client for `service` that may reach `bases` besides what `net` allows.
    pub(crate) fn new(
        service: &'static str,
        net: &NetPolicy,
        max_response: usize,
        bases: &[&str],
    ) -> Api {
        // Bases were checked when the configuration was read; a bad one here
        // leaves the plain policy, which then refuses it by name.
        let policy = policy_with_bases(net, bases).unwrap_or_else(|_| net.clone());
        Api {
            service,
            outbound: Outbound::new(policy, max_response),
        }
    }

    /// Sends one request; transport failures come back as step errors.
    pub(crate) async fn send(
        &self,
        call: &StepCall<'_>,
        method: Method,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: Option<&str>,
    ) -> Result<OutboundResponse, StepError> {
        self.outbound
            .send(&OutboundRequest {
                method,
                url,
                headers,
                body,
                timeout: CALL_TIMEOUT,
                idempotency_key: call.idempotency_key,
            })
            .await
            .map_err(|e| match e {
                StepError::Retryable(m) => {
                    StepError::Retryable(format!("{} did not answer: {m}", self.service))
                }
                StepError::Permanent(m) => {
                    StepError::Permanent(format!("{} cannot be called: {m}", self.service))
                }
            })
    }

    /// The failure for an unexpected status, with the API's own message.
    pub(crate) fn failure(&self, resp: &OutboundResponse, message: &str) -> StepError {
        let mut why = format!("{} answered HTTP {}: {message}", self.service, resp.status);
        if let Some(after) = resp.headers.get("retry-after").and_then(Value::as_str) {
            why.push_str(&format!(" (retry after {after}s)"));
        }
        if retryable_status(resp.status) {
            StepError::Retryable(why)
        } else {
            StepError::Permanent(why)
        }
    }
}

/// `Basic` credentials for `user:password`.
pub(crate) fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// Percent-encodes a query parameter value.
pub(crate) fn query_value(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A JSON headers map with the given pairs.
pub(crate) fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Up to 300 characters of a body that is not the expected JSON.
pub(crate) fn excerpt(body: &Value) -> String {
    match body {
        Value::String(s) => s.chars().take(300).collect(),
        other => other.to_string().chars().take(300).collect(),
    }
}

/// What an integration created, as outputs and the timeline keep it.
pub(crate) fn link(kind: &str, label: &str, url: &str) -> Value {
    json!({ "kind": kind, "label": label, "url": url })
}

/// Notes `text` on the run's incident, once per attempt. The external
/// object exists by now, so a note that cannot be written does not fail the
/// step (a retry would create a second one): it is logged, the step's
/// outputs and timeline event still carry the link. `false` when not noted.
pub(crate) async fn note_on_incident(call: &StepCall<'_>, text: &str) -> bool {
    let Some(incident) = call.incident_id else {
        return false;
    };
    match call.already_done("link").await {
        Ok(true) => return true,
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(run_id = call.run_id, error = %e, "cannot note an integration's link");
            return false;
        }
    }
    let note = NewNote {
        body: text.to_string(),
        kind: RecordKind::Note,
        approved_by: None,
    };
    match call
        .store("link")
        .add_note(incident, &note, call.actor, call.now)
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(run_id = call.run_id, error = %e, "cannot note an integration's link");
            false
        }
    }
}

/// A rendered value as JSON for an API field: objects, lists, numbers,
/// booleans and null written as JSON are sent as such, anything else as text.
pub(crate) fn field_value(text: &str) -> Value {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(
            v @ (Value::Object(_)
            | Value::Array(_)
            | Value::Number(_)
            | Value::Bool(_)
            | Value::Null),
        ) => v,
        _ => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_allowed_by_address_or_name_and_the_deny_list_still_wins() {
        let net = NetPolicy::parse(&[], &["10.9.9.9".to_string()]).unwrap();
        let p = policy_with_bases(&net, &["http://127.0.0.1:8080", "https://jira.corp"]).unwrap();
        let lo = "127.0.0.1".parse().unwrap();
        assert!(p.check_ip("127.0.0.1", lo).is_ok());
        assert!(
            net.check_ip("127.0.0.1", lo).is_err(),
            "HTTP steps still refused"
        );
        assert!(p.check_ip("jira.corp", "10.1.2.3".parse().unwrap()).is_ok());
        assert!(p
            .check_ip("jira.corp", "10.9.9.9".parse().unwrap())
            .is_err());
        assert!(p
            .check_ip("other.corp", "10.1.2.3".parse().unwrap())
            .is_err());
        assert!(policy_with_bases(&net, &["ftp://x"]).is_err());
    }

    #[test]
    fn query_values_and_field_values() {
        assert_eq!(query_value("a.b+c@example.com"), "a.b%2Bc%40example.com");
        assert_eq!(field_value("3"), json!(3));
        assert_eq!(field_value(r#"{"value": "x"}"#), json!({"value": "x"}));
        assert_eq!(field_value("High"), json!("High"));
        assert_eq!(basic_auth("a", "b"), "Basic YTpi");
    }
}
