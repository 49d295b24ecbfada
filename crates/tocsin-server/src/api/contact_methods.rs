//! A user's contact methods and personal notification rules: each user manages
//! their own (any role), admins anyone's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tocsin_core::auth::Role;
use tocsin_core::escalation::{
    contact_label, ContactAddress, ContactKind, NotificationRule, WorkingHoursParts,
};
use tocsin_store::{ContactMethodChanges, NotificationSetup, StoredContactMethod};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_methods, create_method))
        .routes(routes!(update_method, delete_method))
        .routes(routes!(get_rules, set_rules))
}

/// A new contact method.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewContactMethod {
    /// How it reaches the user.
    kind: ContactKind,
    /// Email address; phone number in international form (`+15551234567`; spaces,
    /// dashes and parentheses are dropped); push device token; chat handle; or
    /// http(s) URL for a webhook.
    address: String,
    /// What to call it; defaults by kind, e.g. `Work email`.
    label: Option<String>,
}

/// Changes to a contact method; its kind never changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactMethodPatch {
    /// New address, of the method's kind.
    address: Option<String>,
    /// New label.
    label: Option<String>,
}

/// A user's notification rules and working hours, replaced whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotificationSetupRequest {
    /// The rules, in order: each says which of the user's contact methods to
    /// use how many minutes after they are notified, for one urgency.
    rules: Vec<NotificationRule>,
    /// When the user works; low-urgency notifications wait for these. Null or
    /// left out: any time.
    #[serde(default)]
    working_hours: Option<WorkingHoursParts>,
}

/// The user in the path, which must exist and be the caller unless the caller is an admin.
async fn whose(state: &AppState, c: &AsViewer, id: &str) -> ApiResult<i64> {
    let user_id = path_id("id", id)?;
    // Every viewer may list users, so a 404 before the 403 tells nothing new.
    state.store.user(user_id).await?;
    if user_id != c.user_id() && c.role() != Role::Admin {
        return Err(ApiError::NotAllowed(
            "only admins may see or change another user's contact methods and notification rules"
                .into(),
        ));
    }
    Ok(user_id)
}

/// A user's contact methods, oldest first: your own, or anyone's for admins.
#[utoipa::path(get, path = "/api/v1/users/{id}/contact-methods", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<StoredContactMethod>), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_methods(
    State(state): State<AppState>,
    c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<StoredContactMethod>>> {
    let user_id = whose(&state, &c, &id).await?;
    Ok(Json(state.store.contact_methods(user_id).await?))
}

/// Add a contact method: your own, or anyone's for admins. It is usable at once
/// (verification codes come with notification delivery).
#[utoipa::path(post, path = "/api/v1/users/{id}/contact-methods", tag = "users", params(("id" = i64, Path)),
    request_body = NewContactMethod,
    responses((status = 201, body = StoredContactMethod), (status = 400, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn create_method(
    State(state): State<AppState>,
    c: AsViewer,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<NewContactMethod>,
) -> ApiResult<(StatusCode, Json<StoredContactMethod>)> {
    let user_id = whose(&state, &c, &id).await?;
    let address = ContactAddress::parse(r.kind, "address", &r.address)?;
    let label = contact_label("label", r.kind, r.label.as_deref())?;
    let created = state
        .store
        .create_contact_method(user_id, &address, &label, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Change a contact method's address or label: your own, or anyone's for admins.
#[utoipa::path(patch, path = "/api/v1/users/{id}/contact-methods/{method_id}", tag = "users",
    params(("id" = i64, Path), ("method_id" = i64, Path)), request_body = ContactMethodPatch,
    responses((status = 200, body = StoredContactMethod), (status = 400, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn update_method(
    State(state): State<AppState>,
    c: AsViewer,
    Path((id, method_id)): Path<(String, String)>,
    ApiJson(r): ApiJson<ContactMethodPatch>,
) -> ApiResult<Json<StoredContactMethod>> {
    let user_id = whose(&state, &c, &id).await?;
    let method_id = path_id("method_id", &method_id)?;
    // The kind never changes, so the stored one says how to read the address.
    let kind = state.store.contact_method(user_id, method_id).await?.kind;
    let changes = ContactMethodChanges {
        address: r
            .address
            .map(|a| ContactAddress::parse(kind, "address", &a))
            .transpose()?,
        label: r
            .label
            .map(|l| contact_label("label", kind, Some(&l)))
            .transpose()?,
    };
    Ok(Json(
        state
            .store
            .update_contact_method(user_id, method_id, &changes, &c.actor(), state.now())
            .await?,
    ))
}

/// Delete a contact method that no notification rule uses: your own, or anyone's for admins.
#[utoipa::path(delete, path = "/api/v1/users/{id}/contact-methods/{method_id}", tag = "users",
    params(("id" = i64, Path), ("method_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn delete_method(
    State(state): State<AppState>,
    c: AsViewer,
    Path((id, method_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let user_id = whose(&state, &c, &id).await?;
    let method_id = path_id("method_id", &method_id)?;
    state
        .store
        .delete_contact_method(user_id, method_id, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's notification rules and working hours: your own, or anyone's for admins.
#[utoipa::path(get, path = "/api/v1/users/{id}/notification-rules", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = NotificationSetup), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_rules(
    State(state): State<AppState>,
    c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<NotificationSetup>> {
    let user_id = whose(&state, &c, &id).await?;
    Ok(Json(state.store.notification_setup(user_id).await?))
}

/// Replace a user's notification rules and working hours: your own, or anyone's for admins.
#[utoipa::path(put, path = "/api/v1/users/{id}/notification-rules", tag = "users", params(("id" = i64, Path)),
    request_body = NotificationSetupRequest,
    responses((status = 200, body = NotificationSetup), (status = 400, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn set_rules(
    State(state): State<AppState>,
    c: AsViewer,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<NotificationSetupRequest>,
) -> ApiResult<Json<NotificationSetup>> {
    let user_id = whose(&state, &c, &id).await?;
    let hours = r
        .working_hours
        .as_ref()
        .map(|h| h.parse("working_hours."))
        .transpose()?;
    Ok(Json(
        state
            .store
            .set_notification_setup(user_id, &r.rules, hours.as_ref(), &c.actor(), state.now())
            .await?,
    ))
}
