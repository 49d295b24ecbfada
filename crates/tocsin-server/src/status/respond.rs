//! How public routes answer: their own security headers, cached bodies with
//! ETag and 304, who may read an internal page, and refusals — a small page for
//! browsers, the API's error JSON for programs.

use askama::Template;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY, RETRY_AFTER, VARY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use tocsin_core::status_page::Visibility;

use super::render::Body;
use crate::error::ApiError;
use crate::state::AppState;

/// The public pages' policy: no script at all, styles and images from here only.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What every status-page response carries; a response that set no caching
/// (a form, a refusal) is not stored anywhere.
pub(crate) async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// A cached body as a response: 304 when the client has it already. Public
/// pages may sit in shared caches for 30 s; internal ones only in the reader's
/// browser, and `cors` bodies (the JSON) may be read by scripts on other sites
/// only when the page is public. `visibility`: the page's as this request
/// reads it (see `pages::Readable`), not necessarily the rendering's.
pub(crate) fn send(
    body: &Body,
    visibility: Visibility,
    request: &HeaderMap,
    cors: bool,
) -> Response {
    let public = visibility == Visibility::Public;
    let mut resp = if matches_etag(request, &body.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut resp = body.bytes.clone().into_response();
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(body.content_type));
        resp
    };
    let h = resp.headers_mut();
    h.insert(ETAG, body.etag.clone());
    if public {
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=30"),
        );
        if cors {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
    } else {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
        h.insert(VARY, HeaderValue::from_static("Cookie, Authorization"));
    }
    resp
}

fn matches_etag(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or("");
    request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        // If-None-Match compares weakly: W/"x" matches "x".
        .any(|t| t == "*" || t.trim_start_matches("W/") == ours)
}

/// What kind of answer a route gives, and so how it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// A page for people: refusals are pages; an internal page is a 404 with a
    /// link to sign in, as is a page that does not exist.
    Page,
    /// A document for programs (JSON, feeds, theme, logo): refusals are JSON,
    /// and an internal page looks like no page at all.
    Document,
}

/// Why a public route did not serve what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StatusError {
    #[error("there is no status page here")]
    NoPage,
    #[error("this status page has no such incident or maintenance")]
    NoPost,
    #[error("this status page does not take subscriptions")]
    NoSubscriptions,
    #[error("this status page has no logo")]
    NoLogo,
    #[error("this subscription no longer exists; it may have been cancelled already")]
    NoSubscriber,
    /// No such page for a browser — or an internal page and a browser that is
    /// not signed in, which must not learn the difference: the same 404 page,
    /// with a link to sign in (and come back to this address) for staff.
    #[error("there is no status page here")]
    SignIn(String),
    #[error("the status page is unavailable for a moment; please try again shortly")]
    Unavailable,
    /// A subscriber link that is forged, altered, expired or for another page.
    #[error("{0}")]
    Link(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<tocsin_store::StoreError> for StatusError {
    fn from(e: tocsin_store::StoreError) -> Self {
        StatusError::Api(e.into())
    }
}

impl StatusError {
    /// This refusal as a route of kind `want` gives it.
    pub fn to(self, want: Want) -> Refusal {
        Refusal { err: self, want }
    }

    fn parts(&self) -> (StatusCode, &'static str, Option<String>) {
        match self {
            StatusError::NoPage
            | StatusError::NoPost
            | StatusError::NoSubscriptions
            | StatusError::NoLogo
            | StatusError::NoSubscriber
            | StatusError::SignIn(_) => (StatusCode::NOT_FOUND, "not_found", None),
            StatusError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
            StatusError::Link(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_link",
                Some("token".into()),
            ),
            StatusError::Api(e) => e.parts(),
        }
    }
}

/// A refusal, answered the way its route answers.
#[derive(Debug)]
pub(crate) struct Refusal {
    err: StatusError,
    want: Want,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, field) = self.err.parts();
        let retry = match &self.err {
            StatusError::Api(ApiError::TooSoon { retry_after, .. }) => Some(*retry_after),
            StatusError::Unavailable => Some(5),
            _ => None,
        };
        let mut resp = match (self.want, self.err) {
            (Want::Document, StatusError::Api(e)) => e.into_response(),
            (Want::Document, e) => {
                let body =
                    json!({ "error": { "code": code, "message": e.to_string(), "field": field } });
                (status, axum::Json(body)).into_response()
            }
            (Want::Page, StatusError::SignIn(to)) => {
                let message = capitalised(&StatusError::NoPage.to_string());
                message_page_with(status, None, "Not found", &message, None, Some(&to))
            }
            (Want::Page, e) => {
                let message = match &e {
                    StatusError::Api(ApiError::Internal(detail)) => {
                        tracing::error!(%detail, "status page request failed");
                        "Something went wrong on our side.".to_string()
                    }
                    other => capitalised(&other.to_string()),
                };
                let heading = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::BAD_REQUEST => "This did not work",
                    StatusCode::TOO_MANY_REQUESTS => "Too many requests",
                    _ => "Something went wrong",
                };
                message_page(status, None, heading, &message, None)
            }
        };
        if let Some(secs) = retry.filter(|s| *s > 0) {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

/// What the small pages (forms, link pages, refusals) share. `page_name`
/// set: the page lives in the status page's folder, so its theme applies.
pub(crate) struct Frame {
    pub(super) title: String,
    pub(super) page_name: Option<String>,
    pub(super) css_v: &'static str,
}

impl Frame {
    pub fn new(title: &str, page_name: Option<&str>) -> Frame {
        Frame {
            title: match page_name {
                Some(n) => format!("{title} · {n}"),
                None => title.to_string(),
            },
            page_name: page_name.map(str::to_string),
            css_v: super::pages::css_version(),
        }
    }
}

/// A button that posts a subscriber link's token back (confirm, unsubscribe).
pub(crate) struct LinkForm {
    pub token: String,
    pub button: &'static str,
}

#[derive(Template)]
#[template(path = "status_message.html")]
struct MessagePage<'a> {
    frame: Frame,
    heading: &'a str,
    message: &'a str,
    form: Option<LinkForm>,
    /// Where staff sign in and come back from.
    sign_in: Option<&'a str>,
}

/// A one-message page.
pub(crate) fn message_page(
    status: StatusCode,
    page_name: Option<&str>,
    heading: &str,
    message: &str,
    form: Option<LinkForm>,
) -> Response {
    message_page_with(status, page_name, heading, message, form, None)
}

/// A one-message page, with a link to sign in.
fn message_page_with(
    status: StatusCode,
    page_name: Option<&str>,
    heading: &str,
    message: &str,
    form: Option<LinkForm>,
    sign_in: Option<&str>,
) -> Response {
    html(
        status,
        MessagePage {
            frame: Frame::new(heading, page_name),
            heading,
            message,
            form,
            sign_in,
        }
        .render(),
    )
}

/// A rendered template as a page; a template failure is a 500, logged.
pub(crate) fn html(status: StatusCode, rendered: Result<String, askama::Error>) -> Response {
    match rendered {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "status template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template failed").into_response()
        }
    }
}

/// May this request read a page of `visibility`? Public pages: anyone.
/// Internal pages: a signed-in browser (any role) or an API token; others are
/// told there is no such page, exactly as for a page that does not exist
/// (browsers with a link to sign in), so they learn nothing.
pub(crate) async fn check_reader(
    state: &AppState,
    headers: &HeaderMap,
    visibility: Visibility,
    want: Want,
    path: &str,
) -> Result<(), Refusal> {
    if visibility == Visibility::Public {
        return Ok(());
    }
    let now = state.now();
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("bearer ")));
    let known = match (bearer, crate::web::cookie(headers, crate::web::COOKIE_NAME)) {
        (Some(token), _) => state
            .store
            .authenticate(token.trim(), now)
            .await
            .map(|p| p.is_some()),
        (None, Some(secret)) => state.store.session(secret, now).await.map(|s| s.is_some()),
        (None, None) => Ok(false),
    }
    .map_err(|e| StatusError::from(e).to(want))?;
    match known {
        true => Ok(()),
        false => Err(super::pages::not_here(state, want, path)),
    }
}

/// The sign-in page of the instance (never the custom domain's, which serves
/// nothing else), coming back to `path` after.
pub(crate) fn sign_in_url(state: &AppState, path: &str) -> String {
    let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
    let base = state
        .public_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/');
    format!("{base}/login?next={next}")
}
