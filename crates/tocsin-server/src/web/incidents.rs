//! The incident list (filters, search, sort, pages) and the declare form.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tocsin_core::change::NewIncident;
use tocsin_core::incident::Level;

use super::common::{page, see_other, Chrome, WebError, WebResult};
use super::dashboard::{rows, Names, Row, OPEN};
use super::session::{AsResponder, AsViewer, CsrfForm};
use crate::api::incidents::ListQuery;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents", get(list).post(declare))
        .route("/incidents/new", get(declare_form))
        .route(
            "/incidents/new/similar",
            axum::routing::post(declare_similar),
        )
}

/// The list's query: the API's filters, each one value, as a form sends them.
#[derive(Debug, Default, Deserialize)]
struct ListForm {
    status: Option<String>,
    severity: Option<String>,
    priority: Option<String>,
    #[serde(rename = "type")]
    incident_type: Option<String>,
    service_id: Option<String>,
    assignee_id: Option<String>,
    /// `24h`, `7d`, `30d`, `90d` or empty (any time).
    since: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

struct Opt {
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    empty: &'static str,
    q: String,
    status: String,
    severity: String,
    priority: String,
    incident_type: String,
    service_id: String,
    assignee_id: String,
    since: String,
    sort: String,
    statuses: Vec<Opt>,
    severities: Vec<String>,
    types: Vec<String>,
    services: Vec<Opt>,
    users: Vec<Opt>,
    next: Option<String>,
    first: Option<String>,
}

fn query_string(f: &ListForm, cursor: Option<&str>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("status", &f.status),
        ("severity", &f.severity),
        ("priority", &f.priority),
        ("type", &f.incident_type),
        ("service_id", &f.service_id),
        ("assignee_id", &f.assignee_id),
        ("since", &f.since),
        ("q", &f.q),
        ("sort", &f.sort),
    ] {
        if let Some(v) = some(v) {
            q.append_pair(k, &v);
        }
    }
    if let Some(c) = cursor {
        q.append_pair("cursor", c);
    }
    q.finish()
}

async fn list(
    State(state): State<AppState>,
    who: AsViewer,
    Query(f): Query<ListForm>,
) -> WebResult<Response> {
    let chrome = Chrome::new(&who.0, "incidents", "Incidents").live("incidents");
    let created_from = match some(&f.since).as_deref() {
        None => None,
        Some(s) => {
            let d = match s {
                "24h" => chrono::Duration::hours(24),
                "7d" => chrono::Duration::days(7),
                "30d" => chrono::Duration::days(30),
                "90d" => chrono::Duration::days(90),
                _ => {
                    return Err(WebError::Api(crate::ApiError::Invalid {
                        field: "since".into(),
                        message: "must be one of 24h, 7d, 30d, 90d".into(),
                    }))
                }
            };
            Some((state.now() - d).to_rfc3339())
        }
    };
    let status = match some(&f.status).as_deref() {
        Some("open") => Some(
            OPEN.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => other.map(str::to_string),
    };
    let filter = ListQuery {
        status,
        severity: some(&f.severity),
        priority: some(&f.priority),
        incident_type: some(&f.incident_type),
        service_id: some(&f.service_id),
        assignee_id: some(&f.assignee_id),
        label: None,
        created_from,
        created_to: None,
        q: some(&f.q),
        sort: some(&f.sort),
        cursor: some(&f.cursor),
        limit: Some("50".into()),
    }
    .into_filter(&state)?;
    let found = state.store.list_incidents(&state.settings, &filter).await?;
    let services = state.store.services().await?;
    let users = state.store.users().await?;
    let body = ListPage {
        rows: rows(&state, &chrome, &Names::of(&services, &users), &found.items),
        empty: "No incidents match.",
        next: found
            .next_cursor
            .as_deref()
            .map(|c| format!("/incidents?{}", query_string(&f, Some(c)))),
        first: some(&f.cursor).map(|_| format!("/incidents?{}", query_string(&f, None))),
        q: some(&f.q).unwrap_or_default(),
        status: some(&f.status).unwrap_or_default(),
        severity: some(&f.severity).unwrap_or_default(),
        priority: some(&f.priority).unwrap_or_default(),
        incident_type: some(&f.incident_type).unwrap_or_default(),
        service_id: some(&f.service_id).unwrap_or_default(),
        assignee_id: some(&f.assignee_id).unwrap_or_default(),
        since: some(&f.since).unwrap_or_default(),
        sort: some(&f.sort).unwrap_or_default(),
        statuses: std::iter::once(Opt {
            value: "open".into(),
            label: "open (any)".into(),
        })
        .chain(tocsin_core::incident::Status::ALL.iter().map(|s| Opt {
            value: s.as_str().into(),
            label: s.as_str().into(),
        }))
        .collect(),
        severities: state
            .settings
            .severities
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        types: state
            .settings
            .types
            .iter()
            .map(|t| t.name.clone())
            .collect(),
        services: services
            .into_iter()
            .map(|s| Opt {
                value: s.id.to_string(),
                label: s.name,
            })
            .collect(),
        users: users
            .into_iter()
            .map(|u| Opt {
                value: u.id.to_string(),
                label: u.name,
            })
            .collect(),
        chrome,
    };
    Ok(page(&body))
}

#[derive(Template)]
#[template(path = "declare.html")]
struct DeclarePage {
    chrome: Chrome,
    severities: Vec<String>,
    services: Vec<Opt>,
    error: Option<String>,
    title: String,
    severity: String,
    service_id: String,
    description: String,
    page: bool,
    /// Past incidents like the one typed, when asked for.
    similar: Option<Vec<super::room::similar::SimilarRow>>,
}

async fn declare_form(State(state): State<AppState>, who: AsResponder) -> WebResult<Response> {
    declare_page(&state, &who, DeclareForm::default(), None, None).await
}

/// "Find similar first": the form again, as typed, with the past incidents
/// most like its title and description (ranked higher on its service).
async fn declare_similar(
    State(state): State<AppState>,
    who: AsResponder,
    CsrfForm(f): CsrfForm<DeclareForm>,
) -> WebResult<Response> {
    let text = format!(
        "{}\n{}",
        f.title.as_deref().unwrap_or_default(),
        f.description.as_deref().unwrap_or_default()
    );
    if text.trim().is_empty() {
        return declare_page(
            &state,
            &who,
            f,
            Some("title: say what is wrong first".into()),
            None,
        )
        .await;
    }
    let query = tocsin_core::similar::SimilarDoc {
        title: f.title.clone().unwrap_or_default(),
        description: f.description.clone().unwrap_or_default(),
        service_ids: f
            .service_id
            .as_deref()
            .and_then(|s| s.parse().ok())
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let hits = crate::similar::similar(&state, &query, 5, None).await?;
    declare_page(&state, &who, f, None, Some(hits)).await
}

async fn declare_page(
    state: &AppState,
    who: &AsResponder,
    f: DeclareForm,
    error: Option<String>,
    similar: Option<Vec<crate::similar::SimilarIncident>>,
) -> WebResult<Response> {
    let failed = error.is_some();
    // A fresh form offers paging; one coming back keeps what was ticked.
    let fresh = !failed && similar.is_none();
    let chrome = Chrome::new(&who.0, "incidents", "Declare an incident");
    let body = DeclarePage {
        similar: similar.map(|hits| super::room::similar::rows(&chrome, hits)),
        page: f.page.is_some() || fresh,
        severities: state
            .settings
            .severities
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        services: state
            .store
            .services()
            .await?
            .into_iter()
            .map(|s| Opt {
                value: s.id.to_string(),
                label: s.name,
            })
            .collect(),
        error,
        title: f.title.unwrap_or_default(),
        severity: f.severity.unwrap_or_default(),
        service_id: f.service_id.unwrap_or_default(),
        description: f.description.unwrap_or_default(),
        chrome,
    };
    let mut resp = page(&body);
    if failed {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

#[derive(Debug, Default, Deserialize)]
struct DeclareForm {
    title: Option<String>,
    severity: Option<String>,
    service_id: Option<String>,
    description: Option<String>,
    /// A checkbox: present means page the service's on-call.
    page: Option<String>,
}

/// Declares, then goes straight to the incident's page. A refused form comes
/// back with what was typed and the reason, naming the field.
async fn declare(
    State(state): State<AppState>,
    who: AsResponder,
    CsrfForm(f): CsrfForm<DeclareForm>,
) -> WebResult<Response> {
    let service_ids = match f.service_id.as_deref().map(str::parse::<i64>) {
        None => vec![],
        Some(Ok(id)) => vec![id],
        Some(Err(_)) => {
            return declare_page(
                &state,
                &who,
                f,
                Some("service: choose one from the list".into()),
                None,
            )
            .await
        }
    };
    // Paging needs a service whose on-call to page; without one the box means nothing.
    let page = f.page.is_some() && !service_ids.is_empty();
    let req = NewIncident {
        title: f.title.clone().unwrap_or_default(),
        description: f.description.clone().unwrap_or_default(),
        severity: f.severity.clone(),
        service_ids,
        page,
        impact: None::<Level>,
        ..Default::default()
    };
    match state
        .store
        .declare_incident(
            &state.settings,
            &req,
            Some(who.user_id()),
            &who.actor(),
            state.now(),
        )
        .await
    {
        Ok(inc) => Ok(see_other(format!("/incidents/{}", inc.number))),
        Err(tocsin_store::StoreError::Invalid(e)) => {
            declare_page(
                &state,
                &who,
                f,
                Some(format!("{}: {}", e.field, e.message)),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
