//! `Idempotency-Key` on `POST /api/v1/publish/{topic}`: a repeat within the window answers what the
//! first answered and publishes nothing; another body under the key is 422; a failed request gives
//! its key back; keys are per tenant, bounded, and expire. Two nodes over Redis are in
//! `scale_out.rs`.

mod support;

use server::config::Config;
use std::time::{Duration, Instant};
use support::{TestServer, metric};

/// What a publish answered: status, body, and whether it was a replay.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: serde_json::Value,
    replayed: bool,
}

async fn post(server: &TestServer, tenant: &str, topic: &str, key: Option<&str>, body: &str) -> Answer {
    let mut request = server
        .http()
        .post(server.url(&format!("/api/v1/publish/{topic}")))
        .header("authorization", format!("Bearer {}", server.key(tenant)))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let status = response.status().as_u16();
    Answer { status, body: response.json().await.unwrap(), replayed }
}

const POINT: &str = r#"{"points": [{"ts": 1, "value": 1}]}"#;
const OTHER_POINT: &str = r#"{"points": [{"ts": 2, "value": 2}]}"#;

async fn quiet(config: Config) -> TestServer {
    TestServer::start(Config { demo: false, ..config }).await
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_and_publishes_nothing() {
    let server = quiet(Config::default()).await;
    let replays = metric(&server, "livedash_publish_replays_total").await;
    let first = post(&server, "acme", "sales/orders", Some("order-1"), POINT).await;
    assert_eq!((first.status, first.replayed), (200, false));
    assert_eq!(first.body, serde_json::json!({"topic": "sales/orders", "kind": "series", "offset": 1}));
    for _ in 0..3 {
        let again = post(&server, "acme", "sales/orders", Some("order-1"), POINT).await;
        assert_eq!((again.status, again.replayed, &again.body), (200, true, &first.body));
    }
    // Nothing was published by the repeats: the next point is the second.
    let next = post(&server, "acme", "sales/orders", None, OTHER_POINT).await;
    assert_eq!(next.body["offset"], 2);
    // A quoted key (the draft's structured-field string) is the same key.
    let quoted = post(&server, "acme", "sales/orders", Some("\"order-1\""), POINT).await;
    assert_eq!((quoted.replayed, quoted.body["offset"].as_u64()), (true, Some(1)));
    assert_eq!(metric(&server, "livedash_publish_replays_total").await - replays, 4.0);
    server.stop().await;
}

#[tokio::test]
async fn a_key_reused_for_another_body_or_topic_is_422_and_publishes_nothing() {
    let server = quiet(Config::default()).await;
    assert_eq!(post(&server, "acme", "sales/orders", Some("k"), POINT).await.status, 200);
    for (topic, body) in [("sales/orders", OTHER_POINT), ("sales/returns", POINT)] {
        let reused = post(&server, "acme", topic, Some("k"), body).await;
        assert_eq!(reused.status, 422, "{topic} {body}");
        assert_eq!(reused.body["error"], "idempotency_key_reused");
        assert_eq!(reused.body["field"], "Idempotency-Key");
    }
    let next = post(&server, "acme", "sales/orders", None, OTHER_POINT).await;
    assert_eq!(next.body["offset"], 2, "the refused repeat published nothing");
    let returns = post(&server, "acme", "sales/returns", None, POINT).await;
    assert_eq!(returns.body["offset"], 1, "nor made the other topic");
    server.stop().await;
}

#[tokio::test]
async fn a_request_that_failed_gives_its_key_back() {
    let server = quiet(Config::default()).await;
    assert_eq!(post(&server, "acme", "kpi/x", None, r#"{"values": {"a": 1}}"#).await.status, 200);
    // A series body to a metrics topic: refused, so nothing is kept under the key.
    let refused = post(&server, "acme", "kpi/x", Some("k"), POINT).await;
    assert_eq!((refused.status, refused.body["error"].as_str()), (409, Some("kind_mismatch")));
    let fixed = post(&server, "acme", "kpi/x", Some("k"), r#"{"values": {"a": 2}}"#).await;
    assert_eq!((fixed.status, fixed.replayed, fixed.body["offset"].as_u64()), (200, false, Some(2)));
    server.stop().await;
}

#[tokio::test]
async fn keys_are_per_tenant() {
    let server = quiet(Config::default()).await;
    let acme = post(&server, "acme", "t", Some("shared-name"), POINT).await;
    let globex = post(&server, "globex", "t", Some("shared-name"), OTHER_POINT).await;
    assert_eq!((acme.status, acme.replayed), (200, false));
    assert_eq!((globex.status, globex.replayed), (200, false), "another tenant's key of the same name is its own");
    server.stop().await;
}

#[tokio::test]
async fn malformed_keys_are_400_naming_the_header() {
    let server = quiet(Config::default()).await;
    let long = "k".repeat(256);
    for key in ["a b", long.as_str(), "\"\""] {
        let answer = post(&server, "acme", "t", Some(key), POINT).await;
        assert_eq!((answer.status, answer.body["field"].as_str()), (400, Some("Idempotency-Key")), "{key}");
    }
    assert_eq!(post(&server, "acme", "t", None, POINT).await.body["offset"], 1, "nothing was published");
    server.stop().await;
}

#[tokio::test]
async fn a_tenant_holds_a_bounded_number_of_keys() {
    let server = quiet(Config { max_idempotency_keys: 2, ..Config::default() }).await;
    for key in ["k1", "k2"] {
        assert_eq!(post(&server, "acme", "t", Some(key), POINT).await.status, 200);
    }
    let full = post(&server, "acme", "t", Some("k3"), POINT).await;
    assert_eq!(full.status, 429);
    assert_eq!(full.body["limit"], serde_json::json!({"name": "idempotency_keys", "max": 2}));
    // Keys held are still answered, publishes without a key still go through, and another tenant
    // has its own room.
    assert!(post(&server, "acme", "t", Some("k1"), POINT).await.replayed);
    assert_eq!(post(&server, "acme", "t", None, POINT).await.status, 200);
    assert_eq!(post(&server, "globex", "t", Some("k3"), POINT).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_key_is_forgotten_after_the_window() {
    let window = Duration::from_secs(1);
    let server = quiet(Config { idempotency_window: window, ..Config::default() }).await;
    let started = Instant::now();
    let first = post(&server, "acme", "t", Some("k"), POINT).await;
    assert_eq!(first.body["offset"], 1);
    // Repeats are answered from the first until the window ends; then the same request publishes.
    let deadline = started + Duration::from_secs(60);
    let fresh = loop {
        let again = post(&server, "acme", "t", Some("k"), POINT).await;
        if !again.replayed {
            break again;
        }
        assert_eq!(again.body, first.body);
        assert!(Instant::now() < deadline, "the key was still held a minute later");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(started.elapsed() >= window, "forgotten after {:?}", started.elapsed());
    assert_eq!((fresh.status, fresh.body["offset"].as_u64()), (200, Some(2)));
    server.stop().await;
}
