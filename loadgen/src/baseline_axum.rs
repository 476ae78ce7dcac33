//! The obvious axum broadcast server, for `loadgen fanout --targets axum`: what livedash is measured
//! against. It does only the fan-out: no sign-in, no history, no resume, no limits. Each topic is a
//! `tokio::sync::broadcast` channel; each connection is split into a reader and a writer task (the
//! pattern of axum's own chat example), the writer forwarding every message of its subscriptions.
//!
//! Its protocol is the part of livedash's the generator uses: `GET /api/ws`, a client message
//! `{"type":"subscribe","topic":…}` answered `{"type":"subscribed","topic":…,"offset":…}`, and
//! `POST /api/v1/publish/{topic}` with `{"points":[…]}`, answered `{"offset":…}` and broadcast as
//! `{"topic":…,"offset":…,"series":[…]}`.
//!
//! ```text
//! loadgen baseline-axum --port 4000
//! ```

use axum::{
    Router,
    body::Bytes,
    extract::{
        Path, State,
        ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use futures_util::{SinkExt, StreamExt};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::{StreamMap, wrappers::BroadcastStream};

/// Messages a slow subscriber may fall behind by before it skips ahead.
const CHANNEL_CAPACITY: usize = 1024;

#[derive(Default)]
struct Topics(Mutex<HashMap<String, Topic>>);

struct Topic {
    sender: broadcast::Sender<Utf8Bytes>,
    offset: u64,
}

impl Topics {
    fn with<T>(&self, name: &str, f: impl FnOnce(&mut Topic) -> T) -> T {
        let mut topics = self.0.lock().expect("topics lock");
        let topic = topics
            .entry(name.to_owned())
            .or_insert_with(|| Topic { sender: broadcast::channel(CHANNEL_CAPACITY).0, offset: 0 });
        f(topic)
    }
}

/// Serves on 127.0.0.1:`port` until killed.
pub async fn serve(port: u16) -> std::io::Result<()> {
    let topics = Arc::new(Topics::default());
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/ws", get(upgrade))
        .route("/api/v1/publish/{*topic}", post(publish))
        .with_state(topics);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await
}

async fn publish(State(topics): State<Arc<Topics>>, Path(topic): Path<String>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let points = body.get("points").cloned().unwrap_or_default();
    let offset = topics.with(&topic, |t| {
        t.offset += 1;
        let message = serde_json::json!({"topic": topic, "offset": t.offset, "series": points}).to_string();
        // No subscribers is not an error for a broadcast.
        let _ = t.sender.send(message.into());
        t.offset
    });
    format!("{{\"offset\":{offset}}}").into_response()
}

async fn upgrade(upgrade: WebSocketUpgrade, State(topics): State<Arc<Topics>>) -> Response {
    upgrade.on_upgrade(move |socket| connection(socket, topics))
}

async fn connection(socket: WebSocket, topics: Arc<Topics>) {
    let (mut sink, mut stream) = socket.split();
    let (subscribe, mut subscriptions) = mpsc::unbounded_channel::<(String, broadcast::Receiver<Utf8Bytes>, u64)>();
    let mut writer = tokio::spawn(async move {
        let mut streams = StreamMap::new();
        loop {
            tokio::select! {
                Some((topic, receiver, offset)) = subscriptions.recv() => {
                    let topic_json = serde_json::Value::from(topic.as_str());
                    let answer = format!(r#"{{"type":"subscribed","topic":{topic_json},"offset":{offset}}}"#);
                    if sink.send(Message::text(answer)).await.is_err() {
                        return;
                    }
                    streams.insert(topic, BroadcastStream::new(receiver));
                }
                Some((_, message)) = streams.next(), if !streams.is_empty() => {
                    // A lagging subscriber skips what it missed, as `broadcast` does.
                    if let Ok(text) = message && sink.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                else => return,
            }
        }
    });
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else { continue };
            let Ok(request) = serde_json::from_str::<serde_json::Value>(text.as_str()) else { continue };
            if request["type"] == "subscribe"
                && let Some(topic) = request["topic"].as_str()
            {
                let (receiver, offset) = topics.with(topic, |t| (t.sender.subscribe(), t.offset));
                if subscribe.send((topic.to_owned(), receiver, offset)).is_err() {
                    return;
                }
            }
        }
    });
    tokio::select! {
        _ = &mut writer => reader.abort(),
        _ = &mut reader => writer.abort(),
    }
}
