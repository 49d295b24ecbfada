//! Action links: "Acknowledge" and "Resolve" links in a page's email, SMS or chat
//! message that act without a login. The token in the link is the credential:
//! `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`, where the payload
//! names the incident, the action, the user it acts as, when it expires and a
//! random nonce that makes it single-use (the store remembers used nonces).
//!
//! The payload is a fixed binary layout, not JSON, so a link stays short enough for
//! an SMS (about 100 characters of token).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::incident::Status;
use crate::time::Timestamp;

/// How long a link works unless the caller says otherwise.
pub const DEFAULT_LIFETIME: Duration = Duration::hours(24);

/// Bytes of the random nonce in each link.
pub const NONCE_LEN: usize = 16;

// Layout version 1: version, incident id, action, user id, expires_at, nonce.
const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 8 + 1 + 8 + 8 + NONCE_LEN;
const MAC_LEN: usize = 32;

/// What a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    /// Take the incident: triggered → acknowledged (stops the escalation).
    Acknowledge,
    /// Resolve the incident (cancels the escalation).
    Resolve,
}

impl LinkAction {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAction::Acknowledge => "acknowledge",
            LinkAction::Resolve => "resolve",
        }
    }

    /// Parses the wire or stored name.
    pub fn parse(s: &str) -> Option<LinkAction> {
        [LinkAction::Acknowledge, LinkAction::Resolve]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    /// The status the action moves an incident to.
    pub fn target(self) -> Status {
        match self {
            LinkAction::Acknowledge => Status::Acknowledged,
            LinkAction::Resolve => Status::Resolved,
        }
    }

    /// Whether an incident in `status` is already where this action would take
    /// it: past triggered for acknowledge, resolved or closed for resolve.
    pub fn already_done(self, status: Status) -> bool {
        match self {
            LinkAction::Acknowledge => status != Status::Triggered,
            LinkAction::Resolve => !status.is_open(),
        }
    }

    /// The past tense, for "INC-42 acknowledged by Ada".
    pub fn done_word(self) -> &'static str {
        match self {
            LinkAction::Acknowledge => "acknowledged",
            LinkAction::Resolve => "resolved",
        }
    }

    fn byte(self) -> u8 {
        match self {
            LinkAction::Acknowledge => 1,
            LinkAction::Resolve => 2,
        }
    }

    fn from_byte(b: u8) -> Option<LinkAction> {
        match b {
            1 => Some(LinkAction::Acknowledge),
            2 => Some(LinkAction::Resolve),
            _ => None,
        }
    }
}

/// What a link carries, signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionClaim {
    /// The incident acted on.
    pub incident_id: i64,
    /// What to do.
    pub action: LinkAction,
    /// The user the action is done as.
    pub user_id: i64,
    /// Unix seconds after which the link is refused.
    pub expires_at: i64,
    /// Random bytes naming this link, for single use.
    pub nonce: [u8; NONCE_LEN],
}

impl ActionClaim {
    /// A claim expiring `ttl` after `now`.
    pub fn new(
        incident_id: i64,
        action: LinkAction,
        user_id: i64,
        now: Timestamp,
        ttl: Duration,
        nonce: [u8; NONCE_LEN],
    ) -> ActionClaim {
        ActionClaim {
            incident_id,
            action,
            user_id,
            expires_at: (now + ttl).timestamp(),
            nonce,
        }
    }

    /// The nonce as stored (lowercase hex).
    pub fn nonce_hex(&self) -> String {
        self.nonce.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn encode(&self) -> [u8; PAYLOAD_LEN] {
        let mut p = [0u8; PAYLOAD_LEN];
        p[0] = VERSION;
        p[1..9].copy_from_slice(&self.incident_id.to_be_bytes());
        p[9] = self.action.byte();
        p[10..18].copy_from_slice(&self.user_id.to_be_bytes());
        p[18..26].copy_from_slice(&self.expires_at.to_be_bytes());
        p[26..].copy_from_slice(&self.nonce);
        p
    }

    fn decode(p: &[u8]) -> Option<ActionClaim> {
        if p.len() != PAYLOAD_LEN || p[0] != VERSION {
            return None;
        }
        let i64_at = |at: usize| i64::from_be_bytes(p[at..at + 8].try_into().expect("8 bytes"));
        Some(ActionClaim {
            incident_id: i64_at(1),
            action: LinkAction::from_byte(p[9])?,
            user_id: i64_at(10),
            expires_at: i64_at(18),
            nonce: p[26..].try_into().ok()?,
        })
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    /// Not a token of this format at all (cut short, mangled).
    #[error("this link is malformed; it may have been cut short when copied")]
    Malformed,
    /// Well-formed, but not signed by this instance (forged or altered).
    #[error("this link was not issued by this Tocsin instance or has been altered")]
    BadSignature,
    /// Signed, but past its lifetime.
    #[error("this link has expired")]
    Expired,
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length")
}

/// Signs a claim into a token.
pub fn sign(key: &[u8], claim: &ActionClaim) -> String {
    let payload = claim.encode();
    let mut m = mac(key);
    m.update(&payload);
    let tag = m.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks a token's form, signature (in constant time) and expiry at `now`.
pub fn verify(key: &[u8], token: &str, now: Timestamp) -> Result<ActionClaim, LinkRefused> {
    let (payload, tag) = token.split_once('.').ok_or(LinkRefused::Malformed)?;
    // Decoding is strict (no padding, no stray bits), so each token has one spelling.
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| LinkRefused::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| LinkRefused::Malformed)?;
    if payload.len() != PAYLOAD_LEN || tag.len() != MAC_LEN {
        return Err(LinkRefused::Malformed);
    }
    let mut m = mac(key);
    m.update(&payload);
    m.verify_slice(&tag)
        .map_err(|_| LinkRefused::BadSignature)?;
    // Signed by us, so only a layout from a newer version could fail here.
    let claim = ActionClaim::decode(&payload).ok_or(LinkRefused::Malformed)?;
    if now.timestamp() >= claim.expires_at {
        return Err(LinkRefused::Expired);
    }
    Ok(claim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;
    use proptest::prelude::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> Timestamp {
        from_millis(1_767_225_600_000)
    }

    fn claim(action: LinkAction) -> ActionClaim {
        ActionClaim::new(42, action, 7, now(), DEFAULT_LIFETIME, [9; NONCE_LEN])
    }

    #[test]
    fn a_signed_claim_verifies_until_it_expires() {
        let c = claim(LinkAction::Acknowledge);
        let t = sign(KEY, &c);
        assert!(t.len() < 110, "short enough for an SMS: {t}");
        assert!(t
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)));
        assert_eq!(verify(KEY, &t, now()), Ok(c));
        let last = now() + DEFAULT_LIFETIME - Duration::seconds(1);
        assert_eq!(verify(KEY, &t, last), Ok(c));
        assert_eq!(
            verify(KEY, &t, now() + DEFAULT_LIFETIME),
            Err(LinkRefused::Expired)
        );
        let r = claim(LinkAction::Resolve);
        assert_eq!(
            verify(KEY, &sign(KEY, &r), now()).unwrap().action,
            LinkAction::Resolve
        );
    }

    #[test]
    fn another_key_is_a_bad_signature() {
        let t = sign(KEY, &claim(LinkAction::Acknowledge));
        assert_eq!(
            verify(b"another key entirely", &t, now()),
            Err(LinkRefused::BadSignature)
        );
    }

    #[test]
    fn an_expired_forgery_is_a_bad_signature_not_expired() {
        // The signature is checked first: an attacker learns nothing from expiry.
        let mut c = claim(LinkAction::Acknowledge);
        c.expires_at = 0;
        let t = sign(b"not our key", &c);
        assert_eq!(verify(KEY, &t, now()), Err(LinkRefused::BadSignature));
    }

    #[test]
    fn malformed_tokens() {
        let t = sign(KEY, &claim(LinkAction::Acknowledge));
        let (p, s) = t.split_once('.').unwrap();
        for bad in [
            "".to_string(),
            "999999".to_string(),
            p.to_string(),
            format!("{p}."),
            format!(".{s}"),
            format!("{p}.{s}.x"),
            format!("{p}=.{s}"),
            format!("{}.{s}", &p[..p.len() - 2]),
            format!("{p}.{}", &s[..s.len() - 1]),
            format!("{p}.{s}AA"),
            t.replace('.', "!"),
        ] {
            assert_eq!(
                verify(KEY, &bad, now()),
                Err(LinkRefused::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_payload_of_an_unknown_version_is_malformed() {
        let c = claim(LinkAction::Acknowledge);
        let mut p = c.encode();
        p[0] = 2;
        let mut m = mac(KEY);
        m.update(&p);
        let t = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(p),
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        );
        assert_eq!(verify(KEY, &t, now()), Err(LinkRefused::Malformed));
    }

    #[test]
    fn actions_know_their_target_and_when_they_are_done() {
        use Status::*;
        assert_eq!(LinkAction::Acknowledge.target(), Acknowledged);
        assert_eq!(LinkAction::Resolve.target(), Resolved);
        assert!(!LinkAction::Acknowledge.already_done(Triggered));
        assert!(LinkAction::Acknowledge.already_done(Investigating));
        assert!(!LinkAction::Resolve.already_done(Monitoring));
        assert!(LinkAction::Resolve.already_done(Closed));
        for a in [LinkAction::Acknowledge, LinkAction::Resolve] {
            assert_eq!(LinkAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(LinkAction::parse("close"), None);
    }

    proptest! {
        #[test]
        fn any_single_byte_change_is_refused(
            incident in 1i64..1_000_000,
            user in 1i64..1_000_000,
            nonce in any::<[u8; NONCE_LEN]>(),
            at in any::<prop::sample::Index>(),
            byte in 0u8..128,
        ) {
            let c = ActionClaim::new(incident, LinkAction::Resolve, user, now(), DEFAULT_LIFETIME, nonce);
            let t = sign(KEY, &c);
            let mut bytes = t.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(verify(KEY, &changed, now()).is_err(), "{t} -> {changed}");
        }

        #[test]
        fn every_claim_round_trips(
            incident in any::<i64>(),
            user in any::<i64>(),
            resolve in any::<bool>(),
            ttl in 1i64..10_000_000,
            nonce in any::<[u8; NONCE_LEN]>(),
        ) {
            let action = if resolve { LinkAction::Resolve } else { LinkAction::Acknowledge };
            let c = ActionClaim::new(incident, action, user, now(), Duration::seconds(ttl), nonce);
            prop_assert_eq!(verify(KEY, &sign(KEY, &c), now()), Ok(c));
        }
    }
}
