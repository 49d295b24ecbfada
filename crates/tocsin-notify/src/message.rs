//! What to send: the recipient and the rendered message, the same for every provider.

use serde::Serialize;
use tocsin_core::action_link::LinkAction;
use tocsin_core::escalation::{Channel, ContactKind, Urgency};

pub(crate) use crate::templates::cut;

/// Text messages longer than this are cut (one SMS segment).
const SHORT_CHARS: usize = 160;

/// One message to one contact method: everything a provider needs, nothing it must look up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outgoing {
    /// The message's identity: the outbox row's key, sent along so a receiver can drop repeats.
    pub idempotency_key: String,
    /// Who, and where.
    pub recipient: Recipient,
    /// What to say.
    pub message: Message,
}

/// The person being reached and the contact method used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// The user being notified.
    pub user_id: i64,
    /// Which of their contact methods.
    pub contact_method_id: i64,
    /// How the method reaches them.
    pub kind: ContactKind,
    /// The service that carries it (decided by kind and address).
    pub channel: Channel,
    /// Where, as stored: an email address, a phone number, a URL, `slack:C0123ABCD`.
    pub address: String,
    /// The part of the address the channel uses: `address` without its
    /// `slack:` / `ntfy:` / … prefix.
    pub target: String,
}

/// A rendered message: the same words in every channel, at three lengths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// A subject line (email, push title).
    pub subject: String,
    /// At most 160 characters (SMS, push body, chat preview).
    pub short: String,
    /// The full text, several lines (email body, chat message).
    pub long: String,
    /// The full message as an HTML fragment (email); every text in it escaped.
    pub html: Option<String>,
    /// The incident it is about, when it is about one (not for on-call shift notices).
    pub incident: Option<IncidentSummary>,
}

/// The facts of an incident a message carries, for receivers that render their own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentSummary {
    /// Incident id (the API's).
    pub id: i64,
    /// The incident's number, as people say it (#12).
    pub number: i64,
    /// Its title.
    pub title: String,
    /// How urgently it needs people.
    pub urgency: Urgency,
    /// The escalation level being paged, for escalation messages.
    pub level: Option<u32>,
    /// Where to look: the incident's page, a runbook, a dashboard.
    pub links: Vec<Link>,
    /// What the recipient can do from the message without logging in: signed,
    /// expiring, single-use links (and, in chat, buttons carrying the same action).
    pub actions: Vec<Action>,
}

/// A one-click action: acknowledge or resolve through a signed link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// What it does.
    pub action: LinkAction,
    /// The button or link text ("Acknowledge").
    pub text: String,
    /// The signed action link.
    pub href: String,
}

/// A labelled URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// What the link is ("Incident", "Runbook").
    pub text: String,
    /// The URL.
    pub href: String,
}

impl Message {
    /// The page for an incident: "Incident #12 (high urgency): Database down".
    pub fn for_incident(incident: IncidentSummary) -> Message {
        let urgency = incident.urgency.as_str();
        let subject = format!(
            "Incident #{} ({urgency} urgency): {}",
            incident.number, incident.title
        );
        let short = cut(
            &format!("Tocsin #{} {urgency}: {}", incident.number, incident.title),
            SHORT_CHARS,
        );
        let mut long = format!(
            "Incident #{}: {}\nUrgency: {urgency}\n",
            incident.number, incident.title
        );
        if let Some(level) = incident.level {
            long.push_str(&format!("Escalation level: {level}\n"));
        }
        for link in &incident.links {
            long.push_str(&format!("{}: {}\n", link.text, link.href));
        }
        for action in &incident.actions {
            long.push_str(&format!("{}: {}\n", action.text, action.href));
        }
        Message {
            subject,
            short,
            long,
            html: None,
            incident: Some(incident),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(title: &str) -> IncidentSummary {
        IncidentSummary {
            id: 7,
            number: 12,
            title: title.into(),
            urgency: Urgency::High,
            level: Some(1),
            links: vec![Link {
                text: "Incident".into(),
                href: "https://tocsin.example/incidents/7".into(),
            }],
            actions: vec![],
        }
    }

    #[test]
    fn incident_message_names_number_urgency_and_links() {
        let m = Message::for_incident(incident("Database down"));
        assert_eq!(m.subject, "Incident #12 (high urgency): Database down");
        assert_eq!(m.short, "Tocsin #12 high: Database down");
        assert_eq!(
            m.long,
            "Incident #12: Database down\nUrgency: high\nEscalation level: 1\n\
             Incident: https://tocsin.example/incidents/7\n"
        );
        assert_eq!(m.incident.map(|i| i.id), Some(7));
    }

    #[test]
    fn short_text_fits_one_sms_and_cuts_on_a_character() {
        let m = Message::for_incident(incident(&"é".repeat(300)));
        assert_eq!(m.short.chars().count(), SHORT_CHARS);
        assert!(m.short.ends_with('…'));
        assert!(m.subject.ends_with(&"é".repeat(300)));
    }
}
