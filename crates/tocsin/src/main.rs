//! `tocsin`: the server and its command-line client in one binary.

mod client;
mod config;
mod serve;

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
    #[command(flatten)]
    Client(client::Command),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => run_server(args, true).await,
        Command::Migrate(args) => run_server(args, false).await,
        Command::Client(c) => client::run(c).await,
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run_server(args: config::ServerArgs, serve: bool) -> anyhow::Result<()> {
    let config = config::Config::load(&args)?;
    serve::init_logging(&config);
    if serve {
        serve::serve(config).await
    } else {
        serve::migrate(config).await
    }
}
