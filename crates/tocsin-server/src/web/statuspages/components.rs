//! A page's groups and components: add, edit (only what the form changed),
//! delete (admins), and the quick status change (responders), through the
//! API's own functions.

use axum::extract::{Path, State};
use axum::response::Response;
use tocsin_core::change::Patch;
use tocsin_core::status_page::records::{Component, ComponentGroup};
use tocsin_core::status_page::ComponentStatus;

use super::form::{chosen_id, posted, refused, whole_number, Shown};
use super::page::{render, Outcome};
use super::settings::Empty;
use crate::api::path_id;
use crate::api::status_components::{
    create_component as api_create_component, create_group as api_create_group, may_change,
    update_component, update_group, ComponentPatch, ComponentRequest, GroupPatch, GroupRequest,
};
use crate::state::AppState;
use crate::web::common::{see_other, WebResult};
use crate::web::session::{field, fields, AsAdmin, AsResponder, CsrfForm, CsrfPairs};
use crate::ApiError;

/// The component or group `item_id` of page `page_id`, or 404: a form for
/// one page never changes another's.
fn on_page(page_id: i64, item_page: i64, what: &str, item_id: i64) -> Result<(), ApiError> {
    if page_id == item_page {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "{what} {item_id} of status page {page_id}"
        )))
    }
}

async fn component_of(state: &AppState, page_id: i64, id: &str) -> WebResult<Component> {
    let id = path_id("component_id", id)?;
    let c = state.store.component(id).await?;
    on_page(page_id, c.page_id, "component", id)?;
    Ok(c)
}

async fn group_of(state: &AppState, page_id: i64, id: &str) -> WebResult<ComponentGroup> {
    let id = path_id("group_id", id)?;
    let g = state.store.component_group(id).await?;
    on_page(page_id, g.page_id, "component group", id)?;
    Ok(g)
}

fn service_ids(pairs: &[(String, String)]) -> Result<Vec<i64>, ApiError> {
    let mut ids = fields(pairs, "service_ids")
        .into_iter()
        .map(|v| chosen_id("service_ids", v))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

fn group_id(pairs: &[(String, String)]) -> Result<Option<i64>, ApiError> {
    match field(pairs, "group_id").unwrap_or("") {
        "" => Ok(None),
        v => chosen_id("group_id", v).map(Some),
    }
}

// ---- groups ----

pub(super) async fn create_group(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let request = || -> Result<GroupRequest, ApiError> {
        Ok(GroupRequest {
            name: posted(&pairs, "name").unwrap_or_default(),
            description: posted(&pairs, "description").unwrap_or_default(),
            position: whole_number("position", field(&pairs, "position").unwrap_or(""))?,
        })
    };
    let result = match request() {
        Ok(r) => api_create_group(&state, &who.actor(), page_id, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(g) => Ok(see_other(format!("/status-pages/{page_id}#group-{}", g.id))),
        Err(e) => {
            let o = Outcome::failed("new-group", refused(e)?, pairs);
            render(&state, &who.0, page_id, o).await
        }
    }
}

fn group_patch(
    pairs: &[(String, String)],
    g: &ComponentGroup,
) -> Result<Option<GroupPatch>, ApiError> {
    let shown = Shown::of(pairs, g)?;
    let mut p = GroupPatch::default();
    let mut changed = false;
    if let Some(n) = posted(pairs, "name").map(|n| n.trim().to_string()) {
        if shown.differs("name", &n) {
            p.name = Some(n);
            changed = true;
        }
    }
    if let Some(d) = posted(pairs, "description") {
        if shown.differs("description", &d) {
            p.description = Some(d);
            changed = true;
        }
    }
    if let Some(v) = field(pairs, "position") {
        // Blank keeps the place it has.
        if let Some(n) = whole_number("position", v)? {
            if shown.differs("position", &n) {
                p.position = Some(n);
                changed = true;
            }
        }
    }
    Ok(changed.then_some(p))
}

pub(super) async fn edit_group(
    State(state): State<AppState>,
    who: AsAdmin,
    Path((id, group_id)): Path<(String, String)>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let g = group_of(&state, page_id, &group_id).await?;
    let result = match group_patch(&pairs, &g) {
        Ok(Some(p)) => update_group(&state, &who.actor(), g.id, p)
            .await
            .map(|_| ()),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other(format!("/status-pages/{page_id}#group-{}", g.id))),
        Err(e) => {
            let o = Outcome::failed(format!("group-{}", g.id), refused(e)?, pairs);
            render(&state, &who.0, page_id, o).await
        }
    }
}

pub(super) async fn delete_group(
    State(state): State<AppState>,
    who: AsAdmin,
    Path((id, group_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let g = group_of(&state, page_id, &group_id).await?;
    state
        .store
        .delete_component_group(g.id, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/status-pages/{page_id}#components")))
}

// ---- components ----

fn component_request(pairs: &[(String, String)]) -> Result<ComponentRequest, ApiError> {
    Ok(ComponentRequest {
        name: posted(pairs, "name").unwrap_or_default(),
        description: posted(pairs, "description").unwrap_or_default(),
        group_id: group_id(pairs)?,
        position: whole_number("position", field(pairs, "position").unwrap_or(""))?,
        status: match field(pairs, "status").unwrap_or("") {
            "" => None,
            s => Some(ComponentStatus::parse("status", s)?),
        },
        show_uptime: field(pairs, "show_uptime").is_some(),
        only_show_if_degraded: field(pairs, "only_show_if_degraded").is_some(),
        service_ids: service_ids(pairs)?,
    })
}

pub(super) async fn create_component(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let result = match component_request(&pairs) {
        Ok(r) => api_create_component(&state, &who.actor(), page_id, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(c) => Ok(see_other(format!(
            "/status-pages/{page_id}#component-{}",
            c.id
        ))),
        Err(e) => {
            let o = Outcome::failed("new-component", refused(e)?, pairs);
            render(&state, &who.0, page_id, o).await
        }
    }
}

/// What the edit form changed, against what it showed; `None` when nothing.
fn component_patch(
    pairs: &[(String, String)],
    c: &Component,
) -> Result<Option<ComponentPatch>, ApiError> {
    let shown = Shown::of(pairs, c)?;
    let mut p = ComponentPatch::default();
    let mut changed = false;
    if let Some(n) = posted(pairs, "name").map(|n| n.trim().to_string()) {
        if shown.differs("name", &n) {
            p.name = Some(n);
            changed = true;
        }
    }
    if let Some(d) = posted(pairs, "description") {
        if shown.differs("description", &d) {
            p.description = Some(d);
            changed = true;
        }
    }
    if field(pairs, "group_id").is_some() {
        let g = group_id(pairs)?;
        if shown.differs("group_id", &g) {
            p.group_id = g.map_or(Patch::Null, Patch::Set);
            changed = true;
        }
    }
    if let Some(v) = field(pairs, "position") {
        if let Some(n) = whole_number("position", v)? {
            if shown.differs("position", &n) {
                p.position = Some(n);
                changed = true;
            }
        }
    }
    for (key, slot) in [
        ("show_uptime", &mut p.show_uptime),
        ("only_show_if_degraded", &mut p.only_show_if_degraded),
    ] {
        if let Some(on) = shown.checkbox(pairs, key) {
            if shown.differs(key, &on) {
                *slot = Some(on);
                changed = true;
            }
        }
    }
    // No box ticked posts nothing: with the form's `orig`, that is "none".
    if shown.from_form || field(pairs, "service_ids").is_some() {
        let ids = service_ids(pairs)?;
        if shown.differs("service_ids", &ids) {
            p.service_ids = Some(ids);
            changed = true;
        }
    }
    Ok(changed.then_some(p))
}

pub(super) async fn edit_component(
    State(state): State<AppState>,
    who: AsAdmin,
    Path((id, component_id)): Path<(String, String)>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let c = component_of(&state, page_id, &component_id).await?;
    let result = match component_patch(&pairs, &c) {
        Ok(Some(p)) => match may_change(&p, who.role()) {
            Ok(()) => update_component(&state, &who.actor(), c.id, p)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        },
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other(format!(
            "/status-pages/{page_id}#component-{}",
            c.id
        ))),
        Err(e) => {
            let o = Outcome::failed(format!("component-{}", c.id), refused(e)?, pairs);
            render(&state, &who.0, page_id, o).await
        }
    }
}

/// A responder moves a component's status (recorded in its history); the
/// same status as the form showed changes nothing.
pub(super) async fn set_status(
    State(state): State<AppState>,
    who: AsResponder,
    Path((id, component_id)): Path<(String, String)>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let c = component_of(&state, page_id, &component_id).await?;
    let patch = || -> Result<Option<ComponentPatch>, ApiError> {
        let shown = Shown::of(&pairs, &c)?;
        let s = ComponentStatus::parse("status", field(&pairs, "status").unwrap_or(""))?;
        Ok(shown.differs("status", &s).then(|| ComponentPatch {
            status: Some(s),
            ..Default::default()
        }))
    };
    let result = match patch() {
        Ok(Some(p)) => match may_change(&p, who.role()) {
            Ok(()) => update_component(&state, &who.actor(), c.id, p)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        },
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other(format!(
            "/status-pages/{page_id}#component-{}",
            c.id
        ))),
        Err(e) => {
            let o = Outcome::failed(format!("status-{}", c.id), refused(e)?, pairs);
            render(&state, &who.0, page_id, o).await
        }
    }
}

pub(super) async fn delete_component(
    State(state): State<AppState>,
    who: AsAdmin,
    Path((id, component_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let c = component_of(&state, page_id, &component_id).await?;
    state
        .store
        .delete_component(c.id, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/status-pages/{page_id}#components")))
}
