//! Services: the list (policy, open incidents) with the admin's create form, and
//! one service: who its escalation policy pages now, its open incidents, its
//! integration keys (admin: create, with the secret and snippets shown once, and
//! revoke) and its heartbeats. Same store calls and roles as /api/v1/services.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tocsin_core::model::required_text;
use tocsin_store::{IncidentFilter, IncidentSort, StoreError, WebSession};

use super::alerts::{some, Opt};
use super::common::{elapsed, page, see_other, Chrome, WebError, WebResult};
use super::dashboard::{rows, Names, Row, OPEN};
use super::session::{AsAdmin, AsViewer, CsrfForm};
use crate::api::directory::{ServiceRequest, MAX_NAME};
use crate::api::escalation_policies::service_on_call_at;
use crate::api::path_id;
use crate::api::snippets::{base_url, snippets, Snippets};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/services", get(list).post(create))
        .route("/services/{id}", get(detail))
        .route("/services/{id}/escalation-policy", post(set_policy))
        .route("/services/{id}/integration-keys", post(create_key))
        .route(
            "/services/{id}/integration-keys/{key_id}/revoke",
            post(revoke_key),
        )
}

/// A form with nothing but its token.
#[derive(Debug, Deserialize)]
struct Empty {}

/// A refused form's message and status; anything else is an error page.
fn refusal(e: StoreError) -> Result<(StatusCode, String), WebError> {
    match e {
        StoreError::Invalid(e) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{}: {}", e.field, e.message),
        )),
        StoreError::Conflict { field, message } => {
            Ok((StatusCode::CONFLICT, format!("{field}: {message}")))
        }
        e => Err(e.into()),
    }
}

// ---- the list ----

struct ServiceRow {
    id: i64,
    name: String,
    description: String,
    policy: Option<String>,
    open: i64,
}

#[derive(Template)]
#[template(path = "services.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<ServiceRow>,
    teams: Vec<Opt>,
    error: Option<String>,
    name: String,
    description: String,
    team_id: String,
}

#[derive(Debug, Default, Deserialize)]
struct ServiceForm {
    name: Option<String>,
    description: Option<String>,
    team_id: Option<String>,
}

async fn policy_names(state: &AppState) -> WebResult<HashMap<i64, String>> {
    Ok(state
        .store
        .escalation_policies()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

async fn list_page(
    state: &AppState,
    who: &WebSession,
    f: ServiceForm,
    refused: Option<(StatusCode, String)>,
) -> WebResult<Response> {
    let chrome = Chrome::new(who, "services", "Services");
    let policies = policy_names(state).await?;
    let overview: HashMap<i64, _> = state
        .store
        .service_overview()
        .await?
        .into_iter()
        .map(|o| (o.service_id, o))
        .collect();
    let rows = state
        .store
        .services()
        .await?
        .into_iter()
        .map(|s| {
            let o = overview.get(&s.id);
            ServiceRow {
                id: s.id,
                name: s.name,
                description: s.description,
                policy: o
                    .and_then(|o| o.escalation_policy_id)
                    .and_then(|p| policies.get(&p).cloned()),
                open: o.map(|o| o.open_incidents).unwrap_or(0),
            }
        })
        .collect();
    let teams = if chrome.is_admin {
        state
            .store
            .teams()
            .await?
            .into_iter()
            .map(|t| Opt {
                value: t.id.to_string(),
                label: t.name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let status = refused.as_ref().map(|(s, _)| *s);
    let body = ListPage {
        rows,
        teams,
        error: refused.map(|(_, m)| m),
        name: f.name.unwrap_or_default(),
        description: f.description.unwrap_or_default(),
        team_id: f.team_id.unwrap_or_default(),
        chrome,
    };
    let mut resp = page(&body);
    if let Some(s) = status {
        *resp.status_mut() = s;
    }
    Ok(resp)
}

async fn list(State(state): State<AppState>, who: AsViewer) -> WebResult<Response> {
    list_page(&state, &who.0, ServiceForm::default(), None).await
}

async fn create(
    State(state): State<AppState>,
    who: AsAdmin,
    CsrfForm(f): CsrfForm<ServiceForm>,
) -> WebResult<Response> {
    let bad = |m: String| Some((StatusCode::UNPROCESSABLE_ENTITY, m));
    let team_id = match some(&f.team_id).map(|t| t.parse::<i64>()) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            let m = bad("team_id: choose one from the list".into());
            return list_page(&state, &who.0, f, m).await;
        }
    };
    let req = ServiceRequest {
        name: f.name.clone().unwrap_or_default(),
        description: f.description.clone().unwrap_or_default(),
        team_id,
    };
    let (name, description) = match req.checked() {
        Ok(x) => x,
        Err(e) => {
            let m = bad(format!("{}: {}", e.field, e.message));
            return list_page(&state, &who.0, f, m).await;
        }
    };
    match state
        .store
        .create_service(&name, &description, team_id, &who.actor(), state.now())
        .await
    {
        Ok(s) => Ok(see_other(format!("/services/{}", s.id))),
        Err(e) => {
            let refused = refusal(e)?;
            list_page(&state, &who.0, f, Some(refused)).await
        }
    }
}

// ---- one service ----

struct LevelView {
    number: usize,
    delay_minutes: u32,
    users: Vec<String>,
    empty_targets: usize,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct KeyRow {
    id: i64,
    name: String,
    prefix: String,
    created: String,
    revoked: Option<String>,
}

/// A key just created: its secret and snippets, on this one page only.
struct NewKey {
    name: String,
    secret: String,
    snippets: Snippets,
}

struct BeatRow {
    name: String,
    every: String,
    state: &'static str,
    last_ping: String,
    due: String,
}

#[derive(Template)]
#[template(path = "service.html")]
struct DetailPage {
    chrome: Chrome,
    id: i64,
    name: String,
    description: String,
    team: Option<String>,
    created: String,
    policy: Option<String>,
    policies: Vec<Choice>,
    on_call: Vec<LevelView>,
    open: Vec<Row>,
    open_more: bool,
    keys: Vec<KeyRow>,
    new_key: Option<NewKey>,
    key_error: Option<String>,
    key_name: String,
    heartbeats: Vec<BeatRow>,
}

/// What the page shows after a key form, beyond the service itself.
#[derive(Default)]
struct KeyOutcome {
    new_key: Option<NewKey>,
    error: Option<String>,
    name: String,
}

async fn detail_page(
    state: &AppState,
    who: &WebSession,
    id: i64,
    outcome: KeyOutcome,
) -> WebResult<Response> {
    let service = state.store.service(id).await?;
    let chrome = Chrome::new(who, "services", service.name.clone());
    let now = state.now();
    let policy_id = state.store.service_escalation_policy(id).await?;
    let policies = policy_names(state).await?;
    let mut choices: Vec<Choice> = policies
        .iter()
        .map(|(pid, name)| Choice {
            value: pid.to_string(),
            label: name.clone(),
            selected: Some(*pid) == policy_id,
        })
        .collect();
    choices.sort_by(|a, b| a.label.cmp(&b.label));
    let on_call = service_on_call_at(state, id, now)
        .await?
        .map(|p| {
            p.levels
                .into_iter()
                .map(|l| LevelView {
                    number: l.level + 1,
                    delay_minutes: l.delay_minutes,
                    users: l.users.into_iter().map(|u| u.user_name).collect(),
                    empty_targets: l.empty_targets.len(),
                })
                .collect()
        })
        .unwrap_or_default();
    const SHOWN: i64 = 25;
    let open = state
        .store
        .list_incidents(
            &state.settings,
            &IncidentFilter {
                statuses: OPEN.to_vec(),
                service_id: Some(id),
                sort: IncidentSort::Severity,
                limit: SHOWN,
                ..Default::default()
            },
        )
        .await?;
    // Integration keys are listed to admins only, as by the API.
    let keys = if chrome.is_admin {
        state
            .store
            .integration_keys(id)
            .await?
            .into_iter()
            .map(|k| KeyRow {
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                created: chrome.time(&k.created_at),
                revoked: k.revoked_at.as_ref().map(|t| chrome.time(t)),
            })
            .collect()
    } else {
        Vec::new()
    };
    let heartbeats = state
        .store
        .heartbeats(id)
        .await?
        .into_iter()
        .map(|h| BeatRow {
            every: elapsed(now - chrono::Duration::seconds(h.interval_seconds), now),
            state: h.state.as_str(),
            last_ping: chrome.time_opt(&h.last_ping_at),
            due: chrome.time(&h.due_at),
            name: h.name,
        })
        .collect();
    let team = match service.team_id {
        Some(t) => Some(state.store.team(t).await?.name),
        None => None,
    };
    let failed = outcome.error.is_some();
    let body = DetailPage {
        id,
        name: service.name,
        description: service.description,
        team,
        created: chrome.time(&service.created_at),
        policy: policy_id.and_then(|p| policies.get(&p).cloned()),
        policies: choices,
        on_call,
        open: rows(state, &chrome, &Names::load(state).await?, &open.items),
        open_more: open.next_cursor.is_some(),
        keys,
        new_key: outcome.new_key,
        key_error: outcome.error,
        key_name: outcome.name,
        heartbeats,
        chrome,
    };
    let mut resp = page(&body);
    if failed {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

async fn detail(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    detail_page(&state, &who.0, path_id("id", &id)?, KeyOutcome::default()).await
}

#[derive(Debug, Deserialize)]
struct PolicyForm {
    /// Empty: no policy.
    escalation_policy_id: Option<String>,
}

async fn set_policy(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<PolicyForm>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let policy = some(&f.escalation_policy_id)
        .map(|p| path_id("escalation_policy_id", &p))
        .transpose()?;
    state
        .store
        .set_service_escalation_policy(id, policy, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/services/{id}")))
}

#[derive(Debug, Deserialize)]
struct KeyForm {
    name: Option<String>,
}

/// Creates a key and answers with the service's page showing the secret and
/// the snippets filled in with it — the only time they are shown.
async fn create_key(
    State(state): State<AppState>,
    who: AsAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<KeyForm>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let typed = f.name.clone().unwrap_or_default();
    let refused = |error: String| KeyOutcome {
        error: Some(error),
        name: typed.clone(),
        new_key: None,
    };
    let name = match required_text("name", &typed, MAX_NAME) {
        Ok(n) => n,
        Err(e) => {
            let o = refused(format!("{}: {}", e.field, e.message));
            return detail_page(&state, &who.0, id, o).await;
        }
    };
    let k = match state
        .store
        .create_integration_key(id, &name, &who.actor(), state.now())
        .await
    {
        Ok(k) => k,
        Err(e) => {
            let (_, m) = refusal(e)?;
            return detail_page(&state, &who.0, id, refused(m)).await;
        }
    };
    // The secret exists only in this answer: if the full page cannot be drawn,
    // it is shown on a page built from what the create returned alone, and if
    // even that fails the key is revoked rather than left live and unknown.
    let base = base_url(&state, &headers);
    let new_key = || NewKey {
        snippets: snippets(&base, k.record.id, &k.secret),
        name: k.record.name.clone(),
        secret: k.secret.clone(),
    };
    let outcome = KeyOutcome {
        new_key: Some(new_key()),
        ..Default::default()
    };
    let mut resp = match detail_page(&state, &who.0, id, outcome).await {
        Ok(resp) if resp.status().is_success() => resp,
        full => {
            if let Err(e) = &full {
                tracing::error!(error = ?e, "service page after creating a key failed");
            }
            let alone = page(&NewKeyPage {
                chrome: Chrome::new(&who.0, "services", "Integration key created"),
                id,
                new_key: new_key(),
            });
            if !alone.status().is_success() {
                state
                    .store
                    .revoke_integration_key(id, k.record.id, &who.actor(), state.now())
                    .await?;
                return full;
            }
            alone
        }
    };
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

/// A key just created, on a page of its own: what `create_key` shows when the
/// service's page cannot be drawn (it needs no further reads).
#[derive(Template)]
#[template(path = "service_key.html")]
struct NewKeyPage {
    chrome: Chrome,
    id: i64,
    new_key: NewKey,
}

async fn revoke_key(
    State(state): State<AppState>,
    who: AsAdmin,
    Path((id, key_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    state
        .store
        .revoke_integration_key(id, path_id("key_id", &key_id)?, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/services/{id}#integrations")))
}
