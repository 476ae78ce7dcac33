//! `POST /api/v1/publish/{topic}`: API keys, validation, limits, and delivery to the right tenant.

mod support;

use support::{GLOBEX_ADMIN, TestServer};

async fn post(server: &TestServer, topic: &str, key: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut request = server
        .http()
        .post(server.url(&format!("/api/v1/publish/{topic}")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// A publish written straight to the socket, so no client library rewrites the path.
async fn raw_post(server: &TestServer, topic_path: &str, key: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "POST /api/v1/publish/{topic_path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response)
}

#[tokio::test]
async fn a_publish_reaches_subscribers_of_its_tenant_only() {
    let server = TestServer::quiet().await;
    let acme = server.key("acme");
    let (status, body) = post(&server, "kpi/sales", Some(&acme), r#"{"values": {"orders": 12}}"#).await;
    assert_eq!((status, &body["offset"], &body["kind"]), (200, &serde_json::json!(1), &serde_json::json!("metrics")));

    let mut acme_client = server.connect().await;
    acme_client.subscribe("kpi", "kpi/sales", None).await;
    let snapshot = acme_client.next_json().await;
    assert_eq!(snapshot["series"], serde_json::json!([{"key": "orders", "value": 12.0}]));

    // For globex the name is free: the subscription waits for globex's own topic.
    let mut globex_client = server.connect_as(GLOBEX_ADMIN).await;
    globex_client.subscribe("kpi", "kpi/sales", None).await;

    let (status, body) = post(&server, "kpi/sales", Some(&acme), r#"{"values": {"orders": 13, "refunds": 1}}"#).await;
    assert_eq!((status, body["offset"].as_u64()), (200, Some(2)));
    let update = acme_client.next_json().await;
    assert_eq!(update["meta"]["offset"], 2);
    assert_eq!(update["series"].as_array().unwrap().len(), 2, "only the keys that changed");
    globex_client.send(&protocol::ClientMessage::Ping).await;
    assert_eq!(globex_client.next_json().await["type"], "pong", "acme's publishes never reached globex");
    server.stop().await;
}

#[tokio::test]
async fn keys_are_required_and_checked() {
    let server = TestServer::quiet().await;
    let body = r#"{"points": [{"value": 1}]}"#;
    assert_eq!(post(&server, "t", None, body).await.0, 401);
    assert_eq!(post(&server, "t", Some("not-a-key"), body).await.0, 401);
    let forged = format!("ld_{}_{}", &server.key("acme")[3..19], "0".repeat(32));
    assert_eq!(post(&server, "t", Some(&forged), body).await.0, 401, "right id, wrong secret");
    assert_eq!(post(&server, "t", Some(&server.key("acme")), body).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn bad_payloads_get_400_naming_the_field() {
    let server = TestServer::quiet().await;
    let key = server.key("acme");
    for (body, field) in [
        (r#"{"points": [{"value": "high"}]}"#, "points[0].value"),
        (r#"{"events": [{"type": "note", "title": ""}]}"#, "events[0].title"),
        (r#"{"changes": [{"op": "upsert", "id": "a"}]}"#, "changes[0].doc"),
        (r#"{"nonsense": 1}"#, "nonsense"),
        (r#"[1, 2]"#, "body"),
        (r#"{"points": ["#, "points"),
    ] {
        let (status, answer) = post(&server, "t", Some(&key), body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"], "invalid_payload");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_topics_oversize_bodies_and_kind_changes_are_refused() {
    let server =
        TestServer::start(server::config::Config { demo: false, max_publish_bytes: 1024, ..Default::default() }).await;
    let key = server.key("acme");
    let points = r#"{"points": [{"value": 1}]}"#;
    // HTTP clients normalise `..` away; a hostile one need not, so these go out byte for byte.
    for path in ["../globex/x", "%2E%2E/globex/x", "a%00b", "a//b", "x%2F..%2F..%2Fglobex"] {
        let (status, body) = raw_post(&server, path, &key, points).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("bad_topic"), "{path}: {body}");
    }

    let big = format!(r#"{{"points": [{}]}}"#, vec![r#"{"value": 1}"#; 200].join(","));
    let (status, body) = post(&server, "t", Some(&key), &big).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("payload_too_large")));

    assert_eq!(post(&server, "t", Some(&key), points).await.0, 200);
    let (status, body) = post(&server, "t", Some(&key), r#"{"values": {"a": 1}}"#).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("kind_mismatch")));
    server.stop().await;
}
