//! Inbound alert sources, each compatible with the API its senders already speak.
//! They authenticate with a service's integration key, not with a user's token.

mod generic;
pub mod limit;
mod pagerduty;
mod webhook;

use tocsin_core::alert::{AlertAction, AlertEvent};
use tocsin_core::model::IntegrationKey;
use tocsin_core::routing;
use tocsin_store::{Inbound, StoreError};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Each event for the service the integration's routing rules choose (first match
/// wins), else for the key's own service; the rules come with the cached key.
///
/// An acknowledge or resolve often lacks the labels its trigger was routed by
/// (PagerDuty's carry only the dedup key): it goes where an open alert with its
/// dedup key is, among the services the rules can reach, else where the rules say.
pub(crate) async fn routed(
    state: &AppState,
    key: &IntegrationKey,
    events: Vec<(AlertEvent, String)>,
) -> Result<Vec<Inbound>, StoreError> {
    let rules = &key.config.routing_rules;
    let mut reachable: Vec<i64> = vec![key.service_id];
    reachable.extend(rules.iter().map(|r| r.service_id));
    reachable.sort_unstable();
    reachable.dedup();
    let mut out = Vec::with_capacity(events.len());
    for (event, raw) in events {
        let mut service_id = routing::route(rules, &event, key.service_id);
        if event.action != AlertAction::Trigger && reachable.len() > 1 {
            if let Some(open) = state
                .store
                .open_alert_service(event.dedup_key.as_str(), &reachable)
                .await?
            {
                service_id = open;
            }
        }
        out.push(Inbound {
            service_id,
            event,
            raw,
        });
    }
    Ok(out)
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(pagerduty::routes())
        .merge(webhook::routes())
        .merge(generic::routes())
}
