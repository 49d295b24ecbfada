//! `jira_create_issue`: `POST /rest/api/2/issue` (Jira Cloud REST API v2,
//! also served by Jira Data Center), with Basic credentials `email:API
//! token`. Version 2 takes the description as plain text (wiki markup);
//! version 3 would need it as an Atlassian Document Format tree.

use serde_json::{json, Map, Value};
use tocsin_core::workflow::action::Method;
use tocsin_core::workflow::{Action, NetPolicy};
use tocsin_notify::BoxFuture;

use super::{basic_auth, excerpt, field_value, headers, link, note_on_incident, Api};
use crate::workflow::executor::{StepCall, StepError, StepExecutor};

/// `[workflows.jira]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraConfig {
    /// The site, e.g. `https://example.atlassian.net`.
    pub base_url: String,
    /// The account the API token belongs to.
    pub email: String,
    /// Name of the stored secret holding the API token.
    pub api_token_secret: String,
}

/// Creates Jira issues.
pub struct JiraIssue {
    config: JiraConfig,
    api: Api,
}

impl JiraIssue {
    /// Under `net`, with the site's base URL allowed.
    pub fn new(config: JiraConfig, net: &NetPolicy, max_response: usize) -> JiraIssue {
        let api = Api::new("Jira", net, max_response, &[&config.base_url]);
        JiraIssue { config, api }
    }

    fn base(&self) -> &str {
        self.config.base_url.trim_end_matches('/')
    }
}

// Jira's error body: `{"errorMessages": [...], "errors": {"field": "why"}}`.
fn jira_message(body: &Value) -> String {
    let mut parts: Vec<String> = body["errorMessages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(errors) = body["errors"].as_object() {
        parts.extend(errors.iter().map(|(field, why)| {
            format!(
                "{field}: {}",
                why.as_str().map_or(why.to_string(), str::to_string)
            )
        }));
    }
    if parts.is_empty() {
        excerpt(body)
    } else {
        parts.join("; ")
    }
}

impl StepExecutor for JiraIssue {
    fn kinds(&self) -> &'static [&'static str] {
        &["jira_create_issue"]
    }

    fn uses_secret_values(&self) -> bool {
        true
    }

    fn config_secrets(&self) -> Vec<String> {
        vec![self.config.api_token_secret.clone()]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::JiraCreateIssue(j) = call.action else {
                return Err(StepError::permanent("not a jira_create_issue step"));
            };
            let token = call.secret(&self.config.api_token_secret)?;
            let mut fields = Map::new();
            for (id, v) in &j.fields {
                fields.insert(id.clone(), field_value(v));
            }
            // The step's own fields win over the same ids in `fields`.
            fields.insert("project".into(), json!({ "key": j.project.trim() }));
            fields.insert("issuetype".into(), json!({ "name": j.issue_type.trim() }));
            fields.insert("summary".into(), json!(j.summary));
            if let Some(d) = j.description.as_deref().filter(|d| !d.trim().is_empty()) {
                fields.insert("description".into(), json!(d));
            }
            if let Some(p) = j.priority.as_deref().filter(|p| !p.trim().is_empty()) {
                fields.insert("priority".into(), json!({ "name": p.trim() }));
            }
            let body = json!({ "fields": fields }).to_string();
            let auth = basic_auth(&self.config.email, token);
            let h = headers(&[
                ("Authorization", &auth),
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ]);
            let url = format!("{}/rest/api/2/issue", self.base());
            let resp = self
                .api
                .send(call, Method::Post, &url, &h, Some(&body))
                .await?;
            if !(200..300).contains(&resp.status) {
                return Err(self.api.failure(&resp, &jira_message(&resp.body)));
            }
            let key = resp.body["key"].as_str().unwrap_or_default().to_string();
            if key.is_empty() {
                return Err(StepError::permanent(format!(
                    "Jira answered HTTP {} without an issue key: {}",
                    resp.status,
                    excerpt(&resp.body)
                )));
            }
            let browse = format!("{}/browse/{key}", self.base());
            let noted =
                note_on_incident(call, &format!("Jira issue {key} created: {browse}")).await;
            Ok(json!({
                "id": resp.body["id"],
                "key": key,
                "self": resp.body["self"],
                "url": browse,
                "noted": noted,
                "link": link("jira_issue", &key, &browse),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_errors_read_as_one_line() {
        let body = json!({ "errorMessages": ["Project is archived"],
                           "errors": { "summary": "You must specify a summary of the issue." } });
        assert_eq!(
            jira_message(&body),
            "Project is archived; summary: You must specify a summary of the issue."
        );
        assert_eq!(jira_message(&json!("Bad gateway")), "Bad gateway");
    }
}
