//! API keys for publishers: `ld_<id>_<secret>`, bound to one tenant.
//!
//! The id finds the row; the secret is checked against its SHA-256 in constant time. A fast hash is
//! right here (unlike for passwords): the secret is 128 random bits, so there is nothing to guess.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "ld_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub secret: String,
}

impl ApiKey {
    pub fn generate() -> Self {
        Self { id: format!("{:016x}", rand::random::<u64>()), secret: format!("{:032x}", rand::random::<u128>()) }
    }

    /// `None` for anything that is not shaped like a key this server issues.
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(id, 16) && hex(secret, 32)).then(|| Self { id: id.to_owned(), secret: secret.to_owned() })
    }

    pub fn secret_hash(&self) -> Vec<u8> {
        Sha256::digest(self.secret.as_bytes()).to_vec()
    }

    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.secret_hash().ct_eq(stored_hash).into()
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}_{}", self.id, self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_and_matches_its_hash() {
        let key = ApiKey::generate();
        let parsed = ApiKey::parse(&key.to_string()).unwrap();
        assert_eq!(parsed, key);
        assert!(parsed.matches(&key.secret_hash()));
        assert!(!ApiKey::generate().matches(&key.secret_hash()));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in
            ["", "ld_", "ld_abc_def", "xx_0123456789abcdef_0123456789abcdef0123456789abcdef", "ld_0123456789abcdef"]
        {
            assert_eq!(ApiKey::parse(bad), None, "{bad:?}");
        }
    }
}
