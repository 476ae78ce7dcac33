//! Every limit, and what a client that stops reading does to the server, over real sockets.

mod support;

use protocol::{ClientMessage, Item, Metric, Point, TopicKind};
use server::config::Config;
use std::time::Duration;
use support::{ACME_ADMIN, TestServer, acme};

fn quiet(config: Config) -> Config {
    Config { demo: false, ..config }
}

#[tokio::test]
async fn subscriptions_per_connection_are_limited() {
    let server = TestServer::start(quiet(Config { max_subscriptions: 2, ..Config::default() })).await;
    for topic in ["a", "b", "c"] {
        server.broker.declare(&acme(topic), TopicKind::Series).unwrap();
    }
    let mut client = server.connect().await;
    client.subscribe("a", "a", None).await;
    client.subscribe("b", "b", None).await;
    client.subscribe("c", "c", None).await;
    assert_eq!(client.next_json().await["type"], "snapshot");
    assert_eq!(client.next_json().await["type"], "snapshot");
    let refused = client.next_json().await;
    assert_eq!((refused["code"].as_str(), refused["widgetId"].as_str()), (Some("limit_exceeded"), Some("c")));
    client.send(&ClientMessage::Unsubscribe { widget_id: "a".into() }).await;
    client.subscribe("c", "c", None).await;
    assert_eq!(client.next_json().await["type"], "snapshot", "room again after an unsubscribe");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_floods_gets_rate_limited_and_stays_connected() {
    let server = TestServer::start(quiet(Config { client_messages_per_sec: 5, ..Config::default() })).await;
    let mut client = server.connect().await;
    for _ in 0..30 {
        client.send(&ClientMessage::Ping).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..30 {
        match client.next_json().await["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((10..30).contains(&pongs), "the burst (10) passes, the rest does not: {pongs} pongs");
    assert_eq!(pongs + limited, 30);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    client.send(&ClientMessage::Ping).await;
    assert_eq!(client.next_json().await["type"], "pong", "the connection keeps working");
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_closes_the_socket_with_1009_and_others_carry_on() {
    let server = TestServer::start(quiet(Config { max_frame_bytes: 1024, ..Config::default() })).await;
    let mut bystander = server.connect().await;
    let mut client = server.connect().await;
    let huge = format!(r#"{{"type":"subscribe","widgetId":"w","topic":"{}"}}"#, "a".repeat(2000));
    client.send_text(&huge).await;
    assert_eq!(client.close_code().await, 1009);
    bystander.send(&ClientMessage::Ping).await;
    assert_eq!(bystander.next_json().await["type"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn connection_attempts_per_address_are_limited_with_4429() {
    let server = TestServer::start(quiet(Config { connect_attempts_per_min: 3, ..Config::default() })).await;
    let cookie = server.login(ACME_ADMIN).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut client = server.open_ws(Some(&cookie), Some(&server.origin())).await.unwrap();
        assert_eq!(client.next_json().await["type"], "welcome");
        open.push(client);
    }
    let mut fourth = server.open_ws(Some(&cookie), Some(&server.origin())).await.unwrap();
    assert_eq!(fourth.close_code().await, 4429);
    server.stop().await;
}

#[tokio::test]
async fn publishes_per_key_are_rate_limited_with_429_and_retry_after() {
    let server = TestServer::start(quiet(Config { publishes_per_sec: 2, ..Config::default() })).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let response = server
            .http()
            .post(server.url("/api/v1/publish/t"))
            .header("authorization", format!("Bearer {}", server.key("acme")))
            .body(r#"{"points": [{"value": 1}]}"#)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "rate_limited");
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..4], &[200; 4], "the burst of 2 × 2 passes");
    assert!(statuses.contains(&429), "{statuses:?}");
    let other_key = server
        .http()
        .post(server.url("/api/v1/publish/t"))
        .header("authorization", format!("Bearer {}", server.key("globex")))
        .body(r#"{"points": [{"value": 1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(other_key.status(), 200, "limits are per key");
    server.stop().await;
}

/// 30 KB per message, so a few hundred fill the kernel's socket buffers of a client that stops
/// reading, and the server's bounded outbox has to act.
fn big_points(v: f64) -> Vec<Item> {
    (0..1000).map(|i| Item::Point(Point { ts: 1_700_000_000_000 + i, value: v })).collect()
}

#[tokio::test]
async fn a_series_subscriber_that_stops_reading_gets_gap_and_snapshot_and_others_lose_nothing() {
    // The client stalls for as long as the publishing takes on a loaded machine: a write timeout
    // longer than that keeps this about the outbox (the timeout has its own test).
    let config = Config { outbox_capacity: 4, write_timeout: Duration::from_secs(600), ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    let topic = acme("big");
    server.broker.declare(&topic, TopicKind::Series).unwrap();
    let mut slow = server.connect().await;
    let mut fast = server.connect().await;
    slow.subscribe("w", "big", None).await;
    fast.subscribe("w", "big", None).await;
    assert_eq!(slow.next_json().await["type"], "snapshot");
    assert_eq!(fast.next_json().await["type"], "snapshot");

    const MESSAGES: u64 = 400;
    let reader = tokio::spawn(async move {
        for expected in 1..=MESSAGES {
            assert_eq!(fast.next_json().await["meta"]["offset"], expected, "the fast client misses nothing");
        }
    });
    for v in 0..MESSAGES {
        server.broker.publish(&topic, TopicKind::Series, big_points(v as f64)).unwrap();
        tokio::task::yield_now().await;
    }
    reader.await.unwrap();

    // The slow client now reads: consecutive updates, then a gap, then a snapshot at the head.
    let mut last = 0;
    loop {
        let message = slow.next_json().await;
        match message["type"].as_str() {
            None => {
                let offset = message["meta"]["offset"].as_u64().unwrap();
                assert_eq!(offset, last + 1, "in order, nothing skipped silently");
                last = offset;
            }
            Some("gap") => break,
            other => panic!("expected updates then a gap, got {other:?}"),
        }
    }
    assert!(last < MESSAGES, "the stalled client did overflow ({last})");
    let snapshot = slow.next_json().await;
    assert_eq!(snapshot["type"], "snapshot");
    let head = snapshot["meta"]["offset"].as_u64().unwrap();
    assert!(head > last);
    // Whatever was still queued after the snapshot continues from it without a hole.
    server.broker.publish(&topic, TopicKind::Series, big_points(-1.0)).unwrap();
    let mut expected = head + 1;
    loop {
        let message = slow.next_json().await;
        let offset = message["meta"]["offset"].as_u64().unwrap();
        assert_eq!(offset, expected);
        if offset == MESSAGES + 1 {
            break;
        }
        expected += 1;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_metrics_subscriber_that_stops_reading_gets_the_latest_values_without_a_gap() {
    let config = Config { outbox_capacity: 4, write_timeout: Duration::from_secs(600), ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    let topic = acme("kpis");
    server.broker.declare(&topic, TopicKind::Metrics).unwrap();
    let mut slow = server.connect().await;
    slow.subscribe("w", "kpis", None).await;
    assert_eq!(slow.next_json().await["type"], "snapshot");
    let padding = "x".repeat(100);
    for v in 0..400u32 {
        // 250 long keys (the limit is 256) keep messages large; key `k0` carries the counter.
        let items = (0..250)
            .map(|k| {
                Item::Metric(Metric { key: format!("k{k}{}", if k == 0 { "" } else { &padding }), value: v as f64 })
            })
            .collect();
        server.broker.publish(&topic, TopicKind::Metrics, items).unwrap();
        tokio::task::yield_now().await;
    }
    let mut saw_snapshot = false;
    let latest = loop {
        let message = slow.next_json().await;
        assert_ne!(message["type"], "gap", "coalescing loses nothing, so no gap");
        saw_snapshot |= message["type"] == "snapshot";
        let k0 = message["series"].as_array().unwrap().iter().find(|m| m["key"] == "k0").unwrap();
        let value = k0["value"].as_f64().unwrap();
        if value == 399.0 {
            break value;
        }
    };
    assert!(saw_snapshot, "the overflow was healed with a coalesced snapshot");
    assert_eq!(latest, 399.0);
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_exposed_for_prometheus() {
    let server = TestServer::quiet().await;
    let mut client = server.connect().await;
    server.broker.declare(&acme("t"), TopicKind::Series).unwrap();
    client.subscribe("w", "t", None).await;
    client.next_json().await;
    support::publish_point(&server.broker, &acme("t"), 1.0);
    client.next_json().await;
    client.subscribe("x", "../nope", None).await;
    client.next_json().await;
    let text = reqwest::get(server.metrics_url()).await.unwrap().text().await.unwrap();
    for name in [
        "livedash_connections_open",
        "livedash_connections_total",
        "livedash_messages_in_total{type=\"subscribe\"}",
        "livedash_messages_out_total",
        "livedash_publishes_total{kind=\"series\"}",
        "livedash_push_latency_seconds_bucket",
        "livedash_outbox_backlog_bucket",
        "livedash_denials_total{reason=\"bad_topic\"}",
        "livedash_client_errors_total{code=\"bad_topic\"}",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    server.stop().await;
}
