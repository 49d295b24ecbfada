//! Integration steps whose integration is not configured on this server
//! (no `[workflows.jira]` …): each fails at once, permanently, saying so. A
//! configured integration's executor, listed after this one in
//! `standard_executors`, takes its kind over.

use serde_json::Value;
use tocsin_notify::BoxFuture;

use super::executor::{StepCall, StepError, StepExecutor};

/// The integration step kinds: Jira, GitHub, Slack, Zoom, Jitsi.
pub const INTEGRATION_KINDS: &[&str] = &[
    "jira_create_issue",
    "github_create_issue",
    "slack_create_channel",
    "zoom_meeting",
    "jitsi_link",
];

/// Fails every step of its kinds with "not configured".
pub struct NotConfigured;

impl StepExecutor for NotConfigured {
    fn kinds(&self) -> &'static [&'static str] {
        INTEGRATION_KINDS
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        let kind = call.action.kind();
        Box::pin(async move {
            Err(StepError::permanent(format!(
                "{kind} is not configured on this server (see [workflows.{}] in the configuration)",
                kind.split('_').next().unwrap_or(kind)
            )))
        })
    }
}
