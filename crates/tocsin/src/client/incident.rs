//! `tocsin incident …`

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::http::Api;
use super::output;

/// Incident commands.
#[derive(Debug, Subcommand)]
pub enum IncidentCmd {
    /// Declare an incident; you are its reporter.
    Declare {
        /// One-line summary.
        #[arg(long)]
        title: String,
        /// Severity, e.g. SEV2 (default: the least severe configured).
        #[arg(long)]
        severity: Option<String>,
        /// Impact: high, medium or low.
        #[arg(long)]
        impact: Option<String>,
        /// Urgency: high, medium or low.
        #[arg(long)]
        urgency: Option<String>,
        /// Type (category), e.g. software.
        #[arg(long = "type")]
        incident_type: Option<String>,
        /// Affected service id (repeatable).
        #[arg(long = "service")]
        services: Vec<i64>,
        /// Markdown description.
        #[arg(long)]
        description: Option<String>,
        /// Label (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// List incidents, newest first.
    List {
        /// Statuses, comma-separated.
        #[arg(long)]
        status: Option<String>,
        /// Severities, comma-separated.
        #[arg(long)]
        severity: Option<String>,
        /// Priorities, comma-separated.
        #[arg(long)]
        priority: Option<String>,
        /// Affected service id.
        #[arg(long)]
        service: Option<i64>,
        /// Assignee user id.
        #[arg(long)]
        assignee: Option<i64>,
        /// Label.
        #[arg(long)]
        label: Option<String>,
        /// Full-text search.
        #[arg(long)]
        q: Option<String>,
        /// newest, oldest, updated, priority or severity.
        #[arg(long)]
        sort: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Follow every page, not just the first.
        #[arg(long)]
        all: bool,
    },
    /// Show an incident with its timeline.
    Show {
        /// INC-42 or 42.
        id: String,
    },
    /// Change fields of an incident.
    Update {
        /// INC-42 or 42.
        id: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        impact: Option<String>,
        #[arg(long)]
        urgency: Option<String>,
        #[arg(long = "type")]
        incident_type: Option<String>,
        /// Assignee user id.
        #[arg(long)]
        assignee: Option<i64>,
        #[arg(long)]
        root_cause: Option<String>,
        /// Resolution summary.
        #[arg(long)]
        resolution: Option<String>,
        /// Replace the labels (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// Acknowledge.
    Ack { id: String },
    /// Resolve.
    Resolve { id: String },
    /// Close (may wait for the reporter's confirmation).
    Close { id: String },
    /// Reopen a resolved or closed incident (to investigating).
    Reopen { id: String },
    /// Move to any status the lifecycle allows.
    Status { id: String, status: String },
    /// As the reporter, confirm (or --reject) a requested closure.
    Confirm {
        id: String,
        #[arg(long)]
        reject: bool,
    },
    /// Add a note (markdown).
    Note {
        id: String,
        body: String,
        /// Mark it as a decision.
        #[arg(long, conflicts_with = "approval")]
        decision: bool,
        /// Mark it as an approval (by you).
        #[arg(long)]
        approval: bool,
    },
    /// Attach a file.
    Attach {
        id: String,
        file: PathBuf,
        /// Content type (default: guessed from the extension).
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Print the timeline.
    Timeline { id: String },
}

fn set(body: &mut Map<String, Value>, key: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        body.insert(key.into(), v.into());
    }
}

/// Runs an incident command.
pub async fn run(api: &Api, cmd: IncidentCmd) -> anyhow::Result<()> {
    use IncidentCmd::*;
    match cmd {
        Declare {
            title,
            severity,
            impact,
            urgency,
            incident_type,
            services,
            description,
            labels,
        } => {
            let mut b = Map::new();
            b.insert("title".into(), title.into());
            set(&mut b, "severity", severity);
            set(&mut b, "impact", impact);
            set(&mut b, "urgency", urgency);
            set(&mut b, "type", incident_type);
            set(&mut b, "description", description);
            b.insert("service_ids".into(), json!(services));
            b.insert("labels".into(), json!(labels));
            let inc = api
                .json(Method::POST, "/api/v1/incidents", &Value::Object(b))
                .await?;
            show_incident(api, &inc, false);
        }
        List {
            status,
            severity,
            priority,
            service,
            assignee,
            label,
            q,
            sort,
            limit,
            all,
        } => {
            let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
            let opts = [
                ("status", status),
                ("severity", severity),
                ("priority", priority),
                ("label", label),
                ("q", q),
                ("sort", sort),
                ("service_id", service.map(|s| s.to_string())),
                ("assignee_id", assignee.map(|a| a.to_string())),
            ];
            query.extend(opts.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut q = query.clone();
                if let Some(c) = &cursor {
                    q.push(("cursor", c.clone()));
                }
                let qs = serde_urlencoded(&q);
                let page = api.get(&format!("/api/v1/incidents?{qs}")).await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                cursor = page["next_cursor"].as_str().map(str::to_string);
                if !all || cursor.is_none() {
                    break;
                }
            }
            if api.json {
                output::json(&Value::Array(items));
            } else {
                output::objects(
                    &items,
                    &[
                        "NUMBER", "STATUS", "SEVERITY", "PRIORITY", "TITLE", "CREATED",
                    ],
                    &[
                        "number",
                        "status",
                        "severity",
                        "priority",
                        "title",
                        "created_at",
                    ],
                );
            }
        }
        Show { id } => {
            let inc = api.get(&format!("/api/v1/incidents/{id}")).await?;
            if api.json {
                let notes = api.get(&format!("/api/v1/incidents/{id}/notes")).await?;
                let timeline = api.get(&format!("/api/v1/incidents/{id}/timeline")).await?;
                output::json(&json!({ "incident": inc, "notes": notes, "timeline": timeline }));
            } else {
                show_incident(api, &inc, true);
                println!("\nTimeline:");
                print_timeline(&api.get(&format!("/api/v1/incidents/{id}/timeline")).await?);
            }
        }
        Update {
            id,
            title,
            description,
            severity,
            impact,
            urgency,
            incident_type,
            assignee,
            root_cause,
            resolution,
            labels,
        } => {
            let mut b = Map::new();
            set(&mut b, "title", title);
            set(&mut b, "description", description);
            set(&mut b, "severity", severity);
            set(&mut b, "impact", impact);
            set(&mut b, "urgency", urgency);
            set(&mut b, "type", incident_type);
            set(&mut b, "assignee_id", assignee);
            set(&mut b, "root_cause", root_cause);
            set(&mut b, "resolution_summary", resolution);
            if !labels.is_empty() {
                b.insert("labels".into(), json!(labels));
            }
            let inc = api
                .json(
                    Method::PATCH,
                    &format!("/api/v1/incidents/{id}"),
                    &Value::Object(b),
                )
                .await?;
            show_incident(api, &inc, false);
        }
        Ack { id } => move_to(api, &id, "acknowledged").await?,
        Resolve { id } => move_to(api, &id, "resolved").await?,
        Close { id } => move_to(api, &id, "closed").await?,
        Reopen { id } => move_to(api, &id, "investigating").await?,
        Status { id, status } => move_to(api, &id, &status).await?,
        Confirm { id, reject } => {
            let inc = api
                .json(
                    Method::POST,
                    &format!("/api/v1/incidents/{id}/closure-confirmation"),
                    &json!({ "accept": !reject }),
                )
                .await?;
            show_incident(api, &inc, false);
        }
        Note {
            id,
            body,
            decision,
            approval,
        } => {
            let kind = if decision {
                "decision"
            } else if approval {
                "approval"
            } else {
                "note"
            };
            let note = api
                .json(
                    Method::POST,
                    &format!("/api/v1/incidents/{id}/notes"),
                    &json!({ "body": body, "kind": kind }),
                )
                .await?;
            if api.json {
                output::json(&note);
            } else {
                println!("Added {kind} {} to {id}", note["id"]);
            }
        }
        Attach {
            id,
            file,
            content_type,
        } => {
            let data =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .context("the file needs a name")?
                .to_string();
            let ct = content_type.unwrap_or_else(|| guess_type(&name).to_string());
            let path = format!(
                "/api/v1/incidents/{id}/attachments?{}",
                serde_urlencoded(&[("filename", name.clone())])
            );
            let a = api.upload(&path, &ct, data).await?;
            if api.json {
                output::json(&a);
            } else {
                println!(
                    "Attached {name} ({} bytes, sha256 {}) to {id}",
                    a["size"],
                    output::cell(&a["sha256"])
                );
            }
        }
        Timeline { id } => {
            let t = api.get(&format!("/api/v1/incidents/{id}/timeline")).await?;
            if api.json {
                output::json(&t)
            } else {
                print_timeline(&t)
            }
        }
    }
    Ok(())
}

async fn move_to(api: &Api, id: &str, status: &str) -> anyhow::Result<()> {
    let r = api
        .json(
            Method::POST,
            &format!("/api/v1/incidents/{id}/status"),
            &json!({ "status": status }),
        )
        .await?;
    if api.json {
        output::json(&r);
    } else if r["outcome"] == "closure_requested" {
        println!("{} is resolved; closing waits for the reporter to confirm (tocsin incident confirm {}).",
            output::cell(&r["incident"]["number"]), output::cell(&r["incident"]["number"]));
    } else {
        println!(
            "{} is now {}",
            output::cell(&r["incident"]["number"]),
            output::cell(&r["incident"]["status"])
        );
    }
    Ok(())
}

fn show_incident(api: &Api, inc: &Value, full: bool) {
    if api.json {
        return output::json(inc);
    }
    let short = [
        "number", "title", "status", "severity", "priority", "impact", "urgency", "type",
    ];
    let long = [
        "number",
        "title",
        "status",
        "severity",
        "priority",
        "impact",
        "urgency",
        "type",
        "service_ids",
        "reporter_id",
        "assignee_id",
        "roles",
        "labels",
        "custom_fields",
        "error_code",
        "description",
        "root_cause",
        "resolution_summary",
        "occurred_at",
        "detected_at",
        "acknowledged_at",
        "mitigated_at",
        "resolved_at",
        "closed_at",
        "closure_requested_at",
        "related",
        "created_at",
        "updated_at",
    ];
    output::fields(inc, if full { &long } else { &short });
}

fn print_timeline(events: &Value) {
    let rows = events
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let detail = match e["kind"].as_str().unwrap_or("") {
                "incident.status_changed" => format!(
                    "{} -> {}",
                    output::cell(&e["data"]["from"]),
                    output::cell(&e["data"]["to"])
                ),
                "incident.note_added" => output::cell(&e["data"]["body"]),
                "incident.attachment_added" => output::cell(&e["data"]["filename"]),
                _ => e["data"]["changes"]
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .map(|c| output::cell(&c["field"]))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
            };
            vec![
                output::cell(&e["at"]),
                output::cell(&e["actor"]),
                output::cell(&e["kind"]),
                detail,
            ]
        })
        .collect();
    output::table(&["AT", "ACTOR", "EVENT", "DETAIL"], rows);
}

fn guess_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "json" => "application/json",
        "csv" => "text/csv",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// Encodes query pairs.
pub fn serde_urlencoded(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
