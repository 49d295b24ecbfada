//! Status pages: what customers and staff read about the health of services.
//!
//! A page has components (optionally grouped), each with a status whose history
//! is kept; public incidents and scheduled maintenances are written for the page
//! (never copied from internal incidents) as a series of updates. Everything a
//! page shows is built from [`public::PublicStatus`], which holds published data
//! only, so rendering cannot leak what was not published.

pub mod public;
pub mod records;
pub mod token;
pub mod uptime;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::Timestamp;
use crate::Invalid;

/// A component's status, as Atlassian Statuspage names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    /// Working normally.
    Operational,
    /// Working, but slower or less reliable than usual.
    DegradedPerformance,
    /// Broken for some customers or some functions.
    PartialOutage,
    /// Broken for everyone.
    MajorOutage,
    /// Taken down on purpose for planned work.
    UnderMaintenance,
}

impl ComponentStatus {
    /// Every status, best first as shown in choosers.
    pub const ALL: [ComponentStatus; 5] = [
        ComponentStatus::Operational,
        ComponentStatus::DegradedPerformance,
        ComponentStatus::PartialOutage,
        ComponentStatus::MajorOutage,
        ComponentStatus::UnderMaintenance,
    ];

    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
            ComponentStatus::UnderMaintenance => "under_maintenance",
        }
    }

    /// Parses the wire name, naming `field` when it is not one.
    pub fn parse(field: &str, s: &str) -> Result<ComponentStatus, Invalid> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    field,
                    format!(
                        "`{s}` is not a component status; one of: {}",
                        Self::ALL.map(|c| c.as_str()).join(", ")
                    ),
                )
            })
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "Operational",
            ComponentStatus::DegradedPerformance => "Degraded performance",
            ComponentStatus::PartialOutage => "Partial outage",
            ComponentStatus::MajorOutage => "Major outage",
            ComponentStatus::UnderMaintenance => "Under maintenance",
        }
    }

    /// How bad it is for customers, for "the worst of": operational 0,
    /// maintenance 1 (planned and announced), then degraded, partial, major.
    pub fn severity(self) -> u8 {
        match self {
            ComponentStatus::Operational => 0,
            ComponentStatus::UnderMaintenance => 1,
            ComponentStatus::DegradedPerformance => 2,
            ComponentStatus::PartialOutage => 3,
            ComponentStatus::MajorOutage => 4,
        }
    }

    /// The worse of two statuses.
    pub fn worst(self, other: ComponentStatus) -> ComponentStatus {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// What kind of post a status-page incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostKind {
    /// Something went wrong.
    Incident,
    /// Planned work, announced ahead.
    Maintenance,
}

impl PostKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PostKind::Incident => "incident",
            PostKind::Maintenance => "maintenance",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<PostKind> {
        match s {
            "incident" => Some(PostKind::Incident),
            "maintenance" => Some(PostKind::Maintenance),
            _ => None,
        }
    }
}

/// The status an update gives a public incident or maintenance (Statuspage's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostStatus {
    /// Incident: looking into it.
    Investigating,
    /// Incident: the cause is known.
    Identified,
    /// Incident: a fix is in; watching.
    Monitoring,
    /// Incident: over.
    Resolved,
    /// Maintenance: announced, not started.
    Scheduled,
    /// Maintenance: under way.
    InProgress,
    /// Maintenance: done, checking.
    Verifying,
    /// Maintenance: over.
    Completed,
}

impl PostStatus {
    /// The statuses an incident's updates may carry, in their usual order.
    pub const INCIDENT: [PostStatus; 4] = [
        PostStatus::Investigating,
        PostStatus::Identified,
        PostStatus::Monitoring,
        PostStatus::Resolved,
    ];
    /// The statuses a maintenance's updates may carry, in their usual order.
    pub const MAINTENANCE: [PostStatus; 4] = [
        PostStatus::Scheduled,
        PostStatus::InProgress,
        PostStatus::Verifying,
        PostStatus::Completed,
    ];

    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Investigating => "investigating",
            PostStatus::Identified => "identified",
            PostStatus::Monitoring => "monitoring",
            PostStatus::Resolved => "resolved",
            PostStatus::Scheduled => "scheduled",
            PostStatus::InProgress => "in_progress",
            PostStatus::Verifying => "verifying",
            PostStatus::Completed => "completed",
        }
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            PostStatus::Investigating => "Investigating",
            PostStatus::Identified => "Identified",
            PostStatus::Monitoring => "Monitoring",
            PostStatus::Resolved => "Resolved",
            PostStatus::Scheduled => "Scheduled",
            PostStatus::InProgress => "In progress",
            PostStatus::Verifying => "Verifying",
            PostStatus::Completed => "Completed",
        }
    }

    /// Parses `s` as a status a post of `kind` may have, naming `field` if not.
    pub fn parse(field: &str, kind: PostKind, s: &str) -> Result<PostStatus, Invalid> {
        let allowed = Self::allowed(kind);
        allowed
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    field,
                    format!(
                        "`{s}` is not a status of {} {}; one of: {}",
                        if kind == PostKind::Incident {
                            "an"
                        } else {
                            "a"
                        },
                        kind.as_str(),
                        allowed.map(|p| p.as_str()).join(", ")
                    ),
                )
            })
    }

    /// Parses a stored name of any kind.
    pub fn from_stored(s: &str) -> Option<PostStatus> {
        Self::INCIDENT
            .into_iter()
            .chain(Self::MAINTENANCE)
            .find(|p| p.as_str() == s)
    }

    /// The statuses a post of `kind` may carry.
    pub fn allowed(kind: PostKind) -> [PostStatus; 4] {
        match kind {
            PostKind::Incident => Self::INCIDENT,
            PostKind::Maintenance => Self::MAINTENANCE,
        }
    }

    /// Whether the post is over (resolved or completed): no longer "unresolved",
    /// "upcoming" or "active".
    pub fn is_closed(self) -> bool {
        matches!(self, PostStatus::Resolved | PostStatus::Completed)
    }
}

/// How much a public incident hurts (Statuspage's `impact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    /// No customer impact (an informational post).
    None,
    /// A little.
    Minor,
    /// A lot.
    Major,
    /// Everyone, badly.
    Critical,
    /// Planned maintenance.
    Maintenance,
}

impl Impact {
    /// Every impact.
    pub const ALL: [Impact; 5] = [
        Impact::None,
        Impact::Minor,
        Impact::Major,
        Impact::Critical,
        Impact::Maintenance,
    ];

    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Impact::None => "none",
            Impact::Minor => "minor",
            Impact::Major => "major",
            Impact::Critical => "critical",
            Impact::Maintenance => "maintenance",
        }
    }

    /// Parses the wire name of an incident's impact (`maintenance` belongs to
    /// maintenances only), naming `field` when it is not one.
    pub fn parse(field: &str, s: &str) -> Result<Impact, Invalid> {
        [Impact::None, Impact::Minor, Impact::Major, Impact::Critical]
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    field,
                    format!("`{s}` is not an impact; one of: none, minor, major, critical"),
                )
            })
    }

    /// Parses a stored name.
    pub fn from_stored(s: &str) -> Option<Impact> {
        Self::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// The impact a component status implies when nobody says otherwise.
    pub fn of_status(status: ComponentStatus) -> Impact {
        match status {
            ComponentStatus::Operational => Impact::None,
            ComponentStatus::DegradedPerformance => Impact::Minor,
            ComponentStatus::PartialOutage => Impact::Major,
            ComponentStatus::MajorOutage => Impact::Critical,
            ComponentStatus::UnderMaintenance => Impact::Maintenance,
        }
    }
}

/// The page's overall status (Statuspage's `status.indicator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// All systems operational.
    None,
    /// Planned maintenance under way, nothing broken.
    Maintenance,
    /// Something is degraded, or a minor incident is open.
    Minor,
    /// A partial outage, or a major incident is open.
    Major,
    /// A major outage, or a critical incident is open.
    Critical,
}

impl Indicator {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::None => "none",
            Indicator::Maintenance => "maintenance",
            Indicator::Minor => "minor",
            Indicator::Major => "major",
            Indicator::Critical => "critical",
        }
    }

    /// The sentence under the page's name (Statuspage's `status.description`).
    pub fn description(self) -> &'static str {
        match self {
            Indicator::None => "All Systems Operational",
            Indicator::Maintenance => "Service Under Maintenance",
            Indicator::Minor => "Minor Service Outage",
            Indicator::Major => "Partial System Outage",
            Indicator::Critical => "Major Service Outage",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Indicator::None => 0,
            Indicator::Maintenance => 1,
            Indicator::Minor => 2,
            Indicator::Major => 3,
            Indicator::Critical => 4,
        }
    }

    fn of_status(s: ComponentStatus) -> Indicator {
        match s {
            ComponentStatus::Operational => Indicator::None,
            ComponentStatus::UnderMaintenance => Indicator::Maintenance,
            ComponentStatus::DegradedPerformance => Indicator::Minor,
            ComponentStatus::PartialOutage => Indicator::Major,
            ComponentStatus::MajorOutage => Indicator::Critical,
        }
    }

    fn of_impact(i: Impact) -> Indicator {
        match i {
            Impact::None => Indicator::None,
            Impact::Maintenance => Indicator::Maintenance,
            Impact::Minor => Indicator::Minor,
            Impact::Major => Indicator::Major,
            Impact::Critical => Indicator::Critical,
        }
    }

    /// The page's indicator: the worst of its components' statuses, the impact
    /// of its unresolved incidents, and maintenance when one is in progress.
    pub fn overall(
        components: impl IntoIterator<Item = ComponentStatus>,
        unresolved: impl IntoIterator<Item = Impact>,
        maintenance_in_progress: bool,
    ) -> Indicator {
        let mut worst = if maintenance_in_progress {
            Indicator::Maintenance
        } else {
            Indicator::None
        };
        let all = components
            .into_iter()
            .map(Indicator::of_status)
            .chain(unresolved.into_iter().map(Indicator::of_impact));
        for i in all {
            if i.rank() > worst.rank() {
                worst = i;
            }
        }
        worst
    }
}

/// Who may read a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone (customers).
    Public,
    /// Signed-in users only (staff).
    Internal,
}

impl Visibility {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
        }
    }

    /// Parses the wire name, naming `field` when it is not one.
    pub fn parse(field: &str, s: &str) -> Result<Visibility, Invalid> {
        match s {
            "public" => Ok(Visibility::Public),
            "internal" => Ok(Visibility::Internal),
            _ => Err(Invalid::new(
                field,
                format!("`{s}` is not a visibility; one of: public, internal"),
            )),
        }
    }
}

/// Path segments a page's slug may not take (they name other things under /status/).
const RESERVED_SLUGS: &[&str] = &["assets", "api", "static"];

/// A page's URL slug: `/status/<slug>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug: 1 to 64 lowercase letters, digits and inner hyphens.
    pub fn parse(field: &str, s: &str) -> Result<Slug, Invalid> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if !ok {
            return Err(Invalid::new(
                field,
                format!(
                    "`{s}` is not a slug: use 1 to 64 lowercase letters, digits and hyphens, \
                     not starting or ending with a hyphen"
                ),
            ));
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err(Invalid::new(field, format!("`{s}` is reserved")));
        }
        Ok(Slug(s.to_string()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A page's own host name (custom domain), e.g. `status.example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Domain(String);

impl Domain {
    /// Parses a DNS host name: labels of letters, digits and inner hyphens, at
    /// least two of them; lower-cased, a trailing dot dropped; no port, scheme or path.
    pub fn parse(field: &str, s: &str) -> Result<Domain, Invalid> {
        let t = s.trim().trim_end_matches('.').to_ascii_lowercase();
        let bad =
            |why: &str| Invalid::new(field, format!("`{}` is not a host name: {why}", s.trim()));
        if t.is_empty() || t.len() > 253 {
            return Err(bad("it must be 1 to 253 characters"));
        }
        if t.contains("://") || t.contains('/') || t.contains(':') {
            return Err(bad(
                "give the host name alone, without scheme, port or path",
            ));
        }
        let labels: Vec<&str> = t.split('.').collect();
        if labels.len() < 2 {
            return Err(bad("it needs at least two labels, like status.example.com"));
        }
        for l in &labels {
            let ok = !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-');
            if !ok {
                return Err(bad(
                    "each label is 1 to 63 letters, digits or inner hyphens",
                ));
            }
        }
        Ok(Domain(t))
    }

    /// The host name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A colour as `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color([u8; 3]);

impl Color {
    /// Parses `#rrggbb` or `#rgb` (any case).
    pub fn parse(field: &str, s: &str) -> Result<Color, Invalid> {
        let t = s.trim();
        let bad = || Invalid::new(field, format!("`{t}` is not a colour: use #rrggbb"));
        let hex = t.strip_prefix('#').ok_or_else(bad)?;
        let digits: Vec<u8> = hex
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        match digits.as_slice() {
            [r, g, b] => Ok(Color([r * 17, g * 17, b * 17])),
            [r1, r2, g1, g2, b1, b2] => Ok(Color([r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2])),
            _ => Err(bad()),
        }
    }

    /// `#rrggbb`, lowercase.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2])
    }

    // WCAG relative luminance.
    fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0[0]) + 0.7152 * lin(self.0[1]) + 0.0722 * lin(self.0[2])
    }

    /// White or near-black, whichever reads better on this colour.
    pub fn text_on(self) -> Color {
        let l = self.luminance();
        let contrast_white = 1.05 / (l + 0.05);
        let contrast_dark = (l + 0.05) / (Color([0x1f, 0x23, 0x28]).luminance() + 0.05);
        if contrast_white >= contrast_dark {
            Color([0xff, 0xff, 0xff])
        } else {
            Color([0x1f, 0x23, 0x28])
        }
    }
}

impl Serialize for Color {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

/// What an incident of a given severity suggests for the components linked to
/// its services: the most severe level (rank 0) a major outage, the next a
/// partial outage, the rest degraded performance. Only a proposal: the person
/// publishing decides.
pub fn proposed_status(severity_rank: usize) -> ComponentStatus {
    match severity_rank {
        0 => ComponentStatus::MajorOutage,
        1 => ComponentStatus::PartialOutage,
        _ => ComponentStatus::DegradedPerformance,
    }
}

/// What a scheduled maintenance does next, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceStep {
    /// Tell subscribers it starts soon.
    Remind,
    /// Start it: in progress, components under maintenance.
    Start,
    /// End it: completed, components back to operational.
    Complete,
}

/// A maintenance as the automatic steps see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenancePlan {
    /// Its status now.
    pub status: PostStatus,
    /// When the work starts.
    pub scheduled_for: Timestamp,
    /// When it ends.
    pub scheduled_until: Timestamp,
    /// How long before the start subscribers are reminded; `None`: no reminder.
    pub remind_before: Option<Duration>,
    /// Whether the reminder went out already.
    pub reminded: bool,
    /// Start it automatically at `scheduled_for`.
    pub auto_start: bool,
    /// Complete it automatically at `scheduled_until`.
    pub auto_complete: bool,
}

impl MaintenancePlan {
    /// The next automatic step and when it is due (perhaps already, at or before
    /// `now`); `None` when nothing more happens by itself. A reminder whose time
    /// passed while the maintenance already started is skipped, not sent late.
    pub fn next_step(&self) -> Option<(MaintenanceStep, Timestamp)> {
        match self.status {
            PostStatus::Scheduled => {
                if let Some(before) = self.remind_before {
                    if !self.reminded {
                        return Some((MaintenanceStep::Remind, self.scheduled_for - before));
                    }
                }
                if self.auto_start {
                    Some((MaintenanceStep::Start, self.scheduled_for))
                } else {
                    None
                }
            }
            PostStatus::InProgress | PostStatus::Verifying if self.auto_complete => {
                Some((MaintenanceStep::Complete, self.scheduled_until))
            }
            _ => None,
        }
    }

    /// Whether the reminder due at `now` still makes sense: the work has not started.
    pub fn reminder_still_useful(&self, now: Timestamp) -> bool {
        self.status == PostStatus::Scheduled && now < self.scheduled_for
    }
}

/// Checks a maintenance's window: it ends after it starts and lasts at most 31 days.
pub fn maintenance_window(
    scheduled_for: Timestamp,
    scheduled_until: Timestamp,
) -> Result<(), Invalid> {
    if scheduled_until <= scheduled_for {
        return Err(Invalid::new(
            "scheduled_until",
            "must be after scheduled_for",
        ));
    }
    if scheduled_until - scheduled_for > Duration::days(31) {
        return Err(Invalid::new(
            "scheduled_until",
            "a maintenance lasts at most 31 days",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
