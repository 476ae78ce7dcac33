//! The topic broker: tenant-scoped topics, their logs and state, and fan-out into connection outboxes.
//!
//! One `std::sync::Mutex` per topic guards its log, state and subscriber list. It is never held across
//! an `await`: publishing appends to the log, encodes the update once, and pushes a shared frame into
//! each subscriber's outbox, all without waiting on any socket. Taking the snapshot and registering a
//! subscriber happen under the same lock, so between the snapshot and the first delta nothing is lost
//! and nothing is repeated.
//!
//! Memory is bounded whatever publishers and viewers do: a topic's history by count, bytes and age,
//! its state by count and bytes, a tenant's topics by number and their history and state by bytes
//! (see [`usage`]), and subscriptions waiting for topics that do not exist yet per tenant (see
//! [`waiting`]). A periodic [`Broker::sweep`] ages history out of quiet topics and retires topics
//! nobody has published to or followed for `topic_idle`; their epoch ends with them, so a later
//! subscriber that held a position gets a `gap` and a snapshot.
//!
//! Lock order: the topics map, then the waiting list, then one topic.

mod encode;
pub mod engine;
pub mod position;
pub mod redis;
pub mod replica;
pub mod sweep;
pub mod topic_log;
pub mod topic_name;
pub mod topic_state;
pub mod usage;
pub mod waiting;

use crate::{
    telemetry,
    transport::outbox::{Frame, Outbox},
};
use app::protocol::{Item, TopicKind};
use position::Position;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use topic_log::{Catchup, Entry, HistoryLimits, TopicLog};
use topic_name::{TenantId, TopicKey};
use topic_state::{StateError, StateLimits, TopicState};
use usage::{TenantUsage, Usage};
use waiting::{StartAt, Waiting, WaitingList};

#[derive(Debug, Clone, Copy)]
pub struct BrokerConfig {
    /// Messages kept per topic for resuming subscribers.
    pub history_len: usize,
    /// Age after which a message is no longer kept for resuming subscribers.
    pub history_max_age: Duration,
    /// Bytes of history one topic may keep.
    pub history_max_bytes: usize,
    /// Bytes of history all of one tenant's topics may keep; past it, the topic being written to
    /// forgets its oldest messages.
    pub tenant_history_max_bytes: usize,
    /// Bytes of state (snapshots) all of one tenant's topics may hold; a publish that would grow it
    /// past this is refused.
    pub tenant_state_max_bytes: usize,
    /// Bounds on what a topic's state (its snapshot) may hold.
    pub state: StateLimits,
    /// Topics one tenant may have.
    pub max_topics_per_tenant: usize,
    /// Subscriptions to not-yet-existing topics one tenant may have waiting.
    pub max_waiting_per_tenant: usize,
    /// A topic without subscribers that nobody has published to for this long is retired.
    pub topic_idle: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    #[error("no topic {0:?}")]
    UnknownTopic(String),
    #[error("topic {topic:?} is a {existing} topic, not {given}", existing = existing.as_str(), given = given.as_str())]
    KindMismatch { topic: String, existing: TopicKind, given: TopicKind },
    #[error("the tenant already has the most topics allowed ({0})")]
    TooManyTopics(usize),
    #[error("the tenant already has the most subscriptions waiting for topics that do not exist yet ({0})")]
    TooManyWaiting(usize),
    #[error("the tenant's topics would hold more than {0} bytes")]
    TenantFull(usize),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("messages cannot be taken now: {0}")]
    Unavailable(String),
}

impl BrokerError {
    /// The label of the denial metric for errors that are limits.
    pub fn limit_label(&self) -> Option<&'static str> {
        match self {
            BrokerError::TooManyTopics(_) => Some("topics_per_tenant"),
            BrokerError::TooManyWaiting(_) => Some("waiting_subscriptions_per_tenant"),
            BrokerError::TenantFull(_) => Some("tenant_state_bytes"),
            BrokerError::State(StateError::Full { .. }) => Some("topic_state"),
            _ => None,
        }
    }
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
    usage: Arc<TenantUsage>,
    inner: Mutex<TopicInner>,
}

#[derive(Debug)]
struct TopicInner {
    log: TopicLog,
    state: TopicState,
    subscribers: Vec<Live>,
    /// When it was last published to, subscribed to, left or read (ms since the Unix epoch).
    last_active: i64,
    /// Set when the sweep removed the topic: a publisher that found it just before must look again.
    retired: bool,
    /// The snapshot body (see `encode::update_body`) at one offset: a refresh flood or many
    /// subscribers joining at once encode a large state once per position, not once each.
    snapshot: Option<(u64, Arc<str>)>,
}

impl TopicInner {
    fn is_idle(&self, now: i64, idle_ms: i64) -> bool {
        self.subscribers.is_empty() && now.saturating_sub(self.last_active) >= idle_ms
    }
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
    tenants: Mutex<HashMap<TenantId, Arc<TenantUsage>>>,
    waiting: Mutex<WaitingList>,
    /// Set when an engine elsewhere orders the messages (see [`Broker::share`]): how to ask it for
    /// a topic this node does not hold.
    loader: OnceLock<Loader>,
}

struct Loader(Box<dyn Fn(&TopicKey) + Send + Sync>);

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loader")
    }
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

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// History entries that aged out.
    pub expired: usize,
    /// Topics retired for being idle.
    pub retired: usize,
}

impl Broker {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            topics: RwLock::default(),
            tenants: Mutex::default(),
            waiting: Mutex::default(),
            loader: OnceLock::new(),
        }
    }

    /// Creates `key` as a `kind` topic if it does not exist yet (refused, like `publish`, when the
    /// broker is a copy of another engine).
    pub fn declare(&self, key: &TopicKey, kind: TopicKind) -> Result<(), BrokerError> {
        self.refuse_if_shared()?;
        self.topic_or_create(key, kind).map(drop)
    }

    fn refuse_if_shared(&self) -> Result<(), BrokerError> {
        match self.loader.get() {
            Some(_) => {
                Err(BrokerError::Unavailable("this node's topics are kept by the engine: publish through it".into()))
            }
            None => Ok(()),
        }
    }

    /// Appends `items` as one message (creating the topic on first use) and hands it to every
    /// subscriber; returns its offset. This is what [`engine::MemoryEngine`] does; a broker that
    /// is a copy of another engine refuses it, since the message would reach this node only.
    pub fn publish(&self, key: &TopicKey, kind: TopicKind, items: Vec<Item>) -> Result<u64, BrokerError> {
        self.refuse_if_shared()?;
        let published_at = Instant::now();
        loop {
            let topic = self.topic_or_create(key, kind)?;
            let mut inner = topic.inner.lock().expect("topic lock");
            if inner.retired {
                continue;
            }
            return self.publish_into(&topic, &mut inner, &items, published_at);
        }
    }

    fn publish_into(
        &self,
        topic: &Topic,
        inner: &mut TopicInner,
        items: &[Item],
        published_at: Instant,
    ) -> Result<u64, BrokerError> {
        let state_before = inner.state.bytes();
        let state_after = inner.state.check(items, &self.config.state)?;
        let growth = state_after.saturating_sub(state_before);
        if growth > 0 && topic.usage.state_bytes() + growth > self.config.tenant_state_max_bytes {
            return Err(BrokerError::TenantFull(self.config.tenant_state_max_bytes));
        }
        let offset = self.append(topic, inner, now_ms(), items, Some(published_at));
        metrics::counter!(telemetry::PUBLISHES, "kind" => topic.kind.as_str()).increment(1);
        Ok(offset)
    }

    /// Logs a message that passed the checks at the next offset, applies it to the state and hands
    /// it to every subscriber; `published_at` only for live messages, for the latency metric.
    fn append(
        &self,
        topic: &Topic,
        inner: &mut TopicInner,
        ts: i64,
        items: &[Item],
        published_at: Option<Instant>,
    ) -> u64 {
        let (history_before, state_before) = (inner.log.bytes(), inner.state.bytes());
        let (name, kind) = (topic.key.name.as_str(), topic.kind);
        let entry = inner.log.append(ts, |position| encode::update_body(name, kind, position, ts, items));
        inner.state.apply(items, &self.config.state);
        inner.last_active = now_ms();
        inner.snapshot = None;
        topic.usage.history_resized(history_before, inner.log.bytes());
        topic.usage.state_resized(state_before, inner.state.bytes());
        self.hold_tenant_history(topic, inner);
        for live in &inner.subscribers {
            let frame = update_frame(&live.subscriber.widget, &live.prefix, kind, &entry, published_at);
            live.subscriber.outbox.push_update(frame);
        }
        entry.offset
    }

    /// A tenant over its history budget: the topic being written to forgets its oldest messages
    /// (possibly all of them; its state, and so every snapshot, is untouched).
    fn hold_tenant_history(&self, topic: &Topic, inner: &mut TopicInner) {
        let max = self.config.tenant_history_max_bytes;
        let mut dropped = 0u64;
        while topic.usage.history_bytes() > max {
            let before = inner.log.bytes();
            if !inner.log.drop_oldest() {
                break;
            }
            topic.usage.history_resized(before, inner.log.bytes());
            dropped += 1;
        }
        if dropped > 0 {
            metrics::counter!(telemetry::HISTORY_TRIMMED, "reason" => "tenant_bytes").increment(dropped);
        }
    }

    /// Starts a subscription. From the start (or from a position the history cannot honour) the
    /// subscriber first gets a snapshot; from a good position, exactly the messages it missed.
    pub fn subscribe(&self, key: &TopicKey, subscriber: Subscriber, from: ReadFrom) -> Result<Subscribed, BrokerError> {
        // Under the topics lock: a topic cannot be created between this look-up and the waiting
        // registration, so no subscriber is left waiting for a topic that already exists; nor can
        // it be retired before this subscriber is in it.
        let topics = self.topics.read().expect("topics lock");
        let Some(topic) = topics.get(key).cloned() else {
            let max = self.config.max_waiting_per_tenant;
            let waiting = Waiting { subscriber, from: StartAt::from(from) };
            let added = self.waiting.lock().expect("waiting lock").add(key, waiting, max);
            drop(topics);
            if !added {
                return Err(BrokerError::TooManyWaiting(max));
            }
            // Outside the locks: the engine takes its own, then ours, when the topic arrives.
            if let Some(loader) = self.loader.get() {
                (loader.0)(key);
            }
            return Ok(Subscribed::Pending);
        };
        let mut inner = topic.inner.lock().expect("topic lock");
        drop(topics);
        let prefix: Arc<str> = encode::widget_prefix(&subscriber.widget).into();
        for frame in catch_up(&topic, &mut inner, &subscriber.widget, &prefix, from, usize::MAX) {
            match frame {
                frame @ Frame::Update { .. } => subscriber.outbox.push_update(frame),
                frame => subscriber.outbox.push(frame),
            }
        }
        inner.subscribers.retain(|l| !same(&l.subscriber, &subscriber));
        inner.subscribers.push(Live { subscriber, prefix });
        inner.last_active = now_ms();
        Ok(Subscribed::Live(topic.kind))
    }

    /// What a subscription of `widget` that stands at `from` needs now, without subscribing (for
    /// polling): the missed updates, or a snapshot (after a `gap` when history cannot bridge it, or
    /// when more than `max_updates` were missed and replaying them would cost more than it is
    /// worth), and the position the reader then stands at. `None` while the topic does not exist:
    /// there is nothing to catch up on.
    pub fn read(&self, key: &TopicKey, widget: &Arc<str>, from: ReadFrom, max_updates: usize) -> Option<Read> {
        let topic = self.topic(key).ok()?;
        let mut inner = topic.inner.lock().expect("topic lock");
        let prefix: Arc<str> = encode::widget_prefix(widget).into();
        let frames = catch_up(&topic, &mut inner, widget, &prefix, from, max_updates);
        inner.last_active = now_ms();
        Some(Read { frames, position: inner.log.position() })
    }

    /// The epoch of `key`'s log, if the topic exists.
    pub fn epoch(&self, key: &TopicKey) -> Option<String> {
        let topic = self.topic(key).ok()?;
        let inner = topic.inner.lock().expect("topic lock");
        Some(inner.log.position().epoch)
    }

    /// Ends a subscription, live or waiting; what it held goes with it.
    pub fn unsubscribe(&self, key: &TopicKey, connection: u64, widget: &str) {
        self.waiting.lock().expect("waiting lock").remove(key, connection, widget);
        if let Ok(topic) = self.topic(key) {
            let mut inner = topic.inner.lock().expect("topic lock");
            inner.subscribers.retain(|l| !(l.subscriber.connection == connection && &*l.subscriber.widget == widget));
            inner.last_active = now_ms();
        }
    }

    /// Heals a subscription whose queue overflowed. `series` and `events` lost messages, so they get
    /// a `gap` first; for `metrics` and `collection` the snapshot *is* the coalesced update (latest
    /// value per key or document), so nothing was lost and no gap is announced.
    pub fn resync(&self, key: &TopicKey, subscriber: &Subscriber) -> Result<(), BrokerError> {
        let topic = self.topic(key)?;
        let mut inner = topic.inner.lock().expect("topic lock");
        let gap = matches!(topic.kind, TopicKind::Series | TopicKind::Events).then(|| {
            metrics::counter!(telemetry::GAPS, "reason" => "slow_subscriber").increment(1);
            gap_frame(&subscriber.widget, "updates were dropped because the client read too slowly")
        });
        let snapshot = snapshot_frame(&topic, &mut inner, &subscriber.widget);
        subscriber.outbox.end_lag(&subscriber.widget, gap.into_iter().chain([snapshot]));
        Ok(())
    }

    /// A fresh snapshot for one subscription (a manual refresh): it replaces the client's state.
    pub fn refresh(&self, key: &TopicKey, subscriber: &Subscriber) -> Result<(), BrokerError> {
        let topic = self.topic(key)?;
        let mut inner = topic.inner.lock().expect("topic lock");
        subscriber.outbox.push(snapshot_frame(&topic, &mut inner, &subscriber.widget));
        Ok(())
    }

    /// Ages history out of every topic and retires the idle ones (those `keep` does not name) as of
    /// time `now`, then updates the usage gauges.
    pub fn sweep(&self, now: i64, keep: impl Fn(&TopicKey) -> bool) -> Swept {
        let idle_ms = self.config.topic_idle.as_millis() as i64;
        let mut swept = Swept::default();
        let mut idle = Vec::new();
        for topic in self.topics.read().expect("topics lock").values() {
            let mut inner = topic.inner.lock().expect("topic lock");
            let before = inner.log.bytes();
            swept.expired += inner.log.expire(now);
            topic.usage.history_resized(before, inner.log.bytes());
            if inner.is_idle(now, idle_ms) && !keep(&topic.key) {
                idle.push(topic.key.clone());
            }
        }
        if !idle.is_empty() {
            let mut topics = self.topics.write().expect("topics lock");
            for key in idle {
                let Some(topic) = topics.get(&key).cloned() else { continue };
                let mut inner = topic.inner.lock().expect("topic lock");
                if !inner.is_idle(now, idle_ms) {
                    continue;
                }
                inner.retired = true;
                topic.usage.topic_removed(inner.log.bytes(), inner.state.bytes());
                topics.remove(&key);
                swept.retired += 1;
            }
        }
        metrics::counter!(telemetry::HISTORY_TRIMMED, "reason" => "age").increment(swept.expired as u64);
        metrics::counter!(telemetry::TOPICS_RETIRED).increment(swept.retired as u64);
        self.record_usage();
        swept
    }

    /// What `tenant`'s topics cost now.
    pub fn usage(&self, tenant: &TenantId) -> Usage {
        let waiting = self.waiting.lock().expect("waiting lock").count(tenant);
        let tenants = self.tenants.lock().expect("tenants lock");
        tenants.get(tenant).map_or(Usage { waiting, ..Usage::default() }, |usage| usage.snapshot(waiting))
    }

    /// Topics anyone waits for, whatever the tenant.
    pub fn waiting_topics(&self) -> usize {
        self.waiting.lock().expect("waiting lock").topics()
    }

    /// The topics subscriptions wait for.
    pub fn awaited_topics(&self) -> Vec<TopicKey> {
        self.waiting.lock().expect("waiting lock").keys()
    }

    /// Whether this node holds `key`.
    pub fn holds(&self, key: &TopicKey) -> bool {
        self.topics.read().expect("topics lock").contains_key(key)
    }

    fn record_usage(&self) {
        let tenants: Vec<TenantId> = self.tenants.lock().expect("tenants lock").keys().cloned().collect();
        for tenant in tenants {
            let usage = self.usage(&tenant);
            let label = tenant.to_string();
            metrics::gauge!(telemetry::TOPICS, "tenant" => label.clone()).set(usage.topics as f64);
            metrics::gauge!(telemetry::HISTORY_BYTES, "tenant" => label.clone()).set(usage.history_bytes as f64);
            metrics::gauge!(telemetry::STATE_BYTES, "tenant" => label.clone()).set(usage.state_bytes as f64);
            metrics::gauge!(telemetry::WAITING_SUBSCRIPTIONS, "tenant" => label).set(usage.waiting as f64);
        }
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
                match topics.get(key) {
                    Some(topic) => topic.clone(),
                    None => {
                        let usage = self.tenant_usage(&key.tenant);
                        if usage.topics() >= self.config.max_topics_per_tenant {
                            return Err(BrokerError::TooManyTopics(self.config.max_topics_per_tenant));
                        }
                        usage.topic_added();
                        let topic = Arc::new(self.new_topic(key, kind, usage));
                        topics.insert(key.clone(), topic.clone());
                        self.admit_waiting(&topic);
                        topic
                    }
                }
            }
        };
        if topic.kind != kind {
            return Err(BrokerError::KindMismatch { topic: key.name.to_string(), existing: topic.kind, given: kind });
        }
        Ok(topic)
    }

    fn tenant_usage(&self, tenant: &TenantId) -> Arc<TenantUsage> {
        self.tenants.lock().expect("tenants lock").entry(tenant.clone()).or_default().clone()
    }

    /// Moves the subscribers waiting for a topic that just appeared into it, each caught up from
    /// where it stood: a snapshot from the start, a `gap` and a snapshot from a position in an
    /// earlier life of the topic, the missed messages from a position in a topic another node
    /// created. Called under the topics write lock, like `subscribe`'s waiting registration.
    fn admit_waiting(&self, topic: &Topic) {
        let waiting = self.waiting.lock().expect("waiting lock").take(&topic.key);
        if waiting.is_empty() {
            return;
        }
        let mut inner = topic.inner.lock().expect("topic lock");
        for Waiting { subscriber, from } in waiting {
            let prefix: Arc<str> = encode::widget_prefix(&subscriber.widget).into();
            for frame in catch_up(topic, &mut inner, &subscriber.widget, &prefix, from.as_read_from(), usize::MAX) {
                match frame {
                    frame @ Frame::Update { .. } => subscriber.outbox.push_update(frame),
                    frame => subscriber.outbox.push(frame),
                }
            }
            inner.subscribers.push(Live { subscriber, prefix });
        }
    }

    fn history_limits(&self) -> HistoryLimits {
        HistoryLimits {
            max_entries: self.config.history_len,
            max_age_ms: self.config.history_max_age.as_millis() as i64,
            max_bytes: self.config.history_max_bytes,
        }
    }

    fn new_topic(&self, key: &TopicKey, kind: TopicKind, usage: Arc<TenantUsage>) -> Topic {
        let inner = TopicInner {
            log: TopicLog::new(new_epoch(), self.history_limits()),
            state: TopicState::new(kind),
            subscribers: Vec::new(),
            last_active: now_ms(),
            retired: false,
            snapshot: None,
        };
        Topic { key: key.clone(), kind, usage, inner: Mutex::new(inner) }
    }
}

/// The frames that bring a reader at `from` up to date, under the topic's lock.
fn catch_up(
    topic: &Topic,
    inner: &mut TopicInner,
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

/// One subscriber's snapshot: its prefix and the topic's snapshot body, encoded at most once per
/// position.
fn snapshot_frame(topic: &Topic, inner: &mut TopicInner, widget: &Arc<str>) -> Frame {
    let position = inner.log.position();
    let body = match &inner.snapshot {
        Some((offset, body)) if *offset == position.offset => body.clone(),
        _ => {
            let items = inner.state.snapshot();
            let body: Arc<str> =
                encode::update_body(topic.key.name.as_str(), topic.kind, &position, now_ms(), &items).into();
            inner.snapshot = Some((position.offset, body.clone()));
            body
        }
    };
    let text = encode::snapshot_prefix(widget) + &body;
    Frame::Snapshot { widget: widget.clone(), kind: topic.kind, text, position: position.token().into() }
}

fn gap_frame(widget: &Arc<str>, reason: &str) -> Frame {
    let message = app::protocol::ServerMessage::Control(app::protocol::ControlMessage::Gap {
        widget_id: widget.to_string(),
        reason: reason.to_owned(),
    });
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
    use app::protocol::{ControlMessage, Metric, Point, ServerMessage, Update};
    use topic_name::TopicName;

    fn config() -> BrokerConfig {
        BrokerConfig {
            history_len: 100,
            history_max_age: Duration::from_secs(3600),
            history_max_bytes: 1 << 20,
            tenant_history_max_bytes: 1 << 22,
            tenant_state_max_bytes: 1 << 22,
            state: StateLimits { series_points: 50, events: 50, metric_keys: 50, documents: 50, max_bytes: 1 << 20 },
            max_topics_per_tenant: 3,
            max_waiting_per_tenant: 100,
            topic_idle: Duration::from_secs(600),
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
        b.subscribe(&t(), sub.clone(), ReadFrom::Start).unwrap();
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
        assert_eq!(b.subscribe(&globex, waiting.clone(), ReadFrom::Start), Ok(Subscribed::Pending));
        b.publish(&globex, TopicKind::Series, point(9.0)).unwrap();
        let acme_sub = subscriber("w", 10);
        b.subscribe(&t(), acme_sub.clone(), ReadFrom::Start).unwrap();
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
        assert_eq!(b.subscribe(&later, sub.clone(), ReadFrom::Start), Ok(Subscribed::Pending));
        assert!(sub.outbox.take().frames.is_empty());
        let gone = Subscriber { connection: 9, ..subscriber("x", 10) };
        b.subscribe(&later, gone.clone(), ReadFrom::Start).unwrap();
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
        b.subscribe(&t(), first.clone(), ReadFrom::Start).unwrap();
        publish(&b, 1.0);
        let got = messages(&first.outbox);
        let ServerMessage::Update(last) = got.last().unwrap() else { panic!() };
        let token = last.meta.resume_token.clone();
        b.unsubscribe(&t(), 1, "w");
        for v in 2..=6 {
            publish(&b, v as f64);
        }
        let again = subscriber("w", 100);
        b.subscribe(&t(), again.clone(), ReadFrom::Token(&token)).unwrap();
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
        b.subscribe(&t(), sub.clone(), ReadFrom::Token(&Position { epoch, offset: 1 }.token())).unwrap();
        let got = messages(&sub.outbox);
        assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })));
        assert!(matches!(&got[1], ServerMessage::Control(ControlMessage::Snapshot { meta, .. }) if meta.offset == 5));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_forged_token_is_treated_as_a_gap() {
        let b = broker();
        let sub = subscriber("w", 10);
        b.subscribe(&t(), sub.clone(), ReadFrom::Token("not-a-token")).unwrap();
        let got = messages(&sub.outbox);
        assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })));
    }

    #[test]
    fn an_overflowing_series_subscriber_gets_gap_and_snapshot_without_holding_back_others() {
        let b = broker();
        let slow = subscriber("slow", 2);
        let fast = Subscriber { connection: 2, ..subscriber("fast", 100) };
        b.subscribe(&t(), slow.clone(), ReadFrom::Start).unwrap();
        b.subscribe(&t(), fast.clone(), ReadFrom::Start).unwrap();
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
        b.subscribe(&kpis, slow.clone(), ReadFrom::Start).unwrap();
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
        assert_eq!(b.usage(&TenantId::parse("acme").unwrap()).topics, 3);
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
        b.subscribe(&t(), sub.clone(), ReadFrom::Start).unwrap();
        publish(&b, 2.0);
        b.refresh(&t(), &sub).unwrap();
        let got = messages(&sub.outbox);
        assert!(matches!(&got[2], ServerMessage::Control(ControlMessage::Snapshot { meta, series, .. })
            if meta.offset == 2 && series.len() == 2));
    }

    fn acme_tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn blob(v: usize, bytes: usize) -> Vec<Item> {
        let event = app::protocol::Event {
            id: v.to_string(),
            ts: 1,
            event_type: "notification".into(),
            level: app::protocol::Level::Info,
            title: "x".repeat(bytes),
            body: None,
            severity: None,
            scheduled_at: None,
            data: None,
        };
        vec![Item::Event(event)]
    }

    #[test]
    fn a_tenants_history_is_bounded_by_bytes_across_its_topics() {
        let b = Broker::new(BrokerConfig {
            tenant_history_max_bytes: 100_000,
            history_max_bytes: 60_000,
            max_topics_per_tenant: 10,
            ..config()
        });
        for i in 0..400 {
            let topic = key("acme", &format!("log/{}", i % 5));
            b.publish(&topic, TopicKind::Events, blob(i, 2_000)).unwrap();
        }
        let usage = b.usage(&acme_tenant());
        assert!(usage.history_bytes <= 100_000, "{usage:?}");
        assert!(usage.history_bytes > 50_000, "only what was over the budget went: {usage:?}");
        let kept: usize =
            (0..5).map(|i| b.topic(&key("acme", &format!("log/{i}"))).unwrap().inner.lock().unwrap().log.bytes()).sum();
        assert_eq!(kept, usage.history_bytes, "the counters match the logs");
    }

    #[test]
    fn a_tenants_state_is_bounded_by_bytes_across_its_topics() {
        let b = Broker::new(BrokerConfig { tenant_state_max_bytes: 30_000, max_topics_per_tenant: 10, ..config() });
        let mut refused = 0;
        for i in 0..40 {
            let topic = key("acme", &format!("log/{}", i % 8));
            if let Err(e) = b.publish(&topic, TopicKind::Events, blob(i, 2_000)) {
                assert_eq!(e, BrokerError::TenantFull(30_000));
                assert_eq!(e.limit_label(), Some("tenant_state_bytes"));
                refused += 1;
            }
        }
        assert!(refused > 0);
        assert!(b.usage(&acme_tenant()).state_bytes <= 30_000);
        assert!(b.publish(&key("globex", "log/0"), TopicKind::Events, blob(1, 2_000)).is_ok(), "per tenant");
    }

    #[test]
    fn the_sweep_ages_out_history_of_quiet_topics() {
        let b = broker_with(BrokerConfig { history_max_age: Duration::from_secs(60), ..config() });
        for v in 1..=5 {
            publish(&b, v as f64);
        }
        assert!(b.usage(&acme_tenant()).history_bytes > 0);
        let swept = b.sweep(now_ms() + 61_000, |_| false);
        assert_eq!(swept, Swept { expired: 5, retired: 0 });
        assert_eq!(b.usage(&acme_tenant()).history_bytes, 0, "the memory is back");
        assert!(b.usage(&acme_tenant()).state_bytes > 0, "the state stays: a snapshot still shows the chart");
    }

    #[test]
    fn idle_topics_are_retired_and_a_later_subscriber_gets_gap_and_snapshot() {
        let b = broker();
        let followed = key("acme", "followed");
        let kept = key("acme", "presence/online");
        for topic in [&followed, &kept] {
            b.declare(topic, TopicKind::Series).unwrap();
        }
        let sub = subscriber("w", 10);
        b.subscribe(&followed, sub.clone(), ReadFrom::Start).unwrap();
        publish(&b, 1.0);
        let token = b.topic(&t()).unwrap().inner.lock().unwrap().log.position().token();
        let later = now_ms() + 601_000;
        let swept = b.sweep(later, |k| k.name.as_str().starts_with("presence/"));
        assert_eq!(swept.retired, 1, "only `t`: `followed` has a subscriber, presence is kept");
        assert_eq!(b.usage(&acme_tenant()).topics, 2);
        assert!(b.topic(&t()).is_err());

        let back = Subscriber { connection: 7, ..subscriber("w", 10) };
        assert_eq!(b.subscribe(&t(), back.clone(), ReadFrom::Token(&token)), Ok(Subscribed::Pending));
        publish(&b, 2.0);
        let got = messages(&back.outbox);
        assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })), "{got:?}");
        assert!(matches!(&got[1], ServerMessage::Control(ControlMessage::Snapshot { meta, series, .. })
            if meta.offset == 0 && series.is_empty()));
        assert_eq!(update_offsets(&got), vec![1]);
        assert_ne!(Position::parse(&token).unwrap().epoch, b.epoch(&t()).unwrap(), "a new epoch");

        b.unsubscribe(&followed, 1, "w");
        assert_eq!(b.sweep(now_ms(), |_| false).retired, 0, "just left: idle only after `topic_idle`");
        assert_eq!(b.sweep(now_ms() + 601_000, |k| k == &kept).retired, 1, "`t` is followed again");
    }

    #[test]
    fn waiting_subscriptions_are_freed_and_limited_per_tenant() {
        let b = Broker::new(BrokerConfig { max_waiting_per_tenant: 50, ..config() });
        let made_up = |i: usize| key("acme", &format!("made-up/{i}"));
        for i in 0..50 {
            let sub = Subscriber { connection: 1, ..subscriber(&format!("w{i}"), 10) };
            assert_eq!(b.subscribe(&made_up(i), sub, ReadFrom::Start), Ok(Subscribed::Pending));
        }
        let one_more = b.subscribe(&made_up(50), subscriber("w50", 10), ReadFrom::Start);
        assert_eq!(one_more, Err(BrokerError::TooManyWaiting(50)));
        assert_eq!(b.usage(&acme_tenant()).waiting, 50);
        for i in 0..50 {
            b.unsubscribe(&made_up(i), 1, &format!("w{i}"));
        }
        assert_eq!((b.usage(&acme_tenant()).waiting, b.waiting_topics()), (0, 0), "nothing is left behind");
    }

    #[test]
    fn snapshots_are_encoded_once_per_position() {
        let b = broker();
        publish(&b, 1.0);
        let (one, two) = (subscriber("a", 10), Subscriber { connection: 2, ..subscriber("b", 10) });
        b.subscribe(&t(), one.clone(), ReadFrom::Start).unwrap();
        let cached = b.topic(&t()).unwrap().inner.lock().unwrap().snapshot.clone().unwrap();
        b.refresh(&t(), &one).unwrap();
        b.subscribe(&t(), two.clone(), ReadFrom::Start).unwrap();
        let again = b.topic(&t()).unwrap().inner.lock().unwrap().snapshot.clone().unwrap();
        assert!(Arc::ptr_eq(&cached.1, &again.1), "the same encoding served all three");
        publish(&b, 2.0);
        assert!(b.topic(&t()).unwrap().inner.lock().unwrap().snapshot.is_none(), "a publish drops it");
        let got = messages(&two.outbox);
        assert!(
            matches!(&got[0], ServerMessage::Control(ControlMessage::Snapshot { widget_id, .. }) if widget_id == "b")
        );
    }
}
