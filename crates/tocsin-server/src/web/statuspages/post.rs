//! `/status-posts/{id}`: one incident or maintenance with its updates, and
//! the forms responders use on it — a new update (a status of the post's
//! kind, words, component changes), a correction to the post (only what the
//! form changed) or to an update's words — and deletion (admins).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono_tz::Tz;
use tocsin_core::change::Patch;
use tocsin_core::incident::format_number;
use tocsin_core::status_page::records::Post;
use tocsin_core::status_page::{Impact, PostKind};
use tocsin_store::WebSession;

use super::form::{
    chosen_id, component_statuses, impact_opts, post_status_opts, posted, refused, whole_number,
    Badge, Failed, Fill, Opt, Refused, Shown,
};
use super::posts::{
    component_choices, group_names, internal_incident, page_time, posted_choices, zone,
    ComponentChoice,
};
use super::settings::Empty;
use crate::api::path_id;
use crate::api::status_posts::{update_post, PostPatch};
use crate::api::status_updates::{
    add_update as api_add_update, edit_update, UpdatePatch, UpdateRequest,
};
use crate::state::AppState;
use crate::web::alerts::local_input;
use crate::web::common::{page, see_other, Chrome, WebResult};
use crate::web::markdown;
use crate::web::session::{field, fields, AsAdmin, AsResponder, AsViewer, CsrfForm, CsrfPairs};
use crate::ApiError;

/// The fields the edit form shows, under the API's names.
const POST_FIELDS: &[&str] = &[
    "name",
    "impact",
    "incident_id",
    "scheduled_for",
    "scheduled_until",
    "auto_start",
    "auto_complete",
    "remind_minutes",
    "notify",
    "component_ids",
];

struct UpdateView {
    id: i64,
    badge: Badge,
    when: String,
    html: String,
    body: String,
    changes: Vec<(String, Badge, Badge)>,
    notified: bool,
    by: String,
    error: Option<String>,
}

struct EditForm {
    name: String,
    impacts: Vec<Opt>,
    incident: String,
    scheduled_for: String,
    scheduled_until: String,
    auto_start: bool,
    auto_complete: bool,
    remind_minutes: String,
    notify: bool,
    components: Vec<Opt>,
    orig: String,
    error: Option<String>,
}

struct UpdateForm {
    statuses: Vec<Opt>,
    body: String,
    components: Vec<ComponentChoice>,
    notify: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "statuspage_post.html")]
struct PostPage {
    chrome: Chrome,
    id: i64,
    page_id: i64,
    page_name: String,
    slug: String,
    tz: String,
    maintenance: bool,
    name: String,
    badge: Badge,
    impact: &'static str,
    incident: Option<String>,
    started: String,
    monitoring: String,
    resolved: String,
    window: Option<String>,
    automatic: String,
    remind: String,
    components: Vec<(String, Badge)>,
    updates: Vec<UpdateView>,
    update_form: UpdateForm,
    edit: EditForm,
    failed: Option<String>,
}

fn edit_form(post: &Post, tz: Tz, fill: Fill<'_>, all: &[(i64, String)]) -> EditForm {
    let linked: Vec<String> = post.component_ids.iter().map(i64::to_string).collect();
    let chosen = fill.values("component_ids", linked);
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| local_input(tz, t)).unwrap_or_default()
    };
    EditForm {
        name: fill.text("name", &post.name),
        impacts: impact_opts(&fill.text("impact", post.impact.as_str()), "as it is"),
        incident: fill.text(
            "incident",
            &post.incident_id.map(format_number).unwrap_or_default(),
        ),
        scheduled_for: fill.text("scheduled_for", &time(post.scheduled_for)),
        scheduled_until: fill.text("scheduled_until", &time(post.scheduled_until)),
        auto_start: fill.checked("auto_start", post.auto_start),
        auto_complete: fill.checked("auto_complete", post.auto_complete),
        remind_minutes: fill.text(
            "remind_minutes",
            &post
                .remind_minutes
                .map(|m| m.to_string())
                .unwrap_or_default(),
        ),
        notify: fill.checked("notify", post.notify),
        components: all
            .iter()
            .map(|(id, name)| {
                let v = id.to_string();
                let sel = chosen.contains(&v);
                Opt::new(v, name.clone(), sel)
            })
            .collect(),
        orig: fill.orig(super::form::orig_of(post, POST_FIELDS)),
        error: None,
    }
}

async fn render(
    state: &AppState,
    who: &WebSession,
    id: i64,
    failed: Option<Failed>,
) -> WebResult<Response> {
    let post = state.store.post(id).await?;
    let p = state.store.status_page(post.page_id).await?;
    let tz = zone(&p);
    let chrome = Chrome::new(who, "statuspages", post.name.clone());
    let components = state.store.components(p.id).await?;
    let all: Vec<(i64, String)> = components.iter().map(|c| (c.id, c.name.clone())).collect();
    let users: HashMap<i64, String> = state
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let fill = |form: &str| Failed::fill(&failed, form);
    let error = |form: &str| Failed::error(&failed, form);
    let mut edit = edit_form(&post, tz, fill("edit"), &all);
    edit.error = error("edit");
    let typed_update = fill("update");
    let chosen = typed_update.0.map(posted_choices).unwrap_or_default();
    let update_form = UpdateForm {
        statuses: post_status_opts(
            post.kind,
            &typed_update.text("status", post.status.as_str()),
        ),
        body: typed_update.text("body", ""),
        components: component_choices(
            &components,
            &group_names(state, p.id).await?,
            &chosen,
            "no change",
        ),
        notify: typed_update.checked("notify", true),
        error: error("update"),
    };
    let updates = post
        .updates
        .iter()
        .map(|u| {
            let key = format!("update-{}", u.id);
            UpdateView {
                id: u.id,
                badge: Badge::post(u.status),
                when: chrome.time(&u.display_at),
                html: markdown::render(&u.body),
                body: fill(&key).text("body", &u.body),
                changes: u
                    .affected_components
                    .iter()
                    .map(|a| {
                        (
                            a.name.clone(),
                            Badge::component(a.old_status),
                            Badge::component(a.new_status),
                        )
                    })
                    .collect(),
                notified: u.notify,
                by: match u.created_by {
                    Some(uid) => users
                        .get(&uid)
                        .cloned()
                        .unwrap_or_else(|| format!("user {uid}")),
                    None => "Tocsin (automatic)".into(),
                },
                error: error(&key),
            }
        })
        .collect();
    let status_of: HashMap<i64, _> = components.iter().map(|c| (c.id, c.status)).collect();
    let maintenance = post.kind == PostKind::Maintenance;
    let body = PostPage {
        id,
        page_id: p.id,
        page_name: p.name.clone(),
        slug: p.slug.clone(),
        tz: tz.name().to_string(),
        maintenance,
        name: post.name.clone(),
        badge: Badge::post(post.status),
        impact: post.impact.as_str(),
        incident: post.incident_id.map(format_number),
        started: chrome.time(&post.started_at),
        monitoring: chrome.time_opt(&post.monitoring_at),
        resolved: chrome.time_opt(&post.resolved_at),
        window: match (post.scheduled_for, post.scheduled_until) {
            (Some(f), Some(u)) => Some(format!(
                "{} – {} ({}); in the page's zone {} – {} ({})",
                chrome.time(&f),
                chrome.time(&u),
                chrome.tz_name(),
                f.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                u.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                tz.name()
            )),
            _ => None,
        },
        automatic: match (post.auto_start, post.auto_complete) {
            (true, true) => "starts and completes by itself",
            (true, false) => "starts by itself; completed by hand",
            (false, true) => "started by hand; completes by itself",
            (false, false) => "started and completed by hand",
        }
        .into(),
        remind: match post.remind_minutes {
            Some(m) => format!("{m} minutes before"),
            None => "no reminder".into(),
        },
        components: post
            .component_ids
            .iter()
            .filter_map(|c| {
                let name = all.iter().find(|(id, _)| id == c)?.1.clone();
                Some((name, Badge::component(*status_of.get(c)?)))
            })
            .collect(),
        updates,
        update_form,
        edit,
        failed: failed.as_ref().map(|f| f.refused.message.clone()),
        chrome,
    };
    let status = failed.map(|f| f.refused.status);
    let mut resp = page(&body);
    if let Some(s) = status {
        *resp.status_mut() = s;
    }
    Ok(resp)
}

async fn refused_form(
    state: &AppState,
    who: &WebSession,
    id: i64,
    form: impl Into<String>,
    e: ApiError,
    pairs: Vec<(String, String)>,
) -> WebResult<Response> {
    let refused: Refused = refused(e)?;
    let failed = Failed {
        form: form.into(),
        refused,
        pairs,
    };
    render(state, who, id, Some(failed)).await
}

pub(super) async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    render(&state, &who.0, path_id("id", &id)?, None).await
}

fn update_request(pairs: &[(String, String)]) -> Result<UpdateRequest, ApiError> {
    Ok(UpdateRequest {
        status: field(pairs, "status").unwrap_or("").to_string(),
        body: posted(pairs, "body").unwrap_or_default(),
        components: component_statuses(pairs)?,
        notify: field(pairs, "notify").is_some(),
        display_at: None,
        name: None,
        impact: None,
    })
}

pub(super) async fn add_update(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let result = match update_request(&pairs) {
        Ok(r) => api_add_update(&state, &who.actor(), id, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(format!("/status-posts/{id}#updates"))),
        Err(e) => refused_form(&state, &who.0, id, "update", e, pairs).await,
    }
}

/// What the edit form changed, against what it showed; `None` when nothing.
fn post_patch(
    pairs: &[(String, String)],
    post: &Post,
    tz: Tz,
) -> Result<Option<PostPatch>, ApiError> {
    let shown = Shown::of(pairs, post)?;
    let mut p = PostPatch::default();
    let mut changed = false;
    if let Some(n) = posted(pairs, "name").map(|n| n.trim().to_string()) {
        if shown.differs("name", &n) {
            p.name = Some(n);
            changed = true;
        }
    }
    if let Some(v) = field(pairs, "incident") {
        let inc = internal_incident("incident", v)?;
        if shown.differs("incident_id", &inc) {
            p.incident_id = inc.map_or(Patch::Null, Patch::Set);
            changed = true;
        }
    }
    match post.kind {
        PostKind::Incident => {
            if let Some(i) = field(pairs, "impact").filter(|i| !i.is_empty()) {
                let i = Impact::parse("impact", i)?;
                if shown.differs("impact", &i) {
                    p.impact = Some(i.as_str().to_string());
                    changed = true;
                }
            }
        }
        PostKind::Maintenance => {
            // Times are compared as the form shows them (to the minute, in
            // the page's zone), so an untouched field never moves a time.
            for (key, slot, what) in [
                (
                    "scheduled_for",
                    &mut p.scheduled_for,
                    "when the work starts",
                ),
                (
                    "scheduled_until",
                    &mut p.scheduled_until,
                    "when the work ends",
                ),
            ] {
                if field(pairs, key).is_some() {
                    let t = page_time(tz, pairs, key, what)?;
                    let was = shown
                        .text(key)
                        .parse::<chrono::DateTime<chrono::Utc>>()
                        .ok()
                        .map(|w| local_input(tz, w));
                    if was.as_deref() != Some(local_input(tz, t).as_str()) {
                        *slot = Some(t);
                        changed = true;
                    }
                }
            }
            for (key, slot) in [
                ("auto_start", &mut p.auto_start),
                ("auto_complete", &mut p.auto_complete),
                ("notify", &mut p.notify),
            ] {
                if let Some(on) = shown.checkbox(pairs, key) {
                    if shown.differs(key, &on) {
                        *slot = Some(on);
                        changed = true;
                    }
                }
            }
            if let Some(v) = field(pairs, "remind_minutes") {
                let m = whole_number("remind_minutes", v)?;
                if shown.differs("remind_minutes", &m) {
                    p.remind_minutes = m.map_or(Patch::Null, Patch::Set);
                    changed = true;
                }
            }
        }
    }
    if shown.from_form || field(pairs, "component_ids").is_some() {
        let mut ids = fields(pairs, "component_ids")
            .into_iter()
            .map(|v| chosen_id("component_ids", v))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort_unstable();
        if shown.differs("component_ids", &ids) {
            p.component_ids = Some(ids);
            changed = true;
        }
    }
    Ok(changed.then_some(p))
}

pub(super) async fn edit(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let post = state.store.post(id).await?;
    let tz = zone(&state.store.status_page(post.page_id).await?);
    let result = match post_patch(&pairs, &post, tz) {
        Ok(Some(p)) => update_post(&state, &who.actor(), id, p).await.map(|_| ()),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other(format!("/status-posts/{id}"))),
        Err(e) => refused_form(&state, &who.0, id, "edit", e, pairs).await,
    }
}

/// Corrects an update's words (subscribers are not told again).
pub(super) async fn correct_update(
    State(state): State<AppState>,
    who: AsResponder,
    Path((id, update_id)): Path<(String, String)>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let update_id = path_id("update_id", &update_id)?;
    let post = state.store.post(id).await?;
    let Some(u) = post.updates.iter().find(|u| u.id == update_id) else {
        return Err(ApiError::NotFound(format!("update {update_id} of status post {id}")).into());
    };
    let body = posted(&pairs, "body").unwrap_or_default();
    if body == u.body {
        return Ok(see_other(format!("/status-posts/{id}#update-{update_id}")));
    }
    let patch = UpdatePatch {
        body: Some(body),
        display_at: None,
    };
    match edit_update(&state, &who.actor(), update_id, patch).await {
        Ok(_) => Ok(see_other(format!("/status-posts/{id}#update-{update_id}"))),
        Err(e) => refused_form(&state, &who.0, id, format!("update-{update_id}"), e, pairs).await,
    }
}

pub(super) async fn delete(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let post = state.store.post(id).await?;
    state
        .store
        .delete_post(id, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/status-pages/{}/posts", post.page_id)))
}
