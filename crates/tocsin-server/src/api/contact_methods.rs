//! A user's contact methods and personal notification rules: each user manages
//! their own (any role), admins anyone's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::auth::Role;
use tocsin_core::escalation::{
    contact_label, ContactAddress, ContactKind, NotificationRule, WorkingHoursParts,
};
use tocsin_store::{
    ContactMethodChanges, NotificationSetup, StoredContactMethod, VerificationCode,
};
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
        .routes(routes!(send_code))
        .routes(routes!(verify_method))
        .routes(routes!(test_method))
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
    /// Admins provisioning a method may store it verified; otherwise it is
    /// unverified until the user types the code sent to it.
    #[serde(default)]
    verified: Option<bool>,
}

/// Changes to a contact method; its kind never changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactMethodPatch {
    /// New address, of the method's kind.
    address: Option<String>,
    /// New label.
    label: Option<String>,
    /// Admins only: mark the method verified or not. A new address is
    /// unverified unless this says `true`.
    #[serde(default)]
    verified: Option<bool>,
}

/// A verification code as the user typed it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyRequest {
    /// The 6-digit code sent to the contact method.
    code: String,
}

/// A notification queued for delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuedNotification {
    /// The notification request (outbox row) id.
    notification_request_id: i64,
    /// Its idempotency key: delivery sends each key once.
    idempotency_key: String,
    /// When the code stops working (verification codes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

// Only admins provision verified methods: anyone else proves the address with a code.
fn may_set_verified(c: &AsViewer, verified: Option<bool>) -> ApiResult<()> {
    if verified == Some(true) && c.role() != Role::Admin {
        return Err(ApiError::NotAllowed(
            "only admins may mark a contact method verified; ask for a verification code instead"
                .into(),
        ));
    }
    Ok(())
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

/// Add a contact method: your own, or anyone's for admins. It is unverified, and
/// never paged, until the code sent to it is entered (admins may create it verified).
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
    may_set_verified(&c, r.verified)?;
    let address = ContactAddress::parse(r.kind, "address", &r.address)?;
    let label = contact_label("label", r.kind, r.label.as_deref())?;
    let verified = r.verified.unwrap_or(false);
    let created = state
        .store
        .create_contact_method(user_id, &address, &label, verified, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Change a contact method's address or label: your own, or anyone's for admins.
/// A new address is unverified again (unless an admin sets `verified`).
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
    may_set_verified(&c, r.verified)?;
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
        verified: r.verified,
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

/// Send a verification code to a contact method: your own, or anyone's for admins.
/// The 6-digit code works for 15 minutes and 5 tries; one code a minute (429
/// `verification_too_soon` with `Retry-After`); a verified method: 409.
#[utoipa::path(post, path = "/api/v1/users/{id}/contact-methods/{method_id}/verification", tag = "users",
    params(("id" = i64, Path), ("method_id" = i64, Path)),
    responses((status = 202, body = QueuedNotification), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
        (status = 429, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn send_code(
    State(state): State<AppState>,
    c: AsViewer,
    Path((id, method_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<QueuedNotification>)> {
    let user_id = whose(&state, &c, &id).await?;
    let method_id = path_id("method_id", &method_id)?;
    let sent = state
        .store
        .send_verification_code(user_id, method_id, &c.actor(), state.now())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(QueuedNotification {
            notification_request_id: sent.request.id,
            idempotency_key: sent.request.idempotency_key,
            expires_at: Some(sent.expires_at),
        }),
    ))
}

/// Verify a contact method with the code sent to it: your own, or anyone's for
/// admins. Wrong or expired: 400 naming `code`; after 5 wrong codes: 429
/// `verification_attempts_exhausted` until a new code is sent.
#[utoipa::path(post, path = "/api/v1/users/{id}/contact-methods/{method_id}/verify", tag = "users",
    params(("id" = i64, Path), ("method_id" = i64, Path)), request_body = VerifyRequest,
    responses((status = 200, body = StoredContactMethod), (status = 400, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 429, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn verify_method(
    State(state): State<AppState>,
    c: AsViewer,
    Path((id, method_id)): Path<(String, String)>,
    ApiJson(r): ApiJson<VerifyRequest>,
) -> ApiResult<Json<StoredContactMethod>> {
    let user_id = whose(&state, &c, &id).await?;
    let method_id = path_id("method_id", &method_id)?;
    let code = VerificationCode::parse("code", &r.code)?;
    Ok(Json(
        state
            .store
            .verify_contact_method(user_id, method_id, &code, &c.actor(), state.now())
            .await?,
    ))
}

/// Send a test notification to a verified contact method: your own, or anyone's
/// for admins. Unverified: 400 naming `method_id`; one a minute (429 `test_too_soon`).
#[utoipa::path(post, path = "/api/v1/users/{id}/contact-methods/{method_id}/test", tag = "users",
    params(("id" = i64, Path), ("method_id" = i64, Path)),
    responses((status = 202, body = QueuedNotification), (status = 400, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 429, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn test_method(
    State(state): State<AppState>,
    c: AsViewer,
    Path((id, method_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<QueuedNotification>)> {
    let user_id = whose(&state, &c, &id).await?;
    let method_id = path_id("method_id", &method_id)?;
    let request = state
        .store
        .send_test_notification(user_id, method_id, &c.actor(), state.now())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(QueuedNotification {
            notification_request_id: request.id,
            idempotency_key: request.idempotency_key,
            expires_at: None,
        }),
    ))
}
