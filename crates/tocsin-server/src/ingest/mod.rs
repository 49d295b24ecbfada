//! Inbound alert sources, each compatible with the API its senders already speak.
//! They authenticate with a service's integration key, not with a user's token.

pub mod limit;
mod pagerduty;
mod webhook;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(pagerduty::routes())
        .merge(webhook::routes())
}
