//! One conformance suite for the two engines: the same scenarios run against the memory engine (one
//! [`Broker`] that orders everything itself) and the Redis engine (topics kept in Redis by
//! `publish.lua`, a copy of them in each node's broker), and what a subscriber receives is compared
//! message for message.
//!
//! Why: the rules that decide what a topic keeps are written twice. In Rust (`topic_state.rs`,
//! `usage.rs`, `topic_log.rs`, the broker's checks) for the memory engine and for every node's copy;
//! in Lua (`publish.lua`) for what Redis keeps and refuses. Per-kind state limits, byte budgets,
//! history trimming, epochs, kind checks and the de-duplication of outside streams all have to agree,
//! or a deployment behaves differently the day it scales out.
//!
//! How: each scenario drives a [`Rig`] (an engine and the broker its subscribers read from) and
//! returns a [`Transcript`]: every publish's outcome, and every frame each subscriber got, normalised
//! to `kind epoch@offset items`. Timestamps are dropped (each engine stamps its own) and epochs, random
//! per engine, become labels in order of first appearance (`e1`, `e2`, …), so "the same epoch as
//! before" and "a new epoch" still show. The two transcripts must be equal, and the facts each
//! scenario states must hold, so that both engines agreeing on something wrong fails too.
//!
//! With Redis, what the publishing node's copy holds can hide what Redis itself kept: the copy
//! applies the Rust rules to every message it hears. So subscribers that judge what a topic keeps
//! (late snapshots, resumes) subscribe on a fresh node, which loads the topic whole from Redis, as a
//! viewer who lands on another node of a deployment does. With the memory engine there is only the
//! one broker.
//!
//! Every step waits for what it was promised (a frame at an offset), polled every few milliseconds,
//! for up to [`support::WAIT`]. Two scenarios are about time itself and let wall-clock time pass:
//! trimming history by age ([`AGE`]) and retiring an idle topic ([`IDLE`]). Redis judges both by its
//! own clock (`publish.lua` trims against `TIME`; a topic's keys expire after `topic_idle`), which no
//! test can move, so these scenarios wait the age or the idle time plus [`MARGIN`] before the step
//! that depends on it. A slower machine only makes that wait longer than needed; what must happen
//! soon after (a resume from a message still young) is set up before the wait, so that it is not
//! delayed by the machine's load either. Each test starts its own `redis-server` on a free loopback
//! port.
//!
//! Not covered, and why:
//! - Subscribing before a topic exists: the memory engine admits the subscriber when the first
//!   publish creates the topic (a snapshot at offset 0, then the update), the Redis engine when it
//!   has loaded the topic after that publish (one snapshot at offset 1). Both leave the client with
//!   the same state, by different messages, and which one Redis sends depends on timing.

mod support;

use TopicKind::{Collection, Events, Metrics, Series};
use protocol::{Change, ChangeOp, ControlMessage, Event, Item, Level, Meta, Metric, Point, ServerMessage, TopicKind};
use server::{
    broker::{
        Broker, BrokerConfig, BrokerError, ReadFrom, Subscriber,
        engine::{Engine, MemoryEngine, Source},
        redis::RedisEngine,
        topic_state::{StateError, StateLimits},
    },
    config::Config,
    outbox::{Frame, Outbox},
    shutdown::Shutdown,
    topic_name::{TenantId, TopicKey, TopicName},
};
use std::{
    collections::VecDeque,
    fmt::Debug,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use support::{WAIT, redis::RedisServer};

/// How often a subscriber's queue is looked at while waiting (it is also woken by each push).
const POLL: Duration = Duration::from_millis(20);
/// Big enough that no scenario ever makes a subscriber lag.
const OUTBOX_CAPACITY: usize = 4096;
const TENANT: &str = "acme";
/// `history_max_age` in the age scenario: long enough that a message published just before a
/// resume is still young when the resume reads it, on a loaded machine.
const AGE: Duration = Duration::from_secs(3);
/// `topic_idle` in the idle scenario: long enough that the topic does not expire in Redis between
/// its first messages and its first subscriber, on a loaded machine.
const IDLE: Duration = Duration::from_secs(3);
/// How much longer than an age or idle time a scenario waits: both clocks are this machine's, so
/// this only has to cover rounding.
const MARGIN: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// The rig: an engine and the broker its subscribers read from.
// ---------------------------------------------------------------------------------------------

struct Rig {
    engine: Arc<dyn Engine>,
    /// The node publishes go through and live subscribers read from.
    broker: Arc<Broker>,
    /// With Redis: how to start more nodes on the same Redis and key prefix.
    shared: Option<Shared>,
}

struct Shared {
    url: String,
    prefix: String,
    config: BrokerConfig,
    /// Kept for as long as the rig: dropping it stops every node's link to Redis.
    shutdown: Shutdown,
}

impl Shared {
    async fn node(&self) -> (Arc<dyn Engine>, Arc<Broker>) {
        let engine = RedisEngine::connect(&self.url, &self.prefix, self.config, 1000.0, self.shutdown.signal())
            .await
            .expect("a node links to the test's Redis");
        let broker = engine.broker();
        (engine, broker)
    }
}

impl Rig {
    fn memory(config: BrokerConfig) -> Self {
        let broker = Arc::new(Broker::new(config));
        Self { engine: Arc::new(MemoryEngine::new(broker.clone())), broker, shared: None }
    }

    async fn redis(server: &RedisServer, config: BrokerConfig) -> Self {
        // A prefix of its own, so that nothing a scenario leaves in Redis is seen by another.
        static RIGS: AtomicU64 = AtomicU64::new(0);
        let prefix = format!("conformance{}:", RIGS.fetch_add(1, Ordering::Relaxed));
        let shared = Shared { url: server.url(), prefix, config, shutdown: Shutdown::new() };
        let (engine, broker) = shared.node().await;
        Self { engine, broker, shared: Some(shared) }
    }

    /// A node that holds nothing yet. With Redis, a new node, which loads a topic whole from Redis
    /// when it is first followed there: what it serves is what Redis kept. In memory, the one broker.
    async fn fresh_node(&self) -> Arc<Broker> {
        match &self.shared {
            Some(shared) => shared.node().await.1,
            None => self.broker.clone(),
        }
    }

    fn transcript(&self) -> Transcript {
        Transcript { engine: self.engine.name(), ..Transcript::default() }
    }

    async fn publish(
        &self,
        t: &mut Transcript,
        topic: &str,
        kind: TopicKind,
        items: Vec<Item>,
    ) -> Result<u64, BrokerError> {
        let published = self.engine.publish_message(key(topic), kind, items, None).await;
        let published = published.map(|p| p.expect("a message without a source is never a duplicate"));
        t.created = published.as_ref().map(|p| p.created.clone()).unwrap_or_default();
        let result = published.map(|p| p.offset);
        let created = if t.created.is_empty() { String::new() } else { format!(" created {:?}", t.created) };
        t.note(format!("publish {topic} as {}: {}{created}", kind.as_str(), outcome(&result)));
        result
    }

    async fn publish_from(
        &self,
        t: &mut Transcript,
        topic: &str,
        kind: TopicKind,
        items: Vec<Item>,
        (stream, position): (&str, i64),
    ) -> Result<Option<u64>, BrokerError> {
        let source = Source { stream: stream.into(), position };
        let result = self.engine.publish_from(key(topic), kind, items, source).await;
        t.note(format!("publish {topic} as {} from {stream}@{position}: {}", kind.as_str(), outcome(&result)));
        result
    }

    async fn declare(&self, t: &mut Transcript, topic: &str, kind: TopicKind) -> Result<(), BrokerError> {
        let result = self.engine.declare(key(topic), kind).await;
        t.note(format!("declare {topic} as {}: {}", kind.as_str(), outcome(&result)));
        result
    }

    /// The periodic sweep, now (ages history out, retires idle topics), on the node publishes go
    /// through: with Redis, that node's copy; Redis trims and expires by itself.
    fn sweep(&self) {
        self.broker.sweep(server::clock::now_ms(), |_| false);
    }

    /// A subscriber on the publishing node.
    fn watch(&self, name: &'static str, topic: &str, from: ReadFrom<'_>) -> Watcher {
        Watcher::subscribe(name, &self.broker, topic, from)
    }
}

fn key(topic: &str) -> TopicKey {
    TopicKey::new(TenantId::parse(TENANT).expect("a tenant id"), TopicName::parse(topic).expect("a topic name"))
}

fn outcome<T: Debug>(result: &Result<T, BrokerError>) -> String {
    match result {
        Ok(value) => format!("ok {value:?}"),
        Err(e) => format!("refused {e:?}"),
    }
}

/// The limits scenarios start from: small, so that they stay short. Byte budgets stay at the
/// server's defaults unless a scenario sets them.
fn limits(tweak: impl FnOnce(&mut BrokerConfig)) -> BrokerConfig {
    let defaults = server::broker_config(&Config::default());
    let mut config = BrokerConfig {
        history_len: 3,
        state: StateLimits { series_points: 2, events: 2, metric_keys: 2, documents: 2, ..defaults.state },
        ..defaults
    };
    tweak(&mut config);
    config
}

// ---------------------------------------------------------------------------------------------
// Transcripts: what happened, normalised so that two engines can be compared line for line.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Transcript {
    engine: &'static str,
    lines: Vec<String>,
    /// Epochs in order of first appearance: `e1` is the first.
    epochs: Vec<String>,
    /// Facts the scenario expected that did not hold.
    broken: Vec<String>,
    /// The documents the last publish created.
    created: Vec<String>,
}

impl Transcript {
    fn note(&mut self, line: String) {
        self.lines.push(line);
    }

    fn epoch_label(&mut self, epoch: &str) -> String {
        let index = match self.epochs.iter().position(|e| e == epoch) {
            Some(index) => index,
            None => {
                self.epochs.push(epoch.to_owned());
                self.epochs.len() - 1
            }
        };
        format!("e{}", index + 1)
    }

    /// Records a broken fact rather than panicking: the comparison of the two engines, with its
    /// diff, is worth more than the first fact one of them breaks.
    fn expect<T: PartialEq + Debug>(&mut self, what: &str, actual: T, expected: T) {
        if actual != expected {
            self.broken.push(format!("{what}: expected {expected:?}, got {actual:?}"));
        }
    }

    fn check_meta(&mut self, meta: &Meta, topic: &str) {
        self.expect("a frame's resume token", meta.resume_token.clone(), format!("{}.{}", meta.epoch, meta.offset));
        self.expect("a frame's topic", meta.topic.as_str(), topic);
    }
}

/// Items as compact JSON; long ones cut short, with a hash of the whole so that content still counts.
fn items_text(items: &[Item]) -> String {
    let json = serde_json::to_string(items).expect("items serialise");
    if json.len() <= 160 {
        return json;
    }
    let hash = json.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let head: String = json.chars().take(80).collect();
    format!("{head}… ({} bytes, fnv {hash:016x})", json.len())
}

/// Fails with a readable diff when the engines' transcripts differ, and when they agree but broke
/// what the scenario expected.
fn compare(scenario: &str, memory: Transcript, redis: Transcript) {
    let broken = |t: &Transcript| t.broken.iter().map(|b| format!("  [{}] {b}\n", t.engine)).collect::<String>();
    let facts = broken(&memory) + &broken(&redis);
    let facts_note =
        if facts.is_empty() { String::new() } else { format!("\nexpected facts that did not hold:\n{facts}") };
    assert!(
        memory.lines == redis.lines,
        "{scenario}: the engines differ (`-` only the memory engine, `+` only the Redis engine):\n{}{facts_note}",
        diff(&memory.lines, &redis.lines)
    );
    assert!(
        facts.is_empty(),
        "{scenario}: both engines agree, but not with what is expected:\n{facts}\ntranscript:\n  {}",
        memory.lines.join("\n  ")
    );
}

/// A line diff (longest common subsequence): transcripts are short.
fn diff(memory: &[String], redis: &[String]) -> String {
    let (n, m) = (memory.len(), redis.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] =
                if memory[i] == redis[j] { common[i + 1][j + 1] + 1 } else { common[i + 1][j].max(common[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && memory[i] == redis[j] {
            out += &format!("    {}\n", memory[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            out += &format!("  - {}\n", memory[i]);
            i += 1;
        } else {
            out += &format!("  + {}\n", redis[j]);
            j += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Subscribers.
// ---------------------------------------------------------------------------------------------

/// One frame a subscriber got, decoded.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Snapshot { kind: TopicKind, epoch: String, offset: u64, items: Vec<Item> },
    Update { epoch: String, offset: u64, items: Vec<Item> },
    Gap,
    Unexpected(String),
}

impl Seen {
    fn offset(&self) -> Option<u64> {
        match self {
            Seen::Snapshot { offset, .. } | Seen::Update { offset, .. } => Some(*offset),
            Seen::Gap | Seen::Unexpected(_) => None,
        }
    }

    /// `snapshot@2`, `update@3`, `gap`: what facts about the sequence of frames are stated in.
    fn shape(&self) -> String {
        match self {
            Seen::Snapshot { offset, .. } => format!("snapshot@{offset}"),
            Seen::Update { offset, .. } => format!("update@{offset}"),
            Seen::Gap => "gap".into(),
            Seen::Unexpected(text) => format!("unexpected {text}"),
        }
    }
}

/// A subscription, read the way a connection task reads its outbox.
struct Watcher {
    name: &'static str,
    /// The connection id it subscribed under, to unsubscribe.
    connection: u64,
    topic: String,
    outbox: Arc<Outbox>,
    /// Taken from the outbox but not looked at yet: a wait stops at the frame it waited for, so
    /// that each engine's transcript interleaves subscribers the same way whatever the batching.
    queued: VecDeque<Frame>,
    seen: Vec<Seen>,
}

impl Watcher {
    fn subscribe(name: &'static str, broker: &Arc<Broker>, topic: &str, from: ReadFrom<'_>) -> Self {
        static CONNECTIONS: AtomicU64 = AtomicU64::new(1);
        let outbox = Arc::new(Outbox::new(OUTBOX_CAPACITY));
        let connection = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber { connection, widget: name.into(), outbox: outbox.clone(), hidden: None };
        broker.subscribe(&key(topic), subscriber, from).expect("the subscription is taken");
        Self { name, connection, topic: topic.to_owned(), outbox, queued: VecDeque::new(), seen: Vec::new() }
    }

    /// Unsubscribes, as a connection that closes does.
    fn leave(self, broker: &Broker) {
        broker.unsubscribe(&key(&self.topic), self.connection, self.name);
    }

    /// Reads frames, one at a time, until `done` holds for what was seen.
    async fn until(&mut self, t: &mut Transcript, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.seen) {
            if let Some(frame) = self.queued.pop_front() {
                self.record(t, frame);
                continue;
            }
            let batch = self.outbox.take();
            assert!(batch.lagging.is_empty(), "[{}] {} lagged: the outbox is too small", t.engine, self.name);
            if batch.frames.is_empty() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "[{}] {} never got {what}; the transcript so far:\n  {}",
                    t.engine,
                    self.name,
                    t.lines.join("\n  ")
                );
                let _ = tokio::time::timeout(POLL, self.outbox.ready()).await;
            }
            self.queued.extend(batch.frames);
        }
    }

    /// Until a snapshot or update at `offset` or later.
    async fn until_offset(&mut self, t: &mut Transcript, offset: u64) {
        let what = format!("a frame at offset {offset}");
        self.until(t, &what, |seen| seen.last().and_then(Seen::offset).is_some_and(|o| o >= offset)).await;
    }

    async fn until_snapshot(&mut self, t: &mut Transcript) {
        self.until(t, "a snapshot", |seen| seen.iter().any(|s| matches!(s, Seen::Snapshot { .. }))).await;
    }

    fn record(&mut self, t: &mut Transcript, frame: Frame) {
        let text = frame.text().to_owned();
        let (seen, line) = match serde_json::from_str::<ServerMessage>(&text) {
            Ok(ServerMessage::Control(ControlMessage::Snapshot { series, meta, .. })) => {
                t.check_meta(&meta, &self.topic);
                let epoch = t.epoch_label(&meta.epoch);
                let line = format!("snapshot {} {epoch}@{} {}", meta.kind.as_str(), meta.offset, items_text(&series));
                (Seen::Snapshot { kind: meta.kind, epoch: meta.epoch, offset: meta.offset, items: series }, line)
            }
            Ok(ServerMessage::Update(update)) => {
                let meta = update.meta;
                t.check_meta(&meta, &self.topic);
                let epoch = t.epoch_label(&meta.epoch);
                let line = format!("update {epoch}@{} {}", meta.offset, items_text(&update.series));
                (Seen::Update { epoch: meta.epoch, offset: meta.offset, items: update.series }, line)
            }
            Ok(ServerMessage::Control(ControlMessage::Gap { .. })) => (Seen::Gap, "gap".to_owned()),
            _ => (Seen::Unexpected(text.clone()), format!("unexpected frame {text}")),
        };
        t.note(format!("{}: {line}", self.name));
        self.seen.push(seen);
    }

    fn shapes(&self) -> Vec<String> {
        self.seen.iter().map(Seen::shape).collect()
    }

    /// The items of the last snapshot seen.
    fn snapshot(&self) -> Option<(TopicKind, Vec<Item>)> {
        self.seen.iter().rev().find_map(|s| match s {
            Seen::Snapshot { kind, items, .. } => Some((*kind, items.clone())),
            _ => None,
        })
    }

    fn snapshot_items(&self) -> Option<Vec<Item>> {
        self.snapshot().map(|(_, items)| items)
    }

    /// Each update's items, in order.
    fn updates(&self) -> Vec<Vec<Item>> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Update { items, .. } => Some(items.clone()),
                _ => None,
            })
            .collect()
    }

    /// The resume token of the snapshot or update seen at `offset`.
    fn token_at(&self, offset: u64) -> String {
        self.seen
            .iter()
            .find_map(|s| match s {
                Seen::Snapshot { epoch, offset: o, .. } | Seen::Update { epoch, offset: o, .. } if *o == offset => {
                    Some(format!("{epoch}.{offset}"))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{} saw nothing at offset {offset}", self.name))
    }
}

fn shapes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Items.
// ---------------------------------------------------------------------------------------------

fn point(v: i64) -> Item {
    Item::Point(Point { ts: v, value: v as f64 })
}

fn metric(key: &str, value: f64) -> Item {
    Item::Metric(Metric { key: key.into(), value })
}

fn event(id: &str) -> Item {
    event_with_body(id, None)
}

/// An event whose JSON is about `body_len` bytes longer than [`event`]'s.
fn big_event(id: &str, body_len: usize) -> Item {
    event_with_body(id, Some("x".repeat(body_len)))
}

fn event_with_body(id: &str, body: Option<String>) -> Item {
    Item::Event(Event {
        id: id.into(),
        ts: 1,
        event_type: "notification".into(),
        level: Level::Info,
        title: format!("event {id}"),
        body,
        severity: None,
        scheduled_at: None,
        data: None,
    })
}

fn change(id: &str, doc: serde_json::Value) -> Item {
    let doc = doc.as_object().cloned().expect("a document is an object");
    Item::Change(Change { op: ChangeOp::Upsert, id: id.into(), doc: Some(doc) })
}

fn upsert(id: &str, n: i64) -> Item {
    change(id, serde_json::json!({ "n": n }))
}

/// A document that costs exactly `id.len() + filler + 8` bytes of state (`{"s":"…"}`).
fn sized_doc(id: &str, filler: usize) -> Item {
    change(id, serde_json::json!({ "s": "x".repeat(filler) }))
}

/// A document of about a kilobyte, its content told apart by `n`.
fn blob(n: u64) -> Item {
    change("d", serde_json::json!({ "blob": format!("{n}{}", "x".repeat(1000)) }))
}

fn delete(id: &str) -> Item {
    Item::Change(Change { op: ChangeOp::Delete, id: id.into(), doc: None })
}

fn full(what: &'static str, limit: usize) -> Result<u64, BrokerError> {
    Err(BrokerError::State(StateError::Full { what, limit }))
}

fn kind_mismatch(topic: &str, existing: TopicKind, given: TopicKind) -> Result<u64, BrokerError> {
    Err(BrokerError::KindMismatch { topic: topic.into(), existing, given })
}

/// What one history entry costs (`topic_log::Entry::bytes`, and `publish.lua` counts the same): the
/// encoded update body (`"ts":…,"series":…,"meta":…}`), its resume token and the overhead, with the
/// 13-digit timestamp and 16-digit epoch every entry has. Used to pick history budgets.
fn node_entry_bytes(topic: &str, kind: TopicKind, offset: u64, items: &[Item]) -> usize {
    let epoch = "0".repeat(16);
    let token = format!("{epoch}.{offset}");
    let meta = Meta { topic: topic.into(), kind, epoch, offset, resume_token: token.clone() };
    let body = serde_json::json!({ "ts": 1_700_000_000_000i64, "series": items, "meta": meta });
    serde_json::to_string(&body).expect("serialises").len() - 1
        + token.len()
        + server::broker::topic_log::ENTRY_OVERHEAD
}

// ---------------------------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------------------------

/// Every kind: two messages, a subscriber's snapshot of them, two more as updates, and a later
/// subscriber's snapshot of the result (limits: 2 points, 2 events).
async fn every_kind(rig: &Rig) -> Transcript {
    struct Case {
        topic: &'static str,
        kind: TopicKind,
        before: [Vec<Item>; 2],
        snapshot: Vec<Item>,
        after: [Vec<Item>; 2],
        state: Vec<Item>,
    }
    let cases = [
        Case {
            topic: "s",
            kind: Series,
            before: [vec![point(1)], vec![point(2)]],
            snapshot: vec![point(1), point(2)],
            after: [vec![point(3)], vec![point(4), point(5)]],
            state: vec![point(4), point(5)],
        },
        Case {
            topic: "m",
            kind: Metrics,
            before: [vec![metric("a", 1.0)], vec![metric("b", 2.0)]],
            snapshot: vec![metric("a", 1.0), metric("b", 2.0)],
            after: [vec![metric("a", 3.0)], vec![metric("b", 4.0), metric("a", 5.0)]],
            state: vec![metric("a", 5.0), metric("b", 4.0)],
        },
        Case {
            topic: "e",
            kind: Events,
            before: [vec![event("e1")], vec![event("e2")]],
            snapshot: vec![event("e1"), event("e2")],
            after: [vec![event("e3")], vec![event("e4")]],
            state: vec![event("e3"), event("e4")],
        },
        Case {
            topic: "c",
            kind: Collection,
            before: [vec![upsert("a", 1)], vec![upsert("b", 1)]],
            snapshot: vec![upsert("a", 1), upsert("b", 1)],
            after: [vec![upsert("a", 2), delete("b")], vec![delete("zz")]],
            state: vec![upsert("a", 2)],
        },
    ];
    let mut t = rig.transcript();
    for case in cases {
        let (topic, kind) = (case.topic, case.kind);
        for (offset, items) in (1..).zip(case.before) {
            let published = rig.publish(&mut t, topic, kind, items).await;
            t.expect(&format!("{topic}: publish {offset}"), published, Ok(offset));
        }
        let mut live = rig.watch("live", topic, ReadFrom::Start);
        live.until_offset(&mut t, 2).await;
        t.expect(&format!("{topic}: the first snapshot"), live.snapshot(), Some((kind, case.snapshot)));
        for (offset, items) in (3..).zip(case.after.clone()) {
            let published = rig.publish(&mut t, topic, kind, items).await;
            t.expect(&format!("{topic}: publish {offset}"), published, Ok(offset));
        }
        live.until_offset(&mut t, 4).await;
        t.expect(&format!("{topic}: the updates carry what was published"), live.updates(), case.after.to_vec());
        let mut late = Watcher::subscribe("late", &rig.fresh_node().await, topic, ReadFrom::Start);
        late.until_offset(&mut t, 4).await;
        t.expect(&format!("{topic}: a later snapshot"), late.snapshot(), Some((kind, case.state)));
    }
    t
}

/// A series keeps its newest points; events keep their newest by count and by bytes, and one event
/// bigger than the whole budget is refused (limits: 2 points, 3 events, 1000 bytes of state).
async fn newest_points_and_events(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    rig.declare(&mut t, "s", Series).await.expect("declared");
    let mut live = rig.watch("live s", "s", ReadFrom::Start);
    live.until_offset(&mut t, 0).await;
    let published = rig.publish(&mut t, "s", Series, vec![point(1), point(2), point(3)]).await;
    t.expect("three points in one message", published, Ok(1));
    let published = rig.publish(&mut t, "s", Series, vec![point(4)]).await;
    t.expect("one more point", published, Ok(2));
    live.until_offset(&mut t, 2).await;
    let mut late = Watcher::subscribe("late s", &rig.fresh_node().await, "s", ReadFrom::Start);
    late.until_offset(&mut t, 2).await;
    t.expect("a series keeps its 2 newest points", late.snapshot_items(), Some(vec![point(3), point(4)]));

    rig.declare(&mut t, "e", Events).await.expect("declared");
    let mut live = rig.watch("live e", "e", ReadFrom::Start);
    live.until_offset(&mut t, 0).await;
    for (offset, id) in (1..).zip(["e1", "e2", "e3", "e4"]) {
        let published = rig.publish(&mut t, "e", Events, vec![event(id)]).await;
        t.expect(&format!("event {id}"), published, Ok(offset));
    }
    let mut late = Watcher::subscribe("late e@4", &rig.fresh_node().await, "e", ReadFrom::Start);
    late.until_offset(&mut t, 4).await;
    t.expect("events keep their 3 newest", late.snapshot_items(), Some(vec![event("e2"), event("e3"), event("e4")]));
    // About 640 bytes each: the first pushes out e2 by count, the second pushes out e4 and b1 by bytes.
    let published = rig.publish(&mut t, "e", Events, vec![big_event("b1", 560)]).await;
    t.expect("a big event", published, Ok(5));
    let published = rig.publish(&mut t, "e", Events, vec![big_event("b2", 560)]).await;
    t.expect("another big event", published, Ok(6));
    let mut late = Watcher::subscribe("late e@6", &rig.fresh_node().await, "e", ReadFrom::Start);
    late.until_offset(&mut t, 6).await;
    t.expect("events keep what fits in the bytes", late.snapshot_items(), Some(vec![big_event("b2", 560)]));
    let published = rig.publish(&mut t, "e", Events, vec![big_event("huge", 1200)]).await;
    t.expect("an event bigger than the whole state is refused", published, full("bytes", 1000));
    let published = rig.publish(&mut t, "e", Events, vec![event("e5"), event("e6")]).await;
    t.expect("two events in one message", published, Ok(7));
    live.until_offset(&mut t, 7).await;
    t.expect(
        "the refused event reached nobody",
        live.shapes(),
        shapes(&["snapshot@0", "update@1", "update@2", "update@3", "update@4", "update@5", "update@6", "update@7"]),
    );
    let mut late = Watcher::subscribe("late e@7", &rig.fresh_node().await, "e", ReadFrom::Start);
    late.until_offset(&mut t, 7).await;
    let expected = vec![big_event("b2", 560), event("e5"), event("e6")];
    t.expect("the state after the batch", late.snapshot_items(), Some(expected));
    t
}

/// Metric keys and documents over their limits, and metrics and documents over the state's bytes,
/// are refused and change nothing (limits: 2 keys, 2 documents, 60 bytes of state).
async fn keys_documents_and_state_bytes(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    rig.declare(&mut t, "m", Metrics).await.expect("declared");
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("a", 1.0), metric("b", 1.0)]).await;
    t.expect("two keys", published, Ok(1));
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("a", 2.0)]).await;
    t.expect("a key that exists", published, Ok(2));
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("c", 1.0)]).await;
    t.expect("a third key", published, full("metric keys", 2));
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("a", 3.0), metric("c", 1.0)]).await;
    t.expect("a third key with a known one", published, full("metric keys", 2));
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("a", 4.0), metric("a", 5.0)]).await;
    t.expect("one key twice in a message", published, Ok(3));
    let mut late = Watcher::subscribe("late m", &rig.fresh_node().await, "m", ReadFrom::Start);
    late.until_offset(&mut t, 3).await;
    t.expect("the metrics", late.snapshot_items(), Some(vec![metric("a", 5.0), metric("b", 1.0)]));

    // 24 characters: 48 bytes of state each, so one fits in 60 bytes and two do not.
    let (long1, long2) = ("abcdefghijklmnopqrstuvw1", "abcdefghijklmnopqrstuvw2");
    let published = rig.publish(&mut t, "mb", Metrics, vec![metric(long1, 1.0)]).await;
    t.expect("a long key", published, Ok(1));
    let published = rig.publish(&mut t, "mb", Metrics, vec![metric(long2, 1.0)]).await;
    t.expect("a second long key is too many bytes", published, full("bytes", 60));
    let published = rig.publish(&mut t, "mb", Metrics, vec![metric(long1, 2.0)]).await;
    t.expect("a known key costs nothing more", published, Ok(2));
    let mut late = Watcher::subscribe("late mb", &rig.fresh_node().await, "mb", ReadFrom::Start);
    late.until_offset(&mut t, 2).await;
    t.expect("the long key", late.snapshot_items(), Some(vec![metric(long1, 2.0)]));

    rig.declare(&mut t, "c", Collection).await.expect("declared");
    let mut live = rig.watch("live c", "c", ReadFrom::Start);
    live.until_offset(&mut t, 0).await;
    // 30 bytes each: two fill the 60 bytes exactly.
    let published = rig.publish(&mut t, "c", Collection, vec![sized_doc("a", 21), sized_doc("b", 21)]).await;
    t.expect("two documents", published, Ok(1));
    t.expect("both are new", t.created.clone(), vec!["a".to_owned(), "b".to_owned()]);
    let published = rig.publish(&mut t, "c", Collection, vec![upsert("c", 1)]).await;
    t.expect("a third document", published, full("documents", 2));
    let sneaky = vec![delete("b"), upsert("b", 1), upsert("c", 1)];
    let published = rig.publish(&mut t, "c", Collection, sneaky).await;
    t.expect("deleting and adding back b makes no room for c", published, full("documents", 2));
    let published = rig.publish(&mut t, "c", Collection, vec![delete("a"), sized_doc("c", 21)]).await;
    t.expect("a delete makes room", published, Ok(2));
    t.expect("c is new", t.created.clone(), vec!["c".to_owned()]);
    let published = rig.publish(&mut t, "c", Collection, vec![sized_doc("b", 22)]).await;
    t.expect("a document one byte bigger", published, full("bytes", 60));
    let published = rig.publish(&mut t, "c", Collection, vec![delete("b")]).await;
    t.expect("a delete", published, Ok(3));
    let published = rig.publish(&mut t, "c", Collection, vec![delete("zz")]).await;
    t.expect("deleting what is not there", published, Ok(4));
    let published = rig.publish(&mut t, "c", Collection, vec![upsert("a", 1), sized_doc("c", 21)]).await;
    t.expect("an upsert and a replacement", published, Ok(5));
    t.expect("a is new again, c is not", t.created.clone(), vec!["a".to_owned()]);
    live.until_offset(&mut t, 5).await;
    t.expect(
        "refused changes reached nobody",
        live.shapes(),
        shapes(&["snapshot@0", "update@1", "update@2", "update@3", "update@4", "update@5"]),
    );
    let mut late = Watcher::subscribe("late c", &rig.fresh_node().await, "c", ReadFrom::Start);
    late.until_offset(&mut t, 5).await;
    t.expect("the documents", late.snapshot_items(), Some(vec![upsert("a", 1), sized_doc("c", 21)]));
    t
}

/// The tenant's state budget (150 bytes) refuses what would grow the tenant's state past it, in any
/// of its topics, and a refused publish leaves nothing behind; what does not grow the state (a series
/// at its point limit, a known metric, a document replaced by one of the same size) is taken.
/// Sizes: a point 40 bytes, a metric `k1` 26, a document `{"n":1}` 8 plus its id.
async fn tenant_state_budget(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    rig.declare(&mut t, "m", Metrics).await.expect("declared");
    let mut live = rig.watch("live m", "m", ReadFrom::Start);
    live.until_offset(&mut t, 0).await;
    for (offset, v) in (1..).zip([1, 2]) {
        let published = rig.publish(&mut t, "s", Series, vec![point(v)]).await;
        t.expect("a point", published, Ok(offset));
    }
    for (offset, k) in (1..).zip(["k1", "k2"]) {
        let published = rig.publish(&mut t, "m", Metrics, vec![metric(k, 1.0)]).await;
        t.expect("a metric", published, Ok(offset));
    }
    let mut before = Watcher::subscribe("before", &rig.fresh_node().await, "m", ReadFrom::Start);
    before.until_offset(&mut t, 2).await;
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("k3", 1.0)]).await;
    t.expect("80 + 52 + 26 bytes is over 150", published, Err(BrokerError::TenantFull(150)));
    let mut after = Watcher::subscribe("after", &rig.fresh_node().await, "m", ReadFrom::Start);
    after.until_offset(&mut t, 2).await;
    t.expect("a refused publish leaves the state as it was", after.snapshot(), before.snapshot());
    let published = rig.publish(&mut t, "s", Series, vec![point(3)]).await;
    t.expect("a series at its point limit does not grow", published, Ok(3));
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("k1", 9.0)]).await;
    t.expect("a known metric does not grow", published, Ok(3));

    rig.declare(&mut t, "c", Collection).await.expect("declared");
    for (offset, id) in (1..).zip(["d", "e"]) {
        let published = rig.publish(&mut t, "c", Collection, vec![upsert(id, 1)]).await;
        t.expect("a document", published, Ok(offset));
    }
    let published = rig.publish(&mut t, "c", Collection, vec![upsert("f", 1)]).await;
    t.expect("148 + 8 bytes is over 150", published, Err(BrokerError::TenantFull(150)));
    let published = rig.publish(&mut t, "c", Collection, vec![delete("d"), upsert("f", 1)]).await;
    t.expect("a document for another of the same size", published, Ok(3));

    live.until_offset(&mut t, 3).await;
    t.expect(
        "the refused metric reached nobody",
        live.shapes(),
        shapes(&["snapshot@0", "update@1", "update@2", "update@3"]),
    );
    let node = rig.fresh_node().await;
    let mut states = Vec::new();
    for topic in ["s", "m", "c"] {
        let mut late = Watcher::subscribe("late", &node, topic, ReadFrom::Start);
        late.until_offset(&mut t, 3).await;
        states.push(late.snapshot_items().unwrap_or_default());
    }
    let expected = vec![
        vec![point(2), point(3)],
        vec![metric("k1", 9.0), metric("k2", 1.0)],
        vec![upsert("e", 1), upsert("f", 1)],
    ];
    t.expect("what each topic holds", states, expected);
    t
}

/// A refused publish to a topic that does not exist yet must not leave the topic behind: the name
/// stays free for any kind, and it does not count against the tenant's topics (limits: 3 topics,
/// 2 documents).
async fn refused_first_publish(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    let three = vec![upsert("x", 1), upsert("y", 1), upsert("z", 1)];
    let published = rig.publish(&mut t, "a", Collection, three).await;
    t.expect("three documents where two are allowed", published, full("documents", 2));
    let published = rig.publish(&mut t, "a", Series, vec![point(1)]).await;
    t.expect("nothing was left: `a` may be a series", published, Ok(1));
    let published = rig.publish(&mut t, "w", Series, vec![metric("k", 1.0)]).await;
    t.expect("metric items in a series", published, Err(BrokerError::State(StateError::WrongItem("series"))));
    let published = rig.publish(&mut t, "w", Metrics, vec![metric("k", 1.0)]).await;
    t.expect("nothing was left: `w` may be metrics", published, Ok(1));
    let published = rig.publish(&mut t, "b", Series, vec![point(1)]).await;
    t.expect("a third topic", published, Ok(1));
    let published = rig.publish(&mut t, "c", Series, vec![point(1)]).await;
    t.expect("a fourth topic is one too many", published, Err(BrokerError::TooManyTopics(3)));
    let node = rig.fresh_node().await;
    let mut a = Watcher::subscribe("late a", &node, "a", ReadFrom::Start);
    a.until_snapshot(&mut t).await;
    t.expect("`a`", a.snapshot(), Some((Series, vec![point(1)])));
    let mut w = Watcher::subscribe("late w", &node, "w", ReadFrom::Start);
    w.until_snapshot(&mut t).await;
    t.expect("`w`", w.snapshot(), Some((Metrics, vec![metric("k", 1.0)])));
    t
}

/// Events at their count limit rotate: the oldest goes as the newest comes, so the state does not
/// grow and the tenant's budget (room for two and a half events) does not refuse them.
async fn events_rotate_within_the_tenant_budget(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    rig.declare(&mut t, "e", Events).await.expect("declared");
    let mut live = rig.watch("live", "e", ReadFrom::Start);
    live.until_offset(&mut t, 0).await;
    let mut last = 0;
    for (offset, id) in (1..).zip(["e1", "e2", "e3", "e4", "e5"]) {
        let published = rig.publish(&mut t, "e", Events, vec![event(id)]).await;
        if let Ok(offset) = published {
            last = offset;
        }
        t.expect(&format!("event {id}"), published, Ok(offset));
    }
    live.until_offset(&mut t, last).await;
    let mut late = Watcher::subscribe("late", &rig.fresh_node().await, "e", ReadFrom::Start);
    late.until_offset(&mut t, last).await;
    t.expect("the two newest events", late.snapshot_items(), Some(vec![event("e4"), event("e5")]));
    t
}

/// A message without items changes no state, so it changes no budget either (limits: 2 points, a
/// tenant state budget of 150 bytes; a point costs 40, a metric `kN` 26).
async fn an_empty_message_keeps_the_budget(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    for (offset, v) in (1..).zip([1, 2]) {
        let published = rig.publish(&mut t, "s", Series, vec![point(v)]).await;
        t.expect("a point", published, Ok(offset));
    }
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("k1", 1.0)]).await;
    t.expect("a metric", published, Ok(1));
    let published = rig.publish(&mut t, "s", Series, Vec::new()).await;
    t.expect("an empty message", published, Ok(3));
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("k2", 1.0)]).await;
    t.expect("80 + 52 bytes", published, Ok(2));
    let published = rig.publish(&mut t, "m", Metrics, vec![metric("k3", 1.0)]).await;
    t.expect(
        "80 + 78 bytes is over 150: the series still holds its points",
        published,
        Err(BrokerError::TenantFull(150)),
    );
    let published = rig.publish(&mut t, "s", Series, vec![point(3)]).await;
    t.expect("a series at its point limit does not grow", published, Ok(4));
    let node = rig.fresh_node().await;
    let mut s = Watcher::subscribe("late s", &node, "s", ReadFrom::Start);
    s.until_snapshot(&mut t).await;
    t.expect("the series", s.snapshot_items(), Some(vec![point(2), point(3)]));
    let mut m = Watcher::subscribe("late m", &node, "m", ReadFrom::Start);
    m.until_snapshot(&mut t).await;
    t.expect("the metrics", m.snapshot_items(), Some(vec![metric("k1", 1.0), metric("k2", 1.0)]));
    t
}

/// History kept by count (3 messages): a resume from a position still kept replays exactly what was
/// missed; from one that is not, a gap and a snapshot; from the newest, nothing until the next.
async fn history_by_count(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    rig.declare(&mut t, "h", Series).await.expect("declared");
    let mut live = rig.watch("live", "h", ReadFrom::Start);
    live.until_offset(&mut t, 0).await;
    for v in 1..=6 {
        let published = rig.publish(&mut t, "h", Series, vec![point(v)]).await;
        t.expect("a point", published, Ok(v as u64));
    }
    live.until_offset(&mut t, 6).await;
    let node = rig.fresh_node().await;
    let (at0, at2, at3, at6) = (live.token_at(0), live.token_at(2), live.token_at(3), live.token_at(6));
    let mut from3 = Watcher::subscribe("from 3", &node, "h", ReadFrom::Token(&at3));
    let mut from2 = Watcher::subscribe("from 2", &node, "h", ReadFrom::Token(&at2));
    let mut from0 = Watcher::subscribe("from 0", &node, "h", ReadFrom::Token(&at0));
    let mut from6 = Watcher::subscribe("from 6", &node, "h", ReadFrom::Token(&at6));
    // Their catch-up first, then the next message: otherwise, with Redis, it could be part of a
    // snapshot rather than an update, depending on when the node loaded the topic.
    for watcher in [&mut from3, &mut from2, &mut from0] {
        watcher.until_offset(&mut t, 6).await;
    }
    let published = rig.publish(&mut t, "h", Series, vec![point(7)]).await;
    t.expect("a point", published, Ok(7));
    for watcher in [&mut from3, &mut from2, &mut from0, &mut from6] {
        watcher.until_offset(&mut t, 7).await;
    }
    t.expect("from 3: 4 to 6 are kept", from3.shapes(), shapes(&["update@4", "update@5", "update@6", "update@7"]));
    t.expect("from 2: 3 is not kept", from2.shapes(), shapes(&["gap", "snapshot@6", "update@7"]));
    t.expect("from 2: the snapshot", from2.snapshot_items(), Some(vec![point(5), point(6)]));
    t.expect("from 0", from0.shapes(), shapes(&["gap", "snapshot@6", "update@7"]));
    t.expect("from 6: up to date", from6.shapes(), shapes(&["update@7"]));
    t
}

/// History kept by bytes (room for two and a half messages of about a kilobyte, by the node's
/// measure): a resume is replayed or told of its gap as with a count.
async fn history_by_bytes(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    rig.declare(&mut t, "hb", Collection).await.expect("declared");
    let mut live = rig.watch("live", "hb", ReadFrom::Start);
    live.until_offset(&mut t, 0).await;
    for n in 1..=5 {
        let published = rig.publish(&mut t, "hb", Collection, vec![blob(n)]).await;
        t.expect("a document", published, Ok(n));
    }
    live.until_offset(&mut t, 5).await;
    let node = rig.fresh_node().await;
    let (at2, at3) = (live.token_at(2), live.token_at(3));
    let mut from3 = Watcher::subscribe("from 3", &node, "hb", ReadFrom::Token(&at3));
    let mut from2 = Watcher::subscribe("from 2", &node, "hb", ReadFrom::Token(&at2));
    from3.until_offset(&mut t, 5).await;
    from2.until_offset(&mut t, 5).await;
    let published = rig.publish(&mut t, "hb", Collection, vec![blob(6)]).await;
    t.expect("a document", published, Ok(6));
    from3.until_offset(&mut t, 6).await;
    from2.until_offset(&mut t, 6).await;
    t.expect("from 3: 4 and 5 are kept", from3.shapes(), shapes(&["update@4", "update@5", "update@6"]));
    t.expect("from 2: 3 is not kept", from2.shapes(), shapes(&["gap", "snapshot@5", "update@6"]));
    t.expect("from 2: the snapshot", from2.snapshot_items(), Some(vec![blob(5)]));
    t
}

/// The tenant's history budget: over it, the topic being written to forgets its oldest messages.
/// Here two topics of two messages each are over it by the node's measure, and the fourth message
/// makes `b` forget its first; a resume from before it is a gap, on any node.
async fn tenant_history_budget(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    let mut live = Vec::new();
    for topic in ["a", "b"] {
        rig.declare(&mut t, topic, Collection).await.expect("declared");
        let mut watcher = rig.watch("live", topic, ReadFrom::Start);
        watcher.until_offset(&mut t, 0).await;
        live.push(watcher);
    }
    for topic in ["a", "b"] {
        for n in 1..=2 {
            let published = rig.publish(&mut t, topic, Collection, vec![blob(n)]).await;
            t.expect("a document", published, Ok(n));
        }
    }
    for watcher in &mut live {
        watcher.until_offset(&mut t, 2).await;
    }
    let at0 = live[1].token_at(0);
    let mut here = Watcher::subscribe("same node from 0", &rig.broker, "b", ReadFrom::Token(&at0));
    here.until_offset(&mut t, 2).await;
    let mut there = Watcher::subscribe("other node from 0", &rig.fresh_node().await, "b", ReadFrom::Token(&at0));
    there.until_offset(&mut t, 2).await;
    t.expect("b's first message was forgotten", here.shapes(), shapes(&["gap", "snapshot@2"]));
    t.expect("b's first message was forgotten, whichever the node", there.shapes(), shapes(&["gap", "snapshot@2"]));
    t
}

/// Epochs: a token of another epoch (here another topic's), of an offset the topic never reached, or
/// that is not a token at all, gets a gap and a snapshot; the topic's own newest, nothing until the
/// next message.
async fn epochs(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    for topic in ["t", "u"] {
        for v in 1..=2 {
            let published = rig.publish(&mut t, topic, Series, vec![point(v)]).await;
            t.expect("a point", published, Ok(v as u64));
        }
    }
    let mut on_t = rig.watch("live t", "t", ReadFrom::Start);
    on_t.until_offset(&mut t, 2).await;
    let mut on_u = rig.watch("live u", "u", ReadFrom::Start);
    on_u.until_offset(&mut t, 2).await;
    let (t_token, u_token) = (on_t.token_at(2), on_u.token_at(2));
    let (t_epoch, _) = t_token.split_once('.').expect("epoch.offset");
    let future = format!("{t_epoch}.99");
    let node = rig.fresh_node().await;
    let mut other_epoch = Watcher::subscribe("another epoch", &node, "t", ReadFrom::Token(&u_token));
    let mut ahead = Watcher::subscribe("an offset ahead", &node, "t", ReadFrom::Token(&future));
    let mut garbage = Watcher::subscribe("not a token", &node, "t", ReadFrom::Token("not-a-token"));
    let mut newest = Watcher::subscribe("the newest", &node, "t", ReadFrom::Token(&t_token));
    for watcher in [&mut other_epoch, &mut ahead, &mut garbage] {
        watcher.until_offset(&mut t, 2).await;
    }
    let published = rig.publish(&mut t, "t", Series, vec![point(3)]).await;
    t.expect("a point", published, Ok(3));
    for watcher in [&mut other_epoch, &mut ahead, &mut garbage, &mut newest] {
        watcher.until_offset(&mut t, 3).await;
    }
    let resynced = shapes(&["gap", "snapshot@2", "update@3"]);
    t.expect("a token of another epoch", other_epoch.shapes(), resynced.clone());
    t.expect("a token ahead of the topic", ahead.shapes(), resynced.clone());
    t.expect("not a token", garbage.shapes(), resynced);
    t.expect("the newest token", newest.shapes(), shapes(&["update@3"]));
    t.expect("two topics, two epochs", t.epochs.len(), 2);
    t
}

/// History kept by age ([`AGE`]): once the first two messages are older than that, a resume from
/// before them is a gap, and one from after them is replayed, on a node that loads what the engine
/// kept.
async fn history_by_age(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    rig.declare(&mut t, "ha", Series).await.expect("declared");
    let mut live = rig.watch("live", "ha", ReadFrom::Start);
    live.until_offset(&mut t, 0).await;
    for v in 1..=2 {
        let published = rig.publish(&mut t, "ha", Series, vec![point(v)]).await;
        t.expect("a point", published, Ok(v as u64));
    }
    live.until_offset(&mut t, 2).await;
    // Started before the wait: starting a node takes time on a loaded machine, which must not
    // count against the third message's age.
    let node = rig.fresh_node().await;
    tokio::time::sleep(AGE + MARGIN).await;
    rig.sweep();
    // Redis trims what aged out as it appends this one.
    let published = rig.publish(&mut t, "ha", Series, vec![point(3)]).await;
    t.expect("a point", published, Ok(3));
    live.until_offset(&mut t, 3).await;
    let (at1, at2) = (live.token_at(1), live.token_at(2));
    let mut from2 = Watcher::subscribe("from 2", &node, "ha", ReadFrom::Token(&at2));
    let mut from1 = Watcher::subscribe("from 1", &node, "ha", ReadFrom::Token(&at1));
    from2.until_offset(&mut t, 3).await;
    from1.until_offset(&mut t, 3).await;
    t.expect("from 2: 3 is young", from2.shapes(), shapes(&["update@3"]));
    t.expect("from 1: 2 aged out", from1.shapes(), shapes(&["gap", "snapshot@3"]));
    t.expect("the state does not age", from1.snapshot_items(), Some(vec![point(2), point(3)]));
    t
}

/// A topic nobody published to or followed for [`IDLE`] is retired; the next publish starts it
/// over at offset 1 in a new epoch, and a reader back with a position of the old one gets a gap and
/// the new snapshot.
async fn idle_topics_retire(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    for v in 1..=2 {
        let published = rig.publish(&mut t, "i", Series, vec![point(v)]).await;
        t.expect("a point", published, Ok(v as u64));
    }
    let mut first = rig.watch("first", "i", ReadFrom::Start);
    first.until_offset(&mut t, 2).await;
    let old = first.token_at(2);
    first.leave(&rig.broker);
    let node = rig.fresh_node().await;
    tokio::time::sleep(IDLE + MARGIN).await;
    rig.sweep();
    let published = rig.publish(&mut t, "i", Series, vec![point(3)]).await;
    t.expect("the first message of the topic started over", published, Ok(1));
    let mut back = Watcher::subscribe("back with an old position", &node, "i", ReadFrom::Token(&old));
    back.until_offset(&mut t, 1).await;
    t.expect("back: the old epoch is gone", back.shapes(), shapes(&["gap", "snapshot@1"]));
    t.expect("back: only the new message", back.snapshot_items(), Some(vec![point(3)]));
    t.expect("a new epoch", t.epochs.len(), 2);
    t
}

/// A topic keeps its kind: publishing or declaring it as another is refused, as are items that are
/// not of its kind, and nothing refused takes an offset.
async fn kind_mismatch_is_refused(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    let published = rig.publish(&mut t, "k", Series, vec![point(1)]).await;
    t.expect("a point", published, Ok(1));
    let published = rig.publish(&mut t, "k", Metrics, vec![metric("a", 1.0)]).await;
    t.expect("metrics to a series topic", published, kind_mismatch("k", Series, Metrics));
    let declared = rig.declare(&mut t, "k", Events).await;
    t.expect(
        "declared as events",
        declared,
        Err(BrokerError::KindMismatch { topic: "k".into(), existing: Series, given: Events }),
    );
    let declared = rig.declare(&mut t, "k", Series).await;
    t.expect("declared as what it is", declared, Ok(()));
    let published = rig.publish(&mut t, "k", Series, vec![metric("a", 1.0)]).await;
    t.expect("metric items as a series", published, Err(BrokerError::State(StateError::WrongItem("series"))));
    let published = rig.publish(&mut t, "k", Series, vec![point(2)]).await;
    t.expect("the next point takes the next offset", published, Ok(2));
    let mut late = Watcher::subscribe("late", &rig.fresh_node().await, "k", ReadFrom::Start);
    late.until_offset(&mut t, 2).await;
    t.expect("the series", late.snapshot(), Some((Series, vec![point(1), point(2)])));
    t
}

/// A message wrong in itself is refused for what it is, before the topic is looked at, so the
/// answer does not depend on which topic it was sent to; a message right in itself but of another
/// kind than its topic is refused for its kind (limits: 2 keys, 2 documents, 1000 bytes of state).
async fn a_message_wrong_in_itself_is_refused_for_that(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    let published = rig.publish(&mut t, "k", Series, vec![point(1)]).await;
    t.expect("a point", published, Ok(1));
    let keys = vec![metric("a", 1.0), metric("b", 1.0), metric("c", 1.0)];
    let published = rig.publish(&mut t, "k", Metrics, keys).await;
    t.expect("three metric keys, more than any topic holds", published, full("metric keys", 2));
    let published = rig.publish(&mut t, "k", Events, vec![big_event("huge", 1200)]).await;
    t.expect("an event larger than any state", published, full("bytes", 1000));
    let documents = vec![upsert("x", 1), upsert("y", 1), upsert("z", 1)];
    let published = rig.publish(&mut t, "k", Collection, documents).await;
    t.expect("three documents, more than any topic holds", published, full("documents", 2));
    let published = rig.publish(&mut t, "k", Metrics, vec![point(2)]).await;
    t.expect("points named metrics", published, Err(BrokerError::State(StateError::WrongItem("metrics"))));
    let published = rig.publish(&mut t, "k", Metrics, vec![metric("a", 1.0)]).await;
    t.expect("one metric to a series topic", published, kind_mismatch("k", Series, Metrics));
    let mut late = Watcher::subscribe("late", &rig.fresh_node().await, "k", ReadFrom::Start);
    late.until_offset(&mut t, 1).await;
    t.expect("nothing refused reached the topic", late.snapshot(), Some((Series, vec![point(1)])));
    t
}

/// `publish_from` publishes each position of an outside stream once: a repeated or older position is
/// a duplicate, each stream counts on its own, and a refused message does not use its position up.
async fn publish_from_dedupes(rig: &Rig) -> Transcript {
    let mut t = rig.transcript();
    let (p0, p1) = ("kafka:g:t:0", "kafka:g:t:1");
    rig.declare(&mut t, "src", Metrics).await.expect("declared");
    let mut live = rig.watch("live", "src", ReadFrom::Start);
    live.until_offset(&mut t, 0).await;
    let published = rig.publish_from(&mut t, "src", Metrics, vec![metric("a", 1.0)], (p0, 10)).await;
    t.expect("p0@10", published, Ok(Some(1)));
    let published = rig.publish_from(&mut t, "src", Metrics, vec![metric("a", 1.0)], (p0, 10)).await;
    t.expect("p0@10 again", published, Ok(None));
    let published = rig.publish_from(&mut t, "src", Metrics, vec![metric("a", 0.5)], (p0, 9)).await;
    t.expect("p0@9, older", published, Ok(None));
    let published = rig.publish_from(&mut t, "src", Metrics, vec![metric("b", 2.0)], (p0, 11)).await;
    t.expect("p0@11", published, Ok(Some(2)));
    let published = rig.publish_from(&mut t, "src", Metrics, vec![metric("a", 3.0)], (p1, 0)).await;
    t.expect("p1@0: another stream", published, Ok(Some(3)));
    let published = rig.publish_from(&mut t, "src", Metrics, vec![metric("c", 1.0)], (p0, 12)).await;
    t.expect(
        "p0@12, a third key",
        published,
        Err(BrokerError::State(StateError::Full { what: "metric keys", limit: 2 })),
    );
    let published = rig.publish_from(&mut t, "src", Metrics, vec![metric("a", 4.0)], (p0, 12)).await;
    t.expect("p0@12 again, now taken", published, Ok(Some(4)));
    let published = rig.publish_from(&mut t, "src", Metrics, vec![metric("a", 5.0)], (p0, 12)).await;
    t.expect("p0@12 once more", published, Ok(None));
    live.until_offset(&mut t, 4).await;
    let expected = vec![vec![metric("a", 1.0)], vec![metric("b", 2.0)], vec![metric("a", 3.0)], vec![metric("a", 4.0)]];
    t.expect("each message once", live.updates(), expected);
    let mut late = Watcher::subscribe("late", &rig.fresh_node().await, "src", ReadFrom::Start);
    late.until_offset(&mut t, 4).await;
    t.expect("the metrics", late.snapshot_items(), Some(vec![metric("a", 4.0), metric("b", 2.0)]));
    t
}

// ---------------------------------------------------------------------------------------------
// Tests: each scenario against both engines, then compared.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_gives_the_same_snapshot_then_updates() {
    let redis = RedisServer::start();
    let config = limits(|_| {});
    let memory = every_kind(&Rig::memory(config)).await;
    let shared = every_kind(&Rig::redis(&redis, config).await).await;
    compare("every kind", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_and_events_keep_the_same_newest_items() {
    let redis = RedisServer::start();
    let config = limits(|c| {
        c.state.events = 3;
        c.state.max_bytes = 1000;
    });
    let memory = newest_points_and_events(&Rig::memory(config)).await;
    let shared = newest_points_and_events(&Rig::redis(&redis, config).await).await;
    compare("newest points and events", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_documents_and_state_bytes_are_refused_alike() {
    let redis = RedisServer::start();
    let config = limits(|c| c.state.max_bytes = 60);
    let memory = keys_documents_and_state_bytes(&Rig::memory(config)).await;
    let shared = keys_documents_and_state_bytes(&Rig::redis(&redis, config).await).await;
    compare("metric keys, documents and state bytes", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_state_budget_refuses_alike_and_leaves_nothing_behind() {
    let redis = RedisServer::start();
    let config = limits(|c| {
        c.tenant_state_max_bytes = 150;
        c.state.metric_keys = 10;
        c.state.documents = 10;
    });
    let memory = tenant_state_budget(&Rig::memory(config)).await;
    let shared = tenant_state_budget(&Rig::redis(&redis, config).await).await;
    compare("tenant state budget", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_first_publish_leaves_no_topic_behind() {
    let redis = RedisServer::start();
    let config = limits(|c| c.max_topics_per_tenant = 3);
    let memory = refused_first_publish(&Rig::memory(config)).await;
    let shared = refused_first_publish(&Rig::redis(&redis, config).await).await;
    compare("a refused first publish", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_at_their_limit_rotate_within_the_tenant_state_budget() {
    let redis = RedisServer::start();
    // Every event here is the same size: room for two and a half.
    let size = serde_json::to_string(&event("e1")).expect("serialises").len();
    let config = limits(|c| c.tenant_state_max_bytes = 2 * size + size / 2);
    let memory = events_rotate_within_the_tenant_budget(&Rig::memory(config)).await;
    let shared = events_rotate_within_the_tenant_budget(&Rig::redis(&redis, config).await).await;
    compare("events rotating within the tenant's budget", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_message_changes_no_budget() {
    let redis = RedisServer::start();
    let config = limits(|c| {
        c.tenant_state_max_bytes = 150;
        c.state.metric_keys = 10;
    });
    let memory = an_empty_message_keeps_the_budget(&Rig::memory(config)).await;
    let shared = an_empty_message_keeps_the_budget(&Rig::redis(&redis, config).await).await;
    compare("an empty message", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_trimmed_by_count_alike() {
    let redis = RedisServer::start();
    let config = limits(|c| c.history_len = 3);
    let memory = history_by_count(&Rig::memory(config)).await;
    let shared = history_by_count(&Rig::redis(&redis, config).await).await;
    compare("history by count", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_trimmed_by_bytes_alike() {
    let redis = RedisServer::start();
    let entry = node_entry_bytes("hb", Collection, 1, &[blob(1)]);
    let config = limits(|c| {
        c.history_len = 100;
        c.history_max_bytes = 2 * entry + entry / 2;
    });
    let memory = history_by_bytes(&Rig::memory(config)).await;
    let shared = history_by_bytes(&Rig::redis(&redis, config).await).await;
    compare("history by bytes", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_history_budget_trims_alike() {
    let redis = RedisServer::start();
    // Room for three such messages and a half: the fourth makes the topic written to forget one.
    let entry = node_entry_bytes("a", Collection, 1, &[blob(1)]);
    let budget = 3 * entry + entry / 2;
    let config = limits(|c| {
        c.history_len = 100;
        c.tenant_history_max_bytes = budget;
    });
    let memory = tenant_history_budget(&Rig::memory(config)).await;
    let shared = tenant_history_budget(&Rig::redis(&redis, config).await).await;
    compare("tenant history budget", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_trimmed_by_age_alike() {
    let redis = RedisServer::start();
    let config = limits(|c| {
        c.history_len = 100;
        c.history_max_age = AGE;
    });
    let memory = history_by_age(&Rig::memory(config)).await;
    let shared = history_by_age(&Rig::redis(&redis, config).await).await;
    compare("history by age", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_topic_retires_and_starts_over_in_a_new_epoch_alike() {
    let redis = RedisServer::start();
    let config = limits(|c| c.topic_idle = IDLE);
    let memory = idle_topics_retire(&Rig::memory(config)).await;
    let shared = idle_topics_retire(&Rig::redis(&redis, config).await).await;
    compare("idle topics", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_another_epoch_get_a_gap_and_a_snapshot_alike() {
    let redis = RedisServer::start();
    let config = limits(|_| {});
    let memory = epochs(&Rig::memory(config)).await;
    let shared = epochs(&Rig::redis(&redis, config).await).await;
    compare("epochs", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_kind_is_refused_alike() {
    let redis = RedisServer::start();
    let config = limits(|_| {});
    let memory = kind_mismatch_is_refused(&Rig::memory(config)).await;
    let shared = kind_mismatch_is_refused(&Rig::redis(&redis, config).await).await;
    compare("kind mismatch", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_wrong_in_itself_is_refused_for_that_alike() {
    let redis = RedisServer::start();
    let config = limits(|c| c.state.max_bytes = 1000);
    let memory = a_message_wrong_in_itself_is_refused_for_that(&Rig::memory(config)).await;
    let shared = a_message_wrong_in_itself_is_refused_for_that(&Rig::redis(&redis, config).await).await;
    compare("a message wrong in itself", memory, shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_dedupes_alike() {
    let redis = RedisServer::start();
    let config = limits(|_| {});
    let memory = publish_from_dedupes(&Rig::memory(config)).await;
    let shared = publish_from_dedupes(&Rig::redis(&redis, config).await).await;
    compare("publish_from", memory, shared);
}
