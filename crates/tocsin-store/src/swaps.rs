//! Shift-swap requests: a user on call asks to be covered for a time range,
//! another user accepts, and the acceptance creates an override for them over that
//! range, in the same transaction, through the same code path as any override.
//!
//! What was decided is stored (`open`, `accepted`, `declined`, `cancelled`); an
//! open request whose start has passed reads as `expired`, computed from `now` at
//! every read, so no timer has to flip it and nothing can accept it late.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tocsin_core::schedule::final_shifts;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;
use utoipa::ToSchema;

use crate::events::{audit, Actor};
use crate::schedules::ScheduleOverride;
use crate::tx::WriteTx;
use crate::{Store, StoreError};

const COLUMNS: &str =
    "id, schedule_id, requested_by, starts_at, ends_at, note, offered_to, status, \
     accepted_by, accepted_at, override_id, closed_by, closed_at, created_at, updated_at";

/// Longest range one request may ask cover for.
pub const MAX_SWAP_DAYS: i64 = 31;
/// Longest note, in bytes.
pub const MAX_SWAP_NOTE: usize = 2000;

/// Where a shift-swap request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwapStatus {
    /// Waiting for someone to accept.
    Open,
    /// Someone accepted; their override covers the range.
    Accepted,
    /// The user it was offered to said no.
    Declined,
    /// The requester (or an admin) withdrew it.
    Cancelled,
    /// Nobody accepted before its start.
    Expired,
}

impl SwapStatus {
    /// Every status, in the order of the docs.
    pub const ALL: [SwapStatus; 5] = [
        SwapStatus::Open,
        SwapStatus::Accepted,
        SwapStatus::Declined,
        SwapStatus::Cancelled,
        SwapStatus::Expired,
    ];

    /// The wire and column name.
    pub fn as_str(self) -> &'static str {
        match self {
            SwapStatus::Open => "open",
            SwapStatus::Accepted => "accepted",
            SwapStatus::Declined => "declined",
            SwapStatus::Cancelled => "cancelled",
            SwapStatus::Expired => "expired",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<SwapStatus> {
        SwapStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What a user may do to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapAction {
    /// Take the shift over.
    Accept,
    /// Say no to a request offered to you.
    Decline,
    /// Withdraw your own request.
    Cancel,
}

impl SwapAction {
    fn verb(self) -> &'static str {
        match self {
            SwapAction::Accept => "accepted",
            SwapAction::Decline => "declined",
            SwapAction::Cancel => "cancelled",
        }
    }

    /// The status the request moves to.
    fn to(self) -> SwapStatus {
        match self {
            SwapAction::Accept => SwapStatus::Accepted,
            SwapAction::Decline => SwapStatus::Declined,
            SwapAction::Cancel => SwapStatus::Cancelled,
        }
    }
}

/// A new request, as asked by its requester.
#[derive(Debug, Clone)]
pub struct NewSwapRequest {
    /// The schedule the requester is on call in.
    pub schedule_id: i64,
    /// Start of the range to be covered (inclusive).
    pub starts_at: Timestamp,
    /// End of it (exclusive).
    pub ends_at: Timestamp,
    /// Why, for the people asked.
    pub note: String,
    /// The one user asked, if only one is.
    pub offered_to: Option<i64>,
}

impl NewSwapRequest {
    /// Checks what needs no database: an ordered, future range of at most
    /// [`MAX_SWAP_DAYS`] and a note of at most [`MAX_SWAP_NOTE`] bytes.
    pub fn check(&self, requester: i64, now: Timestamp) -> Result<(), Invalid> {
        if self.ends_at <= self.starts_at {
            return Err(Invalid::new("ends_at", "must be after starts_at"));
        }
        if self.starts_at <= now {
            return Err(Invalid::new(
                "starts_at",
                "must be in the future: a swap covers shifts yet to come",
            ));
        }
        if self.ends_at - self.starts_at > chrono::Duration::days(MAX_SWAP_DAYS) {
            return Err(Invalid::new(
                "ends_at",
                format!("a swap covers at most {MAX_SWAP_DAYS} days"),
            ));
        }
        if self.note.len() > MAX_SWAP_NOTE {
            return Err(Invalid::new(
                "note",
                format!("at most {MAX_SWAP_NOTE} bytes"),
            ));
        }
        if self.offered_to == Some(requester) {
            return Err(Invalid::new(
                "offered_to",
                "cannot be yourself: offer it to someone who can cover",
            ));
        }
        Ok(())
    }
}

/// A stored shift-swap request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwapRequest {
    /// Request id.
    pub id: i64,
    /// The schedule.
    pub schedule_id: i64,
    /// Who asks to be covered.
    pub requested_by: i64,
    /// Start of the range to cover (inclusive).
    pub starts_at: chrono::DateTime<chrono::Utc>,
    /// End of it (exclusive).
    pub ends_at: chrono::DateTime<chrono::Utc>,
    /// Why.
    pub note: String,
    /// The one user asked; null when anyone may accept.
    pub offered_to: Option<i64>,
    /// Where it stands; `expired` when still open at its start.
    pub status: SwapStatus,
    /// Who accepted.
    pub accepted_by: Option<i64>,
    /// When.
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The override the acceptance created (it may since have been deleted).
    pub override_id: Option<i64>,
    /// Who declined or cancelled it.
    pub closed_by: Option<i64>,
    /// When.
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl SwapRequest {
    /// Why `user_id` (an admin when `admin`) may not do `action`, if they may not.
    /// Only the fields fixed at creation decide it, so the answer holds until the
    /// status changes; the status is checked under the row lock.
    pub fn refusal(&self, action: SwapAction, user_id: i64, admin: bool) -> Option<String> {
        let id = self.id;
        match action {
            SwapAction::Accept if user_id == self.requested_by => Some(format!(
                "swap request {id} is your own; someone else has to accept it"
            )),
            SwapAction::Accept => self
                .offered_to
                .filter(|o| *o != user_id)
                .map(|o| format!("swap request {id} is offered to user {o} only")),
            SwapAction::Decline => match self.offered_to {
                Some(o) if o == user_id => None,
                Some(o) => Some(format!(
                    "only user {o}, to whom swap request {id} is offered, may decline it"
                )),
                None => Some(format!(
                    "swap request {id} is offered to no one in particular; there is nothing to decline"
                )),
            },
            SwapAction::Cancel if user_id == self.requested_by || admin => None,
            SwapAction::Cancel => Some(format!(
                "only the requester or an admin may cancel swap request {id}"
            )),
        }
    }
}

/// The status as of `now`: open past its start reads as expired.
fn effective(stored: SwapStatus, starts_at: Timestamp, now: Timestamp) -> SwapStatus {
    if stored == SwapStatus::Open && now >= starts_at {
        SwapStatus::Expired
    } else {
        stored
    }
}

fn swap_request(r: &sqlx::any::AnyRow, now: Timestamp) -> Result<SwapRequest, StoreError> {
    let status: String = r.try_get("status")?;
    let stored = SwapStatus::parse(&status).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown swap request status `{status}`").into())
    })?;
    let starts_at = from_millis(r.try_get("starts_at")?);
    let opt_time =
        |c: &str| -> Result<_, StoreError> { Ok(r.try_get::<Option<i64>, _>(c)?.map(from_millis)) };
    Ok(SwapRequest {
        id: r.try_get("id")?,
        schedule_id: r.try_get("schedule_id")?,
        requested_by: r.try_get("requested_by")?,
        starts_at,
        ends_at: from_millis(r.try_get("ends_at")?),
        note: r.try_get("note")?,
        offered_to: r.try_get("offered_to")?,
        status: effective(stored, starts_at, now),
        accepted_by: r.try_get("accepted_by")?,
        accepted_at: opt_time("accepted_at")?,
        override_id: r.try_get("override_id")?,
        closed_by: r.try_get("closed_by")?,
        closed_at: opt_time("closed_at")?,
        created_at: from_millis(r.try_get("created_at")?),
        updated_at: from_millis(r.try_get("updated_at")?),
    })
}

/// The conflict for a request that is no longer open.
fn not_open(r: &SwapRequest, action: SwapAction) -> StoreError {
    let detail = match r.status {
        SwapStatus::Expired => format!(" (nobody accepted it before its start, {})", r.starts_at),
        _ => String::new(),
    };
    StoreError::conflict(
        "status",
        format!(
            "swap request {} is {}{detail}; only an open request can be {}",
            r.id,
            r.status.as_str(),
            action.verb()
        ),
    )
}

impl Store {
    /// Asks for cover: `requester` must hold a final shift of the schedule within
    /// the range, and `offered_to`, if given, must be an active user who can
    /// accept (not a viewer).
    pub async fn create_swap_request(
        &self,
        r: &NewSwapRequest,
        requester: &Actor,
        now: Timestamp,
    ) -> Result<SwapRequest, StoreError> {
        let requester_id = requester
            .user_id
            .ok_or_else(|| Invalid::new("requested_by", "a swap is asked by a user"))?;
        r.check(requester_id, now)?;
        let mut w = self.write().await?;
        let schedule = self.lock_schedule(&mut w, r.schedule_id).await?;
        if let Some(o) = r.offered_to {
            self.check_on_call_user(&mut w, "offered_to", o).await?;
            let role: String = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
                .bind(o)
                .fetch_one(&mut *w.tx)
                .await?;
            if role == "viewer" {
                return Err(Invalid::new(
                    "offered_to",
                    format!("user {o} is a viewer and cannot accept a swap"),
                )
                .into());
            }
        }
        let parsed = schedule.schedule().map_err(|e| {
            StoreError::Config(format!("schedule {} does not parse: {e}", schedule.id))
        })?;
        let overrides: Vec<_> = self
            .overrides_in(&mut w, r.schedule_id, r.starts_at, r.ends_at)
            .await?
            .iter()
            .map(ScheduleOverride::as_override)
            .collect();
        let shifts = final_shifts(&parsed, &overrides, r.starts_at, r.ends_at);
        if !shifts.iter().any(|s| s.user_id == requester_id) {
            return Err(Invalid::new(
                "starts_at",
                format!(
                    "you are not on call in schedule {} between {} and {}; a swap covers your own shifts",
                    r.schedule_id, r.starts_at, r.ends_at
                ),
            )
            .into());
        }
        let row = sqlx::query(&format!(
            "INSERT INTO shift_swap_requests (schedule_id, requested_by, starts_at, ends_at, note, \
             offered_to, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $7) RETURNING {COLUMNS}"
        ))
        .bind(r.schedule_id)
        .bind(requester_id)
        .bind(to_millis(r.starts_at))
        .bind(to_millis(r.ends_at))
        .bind(&r.note)
        .bind(r.offered_to)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let record = swap_request(&row, now)?;
        audit(
            &mut w,
            now,
            requester,
            "shift_swap_request",
            record.id,
            "shift_swap_request.created",
            json!({ "swap_request": record }),
        )
        .await?;
        w.commit().await?;
        Ok(record)
    }

    /// Reads one request, its status as of `now`.
    pub async fn swap_request(&self, id: i64, now: Timestamp) -> Result<SwapRequest, StoreError> {
        let row = self
            .row_by_id(COLUMNS, "shift_swap_requests", id, "swap request")
            .await?;
        swap_request(&row, now)
    }

    /// A schedule's requests (of one status as of `now`, if given), soonest first.
    pub async fn swap_requests(
        &self,
        schedule_id: i64,
        status: Option<SwapStatus>,
        now: Timestamp,
    ) -> Result<Vec<SwapRequest>, StoreError> {
        self.schedule(schedule_id).await?;
        // Open and expired are both stored as open, told apart by the start.
        let (stored, clause) = match status {
            None => (None, ""),
            Some(SwapStatus::Open) => (Some(SwapStatus::Open), " AND starts_at > $3"),
            Some(SwapStatus::Expired) => (Some(SwapStatus::Open), " AND starts_at <= $3"),
            Some(s) => (Some(s), ""),
        };
        let filter = if stored.is_some() {
            " AND status = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM shift_swap_requests WHERE schedule_id = $1{filter}{clause} \
             ORDER BY starts_at, id"
        );
        let mut q = sqlx::query(&sql).bind(schedule_id);
        if let Some(s) = stored {
            q = q.bind(s.as_str());
        }
        if !clause.is_empty() {
            q = q.bind(to_millis(now));
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(|r| swap_request(r, now)).collect()
    }

    /// Locks a request for the rest of the transaction, with its schedule first
    /// (the order deleting a schedule takes them in), and refuses it unless open.
    async fn lock_open_swap(
        &self,
        w: &mut WriteTx,
        id: i64,
        action: SwapAction,
        now: Timestamp,
    ) -> Result<SwapRequest, StoreError> {
        let schedule_id = self.swap_request(id, now).await?.schedule_id;
        self.lock_schedule(w, schedule_id).await?;
        let row = self
            .lock_row_by_id(w, COLUMNS, "shift_swap_requests", id, "swap request")
            .await?;
        let r = swap_request(&row, now)?;
        if r.status != SwapStatus::Open {
            return Err(not_open(&r, action));
        }
        Ok(r)
    }

    /// Moves a locked open request to the action's status. The update is
    /// conditional on it still being open, so even without the row lock two
    /// transactions could not both decide it.
    async fn decide(
        &self,
        w: &mut WriteTx,
        r: &SwapRequest,
        action: SwapAction,
        actor: &Actor,
        now: Timestamp,
        override_id: Option<i64>,
    ) -> Result<SwapRequest, StoreError> {
        let (by, at) = (actor.user_id, to_millis(now));
        let sets = match action {
            SwapAction::Accept => "accepted_by = $2, accepted_at = $3, override_id = $4",
            SwapAction::Decline | SwapAction::Cancel => {
                "closed_by = $2, closed_at = $3, override_id = $4"
            }
        };
        let row = sqlx::query(&format!(
            "UPDATE shift_swap_requests SET status = $1, {sets}, updated_at = $3 \
             WHERE id = $5 AND status = 'open' RETURNING {COLUMNS}"
        ))
        .bind(action.to().as_str())
        .bind(by)
        .bind(at)
        .bind(override_id)
        .bind(r.id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else {
            let now_stored = self.swap_request(r.id, now).await?;
            return Err(not_open(&now_stored, action));
        };
        let record = swap_request(&row, now)?;
        audit(
            w,
            now,
            actor,
            "shift_swap_request",
            r.id,
            &format!("shift_swap_request.{}", action.verb()),
            json!({ "from": r, "to": record }),
        )
        .await?;
        Ok(record)
    }

    /// Accepts an open request: in one transaction it becomes accepted and an
    /// override puts `acceptor` on call over its range. Who may accept is the
    /// caller's to check ([`SwapRequest::refusal`]).
    pub async fn accept_swap_request(
        &self,
        id: i64,
        acceptor: &Actor,
        now: Timestamp,
    ) -> Result<(SwapRequest, ScheduleOverride), StoreError> {
        let acceptor_id = acceptor
            .user_id
            .ok_or_else(|| Invalid::new("accepted_by", "a swap is accepted by a user"))?;
        let mut w = self.write().await?;
        let r = self
            .lock_open_swap(&mut w, id, SwapAction::Accept, now)
            .await?;
        let created = self
            .insert_override(
                &mut w,
                r.schedule_id,
                acceptor_id,
                (r.starts_at, r.ends_at),
                acceptor,
                now,
                Some(r.id),
            )
            .await?;
        let record = self
            .decide(
                &mut w,
                &r,
                SwapAction::Accept,
                acceptor,
                now,
                Some(created.id),
            )
            .await?;
        w.commit().await?;
        Ok((record, created))
    }

    /// Declines or cancels an open request. Who may is the caller's to check
    /// ([`SwapRequest::refusal`]).
    pub async fn close_swap_request(
        &self,
        id: i64,
        action: SwapAction,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<SwapRequest, StoreError> {
        debug_assert!(action != SwapAction::Accept, "accept_swap_request accepts");
        let mut w = self.write().await?;
        let r = self.lock_open_swap(&mut w, id, action, now).await?;
        let record = self.decide(&mut w, &r, action, actor, now, None).await?;
        w.commit().await?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    fn req(start_h: i64, hours: i64, offered_to: Option<i64>) -> NewSwapRequest {
        let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        NewSwapRequest {
            schedule_id: 1,
            starts_at: base + Duration::hours(start_h),
            ends_at: base + Duration::hours(start_h + hours),
            note: String::new(),
            offered_to,
        }
    }

    #[test]
    fn checks_name_the_field() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let field = |r: NewSwapRequest| r.check(7, now).err().map(|e| e.field);
        assert_eq!(field(req(1, 8, None)), None);
        assert_eq!(field(req(1, 0, None)).as_deref(), Some("ends_at"));
        assert_eq!(field(req(0, 8, None)).as_deref(), Some("starts_at"));
        assert_eq!(field(req(-5, 8, None)).as_deref(), Some("starts_at"));
        assert_eq!(field(req(1, 31 * 24, None)), None);
        assert_eq!(field(req(1, 31 * 24 + 1, None)).as_deref(), Some("ends_at"));
        assert_eq!(field(req(1, 8, Some(7))).as_deref(), Some("offered_to"));
        let mut long = req(1, 8, None);
        long.note = "x".repeat(MAX_SWAP_NOTE + 1);
        assert_eq!(field(long).as_deref(), Some("note"));
    }

    #[test]
    fn open_reads_as_expired_from_its_start() {
        let start = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let before = start - Duration::milliseconds(1);
        assert_eq!(effective(SwapStatus::Open, start, before), SwapStatus::Open);
        assert_eq!(
            effective(SwapStatus::Open, start, start),
            SwapStatus::Expired
        );
        assert_eq!(
            effective(SwapStatus::Accepted, start, start),
            SwapStatus::Accepted
        );
        for s in SwapStatus::ALL {
            assert_eq!(SwapStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn who_may_do_what() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let r = |offered_to| SwapRequest {
            id: 1,
            schedule_id: 1,
            requested_by: 10,
            starts_at: at,
            ends_at: at,
            note: String::new(),
            offered_to,
            status: SwapStatus::Open,
            accepted_by: None,
            accepted_at: None,
            override_id: None,
            closed_by: None,
            closed_at: None,
            created_at: at,
            updated_at: at,
        };
        use SwapAction::*;
        // (offered_to, action, user, admin, allowed)
        let table = [
            (None, Accept, 10, false, false),
            (None, Accept, 10, true, false),
            (None, Accept, 11, false, true),
            (Some(12), Accept, 11, false, false),
            (Some(12), Accept, 11, true, false),
            (Some(12), Accept, 12, false, true),
            (None, Decline, 11, false, false),
            (Some(12), Decline, 11, true, false),
            (Some(12), Decline, 12, false, true),
            (None, Cancel, 10, false, true),
            (None, Cancel, 11, false, false),
            (None, Cancel, 11, true, true),
        ];
        for (offered_to, action, user, admin, allowed) in table {
            assert_eq!(
                r(offered_to).refusal(action, user, admin).is_none(),
                allowed,
                "{offered_to:?} {action:?} by {user} (admin {admin})"
            );
        }
    }
}
