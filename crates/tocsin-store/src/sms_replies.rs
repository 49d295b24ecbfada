//! Acknowledge or resolve by replying to a page's text message ("12 ack"): who a
//! phone number belongs to, and the action itself, the same as an action link's
//! but recorded as an SMS reply.

use serde_json::json;
use sqlx::Row;
use tocsin_core::action_link::LinkAction;
use tocsin_core::auth::Role;
use tocsin_core::model::Incident;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::Timestamp;

use crate::{ActionLinkError, Store, StoreError};

/// A user whose verified `sms` contact method is a given number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsSender {
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
pub struct SmsReplyOutcome {
    /// The incident after the action.
    pub incident: Incident,
    /// False when the incident was already acknowledged (or resolved): nothing moved.
    pub changed: bool,
    /// Who replied.
    pub user_name: String,
}

impl Store {
    /// The users with a verified `sms` contact method at `number` (E.164, as
    /// stored), lowest id first. Unverified methods never count: anyone can add a
    /// number to their profile, only its owner can verify it.
    pub async fn users_by_verified_sms(&self, number: &str) -> Result<Vec<SmsSender>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.name, u.role, u.active FROM contact_methods c \
             JOIN users u ON u.id = c.user_id \
             WHERE c.kind = 'sms' AND c.address = $1 AND c.verified <> 0 \
             ORDER BY u.id",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SmsSender {
                    user_id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    role: Role::parse(&r.try_get::<String, _>("role")?).unwrap_or(Role::Viewer),
                    active: r.try_get::<i64, _>("active")? != 0,
                })
            })
            .collect()
    }

    /// Acknowledges or resolves incident `incident_id` as `user_id`, who replied
    /// from `from`: the same checks and transition as an action link, one
    /// `incident.sms_reply` timeline event naming the number. Nothing is written
    /// when a check fails.
    pub async fn act_by_sms(
        &self,
        settings: &IncidentSettings,
        incident_id: i64,
        action: LinkAction,
        user_id: i64,
        from: &str,
        now: Timestamp,
    ) -> Result<SmsReplyOutcome, ActionLinkError> {
        let mut w = self.write().await?;
        let acted = self
            .act_as(
                &mut w,
                settings,
                incident_id,
                action,
                user_id,
                "incident.sms_reply",
                json!({ "from": from }),
                now,
            )
            .await;
        match acted {
            Ok((incident, changed, user_name)) => {
                w.commit().await?;
                Ok(SmsReplyOutcome {
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
