//! The Kafka bridge against a real Kafka-protocol broker (tansu, started by the test on a free
//! loopback port), with librdkafka 2.x (rdkafka's bundled build) on both sides.

mod support;

use app::protocol::{ControlMessage, Item, ServerMessage};
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};
use server::config::Config;
use std::time::Duration;
use support::{TestServer, tansu::Tansu};

/// Orders into `acme`'s `orders/<region>` series, valued by `amount`.
const ORDERS: &str = r#"
[[route]]
kafka_topic = "orders"
tenant = "acme"
topic = "orders/{region}"
kind = "series"
value = "amount"
timestamp = { field = "at", unit = "ms" }
"#;

/// A node whose bridge reads `tansu` with `routes`; the mapping file lives in the returned dir.
async fn node_with_bridge(tansu: &Tansu, group: &str, routes: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.toml");
    let kafka = format!(
        "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{group}\"\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n",
        tansu.brokers()
    );
    std::fs::write(&path, format!("{kafka}{routes}")).unwrap();
    let config = Config { demo: false, kafka_bridge: Some(path.to_str().unwrap().to_owned()), ..Config::default() };
    (TestServer::start(config).await, dir)
}

fn producer(tansu: &Tansu) -> FutureProducer {
    ClientConfig::new().set("bootstrap.servers", tansu.brokers()).create().expect("a producer")
}

/// Sends one message keyed by `key`: Kafka keeps order per partition, and a key always maps to one.
async fn produce(producer: &FutureProducer, topic: &str, key: &str, payload: &str) {
    let sent = producer.send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(10)).await;
    assert!(sent.is_ok(), "{sent:?}");
}

/// The points a viewer of `topic` sees, snapshot and updates, until it has `count`.
async fn values_seen(viewer: &mut support::Client, count: usize) -> Vec<f64> {
    let mut values = Vec::new();
    while values.len() < count {
        let items = match viewer.next_message().await {
            ServerMessage::Control(ControlMessage::Snapshot { series, .. }) => series,
            ServerMessage::Update(update) => update.series,
            ServerMessage::Control(_) => continue,
        };
        values.extend(items.iter().filter_map(Item::as_point).map(|p| p.value));
    }
    values
}

/// A consumer in `group` with the short session timeout tansu needs for quick rebalances.
fn consumer(brokers: &str, group: &str) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("a consumer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_broker_takes_a_message_and_a_consumer_group_reads_it_back() {
    let tansu = Tansu::start();
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", tansu.brokers()).create().expect("a producer");
    let delivered =
        producer.send(FutureRecord::to("orders").key("o-1").payload(r#"{"amount":42}"#), Duration::from_secs(10)).await;
    assert!(delivered.is_ok(), "{delivered:?}");
    let consumer = consumer(&tansu.brokers(), "livedash-test");
    consumer.subscribe(&["orders"]).unwrap();
    let message = tokio::time::timeout(support::WAIT, consumer.recv()).await.expect("a message in time").unwrap();
    assert_eq!(message.payload(), Some(&br#"{"amount":42}"#[..]));
    assert_eq!((message.topic(), message.offset()), ("orders", 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_messages_arrive_as_chart_updates_in_order() {
    let tansu = Tansu::start();
    let kafka = producer(&tansu);
    let (server, _dir) = node_with_bridge(&tansu, "in-order", ORDERS).await;
    let mut viewer = server.connect().await;
    viewer.subscribe("w", "orders/eu", None).await;
    for i in 1..=20 {
        let region = if i % 5 == 0 { "us" } else { "eu" };
        produce(&kafka, "orders", region, &format!(r#"{{"region":"{region}","amount":{i},"at":{}}}"#, 1_000 + i)).await;
    }
    let seen = values_seen(&mut viewer, 16).await;
    let wanted: Vec<f64> = (1..=20).filter(|i| i % 5 != 0).map(f64::from).collect();
    assert_eq!(seen, wanted, "every eu order, once, in order; the us ones went to orders/us");
    server.stop().await;
}
