//! Incidents: declare, read, patch, move through the lifecycle, list and search.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tocsin_core::change::{self, IncidentPatch, Moved, NewIncident};
use tocsin_core::incident::{Priority, Status};
use tocsin_core::model::Incident;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{to_millis, Timestamp};
use tocsin_core::Invalid;

use crate::events::{incident_event, Actor};
use crate::tx::WriteTx;
use crate::{Backend, Store, StoreError};

/// How to order an incident list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSort {
    /// Newest first (the default).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// Most recently changed first.
    Updated,
    /// Most urgent priority first, then newest.
    Priority,
    /// Most severe first, then newest.
    Severity,
}

/// Filters for listing incidents; every one given must hold.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Any of these statuses.
    pub statuses: Vec<Status>,
    /// Any of these severities.
    pub severities: Vec<String>,
    /// Any of these priorities.
    pub priorities: Vec<Priority>,
    /// Any of these types.
    pub types: Vec<String>,
    /// Affects this service.
    pub service_id: Option<i64>,
    /// Assigned to this user.
    pub assignee_id: Option<i64>,
    /// Carries this label.
    pub label: Option<String>,
    /// Declared at or after.
    pub created_from: Option<Timestamp>,
    /// Declared before.
    pub created_to: Option<Timestamp>,
    /// Full-text query over title, description, root cause, resolution and notes.
    pub q: Option<String>,
    /// Order.
    pub sort: IncidentSort,
    /// Opaque position from a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// One page of incidents.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentPage {
    /// The incidents on this page.
    pub items: Vec<Incident>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    k: serde_json::Value,
    id: i64,
}

enum Arg {
    I(i64),
    S(String),
}

impl Store {
    /// Declares an incident: numbers it, stores it, records `incident.declared`.
    pub async fn declare_incident(
        &self,
        settings: &IncidentSettings,
        req: &NewIncident,
        reporter: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Incident, StoreError> {
        let mut w = self.write().await?;
        let inc = self
            .declare_in(&mut w, settings, req, reporter, actor, now)
            .await?;
        if req.page {
            self.page_in(&mut w, &inc, actor, now, true).await?;
        }
        w.commit().await?;
        Ok(inc)
    }

    /// Starts paging for a just-declared incident. When none of its services
    /// has an escalation policy, a declaration that asked to page is refused
    /// (`required`); an alert's incident records on its timeline that nobody was paged.
    pub(crate) async fn page_in(
        &self,
        w: &mut WriteTx,
        inc: &Incident,
        actor: &Actor,
        now: Timestamp,
        required: bool,
    ) -> Result<(), StoreError> {
        if inc.status != Status::Triggered {
            return Err(Invalid::new(
                "page",
                "only a triggered incident pages: declare it without a status (or `triggered`)",
            )
            .into());
        }
        if self.start_escalation_in(w, inc, actor, now).await? {
            return Ok(());
        }
        if required {
            return Err(Invalid::new(
                "page",
                "none of the incident's services has an escalation policy",
            )
            .into());
        }
        incident_event(
            w,
            now,
            actor,
            inc.id,
            "escalation.not_started",
            json!({ "reason": "the service has no escalation policy" }),
        )
        .await?;
        Ok(())
    }

    /// Declares inside the caller's transaction.
    pub(crate) async fn declare_in(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        req: &NewIncident,
        reporter: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Incident, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = 'incident' RETURNING value",
        )
        .fetch_one(&mut *w.tx)
        .await?;
        let inc = change::declare(settings, req, id, reporter, now)?;
        self.check_references(w, settings, &inc).await?;
        write_incident(w, settings, &inc, true).await?;
        index_new(w, &inc).await?;
        let doc = serde_json::to_value(&inc).unwrap_or_default();
        incident_event(
            w,
            now,
            actor,
            id,
            "incident.declared",
            json!({ "incident": doc }),
        )
        .await?;
        Ok(inc)
    }

    /// Reads one incident.
    pub async fn incident(&self, id: i64) -> Result<Incident, StoreError> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        parse_doc(doc, id)
    }

    pub(crate) async fn incident_exists(&self, id: i64) -> Result<(), StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        if n == 0 {
            return Err(StoreError::not_found(format!("incident INC-{id}")));
        }
        Ok(())
    }

    pub(crate) async fn lock_incident(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<Incident, StoreError> {
        let doc: Option<String> = sqlx::query_scalar(&format!(
            "SELECT doc FROM incidents WHERE id = $1{}",
            self.for_no_key_update()
        ))
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?;
        parse_doc(doc, id)
    }

    /// Applies a partial update; records one `incident.updated` event listing
    /// every changed field with old and new values (none if nothing changed).
    pub async fn update_incident(
        &self,
        settings: &IncidentSettings,
        id: i64,
        patch: &IncidentPatch,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Incident, StoreError> {
        let mut w = self.write().await?;
        let cur = self.lock_incident(&mut w, id).await?;
        let (next, changes) = change::apply_patch(settings, &cur, patch, now)?;
        if changes.is_empty() {
            return Ok(cur);
        }
        self.check_references(&mut w, settings, &next).await?;
        write_incident(&mut w, settings, &next, false).await?;
        refresh_search(&mut w, &next).await?;
        incident_event(
            &mut w,
            now,
            actor,
            id,
            "incident.updated",
            json!({ "changes": changes }),
        )
        .await?;
        w.commit().await?;
        Ok(next)
    }

    /// Moves an incident through the lifecycle; returns the incident and whether
    /// the status moved or closure now waits for the reporter.
    pub async fn transition_incident(
        &self,
        settings: &IncidentSettings,
        id: i64,
        to: Status,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(Incident, Moved), StoreError> {
        // The incident is locked before its alerts here, but an alert event locks
        // its alert before the incident: on PostgreSQL the two can deadlock, and
        // the one chosen to fail is simply run again.
        let mut attempt = 0;
        loop {
            match self.transition_once(settings, id, to, actor, now).await {
                Err(e) if crate::batch::retryable(&e) && attempt < 3 => attempt += 1,
                result => return result,
            }
        }
    }

    async fn transition_once(
        &self,
        settings: &IncidentSettings,
        id: i64,
        to: Status,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(Incident, Moved), StoreError> {
        let mut w = self.write().await?;
        let result = self
            .transition_in(&mut w, settings, id, to, actor, now)
            .await?;
        if result.1 == Moved::Status {
            self.incident_acts_on_alerts(&mut w, id, result.0.status, actor, now)
                .await?;
        }
        w.commit().await?;
        Ok(result)
    }

    /// Moves an incident inside the caller's transaction.
    pub(crate) async fn transition_in(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        id: i64,
        to: Status,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(Incident, Moved), StoreError> {
        let cur = self.lock_incident(w, id).await?;
        let (next, moved, changes) = change::transition(settings, &cur, to, actor.user_id, now)?;
        if changes.is_empty() {
            // Closure was already requested; asking again changes nothing.
            return Ok((cur, moved));
        }
        write_incident(w, settings, &next, false).await?;
        let (kind, data) = match moved {
            Moved::Status => (
                "incident.status_changed",
                json!({ "from": cur.status, "to": next.status,
                        "reopened": cur.status.is_reopen(next.status), "changes": changes }),
            ),
            Moved::ClosureRequested => (
                "incident.closure_requested",
                json!({ "reporter_id": cur.reporter_id, "changes": changes }),
            ),
        };
        incident_event(w, now, actor, id, kind, data).await?;
        self.escalation_follows_status(w, id, cur.status, next.status, actor, now)
            .await?;
        Ok((next, moved))
    }

    /// The reporter confirms (closes) or rejects (reopens) a requested closure.
    pub async fn confirm_closure(
        &self,
        settings: &IncidentSettings,
        id: i64,
        accept: bool,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Incident, StoreError> {
        let mut w = self.write().await?;
        let cur = self.lock_incident(&mut w, id).await?;
        let (next, changes) = change::confirm_closure(&cur, accept, actor.user_id, now)?;
        write_incident(&mut w, settings, &next, false).await?;
        incident_event(
            &mut w,
            now,
            actor,
            id,
            if accept {
                "incident.closure_confirmed"
            } else {
                "incident.closure_rejected"
            },
            json!({ "from": cur.status, "to": next.status, "changes": changes }),
        )
        .await?;
        if accept {
            self.incident_acts_on_alerts(&mut w, id, next.status, actor, now)
                .await?;
        }
        w.commit().await?;
        Ok(next)
    }

    /// Lists incidents matching `f`, one page at a time, in a stable order.
    pub async fn list_incidents(
        &self,
        settings: &IncidentSettings,
        f: &IncidentFilter,
    ) -> Result<IncidentPage, StoreError> {
        let mut sql = String::from("SELECT i.doc, i.id, i.created_at, i.updated_at, i.priority, i.severity_rank FROM incidents i WHERE 1 = 1");
        let mut args: Vec<Arg> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, a: Arg| {
            args.push(a);
            sql.push_str(&clause.replace("$?", &format!("${}", args.len())));
        };
        in_list(
            &mut sql,
            &mut push,
            "i.status",
            f.statuses.iter().map(|s| s.as_str().to_string()),
        );
        in_list(
            &mut sql,
            &mut push,
            "i.severity",
            f.severities.iter().cloned(),
        );
        in_list(
            &mut sql,
            &mut push,
            "i.priority",
            f.priorities.iter().map(|p| p.as_str().to_string()),
        );
        in_list(
            &mut sql,
            &mut push,
            "i.incident_type",
            f.types.iter().cloned(),
        );
        if let Some(s) = f.service_id {
            push(
                &mut sql,
                " AND i.id IN (SELECT incident_id FROM incident_services WHERE service_id = $?)",
                Arg::I(s),
            );
        }
        if let Some(a) = f.assignee_id {
            push(&mut sql, " AND i.assignee_id = $?", Arg::I(a));
        }
        if let Some(l) = &f.label {
            push(
                &mut sql,
                " AND i.id IN (SELECT incident_id FROM incident_labels WHERE label = $?)",
                Arg::S(l.clone()),
            );
        }
        if let Some(t) = f.created_from {
            push(&mut sql, " AND i.created_at >= $?", Arg::I(to_millis(t)));
        }
        if let Some(t) = f.created_to {
            push(&mut sql, " AND i.created_at < $?", Arg::I(to_millis(t)));
        }
        if let Some(q) = &f.q {
            let Some(query) = self.search_query(q) else {
                return Ok(IncidentPage {
                    items: Vec::new(),
                    next_cursor: None,
                });
            };
            let clause = match self.backend {
                Backend::Sqlite => " AND i.id IN (SELECT rowid FROM incident_search WHERE incident_search MATCH $?)",
                Backend::Postgres => " AND i.id IN (SELECT rowid FROM incident_search WHERE tsv @@ to_tsquery('english', $?))",
            };
            push(&mut sql, clause, Arg::S(query));
        }
        let (key_col, key_desc) = match f.sort {
            IncidentSort::Newest | IncidentSort::Oldest => ("i.id", f.sort == IncidentSort::Newest),
            IncidentSort::Updated => ("i.updated_at", true),
            IncidentSort::Priority => ("i.priority", false),
            IncidentSort::Severity => ("i.severity_rank", false),
        };
        let id_desc = f.sort != IncidentSort::Oldest;
        if let Some(c) = &f.cursor {
            let cur = decode_cursor(c)?;
            let (k_op, id_op) = (
                if key_desc { "<" } else { ">" },
                if id_desc { "<" } else { ">" },
            );
            let key = match &cur.k {
                serde_json::Value::String(s) => Arg::S(s.clone()),
                v => Arg::I(v.as_i64().ok_or_else(bad_cursor)?),
            };
            if key_col == "i.id" {
                push(&mut sql, &format!(" AND i.id {id_op} $?"), Arg::I(cur.id));
            } else {
                let key2 = match &key {
                    Arg::S(s) => Arg::S(s.clone()),
                    Arg::I(i) => Arg::I(*i),
                };
                push(&mut sql, &format!(" AND ({key_col} {k_op} $?"), key);
                push(&mut sql, &format!(" OR ({key_col} = $?"), key2);
                push(&mut sql, &format!(" AND i.id {id_op} $?))"), Arg::I(cur.id));
            }
        }
        let dir = |desc: bool| if desc { "DESC" } else { "ASC" };
        if key_col == "i.id" {
            sql.push_str(&format!(" ORDER BY i.id {}", dir(id_desc)));
        } else {
            sql.push_str(&format!(
                " ORDER BY {key_col} {}, i.id {}",
                dir(key_desc),
                dir(id_desc)
            ));
        }
        let limit = f.limit.clamp(1, 500);
        push(&mut sql, " LIMIT $?", Arg::I(limit + 1));
        let mut query = sqlx::query(&sql);
        for a in args {
            query = match a {
                Arg::I(i) => query.bind(i),
                Arg::S(s) => query.bind(s),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        let more = rows.len() as i64 > limit;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            let doc: String = row.try_get("doc")?;
            let id: i64 = row.try_get("id")?;
            let k = match f.sort {
                IncidentSort::Newest | IncidentSort::Oldest => json!(id),
                IncidentSort::Updated => json!(row.try_get::<i64, _>("updated_at")?),
                IncidentSort::Priority => json!(row.try_get::<String, _>("priority")?),
                IncidentSort::Severity => json!(row.try_get::<i64, _>("severity_rank")?),
            };
            last = Some(Cursor { k, id });
            items.push(parse_doc(Some(doc), id)?);
        }
        let _ = settings;
        let next_cursor = if more {
            last.map(|c| encode_cursor(&c))
        } else {
            None
        };
        Ok(IncidentPage { items, next_cursor })
    }

    /// Open and closed incident counts by status, for /metrics.
    /// Open incidents counted by (severity, status).
    pub async fn open_incident_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT severity, status, COUNT(*) AS n FROM incidents \
             WHERE status NOT IN ('resolved', 'closed') GROUP BY severity, status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("severity")?,
                    r.try_get("status")?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    pub async fn incident_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM incidents GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    // The search syntax of both engines is turned into a plain AND of the words
    // given, so no user input can make a query fail to parse.
    fn search_query(&self, q: &str) -> Option<String> {
        let words: Vec<String> = q
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(32)
            .map(|w| w.to_lowercase())
            .collect();
        if words.is_empty() {
            return None;
        }
        Some(match self.backend {
            Backend::Sqlite => words
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" "),
            Backend::Postgres => words.join(" & "),
        })
    }

    pub(crate) async fn check_references(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        inc: &Incident,
    ) -> Result<(), StoreError> {
        for (field, user) in change::referenced_users(settings, inc) {
            self.check_exists(w, "users", user, &field, "user").await?;
        }
        for s in &inc.service_ids {
            self.check_exists(w, "services", *s, "service_ids", "service")
                .await?;
        }
        for r in &inc.related {
            self.check_exists(w, "incidents", r.incident_id, "related", "incident")
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn check_exists(
        &self,
        w: &mut WriteTx,
        table: &'static str,
        id: i64,
        field: &str,
        what: &str,
    ) -> Result<(), StoreError> {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *w.tx)
            .await?;
        if n == 0 {
            return Err(Invalid::new(field, format!("{what} {id} does not exist")).into());
        }
        Ok(())
    }
}

fn in_list(
    sql: &mut String,
    push: &mut impl FnMut(&mut String, &str, Arg),
    col: &str,
    values: impl Iterator<Item = String>,
) {
    let values: Vec<String> = values.collect();
    if values.is_empty() {
        return;
    }
    sql.push_str(&format!(" AND {col} IN ("));
    for (i, v) in values.into_iter().enumerate() {
        push(sql, if i == 0 { "$?" } else { ", $?" }, Arg::S(v));
    }
    sql.push(')');
}

pub(crate) fn parse_doc(doc: Option<String>, id: i64) -> Result<Incident, StoreError> {
    let doc = doc.ok_or_else(|| StoreError::not_found(format!("incident INC-{id}")))?;
    serde_json::from_str(&doc)
        .map_err(|e| StoreError::Config(format!("stored incident INC-{id} is unreadable: {e}")))
}

fn bad_cursor() -> StoreError {
    Invalid::new("cursor", "not a cursor returned by this list").into()
}

fn encode_cursor(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode_cursor(s: &str) -> Result<Cursor, StoreError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad_cursor())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_cursor())
}

pub(crate) async fn write_incident(
    w: &mut WriteTx,
    settings: &IncidentSettings,
    inc: &Incident,
    new: bool,
) -> Result<(), StoreError> {
    let doc = serde_json::to_string(inc).unwrap_or_default();
    let sql = if new {
        "INSERT INTO incidents (status, severity, severity_rank, priority, incident_type, assignee_id, \
         created_at, updated_at, doc, id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    } else {
        "UPDATE incidents SET status = $1, severity = $2, severity_rank = $3, priority = $4, \
         incident_type = $5, assignee_id = $6, created_at = $7, updated_at = $8, doc = $9 WHERE id = $10"
    };
    sqlx::query(sql)
        .bind(inc.status.as_str())
        .bind(&inc.severity)
        .bind(settings.severity_rank(&inc.severity) as i64)
        .bind(inc.priority.as_str())
        .bind(&inc.incident_type)
        .bind(inc.assignee_id)
        .bind(to_millis(inc.created_at))
        .bind(to_millis(inc.updated_at))
        .bind(doc)
        .bind(inc.id)
        .execute(&mut *w.tx)
        .await?;
    // A new incident has no rows to replace yet.
    if !new {
        sqlx::query("DELETE FROM incident_services WHERE incident_id = $1")
            .bind(inc.id)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("DELETE FROM incident_labels WHERE incident_id = $1")
            .bind(inc.id)
            .execute(&mut *w.tx)
            .await?;
    }
    for s in &inc.service_ids {
        sqlx::query("INSERT INTO incident_services (incident_id, service_id) VALUES ($1, $2)")
            .bind(inc.id)
            .bind(*s)
            .execute(&mut *w.tx)
            .await?;
    }
    for l in &inc.labels {
        sqlx::query("INSERT INTO incident_labels (incident_id, label) VALUES ($1, $2)")
            .bind(inc.id)
            .bind(l)
            .execute(&mut *w.tx)
            .await?;
    }
    crate::analytics::write_facts(w, inc).await
}

/// Indexes a new incident for search (it has no notes or old document yet).
pub(crate) async fn index_new(w: &mut WriteTx, inc: &Incident) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO incident_search (rowid, doc) VALUES ($1, $2)")
        .bind(inc.id)
        .bind(search_doc(inc, Vec::new()))
        .execute(&mut *w.tx)
        .await?;
    Ok(())
}

fn search_doc(inc: &Incident, notes: Vec<String>) -> String {
    let mut doc = vec![
        inc.number.clone(),
        inc.title.clone(),
        inc.description.clone(),
    ];
    doc.extend(inc.error_code.iter().cloned());
    doc.extend(inc.root_cause.iter().cloned());
    doc.extend(inc.resolution_summary.iter().cloned());
    doc.extend(inc.labels.iter().cloned());
    doc.extend(notes);
    doc.join("\n")
}

/// Rebuilds the incident's search document from its text fields and notes.
pub(crate) async fn refresh_search(w: &mut WriteTx, inc: &Incident) -> Result<(), StoreError> {
    let notes: Vec<String> =
        sqlx::query_scalar("SELECT body FROM notes WHERE incident_id = $1 ORDER BY id")
            .bind(inc.id)
            .fetch_all(&mut *w.tx)
            .await?;
    sqlx::query("DELETE FROM incident_search WHERE rowid = $1")
        .bind(inc.id)
        .execute(&mut *w.tx)
        .await?;
    sqlx::query("INSERT INTO incident_search (rowid, doc) VALUES ($1, $2)")
        .bind(inc.id)
        .bind(search_doc(inc, notes))
        .execute(&mut *w.tx)
        .await?;
    Ok(())
}
