//! Who is signed in, and may they: the session cookie, the role a page needs,
//! and the CSRF token every form must post back.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use serde::de::DeserializeOwned;
use tocsin_core::auth::Role;
use tocsin_store::WebSession;

use super::common::WebError;
use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "tocsin_session";

/// A signed-in browser whose role is at least `R` (0 viewer, 1 responder, 2 admin).
pub(crate) struct Signed<const R: u8>(pub WebSession);

/// Any signed-in user.
pub(crate) type AsViewer = Signed<0>;
/// A responder or admin.
pub(crate) type AsResponder = Signed<1>;
/// An admin.
pub(crate) type AsAdmin = Signed<2>;

impl<const R: u8> Signed<R> {
    /// The actor recorded on what this user changes.
    pub fn actor(&self) -> tocsin_store::Actor {
        tocsin_store::Actor {
            user_id: Some(self.0.principal.user.id),
            name: self.0.principal.user.name.clone(),
        }
    }

    /// The signed-in user's id.
    pub fn user_id(&self) -> i64 {
        self.0.principal.user.id
    }

    /// Their role.
    pub fn role(&self) -> Role {
        self.0.principal.role
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

const fn role_of(r: u8) -> Role {
    match r {
        0 => Role::Viewer,
        1 => Role::Responder,
        _ => Role::Admin,
    }
}

/// The session of the request, looked up once and kept in its extensions.
async fn session_of(parts: &mut Parts, state: &AppState) -> Result<Option<WebSession>, WebError> {
    if let Some(s) = parts.extensions.get::<Option<WebSession>>() {
        return Ok(s.clone());
    }
    let s = match cookie(&parts.headers, COOKIE_NAME) {
        Some(secret) => state
            .store
            .session(secret, state.now())
            .await
            .map_err(ApiError::from)?,
        None => None,
    };
    parts.extensions.insert(s.clone());
    Ok(s)
}

impl<const R: u8> FromRequestParts<AppState> for Signed<R> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let Some(s) = session_of(parts, state).await? else {
            // After signing in, come back here; a form post comes back to its page.
            let next = if parts.method == Method::GET {
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into())
            } else {
                "/".into()
            };
            return Err(WebError::SignIn(next));
        };
        let needed = role_of(R);
        if !s.principal.role.allows(needed) {
            return Err(WebError::Forbidden {
                needed: needed.as_str(),
                have: s.principal.role.as_str(),
            });
        }
        Ok(Signed(s))
    }
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A URL-encoded form from a signed-in browser whose `_csrf` field matches the
/// session's token; parsed into `T` (which never sees `_csrf`). Put a `Signed`
/// extractor before it in the handler, so the session is known.
pub(crate) struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WebError> {
        let CsrfPairs(pairs) = CsrfPairs::from_request(req, state).await?;
        // Empty fields are absent ones: a form's untouched optional input posts "".
        let pairs: Vec<_> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        serde_urlencoded::from_str(&encoded)
            .map(CsrfForm)
            .map_err(|e| {
                WebError::Api(ApiError::Invalid {
                    field: "form".into(),
                    message: e.to_string(),
                })
            })
    }
}

/// Checks a form's token for handlers that read several values of one field
/// (`serde_urlencoded` keeps only one): returns the form's pairs without `_csrf`.
pub(crate) struct CsrfPairs(pub Vec<(String, String)>);

impl FromRequest<AppState> for CsrfPairs {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let session = session_of(&mut parts, state)
            .await?
            .ok_or_else(|| WebError::SignIn("/".into()))?;
        let req = Request::from_parts(parts, body);
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.starts_with("application/x-www-form-urlencoded"))
            .unwrap_or(false);
        if !is_form {
            return Err(WebError::Csrf);
        }
        let bytes = crate::extract::read_body(req, state.limits.max_body_bytes).await?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let token = pairs
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !same_secret(token, &session.csrf) {
            return Err(WebError::Csrf);
        }
        Ok(CsrfPairs(
            pairs.into_iter().filter(|(k, _)| k != "_csrf").collect(),
        ))
    }
}

/// The first value of `key` in a form's pairs.
pub(crate) fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every value of `key` in a form's pairs.
pub(crate) fn fields<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}
