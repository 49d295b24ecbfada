//! Password hashing: argon2id with the crate's recommended parameters.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use tocsin_core::Invalid;

const MIN_LEN: usize = 10;

/// Hashes a new password after checking its length.
pub fn hash(field: &str, password: &str) -> Result<String, Invalid> {
    if password.chars().count() < MIN_LEN {
        return Err(Invalid::new(
            field,
            format!("must be at least {MIN_LEN} characters"),
        ));
    }
    if password.len() > 1024 {
        return Err(Invalid::new(field, "must be at most 1024 bytes"));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Invalid::new(field, format!("cannot hash: {e}")))
}

/// Checks a password against a stored hash.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_length() {
        let h = super::hash("password", "correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse battery", &h));
        assert!(!super::verify("wrong horse battery", &h));
        assert_eq!(
            super::hash("password", "short").unwrap_err().field,
            "password"
        );
    }
}
