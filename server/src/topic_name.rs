//! Topic names and the tenant scoping around them.
//!
//! Clients and publishers name topics relative to their tenant (`metrics/orders`); only the server
//! puts the tenant in front, from the authenticated session or API key. The grammar is deliberately
//! narrow — ASCII letters, digits, `-`, `_`, `.` in `/`-separated segments, no `.`/`..` segments, no
//! empty segment — so that no spelling (`../`, `%2F`, a leading `/`, control characters) can name
//! anything but a topic of the caller's own tenant.

use std::fmt;

/// Longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;
/// Most segments in a topic name.
pub const MAX_SEGMENTS: usize = 8;
/// Longest tenant id, in bytes.
pub const MAX_TENANT_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("topic name is empty")]
    Empty,
    #[error("topic name is longer than {MAX_TOPIC_LEN} bytes")]
    TooLong,
    #[error("topic name has more than {MAX_SEGMENTS} segments")]
    TooManySegments,
    #[error("topic name has an empty segment (leading, trailing or double '/')")]
    EmptySegment,
    #[error("topic name has a '.' or '..' segment")]
    DotSegment,
    #[error("topic name has a character other than A-Z a-z 0-9 - _ . /")]
    BadCharacter,
    #[error("tenant id must be 1 to {MAX_TENANT_LEN} characters of a-z 0-9 -")]
    BadTenant,
}

/// A tenant's identifier: lower-case ASCII letters, digits and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_TENANT_LEN
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok { Ok(Self(raw.to_owned())) } else { Err(NameError::BadTenant) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid topic name, relative to a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

impl TopicName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if raw.len() > MAX_TOPIC_LEN {
            return Err(NameError::TooLong);
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/')) {
            return Err(NameError::BadCharacter);
        }
        let mut segments = 0;
        for segment in raw.split('/') {
            segments += 1;
            match segment {
                "" => return Err(NameError::EmptySegment),
                "." | ".." => return Err(NameError::DotSegment),
                _ => {}
            }
        }
        if segments > MAX_SEGMENTS {
            return Err(NameError::TooManySegments);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether only the server publishes here (presence, dashboard edits): publishers and the
    /// Kafka bridge are refused, and the idle-topic sweep keeps these.
    pub fn is_server_owned(&self) -> bool {
        protocol::topics::is_server_owned(&self.0)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The broker's internal key: a topic of one tenant. Displayed as `tenant/topic`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicKey {
    pub tenant: TenantId,
    pub name: TopicName,
}

impl TopicKey {
    pub fn new(tenant: TenantId, name: TopicName) -> Self {
        Self { tenant, name }
    }
}

impl fmt::Display for TopicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for ok in ["orders", "metrics/orders", "sales/eu-west/orders_per_min", "v1.2/x", "A/b/C"] {
            assert_eq!(TopicName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn nothing_can_climb_out_of_the_tenant() {
        let cases = [
            ("", NameError::Empty),
            ("../globex/orders", NameError::DotSegment),
            ("a/../../b", NameError::DotSegment),
            ("./a", NameError::DotSegment),
            ("/globex/orders", NameError::EmptySegment),
            ("a//b", NameError::EmptySegment),
            ("a/", NameError::EmptySegment),
            ("globex%2Forders", NameError::BadCharacter),
            ("a\\b", NameError::BadCharacter),
            ("a\u{0}b", NameError::BadCharacter),
            ("line\nbreak", NameError::BadCharacter),
            ("tab\there", NameError::BadCharacter),
            ("space here", NameError::BadCharacter),
            ("caf\u{e9}", NameError::BadCharacter),
            ("a:b", NameError::BadCharacter),
            ("a/b/c/d/e/f/g/h/i", NameError::TooManySegments),
        ];
        for (raw, expected) in cases {
            assert_eq!(TopicName::parse(raw), Err(expected), "{raw:?}");
        }
        assert_eq!(TopicName::parse(&"a".repeat(MAX_TOPIC_LEN + 1)), Err(NameError::TooLong));
        assert!(TopicName::parse(&"a".repeat(MAX_TOPIC_LEN)).is_ok());
    }

    #[test]
    fn the_key_puts_the_tenant_in_front() {
        let key = TopicKey::new(TenantId::parse("acme").unwrap(), TopicName::parse("metrics/orders").unwrap());
        assert_eq!(key.to_string(), "acme/metrics/orders");
    }

    #[test]
    fn two_tenants_never_share_a_key() {
        let name = TopicName::parse("orders").unwrap();
        let acme = TopicKey::new(TenantId::parse("acme").unwrap(), name.clone());
        let globex = TopicKey::new(TenantId::parse("globex").unwrap(), name);
        assert_ne!(acme, globex);
    }

    #[test]
    fn tenant_ids_are_slugs() {
        assert!(TenantId::parse("acme-eu-2").is_ok());
        for bad in ["", "Acme", "ac/me", "ac me", "ac.me", &"a".repeat(65)] {
            assert_eq!(TenantId::parse(bad), Err(NameError::BadTenant), "{bad:?}");
        }
    }
}
