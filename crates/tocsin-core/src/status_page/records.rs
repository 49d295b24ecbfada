//! Status pages as the people running them see them (the admin API and UI):
//! settings, components with their linked services, posts with every update,
//! templates and subscribers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::public::{AffectedComponent, LogoInfo};
use super::{ComponentStatus, Impact, PostKind, PostStatus, Visibility};
use chrono::{DateTime, Utc};

/// A status page's settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusPage {
    /// Stable id.
    pub id: i64,
    /// URL slug: the page is at `/status/<slug>`.
    pub slug: String,
    /// Name shown as the heading.
    pub name: String,
    /// A line under the heading (markdown).
    pub description: String,
    /// `public` (anyone) or `internal` (signed-in users only).
    pub visibility: Visibility,
    /// Its own host name; requests with this `Host` are served the page at `/`.
    pub domain: Option<String>,
    /// IANA time zone its days and times are shown in.
    pub time_zone: String,
    /// Brand colour of the header, `#rrggbb`.
    pub brand_color: String,
    /// Where "Contact support" points.
    pub support_url: Option<String>,
    /// Whether readers may subscribe by email.
    pub allow_subscribers: bool,
    /// The uploaded logo, if any.
    #[schema(value_type = Option<Object>)]
    pub logo: Option<LogoInfo>,
    /// Changes whenever anything on the page does.
    pub version: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When its settings last changed.
    pub updated_at: DateTime<Utc>,
}

/// A group of components.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComponentGroup {
    /// Stable id.
    pub id: i64,
    /// The page.
    pub page_id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Order on the page.
    pub position: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A component.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Component {
    /// Stable id.
    pub id: i64,
    /// The page.
    pub page_id: i64,
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
    /// Whether the page shows its 90-day uptime bars.
    pub show_uptime: bool,
    /// Shown only while not operational.
    pub only_show_if_degraded: bool,
    /// Services whose incidents propose a status for it.
    pub service_ids: Vec<i64>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One stretch of a component's status history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusPeriod {
    /// The status held.
    pub status: ComponentStatus,
    /// From when.
    pub started_at: DateTime<Utc>,
    /// Until when; `null` while it lasts.
    pub ended_at: Option<DateTime<Utc>>,
}

/// A published incident or scheduled maintenance with all its updates.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Post {
    /// Stable id.
    pub id: i64,
    /// The page.
    pub page_id: i64,
    /// `incident` or `maintenance`.
    pub kind: PostKind,
    /// The internal incident it is about, if any (never shown publicly).
    pub incident_id: Option<i64>,
    /// Title as published.
    pub name: String,
    /// Status from its latest update.
    pub status: PostStatus,
    /// How much it hurts.
    pub impact: Impact,
    /// When it started (publication for incidents, the start for maintenances).
    pub started_at: DateTime<Utc>,
    /// When it first moved to monitoring.
    pub monitoring_at: Option<DateTime<Utc>>,
    /// When it was resolved or completed.
    pub resolved_at: Option<DateTime<Utc>>,
    /// A maintenance's planned start.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// A maintenance's planned end.
    pub scheduled_until: Option<DateTime<Utc>>,
    /// Start the maintenance by itself at `scheduled_for`.
    pub auto_start: bool,
    /// Complete the maintenance by itself at `scheduled_until`.
    pub auto_complete: bool,
    /// Minutes before the start subscribers are reminded; `null`: no reminder.
    pub remind_minutes: Option<i64>,
    /// Whether automatic updates (maintenance start, end, reminder) notify subscribers.
    pub notify: bool,
    /// Components it affects.
    pub component_ids: Vec<i64>,
    /// Updates, newest first.
    pub updates: Vec<Update>,
    /// Who published it.
    pub created_by: Option<i64>,
    /// When it was published.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One update of a post.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Update {
    /// Stable id.
    pub id: i64,
    /// The post.
    pub post_id: i64,
    /// The status it gave the post.
    pub status: PostStatus,
    /// What it says (markdown).
    pub body: String,
    /// Component status changes it made.
    #[schema(value_type = Vec<Object>)]
    pub affected_components: Vec<AffectedComponent>,
    /// Whether subscribers were told.
    pub notify: bool,
    /// The time shown for it.
    pub display_at: DateTime<Utc>,
    /// Who wrote it (`null`: Tocsin itself, e.g. a maintenance starting).
    pub created_by: Option<i64>,
    /// When it was published.
    pub created_at: DateTime<Utc>,
    /// When it was last edited.
    pub updated_at: DateTime<Utc>,
}

/// Wording kept for a common message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Template {
    /// Stable id.
    pub id: i64,
    /// The page.
    pub page_id: i64,
    /// For incidents or maintenances.
    pub kind: PostKind,
    /// Name to pick it by.
    pub name: String,
    /// Title it suggests.
    pub title: String,
    /// Body it suggests (markdown).
    pub body: String,
    /// Status it suggests, if any.
    pub status: Option<PostStatus>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// How a subscriber is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberKind {
    /// Email, after confirming (double opt-in).
    Email,
    /// A signed JSON POST to a URL.
    Webhook,
}

impl SubscriberKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberKind::Email => "email",
            SubscriberKind::Webhook => "webhook",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<SubscriberKind> {
        match s {
            "email" => Some(SubscriberKind::Email),
            "webhook" => Some(SubscriberKind::Webhook),
            _ => None,
        }
    }
}

/// A subscriber.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Subscriber {
    /// Stable id.
    pub id: i64,
    /// The page.
    pub page_id: i64,
    /// Email or webhook.
    pub kind: SubscriberKind,
    /// The email address or URL.
    pub address: String,
    /// Whether it confirmed (always for webhooks).
    pub confirmed: bool,
    /// When it confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The components it follows; empty: every one.
    pub component_ids: Vec<i64>,
    /// When it subscribed.
    pub created_at: DateTime<Utc>,
}
