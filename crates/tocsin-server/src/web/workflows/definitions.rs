//! The workflow list, a workflow's page (its YAML, edited there by admins:
//! each save a new version), enable/disable, and its versions with export.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tocsin_core::workflow::Trigger;
use tocsin_store::WebSession;

use super::{badge, input_fields, InputField, StatusBadge};
use crate::api::path_id;
use crate::api::workflows::checked;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::common::{page, see_other, Chrome, WebError, WebResult};
use crate::web::session::{AsAdmin, AsViewer, CsrfForm};

/// What a new workflow's editor starts with.
const STARTER: &str = "name: My workflow
description: What it is for.
enabled: true
trigger:
  incident_declared: {}
conditions:
  - incident.severity in [\"SEV1\"]
steps:
  - add_note:
      text: \"Started for {{ incident.number }}\"
";

/// A refused form's status and message (`field: message`); anything else is
/// an error page. With the YAML typed, a refused field says the line it is on
/// (a YAML syntax error says its own).
pub(super) fn refusal(e: ApiError, source: Option<&str>) -> Result<(StatusCode, String), WebError> {
    match e {
        ApiError::Invalid { field, message } => {
            let line = source
                .filter(|_| !message.contains("(line "))
                .and_then(|s| super::locate::line_of(s, &field))
                .map(|n| format!(" (line {n})"))
                .unwrap_or_default();
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{field}: {message}{line}"),
            ))
        }
        ApiError::Conflict { message, field, .. } => Ok((
            StatusCode::CONFLICT,
            match field {
                Some(f) if !message.contains(&f) => format!("{f}: {message}"),
                _ => message,
            },
        )),
        e => Err(e.into()),
    }
}

// ---- the list ----

struct Row {
    id: i64,
    name: String,
    description: String,
    trigger: String,
    enabled: bool,
    version: i64,
    last_run: Option<(i64, StatusBadge)>,
}

#[derive(Template)]
#[template(path = "workflows.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
}

pub(super) async fn list(State(state): State<AppState>, who: AsViewer) -> WebResult<Response> {
    let chrome = Chrome::new(&who.0, "workflows", "Workflows");
    let mut rows = Vec::new();
    for w in state.store.workflows().await? {
        let last = state.store.workflow_runs(Some(w.id), None, 1).await?;
        rows.push(Row {
            last_run: last
                .first()
                .map(|r| (r.id, badge(&super::status_word(r.status)))),
            id: w.id,
            name: w.name,
            description: w.description.unwrap_or_default(),
            trigger: w.trigger.replace('_', " "),
            enabled: w.enabled,
            version: w.version,
        });
    }
    Ok(page(&ListPage { chrome, rows }))
}

// ---- one workflow, and the editor ----

/// A saved workflow as its page shows it.
struct Saved {
    id: i64,
    name: String,
    description: String,
    trigger: String,
    enabled: bool,
    version: i64,
    updated: String,
    /// The current version as saved (shown to those who may not edit).
    source: String,
}

struct RunRow {
    id: i64,
    status: StatusBadge,
    incident: Option<String>,
    started: String,
}

#[derive(Template)]
#[template(path = "workflow.html")]
struct WorkflowPage {
    chrome: Chrome,
    /// None: the new-workflow form.
    wf: Option<Saved>,
    /// What the editor holds.
    yaml: String,
    error: Option<String>,
    runs: Vec<RunRow>,
    /// A manual workflow's inputs, when it may be started here.
    manual: Option<Vec<InputField>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct YamlForm {
    yaml: Option<String>,
}

async fn workflow_page(
    state: &AppState,
    who: &WebSession,
    id: Option<i64>,
    typed: Option<String>,
    refused: Option<(StatusCode, String)>,
) -> WebResult<Response> {
    let (chrome, wf, runs, manual, source) = match id {
        None => (
            Chrome::new(who, "workflows", "New workflow"),
            None,
            Vec::new(),
            None,
            STARTER.to_string(),
        ),
        Some(id) => {
            let (rec, source) = state.store.workflow_source(id).await?;
            let chrome = Chrome::new(who, "workflows", rec.name.clone());
            let def = state.store.workflow_definition(rec.version_id).await?;
            let manual = match &def.trigger {
                Trigger::Manual(m) if rec.enabled && chrome.can_respond => {
                    Some(input_fields(&m.inputs))
                }
                _ => None,
            };
            let runs = state
                .store
                .workflow_runs(Some(id), None, 10)
                .await?
                .into_iter()
                .map(|r| RunRow {
                    id: r.id,
                    status: badge(&super::status_word(r.status)),
                    incident: r.incident_id.map(tocsin_core::incident::format_number),
                    started: chrome.time(&r.created_at),
                })
                .collect();
            let wf = Saved {
                id,
                name: rec.name,
                description: rec.description.unwrap_or_default(),
                trigger: rec.trigger.replace('_', " "),
                enabled: rec.enabled,
                version: rec.version,
                updated: chrome.time(&rec.updated_at),
                source: source.clone(),
            };
            (chrome, Some(wf), runs, manual, source)
        }
    };
    let status = refused.as_ref().map(|(s, _)| *s);
    let body = WorkflowPage {
        yaml: typed.unwrap_or(source),
        error: refused.map(|(_, m)| m),
        wf,
        runs,
        manual,
        chrome,
    };
    let mut resp = page(&body);
    if let Some(s) = status {
        *resp.status_mut() = s;
    }
    Ok(resp)
}

pub(super) async fn new_form(State(state): State<AppState>, who: AsAdmin) -> WebResult<Response> {
    workflow_page(&state, &who.0, None, None, None).await
}

pub(super) async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    workflow_page(&state, &who.0, Some(path_id("id", &id)?), None, None).await
}

/// Creates the workflow; a refused definition comes back in the editor with
/// the error, and nothing is saved.
pub(super) async fn create(
    State(state): State<AppState>,
    who: AsAdmin,
    CsrfForm(f): CsrfForm<YamlForm>,
) -> WebResult<Response> {
    let source = f.yaml.unwrap_or_default();
    let saved = match checked(&state, &source).await {
        Ok(def) => state
            .store
            .create_workflow(&source, &def, &who.actor(), state.now())
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match saved {
        Ok(rec) => Ok(see_other(format!("/workflows/{}", rec.id))),
        Err(e) => {
            let refused = refusal(e, Some(&source))?;
            workflow_page(&state, &who.0, None, Some(source), Some(refused)).await
        }
    }
}

/// Saves a new version; refused as for create.
pub(super) async fn save(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<YamlForm>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    state.store.workflow(id).await?;
    let source = f.yaml.unwrap_or_default();
    match save_version(&state, &who, id, &source).await {
        Ok(()) => Ok(see_other(format!("/workflows/{id}"))),
        Err(e) => {
            let refused = refusal(e, Some(&source))?;
            workflow_page(&state, &who.0, Some(id), Some(source), Some(refused)).await
        }
    }
}

async fn save_version(
    state: &AppState,
    who: &AsAdmin,
    id: i64,
    source: &str,
) -> Result<(), ApiError> {
    let def = checked(state, source).await?;
    state
        .store
        .update_workflow(id, source, &def, &who.actor(), state.now())
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub(super) struct EnabledForm {
    /// `true` or `false`.
    enabled: Option<String>,
}

/// `source` with its top-level `enabled:` set to `on` (replaced in place,
/// comments kept, or added after `name:`); None when the text is not laid out
/// so (a flow mapping), so the edit is made in the editor instead.
pub(crate) fn with_enabled(source: &str, on: bool) -> Option<String> {
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    let setting = format!("enabled: {on}");
    if let Some(line) = lines.iter_mut().find(|l| l.starts_with("enabled:")) {
        let comment = line.find(" #").map(|i| line[i..].to_string());
        *line = format!("{setting}{}", comment.unwrap_or_default());
    } else {
        let at = lines.iter().position(|l| l.starts_with("name:"))?;
        lines.insert(at + 1, setting);
    }
    let mut out = lines.join("\n");
    if source.ends_with('\n') {
        out.push('\n');
    }
    let parsed = tocsin_core::workflow::parse(&out).ok()?;
    (parsed.enabled == on).then_some(out)
}

/// Enables or disables: a new version with `enabled:` changed, nothing else.
pub(super) async fn set_enabled(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<EnabledForm>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let on = match f.enabled.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(crate::web::common::invalid(
                "enabled",
                "must be true or false",
            ))
        }
    };
    let (rec, source) = state.store.workflow_source(id).await?;
    if rec.enabled != on {
        let edited = with_enabled(&source, on).ok_or_else(|| {
            crate::web::common::invalid(
                "enabled",
                "this definition has no top-level `enabled:` line to change; edit the YAML",
            )
        })?;
        save_version(&state, &who, id, &edited).await?;
    }
    Ok(see_other(format!("/workflows/{id}")))
}

// ---- versions ----

struct VersionRow {
    version: i64,
    by: String,
    at: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "workflow_versions.html")]
struct VersionsPage {
    chrome: Chrome,
    id: i64,
    name: String,
    rows: Vec<VersionRow>,
}

async fn user_names(state: &AppState) -> WebResult<HashMap<i64, String>> {
    Ok(state
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect())
}

pub(super) async fn versions(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let rec = state.store.workflow(id).await?;
    let chrome = Chrome::new(&who.0, "workflows", format!("{} · versions", rec.name));
    let names = user_names(&state).await?;
    let rows = state
        .store
        .workflow_versions(id)
        .await?
        .into_iter()
        .map(|v| VersionRow {
            current: v.id == rec.version_id,
            version: v.version,
            by: v
                .created_by
                .and_then(|u| names.get(&u).cloned())
                .unwrap_or_else(|| "—".into()),
            at: chrome.time(&v.created_at),
        })
        .collect();
    Ok(page(&VersionsPage {
        chrome,
        id,
        name: rec.name,
        rows,
    }))
}

#[derive(Template)]
#[template(path = "workflow_version.html")]
struct VersionPage {
    chrome: Chrome,
    id: i64,
    name: String,
    version: i64,
    current: bool,
    by: String,
    at: String,
    source: String,
}

async fn version_of(
    state: &AppState,
    id: &str,
    version: &str,
) -> WebResult<(
    tocsin_store::workflows::WorkflowRecord,
    tocsin_store::workflows::WorkflowVersion,
)> {
    let id = path_id("id", id)?;
    let n = path_id("version", version)?;
    let rec = state.store.workflow(id).await?;
    let v = state
        .store
        .workflow_versions(id)
        .await?
        .into_iter()
        .find(|v| v.version == n)
        .ok_or_else(|| ApiError::NotFound(format!("version {n} of workflow {id}")))?;
    Ok((rec, v))
}

pub(super) async fn version(
    State(state): State<AppState>,
    who: AsViewer,
    Path((id, version)): Path<(String, String)>,
) -> WebResult<Response> {
    let (rec, v) = version_of(&state, &id, &version).await?;
    let chrome = Chrome::new(
        &who.0,
        "workflows",
        format!("{} · version {}", rec.name, v.version),
    );
    let names = user_names(&state).await?;
    Ok(page(&VersionPage {
        id: rec.id,
        name: rec.name,
        version: v.version,
        current: v.id == rec.version_id,
        by: v
            .created_by
            .and_then(|u| names.get(&u).cloned())
            .unwrap_or_else(|| "—".into()),
        at: chrome.time(&v.created_at),
        source: v.source,
        chrome,
    }))
}

fn yaml_download(id: i64, version: i64, source: String) -> Response {
    (
        [
            (CONTENT_TYPE, "application/yaml; charset=utf-8".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"workflow-{id}-v{version}.yaml\""),
            ),
        ],
        source,
    )
        .into_response()
}

/// The current version's YAML, as a download.
pub(super) async fn export(
    State(state): State<AppState>,
    _who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let (rec, source) = state.store.workflow_source(path_id("id", &id)?).await?;
    Ok(yaml_download(rec.id, rec.version, source))
}

/// One version's YAML, as a download.
pub(super) async fn export_version(
    State(state): State<AppState>,
    _who: AsViewer,
    Path((id, version)): Path<(String, String)>,
) -> WebResult<Response> {
    let (rec, v) = version_of(&state, &id, &version).await?;
    Ok(yaml_download(rec.id, v.version, v.source))
}

#[cfg(test)]
mod tests {
    use super::with_enabled;

    const DEF: &str =
        "name: N\nenabled: true # on\ntrigger: incident_declared\nsteps:\n  - wait: 1m\n";

    #[test]
    fn enabled_is_changed_in_place_or_added_after_the_name() {
        let off = with_enabled(DEF, false).unwrap();
        assert_eq!(
            off,
            DEF.replace("enabled: true # on", "enabled: false # on")
        );
        let bare = "name: N\ntrigger: incident_declared\nsteps:\n  - wait: 1m\n";
        let off = with_enabled(bare, false).unwrap();
        assert!(off.starts_with("name: N\nenabled: false\ntrigger"), "{off}");
        // A flow mapping is not edited by text.
        assert_eq!(
            with_enabled(
                "{name: N, trigger: incident_declared, steps: [{wait: 1m}]}",
                false
            ),
            None
        );
    }
}
