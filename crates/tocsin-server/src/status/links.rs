//! The links in subscriber mail: confirm (double opt-in) and unsubscribe.
//!
//! The signed token in the link is the credential, so these work without a
//! session, for internal pages too (a reader must always be able to leave).
//! GET shows a page with a button and changes nothing: mail scanners and link
//! previews fetch every link. POST acts; so does the one-click POST mail
//! clients send (`List-Unsubscribe=One-Click`, RFC 8058), which carries the
//! token in the query. No CSRF token: a forged post could only act with a
//! token the forger already holds, which they could use themselves.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::status_page::records::Subscriber;
use tocsin_core::status_page::token::LinkPurpose;
use tocsin_store::StoreError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pages::{SlugPath, TAG};
use super::render::Rendered;
use super::respond::{message_page, LinkForm, Refusal, StatusError, Want};
use crate::api::ErrorResponse;
use crate::error::ApiError;
use crate::state::AppState;

/// Longer than any token this instance signs: refused before any work.
const MAX_TOKEN: usize = 512;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(confirm_page, confirm))
        .routes(routes!(unsubscribe_page, unsubscribe))
}

/// The link's token.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TokenQuery {
    /// The signed token from the mail.
    token: Option<String>,
}

/// A subscription, as its link shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LinkedSubscription {
    /// The subscribed address.
    email: String,
    /// The page's name.
    page: String,
    /// Whether it is confirmed.
    confirmed: bool,
    /// Whether it still exists (false once unsubscribed).
    subscribed: bool,
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// The page and the subscriber a link names, if the link is genuine, current
/// and for this page. Reads nothing but the link's subscriber.
async fn linked(
    state: &AppState,
    slug: &str,
    token: Option<&str>,
    purpose: LinkPurpose,
    want: Want,
) -> Result<(Arc<Rendered>, Subscriber), Refusal> {
    let pv = state
        .status
        .by_slug(&state.store, slug)
        .await
        .ok_or_else(|| StatusError::NoPage.to(want))?;
    let r = state
        .status
        .rendered(state, &pv)
        .await
        .ok_or_else(|| StatusError::Unavailable.to(want))?;
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            StatusError::Link(
                "this link has no token; it may have been cut short when copied".into(),
            )
            .to(want)
        })?;
    if token.len() > MAX_TOKEN {
        return Err(StatusError::Link("this link is malformed".into()).to(want));
    }
    match state
        .store
        .subscriber_for_link(token, purpose, state.now())
        .await
    {
        Ok(s) if s.page_id == r.page_id => Ok((r, s)),
        Ok(_) => Err(StatusError::Link("this link is for another status page".into()).to(want)),
        Err(StoreError::Invalid(i)) => Err(StatusError::Link(i.message).to(want)),
        Err(StoreError::NotFound { .. }) => Err(StatusError::NoSubscriber.to(want)),
        Err(e) => Err(StatusError::from(e).to(want)),
    }
}

/// The token of a POST: the query's, else the form's `token` field.
fn posted_token(q: TokenQuery, body: &[u8]) -> Option<String> {
    q.token.or_else(|| {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    })
}

fn answer(r: &Rendered, s: &Subscriber, confirmed: bool, subscribed: bool) -> Response {
    Json(LinkedSubscription {
        email: s.address.clone(),
        page: r.snapshot.page.name.clone(),
        confirmed,
        subscribed,
    })
    .into_response()
}

/// A confirmation link's page: the address, the page and a button that POSTs.
/// It does not confirm by itself. `Accept: application/json` gets JSON.
#[utoipa::path(get, operation_id = "status_public_confirm_page", path = "/status/{slug}/confirm", tag = TAG, params(SlugPath, TokenQuery),
    responses((status = 200, content_type = "text/html", body = LinkedSubscription, description = "The page, or JSON"),
        (status = 400, body = ErrorResponse, description = "A forged, altered, expired or misdirected link (`token`)"),
        (status = 404, body = ErrorResponse, description = "No such page, or the subscription is gone")))]
async fn confirm_page(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let json = wants_json(&headers);
    let want = if json { Want::Document } else { Want::Page };
    let token = q.token.clone();
    let (r, s) = linked(&state, &slug, token.as_deref(), LinkPurpose::Confirm, want).await?;
    if json {
        return Ok(answer(&r, &s, s.confirmed, true));
    }
    let name = &r.snapshot.page.name;
    let (message, form) = if s.confirmed {
        (
            format!("{} already gets updates from {name}.", s.address),
            None,
        )
    } else {
        (
            format!("Send updates from {name} to {}?", s.address),
            Some(LinkForm {
                token: token.unwrap_or_default(),
                button: "Confirm subscription",
            }),
        )
    };
    Ok(message_page(
        StatusCode::OK,
        Some(name),
        "Confirm your subscription",
        &message,
        form,
    ))
}

/// Confirm a subscription (the token in the query or as the form field `token`).
#[utoipa::path(post, operation_id = "status_public_confirm", path = "/status/{slug}/confirm", tag = TAG, params(SlugPath, TokenQuery),
    responses((status = 200, content_type = "text/html", body = LinkedSubscription, description = "Confirmed: a page, or JSON"),
        (status = 400, body = ErrorResponse, description = "A forged, altered, expired or misdirected link (`token`)"),
        (status = 404, body = ErrorResponse, description = "No such page, or the subscription is gone")))]
async fn confirm(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let want = if wants_json(&headers) {
        Want::Document
    } else {
        Want::Page
    };
    let token = posted_token(q, &body);
    let (r, _) = linked(&state, &slug, token.as_deref(), LinkPurpose::Confirm, want).await?;
    let token = token.unwrap_or_default();
    let s = state
        .store
        .confirm_subscriber(&token, state.now())
        .await
        .map_err(|e| StatusError::from(e).to(want))?;
    if want == Want::Document {
        return Ok(answer(&r, &s, true, true));
    }
    let name = &r.snapshot.page.name;
    let message = format!(
        "{} will get updates from {name}. Every mail has a link to stop them.",
        s.address
    );
    Ok(message_page(
        StatusCode::OK,
        Some(name),
        "You are subscribed",
        &message,
        None,
    ))
}

/// An unsubscribe link's page: the address, the page and a button that POSTs.
#[utoipa::path(get, operation_id = "status_public_unsubscribe_page", path = "/status/{slug}/unsubscribe", tag = TAG, params(SlugPath, TokenQuery),
    responses((status = 200, content_type = "text/html", body = LinkedSubscription, description = "The page, or JSON"),
        (status = 400, body = ErrorResponse, description = "A forged, altered or misdirected link (`token`)"),
        (status = 404, body = ErrorResponse, description = "No such page, or the subscription is gone")))]
async fn unsubscribe_page(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let json = wants_json(&headers);
    let want = if json { Want::Document } else { Want::Page };
    let token = q.token.clone();
    let (r, s) = linked(
        &state,
        &slug,
        token.as_deref(),
        LinkPurpose::Unsubscribe,
        want,
    )
    .await?;
    if json {
        return Ok(answer(&r, &s, s.confirmed, true));
    }
    let name = &r.snapshot.page.name;
    let message = format!("Stop sending updates from {name} to {}?", s.address);
    let form = LinkForm {
        token: token.unwrap_or_default(),
        button: "Unsubscribe",
    };
    Ok(message_page(
        StatusCode::OK,
        Some(name),
        "Unsubscribe",
        &message,
        Some(form),
    ))
}

/// Unsubscribe: the subscriber is deleted and its links stop working. The
/// token in the query or as the form field `token`; a mail client's one-click
/// POST (`List-Unsubscribe=One-Click`, RFC 8058) works the same.
#[utoipa::path(post, operation_id = "status_public_unsubscribe", path = "/status/{slug}/unsubscribe", tag = TAG, params(SlugPath, TokenQuery),
    responses((status = 200, content_type = "text/html", body = LinkedSubscription, description = "Unsubscribed: a page, or JSON"),
        (status = 400, body = ErrorResponse, description = "A forged, altered or misdirected link (`token`)"),
        (status = 404, body = ErrorResponse, description = "No such page, or the subscription is gone")))]
async fn unsubscribe(
    State(state): State<AppState>,
    Path(SlugPath { slug }): Path<SlugPath>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let want = if wants_json(&headers) {
        Want::Document
    } else {
        Want::Page
    };
    let token = posted_token(q, &body);
    let (r, s) = linked(
        &state,
        &slug,
        token.as_deref(),
        LinkPurpose::Unsubscribe,
        want,
    )
    .await?;
    let token = token.unwrap_or_default();
    state
        .store
        .unsubscribe(&token, state.now())
        .await
        .map_err(|e| match e {
            // Gone between the check and now (another click): say so plainly.
            StoreError::NotFound { .. } => StatusError::NoSubscriber.to(want),
            e => StatusError::Api(ApiError::from(e)).to(want),
        })?;
    if want == Want::Document {
        return Ok(answer(&r, &s, s.confirmed, false));
    }
    let name = &r.snapshot.page.name;
    let message = format!("{} will get no more updates from {name}.", s.address);
    Ok(message_page(
        StatusCode::OK,
        Some(name),
        "You are unsubscribed",
        &message,
        None,
    ))
}
