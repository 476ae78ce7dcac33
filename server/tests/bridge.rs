//! The Kafka bridge against a real Kafka-protocol broker (tansu, started by the test on a free
//! loopback port), with librdkafka 2.x (rdkafka's bundled build) on both sides.

mod support;

use protocol::{ControlMessage, Item, ServerMessage};
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

/// A mapping file for `tansu`, consumer group `group`, with `kafka` lines added to `[kafka]` and
/// `routes`, in a directory of its own.
fn mapping(tansu: &Tansu, group: &str, kafka: &str, routes: &str) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.toml");
    let text = format!(
        "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{group}\"\n{kafka}\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n{routes}",
        tansu.brokers()
    );
    std::fs::write(&path, text).unwrap();
    (path.to_str().unwrap().to_owned(), dir)
}

/// A node whose bridge reads `tansu` with `routes`; the mapping file lives in the returned dir.
async fn node_with_bridge(tansu: &Tansu, group: &str, routes: &str) -> (TestServer, tempfile::TempDir) {
    let (path, dir) = mapping(tansu, group, "", routes);
    let config = Config { demo: false, kafka_bridge: Some(path), ..Config::default() };
    (TestServer::start(config).await, dir)
}

/// An admin of acme following `orders/eu` (which the bridge makes when its first order comes).
async fn eu_viewer(server: &TestServer) -> support::Client {
    let mut viewer = server.connect().await;
    viewer.subscribe("w", "orders/eu", None).await;
    viewer
}

fn order(region: &str, amount: u32) -> String {
    format!(r#"{{"region":"{region}","amount":{amount},"at":{}}}"#, 1_000 + amount)
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
    let mut viewer = eu_viewer(&server).await;
    for i in 1..=20 {
        let region = if i % 5 == 0 { "us" } else { "eu" };
        produce(&kafka, "orders", region, &format!(r#"{{"region":"{region}","amount":{i},"at":{}}}"#, 1_000 + i)).await;
    }
    let seen = values_seen(&mut viewer, 16).await;
    let wanted: Vec<f64> = (1..=20).filter(|i| i % 5 != 0).map(f64::from).collect();
    assert_eq!(seen, wanted, "every eu order, once, in order; the us ones went to orders/us");
    // Caught up: every partition it holds is 0 behind (the gauge is read every 5 s).
    support::eventually_async("the lag is measured and nothing is behind", || async {
        let text = reqwest::get(server.metrics_url()).await.unwrap().text().await.unwrap();
        let lags: Vec<&str> =
            text.lines().filter(|l| l.starts_with("livedash_bridge_lag{") && l.contains(r#"topic="orders""#)).collect();
        !lags.is_empty() && lags.iter().all(|l| l.ends_with(" 0"))
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_message_in_the_middle_is_counted_dead_lettered_and_skipped() {
    let tansu = Tansu::start();
    let kafka = producer(&tansu);
    let (path, _dir) = mapping(&tansu, "dead-letters", "dead_letter_topic = \"orders-dead\"", ORDERS);
    let server = TestServer::start(Config { demo: false, kafka_bridge: Some(path), ..Config::default() }).await;
    let mut viewer = eu_viewer(&server).await;
    let before = support::metric(&server, r#"livedash_bridge_rejected_total{reason="not_json"}"#).await;
    produce(&kafka, "orders", "eu", &order("eu", 1)).await;
    produce(&kafka, "orders", "eu", "{not json").await;
    produce(&kafka, "orders", "eu", &order("eu", 2)).await;
    assert_eq!(values_seen(&mut viewer, 2).await, [1.0, 2.0], "the good ones on both sides of it");
    let after = support::metric(&server, r#"livedash_bridge_rejected_total{reason="not_json"}"#).await;
    assert_eq!(after - before, 1.0);

    let dead = consumer(&tansu.brokers(), "reads-the-dead-letters");
    dead.subscribe(&["orders-dead"]).unwrap();
    let letter = tokio::time::timeout(support::WAIT, dead.recv()).await.expect("a dead letter in time").unwrap();
    assert_eq!(letter.payload(), Some(&b"{not json"[..]));
    let headers = rdkafka::message::Headers::iter(letter.headers().expect("headers"))
        .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
        .collect::<Vec<_>>();
    assert!(headers.contains(&("livedash-reason".into(), "not_json".into())), "{headers:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_bridge_resumes_after_its_last_commit_with_nothing_lost_or_repeated() {
    let tansu = Tansu::start();
    let kafka = producer(&tansu);
    let (path, _dir) = mapping(&tansu, "restarts", "", ORDERS);
    let database = tempfile::tempdir().unwrap();
    let config = Config {
        demo: false,
        kafka_bridge: Some(path),
        database: database.path().join("livedash.db").to_str().unwrap().to_owned(),
        ..Config::default()
    };
    let server = TestServer::node(config.clone()).await;
    let mut viewer = eu_viewer(&server).await;
    for i in 1..=5 {
        produce(&kafka, "orders", "eu", &order("eu", i)).await;
    }
    assert_eq!(values_seen(&mut viewer, 5).await, [1.0, 2.0, 3.0, 4.0, 5.0]);
    server.stop().await;
    // Published while no bridge runs: these must not be lost.
    for i in 6..=8 {
        produce(&kafka, "orders", "eu", &order("eu", i)).await;
    }
    // The node's memory is gone with it: a viewer now sees exactly what the bridge reads from its
    // committed offsets on, so a message taken before the stop would show here a second time.
    let server = TestServer::node(config).await;
    let mut viewer = eu_viewer(&server).await;
    for i in 9..=10 {
        produce(&kafka, "orders", "eu", &order("eu", i)).await;
    }
    assert_eq!(values_seen(&mut viewer, 5).await, [6.0, 7.0, 8.0, 9.0, 10.0]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_channel_pauses_the_consumer_and_loses_nothing() {
    let tansu = Tansu::start();
    let redis = support::redis::RedisServer::start();
    let kafka = producer(&tansu);
    let (path, _dir) = mapping(&tansu, "bursts", "channel_capacity = 4", ORDERS);
    let config = Config { demo: false, kafka_bridge: Some(path), redis_url: Some(redis.url()), ..Config::default() };
    let server = TestServer::start(config).await;
    let mut viewer = eu_viewer(&server).await;
    let pauses = || support::metric(&server, "livedash_bridge_pauses_total");
    let paused_before = pauses().await;

    // Redis stops taking writes for a while: the publisher waits, the four places fill up, and
    // the consumer must stop fetching rather than hold the burst.
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = ::redis::cmd("CLIENT").arg("PAUSE").arg(3000).arg("WRITE").query_async(&mut connection).await.unwrap();
    for i in 1..=100 {
        produce(&kafka, "orders", "eu", &order("eu", i)).await;
    }
    support::eventually_async("the consumer paused its partitions", || async { pauses().await > paused_before }).await;
    let wanted: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(values_seen(&mut viewer, 100).await, wanted, "all of the burst, once, in order");
    server.stop().await;
}

#[tokio::test]
async fn a_mapping_whose_template_could_name_another_tenant_stops_the_server_at_start() {
    let tansu = Tansu::start();
    let hostile = ORDERS.replace(r#"tenant = "acme""#, r#"tenant = "{customer}""#);
    let (path, _dir) = mapping(&tansu, "refused", "", &hostile);
    let database = tempfile::tempdir().unwrap();
    let config = Config {
        demo: false,
        kafka_bridge: Some(path),
        database: database.path().join("livedash.db").to_str().unwrap().to_owned(),
        ..Config::default()
    };
    let options = leptos::config::LeptosOptions::builder().output_name("livedash").build();
    let Err(refused) = server::Livedash::start(config, options).await else { panic!("the server started") };
    let message = format!("{refused:#}");
    assert!(message.contains("never taken from a message"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_a_producer_sent_twice_shows_once_by_its_key() {
    let tansu = Tansu::start();
    let kafka = producer(&tansu);
    let routes = format!("{ORDERS}dedupe_key = \"id\"\n");
    let (server, _dir) = node_with_bridge(&tansu, "dedupe", &routes).await;
    let mut viewer = eu_viewer(&server).await;
    let with_id = |id: &str, amount: u32| order("eu", amount).replacen('{', &format!(r#"{{"id":"{id}","#), 1);
    for (id, amount) in [("a", 1), ("b", 2), ("b", 2), ("c", 3)] {
        produce(&kafka, "orders", "eu", &with_id(id, amount)).await;
    }
    assert_eq!(values_seen(&mut viewer, 3).await, [1.0, 2.0, 3.0]);
    let duplicates = support::metric(&server, r#"livedash_bridge_duplicates_total{by="key"}"#).await;
    assert!(duplicates >= 1.0, "counted: {duplicates}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_from_kafka_past_a_charts_threshold_raise_an_alert() {
    let tansu = Tansu::start();
    let kafka = producer(&tansu);
    let (server, _dir) = node_with_bridge(&tansu, "alerts", ORDERS).await;
    let admin = support::As::user(&server, support::ACME_ADMIN).await;
    let (dashboard, widgets) = admin.create_dashboard(&[("line_chart", "orders/eu")]).await;
    let widget = widgets[0].trim_start_matches('w');
    let path = format!("/api/dashboards/{dashboard}/widgets/{widget}/thresholds");
    let above = serde_json::json!([{"direction": "above", "warning": 100}]);
    assert_eq!(admin.call(reqwest::Method::PUT, &path, Some(above)).await.0, 200);
    let mut centre = server.connect_as(support::ACME_VIEWER).await;
    centre.subscribe("centre", protocol::topics::NOTIFICATIONS_TOPIC, None).await;
    for amount in [50, 150, 170, 20] {
        produce(&kafka, "orders", "eu", &order("eu", amount)).await;
    }
    let mut titles = Vec::new();
    while titles.len() < 2 {
        if let ServerMessage::Update(update) = centre.next_message().await {
            titles.extend(update.series.into_iter().filter_map(|item| match item {
                Item::Event(event) => Some(event.title),
                _ => None,
            }));
        }
    }
    assert_eq!(titles, ["orders/eu is warning at 150 (above 100)", "orders/eu is back to normal at 20"]);
    let (_, kept) = admin.get(&format!("/api/dashboards/{dashboard}/widgets/{widget}/alerts")).await;
    assert_eq!(kept.as_array().unwrap().len(), 2);
    server.stop().await;
}

/// The values each widget of `viewer` shows, snapshot and updates, until `done` says enough; a
/// gap (something lost) fails the test.
async fn values_by_widget(
    viewer: &mut support::Client,
    done: impl Fn(&std::collections::HashMap<String, Vec<f64>>) -> bool,
) -> std::collections::HashMap<String, Vec<f64>> {
    let mut seen: std::collections::HashMap<String, Vec<f64>> = std::collections::HashMap::new();
    while !done(&seen) {
        let (widget, items) = match viewer.next_message().await {
            ServerMessage::Control(ControlMessage::Snapshot { widget_id, series, .. }) => (widget_id, series),
            ServerMessage::Update(update) => (update.widget_id, update.series),
            ServerMessage::Control(ControlMessage::Gap { widget_id, reason }) => {
                panic!("{widget_id} lost data: {reason}")
            }
            ServerMessage::Control(_) => continue,
        };
        seen.entry(widget).or_default().extend(items.iter().filter_map(Item::as_point).map(|p| p.value));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_partitions_and_a_killed_one_loses_and_repeats_nothing() {
    let tansu = Tansu::start();
    let redis = support::redis::RedisServer::start();
    let database = tokio::task::spawn_blocking(support::postgres::fresh_database).await.unwrap();
    let kafka = producer(&tansu);
    let (path, _dir) = mapping(&tansu, "shared", "", ORDERS);
    let secret = "a secret both bridge nodes share, long enough".to_owned();
    let config = Config {
        demo: false,
        kafka_bridge: Some(path.clone()),
        redis_url: Some(redis.url()),
        database: database.clone(),
        session_secret: Some(secret.clone()),
        ..Config::default()
    };
    let a = TestServer::node(config).await;
    let env = std::collections::HashMap::from([
        ("LIVEDASH_KAFKA_BRIDGE", path),
        ("LIVEDASH_REDIS_URL", redis.url()),
        ("LIVEDASH_DATABASE", database),
        ("LIVEDASH_SESSION_SECRET", secret),
    ]);
    let mut b = support::node_process::NodeProcess::start(&env).await;
    let mut viewer = a.connect().await;
    let regions = ["eu", "us", "ap", "sa"];
    for region in regions {
        viewer.subscribe(region, &format!("orders/{region}"), None).await;
    }
    let send = |from: u32, to: u32| {
        let kafka = &kafka;
        async move {
            for i in from..=to {
                let region = regions[i as usize % regions.len()];
                produce(kafka, "orders", region, &order(region, i)).await;
            }
        }
    };
    let wanted = |to: u32, region: &str| -> Vec<f64> {
        (1..=to).filter(|i| regions[*i as usize % regions.len()] == region).map(f64::from).collect()
    };
    send(1, 40).await;
    let seen = values_by_widget(&mut viewer, |seen| seen.values().map(Vec::len).sum::<usize>() >= 40).await;
    for region in regions {
        assert_eq!(seen.get(region).cloned().unwrap_or_default(), wanted(40, region), "{region} before the kill");
    }

    let published_by_b =
        reqwest::get(format!("http://{}/metrics", b.metrics_addr)).await.unwrap().text().await.unwrap();
    let accepted_by_b = published_by_b
        .lines()
        .find_map(|l| l.strip_prefix("livedash_bridge_accepted_total "))
        .map_or(0.0, |v| v.trim().parse::<f64>().unwrap());
    assert!(accepted_by_b > 0.0, "node B had partitions of its own: {accepted_by_b}");
    println!("node B published {accepted_by_b} of the first 40");

    // Node B dies without a word: its partitions go to node A after the session timeout, from
    // their last commit, so A reads some of B's messages again. They must not show twice.
    b.kill();
    send(41, 80).await;
    let more = values_by_widget(&mut viewer, |seen| seen.values().map(Vec::len).sum::<usize>() >= 40).await;
    for region in regions {
        let mut all = seen.get(region).cloned().unwrap_or_default();
        all.extend(more.get(region).cloned().unwrap_or_default());
        assert_eq!(all, wanted(80, region), "{region}: every order once, in order");
    }
    let again = support::metric(&a, r#"livedash_bridge_duplicates_total{by="position"}"#).await;
    println!("node A read {again} of node B's messages again and dropped them");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_when_the_bridge_cannot_reach_its_cluster() {
    let mut tansu = Tansu::start();
    let (server, _dir) = node_with_bridge(&tansu, "ready", ORDERS).await;
    let problem = || async {
        let body: serde_json::Value = reqwest::get(server.url("/readyz")).await.unwrap().json().await.unwrap();
        body["problem"].as_str().map(str::to_owned)
    };
    support::eventually_async("ready once the bridge reaches tansu", || async { problem().await.is_none() }).await;
    tansu.stop();
    support::eventually_async("not ready without its cluster", || async {
        problem().await.as_deref() == Some("the Kafka bridge is not connected")
    })
    .await;
    server.stop().await;
}
