//! What every page shares: the page chrome (who is signed in, their form
//! token, the navigation), errors as HTML pages, and formatting helpers.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tocsin_core::auth::Role;
use tocsin_store::{StoreError, WebSession};

use crate::error::ApiError;

use super::assets;

/// The frame around every signed-in page.
pub(crate) struct Chrome {
    /// The signed-in user's id.
    pub user_id: i64,
    /// Their name.
    pub user_name: String,
    /// Their role, as a word.
    pub role: &'static str,
    /// May they act on incidents (responder or admin)?
    pub can_respond: bool,
    /// Are they an admin?
    pub is_admin: bool,
    /// The token every form posts back as `_csrf`.
    pub csrf: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    /// The page title (before " · Tocsin").
    pub title: String,
    /// The user's time zone, for every time shown.
    pub tz: Tz,
    /// What the live script listens for: `incidents`, `incident:<id>`, `alerts`, or empty.
    pub live: String,
    /// `?v=` of the stylesheet and script, so they can be cached for good.
    pub css_v: &'static str,
    /// See `css_v`.
    pub js_v: &'static str,
}

impl Chrome {
    /// The chrome of a page `title` under navigation entry `nav`.
    pub fn new(s: &WebSession, nav: &'static str, title: impl Into<String>) -> Chrome {
        let role = s.principal.role;
        Chrome {
            user_id: s.principal.user.id,
            user_name: s.principal.user.name.clone(),
            role: role.as_str(),
            can_respond: role.allows(Role::Responder),
            is_admin: role.allows(Role::Admin),
            csrf: s.csrf.clone(),
            nav,
            title: title.into(),
            tz: s.principal.user.time_zone.parse().unwrap_or(Tz::UTC),
            live: String::new(),
            css_v: assets::css_version(),
            js_v: assets::js_version(),
        }
    }

    /// The same chrome, with live updates for `scope`.
    pub fn live(mut self, scope: impl Into<String>) -> Chrome {
        self.live = scope.into();
        self
    }

    /// `t` in the user's zone, `2026-11-24 14:05`.
    pub fn time(&self, t: &DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    /// Optional time, or an em dash.
    pub fn time_opt(&self, t: &Option<DateTime<Utc>>) -> String {
        t.as_ref()
            .map(|t| self.time(t))
            .unwrap_or_else(|| "—".into())
    }

    /// The zone's IANA name, e.g. `Europe/Berlin`.
    pub fn tz_name(&self) -> &'static str {
        self.tz.name()
    }
}

/// Short elapsed time: `45s`, `12m`, `3h 05m`, `2d 4h`.
pub(crate) fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let s = (to - from).num_seconds().max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// CSS class of a severity by its rank among the configured ones (0 the worst),
/// so colours follow the configuration, not the names.
pub(crate) fn severity_class(
    settings: &tocsin_core::settings::IncidentSettings,
    sev: &str,
) -> String {
    let rank = settings
        .severities
        .iter()
        .position(|s| s.name == sev)
        .unwrap_or(4)
        .min(4);
    format!("sev sev-{rank}")
}

/// A rendered template as a response; a template that fails to render is a 500.
pub(crate) fn page<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template failed").into_response()
        }
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub(crate) enum WebError {
    /// Not signed in: off to the sign-in page, back to `next` afterwards.
    SignIn(String),
    /// Signed in, but the role is not enough.
    Forbidden {
        needed: &'static str,
        have: &'static str,
    },
    /// The form's CSRF token is missing or wrong.
    Csrf,
    /// Anything the API would refuse, shown the same way.
    Api(ApiError),
}

/// Result of a page handler.
pub(crate) type WebResult<T = Response> = Result<T, WebError>;

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Api(e)
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError::Api(e.into())
    }
}

impl From<tocsin_core::Invalid> for WebError {
    fn from(e: tocsin_core::Invalid) -> Self {
        WebError::Api(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    reason: String,
    code: &'static str,
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            WebError::SignIn(next) => {
                let to = format!(
                    "/login?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                return Redirect::to(&to).into_response();
            }
            WebError::Forbidden { needed, have } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("This needs the {needed} role; you are a {have}."),
            ),
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "csrf",
                "The form was not sent from this site's page, or the page is too old. \
                 Go back, reload the page and try again."
                    .to_string(),
            ),
            WebError::Api(e) => {
                let (status, code, field) = e.parts();
                if let ApiError::Internal(detail) = &e {
                    tracing::error!(%detail, "page failed");
                }
                let msg = match field {
                    Some(f) if !e.to_string().contains(&f) => format!("{f}: {e}"),
                    _ => e.to_string(),
                };
                (status, code, msg)
            }
        };
        let body = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error").to_string(),
            code,
            message,
        };
        let mut resp = page(&body);
        *resp.status_mut() = status;
        resp
    }
}

/// A refused field, shown like the API's 400.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> WebError {
    WebError::Api(ApiError::Invalid {
        field: field.into(),
        message: message.into(),
    })
}

/// 303 to `to` after a form post (post/redirect/get).
pub(crate) fn see_other(to: impl AsRef<str>) -> Response {
    Redirect::to(to.as_ref()).into_response()
}

/// Who is on call now on one schedule.
pub(crate) struct OnCallNow {
    /// The schedule.
    pub schedule_id: i64,
    /// Its name.
    pub schedule_name: String,
    /// Who, if anyone.
    pub user_name: Option<String>,
    /// Until when.
    pub until: Option<DateTime<Utc>>,
}

/// Who is on call at `at` on every schedule, by schedule name.
pub(crate) async fn on_call_now(
    state: &crate::state::AppState,
    at: DateTime<Utc>,
) -> Result<Vec<OnCallNow>, WebError> {
    let names: std::collections::HashMap<i64, String> = state
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let mut out = Vec::new();
    for s in state.store.schedules().await? {
        let (shifts, _) = crate::api::schedules::shifts_of(
            state,
            &s,
            at - chrono::Duration::days(1),
            at + chrono::Duration::days(14),
        )
        .await?;
        let shift = shifts.iter().find(|x| x.starts_at <= at && at < x.ends_at);
        out.push(OnCallNow {
            schedule_id: s.id,
            schedule_name: s.name.clone(),
            user_name: shift.and_then(|x| names.get(&x.user_id).cloned()),
            until: shift.map(|x| x.ends_at),
        });
    }
    out.sort_by(|a, b| a.schedule_name.cmp(&b.schedule_name));
    Ok(out)
}
