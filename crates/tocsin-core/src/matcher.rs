//! Label matchers in Alertmanager's syntax (`name="value"`, `!=`, `=~`, `!~`):
//! what silences, maintenance windows and routing rules select alerts with.
//!
//! As in Alertmanager, a label the alert lacks matches as the empty string, and a
//! regular expression must match the whole value (it is anchored at both ends).

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::alert::{Alert, AlertEvent};
use crate::Invalid;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum MatchOp {
    /// Equal.
    #[serde(rename = "=")]
    Eq,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
    /// Matches the regular expression (anchored).
    #[serde(rename = "=~")]
    Re,
    /// Does not match the regular expression (anchored).
    #[serde(rename = "!~")]
    NotRe,
}

impl MatchOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// One matcher: a label name, an operator and a value.
#[derive(Debug, Clone, ToSchema)]
#[schema(as = Matcher)]
pub struct Matcher {
    /// Label name (or `severity`, `summary`, `source` when the alert has no such label).
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or regular expression.
    pub value: String,
    #[schema(ignore)]
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Longest regular expression accepted, in bytes of compiled program.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Matcher {
    /// Builds a matcher; a regular expression must compile. `field` names it in errors.
    pub fn new(field: &str, name: &str, op: MatchOp, value: &str) -> Result<Matcher, Invalid> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Invalid::new(field, "the label name must not be empty"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        {
            return Err(Invalid::new(
                field,
                format!("`{name}` is not a label name (letters, digits, `_`, `.`, `-`)"),
            ));
        }
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        Invalid::new(field, format!("`{value}` is not a regular expression: {e}"))
                    })?,
            ),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Parses `name="value"`, `name!="value"`, `name=~"regex"` or `name!~"regex"`;
    /// the quotes may be left out when the value has no spaces or quotes.
    pub fn parse(field: &str, s: &str) -> Result<Matcher, Invalid> {
        let s = s.trim();
        let at = s
            .find(['=', '!'])
            .ok_or_else(|| Invalid::new(field, format!("`{s}` has no operator (=, !=, =~, !~)")))?;
        let (name, rest) = s.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Re, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::Ne, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Eq, v)
        } else {
            return Err(Invalid::new(
                field,
                format!("`{s}` has no operator (=, !=, =~, !~)"),
            ));
        };
        let value = value.trim();
        let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            serde_json::from_str::<String>(value)
                .map_err(|_| Invalid::new(field, format!("`{value}` is not a quoted string")))?
        } else if value.contains('"') {
            return Err(Invalid::new(
                field,
                format!("`{value}` has unbalanced quotes"),
            ));
        } else {
            value.to_string()
        };
        Matcher::new(field, name, op, &value)
    }

    /// Whether the value looked up for this matcher's name satisfies it; a missing
    /// value is the empty string.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRe => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether an alert's fields satisfy this matcher.
    pub fn matches(&self, fields: &impl LabelSource) -> bool {
        self.matches_value(fields.label(&self.name).as_deref())
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op.as_str(),
            serde_json::to_string(&self.value).unwrap_or_default()
        )
    }
}

/// Whether every matcher matches (an empty list matches everything).
pub fn matches_all(matchers: &[Matcher], fields: &impl LabelSource) -> bool {
    matchers.iter().all(|m| m.matches(fields))
}

/// Parses a list of matchers from text form, naming each by its index under `field`.
pub fn parse_all(field: &str, items: &[String]) -> Result<Vec<Matcher>, Invalid> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| Matcher::parse(&format!("{field}[{i}]"), s))
        .collect()
}

/// Something whose labels matchers can read.
pub trait LabelSource {
    /// The value of label `name`: the alert's own label if it has one, else the
    /// alert's `severity`, `summary`, `source` or `integration` for those names.
    fn label(&self, name: &str) -> Option<String>;
}

fn label_of(labels: &Map<String, Value>, name: &str) -> Option<String> {
    labels.get(name).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

impl LabelSource for AlertEvent {
    fn label(&self, name: &str) -> Option<String> {
        label_of(&self.labels, name).or_else(|| match name {
            "severity" => Some(self.severity.as_str().to_string()),
            "summary" => Some(self.summary.clone()),
            "source" => Some(self.source.clone()),
            "integration" => Some(self.integration.to_string()),
            _ => None,
        })
    }
}

impl LabelSource for Alert {
    fn label(&self, name: &str) -> Option<String> {
        label_of(&self.labels, name).or_else(|| match name {
            "severity" => Some(self.severity.as_str().to_string()),
            "summary" => Some(self.summary.clone()),
            "source" => Some(self.source.clone()),
            "integration" => Some(self.integration.clone()),
            _ => None,
        })
    }
}

impl LabelSource for Map<String, Value> {
    fn label(&self, name: &str) -> Option<String> {
        label_of(self, name)
    }
}

// Stored and sent as `{"name": …, "op": "=~", "value": …}`; read from that or from text.
impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            name: &'a str,
            op: MatchOp,
            value: &'a str,
        }
        Wire {
            name: &self.name,
            op: self.op,
            value: &self.value,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Parts {
                name: String,
                op: MatchOp,
                value: String,
            },
        }
        let m = match Wire::deserialize(d)? {
            Wire::Text(s) => Matcher::parse("matcher", &s),
            Wire::Parts { name, op, value } => Matcher::new("matcher", &name, op, &value),
        };
        m.map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn parses_alertmanager_syntax() {
        let m = Matcher::parse("m", r#"alertname="Disk full""#).unwrap();
        assert_eq!(
            (m.name.as_str(), m.op, m.value.as_str()),
            ("alertname", MatchOp::Eq, "Disk full")
        );
        let m = Matcher::parse("m", "severity=~crit.*").unwrap();
        assert_eq!(m.op, MatchOp::Re);
        assert_eq!(Matcher::parse("m", "env!=prod").unwrap().op, MatchOp::Ne);
        assert_eq!(
            Matcher::parse("m", r#"env!~"prod|stag""#).unwrap().op,
            MatchOp::NotRe
        );
        assert_eq!(Matcher::parse("m", r#"a="x\"y""#).unwrap().value, "x\"y");
        assert_eq!(Matcher::parse("m", r#"x="#).unwrap().value, "");
    }

    #[test]
    fn bad_matchers_name_the_field() {
        for bad in ["alertname", "=x", "a=~(", r#"a="x"#, "a b=c"] {
            let e = Matcher::parse("matchers[2]", bad).unwrap_err();
            assert_eq!(e.field, "matchers[2]", "{bad}");
        }
    }

    #[test]
    fn matches_like_alertmanager() {
        let l = labels(json!({"alertname": "DiskFull", "env": "prod", "code": 503}));
        let m = |s: &str| Matcher::parse("m", s).unwrap().matches(&l);
        assert!(m("alertname=DiskFull"));
        assert!(!m("alertname=Disk"));
        assert!(m("alertname=~Disk.*"));
        assert!(!m("alertname=~Disk"), "regexes are anchored");
        assert!(m("env!=staging"));
        assert!(m("env!~stag.*"));
        assert!(m("code=503"), "non-string labels compare as JSON text");
        assert!(m(r#"missing="""#), "a missing label is empty");
        assert!(m("missing!=x"));
        assert!(!m("missing=~.+"));
        assert!(matches_all(&[], &l));
    }

    #[test]
    fn round_trips_as_json_and_text() {
        let m = Matcher::parse("m", r#"job=~"api|web""#).unwrap();
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v, json!({"name": "job", "op": "=~", "value": "api|web"}));
        let back: Matcher = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        let from_text: Matcher = serde_json::from_value(json!("job=~\"api|web\"")).unwrap();
        assert_eq!(from_text, m);
        assert_eq!(m.to_string(), r#"job=~"api|web""#);
        assert!(
            serde_json::from_value::<Matcher>(json!({"name": "a", "op": "=~", "value": "("}))
                .is_err()
        );
    }
}
