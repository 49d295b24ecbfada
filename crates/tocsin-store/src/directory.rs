//! Users, teams and services: who works incidents, and what incidents affect.

use serde_json::json;
use sqlx::Row;
use tocsin_core::auth::Role;
use tocsin_core::escalation::Target;
use tocsin_core::model::{EmailAddress, Service, Team, User};
use tocsin_core::schedule::LayerParts;
use tocsin_core::time::{from_millis, to_millis, Timestamp};

use crate::error::unique;
use crate::events::{audit, Actor};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// A user to create; the password arrives already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Display name.
    pub name: String,
    /// Login email.
    pub email: EmailAddress,
    /// Role.
    pub role: Role,
    /// IANA time zone.
    pub time_zone: String,
    /// argon2id PHC string, if a password is set.
    pub password_hash: Option<String>,
}

/// Changes to a user; `None` leaves a field as is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// New name.
    pub name: Option<String>,
    /// New email.
    pub email: Option<EmailAddress>,
    /// New role.
    pub role: Option<Role>,
    /// New time zone.
    pub time_zone: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// New argon2id hash.
    pub password_hash: Option<String>,
}

/// A service or team's editable fields.
#[derive(Debug, Clone, Default)]
pub struct Named {
    /// Name (unique).
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Owning team (services only); `Some(None)` clears it.
    pub team_id: Option<Option<i64>>,
}

const USER_COLUMNS: &str = "id, name, email, role, time_zone, active, password_hash, created_at";

fn user(r: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        role: Role::parse(&r.try_get::<String, _>("role")?).unwrap_or(Role::Viewer),
        time_zone: r.try_get("time_zone")?,
        active: r.try_get::<i64, _>("active")? != 0,
        has_password: r.try_get::<Option<String>, _>("password_hash")?.is_some(),
        created_at: from_millis(r.try_get("created_at")?),
    })
}

/// `` `name` (id) `` of a row, for messages.
fn named(r: &sqlx::any::AnyRow) -> Result<String, StoreError> {
    Ok(format!(
        "`{}` ({})",
        r.try_get::<String, _>("name")?,
        r.try_get::<i64, _>("id")?
    ))
}

fn service(r: &sqlx::any::AnyRow) -> Result<Service, StoreError> {
    Ok(Service {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        team_id: r.try_get("team_id")?,
        created_at: from_millis(r.try_get("created_at")?),
        updated_at: from_millis(r.try_get("updated_at")?),
    })
}

fn changes(old: &impl serde::Serialize, new: &impl serde::Serialize) -> serde_json::Value {
    let (old, new) = (json!(old), json!(new));
    let mut out = Vec::new();
    if let (Some(o), Some(n)) = (old.as_object(), new.as_object()) {
        for (k, v) in o {
            if k != "updated_at" && n.get(k) != Some(v) {
                out.push(json!({ "field": k, "old": v, "new": n.get(k) }));
            }
        }
    }
    json!(out)
}

impl Store {
    /// Creates a user.
    pub async fn create_user(
        &self,
        u: &NewUser,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<User, StoreError> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO users (name, email, email_key, role, time_zone, password_hash, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7) RETURNING {USER_COLUMNS}"
        ))
        .bind(&u.name)
        .bind(u.email.as_str())
        .bind(u.email.as_str().to_lowercase())
        .bind(u.role.as_str())
        .bind(&u.time_zone)
        .bind(u.password_hash.clone())
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(unique("email", "this email"))?;
        let created = user(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "user",
            created.id,
            "user.created",
            json!({ "user": created }),
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// Reads a user.
    pub async fn user(&self, id: i64) -> Result<User, StoreError> {
        let row = self.row_by_id(USER_COLUMNS, "users", id, "user").await?;
        user(&row)
    }

    /// A user and their password hash, by login email (case-insensitive).
    pub async fn user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email_key = $1"
        ))
        .bind(email.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((user(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    /// All users, by id.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user).collect()
    }

    /// How many users exist (0 means the instance needs bootstrapping).
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Changes a user.
    pub async fn update_user(
        &self,
        id: i64,
        c: &UserChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<User, StoreError> {
        let mut w = self.write().await?;
        if c.active == Some(false) {
            // The policy lock before any row, as every writer taking both does
            // (deleting a schedule or a team), so none waits on another in a circle.
            self.lock_policies(&mut w).await?;
        }
        let old = user(
            &self
                .lock_row_by_id(&mut w, USER_COLUMNS, "users", id, "user")
                .await?,
        )?;
        if c.active == Some(false) && old.active {
            self.refuse_deactivating_on_call(&mut w, id, now).await?;
        }
        let row = sqlx::query(&format!(
            "UPDATE users SET name = COALESCE($1, name), email = COALESCE($2, email), \
             email_key = COALESCE($3, email_key), role = COALESCE($4, role), \
             time_zone = COALESCE($5, time_zone), active = COALESCE($6, active), \
             password_hash = COALESCE($7, password_hash) WHERE id = $8 RETURNING {USER_COLUMNS}"
        ))
        .bind(c.name.clone())
        .bind(c.email.as_ref().map(|e| e.as_str().to_string()))
        .bind(c.email.as_ref().map(|e| e.as_str().to_lowercase()))
        .bind(c.role.map(|r| r.as_str()))
        .bind(c.time_zone.clone())
        .bind(c.active.map(i64::from))
        .bind(c.password_hash.clone())
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await
        .map_err(unique("email", "this email"))?
        .ok_or_else(|| StoreError::not_found(format!("user {id}")))?;
        let new = user(&row)?;
        let mut diff = changes(&old, &new);
        if c.password_hash.is_some() {
            // Record that the password changed, never the hash.
            if let Some(list) = diff.as_array_mut() {
                list.retain(|c| c["field"] != "has_password");
                list.push(json!({ "field": "password", "old": "***", "new": "***" }));
            }
        }
        // Tokens never carry more rights than their owner.
        if let Some(role) = c.role {
            let higher: Vec<&str> = Role::ALL
                .into_iter()
                .filter(|r| *r > role)
                .map(|r| r.as_str())
                .collect();
            for r in higher {
                sqlx::query("UPDATE api_tokens SET role = $1 WHERE user_id = $2 AND role = $3")
                    .bind(role.as_str())
                    .bind(id)
                    .bind(r)
                    .execute(&mut *w.tx)
                    .await?;
            }
        }
        if diff.as_array().is_some_and(|a| !a.is_empty()) {
            audit(
                &mut w,
                now,
                actor,
                "user",
                id,
                "user.updated",
                json!({ "changes": diff }),
            )
            .await?;
        }
        w.commit().await?;
        Ok(new)
    }

    /// Refuses to deactivate a user that on-call duty still names: a layer of a
    /// schedule, an override that has not ended, or a level of an escalation
    /// policy would otherwise page nobody where it pages them. Read under the
    /// user's row lock and the policy lock, so a schedule, override or policy
    /// written at the same moment either is seen here or sees the user inactive.
    async fn refuse_deactivating_on_call(
        &self,
        w: &mut WriteTx,
        id: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut in_layers = Vec::new();
        for r in sqlx::query("SELECT id, name, layers FROM schedules ORDER BY name, id")
            .fetch_all(&mut *w.tx)
            .await?
        {
            let layers: Vec<LayerParts> = serde_json::from_str(&r.try_get::<String, _>("layers")?)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            if layers.iter().any(|l| l.users.contains(&id)) {
                in_layers.push(named(&r)?);
            }
        }
        let in_overrides = sqlx::query(
            "SELECT DISTINCT s.id, s.name FROM schedule_overrides o \
             JOIN schedules s ON s.id = o.schedule_id \
             WHERE o.user_id = $1 AND o.ends_at > $2 ORDER BY s.name, s.id",
        )
        .bind(id)
        .bind(to_millis(now))
        .fetch_all(&mut *w.tx)
        .await?
        .iter()
        .map(named)
        .collect::<Result<Vec<_>, _>>()?;
        let policy_ids = self.policies_naming(w, Target::User(id)).await?;
        let mut policies = Vec::new();
        for r in sqlx::query("SELECT id, name FROM escalation_policies ORDER BY name, id")
            .fetch_all(&mut *w.tx)
            .await?
        {
            if policy_ids.contains(&r.try_get("id")?) {
                policies.push(named(&r)?);
            }
        }
        let mut named_in = Vec::new();
        for (what, list) in [
            ("the layers of schedule(s)", in_layers),
            ("overrides not yet ended on schedule(s)", in_overrides),
            ("escalation policy(ies)", policies),
        ] {
            if !list.is_empty() {
                named_in.push(format!("{what} {}", list.join(", ")));
            }
        }
        if named_in.is_empty() {
            return Ok(());
        }
        Err(StoreError::conflict(
            "active",
            format!(
                "user {id} is on call in {}; take them out of those first (an override can cover their turns)",
                named_in.join("; ")
            ),
        ))
    }

    /// Creates a team.
    pub async fn create_team(
        &self,
        name: &str,
        description: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Team, StoreError> {
        let mut w = self.write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO teams (name, description, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(description)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(unique("name", "this team name"))?;
        let team = Team {
            id,
            name: name.into(),
            description: description.into(),
            member_ids: vec![],
            created_at: now,
        };
        audit(
            &mut w,
            now,
            actor,
            "team",
            id,
            "team.created",
            json!({ "team": team }),
        )
        .await?;
        w.commit().await?;
        Ok(team)
    }

    /// Reads a team with its members.
    pub async fn team(&self, id: i64) -> Result<Team, StoreError> {
        let row = self
            .row_by_id("id, name, description, created_at", "teams", id, "team")
            .await?;
        let member_ids = sqlx::query_scalar(
            "SELECT user_id FROM team_members WHERE team_id = $1 ORDER BY user_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Team {
            id,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            member_ids,
            created_at: from_millis(row.try_get("created_at")?),
        })
    }

    /// All teams, by id.
    pub async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM teams ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.team(id).await?);
        }
        Ok(out)
    }

    /// Renames or redescribes a team.
    pub async fn update_team(
        &self,
        id: i64,
        c: &Named,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Team, StoreError> {
        let old = self.team(id).await?;
        let mut w = self.write().await?;
        sqlx::query("UPDATE teams SET name = COALESCE($1, name), description = COALESCE($2, description) WHERE id = $3")
            .bind(c.name.clone())
            .bind(c.description.clone())
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(unique("name", "this team name"))?;
        let new = Team {
            name: c.name.clone().unwrap_or(old.name.clone()),
            description: c.description.clone().unwrap_or(old.description.clone()),
            ..old.clone()
        };
        let diff = changes(&old, &new);
        if diff.as_array().is_some_and(|a| !a.is_empty()) {
            audit(
                &mut w,
                now,
                actor,
                "team",
                id,
                "team.updated",
                json!({ "changes": diff }),
            )
            .await?;
        }
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a team; refused while services name it as owner.
    pub async fn delete_team(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let team = self.team(id).await?;
        let mut w = self.write().await?;
        self.lock_policies(&mut w).await?;
        let policies = self
            .policies_naming(&mut w, tocsin_core::escalation::Target::Team(id))
            .await?;
        if !policies.is_empty() {
            return Err(StoreError::conflict(
                "id",
                format!(
                    "team {id} is named by escalation policy(ies) {policies:?}; change those first"
                ),
            ));
        }
        let owned: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM services WHERE team_id = $1")
            .bind(id)
            .fetch_one(&mut *w.tx)
            .await?;
        if owned > 0 {
            return Err(StoreError::conflict(
                "id",
                format!("team {id} owns {owned} service(s); reassign them first"),
            ));
        }
        sqlx::query("DELETE FROM team_members WHERE team_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        crate::events::delete_audited(w, "teams", "team", id, actor, now, json!({ "team": team }))
            .await
    }

    /// Adds (`member = true`) or removes a team member; a no-op records nothing.
    pub async fn set_team_member(
        &self,
        team_id: i64,
        user_id: i64,
        member: bool,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Team, StoreError> {
        let team = self.team(team_id).await?;
        let mut w = self.write().await?;
        self.check_exists(&mut w, "users", user_id, "user_id", "user")
            .await?;
        if team.member_ids.contains(&user_id) != member {
            let sql = if member {
                "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)"
            } else {
                "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2"
            };
            sqlx::query(sql)
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *w.tx)
                .await?;
            audit(
                &mut w,
                now,
                actor,
                "team",
                team_id,
                if member {
                    "team.member_added"
                } else {
                    "team.member_removed"
                },
                json!({ "user_id": user_id }),
            )
            .await?;
        }
        w.commit().await?;
        self.team(team_id).await
    }

    /// Creates a service.
    pub async fn create_service(
        &self,
        name: &str,
        description: &str,
        team_id: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Service, StoreError> {
        let mut w = self.write().await?;
        if let Some(t) = team_id {
            self.check_exists(&mut w, "teams", t, "team_id", "team")
                .await?;
        }
        let row = sqlx::query(
            "INSERT INTO services (name, description, team_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id, name, description, team_id, created_at, updated_at",
        )
        .bind(name)
        .bind(description)
        .bind(team_id)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(unique("name", "this service name"))?;
        let created = service(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "service",
            created.id,
            "service.created",
            json!({ "service": created }),
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// Reads a service.
    pub async fn service(&self, id: i64) -> Result<Service, StoreError> {
        let row = self
            .row_by_id(
                "id, name, description, team_id, created_at, updated_at",
                "services",
                id,
                "service",
            )
            .await?;
        service(&row)
    }

    /// All services, by name.
    pub async fn services(&self) -> Result<Vec<Service>, StoreError> {
        let rows = sqlx::query("SELECT id, name, description, team_id, created_at, updated_at FROM services ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(service).collect()
    }

    /// Changes a service.
    pub async fn update_service(
        &self,
        id: i64,
        c: &Named,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Service, StoreError> {
        let old = self.service(id).await?;
        let mut new = old.clone();
        if let Some(n) = &c.name {
            new.name = n.clone();
        }
        if let Some(d) = &c.description {
            new.description = d.clone();
        }
        if let Some(t) = c.team_id {
            new.team_id = t;
        }
        let diff = changes(&old, &new);
        if diff.as_array().is_none_or(|a| a.is_empty()) {
            return Ok(old);
        }
        new.updated_at = now;
        let mut w = self.write().await?;
        if let Some(t) = new.team_id {
            self.check_exists(&mut w, "teams", t, "team_id", "team")
                .await?;
        }
        sqlx::query("UPDATE services SET name = $1, description = $2, team_id = $3, updated_at = $4 WHERE id = $5")
            .bind(&new.name)
            .bind(&new.description)
            .bind(new.team_id)
            .bind(to_millis(now))
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(unique("name", "this service name"))?;
        audit(
            &mut w,
            now,
            actor,
            "service",
            id,
            "service.updated",
            json!({ "changes": diff }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a service; refused while incidents or live integration keys refer to it.
    pub async fn delete_service(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let svc = self.service(id).await?;
        // Events routed to a deleted service could never be stored: senders would retry forever.
        let routed_from = self.keys_routing_to(id).await?;
        if !routed_from.is_empty() {
            return Err(StoreError::conflict(
                "id",
                format!("service {id} is the target of routing rules of integration key(s) {routed_from:?}; change those rules first"),
            ));
        }
        let mut w = self.write().await?;
        let used: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM incident_services WHERE service_id = $1")
                .bind(id)
                .fetch_one(&mut *w.tx)
                .await?;
        if used > 0 {
            return Err(StoreError::conflict(
                "id",
                format!(
                    "service {id} is affected by {used} incident(s) and is kept for their record"
                ),
            ));
        }
        sqlx::query("DELETE FROM heartbeats WHERE service_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("DELETE FROM integration_keys WHERE service_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        crate::events::delete_audited(
            w,
            "services",
            "service",
            id,
            actor,
            now,
            json!({ "service": svc }),
        )
        .await
    }
}
