//! A display link's secret: 128 random bits as 32 hex digits, kept only as its SHA-256 and checked
//! in constant time. A fast hash is right for the same reason as for API keys: nothing to guess.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new secret.
pub fn generate() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What is kept of `secret`: its SHA-256, in hex.
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `secret` is the one whose hash is `stored`. Anything not shaped like a secret this
/// server makes is no match, without hashing it.
pub fn matches(secret: &str, stored: &str) -> bool {
    let shaped = secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    shaped && hash(secret).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_its_hash_only() {
        let secret = generate();
        let stored = hash(&secret);
        assert_eq!(stored.len(), 64);
        assert!(matches(&secret, &stored));
        assert!(!matches(&generate(), &stored));
        assert!(!matches("", &stored));
        assert!(!matches(&format!("{secret}0"), &stored));
    }
}
