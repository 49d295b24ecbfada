//! The command-line client: talks to a running server's API with TOCSIN_URL and TOCSIN_TOKEN.

mod directory;
mod http;
mod incident;
mod oncall;
mod output;

use clap::Subcommand;

use http::{Api, Conn};

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Declare, list, show and work incidents.
    Incident {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: incident::IncidentCmd,
    },
    /// Who is on call: now or `--at` (every schedule, or one `--schedule`,
    /// `--policy` or `--service`), a schedule's `shifts`, and your own (`mine`).
    Oncall {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        now: oncall::NowArgs,
        #[command(subcommand)]
        cmd: Option<oncall::OncallCmd>,
    },
    /// Services and their integration keys.
    Service {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: directory::ServiceCmd,
    },
    /// Users.
    User {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: directory::UserCmd,
    },
    /// API tokens.
    Token {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: directory::TokenCmd,
    },
    /// Show the user behind the token.
    Whoami {
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs a client command.
pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Incident { conn, cmd } => incident::run(&Api::new(&conn)?, cmd).await,
        Command::Oncall { conn, now, cmd } => oncall::run(&Api::new(&conn)?, now, cmd).await,
        Command::Service { conn, cmd } => directory::service(&Api::new(&conn)?, cmd).await,
        Command::User { conn, cmd } => directory::user(&Api::new(&conn)?, cmd).await,
        Command::Token { conn, cmd } => directory::token(&Api::new(&conn)?, cmd).await,
        Command::Whoami { conn } => directory::whoami(&Api::new(&conn)?).await,
    }
}
