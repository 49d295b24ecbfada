//! What the public HTML shows, as plain values for the `status_*.html`
//! templates (which escape every one of them; markdown goes through the
//! UI's safe renderer first), built from a [`PublicStatus`] alone.

use std::collections::BTreeMap;

use askama::Template;
use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};
use tocsin_core::status_page::public::{PublicComponent, PublicPost, PublicStatus};
use tocsin_core::status_page::uptime::format_percent;
use tocsin_core::status_page::{ComponentStatus, PostKind, PostStatus};

use super::format::{self, day_label, hex_colour, indicator_icon, status_icon, when};
use crate::web::markdown;

/// Days of past incidents the page lists, today included.
const PAST_DAYS: i64 = 14;

/// A page as the templates need it: its snapshot and the links every document shares.
pub(crate) struct Site<'a> {
    pub snap: &'a PublicStatus,
    pub tz: Tz,
    /// Where "Subscribe" points; `None`: the page takes no subscribers.
    subscribe: Option<String>,
    /// The logo's file name and tag, relative to the page folder.
    logo: Option<String>,
    theme_v: String,
}

impl<'a> Site<'a> {
    pub fn new(
        snap: &'a PublicStatus,
        base_url: &str,
        allow_subscribers: bool,
        logo_ext: Option<&str>,
    ) -> Site<'a> {
        // The form needs the live server: an absolute link keeps it working
        // from a static export hosted elsewhere; without a known base URL,
        // the page's own relative address does.
        let base = base_url.trim_end_matches('/');
        let subscribe = allow_subscribers.then(|| {
            if base.is_empty() {
                "subscribe".to_string()
            } else {
                format!("{base}/status/{}/subscribe", snap.page.slug)
            }
        });
        let logo = match (logo_ext, &snap.page.logo) {
            (Some(ext), Some(l)) => Some(format!("logo.{ext}?v={}", l.tag)),
            _ => None,
        };
        Site {
            snap,
            tz: snap.page.time_zone.parse().unwrap_or(Tz::UTC),
            subscribe,
            logo,
            theme_v: hex::encode(&Sha256::digest(theme(snap).as_bytes())[..5]),
        }
    }

    fn head(&self, title: String, root: &'static str) -> Head {
        let p = &self.snap.page;
        Head {
            title,
            root,
            home: if root.is_empty() { "./" } else { root },
            css_v: super::pages::css_version(),
            theme_v: self.theme_v.clone(),
            name: p.name.clone(),
            logo: self.logo.as_ref().map(|l| format!("{root}{l}")),
            support_url: p
                .support_url
                .clone()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
            subscribe: self.subscribe.as_ref().map(|s| {
                if s.contains("://") {
                    s.clone()
                } else {
                    format!("{root}{s}")
                }
            }),
        }
    }
}

/// The frame of every document: `root` leads from the document's folder back
/// to the page's folder (`""` or `"../"`).
pub(crate) struct Head {
    title: String,
    root: &'static str,
    home: &'static str,
    css_v: &'static str,
    theme_v: String,
    name: String,
    logo: Option<String>,
    support_url: Option<String>,
    subscribe: Option<String>,
}

/// A status as a class (colour), a shape and a word.
pub(crate) struct StatusView {
    class: &'static str,
    icon: &'static str,
    label: &'static str,
}

fn status(s: ComponentStatus) -> StatusView {
    StatusView {
        class: s.as_str(),
        icon: status_icon(s),
        label: s.label(),
    }
}

pub(crate) struct ComponentView {
    name: String,
    description: String,
    status: StatusView,
    uptime: Option<UptimeView>,
}

pub(crate) struct UptimeView {
    days: Vec<DayView>,
    percent: String,
}

pub(crate) struct DayView {
    class: &'static str,
    label: String,
}

pub(crate) enum Row {
    Component(ComponentView),
    Group {
        name: String,
        description: String,
        status: StatusView,
        children: Vec<ComponentView>,
    },
}

pub(crate) struct UpdateView {
    status: &'static str,
    body: String,
    at_iso: String,
    at: String,
    changes: Vec<String>,
}

pub(crate) struct PostView {
    name: String,
    href: String,
    kind: &'static str,
    impact: &'static str,
    status: &'static str,
    window: Option<String>,
    started: String,
    components: String,
    updates: Vec<UpdateView>,
}

pub(crate) struct DayPosts {
    date: String,
    posts: Vec<PostView>,
}

#[derive(Template)]
#[template(path = "status_page.html")]
struct PageTemplate {
    head: Head,
    indicator_class: &'static str,
    indicator_icon: &'static str,
    indicator: &'static str,
    description: String,
    active: Vec<PostView>,
    in_progress: Vec<PostView>,
    upcoming: Vec<PostView>,
    rows: Vec<Row>,
    past: Vec<DayPosts>,
}

#[derive(Template)]
#[template(path = "status_incident.html")]
struct IncidentTemplate {
    head: Head,
    post: PostView,
}

#[derive(Template)]
#[template(path = "status_history.html")]
struct HistoryTemplate {
    head: Head,
    months: Vec<DayPosts>,
}

/// The page itself (`index.html`).
pub(crate) fn page(site: &Site) -> Result<String, askama::Error> {
    let s = site.snap;
    let posts = |it: &mut dyn Iterator<Item = &PublicPost>| -> Vec<PostView> {
        it.map(|p| post(site, p, "")).collect()
    };
    PageTemplate {
        head: site.head(s.page.name.clone(), ""),
        indicator_class: s.indicator.as_str(),
        indicator_icon: indicator_icon(s.indicator),
        indicator: s.indicator.description(),
        description: markdown::render(&s.page.description),
        active: posts(&mut s.unresolved()),
        in_progress: posts(&mut s.active_maintenances()),
        upcoming: posts(&mut s.upcoming_maintenances()),
        rows: rows(s),
        past: past(site),
    }
    .render()
}

/// One incident or maintenance with all its updates (`incidents/<id>.html`).
pub(crate) fn incident(site: &Site, p: &PublicPost) -> Result<String, askama::Error> {
    IncidentTemplate {
        head: site.head(format!("{} · {}", p.name, site.snap.page.name), "../"),
        post: post(site, p, "../"),
    }
    .render()
}

/// Every incident and maintenance of the snapshot by month (`history.html`).
pub(crate) fn history(site: &Site) -> Result<String, askama::Error> {
    let mut months: BTreeMap<(i32, u32), Vec<&PublicPost>> = BTreeMap::new();
    for p in site.snap.incidents.iter().chain(&site.snap.maintenances) {
        let d = p.started_at.with_timezone(&site.tz);
        months.entry((d.year(), d.month())).or_default().push(p);
    }
    let months = months
        .into_iter()
        .rev()
        .map(|((y, m), mut ps)| {
            ps.sort_by_key(|p| std::cmp::Reverse((p.started_at, p.id)));
            let first = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default();
            DayPosts {
                date: first.format("%B %Y").to_string(),
                posts: ps.into_iter().map(|p| post(site, p, "")).collect(),
            }
        })
        .collect();
    HistoryTemplate {
        head: site.head(format!("History · {}", site.snap.page.name), ""),
        months,
    }
    .render()
}

/// The page's colours as custom properties (`theme.css`): a stylesheet, since
/// the pages' policy allows no inline style.
pub(crate) fn theme(s: &PublicStatus) -> String {
    let brand = hex_colour(&s.page.brand_color).unwrap_or("#1f6feb");
    let text = hex_colour(&s.page.brand_text_color).unwrap_or("#ffffff");
    format!(":root {{ --brand: {brand}; --brand-text: {text}; }}\n")
}

fn post(site: &Site, p: &PublicPost, root: &str) -> PostView {
    let s = site.snap;
    let tz = site.tz;
    let window = match (p.scheduled_for, p.scheduled_until) {
        (Some(from), Some(until)) => Some(format!("{} – {}", when(from, tz), when(until, tz))),
        _ => None,
    };
    PostView {
        name: p.name.clone(),
        href: format!("{root}incidents/{}.html", p.id),
        kind: match p.kind {
            PostKind::Incident => "Incident",
            PostKind::Maintenance => "Scheduled maintenance",
        },
        impact: p.impact.as_str(),
        status: p.status.label(),
        window,
        started: when(p.started_at, tz),
        components: p
            .component_ids
            .iter()
            .filter_map(|id| s.component_name(*id))
            .collect::<Vec<_>>()
            .join(", "),
        updates: p
            .updates
            .iter()
            .map(|u| UpdateView {
                status: u.status.label(),
                body: markdown::render(&u.body),
                at_iso: format::iso(u.display_at),
                at: when(u.display_at, tz),
                changes: u
                    .affected_components
                    .iter()
                    .map(|a| {
                        format!(
                            "{}: {} → {}",
                            a.name,
                            a.old_status.label(),
                            a.new_status.label()
                        )
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Whether the page reads differently a minute later with nothing changed.
/// No template shows a relative time ("5 minutes ago"): every time is a
/// date and clock time, and the feeds and the JSON carry only stored times.
/// What moves with the clock is the uptime of a shown component: today's bar
/// says how long it has been degraded or down (it grows while the component
/// is not operational), and the 90-day percentage divides the downtime by
/// the time observed, which grows all day (so it moves whenever the window
/// holds any downtime). Everything else — the bars' days, the past days'
/// incidents — changes at the page's midnight, which the cache handles.
pub(crate) fn ages_with_time(s: &PublicStatus) -> bool {
    s.visible_components().any(|c| {
        c.show_uptime
            && (c.status != ComponentStatus::Operational
                || c.uptime.iter().any(|d| d.downtime_secs() > 0.0))
    })
}

fn component(c: &PublicComponent) -> ComponentView {
    let uptime = c.show_uptime.then(|| UptimeView {
        days: c
            .uptime
            .iter()
            .map(|d| DayView {
                class: d.worst.map(ComponentStatus::as_str).unwrap_or("no_data"),
                label: day_label(d),
            })
            .collect(),
        percent: match c.uptime_percent {
            Some(p) => format!("{}% uptime", format_percent(p)),
            None => "No data".into(),
        },
    });
    ComponentView {
        name: c.name.clone(),
        description: c.description.clone(),
        status: status(c.status),
        uptime,
    }
}

/// Ungrouped components and groups (each with its visible children and their
/// worst status), in page order; a group with nothing to show is left out.
fn rows(s: &PublicStatus) -> Vec<Row> {
    let visible: Vec<&PublicComponent> = s.visible_components().collect();
    let grouped = |c: &PublicComponent| {
        c.group_id
            .is_some_and(|g| s.groups.iter().any(|gr| gr.id == g))
    };
    let mut rows: Vec<(i64, Row)> = visible
        .iter()
        .filter(|c| !grouped(c))
        .map(|c| (c.position, Row::Component(component(c))))
        .collect();
    for g in &s.groups {
        let children: Vec<&PublicComponent> = visible
            .iter()
            .copied()
            .filter(|c| c.group_id == Some(g.id))
            .collect();
        let Some(worst) = children.iter().map(|c| c.status).reduce(|a, b| a.worst(b)) else {
            continue;
        };
        rows.push((
            g.position,
            Row::Group {
                name: g.name.clone(),
                description: g.description.clone(),
                status: status(worst),
                children: children.into_iter().map(component).collect(),
            },
        ));
    }
    rows.sort_by_key(|(position, _)| *position);
    rows.into_iter().map(|(_, r)| r).collect()
}

/// The last [`PAST_DAYS`] days, newest first, each with what started that day
/// (announced maintenances that have not started are listed above, not here).
fn past(site: &Site) -> Vec<DayPosts> {
    let s = site.snap;
    let today = s.generated_at.with_timezone(&site.tz).date_naive();
    (0..PAST_DAYS)
        .map(|back| {
            let day = today - Duration::days(back);
            let mut posts: Vec<&PublicPost> = s
                .incidents
                .iter()
                .chain(&s.maintenances)
                .filter(|p| p.status != PostStatus::Scheduled)
                .filter(|p| p.started_at.with_timezone(&site.tz).date_naive() == day)
                .collect();
            posts.sort_by_key(|p| std::cmp::Reverse((p.started_at, p.id)));
            DayPosts {
                date: day.format("%-d %b %Y").to_string(),
                posts: posts.into_iter().map(|p| post(site, p, "")).collect(),
            }
        })
        .collect()
}
