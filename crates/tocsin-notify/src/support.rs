//! Small pieces the email and push providers share: a stable, restricted-alphabet
//! form of an idempotency key, timeouts read from the config file as seconds,
//! and reading a bounded answer.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

use crate::classify::EXCERPT_BYTES;

/// `key` in letters, digits, `-` and `_`, at most `max` bytes, the same for the
/// same key every time. A key that already fits is used as it is (readable in a
/// provider's logs); any other is cleaned and suffixed with a hash of the
/// original, so two keys that clean to the same text still differ.
pub(crate) fn stable_token(key: &str, max: usize) -> String {
    let fits = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if !key.is_empty() && key.len() <= max && key.bytes().all(fits) {
        return key.to_string();
    }
    let hash = hex::encode(&Sha256::digest(key.as_bytes())[..8]);
    let room = max.saturating_sub(hash.len() + 1);
    let mut clean: String = key
        .bytes()
        .map(|b| if fits(b) { b as char } else { '-' })
        .take(room)
        .collect();
    clean.push('-');
    clean.push_str(&hash);
    clean
}

/// A timeout in the config file: a number of seconds (`timeout = 10`, `timeout = 2.5`).
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| serde::de::Error::custom("a timeout is a number of seconds, at least 0"))
}

/// At most a little more than an excerpt of the answer: a success is small
/// JSON, and of a failure only an excerpt is kept.
pub(crate) async fn read_some(mut response: reqwest::Response) -> Vec<u8> {
    let mut answer = Vec::new();
    while answer.len() <= EXCERPT_BYTES * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_fit_are_kept_others_cleaned_and_hashed() {
        assert_eq!(stable_token("abc-1_2", 64), "abc-1_2");
        let t = stable_token("esc:7:s0:r0", 64);
        assert!(t.starts_with("esc-7-s0-r0-"), "{t}");
        assert_eq!(t, stable_token("esc:7:s0:r0", 64));
        assert_ne!(t, stable_token("esc-7-s0-r0", 64));
        assert_ne!(t, stable_token("esc/7/s0/r0", 64));
        let long = stable_token(&"x".repeat(200), 64);
        assert_eq!(long.len(), 64);
        assert!(long
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(stable_token("", 64).len(), 17);
    }

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "seconds")]
        timeout: Duration,
    }

    #[test]
    fn timeouts_are_seconds() {
        let t: T = serde_json::from_str(r#"{"timeout": 2.5}"#).unwrap();
        assert_eq!(t.timeout, Duration::from_millis(2500));
        let t: T = serde_json::from_str(r#"{"timeout": 10}"#).unwrap();
        assert_eq!(t.timeout, Duration::from_secs(10));
        assert!(serde_json::from_str::<T>(r#"{"timeout": -1}"#).is_err());
    }
}
