//! `/status-pages/{id}`: one page as its admins keep it — settings and logo,
//! components in their groups with their status (responders move it),
//! templates and subscribers. The forms' handlers are in `settings`,
//! `components` and `extras`; each comes back here, with the refused form
//! filled in as it was posted and its message, or (303) to its section.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use tocsin_core::status_page::records::{
    Component, ComponentGroup, StatusPage, Subscriber, SubscriberKind, Template as PostTemplate,
};
use tocsin_core::status_page::{PostKind, PostStatus, Visibility};
use tocsin_store::WebSession;

use super::form::{component_status_opts, orig_of, Badge, Failed, Fill, Opt, Refused};
use super::list::{overall, visibility_opts};
use crate::api::path_id;
use crate::state::AppState;
use crate::web::common::{page, Chrome, WebResult};
use crate::web::session::AsViewer;

/// The fields the settings form shows, under the API's names.
pub(super) const SETTINGS_FIELDS: &[&str] = &[
    "slug",
    "name",
    "description",
    "visibility",
    "domain",
    "time_zone",
    "brand_color",
    "support_url",
    "allow_subscribers",
];
/// The fields a component's edit form shows.
pub(super) const COMPONENT_FIELDS: &[&str] = &[
    "name",
    "description",
    "group_id",
    "position",
    "show_uptime",
    "only_show_if_degraded",
    "service_ids",
];
/// The fields a group's edit form shows.
pub(super) const GROUP_FIELDS: &[&str] = &["name", "description", "position"];
/// The fields a template's edit form shows.
pub(super) const TEMPLATE_FIELDS: &[&str] = &["name", "title", "body", "status"];

/// A webhook subscriber just added: its secret, on this answer only.
pub(super) struct NewSecret {
    pub address: String,
    pub secret: String,
}

/// What a form's answer shows beyond the page itself.
#[derive(Default)]
pub(super) struct Outcome {
    pub failed: Option<Failed>,
    pub new_secret: Option<NewSecret>,
    /// The subscribers shown start after this id (a page of the list at a time).
    pub subscribers_after: Option<i64>,
}

impl Outcome {
    pub fn failed(form: impl Into<String>, refused: Refused, pairs: Vec<(String, String)>) -> Self {
        Outcome {
            failed: Some(Failed {
                form: form.into(),
                refused,
                pairs,
            }),
            ..Outcome::default()
        }
    }

    fn fill(&self, form: &str) -> Fill<'_> {
        Failed::fill(&self.failed, form)
    }

    fn error(&self, form: &str) -> Option<String> {
        Failed::error(&self.failed, form)
    }
}

pub(super) struct SettingsForm {
    name: String,
    slug: String,
    description: String,
    visibility: Vec<Opt>,
    domain: String,
    time_zone: String,
    brand_color: String,
    support_url: String,
    allow_subscribers: bool,
    orig: String,
    error: Option<String>,
}

/// A component's form (new or edit); `key` prefixes its element ids.
pub(super) struct ComponentForm {
    key: String,
    action: String,
    name: String,
    description: String,
    position: String,
    groups: Vec<Opt>,
    show_uptime: bool,
    only_show_if_degraded: bool,
    services: Vec<Opt>,
    /// The starting status (new components only).
    statuses: Vec<Opt>,
    orig: String,
    error: Option<String>,
}

pub(super) struct ComponentView {
    id: i64,
    name: String,
    description: String,
    badge: Badge,
    services: String,
    hidden_when_operational: bool,
    statuses: Vec<Opt>,
    status_orig: String,
    status_error: Option<String>,
    form: ComponentForm,
}

pub(super) struct GroupForm {
    key: String,
    action: String,
    name: String,
    description: String,
    position: String,
    orig: String,
    error: Option<String>,
}

pub(super) struct GroupView {
    id: i64,
    name: String,
    description: String,
    components: Vec<ComponentView>,
    form: GroupForm,
}

pub(super) struct TemplateForm {
    key: String,
    action: String,
    /// `incident` or `maintenance`: a choice for new templates only.
    kinds: Vec<Opt>,
    name: String,
    title: String,
    body: String,
    /// (kind label, its statuses) for the suggested-status select.
    statuses: Vec<(&'static str, Vec<Opt>)>,
    none_selected: bool,
    orig: String,
    error: Option<String>,
}

pub(super) struct TemplateView {
    id: i64,
    kind: &'static str,
    name: String,
    title: String,
    status: &'static str,
    form: TemplateForm,
}

pub(super) struct SubscriberView {
    id: i64,
    kind: &'static str,
    address: String,
    confirmed: bool,
    components: String,
    since: String,
}

pub(super) struct SubscriberForm {
    webhook: bool,
    address: String,
    components: Vec<Opt>,
    confirmed: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "statuspage_page.html")]
pub(super) struct PageView {
    chrome: Chrome,
    id: i64,
    name: String,
    slug: String,
    internal: bool,
    domain: Option<String>,
    indicator: Badge,
    open_incidents: usize,
    logo: Option<String>,
    logo_error: Option<String>,
    /// A refused form's message and where that form is.
    failed: Option<(String, String)>,
    settings: SettingsForm,
    groups: Vec<GroupView>,
    ungrouped: Vec<ComponentView>,
    new_group: GroupForm,
    new_component: ComponentForm,
    templates: Vec<TemplateView>,
    new_template: TemplateForm,
    subscribers: Vec<SubscriberView>,
    confirmed: i64,
    pending: i64,
    /// The id to show the next subscribers after, when there are more.
    subscribers_next: Option<i64>,
    /// Whether the list shown is not the first of them.
    subscribers_paged: bool,
    new_subscriber: SubscriberForm,
    new_secret: Option<NewSecret>,
}

/// Where each form is on the page.
fn anchor(form: &str) -> String {
    match form {
        "settings" => "settings".into(),
        "logo" => "logo".into(),
        "new-group" | "new-component" => "components".into(),
        "new-template" => "templates".into(),
        "new-subscriber" => "subscribers".into(),
        f if f.starts_with("status-") => f.replacen("status-", "component-", 1),
        f => f.to_string(),
    }
}

/// What a refused form was about, in words: "Component “API”", "New group".
fn form_label(
    form: &str,
    groups: &[ComponentGroup],
    components: &[Component],
    templates: &[PostTemplate],
) -> String {
    let (kind, rest) = form.split_once('-').unwrap_or((form, ""));
    let id: Option<i64> = rest.parse().ok();
    let named = |what: &str, name: Option<&String>| match name {
        Some(n) => format!("{what} “{n}”"),
        None => what.to_string(),
    };
    match kind {
        "settings" => "Settings".into(),
        "logo" => "Logo".into(),
        "new" => format!("New {rest}"),
        "component" | "status" => named(
            "Component",
            components
                .iter()
                .find(|c| Some(c.id) == id)
                .map(|c| &c.name),
        ),
        "group" => named(
            "Group",
            groups.iter().find(|g| Some(g.id) == id).map(|g| &g.name),
        ),
        "template" => named(
            "Template",
            templates.iter().find(|t| Some(t.id) == id).map(|t| &t.name),
        ),
        _ => form.to_string(),
    }
}

fn settings_form(p: &StatusPage, o: &Outcome) -> SettingsForm {
    let fill = o.fill("settings");
    SettingsForm {
        name: fill.text("name", &p.name),
        slug: fill.text("slug", &p.slug),
        description: fill.text("description", &p.description),
        visibility: visibility_opts(&fill.text("visibility", p.visibility.as_str())),
        domain: fill.text("domain", p.domain.as_deref().unwrap_or("")),
        time_zone: fill.text("time_zone", &p.time_zone),
        brand_color: fill.text("brand_color", &p.brand_color),
        support_url: fill.text("support_url", p.support_url.as_deref().unwrap_or("")),
        allow_subscribers: fill.checked("allow_subscribers", p.allow_subscribers),
        orig: fill.orig(orig_of(p, SETTINGS_FIELDS)),
        error: o.error("settings"),
    }
}

fn group_opts(groups: &[ComponentGroup], selected: &str) -> Vec<Opt> {
    std::iter::once(Opt::new("", "No group", selected.is_empty()))
        .chain(groups.iter().map(|g| {
            let v = g.id.to_string();
            let sel = v == selected;
            Opt::new(v, g.name.clone(), sel)
        }))
        .collect()
}

fn service_opts(services: &[(i64, String)], selected: &[String]) -> Vec<Opt> {
    services
        .iter()
        .map(|(id, name)| {
            let v = id.to_string();
            let sel = selected.contains(&v);
            Opt::new(v, name.clone(), sel)
        })
        .collect()
}

fn component_form(
    page_id: i64,
    c: Option<&Component>,
    groups: &[ComponentGroup],
    services: &[(i64, String)],
    o: &Outcome,
) -> ComponentForm {
    let form = c.map_or("new-component".to_string(), |c| {
        format!("component-{}", c.id)
    });
    let fill = o.fill(&form);
    let group = c
        .and_then(|c| c.group_id)
        .map(|g| g.to_string())
        .unwrap_or_default();
    let linked: Vec<String> = c
        .map(|c| c.service_ids.iter().map(i64::to_string).collect())
        .unwrap_or_default();
    ComponentForm {
        key: c.map_or("cnew".to_string(), |c| format!("c{}", c.id)),
        action: match c {
            Some(c) => format!("/status-pages/{page_id}/components/{}", c.id),
            None => format!("/status-pages/{page_id}/components"),
        },
        name: fill.text("name", c.map_or("", |c| &c.name)),
        description: fill.text("description", c.map_or("", |c| &c.description)),
        position: fill.text(
            "position",
            &c.map(|c| c.position.to_string()).unwrap_or_default(),
        ),
        groups: group_opts(groups, &fill.text("group_id", &group)),
        show_uptime: fill.checked("show_uptime", c.is_none_or(|c| c.show_uptime)),
        only_show_if_degraded: fill.checked(
            "only_show_if_degraded",
            c.is_some_and(|c| c.only_show_if_degraded),
        ),
        services: service_opts(services, &fill.values("service_ids", linked)),
        statuses: match c {
            Some(_) => Vec::new(),
            None => component_status_opts(&fill.text("status", "operational"), None),
        },
        orig: match c {
            Some(c) => fill.orig(orig_of(c, COMPONENT_FIELDS)),
            None => String::new(),
        },
        error: o.error(&form),
    }
}

fn component_view(
    page_id: i64,
    c: &Component,
    groups: &[ComponentGroup],
    services: &[(i64, String)],
    o: &Outcome,
) -> ComponentView {
    let quick = format!("status-{}", c.id);
    let fill = o.fill(&quick);
    let names: HashMap<i64, &String> = services.iter().map(|(id, n)| (*id, n)).collect();
    ComponentView {
        id: c.id,
        name: c.name.clone(),
        description: c.description.clone(),
        badge: Badge::component(c.status),
        services: c
            .service_ids
            .iter()
            .filter_map(|s| names.get(s).map(|n| n.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        hidden_when_operational: c.only_show_if_degraded,
        statuses: component_status_opts(&fill.text("status", c.status.as_str()), None),
        status_orig: fill.orig(orig_of(c, &["status"])),
        status_error: o.error(&quick),
        form: component_form(page_id, Some(c), groups, services, o),
    }
}

fn group_form(page_id: i64, g: Option<&ComponentGroup>, o: &Outcome) -> GroupForm {
    let form = g.map_or("new-group".to_string(), |g| format!("group-{}", g.id));
    let fill = o.fill(&form);
    GroupForm {
        key: g.map_or("gnew".to_string(), |g| format!("g{}", g.id)),
        action: match g {
            Some(g) => format!("/status-pages/{page_id}/groups/{}", g.id),
            None => format!("/status-pages/{page_id}/groups"),
        },
        name: fill.text("name", g.map_or("", |g| &g.name)),
        description: fill.text("description", g.map_or("", |g| &g.description)),
        position: fill.text(
            "position",
            &g.map(|g| g.position.to_string()).unwrap_or_default(),
        ),
        orig: match g {
            Some(g) => fill.orig(orig_of(g, GROUP_FIELDS)),
            None => String::new(),
        },
        error: o.error(&form),
    }
}

fn template_form(page_id: i64, t: Option<&PostTemplate>, o: &Outcome) -> TemplateForm {
    let form = t.map_or("new-template".to_string(), |t| format!("template-{}", t.id));
    let fill = o.fill(&form);
    let kind = match t {
        Some(t) => t.kind.as_str().to_string(),
        None => fill.text("kind", "incident"),
    };
    let status = fill.text(
        "status",
        t.and_then(|t| t.status).map_or("", |s| s.as_str()),
    );
    let kinds: Vec<PostKind> = match t {
        Some(t) => vec![t.kind],
        None => vec![PostKind::Incident, PostKind::Maintenance],
    };
    TemplateForm {
        key: t.map_or("tnew".to_string(), |t| format!("t{}", t.id)),
        action: match t {
            Some(t) => format!("/status-pages/{page_id}/templates/{}", t.id),
            None => format!("/status-pages/{page_id}/templates"),
        },
        kinds: [("incident", "Incident"), ("maintenance", "Maintenance")]
            .iter()
            .map(|(v, l)| Opt::new(*v, *l, *v == kind))
            .collect(),
        name: fill.text("name", t.map_or("", |t| &t.name)),
        title: fill.text("title", t.map_or("", |t| &t.title)),
        body: fill.text("body", t.map_or("", |t| &t.body)),
        statuses: kinds
            .into_iter()
            .map(|k| {
                let label = match k {
                    PostKind::Incident => "Incident",
                    PostKind::Maintenance => "Maintenance",
                };
                (label, super::form::post_status_opts(k, &status))
            })
            .collect(),
        none_selected: status.is_empty(),
        orig: match t {
            Some(t) => fill.orig(orig_of(t, TEMPLATE_FIELDS)),
            None => String::new(),
        },
        error: o.error(&form),
    }
}

fn subscriber_view(
    s: &Subscriber,
    names: &HashMap<i64, String>,
    chrome: &Chrome,
) -> SubscriberView {
    SubscriberView {
        id: s.id,
        kind: s.kind.as_str(),
        address: s.address.clone(),
        confirmed: s.confirmed,
        components: if s.component_ids.is_empty() {
            "every component".into()
        } else {
            s.component_ids
                .iter()
                .map(|c| names.get(c).cloned().unwrap_or_else(|| format!("#{c}")))
                .collect::<Vec<_>>()
                .join(", ")
        },
        since: chrome.time(&s.created_at),
    }
}

/// Subscribers listed at a time on the page (the rest a link away).
const SUBSCRIBERS_SHOWN: i64 = 100;

/// The query of a status page's admin page.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct PageQuery {
    /// Show the subscribers after this id.
    subscribers_after: Option<String>,
}

/// The page `id` for `who`, with what a form's answer adds.
pub(super) async fn render(
    state: &AppState,
    who: &WebSession,
    id: i64,
    o: Outcome,
) -> WebResult<Response> {
    let p = state.store.status_page(id).await?;
    let chrome = Chrome::new(who, "statuspages", p.name.clone());
    let (indicator, open_incidents, _) = overall(state, &p).await?;
    let groups = state.store.component_groups(id).await?;
    let components = state.store.components(id).await?;
    let mut services: Vec<(i64, String)> = state
        .store
        .services()
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    services.sort_by(|a, b| a.1.cmp(&b.1));
    let templates = state.store.status_templates(id).await?;
    // Subscribers' addresses are personal data: admins only, as by the API.
    let (mut subscribers, (confirmed, pending)) = if chrome.is_admin {
        (
            state
                .store
                .subscribers(id, o.subscribers_after, SUBSCRIBERS_SHOWN + 1)
                .await?,
            state.store.subscriber_counts(id).await?,
        )
    } else {
        (Vec::new(), (0, 0))
    };
    let subscribers_next = (subscribers.len() as i64 > SUBSCRIBERS_SHOWN).then(|| {
        subscribers.truncate(SUBSCRIBERS_SHOWN as usize);
        subscribers.last().map(|s| s.id).unwrap_or_default()
    });

    let mut by_group: HashMap<Option<i64>, Vec<ComponentView>> = HashMap::new();
    for c in &components {
        let group = c.group_id.filter(|g| groups.iter().any(|x| x.id == *g));
        by_group
            .entry(group)
            .or_default()
            .push(component_view(id, c, &groups, &services, &o));
    }
    let group_views = groups
        .iter()
        .map(|g| GroupView {
            id: g.id,
            name: g.name.clone(),
            description: g.description.clone(),
            components: by_group.remove(&Some(g.id)).unwrap_or_default(),
            form: group_form(id, Some(g), &o),
        })
        .collect();
    let component_names: HashMap<i64, String> =
        components.iter().map(|c| (c.id, c.name.clone())).collect();
    let sub_fill = o.fill("new-subscriber");
    let chosen = sub_fill.values("component_ids", Vec::new());
    let failed_at = o.failed.as_ref().map(|f| {
        let what = form_label(&f.form, &groups, &components, &templates);
        (format!("{what}: {}", f.refused.message), anchor(&f.form))
    });
    let body = PageView {
        id,
        name: p.name.clone(),
        slug: p.slug.clone(),
        internal: p.visibility == Visibility::Internal,
        domain: p.domain.clone(),
        indicator: Badge::indicator(indicator),
        open_incidents,
        logo: p
            .logo
            .as_ref()
            .map(|l| format!("/status-pages/{id}/logo?v={}", l.tag)),
        logo_error: o.error("logo"),
        failed: failed_at,
        settings: settings_form(&p, &o),
        groups: group_views,
        ungrouped: by_group.remove(&None).unwrap_or_default(),
        new_group: group_form(id, None, &o),
        new_component: component_form(id, None, &groups, &services, &o),
        templates: templates
            .iter()
            .map(|t| TemplateView {
                id: t.id,
                kind: t.kind.as_str(),
                name: t.name.clone(),
                title: t.title.clone(),
                status: t.status.map_or("—", PostStatus::label),
                form: template_form(id, Some(t), &o),
            })
            .collect(),
        new_template: template_form(id, None, &o),
        confirmed,
        pending,
        subscribers_next,
        subscribers_paged: o.subscribers_after.is_some(),
        subscribers: subscribers
            .iter()
            .map(|s| subscriber_view(s, &component_names, &chrome))
            .collect(),
        new_subscriber: SubscriberForm {
            webhook: sub_fill.text("kind", "email") == SubscriberKind::Webhook.as_str(),
            address: sub_fill.text("address", ""),
            components: components
                .iter()
                .map(|c| {
                    let v = c.id.to_string();
                    let sel = chosen.contains(&v);
                    Opt::new(v, c.name.clone(), sel)
                })
                .collect(),
            confirmed: sub_fill.checked("confirmed", false),
            error: o.error("new-subscriber"),
        },
        new_secret: o.new_secret,
        chrome,
    };
    let status = match (&o.failed, &body.new_secret) {
        (Some(f), _) => Some(f.refused.status),
        (None, Some(_)) => Some(StatusCode::CREATED),
        _ => None,
    };
    let mut resp = page(&body);
    if let Some(s) = status {
        *resp.status_mut() = s;
    }
    Ok(resp)
}

pub(super) async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> WebResult<Response> {
    let o = Outcome {
        subscribers_after: crate::api::opt_i64(
            "subscribers_after",
            q.subscribers_after.as_deref(),
        )?,
        ..Outcome::default()
    };
    render(&state, &who.0, path_id("id", &id)?, o).await
}
