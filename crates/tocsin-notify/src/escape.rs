//! Escaping text that comes from alerts and people (titles, names) for the
//! HTML and XML documents Tocsin writes: email bodies, Pushover messages,
//! action-link pages and TwiML.

/// `text` safe inside HTML text and double- or single-quoted attributes.
pub fn html(text: &str) -> String {
    escape(text, "&#39;", |_| true)
}

/// `text` safe inside XML content and attribute values. The characters XML 1.0
/// does not allow (control characters other than tab and line ends, U+FFFE,
/// U+FFFF) are dropped: one of them in an alert title would make the whole
/// document unreadable to its receiver.
pub fn xml(text: &str) -> String {
    escape(text, "&apos;", |c| {
        matches!(c, '\t' | '\n' | '\r')
            || !((c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}')
    })
}

/// `text` with the five markup characters as entities (`'` as `apos`) and
/// only the other characters `keep` allows.
fn escape(text: &str, apos: &str, keep: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apos),
            c if keep(c) => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            html(r#"<script>alert(1)</script> & "x" 'y'"#),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; &#39;y&#39;"
        );
    }

    #[test]
    fn xml_drops_what_xml_does_not_allow() {
        assert_eq!(
            xml("a <b> & \"c\" 'd'\u{1}\u{fffe}\u{ffff}"),
            "a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;"
        );
        assert_eq!(xml("a\tb\nc\rd"), "a\tb\nc\rd");
    }
}
