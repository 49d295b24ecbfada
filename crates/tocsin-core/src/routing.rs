//! Routing rules of an integration: an ordered list of label matchers, each
//! naming the service its events go to. The first rule whose matchers all match
//! wins; an event no rule matches goes to the integration's own service.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::matcher::{matches_all, LabelSource, MatchOp, Matcher};
use crate::Invalid;

/// Most rules one integration may have.
pub const MAX_RULES: usize = 100;
/// Most matchers one rule may have.
pub const MAX_MATCHERS: usize = 20;

/// One routing rule: events whose fields match every matcher go to `service_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoutingRule {
    /// Matchers in Alertmanager syntax (`env="prod"`) or as `{name, op, value}`;
    /// all must match. An empty list matches every event.
    pub matchers: Vec<Matcher>,
    /// Service the matching events go to.
    pub service_id: i64,
}

/// The service an event goes to: the first matching rule's, else `default`.
pub fn route(rules: &[RoutingRule], event: &impl LabelSource, default: i64) -> i64 {
    rules
        .iter()
        .find(|r| matches_all(&r.matchers, event))
        .map_or(default, |r| r.service_id)
}

/// Parses rules from request JSON, naming the offending field as
/// `{field}[i].matchers[j]` or `{field}[i].service_id`.
pub fn parse_rules(field: &str, v: &Value) -> Result<Vec<RoutingRule>, Invalid> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(Invalid::new(field, "must be a list of rules")),
    };
    if items.len() > MAX_RULES {
        return Err(Invalid::new(
            field,
            format!("at most {MAX_RULES} rules per integration"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_rule(&format!("{field}[{i}]"), item))
        .collect()
}

fn parse_rule(field: &str, v: &Value) -> Result<RoutingRule, Invalid> {
    let Value::Object(obj) = v else {
        return Err(Invalid::new(
            field,
            "must be an object with `matchers` and `service_id`",
        ));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["matchers", "service_id"].contains(&k.as_str()))
    {
        return Err(Invalid::new(
            format!("{field}.{k}"),
            "is not a field of a routing rule",
        ));
    }
    let service_id = match obj.get("service_id").and_then(Value::as_i64) {
        Some(id) if id > 0 => id,
        _ => {
            return Err(Invalid::new(
                format!("{field}.service_id"),
                "must be a service id",
            ))
        }
    };
    let matchers_field = format!("{field}.matchers");
    let raw = match obj.get("matchers") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Invalid::new(matchers_field, "must be a list of matchers")),
    };
    if raw.len() > MAX_MATCHERS {
        return Err(Invalid::new(
            matchers_field,
            format!("at most {MAX_MATCHERS} matchers per rule"),
        ));
    }
    let matchers = raw
        .iter()
        .enumerate()
        .map(|(j, m)| parse_matcher(&format!("{matchers_field}[{j}]"), m))
        .collect::<Result<_, _>>()?;
    Ok(RoutingRule {
        matchers,
        service_id,
    })
}

fn parse_matcher(field: &str, v: &Value) -> Result<Matcher, Invalid> {
    match v {
        Value::String(s) => Matcher::parse(field, s),
        Value::Object(o) => {
            let text = |k: &str| o.get(k).and_then(Value::as_str);
            let op = match text("op") {
                Some("=") => MatchOp::Eq,
                Some("!=") => MatchOp::Ne,
                Some("=~") => MatchOp::Re,
                Some("!~") => MatchOp::NotRe,
                _ => return Err(Invalid::new(field, "`op` must be =, !=, =~ or !~")),
            };
            Matcher::new(
                field,
                text("name").unwrap_or(""),
                op,
                text("value").unwrap_or(""),
            )
        }
        _ => Err(Invalid::new(
            field,
            "must be a matcher like `env=\"prod\"` or {name, op, value}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn first_match_wins_else_default() {
        let rules = parse_rules(
            "routing_rules",
            &json!([
                { "matchers": ["env=prod", "team=db"], "service_id": 2 },
                { "matchers": [{"name": "env", "op": "=~", "value": "prod|stag"}], "service_id": 3 },
                { "matchers": ["severity=critical"], "service_id": 4 }
            ]),
        )
        .unwrap();
        let r = |l: Value| route(&rules, &labels(l), 1);
        assert_eq!(r(json!({"env": "prod", "team": "db"})), 2);
        assert_eq!(
            r(json!({"env": "prod", "team": "web"})),
            3,
            "all matchers of a rule must match"
        );
        assert_eq!(
            r(json!({"env": "stag", "severity": "critical"})),
            3,
            "earlier rules win"
        );
        assert_eq!(r(json!({"severity": "critical"})), 4);
        assert_eq!(r(json!({"env": "dev"})), 1, "no match: the default");
        assert_eq!(route(&[], &labels(json!({})), 9), 9);
    }

    #[test]
    fn an_empty_rule_catches_everything() {
        let rules = parse_rules(
            "r",
            &json!([{ "matchers": [], "service_id": 5 }, { "matchers": ["a=b"], "service_id": 6 }]),
        )
        .unwrap();
        assert_eq!(route(&rules, &labels(json!({"a": "b"})), 1), 5);
    }

    #[test]
    fn bad_rules_name_the_field() {
        let bad = |v: Value| parse_rules("routing_rules", &v).unwrap_err().field;
        assert_eq!(bad(json!({})), "routing_rules");
        assert_eq!(bad(json!([7])), "routing_rules[0]");
        assert_eq!(
            bad(json!([{"matchers": [], "service_id": 1}, {"matchers": []}])),
            "routing_rules[1].service_id"
        );
        assert_eq!(
            bad(json!([{"matchers": ["a=b", "nope"], "service_id": 1}])),
            "routing_rules[0].matchers[1]"
        );
        assert_eq!(
            bad(json!([{"matchers": [{"name": "a", "op": "~", "value": "b"}], "service_id": 1}])),
            "routing_rules[0].matchers[0]"
        );
        assert_eq!(
            bad(json!([{"matchers": [], "service_id": 1, "x": 1}])),
            "routing_rules[0].x"
        );
    }

    #[test]
    fn stored_rules_round_trip() {
        let rules = parse_rules(
            "r",
            &json!([{ "matchers": ["job=~\"api|web\""], "service_id": 2 }]),
        )
        .unwrap();
        let stored = serde_json::to_value(&rules).unwrap();
        assert_eq!(
            stored,
            json!([{ "matchers": [{"name": "job", "op": "=~", "value": "api|web"}], "service_id": 2 }])
        );
        let back: Vec<RoutingRule> = serde_json::from_value(stored).unwrap();
        assert_eq!(back, rules);
    }
}
