//! The running bridge: a Kafka consumer (librdkafka, one consumer group) feeding a bounded channel,
//! and a publisher draining it into the engine in order.
//!
//! Nothing is lost and nothing shows twice:
//! - librdkafka commits only offsets the publisher stored, and it stores one only once its message
//!   was taken by the engine, or refused and dead-lettered. A crash therefore re-delivers.
//! - Every message is published with its Kafka position ([`Engine::publish_from`]), so a message
//!   delivered again (after a crash or a rebalance) is dropped where the topics are.
//! - When the channel is full, the consumer pauses its partitions until there is room, instead of
//!   buffering without bound; librdkafka's own prefetch is capped too.

use super::{
    mapping::{CheckedRoute, KafkaSettings},
    normalise::{KafkaPosition, Normalised, Rejection, normalise},
    recent::RecentKeys,
};
use crate::topic_name::TopicKey;
use crate::{
    broker::{
        BrokerError,
        engine::{Engine, Source},
    },
    shutdown::ShutdownSignal,
    telemetry,
};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
    error::KafkaError,
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::mpsc::{self, error::TrySendError};

/// Message keys remembered per route for `dedupe_key`.
const RECENT_KEYS: usize = 100_000;

/// How long the bridge waits for a dead letter to be delivered before it tries again.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the bridge is connected to its cluster, for `/readyz`.
#[derive(Debug, Default)]
pub struct BridgeStatus {
    connected: AtomicBool,
}

impl BridgeStatus {
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }
}

/// One consumed message on its way to the engine.
struct Job {
    kafka_topic: String,
    at: KafkaPosition,
    outcome: Result<(TopicKey, protocol::TopicKind, Normalised), Rejection>,
    payload: Vec<u8>,
}

/// Starts the bridge's consumer and publisher; they run until shutdown.
pub fn start(
    settings: KafkaSettings,
    routes: Vec<CheckedRoute>,
    engine: Arc<dyn Engine>,
    shutdown: ShutdownSignal,
) -> Result<Arc<BridgeStatus>, KafkaError> {
    let consumer: Arc<StreamConsumer> = Arc::new(consumer_config(&settings).create()?);
    let topics: Vec<&str> = routes.iter().map(|r| r.route.kafka_topic.as_str()).collect();
    consumer.subscribe(&topics)?;
    let dead_letters = match &settings.dead_letter_topic {
        Some(topic) => Some((producer_config(&settings).create::<FutureProducer>()?, topic.clone())),
        None => None,
    };
    let status = Arc::new(BridgeStatus::default());
    let (jobs, queued) = mpsc::channel(settings.channel_capacity);
    let routes: HashMap<String, CheckedRoute> = routes.into_iter().map(|r| (r.route.kafka_topic.clone(), r)).collect();
    tokio::spawn(watch_connection(consumer.clone(), status.clone(), shutdown.clone()));
    tokio::spawn(consume(consumer.clone(), routes, settings.max_message_bytes, jobs, shutdown.clone()));
    tokio::spawn(publish(consumer, settings.group_id.clone(), engine, queued, dead_letters, shutdown));
    Ok(status)
}

fn consumer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .set("auto.offset.reset", "earliest")
        // Commits run on their own, but only offsets the publisher stored.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        // librdkafka's prefetch per partition, bounded (its defaults allow about 1 GB).
        .set("queued.max.messages.kbytes", "8192")
        .set("session.timeout.ms", "10000");
    for (key, value) in &settings.properties {
        config.set(key, value);
    }
    config
}

fn producer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &settings.brokers);
    for (key, value) in &settings.properties {
        config.set(key, value);
    }
    config
}

/// How often the bridge asks the cluster for its metadata, to say whether it is connected.
const CONNECTION_CHECK: Duration = Duration::from_secs(5);

/// Keeps [`BridgeStatus`] true while the cluster answers a metadata request.
async fn watch_connection(consumer: Arc<StreamConsumer>, status: Arc<BridgeStatus>, mut shutdown: ShutdownSignal) {
    loop {
        let asking = consumer.clone();
        // Blocking calls in librdkafka, so off the async threads.
        let (answered, lags) = tokio::task::spawn_blocking(move || {
            let answered = asking.fetch_metadata(None, CONNECTION_CHECK / 2).is_ok();
            (answered, if answered { lags(&asking) } else { Vec::new() })
        })
        .await
        .unwrap_or_default();
        for (topic, partition, lag) in lags {
            metrics::gauge!(telemetry::BRIDGE_LAG, "topic" => topic, "partition" => partition.to_string())
                .set(lag as f64);
        }
        if answered != status.connected.swap(answered, Ordering::AcqRel) {
            tracing::info!(connected = answered, "the Kafka bridge's link to its cluster changed");
        }
        tokio::select! {
            _ = tokio::time::sleep(CONNECTION_CHECK) => {}
            _ = shutdown.stopping() => return,
        }
    }
}

/// Messages behind the newest, per partition this consumer holds: the partition's high watermark
/// less the position the consumer reads next.
fn lags(consumer: &StreamConsumer) -> Vec<(String, i32, i64)> {
    let Ok(positions) = consumer.position() else { return Vec::new() };
    positions
        .elements()
        .iter()
        .filter_map(|p| {
            let Offset::Offset(next) = p.offset() else { return None };
            let (_, high) = consumer.fetch_watermarks(p.topic(), p.partition(), CONNECTION_CHECK / 2).ok()?;
            Some((p.topic().to_owned(), p.partition(), (high - next).max(0)))
        })
        .collect()
}

/// Reads messages, normalises them and queues them in order; pauses its partitions while the
/// queue is full.
async fn consume(
    consumer: Arc<StreamConsumer>,
    routes: HashMap<String, CheckedRoute>,
    max_bytes: usize,
    jobs: mpsc::Sender<Job>,
    mut shutdown: ShutdownSignal,
) {
    loop {
        let received = tokio::select! {
            received = consumer.recv() => received,
            _ = shutdown.stopping() => return,
        };
        let message = match received {
            Ok(message) => message,
            Err(e) => {
                metrics::counter!(telemetry::BRIDGE_ERRORS).increment(1);
                tracing::warn!(error = %e, "the Kafka bridge could not read; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let at = KafkaPosition { partition: message.partition(), offset: message.offset() };
        let kafka_topic = message.topic().to_owned();
        let payload = message.payload().unwrap_or_default().to_vec();
        drop(message);
        let Some(route) = routes.get(&kafka_topic) else { continue };
        let outcome = normalise(route, &payload, max_bytes, at, crate::clock::now_ms()).map(|normalised| {
            (TopicKey::new(route.tenant.clone(), normalised.topic.clone()), route.route.kind.topic_kind(), normalised)
        });
        let job = Job { kafka_topic, at, outcome, payload };
        match jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Closed(_)) => return,
            Err(TrySendError::Full(job)) => {
                // Stop fetching until the publisher catches up, rather than hold more.
                let paused = consumer.assignment().and_then(|partitions| {
                    consumer.pause(&partitions)?;
                    Ok(partitions)
                });
                metrics::counter!(telemetry::BRIDGE_PAUSES).increment(1);
                let sent = tokio::select! {
                    sent = jobs.send(job) => sent.is_ok(),
                    _ = shutdown.stopping() => return,
                };
                if let Ok(partitions) = paused
                    && let Err(e) = consumer.resume(&partitions)
                {
                    tracing::warn!(error = %e, "the Kafka bridge could not resume its partitions");
                }
                if !sent {
                    return;
                }
            }
        }
    }
}

/// Publishes queued messages in order, then stores their offsets for the next commit.
async fn publish(
    consumer: Arc<StreamConsumer>,
    group: String,
    engine: Arc<dyn Engine>,
    mut queued: mpsc::Receiver<Job>,
    dead_letters: Option<(FutureProducer, String)>,
    mut shutdown: ShutdownSignal,
) {
    // The last offset stored per partition, committed once more at shutdown so that a restart
    // resumes exactly after the last message taken.
    let mut stored: HashMap<(String, i32), i64> = HashMap::new();
    let mut recent: HashMap<String, RecentKeys> = HashMap::new();
    while let Some(job) = tokio::select! {
        job = queued.recv() => job,
        _ = shutdown.stopping() => None,
    } {
        let refusal = match job.outcome {
            Ok((_, _, Normalised { dedupe: Some(ref id), .. }))
                if !recent
                    .entry(job.kafka_topic.clone())
                    .or_insert_with(|| RecentKeys::new(RECENT_KEYS))
                    .first_time(id) =>
            {
                metrics::counter!(telemetry::BRIDGE_DUPLICATES, "by" => "key").increment(1);
                None
            }
            Ok((key, kind, normalised)) => {
                let source = Source {
                    stream: format!("kafka:{group}:{}:{}", job.kafka_topic, job.at.partition),
                    position: job.at.offset,
                };
                match publish_until_taken(engine.as_ref(), key, kind, normalised, source, &mut shutdown).await {
                    Some(Ok(true)) => None,
                    Some(Ok(false)) => {
                        metrics::counter!(telemetry::BRIDGE_DUPLICATES, "by" => "position").increment(1);
                        None
                    }
                    Some(Err(e)) => Some(("refused", e.to_string())),
                    None => break, // shutting down: this message's offset stays uncommitted
                }
            }
            Err(rejection) => Some((rejection.reason(), rejection.to_string())),
        };
        match refusal {
            None => metrics::counter!(telemetry::BRIDGE_ACCEPTED).increment(1),
            Some((reason, detail)) => {
                metrics::counter!(telemetry::BRIDGE_REJECTED, "reason" => reason).increment(1);
                tracing::warn!(
                    topic = %job.kafka_topic,
                    partition = job.at.partition,
                    offset = job.at.offset,
                    reason,
                    "the Kafka bridge skipped a message: {detail}"
                );
                if let Some((producer, topic)) = &dead_letters
                    && !dead_letter(producer, topic, &job.payload, reason, &detail, &mut shutdown).await
                {
                    break; // shutting down before Kafka took the copy: this offset stays uncommitted
                }
            }
        }
        match consumer.store_offset(&job.kafka_topic, job.at.partition, job.at.offset) {
            Ok(()) => {
                stored.insert((job.kafka_topic, job.at.partition), job.at.offset);
            }
            // After a rebalance the partition may be another consumer's: it re-reads from the
            // last commit, and the positions make the repeats harmless.
            Err(e) => tracing::debug!(error = %e, "the Kafka bridge could not store an offset"),
        }
    }
    commit_stored(consumer, stored).await;
}

/// How long the bridge waits at shutdown for its last commit.
const LAST_COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Commits, and waits for, the offsets after the last messages taken (Kafka's committed offset is
/// the next one to read). librdkafka's commit blocks, so it runs off the async threads, and a
/// cluster that does not answer holds the shutdown no longer than [`LAST_COMMIT_TIMEOUT`].
async fn commit_stored(consumer: Arc<StreamConsumer>, stored: HashMap<(String, i32), i64>) {
    let mut partitions = TopicPartitionList::new();
    for ((topic, partition), offset) in &stored {
        if let Err(e) = partitions.add_partition_offset(topic, *partition, Offset::Offset(offset + 1)) {
            tracing::warn!(error = %e, "the Kafka bridge could not name an offset to commit");
        }
    }
    if partitions.count() == 0 {
        return;
    }
    let committing = tokio::task::spawn_blocking(move || consumer.commit(&partitions, CommitMode::Sync));
    match tokio::time::timeout(LAST_COMMIT_TIMEOUT, committing).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the Kafka bridge could not commit its last offsets"),
        _ => tracing::warn!("the Kafka bridge's last commit did not finish in time"),
    }
}

/// Publishes one message, retrying while the engine cannot take messages (Redis away) so that
/// nothing is skipped: `Some(Ok(false))` for a message published before, `Some(Err)` when the
/// engine refuses it for good, `None` at shutdown.
async fn publish_until_taken(
    engine: &dyn Engine,
    key: TopicKey,
    kind: protocol::TopicKind,
    normalised: Normalised,
    source: Source,
    shutdown: &mut ShutdownSignal,
) -> Option<Result<bool, BrokerError>> {
    let mut pause = Duration::from_millis(100);
    loop {
        let published = engine.publish_from(key.clone(), kind, normalised.items.clone(), source.clone()).await;
        match published {
            Ok(published) => return Some(Ok(published.is_some())),
            Err(BrokerError::Unavailable(why)) => {
                tracing::warn!(why, "the Kafka bridge waits for the engine");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.stopping() => return None,
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(refused) => return Some(Err(refused)),
        }
    }
}

/// Copies a bad message to the dead-letter topic, the reason in its headers; tries until Kafka
/// takes it, so a skipped message is never lost without a copy. `false` if shutdown came first.
async fn dead_letter(
    producer: &FutureProducer,
    topic: &str,
    payload: &[u8],
    reason: &str,
    detail: &str,
    shutdown: &mut ShutdownSignal,
) -> bool {
    loop {
        let headers = OwnedHeaders::new()
            .insert(Header { key: "livedash-reason", value: Some(reason) })
            .insert(Header { key: "livedash-detail", value: Some(detail) });
        let record = FutureRecord::<(), [u8]>::to(topic).payload(payload).headers(headers);
        match producer.send(record, DEAD_LETTER_TIMEOUT).await {
            Ok(_) => {
                metrics::counter!(telemetry::BRIDGE_DEAD_LETTERS).increment(1);
                return true;
            }
            Err((e, _)) => {
                tracing::warn!(error = %e, "the Kafka bridge could not dead-letter a message; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.stopping() => return false,
                }
            }
        }
    }
}
