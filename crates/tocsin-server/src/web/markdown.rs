//! Notes and descriptions are Markdown, written by people and by alert sources:
//! rendered with raw HTML shown as text, links only to http(s), mailto and
//! relative addresses, and images shown as links (no request leaves the page).

use pulldown_cmark::{html, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// Safe HTML for Markdown `src`.
pub(crate) fn render(src: &str) -> String {
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(src, opts).map(|e| match e {
        // Raw HTML becomes text: escaped on output like any other text.
        Event::Html(s) | Event::InlineHtml(s) => Event::Text(s),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            dest_url,
            title,
            id,
            ..
        }) => Event::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut out = String::with_capacity(src.len() * 2);
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    let scheme = lower.split_once(':').map(|(s, _)| s);
    let relative = match scheme {
        None => true,
        // A colon after a slash, '?' or '#' is not a scheme.
        Some(s) => s.contains(['/', '?', '#']),
    };
    if relative
        || lower.starts_with("http:")
        || lower.starts_with("https:")
        || lower.starts_with("mailto:")
    {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn raw_html_is_text() {
        let out = render("hi <img src=x onerror=alert(1)> <script>alert(1)</script>");
        assert!(!out.contains("<img"), "{out}");
        assert!(!out.contains("<script"), "{out}");
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"), "{out}");
    }

    #[test]
    fn block_html_is_text() {
        let out = render("<div onclick=\"x()\">\nhello\n</div>");
        assert!(!out.contains("<div"), "{out}");
        assert!(out.contains("&lt;div"), "{out}");
    }

    #[test]
    fn dangerous_links_are_defused() {
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " data:text/html,x",
            "vbscript:x",
        ] {
            let out = render(&format!("[x]({bad})"));
            assert!(out.contains("href=\"#\""), "{bad}: {out}");
        }
        let out =
            render("[a](https://example.com/x) [b](/incidents/1) [c](mailto:a@b.c) [d](x?y=a:b)");
        assert!(out.contains("href=\"https://example.com/x\""), "{out}");
        assert!(out.contains("href=\"/incidents/1\""), "{out}");
        assert!(out.contains("href=\"mailto:a@b.c\""), "{out}");
        assert!(out.contains("href=\"x?y=a:b\""), "{out}");
    }

    #[test]
    fn images_become_links() {
        let out = render("![graph](https://example.com/g.png)");
        assert!(!out.contains("<img"), "{out}");
        assert!(
            out.contains("<a href=\"https://example.com/g.png\">graph</a>"),
            "{out}"
        );
    }

    #[test]
    fn markdown_still_works() {
        let out = render("**bold** and `code`\n\n- one\n- two");
        assert!(out.contains("<strong>bold</strong>"));
        assert!(out.contains("<code>code</code>"));
        assert!(out.contains("<li>one</li>"));
    }
}
