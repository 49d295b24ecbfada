//! The words of every notification: minijinja templates per channel family and
//! part, built in and overridable per instance from a directory.
//!
//! The sandbox is the one user templates get elsewhere (tocsin-core's
//! template.rs): no loader or file access from a template, a fuel budget,
//! bounded output. HTML templates (`*.html.j2`) escape every value; text ones do
//! not. Every template is rendered at load against a sample of each notice, so
//! an override that is broken fails at startup, not at 3 a.m.; if an override
//! still fails on a real notice, the built-in template is used and a warning logged.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{context, AutoEscape, Environment, UndefinedBehavior, Value};
use tocsin_core::escalation::Channel;

use crate::message::{Action, Link, Message};
use crate::notice::{Notice, PageNotice, ShiftNotice, TestNotice, VerificationNotice};

/// Instructions one render may execute.
const FUEL: u64 = 100_000;
/// Largest template file accepted.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Longest text one render may produce.
const MAX_OUTPUT: usize = 64 * 1024;
/// One SMS segment (GSM-7), and the short text of every message.
pub const SMS_CHARS: usize = 160;
/// Longest subject or push title (Pushover's title limit).
const TITLE_CHARS: usize = 250;
/// Longest push body (Pushover's message limit).
const PUSH_CHARS: usize = 1024;

/// One template: a part of a message for one channel family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The text message (`sms.txt.j2`); also every message's short text.
    SmsText,
    /// What a phone call says (`voice.txt.j2`).
    VoiceText,
    /// An email's subject (`email.subject.j2`); also the subject of chat, SMS, voice and webhook messages.
    EmailSubject,
    /// An email's plain text (`email.txt.j2`); also the webhook's long text.
    EmailText,
    /// An email's HTML (`email.html.j2`), autoescaped.
    EmailHtml,
    /// A chat message in Markdown (`chat.md.j2`).
    ChatMarkdown,
    /// A push notification's title (`push.title.j2`).
    PushTitle,
    /// A push notification's body (`push.txt.j2`).
    PushText,
}

impl Part {
    /// Every part, in the order they are documented.
    pub const ALL: [Part; 8] = [
        Part::SmsText,
        Part::VoiceText,
        Part::EmailSubject,
        Part::EmailText,
        Part::EmailHtml,
        Part::ChatMarkdown,
        Part::PushTitle,
        Part::PushText,
    ];

    /// The file that overrides it.
    pub fn file_name(self) -> &'static str {
        match self {
            Part::SmsText => "sms.txt.j2",
            Part::VoiceText => "voice.txt.j2",
            Part::EmailSubject => "email.subject.j2",
            Part::EmailText => "email.txt.j2",
            Part::EmailHtml => "email.html.j2",
            Part::ChatMarkdown => "chat.md.j2",
            Part::PushTitle => "push.title.j2",
            Part::PushText => "push.txt.j2",
        }
    }

    /// The built-in template.
    pub fn default_source(self) -> &'static str {
        match self {
            Part::SmsText => include_str!("../templates/sms.txt.j2"),
            Part::VoiceText => include_str!("../templates/voice.txt.j2"),
            Part::EmailSubject => include_str!("../templates/email.subject.j2"),
            Part::EmailText => include_str!("../templates/email.txt.j2"),
            Part::EmailHtml => include_str!("../templates/email.html.j2"),
            Part::ChatMarkdown => include_str!("../templates/chat.md.j2"),
            Part::PushTitle => include_str!("../templates/push.title.j2"),
            Part::PushText => include_str!("../templates/push.txt.j2"),
        }
    }

    fn default_name(self) -> String {
        format!("default/{}", self.file_name())
    }

    // What is done to the rendered text: one line for titles, a length cap.
    fn finish(self, text: &str) -> String {
        match self {
            Part::EmailSubject | Part::PushTitle => cut(
                &text.split_whitespace().collect::<Vec<_>>().join(" "),
                TITLE_CHARS,
            ),
            Part::SmsText => cut(text.trim(), SMS_CHARS),
            Part::PushText => cut(text.trim(), PUSH_CHARS),
            _ => text.trim().to_string(),
        }
    }
}

/// Why templates could not be loaded or rendered; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The directory could not be read.
    #[error("notification templates directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file in the directory that is not one of the template names.
    #[error("notification template {file}: not a template name; expected one of {expected}")]
    UnknownFile {
        /// The file's name.
        file: String,
        /// The names allowed.
        expected: String,
    },
    /// A template file could not be read or is too large.
    #[error("notification template {file}: {message}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// A template does not compile or does not render.
    #[error("notification template {file}: {message}")]
    Template {
        /// The file (`default/…` for a built-in one).
        file: String,
        /// The error, with its line.
        message: String,
    },
}

/// The message templates, built in and overridden.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    overridden: BTreeMap<Part, String>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates::load(None).expect("the built-in templates render")
    }
}

impl Templates {
    /// The built-in templates, with those of `dir` (files named like
    /// `sms.txt.j2`, see [`Part::file_name`]) in their place. Every template is
    /// rendered against sample notices before this returns.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = sandbox();
        for part in Part::ALL {
            env.add_template_owned(part.default_name(), part.default_source())
                .map_err(|e| template_error(&part.default_name(), e))?;
        }
        let mut overridden = BTreeMap::new();
        if let Some(dir) = dir {
            for (part, file, source) in read_dir(dir)? {
                env.add_template_owned(part.file_name(), source)
                    .map_err(|e| template_error(&file, e))?;
                overridden.insert(part, file);
            }
        }
        let t = Templates { env, overridden };
        for notice in samples() {
            for channel in Channel::ALL {
                let ctx = context_of(&notice, channel);
                for part in Part::ALL {
                    t.render_part(part, &ctx, false)?;
                }
            }
        }
        Ok(t)
    }

    /// Which parts a directory overrides, with the file each came from.
    pub fn overridden(&self) -> impl Iterator<Item = (Part, &str)> {
        self.overridden.iter().map(|(p, f)| (*p, f.as_str()))
    }

    /// The message for `notice` on `channel`: the subject, the short text
    /// (at most 160 characters), the long text and, for email, the HTML.
    pub fn render(&self, channel: Channel, notice: &Notice) -> Result<Message, TemplateError> {
        let ctx = context_of(notice, channel);
        let r = |p: Part| self.render_part(p, &ctx, true);
        let (subject, short, long, html) = match channel {
            Channel::Email => (
                Part::EmailSubject,
                Part::SmsText,
                Part::EmailText,
                Some(Part::EmailHtml),
            ),
            Channel::Sms => (Part::EmailSubject, Part::SmsText, Part::SmsText, None),
            Channel::Voice => (Part::EmailSubject, Part::SmsText, Part::VoiceText, None),
            Channel::Webhook => (Part::EmailSubject, Part::SmsText, Part::EmailText, None),
            // Chat senders build pages as cards from the incident's facts and
            // send everything else as plain text, escaped for their service.
            Channel::Slack | Channel::Teams | Channel::Mattermost | Channel::Discord
                if notice.incident().is_some() =>
            {
                (Part::EmailSubject, Part::SmsText, Part::ChatMarkdown, None)
            }
            Channel::Slack | Channel::Teams | Channel::Mattermost | Channel::Discord => {
                (Part::EmailSubject, Part::SmsText, Part::EmailText, None)
            }
            Channel::Ntfy | Channel::Pushover => {
                (Part::PushTitle, Part::PushText, Part::PushText, None)
            }
        };
        Ok(Message {
            subject: r(subject)?,
            short: cut(&r(short)?, SMS_CHARS),
            long: r(long)?,
            html: html.map(r).transpose()?,
            incident: notice.incident(),
        })
    }

    // One part: the override, given the built-in's text as `default`; the
    // built-in alone when there is no override or (`fall_back`) it fails.
    fn render_part(
        &self,
        part: Part,
        ctx: &serde_json::Value,
        fall_back: bool,
    ) -> Result<String, TemplateError> {
        let builtin = self.render_named(&part.default_name(), ctx, "")?;
        let Some(file) = self.overridden.get(&part) else {
            return Ok(part.finish(&builtin));
        };
        match self.render_named(part.file_name(), ctx, &builtin) {
            Ok(text) => Ok(part.finish(&text)),
            Err(e) if fall_back => {
                tracing::warn!(error = %e, template = %file, "notification template failed; the built-in one is used");
                Ok(part.finish(&builtin))
            }
            Err(e) => Err(e),
        }
    }

    fn render_named(
        &self,
        name: &str,
        ctx: &serde_json::Value,
        builtin: &str,
    ) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| template_error(name, e))?;
        // The built-in text is already escaped where it needs to be.
        let ctx = context! { default => Value::from_safe_string(builtin.to_string()), ..Value::from_serialize(ctx) };
        let out = tmpl.render(ctx).map_err(|e| template_error(name, e))?;
        if out.len() > MAX_OUTPUT {
            return Err(TemplateError::Template {
                file: name.to_string(),
                message: format!("renders to more than {MAX_OUTPUT} bytes"),
            });
        }
        Ok(out)
    }
}

// The notice's facts, `kind`, the `channel` rendered for (`sms`, `slack`, …)
// and, for shifts, `starts` and `ends` as people read them.
fn context_of(notice: &Notice, channel: Channel) -> serde_json::Value {
    let mut ctx = serde_json::to_value(notice).expect("notices serialize");
    ctx["channel"] = channel.as_str().into();
    if let Some((starts, ends)) = notice.local_times() {
        ctx["starts"] = starts.into();
        ctx["ends"] = ends.into();
    }
    ctx
}

fn read_dir(dir: &Path) -> Result<Vec<(Part, String, String)>, TemplateError> {
    let dir_error = |source| TemplateError::Dir {
        dir: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let file = entry.path().display().to_string();
        let Some(part) = Part::ALL.into_iter().find(|p| p.file_name() == name) else {
            return Err(TemplateError::UnknownFile {
                file,
                expected: Part::ALL.map(Part::file_name).join(", "),
            });
        };
        let read_error = |message: String| TemplateError::Read {
            file: file.clone(),
            message,
        };
        let bytes = std::fs::read(entry.path()).map_err(|e| read_error(e.to_string()))?;
        if bytes.len() > MAX_TEMPLATE_BYTES {
            return Err(read_error(format!(
                "larger than {MAX_TEMPLATE_BYTES} bytes"
            )));
        }
        let source = String::from_utf8(bytes).map_err(|_| read_error("not UTF-8".into()))?;
        out.push((part, file, source));
    }
    out.sort();
    Ok(out)
}

fn sandbox() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // A misspelt variable fails the load-time test render instead of printing nothing.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html.j2") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_recursion_limit(64);
    // As in core's sandbox: nothing that multiplies text or keeps loop state.
    env.remove_filter("indent");
    env.remove_filter("center");
    env.remove_global("namespace");
    env.add_filter("cut", |s: String, n: usize| cut_ascii(&s, n));
    env.add_filter("no_urls", |s: String| no_urls(&s));
    env.add_filter("md", |s: String| markdown_escape(&s));
    env
}

fn template_error(file: &str, e: minijinja::Error) -> TemplateError {
    let mut message = match e.kind() {
        minijinja::ErrorKind::OutOfFuel => "took too long (over its instruction budget)".into(),
        _ => e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string()),
    };
    if let Some(line) = e.line() {
        message = format!("line {line}: {message}");
    }
    TemplateError::Template {
        file: file.to_string(),
        message,
    }
}

/// `text` cut to at most `max` characters, ending in "…" when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

// For templates: cut with "..." (GSM-7 has no "…"; one would make an SMS UCS-2, 70 characters).
fn cut_ascii(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max <= 3 {
        return text.chars().take(max).collect();
    }
    let mut out: String = text.chars().take(max - 3).collect();
    out.push_str("...");
    out
}

// What a phone call should not read out: a word with a URL in it is "a link".
fn no_urls(text: &str) -> String {
    text.split_whitespace()
        .map(|w| if w.contains("://") { "a link" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

// CommonMark: a backslash before punctuation shows it as itself, so a title
// cannot bold, link or hide text (<…> would be an autolink or HTML).
fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '|' | '~' | '!'
        ) {
            out.push('\\');
        }
        out.push(if c == '\n' { ' ' } else { c });
    }
    out
}

/// One notice of each kind, with every optional fact filled and left out, for
/// the load-time test render (and the docs).
pub fn samples() -> Vec<Notice> {
    let t = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("sample time")
            .to_utc()
    };
    let page = PageNotice {
        id: 7,
        number: 12,
        title: "Database down <b>&</b> *everything* [on fire](http://x)".into(),
        urgency: tocsin_core::escalation::Urgency::High,
        level: Some(1),
        round: Some(1),
        services: vec!["payments".into(), "api".into()],
        links: vec![Link {
            text: "Incident".into(),
            href: "https://tocsin.example/incidents/7".into(),
        }],
        actions: vec![
            Action {
                action: tocsin_core::action_link::LinkAction::Acknowledge,
                text: "Acknowledge".into(),
                href: "https://tocsin.example/a/ack".into(),
            },
            Action {
                action: tocsin_core::action_link::LinkAction::Resolve,
                text: "Resolve".into(),
                href: "https://tocsin.example/a/res".into(),
            },
        ],
        sms_replies: true,
    };
    let bare = PageNotice {
        level: None,
        round: None,
        services: vec![],
        links: vec![],
        actions: vec![],
        sms_replies: false,
        urgency: tocsin_core::escalation::Urgency::Low,
        ..page.clone()
    };
    let shift = ShiftNotice {
        schedule_name: "Primary".into(),
        starts_at: t("2026-11-25T08:00:00Z"),
        ends_at: t("2026-11-26T08:00:00Z"),
        time_zone: Some("Europe/Berlin".into()),
        reminder_minutes: Some(60),
    };
    vec![
        Notice::Page(page),
        Notice::Page(bare),
        Notice::HandoffReminder(shift.clone()),
        Notice::ShiftStarted(ShiftNotice {
            time_zone: None,
            reminder_minutes: None,
            ..shift
        }),
        Notice::Verification(VerificationNotice {
            code: "012345".into(),
            expires_minutes: 15,
        }),
        Notice::Test(TestNotice {
            label: "Work email".into(),
        }),
        Notice::ActionItemOverdue(crate::notice::ActionItemNotice {
            action_item_id: 4,
            title: "Alert on replication lag".into(),
            postmortem_id: 2,
            postmortem_title: "Postmortem: INC-12 Database down".into(),
            due_date: "2026-11-20".into(),
            days_overdue: 5,
            priority: "high".into(),
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_cut_on_characters_hide_urls_and_escape_markdown() {
        assert_eq!(cut_ascii("héllo wörld", 8), "héllo...");
        assert_eq!(cut_ascii("héllo", 5), "héllo");
        assert_eq!(cut_ascii("héllo", 2), "hé");
        assert_eq!(cut("ééé", 2), "é…");
        assert_eq!(
            no_urls("see https://a.example/x and\n(http://b) ok"),
            "see a link and a link ok"
        );
        assert_eq!(
            markdown_escape("*a* _b_ [c](d) <!here>\nx"),
            r"\*a\* \_b\_ \[c\]\(d\) \<\!here\> x"
        );
    }

    #[test]
    fn templates_are_shared_across_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Templates>();
    }

    #[test]
    fn every_part_has_its_own_file_name() {
        let mut names: Vec<_> = Part::ALL.map(Part::file_name).to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Part::ALL.len());
        assert!(Part::ALL
            .iter()
            .all(|p| p.file_name().ends_with(".j2") && !p.default_source().is_empty()));
    }
}
