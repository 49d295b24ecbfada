//! The web UI: server-rendered pages (askama templates under `templates/`), one
//! stylesheet and one script embedded in the binary, signed in by a session
//! cookie. Every page works without JavaScript; the script adds live updates
//! (server-sent events from `/live`) and small conveniences.
//!
//! Pages read and write through the same store calls as the REST API, so a page
//! and an API request do the same thing and leave the same timeline.

mod assets;
mod common;
mod dashboard;
mod incidents;
mod live;
mod login;
pub(crate) mod markdown;
mod session;

mod alerts;
mod analytics;
mod oncall;
mod people;
mod postmortems;
mod room;
mod runbooks;
mod services;
mod statuspages;
mod workflows;

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::Router;

use crate::state::AppState;

pub(crate) use common::{Chrome, WebError, WebResult};
pub use live::Live;
pub use login::LoginFailures;
// The public status pages read the same session (internal pages) and compare
// their form tokens the same way.
pub(crate) use session::{cookie, same_secret, COOKIE_NAME};

/// `err` as the UI's error page, with the UI's security headers.
pub(crate) fn error_page(err: crate::ApiError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut resp = WebError::Api(err).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Every page and asset of the UI.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(login::routes())
        .merge(dashboard::routes())
        .merge(incidents::routes())
        .merge(room::routes())
        .merge(alerts::routes())
        .merge(services::routes())
        .merge(oncall::routes())
        .merge(people::routes())
        .merge(statuspages::routes())
        .merge(workflows::routes())
        .merge(runbooks::routes())
        .merge(postmortems::routes())
        .merge(analytics::routes())
        .merge(live::routes())
        .layer(middleware::map_response(security_headers))
        .merge(assets::routes())
}

/// What every UI response carries: a strict Content-Security-Policy (no inline
/// script or style, nothing from elsewhere), no framing, no sniffing, and no
/// caching of pages that show incident data.
async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    let h = resp.headers_mut();
    // A response may carry its own, stricter policy too (an attachment's
    // `sandbox`): it is kept beside the pages' one, and browsers enforce both.
    let own = h.remove(header::CONTENT_SECURITY_POLICY);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    if let Some(own) = own {
        h.append(header::CONTENT_SECURITY_POLICY, own);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// The Content-Security-Policy of every page.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
