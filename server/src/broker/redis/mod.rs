//! The Redis engine: several nodes, one consistent stream.
//!
//! Redis holds every topic (see [`keys`]): its epoch, offset and sizes in a hash, its history in a
//! stream, its state in a list or hash. One Lua script (`publish.lua`) checks and appends a message
//! and announces it on the topic's shard channel in a single atomic step, so offsets are dense and
//! every node sees the same order. Each node listens to every shard channel on one pub/sub link and
//! applies what it hears to its copies of the topics its viewers follow ([`super::replica`]);
//! a copy is loaded whole (`load.lua`) the first time a viewer here follows the topic, while
//! messages that arrive meanwhile are held and applied after it.
//!
//! Nothing is lost silently. A message that does not follow on from a copy makes the node reload the
//! topic: the missed messages are replayed from the Redis stream, or, when Redis no longer has
//! them, every subscriber gets a `gap` and a snapshot. When the link drops (Redis restarting, a
//! failover, the network), nodes keep their sockets, report not ready, reconnect with backoff, and
//! on the way back reload every topic they hold; a Redis that came back empty gives a new epoch to
//! each topic as it is next published, and its subscribers a `gap` and the new snapshot.

mod keys;
mod wire;

use super::{
    Broker, BrokerConfig, BrokerError,
    engine::{Engine, Notice, Source},
    new_epoch,
    replica::{Applied, Remote},
    topic_name::TopicKey,
};
use crate::redact::redacted;
use crate::{shutdown::ShutdownSignal, telemetry};
use app::{
    live::backoff::Backoff,
    protocol::{Item, TopicKind},
};
use futures_util::{StreamExt, future::BoxFuture};
use keys::TopicKeys;
use redis::{
    Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// Gives a topic a new epoch if it still has the one that went back (another node may have done it).
const NEW_EPOCH: &str = r"
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
  return 1
end
return 0";

/// Takes one unit of a rate (GCRA): ARGV the interval between units and the burst tolerance, in ms.
/// Returns 0, or the ms to wait.
const RATE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(tat + interval - now) + 1000)
return 0";

/// Claims a duty for ARGV[1] for ARGV[2] ms, or renews it if ARGV[1] holds it: 1 if it does now.
const HOLD_DUTY: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0";

/// Gives a duty up if ARGV[1] holds it.
const RELEASE_DUTY: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// How long one command may take before Redis counts as unreachable for it.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the pub/sub link is checked, and how long a check may take: a link that went dead
/// without closing (a network partition) is found within about twice this.
const LINK_CHECK: Duration = Duration::from_secs(3);
/// Messages held for one topic while it loads; past this the rest are left out, and the first
/// message after the load finds the copy out of step and loads it again.
const MAX_HELD: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum RedisEngineError {
    #[error("LIVEDASH_REDIS_URL is not a Redis address: {0}")]
    Url(redis::RedisError),
    #[error("cannot reach Redis at {url}: {source}")]
    Unreachable { url: String, source: redis::RedisError },
    #[error("Redis at {0} did not take the subscription to its channels in time")]
    NotLinked(String),
}

pub struct RedisEngine {
    broker: Arc<Broker>,
    config: BrokerConfig,
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
    publish_script: Script,
    load_script: Script,
    touch_script: Script,
    new_epoch_script: Script,
    rate_script: Script,
    hold_duty_script: Script,
    release_duty_script: Script,
    /// Each API key's publish allowance (see [`Engine::allow_publish`]).
    publishes_per_sec: f64,
    /// Topics being loaded, with the messages heard for them meanwhile.
    loading: Mutex<HashMap<TopicKey, Vec<Remote>>>,
    /// The pub/sub link is up and subscribed to every channel.
    linked: AtomicBool,
    /// This engine, for the tasks it starts.
    me: Weak<RedisEngine>,
    /// This node, so that it skips its own notices.
    node: String,
    notices: OnceLock<Box<dyn Fn(Notice) + Send + Sync>>,
    /// Notices announced while Redis was unreachable, sent once it answers again.
    unsent: Mutex<Unsent>,
    /// A task is sending the unsent notices.
    flushing: AtomicBool,
}

/// Notices waiting to be sent, and whether some had to be dropped.
#[derive(Debug, Default)]
struct Unsent {
    queue: VecDeque<Notice>,
    overflowed: bool,
}

/// Notices kept for resending while Redis is unreachable.
const MAX_UNSENT_NOTICES: usize = 1024;

impl RedisEngine {
    /// Connects, links this node to every channel and makes `broker` a copy of Redis. Fails when
    /// Redis cannot be reached now: a node that starts without its Redis would serve nothing.
    pub async fn connect(
        url: &str,
        prefix: &str,
        broker: Arc<Broker>,
        config: BrokerConfig,
        publishes_per_sec: f64,
        shutdown: ShutdownSignal,
    ) -> Result<Arc<Self>, RedisEngineError> {
        let client = redis::Client::open(url).map_err(RedisEngineError::Url)?;
        let connection = command_connection(&client)
            .await
            .map_err(|source| RedisEngineError::Unreachable { url: redacted(url), source })?;
        let engine = Arc::new_cyclic(|me| Self {
            broker: broker.clone(),
            config,
            client,
            connection,
            prefix: prefix.to_owned(),
            publish_script: Script::new(include_str!("publish.lua")),
            load_script: Script::new(include_str!("load.lua")),
            touch_script: Script::new(include_str!("touch.lua")),
            new_epoch_script: Script::new(NEW_EPOCH),
            hold_duty_script: Script::new(HOLD_DUTY),
            release_duty_script: Script::new(RELEASE_DUTY),
            rate_script: Script::new(RATE),
            publishes_per_sec,
            loading: Mutex::default(),
            linked: AtomicBool::new(false),
            me: me.clone(),
            node: format!("{:016x}", rand::random::<u64>()),
            notices: OnceLock::new(),
            unsent: Mutex::default(),
            flushing: AtomicBool::new(false),
        });
        let weak: Weak<Self> = Arc::downgrade(&engine);
        broker.share(move |key| {
            if let Some(engine) = weak.upgrade() {
                engine.load(key.clone());
            }
        });
        tokio::spawn(engine.clone().listen(shutdown.clone()));
        tokio::spawn(engine.clone().keep_alive(shutdown));
        // Publishes made from now on must reach this node: wait for the link.
        let linked = async {
            while !engine.linked.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(4 * COMMAND_TIMEOUT, linked)
            .await
            .map_err(|_| RedisEngineError::NotLinked(redacted(url)))?;
        Ok(engine)
    }

    /// Declares `key` (no `items`), or publishes `items` to it, once per `source` position when
    /// one is given: `None` for a duplicate.
    async fn publish_items(
        &self,
        key: &TopicKey,
        kind: TopicKind,
        items: Option<Vec<Item>>,
        source: Option<&Source>,
    ) -> Result<Option<u64>, BrokerError> {
        let (json, ops) = match &items {
            Some(items) => (
                serde_json::to_string(items).expect("items always serialise"),
                wire::state_ops(kind, items, &self.config.state)?,
            ),
            None => (String::new(), Vec::new()),
        };
        let keys = TopicKeys::new(&self.prefix, key);
        let limits = &self.config.state;
        let mut invocation = self.publish_script.key(&keys.meta);
        invocation
            .key(&keys.log)
            .key(&keys.state)
            .key(&keys.tenant_topics)
            .key(&keys.tenant_usage)
            .key(keys::source(&self.prefix, source.map_or("-", |s| s.stream.as_str())))
            .arg(kind.as_str())
            .arg(new_epoch())
            .arg(key.name.as_str())
            .arg(key.to_string())
            .arg(keys::channel_of(&self.prefix, key))
            .arg(json)
            .arg(self.config.history_len.max(1))
            .arg(self.config.history_max_bytes)
            .arg(self.config.history_max_age.as_millis() as u64)
            .arg(self.idle_ms())
            .arg(self.config.max_topics_per_tenant)
            .arg(limits.series_points.max(1))
            .arg(limits.events.max(1))
            .arg(limits.metric_keys)
            .arg(limits.documents)
            .arg(limits.max_bytes)
            .arg(self.config.tenant_history_max_bytes)
            .arg(self.config.tenant_state_max_bytes)
            .arg(source.map_or_else(String::new, |s| s.position.to_string()))
            .arg(ops.len());
        for op in &ops {
            for part in op {
                invocation.arg(part);
            }
        }
        let reply: Vec<String> = invocation.invoke_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        let Some(accepted) = wire::accepted(&reply, key.name.as_str(), kind)? else { return Ok(None) };
        if items.is_some() {
            metrics::counter!(telemetry::PUBLISHES, "kind" => kind.as_str()).increment(1);
        }
        Ok(Some(accepted.offset))
    }

    fn idle_ms(&self) -> u64 {
        (self.config.topic_idle.as_millis() as u64).max(1000)
    }

    /// Starts loading `key` unless it is loading already.
    fn load(&self, key: TopicKey) {
        let mut loading = self.loading.lock().expect("loading lock");
        self.load_locked(&mut loading, key, Vec::new());
    }

    fn load_locked(&self, loading: &mut HashMap<TopicKey, Vec<Remote>>, key: TopicKey, held: Vec<Remote>) {
        self.load_locked_after(loading, key, held, None);
    }

    /// Like `load_locked`, first giving the topic a new epoch in Redis if it still has `went_back`.
    fn load_locked_after(
        &self,
        loading: &mut HashMap<TopicKey, Vec<Remote>>,
        key: TopicKey,
        held: Vec<Remote>,
        went_back: Option<String>,
    ) {
        let Some(me) = self.me.upgrade() else { return };
        if loading.contains_key(&key) {
            return;
        }
        loading.insert(key.clone(), held);
        tokio::spawn(me.load_until_in_step(key, went_back));
    }

    async fn load_until_in_step(self: Arc<Self>, key: TopicKey, mut went_back: Option<String>) {
        let keys = TopicKeys::new(&self.prefix, &key);
        loop {
            if let Some(epoch) = went_back.take() {
                self.start_new_epoch(&key, &keys, &epoch).await;
            }
            let loaded: Result<Option<wire::Loaded>, _> = self
                .load_script
                .key(&keys.meta)
                .key(&keys.log)
                .key(&keys.state)
                .invoke_async(&mut self.connection.clone())
                .await;
            let mut loading = self.loading.lock().expect("loading lock");
            let held = loading.remove(&key).unwrap_or_default();
            let image = match loaded {
                Ok(None) => None,
                Ok(Some(loaded)) => match wire::image(loaded) {
                    Some(image) => Some(image),
                    None => {
                        tracing::error!(topic = %key, "Redis holds a topic this node cannot read; leaving it");
                        return;
                    }
                },
                Err(e) => {
                    // The link's return reloads every topic held or awaited.
                    tracing::warn!(error = %e, topic = %key, "could not load a topic from Redis");
                    return;
                }
            };
            let epoch = image.as_ref().map(|image| image.epoch.clone());
            match self.broker.install(&key, image, &held) {
                Applied::Done | Applied::Duplicate | Applied::NotHeld => return,
                Applied::OutOfStep => {}
                Applied::WentBack => went_back = epoch,
            }
            loading.insert(key.clone(), Vec::new());
        }
    }

    /// Redis's offsets for `key` went back under `epoch` (a failover lost writes): positions taken
    /// in that epoch can no longer be trusted, so the topic gets a new one. Every node then finds
    /// its copy out of step and every subscriber gets a `gap` and a snapshot; a client that comes
    /// back holding an old position is told it was lost.
    async fn start_new_epoch(&self, key: &TopicKey, keys: &TopicKeys, epoch: &str) {
        let started: redis::RedisResult<i64> = self
            .new_epoch_script
            .key(&keys.meta)
            .arg(epoch)
            .arg(new_epoch())
            .invoke_async(&mut self.connection.clone())
            .await;
        match started {
            Ok(_) => {
                metrics::counter!(telemetry::ENGINE_RELOADS, "reason" => "went_back").increment(1);
                tracing::warn!(topic = %key, "the topic's offsets went back in Redis (a failover?): it starts a new epoch");
            }
            Err(e) => tracing::warn!(error = %e, topic = %key, "could not give the topic a new epoch"),
        }
    }

    /// What the link hears.
    fn heard(&self, payload: &[u8]) {
        let Some(remote) = std::str::from_utf8(payload).ok().and_then(wire::message) else {
            metrics::counter!(telemetry::DENIALS, "reason" => "bad_engine_message").increment(1);
            tracing::warn!("ignored a message on a livedash channel that is not one of ours");
            return;
        };
        let mut loading = self.loading.lock().expect("loading lock");
        if let Some(held) = loading.get_mut(&remote.key) {
            if held.len() < MAX_HELD {
                held.push(remote);
            }
            return;
        }
        match self.broker.apply_remote(&remote, Instant::now()) {
            Applied::Done | Applied::Duplicate => {}
            Applied::NotHeld if self.broker.awaited(&remote.key) => {
                self.load_locked(&mut loading, remote.key.clone(), Vec::new());
            }
            Applied::NotHeld => {}
            Applied::OutOfStep => {
                metrics::counter!(telemetry::ENGINE_RELOADS, "reason" => "out_of_step").increment(1);
                let key = remote.key.clone();
                self.load_locked(&mut loading, key, vec![remote]);
            }
            Applied::WentBack => {
                let (key, epoch) = (remote.key.clone(), remote.epoch.clone());
                self.load_locked_after(&mut loading, key, Vec::new(), Some(epoch));
            }
        }
    }

    /// Keeps the pub/sub link up, until shutdown.
    async fn listen(self: Arc<Self>, mut shutdown: ShutdownSignal) {
        let backoff =
            Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(5), factor: 2.0, jitter: 0.2 };
        let mut attempt = 0u32;
        let notices = keys::notices_channel(&self.prefix);
        loop {
            match tokio::time::timeout(COMMAND_TIMEOUT, self.link()).await {
                Ok(Ok(pubsub)) => {
                    attempt = 0;
                    self.linked.store(true, Ordering::Release);
                    tracing::info!("linked to Redis");
                    // Whatever was published while unlinked is in Redis, not in the copies.
                    self.reload_everything();
                    // And whatever the others announced meanwhile is lost: this node checks its
                    // sockets again, and tells them what it could not.
                    if let Some(handle) = self.notices.get() {
                        handle(Notice::Missed);
                    }
                    self.flush_unsent();
                    let (mut sink, mut stream) = pubsub.split();
                    let mut check = tokio::time::interval(LINK_CHECK);
                    loop {
                        tokio::select! {
                            message = stream.next() => match message {
                                Some(message) if message.get_channel_name() == notices => {
                                    self.heard_notice(message.get_payload_bytes());
                                }
                                Some(message) => self.heard(message.get_payload_bytes()),
                                None => break,
                            },
                            _ = check.tick() => {
                                let pong = tokio::time::timeout(LINK_CHECK, sink.ping::<redis::Value>()).await;
                                if !matches!(pong, Ok(Ok(_))) {
                                    break;
                                }
                                // The link may have stayed up while commands failed.
                                self.flush_unsent();
                            }
                            _ = shutdown.stopping() => return,
                        }
                    }
                    self.linked.store(false, Ordering::Release);
                    metrics::counter!(telemetry::ENGINE_LINK_LOST).increment(1);
                    tracing::warn!("lost the link to Redis; serving what this node holds and reconnecting");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot link to Redis"),
                Err(_) => tracing::warn!("linking to Redis timed out"),
            }
            attempt += 1;
            tokio::select! {
                _ = tokio::time::sleep(backoff.delay(attempt, rand::random())) => {}
                _ = shutdown.stopping() => return,
            }
        }
    }

    async fn link(&self) -> redis::RedisResult<redis::aio::PubSub> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(keys::channels(&self.prefix)).await?;
        pubsub.subscribe(keys::notices_channel(&self.prefix)).await?;
        Ok(pubsub)
    }

    /// A notice another node announced: `<node> <notice>`.
    fn heard_notice(&self, payload: &[u8]) {
        let Some((node, line)) = std::str::from_utf8(payload).ok().and_then(|p| p.split_once(' ')) else { return };
        if node == self.node {
            return;
        }
        match (Notice::from_line(line), self.notices.get()) {
            (Some(notice), Some(handle)) => handle(notice),
            (None, _) => tracing::warn!("ignored a notice that is not one of ours"),
            (Some(_), None) => {}
        }
    }

    /// Sends the notices that could not be sent, oldest first, in a task of its own (one at a
    /// time), until one fails again. When some had to be dropped, the others are first told they
    /// missed notices, so they check every socket again.
    fn flush_unsent(&self) {
        let nothing_waits = {
            let unsent = self.unsent.lock().expect("unsent lock");
            unsent.queue.is_empty() && !unsent.overflowed
        };
        if nothing_waits || self.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        tokio::spawn(async move {
            loop {
                let next = {
                    let mut unsent = me.unsent.lock().expect("unsent lock");
                    if std::mem::take(&mut unsent.overflowed) { Some(Notice::Missed) } else { unsent.queue.pop_front() }
                };
                let Some(notice) = next else { break };
                if me.send_notice(&notice).await.is_err() {
                    let mut unsent = me.unsent.lock().expect("unsent lock");
                    match notice {
                        Notice::Missed => unsent.overflowed = true,
                        notice => unsent.queue.push_front(notice),
                    }
                    break;
                }
            }
            me.flushing.store(false, Ordering::Release);
        });
    }

    async fn send_notice(&self, notice: &Notice) -> redis::RedisResult<i64> {
        redis::cmd("PUBLISH")
            .arg(keys::notices_channel(&self.prefix))
            .arg(format!("{} {}", self.node, notice.to_line()))
            .query_async(&mut self.connection.clone())
            .await
    }

    fn reload_everything(&self) {
        let mut keys: Vec<TopicKey> = self.broker.held().into_iter().map(|(key, _)| key).collect();
        keys.extend(self.broker.awaited_topics());
        if !keys.is_empty() {
            metrics::counter!(telemetry::ENGINE_RELOADS, "reason" => "relinked").increment(keys.len() as u64);
        }
        let mut loading = self.loading.lock().expect("loading lock");
        for key in keys {
            self.load_locked(&mut loading, key, Vec::new());
        }
    }

    /// Topics viewers here follow must not expire in Redis while nobody publishes to them.
    async fn keep_alive(self: Arc<Self>, mut shutdown: ShutdownSignal) {
        let every = (self.config.topic_idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(300));
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.stopping() => return,
            }
            for (key, followed) in self.broker.held() {
                if !followed {
                    continue;
                }
                let keys = TopicKeys::new(&self.prefix, &key);
                let touched: redis::RedisResult<i64> = self
                    .touch_script
                    .key(&keys.meta)
                    .key(&keys.log)
                    .key(&keys.state)
                    .key(&keys.tenant_topics)
                    .key(&keys.tenant_usage)
                    .arg(key.name.as_str())
                    .arg(self.idle_ms())
                    .invoke_async(&mut self.connection.clone())
                    .await;
                if let Err(e) = touched {
                    tracing::debug!(error = %e, "could not keep a topic alive in Redis");
                    break;
                }
            }
        }
    }
}

impl Engine for RedisEngine {
    fn publish(&self, key: TopicKey, kind: TopicKind, items: Vec<Item>) -> BoxFuture<'_, Result<u64, BrokerError>> {
        Box::pin(async move {
            let published = self.publish_items(&key, kind, Some(items), None).await?;
            published
                .ok_or_else(|| BrokerError::Unavailable("Redis took a message without a source for a duplicate".into()))
        })
    }

    fn publish_from(
        &self,
        key: TopicKey,
        kind: TopicKind,
        items: Vec<Item>,
        source: Source,
    ) -> BoxFuture<'_, Result<Option<u64>, BrokerError>> {
        Box::pin(async move { self.publish_items(&key, kind, Some(items), Some(&source)).await })
    }

    fn declare(&self, key: TopicKey, kind: TopicKind) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move { self.publish_items(&key, kind, None, None).await.map(drop) })
    }

    fn prepare(&self, key: TopicKey) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.broker.holds(&key) {
                return;
            }
            self.load(key.clone());
            let loaded = async {
                while self.loading.lock().expect("loading lock").contains_key(&key) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            let _ = tokio::time::timeout(COMMAND_TIMEOUT, loaded).await;
        })
    }

    fn ready(&self) -> bool {
        self.linked.load(Ordering::Acquire)
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn allow_publish<'a>(&'a self, api_key: &'a str) -> BoxFuture<'a, Result<(), f64>> {
        let per_sec = self.publishes_per_sec;
        Box::pin(async move {
            // GCRA: one key per API key holding the theoretical arrival time; bursts of twice the rate.
            let interval = 1000.0 / per_sec.max(0.001);
            let tolerance = interval * (2.0 * per_sec - 1.0).max(0.0);
            let wait: redis::RedisResult<i64> = self
                .rate_script
                .key(format!("{}rate:{api_key}", self.prefix))
                .arg(interval)
                .arg(tolerance)
                .invoke_async(&mut self.connection.clone())
                .await;
            match wait {
                Ok(ms) if ms > 0 => Err(ms as f64 / 1000.0),
                Ok(_) => Ok(()),
                // The publish itself will find Redis unreachable and say so.
                Err(_) => Ok(()),
            }
        })
    }

    fn hold_duty<'a>(&'a self, duty: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let held: redis::RedisResult<i64> = self
                .hold_duty_script
                .key(keys::duty(&self.prefix, duty))
                .arg(&self.node)
                .arg(ttl.as_millis() as u64)
                .invoke_async(&mut self.connection.clone())
                .await;
            // Unreachable, it cannot know that no other node holds the duty: it does not.
            held.is_ok_and(|held| held == 1)
        })
    }

    fn release_duty<'a>(&'a self, duty: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _: redis::RedisResult<i64> = self
                .release_duty_script
                .key(keys::duty(&self.prefix, duty))
                .arg(&self.node)
                .invoke_async(&mut self.connection.clone())
                .await;
        })
    }

    fn announce(&self, notice: Notice) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Behind the ones still waiting, if any, so the others hear them in order.
            let others_wait = !self.unsent.lock().expect("unsent lock").queue.is_empty();
            if !others_wait {
                match self.send_notice(&notice).await {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, ?notice, "could not tell the other nodes; told when Redis answers")
                    }
                }
            }
            let mut unsent = self.unsent.lock().expect("unsent lock");
            if unsent.queue.len() == MAX_UNSENT_NOTICES {
                unsent.queue.pop_front();
                unsent.overflowed = true;
                metrics::counter!(telemetry::DROPS, "reason" => "unsent_notice").increment(1);
            }
            unsent.queue.push_back(notice);
            drop(unsent);
            self.flush_unsent();
        })
    }

    fn on_notice(&self, handle: Box<dyn Fn(Notice) + Send + Sync>) {
        if self.notices.set(handle).is_err() {
            tracing::warn!("notices already have a handler");
        }
    }
}

/// A command connection that reconnects by itself, with every command bounded by
/// [`COMMAND_TIMEOUT`]: what the engine and the roster talk to Redis through.
pub(crate) async fn command_connection(client: &redis::Client) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2));
    client.get_connection_manager_with_config(config).await
}

fn unavailable(e: redis::RedisError) -> BrokerError {
    BrokerError::Unavailable(format!("Redis: {e}"))
}
