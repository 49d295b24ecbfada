//! Action items created in an issue tracker. An item's issue is made by a
//! run of a one-step workflow (`jira_create_issue` or `github_create_issue`)
//! through the durable run engine, so retries, the outgoing policy and
//! secrets work as for any step. The step's fields are fixed templates over
//! `action_item` in the run's context: the item's own text never becomes
//! template source, so `{{` in a title is only text.

use serde::Serialize;
use serde_json::{json, Value};

use crate::Invalid;

pub use crate::workflow::action::check_repo;

/// Where action items may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tracker {
    /// A Jira issue (`[workflows.jira] action_items_project`).
    Jira,
    /// A GitHub issue (`[workflows.github] action_items_repo`).
    Github,
}

impl Tracker {
    /// Reads `jira` or `github`.
    pub fn parse(field: &str, s: &str) -> Result<Tracker, Invalid> {
        match s.trim() {
            "jira" => Ok(Tracker::Jira),
            "github" => Ok(Tracker::Github),
            other => Err(Invalid::new(
                field,
                format!("`{other}` is not a tracker (jira or github)"),
            )),
        }
    }

    /// `jira` or `github`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tracker::Jira => "jira",
            Tracker::Github => "github",
        }
    }

    /// How people name it.
    pub fn label(self) -> &'static str {
        match self {
            Tracker::Jira => "Jira",
            Tracker::Github => "GitHub",
        }
    }
}

/// The Jira project and issue type items go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraTarget {
    /// Project key (`OPS`).
    pub project: String,
    /// Issue type name (`Task`).
    pub issue_type: String,
}

/// Where action items go, from the configuration; empty: nowhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerTargets {
    /// Jira.
    pub jira: Option<JiraTarget>,
    /// GitHub: `owner/name`.
    pub github: Option<String>,
}

/// Why no tracker could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoTracker {
    /// None is configured.
    NoneConfigured,
    /// The one asked for is not configured (those that are).
    NotConfigured(Tracker, Vec<Tracker>),
    /// Several are configured and none was named.
    Ambiguous(Vec<Tracker>),
}

impl std::fmt::Display for NoTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |ts: &[Tracker]| {
            ts.iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        };
        match self {
            NoTracker::NoneConfigured => write!(
                f,
                "no issue tracker takes action items: set [workflows.jira] action_items_project \
                 or [workflows.github] action_items_repo"
            ),
            NoTracker::NotConfigured(t, ok) if ok.is_empty() => write!(
                f,
                "{} does not take action items: set {}",
                t.label(),
                setting(*t)
            ),
            NoTracker::NotConfigured(t, ok) => write!(
                f,
                "{} does not take action items here (set {}); configured: {}",
                t.label(),
                setting(*t),
                names(ok)
            ),
            NoTracker::Ambiguous(ts) => {
                write!(f, "name the tracker: {}", names(ts))
            }
        }
    }
}

fn setting(t: Tracker) -> &'static str {
    match t {
        Tracker::Jira => "[workflows.jira] action_items_project",
        Tracker::Github => "[workflows.github] action_items_repo",
    }
}

impl TrackerTargets {
    /// The trackers configured, Jira first.
    pub fn available(&self) -> Vec<Tracker> {
        let mut out = Vec::new();
        if self.jira.is_some() {
            out.push(Tracker::Jira);
        }
        if self.github.is_some() {
            out.push(Tracker::Github);
        }
        out
    }

    /// The tracker to use: the one asked for if configured; else the only one.
    pub fn choose(&self, asked: Option<Tracker>) -> Result<Tracker, NoTracker> {
        let ok = self.available();
        match (asked, ok.as_slice()) {
            (_, []) => Err(NoTracker::NoneConfigured),
            (Some(t), _) if ok.contains(&t) => Ok(t),
            (Some(t), _) => Err(NoTracker::NotConfigured(t, ok)),
            (None, [one]) => Ok(*one),
            (None, _) => Err(NoTracker::Ambiguous(ok)),
        }
    }

    /// [`TrackerTargets::choose`] with the chosen tracker's workflow.
    pub fn choose_workflow(&self, asked: Option<Tracker>) -> Result<(Tracker, Value), NoTracker> {
        let t = self.choose(asked)?;
        self.workflow(t)
            .map(|w| (t, w))
            .ok_or(NoTracker::NotConfigured(t, self.available()))
    }

    /// The workflow definition (JSON, as [`crate::workflow::definition::
    /// parse_value`] reads it) whose run creates an item's issue in `t`;
    /// `None` when `t` is not configured.
    pub fn workflow(&self, t: Tracker) -> Option<Value> {
        let step = match t {
            Tracker::Jira => {
                let j = self.jira.as_ref()?;
                json!({
                    "id": "issue",
                    "name": "Create the Jira issue",
                    "jira_create_issue": {
                        "project": j.project,
                        "issue_type": j.issue_type,
                        "summary": "{{ action_item.summary }}",
                        "description": "{{ action_item.text }}",
                    },
                    "retry": { "attempts": 3, "backoff": "30s" },
                })
            }
            Tracker::Github => json!({
                "id": "issue",
                "name": "Create the GitHub issue",
                "github_create_issue": {
                    "repo": self.github.as_ref()?,
                    "title": "{{ action_item.summary }}",
                    "body": "{{ action_item.text }}",
                },
                "retry": { "attempts": 3, "backoff": "30s" },
            }),
        };
        Some(json!({
            "name": format!("Action item issues in {}", t.label()),
            "description": "Creates a postmortem action item's issue, run from the postmortem.",
            "trigger": { "manual": {} },
            "steps": [step],
            // One run per click; the item refuses a second click while one runs.
            "limits": { "max_runs_per_incident": 100, "max_runs_per_hour": 10_000 },
        }))
    }
}

/// Checks a configured Jira project key: capital letters, digits and `_`,
/// starting with a letter (Jira's own rule).
pub fn check_project_key(field: &str, key: &str) -> Result<String, Invalid> {
    let k = key.trim();
    let ok = k.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && k.len() <= 255
        && k.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(Invalid::new(
            field,
            format!(
                "`{k}` is not a Jira project key (capital letters, digits and _, from a letter)"
            ),
        ));
    }
    Ok(k.to_string())
}

/// Checks a configured issue type name: one line of plain text (no `{`, so it
/// cannot be read as a template).
pub fn check_issue_type(field: &str, name: &str) -> Result<String, Invalid> {
    let n = name.trim();
    if n.is_empty()
        || n.chars().count() > 255
        || n.chars().any(|c| c.is_control() || c == '{' || c == '}')
    {
        return Err(Invalid::new(
            field,
            "must be an issue type's name: 1 to 255 characters on one line, without { or }",
        ));
    }
    Ok(n.to_string())
}

/// What an item's issue says, besides its title.
#[derive(Debug, Clone, Default)]
pub struct IssueText<'a> {
    /// The postmortem's title.
    pub postmortem_title: &'a str,
    /// Its page.
    pub postmortem_url: &'a str,
    /// The incident reviewed (`INC-12`, its page).
    pub incident: Option<(String, String)>,
    /// Owner's name.
    pub owner: Option<&'a str>,
    /// Due day, `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// `low`, `medium` or `high`.
    pub priority: &'a str,
}

/// The issue's description: plain lines that read the same as Jira markup
/// and as GitHub Markdown (URLs become links in both).
pub fn issue_text(t: &IssueText<'_>) -> String {
    let mut out = format!(
        "Action item from the postmortem \"{}\": {}\n",
        one_line(t.postmortem_title),
        t.postmortem_url
    );
    if let Some((number, url)) = &t.incident {
        out.push_str(&format!("Incident: {number} {url}\n"));
    }
    out.push('\n');
    out.push_str(&format!(
        "Owner: {}\n",
        t.owner.map(one_line).unwrap_or_else(|| "nobody yet".into())
    ));
    out.push_str(&format!(
        "Due: {}\n",
        t.due_date.as_deref().unwrap_or("no date")
    ));
    out.push_str(&format!("Priority: {}\n", t.priority));
    out
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::definition::parse_value;

    fn both() -> TrackerTargets {
        TrackerTargets {
            jira: Some(JiraTarget {
                project: "OPS".into(),
                issue_type: "Task".into(),
            }),
            github: Some("acme/api".into()),
        }
    }

    #[test]
    fn choosing_a_tracker() {
        let none = TrackerTargets::default();
        assert_eq!(none.choose(None), Err(NoTracker::NoneConfigured));
        assert!(none
            .choose(Some(Tracker::Jira))
            .unwrap_err()
            .to_string()
            .contains("action_items_project"));
        let github = TrackerTargets {
            github: Some("acme/api".into()),
            ..Default::default()
        };
        assert_eq!(github.choose(None), Ok(Tracker::Github));
        let e = github.choose(Some(Tracker::Jira)).unwrap_err();
        assert_eq!(
            e,
            NoTracker::NotConfigured(Tracker::Jira, vec![Tracker::Github])
        );
        assert!(e.to_string().contains("configured: github"), "{e}");
        assert_eq!(
            both().choose(None),
            Err(NoTracker::Ambiguous(vec![Tracker::Jira, Tracker::Github]))
        );
        assert_eq!(both().choose(Some(Tracker::Github)), Ok(Tracker::Github));
        assert_eq!(Tracker::parse("tracker", "jira"), Ok(Tracker::Jira));
        assert_eq!(
            Tracker::parse("tracker", "trello").unwrap_err().field,
            "tracker"
        );
    }

    #[test]
    fn the_workflows_are_valid_definitions() {
        for t in [Tracker::Jira, Tracker::Github] {
            let def = parse_value(&both().workflow(t).unwrap()).unwrap();
            assert_eq!(def.steps.len(), 1);
            assert_eq!(
                def.steps[0].kind(),
                match t {
                    Tracker::Jira => "jira_create_issue",
                    Tracker::Github => "github_create_issue",
                }
            );
        }
        assert!(TrackerTargets::default().workflow(Tracker::Jira).is_none());
    }

    #[test]
    fn configured_names_are_checked() {
        assert_eq!(check_project_key("p", " OPS_2 ").unwrap(), "OPS_2");
        for bad in ["", "ops", "2OPS", "OPS-1", "{{ x }}"] {
            assert_eq!(check_project_key("p", bad).unwrap_err().field, "p", "{bad}");
        }
        assert_eq!(check_repo("r", "acme/api.v2").unwrap(), "acme/api.v2");
        for bad in ["", "acme", "acme/", "/api", "a/b/c", "{{x}}/y"] {
            assert_eq!(check_repo("r", bad).unwrap_err().field, "r", "{bad}");
        }
        assert_eq!(check_issue_type("t", "Sub-task ").unwrap(), "Sub-task");
        for bad in ["", "{{ secret }}", "a\nb"] {
            assert!(check_issue_type("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_issue_text_names_everything() {
        let text = issue_text(&IssueText {
            postmortem_title: "Checkout\noutage",
            postmortem_url: "https://tocsin.example/postmortems/3",
            incident: Some((
                "INC-12".into(),
                "https://tocsin.example/incidents/12".into(),
            )),
            owner: Some("Alice"),
            due_date: Some("2026-12-20".into()),
            priority: "high",
        });
        assert_eq!(
            text,
            "Action item from the postmortem \"Checkout outage\": https://tocsin.example/postmortems/3\n\
             Incident: INC-12 https://tocsin.example/incidents/12\n\n\
             Owner: Alice\nDue: 2026-12-20\nPriority: high\n"
        );
        let bare = issue_text(&IssueText {
            postmortem_title: "T",
            postmortem_url: "u",
            priority: "low",
            ..Default::default()
        });
        assert!(bare.contains("Owner: nobody yet\nDue: no date\n"), "{bare}");
    }
}
