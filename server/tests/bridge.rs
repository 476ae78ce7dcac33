//! The Kafka bridge against a real Kafka-protocol broker (tansu, started by the test on a free
//! loopback port), with librdkafka 2.x (rdkafka's bundled build) on both sides.

mod support;

use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};
use std::time::Duration;
use support::tansu::Tansu;

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
