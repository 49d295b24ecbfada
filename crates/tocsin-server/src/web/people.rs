//! People: who is here (users, their roles and time zones) and the teams they
//! form; admins add users and teams, change roles, deactivate, and manage team
//! members. Each action makes the same store call, after the same checks, as
//! the REST API's `/api/v1/users` and `/api/v1/teams`.
//!
//! Your own account (profile, contact methods, notification rules, tokens,
//! calendar feed) is in `people/profile.rs`.

mod profile;

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tocsin_core::auth::Role;
use tocsin_core::model::{long_text, required_text, Team, User};
use tocsin_core::Invalid;
use tocsin_store::WebSession;

use super::common::{page, see_other, Chrome, WebError, WebResult};
use super::session::{AsAdmin, AsViewer, CsrfForm};
use crate::api::directory::{self, UserPatch, MAX_DESCRIPTION, MAX_NAME};
use crate::api::path_id;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/people", get(list))
        .route("/people/users", post(create_user))
        .route("/people/users/{id}", get(user_page).post(update_user))
        .route("/people/teams", post(create_team))
        .route("/people/teams/{id}", get(team_page))
        .route("/people/teams/{id}/members", post(add_member))
        .route("/people/teams/{id}/members/remove", post(remove_member))
        .merge(profile::routes())
}

/// A refusal to show on the form's own page: its status and a message naming
/// the field. A failure (the store is down) stays an error page.
pub(super) fn refusal(e: impl Into<WebError>) -> Result<(StatusCode, String), WebError> {
    match e.into() {
        WebError::Api(e) if !matches!(e, ApiError::Internal(_)) => {
            let (status, _, field) = e.parts();
            let text = e.to_string();
            let msg = match field {
                Some(f) if !text.contains(&f) => format!("{f}: {text}"),
                _ => text,
            };
            Ok((status, msg))
        }
        other => Err(other),
    }
}

/// A page's response with the refusal's status, if any.
pub(super) fn with_status(resp: Response, error: &Option<(StatusCode, String)>) -> Response {
    let mut resp = resp;
    if let Some((status, _)) = error {
        *resp.status_mut() = *status;
    }
    resp
}

/// A time zone as the API takes it, and one chrono-tz knows (so times show in it).
pub(super) fn checked_zone(tz: &str) -> Result<String, Invalid> {
    let tz = directory::time_zone(tz.trim())?;
    tz.parse::<chrono_tz::Tz>()
        .map_err(|_| Invalid::new("time_zone", format!("`{tz}` is not an IANA time zone name")))?;
    Ok(tz)
}

/// Common IANA zones offered as suggestions; any IANA name is accepted.
pub(super) const ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Amsterdam",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Helsinki",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Perth",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/St_Johns",
    "America/Halifax",
    "America/New_York",
    "America/Toronto",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Mexico_City",
    "America/Bogota",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
];

/// A user as the pages show them.
pub(super) struct UserRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub active: bool,
    pub time_zone: String,
    pub has_password: bool,
    pub created: String,
}

fn user_row(chrome: &Chrome, u: &User) -> UserRow {
    UserRow {
        id: u.id,
        name: u.name.clone(),
        email: u.email.clone(),
        role: u.role.as_str(),
        active: u.active,
        time_zone: u.time_zone.clone(),
        has_password: u.has_password,
        created: chrome.time(&u.created_at),
    }
}

struct Member {
    id: i64,
    name: String,
    active: bool,
}

struct TeamRow {
    id: i64,
    name: String,
    description: String,
    members: Vec<Member>,
    created: String,
}

fn team_row(chrome: &Chrome, t: &Team, users: &HashMap<i64, &User>) -> TeamRow {
    let mut members: Vec<Member> = t
        .member_ids
        .iter()
        .map(|id| match users.get(id) {
            Some(u) => Member {
                id: *id,
                name: u.name.clone(),
                active: u.active,
            },
            None => Member {
                id: *id,
                name: format!("user {id}"),
                active: false,
            },
        })
        .collect();
    members.sort_by_key(|m| m.name.to_lowercase());
    TeamRow {
        id: t.id,
        name: t.name.clone(),
        description: t.description.clone(),
        members,
        created: chrome.time(&t.created_at),
    }
}

/// What the create-user and create-team forms post (kept to re-fill a refused form).
#[derive(Debug, Default, Deserialize)]
struct NewUserForm {
    name: Option<String>,
    email: Option<String>,
    role: Option<String>,
    time_zone: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct NewTeamForm {
    name: Option<String>,
    description: Option<String>,
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    chrome: Chrome,
    users: Vec<UserRow>,
    teams: Vec<TeamRow>,
    roles: Vec<&'static str>,
    zones: &'static [&'static str],
    error: Option<String>,
    /// Which form the error belongs to: `user` or `team`.
    error_for: &'static str,
    new_user: NewUserForm,
    new_team: NewTeamForm,
}

async fn list(State(state): State<AppState>, who: AsViewer) -> WebResult {
    people_page(
        &state,
        &who.0,
        None,
        "",
        NewUserForm::default(),
        NewTeamForm::default(),
    )
    .await
}

async fn people_page(
    state: &AppState,
    s: &WebSession,
    error: Option<(StatusCode, String)>,
    error_for: &'static str,
    new_user: NewUserForm,
    new_team: NewTeamForm,
) -> WebResult {
    let chrome = Chrome::new(s, "people", "People");
    let mut all = state.store.users().await?;
    all.sort_by_key(|u| (!u.active, u.name.to_lowercase()));
    let by_id: HashMap<i64, &User> = all.iter().map(|u| (u.id, u)).collect();
    let mut teams: Vec<TeamRow> = state
        .store
        .teams()
        .await?
        .iter()
        .map(|t| team_row(&chrome, t, &by_id))
        .collect();
    teams.sort_by_key(|t| t.name.to_lowercase());
    let users = all.iter().map(|u| user_row(&chrome, u)).collect();
    let body = PeoplePage {
        users,
        teams,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        zones: ZONES,
        error: error.as_ref().map(|(_, m)| m.clone()),
        error_for,
        new_user,
        new_team,
        chrome,
    };
    Ok(with_status(page(&body), &error))
}

fn role_of(field: &str, s: Option<&str>) -> Result<Option<Role>, Invalid> {
    s.map(|r| {
        Role::parse(r).ok_or_else(|| Invalid::new(field, "must be viewer, responder or admin"))
    })
    .transpose()
}

/// Adds a user with a sign-in password, as `POST /api/v1/users` does.
async fn create_user(
    State(state): State<AppState>,
    who: AsAdmin,
    CsrfForm(f): CsrfForm<NewUserForm>,
) -> WebResult {
    let checked = (|| {
        let role = role_of("role", f.role.as_deref())?.unwrap_or(Role::Viewer);
        let tz = checked_zone(f.time_zone.as_deref().unwrap_or("UTC"))?;
        let password = f
            .password
            .as_deref()
            .ok_or_else(|| Invalid::new("password", "is needed to sign in"))?;
        directory::new_user(
            f.name.as_deref().unwrap_or(""),
            f.email.as_deref().unwrap_or(""),
            role,
            Some(&tz),
            Some(password),
        )
    })();
    let done = match checked {
        Ok(new) => state
            .store
            .create_user(&new, &who.actor(), state.now())
            .await
            .map_err(WebError::from),
        Err(e) => Err(e.into()),
    };
    match done {
        Ok(u) => Ok(see_other(format!("/people/users/{}", u.id))),
        Err(e) => {
            let err = refusal(e)?;
            let f = NewUserForm {
                password: None,
                ..f
            };
            people_page(&state, &who.0, Some(err), "user", f, NewTeamForm::default()).await
        }
    }
}

/// Adds a team, as `POST /api/v1/teams` does.
async fn create_team(
    State(state): State<AppState>,
    who: AsAdmin,
    CsrfForm(f): CsrfForm<NewTeamForm>,
) -> WebResult {
    let checked = (|| {
        Ok::<_, Invalid>((
            required_text("name", f.name.as_deref().unwrap_or(""), MAX_NAME)?,
            long_text(
                "description",
                f.description.as_deref().unwrap_or(""),
                MAX_DESCRIPTION,
            )?,
        ))
    })();
    let done = match checked {
        Ok((name, description)) => state
            .store
            .create_team(&name, &description, &who.actor(), state.now())
            .await
            .map_err(WebError::from),
        Err(e) => Err(e.into()),
    };
    match done {
        Ok(t) => Ok(see_other(format!("/people/teams/{}", t.id))),
        Err(e) => {
            let err = refusal(e)?;
            people_page(&state, &who.0, Some(err), "team", NewUserForm::default(), f).await
        }
    }
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    chrome: Chrome,
    user: UserRow,
    teams: Vec<(i64, String)>,
    roles: Vec<&'static str>,
    error: Option<String>,
    is_me: bool,
}

async fn user_page(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult {
    show_user(&state, &who.0, path_id("id", &id)?, None).await
}

async fn show_user(
    state: &AppState,
    s: &WebSession,
    id: i64,
    error: Option<(StatusCode, String)>,
) -> WebResult {
    let u = state.store.user(id).await?;
    let chrome = Chrome::new(s, "people", u.name.clone());
    let mut teams: Vec<(i64, String)> = state
        .store
        .teams()
        .await?
        .into_iter()
        .filter(|t| t.member_ids.contains(&id))
        .map(|t| (t.id, t.name))
        .collect();
    teams.sort_by_key(|t| t.1.to_lowercase());
    let body = UserPage {
        user: user_row(&chrome, &u),
        is_me: id == s.principal.user.id,
        teams,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        error: error.as_ref().map(|(_, m)| m.clone()),
        chrome,
    };
    Ok(with_status(page(&body), &error))
}

/// An admin's change to a user: role, or active (`1` reactivates, `0` deactivates).
#[derive(Debug, Default, Deserialize)]
struct UserForm {
    role: Option<String>,
    active: Option<String>,
}

/// Changes a user's role or deactivates them, as `PATCH /api/v1/users/{id}`
/// does; deactivating someone a schedule or policy names is refused (409),
/// and a deactivated user's sessions end.
async fn update_user(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<UserForm>,
) -> WebResult {
    let id = path_id("id", &id)?;
    state.store.user(id).await?;
    let checked = (|| {
        let active = match f.active.as_deref() {
            None => None,
            Some("1") => Some(true),
            Some("0") => Some(false),
            Some(_) => return Err(Invalid::new("active", "must be 1 or 0")),
        };
        UserPatch {
            role: role_of("role", f.role.as_deref())?,
            active,
            ..Default::default()
        }
        .into_changes()
    })();
    let done = match checked {
        Ok(changes) => match state
            .store
            .update_user(id, &changes, &who.actor(), state.now())
            .await
        {
            Ok(_) if directory::ends_sessions(&changes) => {
                state.store.end_user_sessions(id).await.map_err(Into::into)
            }
            Ok(_) => Ok(()),
            Err(e) => Err(WebError::from(e)),
        },
        Err(e) => Err(e.into()),
    };
    match done {
        Ok(()) => Ok(see_other(format!("/people/users/{id}"))),
        Err(e) => {
            let err = refusal(e)?;
            show_user(&state, &who.0, id, Some(err)).await
        }
    }
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    chrome: Chrome,
    team: TeamRow,
    /// Active users not yet in the team, for the add form.
    others: Vec<(i64, String)>,
    error: Option<String>,
}

async fn team_page(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult {
    show_team(&state, &who.0, path_id("id", &id)?, None).await
}

async fn show_team(
    state: &AppState,
    s: &WebSession,
    id: i64,
    error: Option<(StatusCode, String)>,
) -> WebResult {
    let t = state.store.team(id).await?;
    let users = state.store.users().await?;
    let chrome = Chrome::new(s, "people", t.name.clone());
    let by_id: HashMap<i64, &User> = users.iter().map(|u| (u.id, u)).collect();
    let mut others: Vec<(i64, String)> = users
        .iter()
        .filter(|u| u.active && !t.member_ids.contains(&u.id))
        .map(|u| (u.id, u.name.clone()))
        .collect();
    others.sort_by_key(|o| o.1.to_lowercase());
    let body = TeamPage {
        team: team_row(&chrome, &t, &by_id),
        others,
        error: error.as_ref().map(|(_, m)| m.clone()),
        chrome,
    };
    Ok(with_status(page(&body), &error))
}

#[derive(Debug, Deserialize)]
struct MemberForm {
    user_id: Option<String>,
}

async fn set_member(
    state: &AppState,
    who: &AsAdmin,
    id: &str,
    f: MemberForm,
    add: bool,
) -> WebResult {
    let id = path_id("id", id)?;
    state.store.team(id).await?;
    let done = match path_id("user_id", f.user_id.as_deref().unwrap_or("")) {
        Ok(user) => state
            .store
            .set_team_member(id, user, add, &who.actor(), state.now())
            .await
            .map(|_| ())
            .map_err(WebError::from),
        Err(e) => Err(e.into()),
    };
    match done {
        Ok(()) => Ok(see_other(format!("/people/teams/{id}"))),
        Err(e) => {
            let err = refusal(e)?;
            show_team(state, &who.0, id, Some(err)).await
        }
    }
}

/// Adds a member, as `PUT /api/v1/teams/{id}/members/{user_id}` does.
async fn add_member(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<MemberForm>,
) -> WebResult {
    set_member(&state, &who, &id, f, true).await
}

/// Removes a member, as `DELETE /api/v1/teams/{id}/members/{user_id}` does.
async fn remove_member(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<MemberForm>,
) -> WebResult {
    set_member(&state, &who, &id, f, false).await
}
