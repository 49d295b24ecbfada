//! The incident room's *Workflows* panel: the incident's runs with their
//! status, the approvals they wait on (with buttons for those who may
//! decide), and a *Run workflow* form per enabled manual workflow with its
//! declared inputs as fields.

use std::collections::HashMap;

use tocsin_core::model::Incident;
use tocsin_core::workflow::{RunStatus, Trigger};
use tocsin_store::WebSession;

use super::runs::{waiting, Waiting};
use super::{badge, input_fields, InputField, StatusBadge};
use crate::state::AppState;
use crate::web::{Chrome, WebResult};

/// A run of the incident.
pub(crate) struct RoomRun {
    pub id: i64,
    pub workflow: String,
    pub status: StatusBadge,
    pub started: String,
}

/// An approval a run of the incident waits on.
pub(crate) struct RoomApproval {
    pub run_id: i64,
    pub workflow: String,
    pub waiting: Waiting,
}

/// A manual workflow the room can start.
pub(crate) struct Startable {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub inputs: Vec<InputField>,
    /// What its fields' ids start with.
    pub prefix: String,
}

/// What the panel shows.
pub(crate) struct WorkflowsPanel {
    pub runs: Vec<RoomRun>,
    pub more: bool,
    pub approvals: Vec<RoomApproval>,
    pub startable: Vec<Startable>,
}

const SHOWN: i64 = 20;

/// The panel for incident `inc`, as `who` sees it.
pub(crate) async fn panel(
    state: &AppState,
    who: &WebSession,
    chrome: &Chrome,
    inc: &Incident,
) -> WebResult<WorkflowsPanel> {
    let all = state
        .store
        .workflow_runs(None, Some(inc.id), SHOWN + 1)
        .await?;
    let more = all.len() as i64 > SHOWN;
    let awaiting: Vec<_> = all
        .iter()
        .filter(|r| r.status == RunStatus::AwaitingApproval)
        .collect();
    let names: HashMap<i64, String> = if awaiting.is_empty() {
        HashMap::new()
    } else {
        state
            .store
            .users()
            .await?
            .into_iter()
            .map(|u| (u.id, u.name))
            .collect()
    };
    let mut approvals = Vec::new();
    for r in awaiting {
        let run = state.store.workflow_run(r.id).await?;
        if let Some(w) = waiting(state, who, chrome, &run, &names).await? {
            approvals.push(RoomApproval {
                run_id: r.id,
                workflow: r.workflow_name.clone(),
                waiting: w,
            });
        }
    }
    let runs = all
        .into_iter()
        .take(SHOWN as usize)
        .map(|r| RoomRun {
            id: r.id,
            status: badge(&super::status_word(r.status)),
            started: chrome.time(&r.created_at),
            workflow: r.workflow_name,
        })
        .collect();
    let mut startable = Vec::new();
    if chrome.can_respond {
        for w in state.store.workflows().await? {
            if !w.enabled || w.trigger != "manual" {
                continue;
            }
            let def = state.store.workflow_definition(w.version_id).await?;
            if let Trigger::Manual(m) = &def.trigger {
                startable.push(Startable {
                    id: w.id,
                    name: w.name,
                    description: w.description.unwrap_or_default(),
                    inputs: input_fields(&m.inputs),
                    prefix: format!("wf{}", w.id),
                });
            }
        }
    }
    Ok(WorkflowsPanel {
        runs,
        more,
        approvals,
        startable,
    })
}
