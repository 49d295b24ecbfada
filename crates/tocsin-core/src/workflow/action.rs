//! What a step does. Each action is generic over its text: `Action<Template>` as
//! written in a definition, `Action<String>` once rendered for one run. One
//! traversal ([`Action::map`]) serves rendering, secret listing and the dry-run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::net::TargetUrl;
use super::text::{is_name, Expr, Span, Template};
use super::yaml::{kind_of, text_of, Fields};
use crate::incident::Status;
use crate::status_page::{ComponentStatus, PostKind, PostStatus};
use crate::Invalid;

/// Longest HTTP step timeout.
pub const MAX_HTTP_TIMEOUT: Span = Span::mins(5);
/// Longest command timeout.
pub const MAX_COMMAND_TIMEOUT: Span = Span::mins(30);
/// Longest wait or approval timeout.
pub const MAX_WAIT: Span = Span::hours(24 * 7);
/// Most entries in one step's mapping or list (headers, fields, args, labels).
pub const MAX_ENTRIES: usize = 50;

/// Every action kind, as written in YAML.
pub const KINDS: [&str; 15] = [
    "http",
    "page",
    "notify",
    "update_incident",
    "add_note",
    "attach_runbook",
    "status_page_update",
    "jira_create_issue",
    "github_create_issue",
    "slack_create_channel",
    "zoom_meeting",
    "jitsi_link",
    "command",
    "wait",
    "approval",
];

/// One action; `T` is the text type (a template, or rendered text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action<T> {
    /// An HTTP request to an allowed host.
    Http(Http<T>),
    /// Page a user, a schedule's on-call or an escalation policy.
    Page(Page<T>),
    /// Post a message to a configured notification channel.
    Notify(Notify<T>),
    /// Set the incident's status, severity, custom fields or roles.
    UpdateIncident(UpdateIncident<T>),
    /// Add a note to the incident's timeline.
    AddNote(AddNote<T>),
    /// Attach a runbook to the incident.
    AttachRunbook(AttachRunbook<T>),
    /// Draft a status-page update (a person publishes it).
    StatusPageUpdate(StatusPageUpdate<T>),
    /// Create a Jira issue and link it to the incident.
    JiraCreateIssue(JiraCreateIssue<T>),
    /// Create a GitHub issue and link it to the incident.
    GithubCreateIssue(GithubCreateIssue<T>),
    /// Create a Slack channel for the incident.
    SlackCreateChannel(SlackCreateChannel<T>),
    /// Create a Zoom meeting and post its link.
    ZoomMeeting(ZoomMeeting<T>),
    /// Make a Jitsi room link (no API involved) and post it.
    JitsiLink(JitsiLink<T>),
    /// Run an allowlisted command on the Tocsin host.
    Command(Command<T>),
    /// Wait for a length of time or until a time.
    Wait(Wait<T>),
    /// Wait for a person with a role to approve.
    Approval(Approval<T>),
}

/// HTTP method of an HTTP step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// HEAD.
    Head,
}

/// An HTTP request step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Http<T> {
    /// Method (GET, or POST when there is a body).
    pub method: Method,
    /// URL: http or https, no user name or password in it.
    pub url: T,
    /// Request headers.
    pub headers: BTreeMap<String, T>,
    /// Request body.
    pub body: Option<T>,
    /// Statuses that count as success; empty means any 2xx.
    pub expect: Vec<u16>,
    /// Variables to set from the response: name → expression over `response`
    /// (`response.status`, `response.headers`, `response.body`).
    pub capture: BTreeMap<String, Expr>,
    /// How long to wait for the response.
    pub timeout: Span,
}

/// Who a page step pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageTarget<T> {
    /// A user (email or id).
    User(T),
    /// Whoever is on call in a schedule.
    Schedule(T),
    /// An escalation policy, from its first level.
    EscalationPolicy(T),
}

/// A page step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// Who to page.
    pub target: PageTarget<T>,
    /// What the page says (the incident title when absent).
    pub message: Option<T>,
}

/// A notify step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notify<T> {
    /// Configured channel name.
    pub channel: T,
    /// Message text.
    pub message: T,
}

/// An update-incident step; at least one part is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateIncident<T> {
    /// New status.
    pub status: Option<T>,
    /// New severity.
    pub severity: Option<T>,
    /// Custom fields to set.
    pub fields: BTreeMap<String, T>,
    /// Roles to assign: role name → user (email or id).
    pub roles: BTreeMap<String, T>,
}

/// An add-note step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddNote<T> {
    /// Markdown text.
    pub text: T,
}

/// An attach-runbook step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachRunbook<T> {
    /// Runbook name.
    pub runbook: T,
}

/// A status-page update draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusPageUpdate<T> {
    /// Status page slug.
    pub page: T,
    /// Post status (investigating, identified, monitoring, resolved).
    pub status: T,
    /// Update text.
    pub message: T,
    /// Component name → component status.
    pub components: BTreeMap<String, T>,
}

/// A Jira issue to create (Jira REST API v2 `POST /rest/api/2/issue`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JiraCreateIssue<T> {
    /// Project key.
    pub project: T,
    /// Issue type name.
    pub issue_type: T,
    /// Summary line.
    pub summary: T,
    /// Description.
    pub description: Option<T>,
    /// More fields: Jira field id → value.
    pub fields: BTreeMap<String, T>,
}

/// A GitHub issue to create (`POST /repos/{owner}/{repo}/issues`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GithubCreateIssue<T> {
    /// `owner/name`.
    pub repo: T,
    /// Title.
    pub title: T,
    /// Body (markdown).
    pub body: Option<T>,
    /// Labels.
    pub labels: Vec<T>,
}

/// A Slack channel to create for the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlackCreateChannel<T> {
    /// Channel name (made Slack-safe by the engine).
    pub name: T,
    /// Whether the incident's responders are invited.
    pub invite_responders: bool,
    /// Whether the incident summary is posted.
    pub post_summary: bool,
    /// Whether the channel is private.
    pub private: bool,
}

/// A Zoom meeting to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoomMeeting<T> {
    /// Meeting topic (the incident title when absent).
    pub topic: Option<T>,
    /// Whether the join link is posted on the incident.
    pub post_link: bool,
}

/// A Jitsi room link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JitsiLink<T> {
    /// Room name (made from the incident number when absent).
    pub room: Option<T>,
    /// Whether the link is posted on the incident.
    pub post_link: bool,
}

/// A command from the configured allowlist; never a shell string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command<T> {
    /// Allowlist entry name (not a path).
    pub name: String,
    /// Arguments, each passed as one argument.
    pub args: Vec<T>,
    /// How long it may run before it is killed.
    pub timeout: Span,
}

/// What a wait step waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait<T> {
    /// A length of time from when the step is reached.
    Duration(Span),
    /// A time (RFC 3339), rendered when the step is reached.
    Until(T),
}

/// What happens when nobody answers an approval in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The step fails (the run fails unless the step continues on error).
    Fail,
    /// The run goes on as if approved.
    Continue,
}

/// An approval step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval<T> {
    /// Role whose holders may approve (an incident role or an account role).
    pub role: String,
    /// What the approver is asked.
    pub prompt: T,
    /// How long to wait.
    pub timeout: Span,
    /// What a timeout does.
    pub on_timeout: OnTimeout,
}

/// A function applied to every text of an action: (field path under the
/// action, text) → new text.
pub type TextFn<'a, T, U, E> = dyn FnMut(&str, &T) -> Result<U, E> + 'a;

fn map_opt<T, U, E>(f: &mut TextFn<T, U, E>, at: &str, v: &Option<T>) -> Result<Option<U>, E> {
    v.as_ref().map(|t| f(at, t)).transpose()
}

fn map_map<T, U, E>(
    f: &mut TextFn<T, U, E>,
    at: &str,
    m: &BTreeMap<String, T>,
) -> Result<BTreeMap<String, U>, E> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), f(&format!("{at}.{k}"), v)?)))
        .collect()
}

fn map_vec<T, U, E>(f: &mut TextFn<T, U, E>, at: &str, v: &[T]) -> Result<Vec<U>, E> {
    v.iter()
        .enumerate()
        .map(|(i, t)| f(&format!("{at}[{i}]"), t))
        .collect()
}

impl<T> Action<T> {
    /// The kind as written in YAML (`http`, `page`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Http(_) => "http",
            Action::Page(_) => "page",
            Action::Notify(_) => "notify",
            Action::UpdateIncident(_) => "update_incident",
            Action::AddNote(_) => "add_note",
            Action::AttachRunbook(_) => "attach_runbook",
            Action::StatusPageUpdate(_) => "status_page_update",
            Action::JiraCreateIssue(_) => "jira_create_issue",
            Action::GithubCreateIssue(_) => "github_create_issue",
            Action::SlackCreateChannel(_) => "slack_create_channel",
            Action::ZoomMeeting(_) => "zoom_meeting",
            Action::JitsiLink(_) => "jitsi_link",
            Action::Command(_) => "command",
            Action::Wait(_) => "wait",
            Action::Approval(_) => "approval",
        }
    }

    /// Whether the run itself carries this out (wait, approval) rather than the
    /// engine calling out; such steps are never retried.
    pub fn is_control(&self) -> bool {
        matches!(self, Action::Wait(_) | Action::Approval(_))
    }

    /// Applies `f` to every text, in a fixed order, with paths like `http.url`.
    pub fn map<U, E>(&self, f: &mut TextFn<T, U, E>) -> Result<Action<U>, E> {
        let k = self.kind();
        let p = |field: &str| format!("{k}.{field}");
        Ok(match self {
            Action::Http(h) => Action::Http(Http {
                method: h.method,
                url: f(&p("url"), &h.url)?,
                headers: map_map(f, &p("headers"), &h.headers)?,
                body: map_opt(f, &p("body"), &h.body)?,
                expect: h.expect.clone(),
                capture: h.capture.clone(),
                timeout: h.timeout,
            }),
            Action::Page(x) => Action::Page(Page {
                target: match &x.target {
                    PageTarget::User(t) => PageTarget::User(f(&p("user"), t)?),
                    PageTarget::Schedule(t) => PageTarget::Schedule(f(&p("schedule"), t)?),
                    PageTarget::EscalationPolicy(t) => {
                        PageTarget::EscalationPolicy(f(&p("escalation_policy"), t)?)
                    }
                },
                message: map_opt(f, &p("message"), &x.message)?,
            }),
            Action::Notify(x) => Action::Notify(Notify {
                channel: f(&p("channel"), &x.channel)?,
                message: f(&p("message"), &x.message)?,
            }),
            Action::UpdateIncident(x) => Action::UpdateIncident(UpdateIncident {
                status: map_opt(f, &p("status"), &x.status)?,
                severity: map_opt(f, &p("severity"), &x.severity)?,
                fields: map_map(f, &p("fields"), &x.fields)?,
                roles: map_map(f, &p("roles"), &x.roles)?,
            }),
            Action::AddNote(x) => Action::AddNote(AddNote {
                text: f(&p("text"), &x.text)?,
            }),
            Action::AttachRunbook(x) => Action::AttachRunbook(AttachRunbook {
                runbook: f(&p("runbook"), &x.runbook)?,
            }),
            Action::StatusPageUpdate(x) => Action::StatusPageUpdate(StatusPageUpdate {
                page: f(&p("page"), &x.page)?,
                status: f(&p("status"), &x.status)?,
                message: f(&p("message"), &x.message)?,
                components: map_map(f, &p("components"), &x.components)?,
            }),
            Action::JiraCreateIssue(x) => Action::JiraCreateIssue(JiraCreateIssue {
                project: f(&p("project"), &x.project)?,
                issue_type: f(&p("issue_type"), &x.issue_type)?,
                summary: f(&p("summary"), &x.summary)?,
                description: map_opt(f, &p("description"), &x.description)?,
                fields: map_map(f, &p("fields"), &x.fields)?,
            }),
            Action::GithubCreateIssue(x) => Action::GithubCreateIssue(GithubCreateIssue {
                repo: f(&p("repo"), &x.repo)?,
                title: f(&p("title"), &x.title)?,
                body: map_opt(f, &p("body"), &x.body)?,
                labels: map_vec(f, &p("labels"), &x.labels)?,
            }),
            Action::SlackCreateChannel(x) => Action::SlackCreateChannel(SlackCreateChannel {
                name: f(&p("name"), &x.name)?,
                invite_responders: x.invite_responders,
                post_summary: x.post_summary,
                private: x.private,
            }),
            Action::ZoomMeeting(x) => Action::ZoomMeeting(ZoomMeeting {
                topic: map_opt(f, &p("topic"), &x.topic)?,
                post_link: x.post_link,
            }),
            Action::JitsiLink(x) => Action::JitsiLink(JitsiLink {
                room: map_opt(f, &p("room"), &x.room)?,
                post_link: x.post_link,
            }),
            Action::Command(x) => Action::Command(Command {
                name: x.name.clone(),
                args: map_vec(f, &p("args"), &x.args)?,
                timeout: x.timeout,
            }),
            Action::Wait(Wait::Duration(d)) => Action::Wait(Wait::Duration(*d)),
            Action::Wait(Wait::Until(t)) => Action::Wait(Wait::Until(f(&p("until"), t)?)),
            Action::Approval(x) => Action::Approval(Approval {
                role: x.role.clone(),
                prompt: f(&p("prompt"), &x.prompt)?,
                timeout: x.timeout,
                on_timeout: x.on_timeout,
            }),
        })
    }
}

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
        ("github_create_issue", "repo") => {
            let ok = v.split_once('/').is_some_and(|(o, n)| {
                let part = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                };
                part(o) && part(n)
            });
            if ok {
                Ok(())
            } else {
                Err(Invalid::new(at, format!("`{v}` is not owner/name")))
            }
        }
        ("wait", "until") => chrono::DateTime::parse_from_rfc3339(v)
            .map(|_| ())
            .map_err(|_| Invalid::new(at, format!("`{v}` is not an RFC 3339 time"))),
        _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(kind: &str, v: Value) -> Result<Action<Template>, Invalid> {
        parse(kind, &format!("steps[2].{kind}"), &v)
    }

    #[test]
    fn http_defaults_and_map() {
        let a = p("http", json!({"url": "https://x.example/{{ incident.id }}", "body": "{}", "headers": {"X-Token": "{{ secrets.T }}"}})).unwrap();
        let Action::Http(h) = &a else { panic!() };
        assert_eq!(h.method, Method::Post);
        assert_eq!(h.timeout, Span::secs(10));
        let mut paths = Vec::new();
        a.map(&mut |path: &str, _t: &Template| -> Result<(), ()> {
            paths.push(path.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(paths, ["http.url", "http.headers.X-Token", "http.body"]);
    }

    #[test]
    fn every_kind_parses() {
        for (kind, body) in [
            ("page", json!({"schedule": "db-primary", "message": "hi"})),
            ("notify", json!({"channel": "ops", "message": "m"})),
            (
                "update_incident",
                json!({"severity": "SEV1", "roles": {"commander": "a@x"}}),
            ),
            ("add_note", json!({"text": "t"})),
            ("attach_runbook", json!({"runbook": "db-failover"})),
            (
                "status_page_update",
                json!({"page": "public", "status": "investigating", "message": "m", "components": {"API": "partial_outage"}}),
            ),
            (
                "jira_create_issue",
                json!({"project": "OPS", "issue_type": "Bug", "summary": "s", "fields": {"priority": "High"}}),
            ),
            (
                "github_create_issue",
                json!({"repo": "acme/api", "title": "t", "labels": ["incident", "{{ incident.severity }}"]}),
            ),
            (
                "slack_create_channel",
                json!({"name": "inc-{{ incident.id }}"}),
            ),
            ("zoom_meeting", json!(null)),
            ("jitsi_link", json!({"room": "r"})),
            (
                "command",
                json!({"name": "restart-worker", "args": ["--id", "{{ alert.labels.instance }}"]}),
            ),
            ("wait", json!("10m")),
            ("wait", json!({"until": "{{ incident.detected_at }}"})),
            (
                "approval",
                json!({"role": "commander", "prompt": "Restart?", "on_timeout": "continue"}),
            ),
        ] {
            let a = p(kind, body).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(a.kind(), kind);
        }
    }

    #[test]
    fn bad_steps_name_the_field() {
        for (kind, body, field) in [
            ("http", json!({}), "steps[2].http.url"),
            ("http", json!({"url": "ftp://x"}), "steps[2].http.url"),
            (
                "http",
                json!({"url": "https://u:p@x.example"}),
                "steps[2].http.url",
            ),
            (
                "http",
                json!({"url": "https://x/{{ a"}),
                "steps[2].http.url",
            ),
            (
                "http",
                json!({"url": "https://x", "method": "FETCH"}),
                "steps[2].http.method",
            ),
            (
                "http",
                json!({"url": "https://x", "expect": [200, 42]}),
                "steps[2].http.expect[1]",
            ),
            (
                "http",
                json!({"url": "https://x", "headers": {"Bad Name": "v"}}),
                "steps[2].http.headers.Bad Name",
            ),
            (
                "http",
                json!({"url": "https://x", "capture": {"id": "response.body."}}),
                "steps[2].http.capture.id",
            ),
            (
                "http",
                json!({"url": "https://x", "capture": {"a-b": "1"}}),
                "steps[2].http.capture.a-b",
            ),
            (
                "http",
                json!({"url": "https://x", "timeout": "1h"}),
                "steps[2].http.timeout",
            ),
            (
                "http",
                json!({"url": "https://x", "bdy": "x"}),
                "steps[2].http.bdy",
            ),
            (
                "page",
                json!({"user": "a", "schedule": "b"}),
                "steps[2].page",
            ),
            (
                "notify",
                json!({"channel": "ops"}),
                "steps[2].notify.message",
            ),
            ("update_incident", json!({}), "steps[2].update_incident"),
            (
                "update_incident",
                json!({"status": "done"}),
                "steps[2].update_incident.status",
            ),
            (
                "status_page_update",
                json!({"page": "p", "status": "fixed", "message": "m"}),
                "steps[2].status_page_update.status",
            ),
            (
                "status_page_update",
                json!({"page": "p", "status": "resolved", "message": "m", "components": {"API": "meh"}}),
                "steps[2].status_page_update.components.API",
            ),
            (
                "github_create_issue",
                json!({"repo": "acme", "title": "t"}),
                "steps[2].github_create_issue.repo",
            ),
            (
                "github_create_issue",
                json!({"repo": "a/b", "title": "t", "labels": [["x"]]}),
                "steps[2].github_create_issue.labels[0]",
            ),
            (
                "slack_create_channel",
                json!({"name": "x", "private": "no"}),
                "steps[2].slack_create_channel.private",
            ),
            (
                "command",
                json!({"name": "/bin/sh"}),
                "steps[2].command.name",
            ),
            (
                "command",
                json!({"name": "x", "args": "rm -rf /; {{ x"}),
                "steps[2].command.args",
            ),
            ("wait", json!({}), "steps[2].wait"),
            ("wait", json!("forever"), "steps[2].wait"),
            ("wait", json!({"until": "tomorrow"}), "steps[2].wait.until"),
            (
                "approval",
                json!({"role": "commander"}),
                "steps[2].approval.prompt",
            ),
            (
                "approval",
                json!({"role": "commander", "prompt": "p", "on_timeout": "retry"}),
                "steps[2].approval.on_timeout",
            ),
            ("notify", json!("ops"), "steps[2].notify"),
        ] {
            let e = p(kind, body.clone()).unwrap_err();
            assert_eq!(e.field, field, "{kind} {body}: {}", e.message);
        }
    }

    #[test]
    fn a_url_from_a_secret_is_checked_when_rendered_for_the_call() {
        let a = p("http", json!({"url": "https://{{ secrets.HOST }}/hook"})).unwrap();
        let with = |host: &'static str| {
            a.map(&mut |_: &str, t: &Template| -> Result<String, ()> {
                Ok(t.as_str().replace("{{ secrets.HOST }}", host))
            })
            .unwrap()
        };
        assert!(with("[secret HOST]").check("steps[0]").is_ok());
        assert!(with("hooks.example.com").check("steps[0]").is_ok());
        assert!(with("u:p@evil.example").check("steps[0]").is_err());
    }

    #[test]
    fn rendered_values_are_checked() {
        let a = p("update_incident", json!({"status": "{{ inputs.s }}"})).unwrap();
        let r = a
            .map(&mut |_: &str, _: &Template| -> Result<String, ()> { Ok("nope".into()) })
            .unwrap();
        assert_eq!(
            r.check("steps[0]").unwrap_err().field,
            "steps[0].update_incident.status"
        );
    }
}
