//! The trigger dispatcher: exactly one run per (event, matching workflow).
//!
//! An event that some enabled workflow listens to is queued in the
//! transaction that appends it (`after_append`), so a queued event exists if
//! and only if its change committed. The dispatcher claims queue rows
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL: a row another node holds is
//! passed over, never waited for), and in one transaction matches each event
//! against the enabled workflows, evaluates their conditions, applies their
//! limits, creates the runs and deletes the row. A crash before that commit
//! leaves the row for the next claim; after it, the row is gone. So each event
//! starts each matching workflow once, on whichever node claims it, however
//! many nodes run and however often they restart.
//!
//! A cursor over event ids would not do on PostgreSQL: ids are taken when a
//! transaction inserts, not when it commits, so a reader can see id 11
//! committed while 10 is still in flight and later commits (see web/live.rs).

use std::sync::Arc;

use serde_json::{json, Map, Value};
use sqlx::Row;
use tocsin_core::incident::Status;
use tocsin_core::model::Incident;
use tocsin_core::time::{from_millis, Timestamp};
use tocsin_core::workflow::guard::ChainLink;
use tocsin_core::workflow::trigger::AlertEvent;
use tocsin_core::workflow::{Definition, Event, Trigger};

use super::runs::NewRun;
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Queue rows taken per dispatch transaction.
const BATCH: i64 = 50;

/// What one dispatch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Queued events handled (and removed from the queue).
    pub events: usize,
    /// Runs created.
    pub runs: Vec<i64>,
    /// Runs a limit refused (recorded on the incident's timeline).
    pub refused: usize,
}

/// One change an event describes, owned, for [`Event`].
enum Change {
    Declared,
    Field {
        field: String,
        from: Option<String>,
        to: Option<String>,
    },
    Alert {
        fired: bool,
    },
}

struct Queued {
    event_id: i64,
    chain: Vec<ChainLink>,
    at: Timestamp,
    actor: String,
    entity_id: i64,
    incident_id: Option<i64>,
    kind: String,
    data: Value,
}

impl Store {
    /// Handles queued trigger events (a batch per transaction) until none is
    /// left that this node can claim.
    pub async fn dispatch_workflow_triggers(
        &self,
        now: Timestamp,
    ) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        loop {
            let has: Option<i64> =
                sqlx::query_scalar("SELECT event_id FROM workflow_trigger_queue LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
            if has.is_none() {
                return Ok(report);
            }
            let n = self.dispatch_batch(now, &mut report).await?;
            if n == 0 {
                // Every queued row is another node's for the moment.
                return Ok(report);
            }
        }
    }

    async fn dispatch_batch(
        &self,
        now: Timestamp,
        report: &mut DispatchReport,
    ) -> Result<usize, StoreError> {
        let mut w = self.write().await?;
        let rows = sqlx::query(&format!(
            "SELECT q.event_id, q.chain, e.at, e.actor, e.entity_id, e.incident_id, e.kind, e.data \
             FROM workflow_trigger_queue q JOIN events e ON e.id = q.event_id \
             ORDER BY q.event_id LIMIT $1{}",
            match self.backend {
                crate::Backend::Sqlite => "",
                crate::Backend::Postgres => " FOR UPDATE OF q SKIP LOCKED",
            }
        ))
        .bind(BATCH)
        .fetch_all(&mut *w.tx)
        .await?;
        if rows.is_empty() {
            w.rollback().await?;
            return Ok(0);
        }
        let workflows = self.enabled_workflows(&mut w).await?;
        for r in &rows {
            let q = Queued {
                event_id: r.try_get("event_id")?,
                chain: r
                    .try_get::<Option<String>, _>("chain")?
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or_default(),
                at: from_millis(r.try_get("at")?),
                actor: r.try_get("actor")?,
                entity_id: r.try_get("entity_id")?,
                incident_id: r.try_get("incident_id")?,
                kind: r.try_get("kind")?,
                data: serde_json::from_str(&r.try_get::<String, _>("data")?).unwrap_or(Value::Null),
            };
            self.dispatch_one(&mut w, &q, &workflows, now, report)
                .await?;
            sqlx::query("DELETE FROM workflow_trigger_queue WHERE event_id = $1")
                .bind(q.event_id)
                .execute(&mut *w.tx)
                .await?;
            report.events += 1;
        }
        w.commit().await?;
        Ok(rows.len())
    }

    async fn enabled_workflows(
        &self,
        w: &mut WriteTx,
    ) -> Result<Vec<(i64, i64, Arc<Definition>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, current_version_id FROM workflows WHERE enabled = 1 AND deleted_at IS NULL ORDER BY id",
        )
        .fetch_all(&mut *w.tx)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let (id, version_id): (i64, i64) = (r.try_get("id")?, r.try_get("current_version_id")?);
            match self.definition_in(w, version_id).await {
                Ok(def) => out.push((id, version_id, def)),
                Err(e) => tracing::error!(workflow_id = id, error = %e, "workflow skipped"),
            }
        }
        Ok(out)
    }

    async fn dispatch_one(
        &self,
        w: &mut WriteTx,
        q: &Queued,
        workflows: &[(i64, i64, Arc<Definition>)],
        now: Timestamp,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        let changes = changes_of(q);
        if changes.is_empty() {
            return Ok(());
        }
        let alert = match changes.first() {
            Some(Change::Alert { .. }) => self.alert_in(w, q.entity_id).await?,
            _ => None,
        };
        let incident_id = q
            .incident_id
            .or_else(|| alert.as_ref().and_then(|(a, _)| a.incident_id));
        let mut incident: Option<Option<Value>> = None;
        for (workflow_id, version_id, def) in workflows {
            if let Trigger::IncidentIdle { after } = &def.trigger {
                if let Some(id) = q.incident_id.filter(|_| arms_idle(q)) {
                    self.arm_idle(w, *workflow_id, id, q.at + after.to_duration(), None, now)
                        .await?;
                }
                continue;
            }
            let matched = changes.iter().find(|c| {
                let ev = match c {
                    Change::Declared => Event::IncidentDeclared,
                    Change::Field { field, from, to } => Event::IncidentChanged {
                        field,
                        from: from.as_deref(),
                        to: to.as_deref(),
                    },
                    Change::Alert { fired } => {
                        let Some((a, service)) = &alert else {
                            return false;
                        };
                        let e = AlertEvent {
                            service,
                            service_id: a.service_id,
                            alert: a,
                        };
                        if *fired {
                            Event::AlertFired(e)
                        } else {
                            Event::AlertResolved(e)
                        }
                    }
                };
                def.trigger.matches(&ev)
            });
            let Some(change) = matched else { continue };
            if incident.is_none() {
                incident = Some(match incident_id {
                    Some(id) => self.incident_json_in(w, id).await?,
                    None => None,
                });
            }
            let mut ctx = Map::new();
            ctx.insert(
                "trigger".into(),
                json!({ "kind": def.trigger.kind(), "at": q.at, "event_id": q.event_id, "event": q.kind }),
            );
            if let Some(Some(inc)) = &incident {
                ctx.insert("incident".into(), inc.clone());
            }
            if let Some((a, service)) = &alert {
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["service"] = json!(service);
                ctx.insert("alert".into(), v);
            }
            if let Change::Field { field, from, to } = change {
                ctx.insert(
                    "event".into(),
                    json!({ "field": field, "from": from, "to": to, "by": q.actor }),
                );
            }
            let ctx = Value::Object(ctx);
            match def.conditions_hold(&ctx) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(workflow_id, error = %e, "workflow condition failed; not run");
                    continue;
                }
            }
            let subject = match (&alert, incident_id) {
                (Some((a, _)), _) => Some(format!("alert:{}", a.id)),
                (None, Some(i)) => Some(format!("incident:{i}")),
                (None, None) => None,
            };
            let run = NewRun {
                workflow_id: *workflow_id,
                version_id: *version_id,
                incident_id,
                subject,
                trigger_kind: def.trigger.kind(),
                trigger_event_id: Some(q.event_id),
                chain: q.chain.clone(),
                context: ctx,
                started_by: None,
            };
            match self.start_run_in(w, def, run, now).await? {
                Ok(id) => report.runs.push(id),
                Err(_) => report.refused += 1,
            }
        }
        Ok(())
    }

    async fn alert_in(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<Option<(tocsin_core::alert::Alert, String)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {}, (SELECT name FROM services s WHERE s.id = alerts.service_id) AS service_name \
             FROM alerts WHERE id = $1",
            crate::alerts::COLUMNS
        ))
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((
            crate::alerts::alert(&row)?,
            row.try_get::<Option<String>, _>("service_name")?
                .unwrap_or_default(),
        )))
    }

    /// The incident as templates see it: the API's fields, plus `services`
    /// (names) and `url`. `None` when it does not exist.
    pub(crate) async fn incident_json_in(
        &self,
        w: &mut WriteTx,
        id: i64,
    ) -> Result<Option<Value>, StoreError> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *w.tx)
            .await?;
        let Some(doc) = doc else { return Ok(None) };
        let inc: Incident = crate::incidents::parse_doc(Some(doc), id)?;
        let mut names = Vec::new();
        for s in &inc.service_ids {
            let n: Option<String> = sqlx::query_scalar("SELECT name FROM services WHERE id = $1")
                .bind(s)
                .fetch_optional(&mut *w.tx)
                .await?;
            names.extend(n);
        }
        let mut v = serde_json::to_value(&inc).unwrap_or_default();
        v["services"] = json!(names);
        v["url"] = json!(format!("{}/incidents/{}", self.public_url(), inc.id));
        Ok(Some(v))
    }

    /// The same outside a transaction (manual runs, dry-runs).
    pub async fn incident_context(&self, id: i64) -> Result<Value, StoreError> {
        let mut w = self.write().await?;
        let v = self.incident_json_in(&mut w, id).await?;
        w.rollback().await?;
        v.ok_or_else(|| StoreError::not_found(format!("incident INC-{id}")))
    }

    /// Where people reach this instance, for `incident.url` in templates.
    pub fn set_public_url(&self, url: &str) {
        if let Ok(mut u) = self.workflows.public_url.write() {
            *u = url.trim_end_matches('/').to_string();
        }
    }

    pub(crate) fn public_url(&self) -> String {
        self.workflows
            .public_url
            .read()
            .map(|u| u.clone())
            .unwrap_or_default()
    }
}

// Idle timers start when an incident is declared or opens again.
fn arms_idle(q: &Queued) -> bool {
    match q.kind.as_str() {
        "incident.declared" => true,
        "incident.status_changed" | "incident.closure_rejected" => q.data["to"]
            .as_str()
            .and_then(Status::parse)
            .is_some_and(|s| s.is_open()),
        _ => false,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(text_of)
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

// What a queued event changed, in the trigger's terms: roles and custom
// fields are one change per role or field (`roles.commander`).
fn changes_of(q: &Queued) -> Vec<Change> {
    let field = |field: &str, from: &Value, to: &Value| Change::Field {
        field: field.to_string(),
        from: text_of(from),
        to: text_of(to),
    };
    match q.kind.as_str() {
        "incident.declared" => vec![Change::Declared],
        "incident.status_changed" | "incident.closure_confirmed" | "incident.closure_rejected" => {
            vec![field("status", &q.data["from"], &q.data["to"])]
        }
        "incident.updated" => {
            let mut out = Vec::new();
            for c in q.data["changes"].as_array().into_iter().flatten() {
                let (name, old, new) = (
                    c["field"].as_str().unwrap_or_default(),
                    &c["old"],
                    &c["new"],
                );
                match name {
                    "roles" | "custom_fields" => {
                        let empty = Map::new();
                        let (o, n) = (
                            old.as_object().unwrap_or(&empty),
                            new.as_object().unwrap_or(&empty),
                        );
                        let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
                        keys.sort();
                        keys.dedup();
                        for k in keys {
                            let (a, b) = (
                                o.get(k).unwrap_or(&Value::Null),
                                n.get(k).unwrap_or(&Value::Null),
                            );
                            if a != b {
                                out.push(field(&format!("{name}.{k}"), a, b));
                            }
                        }
                    }
                    other => out.push(field(other, old, new)),
                }
            }
            out
        }
        "alert.triggered" | "alert.unsuppressed" => vec![Change::Alert { fired: true }],
        "alert.resolved" => vec![Change::Alert { fired: false }],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(kind: &str, data: Value) -> Queued {
        Queued {
            event_id: 1,
            chain: Vec::new(),
            at: from_millis(0),
            actor: "Ada".into(),
            entity_id: 7,
            incident_id: Some(7),
            kind: kind.into(),
            data,
        }
    }

    fn fields(q: &Queued) -> Vec<(String, Option<String>, Option<String>)> {
        changes_of(q)
            .into_iter()
            .filter_map(|c| match c {
                Change::Field { field, from, to } => Some((field, from, to)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn roles_and_custom_fields_change_one_by_one() {
        let q = queued(
            "incident.updated",
            json!({ "changes": [
                { "field": "severity", "old": "SEV3", "new": "SEV1" },
                { "field": "roles", "old": { "commander": [1] }, "new": { "commander": [2], "scribe": [3, 4] } },
                { "field": "custom_fields", "old": { "region": "eu" }, "new": { "region": "eu", "tier": 1 } },
            ]}),
        );
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            fields(&q),
            vec![
                ("severity".into(), some("SEV3"), some("SEV1")),
                ("roles.commander".into(), some("1"), some("2")),
                ("roles.scribe".into(), None, some("3,4")),
                ("custom_fields.tier".into(), None, some("1")),
            ]
        );
        let q = queued(
            "incident.status_changed",
            json!({ "from": "triggered", "to": "resolved" }),
        );
        assert_eq!(
            fields(&q),
            vec![("status".into(), some("triggered"), some("resolved"))]
        );
        assert!(changes_of(&queued("incident.note_added", json!({}))).is_empty());
    }

    #[test]
    fn idle_timers_start_with_declaration_and_reopening() {
        assert!(arms_idle(&queued("incident.declared", json!({}))));
        assert!(arms_idle(&queued(
            "incident.status_changed",
            json!({ "from": "resolved", "to": "triggered" })
        )));
        assert!(!arms_idle(&queued(
            "incident.status_changed",
            json!({ "from": "triggered", "to": "resolved" })
        )));
        assert!(!arms_idle(&queued("incident.updated", json!({}))));
    }
}
