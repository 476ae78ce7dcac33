//! Where messages are ordered and kept: the [`Engine`] behind the broker.
//!
//! The broker on each node holds the topics its viewers follow and fans every message out to them;
//! the engine decides each message's place in its topic. With [`MemoryEngine`] (one node, the
//! default) that place is decided right here. With the Redis engine (several nodes, see
//! [`super::redis`]) it is decided in Redis and every node's broker keeps a copy of the topics it
//! serves, so a viewer can resume on any node. Transports never see the difference: they subscribe
//! and read through [`super::Broker`], and everything that publishes goes through an `Engine`.
//!
//! What else several nodes share is apart from ordering, as centrifuge keeps its Broker apart from
//! its PresenceManager: how fast each API key may publish ([`PublishRate`]), and notices and duties
//! between nodes ([`Cluster`](super::cluster::Cluster)).

use super::{Broker, BrokerError};
use crate::limits::KeyedLimiter;
use crate::topic_name::TopicKey;
use futures_util::future::BoxFuture;
use protocol::{Item, TopicKind};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tokio::sync::mpsc;

/// What publishing one message did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Its offset in the topic.
    pub offset: u64,
    /// The ids of the documents it added to a collection (upserts of ids the collection did not
    /// hold), in the order of the message; empty for other kinds. Known only where the state is
    /// changed (this node's broker, or the Redis script), hence reported rather than worked out
    /// again by whoever needs it (collection notifications).
    pub created: Vec<String>,
}

pub trait Engine: Send + Sync + 'static {
    /// Appends `items` as one message to `key` (creating the topic on first use) and hands it to
    /// every subscriber on every node. With a `source` (a position in an ordered outside stream,
    /// such as a Kafka partition), a message at or before the last position published from
    /// `source.stream` is dropped as a duplicate (`Ok(None)`), so a feed that delivers at least
    /// once (Kafka, after a crash or a rebalance) shows each message once; the positions are kept
    /// where the topics are (this node, or Redis), in the same step as the message. Without one,
    /// never `Ok(None)`.
    fn publish_message(
        &self,
        key: TopicKey,
        kind: TopicKind,
        items: Vec<Item>,
        source: Option<Source>,
    ) -> BoxFuture<'_, Result<Option<Published>, BrokerError>>;

    /// [`Engine::publish_message`] without a source; resolves to the message's offset.
    fn publish(&self, key: TopicKey, kind: TopicKind, items: Vec<Item>) -> BoxFuture<'_, Result<u64, BrokerError>> {
        let published = self.publish_message(key, kind, items, None);
        Box::pin(async move {
            published.await?.map(|p| p.offset).ok_or_else(|| {
                BrokerError::Unavailable("the engine took a message without a source for a duplicate".into())
            })
        })
    }

    /// [`Engine::publish_message`] once per position of an ordered outside stream; resolves to
    /// the offset, or `None` for a duplicate.
    fn publish_from(
        &self,
        key: TopicKey,
        kind: TopicKind,
        items: Vec<Item>,
        source: Source,
    ) -> BoxFuture<'_, Result<Option<u64>, BrokerError>> {
        let published = self.publish_message(key, kind, items, Some(source));
        Box::pin(async move { Ok(published.await?.map(|p| p.offset)) })
    }

    /// Creates `key` as a `kind` topic if it does not exist yet.
    fn declare(&self, key: TopicKey, kind: TopicKind) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Makes sure this node's broker holds `key` as it stands now, before a read that does not
    /// subscribe (polling). Nothing to do when this node orders the messages itself.
    fn load_current(&self, key: TopicKey) -> BoxFuture<'_, ()>;

    /// Whether the engine can take publishes and serve new topics now (`/readyz`).
    fn ready(&self) -> bool;

    /// `memory` or `redis`, for logs and `/readyz`.
    fn name(&self) -> &'static str;
}

/// A message's place in an ordered outside stream, for [`Engine::publish_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Names the stream, e.g. `kafka:<group>:<topic>:<partition>`.
    pub stream: String,
    pub position: i64,
}

/// Streams whose last position a [`MemoryEngine`] keeps; past it the oldest entries are forgotten
/// (one per Kafka partition is the use: far fewer).
const MAX_SOURCES: usize = 65_536;

/// One node, nothing shared: the broker orders every message itself, at once.
pub struct MemoryEngine {
    broker: Arc<Broker>,
    /// The last position published from each outside stream (see [`Engine::publish_from`]).
    sources: Mutex<HashMap<String, i64>>,
}

impl MemoryEngine {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker, sources: Mutex::default() }
    }
}

impl Engine for MemoryEngine {
    fn publish_message(
        &self,
        key: TopicKey,
        kind: TopicKind,
        items: Vec<Item>,
        source: Option<Source>,
    ) -> BoxFuture<'_, Result<Option<Published>, BrokerError>> {
        // Done before the future is returned: a caller that does not wait still publishes in order.
        let Some(source) = source else {
            return Box::pin(std::future::ready(self.broker.publish_message(&key, kind, items).map(Some)));
        };
        // Checked, published and recorded under one lock: two deliveries of one message racing
        // each other publish it once.
        let mut sources = self.sources.lock().expect("sources lock");
        let published = if sources.get(&source.stream).is_some_and(|last| source.position <= *last) {
            Ok(None)
        } else {
            self.broker.publish_message(&key, kind, items).map(|published| {
                if sources.len() >= MAX_SOURCES && !sources.contains_key(&source.stream) {
                    sources.clear();
                }
                sources.insert(source.stream, source.position);
                Some(published)
            })
        };
        Box::pin(std::future::ready(published))
    }

    fn declare(&self, key: TopicKey, kind: TopicKind) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(std::future::ready(self.broker.declare(&key, kind)))
    }

    fn load_current(&self, _key: TopicKey) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }

    fn ready(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

/// How fast each API key may publish, across the deployment: its allowance is the rate the server
/// was configured with, in bursts of twice that.
pub trait PublishRate: Send + Sync + 'static {
    /// Takes one publish from `api_key`'s allowance; `Err` with the seconds to wait when it is spent.
    fn allow_publish<'a>(&'a self, api_key: &'a str) -> BoxFuture<'a, Result<(), f64>>;
}

/// The allowance kept on this node: all there is when it is the only one.
pub struct LocalPublishRate(KeyedLimiter<String>);

impl LocalPublishRate {
    pub fn new(publishes_per_sec: f64) -> Self {
        Self(KeyedLimiter::new(publishes_per_sec, 2.0 * publishes_per_sec))
    }
}

impl PublishRate for LocalPublishRate {
    fn allow_publish<'a>(&'a self, api_key: &'a str) -> BoxFuture<'a, Result<(), f64>> {
        Box::pin(std::future::ready(self.0.check(&api_key.to_owned(), std::time::Instant::now())))
    }
}

/// Publishes from code that cannot wait (presence changes, made while a socket opens or closes),
/// one message after another in the order they were sent, so a user's "online" never overtakes
/// their "offline". Bounded: when the engine falls this far behind, new messages are dropped and
/// counted rather than held without limit.
#[derive(Debug, Clone)]
pub struct InOrder {
    queue: mpsc::Sender<(TopicKey, TopicKind, Vec<Item>)>,
}

/// Messages `InOrder` holds while the engine is busy.
const IN_ORDER_QUEUE: usize = 4096;

impl InOrder {
    pub fn start(engine: Arc<dyn Engine>) -> Self {
        let (queue, mut queued) = mpsc::channel::<(TopicKey, TopicKind, Vec<Item>)>(IN_ORDER_QUEUE);
        tokio::spawn(async move {
            while let Some((key, kind, items)) = queued.recv().await {
                if let Err(e) = engine.publish(key.clone(), kind, items).await {
                    tracing::warn!(error = %e, topic = %key, "could not publish");
                }
            }
        });
        Self { queue }
    }

    pub fn send(&self, key: TopicKey, kind: TopicKind, items: Vec<Item>) {
        if self.queue.try_send((key, kind, items)).is_err() {
            metrics::counter!(crate::telemetry::DENIALS, "reason" => "publish_queue_full").increment(1);
            tracing::warn!("publishing falls behind: a message was dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic_name::TenantId;

    #[tokio::test]
    async fn a_message_from_an_outside_stream_is_published_once_per_position() {
        let broker = Arc::new(Broker::new(crate::broker_config(&crate::config::Config::default())));
        let engine = MemoryEngine::new(broker.clone());
        let key = TopicKey::new(TenantId::parse("acme").unwrap(), crate::topic_name::TopicName::parse("k").unwrap());
        let point = |v: f64| vec![Item::Point(protocol::Point { ts: v as i64, value: v })];
        let from = |stream: &str, position| Source { stream: stream.into(), position };
        let publish = |v: f64, source| engine.publish_from(key.clone(), TopicKind::Series, point(v), source);
        assert_eq!(publish(1.0, from("p0", 10)).await, Ok(Some(1)));
        assert_eq!(publish(1.0, from("p0", 10)).await, Ok(None), "delivered again");
        assert_eq!(publish(0.5, from("p0", 9)).await, Ok(None), "an older one");
        assert_eq!(publish(2.0, from("p0", 11)).await, Ok(Some(2)));
        assert_eq!(publish(3.0, from("p1", 0)).await, Ok(Some(3)), "each stream counts on its own");
    }
}
