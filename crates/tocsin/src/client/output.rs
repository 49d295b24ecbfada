//! Human-readable output: aligned tables and key/value blocks.

use serde_json::Value;

/// Text of a JSON value for a table cell.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Prints rows under headers, columns aligned.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(|c| truncate(&c, 60)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

/// Prints a table of objects picking `fields` as columns.
pub fn objects(items: &[Value], headers: &[&str], fields: &[&str]) {
    let rows = items
        .iter()
        .map(|i| fields.iter().map(|f| cell(&i[*f])).collect())
        .collect();
    table(headers, rows);
}

/// Prints `key: value` lines for the given fields that are set.
pub fn fields(v: &Value, fields: &[&str]) {
    let width = fields.iter().map(|f| f.len()).max().unwrap_or(0);
    for f in fields {
        let val = &v[*f];
        let empty = val.is_null()
            || val.as_array().is_some_and(|a| a.is_empty())
            || val.as_object().is_some_and(|o| o.is_empty());
        if !empty {
            let text = if val.is_object() {
                val.to_string()
            } else {
                cell(val)
            };
            println!("{f:<width$}  {text}");
        }
    }
}

/// Prints JSON, pretty.
pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
