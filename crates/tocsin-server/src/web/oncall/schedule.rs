//! One schedule: the calendar (week or month, in the schedule's zone), the
//! final shifts as a table, and its overrides (list, create, delete).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike, Duration, Months, NaiveDate};
use chrono_tz::Tz;
use serde::Deserialize;
use tocsin_core::schedule::{final_shifts, Schedule};
use tocsin_store::StoreError;

use super::calendar::{self, Calendar, RowData};
use crate::api::path_id;
use crate::api::schedules::shifts_of;
use crate::state::AppState;
use crate::web::common::{invalid, page, see_other, Chrome, WebResult};
use crate::web::session::{AsResponder, AsViewer, CsrfForm};

/// How far ahead the list of upcoming overrides looks.
const UPCOMING_DAYS: i64 = 90;

#[derive(Debug, Default, Deserialize)]
pub(super) struct CalQuery {
    view: Option<String>,
    start: Option<String>,
}

/// The calendar's range: view, first day, number of days, previous and next start.
struct Range {
    month: bool,
    first: NaiveDate,
    days: u32,
    prev: NaiveDate,
    next: NaiveDate,
    title: String,
}

fn range(q: &CalQuery, today: NaiveDate) -> WebResult<Range> {
    let month = match q.view.as_deref().map(str::trim) {
        None | Some("") | Some("week") => false,
        Some("month") => true,
        Some(_) => return Err(invalid("view", "must be week or month")),
    };
    let start = match q.start.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| invalid("start", "must be a date, YYYY-MM-DD"))?,
        ),
    };
    if month {
        let day = start.unwrap_or(today);
        let first_of = day.with_day(1).expect("day 1");
        let next_month = first_of + Months::new(1);
        let first = first_of - Duration::days(i64::from(first_of.weekday().num_days_from_monday()));
        let weeks = ((next_month - first).num_days() + 6) / 7;
        Ok(Range {
            month,
            first,
            days: (weeks * 7) as u32,
            prev: first_of - Months::new(1),
            next: next_month,
            title: first_of.format("%B %Y").to_string(),
        })
    } else {
        // Without a start, the week of today from Monday; a given start is kept.
        let first = start.unwrap_or_else(|| {
            today - Duration::days(i64::from(today.weekday().num_days_from_monday()))
        });
        let last = first + Duration::days(6);
        Ok(Range {
            month,
            first,
            days: 7,
            prev: first - Duration::days(7),
            next: first + Duration::days(7),
            title: format!(
                "{} – {}",
                first.format("%a %-d %b %Y"),
                last.format("%a %-d %b %Y")
            ),
        })
    }
}

struct ShiftRow {
    user: String,
    from: String,
    to: String,
    source: String,
}

struct OverrideRow {
    id: i64,
    user: String,
    from: String,
    to: String,
    by: String,
}

struct UserOpt {
    id: String,
    name: String,
}

/// What the override form holds: empty, or what was typed when it was refused.
#[derive(Debug, Default, Deserialize)]
pub(super) struct OverrideForm {
    user_id: Option<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage {
    chrome: Chrome,
    id: i64,
    name: String,
    description: String,
    time_zone: String,
    month: bool,
    title: String,
    prev: String,
    next: String,
    today: String,
    week_link: String,
    month_link: String,
    cal: Calendar,
    legend: Vec<(String, String)>,
    shifts: Vec<ShiftRow>,
    overrides: Vec<OverrideRow>,
    users: Vec<UserOpt>,
    user_id: String,
    starts_at: String,
    ends_at: String,
    error: Option<String>,
}

/// The schedule page.
pub(super) async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
    Query(q): Query<CalQuery>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    render(&state, &who.0, id, &q, OverrideForm::default(), None).await
}

async fn render(
    state: &AppState,
    session: &tocsin_store::WebSession,
    id: i64,
    q: &CalQuery,
    form: OverrideForm,
    error: Option<(StatusCode, String)>,
) -> WebResult<Response> {
    let s = state.store.schedule(id).await?;
    let parsed: Schedule = s.schedule()?;
    let tz: Tz = parsed.time_zone;
    let now = state.now();
    let chrome = Chrome::new(session, "oncall", s.name.clone());
    let r = range(q, now.with_timezone(&tz).date_naive())?;
    let days = calendar::days(tz, r.first, r.days);
    let (from, to) = (days[0].start, days[days.len() - 1].end);
    let (finals, overrides) = shifts_of(state, &s, from, to).await?;
    let users = state.store.users().await?;
    let names: HashMap<i64, String> = users.iter().map(|u| (u.id, u.name.clone())).collect();

    // Colours by first appearance in the schedule, so they stay put week to week.
    let mut colour: HashMap<i64, usize> = HashMap::new();
    let order = parsed
        .layers
        .iter()
        .flat_map(|l| l.users.iter().copied())
        .chain(overrides.iter().map(|o| o.user_id))
        .chain(finals.iter().map(|x| x.user_id));
    for u in order {
        let n = colour.len();
        colour.entry(u).or_insert(n);
    }

    let mut rows: Vec<RowData> = parsed
        .layers
        .iter()
        .map(|l| {
            let alone = Schedule {
                time_zone: tz,
                layers: vec![l.clone()],
            };
            RowData {
                label: l.name.clone(),
                final_row: false,
                bars: final_shifts(&alone, &[], from, to)
                    .iter()
                    .map(|x| (x.user_id, x.starts_at, x.ends_at))
                    .collect(),
            }
        })
        .collect();
    if !overrides.is_empty() {
        rows.push(RowData {
            label: "Overrides".into(),
            final_row: false,
            bars: overrides
                .iter()
                .map(|o| (o.user_id, o.starts_at.max(from), o.ends_at.min(to)))
                .collect(),
        });
    }
    rows.push(RowData {
        label: "Final".into(),
        final_row: true,
        bars: finals
            .iter()
            .map(|x| (x.user_id, x.starts_at, x.ends_at))
            .collect(),
    });
    let cal = calendar::layout(tz, &days, &rows, &colour, &names, now);
    let mut legend: Vec<(usize, String)> = colour
        .iter()
        .filter(|(u, _)| {
            finals.iter().any(|x| x.user_id == **u)
                || rows.iter().any(|r| r.bars.iter().any(|b| b.0 == **u))
        })
        .map(|(u, c)| {
            (
                *c,
                names.get(u).cloned().unwrap_or_else(|| format!("user {u}")),
            )
        })
        .collect();
    legend.sort();
    let who_name = |u: i64| {
        names
            .get(&u)
            .cloned()
            .unwrap_or_else(|| format!("user {u}"))
    };
    let shifts = finals
        .iter()
        .map(|x| ShiftRow {
            user: who_name(x.user_id),
            from: chrome.time(&x.starts_at),
            to: chrome.time(&x.ends_at),
            source: x
                .layer
                .and_then(|i| s.layers.get(i))
                .map(|l| format!("layer {}", l.name))
                .unwrap_or_else(|| "override".into()),
        })
        .collect();
    let upcoming = state
        .store
        .overrides(id, now, now + Duration::days(UPCOMING_DAYS))
        .await?
        .into_iter()
        .map(|o| OverrideRow {
            id: o.id,
            user: who_name(o.user_id),
            from: chrome.time(&o.starts_at),
            to: chrome.time(&o.ends_at),
            by: o
                .created_by
                .map(who_name)
                .unwrap_or_else(|| "Tocsin".into()),
        })
        .collect();
    let view = if r.month { "month" } else { "week" };
    let link = |view: &str, d: NaiveDate| {
        format!(
            "/oncall/schedules/{id}?view={view}&start={}",
            d.format("%Y-%m-%d")
        )
    };
    let (status, error) = match error {
        Some((st, e)) => (st, Some(e)),
        None => (StatusCode::OK, None),
    };
    let body = SchedulePage {
        id,
        description: s.description.clone(),
        time_zone: s.time_zone.clone(),
        month: r.month,
        title: r.title.clone(),
        prev: link(view, r.prev),
        next: link(view, r.next),
        today: format!("/oncall/schedules/{id}?view={view}"),
        week_link: link(
            "week",
            if r.month {
                r.prev + Months::new(1)
            } else {
                r.first
            },
        ),
        month_link: link("month", r.first + Duration::days(6)),
        cal,
        legend: legend
            .into_iter()
            .map(|(c, n)| (format!("swatch u{}", c % calendar::PALETTE), n))
            .collect(),
        shifts,
        overrides: upcoming,
        users: users
            .iter()
            .filter(|u| u.active)
            .map(|u| UserOpt {
                id: u.id.to_string(),
                name: u.name.clone(),
            })
            .collect(),
        user_id: form.user_id.unwrap_or_default(),
        starts_at: form.starts_at.unwrap_or_default(),
        ends_at: form.ends_at.unwrap_or_default(),
        error,
        name: s.name,
        chrome,
    };
    let mut resp = page(&body);
    *resp.status_mut() = status;
    Ok(resp)
}

/// Arranges cover from the form: times are typed in the schedule's zone. A
/// refused form comes back with what was typed and the field at fault.
pub(super) async fn create_override(
    State(state): State<AppState>,
    who: AsResponder,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<OverrideForm>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let s = state.store.schedule(id).await?;
    let tz: Tz = s.schedule()?.time_zone;
    let checked = (|| {
        let user_id = f
            .user_id
            .as_deref()
            .ok_or(("user_id", "choose who covers".to_string()))?
            .parse::<i64>()
            .map_err(|_| ("user_id", "choose one from the list".to_string()))?;
        let local = |field: &'static str, v: &Option<String>| {
            let v = v
                .as_deref()
                .ok_or((field, "enter a date and time".to_string()))?;
            calendar::parse_local(tz, v).ok_or((
                field,
                format!("not a time that exists in {}: YYYY-MM-DDTHH:MM", tz.name()),
            ))
        };
        Ok::<_, (&str, String)>((
            user_id,
            local("starts_at", &f.starts_at)?,
            local("ends_at", &f.ends_at)?,
        ))
    })();
    let refused = |field: &str, message: &str| format!("{field}: {message}");
    let q = CalQuery::default();
    let (user_id, starts_at, ends_at) = match checked {
        Ok(x) => x,
        Err((field, message)) => {
            let msg = refused(field, &message);
            return render(
                &state,
                &who.0,
                id,
                &q,
                f,
                Some((StatusCode::UNPROCESSABLE_ENTITY, msg)),
            )
            .await;
        }
    };
    match state
        .store
        .create_override(id, user_id, starts_at, ends_at, &who.actor(), state.now())
        .await
    {
        Ok(_) => Ok(see_other(format!(
            "/oncall/schedules/{id}?start={}",
            starts_at.with_timezone(&tz).format("%Y-%m-%d")
        ))),
        Err(StoreError::Invalid(e)) => {
            let msg = refused(&e.field, &e.message);
            render(
                &state,
                &who.0,
                id,
                &q,
                f,
                Some((StatusCode::UNPROCESSABLE_ENTITY, msg)),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes an override; the layers' rotation applies again.
pub(super) async fn delete_override(
    State(state): State<AppState>,
    who: AsResponder,
    Path((id, override_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> WebResult<Response> {
    let id = path_id("id", &id)?;
    let override_id = path_id("override_id", &override_id)?;
    state
        .store
        .delete_override(id, override_id, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("/oncall/schedules/{id}")))
}
