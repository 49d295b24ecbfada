//! Tocsin's HTTP edges: the REST API under /api/v1 with its OpenAPI document,
//! the web UI, public status pages, health, readiness and metrics.

mod actions;
pub(crate) mod analytics;
pub(crate) mod api;
pub mod error;
pub mod extract;
pub mod ingest;
pub mod metrics;
mod ops;
pub mod password;
pub mod similar;
pub mod smtp;
pub mod state;
pub mod status;
pub mod twilio;
pub mod web;

use std::future::Future;

use axum::http::Uri;
use axum::{middleware, Router};
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use state::{AppState, Limits};
pub use twilio::TwilioInbound;

fn all_routes() -> OpenApiRouter<AppState> {
    api::routes()
        .merge(status::routes())
        .merge(api::feed_routes())
        .merge(actions::routes())
        .merge(twilio::routes())
        .merge(ingest::routes())
        .merge(ops::routes())
}

/// The OpenAPI document of every route the server has.
pub fn openapi() -> utoipa::openapi::OpenApi {
    all_routes().split_for_parts().1
}

/// The application: every route, metrics, and a JSON 404 for the rest.
pub fn router(state: AppState) -> Router {
    let (routes, _) = all_routes().split_for_parts();
    let routed = routes
        .merge(web::routes())
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state.clone());
    // A layer on a router runs after its routing; this one must run before
    // (a status page's custom domain and export names change the path), so
    // it wraps the routed application as an outer router's only service.
    Router::new()
        .fallback_service(routed)
        .layer(middleware::from_fn_with_state(state, status::route_by_host))
}

/// No such route: JSON for API clients, the UI's error page for a browser.
async fn no_route(uri: Uri, headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    let err = ApiError::NoRoute(uri.path().to_string());
    let browser = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser && !uri.path().starts_with("/api/") {
        web::error_page(err)
    } else {
        err.into_response()
    }
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let live = state.live.clone();
    let shutdown = async move {
        shutdown.await;
        // Live-update streams never end by themselves; they must not hold the drain.
        live.close();
    };
    // The peer address: public forms limit requests per client (status pages).
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
