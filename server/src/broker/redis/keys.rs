//! Where a topic lives in Redis, and which channel announces its messages.
//!
//! Every key starts with the deployment's prefix, so that several deployments (or test runs) can
//! share one Redis. Messages go out on a fixed set of shard channels rather than one per topic:
//! every node subscribes to all of them once, at start, and a topic always maps to the same shard,
//! so its messages reach every node in order without a subscribe per topic per node.

use crate::topic_name::{TenantId, TopicKey, TopicName};

/// Channels messages are spread over.
pub const SHARDS: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicKeys {
    /// Hash: kind, epoch, offset, sizes, time of the last message.
    pub meta: String,
    /// Stream: the history, one entry per message, its id `0-<offset>`.
    pub log: String,
    /// List (`series`, `events`) or hash (`metrics`, `collection`): the state snapshots are made of.
    pub state: String,
    /// Sorted set of the tenant's topics by last use: what the topics-per-tenant limit counts.
    pub tenant_topics: String,
    /// Hash of the bytes the tenant's topics hold, in total and per topic: what the tenant's byte
    /// budgets count.
    pub tenant_usage: String,
}

impl TopicKeys {
    pub fn new(prefix: &str, key: &TopicKey) -> Self {
        let topic = format!("{prefix}topic:{key}");
        Self {
            meta: format!("{topic}:meta"),
            log: format!("{topic}:log"),
            state: format!("{topic}:state"),
            tenant_topics: format!("{prefix}tenant:{}:topics", key.tenant),
            tenant_usage: format!("{prefix}tenant:{}:usage", key.tenant),
        }
    }
}

/// The channel that announces `key`'s messages.
pub fn channel_of(prefix: &str, key: &TopicKey) -> String {
    channel(prefix, shard(key))
}

pub fn channel(prefix: &str, shard: u32) -> String {
    format!("{prefix}messages:{shard}")
}

/// The channel nodes tell each other about connections on (see `cluster::Notice`).
pub fn notices_channel(prefix: &str) -> String {
    format!("{prefix}notices")
}

/// The key that holds the last position published from an outside stream (a Kafka partition).
pub fn source(prefix: &str, stream: &str) -> String {
    format!("{prefix}source:{stream}")
}

/// The key that says which node does `duty` (see `Engine::hold_duty`).
pub fn duty(prefix: &str, duty: &str) -> String {
    format!("{prefix}duty:{duty}")
}

/// Every channel messages are announced on.
pub fn channels(prefix: &str) -> Vec<String> {
    (0..SHARDS).map(|shard| channel(prefix, shard)).collect()
}

/// A stable hash (FNV-1a): every node, whatever its build, must pick the same shard.
fn shard(key: &TopicKey) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.to_string().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % SHARDS
}

/// The key a message names (`tenant/topic`), back as a [`TopicKey`].
pub fn parse_key(text: &str) -> Option<TopicKey> {
    let (tenant, name) = text.split_once('/')?;
    Some(TopicKey::new(TenantId::parse(tenant).ok()?, TopicName::parse(name).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> TopicKey {
        parse_key(text).unwrap()
    }

    #[test]
    fn a_key_round_trips_through_its_text() {
        assert_eq!(key("acme/sales/orders").to_string(), "acme/sales/orders");
        assert_eq!(parse_key("no-slash"), None);
        assert_eq!(parse_key("acme/../x"), None);
    }

    #[test]
    fn a_topic_always_maps_to_the_same_channel_and_topics_spread() {
        assert_eq!(channel_of("ld:", &key("acme/a")), channel_of("ld:", &key("acme/a")));
        let used: std::collections::HashSet<String> =
            (0..200).map(|i| channel_of("ld:", &key(&format!("acme/t{i}")))).collect();
        assert!(used.len() > SHARDS as usize / 2, "{} channels used", used.len());
        assert!(used.iter().all(|c| channels("ld:").contains(c)));
    }

    #[test]
    fn keys_are_prefixed_and_scoped_by_tenant() {
        let keys = TopicKeys::new("ld:", &key("acme/sales/orders"));
        assert_eq!(keys.meta, "ld:topic:acme/sales/orders:meta");
        assert_eq!(keys.tenant_topics, "ld:tenant:acme:topics");
        assert_eq!(keys.tenant_usage, "ld:tenant:acme:usage");
    }
}
