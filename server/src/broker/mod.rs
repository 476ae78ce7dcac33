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

mod catch_up;
pub mod cluster;
mod encode;
pub mod engine;
mod frame_texts;
pub mod position;
pub mod redis;
pub mod replica;
pub mod sweep;
pub mod topic_log;
pub mod topic_state;
pub mod usage;
pub mod waiting;

use crate::permissions::mask::Hidden;
use crate::topic_name::{TenantId, TopicKey};
use crate::{
    clock::now_ms,
    outbox::{Frame, Outbox},
    telemetry,
};
use catch_up::{catch_up, gap_frame, snapshot_frame, update_frame};
use engine::Published;
use frame_texts::FrameTexts;
use position::Position;
use protocol::{Item, TopicKind};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};
use topic_log::{Catchup, Entry, HistoryLimits, TopicLog};
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
    /// The fields its user may not see (topic rules); they are taken out before its frames are
    /// encoded.
    pub hidden: Option<Arc<Hidden>>,
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
    /// Fixed when the broker is made: whether it orders messages itself or copies an engine
    /// that orders them elsewhere.
    role: Role,
}

/// Who orders a broker's messages.
enum Role {
    /// This broker ([`Broker::new`], for [`engine::MemoryEngine`]).
    Owner,
    /// An engine elsewhere ([`Broker::replica`]); `load` asks it for a topic this node does not
    /// hold yet.
    Replica { load: Box<dyn Fn(&TopicKey) + Send + Sync> },
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Owner => "Owner",
            Role::Replica { .. } => "Replica",
        })
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
    /// A broker that orders its own messages: what [`engine::MemoryEngine`] publishes through.
    pub fn new(config: BrokerConfig) -> Self {
        Self::with_role(config, Role::Owner)
    }

    fn with_role(config: BrokerConfig, role: Role) -> Self {
        Self { config, topics: RwLock::default(), tenants: Mutex::default(), waiting: Mutex::default(), role }
    }

    /// Creates `key` as a `kind` topic if it does not exist yet (refused, like `publish`, when the
    /// broker is a copy of another engine).
    pub fn declare(&self, key: &TopicKey, kind: TopicKind) -> Result<(), BrokerError> {
        self.refuse_if_shared()?;
        self.topic_or_create(key, kind).map(drop)
    }

    fn refuse_if_shared(&self) -> Result<(), BrokerError> {
        match self.role {
            Role::Replica { .. } => {
                Err(BrokerError::Unavailable("this node's topics are kept by the engine: publish through it".into()))
            }
            Role::Owner => Ok(()),
        }
    }

    /// Appends `items` as one message (creating the topic on first use) and hands it to every
    /// subscriber; returns its offset. This is what [`engine::MemoryEngine`] does; a broker that
    /// is a copy of another engine refuses it, since the message would reach this node only.
    pub fn publish(&self, key: &TopicKey, kind: TopicKind, items: Vec<Item>) -> Result<u64, BrokerError> {
        self.publish_message(key, kind, items).map(|published| published.offset)
    }

    /// [`Broker::publish`], telling also which documents the message created.
    pub fn publish_message(&self, key: &TopicKey, kind: TopicKind, items: Vec<Item>) -> Result<Published, BrokerError> {
        self.refuse_if_shared()?;
        // A message wrong in itself (an item of another kind, more keys or documents than a topic
        // may hold, an event larger than a whole state) is refused for that before the topic is
        // looked at, as the Redis engine refuses it; and a refused first message leaves no topic
        // behind (none created, no waiting subscriber let in), as there. A topic of this kind
        // refuses such a message the same way in `publish_into`, so only a new topic, or one of
        // another kind, needs the check here: the hot path does not judge a message twice.
        if self.topic(key).ok().is_none_or(|topic| topic.kind != kind) {
            let alone = TopicState::new(kind).check(&items, &self.config.state)?;
            if !self.holds(key)
                && alone > 0
                && self.tenant_usage(&key.tenant).state_bytes() + alone > self.config.tenant_state_max_bytes
            {
                return Err(BrokerError::TenantFull(self.config.tenant_state_max_bytes));
            }
        }
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
    ) -> Result<Published, BrokerError> {
        let state_before = inner.state.bytes();
        let state_after = inner.state.check(items, &self.config.state)?;
        let growth = state_after.saturating_sub(state_before);
        if growth > 0 && topic.usage.state_bytes() + growth > self.config.tenant_state_max_bytes {
            return Err(BrokerError::TenantFull(self.config.tenant_state_max_bytes));
        }
        let created = inner.state.created_by(items);
        let offset = self.append(topic, inner, now_ms(), items, Some(published_at));
        metrics::counter!(telemetry::PUBLISHES, "kind" => topic.kind.as_str()).increment(1);
        Ok(Published { offset, created })
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
        // Encoded once for every subscriber that sees every field, once more per set of hidden
        // fields, and glued to each widget id once.
        let mut texts = FrameTexts::new(&entry.body);
        for live in &inner.subscribers {
            let hidden = live.subscriber.hidden.as_deref().filter(|hidden| hidden.touches(kind));
            let text = texts.text(&live.prefix, hidden);
            let frame = update_frame(&live.subscriber.widget, kind, &entry, text, published_at);
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
            if let Role::Replica { load } = &self.role {
                load(key);
            }
            return Ok(Subscribed::Pending);
        };
        let mut inner = topic.inner.lock().expect("topic lock");
        drop(topics);
        let prefix: Arc<str> = encode::widget_prefix(&subscriber.widget).into();
        let hidden = subscriber.hidden.as_deref();
        for frame in catch_up(&topic, &mut inner, &subscriber.widget, &prefix, hidden, from, usize::MAX) {
            match frame {
                frame @ Frame::Update { .. } => subscriber.outbox.push_update(frame),
                frame => subscriber.outbox.push(frame),
            }
        }
        inner.subscribers.retain(|l| !same_subscriber(&l.subscriber, &subscriber));
        inner.subscribers.push(Live { subscriber, prefix });
        inner.last_active = now_ms();
        Ok(Subscribed::Live(topic.kind))
    }

    /// What a subscription of `widget` that stands at `from` needs now, without subscribing (for
    /// polling): the missed updates, or a snapshot (after a `gap` when history cannot bridge it, or
    /// when more than `max_updates` were missed and replaying them would cost more than it is
    /// worth), and the position the reader then stands at, without the `hidden` fields. `None`
    /// while the topic does not exist: there is nothing to catch up on.
    pub fn read(
        &self,
        key: &TopicKey,
        widget: &Arc<str>,
        hidden: Option<&Hidden>,
        from: ReadFrom,
        max_updates: usize,
    ) -> Option<Read> {
        let topic = self.topic(key).ok()?;
        let mut inner = topic.inner.lock().expect("topic lock");
        let prefix: Arc<str> = encode::widget_prefix(widget).into();
        let frames = catch_up(&topic, &mut inner, widget, &prefix, hidden, from, max_updates);
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
        let snapshot = snapshot_frame(&topic, &mut inner, &subscriber.widget, subscriber.hidden.as_deref());
        subscriber.outbox.end_lag(&subscriber.widget, gap.into_iter().chain([snapshot]));
        Ok(())
    }

    /// A fresh snapshot for one subscription (a manual refresh): it replaces the client's state.
    pub fn refresh(&self, key: &TopicKey, subscriber: &Subscriber) -> Result<(), BrokerError> {
        let topic = self.topic(key)?;
        let mut inner = topic.inner.lock().expect("topic lock");
        subscriber.outbox.push(snapshot_frame(&topic, &mut inner, &subscriber.widget, subscriber.hidden.as_deref()));
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
            let (widget, hidden) = (&subscriber.widget, subscriber.hidden.as_deref());
            for frame in catch_up(topic, &mut inner, widget, &prefix, hidden, from.as_read_from(), usize::MAX) {
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

fn same_subscriber(a: &Subscriber, b: &Subscriber) -> bool {
    a.connection == b.connection && a.widget == b.widget
}

/// A new random epoch: hex, so a resume token stays `epoch.offset`.
fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests;
