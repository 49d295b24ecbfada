//! The command-line client: talks to a running server's API with TOCSIN_URL and TOCSIN_TOKEN.

use clap::Subcommand;

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the user behind TOCSIN_TOKEN.
    Whoami,
}

/// Runs a client command.
pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Whoami => anyhow::bail!("not yet"),
    }
}
