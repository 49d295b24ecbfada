//! The workflow worker: which queued events start runs, and which run steps
//! are due? It dispatches queued trigger events, then claims due steps, each
//! under a lease, executes them with no transaction open, and records their
//! outcomes. It sleeps until the next due time (a wait, a retry's backoff, an
//! approval's deadline, a lease ending) or until a commit on this node queues
//! a trigger or makes a run due; no polling cycle adds latency.
//!
//! Time comes from the [`Clock`]: tests call [`WorkflowEngine::tick`] after
//! moving a fake clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tocsin_core::time::Clock;
use tocsin_core::workflow::{render_step, Outcome, Redactor};
use tocsin_store::workflows::{ClaimedStep, WORKFLOW_LEASE_MARGIN};
use tocsin_store::{Actor, Store, StoreError};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::executor::{Executors, StepCall, StepError};
use crate::jobs::sleep_for;

/// Longest sleep: how late a change made on another node is noticed should
/// its notice be lost, and how often the trigger kinds are re-read.
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// What one [`WorkflowEngine::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// Queued events dispatched.
    pub events: usize,
    /// Runs created.
    pub runs: usize,
    /// Step attempts executed and recorded.
    pub steps: usize,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    executors: Executors,
    concurrency: usize,
}

/// Runs workflows on one node; several may share one PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct WorkflowEngine {
    inner: Arc<Inner>,
}

impl WorkflowEngine {
    /// An engine over `store` with `executors`, at most `concurrency` steps at once.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        executors: Executors,
        concurrency: usize,
    ) -> WorkflowEngine {
        WorkflowEngine {
            inner: Arc::new(Inner {
                store,
                clock,
                executors,
                concurrency: concurrency.max(1),
            }),
        }
    }

    /// Dispatches every queued trigger, then executes every step due at the
    /// clock's time, one after another, until nothing is due.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let store = &self.inner.store;
        store.refresh_workflow_triggers().await?;
        let mut tick = Tick::default();
        let d = store
            .dispatch_workflow_triggers(self.inner.clock.now())
            .await?;
        tick.events += d.events;
        tick.runs += d.runs.len();
        while let Some(claimed) = self.claim().await? {
            self.execute(claimed).await?;
            tick.steps += 1;
        }
        Ok(tick)
    }

    /// Claims the next due step, if any (its lease starts now).
    pub async fn claim(&self) -> Result<Option<ClaimedStep>, StoreError> {
        self.inner
            .store
            .claim_workflow_step(self.inner.clock.now(), WORKFLOW_LEASE_MARGIN)
            .await
    }

    /// Executes a claimed step and records its outcome; `false` when the claim
    /// was lost meanwhile (the outcome is dropped).
    pub async fn execute(&self, claimed: ClaimedStep) -> Result<bool, StoreError> {
        let outcome = self.attempt(&claimed).await;
        if let Outcome::Failed {
            error, retryable, ..
        } = &outcome
        {
            tracing::warn!(run_id = claimed.run_id, step = %claimed.path, attempt = claimed.attempt,
                %error, retryable, "workflow step failed");
        } else {
            tracing::info!(run_id = claimed.run_id, step = %claimed.path, attempt = claimed.attempt,
                "workflow step done");
        }
        self.inner
            .store
            .record_workflow_outcome(&claimed, &outcome, self.inner.clock.now())
            .await
    }

    // One attempt, its outcome redacted of every secret the definition reads.
    async fn attempt(&self, c: &ClaimedStep) -> Outcome {
        let store = &self.inner.store;
        let path = c.path.clone();
        let attempt = c.attempt;
        let failed = |error: String, retryable: bool, r: &Redactor| Outcome::Failed {
            path: path.clone(),
            attempt,
            error: r.redact(&error),
            retryable,
        };
        let kind = c.action.kind();
        let executor = self.inner.executors.get(kind);
        // The definition's secrets, and those the configuration names for
        // the executor (an integration's token): all are redacted.
        let names = c.definition.secret_names();
        let own: Vec<String> = executor.map(|e| e.config_secrets()).unwrap_or_default();
        let mut wanted: Vec<String> = names.iter().cloned().collect();
        wanted.extend(own.iter().cloned());
        let secrets: BTreeMap<String, String> =
            match store.secret_values(wanted.iter().map(String::as_str)).await {
                Ok(s) => s,
                Err(e) => {
                    let r = Redactor::new(&[]);
                    let retry = matches!(e, StoreError::Database(_));
                    return failed(format!("cannot read secrets: {e}"), retry, &r);
                }
            };
        let pairs: Vec<(&str, &str)> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let redactor = Redactor::new(&pairs);
        if let Some(missing) = names.iter().find(|n| !secrets.contains_key(*n)) {
            let e = format!("secret `{missing}` does not exist");
            return failed(e, false, &redactor);
        }
        if let Some(missing) = own.iter().find(|n| !secrets.contains_key(n.as_str())) {
            let e = format!(
                "secret `{missing}`, which the server's [workflows] configuration names for {kind} steps, does not exist"
            );
            return failed(e, false, &redactor);
        }
        let Some(executor) = executor else {
            let e = format!("no executor for {kind} steps");
            return failed(e, false, &redactor);
        };
        // The definition's secrets render into its inputs; the
        // configuration's go to the executor alone.
        let mut definition_values = BTreeMap::new();
        let mut own_values = BTreeMap::new();
        for (name, value) in &secrets {
            if names.contains(name.as_str()) {
                definition_values.insert(name.clone(), value.clone());
            }
            if own.contains(name) {
                own_values.insert(name.clone(), value.clone());
            }
        }
        let values = executor.uses_secret_values().then_some(&definition_values);
        let action = match render_step(&c.definition, &c.state, &c.path, values) {
            Ok(a) => a,
            Err(e) => {
                let e = format!("{}: {}", e.field, e.message);
                return failed(e, false, &redactor);
            }
        };
        let actor = Actor {
            user_id: None,
            name: format!("workflow {}", c.workflow_name),
        };
        let now = self.inner.clock.now();
        let call = StepCall {
            action: &action,
            idempotency_key: &c.idempotency_key,
            run_id: c.run_id,
            workflow_id: c.workflow_id,
            workflow_name: &c.workflow_name,
            incident_id: c.incident_id,
            context: &c.state.context,
            actor: &actor,
            now,
            secrets: &own_values,
            store,
            chain: &c.chain,
        };
        // The result must be recorded before the lease ends.
        let budget = (c.lease_until - now)
            .to_std()
            .unwrap_or_default()
            .saturating_sub(WORKFLOW_LEASE_MARGIN / 2)
            .max(Duration::from_secs(1));
        let result = match tokio::time::timeout(budget, executor.execute(&call)).await {
            Ok(r) => r,
            Err(_) => Err(StepError::retryable(format!(
                "no result within {}s",
                budget.as_secs()
            ))),
        };
        match result {
            Ok(outputs) => Outcome::Succeeded {
                path: path.clone(),
                attempt,
                outputs: redactor.redact_json(&outputs),
            },
            Err(StepError::Retryable(e)) => failed(e, true, &redactor),
            Err(StepError::Permanent(e)) => failed(e, false, &redactor),
        }
    }

    /// Runs until `shutdown` turns true (or its sender is dropped).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let store = self.inner.store.clone();
        let (trigger_wake, run_wake) = (store.workflow_trigger_wake(), store.workflow_run_wake());
        store.listen_for_workflow_changes();
        let permits = Arc::new(Semaphore::new(self.inner.concurrency));
        let mut steps = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = store.refresh_workflow_triggers().await {
                tracing::error!(error = %e, "cannot read workflow triggers");
            }
            if let Err(e) = store
                .dispatch_workflow_triggers(self.inner.clock.now())
                .await
            {
                tracing::error!(error = %e, "cannot dispatch workflow triggers");
            }
            // Claim while there is room; each step runs on its own task.
            while let Ok(permit) = permits.clone().try_acquire_owned() {
                match self.claim().await {
                    Ok(Some(c)) => {
                        let me = self.clone();
                        steps.spawn(async move {
                            let r = me.execute(c).await;
                            drop(permit);
                            r
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot claim a workflow step");
                        break;
                    }
                }
            }
            let pause = match store.next_workflow_run_due().await {
                Ok(next) => sleep_for(self.inner.clock.now(), next)
                    .clamp(Duration::from_millis(50), MAX_SLEEP),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read when the next workflow step is due");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = trigger_wake.notified() => {}
                _ = run_wake.notified() => {}
                Some(done) = steps.join_next(), if !steps.is_empty() => log_done(done),
                changed = shutdown.changed() => if changed.is_err() { break },
            }
            while let Some(done) = steps.try_join_next() {
                log_done(done);
            }
        }
        // Steps under way may finish and be recorded; the rest are taken up
        // again when their lease ends (with the same idempotency keys).
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(done) = steps.join_next().await {
                log_done(done);
            }
        })
        .await;
    }
}

fn log_done(done: Result<Result<bool, StoreError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e,
            "cannot record a workflow step; it is tried again when its lease ends"),
        Err(e) => tracing::error!(error = %e, "a workflow step task failed"),
    }
}
