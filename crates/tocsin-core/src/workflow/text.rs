//! The small typed values a definition is made of: templates and expressions
//! (checked when parsed, with what they refer to), and lengths of time.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::template;
use crate::Invalid;

/// What a template or expression reads beyond the trigger context: the
/// references the dry-run, the secret check and the id check need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    /// Secret names read as `secrets.NAME`.
    pub secrets: BTreeSet<String>,
    /// Step ids read as `steps.ID…`.
    pub steps: BTreeSet<String>,
    /// Variables read as `vars.NAME`.
    pub vars: BTreeSet<String>,
    /// Manual-run inputs read as `inputs.NAME`.
    pub inputs: BTreeSet<String>,
    /// Whether `steps` or `vars` is read as a whole (so which step is unknown).
    pub any_output: bool,
}

impl Refs {
    /// Whether anything an earlier step produces is read.
    pub fn reads_outputs(&self) -> bool {
        self.any_output || !self.steps.is_empty() || !self.vars.is_empty()
    }

    fn from_names(field: &str, names: impl IntoIterator<Item = String>) -> Result<Refs, Invalid> {
        let mut r = Refs::default();
        for name in names {
            let mut parts = name.split('.');
            let root = parts.next().unwrap_or_default();
            let second = parts.next();
            match (root, second) {
                // Secrets are listed by name so saving can refuse unknown ones and
                // the engine can hand over only those; a whole-map read defeats both.
                ("secrets", None) => {
                    return Err(Invalid::new(
                        field,
                        "secrets must be read one by one as secrets.NAME",
                    ))
                }
                ("secrets", Some(s)) => {
                    if !is_name(s) {
                        return Err(Invalid::new(
                            field,
                            format!("`{s}` is not a secret name (letters, digits, `_`)"),
                        ));
                    }
                    r.secrets.insert(s.to_string());
                }
                ("steps", Some(s)) => {
                    r.steps.insert(s.to_string());
                }
                ("vars", Some(s)) => {
                    r.vars.insert(s.to_string());
                }
                ("steps" | "vars", None) => r.any_output = true,
                ("inputs", Some(s)) => {
                    r.inputs.insert(s.to_string());
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

/// Whether `s` is a name: a letter or `_`, then letters, digits or `_`.
pub fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A minijinja template a user wrote, known to compile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template(String);

impl Template {
    /// Parses and checks a template; `field` names it in errors.
    pub fn parse(field: &str, source: &str) -> Result<Template, Invalid> {
        template::check(field, source)?;
        Refs::from_names(field, names_in_template(source))?;
        Ok(Template(source.to_string()))
    }

    /// The source as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the template reads.
    pub fn refs(&self) -> Refs {
        Refs::from_names("", names_in_template(&self.0)).unwrap_or_default()
    }

    /// Renders against `ctx`; errors name `field`.
    pub fn render(&self, field: &str, ctx: &Value) -> Result<String, Invalid> {
        template::render(field, &self.0, ctx)
    }
}

impl TryFrom<String> for Template {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Template::parse("template", &s)
    }
}

impl From<Template> for String {
    fn from(t: Template) -> String {
        t.0
    }
}

/// A minijinja expression (a condition or a capture), known to compile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Expr(String);

impl Expr {
    /// Parses and checks an expression; `field` names it in errors.
    pub fn parse(field: &str, source: &str) -> Result<Expr, Invalid> {
        if source.trim().is_empty() {
            return Err(Invalid::new(field, "must not be empty"));
        }
        template::check_expr(field, source)?;
        Refs::from_names(field, names_in_expr(source))?;
        Ok(Expr(source.to_string()))
    }

    /// The source as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the expression reads.
    pub fn refs(&self) -> Refs {
        Refs::from_names("", names_in_expr(&self.0)).unwrap_or_default()
    }

    /// Whether the expression holds in `ctx`.
    pub fn holds(&self, field: &str, ctx: &Value) -> Result<bool, Invalid> {
        template::eval_bool(field, &self.0, ctx)
    }

    /// The expression's value in `ctx`.
    pub fn eval(&self, field: &str, ctx: &Value) -> Result<Value, Invalid> {
        template::eval(field, &self.0, ctx)
    }
}

impl TryFrom<String> for Expr {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Expr::parse("expression", &s)
    }
}

impl From<Expr> for String {
    fn from(e: Expr) -> String {
        e.0
    }
}

// Static analysis only: nothing is rendered, so the sandbox's limits do not apply.
fn names_in_template(source: &str) -> Vec<String> {
    let env = minijinja::Environment::new();
    env.template_from_str(source)
        .map(|t| t.undeclared_variables(true).into_iter().collect())
        .unwrap_or_default()
}

fn names_in_expr(source: &str) -> Vec<String> {
    let env = minijinja::Environment::new();
    env.compile_expression(source)
        .map(|e| e.undeclared_variables(true).into_iter().collect())
        .unwrap_or_default()
}

/// A length of time, written `90s`, `5m`, `1h30m` or `2d`; whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span(u64);

impl Span {
    /// A span of `n` seconds.
    pub const fn secs(n: u64) -> Span {
        Span(n)
    }

    /// A span of `n` minutes.
    pub const fn mins(n: u64) -> Span {
        Span(n * 60)
    }

    /// A span of `n` hours.
    pub const fn hours(n: u64) -> Span {
        Span(n * 3600)
    }

    /// The span in seconds.
    pub fn as_secs(self) -> u64 {
        self.0
    }

    /// The span as a chrono duration, for arithmetic on timestamps.
    pub fn to_duration(self) -> chrono::Duration {
        chrono::Duration::seconds(self.0.min(i64::MAX as u64) as i64)
    }

    /// Parses `1h30m`-style text (units d, h, m, s; at least one).
    pub fn parse(field: &str, s: &str) -> Result<Span, Invalid> {
        let bad = || {
            Invalid::new(
                field,
                format!("`{s}` is not a length of time (e.g. 30s, 5m, 1h30m, 2d)"),
            )
        };
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut any = false;
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            let n: u64 = digits.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(unit)
                .and_then(|x| total.checked_add(x))
                .ok_or_else(bad)?;
            digits.clear();
            any = true;
        }
        if !digits.is_empty() || !any {
            return Err(bad());
        }
        Ok(Span(total))
    }

    /// Parses a span from a YAML value, refusing more than `max`.
    pub fn parse_value(field: &str, v: &Value, max: Span) -> Result<Span, Invalid> {
        let s = match v {
            Value::String(s) => s,
            Value::Number(_) => {
                return Err(Invalid::new(
                    field,
                    "needs a unit: write 30s, 5m, 1h30m or 2d",
                ))
            }
            _ => return Err(Invalid::new(field, "must be a length of time such as 5m")),
        };
        let span = Span::parse(field, s)?;
        if span > max {
            return Err(Invalid::new(field, format!("must be at most {max}")));
        }
        Ok(span)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, name) in [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')] {
            if rest >= unit {
                write!(f, "{}{name}", rest / unit)?;
                rest %= unit;
            }
        }
        Ok(())
    }
}

impl TryFrom<String> for Span {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Span::parse("span", &s)
    }
}

impl From<Span> for String {
    fn from(s: Span) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spans_parse_and_print() {
        assert_eq!(Span::parse("t", "90s").unwrap(), Span::secs(90));
        assert_eq!(Span::parse("t", "1h30m").unwrap(), Span::mins(90));
        assert_eq!(Span::parse("t", "2d").unwrap().as_secs(), 172_800);
        assert_eq!(Span::mins(90).to_string(), "1h30m");
        assert_eq!(Span::secs(3661).to_string(), "1h1m1s");
        for bad in ["", "5", "m", "5x", "1h 2m", "-5m", "99999999999999999999d"] {
            assert_eq!(
                Span::parse("steps[0].wait", bad).unwrap_err().field,
                "steps[0].wait"
            );
        }
        let e = Span::parse_value("t", &json!(5), Span::hours(1)).unwrap_err();
        assert!(e.message.contains("unit"), "{}", e.message);
        assert!(Span::parse_value("t", &json!("2h"), Span::hours(1)).is_err());
    }

    #[test]
    fn templates_list_what_they_read() {
        let t = Template::parse(
            "x",
            "{{ secrets.TOKEN }} {{ steps.ticket.outputs.key }} {{ vars.ok }} {{ inputs.why }} {{ incident.title }}",
        )
        .unwrap();
        let r = t.refs();
        assert_eq!(r.secrets, BTreeSet::from(["TOKEN".to_string()]));
        assert_eq!(r.steps, BTreeSet::from(["ticket".to_string()]));
        assert_eq!(r.vars, BTreeSet::from(["ok".to_string()]));
        assert_eq!(r.inputs, BTreeSet::from(["why".to_string()]));
        assert!(r.reads_outputs());
        assert!(!Template::parse("x", "{{ incident.title }}")
            .unwrap()
            .refs()
            .reads_outputs());
        // Loop and set variables are not references.
        let r = Template::parse("x", "{% for s in incident.services %}{{ s }}{% endfor %}")
            .unwrap()
            .refs();
        assert_eq!(r, Refs::default());
        assert!(
            Template::parse("x", "{% set s = steps %}{{ s.a }}")
                .unwrap()
                .refs()
                .any_output
        );
    }

    #[test]
    fn secrets_must_be_named() {
        for bad in [
            "{{ secrets }}",
            "{{ secrets['TOKEN'] }}",
            "{% for k in secrets %}{{ k }}{% endfor %}",
        ] {
            let e = Template::parse("steps[1].http.url", bad).unwrap_err();
            assert_eq!(e.field, "steps[1].http.url", "{bad}");
            assert!(e.message.contains("secrets.NAME"), "{}", e.message);
        }
        assert!(Expr::parse("if", "secrets | length > 0").is_err());
    }

    #[test]
    fn syntax_errors_name_the_field() {
        let e = Template::parse("steps[2].http.url", "https://x/{{ incident.id ").unwrap_err();
        assert_eq!(e.field, "steps[2].http.url");
        let e = Expr::parse("conditions", "incident.severity ==").unwrap_err();
        assert_eq!(e.field, "conditions");
        assert_eq!(
            Expr::parse("conditions", " ").unwrap_err().field,
            "conditions"
        );
    }

    #[test]
    fn expressions_evaluate() {
        let ctx = json!({"incident": {"severity": "SEV1", "services": ["payments"]}});
        let e = Expr::parse(
            "c",
            r#"incident.severity in ["SEV1","SEV2"] and "payments" in incident.services"#,
        )
        .unwrap();
        assert!(e.holds("c", &ctx).unwrap());
        assert!(!e
            .holds("c", &json!({"incident": {"severity": "SEV3"}}))
            .unwrap());
    }
}
