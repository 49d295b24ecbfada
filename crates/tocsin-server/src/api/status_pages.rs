//! Status pages, admin side: a page's settings and logo under
//! /api/v1/status-pages, and what the other status-page modules share (text
//! limits, id lists, URLs). Components are in `status_components`, posts and
//! templates in `status_posts`, subscribers in `status_subscribers`.

use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer};
use tocsin_core::change::Patch;
use tocsin_core::escalation::{ContactAddress, ContactKind};
use tocsin_core::maintenance::parse_time_zone;
use tocsin_core::model::{long_text, required_text};
use tocsin_core::status_page::records::StatusPage;
use tocsin_core::status_page::{Color, Domain, Slug, Visibility};
use tocsin_core::Invalid;
use tocsin_store::status::{NewStatusPage, StatusPageChanges};
use tocsin_store::Actor;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{read_body, ApiJson, AsAdmin, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_status_pages, create_status_page))
        .routes(routes!(
            get_status_page,
            update_status_page,
            delete_status_page
        ))
        .routes(routes!(
            get_status_page_logo,
            put_status_page_logo,
            delete_status_page_logo
        ))
}

/// Longest name (page, group, component, post, template), in characters.
pub(super) const MAX_NAME: usize = 200;
/// Longest description of a page, group or component.
pub(super) const MAX_DESCRIPTION: usize = 2_000;
/// Longest text of a post's update or a template, in characters.
pub(super) const MAX_BODY: usize = 20_000;
/// Largest logo, bytes: a header image, not a photo.
pub(crate) const MAX_LOGO_BYTES: usize = 256 * 1024;
/// The brand colour of a page that names none.
const DEFAULT_BRAND_COLOR: &str = "#1f6feb";

/// Deserializes a PATCH field that cannot be cleared: absent keeps the value
/// (`None` by `#[serde(default)]`), and `null` is refused naming the field,
/// rather than silently read as "keep".
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(d)? {
        Some(v) => Ok(Some(v)),
        None => Err(serde::de::Error::custom(
            "must not be null (leave it out to keep the value)",
        )),
    }
}

/// Refuses an id listed twice, naming the second place: `{list}[{i}]{suffix}`.
pub(super) fn no_repeats(list: &str, suffix: &str, ids: &[i64]) -> Result<(), ApiError> {
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(ApiError::Invalid {
                field: format!("{list}[{i}]{suffix}"),
                message: format!("{id} is listed twice"),
            });
        }
    }
    Ok(())
}

/// An absolute http(s) URL with a host: the check contact-method webhooks use.
pub(super) fn web_url(field: &str, s: &str) -> Result<String, Invalid> {
    Ok(ContactAddress::parse(ContactKind::Webhook, field, s)?
        .as_str()
        .to_string())
}

/// A new status page.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusPageRequest {
    /// URL slug: the page is at `/status/<slug>`; lowercase letters, digits, inner hyphens.
    pub(crate) slug: String,
    /// Name shown as the heading.
    pub(crate) name: String,
    /// A line under the heading (markdown).
    #[serde(default)]
    pub(crate) description: String,
    /// `public` (default: anyone) or `internal` (signed-in users only).
    pub(crate) visibility: Option<Visibility>,
    /// Its own host name, e.g. `status.example.com`.
    pub(crate) domain: Option<String>,
    /// IANA time zone its days and times are shown in (default `UTC`).
    pub(crate) time_zone: Option<String>,
    /// Header colour, `#rrggbb` (default `#1f6feb`).
    pub(crate) brand_color: Option<String>,
    /// Where "Contact support" points: an http(s) URL.
    pub(crate) support_url: Option<String>,
    /// Whether readers may subscribe (default true).
    #[serde(default = "yes")]
    pub(crate) allow_subscribers: bool,
}

/// The serde default of flags that are on unless turned off.
pub(super) fn yes() -> bool {
    true
}

/// Changes to a page; absent fields stay, `null` removes `domain` or `support_url`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusPagePatch {
    /// New slug.
    #[serde(default, deserialize_with = "present")]
    pub(crate) slug: Option<String>,
    /// New name.
    #[serde(default, deserialize_with = "present")]
    pub(crate) name: Option<String>,
    /// New description.
    #[serde(default, deserialize_with = "present")]
    pub(crate) description: Option<String>,
    /// New visibility.
    #[serde(default, deserialize_with = "present")]
    pub(crate) visibility: Option<Visibility>,
    /// New host name, or null for none.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(crate) domain: Patch<String>,
    /// New time zone.
    #[serde(default, deserialize_with = "present")]
    pub(crate) time_zone: Option<String>,
    /// New colour.
    #[serde(default, deserialize_with = "present")]
    pub(crate) brand_color: Option<String>,
    /// New support link, or null for none.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(crate) support_url: Patch<String>,
    /// Subscriptions on or off.
    #[serde(default, deserialize_with = "present")]
    pub(crate) allow_subscribers: Option<bool>,
}

impl StatusPageRequest {
    fn parse(self) -> Result<NewStatusPage, Invalid> {
        Ok(NewStatusPage {
            slug: Slug::parse("slug", &self.slug)?,
            name: required_text("name", &self.name, MAX_NAME)?,
            description: long_text("description", &self.description, MAX_DESCRIPTION)?,
            visibility: self.visibility.unwrap_or(Visibility::Public),
            domain: self
                .domain
                .map(|d| Domain::parse("domain", &d))
                .transpose()?,
            time_zone: parse_time_zone("time_zone", self.time_zone.as_deref().unwrap_or("UTC"))?,
            brand_color: Color::parse(
                "brand_color",
                self.brand_color.as_deref().unwrap_or(DEFAULT_BRAND_COLOR),
            )?,
            support_url: self
                .support_url
                .map(|u| web_url("support_url", &u))
                .transpose()?,
            allow_subscribers: self.allow_subscribers,
        })
    }
}

fn cleared<T, U>(
    p: Patch<T>,
    parse: impl FnOnce(T) -> Result<U, Invalid>,
) -> Result<Option<Option<U>>, Invalid> {
    match p {
        Patch::Absent => Ok(None),
        Patch::Null => Ok(Some(None)),
        Patch::Set(v) => parse(v).map(|u| Some(Some(u))),
    }
}

impl StatusPagePatch {
    fn parse(self) -> Result<StatusPageChanges, Invalid> {
        Ok(StatusPageChanges {
            slug: self.slug.map(|s| Slug::parse("slug", &s)).transpose()?,
            name: self
                .name
                .map(|n| required_text("name", &n, MAX_NAME))
                .transpose()?,
            description: self
                .description
                .map(|d| long_text("description", &d, MAX_DESCRIPTION))
                .transpose()?,
            visibility: self.visibility,
            domain: cleared(self.domain, |d| Domain::parse("domain", &d))?,
            time_zone: self
                .time_zone
                .map(|t| parse_time_zone("time_zone", &t))
                .transpose()?,
            brand_color: self
                .brand_color
                .map(|c| Color::parse("brand_color", &c))
                .transpose()?,
            support_url: cleared(self.support_url, |u| web_url("support_url", &u))?,
            allow_subscribers: self.allow_subscribers,
        })
    }
}

/// Every status page, by name.
#[utoipa::path(get, path = "/api/v1/status-pages", tag = "status pages",
    responses((status = 200, body = Vec<StatusPage>)), security(("token" = ["viewer"])))]
async fn list_status_pages(
    State(state): State<AppState>,
    _c: AsViewer,
) -> ApiResult<Json<Vec<StatusPage>>> {
    Ok(Json(state.store.status_pages().await?))
}

/// Create a status page. A slug or domain already taken, or a domain that is
/// the instance's own host (its `public_url`'s), is 409 naming it.
#[utoipa::path(post, path = "/api/v1/status-pages", tag = "status pages", request_body = StatusPageRequest,
    responses((status = 201, body = StatusPage), (status = 400, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_status_page(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(r): ApiJson<StatusPageRequest>,
) -> ApiResult<(StatusCode, Json<StatusPage>)> {
    let page = create(&state, &c.actor(), r).await?;
    Ok((StatusCode::CREATED, Json(page)))
}

/// Refuses, naming `domain`, the host the instance itself is reached at: every
/// request to a page's domain is routed to the page, so the web UI and the API
/// there would answer 404 (see `status::host`).
fn not_the_instance(state: &AppState, domain: Option<&Domain>) -> ApiResult<()> {
    let own = crate::status::instance_host(state);
    match domain {
        Some(d) if own.as_deref() == Some(d.as_str()) => Err(ApiError::Conflict {
            code: "conflict",
            message: format!(
                "`{}` is the host this Tocsin instance is reached at (its public_url); \
                 a status page there would hide the web UI and the API",
                d.as_str()
            ),
            field: Some("domain".into()),
        }),
        _ => Ok(()),
    }
}

/// Checks and stores a new page (the API's and the web form's one way in).
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    r: StatusPageRequest,
) -> ApiResult<StatusPage> {
    let new = r.parse()?;
    not_the_instance(state, new.domain.as_ref())?;
    Ok(state
        .store
        .create_status_page(&new, actor, state.now())
        .await?)
}

/// Checks and stores changes to a page's settings (the API's and the web form's one way in).
pub(crate) async fn update(
    state: &AppState,
    actor: &Actor,
    id: i64,
    p: StatusPagePatch,
) -> ApiResult<StatusPage> {
    let changes = p.parse()?;
    not_the_instance(state, changes.domain.as_ref().and_then(Option::as_ref))?;
    Ok(state
        .store
        .update_status_page(id, &changes, actor, state.now())
        .await?)
}

/// Read a status page's settings.
#[utoipa::path(get, path = "/api/v1/status-pages/{id}", tag = "status pages", params(("id" = i64, Path)),
    responses((status = 200, body = StatusPage), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_status_page(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<StatusPage>> {
    Ok(Json(state.store.status_page(path_id("id", &id)?).await?))
}

/// Change a status page's settings; `null` removes its domain or support link.
/// A slug or domain already taken, or a domain that is the instance's own
/// host, is 409 naming it.
#[utoipa::path(patch, path = "/api/v1/status-pages/{id}", tag = "status pages", params(("id" = i64, Path)),
    request_body = StatusPagePatch,
    responses((status = 200, body = StatusPage), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_status_page(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<StatusPagePatch>,
) -> ApiResult<Json<StatusPage>> {
    let id = path_id("id", &id)?;
    Ok(Json(update(&state, &c.actor(), id, p).await?))
}

/// Delete a status page with its components, history, posts, templates and subscribers.
#[utoipa::path(delete, path = "/api/v1/status-pages/{id}", tag = "status pages", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_status_page(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_status_page(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The image types a logo may be. SVG is not one: it can carry script.
pub(crate) const LOGO_TYPES: &str =
    "image/png, image/jpeg, image/gif or image/webp (not SVG: it can carry script)";

/// Whether `bytes` begin the way a file of `content_type` does; `None` when
/// the type is not a logo type at all.
pub(crate) fn logo_matches(content_type: &str, bytes: &[u8]) -> Option<bool> {
    Some(match content_type {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(&[0xff, 0xd8, 0xff]),
        "image/gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "image/webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        _ => return None,
    })
}

/// The page's logo, served with its own type, never sniffed.
#[utoipa::path(get, path = "/api/v1/status-pages/{id}/logo", tag = "status pages", params(("id" = i64, Path)),
    responses((status = 200, description = "The image", content_type = "image/png"),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_status_page_logo(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id("id", &id)?;
    let (content_type, bytes) = state
        .store
        .status_page_logo(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("logo of status page {id}")))?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    // The type was checked against the bytes on upload; nosniff keeps a
    // browser from reading them as anything else.
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Behind a token: no shared cache may keep it.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    Ok(resp)
}

/// Upload the page's logo: the body is the image, `Content-Type` its type
/// (PNG, JPEG, GIF or WebP, checked against the bytes; at most 256 KiB).
#[utoipa::path(put, path = "/api/v1/status-pages/{id}/logo", tag = "status pages", params(("id" = i64, Path)),
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 200, body = StatusPage), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 413, body = ErrorResponse), (status = 415, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn put_status_page_logo(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Json<StatusPage>> {
    let id = path_id("id", &id)?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    // Refuse the type before reading the body: nothing to read for an SVG.
    if logo_matches(&content_type, &[]).is_none() {
        return Err(ApiError::UnsupportedMediaType(LOGO_TYPES));
    }
    let bytes = read_body(req, MAX_LOGO_BYTES).await?;
    Ok(Json(
        set_logo(&state, &c.actor(), id, "body", &content_type, &bytes).await?,
    ))
}

/// Checks a logo against its type and stores it (the API's and the web
/// form's one way in); a refusal names `field`, where the image was sent.
pub(crate) async fn set_logo(
    state: &AppState,
    actor: &Actor,
    id: i64,
    field: &str,
    content_type: &str,
    bytes: &[u8],
) -> ApiResult<StatusPage> {
    match logo_matches(content_type, bytes) {
        None => return Err(ApiError::UnsupportedMediaType(LOGO_TYPES)),
        Some(false) => {
            return Err(ApiError::Invalid {
                field: field.into(),
                message: format!("the {field} is not a {content_type} image"),
            })
        }
        Some(true) => {}
    }
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(ApiError::TooLarge(MAX_LOGO_BYTES));
    }
    Ok(state
        .store
        .set_status_page_logo(id, Some((content_type, bytes)), actor, state.now())
        .await?)
}

/// Remove the page's logo.
#[utoipa::path(delete, path = "/api/v1/status-pages/{id}/logo", tag = "status pages", params(("id" = i64, Path)),
    responses((status = 200, body = StatusPage), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_status_page_logo(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<Json<StatusPage>> {
    let page = state
        .store
        .set_status_page_logo(path_id("id", &id)?, None, &c.actor(), state.now())
        .await?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logos_must_start_like_their_type() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(logo_matches("image/png", png), Some(true));
        assert_eq!(logo_matches("image/jpeg", png), Some(false));
        assert_eq!(
            logo_matches("image/jpeg", &[0xff, 0xd8, 0xff, 0xe0]),
            Some(true)
        );
        assert_eq!(logo_matches("image/gif", b"GIF89a..."), Some(true));
        assert_eq!(logo_matches("image/gif", b"GIF90a..."), Some(false));
        assert_eq!(
            logo_matches("image/webp", b"RIFF\0\0\0\0WEBPVP8 "),
            Some(true)
        );
        assert_eq!(logo_matches("image/webp", b"RIFF\0\0\0\0WAVE"), Some(false));
        assert_eq!(logo_matches("image/svg+xml", b"<svg/>"), None);
        assert_eq!(logo_matches("image/png", b""), Some(false));
    }

    #[test]
    fn repeats_name_the_second_place() {
        assert!(no_repeats("components", ".component_id", &[1, 2, 3]).is_ok());
        match no_repeats("components", ".component_id", &[1, 2, 1]) {
            Err(ApiError::Invalid { field, .. }) => assert_eq!(field, "components[2].component_id"),
            other => panic!("{other:?}"),
        }
    }
}
