//! Abuse, over real HTTP and WebSockets: sign-in floods, forged API keys, forged `X-Forwarded-For`,
//! slow and stalled clients, connection floods, and who may read `/metrics`. Each is contained by a
//! limit, with a clear answer, while the server keeps serving everyone else.

mod support;

use server::{config::Config, credentials::api_key::ApiKey, transport::admission};
use std::time::Duration;
use support::{ACME_ADMIN, ACME_VIEWER, TestServer, WAIT};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

fn quiet(config: Config) -> Config {
    Config { demo: false, ..config }
}

async fn sign_in(server: &TestServer, email: &str, password: &str, forwarded: Option<&str>) -> reqwest::Response {
    let mut request = server
        .http()
        .post(server.url("/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn sign_ins_are_throttled_per_address_with_retry_after_and_denials_are_digested() {
    let config = Config { logins_per_min_per_address: 5, audit_denials_per_min: 2, ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = sign_in(&server, "nobody@acme.test", "guess", None).await;
        let status = response.status().as_u16();
        if status == 429 {
            assert!(response.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["limit"]["name"], "logins_per_address", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    assert!(support::metric(&server, "livedash_denials_total{reason=\"logins_per_address\"}").await >= 3.0);
    let store = server.store.clone();
    server.stop().await;
    // Eight denials from one address: two lines, then one summary (written when the writer stops).
    let rows = store.audit_by_actor("127.0.0.1").await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[0].detail.as_deref().unwrap().starts_with("6 more denials"), "{rows:?}");
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account_and_others_still_sign_in() {
    let config = Config { logins_per_min_per_account: 3, ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    for _ in 0..3 {
        assert_eq!(sign_in(&server, ACME_VIEWER, "wrong", None).await.status(), 401);
    }
    let locked = sign_in(&server, "VIEWER@acme.test", "livedash-demo", None).await;
    assert_eq!(locked.status(), 429, "the right password too, for a while: the guesses used the allowance");
    assert!(locked.headers().contains_key("retry-after"));
    assert_eq!(sign_in(&server, ACME_ADMIN, "livedash-demo", None).await.status(), 200, "another account");
    server.stop().await;
}

#[tokio::test]
async fn a_sign_in_flood_is_answered_and_never_runs_more_password_checks_than_allowed() {
    let config = Config { logins_per_min_per_address: 10_000, max_password_checks: 1, ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    let attempts = (0..40).map(|i| {
        let server = &server;
        async move { sign_in(server, &format!("u{i}@acme.test"), "guess", None).await.status().as_u16() }
    });
    let statuses = tokio::time::timeout(WAIT, futures_util::future::join_all(attempts)).await.expect("all answered");
    assert!(statuses.iter().all(|s| [401, 503].contains(s)), "{statuses:?}");
    // A 503 carries Retry-After and says why.
    if statuses.contains(&503) {
        assert!(support::metric(&server, "livedash_denials_total{reason=\"password_checks\"}").await >= 1.0);
    }
    assert_eq!(sign_in(&server, ACME_ADMIN, "livedash-demo", None).await.status(), 200, "served after the flood");
    server.stop().await;
}

#[tokio::test]
async fn wrong_secrets_do_not_spend_a_real_keys_publish_allowance() {
    // The source's own allowance of failed checks (tested in security.rs) is out of the way.
    let config = Config { publishes_per_sec: 1, api_key_failures_per_min_per_address: 1000, ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    let real = ApiKey::parse(&server.key("acme")).unwrap();
    let forged = ApiKey { secret: "0".repeat(32), ..real.clone() };
    let publish = |key: String| {
        server
            .http()
            .post(server.url("/api/v1/publish/t"))
            .bearer_auth(key)
            .body(r#"{"points": [{"value": 1}]}"#)
            .send()
    };
    for _ in 0..20 {
        assert_eq!(publish(forged.to_string()).await.unwrap().status(), 401);
    }
    assert_eq!(publish(real.to_string()).await.unwrap().status(), 200);
    assert_eq!(publish(real.to_string()).await.unwrap().status(), 200, "the whole burst of 2 is still there");
    server.stop().await;
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    // Not trusted: the header is ignored and every attempt counts against the real peer.
    let server = TestServer::start(quiet(Config { logins_per_min_per_address: 2, ..Config::default() })).await;
    for forwarded in ["1.1.1.1", "2.2.2.2"] {
        assert_eq!(sign_in(&server, "x@acme.test", "guess", Some(forwarded)).await.status(), 401);
    }
    assert_eq!(sign_in(&server, "x@acme.test", "guess", Some("3.3.3.3")).await.status(), 429, "forging does not help");
    server.stop().await;

    // Behind a trusted proxy (here, loopback), each client has its own allowance.
    let config =
        Config { logins_per_min_per_address: 2, trusted_proxies: vec!["127.0.0.0/8".into()], ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    for _ in 0..2 {
        assert_eq!(sign_in(&server, "x@acme.test", "guess", Some("1.1.1.1")).await.status(), 401);
    }
    assert_eq!(sign_in(&server, "x@acme.test", "guess", Some("1.1.1.1")).await.status(), 429);
    assert_eq!(sign_in(&server, "x@acme.test", "guess", Some("2.2.2.2")).await.status(), 401, "another client");
    server.stop().await;
}

#[tokio::test]
async fn a_socket_admitted_just_before_its_logout_is_refused_with_4401() {
    let server = TestServer::start(quiet(Config::default())).await;
    let cookie = server.login(ACME_ADMIN).await;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    // The upgrade checked the session (this is what it saw) ...
    let state = server.state();
    let session = state.auth.session_of(&headers).await.unwrap();
    // ... then the user logged out before the socket was registered, so the logout closed nothing.
    let logout = server.http().post(server.url("/api/auth/logout")).header("cookie", &cookie).send().await;
    assert_eq!(logout.unwrap().status(), 204);
    let outbox = std::sync::Arc::new(server::outbox::Outbox::new(4));
    let id = admission::next_connection_id();
    let seated = admission::seat(&state, id, &session, &outbox, &headers, "test".into()).await;
    let Err(refusal) = seated else { panic!("seated a socket of a logged-out session") };
    assert_eq!(refusal.code, protocol::close::SESSION_ENDED);
    assert_eq!(server.sockets.open(), (0, 0), "the slot it took is free again");
    drop(state);
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_private_by_default_on_a_loopback_listener_of_their_own() {
    assert_eq!(Config::default().metrics_addr.as_deref(), Some(server::config::DEFAULT_METRICS_ADDR));
    assert!(server::config::DEFAULT_METRICS_ADDR.starts_with("127.0.0.1:"), "loopback");
    let server = TestServer::start(quiet(Config::default())).await;
    let http = reqwest::Client::new();
    let public = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "not on the public listener");
    let own = server.metrics_addr.expect("a metrics listener");
    assert!(own.ip().is_loopback());
    let ok = http.get(format!("http://{own}/metrics")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("livedash_"));
    server.stop().await;
}

#[tokio::test]
async fn metrics_on_the_main_listener_require_a_token() {
    let main = |token: Option<&str>| Config {
        metrics_addr: None,
        metrics_token: token.map(str::to_owned),
        demo: false,
        ..Config::default()
    };
    let options = leptos::config::LeptosOptions::builder().output_name("livedash").build();
    let refused = server::Livedash::start(main(None), options).await.err().expect("no start without a token");
    assert!(format!("{refused:#}").contains("LIVEDASH_METRICS_TOKEN"), "{refused:#}");

    let server = TestServer::start(main(Some("s3cret"))).await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(server.url("/metrics")).send().await.unwrap().status(), 401);
    assert_eq!(http.get(server.url("/metrics")).bearer_auth("wrong").send().await.unwrap().status(), 401);
    let ok = http.get(server.url("/metrics")).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("livedash_"));
    server.stop().await;
}

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(tcp: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer)).await.expect("closed within the wait").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server =
        TestServer::start(quiet(Config { header_read_timeout: Duration::from_secs(1), ..Config::default() })).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let answer = read_to_close(&mut tcp).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_publisher_that_stalls_mid_body_gets_408_and_shutdown_does_not_wait_for_it() {
    let config = Config {
        body_read_timeout: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
        ..Config::default()
    };
    let server = TestServer::start(quiet(config)).await;
    let head = format!(
        "POST /api/v1/publish/t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{\"points\": [",
        server.key("acme")
    );
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("body_timeout"), "{answer:?}");

    // Another stalls at the same point while the server is asked to stop: it does not hold it.
    let mut holding = TcpStream::connect(server.addr).await.unwrap();
    holding.write_all(head.as_bytes()).await.unwrap();
    let mut other = TcpStream::connect(server.addr).await.unwrap();
    other.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap(); // headers never finished
    server.stop().await; // fails if the server is still running after 10 s
    drop((holding, other));
}

#[tokio::test]
async fn connections_past_the_cap_are_answered_503_and_the_server_recovers() {
    let config = Config { max_http_connections: 4, ..Config::default() };
    let server = TestServer::start(quiet(config)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf)).await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(tcp); // kept alive: each holds one of the four places
    }
    let mut fifth = TcpStream::connect(server.addr).await.unwrap();
    let answer = read_to_close(&mut fifth).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("too many connections"), "{answer:?}");
    drop(held);
    let healthy = || async { reqwest::get(server.url("/healthz")).await.map(|r| r.status().as_u16()).unwrap_or(0) };
    let deadline = tokio::time::Instant::now() + WAIT;
    while healthy().await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "the places were never given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
