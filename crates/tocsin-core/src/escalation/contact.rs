//! Contact method addresses and labels, parsed per kind: an email address, an
//! E.164 phone number, a push or chat target naming its service (`ntfy:alerts-ann`,
//! `slack:C0123ABCD`, `teams:https://…`) or a webhook URL. The kind and the
//! address together decide the [`Channel`] that delivers to it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules::ContactKind;
use crate::model::{required_text, EmailAddress};
use crate::Invalid;

/// Longest label, in characters.
pub const MAX_LABEL: usize = 100;
/// Longest push address, in bytes.
pub const MAX_PUSH_TOKEN: usize = 512;
/// Longest chat address after its prefix, in characters (webhook URLs are capped by [`MAX_URL`]).
pub const MAX_CHAT: usize = MAX_URL;
/// Longest webhook URL, in bytes.
pub const MAX_URL: usize = 2048;
/// Most notification rules one user may have.
pub const MAX_NOTIFICATION_RULES: usize = 50;

impl ContactKind {
    /// Every kind, in the order they are documented.
    pub const ALL: [ContactKind; 6] = [
        ContactKind::Email,
        ContactKind::Sms,
        ContactKind::Voice,
        ContactKind::Push,
        ContactKind::Chat,
        ContactKind::Webhook,
    ];

    /// The stored and wire name (`email`, `sms`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Email => "email",
            ContactKind::Sms => "sms",
            ContactKind::Voice => "voice",
            ContactKind::Push => "push",
            ContactKind::Chat => "chat",
            ContactKind::Webhook => "webhook",
        }
    }

    /// The kind a stored or wire name names.
    pub fn parse(s: &str) -> Option<ContactKind> {
        ContactKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The label a method of this kind gets when none is given.
    pub fn default_label(self) -> &'static str {
        match self {
            ContactKind::Email => "Work email",
            ContactKind::Sms => "Mobile (text)",
            ContactKind::Voice => "Mobile (voice)",
            ContactKind::Push => "Mobile app",
            ContactKind::Chat => "Chat",
            ContactKind::Webhook => "Webhook",
        }
    }
}

/// Where a contact method reaches its user, in the normal form of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAddress {
    kind: ContactKind,
    address: String,
}

impl ContactAddress {
    /// Parses `text` as an address of `kind`, naming `field` when it is not one.
    pub fn parse(kind: ContactKind, field: &str, text: &str) -> Result<ContactAddress, Invalid> {
        let address = match kind {
            ContactKind::Email => EmailAddress::parse(field, text)?.as_str().to_string(),
            ContactKind::Sms | ContactKind::Voice => phone_number(field, text)?,
            ContactKind::Push => push_target(field, text)?,
            ContactKind::Chat => chat_target(field, text)?,
            ContactKind::Webhook => web_url(field, text)?,
        };
        Ok(ContactAddress { kind, address })
    }

    /// The channel that delivers to this address.
    pub fn channel(&self) -> Channel {
        Channel::of(self.kind, &self.address)
            .map(|(c, _)| c)
            .expect("a parsed address has a channel")
    }

    /// The kind it was parsed as.
    pub fn kind(&self) -> ContactKind {
        self.kind
    }

    /// The address as stored.
    pub fn as_str(&self) -> &str {
        &self.address
    }
}

/// A contact method's label: the one given, or the kind's default.
pub fn contact_label(
    field: &str,
    kind: ContactKind,
    text: Option<&str>,
) -> Result<String, Invalid> {
    match text {
        None => Ok(kind.default_label().to_string()),
        Some(t) => required_text(field, t, MAX_LABEL),
    }
}

// E.164: `+`, a country code that does not start with 0, 8 to 15 digits in all.
// People write numbers with spaces, dashes and parentheses; they are dropped.
fn phone_number(field: &str, text: &str) -> Result<String, Invalid> {
    let t = text.trim();
    let bad = |why: &str| {
        Invalid::new(
            field,
            format!("`{t}` is not a phone number in international form ({why}), e.g. +15551234567"),
        )
    };
    let rest = t
        .strip_prefix('+')
        .ok_or_else(|| bad("it must start with +"))?;
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' => {}
            _ => {
                return Err(bad(
                    "only digits, spaces, dashes and parentheses may follow +",
                ))
            }
        }
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(bad("it needs 8 to 15 digits"));
    }
    if digits.starts_with('0') {
        return Err(bad("a country code does not start with 0"));
    }
    Ok(format!("+{digits}"))
}

/// The service that carries a notification to a contact method: one provider each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email over SMTP.
    Email,
    /// A text message (Twilio Messages).
    Sms,
    /// A phone call reading the message (Twilio Calls with TwiML).
    Voice,
    /// A signed JSON POST.
    Webhook,
    /// Slack: the Web API (`slack:C0123ABCD`) or an incoming webhook (`slack:https://hooks.slack.com/…`).
    Slack,
    /// Microsoft Teams: a workflow or incoming webhook URL (`teams:https://…`).
    Teams,
    /// Mattermost: an incoming webhook URL (`mattermost:https://…`).
    Mattermost,
    /// Discord: a channel webhook URL (`discord:https://discord.com/api/webhooks/…`).
    Discord,
    /// ntfy: a topic on the configured server (`ntfy:alerts-ann`) or a topic URL (`ntfy:https://ntfy.example/alerts-ann`).
    Ntfy,
    /// Pushover: a user or group key, optionally a device (`pushover:KEY` or `pushover:KEY/phone`).
    Pushover,
}

impl Channel {
    /// Every channel, in the order they are documented.
    pub const ALL: [Channel; 10] = [
        Channel::Email,
        Channel::Sms,
        Channel::Voice,
        Channel::Webhook,
        Channel::Slack,
        Channel::Teams,
        Channel::Mattermost,
        Channel::Discord,
        Channel::Ntfy,
        Channel::Pushover,
    ];

    /// The stored and wire name (`email`, `slack`, …), also the chat and push address prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Webhook => "webhook",
            Channel::Slack => "slack",
            Channel::Teams => "teams",
            Channel::Mattermost => "mattermost",
            Channel::Discord => "discord",
            Channel::Ntfy => "ntfy",
            Channel::Pushover => "pushover",
        }
    }

    /// The channel a stored name names.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The channel for a stored address of `kind`, and the target after its
    /// prefix (the whole address for kinds without one). `None` for an address
    /// no channel serves.
    pub fn of(kind: ContactKind, address: &str) -> Option<(Channel, &str)> {
        let prefixed = |allowed: &[Channel]| {
            let (prefix, rest) = address.split_once(':')?;
            let c = Channel::parse(prefix)?;
            allowed.contains(&c).then_some((c, rest))
        };
        match kind {
            ContactKind::Email => Some((Channel::Email, address)),
            ContactKind::Sms => Some((Channel::Sms, address)),
            ContactKind::Voice => Some((Channel::Voice, address)),
            ContactKind::Webhook => Some((Channel::Webhook, address)),
            ContactKind::Chat => prefixed(&CHAT),
            ContactKind::Push => prefixed(&PUSH),
        }
    }
}

const CHAT: [Channel; 4] = [
    Channel::Slack,
    Channel::Teams,
    Channel::Mattermost,
    Channel::Discord,
];
const PUSH: [Channel; 2] = [Channel::Ntfy, Channel::Pushover];

fn prefix_error(field: &str, t: &str, allowed: &[Channel]) -> Invalid {
    let names: Vec<_> = allowed
        .iter()
        .map(|c| format!("`{}:`", c.as_str()))
        .collect();
    Invalid::new(
        field,
        format!(
            "`{t}` must start with the service it is on: {}",
            names.join(", ")
        ),
    )
}

fn push_target(field: &str, text: &str) -> Result<String, Invalid> {
    let t = text.trim();
    if t.len() > MAX_PUSH_TOKEN {
        return Err(Invalid::new(
            field,
            format!("a push address is at most {MAX_PUSH_TOKEN} characters"),
        ));
    }
    let (channel, rest) =
        Channel::of(ContactKind::Push, t).ok_or_else(|| prefix_error(field, t, &PUSH))?;
    match channel {
        Channel::Ntfy if rest.contains("://") => {
            web_url(field, rest)?;
        }
        Channel::Ntfy => {
            if rest.is_empty()
                || rest.len() > 64
                || !rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(Invalid::new(
                    field,
                    "an ntfy topic is 1 to 64 letters, digits, - and _ (or a topic URL)",
                ));
            }
        }
        _ => {
            let (key, device) = match rest.split_once('/') {
                Some((k, d)) => (k, Some(d)),
                None => (rest, None),
            };
            if key.len() != 30 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(Invalid::new(
                    field,
                    "a Pushover user or group key is 30 letters and digits",
                ));
            }
            if let Some(d) = device {
                if d.is_empty()
                    || d.len() > 25
                    || !d
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(Invalid::new(
                        field,
                        "a Pushover device name is 1 to 25 letters, digits, - and _",
                    ));
                }
            }
        }
    }
    Ok(t.to_string())
}

fn chat_target(field: &str, text: &str) -> Result<String, Invalid> {
    let t = text.trim();
    let (channel, rest) =
        Channel::of(ContactKind::Chat, t).ok_or_else(|| prefix_error(field, t, &CHAT))?;
    match channel {
        Channel::Slack if !rest.contains("://") => {
            // A channel or user id (C…, G…, U…, D…) or a #channel name.
            if rest.is_empty()
                || rest.chars().count() > 80
                || !rest
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '#' | '@' | '-' | '_' | '.'))
            {
                return Err(Invalid::new(
                    field,
                    "a Slack target is a channel or user id (C0123ABCD, U0123ABCD), a #channel, or an incoming webhook URL",
                ));
            }
        }
        _ => {
            if rest.chars().count() > MAX_CHAT {
                return Err(Invalid::new(
                    field,
                    format!("a chat address is at most {MAX_CHAT} characters"),
                ));
            }
            web_url(field, rest)?;
        }
    }
    Ok(t.to_string())
}

// An absolute http or https URL with a host. Nothing here fetches it; the check is
// that delivery will have somewhere to send to.
fn web_url(field: &str, text: &str) -> Result<String, Invalid> {
    let t = text.trim();
    let bad = |why: &str| Invalid::new(field, format!("`{t}` is not an http or https URL: {why}"));
    if t.len() > MAX_URL {
        return Err(Invalid::new(
            field,
            format!("a URL is at most {MAX_URL} characters"),
        ));
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains spaces or control characters"));
    }
    let (scheme, rest) = t
        .split_once("://")
        .ok_or_else(|| bad("it must start with http:// or https://"))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(bad("it must start with http:// or https://"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 host needs its closing ]"))?;
        match after {
            "" => (addr, None),
            p => (
                addr,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("a port follows the host after :"))?,
                ),
            ),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(bad("it has no host"));
    }
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(bad("the port must be a number up to 65535"));
        }
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: ContactKind, s: &str) -> Result<String, Invalid> {
        ContactAddress::parse(kind, "address", s).map(|a| a.as_str().to_string())
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for k in ContactKind::ALL {
            assert_eq!(ContactKind::parse(k.as_str()), Some(k));
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json, k.as_str(), "the stored name is the serde name");
        }
        assert_eq!(ContactKind::parse("pager"), None);
    }

    #[test]
    fn emails_are_parsed_as_email_addresses() {
        assert_eq!(
            parse(ContactKind::Email, " Ann@Example.COM ").unwrap(),
            "Ann@example.com"
        );
        let e = parse(ContactKind::Email, "not an address").unwrap_err();
        assert_eq!(e.field, "address");
    }

    #[test]
    fn phone_numbers_are_normalized_to_e164() {
        for (input, want) in [
            ("+15551234567", "+15551234567"),
            ("+1 (555) 123-4567", "+15551234567"),
            (" +49 30 1234 5678 ", "+493012345678"),
            ("+49301234", "+49301234"),
            ("+123456789012345", "+123456789012345"),
        ] {
            assert_eq!(parse(ContactKind::Sms, input).unwrap(), want, "{input}");
            assert_eq!(parse(ContactKind::Voice, input).unwrap(), want, "{input}");
        }
        for (input, why) in [
            ("5551234567", "start with +"),
            ("+1555123", "8 to 15 digits"),
            ("+1234567890123456", "8 to 15 digits"),
            ("+0555123456", "does not start with 0"),
            ("+1.555.123.4567", "only digits"),
            ("+1555123456x7", "only digits"),
            ("", "start with +"),
            ("+", "8 to 15 digits"),
        ] {
            let e = parse(ContactKind::Sms, input).unwrap_err();
            assert_eq!(e.field, "address");
            assert!(e.message.contains(why), "{input}: {}", e.message);
        }
    }

    #[test]
    fn push_addresses_name_ntfy_or_pushover() {
        for ok in [
            "ntfy:alerts-ann_1",
            "ntfy:https://ntfy.example/alerts-ann",
            "pushover:uQiRzpo4DXghDmr9QzzfQu27cmVRsG",
            "pushover:uQiRzpo4DXghDmr9QzzfQu27cmVRsG/phone-1",
        ] {
            assert_eq!(parse(ContactKind::Push, &format!(" {ok} ")).unwrap(), ok);
        }
        let a = ContactAddress::parse(ContactKind::Push, "address", "ntfy:x").unwrap();
        assert_eq!(a.channel(), Channel::Ntfy);
        for bad in [
            "",
            "device-token",
            "fcm:abc",
            "slack:C0123",
            "ntfy:",
            "ntfy:two words",
            "ntfy:ftp://x.example/t",
            &format!("ntfy:{}", "a".repeat(65)),
            "pushover:short",
            "pushover:uQiRzpo4DXghDmr9QzzfQu27cmVRsG/",
            "pushover:uQiRzpo4DXghDmr9QzzfQu27cmVRsG/a b",
            &"a".repeat(513),
        ] {
            assert_eq!(
                parse(ContactKind::Push, bad).unwrap_err().field,
                "address",
                "{bad:?}"
            );
        }
        assert!(parse(ContactKind::Push, "fcm:abc")
            .unwrap_err()
            .message
            .contains("`ntfy:`, `pushover:`"));
    }

    #[test]
    fn chat_addresses_name_their_service() {
        for (ok, channel) in [
            ("slack:C0123ABCD", Channel::Slack),
            ("slack:#ops", Channel::Slack),
            (
                "slack:https://hooks.slack.com/services/T0/B0/x",
                Channel::Slack,
            ),
            ("teams:https://example.webhook.office.com/x", Channel::Teams),
            (
                "mattermost:http://10.0.0.7:8065/hooks/abc",
                Channel::Mattermost,
            ),
            (
                "discord:https://discord.com/api/webhooks/1/t",
                Channel::Discord,
            ),
        ] {
            let a = ContactAddress::parse(ContactKind::Chat, "address", ok).unwrap();
            assert_eq!((a.as_str(), a.channel()), (ok, channel));
        }
        for bad in [
            "",
            "  ",
            "@ann",
            "slack:",
            "slack:a b",
            "teams:not-a-url",
            "discord:ftp://x.example/",
            "ntfy:alerts",
            "a\nb",
        ] {
            assert_eq!(
                parse(ContactKind::Chat, bad).unwrap_err().field,
                "address",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn channels_round_trip_and_follow_the_kind() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(
            Channel::of(ContactKind::Sms, "+15551234567"),
            Some((Channel::Sms, "+15551234567"))
        );
        assert_eq!(
            Channel::of(ContactKind::Chat, "slack:C1"),
            Some((Channel::Slack, "C1"))
        );
        assert_eq!(Channel::of(ContactKind::Chat, "ntfy:x"), None);
        assert_eq!(Channel::of(ContactKind::Push, "device-of-ann"), None);
    }

    #[test]
    fn webhooks_are_absolute_http_urls() {
        for ok in [
            "https://hooks.example.com/page?me=1",
            "http://10.0.0.7:8080/hook",
            "HTTPS://example.com",
            "https://user:pw@example.com/x#frag",
            "http://[::1]:9000/x",
        ] {
            assert_eq!(parse(ContactKind::Webhook, ok).unwrap(), ok);
        }
        for bad in [
            "",
            "example.com/hook",
            "ftp://example.com/",
            "https://",
            "https:///path",
            "https://example.com:port/",
            "https://example.com:99999/",
            "https://exa mple.com/",
            "https://[::1/",
            "mailto:ann@example.com",
            &format!("https://example.com/{}", "a".repeat(2048)),
        ] {
            assert_eq!(
                parse(ContactKind::Webhook, bad).unwrap_err().field,
                "address",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_address_keeps_its_kind() {
        let a = ContactAddress::parse(ContactKind::Voice, "address", "+15551234567").unwrap();
        assert_eq!(a.kind(), ContactKind::Voice);
    }

    #[test]
    fn labels_default_per_kind() {
        assert_eq!(
            contact_label("label", ContactKind::Email, None).unwrap(),
            "Work email"
        );
        for k in ContactKind::ALL {
            let l = contact_label("label", k, None).unwrap();
            assert!(!l.is_empty() && l.chars().count() <= MAX_LABEL);
        }
        assert_eq!(
            contact_label("label", ContactKind::Sms, Some(" On call phone ")).unwrap(),
            "On call phone"
        );
        assert!(contact_label("label", ContactKind::Sms, Some(&"x".repeat(100))).is_ok());
        for bad in ["", " ", "a\nb", &"x".repeat(101)] {
            assert_eq!(
                contact_label("label", ContactKind::Sms, Some(bad))
                    .unwrap_err()
                    .field,
                "label"
            );
        }
    }
}
