//! Workflows, run: the worker that dispatches triggers and executes steps,
//! and the executors that carry steps out, one per kind of step, behind
//! [`StepExecutor`].
//!
//! The integrations (Jira, GitHub, Slack, Zoom, Jitsi) live in
//! [`integrations`], one file each, with a [`StepExecutor`] for their kind
//! sending through [`Outbound`] (the outgoing HTTP policy applies, with the
//! integration's configured base URL allowed). [`standard_executors`] lists a
//! configured integration after the [`NotConfigured`] stub, which its kind
//! then stops falling to.

mod command;
mod executor;
mod http;
pub mod integrations;
mod local;
mod notify;
mod page;
mod stub;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tocsin_core::escalation::Channel;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::workflow::NetPolicy;
use tocsin_notify::Provider;

pub use command::{CommandSpec, CommandStep};
pub use executor::{Executors, StepCall, StepError, StepExecutor};
pub use http::{HttpStep, Outbound, OutboundRequest, OutboundResponse, DEFAULT_MAX_RESPONSE};
pub use integrations::IntegrationsConfig;
pub use local::{AddNote, AttachRunbook, StatusPageDraft, UpdateIncident};
pub use notify::{channel_kind, NotifyStep};
pub use page::PageStep;
pub use stub::{NotConfigured, INTEGRATION_KINDS};
pub use worker::{Tick, WorkflowEngine};

use crate::delivery::Delivery;

/// `[workflows]` as the engine needs it.
#[derive(Debug, Clone)]
pub struct WorkflowConfig {
    /// Where HTTP steps (and integrations) may connect.
    pub net: NetPolicy,
    /// The command allowlist: name → program and fixed arguments. Empty: off.
    pub commands: BTreeMap<String, CommandSpec>,
    /// Channels notify steps may name: name → address (`slack:C0123ABCD`).
    pub channels: BTreeMap<String, String>,
    /// Largest HTTP response body read.
    pub max_response_bytes: usize,
    /// Largest command output kept, per stream.
    pub max_output_bytes: usize,
    /// Longest any command may run.
    pub max_command_timeout: Duration,
    /// Steps executing at once on one node.
    pub concurrency: usize,
    /// `[workflows.jira]`, `[workflows.slack]`, …: the integrations.
    pub integrations: IntegrationsConfig,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            net: NetPolicy::default(),
            commands: BTreeMap::new(),
            channels: BTreeMap::new(),
            max_response_bytes: DEFAULT_MAX_RESPONSE,
            max_output_bytes: 64 * 1024,
            max_command_timeout: Duration::from_secs(600),
            concurrency: 16,
            integrations: IntegrationsConfig::default(),
        }
    }
}

/// What the executors need from the rest of the server.
pub struct ExecutorDeps {
    /// Incident settings (update steps are checked against them).
    pub settings: Arc<IncidentSettings>,
    /// Where pages due now go (the delivery worker).
    pub delivery: Arc<dyn Delivery>,
    /// Notification providers by channel (notify steps).
    pub providers: HashMap<Channel, Arc<dyn Provider>>,
}

/// The one list of executors. Later entries take over the kinds of earlier
/// ones: integrations go after [`NotConfigured`].
pub fn standard_executors(
    config: &WorkflowConfig,
    deps: ExecutorDeps,
) -> Vec<Arc<dyn StepExecutor>> {
    let outbound = Outbound::new(config.net.clone(), config.max_response_bytes);
    let mut list: Vec<Arc<dyn StepExecutor>> = vec![
        Arc::new(NotConfigured),
        Arc::new(HttpStep::new(outbound)),
        Arc::new(AddNote),
        Arc::new(UpdateIncident::new(deps.settings)),
        Arc::new(AttachRunbook),
        Arc::new(StatusPageDraft),
        Arc::new(PageStep::new(deps.delivery)),
        Arc::new(NotifyStep::new(config.channels.clone(), deps.providers)),
        Arc::new(CommandStep::new(
            config.commands.clone(),
            config.max_output_bytes,
            config.max_command_timeout,
        )),
    ];
    let (net, max) = (&config.net, config.max_response_bytes);
    let i = &config.integrations;
    list.push(Arc::new(integrations::JitsiLinkStep::new(i.jitsi.clone())));
    if let Some(c) = &i.jira {
        list.push(Arc::new(integrations::JiraIssue::new(c.clone(), net, max)));
    }
    if let Some(c) = &i.github {
        list.push(Arc::new(integrations::GithubIssue::new(
            c.clone(),
            net,
            max,
        )));
    }
    if let Some(c) = &i.slack {
        list.push(Arc::new(integrations::SlackChannel::new(
            c.clone(),
            net,
            max,
        )));
    }
    if let Some(c) = &i.zoom {
        list.push(Arc::new(integrations::ZoomMeetingStep::new(
            c.clone(),
            net,
            max,
        )));
    }
    list
}
