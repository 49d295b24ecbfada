//! Workflows, stored: definitions and their versions, the trigger queue and
//! its dispatcher, runs and their leases, timers for schedules and idle
//! incidents, encrypted secrets, and runbooks attached to incidents.
//!
//! The pure part (parsing, triggers, the run state machine, limits) is in
//! `tocsin_core::workflow`; here every change it decides is written in one
//! transaction with its events. Calls to the outside world are the engine's
//! (`tocsin_engine::workflow`), and never happen inside a transaction.

mod definitions;
mod dispatch;
mod page;
mod runbook_progress;
pub(crate) mod runbooks;
pub(crate) mod runs;
mod secrets;
mod timers;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tocsin_core::workflow::guard::ChainLink;
use tocsin_core::workflow::{Definition, Trigger};
use tokio::sync::Notify;

use crate::tx::WriteTx;
use crate::{Backend, Store, StoreError};

pub use definitions::{WorkflowRecord, WorkflowVersion};
pub use dispatch::DispatchReport;
pub use page::{PageResult, PageWhom};
pub use runbook_progress::{IncidentRunbook, ItemRunRefused, ItemState};
pub use runbooks::{
    runbook_name, AttachHow, AttachedRunbook, RunbookRecord, RunbookVersion, MAX_RUNBOOK_NAME,
};
pub use runs::{ApprovalRefused, ClaimedStep, RunSummary, RunView, WORKFLOW_LEASE_MARGIN};
pub use secrets::{secret_name, SecretKey, SecretRecord, MAX_SECRET};

/// The channel other nodes hear about changed workflow definitions on.
pub const WORKFLOWS_CHANNEL: &str = "tocsin_workflows";
/// The channel other nodes' workflow workers hear of runs due now on.
pub const WORKFLOW_RUNS_CHANNEL: &str = "tocsin_workflow_runs";

/// What caused a change made on a workflow run's behalf: the chain of runs
/// (the loop guard reads it from the events the change appends), and the
/// idempotency key of the step attempt making it (so the attempt, tried again
/// after a crash, can tell its change already committed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cause {
    /// The runs that led here, oldest first, the acting run last.
    pub chain: Vec<ChainLink>,
    /// The step attempt's idempotency key (with a suffix per store call).
    pub step_key: Option<String>,
}

/// Per-node workflow state the store keeps: which event kinds to queue, the
/// wake-ups, parsed definitions, and the secret key.
pub(crate) struct Shared {
    /// Event kinds some enabled workflow triggers on, and the `workflows`
    /// counter they were read at.
    kinds: RwLock<(i64, Arc<HashSet<String>>)>,
    /// Kicked when a committed transaction queued a trigger.
    pub(crate) trigger_wake: Arc<Notify>,
    /// Kicked when a committed transaction made a run due.
    pub(crate) run_wake: Arc<Notify>,
    /// Parsed definitions by version id (versions never change).
    defs: Mutex<HashMap<i64, Arc<Definition>>>,
    /// The key secrets are sealed with, once configured.
    pub(crate) key: RwLock<Option<Arc<SecretKey>>>,
    /// Where people reach this instance, for `incident.url`.
    pub(crate) public_url: RwLock<String>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            // -1: not read yet; the first refresh reads the table.
            kinds: RwLock::new((-1, Arc::default())),
            trigger_wake: Arc::default(),
            run_wake: Arc::default(),
            defs: Mutex::default(),
            key: RwLock::new(None),
            public_url: RwLock::default(),
        }
    }
}

/// What a write transaction needs for workflows: the kinds to queue (read once
/// when it begins), the cause of its changes, and whom to wake on commit.
#[derive(Default)]
pub(crate) struct TxHooks {
    pub(crate) kinds: Arc<HashSet<String>>,
    pub(crate) cause: Option<Arc<Cause>>,
    pub(crate) wake_triggers: bool,
    pub(crate) wake_runs: bool,
    shared: Option<Arc<Shared>>,
}

/// Marks a run due now in this transaction: this node's worker is woken when
/// it commits, and other nodes' through `NOTIFY tocsin_workflow_runs`
/// (PostgreSQL; once per transaction), so an idle node takes the step when
/// this one is busy.
pub(crate) async fn run_due_now(w: &mut WriteTx, backend: Backend) -> Result<(), StoreError> {
    if !w.workflow.wake_runs && backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORKFLOW_RUNS_CHANNEL)
            .execute(&mut *w.tx)
            .await?;
    }
    w.workflow.wake_runs = true;
    Ok(())
}

impl TxHooks {
    pub(crate) fn new(shared: &Arc<Shared>, cause: Option<Arc<Cause>>) -> TxHooks {
        let kinds = shared.kinds.read().map(|k| k.1.clone()).unwrap_or_default();
        TxHooks {
            kinds,
            cause,
            wake_triggers: false,
            wake_runs: false,
            shared: Some(shared.clone()),
        }
    }

    /// After the commit: stored permits, so a worker busy now looks again.
    pub(crate) fn committed(&self) {
        let Some(s) = &self.shared else { return };
        if self.wake_triggers {
            s.trigger_wake.notify_one();
        }
        if self.wake_runs {
            s.run_wake.notify_one();
        }
    }
}

/// The event kinds a trigger needs queued. Idle triggers need declarations and
/// reopenings, to arm their timers; schedules and manual runs need none.
pub fn event_kinds(trigger_kind: &str) -> &'static [&'static str] {
    match trigger_kind {
        "incident_declared" => &["incident.declared"],
        "incident_changed" => &[
            "incident.updated",
            "incident.status_changed",
            "incident.closure_confirmed",
            "incident.closure_rejected",
        ],
        "alert_fired" => &["alert.triggered", "alert.unsuppressed"],
        "alert_resolved" => &["alert.resolved"],
        "incident_idle" => &[
            "incident.declared",
            "incident.status_changed",
            "incident.closure_rejected",
        ],
        _ => &[],
    }
}

/// Called by `events::append` for every event: queues it for the dispatcher
/// when some enabled workflow listens to its kind, and remembers which step
/// attempt made it. Nothing is written for other events, so the alert ingest
/// path pays one set lookup while no workflow listens to alerts.
pub(crate) async fn after_append(
    w: &mut WriteTx,
    event_id: i64,
    kind: &str,
    at: i64,
) -> Result<(), StoreError> {
    let cause = w.workflow.cause.clone();
    if w.workflow.kinds.contains(kind) {
        let chain = cause
            .as_ref()
            .filter(|c| !c.chain.is_empty())
            .map(|c| serde_json::to_string(&c.chain).unwrap_or_default());
        sqlx::query(
            "INSERT INTO workflow_trigger_queue (event_id, chain, queued_at) VALUES ($1, $2, $3)",
        )
        .bind(event_id)
        .bind(chain)
        .bind(at)
        .execute(&mut *w.tx)
        .await?;
        w.workflow.wake_triggers = true;
    }
    if let Some(key) = cause.as_ref().and_then(|c| c.step_key.as_deref()) {
        sqlx::query(
            "INSERT INTO workflow_step_events (idempotency_key, event_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(event_id)
        .execute(&mut *w.tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// This store acting for a workflow run: changes it makes append events
    /// carrying `cause` (see [`Cause`]).
    pub fn with_cause(&self, cause: Cause) -> Store {
        let mut s = self.clone();
        s.cause = Some(Arc::new(cause));
        s
    }

    /// Sets the key secrets are sealed with (see [`SecretKey`]).
    pub fn set_secret_key(&self, key: SecretKey) {
        if let Ok(mut k) = self.workflows.key.write() {
            *k = Some(Arc::new(key));
        }
    }

    /// Kicked when a committed transaction queued an event for the trigger dispatcher.
    pub fn workflow_trigger_wake(&self) -> Arc<Notify> {
        self.workflows.trigger_wake.clone()
    }

    /// Kicked when a committed transaction made a workflow run due.
    pub fn workflow_run_wake(&self) -> Arc<Notify> {
        self.workflows.run_wake.clone()
    }

    /// Whether the step attempt with this key (and suffix) already made its change.
    pub async fn step_effect_done(&self, step_key: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM workflow_step_events WHERE idempotency_key = $1",
        )
        .bind(step_key)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Re-reads which event kinds to queue when a workflow changed since the
    /// last read (on this node or another: the `workflows` counter tells).
    /// Cheap when nothing changed: one indexed read.
    pub async fn refresh_workflow_triggers(&self) -> Result<(), StoreError> {
        let version: i64 =
            sqlx::query_scalar("SELECT value FROM counters WHERE name = 'workflows'")
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0);
        let seen = self.workflows.kinds.read().map(|k| k.0).unwrap_or(-1);
        if version == seen {
            return Ok(());
        }
        let kinds: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT trigger_kind FROM workflows WHERE enabled = 1 AND deleted_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let set: HashSet<String> = kinds
            .iter()
            .flat_map(|k| event_kinds(k).iter().map(|s| s.to_string()))
            .collect();
        if let Ok(mut k) = self.workflows.kinds.write() {
            // Two refreshes racing: the newer read wins.
            if version > k.0 {
                *k = (version, Arc::new(set));
            }
        }
        Ok(())
    }

    /// The event kinds this node queues now (for tests and `/metrics`).
    pub fn workflow_trigger_kinds(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .workflows
            .kinds
            .read()
            .map(|k| k.1.iter().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// On PostgreSQL, until the pool closes: refreshes the trigger kinds when
    /// another node announces a changed workflow (`NOTIFY tocsin_workflows`),
    /// and wakes this node's worker when another makes a run due
    /// (`tocsin_workflow_runs`). The worker also looks on a slow timer, in
    /// case a notice is lost while reconnecting.
    pub fn listen_for_workflow_changes(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let (url, store) = (self.url.to_string(), self.clone());
        tokio::spawn(async move {
            while !store.pool.is_closed() {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => {
                        let channels = [WORKFLOWS_CHANNEL, WORKFLOW_RUNS_CHANNEL];
                        if listener.listen_all(channels).await.is_ok() {
                            // Whatever was announced while not listening: look again.
                            store.workflows.run_wake.notify_one();
                            let _ = store.refresh_workflow_triggers().await;
                            loop {
                                match listener.try_recv().await {
                                    Ok(Some(n)) if n.channel() == WORKFLOW_RUNS_CHANNEL => {
                                        store.workflows.run_wake.notify_one()
                                    }
                                    Ok(_) => {
                                        if let Err(e) = store.refresh_workflow_triggers().await {
                                            tracing::warn!(error = %e, "cannot refresh workflow triggers");
                                        }
                                        store.workflows.run_wake.notify_one();
                                    }
                                    Err(_) => break,
                                }
                                if store.pool.is_closed() {
                                    return;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot LISTEN for workflow changes"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
    }

    /// The parsed definition of a version (cached: versions never change).
    pub(crate) async fn definition_in(
        &self,
        w: &mut WriteTx,
        version_id: i64,
    ) -> Result<Arc<Definition>, StoreError> {
        if let Some(d) = self.cached_definition(version_id) {
            return Ok(d);
        }
        let source: Option<String> =
            sqlx::query_scalar("SELECT source FROM workflow_versions WHERE id = $1")
                .bind(version_id)
                .fetch_optional(&mut *w.tx)
                .await?;
        self.parse_cached(version_id, source)
    }

    /// The same outside a transaction.
    pub async fn workflow_definition(
        &self,
        version_id: i64,
    ) -> Result<Arc<Definition>, StoreError> {
        if let Some(d) = self.cached_definition(version_id) {
            return Ok(d);
        }
        let source: Option<String> =
            sqlx::query_scalar("SELECT source FROM workflow_versions WHERE id = $1")
                .bind(version_id)
                .fetch_optional(&self.pool)
                .await?;
        self.parse_cached(version_id, source)
    }

    fn cached_definition(&self, version_id: i64) -> Option<Arc<Definition>> {
        self.workflows
            .defs
            .lock()
            .ok()
            .and_then(|d| d.get(&version_id).cloned())
    }

    fn parse_cached(
        &self,
        version_id: i64,
        source: Option<String>,
    ) -> Result<Arc<Definition>, StoreError> {
        let source = source
            .ok_or_else(|| StoreError::not_found(format!("workflow version {version_id}")))?;
        let def = Arc::new(tocsin_core::workflow::parse(&source).map_err(|e| {
            StoreError::Config(format!(
                "stored workflow version {version_id} no longer parses: {}: {}",
                e.field, e.message
            ))
        })?);
        if let Ok(mut d) = self.workflows.defs.lock() {
            d.insert(version_id, def.clone());
        }
        Ok(def)
    }
}

/// The trigger's kind as stored.
pub(crate) fn trigger_kind(t: &Trigger) -> &'static str {
    t.kind()
}

/// JSON text of a value, for the `state` and `chain` columns.
pub(crate) fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| Value::Null.to_string())
}
