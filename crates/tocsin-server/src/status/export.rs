//! Static export: a public page's bodies as files, for any web server to serve
//! as a site root (a CDN, an nginx far from the incident). The files are the
//! server's own renderings, byte for byte; their links are relative, so they
//! work there as they do at `/status/<slug>/`.
//!
//! ```text
//! index.html  history.html  incidents/<id>.html  theme.css  logo.<ext>
//! history.atom  history.rss  api/v2/*.json  assets/status.css
//! ```
//!
//! An export is written into a temporary folder beside its target and renamed
//! into place, so a reader sees the old export or the new one, never half of
//! one. Internal pages are never exported; exporting all pages removes the
//! folders of pages that are no longer public.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use tocsin_core::status_page::{Slug, Visibility};
use tocsin_core::time::{Clock, Timestamp};
use tocsin_store::{Store, StoreError};
use tokio::sync::watch;

use super::render::{self, RenderError};

/// The file that marks a folder as an export this code may replace or remove.
const MARKER: &str = ".tocsin-status-export";

/// Which page to export.
#[derive(Debug, Clone)]
pub enum PageRef {
    /// By id.
    Id(i64),
    /// By slug.
    Slug(String),
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No such page.
    #[error("no status page `{0}`")]
    NoPage(String),
    /// The page is internal.
    #[error("status page `{0}` is internal; internal pages are never exported")]
    Internal(String),
    /// The target exists and is not an earlier export.
    #[error("{0} exists and is not an earlier export (no {MARKER} in it); not replacing it")]
    NotAnExport(PathBuf),
    /// Reading the page failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<StoreError> for ExportError {
    fn from(e: StoreError) -> Self {
        ExportError::Render(e.into())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Exports one public page into `dir` (replaced whole); links in the JSON and
/// feeds are built on `base_url`; `email`: the server offers email
/// subscriptions (it has a mail relay). Returns the page's slug.
pub async fn export(
    store: &Store,
    page: PageRef,
    base_url: &str,
    email: bool,
    now: Timestamp,
    dir: &Path,
) -> Result<String, ExportError> {
    let found = match &page {
        PageRef::Id(id) => match store.status_page(*id).await {
            Ok(p) => Some(p),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        PageRef::Slug(slug) => store.status_page_by_slug(slug).await?,
    };
    let named = match &page {
        PageRef::Id(id) => id.to_string(),
        PageRef::Slug(s) => s.clone(),
    };
    let page = found.ok_or(ExportError::NoPage(named))?;
    let r = render::render(store, page.id, base_url, email, now).await?;
    // Checked on what was rendered: a page made internal meanwhile stays out.
    if r.visibility != Visibility::Public {
        return Err(ExportError::Internal(page.slug));
    }
    let mut files: Vec<(String, Vec<u8>)> = r
        .docs
        .iter()
        .map(|(doc, body)| (doc.file(r.logo_ext), body.bytes.to_vec()))
        .collect();
    files.push((
        "assets/status.css".into(),
        super::pages::STATUS_CSS.as_bytes().to_vec(),
    ));
    files.push((
        MARKER.into(),
        format!("{} {}\n", page.slug, r.version).into_bytes(),
    ));
    let dir = dir.to_path_buf();
    blocking(move || write_site(&files, &dir)).await?;
    Ok(page.slug)
}

/// Exports every public page into `out/<slug>/`, with the shared stylesheet
/// also at `out/assets/` (so `out/` mirrors `/status/`), and removes earlier
/// exports of pages no longer public. Returns the slugs exported.
pub async fn export_all(
    store: &Store,
    base_url: &str,
    email: bool,
    now: Timestamp,
    out: &Path,
) -> Result<Vec<String>, ExportError> {
    let mut done = Vec::new();
    for p in store.status_pages().await? {
        // A slug is a folder name here: only ones that parse (as every stored one should).
        if p.visibility != Visibility::Public || Slug::parse("slug", &p.slug).is_err() {
            continue;
        }
        match export(
            store,
            PageRef::Id(p.id),
            base_url,
            email,
            now,
            &out.join(&p.slug),
        )
        .await
        {
            Ok(slug) => done.push(slug),
            // Made internal or deleted since the list was read: nothing to write.
            Err(ExportError::Internal(_) | ExportError::NoPage(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let out = out.to_path_buf();
    blocking(move || {
        write_file(
            &out.join("assets").join("status.css"),
            super::pages::STATUS_CSS.as_bytes(),
        )?;
        prune(&out, &done)?;
        Ok(done)
    })
    .await
}

/// Removes earlier exports in `out` of pages not among `kept`.
fn prune(out: &Path, kept: &[String]) -> Result<(), ExportError> {
    for entry in std::fs::read_dir(out).map_err(io(out))? {
        let path = entry.map_err(io(out))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.join(MARKER).is_file() && !kept.iter().any(|s| s == name) {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ExportError> + Send + 'static,
) -> Result<T, ExportError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ExportError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })?
}

/// Writes `files` into a fresh folder beside `dir`, then puts it in `dir`'s place.
fn write_site(files: &[(String, Vec<u8>)], dir: &Path) -> Result<(), ExportError> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ExportError::NotAnExport(dir.to_path_buf()))?;
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    if dir.exists() && !dir.join(MARKER).is_file() && !is_empty_dir(dir) {
        return Err(ExportError::NotAnExport(dir.to_path_buf()));
    }
    let tag = tocsin_store::random_token(8);
    let tmp = parent.join(format!(".{name}.new-{tag}"));
    let result = (|| {
        for (file, bytes) in files {
            write_file(&tmp.join(file), bytes)?;
        }
        if dir.exists() {
            // Two renames: between them the folder is briefly absent, never partial.
            let old = parent.join(format!(".{name}.old-{tag}"));
            std::fs::rename(dir, &old).map_err(io(dir))?;
            if let Err(e) = std::fs::rename(&tmp, dir) {
                let _ = std::fs::rename(&old, dir);
                return Err(io(dir)(e));
            }
            std::fs::remove_dir_all(&old).map_err(io(&old))
        } else {
            std::fs::rename(&tmp, dir).map_err(io(dir))
        }
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// Writes one file whole: to a temporary name, then renamed.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(io(p))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", tocsin_store::random_token(8)));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Exports every public page to `out` at once after a change on this node
/// (a second later, so a burst of changes is one export) and every `every`
/// (changes made on other nodes, and the minute-by-minute uptime), until
/// `stop` turns true.
pub async fn run_exporter(
    store: Store,
    clock: Arc<dyn Clock>,
    base_url: String,
    email: bool,
    out: PathBuf,
    every: StdDuration,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = store.status_changes();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            stopped = stop.changed() => {
                if stopped.is_err() {
                    break;
                }
                continue;
            }
            _ = tick.tick() => {}
            moved = changes.changed() => {
                if moved.is_err() {
                    break;
                }
                tokio::time::sleep(StdDuration::from_secs(1)).await;
                changes.borrow_and_update();
            }
        }
        match export_all(&store, &base_url, email, clock.now(), &out).await {
            Ok(slugs) => tracing::debug!(?slugs, dir = %out.display(), "status pages exported"),
            Err(e) => tracing::warn!(error = %e, dir = %out.display(), "status page export failed"),
        }
    }
}
