//! Action links: minting the signed "Acknowledge" / "Resolve" links a page's
//! message carries, and acting on one exactly once. The token format is
//! `tocsin_core::action_link`; here are the shared signing key (one row of
//! `signing_keys`, created on first use) and single use (`used_action_tokens`).

use chrono::Duration;
use rand::RngCore;
use serde_json::json;
use sqlx::Row;
use tocsin_core::action_link::{self, ActionClaim, LinkAction, LinkRefused, NONCE_LEN};
use tocsin_core::auth::Role;
use tocsin_core::change::Moved;
use tocsin_core::model::Incident;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;

use crate::events::{incident_event, Actor};
use crate::tx::WriteTx;
use crate::{Backend, Store, StoreError};

const PURPOSE: &str = "action_link";

/// Why an action link did not act.
#[derive(Debug, thiserror::Error)]
pub enum ActionLinkError {
    /// Malformed, forged or expired.
    #[error(transparent)]
    Refused(#[from] LinkRefused),
    /// The link was used before.
    #[error("this link was already used at {}", used_at.format("%Y-%m-%d %H:%M UTC"))]
    Used {
        /// When it was used.
        used_at: Timestamp,
    },
    /// The user the link acts as has been deactivated.
    #[error("the user this link acts for has been deactivated")]
    UserInactive,
    /// The user the link acts as may no longer work incidents.
    #[error("the user this link acts for is no longer a responder")]
    NotResponder,
    /// The store failed, or the incident or user is gone.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ActionLinkError {
    fn from(e: sqlx::Error) -> Self {
        ActionLinkError::Store(e.into())
    }
}

/// What a valid link would do, read without acting (the confirmation page).
#[derive(Debug, Clone)]
pub struct ActionLinkPreview {
    /// The incident as it is now.
    pub incident: Incident,
    /// What the link does.
    pub action: LinkAction,
    /// Who it acts as.
    pub user_id: i64,
    /// Their name.
    pub user_name: String,
    /// When the link stops working.
    pub expires_at: Timestamp,
}

/// What using a link did.
#[derive(Debug, Clone)]
pub struct ActionLinkOutcome {
    /// The incident after the action.
    pub incident: Incident,
    /// What the link does.
    pub action: LinkAction,
    /// Who it acted as.
    pub user_id: i64,
    /// Their name.
    pub user_name: String,
    /// False when the incident was already acknowledged (or resolved): nothing moved.
    pub changed: bool,
    /// When.
    pub at: Timestamp,
}

struct LinkUser {
    name: String,
    role: Role,
    active: bool,
}

fn link_user(r: &sqlx::any::AnyRow) -> Result<LinkUser, StoreError> {
    Ok(LinkUser {
        name: r.try_get("name")?,
        role: Role::parse(&r.try_get::<String, _>("role")?).unwrap_or(Role::Viewer),
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

fn check_user(u: &LinkUser) -> Result<(), ActionLinkError> {
    if !u.active {
        return Err(ActionLinkError::UserInactive);
    }
    if !u.role.allows(Role::Responder) {
        return Err(ActionLinkError::NotResponder);
    }
    Ok(())
}

impl Store {
    /// Mints a link token that does `action` on the incident as `user_id`, working
    /// until `now + ttl`, once. The user must be an active responder.
    pub async fn action_link(
        &self,
        incident_id: i64,
        action: LinkAction,
        user_id: i64,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let mut tokens = self
            .action_links(incident_id, &[action], user_id, now, ttl)
            .await?;
        Ok(tokens.remove(0))
    }

    /// [`Store::action_link`] for several actions at once (a page's Acknowledge
    /// and Resolve): the incident, the user and the key are read once.
    pub async fn action_links(
        &self,
        incident_id: i64,
        actions: &[LinkAction],
        user_id: i64,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError> {
        if ttl <= Duration::zero() {
            return Err(Invalid::new("ttl", "a link must live for some time").into());
        }
        self.incident_exists(incident_id).await?;
        let row = self
            .row_by_id("name, role, active", "users", user_id, "user")
            .await?;
        match check_user(&link_user(&row)?) {
            Ok(()) => {}
            Err(e) => return Err(Invalid::new("user_id", e.to_string()).into()),
        }
        let key = self.signing_key_or_create(PURPOSE, now).await?;
        Ok(actions
            .iter()
            .map(|action| {
                let mut nonce = [0u8; NONCE_LEN];
                rand::thread_rng().fill_bytes(&mut nonce);
                let claim = ActionClaim::new(incident_id, *action, user_id, now, ttl, nonce);
                action_link::sign(&key, &claim)
            })
            .collect())
    }

    async fn verify_action_link(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<ActionClaim, ActionLinkError> {
        // Without a key no link was ever issued: a random one refuses every
        // signature, while a mangled token is still told apart as malformed.
        let key = match self.signing_key(PURPOSE).await? {
            Some(k) => k,
            None => {
                let mut k = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut k);
                k
            }
        };
        Ok(action_link::verify(&key, token, now)?)
    }

    async fn used_at(&self, nonce: &str) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT used_at FROM used_action_tokens WHERE nonce = $1")
                .bind(nonce)
                .fetch_optional(&self.pool)
                .await?;
        Ok(at.map(from_millis))
    }

    /// What a link would do, without doing it: for the confirmation page that a
    /// GET shows (mail scanners and link previews fetch links; they must not act).
    pub async fn action_link_preview(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<ActionLinkPreview, ActionLinkError> {
        let claim = self.verify_action_link(token, now).await?;
        if let Some(used_at) = self.used_at(&claim.nonce_hex()).await? {
            return Err(ActionLinkError::Used { used_at });
        }
        let row = self
            .row_by_id("name, role, active", "users", claim.user_id, "user")
            .await?;
        let user = link_user(&row)?;
        check_user(&user)?;
        Ok(ActionLinkPreview {
            incident: self.incident(claim.incident_id).await?,
            action: claim.action,
            user_id: claim.user_id,
            user_name: user.name,
            expires_at: from_millis(claim.expires_at.saturating_mul(1000)),
        })
    }

    /// Acts on a link: checks it, then in one transaction records its nonce (a
    /// second use is refused), checks its user is still an active responder and
    /// moves the incident as that user through the same lifecycle path as the API,
    /// so the escalation stops or is cancelled. An incident already past triggered
    /// (for acknowledge) or already resolved (for resolve) is left as it is. When a
    /// check fails nothing is written.
    pub async fn use_action_link(
        &self,
        settings: &IncidentSettings,
        token: &str,
        now: Timestamp,
    ) -> Result<ActionLinkOutcome, ActionLinkError> {
        let claim = self.verify_action_link(token, now).await?;
        let nonce = claim.nonce_hex();
        let mut w = self.write().await?;
        let recorded = sqlx::query(
            "INSERT INTO used_action_tokens (nonce, used_at, expires_at, incident_id, action, user_id) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(&nonce)
        .bind(to_millis(now))
        .bind(claim.expires_at.saturating_mul(1000))
        .bind(claim.incident_id)
        .bind(claim.action.as_str())
        .bind(claim.user_id)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if recorded == 0 {
            w.rollback().await?;
            let used_at = self.used_at(&nonce).await?.unwrap_or(now);
            return Err(ActionLinkError::Used { used_at });
        }
        let acted = self
            .act_as(
                &mut w,
                settings,
                claim.incident_id,
                claim.action,
                claim.user_id,
                "incident.action_link_used",
                json!({}),
                now,
            )
            .await;
        let (incident, changed, user_name) = match acted {
            Ok(a) => a,
            Err(e) => {
                w.rollback().await?;
                return Err(e);
            }
        };
        w.commit().await?;
        Ok(ActionLinkOutcome {
            incident,
            action: claim.action,
            user_id: claim.user_id,
            user_name,
            changed,
            at: now,
        })
    }

    /// Acknowledges or resolves an incident as `user_id` inside `w`, the way a
    /// one-click action does (action links, SMS replies): the user, read under a
    /// shared lock so a deactivation waits or is seen, must be an active
    /// responder; an incident already where the action leads is left as it is;
    /// the lifecycle path is the API's, so the escalation stops or is cancelled.
    /// Records `event` (with `action`, `changed`, `status` added to `data`) on the
    /// incident's timeline. Returns the incident, whether it moved, and the
    /// user's name. On an error the caller rolls back.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn act_as(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        incident_id: i64,
        action: LinkAction,
        user_id: i64,
        event: &'static str,
        mut data: serde_json::Value,
        now: Timestamp,
    ) -> Result<(Incident, bool, String), ActionLinkError> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR SHARE",
        };
        let row = sqlx::query(&format!(
            "SELECT name, role, active FROM users WHERE id = $1{lock}"
        ))
        .bind(user_id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("user {user_id}")))?;
        let user = link_user(&row)?;
        check_user(&user)?;
        let actor = Actor {
            user_id: Some(user_id),
            name: user.name.clone(),
        };
        let cur = self.lock_incident(w, incident_id).await?;
        let (incident, changed) = if action.already_done(cur.status) {
            (cur, false)
        } else {
            let (next, moved) = self
                .transition_in(w, settings, incident_id, action.target(), &actor, now)
                .await?;
            if moved == Moved::Status {
                self.incident_acts_on_alerts(w, incident_id, next.status, &actor, now)
                    .await?;
            }
            (next, true)
        };
        data["action"] = json!(action);
        data["changed"] = json!(changed);
        data["status"] = json!(incident.status);
        incident_event(w, now, &actor, incident_id, event, data).await?;
        Ok((incident, changed, user.name))
    }
}
