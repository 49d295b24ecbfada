//! The Atlassian Statuspage public API (v2) shapes, from a snapshot.
//!
//! Status widgets, monitors and chat integrations written for Statuspage read
//! `/api/v2/summary.json` and its siblings; these documents let them read a
//! Tocsin page unchanged. The field names, JSON types and nullability follow
//! Statuspage's published responses (see
//! `tests/fixtures/statuspage/README.md` for the sources), and a test compares
//! our output's shape against those fixtures.
//!
//! Where Tocsin has no equivalent of a field, it is still sent with its
//! documented type, so strict clients keep decoding: see the comments on the
//! `Update` and `Incident` structs.

use chrono::{DateTime, SecondsFormat};
use chrono_tz::Tz;
use serde::Serialize;
use tocsin_core::status_page::public::{
    PageInfo, PublicComponent, PublicGroup, PublicPost, PublicStatus, PublicUpdate,
};
use tocsin_core::status_page::{ComponentStatus, Impact, PostKind, PostStatus};
use tocsin_core::time::Timestamp;

/// One of the read API's documents, by its path under `/api/v2/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Document {
    /// `summary.json`: status, components, unresolved incidents, open maintenances.
    Summary,
    /// `status.json`: the indicator and its sentence.
    Status,
    /// `components.json`: every component, groups included.
    Components,
    /// `incidents.json`: the snapshot's incidents, newest first.
    Incidents,
    /// `incidents/unresolved.json`.
    UnresolvedIncidents,
    /// `scheduled-maintenances.json`: the snapshot's maintenances.
    ScheduledMaintenances,
    /// `scheduled-maintenances/upcoming.json`: announced, not started.
    UpcomingMaintenances,
    /// `scheduled-maintenances/active.json`: in progress or verifying.
    ActiveMaintenances,
}

impl Document {
    /// Every document, for routing and for the static export.
    pub const ALL: [Document; 8] = [
        Document::Summary,
        Document::Status,
        Document::Components,
        Document::Incidents,
        Document::UnresolvedIncidents,
        Document::ScheduledMaintenances,
        Document::UpcomingMaintenances,
        Document::ActiveMaintenances,
    ];

    /// Its path under `/api/v2/`.
    pub fn path(self) -> &'static str {
        match self {
            Document::Summary => "summary.json",
            Document::Status => "status.json",
            Document::Components => "components.json",
            Document::Incidents => "incidents.json",
            Document::UnresolvedIncidents => "incidents/unresolved.json",
            Document::ScheduledMaintenances => "scheduled-maintenances.json",
            Document::UpcomingMaintenances => "scheduled-maintenances/upcoming.json",
            Document::ActiveMaintenances => "scheduled-maintenances/active.json",
        }
    }

    /// The document at `path` (relative to `/api/v2/`), if there is one.
    pub fn parse(path: &str) -> Option<Document> {
        Self::ALL.into_iter().find(|d| d.path() == path)
    }

    /// The document's body for `s`, ready to serve as `application/json`.
    pub fn render(self, s: &PublicStatus) -> Vec<u8> {
        match self {
            Document::Summary => summary(s),
            Document::Status => status(s),
            Document::Components => components(s),
            Document::Incidents => incidents(s),
            Document::UnresolvedIncidents => unresolved_incidents(s),
            Document::ScheduledMaintenances => scheduled_maintenances(s),
            Document::UpcomingMaintenances => upcoming_maintenances(s),
            Document::ActiveMaintenances => active_maintenances(s),
        }
    }
}

/// `summary.json`: the page, its status, every component, the unresolved
/// incidents and the upcoming or active maintenances.
pub fn summary(s: &PublicStatus) -> Vec<u8> {
    let r = Renderer::new(s);
    let open_maintenances = s.maintenances.iter().filter(|m| m.is_open());
    to_body(&Summary {
        page: r.page(),
        components: r.components(),
        incidents: r.posts(newest_first(s.unresolved())),
        scheduled_maintenances: r.posts(open_maintenances),
        status: r.status(),
    })
}

/// `status.json`: the page and its overall status.
pub fn status(s: &PublicStatus) -> Vec<u8> {
    let r = Renderer::new(s);
    to_body(&StatusDoc {
        page: r.page(),
        status: r.status(),
    })
}

/// `components.json`: the page and every component, groups included.
pub fn components(s: &PublicStatus) -> Vec<u8> {
    let r = Renderer::new(s);
    to_body(&Components {
        page: r.page(),
        components: r.components(),
    })
}

/// `incidents.json`: the snapshot's incidents, newest first.
pub fn incidents(s: &PublicStatus) -> Vec<u8> {
    let r = Renderer::new(s);
    to_body(&Incidents {
        page: r.page(),
        incidents: r.posts(newest_first(s.incidents.iter())),
    })
}

/// `incidents/unresolved.json`: unresolved incidents, newest first.
pub fn unresolved_incidents(s: &PublicStatus) -> Vec<u8> {
    let r = Renderer::new(s);
    to_body(&Incidents {
        page: r.page(),
        incidents: r.posts(newest_first(s.unresolved())),
    })
}

/// `scheduled-maintenances.json`: the snapshot's maintenances, in its order.
pub fn scheduled_maintenances(s: &PublicStatus) -> Vec<u8> {
    maintenances(s, s.maintenances.iter())
}

/// `scheduled-maintenances/upcoming.json`: maintenances not yet started.
pub fn upcoming_maintenances(s: &PublicStatus) -> Vec<u8> {
    maintenances(s, s.upcoming_maintenances())
}

/// `scheduled-maintenances/active.json`: maintenances in progress or verifying.
pub fn active_maintenances(s: &PublicStatus) -> Vec<u8> {
    maintenances(s, s.active_maintenances())
}

fn maintenances<'a>(s: &'a PublicStatus, which: impl Iterator<Item = &'a PublicPost>) -> Vec<u8> {
    let r = Renderer::new(s);
    to_body(&Maintenances {
        page: r.page(),
        scheduled_maintenances: r.posts(which),
    })
}

fn to_body(doc: &impl Serialize) -> Vec<u8> {
    // Only strings, numbers, booleans and string-keyed structs: cannot fail.
    serde_json::to_vec(doc).expect("status documents serialize")
}

/// The snapshot lists open incidents before resolved ones; the API's lists are
/// by time alone, the most recently started first.
fn newest_first<'a>(posts: impl Iterator<Item = &'a PublicPost>) -> Vec<&'a PublicPost> {
    let mut v: Vec<_> = posts.collect();
    v.sort_by_key(|p| std::cmp::Reverse((p.started_at, p.id)));
    v
}

/// Where an incident or maintenance is read on the page: Statuspage's
/// `shortlink`, and the link of its feed entry.
pub(crate) fn post_url(page: &PageInfo, id: i64) -> String {
    format!("{}/incidents/{id}", page.url.trim_end_matches('/'))
}

/// The page's time zone, in which Statuspage writes every time it sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageZone {
    tz: Tz,
    /// Statuspage (Rails) writes `Z` rather than `+00:00` for UTC itself.
    utc: bool,
}

impl PageZone {
    pub(crate) fn of(page: &PageInfo) -> PageZone {
        // The zone was parsed when the page was saved; one this build's tz
        // database does not know must not take the page down, so UTC stands in.
        let tz = page.time_zone.parse::<Tz>().unwrap_or(Tz::UTC);
        let utc = matches!(
            tz.name(),
            "UTC"
                | "Etc/UTC"
                | "UCT"
                | "Etc/UCT"
                | "Universal"
                | "Etc/Universal"
                | "Zulu"
                | "Etc/Zulu"
        );
        PageZone { tz, utc }
    }

    pub(crate) fn local(self, t: Timestamp) -> DateTime<Tz> {
        t.with_timezone(&self.tz)
    }

    /// ISO 8601 with milliseconds and the page's offset:
    /// `2026-03-01T02:00:00.000-08:00`.
    pub(crate) fn iso(self, t: Timestamp) -> String {
        self.local(t)
            .to_rfc3339_opts(SecondsFormat::Millis, self.utc)
    }
}

#[derive(Serialize)]
struct Summary<'a> {
    page: Page<'a>,
    components: Vec<Component<'a>>,
    incidents: Vec<Incident<'a>>,
    scheduled_maintenances: Vec<Incident<'a>>,
    status: Status,
}

#[derive(Serialize)]
struct StatusDoc<'a> {
    page: Page<'a>,
    status: Status,
}

#[derive(Serialize)]
struct Components<'a> {
    page: Page<'a>,
    components: Vec<Component<'a>>,
}

#[derive(Serialize)]
struct Incidents<'a> {
    page: Page<'a>,
    incidents: Vec<Incident<'a>>,
}

#[derive(Serialize)]
struct Maintenances<'a> {
    page: Page<'a>,
    scheduled_maintenances: Vec<Incident<'a>>,
}

#[derive(Serialize)]
struct Page<'a> {
    id: String,
    name: &'a str,
    url: &'a str,
    time_zone: &'a str,
    updated_at: String,
}

#[derive(Serialize)]
struct Status {
    indicator: &'static str,
    description: &'static str,
}

/// A component, or a group shown as one (Statuspage has no separate group
/// object in its read API).
#[derive(Serialize)]
struct Component<'a> {
    id: String,
    name: &'a str,
    status: ComponentStatus,
    created_at: String,
    updated_at: String,
    position: i64,
    description: Option<&'a str>,
    /// Statuspage's name for "show the uptime bars".
    showcase: bool,
    /// The day uptime starts counting; `null` for groups, as Statuspage sends.
    start_date: Option<String>,
    group_id: Option<String>,
    page_id: String,
    group: bool,
    only_show_if_degraded: bool,
    /// Only groups carry the key at all, as in Statuspage's responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Vec<String>>,
}

/// An incident or a maintenance (Statuspage calls both incidents).
#[derive(Serialize)]
struct Incident<'a> {
    id: String,
    name: &'a str,
    status: PostStatus,
    created_at: String,
    updated_at: String,
    monitoring_at: Option<String>,
    resolved_at: Option<String>,
    impact: Impact,
    /// Statuspage's stspg.io short link; ours is the post's own page.
    shortlink: String,
    started_at: String,
    page_id: String,
    incident_updates: Vec<Update<'a>>,
    components: Vec<Component<'a>>,
    /// Maintenances only: incidents do not carry the keys.
    #[serde(flatten)]
    schedule: Option<Schedule>,
}

#[derive(Serialize)]
struct Schedule {
    scheduled_for: Option<String>,
    scheduled_until: Option<String>,
}

#[derive(Serialize)]
struct Update<'a> {
    id: String,
    status: PostStatus,
    body: &'a str,
    incident_id: String,
    created_at: String,
    updated_at: String,
    display_at: String,
    /// Always a list: Statuspage sends `null` when an update changed no
    /// component, and `[]` reads the same to every client that copes with that.
    affected_components: Vec<Affected<'a>>,
    /// The snapshot does not say whether subscribers were told of this update
    /// (only published data is in it); most updates are sent, so `true`.
    deliver_notifications: bool,
    /// Tocsin posts nothing to Twitter: always `null`.
    custom_tweet: Option<&'static str>,
    /// Tocsin posts nothing to Twitter: always `null`.
    tweet_id: Option<&'static str>,
}

#[derive(Serialize)]
struct Affected<'a> {
    /// The component's id, under Statuspage's name for it here.
    code: String,
    name: &'a str,
    old_status: ComponentStatus,
    new_status: ComponentStatus,
}

/// Builds the shared parts of the documents for one snapshot.
struct Renderer<'a> {
    s: &'a PublicStatus,
    zone: PageZone,
    page_id: String,
}

/// Groups and components are numbered apart in Tocsin but share one list (and
/// one id space) in Statuspage, so group ids carry a prefix.
fn group_ref(id: i64) -> String {
    format!("g{id}")
}

fn none_if_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl<'a> Renderer<'a> {
    fn new(s: &'a PublicStatus) -> Self {
        Renderer {
            s,
            zone: PageZone::of(&s.page),
            page_id: s.page.id.to_string(),
        }
    }

    fn page(&self) -> Page<'a> {
        let p = &self.s.page;
        Page {
            id: self.page_id.clone(),
            name: &p.name,
            url: &p.url,
            time_zone: &p.time_zone,
            updated_at: self.zone.iso(p.updated_at),
        }
    }

    fn status(&self) -> Status {
        Status {
            indicator: self.s.indicator.as_str(),
            description: self.s.indicator.description(),
        }
    }

    fn group_of(&self, c: &PublicComponent) -> Option<&'a PublicGroup> {
        c.group_id
            .and_then(|g| self.s.groups.iter().find(|grp| grp.id == g))
    }

    /// Every component in page order: groups and ungrouped components by
    /// position, each group followed by its children in theirs. Components
    /// only shown when degraded are listed too; the flag tells clients.
    fn components(&self) -> Vec<Component<'a>> {
        enum Top<'b> {
            Group(&'b PublicGroup),
            Alone(&'b PublicComponent),
        }
        let mut top: Vec<Top<'a>> = self.s.groups.iter().map(Top::Group).collect();
        top.extend(
            self.s
                .components
                .iter()
                .filter(|c| self.group_of(c).is_none())
                .map(Top::Alone),
        );
        // Stable: equal positions keep groups first, then the snapshot's order.
        top.sort_by_key(|t| match t {
            Top::Group(g) => g.position,
            Top::Alone(c) => c.position,
        });
        let mut out = Vec::with_capacity(self.s.groups.len() + self.s.components.len());
        for t in top {
            match t {
                Top::Alone(c) => out.push(self.component(c)),
                Top::Group(g) => {
                    let children: Vec<&PublicComponent> = self
                        .s
                        .components
                        .iter()
                        .filter(|c| c.group_id == Some(g.id))
                        .collect();
                    out.push(self.group(g, &children));
                    out.extend(children.into_iter().map(|c| self.component(c)));
                }
            }
        }
        out
    }

    fn group(&self, g: &'a PublicGroup, children: &[&PublicComponent]) -> Component<'a> {
        // Statuspage shows a group as its worst child.
        let status = children
            .iter()
            .fold(ComponentStatus::Operational, |w, c| w.worst(c.status));
        Component {
            id: group_ref(g.id),
            name: &g.name,
            status,
            created_at: self.zone.iso(g.created_at),
            updated_at: self.zone.iso(g.updated_at),
            position: g.position,
            description: none_if_empty(&g.description),
            showcase: false,
            start_date: None,
            group_id: None,
            page_id: self.page_id.clone(),
            group: true,
            only_show_if_degraded: false,
            components: Some(children.iter().map(|c| c.id.to_string()).collect()),
        }
    }

    fn component(&self, c: &'a PublicComponent) -> Component<'a> {
        Component {
            id: c.id.to_string(),
            name: &c.name,
            status: c.status,
            created_at: self.zone.iso(c.created_at),
            updated_at: self.zone.iso(c.updated_at),
            position: c.position,
            description: none_if_empty(&c.description),
            showcase: c.show_uptime,
            // Uptime counts from the day the component was made (uptime.rs),
            // which is what Statuspage's start_date means.
            start_date: Some(
                self.zone
                    .local(c.created_at)
                    .date_naive()
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            // A group missing from the snapshot would leave a dangling id.
            group_id: self.group_of(c).map(|g| group_ref(g.id)),
            page_id: self.page_id.clone(),
            group: false,
            only_show_if_degraded: c.only_show_if_degraded,
            components: None,
        }
    }

    fn posts<I>(&self, posts: I) -> Vec<Incident<'a>>
    where
        I: IntoIterator<Item = &'a PublicPost>,
    {
        posts.into_iter().map(|p| self.post(p)).collect()
    }

    fn post(&self, p: &'a PublicPost) -> Incident<'a> {
        let id = p.id.to_string();
        let z = self.zone;
        Incident {
            name: &p.name,
            status: p.status,
            created_at: z.iso(p.created_at),
            updated_at: z.iso(p.updated_at),
            monitoring_at: p.monitoring_at.map(|t| z.iso(t)),
            resolved_at: p.resolved_at.map(|t| z.iso(t)),
            impact: p.impact,
            shortlink: post_url(&self.s.page, p.id),
            started_at: z.iso(p.started_at),
            page_id: self.page_id.clone(),
            incident_updates: p.updates.iter().map(|u| self.update(u, &id)).collect(),
            components: p
                .component_ids
                .iter()
                .filter_map(|cid| self.s.components.iter().find(|c| c.id == *cid))
                .map(|c| self.component(c))
                .collect(),
            schedule: (p.kind == PostKind::Maintenance).then(|| Schedule {
                scheduled_for: p.scheduled_for.map(|t| z.iso(t)),
                scheduled_until: p.scheduled_until.map(|t| z.iso(t)),
            }),
            id,
        }
    }

    fn update(&self, u: &'a PublicUpdate, incident_id: &str) -> Update<'a> {
        let z = self.zone;
        Update {
            id: u.id.to_string(),
            status: u.status,
            body: &u.body,
            incident_id: incident_id.to_string(),
            created_at: z.iso(u.created_at),
            updated_at: z.iso(u.updated_at),
            display_at: z.iso(u.display_at),
            affected_components: u
                .affected_components
                .iter()
                .map(|a| Affected {
                    code: a.component_id.to_string(),
                    name: &a.name,
                    old_status: a.old_status,
                    new_status: a.new_status,
                })
                .collect(),
            deliver_notifications: u.notify,
            custom_tweet: None,
            tweet_id: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::btree_map::Entry;
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::NaiveDate;
    use serde_json::Value;
    use tocsin_core::status_page::public::{AffectedComponent, PublicUpdate};
    use tocsin_core::status_page::{Indicator, Visibility};

    use super::*;

    pub(crate) fn at(s: &str) -> Timestamp {
        s.parse().expect("a test time")
    }

    fn component(
        id: i64,
        group_id: Option<i64>,
        name: &str,
        position: i64,
        status: ComponentStatus,
    ) -> PublicComponent {
        PublicComponent {
            id,
            group_id,
            name: name.into(),
            description: if id == 11 {
                "Public REST API".into()
            } else {
                String::new()
            },
            position,
            status,
            show_uptime: id != 21,
            only_show_if_degraded: id == 21,
            uptime: vec![],
            uptime_percent: None,
            // 21:00 on 31 January in Los Angeles.
            created_at: at("2026-02-01T05:00:00Z"),
            updated_at: at("2026-03-01T10:00:00Z"),
        }
    }

    fn group(id: i64, name: &str, description: &str, position: i64) -> PublicGroup {
        PublicGroup {
            id,
            name: name.into(),
            description: description.into(),
            position,
            created_at: at("2025-06-01T00:00:00Z"),
            updated_at: at("2026-03-01T10:00:00Z"),
        }
    }

    fn changed(
        id: i64,
        name: &str,
        old: ComponentStatus,
        new: ComponentStatus,
    ) -> AffectedComponent {
        AffectedComponent {
            component_id: id,
            name: name.into(),
            old_status: old,
            new_status: new,
        }
    }

    fn update(
        id: i64,
        status: PostStatus,
        body: &str,
        when: &str,
        affected: Vec<AffectedComponent>,
    ) -> PublicUpdate {
        PublicUpdate {
            id,
            status,
            body: body.into(),
            created_at: at(when),
            updated_at: at(when),
            display_at: at(when),
            affected_components: affected,
            notify: true,
        }
    }

    /// A post whose dates follow from its updates (given newest first).
    fn post(
        id: i64,
        kind: PostKind,
        name: &str,
        impact: Impact,
        ids: &[i64],
        updates: Vec<PublicUpdate>,
    ) -> PublicPost {
        let newest = updates.first().expect("a post has updates");
        let oldest = updates.last().expect("a post has updates");
        let closed = newest.status.is_closed().then_some(newest.display_at);
        PublicPost {
            id,
            kind,
            name: name.into(),
            status: newest.status,
            impact,
            created_at: oldest.created_at,
            updated_at: newest.updated_at,
            monitoring_at: updates
                .iter()
                .rev()
                .find(|u| u.status == PostStatus::Monitoring)
                .map(|u| u.display_at),
            resolved_at: closed,
            started_at: oldest.display_at,
            scheduled_for: None,
            scheduled_until: None,
            component_ids: ids.to_vec(),
            updates,
        }
    }

    fn scheduled(mut p: PublicPost, from: &str, until: &str) -> PublicPost {
        p.scheduled_for = Some(at(from));
        p.scheduled_until = Some(at(until));
        p.started_at = at(from);
        p
    }

    /// A page in Los Angeles (UTC-8 until 8 March 2026) with two groups, an
    /// ungrouped component, two unresolved incidents and a resolved one, and an
    /// active, an upcoming and a completed maintenance.
    pub(crate) fn sample() -> PublicStatus {
        use ComponentStatus::*;
        use PostStatus::*;
        let incident = PostKind::Incident;
        let maintenance = PostKind::Maintenance;
        let components = vec![
            component(11, Some(1), "API", 1, PartialOutage),
            component(12, Some(1), "Web app", 2, DegradedPerformance),
            component(13, Some(1), "Workers", 3, UnderMaintenance),
            component(21, None, "Status emails", 2, Operational),
            component(31, Some(2), "EU", 1, Operational),
            component(32, Some(2), "US", 2, Operational),
        ];
        let incidents = vec![
            post(
                101,
                incident,
                "Elevated API errors",
                Impact::Major,
                &[11, 12],
                vec![
                    update(
                        1012,
                        Identified,
                        "A bad deploy; **rolling back**.",
                        "2026-03-01T10:00:00Z",
                        vec![changed(
                            11,
                            "Platform - API",
                            DegradedPerformance,
                            PartialOutage,
                        )],
                    ),
                    update(
                        1011,
                        Investigating,
                        "Some requests fail.",
                        "2026-03-01T09:00:00Z",
                        vec![
                            changed(11, "Platform - API", Operational, DegradedPerformance),
                            changed(12, "Platform - Web app", Operational, DegradedPerformance),
                        ],
                    ),
                ],
            ),
            post(
                99,
                incident,
                "Webhook delays",
                Impact::Minor,
                &[],
                vec![update(
                    991,
                    Investigating,
                    "Webhooks arrive late.",
                    "2026-02-10T12:00:00Z",
                    vec![],
                )],
            ),
            post(
                100,
                incident,
                "Slow logins",
                Impact::Minor,
                &[12],
                vec![
                    update(
                        1003,
                        Resolved,
                        "All good.",
                        "2026-02-20T18:00:00Z",
                        vec![changed(
                            12,
                            "Platform - Web app",
                            DegradedPerformance,
                            Operational,
                        )],
                    ),
                    update(
                        1002,
                        Monitoring,
                        "Fixed; watching.",
                        "2026-02-20T17:00:00Z",
                        vec![],
                    ),
                    update(
                        1001,
                        Investigating,
                        "Logins are slow.",
                        "2026-02-20T16:00:00Z",
                        vec![changed(
                            12,
                            "Platform - Web app",
                            Operational,
                            DegradedPerformance,
                        )],
                    ),
                ],
            ),
        ];
        let maintenances = vec![
            scheduled(
                post(
                    202,
                    maintenance,
                    "Worker migration",
                    Impact::Maintenance,
                    &[13],
                    vec![
                        update(
                            2022,
                            InProgress,
                            "Started.",
                            "2026-03-01T08:00:00Z",
                            vec![changed(
                                13,
                                "Platform - Workers",
                                Operational,
                                UnderMaintenance,
                            )],
                        ),
                        update(
                            2021,
                            Scheduled,
                            "Workers move hosts.",
                            "2026-02-25T18:00:00Z",
                            vec![],
                        ),
                    ],
                ),
                "2026-03-01T08:00:00Z",
                "2026-03-01T12:00:00Z",
            ),
            scheduled(
                post(
                    201,
                    maintenance,
                    "Database upgrade",
                    Impact::Maintenance,
                    &[11, 21],
                    vec![update(
                        2011,
                        Scheduled,
                        "The API pauses briefly.",
                        "2026-02-27T18:00:00Z",
                        vec![],
                    )],
                ),
                "2026-03-05T10:00:00Z",
                "2026-03-05T12:00:00Z",
            ),
            scheduled(
                post(
                    200,
                    maintenance,
                    "Network maintenance",
                    Impact::Maintenance,
                    &[31],
                    vec![
                        update(2003, Completed, "Done.", "2026-02-15T08:00:00Z", vec![]),
                        update(
                            2002,
                            InProgress,
                            "Started.",
                            "2026-02-15T06:00:00Z",
                            vec![changed(31, "Regions - EU", Operational, UnderMaintenance)],
                        ),
                        update(
                            2001,
                            Scheduled,
                            "Switches are replaced.",
                            "2026-02-10T18:00:00Z",
                            vec![],
                        ),
                    ],
                ),
                "2026-02-15T06:00:00Z",
                "2026-02-15T08:00:00Z",
            ),
        ];
        let indicator = Indicator::overall(
            components.iter().map(|c| c.status),
            incidents.iter().filter(|p| p.is_open()).map(|p| p.impact),
            true,
        );
        PublicStatus {
            page: PageInfo {
                id: 7,
                slug: "acme".into(),
                name: "Acme Cloud".into(),
                description: "How Acme's services are doing.".into(),
                visibility: Visibility::Public,
                url: "https://status.acme.example".into(),
                domain: Some("status.acme.example".into()),
                time_zone: "America/Los_Angeles".into(),
                brand_color: "#0055aa".into(),
                brand_text_color: "#ffffff".into(),
                support_url: None,
                logo: None,
                updated_at: at("2026-03-01T10:00:00Z"),
            },
            groups: vec![
                group(1, "Platform", "Core services", 1),
                group(2, "Regions", "", 3),
            ],
            components,
            incidents,
            maintenances,
            indicator,
            generated_at: at("2026-03-01T10:30:00Z"),
        }
    }

    fn doc(d: Document, s: &PublicStatus) -> Value {
        serde_json::from_slice(&d.render(s)).expect("our JSON parses")
    }

    fn ids(list: &Value) -> Vec<&str> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|x| x["id"].as_str().expect("ids are strings"))
            .collect()
    }

    /// What a value is, for comparing shapes: its JSON type, with strings told
    /// apart by the formats clients parse (times with milliseconds, dates).
    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
                let b = s.as_bytes();
                let millis = b.len() > 23
                    && b[19] == b'.'
                    && b[20..23].iter().all(u8::is_ascii_digit)
                    && !b[23].is_ascii_digit();
                if millis {
                    "date-time with milliseconds"
                } else {
                    "date-time"
                }
            }
            Value::String(s)
                if s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() =>
            {
                "date"
            }
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// A document's shape: the kinds seen at every path (`$.incidents[].id`;
    /// array elements merged), and for every object path the keys all its
    /// objects have and the keys any of them has.
    #[derive(Default)]
    struct Shape {
        kinds: BTreeMap<String, BTreeSet<&'static str>>,
        keys: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    }

    impl Shape {
        fn of(v: &Value) -> Shape {
            let mut s = Shape::default();
            s.walk("$".into(), v);
            s
        }

        fn walk(&mut self, path: String, v: &Value) {
            self.kinds.entry(path.clone()).or_default().insert(kind(v));
            match v {
                Value::Array(items) => items.iter().for_each(|x| self.walk(format!("{path}[]"), x)),
                Value::Object(map) => {
                    let here: BTreeSet<String> = map.keys().cloned().collect();
                    match self.keys.entry(path.clone()) {
                        Entry::Vacant(e) => {
                            e.insert((here.clone(), here));
                        }
                        Entry::Occupied(mut e) => {
                            let (all, any) = e.get_mut();
                            all.retain(|k| here.contains(k));
                            any.extend(here);
                        }
                    }
                    map.iter()
                        .for_each(|(k, x)| self.walk(format!("{path}.{k}"), x));
                }
                _ => {}
            }
        }
    }

    /// What would break a client written against `documented`: a documented
    /// path we never send, a kind it does not expect there (`null` included,
    /// so only documented-nullable fields may be null), a key its objects
    /// always have that some of ours lack, or a path it does not know.
    fn incompatibilities(documented: &Shape, ours: &Shape) -> Vec<String> {
        let mut out = Vec::new();
        for (path, kinds) in &documented.kinds {
            match ours.kinds.get(path) {
                None => out.push(format!("{path}: missing (documented as {kinds:?})")),
                Some(sent) => out.extend(
                    sent.difference(kinds)
                        .map(|k| format!("{path}: we send {k}, documented {kinds:?}")),
                ),
            }
        }
        out.extend(
            ours.kinds
                .keys()
                .filter(|p| !documented.kinds.contains_key(*p))
                .map(|p| format!("{p}: not documented")),
        );
        for (path, (always, _)) in &documented.keys {
            if let Some((ours_always, _)) = ours.keys.get(path) {
                out.extend(
                    always
                        .difference(ours_always)
                        .map(|k| format!("{path}.{k}: missing from some of our objects")),
                );
            }
        }
        out
    }

    const FIXTURES: [(Document, &str); 5] = [
        (
            Document::Summary,
            include_str!("../../tests/fixtures/statuspage/summary.json"),
        ),
        (
            Document::Status,
            include_str!("../../tests/fixtures/statuspage/status.json"),
        ),
        (
            Document::Components,
            include_str!("../../tests/fixtures/statuspage/components.json"),
        ),
        (
            Document::Incidents,
            include_str!("../../tests/fixtures/statuspage/incidents.json"),
        ),
        (
            Document::ScheduledMaintenances,
            include_str!("../../tests/fixtures/statuspage/scheduled-maintenances.json"),
        ),
    ];

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture parses")
    }

    #[test]
    fn documents_have_statuspages_shape() {
        let s = sample();
        for (d, text) in FIXTURES {
            let problems = incompatibilities(&Shape::of(&fixture(text)), &Shape::of(&doc(d, &s)));
            assert!(
                problems.is_empty(),
                "{}:\n{}",
                d.path(),
                problems.join("\n")
            );
        }
    }

    #[test]
    fn the_shape_check_catches_drift() {
        let (_, text) = FIXTURES[3];
        let documented = Shape::of(&fixture(text));
        assert!(incompatibilities(&documented, &documented).is_empty());
        let drifted = |change: fn(&mut Value)| {
            let mut v = fixture(text);
            change(&mut v);
            incompatibilities(&documented, &Shape::of(&v))
        };
        assert_eq!(
            drifted(|v| v["page"]["id"] = 7.into()),
            ["$.page.id: we send integer, documented {\"string\"}"]
        );
        assert_eq!(
            drifted(|v| v["incidents"][0]["incident_updates"][0]["body"] = Value::Null),
            ["$.incidents[].incident_updates[].body: we send null, documented {\"string\"}"]
        );
        assert_eq!(
            drifted(|v| v["incidents"][1]["created_at"] = "2024-12-03T14:15:02Z".into()),
            ["$.incidents[].created_at: we send date-time, documented {\"date-time with milliseconds\"}"]
        );
        let missing = drifted(|v| {
            v["incidents"][0]
                .as_object_mut()
                .unwrap()
                .remove("shortlink");
        });
        assert_eq!(
            missing,
            ["$.incidents[].shortlink: missing from some of our objects"]
        );
        let extra = drifted(|v| v["incidents"][0]["postmortem"] = "".into());
        assert_eq!(extra, ["$.incidents[].postmortem: not documented"]);
    }

    #[test]
    fn status_is_the_indicator_and_its_sentence() {
        let v = doc(Document::Status, &sample());
        assert_eq!(v["status"]["indicator"], "major");
        assert_eq!(v["status"]["description"], "Partial System Outage");
        assert_eq!(doc(Document::Summary, &sample())["status"], v["status"]);
    }

    #[test]
    fn groups_are_components_with_their_worst_childs_status() {
        let v = doc(Document::Components, &sample());
        let list = &v["components"];
        // Page order: groups and the ungrouped component by position, each
        // group followed by its children.
        assert_eq!(ids(list), ["g1", "11", "12", "13", "21", "g2", "31", "32"]);
        let platform = &list[0];
        assert_eq!(platform["group"], true);
        assert_eq!(
            platform["components"],
            serde_json::json!(["11", "12", "13"])
        );
        // Partial outage beats degraded performance and maintenance.
        assert_eq!(platform["status"], "partial_outage");
        assert_eq!(list[5]["status"], "operational");
        assert_eq!(list[5]["description"], Value::Null);
        assert_eq!(list[1]["group_id"], "g1");
        assert_eq!(list[1]["group"], false);
        assert_eq!(list[4]["group_id"], Value::Null);
        assert!(
            list[1].get("components").is_none(),
            "only groups list children"
        );
        assert_eq!(list[4]["only_show_if_degraded"], true);
        assert_eq!(list[4]["showcase"], false);
        assert_eq!(list[1]["showcase"], true);
    }

    #[test]
    fn lists_hold_what_their_names_say() {
        let s = sample();
        let summary = doc(Document::Summary, &s);
        assert_eq!(ids(&summary["incidents"]), ["101", "99"]);
        assert_eq!(ids(&summary["scheduled_maintenances"]), ["202", "201"]);
        assert_eq!(ids(&summary["components"]).len(), 8, "hidden ones too");
        // By start alone: the older open incident 99 comes after resolved 100.
        assert_eq!(
            ids(&doc(Document::Incidents, &s)["incidents"]),
            ["101", "100", "99"]
        );
        let unresolved = doc(Document::UnresolvedIncidents, &s);
        assert_eq!(unresolved["incidents"], summary["incidents"]);
        let all = doc(Document::ScheduledMaintenances, &s);
        let all = &all["scheduled_maintenances"];
        assert_eq!(ids(all), ["202", "201", "200"]);
        let upcoming = doc(Document::UpcomingMaintenances, &s);
        assert_eq!(
            upcoming["scheduled_maintenances"],
            serde_json::json!([all[1]])
        );
        let active = doc(Document::ActiveMaintenances, &s);
        assert_eq!(
            active["scheduled_maintenances"],
            serde_json::json!([all[0]])
        );
        assert!(all[0].get("scheduled_for").is_some());
        assert!(summary["incidents"][0].get("scheduled_for").is_none());
    }

    #[test]
    fn times_are_in_the_pages_zone_with_milliseconds() {
        let mut s = sample();
        let v = doc(Document::Incidents, &s);
        assert_eq!(v["page"]["updated_at"], "2026-03-01T02:00:00.000-08:00");
        let first = &v["incidents"][0];
        assert_eq!(first["created_at"], "2026-03-01T01:00:00.000-08:00");
        assert_eq!(
            first["incident_updates"][0]["display_at"],
            "2026-03-01T02:00:00.000-08:00"
        );
        let c = &doc(Document::Components, &s)["components"][1];
        assert_eq!(
            c["start_date"], "2026-01-31",
            "the day it was made, in Los Angeles"
        );
        // After the clocks change the offset follows.
        s.page.updated_at = at("2026-03-09T10:00:00.250Z");
        assert_eq!(
            doc(Document::Status, &s)["page"]["updated_at"],
            "2026-03-09T03:00:00.250-07:00"
        );
        s.page.time_zone = "Etc/UTC".into();
        assert_eq!(
            doc(Document::Status, &s)["page"]["updated_at"],
            "2026-03-09T10:00:00.250Z"
        );
        s.page.time_zone = "Europe/London".into();
        assert_eq!(
            doc(Document::Status, &s)["page"]["updated_at"],
            "2026-03-09T10:00:00.250+00:00"
        );
    }

    #[test]
    fn ids_are_strings_and_links_point_at_the_post() {
        let v = doc(Document::Summary, &sample());
        assert_eq!(v["page"]["id"], "7");
        assert_eq!(v["page"]["time_zone"], "America/Los_Angeles");
        let incident = &v["incidents"][0];
        assert_eq!(incident["page_id"], "7");
        assert_eq!(
            incident["shortlink"],
            "https://status.acme.example/incidents/101"
        );
        assert_eq!(ids(&incident["components"]), ["11", "12"]);
        let update = &incident["incident_updates"][1];
        assert_eq!(update["incident_id"], "101");
        assert_eq!(update["id"], "1011");
        assert_eq!(
            update["affected_components"][1],
            serde_json::json!({
                "code": "12",
                "name": "Platform - Web app",
                "old_status": "operational",
                "new_status": "degraded_performance",
            })
        );
        assert_eq!(update["tweet_id"], Value::Null);
        assert_eq!(v["scheduled_maintenances"][1]["components"][1]["id"], "21");
    }

    #[test]
    fn document_paths_round_trip() {
        for d in Document::ALL {
            assert_eq!(Document::parse(d.path()), Some(d));
        }
        assert_eq!(Document::parse("incidents/resolved.json"), None);
        assert_eq!(Document::parse("../summary.json"), None);
    }
}
