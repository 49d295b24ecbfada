//! The one interface every step kind is carried out through.
//!
//! An executor gets the step's inputs rendered with the real secret values, the
//! attempt's idempotency key, the run's context, and a store that acts for the
//! run (changes it makes carry the run's chain, for the loop guard, and the
//! attempt's key, so a repeated attempt can tell its change already
//! committed). It does one thing once and says how it went: outputs (JSON,
//! which the engine redacts before storing), or a [`StepError`] saying whether
//! trying again may help. Executors never retry, sleep or store run state:
//! retries with backoff, timeouts, leases and records are the engine's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use tocsin_core::time::Timestamp;
use tocsin_core::workflow::guard::ChainLink;
use tocsin_core::workflow::Action;
use tocsin_notify::BoxFuture;
use tocsin_store::workflows::Cause;
use tocsin_store::{Actor, Store};

/// Why a step attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Trying again may help (a timeout, a 5xx, a refused connection); the
    /// step's retry policy decides whether and when.
    #[error("{0}")]
    Retryable(String),
    /// Trying again cannot help (a 4xx, a missing incident, not configured).
    #[error("{0}")]
    Permanent(String),
}

impl StepError {
    /// A permanent failure.
    pub fn permanent(m: impl Into<String>) -> StepError {
        StepError::Permanent(m.into())
    }

    /// A failure worth retrying.
    pub fn retryable(m: impl Into<String>) -> StepError {
        StepError::Retryable(m.into())
    }
}

impl From<tocsin_store::StoreError> for StepError {
    fn from(e: tocsin_store::StoreError) -> Self {
        use tocsin_store::StoreError::*;
        match e {
            // The database or a write that may go through next time.
            Database(_) | Unavailable(_) => StepError::Retryable(e.to_string()),
            Invalid(i) => StepError::Permanent(format!("{}: {}", i.field, i.message)),
            other => StepError::Permanent(other.to_string()),
        }
    }
}

/// One step attempt, as an executor sees it.
pub struct StepCall<'a> {
    /// The inputs, rendered with the real secret values when the executor
    /// [uses them](StepExecutor::uses_secret_values): use them for the call,
    /// never log, store or return them (the engine redacts outputs and
    /// errors, but an executor should not lean on that).
    pub action: &'a Action<String>,
    /// Run id + step path + attempt: the same when this attempt is tried
    /// again after a crash, different for the next attempt. HTTP calls send
    /// it as `Idempotency-Key`.
    pub idempotency_key: &'a str,
    /// The run.
    pub run_id: i64,
    /// Its workflow.
    pub workflow_id: i64,
    /// The workflow's name.
    pub workflow_name: &'a str,
    /// The incident the run is for, if any.
    pub incident_id: Option<i64>,
    /// The trigger context (`incident`, `alert`, `event`, `inputs`, `trigger`).
    pub context: &'a Value,
    /// Who changes are recorded as: `workflow NAME`.
    pub actor: &'a Actor,
    /// When the attempt started.
    pub now: Timestamp,
    /// The values of the secrets the executor names in
    /// [`config_secrets`](StepExecutor::config_secrets) (an integration's
    /// token): for the call only, like the rendered inputs. The engine
    /// redacts them from outputs and errors as it does the definition's.
    pub secrets: &'a BTreeMap<String, String>,
    pub(crate) store: &'a Store,
    pub(crate) chain: &'a [ChainLink],
}

impl StepCall<'_> {
    /// The store acting for this attempt; `part` names one of its store calls
    /// when it makes several (`status`, `fields`), so each is known done alone.
    pub fn store(&self, part: &str) -> Store {
        self.store.with_cause(Cause {
            chain: self.chain.to_vec(),
            step_key: Some(self.effect_key(part)),
        })
    }

    /// Whether this attempt's store call `part` already committed (the attempt
    /// is being tried again after a crash): skip it then.
    pub async fn already_done(&self, part: &str) -> Result<bool, StepError> {
        Ok(self.store.step_effect_done(&self.effect_key(part)).await?)
    }

    /// The value of a secret named in
    /// [`config_secrets`](StepExecutor::config_secrets).
    pub fn secret(&self, name: &str) -> Result<&str, StepError> {
        self.secrets
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| StepError::permanent(format!("secret `{name}` does not exist")))
    }

    /// The incident, or a permanent error naming the step kind.
    pub fn incident(&self) -> Result<i64, StepError> {
        self.incident_id.ok_or_else(|| {
            StepError::permanent(format!(
                "a {} step needs an incident, and this run has none",
                self.action.kind()
            ))
        })
    }

    fn effect_key(&self, part: &str) -> String {
        format!("{}:{part}", self.idempotency_key)
    }
}

/// Carries out one or more kinds of step (`http`, `jira_create_issue`, …).
pub trait StepExecutor: Send + Sync {
    /// The action kinds it carries out, as written in YAML.
    fn kinds(&self) -> &'static [&'static str];

    /// Whether its steps get secret values rendered in. Steps that call out
    /// (HTTP, commands, integrations) do; steps whose inputs are written into
    /// Tocsin or shown to people (notes, incident fields, pages, channel
    /// messages) get `[secret NAME]` instead, so no value lands in the
    /// database or in a chat.
    fn uses_secret_values(&self) -> bool {
        false
    }

    /// Secrets the server's configuration names for this executor (an
    /// integration's credentials), by name: the engine reads them for each
    /// attempt into [`StepCall::secrets`], fails the step when one does not
    /// exist, and redacts their values from outputs and errors.
    fn config_secrets(&self) -> Vec<String> {
        Vec::new()
    }

    /// Does the step once. Outputs become `steps.ID.outputs`.
    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>>;
}

/// The executors by kind; a kind with none fails its steps permanently.
#[derive(Clone, Default)]
pub struct Executors {
    by_kind: HashMap<&'static str, Arc<dyn StepExecutor>>,
}

impl Executors {
    /// From a list; a later executor for the same kind replaces an earlier one
    /// (so a configured integration replaces its "not configured" stub).
    pub fn new(list: Vec<Arc<dyn StepExecutor>>) -> Executors {
        let mut by_kind = HashMap::new();
        for e in list {
            for k in e.kinds() {
                by_kind.insert(*k, e.clone());
            }
        }
        Executors { by_kind }
    }

    /// The executor for `kind`.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn StepExecutor>> {
        self.by_kind.get(kind)
    }

    /// The kinds with an executor, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.by_kind.keys().copied().collect();
        k.sort();
        k
    }
}
