//! A page's settings form, its deletion, and its logo (shown to signed-in
//! users, uploaded as a `multipart/form-data` form by admins).

use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tocsin_core::change::Patch;
use tocsin_core::status_page::records::StatusPage;
use tocsin_core::status_page::Visibility;

use super::form::{invalid, posted, refused, Shown};
use super::page::{render, Outcome};
use super::upload;
use crate::api::path_id;
use crate::api::status_pages::{
    logo_matches, set_logo, update as update_page, StatusPagePatch, LOGO_TYPES, MAX_LOGO_BYTES,
};
use crate::state::AppState;
use crate::web::common::{see_other, WebError, WebResult};
use crate::web::session::{field, same_secret, AsAdmin, AsViewer, CsrfForm, CsrfPairs};
use crate::ApiError;

/// A form with nothing but its token.
#[derive(Debug, Deserialize)]
pub(super) struct Empty {}

/// The settings the form changed, against what it showed; `None` when nothing was.
fn settings_patch(
    pairs: &[(String, String)],
    cur: &StatusPage,
) -> Result<Option<StatusPagePatch>, ApiError> {
    let shown = Shown::of(pairs, cur)?;
    let mut p = StatusPagePatch::default();
    let mut changed = false;
    let mut line = |key: &str, slot: &mut Option<String>| {
        if let Some(v) = posted(pairs, key) {
            let v = v.trim();
            if shown.differs(key, &v) {
                *slot = Some(v.to_string());
                changed = true;
            }
        }
    };
    line("slug", &mut p.slug);
    line("name", &mut p.name);
    line("time_zone", &mut p.time_zone);
    line("brand_color", &mut p.brand_color);
    if let Some(d) = posted(pairs, "description") {
        if shown.differs("description", &d) {
            p.description = Some(d);
            changed = true;
        }
    }
    if let Some(v) = field(pairs, "visibility") {
        let v = Visibility::parse("visibility", v)?;
        if shown.differs("visibility", &v) {
            p.visibility = Some(v);
            changed = true;
        }
    }
    // Blank removes a domain or support link; what was blank stays so.
    for (key, slot) in [
        ("domain", &mut p.domain),
        ("support_url", &mut p.support_url),
    ] {
        if let Some(v) = posted(pairs, key) {
            let v = v.trim();
            if v.is_empty() && !shown.text(key).is_empty() {
                *slot = Patch::Null;
                changed = true;
            } else if !v.is_empty() && shown.differs(key, &v) {
                *slot = Patch::Set(v.to_string());
                changed = true;
            }
        }
    }
    if let Some(on) = shown.checkbox(pairs, "allow_subscribers") {
        if shown.differs("allow_subscribers", &on) {
            p.allow_subscribers = Some(on);
            changed = true;
        }
    }
    Ok(changed.then_some(p))
}

pub(super) async fn save(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let cur = state.store.status_page(id).await?;
    let result = match settings_patch(&pairs, &cur) {
        Ok(Some(p)) => update_page(&state, &who.actor(), id, p).await.map(|_| ()),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other(format!("/status-pages/{id}#settings"))),
        Err(e) => {
            render(
                &state,
                &who.0,
                id,
                Outcome::failed("settings", refused(e)?, pairs),
            )
            .await
        }
    }
}

pub(super) async fn delete(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    state
        .store
        .delete_status_page(path_id("id", &id)?, &who.actor(), state.now())
        .await?;
    Ok(see_other("/status-pages"))
}

/// The logo for the admin page (the public site serves its own copy).
pub(super) async fn logo(
    State(state): State<AppState>,
    _who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let (content_type, bytes) = state
        .store
        .status_page_logo(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("logo of status page {id}")))?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    // The type was checked against the bytes on upload; the UI's nosniff
    // keeps it so, and a sandbox keeps it from ever acting as a page.
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    Ok(resp)
}

/// Room for the form's other parts and the multipart framing around the image.
const FORM_OVERHEAD: usize = 16 * 1024;

/// Uploads the logo from the file form: the token is checked from the
/// form's `_csrf` part before anything is stored.
pub(super) async fn upload_logo(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    req: Request,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let boundary = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(upload::boundary)
        .ok_or(WebError::Csrf)?;
    let body = match crate::extract::read_body(req, MAX_LOGO_BYTES + FORM_OVERHEAD).await {
        Ok(b) => b,
        Err(ApiError::TooLarge(_)) => {
            return Err(invalid("logo", "the image is larger than 256 KiB").into());
        }
        Err(e) => return Err(e.into()),
    };
    let parts = upload::parse(&body, &boundary).map_err(|_| WebError::Csrf)?;
    let token = parts
        .iter()
        .find(|p| p.name == "_csrf")
        .and_then(|p| std::str::from_utf8(&p.data).ok())
        .unwrap_or("");
    if !same_secret(token, &who.0.csrf) {
        return Err(WebError::Csrf);
    }
    let file = parts.iter().find(|p| p.name == "logo");
    let result = match file {
        Some(f) if !f.data.is_empty() => {
            let ct = f.content_type.clone().unwrap_or_default();
            if logo_matches(&ct, &[]).is_none() {
                Err(invalid("logo", format!("must be {LOGO_TYPES}")))
            } else if f.data.len() > MAX_LOGO_BYTES {
                Err(invalid("logo", "the image is larger than 256 KiB"))
            } else {
                set_logo(&state, &who.actor(), id, "logo", &ct, &f.data)
                    .await
                    .map(|_| ())
            }
        }
        _ => Err(invalid("logo", "choose an image file")),
    };
    match result {
        Ok(()) => Ok(see_other(format!("/status-pages/{id}#logo"))),
        Err(e) => {
            render(
                &state,
                &who.0,
                id,
                Outcome::failed("logo", refused(e)?, Vec::new()),
            )
            .await
        }
    }
}

pub(super) async fn delete_logo(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    state
        .store
        .set_status_page_logo(id, None, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/status-pages/{id}#logo")))
}
