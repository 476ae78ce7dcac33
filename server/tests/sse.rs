//! The SSE stream of a whole dashboard over real HTTP: named events with the WebSocket's `meta`,
//! only changed metric keys, `Last-Event-ID` resume and gaps, admission and tenancy, the shared
//! connection limit, a stalled reader dropped, edits followed, heartbeats, logout, and metrics.

mod support;

use protocol::dashboard::NOTIFICATION_CENTER_FEED;
use protocol::{Change, ChangeOp, Event, Item, Level, Metric, TopicKind};
use serde_json::json;
use server::config::Config;
use std::{collections::BTreeSet, time::Duration};
use support::{ACME_ADMIN, As, GLOBEX_ADMIN, Sse, TestServer, acme, metric, publish_point};

fn quiet(config: Config) -> Config {
    Config { demo: false, ..config }
}

fn metrics(pairs: &[(&str, f64)]) -> Vec<Item> {
    pairs.iter().map(|(k, v)| Item::Metric(Metric { key: (*k).into(), value: *v })).collect()
}

fn event(id: &str) -> Vec<Item> {
    vec![Item::Event(Event {
        id: id.into(),
        ts: 1,
        event_type: "notification".into(),
        level: Level::Info,
        title: id.into(),
        body: None,
        severity: None,
        scheduled_at: None,
        data: None,
    })]
}

fn stream_path(dashboard: i64) -> String {
    format!("/api/stream/dashboard/{dashboard}")
}

/// Reads events until every widget in `widgets` had a snapshot; returns the last event's id.
async fn snapshots_of(sse: &mut Sse, widgets: &[&str]) -> String {
    let mut waiting: BTreeSet<&str> = widgets.iter().copied().collect();
    let mut id = String::new();
    while !waiting.is_empty() {
        let event = sse.next().await;
        assert_eq!(event.name, "snapshot", "{event:?}");
        waiting.remove(event.json()["widgetId"].as_str().unwrap());
        id = event.id.expect("data events carry an id");
    }
    id
}

#[tokio::test]
async fn a_dashboard_streams_each_feed_as_named_events_with_the_websockets_meta() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, ids) = admin
        .create_dashboard(&[
            ("line_chart", "sales/orders"),
            ("kpi_tiles", "sales/kpis"),
            ("document_table", "ops/docs"),
        ])
        .await;
    let (chart, kpis, docs) = (&ids[0], &ids[1], &ids[2]);
    publish_point(&server.broker, &acme("sales/orders"), 1.0);
    server
        .broker
        .publish(&acme("sales/kpis"), TopicKind::Metrics, metrics(&[("orders", 1.0), ("revenue", 10.0)]))
        .unwrap();
    server.broker.publish(&acme("ops/docs"), TopicKind::Collection, vec![]).unwrap();
    server.broker.publish(&acme("ops/notifications"), TopicKind::Events, event("n1")).unwrap();

    let mut sse = admin.stream(&stream_path(dashboard), &[]).await;
    let retry = sse.next_or_end().await.unwrap();
    assert_eq!((retry.name.as_str(), retry.data.as_str()), ("retry", "1000"), "EventSource waits 1 s at first");
    snapshots_of(&mut sse, &[chart, kpis, docs, NOTIFICATION_CENTER_FEED]).await;

    publish_point(&server.broker, &acme("sales/orders"), 2.0);
    let update = sse.next().await;
    assert_eq!(update.name, "series_update");
    let data = update.json();
    assert_eq!(data["widgetId"], chart.as_str());
    assert_eq!(data["series"], json!([{"ts": 2, "value": 2.0}]));
    assert_eq!(data["meta"]["topic"], "sales/orders");
    assert_eq!(data["meta"]["kind"], "series");
    assert_eq!(data["meta"]["offset"], 2);
    assert!(data["meta"]["resumeToken"].as_str().unwrap().ends_with(".2"));
    assert!(update.id.is_some());

    server
        .broker
        .publish(&acme("sales/kpis"), TopicKind::Metrics, metrics(&[("orders", 1.0), ("revenue", 11.0)]))
        .unwrap();
    let update = sse.next().await;
    assert_eq!(update.name, "metric_update");
    assert_eq!(update.json()["series"], json!([{"key": "revenue", "value": 11.0}]), "only the key that changed");
    assert_eq!(update.json()["meta"]["offset"], 2);

    let upsert =
        Item::Change(Change { op: ChangeOp::Upsert, id: "d1".into(), doc: json!({"n": 1}).as_object().cloned() });
    server.broker.publish(&acme("ops/docs"), TopicKind::Collection, vec![upsert]).unwrap();
    assert_eq!(sse.next().await.name, "collection_update");
    server.broker.publish(&acme("ops/notifications"), TopicKind::Events, event("n2")).unwrap();
    let update = sse.next().await;
    assert!(metric(&server, "livedash_sse_updates_sent_total{stream=\"dashboard\"}").await >= 8.0, "counted");
    assert_eq!(
        (update.name.as_str(), update.json()["widgetId"].as_str()),
        ("events_update", Some(NOTIFICATION_CENTER_FEED))
    );
    server.stop().await;
}

#[tokio::test]
async fn last_event_id_replays_exactly_what_was_missed_and_a_lost_position_gets_gap_and_snapshot() {
    let server = TestServer::start(quiet(Config { history_len: 5, ..Config::default() })).await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, ids) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let chart = ids[0].as_str();
    let orders = acme("sales/orders");
    publish_point(&server.broker, &orders, 1.0);
    let mut sse = admin.stream(&stream_path(dashboard), &[]).await;
    snapshots_of(&mut sse, &[chart]).await;
    publish_point(&server.broker, &orders, 2.0);
    let last_seen = sse.next().await.id.unwrap();
    drop(sse);

    for v in 3..=5 {
        publish_point(&server.broker, &orders, v as f64);
    }
    let reconnections = metric(&server, "livedash_sse_reconnections_total{stream=\"dashboard\"}").await;
    let mut sse = admin.stream(&stream_path(dashboard), &[("last-event-id", &last_seen)]).await;
    let mut offsets = Vec::new();
    while offsets.len() < 3 {
        let event = sse.next().await;
        assert_eq!(event.name, "series_update", "a replay, no snapshot: {event:?}");
        offsets.push(event.json()["meta"]["offset"].as_u64().unwrap());
    }
    assert_eq!(offsets, [3, 4, 5]);
    assert!(metric(&server, "livedash_sse_reconnections_total{stream=\"dashboard\"}").await > reconnections);
    let resumed_to = sse.next_or_end_id_after_publish(&server, 6.0).await;
    drop(sse);

    // The history keeps 5 messages: 8 more leave the position behind.
    for v in 7..=14 {
        publish_point(&server.broker, &orders, v as f64);
    }
    let mut sse = admin.stream(&format!("{}?lastEventId={resumed_to}", stream_path(dashboard)), &[]).await;
    let gap = sse.next().await;
    assert_eq!((gap.name.as_str(), gap.json()["widgetId"].as_str()), ("gap", Some(chart)));
    let snapshot = sse.next().await;
    assert_eq!((snapshot.name.as_str(), snapshot.json()["meta"]["offset"].as_u64()), ("snapshot", Some(14)));
    drop(sse);

    // A forged id is no position at all: gap and a snapshot, counted.
    let forged = metric(&server, "livedash_sse_errors_total{reason=\"bad_cursor\"}").await;
    let mut sse = admin.stream(&stream_path(dashboard), &[("last-event-id", "AAAAbogus")]).await;
    assert_eq!(sse.next().await.name, "gap");
    assert_eq!(sse.next().await.name, "snapshot");
    assert!(metric(&server, "livedash_sse_errors_total{reason=\"bad_cursor\"}").await > forged);
    server.stop().await;
}

trait PublishAndRead {
    /// Publishes a point and returns the id of the event that carries it.
    async fn next_or_end_id_after_publish(&mut self, server: &TestServer, v: f64) -> String;
}

impl PublishAndRead for Sse {
    async fn next_or_end_id_after_publish(&mut self, server: &TestServer, v: f64) -> String {
        publish_point(&server.broker, &acme("sales/orders"), v);
        let event = self.next().await;
        assert_eq!(event.json()["series"][0]["value"], v);
        event.id.unwrap()
    }
}

#[tokio::test]
async fn positions_carried_over_from_the_websocket_resume_exactly() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, ids) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let orders = acme("sales/orders");
    for v in 1..=3 {
        publish_point(&server.broker, &orders, v as f64);
    }
    let token = server.broker.epoch(&orders).unwrap() + ".2";
    let path = format!("{}?positions={}:{token}", stream_path(dashboard), ids[0]);
    let mut sse = admin.stream(&path, &[]).await;
    let event = sse.next().await;
    assert_eq!((event.name.as_str(), event.json()["meta"]["offset"].as_u64()), ("series_update", Some(3)));
    server.stop().await;
}

#[tokio::test]
async fn streams_are_refused_without_a_session_from_another_origin_for_another_tenant_or_with_live_off() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let path = stream_path(dashboard);

    let anonymous = reqwest::get(server.url(&path)).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.json::<serde_json::Value>().await.unwrap()["error"], "unauthorized");
    let foreign = admin.open(&path, &[("origin", "http://evil.test")]).await;
    assert_eq!(foreign.status(), 403);
    let cross_site = admin.open(&path, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(cross_site.status(), 403);
    let own = admin.open(&path, &[("origin", &server.origin())]).await;
    assert_eq!(own.status(), 200, "our own page's Origin is fine");
    drop(own);

    let globex = As::user(&server, GLOBEX_ADMIN).await;
    let (status, body) = globex.get(&path).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "another tenant's dashboard is unknown");
    assert_eq!(admin.open(&stream_path(999_999), &[]).await.status(), 404);

    let (status, _) =
        admin.call(reqwest::Method::PUT, "/api/admin/live-dashboards", Some(json!({"enabled": false}))).await;
    assert_eq!(status, 200);
    let (status, body) = admin.get(&path).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("live_dashboards_off")));
    server.stop().await;
}

/// The operator's backout to polling: an open stream ends with `close` 4405 (do not come back, poll),
/// a new one is refused with `polling_only`, and a poll from the stream's last event id brings
/// exactly what the stream did not.
#[tokio::test]
async fn a_stream_told_to_poll_continues_in_polls_from_its_last_event_id() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, ids) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let orders = acme("sales/orders");
    publish_point(&server.broker, &orders, 1.0);
    let mut sse = admin.stream(&stream_path(dashboard), &[]).await;
    snapshots_of(&mut sse, &[&ids[0]]).await;
    let last_seen = sse.next_or_end_id_after_publish(&server, 2.0).await;

    let (status, _) = admin.call(reqwest::Method::PUT, "/api/admin/live-mode", Some(json!({"mode": "polling"}))).await;
    assert_eq!(status, 200);
    let close = loop {
        let event = sse.next().await;
        if event.name != "heartbeat" {
            break event;
        }
    };
    assert_eq!((close.name.as_str(), close.json()["code"].as_u64()), ("close", Some(4405)));
    assert_eq!(close.json()["reconnect"], false);
    assert!(sse.next_or_end().await.is_none(), "the stream ends after close");
    let (status, body) = admin.get(&stream_path(dashboard)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("polling_only")));

    publish_point(&server.broker, &orders, 3.0);
    let (status, answer) = admin.get(&format!("/api/v1/dashboards/{dashboard}/updates?since={last_seen}")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["liveMode"], "polling");
    let offsets: Vec<u64> = answer["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["widgetId"] == ids[0].as_str())
        .flat_map(|w| w["messages"].as_array().unwrap().iter().map(|m| m["meta"]["offset"].as_u64().unwrap()))
        .collect();
    assert_eq!(offsets, [3], "exactly what the stream did not bring");
    server.stop().await;
}

#[tokio::test]
async fn websockets_and_streams_share_the_per_user_connection_limit() {
    let server = TestServer::start(quiet(Config { max_connections_per_user: 3, ..Config::default() })).await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let _ws1 = server.connect().await;
    let _ws2 = server.connect().await;
    let third = admin.stream(&stream_path(dashboard), &[]).await;
    let fourth = admin.open(&stream_path(dashboard), &[]).await;
    assert_eq!(fourth.status(), 429);
    let body: serde_json::Value = fourth.json().await.unwrap();
    assert_eq!(body["error"], "limit_exceeded");
    assert_eq!(body["limit"], json!({"name": "connections_per_user", "max": 3}));
    let mut ws = server.open_ws(Some(&admin.cookie), Some(&server.origin())).await.unwrap();
    assert_eq!(ws.close_code().await, 4429, "a socket counts the stream too");

    drop(third);
    // The closed stream frees its place once the server has seen it go.
    let reopened = loop {
        let response = admin.open(&stream_path(dashboard), &[]).await;
        if response.status() == 200 {
            break response;
        }
        tokio::task::yield_now().await;
    };
    drop(reopened);
    server.stop().await;
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_dropped_and_frees_its_place() {
    let config = Config {
        write_timeout: Duration::from_secs(1),
        max_connections_per_user: 1,
        outbox_capacity: 8,
        ..Config::default()
    };
    let server = TestServer::start(quiet(config)).await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("notification_feed", "ops/flood")]).await;
    let flood = acme("ops/flood");
    server.broker.publish(&flood, TopicKind::Events, event("first")).unwrap();
    let stalled = admin.stream(&stream_path(dashboard), &[]).await; // never read again
    assert_eq!(admin.open(&stream_path(dashboard), &[]).await.status(), 429, "the one place is taken");

    // Publish until the server gives up on the reader: once the socket buffers are full, the
    // write times out (or the kernel's TCP_USER_TIMEOUT drops the connection), and the stream's
    // place in the connection limit is free again.
    let body = "x".repeat(8 * 1024);
    let mut published = 0u32;
    let again = loop {
        for _ in 0..100 {
            published += 1;
            let mut items = event(&format!("e{published}"));
            if let Item::Event(e) = &mut items[0] {
                e.body = Some(body.clone());
            }
            server.broker.publish(&flood, TopicKind::Events, items).unwrap();
        }
        let response = admin.open(&stream_path(dashboard), &[]).await;
        if response.status() == 200 {
            break response;
        }
        assert!(published < 1_000_000, "the stalled reader was never dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The stalled connection itself was closed: reading it ends, after what was in flight, in an
    // error or the end of the body, never in more events for ever.
    let mut stalled = stalled.response;
    let drained = tokio::time::timeout(support::WAIT, async { while let Ok(Some(_)) = stalled.chunk().await {} });
    drained.await.expect("the stalled connection was closed");
    drop(again);
    server.stop().await;
}

#[tokio::test]
async fn a_dashboard_edited_while_streaming_adds_and_drops_feeds() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, ids) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    publish_point(&server.broker, &acme("sales/orders"), 1.0);
    publish_point(&server.broker, &acme("sales/returns"), 1.0);
    let mut sse = admin.stream(&stream_path(dashboard), &[]).await;
    snapshots_of(&mut sse, &[&ids[0]]).await;

    let added = admin.add_widget(dashboard, "bar_chart", "sales/returns").await;
    let snapshot = sse.next().await;
    assert_eq!((snapshot.name.as_str(), snapshot.json()["widgetId"].as_str()), ("snapshot", Some(added.as_str())));

    let widget_id = ids[0].trim_start_matches('w');
    let path = format!("/api/dashboards/{dashboard}/widgets/{widget_id}");
    assert_eq!(admin.call(reqwest::Method::DELETE, &path, None).await.0, 204);
    // Once the removal is followed, the removed widget's topic says nothing more: the next event is
    // the remaining widget's.
    loop {
        publish_point(&server.broker, &acme("sales/orders"), 2.0);
        publish_point(&server.broker, &acme("sales/returns"), 2.0);
        let event = sse.next().await;
        if event.json()["widgetId"] == added.as_str() {
            break;
        }
    }
    for v in 3..=5 {
        publish_point(&server.broker, &acme("sales/orders"), v as f64);
    }
    publish_point(&server.broker, &acme("sales/returns"), 9.0);
    let event = sse.next().await;
    assert_eq!(
        (event.json()["widgetId"].as_str(), event.json()["series"][0]["value"].as_f64()),
        (Some(added.as_str()), Some(9.0))
    );
    server.stop().await;
}

#[tokio::test]
async fn heartbeats_flow_and_logout_ends_the_stream_with_4401() {
    let server = TestServer::start(quiet(Config { sse_heartbeat: Duration::from_secs(1), ..Config::default() })).await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let active = "livedash_sse_connections_active{stream=\"dashboard\"}";
    let mut sse = admin.stream(&stream_path(dashboard), &[]).await;
    // One as the stream opens (a client learns at once how long a silence may last), then one a
    // second.
    let mut beats = 0;
    while beats < 2 {
        let event = sse.next_or_end().await.unwrap();
        if event.name == "heartbeat" {
            assert!(event.json()["ts"].as_i64().unwrap() > 0);
            assert_eq!(event.json()["everyMs"], 1000);
            beats += 1;
        }
    }
    assert!(metric(&server, active).await >= 1.0);
    let (status, _) = admin.call(reqwest::Method::POST, "/api/auth/logout", None).await;
    assert_eq!(status, 204);
    let close = sse.next().await;
    assert_eq!(close.name, "close");
    assert_eq!(close.json()["code"], 4401);
    assert!(sse.next_or_end().await.is_none(), "the stream ends after close");
    server.stop().await;
}

#[tokio::test]
async fn a_dashboard_stream_carries_the_tenants_dashboard_edits() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let mut sse = admin.stream(&stream_path(dashboard), &[]).await;
    let widgets_announced = |event: &support::SseEvent| {
        let edits = event.json()["widgetId"] == protocol::dashboard::DASHBOARD_EDITS_FEED;
        let outline = &event.json()["series"][0]["doc"]["widgets"];
        edits.then(|| outline.as_array().map_or(0, Vec::len))
    };
    let mut seen = Vec::new();
    admin.add_widget(dashboard, "bar_chart", "sales/returns").await;
    while !seen.contains(&2) {
        let event = sse.next_or_end().await.expect("the stream goes on");
        if event.name != "heartbeat" && event.name != "retry" {
            seen.extend(widgets_announced(&event));
        }
    }
    assert_eq!(seen.first(), Some(&1), "the snapshot holds the outline as the stream opened: {seen:?}");
    server.stop().await;
}
