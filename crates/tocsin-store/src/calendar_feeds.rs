//! iCalendar feeds of on-call shifts at secret-token URLs: one per schedule and
//! one per user, created on first request. The token is random, shown once, and
//! kept only as its SHA-256 (like integration keys); rotating replaces it, so the
//! old URL stops working at once.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tocsin_core::time::{from_millis, to_millis, Timestamp};

use crate::events::{audit, Actor};
use crate::secrets::{hash_secret, random};
use crate::{Store, StoreError};

/// Whose shifts a feed shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedOwner {
    /// Every shift of one schedule.
    Schedule(i64),
    /// One user's shifts across all schedules.
    User(i64),
}

/// A calendar feed, without its token.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CalendarFeed {
    /// Feed id.
    pub id: i64,
    /// `schedule` or `user`.
    pub kind: String,
    /// The schedule, for a schedule's feed.
    pub schedule_id: Option<i64>,
    /// The user, for a user's feed.
    pub user_id: Option<i64>,
    /// First characters of the token, to tell URLs apart.
    pub prefix: String,
    /// When the feed was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When its token was last replaced, if ever.
    pub rotated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl CalendarFeed {
    /// Whose shifts it shows.
    pub fn owner(&self) -> FeedOwner {
        match (self.schedule_id, self.user_id) {
            (Some(s), _) => FeedOwner::Schedule(s),
            (None, Some(u)) => FeedOwner::User(u),
            // The table's CHECK constraints make this unreachable.
            (None, None) => FeedOwner::User(0),
        }
    }
}

const COLUMNS: &str = "id, kind, schedule_id, user_id, prefix, created_at, rotated_at";
/// Characters of a feed token (≈ 285 bits): nothing to brute-force.
const TOKEN_LEN: usize = 48;
const PREFIX_LEN: usize = 6;

fn feed(r: &sqlx::any::AnyRow) -> Result<CalendarFeed, StoreError> {
    Ok(CalendarFeed {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        schedule_id: r.try_get("schedule_id")?,
        user_id: r.try_get("user_id")?,
        prefix: r.try_get("prefix")?,
        created_at: from_millis(r.try_get("created_at")?),
        rotated_at: r.try_get::<Option<i64>, _>("rotated_at")?.map(from_millis),
    })
}

fn owner_column(owner: FeedOwner) -> (&'static str, &'static str, i64) {
    match owner {
        FeedOwner::Schedule(id) => ("schedule", "schedule_id", id),
        FeedOwner::User(id) => ("user", "user_id", id),
    }
}

impl Store {
    /// The feed of a schedule or user, if one was created.
    pub async fn calendar_feed(
        &self,
        owner: FeedOwner,
    ) -> Result<Option<CalendarFeed>, StoreError> {
        let (_, column, id) = owner_column(owner);
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM calendar_feeds WHERE {column} = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(feed).transpose()
    }

    /// Creates the feed of a schedule or user, or gives the existing one a new
    /// token (the old one stops working). Returns the feed and its token, which
    /// is never shown again.
    pub async fn rotate_calendar_feed(
        &self,
        owner: FeedOwner,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(CalendarFeed, String), StoreError> {
        match owner {
            FeedOwner::Schedule(id) => drop(self.schedule(id).await?),
            FeedOwner::User(id) => drop(self.user(id).await?),
        }
        let (kind, column, owner_id) = owner_column(owner);
        let token = random(TOKEN_LEN);
        let hash = hash_secret(&token);
        let prefix = &token[..PREFIX_LEN];
        let mut w = self.write().await?;
        let existing: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM calendar_feeds WHERE {column} = $1"
        ))
        .bind(owner_id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let (row, event) = match existing {
            Some(id) => (
                sqlx::query(&format!(
                    "UPDATE calendar_feeds SET token_hash = $1, prefix = $2, rotated_at = $3 \
                     WHERE id = $4 RETURNING {COLUMNS}"
                ))
                .bind(&hash)
                .bind(prefix)
                .bind(to_millis(now))
                .bind(id)
                .fetch_one(&mut *w.tx)
                .await?,
                "calendar_feed.rotated",
            ),
            None => (
                sqlx::query(&format!(
                    "INSERT INTO calendar_feeds (kind, {column}, token_hash, prefix, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
                ))
                .bind(kind)
                .bind(owner_id)
                .bind(&hash)
                .bind(prefix)
                .bind(to_millis(now))
                .fetch_one(&mut *w.tx)
                .await?,
                "calendar_feed.created",
            ),
        };
        let record = feed(&row)?;
        audit(
            &mut w,
            now,
            actor,
            "calendar_feed",
            record.id,
            event,
            json!({
                "kind": kind,
                "schedule_id": record.schedule_id,
                "user_id": record.user_id,
                "prefix": record.prefix,
            }),
        )
        .await?;
        w.commit().await?;
        Ok((record, token))
    }

    /// The feed a token opens, if the token is current.
    pub async fn calendar_feed_by_token(
        &self,
        token: &str,
    ) -> Result<Option<CalendarFeed>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM calendar_feeds WHERE token_hash = $1"
        ))
        .bind(hash_secret(token))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(feed).transpose()
    }
}
