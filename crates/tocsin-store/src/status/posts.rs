//! Published incidents and scheduled maintenances ("posts"), their updates and
//! templates, and the maintenance job that reminds, starts and completes a
//! maintenance on time.
//!
//! Publishing is one transaction: the post, its first update, the component
//! status changes it makes (with their history), the page's version, the
//! events, and when subscribers are to be told, the fan-out job.

use chrono::Duration;
use serde_json::json;
use sqlx::Row;
use tocsin_core::status_page::public::AffectedComponent;
use tocsin_core::status_page::records::{Post, Template, Update};
use tocsin_core::status_page::{
    ComponentStatus, Impact, MaintenancePlan, MaintenanceStep, PostKind, PostStatus,
};
use tocsin_core::time::{to_millis, Timestamp};
use tocsin_core::Invalid;

use super::components::set_status;
use super::deliveries::{schedule_fanout, Fanout};
use super::{
    bump_page, flag, id_list, impact, lock_page, lock_page_of, opt_ts, post_kind, post_status, ts,
};
use crate::events::{append, Actor, NewEvent};
use crate::jobs::HandedNotification;
use crate::tx::WriteTx;
use crate::{Store, StoreError};

pub(super) const POST_COLUMNS: &str =
    "id, page_id, kind, incident_id, name, status, impact, started_at, \
    monitoring_at, resolved_at, scheduled_for, scheduled_until, auto_start, auto_complete, \
    remind_minutes, reminded, notify, created_by, created_at, updated_at";
const UPDATE_COLUMNS: &str =
    "id, post_id, status, body, affected, notify, display_at, created_by, created_at, updated_at";
const TEMPLATE_COLUMNS: &str =
    "id, page_id, kind, name, title, body, status, created_at, updated_at";

/// What Tocsin writes when a maintenance starts by itself.
pub const STARTED_BODY: &str =
    "Scheduled maintenance is currently in progress. We will provide updates as necessary.";
/// What Tocsin writes when a maintenance completes by itself.
pub const COMPLETED_BODY: &str = "The scheduled maintenance has been completed.";

/// A component named in a post or update: its new status, or `None` to only
/// link it (a maintenance announced ahead, a component mentioned as affected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentChange {
    /// The component (on the post's page).
    pub component_id: i64,
    /// Its new status.
    pub status: Option<ComponentStatus>,
}

/// A post to publish.
#[derive(Debug, Clone)]
pub struct NewPost {
    /// Incident or maintenance.
    pub kind: PostKind,
    /// The internal incident it is about.
    pub incident_id: Option<i64>,
    /// Title.
    pub name: String,
    /// First status (checked against `kind` by the caller).
    pub status: PostStatus,
    /// Impact; `None`: from the worst component status given (maintenance for maintenances).
    pub impact: Option<Impact>,
    /// The first update's text (markdown).
    pub body: String,
    /// Components it affects.
    pub components: Vec<ComponentChange>,
    /// Tell subscribers now (and, for maintenances, at the automatic steps).
    pub notify: bool,
    /// Time shown for the first update; `None`: now.
    pub display_at: Option<Timestamp>,
    /// Maintenance: planned start.
    pub scheduled_for: Option<Timestamp>,
    /// Maintenance: planned end.
    pub scheduled_until: Option<Timestamp>,
    /// Maintenance: start by itself.
    pub auto_start: bool,
    /// Maintenance: complete by itself.
    pub auto_complete: bool,
    /// Maintenance: remind subscribers this many minutes ahead.
    pub remind_minutes: Option<i64>,
}

/// An update to a post.
#[derive(Debug, Clone)]
pub struct NewUpdate {
    /// The status it gives (the store checks it fits the post's kind, as `status`).
    pub status: String,
    /// What it says (markdown).
    pub body: String,
    /// Component changes; components the post did not name yet are added to it.
    pub components: Vec<ComponentChange>,
    /// Tell subscribers.
    pub notify: bool,
    /// Time shown; `None`: now.
    pub display_at: Option<Timestamp>,
    /// A new title, if it changes with this update.
    pub name: Option<String>,
    /// A new impact, if it changes with this update.
    pub impact: Option<Impact>,
}

/// Changes to a post that are not an update (a typo, a rescheduled maintenance).
#[derive(Debug, Clone, Default)]
pub struct PostChanges {
    /// New title.
    pub name: Option<String>,
    /// New impact.
    pub impact: Option<Impact>,
    /// Link to an internal incident (`Some(None)`: unlink).
    pub incident_id: Option<Option<i64>>,
    /// New planned start.
    pub scheduled_for: Option<Timestamp>,
    /// New planned end.
    pub scheduled_until: Option<Timestamp>,
    /// Start by itself, or not.
    pub auto_start: Option<bool>,
    /// Complete by itself, or not.
    pub auto_complete: Option<bool>,
    /// Reminder (`Some(None)`: none).
    pub remind_minutes: Option<Option<i64>>,
    /// Notify at the automatic steps, or not.
    pub notify: Option<bool>,
    /// The components it affects, replacing the list (statuses unchanged).
    pub component_ids: Option<Vec<i64>>,
}

/// A new template.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// For incidents or maintenances.
    pub kind: PostKind,
    /// Name (unique on the page).
    pub name: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Suggested status (checked against `kind` by the caller).
    pub status: Option<PostStatus>,
}

/// Changes to a template; `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct TemplateChanges {
    /// New name.
    pub name: Option<String>,
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// New suggested status (`Some(None)`: none).
    pub status: Option<Option<PostStatus>>,
}

pub(super) fn post_row(r: &sqlx::any::AnyRow) -> Result<Post, StoreError> {
    Ok(Post {
        id: r.try_get("id")?,
        page_id: r.try_get("page_id")?,
        kind: post_kind(&r.try_get::<String, _>("kind")?),
        incident_id: r.try_get("incident_id")?,
        name: r.try_get("name")?,
        status: post_status(&r.try_get::<String, _>("status")?),
        impact: impact(&r.try_get::<String, _>("impact")?),
        started_at: ts(r, "started_at")?,
        monitoring_at: opt_ts(r, "monitoring_at")?,
        resolved_at: opt_ts(r, "resolved_at")?,
        scheduled_for: opt_ts(r, "scheduled_for")?,
        scheduled_until: opt_ts(r, "scheduled_until")?,
        auto_start: flag(r, "auto_start")?,
        auto_complete: flag(r, "auto_complete")?,
        remind_minutes: r.try_get("remind_minutes")?,
        notify: flag(r, "notify")?,
        component_ids: Vec::new(),
        updates: Vec::new(),
        created_by: r.try_get("created_by")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub(crate) fn update_row(r: &sqlx::any::AnyRow) -> Result<Update, StoreError> {
    let affected: String = r.try_get("affected")?;
    Ok(Update {
        id: r.try_get("id")?,
        post_id: r.try_get("post_id")?,
        status: post_status(&r.try_get::<String, _>("status")?),
        body: r.try_get("body")?,
        affected_components: serde_json::from_str(&affected).unwrap_or_default(),
        notify: flag(r, "notify")?,
        display_at: ts(r, "display_at")?,
        created_by: r.try_get("created_by")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn template_row(r: &sqlx::any::AnyRow) -> Result<Template, StoreError> {
    Ok(Template {
        id: r.try_get("id")?,
        page_id: r.try_get("page_id")?,
        kind: post_kind(&r.try_get::<String, _>("kind")?),
        name: r.try_get("name")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        status: r
            .try_get::<Option<String>, _>("status")?
            .and_then(|s| PostStatus::from_stored(&s)),
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn plan_of(p: &Post) -> Option<MaintenancePlan> {
    Some(MaintenancePlan {
        status: p.status,
        scheduled_for: p.scheduled_for?,
        scheduled_until: p.scheduled_until?,
        remind_before: p.remind_minutes.map(Duration::minutes),
        reminded: false,
        auto_start: p.auto_start,
        auto_complete: p.auto_complete,
    })
}

/// Whether a reminder `remind_minutes` before `scheduled_for` would already be
/// late at `now`: then it is not sent at all (the announcement itself is news
/// enough), rather than seconds after it.
fn reminder_passed(
    scheduled_for: Option<Timestamp>,
    remind_minutes: Option<i64>,
    now: Timestamp,
) -> bool {
    match (scheduled_for, remind_minutes) {
        (Some(at), Some(m)) => at - Duration::minutes(m) <= now,
        _ => false,
    }
}

fn job_key(post_id: i64) -> String {
    format!("status_maintenance:{post_id}")
}

/// Records an event about a post, on its internal incident's timeline when it has one.
async fn post_event(
    w: &mut WriteTx,
    post: &Post,
    kind: &'static str,
    actor: &Actor,
    now: Timestamp,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    append(
        w,
        NewEvent {
            at: now,
            actor,
            entity: "status_post",
            entity_id: post.id,
            incident_id: post.incident_id,
            kind,
            data,
        },
    )
    .await?;
    Ok(())
}

impl Store {
    /// Checks every component named is on `page_id`; `field` names the list,
    /// `suffix` the id's key within an item (`.component_id`), if items are objects.
    async fn check_components(
        &self,
        w: &mut WriteTx,
        page_id: i64,
        ids: &[i64],
        field: &str,
        suffix: &str,
    ) -> Result<(), StoreError> {
        for (i, &id) in ids.iter().enumerate() {
            let page: Option<i64> =
                sqlx::query_scalar("SELECT page_id FROM status_components WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *w.tx)
                    .await?;
            if page != Some(page_id) {
                return Err(Invalid::new(
                    format!("{field}[{i}]{suffix}"),
                    format!("{id} is not a component of this status page"),
                )
                .into());
            }
        }
        Ok(())
    }

    async fn check_incident(&self, w: &mut WriteTx, id: Option<i64>) -> Result<(), StoreError> {
        let Some(id) = id else { return Ok(()) };
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *w.tx)
            .await?;
        if n == 0 {
            return Err(
                Invalid::new("incident_id", format!("incident {id} does not exist")).into(),
            );
        }
        Ok(())
    }

    async fn link_components(
        &self,
        w: &mut WriteTx,
        post_id: i64,
        ids: &[i64],
    ) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query(
                "INSERT INTO status_post_components (post_id, component_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(post_id)
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(())
    }

    async fn post_in(&self, w: &mut WriteTx, id: i64) -> Result<Post, StoreError> {
        let row = self
            .lock_row_by_id(w, POST_COLUMNS, "status_posts", id, "status post")
            .await?;
        let mut p = post_row(&row)?;
        p.component_ids = sqlx::query_scalar(
            "SELECT component_id FROM status_post_components WHERE post_id = $1 ORDER BY component_id",
        )
        .bind(id)
        .fetch_all(&mut *w.tx)
        .await?;
        Ok(p)
    }

    /// Components of the post to set back to operational when it closes. An
    /// incident releases those not operational and not held by another open
    /// post (an open incident, or a maintenance under way); a maintenance
    /// releases only those still under maintenance and not held by another
    /// maintenance under way — a component an incident broke meanwhile keeps
    /// the incident's status.
    async fn components_to_release(
        &self,
        w: &mut WriteTx,
        post: &Post,
        named: &[ComponentChange],
    ) -> Result<Vec<i64>, StoreError> {
        let held_by = match post.kind {
            PostKind::Incident => {
                "p.status NOT IN ('resolved', 'completed') \
                 AND NOT (p.kind = 'maintenance' AND p.status = 'scheduled')"
            }
            PostKind::Maintenance => {
                "p.kind = 'maintenance' AND p.status IN ('in_progress', 'verifying')"
            }
        };
        let mut out = Vec::new();
        for &cid in &post.component_ids {
            if named
                .iter()
                .any(|c| c.component_id == cid && c.status.is_some())
            {
                continue;
            }
            let current = self.component_status_in(w, cid).await?;
            let releasable = match post.kind {
                PostKind::Incident => current != ComponentStatus::Operational,
                PostKind::Maintenance => current == ComponentStatus::UnderMaintenance,
            };
            if !releasable {
                continue;
            }
            let held: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM status_post_components pc JOIN status_posts p ON p.id = pc.post_id \
                 WHERE pc.component_id = $1 AND p.id <> $2 AND {held_by}"
            ))
            .bind(cid)
            .bind(post.id)
            .fetch_one(&mut *w.tx)
            .await?;
            if held == 0 {
                out.push(cid);
            }
        }
        Ok(out)
    }

    async fn component_status_in(
        &self,
        w: &mut WriteTx,
        component_id: i64,
    ) -> Result<ComponentStatus, StoreError> {
        let s: Option<String> =
            sqlx::query_scalar("SELECT status FROM status_components WHERE id = $1")
                .bind(component_id)
                .fetch_optional(&mut *w.tx)
                .await?;
        Ok(s.map_or(ComponentStatus::Operational, |s| {
            super::component_status(&s)
        }))
    }

    /// Applies an update to a locked post inside `w`: component changes (with
    /// the defaults of the new status), the post's own fields, the update row,
    /// the fan-out, the maintenance job. Returns the update's id.
    #[allow(clippy::too_many_arguments)]
    async fn apply_update(
        &self,
        w: &mut WriteTx,
        post: &Post,
        status: PostStatus,
        body: &str,
        named: &[ComponentChange],
        notify: bool,
        display_at: Timestamp,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut changes: Vec<(i64, ComponentStatus)> = named
            .iter()
            .filter_map(|c| c.status.map(|s| (c.component_id, s)))
            .collect();
        // Defaults for components the update does not name.
        // A component named without a status takes the default like the rest.
        let unnamed = |cid: &i64| {
            !named
                .iter()
                .any(|c| c.component_id == *cid && c.status.is_some())
        };
        match status {
            // Maintenance puts working components under maintenance; one an
            // incident broke keeps its (worse) status, and so its downtime.
            PostStatus::InProgress => {
                let unnamed_ids: Vec<i64> = post
                    .component_ids
                    .iter()
                    .copied()
                    .filter(|c| unnamed(c))
                    .collect();
                for cid in unnamed_ids {
                    if self.component_status_in(w, cid).await? == ComponentStatus::Operational {
                        changes.push((cid, ComponentStatus::UnderMaintenance));
                    }
                }
            }
            PostStatus::Resolved | PostStatus::Completed => {
                let release = self.components_to_release(w, post, named).await?;
                changes.extend(
                    release
                        .into_iter()
                        .map(|c| (c, ComponentStatus::Operational)),
                );
            }
            _ => {}
        }
        let mut affected: Vec<AffectedComponent> = Vec::new();
        for (cid, s) in changes {
            if let Some(a) = set_status(w, cid, s, actor, post.incident_id, now).await? {
                affected.push(a);
            }
        }
        let named_ids: Vec<i64> = named.iter().map(|c| c.component_id).collect();
        self.link_components(w, post.id, &named_ids).await?;
        let at = to_millis(now);
        let monitoring_at = match (post.monitoring_at, status) {
            (None, PostStatus::Monitoring) => Some(at),
            (m, _) => m.map(to_millis),
        };
        let resolved_at = if status.is_closed() {
            Some(post.resolved_at.map_or(at, to_millis))
        } else {
            None
        };
        sqlx::query(
            "UPDATE status_posts SET status = $1, monitoring_at = $2, resolved_at = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(monitoring_at)
        .bind(resolved_at)
        .bind(at)
        .bind(post.id)
        .execute(&mut *w.tx)
        .await?;
        let update_id: i64 = sqlx::query_scalar(
            "INSERT INTO status_updates (post_id, status, body, affected, notify, display_at, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(post.id)
        .bind(status.as_str())
        .bind(body)
        .bind(serde_json::to_string(&affected).unwrap_or_else(|_| "[]".into()))
        .bind(i64::from(notify))
        .bind(to_millis(display_at))
        .bind(actor.user_id)
        .bind(at)
        .fetch_one(&mut *w.tx)
        .await?;
        if notify {
            schedule_fanout(
                w,
                self.backend,
                post.page_id,
                post.id,
                Fanout::Update(update_id),
                now,
            )
            .await?;
        }
        bump_page(w, post.page_id, now).await?;
        let mut after = post.clone();
        after.status = status;
        self.arm_maintenance(w, &after, now).await?;
        Ok(update_id)
    }

    /// Schedules (or cancels) the maintenance job for a post's next automatic step.
    async fn arm_maintenance(
        &self,
        w: &mut WriteTx,
        post: &Post,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let reminded: i64 = sqlx::query_scalar("SELECT reminded FROM status_posts WHERE id = $1")
            .bind(post.id)
            .fetch_one(&mut *w.tx)
            .await?;
        let next = plan_of(post).and_then(|p| {
            MaintenancePlan {
                reminded: reminded != 0,
                ..p
            }
            .next_step()
        });
        match next {
            Some((_, at)) if post.kind == PostKind::Maintenance => {
                crate::jobs::schedule(
                    w,
                    self.backend,
                    "status_maintenance",
                    &job_key(post.id),
                    at,
                    &json!({ "post_id": post.id }),
                    now,
                )
                .await
            }
            _ => {
                sqlx::query("DELETE FROM jobs WHERE job_key = $1")
                    .bind(job_key(post.id))
                    .execute(&mut *w.tx)
                    .await?;
                Ok(())
            }
        }
    }

    /// Publishes an incident or a scheduled maintenance on a page.
    pub async fn publish_post(
        &self,
        page_id: i64,
        p: &NewPost,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Post, StoreError> {
        let mut w = self.write().await?;
        lock_page(self, &mut w, page_id).await?;
        let component_ids: Vec<i64> = p.components.iter().map(|c| c.component_id).collect();
        // A maintenance's components are a list of ids, an incident's a list of objects.
        let suffix = match p.kind {
            PostKind::Incident => ".component_id",
            PostKind::Maintenance => "",
        };
        self.check_components(&mut w, page_id, &component_ids, "components", suffix)
            .await?;
        self.check_incident(&mut w, p.incident_id).await?;
        let (started_at, impact) = match p.kind {
            PostKind::Incident => {
                let worst = p
                    .components
                    .iter()
                    .filter_map(|c| c.status)
                    .reduce(ComponentStatus::worst);
                let derived = worst.map_or(Impact::None, Impact::of_status);
                (p.display_at.unwrap_or(now), p.impact.unwrap_or(derived))
            }
            PostKind::Maintenance => (
                p.scheduled_for.ok_or_else(|| {
                    Invalid::new("scheduled_for", "a maintenance needs its start")
                })?,
                Impact::Maintenance,
            ),
        };
        let at = to_millis(now);
        let row = sqlx::query(&format!(
            "INSERT INTO status_posts (page_id, kind, incident_id, name, status, impact, started_at, \
             scheduled_for, scheduled_until, auto_start, auto_complete, remind_minutes, reminded, notify, \
             created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $16, $13, $14, $15, $15) RETURNING {POST_COLUMNS}"
        ))
        .bind(page_id)
        .bind(p.kind.as_str())
        .bind(p.incident_id)
        .bind(&p.name)
        // The first update sets the status; until then it is the starting one.
        .bind(PostStatus::allowed(p.kind)[0].as_str())
        .bind(impact.as_str())
        .bind(to_millis(started_at))
        .bind(p.scheduled_for.map(to_millis))
        .bind(p.scheduled_until.map(to_millis))
        .bind(i64::from(p.auto_start))
        .bind(i64::from(p.auto_complete))
        .bind(p.remind_minutes)
        .bind(i64::from(p.notify))
        .bind(actor.user_id)
        .bind(at)
        .bind(i64::from(reminder_passed(p.scheduled_for, p.remind_minutes, now)))
        .fetch_one(&mut *w.tx)
        .await?;
        let mut post = post_row(&row)?;
        self.link_components(&mut w, post.id, &component_ids)
            .await?;
        post.component_ids = component_ids;
        post_event(
            &mut w,
            &post,
            "status_post.published",
            actor,
            now,
            json!({ "page_id": page_id, "kind": p.kind, "name": p.name, "status": p.status,
                    "impact": impact, "components": post.component_ids }),
        )
        .await?;
        self.apply_update(
            &mut w,
            &post,
            p.status,
            &p.body,
            &p.components,
            p.notify,
            p.display_at.unwrap_or(now),
            actor,
            now,
        )
        .await?;
        let id = post.id;
        w.commit().await?;
        self.post(id).await
    }

    /// Adds an update to a post: a new status, words, component changes.
    pub async fn add_post_update(
        &self,
        post_id: i64,
        u: &NewUpdate,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Post, StoreError> {
        let mut w = self.write().await?;
        lock_page_of(self, &mut w, "status_posts", post_id, "status post").await?;
        let post = self.post_in(&mut w, post_id).await?;
        let status = PostStatus::parse("status", post.kind, &u.status)?;
        let named_ids: Vec<i64> = u.components.iter().map(|c| c.component_id).collect();
        self.check_components(
            &mut w,
            post.page_id,
            &named_ids,
            "components",
            ".component_id",
        )
        .await?;
        if u.name.is_some() || u.impact.is_some() {
            sqlx::query("UPDATE status_posts SET name = $1, impact = $2 WHERE id = $3")
                .bind(u.name.as_deref().unwrap_or(&post.name))
                .bind(u.impact.unwrap_or(post.impact).as_str())
                .bind(post_id)
                .execute(&mut *w.tx)
                .await?;
        }
        let mut with_named = post.clone();
        for c in &u.components {
            if !with_named.component_ids.contains(&c.component_id) {
                with_named.component_ids.push(c.component_id);
            }
        }
        let update_id = self
            .apply_update(
                &mut w,
                &with_named,
                status,
                &u.body,
                &u.components,
                u.notify,
                u.display_at.unwrap_or(now),
                actor,
                now,
            )
            .await?;
        post_event(&mut w, &post, "status_post.updated", actor, now,
            json!({ "update_id": update_id, "from": post.status, "to": status, "notify": u.notify })).await?;
        w.commit().await?;
        self.post(post_id).await
    }

    /// Changes a post without publishing an update.
    pub async fn update_post(
        &self,
        post_id: i64,
        c: &PostChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Post, StoreError> {
        let mut w = self.write().await?;
        lock_page_of(self, &mut w, "status_posts", post_id, "status post").await?;
        let old = self.post_in(&mut w, post_id).await?;
        if let Some(incident) = &c.incident_id {
            self.check_incident(&mut w, *incident).await?;
        }
        let scheduled_for = c.scheduled_for.or(old.scheduled_for);
        let scheduled_until = c.scheduled_until.or(old.scheduled_until);
        if old.kind == PostKind::Maintenance
            && (c.scheduled_for.is_some() || c.scheduled_until.is_some())
        {
            if let (Some(from), Some(until)) = (scheduled_for, scheduled_until) {
                tocsin_core::status_page::maintenance_window(from, until)?;
            }
        } else if c.scheduled_for.is_some() || c.scheduled_until.is_some() {
            return Err(Invalid::new("scheduled_for", "only a maintenance has a schedule").into());
        }
        if let Some(ids) = &c.component_ids {
            self.check_components(&mut w, old.page_id, ids, "component_ids", "")
                .await?;
            sqlx::query("DELETE FROM status_post_components WHERE post_id = $1")
                .bind(post_id)
                .execute(&mut *w.tx)
                .await?;
            self.link_components(&mut w, post_id, ids).await?;
        }
        // A maintenance moved, or with a new reminder, reminds again — unless
        // that reminder's time has already passed.
        let reminded = if c.scheduled_for.is_some() || c.remind_minutes.is_some() {
            i64::from(reminder_passed(
                scheduled_for,
                c.remind_minutes.unwrap_or(old.remind_minutes),
                now,
            ))
        } else {
            -1
        };
        let started_at = match (old.kind, c.scheduled_for) {
            (PostKind::Maintenance, Some(from)) => from,
            _ => old.started_at,
        };
        sqlx::query(
            "UPDATE status_posts SET name = $1, impact = $2, incident_id = $3, scheduled_for = $4, \
             scheduled_until = $5, auto_start = $6, auto_complete = $7, remind_minutes = $8, notify = $9, \
             started_at = $10, reminded = CASE WHEN $11 < 0 THEN reminded ELSE $11 END, updated_at = $12 WHERE id = $13",
        )
        .bind(c.name.as_deref().unwrap_or(&old.name))
        .bind(c.impact.unwrap_or(old.impact).as_str())
        .bind(c.incident_id.unwrap_or(old.incident_id))
        .bind(scheduled_for.map(to_millis))
        .bind(scheduled_until.map(to_millis))
        .bind(i64::from(c.auto_start.unwrap_or(old.auto_start)))
        .bind(i64::from(c.auto_complete.unwrap_or(old.auto_complete)))
        .bind(c.remind_minutes.unwrap_or(old.remind_minutes))
        .bind(i64::from(c.notify.unwrap_or(old.notify)))
        .bind(to_millis(started_at))
        .bind(reminded)
        .bind(to_millis(now))
        .bind(post_id)
        .execute(&mut *w.tx)
        .await?;
        let new = self.post_in(&mut w, post_id).await?;
        bump_page(&mut w, old.page_id, now).await?;
        self.arm_maintenance(&mut w, &new, now).await?;
        // The event goes on the timeline of the incident it is (now) about.
        post_event(
            &mut w,
            &new,
            "status_post.edited",
            actor,
            now,
            json!({ "name": new.name, "impact": new.impact, "incident_id": new.incident_id,
                    "scheduled_for": new.scheduled_for, "scheduled_until": new.scheduled_until,
                    "component_ids": new.component_ids }),
        )
        .await?;
        w.commit().await?;
        self.post(post_id).await
    }

    /// Corrects an update's text or shown time (subscribers are not told again).
    pub async fn edit_post_update(
        &self,
        update_id: i64,
        body: Option<&str>,
        display_at: Option<Timestamp>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Post, StoreError> {
        let mut w = self.write().await?;
        let page: Option<i64> = sqlx::query_scalar(
            "SELECT p.page_id FROM status_updates u JOIN status_posts p ON p.id = u.post_id WHERE u.id = $1",
        )
        .bind(update_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let page =
            page.ok_or_else(|| StoreError::not_found(format!("status update {update_id}")))?;
        lock_page(self, &mut w, page).await?;
        let row = self
            .lock_row_by_id(
                &mut w,
                UPDATE_COLUMNS,
                "status_updates",
                update_id,
                "status update",
            )
            .await?;
        let old = update_row(&row)?;
        let post = self.post_in(&mut w, old.post_id).await?;
        sqlx::query(
            "UPDATE status_updates SET body = $1, display_at = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(body.unwrap_or(&old.body))
        .bind(to_millis(display_at.unwrap_or(old.display_at)))
        .bind(to_millis(now))
        .bind(update_id)
        .execute(&mut *w.tx)
        .await?;
        bump_page(&mut w, post.page_id, now).await?;
        post_event(
            &mut w,
            &post,
            "status_post.update_edited",
            actor,
            now,
            json!({ "update_id": update_id }),
        )
        .await?;
        w.commit().await?;
        self.post(post.id).await
    }

    /// Deletes a post and its updates (its component statuses stay as they are).
    pub async fn delete_post(
        &self,
        post_id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        lock_page_of(self, &mut w, "status_posts", post_id, "status post").await?;
        let post = self.post_in(&mut w, post_id).await?;
        bump_page(&mut w, post.page_id, now).await?;
        sqlx::query("DELETE FROM jobs WHERE job_key = $1")
            .bind(job_key(post_id))
            .execute(&mut *w.tx)
            .await?;
        post_event(
            &mut w,
            &post,
            "status_post.deleted",
            actor,
            now,
            json!({ "page_id": post.page_id, "name": post.name }),
        )
        .await?;
        sqlx::query("DELETE FROM status_posts WHERE id = $1")
            .bind(post_id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    pub(super) async fn fill_posts(&self, mut posts: Vec<Post>) -> Result<Vec<Post>, StoreError> {
        if posts.is_empty() {
            return Ok(posts);
        }
        let ids: Vec<i64> = posts.iter().map(|p| p.id).collect();
        let links = sqlx::query(&format!(
            "SELECT post_id, component_id FROM status_post_components WHERE post_id IN ({}) ORDER BY component_id",
            id_list(&ids)
        ))
        .fetch_all(&self.pool)
        .await?;
        for r in links {
            let pid: i64 = r.try_get("post_id")?;
            if let Some(p) = posts.iter_mut().find(|p| p.id == pid) {
                p.component_ids.push(r.try_get("component_id")?);
            }
        }
        let rows = sqlx::query(&format!(
            "SELECT {UPDATE_COLUMNS} FROM status_updates WHERE post_id IN ({}) ORDER BY display_at DESC, id DESC",
            id_list(&ids)
        ))
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let u = update_row(&r)?;
            if let Some(p) = posts.iter_mut().find(|p| p.id == u.post_id) {
                p.updates.push(u);
            }
        }
        Ok(posts)
    }

    /// One post with its updates.
    pub async fn post(&self, id: i64) -> Result<Post, StoreError> {
        let p = post_row(
            &self
                .row_by_id(POST_COLUMNS, "status_posts", id, "status post")
                .await?,
        )?;
        Ok(self.fill_posts(vec![p]).await?.remove(0))
    }

    /// A page's posts of `kind` (all kinds with `None`), newest first, at most
    /// `limit`; with `open_only`, only those not resolved or completed.
    pub async fn posts(
        &self,
        page_id: i64,
        kind: Option<PostKind>,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<Post>, StoreError> {
        self.status_page(page_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM status_posts WHERE page_id = $1 AND ($2 = '' OR kind = $2) \
             AND ($3 = 0 OR status NOT IN ('resolved', 'completed')) ORDER BY started_at DESC, id DESC LIMIT $4"
        ))
        .bind(page_id)
        .bind(kind.map_or("", PostKind::as_str))
        .bind(i64::from(open_only))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let posts = rows.iter().map(post_row).collect::<Result<Vec<_>, _>>()?;
        self.fill_posts(posts).await
    }

    /// The posts about an internal incident, on every page, newest first.
    pub async fn posts_for_incident(&self, incident_id: i64) -> Result<Vec<Post>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM status_posts WHERE incident_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        let posts = rows.iter().map(post_row).collect::<Result<Vec<_>, _>>()?;
        self.fill_posts(posts).await
    }

    /// Runs a maintenance's automatic step due at `now` (reminder, start,
    /// completion) inside the job's transaction; returns when the next is due.
    pub(crate) async fn run_status_maintenance_job(
        &self,
        w: &mut WriteTx,
        payload: &str,
        now: Timestamp,
    ) -> Result<(Option<Timestamp>, Vec<HandedNotification>), StoreError> {
        let post_id = serde_json::from_str::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v["post_id"].as_i64())
            .ok_or_else(|| StoreError::Config(format!("bad maintenance job payload {payload}")))?;
        // The runner holds this job's row, and a request changing the post takes
        // the page, then the post, then this row (to re-arm it): waiting here for
        // the page would close the circle. Skip a page someone is changing and
        // look again in a moment.
        let page_id: Option<i64> =
            sqlx::query_scalar("SELECT page_id FROM status_posts WHERE id = $1")
                .bind(post_id)
                .fetch_optional(&mut *w.tx)
                .await?;
        let Some(page_id) = page_id else {
            return Ok((None, Vec::new()));
        };
        let free: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM status_pages WHERE id = $1{}",
            match self.backend {
                crate::Backend::Sqlite => "",
                crate::Backend::Postgres => " FOR NO KEY UPDATE SKIP LOCKED",
            }
        ))
        .bind(page_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        if free.is_none() {
            return Ok((Some(now + Duration::seconds(1)), Vec::new()));
        }
        let post = match self.post_in(w, post_id).await {
            Ok(p) => p,
            Err(StoreError::NotFound { .. }) => return Ok((None, Vec::new())),
            Err(e) => return Err(e),
        };
        let reminded: i64 = sqlx::query_scalar("SELECT reminded FROM status_posts WHERE id = $1")
            .bind(post_id)
            .fetch_one(&mut *w.tx)
            .await?;
        let Some(plan) = plan_of(&post).map(|p| MaintenancePlan {
            reminded: reminded != 0,
            ..p
        }) else {
            return Ok((None, Vec::new()));
        };
        let Some((step, due)) = plan.next_step() else {
            return Ok((None, Vec::new()));
        };
        if due > now {
            return Ok((Some(due), Vec::new()));
        }
        let system = Actor::system();
        match step {
            MaintenanceStep::Remind => {
                sqlx::query("UPDATE status_posts SET reminded = 1 WHERE id = $1")
                    .bind(post_id)
                    .execute(&mut *w.tx)
                    .await?;
                // A reminder that comes due after the start (the server was
                // down) is not sent late: the start's own update says it all.
                if post.notify && plan.reminder_still_useful(now) {
                    schedule_fanout(
                        w,
                        self.backend,
                        post.page_id,
                        post.id,
                        Fanout::Reminder(to_millis(plan.scheduled_for)),
                        now,
                    )
                    .await?;
                }
                post_event(
                    w,
                    &post,
                    "status_post.reminded",
                    &system,
                    now,
                    json!({ "sent": post.notify && plan.reminder_still_useful(now) }),
                )
                .await?;
            }
            MaintenanceStep::Start => {
                self.apply_update(
                    w,
                    &post,
                    PostStatus::InProgress,
                    STARTED_BODY,
                    &[],
                    post.notify,
                    now,
                    &system,
                    now,
                )
                .await?;
                post_event(
                    w,
                    &post,
                    "status_post.updated",
                    &system,
                    now,
                    json!({ "from": post.status, "to": PostStatus::InProgress, "automatic": true }),
                )
                .await?;
            }
            MaintenanceStep::Complete => {
                self.apply_update(
                    w,
                    &post,
                    PostStatus::Completed,
                    COMPLETED_BODY,
                    &[],
                    post.notify,
                    now,
                    &system,
                    now,
                )
                .await?;
                post_event(
                    w,
                    &post,
                    "status_post.updated",
                    &system,
                    now,
                    json!({ "from": post.status, "to": PostStatus::Completed, "automatic": true }),
                )
                .await?;
            }
        }
        // The runner moves the job to the next step's time (apply_update may have
        // re-armed it already; the same row either way), or deletes it.
        let after = self.post_in(w, post_id).await?;
        let reminded: i64 = sqlx::query_scalar("SELECT reminded FROM status_posts WHERE id = $1")
            .bind(post_id)
            .fetch_one(&mut *w.tx)
            .await?;
        let next_step = plan_of(&after)
            .and_then(|p| {
                MaintenancePlan {
                    reminded: reminded != 0,
                    ..p
                }
                .next_step()
            })
            .map(|(_, at)| at);
        Ok((next_step, Vec::new()))
    }

    /// Creates a template.
    pub async fn create_status_template(
        &self,
        page_id: i64,
        t: &NewTemplate,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Template, StoreError> {
        let mut w = self.write().await?;
        lock_page(self, &mut w, page_id).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO status_templates (page_id, kind, name, title, body, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {TEMPLATE_COLUMNS}"
        ))
        .bind(page_id)
        .bind(t.kind.as_str())
        .bind(&t.name)
        .bind(&t.title)
        .bind(&t.body)
        .bind(t.status.map(PostStatus::as_str))
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(crate::error::unique("name", "this template name"))?;
        let created = template_row(&row)?;
        crate::events::audit(
            &mut w,
            now,
            actor,
            "status_template",
            created.id,
            "status_template.created",
            json!({ "page_id": page_id, "name": created.name }),
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// A page's templates, by name.
    pub async fn status_templates(&self, page_id: i64) -> Result<Vec<Template>, StoreError> {
        self.status_page(page_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM status_templates WHERE page_id = $1 ORDER BY name, id"
        ))
        .bind(page_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(template_row).collect()
    }

    /// One template.
    pub async fn status_template(&self, id: i64) -> Result<Template, StoreError> {
        template_row(
            &self
                .row_by_id(TEMPLATE_COLUMNS, "status_templates", id, "status template")
                .await?,
        )
    }

    /// Changes a template.
    pub async fn update_status_template(
        &self,
        id: i64,
        c: &TemplateChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Template, StoreError> {
        let mut w = self.write().await?;
        lock_page_of(self, &mut w, "status_templates", id, "status template").await?;
        let old = template_row(
            &self
                .lock_row_by_id(
                    &mut w,
                    TEMPLATE_COLUMNS,
                    "status_templates",
                    id,
                    "status template",
                )
                .await?,
        )?;
        if let Some(Some(s)) = c.status {
            PostStatus::parse("status", old.kind, s.as_str())?;
        }
        let row = sqlx::query(&format!(
            "UPDATE status_templates SET name = $1, title = $2, body = $3, status = $4, updated_at = $5 \
             WHERE id = $6 RETURNING {TEMPLATE_COLUMNS}"
        ))
        .bind(c.name.as_deref().unwrap_or(&old.name))
        .bind(c.title.as_deref().unwrap_or(&old.title))
        .bind(c.body.as_deref().unwrap_or(&old.body))
        .bind(c.status.unwrap_or(old.status).map(PostStatus::as_str))
        .bind(to_millis(now))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(crate::error::unique("name", "this template name"))?;
        let new = template_row(&row)?;
        crate::events::audit(
            &mut w,
            now,
            actor,
            "status_template",
            id,
            "status_template.updated",
            json!({ "name": new.name }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a template.
    pub async fn delete_status_template(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        lock_page_of(self, &mut w, "status_templates", id, "status template").await?;
        let old = template_row(
            &self
                .lock_row_by_id(
                    &mut w,
                    TEMPLATE_COLUMNS,
                    "status_templates",
                    id,
                    "status template",
                )
                .await?,
        )?;
        crate::events::delete_audited(
            w,
            "status_templates",
            "status_template",
            id,
            actor,
            now,
            json!({ "page_id": old.page_id, "name": old.name }),
        )
        .await
    }
}
