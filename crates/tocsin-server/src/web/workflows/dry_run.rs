//! The dry-run page: pick an incident by number (and a manual workflow's
//! inputs), see whether the conditions hold and what each step would do —
//! whom it would call, what it would change, with which inputs — without any
//! of it happening. A GET: it changes nothing, so it needs no form token.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::Value;
use tocsin_core::workflow::plan::Runs;
use tocsin_core::workflow::Trigger;

use super::{describe, input_fields, inputs_of, inputs_text, InputField};
use crate::api::path_id;
use crate::api::workflows::{dry_run_of, RunRequest};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::common::{page, Chrome, WebResult};
use crate::web::session::AsViewer;

struct PlanRow {
    path: String,
    label: String,
    kind: String,
    /// `runs`, `skipped`, `not taken`, `depends`, `error`.
    runs: &'static str,
    runs_text: String,
    does: String,
    inputs: String,
    depends_on: String,
    error: Option<String>,
    note: Option<String>,
}

struct Outcome {
    incident: String,
    conditions_hold: bool,
    condition_error: Option<String>,
    steps: Vec<PlanRow>,
}

#[derive(Template)]
#[template(path = "workflow_dry_run.html")]
struct DryRunPage {
    chrome: Chrome,
    id: i64,
    name: String,
    version: i64,
    incident: String,
    inputs: Vec<InputField>,
    outcome: Option<Outcome>,
    error: Option<String>,
}

fn row(p: tocsin_core::workflow::PlannedStep) -> PlanRow {
    let (runs, runs_text) = match &p.runs {
        Runs::Yes => ("runs", "would run".to_string()),
        Runs::Skipped => ("skipped", "skipped: its if does not hold".to_string()),
        Runs::NotTaken => ("not-taken", "in the branch not taken".to_string()),
        Runs::Depends { on } => (
            "depends",
            format!("depends on the output of {}", on.join(", ")),
        ),
        Runs::Error => ("error", "its condition cannot be evaluated".to_string()),
    };
    PlanRow {
        path: p.path.to_string(),
        label: p
            .name
            .clone()
            .or_else(|| p.id.clone())
            .unwrap_or_else(|| p.kind.clone()),
        does: p.inputs.as_ref().map(describe).unwrap_or_default(),
        inputs: inputs_text(&p.inputs),
        depends_on: p.depends_on.join(", "),
        kind: p.kind,
        runs,
        runs_text,
        error: p.error,
        note: p.note,
    }
}

pub(super) async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> WebResult<Response> {
    let rec = state.store.workflow(path_id("id", &id)?).await?;
    let def = state.store.workflow_definition(rec.version_id).await?;
    let chrome = Chrome::new(&who.0, "workflows", format!("{} · dry-run", rec.name));
    let mut inputs = match &def.trigger {
        Trigger::Manual(m) => input_fields(&m.inputs),
        _ => Vec::new(),
    };
    for f in &mut inputs {
        let key = format!("input.{}", f.name);
        if let Some((_, v)) = q.iter().find(|(k, _)| *k == key) {
            f.value = v.clone();
        }
    }
    let incident = q
        .iter()
        .find(|(k, _)| k == "incident")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let (mut outcome, mut error) = (None, None);
    if !incident.is_empty() {
        let r = RunRequest {
            incident_id: Some(Value::String(incident.clone())),
            inputs: inputs_of(&q),
        };
        match dry_run_of(&state, &rec, &r, &who.0.principal.user.name).await {
            Ok(d) => {
                outcome = Some(Outcome {
                    incident: tocsin_core::incident::format_number(
                        crate::api::incidents::incident_id(&incident).unwrap_or_default(),
                    ),
                    conditions_hold: d.conditions_hold,
                    condition_error: d.condition_error,
                    steps: d.steps.into_iter().map(row).collect(),
                })
            }
            Err(e @ (ApiError::Invalid { .. } | ApiError::NotFound(_))) => {
                error = Some(match e.parts().2 {
                    Some(f) if !e.to_string().contains(&f) => format!("{f}: {e}"),
                    _ => e.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(page(&DryRunPage {
        id: rec.id,
        name: rec.name,
        version: rec.version,
        incident,
        inputs,
        outcome,
        error,
        chrome,
    }))
}
