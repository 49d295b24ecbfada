//! The status pages' admin side: the list of pages, one page's settings,
//! components, groups, templates, subscribers and logo, and its posts
//! (incidents and maintenances) with their updates. The public pages
//! themselves are served by `crate::status`.
//!
//! Every form builds the API's own request and goes through the API's own
//! function (`crate::api::status_*`), so a page and an API call check and
//! store the same way; roles are the API's: viewers read, responders publish
//! and move component statuses, admins configure. A refused form comes back
//! with what was typed and a message naming the field.

mod components;
mod extras;
mod form;
mod list;
mod page;
mod post;
mod posts;
mod settings;
mod upload;

pub(crate) use form::{
    chosen_id, impact_opts, post_status_opts, posted, refused, Badge, Failed, Fill, Opt,
};
pub(crate) use posts::{
    component_choices, group_names, incident_request, posted_choices, ComponentChoice,
};

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/status-pages", get(list::list).post(list::create))
        .route("/status-pages/{id}", get(page::show))
        .route("/status-pages/{id}/settings", post(settings::save))
        .route("/status-pages/{id}/delete", post(settings::delete))
        .route(
            "/status-pages/{id}/logo",
            get(settings::logo).post(settings::upload_logo),
        )
        .route(
            "/status-pages/{id}/logo/delete",
            post(settings::delete_logo),
        )
        .route("/status-pages/{id}/groups", post(components::create_group))
        .route(
            "/status-pages/{id}/groups/{group_id}",
            post(components::edit_group),
        )
        .route(
            "/status-pages/{id}/groups/{group_id}/delete",
            post(components::delete_group),
        )
        .route(
            "/status-pages/{id}/components",
            post(components::create_component),
        )
        .route(
            "/status-pages/{id}/components/{component_id}",
            post(components::edit_component),
        )
        .route(
            "/status-pages/{id}/components/{component_id}/status",
            post(components::set_status),
        )
        .route(
            "/status-pages/{id}/components/{component_id}/delete",
            post(components::delete_component),
        )
        .route(
            "/status-pages/{id}/templates",
            post(extras::create_template),
        )
        .route(
            "/status-pages/{id}/templates/{template_id}",
            post(extras::edit_template),
        )
        .route(
            "/status-pages/{id}/templates/{template_id}/delete",
            post(extras::delete_template),
        )
        .route(
            "/status-pages/{id}/subscribers",
            post(extras::add_subscriber),
        )
        .route(
            "/status-pages/{id}/subscribers/{subscriber_id}/delete",
            post(extras::delete_subscriber),
        )
        .route("/status-pages/{id}/posts", get(posts::list))
        .route("/status-pages/{id}/incidents/new", get(posts::new_incident))
        .route(
            "/status-pages/{id}/incidents",
            post(posts::publish_incident),
        )
        .route(
            "/status-pages/{id}/maintenances/new",
            get(posts::new_maintenance),
        )
        .route(
            "/status-pages/{id}/maintenances",
            post(posts::publish_maintenance),
        )
        .route("/status-posts/{id}", get(post::show).post(post::edit))
        .route("/status-posts/{id}/updates", post(post::add_update))
        .route("/status-posts/{id}/delete", post(post::delete))
        .route(
            "/status-posts/{id}/updates/{update_id}",
            post(post::correct_update),
        )
}
