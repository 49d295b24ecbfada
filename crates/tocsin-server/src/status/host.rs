//! Before any route is chosen: requests for a page's custom domain are given
//! that page's paths, and the names a static export uses are given the
//! server's. It rewrites the URI only; the routes do the rest.
//!
//! On a custom domain `/` is the page, `/incidents/12.html` its incident, and
//! so on; every path a page does not serve (the UI, `/api/v1`, `/login`) is
//! 404 there, so a status domain never exposes the rest of the instance.

use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::http::uri::PathAndQuery;
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::respond::{StatusError, Want};
use crate::state::AppState;

/// The first path segments a page serves at its custom domain's root.
const PAGE_PATHS: &[&str] = &[
    "index.html",
    "incidents",
    "history",
    "history.html",
    "history.atom",
    "history.rss",
    "subscribe",
    "confirm",
    "unsubscribe",
    "theme.css",
];

/// The layer: runs before routing (see `crate::router`).
pub(crate) async fn route_by_host(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    // The instance's own host is never a page's: the API refuses it as a
    // page's domain, and one given it before that must not hide the UI and the API.
    let own = instance_host(&state);
    if let Some(host) = host_of(&req).filter(|h| Some(h.as_str()) != own.as_deref()) {
        if let Some(pv) = state.status.by_domain(&state.store, &host).await {
            match on_domain(&pv.slug, req.uri().path()) {
                Some(path) => set_path(&mut req, &path),
                None => {
                    let resp = StatusError::NoPage.to(Want::Page).into_response();
                    return super::respond::security_headers(resp).await;
                }
            }
        }
    }
    if let Some(path) = alias(req.uri().path()) {
        set_path(&mut req, &path);
    }
    next.run(req).await
}

/// The request's host: lower-case, without port or trailing dot.
fn host_of(req: &Request) -> Option<String> {
    let raw = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().host())?;
    bare_host(raw)
}

/// The host the instance itself is reached at (its `public_url`'s), as
/// [`host_of`] gives it; `None` without a public URL.
pub(crate) fn instance_host(state: &AppState) -> Option<String> {
    state.public_url.as_deref().and_then(url_host)
}

/// The host of an `http(s)://host[:port][/…]` URL, as [`host_of`] gives it.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    bare_host(rest.split('/').next().unwrap_or(""))
}

fn bare_host(raw: &str) -> Option<String> {
    let host = match raw.rsplit_once(':') {
        // `[::1]:8080` and `host:8080`; an IPv6 literal is never a page's domain.
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => raw,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Where `path` on page `slug`'s own domain lives on the server; `None`: not a
/// path the page serves.
fn on_domain(slug: &str, path: &str) -> Option<String> {
    if path == "/" {
        return Some(format!("/status/{slug}/"));
    }
    // The shared stylesheet: the page's relative link from `/` lands here, and
    // the small pages (forms, refusals) link it absolutely.
    if path == "/assets/status.css" || path == "/status/assets/status.css" {
        return Some("/status/assets/status.css".into());
    }
    let rest = path.strip_prefix('/')?;
    let first = rest.split('/').next().unwrap_or("");
    // `api/v2/` only: `/api/v1` on this host must stay the 404 it is.
    let served = PAGE_PATHS.contains(&first) || is_logo(first) || rest.starts_with("api/v2/");
    served.then(|| format!("/status/{slug}/{rest}"))
}

fn is_logo(segment: &str) -> bool {
    segment == "logo"
        || segment
            .strip_prefix("logo.")
            .is_some_and(|ext| ["png", "jpg", "gif", "webp"].contains(&ext))
}

/// The names a static export uses, as the server's routes: `index.html` is the
/// page, `history.html` the history, `logo.png` the logo (incident pages take
/// their `.html` in the route itself).
fn alias(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/status/")?;
    let (slug, tail) = rest.split_once('/')?;
    let to = match tail {
        "index.html" => "",
        "history.html" => "history",
        t if is_logo(t) && t != "logo" => "logo",
        _ => return None,
    };
    Some(format!("/status/{slug}/{to}"))
}

fn set_path(req: &mut Request, path: &str) {
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let Ok(pq) = pq.parse::<PathAndQuery>() else {
        return;
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(pq);
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_domain_serves_the_page_and_nothing_else() {
        let on = |p: &str| on_domain("acme", p);
        assert_eq!(on("/").as_deref(), Some("/status/acme/"));
        assert_eq!(
            on("/incidents/12.html").as_deref(),
            Some("/status/acme/incidents/12.html")
        );
        assert_eq!(
            on("/api/v2/summary.json").as_deref(),
            Some("/status/acme/api/v2/summary.json")
        );
        assert_eq!(on("/logo.png").as_deref(), Some("/status/acme/logo.png"));
        assert_eq!(
            on("/assets/status.css").as_deref(),
            Some("/status/assets/status.css")
        );
        for other in [
            "/api/v1/incidents",
            "/login",
            "/incidents-x",
            "/status/other/",
            "/assets/app.css",
            "/logo.svg",
            "",
        ] {
            assert_eq!(on(other), None, "{other}");
        }
    }

    #[test]
    fn hosts_lose_port_case_and_trailing_dot() {
        assert_eq!(
            bare_host("Status.Acme.com.:443").as_deref(),
            Some("status.acme.com")
        );
        assert_eq!(
            bare_host("status.acme.com").as_deref(),
            Some("status.acme.com")
        );
        assert_eq!(
            url_host("https://Tocsin.example.com:8443/x").as_deref(),
            Some("tocsin.example.com")
        );
    }

    #[test]
    fn export_names_are_aliases() {
        assert_eq!(
            alias("/status/acme/index.html").as_deref(),
            Some("/status/acme/")
        );
        assert_eq!(
            alias("/status/acme/history.html").as_deref(),
            Some("/status/acme/history")
        );
        assert_eq!(
            alias("/status/acme/logo.webp").as_deref(),
            Some("/status/acme/logo")
        );
        assert_eq!(alias("/status/acme/logo"), None);
        assert_eq!(alias("/status/acme/"), None);
        assert_eq!(alias("/api/v1/index.html"), None);
    }
}
