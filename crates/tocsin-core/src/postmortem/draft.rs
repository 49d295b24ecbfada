//! The generated draft: the incident's record turned into the template's
//! sections, plus the structured parts (facts, timeline, people, alerts) the
//! pages show beside it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;

use super::timeline::{key_events, KeyEvent};
use super::{Directory, Generated, Template};
use crate::alert::Alert;
use crate::analytics::facts::{format_duration_ms, IncidentFacts, Metric};
use crate::model::{Event, Incident};
use crate::settings::IncidentSettings;
use crate::status_page::ComponentStatus;
use crate::time::Timestamp;

/// One incident's record, as the store reads it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The incident.
    pub incident: &'a Incident,
    /// Its events (the log entries with its id), any order.
    pub events: &'a [Event],
    /// Its alerts.
    pub alerts: &'a [Alert],
}

/// One section of the draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DraftSection {
    /// Heading, from the template.
    pub title: String,
    /// The template's hint for the writer.
    pub hint: String,
    /// Generated Markdown; empty where the template generates nothing.
    pub body: String,
}

/// Someone involved in the response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Their user id.
    pub user_id: i64,
    /// Their name.
    pub name: String,
    /// Every role they held at some point (incident roles, `assignee`, `reporter`).
    pub roles: Vec<String>,
    /// Times an escalation paged them.
    pub pages: u32,
    /// Log entries they made.
    pub actions: u32,
}

/// A status-page post written for the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusPost {
    /// The post's id.
    pub post_id: i64,
    /// Its name.
    pub name: String,
    /// When it was published.
    pub published_at: Timestamp,
    /// Its status as published, then after each update.
    pub statuses: Vec<String>,
}

/// A status-page component the incident changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentImpact {
    /// The component's id.
    pub component_id: i64,
    /// Its name.
    pub name: String,
    /// Its status before the first change, then after each.
    pub statuses: Vec<String>,
    /// The worst status it had.
    pub worst: Option<ComponentStatus>,
}

/// The incident's alerts with the same service and summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertGroup {
    /// Their service.
    pub service_id: i64,
    /// Their summary.
    pub summary: String,
    /// How many alerts.
    pub alerts: u32,
    /// Triggers received, repeats included.
    pub triggers: i64,
    /// The first one's first trigger.
    pub first_seen: Timestamp,
    /// The last event of any of them.
    pub last_seen: Timestamp,
}

/// A generated postmortem draft.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Draft {
    /// Document title.
    pub title: String,
    /// The incidents reviewed, most severe first.
    pub incident_ids: Vec<i64>,
    /// The template's sections, filled.
    pub sections: Vec<DraftSection>,
    /// The instants and durations of the incidents taken together.
    pub facts: IncidentFacts,
    /// Each incident's own.
    pub incidents: Vec<IncidentFacts>,
    /// The key timeline, merged across incidents.
    pub timeline: Vec<KeyEvent>,
    /// People involved, by role.
    pub people: Vec<Person>,
    /// Affected services.
    pub service_ids: Vec<i64>,
    /// Status-page posts.
    pub status_posts: Vec<StatusPost>,
    /// Status-page components changed.
    pub components: Vec<ComponentImpact>,
    /// Alerts grouped by service and summary.
    pub alerts: Vec<AlertGroup>,
}

impl Draft {
    /// The whole draft as one Markdown document.
    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n", md(&self.title));
        for s in &self.sections {
            let _ = writeln!(out, "\n## {}", md(&s.title));
            if !s.body.trim().is_empty() {
                let _ = writeln!(out, "\n{}", s.body.trim_end());
            }
        }
        out
    }
}

/// The draft of a postmortem of `inputs` (one incident or several reviewed
/// together), times shown in `tz`; `None` for no incidents.
pub fn draft(
    inputs: &[Input],
    template: &Template,
    settings: &IncidentSettings,
    dir: &Directory,
    tz: Tz,
) -> Option<Draft> {
    let mut inputs = inputs.to_vec();
    inputs.sort_by_key(|i| {
        let inc = i.incident;
        (
            settings.severity_rank(&inc.severity),
            inc.created_at,
            inc.id,
        )
    });
    let primary = inputs.first()?.incident;
    let incidents: Vec<IncidentFacts> = inputs
        .iter()
        .map(|i| IncidentFacts::of(i.incident, i.alerts, dir.services))
        .collect();
    let facts = IncidentFacts::combine(&incidents)?;
    let events: Vec<Event> = inputs
        .iter()
        .flat_map(|i| i.events.iter().cloned())
        .collect();
    let numbers: Vec<&str> = inputs.iter().map(|i| i.incident.number.as_str()).collect();
    let mut d = Draft {
        title: format!("Postmortem: {} {}", numbers.join(", "), primary.title),
        incident_ids: inputs.iter().map(|i| i.incident.id).collect(),
        sections: Vec::new(),
        timeline: key_events(&events, dir),
        people: people(&inputs, &events, settings, dir),
        service_ids: facts.service_ids.clone(),
        status_posts: status_posts(&events),
        components: components(&events),
        alerts: alert_groups(&inputs),
        facts,
        incidents,
    };
    let w = Writer {
        d: &d,
        inputs: &inputs,
        dir,
        tz,
    };
    d.sections = template
        .sections
        .iter()
        .map(|s| DraftSection {
            title: s.title.clone(),
            hint: s.hint.clone(),
            body: s.generated.map(|g| w.body(g)).unwrap_or_default(),
        })
        .collect();
    Some(d)
}

fn people(
    inputs: &[Input],
    events: &[Event],
    settings: &IncidentSettings,
    dir: &Directory,
) -> Vec<Person> {
    let mut roles: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    let mut add_roles = |held: &Value| {
        for (role, ids) in held.as_object().into_iter().flatten() {
            for id in ids
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
            {
                roles.entry(id).or_default().insert(role.clone());
            }
        }
    };
    for i in inputs {
        add_roles(&serde_json::to_value(&i.incident.roles).unwrap_or_default());
    }
    let mut assignees: BTreeSet<i64> = inputs
        .iter()
        .filter_map(|i| i.incident.assignee_id)
        .collect();
    let reporters: BTreeSet<i64> = inputs
        .iter()
        .filter_map(|i| i.incident.reporter_id)
        .collect();
    let mut pages: HashMap<i64, u32> = HashMap::new();
    let mut actions: HashMap<i64, u32> = HashMap::new();
    for e in events {
        if let Some(a) = e.actor_id {
            *actions.entry(a).or_default() += 1;
        }
        match e.kind.as_str() {
            "incident.declared" => {
                add_roles(&e.data["incident"]["roles"]);
                assignees.extend(e.data["incident"]["assignee_id"].as_i64());
            }
            "incident.updated" => {
                for c in e.data["changes"].as_array().into_iter().flatten() {
                    match c["field"].as_str() {
                        Some("roles") => add_roles(&c["new"]),
                        Some("assignee_id") => assignees.extend(c["new"].as_i64()),
                        _ => {}
                    }
                }
            }
            "escalation.notified" => {
                for u in e.data["users"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_i64)
                {
                    *pages.entry(u).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    for a in assignees {
        roles.entry(a).or_default().insert("assignee".into());
    }
    for r in reporters {
        roles.entry(r).or_default().insert("reporter".into());
    }
    // Configured roles in their order, then assignee and reporter, then roles no
    // longer configured.
    let order: Vec<String> = settings
        .roles()
        .into_iter()
        .map(|r| r.name)
        .chain(["assignee".to_string(), "reporter".to_string()])
        .collect();
    let rank = |r: &str| order.iter().position(|o| o == r).unwrap_or(order.len());
    let ids: BTreeSet<i64> = roles
        .keys()
        .chain(pages.keys())
        .chain(actions.keys())
        .copied()
        .collect();
    let mut people: Vec<Person> = ids
        .into_iter()
        .map(|id| {
            let mut held: Vec<String> = roles.remove(&id).unwrap_or_default().into_iter().collect();
            held.sort_by_key(|r| rank(r));
            Person {
                user_id: id,
                name: dir.user_name(id),
                roles: held,
                pages: pages.get(&id).copied().unwrap_or(0),
                actions: actions.get(&id).copied().unwrap_or(0),
            }
        })
        .collect();
    people.sort_by(|a, b| {
        let first = |p: &Person| p.roles.first().map_or(usize::MAX, |r| rank(r));
        first(a)
            .cmp(&first(b))
            .then_with(|| a.name.cmp(&b.name))
            .then(a.user_id.cmp(&b.user_id))
    });
    people
}

fn sorted(events: &[Event]) -> Vec<&Event> {
    let mut v: Vec<&Event> = events.iter().collect();
    v.sort_by_key(|e| (e.at, e.id));
    v
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn status_posts(events: &[Event]) -> Vec<StatusPost> {
    let mut posts: Vec<StatusPost> = Vec::new();
    for e in sorted(events) {
        match e.kind.as_str() {
            "status_post.published" => posts.push(StatusPost {
                post_id: e.entity_id,
                name: text(&e.data["name"]),
                published_at: e.at,
                statuses: vec![text(&e.data["status"])],
            }),
            "status_post.updated" => {
                if let Some(p) = posts.iter_mut().find(|p| p.post_id == e.entity_id) {
                    p.statuses.push(text(&e.data["to"]));
                }
            }
            _ => {}
        }
    }
    posts
}

fn components(events: &[Event]) -> Vec<ComponentImpact> {
    let mut out: Vec<ComponentImpact> = Vec::new();
    for e in sorted(events)
        .into_iter()
        .filter(|e| e.kind == "status_component.status_changed")
    {
        let (from, to) = (text(&e.data["from"]), text(&e.data["to"]));
        let i = match out.iter().position(|c| c.component_id == e.entity_id) {
            Some(i) => i,
            None => {
                out.push(ComponentImpact {
                    component_id: e.entity_id,
                    name: text(&e.data["name"]),
                    statuses: vec![from.clone()],
                    worst: None,
                });
                out.len() - 1
            }
        };
        let c = &mut out[i];
        c.worst = [&from, &to]
            .into_iter()
            .filter_map(|s| ComponentStatus::parse("status", s).ok())
            .fold(c.worst, |w, s| Some(w.map_or(s, |w| w.worst(s))));
        c.statuses.push(to);
    }
    out
}

fn alert_groups(inputs: &[Input]) -> Vec<AlertGroup> {
    let mut groups: BTreeMap<(i64, &str), AlertGroup> = BTreeMap::new();
    for i in inputs {
        for a in i
            .alerts
            .iter()
            .filter(|a| a.incident_id == Some(i.incident.id))
        {
            let g = groups
                .entry((a.service_id, &a.summary))
                .or_insert_with(|| AlertGroup {
                    service_id: a.service_id,
                    summary: a.summary.clone(),
                    alerts: 0,
                    triggers: 0,
                    first_seen: a.first_seen,
                    last_seen: a.last_seen,
                });
            g.alerts += 1;
            g.triggers += a.count;
            g.first_seen = g.first_seen.min(a.first_seen);
            g.last_seen = g.last_seen.max(a.last_seen);
        }
    }
    let mut v: Vec<AlertGroup> = groups.into_values().collect();
    v.sort_by(|a, b| {
        a.first_seen
            .cmp(&b.first_seen)
            .then_with(|| a.summary.cmp(&b.summary))
    });
    v
}

/// Escapes text for inline Markdown: it stays on one line and cannot open
/// emphasis, links, HTML, code or table cells.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Writes the generated section bodies.
struct Writer<'a> {
    d: &'a Draft,
    inputs: &'a [Input<'a>],
    dir: &'a Directory<'a>,
    tz: Tz,
}

impl Writer<'_> {
    fn when(&self, t: Timestamp) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    fn duration(&self, m: Metric) -> Option<String> {
        self.d.facts.duration_ms(m).map(format_duration_ms)
    }

    fn body(&self, g: Generated) -> String {
        match g {
            Generated::Summary => self.summary(),
            Generated::CustomerImpact => self.customer_impact(),
            Generated::Timeline => self.timeline(),
            Generated::RootCauses => self.root_causes(),
            Generated::Detection => self.detection(),
            Generated::Response => self.response(),
            Generated::Recovery => self.recovery(),
        }
    }

    fn services(&self) -> String {
        if self.d.service_ids.is_empty() {
            return "none recorded".into();
        }
        let names: Vec<String> = self
            .d
            .service_ids
            .iter()
            .map(|&s| md(&self.dir.service_name(s)))
            .collect();
        names.join(", ")
    }

    fn summary(&self) -> String {
        let mut out = String::new();
        for i in self.inputs {
            let inc = i.incident;
            let _ = writeln!(
                out,
                "- **{}** ({}, {}): {}",
                md(&inc.number),
                md(&inc.severity),
                inc.status,
                md(&inc.title)
            );
        }
        let _ = writeln!(out, "\nAffected services: {}.\n", self.services());
        let f = &self.d.facts;
        let _ = writeln!(out, "| Moment | Time ({}) | Measured |", self.tz.name());
        out.push_str("| --- | --- | --- |\n");
        let rows = [
            ("Impact began", f.began_at, None),
            ("Detected", Some(f.detected_at), Some(Metric::TimeToDetect)),
            ("Declared", Some(f.declared_at), Some(Metric::TimeToDeclare)),
            (
                "Acknowledged",
                f.acknowledged_at,
                Some(Metric::TimeToAcknowledge),
            ),
            ("Mitigated", f.mitigated_at, Some(Metric::TimeToMitigate)),
            ("Resolved", f.resolved_at, Some(Metric::TimeToResolve)),
        ];
        for (moment, at, metric) in rows {
            let at = at.map_or_else(|| "—".into(), |t| self.when(t));
            let measured = metric.map_or(String::new(), |m| match self.duration(m) {
                Some(d) => format!("{}: {d}", m.label()),
                None => format!("{}: —", m.label()),
            });
            let _ = writeln!(out, "| {moment} | {at} | {measured} |");
        }
        out
    }

    fn customer_impact(&self) -> String {
        let mut out = format!("Affected services: {}.\n", self.services());
        if self.d.status_posts.is_empty() && self.d.components.is_empty() {
            out.push_str("\nNo status-page post was published and no component changed status.\n");
            return out;
        }
        if !self.d.status_posts.is_empty() {
            out.push_str("\nStatus-page posts:\n\n");
            for p in &self.d.status_posts {
                let steps: Vec<String> = p
                    .statuses
                    .iter()
                    .map(|s| md(&s.replace('_', " ")))
                    .collect();
                let _ = writeln!(
                    out,
                    "- \"{}\", published {}: {}",
                    md(&p.name),
                    self.when(p.published_at),
                    steps.join(" → ")
                );
            }
        }
        if !self.d.components.is_empty() {
            out.push_str("\nComponents:\n\n");
            for c in &self.d.components {
                let steps: Vec<String> = c
                    .statuses
                    .iter()
                    .map(|s| md(&s.replace('_', " ")))
                    .collect();
                let worst = c
                    .worst
                    .map(|w| format!(" (worst: {})", w.label().to_lowercase()))
                    .unwrap_or_default();
                let _ = writeln!(out, "- {}: {}{worst}", md(&c.name), steps.join(" → "));
            }
        }
        out
    }

    fn timeline(&self) -> String {
        let several = self.inputs.len() > 1;
        let numbers: HashMap<i64, &str> = self
            .inputs
            .iter()
            .map(|i| (i.incident.id, i.incident.number.as_str()))
            .collect();
        let mut out = format!("Times are in {}.\n\n", self.tz.name());
        for k in &self.d.timeline {
            let prefix = match k.incident_id.and_then(|id| numbers.get(&id)) {
                Some(n) if several => format!("{}: ", md(n)),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "- `{}` {prefix}{} — *{}*",
                self.when(k.at),
                md(&k.text),
                md(&k.actor)
            );
        }
        if self.d.timeline.is_empty() {
            out.push_str("The log holds no key events.\n");
        }
        out
    }

    fn root_causes(&self) -> String {
        let recorded: Vec<(&str, &str)> = self
            .inputs
            .iter()
            .filter_map(|i| {
                Some((
                    i.incident.number.as_str(),
                    i.incident.root_cause.as_deref()?.trim(),
                ))
            })
            .filter(|(_, rc)| !rc.is_empty())
            .collect();
        match recorded.as_slice() {
            [] => String::new(),
            // Responders wrote it as Markdown: kept as written.
            [(_, rc)] if self.inputs.len() == 1 => format!("{rc}\n"),
            all => all
                .iter()
                .map(|(n, rc)| format!("**{}:** {rc}\n\n", md(n)))
                .collect(),
        }
    }

    fn detection(&self) -> String {
        let f = &self.d.facts;
        let mut out = match (self.duration(Metric::TimeToDetect), f.began_at) {
            (Some(d), Some(b)) => format!(
                "- Time to detect: {d} (impact began {}, first sign {}).\n",
                self.when(b),
                self.when(f.detected_at)
            ),
            _ => {
                "- Time to detect: unknown, because the start of impact was not recorded.\n".into()
            }
        };
        let _ = writeln!(
            out,
            "- Time to declare: {}.",
            self.duration(Metric::TimeToDeclare).unwrap_or_default()
        );
        let first_alert = self.d.alerts.iter().min_by_key(|a| a.first_seen);
        match first_alert {
            Some(a) if a.first_seen <= f.declared_at => {
                let _ = writeln!(
                    out,
                    "- First sign: the alert \"{}\" at {}.",
                    md(&a.summary),
                    self.when(a.first_seen)
                );
            }
            _ => out.push_str("- First sign: a person; no alert preceded the declaration.\n"),
        }
        if !self.d.alerts.is_empty() {
            let alerts: u32 = self.d.alerts.iter().map(|a| a.alerts).sum();
            let triggers: i64 = self.d.alerts.iter().map(|a| a.triggers).sum();
            let _ = writeln!(
                out,
                "\nAlerts: {alerts}, with {triggers} triggers in all.\n"
            );
            out.push_str("| Service | Alert | Alerts | Triggers | First seen | Last seen |\n");
            out.push_str("| --- | --- | --- | --- | --- | --- |\n");
            for a in &self.d.alerts {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    md(&self.dir.service_name(a.service_id)),
                    md(&a.summary),
                    a.alerts,
                    a.triggers,
                    self.when(a.first_seen),
                    self.when(a.last_seen)
                );
            }
        }
        out
    }

    fn response(&self) -> String {
        let tta = self
            .duration(Metric::TimeToAcknowledge)
            .unwrap_or_else(|| "— (not acknowledged)".into());
        let pages: u32 = self.d.people.iter().map(|p| p.pages).sum();
        let paged = self.d.people.iter().filter(|p| p.pages > 0).count();
        let mut out =
            format!("- Time to acknowledge: {tta}.\n- Pages sent: {pages}, to {paged} people.\n");
        if !self.d.people.is_empty() {
            out.push_str("\n| Person | Roles | Pages | Actions |\n| --- | --- | --- | --- |\n");
            for p in &self.d.people {
                let roles = if p.roles.is_empty() {
                    "—".into()
                } else {
                    md(&p.roles.join(", "))
                };
                let _ = writeln!(
                    out,
                    "| {} | {roles} | {} | {} |",
                    md(&p.name),
                    p.pages,
                    p.actions
                );
            }
        }
        out
    }

    fn recovery(&self) -> String {
        let or_not = |m| self.duration(m).unwrap_or_else(|| "— (not yet)".into());
        let mut out = format!(
            "- Time to mitigate: {}.\n- Time to resolve: {}.\n",
            or_not(Metric::TimeToMitigate),
            or_not(Metric::TimeToResolve)
        );
        for i in self.inputs {
            if let Some(r) = i
                .incident
                .resolution_summary
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
            {
                let who = if self.inputs.len() > 1 {
                    format!(" ({})", md(&i.incident.number))
                } else {
                    String::new()
                };
                // Written by responders as Markdown: kept as written.
                let _ = write!(out, "\nResolution{who}:\n\n{r}\n");
            }
        }
        out
    }
}
