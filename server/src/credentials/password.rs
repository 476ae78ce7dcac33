//! Password hashing: Argon2id with the crate's recommended parameters, in PHC string form.
//!
//! Hashing is deliberately slow (tens of milliseconds), so callers run it on the blocking pool.

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// False for a wrong password and for a malformed hash alike.
pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A valid hash of nothing anyone knows, verified when the e-mail is unknown so that a login for a
/// missing user takes as long as one with a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&format!("{:x}", rand::random::<u128>())).expect("hashing a random string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_password() {
        let h = hash("livedash-demo").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "livedash-demo"));
        assert!(!verify(&h, "livedash-demo "));
        assert!(!verify("not a hash", "livedash-demo"));
        assert_ne!(hash("same").unwrap(), hash("same").unwrap(), "salted");
    }
}
