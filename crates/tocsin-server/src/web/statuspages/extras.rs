//! A page's templates (admins keep them) and subscribers (admins only: a
//! webhook's signing secret is shown once, on the answer that adds it).

use axum::extract::{Path, State};
use axum::response::Response;
use tocsin_core::change::Patch;
use tocsin_core::status_page::records::{SubscriberKind, Template};
use tocsin_core::status_page::PostKind;

use super::form::{chosen_id, invalid, posted, refused, Shown};
use super::page::{render, NewSecret, Outcome};
use super::settings::Empty;
use crate::api::path_id;
use crate::api::status_subscribers::{add_subscriber as api_add_subscriber, SubscriberRequest};
use crate::api::status_templates::{
    create_template as api_create_template, update_template, TemplatePatch, TemplateRequest,
};
use crate::state::AppState;
use crate::web::common::{see_other, WebResult};
use crate::web::session::{field, fields, AsAdmin, CsrfForm, CsrfPairs};
use crate::ApiError;

async fn template_of(state: &AppState, page_id: i64, id: &str) -> WebResult<Template> {
    let id = path_id("template_id", id)?;
    let t = state.store.status_template(id).await?;
    if t.page_id != page_id {
        return Err(ApiError::NotFound(format!("template {id} of status page {page_id}")).into());
    }
    Ok(t)
}

fn template_request(pairs: &[(String, String)]) -> Result<TemplateRequest, ApiError> {
    Ok(TemplateRequest {
        kind: {
            let k = field(pairs, "kind").unwrap_or("incident");
            Some(PostKind::parse(k).ok_or_else(|| {
                invalid(
                    "kind",
                    format!("`{k}` is not one of: incident, maintenance"),
                )
            })?)
        },
        name: posted(pairs, "name").unwrap_or_default(),
        title: posted(pairs, "title").unwrap_or_default(),
        body: posted(pairs, "body").unwrap_or_default(),
        status: field(pairs, "status")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

pub(super) async fn create_template(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let result = match template_request(&pairs) {
        Ok(r) => api_create_template(&state, &who.actor(), page_id, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(t) => Ok(see_other(format!(
            "/status-pages/{page_id}#template-{}",
            t.id
        ))),
        Err(e) => {
            let o = Outcome::failed("new-template", refused(e)?, pairs);
            render(&state, &who.0, page_id, o).await
        }
    }
}

/// What the edit form changed, against what it showed; `None` when nothing.
fn template_patch(
    pairs: &[(String, String)],
    t: &Template,
) -> Result<Option<TemplatePatch>, ApiError> {
    let shown = Shown::of(pairs, t)?;
    let mut p = TemplatePatch::default();
    let mut changed = false;
    for (key, slot, trim) in [
        ("name", &mut p.name, true),
        ("title", &mut p.title, true),
        ("body", &mut p.body, false),
    ] {
        if let Some(v) = posted(pairs, key) {
            let v = if trim { v.trim().to_string() } else { v };
            if shown.differs(key, &v) {
                *slot = Some(v);
                changed = true;
            }
        }
    }
    if let Some(s) = field(pairs, "status") {
        let new = Some(s).filter(|s| !s.is_empty());
        if shown.differs("status", &new) {
            p.status = new.map_or(Patch::Null, |s| Patch::Set(s.to_string()));
            changed = true;
        }
    }
    Ok(changed.then_some(p))
}

pub(super) async fn edit_template(
    State(state): State<AppState>,
    who: AsAdmin,
    Path((id, template_id)): Path<(String, String)>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let t = template_of(&state, page_id, &template_id).await?;
    let result = match template_patch(&pairs, &t) {
        Ok(Some(p)) => update_template(&state, &who.actor(), t.id, p)
            .await
            .map(|_| ()),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other(format!(
            "/status-pages/{page_id}#template-{}",
            t.id
        ))),
        Err(e) => {
            let o = Outcome::failed(format!("template-{}", t.id), refused(e)?, pairs);
            render(&state, &who.0, page_id, o).await
        }
    }
}

pub(super) async fn delete_template(
    State(state): State<AppState>,
    who: AsAdmin,
    Path((id, template_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let t = template_of(&state, page_id, &template_id).await?;
    state
        .store
        .delete_status_template(t.id, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/status-pages/{page_id}#templates")))
}

fn subscriber_request(pairs: &[(String, String)]) -> Result<SubscriberRequest, ApiError> {
    let kind = match field(pairs, "kind").unwrap_or("email") {
        "email" => SubscriberKind::Email,
        "webhook" => SubscriberKind::Webhook,
        k => {
            return Err(invalid(
                "kind",
                format!("`{k}` is not one of: email, webhook"),
            ))
        }
    };
    Ok(SubscriberRequest {
        kind,
        address: posted(pairs, "address")
            .unwrap_or_default()
            .trim()
            .to_string(),
        component_ids: fields(pairs, "component_ids")
            .into_iter()
            .map(|v| chosen_id("component_ids", v))
            .collect::<Result<_, _>>()?,
        // The box is about email; a webhook is confirmed when added.
        confirmed: match kind {
            SubscriberKind::Email => Some(field(pairs, "confirmed").is_some()),
            SubscriberKind::Webhook => None,
        },
    })
}

/// Adds a subscriber; a webhook's secret is shown on this answer (201) only.
pub(super) async fn add_subscriber(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let result = match subscriber_request(&pairs) {
        Ok(r) => api_add_subscriber(&state, &who.actor(), page_id, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((s, Some(secret))) => {
            let o = Outcome {
                new_secret: Some(NewSecret {
                    address: s.address,
                    secret,
                }),
                ..Default::default()
            };
            // The secret exists only in this answer: a webhook whose secret
            // could not be shown is removed rather than left live and unknown.
            match render(&state, &who.0, page_id, o).await {
                Ok(resp) if resp.status().is_success() => Ok(resp),
                failed => {
                    state
                        .store
                        .delete_subscriber(s.id, &who.actor(), state.now())
                        .await?;
                    failed
                }
            }
        }
        Ok((s, None)) => Ok(see_other(format!(
            "/status-pages/{page_id}#subscriber-{}",
            s.id
        ))),
        Err(e) => {
            let o = Outcome::failed("new-subscriber", refused(e)?, pairs);
            render(&state, &who.0, page_id, o).await
        }
    }
}

pub(super) async fn delete_subscriber(
    State(state): State<AppState>,
    who: AsAdmin,
    Path((id, subscriber_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    let page_id = path_id("id", &id)?;
    let sid = path_id("subscriber_id", &subscriber_id)?;
    let s = state.store.subscriber(sid).await?;
    if s.page_id != page_id {
        return Err(
            ApiError::NotFound(format!("subscriber {sid} of status page {page_id}")).into(),
        );
    }
    state
        .store
        .delete_subscriber(sid, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/status-pages/{page_id}#subscribers")))
}
