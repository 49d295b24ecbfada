//! What a status page shows, as one value: the page, its components with their
//! uptime, and its published incidents and maintenances with their updates.
//!
//! The store builds it from the status-page tables alone (never from internal
//! incidents), and every rendering (HTML, the Statuspage-compatible JSON, the
//! Atom and RSS feeds, the static export) is a function of it. Nothing that was
//! not published can reach a reader.

use serde::Serialize;

use super::uptime::DayUptime;
use super::{ComponentStatus, Impact, Indicator, PostKind, PostStatus, Visibility};
use crate::time::Timestamp;

/// Everything one page shows, as of `generated_at`.
#[derive(Debug, Clone, Serialize)]
pub struct PublicStatus {
    /// The page itself.
    pub page: PageInfo,
    /// Component groups, in display order.
    pub groups: Vec<PublicGroup>,
    /// Components, in display order (grouped ones carry their group's id).
    pub components: Vec<PublicComponent>,
    /// Incidents, newest first: every unresolved one (up to [`MAX_OPEN_POSTS`])
    /// and at most [`MAX_POSTS`] resolved in the last [`HISTORY_DAYS`] days.
    pub incidents: Vec<PublicPost>,
    /// Maintenances: every upcoming or active one (up to [`MAX_OPEN_POSTS`]) and
    /// at most [`MAX_POSTS`] completed in the last [`HISTORY_DAYS`] days; latest start first.
    pub maintenances: Vec<PublicPost>,
    /// The overall status.
    pub indicator: Indicator,
    /// When this was read.
    pub generated_at: Timestamp,
}

/// How far back resolved incidents and completed maintenances are shown.
pub const HISTORY_DAYS: i64 = 90;

/// Most closed incidents (or maintenances) one snapshot holds.
pub const MAX_POSTS: usize = 50;

/// Most open incidents (or maintenances) one snapshot holds: all of them, in
/// any sane use; the cap only bounds a page someone floods.
pub const MAX_OPEN_POSTS: usize = 500;

/// A page's own settings, as readers see them.
#[derive(Debug, Clone, Serialize)]
pub struct PageInfo {
    /// Stable id.
    pub id: i64,
    /// URL slug.
    pub slug: String,
    /// Name shown as the heading.
    pub name: String,
    /// A line under the heading (markdown).
    pub description: String,
    /// Public or internal.
    pub visibility: Visibility,
    /// The page's address: its custom domain when it has one, else under the
    /// server's public URL.
    pub url: String,
    /// Its custom domain, if any.
    pub domain: Option<String>,
    /// IANA time zone its days and times are shown in.
    pub time_zone: String,
    /// The brand colour (header), `#rrggbb`.
    pub brand_color: String,
    /// Text colour readable on the brand colour.
    pub brand_text_color: String,
    /// Where "Contact support" points, if anywhere.
    pub support_url: Option<String>,
    /// The logo's content type and a tag that changes with it; `None`: no logo.
    pub logo: Option<LogoInfo>,
    /// When anything on the page last changed.
    pub updated_at: Timestamp,
}

/// A page's uploaded logo.
#[derive(Debug, Clone, Serialize)]
pub struct LogoInfo {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub content_type: String,
    /// Changes whenever the logo does (for cache-busting URLs).
    pub tag: String,
}

/// A group of components.
#[derive(Debug, Clone, Serialize)]
pub struct PublicGroup {
    /// Stable id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Order on the page.
    pub position: i64,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// A component as shown.
#[derive(Debug, Clone, Serialize)]
pub struct PublicComponent {
    /// Stable id.
    pub id: i64,
    /// Its group, if any.
    pub group_id: Option<i64>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Order on the page (within its group).
    pub position: i64,
    /// Its status now.
    pub status: ComponentStatus,
    /// Whether the page shows its uptime bars.
    pub show_uptime: bool,
    /// Shown only while it is not operational.
    pub only_show_if_degraded: bool,
    /// The last [`super::uptime::DAYS_SHOWN`] days, oldest first (empty when
    /// `show_uptime` is off).
    pub uptime: Vec<DayUptime>,
    /// Uptime over those days in percent; `None` with no data.
    pub uptime_percent: Option<f64>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// A published incident or maintenance.
#[derive(Debug, Clone, Serialize)]
pub struct PublicPost {
    /// Stable id.
    pub id: i64,
    /// Incident or maintenance.
    pub kind: PostKind,
    /// The title as published.
    pub name: String,
    /// Status from its latest update.
    pub status: PostStatus,
    /// How much it hurts.
    pub impact: Impact,
    /// When it was published.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When an incident's first update moved it to monitoring, if one did.
    pub monitoring_at: Option<Timestamp>,
    /// When it was resolved or completed.
    pub resolved_at: Option<Timestamp>,
    /// When it started: publication for incidents, the start for maintenances.
    pub started_at: Timestamp,
    /// A maintenance's planned start.
    pub scheduled_for: Option<Timestamp>,
    /// A maintenance's planned end.
    pub scheduled_until: Option<Timestamp>,
    /// The components it affects (ids, in page order).
    pub component_ids: Vec<i64>,
    /// Its updates, newest first.
    pub updates: Vec<PublicUpdate>,
}

impl PublicPost {
    /// Whether it is still open (unresolved incident, upcoming or active maintenance).
    pub fn is_open(&self) -> bool {
        !self.status.is_closed()
    }
}

/// One published update.
#[derive(Debug, Clone, Serialize)]
pub struct PublicUpdate {
    /// Stable id.
    pub id: i64,
    /// The status it gave the post.
    pub status: PostStatus,
    /// What it says (markdown).
    pub body: String,
    /// When it was published.
    pub created_at: Timestamp,
    /// When it was last edited.
    pub updated_at: Timestamp,
    /// The time shown for it (the publisher may backdate to when things happened).
    pub display_at: Timestamp,
    /// Components whose status this update changed.
    pub affected_components: Vec<AffectedComponent>,
    /// Whether subscribers were told about it.
    pub notify: bool,
}

/// A component status change an update made.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AffectedComponent {
    /// The component.
    pub component_id: i64,
    /// Its name at the time.
    pub name: String,
    /// Its status before.
    pub old_status: ComponentStatus,
    /// Its status after.
    pub new_status: ComponentStatus,
}

impl PublicStatus {
    /// Components that are shown now (hiding those only shown when degraded while they are not).
    pub fn visible_components(&self) -> impl Iterator<Item = &PublicComponent> {
        self.components
            .iter()
            .filter(|c| !c.only_show_if_degraded || c.status != ComponentStatus::Operational)
    }

    /// Unresolved incidents, newest first.
    pub fn unresolved(&self) -> impl Iterator<Item = &PublicPost> {
        self.incidents.iter().filter(|p| p.is_open())
    }

    /// Maintenances in progress (or being verified).
    pub fn active_maintenances(&self) -> impl Iterator<Item = &PublicPost> {
        self.maintenances
            .iter()
            .filter(|p| matches!(p.status, PostStatus::InProgress | PostStatus::Verifying))
    }

    /// Maintenances announced and not started.
    pub fn upcoming_maintenances(&self) -> impl Iterator<Item = &PublicPost> {
        self.maintenances
            .iter()
            .filter(|p| p.status == PostStatus::Scheduled)
    }

    /// A component's name by id.
    pub fn component_name(&self, id: i64) -> Option<&str> {
        self.components
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.as_str())
    }
}
