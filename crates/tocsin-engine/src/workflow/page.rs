//! `page`: a user, a schedule's on-call or an escalation policy's first level,
//! through the escalation and notification machinery (see
//! `Store::page_for_workflow`); notifications due now go straight to delivery.

use std::sync::Arc;

use serde_json::{json, Value};
use tocsin_core::workflow::action::PageTarget;
use tocsin_core::workflow::Action;
use tocsin_notify::BoxFuture;
use tocsin_store::workflows::PageWhom;

use super::executor::{StepCall, StepError, StepExecutor};
use crate::delivery::Delivery;

/// The `page` step.
pub struct PageStep {
    delivery: Arc<dyn Delivery>,
}

impl PageStep {
    /// Handing due notifications to `delivery`.
    pub fn new(delivery: Arc<dyn Delivery>) -> PageStep {
        PageStep { delivery }
    }
}

impl StepExecutor for PageStep {
    fn kinds(&self) -> &'static [&'static str] {
        &["page"]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::Page(p) = call.action else {
                return Err(StepError::permanent("not a page step"));
            };
            let incident = call.incident()?;
            let whom = match &p.target {
                PageTarget::User(u) => PageWhom::User(u.clone()),
                PageTarget::Schedule(s) => PageWhom::Schedule(s.clone()),
                PageTarget::EscalationPolicy(e) => PageWhom::EscalationPolicy(e.clone()),
            };
            // Notification keys come from the attempt's key: a repeated
            // attempt writes none twice (the outbox refuses a key it has).
            let r = call
                .store("page")
                .page_for_workflow(
                    incident,
                    &whom,
                    p.message.as_deref(),
                    call.idempotency_key,
                    call.actor,
                    call.now,
                )
                .await?;
            self.delivery.handed(&r.handed);
            if r.users.is_empty() {
                return Err(StepError::permanent(
                    "the page reached nobody (nobody on call, or an empty level)",
                ));
            }
            Ok(
                json!({ "users": r.users, "unreachable_users": r.unreachable_users,
                       "notifications": r.notifications }),
            )
        })
    }
}
