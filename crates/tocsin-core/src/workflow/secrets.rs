//! Keeping secret values out of everything stored or shown: logs, step inputs,
//! outputs and errors, the timeline, API responses.
//!
//! Definitions name secrets (`{{ secrets.JIRA_TOKEN }}`); values come from the
//! encrypted store only when a step executes. Whatever comes back is passed
//! through a [`Redactor`], which replaces each value, and the encodings a value
//! commonly travels in, with `[secret NAME]`.

use std::collections::HashMap;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use regex::Regex;
use serde_json::Value;

/// Encoded fragments shorter than this are not redacted: they would match by
/// chance in ordinary text.
const MIN_FRAGMENT: usize = 6;

/// Replaces secret values (and their base64, URL-encoded and JSON-escaped
/// forms) with `[secret NAME]`. Build once per run, use for every text.
#[derive(Debug, Clone)]
pub struct Redactor {
    pattern: Option<Regex>,
    names: HashMap<String, String>,
}

impl Redactor {
    /// Prepares redaction of `secrets`, given as (name, value); empty values
    /// are ignored.
    pub fn new(secrets: &[(&str, &str)]) -> Redactor {
        let mut names: HashMap<String, String> = HashMap::new();
        for (name, value) in secrets {
            if value.is_empty() {
                continue;
            }
            for form in forms(value) {
                // A form two secrets share is named after the first.
                names.entry(form).or_insert_with(|| name.to_string());
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        let mut forms: Vec<&String> = names.keys().collect();
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        let pattern = (!forms.is_empty()).then(|| {
            let alternation: Vec<String> = forms.iter().map(|f| regex::escape(f)).collect();
            regex::RegexBuilder::new(&alternation.join("|"))
                .size_limit(64 << 20)
                .build()
                .expect("escaped literals always compile")
        });
        Redactor { pattern, names }
    }

    /// `text` with every secret form replaced.
    pub fn redact(&self, text: &str) -> String {
        match &self.pattern {
            None => text.to_string(),
            Some(re) => re
                .replace_all(text, |c: &regex::Captures<'_>| {
                    format!(
                        "[secret {}]",
                        self.names.get(&c[0]).map_or("?", String::as_str)
                    )
                })
                .into_owned(),
        }
    }

    /// A JSON value with every string (and key) redacted.
    pub fn redact_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.redact_json(i)).collect())
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Redacts `text` once; for many texts build a [`Redactor`].
pub fn redact(text: &str, secrets: &[(&str, &str)]) -> String {
    Redactor::new(secrets).redact(text)
}

// The forms a value travels in: itself, JSON-escaped, percent-encoded (both
// hex cases, and `+` for spaces as forms do), and base64 in both alphabets at
// each of the three alignments it can have inside a longer encoded text
// (`Basic base64(user:token)`), keeping only characters the value alone fixes.
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    let json = serde_json::to_string(value).unwrap_or_default();
    out.push(json[1..json.len() - 1].to_string());
    let upper = percent(value, true);
    out.push(upper.clone());
    out.push(upper.replace("%20", "+"));
    out.push(percent(value, false));
    let bytes = value.as_bytes();
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(bytes);
        let first = (8 * offset).div_ceil(6);
        let last = 8 * (offset + bytes.len()) / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let enc = engine.encode(&padded);
            if last > first && last - first >= MIN_FRAGMENT {
                out.push(enc[first..last].to_string());
            }
        }
    }
    out.retain(|f| !f.is_empty());
    out.sort();
    out.dedup();
    out
}

fn percent(s: &str, upper: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    const TOKEN: &str = "s3cr3t/t0ken+with spaces&more";

    #[test]
    fn plain_and_encoded_forms_are_redacted() {
        let r = Redactor::new(&[("JIRA_TOKEN", TOKEN)]);
        let basic = STANDARD.encode(format!("bot@example.com:{TOKEN}"));
        for text in [
            format!("Authorization: Bearer {TOKEN}"),
            format!("url?token={}", percent(TOKEN, true)),
            format!("url?token={}", percent(TOKEN, false)),
            format!("form: token={}", percent(TOKEN, true).replace("%20", "+")),
            format!("b64: {}", STANDARD.encode(TOKEN)),
            format!("b64url: {}", URL_SAFE_NO_PAD.encode(TOKEN)),
            format!("Authorization: Basic {basic}"),
            serde_json::to_string(&json!({"t": TOKEN})).unwrap(),
        ] {
            let out = r.redact(&text);
            assert!(out.contains("[secret JIRA_TOKEN]"), "{text} -> {out}");
            assert!(
                !out.contains(TOKEN) && !out.contains(&STANDARD.encode(TOKEN)),
                "{out}"
            );
        }
        assert_eq!(redact("nothing here", &[("A", TOKEN)]), "nothing here");
    }

    #[test]
    fn longest_secret_wins_and_markers_survive() {
        let out = redact("abcdef and abc", &[("SHORT", "abc"), ("LONG", "abcdef")]);
        assert_eq!(out, "[secret LONG] and [secret SHORT]");
        // A one-letter secret does not eat the markers of another.
        let out = redact("e password e", &[("E", "e"), ("PW", "password")]);
        assert_eq!(out, "[secret E] [secret PW] [secret E]");
        assert_eq!(redact("x", &[("EMPTY", "")]), "x");
    }

    #[test]
    fn json_values_are_walked() {
        let r = Redactor::new(&[("T", "hunter22")]);
        let v = r.redact_json(&json!({"headers": {"x": "Bearer hunter22"}, "list": ["hunter22", 1], "hunter22": true}));
        assert_eq!(
            v,
            json!({"headers": {"x": "Bearer [secret T]"}, "list": ["[secret T]", 1], "[secret T]": true})
        );
    }
}
