//! `tocsin status export`: public status pages as static files, read straight
//! from the database (like `tocsin admin-token`), so it works while the server
//! is down; the same files `tocsin serve` writes with `[status] export_dir`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tocsin_core::time::{Clock, SystemClock};
use tocsin_server::status::{export, export_all, ExportReport, PageRef};

use crate::config::{Config, ServerArgs};

/// `tocsin status …`.
#[derive(Debug, Subcommand)]
pub enum StatusCmd {
    /// Write public status pages as static files for any web server (never internal pages).
    Export(ExportArgs),
}

/// Flags of `tocsin status export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Folder to write: one folder per page slug inside it, or, with --page,
    /// that page's files in it (the folder is replaced whole).
    #[arg(long)]
    pub out: PathBuf,
    /// Export only the page with this slug.
    #[arg(long)]
    pub page: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs a `tocsin status` command.
pub async fn run(cmd: StatusCmd) -> anyhow::Result<()> {
    match cmd {
        StatusCmd::Export(args) => export_pages(args).await,
    }
}

async fn export_pages(args: ExportArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.server)?;
    crate::serve::init_logging(&config);
    let clock = SystemClock;
    let store = crate::serve::open_store(&config, &clock).await?;
    // Links in the feeds and JSON point where `tocsin serve` says it lives.
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    // Pages offer email subscriptions when `serve` can send the mail.
    let email = config.notify.smtp.is_some();
    let result = match &args.page {
        Some(slug) => export(
            &store,
            PageRef::Slug(slug.clone()),
            &base,
            email,
            clock.now(),
            &args.out,
        )
        .await
        .map(|s| ExportReport {
            exported: vec![s],
            ..Default::default()
        }),
        None => export_all(&store, &base, email, clock.now(), &args.out).await,
    };
    store.close().await;
    let report = result?;
    if report.exported.is_empty() && report.failed.is_empty() {
        println!("no public status pages to export");
    }
    for slug in &report.exported {
        let dir = match &args.page {
            Some(_) => args.out.clone(),
            None => args.out.join(slug),
        };
        let unchanged = if report.unchanged.contains(slug) {
            " (unchanged)"
        } else {
            ""
        };
        println!("{slug}: {}{unchanged}", dir.display());
    }
    // The pages that could be exported were; every failure is listed, and the
    // exit status says something went wrong (for cron and CI).
    for e in &report.failed {
        eprintln!("error: {e}");
    }
    match report.failed.len() {
        0 => Ok(()),
        n => anyhow::bail!("{n} part(s) of the export failed (listed above)"),
    }
}
