//! What the email and push providers share beyond HTTP: a stable,
//! restricted-alphabet form of an idempotency key.

use sha2::{Digest, Sha256};

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
}
