//! Notes and attachments: the incident's record of discussion, evidence,
//! decisions and approvals.

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tocsin_core::incident::RecordKind;
use tocsin_core::model::{long_text, required_text, Attachment, Note};
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use tocsin_core::Invalid;

use crate::events::{append, Actor, NewEvent};
use crate::incidents::refresh_search;
use crate::tx::WriteTx;
use crate::{Store, StoreError};

const MAX_NOTE: usize = 100_000;

/// A note to add.
#[derive(Debug, Clone)]
pub struct NewNote {
    /// Markdown text.
    pub body: String,
    /// Note, decision or approval.
    pub kind: RecordKind,
    /// Who approved (approvals only; defaults to the author).
    pub approved_by: Option<i64>,
}

/// A file to attach.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// File name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Evidence, decision or approval.
    pub kind: RecordKind,
    /// Who approved (approvals only; defaults to the uploader).
    pub approved_by: Option<i64>,
    /// The bytes.
    pub content: Vec<u8>,
}

const NOTE_COLUMNS: &str = "id, incident_id, author_id, body, kind, approved_by, created_at";
const ATTACHMENT_COLUMNS: &str =
    "id, incident_id, filename, content_type, size, sha256, kind, approved_by, uploaded_by, created_at";

fn note(r: &sqlx::any::AnyRow) -> Result<Note, StoreError> {
    Ok(Note {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        author_id: r.try_get("author_id")?,
        body: r.try_get("body")?,
        kind: RecordKind::parse(&r.try_get::<String, _>("kind")?).unwrap_or_default(),
        approved_by: r.try_get("approved_by")?,
        created_at: from_millis(r.try_get("created_at")?),
    })
}

fn attachment(r: &sqlx::any::AnyRow) -> Result<Attachment, StoreError> {
    Ok(Attachment {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        filename: r.try_get("filename")?,
        content_type: r.try_get("content_type")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        kind: RecordKind::parse(&r.try_get::<String, _>("kind")?).unwrap_or_default(),
        approved_by: r.try_get("approved_by")?,
        uploaded_by: r.try_get("uploaded_by")?,
        created_at: from_millis(r.try_get("created_at")?),
    })
}

impl Store {
    /// Adds a note and records `incident.note_added`.
    pub async fn add_note(
        &self,
        incident_id: i64,
        n: &NewNote,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Note, StoreError> {
        let body = long_text("body", &n.body, MAX_NOTE)?;
        if body.trim().is_empty() {
            return Err(Invalid::new("body", "must not be empty").into());
        }
        let mut w = self.write().await?;
        let inc = self.lock_incident(&mut w, incident_id).await?;
        let approved_by = self.approver(&mut w, n.kind, n.approved_by, actor).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO notes (incident_id, author_id, body, kind, approved_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {NOTE_COLUMNS}"
        ))
        .bind(incident_id)
        .bind(actor.user_id)
        .bind(&body)
        .bind(n.kind.as_str())
        .bind(approved_by)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let created = note(&row)?;
        refresh_search(&mut w, &inc).await?;
        append(
            &mut w,
            NewEvent {
                at: now,
                actor,
                entity: "note",
                entity_id: created.id,
                incident_id: Some(incident_id),
                kind: "incident.note_added",
                data: json!({ "note_id": created.id, "body": created.body, "kind": created.kind,
                          "approved_by": created.approved_by }),
            },
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// An incident's notes, oldest first.
    pub async fn notes(&self, incident_id: i64) -> Result<Vec<Note>, StoreError> {
        self.incident_exists(incident_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {NOTE_COLUMNS} FROM notes WHERE incident_id = $1 ORDER BY id"
        ))
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(note).collect()
    }

    /// Marks a note as a decision, an approval or plain note again.
    pub async fn mark_note(
        &self,
        incident_id: i64,
        note_id: i64,
        kind: RecordKind,
        approved_by: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Note, StoreError> {
        self.mark(
            "notes",
            "note",
            incident_id,
            note_id,
            kind,
            approved_by,
            actor,
            now,
        )
        .await?;
        let row = sqlx::query(&format!("SELECT {NOTE_COLUMNS} FROM notes WHERE id = $1"))
            .bind(note_id)
            .fetch_one(&self.pool)
            .await?;
        note(&row)
    }

    /// Stores an attachment with its SHA-256 and records `incident.attachment_added`.
    pub async fn add_attachment(
        &self,
        incident_id: i64,
        a: &NewAttachment,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Attachment, StoreError> {
        let filename = required_text("filename", &a.filename, 255)?;
        if filename.contains(['/', '\\']) {
            return Err(Invalid::new("filename", "must be a file name, not a path").into());
        }
        let content_type = required_text("content_type", &a.content_type, 255)?;
        let sha = hex::encode(Sha256::digest(&a.content));
        let mut w = self.write().await?;
        self.lock_incident(&mut w, incident_id).await?;
        let approved_by = self.approver(&mut w, a.kind, a.approved_by, actor).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO attachments (incident_id, filename, content_type, size, sha256, kind, \
             approved_by, uploaded_by, created_at, content) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {ATTACHMENT_COLUMNS}"
        ))
        .bind(incident_id)
        .bind(&filename)
        .bind(&content_type)
        .bind(a.content.len() as i64)
        .bind(&sha)
        .bind(a.kind.as_str())
        .bind(approved_by)
        .bind(actor.user_id)
        .bind(to_millis(now))
        .bind(a.content.clone())
        .fetch_one(&mut *w.tx)
        .await?;
        let created = attachment(&row)?;
        append(
            &mut w,
            NewEvent {
                at: now,
                actor,
                entity: "attachment",
                entity_id: created.id,
                incident_id: Some(incident_id),
                kind: "incident.attachment_added",
                data: json!({ "attachment_id": created.id, "filename": created.filename,
                          "content_type": created.content_type, "size": created.size,
                          "sha256": created.sha256, "kind": created.kind,
                          "approved_by": created.approved_by }),
            },
        )
        .await?;
        w.commit().await?;
        Ok(created)
    }

    /// An incident's attachments (without content), oldest first.
    pub async fn attachments(&self, incident_id: i64) -> Result<Vec<Attachment>, StoreError> {
        self.incident_exists(incident_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE incident_id = $1 ORDER BY id"
        ))
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attachment).collect()
    }

    /// One attachment with its content.
    pub async fn attachment_content(
        &self,
        incident_id: i64,
        attachment_id: i64,
    ) -> Result<(Attachment, Vec<u8>), StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS}, content FROM attachments WHERE id = $1 AND incident_id = $2"
        ))
        .bind(attachment_id)
        .bind(incident_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("attachment {attachment_id}")))?;
        Ok((attachment(&row)?, row.try_get("content")?))
    }

    /// Marks an attachment as a decision, an approval or plain evidence again.
    pub async fn mark_attachment(
        &self,
        incident_id: i64,
        attachment_id: i64,
        kind: RecordKind,
        approved_by: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Attachment, StoreError> {
        self.mark(
            "attachments",
            "attachment",
            incident_id,
            attachment_id,
            kind,
            approved_by,
            actor,
            now,
        )
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = $1"
        ))
        .bind(attachment_id)
        .fetch_one(&self.pool)
        .await?;
        attachment(&row)
    }

    #[allow(clippy::too_many_arguments)]
    async fn mark(
        &self,
        table: &'static str,
        entity: &'static str,
        incident_id: i64,
        id: i64,
        kind: RecordKind,
        approved_by: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "SELECT kind, approved_by FROM {table} WHERE id = $1 AND incident_id = $2"
        ))
        .bind(id)
        .bind(incident_id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("{entity} {id}")))?;
        let old_kind: String = row.try_get("kind")?;
        let old_approver: Option<i64> = row.try_get("approved_by")?;
        let approved_by = self.approver(&mut w, kind, approved_by, actor).await?;
        if old_kind == kind.as_str() && old_approver == approved_by {
            return Ok(());
        }
        sqlx::query(&format!(
            "UPDATE {table} SET kind = $1, approved_by = $2 WHERE id = $3"
        ))
        .bind(kind.as_str())
        .bind(approved_by)
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        let event_kind = if entity == "note" {
            "incident.note_marked"
        } else {
            "incident.attachment_marked"
        };
        append(
            &mut w,
            NewEvent {
                at: now,
                actor,
                entity,
                entity_id: id,
                incident_id: Some(incident_id),
                kind: event_kind,
                data: json!({ format!("{entity}_id"): id, "changes": [
                    { "field": "kind", "old": old_kind, "new": kind.as_str() },
                    { "field": "approved_by", "old": old_approver, "new": approved_by },
                ]}),
            },
        )
        .await?;
        w.commit().await
    }

    async fn approver(
        &self,
        w: &mut WriteTx,
        kind: RecordKind,
        approved_by: Option<i64>,
        actor: &Actor,
    ) -> Result<Option<i64>, StoreError> {
        match (kind, approved_by.or(actor.user_id)) {
            (RecordKind::Approval, Some(u)) => {
                self.check_exists(w, "users", u, "approved_by", "user")
                    .await?;
                Ok(Some(u))
            }
            (RecordKind::Approval, None) => {
                Err(Invalid::new("approved_by", "an approval needs who approved").into())
            }
            (_, _) if approved_by.is_some() => {
                Err(Invalid::new("approved_by", "only approvals have an approver").into())
            }
            _ => Ok(None),
        }
    }
}
