//! Threshold alerts over the real HTTP API and WebSocket: a KPI tile's key or a chart's series past
//! a bound raises one alert on the notification centre's topic when its state changes (not on every
//! value), another when it comes back, and keeps each in the widget's history; a worse state counts
//! only once it has held for the threshold's time; the topic rules decide what is told and whose
//! history shows what.

mod support;

use protocol::Level;
use protocol::thresholds::{AlertRecord, ThresholdState};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ACME_ADMIN, ACME_VIEWER, As, Client, TestServer, metric, next_events};

async fn publish(server: &TestServer, topic: &str, body: Value) {
    let answer = server
        .http()
        .post(server.url(&format!("/api/v1/publish/{topic}")))
        .bearer_auth(server.key("acme"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
}

async fn orders(server: &TestServer, value: f64) {
    publish(server, "ops/kpi", json!({"values": {"orders": value, "returns": 1}})).await;
}

/// A dashboard with one widget of `kind` on `topic` and these thresholds; its and the widget's ids.
async fn widget_with(admin: &As, kind: &str, topic: &str, thresholds: Value) -> (i64, i64) {
    let (dashboard, widgets) = admin.create_dashboard(&[(kind, topic)]).await;
    let widget: i64 = widgets[0].trim_start_matches('w').parse().unwrap();
    let path = format!("/api/dashboards/{dashboard}/widgets/{widget}/thresholds");
    let (status, saved) = admin.call(Method::PUT, &path, Some(thresholds)).await;
    assert_eq!(status, 200, "{saved}");
    (dashboard, widget)
}

async fn next_title(client: &mut Client) -> String {
    let events = next_events(client).await;
    assert_eq!(events.len(), 1, "{events:?}");
    events[0].title.clone()
}

async fn history(user: &As, dashboard: i64, widget: i64) -> (u16, Vec<AlertRecord>) {
    let (status, body) = user.get(&format!("/api/dashboards/{dashboard}/widgets/{widget}/alerts")).await;
    (status, if status == 200 { serde_json::from_value(body).unwrap() } else { vec![] })
}

#[tokio::test]
async fn a_kpi_past_a_bound_raises_one_alert_per_change_of_state_and_keeps_each() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let below = json!([{"key": "orders", "direction": "below", "warning": 50, "critical": 30}]);
    let (dashboard, widget) = widget_with(&admin, "kpi_tiles", "ops/kpi", below).await;
    let mut viewer = server.connect_as(ACME_VIEWER).await;
    viewer.subscribe("centre", "ops/notifications", None).await;

    orders(&server, 60.0).await;
    orders(&server, 40.0).await;
    let warning = next_events(&mut viewer).await;
    assert_eq!(warning[0].title, "ops/kpi: orders is warning at 40 (below 50)");
    assert_eq!((warning[0].level, warning[0].event_type.as_str()), (Level::Warning, "alert"));
    assert_eq!(warning[0].body.as_deref(), Some("ops/kpi · Test"));
    orders(&server, 20.0).await;
    let critical = next_events(&mut viewer).await;
    assert_eq!(critical[0].title, "ops/kpi: orders is critical at 20 (below 30)");
    assert_eq!(critical[0].level, Level::Error);
    // Still critical: nothing new. Back above both bounds: resolved, and that is what comes next.
    orders(&server, 25.0).await;
    orders(&server, 55.0).await;
    let resolved = next_events(&mut viewer).await;
    assert_eq!(
        (resolved[0].title.as_str(), resolved[0].level),
        ("ops/kpi: orders is back to normal at 55", Level::Success)
    );

    let (status, kept) = history(&admin, dashboard, widget).await;
    assert_eq!(status, 200);
    let moves: Vec<_> = kept.iter().map(|a| (a.from, a.to, a.value)).collect();
    assert_eq!(
        moves,
        [
            (ThresholdState::Critical, ThresholdState::Ok, 55.0),
            (ThresholdState::Warning, ThresholdState::Critical, 20.0),
            (ThresholdState::Ok, ThresholdState::Warning, 40.0),
        ],
        "newest first"
    );
    assert_eq!(history(&As::user(&server, ACME_VIEWER).await, dashboard, widget).await.1, kept, "viewers read it too");
    assert!(metric(&server, "livedash_alerts_total{outcome=\"raised\"}").await >= 3.0);

    // Thresholds removed: nothing more is weighed.
    let path = format!("/api/dashboards/{dashboard}/widgets/{widget}/thresholds");
    assert_eq!(admin.call(Method::PUT, &path, Some(json!([]))).await.0, 200);
    orders(&server, 1.0).await;
    assert_eq!(history(&admin, dashboard, widget).await.1.len(), 3);
}

#[tokio::test]
async fn a_chart_alerts_on_its_series_and_a_worse_state_must_hold_for_its_time() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let above = json!([{"direction": "above", "critical": 100}]);
    let (dashboard, widget) = widget_with(&admin, "line_chart", "ops/latency", above).await;
    let mut boss = server.connect_as(ACME_ADMIN).await;
    boss.subscribe("centre", "ops/notifications", None).await;
    publish(&server, "ops/latency", json!({"points": [{"value": 50}, {"value": 150}, {"value": 180}]})).await;
    assert_eq!(next_title(&mut boss).await, "ops/latency is critical at 150 (above 100)");

    // A second chart whose bad state must last a minute: one bad point is not an alert yet.
    let slow = json!([{"direction": "above", "critical": 100, "forSecs": 60}]);
    let (_, patient) = widget_with(&admin, "bar_chart", "ops/queue", slow).await;
    publish(&server, "ops/queue", json!({"points": [{"value": 500}]})).await;
    publish(&server, "ops/latency", json!({"points": [{"value": 10}]})).await;
    assert_eq!(next_title(&mut boss).await, "ops/latency is back to normal at 10", "nothing of ops/queue came first");
    assert!(history(&admin, dashboard, patient).await.1.is_empty());
    assert_eq!(history(&admin, dashboard, widget).await.1.len(), 2);
}

#[tokio::test]
async fn the_topic_rules_decide_what_an_alert_tells_and_whose_history_shows_it() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let rules = json!({"rules": [
        {"topics": "finance/**", "read": ["admin"]},
        {"topics": "ops/kpi", "read": ["viewer", "admin"], "fields": [{"field": "orders", "roles": ["admin"]}]},
    ]});
    assert_eq!(admin.call(Method::PUT, "/api/admin/topic-rules", Some(rules)).await.0, 200);
    let thresholds = json!([
        {"key": "orders", "direction": "below", "critical": 30},
        {"key": "returns", "direction": "above", "critical": 5},
    ]);
    let (dashboard, widget) = widget_with(&admin, "kpi_tiles", "ops/kpi", thresholds).await;
    let mut viewer = server.connect_as(ACME_VIEWER).await;
    viewer.subscribe("centre", "ops/notifications", None).await;

    // Orders are hidden from viewers, who read the centre: that alert is withheld, the other told.
    publish(&server, "ops/kpi", json!({"values": {"orders": 10, "returns": 9}})).await;
    assert_eq!(next_title(&mut viewer).await, "ops/kpi: returns is critical at 9 (above 5)");
    assert!(metric(&server, "livedash_alerts_total{outcome=\"withheld\"}").await >= 1.0);
    // Both are in the history; a viewer's copy leaves out the key they may not see.
    assert_eq!(history(&admin, dashboard, widget).await.1.len(), 2);
    let viewer_session = As::user(&server, ACME_VIEWER).await;
    let (_, seen) = history(&viewer_session, dashboard, widget).await;
    assert_eq!(seen.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), ["returns"]);

    // A topic viewers may not read at all: nothing is told, and its history is refused them.
    let (books, money) =
        widget_with(&admin, "kpi_tiles", "finance/kpi", json!([{"key": "cash", "direction": "below", "critical": 0}]))
            .await;
    publish(&server, "finance/kpi", json!({"values": {"cash": -5}})).await;
    publish(&server, "ops/kpi", json!({"values": {"returns": 1}})).await;
    assert_eq!(
        next_title(&mut viewer).await,
        "ops/kpi: returns is back to normal at 1",
        "nothing of finance came first"
    );
    assert_eq!(history(&admin, books, money).await.1.len(), 1, "kept, for those who may read it");
    assert_eq!(history(&viewer_session, books, money).await.0, 403);
}
