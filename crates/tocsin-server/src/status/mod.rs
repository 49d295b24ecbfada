//! Public status pages: the HTML page, the Statuspage-compatible JSON, the
//! Atom and RSS feeds, all rendered from one [`PublicStatus`] snapshot, served
//! from an in-memory cache refreshed on change, and exportable as static files.
//!
//! [`PublicStatus`]: tocsin_core::status_page::public::PublicStatus

pub mod feed;
pub mod json;
