//! What a step does. Each action is generic over its text: `Action<Template>` as
//! written in a definition, `Action<String>` once rendered for one run. One
//! traversal ([`Action::map`]) serves rendering, secret listing and the dry-run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::text::{Expr, Span, Template};

mod parse;
#[cfg(test)]
mod tests;

pub use parse::{check_repo, parse, KnownText};

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
    /// Description (Jira wiki markup in API v2).
    pub description: Option<T>,
    /// Priority name (`Highest`, `High`, …); the project's default when absent.
    pub priority: Option<T>,
    /// More fields: Jira field id → value (JSON objects, lists, numbers and
    /// booleans written as JSON are sent as such, anything else as text).
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
                priority: map_opt(f, &p("priority"), &x.priority)?,
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

impl<T> Http<T> {
    /// Whether a response status counts as success: one of `expect`, or any
    /// 2xx when `expect` is empty.
    pub fn accepts(&self, status: u16) -> bool {
        if self.expect.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect.contains(&status)
        }
    }
}

/// Whether an unexpected HTTP status is worth retrying: timeouts, too many
/// requests and server errors may pass; other client errors will not.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || (500..600).contains(&status)
}

/// A rendered channel name made acceptable to Slack: lower case, letters,
/// digits, `-` and `_` only, no doubled or trailing hyphens, at most 80
/// characters; `incident` if nothing is left.
pub fn slack_channel_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.trim().to_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        if out.len() == 80 {
            break;
        }
        out.push(c);
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "incident".into()
    } else {
        out.to_string()
    }
}

/// The link to a Jitsi room on `base` (e.g. `https://meet.jit.si`): the room
/// keeps letters, digits, `-` and `_`, so the link needs no escaping.
pub fn jitsi_url(base: &str, room: &str) -> String {
    let room: String = room
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{}/{}", base.trim_end_matches('/'), room)
}
