//! What a hostile or careless client or publisher can make the server hold, over real WebSockets
//! and HTTP: each attack pattern, then the structure it targets, which must stay bounded or be
//! given back.

mod support;

use protocol::{ClientMessage, ServerMessage, TopicKind};
use server::{config::Config, topic_name::TenantId};
use std::time::Duration;
use support::{ACME_ADMIN, ACME_VIEWER, TestServer, acme, eventually, publish_point};

fn acme_tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn quiet(config: Config) -> Config {
    Config { demo: false, ..config }
}

#[tokio::test]
async fn subscriptions_to_made_up_topics_are_freed_when_the_socket_closes_and_capped_per_tenant() {
    let config = Config { max_waiting_per_tenant: 120, client_messages_per_sec: 1000, ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    let mut first = server.connect().await;
    for i in 0..100 {
        first.subscribe(&format!("w{i}"), &format!("made-up/{i}"), None).await;
    }
    for i in 0..50 {
        first.send(&ClientMessage::Unsubscribe { widget_id: format!("w{i}") }).await;
    }
    first.send(&ClientMessage::Ping).await;
    while first.next_json().await["type"] != "pong" {}
    assert_eq!(server.broker.usage(&acme_tenant()).waiting, 50, "unsubscribing freed half");

    // A second socket of the same tenant runs into the tenant's limit, and is told so.
    let mut second = server.connect().await;
    for i in 0..100 {
        second.subscribe(&format!("w{i}"), &format!("other/{i}"), None).await;
    }
    second.send(&ClientMessage::Ping).await;
    let mut refused = 0;
    loop {
        let message = second.next_json().await;
        match message["type"].as_str() {
            Some("pong") => break,
            Some("error") => {
                assert_eq!(message["code"], "limit_exceeded", "{message}");
                refused += 1;
            }
            _ => {}
        }
    }
    assert_eq!(refused, 30, "50 + 70 fill the tenant's 120; the other 30 are refused");
    assert!(
        support::metric(&server, "livedash_denials_total{reason=\"waiting_subscriptions_per_tenant\"}").await >= 1.0
    );

    drop((first, second));
    eventually("the closed sockets' waiting subscriptions are gone", || {
        server.broker.usage(&acme_tenant()).waiting == 0 && server.broker.waiting_topics() == 0
    })
    .await;
    eventually("the sockets' registry entries are gone", || server.sockets.open() == (0, 0)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_quiet_topic_gives_its_history_back_and_an_idle_one_retires() {
    let config = Config {
        sweep_interval: Duration::from_secs(1),
        history_max_age: Duration::from_secs(1),
        topic_idle: Duration::from_secs(2),
        ..Config::default()
    };
    let server = TestServer::start(quiet(config)).await;
    let topic = acme("quiet");
    for v in 1..=50 {
        publish_point(&server.broker, &topic, v as f64);
    }
    let token =
        server.broker.read(&topic, &"probe".into(), None, server::broker::ReadFrom::Start, 0).unwrap().position.token();
    assert!(server.broker.usage(&acme_tenant()).history_bytes > 0);
    eventually("the sweep ages the history out", || server.broker.usage(&acme_tenant()).history_bytes == 0).await;
    eventually("the sweep retires the idle topic", || server.broker.usage(&acme_tenant()).topics == 0).await;
    assert_eq!(server.broker.usage(&acme_tenant()).state_bytes, 0, "its state went with it");

    // A viewer that stood in the retired topic is told of the gap when it starts again.
    let mut client = server.connect_as(ACME_ADMIN).await;
    client.subscribe("w", "quiet", Some(token.clone())).await;
    client.send(&ClientMessage::Ping).await;
    while client.next_json().await["type"] != "pong" {}
    publish_point(&server.broker, &topic, 51.0);
    assert!(matches!(client.next_message().await, ServerMessage::Control(protocol::ControlMessage::Gap { .. })));
    let ServerMessage::Control(protocol::ControlMessage::Snapshot { meta, .. }) = client.next_message().await else {
        panic!("a snapshot after the gap")
    };
    assert_ne!(token.split('.').next(), Some(meta.epoch.as_str()), "the retired topic started a new epoch");
    server.stop().await;
}

/// `{"events":[…]}` of `n` events with bodies of `chars` characters.
fn events(n: usize, chars: usize, seq: usize) -> serde_json::Value {
    let events: Vec<_> = (0..n)
        .map(|i| serde_json::json!({"type": "notification", "title": format!("e{seq}-{i}"), "body": "x".repeat(chars)}))
        .collect();
    serde_json::json!({ "events": events })
}

async fn publish(server: &TestServer, topic: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let response = server
        .http()
        .post(server.url(&format!("/api/v1/publish/{topic}")))
        .bearer_auth(server.key("acme"))
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_publisher_of_large_messages_stays_within_the_tenants_byte_budgets() {
    let config = Config {
        publishes_per_sec: 10_000,
        history_max_bytes: 400_000,
        tenant_history_max_bytes: 1_000_000,
        max_topic_state_bytes: 300_000,
        tenant_state_max_bytes: 800_000,
        snapshot_events: 1000,
        ..Config::default()
    };
    let server = TestServer::start(quiet(config)).await;
    let mut refused = 0;
    for seq in 0..120 {
        let (status, body) = publish(&server, &format!("logs/{}", seq % 6), &events(10, 3_900, seq)).await;
        match status {
            200 => {}
            422 => {
                assert_eq!(body["error"], "limit_exceeded", "{body}");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
        let usage = server.broker.usage(&acme_tenant());
        assert!(usage.history_bytes <= 1_000_000, "after {seq}: {usage:?}");
        assert!(usage.state_bytes <= 800_000, "after {seq}: {usage:?}");
    }
    // 120 publishes of ~40 KB: 4.8 MB offered; six topics of 300 KB state would be 1.8 MB.
    assert!(refused > 0, "the tenant's state budget refused some");
    assert!(support::metric(&server, "livedash_denials_total{reason=\"tenant_state_bytes\"}").await >= 1.0);
    server.stop().await;
}

#[tokio::test]
async fn a_collection_batch_is_judged_by_its_net_effect() {
    let server = TestServer::start(quiet(Config { max_documents: 2, ..Config::default() })).await;
    let change = |op: &str, id: &str| match op {
        "upsert" => serde_json::json!({"op": "upsert", "id": id, "doc": {"n": 1}}),
        _ => serde_json::json!({"op": "delete", "id": id}),
    };
    let batch = |changes: Vec<serde_json::Value>| serde_json::json!({ "changes": changes });
    assert_eq!(publish(&server, "orders", &batch(vec![change("upsert", "a"), change("upsert", "b")])).await.0, 200);
    let sneaky = batch(vec![change("delete", "a"), change("upsert", "a"), change("upsert", "c")]);
    let (status, body) = publish(&server, "orders", &sneaky).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("limit_exceeded")), "{body}");
    let fair = batch(vec![change("delete", "a"), change("upsert", "c")]);
    assert_eq!(publish(&server, "orders", &fair).await.0, 200);
    let usage = server.broker.usage(&acme_tenant());
    assert_eq!(usage.topics, 1);
    server.stop().await;
}

#[tokio::test]
async fn refreshes_and_activity_reports_are_rate_limited_and_the_socket_stays() {
    let config = Config { refreshes_per_min: 3, activity_per_min: 2, ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    publish_point(&server.broker, &acme("t"), 1.0);
    let mut client = server.connect().await;
    client.subscribe("w", "t", None).await;
    assert_eq!(client.next_json().await["type"], "snapshot");
    for _ in 0..5 {
        client.send(&ClientMessage::RequestUpdate { widget_id: "w".into() }).await;
    }
    let mut snapshots = 0;
    for _ in 0..5 {
        let message = client.next_json().await;
        match message["type"].as_str() {
            Some("snapshot") => snapshots += 1,
            Some("error") => {
                assert_eq!((message["code"].as_str(), message["widgetId"].as_str()), (Some("rate_limited"), Some("w")))
            }
            _ => panic!("{message}"),
        }
    }
    assert_eq!(snapshots, 3, "the burst, then refusals");

    // The activity feed as a dashboard sees it. Presence publishes through one ordered queue, so
    // once a sign-out made after the reports is in the feed, every report that got through is too.
    let mut feed = server.connect_as(ACME_VIEWER).await;
    feed.subscribe("feed", "presence/activity", None).await;
    assert_eq!(feed.next_json().await["type"], "snapshot");
    let marker = server.login(ACME_VIEWER).await;
    for i in 0..4 {
        let report =
            ClientMessage::Activity { action: protocol::ActivityAction::OpenDashboard, detail: format!("d{i}") };
        client.send(&report).await;
    }
    let mut limited = 0;
    client.send(&ClientMessage::Ping).await;
    loop {
        let message = client.next_json().await;
        match message["type"].as_str() {
            Some("pong") => break,
            Some("error") => {
                assert_eq!(message["code"], "rate_limited");
                limited += 1;
            }
            _ => {}
        }
    }
    assert_eq!(limited, 2);
    let logout = server.http().post(server.url("/api/auth/logout")).header("cookie", marker).send().await.unwrap();
    assert_eq!(logout.status(), 204);
    let mut reported = Vec::new();
    loop {
        let message = feed.next_json().await;
        let Some(title) = message["series"][0]["title"].as_str() else { continue };
        if title == format!("{ACME_VIEWER} signed out") {
            break;
        }
        if let Some(detail) = title.strip_prefix(&format!("{ACME_ADMIN} opened ")) {
            reported.push(detail.to_string());
        }
    }
    assert_eq!(reported, ["d0", "d1"], "only the allowed reports reached the activity feed");
    client.send(&ClientMessage::RequestUpdate { widget_id: "nope".into() }).await;
    assert_eq!(client.next_json().await["code"], "not_subscribed", "still served");
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_reader_is_dropped_and_everything_it_held_is_released() {
    let config = Config { write_timeout: Duration::from_secs(1), ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    let topic = acme("big");
    server.broker.declare(&topic, TopicKind::Series).unwrap();
    let cookie = server.login(ACME_ADMIN).await;
    let mut stalled = server.open_ws(Some(&cookie), Some(&server.origin())).await.unwrap();
    assert_eq!(stalled.next_json().await["type"], "welcome");
    stalled.subscribe("w", "big", None).await;
    assert_eq!(stalled.next_json().await["type"], "snapshot");
    assert_eq!(server.sockets.open(), (1, 1));
    assert_eq!(server.presence.entries(), 2, "the user, and their tenant");
    let big: Vec<protocol::Item> =
        (0..500).map(|i| protocol::Item::Point(protocol::Point { ts: i, value: i as f64 })).collect();
    // It reads nothing from here on; the server must give up on it and free its socket slot,
    // its presence and its subscription.
    let mut published = 0;
    while server.sockets.open() != (0, 0) {
        for _ in 0..20 {
            server.broker.publish(&topic, TopicKind::Series, big.clone()).unwrap();
        }
        published += 20;
        assert!(published < 50_000, "the stalled client was never dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("its presence is gone", || server.presence.entries() == 0).await;
    drop(stalled);
    server.stop().await;
}
