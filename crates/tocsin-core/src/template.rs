//! User-written templates and expressions (minijinja), sandboxed: no file
//! access, no loader, a fuel budget instead of a wall-clock timeout, and bounded
//! output. Used wherever users map or test data: integration templates, grouping
//! keys, routing and workflow conditions, notification text.

use minijinja::{Environment, UndefinedBehavior, Value as JValue};
use serde::Serialize;

use crate::Invalid;

/// Instructions one render may execute before it is stopped.
pub const FUEL: u64 = 50_000;
/// Longest text one render may produce.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Longest template accepted.
pub const MAX_SOURCE: usize = 16 * 1024;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // Missing keys in payloads are common: `payload.a.b` is empty, not an error.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    // Output is data (titles, keys), escaped wherever it is shown, never here.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_recursion_limit(64);
    // Fuel bounds instructions, not memory: drop what multiplies text or carries
    // state across loop iterations. Templates are written by admins only.
    env.remove_filter("indent");
    env.remove_filter("center");
    env.remove_global("namespace");
    env
}

fn invalid(field: &str, e: minijinja::Error) -> Invalid {
    let what = match e.kind() {
        minijinja::ErrorKind::OutOfFuel => {
            "took too long (over its instruction budget)".to_string()
        }
        _ => {
            let mut msg = e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string());
            if let Some(line) = e.line() {
                msg = format!("line {line}: {msg}");
            }
            msg
        }
    };
    Invalid::new(field, format!("template error: {what}"))
}

fn source_ok(field: &str, source: &str) -> Result<(), Invalid> {
    if source.len() > MAX_SOURCE {
        return Err(Invalid::new(
            field,
            format!("must be at most {MAX_SOURCE} bytes"),
        ));
    }
    Ok(())
}

/// Checks that a template compiles; `field` names it in the error.
pub fn check(field: &str, source: &str) -> Result<(), Invalid> {
    source_ok(field, source)?;
    env()
        .template_from_str(source)
        .map(|_| ())
        .map_err(|e| invalid(field, e))
}

/// Checks that an expression compiles.
pub fn check_expr(field: &str, expr: &str) -> Result<(), Invalid> {
    source_ok(field, expr)?;
    env()
        .compile_expression(expr)
        .map(|_| ())
        .map_err(|e| invalid(field, e))
}

/// Renders `source` with `ctx` (any serializable value: its top-level keys are the
/// template's variables). The result is trimmed of surrounding whitespace.
pub fn render(field: &str, source: &str, ctx: &impl Serialize) -> Result<String, Invalid> {
    source_ok(field, source)?;
    let env = env();
    let tmpl = env
        .template_from_str(source)
        .map_err(|e| invalid(field, e))?;
    let out = tmpl
        .render(JValue::from_serialize(ctx))
        .map_err(|e| invalid(field, e))?;
    if out.len() > MAX_OUTPUT {
        return Err(Invalid::new(
            field,
            format!("renders to more than {MAX_OUTPUT} bytes"),
        ));
    }
    Ok(out.trim().to_string())
}

/// Evaluates an expression to a JSON value (`undefined` is null).
pub fn eval(field: &str, expr: &str, ctx: &impl Serialize) -> Result<serde_json::Value, Invalid> {
    source_ok(field, expr)?;
    let env = env();
    let e = env
        .compile_expression(expr)
        .map_err(|e| invalid(field, e))?;
    let v = e
        .eval(JValue::from_serialize(ctx))
        .map_err(|e| invalid(field, e))?;
    if v.is_undefined() || v.is_none() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::to_value(&v).map_err(|e| Invalid::new(field, format!("template error: {e}")))
}

/// Evaluates a condition: true when the expression's value is truthy.
pub fn eval_bool(field: &str, expr: &str, ctx: &impl Serialize) -> Result<bool, Invalid> {
    source_ok(field, expr)?;
    let env = env();
    let e = env
        .compile_expression(expr)
        .map_err(|e| invalid(field, e))?;
    let v = e
        .eval(JValue::from_serialize(ctx))
        .map_err(|e| invalid(field, e))?;
    Ok(v.is_true())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_payload_fields() {
        let ctx = json!({"payload": {"alert": {"name": "Disk full", "host": "db-1"}, "n": 3}});
        assert_eq!(
            render(
                "title",
                "{{ payload.alert.name }} on {{ payload.alert.host }}",
                &ctx
            )
            .unwrap(),
            "Disk full on db-1"
        );
        assert_eq!(
            render("t", "{{ payload.missing.deeper }}", &ctx).unwrap(),
            ""
        );
        assert_eq!(render("t", "{{ payload.n * 2 }}", &ctx).unwrap(), "6");
        assert_eq!(
            render("t", "{{ payload.alert | tojson }}", &ctx).unwrap(),
            r#"{"host":"db-1","name":"Disk full"}"#
        );
    }

    #[test]
    fn does_not_escape_html_here() {
        let ctx = json!({"s": "<b>&"});
        assert_eq!(render("t", "{{ s }}", &ctx).unwrap(), "<b>&");
    }

    #[test]
    fn conditions() {
        let ctx = json!({"payload": {"state": "ok", "sev": "SEV1"}});
        assert!(eval_bool("resolve", "payload.state == 'ok'", &ctx).unwrap());
        assert!(!eval_bool("resolve", "payload.state == 'alerting'", &ctx).unwrap());
        assert!(eval_bool("c", "payload.sev in ['SEV1', 'SEV2']", &ctx).unwrap());
        assert!(!eval_bool("c", "payload.nothing", &ctx).unwrap());
        assert_eq!(
            eval("v", "payload.sev | lower", &ctx).unwrap(),
            json!("sev1")
        );
        assert_eq!(eval("v", "payload.nothing", &ctx).unwrap(), json!(null));
    }

    #[test]
    fn errors_name_the_field() {
        let e = render("templates.title", "{{ payload.x ", &json!({})).unwrap_err();
        assert_eq!(e.field, "templates.title");
        assert!(e.message.contains("template error"), "{}", e.message);
        assert_eq!(check_expr("c", "a ==").unwrap_err().field, "c");
        assert!(check("t", "{% for x in y %}{{ x }}{% endfor %}").is_ok());
    }

    #[test]
    fn runaway_templates_are_stopped() {
        let e = render(
            "t",
            "{% for a in range(1000) %}{% for b in range(1000) %}{{ b }}{% endfor %}{% endfor %}",
            &json!({}),
        )
        .unwrap_err();
        assert!(
            e.message.contains("too long") || e.message.contains("more than"),
            "{}",
            e.message
        );
        assert!(render("t", &"x".repeat(MAX_SOURCE + 1), &json!({})).is_err());
        // What multiplies text or accumulates across loop iterations is not there.
        for t in [
            "{{ 'x' | indent(1000000000) }}",
            "{{ 'x' | center(1000000000) }}",
            "{% set ns = namespace(a='x') %}{{ ns.a }}",
        ] {
            assert!(render("t", t, &json!({})).is_err(), "{t}");
        }
    }
}
