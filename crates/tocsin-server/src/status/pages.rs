//! The public page, its incidents and history, its theme and logo, and the
//! one stylesheet all pages share. Bodies come from the cache; a warm cache
//! answers without touching the database.

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use tocsin_core::status_page::{Slug, Visibility};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::render::{Doc, Rendered};
use super::respond::{check_reader, send, sign_in_url, Refusal, StatusError, Want};
use crate::state::AppState;

/// The OpenAPI tag of every public status-page route.
pub(crate) const TAG: &str = "status pages (public)";

/// The stylesheet every public page shares, compiled into the binary.
pub(crate) const STATUS_CSS: &str = include_str!("status.css");

/// Its content hash: pages link it with `?v=`, so it may be kept for good.
pub(crate) fn css_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| hex::encode(&Sha256::digest(STATUS_CSS.as_bytes())[..5]))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(to_folder))
        .routes(routes!(page))
        .routes(routes!(incident))
        .routes(routes!(history))
        .routes(routes!(theme))
        .routes(routes!(logo))
        .routes(routes!(stylesheet))
}

/// A page's slug in the path.
#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct SlugPath {
    /// The page's slug.
    pub slug: String,
}

/// A page's rendering as one request may read it.
pub(crate) struct Readable {
    rendered: Arc<Rendered>,
    /// The stricter of the index's visibility and the rendering's: a stale
    /// rendering (the database slow or down) keeps the visibility it was made
    /// with, and a page made internal since must not go on being served as
    /// public — nor a page just made public be served with an internal page's
    /// headers before its rendering says so.
    pub visibility: Visibility,
}

impl std::ops::Deref for Readable {
    type Target = Rendered;

    fn deref(&self) -> &Rendered {
        &self.rendered
    }
}

/// The page at `slug`, rendered, if this request may read it. To a reader
/// who may not, an internal page is indistinguishable from no page at all.
pub(crate) async fn readable(
    state: &AppState,
    headers: &HeaderMap,
    slug: &str,
    want: Want,
    path: &str,
) -> Result<Readable, Refusal> {
    let Some(pv) = state.status.by_slug(&state.store, slug).await else {
        return Err(not_here(state, want, path));
    };
    // Decided on the index before any rendering: an anonymous reader of an
    // internal page costs no render, and is refused the same way even while
    // only a stale public rendering could be served.
    if pv.visibility != Visibility::Public {
        check_reader(state, headers, pv.visibility, want, path).await?;
    }
    let rendered = state
        .status
        .rendered(state, &pv)
        .await
        .ok_or_else(|| StatusError::Unavailable.to(want))?;
    let visibility = match (pv.visibility, rendered.visibility) {
        (Visibility::Public, Visibility::Public) => Visibility::Public,
        _ => Visibility::Internal,
    };
    if pv.visibility == Visibility::Public && visibility != Visibility::Public {
        check_reader(state, headers, visibility, want, path).await?;
    }
    Ok(Readable {
        rendered,
        visibility,
    })
}

/// The refusal for a page that does not exist, or that this reader may not
/// know exists.
pub(crate) fn not_here(state: &AppState, want: Want, path: &str) -> Refusal {
    match want {
        Want::Page => StatusError::SignIn(sign_in_url(state, path)).to(want),
        Want::Document => StatusError::NoPage.to(want),
    }
}

/// One of the page's cached bodies.
pub(crate) fn serve(
    r: &Readable,
    doc: Doc,
    headers: &HeaderMap,
    want: Want,
    cors: bool,
) -> Result<Response, Refusal> {
    match r.docs.get(&doc) {
        Some(body) => Ok(send(body, r.visibility, headers, cors)),
        None if doc == Doc::Logo => Err(StatusError::NoLogo.to(want)),
        None => Err(StatusError::NoPost.to(want)),
    }
}

/// The page lives in its folder (`/status/{slug}/`), where its relative links
/// work; this sends readers there.
#[utoipa::path(get, operation_id = "status_public_to_folder", path = "/status/{slug}", tag = TAG, params(SlugPath),
    responses((status = 308, description = "Moved to `/status/{slug}/`"),
        (status = 404, content_type = "text/html", body = String, description = "No such page")))]
async fn to_folder(Path(SlugPath { slug }): Path<SlugPath>) -> Response {
    // Only a real slug: the Location must never lead anywhere but here.
    match Slug::parse("slug", &slug) {
        Ok(s) => Redirect::permanent(&format!("{}/", s.as_str())).into_response(),
        Err(_) => StatusError::NoPage.to(Want::Page).into_response(),
    }
}

/// The status page: the overall status, active incidents, maintenance,
/// components with their uptime over 90 days, and the last days' incidents.
/// `/status/{slug}/index.html` is the same page. Internal pages need a signed-in
/// session or an API token; without one they answer the same 404 as a page
/// that does not exist (with a link to sign in and come back).
#[utoipa::path(get, operation_id = "status_public_page", path = "/status/{slug}/", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "text/html", body = String, description = "The page"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, content_type = "text/html", body = String, description = "No such page (or an internal one, to a reader not signed in)")),
    security((), ("token" = [])))]
async fn page(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let r = readable(&state, &headers, &slug, Want::Page, uri.path()).await?;
    serve(&r, Doc::Page, &headers, Want::Page, false)
}

/// One incident or maintenance with all its updates (from the last 90 days, or
/// still open). `{id}` may end in `.html`, as links in the page do.
#[utoipa::path(get, operation_id = "status_public_incident", path = "/status/{slug}/incidents/{id}", tag = TAG,
    params(SlugPath, ("id" = String, Path, description = "The post's id, e.g. `12` or `12.html`")),
    responses((status = 200, content_type = "text/html", body = String, description = "The incident"),
        (status = 404, content_type = "text/html", body = String, description = "No such page or incident (or an internal page, to a reader not signed in)")),
    security((), ("token" = [])))]
async fn incident(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let r = readable(&state, &headers, &slug, Want::Page, uri.path()).await?;
    let id = id.strip_suffix(".html").unwrap_or(&id);
    let id: i64 = id.parse().map_err(|_| StatusError::NoPost.to(Want::Page))?;
    serve(&r, Doc::Incident(id), &headers, Want::Page, false)
}

/// Every incident and maintenance of the last 90 days (and any still open), by
/// month. Also at `/status/{slug}/history.html`.
#[utoipa::path(get, operation_id = "status_public_history", path = "/status/{slug}/history", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "text/html", body = String, description = "The history"),
        (status = 404, content_type = "text/html", body = String, description = "No such page (or an internal one, to a reader not signed in)")),
    security((), ("token" = [])))]
async fn history(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let r = readable(&state, &headers, &slug, Want::Page, uri.path()).await?;
    serve(&r, Doc::History, &headers, Want::Page, false)
}

/// The page's brand colours as CSS custom properties (`--brand`, `--brand-text`).
#[utoipa::path(get, operation_id = "status_public_theme", path = "/status/{slug}/theme.css", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "text/css", body = String, description = "The theme"),
        (status = 404, body = crate::api::ErrorResponse, description = "No such page")),
    security((), ("token" = [])))]
async fn theme(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let r = readable(&state, &headers, &slug, Want::Document, "").await?;
    serve(&r, Doc::Theme, &headers, Want::Document, false)
}

/// The page's logo. Pages link `logo.<ext>?v=<tag>`, which is the same image.
#[utoipa::path(get, operation_id = "status_public_logo", path = "/status/{slug}/logo", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "image/*", description = "The logo"),
        (status = 404, body = crate::api::ErrorResponse, description = "No such page, or no logo")),
    security((), ("token" = [])))]
async fn logo(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let r = readable(&state, &headers, &slug, Want::Document, "").await?;
    serve(&r, Doc::Logo, &headers, Want::Document, false)
}

/// The stylesheet of every public page; linked with `?v=<content hash>`, so
/// it may be cached for good.
#[utoipa::path(get, operation_id = "status_public_stylesheet", path = "/status/assets/status.css", tag = TAG,
    responses((status = 200, content_type = "text/css", body = String, description = "The stylesheet")))]
async fn stylesheet() -> Response {
    let mut resp = STATUS_CSS.into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(super::render::CSS));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    resp
}
