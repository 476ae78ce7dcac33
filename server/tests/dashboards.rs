//! Stored dashboards over real HTTP: the seeded demo dashboard, admin editing, viewers refused,
//! tenants kept apart, per-user widget modes and preferences.

mod support;

use protocol::Level;
use protocol::dashboard::{DashboardSummary, Preferences, WidgetDef};
use serde_json::json;
use support::{ACME_ADMIN, ACME_VIEWER, As, GLOBEX_ADMIN, TestServer};

#[tokio::test]
async fn every_demo_tenant_starts_with_its_own_operations_dashboard() {
    let server = TestServer::quiet().await;
    let (acme, globex) = (As::user(&server, ACME_ADMIN).await, As::user(&server, GLOBEX_ADMIN).await);
    let [ours] = &acme.dashboards().await[..] else { panic!("one demo dashboard") };
    let [theirs] = &globex.dashboards().await[..] else { panic!("one demo dashboard") };
    assert_eq!(ours.title, "Operations");
    assert_ne!(ours.id, theirs.id);
    let view = acme.dashboard(ours.id).await;
    let kinds: Vec<&str> = view.widgets.iter().map(|w| w.kind.slug()).collect();
    assert_eq!(
        kinds,
        ["kpi_tiles", "line_chart", "bar_chart", "document_table", "job_panel", "notification_feed", "active_users"]
    );
    assert!(view.can_edit, "acme's admin may edit");
    let (status, body) = globex.get(&format!("/api/dashboards/{}", ours.id)).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "another tenant's dashboard is unknown");
    server.stop().await;
}

#[tokio::test]
async fn admins_set_a_widgets_thresholds_which_every_reader_of_the_dashboard_gets() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, widgets) = admin.create_dashboard(&[("kpi_tiles", "kpi/ops"), ("document_table", "docs/x")]).await;
    let [tiles, table] = [0, 1].map(|i| widgets[i].trim_start_matches('w').parse::<i64>().unwrap());
    let path = |widget: i64| format!("/api/dashboards/{dashboard}/widgets/{widget}/thresholds");
    let orders = json!({"key": "orders", "direction": "below", "warning": 50, "critical": 30, "forSecs": 120});
    let (status, saved) = admin.call(reqwest::Method::PUT, &path(tiles), Some(json!([orders]))).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["thresholds"][0]["critical"], 30.0);
    let viewer = As::user(&server, ACME_VIEWER).await;
    let seen = viewer.dashboard(dashboard).await;
    assert_eq!(seen.widgets[0].thresholds[0].for_secs, 120);
    assert!(seen.widgets[1].thresholds.is_empty());

    // Refused with the faulty entry named; viewers may not set them; `[]` removes them.
    let twice = json!([orders, orders]);
    let (status, refused) = admin.call(reqwest::Method::PUT, &path(tiles), Some(twice)).await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("thresholds")), "{refused}");
    assert_eq!(refused["message"], "thresholds[1]: \"orders\" has a threshold already");
    let (status, _) = admin.call(reqwest::Method::PUT, &path(table), Some(json!([orders]))).await;
    assert_eq!(status, 400, "a document table has no thresholds");
    assert_eq!(viewer.call(reqwest::Method::PUT, &path(tiles), Some(json!([]))).await.0, 403);
    assert_eq!(admin.call(reqwest::Method::PUT, &path(tiles), Some(json!([]))).await.0, 200);
    assert!(admin.dashboard(dashboard).await.widgets[0].thresholds.is_empty());
    support::eventually_async("the change is audited", || async {
        admin.get("/api/admin/audit").await.1.to_string().contains("widget_thresholds")
    })
    .await;
}

#[tokio::test]
async fn admins_create_dashboards_and_add_reorder_and_remove_widgets() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    use reqwest::Method;
    let (status, created) = admin.call(Method::POST, "/api/dashboards", Some(json!({"title": "  Night shift "}))).await;
    assert_eq!(status, 201, "{created}");
    let created: DashboardSummary = serde_json::from_value(created).unwrap();
    assert_eq!(created.title, "Night shift");
    let widgets = format!("/api/dashboards/{}/widgets", created.id);
    let mut ids = Vec::new();
    for (title, kind) in [("Orders", "line_chart"), ("Tickets", "bar_chart"), ("Jobs", "job_panel")] {
        let body = json!({"title": title, "kind": kind, "topic": "shop/x", "defaultMode": "30s"});
        let (status, widget) = admin.call(Method::POST, &widgets, Some(body)).await;
        assert_eq!(status, 201, "{widget}");
        ids.push(serde_json::from_value::<WidgetDef>(widget).unwrap().id);
    }
    let (status, body) =
        admin.call(Method::POST, &widgets, Some(json!({"title": "x", "kind": "line_chart", "topic": "../etc"}))).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("topic")), "{body}");
    let (status, body) =
        admin.call(Method::POST, &widgets, Some(json!({"title": "x", "kind": "pie", "topic": "a/b"}))).await;
    assert_eq!(status, 400, "an unknown kind: {body}");
    let (status, body) =
        admin.call(Method::POST, &widgets, Some(json!({"title": " ", "kind": "bar_chart", "topic": "a/b"}))).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("title")));

    let order = format!("/api/dashboards/{}/order", created.id);
    let (status, _) = admin.call(Method::PUT, &order, Some(json!({"widgetIds": [ids[2], ids[0]]}))).await;
    assert_eq!(status, 400, "the order must name every widget");
    let (status, _) = admin.call(Method::PUT, &order, Some(json!({"widgetIds": [ids[2], ids[0], ids[1]]}))).await;
    assert_eq!(status, 204);
    let (status, _) = admin.call(Method::DELETE, &format!("{widgets}/{}", ids[0]), None).await;
    assert_eq!(status, 204);
    let view = admin.dashboard(created.id).await;
    let titles: Vec<&str> = view.widgets.iter().map(|w| w.title.as_str()).collect();
    assert_eq!(titles, ["Jobs", "Tickets"]);
    assert_eq!(view.widgets[0].default_mode.slug(), "30s");

    // The audit trail is written in batches, off the request path: wait for it (bounded).
    let wanted = ["dashboard_create", "widget_add", "widget_reorder", "widget_remove"];
    let mut actions = Vec::new();
    let deadline = std::time::Instant::now() + support::WAIT;
    while std::time::Instant::now() < deadline {
        let (_, audit) = admin.get("/api/admin/audit?limit=50").await;
        actions = audit.as_array().unwrap().iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect();
        if wanted.iter().all(|w| actions.iter().any(|a| a == w)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for action in wanted {
        assert!(actions.iter().any(|a| a == action), "{action} audited: {actions:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_viewer_watches_but_cannot_edit_and_other_tenants_cannot_touch() {
    let server = TestServer::quiet().await;
    let (viewer, globex) = (As::user(&server, ACME_VIEWER).await, As::user(&server, GLOBEX_ADMIN).await);
    let id = viewer.dashboards().await[0].id;
    let view = viewer.dashboard(id).await;
    assert!(!view.can_edit);
    let widget = view.widgets[0].id;
    use reqwest::Method;
    let attempts = [
        (Method::POST, "/api/dashboards".to_owned(), Some(json!({"title": "Mine"}))),
        (
            Method::POST,
            format!("/api/dashboards/{id}/widgets"),
            Some(json!({"title": "x", "kind": "bar_chart", "topic": "a/b"})),
        ),
        (Method::DELETE, format!("/api/dashboards/{id}/widgets/{widget}"), None),
        (Method::PUT, format!("/api/dashboards/{id}/order"), Some(json!({"widgetIds": []}))),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = viewer.call(method.clone(), &path, body.clone()).await;
        assert_eq!((status, answer["error"].as_str()), (403, Some("forbidden")), "viewer {method} {path}");
        let (status, _) = globex.call(method.clone(), &path, body).await;
        if path != "/api/dashboards" {
            assert_eq!(status, 404, "globex's admin {method} {path}");
        }
    }
    assert_eq!(viewer.dashboard(id).await.widgets, view.widgets, "nothing changed");
    let (status, _) =
        globex.call(Method::PUT, &format!("/api/me/widget-modes/{widget}"), Some(json!({"mode": "manual"}))).await;
    assert_eq!(status, 404, "a mode for another tenant's widget");
    server.stop().await;
}

#[tokio::test]
async fn widget_modes_and_preferences_are_each_users_own() {
    let server = TestServer::quiet().await;
    let (viewer, admin) = (As::user(&server, ACME_VIEWER).await, As::user(&server, ACME_ADMIN).await);
    let id = viewer.dashboards().await[0].id;
    let widget = viewer.dashboard(id).await.widgets[1].clone();
    use reqwest::Method;
    let path = format!("/api/me/widget-modes/{}", widget.id);
    let (status, _) = viewer.call(Method::PUT, &path, Some(json!({"mode": "30s"}))).await;
    assert_eq!(status, 204);
    let (status, body) = viewer.call(Method::PUT, &path, Some(json!({"mode": "2s"}))).await;
    assert_eq!(status, 400, "{body}");
    let mine = viewer.dashboard(id).await;
    assert_eq!(mine.mode_of(&mine.widgets[1]).to_string(), "Every 30s");
    let theirs = admin.dashboard(id).await;
    assert_eq!(theirs.mode_of(&theirs.widgets[1]).to_string(), "Live", "the admin's view is unchanged");

    let (status, body) = viewer.get("/api/me/preferences").await;
    assert_eq!((status, serde_json::from_value::<Preferences>(body).unwrap()), (200, Preferences::default()));
    let (status, _) =
        viewer.call(Method::PUT, "/api/me/preferences", Some(json!({"toastLevels": ["error", "info", "error"]}))).await;
    assert_eq!(status, 200);
    let (_, body) = viewer.get("/api/me/preferences").await;
    let saved: Preferences = serde_json::from_value(body).unwrap();
    assert_eq!(saved.toast_levels, [Level::Info, Level::Error]);
    let (_, body) = admin.get("/api/me/preferences").await;
    assert_eq!(serde_json::from_value::<Preferences>(body).unwrap(), Preferences::default());
    server.stop().await;
}

/// The last outline of the next `dashboards/edits` message on `client` (a snapshot when the topic
/// was just created, an update after), as (dashboard id, outline).
async fn next_outline(client: &mut support::Client) -> (i64, protocol::dashboard::DashboardOutline) {
    loop {
        let message = client.next_json().await;
        if message["widgetId"] == "edits" && (message["type"].is_null() || message["type"] == "snapshot") {
            // A waiting subscription's snapshot, taken as the topic is made, may hold nothing yet.
            let Some(change) = message["series"].as_array().and_then(|s| s.last()) else { continue };
            let id = change["id"].as_str().unwrap().parse().unwrap();
            return (id, serde_json::from_value(change["doc"].clone()).unwrap());
        }
    }
}

#[tokio::test]
async fn every_edit_is_announced_to_the_tenants_open_pages() {
    use reqwest::Method;
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let mut viewer = server.connect_as(ACME_VIEWER).await;
    // Nothing was edited yet: the subscriptions wait for the topic.
    viewer.subscribe("edits", protocol::topics::DASHBOARD_EDITS_TOPIC, None).await;
    let mut other_tenant = server.connect_as(GLOBEX_ADMIN).await;
    other_tenant.subscribe("edits", protocol::topics::DASHBOARD_EDITS_TOPIC, None).await;

    let (dashboard, _) = admin.create_dashboard(&[]).await;
    let outline = |widgets: &[i64]| protocol::dashboard::DashboardOutline {
        title: "Test".into(),
        widgets: widgets.to_vec(),
        settings: 0,
    };
    assert_eq!(next_outline(&mut viewer).await, (dashboard, outline(&[])), "a new dashboard");
    let first: i64 = admin.add_widget(dashboard, "line_chart", "a/b").await[1..].parse().unwrap();
    assert_eq!(next_outline(&mut viewer).await, (dashboard, outline(&[first])));
    let second: i64 = admin.add_widget(dashboard, "bar_chart", "a/c").await[1..].parse().unwrap();
    assert_eq!(next_outline(&mut viewer).await, (dashboard, outline(&[first, second])));
    let order = format!("/api/dashboards/{dashboard}/order");
    let (status, _) = admin.call(Method::PUT, &order, Some(json!({"widgetIds": [second, first]}))).await;
    assert_eq!(status, 204);
    assert_eq!(next_outline(&mut viewer).await, (dashboard, outline(&[second, first])), "moved");
    let (status, _) = admin.call(Method::DELETE, &format!("/api/dashboards/{dashboard}/widgets/{second}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(next_outline(&mut viewer).await, (dashboard, outline(&[first])), "removed");

    // A page opened later gets every edited dashboard's outline in its snapshot.
    let mut late = server.connect_as(ACME_VIEWER).await;
    late.subscribe("edits", protocol::topics::DASHBOARD_EDITS_TOPIC, None).await;
    let snapshot = late.next_json().await;
    let docs = snapshot["series"].as_array().unwrap();
    assert_eq!(docs.len(), 1, "{snapshot}");
    assert_eq!(docs[0]["doc"]["widgets"], json!([first]));

    // Only the server writes there, and another tenant hears nothing of it.
    let response = server
        .http()
        .post(server.url("/api/v1/publish/dashboards/edits"))
        .bearer_auth(server.key("acme"))
        .json(&json!({"changes": [{"op": "delete", "id": dashboard.to_string()}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let globex = As::user(&server, GLOBEX_ADMIN).await;
    let (theirs, _) = globex.create_dashboard(&[]).await;
    assert_eq!(next_outline(&mut other_tenant).await.0, theirs, "globex hears only of its own edits");
    server.stop().await;
}
