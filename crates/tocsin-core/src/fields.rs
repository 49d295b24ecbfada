//! Custom incident fields: a configured schema and the validation of values against it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Invalid;

/// The kind of value a custom field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Free text, up to 10,000 characters.
    Text,
    /// A finite number.
    Number,
    /// One of the configured options.
    Select,
    /// Any set of the configured options, without repeats.
    MultiSelect,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A user id.
    User,
}

/// One configured custom field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Key used in `custom_fields`.
    pub name: String,
    /// Kind of value.
    pub kind: FieldKind,
    /// Allowed values for select and multi_select.
    #[serde(default)]
    pub options: Vec<String>,
    /// Whether an incident must have a value when declared.
    #[serde(default)]
    pub required: bool,
    /// What the field is for.
    #[serde(default)]
    pub description: String,
}

const MAX_TEXT: usize = 10_000;

impl FieldDef {
    /// Checks one value against this definition; `null` clears the field.
    pub fn check(&self, value: &Value) -> Result<(), Invalid> {
        let field = format!("custom_fields.{}", self.name);
        let bad = |msg: String| Err(Invalid::new(field.clone(), msg));
        match (self.kind, value) {
            (_, Value::Null) => Ok(()),
            (FieldKind::Text, Value::String(s)) if s.chars().count() <= MAX_TEXT => Ok(()),
            (FieldKind::Text, Value::String(_)) => {
                bad(format!("text is longer than {MAX_TEXT} characters"))
            }
            (FieldKind::Number, Value::Number(_)) => Ok(()),
            (FieldKind::Select, Value::String(s)) if self.options.contains(s) => Ok(()),
            (FieldKind::Select, Value::String(s)) => {
                bad(format!("`{s}` is not one of: {}", self.options.join(", ")))
            }
            (FieldKind::MultiSelect, Value::Array(items)) => {
                let mut seen = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) if !self.options.iter().any(|o| o == s) => {
                            return bad(format!("`{s}` is not one of: {}", self.options.join(", ")))
                        }
                        Some(s) if seen.contains(&s) => {
                            return bad(format!("`{s}` is listed twice"))
                        }
                        Some(s) => seen.push(s),
                        None => return bad("expected an array of strings".into()),
                    }
                }
                Ok(())
            }
            (FieldKind::Date, Value::String(s))
                if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() =>
            {
                Ok(())
            }
            (FieldKind::Date, Value::String(s)) => {
                bad(format!("`{s}` is not a date (expected YYYY-MM-DD)"))
            }
            (FieldKind::User, Value::Number(n)) if n.as_i64().is_some_and(|v| v > 0) => Ok(()),
            (kind, _) => bad(format!("expected {}", expected(kind))),
        }
    }
}

fn expected(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "a string",
        FieldKind::Number => "a number",
        FieldKind::Select => "a string",
        FieldKind::MultiSelect => "an array of strings",
        FieldKind::Date => "a date string YYYY-MM-DD",
        FieldKind::User => "a user id (positive integer)",
    }
}

/// Applies `changes` to `current` under `schema`: unknown names and bad values
/// are refused, `null` removes a field. Returns the new map.
pub fn apply(
    schema: &[FieldDef],
    current: &Map<String, Value>,
    changes: &Map<String, Value>,
) -> Result<Map<String, Value>, Invalid> {
    let mut out = current.clone();
    for (name, value) in changes {
        let def = schema.iter().find(|d| &d.name == name).ok_or_else(|| {
            Invalid::new(
                format!("custom_fields.{name}"),
                "no such custom field is configured",
            )
        })?;
        def.check(value)?;
        if value.is_null() {
            out.remove(name);
        } else {
            out.insert(name.clone(), value.clone());
        }
    }
    Ok(out)
}

/// Checks that every required field has a value.
pub fn check_required(schema: &[FieldDef], values: &Map<String, Value>) -> Result<(), Invalid> {
    match schema
        .iter()
        .find(|d| d.required && values.get(&d.name).is_none_or(Value::is_null))
    {
        Some(d) => Err(Invalid::new(
            format!("custom_fields.{}", d.name),
            "this field is required",
        )),
        None => Ok(()),
    }
}

/// The user ids referenced by user-kind fields, for the store to check they exist.
pub fn referenced_users(schema: &[FieldDef], values: &Map<String, Value>) -> Vec<(String, i64)> {
    schema
        .iter()
        .filter(|d| d.kind == FieldKind::User)
        .filter_map(|d| {
            values
                .get(&d.name)
                .and_then(Value::as_i64)
                .map(|id| (format!("custom_fields.{}", d.name), id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Vec<FieldDef> {
        let def = |name: &str, kind, options: &[&str]| FieldDef {
            name: name.into(),
            kind,
            options: options.iter().map(|s| s.to_string()).collect(),
            required: false,
            description: String::new(),
        };
        vec![
            def("region", FieldKind::Select, &["eu", "us"]),
            def("tags", FieldKind::MultiSelect, &["db", "net"]),
            def("cost", FieldKind::Number, &[]),
            def("due", FieldKind::Date, &[]),
            def("owner", FieldKind::User, &[]),
            def("notes", FieldKind::Text, &[]),
        ]
    }

    fn try_one(v: Value) -> Result<Map<String, Value>, Invalid> {
        apply(&schema(), &Map::new(), v.as_object().unwrap())
    }

    #[test]
    fn accepts_good_values() {
        let out = try_one(json!({"region": "eu", "tags": ["db", "net"], "cost": 1.5,
            "due": "2026-02-28", "owner": 3, "notes": "x"}))
        .unwrap();
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn refuses_bad_values_naming_the_field() {
        for (v, field) in [
            (json!({"region": "mars"}), "custom_fields.region"),
            (json!({"tags": ["db", "db"]}), "custom_fields.tags"),
            (json!({"tags": "db"}), "custom_fields.tags"),
            (json!({"cost": "1"}), "custom_fields.cost"),
            (json!({"due": "2026-02-30"}), "custom_fields.due"),
            (json!({"owner": -1}), "custom_fields.owner"),
            (json!({"colour": "red"}), "custom_fields.colour"),
        ] {
            assert_eq!(try_one(v).unwrap_err().field, field);
        }
    }

    #[test]
    fn null_clears_and_required_is_enforced() {
        let mut s = schema();
        s[0].required = true;
        let cur = json!({"region": "eu"}).as_object().unwrap().clone();
        let out = apply(&s, &cur, json!({"region": null}).as_object().unwrap()).unwrap();
        assert!(out.is_empty());
        assert_eq!(
            check_required(&s, &out).unwrap_err().field,
            "custom_fields.region"
        );
    }
}
