//! Reading an action from YAML, and checking values whose meaning is fixed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::incident::Status;
use crate::status_page::{ComponentStatus, PostKind, PostStatus};
use crate::workflow::net::TargetUrl;
use crate::workflow::text::is_name;
use crate::workflow::yaml::{kind_of, text_of, Fields};
use crate::Invalid;

/// Text whose value may be known before rendering: rendered text always is, a
/// template only when it has no template syntax.
pub trait KnownText {
    /// The text, if known.
    fn known(&self) -> Option<&str>;
}

impl KnownText for String {
    fn known(&self) -> Option<&str> {
        Some(self.trim())
    }
}

impl KnownText for Template {
    fn known(&self) -> Option<&str> {
        let s = self.as_str();
        (!s.contains("{{") && !s.contains("{%") && !s.contains("{#")).then(|| s.trim())
    }
}

impl<T: KnownText> Action<T> {
    /// Checks the values whose meaning is fixed (URL shape, statuses, repo
    /// names, non-empty names), where known: at parse time for plain text, after
    /// rendering for the rest. `path` is the step's path.
    pub fn check(&self, path: &str) -> Result<(), Invalid> {
        let mut result = Ok(());
        let _ = self.map(&mut |field: &str, t: &T| -> Result<(), ()> {
            if result.is_ok() {
                if let Some(v) = t.known() {
                    result = check_value(self, &format!("{path}.{field}"), field, v);
                }
            }
            Ok(())
        });
        result
    }
}

fn check_value<T>(a: &Action<T>, at: &str, field: &str, v: &str) -> Result<(), Invalid> {
    let kind = a.kind();
    let rel = field
        .strip_prefix(kind)
        .and_then(|f| f.strip_prefix('.'))
        .unwrap_or(field);
    let required_nonempty = [
        "url",
        "channel",
        "user",
        "schedule",
        "escalation_policy",
        "text",
        "runbook",
        "page",
        "project",
        "issue_type",
        "summary",
        "repo",
        "title",
        "name",
    ];
    if v.is_empty() && required_nonempty.contains(&rel) {
        return Err(Invalid::new(at, "must not be empty"));
    }
    match (kind, rel) {
        // A URL built from a secret shows only its marker until it is rendered
        // for the call, where it is checked with the real value.
        ("http", "url") if v.contains("[secret ") => Ok(()),
        ("http", "url") => TargetUrl::parse(at, v).map(|_| ()),
        ("update_incident", "status") => Status::parse(v)
            .map(|_| ())
            .ok_or_else(|| Invalid::new(at, format!("`{v}` is not an incident status"))),
        ("status_page_update", "status") => {
            PostStatus::parse(at, PostKind::Incident, v).map(|_| ())
        }
        ("status_page_update", r) if r.starts_with("components.") => {
            ComponentStatus::parse(at, v).map(|_| ())
        }
        ("github_create_issue", "repo") => check_repo(at, v).map(|_| ()),
        ("wait", "until") => chrono::DateTime::parse_from_rfc3339(v)
            .map(|_| ())
            .map_err(|_| Invalid::new(at, format!("`{v}` is not an RFC 3339 time"))),
        _ => Ok(()),
    }
}

/// Checks a GitHub repository named `owner/name` (letters, digits, `-`,
/// `_` and `.` on each side).
pub fn check_repo(field: &str, repo: &str) -> Result<String, Invalid> {
    let part = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((o, n)) if part(o) && part(n) => Ok(repo.to_string()),
        _ => Err(Invalid::new(field, format!("`{repo}` is not owner/name"))),
    }
}

/// Parses the body of an action of `kind` at `path` (`steps[2].http`).
pub fn parse(kind: &str, path: &str, body: &Value) -> Result<Action<Template>, Invalid> {
    // `wait: 5m` reads better than `wait: {duration: 5m}`.
    if let ("wait", Value::String(_)) = (kind, body) {
        return Ok(Action::Wait(Wait::Duration(Span::parse_value(
            path, body, MAX_WAIT,
        )?)));
    }
    let what = match kind {
        "http" => "an http step",
        "page" => "a page step",
        "notify" => "a notify step",
        "update_incident" => "an update_incident step",
        "add_note" => "an add_note step",
        "attach_runbook" => "an attach_runbook step",
        "status_page_update" => "a status_page_update step",
        "jira_create_issue" => "a jira_create_issue step",
        "github_create_issue" => "a github_create_issue step",
        "slack_create_channel" => "a slack_create_channel step",
        "zoom_meeting" => "a zoom_meeting step",
        "jitsi_link" => "a jitsi_link step",
        "command" => "a command step",
        "wait" => "a wait step",
        "approval" => "an approval step",
        _ => "a step",
    };
    let empty = Value::Object(Default::default());
    let mut f = Fields::new(path, if body.is_null() { &empty } else { body }, what)?;
    let action = match kind {
        "http" => Action::Http(parse_http(&mut f)?),
        "page" => {
            let user = f.template("user")?;
            let schedule = f.template("schedule")?;
            let policy = f.template("escalation_policy")?;
            let target = match (user, schedule, policy) {
                (Some(u), None, None) => PageTarget::User(u),
                (None, Some(s), None) => PageTarget::Schedule(s),
                (None, None, Some(p)) => PageTarget::EscalationPolicy(p),
                _ => {
                    return Err(Invalid::new(
                        path,
                        "must name exactly one of user, schedule or escalation_policy",
                    ))
                }
            };
            Action::Page(Page {
                target,
                message: f.template("message")?,
            })
        }
        "notify" => Action::Notify(Notify {
            channel: f.req_template("channel")?,
            message: f.req_template("message")?,
        }),
        "update_incident" => {
            let u = UpdateIncident {
                status: f.template("status")?,
                severity: f.template("severity")?,
                fields: limited(&f.path("fields"), f.template_map("fields")?)?,
                roles: limited(&f.path("roles"), f.template_map("roles")?)?,
            };
            if u.status.is_none()
                && u.severity.is_none()
                && u.fields.is_empty()
                && u.roles.is_empty()
            {
                return Err(Invalid::new(
                    path,
                    "must set at least one of status, severity, fields or roles",
                ));
            }
            Action::UpdateIncident(u)
        }
        "add_note" => Action::AddNote(AddNote {
            text: f.req_template("text")?,
        }),
        "attach_runbook" => Action::AttachRunbook(AttachRunbook {
            runbook: f.req_template("runbook")?,
        }),
        "status_page_update" => Action::StatusPageUpdate(StatusPageUpdate {
            page: f.req_template("page")?,
            status: f.req_template("status")?,
            message: f.req_template("message")?,
            components: limited(&f.path("components"), f.template_map("components")?)?,
        }),
        "jira_create_issue" => Action::JiraCreateIssue(JiraCreateIssue {
            project: f.req_template("project")?,
            issue_type: f.req_template("issue_type")?,
            summary: f.req_template("summary")?,
            description: f.template("description")?,
            priority: f.template("priority")?,
            fields: limited(&f.path("fields"), f.template_map("fields")?)?,
        }),
        "github_create_issue" => Action::GithubCreateIssue(GithubCreateIssue {
            repo: f.req_template("repo")?,
            title: f.req_template("title")?,
            body: f.template("body")?,
            labels: templates(&mut f, "labels")?,
        }),
        "slack_create_channel" => Action::SlackCreateChannel(SlackCreateChannel {
            name: f.req_template("name")?,
            invite_responders: f.flag("invite_responders", true)?,
            post_summary: f.flag("post_summary", true)?,
            private: f.flag("private", false)?,
        }),
        "zoom_meeting" => Action::ZoomMeeting(ZoomMeeting {
            topic: f.template("topic")?,
            post_link: f.flag("post_link", true)?,
        }),
        "jitsi_link" => Action::JitsiLink(JitsiLink {
            room: f.template("room")?,
            post_link: f.flag("post_link", true)?,
        }),
        "command" => {
            let name = f.req_text("name")?;
            // A name from the allowlist, so never a path or a shell line.
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(Invalid::new(
                    f.path("name"),
                    "must be the name of an allowlisted command (letters, digits, - and _), not a path or a shell line",
                ));
            }
            Action::Command(Command {
                name,
                args: templates(&mut f, "args")?,
                timeout: f
                    .span("timeout", MAX_COMMAND_TIMEOUT)?
                    .unwrap_or(Span::secs(30)),
            })
        }
        "wait" => {
            let duration = f.span("duration", MAX_WAIT)?;
            let until = f.template("until")?;
            Action::Wait(match (duration, until) {
                (Some(d), None) => Wait::Duration(d),
                (None, Some(u)) => Wait::Until(u),
                _ => {
                    return Err(Invalid::new(
                        path,
                        "must have exactly one of duration or until",
                    ))
                }
            })
        }
        "approval" => {
            let role = f.req_text("role")?;
            if !is_name(&role) {
                return Err(Invalid::new(
                    f.path("role"),
                    format!("`{role}` is not a role name"),
                ));
            }
            let prompt = f.req_template("prompt")?;
            let timeout = f.span("timeout", MAX_WAIT)?.unwrap_or(Span::hours(1));
            let on_timeout = match f.text("on_timeout")?.as_deref() {
                None | Some("fail") => OnTimeout::Fail,
                Some("continue") => OnTimeout::Continue,
                Some(other) => {
                    return Err(Invalid::new(
                        f.path("on_timeout"),
                        format!("`{other}` is not fail or continue"),
                    ))
                }
            };
            Action::Approval(Approval {
                role,
                prompt,
                timeout,
                on_timeout,
            })
        }
        other => return Err(Invalid::new(path, format!("`{other}` is not a step kind"))),
    };
    f.finish()?;
    action.check(path.rsplit_once('.').map_or(path, |(p, _)| p))?;
    Ok(action)
}

fn limited<V>(path: &str, m: BTreeMap<String, V>) -> Result<BTreeMap<String, V>, Invalid> {
    if m.len() > MAX_ENTRIES {
        return Err(Invalid::new(path, format!("at most {MAX_ENTRIES} entries")));
    }
    Ok(m)
}

fn templates(f: &mut Fields<'_>, key: &'static str) -> Result<Vec<Template>, Invalid> {
    let items = f.list(key);
    if items.len() > MAX_ENTRIES {
        return Err(Invalid::new(
            f.path(key),
            format!("at most {MAX_ENTRIES} items"),
        ));
    }
    items
        .into_iter()
        .map(|(p, v)| Template::parse(&p, &text_of(&p, v)?))
        .collect()
}

fn parse_http(f: &mut Fields<'_>) -> Result<Http<Template>, Invalid> {
    let url = f.req_template("url")?;
    let body = f.template("body")?;
    let method = match f.text("method")? {
        None if body.is_some() => Method::Post,
        None => Method::Get,
        Some(m) => match m.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            _ => {
                return Err(Invalid::new(
                    f.path("method"),
                    format!("`{m}` is not GET, POST, PUT, PATCH, DELETE or HEAD"),
                ))
            }
        },
    };
    let headers = limited(&f.path("headers"), f.template_map("headers")?)?;
    for name in headers.keys() {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(Invalid::new(
                format!("{}.{name}", f.path("headers")),
                "is not a header name",
            ));
        }
    }
    let expect = f
        .list("expect")
        .into_iter()
        .map(|(p, v)| match v.as_u64() {
            Some(n @ 100..=599) => Ok(n as u16),
            _ => Err(Invalid::new(
                p,
                format!("must be an HTTP status (100-599), not {}", kind_of(v)),
            )),
        })
        .collect::<Result<_, _>>()?;
    let capture = f
        .entries("capture")?
        .into_iter()
        .map(|(k, p, v)| {
            if !is_name(&k) {
                return Err(Invalid::new(
                    p,
                    "variable names are letters, digits and `_`",
                ));
            }
            Ok((k, Expr::parse(&p, &text_of(&p, v)?)?))
        })
        .collect::<Result<_, _>>()?;
    let timeout = f
        .span("timeout", MAX_HTTP_TIMEOUT)?
        .unwrap_or(Span::secs(10));
    Ok(Http {
        method,
        url,
        headers,
        body,
        expect,
        capture,
        timeout,
    })
}
