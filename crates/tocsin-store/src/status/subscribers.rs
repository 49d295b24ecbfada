//! Subscribers: email (double opt-in: nothing but the confirmation is sent
//! until the link in it is followed) and webhooks (added by admins). Links in
//! mail are signed with the `status_subscribers` key and carry the
//! subscriber's salt, so a forged or altered link fails, and unsubscribing
//! (deleting the row) voids every link that subscriber was sent.
//!
//! Events about subscribers never carry their address: the log is kept for
//! good, a subscriber's address only while they are subscribed.

use chrono::Duration;
use rand::RngCore;
use serde_json::json;
use sqlx::Row;
use tocsin_core::model::EmailAddress;
use tocsin_core::status_page::records::{Subscriber, SubscriberKind};
use tocsin_core::status_page::token::{self, LinkPurpose, SubscriberClaim, SALT_LEN};
use tocsin_core::time::{to_millis, Timestamp};
use tocsin_core::Invalid;

use super::deliveries::queue_confirmation;
use super::{id_list, opt_ts, ts};
use crate::events::{audit, Actor};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// The name events give to a reader acting through the public page or a link.
pub const SUBSCRIBER_ACTOR: &str = "subscriber";

const PURPOSE: &str = "status_subscribers";
const COLUMNS: &str = "id, page_id, kind, address, salt, all_components, confirmed_at, confirmation_sent_at, created_at";

/// How long a confirmation link works.
pub const CONFIRM_LIFETIME_DAYS: i64 = 7;
/// A pending subscriber asking again within this many minutes gets no second mail.
pub const RESEND_MINUTES: i64 = 10;
/// Most confirmation mails one page sends in an hour.
pub const CONFIRMATIONS_PER_HOUR: i64 = 1_000;

/// What a subscription request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeOutcome {
    /// A confirmation mail is on its way.
    ConfirmationSent,
    /// One was sent moments ago; not another yet.
    ConfirmationRecentlySent,
    /// Already subscribed and confirmed; nothing changed.
    AlreadySubscribed,
}

/// A subscriber an admin adds.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    /// Email or webhook.
    pub kind: SubscriberKind,
    /// The address (a parsed email address, or a checked http(s) URL).
    pub address: String,
    /// Components followed; empty: all.
    pub component_ids: Vec<i64>,
    /// Email only: add as confirmed (an import of people who opted in
    /// elsewhere) rather than sending a confirmation.
    pub confirmed: bool,
}

fn actor() -> Actor {
    Actor {
        user_id: None,
        name: SUBSCRIBER_ACTOR.into(),
    }
}

fn salt_of(r: &sqlx::any::AnyRow) -> Result<[u8; SALT_LEN], StoreError> {
    let hex_salt: String = r.try_get("salt")?;
    hex::decode(hex_salt)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Config("unreadable subscriber salt".into()))
}

fn new_salt() -> [u8; SALT_LEN] {
    let mut s = [0u8; SALT_LEN];
    rand::thread_rng().fill_bytes(&mut s);
    s
}

fn subscriber(r: &sqlx::any::AnyRow) -> Result<Subscriber, StoreError> {
    let confirmed_at = opt_ts(r, "confirmed_at")?;
    Ok(Subscriber {
        id: r.try_get("id")?,
        page_id: r.try_get("page_id")?,
        kind: SubscriberKind::parse(&r.try_get::<String, _>("kind")?)
            .unwrap_or(SubscriberKind::Email),
        address: r.try_get("address")?,
        confirmed: confirmed_at.is_some(),
        confirmed_at,
        component_ids: Vec::new(),
        created_at: ts(r, "created_at")?,
    })
}

impl Store {
    async fn check_subscriber_components(
        &self,
        w: &mut WriteTx,
        page_id: i64,
        ids: &[i64],
    ) -> Result<(), StoreError> {
        for (i, id) in ids.iter().enumerate() {
            let page: Option<i64> =
                sqlx::query_scalar("SELECT page_id FROM status_components WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *w.tx)
                    .await?;
            if page != Some(page_id) {
                return Err(Invalid::new(
                    format!("component_ids[{i}]"),
                    format!("{id} is not a component of this status page"),
                )
                .into());
            }
        }
        Ok(())
    }

    async fn follow(
        &self,
        w: &mut WriteTx,
        subscriber_id: i64,
        ids: &[i64],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM status_subscriber_components WHERE subscriber_id = $1")
            .bind(subscriber_id)
            .execute(&mut *w.tx)
            .await?;
        for id in ids {
            sqlx::query(
                "INSERT INTO status_subscriber_components (subscriber_id, component_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(subscriber_id)
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        }
        sqlx::query("UPDATE status_subscribers SET all_components = $1 WHERE id = $2")
            .bind(i64::from(ids.is_empty()))
            .bind(subscriber_id)
            .execute(&mut *w.tx)
            .await?;
        Ok(())
    }

    async fn page_takes_subscribers(
        &self,
        w: &mut WriteTx,
        page_id: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        super::lock_page(self, w, page_id).await?;
        let row =
            sqlx::query("SELECT allow_subscribers, visibility FROM status_pages WHERE id = $1")
                .bind(page_id)
                .fetch_one(&mut *w.tx)
                .await?;
        if row.try_get::<i64, _>("allow_subscribers")? == 0 {
            return Err(StoreError::conflict(
                "email",
                "this status page does not take subscriptions",
            ));
        }
        // Anyone signed in may read an internal page, but its updates are not to
        // be mailed to any address they type (nor outlive their account): an
        // admin adds an internal page's subscribers.
        if row.try_get::<String, _>("visibility")? != "public" {
            return Err(StoreError::conflict(
                "email",
                "an internal status page takes no subscriptions from readers; an admin adds its subscribers",
            ));
        }
        // However many addresses and clients ask, a page sends at most this many
        // confirmations an hour: the form cannot be turned into a mail cannon.
        let recent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM status_deliveries WHERE page_id = $1 AND kind = 'confirmation' AND created_at > $2",
        )
        .bind(page_id)
        .bind(to_millis(now - Duration::hours(1)))
        .fetch_one(&mut *w.tx)
        .await?;
        if recent >= CONFIRMATIONS_PER_HOUR {
            return Err(StoreError::TooSoon {
                code: "subscriptions_busy",
                message: "too many subscription requests for this page just now; try again in a few minutes".into(),
                retry_after_secs: 300,
            });
        }
        Ok(())
    }

    /// A reader asks for email updates (all components when `component_ids` is
    /// empty). New or not yet confirmed: a confirmation mail is queued (at most
    /// one per [`RESEND_MINUTES`]); confirmed already: nothing changes, so a
    /// stranger cannot alter someone else's subscription.
    pub async fn subscribe_email(
        &self,
        page_id: i64,
        email: &EmailAddress,
        component_ids: &[i64],
        now: Timestamp,
    ) -> Result<SubscribeOutcome, StoreError> {
        let mut w = self.write().await?;
        self.page_takes_subscribers(&mut w, page_id, now).await?;
        self.check_subscriber_components(&mut w, page_id, component_ids)
            .await?;
        let existing = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM status_subscribers WHERE page_id = $1 AND kind = 'email' AND lower(address) = lower($2)"
        ))
        .bind(page_id)
        .bind(email.as_str())
        .fetch_optional(&mut *w.tx)
        .await?;
        let id = match existing {
            Some(r) if opt_ts(&r, "confirmed_at")?.is_some() => {
                w.rollback().await?;
                return Ok(SubscribeOutcome::AlreadySubscribed);
            }
            Some(r) => {
                let sent = opt_ts(&r, "confirmation_sent_at")?;
                if sent.is_some_and(|s| now < s + Duration::minutes(RESEND_MINUTES)) {
                    w.rollback().await?;
                    return Ok(SubscribeOutcome::ConfirmationRecentlySent);
                }
                let id: i64 = r.try_get("id")?;
                sqlx::query(
                    "UPDATE status_subscribers SET confirmation_sent_at = $1 WHERE id = $2",
                )
                .bind(to_millis(now))
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
                id
            }
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO status_subscribers (page_id, kind, address, salt, all_components, \
                     confirmation_sent_at, created_at) VALUES ($1, 'email', $2, $3, 1, $4, $4) RETURNING id",
                )
                .bind(page_id)
                .bind(email.as_str())
                .bind(hex::encode(new_salt()))
                .bind(to_millis(now))
                .fetch_one(&mut *w.tx)
                .await?;
                audit(
                    &mut w,
                    now,
                    &actor(),
                    "status_subscriber",
                    id,
                    "status_subscriber.created",
                    json!({ "page_id": page_id, "kind": "email", "confirmed": false }),
                )
                .await?;
                id
            }
        };
        self.follow(&mut w, id, component_ids).await?;
        queue_confirmation(&mut w, page_id, id, now).await?;
        w.commit().await?;
        Ok(SubscribeOutcome::ConfirmationSent)
    }

    /// An admin adds a subscriber. A webhook's signing secret is returned (only
    /// now); an unconfirmed email subscriber is sent a confirmation.
    pub async fn add_subscriber(
        &self,
        page_id: i64,
        s: &NewSubscriber,
        by: &Actor,
        now: Timestamp,
    ) -> Result<(Subscriber, Option<String>), StoreError> {
        let mut w = self.write().await?;
        super::lock_page(self, &mut w, page_id).await?;
        self.check_subscriber_components(&mut w, page_id, &s.component_ids)
            .await?;
        let confirmed = s.kind == SubscriberKind::Webhook || s.confirmed;
        let salt = new_salt();
        let row = sqlx::query(&format!(
            "INSERT INTO status_subscribers (page_id, kind, address, salt, all_components, confirmed_at, \
             confirmation_sent_at, created_at) VALUES ($1, $2, $3, $4, 1, $5, $6, $7) RETURNING {COLUMNS}"
        ))
        .bind(page_id)
        .bind(s.kind.as_str())
        .bind(&s.address)
        .bind(hex::encode(salt))
        .bind(confirmed.then_some(to_millis(now)))
        .bind((!confirmed).then_some(to_millis(now)))
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(crate::error::unique("address", "this subscriber"))?;
        let mut created = subscriber(&row)?;
        self.follow(&mut w, created.id, &s.component_ids).await?;
        created.component_ids = s.component_ids.clone();
        if !confirmed {
            queue_confirmation(&mut w, page_id, created.id, now).await?;
        }
        audit(
            &mut w,
            now,
            by,
            "status_subscriber",
            created.id,
            "status_subscriber.created",
            json!({ "page_id": page_id, "kind": s.kind, "confirmed": confirmed }),
        )
        .await?;
        w.commit().await?;
        let secret = match s.kind {
            SubscriberKind::Webhook => Some(self.status_webhook_secret(created.id, now).await?),
            SubscriberKind::Email => None,
        };
        Ok((created, secret))
    }

    async fn with_components(
        &self,
        mut subs: Vec<Subscriber>,
    ) -> Result<Vec<Subscriber>, StoreError> {
        if subs.is_empty() {
            return Ok(subs);
        }
        let ids: Vec<i64> = subs.iter().map(|s| s.id).collect();
        let rows = sqlx::query(&format!(
            "SELECT subscriber_id, component_id FROM status_subscriber_components \
             WHERE subscriber_id IN ({}) ORDER BY component_id",
            id_list(&ids)
        ))
        .fetch_all(&self.pool)
        .await?;
        let at: std::collections::HashMap<i64, usize> =
            subs.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        for r in rows {
            let sid: i64 = r.try_get("subscriber_id")?;
            if let Some(&i) = at.get(&sid) {
                subs[i].component_ids.push(r.try_get("component_id")?);
            }
        }
        Ok(subs)
    }

    /// Up to `limit` of a page's subscribers, oldest first, after the one
    /// whose id is `after` (keyset pagination: a page of a large list costs the
    /// same wherever it starts).
    pub async fn subscribers(
        &self,
        page_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Subscriber>, StoreError> {
        self.status_page(page_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM status_subscribers WHERE page_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        ))
        .bind(page_id)
        .bind(after.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let subs = rows.iter().map(subscriber).collect::<Result<Vec<_>, _>>()?;
        self.with_components(subs).await
    }

    /// How many subscribers a page has: (confirmed, awaiting confirmation).
    pub async fn subscriber_counts(&self, page_id: i64) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(confirmed_at) AS confirmed, COUNT(*) - COUNT(confirmed_at) AS pending \
             FROM status_subscribers WHERE page_id = $1",
        )
        .bind(page_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("confirmed")?, row.try_get("pending")?))
    }

    /// One subscriber.
    pub async fn subscriber(&self, id: i64) -> Result<Subscriber, StoreError> {
        let s = subscriber(
            &self
                .row_by_id(COLUMNS, "status_subscribers", id, "subscriber")
                .await?,
        )?;
        Ok(self.with_components(vec![s]).await?.remove(0))
    }

    /// Removes a subscriber (and whatever was still to be sent to it).
    pub async fn delete_subscriber(
        &self,
        id: i64,
        by: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let old = subscriber(
            &self
                .lock_row_by_id(&mut w, COLUMNS, "status_subscribers", id, "subscriber")
                .await?,
        )?;
        crate::events::delete_audited(
            w,
            "status_subscribers",
            "status_subscriber",
            id,
            by,
            now,
            json!({ "page_id": old.page_id, "kind": old.kind }),
        )
        .await
    }

    /// The subscriber a link names, if the link is genuine (signature, purpose,
    /// expiry) and the subscriber still has the salt it was made with.
    pub async fn subscriber_for_link(
        &self,
        link: &str,
        purpose: LinkPurpose,
        now: Timestamp,
    ) -> Result<Subscriber, StoreError> {
        let refused =
            |e: token::TokenRefused| StoreError::Invalid(Invalid::new("token", e.to_string()));
        let key = self
            .signing_key(PURPOSE)
            .await?
            .ok_or_else(|| refused(token::TokenRefused::BadSignature))?;
        let claim = token::verify(&key, link, purpose, now).map_err(refused)?;
        let gone = || StoreError::not_found("subscription (it may have been cancelled already)");
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM status_subscribers WHERE id = $1"
        ))
        .bind(claim.subscriber_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(gone)?;
        if salt_of(&row)? != claim.salt {
            return Err(gone());
        }
        Ok(self
            .with_components(vec![subscriber(&row)?])
            .await?
            .remove(0))
    }

    /// Follows a confirmation link: the subscriber is confirmed (again, harmlessly).
    pub async fn confirm_subscriber(
        &self,
        link: &str,
        now: Timestamp,
    ) -> Result<Subscriber, StoreError> {
        let s = self
            .subscriber_for_link(link, LinkPurpose::Confirm, now)
            .await?;
        if s.confirmed {
            return Ok(s);
        }
        let mut w = self.write().await?;
        let n = sqlx::query("UPDATE status_subscribers SET confirmed_at = $1 WHERE id = $2 AND confirmed_at IS NULL")
            .bind(to_millis(now))
            .bind(s.id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if n > 0 {
            audit(
                &mut w,
                now,
                &actor(),
                "status_subscriber",
                s.id,
                "status_subscriber.confirmed",
                json!({ "page_id": s.page_id }),
            )
            .await?;
        }
        w.commit().await?;
        self.subscriber(s.id).await
    }

    /// Follows an unsubscribe link: the subscriber is deleted, with what was
    /// still to be sent to it; its links stop working.
    pub async fn unsubscribe(&self, link: &str, now: Timestamp) -> Result<Subscriber, StoreError> {
        let s = self
            .subscriber_for_link(link, LinkPurpose::Unsubscribe, now)
            .await?;
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM status_subscribers WHERE id = $1")
            .bind(s.id)
            .execute(&mut *w.tx)
            .await?;
        audit(
            &mut w,
            now,
            &actor(),
            "status_subscriber",
            s.id,
            "status_subscriber.unsubscribed",
            json!({ "page_id": s.page_id, "kind": s.kind }),
        )
        .await?;
        w.commit().await?;
        Ok(s)
    }

    /// Signs a link of `purpose` for a subscriber: confirmation links expire
    /// after [`CONFIRM_LIFETIME_DAYS`], unsubscribe links never (they die with
    /// the subscription).
    pub async fn subscriber_link(
        &self,
        subscriber_id: i64,
        purpose: LinkPurpose,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        let row = self
            .row_by_id("salt", "status_subscribers", subscriber_id, "subscriber")
            .await?;
        let key = self.signing_key_or_create(PURPOSE, now).await?;
        let expires_at = match purpose {
            LinkPurpose::Confirm => (now + Duration::days(CONFIRM_LIFETIME_DAYS)).timestamp(),
            LinkPurpose::Unsubscribe => 0,
        };
        Ok(token::sign(
            &key,
            &SubscriberClaim {
                purpose,
                subscriber_id,
                expires_at,
                salt: salt_of(&row)?,
            },
        ))
    }

    /// The secret a webhook subscriber checks `Tocsin-Signature` with (derived, never stored).
    pub async fn status_webhook_secret(
        &self,
        subscriber_id: i64,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        let row = self
            .row_by_id("salt", "status_subscribers", subscriber_id, "subscriber")
            .await?;
        let key = self.signing_key_or_create(PURPOSE, now).await?;
        Ok(token::webhook_secret(&key, subscriber_id, &salt_of(&row)?))
    }
}
