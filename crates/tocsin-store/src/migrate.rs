//! Forward-only migrations, one list per back end, applied in order and recorded
//! with their version so old and new nodes can tell what schema they share.

use sqlx::Executor;

use crate::{Backend, Store, StoreError};

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_foundation.sql")),
    (2, include_str!("../migrations/sqlite/0002_alerts.sql")),
    (
        3,
        include_str!("../migrations/sqlite/0003_change_events.sql"),
    ),
    (4, include_str!("../migrations/sqlite/0004_grouping.sql")),
    (5, include_str!("../migrations/sqlite/0005_suppression.sql")),
    (
        6,
        include_str!("../migrations/sqlite/0006_integrations.sql"),
    ),
    (7, include_str!("../migrations/sqlite/0007_heartbeats.sql")),
    (8, include_str!("../migrations/sqlite/0008_schedules.sql")),
    (
        9,
        include_str!("../migrations/sqlite/0009_calendar_feeds.sql"),
    ),
    (
        10,
        include_str!("../migrations/sqlite/0010_escalation_policies.sql"),
    ),
    (
        11,
        include_str!("../migrations/sqlite/0011_escalation_engine.sql"),
    ),
    (
        12,
        include_str!("../migrations/sqlite/0012_shift_swaps.sql"),
    ),
    (
        13,
        include_str!("../migrations/sqlite/0013_handoff_notifications.sql"),
    ),
    (
        14,
        include_str!("../migrations/sqlite/0014_action_links.sql"),
    ),
    (
        15,
        include_str!("../migrations/sqlite/0015_delivery_state.sql"),
    ),
    (
        16,
        include_str!("../migrations/sqlite/0016_contact_verification.sql"),
    ),
    (
        17,
        include_str!("../migrations/sqlite/0017_web_sessions.sql"),
    ),
    (
        18,
        include_str!("../migrations/sqlite/0018_status_pages.sql"),
    ),
    (19, include_str!("../migrations/sqlite/0019_workflows.sql")),
    (21, include_str!("../migrations/sqlite/0021_runbooks.sql")),
    (
        22,
        include_str!("../migrations/sqlite/0022_postmortems.sql"),
    ),
    (23, include_str!("../migrations/sqlite/0023_analytics.sql")),
    (
        24,
        include_str!("../migrations/sqlite/0024_action_item_trackers.sql"),
    ),
];
const POSTGRES: &[(i64, &str)] = &[
    (
        1,
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (2, include_str!("../migrations/postgres/0002_alerts.sql")),
    (
        3,
        include_str!("../migrations/postgres/0003_change_events.sql"),
    ),
    (4, include_str!("../migrations/postgres/0004_grouping.sql")),
    (
        5,
        include_str!("../migrations/postgres/0005_suppression.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_integrations.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_heartbeats.sql"),
    ),
    (8, include_str!("../migrations/postgres/0008_schedules.sql")),
    (
        9,
        include_str!("../migrations/postgres/0009_calendar_feeds.sql"),
    ),
    (
        10,
        include_str!("../migrations/postgres/0010_escalation_policies.sql"),
    ),
    (
        11,
        include_str!("../migrations/postgres/0011_escalation_engine.sql"),
    ),
    (
        12,
        include_str!("../migrations/postgres/0012_shift_swaps.sql"),
    ),
    (
        13,
        include_str!("../migrations/postgres/0013_handoff_notifications.sql"),
    ),
    (
        14,
        include_str!("../migrations/postgres/0014_action_links.sql"),
    ),
    (
        15,
        include_str!("../migrations/postgres/0015_delivery_state.sql"),
    ),
    (
        16,
        include_str!("../migrations/postgres/0016_contact_verification.sql"),
    ),
    (
        17,
        include_str!("../migrations/postgres/0017_web_sessions.sql"),
    ),
    (
        18,
        include_str!("../migrations/postgres/0018_status_pages.sql"),
    ),
    (
        19,
        include_str!("../migrations/postgres/0019_workflows.sql"),
    ),
    (21, include_str!("../migrations/postgres/0021_runbooks.sql")),
    (
        22,
        include_str!("../migrations/postgres/0022_postmortems.sql"),
    ),
    (
        23,
        include_str!("../migrations/postgres/0023_analytics.sql"),
    ),
    (
        24,
        include_str!("../migrations/postgres/0024_action_item_trackers.sql"),
    ),
];

// Any constant works; it only has to be the same on every node.
const PG_MIGRATION_LOCK: i64 = 0x746f6373696e;

impl Store {
    /// The newest schema version this build knows.
    pub fn latest_schema_version(&self) -> i64 {
        self.migrations().last().map(|m| m.0).unwrap_or(0)
    }

    fn migrations(&self) -> &'static [(i64, &'static str)] {
        match self.backend {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        }
    }

    /// The schema version the database is at (0: empty).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let exists: i64 = match self.backend {
            Backend::Sqlite => sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            ),
            Backend::Postgres => sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'schema_migrations'",
            ),
        }
        .fetch_one(&self.pool)
        .await?;
        if exists == 0 {
            return Ok(0);
        }
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Applies every migration not yet applied; returns the versions applied.
    pub async fn migrate(&self, now_ms: i64) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(PG_MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        let result = self.migrate_locked(&mut conn, now_ms).await;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PG_MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        result
    }

    async fn migrate_locked(
        &self,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
        let current = self.schema_version().await?;
        if current > self.latest_schema_version() {
            return Err(StoreError::Config(format!(
                "the database schema is at version {current}, newer than this build knows ({}); upgrade tocsin",
                self.latest_schema_version()
            )));
        }
        let mut applied = Vec::new();
        for (version, sql) in self.migrations().iter().filter(|(v, _)| *v > current) {
            let mut tx = sqlx::Connection::begin(&mut **conn).await?;
            tx.execute(sqlx::raw_sql(sql)).await?;
            if *version == crate::analytics::FACTS_VERSION {
                crate::analytics::backfill_facts(&mut tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "applied migration");
            applied.push(*version);
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_back_ends_have_the_same_versions_in_order() {
        let versions = |m: &[(i64, &str)]| m.iter().map(|(v, _)| *v).collect::<Vec<_>>();
        assert_eq!(versions(super::SQLITE), versions(super::POSTGRES));
        let v = versions(super::SQLITE);
        // 20 is taken by a change made alongside 21.
        assert!(
            v.windows(2)
                .all(|w| w[1] == w[0] + 1 || (w[0], w[1]) == (19, 21))
                && v[0] == 1,
            "versions are 1, 2, 3, …: {v:?}"
        );
    }
}
