//! The stylesheet, the script and the icon, compiled into the binary. Pages link
//! them with `?v=<hash of the content>`, so browsers may keep them for good.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::state::AppState;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
const ICON: &str = include_str!("assets/icon.svg");

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/assets/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/icon.svg",
            get(|| async { asset(ICON, "image/svg+xml") }),
        )
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn version(cell: &'static OnceLock<String>, body: &str) -> &'static str {
    cell.get_or_init(|| hex::encode(&Sha256::digest(body.as_bytes())[..5]))
}

/// The stylesheet's content hash.
pub(crate) fn css_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    version(&V, CSS)
}

/// The script's content hash.
pub(crate) fn js_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    version(&V, JS)
}
