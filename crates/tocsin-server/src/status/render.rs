//! Renders every public body of one page from one snapshot: the server's cache
//! keeps the result, the static export writes it to files. The same function
//! does both, so an export is byte for byte what the server serves.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::HeaderValue;
use chrono::NaiveDate;
use chrono_tz::Tz;
use sha2::{Digest, Sha256};
use tocsin_core::status_page::public::PublicStatus;
use tocsin_core::status_page::Visibility;
use tocsin_core::time::Timestamp;
use tocsin_store::{Store, StoreError};

use super::feed;
use super::json::Document as JsonDoc;
use super::view::{self, Site};

pub(crate) const HTML: &str = "text/html; charset=utf-8";
pub(crate) const CSS: &str = "text/css; charset=utf-8";
pub(crate) const JSON: &str = "application/json";
pub(crate) const ATOM: &str = "application/atom+xml; charset=utf-8";
pub(crate) const RSS: &str = "application/rss+xml; charset=utf-8";

/// One public body of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Doc {
    Page,
    History,
    Incident(i64),
    Theme,
    Json(JsonDoc),
    Atom,
    Rss,
    Logo,
}

impl Doc {
    /// Its file in a static export, relative to the page's folder. The server
    /// answers the same names (the `.html` ones and the logo as aliases).
    pub fn file(self, logo_ext: &str) -> String {
        match self {
            Doc::Page => "index.html".into(),
            Doc::History => "history.html".into(),
            Doc::Incident(id) => format!("incidents/{id}.html"),
            Doc::Theme => "theme.css".into(),
            Doc::Json(j) => format!("api/v2/{}", j.path()),
            Doc::Atom => "history.atom".into(),
            Doc::Rss => "history.rss".into(),
            Doc::Logo => format!("logo.{logo_ext}"),
        }
    }
}

/// A rendered body with what its response needs.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub bytes: Bytes,
    pub content_type: &'static str,
    /// The page version and a hash of the bytes: a re-render that changed
    /// nothing (the minute-by-minute refresh) keeps the tag, so clients get 304.
    pub etag: HeaderValue,
}

impl Body {
    pub fn new(bytes: Vec<u8>, content_type: &'static str, version: i64) -> Body {
        let hash = hex::encode(&Sha256::digest(&bytes)[..8]);
        let etag = HeaderValue::from_str(&format!("\"{version}-{hash}\""))
            .expect("digits and hex make a header value");
        Body {
            bytes: bytes.into(),
            content_type,
            etag,
        }
    }
}

/// Everything one page serves, rendered at one moment from one snapshot.
pub(crate) struct Rendered {
    pub page_id: i64,
    /// The page's version when its data was read (the data is at least this new).
    pub version: i64,
    pub visibility: Visibility,
    pub allow_subscribers: bool,
    /// The snapshot the bodies came from (the subscribe form lists its components).
    pub snapshot: PublicStatus,
    pub tz: Tz,
    pub rendered_at: Timestamp,
    /// Today in the page's zone when rendered: the uptime bars move at midnight.
    pub local_date: NaiveDate,
    /// Whether the bodies would read differently a minute later with nothing
    /// changed (see [`view::ages_with_time`]); if not, only a new version or
    /// the page's midnight makes them stale.
    pub ages: bool,
    pub logo_ext: &'static str,
    pub docs: HashMap<Doc, Body>,
}

/// Why a page could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Reading the page failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A template failed (a bug, not bad data: every value is escaped).
    #[error("template failed: {0}")]
    Template(#[from] askama::Error),
}

/// Reads page `page_id` once and renders all its bodies; links in the JSON and
/// feeds are built on `base_url`. `email`: whether this server can send mail,
/// without which a page offers no subscription even when its settings allow one.
pub(crate) async fn render(
    store: &Store,
    page_id: i64,
    base_url: &str,
    email: bool,
    now: Timestamp,
) -> Result<Rendered, RenderError> {
    // The version is read first: what follows is at least that new, so a change
    // that lands meanwhile makes this render look stale, never falsely fresh.
    let page = store.status_page(page_id).await?;
    let snapshot = store.public_status(page_id, base_url, now).await?;
    let logo = match &snapshot.page.logo {
        Some(_) => store
            .status_page_logo(page_id)
            .await?
            .and_then(|(t, bytes)| logo_kind(&t).map(|k| (k, bytes))),
        None => None,
    };
    let tz: Tz = snapshot.page.time_zone.parse().unwrap_or(Tz::UTC);
    let logo_ext = logo.as_ref().map(|((_, ext), _)| *ext).unwrap_or("png");
    // Readers subscribe themselves to public pages only (an admin adds an
    // internal page's subscribers), and only where the mail can be sent.
    let allow_subscribers = page.allow_subscribers
        && email
        && page.visibility == tocsin_core::status_page::Visibility::Public;
    let site = Site::new(
        &snapshot,
        base_url,
        allow_subscribers,
        logo.as_ref().map(|_| logo_ext),
    );
    let mut docs: HashMap<Doc, Body> = documents(&site, page.version)?.into_iter().collect();
    if let Some(((content_type, _), bytes)) = logo {
        docs.insert(Doc::Logo, Body::new(bytes, content_type, page.version));
    }
    Ok(Rendered {
        page_id,
        version: page.version,
        visibility: page.visibility,
        allow_subscribers,
        tz,
        rendered_at: now,
        local_date: now.with_timezone(&tz).date_naive(),
        ages: view::ages_with_time(&snapshot),
        logo_ext,
        docs,
        snapshot,
    })
}

/// Every body but the logo, from the snapshot alone.
fn documents(site: &Site, version: i64) -> Result<Vec<(Doc, Body)>, askama::Error> {
    let s = site.snap;
    let html = |text: String| Body::new(text.into_bytes(), HTML, version);
    let mut out = vec![
        (Doc::Page, html(view::page(site)?)),
        (Doc::History, html(view::history(site)?)),
        (
            Doc::Theme,
            Body::new(view::theme(s).into_bytes(), CSS, version),
        ),
        (
            Doc::Atom,
            Body::new(feed::atom(s).into_bytes(), ATOM, version),
        ),
        (Doc::Rss, Body::new(feed::rss(s).into_bytes(), RSS, version)),
    ];
    for p in s.incidents.iter().chain(&s.maintenances) {
        out.push((Doc::Incident(p.id), html(view::incident(site, p)?)));
    }
    for j in JsonDoc::ALL {
        out.push((Doc::Json(j), Body::new(j.render(s), JSON, version)));
    }
    Ok(out)
}

/// The logo types the store accepts, with the extension an export gives them;
/// anything else is not served (a static content type, never the stored text).
fn logo_kind(content_type: &str) -> Option<(&'static str, &'static str)> {
    match content_type {
        "image/png" => Some(("image/png", "png")),
        "image/jpeg" => Some(("image/jpeg", "jpg")),
        "image/gif" => Some(("image/gif", "gif")),
        "image/webp" => Some(("image/webp", "webp")),
        _ => None,
    }
}
