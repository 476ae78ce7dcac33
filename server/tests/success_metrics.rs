//! The metrics the product's success figures are read from, over real sockets: connection
//! attempts by outcome (the success rate), live event messages queued and delivered (the
//! notification delivery rate), and the recovery times pages report.
//!
//! The metrics recorder is one per process and the tests of this file run side by side, so each
//! checks how far a counter moved at least, never its value.

mod support;

use protocol::{ControlMessage, Event, Item, Level, ServerMessage, TopicKind};
use reqwest::Method;
use serde_json::json;
use support::{ACME_ADMIN, ACME_VIEWER, As, TestServer, acme, metric};

const ATTEMPTS_OK: &str = "livedash_connect_attempts_total{outcome=\"ok\"}";
const ATTEMPTS_REFUSED: &str = "livedash_connect_attempts_total{outcome=\"refused\"}";

#[tokio::test]
async fn connection_attempts_are_counted_by_outcome() {
    let server = TestServer::quiet().await;
    let (ok, refused) = (metric(&server, ATTEMPTS_OK).await, metric(&server, ATTEMPTS_REFUSED).await);
    let _viewer = server.connect_as(ACME_VIEWER).await;
    let unsigned = server.open_ws(None, Some(&server.origin())).await;
    if let Ok(mut refused_socket) = unsigned {
        assert_eq!(refused_socket.close_code().await, protocol::close::SESSION_ENDED);
    }
    assert!(metric(&server, ATTEMPTS_OK).await >= ok + 1.0);
    assert!(metric(&server, ATTEMPTS_REFUSED).await >= refused + 1.0);
}

#[tokio::test]
async fn a_live_notification_is_counted_queued_then_delivered() {
    let server = TestServer::quiet().await;
    let delivered = "livedash_event_deliveries_total{outcome=\"delivered\"}";
    let queued = "livedash_event_deliveries_total{outcome=\"queued\"}";
    let centre = acme(protocol::topics::NOTIFICATIONS_TOPIC);
    let event = |title: &str| Item::Event(Event::titled(title.into(), 1, "notification", Level::Warning, title.into()));
    server.engine.publish(centre.clone(), TopicKind::Events, vec![event("old")]).await.unwrap();
    let mut viewer = server.connect_as(ACME_VIEWER).await;
    viewer.subscribe("centre", protocol::topics::NOTIFICATIONS_TOPIC, None).await;
    assert!(matches!(viewer.next_message().await, ServerMessage::Control(ControlMessage::Snapshot { .. })));
    let before = (metric(&server, queued).await, metric(&server, delivered).await);

    server.engine.publish(centre, TopicKind::Events, vec![event("Disk full")]).await.unwrap();
    let ServerMessage::Update(update) = viewer.next_message().await else { panic!("an update") };
    assert!(matches!(&update.series[..], [Item::Event(e)] if e.title == "Disk full"));
    // Counted once written: the client has it now, so the count is there too.
    assert!(metric(&server, queued).await >= before.0 + 1.0);
    assert!(metric(&server, delivered).await >= before.1 + 1.0);
}

#[tokio::test]
async fn pages_report_how_long_they_were_without_data_within_a_limit() {
    let server = TestServer::quiet().await;
    let count = "livedash_connection_recovery_seconds_count";
    let sum = "livedash_connection_recovery_seconds_sum";
    let before = (metric(&server, count).await, metric(&server, sum).await);
    let viewer = As::user(&server, ACME_VIEWER).await;
    let (status, body) = viewer.call(Method::POST, "/api/me/recovery", Some(json!({"downtimeMs": 2500}))).await;
    assert_eq!(status, 204, "{body}");
    assert!(metric(&server, count).await >= before.0 + 1.0);
    assert!(metric(&server, sum).await >= before.1 + 2.5);

    let (status, body) = viewer.call(Method::POST, "/api/me/recovery", Some(json!({"downtime": 1}))).await;
    assert_eq!(status, 400, "{body}");
    // A page reports once per outage: a flood is cut off, for this user only.
    let mut limited = 0;
    for _ in 0..server::state::RECOVERY_REPORTS_PER_MIN + 2 {
        let (status, _) = viewer.call(Method::POST, "/api/me/recovery", Some(json!({"downtimeMs": 1}))).await;
        limited += usize::from(status == 429);
    }
    assert!(limited >= 2, "{limited} refused");
    let admin = As::user(&server, ACME_ADMIN).await;
    assert_eq!(admin.call(Method::POST, "/api/me/recovery", Some(json!({"downtimeMs": 1}))).await.0, 204);
    let anonymous = server.http().post(server.url("/api/me/recovery")).json(&json!({"downtimeMs": 1})).send().await;
    assert_eq!(anonymous.unwrap().status(), 401);
}
