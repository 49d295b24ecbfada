//! Reading YAML into typed values with errors that name the field
//! (`steps[2].http.url`), the way every other Tocsin parser does.
//!
//! YAML is first read into a JSON value (with anchors and merge keys applied),
//! then walked by hand with [`Fields`]: serde's derive loses the path as soon as
//! a step's common fields and its action share one mapping (`flatten`), and the
//! checks that matter most (templates compile, ids exist) need the path anyway.

use serde_json::{Map, Number, Value};

use super::text::{Expr, Span, Template};
use crate::Invalid;

/// Largest definition or runbook accepted, in bytes.
pub const MAX_SOURCE: usize = 256 * 1024;

/// Parses YAML text into a JSON value; syntax errors name `field` and the line.
pub fn to_json(field: &str, text: &str) -> Result<Value, Invalid> {
    if text.len() > MAX_SOURCE {
        return Err(Invalid::new(
            field,
            format!("must be at most {MAX_SOURCE} bytes"),
        ));
    }
    let mut v: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        Invalid::new(field, format!("is not valid YAML{at}: {e}"))
    })?;
    v.apply_merge()
        .map_err(|e| Invalid::new(field, format!("is not valid YAML: {e}")))?;
    // Paths inside the document start at its root (`steps[2].http.url`).
    convert("", v).map_err(|mut e| {
        if e.field.is_empty() {
            e.field = field.to_string();
        }
        e
    })
}

fn convert(path: &str, v: serde_yaml::Value) -> Result<Value, Invalid> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Value::Number(
                    Number::from_f64(f)
                        .ok_or_else(|| Invalid::new(path, "must be a finite number"))?,
                )
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| convert(&format!("{path}[{i}]"), item))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                // Keys are names; a number key (`200:`) is its text.
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    _ => return Err(Invalid::new(path, "mapping keys must be plain text")),
                };
                let child = join(path, &key);
                out.insert(key, convert(&child, v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            return Err(Invalid::new(
                path,
                format!("YAML tags ({}) are not supported", t.tag),
            ))
        }
    })
}

/// `path.key`, or `key` at the top.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A short description of a JSON value's type, for error messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The fields of one mapping being read: each getter marks its key as known,
/// and [`Fields::finish`] refuses any key nobody asked for, listing those asked.
pub struct Fields<'a> {
    path: String,
    map: &'a Map<String, Value>,
    what: &'static str,
    known: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    /// Starts reading `v`, which must be a mapping; `what` names it in errors.
    pub fn new(path: &str, v: &'a Value, what: &'static str) -> Result<Self, Invalid> {
        match v {
            Value::Object(map) => Ok(Fields {
                path: path.to_string(),
                map,
                what,
                known: Vec::new(),
            }),
            other => Err(Invalid::new(
                path,
                format!("must be a mapping ({what}), not {}", kind_of(other)),
            )),
        }
    }

    /// The path of `key` under this mapping.
    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Whether `key` is present with a value (null counts as absent).
    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// The raw value of `key`, if present and not null.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Text (a number is taken as its text).
    pub fn text(&mut self, key: &'static str) -> Result<Option<String>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => text_of(&self.path(key), v).map(Some),
        }
    }

    /// Required text.
    pub fn req_text(&mut self, key: &'static str) -> Result<String, Invalid> {
        self.text(key)?.ok_or_else(|| self.missing(key))
    }

    /// A template, checked now so a syntax error is caught when saving.
    pub fn template(&mut self, key: &'static str) -> Result<Option<Template>, Invalid> {
        let path = self.path(key);
        self.text(key)?
            .map(|s| Template::parse(&path, &s))
            .transpose()
    }

    /// A required template.
    pub fn req_template(&mut self, key: &'static str) -> Result<Template, Invalid> {
        self.template(key)?.ok_or_else(|| self.missing(key))
    }

    /// An expression (a condition), checked now.
    pub fn expr(&mut self, key: &'static str) -> Result<Option<Expr>, Invalid> {
        let path = self.path(key);
        self.text(key)?.map(|s| Expr::parse(&path, &s)).transpose()
    }

    /// True or false, `default` when absent.
    pub fn flag(&mut self, key: &'static str, default: bool) -> Result<bool, Invalid> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(Invalid::new(
                self.path(key),
                format!("must be true or false, not {}", kind_of(v)),
            )),
        }
    }

    /// A whole number in `min..=max`.
    pub fn number(
        &mut self,
        key: &'static str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => number_of(&self.path(key), v, min, max).map(Some),
        }
    }

    /// A length of time (`90s`, `5m`, `1h30m`) of at most `max`.
    pub fn span(&mut self, key: &'static str, max: Span) -> Result<Option<Span>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => Span::parse_value(&self.path(key), v, max).map(Some),
        }
    }

    /// A list: each item with its path. A single item may be written bare.
    pub fn list(&mut self, key: &'static str) -> Vec<(String, &'a Value)> {
        let path = self.path(key);
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}[{i}]"), v))
                .collect(),
            Some(v) => vec![(path, v)],
        }
    }

    /// A list of text items (a single item may be written bare).
    pub fn texts(&mut self, key: &'static str) -> Result<Vec<String>, Invalid> {
        self.list(key)
            .into_iter()
            .map(|(p, v)| text_of(&p, v))
            .collect()
    }

    /// A mapping: each entry as (key, path, value).
    pub fn entries(
        &mut self,
        key: &'static str,
    ) -> Result<Vec<(String, String, &'a Value)>, Invalid> {
        let path = self.path(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => Ok(m
                .iter()
                .map(|(k, v)| (k.clone(), join(&path, k), v))
                .collect()),
            Some(v) => Err(Invalid::new(
                path,
                format!("must be a mapping, not {}", kind_of(v)),
            )),
        }
    }

    /// A mapping of names to templates.
    pub fn template_map(
        &mut self,
        key: &'static str,
    ) -> Result<std::collections::BTreeMap<String, Template>, Invalid> {
        self.entries(key)?
            .into_iter()
            .map(|(k, p, v)| Ok((k, Template::parse(&p, &text_of(&p, v)?)?)))
            .collect()
    }

    /// The error for a missing required `key`.
    pub fn missing(&self, key: &str) -> Invalid {
        Invalid::new(self.path(key), format!("is required in {}", self.what))
    }

    /// Refuses keys no getter asked for, naming the first and listing the known.
    pub fn finish(self) -> Result<(), Invalid> {
        if let Some(k) = self.map.keys().find(|k| !self.known.contains(&k.as_str())) {
            let mut known = self.known.clone();
            known.sort_unstable();
            known.dedup();
            return Err(Invalid::new(
                join(&self.path, k),
                format!(
                    "is not a field of {}; expected one of: {}",
                    self.what,
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// Text from a scalar (a number is its text); anything else is refused.
pub fn text_of(path: &str, v: &Value) -> Result<String, Invalid> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(Invalid::new(
            path,
            format!("must be text, not {}", kind_of(other)),
        )),
    }
}

/// A whole number in `min..=max`.
pub fn number_of(path: &str, v: &Value, min: u64, max: u64) -> Result<u64, Invalid> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Invalid::new(
            path,
            format!("must be a whole number from {min} to {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_becomes_json_with_merge_keys() {
        let v = to_json(
            "definition",
            "base: &b {a: 1}\nx:\n  <<: *b\n  c: [1, 2.5, yes]\n200: ok\n",
        )
        .unwrap();
        assert_eq!(v["x"], json!({"a": 1, "c": [1, 2.5, "yes"]}));
        assert_eq!(v["200"], json!("ok"));
    }

    #[test]
    fn yaml_errors_name_the_field_and_line() {
        let e = to_json("definition", "a: [1, 2\nb: c").unwrap_err();
        assert_eq!(e.field, "definition");
        assert!(e.message.contains("line"), "{}", e.message);
        let e = to_json("definition", "a:\n  b: !secret x\n").unwrap_err();
        assert_eq!(e.field, "a.b");
        let e = to_json("definition", "a:\n  - {[1]: x}\n").unwrap_err();
        assert_eq!(e.field, "a[0]");
        assert!(to_json("d", &"x".repeat(MAX_SOURCE + 1)).is_err());
    }

    #[test]
    fn unknown_fields_are_named_with_the_known_ones() {
        let v = json!({"url": "x", "methd": "GET"});
        let mut f = Fields::new("steps[0].http", &v, "an http step").unwrap();
        f.text("url").unwrap();
        f.text("method").unwrap();
        let e = f.finish().unwrap_err();
        assert_eq!(e.field, "steps[0].http.methd");
        assert!(e.message.contains("method, url"), "{}", e.message);
    }

    #[test]
    fn getters_name_the_field() {
        let v = json!({"n": 0, "b": "yes", "t": ["x"], "m": 1});
        let mut f = Fields::new("p", &v, "a thing").unwrap();
        assert_eq!(f.number("n", 1, 5).unwrap_err().field, "p.n");
        assert_eq!(f.flag("b", false).unwrap_err().field, "p.b");
        assert_eq!(f.text("t").unwrap_err().field, "p.t");
        assert_eq!(f.entries("m").unwrap_err().field, "p.m");
        assert_eq!(f.req_text("gone").unwrap_err().field, "p.gone");
        assert_eq!(
            Fields::new("p", &json!([1]), "a thing")
                .err()
                .unwrap()
                .field,
            "p"
        );
    }
}
