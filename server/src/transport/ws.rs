//! `/api/ws`: one task per WebSocket, reading client messages and writing its outbox.
//!
//! Everything a connection sends goes through its [`Outbox`], so replies (snapshots, errors,
//! pongs) and updates reach the client in the order they were produced. The task writes each batch
//! with one flush, pings the client, and closes the socket after `idle_timeout` of silence or with
//! 1001 when the server shuts down.

use super::outbox::{Batch, Frame, Outbox};
use crate::{
    AppState,
    broker::{
        Broker, BrokerError, Subscriber,
        topic_name::{TenantId, TopicKey, TopicName},
    },
    shutdown::ShutdownSignal,
};
use app::protocol::{ClientMessage, ControlMessage, ErrorCode, ServerMessage};
use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    response::Response,
};
use futures_util::SinkExt;
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

/// Longest widget id a client may use.
const MAX_WIDGET_ID_LEN: usize = 128;
/// Close codes (RFC 6455 §7.4.1).
const NORMAL: u16 = 1000;
const GOING_AWAY: u16 = 1001;

/// Socket buffers are kept small on purpose: with thousands of mostly idle dashboards, per-socket
/// buffers dominate server memory.
const READ_BUFFER_BYTES: usize = 4 * 1024;
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

pub async fn upgrade(upgrade: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let max = state.config.max_frame_bytes;
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| Connection::new(state).run(socket))
}

struct Connection {
    id: u64,
    tenant: TenantId,
    broker: Arc<Broker>,
    outbox: Arc<Outbox>,
    /// widget id → topic
    subscriptions: HashMap<Arc<str>, TopicKey>,
    heartbeat: Duration,
    idle_timeout: Duration,
    shutdown: ShutdownSignal,
}

/// Why the connection loop ended, and what to tell the client.
enum Ending {
    ClientLeft,
    Close(u16, &'static str),
}

impl Connection {
    fn new(state: AppState) -> Self {
        Self {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            tenant: state.anonymous_tenant.clone(),
            broker: state.broker,
            outbox: Arc::new(Outbox::new(state.config.outbox_capacity)),
            subscriptions: HashMap::new(),
            heartbeat: state.config.heartbeat_interval,
            idle_timeout: state.config.idle_timeout,
            shutdown: state.shutdown,
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        tracing::info!(connection = self.id, "connected");
        self.reply(ControlMessage::Welcome {
            connection_id: self.id.to_string(),
            heartbeat_interval_ms: self.heartbeat.as_millis() as u64,
            idle_timeout_ms: self.idle_timeout.as_millis() as u64,
        });
        let ending = self.serve(&mut socket).await;
        if let Ending::Close(code, reason) = ending {
            let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
        for (widget, topic) in self.subscriptions.drain() {
            self.broker.unsubscribe(&topic, self.id, &widget);
        }
        tracing::info!(connection = self.id, "disconnected");
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> Ending {
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval_at(Instant::now() + self.heartbeat, self.heartbeat);
        let mut shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                inbound = socket.recv() => match inbound {
                    Some(Ok(message)) => {
                        last_heard = Instant::now();
                        if let Some(ending) = self.on_message(message) {
                            return ending;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(connection = self.id, error = %e, "read failed");
                        return Ending::ClientLeft;
                    }
                    None => return Ending::ClientLeft,
                },
                () = self.outbox.ready() => {
                    let batch = self.outbox.take();
                    if self.write(socket, batch).await.is_err() {
                        return Ending::ClientLeft;
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= self.idle_timeout {
                        return Ending::Close(NORMAL, "idle timeout");
                    }
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return Ending::ClientLeft;
                    }
                }
                () = shutdown.stopping() => return Ending::Close(GOING_AWAY, "server shutting down"),
            }
        }
    }

    /// Writes a batch with one flush, then asks the broker to resync subscriptions that lagged.
    async fn write(&self, socket: &mut WebSocket, batch: Batch) -> Result<(), axum::Error> {
        for frame in batch.frames {
            socket.feed(Message::Text(frame.into_text().into())).await?;
        }
        socket.flush().await?;
        for widget in batch.lagging {
            if let Some(topic) = self.subscriptions.get(&widget) {
                tracing::debug!(connection = self.id, %widget, "subscriber lagged; resyncing");
                let _ = self.broker.resync(topic, &self.subscriber(&widget));
            }
        }
        Ok(())
    }

    fn on_message(&mut self, message: Message) -> Option<Ending> {
        match message {
            Message::Text(text) => match serde_json::from_str::<ClientMessage>(text.as_str()) {
                Ok(message) => self.on_client_message(message),
                Err(e) => self.error(ErrorCode::BadMessage, format!("not a valid message: {e}"), None),
            },
            Message::Binary(_) => self.error(ErrorCode::BadMessage, "binary frames are not supported".into(), None),
            Message::Close(_) => return Some(Ending::ClientLeft),
            Message::Ping(_) | Message::Pong(_) => {}
        }
        None
    }

    fn on_client_message(&mut self, message: ClientMessage) {
        match message {
            ClientMessage::Ping => self.reply(ControlMessage::Pong),
            ClientMessage::Subscribe { widget_id, topic, resume_token } => {
                self.subscribe(widget_id, topic, resume_token.as_deref())
            }
            ClientMessage::Unsubscribe { widget_id } => match self.subscriptions.remove_entry(widget_id.as_str()) {
                Some((widget, topic)) => {
                    self.broker.unsubscribe(&topic, self.id, &widget);
                    self.outbox.forget(&widget);
                }
                None => self.error(ErrorCode::NotSubscribed, "no such subscription".into(), Some(widget_id)),
            },
            ClientMessage::RequestUpdate { widget_id } => match self.subscriptions.get_key_value(widget_id.as_str()) {
                Some((widget, topic)) => {
                    // The topic exists while we are subscribed to it: topics are never removed.
                    let _ = self.broker.refresh(topic, &self.subscriber(widget));
                }
                None => self.error(ErrorCode::NotSubscribed, "no such subscription".into(), Some(widget_id)),
            },
        }
    }

    fn subscribe(&mut self, widget_id: String, topic: String, resume_token: Option<&str>) {
        if widget_id.is_empty() || widget_id.len() > MAX_WIDGET_ID_LEN {
            let message = format!("widgetId must be 1 to {MAX_WIDGET_ID_LEN} bytes");
            return self.error(ErrorCode::BadMessage, message, None);
        }
        if self.subscriptions.contains_key(widget_id.as_str()) {
            return self.error(ErrorCode::DuplicateSubscription, "widget already subscribed".into(), Some(widget_id));
        }
        let name = match TopicName::parse(&topic) {
            Ok(name) => name,
            Err(e) => return self.error(ErrorCode::BadTopic, e.to_string(), Some(widget_id)),
        };
        let key = TopicKey::new(self.tenant.clone(), name);
        let widget: Arc<str> = widget_id.into();
        match self.broker.subscribe(&key, self.subscriber(&widget), resume_token) {
            Ok(_) => {
                tracing::debug!(connection = self.id, %widget, topic = %key, "subscribed");
                self.subscriptions.insert(widget, key);
            }
            Err(e @ BrokerError::UnknownTopic(_)) => {
                self.error(ErrorCode::UnknownTopic, e.to_string(), Some(widget.to_string()))
            }
            Err(e) => self.error(ErrorCode::LimitExceeded, e.to_string(), Some(widget.to_string())),
        }
    }

    fn subscriber(&self, widget: &Arc<str>) -> Subscriber {
        Subscriber { connection: self.id, widget: widget.clone(), outbox: self.outbox.clone() }
    }

    fn reply(&self, message: ControlMessage) {
        self.outbox.push(Frame::Whole(ServerMessage::Control(message).to_json()));
    }

    fn error(&self, code: ErrorCode, message: String, widget_id: Option<String>) {
        tracing::debug!(connection = self.id, ?code, %message, "client error");
        self.reply(ControlMessage::Error { code, message, widget_id });
    }
}
