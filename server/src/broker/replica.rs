//! This node's copy of topics whose messages are ordered elsewhere (by the Redis engine).
//!
//! A copy is loaded whole ([`Image`]) when a viewer here first follows the topic, then kept current
//! message by message ([`Remote`]), each of which must be the very next offset of the same epoch.
//! Anything else (a message missed while the link to Redis was down, a topic Redis forgot, an epoch
//! that changed) is reported as [`Applied::OutOfStep`], and the engine reloads the topic: the
//! missed messages are then replayed to subscribers when Redis still has them, and otherwise every
//! subscriber gets a `gap` and a fresh snapshot. A copy never goes silently wrong.
//!
//! One failure keeps the epoch while offsets go back: Redis failing over to a replica that had not
//! received the last writes. New messages then reuse offsets clients already hold, and would be
//! dropped as duplicates. A copy that hears a message at an offset it has, with other content, or
//! loads an image behind it, reports [`Applied::WentBack`]; the engine gives the topic a new epoch
//! in Redis, so that every position taken before is known to be lost.

use super::{
    Broker, BrokerConfig, Role, Topic, TopicInner, encode, gap_frame, snapshot_frame,
    topic_log::TopicLog,
    topic_state::TopicState,
    waiting::{StartAt, Waiting},
};
use crate::telemetry;
use crate::topic_name::TopicKey;
use protocol::{Item, TopicKind};
use std::{sync::Arc, time::Instant};

/// One logged message.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub offset: u64,
    /// When the engine accepted it, ms since the Unix epoch.
    pub ts: i64,
    pub items: Vec<Item>,
}

/// A message as the engine announces it to every node.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    pub key: TopicKey,
    pub kind: TopicKind,
    pub epoch: String,
    pub logged: Logged,
}

/// A topic whole, as the engine keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub kind: TopicKind,
    pub epoch: String,
    /// The newest offset; the state is as of it.
    pub offset: u64,
    /// When the newest message was accepted (0 before the first).
    pub last_ts: i64,
    /// The state as snapshot items.
    pub state: Vec<Item>,
    /// The history the engine still has, oldest first.
    pub entries: Vec<Logged>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Appended and handed to the subscribers.
    Done,
    /// Already had it.
    Duplicate,
    /// This node does not hold the topic.
    NotHeld,
    /// Not the next message of the copy: the copy must be reloaded.
    OutOfStep,
    /// The engine's offsets went back under the same epoch: the topic needs a new epoch.
    WentBack,
}

impl Broker {
    /// A broker that copies an engine ordering messages elsewhere: a topic a viewer follows that
    /// this node does not hold yet is asked of `load`, and publishing straight into the broker is
    /// refused (it would reach this node only).
    pub fn replica(config: BrokerConfig, load: impl Fn(&TopicKey) + Send + Sync + 'static) -> Self {
        Self::with_role(config, Role::Replica { load: Box::new(load) })
    }

    /// Applies a message the engine announced.
    pub fn apply_remote(&self, remote: &Remote, received_at: Instant) -> Applied {
        let Ok(topic) = self.topic(&remote.key) else { return Applied::NotHeld };
        let mut inner = topic.inner.lock().expect("topic lock");
        if inner.retired {
            return Applied::NotHeld;
        }
        self.apply_in(&topic, &mut inner, remote, received_at)
    }

    fn apply_in(&self, topic: &Topic, inner: &mut TopicInner, remote: &Remote, received_at: Instant) -> Applied {
        let position = inner.log.position();
        if topic.kind != remote.kind || position.epoch != remote.epoch {
            return Applied::OutOfStep;
        }
        if remote.logged.offset <= position.offset {
            // A late copy of a message the load already brought, unless its content differs.
            let name = topic.key.name.as_str();
            let at = super::position::Position { epoch: remote.epoch.clone(), offset: remote.logged.offset };
            return match inner.log.entry_at(remote.logged.offset) {
                Some(entry)
                    if *entry.body
                        != *encode::update_body(name, topic.kind, &at, remote.logged.ts, &remote.logged.items) =>
                {
                    Applied::WentBack
                }
                _ => Applied::Duplicate,
            };
        }
        if remote.logged.offset != position.offset + 1 {
            return Applied::OutOfStep;
        }
        self.append(topic, inner, remote.logged.ts, &remote.logged.items, Some(received_at));
        Applied::Done
    }

    /// Whether a subscription waits here for `key` (so that, when it appears, it is worth loading).
    pub fn awaited(&self, key: &TopicKey) -> bool {
        self.waiting.lock().expect("waiting lock").has(key)
    }

    /// Topics this node holds, and whether anyone here follows each.
    pub fn held(&self) -> Vec<(TopicKey, bool)> {
        let topics = self.topics.read().expect("topics lock");
        topics
            .values()
            .map(|topic| (topic.key.clone(), !topic.inner.lock().expect("topic lock").subscribers.is_empty()))
            .collect()
    }

    /// Brings this node's copy of `key` to `image` (`None`: the engine no longer has the topic),
    /// then applies what arrived while it loaded. Subscribers get exactly what they missed when the
    /// copy's history still bridges to the image, and a `gap` and a snapshot when it does not.
    /// Says whether the copy is now in step, or must be loaded again (`buffered` did not follow on
    /// from the image), or went back (see the module's docs: the copy is left as it was).
    pub fn install(&self, key: &TopicKey, image: Option<Image>, buffered: &[Remote]) -> Applied {
        let mut topics = self.topics.write().expect("topics lock");
        let existing = topics.get(key).cloned();
        let topic = match (existing, image) {
            // The load found no topic, but a message of it came while the load ran: the topic
            // exists now, and the message must not be dropped (a subscriber waiting for the topic
            // would wait for the next one). Loaded again, it brings the message.
            (None, None) if !buffered.is_empty() => return Applied::OutOfStep,
            (None, None) => return Applied::Done,
            (Some(topic), None) => {
                self.forget(&mut topics, &topic);
                return Applied::Done;
            }
            (Some(topic), Some(image)) if topic.kind != image.kind => {
                self.forget(&mut topics, &topic);
                self.install_new(&mut topics, key, image)
            }
            (None, Some(image)) => self.install_new(&mut topics, key, image),
            (Some(topic), Some(image)) => {
                let mut inner = topic.inner.lock().expect("topic lock");
                if went_back(&topic, &inner, &image) {
                    return Applied::WentBack;
                }
                self.catch_up_copy(&topic, &mut inner, image);
                drop(inner);
                topic
            }
        };
        drop(topics);
        let mut inner = topic.inner.lock().expect("topic lock");
        let received_at = Instant::now();
        for remote in buffered {
            match self.apply_in(&topic, &mut inner, remote, received_at) {
                Applied::Done | Applied::Duplicate | Applied::NotHeld => {}
                other => return other,
            }
        }
        Applied::Done
    }

    fn install_new(
        &self,
        topics: &mut std::collections::HashMap<TopicKey, Arc<Topic>>,
        key: &TopicKey,
        image: Image,
    ) -> Arc<Topic> {
        let usage = self.tenant_usage(&key.tenant);
        usage.topic_added();
        let mut topic = self.new_topic(key, image.kind, usage);
        let inner = topic.inner.get_mut().expect("topic lock");
        self.restore(&topic.key, topic.kind, inner, &image);
        let topic = Arc::new(topic);
        topics.insert(key.clone(), topic.clone());
        self.admit_waiting(&topic);
        topic
    }

    /// The engine forgot the topic (Redis lost its data, or the topic expired there): it is gone
    /// here too, and its subscribers wait for it to start again, when they get a `gap` and its new
    /// snapshot.
    fn forget(&self, topics: &mut std::collections::HashMap<TopicKey, Arc<Topic>>, topic: &Arc<Topic>) {
        let mut inner = topic.inner.lock().expect("topic lock");
        inner.retired = true;
        topic.usage.topic_removed(inner.log.bytes(), inner.state.bytes());
        topics.remove(&topic.key);
        let mut waiting = self.waiting.lock().expect("waiting lock");
        for live in inner.subscribers.drain(..) {
            // Already admitted once: a subscriber never loses its place to the waiting limit.
            let _ = waiting.add(&topic.key, Waiting { subscriber: live.subscriber, from: StartAt::Lost }, usize::MAX);
        }
    }

    /// Brings an existing copy to `image`.
    fn catch_up_copy(&self, topic: &Topic, inner: &mut TopicInner, image: Image) {
        let local = inner.log.position();
        let covered = match (image.entries.first(), image.entries.last()) {
            _ if image.offset == local.offset => true,
            (Some(first), Some(last)) => first.offset <= local.offset + 1 && last.offset == image.offset,
            _ => false,
        };
        let bridged = image.epoch == local.epoch && image.offset >= local.offset && covered;
        if bridged {
            let missed = image.entries.iter().filter(|e| e.offset > local.offset);
            let mut replayed = 0u64;
            for logged in missed {
                self.append(topic, inner, logged.ts, &logged.items, None);
                replayed += 1;
            }
            if replayed > 0 {
                metrics::counter!(telemetry::RESUMES, "outcome" => "replayed").increment(replayed);
            }
            return;
        }
        // The copy cannot be bridged: start again from the image, and tell every subscriber.
        let (history_before, state_before) = (inner.log.bytes(), inner.state.bytes());
        self.restore(&topic.key, topic.kind, inner, &image);
        topic.usage.history_resized(history_before, inner.log.bytes());
        topic.usage.state_resized(state_before, inner.state.bytes());
        let subscribers: Vec<_> = inner.subscribers.iter().map(|l| l.subscriber.clone()).collect();
        for subscriber in subscribers {
            metrics::counter!(telemetry::GAPS, "reason" => "engine").increment(1);
            let gap = gap_frame(&subscriber.widget, "the server lost track of this topic's history");
            let snapshot = snapshot_frame(topic, inner, &subscriber.widget, subscriber.hidden.as_deref());
            subscriber.outbox.end_lag(&subscriber.widget, [gap, snapshot]);
        }
    }

    /// Replaces a topic's log and state with `image`.
    fn restore(&self, key: &TopicKey, kind: TopicKind, inner: &mut TopicInner, image: &Image) {
        let before = image.entries.first().map_or(image.offset, |first| first.offset.saturating_sub(1));
        // What came before the first entry kept is unknown here, except that it is not newer than
        // the first entry kept (or than the newest message, when none is).
        let trimmed_ts = (before > 0).then(|| image.entries.first().map_or(image.last_ts, |first| first.ts));
        let mut log = TopicLog::new(image.epoch.clone(), self.history_limits()).starting_after(before, trimmed_ts);
        let name = key.name.as_str();
        for logged in &image.entries {
            log.append(logged.ts, |position| encode::update_body(name, kind, position, logged.ts, &logged.items));
        }
        let mut state = TopicState::new(kind);
        state.apply(&image.state, &self.config.state);
        inner.log = log;
        inner.state = state;
        inner.snapshot = None;
        inner.last_active = crate::clock::now_ms();
    }
}

/// Whether `image` is behind the copy in the copy's own epoch, or disagrees with what the copy
/// holds at an offset both have.
fn went_back(topic: &Topic, inner: &TopicInner, image: &Image) -> bool {
    let local = inner.log.position();
    if image.epoch != local.epoch {
        return false;
    }
    if image.offset < local.offset {
        return true;
    }
    let name = topic.key.name.as_str();
    image.entries.iter().filter(|logged| logged.offset <= local.offset).any(|logged| {
        let at = super::position::Position { epoch: image.epoch.clone(), offset: logged.offset };
        inner
            .log
            .entry_at(logged.offset)
            .is_some_and(|entry| *entry.body != *encode::update_body(name, topic.kind, &at, logged.ts, &logged.items))
    })
}
