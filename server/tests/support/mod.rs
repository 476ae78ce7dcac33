//! A real livedash server on an ephemeral loopback port, a WebSocket client that speaks JSON, a
//! signed-in HTTP client, and an SSE reader.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod node_process;
pub mod postgres;
pub mod redis;
pub mod tansu;

use futures_util::{SinkExt, StreamExt};
use protocol::{ClientMessage, Item, Point, ServerMessage, TopicKind};
use server::{
    Livedash,
    broker::{Broker, engine::Engine},
    config::Config,
    credentials::api_key::ApiKey,
    store::Store,
    topic_name::{TenantId, TopicKey, TopicName},
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

/// How long a test waits for something the server promises (a message, a close) before it calls the
/// promise broken. Only a failure waits this long, so it is generous: a loaded CI machine must never
/// turn a slow answer into a failed test.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    /// Where publishes go: this node, or the Redis it shares with others.
    pub engine: Arc<dyn Engine>,
    pub store: Store,
    /// The sockets, presence and limits the handlers see (no shutdown signal: a test must not hold
    /// the server's shutdown open).
    pub sockets: Arc<server::connections::registry::Registry>,
    pub presence: Arc<server::presence::Presence>,
    /// `/metrics`'s own listener, when the config asks for one.
    pub metrics_addr: Option<SocketAddr>,
    livedash_state: Option<server::AppState>,
    /// Each tenant's API key (demo mode issues one per tenant).
    pub keys: Vec<(TenantId, ApiKey)>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    config: Config,
    /// The database's directory, unless the test owns the database (several nodes share one).
    _dir: Option<tempfile::TempDir>,
}

/// The demo accounts every test server has.
pub const ACME_ADMIN: &str = "ops@acme.test";
pub const ACME_VIEWER: &str = "viewer@acme.test";
pub const GLOBEX_ADMIN: &str = "ops@globex.test";

impl TestServer {
    /// A server with the demo accounts, on a fresh database. With `demo` off the demo feed does not
    /// run, so tests see exactly what they publish.
    pub async fn start(config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("livedash.db").to_str().unwrap().to_owned();
        Self::start_in(Config { database, ..config }, Some(dir), "127.0.0.1:0".parse().unwrap(), None).await
    }

    /// A server whose site root (the front end's files) is `site`.
    pub async fn with_site(config: Config, site: &std::path::Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("livedash.db").to_str().unwrap().to_owned();
        let config = Config { database, ..config };
        Self::start_in(config, Some(dir), "127.0.0.1:0".parse().unwrap(), Some(site.to_str().unwrap())).await
    }

    /// One node of a deployment: `config` names the database and Redis it shares with the others.
    pub async fn node(config: Config) -> Self {
        Self::start_in(config, None, "127.0.0.1:0".parse().unwrap(), None).await
    }

    /// Stops the server and starts it again on the same address and database, the way an operator
    /// restarts a node: sessions survive, the in-memory broker does not.
    pub async fn restart(mut self) -> Self {
        let (config, addr, dir) = (self.config.clone(), self.addr, self._dir.take());
        self.stop().await;
        Self::start_in(config, dir, addr, None).await
    }

    async fn start_in(
        mut config: Config,
        dir: Option<tempfile::TempDir>,
        addr: SocketAddr,
        site: Option<&str>,
    ) -> Self {
        // Tests run side by side: `/metrics` gets a free loopback port rather than the default one.
        if config.metrics_addr.as_deref() == Some(server::config::DEFAULT_METRICS_ADDR) {
            config.metrics_addr = Some("127.0.0.1:0".into());
        }
        let options = leptos::config::LeptosOptions::builder().output_name("livedash");
        let options = match site {
            Some(site) => options.site_root(site).build(),
            None => options.build(),
        };
        let livedash = Livedash::start(config.clone(), options).await.unwrap();
        let (broker, engine, store) = (livedash.broker(), livedash.engine(), livedash.store());
        let state = livedash.state();
        let (sockets, presence) = (state.sockets.clone(), state.presence.clone());
        let metrics_addr = livedash.metrics_addr();
        let livedash_state = server::AppState { shutdown: server::shutdown::Shutdown::new().signal(), ..state };
        let keys = match livedash.demo_keys() {
            [] => server::demo::seed(&store).await.unwrap(),
            keys => keys.to_vec(),
        };
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(livedash.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            broker,
            engine,
            store,
            sockets,
            presence,
            metrics_addr,
            livedash_state: Some(livedash_state),
            keys,
            stop: Some(stop),
            task: Some(task),
            config,
            _dir: dir,
        }
    }

    /// A server whose demo feed is off, so tests publish exactly what they expect.
    pub async fn quiet() -> Self {
        Self::start(Config { demo: false, ..Config::default() }).await
    }

    /// The state the handlers see, with a shutdown signal of its own (one of the server's would
    /// hold its shutdown open).
    pub fn state(&self) -> server::AppState {
        self.livedash_state.clone().expect("the server is running")
    }

    /// Whether `/readyz` says this node should get new clients.
    pub async fn ready(&self) -> bool {
        let response = reqwest::get(self.url("/readyz")).await.unwrap();
        response.status() == 200
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `/metrics`, on its own listener.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics_addr.expect("metrics on their own listener"))
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An HTTP client that says where it is from, as every non-browser client of the API must for
    /// a state change (`Origin`), and sends JSON.
    pub fn http(&self) -> reqwest::Client {
        http_from(&self.origin())
    }

    pub fn key(&self, tenant: &str) -> String {
        self.keys.iter().find(|(t, _)| t.as_str() == tenant).unwrap().1.to_string()
    }

    /// Signs in and returns the session cookie (`livedash_session=…`).
    pub async fn login(&self, email: &str) -> String {
        login_at(self.addr, email).await
    }

    /// Opens a WebSocket with these headers; the raw result, for tests of refusals.
    pub async fn open_ws(
        &self,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        open_ws_at(self.addr, cookie, origin).await
    }

    /// A signed-in socket of `email`, past its `welcome`.
    pub async fn connect_as(&self, email: &str) -> Client {
        let cookie = self.login(email).await;
        let mut client = self.open_ws(Some(&cookie), Some(&self.origin())).await.unwrap();
        let welcome = client.next_json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client
    }

    /// A socket of acme's admin.
    pub async fn connect(&self) -> Client {
        self.connect_as(ACME_ADMIN).await
    }

    /// Stops the server the way Ctrl-C does and waits until it has finished.
    pub async fn stop(mut self) {
        // Our handle on the auditor would keep its writer, and so the shutdown, waiting.
        self.livedash_state = None;
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("server stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// An HTTP client whose requests carry `Origin: origin` and `Content-Type: application/json`.
pub fn http_from(origin: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", origin.parse().unwrap());
    headers.insert("content-type", reqwest::header::HeaderValue::from_static("application/json"));
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// Signs in to the server at `addr` and returns the session cookie (`livedash_session=…`).
pub async fn login_at(addr: SocketAddr, email: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/auth/login"))
        .header("origin", format!("http://{addr}"))
        .json(&serde_json::json!({"email": email, "password": "livedash-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "login as {email}");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// Opens a WebSocket to the server at `addr` with these headers; the raw result.
pub async fn open_ws_at(
    addr: SocketAddr,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{addr}/api/ws").into_client_request().unwrap();
    if let Some(cookie) = cookie {
        request.headers_mut().insert("cookie", cookie.parse().unwrap());
    }
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| Client { socket })
}

/// Waits until `done` holds: for a state the server promises to reach (a structure emptied, a
/// count back to zero), checked every few milliseconds; fails after [`WAIT`].
pub async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`], for a state that takes a request to see.
pub async fn eventually_async<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A topic of the demo tenant `acme`.
pub fn acme(topic: &str) -> TopicKey {
    TopicKey::new(TenantId::parse("acme").unwrap(), TopicName::parse(topic).unwrap())
}

/// Publishes one series point whose value is `v`; returns its offset.
pub fn publish_point(broker: &Broker, key: &TopicKey, v: f64) -> u64 {
    broker.publish(key, TopicKind::Series, vec![Item::Point(Point { ts: v as i64, value: v })]).unwrap()
}

pub struct Client {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send(&mut self, message: &ClientMessage) {
        self.send_text(&message.to_json()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text)).await.unwrap();
    }

    /// The next text frame, as JSON (pings and pongs are skipped).
    pub async fn next_json(&mut self) -> serde_json::Value {
        // One deadline for the message, however many pings come before it.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("a message within the wait")
                .expect("socket open")
                .expect("valid frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next text frame as JSON, or the close code if the server closes first.
    pub async fn next_json_or_close(&mut self) -> Result<serde_json::Value, u16> {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next()).await.expect("a frame within the wait");
            match message {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(Some(frame)))) => return Err(frame.code.into()),
                Some(Ok(Message::Close(None))) | None => return Err(1005),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket error: {e}"),
            }
        }
    }

    pub async fn next_message(&mut self) -> ServerMessage {
        serde_json::from_value(self.next_json().await).unwrap()
    }

    pub async fn subscribe(&mut self, widget: &str, topic: &str, resume_token: Option<String>) {
        self.send(&ClientMessage::Subscribe { widget_id: widget.into(), topic: topic.into(), resume_token }).await;
    }

    /// The close frame's code, after skipping anything still queued before it.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next()).await.expect("close within the wait");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket error before close: {e}"),
            }
        }
    }

    /// Closes the socket the way a browser tab does, and waits for the server's answer.
    pub async fn close(&mut self) {
        let _ = self.socket.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.socket.next()).await {}
    }
}

/// A signed-in HTTP client of one user.
pub struct As {
    pub http: reqwest::Client,
    pub cookie: String,
    pub base: String,
}

impl As {
    pub async fn user(server: &TestServer, email: &str) -> Self {
        Self { http: reqwest::Client::new(), cookie: server.login(email).await, base: server.url("") }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            // What a client that is not a browser sends with a state change: where it is from,
            // and JSON.
            .header("origin", &self.base)
            .header("content-type", "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn dashboards(&self) -> Vec<protocol::dashboard::DashboardSummary> {
        let (status, body) = self.get("/api/dashboards").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn dashboard(&self, id: i64) -> protocol::dashboard::DashboardView {
        let (status, body) = self.get(&format!("/api/dashboards/{id}")).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Creates a dashboard with widgets of these kinds on these topics (an admin's call); returns
    /// its id and each widget's id on the live connection (`w…`), in order.
    pub async fn create_dashboard(&self, widgets: &[(&str, &str)]) -> (i64, Vec<String>) {
        let (status, created) =
            self.call(reqwest::Method::POST, "/api/dashboards", Some(serde_json::json!({"title": "Test"}))).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_i64().unwrap();
        let mut ids = Vec::new();
        for (kind, topic) in widgets {
            ids.push(self.add_widget(id, kind, topic).await);
        }
        (id, ids)
    }

    /// Adds a widget; returns its id on the live connection.
    pub async fn add_widget(&self, dashboard: i64, kind: &str, topic: &str) -> String {
        let body = serde_json::json!({"title": topic, "kind": kind, "topic": topic});
        let (status, widget) =
            self.call(reqwest::Method::POST, &format!("/api/dashboards/{dashboard}/widgets"), Some(body)).await;
        assert_eq!(status, 201, "{widget}");
        format!("w{}", widget["id"])
    }

    /// A GET with the session cookie and these headers; the raw response.
    pub async fn open(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base)).header("cookie", &self.cookie);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// An SSE stream that must open.
    pub async fn stream(&self, path: &str, headers: &[(&str, &str)]) -> Sse {
        let response = self.open(path, headers).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Sse { response, buffer: String::new() }
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:`; `message` when absent. A `retry:`-only block reads as `retry`.
    pub name: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// An SSE response, read one event at a time.
pub struct Sse {
    pub response: reqwest::Response,
    buffer: String,
}

impl Sse {
    /// The next event (a `retry:` block included), or `None` once the stream has ended.
    pub async fn next_or_end(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent { name: "message".into(), id: None, data: String::new() };
                for line in block.lines() {
                    match line.split_once(": ") {
                        Some(("event", name)) => event.name = name.into(),
                        Some(("id", id)) => event.id = Some(id.into()),
                        Some(("data", data)) => event.data.push_str(data),
                        Some(("retry", ms)) => {
                            event.name = "retry".into();
                            event.data = ms.into();
                        }
                        _ => {}
                    }
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk()).await.expect("an event within the wait");
            match chunk.expect("the stream reads") {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => return None,
            }
        }
    }

    /// The next event that is not a heartbeat, `retry:` or an announcement of dashboard edits
    /// (which the tests' own edits cause; `sse.rs` reads those with [`Sse::next_or_end`]).
    pub async fn next(&mut self) -> SseEvent {
        loop {
            let event = self.next_or_end().await.expect("the stream goes on");
            let edits = || event.json()["widgetId"] == protocol::dashboard::DASHBOARD_EDITS_FEED;
            if event.name != "heartbeat" && event.name != "retry" && !edits() {
                return event;
            }
        }
    }
}

/// The value of one metric line of `/metrics` (`name{labels}` exactly as exposed), 0 when absent.
pub async fn metric(server: &TestServer, series: &str) -> f64 {
    let text = reqwest::get(server.metrics_url()).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// The events of the next update on an events topic such as the notification centre's (snapshots
/// and pongs skipped).
pub async fn next_events(client: &mut Client) -> Vec<protocol::Event> {
    use protocol::ControlMessage;
    loop {
        match client.next_message().await {
            ServerMessage::Update(update) => {
                return update
                    .series
                    .into_iter()
                    .map(|item| match item {
                        Item::Event(event) => event,
                        other => panic!("{other:?}"),
                    })
                    .collect();
            }
            ServerMessage::Control(ControlMessage::Snapshot { .. } | ControlMessage::Pong { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
