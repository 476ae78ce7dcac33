//! Plain HTTP: health check, the server-rendered dashboard, and the demo feed end to end.

mod support;

use app::pages::DEMO_ORDERS_TOPIC;
use server::config::Config;
use support::TestServer;

#[tokio::test]
async fn healthz_answers_ok() {
    let server = TestServer::quiet().await;
    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    server.stop().await;
}

#[tokio::test]
async fn the_dashboard_is_rendered_on_the_server() {
    let server = TestServer::quiet().await;
    let response = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<script src="/vendor/echarts.min.js"></script>"#), "{html}");
    assert!(html.contains(r#"data-status="connecting""#), "the pill starts as Connecting");
    assert!(html.contains("Loading dashboard"), "the browser loads the user's dashboard: {html}");
    assert!(html.contains("/pkg/livedash.js"), "hydration script");
    let response = reqwest::get(server.url("/d/12")).await.unwrap();
    assert_eq!(response.status(), 200, "a dashboard's own address renders the same page");
    server.stop().await;
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let server = TestServer::quiet().await;
    let response = reqwest::get(server.url("/no/such/page")).await.unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn the_demo_feed_publishes_a_point_per_second() {
    let server = TestServer::start(Config::default()).await;
    let mut client = server.connect().await;
    client.subscribe("orders", DEMO_ORDERS_TOPIC, None).await;
    let snapshot = client.next_json().await;
    assert_eq!(snapshot["type"], "snapshot");
    let start = snapshot["meta"]["offset"].as_u64().unwrap();
    for n in 1..=2u64 {
        let update = client.next_json().await; // the feed ticks every second; the wait is 5 s
        assert_eq!(update["meta"]["offset"], start + n);
        let value = update["series"][0]["value"].as_f64().unwrap();
        assert!((0.0..=200.0).contains(&value), "{value}");
    }
    server.stop().await;
}
