//! Acknowledge and resolve from the message: `/actions/{token}`, where the signed,
//! expiring, single-use token in the URL is the only credential (a phone's mail
//! app sends no bearer token), and the API that mints such links.
//!
//! GET shows a confirmation page and never acts: mail scanners and chat link
//! previews fetch every link in a message. POST acts. Both answer HTML, or JSON
//! to a client that sends `Accept: application/json`.

use axum::extract::{Path, State};
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tocsin_core::action_link::{LinkAction, LinkRefused, DEFAULT_LIFETIME};
use tocsin_core::auth::Role;
use tocsin_core::model::Incident;
use tocsin_core::time::{from_millis, Timestamp};
use tocsin_notify::escape::html as esc;
use tocsin_store::{ActionLinkError, ActionLinkOutcome, ActionLinkPreview, StoreError};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::incidents::incident_id;
use crate::api::snippets::base_url;
use crate::api::ErrorResponse;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AsResponder};
use crate::state::AppState;

/// Longest lifetime a minted link may ask for: a week.
const MAX_TTL_MINUTES: i64 = 7 * 24 * 60;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(confirm, act))
        .routes(routes!(mint))
}

/// What to mint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewActionLink {
    /// `acknowledge` or `resolve`.
    action: LinkAction,
    /// The user the link acts as; default the caller. Another user's needs admin.
    user_id: Option<i64>,
    /// How long the link works, 1 to 10080 minutes; default 1440 (24 hours).
    ttl_minutes: Option<i64>,
}

/// A minted link.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MintedActionLink {
    /// The link to put in a message.
    url: String,
    /// What it does.
    action: LinkAction,
    /// The incident it acts on.
    incident_id: i64,
    /// The user it acts as.
    user_id: i64,
    /// When it stops working.
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// Mint an acknowledge or resolve link for a message: it works once, without a
/// login, until it expires. For yourself; for another user (an active
/// responder) with an admin token.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/action-links", tag = "incidents", request_body = NewActionLink,
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 201, body = MintedActionLink), (status = 400, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn mint(
    State(state): State<AppState>,
    caller: AsResponder,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewActionLink>,
) -> ApiResult<(StatusCode, Json<MintedActionLink>)> {
    let id = incident_id(&id)?;
    let user_id = req.user_id.unwrap_or(caller.user_id());
    if user_id != caller.user_id() && caller.role() != Role::Admin {
        return Err(ApiError::NotAllowed(
            "a link that acts as another user needs an admin token".into(),
        ));
    }
    let ttl = match req.ttl_minutes {
        None => DEFAULT_LIFETIME,
        Some(m) if (1..=MAX_TTL_MINUTES).contains(&m) => Duration::minutes(m),
        Some(m) => {
            return Err(ApiError::Invalid {
                field: "ttl_minutes".into(),
                message: format!("`{m}` is not between 1 and {MAX_TTL_MINUTES} minutes"),
            })
        }
    };
    let now = state.now();
    let token = state
        .store
        .action_link(id, req.action, user_id, now, ttl)
        .await?;
    let url = format!("{}/actions/{token}", base_url(&state, &headers));
    Ok((
        StatusCode::CREATED,
        Json(MintedActionLink {
            url,
            action: req.action,
            incident_id: id,
            user_id,
            expires_at: from_millis((now.timestamp() + ttl.num_seconds()) * 1000),
        }),
    ))
}

/// The confirmation page of an acknowledge or resolve link: the incident, the
/// action and a button that POSTs. It does not act (mail scanners and link
/// previews fetch links). The signed token in the URL is the credential: no
/// bearer token. `Accept: application/json` gets JSON.
#[utoipa::path(get, path = "/actions/{token}", tag = "incidents",
    params(("token" = String, Path, description = "The link's signed token")),
    responses((status = 200, content_type = "text/html", body = String, description = "The confirmation page"),
        (status = 400, body = ErrorResponse, description = "Malformed or forged"),
        (status = 403, body = ErrorResponse, description = "The user was deactivated"),
        (status = 409, body = ErrorResponse, description = "Already used"),
        (status = 410, body = ErrorResponse, description = "Expired")))]
async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let json = wants_json(&headers);
    match state.store.action_link_preview(&token, state.now()).await {
        Ok(p) if json => no_store(
            StatusCode::OK,
            Json(json!({
                "incident": p.incident, "action": p.action,
                "user": { "id": p.user_id, "name": p.user_name }, "expires_at": p.expires_at,
            })),
        ),
        Ok(p) => html(StatusCode::OK, &confirm_page(&p)),
        Err(e) => refusal(e, json),
    }
}

/// Do what an acknowledge or resolve link says, once: acknowledge moves a
/// triggered incident to acknowledged (one already past triggered is left as
/// it is), resolve resolves it; the escalation stops as when done through the
/// API. The signed token in the URL is the credential: no bearer token.
#[utoipa::path(post, path = "/actions/{token}", tag = "incidents",
    params(("token" = String, Path, description = "The link's signed token")),
    responses((status = 200, content_type = "text/html", body = String, description = "What happened"),
        (status = 400, body = ErrorResponse, description = "Malformed or forged"),
        (status = 403, body = ErrorResponse, description = "The user was deactivated"),
        (status = 409, body = ErrorResponse, description = "Already used"),
        (status = 410, body = ErrorResponse, description = "Expired")))]
async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let json = wants_json(&headers);
    match state
        .store
        .use_action_link(&state.settings, &token, state.now())
        .await
    {
        Ok(o) if json => no_store(
            StatusCode::OK,
            Json(json!({
                "incident": o.incident, "action": o.action, "changed": o.changed,
                "user": { "id": o.user_id, "name": o.user_name }, "at": o.at,
            })),
        ),
        Ok(o) => html(StatusCode::OK, &done_page(&o)),
        Err(e) => refusal(e, json),
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// Status, code and message of a refused link.
fn refused(e: &ActionLinkError) -> (StatusCode, &'static str) {
    match e {
        ActionLinkError::Refused(LinkRefused::Malformed) => {
            (StatusCode::BAD_REQUEST, "malformed_link")
        }
        ActionLinkError::Refused(LinkRefused::BadSignature) => {
            (StatusCode::BAD_REQUEST, "invalid_link")
        }
        ActionLinkError::Refused(LinkRefused::Expired) => (StatusCode::GONE, "link_expired"),
        ActionLinkError::Used { .. } => (StatusCode::CONFLICT, "link_used"),
        ActionLinkError::UserInactive => (StatusCode::FORBIDDEN, "user_inactive"),
        ActionLinkError::NotResponder => (StatusCode::FORBIDDEN, "not_allowed"),
        ActionLinkError::Store(StoreError::NotFound { .. }) => (StatusCode::NOT_FOUND, "not_found"),
        ActionLinkError::Store(StoreError::Transition(_)) => {
            (StatusCode::CONFLICT, "transition_not_allowed")
        }
        ActionLinkError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn refusal(e: ActionLinkError, json: bool) -> Response {
    let (status, code) = refused(&e);
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(detail = %e, "action link failed");
        "internal error".to_string()
    } else {
        e.to_string()
    };
    if json {
        return no_store(
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        );
    }
    let heading = match status {
        StatusCode::GONE => "This link has expired",
        StatusCode::CONFLICT => "This link was already used",
        StatusCode::FORBIDDEN => "This link no longer works",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "This link is not valid",
        _ => "Something went wrong",
    };
    let body = format!(
        "<h1>{}</h1><p>{}.</p><p class=\"muted\">Open the incident in Tocsin to act on it.</p>",
        esc(heading),
        esc(&capitalized(&message))
    );
    html(status, &page(heading, &body))
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `"INC-42 — Title"` for headings, escaped.
fn named(i: &Incident) -> String {
    format!("{} — {}", esc(&i.number), esc(&i.title))
}

fn when(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn verb(a: LinkAction) -> &'static str {
    match a {
        LinkAction::Acknowledge => "Acknowledge",
        LinkAction::Resolve => "Resolve",
    }
}

fn confirm_page(p: &ActionLinkPreview) -> String {
    let already = if p.action.already_done(p.incident.status) {
        format!(
            "<p class=\"note\">It is already {}; confirming changes nothing.</p>",
            esc(p.incident.status.as_str())
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>{verb} {number}?</h1>\
         <p class=\"title\">{named}</p>\
         <p>Status: <strong>{status}</strong> · Severity: {severity}</p>{already}\
         <form method=\"post\"><button type=\"submit\">{verb} as {user}</button></form>\
         <p class=\"muted\">This link works once, until {expires}.</p>",
        verb = verb(p.action),
        number = esc(&p.incident.number),
        named = named(&p.incident),
        status = esc(p.incident.status.as_str()),
        severity = esc(&p.incident.severity),
        user = esc(&p.user_name),
        expires = when(p.expires_at),
    );
    page(&format!("{} {}", verb(p.action), p.incident.number), &body)
}

fn done_page(o: &ActionLinkOutcome) -> String {
    let said = if o.changed {
        format!(
            "{} {} by {} at {}.",
            esc(&o.incident.number),
            o.action.done_word(),
            esc(&o.user_name),
            when(o.at)
        )
    } else {
        format!(
            "{} was already {}; nothing changed.",
            esc(&o.incident.number),
            esc(o.incident.status.as_str())
        )
    };
    let body = format!(
        "<h1>{said}</h1><p class=\"title\">{}</p><p>Status: <strong>{}</strong></p>",
        named(&o.incident),
        esc(o.incident.status.as_str())
    );
    page(
        &format!("{} {}", o.incident.number, o.incident.status.as_str()),
        &body,
    )
}

/// A small page that reads well on a phone; `body` is already escaped.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{} · Tocsin</title><style>\
         body{{font-family:system-ui,sans-serif;margin:0;padding:1.5rem;line-height:1.4;color:#111}}\
         main{{max-width:32rem;margin:auto}}h1{{font-size:1.4rem}}.title{{font-size:1.1rem;word-wrap:break-word}}\
         .muted{{color:#666;font-size:.9rem}}.note{{background:#fff4d6;padding:.5rem}}\
         button{{font-size:1.1rem;padding:.8rem 1.2rem;width:100%;border:0;border-radius:.4rem;background:#b3261e;color:#fff}}\
         </style></head><body><main>{body}</main></body></html>\n",
        esc(title)
    )
}

const SECURITY_HEADERS: [(HeaderName, &str); 3] = [
    (CACHE_CONTROL, "no-store"),
    // The token is in the URL: never send it on as a referrer.
    (HeaderName::from_static("referrer-policy"), "no-referrer"),
    (
        HeaderName::from_static("content-security-policy"),
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    ),
];

fn html(status: StatusCode, body: &str) -> Response {
    let mut r = (
        status,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    for (k, v) in SECURITY_HEADERS {
        r.headers_mut()
            .insert(k, axum::http::HeaderValue::from_static(v));
    }
    r
}

fn no_store(status: StatusCode, body: impl IntoResponse) -> Response {
    let mut r = (status, body).into_response();
    for (k, v) in SECURITY_HEADERS {
        r.headers_mut()
            .insert(k, axum::http::HeaderValue::from_static(v));
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
