//! A real livedash server on an ephemeral loopback port, and a WebSocket client that speaks JSON.

#![allow(dead_code)] // each test binary uses a different part of this module

use app::protocol::{ClientMessage, Item, Point, ServerMessage, TopicKind};
use futures_util::{SinkExt, StreamExt};
use server::{
    Livedash,
    broker::{
        Broker,
        topic_name::{TenantId, TopicKey, TopicName},
    },
    config::Config,
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let options = leptos::config::LeptosOptions::builder().output_name("livedash").build();
        let livedash = Livedash::new(config, options);
        let broker = livedash.broker();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(livedash.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, broker, stop: Some(stop), task: Some(task) }
    }

    /// A server with the demo feed off, so tests publish exactly what they expect.
    pub async fn quiet() -> Self {
        Self::start(Config { demo_feed: false, ..Config::default() }).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn connect(&self) -> Client {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/ws", self.addr)).await.unwrap();
        let mut client = Client { socket };
        let welcome = client.next_json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client
    }

    /// Stops the server the way Ctrl-C does and waits until it has finished.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("server stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// A topic of the demo tenant `acme` (the tenant sockets belong to until sessions exist).
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
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
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
}
