//! A status page's subscribers, for admins only: their addresses are personal
//! data. Readers subscribe themselves on the public page (double opt-in);
//! here an admin adds email subscribers (confirmed, when they opted in
//! elsewhere) and webhooks, whose signing secret is shown once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::model::EmailAddress;
use tocsin_core::status_page::records::{Subscriber, SubscriberKind};
use tocsin_core::Invalid;
use tocsin_store::status::NewSubscriber;
use tocsin_store::Actor;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::status_pages::{no_repeats, web_url};
use super::{opt_i64, path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AsAdmin};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_status_subscribers, add_status_subscriber))
        .routes(routes!(delete_status_subscriber))
}

/// A subscriber to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubscriberRequest {
    /// `email` or `webhook`.
    pub(crate) kind: SubscriberKind,
    /// An email address, or an absolute http(s) URL for a webhook.
    pub(crate) address: String,
    /// Components followed (default: every one).
    #[serde(default)]
    pub(crate) component_ids: Vec<i64>,
    /// Email only: add as confirmed (they opted in elsewhere) instead of
    /// sending a confirmation (default false). Webhooks are always confirmed.
    pub(crate) confirmed: Option<bool>,
}

/// A subscriber just added; a webhook's `secret` is in this response only.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewSubscriberResponse {
    /// The subscriber.
    #[serde(flatten)]
    subscriber: Subscriber,
    /// Webhook only: the secret its `Tocsin-Signature` header is checked
    /// with. Store it now: it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl SubscriberRequest {
    fn parse(self) -> Result<NewSubscriber, Invalid> {
        let (address, confirmed) = match self.kind {
            SubscriberKind::Email => (
                EmailAddress::parse("address", &self.address)?
                    .as_str()
                    .to_string(),
                self.confirmed.unwrap_or(false),
            ),
            SubscriberKind::Webhook => {
                if self.confirmed.is_some() {
                    return Err(Invalid::new(
                        "confirmed",
                        "only an email subscriber confirms; a webhook is confirmed when added",
                    ));
                }
                (web_url("address", &self.address)?, true)
            }
        };
        Ok(NewSubscriber {
            kind: self.kind,
            address,
            component_ids: self.component_ids,
            confirmed,
        })
    }
}

/// Which subscribers to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SubscriberQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// A page of a status page's subscribers, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct SubscriberPage {
    /// The subscribers.
    items: Vec<Subscriber>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// A status page's subscribers, oldest first, a page at a time (webhook
/// secrets are never shown here).
#[utoipa::path(get, path = "/api/v1/status-pages/{id}/subscribers", tag = "status pages",
    params(("id" = i64, Path), SubscriberQuery),
    responses((status = 200, body = SubscriberPage), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn list_status_subscribers(
    State(state): State<AppState>,
    _c: AsAdmin,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SubscriberQuery>,
) -> ApiResult<Json<SubscriberPage>> {
    let limit = opt_i64("limit", q.limit.as_deref())?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Invalid {
            field: "limit".into(),
            message: "must be between 1 and 1000".into(),
        });
    }
    let after = opt_i64("cursor", q.cursor.as_deref())?;
    let mut items = state
        .store
        .subscribers(path_id("id", &id)?, after, limit + 1)
        .await?;
    let next_cursor = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        items.last().map(|s| s.id.to_string()).unwrap_or_default()
    });
    Ok(Json(SubscriberPage { items, next_cursor }))
}

/// Add a subscriber: an email address (sent a confirmation unless `confirmed`)
/// or a webhook, whose signing `secret` is in this response only. The same
/// address twice on a page is 409 naming `address`.
#[utoipa::path(post, path = "/api/v1/status-pages/{id}/subscribers", tag = "status pages",
    params(("id" = i64, Path)), request_body = SubscriberRequest,
    responses((status = 201, body = NewSubscriberResponse), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn add_status_subscriber(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<SubscriberRequest>,
) -> ApiResult<(StatusCode, Json<NewSubscriberResponse>)> {
    let page_id = path_id("id", &id)?;
    let (subscriber, secret) = add_subscriber(&state, &c.actor(), page_id, r).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewSubscriberResponse { subscriber, secret }),
    ))
}

/// Remove a subscriber, with whatever was still to be sent to it.
#[utoipa::path(delete, path = "/api/v1/status-subscribers/{id}", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_status_subscriber(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_subscriber(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks and adds a subscriber, with a webhook's secret (the API's and the
/// web form's one way in).
pub(crate) async fn add_subscriber(
    state: &AppState,
    actor: &Actor,
    page_id: i64,
    r: SubscriberRequest,
) -> ApiResult<(Subscriber, Option<String>)> {
    no_repeats("component_ids", "", &r.component_ids)?;
    let new = r.parse()?;
    Ok(state
        .store
        .add_subscriber(page_id, &new, actor, state.now())
        .await?)
}
