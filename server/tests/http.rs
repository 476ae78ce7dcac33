//! Plain HTTP: health check, the server-rendered dashboard and who may see it, and the demo feed end
//! to end.

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

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn get_page(server: &TestServer, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = no_redirects().get(server.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()["location"].to_str().unwrap()
}

#[tokio::test]
async fn the_dashboard_is_rendered_on_the_server() {
    let server = TestServer::quiet().await;
    let cookie = server.login("ops@acme.test").await;
    let response = get_page(&server, "/", Some(&cookie)).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<script src="/vendor/echarts.min.js"></script>"#), "{html}");
    assert!(html.contains(r#"data-status="connecting""#), "the pill starts as Connecting");
    assert!(html.contains("Loading dashboard"), "the browser loads the user's dashboard: {html}");
    assert!(html.contains("/pkg/livedash.js"), "hydration script");
    let response = get_page(&server, "/d/12", Some(&cookie)).await;
    assert_eq!(response.status(), 200, "a dashboard's own address renders the same page");
    server.stop().await;
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_before_anything_renders() {
    let server = TestServer::quiet().await;
    let response = get_page(&server, "/", None).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login");
    let response = get_page(&server, "/d/12?tab=2", None).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?next=%2Fd%2F12%3Ftab%3D2", "where they were going is kept");
    for forged in ["livedash_session=not-a-token", "livedash_session="] {
        let response = get_page(&server, "/", Some(forged)).await;
        assert_eq!(response.status(), 303, "{forged}");
    }
    let response = get_page(&server, "/login", None).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Sign in"));

    // A session that was logged out counts as none.
    let cookie = server.login("ops@acme.test").await;
    let logout = no_redirects()
        .post(server.url("/api/auth/logout"))
        .header("origin", server.origin())
        .header("content-type", "application/json")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(get_page(&server, "/", Some(&cookie)).await.status(), 303);
    server.stop().await;
}

#[tokio::test]
async fn signed_in_visitors_of_the_sign_in_page_go_on_to_where_they_were_going() {
    let server = TestServer::quiet().await;
    let cookie = server.login("viewer@acme.test").await;
    let response = get_page(&server, "/login", Some(&cookie)).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    let response = get_page(&server, "/login?next=%2Fd%2F7", Some(&cookie)).await;
    assert_eq!(location(&response), "/d/7");
    let response = get_page(&server, "/login?next=https%3A%2F%2Fevil.test%2F", Some(&cookie)).await;
    assert_eq!(location(&response), "/", "never to another site");
    server.stop().await;
}

#[tokio::test]
async fn the_session_status_is_always_200() {
    let server = TestServer::quiet().await;
    let anonymous = reqwest::get(server.url("/api/auth/session")).await.unwrap();
    assert_eq!(anonymous.status(), 200);
    assert_eq!(anonymous.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"session": null}));
    let cookie = server.login("viewer@acme.test").await;
    let response = no_redirects().get(server.url("/api/auth/session")).header("cookie", &cookie).send().await.unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["session"]["user"]["email"], "viewer@acme.test");
    assert!(body["session"]["expiresAt"].as_i64().unwrap() > 0);
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
    let server = TestServer::start(Config { demo: true, ..Config::default() }).await;
    let mut client = server.connect().await;
    client.subscribe("orders", DEMO_ORDERS_TOPIC, None).await;
    let snapshot = client.next_json().await;
    assert_eq!(snapshot["type"], "snapshot");
    let start = snapshot["meta"]["offset"].as_u64().unwrap();
    for n in 1..=2u64 {
        let update = client.next_json().await; // the feed ticks every second
        assert_eq!(update["meta"]["offset"], start + n);
        let value = update["series"][0]["value"].as_f64().unwrap();
        assert!((0.0..=200.0).contains(&value), "{value}");
    }
    server.stop().await;
}
