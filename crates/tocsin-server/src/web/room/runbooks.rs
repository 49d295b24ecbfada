//! The room's "Runbooks" panel: each runbook on the incident as a checklist,
//! with who ticked each item and when, a Run button on items with a step and
//! the outcome of its latest run; and for responders, attaching a runbook by
//! hand and detaching one. Every form calls what the API's runbook routes
//! call and comes back to the panel (303).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use tocsin_core::model::{Event, Incident};
use tocsin_core::workflow::runbook::output_summary;
use tocsin_store::workflows::AttachHow;

use crate::api::incidents::incident_id;
use crate::api::path_id;
use crate::api::runbooks::{item_index, runbook_named, start_item_run};
use crate::state::AppState;
use crate::web::common::{invalid, see_other, Chrome, WebResult};
use crate::web::session::{AsResponder, CsrfForm};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents/{number}/runbooks", post(attach))
        .route(
            "/incidents/{number}/runbooks/{runbook_id}/detach",
            post(detach),
        )
        .route(
            "/incidents/{number}/runbooks/{runbook_id}/items/{index}",
            post(check),
        )
        .route(
            "/incidents/{number}/runbooks/{runbook_id}/items/{index}/run",
            post(run),
        )
}

/// The latest run of an item's step.
pub(crate) struct RunLine {
    pub run_id: i64,
    /// pending, succeeded, failed, cancelled.
    pub status: String,
    /// `badge run-STATUS`.
    pub class: String,
    pub who: String,
    pub when: String,
    /// The error, or the outputs in one line.
    pub detail: String,
}

/// One checklist item.
pub(crate) struct ItemLine {
    pub index: usize,
    pub text: String,
    pub ticked: bool,
    /// "Carol, 2026-01-01 00:05" for the last tick or untick.
    pub who: String,
    pub step: Option<String>,
    pub running: bool,
    pub run: Option<RunLine>,
}

/// One runbook on the incident.
pub(crate) struct Card {
    pub id: i64,
    pub name: String,
    pub title: String,
    pub version: i64,
    pub how: String,
    pub done: usize,
    pub total: usize,
    pub items: Vec<ItemLine>,
}

/// A runbook that may be attached.
pub(crate) struct Choice {
    pub id: i64,
    pub name: String,
}

/// What the panel shows.
pub(crate) struct RunbooksPanel {
    pub cards: Vec<Card>,
    pub choices: Vec<Choice>,
}

/// The panel of `inc`, names of people from `users`.
pub(crate) async fn panel(
    state: &AppState,
    chrome: &Chrome,
    inc: &Incident,
    users: &HashMap<i64, String>,
) -> WebResult<RunbooksPanel> {
    let name = |u: Option<i64>| {
        u.map(|u| {
            users
                .get(&u)
                .cloned()
                .unwrap_or_else(|| format!("user {u}"))
        })
        .unwrap_or_default()
    };
    let attached = state.store.incident_runbooks(inc.id).await?;
    let choices = state
        .store
        .runbooks()
        .await?
        .into_iter()
        .filter(|r| !attached.iter().any(|a| a.runbook_id == r.id))
        .map(|r| Choice {
            id: r.id,
            name: r.name,
        })
        .collect();
    let cards = attached
        .into_iter()
        .map(|rb| Card {
            id: rb.runbook_id,
            title: rb.title.unwrap_or_default(),
            version: rb.version,
            how: match rb.how.as_str() {
                "rule" => "attached by its rules",
                "hand" => "attached by hand",
                _ => "attached by a workflow",
            }
            .into(),
            done: rb.done,
            total: rb.total,
            items: rb
                .items
                .into_iter()
                .map(|i| ItemLine {
                    who: match i.at {
                        Some(at) => format!("{}, {}", name(i.by), chrome.time(&at)),
                        None => String::new(),
                    },
                    running: i.run.as_ref().is_some_and(|r| r.finished_at.is_none()),
                    run: i.run.map(|r| RunLine {
                        class: format!("badge run-{}", r.status),
                        who: name(Some(r.by)),
                        when: chrome.time(&r.finished_at.unwrap_or(r.started_at)),
                        detail: r
                            .error
                            .clone()
                            .or_else(|| i.output.as_ref().map(output_summary))
                            .unwrap_or_default(),
                        run_id: r.run_id,
                        status: r.status,
                    }),
                    index: i.index,
                    text: i.text,
                    ticked: i.ticked,
                    step: i.step,
                })
                .collect(),
            name: rb.name,
        })
        .collect();
    Ok(RunbooksPanel { cards, choices })
}

/// A runbook line of the timeline, in words (the actor is shown beside it).
pub(crate) fn sentence(e: &Event) -> String {
    let d = &e.data;
    let s = |k: &str| d[k].as_str().unwrap_or("?").to_string();
    let item = || format!("“{}” of runbook {}", s("text"), s("runbook"));
    match e.kind.as_str() {
        "runbook.attached" => format!(
            "attached runbook {} ({} items{})",
            s("runbook"),
            d["items"],
            match d["how"].as_str() {
                Some("rule") => ", by its rules",
                _ => "",
            }
        ),
        "runbook.detached" => format!("detached runbook {}", s("runbook")),
        "runbook.item_checked" => format!("ticked {}", item()),
        "runbook.item_unchecked" => format!("unticked {}", item()),
        "runbook.item_run_started" => format!("ran the step of {}", item()),
        "runbook.item_run_finished" => {
            let out = match (d["error"].as_str(), d["output_summary"].as_str()) {
                (Some(err), _) => format!(": {err}"),
                (None, Some(o)) => format!(": {o}"),
                _ => String::new(),
            };
            format!("the step of {} {}{out}", item(), s("status"))
        }
        other => other.replace(['.', '_'], " "),
    }
}

fn back(number: &str) -> String {
    format!("/incidents/{number}#runbooks")
}

#[derive(Debug, Deserialize)]
struct AttachForm {
    runbook_id: Option<String>,
}

async fn attach(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfForm(f): CsrfForm<AttachForm>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    state.store.incident(id).await?;
    let chosen = f
        .runbook_id
        .as_deref()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| invalid("runbook_id", "choose a runbook from the list"))?;
    let runbook = runbook_named(&state, Some(chosen), None).await?;
    state
        .store
        .attach_runbook_as(id, runbook, AttachHow::Hand, &who.actor(), state.now())
        .await?;
    Ok(see_other(back(&number)))
}

#[derive(Debug, Deserialize)]
struct Empty {}

async fn detach(
    State(state): State<AppState>,
    who: AsResponder,
    Path((number, runbook_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    state
        .store
        .detach_runbook(
            id,
            path_id("runbook_id", &runbook_id)?,
            &who.actor(),
            state.now(),
        )
        .await?;
    Ok(see_other(back(&number)))
}

#[derive(Debug, Deserialize)]
struct CheckForm {
    /// `1` ticks, `0` unticks.
    checked: Option<String>,
}

async fn check(
    State(state): State<AppState>,
    who: AsResponder,
    Path((number, runbook_id, index)): Path<(String, String, String)>,
    CsrfForm(f): CsrfForm<CheckForm>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let checked = match f.checked.as_deref() {
        Some("1") => true,
        Some("0") => false,
        _ => return Err(invalid("checked", "must be 1 (tick) or 0 (untick)")),
    };
    state
        .store
        .check_runbook_item(
            id,
            path_id("runbook_id", &runbook_id)?,
            item_index(&index)?,
            checked,
            &who.actor(),
            state.now(),
        )
        .await?;
    Ok(see_other(back(&number)))
}

async fn run(
    State(state): State<AppState>,
    who: AsResponder,
    Path((number, runbook_id, index)): Path<(String, String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    start_item_run(
        &state,
        &who.actor(),
        id,
        path_id("runbook_id", &runbook_id)?,
        item_index(&index)?,
    )
    .await?;
    Ok(see_other(back(&number)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    use crate::web::room::timeline::tests::event;

    /// The data the store writes (workflows/runbooks.rs, runbook_progress.rs).
    #[test]
    fn sentences_read_the_data_the_store_writes() {
        let item = json!({ "runbook_id": 1, "runbook": "Failover", "version": 1, "item": 0,
                           "text": "Check health", "checked": true, "by": 3,
                           "by_name": "Carol", "at": "2026-01-01T00:00:00Z" });
        let mut finished = item.clone();
        finished["status"] = json!("succeeded");
        finished["error"] = json!(null);
        finished["output_summary"] = json!("HTTP 200: ok");
        let mut failed = finished.clone();
        failed["status"] = json!("failed");
        failed["error"] = json!("HTTP 500");
        for (kind, data, want) in [
            (
                "runbook.attached",
                json!({ "runbook_id": 1, "name": "Failover", "runbook": "Failover", "version": 1,
                        "title": "T", "items": 2, "how": "rule" }),
                "attached runbook Failover (2 items, by its rules)",
            ),
            (
                "runbook.detached",
                json!({ "runbook_id": 1, "runbook": "Failover" }),
                "detached runbook Failover",
            ),
            (
                "runbook.item_checked",
                item.clone(),
                "ticked “Check health” of runbook Failover",
            ),
            (
                "runbook.item_unchecked",
                item.clone(),
                "unticked “Check health”",
            ),
            (
                "runbook.item_run_started",
                item,
                "ran the step of “Check health”",
            ),
            (
                "runbook.item_run_finished",
                finished,
                "the step of “Check health” of runbook Failover succeeded: HTTP 200: ok",
            ),
            ("runbook.item_run_finished", failed, "failed: HTTP 500"),
        ] {
            let got = sentence(&event(kind, data));
            assert!(got.contains(want), "{kind}: {got:?} lacks {want:?}");
            assert!(!got.contains('?'), "{kind}: {got:?}");
        }
    }
}
