//! Signing in and out. The sign-in form is protected from cross-site posts by a
//! double-submit token (a random cookie the form repeats), since there is no
//! session yet; signing out is a form like any other.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tocsin_core::time::Timestamp;

use super::common::{page, see_other, WebResult};
use super::session::{cookie, same_secret, CsrfPairs, COOKIE_NAME};
use crate::password;
use crate::state::AppState;

const LOGIN_COOKIE: &str = "tocsin_login";
/// Wrong passwords allowed per email address in `FAILURE_WINDOW` before
/// sign-in for that address pauses until the window has passed.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

/// Recent failed sign-ins by email, with when the first of them was (this
/// node's memory: a guesser spread over several nodes gets a few more tries,
/// never unlimited ones).
#[derive(Default)]
pub struct LoginFailures(Mutex<HashMap<String, (u32, Timestamp)>>);

impl LoginFailures {
    /// Counts an attempt before its password is checked, so parallel guesses
    /// cannot all pass the check first; `false`: the address is paused.
    /// Forgets failures older than the window.
    fn reserve(&self, email: &str, now: Timestamp) -> bool {
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f.retain(|_, (_, first)| now - *first < FAILURE_WINDOW);
        if f.len() >= MAX_TRACKED {
            // Forget the older half, never everyone: a flood of made-up addresses
            // must not reset the count of the one being guessed.
            let mut firsts: Vec<Timestamp> = f.values().map(|(_, t)| *t).collect();
            firsts.sort();
            let cut = firsts[firsts.len() / 2];
            f.retain(|k, (_, t)| *t > cut || k == email);
        }
        let e = f.entry(email.to_string()).or_insert((0, now));
        if e.0 >= MAX_FAILURES {
            return false;
        }
        e.0 += 1;
        true
    }

    /// A right password: the address's reserved attempt and failures are forgotten.
    fn clear(&self, email: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(email);
    }
}

/// Addresses tracked at most (a few MB).
const MAX_TRACKED: usize = 100_000;
/// Password checks at a time: each takes ~19 MiB and a core for tens of ms, so a
/// flood of sign-ins waits here instead of exhausting memory.
const CHECKS_AT_ONCE: usize = 2;

fn checks() -> &'static tokio::sync::Semaphore {
    static S: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    S.get_or_init(|| tokio::sync::Semaphore::new(CHECKS_AT_ONCE))
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(show).post(sign_in))
        .route("/logout", post(sign_out))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
    css_v: &'static str,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only a path on this site: never `//host` or `https://…`, so a crafted link
/// cannot send someone elsewhere after they sign in.
fn local(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from URLs (`/\t/evil` becomes `//evil`) and
        // read `\` as `/`: any of them, or a second slash, and it is home instead.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.parse::<axum::http::Uri>().is_ok() =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Should cookies be `Secure`: the instance's public URL is https, or a proxy
/// says the request came over TLS.
pub(super) fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub(super) fn set_cookie(resp: &mut Response, name: &str, value: &str, max_age: i64, secure: bool) {
    let c = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    next: String,
    email: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let csrf = tocsin_store::random_token(32);
    let mut resp = page(&LoginPage {
        csrf: csrf.clone(),
        next,
        email,
        error,
        css_v: super::assets::css_version(),
    });
    *resp.status_mut() = status;
    set_cookie(&mut resp, LOGIN_COOKIE, &csrf, 3600, secure(state, headers));
    resp
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    login_page(
        &state,
        &headers,
        local(q.next.as_deref()),
        String::new(),
        None,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// A hash to check against when the email is unknown, so a wrong email takes
/// as long as a wrong password and does not tell who has an account.
fn decoy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        password::hash("password", "decoy password, never matches").unwrap_or_default()
    })
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> WebResult {
    let next = local(c.next.as_deref());
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_secret(&c.csrf, expected) {
        return Ok(login_page(
            &state,
            &headers,
            next,
            c.email,
            Some("The sign-in form had expired. Please try again.".into()),
            StatusCode::FORBIDDEN,
        ));
    }
    let key = c.email.trim().to_lowercase();
    if !state.login_failures.reserve(&key, state.now()) {
        tracing::warn!(email = %key, "sign-in paused after repeated wrong passwords");
        return Ok(login_page(
            &state,
            &headers,
            next,
            c.email,
            Some("Too many wrong passwords for this email. Try again in 15 minutes.".into()),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let found = state.store.user_by_email(c.email.trim()).await?;
    let (user, hash) = match found {
        Some((u, Some(h))) if u.active => (Some(u), h),
        // Checked against the decoy (made on the blocking thread, once).
        _ => (None, String::new()),
    };
    let pw = c.password.clone();
    let ok = match checks().acquire().await {
        Ok(_permit) => tokio::task::spawn_blocking(move || {
            let against = if hash.is_empty() { decoy_hash() } else { &hash };
            password::verify(&pw, against)
        })
        .await
        .unwrap_or(false),
        Err(_) => false,
    };
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(email = %key, "sign-in refused");
        return Ok(login_page(
            &state,
            &headers,
            next,
            c.email,
            Some("Wrong email or password.".into()),
            StatusCode::UNAUTHORIZED,
        ));
    };
    state.login_failures.clear(&key);
    let secret = state.store.create_session(user.id, state.now()).await?;
    let mut resp = see_other(&next);
    let sec = secure(&state, &headers);
    set_cookie(
        &mut resp,
        COOKIE_NAME,
        &secret,
        tocsin_store::SESSION_LIFETIME.num_seconds(),
        sec,
    );
    set_cookie(&mut resp, LOGIN_COOKIE, "", 0, sec);
    Ok(resp)
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    _form: CsrfPairs,
) -> WebResult {
    if let Some(secret) = cookie(&headers, COOKIE_NAME) {
        state.store.end_session(secret).await?;
    }
    let mut resp = see_other("/login");
    set_cookie(&mut resp, COOKIE_NAME, "", 0, secure(&state, &headers));
    Ok(resp.into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(super::local(Some("/incidents/4?x=1")), "/incidents/4?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/x\r\nSet-Cookie: a=b",
            "evil",
            "",
        ] {
            assert_eq!(super::local(Some(bad)), "/", "{bad}");
        }
        assert_eq!(super::local(None), "/");
    }
}
