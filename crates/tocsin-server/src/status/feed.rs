//! The page's history as Atom and RSS 2.0 feeds, from a snapshot.
//!
//! One entry per incident or maintenance, the most recently changed first,
//! linking to the post's page; its content is the post's updates as HTML
//! (bodies are markdown), escaped into the XML. Names and bodies are written by
//! people and may hold anything, so every piece of text goes through `esc`,
//! which also drops the characters XML 1.0 cannot carry at all: a post titled
//! `<script>` or `]]>`, or pasted with a stray control character, still makes
//! a well-formed feed that shows it as text.

use std::fmt::Write;

use tocsin_core::status_page::public::{PublicPost, PublicStatus};
use tocsin_core::status_page::PostKind;
use tocsin_core::time::Timestamp;

use super::json::{post_url, PageZone};
use crate::web::markdown;

/// The Atom (RFC 4287) feed served at `{page.url}/history.atom`.
pub fn atom(s: &PublicStatus) -> String {
    let zone = PageZone::of(&s.page);
    let page_url = s.page.url.trim_end_matches('/');
    let self_url = format!("{page_url}/history.atom");
    let entries = entries(s);
    let mut out = String::with_capacity(4096);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">\n");
    // The feed's own address is the one identifier that stays put for it.
    text_el(&mut out, 1, "id", &self_url);
    text_el(&mut out, 1, "title", &title(s));
    if !s.page.description.is_empty() {
        text_el(&mut out, 1, "subtitle", &s.page.description);
    }
    link(&mut out, 1, "link", "alternate", "text/html", page_url);
    link(
        &mut out,
        1,
        "link",
        "self",
        "application/atom+xml",
        &self_url,
    );
    text_el(&mut out, 1, "updated", &zone.iso(feed_updated(s, &entries)));
    // The page speaks for itself: one author for the feed covers every entry.
    out.push_str("  <author>\n");
    text_el(&mut out, 2, "name", &s.page.name);
    out.push_str("  </author>\n");
    for e in &entries {
        out.push_str("  <entry>\n");
        // The post's address: stable for as long as the page keeps its address.
        text_el(&mut out, 2, "id", &e.link);
        text_el(&mut out, 2, "title", &e.post.name);
        link(&mut out, 2, "link", "alternate", "text/html", &e.link);
        text_el(&mut out, 2, "published", &zone.iso(e.post.created_at));
        text_el(&mut out, 2, "updated", &zone.iso(e.updated));
        out.push_str("    <content type=\"html\">");
        out.push_str(&esc(&content(s, zone, e.post)));
        out.push_str("</content>\n");
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

/// The RSS 2.0 feed served at `{page.url}/history.rss`.
pub fn rss(s: &PublicStatus) -> String {
    let zone = PageZone::of(&s.page);
    let page_url = s.page.url.trim_end_matches('/');
    let entries = entries(s);
    let description = if s.page.description.is_empty() {
        format!("Incidents and maintenances of {}", s.page.name)
    } else {
        s.page.description.clone()
    };
    let mut out = String::with_capacity(4096);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str("  <channel>\n");
    text_el(&mut out, 2, "title", &title(s));
    text_el(&mut out, 2, "link", page_url);
    text_el(&mut out, 2, "description", &description);
    // RSS has no self link of its own; feed validators ask for Atom's.
    let self_url = format!("{page_url}/history.rss");
    link(
        &mut out,
        2,
        "atom:link",
        "self",
        "application/rss+xml",
        &self_url,
    );
    let built = zone.local(feed_updated(s, &entries)).to_rfc2822();
    text_el(&mut out, 2, "lastBuildDate", &built);
    for e in &entries {
        out.push_str("    <item>\n");
        text_el(&mut out, 3, "title", &e.post.name);
        text_el(&mut out, 3, "link", &e.link);
        out.push_str("      <guid isPermaLink=\"true\">");
        out.push_str(&esc(&e.link));
        out.push_str("</guid>\n");
        // The time of its latest news, as in the Atom feed's `updated`, so
        // readers sort both feeds alike.
        text_el(&mut out, 3, "pubDate", &zone.local(e.updated).to_rfc2822());
        text_el(&mut out, 3, "description", &content(s, zone, e.post));
        out.push_str("    </item>\n");
    }
    out.push_str("  </channel>\n</rss>\n");
    out
}

/// `<name>text</name>` on its own line, `depth` levels in.
fn text_el(out: &mut String, depth: usize, name: &str, text: &str) {
    let _ = writeln!(
        out,
        "{:w$}<{name}>{}</{name}>",
        "",
        esc(text),
        w = depth * 2
    );
}

/// An Atom link: `link` in the Atom feed, `atom:link` in the RSS one.
fn link(out: &mut String, depth: usize, element: &str, rel: &str, media_type: &str, href: &str) {
    let _ = writeln!(
        out,
        "{:w$}<{element} rel=\"{rel}\" type=\"{media_type}\" href=\"{}\"/>",
        "",
        esc(href),
        w = depth * 2
    );
}

fn title(s: &PublicStatus) -> String {
    format!("{} status history", s.page.name)
}

/// One incident or maintenance as a feed entry.
struct Entry<'a> {
    post: &'a PublicPost,
    link: String,
    /// Its latest update, or its latest edit of one: what a reader has not seen.
    updated: Timestamp,
}

/// Incidents and maintenances together, the most recently changed first.
fn entries(s: &PublicStatus) -> Vec<Entry<'_>> {
    let mut out: Vec<Entry> = s
        .incidents
        .iter()
        .chain(&s.maintenances)
        .map(|post| Entry {
            post,
            link: post_url(&s.page, post.id),
            updated: post
                .updates
                .iter()
                .map(|u| u.updated_at)
                .max()
                .unwrap_or(post.updated_at),
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse((e.updated, e.post.id)));
    out
}

/// The feed changed when its newest entry or the page did. Not the snapshot's
/// `generated_at`: an unchanged page then yields the same bytes, which caches
/// and conditional requests rely on.
fn feed_updated(s: &PublicStatus, entries: &[Entry]) -> Timestamp {
    entries
        .first()
        .map_or(s.page.updated_at, |e| e.updated.max(s.page.updated_at))
}

/// The post as HTML (escaped once more by the caller, for the XML): its
/// window for a maintenance, then each update newest first with its status and
/// time, then the components it affects.
fn content(s: &PublicStatus, zone: PageZone, post: &PublicPost) -> String {
    let human = |t: Timestamp| zone.local(t).format("%b %-d, %Y, %H:%M %Z").to_string();
    let mut html = String::new();
    if post.kind == PostKind::Maintenance {
        if let (Some(from), Some(until)) = (post.scheduled_for, post.scheduled_until) {
            let _ = writeln!(
                html,
                "<p>Scheduled from {} until {}.</p>",
                esc(&human(from)),
                esc(&human(until))
            );
        }
    }
    for u in &post.updates {
        let _ = writeln!(
            html,
            "<p><strong>{}</strong> · <time datetime=\"{}\">{}</time></p>",
            u.status.label(),
            zone.iso(u.display_at),
            esc(&human(u.display_at))
        );
        html.push_str(&markdown::render(&u.body));
    }
    let names: Vec<String> = post
        .component_ids
        .iter()
        .filter_map(|id| s.component_name(*id))
        .map(esc)
        .collect();
    if !names.is_empty() {
        let _ = writeln!(html, "<p>Affected components: {}.</p>", names.join(", "));
    }
    html
}

/// `s` as XML (and HTML) text: markup characters escaped, and the characters
/// XML 1.0 does not allow anywhere (controls other than tab and line breaks,
/// U+FFFE, U+FFFF) dropped, since no escape can carry them.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Not &apos;: HTML 4 readers do not know it.
            '\'' => out.push_str("&#39;"),
            '\t'
            | '\n'
            | '\r'
            | '\u{20}'..='\u{D7FF}'
            | '\u{E000}'..='\u{FFFD}'
            | '\u{10000}'..='\u{10FFFF}' => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use chrono::DateTime;
    use roxmltree::{Document, Node};

    use super::*;
    use crate::status::json::tests::{at, sample};

    const ATOM: &str = "http://www.w3.org/2005/Atom";

    fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Node<'a, 'i> {
        n.children()
            .find(|c| c.tag_name().name() == name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>", n.tag_name().name()))
    }

    fn text<'a>(n: Node<'a, '_>, name: &str) -> &'a str {
        child(n, name).text().unwrap_or("")
    }

    fn all<'a, 'i>(n: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
        n.children().filter(move |c| c.tag_name().name() == name)
    }

    // Most recently changed first: 101 (10:00), 202 (08:00 on 1 March),
    // 201 (27 Feb), 100 (20 Feb), 200 (15 Feb), 99 (10 Feb).
    const ORDER: [&str; 6] = ["101", "202", "201", "100", "200", "99"];

    fn post_link(id: &str) -> String {
        format!("https://status.acme.example/incidents/{id}")
    }

    #[test]
    fn atom_lists_every_post_with_its_updates() {
        let xml = atom(&sample());
        let doc = Document::parse(&xml).expect("well-formed");
        let feed = doc.root_element();
        assert_eq!(feed.tag_name().namespace(), Some(ATOM));
        assert_eq!(feed.tag_name().name(), "feed");
        assert_eq!(text(feed, "id"), "https://status.acme.example/history.atom");
        assert_eq!(text(feed, "title"), "Acme Cloud status history");
        assert_eq!(text(feed, "updated"), "2026-03-01T02:00:00.000-08:00");
        assert_eq!(text(child(feed, "author"), "name"), "Acme Cloud");
        let links: Vec<_> = all(feed, "link")
            .map(|l| (l.attribute("rel"), l.attribute("href")))
            .collect();
        assert_eq!(
            links,
            [
                (Some("alternate"), Some("https://status.acme.example")),
                (
                    Some("self"),
                    Some("https://status.acme.example/history.atom")
                ),
            ]
        );
        let entries: Vec<_> = all(feed, "entry").collect();
        let ids: Vec<_> = entries.iter().map(|e| text(*e, "id")).collect();
        assert_eq!(ids, ORDER.map(post_link));
        // RFC 4287's two Schematron rules, which xmllint does not check: the
        // feed's author covers entries without one, and every entry links to
        // its alternate (here: has both the link and content).
        for e in &entries {
            let alternate = all(*e, "link").find(|l| l.attribute("rel") == Some("alternate"));
            assert_eq!(
                alternate.and_then(|l| l.attribute("href")),
                Some(text(*e, "id"))
            );
            assert!(child(*e, "content").text().is_some_and(|c| !c.is_empty()));
        }
        let first = entries[0];
        assert_eq!(text(first, "title"), "Elevated API errors");
        assert_eq!(
            child(first, "link").attribute("href"),
            Some(post_link("101").as_str())
        );
        assert_eq!(text(first, "published"), "2026-03-01T01:00:00.000-08:00");
        assert_eq!(text(first, "updated"), "2026-03-01T02:00:00.000-08:00");
        let content = child(first, "content");
        assert_eq!(content.attribute("type"), Some("html"));
        // The HTML, once unescaped from the XML: updates newest first, bodies
        // rendered from markdown, then the components.
        let html = content.text().expect("content");
        let identified = html
            .find("<strong>Identified</strong>")
            .expect("latest update");
        let investigating = html
            .find("<strong>Investigating</strong>")
            .expect("first update");
        assert!(identified < investigating, "{html}");
        assert!(html.contains("Mar 1, 2026, 02:00 PST"), "{html}");
        assert!(
            html.contains("<p>A bad deploy; <strong>rolling back</strong>.</p>"),
            "{html}"
        );
        assert!(
            html.contains("<p>Affected components: API, Web app.</p>"),
            "{html}"
        );
        let maintenance = entries[1];
        let html = child(maintenance, "content").text().expect("content");
        assert!(
            html.starts_with(
                "<p>Scheduled from Mar 1, 2026, 00:00 PST until Mar 1, 2026, 04:00 PST.</p>"
            ),
            "{html}"
        );
    }

    #[test]
    fn an_edited_update_brings_its_post_forward() {
        let mut s = sample();
        let oldest = s
            .incidents
            .iter_mut()
            .find(|p| p.id == 99)
            .expect("post 99");
        oldest.updates[0].updated_at = at("2026-03-01T11:00:00Z");
        let xml = atom(&s);
        let doc = Document::parse(&xml).expect("well-formed");
        let first = all(doc.root_element(), "entry").next().expect("an entry");
        assert_eq!(text(first, "id"), post_link("99"));
        assert_eq!(text(first, "updated"), "2026-03-01T03:00:00.000-08:00");
        assert_eq!(
            text(doc.root_element(), "updated"),
            "2026-03-01T03:00:00.000-08:00"
        );
    }

    #[test]
    fn rss_lists_every_post_with_its_updates() {
        let xml = rss(&sample());
        let doc = Document::parse(&xml).expect("well-formed");
        let root = doc.root_element();
        assert_eq!(
            (root.tag_name().name(), root.attribute("version")),
            ("rss", Some("2.0"))
        );
        let channel = child(root, "channel");
        assert_eq!(text(channel, "title"), "Acme Cloud status history");
        assert_eq!(text(channel, "link"), "https://status.acme.example");
        assert_eq!(
            text(channel, "description"),
            "How Acme's services are doing."
        );
        assert_eq!(
            text(channel, "lastBuildDate"),
            "Sun, 1 Mar 2026 02:00:00 -0800"
        );
        let items: Vec<_> = all(channel, "item").collect();
        let links: Vec<_> = items.iter().map(|i| text(*i, "link")).collect();
        assert_eq!(links, ORDER.map(post_link));
        for item in &items {
            let guid = child(*item, "guid");
            assert_eq!(guid.attribute("isPermaLink"), Some("true"));
            assert_eq!(guid.text(), Some(text(*item, "link")));
            DateTime::parse_from_rfc2822(text(*item, "pubDate")).expect("an RFC 822 date");
        }
        let first = items[0];
        assert_eq!(text(first, "title"), "Elevated API errors");
        let when = DateTime::parse_from_rfc2822(text(first, "pubDate")).expect("date");
        assert_eq!(when, at("2026-03-01T10:00:00Z"));
        let html = text(first, "description");
        assert!(
            html.contains("<p>A bad deploy; <strong>rolling back</strong>.</p>"),
            "{html}"
        );
    }

    /// Names and bodies with markup, XML's terminators and control characters.
    fn hostile() -> PublicStatus {
        let mut s = sample();
        s.page.name = "Acme <script>alert(1)</script> & Co ]]>".into();
        s.page.description = "Ours\u{0} & <b>yours</b>".into();
        let p = &mut s.incidents[0];
        p.name = "Bad <b>&amp; ]]> \u{1b}[31mred\u{7}\u{FFFE}".into();
        p.updates[0].body =
            "\u{8}**bold** <img src=x onerror=y> & ]]>\n\n<script>alert('x')</script>".into();
        s.components[0].name = "API <i>\"quoted\"</i>".into();
        s
    }

    fn assert_text_only(xml: &str, doc: &Document) {
        for n in doc.descendants().filter(Node::is_element) {
            let name = n.tag_name().name();
            assert!(
                !["script", "b", "i", "img"].contains(&name),
                "<{name}> became markup"
            );
        }
        assert!(
            !xml.chars().any(|c| c < ' ' && c != '\n'),
            "a control character got out"
        );
        assert!(!xml.contains('\u{FFFE}'));
    }

    #[test]
    fn hostile_text_stays_text_in_atom() {
        let xml = atom(&hostile());
        let doc = Document::parse(&xml).expect("well-formed despite everything");
        assert_text_only(&xml, &doc);
        let feed = doc.root_element();
        assert_eq!(
            text(feed, "title"),
            "Acme <script>alert(1)</script> & Co ]]> status history"
        );
        assert_eq!(text(feed, "subtitle"), "Ours & <b>yours</b>");
        let entry = child(feed, "entry");
        assert_eq!(text(entry, "title"), "Bad <b>&amp; ]]> [31mred");
        // Unescaped once from the XML, the HTML still shows the markup as text.
        let html = child(entry, "content").text().expect("content");
        assert!(
            html.contains("<p><strong>bold</strong> &lt;img src=x onerror=y&gt; &amp; ]]&gt;</p>"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        assert!(
            html.contains(
                "Affected components: API &lt;i&gt;&quot;quoted&quot;&lt;/i&gt;, Web app."
            ),
            "{html}"
        );
    }

    #[test]
    fn hostile_text_stays_text_in_rss() {
        let xml = rss(&hostile());
        let doc = Document::parse(&xml).expect("well-formed despite everything");
        assert_text_only(&xml, &doc);
        let channel = child(doc.root_element(), "channel");
        assert_eq!(text(channel, "description"), "Ours & <b>yours</b>");
        let item = child(channel, "item");
        assert_eq!(text(item, "title"), "Bad <b>&amp; ]]> [31mred");
        let html = text(item, "description");
        assert!(
            html.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
    }

    #[test]
    fn escaping_drops_what_xml_cannot_hold() {
        assert_eq!(esc("a\u{0}b\u{1f}c\td\ne\rf"), "abc\td\ne\rf");
        assert_eq!(
            esc("\u{D7FF}\u{E000}\u{FFFD}\u{FFFE}\u{FFFF}\u{10000}"),
            "\u{D7FF}\u{E000}\u{FFFD}\u{10000}"
        );
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    /// Runs `xmllint` on `xml` against the RFC 4287 schema; `None` when
    /// xmllint is not installed outside CI.
    fn xmllint(name: &str, xml: &str) -> Option<std::process::Output> {
        let schema =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/statuspage/atom.rng");
        let file = std::env::temp_dir().join(format!("tocsin-{name}-{}.atom", std::process::id()));
        std::fs::write(&file, xml).expect("write the feed to a temp file");
        let run = Command::new("xmllint")
            .args(["--noout", "--relaxng"])
            .arg(&schema)
            .arg(&file)
            .output();
        let _ = std::fs::remove_file(&file);
        match run {
            Ok(out) => Some(out),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "xmllint is missing; CI installs it (libxml2-utils, see .ci/run)"
                );
                eprintln!("skipped: xmllint not installed (apt-get install libxml2-utils)");
                None
            }
            Err(e) => panic!("cannot run xmllint: {e}"),
        }
    }

    #[test]
    fn atom_validates_against_the_rfc_4287_schema() {
        for (name, s) in [("sample", sample()), ("hostile", hostile())] {
            let Some(out) = xmllint(name, &atom(&s)) else {
                return;
            };
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && said.contains("validates"),
                "{name}: {said}"
            );
        }
        // The schema has teeth: a feed without its id is refused.
        let xml = atom(&sample());
        let start = xml.find("  <id>").expect("the feed's id");
        let end = start + xml[start..].find('\n').expect("its line") + 1;
        let broken = format!("{}{}", &xml[..start], &xml[end..]);
        let Some(out) = xmllint("broken", &broken) else {
            return;
        };
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && said.contains("fails to validate"),
            "{said}"
        );
    }
}
