//! The dashboard: open incidents by severity and status, the open incidents
//! themselves, mine, who is on call now, and the latest alerts — live.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tocsin_core::alert::Alert;
use tocsin_core::incident::Status;
use tocsin_core::model::{Incident, Service, User};
use tocsin_store::{IncidentFilter, IncidentSort};

use super::common::{elapsed, on_call_now, page, severity_class, Chrome, OnCallNow, WebResult};
use super::session::AsViewer;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/", get(dashboard))
}

/// The statuses an incident is open in, in lifecycle order.
pub(crate) const OPEN: [Status; 5] = [
    Status::Triggered,
    Status::Acknowledged,
    Status::Investigating,
    Status::Identified,
    Status::Monitoring,
];

/// One row of an incident table, formatted for the page.
pub(crate) struct Row {
    pub number: String,
    pub title: String,
    pub severity: String,
    pub sev_class: String,
    pub status: &'static str,
    pub priority: &'static str,
    pub services: String,
    pub assignee: String,
    pub created: String,
    pub since: String,
    pub age: String,
}

/// Service and user names by id, read once per page however many tables it has.
pub(crate) struct Names {
    pub services: HashMap<i64, String>,
    pub users: HashMap<i64, String>,
}

impl Names {
    /// Reads every service and user.
    pub async fn load(state: &AppState) -> WebResult<Names> {
        Ok(Names::of(
            &state.store.services().await?,
            &state.store.users().await?,
        ))
    }

    /// From lists a page has already read.
    pub fn of(services: &[Service], users: &[User]) -> Names {
        Names {
            services: services.iter().map(|s| (s.id, s.name.clone())).collect(),
            users: users.iter().map(|u| (u.id, u.name.clone())).collect(),
        }
    }
}

/// Rows for `incidents`.
pub(crate) fn rows(
    state: &AppState,
    chrome: &Chrome,
    names: &Names,
    incidents: &[Incident],
) -> Vec<Row> {
    let now = state.now();
    let (services, users) = (&names.services, &names.users);
    incidents
        .iter()
        .map(|i| Row {
            number: i.number.clone(),
            title: i.title.clone(),
            severity: i.severity.clone(),
            sev_class: severity_class(&state.settings, &i.severity),
            status: i.status.as_str(),
            priority: i.priority.as_str(),
            services: i
                .service_ids
                .iter()
                .filter_map(|s| services.get(s).cloned())
                .collect::<Vec<_>>()
                .join(", "),
            assignee: i
                .assignee_id
                .and_then(|u| users.get(&u).cloned())
                .unwrap_or_default(),
            created: chrome.time(&i.created_at),
            since: i
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            age: elapsed(i.created_at, now),
        })
        .collect()
}

struct SevCount {
    name: String,
    class: String,
    total: i64,
    by_status: Vec<i64>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    statuses: Vec<&'static str>,
    counts: Vec<SevCount>,
    open_total: i64,
    open: Vec<Row>,
    open_more: bool,
    mine: Vec<Row>,
    on_call: Vec<OnCallNow>,
    alerts: Vec<AlertRow>,
    /// Action items past their due day, mine first.
    overdue: Vec<super::postmortems::ItemRow>,
}

pub(crate) struct AlertRow {
    pub id: i64,
    pub summary: String,
    pub status: &'static str,
    pub severity: &'static str,
    pub service: String,
    pub incident: Option<(i64, String)>,
    pub last_seen: String,
    pub count: i64,
    /// What holds it back from opening an incident (`silence:<id>`, …), if anything.
    pub held: Option<String>,
}

/// Rows for `alerts`.
pub(crate) fn alert_rows(
    chrome: &Chrome,
    services: &HashMap<i64, String>,
    alerts: &[Alert],
) -> Vec<AlertRow> {
    alerts
        .iter()
        .map(|a| AlertRow {
            id: a.id,
            summary: a.summary.clone(),
            status: a.status.as_str(),
            severity: a.severity.as_str(),
            service: services.get(&a.service_id).cloned().unwrap_or_default(),
            incident: a
                .incident_id
                .map(|i| (i, tocsin_core::incident::format_number(i))),
            last_seen: chrome.time(&a.last_seen),
            count: a.count,
            held: a.suppressed_by.clone(),
        })
        .collect()
}

async fn dashboard(State(state): State<AppState>, who: AsViewer) -> WebResult<Response> {
    let chrome = Chrome::new(&who.0, "dashboard", "Dashboard").live("incidents");
    let now = state.now();
    let statuses: Vec<&'static str> = OPEN.iter().map(|s| s.as_str()).collect();
    let raw = state.store.open_incident_counts().await?;
    let mut counts: Vec<SevCount> = state
        .settings
        .severities
        .iter()
        .map(|s| SevCount {
            name: s.name.clone(),
            class: severity_class(&state.settings, &s.name),
            total: 0,
            by_status: vec![0; OPEN.len()],
        })
        .collect();
    let mut open_total = 0;
    for (sev, status, n) in raw {
        open_total += n;
        let Some(c) = counts.iter_mut().find(|c| c.name == sev) else {
            continue;
        };
        c.total += n;
        if let Some(i) = statuses.iter().position(|s| *s == status) {
            c.by_status[i] += n;
        }
    }
    const SHOWN: i64 = 25;
    let open = state
        .store
        .list_incidents(
            &state.settings,
            &IncidentFilter {
                statuses: OPEN.to_vec(),
                sort: IncidentSort::Severity,
                limit: SHOWN,
                ..Default::default()
            },
        )
        .await?;
    let mine = state
        .store
        .list_incidents(
            &state.settings,
            &IncidentFilter {
                statuses: OPEN.to_vec(),
                assignee_id: Some(who.user_id()),
                sort: IncidentSort::Severity,
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    let alerts = state.store.alerts(None, None, None, None, None, 8).await?;
    let names = Names::load(&state).await?;
    let mut overdue = state.store.action_items(None, None, true, now).await?;
    overdue.sort_by_key(|i| i.owner_id != Some(who.user_id()));
    overdue.truncate(10);
    let body = Dashboard {
        overdue: overdue
            .into_iter()
            .map(super::postmortems::ItemRow::of)
            .collect(),
        open: rows(&state, &chrome, &names, &open.items),
        open_more: open.next_cursor.is_some(),
        mine: rows(&state, &chrome, &names, &mine.items),
        on_call: on_call_now(&state, now).await?,
        alerts: alert_rows(&chrome, &names.services, &alerts),
        statuses,
        counts,
        open_total,
        chrome,
    };
    Ok(page(&body))
}
