//! `github_create_issue`: `POST /repos/{owner}/{repo}/issues` with a token
//! (`Authorization: Bearer`), the GitHub media type and API version 2022-11-28.

use serde_json::{json, Value};
use tocsin_core::workflow::action::Method;
use tocsin_core::workflow::{Action, NetPolicy};
use tocsin_notify::BoxFuture;

use super::{excerpt, headers, link, note_on_incident, Api};
use crate::workflow::executor::{StepCall, StepError, StepExecutor};

/// The public API.
pub const GITHUB_API: &str = "https://api.github.com";

/// `[workflows.github]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubConfig {
    /// The API: `https://api.github.com`, or `https://HOST/api/v3` for
    /// GitHub Enterprise Server.
    pub base_url: String,
    /// Name of the stored secret holding the token (fine-grained with
    /// Issues: write, or classic with `repo`).
    pub token_secret: String,
}

/// Creates GitHub issues.
pub struct GithubIssue {
    config: GithubConfig,
    api: Api,
}

impl GithubIssue {
    /// Under `net`, with the API's base URL allowed.
    pub fn new(config: GithubConfig, net: &NetPolicy, max_response: usize) -> GithubIssue {
        let api = Api::new("GitHub", net, max_response, &[&config.base_url]);
        GithubIssue { config, api }
    }
}

// `owner/name`, each part letters, digits, `-`, `_` and `.` but not `.`/`..`,
// so the path cannot leave `/repos/`.
fn repo_path(repo: &str) -> Option<(&str, &str)> {
    let (o, n) = repo.trim().split_once('/')?;
    let part = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (part(o) && part(n)).then_some((o, n))
}

// GitHub's error body: `{"message": "...", "errors": [{"field", "code", "message"}]}`.
fn github_message(body: &Value) -> String {
    let Some(message) = body["message"].as_str() else {
        return excerpt(body);
    };
    let details: Vec<String> = body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| match e["message"].as_str() {
                    Some(m) => m.to_string(),
                    None => format!(
                        "{} {}",
                        e["field"].as_str().unwrap_or_default(),
                        e["code"].as_str().unwrap_or_default()
                    ),
                })
                .collect()
        })
        .unwrap_or_default();
    if details.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", details.join("; "))
    }
}

impl StepExecutor for GithubIssue {
    fn kinds(&self) -> &'static [&'static str] {
        &["github_create_issue"]
    }

    fn uses_secret_values(&self) -> bool {
        true
    }

    fn config_secrets(&self) -> Vec<String> {
        vec![self.config.token_secret.clone()]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::GithubCreateIssue(g) = call.action else {
                return Err(StepError::permanent("not a github_create_issue step"));
            };
            let (owner, name) = repo_path(&g.repo).ok_or_else(|| {
                StepError::permanent(format!(
                    "github_create_issue.repo: `{}` is not owner/name",
                    g.repo
                ))
            })?;
            let token = call.secret(&self.config.token_secret)?;
            let mut body = json!({ "title": g.title });
            if let Some(b) = g.body.as_deref().filter(|b| !b.trim().is_empty()) {
                body["body"] = json!(b);
            }
            let labels: Vec<&str> = g
                .labels
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect();
            if !labels.is_empty() {
                body["labels"] = json!(labels);
            }
            let auth = format!("Bearer {token}");
            let h = headers(&[
                ("Authorization", &auth),
                ("Accept", "application/vnd.github+json"),
                ("X-GitHub-Api-Version", "2022-11-28"),
                ("Content-Type", "application/json"),
            ]);
            let url = format!(
                "{}/repos/{owner}/{name}/issues",
                self.config.base_url.trim_end_matches('/')
            );
            let resp = self
                .api
                .send(call, Method::Post, &url, &h, Some(&body.to_string()))
                .await?;
            if !(200..300).contains(&resp.status) {
                let message = github_message(&resp.body);
                // A 403 with no requests left is GitHub's rate limit: it passes.
                let limited = resp.status == 403
                    && resp
                        .headers
                        .get("x-ratelimit-remaining")
                        .and_then(Value::as_str)
                        == Some("0");
                if limited {
                    return Err(StepError::retryable(format!(
                        "GitHub answered HTTP 403 (rate limited): {message}"
                    )));
                }
                return Err(self.api.failure(&resp, &message));
            }
            let number = resp.body["number"].as_i64().ok_or_else(|| {
                StepError::permanent(format!(
                    "GitHub answered HTTP {} without an issue number: {}",
                    resp.status,
                    excerpt(&resp.body)
                ))
            })?;
            let html_url = resp.body["html_url"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let label = format!("{owner}/{name}#{number}");
            let noted =
                note_on_incident(call, &format!("GitHub issue {label} created: {html_url}")).await;
            Ok(json!({
                "id": resp.body["id"],
                "number": number,
                "url": html_url,
                "html_url": html_url,
                "noted": noted,
                "link": link("github_issue", &label, &html_url),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_stay_under_repos() {
        assert_eq!(repo_path("acme/api.web"), Some(("acme", "api.web")));
        for bad in ["acme", "../x", "acme/..", "a/b/c", "a/b?c", "/x"] {
            assert_eq!(repo_path(bad), None, "{bad}");
        }
        let body = json!({ "message": "Validation Failed",
                           "errors": [{ "resource": "Issue", "field": "title", "code": "missing_field" }] });
        assert_eq!(
            github_message(&body),
            "Validation Failed (title missing_field)"
        );
    }
}
