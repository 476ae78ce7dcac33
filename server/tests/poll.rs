//! Polling over real HTTP: full state without a position, exactly the changes since a cursor,
//! nothing when nothing changed, positions carried over from the WebSocket, `since` as a time,
//! gaps, one widget at a time, admission, tenancy and the per-user rate limit.

mod support;

use protocol::dashboard::{DASHBOARD_EDITS_FEED, NOTIFICATION_CENTER_FEED};
use protocol::{ControlMessage, LiveMode, PollAnswer, ServerMessage};
use server::config::Config;
use support::{ACME_ADMIN, As, GLOBEX_ADMIN, TestServer, acme, metric, publish_point};

async fn poll(user: &As, dashboard: i64, query: &str) -> PollAnswer {
    let (status, body) = user.get(&format!("/api/v1/dashboards/{dashboard}/updates{query}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

/// Each widget's messages, as (widget, kind of message, offset). The page's announcements of
/// dashboard edits are left out (the tests' own edits make them): `dashboard_edits_are_polled_too`
/// looks at them.
fn summary(answer: &PollAnswer) -> Vec<(String, &'static str, u64)> {
    let mut out = Vec::new();
    for widget in answer.widgets.iter().filter(|w| w.widget_id != DASHBOARD_EDITS_FEED) {
        for message in &widget.messages {
            let (kind, offset) = match message {
                ServerMessage::Control(ControlMessage::Snapshot { meta, .. }) => ("snapshot", meta.offset),
                ServerMessage::Control(ControlMessage::Gap { .. }) => ("gap", 0),
                ServerMessage::Update(update) => ("update", update.meta.offset),
                other => panic!("unexpected {other:?}"),
            };
            out.push((widget.widget_id.clone(), kind, offset));
        }
    }
    out
}

fn cursor(answer: &PollAnswer) -> String {
    format!("?since={}", answer.cursor)
}

#[tokio::test]
async fn polls_return_the_full_state_then_exactly_the_changes_and_nothing_when_nothing_changed() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, ids) =
        admin.create_dashboard(&[("line_chart", "sales/orders"), ("bar_chart", "sales/later")]).await;
    let (orders, later) = (acme("sales/orders"), acme("sales/later"));
    publish_point(&server.broker, &orders, 1.0);

    let first = poll(&admin, dashboard, "").await;
    assert_eq!(summary(&first), [(ids[0].clone(), "snapshot", 1)], "topics without messages say nothing yet");
    let quiet_polls = metric(&server, "livedash_polls_total{outcome=\"unchanged\"}").await;
    let unchanged = poll(&admin, dashboard, &cursor(&first)).await;
    assert!(unchanged.widgets.is_empty());
    assert!(metric(&server, "livedash_polls_total{outcome=\"unchanged\"}").await > quiet_polls, "counted");
    assert_eq!(unchanged.cursor, first.cursor, "nothing moved");

    publish_point(&server.broker, &orders, 2.0);
    publish_point(&server.broker, &orders, 3.0);
    publish_point(&server.broker, &later, 1.0);
    let changes = poll(&admin, dashboard, &cursor(&unchanged)).await;
    assert_eq!(
        summary(&changes),
        [(ids[0].clone(), "update", 2), (ids[0].clone(), "update", 3), (ids[1].clone(), "snapshot", 1)]
    );
    assert!(poll(&admin, dashboard, &cursor(&changes)).await.widgets.is_empty(), "each change once");

    // One widget only (a manual refresh): the others keep their place in the cursor.
    let one = poll(&admin, dashboard, &format!("?widgets={}", ids[1])).await;
    assert_eq!(summary(&one), [(ids[1].clone(), "snapshot", 1)]);
    server.stop().await;
}

#[tokio::test]
async fn positions_from_the_websocket_time_since_and_lost_history() {
    let server = TestServer::start(Config { demo: false, history_len: 3, ..Config::default() }).await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, ids) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let orders = acme("sales/orders");
    publish_point(&server.broker, &orders, 1.0);
    let token = server.broker.epoch(&orders).unwrap() + ".1";
    publish_point(&server.broker, &orders, 2.0);
    let carried = poll(&admin, dashboard, &format!("?positions={}:{token}", ids[0])).await;
    assert_eq!(summary(&carried), [(ids[0].clone(), "update", 2)]);

    let before = server::clock::now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    publish_point(&server.broker, &orders, 3.0);
    let since = poll(&admin, dashboard, &format!("?since={before}")).await;
    assert_eq!(summary(&since), [(ids[0].clone(), "update", 3)], "answered from history");

    for v in 4..=8 {
        publish_point(&server.broker, &orders, v as f64);
    }
    let lost = poll(&admin, dashboard, &format!("?since={before}")).await;
    assert_eq!(
        summary(&lost),
        [(ids[0].clone(), "gap", 0), (ids[0].clone(), "snapshot", 8)],
        "history no longer reaches"
    );
    let stale = poll(&admin, dashboard, &cursor(&carried)).await;
    assert_eq!(summary(&stale), [(ids[0].clone(), "gap", 0), (ids[0].clone(), "snapshot", 8)]);
    let forged = poll(&admin, dashboard, "?since=AAAAbogus").await;
    assert_eq!(summary(&forged), [(ids[0].clone(), "gap", 0), (ids[0].clone(), "snapshot", 8)]);
    let (status, _) = admin.get(&format!("/api/v1/dashboards/{dashboard}/updates?positions=nonsense")).await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn polls_need_a_session_of_the_tenant_and_a_live_mode_other_than_off() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let path = format!("/api/v1/dashboards/{dashboard}/updates");
    assert_eq!(reqwest::get(server.url(&path)).await.unwrap().status(), 401);
    assert_eq!(admin.open(&path, &[("origin", "http://evil.test")]).await.status(), 403);
    let globex = As::user(&server, GLOBEX_ADMIN).await;
    assert_eq!(globex.get(&path).await.0, 404, "another tenant's dashboard is unknown");
    // The header's notifications are part of every dashboard.
    server.broker.publish(&acme("ops/notifications"), protocol::TopicKind::Events, vec![]).unwrap();
    let answer = poll(&admin, dashboard, "").await;
    assert!(answer.widgets.iter().any(|w| w.widget_id == NOTIFICATION_CENTER_FEED));
    assert_eq!(answer.live_mode, Some(LiveMode::Live));
    let polling = serde_json::json!({"mode": "polling"});
    assert_eq!(admin.call(reqwest::Method::PUT, "/api/admin/live-mode", Some(polling)).await.0, 200);
    assert_eq!(poll(&admin, dashboard, "").await.live_mode, Some(LiveMode::Polling), "polls go on, and say why");
    let off = serde_json::json!({"enabled": false});
    assert_eq!(admin.call(reqwest::Method::PUT, "/api/admin/live-dashboards", Some(off)).await.0, 200);
    let (status, body) = admin.get(&path).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("live_dashboards_off")));
    server.stop().await;
}

/// The operator's backout: a page whose WebSocket is closed because its tenant now polls continues
/// from the resume token of the last message that socket brought, and misses nothing.
#[tokio::test]
async fn a_socket_moved_to_polling_continues_from_its_resume_token() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, ids) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let orders = acme("sales/orders");
    let mut socket = server.connect_as(ACME_ADMIN).await;
    socket.subscribe(&ids[0], "sales/orders", None).await;
    let mut last_token = None;
    for v in 1..=3 {
        publish_point(&server.broker, &orders, v as f64);
    }
    while last_token.as_ref().is_none_or(|t: &String| !t.ends_with(".3")) {
        last_token = Some(match socket.next_message().await {
            ServerMessage::Control(ControlMessage::Snapshot { meta, .. }) => meta.resume_token,
            ServerMessage::Update(update) => update.meta.resume_token,
            other => panic!("unexpected {other:?}"),
        });
    }
    let polling = serde_json::json!({"mode": "polling"});
    assert_eq!(admin.call(reqwest::Method::PUT, "/api/admin/live-mode", Some(polling)).await.0, 200);
    assert_eq!(socket.close_code().await, 4405);
    publish_point(&server.broker, &orders, 4.0);
    publish_point(&server.broker, &orders, 5.0);
    let token = last_token.unwrap();
    let carried = poll(&admin, dashboard, &format!("?positions={}:{token}", ids[0])).await;
    assert_eq!(summary(&carried), [(ids[0].clone(), "update", 4), (ids[0].clone(), "update", 5)], "nothing lost");
    assert_eq!(carried.live_mode, Some(LiveMode::Polling));
    server.stop().await;
}

#[tokio::test]
async fn polls_per_user_are_rate_limited_with_429_and_retry_after() {
    let server = TestServer::start(Config { demo: false, polls_per_min: 3, ..Config::default() }).await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let path = format!("/api/v1/dashboards/{dashboard}/updates");
    for _ in 0..3 {
        assert_eq!(admin.open(&path, &[]).await.status(), 200);
    }
    let limited = admin.open(&path, &[]).await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["limit"], serde_json::json!({"name": "polls_per_user", "max": 3}));
    let globex = As::user(&server, GLOBEX_ADMIN).await;
    let [theirs] = &globex.dashboards().await[..] else { panic!() };
    assert_eq!(globex.get(&format!("/api/v1/dashboards/{}/updates", theirs.id)).await.0, 200, "per user");
    server.stop().await;
}

#[tokio::test]
async fn dashboard_edits_are_polled_too() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let edits = |answer: &PollAnswer| -> Vec<serde_json::Value> {
        let feed = answer.widgets.iter().filter(|w| w.widget_id == DASHBOARD_EDITS_FEED);
        let series = feed.flat_map(|w| &w.messages).flat_map(|m| match m {
            ServerMessage::Control(ControlMessage::Snapshot { series, .. }) => series.clone(),
            ServerMessage::Update(update) => update.series.clone(),
            _ => vec![],
        });
        series.map(|item| serde_json::to_value(item).unwrap()).collect()
    };
    let first = poll(&admin, dashboard, "").await;
    let [outline] = &edits(&first)[..] else { panic!("one dashboard edited: {:?}", edits(&first)) };
    assert_eq!(outline["id"], dashboard.to_string());
    assert_eq!(outline["doc"]["widgets"].as_array().map(Vec::len), Some(1));
    admin.add_widget(dashboard, "bar_chart", "sales/later").await;
    let next = poll(&admin, dashboard, &cursor(&first)).await;
    let [outline] = &edits(&next)[..] else { panic!("the edit since: {:?}", edits(&next)) };
    assert_eq!(outline["doc"]["widgets"].as_array().map(Vec::len), Some(2));
    server.stop().await;
}
