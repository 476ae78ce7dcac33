//! The topic broker: tenant-scoped topics, their logs and state, and fan-out into connection outboxes.
//!
//! One `std::sync::Mutex` per topic guards its log, state and subscriber list. It is never held across
//! an `await`: publishing appends to the log, encodes the update once, and pushes a shared frame into
//! each subscriber's outbox, all without waiting on any socket. Taking the snapshot and registering a
//! subscriber happen under the same lock, so between the snapshot and the first delta nothing is lost
//! and nothing is repeated.

mod encode;
pub mod position;
pub mod topic_log;
pub mod topic_name;
pub mod topic_state;

use crate::{
    telemetry,
    transport::outbox::{Frame, Outbox},
};
use app::protocol::{ControlMessage, Item, ServerMessage, TopicKind};
use position::Position;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use topic_log::{Catchup, Entry, HistoryLimits, TopicLog};
use topic_name::TopicKey;
use topic_state::{StateError, StateLimits, TopicState};

#[derive(Debug, Clone, Copy)]
pub struct BrokerConfig {
    /// Messages kept per topic for resuming subscribers.
    pub history_len: usize,
    /// Age after which a message is no longer kept for resuming subscribers.
    pub history_max_age: Duration,
    /// Bounds on what a topic's state (its snapshot) may hold.
    pub state: StateLimits,
    /// Topics one tenant may have.
    pub max_topics_per_tenant: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    #[error("no topic {0:?}")]
    UnknownTopic(String),
    #[error("topic {topic:?} is a {existing} topic, not {given}", existing = existing.as_str(), given = given.as_str())]
    KindMismatch { topic: String, existing: TopicKind, given: TopicKind },
    #[error("the tenant already has the most topics allowed ({0})")]
    TooManyTopics(usize),
    #[error(transparent)]
    State(#[from] StateError),
}

/// One subscription of one connection.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub connection: u64,
    pub widget: Arc<str>,
    pub outbox: Arc<Outbox>,
}

#[derive(Debug)]
struct Topic {
    key: TopicKey,
    kind: TopicKind,
    inner: Mutex<TopicInner>,
}

#[derive(Debug)]
struct TopicInner {
    log: TopicLog,
    state: TopicState,
    subscribers: Vec<Live>,
}

#[derive(Debug)]
struct Live {
    subscriber: Subscriber,
    prefix: Arc<str>,
}

#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    topics: RwLock<HashMap<TopicKey, Arc<Topic>>>,
    /// Subscriptions to topics that do not exist yet: a dashboard may be set up before its data
    /// flows. They join the topic, with a snapshot, when it is created. Bounded by the connections'
    /// own subscription limits.
    pending: Mutex<HashMap<TopicKey, Vec<Subscriber>>>,
}

/// How a subscription started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// The topic exists: a snapshot (or the replay) is on its way.
    Live(TopicKind),
    /// The topic does not exist yet: the snapshot comes when it is created.
    Pending,
}

/// What a reader needs to catch up, and where it then stands.
#[derive(Debug)]
pub struct Read {
    pub frames: Vec<Frame>,
    pub position: Position,
}

/// Where a reader stands in a topic, to catch up from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom<'a> {
    /// Nowhere yet: a snapshot.
    Start,
    /// A resume token (`epoch.offset`) from an earlier snapshot or update.
    Token(&'a str),
    /// Everything accepted after this time (ms since the Unix epoch).
    Time(i64),
    /// A position in a log the topic no longer has: a `gap`, then a snapshot.
    Lost,
}

impl<'a> ReadFrom<'a> {
    /// From a client's resume token, if it sent one.
    pub fn token(resume_token: Option<&'a str>) -> Self {
        resume_token.map_or(ReadFrom::Start, ReadFrom::Token)
    }
}

impl Broker {
    pub fn new(config: BrokerConfig) -> Self {
        Self { config, topics: RwLock::default(), pending: Mutex::default() }
    }

    /// Creates `key` as a `kind` topic if it does not exist yet.
    pub fn declare(&self, key: &TopicKey, kind: TopicKind) -> Result<(), BrokerError> {
        self.topic_or_create(key, kind).map(drop)
    }

    /// Appends `items` as one message (creating the topic on first use) and hands it to every
    /// subscriber; returns its offset.
    pub fn publish(&self, key: &TopicKey, kind: TopicKind, items: Vec<Item>) -> Result<u64, BrokerError> {
        let published_at = Instant::now();
        let topic = self.topic_or_create(key, kind)?;
        let mut inner = topic.inner.lock().expect("topic lock");
        inner.state.check(&items, &self.config.state)?;
        let ts = now_ms();
        let entry = inner.log.append(ts, |position| encode::update_body(key.name.as_str(), kind, position, ts, &items));
        inner.state.apply(&items, &self.config.state);
        for live in &inner.subscribers {
            let frame = update_frame(&live.subscriber.widget, &live.prefix, kind, &entry, Some(published_at));
            live.subscriber.outbox.push_update(frame);
        }
        metrics::counter!(telemetry::PUBLISHES, "kind" => kind.as_str()).increment(1);
        Ok(entry.offset)
    }

    /// Starts a subscription. From the start (or from a position the history cannot honour) the
    /// subscriber first gets a snapshot; from a good position, exactly the messages it missed.
    pub fn subscribe(&self, key: &TopicKey, subscriber: Subscriber, from: ReadFrom) -> Subscribed {
        // Under the topics lock: a topic cannot be created between this look-up and the pending
        // registration, so no subscriber is left waiting for a topic that already exists.
        let topics = self.topics.read().expect("topics lock");
        let Some(topic) = topics.get(key).cloned() else {
            self.pending.lock().expect("pending lock").entry(key.clone()).or_default().push(subscriber);
            return Subscribed::Pending;
        };
        drop(topics);
        let prefix: Arc<str> = encode::widget_prefix(&subscriber.widget).into();
        let mut inner = topic.inner.lock().expect("topic lock");
        for frame in catch_up(&topic, &inner, &subscriber.widget, &prefix, from, usize::MAX) {
            match frame {
                frame @ Frame::Update { .. } => subscriber.outbox.push_update(frame),
                frame => subscriber.outbox.push(frame),
            }
        }
        inner.subscribers.retain(|l| !same(&l.subscriber, &subscriber));
        inner.subscribers.push(Live { subscriber, prefix });
        Subscribed::Live(topic.kind)
    }

    /// What a subscription of `widget` that stands at `from` needs now, without subscribing (for
    /// polling): the missed updates, or a snapshot (after a `gap` when history cannot bridge it, or
    /// when more than `max_updates` were missed and replaying them would cost more than it is
    /// worth), and the position the reader then stands at. `None` while the topic does not exist:
    /// there is nothing to catch up on.
    pub fn read(&self, key: &TopicKey, widget: &Arc<str>, from: ReadFrom, max_updates: usize) -> Option<Read> {
        let topic = self.topic(key).ok()?;
        let inner = topic.inner.lock().expect("topic lock");
        let prefix: Arc<str> = encode::widget_prefix(widget).into();
        let frames = catch_up(&topic, &inner, widget, &prefix, from, max_updates);
        Some(Read { frames, position: inner.log.position() })
    }

    /// The epoch of `key`'s log, if the topic exists.
    pub fn epoch(&self, key: &TopicKey) -> Option<String> {
        let topic = self.topic(key).ok()?;
        let inner = topic.inner.lock().expect("topic lock");
        Some(inner.log.position().epoch)
    }

    pub fn unsubscribe(&self, key: &TopicKey, connection: u64, widget: &str) {
        let gone = |s: &Subscriber| s.connection == connection && &*s.widget == widget;
        if let Some(waiting) = self.pending.lock().expect("pending lock").get_mut(key) {
            waiting.retain(|s| !gone(s));
        }
        if let Ok(topic) = self.topic(key) {
            let mut inner = topic.inner.lock().expect("topic lock");
            inner.subscribers.retain(|l| !(l.subscriber.connection == connection && &*l.subscriber.widget == widget));
        }
    }

    /// Heals a subscription whose queue overflowed. `series` and `events` lost messages, so they get
    /// a `gap` first; for `metrics` and `collection` the snapshot *is* the coalesced update (latest
    /// value per key or document), so nothing was lost and no gap is announced.
    pub fn resync(&self, key: &TopicKey, subscriber: &Subscriber) -> Result<(), BrokerError> {
        let topic = self.topic(key)?;
        let inner = topic.inner.lock().expect("topic lock");
        let gap = matches!(topic.kind, TopicKind::Series | TopicKind::Events).then(|| {
            metrics::counter!(telemetry::GAPS, "reason" => "slow_subscriber").increment(1);
            gap_frame(&subscriber.widget, "updates were dropped because the client read too slowly")
        });
        let snapshot = snapshot_frame(&topic, &inner, &subscriber.widget);
        subscriber.outbox.end_lag(&subscriber.widget, gap.into_iter().chain([snapshot]));
        Ok(())
    }

    /// A fresh snapshot for one subscription (a manual refresh): it replaces the client's state.
    pub fn refresh(&self, key: &TopicKey, subscriber: &Subscriber) -> Result<(), BrokerError> {
        let topic = self.topic(key)?;
        let inner = topic.inner.lock().expect("topic lock");
        subscriber.outbox.push(snapshot_frame(&topic, &inner, &subscriber.widget));
        Ok(())
    }

    /// Number of topics a tenant has.
    #[cfg(test)]
    fn topic_count(&self, tenant: &topic_name::TenantId) -> usize {
        self.topics.read().expect("topics lock").keys().filter(|k| &k.tenant == tenant).count()
    }

    fn topic(&self, key: &TopicKey) -> Result<Arc<Topic>, BrokerError> {
        let topics = self.topics.read().expect("topics lock");
        topics.get(key).cloned().ok_or_else(|| BrokerError::UnknownTopic(key.name.to_string()))
    }

    fn topic_or_create(&self, key: &TopicKey, kind: TopicKind) -> Result<Arc<Topic>, BrokerError> {
        let existing = self.topic(key).ok();
        let topic = match existing {
            Some(topic) => topic,
            None => {
                let mut topics = self.topics.write().expect("topics lock");
                if !topics.contains_key(key) {
                    let count = topics.keys().filter(|k| k.tenant == key.tenant).count();
                    if count >= self.config.max_topics_per_tenant {
                        return Err(BrokerError::TooManyTopics(self.config.max_topics_per_tenant));
                    }
                }
                let topic = topics.entry(key.clone()).or_insert_with(|| Arc::new(self.new_topic(key, kind))).clone();
                self.admit_pending(&topic);
                topic
            }
        };
        if topic.kind != kind {
            return Err(BrokerError::KindMismatch { topic: key.name.to_string(), existing: topic.kind, given: kind });
        }
        Ok(topic)
    }

    /// Moves the subscribers waiting for a just-created topic into it, each with its (empty)
    /// snapshot. Called under the topics write lock, like `subscribe`'s pending registration.
    fn admit_pending(&self, topic: &Topic) {
        let Some(waiting) = self.pending.lock().expect("pending lock").remove(&topic.key) else { return };
        let mut inner = topic.inner.lock().expect("topic lock");
        for subscriber in waiting {
            subscriber.outbox.push(snapshot_frame(topic, &inner, &subscriber.widget));
            let prefix = encode::widget_prefix(&subscriber.widget).into();
            inner.subscribers.push(Live { subscriber, prefix });
        }
    }

    fn new_topic(&self, key: &TopicKey, kind: TopicKind) -> Topic {
        let limits = HistoryLimits {
            max_entries: self.config.history_len,
            max_age_ms: self.config.history_max_age.as_millis() as i64,
        };
        let inner = TopicInner {
            log: TopicLog::new(new_epoch(), limits),
            state: TopicState::new(kind),
            subscribers: Vec::new(),
        };
        Topic { key: key.clone(), kind, inner: Mutex::new(inner) }
    }
}

/// The frames that bring a reader at `from` up to date, under the topic's lock.
fn catch_up(
    topic: &Topic,
    inner: &TopicInner,
    widget: &Arc<str>,
    prefix: &Arc<str>,
    from: ReadFrom,
    max_updates: usize,
) -> Vec<Frame> {
    let catchup = match from {
        ReadFrom::Start => return vec![snapshot_frame(topic, inner, widget)],
        ReadFrom::Token(token) => match Position::parse(token) {
            Some(position) => inner.log.catch_up(&position, now_ms()),
            None => Catchup::Gap,
        },
        ReadFrom::Time(since) => inner.log.catch_up_since(since, now_ms()),
        ReadFrom::Lost => Catchup::Gap,
    };
    match catchup {
        Catchup::Replay(entries) if entries.len() <= max_updates => {
            metrics::counter!(telemetry::RESUMES, "outcome" => "replayed").increment(1);
            entries.iter().map(|entry| update_frame(widget, prefix, topic.kind, entry, None)).collect()
        }
        Catchup::Replay(_) => {
            // Like a subscriber whose queue overflowed: the kinds that coalesce lose nothing.
            let gap = matches!(topic.kind, TopicKind::Series | TopicKind::Events).then(|| {
                metrics::counter!(telemetry::GAPS, "reason" => "slow_subscriber").increment(1);
                gap_frame(widget, "more updates were missed than are replayed at once")
            });
            gap.into_iter().chain([snapshot_frame(topic, inner, widget)]).collect()
        }
        Catchup::Gap => {
            metrics::counter!(telemetry::RESUMES, "outcome" => "gap").increment(1);
            metrics::counter!(telemetry::GAPS, "reason" => "history").increment(1);
            vec![gap_frame(widget, "resume position no longer in history"), snapshot_frame(topic, inner, widget)]
        }
    }
}

fn same(a: &Subscriber, b: &Subscriber) -> bool {
    a.connection == b.connection && a.widget == b.widget
}

/// One subscriber's frame of a logged message; `published_at` only for live (not replayed) ones.
fn update_frame(
    widget: &Arc<str>,
    prefix: &Arc<str>,
    kind: TopicKind,
    entry: &Entry,
    published_at: Option<Instant>,
) -> Frame {
    Frame::Update {
        widget: widget.clone(),
        prefix: prefix.clone(),
        kind,
        body: entry.body.clone(),
        published_at,
        position: entry.position.clone(),
    }
}

fn snapshot_frame(topic: &Topic, inner: &TopicInner, widget: &Arc<str>) -> Frame {
    let meta = encode::meta(topic.key.name.as_str(), topic.kind, &inner.log.position());
    let position = meta.resume_token.as_str().into();
    let message = ServerMessage::Control(ControlMessage::Snapshot {
        widget_id: widget.to_string(),
        ts: now_ms(),
        series: inner.state.snapshot(),
        meta,
    });
    Frame::Snapshot { widget: widget.clone(), kind: topic.kind, text: message.to_json(), position }
}

fn gap_frame(widget: &Arc<str>, reason: &str) -> Frame {
    let message =
        ServerMessage::Control(ControlMessage::Gap { widget_id: widget.to_string(), reason: reason.to_owned() });
    Frame::Gap { widget: widget.clone(), text: message.to_json() }
}

/// A new random epoch: hex, so a resume token stays `epoch.offset`.
fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::{Metric, Point, Update};
    use topic_name::{TenantId, TopicName};

    fn config() -> BrokerConfig {
        BrokerConfig {
            history_len: 100,
            history_max_age: Duration::from_secs(3600),
            state: StateLimits { series_points: 50, events: 50, metric_keys: 50, documents: 50 },
            max_topics_per_tenant: 3,
        }
    }

    fn key(tenant: &str, name: &str) -> TopicKey {
        TopicKey::new(TenantId::parse(tenant).unwrap(), TopicName::parse(name).unwrap())
    }

    fn t() -> TopicKey {
        key("acme", "t")
    }

    fn broker_with(config: BrokerConfig) -> Broker {
        let b = Broker::new(config);
        b.declare(&t(), TopicKind::Series).unwrap();
        b
    }

    fn broker() -> Broker {
        broker_with(config())
    }

    fn subscriber(widget: &str, capacity: usize) -> Subscriber {
        Subscriber { connection: 1, widget: widget.into(), outbox: Arc::new(Outbox::new(capacity)) }
    }

    fn point(v: f64) -> Vec<Item> {
        vec![Item::Point(Point { ts: v as i64, value: v })]
    }

    fn publish(b: &Broker, v: f64) -> u64 {
        b.publish(&t(), TopicKind::Series, point(v)).unwrap()
    }

    fn messages(outbox: &Outbox) -> Vec<ServerMessage> {
        outbox.take().frames.into_iter().map(|f| serde_json::from_str(&f.into_text()).unwrap()).collect()
    }

    fn update_offsets(messages: &[ServerMessage]) -> Vec<u64> {
        messages
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Update(Update { meta, .. }) => Some(meta.offset),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn subscribe_gets_a_snapshot_then_every_delta_in_order() {
        let b = broker();
        publish(&b, 1.0);
        let sub = subscriber("w", 100);
        b.subscribe(&t(), sub.clone(), ReadFrom::Start);
        assert_eq!(b.publish(&t(), TopicKind::Series, point(2.0)), Ok(2));
        publish(&b, 3.0);
        let got = messages(&sub.outbox);
        let ServerMessage::Control(ControlMessage::Snapshot { series, meta, .. }) = &got[0] else {
            panic!("first message must be a snapshot: {got:?}")
        };
        assert_eq!(series, &point(1.0));
        assert_eq!((meta.offset, meta.topic.as_str()), (1, "t"), "the client sees its own relative name");
        assert_eq!(update_offsets(&got), vec![2, 3]);
    }

    #[test]
    fn tenants_never_see_each_others_topics() {
        let b = broker();
        let globex = key("globex", "t");
        let waiting = Subscriber { connection: 2, ..subscriber("w", 10) };
        assert_eq!(b.subscribe(&globex, waiting.clone(), ReadFrom::Start), Subscribed::Pending);
        b.publish(&globex, TopicKind::Series, point(9.0)).unwrap();
        let acme_sub = subscriber("w", 10);
        b.subscribe(&t(), acme_sub.clone(), ReadFrom::Start);
        publish(&b, 1.0);
        let got = messages(&acme_sub.outbox);
        let ServerMessage::Control(ControlMessage::Snapshot { series, .. }) = &got[0] else { panic!() };
        assert!(series.is_empty(), "globex's point is not in acme's topic");
        assert_eq!(update_offsets(&got), vec![1]);
    }

    #[test]
    fn a_subscription_to_a_topic_not_yet_created_waits_for_it() {
        let b = broker();
        let later = key("acme", "later");
        let sub = subscriber("w", 10);
        assert_eq!(b.subscribe(&later, sub.clone(), ReadFrom::Start), Subscribed::Pending);
        assert!(sub.outbox.take().frames.is_empty());
        let gone = Subscriber { connection: 9, ..subscriber("x", 10) };
        b.subscribe(&later, gone.clone(), ReadFrom::Start);
        b.unsubscribe(&later, 9, "x");
        b.publish(&later, TopicKind::Series, point(1.0)).unwrap();
        let got = messages(&sub.outbox);
        assert!(matches!(&got[0], ServerMessage::Control(ControlMessage::Snapshot { meta, series, .. })
            if meta.offset == 0 && series.is_empty()));
        assert_eq!(update_offsets(&got), vec![1]);
        assert!(gone.outbox.take().frames.is_empty(), "an unsubscribed waiter gets nothing");
    }

    #[test]
    fn resuming_replays_exactly_the_missed_messages() {
        let b = broker();
        let first = subscriber("w", 100);
        b.subscribe(&t(), first.clone(), ReadFrom::Start);
        publish(&b, 1.0);
        let got = messages(&first.outbox);
        let ServerMessage::Update(last) = got.last().unwrap() else { panic!() };
        let token = last.meta.resume_token.clone();
        b.unsubscribe(&t(), 1, "w");
        for v in 2..=6 {
            publish(&b, v as f64);
        }
        let again = subscriber("w", 100);
        b.subscribe(&t(), again.clone(), ReadFrom::Token(&token));
        publish(&b, 7.0);
        let got = messages(&again.outbox);
        assert_eq!(update_offsets(&got), vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(got.len(), 6, "no snapshot when history bridges the gap");
    }

    #[test]
    fn a_token_older_than_history_gets_gap_then_snapshot() {
        let b = broker_with(BrokerConfig { history_len: 2, ..config() });
        for v in 1..=5 {
            publish(&b, v as f64);
        }
        let sub = subscriber("w", 100);
        let epoch = b.topic(&t()).unwrap().inner.lock().unwrap().log.epoch().to_owned();
        b.subscribe(&t(), sub.clone(), ReadFrom::Token(&Position { epoch, offset: 1 }.token()));
        let got = messages(&sub.outbox);
        assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })));
        assert!(matches!(&got[1], ServerMessage::Control(ControlMessage::Snapshot { meta, .. }) if meta.offset == 5));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_forged_token_is_treated_as_a_gap() {
        let b = broker();
        let sub = subscriber("w", 10);
        b.subscribe(&t(), sub.clone(), ReadFrom::Token("not-a-token"));
        let got = messages(&sub.outbox);
        assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })));
    }

    #[test]
    fn an_overflowing_series_subscriber_gets_gap_and_snapshot_without_holding_back_others() {
        let b = broker();
        let slow = subscriber("slow", 2);
        let fast = Subscriber { connection: 2, ..subscriber("fast", 100) };
        b.subscribe(&t(), slow.clone(), ReadFrom::Start);
        b.subscribe(&t(), fast.clone(), ReadFrom::Start);
        for v in 1..=10 {
            publish(&b, v as f64);
        }
        assert_eq!(update_offsets(&messages(&fast.outbox)), (1..=10).collect::<Vec<_>>());
        let batch = slow.outbox.take();
        assert_eq!(batch.lagging, vec![slow.widget.clone()]);
        b.resync(&t(), &slow).unwrap();
        publish(&b, 11.0);
        let got = messages(&slow.outbox);
        assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })));
        assert!(matches!(&got[1], ServerMessage::Control(ControlMessage::Snapshot { meta, .. }) if meta.offset == 10));
        assert_eq!(update_offsets(&got), vec![11]);
    }

    #[test]
    fn an_overflowing_metrics_subscriber_gets_the_coalesced_state_without_a_gap() {
        let b = broker();
        let kpis = key("acme", "kpis");
        let slow = subscriber("kpi", 2);
        b.declare(&kpis, TopicKind::Metrics).unwrap();
        b.subscribe(&kpis, slow.clone(), ReadFrom::Start);
        for v in 1..=10 {
            let items = vec![Item::Metric(Metric { key: format!("k{}", v % 3), value: v as f64 })];
            b.publish(&kpis, TopicKind::Metrics, items).unwrap();
        }
        let lagging = slow.outbox.take().lagging;
        assert_eq!(lagging.len(), 1);
        b.resync(&kpis, &slow).unwrap();
        let got = messages(&slow.outbox);
        assert_eq!(got.len(), 1, "no gap: latest value per key is all a KPI tile needs");
        let ServerMessage::Control(ControlMessage::Snapshot { series, .. }) = &got[0] else { panic!() };
        let latest: Vec<(String, f64)> = series
            .iter()
            .map(|i| match i {
                Item::Metric(m) => (m.key.clone(), m.value),
                _ => panic!(),
            })
            .collect();
        assert_eq!(latest, vec![("k0".into(), 9.0), ("k1".into(), 10.0), ("k2".into(), 8.0)]);
    }

    #[test]
    fn a_topic_keeps_its_kind_and_tenants_their_topic_quota() {
        let b = broker();
        assert!(matches!(
            b.publish(&t(), TopicKind::Metrics, vec![]),
            Err(BrokerError::KindMismatch { existing: TopicKind::Series, .. })
        ));
        b.declare(&key("acme", "b"), TopicKind::Series).unwrap();
        b.declare(&key("acme", "c"), TopicKind::Series).unwrap();
        assert_eq!(b.declare(&key("acme", "d"), TopicKind::Series), Err(BrokerError::TooManyTopics(3)));
        assert!(b.declare(&key("globex", "d"), TopicKind::Series).is_ok(), "the quota is per tenant");
        assert_eq!(b.topic_count(&TenantId::parse("acme").unwrap()), 3);
    }

    #[test]
    fn a_refused_publish_leaves_no_trace() {
        let b = broker();
        let wrong = vec![Item::Metric(Metric { key: "k".into(), value: 1.0 })];
        assert!(matches!(b.publish(&t(), TopicKind::Series, wrong), Err(BrokerError::State(_))));
        assert_eq!(publish(&b, 1.0), 1, "the offset did not move");
    }

    #[test]
    fn refresh_sends_a_fresh_snapshot() {
        let b = broker();
        publish(&b, 1.0);
        let sub = subscriber("w", 10);
        b.subscribe(&t(), sub.clone(), ReadFrom::Start);
        publish(&b, 2.0);
        b.refresh(&t(), &sub).unwrap();
        let got = messages(&sub.outbox);
        assert!(matches!(&got[2], ServerMessage::Control(ControlMessage::Snapshot { meta, series, .. })
            if meta.offset == 2 && series.len() == 2));
    }
}
