//! A WebSocket's life once admitted: its welcome, the loop that writes its outbox (when the outbox
//! calls: it paces the writes, see `crate::write_tick`), pings it, hears it, and ends it (a kick,
//! its session's end, shutdown, the idle timeout), and what it gives back as it ends.

use super::*;

impl Connection {
    pub(super) fn new(live: LiveConnection<LastWritten>, state: AppState) -> Self {
        let config = state.config;
        Self {
            live,
            auth: state.auth,
            limits: Limits {
                max_subscriptions: config.max_subscriptions,
                max_messages_per_sec: config.client_messages_per_sec,
                max_frame_bytes: config.max_frame_bytes,
            },
            inbound: TokenBucket::new(
                config.client_messages_per_sec as f64,
                2.0 * config.client_messages_per_sec as f64,
                std::time::Instant::now(),
            ),
            refreshes: TokenBucket::new(
                config.refreshes_per_min as f64 / 60.0,
                config.refreshes_per_min as f64,
                std::time::Instant::now(),
            ),
            config,
        }
    }

    /// Both arrive boxed: an async fn keeps a copy of each argument beside the one it uses
    /// (rust-lang/rust#62958), and this future lives as long as the socket.
    pub(super) async fn run(mut self: Box<Self>, mut socket: Box<WebSocket>) {
        metrics::counter!(telemetry::CONNECTIONS_TOTAL).increment(1);
        metrics::gauge!(telemetry::CONNECTIONS_OPEN).increment(1.0);
        self.reply(ControlMessage::Welcome {
            connection_id: self.live.id.to_string(),
            resume_token: self.resume_token(),
            limits: self.limits,
            heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as u64,
            idle_timeout_ms: self.config.idle_timeout.as_millis() as u64,
        });
        let ending = self.serve(&mut socket).await;
        Box::pin(self.finish(socket, ending)).await;
    }

    /// Says goodbye when there is something to say, and frees what the connection held.
    pub(super) async fn finish(self: Box<Self>, mut socket: Box<WebSocket>, ending: Ending) {
        if let Ending::Close(disconnect) = ending {
            // A client that does not read must not hold its socket with the goodbye.
            let _ = tokio::time::timeout(CLOSE_WRITE_LIMIT, close(&mut socket, disconnect)).await;
        }
        drop(socket);
        metrics::gauge!(telemetry::CONNECTIONS_OPEN).decrement(1.0);
        self.live.close().await;
    }

    pub(super) async fn serve(&mut self, socket: &mut WebSocket) -> Ending {
        let mut last_heard = Instant::now();
        let mut ping =
            tokio::time::interval_at(Instant::now() + self.config.heartbeat_interval, self.config.heartbeat_interval);
        // The futures that outlive one turn of the loop are made once: re-making them on every
        // update (a lock, a waiter list entry) cost more than the update itself.
        let kick = self.live.kick().clone();
        let ended = self.live.ended();
        // When the client will have been silent for `idle_timeout`, unless it speaks before: moved
        // on when it fires, not on every message (a timer reset per message would cost more).
        let idle = tokio::time::sleep(self.config.idle_timeout);
        tokio::pin!(ended, idle);
        loop {
            tokio::select! {
                // An ending first: a write started after a kick would be cut off without its close
                // frame.
                biased;
                disconnect = &mut ended => return Ending::Close(disconnect),
                inbound = socket.recv() => match inbound {
                    Some(Ok(message)) => {
                        last_heard = Instant::now();
                        if let Some(ending) = self.on_message(message) {
                            return ending;
                        }
                    }
                    Some(Err(e)) if too_big(&e) => {
                        telemetry::denied("frame_size");
                        return Ending::Close(Disconnect::new(MESSAGE_TOO_BIG, "message too big"));
                    }
                    Some(Err(e)) => {
                        tracing::debug!(connection = self.live.id, error = %e, "read failed");
                        return Ending::ClientLeft;
                    }
                    None => return Ending::ClientLeft,
                },
                () = self.live.outbox.ready() => {
                    if let Err(ending) = Box::pin(self.write_batch(socket)).await {
                        return ending;
                    }
                }
                () = &mut idle => {
                    let silent_until = last_heard + self.config.idle_timeout;
                    if silent_until <= Instant::now() {
                        return Ending::Close(Disconnect::new(NORMAL, "idle timeout"));
                    }
                    idle.as_mut().reset(silent_until);
                }
                _ = ping.tick() => {
                    self.live.audit_if_due();
                    let ping = socket.send(Message::Ping(Default::default()));
                    let ping = Box::pin(tokio::time::timeout(self.config.write_timeout, ping));
                    match unless_ended(&kick, self.live.session.expires_at, ping).await {
                        Some(Ok(Ok(()))) => {}
                        Some(_) => return Ending::ClientLeft,
                        None => return Ending::HungUp,
                    }
                }
            }
        }
    }

    /// Takes everything queued and writes it, within the write timeout. Callers box it: inline, its
    /// state would take room in every idle connection's task (a heap allocation a write costs far
    /// less than the write).
    pub(super) async fn write_batch(&mut self, socket: &mut WebSocket) -> Result<(), Ending> {
        let batch = self.live.take();
        if batch.frames.is_empty() && batch.lagging.is_empty() {
            return Ok(());
        }
        let kick = self.live.kick().clone();
        let expires_at = self.live.session.expires_at;
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
    pub(super) async fn write(&mut self, socket: &mut WebSocket, batch: Batch) -> Result<(), axum::Error> {
        let frames = batch.frames.len();
        let mut published = Vec::new();
        let events = batch.frames.iter().filter(|f| f.is_live_event()).count();
        for frame in batch.frames {
            if let Some((widget, position)) = frame.position()
                && let Some(followed) = self.live.followed_mut(widget)
            {
                followed.kept = Some(position.clone());
            }
            if let Frame::Update { published_at: Some(at), .. } = &frame {
                published.push(*at);
            }
            socket.feed(Message::Text(frame.into_text())).await?;
        }
        socket.flush().await?;
        telemetry::event_deliveries("delivered", events);
        meters().backlog.record(published.len() as f64);
        meters().messages_out.increment(frames as u64);
        for at in published {
            meters().push_latency.record(at.elapsed().as_secs_f64());
        }
        self.live.resync(batch.lagging);
        Ok(())
    }
}

/// `write`'s outcome, or `None` if the session ends (a logout, revocation, live off, its expiry)
/// before it completes: a write to a client that stopped reading must not keep a session's end
/// waiting.
pub(super) async fn unless_ended<T>(
    kick: &Kick,
    expires_at: i64,
    write: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        done = write => Some(done),
        _ = kick.or_expiry(expires_at) => {
            metrics::counter!(telemetry::HANGUPS, "transport" => "websocket").increment(1);
            None
        }
    }
}

/// Whether a read failed because the client sent a message over the size limit.
pub(super) fn too_big(error: &axum::Error) -> bool {
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

pub(super) async fn close(socket: &mut WebSocket, disconnect: Disconnect) {
    let frame = CloseFrame { code: disconnect.code, reason: Utf8Bytes::from(disconnect.reason) };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
