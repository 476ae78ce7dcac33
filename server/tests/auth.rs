//! Sessions, Origin checks, roles and close codes, over real HTTP and WebSocket connections.

mod support;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use server::config::Config;
use support::{ACME_ADMIN, ACME_VIEWER, GLOBEX_ADMIN, TestServer};
use tokio_tungstenite::tungstenite::{Error as WsError, http::StatusCode};

const SECRET: &str = "integration-test-secret";

async fn server() -> TestServer {
    TestServer::start(Config { demo: false, session_secret: Some(SECRET.into()), ..Config::default() }).await
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// The claims inside a `livedash_session=<jwt>` cookie.
fn claims_of(cookie: &str) -> serde_json::Value {
    let jwt = cookie.split_once('=').unwrap().1;
    serde_json::from_slice(&B64.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

fn cookie_with(claims: &serde_json::Value, secret: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let jwt = jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).unwrap();
    format!("livedash_session={jwt}")
}

async fn close_code_of(server: &TestServer, cookie: Option<&str>) -> u16 {
    let mut client = server.open_ws(cookie, Some(&server.origin())).await.expect("the upgrade itself succeeds");
    client.close_code().await
}

/// The audit log as an admin (`cookie`) reads it, newest first.
async fn audit_log(server: &TestServer, cookie: &str) -> Vec<serde_json::Value> {
    http().get(server.url("/api/admin/audit")).header("cookie", cookie).send().await.unwrap().json().await.unwrap()
}

/// The static front end's origin, on the same site as the server.
const STATIC_SITE: &str = "http://127.0.0.1:8080";

#[tokio::test]
async fn a_listed_origin_gets_cors_with_credentials_and_others_get_nothing_they_may_read() {
    let server = TestServer::start(Config {
        demo: false,
        allowed_origins: vec![STATIC_SITE.into()],
        cookie_domain: Some("example.test".into()),
        ..Config::default()
    })
    .await;
    let preflight = |origin: &str| {
        http()
            .request(reqwest::Method::OPTIONS, server.url("/api/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight(STATIC_SITE).await.unwrap();
    assert!(allowed.status().is_success());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], STATIC_SITE);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let stranger = preflight("http://localhost:8080").await.unwrap();
    assert!(stranger.headers().get("access-control-allow-origin").is_none(), "another site may not read");

    let login = server
        .http()
        .post(server.url("/api/auth/login"))
        .header("origin", STATIC_SITE)
        .json(&serde_json::json!({"email": ACME_VIEWER, "password": "livedash-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert_eq!(login.headers()["access-control-allow-origin"], STATIC_SITE);
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("Domain=example.test"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let me = http()
        .get(server.url("/api/auth/me"))
        .header("origin", STATIC_SITE)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.headers()["access-control-allow-origin"], STATIC_SITE);
    assert_eq!(me.headers()["access-control-expose-headers"], "retry-after");

    // Live connections: the listed origin may open a socket, another may not.
    let mut socket = server.open_ws(Some(&cookie), Some(STATIC_SITE)).await.expect("a listed origin upgrades");
    socket.close().await;
    match server.open_ws(Some(&cookie), Some("http://localhost:8080")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        Err(other) => panic!("expected 403, got {other}"),
        Ok(_) => panic!("a page of another site opened a socket"),
    }
    let logout = server
        .http()
        .post(server.url("/api/auth/logout"))
        .header("origin", STATIC_SITE)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let removal = logout.headers()["set-cookie"].to_str().unwrap();
    assert!(removal.contains("Domain=example.test") && removal.contains("Max-Age=0"), "{removal}");
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_me_reads_it() {
    let server = server().await;
    let response = server
        .http()
        .post(server.url("/api/auth/login"))
        .json(&serde_json::json!({"email": ACME_VIEWER, "password": "livedash-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["livedash_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{attribute} in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP here");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user"]["role"], "viewer");
    assert_eq!(body["user"]["tenant"], "acme");

    let cookie = set_cookie.split(';').next().unwrap();
    let me = http().get(server.url("/api/auth/me")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<serde_json::Value>().await.unwrap()["user"]["email"], ACME_VIEWER);
    let anonymous = http().get(server.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn the_cookie_is_secure_behind_tls() {
    let server = server().await;
    let response = server
        .http()
        .post(server.url("/api/auth/login"))
        .header("x-forwarded-proto", "https")
        .json(&serde_json::json!({"email": ACME_VIEWER, "password": "livedash-demo"}))
        .send()
        .await
        .unwrap();
    assert!(response.headers()["set-cookie"].to_str().unwrap().contains("Secure"));
    server.stop().await;
}

#[tokio::test]
async fn wrong_credentials_and_malformed_logins_are_refused() {
    let server = server().await;
    for (body, status, code) in [
        (serde_json::json!({"email": ACME_ADMIN, "password": "nope"}), 401, "invalid_credentials"),
        (serde_json::json!({"email": "who@acme.test", "password": "livedash-demo"}), 401, "invalid_credentials"),
        (serde_json::json!({"email": ACME_ADMIN}), 400, "bad_request"),
        (serde_json::json!({"email": "x".repeat(300), "password": "p"}), 400, "bad_request"),
    ] {
        let response = server.http().post(server.url("/api/auth/login")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], code);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_socket_needs_a_valid_session_and_says_so_with_4401() {
    let server = server().await;
    assert_eq!(close_code_of(&server, None).await, 4401, "no cookie");
    assert_eq!(close_code_of(&server, Some("livedash_session=garbage")).await, 4401);

    let cookie = server.login(ACME_ADMIN).await;
    let claims = claims_of(&cookie);
    assert_eq!(close_code_of(&server, Some(&cookie_with(&claims, "another secret"))).await, 4401, "forged");

    let mut expired = claims.clone();
    expired["exp"] = serde_json::json!(1);
    assert_eq!(close_code_of(&server, Some(&cookie_with(&expired, SECRET))).await, 4401, "expired");

    let header = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = B64.encode(claims.to_string());
    assert_eq!(close_code_of(&server, Some(&format!("livedash_session={header}.{payload}."))).await, 4401, "alg none");

    let mut other_user = claims.clone();
    other_user["sub"] = serde_json::json!("999");
    assert_eq!(close_code_of(&server, Some(&cookie_with(&other_user, SECRET))).await, 4401, "sub not the session's");

    let mut client = server.open_ws(Some(&cookie), Some(&server.origin())).await.unwrap();
    assert_eq!(client.next_json().await["type"], "welcome", "the genuine cookie works");
    server.stop().await;
}

#[tokio::test]
async fn a_foreign_or_missing_origin_is_refused_before_the_upgrade() {
    let server = server().await;
    let cookie = server.login(ACME_ADMIN).await;
    for origin in [Some("http://evil.test"), Some("null"), None] {
        match server.open_ws(Some(&cookie), origin).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin:?}"),
            Err(e) => panic!("{origin:?}: expected a 403, got {e}"),
            Ok(_) => panic!("{origin:?}: expected a 403, got a socket"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn logging_out_closes_the_sessions_sockets_and_ends_the_cookie() {
    let server = server().await;
    let cookie = server.login(ACME_ADMIN).await;
    let mut client = server.open_ws(Some(&cookie), Some(&server.origin())).await.unwrap();
    client.next_json().await;
    let other_session = server.connect_as(ACME_ADMIN).await;

    let response = server.http().post(server.url("/api/auth/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(client.close_code().await, 4401);
    assert_eq!(close_code_of(&server, Some(&cookie)).await, 4401, "the old cookie no longer opens sockets");
    let me = http().get(server.url("/api/auth/me")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status(), 401);
    drop(other_session);
    server.stop().await;
}

#[tokio::test]
async fn a_session_that_expires_closes_its_sockets() {
    let server =
        TestServer::start(Config { demo: false, session_ttl: std::time::Duration::from_secs(4), ..Config::default() })
            .await;
    let mut client = server.connect().await;
    assert_eq!(client.close_code().await, 4401);
    server.stop().await;
}

#[tokio::test]
async fn only_admins_toggle_live_dashboards_and_turning_them_off_closes_with_4403() {
    let server = server().await;
    let viewer = server.login(ACME_VIEWER).await;
    let admin = server.login(ACME_ADMIN).await;
    let url = server.url("/api/admin/live-dashboards");
    let off = serde_json::json!({"enabled": false});

    let refused = server.http().put(&url).header("cookie", &viewer).json(&off).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let audit = http().get(server.url("/api/admin/audit")).header("cookie", &viewer).send().await.unwrap();
    assert_eq!(audit.status(), 403, "viewers do not read the audit log");

    let mut acme_socket = server.connect_as(ACME_VIEWER).await;
    let mut globex_socket = server.connect_as(GLOBEX_ADMIN).await;
    let response = server.http().put(&url).header("cookie", &admin).json(&off).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(acme_socket.close_code().await, 4403);
    assert_eq!(close_code_of(&server, Some(&viewer)).await, 4403, "new sockets too");
    globex_socket.send(&protocol::ClientMessage::Ping).await;
    assert_eq!(globex_socket.next_json().await["type"], "pong", "another tenant is untouched");

    let state: serde_json::Value =
        http().get(&url).header("cookie", &admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["enabled"], false);
    let on = serde_json::json!({"enabled": true});
    assert_eq!(server.http().put(&url).header("cookie", &admin).json(&on).send().await.unwrap().status(), 200);
    let mut back = server.open_ws(Some(&viewer), Some(&server.origin())).await.unwrap();
    assert_eq!(back.next_json().await["type"], "welcome");
    server.stop().await;
}

#[tokio::test]
async fn only_admins_set_the_live_mode_and_each_switch_reaches_open_connections() {
    let server = server().await;
    let viewer = server.login(ACME_VIEWER).await;
    let admin = server.login(ACME_ADMIN).await;
    let url = server.url("/api/admin/live-mode");
    let put =
        |cookie: &str, body: serde_json::Value| server.http().put(&url).header("cookie", cookie).json(&body).send();
    let mode = |mode: &str| serde_json::json!({ "mode": mode });

    assert_eq!(put(&viewer, mode("polling")).await.unwrap().status(), 403, "viewers may not");
    let bad = put(&admin, mode("fast")).await.unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!((body["error"].as_str(), body["field"].as_str()), (Some("bad_request"), Some("mode")), "{body}");

    let mut acme_socket = server.connect_as(ACME_VIEWER).await;
    let mut globex_socket = server.connect_as(GLOBEX_ADMIN).await;
    assert_eq!(put(&admin, mode("polling")).await.unwrap().status(), 200);
    assert_eq!(acme_socket.close_code().await, 4405, "an open socket is told to poll");
    assert_eq!(close_code_of(&server, Some(&viewer)).await, 4405, "so is a new one");
    globex_socket.send(&protocol::ClientMessage::Ping).await;
    assert_eq!(globex_socket.next_json().await["type"], "pong", "another tenant is untouched");
    let read = |path: &'static str, cookie: String| {
        let request = http().get(server.url(path)).header("cookie", cookie);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    assert_eq!(read("/api/admin/live-mode", admin.clone()).await, mode("polling"));
    assert_eq!(read("/api/auth/me", viewer.clone()).await["liveMode"], "polling", "what a page reads");
    assert_eq!(read("/api/admin/live-dashboards", admin.clone()).await["enabled"], true, "polling is not off");

    assert_eq!(put(&admin, mode("off")).await.unwrap().status(), 200);
    assert_eq!(close_code_of(&server, Some(&viewer)).await, 4403);
    assert_eq!(read("/api/auth/me", viewer.clone()).await["liveMode"], "off");
    assert_eq!(put(&admin, mode("live")).await.unwrap().status(), 200);
    let mut back = server.open_ws(Some(&viewer), Some(&server.origin())).await.unwrap();
    assert_eq!(back.next_json().await["type"], "welcome");

    let switches = async {
        loop {
            let log = audit_log(&server, &admin).await;
            let details: Vec<&str> =
                log.iter().filter(|e| e["action"] == "live_mode").filter_map(|e| e["detail"].as_str()).collect();
            if details.len() == 3 {
                return details.into_iter().map(str::to_owned).collect::<Vec<_>>();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let mut details = tokio::time::timeout(support::WAIT, switches).await.expect("every switch audited");
    details.sort();
    assert_eq!(
        details,
        [
            "live → polling; 1 connection(s) closed",
            "off → live; 0 connection(s) closed",
            "polling → off; 0 connection(s) closed",
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_per_user_are_limited_with_4429() {
    let server = TestServer::start(Config { demo: false, max_connections_per_user: 2, ..Config::default() }).await;
    let _a = server.connect().await;
    let _b = server.connect().await;
    let cookie = server.login(ACME_ADMIN).await;
    assert_eq!(close_code_of(&server, Some(&cookie)).await, 4429);
    let _other_user = server.connect_as(ACME_VIEWER).await;
    server.stop().await;
}

#[tokio::test]
async fn a_connection_over_the_limit_is_audited_as_refused_only_on_every_transport() {
    let server = TestServer::start(Config { demo: false, max_connections_per_user: 1, ..Config::default() }).await;
    let admin = support::As::user(&server, ACME_ADMIN).await;
    let (dashboard, _) = admin.create_dashboard(&[("line_chart", "sales/orders")]).await;
    let _open = server.connect().await;
    let cookie = admin.cookie.clone();
    assert_eq!(close_code_of(&server, Some(&cookie)).await, 4429);
    let stream = admin.open(&format!("/api/stream/dashboard/{dashboard}"), &[]).await;
    assert_eq!(stream.status(), 429);
    let connects = async {
        loop {
            let log = audit_log(&server, &cookie).await;
            let outcomes: Vec<String> = log
                .iter()
                .filter(|e| e["action"] == "connect")
                .map(|e| e["outcome"].as_str().unwrap().to_owned())
                .collect();
            // Rows are written in the order they happened: once both refusals are in, so is
            // anything audited before them.
            if outcomes.iter().filter(|o| *o == "denied").count() == 2 {
                return outcomes;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let outcomes = tokio::time::timeout(support::WAIT, connects).await.expect("both refusals audited");
    assert_eq!(outcomes.iter().filter(|o| *o == "ok").count(), 1, "only the connection that got a seat: {outcomes:?}");
    server.stop().await;
}

#[tokio::test]
async fn logins_connects_subscribes_and_denials_are_audited() {
    let server = server().await;
    let mut client = server.connect().await;
    client.subscribe("ok", "sales/orders", None).await;
    client.subscribe("w", "../globex/sales/orders", None).await;
    assert_eq!(client.next_json().await["code"], "bad_topic");
    // A connection's subscriptions are one row, written as it ends.
    client.close().await;
    let _ = server
        .http()
        .post(server.url("/api/auth/login"))
        .json(&serde_json::json!({"email": ACME_ADMIN, "password": "wrong"}))
        .send()
        .await
        .unwrap();
    let admin = server.login(ACME_ADMIN).await;
    let found = async {
        loop {
            let log = audit_log(&server, &admin).await;
            let seen: Vec<(String, String)> = log
                .iter()
                .map(|e| (e["action"].as_str().unwrap().to_owned(), e["outcome"].as_str().unwrap().to_owned()))
                .collect();
            let wanted = [("login", "ok"), ("connect", "ok"), ("subscriptions", "ok")];
            let summary = log.iter().find(|e| e["action"] == "subscriptions").and_then(|e| e["detail"].as_str());
            if wanted.iter().all(|(a, o)| seen.contains(&(a.to_string(), o.to_string())))
                && let Some(summary) = summary
            {
                assert!(summary.contains("1 subscribed, 1 refused, 0 unsubscribed"), "{summary}");
                assert!(summary.contains("sales/orders") && summary.contains("(refused)"), "{summary}");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(support::WAIT, found).await.expect("audit entries written");
    server.stop().await;
}

#[tokio::test]
async fn the_config_can_turn_a_tenants_live_dashboards_off() {
    let server =
        TestServer::start(Config { demo: true, live_dashboards_off: vec!["globex".into()], ..Config::default() }).await;
    let globex = server.login(GLOBEX_ADMIN).await;
    assert_eq!(close_code_of(&server, Some(&globex)).await, 4403);
    let mut acme = server.connect().await;
    acme.send(&protocol::ClientMessage::Ping).await;
    assert_eq!(acme.next_json().await["type"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn the_config_can_set_a_tenant_to_polling() {
    let server =
        TestServer::start(Config { demo: true, live_dashboards_polling: vec!["globex".into()], ..Config::default() })
            .await;
    let globex = server.login(GLOBEX_ADMIN).await;
    assert_eq!(close_code_of(&server, Some(&globex)).await, 4405);
    let me: serde_json::Value =
        http().get(server.url("/api/auth/me")).header("cookie", globex).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["liveMode"], "polling");
    server.stop().await;
}
