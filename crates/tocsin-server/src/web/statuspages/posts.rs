//! A page's posts: the open and recent incidents and maintenances, and the
//! forms that publish a new incident or announce a maintenance. A template
//! fills a new post's words without script: `?template=ID` draws the form
//! again, prefilled. Maintenance times are typed in the page's time zone.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{DurationRound, TimeDelta};
use chrono_tz::Tz;
use serde::Deserialize;
use tocsin_core::change::Patch;
use tocsin_core::incident::format_number;
use tocsin_core::status_page::records::{Component, Post, StatusPage, Template as PostTemplate};
use tocsin_core::status_page::{PostKind, PostStatus};
use tocsin_store::WebSession;

use super::form::{
    chosen_id, component_status_opts, component_statuses, impact_opts, invalid, post_status_opts,
    posted, refused, whole_number, Badge, Fill, Opt, Refused, COMPONENT,
};
use crate::api::incidents::incident_id;
use crate::api::path_id;
use crate::api::status_posts::{
    publish_incident as api_publish_incident, publish_maintenance as api_publish_maintenance,
    template as page_template, IncidentPostRequest, MaintenanceRequest,
};
use crate::state::AppState;
use crate::web::alerts::{local_input, local_time};
use crate::web::common::{page, see_other, Chrome, WebResult};
use crate::web::session::{field, fields, AsResponder, AsViewer, CsrfPairs};
use crate::ApiError;

/// How many closed posts the list shows.
const RECENT: i64 = 50;

/// The page's zone (a stored zone this build does not know reads as UTC).
pub(super) fn zone(p: &StatusPage) -> Tz {
    p.time_zone.parse().unwrap_or(Tz::UTC)
}

pub(super) struct PostRow {
    id: i64,
    kind: &'static str,
    name: String,
    badge: Badge,
    impact: &'static str,
    when: String,
    updated: String,
    incident: Option<String>,
}

#[derive(Template)]
#[template(path = "statuspage_posts.html")]
struct ListPage {
    chrome: Chrome,
    page_id: i64,
    page_name: String,
    slug: String,
    open: Vec<PostRow>,
    recent: Vec<PostRow>,
}

fn row(chrome: &Chrome, p: &Post) -> PostRow {
    let when = match (p.kind, p.scheduled_for, p.scheduled_until) {
        (PostKind::Maintenance, Some(f), Some(u)) => {
            format!("{} – {}", chrome.time(&f), chrome.time(&u))
        }
        _ => chrome.time(&p.started_at),
    };
    PostRow {
        id: p.id,
        kind: p.kind.as_str(),
        name: p.name.clone(),
        badge: Badge::post(p.status),
        impact: p.impact.as_str(),
        when,
        updated: chrome.time_opt(&p.updates.first().map(|u| u.display_at)),
        incident: p.incident_id.map(format_number),
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let p = state.store.status_page(id).await?;
    let chrome = Chrome::new(&who.0, "statuspages", format!("{}: posts", p.name));
    let open = state
        .store
        .posts(id, None, true, super::list::OPEN_POSTS)
        .await?;
    let recent = state.store.posts(id, None, false, RECENT).await?;
    Ok(page(&ListPage {
        page_id: id,
        page_name: p.name,
        slug: p.slug,
        open: open.iter().map(|x| row(&chrome, x)).collect(),
        recent: recent
            .iter()
            .filter(|x| x.status.is_closed())
            .map(|x| row(&chrome, x))
            .collect(),
        chrome,
    }))
}

/// A component with the select that gives it a status in a post.
pub(crate) struct ComponentChoice {
    pub id: i64,
    pub name: String,
    pub group: String,
    pub current: Badge,
    pub opts: Vec<Opt>,
}

/// Each component of the page with a status select (`component.<id>`), set
/// from `chosen` (component id → status), blank meaning `blank`.
pub(crate) fn component_choices(
    components: &[Component],
    groups: &HashMap<i64, String>,
    chosen: &HashMap<i64, String>,
    blank: &str,
) -> Vec<ComponentChoice> {
    components
        .iter()
        .map(|c| ComponentChoice {
            id: c.id,
            name: c.name.clone(),
            group: c
                .group_id
                .and_then(|g| groups.get(&g).cloned())
                .unwrap_or_default(),
            current: Badge::component(c.status),
            opts: component_status_opts(chosen.get(&c.id).map_or("", String::as_str), Some(blank)),
        })
        .collect()
}

/// The statuses a form posted for components, by id.
pub(crate) fn posted_choices(pairs: &[(String, String)]) -> HashMap<i64, String> {
    pairs
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(COMPONENT)?.parse().ok()?, v.clone())))
        .collect()
}

pub(crate) async fn group_names(state: &AppState, page_id: i64) -> WebResult<HashMap<i64, String>> {
    Ok(state
        .store
        .component_groups(page_id)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect())
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct TemplateQuery {
    template: Option<String>,
}

/// The page's templates of `kind` as choices, `selected` chosen.
fn template_opts(templates: &[PostTemplate], kind: PostKind, selected: Option<i64>) -> Vec<Opt> {
    templates
        .iter()
        .filter(|t| t.kind == kind)
        .map(|t| Opt::new(t.id.to_string(), t.name.clone(), Some(t.id) == selected))
        .collect()
}

/// The template `?template=` names, checked as the API checks a `template_id`.
async fn chosen_template(
    state: &AppState,
    page_id: i64,
    kind: PostKind,
    q: &TemplateQuery,
) -> WebResult<Option<PostTemplate>> {
    let id = match q.template.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(chosen_id("template", t)?),
    };
    Ok(page_template(state, page_id, kind, id).await?)
}

// ---- a new incident ----

#[derive(Template)]
#[template(path = "statuspage_incident_new.html")]
struct IncidentPage {
    chrome: Chrome,
    page_id: i64,
    page_name: String,
    templates: Vec<Opt>,
    name: String,
    body: String,
    statuses: Vec<Opt>,
    impacts: Vec<Opt>,
    components: Vec<ComponentChoice>,
    incident: String,
    notify: bool,
    error: Option<String>,
}

async fn incident_form(
    state: &AppState,
    who: &WebSession,
    p: &StatusPage,
    template: Option<&PostTemplate>,
    typed: Option<&[(String, String)]>,
    refusal: Option<Refused>,
) -> WebResult<Response> {
    let chrome = Chrome::new(who, "statuspages", format!("{}: new incident", p.name));
    let templates = state.store.status_templates(p.id).await?;
    let components = state.store.components(p.id).await?;
    let fill = Fill(typed);
    let chosen = typed.map(posted_choices).unwrap_or_default();
    let status = template
        .and_then(|t| t.status)
        .map_or("investigating", PostStatus::as_str);
    let body = IncidentPage {
        page_id: p.id,
        page_name: p.name.clone(),
        templates: template_opts(&templates, PostKind::Incident, template.map(|t| t.id)),
        name: fill.text("name", template.map_or("", |t| &t.title)),
        body: fill.text("body", template.map_or("", |t| &t.body)),
        statuses: post_status_opts(PostKind::Incident, &fill.text("status", status)),
        impacts: impact_opts(&fill.text("impact", ""), "from the components"),
        components: component_choices(
            &components,
            &group_names(state, p.id).await?,
            &chosen,
            "not affected",
        ),
        incident: fill.text("incident", ""),
        notify: fill.checked("notify", true),
        error: refusal.as_ref().map(|r| r.message.clone()),
        chrome,
    };
    let mut resp = page(&body);
    if let Some(r) = refusal {
        *resp.status_mut() = r.status;
    }
    Ok(resp)
}

pub(super) async fn new_incident(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    Query(q): Query<TemplateQuery>,
) -> WebResult<Response> {
    let p = state.store.status_page(path_id("id", &id)?).await?;
    let t = chosen_template(&state, p.id, PostKind::Incident, &q).await?;
    incident_form(&state, &who.0, &p, t.as_ref(), None, None).await
}

/// The internal incident a form names (`INC-42` or `42`); blank is none.
pub(super) fn internal_incident(key: &str, v: &str) -> Result<Option<i64>, ApiError> {
    match v.trim() {
        "" => Ok(None),
        t => incident_id(t)
            .map(Some)
            .map_err(|_| invalid(key, format!("`{t}` is not an incident number like INC-42"))),
    }
}

/// The posted form as the API's request: only what the form holds.
pub(crate) fn incident_request(
    pairs: &[(String, String)],
    incident: Option<i64>,
) -> Result<IncidentPostRequest, ApiError> {
    let chosen = |k: &str| {
        field(pairs, k)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(IncidentPostRequest {
        name: Some(posted(pairs, "name").unwrap_or_default()),
        status: chosen("status"),
        impact: chosen("impact"),
        body: Some(posted(pairs, "body").unwrap_or_default()),
        components: component_statuses(pairs)?,
        incident_id: incident,
        template_id: None,
        notify: field(pairs, "notify").is_some(),
        display_at: None,
    })
}

pub(super) async fn publish_incident(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let p = state.store.status_page(path_id("id", &id)?).await?;
    let request = internal_incident("incident", field(&pairs, "incident").unwrap_or(""))
        .and_then(|inc| incident_request(&pairs, inc));
    let result = match request {
        Ok(r) => api_publish_incident(&state, &who.actor(), p.id, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(post) => Ok(see_other(format!("/status-posts/{}", post.id))),
        Err(e) => {
            let refusal = refused(e)?;
            incident_form(&state, &who.0, &p, None, Some(&pairs), Some(refusal)).await
        }
    }
}

// ---- a new maintenance ----

#[derive(Template)]
#[template(path = "statuspage_maintenance_new.html")]
struct MaintenancePage {
    chrome: Chrome,
    page_id: i64,
    page_name: String,
    tz: String,
    templates: Vec<Opt>,
    name: String,
    body: String,
    statuses: Vec<Opt>,
    scheduled_for: String,
    scheduled_until: String,
    components: Vec<Opt>,
    auto_start: bool,
    auto_complete: bool,
    remind_minutes: String,
    notify: bool,
    error: Option<String>,
}

async fn maintenance_form(
    state: &AppState,
    who: &WebSession,
    p: &StatusPage,
    template: Option<&PostTemplate>,
    typed: Option<&[(String, String)]>,
    refusal: Option<Refused>,
) -> WebResult<Response> {
    let chrome = Chrome::new(
        who,
        "statuspages",
        format!("{}: schedule maintenance", p.name),
    );
    let tz = zone(p);
    let templates = state.store.status_templates(p.id).await?;
    let components = state.store.components(p.id).await?;
    let fill = Fill(typed);
    // A suggestion: tomorrow at the next full hour, for two hours.
    let start = (state.now() + TimeDelta::days(1))
        .duration_trunc(TimeDelta::hours(1))
        .unwrap_or_else(|_| state.now())
        + TimeDelta::hours(1);
    let chosen = fill.values("component_ids", Vec::new());
    let status = template
        .and_then(|t| t.status)
        .filter(|s| matches!(s, PostStatus::Scheduled | PostStatus::InProgress))
        .map_or("scheduled", PostStatus::as_str);
    let status = fill.text("status", status);
    let body = MaintenancePage {
        page_id: p.id,
        page_name: p.name.clone(),
        tz: tz.name().to_string(),
        templates: template_opts(&templates, PostKind::Maintenance, template.map(|t| t.id)),
        name: fill.text("name", template.map_or("", |t| &t.title)),
        body: fill.text("body", template.map_or("", |t| &t.body)),
        statuses: [PostStatus::Scheduled, PostStatus::InProgress]
            .iter()
            .map(|s| Opt::new(s.as_str(), s.label(), s.as_str() == status))
            .collect(),
        scheduled_for: fill.text("scheduled_for", &local_input(tz, start)),
        scheduled_until: fill.text(
            "scheduled_until",
            &local_input(tz, start + TimeDelta::hours(2)),
        ),
        components: components
            .iter()
            .map(|c| {
                let v = c.id.to_string();
                let sel = chosen.contains(&v);
                Opt::new(v, c.name.clone(), sel)
            })
            .collect(),
        auto_start: fill.checked("auto_start", true),
        auto_complete: fill.checked("auto_complete", true),
        remind_minutes: fill.text("remind_minutes", "60"),
        notify: fill.checked("notify", true),
        error: refusal.as_ref().map(|r| r.message.clone()),
        chrome,
    };
    let mut resp = page(&body);
    if let Some(r) = refusal {
        *resp.status_mut() = r.status;
    }
    Ok(resp)
}

pub(super) async fn new_maintenance(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    Query(q): Query<TemplateQuery>,
) -> WebResult<Response> {
    let p = state.store.status_page(path_id("id", &id)?).await?;
    let t = chosen_template(&state, p.id, PostKind::Maintenance, &q).await?;
    maintenance_form(&state, &who.0, &p, t.as_ref(), None, None).await
}

/// A `datetime-local` value typed in the page's zone `tz`, as UTC; required.
pub(super) fn page_time(
    tz: Tz,
    pairs: &[(String, String)],
    key: &str,
    what: &str,
) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    local_time(tz, key, &field(pairs, key).map(str::to_string))?
        .ok_or_else(|| invalid(key, format!("is required: {what}")))
}

/// The posted form as the API's request; times are read in the page's zone.
fn maintenance_request(tz: Tz, pairs: &[(String, String)]) -> Result<MaintenanceRequest, ApiError> {
    Ok(MaintenanceRequest {
        name: Some(posted(pairs, "name").unwrap_or_default()),
        body: Some(posted(pairs, "body").unwrap_or_default()),
        template_id: None,
        status: field(pairs, "status")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        scheduled_for: page_time(tz, pairs, "scheduled_for", "when the work starts")?,
        scheduled_until: page_time(tz, pairs, "scheduled_until", "when the work ends")?,
        components: fields(pairs, "component_ids")
            .into_iter()
            .map(|v| chosen_id("components", v))
            .collect::<Result<_, _>>()?,
        auto_start: field(pairs, "auto_start").is_some(),
        auto_complete: field(pairs, "auto_complete").is_some(),
        // Blank: no reminder.
        remind_minutes: match whole_number(
            "remind_minutes",
            field(pairs, "remind_minutes").unwrap_or(""),
        )? {
            Some(m) => Patch::Set(m),
            None => Patch::Null,
        },
        notify: field(pairs, "notify").is_some(),
    })
}

pub(super) async fn publish_maintenance(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let p = state.store.status_page(path_id("id", &id)?).await?;
    let result = match maintenance_request(zone(&p), &pairs) {
        Ok(r) => api_publish_maintenance(&state, &who.actor(), p.id, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(post) => Ok(see_other(format!("/status-posts/{}", post.id))),
        Err(e) => {
            let refusal = refused(e)?;
            maintenance_form(&state, &who.0, &p, None, Some(&pairs), Some(refusal)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_times_are_read_in_the_pages_zone_across_a_dst_change() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let pairs = |f: &str, u: &str| {
            vec![
                ("scheduled_for".to_string(), f.to_string()),
                ("scheduled_until".to_string(), u.to_string()),
            ]
        };
        // Clocks go from 02:00 CET to 03:00 CEST on 29 March 2026.
        let r = maintenance_request(tz, &pairs("2026-03-29T01:30", "2026-03-29T03:30")).unwrap();
        assert_eq!(r.scheduled_for.to_rfc3339(), "2026-03-29T00:30:00+00:00");
        assert_eq!(r.scheduled_until.to_rfc3339(), "2026-03-29T01:30:00+00:00");
        match maintenance_request(tz, &pairs("2026-03-29T02:30", "2026-03-29T03:30")) {
            Err(ApiError::Invalid { field, message }) => {
                assert_eq!(field, "scheduled_for");
                assert!(message.contains("Europe/Berlin"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match maintenance_request(tz, &pairs("", "2026-03-29T03:30")) {
            Err(ApiError::Invalid { field, .. }) => assert_eq!(field, "scheduled_for"),
            other => panic!("{other:?}"),
        }
        // Blank reminder: none; the form's boxes as ticked.
        assert_eq!(r.remind_minutes, Patch::Null);
        assert!(!r.auto_start && !r.notify);
    }
}
