//! The static export on disk, both back ends: the page folder is a symlink to
//! a versioned folder, flipped atomically (a reader polling it never finds it
//! missing), an unchanged page is not written again, a folder from an older
//! export is taken over once, and exporting every page goes on past a page
//! that fails — after removing the folders of pages no longer public.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tocsin_core::status_page::{ComponentStatus, Visibility};
use tocsin_server::status::{export, export_all, ExportError, PageRef};
use tocsin_store::status::StatusPageChanges;

use crate::both_backends;
use crate::status_public::{actor, component, now, page, set_status};
use crate::support::TestApp;

both_backends!(
    the_folder_is_a_symlink_flipped_to_each_new_version,
    a_reader_never_finds_the_folder_missing,
    exporting_all_pages_prunes_first_and_goes_on_past_a_failure,
);

const MARKER: &str = ".tocsin-status-export";

fn scratch() -> PathBuf {
    std::env::temp_dir().join(crate::support::unique_name("tocsin-export"))
}

/// Where the page folder's symlink points (a name beside it).
fn target(site: &Path) -> String {
    let meta = std::fs::symlink_metadata(site).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "{} is a symlink",
        site.display()
    );
    std::fs::read_link(site)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The hidden versioned folders of page folder `name` in `dir`.
fn versions(dir: &Path, name: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{name}-")))
        .collect();
    v.sort();
    v
}

async fn export_acme(app: &TestApp, site: &Path) {
    export(
        &app.store,
        PageRef::Slug("acme".into()),
        "",
        true,
        now(app),
        site,
    )
    .await
    .unwrap();
}

async fn the_folder_is_a_symlink_flipped_to_each_new_version(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    let dir = scratch();
    let site = dir.join("acme");
    // A folder left by an export from before versioned folders: taken over once.
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join(MARKER), "acme 1\n").unwrap();
    std::fs::write(site.join("stale.html"), "old").unwrap();
    export_acme(&app, &site).await;
    let first = target(&site);
    let version = app.store.status_page(p).await.unwrap().version;
    assert!(
        first.starts_with(&format!(".acme-{version}-")),
        "{first}: named by the page's version"
    );
    assert!(site.join("index.html").is_file());
    assert!(!site.join("stale.html").exists(), "the old folder is gone");
    assert_eq!(versions(&dir, "acme"), std::slice::from_ref(&first));
    let marker = std::fs::read_to_string(site.join(MARKER)).unwrap();
    assert!(marker.starts_with(&format!("acme {version} ")), "{marker}");

    // Nothing changed: nothing written, the same folder, the same marker file.
    let marked_at = std::fs::metadata(site.join(MARKER))
        .unwrap()
        .modified()
        .unwrap();
    export_acme(&app, &site).await;
    assert_eq!(target(&site), first);
    assert_eq!(
        std::fs::metadata(site.join(MARKER))
            .unwrap()
            .modified()
            .unwrap(),
        marked_at
    );

    // A change: a new versioned folder; the one replaced stays until the next.
    set_status(&app, api, ComponentStatus::MajorOutage).await;
    export_acme(&app, &site).await;
    let second = target(&site);
    assert_ne!(second, first);
    assert!(std::fs::read_to_string(site.join("index.html"))
        .unwrap()
        .contains("st-major_outage"));
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(versions(&dir, "acme"), both);
    set_status(&app, api, ComponentStatus::Operational).await;
    export_acme(&app, &site).await;
    let third = target(&site);
    let mut last_two = vec![second, third];
    last_two.sort();
    assert_eq!(versions(&dir, "acme"), last_two, "the oldest is removed");

    // A symlink to somewhere else is not ours to replace.
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(dir.join("mine")).unwrap();
    std::os::unix::fs::symlink("mine", &elsewhere).unwrap();
    let refused = export(&app.store, PageRef::Id(p), "", true, now(&app), &elsewhere).await;
    assert!(
        matches!(refused, Err(ExportError::NotAnExport(_))),
        "{refused:?}"
    );
    assert_eq!(target(&elsewhere), "mine");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn a_reader_never_finds_the_folder_missing(app: TestApp) {
    let p = page(&app, "acme").await;
    let api = component(&app, p, None, "API").await;
    let dir = scratch();
    let site = dir.join("acme");
    export_acme(&app, &site).await;
    // Readers poll the page as a web server would, as fast as they can.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, reads, index) = (stop.clone(), reads.clone(), site.join("index.html"));
            std::thread::spawn(move || {
                let mut missing = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match std::fs::read(&index) {
                        Ok(body) if !body.is_empty() => {}
                        Ok(_) => missing.push("empty".to_string()),
                        Err(e) => missing.push(e.to_string()),
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                missing
            })
        })
        .collect();
    // Every export writes (the page changes each time) and flips the folder.
    let mut flips = std::collections::HashSet::new();
    for i in 0..40 {
        let status = if i % 2 == 0 {
            ComponentStatus::MajorOutage
        } else {
            ComponentStatus::Operational
        };
        set_status(&app, api, status).await;
        export_acme(&app, &site).await;
        flips.insert(target(&site));
    }
    stop.store(true, Ordering::Relaxed);
    let missing: Vec<String> = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    assert_eq!(flips.len(), 40, "every export was a new folder");
    assert!(
        reads.load(Ordering::Relaxed) > 40,
        "the readers kept reading"
    );
    assert!(missing.is_empty(), "a reader found no page: {missing:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn exporting_all_pages_prunes_first_and_goes_on_past_a_failure(app: TestApp) {
    // Pages in the order they are listed: the failing one first.
    let alpha = page(&app, "alpha").await;
    let beta = page(&app, "beta").await;
    let gamma = page(&app, "gamma").await;
    for p in [alpha, beta, gamma] {
        component(&app, p, None, "API").await;
    }
    let out = scratch();
    let report = export_all(&app.store, "", true, now(&app), &out)
        .await
        .unwrap();
    assert_eq!(report.exported, ["alpha", "beta", "gamma"]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // Exported again with nothing changed: nothing written.
    let again = export_all(&app.store, "", true, now(&app), &out)
        .await
        .unwrap();
    assert_eq!(again.unchanged, ["alpha", "beta", "gamma"]);

    // alpha's folder is replaced by something that is not an export, so its
    // export fails; gamma is made internal; beta changes.
    std::fs::remove_file(out.join("alpha")).unwrap();
    std::fs::create_dir_all(out.join("alpha")).unwrap();
    std::fs::write(out.join("alpha/keep.txt"), "mine").unwrap();
    let hide = StatusPageChanges {
        visibility: Some(Visibility::Internal),
        ..Default::default()
    };
    app.store
        .update_status_page(gamma, &hide, &actor(&app), now(&app))
        .await
        .unwrap();
    let rename = StatusPageChanges {
        name: Some("Beta Cloud".into()),
        ..Default::default()
    };
    app.store
        .update_status_page(beta, &rename, &actor(&app), now(&app))
        .await
        .unwrap();
    let report = export_all(&app.store, "", true, now(&app), &out)
        .await
        .unwrap();
    // alpha failed, and says so naming the page…
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let why = report.failed[0].to_string();
    assert!(
        why.contains("`alpha`") && why.contains("not an earlier export"),
        "{why}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("alpha/keep.txt")).unwrap(),
        "mine"
    );
    // …and the rest went ahead: beta written, gamma gone from the public site.
    assert_eq!(report.exported, ["beta"]);
    assert!(std::fs::read_to_string(out.join("beta/index.html"))
        .unwrap()
        .contains("Beta Cloud"));
    assert!(!out.join("gamma").exists());
    assert!(
        versions(&out, "gamma").is_empty(),
        "its versioned folders too"
    );
    assert!(out.join("assets/status.css").is_file());
    let _ = std::fs::remove_dir_all(&out);
}
