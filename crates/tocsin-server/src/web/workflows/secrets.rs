//! The secrets workflow steps read (admins only): names, who set them and
//! when, and forms to add, replace and delete. A value goes in and is never
//! shown again, not even in a refused form.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tocsin_store::WebSession;

use super::definitions::refusal;
use crate::api::secrets::delete_unused;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::common::{page, see_other, Chrome, WebResult};
use crate::web::session::{AsAdmin, CsrfForm};

struct Row {
    name: String,
    created: String,
    created_by: String,
    updated: String,
    updated_by: String,
}

#[derive(Template)]
#[template(path = "workflow_secrets.html")]
struct SecretsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    error: Option<String>,
    /// The name typed into a refused form (never the value).
    name: String,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SecretForm {
    name: Option<String>,
    value: Option<String>,
}

async fn secrets_page(
    state: &AppState,
    who: &WebSession,
    name: String,
    refused: Option<(StatusCode, String)>,
) -> WebResult<Response> {
    let chrome = Chrome::new(who, "workflows", "Workflow secrets");
    let names: HashMap<i64, String> = state
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let who_was = |u: Option<i64>| {
        u.and_then(|u| names.get(&u).cloned())
            .unwrap_or_else(|| "—".into())
    };
    let rows = state
        .store
        .secrets()
        .await?
        .into_iter()
        .map(|s| Row {
            created: chrome.time(&s.created_at),
            created_by: who_was(s.created_by),
            updated: chrome.time(&s.updated_at),
            updated_by: who_was(s.updated_by),
            name: s.name,
        })
        .collect();
    let status = refused.as_ref().map(|(s, _)| *s);
    let mut resp = page(&SecretsPage {
        chrome,
        rows,
        error: refused.map(|(_, m)| m),
        name,
    });
    if let Some(s) = status {
        *resp.status_mut() = s;
    }
    Ok(resp)
}

pub(super) async fn list(State(state): State<AppState>, who: AsAdmin) -> WebResult<Response> {
    secrets_page(&state, &who.0, String::new(), None).await
}

async fn put(
    state: AppState,
    who: AsAdmin,
    name: String,
    value: Option<String>,
    create: bool,
) -> WebResult<Response> {
    match state
        .store
        .put_secret(
            &name,
            value.as_deref().unwrap_or(""),
            create,
            &who.actor(),
            state.now(),
        )
        .await
    {
        Ok(_) => Ok(see_other("/workflows/secrets")),
        Err(e) => {
            let refused = refusal(ApiError::from(e), None)?;
            let typed = if create { name } else { String::new() };
            secrets_page(&state, &who.0, typed, Some(refused)).await
        }
    }
}

/// Adds a secret.
pub(super) async fn create(
    State(state): State<AppState>,
    who: AsAdmin,
    CsrfForm(f): CsrfForm<SecretForm>,
) -> WebResult<Response> {
    put(state, who, f.name.unwrap_or_default(), f.value, true).await
}

/// Replaces a secret's value.
pub(super) async fn replace(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<SecretForm>,
) -> WebResult<Response> {
    state.store.secret(&name).await?;
    put(state, who, name, f.value, false).await
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Empty {}

/// Deletes a secret no workflow reads.
pub(super) async fn delete(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    match delete_unused(&state, &name, &who.actor()).await {
        Ok(()) => Ok(see_other("/workflows/secrets")),
        Err(e) => {
            let refused = refusal(e, None)?;
            secrets_page(&state, &who.0, String::new(), Some(refused)).await
        }
    }
}
