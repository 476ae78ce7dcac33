//! Wall displays over the real HTTP API and WebSocket: an admin makes one and gets its link once;
//! the screen trades the link's secret for a display session that reads its own dashboards and
//! nothing else, changes nothing on any route or over its socket, and is closed on revocation.

mod support;

use protocol::{ControlMessage, ErrorCode, ServerMessage};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ACME_ADMIN, ACME_VIEWER, As, TestServer, metric};

/// A display of `dashboards` made by acme's admin: its id, and its link's secret.
async fn make_display(admin: &As, name: &str, dashboards: &[i64]) -> (i64, String) {
    let (status, made) =
        admin.call(Method::POST, "/api/admin/displays", Some(json!({"name": name, "dashboards": dashboards}))).await;
    assert_eq!(status, 201, "{made}");
    let id = made["display"]["id"].as_i64().unwrap();
    let link = made["link"].as_str().unwrap();
    let (path, secret) = link.split_once('#').unwrap();
    assert_eq!(path, format!("/display/{id}"));
    (id, secret.to_owned())
}

/// What a screen does with its link: the display session's cookie, or the refusal's status.
async fn claim(server: &TestServer, display: i64, secret: &str) -> Result<As, (u16, Value)> {
    let response = server
        .http()
        .post(server.url("/api/display/session"))
        .header("origin", server.origin())
        .header("content-type", "application/json")
        .body(json!({"display": display, "secret": secret}).to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return Err((status, response.json().await.unwrap_or(Value::Null)));
    }
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    Ok(As { http: reqwest::Client::new(), cookie, base: server.url("") })
}

#[tokio::test]
async fn an_admin_makes_lists_edits_and_revokes_displays_and_the_secret_is_shown_once() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (floor, _) = admin.create_dashboard(&[("kpi_tiles", "ops/kpi")]).await;
    let (id, secret) = make_display(&admin, "Ops wall", &[floor]).await;
    let (status, listed) = admin.get("/api/admin/displays").await;
    assert_eq!(status, 200);
    let shown = &listed.as_array().unwrap()[0];
    assert_eq!(
        (shown["name"].as_str(), shown["rotateSecs"].as_i64(), shown["theme"].as_str()),
        (Some("Ops wall"), Some(30), Some("dark"))
    );
    assert!(!listed.to_string().contains(&secret), "the secret is never listed");

    // Checked field by field; another tenant's dashboard is not one of this tenant's.
    let bad = admin.call(Method::POST, "/api/admin/displays", Some(json!({"name": "", "dashboards": [floor]}))).await;
    assert_eq!((bad.0, bad.1["field"].as_str()), (400, Some("name")));
    let bad =
        admin.call(Method::POST, "/api/admin/displays", Some(json!({"name": "X", "dashboards": [999_999]}))).await;
    assert_eq!((bad.0, bad.1["field"].as_str()), (400, Some("dashboards")));
    let viewer = As::user(&server, ACME_VIEWER).await;
    assert_eq!(viewer.get("/api/admin/displays").await.0, 403, "admins only");

    let path = format!("/api/admin/displays/{id}");
    let (status, renamed) = admin.call(Method::PATCH, &path, Some(json!({"name": "Lobby", "theme": "light"}))).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!((renamed["name"].as_str(), renamed["theme"].as_str()), (Some("Lobby"), Some("light")));

    // A screen opens it: it is seen, from where.
    let screen = claim(&server, id, &secret).await.expect("the link opens");
    let (status, me) = screen.get("/api/display/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!((me["name"].as_str(), me["dashboards"].clone()), (Some("Lobby"), json!([floor])));
    let (_, listed) = admin.get("/api/admin/displays").await;
    assert_eq!(listed[0]["lastSeenAddr"], "127.0.0.1");
    assert!(listed[0]["lastSeenAt"].as_i64().is_some());

    assert_eq!(admin.call(Method::DELETE, &path, None).await.0, 204);
    let (_, listed) = admin.get("/api/admin/displays").await;
    assert!(listed[0]["revokedAt"].as_i64().is_some(), "kept, for the record");
    assert_eq!(screen.get("/api/display/me").await.0, 401, "the session ended");
    assert_eq!(claim(&server, id, &secret).await.err().map(|e| e.0), Some(401), "the link is dead");
    // The audit is written in batches, soon after: each change is in it once it is.
    support::eventually_async("every display change is audited", || async {
        let (_, audit) = admin.get("/api/admin/audit").await;
        let audit = audit.to_string();
        ["display_create", "display_edit", "display_open", "display_revoke"].iter().all(|action| audit.contains(action))
    })
    .await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused_counted_and_limited() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (floor, _) = admin.create_dashboard(&[("kpi_tiles", "ops/kpi")]).await;
    let (id, secret) = make_display(&admin, "Ops wall", &[floor]).await;
    let wrong = format!("{:032x}", 7u128);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(claim(&server, id, &wrong).await.err().unwrap().0);
    }
    assert_eq!(&statuses[..10], [401; 10]);
    assert_eq!(statuses[11], 429, "wrong secrets from one source are limited: {statuses:?}");
    assert!(metric(&server, "livedash_denials_total{reason=\"display_secret\"}").await >= 10.0);
    // The limit is on the guessing source: the right secret from it waits too, then works.
    assert_eq!(claim(&server, id, &secret).await.err().map(|e| e.0), Some(429));
    assert_eq!(claim(&server, 999_999, &secret).await.err().map(|e| e.0), Some(429));
}

#[tokio::test]
async fn a_display_session_reads_its_own_dashboards_only_and_changes_nothing() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (floor, floor_widgets) = admin.create_dashboard(&[("kpi_tiles", "ops/kpi")]).await;
    let (sales, _) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let (id, secret) = make_display(&admin, "Ops wall", &[floor]).await;
    let screen = claim(&server, id, &secret).await.unwrap();

    // Reads: its dashboard, not the other.
    let (status, list) = screen.get("/api/dashboards").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect::<Vec<_>>(), [floor]);
    assert_eq!(screen.get(&format!("/api/dashboards/{floor}")).await.0, 200);
    assert_eq!(screen.get(&format!("/api/dashboards/{sales}")).await.0, 404);
    assert_eq!(screen.get(&format!("/api/v1/dashboards/{sales}/updates")).await.0, 404);
    assert_eq!(screen.get(&format!("/api/v1/dashboards/{floor}/updates")).await.0, 200);
    assert_eq!(screen.get(&format!("/api/stream/dashboard/{sales}")).await.0, 404, "nor over SSE");
    let widget = floor_widgets[0].trim_start_matches('w');
    assert_eq!(screen.get(&format!("/api/dashboards/{floor}/widgets/{widget}/alerts")).await.0, 200);

    // Writes: every route that changes something, whatever it is, says the same.
    let writes: [(Method, String, Value); 14] = [
        (Method::POST, "/api/dashboards".into(), json!({"title": "Mine"})),
        (
            Method::POST,
            format!("/api/dashboards/{floor}/widgets"),
            json!({"title": "x", "kind": "kpi_tiles", "topic": "a/b"}),
        ),
        (Method::DELETE, format!("/api/dashboards/{floor}/widgets/{widget}"), Value::Null),
        (Method::PUT, format!("/api/dashboards/{floor}/widgets/{widget}/notify"), Value::Null),
        (Method::PUT, format!("/api/dashboards/{floor}/widgets/{widget}/thresholds"), json!([])),
        (Method::PUT, format!("/api/dashboards/{floor}/order"), json!({"widgetIds": [1]})),
        (Method::PUT, format!("/api/me/widget-modes/{widget}"), json!({"mode": "live"})),
        (Method::PUT, "/api/me/preferences".into(), json!({})),
        (Method::POST, "/api/me/recovery".into(), json!({"downtimeMs": 10})),
        (Method::POST, "/api/auth/logout".into(), Value::Null),
        (Method::PUT, "/api/admin/live-mode".into(), json!({"mode": "off"})),
        (Method::PUT, "/api/admin/topic-rules".into(), json!({"rules": []})),
        (Method::POST, "/api/admin/displays".into(), json!({"name": "Mine", "dashboards": [floor]})),
        (Method::DELETE, format!("/api/admin/displays/{id}"), Value::Null),
    ];
    for (method, path, body) in writes {
        let (status, answer) = screen.call(method.clone(), &path, (!body.is_null()).then_some(body)).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["message"], "a display can only read", "{method} {path}");
    }
    // Admin reads are an admin's.
    assert_eq!(screen.get("/api/admin/audit").await.0, 403);
    assert_eq!(screen.get("/api/admin/displays").await.0, 403);
    // Nothing was changed: the display still stands, and the dashboards are as they were.
    assert_eq!(screen.get("/api/display/me").await.0, 200);
    assert_eq!(admin.dashboards().await.len(), 2 + 1, "the demo's, and the two made here");
    assert!(metric(&server, "livedash_denials_total{reason=\"display_read_only\"}").await >= 12.0);
    // A person's session is no display.
    assert_eq!(admin.get("/api/display/me").await.0, 403);
}

#[tokio::test]
async fn over_its_socket_a_display_follows_its_dashboards_topics_reports_nothing_and_is_closed_on_revocation() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let centre = protocol::topics::NOTIFICATIONS_TOPIC;
    let (floor, _) = admin.create_dashboard(&[("kpi_tiles", "ops/kpi"), ("notification_feed", centre)]).await;
    let (id, secret) = make_display(&admin, "Ops wall", &[floor]).await;
    let screen = claim(&server, id, &secret).await.unwrap();
    let mut socket = server.open_ws(Some(&screen.cookie), Some(&server.origin())).await.unwrap();
    assert_eq!(socket.next_json().await["type"], "welcome");

    let published = server
        .http()
        .post(server.url("/api/v1/publish/ops/kpi"))
        .bearer_auth(server.key("acme"))
        .header("content-type", "application/json")
        .body(json!({"values": {"orders": 40}}).to_string())
        .send()
        .await
        .unwrap();
    assert!(published.status().is_success());
    socket.subscribe("w1", "ops/kpi", None).await;
    assert!(matches!(socket.next_message().await, ServerMessage::Control(ControlMessage::Snapshot { .. })));
    socket.subscribe("money", "finance/q3", None).await;
    let ServerMessage::Control(ControlMessage::Error { code, message, widget_id: widget }) =
        socket.next_message().await
    else {
        panic!("finance/q3 refused")
    };
    assert_eq!((code, widget.as_deref()), (ErrorCode::Forbidden, Some("money")));
    assert_eq!(message, "a display may not read topic finance/q3");
    // Nor the notification centre, even shown by a widget of its dashboard: what is told there is
    // for people (the topic rules that keep topics from them keep them from the centre too).
    socket.subscribe("centre", centre, None).await;
    let ServerMessage::Control(ControlMessage::Error { code, .. }) = socket.next_message().await else {
        panic!("the centre refused")
    };
    assert_eq!(code, ErrorCode::Forbidden);

    socket.send_text(r#"{"type":"activity","action":"open_dashboard","detail":"Floor"}"#).await;
    let answer = socket.next_json().await;
    assert_eq!(
        (answer["code"].as_str(), answer["message"].as_str()),
        (Some("forbidden"), Some("a display can only read"))
    );

    // Revoked while live: closed at once with the session's end, and the reason says why.
    assert_eq!(admin.call(Method::DELETE, &format!("/api/admin/displays/{id}"), None).await.0, 204);
    assert_eq!(socket.close_code().await, protocol::close::SESSION_ENDED);
    let again = server.open_ws(Some(&screen.cookie), Some(&server.origin())).await;
    match again {
        Ok(mut refused) => assert_eq!(refused.close_code().await, protocol::close::SESSION_ENDED),
        Err(e) => panic!("the upgrade itself should be answered with a close, not {e}"),
    }
}

#[tokio::test]
async fn the_topic_rules_apply_to_displays_as_a_role_of_their_own() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (floor, _) = admin.create_dashboard(&[("kpi_tiles", "ops/kpi"), ("kpi_tiles", "ops/costs")]).await;
    let rules = json!({"rules": [
        {"topics": "ops/costs", "read": ["viewer", "admin"]},
        {"topics": "ops/kpi", "read": ["viewer", "admin", "display"], "fields": [{"field": "margin", "roles": ["admin"]}]},
    ]});
    let (status, body) = admin.call(Method::PUT, "/api/admin/topic-rules", Some(rules)).await;
    assert_eq!(status, 200, "{body}");
    let (id, secret) = make_display(&admin, "Ops wall", &[floor]).await;
    let screen = claim(&server, id, &secret).await.unwrap();
    let mut socket = server.open_ws(Some(&screen.cookie), Some(&server.origin())).await.unwrap();
    assert_eq!(socket.next_json().await["type"], "welcome");
    socket.subscribe("costs", "ops/costs", None).await;
    let ServerMessage::Control(ControlMessage::Error { code, message, .. }) = socket.next_message().await else {
        panic!("refused")
    };
    assert_eq!((code, message.as_str()), (ErrorCode::Forbidden, "a display may not read topic ops/costs"));
    let publish = |values: Value| {
        server
            .http()
            .post(server.url("/api/v1/publish/ops/kpi"))
            .bearer_auth(server.key("acme"))
            .header("content-type", "application/json")
            .body(json!({ "values": values }).to_string())
            .send()
    };
    assert!(publish(json!({"orders": 40, "margin": 0.3})).await.unwrap().status().is_success());
    socket.subscribe("kpi", "ops/kpi", None).await;
    let ServerMessage::Control(ControlMessage::Snapshot { series, .. }) = socket.next_message().await else {
        panic!("a snapshot")
    };
    let keys: Vec<String> = series
        .iter()
        .filter_map(|item| match item {
            protocol::Item::Metric(metric) => Some(metric.key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, ["orders"], "the margin is hidden from displays");
}
