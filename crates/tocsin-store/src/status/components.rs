//! Components, their groups, their status history and the services linked to
//! them. A status change closes the component's open history row and opens the
//! next in the same transaction, so the history has neither gaps nor overlaps.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::status_page::public::AffectedComponent;
use tocsin_core::status_page::records::{Component, ComponentGroup, StatusPeriod};
use tocsin_core::status_page::{proposed_status, ComponentStatus};
use tocsin_core::time::{to_millis, Timestamp};
use utoipa::ToSchema;

use super::{bump_page, component_status, flag, id_list, lock_page_of, opt_ts, ts};
use crate::events::{append, audit, Actor, NewEvent};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

const GROUP_COLUMNS: &str = "id, page_id, name, description, position, created_at, updated_at";
const COLUMNS: &str = "id, page_id, group_id, name, description, position, status, show_uptime, \
    only_show_if_degraded, created_at, updated_at";

/// A new component group.
#[derive(Debug, Clone)]
pub struct NewComponentGroup {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Order; `None`: after the others.
    pub position: Option<i64>,
}

/// Changes to a group; `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct GroupChanges {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New order.
    pub position: Option<i64>,
}

/// A new component.
#[derive(Debug, Clone)]
pub struct NewComponent {
    /// Its group (on the same page).
    pub group_id: Option<i64>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Order; `None`: after the others.
    pub position: Option<i64>,
    /// Status to start in.
    pub status: ComponentStatus,
    /// Show its uptime bars.
    pub show_uptime: bool,
    /// Show it only while not operational.
    pub only_show_if_degraded: bool,
    /// Linked services.
    pub service_ids: Vec<i64>,
}

/// Changes to a component; `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct ComponentChanges {
    /// New group (`Some(None)`: no group).
    pub group_id: Option<Option<i64>>,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New order.
    pub position: Option<i64>,
    /// New status (recorded in the history).
    pub status: Option<ComponentStatus>,
    /// Uptime bars on or off.
    pub show_uptime: Option<bool>,
    /// Shown only when degraded, or always.
    pub only_show_if_degraded: Option<bool>,
    /// The linked services, replacing the old list.
    pub service_ids: Option<Vec<i64>>,
}

/// A status an incident suggests for a component linked to one of its services.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusProposal {
    /// The page.
    pub page_id: i64,
    /// The page's name.
    pub page_name: String,
    /// The component.
    pub component_id: i64,
    /// Its name.
    pub component_name: String,
    /// Its status now.
    pub current: ComponentStatus,
    /// The status the incident's severity suggests.
    pub proposed: ComponentStatus,
}

fn group(r: &sqlx::any::AnyRow) -> Result<ComponentGroup, StoreError> {
    Ok(ComponentGroup {
        id: r.try_get("id")?,
        page_id: r.try_get("page_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        position: r.try_get("position")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub(crate) fn component(r: &sqlx::any::AnyRow) -> Result<Component, StoreError> {
    Ok(Component {
        id: r.try_get("id")?,
        page_id: r.try_get("page_id")?,
        group_id: r.try_get("group_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        position: r.try_get("position")?,
        status: component_status(&r.try_get::<String, _>("status")?),
        show_uptime: flag(r, "show_uptime")?,
        only_show_if_degraded: flag(r, "only_show_if_degraded")?,
        service_ids: Vec::new(),
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn component_data(c: &Component) -> serde_json::Value {
    json!({ "page_id": c.page_id, "group_id": c.group_id, "name": c.name, "position": c.position,
            "status": c.status, "show_uptime": c.show_uptime,
            "only_show_if_degraded": c.only_show_if_degraded, "service_ids": c.service_ids })
}

/// Sets a component's status inside `w`: closes its history row, opens the
/// next, and appends `status_component.status_changed` (on `incident_id`'s
/// timeline too, when a post about an internal incident made the change).
/// Returns the change, or `None` when the status was already `status`.
pub(crate) async fn set_status(
    w: &mut WriteTx,
    component_id: i64,
    status: ComponentStatus,
    actor: &Actor,
    incident_id: Option<i64>,
    now: Timestamp,
) -> Result<Option<AffectedComponent>, StoreError> {
    let row = sqlx::query("SELECT name, status FROM status_components WHERE id = $1")
        .bind(component_id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("status component {component_id}")))?;
    let old = component_status(&row.try_get::<String, _>("status")?);
    let name: String = row.try_get("name")?;
    if old == status {
        return Ok(None);
    }
    // `now` was read before this transaction waited for its lock; a change that
    // committed meanwhile may have begun later. Never start before it, so the
    // history's periods follow each other without overlapping.
    let open: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(started_at) FROM status_component_history WHERE component_id = $1",
    )
    .bind(component_id)
    .fetch_one(&mut *w.tx)
    .await?;
    let at = to_millis(now).max(open.unwrap_or(i64::MIN));
    sqlx::query("UPDATE status_components SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(at)
        .bind(component_id)
        .execute(&mut *w.tx)
        .await?;
    sqlx::query(
        "UPDATE status_component_history SET ended_at = $1 WHERE component_id = $2 AND ended_at IS NULL",
    )
    .bind(at)
    .bind(component_id)
    .execute(&mut *w.tx)
    .await?;
    sqlx::query(
        "INSERT INTO status_component_history (component_id, status, started_at) VALUES ($1, $2, $3)",
    )
    .bind(component_id)
    .bind(status.as_str())
    .bind(at)
    .execute(&mut *w.tx)
    .await?;
    append(
        w,
        NewEvent {
            at: now,
            actor,
            entity: "status_component",
            entity_id: component_id,
            incident_id,
            kind: "status_component.status_changed",
            data: json!({ "name": name, "from": old, "to": status }),
        },
    )
    .await?;
    Ok(Some(AffectedComponent {
        component_id,
        name,
        old_status: old,
        new_status: status,
    }))
}

impl Store {
    async fn next_position(
        &self,
        w: &mut WriteTx,
        table: &str,
        page_id: i64,
    ) -> Result<i64, StoreError> {
        let max: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT MAX(position) FROM {table} WHERE page_id = $1"
        ))
        .bind(page_id)
        .fetch_one(&mut *w.tx)
        .await?;
        Ok(max.map_or(1, |m| m + 1))
    }

    /// Checks that `group_id` is a group of `page_id`.
    async fn check_group(
        &self,
        w: &mut WriteTx,
        page_id: i64,
        group_id: Option<i64>,
    ) -> Result<(), StoreError> {
        let Some(g) = group_id else { return Ok(()) };
        let found: Option<i64> =
            sqlx::query_scalar("SELECT page_id FROM status_component_groups WHERE id = $1")
                .bind(g)
                .fetch_optional(&mut *w.tx)
                .await?;
        match found {
            Some(p) if p == page_id => Ok(()),
            _ => Err(StoreError::Invalid(tocsin_core::Invalid::new(
                "group_id",
                format!("{g} is not a component group of this page"),
            ))),
        }
    }

    async fn link_services(
        &self,
        w: &mut WriteTx,
        component_id: i64,
        service_ids: &[i64],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM status_component_services WHERE component_id = $1")
            .bind(component_id)
            .execute(&mut *w.tx)
            .await?;
        for (i, s) in service_ids.iter().enumerate() {
            let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM services WHERE id = $1")
                .bind(s)
                .fetch_one(&mut *w.tx)
                .await?;
            if exists == 0 {
                return Err(StoreError::Invalid(tocsin_core::Invalid::new(
                    format!("service_ids[{i}]"),
                    format!("service {s} does not exist"),
                )));
            }
            sqlx::query(
                "INSERT INTO status_component_services (component_id, service_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(component_id)
            .bind(s)
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(())
    }

    /// Creates a component group on a page.
    pub async fn create_component_group(
        &self,
        page_id: i64,
        g: &NewComponentGroup,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<ComponentGroup, StoreError> {
        let mut w = self.write().await?;
        bump_page(&mut w, page_id, now).await?;
        let position = match g.position {
            Some(p) => p,
            None => {
                self.next_position(&mut w, "status_component_groups", page_id)
                    .await?
            }
        };
        let row = sqlx::query(&format!(
            "INSERT INTO status_component_groups (page_id, name, description, position, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {GROUP_COLUMNS}"
        ))
        .bind(page_id)
        .bind(&g.name)
        .bind(&g.description)
        .bind(position)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let created = group(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "status_component_group",
            created.id,
            "status_component_group.created",
            json!({ "page_id": page_id, "name": created.name, "position": created.position }),
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// A page's component groups, in order.
    pub async fn component_groups(&self, page_id: i64) -> Result<Vec<ComponentGroup>, StoreError> {
        self.status_page(page_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {GROUP_COLUMNS} FROM status_component_groups WHERE page_id = $1 ORDER BY position, id"
        ))
        .bind(page_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(group).collect()
    }

    /// One component group.
    pub async fn component_group(&self, id: i64) -> Result<ComponentGroup, StoreError> {
        group(
            &self
                .row_by_id(
                    GROUP_COLUMNS,
                    "status_component_groups",
                    id,
                    "component group",
                )
                .await?,
        )
    }

    /// Changes a component group.
    pub async fn update_component_group(
        &self,
        id: i64,
        c: &GroupChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<ComponentGroup, StoreError> {
        let mut w = self.write().await?;
        lock_page_of(
            self,
            &mut w,
            "status_component_groups",
            id,
            "component group",
        )
        .await?;
        let old = group(
            &self
                .lock_row_by_id(
                    &mut w,
                    GROUP_COLUMNS,
                    "status_component_groups",
                    id,
                    "component group",
                )
                .await?,
        )?;
        bump_page(&mut w, old.page_id, now).await?;
        let row = sqlx::query(&format!(
            "UPDATE status_component_groups SET name = $1, description = $2, position = $3, updated_at = $4 \
             WHERE id = $5 RETURNING {GROUP_COLUMNS}"
        ))
        .bind(c.name.as_deref().unwrap_or(&old.name))
        .bind(c.description.as_deref().unwrap_or(&old.description))
        .bind(c.position.unwrap_or(old.position))
        .bind(to_millis(now))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        let new = group(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "status_component_group",
            id,
            "status_component_group.updated",
            json!({ "name": new.name, "description": new.description, "position": new.position }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a component group; its components stay, ungrouped.
    pub async fn delete_component_group(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        lock_page_of(
            self,
            &mut w,
            "status_component_groups",
            id,
            "component group",
        )
        .await?;
        let old = group(
            &self
                .lock_row_by_id(
                    &mut w,
                    GROUP_COLUMNS,
                    "status_component_groups",
                    id,
                    "component group",
                )
                .await?,
        )?;
        bump_page(&mut w, old.page_id, now).await?;
        sqlx::query("UPDATE status_components SET group_id = NULL WHERE group_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        crate::events::delete_audited(
            w,
            "status_component_groups",
            "status_component_group",
            id,
            actor,
            now,
            json!({ "page_id": old.page_id, "name": old.name }),
        )
        .await
    }

    /// Creates a component; its history starts now, in its first status.
    pub async fn create_component(
        &self,
        page_id: i64,
        c: &NewComponent,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Component, StoreError> {
        let mut w = self.write().await?;
        bump_page(&mut w, page_id, now).await?;
        self.check_group(&mut w, page_id, c.group_id).await?;
        let position = match c.position {
            Some(p) => p,
            None => {
                self.next_position(&mut w, "status_components", page_id)
                    .await?
            }
        };
        let row = sqlx::query(&format!(
            "INSERT INTO status_components (page_id, group_id, name, description, position, status, \
             show_uptime, only_show_if_degraded, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {COLUMNS}"
        ))
        .bind(page_id)
        .bind(c.group_id)
        .bind(&c.name)
        .bind(&c.description)
        .bind(position)
        .bind(c.status.as_str())
        .bind(i64::from(c.show_uptime))
        .bind(i64::from(c.only_show_if_degraded))
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let mut created = component(&row)?;
        sqlx::query(
            "INSERT INTO status_component_history (component_id, status, started_at) VALUES ($1, $2, $3)",
        )
        .bind(created.id)
        .bind(c.status.as_str())
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?;
        self.link_services(&mut w, created.id, &c.service_ids)
            .await?;
        created.service_ids = c.service_ids.clone();
        audit(
            &mut w,
            now,
            actor,
            "status_component",
            created.id,
            "status_component.created",
            component_data(&created),
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    async fn with_services(&self, mut cs: Vec<Component>) -> Result<Vec<Component>, StoreError> {
        if cs.is_empty() {
            return Ok(cs);
        }
        let ids: Vec<i64> = cs.iter().map(|c| c.id).collect();
        let rows = sqlx::query(&format!(
            "SELECT component_id, service_id FROM status_component_services \
             WHERE component_id IN ({}) ORDER BY service_id",
            id_list(&ids)
        ))
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let cid: i64 = r.try_get("component_id")?;
            if let Some(c) = cs.iter_mut().find(|c| c.id == cid) {
                c.service_ids.push(r.try_get("service_id")?);
            }
        }
        Ok(cs)
    }

    /// A page's components, in display order (groups first by their position,
    /// then ungrouped ones).
    pub async fn components(&self, page_id: i64) -> Result<Vec<Component>, StoreError> {
        self.status_page(page_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM status_components WHERE page_id = $1 ORDER BY position, id"
        ))
        .bind(page_id)
        .fetch_all(&self.pool)
        .await?;
        let cs = rows.iter().map(component).collect::<Result<Vec<_>, _>>()?;
        self.with_services(cs).await
    }

    /// One component.
    pub async fn component(&self, id: i64) -> Result<Component, StoreError> {
        let c = component(
            &self
                .row_by_id(COLUMNS, "status_components", id, "status component")
                .await?,
        )?;
        Ok(self.with_services(vec![c]).await?.remove(0))
    }

    /// Changes a component; a new status is recorded in its history.
    pub async fn update_component(
        &self,
        id: i64,
        c: &ComponentChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Component, StoreError> {
        let mut w = self.write().await?;
        lock_page_of(self, &mut w, "status_components", id, "status component").await?;
        let old = component(
            &self
                .lock_row_by_id(&mut w, COLUMNS, "status_components", id, "status component")
                .await?,
        )?;
        bump_page(&mut w, old.page_id, now).await?;
        let group_id = c.group_id.unwrap_or(old.group_id);
        self.check_group(&mut w, old.page_id, group_id).await?;
        sqlx::query(
            "UPDATE status_components SET group_id = $1, name = $2, description = $3, position = $4, \
             show_uptime = $5, only_show_if_degraded = $6, updated_at = $7 WHERE id = $8",
        )
        .bind(group_id)
        .bind(c.name.as_deref().unwrap_or(&old.name))
        .bind(c.description.as_deref().unwrap_or(&old.description))
        .bind(c.position.unwrap_or(old.position))
        .bind(i64::from(c.show_uptime.unwrap_or(old.show_uptime)))
        .bind(i64::from(c.only_show_if_degraded.unwrap_or(old.only_show_if_degraded)))
        .bind(to_millis(now))
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        if let Some(ids) = &c.service_ids {
            self.link_services(&mut w, id, ids).await?;
        }
        if let Some(status) = c.status {
            set_status(&mut w, id, status, actor, None, now).await?;
        }
        let settings_changed = c.group_id.is_some()
            || c.name.is_some()
            || c.description.is_some()
            || c.position.is_some()
            || c.show_uptime.is_some()
            || c.only_show_if_degraded.is_some()
            || c.service_ids.is_some();
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM status_components WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        let mut new = component(&row)?;
        new.service_ids = match &c.service_ids {
            Some(ids) => ids.clone(),
            None => sqlx::query_scalar(
                "SELECT service_id FROM status_component_services WHERE component_id = $1 ORDER BY service_id",
            )
            .bind(id)
            .fetch_all(&mut *w.tx)
            .await?,
        };
        if settings_changed {
            audit(
                &mut w,
                now,
                actor,
                "status_component",
                id,
                "status_component.updated",
                component_data(&new),
            )
            .await?;
        }
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a component and its history; posts that mentioned it keep the
    /// name in their updates' component changes.
    pub async fn delete_component(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        lock_page_of(self, &mut w, "status_components", id, "status component").await?;
        let old = component(
            &self
                .lock_row_by_id(&mut w, COLUMNS, "status_components", id, "status component")
                .await?,
        )?;
        bump_page(&mut w, old.page_id, now).await?;
        crate::events::delete_audited(
            w,
            "status_components",
            "status_component",
            id,
            actor,
            now,
            json!({ "page_id": old.page_id, "name": old.name }),
        )
        .await
    }

    /// A component's status history, oldest first; with `since`, only what
    /// lasted into or began after it.
    pub async fn component_history(
        &self,
        id: i64,
        since: Option<Timestamp>,
    ) -> Result<Vec<StatusPeriod>, StoreError> {
        self.row_by_id("id", "status_components", id, "status component")
            .await?;
        let rows = sqlx::query(
            "SELECT status, started_at, ended_at FROM status_component_history \
             WHERE component_id = $1 AND (ended_at IS NULL OR ended_at > $2) ORDER BY started_at, id",
        )
        .bind(id)
        .bind(since.map_or(i64::MIN, to_millis))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatusPeriod {
                    status: component_status(&r.try_get::<String, _>("status")?),
                    started_at: ts(r, "started_at")?,
                    ended_at: opt_ts(r, "ended_at")?,
                })
            })
            .collect()
    }

    /// What an incident suggests for the components linked to its services,
    /// from its severity ([`proposed_status`]), on every page.
    pub async fn status_proposals(
        &self,
        incident_id: i64,
        settings: &IncidentSettings,
    ) -> Result<Vec<StatusProposal>, StoreError> {
        let row = sqlx::query("SELECT severity FROM incidents WHERE id = $1")
            .bind(incident_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("incident {incident_id}")))?;
        let severity: String = row.try_get("severity")?;
        let proposed = proposed_status(settings.severity_rank(&severity));
        let rows = sqlx::query(
            "SELECT DISTINCT c.id, c.name, c.status, c.position, p.id AS page_id, p.name AS page_name \
             FROM status_components c \
             JOIN status_component_services cs ON cs.component_id = c.id \
             JOIN incident_services i ON i.service_id = cs.service_id \
             JOIN status_pages p ON p.id = c.page_id \
             WHERE i.incident_id = $1 ORDER BY p.name, c.position, c.id",
        )
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatusProposal {
                    page_id: r.try_get("page_id")?,
                    page_name: r.try_get("page_name")?,
                    component_id: r.try_get("id")?,
                    component_name: r.try_get("name")?,
                    current: component_status(&r.try_get::<String, _>("status")?),
                    proposed,
                })
            })
            .collect()
    }
}
