//! The WebSocket endpoint, driven over real sockets: subscribe, snapshot then ordered deltas,
//! resume, errors, heartbeats and graceful shutdown.

mod support;

use protocol::{ClientMessage, ControlMessage, Item, Point, ServerMessage, TopicKind};
use support::{TestServer, acme, publish_point};

const TOPIC: &str = "sales/orders";

fn point(v: f64) -> Vec<Item> {
    vec![Item::Point(Point { ts: v as i64, value: v })]
}

async fn server_with_topic() -> TestServer {
    let server = TestServer::quiet().await;
    server.broker.declare(&acme(TOPIC), TopicKind::Series).unwrap();
    server
}

fn publish(server: &TestServer, v: f64) {
    publish_point(&server.broker, &acme(TOPIC), v);
}

#[tokio::test]
async fn snapshot_then_every_delta_in_order() {
    let server = server_with_topic().await;
    publish(&server, 1.0);
    publish(&server, 2.0);
    let mut client = server.connect().await;
    client.subscribe("orders", TOPIC, None).await;

    let ServerMessage::Control(ControlMessage::Snapshot { widget_id, series, meta, .. }) = client.next_message().await
    else {
        panic!("first message is the snapshot")
    };
    assert_eq!(widget_id, "orders");
    assert_eq!(series, [point(1.0), point(2.0)].concat());
    assert_eq!((meta.topic.as_str(), meta.kind, meta.offset), (TOPIC, TopicKind::Series, 2));

    for v in 3..=7 {
        publish(&server, v as f64);
    }
    for expected in 3..=7u64 {
        let update = client.next_json().await;
        assert!(update.get("type").is_none(), "updates carry no type: {update}");
        assert_eq!(update["widgetId"], "orders");
        assert_eq!(update["meta"]["offset"], expected);
        assert_eq!(update["series"][0]["value"], expected as f64);
        assert_eq!(update["meta"]["epoch"], meta.epoch.as_str());
    }
    server.stop().await;
}

#[tokio::test]
async fn resuming_replays_exactly_what_was_missed() {
    let server = server_with_topic().await;
    let mut first = server.connect().await;
    first.subscribe("w", TOPIC, None).await;
    first.next_message().await; // snapshot
    publish(&server, 1.0);
    let ServerMessage::Update(seen) = first.next_message().await else { panic!("update") };
    drop(first);

    for v in 2..=5 {
        publish(&server, v as f64);
    }
    let mut again = server.connect().await;
    again.subscribe("w", TOPIC, Some(seen.meta.resume_token)).await;
    publish(&server, 6.0);
    let mut offsets = Vec::new();
    for _ in 0..5 {
        let ServerMessage::Update(update) = again.next_message().await else { panic!("only updates") };
        offsets.push(update.meta.offset);
    }
    assert_eq!(offsets, vec![2, 3, 4, 5, 6], "missed 4, replayed exactly those, then live");
    again.send(&ClientMessage::Ping).await;
    assert!(
        matches!(again.next_message().await, ServerMessage::Control(ControlMessage::Pong { .. })),
        "and nothing else"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_an_error_and_the_connection_keeps_working() {
    let server = server_with_topic().await;
    let mut client = server.connect().await;

    client.send_text("{not json").await;
    let error = client.next_json().await;
    assert_eq!((error["type"].as_str(), error["code"].as_str()), (Some("error"), Some("bad_message")));

    client.send_text(r#"{"type":"launch_rockets"}"#).await;
    assert_eq!(client.next_json().await["code"], "bad_message");

    client.subscribe("w", TOPIC, None).await;
    assert_eq!(client.next_json().await["type"], "snapshot");
    client.subscribe("w", TOPIC, None).await;
    assert_eq!(client.next_json().await["code"], "duplicate_subscription");

    client.send(&ClientMessage::Unsubscribe { widget_id: "other".into() }).await;
    assert_eq!(client.next_json().await["code"], "not_subscribed");

    client.subscribe(&"x".repeat(129), TOPIC, None).await;
    assert_eq!(client.next_json().await["code"], "bad_message");

    publish(&server, 1.0);
    assert_eq!(client.next_json().await["meta"]["offset"], 1, "still subscribed and served");
    server.stop().await;
}

#[tokio::test]
async fn topic_names_that_could_reach_another_tenant_are_refused() {
    let server = server_with_topic().await;
    server.broker.declare(&support::acme("secret"), TopicKind::Series).unwrap();
    let mut client = server.connect().await;
    for (i, bad) in
        ["../globex/sales/orders", "/globex/sales/orders", "globex%2Fsales", "a//b", "", "tab\there"].iter().enumerate()
    {
        client.subscribe(&format!("w{i}"), bad, None).await;
        let error = client.next_json().await;
        assert_eq!(error["code"], "bad_topic", "{bad:?}: {error}");
    }
    // A valid name, but only within acme: it waits for acme's own `globex/sales/orders`, and
    // nothing globex publishes ever reaches it.
    client.subscribe("w", "globex/sales/orders", None).await;
    let globex = server::topic_name::TopicKey::new(
        server::topic_name::TenantId::parse("globex").unwrap(),
        server::topic_name::TopicName::parse("sales/orders").unwrap(),
    );
    support::publish_point(&server.broker, &globex, 1.0);
    client.send(&ClientMessage::Ping).await;
    assert_eq!(client.next_json().await["type"], "pong", "and nothing else");
    server.stop().await;
}

#[tokio::test]
async fn request_update_sends_a_fresh_snapshot() {
    let server = server_with_topic().await;
    let mut client = server.connect().await;
    client.subscribe("w", TOPIC, None).await;
    client.next_message().await;
    publish(&server, 1.0);
    client.next_message().await;
    client.send(&ClientMessage::RequestUpdate { widget_id: "w".into() }).await;
    let ServerMessage::Control(ControlMessage::Snapshot { series, meta, .. }) = client.next_message().await else {
        panic!("a snapshot")
    };
    assert_eq!((series, meta.offset), (point(1.0), 1));
    client.send(&ClientMessage::RequestUpdate { widget_id: "nope".into() }).await;
    assert_eq!(client.next_json().await["code"], "not_subscribed");
    server.stop().await;
}

#[tokio::test]
async fn unsubscribe_stops_the_updates() {
    let server = server_with_topic().await;
    let mut client = server.connect().await;
    client.subscribe("w", TOPIC, None).await;
    client.next_message().await;
    client.send(&ClientMessage::Unsubscribe { widget_id: "w".into() }).await;
    client.send(&ClientMessage::Ping).await;
    assert_eq!(client.next_json().await["type"], "pong");
    publish(&server, 1.0);
    client.send(&ClientMessage::Ping).await;
    assert_eq!(client.next_json().await["type"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn welcome_announces_the_heartbeat() {
    let server = TestServer::quiet().await;
    let cookie = server.login(support::ACME_ADMIN).await;
    let mut client = server.open_ws(Some(&cookie), Some(&server.origin())).await.unwrap();
    let welcome = client.next_json().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["heartbeatIntervalMs"], 25_000);
    assert_eq!(welcome["idleTimeoutMs"], 60_000);
    assert_eq!(
        welcome["limits"],
        serde_json::json!({"maxSubscriptions": 100, "maxMessagesPerSec": 50, "maxFrameBytes": 65536})
    );
    assert!(welcome["resumeToken"].as_str().is_some_and(|t| t.split('.').count() == 3));
    assert!(welcome["connectionId"].as_str().is_some_and(|id| !id.is_empty()));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let server = server_with_topic().await;
    let mut client = server.connect().await;
    client.subscribe("w", TOPIC, None).await;
    client.next_message().await;
    let closing = tokio::spawn(async move { client.close_code().await });
    server.stop().await;
    assert_eq!(closing.await.unwrap(), 1001);
}

#[tokio::test]
async fn resume_restores_every_subscription_and_replays_exactly_what_was_missed() {
    let server = server_with_topic().await;
    let kpis = acme("kpi/overview");
    let metric = |v: f64| vec![Item::Metric(protocol::Metric { key: "orders".into(), value: v })];
    server.broker.publish(&kpis, TopicKind::Metrics, metric(1.0)).unwrap();

    let mut first = server.connect().await;
    first.subscribe("chart", TOPIC, None).await;
    first.subscribe("tile", "kpi/overview", None).await;
    first.next_json().await;
    first.next_json().await;
    publish(&server, 1.0);
    assert_eq!(first.next_json().await["meta"]["offset"], 1);
    first.send(&ClientMessage::Ping).await;
    let pong = first.next_json().await;
    let token = pong["resumeToken"].as_str().expect("pong carries a fresh resume token").to_owned();
    drop(first);

    for v in 2..=4 {
        publish(&server, v as f64);
    }
    server.broker.publish(&kpis, TopicKind::Metrics, metric(2.0)).unwrap();

    let mut again = server.connect().await;
    again.send(&ClientMessage::Resume { token }).await;
    let mut chart = Vec::new();
    let mut tile = Vec::new();
    for _ in 0..4 {
        let message = again.next_json().await;
        assert!(message.get("type").is_none(), "updates only, no snapshot: {message}");
        let offset = message["meta"]["offset"].as_u64().unwrap();
        match message["widgetId"].as_str().unwrap() {
            "chart" => chart.push(offset),
            "tile" => tile.push(offset),
            other => panic!("unknown widget {other}"),
        }
    }
    assert_eq!(chart, vec![2, 3, 4]);
    assert_eq!(tile, vec![2]);
    publish(&server, 5.0);
    assert_eq!(again.next_json().await["meta"]["offset"], 5, "and live again");
    server.stop().await;
}

#[tokio::test]
async fn a_forged_or_foreign_resume_token_is_refused() {
    let server = server_with_topic().await;
    let mut viewer = server.connect_as(support::ACME_VIEWER).await;
    viewer.send(&ClientMessage::Ping).await;
    let viewers_token = viewer.next_json().await["resumeToken"].as_str().unwrap().to_owned();

    let mut admin = server.connect().await;
    admin.send(&ClientMessage::Resume { token: viewers_token }).await;
    assert_eq!(admin.next_json().await["code"], "bad_resume_token", "another user's token");
    admin.send(&ClientMessage::Resume { token: "a.b.c".into() }).await;
    assert_eq!(admin.next_json().await["code"], "bad_resume_token");
    server.stop().await;
}

#[tokio::test]
async fn resuming_past_the_history_gets_gap_then_snapshot() {
    let server = TestServer::start(server::config::Config { demo: false, history_len: 2, ..Default::default() }).await;
    server.broker.declare(&acme(TOPIC), TopicKind::Series).unwrap();
    let mut first = server.connect().await;
    first.subscribe("w", TOPIC, None).await;
    first.next_json().await;
    publish(&server, 1.0);
    let token = first.next_json().await["meta"]["resumeToken"].as_str().unwrap().to_owned();
    drop(first);
    for v in 2..=6 {
        publish(&server, v as f64);
    }
    let mut again = server.connect().await;
    again.subscribe("w", TOPIC, Some(token)).await;
    assert_eq!(again.next_json().await["type"], "gap", "offsets 2..=4 are no longer kept");
    let snapshot = again.next_json().await;
    assert_eq!((snapshot["type"].as_str(), snapshot["meta"]["offset"].as_u64()), (Some("snapshot"), Some(6)));
    let values: Vec<f64> =
        snapshot["series"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect();
    assert_eq!(values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "the snapshot holds the topic's points");
    publish(&server, 7.0);
    assert_eq!(again.next_json().await["meta"]["offset"], 7);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_at_the_idle_timeout_not_at_the_next_ping() {
    // The server's pings come every 60 s here, so a close that waits for a ping to look at the
    // silence would come a minute late; the idle timeout is 2 s.
    let config = server::config::Config {
        demo: false,
        heartbeat_interval: std::time::Duration::from_secs(60),
        idle_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let server = TestServer::start(config).await;
    let silent_since = std::time::Instant::now();
    // Past its welcome, the client says nothing (it does answer pings, but none come).
    let mut client = server.connect().await;
    let code = client.close_code().await;
    assert_eq!(code, protocol::close::NORMAL, "the idle close");
    let took = silent_since.elapsed();
    assert!(took < std::time::Duration::from_secs(30), "closed after {took:?}, long after the 2 s idle timeout");
    assert!(took >= std::time::Duration::from_millis(1_500), "closed after {took:?}, before the client was idle");
}
