//! Server configuration: defaults, then the TOML file, then TOCSIN_* variables
//! and flags (clap reads both; a flag wins over its variable).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Deserialize;
use tocsin_core::settings::IncidentSettings;
use tocsin_engine::status_mail::StatusMailConfig;
use tocsin_store::SqliteSync;

use crate::notify_config::NotifyConfig;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `serve` and `migrate`; every one also reads a TOCSIN_* variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// TOML configuration file.
    #[arg(long, env = "TOCSIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TOCSIN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded database [default: ./tocsin-data].
    #[arg(long, env = "TOCSIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: postgres://… for PostgreSQL [default: SQLite in the data directory].
    #[arg(long, env = "TOCSIN_DATABASE")]
    pub database: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "TOCSIN_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `tocsin=debug` [default: info].
    #[arg(long, env = "TOCSIN_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Largest JSON request body in bytes [default: 1048576].
    #[arg(long, env = "TOCSIN_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest attachment in bytes [default: 10485760].
    #[arg(long, env = "TOCSIN_MAX_ATTACHMENT_BYTES")]
    pub max_attachment_bytes: Option<usize>,
    /// SQLite sync: `full` survives power loss, `normal` only a crash [default: full].
    #[arg(long, env = "TOCSIN_SQLITE_SYNCHRONOUS", value_parser = parse_sync)]
    pub sqlite_synchronous: Option<SqliteSync>,
    /// Inbound events per second allowed per integration key; 0 = unlimited [default: 1000].
    #[arg(long, env = "TOCSIN_INGEST_RATE_PER_KEY")]
    pub ingest_rate_per_key: Option<f64>,
    /// Inbound events one integration key may send at once [default: 10000].
    #[arg(long, env = "TOCSIN_INGEST_BURST_PER_KEY")]
    pub ingest_burst_per_key: Option<f64>,
    /// Email of the first admin, created on first start [default: admin@localhost].
    #[arg(long, env = "TOCSIN_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Base URL senders reach this instance at, used in configuration snippets
    /// [default: http://<listen address>].
    #[arg(long, env = "TOCSIN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Address for the SMTP listener (mail to <integration-key>@any-domain becomes an alert) [default: off].
    #[arg(long, env = "TOCSIN_SMTP_LISTEN")]
    pub smtp_listen: Option<SocketAddr>,
    /// Largest inbound mail in bytes [default: 4194304].
    #[arg(long, env = "TOCSIN_SMTP_MAX_MESSAGE_BYTES")]
    pub smtp_max_message_bytes: Option<usize>,
    /// SMTP connections served at once [default: 100].
    #[arg(long, env = "TOCSIN_SMTP_MAX_CONNECTIONS")]
    pub smtp_max_connections: Option<usize>,
    /// Subject keywords that make a mail resolve its thread's alert, comma-separated [default: resolved,recovered,ok].
    #[arg(long, env = "TOCSIN_EMAIL_RESOLVE_KEYWORDS", value_delimiter = ',')]
    pub email_resolve_keywords: Option<Vec<String>>,
    /// Folder `serve` writes public status pages to as static files [default: off].
    #[arg(long, env = "TOCSIN_STATUS_EXPORT_DIR")]
    pub status_export_dir: Option<PathBuf>,
    /// Seconds between static exports, besides one after each change [default: 60].
    #[arg(long, env = "TOCSIN_STATUS_EXPORT_INTERVAL_SECONDS")]
    pub status_export_interval_seconds: Option<u64>,
}

fn parse_sync(s: &str) -> Result<SqliteSync, String> {
    match s {
        "full" => Ok(SqliteSync::Full),
        "normal" => Ok(SqliteSync::Normal),
        _ => Err("expected `full` or `normal`".into()),
    }
}

/// The configuration file; the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    max_body_bytes: Option<usize>,
    max_attachment_bytes: Option<usize>,
    sqlite_synchronous: Option<SqliteSync>,
    ingest_rate_per_key: Option<f64>,
    ingest_burst_per_key: Option<f64>,
    admin_email: Option<String>,
    public_url: Option<String>,
    smtp_listen: Option<SocketAddr>,
    smtp_max_message_bytes: Option<usize>,
    smtp_max_connections: Option<usize>,
    email_resolve_keywords: Option<Vec<String>>,
    #[serde(default)]
    incident: IncidentSettings,
    #[serde(default)]
    notify: NotifyConfig,
    #[serde(default)]
    status: StatusConfig,
    #[serde(default)]
    workflows: crate::workflow_config::WorkflowsConfig,
}

/// `[status]`: public status pages.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    // --- Subscriber mail and webhooks (tocsin-engine status_mail) ---
    /// Subscriber messages started per second on each node, email and webhooks together [default: 10].
    pub mail_per_second: Option<f64>,
    /// Seconds a webhook subscriber's receiver has to answer [default: 10].
    pub webhook_timeout_seconds: Option<u64>,
    /// Attempts before a subscriber message fails for good [default: 5].
    pub max_attempts: Option<i64>,
    // --- end of subscriber mail ---
    /// Where `serve` writes public pages as static files (read into `Config::status_export_dir`).
    export_dir: Option<PathBuf>,
    /// How often, besides after each change [default: 60].
    export_interval_seconds: Option<u64>,
}

impl StatusConfig {
    /// The mail worker's settings, links under `public_url`.
    pub fn mail(&self, public_url: &str) -> StatusMailConfig {
        let d = StatusMailConfig::new(public_url);
        StatusMailConfig {
            per_second: self.mail_per_second.unwrap_or(d.per_second),
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts),
            webhook_timeout: self
                .webhook_timeout_seconds
                .map(std::time::Duration::from_secs)
                .unwrap_or(d.webhook_timeout),
            ..d
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self
            .mail_per_second
            .is_some_and(|r| !(r.is_finite() && r > 0.0))
        {
            bail!("status.mail_per_second must be more than 0");
        }
        if self.max_attempts.is_some_and(|a| a < 1) {
            bail!("status.max_attempts must be at least 1");
        }
        if self
            .webhook_timeout_seconds
            .is_some_and(|t| t == 0 || t > 300)
        {
            bail!("status.webhook_timeout_seconds must be 1 to 300");
        }
        Ok(())
    }
}

/// The configuration in force.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory (SQLite lives here).
    pub data_dir: PathBuf,
    /// Database URL.
    pub database: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// JSON body limit.
    pub max_body_bytes: usize,
    /// Attachment limit.
    pub max_attachment_bytes: usize,
    /// SQLite sync mode.
    pub sqlite_synchronous: SqliteSync,
    /// Inbound events per second per integration key (0: unlimited).
    pub ingest_rate_per_key: f64,
    /// Inbound burst per integration key.
    pub ingest_burst_per_key: f64,
    /// First admin's email.
    pub admin_email: String,
    /// Base URL for configuration snippets; `None`: `http://` and the bound address.
    pub public_url: Option<String>,
    /// SMTP listener address; None: no listener.
    pub smtp_listen: Option<SocketAddr>,
    /// Largest inbound mail.
    pub smtp_max_message_bytes: usize,
    /// SMTP connections at once.
    pub smtp_max_connections: usize,
    /// Subject keywords that resolve a mail's thread.
    pub email_resolve_keywords: Vec<String>,
    /// Incident settings.
    pub incident: IncidentSettings,
    /// Notification providers, limits and retries.
    pub notify: NotifyConfig,
    /// Public status pages.
    pub status: StatusConfig,
    /// Where `serve` writes public status pages as static files; `None`: it does not.
    pub status_export_dir: Option<PathBuf>,
    /// How often it writes them, besides after each change.
    pub status_export_interval: std::time::Duration,
    /// Workflows: outgoing HTTP, commands, channels, the secret key.
    pub workflows: crate::workflow_config::WorkflowsConfig,
}

impl Config {
    /// Resolves flags and variables over the file over the defaults.
    pub fn load(args: &ServerArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("tocsin-data"));
        let database = match args.database.clone().or(file.database) {
            Some(url) => url,
            None => format!("sqlite://{}?mode=rwc", data_dir.join("tocsin.db").display()),
        };
        let config = Config {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("default address")),
            data_dir,
            database,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            log_level: args
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1024 * 1024),
            max_attachment_bytes: args
                .max_attachment_bytes
                .or(file.max_attachment_bytes)
                .unwrap_or(10 * 1024 * 1024),
            sqlite_synchronous: args
                .sqlite_synchronous
                .or(file.sqlite_synchronous)
                .unwrap_or_default(),
            ingest_rate_per_key: args
                .ingest_rate_per_key
                .or(file.ingest_rate_per_key)
                .unwrap_or(1000.0),
            ingest_burst_per_key: args
                .ingest_burst_per_key
                .or(file.ingest_burst_per_key)
                .unwrap_or(10_000.0),
            admin_email: args
                .admin_email
                .clone()
                .or(file.admin_email)
                .unwrap_or_else(|| "admin@localhost".into()),
            public_url: args
                .public_url
                .clone()
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_string()),
            smtp_listen: args.smtp_listen.or(file.smtp_listen),
            smtp_max_message_bytes: args
                .smtp_max_message_bytes
                .or(file.smtp_max_message_bytes)
                .unwrap_or(4 * 1024 * 1024),
            smtp_max_connections: args
                .smtp_max_connections
                .or(file.smtp_max_connections)
                .unwrap_or(100),
            email_resolve_keywords: args
                .email_resolve_keywords
                .clone()
                .or(file.email_resolve_keywords)
                .unwrap_or_else(tocsin_ingest::email::default_resolve_keywords)
                .into_iter()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
            incident: file.incident,
            notify: file.notify,
            status_export_dir: args
                .status_export_dir
                .clone()
                .or(file.status.export_dir.clone()),
            status_export_interval: std::time::Duration::from_secs(
                args.status_export_interval_seconds
                    .or(file.status.export_interval_seconds)
                    .unwrap_or(60),
            ),
            status: file.status,
            workflows: file.workflows,
        };
        if config.status_export_interval.is_zero() {
            bail!("[status] export_interval_seconds must be at least 1");
        }
        if config.smtp_max_message_bytes < 1024 || config.smtp_max_connections == 0 {
            bail!(
                "smtp_max_message_bytes must be at least 1024 and smtp_max_connections at least 1"
            );
        }
        if config.ingest_rate_per_key < 0.0 || config.ingest_burst_per_key < 1.0 {
            bail!("ingest_rate_per_key must be at least 0 and ingest_burst_per_key at least 1");
        }
        if let Some(u) = &config.public_url {
            let rest = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
                bail!("public_url must be an http:// or https:// URL, not `{u}`");
            }
        }
        config.status.validate()?;
        config.workflows.build()?;
        if config.max_body_bytes < 1024 {
            bail!("max_body_bytes must be at least 1024");
        }
        config
            .incident
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {}: {}", e.field, e.message))?;
        Ok(config)
    }

    /// Whether the database is the embedded SQLite one.
    pub fn is_sqlite(&self) -> bool {
        self.database.starts_with("sqlite:")
    }
}

fn read_file(p: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = std::env::temp_dir().join(format!("tocsin-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tocsin.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nlog_format = \"json\"\n[incident]\ntypes = [{ name = \"app\" }]\n").unwrap();
        let args = ServerArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:9999".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.incident.types.len(), 1);
        assert!(c.database.starts_with("sqlite://tocsin-data/"));
        assert_eq!(c.public_url, None);
        assert_eq!(c.status_export_dir, None, "no static export by default");
        assert_eq!(c.status_export_interval.as_secs(), 60);
        let c = Config::load(&ServerArgs {
            public_url: Some("https://tocsin.example.com/".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://tocsin.example.com"));
        assert!(Config::load(&ServerArgs {
            public_url: Some("tocsin.example.com".into()),
            ..Default::default()
        })
        .is_err());
        assert_eq!(c.smtp_listen, None, "the SMTP listener is off by default");
        assert_eq!(c.email_resolve_keywords, ["resolved", "recovered", "ok"]);
        std::fs::write(
            &path,
            "smtp_listen = \"127.0.0.1:2525\"\nemail_resolve_keywords = [\"fixed\", \" \"]\n",
        )
        .unwrap();
        let c = Config::load(&ServerArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.smtp_listen, Some("127.0.0.1:2525".parse().unwrap()));
        assert_eq!(c.email_resolve_keywords, ["fixed"]);
        std::fs::write(
            &path,
            "[status]\nmail_per_second = 2.5\nmax_attempts = 3\nwebhook_timeout_seconds = 4\n\
             export_dir = \"/srv/status\"\nexport_interval_seconds = 30\n",
        )
        .unwrap();
        let c = Config::load(&ServerArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.status_export_dir, Some(PathBuf::from("/srv/status")));
        assert_eq!(c.status_export_interval.as_secs(), 30);
        std::fs::write(&path, "[status]\nexport_interval_seconds = 0\n").unwrap();
        assert!(Config::load(&ServerArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .is_err());
        let mail = c.status.mail("https://t.example");
        assert_eq!(
            (
                mail.per_second,
                mail.max_attempts,
                mail.webhook_timeout.as_secs()
            ),
            (2.5, 3, 4)
        );
        for (bad, key) in [
            ("mail_per_second = 0", "status.mail_per_second"),
            ("max_attempts = 0", "status.max_attempts"),
            (
                "webhook_timeout_seconds = 0",
                "status.webhook_timeout_seconds",
            ),
            ("mail_per_secnd = 1", "mail_per_secnd"),
        ] {
            std::fs::write(&path, format!("[status]\n{bad}\n")).unwrap();
            let err = Config::load(&ServerArgs {
                config: Some(path.clone()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(format!("{err:#}").contains(key), "{bad}: {err:#}");
        }
        std::fs::write(&path, "listn = \"x\"\n").unwrap();
        let err = Config::load(&ServerArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("listn"), "{err:#}");
    }
}
