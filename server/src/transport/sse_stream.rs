//! What every SSE stream shares: the response whose body a task feeds, the write that gives up on a
//! client that stops reading, and the things that end a stream (the client leaving, shutdown, a
//! kick, the session's expiry) next to its heartbeat.
//!
//! The task hands chunks to the body through a channel of two: a client that stops reading fills
//! it, and a chunk that cannot be handed over within the write timeout ends the stream, so a stalled
//! reader costs two chunks and its outbox, never more.
//!
//! A session's end (logout, revocation, live off) cannot wait for that timeout: a kick while a chunk
//! waits, or a closing response that does not finish within [`CLOSE_DRAIN`], hangs up the
//! connection (see [`Hangup`]).

use super::{endings::Ending, live_connection::LiveConnection, sse_format};
use crate::connections::registry::Kick;
use crate::{config::Config, listener::Hangup, telemetry};
use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use protocol::close::Disconnect;
use protocol::sse;
use std::{convert::Infallible, future::Future, pin::Pin, sync::Arc, time::Duration};
use tokio::{
    sync::{mpsc, oneshot},
    time::{Instant, Interval},
};

/// Chunks waiting for the response body.
const BODY_CHUNKS: usize = 2;
/// How long a closing stream's last chunks may take to reach the client before it is hung up on.
pub const CLOSE_DRAIN: Duration = Duration::from_millis(500);

/// The writing end of one stream's response.
pub struct EventStream {
    /// Gone once the stream has ended: the body then finishes with what it has.
    chunks: Option<mpsc::Sender<Bytes>>,
    write_timeout: Duration,
    /// `dashboard` or `job`, for the metrics.
    pub kind: &'static str,
    kick: Arc<Kick>,
    /// When the session expires (Unix seconds).
    expires_at: i64,
    hangup: Option<Hangup>,
    /// Fails once the response body is dropped: the response is over.
    body_gone: oneshot::Receiver<()>,
}

impl EventStream {
    /// A stream and the `text/event-stream` response whose body it writes; the first chunk asks
    /// for a 1 s reconnection delay and says how often heartbeats come (a client then knows at
    /// once how long a silence means a dead path).
    pub fn open<K>(
        config: &Config,
        kind: &'static str,
        live: &LiveConnection<K>,
        hangup: Option<Hangup>,
    ) -> (Self, Response) {
        let (write_timeout, heartbeat) = (config.write_timeout, config.sse_heartbeat);
        let (chunks, mut body) = mpsc::channel::<Bytes>(BODY_CHUNKS);
        let (body_alive, body_gone) = oneshot::channel::<()>();
        let mut opening = String::new();
        sse_format::retry(&mut opening, sse::RETRY_MS);
        sse_format::heartbeat(&mut opening, crate::clock::now_ms(), heartbeat);
        chunks.try_send(Bytes::from(opening)).expect("a new channel has room");
        let body = futures_util::stream::poll_fn(move |cx| {
            let _alive = &body_alive; // dropped with the body
            body.poll_recv(cx).map(|c| c.map(Ok::<_, Infallible>))
        });
        let mut response = Body::from_stream(body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-transform"));
        // Proxies that buffer responses (nginx) must pass events on at once.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        metrics::gauge!(telemetry::SSE_ACTIVE, "stream" => kind).increment(1.0);
        (
            Self {
                chunks: Some(chunks),
                write_timeout,
                kind,
                kick: live.kick().clone(),
                expires_at: live.session.expires_at,
                hangup,
                body_gone,
            },
            response,
        )
    }

    /// Hands a chunk to the response body, or gives up on a client that does not read; the
    /// session's end (a kick, its expiry) while it waits hangs up at once.
    pub async fn send(&self, text: String) -> Result<(), Ending> {
        let Some(chunks) = &self.chunks else { return Err(Ending::Finished) };
        let handed = tokio::time::timeout(self.write_timeout, chunks.send(Bytes::from(text)));
        tokio::select! {
            biased;
            handed = handed => match handed {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(Ending::ClientLeft),
                Err(_) => {
                    telemetry::write_timed_out("sse");
                    metrics::counter!(telemetry::SSE_ERRORS, "reason" => "write_timeout").increment(1);
                    Err(Ending::ClientLeft)
                }
            },
            _ = self.kick.or_expiry(self.expires_at) => {
                self.hang_up();
                Err(Ending::HungUp)
            }
        }
    }

    fn hang_up(&self) {
        metrics::counter!(telemetry::HANGUPS, "transport" => "sse").increment(1);
        if let Some(hangup) = &self.hangup {
            hangup.now();
        }
    }

    /// Data events were written.
    pub fn count_sent(&self, events: u64) {
        metrics::counter!(telemetry::SSE_UPDATES, "stream" => self.kind).increment(events);
    }

    /// Tells the client why the stream ends, when there is something to tell, and lets the
    /// response finish: within [`CLOSE_DRAIN`], or the connection is hung up on.
    pub async fn end(&mut self, ending: Ending) {
        if let Ending::Close(disconnect) = ending {
            let mut text = String::new();
            sse_format::push_event(&mut text, sse::event::CLOSE, None, &disconnect.to_json());
            if self.send(text).await.is_err() {
                return;
            }
            self.chunks = None;
            if tokio::time::timeout(CLOSE_DRAIN, &mut self.body_gone).await.is_err() {
                self.hang_up();
            }
        }
        self.chunks = None;
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        metrics::gauge!(telemetry::SSE_ACTIVE, "stream" => self.kind).decrement(1.0);
    }
}

/// What a stream's task must act on next.
pub enum Wake {
    /// Its outbox has frames.
    Frames,
    /// Time for a `heartbeat` event (written by [`Lifetime::next`] already, with the audit summary
    /// if one is due).
    HeartbeatSent,
    Ended(Ending),
}

/// Everything besides its data that a stream waits for.
pub struct Lifetime {
    beat: Interval,
    ended: Pin<Box<dyn Future<Output = Disconnect> + Send>>,
}

impl Lifetime {
    pub fn new<K>(config: &Config, live: &LiveConnection<K>) -> Self {
        let every = config.sse_heartbeat;
        Self { beat: tokio::time::interval_at(Instant::now() + every, every), ended: Box::pin(live.ended()) }
    }

    /// Waits for frames in the connection's outbox, the heartbeat (which it writes), or the end of
    /// the stream.
    pub async fn next<K>(&mut self, stream: &EventStream, live: &mut LiveConnection<K>) -> Wake {
        tokio::select! {
            () = live.outbox.ready() => Wake::Frames,
            _ = self.beat.tick() => {
                live.audit_if_due();
                let mut text = String::new();
                sse_format::heartbeat(&mut text, crate::clock::now_ms(), self.beat.period());
                match stream.send(text).await {
                    Ok(()) => Wake::HeartbeatSent,
                    Err(ending) => Wake::Ended(ending),
                }
            }
            () = body_closed(stream) => Wake::Ended(Ending::ClientLeft),
            disconnect = &mut self.ended => Wake::Ended(Ending::Close(disconnect)),
        }
    }
}

/// Completes once the client is gone (the response body was dropped).
async fn body_closed(stream: &EventStream) {
    match &stream.chunks {
        Some(chunks) => chunks.closed().await,
        None => std::future::pending().await,
    }
}
