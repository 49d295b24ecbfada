//! Reads everything a status page shows into one [`PublicStatus`], from the
//! status-page tables alone: what was not published cannot be in it.

use chrono::Duration;
use chrono_tz::Tz;
use sqlx::Row;
use tocsin_core::status_page::public::{
    PageInfo, PublicComponent, PublicGroup, PublicPost, PublicStatus, PublicUpdate, HISTORY_DAYS,
    MAX_OPEN_POSTS, MAX_POSTS,
};
use tocsin_core::status_page::records::Post;
use tocsin_core::status_page::uptime::{self, Span, DAYS_SHOWN};
use tocsin_core::status_page::{Color, ComponentStatus, Indicator, PostKind};
use tocsin_core::time::{to_millis, Timestamp};

use super::posts::{post_row, POST_COLUMNS};
use super::{component_status, id_list, opt_ts, ts};
use crate::{Store, StoreError};

/// A page's address: `https://<domain>` when it has its own domain, else
/// `<base>/status/<slug>` under the server's public URL.
pub fn page_url(base: &str, slug: &str, domain: Option<&str>) -> String {
    match domain {
        Some(d) => format!("https://{d}"),
        None => format!("{}/status/{slug}", base.trim_end_matches('/')),
    }
}

impl Store {
    /// Everything page `page_id` shows at `now`; links are built on `base_url`
    /// (the server's public URL).
    pub async fn public_status(
        &self,
        page_id: i64,
        base_url: &str,
        now: Timestamp,
    ) -> Result<PublicStatus, StoreError> {
        let page = self.status_page(page_id).await?;
        let tz: Tz = page.time_zone.parse().unwrap_or(Tz::UTC);
        let groups = self
            .component_groups(page_id)
            .await?
            .into_iter()
            .map(|g| PublicGroup {
                id: g.id,
                name: g.name,
                description: g.description,
                position: g.position,
                created_at: g.created_at,
                updated_at: g.updated_at,
            })
            .collect();
        let components = self.public_components(page_id, tz, now).await?;
        let since = to_millis(now - Duration::days(HISTORY_DAYS));
        let incidents = self
            .public_posts(page_id, PostKind::Incident, since)
            .await?;
        let maintenances = self
            .public_posts(page_id, PostKind::Maintenance, since)
            .await?;
        let indicator = Indicator::overall(
            components
                .iter()
                .filter(|c| !c.only_show_if_degraded || c.status != ComponentStatus::Operational)
                .map(|c| c.status),
            incidents.iter().filter(|p| p.is_open()).map(|p| p.impact),
            maintenances.iter().any(|p| {
                matches!(
                    p.status,
                    tocsin_core::status_page::PostStatus::InProgress
                        | tocsin_core::status_page::PostStatus::Verifying
                )
            }),
        );
        let brand = Color::parse("brand_color", &page.brand_color)
            .unwrap_or_else(|_| Color::parse("brand_color", "#1f6feb").expect("a colour"));
        Ok(PublicStatus {
            page: PageInfo {
                id: page.id,
                url: page_url(base_url, &page.slug, page.domain.as_deref()),
                slug: page.slug,
                name: page.name,
                description: page.description,
                visibility: page.visibility,
                domain: page.domain,
                time_zone: tz.name().to_string(),
                brand_color: brand.hex(),
                brand_text_color: brand.text_on().hex(),
                support_url: page.support_url,
                logo: page.logo,
                updated_at: page.updated_at,
            },
            groups,
            components,
            incidents,
            maintenances,
            indicator,
            generated_at: now,
        })
    }

    async fn public_components(
        &self,
        page_id: i64,
        tz: Tz,
        now: Timestamp,
    ) -> Result<Vec<PublicComponent>, StoreError> {
        let mut components: Vec<PublicComponent> = self
            .components(page_id)
            .await?
            .into_iter()
            .map(|c| PublicComponent {
                id: c.id,
                group_id: c.group_id,
                name: c.name,
                description: c.description,
                position: c.position,
                status: c.status,
                show_uptime: c.show_uptime,
                only_show_if_degraded: c.only_show_if_degraded,
                uptime: Vec::new(),
                uptime_percent: None,
                created_at: c.created_at,
                updated_at: c.updated_at,
            })
            .collect();
        let ids: Vec<i64> = components
            .iter()
            .filter(|c| c.show_uptime)
            .map(|c| c.id)
            .collect();
        if ids.is_empty() {
            return Ok(components);
        }
        let today = now.with_timezone(&tz).date_naive();
        let first = today - Duration::days(i64::from(DAYS_SHOWN) - 1);
        let window = uptime::start_of_day(tz, first);
        let rows = sqlx::query(&format!(
            "SELECT component_id, status, started_at, ended_at FROM status_component_history \
             WHERE component_id IN ({}) AND (ended_at IS NULL OR ended_at > $1) ORDER BY started_at, id",
            id_list(&ids)
        ))
        .bind(to_millis(window))
        .fetch_all(&self.pool)
        .await?;
        for c in components.iter_mut().filter(|c| c.show_uptime) {
            let mut spans = Vec::new();
            for r in &rows {
                if r.try_get::<i64, _>("component_id")? == c.id {
                    spans.push(Span {
                        status: component_status(&r.try_get::<String, _>("status")?),
                        from: ts(r, "started_at")?,
                        until: opt_ts(r, "ended_at")?,
                    });
                }
            }
            c.uptime = uptime::daily(&spans, tz, now, DAYS_SHOWN);
            c.uptime_percent = uptime::percent(&c.uptime);
        }
        Ok(components)
    }

    // Every open post (a long incident must not drop off the page behind newer
    // short ones), and closed ones that ended after `since`, at most MAX_POSTS;
    // newest first.
    async fn public_posts(
        &self,
        page_id: i64,
        kind: PostKind,
        since: i64,
    ) -> Result<Vec<PublicPost>, StoreError> {
        let mut rows = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM status_posts WHERE page_id = $1 AND kind = $2 \
             AND status NOT IN ('resolved', 'completed') ORDER BY started_at DESC, id DESC LIMIT $3"
        ))
        .bind(page_id)
        .bind(kind.as_str())
        .bind(MAX_OPEN_POSTS as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.extend(
            sqlx::query(&format!(
                "SELECT {POST_COLUMNS} FROM status_posts WHERE page_id = $1 AND kind = $2 \
                 AND status IN ('resolved', 'completed') AND resolved_at >= $3 \
                 ORDER BY started_at DESC, id DESC LIMIT $4"
            ))
            .bind(page_id)
            .bind(kind.as_str())
            .bind(since)
            .bind(MAX_POSTS as i64)
            .fetch_all(&self.pool)
            .await?,
        );
        let mut posts = rows.iter().map(post_row).collect::<Result<Vec<_>, _>>()?;
        posts.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        Ok(self
            .fill_posts(posts)
            .await?
            .into_iter()
            .map(public_post)
            .collect())
    }
}

fn public_post(p: Post) -> PublicPost {
    PublicPost {
        id: p.id,
        kind: p.kind,
        name: p.name,
        status: p.status,
        impact: p.impact,
        created_at: p.created_at,
        updated_at: p.updated_at,
        monitoring_at: p.monitoring_at,
        resolved_at: p.resolved_at,
        started_at: p.started_at,
        scheduled_for: p.scheduled_for,
        scheduled_until: p.scheduled_until,
        component_ids: p.component_ids,
        updates: p
            .updates
            .into_iter()
            .map(|u| PublicUpdate {
                id: u.id,
                status: u.status,
                body: u.body,
                created_at: u.created_at,
                updated_at: u.updated_at,
                display_at: u.display_at,
                affected_components: u.affected_components,
                notify: u.notify,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_page_lives_at_its_domain_or_under_the_public_url() {
        assert_eq!(
            super::page_url("http://t.example:8080/", "acme", None),
            "http://t.example:8080/status/acme"
        );
        assert_eq!(
            super::page_url("http://t.example", "acme", Some("status.acme.com")),
            "https://status.acme.com"
        );
    }
}
