//! Acknowledge or resolve by phone: a reply to a page's text message ("12 ack")
//! or a key pressed during a paging call. Who a phone number belongs to, and the
//! action itself, the same as an action link's but recorded as the phone's.

use serde_json::json;
use sqlx::Row;
use tocsin_core::action_link::LinkAction;
use tocsin_core::auth::Role;
use tocsin_core::escalation::ContactKind;
use tocsin_core::model::Incident;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::Timestamp;

use crate::{ActionLinkError, Store, StoreError};

/// How the answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneReply {
    /// A text message replying to a page (`incident.sms_reply`).
    Sms,
    /// A key pressed during a paging call (`incident.call_reply`).
    Call,
}

impl PhoneReply {
    fn event(self) -> &'static str {
        match self {
            PhoneReply::Sms => "incident.sms_reply",
            PhoneReply::Call => "incident.call_reply",
        }
    }
}

/// A user whose verified contact method of some kind is a given number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneUser {
    /// The user.
    pub user_id: i64,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Whether they may still sign in and act.
    pub active: bool,
}

/// What a reply did.
#[derive(Debug, Clone)]
pub struct PhoneReplyOutcome {
    /// The incident after the action.
    pub incident: Incident,
    /// False when the incident was already acknowledged (or resolved): nothing moved.
    pub changed: bool,
    /// Who answered.
    pub user_name: String,
}

impl Store {
    /// The users with a verified contact method of `kind` at `number` (E.164,
    /// as stored), lowest id first. Unverified methods never count: anyone can
    /// add a number to their profile, only its owner can verify it.
    pub async fn users_by_verified_number(
        &self,
        kind: ContactKind,
        number: &str,
    ) -> Result<Vec<PhoneUser>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.name, u.role, u.active FROM contact_methods c \
             JOIN users u ON u.id = c.user_id \
             WHERE c.kind = $1 AND c.address = $2 AND c.verified <> 0 \
             ORDER BY u.id",
        )
        .bind(kind.as_str())
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PhoneUser {
                    user_id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    role: Role::parse(&r.try_get::<String, _>("role")?).unwrap_or(Role::Viewer),
                    active: r.try_get::<i64, _>("active")? != 0,
                })
            })
            .collect()
    }

    /// Acknowledges or resolves incident `incident_id` as `user_id`, who answered
    /// `via` the phone `number`: the same checks and transition as an action
    /// link, one `incident.sms_reply` or `incident.call_reply` timeline event
    /// naming the number (`from`). Nothing is written when a check fails.
    #[allow(clippy::too_many_arguments)]
    pub async fn act_by_phone(
        &self,
        settings: &IncidentSettings,
        incident_id: i64,
        action: LinkAction,
        user_id: i64,
        via: PhoneReply,
        number: &str,
        now: Timestamp,
    ) -> Result<PhoneReplyOutcome, ActionLinkError> {
        let mut w = self.write().await?;
        let acted = self
            .act_as(
                &mut w,
                settings,
                incident_id,
                action,
                user_id,
                via.event(),
                json!({ "from": number }),
                now,
            )
            .await;
        match acted {
            Ok((incident, changed, user_name)) => {
                w.commit().await?;
                Ok(PhoneReplyOutcome {
                    incident,
                    changed,
                    user_name,
                })
            }
            Err(e) => {
                w.rollback().await?;
                Err(e)
            }
        }
    }
}
