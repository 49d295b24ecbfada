//! Public status pages: the HTML page, the Statuspage-compatible JSON, the
//! Atom and RSS feeds, all rendered from one [`PublicStatus`] snapshot, served
//! from an in-memory cache refreshed on change, and exportable as static files.
//!
//! Every link inside a rendered page is relative to the page's own folder, so
//! the same bytes work at `/status/<slug>/`, at the root of the page's custom
//! domain, and as `index.html` of a static export served by any web server.
//! That is why the page lives at `/status/<slug>/` (with the slash) and why
//! `…/history.html`, `…/incidents/<id>.html` and `…/logo.<ext>` are served as
//! aliases (see [`host`]).
//!
//! [`PublicStatus`]: tocsin_core::status_page::public::PublicStatus

pub mod feed;
pub mod json;

mod cache;
mod documents;
mod export;
mod format;
mod host;
mod limit;
mod links;
mod pages;
mod render;
mod respond;
mod subscribe;
mod view;

pub use cache::{run_refresher, CacheStats, StatusCache};
pub use export::{export, export_all, run_exporter, ExportError, ExportReport, PageRef};
pub(crate) use host::{instance_host, route_by_host};
pub use limit::SubscribeLimiter;

use axum::middleware;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every public status-page route, with the public pages' own security headers.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(pages::routes())
        .merge(documents::routes())
        .merge(subscribe::routes())
        .merge(links::routes())
        .layer(middleware::map_response(respond::security_headers))
}
