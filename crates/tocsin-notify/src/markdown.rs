//! Markdown for the chat services that speak it (Mattermost, Discord): alert
//! and user text escaped so it is shown as typed, never read as formatting,
//! links or mentions.

/// Characters both services read as Markdown; a backslash before any of them shows it as is.
const SIGNIFICANT: &str = "\\`*_~|[]()#+-!>";

/// `text` on one line with every Markdown-significant character backslash-escaped,
/// `extra` ones too, and each `@` followed by a zero-width space so that
/// `@channel`, `@here`, `@all`, `@everyone` or `@someone` notify nobody.
pub(crate) fn escape(text: &str, extra: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '@' => out.push_str("@\u{200B}"),
            c if SIGNIFICANT.contains(c) || extra.contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `text` escaped line by line, keeping its line breaks (on-call notices).
pub(crate) fn escape_lines(text: &str, extra: &str) -> String {
    text.lines()
        .map(|l| escape(l, extra))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Markdown link whose label is escaped and whose URL cannot end the link early.
pub(crate) fn link(text: &str, href: &str, extra: &str) -> String {
    let mut url = String::with_capacity(href.len());
    for c in href.chars() {
        match c {
            '(' => url.push_str("%28"),
            ')' => url.push_str("%29"),
            '<' => url.push_str("%3C"),
            '>' => url.push_str("%3E"),
            c if c.is_whitespace() => url.push_str("%20"),
            c => url.push(c),
        }
    }
    format!("[{}]({url})", escape(text, extra))
}

/// As many whole `items` as fit in `max` characters, joined by `sep`: a cut
/// never falls inside a link.
pub(crate) fn join_fitting(items: &[String], sep: &str, max: usize) -> String {
    let mut out = String::new();
    let mut len = 0;
    for item in items {
        let add = item.chars().count()
            + if out.is_empty() {
                0
            } else {
                sep.chars().count()
            };
        if len + add > max {
            break;
        }
        if !out.is_empty() {
            out.push_str(sep);
        }
        out.push_str(item);
        len += add;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_links_and_mentions_are_neutralised() {
        assert_eq!(
            escape("<!channel> *bold* @everyone [x](http://evil)", ""),
            "<\\!channel\\> \\*bold\\* @\u{200B}everyone \\[x\\]\\(http://evil\\)"
        );
        assert_eq!(escape("<@123>", "<"), "\\<@\u{200B}123\\>");
        assert_eq!(escape("a\nb", ""), "a b");
        assert_eq!(escape_lines("# a\n- b", ""), "\\# a\n\\- b");
    }

    #[test]
    fn links_cannot_be_broken_out_of() {
        assert_eq!(
            link("Run]book", "https://x.example/a (b)<c>", ""),
            "[Run\\]book](https://x.example/a%20%28b%29%3Cc%3E)"
        );
    }

    #[test]
    fn only_whole_items_are_joined() {
        let items = vec!["aaa".to_string(), "bbb".to_string(), "ccc".to_string()];
        assert_eq!(join_fitting(&items, " · ", 9), "aaa · bbb");
        assert_eq!(join_fitting(&items, " · ", 8), "aaa");
        assert_eq!(join_fitting(&items, " · ", 2), "");
    }
}
