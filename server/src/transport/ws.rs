//! `/api/ws`: one task per WebSocket, reading client messages and writing its outbox.
//!
//! Everything a connection sends goes through its [`Outbox`], so replies (snapshots, errors,
//! pongs) and updates reach the client in the order they were produced. The task writes each batch
//! with one flush, at most once per `write_coalesce` (what arrives in between waits for the next
//! write, so a busy connection costs one syscall for several updates), pings the client, and closes
//! the socket after `idle_timeout` of silence or with 1001 when the server shuts down.

use super::admission::{self, GOING_AWAY, MESSAGE_TOO_BIG, NORMAL, OriginRule, SESSION_ENDED};
use super::outbox::{Batch, Frame, Outbox};
use super::registry::{Kick, Registration};
use super::subscription_log::{SUMMARY_EVERY, SubscriptionLog};
use super::write_pacer::WritePacer;
use crate::{
    AppState,
    api::error::ApiError,
    auth::{Auth, Session, resume_token::Subscription as ResumeSubscription},
    broker::{
        Broker, ReadFrom, Subscribed, Subscriber,
        topic_name::{TopicKey, TopicName},
    },
    client_addr::ClientAddr,
    config::Config,
    limits::TokenBucket,
    presence::{self, Presence},
    shutdown::ShutdownSignal,
    store::audit::{AuditEntry, Auditor, Outcome},
    telemetry,
};
use app::protocol::{ClientMessage, ControlMessage, ErrorCode, Limits, ServerMessage};
use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures_util::SinkExt;
use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};
use tokio::time::Instant;

/// Longest widget id a client may use.
const MAX_WIDGET_ID_LEN: usize = 128;

/// Socket buffers are kept small on purpose: with thousands of mostly idle dashboards, per-socket
/// buffers dominate server memory. What a client sends is small (a subscription is about 150
/// bytes): one read takes it, and a larger frame grows the buffer to fit. Writes are gathered up to
/// the write size before they go out.
const READ_BUFFER_BYTES: usize = 256;
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// Checks the Origin (403 before the upgrade: such a request is not from our page), then the
/// address's connection rate, the session and the tenant's live flag. Those refusals happen after the
/// upgrade, as close codes, because a browser's WebSocket cannot see an HTTP status (it only reports
/// 1006).
pub async fn upgrade(
    upgrade: WebSocketUpgrade,
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admission::check_origin(&state, &headers, OriginRule::Required) {
        admission::deny(&state, None, peer, &refusal);
        return ApiError::forbidden("this origin may not open live connections").into_response();
    }
    let verdict = match admission::check_connect_rate(&state, peer) {
        Ok(()) => admission::check_session(&state, &headers).await,
        Err(refusal) => Err(refusal),
    };
    match &verdict {
        Ok(session) => admission::accepted(&state, session, format!("websocket from {}", peer)),
        Err(refusal) => admission::deny(&state, None, peer, refusal),
    }
    let max = state.config.max_frame_bytes;
    let upgrade = upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max);
    match verdict {
        Ok(session) => {
            let admitted = Box::new(Admitted { session, state, headers, peer });
            // Boxed before the future is made, so that the socket's task holds two pointers, not
            // copies of them (rust-lang/rust#62958: an async fn keeps its arguments beside what
            // it moves them into). That task lives as long as the socket.
            upgrade.on_upgrade(move |socket| admitted.open(Box::new(socket)))
        }
        Err(refusal) => {
            upgrade.on_upgrade(move |mut socket| async move { close(&mut socket, refusal.code, refusal.reason).await })
        }
    }
}

/// A connection that passed the checks made before the upgrade.
struct Admitted {
    session: Session,
    state: AppState,
    headers: HeaderMap,
    peer: IpAddr,
}

impl Admitted {
    /// Takes a seat in the user's connection limit, then serves the socket.
    async fn open(self: Box<Self>, mut socket: Box<WebSocket>) {
        let id = admission::next_connection_id();
        // Boxed, as are the other steps taken once (the goodbye, leaving the roster): the task's
        // future is as large as its largest step.
        let registered = Box::pin(admission::register(&self.state, id, &self.session, &self.headers)).await;
        // Header values share the request's whole read buffer (8 KB): kept for the socket's life,
        // they would more than double what an idle connection holds.
        let Admitted { session, state, peer, headers } = *self;
        drop(headers);
        match registered {
            Ok(registration) => Box::new(Connection::new(id, state, session, registration)).run(socket).await,
            Err(refusal) => {
                admission::deny(&state, Some(&session), peer, &refusal);
                drop((state, session));
                close(&mut socket, refusal.code, refusal.reason).await
            }
        }
    }
}

/// `write`'s outcome, or `None` if the session ends (a logout, revocation, live off, its expiry)
/// before it completes: a write to a client that stopped reading must not keep a session's end
/// waiting.
async fn unless_ended<T>(kick: &Kick, expires_at: i64, write: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        done = write => Some(done),
        _ = kick.or_expiry(expires_at) => {
            metrics::counter!(telemetry::HANGUPS, "transport" => "websocket").increment(1);
            None
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: String) {
    let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

struct Connection {
    id: u64,
    session: Session,
    broker: Arc<Broker>,
    auditor: Auditor,
    presence: Arc<Presence>,
    outbox: Arc<Outbox>,
    /// widget id → what it follows (one table: thousands of idle connections each hold one)
    subscriptions: HashMap<Arc<str>, Followed>,
    auth: Arc<Auth>,
    limits: Limits,
    /// Timeouts, read from here rather than copied into each of thousands of connections (`limits`
    /// is the welcome message's copy).
    config: Arc<Config>,
    shutdown: ShutdownSignal,
    registration: Registration,
    /// The client's message rate limit.
    inbound: TokenBucket,
    /// Its manual refreshes: each costs a snapshot, so they have a limit of their own.
    refreshes: TokenBucket,
    /// Its subscriptions since the last audit summary, and when that was written.
    subscription_log: SubscriptionLog,
    last_summary: Instant,
}

struct Followed {
    topic: TopicKey,
    /// The resume token of the last snapshot or update written to the socket.
    position: Option<Arc<str>>,
}

/// Metric handles, looked up once for the process: a look-up by name hashes the name, and a
/// handle per connection costs memory per connection.
struct Meters {
    backlog: metrics::Histogram,
    messages_out: metrics::Counter,
    push_latency: metrics::Histogram,
}

fn meters() -> &'static Meters {
    static METERS: std::sync::OnceLock<Meters> = std::sync::OnceLock::new();
    METERS.get_or_init(|| Meters {
        backlog: metrics::histogram!(telemetry::OUTBOX_BACKLOG),
        messages_out: metrics::counter!(telemetry::MESSAGES_OUT),
        push_latency: metrics::histogram!(telemetry::PUSH_LATENCY),
    })
}

/// Why the connection loop ended, and what to tell the client.
enum Ending {
    ClientLeft,
    Close(u16, String),
    /// Told to close while a write was blocked: the socket is dropped mid-write, without a close
    /// frame (one cannot follow half a frame). The client reconnects and is refused with the code.
    HungUp,
}

/// How long a close frame may take to go out before the socket is dropped without it.
const CLOSE_WRITE_LIMIT: Duration = Duration::from_secs(1);

impl Connection {
    fn new(id: u64, state: AppState, session: Session, registration: Registration) -> Self {
        Self {
            id,
            session,
            broker: state.broker,
            auditor: state.auditor,
            presence: state.presence,
            outbox: Arc::new(Outbox::new(state.config.outbox_capacity)),
            subscriptions: HashMap::new(),
            auth: state.auth,
            limits: Limits {
                max_subscriptions: state.config.max_subscriptions,
                max_messages_per_sec: state.config.client_messages_per_sec,
                max_frame_bytes: state.config.max_frame_bytes,
            },
            config: state.config.clone(),
            shutdown: state.shutdown,
            registration,
            inbound: TokenBucket::new(
                state.config.client_messages_per_sec as f64,
                2.0 * state.config.client_messages_per_sec as f64,
                std::time::Instant::now(),
            ),
            refreshes: TokenBucket::new(
                state.config.refreshes_per_min as f64 / 60.0,
                state.config.refreshes_per_min as f64,
                std::time::Instant::now(),
            ),
            subscription_log: SubscriptionLog::default(),
            last_summary: Instant::now(),
        }
    }

    /// Both arrive boxed: an async fn keeps a copy of each argument beside the one it uses
    /// (rust-lang/rust#62958), and this future lives as long as the socket.
    async fn run(mut self: Box<Self>, mut socket: Box<WebSocket>) {
        tracing::info!(connection = self.id, user = %self.session.user.email, "connected");
        metrics::counter!(telemetry::CONNECTIONS_TOTAL).increment(1);
        metrics::gauge!(telemetry::CONNECTIONS_OPEN).increment(1.0);
        self.reply(ControlMessage::Welcome {
            connection_id: self.id.to_string(),
            resume_token: self.resume_token(),
            limits: self.limits,
            heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as u64,
            idle_timeout_ms: self.config.idle_timeout.as_millis() as u64,
        });
        self.presence.connected(&self.session.user, self.registration.joined());
        let ending = self.serve(&mut socket).await;
        Box::pin(self.finish(socket, ending)).await;
    }

    /// Says goodbye when there is something to say, and frees what the connection held.
    async fn finish(mut self: Box<Self>, mut socket: Box<WebSocket>, ending: Ending) {
        if let Ending::Close(code, reason) = ending {
            // A client that does not read must not hold its socket with the goodbye.
            let _ = tokio::time::timeout(CLOSE_WRITE_LIMIT, close(&mut socket, code, reason)).await;
        }
        drop(socket);
        self.audit_subscriptions();
        for (widget, followed) in self.subscriptions.drain() {
            self.broker.unsubscribe(&followed.topic, self.id, &widget);
        }
        let left = self.registration.leave().await;
        self.presence.disconnected(&self.session.user, &left);
        metrics::gauge!(telemetry::CONNECTIONS_OPEN).decrement(1.0);
        tracing::info!(connection = self.id, "disconnected");
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> Ending {
        let mut last_heard = Instant::now();
        let mut ping =
            tokio::time::interval_at(Instant::now() + self.config.heartbeat_interval, self.config.heartbeat_interval);
        // The futures that outlive one turn of the loop are made once: re-making them on every
        // update (a lock, a waiter list entry) cost more than the update itself.
        let mut shutdown = self.shutdown.clone();
        let stopping = shutdown.stopping();
        let kick = self.registration.kick.clone();
        let kicked = kick.received();
        let session_left = Duration::from_secs((self.session.expires_at - crate::store::now_secs()).max(0) as u64);
        let session_end = tokio::time::sleep(session_left);
        // When the outbox has something but the last write was under `write_coalesce` ago.
        let held = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(stopping, kicked, session_end, held);
        let mut holding = false;
        let mut pacer = WritePacer::new(self.config.write_coalesce, Instant::now());
        loop {
            tokio::select! {
                // An ending first: a write started after a kick would be cut off without its close
                // frame.
                biased;
                () = &mut stopping => return Ending::Close(GOING_AWAY, "server shutting down".into()),
                (code, reason) = &mut kicked => return Ending::Close(code, reason.into()),
                () = &mut session_end => return Ending::Close(SESSION_ENDED, "session expired".into()),
                inbound = socket.recv() => match inbound {
                    Some(Ok(message)) => {
                        last_heard = Instant::now();
                        if let Some(ending) = self.on_message(message) {
                            return ending;
                        }
                    }
                    Some(Err(e)) if too_big(&e) => {
                        telemetry::denied("frame_size");
                        return Ending::Close(MESSAGE_TOO_BIG, "message too big".into());
                    }
                    Some(Err(e)) => {
                        tracing::debug!(connection = self.id, error = %e, "read failed");
                        return Ending::ClientLeft;
                    }
                    None => return Ending::ClientLeft,
                },
                () = self.outbox.ready(), if !holding => {
                    if let Some(until) = pacer.hold_until(Instant::now()) {
                        held.as_mut().reset(until);
                        holding = true;
                        continue;
                    }
                    if let Err(ending) = Box::pin(self.write_batch(socket, &mut pacer)).await {
                        return ending;
                    }
                }
                // Holding must never make a subscription lag: half a queue goes out at once.
                () = self.outbox.half_full(), if holding => {
                    holding = false;
                    if let Err(ending) = Box::pin(self.write_batch(socket, &mut pacer)).await {
                        return ending;
                    }
                }
                () = &mut held, if holding => {
                    holding = false;
                    if let Err(ending) = Box::pin(self.write_batch(socket, &mut pacer)).await {
                        return ending;
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= self.config.idle_timeout {
                        return Ending::Close(NORMAL, "idle timeout".into());
                    }
                    if self.last_summary.elapsed() >= SUMMARY_EVERY {
                        self.audit_subscriptions();
                    }
                    let ping = socket.send(Message::Ping(Default::default()));
                    let ping = Box::pin(tokio::time::timeout(self.config.write_timeout, ping));
                    match unless_ended(&kick, self.session.expires_at, ping).await {
                        Some(Ok(Ok(()))) => {}
                        Some(_) => return Ending::ClientLeft,
                        None => return Ending::HungUp,
                    }
                }
            }
        }
    }

    /// Takes everything queued and writes it, within the write timeout; the pacer counts the next
    /// window from now. Callers box it: inline, its state would take room in every idle
    /// connection's task (a heap allocation a write costs far less than the write).
    async fn write_batch(&mut self, socket: &mut WebSocket, pacer: &mut WritePacer) -> Result<(), Ending> {
        pacer.wrote(Instant::now());
        let batch = self.outbox.take();
        if batch.frames.is_empty() && batch.lagging.is_empty() {
            return Ok(());
        }
        let kick = self.registration.kick.clone();
        let expires_at = self.session.expires_at;
        let write = tokio::time::timeout(self.config.write_timeout, self.write(socket, batch));
        match unless_ended(&kick, expires_at, write).await {
            Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(_))) => Err(Ending::ClientLeft),
            Some(Err(_)) => {
                telemetry::write_timed_out("websocket");
                Err(Ending::ClientLeft)
            }
            None => Err(Ending::HungUp),
        }
    }

    /// Writes a batch with one flush, then asks the broker to resync subscriptions that lagged.
    async fn write(&mut self, socket: &mut WebSocket, batch: Batch) -> Result<(), axum::Error> {
        let frames = batch.frames.len();
        let mut published = Vec::new();
        for frame in batch.frames {
            if let Some((widget, position)) = frame.position()
                && let Some(followed) = self.subscriptions.get_mut(widget)
            {
                followed.position = Some(position.clone());
            }
            if let Frame::Update { published_at: Some(at), .. } = &frame {
                published.push(*at);
            }
            socket.feed(Message::Text(frame.into_text().into())).await?;
        }
        socket.flush().await?;
        meters().backlog.record(published.len() as f64);
        meters().messages_out.increment(frames as u64);
        for at in published {
            meters().push_latency.record(at.elapsed().as_secs_f64());
        }
        for widget in batch.lagging {
            if let Some(followed) = self.subscriptions.get(&widget) {
                tracing::debug!(connection = self.id, %widget, "subscriber lagged; resyncing");
                let _ = self.broker.resync(&followed.topic, &self.subscriber(&widget));
            }
        }
        Ok(())
    }

    fn on_message(&mut self, message: Message) -> Option<Ending> {
        let counted = matches!(message, Message::Text(_) | Message::Binary(_));
        if counted && !self.inbound.try_take(std::time::Instant::now()) {
            metrics::counter!(telemetry::MESSAGES_IN, "type" => "rate_limited").increment(1);
            let message = "too many messages; this one was ignored".into();
            self.error(ErrorCode::RateLimited, message, None);
            return None;
        }
        match message {
            Message::Text(text) => match serde_json::from_str::<ClientMessage>(text.as_str()) {
                Ok(message) => {
                    metrics::counter!(telemetry::MESSAGES_IN, "type" => message.kind()).increment(1);
                    self.on_client_message(message)
                }
                Err(e) => {
                    metrics::counter!(telemetry::MESSAGES_IN, "type" => "invalid").increment(1);
                    self.error(ErrorCode::BadMessage, format!("not a valid message: {e}"), None)
                }
            },
            Message::Binary(_) => {
                metrics::counter!(telemetry::MESSAGES_IN, "type" => "invalid").increment(1);
                self.error(ErrorCode::BadMessage, "binary frames are not supported".into(), None)
            }
            Message::Close(_) => return Some(Ending::ClientLeft),
            Message::Ping(_) | Message::Pong(_) => {}
        }
        None
    }

    fn on_client_message(&mut self, message: ClientMessage) {
        match message {
            ClientMessage::Ping => self.reply(ControlMessage::Pong { resume_token: Some(self.resume_token()) }),
            ClientMessage::Resume { token } => match self.auth.resume.verify(&token, self.session.user.id) {
                Ok(subscriptions) => {
                    for sub in subscriptions {
                        self.subscribe(sub.widget, sub.topic, sub.position.as_deref());
                    }
                }
                Err(e) => {
                    telemetry::denied("resume_token");
                    self.error(ErrorCode::BadResumeToken, e.to_string(), None)
                }
            },
            ClientMessage::Subscribe { widget_id, topic, resume_token } => {
                self.subscribe(widget_id, topic, resume_token.as_deref())
            }
            ClientMessage::Unsubscribe { widget_id } => match self.subscriptions.remove_entry(widget_id.as_str()) {
                Some((widget, followed)) => {
                    self.broker.unsubscribe(&followed.topic, self.id, &widget);
                    self.outbox.forget(&widget);
                    self.subscription_log.unsubscribed();
                }
                None => self.error(ErrorCode::NotSubscribed, "no such subscription".into(), Some(widget_id)),
            },
            ClientMessage::RequestUpdate { widget_id } => match self.subscriptions.get_key_value(widget_id.as_str()) {
                Some(_) if !self.refreshes.try_take(std::time::Instant::now()) => {
                    telemetry::denied("refresh_rate");
                    let message =
                        format!("at most {} refreshes a minute; the view stays live", self.config.refreshes_per_min);
                    self.error(ErrorCode::RateLimited, message, Some(widget_id))
                }
                Some((widget, followed)) => {
                    // A topic is never retired while it has subscribers; one still waiting to be
                    // created has no snapshot to refresh.
                    let _ = self.broker.refresh(&followed.topic, &self.subscriber(widget));
                }
                None => self.error(ErrorCode::NotSubscribed, "no such subscription".into(), Some(widget_id)),
            },
            ClientMessage::Activity { action, detail } => match presence::check_detail(&detail) {
                Ok(detail) => {
                    if let Err(limited) = self.presence.reported(&self.session.user, action, detail) {
                        self.error(ErrorCode::RateLimited, limited.to_string(), None)
                    }
                }
                Err(message) => self.error(ErrorCode::BadMessage, message, None),
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
        if self.subscriptions.len() >= self.limits.max_subscriptions {
            telemetry::denied("subscriptions_per_connection");
            let message = format!("at most {} subscriptions per connection", self.limits.max_subscriptions);
            return self.error(ErrorCode::LimitExceeded, message, Some(widget_id));
        }
        let name = match TopicName::parse(&topic) {
            Ok(name) => name,
            Err(e) => {
                telemetry::denied("bad_topic");
                self.subscription_log.refused(&topic, &e.to_string());
                return self.error(ErrorCode::BadTopic, e.to_string(), Some(widget_id));
            }
        };
        let key = TopicKey::new(self.session.user.tenant.clone(), name);
        let widget: Arc<str> = widget_id.into();
        let subscribed = match self.broker.subscribe(&key, self.subscriber(&widget), ReadFrom::token(resume_token)) {
            Ok(subscribed) => subscribed,
            Err(e) => {
                telemetry::denied(e.limit_label().unwrap_or("subscribe"));
                self.subscription_log.refused(key.name.as_str(), &e.to_string());
                return self.error(ErrorCode::LimitExceeded, e.to_string(), Some(widget.to_string()));
            }
        };
        let pending = subscribed == Subscribed::Pending;
        tracing::debug!(connection = self.id, %widget, topic = %key, pending, "subscribed");
        self.subscription_log.subscribed(key.name.as_str());
        self.subscriptions.insert(widget, Followed { topic: key, position: None });
    }

    /// Writes what the connection subscribed to since the last summary, as one audit row.
    fn audit_subscriptions(&mut self) {
        self.last_summary = Instant::now();
        let Some(summary) = self.subscription_log.take_summary() else { return };
        self.auditor.record(AuditEntry {
            tenant: Some(self.session.user.tenant.to_string()),
            actor: Some(self.session.user.email.clone()),
            action: "subscriptions",
            // Refusals are in the counts: the row is a summary, never digested away.
            outcome: Outcome::Ok,
            detail: Some(format!("connection {}: {summary}", self.id)),
        });
    }

    /// A signed token of this connection's subscriptions and positions, valid while the session is.
    fn resume_token(&self) -> String {
        let subs = self
            .subscriptions
            .iter()
            .map(|(widget, followed)| ResumeSubscription {
                widget: widget.to_string(),
                topic: followed.topic.name.to_string(),
                position: followed.position.as_ref().map(|p| p.to_string()),
            })
            .collect();
        self.auth.resume.issue(self.session.user.id, self.session.expires_at, subs)
    }

    fn subscriber(&self, widget: &Arc<str>) -> Subscriber {
        Subscriber { connection: self.id, widget: widget.clone(), outbox: self.outbox.clone() }
    }

    fn reply(&self, message: ControlMessage) {
        self.outbox.push(Frame::Whole(ServerMessage::Control(message).to_json()));
    }

    fn error(&self, code: ErrorCode, message: String, widget_id: Option<String>) {
        tracing::debug!(connection = self.id, ?code, %message, "client error");
        metrics::counter!(telemetry::CLIENT_ERRORS, "code" => code.as_str()).increment(1);
        self.reply(ControlMessage::Error { code, message, widget_id });
    }
}

/// Whether a read failed because the client sent a message over the size limit.
fn too_big(error: &axum::Error) -> bool {
    use std::error::Error;
    let mut source: Option<&(dyn Error + 'static)> = error.source();
    while let Some(e) = source {
        if let Some(tungstenite::Error::Capacity(_)) = e.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}
