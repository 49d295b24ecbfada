//! The Store boundary: one API over embedded SQLite (the default) and PostgreSQL.
//!
//! Queries are written once against `sqlx::Any` with `$n` parameters, which both
//! back ends accept; the few places where the dialects differ (full-text search,
//! row locks, migrations) ask [`Backend`]. Every change appends its event to the
//! one log in the same transaction.

mod action_links;
mod alerts;
mod analytics;
mod batch;
mod calendar_feeds;
mod changes;
mod contact_methods;
mod delivery;
mod directory;
mod error;
mod escalation_policies;
mod escalations;
mod events;
mod grouping;
mod handoffs;
mod heartbeats;
mod incidents;
mod integrations;
mod jobs;
mod migrate;
mod notes;
mod phone_replies;
pub mod postmortems;
mod schedules;
mod secrets;
mod service_overview;
mod sessions;
mod signing;
mod similar;
pub mod status;
mod suppress;
mod swaps;
mod tx;
mod verification;
pub mod workflows;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use action_links::{ActionLinkError, ActionLinkOutcome, ActionLinkPreview};
pub use alerts::{AlertOutcome, MAX_RAW};
pub use analytics::utc_day;
pub use batch::{AlertWriter, Inbound, WriterStats};
pub use calendar_feeds::{CalendarFeed, FeedOwner};
pub use contact_methods::{ContactMethodChanges, NotificationSetup, StoredContactMethod};
pub use delivery::{AttemptOutcome, DeliveryAttempt, DeliveryView, DEFAULT_LEASE};
pub use directory::{Named, NewUser, UserChanges};
pub use error::StoreError;
pub use escalation_policies::{PolicyChanges, StoredPolicy};
pub use escalations::EscalationView;
pub use events::Actor;
pub use handoffs::{HandoffSettings, MAX_REMINDER_MINUTES};
pub use heartbeats::{HeartbeatChanges, Ping};
pub use incidents::{IncidentFilter, IncidentPage, IncidentSort};
pub use integrations::IntegrationChanges;
pub use jobs::{HandedNotification, JobReport, JobStats};
pub use notes::{NewAttachment, NewNote};
pub use phone_replies::{PhoneReply, PhoneReplyOutcome, PhoneUser};
pub use schedules::{ScheduleChanges, ScheduleOverride, StoredSchedule};
pub use secrets::{hash_secret, random_token, AuthPrincipal, NewSecret};
pub use service_overview::ServiceOverview;
pub use sessions::{WebSession, SESSION_IDLE, SESSION_LIFETIME};
pub use similar::{IncidentTouches, EVENT_LOOKBACK};
pub use suppress::{NewSilence, NewWindow};
pub use swaps::{NewSwapRequest, SwapAction, SwapRequest, SwapStatus};
pub use verification::{
    VerificationCode, VerificationSent, CODE_MINUTES, MAX_ATTEMPTS, RESEND_SECS,
};

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in WAL mode.
    Sqlite,
    /// PostgreSQL, shared by several nodes.
    Postgres,
}

/// How SQLite syncs to disk. `Full` survives power loss; `Normal` survives a
/// process crash (kill -9) but may lose the last transactions on power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SqliteSync {
    /// fsync on every commit.
    #[default]
    Full,
    /// fsync at WAL checkpoints only.
    Normal,
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Largest pool of connections.
    pub max_connections: u32,
    /// SQLite synchronous mode.
    pub sqlite_sync: SqliteSync,
    /// How long a sender holds a notification it is sending before another
    /// sender may take it over as cut off (it must outlast the provider timeout).
    pub delivery_lease: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            sqlite_sync: SqliteSync::Full,
            delivery_lease: delivery::DEFAULT_LEASE,
        }
    }
}

/// The storage boundary. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    // SQLite allows one writer; taking this before BEGIN means writers queue here
    // instead of failing with SQLITE_BUSY on a read-to-write upgrade.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    // Integration keys by hash, so inbound events skip a query; see secrets.rs.
    // Kicked when a committed transaction scheduled a job (see jobs.rs).
    jobs_wake: Arc<tokio::sync::Notify>,
    // Where to LISTEN for other nodes' jobs (PostgreSQL).
    url: Arc<str>,
    // See StoreOptions::delivery_lease.
    delivery_lease_ms: i64,
    // Kicked when a request is committed as due for delivery outside a job
    // (verification codes, tests): the delivery worker claims it.
    delivery_wake: Arc<tokio::sync::Notify>,
    // Kicked when a transaction wrote status-page subscriber mail (status/deliveries.rs).
    status_mail_wake: Arc<tokio::sync::Notify>,
    // Counts committed changes to status pages on this node (status/mod.rs).
    status_watch: Arc<tokio::sync::watch::Sender<u64>>,
    // Workflow triggers, wake-ups, definitions and the secret key (workflows/).
    workflows: Arc<workflows::Shared>,
    // Set on a store acting for a workflow run (Store::with_cause).
    cause: Option<Arc<workflows::Cause>>,
    // Parsed rollups of days and of part-days, keyed by the day's version (analytics.rs).
    analytics_cache: Arc<analytics::RollupCache>,
    key_cache: Arc<
        std::sync::Mutex<
            std::collections::HashMap<
                String,
                (tocsin_core::model::IntegrationKey, std::time::Instant),
            >,
        >,
    >,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`); does not migrate.
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL `{}`: use sqlite://PATH or postgres://…",
                redact(url)
            )));
        };
        let connect = AnyConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad database URL: {e}")))?;
        let sync = match opts.sqlite_sync {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        };
        let pool = AnyPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Checkpoints run in the background (below), never inside a commit.
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                             PRAGMA wal_autocheckpoint = 0;"
                        );
                        conn.execute(sqlx::raw_sql(&pragmas)).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        if backend == Backend::Sqlite {
            spawn_checkpointer(pool.clone());
        }
        Ok(Store {
            pool,
            backend,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            jobs_wake: Arc::default(),
            url: Arc::from(url),
            delivery_lease_ms: i64::try_from(opts.delivery_lease.as_millis()).unwrap_or(i64::MAX),
            delivery_wake: Arc::default(),
            status_mail_wake: Arc::default(),
            status_watch: Arc::new(tokio::sync::watch::channel(0).0),
            key_cache: Arc::default(),
            analytics_cache: Arc::default(),
            workflows: Arc::default(),
            cause: None,
        })
    }

    /// One row of `table` (the given columns) by id; not found names it `what id`.
    pub(crate) async fn row_by_id(
        &self,
        columns: &str,
        table: &str,
        id: i64,
        what: &str,
    ) -> Result<sqlx::any::AnyRow, StoreError> {
        sqlx::query(&format!("SELECT {columns} FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("{what} {id}")))
    }

    /// The same row locked for the rest of the write transaction (PostgreSQL;
    /// SQLite writers are one at a time already).
    pub(crate) async fn lock_row_by_id(
        &self,
        w: &mut crate::tx::WriteTx,
        columns: &str,
        table: &str,
        id: i64,
        what: &str,
    ) -> Result<sqlx::any::AnyRow, StoreError> {
        sqlx::query(&format!(
            "SELECT {columns} FROM {table} WHERE id = $1{}",
            self.for_update()
        ))
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("{what} {id}")))
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Rows per table, for operations and for tests that check nothing was written.
    pub async fn table_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::new();
        for table in [
            "users",
            "teams",
            "team_members",
            "services",
            "api_tokens",
            "integration_keys",
            "incidents",
            "incident_services",
            "incident_labels",
            "notes",
            "attachments",
            "events",
            "incident_search",
            "counters",
            "alerts",
            "change_events",
            "service_alert_rules",
            "incident_groups",
            "silences",
            "maintenance_windows",
            "flapping_rules",
            "heartbeats",
            "schedules",
            "schedule_overrides",
            "calendar_feeds",
            "escalation_policies",
            "contact_methods",
            "jobs",
            "escalations",
            "notification_requests",
            "shift_swap_requests",
            "signing_keys",
            "used_action_tokens",
            "web_sessions",
            "status_pages",
            "status_component_groups",
            "status_components",
            "status_component_services",
            "status_component_history",
            "status_posts",
            "status_post_components",
            "status_updates",
            "status_templates",
            "status_subscribers",
            "status_subscriber_components",
            "status_deliveries",
            "workflows",
            "workflow_versions",
            "workflow_trigger_queue",
            "workflow_runs",
            "workflow_step_events",
            "workflow_secrets",
            "runbooks",
            "incident_runbooks",
            "runbook_versions",
            "postmortems",
            "postmortem_incidents",
            "postmortem_revisions",
            "postmortem_reviewers",
            "action_items",
            "postmortem_template",
        ] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await?;
            out.push((table.to_string(), n));
        }
        // A counter bumped by a failed request would show as a gap in numbers.
        let v: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE name = 'incident'")
            .fetch_one(&self.pool)
            .await?;
        out.push(("counters.incident".into(), v));
        Ok(out)
    }

    fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    // For rows whose key never changes: does not block rows inserted elsewhere
    // that reference them (foreign keys take KEY SHARE locks), so the escalation
    // engine adding timeline events never waits on a request holding the incident.
    fn for_no_key_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR NO KEY UPDATE",
        }
    }

    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

// A PASSIVE checkpoint copies what it can without waiting for or blocking
// writers, so the WAL stays small without a commit ever stalling on it.
fn spawn_checkpointer(pool: AnyPool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            let passive: Result<(i64, i64, i64), _> =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&pool)
                    .await;
            match passive {
                // Readers kept the WAL from being copied for long: make room, briefly waiting.
                Ok((_, wal_pages, _)) if wal_pages > 16_384 => {
                    let _ = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                        .execute(&pool)
                        .await;
                }
                Ok(_) => {}
                Err(_) if pool.is_closed() => break,
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
            }
        }
    });
}

/// Hides the password in a database URL for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
