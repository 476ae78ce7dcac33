//! The web-security layer, attacked from outside over real HTTP and WebSockets, as issue 26 found
//! it open: cross-site writes and sign-ins, a sign-in throttle side-stepped by spelling and by
//! address, made-up API keys, an audit that dropped rows, and a session's end that waited for a
//! blocked write. Each attack is refused, with the API's error body, and everyone else is served.

mod support;

use server::config::Config;
use std::time::{Duration, Instant};
use support::{ACME_ADMIN, GLOBEX_ADMIN, TestServer};

fn quiet(config: Config) -> Config {
    Config { demo: false, ..config }
}

const EVIL: &str = "http://evil.test";

/// A raw request with the admin's cookie and exactly these headers (no defaults).
async fn raw(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method, server.url(path)).body(body.to_owned());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn no_state_changes_from_another_site() {
    let server = TestServer::start(quiet(Config::default())).await;
    let admin = server.login(ACME_ADMIN).await;
    let own = server.origin();
    let dashboards_before = support::As::user(&server, ACME_ADMIN).await.dashboards().await.len();
    let create = r#"{"title":"planted"}"#;
    use reqwest::Method;
    // What a form or a fetch on another page (or a sibling subdomain) can send with the cookie.
    let attacks: [(&str, Vec<(&str, &str)>); 5] = [
        ("foreign Origin, text/plain", vec![("origin", EVIL), ("content-type", "text/plain")]),
        ("foreign Origin, JSON", vec![("origin", EVIL), ("content-type", "application/json")]),
        ("same-site, no Origin", vec![("sec-fetch-site", "same-site"), ("content-type", "application/json")]),
        ("cross-site, no Origin", vec![("sec-fetch-site", "cross-site"), ("content-type", "text/plain")]),
        ("neither header", vec![("content-type", "application/json")]),
    ];
    for (what, headers) in &attacks {
        let answer = raw(&server, Method::POST, "/api/dashboards", Some(&admin), headers, create).await;
        assert_eq!(error_of(answer).await, (403, "forbidden".to_owned()), "{what}");
    }
    let form = raw(
        &server,
        Method::POST,
        "/api/dashboards",
        Some(&admin),
        &[("origin", &own), ("content-type", "text/plain")],
        create,
    )
    .await;
    assert_eq!(error_of(form).await, (415, "unsupported_media_type".to_owned()), "not JSON, even from our origin");
    let after = support::As::user(&server, ACME_ADMIN).await.dashboards().await.len();
    assert_eq!(after, dashboards_before, "nothing was created");

    // Every state change, sign-out included, is held to the same rule.
    for (method, path) in [
        (Method::PUT, "/api/me/preferences"),
        (Method::PUT, "/api/admin/live-dashboards"),
        (Method::PUT, "/api/admin/live-mode"),
        (Method::DELETE, "/api/dashboards/1/widgets/1"),
        (Method::PUT, "/api/me/widget-modes/1"),
        (Method::POST, "/api/auth/logout"),
    ] {
        let answer = raw(&server, method.clone(), path, Some(&admin), &[("origin", EVIL)], "{}").await;
        assert_eq!(answer.status(), 403, "{method} {path}");
    }
    assert_eq!(
        support::As::user(&server, ACME_ADMIN).await.get("/api/auth/me").await.0,
        200,
        "the session still stands"
    );
    assert!(support::metric(&server, "livedash_denials_total{reason=\"cross_site_request\"}").await >= 10.0);
    assert!(support::metric(&server, "livedash_denials_total{reason=\"not_json\"}").await >= 1.0);
    // Audited, under the source.
    support::eventually_async("the refusals are audited", || async {
        let rows = server.store.audit_by_actor("127.0.0.1").await.unwrap();
        rows.iter().any(|r| r.action == "cross_site_request" && r.outcome == "denied")
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn no_sign_in_from_another_site() {
    let server = TestServer::start(quiet(Config::default())).await;
    let body = r#"{"email":"ops@acme.test","password":"livedash-demo"}"#;
    // An HTML form with enctype=text/plain on the attacker's page, submitted in the victim's browser.
    let forged = raw(
        &server,
        reqwest::Method::POST,
        "/api/auth/login",
        None,
        &[("origin", EVIL), ("sec-fetch-site", "cross-site"), ("content-type", "text/plain")],
        body,
    )
    .await;
    assert!(forged.headers().get("set-cookie").is_none(), "no session was handed out");
    assert_eq!(error_of(forged).await, (403, "forbidden".to_owned()));
    let ours = raw(
        &server,
        reqwest::Method::POST,
        "/api/auth/login",
        None,
        &[("sec-fetch-site", "same-origin"), ("content-type", "application/json")],
        body,
    )
    .await;
    assert_eq!(ours.status(), 200, "our own page, whose browser left Origin out");
    server.stop().await;
}

/// A sign-in attempt as seen from `address` (behind the trusted loopback proxy).
async fn sign_in_from(server: &TestServer, address: &str, email: &str, password: &str) -> reqwest::Response {
    server
        .http()
        .post(server.url("/api/auth/login"))
        .header("x-forwarded-for", address)
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

fn behind_proxy() -> Config {
    quiet(Config { trusted_proxies: vec!["127.0.0.0/8".into()], logins_per_min_per_address: 1000, ..Config::default() })
}

#[tokio::test]
async fn the_sign_in_throttle_is_not_side_stepped_by_spelling_or_by_address() {
    let server = TestServer::start(behind_proxy()).await;
    let attacker = "198.51.100.7";
    for _ in 0..10 {
        assert_eq!(sign_in_from(&server, attacker, "ops@globex.test", "guess").await.status(), 401);
    }
    for spelling in
        ["ops@globex.test", " ops@globex.test", "ops@globex.test\t", "OPS@globex.test", "\u{a0}ops@globex.test"]
    {
        let (status, _) = error_of(sign_in_from(&server, attacker, spelling, "guess").await).await;
        assert_eq!(status, 429, "{spelling:?}");
    }
    let right = sign_in_from(&server, attacker, " ops@globex.test", "livedash-demo").await;
    assert_eq!(right.status(), 429, "the right password does not slip through a spelling either");

    // A /64 is one address.
    for host in 1..=10 {
        let from = format!("2001:db8:7:7::{host:x}");
        assert_eq!(sign_in_from(&server, &from, GLOBEX_ADMIN, "guess").await.status(), 401);
    }
    let next = sign_in_from(&server, "2001:db8:7:7:ffff::1", GLOBEX_ADMIN, "guess").await;
    assert_eq!(next.status(), 429, "another address of the same /64");
    server.stop().await;
}

#[tokio::test]
async fn many_addresses_get_a_trickle_and_the_owner_still_signs_in() {
    let server = TestServer::start(behind_proxy()).await;
    let home = "192.0.2.10";
    assert_eq!(sign_in_from(&server, home, GLOBEX_ADMIN, "livedash-demo").await.status(), 200);
    // 100 addresses, a few guesses each: the account-wide bound (30 an hour) stops them.
    let mut admitted = 0;
    for n in 0..100 {
        for _ in 0..3 {
            let status = sign_in_from(&server, &format!("203.0.113.{n}"), GLOBEX_ADMIN, "guess").await.status();
            if status == 401 {
                admitted += 1;
            } else {
                assert_eq!(status, 429);
            }
        }
    }
    println!("100 addresses × 3 guesses at one account: {admitted} were checked, the rest refused");
    assert!(admitted <= 31, "{admitted} guesses checked");
    let (status, limit) = {
        let answer = sign_in_from(&server, "203.0.113.250", GLOBEX_ADMIN, "livedash-demo").await;
        let status = answer.status().as_u16();
        let body: serde_json::Value = answer.json().await.unwrap();
        (status, body["limit"]["name"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!((status, limit.as_str()), (429, "login_failures_per_account"), "a stranger waits");
    assert_eq!(sign_in_from(&server, home, GLOBEX_ADMIN, "livedash-demo").await.status(), 200, "the owner does not");
    server.stop().await;
}

#[tokio::test]
async fn made_up_api_keys_are_throttled_per_source_before_any_lookup_and_digested() {
    let config =
        quiet(Config { api_key_failures_per_min_per_address: 10, audit_denials_per_min: 3, ..Config::default() });
    let server = TestServer::start(config).await;
    let mut statuses = Vec::new();
    for n in 0..200 {
        let key = format!("ld_{n:016x}_{}", "0".repeat(32));
        let answer = server
            .http()
            .post(server.url("/api/v1/publish/sales/orders"))
            .bearer_auth(key)
            .body(r#"{"points":[{"value":1}]}"#)
            .send()
            .await
            .unwrap();
        if answer.status() == 429 {
            assert!(answer.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
        }
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 10, "checked: the source's allowance");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 190, "refused before any lookup");
    let store = server.store.clone();
    server.stop().await;
    // The audit holds a few lines and one summary for the source, not a line per made-up key.
    let rows: Vec<_> =
        store.audit_by_actor("127.0.0.1").await.unwrap().into_iter().filter(|r| r.action == "publish").collect();
    assert_eq!(rows.len(), 4, "three lines and the summary: {rows:?}");
    assert_eq!(rows[0].detail.as_deref(), Some("197 more denials in 60 s not recorded one by one"));
}

#[tokio::test]
async fn forty_thousand_subscriptions_drop_no_audit_row() {
    let config = quiet(Config { client_messages_per_sec: 100_000, ..Config::default() });
    let server = TestServer::start(config).await;
    let store = server.store.clone();
    let mut client = server.connect().await;
    let started = Instant::now();
    for i in 0..20_000 {
        client.subscribe(&format!("w{i}"), "sales/orders", None).await;
        client.send(&protocol::ClientMessage::Unsubscribe { widget_id: format!("w{i}") }).await;
    }
    client.close().await;
    let rows = support::eventually_async("the connection's summary is written", || async {
        let rows = store.audit_by_actor(ACME_ADMIN).await.unwrap();
        rows.iter().any(|r| r.action == "subscriptions")
    });
    rows.await;
    let rows = store.audit_by_actor(ACME_ADMIN).await.unwrap();
    let summary = rows.iter().find(|r| r.action == "subscriptions").unwrap();
    assert!(
        summary.detail.as_deref().unwrap().contains("20000 subscribed, 0 refused, 20000 unsubscribed"),
        "{summary:?}"
    );
    let dropped = support::metric(&server, "livedash_drops_total{reason=\"audit_queue_full\"}").await;
    println!(
        "40,000 subscribe and unsubscribe messages in {:.1} s: {} audit rows for the user, {dropped} dropped",
        started.elapsed().as_secs_f64(),
        rows.len()
    );
    assert_eq!(dropped, 0.0);
    assert!(rows.len() <= 3, "a login, a connect and one summary: {rows:?}");
    server.stop().await;
}

/// A socket that reads nothing while its server writes: subscribes, then never looks again.
async fn stalled_socket(server: &TestServer, cookie: &str, topic: &str) -> support::Client {
    let mut client = server.open_ws(Some(cookie), Some(&server.origin())).await.unwrap();
    assert_eq!(client.next_json().await["type"], "welcome");
    client.subscribe("w", topic, None).await;
    client
}

/// The flood tests one at a time: they read process-wide counters (the metrics recorder is global),
/// so one test's drops or hang-ups must not pass for another's.
static FLOODS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Publishes big updates to `topic` until the server has had to drop some for a subscriber that
/// does not read: its writes are then blocked. The caller holds [`FLOODS`].
async fn flood_until_blocked(server: &TestServer, topic: &str) {
    let drops = "livedash_drops_total{reason=\"slow_subscriber\"}";
    let before = support::metric(server, drops).await;
    let key = support::acme(topic);
    let deadline = Instant::now() + support::WAIT;
    let mut n = 0i64;
    while support::metric(server, drops).await <= before {
        assert!(Instant::now() < deadline, "the reader never fell behind");
        for _ in 0..200 {
            // Updates of 200 points (a few KB each) fill the socket's buffers quickly.
            let points = (0..200).map(|i| {
                n += 1;
                protocol::Item::Point(protocol::Point { ts: n, value: f64::from(i) })
            });
            let _ = server.broker.publish(&key, protocol::TopicKind::Series, points.collect());
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_logout_closes_a_connection_whose_writes_are_blocked_at_once() {
    let _alone = FLOODS.lock().await;
    // Without the hang-up, the blocked write would hold the socket for the whole write timeout.
    let config = quiet(Config { write_timeout: Duration::from_secs(120), ..Config::default() });
    let server = TestServer::start(config).await;
    let cookie = server.login(ACME_ADMIN).await;
    let _stalled = stalled_socket(&server, &cookie, "flood/ws").await;
    flood_until_blocked(&server, "flood/ws").await;
    let hangups = "livedash_hangups_total{transport=\"websocket\"}";
    let before = support::metric(&server, hangups).await;
    assert_eq!(server.sockets.open().0, 1);
    let logout = server.http().post(server.url("/api/auth/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(logout.status(), 204);
    let logged_out = Instant::now();
    support::eventually("the blocked connection is gone", || server.sockets.open().0 == 0).await;
    let took = logged_out.elapsed();
    println!("a WebSocket blocked in a write closed {} ms after its session's logout", took.as_millis());
    assert!(took < Duration::from_secs(10), "{took:?}: far below the 120 s write timeout");
    assert!(support::metric(&server, hangups).await > before, "it was hung up on mid-write");
    server.stop().await;
}

#[tokio::test]
async fn a_logout_ends_an_event_stream_whose_reader_stopped_at_once() {
    let _alone = FLOODS.lock().await;
    let config = quiet(Config { write_timeout: Duration::from_secs(120), ..Config::default() });
    let server = TestServer::start(config).await;
    let admin = support::As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("line_chart", "flood/sse")]).await;
    let stalled = admin.open(&format!("/api/stream/dashboard/{dashboard}"), &[("origin", &server.origin())]).await;
    assert_eq!(stalled.status(), 200);
    flood_until_blocked(&server, "flood/sse").await;
    let hangups = "livedash_hangups_total{transport=\"sse\"}";
    let before = support::metric(&server, hangups).await;
    let logout = admin.call(reqwest::Method::POST, "/api/auth/logout", None).await;
    assert_eq!(logout.0, 204);
    let logged_out = Instant::now();
    support::eventually("the stalled stream is gone", || server.sockets.open().0 == 0).await;
    let took = logged_out.elapsed();
    println!("an event stream whose reader stopped closed {} ms after its session's logout", took.as_millis());
    assert!(took < Duration::from_secs(10), "{took:?}: far below the 120 s write timeout");
    // Its HTTP connection, whose response could not finish, was hung up on (not left to TCP).
    assert!(support::metric(&server, hangups).await > before);
    drop(stalled);
    server.stop().await;
}

#[tokio::test]
async fn a_session_that_expires_closes_a_connection_whose_writes_are_blocked() {
    let _alone = FLOODS.lock().await;
    let ttl = Duration::from_secs(5);
    let config = quiet(Config { write_timeout: Duration::from_secs(120), session_ttl: ttl, ..Config::default() });
    let server = TestServer::start(config).await;
    let cookie = server.login(ACME_ADMIN).await;
    let signed_in = Instant::now();
    let _stalled = stalled_socket(&server, &cookie, "flood/expiry").await;
    flood_until_blocked(&server, "flood/expiry").await;
    support::eventually("the blocked connection is gone", || server.sockets.open().0 == 0).await;
    let after = signed_in.elapsed();
    println!(
        "a WebSocket blocked in a write closed {:.1} s after sign-in, its session lasting {} s",
        after.as_secs_f64(),
        ttl.as_secs()
    );
    assert!(after < ttl + Duration::from_secs(10), "{after:?}: not held by the 120 s write timeout");
    server.stop().await;
}
