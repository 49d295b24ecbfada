//! Silences and maintenance windows: what holds new alerts back from opening
//! incidents. Lists, create forms, expire and delete — through the same checks
//! and store calls as /api/v1/silences and /api/v1/maintenance-windows, with the
//! same roles (silences: responder; windows: admin).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;
use tocsin_core::maintenance::MaintenanceWindow;
use tocsin_core::silence::{Silence, SilenceState};
use tocsin_core::Invalid;
use tocsin_store::{StoreError, WebSession};

use super::{some, Opt};
use crate::api::path_id;
use crate::api::suppression::{self as api, SilenceRequest, WindowRequest};
use crate::state::AppState;
use crate::web::common::{page, see_other, Chrome, WebError, WebResult};
use crate::web::session::{field, fields, AsAdmin, AsResponder, AsViewer, CsrfForm, CsrfPairs};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/alerts/silences", get(silences).post(create_silence))
        .route("/alerts/silences/{id}/expire", post(expire_silence))
        .route("/alerts/maintenance", get(windows).post(create_window))
        .route("/alerts/maintenance/{id}/delete", post(delete_window))
}

/// A `datetime-local` value (or RFC 3339) in the user's zone, as UTC.
pub(crate) fn local_time(
    tz: Tz,
    name: &str,
    v: &Option<String>,
) -> Result<Option<DateTime<Utc>>, Invalid> {
    let Some(s) = some(v) else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let n = NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            Invalid::new(
                name,
                format!("`{s}` is not a date and time (YYYY-MM-DDTHH:MM)"),
            )
        })?;
    tz.from_local_datetime(&n)
        .earliest()
        .map(|t| Some(t.with_timezone(&Utc)))
        .ok_or_else(|| Invalid::new(name, format!("`{s}` does not exist in {}", tz.name())))
}

/// `t` as a `datetime-local` value in `tz`.
pub(crate) fn local_input(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

fn optional_id(name: &str, v: &Option<String>) -> Result<Option<i64>, Invalid> {
    some(v)
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| Invalid::new(name, "choose one from the list"))
        })
        .transpose()
}

fn state_name(s: SilenceState) -> &'static str {
    match s {
        SilenceState::Pending => "pending",
        SilenceState::Active => "active",
        SilenceState::Expired => "expired",
    }
}

/// A refused form comes back with what was typed and the reason; other errors are error pages.
fn refusal(e: StoreError) -> Result<String, WebError> {
    match e {
        StoreError::Invalid(e) => Ok(format!("{}: {}", e.field, e.message)),
        e => Err(e.into()),
    }
}

async fn names(state: &AppState) -> WebResult<std::collections::HashMap<i64, String>> {
    Ok(state
        .store
        .services()
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect())
}

// ---- silences ----

struct SilenceRow {
    id: i64,
    state: &'static str,
    matchers: Vec<String>,
    service: String,
    starts: String,
    ends: String,
    comment: String,
    created_by: String,
}

#[derive(Debug, Default, Deserialize)]
struct SilenceForm {
    /// One matcher a line, e.g. `alertname="DiskFull"`.
    matchers: Option<String>,
    service_id: Option<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    comment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct SilenceQuery {
    state: Option<String>,
}

#[derive(Template)]
#[template(path = "silences.html")]
struct SilencesPage {
    chrome: Chrome,
    rows: Vec<SilenceRow>,
    filter: String,
    services: Vec<Opt>,
    error: Option<String>,
    matchers: String,
    service_id: String,
    starts_at: String,
    ends_at: String,
    comment: String,
}

async fn silences_page(
    state: &AppState,
    who: &WebSession,
    filter: Option<String>,
    form: SilenceForm,
    error: Option<String>,
) -> WebResult<Response> {
    let chrome = Chrome::new(who, "alerts", "Silences").live("alerts");
    let wanted = match filter.as_deref() {
        None => None,
        Some(s) => Some(SilenceState::parse(s).ok_or_else(|| {
            WebError::from(Invalid::new(
                "state",
                format!("`{s}` is not one of: active, pending, expired"),
            ))
        })?),
    };
    let now = state.now();
    let services = names(state).await?;
    let rows = state
        .store
        .silences(wanted, now)
        .await?
        .into_iter()
        .map(|s: Silence| SilenceRow {
            id: s.id,
            state: state_name(s.state),
            matchers: s.matchers.iter().map(|m| m.to_string()).collect(),
            service: s
                .service_id
                .map(|id| services.get(&id).cloned().unwrap_or_else(|| id.to_string()))
                .unwrap_or_else(|| "every service".into()),
            starts: chrome.time(&s.starts_at),
            ends: chrome.time(&s.ends_at),
            comment: s.comment,
            created_by: s.created_by_name,
        })
        .collect();
    let failed = error.is_some();
    let body = SilencesPage {
        rows,
        filter: filter.unwrap_or_default(),
        services: super::service_opts(state).await?,
        error,
        matchers: form.matchers.unwrap_or_default(),
        service_id: form.service_id.unwrap_or_default(),
        starts_at: form.starts_at.unwrap_or_default(),
        ends_at: form
            .ends_at
            .unwrap_or_else(|| local_input(chrome.tz, now + chrono::Duration::hours(2))),
        comment: form.comment.unwrap_or_default(),
        chrome,
    };
    let mut resp = page(&body);
    if failed {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

async fn silences(
    State(state): State<AppState>,
    who: AsViewer,
    Query(q): Query<SilenceQuery>,
) -> WebResult<Response> {
    silences_page(&state, &who.0, some(&q.state), SilenceForm::default(), None).await
}

/// The API's request from the form: matchers one a line, times in the user's zone.
fn silence_request(tz: Tz, f: &SilenceForm) -> Result<SilenceRequest, Invalid> {
    let matchers = f
        .matchers
        .as_deref()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Value::String(l.to_string()))
        .collect();
    Ok(SilenceRequest {
        matchers,
        service_id: optional_id("service_id", &f.service_id)?,
        starts_at: local_time(tz, "starts_at", &f.starts_at)?,
        ends_at: local_time(tz, "ends_at", &f.ends_at)?
            .ok_or_else(|| Invalid::new("ends_at", "is required: when the silence ends"))?,
        comment: f.comment.clone().unwrap_or_default(),
    })
}

async fn create_silence(
    State(state): State<AppState>,
    who: AsResponder,
    CsrfForm(f): CsrfForm<SilenceForm>,
) -> WebResult<Response> {
    let tz = Chrome::new(&who.0, "alerts", "").tz;
    let now = state.now();
    let new = match silence_request(tz, &f).and_then(|r| r.into_new(now)) {
        Ok(n) => n,
        Err(e) => {
            let msg = format!("{}: {}", e.field, e.message);
            return silences_page(&state, &who.0, None, f, Some(msg)).await;
        }
    };
    match state.store.create_silence(&new, &who.actor(), now).await {
        Ok(s) => Ok(see_other(format!("/alerts/silences#silence-{}", s.id))),
        Err(e) => {
            let msg = refusal(e)?;
            silences_page(&state, &who.0, None, f, Some(msg)).await
        }
    }
}

async fn expire_silence(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    api::expire(&state, path_id("id", &id)?, &who.actor()).await?;
    Ok(see_other("/alerts/silences"))
}

/// A form with nothing but its token.
#[derive(Debug, Deserialize)]
struct Empty {}

// ---- maintenance windows ----

struct WindowRow {
    id: i64,
    description: String,
    services: String,
    schedule: String,
    active: bool,
    active_until: Option<String>,
    next_start: Option<String>,
}

/// A choice that may be selected.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// What the window form sent, kept as typed.
#[derive(Debug, Default)]
struct WindowForm {
    description: String,
    service_ids: Vec<String>,
    /// `once` or `weekly`.
    kind: String,
    starts_at: String,
    ends_at: String,
    days: Vec<String>,
    start_time: String,
    duration_minutes: String,
    time_zone: String,
    until: String,
}

#[derive(Template)]
#[template(path = "maintenance.html")]
struct WindowsPage {
    chrome: Chrome,
    rows: Vec<WindowRow>,
    services: Vec<Choice>,
    days: Vec<Choice>,
    error: Option<String>,
    form: WindowForm,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn schedule_text(chrome: &Chrome, w: &MaintenanceWindow) -> String {
    let s = &w.schedule;
    match (&s.starts_at, &s.ends_at) {
        (Some(a), Some(b)) => format!("once, {} to {}", chrome.time(a), chrome.time(b)),
        _ => {
            let mut t = format!(
                "every {} at {} for {} min ({})",
                s.days.clone().unwrap_or_default().join(", "),
                s.start_time.clone().unwrap_or_default(),
                s.duration_minutes.unwrap_or_default(),
                s.time_zone.clone().unwrap_or_default(),
            );
            if let Some(u) = &s.until {
                t.push_str(&format!(", until {}", chrome.time(u)));
            }
            t
        }
    }
}

async fn windows_page(
    state: &AppState,
    who: &WebSession,
    form: WindowForm,
    error: Option<String>,
) -> WebResult<Response> {
    let chrome = Chrome::new(who, "alerts", "Maintenance windows").live("alerts");
    let services = names(state).await?;
    let rows = state
        .store
        .maintenance_windows(None, None, state.now())
        .await?
        .into_iter()
        .map(|w| WindowRow {
            id: w.id,
            schedule: schedule_text(&chrome, &w),
            services: w
                .service_ids
                .iter()
                .map(|id| services.get(id).cloned().unwrap_or_else(|| id.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
            active: w.active,
            active_until: w.active_until.as_ref().map(|t| chrome.time(t)),
            next_start: w.next_start.as_ref().map(|t| chrome.time(t)),
            description: w.description,
        })
        .collect();
    let failed = error.is_some();
    let form = WindowForm {
        kind: if form.kind.is_empty() {
            "once".into()
        } else {
            form.kind
        },
        time_zone: if form.time_zone.is_empty() {
            chrome.tz_name().into()
        } else {
            form.time_zone
        },
        ..form
    };
    let body = WindowsPage {
        rows,
        services: super::service_opts(state)
            .await?
            .into_iter()
            .map(|o| Choice {
                selected: form.service_ids.contains(&o.value),
                value: o.value,
                label: o.label,
            })
            .collect(),
        days: DAYS
            .iter()
            .map(|d| Choice {
                value: d.to_string(),
                label: d.to_string(),
                selected: form.days.iter().any(|x| x == d),
            })
            .collect(),
        error,
        form,
        chrome,
    };
    let mut resp = page(&body);
    if failed {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

async fn windows(State(state): State<AppState>, who: AsViewer) -> WebResult<Response> {
    windows_page(&state, &who.0, WindowForm::default(), None).await
}

fn window_form(pairs: &[(String, String)]) -> WindowForm {
    let one = |k: &str| field(pairs, k).unwrap_or("").trim().to_string();
    let many = |k: &str| {
        fields(pairs, k)
            .into_iter()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    };
    WindowForm {
        description: one("description"),
        service_ids: many("service_id"),
        kind: one("kind"),
        starts_at: one("starts_at"),
        ends_at: one("ends_at"),
        days: many("days"),
        start_time: one("start_time"),
        duration_minutes: one("duration_minutes"),
        time_zone: one("time_zone"),
        until: one("until"),
    }
}

/// The API's request from the form: only the chosen kind's fields, times in the user's zone.
fn window_request(tz: Tz, f: &WindowForm) -> Result<WindowRequest, Invalid> {
    let service_ids = f
        .service_ids
        .iter()
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| Invalid::new("service_ids", "choose services from the list"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let text = |s: &String| (!s.is_empty()).then(|| s.clone());
    let mut r = WindowRequest {
        service_ids,
        description: f.description.clone(),
        starts_at: None,
        ends_at: None,
        days: None,
        start_time: None,
        duration_minutes: None,
        time_zone: None,
        until: None,
    };
    if f.kind == "weekly" {
        r.days = (!f.days.is_empty()).then(|| f.days.clone());
        r.start_time = text(&f.start_time);
        r.duration_minutes = text(&f.duration_minutes)
            .map(|d| {
                d.parse::<i64>().map_err(|_| {
                    Invalid::new("duration_minutes", format!("`{d}` is not a whole number"))
                })
            })
            .transpose()?;
        r.time_zone = text(&f.time_zone);
        r.until = local_time(tz, "until", &text(&f.until))?;
        // Weekly needs its parts; name the first one missing rather than "not one-off".
        if r.days.is_none() {
            return Err(Invalid::new("days", "choose at least one day"));
        }
    } else {
        r.starts_at = local_time(tz, "starts_at", &text(&f.starts_at))?;
        r.ends_at = local_time(tz, "ends_at", &text(&f.ends_at))?;
    }
    Ok(r)
}

async fn create_window(
    State(state): State<AppState>,
    who: AsAdmin,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let tz = Chrome::new(&who.0, "alerts", "").tz;
    let f = window_form(&pairs);
    let new = match window_request(tz, &f).and_then(WindowRequest::into_new) {
        Ok(n) => n,
        Err(e) => {
            let msg = format!("{}: {}", e.field, e.message);
            return windows_page(&state, &who.0, f, Some(msg)).await;
        }
    };
    match state
        .store
        .create_maintenance_window(&new, &who.actor(), state.now())
        .await
    {
        Ok(w) => Ok(see_other(format!("/alerts/maintenance#window-{}", w.id))),
        Err(e) => {
            let msg = refusal(e)?;
            windows_page(&state, &who.0, f, Some(msg)).await
        }
    }
}

async fn delete_window(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult<Response> {
    api::delete(&state, path_id("id", &id)?, &who.actor()).await?;
    Ok(see_other("/alerts/maintenance"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_are_in_the_users_zone() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let t = local_time(tz, "ends_at", &Some("2026-07-01T12:00".into()))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-07-01T10:00:00+00:00");
        assert_eq!(local_time(tz, "ends_at", &Some(" ".into())).unwrap(), None);
        let e = local_time(tz, "ends_at", &Some("tomorrow".into())).unwrap_err();
        assert_eq!(e.field, "ends_at");
        assert_eq!(local_input(tz, t), "2026-07-01T12:00");
    }
}
