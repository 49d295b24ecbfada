//! Records as the API shows them: incidents, notes, attachments, events, services,
//! users, teams, tokens and integration keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::Role;
use crate::incident::{Level, Priority, RecordKind, RelationKind, Status};
use crate::integration::IntegrationConfig;
use chrono::{DateTime, Utc};

use crate::Invalid;

/// An incident with its ITIL and SRE fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    /// Sequential id; `number` is its human form.
    pub id: i64,
    /// Human id, e.g. `INC-42`.
    pub number: String,
    /// One-line summary.
    pub title: String,
    /// Markdown description.
    pub description: String,
    /// Error code, if the failure has one.
    pub error_code: Option<String>,
    /// Type (category), one of the configured types.
    #[serde(rename = "type")]
    pub incident_type: String,
    /// How widely the incident hurts.
    pub impact: Level,
    /// How soon it must be handled.
    pub urgency: Level,
    /// Derived from impact and urgency by the configured matrix.
    pub priority: Priority,
    /// One of the configured severities.
    pub severity: String,
    /// Lifecycle status.
    pub status: Status,
    /// Affected services.
    pub service_ids: Vec<i64>,
    /// Who reported it (user id), if a person did.
    pub reporter_id: Option<i64>,
    /// Who owns it now.
    pub assignee_id: Option<i64>,
    /// Incident roles: role name to the users holding it.
    pub roles: BTreeMap<String, Vec<i64>>,
    /// Free-form labels.
    pub labels: Vec<String>,
    /// Values of the configured custom fields.
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// When the problem began.
    pub occurred_at: Option<DateTime<Utc>>,
    /// When it was noticed.
    pub detected_at: Option<DateTime<Utc>>,
    /// First acknowledgement.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// When impact was mitigated (first entered monitoring).
    pub mitigated_at: Option<DateTime<Utc>>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Set while closure waits for the reporter's confirmation.
    pub closure_requested_at: Option<DateTime<Utc>>,
    /// Root cause, once known.
    pub root_cause: Option<String>,
    /// How it was resolved.
    pub resolution_summary: Option<String>,
    /// Links to other incidents.
    pub related: Vec<Relation>,
    /// When it was declared.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A link from one incident to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    /// How they relate.
    pub kind: RelationKind,
    /// The other incident's id.
    pub incident_id: i64,
}

/// A note on an incident: discussion, a decision or an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    /// Note id.
    pub id: i64,
    /// Incident it belongs to.
    pub incident_id: i64,
    /// Who wrote it.
    pub author_id: Option<i64>,
    /// Markdown text.
    pub body: String,
    /// Note, decision or approval.
    pub kind: RecordKind,
    /// For approvals: who approved.
    pub approved_by: Option<i64>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A file attached to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    /// Attachment id.
    pub id: i64,
    /// Incident it belongs to.
    pub incident_id: i64,
    /// File name as uploaded.
    pub filename: String,
    /// MIME type as uploaded.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Evidence, decision or approval.
    pub kind: RecordKind,
    /// For approvals: who approved.
    pub approved_by: Option<i64>,
    /// Who uploaded it.
    pub uploaded_by: Option<i64>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

/// One entry of the append-only event log: the timeline and the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Position in the log; strictly increasing.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Acting user, if a person or their token acted.
    pub actor_id: Option<i64>,
    /// Who acted, for display (user name, `system`, integration name).
    pub actor: String,
    /// Kind of thing changed: incident, service, user, team, token, integration_key.
    pub entity: String,
    /// Id of the thing changed.
    pub entity_id: i64,
    /// Incident the event belongs to, if any.
    pub incident_id: Option<i64>,
    /// What happened, e.g. `incident.status_changed`.
    pub kind: String,
    /// Details: changed fields with old and new values, ids, bodies.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// One field's change, recorded on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// Field name as in the API.
    pub field: String,
    /// Value before.
    #[schema(value_type = Object)]
    pub old: Value,
    /// Value after.
    #[schema(value_type = Object)]
    pub new: Value,
}

/// A service incidents can affect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Service {
    /// Service id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Owning team.
    pub team_id: Option<i64>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A person who uses Tocsin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// User id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Unique email address; also the login.
    pub email: String,
    /// What they may do.
    pub role: Role,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Deactivated users cannot log in and their tokens stop working.
    pub active: bool,
    /// Whether a password is set (for the web UI).
    pub has_password: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A team of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Team {
    /// Team id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What the team does.
    pub description: String,
    /// Member user ids.
    pub member_ids: Vec<i64>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    /// Token id.
    pub id: i64,
    /// What it is for.
    pub name: String,
    /// Owner.
    pub user_id: i64,
    /// Role; never more than the owner's.
    pub role: Role,
    /// First characters of the secret, to recognise it.
    pub prefix: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last use, to the minute.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revoked tokens stop working.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A service's integration key, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntegrationKey {
    /// Key id.
    pub id: i64,
    /// Service it sends alerts to.
    pub service_id: i64,
    /// What sends with it.
    pub name: String,
    /// First characters of the secret.
    pub prefix: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Revoked keys are refused.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Routing rules and webhook templates, carried so the ingest edge needs no query.
    #[serde(flatten)]
    pub config: IntegrationConfig,
}

impl IntegrationKey {
    /// The key's row id, or `None` for an internal source (a heartbeat) that sends
    /// through the alert pipeline without a key row (id 0).
    pub fn stored_id(&self) -> Option<i64> {
        (self.id != 0).then_some(self.id)
    }
}

/// An email address: something@domain, parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address; lower-cases the domain.
    pub fn parse(field: &str, s: &str) -> Result<EmailAddress, Invalid> {
        let s = s.trim();
        let bad = || Invalid::new(field, format!("`{s}` is not an email address"));
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let ok_chars = |p: &str| {
            !p.is_empty()
                && !p
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        };
        if !ok_chars(local) || !ok_chars(domain) || local.contains('@') || s.len() > 254 {
            return Err(bad());
        }
        Ok(EmailAddress(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a required one-line text: trimmed, non-empty, at most `max` characters.
pub fn required_text(field: &str, s: &str, max: usize) -> Result<String, Invalid> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if t.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Invalid::new(
            field,
            "must be a single line without control characters",
        ));
    }
    Ok(t.to_string())
}

/// Checks a free text (markdown allowed): at most `max` characters.
pub fn long_text(field: &str, s: &str, max: usize) -> Result<String, Invalid> {
    if s.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_parsing() {
        assert_eq!(
            EmailAddress::parse("email", " Ann@Example.COM ")
                .unwrap()
                .as_str(),
            "Ann@example.com"
        );
        for bad in ["", "ann", "@x", "ann@", "a b@x", "a@b@c", "<a@b>"] {
            assert_eq!(
                EmailAddress::parse("email", bad).unwrap_err().field,
                "email"
            );
        }
    }

    #[test]
    fn text_checks() {
        assert_eq!(required_text("title", "  hi ", 10).unwrap(), "hi");
        assert!(required_text("title", "   ", 10).is_err());
        assert!(required_text("title", "a\nb", 10).is_err());
        assert!(required_text("title", "abcdefghijk", 10).is_err());
    }
}
