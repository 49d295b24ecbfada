//! Postmortems: a configurable template, a draft generated from the incident's
//! record (key timeline, exact durations, people and their roles, affected
//! services and status-page components, alerts with counts), and a three-way
//! merge so concurrent edits of different sections both survive while
//! overlapping ones are reported, never silently overwritten.
//!
//! The draft is Markdown, rendered by the same safe renderer as notes. Text
//! written by responders as Markdown (root cause, resolution summary) is
//! inserted as written; everything else (titles, alert summaries, names) is
//! escaped so it cannot change the document's structure.

pub mod draft;
pub mod merge;
pub mod review;
#[cfg(test)]
mod tests;
pub mod timeline;
pub mod tracker;

use serde::{Deserialize, Serialize};

use crate::model::{Service, User};
use crate::Invalid;

pub use draft::{
    draft, AlertGroup, ComponentImpact, Draft, DraftSection, Input, Person, StatusPost,
};
pub use merge::{merge, Conflict, ConflictRange};
pub use review::{
    check_review, parse_due_date, ActionPriority, ActionStatus, ReviewRefused, ReviewStatus,
    REVIEW_TRANSITIONS,
};
pub use timeline::{key_events, KeyEvent, KeyKind};

/// Most sections a template may have.
pub const MAX_SECTIONS: usize = 40;
/// Longest section title.
pub const MAX_TITLE: usize = 120;
/// Longest section hint.
pub const MAX_HINT: usize = 1000;

/// What the draft writes into a section from the incident's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generated {
    /// The incidents, their severity and services, and the key instants with durations.
    Summary,
    /// Affected services, status-page posts and components.
    CustomerImpact,
    /// The key timeline.
    Timeline,
    /// The root cause as recorded on the incidents.
    RootCauses,
    /// How it was noticed: time to detect and declare, the alerts with counts.
    Detection,
    /// Time to acknowledge, paging, the people involved and their roles.
    Response,
    /// Time to mitigate and resolve, and the resolution summary.
    Recovery,
}

/// One section of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// What to write here, shown to the writer beside the editor (not in the text).
    #[serde(default)]
    pub hint: String,
    /// What the draft fills in, if anything.
    #[serde(default)]
    pub generated: Option<Generated>,
}

/// A postmortem template: ordered sections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Sections in document order.
    pub sections: Vec<Section>,
}

impl Default for Template {
    fn default() -> Self {
        let s = |title: &str, hint: &str, generated| Section {
            title: title.into(),
            hint: hint.into(),
            generated,
        };
        use Generated::*;
        Template {
            sections: vec![
                s(
                    "Summary",
                    "What happened, in two or three sentences a newcomer understands.",
                    Some(Summary),
                ),
                s(
                    "Customer impact",
                    "Who was affected, how, for how long; what they saw.",
                    Some(CustomerImpact),
                ),
                s(
                    "Timeline",
                    "Add what the log does not know: when people noticed, what they tried.",
                    Some(Timeline),
                ),
                s(
                    "Root causes and contributing factors",
                    "Why it happened and why it was possible; systems and conditions, not people.",
                    Some(RootCauses),
                ),
                s(
                    "Detection",
                    "How we found out, and how we could have found out sooner.",
                    Some(Detection),
                ),
                s(
                    "Response",
                    "Who responded and how; what helped and what slowed us down.",
                    Some(Response),
                ),
                s(
                    "Recovery",
                    "How service was restored, and what made it faster or slower.",
                    Some(Recovery),
                ),
                s("What went well", "Practices and tools worth keeping.", None),
                s(
                    "What went poorly",
                    "Where the process, tools or information failed us.",
                    None,
                ),
                s(
                    "Where we got lucky",
                    "What could have made it worse and did not, this time.",
                    None,
                ),
                s(
                    "Action items",
                    "Concrete changes, each with an owner and a due date.",
                    None,
                ),
                s(
                    "Lessons learned",
                    "What the rest of the organisation should know.",
                    None,
                ),
            ],
        }
    }
}

impl Template {
    /// Checks a configured template: 1–40 sections, one-line titles unique and
    /// non-empty, each generated part used at most once.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.sections.is_empty() || self.sections.len() > MAX_SECTIONS {
            return Err(Invalid::new(
                "sections",
                format!("needs 1 to {MAX_SECTIONS} sections"),
            ));
        }
        for (i, s) in self.sections.iter().enumerate() {
            let field = |f: &str| format!("sections[{i}].{f}");
            crate::model::required_text(&field("title"), &s.title, MAX_TITLE)?;
            if self.sections[..i]
                .iter()
                .any(|o| o.title.trim() == s.title.trim())
            {
                return Err(Invalid::new(
                    field("title"),
                    format!("`{}` is used twice", s.title.trim()),
                ));
            }
            crate::model::long_text(&field("hint"), &s.hint, MAX_HINT)?;
            if s.generated.is_some()
                && self.sections[..i]
                    .iter()
                    .any(|o| o.generated == s.generated)
            {
                return Err(Invalid::new(
                    field("generated"),
                    "each generated part may be used once",
                ));
            }
        }
        Ok(())
    }
}

/// The names a draft shows for ids: users and services.
#[derive(Debug, Clone, Copy, Default)]
pub struct Directory<'a> {
    /// Users (any superset of those involved).
    pub users: &'a [User],
    /// Services (any superset of those affected).
    pub services: &'a [Service],
}

impl Directory<'_> {
    /// A user's name, or `user <id>` for one not in the directory.
    pub fn user_name(&self, id: i64) -> String {
        self.users
            .iter()
            .find(|u| u.id == id)
            .map_or_else(|| format!("user {id}"), |u| u.name.clone())
    }

    /// A service's name, or `service <id>`.
    pub fn service_name(&self, id: i64) -> String {
        self.services
            .iter()
            .find(|s| s.id == id)
            .map_or_else(|| format!("service {id}"), |s| s.name.clone())
    }
}
