//! The generic JSON webhook: any JSON payload, mapped to an alert by the
//! integration's templates (minijinja, with the payload as `payload`), the way
//! Grafana OnCall's integration templates work. Unset templates use defaults
//! that read the usual field names (`title`, `message`, `severity`, `status`, …).
//!
//! A body is one JSON object (one event) or an array of objects (one event each);
//! every event is mapped before any is stored, so a bad one refuses the whole body.

use serde_json::{json, Map, Value};
use tocsin_core::alert::{
    AlertAction, AlertEvent, AlertLink, AlertSeverity, DedupKey, MAX_SUMMARY,
};
use tocsin_core::integration::{condition_expr, Templates};
use tocsin_core::template;
use tocsin_core::Invalid;

use crate::alertmanager::severity_from_label;

/// Largest body accepted.
pub const MAX_BODY: usize = 512 * 1024;
/// Most events in one body (an array).
pub const MAX_EVENTS: usize = 1000;
/// Most links and labels one event may carry.
pub const MAX_LINKS: usize = 20;
/// Most labels one event may carry.
pub const MAX_LABELS: usize = 64;
/// The integration name alerts from this source carry.
pub const INTEGRATION: &str = "webhook";

/// Title when no template is set.
pub const DEFAULT_TITLE: &str = "{{ payload.title or payload.summary or payload.message or payload.name or payload.alertname or 'Webhook alert' }}";
/// Description when no template is set.
pub const DEFAULT_DESCRIPTION: &str = "{{ payload.description or payload.text or '' }}";
/// Source when no template is set.
pub const DEFAULT_SOURCE: &str =
    "{{ payload.source or payload.host or payload.hostname or payload.instance or 'webhook' }}";
/// Resolve condition when none is set.
pub const DEFAULT_RESOLVE: &str =
    "(payload.status or payload.state or '') | string | lower in ['resolved', 'ok']";

/// What a payload maps to: the event, and the description (kept in its details).
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The normalized event.
    pub event: AlertEvent,
    /// The rendered description.
    pub description: String,
}

/// Maps one payload to an alert event, or the first template problem.
pub fn map(templates: &Templates, payload: &Value) -> Result<AlertEvent, Invalid> {
    map_all(templates, payload)
        .map(|m| m.event)
        .map_err(|mut e| e.remove(0))
}

/// Maps one payload, collecting every template's problem (each naming its field).
pub fn map_all(templates: &Templates, payload: &Value) -> Result<Mapped, Vec<Invalid>> {
    let ctx = json!({ "payload": payload });
    let mut errors = Vec::new();

    let title = keep(
        &mut errors,
        render("templates.title", &templates.title, DEFAULT_TITLE, &ctx),
    );
    let severity = keep(&mut errors, severity(&templates.severity, payload, &ctx));
    let dedup = keep(&mut errors, dedup_key(&templates.dedup_key, payload, &ctx));
    let description = keep(
        &mut errors,
        render(
            "templates.description",
            &templates.description,
            DEFAULT_DESCRIPTION,
            &ctx,
        ),
    );
    let source = keep(
        &mut errors,
        render("templates.source", &templates.source, DEFAULT_SOURCE, &ctx),
    );
    let links = keep(&mut errors, links(&templates.links, payload, &ctx));
    let labels = keep(&mut errors, labels(&templates.labels, payload, &ctx));
    let resolve = keep(
        &mut errors,
        condition(
            "templates.resolve_condition",
            templates
                .resolve_condition
                .as_deref()
                .unwrap_or(DEFAULT_RESOLVE),
            &ctx,
        ),
    );
    let acknowledge = keep(
        &mut errors,
        match &templates.acknowledge_condition {
            Some(c) => condition("templates.acknowledge_condition", c, &ctx),
            None => Ok(false),
        },
    );
    let action = match (resolve, acknowledge) {
        (Some(true), _) => Some(AlertAction::Resolve),
        (Some(false), Some(true)) => Some(AlertAction::Acknowledge),
        (Some(false), Some(false)) => Some(AlertAction::Trigger),
        _ => None,
    };
    let title = match (title, action) {
        (Some(t), Some(AlertAction::Trigger)) if t.is_empty() => {
            errors.push(Invalid::new(
                "templates.title",
                "rendered empty; a triggering event needs a title",
            ));
            None
        }
        (t, _) => t,
    };
    match (
        title,
        severity,
        dedup,
        description,
        source,
        links,
        labels,
        action,
    ) {
        (
            Some(title),
            Some(severity),
            Some(dedup_key),
            Some(description),
            Some(source),
            Some(links),
            Some(labels),
            Some(action),
        ) if errors.is_empty() => {
            let details = if description.is_empty() {
                json!({})
            } else {
                json!({ "description": description })
            };
            Ok(Mapped {
                event: AlertEvent {
                    action,
                    dedup_key,
                    summary: truncate(&title, MAX_SUMMARY),
                    source: if source.is_empty() {
                        INTEGRATION.into()
                    } else {
                        truncate(&source, MAX_SUMMARY)
                    },
                    severity,
                    labels,
                    details,
                    links,
                    integration: INTEGRATION,
                },
                description,
            })
        }
        _ => Err(errors),
    }
}

/// Parses a webhook body (an object, or an array of objects) and maps each event;
/// returns each event with its own JSON, kept as the raw payload.
pub fn parse(templates: &Templates, body: &[u8]) -> Result<Vec<(AlertEvent, String)>, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Invalid::new("body", format!("not valid JSON: {e}")))?;
    match value {
        Value::Object(_) => {
            let raw = body_text(body);
            Ok(vec![(map(templates, &value)?, raw)])
        }
        Value::Array(items) => {
            if items.is_empty() {
                return Err(Invalid::new("body", "the array holds no events"));
            }
            if items.len() > MAX_EVENTS {
                return Err(Invalid::new(
                    "body",
                    format!("at most {MAX_EVENTS} events in one request"),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    if !item.is_object() {
                        return Err(Invalid::new(format!("body[{i}]"), "must be an object"));
                    }
                    let event = map(templates, item)
                        .map_err(|e| Invalid::new(e.field, format!("event {i}: {}", e.message)))?;
                    Ok((event, item.to_string()))
                })
                .collect()
        }
        _ => Err(Invalid::new(
            "body",
            "must be a JSON object or an array of objects",
        )),
    }
}

fn keep<T>(errors: &mut Vec<Invalid>, r: Result<T, Invalid>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn body_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn render(
    field: &str,
    custom: &Option<String>,
    default: &str,
    ctx: &Value,
) -> Result<String, Invalid> {
    template::render(field, custom.as_deref().unwrap_or(default), ctx)
}

fn condition(field: &str, expr: &str, ctx: &Value) -> Result<bool, Invalid> {
    template::eval_bool(field, condition_expr(expr), ctx)
}

fn severity(
    custom: &Option<String>,
    payload: &Value,
    ctx: &Value,
) -> Result<AlertSeverity, Invalid> {
    let Some(t) = custom else {
        // No template: read the usual fields leniently (`P1`, `warn`, `CRITICAL`, …).
        let given = ["severity", "level", "priority"]
            .iter()
            .find_map(|k| payload.get(k).and_then(Value::as_str));
        return Ok(severity_from_label(given));
    };
    let s = template::render("templates.severity", t, ctx)?.to_ascii_lowercase();
    AlertSeverity::parse(&s).ok_or_else(|| {
        Invalid::new(
            "templates.severity",
            format!("must render to critical, error, warning or info, not `{s}`"),
        )
    })
}

fn dedup_key(custom: &Option<String>, payload: &Value, ctx: &Value) -> Result<DedupKey, Invalid> {
    let key = match custom {
        Some(t) => template::render("templates.dedup_key", t, ctx)?,
        None => format!("webhook-{}", hash(payload)),
    };
    if key.is_empty() {
        return Err(Invalid::new(
            "templates.dedup_key",
            "rendered empty; the alert needs an identity",
        ));
    }
    DedupKey::parse("templates.dedup_key", &key)
}

// A stable hash of the payload, independent of key order: identical payloads
// repeat one alert rather than opening another.
fn hash(v: &Value) -> String {
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(&m[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for x in a {
                    canonical(x, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(v, &mut text);
    // Two FNV-1a passes with different offsets: 128 bits, stable across builds.
    let fnv = |seed: u64| {
        let mut h = seed;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        h
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf29ce484222325),
        fnv(0x84222325cbf29ce4)
    )
}

fn link_from(field: &str, v: &Value) -> Result<Option<AlertLink>, Invalid> {
    let (href, text) = match v {
        Value::String(s) => (s.trim().to_string(), None),
        Value::Object(o) => (
            o.get("href")
                .or_else(|| o.get("url"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string(),
            o.get("text")
                .or_else(|| o.get("title"))
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        _ => {
            return Err(Invalid::new(
                field,
                "each link must be a URL or {href, text}",
            ))
        }
    };
    if href.is_empty() {
        return Ok(None);
    }
    if href.len() > 2048 || href.chars().any(char::is_whitespace) {
        return Err(Invalid::new(field, format!("`{href}` is not a URL")));
    }
    Ok(Some(AlertLink { href, text }))
}

fn links(custom: &Option<String>, payload: &Value, ctx: &Value) -> Result<Vec<AlertLink>, Invalid> {
    const F: &str = "templates.links";
    let mut out = Vec::new();
    match custom {
        Some(t) => {
            let text = template::render(F, t, ctx)?;
            if text.starts_with('[') {
                let list: Vec<Value> = serde_json::from_str(&text).map_err(|e| {
                    Invalid::new(F, format!("rendered a JSON list that does not parse: {e}"))
                })?;
                for v in &list {
                    out.extend(link_from(F, v)?);
                }
            } else {
                for line in text.lines() {
                    out.extend(link_from(F, &Value::String(line.into()))?);
                }
            }
        }
        None => {
            // Best effort: what does not look like a link is left out, not refused.
            if let Some(Value::Array(a)) = payload.get("links") {
                out.extend(a.iter().filter_map(|v| link_from(F, v).ok().flatten()));
            }
            for k in ["url", "link"] {
                if let Some(v @ Value::String(_)) = payload.get(k) {
                    out.extend(link_from(F, v).ok().flatten());
                }
            }
        }
    }
    if out.len() > MAX_LINKS {
        return Err(Invalid::new(F, format!("at most {MAX_LINKS} links")));
    }
    Ok(out)
}

fn labels(
    custom: &Option<String>,
    payload: &Value,
    ctx: &Value,
) -> Result<Map<String, Value>, Invalid> {
    const F: &str = "templates.labels";
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(Value::String(s.clone())),
        Value::Number(_) | Value::Bool(_) => Some(Value::String(v.to_string())),
        _ => None,
    };
    let out: Map<String, Value> = match custom {
        Some(t) => {
            let text = template::render(F, t, ctx)?;
            if text.is_empty() {
                return Ok(Map::new());
            }
            let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&text) else {
                return Err(Invalid::new(
                    F,
                    "must render to a JSON object, e.g. {{ {'team': payload.team} | tojson }}",
                ));
            };
            let mut out = Map::new();
            for (k, v) in m {
                if v.is_null() {
                    continue;
                }
                let s = scalar(&v).ok_or_else(|| {
                    Invalid::new(
                        format!("{F}.{k}"),
                        "a label value must be a string, number or boolean",
                    )
                })?;
                out.insert(k, s);
            }
            out
        }
        None => match payload.get("labels") {
            Some(Value::Object(m)) => m
                .iter()
                .filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), s)))
                .collect(),
            _ => Map::new(),
        },
    };
    if out.len() > MAX_LABELS {
        return Err(Invalid::new(F, format!("at most {MAX_LABELS} labels")));
    }
    Ok(out)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Templates {
        let v: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        serde_json::from_value(Value::Object(v)).unwrap()
    }

    #[test]
    fn defaults_read_the_usual_fields() {
        let p = json!({"message": "Disk full", "severity": "WARN", "host": "db-1",
                       "url": "https://grafana/d/1", "labels": {"team": "db", "n": 3, "x": {}}});
        let e = map(&Templates::default(), &p).unwrap();
        assert_eq!(e.summary, "Disk full");
        assert_eq!(e.severity, AlertSeverity::Warning);
        assert_eq!(e.source, "db-1");
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(e.links[0].href, "https://grafana/d/1");
        assert_eq!(
            e.labels,
            json!({"team": "db", "n": "3"})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(e.integration, "webhook");
        let same = json!({"host": "db-1", "severity": "WARN", "message": "Disk full",
                          "labels": {"x": {}, "n": 3, "team": "db"}, "url": "https://grafana/d/1"});
        assert_eq!(
            map(&Templates::default(), &same).unwrap().dedup_key,
            e.dedup_key,
            "the default dedup key ignores key order"
        );
        let ok = map(
            &Templates::default(),
            &json!({"status": "OK", "title": "x"}),
        )
        .unwrap();
        assert_eq!(ok.action, AlertAction::Resolve);
        let bare = map(&Templates::default(), &json!({})).unwrap();
        assert_eq!(
            (bare.summary.as_str(), bare.severity),
            ("Webhook alert", AlertSeverity::Error)
        );
    }

    #[test]
    fn templates_map_any_shape() {
        let tm = t(&[
            (
                "title",
                "{{ payload.check.name }} is {{ payload.check.state }}",
            ),
            (
                "severity",
                "{{ {'P1': 'critical', 'P2': 'error'}[payload.prio] or 'warning' }}",
            ),
            ("dedup_key", "{{ payload.check.id }}"),
            ("description", "{{ payload.check.output }}"),
            ("source", "{{ payload.check.host }}"),
            ("links", "{{ payload.urls | join('\n') }}"),
            (
                "labels",
                "{{ {'team': payload.team, 'prio': payload.prio} | tojson }}",
            ),
            ("resolve_condition", "payload.check.state == 'UP'"),
            (
                "acknowledge_condition",
                "{{ payload.check.state == 'ACK' }}",
            ),
        ]);
        let p = |state: &str, prio: &str| {
            json!({"check": {"id": "chk-9", "name": "API", "state": state, "host": "api-1", "output": "timeout"},
                   "prio": prio, "team": "web", "urls": ["https://a.example/1", "https://b.example/2"]})
        };
        let e = map(&tm, &p("DOWN", "P1")).unwrap();
        assert_eq!(e.summary, "API is DOWN");
        assert_eq!(e.severity, AlertSeverity::Critical);
        assert_eq!(e.dedup_key.as_str(), "chk-9");
        assert_eq!(e.details["description"], "timeout");
        assert_eq!(e.source, "api-1");
        assert_eq!(e.links.len(), 2);
        assert_eq!(e.labels["team"], "web");
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(
            map(&tm, &p("DOWN", "P7")).unwrap().severity,
            AlertSeverity::Warning
        );
        assert_eq!(
            map(&tm, &p("UP", "P1")).unwrap().action,
            AlertAction::Resolve
        );
        assert_eq!(
            map(&tm, &p("ACK", "P1")).unwrap().action,
            AlertAction::Acknowledge
        );
        let json_links = t(&[(
            "links",
            r#"[{"href": "https://x/1", "text": "X"}, "https://y/2"]"#,
        )]);
        let e = map(&json_links, &json!({})).unwrap();
        assert_eq!(e.links[0].text.as_deref(), Some("X"));
        assert_eq!(e.links[1].href, "https://y/2");
    }

    #[test]
    fn problems_name_the_template() {
        let field = |pairs: &[(&str, &str)], p: Value| map(&t(pairs), &p).unwrap_err().field;
        assert_eq!(
            field(&[("severity", "{{ payload.s }}")], json!({"s": "fatal"})),
            "templates.severity"
        );
        assert_eq!(
            field(&[("dedup_key", "{{ payload.nope }}")], json!({})),
            "templates.dedup_key"
        );
        assert_eq!(
            field(&[("title", "{{ payload.x ")], json!({})),
            "templates.title"
        );
        assert_eq!(
            field(&[("title", "{{ payload.nope }}")], json!({})),
            "templates.title"
        );
        assert_eq!(
            field(&[("labels", "not json")], json!({})),
            "templates.labels"
        );
        assert_eq!(field(&[("links", "[nope")], json!({})), "templates.links");
        assert_eq!(
            field(&[("resolve_condition", "a ==")], json!({})),
            "templates.resolve_condition"
        );
        let all = map_all(
            &t(&[
                ("title", "{{ x "),
                ("severity", "bad"),
                ("resolve_condition", "("),
            ]),
            &json!({}),
        )
        .unwrap_err();
        let fields: Vec<&str> = all.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "templates.title",
                "templates.severity",
                "templates.resolve_condition"
            ]
        );
        // A resolving event needs no title.
        let e = map(
            &t(&[("title", "{{ payload.nope }}"), ("dedup_key", "k")]),
            &json!({"state": "ok"}),
        )
        .unwrap();
        assert_eq!(e.action, AlertAction::Resolve);
    }

    #[test]
    fn bodies_are_objects_or_arrays_of_objects() {
        let tm = Templates::default();
        let bad = |b: &str| parse(&tm, b.as_bytes()).unwrap_err().field;
        assert_eq!(bad("{"), "body");
        assert_eq!(bad("3"), "body");
        assert_eq!(bad("[]"), "body");
        assert_eq!(bad(r#"[{}, 4]"#), "body[1]");
        assert_eq!(
            parse(&tm, br#"[{"title": "a"}, {"title": "b"}]"#)
                .unwrap()
                .len(),
            2
        );
        let one = parse(&tm, br#"{"title": "a"}"#).unwrap();
        assert_eq!(one[0].1, r#"{"title": "a"}"#);
        let sev = t(&[("severity", "{{ payload.s }}")]);
        let e = parse(&sev, br#"[{"s": "info"}, {"s": "nope"}]"#).unwrap_err();
        assert_eq!(e.field, "templates.severity");
        assert!(e.message.starts_with("event 1:"), "{}", e.message);
    }

    // What a fuzzer would do, bounded: arbitrary payloads and templates never
    // panic; they map to an event or to an error naming a template or the body.
    #[test]
    fn arbitrary_input_never_panics() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        fn value(r: &mut StdRng, depth: u32) -> Value {
            let words = [
                "title", "status", "ok", "RESOLVED", "severity", "P1", "", "ü→", "{{", "labels",
                "url",
            ];
            match r.gen_range(0..if depth > 3 { 4 } else { 6 }) {
                0 => Value::Null,
                1 => json!(r.gen::<bool>()),
                2 => json!(r.gen::<i32>()),
                3 => json!(words[r.gen_range(0..words.len())]),
                4 => Value::Array(
                    (0..r.gen_range(0..4))
                        .map(|_| value(r, depth + 1))
                        .collect(),
                ),
                _ => Value::Object(
                    (0..r.gen_range(0..5))
                        .map(|_| {
                            (
                                words[r.gen_range(0..words.len())].to_string(),
                                value(r, depth + 1),
                            )
                        })
                        .collect(),
                ),
            }
        }
        let sources = [
            "{{ payload.title }}",
            "{{ payload | tojson }}",
            "{{ payload.labels | tojson }}",
            "{{ payload.status }}",
            "[1, 2]",
            "{{",
            "payload.status == 'ok'",
            "{% for x in payload %}{{ x }}\n{% endfor %}",
        ];
        let mut r = StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let payload = value(&mut r, 0);
            let pick = |r: &mut StdRng| {
                r.gen_bool(0.5)
                    .then(|| sources[r.gen_range(0..sources.len())].to_string())
            };
            let tm = Templates {
                title: pick(&mut r),
                severity: pick(&mut r),
                dedup_key: pick(&mut r),
                description: pick(&mut r),
                source: pick(&mut r),
                links: pick(&mut r),
                labels: pick(&mut r),
                resolve_condition: pick(&mut r),
                acknowledge_condition: pick(&mut r),
            };
            let body = serde_json::to_vec(&payload).unwrap();
            match parse(&tm, &body) {
                Ok(events) => assert!(!events.is_empty()),
                Err(e) => assert!(
                    e.field.starts_with("templates.") || e.field.starts_with("body"),
                    "{e}"
                ),
            }
        }
    }
}
