//! Runbooks: the list, one runbook (its checklist, and for admins the edit
//! form: markdown and attach rules, saved as a new version, and delete), and
//! the new-runbook form. The same checks and store calls as /api/v1/runbooks;
//! a refused form comes back with what was typed and the field at fault.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tocsin_core::workflow::runbook::{self, AttachRules};
use tocsin_store::{StoreError, WebSession};

use super::common::{page, see_other, Chrome, WebError, WebResult};
use super::session::{field, fields, AsAdmin, AsViewer, CsrfPairs};
use crate::api::path_id;
use crate::api::runbooks::checked_runbook;
use crate::state::AppState;
use crate::ApiError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/runbooks", get(list).post(create))
        .route("/runbooks/new", get(new))
        .route("/runbooks/{id}", get(detail).post(update))
        .route("/runbooks/{id}/delete", post(delete))
}

/// A runbook in the list.
struct Row {
    id: i64,
    name: String,
    title: String,
    version: i64,
    items: usize,
    steps: usize,
    rules: String,
}

#[derive(Template)]
#[template(path = "runbooks.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
}

/// A choice in the rules' selects.
struct Choice {
    value: String,
    selected: bool,
}

/// The form, as shown or as posted back.
struct Form {
    name: String,
    body: String,
    services: Vec<Choice>,
    types: Vec<Choice>,
    severities: Vec<Choice>,
    error: Option<String>,
}

/// A checklist line on the runbook's page.
struct Line {
    text: String,
    step: Option<String>,
}

#[derive(Template)]
#[template(path = "runbook.html")]
struct RunbookPage {
    chrome: Chrome,
    /// None: the new-runbook form.
    id: Option<i64>,
    version: i64,
    lines: Vec<Line>,
    form: Form,
}

/// Rules as one line: `services payments; severities SEV1, SEV2`.
fn rules_text(r: &AttachRules) -> String {
    let mut parts = Vec::new();
    for (what, list) in [
        ("services", &r.services),
        ("types", &r.incident_types),
        ("severities", &r.severities),
    ] {
        if !list.is_empty() {
            parts.push(format!("{what} {}", list.join(", ")));
        }
    }
    parts.join("; ")
}

fn choices(all: Vec<String>, chosen: &[String]) -> Vec<Choice> {
    let mut out: Vec<Choice> = all
        .into_iter()
        .map(|value| Choice {
            selected: chosen.contains(&value),
            value,
        })
        .collect();
    // A rule naming something no longer there still shows (and posts back).
    for c in chosen {
        if !out.iter().any(|o| &o.value == c) {
            out.push(Choice {
                value: c.clone(),
                selected: true,
            });
        }
    }
    out
}

async fn form(
    state: &AppState,
    name: String,
    body: String,
    rules: &AttachRules,
    error: Option<String>,
) -> WebResult<Form> {
    let services = state
        .store
        .services()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    Ok(Form {
        name,
        body,
        services: choices(services, &rules.services),
        types: choices(
            state
                .settings
                .types
                .iter()
                .map(|t| t.name.clone())
                .collect(),
            &rules.incident_types,
        ),
        severities: choices(
            state
                .settings
                .severities
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            &rules.severities,
        ),
        error,
    })
}

async fn list(State(state): State<AppState>, who: AsViewer) -> WebResult<Response> {
    let rows = state
        .store
        .runbooks()
        .await?
        .into_iter()
        .map(|r| Row {
            rules: rules_text(&r.attach),
            id: r.id,
            name: r.name,
            title: r.title.unwrap_or_default(),
            version: r.version,
            items: r.items,
            steps: r.steps,
        })
        .collect();
    Ok(page(&ListPage {
        chrome: Chrome::new(&who.0, "runbooks", "Runbooks"),
        rows,
    }))
}

async fn new(State(state): State<AppState>, who: AsAdmin) -> WebResult<Response> {
    let body = "# Title\n\n- [ ] First thing to do\n".to_string();
    let form = form(&state, String::new(), body, &AttachRules::default(), None).await?;
    Ok(page(&RunbookPage {
        chrome: Chrome::new(&who.0, "runbooks", "New runbook"),
        id: None,
        version: 0,
        lines: Vec::new(),
        form,
    }))
}

async fn show(
    state: &AppState,
    who: &WebSession,
    id: i64,
    posted: Option<(String, String, AttachRules, String)>,
) -> WebResult<Response> {
    let (rec, markdown) = state.store.runbook(id).await?;
    let lines = runbook::parse(&markdown)
        .map(|p| p.items)
        .unwrap_or_default()
        .into_iter()
        .map(|i| Line {
            step: i.step.as_ref().map(|s| s.kind().to_string()),
            text: i.text,
        })
        .collect();
    let refused = posted.is_some();
    let (name, body, rules, error) = match posted {
        Some((n, b, r, e)) => (n, b, r, Some(e)),
        None => (
            rec.name.clone(),
            runbook::body(&markdown).to_string(),
            rec.attach.clone(),
            None,
        ),
    };
    let form = form(state, name, body, &rules, error).await?;
    let mut resp = page(&RunbookPage {
        chrome: Chrome::new(who, "runbooks", format!("Runbook {}", rec.name)),
        id: Some(rec.id),
        version: rec.version,
        lines,
        form,
    });
    if refused {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

async fn detail(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    show(&state, &who.0, path_id("id", &id)?, None).await
}

/// What the form posted: name, markdown, rules.
fn posted(pairs: &[(String, String)]) -> (String, String, AttachRules) {
    let list = |k: &str| -> Vec<String> {
        fields(pairs, k)
            .into_iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    };
    (
        field(pairs, "name").unwrap_or_default().to_string(),
        field(pairs, "markdown")
            .unwrap_or_default()
            .replace("\r\n", "\n"),
        AttachRules {
            services: list("services"),
            incident_types: list("incident_types"),
            severities: list("severities"),
        },
    )
}

/// A refusal the form shows; anything else is the error page.
fn refusal(e: ApiError) -> Result<String, WebError> {
    match e {
        ApiError::Invalid { field, message } => Ok(format!("{field}: {message}")),
        ApiError::Conflict { message, field, .. } => Ok(match field {
            Some(f) => format!("{f}: {message}"),
            None => message,
        }),
        e => Err(WebError::Api(e)),
    }
}

fn store_refusal(e: StoreError) -> Result<String, WebError> {
    refusal(e.into())
}

async fn create(
    State(state): State<AppState>,
    who: AsAdmin,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let (name, body, rules) = posted(&pairs);
    let saved = match checked_runbook(&state, &name, &body, Some(rules.clone())).await {
        Ok((n, source)) => state
            .store
            .create_runbook(&n, &source, &who.actor(), state.now())
            .await
            .map_err(store_refusal),
        Err(e) => Err(refusal(e)),
    };
    match saved {
        Ok(rec) => Ok(see_other(format!("/runbooks/{}", rec.id))),
        Err(e) => {
            let error = e?;
            let form = form(&state, name, body, &rules, Some(error)).await?;
            let mut resp = page(&RunbookPage {
                chrome: Chrome::new(&who.0, "runbooks", "New runbook"),
                id: None,
                version: 0,
                lines: Vec::new(),
                form,
            });
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
    }
}

async fn update(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    state.store.runbook(id).await?;
    let (name, body, rules) = posted(&pairs);
    let saved = match checked_runbook(&state, &name, &body, Some(rules.clone())).await {
        Ok((n, source)) => state
            .store
            .update_runbook(id, &n, &source, &who.actor(), state.now())
            .await
            .map_err(store_refusal),
        Err(e) => Err(refusal(e)),
    };
    match saved {
        Ok(_) => Ok(see_other(format!("/runbooks/{id}"))),
        Err(e) => show(&state, &who.0, id, Some((name, body, rules, e?))).await,
    }
}

async fn delete(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfPairs(_): CsrfPairs,
) -> WebResult<Response> {
    state
        .store
        .delete_runbook(path_id("id", &id)?, &who.actor(), state.now())
        .await?;
    Ok(see_other("/runbooks"))
}
