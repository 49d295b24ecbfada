//! Request extractors: who is calling (and may they), and typed JSON bodies with
//! errors that name the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tocsin_core::auth::Role;
use tocsin_store::{Actor, AuthPrincipal};

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller, whose role is at least `R`.
pub struct Caller<const R: u8>(pub AuthPrincipal);

/// Any authenticated caller.
pub type AsViewer = Caller<0>;
/// A responder or admin.
pub type AsResponder = Caller<1>;
/// An admin.
pub type AsAdmin = Caller<2>;

const fn role_of(r: u8) -> Role {
    match r {
        0 => Role::Viewer,
        1 => Role::Responder,
        _ => Role::Admin,
    }
}

impl<const R: u8> Caller<R> {
    /// The actor recorded on the events this caller causes.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.0.user.id),
            name: self.0.user.name.clone(),
        }
    }

    /// The caller's user id.
    pub fn user_id(&self) -> i64 {
        self.0.user.id
    }

    /// The caller's effective role.
    pub fn role(&self) -> Role {
        self.0.role
    }
}

impl<const R: u8> FromRequestParts<AppState> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(ApiError::Unauthenticated)?;
        let principal = state
            .store
            .authenticate(token, state.now())
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let needed = role_of(R);
        if !principal.role.allows(needed) {
            return Err(ApiError::Forbidden {
                needed: needed.as_str(),
                have: principal.role.as_str(),
            });
        }
        Ok(Caller(principal))
    }
}

/// A JSON body parsed into `T`; errors name the field and nothing is half-read.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        check_json(&req)?;
        let limit = state.limits.max_body_bytes;
        let bytes = read_body(req, limit).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Like [`ApiJson`], but an empty body (or only whitespace, with any
/// content type) stands for `T::default()`.
pub struct ApiJsonOrEmpty<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for ApiJsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = check_json(&req);
        let bytes = read_body(req, state.limits.max_body_bytes).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(ApiJsonOrEmpty(T::default()));
        }
        is_json?;
        parse_json(&bytes).map(ApiJsonOrEmpty)
    }
}

// 415 unless the request says its body is JSON.
fn check_json(req: &Request) -> Result<(), ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType("application/json"))
    }
}

/// Reads a whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            // axum wraps http-body's LengthLimitError, whose text is stable.
            if e.to_string().contains("length limit exceeded") {
                ApiError::TooLarge(limit)
            } else {
                ApiError::MalformedJson(format!("could not read the body: {e}"))
            }
        })
}

/// Parses JSON into `T`, naming the field on a type or value error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let msg = inner.to_string();
                // The path already ends in an unknown field's name; a missing
                // field is named only in the message, in backticks.
                let top = path == "." || path.is_empty();
                let named = msg.split('`').nth(1).unwrap_or("body");
                let field = match (msg.starts_with("missing field"), top) {
                    (true, true) => named.to_string(),
                    (true, false) => format!("{path}.{named}"),
                    (false, true) => "body".to_string(),
                    (false, false) => path,
                };
                ApiError::Invalid {
                    field,
                    message: strip_position(&msg),
                }
            }
            _ => ApiError::MalformedJson(inner.to_string()),
        }
    })
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Query parameters parsed into `T`; a malformed query string gets our error shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::Invalid {
                field: "query".into(),
                message: e.body_text(),
            })
    }
}
