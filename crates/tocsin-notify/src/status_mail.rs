//! What status-page subscribers receive: the confirmation mail (double
//! opt-in), an update of a published incident or maintenance, and the reminder
//! that a maintenance starts soon — as an email ([`StatusMessage::email`]) or
//! as the signed JSON body of a webhook ([`StatusMessage::webhook_body`], sent
//! by [`StatusWebhook`]).
//!
//! Post names and update bodies are written by people and may hold anything:
//! every text is escaped in the HTML part, and bodies (markdown) are shown as
//! the text they are, never rendered (see docs/integrations.md, "Status page
//! subscribers"). Times are said in the page's time zone.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tocsin_core::status_page::records::{Post, Update};
use tocsin_core::status_page::PostKind;
use tocsin_core::time::Timestamp;
use tocsin_core::Invalid;

use crate::classify::SendError;
use crate::email::{link, Mail};
use crate::escape::html;
use crate::{http, webhook, Sent};

/// The webhook body's schema version.
pub const STATUS_BODY_VERSION: u32 = 1;

/// The page a message is from.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRef {
    /// The page's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its address (custom domain, or under the server's public URL), without a trailing `/`.
    pub url: String,
    /// IANA time zone its times are said in (UTC when unknown).
    pub time_zone: String,
}

/// What a message says.
#[derive(Debug, Clone)]
pub enum StatusNotice {
    /// "Confirm your subscription": the only mail an unconfirmed subscriber gets.
    Confirmation {
        /// The signed confirmation link.
        confirm_url: String,
    },
    /// An update of a post.
    Update {
        /// The post as it is now.
        post: Post,
        /// The update being told.
        update: Update,
    },
    /// A scheduled maintenance starts soon.
    Reminder {
        /// The maintenance.
        post: Post,
    },
}

/// One message to one subscriber.
#[derive(Debug, Clone)]
pub struct StatusMessage {
    /// The outbox row's key (Message-ID, `Idempotency-Key`).
    pub idempotency_key: String,
    /// The page.
    pub page: PageRef,
    /// What it says.
    pub notice: StatusNotice,
    /// The signed one-click unsubscribe link (email subscribers, except in confirmations).
    pub unsubscribe_url: Option<String>,
}

impl StatusMessage {
    /// The post's page on the status site: `{page}/incidents/{id}`.
    pub fn post_url(&self) -> Option<String> {
        self.post()
            .map(|p| format!("{}/incidents/{}", self.page.url, p.id))
    }

    fn post(&self) -> Option<&Post> {
        match &self.notice {
            StatusNotice::Confirmation { .. } => None,
            StatusNotice::Update { post, .. } | StatusNotice::Reminder { post } => Some(post),
        }
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        let tz: Tz = self.page.time_zone.parse().unwrap_or(Tz::UTC);
        t.with_timezone(&tz)
            .format("%a %-d %b %Y, %H:%M %Z")
            .to_string()
    }

    /// "Mon 5 Jan 2026, 14:00 CET", and until when ("15:00 CET", or the full
    /// date on another day).
    fn window(&self, post: &Post) -> Option<(String, Option<String>)> {
        let from = post.scheduled_for?;
        let until = post.scheduled_until.map(|u| {
            let tz: Tz = self.page.time_zone.parse().unwrap_or(Tz::UTC);
            if u.with_timezone(&tz).date_naive() == from.with_timezone(&tz).date_naive() {
                u.with_timezone(&tz).format("%H:%M %Z").to_string()
            } else {
                self.local(u)
            }
        });
        Some((self.local(from), until))
    }

    /// The mail for an email subscriber.
    pub fn email(&self) -> Mail {
        let (subject, text, body) = match &self.notice {
            StatusNotice::Confirmation { confirm_url } => self.confirmation(confirm_url),
            StatusNotice::Update { post, update } => self.update(post, update),
            StatusNotice::Reminder { post } => self.reminder(post),
        };
        let mut headers = Vec::new();
        let mut text = text;
        let mut body = body;
        if let Some(unsubscribe) = &self.unsubscribe_url {
            // RFC 2369 and RFC 8058: mail clients offer "Unsubscribe", and a
            // POST to the link (List-Unsubscribe=One-Click) ends the subscription.
            headers.push(("List-Unsubscribe", format!("<{unsubscribe}>")));
            headers.push(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()));
            text.push_str(&format!(
                "\n--\nYou receive this because you subscribed to updates from {}.\n\
                 Unsubscribe: {unsubscribe}\n",
                self.page.name
            ));
            body.push_str(&format!(
                "\n<p style=\"color:#656d76;font-size:12px\">You receive this because you \
                 subscribed to updates from {}. {}</p>",
                html(&self.page.name),
                link(unsubscribe, "Unsubscribe", "color:#656d76")
            ));
        }
        Mail {
            idempotency_key: self.idempotency_key.clone(),
            subject,
            text,
            html: body,
            // Readers know the page, not Tocsin.
            from_name: Some(self.page.name.clone()),
            headers,
        }
    }

    fn confirmation(&self, confirm_url: &str) -> (String, String, String) {
        let page = &self.page.name;
        let subject = format!("Confirm your subscription to {page}");
        let text = format!(
            "Someone, hopefully you, asked for updates from the {page} status page \
             ({url}) by email.\n\nConfirm your subscription:\n{confirm_url}\n\n\
             Nothing more is sent until you do. If you did not ask for this, \
             ignore this mail.\n",
            url = self.page.url
        );
        let body = format!(
            "<h1 style=\"font-size:20px\">{}</h1>\n\
             <p>Someone, hopefully you, asked for updates from the {} status page by email.</p>\n\
             <p>{}</p>\n\
             <p style=\"color:#656d76;font-size:12px\">Nothing more is sent until you confirm. \
             If you did not ask for this, ignore this mail.</p>",
            html(&subject),
            link(&self.page.url, page, ""),
            link(confirm_url, "Confirm your subscription", BUTTON),
        );
        (subject, text, body)
    }

    fn update(&self, post: &Post, update: &Update) -> (String, String, String) {
        let label = update.status.label();
        let subject = format!("[{}] {}: {label}", self.page.name, post.name);
        let when = self.local(update.display_at);
        let mut text = format!(
            "{}\n{label} · {when}\n\n{}\n",
            post.name,
            update.body.trim()
        );
        let mut body = format!(
            "<h1 style=\"font-size:20px\">{}</h1>\n<p><strong>{}</strong> · {}</p>\n{}",
            html(&post.name),
            html(label),
            html(&when),
            paragraphs(&update.body)
        );
        if !update.affected_components.is_empty() {
            text.push_str("\nAffected components:\n");
            body.push_str("\n<p>Affected components:</p>\n<ul>\n");
            for c in &update.affected_components {
                let status = c.new_status.label();
                text.push_str(&format!("- {}: {status}\n", c.name));
                body.push_str(&format!(
                    "<li>{}: <strong>{}</strong></li>\n",
                    html(&c.name),
                    html(status)
                ));
            }
            body.push_str("</ul>");
        }
        self.details(&mut text, &mut body);
        (subject, text, body)
    }

    fn reminder(&self, post: &Post) -> (String, String, String) {
        let (starts, until) = self
            .window(post)
            .unwrap_or_else(|| (self.local(post.started_at), None));
        let subject = format!(
            "[{}] {}: scheduled maintenance starts at {starts}",
            self.page.name, post.name
        );
        let said = match &until {
            Some(u) => {
                format!("Scheduled maintenance starts at {starts} and is planned to end at {u}.")
            }
            None => format!("Scheduled maintenance starts at {starts}."),
        };
        let latest = post.updates.first().map(|u| u.body.trim()).unwrap_or("");
        let mut text = format!("{}\n{said}\n\n{latest}\n", post.name);
        let mut body = format!(
            "<h1 style=\"font-size:20px\">{}</h1>\n<p><strong>{}</strong></p>\n{}",
            html(&post.name),
            html(&said),
            paragraphs(latest)
        );
        self.details(&mut text, &mut body);
        (subject, text, body)
    }

    fn details(&self, text: &mut String, body: &mut String) {
        if let Some(url) = self.post_url() {
            text.push_str(&format!("\nDetails: {url}\n"));
            body.push_str(&format!(
                "\n<p>{}</p>",
                link(&url, "View on the status page", BUTTON)
            ));
        }
    }

    /// The webhook body (version 1, docs/integrations.md) sent at `sent_at`;
    /// `None` for a confirmation, which webhook subscribers never get.
    pub fn webhook_body(&self, sent_at: Timestamp) -> Option<Value> {
        let (kind, post, update) = match &self.notice {
            StatusNotice::Confirmation { .. } => return None,
            StatusNotice::Update { post, update } => ("update", post, Some(update)),
            StatusNotice::Reminder { post } => ("reminder", post, None),
        };
        let affected = update
            .map(|u| {
                u.affected_components
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.component_id, "name": c.name,
                            "old_status": c.old_status, "new_status": c.new_status,
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let at = |t: Option<Timestamp>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        Some(json!({
            "version": STATUS_BODY_VERSION,
            "kind": kind,
            "idempotency_key": self.idempotency_key,
            "sent_at": at(Some(sent_at)),
            "page": { "id": self.page.id, "name": self.page.name, "url": self.page.url },
            "post": {
                "id": post.id,
                "kind": post.kind,
                "name": post.name,
                "status": post.status,
                "impact": post.impact,
                "url": self.post_url(),
                "started_at": at(Some(post.started_at)),
                "scheduled_for": at(post.scheduled_for.filter(|_| post.kind == PostKind::Maintenance)),
                "scheduled_until": at(post.scheduled_until.filter(|_| post.kind == PostKind::Maintenance)),
                "resolved_at": at(post.resolved_at),
            },
            "update": update.map(|u| json!({
                "id": u.id,
                "status": u.status,
                "body": u.body,
                "display_at": at(Some(u.display_at)),
            })),
            "affected_components": affected,
        }))
    }
}

const BUTTON: &str = "display:inline-block;padding:10px 16px;background:#1f6feb;color:#ffffff;\
                      text-decoration:none;border-radius:6px;font-weight:600";

/// Text as HTML paragraphs (blank lines between them), line breaks kept, every
/// character escaped: markdown is shown as it was typed.
fn paragraphs(text: &str) -> String {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lines: Vec<String> = p.lines().map(html).collect();
            format!("<p>{}</p>", lines.join("<br>\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends status-page webhooks: signed JSON POSTs, each to its subscriber's
/// URL under that subscriber's own secret, never following redirects.
#[derive(Debug, Clone)]
pub struct StatusWebhook {
    client: reqwest::Client,
    timeout: Duration,
}

impl StatusWebhook {
    /// A sender giving each receiver `timeout` to answer.
    pub fn new(timeout: Duration) -> Result<Self, Invalid> {
        Ok(StatusWebhook {
            client: http::client(timeout, "status.webhook_timeout_seconds")?,
            timeout,
        })
    }

    /// POSTs `body` to `url` once, signed with `secret` at `now`: 2xx is sent;
    /// 408, 429 (with its `Retry-After`), 5xx and timeouts are retryable; any
    /// other answer (another 4xx, a redirect) is permanent.
    pub async fn send(
        &self,
        url: &str,
        idempotency_key: &str,
        secret: &[u8],
        body: &Value,
        now: Timestamp,
    ) -> Result<Sent, SendError> {
        let url = webhook::webhook_url(url)?;
        let raw = serde_json::to_vec(body).expect("a JSON value serializes");
        webhook::post_signed(
            &self.client,
            url,
            &HeaderMap::new(),
            idempotency_key,
            secret,
            raw,
            now,
            self.timeout,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use tocsin_core::status_page::public::AffectedComponent;
    use tocsin_core::status_page::{ComponentStatus, Impact, PostStatus};

    fn page() -> PageRef {
        PageRef {
            id: 1,
            name: "Acme <Status>".into(),
            url: "https://status.acme.test".into(),
            time_zone: "Europe/Paris".into(),
        }
    }

    fn post(name: &str) -> Post {
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 13, 0, 0).unwrap();
        Post {
            id: 7,
            page_id: 1,
            kind: PostKind::Maintenance,
            incident_id: None,
            name: name.into(),
            status: PostStatus::Scheduled,
            impact: Impact::Maintenance,
            started_at: t,
            monitoring_at: None,
            resolved_at: None,
            scheduled_for: Some(t),
            scheduled_until: Some(t + chrono::Duration::hours(1)),
            auto_start: true,
            auto_complete: true,
            remind_minutes: Some(60),
            notify: true,
            component_ids: vec![],
            updates: vec![update("We upgrade the database.")],
            created_by: None,
            created_at: t,
            updated_at: t,
        }
    }

    fn update(body: &str) -> Update {
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 9, 30, 0).unwrap();
        Update {
            id: 70,
            post_id: 7,
            status: PostStatus::Identified,
            body: body.into(),
            affected_components: vec![AffectedComponent {
                component_id: 3,
                name: "API & <b>".into(),
                old_status: ComponentStatus::Operational,
                new_status: ComponentStatus::MajorOutage,
            }],
            notify: true,
            display_at: t,
            created_by: None,
            created_at: t,
            updated_at: t,
        }
    }

    fn message(notice: StatusNotice) -> StatusMessage {
        StatusMessage {
            idempotency_key: "update:70:9".into(),
            page: page(),
            notice,
            unsubscribe_url: Some("https://status.acme.test/unsubscribe?token=a.b".into()),
        }
    }

    #[test]
    fn an_update_says_status_components_and_links_in_the_page_s_zone() {
        let m = message(StatusNotice::Update {
            post: post("Database upgrade"),
            update: update("Line one\nline two\n\nSecond *paragraph*"),
        })
        .email();
        assert_eq!(m.subject, "[Acme <Status>] Database upgrade: Identified");
        assert!(
            m.text.contains("Identified · Mon 5 Jan 2026, 10:30 CET"),
            "{}",
            m.text
        );
        assert!(m.text.contains("- API & <b>: Major outage"), "{}", m.text);
        assert!(m
            .text
            .contains("Details: https://status.acme.test/incidents/7"));
        assert!(m
            .text
            .contains("Unsubscribe: https://status.acme.test/unsubscribe?token=a.b"));
        assert!(
            m.html
                .contains("<p>Line one<br>\nline two</p>\n<p>Second *paragraph*</p>"),
            "{}",
            m.html
        );
        assert!(m
            .html
            .contains("<li>API &amp; &lt;b&gt;: <strong>Major outage</strong></li>"));
        assert!(m.html.contains("Acme &lt;Status&gt;"), "{}", m.html);
        assert_eq!(
            m.headers,
            vec![
                (
                    "List-Unsubscribe",
                    "<https://status.acme.test/unsubscribe?token=a.b>".to_string()
                ),
                (
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_reminder_says_when_in_the_page_s_zone() {
        let m = message(StatusNotice::Reminder {
            post: post("Database upgrade"),
        })
        .email();
        assert_eq!(
            m.subject,
            "[Acme <Status>] Database upgrade: scheduled maintenance starts at Mon 5 Jan 2026, 14:00 CET"
        );
        assert!(
            m.text.contains(
                "Scheduled maintenance starts at Mon 5 Jan 2026, 14:00 CET and is planned to end at 15:00 CET."
            ),
            "{}",
            m.text
        );
        assert!(m.text.contains("We upgrade the database."));
    }

    #[test]
    fn a_confirmation_has_the_link_and_no_unsubscribe() {
        let mut msg = message(StatusNotice::Confirmation {
            confirm_url: "https://status.acme.test/confirm?token=c.d&x=\"".into(),
        });
        msg.unsubscribe_url = None;
        let m = msg.email();
        assert_eq!(m.subject, "Confirm your subscription to Acme <Status>");
        assert!(m
            .text
            .contains("https://status.acme.test/confirm?token=c.d"));
        assert!(m
            .html
            .contains("href=\"https://status.acme.test/confirm?token=c.d&amp;x=&quot;\""));
        assert!(m.headers.is_empty());
        assert_eq!(msg.webhook_body(Utc::now()), None);
    }

    #[test]
    fn hostile_text_is_escaped_in_html() {
        let evil = "<script>alert(1)</script><a href=\"javascript:x\">x</a>";
        let m = message(StatusNotice::Update {
            post: post(evil),
            update: update(evil),
        })
        .email();
        assert!(!m.html.contains("<script>"), "{}", m.html);
        assert!(!m.html.contains("href=\"javascript"), "{}", m.html);
        assert!(m.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn the_webhook_body_names_page_post_update_and_components() {
        let sent = Utc.with_ymd_and_hms(2026, 1, 5, 9, 31, 0).unwrap();
        let b = message(StatusNotice::Update {
            post: post("Database upgrade"),
            update: update("Fixing."),
        })
        .webhook_body(sent)
        .unwrap();
        assert_eq!(b["version"], 1);
        assert_eq!(b["kind"], "update");
        assert_eq!(b["sent_at"], "2026-01-05T09:31:00Z");
        assert_eq!(b["page"]["url"], "https://status.acme.test");
        assert_eq!(b["post"]["url"], "https://status.acme.test/incidents/7");
        assert_eq!(b["post"]["kind"], "maintenance");
        assert_eq!(b["post"]["scheduled_for"], "2026-01-05T13:00:00Z");
        assert_eq!(b["update"]["status"], "identified");
        assert_eq!(b["update"]["display_at"], "2026-01-05T09:30:00Z");
        assert_eq!(b["affected_components"][0]["new_status"], "major_outage");
        let r = message(StatusNotice::Reminder {
            post: post("Database upgrade"),
        })
        .webhook_body(sent)
        .unwrap();
        assert_eq!(r["kind"], "reminder");
        assert_eq!(r["update"], Value::Null);
    }
}
