//! placeholder
use axum::Router;
use crate::state::AppState;
pub(super) fn routes() -> Router<AppState> { Router::new() }
