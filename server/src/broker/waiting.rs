//! Subscriptions to topics that do not exist yet: a dashboard may be set up before its data flows.
//! They join the topic, with a snapshot, when it is created.
//!
//! A viewer can name any topic, so this list must not grow with what viewers make up: each tenant
//! may have only so many waiting subscriptions, and an entry goes as soon as its subscription is
//! dropped (unsubscribed, or its connection closed); a topic nobody waits for any more leaves no
//! empty entry behind. Pure bookkeeping: the broker calls it under its lock.

use super::{ReadFrom, Subscriber};
use crate::topic_name::{TenantId, TopicKey};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct Waiting {
    pub subscriber: Subscriber,
    /// Where the subscriber stood: it catches up from there when the topic appears.
    pub from: StartAt,
}

/// A [`ReadFrom`] kept while the subscription waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    Start,
    /// A position: replayed from, when the topic that appears is the one it was taken in (another
    /// node created it, or this node is loading it); otherwise a `gap` and the snapshot.
    Token(String),
    /// A time, or a position already known to be lost: a `gap` and the snapshot, since what a
    /// reader holds from a topic that did not exist here cannot be trusted to match it.
    Lost,
}

impl From<ReadFrom<'_>> for StartAt {
    fn from(from: ReadFrom<'_>) -> Self {
        match from {
            ReadFrom::Start => StartAt::Start,
            ReadFrom::Token(token) => StartAt::Token(token.to_owned()),
            ReadFrom::Time(_) | ReadFrom::Lost => StartAt::Lost,
        }
    }
}

impl StartAt {
    pub fn as_read_from(&self) -> ReadFrom<'_> {
        match self {
            StartAt::Start => ReadFrom::Start,
            StartAt::Token(token) => ReadFrom::Token(token),
            StartAt::Lost => ReadFrom::Lost,
        }
    }
}

#[derive(Debug, Default)]
pub struct WaitingList {
    by_topic: HashMap<TopicKey, Vec<Waiting>>,
    per_tenant: HashMap<TenantId, usize>,
}

impl WaitingList {
    /// Adds a waiting subscription unless its tenant already has `max_per_tenant`; false then.
    #[must_use]
    pub fn add(&mut self, key: &TopicKey, waiting: Waiting, max_per_tenant: usize) -> bool {
        let count = self.per_tenant.get(&key.tenant).copied().unwrap_or(0);
        let list = self.by_topic.entry(key.clone()).or_default();
        let same = |w: &Waiting| {
            w.subscriber.connection == waiting.subscriber.connection && w.subscriber.widget == waiting.subscriber.widget
        };
        if let Some(existing) = list.iter_mut().find(|w| same(w)) {
            *existing = waiting;
            return true;
        }
        if count >= max_per_tenant {
            if list.is_empty() {
                self.by_topic.remove(key);
            }
            return false;
        }
        list.push(waiting);
        *self.per_tenant.entry(key.tenant.clone()).or_default() += 1;
        true
    }

    /// Drops one connection's waiting subscription of `widget`, if it has one.
    pub fn remove(&mut self, key: &TopicKey, connection: u64, widget: &str) {
        let Some(list) = self.by_topic.get_mut(key) else { return };
        let before = list.len();
        list.retain(|w| !(w.subscriber.connection == connection && &*w.subscriber.widget == widget));
        let removed = before - list.len();
        if list.is_empty() {
            self.by_topic.remove(key);
        }
        self.forget(&key.tenant, removed);
    }

    /// Everyone waiting for `key`, which now exists.
    pub fn take(&mut self, key: &TopicKey) -> Vec<Waiting> {
        let list = self.by_topic.remove(key).unwrap_or_default();
        self.forget(&key.tenant, list.len());
        list
    }

    /// Whether anyone waits for `key`.
    pub fn has(&self, key: &TopicKey) -> bool {
        self.by_topic.contains_key(key)
    }

    /// Every topic someone waits for.
    pub fn keys(&self) -> Vec<TopicKey> {
        self.by_topic.keys().cloned().collect()
    }

    pub fn count(&self, tenant: &TenantId) -> usize {
        self.per_tenant.get(tenant).copied().unwrap_or(0)
    }

    /// Topics someone waits for (for tests: no empty entries stay behind).
    pub fn topics(&self) -> usize {
        self.by_topic.len()
    }

    fn forget(&mut self, tenant: &TenantId, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(count) = self.per_tenant.get_mut(tenant) {
            *count -= n;
            if *count == 0 {
                self.per_tenant.remove(tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{outbox::Outbox, topic_name::TopicName};
    use std::sync::Arc;

    fn key(tenant: &str, name: &str) -> TopicKey {
        TopicKey::new(TenantId::parse(tenant).unwrap(), TopicName::parse(name).unwrap())
    }

    fn waiting(connection: u64, widget: &str) -> Waiting {
        let subscriber =
            Subscriber { connection, widget: widget.into(), outbox: Arc::new(Outbox::new(4)), hidden: None };
        Waiting { subscriber, from: StartAt::Start }
    }

    #[test]
    fn made_up_topics_leave_nothing_behind_once_unsubscribed() {
        let mut list = WaitingList::default();
        for i in 0..1000 {
            assert!(list.add(&key("acme", &format!("made-up/{i}")), waiting(1, &format!("w{i}")), usize::MAX));
        }
        assert_eq!((list.topics(), list.count(&TenantId::parse("acme").unwrap())), (1000, 1000));
        for i in 0..1000 {
            list.remove(&key("acme", &format!("made-up/{i}")), 1, &format!("w{i}"));
        }
        assert_eq!(list.topics(), 0);
        assert!(list.per_tenant.is_empty());
    }

    #[test]
    fn each_tenant_may_have_only_so_many_waiting() {
        let mut list = WaitingList::default();
        assert!(list.add(&key("acme", "a"), waiting(1, "w1"), 2));
        assert!(list.add(&key("acme", "b"), waiting(1, "w2"), 2));
        assert!(!list.add(&key("acme", "c"), waiting(1, "w3"), 2));
        assert_eq!(list.topics(), 2, "a refused subscription leaves no entry");
        assert!(list.add(&key("acme", "a"), waiting(1, "w1"), 2), "the same subscription again");
        assert!(list.add(&key("globex", "c"), waiting(2, "w1"), 2), "per tenant");
        assert_eq!(list.take(&key("acme", "a")).len(), 1);
        assert!(list.add(&key("acme", "c"), waiting(1, "w3"), 2), "taking made room");
    }
}
