//! The one mapping from errors to HTTP: status, machine-readable code, message, field.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tocsin_core::Invalid;
use tocsin_store::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or unknown credentials.
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthenticated,
    /// An inbound source used an unknown or revoked integration key.
    #[error("unknown or revoked integration key")]
    BadIntegrationKey,
    /// An integration is over its rate limit; retry after this many seconds.
    #[error("too many events for this integration; retry after {0} s")]
    RateLimited(u64),
    /// Asked again too soon or too often (a verification code, a test notification).
    #[error("{message}")]
    TooSoon {
        /// Machine-readable code.
        code: &'static str,
        /// Explanation.
        message: String,
        /// Seconds before asking again can work; 0 sends no `Retry-After`.
        retry_after: u64,
    },
    /// Authenticated, but the role does not allow this.
    #[error("this needs the {needed} role; your token has {have}")]
    Forbidden {
        /// Role the endpoint needs.
        needed: &'static str,
        /// Role the caller has.
        have: &'static str,
    },
    /// A refusal that is not about roles (e.g. only the reporter may confirm).
    #[error("{0}")]
    NotAllowed(String),
    /// The body is not valid JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A value is missing, of the wrong type or out of range.
    #[error("{message}")]
    Invalid {
        /// Offending field.
        field: String,
        /// Explanation.
        message: String,
    },
    /// The body is larger than allowed.
    #[error("the request body is larger than the {0} byte limit")]
    TooLarge(usize),
    /// Wrong content type.
    #[error("expected Content-Type: {0}")]
    UnsupportedMediaType(&'static str),
    /// Not found.
    #[error("{0} not found")]
    NotFound(String),
    /// No such route.
    #[error("no route for {0}")]
    NoRoute(String),
    /// Conflicts with the current state.
    #[error("{message}")]
    Conflict {
        /// Machine-readable code.
        code: &'static str,
        /// Explanation.
        message: String,
        /// Field in conflict, if any.
        field: Option<String>,
    },
    /// The server failed; details are logged, not shown.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// The error object every failure carries.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Machine-readable code, e.g. `invalid_field`.
    code: &'static str,
    /// What went wrong, for people.
    message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    pub(crate) fn parts(&self) -> (StatusCode, &'static str, Option<String>) {
        use ApiError::*;
        match self {
            Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", None),
            RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", None),
            TooSoon { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code, None),
            BadIntegrationKey => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                Some("key".into()),
            ),
            Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", None),
            NotAllowed(_) => (StatusCode::FORBIDDEN, "not_allowed", None),
            MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json", None),
            Invalid { field, .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_field",
                Some(field.clone()),
            ),
            TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
            UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            NoRoute(_) => (StatusCode::NOT_FOUND, "no_route", None),
            Conflict { code, field, .. } => (StatusCode::CONFLICT, code, field.clone()),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.parts();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
                field,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        let wait = match self {
            ApiError::RateLimited(wait) => Some(wait),
            ApiError::TooSoon { retry_after, .. } if retry_after > 0 => Some(retry_after),
            _ => None,
        };
        if let Some(wait) = wait {
            if let Ok(v) = axum::http::HeaderValue::from_str(&wait.to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => ApiError::NotFound(what),
            StoreError::Invalid(i) => i.into(),
            StoreError::Transition(t) => ApiError::Conflict {
                code: "transition_not_allowed",
                message: t.to_string(),
                field: Some("status".into()),
            },
            StoreError::Confirm(c @ tocsin_core::change::ConfirmRefused::NotReporter) => {
                ApiError::NotAllowed(c.to_string())
            }
            StoreError::Confirm(c) => ApiError::Conflict {
                code: "closure_not_requested",
                message: c.to_string(),
                field: None,
            },
            StoreError::Conflict { field, message } => ApiError::Conflict {
                code: "conflict",
                message,
                field: Some(field),
            },
            StoreError::TooSoon {
                code,
                message,
                retry_after_secs,
            } => ApiError::TooSoon {
                code,
                message,
                retry_after: retry_after_secs,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
