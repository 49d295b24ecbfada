//! `zoom_meeting`: a Server-to-Server OAuth app's access token
//! (`POST /oauth/token?grant_type=account_credentials&account_id=…` with
//! Basic `client_id:client_secret`), then an instant meeting
//! (`POST /v2/users/me/meetings`, type 1). Only the join link leaves the
//! step: the access token and the host's `start_url` (which carries a host
//! key) are never kept.
//!
//! A token is fetched for each meeting: meetings are rare, a token lives an
//! hour, and nothing secret is held between steps.

use serde_json::{json, Value};
use tocsin_core::workflow::action::Method;
use tocsin_core::workflow::{redact, Action, NetPolicy};
use tocsin_notify::BoxFuture;

use super::{basic_auth, excerpt, headers, link, note_on_incident, query_value, Api};
use crate::workflow::executor::{StepCall, StepError, StepExecutor};

/// Zoom's OAuth server.
pub const ZOOM_OAUTH: &str = "https://zoom.us";
/// Zoom's API.
pub const ZOOM_API: &str = "https://api.zoom.us/v2";

/// `[workflows.zoom]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoomConfig {
    /// The API, `https://api.zoom.us/v2`.
    pub api_url: String,
    /// The OAuth server, `https://zoom.us`.
    pub oauth_url: String,
    /// The Zoom account id of the Server-to-Server OAuth app.
    pub account_id: String,
    /// The app's client id.
    pub client_id: String,
    /// Name of the stored secret holding the app's client secret.
    pub client_secret_secret: String,
    /// Whose meetings they are: `me` (the app's account owner) or a user's
    /// email or id.
    pub host: String,
}

/// Creates Zoom meetings.
pub struct ZoomMeetingStep {
    config: ZoomConfig,
    api: Api,
}

impl ZoomMeetingStep {
    /// Under `net`, with the API and OAuth base URLs allowed.
    pub fn new(config: ZoomConfig, net: &NetPolicy, max_response: usize) -> ZoomMeetingStep {
        let api = Api::new(
            "Zoom",
            net,
            max_response,
            &[&config.api_url, &config.oauth_url],
        );
        ZoomMeetingStep { config, api }
    }

    // An access token for one meeting.
    async fn token(&self, call: &StepCall<'_>) -> Result<String, StepError> {
        let secret = call.secret(&self.config.client_secret_secret)?;
        let url = format!(
            "{}/oauth/token?grant_type=account_credentials&account_id={}",
            self.config.oauth_url.trim_end_matches('/'),
            query_value(&self.config.account_id)
        );
        let auth = basic_auth(&self.config.client_id, secret);
        let h = headers(&[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ]);
        let resp = self
            .api
            .send(call, Method::Post, &url, &h, Some(""))
            .await?;
        if !(200..300).contains(&resp.status) {
            // `{"reason": "Invalid client_id or client_secret", "error": "invalid_client"}`
            let why = match (resp.body["error"].as_str(), resp.body["reason"].as_str()) {
                (Some(e), Some(r)) => format!("{r} ({e})"),
                (Some(e), None) => e.to_string(),
                _ => excerpt(&resp.body),
            };
            return Err(self.api.failure(&resp, &format!("no access token: {why}")));
        }
        resp.body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                StepError::permanent("Zoom answered the token request without an access_token")
            })
    }
}

impl StepExecutor for ZoomMeetingStep {
    fn kinds(&self) -> &'static [&'static str] {
        &["zoom_meeting"]
    }

    fn uses_secret_values(&self) -> bool {
        true
    }

    fn config_secrets(&self) -> Vec<String> {
        vec![self.config.client_secret_secret.clone()]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::ZoomMeeting(z) = call.action else {
                return Err(StepError::permanent("not a zoom_meeting step"));
            };
            let incident = &call.context["incident"];
            let topic = match z.topic.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(t) => t.to_string(),
                None => match (incident["number"].as_str(), incident["title"].as_str()) {
                    (Some(n), Some(t)) => format!("{n}: {t}"),
                    _ => call.workflow_name.to_string(),
                },
            };
            // Zoom caps topics at 200 characters.
            let topic: String = topic.chars().take(200).collect();
            let token = self.token(call).await?;
            let mut body = json!({ "topic": topic, "type": 1 });
            if let Some(url) = incident["url"].as_str() {
                body["agenda"] = json!(format!("Incident room: {url}"));
            }
            let auth = format!("Bearer {token}");
            let h = headers(&[
                ("Authorization", &auth),
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ]);
            let url = format!(
                "{}/users/{}/meetings",
                self.config.api_url.trim_end_matches('/'),
                query_value(&self.config.host)
            );
            let hide = |e: StepError| match e {
                StepError::Retryable(m) => {
                    StepError::Retryable(redact(&m, &[("zoom access token", &token)]))
                }
                StepError::Permanent(m) => {
                    StepError::Permanent(redact(&m, &[("zoom access token", &token)]))
                }
            };
            let resp = self
                .api
                .send(call, Method::Post, &url, &h, Some(&body.to_string()))
                .await
                .map_err(hide)?;
            if !(200..300).contains(&resp.status) {
                // `{"code": 124, "message": "Invalid access token."}`
                let why = match resp.body["message"].as_str() {
                    Some(m) => format!("{m} (code {})", resp.body["code"]),
                    None => excerpt(&resp.body),
                };
                return Err(hide(self.api.failure(&resp, &why)));
            }
            let join_url = resp.body["join_url"]
                .as_str()
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    StepError::permanent(format!(
                        "Zoom answered HTTP {} without a join_url",
                        resp.status
                    ))
                })?
                .to_string();
            let id = resp.body["id"].clone();
            let noted = z.post_link
                && note_on_incident(call, &format!("Meeting link: {join_url} (Zoom)")).await;
            Ok(json!({
                "meeting_id": id,
                "join_url": join_url,
                "url": join_url,
                "topic": topic,
                "noted": noted,
                "link": link("zoom_meeting", &topic, &join_url),
            }))
        })
    }
}
