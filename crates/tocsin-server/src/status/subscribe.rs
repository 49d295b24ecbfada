//! Subscribing to a page by email, from its form or as JSON. The answer is the
//! same whether the address is new, waiting for its confirmation or already
//! subscribed, so the form tells nobody who reads the page.
//!
//! The form has no session to tie a CSRF token to, so it uses a double-submit
//! token, like the sign-in form: a random cookie the form repeats, which a
//! page on another site can neither read nor set. JSON needs none: a browser
//! sends `Content-Type: application/json` across sites only after a CORS
//! preflight, which these routes never allow.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::model::EmailAddress;
use tocsin_core::Invalid;
use tocsin_store::StoreError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::limit::ClientAddr;
use super::pages::{readable, Readable, SlugPath, TAG};
use super::render::Rendered;
use super::respond::{html, Frame, Refusal, StatusError, Want};
use crate::api::ErrorResponse;
use crate::error::ApiError;
use crate::state::AppState;

const CSRF_COOKIE: &str = "tocsin_status_csrf";

/// What every accepted request is told, whatever the address's state.
const SENT: &str = "Thanks. If this address is not subscribed yet, we have sent it a link \
    to confirm; nothing else is sent until that link is followed.";

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(form, submit))
}

/// A subscription request (JSON; the form sends the same as fields).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubscribeRequest {
    /// The address to send updates to.
    email: String,
    /// Only these components; empty or absent: all of them.
    #[serde(default)]
    component_ids: Vec<i64>,
}

/// The answer to every accepted request.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscribeAnswer {
    /// What happens next.
    message: &'static str,
}

struct Choice {
    id: i64,
    name: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "status_subscribe.html")]
struct SubscribePage<'a> {
    frame: Frame,
    name: &'a str,
    csrf: String,
    email: String,
    error: Option<String>,
    done: Option<&'static str>,
    components: Vec<Choice>,
}

/// What the form showed and what to say about it.
#[derive(Default)]
struct Filled {
    email: String,
    component_ids: Vec<i64>,
    error: Option<String>,
    done: bool,
}

async fn subscribable(
    state: &AppState,
    headers: &HeaderMap,
    slug: &str,
    want: Want,
    path: &str,
) -> Result<Readable, Refusal> {
    let r = readable(state, headers, slug, want, path).await?;
    if !r.allow_subscribers {
        return Err(StatusError::NoSubscriptions.to(want));
    }
    Ok(r)
}

/// The subscription form: an email address and, optionally, components.
#[utoipa::path(get, operation_id = "status_public_form", path = "/status/{slug}/subscribe", tag = TAG, params(SlugPath),
    responses((status = 200, content_type = "text/html", body = String, description = "The form"),
        (status = 404, content_type = "text/html", body = String, description = "No such page (or an internal one, to a reader not signed in), or it takes no subscriptions")),
    security((), ("token" = [])))]
async fn form(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let r = subscribable(&state, &headers, &slug, Want::Page, uri.path()).await?;
    Ok(form_page(
        &state,
        &headers,
        &r,
        Filled::default(),
        StatusCode::OK,
    ))
}

/// Subscribe by email: a form post (`email`, `component_ids`, `_csrf`) or JSON.
/// The address gets a confirmation link (double opt-in); the answer is the
/// same for new, pending and confirmed addresses. A malformed address is 400
/// naming `email`. Limited to a few requests a minute per client address.
#[utoipa::path(post, operation_id = "status_public_submit", path = "/status/{slug}/subscribe", tag = TAG, params(SlugPath),
    request_body(content = SubscribeRequest, description = "JSON, or the same as form fields"),
    responses((status = 200, content_type = "text/html", body = String, description = "Form: what happens next"),
        (status = 202, body = SubscribeAnswer, description = "JSON: what happens next"),
        (status = 400, body = ErrorResponse, description = "A malformed address (`email`) or component"),
        (status = 403, content_type = "text/html", body = String, description = "The form's token is missing or wrong"),
        (status = 404, body = ErrorResponse, description = "No such page, or it takes no subscriptions"),
        (status = 429, body = ErrorResponse, description = "Too many requests from this address")),
    security((), ("token" = [])))]
async fn submit(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    ClientAddr(client): ClientAddr,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let kind = content_type(&headers);
    let want = if kind == "application/json" {
        Want::Document
    } else {
        Want::Page
    };
    let r = subscribable(&state, &headers, &slug, want, uri.path()).await?;
    let now = state.now();
    if let Some(ip) = client {
        state.status_subscribe_limit.take(ip, now).map_err(|wait| {
            StatusError::Api(ApiError::TooSoon {
                code: "rate_limited",
                message: format!("too many subscription requests; try again in {wait} s"),
                retry_after: wait,
            })
            .to(want)
        })?;
    }
    let filled = match kind.as_str() {
        "application/json" => {
            let req: SubscribeRequest =
                crate::extract::parse_json(&body).map_err(|e| StatusError::Api(e).to(want))?;
            Filled {
                email: req.email,
                component_ids: req.component_ids,
                ..Filled::default()
            }
        }
        "application/x-www-form-urlencoded" => match read_form(&body, &headers) {
            Ok(filled) => filled,
            Err((refused, status)) => return Ok(form_page(&state, &headers, &r, refused, status)),
        },
        _ => {
            let e = ApiError::UnsupportedMediaType(
                "application/json or application/x-www-form-urlencoded",
            );
            return Err(StatusError::Api(e).to(want));
        }
    };
    let outcome = match EmailAddress::parse("email", &filled.email) {
        Ok(email) => {
            state
                .store
                .subscribe_email(r.page_id, &email, &filled.component_ids, now)
                .await
        }
        Err(invalid) => Err(StoreError::Invalid(invalid)),
    };
    match (outcome, want) {
        // Every outcome (sent, sent moments ago, already subscribed) reads the same.
        (Ok(_), Want::Document) => Ok((
            StatusCode::ACCEPTED,
            Json(SubscribeAnswer { message: SENT }),
        )
            .into_response()),
        (Ok(_), Want::Page) => {
            let done = Filled {
                done: true,
                ..filled
            };
            Ok(form_page(&state, &headers, &r, done, StatusCode::OK))
        }
        (Err(StoreError::Invalid(i)), Want::Page) => {
            let error = Some(invalid_text(&i));
            Ok(form_page(
                &state,
                &headers,
                &r,
                Filled { error, ..filled },
                StatusCode::BAD_REQUEST,
            ))
        }
        // Subscriptions were turned off since the page was rendered.
        (Err(StoreError::Conflict { .. }), _) => Err(StatusError::NoSubscriptions.to(want)),
        (Err(e), _) => Err(StatusError::from(e).to(want)),
    }
}

/// The form's fields, or, when its token does not match its cookie or a
/// component is not a number, the form to show again and its status.
fn read_form(body: &[u8], headers: &HeaderMap) -> Result<Filled, (Filled, StatusCode)> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let field = |k: &'static str| pairs.iter().filter(move |(n, _)| n == k).map(|(_, v)| v);
    let mut filled = Filled {
        email: field("email").next().cloned().unwrap_or_default(),
        ..Filled::default()
    };
    let expected = crate::web::cookie(headers, CSRF_COOKIE).unwrap_or("");
    let sent = field("_csrf").next().map(String::as_str).unwrap_or("");
    if expected.is_empty() || !crate::web::same_secret(sent, expected) {
        filled.error = Some("The form had expired. Please try again.".into());
        return Err((filled, StatusCode::FORBIDDEN));
    }
    for v in field("component_ids") {
        match v.parse() {
            Ok(id) => filled.component_ids.push(id),
            Err(_) => {
                filled.error = Some(format!("Components: `{v}` is not a component."));
                return Err((filled, StatusCode::BAD_REQUEST));
            }
        }
    }
    Ok(filled)
}

/// A refused field for people: `Email address: "x" is not an email address.`
fn invalid_text(i: &Invalid) -> String {
    let label = if i.field == "email" {
        "Email address"
    } else {
        "Components"
    };
    format!("{label}: {}.", i.message)
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The form (or, `done`, its answer). The form token is the browser's cookie
/// when it has one, so two open tabs both work; else a new one.
fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    r: &Rendered,
    filled: Filled,
    status: StatusCode,
) -> Response {
    let csrf = crate::web::cookie(headers, CSRF_COOKIE)
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_string)
        .unwrap_or_else(|| tocsin_store::random_token(32));
    let name = &r.snapshot.page.name;
    let group = |id: Option<i64>| {
        r.snapshot
            .groups
            .iter()
            .find(|g| Some(g.id) == id)
            .map(|g| format!("{} – ", g.name))
            .unwrap_or_default()
    };
    let components = r
        .snapshot
        .visible_components()
        .map(|c| Choice {
            id: c.id,
            name: format!("{}{}", group(c.group_id), c.name),
            checked: filled.component_ids.contains(&c.id),
        })
        .collect();
    let page = SubscribePage {
        frame: Frame::new("Subscribe", Some(name)),
        name,
        csrf: csrf.clone(),
        email: filled.email,
        error: filled.error,
        done: filled.done.then_some(SENT),
        components,
    };
    let mut resp = html(status, page.render());
    let secure = state
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Lax; Max-Age=86400{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
    resp
}
