//! Status pages' own settings and logos.

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tocsin_core::status_page::public::LogoInfo;
use tocsin_core::status_page::records::StatusPage;
use tocsin_core::status_page::{Color, Domain, Slug, Visibility};
use tocsin_core::time::{to_millis, Timestamp};

use super::{flag, ts};
use crate::error::unique;
use crate::events::{audit, delete_audited, Actor};
use crate::{Store, StoreError};

const COLUMNS: &str = "id, slug, name, description, visibility, domain, time_zone, brand_color, \
    support_url, allow_subscribers, logo_type, logo_tag, version, created_at, updated_at";

/// A new status page.
#[derive(Debug, Clone)]
pub struct NewStatusPage {
    /// URL slug.
    pub slug: Slug,
    /// Name.
    pub name: String,
    /// Description (markdown).
    pub description: String,
    /// Who may read it.
    pub visibility: Visibility,
    /// Its own host name.
    pub domain: Option<Domain>,
    /// IANA time zone (checked by the caller).
    pub time_zone: chrono_tz::Tz,
    /// Brand colour.
    pub brand_color: Color,
    /// "Contact support" link (checked by the caller).
    pub support_url: Option<String>,
    /// Whether readers may subscribe.
    pub allow_subscribers: bool,
}

/// Changes to a page's settings; `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct StatusPageChanges {
    /// New slug.
    pub slug: Option<Slug>,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New visibility.
    pub visibility: Option<Visibility>,
    /// New domain (`Some(None)` removes it).
    pub domain: Option<Option<Domain>>,
    /// New time zone.
    pub time_zone: Option<chrono_tz::Tz>,
    /// New brand colour.
    pub brand_color: Option<Color>,
    /// New support link (`Some(None)` removes it).
    pub support_url: Option<Option<String>>,
    /// Subscriptions on or off.
    pub allow_subscribers: Option<bool>,
}

/// What a node's cache needs to know to serve a page: how to find it and
/// whether what it rendered is still current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageVersion {
    /// Page id.
    pub id: i64,
    /// Its slug.
    pub slug: String,
    /// Its custom domain.
    pub domain: Option<String>,
    /// Public or internal.
    pub visibility: Visibility,
    /// Bumped by every change to what it shows.
    pub version: i64,
}

pub(crate) fn page(r: &sqlx::any::AnyRow) -> Result<StatusPage, StoreError> {
    let logo = match (
        r.try_get::<Option<String>, _>("logo_type")?,
        r.try_get::<Option<String>, _>("logo_tag")?,
    ) {
        (Some(content_type), Some(tag)) => Some(LogoInfo { content_type, tag }),
        _ => None,
    };
    Ok(StatusPage {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        visibility: visibility(&r.try_get::<String, _>("visibility")?),
        domain: r.try_get("domain")?,
        time_zone: r.try_get("time_zone")?,
        brand_color: r.try_get("brand_color")?,
        support_url: r.try_get("support_url")?,
        allow_subscribers: flag(r, "allow_subscribers")?,
        logo,
        version: r.try_get("version")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

// An unknown stored visibility is treated as internal: never public by mistake.
fn visibility(s: &str) -> Visibility {
    Visibility::parse("visibility", s).unwrap_or(Visibility::Internal)
}

fn page_data(p: &StatusPage) -> serde_json::Value {
    json!({ "slug": p.slug, "name": p.name, "visibility": p.visibility, "domain": p.domain,
            "time_zone": p.time_zone, "brand_color": p.brand_color, "support_url": p.support_url,
            "allow_subscribers": p.allow_subscribers })
}

fn taken(e: sqlx::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("domain") {
        unique("domain", "this domain")(e)
    } else {
        unique("slug", "this slug")(e)
    }
}

impl Store {
    /// Creates a status page.
    pub async fn create_status_page(
        &self,
        p: &NewStatusPage,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StatusPage, StoreError> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO status_pages (slug, name, description, visibility, domain, time_zone, \
             brand_color, support_url, allow_subscribers, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10) RETURNING {COLUMNS}"
        ))
        .bind(p.slug.as_str())
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.visibility.as_str())
        .bind(p.domain.as_ref().map(Domain::as_str))
        .bind(p.time_zone.name())
        .bind(p.brand_color.hex())
        .bind(p.support_url.as_deref())
        .bind(i64::from(p.allow_subscribers))
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(taken)?;
        let created = page(&row)?;
        w.status_changed = true;
        audit(
            &mut w,
            now,
            actor,
            "status_page",
            created.id,
            "status_page.created",
            page_data(&created),
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// Every status page, by name.
    pub async fn status_pages(&self) -> Result<Vec<StatusPage>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM status_pages ORDER BY name, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(page).collect()
    }

    /// One status page.
    pub async fn status_page(&self, id: i64) -> Result<StatusPage, StoreError> {
        page(
            &self
                .row_by_id(COLUMNS, "status_pages", id, "status page")
                .await?,
        )
    }

    /// The page with this slug, if any.
    pub async fn status_page_by_slug(&self, slug: &str) -> Result<Option<StatusPage>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM status_pages WHERE slug = $1"
        ))
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(page)
        .transpose()
    }

    /// Changes a page's settings.
    pub async fn update_status_page(
        &self,
        id: i64,
        c: &StatusPageChanges,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StatusPage, StoreError> {
        let mut w = self.write().await?;
        let old = page(
            &self
                .lock_row_by_id(&mut w, COLUMNS, "status_pages", id, "status page")
                .await?,
        )?;
        let domain = match &c.domain {
            Some(d) => d.as_ref().map(|d| d.as_str().to_string()),
            None => old.domain.clone(),
        };
        let support_url = match &c.support_url {
            Some(u) => u.clone(),
            None => old.support_url.clone(),
        };
        let row = sqlx::query(&format!(
            "UPDATE status_pages SET slug = $1, name = $2, description = $3, visibility = $4, \
             domain = $5, time_zone = $6, brand_color = $7, support_url = $8, allow_subscribers = $9, \
             version = version + 1, updated_at = $10 WHERE id = $11 RETURNING {COLUMNS}"
        ))
        .bind(c.slug.as_ref().map_or(old.slug.as_str(), Slug::as_str))
        .bind(c.name.as_deref().unwrap_or(&old.name))
        .bind(c.description.as_deref().unwrap_or(&old.description))
        .bind(c.visibility.unwrap_or(old.visibility).as_str())
        .bind(domain)
        .bind(c.time_zone.map_or(old.time_zone.clone(), |t| t.name().to_string()))
        .bind(c.brand_color.map_or(old.brand_color.clone(), Color::hex))
        .bind(support_url)
        .bind(i64::from(c.allow_subscribers.unwrap_or(old.allow_subscribers)))
        .bind(to_millis(now))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(taken)?;
        let new = page(&row)?;
        w.status_changed = true;
        audit(
            &mut w,
            now,
            actor,
            "status_page",
            id,
            "status_page.updated",
            json!({ "from": page_data(&old), "to": page_data(&new) }),
        )
        .await?;
        w.commit().await?;
        Ok(new)
    }

    /// Deletes a page with its components, history, posts, templates and subscribers.
    pub async fn delete_status_page(
        &self,
        id: i64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let old = page(
            &self
                .lock_row_by_id(&mut w, COLUMNS, "status_pages", id, "status page")
                .await?,
        )?;
        // Fan-out and maintenance jobs of its posts find nothing and end; the
        // outbox rows go with the page (ON DELETE CASCADE).
        w.status_changed = true;
        delete_audited(
            w,
            "status_pages",
            "status_page",
            id,
            actor,
            now,
            page_data(&old),
        )
        .await
    }

    /// Sets (or with `None` removes) a page's logo: an image already checked by
    /// the caller, at most a few hundred kilobytes.
    pub async fn set_status_page_logo(
        &self,
        id: i64,
        logo: Option<(&str, &[u8])>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StatusPage, StoreError> {
        let mut w = self.write().await?;
        self.lock_row_by_id(&mut w, "id", "status_pages", id, "status page")
            .await?;
        let (content_type, bytes, tag) = match logo {
            Some((t, b)) => {
                let tag = hex::encode(&Sha256::digest(b)[..8]);
                (Some(t.to_string()), Some(b.to_vec()), Some(tag))
            }
            None => (None, None, None),
        };
        let row = sqlx::query(&format!(
            "UPDATE status_pages SET logo = $1, logo_type = $2, logo_tag = $3, version = version + 1, \
             updated_at = $4 WHERE id = $5 RETURNING {COLUMNS}"
        ))
        .bind(bytes)
        .bind(content_type.clone())
        .bind(tag.clone())
        .bind(to_millis(now))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        w.status_changed = true;
        audit(
            &mut w,
            now,
            actor,
            "status_page",
            id,
            "status_page.logo_changed",
            json!({ "content_type": content_type, "tag": tag }),
        )
        .await?;
        w.commit().await?;
        page(&row)
    }

    /// A page's logo: content type and bytes.
    pub async fn status_page_logo(&self, id: i64) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = self
            .row_by_id("logo_type, logo", "status_pages", id, "status page")
            .await?;
        Ok(
            match (
                row.try_get::<Option<String>, _>("logo_type")?,
                row.try_get::<Option<Vec<u8>>, _>("logo")?,
            ) {
                (Some(t), Some(b)) => Some((t, b)),
                _ => None,
            },
        )
    }

    /// Every page's id, slug, domain, visibility and version: one small query a
    /// node's cache runs to learn what changed, whichever node changed it.
    pub async fn status_page_versions(&self) -> Result<Vec<PageVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, slug, domain, visibility, version FROM status_pages ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PageVersion {
                    id: r.try_get("id")?,
                    slug: r.try_get("slug")?,
                    domain: r.try_get("domain")?,
                    visibility: visibility(&r.try_get::<String, _>("visibility")?),
                    version: r.try_get("version")?,
                })
            })
            .collect()
    }
}
