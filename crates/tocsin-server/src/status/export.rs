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
//! On disk a page's folder is a symlink to a versioned folder beside it:
//!
//! ```text
//! out/acme -> .acme-42-Xk3fP0aZ      (the folder readers and web servers use)
//! out/.acme-42-Xk3fP0aZ/index.html … (this export)
//! out/.acme-41-b7QmWc2e/…            (the one before, removed by the next export)
//! ```
//!
//! A new export is written whole into a new versioned folder and published by
//! renaming a new symlink over the old one: rename(2) over a symlink is
//! atomic, so a reader (a CDN pulling `acme/index.html`) finds the old export
//! or the new one, never half of one and never none — a 404 in that moment
//! could sit in a CDN's cache. The folder replaced is kept until the next
//! export, because a reader that followed the old link a moment before the
//! flip may still be opening files in it. A page whose version and bytes are
//! what its folder already holds (the marker file says) is not written at all.
//!
//! Internal pages are never exported; exporting all pages first removes the
//! folders of pages that are no longer public, then exports the rest, going on
//! past a page that fails and reporting every failure at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use sha2::{Digest, Sha256};
use tocsin_core::status_page::{Slug, Visibility};
use tocsin_core::time::{Clock, Timestamp};
use tocsin_store::{Store, StoreError};
use tokio::sync::watch;

use super::render::{self, RenderError};

/// The file that marks a folder as an export this code may replace or remove;
/// it holds the page's slug, version and a hash of every file.
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
    /// One page of [`export_all`] failed (the others went ahead).
    #[error("status page `{slug}`: {source}")]
    Page {
        /// The page.
        slug: String,
        /// Why.
        source: Box<ExportError>,
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

/// What [`export_all`] did.
#[derive(Debug, Default)]
pub struct ExportReport {
    /// The public pages whose folder is current: written now, or unchanged.
    pub exported: Vec<String>,
    /// Of those, the ones not written because nothing in them changed.
    pub unchanged: Vec<String>,
    /// Every failure, each naming its page or path; nothing else stopped for it.
    pub failed: Vec<ExportError>,
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
    export_page(store, page, base_url, email, now, dir)
        .await
        .map(|(slug, _)| slug)
}

/// [`export`], also saying whether anything was written (false: unchanged).
async fn export_page(
    store: &Store,
    page: PageRef,
    base_url: &str,
    email: bool,
    now: Timestamp,
    dir: &Path,
) -> Result<(String, bool), ExportError> {
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
    let marker = marker(&page.slug, r.version, &mut files);
    let dir = dir.to_path_buf();
    let version = r.version;
    let written = blocking(move || write_site(&files, &marker, version, &dir)).await?;
    Ok((page.slug, written))
}

/// The marker's text: slug, version and a hash of every file (in name order,
/// so the same export always hashes the same).
fn marker(slug: &str, version: i64, files: &mut [(String, Vec<u8>)]) -> String {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (name, bytes) in files.iter() {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    format!("{slug} {version} {}\n", hex::encode(h.finalize()))
}

/// Exports every public page into `out/<slug>/`, with the shared stylesheet
/// also at `out/assets/` (so `out/` mirrors `/status/`). Folders of pages no
/// longer public are removed first, so a failing page never keeps a page made
/// internal on the public site; a page that fails is reported and the others
/// go ahead. `Err` only when the pages cannot be listed at all.
pub async fn export_all(
    store: &Store,
    base_url: &str,
    email: bool,
    now: Timestamp,
    out: &Path,
) -> Result<ExportReport, ExportError> {
    let public: Vec<(i64, String)> = store
        .status_pages()
        .await?
        .into_iter()
        // A slug is a folder name here: only ones that parse (as every stored one should).
        .filter(|p| p.visibility == Visibility::Public && Slug::parse("slug", &p.slug).is_ok())
        .map(|p| (p.id, p.slug))
        .collect();
    let mut report = ExportReport::default();
    let kept: Vec<String> = public.iter().map(|(_, s)| s.clone()).collect();
    let dir = out.to_path_buf();
    report.failed = blocking(move || Ok(prune(&dir, &kept))).await?;
    for (id, slug) in public {
        let dir = out.join(&slug);
        match export_page(store, PageRef::Id(id), base_url, email, now, &dir).await {
            Ok((slug, written)) => {
                if !written {
                    report.unchanged.push(slug.clone());
                }
                report.exported.push(slug);
            }
            // Made internal or deleted since the list was read: its folder goes too.
            Err(ExportError::Internal(_) | ExportError::NoPage(_)) => {
                let out = out.to_path_buf();
                let gone = vec![slug.clone()];
                let failed = blocking(move || Ok(remove_exports(&out, &gone))).await?;
                report.failed.extend(failed);
            }
            Err(e) => report.failed.push(ExportError::Page {
                slug,
                source: Box::new(e),
            }),
        }
    }
    let out = out.to_path_buf();
    let css = blocking(move || {
        write_file(
            &out.join("assets").join("status.css"),
            super::pages::STATUS_CSS.as_bytes(),
        )
    })
    .await;
    if let Err(e) = css {
        report.failed.push(e);
    }
    Ok(report)
}

/// Removes earlier exports in `out` of pages not among `kept`; returns what
/// could not be removed (the rest is removed regardless).
fn prune(out: &Path, kept: &[String]) -> Vec<ExportError> {
    let entries = match std::fs::read_dir(out) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => return vec![io(out)(e)],
    };
    let mut gone = Vec::new();
    for entry in entries {
        let name = match entry {
            Ok(e) => e.file_name().to_string_lossy().into_owned(),
            Err(e) => return vec![io(out)(e)],
        };
        // Versioned folders (`.acme-…`) go with their page's link, below.
        if !name.starts_with('.') && !kept.contains(&name) {
            gone.push(name);
        }
    }
    remove_exports(out, &gone)
}

/// Removes the exports named `names` in `out` (a link and its versioned
/// folders, or a folder of an older export); anything else there is left.
fn remove_exports(out: &Path, names: &[String]) -> Vec<ExportError> {
    let mut failed = Vec::new();
    for name in names {
        let path = out.join(name);
        let result = match Current::of(&path, name) {
            Ok(Current::Link(_)) => std::fs::remove_file(&path)
                .map_err(io(&path))
                .and_then(|_| remove_versions(out, name, &[])),
            // An empty folder is nobody's export: left alone.
            Ok(Current::Folder) if path.join(MARKER).is_file() => {
                std::fs::remove_dir_all(&path).map_err(io(&path))
            }
            // Not ours (or not there): not touched.
            Ok(Current::Folder | Current::Missing) | Err(ExportError::NotAnExport(_)) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            failed.push(e);
        }
    }
    failed
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

/// What is at a page's folder now.
#[derive(Debug, PartialEq, Eq)]
enum Current {
    /// Nothing.
    Missing,
    /// Our symlink, to this versioned folder (a name beside it).
    Link(String),
    /// A real folder: an export written before exports were versioned, or an
    /// empty folder.
    Folder,
}

impl Current {
    /// What `dir` (named `name`) is; `NotAnExport` when it is something this
    /// code did not write.
    fn of(dir: &Path, name: &str) -> Result<Current, ExportError> {
        let meta = match std::fs::symlink_metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Current::Missing),
            Err(e) => return Err(io(dir)(e)),
        };
        let not_ours = || ExportError::NotAnExport(dir.to_path_buf());
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(dir).map_err(io(dir))?;
            let target = target.to_str().ok_or_else(not_ours)?;
            return match is_version_of(name, target) {
                true => Ok(Current::Link(target.to_string())),
                false => Err(not_ours()),
            };
        }
        if meta.is_dir() && (dir.join(MARKER).is_file() || is_empty_dir(dir)) {
            return Ok(Current::Folder);
        }
        Err(not_ours())
    }
}

/// Whether `entry` is a versioned folder name of page folder `name`:
/// `.<name>-<version>-<tag>`, the tag without hyphens.
fn is_version_of(name: &str, entry: &str) -> bool {
    let Some(rest) = entry
        .strip_prefix('.')
        .and_then(|e| e.strip_prefix(name))
        .and_then(|e| e.strip_prefix('-'))
    else {
        return false;
    };
    match rest.split_once('-') {
        Some((version, tag)) => {
            !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_digit())
                && !tag.is_empty()
                && tag.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// Writes `files` (and `marker`) as the export in `dir`: into a new versioned
/// folder beside it, published by renaming a symlink over `dir`. Returns false,
/// writing nothing, when `dir` holds this very export already.
fn write_site(
    files: &[(String, Vec<u8>)],
    marker: &str,
    version: i64,
    dir: &Path,
) -> Result<bool, ExportError> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ExportError::NotAnExport(dir.to_path_buf()))?;
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let current = Current::of(dir, name)?;
    if current != Current::Missing
        && std::fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m == marker)
    {
        return Ok(false);
    }
    let tag = tocsin_store::random_token(8);
    let version_name = format!(".{name}-{version}-{tag}");
    let folder = parent.join(&version_name);
    let link = parent.join(format!(".{name}.link-{tag}"));
    let written = (|| {
        for (file, bytes) in files {
            write_file(&folder.join(file), bytes)?;
        }
        write_file(&folder.join(MARKER), marker.as_bytes())?;
        symlink(&version_name, &link)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&folder);
        let _ = std::fs::remove_file(&link);
        return Err(e);
    }
    let published = match &current {
        // A folder from before exports were versioned: a directory cannot be
        // renamed over, so this one export moves it aside first (a moment
        // without the folder, once); every later export is atomic.
        Current::Folder => {
            let old = parent.join(format!(".{name}.old-{tag}"));
            std::fs::rename(dir, &old).map_err(io(dir)).and_then(|_| {
                match std::fs::rename(&link, dir) {
                    Ok(()) => {
                        let _ = std::fs::remove_dir_all(&old);
                        Ok(())
                    }
                    Err(e) => {
                        let _ = std::fs::rename(&old, dir);
                        Err(io(dir)(e))
                    }
                }
            })
        }
        Current::Missing | Current::Link(_) => std::fs::rename(&link, dir).map_err(io(dir)),
    };
    if let Err(e) = published {
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_dir_all(&folder);
        return Err(e);
    }
    // The folder just replaced stays until the next export (readers may be in
    // it); older ones, and any a failed run left, go now.
    let mut keep = vec![version_name];
    if let Current::Link(previous) = current {
        keep.push(previous);
    }
    if let Err(e) = remove_versions(parent, name, &keep) {
        // Published all the same: the next export tries again.
        tracing::warn!(error = %e, "status export: cannot remove an old version");
    }
    Ok(true)
}

#[cfg(unix)]
fn symlink(target: &str, link: &Path) -> Result<(), ExportError> {
    std::os::unix::fs::symlink(target, link).map_err(io(link))
}

#[cfg(not(unix))]
fn symlink(_target: &str, link: &Path) -> Result<(), ExportError> {
    Err(io(link)(std::io::Error::other(
        "static export needs symlinks (a Unix system)",
    )))
}

/// Removes the versioned folders of page folder `name` in `parent` but `keep`.
fn remove_versions(parent: &Path, name: &str, keep: &[String]) -> Result<(), ExportError> {
    for entry in std::fs::read_dir(parent).map_err(io(parent))? {
        let entry = entry.map_err(io(parent))?;
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        if !is_version_of(name, &entry_name) || keep.contains(&entry_name) {
            continue;
        }
        let path = entry.path();
        if entry.file_type().map_err(io(&path))?.is_dir() {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// Writes one file whole: to a temporary name, then renamed. A failed write
/// (a full disk) removes its temporary file, so failures leave no litter.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(io(p))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", tocsin_store::random_token(8)));
    let result = std::fs::write(&tmp, bytes)
        .map_err(io(&tmp))
        .and_then(|_| std::fs::rename(&tmp, path).map_err(io(path)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Exports every public page to `out` at once after a change on this node
/// (a second later, so a burst of changes is one export) and every `every`
/// (changes made on other nodes, and the uptime bars), until `stop` turns
/// true. Each failure is logged; the pages that could be exported are.
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
            Ok(report) => {
                for e in &report.failed {
                    tracing::warn!(error = %e, dir = %out.display(), "status page export failed");
                }
                tracing::debug!(pages = ?report.exported, unchanged = ?report.unchanged,
                    dir = %out.display(), "status pages exported");
            }
            Err(e) => tracing::warn!(error = %e, dir = %out.display(), "status page export failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tocsin-export-{name}-{}",
            tocsin_store::random_token(8)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn litter(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let d = scratch("tmp");
        // The rename fails (a folder with something in it is in the way), as a
        // full disk fails the write: either way the temporary file goes.
        std::fs::create_dir_all(d.join("index.html/x")).unwrap();
        assert!(write_file(&d.join("index.html"), b"page").is_err());
        assert_eq!(litter(&d), Vec::<String>::new());
        write_file(&d.join("ok.html"), b"page").unwrap();
        assert_eq!(std::fs::read(d.join("ok.html")).unwrap(), b"page");
        assert_eq!(litter(&d), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn versioned_folders_are_told_apart_by_page() {
        assert!(is_version_of("acme", ".acme-42-Xk3fP0aZ"));
        for other in [
            ".acme-2-42-Xk3fP0aZ", // page acme-2's
            "acme-42-Xk3fP0aZ",
            ".acme-42-",
            ".acme--Xk3f",
            ".acme-x-Xk3f",
            ".acme.link-Xk3f",
            ".acme",
        ] {
            assert!(!is_version_of("acme", other), "{other}");
        }
        assert!(is_version_of("acme-2", ".acme-2-42-Xk3fP0aZ"));
    }
}
