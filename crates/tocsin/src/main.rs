//! `tocsin`: the server and its command-line client in one binary.

mod bench;
mod bench_analytics;
mod bench_pages;
mod bench_paging;
mod bench_similar;
mod client;
mod config;
mod notify_config;
mod serve;
mod status_cmd;
mod workflow_config;

use clap::{Parser, Subcommand};

/// Tocsin: open-source incident management.
#[derive(Debug, Parser)]
#[command(name = "tocsin", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (embedded SQLite unless --database names PostgreSQL).
    Serve(config::ServerArgs),
    /// Apply database migrations and exit.
    Migrate(config::ServerArgs),
    /// Print a new admin token, reading the database directly (break-glass access).
    AdminToken(config::ServerArgs),
    /// Load generator: send alerts to a server on this machine and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Paging latency: from an alert accepted to its first notification handed to delivery (in-process server).
    BenchPaging(bench_paging::PagingArgs),
    /// Web UI page latency: seeds a database with 10,000 incidents and times each page's HTML (in-process server).
    BenchPages(bench_pages::PagesArgs),
    /// Similar-incident search latency: seeds a database with 100,000 incidents and times searches (in-process server).
    BenchSimilar(bench_similar::SimilarArgs),
    /// Analytics latency: writes a million synthetic incidents with rollups and times the analytics endpoints (in-process server).
    BenchAnalytics(bench_analytics::AnalyticsArgs),
    /// Public status pages: `export` writes them as static files, reading the database directly.
    #[command(subcommand)]
    Status(status_cmd::StatusCmd),
    #[command(flatten)]
    Client(client::Command),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => run_server(args, Mode::Serve).await,
        Command::Migrate(args) => run_server(args, Mode::Migrate).await,
        Command::AdminToken(args) => run_server(args, Mode::AdminToken).await,
        Command::Client(c) => client::run(c).await,
        Command::Bench(args) => bench::run(args).await,
        Command::BenchPaging(args) => bench_paging::run(args).await,
        Command::BenchPages(args) => bench_pages::run(args).await,
        Command::BenchSimilar(args) => bench_similar::run(args).await,
        Command::BenchAnalytics(args) => bench_analytics::run(args).await,
        Command::Status(cmd) => status_cmd::run(cmd).await,
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

enum Mode {
    Serve,
    Migrate,
    AdminToken,
}

async fn run_server(args: config::ServerArgs, mode: Mode) -> anyhow::Result<()> {
    let config = config::Config::load(&args)?;
    serve::init_logging(&config);
    match mode {
        Mode::Serve => serve::serve(config).await,
        Mode::Migrate => serve::migrate(config).await,
        Mode::AdminToken => serve::admin_token(config).await,
    }
}
