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

mod alert_states;
mod keys;
mod link;
mod loading;
mod notices;
mod receipts;
mod wire;

use super::{
    Broker, BrokerConfig, BrokerError,
    cluster::{Cluster, Notice},
    engine::{Engine, PublishRate, Published, Source},
    new_epoch,
    replica::{Applied, Remote},
    topic_log,
};
use crate::redact::redacted;
use crate::topic_name::TopicKey;
use crate::{shutdown::ShutdownSignal, telemetry};
use futures_util::{StreamExt, future::BoxFuture};
use keys::TopicKeys;
use notices::{HOLD_DUTY, RELEASE_DUTY, Unsent};
use protocol::backoff::Backoff;
use protocol::{Item, TopicKind};
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
    swap_alert_script: Script,
    hold_receipt_script: Script,
    replace_receipt_script: Script,
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

impl RedisEngine {
    /// Connects, links this node to every channel and makes this node's broker, a copy of Redis
    /// ([`RedisEngine::broker`]). Fails when Redis cannot be reached now: a node that starts
    /// without its Redis would serve nothing.
    pub async fn connect(
        url: &str,
        prefix: &str,
        config: BrokerConfig,
        publishes_per_sec: f64,
        shutdown: ShutdownSignal,
    ) -> Result<Arc<Self>, RedisEngineError> {
        let client = redis::Client::open(url).map_err(RedisEngineError::Url)?;
        let connection = command_connection(&client)
            .await
            .map_err(|source| RedisEngineError::Unreachable { url: redacted(url), source })?;
        let engine = Arc::new_cyclic(|me: &Weak<Self>| Self {
            broker: Arc::new(Broker::replica(config, {
                let me = me.clone();
                move |key| {
                    if let Some(engine) = me.upgrade() {
                        engine.load(key.clone());
                    }
                }
            })),
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
            swap_alert_script: Script::new(alert_states::SWAP),
            hold_receipt_script: Script::new(receipts::HOLD),
            replace_receipt_script: Script::new(receipts::REPLACE),
            publishes_per_sec,
            loading: Mutex::default(),
            linked: AtomicBool::new(false),
            me: me.clone(),
            node: format!("{:016x}", rand::random::<u64>()),
            notices: OnceLock::new(),
            unsent: Mutex::default(),
            flushing: AtomicBool::new(false),
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

    /// This node's broker: a copy of Redis, which serves this node's subscribers.
    pub fn broker(&self) -> Arc<Broker> {
        self.broker.clone()
    }

    /// Declares `key` (no `items`), or publishes `items` to it, once per `source` position when
    /// one is given: `None` for a duplicate.
    async fn publish_items(
        &self,
        key: &TopicKey,
        kind: TopicKind,
        items: Option<Vec<Item>>,
        source: Option<&Source>,
    ) -> Result<Option<Published>, BrokerError> {
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
            .arg(topic_log::ENTRY_OVERHEAD)
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
        Ok(Some(Published { offset: accepted.offset, created: accepted.created }))
    }

    fn idle_ms(&self) -> u64 {
        (self.config.topic_idle.as_millis() as u64).max(1000)
    }
}

impl Engine for RedisEngine {
    fn publish_message(
        &self,
        key: TopicKey,
        kind: TopicKind,
        items: Vec<Item>,
        source: Option<Source>,
    ) -> BoxFuture<'_, Result<Option<Published>, BrokerError>> {
        Box::pin(async move { self.publish_items(&key, kind, Some(items), source.as_ref()).await })
    }

    fn declare(&self, key: TopicKey, kind: TopicKind) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move { self.publish_items(&key, kind, None, None).await.map(drop) })
    }

    fn load_current(&self, key: TopicKey) -> BoxFuture<'_, ()> {
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
}

impl PublishRate for RedisEngine {
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
