//! Collection notifications over the real HTTP API and WebSocket: an admin chooses which document
//! changes of a collection widget raise one; publishing through the HTTP API raises them on the
//! notification centre's topic, titled from the document, without the fields a reader of that
//! topic may not see; topic rules that would let a reader of the notifications hear of a
//! collection they may not read refuse the setting, and withhold what was set before.

mod support;

use protocol::{ControlMessage, Event, Item, Level, ServerMessage};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ACME_ADMIN, ACME_VIEWER, As, TestServer, metric, next_events};

async fn publish(server: &TestServer, topic: &str, changes: Value) {
    let answer = server
        .http()
        .post(server.url(&format!("/api/v1/publish/{topic}")))
        .bearer_auth(server.key("acme"))
        .header("content-type", "application/json")
        .body(json!({ "changes": changes }).to_string())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
}

fn order(id: &str, customer: &str, margin: f64) -> Value {
    json!({"op": "upsert", "id": id, "doc": {"customer": customer, "margin": margin}})
}

/// Adds a document table on `topic` to a new dashboard; returns the dashboard and widget ids.
async fn table(admin: &As, topic: &str) -> (i64, i64) {
    let (dashboard, widgets) = admin.create_dashboard(&[("document_table", topic)]).await;
    (dashboard, widgets[0].trim_start_matches('w').parse().unwrap())
}

async fn set_notify(admin: &As, dashboard: i64, widget: i64, notify: Value) -> (u16, Value) {
    admin.call(Method::PUT, &format!("/api/dashboards/{dashboard}/widgets/{widget}/notify"), Some(notify)).await
}

fn titles(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.title.as_str()).collect()
}

#[tokio::test]
async fn chosen_document_changes_raise_titled_notifications_for_everyone_who_reads_the_centre() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, widget) = table(&admin, "sales/orders").await;
    let notify = json!({"ops": ["created", "deleted"], "title": "Order {id} {op} for {customer}", "level": "warning"});
    let (status, saved) = set_notify(&admin, dashboard, widget, notify.clone()).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["notify"], notify);
    assert_eq!(admin.dashboard(dashboard).await.widgets[0].notify.as_ref().unwrap().level, Level::Warning);

    let mut viewer = server.connect_as(ACME_VIEWER).await;
    viewer.subscribe("centre", "ops/notifications", None).await;
    let mut boss = server.connect_as(ACME_ADMIN).await;
    boss.subscribe("centre", "ops/notifications", None).await;

    publish(&server, "sales/orders", json!([order("o1", "Initech", 0.3), order("o2", "Globex", 0.1)])).await;
    let raised = next_events(&mut viewer).await;
    assert_eq!(titles(&raised), ["Order o1 created for Initech", "Order o2 created for Globex"]);
    assert_eq!(raised[0].event_type, "collection:created");
    assert_eq!(raised[0].level, Level::Warning);
    assert_eq!(raised[0].body.as_deref(), Some("sales/orders · Test"));
    assert_eq!(titles(&next_events(&mut boss).await), titles(&raised), "every reader gets the same");

    // An update is not chosen; a delete is. The update raises nothing, so the delete comes next.
    publish(&server, "sales/orders", json!([order("o1", "Initech Ltd", 0.3)])).await;
    publish(&server, "sales/orders", json!([{"op": "delete", "id": "o2"}])).await;
    assert_eq!(titles(&next_events(&mut viewer).await), ["Order o2 deleted for —"]);
    assert!(metric(&server, "livedash_collection_notifications_total{outcome=\"raised\"}").await >= 3.0);
    // A reload's snapshot of the centre holds them: they are history like any notification.
    assert_eq!(centre_titles(&server).await.len(), 3);

    // Turned off: nothing more, from this collection or another.
    let (status, off) = set_notify(&admin, dashboard, widget, Value::Null).await;
    assert_eq!(status, 200, "{off}");
    assert!(off.get("notify").is_none());
    publish(&server, "sales/orders", json!([order("o3", "Umbrella", 0.2)])).await;
    publish(&server, "ops/other", json!([order("x", "y", 0.0)])).await;
    assert_eq!(centre_titles(&server).await.len(), 3);
    support::eventually_async("turning them off is audited", || async {
        let audit = admin.get("/api/admin/audit").await.1.to_string();
        audit.contains("widget_notify") && audit.contains(": off")
    })
    .await;
}

/// What a page opening now finds in the notification centre.
async fn centre_titles(server: &TestServer) -> Vec<String> {
    let mut page = server.connect_as(ACME_ADMIN).await;
    page.subscribe("centre", "ops/notifications", None).await;
    let ServerMessage::Control(ControlMessage::Snapshot { series, .. }) = page.next_message().await else { panic!() };
    series
        .into_iter()
        .map(|item| match item {
            Item::Event(event) => event.title,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn the_topic_rules_decide_what_a_notification_may_tell_and_to_whom() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let rules = json!({"rules": [
        {"topics": "finance/**", "read": ["admin"]},
        {"topics": "sales/**", "read": ["viewer", "admin"], "fields": [{"field": "margin", "roles": ["admin"]}]},
    ]});
    let (status, body) = admin.call(Method::PUT, "/api/admin/topic-rules", Some(rules)).await;
    assert_eq!(status, 200, "{body}");
    let notify = json!({"ops": ["created"], "title": "{customer} at margin {margin}"});

    // Viewers read the centre but not finance: refused, and the reason says what to change.
    let (deals, money) = table(&admin, "finance/deals").await;
    let (status, refused) = set_notify(&admin, deals, money, notify.clone()).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["field"], "notify");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("a viewer may not read topic finance/deals"), "{message}");

    // Viewers may read sales but not its margins: the title leaves them out, for everyone.
    let (dashboard, orders) = table(&admin, "sales/orders").await;
    assert_eq!(set_notify(&admin, dashboard, orders, notify.clone()).await.0, 200);
    let mut viewer = server.connect_as(ACME_VIEWER).await;
    viewer.subscribe("centre", "ops/notifications", None).await;
    publish(&server, "sales/orders", json!([order("o1", "Initech", 0.3)])).await;
    let raised = next_events(&mut viewer).await;
    assert_eq!(titles(&raised), ["Initech at margin —"]);
    assert!(!raised[0].data.as_ref().unwrap().contains_key("margin"));

    // Rules changed later to keep viewers from sales: what it raises is withheld, not sent.
    let rules = json!({"rules": [{"topics": "sales/**", "read": ["admin"]}]});
    assert_eq!(admin.call(Method::PUT, "/api/admin/topic-rules", Some(rules)).await.0, 200);
    publish(&server, "sales/orders", json!([order("o2", "Globex", 0.1)])).await;
    assert!(metric(&server, "livedash_collection_notifications_total{outcome=\"withheld\"}").await >= 1.0);
    assert_eq!(centre_titles(&server).await, ["Initech at margin —"], "nothing of Globex was sent");

    // The centre kept from viewers: admins hear of finance, margins and all.
    let rules = json!({"rules": [
        {"topics": "finance/**", "read": ["admin"]},
        {"topics": "ops/notifications", "read": ["admin"]},
    ]});
    assert_eq!(admin.call(Method::PUT, "/api/admin/topic-rules", Some(rules)).await.0, 200);
    assert_eq!(set_notify(&admin, deals, money, notify).await.0, 200);
    let mut boss = server.connect_as(ACME_ADMIN).await;
    boss.subscribe("centre", "ops/notifications", None).await;
    publish(&server, "finance/deals", json!([order("d1", "Hooli", 0.5)])).await;
    assert_eq!(titles(&next_events(&mut boss).await), ["Hooli at margin 0.5"]);
}

#[tokio::test]
async fn only_collection_widgets_take_notifications_and_bad_templates_are_named() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, widgets) = admin.create_dashboard(&[("line_chart", "sales/revenue")]).await;
    let chart: i64 = widgets[0].trim_start_matches('w').parse().unwrap();
    let notify = json!({"ops": ["created"], "title": "{id}"});
    let (status, body) = set_notify(&admin, dashboard, chart, notify).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("only a widget that shows a collection"), "{body}");

    let (dashboard, orders) = table(&admin, "sales/orders").await;
    let (status, body) = set_notify(&admin, dashboard, orders, json!({"ops": ["created"], "title": "Order {id"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "the title has a { without its }");
    let (status, _) = set_notify(&admin, dashboard, orders, json!({"ops": [], "title": "x"})).await;
    assert_eq!(status, 400);
    let (status, _) = set_notify(&admin, dashboard, 999_999, json!({"ops": ["created"], "title": "x"})).await;
    assert_eq!(status, 404);

    let viewer = As::user(&server, ACME_VIEWER).await;
    let (status, _) = viewer
        .call(Method::PUT, &format!("/api/dashboards/{dashboard}/widgets/{orders}/notify"), Some(Value::Null))
        .await;
    assert_eq!(status, 403, "admins only");
}
