//! Subscriber links: "Confirm your subscription" and "Unsubscribe" in a status
//! page's mail work without a login; the token in the link is the credential:
//! `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`. The payload
//! names what the link does, the subscriber, when it expires (0: never) and the
//! subscriber's own random salt, so deleting a subscriber (or giving it a new
//! salt) voids every link it was ever sent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::time::Timestamp;

/// Bytes of a subscriber's salt.
pub const SALT_LEN: usize = 16;

// Layout version 1: version, purpose, subscriber id, expires_at (unix s, 0 never), salt.
const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 1 + 8 + 8 + SALT_LEN;
const MAC_LEN: usize = 32;

/// What a subscriber link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Confirms an email subscription (double opt-in).
    Confirm,
    /// Ends a subscription.
    Unsubscribe,
}

impl LinkPurpose {
    fn byte(self) -> u8 {
        match self {
            LinkPurpose::Confirm => 1,
            LinkPurpose::Unsubscribe => 2,
        }
    }

    fn from_byte(b: u8) -> Option<LinkPurpose> {
        match b {
            1 => Some(LinkPurpose::Confirm),
            2 => Some(LinkPurpose::Unsubscribe),
            _ => None,
        }
    }
}

/// What a subscriber link claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberClaim {
    /// What it does.
    pub purpose: LinkPurpose,
    /// The subscriber.
    pub subscriber_id: i64,
    /// Unix seconds after which it is refused; 0: never.
    pub expires_at: i64,
    /// The subscriber's salt when the link was made.
    pub salt: [u8; SALT_LEN],
}

impl SubscriberClaim {
    fn encode(&self) -> [u8; PAYLOAD_LEN] {
        let mut p = [0u8; PAYLOAD_LEN];
        p[0] = VERSION;
        p[1] = self.purpose.byte();
        p[2..10].copy_from_slice(&self.subscriber_id.to_be_bytes());
        p[10..18].copy_from_slice(&self.expires_at.to_be_bytes());
        p[18..].copy_from_slice(&self.salt);
        p
    }

    fn decode(p: &[u8]) -> Option<SubscriberClaim> {
        if p.len() != PAYLOAD_LEN || p[0] != VERSION {
            return None;
        }
        let i64_at = |at: usize| i64::from_be_bytes(p[at..at + 8].try_into().expect("8 bytes"));
        Some(SubscriberClaim {
            purpose: LinkPurpose::from_byte(p[1])?,
            subscriber_id: i64_at(2),
            expires_at: i64_at(10),
            salt: p[18..].try_into().ok()?,
        })
    }
}

/// Why a subscriber link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    /// Not a token of this format (cut short, mangled).
    #[error("this link is malformed; it may have been cut short when copied")]
    Malformed,
    /// Not signed by this instance, or altered.
    #[error("this link was not issued by this status page or has been altered")]
    BadSignature,
    /// A link for something else (an unsubscribe link used to confirm).
    #[error("this link is for something else")]
    WrongPurpose,
    /// Past its lifetime.
    #[error("this link has expired")]
    Expired,
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length")
}

/// Signs a claim into a token.
pub fn sign(key: &[u8], claim: &SubscriberClaim) -> String {
    let payload = claim.encode();
    let mut m = mac(key);
    m.update(&payload);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

/// Checks a token's form, signature (constant time), purpose and expiry at `now`.
/// The caller still checks the salt against the subscriber's stored one.
pub fn verify(
    key: &[u8],
    token: &str,
    purpose: LinkPurpose,
    now: Timestamp,
) -> Result<SubscriberClaim, TokenRefused> {
    let (payload, tag) = token
        .trim()
        .split_once('.')
        .ok_or(TokenRefused::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenRefused::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| TokenRefused::Malformed)?;
    if payload.len() != PAYLOAD_LEN || tag.len() != MAC_LEN {
        return Err(TokenRefused::Malformed);
    }
    let mut m = mac(key);
    m.update(&payload);
    m.verify_slice(&tag)
        .map_err(|_| TokenRefused::BadSignature)?;
    let claim = SubscriberClaim::decode(&payload).ok_or(TokenRefused::Malformed)?;
    if claim.purpose != purpose {
        return Err(TokenRefused::WrongPurpose);
    }
    if claim.expires_at != 0 && now.timestamp() > claim.expires_at {
        return Err(TokenRefused::Expired);
    }
    Ok(claim)
}

/// The secret a webhook subscriber verifies `Tocsin-Signature` with: derived
/// from the instance's key, the subscriber and its salt, so it is never stored;
/// shown to the admin once, when the subscriber is added.
pub fn webhook_secret(key: &[u8], subscriber_id: i64, salt: &[u8; SALT_LEN]) -> String {
    let mut m = mac(key);
    m.update(b"status-webhook-secret:");
    m.update(&subscriber_id.to_be_bytes());
    m.update(salt);
    format!("whsec_{}", hex_lower(&m.finalize().into_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
