//! Signing outgoing webhooks, and checking the signature on the receiving end.
//!
//! `Tocsin-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`
//! — the scheme Stripe uses, so receivers have examples in every language. The
//! timestamp is inside the MAC, and receivers refuse one outside a tolerance,
//! so a captured request cannot be replayed later.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tocsin_core::time::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Tocsin-Signature";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// There was no `Tocsin-Signature` header.
    #[error("no Tocsin-Signature header")]
    Missing,
    /// The header is not `t=<seconds>,v1=<hex>`.
    #[error("Tocsin-Signature header is malformed: {0}")]
    Malformed(&'static str),
    /// No `v1` signature matches the body under the secret.
    #[error("signature does not match the body")]
    Mismatch,
    /// The signature is genuine but its timestamp is too far from now (a replay, or a skewed clock).
    #[error("signature timestamp {t} is outside the tolerance")]
    OutsideTolerance {
        /// The header's timestamp, unix seconds.
        t: i64,
    },
}

/// The `Tocsin-Signature` value for `body` sent at unix second `t`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex::encode(mac(secret, t, body).finalize().into_bytes())
    )
}

/// Checks a `Tocsin-Signature` header against the raw request body: some `v1`
/// must be the HMAC of `"<t>.<body>"` under `secret` (compared in constant
/// time), and `t` must be within `tolerance` of `now`, either side.
pub fn verify_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("expected key=value pairs"))?;
        match key {
            "t" if t.is_some() => return Err(SignatureError::Malformed("more than one t")),
            "t" => {
                t = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed("t is not unix seconds"))?,
                )
            }
            "v1" => candidates.push(value),
            // Later schemes (v2, …) sit beside v1 during a migration.
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no t"))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    let expected = mac(secret, t, body);
    let genuine = candidates.iter().any(|c| {
        hex::decode(c)
            .map(|sig| expected.clone().verify_slice(&sig).is_ok())
            .unwrap_or(false)
    });
    if !genuine {
        return Err(SignatureError::Mismatch);
    }
    let skew = (i128::from(now.timestamp()) - i128::from(t)).unsigned_abs();
    if skew > u128::from(tolerance.as_secs()) {
        return Err(SignatureError::OutsideTolerance { t });
    }
    Ok(())
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"version":1}"#;
    const FIVE_MIN: Duration = Duration::from_secs(300);

    fn at(t: i64) -> Timestamp {
        Utc.timestamp_opt(t, 0).unwrap()
    }

    #[test]
    fn a_signature_verifies_within_the_tolerance_either_side() {
        let h = sign(SECRET, 1_700_000_000, BODY);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(h.len(), "t=1700000000,v1=".len() + 64);
        for now in [1_700_000_000, 1_700_000_300, 1_699_999_700] {
            assert_eq!(
                verify_signature(SECRET, Some(&h), BODY, at(now), FIVE_MIN),
                Ok(())
            );
        }
        for now in [1_700_000_301, 1_699_999_699] {
            assert_eq!(
                verify_signature(SECRET, Some(&h), BODY, at(now), FIVE_MIN),
                Err(SignatureError::OutsideTolerance { t: 1_700_000_000 })
            );
        }
    }

    #[test]
    fn a_known_vector() {
        // HMAC-SHA256(key "whsec_test", "1700000000.{\"version\":1}"), computed with openssl and with Python's hmac.
        assert_eq!(
            sign(SECRET, 1_700_000_000, BODY),
            "t=1700000000,v1=83171cbb758ad8691565f1c3f7f4593a985a0451a5e67181aba825c6a58bb106"
        );
    }

    #[test]
    fn tampering_with_body_time_or_secret_is_refused() {
        let h = sign(SECRET, 1_700_000_000, BODY);
        let now = at(1_700_000_000);
        let refuse = |secret: &[u8], h: &str, body: &[u8]| {
            verify_signature(secret, Some(h), body, now, FIVE_MIN)
        };
        assert_eq!(
            refuse(SECRET, &h, br#"{"version":2}"#),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(refuse(b"other", &h, BODY), Err(SignatureError::Mismatch));
        let moved = h.replace("t=1700000000", "t=1700000001");
        assert_eq!(refuse(SECRET, &moved, BODY), Err(SignatureError::Mismatch));
        let not_hex = format!("t=1700000000,v1={}", "zz".repeat(32));
        assert_eq!(
            refuse(SECRET, &not_hex, BODY),
            Err(SignatureError::Mismatch)
        );
        let short = &h[..h.len() - 2];
        assert_eq!(refuse(SECRET, short, BODY), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_v1_may_match_and_unknown_schemes_are_ignored() {
        let good = sign(SECRET, 1_700_000_000, BODY);
        let v1 = good.split_once(",v1=").unwrap().1;
        let h = format!("t=1700000000, v2=abc, v1={}, v1={v1}", "00".repeat(32));
        assert_eq!(
            verify_signature(SECRET, Some(&h), BODY, at(1_700_000_000), FIVE_MIN),
            Ok(())
        );
    }

    #[test]
    fn missing_or_garbled_headers_are_refused() {
        let now = at(1_700_000_000);
        let check = |h: Option<&str>| verify_signature(SECRET, h, BODY, now, FIVE_MIN);
        assert_eq!(check(None), Err(SignatureError::Missing));
        for h in [
            "",
            "garbage",
            "t=1700000000",
            "v1=abcd",
            "t=soon,v1=abcd",
            "t=1,t=1,v1=ab",
        ] {
            assert!(
                matches!(check(Some(h)), Err(SignatureError::Malformed(_))),
                "{h:?}"
            );
        }
    }
}
