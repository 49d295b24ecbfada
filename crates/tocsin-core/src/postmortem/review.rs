//! The review of a postmortem (draft, in review, published) as one table the
//! API, the pages and the docs read, and the fields of its action items.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// Where a postmortem is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Being written.
    Draft,
    /// Written; its reviewers read and approve it.
    InReview,
    /// Approved and readable by all staff.
    Published,
}

/// Every allowed move (from, to). Back to draft from either later state; to
/// published only from review.
pub const REVIEW_TRANSITIONS: &[(ReviewStatus, ReviewStatus)] = &[
    (ReviewStatus::Draft, ReviewStatus::InReview),
    (ReviewStatus::InReview, ReviewStatus::Draft),
    (ReviewStatus::InReview, ReviewStatus::Published),
    (ReviewStatus::Published, ReviewStatus::Draft),
];

impl ReviewStatus {
    /// All states in order.
    pub const ALL: [ReviewStatus; 3] = [
        ReviewStatus::Draft,
        ReviewStatus::InReview,
        ReviewStatus::Published,
    ];

    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Draft => "draft",
            ReviewStatus::InReview => "in_review",
            ReviewStatus::Published => "published",
        }
    }

    /// Parses a name, naming `field` when it is not one.
    pub fn parse(field: &str, s: &str) -> Result<ReviewStatus, Invalid> {
        ReviewStatus::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    field,
                    format!("`{s}` is not a review status (draft, in_review, published)"),
                )
            })
    }

    /// The states this one may move to.
    pub fn allowed_next(self) -> Vec<ReviewStatus> {
        REVIEW_TRANSITIONS
            .iter()
            .filter(|(f, _)| *f == self)
            .map(|(_, t)| *t)
            .collect()
    }

    /// Whether the table allows `self` → `to`.
    pub fn can_move_to(self, to: ReviewStatus) -> bool {
        REVIEW_TRANSITIONS.contains(&(self, to))
    }
}

/// A refused review move, with what would have been allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a postmortem cannot move from {} to {}; allowed next: {}", .from.as_str(), .to.as_str(),
    .from.allowed_next().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))]
pub struct ReviewRefused {
    /// Current state.
    pub from: ReviewStatus,
    /// Requested state.
    pub to: ReviewStatus,
}

/// Checks a move against [`REVIEW_TRANSITIONS`].
pub fn check_review(from: ReviewStatus, to: ReviewStatus) -> Result<(), ReviewRefused> {
    if from.can_move_to(to) {
        Ok(())
    } else {
        Err(ReviewRefused { from, to })
    }
}

/// Where an action item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Not started.
    Open,
    /// Someone works on it.
    InProgress,
    /// Finished.
    Done,
    /// Will not be done.
    Cancelled,
}

impl ActionStatus {
    /// All values.
    pub const ALL: [ActionStatus; 4] = [
        ActionStatus::Open,
        ActionStatus::InProgress,
        ActionStatus::Done,
        ActionStatus::Cancelled,
    ];

    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Open => "open",
            ActionStatus::InProgress => "in_progress",
            ActionStatus::Done => "done",
            ActionStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a name, naming `field` when it is not one.
    pub fn parse(field: &str, s: &str) -> Result<ActionStatus, Invalid> {
        ActionStatus::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    field,
                    format!(
                        "`{s}` is not an action item status (open, in_progress, done, cancelled)"
                    ),
                )
            })
    }

    /// Whether work is still expected (open or in progress): only such items
    /// are overdue and remind.
    pub fn is_pending(self) -> bool {
        matches!(self, ActionStatus::Open | ActionStatus::InProgress)
    }
}

/// How urgent an action item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionPriority {
    /// When there is time.
    Low,
    /// The default.
    Medium,
    /// Before other work.
    High,
}

impl ActionPriority {
    /// All values.
    pub const ALL: [ActionPriority; 3] = [
        ActionPriority::Low,
        ActionPriority::Medium,
        ActionPriority::High,
    ];

    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionPriority::Low => "low",
            ActionPriority::Medium => "medium",
            ActionPriority::High => "high",
        }
    }

    /// Parses a name, naming `field` when it is not one.
    pub fn parse(field: &str, s: &str) -> Result<ActionPriority, Invalid> {
        ActionPriority::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    field,
                    format!("`{s}` is not a priority (low, medium, high)"),
                )
            })
    }
}

/// A due date: a calendar day written `YYYY-MM-DD`.
pub fn parse_due_date(field: &str, s: &str) -> Result<chrono::NaiveDate, Invalid> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| Invalid::new(field, format!("`{s}` is not a date written YYYY-MM-DD")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_allows_review_and_return_to_draft_only() {
        use ReviewStatus::*;
        for from in ReviewStatus::ALL {
            for to in ReviewStatus::ALL {
                let ok = matches!(
                    (from, to),
                    (Draft, InReview)
                        | (InReview, Draft)
                        | (InReview, Published)
                        | (Published, Draft)
                );
                assert_eq!(check_review(from, to).is_ok(), ok, "{from:?} -> {to:?}");
            }
        }
        let e = check_review(Draft, Published).unwrap_err().to_string();
        assert_eq!(
            e,
            "a postmortem cannot move from draft to published; allowed next: in_review"
        );
    }

    #[test]
    fn fields_parse_by_name_and_name_the_field() {
        assert_eq!(
            ActionStatus::parse("status", "in_progress").unwrap(),
            ActionStatus::InProgress
        );
        assert_eq!(
            ActionStatus::parse("status", "later").unwrap_err().field,
            "status"
        );
        assert_eq!(
            ActionPriority::parse("priority", "high").unwrap(),
            ActionPriority::High
        );
        assert!(parse_due_date("due_date", "2026-02-30").is_err());
        assert_eq!(
            parse_due_date("due_date", "2026-12-05")
                .unwrap()
                .to_string(),
            "2026-12-05"
        );
    }
}
