//! The incident room page: what it shows, gathered from the same store calls
//! the API's reads make.

use std::collections::HashMap;

use askama::Template;
use tocsin_core::fields::FieldKind;
use tocsin_core::incident::{Level, RelationKind, Status};
use tocsin_core::model::Incident;

use super::timeline::{self, Item};
use super::{orig_of, DETAIL_FIELDS, ROLE_FIELDS};
use crate::state::AppState;
use crate::web::common::{elapsed, severity_class};
use crate::web::dashboard::{alert_rows, AlertRow};
use crate::web::markdown;
use tocsin_store::WebSession;

use super::status::{panel, PanelState, StatusPanel};
use crate::web::{Chrome, WebResult};

/// An option of a select.
pub(crate) struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn opts<I: IntoIterator<Item = (String, String)>>(items: I, selected: &[String]) -> Vec<Opt> {
    items
        .into_iter()
        .map(|(value, label)| Opt {
            selected: selected.contains(&value),
            value,
            label,
        })
        .collect()
}

/// An incident role, its holders and the choice of users for its select.
pub(crate) struct RoleView {
    pub name: String,
    pub description: String,
    pub multiple: bool,
    pub holders: String,
    pub users: Vec<Opt>,
}

/// A custom field's input.
pub(crate) struct CustomView {
    pub name: String,
    pub description: String,
    /// `text`, `number`, `date`, `select`, `multi_select`, `user`.
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<Opt>,
}

pub(crate) struct RelView {
    pub kind: String,
    pub number: String,
    pub value: String,
}

pub(crate) struct AttachmentView {
    pub id: i64,
    pub filename: String,
    pub size: String,
    pub kind: &'static str,
    pub who: String,
    pub when: String,
}

pub(crate) struct DeliveryRow {
    pub recipient: String,
    pub channel: String,
    pub state: String,
    pub when: String,
}

/// A lifecycle move offered as a button.
pub(crate) struct Move {
    pub value: &'static str,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "room.html")]
pub(crate) struct RoomPage {
    pub chrome: Chrome,
    pub inc: Incident,
    /// The runbooks panel.
    pub runbooks: super::runbooks::RunbooksPanel,
    pub notice: Option<&'static str>,
    pub sev_class: String,
    pub since: String,
    pub age: String,
    pub declared: String,
    pub acknowledged: String,
    pub mitigated: String,
    pub resolved: String,
    pub closed: String,
    pub closure_requested: Option<String>,
    pub is_reporter: bool,
    pub reporter: String,
    pub assignee: String,
    pub services: String,
    pub roles: Vec<RoleView>,
    pub moves: Vec<Move>,
    pub escalation: Option<String>,
    pub levels: Vec<Opt>,
    pub assignees: Vec<Opt>,
    pub all_services: Vec<Opt>,
    pub severities: Vec<Opt>,
    pub types: Vec<Opt>,
    pub impacts: Vec<Opt>,
    pub urgencies: Vec<Opt>,
    /// One label per line, for the labels textarea.
    pub labels: String,
    pub custom: Vec<CustomView>,
    /// What the edit-details and roles forms show, posted back as their `orig`.
    pub fields_orig: String,
    pub roles_orig: String,
    pub related: Vec<RelView>,
    pub relation_kinds: Vec<Opt>,
    pub description_html: String,
    pub root_cause: String,
    pub resolution_summary: String,
    pub timeline: Vec<Item>,
    pub alerts: Vec<AlertRow>,
    pub attachments: Vec<AttachmentView>,
    pub deliveries: Vec<DeliveryRow>,
    /// The status-page panel.
    pub status_panel: StatusPanel,
    /// The workflows panel.
    pub workflows_panel: crate::web::workflows::WorkflowsPanel,
    /// The incident's postmortem, if it has one.
    pub postmortem: Option<i64>,
    /// Past incidents like this one.
    pub similar: super::similar::SimilarPanel,
}

/// The button's words for a move from `from` to `to`.
pub(crate) fn move_label(from: Status, to: Status) -> &'static str {
    if from.is_reopen(to) {
        return "Reopen";
    }
    match to {
        Status::Triggered => "Triggered",
        Status::Acknowledged => "Acknowledge",
        Status::Investigating => "Investigating",
        Status::Identified => "Identified",
        Status::Monitoring => "Monitoring",
        Status::Resolved => "Resolve",
        Status::Closed => "Close",
    }
}

/// What a finished post says on the room it comes back to; only these fixed
/// words are shown, never text from the address.
pub(crate) fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "closure_requested" => {
            "Closure requested: the incident stays resolved until its reporter confirms."
        }
        "escalated" => "Escalated: the level is being notified now.",
        "status_published" => "Published on the status page.",
        "status_updated" => "Status-page update posted.",
        _ => return None,
    })
}

/// `opts` with `current` selected, added as an option of its own if it is no
/// longer configured: a select must show (and post back) the value the
/// incident has, not fall back to its first option.
fn with_current(mut opts: Vec<Opt>, current: &[String]) -> Vec<Opt> {
    for (i, cur) in current.iter().filter(|c| !c.is_empty()).enumerate() {
        if !opts.iter().any(|o| &o.value == cur) {
            opts.insert(
                i,
                Opt {
                    value: cur.clone(),
                    label: format!("{cur} (no longer configured)"),
                    selected: true,
                },
            );
        }
    }
    opts
}

fn custom_value(kind: FieldKind, v: Option<&serde_json::Value>) -> String {
    match (kind, v) {
        (_, None | Some(serde_json::Value::Null)) => String::new(),
        (_, Some(serde_json::Value::String(s))) => s.clone(),
        (_, Some(other)) => other.to_string(),
    }
}

/// The room of incident `id` for `who`; `status` says what its status-page
/// panel shows (a chosen page or template, a refused form).
pub(crate) async fn room(
    state: &AppState,
    who: &WebSession,
    id: i64,
    notice: Option<&'static str>,
    status: PanelState,
) -> WebResult<RoomPage> {
    let inc = state.store.incident(id).await?;
    let chrome = Chrome::new(who, "incidents", format!("{} {}", inc.number, inc.title))
        .live(format!("incident:{id}"));
    let now = state.now();
    let users = state.store.users().await?;
    let names: HashMap<i64, String> = users.iter().map(|u| (u.id, u.name.clone())).collect();
    let name = |u: Option<i64>| u.and_then(|u| names.get(&u).cloned()).unwrap_or_default();
    let services = state.store.services().await?;
    let service_names: HashMap<i64, String> =
        services.iter().map(|s| (s.id, s.name.clone())).collect();
    let user_opts = |selected: &[i64]| {
        let sel: Vec<String> = selected.iter().map(|i| i.to_string()).collect();
        opts(
            users
                .iter()
                .filter(|u| u.active || selected.contains(&u.id))
                .map(|u| (u.id.to_string(), u.name.clone())),
            &sel,
        )
    };

    let roles = state
        .settings
        .roles()
        .into_iter()
        .map(|r| {
            let held = inc.roles.get(&r.name).cloned().unwrap_or_default();
            RoleView {
                holders: held
                    .iter()
                    .map(|u| name(Some(*u)))
                    .collect::<Vec<_>>()
                    .join(", "),
                users: user_opts(&held),
                name: r.name,
                description: r.description,
                multiple: r.multiple,
            }
        })
        .collect();

    let escalation = state.store.escalation(id).await?;
    let levels = match &escalation {
        Some(e) => (0..e.policy.levels.len())
            .map(|l| Opt {
                value: l.to_string(),
                label: format!("Level {}", l + 1),
                selected: l == e.next_level.min(e.policy.levels.len().saturating_sub(1)),
            })
            .collect(),
        None => Vec::new(),
    };
    let escalation_text = escalation.as_ref().map(|e| {
        let next = match e.next_at {
            Some(t) => format!(", level {} due {}", e.next_level + 1, chrome.time(&t)),
            None => String::new(),
        };
        format!("{}{next}", e.phase.as_str())
    });

    let custom = state
        .settings
        .custom_fields
        .iter()
        .map(|f| {
            let cur = inc.custom_fields.get(&f.name);
            let (kind, options) = match f.kind {
                FieldKind::Text => ("text", vec![]),
                FieldKind::Number => ("number", vec![]),
                FieldKind::Date => ("date", vec![]),
                FieldKind::Select => {
                    let sel = [custom_value(f.kind, cur)];
                    (
                        "select",
                        with_current(
                            opts(f.options.iter().map(|o| (o.clone(), o.clone())), &sel),
                            &sel,
                        ),
                    )
                }
                FieldKind::MultiSelect => {
                    let sel: Vec<String> = cur
                        .and_then(|v| v.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    (
                        "multi_select",
                        with_current(
                            opts(f.options.iter().map(|o| (o.clone(), o.clone())), &sel),
                            &sel,
                        ),
                    )
                }
                FieldKind::User => {
                    let sel: Vec<i64> = cur.and_then(|v| v.as_i64()).into_iter().collect();
                    ("user", user_opts(&sel))
                }
            };
            CustomView {
                name: f.name.clone(),
                description: f.description.clone(),
                kind,
                value: custom_value(f.kind, cur),
                options,
            }
        })
        .collect();

    let levels_of = |cur: Level| {
        opts(
            Level::ALL
                .iter()
                .map(|l| (l.as_str().to_string(), l.as_str().to_string())),
            &[cur.as_str().to_string()],
        )
    };

    let events = state.store.timeline(id).await?;
    let notes = state.store.notes(id).await?;
    let alerts = state
        .store
        .alerts(None, None, Some(id), None, None, 100)
        .await?;
    let attachments = state
        .store
        .attachments(id)
        .await?
        .into_iter()
        .map(|a| AttachmentView {
            id: a.id,
            size: human_size(a.size),
            kind: a.kind.as_str(),
            who: name(a.uploaded_by),
            when: chrome.time(&a.created_at),
            filename: a.filename,
        })
        .collect();
    let deliveries = state
        .store
        .incident_deliveries(id)
        .await?
        .into_iter()
        .map(|d| DeliveryRow {
            recipient: name(Some(d.user_id)),
            channel: d.channel.unwrap_or(d.contact_kind),
            state: match d.delivery {
                Some(x) => x,
                None => d.status,
            },
            when: chrome.time(&d.delivered_at.or(d.handed_at).unwrap_or(d.send_at)),
        })
        .collect();

    Ok(RoomPage {
        notice,
        sev_class: severity_class(&state.settings, &inc.severity),
        since: inc
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        age: elapsed(inc.created_at, now),
        declared: chrome.time(&inc.created_at),
        acknowledged: chrome.time_opt(&inc.acknowledged_at),
        mitigated: chrome.time_opt(&inc.mitigated_at),
        resolved: chrome.time_opt(&inc.resolved_at),
        closed: chrome.time_opt(&inc.closed_at),
        closure_requested: inc.closure_requested_at.map(|t| chrome.time(&t)),
        is_reporter: inc.reporter_id == Some(chrome.user_id),
        reporter: name(inc.reporter_id),
        assignee: name(inc.assignee_id),
        services: inc
            .service_ids
            .iter()
            .filter_map(|s| service_names.get(s).cloned())
            .collect::<Vec<_>>()
            .join(", "),
        roles,
        moves: inc
            .status
            .allowed_next()
            .iter()
            .map(|to| Move {
                value: to.as_str(),
                label: move_label(inc.status, *to),
            })
            .collect(),
        escalation: escalation_text,
        levels,
        assignees: user_opts(&inc.assignee_id.into_iter().collect::<Vec<_>>()),
        all_services: opts(
            services.iter().map(|s| (s.id.to_string(), s.name.clone())),
            &inc.service_ids
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>(),
        ),
        severities: with_current(
            opts(
                state
                    .settings
                    .severities
                    .iter()
                    .map(|s| (s.name.clone(), s.name.clone())),
                std::slice::from_ref(&inc.severity),
            ),
            std::slice::from_ref(&inc.severity),
        ),
        types: with_current(
            opts(
                state
                    .settings
                    .types
                    .iter()
                    .map(|t| (t.name.clone(), t.name.clone())),
                std::slice::from_ref(&inc.incident_type),
            ),
            std::slice::from_ref(&inc.incident_type),
        ),
        impacts: levels_of(inc.impact),
        urgencies: levels_of(inc.urgency),
        labels: inc.labels.join("\n"),
        custom,
        fields_orig: orig_of(&inc, DETAIL_FIELDS),
        roles_orig: orig_of(&inc, ROLE_FIELDS),
        related: inc
            .related
            .iter()
            .map(|r| RelView {
                kind: r.kind.as_str().replace('_', " "),
                number: tocsin_core::incident::format_number(r.incident_id),
                value: format!("{}:{}", r.kind.as_str(), r.incident_id),
            })
            .collect(),
        relation_kinds: opts(
            RelationKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), k.as_str().replace('_', " "))),
            &["related".to_string()],
        ),
        description_html: markdown::render(&inc.description),
        root_cause: inc.root_cause.clone().unwrap_or_default(),
        resolution_summary: inc.resolution_summary.clone().unwrap_or_default(),
        timeline: timeline::items(&chrome, &events, &notes, &names),
        runbooks: super::runbooks::panel(state, &chrome, &inc, &names).await?,
        alerts: alert_rows(&chrome, &service_names, &alerts),
        attachments,
        deliveries,
        status_panel: panel(state, &chrome, &inc, &status).await?,
        workflows_panel: crate::web::workflows::room_panel(state, who, &chrome, &inc).await?,
        postmortem: state.store.postmortem_of_incident(inc.id).await?,
        similar: super::similar::panel(state, &chrome, &inc).await,
        inc,
        chrome,
    })
}

fn human_size(n: i64) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1_048_575 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}
