//! Postmortems: the list (search, status), one postmortem (its text rendered,
//! review with reviewers, action items, the incidents' alert timeline as an
//! SVG chart, and the edit form carrying the revision it started from), the
//! Markdown and print exports, and creating one from the incident room. The
//! same store calls as /api/v1/postmortems. A stale save merges or, on an
//! overlap, comes back with the current text shown and the typed text kept.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tocsin_core::analytics::svg;
use tocsin_core::postmortem::tracker::Tracker;
use tocsin_core::postmortem::{
    parse_due_date, ActionPriority, ActionStatus, ReviewStatus, REVIEW_TRANSITIONS,
};
use tocsin_store::postmortems::action_items::{ActionItem, ActionItemFields};
use tocsin_store::postmortems::{PostmortemRecord, SaveOutcome};
use tocsin_store::{StoreError, WebSession};

use super::common::{page, see_other, Chrome, WebError, WebResult};
use super::session::{field, AsResponder, AsViewer, CsrfPairs};
use crate::api::incidents::incident_id;
use crate::api::path_id;
use crate::state::AppState;
use crate::ApiError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/postmortems", get(list))
        .route("/postmortems/{id}", get(detail).post(save))
        .route("/postmortems/{id}/review", post(review))
        .route("/postmortems/{id}/action-items", post(add_item))
        .route(
            "/postmortems/{id}/action-items/{item_id}",
            post(change_item),
        )
        .route(
            "/postmortems/{id}/action-items/{item_id}/issue",
            post(create_issue),
        )
        .route("/postmortems/{id}/print", get(print))
        .route("/postmortems/{id}/export.md", get(export))
        .route("/incidents/{number}/postmortem", post(create))
}

struct Row {
    id: i64,
    title: String,
    status: &'static str,
    incidents: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "postmortems.html")]
struct ListPage {
    chrome: Chrome,
    q: String,
    status: String,
    statuses: Vec<&'static str>,
    rows: Vec<Row>,
    overdue: Vec<ItemRow>,
}

fn status_word(s: &str) -> &'static str {
    ReviewStatus::parse("status", s).map_or("unknown", |s| match s {
        ReviewStatus::Draft => "draft",
        ReviewStatus::InReview => "in review",
        ReviewStatus::Published => "published",
    })
}

/// An action item as shown.
pub(crate) struct ItemRow {
    pub id: i64,
    pub postmortem_id: i64,
    pub title: String,
    pub owner: String,
    pub due: String,
    pub priority: String,
    pub status: String,
    pub overdue: bool,
    pub url: String,
    /// What the link reads: the issue's key when created from here.
    pub url_label: String,
    /// The issue being created or its failure, one line; empty otherwise.
    pub tracker_note: String,
    /// Whether an issue may be created for it from here.
    pub can_create_issue: bool,
}

fn tracker_label(t: Option<&str>) -> &'static str {
    match t.and_then(|t| Tracker::parse("tracker", t).ok()) {
        Some(t) => t.label(),
        None => "tracker",
    }
}

impl ItemRow {
    pub(crate) fn of(i: ActionItem) -> ItemRow {
        ItemRow {
            id: i.id,
            postmortem_id: i.postmortem_id,
            title: i.title,
            owner: i.owner_name.unwrap_or_else(|| "—".into()),
            due: i.due_date.map_or_else(|| "—".into(), |d| d.to_string()),
            priority: i.priority,
            status: i.status.replace('_', " "),
            overdue: i.overdue,
            url_label: i.tracker_key.clone().unwrap_or_else(|| "tracker".into()),
            tracker_note: match (i.tracker_status.as_deref(), i.tracker.as_deref()) {
                (Some("running"), t) => format!("creating the {} issue…", tracker_label(t)),
                (Some("failed"), t) if i.external_url.is_none() => format!(
                    "the {} issue could not be created: {}",
                    tracker_label(t),
                    i.tracker_error.as_deref().unwrap_or("unknown error")
                ),
                _ => String::new(),
            },
            can_create_issue: i.external_url.is_none()
                && i.tracker_status.as_deref() != Some("running")
                && ActionStatus::parse("status", &i.status).is_ok_and(ActionStatus::is_pending),
            url: i
                .external_url
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    status: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    who: AsViewer,
    Query(q): Query<ListQuery>,
) -> WebResult<Response> {
    let chrome = Chrome::new(&who.0, "postmortems", "Postmortems");
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| ReviewStatus::parse("status", s))
        .transpose()
        .map_err(ApiError::from)?;
    let rows = state
        .store
        .postmortems(q.q.as_deref(), status, 200)
        .await?
        .into_iter()
        .map(|p| Row {
            id: p.id,
            status: status_word(&p.status),
            incidents: p
                .incident_ids
                .iter()
                .map(|i| format!("INC-{i}"))
                .collect::<Vec<_>>()
                .join(", "),
            updated: chrome.time(&p.updated_at),
            title: p.title,
        })
        .collect();
    let overdue = state
        .store
        .action_items(None, None, true, state.now())
        .await?
        .into_iter()
        .map(ItemRow::of)
        .collect();
    Ok(page(&ListPage {
        chrome,
        q: q.q.unwrap_or_default(),
        status: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        statuses: ReviewStatus::ALL.iter().map(|s| s.as_str()).collect(),
        rows,
        overdue,
    }))
}

struct ReviewerRow {
    name: String,
    approved: String,
    is_me: bool,
}

struct Move {
    to: &'static str,
    label: &'static str,
}

struct Opt {
    value: String,
    label: String,
}

/// The edit form's state after a refused save.
struct Refused {
    message: String,
    current_html: String,
}

#[derive(Template)]
#[template(path = "postmortem.html")]
struct DetailPage {
    chrome: Chrome,
    pm: PostmortemRecord,
    status: &'static str,
    body_html: String,
    chart: String,
    incidents: Vec<(String, String)>,
    reviewers: Vec<ReviewerRow>,
    moves: Vec<Move>,
    is_reviewer: bool,
    users: Vec<Opt>,
    items: Vec<ItemRow>,
    /// Trackers items may be created in: (value, label).
    trackers: Vec<(&'static str, &'static str)>,
    priorities: Vec<&'static str>,
    /// What the textarea holds: the current text, or what was typed.
    text: String,
    /// The revision the form saves from.
    base_revision: i64,
    refused: Option<Refused>,
    notice: Option<String>,
}

/// The alerts of the postmortem's incidents over time: triggers per bin of
/// the span from the first alert (or declaration) to the last sign of life.
async fn alert_chart(state: &AppState, pm: &PostmortemRecord) -> WebResult<String> {
    let mut alerts = Vec::new();
    let mut start = None;
    let mut end = None;
    for id in &pm.incident_ids {
        let inc = state.store.incident(*id).await?;
        start = Some(
            start.map_or(inc.created_at, |s: chrono::DateTime<chrono::Utc>| {
                s.min(inc.created_at)
            }),
        );
        let last = inc.resolved_at.unwrap_or(inc.updated_at);
        end = Some(end.map_or(last, |e: chrono::DateTime<chrono::Utc>| e.max(last)));
        alerts.extend(
            state
                .store
                .alerts(None, None, Some(*id), None, None, 10_000)
                .await?,
        );
    }
    for a in &alerts {
        start = Some(start.map_or(a.first_seen, |s| s.min(a.first_seen)));
        end = Some(end.map_or(a.last_seen, |e| e.max(a.last_seen)));
    }
    let (Some(start), Some(end)) = (start, end) else {
        return Ok(svg::histogram("Alerts over time", &[], "alerts"));
    };
    // 12 bins of whole minutes covering the span.
    let span_min = ((end - start).num_seconds().max(60) + 59) / 60;
    let step = ((span_min + 11) / 12).max(1);
    let mut bins: Vec<(String, u64)> = (0..12).map(|i| (format!("+{}m", i * step), 0)).collect();
    for a in &alerts {
        let i = ((a.first_seen - start).num_minutes() / step).clamp(0, 11) as usize;
        bins[i].1 += 1;
    }
    Ok(svg::histogram("Alerts opened over time", &bins, "alerts"))
}

async fn show(
    state: &AppState,
    who: &WebSession,
    id: i64,
    posted: Option<(String, Refused)>,
    notice: Option<String>,
) -> WebResult<Response> {
    let pm = state.store.postmortem(id).await?;
    let chrome = Chrome::new(who, "postmortems", pm.title.clone());
    let from = ReviewStatus::parse("status", &pm.status).unwrap_or(ReviewStatus::Draft);
    let moves = REVIEW_TRANSITIONS
        .iter()
        .filter(|(f, _)| *f == from)
        .map(|(_, to)| Move {
            to: to.as_str(),
            label: match to {
                ReviewStatus::Draft => "Back to draft",
                ReviewStatus::InReview => "Ask for review",
                ReviewStatus::Published => "Publish",
            },
        })
        .collect();
    let me = chrome.user_id;
    let reviewers = pm
        .reviewers
        .iter()
        .map(|r| ReviewerRow {
            name: r.name.clone(),
            approved: chrome.time_opt(&r.approved_at),
            is_me: r.user_id == me,
        })
        .collect::<Vec<_>>();
    let is_reviewer = pm
        .reviewers
        .iter()
        .any(|r| r.user_id == me && r.approved_at.is_none());
    let users = state
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| u.active)
        .map(|u| Opt {
            value: u.id.to_string(),
            label: u.name,
        })
        .collect();
    let mut incidents = Vec::new();
    for i in &pm.incident_ids {
        let inc = state.store.incident(*i).await?;
        incidents.push((inc.number, inc.title));
    }
    let items = state
        .store
        .action_items(Some(id), None, false, state.now())
        .await?
        .into_iter()
        .map(ItemRow::of)
        .collect();
    let chart = alert_chart(state, &pm).await?;
    let refused_now = posted.is_some();
    let (text, refused, base_revision) = match posted {
        Some((typed, r)) => (typed, Some(r), pm.revision),
        None => (pm.body.clone(), None, pm.revision),
    };
    let mut resp = page(&DetailPage {
        status: status_word(&pm.status),
        body_html: super::markdown::render(&pm.body),
        chart,
        incidents,
        reviewers,
        moves,
        is_reviewer,
        users,
        items,
        trackers: state
            .workflows
            .trackers
            .available()
            .into_iter()
            .map(|t| (t.as_str(), t.label()))
            .collect(),
        priorities: ActionPriority::ALL.iter().map(|s| s.as_str()).collect(),
        text,
        base_revision,
        refused,
        notice,
        chrome,
        pm,
    });
    if refused_now {
        *resp.status_mut() = StatusCode::CONFLICT;
    }
    Ok(resp)
}

#[derive(Debug, Default, Deserialize)]
struct DetailQuery {
    notice: Option<String>,
}

async fn detail(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> WebResult<Response> {
    let notice = q.notice.map(|n| match n.as_str() {
        "merged" => "Saved. Edits made meanwhile were merged with yours.".to_string(),
        "saved" => "Saved.".to_string(),
        "issue" => "The issue is being created; its link appears here when it is.".to_string(),
        _ => "Done.".to_string(),
    });
    show(&state, &who.0, path_id("id", &id)?, None, notice).await
}

/// A refusal a form shows as its message; anything else is the error page.
fn refusal(e: StoreError) -> Result<String, WebError> {
    match ApiError::from(e) {
        ApiError::Invalid { field, message } => Ok(format!("{field}: {message}")),
        ApiError::Conflict { message, field, .. } => Ok(match field {
            Some(f) => format!("{f}: {message}"),
            None => message,
        }),
        e => Err(WebError::Api(e)),
    }
}

async fn save(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let body = field(&pairs, "body")
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let base: i64 = field(&pairs, "base_revision")
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| ApiError::Invalid {
            field: "base_revision".into(),
            message: "is missing".into(),
        })?;
    match state
        .store
        .save_postmortem(id, base, &body, &who.actor(), state.now())
        .await
    {
        Ok(SaveOutcome::Saved { merged, .. }) => Ok(see_other(format!(
            "/postmortems/{id}?notice={}",
            if merged { "merged" } else { "saved" }
        ))),
        Ok(SaveOutcome::Conflict {
            current,
            revision,
            ranges,
        }) => {
            let message = format!(
                "Revision {revision} was saved while you edited, and changes the same lines as you in {} place(s). \
                 Nothing was saved. Your text is below; the current text is shown beside it. \
                 Reconcile and save again.",
                ranges.len()
            );
            let refused = Refused {
                message,
                current_html: super::markdown::render(&current),
            };
            show(&state, &who.0, id, Some((body, refused)), None).await
        }
        Err(e) => {
            let message = refusal(e)?;
            let refused = Refused {
                message,
                current_html: String::new(),
            };
            show(&state, &who.0, id, Some((body, refused)), None).await
        }
    }
}

async fn review(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let (actor, now) = (who.actor(), state.now());
    let done = if let Some(to) = field(&pairs, "status") {
        let to = ReviewStatus::parse("status", to).map_err(ApiError::from)?;
        state
            .store
            .update_postmortem(id, None, Some(to), &actor, now)
            .await
    } else if let Some(user) = field(&pairs, "reviewer").filter(|u| !u.is_empty()) {
        let user = path_id("reviewer", user)?;
        state
            .store
            .add_postmortem_reviewer(id, user, &actor, now)
            .await
    } else if field(&pairs, "approve").is_some() {
        state.store.approve_postmortem(id, &actor, now).await
    } else {
        return Ok(see_other(format!("/postmortems/{id}")));
    };
    match done {
        Ok(_) => Ok(see_other(format!("/postmortems/{id}?notice=done"))),
        Err(e) => {
            let message = refusal(e)?;
            let mut resp = show(&state, &who.0, id, None, Some(message)).await?;
            *resp.status_mut() = StatusCode::CONFLICT;
            Ok(resp)
        }
    }
}

fn item_fields(pairs: &[(String, String)], create: bool) -> Result<ActionItemFields, ApiError> {
    let text = |k: &str| field(pairs, k).map(str::trim).filter(|v| !v.is_empty());
    Ok(ActionItemFields {
        title: text("title")
            .map(str::to_string)
            .or(create.then(String::new)),
        owner_id: match text("owner_id") {
            Some(o) => Some(Some(path_id("owner_id", o)?)),
            None if field(pairs, "owner_id").is_some() => Some(None),
            None => None,
        },
        due_date: match text("due_date") {
            Some(d) => Some(Some(parse_due_date("due_date", d)?)),
            None => None,
        },
        priority: text("priority")
            .map(|p| ActionPriority::parse("priority", p))
            .transpose()?,
        status: text("status")
            .map(|s| ActionStatus::parse("status", s))
            .transpose()?,
        external_url: text("external_url").map(|u| Some(u.to_string())),
        incident_id: None,
    })
}

async fn add_item(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let result = match item_fields(&pairs, true) {
        Ok(f) => state
            .store
            .create_action_item(id, f, &who.actor(), state.now())
            .await
            .map_err(refusal),
        Err(e) => Err(refusal(StoreError::Invalid(match e {
            ApiError::Invalid { field, message } => tocsin_core::Invalid::new(field, message),
            e => return Err(WebError::Api(e)),
        }))),
    };
    match result {
        Ok(_) => Ok(see_other(format!(
            "/postmortems/{id}?notice=done#action-items"
        ))),
        Err(e) => {
            let mut resp = show(&state, &who.0, id, None, Some(e?)).await?;
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
    }
}

async fn change_item(
    State(state): State<AppState>,
    who: AsResponder,
    Path((id, item_id)): Path<(String, String)>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let item_id = path_id("item_id", &item_id)?;
    let f = item_fields(&pairs, false)?;
    state
        .store
        .update_action_item(id, item_id, f, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/postmortems/{id}#action-items")))
}

async fn create_issue(
    State(state): State<AppState>,
    who: AsResponder,
    Path((id, item_id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let item_id = path_id("item_id", &item_id)?;
    let base = crate::api::snippets::base_url(&state, &headers);
    let asked = pairs
        .iter()
        .find(|(k, v)| k == "tracker" && !v.is_empty())
        .map(|(_, v)| Tracker::parse("tracker", v))
        .transpose()
        .map_err(|e| WebError::Api(e.into()))?;
    match crate::api::postmortems::start_issue(&state, &who.actor(), &base, id, item_id, asked)
        .await
    {
        Ok(_) => Ok(see_other(format!(
            "/postmortems/{id}?notice=issue#action-items"
        ))),
        Err(ApiError::Conflict { message, .. }) => {
            let mut resp = show(&state, &who.0, id, None, Some(message)).await?;
            *resp.status_mut() = StatusCode::CONFLICT;
            Ok(resp)
        }
        Err(e) => Err(WebError::Api(e)),
    }
}

async fn print(
    State(state): State<AppState>,
    _who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let pm = state.store.postmortem(path_id("id", &id)?).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        crate::api::postmortems::print_html(&pm),
    )
        .into_response())
}

async fn export(
    State(state): State<AppState>,
    _who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let pm = state.store.postmortem(path_id("id", &id)?).await?;
    Ok(crate::api::postmortems::markdown_download(pm))
}

/// From the incident room: opens its postmortem, creating it first if there is none.
async fn create(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfPairs(_pairs): CsrfPairs,
) -> WebResult<Response> {
    let incident = incident_id(&number)?;
    if let Some(pm) = state.store.postmortem_of_incident(incident).await? {
        return Ok(see_other(format!("/postmortems/{pm}")));
    }
    let pm = state
        .store
        .create_postmortem(
            &[incident],
            &state.settings,
            chrono_tz::UTC,
            &who.actor(),
            state.now(),
        )
        .await?;
    Ok(see_other(format!("/postmortems/{}", pm.id)))
}
